import FlowModel
import Logging
import Output

/// The effective, validated configuration of a kflow master or worker.
/// Build one with `ConfigurationSources.load()` (master, module ConfigLayers) or `KflowConfiguration.parse(workerText:)` (worker).
/// Each setting's stored property is named by its row in `ConfigurationKey.setting`; the initial values
/// are placeholders the resolver overwrites (the built-in defaults are in `ReferenceConfiguration`).
public struct KflowConfiguration: Sendable {
    public enum LogLevel: String, Sendable, CaseIterable {
        case debug, info, notice, warning, error

        public var loggerLevel: Logger.Level {
            switch self {
            case .debug: .debug
            case .info: .info
            case .notice: .notice
            case .warning: .warning
            case .error: .error
            }
        }
    }

    /// IPv4 or IPv6 literal the UDP sockets bind to ("::" = dual-stack).
    public var serverHost = ""
    public var serverPort: UInt16 = 0
    /// Worker processes; 0 = one per online CPU (see `workerCount(onlineCPUs:)`).
    public var serverThreads = 0
    /// SO_RCVBUF per worker socket, in bytes.
    public var serverBufferSize = 0
    /// Datagrams per recvmmsg call.
    public var serverBatchSize = 0
    /// Microseconds a worker lets datagrams gather after a short read before it reads again; 0 = none.
    public var serverReceiveWaitMicroseconds = 0

    public var kafkaTopic = ""
    /// KFlow's producer count, accepted for compatibility only: each kflow worker owns one producer.
    public var kafkaProducers = 0
    /// Everything under `kafka.props.`, prefix removed, for `rd_kafka_conf_set` in this order: defaults
    /// first, then file, environment and command line entries, so a higher layer's value is set last
    /// and wins even over a librdkafka alias of a default (e.g. compression.codec over compression.type).
    public var kafkaProperties: [(key: String, value: String)] = []
    public var kafkaFlushTimeoutMilliseconds = 0

    /// Optional JSON fields to add, in the order given, without duplicates.
    public var outputFields: [String] = []
    /// 1 = one JSON object per Kafka message; N > 1 = up to N newline-separated objects per message.
    public var outputBatchRecords = 0

    public var templatesLifetimeSeconds = 0
    public var templatesMaxPerSession = 0
    public var templatesMaxTotal = 0
    public var exportersMax = 0

    public var metricsHost = ""
    /// 0 = no metrics endpoint.
    public var metricsPort: UInt16 = 0

    public var workerHeartbeatTimeoutMilliseconds = 0
    public var workerStopTimeoutMilliseconds = 0
    public var logLevel = LogLevel.info
    /// Senders whose datagrams are decoded; empty = all (see `AddressAllowList`).
    public var serverAllow = AddressAllowList.everyone

    public var templatesMaxFields = 0
    public var templatesMaxBytes = 0
    public var templatesMaxBytesPerSession = 0
    public var exportersMaxPerAddress = 0
    /// The Kafka message key of each record (`kafka.key`).
    public var kafkaKey = MessageKey.none
    /// Where each worker keeps its templates across restarts; empty = not kept.
    public var templatesStateDirectory = ""
    /// UDP port of the sFlow v5 listener (a second SO_REUSEPORT group on `serverHost`); 0 = none. sFlow
    /// sent to `serverPort` is decoded too.
    public var sflowPort: UInt16 = 0
    /// `hash` (the kernel's 4-tuple hash) or `round-robin` (every datagram to any worker).
    public var serverBalance = ""
    /// Kafka topic the node's templates are shared through with the fleet; empty = not shared.
    public var templatesTopic = ""
    /// This node's name in the template topic; empty = hostname:server.port.
    public var nodeID = ""

    /// What a biflow record (RFC 5103 reverse counters, NSEL initiator/responder) becomes.
    public enum BiflowMode: String, Sendable, CaseIterable {
        /// Two flows, the reverse one with addresses, ports and interfaces swapped (when it has counters).
        case split
        /// Only the forward direction (before kflow split biflows).
        case forward
    }
    public var outputBiflow = BiflowMode.split

    /// `sampling.default`: the rate of flows whose exporter told none; 0 = none.
    public var samplingDefault = 0
    /// `sampling.override`: rates forced per exporter block.
    public var samplingOverride = SamplingOverrideList.none
    /// `output.renormalize`: multiply bytes and pkts by the sampling rate in use.
    public var outputRenormalize = false
    /// `output.field.NAME = [PEN/]IE[:type]`, ordered by name (at most `CustomField.maxCount`).
    public var outputCustomFields: [CustomField] = []

    /// Where each effective key's value came from; not part of equality (the same settings from a
    /// different layer are the same configuration).
    var sources: [String: ConfigurationSource] = [:]

    /// The built-in defaults alone.
    public static var defaults: KflowConfiguration {
        do {
            return try ConfigurationLoader.loadDefaults()
        } catch {
            // Only an edit to ReferenceConfiguration.text can get here, and a unit test loads it.
            preconditionFailure("the built-in reference configuration is invalid: \(error)")
        }
    }

    /// The librdkafka properties a worker's producer gets: `kafka.props.*`, preceded by
    /// `partitioner=murmur2_random` when records have a key and the configuration names no partitioner,
    /// so a key lands on the partition Java clients (and Kafka Streams) choose for it.
    public var producerProperties: [(name: String, value: String)] {
        let configured = kafkaProperties.map { (name: $0.key, value: $0.value) }
        guard kafkaKey != .none, !kafkaProperties.contains(where: { $0.key == "partitioner" }) else { return configured }
        return [(name: "partitioner", value: "murmur2_random")] + configured
    }
    /// The port of the separate sFlow listener: nil when sflow.port is 0 or server.port (sFlow arriving
    /// there is decoded anyway).
    public var sflowListenerPort: UInt16? { sflowPort != 0 && sflowPort != serverPort ? sflowPort : nil }

    /// The number of workers to run for `server.threads` on a machine with `onlineCPUs` CPUs.
    public func workerCount(onlineCPUs: Int) -> Int {
        serverThreads > 0 ? serverThreads : max(1, onlineCPUs)
    }
}

extension KflowConfiguration: Equatable {
    public static func == (lhs: KflowConfiguration, rhs: KflowConfiguration) -> Bool {
        lhs.flatEntries().elementsEqual(rhs.flatEntries()) { $0.key == $1.key && $0.value == $1.value }
    }
}

/// The settings kflow knows, in reference order. `kafkaProps` stands for every `kafka.props.*` key.
/// With `setting` this is the one list of settings: validation (`Resolver`), the flat form (`--print-config`,
/// the worker's pipe) and the docs checks (DocsTablesTests) follow from it. The reference text must name
/// exactly these keys (a unit test checks). Adding a setting: a case and its `setting` row here, its
/// stored property, its default and comment in `ReferenceConfiguration.text`, and its rows in README.md
/// and docs/CONFIGURATION.md (both checked).
package enum ConfigurationKey: String, CaseIterable {
    case serverHost = "server.host"
    case serverPort = "server.port"
    case serverThreads = "server.threads"
    case serverBufferSize = "server.buffer.size"
    case serverBatchSize = "server.batch.size"
    case serverReceiveWait = "server.receive.wait.us"
    case kafkaTopic = "kafka.topic"
    case kafkaProducers = "kafka.producers"
    case kafkaFlushTimeout = "kafka.flush.timeout.ms"
    case kafkaProps = "kafka.props."
    case outputFields = "output.fields"
    case outputBatchRecords = "output.batch.records"
    case templatesLifetime = "templates.lifetime"
    case templatesMaxPerSession = "templates.max.per.session"
    case templatesMaxTotal = "templates.max.total"
    case exportersMax = "exporters.max"
    case metricsHost = "metrics.host"
    case metricsPort = "metrics.port"
    case workerHeartbeatTimeout = "worker.heartbeat.timeout.ms"
    case workerStopTimeout = "worker.stop.timeout.ms"
    case logLevel = "log.level"
    case serverAllow = "server.allow"
    case templatesMaxFields = "templates.max.fields"
    case templatesMaxBytes = "templates.max.bytes"
    case templatesMaxBytesPerSession = "templates.max.bytes.per.session"
    case exportersMaxPerAddress = "exporters.max.per.address"
    case kafkaKey = "kafka.key"
    case templatesStateDirectory = "templates.state.dir"
    case sflowPort = "sflow.port"
    case serverBalance = "server.balance"
    case templatesTopic = "templates.topic"
    case nodeID = "node.id"
    case outputBiflow = "output.biflow"
    case samplingDefault = "sampling.default"
    case samplingOverride = "sampling.override"
    case outputRenormalize = "output.renormalize"
    case outputField = "output.field."

    package static let kafkaPropsPrefix = "kafka.props."
    package static let outputFieldPrefix = "output.field."

    /// The key families: every key under the prefix is one entry of the setting.
    package static let families: [ConfigurationKey] = [.kafkaProps, .outputField]

    /// The known keys with a single value (all but the families).
    package static let scalarKeys: [ConfigurationKey] = allCases.filter { !families.contains($0) }

    /// How the docs name a key: `kafka.props.*` for a family.
    package var documentedName: String { Self.families.contains(self) ? rawValue + "*" : rawValue }

    init?(key: String) {
        guard !Self.families.contains(where: { key.hasPrefix($0.rawValue) }) else { return nil }
        self.init(rawValue: key)
    }

    /// What a setting's text may be and where its value is kept.
    enum Setting {
        /// A whole number in the range.
        case integer(WritableKeyPath<KflowConfiguration, Int>, ClosedRange<Int>)
        /// A port number in the range; `problem` says what is accepted.
        case port(WritableKeyPath<KflowConfiguration, UInt16>, ClosedRange<Int>, problem: String)
        /// An IPv4 or IPv6 literal.
        case address(WritableKeyPath<KflowConfiguration, String>)
        /// A Kafka topic name.
        case topic(WritableKeyPath<KflowConfiguration, String>)
        /// An absolute directory path, or empty.
        case directory(WritableKeyPath<KflowConfiguration, String>)
        case logLevel, allowList, outputFields, kafkaProperties, messageKey
        /// Empty, or a Kafka topic name.
        case optionalTopic(WritableKeyPath<KflowConfiguration, String>)
        /// One of the words (kept in lower case).
        case choice(WritableKeyPath<KflowConfiguration, String>, [String])
        /// Empty, or up to 200 of a-z A-Z 0-9 . _ - : (a name that goes into messages and logs).
        case name(WritableKeyPath<KflowConfiguration, String>)
        /// One of `KflowConfiguration.BiflowMode`.
        case biflow
        /// true or false.
        case boolean(WritableKeyPath<KflowConfiguration, Bool>)
        case samplingOverrides
        case customFields
    }

    var setting: Setting {
        let maxInt32 = Int(Int32.max)
        switch self {
        case .serverHost: return .address(\.serverHost)
        case .serverPort: return .port(\.serverPort, 1...65535, problem: "is not a port number (1-65535)")
        case .serverThreads: return .integer(\.serverThreads, 0...1024)
        case .serverBufferSize: return .integer(\.serverBufferSize, 1024...maxInt32)
        case .serverBatchSize: return .integer(\.serverBatchSize, 1...1024)
        case .serverReceiveWait: return .integer(\.serverReceiveWaitMicroseconds, 0...100_000)
        case .kafkaTopic: return .topic(\.kafkaTopic)
        case .kafkaProducers: return .integer(\.kafkaProducers, 1...1024)
        case .kafkaFlushTimeout: return .integer(\.kafkaFlushTimeoutMilliseconds, 0...maxInt32)
        case .kafkaProps: return .kafkaProperties
        case .outputFields: return .outputFields
        case .outputBatchRecords: return .integer(\.outputBatchRecords, 1...100_000)
        case .templatesLifetime: return .integer(\.templatesLifetimeSeconds, 1...maxInt32)
        case .templatesMaxPerSession: return .integer(\.templatesMaxPerSession, 1...maxInt32)
        case .templatesMaxTotal: return .integer(\.templatesMaxTotal, 1...maxInt32)
        case .exportersMax: return .integer(\.exportersMax, 1...maxInt32)
        case .metricsHost: return .address(\.metricsHost)
        case .metricsPort: return .port(\.metricsPort, 0...65535, problem: "is not a port number (1-65535, or 0 to disable metrics)")
        case .workerHeartbeatTimeout: return .integer(\.workerHeartbeatTimeoutMilliseconds, 100...86_400_000)
        case .workerStopTimeout: return .integer(\.workerStopTimeoutMilliseconds, 100...86_400_000)
        case .logLevel: return .logLevel
        case .serverAllow: return .allowList
        case .templatesMaxFields: return .integer(\.templatesMaxFields, 1...65535)
        case .templatesMaxBytes: return .integer(\.templatesMaxBytes, 65536...(1 << 40))
        case .templatesMaxBytesPerSession: return .integer(\.templatesMaxBytesPerSession, 65536...(1 << 40))
        case .exportersMaxPerAddress: return .integer(\.exportersMaxPerAddress, 1...maxInt32)
        case .kafkaKey: return .messageKey
        case .templatesStateDirectory: return .directory(\.templatesStateDirectory)
        case .sflowPort: return .port(\.sflowPort, 0...65535, problem: "is not a port number (1-65535, or 0 for no sFlow listener)")
        case .serverBalance: return .choice(\.serverBalance, ["hash", "round-robin"])
        case .templatesTopic: return .optionalTopic(\.templatesTopic)
        case .nodeID: return .name(\.nodeID)
        case .outputBiflow: return .biflow
        case .samplingDefault: return .integer(\.samplingDefault, 0...Int(UInt32.max))
        case .samplingOverride: return .samplingOverrides
        case .outputRenormalize: return .boolean(\.outputRenormalize)
        case .outputField: return .customFields
        }
    }

    /// The numbers a numeric setting accepts.
    var range: ClosedRange<Int>? {
        switch setting {
        case .integer(_, let range), .port(_, let range, _): range
        default: nil
        }
    }
}

extension KflowConfiguration {
    /// The flat effective settings in reference order, normalised (e.g. `server.port=4739`), unmasked.
    func flatEntries() -> [(key: String, value: String)] {
        var entries: [(key: String, value: String)] = []
        for key in ConfigurationKey.allCases {
            if key == .kafkaProps {
                entries += kafkaProperties.map { (ConfigurationKey.kafkaPropsPrefix + $0.key, $0.value) }
            } else if key == .outputField {
                entries += outputCustomFields.map { (ConfigurationKey.outputFieldPrefix + $0.name, $0.description) }
            } else {
                entries.append((key.rawValue, flatValue(key)))
            }
        }
        return entries
    }

    private func flatValue(_ key: ConfigurationKey) -> String {
        switch key.setting {
        case .integer(let path, _): String(self[keyPath: path])
        case .port(let path, _, _): String(self[keyPath: path])
        case .address(let path), .topic(let path), .directory(let path), .optionalTopic(let path), .choice(let path, _),
             .name(let path):
            self[keyPath: path]
        case .messageKey: kafkaKey.description
        case .logLevel: logLevel.rawValue
        case .allowList: serverAllow.description
        case .outputFields: outputFields.joined(separator: ",")
        case .kafkaProperties: ""
        case .biflow: outputBiflow.rawValue
        case .boolean(let path): self[keyPath: path] ? "true" : "false"
        case .samplingOverrides: samplingOverride.description
        case .customFields: ""
        }
    }

    /// One entry of `effectiveEntries()`.
    public struct EffectiveEntry: Sendable, Equatable {
        public var key: String
        /// The value, or `"********"` when the key holds a secret.
        public var value: String
        public var source: ConfigurationSource
    }

    /// Every effective setting with the layer it came from, secrets masked: what `--print-config` shows.
    public func effectiveEntries() -> [EffectiveEntry] {
        flatEntries().map { entry in
            EffectiveEntry(
                key: entry.key,
                value: SecretKeys.masked(entry.value, forKey: entry.key),
                source: sources[entry.key] ?? .builtInDefault
            )
        }
    }

    /// The flat effective settings as `.properties` lines, unmasked, for a worker's configuration pipe.
    /// `parse(workerText:)` turns it back into an equal configuration.
    public func workerText() -> String {
        flatEntries().map { PropertiesFormat.line(key: $0.key, value: $0.value) + "\n" }.joined()
    }

    /// The configuration a master wrote with `workerText()`. Known keys missing from the text take
    /// their built-in default; `kafka.props.*` come from the text alone, in its order.
    public static func parse(workerText: String) throws(ConfigurationError) -> KflowConfiguration {
        try ConfigurationLoader.loadWorkerText(workerText)
    }
}

/// Which keys hold secrets: their values never appear in `--print-config` or error messages.
package enum SecretKeys {
    static let mask = "********"

    /// librdkafka keys that hold credentials without saying "password" or "secret".
    private static let credentialKeys: Set<String> = [
        "sasl.oauthbearer.config", "ssl.key.pem", "sasl.jaas.config",
    ]

    package static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        if lowered.containsBytes(of: "password") || lowered.containsBytes(of: "secret") { return true }
        let librdkafkaKey = lowered.hasPrefix(ConfigurationKey.kafkaPropsPrefix)
            ? String(lowered.dropFirst(ConfigurationKey.kafkaPropsPrefix.count)) : lowered
        return credentialKeys.contains(librdkafkaKey)
    }

    static func masked(_ value: String, forKey key: String) -> String {
        isSecret(key) ? mask : value
    }
}
