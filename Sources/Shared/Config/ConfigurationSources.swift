import KafkaOutput
import Output

/// One setting given on the command line, by a named option or KFlow's `-Dapp.KEY=VALUE`.
public struct CommandLineOverride: Sendable, Equatable {
    public var key: String
    public var value: String
    /// The argument as the user typed its name: `--server-port`, `-Dapp.server.port`.
    public var argument: String

    public init(key: String, value: String, argument: String) {
        self.key = key
        self.value = value
        self.argument = argument
    }

    /// KFlow's Java system-property form: `definition` is what follows `-D`, e.g. `app.server.port=4739`
    /// or `app.kafka.props.acks=all`. The value is everything after the first `=` (it may contain `=`).
    public static func define(_ definition: String) throws(ConfigurationError) -> CommandLineOverride {
        let argument = "-D" + definition
        guard let equals = definition.firstIndex(of: "=") else {
            throw ConfigurationError(issues: [Issue(
                key: nil, value: argument, problem: "is not of the form -Dapp.KEY=VALUE",
                source: .commandLine(argument: argument))])
        }
        let name = String(definition[..<equals])
        let value = String(definition[definition.index(after: equals)...])
        guard name.hasPrefix("app."), name.count > 4 else {
            throw ConfigurationError(issues: [Issue(
                key: nil, value: argument, problem: "is not of the form -Dapp.KEY=VALUE (kflow settings start with app.)",
                source: .commandLine(argument: argument))])
        }
        return CommandLineOverride(key: String(name.dropFirst(4)), value: value, argument: "-D" + name)
    }

    private typealias Issue = ConfigurationError.Issue
}

/// Which `.properties` file, if any, is the second layer.
public enum ConfigFileLocation: Sendable, Equatable {
    case none
    /// Named by the user (`-c`, `KFLOW_CONFIG`): a missing or unreadable file is an error.
    case required(path: String, namedBy: ConfigurationSource)
    /// The conventional place: read when it exists, silently skipped when it does not.
    case ifPresent(path: String)
}

/// Everything the configuration is built from. `load()` reads the file again each time it is called,
/// so the master calls it on SIGHUP to pick up an edited file.
public struct ConfigurationSources: Sendable, Equatable {
    public static let defaultFilePath = "/etc/kflow/kflow.properties"
    /// Names the config file when `-c` is not given.
    public static let configFileVariable = "KFLOW_CONFIG"
    /// Environment variables naming settings start with this (KFLOW_SERVER_PORT = server.port).
    public static let environmentPrefix = "KFLOW_"
    /// `KFLOW_*` variables that are not settings yet are kflow's own (the file, the worker executable).
    public static let nonSettingVariables: Set<String> = [configFileVariable, "KFLOW_WORKER"]

    public var file: ConfigFileLocation
    /// The process environment (only `KFLOW_*` variables are looked at).
    public var environment: [String: String]
    /// Command-line settings in the order given; a later one for the same key wins.
    public var commandLine: [CommandLineOverride]
    /// The names `output.fields` may list (by default the encoder's catalog); nil accepts any name.
    public var outputFieldNames: Set<String>? = Set(OutputFields.catalog.map(\.name))
    /// Whether to ask librdkafka to accept every `kafka.props.*` entry (name and value) while loading.
    public var checksKafkaPropertiesWithLibrdkafka = true
    /// How that check disposes of its producer (`.background` in the master, whose loop must not stall).
    public var kafkaCheckTeardown: KafkaConfiguration.VerificationTeardown = .wait

    public init(file: ConfigFileLocation, environment: [String: String], commandLine: [CommandLineOverride]) {
        self.file = file
        self.environment = environment
        self.commandLine = commandLine
    }

    /// The file is `configFile` (from `-c`) when given, else `$KFLOW_CONFIG` when set, else
    /// /etc/kflow/kflow.properties when it exists.
    public init(configFile: String?, environment: [String: String], commandLine: [CommandLineOverride]) {
        let file: ConfigFileLocation
        if let configFile {
            file = .required(path: configFile, namedBy: .commandLine(argument: "--config"))
        } else if let named = environment[Self.configFileVariable], !named.isEmpty {
            file = .required(path: named, namedBy: .environment(variable: Self.configFileVariable))
        } else {
            file = .ifPresent(path: Self.defaultFilePath)
        }
        self.init(file: file, environment: environment, commandLine: commandLine)
    }
}
