import Foundation
import Testing
@testable import FlowModel
@testable import Output

#if canImport(Glibc)
import Glibc
#endif

/// Independent references for the output tests: glibc's inet_ntop for addresses, Foundation's JSON parser
/// for the encoder's bytes, a seeded generator for reproducible random records.
enum OutputReference {
    /// The address as glibc writes it. (glibc writes ::/96 "IPv4-compatible" addresses in mixed notation,
    /// which RFC 5952 does not recommend; tests that compare with it avoid that deprecated shape.)
    static func ntop(_ address: IPAddress) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch address.family {
        case .none: return "0.0.0.0"
        case .v4:
            var raw = in_addr(s_addr: address.v4Value.bigEndian)
            _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
        case .v6:
            var raw = (address.high.bigEndian, address.low.bigEndian)
            _ = withUnsafeBytes(of: &raw) { inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses text with inet_pton into an `IPAddress`.
    static func pton(_ text: String) -> IPAddress? {
        var raw: (UInt64, UInt64) = (0, 0)
        if text.contains(":") {
            guard withUnsafeMutableBytes(of: &raw, { inet_pton(AF_INET6, text, $0.baseAddress) }) == 1 else { return nil }
            return IPAddress(high: UInt64(bigEndian: raw.0), low: UInt64(bigEndian: raw.1), family: .v6)
        }
        var v4 = in_addr()
        guard inet_pton(AF_INET, text, &v4) == 1 else { return nil }
        return IPAddress(v4: UInt32(bigEndian: v4.s_addr))
    }

    static func v6(_ groups: [UInt16]) -> IPAddress {
        precondition(groups.count == 8)
        let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return IPAddress(high: high, low: low, family: .v6)
    }

    /// Bytes → JSON object, failing the test when the bytes are not one JSON object.
    static func object(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any] {
        do {
            let value = try JSONSerialization.jsonObject(with: Data(bytes))
            if let object = value as? [String: Any] { return object }
            Issue.record("not a JSON object: \(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
        } catch {
            Issue.record("invalid JSON (\(error)): \(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
        }
        return [:]
    }

    /// The keys of a flat JSON object in the order they appear in the text.
    static func keyOrder(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        let pattern = try! NSRegularExpression(pattern: #""([a-z_]+)":"#)
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }
    }
}

/// Encodes one record with a fresh buffer and returns the bytes.
func encodeToBytes(_ record: FlowRecord, fields: OutputFields = []) -> [UInt8] {
    let encoder = KFlowJSONEncoder(fields: fields)
    let buffer = OutputBuffer(capacity: encoder.maxRecordBytes)
    #expect(encoder.append(record, to: buffer), "a record must fit a buffer of maxRecordBytes")
    return Array(buffer.bytes)
}
