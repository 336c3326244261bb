import CFuzzDriver
import FuzzSupport
import FlowModel
import Decoders
import Templates
import Output

/// libFuzzer target: the datagram decoders (IPFIX, NetFlow v9, v5) through `FlowDecoder`, each record
/// encoded as KFlow JSON, then the decoder's templates through a snapshot round trip.
///
/// One input is a sequence of datagrams (`FuzzInput.datagrams`), fed in order to one fresh decoder, so a
/// template and the data that uses it meet in one input and a crash reproduces from the input alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let decoder = FlowDecoder(configuration: .init(
        maxTemplatesPerSession: 64, maxTemplatesTotal: 256, maxSessions: 4,
        sampling: SamplingConfiguration(defaultRate: 3, renormalize: true), customFields: customFields))
    var sink = JSONSink(encoder: KFlowJSONEncoder(fields: .all, custom: customFields, values: decoder.customValues))
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

/// Fields chosen by configuration, of every type, IANA and enterprise (PEN 9: also what a v9 type ≥ 32768
/// is not), so their compilation, offsets and JSON text (escaping, UTF-8 repair) meet hostile bytes too.
let customFields: [CustomField] = [
    CustomField(name: "s", enterprise: 0, id: 96, kind: nil), CustomField(name: "h", enterprise: 0, id: 95, kind: nil),
    CustomField(name: "m", enterprise: 0, id: 56, kind: nil), CustomField(name: "f", enterprise: 9, id: 1, kind: .float),
    CustomField(name: "i", enterprise: 9, id: 2, kind: .signed), CustomField(name: "a", enterprise: 9, id: 3, kind: .address),
    CustomField(name: "x", enterprise: 9, id: 4, kind: nil), CustomField(name: "t", enterprise: 9, id: 5, kind: .string),
]

/// The entry point SwiftPM links as `main` (see Fuzz/Driver): libFuzzer's driver with this target.
@_cdecl("kflow_fuzz_decoder_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    kflow_fuzz_run(argc, argv)
}
