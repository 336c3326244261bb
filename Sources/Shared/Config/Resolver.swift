import FlowModel
import KafkaOutput
import Output
import CRdKafka

#if canImport(Glibc)
import Glibc
#endif

/// Turns the layered string values into typed settings, collecting every problem rather than
/// stopping at the first, so `--check-config` can list them all.
package struct Resolver {
    package typealias Issue = ConfigurationError.Issue

    let lookup: any SettingLookup
    let outputFieldNames: Set<String>?
    package var issues: [Issue]
    /// Java-client-only `kafka.props.*` entries that were left out (KFlow configurations may carry them).
    package var ignoredKafkaProperties: [(key: String, source: ConfigurationSource)] = []
    private var sources: [String: ConfigurationSource] = [:]

    package init(lookup: any SettingLookup, outputFieldNames: Set<String>?, issues: [Issue]) {
        self.lookup = lookup
        self.outputFieldNames = outputFieldNames
        self.issues = issues
    }

    /// The configuration, or nil when a value is missing or invalid (then `issues` says why).
    package mutating func resolve(checkingWithLibrdkafka: Bool, teardown: KafkaConfiguration.VerificationTeardown) -> KflowConfiguration? {
        var configuration = KflowConfiguration()
        for key in ConfigurationKey.allCases {
            switch key.setting {
            case .integer(let path, let range):
                configuration[keyPath: path] = integer(key, in: range)
            case .port(let path, let range, let problem):
                configuration[keyPath: path] = value(key, problem: problem) { UInt16(exactly: Self.integer($0, in: range) ?? -1) }
            case .address(let path):
                configuration[keyPath: path] = value(key, problem: "is not an IPv4 or IPv6 address literal", parse: Self.addressLiteral)
            case .topic(let path):
                configuration[keyPath: path] = value(key, problem: "is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -, not . or ..)", parse: Self.topicName)
            case .optionalTopic(let path):
                configuration[keyPath: path] = value(key, problem: "is neither empty nor a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -, not . or ..)") {
                    $0.isEmpty ? "" : Self.topicName($0)
                }
            case .choice(let path, let words):
                configuration[keyPath: path] = value(key, problem: "is not one of \(words.joined(separator: ", "))") {
                    words.contains($0.lowercased()) ? $0.lowercased() : nil
                }
            case .name(let path):
                configuration[keyPath: path] = value(key, problem: "is not a name (up to 200 of a-z A-Z 0-9 . _ - :)", parse: Self.name)
            case .logLevel:
                configuration.logLevel = value(key, problem: "is not one of debug, info, notice, warning, error") {
                    KflowConfiguration.LogLevel(rawValue: $0.lowercased())
                }
            case .directory(let path):
                configuration[keyPath: path] = value(key, problem: "is not an absolute directory path (or empty)") {
                    $0.isEmpty || ($0.hasPrefix("/") && !$0.utf8.contains(0)) ? $0 : nil
                }
            case .messageKey:
                configuration.kafkaKey = value(key, problem: "is not one of none, exporter, exporter-domain, exporter:N (N = 1-\(MessageKey.maxSpread)), flow, flow-symmetric") {
                    MessageKey(parsing: $0)
                }
            case .allowList:
                configuration.serverAllow = list(key, empty: .everyone) { text throws(AddressPrefix.ParseError) in try AddressAllowList(parsing: text) }
            case .outputFields: configuration.outputFields = outputFields()
            case .kafkaProperties: configuration.kafkaProperties = kafkaProperties(checkingWithLibrdkafka: checkingWithLibrdkafka, teardown: teardown)
            case .biflow:
                configuration.outputBiflow = value(key, problem: "is not one of split, forward") {
                    KflowConfiguration.BiflowMode(rawValue: $0.lowercased())
                }
            case .boolean(let path):
                configuration[keyPath: path] = value(key, problem: "is not true or false") {
                    switch $0.lowercased() {
                    case "true": true
                    case "false": false
                    default: nil
                    }
                }
            case .samplingOverrides:
                configuration.samplingOverride = list(key, empty: .none) { text throws(AddressPrefix.ParseError) in try SamplingOverrideList(parsing: text) }
            case .customFields: configuration.outputCustomFields = customFields()
            }
        }
        guard issues.isEmpty else { return nil }
        configuration.sources = sources
        return configuration
    }

    // MARK: - Typed values

    /// The value of `key` through `parse`; on failure records `problem` and returns a placeholder
    /// (never used: `resolve` returns nil once there is an issue).
    private mutating func value<Value: Placeholder>(
        _ key: ConfigurationKey, problem: String, parse: (String) -> Value?
    ) -> Value {
        guard let found = lookup.find(key.rawValue) else {
            issues.append(Issue(key: key.rawValue, value: nil, problem: "has no value", source: .builtInDefault))
            return .placeholder
        }
        let text = found.value.trimmingBlanks()
        guard let parsed = parse(text) else {
            issues.append(Issue(key: key.rawValue, value: SecretKeys.masked(found.value, forKey: key.rawValue), problem: problem, source: found.source))
            return .placeholder
        }
        sources[key.rawValue] = found.source
        return parsed
    }

    private mutating func integer(_ key: ConfigurationKey, in range: ClosedRange<Int>) -> Int {
        value(key, problem: "is not a whole number from \(range.lowerBound) to \(range.upperBound)") { Self.integer($0, in: range) }
    }

    /// A list of `server.allow` or `sampling.override` through `parse`; the issue names the entry that is
    /// wrong, and `empty` stands in.
    private mutating func list<List>(
        _ key: ConfigurationKey, empty: List, _ parse: (String) throws(AddressPrefix.ParseError) -> List
    ) -> List {
        guard let found = lookup.find(key.rawValue) else { return empty }
        do throws(AddressPrefix.ParseError) {
            let list = try parse(found.value)
            sources[key.rawValue] = found.source
            return list
        } catch {
            issues.append(Issue(key: key.rawValue, value: found.value, problem: error.problem, source: found.source))
            return empty
        }
    }

    /// `output.field.NAME = [PEN/]IE[:type]`, by name; NAME must not be a KFlow key or an `output.fields` name.
    private mutating func customFields() -> [CustomField] {
        let prefix = ConfigurationKey.outputFieldPrefix
        var fields: [CustomField] = []
        for key in lookup.keys(under: prefix).sorted() {
            guard let found = lookup.find(key) else { continue }
            let name = String(key.dropFirst(prefix.count))
            do throws(CustomFieldError) {
                if outputFieldNames?.contains(name) == true {
                    throw CustomFieldError(problem: "names the field '\(name)', which output.fields already offers")
                }
                fields.append(try CustomField(name: name, parsing: found.value.trimmingBlanks()))
                sources[key] = found.source
            } catch {
                issues.append(Issue(key: key, value: found.value, problem: error.problem, source: found.source))
            }
        }
        if fields.count > CustomField.maxCount {
            issues.append(Issue(
                key: prefix + "*", value: nil, problem: "are \(fields.count) fields; at most \(CustomField.maxCount) may be chosen",
                source: sources[prefix + (fields.last?.name ?? "")] ?? .builtInDefault))
        }
        return fields
    }

    private static func integer(_ text: String, in range: ClosedRange<Int>) -> Int? {
        guard let number = Int(text), range.contains(number) else { return nil }
        return number
    }

    private static func addressLiteral(_ text: String) -> String? {
        var storage = in6_addr()
        let valid = text.withCString { pointer in
            inet_pton(AF_INET, pointer, &storage) == 1 || inet_pton(AF_INET6, pointer, &storage) == 1
        }
        return valid ? text : nil
    }

    /// A `node.id`: what a topic name may hold, and ':' (the default is hostname:port).
    private static func name(_ text: String) -> String? {
        text.utf8.count <= 200 && isTopicText(text, alsoAllowing: ":") ? text : nil
    }

    /// Only a-z A-Z 0-9 . _ - (Kafka's topic characters), and `extra`.
    private static func isTopicText(_ text: String, alsoAllowing extra: Unicode.Scalar? = nil) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-" || scalar == extra
        }
    }

    /// Kafka's own rule for topic names.
    private static func topicName(_ text: String) -> String? {
        guard (1...249).contains(text.utf8.count), text != ".", text != ".." else { return nil }
        return isTopicText(text) ? text : nil
    }

    private mutating func outputFields() -> [String] {
        let key = ConfigurationKey.outputFields.rawValue
        guard let found = lookup.find(key) else { return [] }
        var fields: [String] = []
        for name in found.value.split(separator: ",").map({ String($0).trimmingBlanks() }) where !name.isEmpty {
            if let known = outputFieldNames, !known.contains(name) {
                issues.append(Issue(
                    key: key, value: found.value,
                    problem: "names unknown output field '\(name)' (known: \(known.sorted().joined(separator: ", ")))",
                    source: found.source))
            } else if !fields.contains(name) {
                fields.append(name)
            }
        }
        sources[key] = found.source
        return fields
    }

    /// The effective librdkafka properties, lowest layer first (see `KflowConfiguration.kafkaProperties`);
    /// an empty value removes the property.
    private mutating func kafkaProperties(
        checkingWithLibrdkafka: Bool, teardown: KafkaConfiguration.VerificationTeardown
    ) -> [(key: String, value: String)] {
        let prefix = ConfigurationKey.kafkaPropsPrefix
        var found: [(key: String, entry: FoundSetting)] = []
        for key in lookup.kafkaPropertyKeys {
            guard let entry = lookup.find(key) else { continue }
            sources[key] = entry.source
            if JavaProducerProperties.clientOnly.contains(String(key.dropFirst(prefix.count))) {
                ignoredKafkaProperties.append((key, entry.source))
                continue
            }
            if !entry.value.isEmpty { found.append((key, entry)) }
        }
        found.sort { lhs, rhs in
            (-lhs.entry.layerIndex, lhs.entry.position, lhs.key) < (-rhs.entry.layerIndex, rhs.entry.position, rhs.key)
        }
        let properties = found.map { (key: String($0.key.dropFirst(prefix.count)), value: $0.entry.value) }
        var refused = false
        for (index, property) in properties.enumerated() {
            guard let reason = KafkaConfiguration.refusal(of: property.key) else { continue }
            refused = true
            issues.append(Issue(
                key: found[index].key, value: SecretKeys.masked(found[index].entry.value, forKey: found[index].key),
                problem: "is refused: this property \(reason), which kflow does not allow from a configuration",
                source: found[index].entry.source))
        }
        guard checkingWithLibrdkafka, !refused else { return properties }
        let rejections = Self.librdkafkaRejections(properties)
        for (index, message) in rejections {
            let key = found[index].key
            issues.append(Issue(
                key: key, value: SecretKeys.masked(found[index].entry.value, forKey: key),
                problem: "is refused by librdkafka: \(message)", source: found[index].entry.source))
        }
        // Each property is fine alone: now the whole configuration, as a worker's producer would get it.
        if rejections.isEmpty {
            do throws(KafkaError) {
                try KafkaConfiguration.verify(properties: properties.map { (name: $0.key, value: $0.value) }, teardown: teardown)
            } catch {
                issues.append(Self.combinationIssue(error, found: found))
            }
        }
        return properties
    }

    /// The issue for a configuration librdkafka refuses as a whole, attributed to the property its
    /// message names (librdkafka's messages start with the property, e.g. "ssl.ca.location failed: ...").
    private static func combinationIssue(_ error: KafkaError, found: [(key: String, entry: FoundSetting)]) -> Issue {
        let message: String
        switch error {
        case .producerCreationFailed(let text), .invalidProperty(_, let text), .topicCreationFailed(_, let text): message = text
        case .refusedProperty(_, let reason): message = reason
        }
        let prefix = ConfigurationKey.kafkaPropsPrefix
        // The longest name that the message mentions, so "ssl.key.location" wins over "ssl.key".
        let named = found.filter { message.containsBytes(of: String($0.key.dropFirst(prefix.count))) }
            .max { $0.key.count < $1.key.count }
        if let named {
            return Issue(
                key: named.key, value: SecretKeys.masked(named.entry.value, forKey: named.key),
                problem: "is refused by librdkafka with the other kafka.props.* settings: \(message)",
                source: named.entry.source)
        }
        return Issue(
            key: "kafka.props.*", value: nil,
            problem: "together are refused by librdkafka: \(message)", source: found.last?.entry.source ?? .builtInDefault)
    }

    /// librdkafka's verdict on each property (name known, value well-formed), set in order on a scratch
    /// configuration that is then thrown away.
    private static func librdkafkaRejections(_ properties: [(key: String, value: String)]) -> [(index: Int, message: String)] {
        guard let conf = rd_kafka_conf_new() else { return [] }
        defer { rd_kafka_conf_destroy(conf) }
        var rejections: [(index: Int, message: String)] = []
        var message = [CChar](repeating: 0, count: 512)
        for (index, property) in properties.enumerated() {
            let result = rd_kafka_conf_set(conf, property.key, property.value, &message, message.count)
            if result != RD_KAFKA_CONF_OK {
                rejections.append((index, String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
            }
        }
        return rejections
    }
}

/// Java producer settings with no librdkafka counterpart and no bearing on security or delivery. A KFlow
/// configuration may set them (they went to the Java producer); kflow leaves them out with a notice
/// instead of refusing to start. Java-only TLS and SASL settings (truststores, JAAS) are not in this
/// list: librdkafka refuses them with a pointer to its own names, and running without them would be unsafe.
enum JavaProducerProperties {
    static let clientOnly: Set<String> = [
        "key.serializer", "value.serializer", "buffer.memory", "max.block.ms", "partitioner.class",
        "interceptor.classes", "metric.reporters", "metrics.num.samples", "metrics.recording.level",
        "metrics.sample.window.ms", "auto.include.jmx.reporter", "partitioner.ignore.keys",
        "partitioner.adaptive.partitioning.enable", "partitioner.availability.timeout.ms",
    ]
}

/// A stand-in value for a setting that failed validation, so all settings can be checked in one pass.
private protocol Placeholder { static var placeholder: Self { get } }
extension String: Placeholder { static var placeholder: String { "" } }
extension UInt16: Placeholder { static var placeholder: UInt16 { 0 } }
extension Int: Placeholder { static var placeholder: Int { 0 } }
extension Bool: Placeholder { static var placeholder: Bool { false } }
extension KflowConfiguration.LogLevel: Placeholder { static var placeholder: Self { .info } }
extension MessageKey: Placeholder { static var placeholder: Self { .none } }
extension KflowConfiguration.BiflowMode: Placeholder { static var placeholder: Self { .split } }

extension String {
    /// Without the blanks Java's Properties keeps at the end of a value (a common accident in files).
    fileprivate func trimmingBlanks() -> String {
        let blanks: Set<Unicode.Scalar> = [" ", "\t", "\u{0C}", "\r", "\n"]
        let scalars = unicodeScalars.drop { blanks.contains($0) }.reversed().drop { blanks.contains($0) }.reversed()
        return String(String.UnicodeScalarView(scalars))
    }
}

extension KflowConfiguration {
    package func source(of key: ConfigurationKey) -> ConfigurationSource { sources[key.rawValue] ?? .builtInDefault }
}
