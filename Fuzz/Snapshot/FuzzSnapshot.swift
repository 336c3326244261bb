import CFuzzDriver
import FuzzSupport
import FlowModel
import Decoders

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer target: `importTemplateSnapshot` on arbitrary bytes (the snapshot a worker takes over from
/// its predecessor through shared memory), as given and again with the header's body length and checksum
/// made right, so mutations reach the entries behind the checksum. Whatever it accepts must survive its own
/// round trip. The same bytes are also read as a value of the fleet's template topic (`FleetTemplateMessage`:
/// an envelope around a snapshot, from another node).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSnapshot(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    importAndRoundTrip(input)
    if let (_, snapshot) = FleetTemplateMessage.parse(input) { importAndRoundTrip(snapshot) }
    if size >= 20 {
        var fixed = Array(input)
        sealSnapshotHeader(&fixed)
        fixed.withUnsafeBytes { importAndRoundTrip($0) }
    }
    return 0
}

/// Body length (octets 8-11) and FNV-1a 64 of the body (octets 12-19), as Templates/TemplateSnapshot.swift
/// lays out the header.
func sealSnapshotHeader(_ bytes: inout [UInt8]) {
    let body = bytes.count - 20
    for i in 0..<4 { bytes[8 + i] = UInt8(truncatingIfNeeded: body >> (24 - 8 * i)) }
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes[20...] { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    for i in 0..<8 { bytes[12 + i] = UInt8(truncatingIfNeeded: hash >> (56 - 8 * UInt64(i))) }
}

func importAndRoundTrip(_ bytes: UnsafeRawBufferPointer) {
    let now: UInt32 = 1_700_000_000
    let decoder = FlowDecoder(configuration: .init(maxTemplatesPerSession: 64, maxTemplatesTotal: 256, maxSessions: 8))
    decoder.importTemplateSnapshot(bytes, nowSeconds: now)
    var snapshot: [UInt8] = []
    decoder.writeTemplateSnapshot(into: &snapshot)
    let copy = FlowDecoder()
    _ = snapshot.withUnsafeBytes { copy.importTemplateSnapshot($0, nowSeconds: now) }
    if let error = copy.lastTemplateSnapshotError {
        fatalError("re-import of an accepted snapshot (\(decoder.activeTemplateCount) templates) failed: \(error)")
    }
}

/// With KFLOW_FUZZ_SEEDS_FROM (the decoder target's corpus) and KFLOW_FUZZ_SEEDS_OUT set, writes the
/// snapshot of the templates each decoder input teaches into the output directory, then exits: real
/// exporters' templates in the snapshot format, written by the code that writes it in production.
@_cdecl("LLVMFuzzerInitialize")
public func initializeSnapshotFuzzer(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    guard let from = FuzzFiles.environment("KFLOW_FUZZ_SEEDS_FROM"), let out = FuzzFiles.environment("KFLOW_FUZZ_SEEDS_OUT") else { return 0 }
    var written = 0
    for path in FuzzFiles.list(from) {
        let decoder = FlowDecoder()
        var sink = CountingSink()
        var now: UInt32 = 1_700_000_000
        let input = FuzzFiles.read(path)
        for datagram in input.withUnsafeBytes({ FuzzInput.datagrams($0) }) {
            now &+= datagram.advanceSeconds
            datagram.bytes.withUnsafeBytes {
                decoder.decode($0, from: FuzzInput.exporters[datagram.exporter], nowSeconds: now, into: &sink)
            }
        }
        guard decoder.activeTemplateCount > 0 else { continue }
        var snapshot: [UInt8] = []
        decoder.writeTemplateSnapshot(into: &snapshot)
        FuzzFiles.write(snapshot, to: out + "/" + (path.split(separator: "/").last.map(String.init) ?? "seed") + ".snapshot")
        written += 1
    }
    print("wrote \(written) snapshot seeds into \(out)")
    exit(0)
}

struct CountingSink: FlowSink {
    var records = 0
    mutating func emit(_ record: borrowing FlowRecord) { records += 1 }
}

/// The entry point SwiftPM links as `main` (see Fuzz/Driver): libFuzzer's driver with this target.
@_cdecl("kflow_fuzz_snapshot_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    kflow_fuzz_run(argc, argv)
}
