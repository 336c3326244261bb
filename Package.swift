// swift-tools-version: 6.1
import PackageDescription

// librdkafka >= 2.1.1 is built by scripts/setup.sh and found through pkg-config (the Makefile sets
// PKG_CONFIG_PATH); it is linked statically so the binaries need no librdkafka at run time.
let package = Package(
    name: "kflow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kflow-master", targets: ["kflow-master"]),
        .executable(name: "kflow-worker", targets: ["kflow-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C shims, each small and on its own.
        .systemLibrary(name: "CRdKafka", pkgConfig: "kflow-rdkafka"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd"),
        .target(name: "CKflowShims"),

        .target(
            name: "Shared",
            dependencies: [
                "CRdKafka", "CKflowShims",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The per-record path is measured (Benchmarks/, docs/BENCHMARKS.md); runtime exclusivity
            // checks cost several percent there and guard nothing the debug build's tests don't.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "kflow-master",
            dependencies: [
                "Shared", "CSystemd", "CKflowShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "kflow-worker", dependencies: ["Shared", "CKflowShims"]),
        // Decode + JSON encode without Kafka, flows/s on one core (issue: speed).
        .executableTarget(name: "kflow-microbench", dependencies: ["Shared"], path: "Benchmarks/Microbench"),
        .testTarget(name: "SharedTests", dependencies: ["Shared"]),
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
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["Shared"], path: "Fuzz/Support"))
    for (name, path) in [("kflow-fuzz-decoder", "Fuzz/Decoder"), ("kflow-fuzz-snapshot", "Fuzz/Snapshot"),
                         ("kflow-fuzz-properties", "Fuzz/Properties")] {
        package.targets.append(.executableTarget(
            name: name, dependencies: ["Shared", "FuzzSupport", "CFuzzDriver"], path: path,
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
