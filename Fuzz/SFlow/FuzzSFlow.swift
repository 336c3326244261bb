import CFuzzDriver
import FuzzSupport
import FlowModel
import Decoders

/// libFuzzer target: the sFlow v5 decoder. The input is one datagram after its version word, which the
/// target supplies (`00 00 00 05`), so every input reaches `SFlowDecoder` instead of mostly failing the
/// version dispatch; each record is encoded as KFlow JSON. The decoder is kept across inputs with a
/// small source limit, so the per-agent table is driven to its bound too.
nonisolated(unsafe) let decoder = FlowDecoder(configuration: .init(maxSessions: 8))
let exporter = FuzzInput.exporters[0]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSFlow(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var datagram: [UInt8] = [0, 0, 0, 5]
    datagram.append(contentsOf: UnsafeBufferPointer(start: data, count: size))
    var sink = JSONSink()
    let samplesBefore = decoder.statistics.sflowFlowSamples
    datagram.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: 1_700_000_000, arrivalMs: 1_700_000_000_000, into: &sink) }
    // A flow sample is one record at most; every sample costs at least 8 of the datagram's octets.
    let samples = decoder.statistics.sflowFlowSamples - samplesBefore
    if UInt64(sink.records) > samples || Int(samples) * 8 > datagram.count {
        fatalError("\(sink.records) records from \(samples) flow samples in \(datagram.count) octets")
    }
    var agents = 0
    decoder.forEachSFlowAgent { _, _ in agents += 1 }
    if agents > 8 { fatalError("\(agents) agents tracked beyond the 8-source limit") }
    return 0
}

/// The entry point SwiftPM links as `main` (see Fuzz/Driver): libFuzzer's driver with this target.
@_cdecl("kflow_fuzz_sflow_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    kflow_fuzz_run(argc, argv)
}
