import Testing
@testable import FlowModel
@testable import Decoders

// Byte-fixture builders for the decoder tests: they write the wire formats of RFC 7011 / RFC 3954
// by hand so every test states exactly which octets it feeds the decoder.

/// Collects every emitted record.
struct CollectingSink: FlowSink {
    var records: [FlowRecord] = []
    mutating func emit(_ record: borrowing FlowRecord) { records.append(copy record) }
}

/// A big-endian byte writer.
struct Wire {
    var bytes: [UInt8] = []

    init() {}
    init(_ build: (inout Wire) -> Void) { build(&self) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xFF)) } }
    mutating func u64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xFF)) } }
    /// An unsigned integer in `length` octets (reduced-size encoding).
    mutating func uint(_ value: UInt64, length: Int) { for index in (0..<length).reversed() { bytes.append(UInt8((value >> UInt64(index * 8)) & 0xFF)) } }
    mutating func raw(_ other: [UInt8]) { bytes += other }
    mutating func zeros(_ count: Int) { bytes += [UInt8](repeating: 0, count: count) }
    mutating func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes += [a, b, c, d] }
}

/// A template field specifier: IE id, length, and an enterprise number when non-nil.
struct FieldSpec {
    var id: UInt16
    var length: UInt16
    var enterprise: UInt32? = nil
    init(_ id: UInt16, _ length: UInt16, enterprise: UInt32? = nil) {
        self.id = id
        self.length = length
        self.enterprise = enterprise
    }
}

enum IPFIX {
    static let exportTime: UInt32 = 1_700_000_000

    /// An IPFIX message with a correct length field.
    static func message(domain: UInt32 = 1, exportTime: UInt32 = exportTime, sequence: UInt32 = 0, sets: [[UInt8]]) -> [UInt8] {
        let body = sets.flatMap { $0 }
        return Wire {
            $0.u16(10)
            $0.u16(UInt16(16 + body.count))
            $0.u32(exportTime)
            $0.u32(sequence)
            $0.u32(domain)
            $0.raw(body)
        }.bytes
    }

    /// A set with a correct length field.
    static func set(_ id: UInt16, _ body: [UInt8]) -> [UInt8] {
        Wire {
            $0.u16(id)
            $0.u16(UInt16(4 + body.count))
            $0.raw(body)
        }.bytes
    }

    static func templateRecord(_ id: UInt16, _ fields: [FieldSpec]) -> [UInt8] {
        Wire {
            $0.u16(id)
            $0.u16(UInt16(fields.count))
            for field in fields { writeField(field, into: &$0) }
        }.bytes
    }

    static func optionsTemplateRecord(_ id: UInt16, scope: [FieldSpec], options: [FieldSpec]) -> [UInt8] {
        Wire {
            $0.u16(id)
            $0.u16(UInt16(scope.count + options.count))
            $0.u16(UInt16(scope.count))
            for field in scope + options { writeField(field, into: &$0) }
        }.bytes
    }

    static func templateSet(_ records: [UInt8]...) -> [UInt8] { set(2, records.flatMap { $0 }) }

    private static func writeField(_ field: FieldSpec, into wire: inout Wire) {
        wire.u16(field.enterprise == nil ? field.id : field.id | 0x8000)
        wire.u16(field.length)
        if let enterprise = field.enterprise { wire.u32(enterprise) }
    }
}

enum NetFlowV9 {
    static let unixSeconds: UInt32 = 1_700_000_000
    static let sysUptime: UInt32 = 360_000

    static func packet(count: UInt16 = 0, sysUptime: UInt32 = sysUptime, unixSeconds: UInt32 = unixSeconds, sequence: UInt32 = 0, sourceID: UInt32 = 7, flowSets: [[UInt8]]) -> [UInt8] {
        Wire {
            $0.u16(9)
            $0.u16(count)
            $0.u32(sysUptime)
            $0.u32(unixSeconds)
            $0.u32(sequence)
            $0.u32(sourceID)
            $0.raw(flowSets.flatMap { $0 })
        }.bytes
    }

    static func flowSet(_ id: UInt16, _ body: [UInt8]) -> [UInt8] { IPFIX.set(id, body) }

    static func templateRecord(_ id: UInt16, _ fields: [(UInt16, UInt16)]) -> [UInt8] {
        Wire {
            $0.u16(id)
            $0.u16(UInt16(fields.count))
            for (type, length) in fields {
                $0.u16(type)
                $0.u16(length)
            }
        }.bytes
    }

    static func optionsTemplateRecord(_ id: UInt16, scope: [(UInt16, UInt16)], options: [(UInt16, UInt16)]) -> [UInt8] {
        Wire {
            $0.u16(id)
            $0.u16(UInt16(scope.count * 4))
            $0.u16(UInt16(options.count * 4))
            for (type, length) in scope + options {
                $0.u16(type)
                $0.u16(length)
            }
        }.bytes
    }
}

extension ExporterAddress {
    static let testExporter = ExporterAddress(address: IPAddress(v4: 0xC000_0201), port: 40000)
    static func v4(_ value: UInt32, port: UInt16) -> ExporterAddress { ExporterAddress(address: IPAddress(v4: value), port: port) }
}

extension FlowDecoder {
    /// Decodes one datagram and returns what it emitted.
    func decode(_ bytes: [UInt8], from exporter: ExporterAddress = .testExporter, nowSeconds: UInt32 = 1_700_000_000) -> [FlowRecord] {
        var sink = CollectingSink()
        bytes.withUnsafeBytes { decode($0, from: exporter, nowSeconds: nowSeconds, into: &sink) }
        return sink.records
    }
}

/// 192.0.2.x etc. in host order, for readable expectations.
func ipv4(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> IPAddress { IPAddress(v4: a << 24 | b << 16 | c << 8 | d) }
