import FlowModel
import WireFormat

// The template snapshot format: a template cache serialized so another process (a worker started on
// reload or after a crash) can import it. Every template keeps its definition exactly as it came on the
// wire, so importing replays it through the protocol's own template decoder (one code path learns a
// template, from the network or from a snapshot).
//
// All integers big-endian. Header (20 octets):
//   magic u32 "KFTS" | version u16 (2) | reserved u16 (0) | body length u32 | FNV-1a 64 of the body u64
// Body:
//   session count u32, then per session:
//     address family u8 (4, 6) | address 16 octets (IPAddress.high, .low) | port u16 | domain count u32
//     per domain: observation domain / source ID u32 | sampling interval u32 | systemInitTimeMs u64 |
//                 options refreshed (s) u32 | template count u32
//     per template: protocol u8 (10 IPFIX, 9 NetFlow v9) | flags u8 (bit 0: options template; bits 1-2:
//                   how the writer got it, `TemplateSource`, for /templates — an importer ignores it) |
//                   template ID u16 | last refreshed (s) u32 | definition length u16 | definition
//     after the domain's templates: extension count u16, then per extension (DomainExtensions.swift):
//                   kind u8 | length u16 | value
// A definition is the template record after its ID, as received: IPFIX field count, scope field count
// (options), field specifiers with enterprise numbers (RFC 7011 §3.4.1–2); v9 field count and
// (type, length) pairs, or scope and option lengths in octets then the pairs (RFC 3954 §5.2, §6.1).

/// Why a template snapshot (or the rest of it, from one entry on) was not imported.
public enum TemplateSnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(octets: Int)
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt16)
    case bodyLengthMismatch(declared: Int, available: Int)
    case checksumMismatch(declared: UInt64, computed: UInt64)
    /// An entry runs past the end of the body.
    case truncatedEntry(atOffset: Int)
    /// An entry whose values cannot be right (or a definition its protocol's decoder refused).
    case invalidEntry(atOffset: Int, reason: String)

    public var description: String {
        switch self {
        case .tooShort(let octets):
            "template snapshot of \(octets) octets is shorter than its \(TemplateSnapshot.headerLength)-octet header"
        case .badMagic(let found):
            "template snapshot magic is 0x\(String(found, radix: 16)), expected 0x\(String(TemplateSnapshot.magic, radix: 16))"
        case .unsupportedVersion(let version):
            "template snapshot version \(version) is not \(TemplateSnapshot.version)"
        case .bodyLengthMismatch(let declared, let available):
            "template snapshot declares a \(declared)-octet body but \(available) octets follow its header"
        case .checksumMismatch(let declared, let computed):
            "template snapshot checksum 0x\(String(computed, radix: 16)) differs from the declared 0x\(String(declared, radix: 16))"
        case .truncatedEntry(let offset):
            "template snapshot entry at body offset \(offset) runs past the end of the body"
        case .invalidEntry(let offset, let reason):
            "template snapshot entry at body offset \(offset): \(reason)"
        }
    }
}

/// One template as read from a snapshot.
package struct SnapshotTemplate {
    package var format: TemplateWireFormat
    package var isOptions: Bool
    package var templateID: UInt16
    package var lastRefreshedSeconds: UInt32
    /// How the writing worker got it.
    package var source: TemplateSource
    /// The template record after its ID, as received (see the format above).
    package var definition: [UInt8]
    /// Where the entry starts in the body, for error messages.
    package var offset: Int
}

/// One observation domain of one transport session as read from a snapshot.
package struct SnapshotDomain {
    package var exporter: ExporterAddress
    package var domain: UInt32
    package var samplingInterval: UInt32
    package var systemInitTimeMs: UInt64
    package var optionsRefreshedSeconds: UInt32
    package var templates: [SnapshotTemplate]
    /// The domain's other state, by kind (see `DomainExtension`), values as written.
    package var extensions: [(kind: UInt8, value: [UInt8])] = []
}

/// One template of one observation domain of one transport session: what the fleet's template topic
/// keys its messages by.
package struct TemplateKey: Hashable, Sendable {
    package var exporter: ExporterAddress
    package var domain: UInt32
    package var templateID: UInt16

    package init(exporter: ExporterAddress, domain: UInt32, templateID: UInt16) {
        self.exporter = exporter
        self.domain = domain
        self.templateID = templateID
    }
}

package enum TemplateSnapshot {
    package static let magic: UInt32 = 0x4B46_5453  // "KFTS"
    package static let version: UInt16 = 2
    package static let headerLength = 20
    package static let optionsFlag: UInt8 = 1
    package static let sourceShift: UInt8 = 1
    package static let sourceMask: UInt8 = 0b110
    /// Octets of each entry before its contents (see the format above), for `TemplateCache.snapshotSize`.
    package static let sessionEntryLength = 1 + 16 + 2 + 4
    package static let domainEntryLength = 4 + 4 + 8 + 4 + 4 + 2
    package static let templateEntryLength = 1 + 1 + 2 + 4 + 2

    // MARK: - Writing

    /// Serializes every cached template (expired ones included: the importer skips them by its clock),
    /// or only the one `only` names (with its domain's state): a snapshot of one template, as the fleet's
    /// template topic carries them (empty of sessions when the cache does not hold it).
    package static func write(_ cache: TemplateCache, only: TemplateKey? = nil, into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        buffer.appendBE32(magic)
        buffer.appendBE16(version)
        buffer.appendBE16(0)
        buffer.appendBE32(0)  // body length, patched below
        buffer.appendBE64(0)  // checksum, patched below
        let bodyStart = buffer.count

        let sessionCountOffset = buffer.count
        buffer.appendBE32(0)
        var sessionCount: UInt32 = 0
        let sessions: [(key: ExporterAddress, value: TransportSession)] =
            if let only { cache.sessions[only.exporter].map { [(only.exporter, $0)] } ?? [] } else { Array(cache.sessions) }
        for (exporter, session) in sessions where session.templateCount > 0 {
            buffer.append(exporter.address.family.rawValue)
            buffer.appendBE64(exporter.address.high)
            buffer.appendBE64(exporter.address.low)
            buffer.appendBE16(exporter.port)
            let domainCountOffset = buffer.count
            buffer.appendBE32(0)
            var domainCount: UInt32 = 0
            for (domain, state) in session.domains where !state.templates.isEmpty && (only == nil || only?.domain == domain) {
                let templates: [(key: UInt16, value: CachedTemplate)] =
                    if let only { state.templates[only.templateID].map { [(only.templateID, $0)] } ?? [] } else { Array(state.templates) }
                buffer.appendBE32(domain)
                buffer.appendBE32(state.samplingInterval)
                buffer.appendBE64(state.systemInitTimeMs)
                buffer.appendBE32(state.optionsRefreshedSeconds)
                buffer.appendBE32(UInt32(templates.count))
                for (id, cached) in templates {
                    buffer.append(cached.format.rawValue)
                    buffer.append((cached.plan.isOptions ? optionsFlag : 0) | cached.source.rawValue << sourceShift)
                    buffer.appendBE16(id)
                    buffer.appendBE32(cached.lastRefreshedSeconds)
                    buffer.appendBE16(UInt16(truncatingIfNeeded: cached.plan.definition.count))
                    buffer.append(contentsOf: cached.plan.definition)
                }
                writeExtensions(of: state, into: &buffer)
                domainCount += 1
            }
            buffer.patchBE32(domainCount, at: domainCountOffset)
            sessionCount += 1
        }
        buffer.patchBE32(sessionCount, at: sessionCountOffset)

        let bodyLength = buffer.count - bodyStart
        buffer.patchBE32(UInt32(truncatingIfNeeded: bodyLength), at: 8)
        let checksum = buffer.withUnsafeBytes { Self.checksum(UnsafeRawBufferPointer(rebasing: $0[bodyStart...])) }
        buffer.patchBE64(checksum, at: 12)
    }

    private static func writeExtensions(of state: DomainState, into buffer: inout [UInt8]) {
        let countOffset = buffer.count
        buffer.appendBE16(0)
        var count: UInt16 = 0
        for row in DomainExtension.all {
            let length = row.encodedLength(state)
            guard length > 0, length <= Int(UInt16.max) else { continue }
            buffer.append(row.kind)
            buffer.appendBE16(UInt16(length))
            let start = buffer.count
            row.write(state, &buffer)
            // A row that wrote other than it announced would shift every entry after it: drop its value.
            guard buffer.count - start == length else {
                buffer.removeSubrange((start - DomainExtension.entryHeaderLength)...)
                continue
            }
            count += 1
        }
        buffer.patchBE16(count, at: countOffset)
    }

    /// The octets `writeExtensions` appends for `state`.
    package static func extensionsLength(of state: DomainState) -> Int {
        var size = 2
        for row in DomainExtension.all {
            let length = row.encodedLength(state)
            if length > 0, length <= Int(UInt16.max) { size += DomainExtension.entryHeaderLength + length }
        }
        return size
    }

    // MARK: - Reading

    /// Checks the header and checksum, then reads entries until the end or the first bad one. The
    /// entries before a bad one are returned with the error: each stands on its own.
    package static func read(_ bytes: UnsafeRawBufferPointer) -> (domains: [SnapshotDomain], error: TemplateSnapshotError?) {
        guard bytes.count >= headerLength else { return ([], .tooShort(octets: bytes.count)) }
        let foundMagic = bytes.readBE32(at: 0)
        guard foundMagic == magic else { return ([], .badMagic(found: foundMagic)) }
        let foundVersion = bytes.readBE16(at: 4)
        guard foundVersion == version else { return ([], .unsupportedVersion(foundVersion)) }
        let bodyLength = Int(bytes.readBE32(at: 8))
        let available = bytes.count - headerLength
        // Exactly: a longer buffer is as suspect as a shorter one.
        guard bodyLength == available else {
            return ([], .bodyLengthMismatch(declared: bodyLength, available: available))
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[headerLength...])
        let declared = bytes.readBE64(at: 12)
        let computed = checksum(body)
        guard declared == computed else { return ([], .checksumMismatch(declared: declared, computed: computed)) }

        var reader = SnapshotReader(body)
        var domains: [SnapshotDomain] = []
        guard let sessionCount = reader.u32() else { return ([], .truncatedEntry(atOffset: 0)) }
        for _ in 0..<sessionCount {
            let sessionOffset = reader.position
            guard let familyRaw = reader.u8(), let high = reader.u64(), let low = reader.u64(),
                let port = reader.u16(), let domainCount = reader.u32()
            else { return (domains, .truncatedEntry(atOffset: sessionOffset)) }
            guard let family = IPAddress.Family(rawValue: familyRaw), family != .none else {
                return (domains, .invalidEntry(atOffset: sessionOffset, reason: "address family \(familyRaw)"))
            }
            let exporter = ExporterAddress(address: IPAddress(high: high, low: low, family: family), port: port)
            for _ in 0..<domainCount {
                let domainOffset = reader.position
                guard let domain = reader.u32(), let samplingInterval = reader.u32(),
                    let systemInitTimeMs = reader.u64(), let optionsRefreshed = reader.u32(),
                    let templateCount = reader.u32()
                else { return (domains, .truncatedEntry(atOffset: domainOffset)) }
                var entry = SnapshotDomain(
                    exporter: exporter, domain: domain, samplingInterval: samplingInterval,
                    systemInitTimeMs: systemInitTimeMs, optionsRefreshedSeconds: optionsRefreshed, templates: [])
                for _ in 0..<templateCount {
                    switch readTemplate(&reader) {
                    case .success(let template): entry.templates.append(template)
                    case .failure(let error):
                        domains.append(entry)
                        return (domains, error)
                    }
                }
                let extensionsOffset = reader.position
                guard let extensionCount = reader.u16() else {
                    domains.append(entry)
                    return (domains, .truncatedEntry(atOffset: extensionsOffset))
                }
                for _ in 0..<extensionCount {
                    let offset = reader.position
                    guard let kind = reader.u8(), let length = reader.u16(), let value = reader.bytes(Int(length)) else {
                        domains.append(entry)
                        return (domains, .truncatedEntry(atOffset: offset))
                    }
                    entry.extensions.append((kind, Array(value)))
                }
                domains.append(entry)
            }
        }
        guard reader.position == body.count else {
            return (domains, .invalidEntry(atOffset: reader.position, reason: "\(body.count - reader.position) octets after the last session"))
        }
        return (domains, nil)
    }

    private static func readTemplate(_ reader: inout SnapshotReader) -> Result<SnapshotTemplate, TemplateSnapshotError> {
        let offset = reader.position
        guard let formatRaw = reader.u8(), let flags = reader.u8(), let templateID = reader.u16(),
            let lastRefreshed = reader.u32(), let definitionLength = reader.u16(),
            let definition = reader.bytes(Int(definitionLength))
        else { return .failure(.truncatedEntry(atOffset: offset)) }
        guard let format = TemplateWireFormat(rawValue: formatRaw) else {
            return .failure(.invalidEntry(atOffset: offset, reason: "protocol \(formatRaw)"))
        }
        guard flags & ~(optionsFlag | sourceMask) == 0,
            let source = TemplateSource(rawValue: (flags & sourceMask) >> sourceShift)
        else {
            return .failure(.invalidEntry(atOffset: offset, reason: "flags 0x\(String(flags, radix: 16))"))
        }
        guard templateID >= 256 else {
            return .failure(.invalidEntry(atOffset: offset, reason: "template ID \(templateID) below 256"))
        }
        let isOptions = flags & optionsFlag != 0
        guard let expected = lengthByItsCounts(of: definition, format: format, isOptions: isOptions),
            expected == definition.count
        else {
            return .failure(
                .invalidEntry(atOffset: offset, reason: "a \(definition.count)-octet definition of template \(templateID) is not one template record"))
        }
        return .success(
            SnapshotTemplate(
                format: format, isOptions: isOptions, templateID: templateID, lastRefreshedSeconds: lastRefreshed,
                source: source, definition: Array(definition), offset: offset))
    }

    /// The length the definition's own counts give it, or nil when it is too short to say. Replaying a
    /// definition with octets to spare would read them as a second template record: it must fit exactly.
    private static func lengthByItsCounts(
        of definition: UnsafeRawBufferPointer, format: TemplateWireFormat, isOptions: Bool
    ) -> Int? {
        guard definition.count >= 2 else { return nil }
        switch (format, isOptions) {
        case (.netFlowV9, false):
            return 2 + 4 * Int(definition.readBE16(at: 0))
        case (.netFlowV9, true):
            guard definition.count >= 4 else { return nil }
            return 4 + Int(definition.readBE16(at: 0)) + Int(definition.readBE16(at: 2))
        case (.ipfix, _):
            let fieldCount = Int(definition.readBE16(at: 0))
            var cursor = isOptions ? 4 : 2
            for _ in 0..<fieldCount {
                guard definition.count - cursor >= 4 else { return nil }
                let isEnterprise = definition.readBE16(at: cursor) & InformationElement.enterpriseBit != 0
                cursor += isEnterprise ? 8 : 4
            }
            return cursor
        }
    }

    /// FNV-1a, 64 bits: every step is a bijection of the state, so any change confined to one octet
    /// (a flipped bit) always changes the result.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}

/// Reads big-endian integers from a snapshot body; every read returns nil when too few octets are left.
private struct SnapshotReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func u8() -> UInt8? {
        guard bytes.count - position >= 1 else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16? {
        guard bytes.count - position >= 2 else { return nil }
        defer { position += 2 }
        return bytes.readBE16(at: position)
    }

    mutating func u32() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        defer { position += 4 }
        return bytes.readBE32(at: position)
    }

    mutating func u64() -> UInt64? {
        guard bytes.count - position >= 8 else { return nil }
        defer { position += 8 }
        return bytes.readBE64(at: position)
    }

    mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard bytes.count - position >= count else { return nil }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }
}

extension [UInt8] {
    mutating func appendBE16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    mutating func appendBE32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func appendBE64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    fileprivate mutating func patchBE16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    fileprivate mutating func patchBE32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { self[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * index)) }
    }

    fileprivate mutating func patchBE64(_ value: UInt64, at offset: Int) {
        for index in 0..<8 { self[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * index)) }
    }
}
