/// Where the resolver reads the string value of a key. The master's configuration comes from layers
/// stacked in a swift-configuration `ConfigReader` (ConfigLayers); a worker's from the flat text its
/// master wrote, over the built-in defaults, through `RawLayers`, so the worker does not link
/// swift-configuration and the Foundation Essentials it brings (issue 13: footprint).
package protocol SettingLookup {
    func find(_ key: String) -> FoundSetting?
    /// Every key under `prefix` (a family: `kafka.props.`, `output.field.`) any layer sets, the bare
    /// prefix excepted (it is reported as unknown instead).
    func keys(under prefix: String) -> Set<String>
}

extension SettingLookup {
    /// Every `kafka.props.*` key any layer sets.
    var kafkaPropertyKeys: Set<String> { keys(under: ConfigurationKey.kafkaPropsPrefix) }
}

package struct FoundSetting {
    package var value: String
    package var source: ConfigurationSource
    /// 0 = the highest-precedence layer.
    package var layerIndex: Int
    /// Position of the key within the layer that answered.
    package var position: Int

    package init(value: String, source: ConfigurationSource, layerIndex: Int, position: Int) {
        self.value = value
        self.source = source
        self.layerIndex = layerIndex
        self.position = position
    }
}

/// A layer kflow parsed itself (defaults, file, command line, worker text): entries in order, a later
/// entry for the same key replacing an earlier one.
package struct RawLayer {
    package struct Entry {
        package var key: String
        package var value: String
        package var source: ConfigurationSource

        package init(key: String, value: String, source: ConfigurationSource) {
            self.key = key
            self.value = value
            self.source = source
        }
    }

    package var name: String
    package var entries: [Entry]

    package init(name: String, entries: [Entry]) {
        self.name = name
        self.entries = entries
    }

    /// The keys this layer sets in the layer's own order (a key's place is that of its last entry),
    /// and the entry that holds each key's value.
    package var orderedKeys: (keys: [String], last: [String: Entry]) {
        var last: [String: Entry] = [:]
        var keys: [String] = []
        for entry in entries {
            if last[entry.key] != nil { keys.removeAll { $0 == entry.key } }
            keys.append(entry.key)
            last[entry.key] = entry
        }
        return (keys, last)
    }
}

/// Raw layers asked in order, highest precedence first: what a worker resolves its text with.
struct RawLayers: SettingLookup {
    private let layers: [(keys: [String], last: [String: RawLayer.Entry])]

    init(_ layers: [RawLayer]) {
        self.layers = layers.map(\.orderedKeys)
    }

    func find(_ key: String) -> FoundSetting? {
        for (index, layer) in layers.enumerated() {
            guard let entry = layer.last[key] else { continue }
            return FoundSetting(value: entry.value, source: entry.source, layerIndex: index,
                                position: layer.keys.firstIndex(of: key) ?? layer.keys.count)
        }
        return nil
    }

    func keys(under prefix: String) -> Set<String> {
        Set(layers.flatMap { $0.keys.filter { $0.hasPrefix(prefix) && $0.count > prefix.count } })
    }
}

package enum ConfigurationLoader {
    package typealias Issue = ConfigurationError.Issue

    static func loadWorkerText(_ text: String) throws(ConfigurationError) -> KflowConfiguration {
        let entries: [PropertiesFormat.Entry]
        do {
            entries = try PropertiesFormat.parse(text)
        } catch {
            throw ConfigurationError(issues: [Issue(
                key: nil, value: nil, problem: error.message, source: .workerText(line: error.line))])
        }
        let worker = RawLayer(name: "worker text", entries: entries.map {
            RawLayer.Entry(key: $0.key, value: $0.value, source: .workerText(line: $0.line))
        })
        // The text lists the effective kafka.props completely (a removed default is absent on purpose).
        var defaults = referenceLayer()
        defaults.entries.removeAll { $0.key.hasPrefix(ConfigurationKey.kafkaPropsPrefix) }
        return try resolve(RawLayers([worker, defaults]), issues: unknownKeys(in: worker))
    }

    /// The built-in defaults alone.
    static func loadDefaults() throws(ConfigurationError) -> KflowConfiguration {
        try resolve(RawLayers([referenceLayer()]), issues: [])
    }

    private static func resolve(_ lookup: RawLayers, issues: [Issue]) throws(ConfigurationError) -> KflowConfiguration {
        var resolver = Resolver(lookup: lookup, outputFieldNames: nil, issues: issues)
        let configuration = resolver.resolve(checkingWithLibrdkafka: false, teardown: .wait)
        guard let configuration, resolver.issues.isEmpty else {
            throw ConfigurationError(issues: resolver.issues)
        }
        return configuration
    }

    package static func referenceLayer() -> RawLayer {
        // A syntax error here is caught by the unit test that loads the defaults; nothing to report at run time.
        let entries = (try? PropertiesFormat.parse(ReferenceConfiguration.text)) ?? []
        return RawLayer(name: "built-in defaults", entries: entries.map {
            RawLayer.Entry(key: $0.key, value: $0.value, source: .builtInDefault)
        })
    }

    /// Keys of the file or the command line that kflow does not know (`kafka.props.*` are librdkafka's).
    package static func unknownKeys(in layer: RawLayer) -> [Issue] {
        layer.entries.compactMap { entry in
            if entry.key.hasPrefix(ConfigurationKey.kafkaPropsPrefix) {
                guard entry.key.count == ConfigurationKey.kafkaPropsPrefix.count else { return nil }
                return Issue(key: entry.key, value: nil, problem: "names no librdkafka property", source: entry.source)
            }
            if entry.key.hasPrefix(ConfigurationKey.outputFieldPrefix) {
                guard entry.key.count == ConfigurationKey.outputFieldPrefix.count else { return nil }
                return Issue(key: entry.key, value: nil, problem: "names no field (output.field.NAME)", source: entry.source)
            }
            guard ConfigurationKey(key: entry.key) == nil else { return nil }
            return Issue(key: entry.key, value: nil, problem: "is not a kflow setting", source: entry.source)
        }
    }
}

extension StringProtocol {
    /// Whether `text` occurs in this string, compared byte for byte. The standard library's
    /// `contains(_: String)` lives in _StringProcessing, which (with the regex parser it brings) adds
    /// about 1 MB to a binary that otherwise does not need it (issue 13: footprint).
    func containsBytes(of text: String) -> Bool {
        let haystack = Array(utf8), needle = Array(text.utf8)
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in
            haystack[start..<(start + needle.count)].elementsEqual(needle)
        }
    }
}
