import CFuzzDriver
import FuzzSupport
import FlowModel
import Decoders

/// libFuzzer target: the datagram decoders (IPFIX, NetFlow v9, v5) through `FlowDecoder`, each record
/// encoded as KFlow JSON, then the decoder's templates through a snapshot round trip.
///
/// One input is a sequence of datagrams (`FuzzInput.datagrams`), fed in order to one fresh decoder, so a
/// template and the data that uses it meet in one input and a crash reproduces from the input alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let decoder = FlowDecoder(configuration: .init(maxTemplatesPerSession: 64, maxTemplatesTotal: 256, maxSessions: 4))
    var sink = JSONSink()
    var now: UInt32 = 1_700_000_000
    for datagram in FuzzInput.datagrams(input) {
        now &+= datagram.advanceSeconds
        datagram.bytes.withUnsafeBytes {
            decoder.decode($0, from: FuzzInput.exporters[datagram.exporter], nowSeconds: now, into: &sink)
        }
    }
    // Whatever templates the input taught, a snapshot of them must import whole into a fresh decoder.
    var snapshot: [UInt8] = []
    decoder.writeTemplateSnapshot(into: &snapshot)
    let copy = FlowDecoder()
    let imported = snapshot.withUnsafeBytes { copy.importTemplateSnapshot($0, nowSeconds: now) }
    if let error = copy.lastTemplateSnapshotError {
        fatalError("own snapshot of \(decoder.activeTemplateCount) templates rejected after \(imported): \(error)")
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see Fuzz/Driver): libFuzzer's driver with this target.
@_cdecl("kflow_fuzz_decoder_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    kflow_fuzz_run(argc, argv)
}
