import FlowModel
import WireFormat
import Templates

/// The messages of the fleet's template topic (`templates.topic`): every node publishes the templates
/// its exporters sent it, and decodes data of an exporter that moved to it with another node's.
///
/// Key (text, for compaction): `address/port/domain/templateID`, e.g. `192.0.2.1/2055/0/256`.
/// Value: magic "KFTM" u32 | version u16 (1) | node ID length u8 | node ID (UTF-8) | a template
/// snapshot (Templates/TemplateSnapshot.swift) holding that one template and its domain's state.
/// A null value (tombstone) says the template expired at its publisher: compaction may drop the key.
public enum FleetTemplateMessage {
    static let magic: UInt32 = 0x4B46_544D  // "KFTM"
    static let version: UInt16 = 1
    /// The largest value accepted: a 64 KiB template record with its snapshot and envelope around it.
    public static let maxValueBytes = 70_000

    public static func key(exporter: ExporterAddress, domain: UInt32, templateID: UInt16) -> String {
        "\(exporter.address)/\(exporter.port)/\(domain)/\(templateID)"
    }

    static func value(node: String, snapshot: [UInt8]) -> [UInt8] {
        let name = Array(node.utf8.prefix(255))
        var value: [UInt8] = [0x4B, 0x46, 0x54, 0x4D, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(name.count)]
        value += name
        value += snapshot
        return value
    }

    /// The node and the snapshot of a value, or nil when it is not one of ours (wrong magic or version,
    /// truncated, over `maxValueBytes`).
    public static func parse(_ value: UnsafeRawBufferPointer) -> (node: String, snapshot: UnsafeRawBufferPointer)? {
        guard value.count <= maxValueBytes, value.count >= 7, value.readBE32(at: 0) == magic,
            value.readBE16(at: 4) == version
        else { return nil }
        let nameLength = Int(value[6])
        guard value.count >= 7 + nameLength else { return nil }
        let node = String(decoding: UnsafeRawBufferPointer(rebasing: value[7..<(7 + nameLength)]), as: UTF8.self)
        return (node, UnsafeRawBufferPointer(rebasing: value[(7 + nameLength)...]))
    }
}

/// What a worker has published to the template topic, so it publishes changes only: a template new
/// here or redefined, one refreshed `republishSeconds` after its last publish (a node starting later
/// must not take it as expired), and a tombstone for one that expired here.
public struct FleetTemplateLedger {
    struct Published {
        var refreshedSeconds: UInt32
        var definition: [UInt8]
    }

    /// A message to produce: `value` nil is a tombstone.
    public struct Message {
        public let key: String
        public let value: [UInt8]?
    }

    public let node: String
    private var published: [TemplateKey: Published] = [:]
    private var scannedGeneration: UInt64?
    private var lastScanSeconds: UInt32 = 0
    private var snapshot: [UInt8] = []

    public init(node: String) { self.node = node }

    /// Scans the decoder's templates when they changed or every `republishSeconds / 4`, and returns what
    /// to publish. Only templates its exporters sent this worker are published, never imported ones.
    public mutating func changes(in decoder: FlowDecoder, nowSeconds: UInt32) -> [Message] {
        let cache = decoder.cache
        let republish = max(cache.configuration.templateLifetimeSeconds / 4, 1)
        let due = nowSeconds &- lastScanSeconds >= max(republish / 4, 1)
        guard cache.generation != scannedGeneration || due else { return [] }
        scannedGeneration = cache.generation
        lastScanSeconds = nowSeconds
        var messages: [Message] = []
        var seen = Set<TemplateKey>()
        for (exporter, session) in cache.sessions where session.templateCount > 0 {
            for (domain, state) in session.domains {
                for (id, cached) in state.templates where cached.source == .wire {
                    let key = TemplateKey(exporter: exporter, domain: domain, templateID: id)
                    seen.insert(key)
                    if let held = published[key], held.definition == cached.plan.definition,
                        cached.lastRefreshedSeconds &- held.refreshedSeconds < republish
                    {
                        continue
                    }
                    TemplateSnapshot.write(cache, only: key, into: &snapshot)
                    published[key] = Published(refreshedSeconds: cached.lastRefreshedSeconds, definition: cached.plan.definition)
                    messages.append(Message(
                        key: FleetTemplateMessage.key(exporter: exporter, domain: domain, templateID: id),
                        value: FleetTemplateMessage.value(node: node, snapshot: snapshot)))
                }
            }
        }
        // Gone from the cache: expired here (a tombstone), or evicted or now only imported (forgotten
        // quietly: another node may still hold it).
        for (key, held) in published where !seen.contains(key) {
            published[key] = nil
            if cache.isExpired(held.refreshedSeconds, now: nowSeconds) {
                messages.append(Message(
                    key: FleetTemplateMessage.key(exporter: key.exporter, domain: key.domain, templateID: key.templateID),
                    value: nil))
            }
        }
        return messages
    }
}
