import CFuzzDriver
import FuzzSupport
import Config
import ConfigLayers

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer target: the `.properties` parser, then the whole configuration load and validation of that
/// text twice: as the master's configuration file (layered over the defaults, Kafka properties checked by
/// librdkafka) and as the text a master hands its worker. A configuration either accepts must print
/// (`workerText()`) to a text the worker loads to the same configuration.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProperties(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? PropertiesFormat.parse(text)
    FuzzFiles.write(Array(bytes), to: configurationFile)
    let sources = ConfigurationSources(file: .required(path: configurationFile, namedBy: .commandLine(argument: "-c")),
                                       environment: [:], commandLine: [])
    if let configuration = try? sources.load() { checkWorkerTextRoundTrip(configuration) }
    if let configuration = try? KflowConfiguration.parse(workerText: text) { checkWorkerTextRoundTrip(configuration) }
    return 0
}

/// The file the master's load reads, one per fuzzing process, in memory.
let configurationFile = "/dev/shm/kflow-fuzz-properties-\(getpid()).properties"

func checkWorkerTextRoundTrip(_ configuration: KflowConfiguration) {
    let printed = configuration.workerText()
    do {
        let again = try KflowConfiguration.parse(workerText: printed)
        if again.workerText() != printed { fatalError("worker text does not round-trip:\n\(printed)\n---\n\(again.workerText())") }
    } catch {
        fatalError("accepted configuration prints a text that does not load: \(error)\n\(printed)")
    }
}

/// With KFLOW_FUZZ_SEEDS_OUT set, writes the reference configuration (every setting with its default)
/// and the worker text it loads to as seeds, then exits.
@_cdecl("LLVMFuzzerInitialize")
public func initializePropertiesFuzzer(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    atexit { _ = unlink(configurationFile) }
    guard let out = FuzzFiles.environment("KFLOW_FUZZ_SEEDS_OUT") else { return 0 }
    FuzzFiles.write(Array(ReferenceConfiguration.text.utf8), to: out + "/reference.properties")
    if let configuration = try? KflowConfiguration.parse(workerText: ReferenceConfiguration.text) {
        FuzzFiles.write(Array(configuration.workerText().utf8), to: out + "/reference-worker.properties")
    }
    exit(0)
}

/// The entry point SwiftPM links as `main` (see Fuzz/Driver): libFuzzer's driver with this target.
@_cdecl("kflow_fuzz_properties_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    kflow_fuzz_run(argc, argv)
}
