import Config
import Configuration
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension ConfigurationSources {
    public func load() throws(ConfigurationError) -> KflowConfiguration {
        try loadWithNotices().configuration
    }

    /// The configuration and what is worth logging about it without being an error (a `kafka.producers`
    /// above 1, `KFLOW_*` environment variables that name no setting).
    public func loadWithNotices() throws(ConfigurationError) -> (configuration: KflowConfiguration, notices: [String]) {
        try ConfigurationLoader.load(self)
    }
}

/// Builds a `KflowConfiguration` from layers stacked in a swift-configuration `ConfigReader`
/// (command line > environment > file > built-in defaults), which decides every value.
///
/// What swift-configuration cannot answer, done here minimally: which keys exist at all (a reader looks
/// keys up but cannot list them, and `kafka.props.*` is open-ended), and which layer answered (read from
/// the `AccessEvent` the reader reports for each lookup).
extension ConfigurationLoader {
    static func load(_ sources: ConfigurationSources) throws(ConfigurationError) -> (configuration: KflowConfiguration, notices: [String]) {
        var issues: [Issue] = []
        let defaults = referenceLayer()
        let file = fileLayer(sources.file, issues: &issues)
        let environment = environmentLayer(sources.environment)
        let commandLine = RawLayer(name: "command line", entries: sources.commandLine.map {
            RawLayer.Entry(key: $0.key, value: $0.value, source: .commandLine(argument: $0.argument))
        })
        issues += unknownKeys(in: file) + unknownKeys(in: commandLine)

        let lookup = LayeredLookup(layers: [commandLine.layer, environment.layer, file.layer, defaults.layer])
        var resolver = Resolver(lookup: lookup, outputFieldNames: sources.outputFieldNames, issues: issues)
        let configuration = resolver.resolve(checkingWithLibrdkafka: sources.checksKafkaPropertiesWithLibrdkafka, teardown: sources.kafkaCheckTeardown)
        guard let configuration, resolver.issues.isEmpty else {
            throw ConfigurationError(issues: resolver.issues)
        }
        let ignored = resolver.ignoredKafkaProperties.map {
            "\($0.key) (from \($0.source)) is a Java client setting librdkafka does not have; ignored"
        }
        return (configuration, environment.notices + ignored + notices(for: configuration))
    }

    private static func notices(for configuration: KflowConfiguration) -> [String] {
        var notices: [String] = []
        if configuration.kafkaProducers > 1 {
            notices.append(
                "kafka.producers=\(configuration.kafkaProducers) (from \(configuration.source(of: .kafkaProducers))) "
                    + "is accepted for KFlow compatibility but ignored: each kflow worker owns one producer; "
                    + "use server.threads to run more workers")
        }
        if configuration.workerStopTimeoutMilliseconds <= configuration.kafkaFlushTimeoutMilliseconds {
            notices.append(
                "worker.stop.timeout.ms=\(configuration.workerStopTimeoutMilliseconds) is not above "
                    + "kafka.flush.timeout.ms=\(configuration.kafkaFlushTimeoutMilliseconds): a stopping "
                    + "worker may be killed before its final flush ends")
        }
        return notices
    }

    // MARK: - Layers

    private static func fileLayer(_ location: ConfigFileLocation, issues: inout [Issue]) -> RawLayer {
        let path: String
        switch location {
        case .none:
            return RawLayer(name: "file", entries: [])
        case .ifPresent(let candidate):
            guard access(candidate, F_OK) == 0 else { return RawLayer(name: "file", entries: []) }
            path = candidate
        case .required(let candidate, _):
            path = candidate
        }
        let text: String
        switch readTextFile(path) {
        case .success(let contents):
            text = contents
        case .failure(let error):
            let source: ConfigurationSource
            if case .required(_, let namedBy) = location { source = namedBy } else { source = .file(path: path, line: nil) }
            issues.append(Issue(key: nil, value: nil, problem: "cannot read \(path): \(error)", source: source))
            return RawLayer(name: "file", entries: [])
        }
        do {
            let entries = try PropertiesFormat.parse(text)
            return RawLayer(name: "file", entries: entries.map {
                RawLayer.Entry(key: $0.key, value: $0.value, source: .file(path: path, line: $0.line))
            })
        } catch {
            issues.append(Issue(key: nil, value: nil, problem: error.message, source: .file(path: path, line: error.line)))
            return RawLayer(name: "file", entries: [])
        }
    }

    /// `KFLOW_SERVER_PORT` is `server.port`; `KFLOW_KAFKA_PROPS_BOOTSTRAP_SERVERS` is
    /// `kafka.props.bootstrap.servers` (librdkafka names use dots only, so `_` maps back to `.`).
    private static func environmentLayer(_ environment: [String: String]) -> (layer: Layer, notices: [String]) {
        let prefix = ConfigurationSources.environmentPrefix
        let kafkaPrefix = prefix + "KAFKA_PROPS_"
        let scalarNames = Set(ConfigurationKey.scalarKeys.map { environmentName(of: $0.rawValue) })
        var keys: [String] = []
        var notices: [String] = []
        for name in environment.keys.sorted() where name.hasPrefix(prefix) && !ConfigurationSources.nonSettingVariables.contains(name) {
            if scalarNames.contains(name) {
                keys.append(String(name.dropFirst(prefix.count)).lowercased().replacing("_", with: "."))
            } else if name.hasPrefix(kafkaPrefix), name.count > kafkaPrefix.count,
                name.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            {
                keys.append(ConfigurationKey.kafkaPropsPrefix + name.dropFirst(kafkaPrefix.count).lowercased().replacing("_", with: "."))
            } else {
                notices.append("environment variable \(name) names no kflow setting; ignored")
            }
        }
        let provider = EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .dynamic { name, _ in
                SecretKeys.isSecret(name.dropFirst(prefix.count).lowercased().replacing("_", with: "."))
            }
        ).prefixKeys(with: "kflow")
        let layer = Layer(provider: provider, keys: keys) { _, encodedKey in .environment(variable: encodedKey) }
        return (layer, notices)
    }

    static func environmentName(of key: String) -> String {
        ConfigurationSources.environmentPrefix + key.uppercased().replacing(".", with: "_")
    }

}

// MARK: - Layer plumbing

extension RawLayer {
    var layer: Layer {
        let (keys, last) = orderedKeys
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, entry) in last {
            values[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.string(entry.value), isSecret: SecretKeys.isSecret(key))
        }
        return Layer(provider: InMemoryProvider(name: name, values: values), keys: keys) { key, _ in
            last[key]?.source ?? .builtInDefault
        }
    }
}

struct Layer {
    var provider: any ConfigProvider
    /// The keys this layer sets, in the layer's own order.
    var keys: [String]
    /// Where this layer got `key` from, given the name the provider looked it up by.
    var source: (_ key: String, _ encodedKey: String) -> ConfigurationSource
}

/// Records the last access event, to learn which provider answered a lookup.
private final class LookupRecorder: AccessReporter, Sendable {
    private let last = Mutex<AccessEvent?>(nil)

    func report(_ event: AccessEvent) { last.withLock { $0 = event } }

    func take() -> AccessEvent? { last.withLock { event in defer { event = nil }; return event } }
}

struct LayeredLookup: SettingLookup {
    /// Highest precedence first.
    let layers: [Layer]
    private let reader: ConfigReader
    private let recorder = LookupRecorder()

    init(layers: [Layer]) {
        self.layers = layers
        reader = ConfigReader(providers: layers.map(\.provider), accessReporter: recorder)
    }

    func find(_ key: String) -> FoundSetting? {
        _ = recorder.take()
        guard let value = reader.string(forKey: ConfigKey(key), isSecret: SecretKeys.isSecret(key)) else { return nil }
        // Providers are asked in order until one has the key, so the answering one is the last asked.
        let answered = recorder.take()?.providerResults.enumerated().first { _, result in
            (try? result.result.get().value) != nil
        }
        guard let (index, result) = answered, let lookup = try? result.result.get() else {
            return FoundSetting(value: value, source: .builtInDefault, layerIndex: layers.count - 1, position: 0)
        }
        let layer = layers[index]
        return FoundSetting(
            value: value,
            source: layer.source(key, lookup.encodedKey),
            layerIndex: index,
            position: layer.keys.firstIndex(of: key) ?? layer.keys.count
        )
    }

    /// Every key under `prefix` (a family) any layer sets, the bare prefix excepted.
    func keys(under prefix: String) -> Set<String> {
        Set(layers.flatMap { $0.keys.filter { $0.hasPrefix(prefix) && $0.count > prefix.count } })
    }
}

// MARK: - Files

private enum ReadFailure: Error, CustomStringConvertible {
    case system(Int32)
    var description: String {
        switch self {
        case .system(let code): String(cString: strerror(code))
        }
    }
}

/// The file's text: UTF-8, or ISO-8859-1 when it is not valid UTF-8 (what Java's Properties.load reads).
private func readTextFile(_ path: String) -> Result<String, ReadFailure> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(.system(errno)) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return .failure(.system(errno))
        }
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    if let text = String(validating: bytes, as: UTF8.self) { return .success(text) }
    return .success(String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })))
}
