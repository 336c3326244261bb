/// Where a configuration value came from, precise enough for a person to go and change it.
public enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    case builtInDefault
    /// A `.properties` file; `line` is nil for problems with the file as a whole.
    case file(path: String, line: Int?)
    /// An environment variable such as `KFLOW_SERVER_PORT`.
    case environment(variable: String)
    /// A command-line argument such as `--server-port` or `-Dapp.server.port`.
    case commandLine(argument: String)
    /// The flat text a master hands its worker (see `KflowConfiguration.workerText()`).
    case workerText(line: Int)

    public var description: String {
        switch self {
        case .builtInDefault: "built-in default"
        case .file(let path, let line?): "\(path) line \(line)"
        case .file(let path, nil): path
        case .environment(let variable): "environment \(variable)"
        case .commandLine(let argument): "command line \(argument)"
        case .workerText(let line): "worker configuration line \(line)"
        }
    }
}

/// Every problem found while loading a configuration (not just the first), each naming the key,
/// the offending value and the layer it came from, e.g.
/// `server.port: 'abc' is not a port number (1-65535) (from /etc/kflow/kflow.properties line 3)`.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Issue: Sendable, Equatable, CustomStringConvertible {
        /// The setting concerned; nil for problems with a whole source (an unreadable file).
        public var key: String?
        /// The value as given (masked when the key holds a secret); nil when there is none.
        public var value: String?
        /// What is wrong, phrased to follow `'value' `.
        public var problem: String
        public var source: ConfigurationSource

        public init(key: String?, value: String?, problem: String, source: ConfigurationSource) {
            self.key = key
            self.value = value
            self.problem = problem
            self.source = source
        }

        public var description: String {
            var text = key.map { "\($0): " } ?? ""
            if let value { text += "'\(value)' " }
            return text + "\(problem) (from \(source))"
        }
    }

    public var issues: [Issue]

    public init(issues: [Issue]) {
        self.issues = issues
    }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
