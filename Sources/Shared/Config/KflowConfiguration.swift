import Logging

/// The effective, validated configuration of a kflow master or worker.
/// Build one with `ConfigurationSources.load()` (master) or `KflowConfiguration.parse(workerText:)` (worker).
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
    public var serverHost: String
    public var serverPort: UInt16
    /// Worker processes; 0 = one per online CPU (see `workerCount(onlineCPUs:)`).
    public var serverThreads: Int
    /// SO_RCVBUF per worker socket, in bytes.
    public var serverBufferSize: Int
    /// Datagrams per recvmmsg call.
    public var serverBatchSize: Int
    /// Microseconds a worker lets datagrams gather after a short read before it reads again; 0 = none.
    public var serverReceiveWaitMicroseconds: Int

    public var kafkaTopic: String
    /// KFlow's producer count, accepted for compatibility only: each kflow worker owns one producer.
    public var kafkaProducers: Int
    /// Everything under `kafka.props.`, prefix removed, for `rd_kafka_conf_set` in this order: defaults
    /// first, then file, environment and command line entries, so a higher layer's value is set last
    /// and wins even over a librdkafka alias of a default (e.g. compression.codec over compression.type).
    public var kafkaProperties: [(key: String, value: String)]
    public var kafkaFlushTimeoutMilliseconds: Int

    /// Optional JSON fields to add, in the order given, without duplicates.
    public var outputFields: [String]
    /// 1 = one JSON object per Kafka message; N > 1 = up to N newline-separated objects per message.
    public var outputBatchRecords: Int

    public var templatesLifetimeSeconds: Int
    public var templatesMaxPerSession: Int
    public var templatesMaxTotal: Int
    public var exportersMax: Int

    public var metricsHost: String
    /// 0 = no metrics endpoint.
    public var metricsPort: UInt16

    public var workerHeartbeatTimeoutMilliseconds: Int
    public var workerStopTimeoutMilliseconds: Int
    public var logLevel: LogLevel
    /// Senders whose datagrams are decoded; empty = all (see `AddressAllowList`).
    public var serverAllow: AddressAllowList

    public var templatesMaxFields: Int
    public var templatesMaxBytes: Int
    public var templatesMaxBytesPerSession: Int
    public var exportersMaxPerAddress: Int

    /// Where each effective key's value came from; not part of equality (the same settings from a
    /// different layer are the same configuration).
    var sources: [String: ConfigurationSource] = [:]

    /// The built-in defaults alone.
    public static var defaults: KflowConfiguration {
        do {
            return try ConfigurationSources(file: .none, environment: [:], commandLine: []).load()
        } catch {
            // Only an edit to ReferenceConfiguration.text can get here, and a unit test loads it.
            preconditionFailure("the built-in reference configuration is invalid: \(error)")
        }
    }

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
/// The reference text must name exactly these keys (a unit test checks), so a switch over this enum
/// is where parsing and printing of each key cannot be forgotten.
enum ConfigurationKey: String, CaseIterable {
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

    static let kafkaPropsPrefix = "kafka.props."

    /// The known keys with a single value (all but the `kafka.props.` family).
    static let scalarKeys: [ConfigurationKey] = allCases.filter { $0 != .kafkaProps }

    init?(key: String) {
        guard !key.hasPrefix(Self.kafkaPropsPrefix) else { return nil }
        self.init(rawValue: key)
    }
}

extension KflowConfiguration {
    /// The flat effective settings in reference order, normalised (e.g. `server.port=4739`), unmasked.
    func flatEntries() -> [(key: String, value: String)] {
        var entries: [(key: String, value: String)] = []
        for key in ConfigurationKey.allCases {
            if key == .kafkaProps {
                entries += kafkaProperties.map { (ConfigurationKey.kafkaPropsPrefix + $0.key, $0.value) }
            } else {
                entries.append((key.rawValue, flatValue(key)))
            }
        }
        return entries
    }

    private func flatValue(_ key: ConfigurationKey) -> String {
        switch key {
        case .serverHost: serverHost
        case .serverPort: String(serverPort)
        case .serverThreads: String(serverThreads)
        case .serverBufferSize: String(serverBufferSize)
        case .serverBatchSize: String(serverBatchSize)
        case .serverReceiveWait: String(serverReceiveWaitMicroseconds)
        case .kafkaTopic: kafkaTopic
        case .kafkaProducers: String(kafkaProducers)
        case .kafkaFlushTimeout: String(kafkaFlushTimeoutMilliseconds)
        case .kafkaProps: ""
        case .outputFields: outputFields.joined(separator: ",")
        case .outputBatchRecords: String(outputBatchRecords)
        case .templatesLifetime: String(templatesLifetimeSeconds)
        case .templatesMaxPerSession: String(templatesMaxPerSession)
        case .templatesMaxTotal: String(templatesMaxTotal)
        case .exportersMax: String(exportersMax)
        case .metricsHost: metricsHost
        case .metricsPort: String(metricsPort)
        case .workerHeartbeatTimeout: String(workerHeartbeatTimeoutMilliseconds)
        case .workerStopTimeout: String(workerStopTimeoutMilliseconds)
        case .logLevel: logLevel.rawValue
        case .serverAllow: serverAllow.description
        case .templatesMaxFields: String(templatesMaxFields)
        case .templatesMaxBytes: String(templatesMaxBytes)
        case .templatesMaxBytesPerSession: String(templatesMaxBytesPerSession)
        case .exportersMaxPerAddress: String(exportersMaxPerAddress)
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
enum SecretKeys {
    static let mask = "********"

    /// librdkafka keys that hold credentials without saying "password" or "secret".
    private static let credentialKeys: Set<String> = [
        "sasl.oauthbearer.config", "ssl.key.pem", "sasl.jaas.config",
    ]

    static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        if lowered.contains("password") || lowered.contains("secret") { return true }
        let librdkafkaKey = lowered.hasPrefix(ConfigurationKey.kafkaPropsPrefix)
            ? String(lowered.dropFirst(ConfigurationKey.kafkaPropsPrefix.count)) : lowered
        return credentialKeys.contains(librdkafkaKey)
    }

    static func masked(_ value: String, forKey key: String) -> String {
        isSecret(key) ? mask : value
    }
}
