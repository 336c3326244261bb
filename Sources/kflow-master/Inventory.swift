import FlowModel
import SystemKit
import WireFormat
import Templates
import ProcessKit

/// /exporters and /templates: what the live workers know, as JSON, read from their shared memory — the
/// exporter table of each segment and the template snapshot each worker publishes in its exchange. The
/// master reads snapshots (the format workers write for each other); it never sees a packet.
/// Output is bounded: at most `maxExporters` exporters and `maxTemplates` templates, then
/// `"truncated": true`.
enum Inventory {
    /// One live worker's shared memory.
    struct Worker {
        let slot: Int
        let segment: WorkerSegment
        let exchange: TemplateExchange
    }

    static let maxExporters = 20_000
    static let maxTemplates = 20_000

    private struct SessionKey: Hashable, Comparable {
        let address: IPAddress
        let port: UInt16
        static func < (a: Self, b: Self) -> Bool {
            (a.address.family.rawValue, a.address.high, a.address.low, a.port) < (b.address.family.rawValue, b.address.high, b.address.low, b.port)
        }
    }

    /// The workers' snapshots, read once per request (a snapshot that cannot be read whole is skipped).
    private static func snapshots(_ workers: [Worker]) -> [(slot: Int, domains: [SnapshotDomain])] {
        workers.compactMap { worker in
            guard let bytes = worker.exchange.read(), !bytes.isEmpty else { return nil }
            return (worker.slot, bytes.withUnsafeBytes { TemplateSnapshot.read($0).domains })
        }
    }

    // MARK: - /exporters

    /// Per exporter session (address, source port), merged over the workers that hold it.
    static func exportersJSON(_ workers: [Worker]) -> String {
        struct Merged {
            var datagrams: UInt64 = 0, flows: UInt64 = 0, unknownTemplateSets: UInt64 = 0
            var firstSeen: UInt32 = 0, lastSeen: UInt32 = 0
            var templates: UInt32 = 0
            var domains: Set<UInt32> = []
            var heardBy: [Int] = []
            var heldBy: [Int] = []
            /// Per domain, the values other per-domain state adds (sampling now; sequence state to come).
            var domainState: [UInt32: [(String, String)]] = [:]
        }
        var sessions: [SessionKey: Merged] = [:]
        var truncated = false
        for worker in workers {
            for e in worker.segment.readExporters() ?? [] {
                let key = SessionKey(address: e.address, port: e.port)
                if sessions[key] == nil, sessions.count >= maxExporters {
                    truncated = true
                    continue
                }
                var m = sessions[key, default: Merged()]
                m.datagrams &+= e.datagrams
                m.flows &+= e.flows
                m.unknownTemplateSets &+= e.unknownTemplateSets
                if e.heard {
                    m.firstSeen = m.firstSeen == 0 ? e.firstSeenSeconds : min(m.firstSeen, e.firstSeenSeconds)
                    m.lastSeen = max(m.lastSeen, e.lastSeenSeconds)
                    m.heardBy.append(worker.slot)
                }
                m.templates = max(m.templates, e.templateCount)
                m.domains.formUnion(e.domains)
                m.heldBy.append(worker.slot)
                sessions[key] = m
            }
        }
        // Every domain a worker holds templates for, with its options-derived state.
        for (_, domains) in snapshots(workers) {
            for d in domains {
                let key = SessionKey(address: d.exporter.address, port: d.exporter.port)
                guard var m = sessions[key] else { continue }
                m.domains.insert(d.domain)
                if d.samplingInterval != 0, m.domainState[d.domain] == nil {
                    m.domainState[d.domain] = [("sampling_interval", String(d.samplingInterval))]
                }
                sessions[key] = m
            }
        }
        var json = JSONText()
        json.raw("{\"exporters\":[")
        for (index, (key, m)) in sessions.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { json.raw(",") }
            json.raw("{\"address\":"); json.string(key.address.unmapped.description)
            json.raw(",\"port\":\(key.port),\"heard\":\(!m.heardBy.isEmpty)")
            json.raw(",\"first_seen\":\(m.firstSeen == 0 ? "null" : String(m.firstSeen))")
            json.raw(",\"last_seen\":\(m.lastSeen == 0 ? "null" : String(m.lastSeen))")
            json.raw(",\"datagrams\":\(m.datagrams),\"flows\":\(m.flows),\"unknown_template_sets\":\(m.unknownTemplateSets)")
            json.raw(",\"templates\":\(m.templates),\"domains\":[")
            for (i, domain) in m.domains.sorted().enumerated() {
                if i > 0 { json.raw(",") }
                json.raw("{\"id\":\(domain)")
                for (name, value) in m.domainState[domain] ?? [] { json.raw(",\"\(name)\":\(value)") }
                json.raw("}")
            }
            json.raw("],\"workers\":\(m.heardBy.sorted()),\"held_by\":\(m.heldBy.sorted())}")
        }
        json.raw("],\"truncated\":\(truncated)}\n")
        return json.text
    }

    // MARK: - /templates

    /// Per exporter session: its templates with field lists, age and how the node got them.
    static func templatesJSON(_ workers: [Worker], nowSeconds: UInt32) -> String {
        struct TemplateKey: Hashable, Comparable {
            let domain: UInt32
            let id: UInt16
            static func < (a: Self, b: Self) -> Bool { (a.domain, a.id) < (b.domain, b.id) }
        }
        struct Held {
            var template: SnapshotTemplate
            var sources: [(slot: Int, source: TemplateSource)]
        }
        var sessions: [SessionKey: [TemplateKey: Held]] = [:]
        var count = 0
        var truncated = false
        for (slot, domains) in snapshots(workers) {
            for d in domains {
                let session = SessionKey(address: d.exporter.address, port: d.exporter.port)
                for t in d.templates {
                    let key = TemplateKey(domain: d.domain, id: t.templateID)
                    if var held = sessions[session]?[key] {
                        held.sources.append((slot, t.source))
                        if t.lastRefreshedSeconds > held.template.lastRefreshedSeconds { held.template = t }
                        sessions[session, default: [:]][key] = held
                    } else if count < maxTemplates {
                        sessions[session, default: [:]][key] = Held(template: t, sources: [(slot, t.source)])
                        count += 1
                    } else {
                        truncated = true
                    }
                }
            }
        }
        var json = JSONText()
        json.raw("{\"now\":\(nowSeconds),\"sessions\":[")
        for (index, (session, templates)) in sessions.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { json.raw(",") }
            json.raw("{\"exporter\":"); json.string(session.address.unmapped.description)
            json.raw(",\"port\":\(session.port),\"templates\":[")
            for (i, (key, held)) in templates.sorted(by: { $0.key < $1.key }).enumerated() {
                let t = held.template
                if i > 0 { json.raw(",") }
                // The node's source: the most direct any worker has (wire before disk, fleet, sibling).
                let source = held.sources.map(\.source).min { $0.rawValue < $1.rawValue } ?? .wire
                let age = nowSeconds > t.lastRefreshedSeconds ? nowSeconds - t.lastRefreshedSeconds : 0
                json.raw("{\"domain\":\(key.domain),\"id\":\(key.id),\"protocol\":\"\(t.format == .ipfix ? "ipfix" : "netflow_v9")\"")
                json.raw(",\"options\":\(t.isOptions),\"age_seconds\":\(age),\"source\":\"\(source.name)\",\"workers\":[")
                for (w, held) in held.sources.sorted(by: { $0.slot < $1.slot }).enumerated() {
                    json.raw("\(w > 0 ? "," : ""){\"slot\":\(held.slot),\"source\":\"\(held.source.name)\"}")
                }
                json.raw("],\"fields\":[")
                for (f, field) in TemplateFields.parse(t).enumerated() {
                    if f > 0 { json.raw(",") }
                    json.raw("{\"id\":\(field.id),\"length\":\(field.length == InformationElement.variableLength ? "null" : String(field.length))")
                    if field.enterprise != 0 { json.raw(",\"enterprise\":\(field.enterprise)") }
                    if field.scope { json.raw(",\"scope\":true") }
                    json.raw(",\"name\":")
                    if field.enterprise == 0, !(field.scope && t.format == .netFlowV9), let name = InformationElement.name(of: field.id) {
                        json.string(name)
                    } else {
                        json.raw("null")
                    }
                    json.raw("}")
                }
                json.raw("]}")
            }
            json.raw("]}")
        }
        json.raw("],\"truncated\":\(truncated)}\n")
        return json.text
    }
}

/// The field specifiers of a template definition as a snapshot holds it (checked there to be exactly one
/// template record; a short one yields the fields that fit).
enum TemplateFields {
    struct Field {
        var id: UInt16
        var length: UInt16
        var enterprise: UInt32 = 0
        var scope = false
    }

    static func parse(_ template: SnapshotTemplate) -> [Field] {
        template.definition.withUnsafeBytes { d in
            var fields: [Field] = []
            func u16(_ at: Int) -> UInt16? { at + 2 <= d.count ? d.readBE16(at: at) : nil }
            switch (template.format, template.isOptions) {
            case (.netFlowV9, true):
                // Scope and option lengths in octets, then the (type, length) pairs, scopes first.
                guard let scopeOctets = u16(0), let optionOctets = u16(2) else { return [] }
                let scopes = Int(scopeOctets) / 4
                for i in 0..<(scopes + Int(optionOctets) / 4) {
                    guard let id = u16(4 + 4 * i), let length = u16(6 + 4 * i) else { break }
                    fields.append(Field(id: id, length: length, scope: i < scopes))
                }
            case (.netFlowV9, false):
                guard let count = u16(0) else { return [] }
                for i in 0..<Int(count) {
                    guard let id = u16(2 + 4 * i), let length = u16(4 + 4 * i) else { break }
                    fields.append(Field(id: id, length: length))
                }
            case (.ipfix, let isOptions):
                guard let count = u16(0) else { return [] }
                let scopes = isOptions ? Int(u16(2) ?? 0) : 0
                var cursor = isOptions ? 4 : 2
                for i in 0..<Int(count) {
                    guard let raw = u16(cursor), let length = u16(cursor + 2) else { break }
                    var field = Field(id: raw & ~InformationElement.enterpriseBit, length: length, scope: i < scopes)
                    cursor += 4
                    if raw & InformationElement.enterpriseBit != 0 {
                        guard cursor + 4 <= d.count else { break }
                        field.enterprise = d.readBE32(at: cursor)
                        cursor += 4
                    }
                    fields.append(field)
                }
            }
            return fields
        }
    }
}

/// A JSON text built by appending; strings are escaped (addresses and names need none today, but the
/// escaping keeps that from mattering).
struct JSONText {
    private(set) var text = ""

    mutating func raw(_ piece: String) { text += piece }

    mutating func string(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case _ where scalar.value < 0x20: text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
