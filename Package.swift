// swift-tools-version: 6.1
import PackageDescription

// librdkafka >= 2.1.1 is built by scripts/setup.sh and found through pkg-config (the Makefile sets
// PKG_CONFIG_PATH); it is linked statically so the binaries need no librdkafka at run time.
// The per-record path is measured (Benchmarks/, docs/BENCHMARKS.md); runtime exclusivity checks cost
// several percent there and guard nothing the debug build's tests don't.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")

func library(_ name: String, _ dependencies: [Target.Dependency], hot: Bool = false) -> Target {
    .target(name: name, dependencies: dependencies, path: "Sources/Shared/\(name)", swiftSettings: hot ? hotPath : [])
}

let package = Package(
    name: "kflow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kflow-master", targets: ["kflow-master"]),
        .executable(name: "kflow-worker", targets: ["kflow-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // No traits: the default JSON trait imports all of Foundation (JSONSerialization), and with it
        // FoundationInternationalization and ICU's data (~40 MB per binary); kflow reads no JSON configuration.
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C shims, each small and on its own.
        .systemLibrary(name: "CRdKafka", pkgConfig: "kflow-rdkafka"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd"),
        .target(name: "CKflowShims"),

        // The libraries, bottom up: each imports only those above it in this list, so an upward import
        // does not compile (docs/DESIGN.md). They live in Sources/Shared/<name>.
        library("FlowModel", [], hot: true),
        library("SystemKit", [logging]),
        library("WireFormat", ["FlowModel"], hot: true),
        library("Templates", ["FlowModel", "WireFormat"], hot: true),
        library("Decoders", ["FlowModel", "WireFormat", "Templates"], hot: true),
        library("Output", ["FlowModel"], hot: true),
        library("KafkaOutput", ["Output", "SystemKit", "CRdKafka"], hot: true),
        library("Config", ["FlowModel", "Output", "KafkaOutput", "CRdKafka", logging]),
        // The master's layered load (command line, environment, file) through swift-configuration, apart
        // from Config so a worker, which only reads its master's text, links neither swift-configuration
        // nor the Foundation Essentials it brings (issue 13: footprint).
        library("ConfigLayers", ["Config", .product(name: "Configuration", package: "swift-configuration")]),
        library("ProcessKit", ["FlowModel", "SystemKit", "WireFormat", "KafkaOutput", "Config", "CKflowShims"]),
        library("MetricsServer", ["SystemKit", "ProcessKit", logging]),
        library("WorkerRuntime", ["FlowModel", "SystemKit", "WireFormat", "Templates", "Decoders", "Output",
                                  "KafkaOutput", "Config", "ProcessKit", "CKflowShims", logging], hot: true),
        .executableTarget(
            name: "kflow-master",
            dependencies: [
                "FlowModel", "SystemKit", "WireFormat", "Templates", "KafkaOutput", "Config", "ConfigLayers", "ProcessKit", "MetricsServer",
                "CSystemd", "CKflowShims", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "kflow-worker", dependencies: ["SystemKit", "ProcessKit", "WorkerRuntime", "CKflowShims", logging],
                          swiftSettings: hotPath),
        // Decode + JSON encode without Kafka, flows/s on one core (issue: speed).
        .executableTarget(name: "kflow-microbench", dependencies: ["FlowModel", "Decoders", "Templates", "Output", "KafkaOutput", "Config"],
                          path: "Benchmarks/Microbench", swiftSettings: hotPath),
        .testTarget(name: "SharedTests", dependencies: [
            "FlowModel", "SystemKit", "WireFormat", "Templates", "Decoders", "Output", "KafkaOutput", "Config",
            "ConfigLayers", "ProcessKit", "MetricsServer", "WorkerRuntime",
        ]),
        // The master's parts with a fake clock, processes and notifier (@testable import of the executable).
        .testTarget(name: "MasterTests", dependencies: ["kflow-master"]),
    ]
)

// libFuzzer targets (`make fuzz`, `make fuzz-smoke`; docs/TESTING.md). Declared only when KFLOW_FUZZ=1, so
// `swift build` and `swift test` never see them: each needs `-sanitize=fuzzer` (libFuzzer). SwiftPM aliases
// an executable's `main` to `<module>_main`; each target defines that and runs libFuzzer's driver
// (Fuzz/Driver).
if Context.environment["KFLOW_FUZZ"] == "1" {
    package.targets.append(.target(name: "CFuzzDriver", path: "Fuzz/Driver"))
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["FlowModel", "SystemKit", "Output"], path: "Fuzz/Support"))
    for (name, path, uses) in [("kflow-fuzz-decoder", "Fuzz/Decoder", ["FlowModel", "Decoders", "Templates", "Output"]),
                               ("kflow-fuzz-snapshot", "Fuzz/Snapshot", ["FlowModel", "Decoders"]),
                               ("kflow-fuzz-properties", "Fuzz/Properties", ["Config", "ConfigLayers"]),
                               ("kflow-fuzz-sflow", "Fuzz/SFlow", ["FlowModel", "Decoders"])] {
        package.targets.append(.executableTarget(
            name: name, dependencies: uses.map { Target.Dependency(stringLiteral: $0) } + ["FuzzSupport", "CFuzzDriver"],
            path: path,
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
