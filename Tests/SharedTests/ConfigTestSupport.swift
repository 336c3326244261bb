import Foundation
@testable import Config
import ConfigLayers

/// A `.properties` file in a fresh temporary directory, removed on deinit.
final class TemporaryPropertiesFile {
    let directory: URL
    let path: String

    init(_ text: String, name: String = "kflow.properties") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kflow-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// Sources with nothing but what the test gives: no /etc/kflow file, no process environment.
func testSources(
    file: String? = nil, environment: [String: String] = [:], commandLine: [CommandLineOverride] = []
) -> ConfigurationSources {
    ConfigurationSources(
        file: file.map { .required(path: $0, namedBy: .commandLine(argument: "--config")) } ?? .none,
        environment: environment,
        commandLine: commandLine
    )
}

/// The issues a load reports, or [] when it succeeds.
func loadIssues(_ sources: ConfigurationSources) -> [ConfigurationError.Issue] {
    do {
        _ = try sources.load()
        return []
    } catch {
        return error.issues
    }
}

extension KflowConfiguration {
    func effectiveEntry(_ key: String) -> EffectiveEntry? { effectiveEntries().first { $0.key == key } }
}
