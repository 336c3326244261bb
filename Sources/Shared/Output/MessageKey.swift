import FlowModel

/// What the Kafka message key of each record is (`kafka.key`). The key is text, so a consumer can read
/// it and a producer in any language can build the same bytes; with librdkafka's `murmur2_random`
/// partitioner a key lands on the partition a Java producer would choose for it. Fields are separated by
/// "|" (addresses may contain ":" and "."); the exporter is the datagram's source address as in "dvc".
///
/// | mode | key |
/// |---|---|
/// | `none` | no key (librdkafka's sticky partitioner) |
/// | `exporter` | `192.0.2.1` |
/// | `exporter-domain` | `192.0.2.1|256` (observation domain / source ID) |
/// | `exporter:N` | `192.0.2.1|k`, k = 0…N-1 from the direction-independent 5-tuple |
/// | `flow` | `6|10.0.0.1|443|10.0.0.2|51000` (proto, src, srcp, dst, dstp) |
/// | `flow-symmetric` | as `flow`, the lower (address, port) endpoint first: both directions share it |
public enum MessageKey: Equatable, Sendable, CustomStringConvertible {
    case none
    case exporter
    case exporterDomain
    /// One exporter spread over up to `spread` keys (hence partitions); a flow keeps one key.
    case exporterSpread(UInt16)
    case flow
    case flowSymmetric

    /// The longest key: "255|" + two IPv6 texts, two ports and separators, with the writers' overrun.
    public static let maxBytes = 3 + 1 + 2 * (TextLimits.address + 1 + 5 + 1) + TextLimits.overrun
    /// The largest N of `exporter:N`.
    public static let maxSpread = 4096

    /// `none`, `exporter`, `exporter-domain`, `exporter:N` (N = 1…4096), `flow`, `flow-symmetric`.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "none": self = .none
        case "exporter": self = .exporter
        case "exporter-domain": self = .exporterDomain
        case "flow": self = .flow
        case "flow-symmetric": self = .flowSymmetric
        case let other where other.hasPrefix("exporter:"):
            guard let n = Int(other.dropFirst("exporter:".count)), (1...Self.maxSpread).contains(n) else { return nil }
            self = .exporterSpread(UInt16(n))
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .exporter: "exporter"
        case .exporterDomain: "exporter-domain"
        case .exporterSpread(let n): "exporter:\(n)"
        case .flow: "flow"
        case .flowSymmetric: "flow-symmetric"
        }
    }

    /// Writes the record's key at `start` (room for `maxBytes` reserved); returns the end of the text.
    /// Not called for `.none`.
    @inlinable func write(_ record: borrowing FlowRecord, at start: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var cursor = TextCursor(start)
        switch self {
        case .none: break
        case .exporter:
            cursor.appendAddress(record.exporter.unmapped)
        case .exporterDomain:
            cursor.appendAddress(record.exporter.unmapped)
            cursor.append(UInt8(ascii: "|"))
            cursor.appendDecimal(record.observationDomain)
        case .exporterSpread(let n):
            cursor.appendAddress(record.exporter.unmapped)
            cursor.append(UInt8(ascii: "|"))
            cursor.appendDecimal(UInt16(truncatingIfNeeded: Self.conversationHash(record) % UInt64(n)))
        case .flow:
            Self.writeFlow(record, swapped: false, to: &cursor)
        case .flowSymmetric:
            let srcFirst = (record.src.high, record.src.low, record.srcPort) <= (record.dst.high, record.dst.low, record.dstPort)
            Self.writeFlow(record, swapped: !srcFirst, to: &cursor)
        }
        return cursor.position
    }

    @inlinable static func writeFlow(_ record: borrowing FlowRecord, swapped: Bool, to cursor: inout TextCursor) {
        cursor.appendDecimal(record.proto)
        cursor.append(UInt8(ascii: "|"))
        cursor.appendAddress(swapped ? record.dst : record.src)
        cursor.append(UInt8(ascii: "|"))
        cursor.appendDecimal(swapped ? record.dstPort : record.srcPort)
        cursor.append(UInt8(ascii: "|"))
        cursor.appendAddress(swapped ? record.src : record.dst)
        cursor.append(UInt8(ascii: "|"))
        cursor.appendDecimal(swapped ? record.srcPort : record.dstPort)
    }

    /// A hash of the 5-tuple that is the same in both directions (the endpoints are combined by addition),
    /// so every record of a conversation gets the same `exporter:N` key. Not part of the key's contract:
    /// consumers see only which of the N keys a record has.
    @inlinable static func conversationHash(_ record: borrowing FlowRecord) -> UInt64 {
        @inline(__always) func mix(_ value: UInt64) -> UInt64 {
            // The 64-bit finaliser of MurmurHash3: every input bit affects every output bit.
            var x = value
            x ^= x >> 33
            x &*= 0xFF51_AFD7_ED55_8CCD
            x ^= x >> 33
            x &*= 0xC4CE_B9FE_1A85_EC53
            x ^= x >> 33
            return x
        }
        @inline(__always) func endpoint(_ address: IPAddress, _ port: UInt16) -> UInt64 {
            mix(address.high ^ mix(address.low ^ UInt64(port)))
        }
        return mix(endpoint(record.src, record.srcPort) &+ endpoint(record.dst, record.dstPort) &+ UInt64(record.proto))
    }
}
