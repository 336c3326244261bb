import ArgumentParser
import Logging
import SystemKit
import KafkaOutput
import Config
import ConfigLayers

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// kflow-master's command line: where the configuration comes from, plus the checks an operator runs
/// before (re)starting the service. Everything else is a setting (see docs/CONFIGURATION.md).
struct KflowMasterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kflow-master",
        abstract: "Collects IPFIX and NetFlow v9/v5 over UDP and writes KFlow JSON records to Kafka.",
        discussion: """
            Settings come from, lowest to highest: built-in defaults (--print-reference), the \
            configuration file, KFLOW_* environment variables (KFLOW_SERVER_PORT=4739 sets server.port, \
            KFLOW_KAFKA_PROPS_ACKS=all sets kafka.props.acks), and the command line.
            """,
        version: "kflow \(KflowVersion.string) (librdkafka \(librdkafkaVersion))"
    )

    /// sysexits' EX_CONFIG: systemd and scripts can tell a bad configuration from a crash.
    static let configurationErrorStatus: Int32 = 78

    @Option(
        name: [.customShort("c"), .customLong("config")],
        help: ArgumentHelp(
            "Java .properties configuration file (default: $KFLOW_CONFIG, else \(ConfigurationSources.defaultFilePath) if it exists).",
            valueName: "file"))
    var configFile: String?

    @Option(
        name: .customShort("D", allowingJoined: true),
        help: ArgumentHelp("Set any setting, as KFlow did: -Dapp.server.port=4739, -Dapp.kafka.props.acks=all.", valueName: "app.key=value"))
    var definitions: [String] = []

    // Named options take text, not numbers, so a bad value gets the same message (naming the key and
    // this argument) as it would from a file or the environment.
    @Option(name: .customLong("server-port"), help: ArgumentHelp("Sets server.port.", valueName: "port"))
    var serverPort: String?

    @Option(name: .customLong("server-threads"), help: ArgumentHelp("Sets server.threads (0 = one worker per CPU).", valueName: "n"))
    var serverThreads: String?

    @Option(name: .customLong("kafka-topic"), help: ArgumentHelp("Sets kafka.topic.", valueName: "topic"))
    var kafkaTopic: String?

    @Option(name: .customLong("kafka-bootstrap-servers"), help: ArgumentHelp("Sets kafka.props.bootstrap.servers.", valueName: "host:port,..."))
    var kafkaBootstrapServers: String?

    @Option(name: .customLong("metrics-port"), help: ArgumentHelp("Sets metrics.port (0 disables metrics).", valueName: "port"))
    var metricsPort: String?

    @Flag(name: .customLong("check-config"), help: "Validate the configuration, print 'configuration OK' or every problem to stderr, and exit (0 = OK, 78 = invalid).")
    var checkConfig = false

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration, each value preceded by its source (secrets masked), and exit.")
    var printConfig = false

    @Flag(name: .customLong("print-reference"), help: "Print the built-in defaults as a commented .properties file and exit.")
    var printReference = false

    /// ArgumentParser reads `-Dapp.key=value` as an unknown option (the `=` defeats its joined short
    /// form), so each joined -D is split into `-D` `app.key=value` before parsing.
    static func main() {
        main(separatingJoinedDefinitions(Array(CommandLine.arguments.dropFirst())))
    }

    static func separatingJoinedDefinitions(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var optionsEnded = false
        for argument in arguments {
            if argument == "--" { optionsEnded = true }
            if !optionsEnded, argument.hasPrefix("-D"), argument.count > 2 {
                result += ["-D", String(argument.dropFirst(2))]
            } else {
                result.append(argument)
            }
        }
        return result
    }

    func run() throws {
        if printReference {
            print(ReferenceConfiguration.text, terminator: "")
            return
        }
        let (overrides, definitionIssues) = commandLineOverrides()
        let sources = ConfigurationSources(
            configFile: configFile, environment: ProcessInfo.processInfo.environment, commandLine: overrides)
        var issues = definitionIssues
        var loaded: (configuration: KflowConfiguration, notices: [String])?
        do {
            loaded = try sources.loadWithNotices()
        } catch {
            issues += error.issues
        }
        guard let loaded, issues.isEmpty else {
            for issue in issues { Self.printToStandardError(issue.description) }
            throw ExitCode(Self.configurationErrorStatus)
        }
        if printConfig {
            print(Self.printableConfiguration(loaded.configuration), terminator: "")
            return
        }
        if checkConfig {
            for notice in loaded.notices { Self.printToStandardError("notice: \(notice)") }
            Self.printToStandardError("configuration OK")
            return
        }
        let logger = Logger(label: "kflow-master") { label in
            SDDaemonLogHandler(label: label, level: loaded.configuration.logLevel.loggerLevel)
        }
        for notice in loaded.notices { logger.notice("\(notice)") }
        // Reloads re-read the sources in the running master, whose loop must not wait for librdkafka.
        var reloadSources = sources
        reloadSources.kafkaCheckTeardown = .background
        let status = MasterMain.run(sources: reloadSources, configuration: loaded.configuration)
        if status != 0 { throw ExitCode(status) }
    }

    /// The command-line layer: -D definitions in the order given, then the named options (so
    /// `--server-port` wins over `-Dapp.server.port`); and every malformed -D, to report alongside
    /// the problems of the rest of the configuration.
    private func commandLineOverrides() -> (overrides: [CommandLineOverride], issues: [ConfigurationError.Issue]) {
        var overrides: [CommandLineOverride] = []
        var issues: [ConfigurationError.Issue] = []
        for definition in definitions {
            do {
                overrides.append(try CommandLineOverride.define(definition))
            } catch {
                issues += error.issues
            }
        }
        let named: [(value: String?, key: String, argument: String)] = [
            (serverPort, "server.port", "--server-port"),
            (serverThreads, "server.threads", "--server-threads"),
            (kafkaTopic, "kafka.topic", "--kafka-topic"),
            (kafkaBootstrapServers, "kafka.props.bootstrap.servers", "--kafka-bootstrap-servers"),
            (metricsPort, "metrics.port", "--metrics-port"),
        ]
        for option in named {
            if let value = option.value {
                overrides.append(CommandLineOverride(key: option.key, value: value, argument: option.argument))
            }
        }
        return (overrides, issues)
    }

    /// `key=value` lines (what a .properties file would say), each after a comment naming its source.
    static func printableConfiguration(_ configuration: KflowConfiguration) -> String {
        var text = "# kflow \(KflowVersion.string) effective configuration (secrets masked)\n"
        for entry in configuration.effectiveEntries() {
            text += "# from \(entry.source)\n"
            text += PropertiesFormat.line(key: entry.key, value: entry.value) + "\n"
        }
        return text
    }

    private static func printToStandardError(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
