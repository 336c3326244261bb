import Foundation
import Testing
@testable import FlowModel
@testable import Output

/// The KFlow JSON encoder, judged by Foundation's JSON parser and inet_ntop rather than by its own logic.
@Suite struct OutputEncoderTests {
    static func kflowExample() -> FlowRecord {
        var record = FlowRecord()
        record.exporter = IPAddress(v4: 0xC000_0201)
        record.src = IPAddress(v4: 0x0A00_0001)
        record.dst = IPAddress(v4: 0x0A00_0002)
        record.srcPort = 443
        record.dstPort = 51000
        record.proto = 6
        record.tcpFlags = 24
        record.bytes = 1500
        record.packets = 3
        record.exportTimeMs = 1_700_000_000_000
        return record
    }

    @Test func kflowExampleIsWrittenByteForByte() {
        let expected = #"{"dvc":"192.0.2.1","src":"10.0.0.1","srcp":443,"dst":"10.0.0.2","dstp":51000,"proto":6,"flags":24,"bytes":1500,"pkts":3,"time":1700000000000}"#
        #expect(String(decoding: encodeToBytes(Self.kflowExample()), as: UTF8.self) == expected)
    }

    @Test func ipv4MappedExporterIsWrittenAsPlainIPv4() {
        var record = Self.kflowExample()
        record.exporter = IPAddress(high: 0, low: 0xFFFF_C633_6401, family: .v6)  // ::ffff:198.51.100.1
        record.src = IPAddress(high: 0, low: 0xFFFF_0A00_0001, family: .v6)  // ::ffff:10.0.0.1 stays mapped
        let object = OutputReference.object(encodeToBytes(record))
        #expect(object["dvc"] as? String == "198.51.100.1")
        #expect(object["src"] as? String == "::ffff:10.0.0.1")
    }

    @Test func zeroRecordHasAllTenFieldsAsZeroAndNoAddressAsUnspecified() {
        let bytes = encodeToBytes(FlowRecord())
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"dvc":"0.0.0.0","src":"0.0.0.0","srcp":0,"dst":"0.0.0.0","dstp":0,"proto":0,"flags":0,"bytes":0,"pkts":0,"time":0}"#)
    }

    @Test func maximumValuesAreWrittenInFull() {
        var record = FlowRecord()
        record.srcPort = .max
        record.dstPort = .max
        record.proto = .max
        record.tcpFlags = .max
        record.bytes = .max
        record.packets = .max
        record.exportTimeMs = .max
        let text = String(decoding: encodeToBytes(record), as: UTF8.self)
        #expect(text.contains(#""srcp":65535,"#) && text.contains(#""dstp":65535,"#))
        #expect(text.contains(#""proto":255,"flags":65535,"#))
        #expect(text.contains(#""bytes":18446744073709551615,"pkts":18446744073709551615,"time":18446744073709551615}"#))
        _ = OutputReference.object(encodeToBytes(record))  // still valid JSON
    }

    @Test func randomRecordsParseBackToTheirValues() throws {
        var random = SeededGenerator(seed: 42)
        func address() -> IPAddress {
            switch random.next() % 4 {
            case 0: return IPAddress(v4: UInt32(truncatingIfNeeded: random.next()))
            case 1: return IPAddress(high: 0, low: 0xFFFF_0000_0000 | random.next() & 0xFFFF_FFFF, family: .v6)
            case 2:  // sparse groups, so zero runs of every length occur
                let groups = (0..<8).map { _ in random.next() % 3 == 0 ? UInt16(truncatingIfNeeded: random.next()) : 0 }
                return OutputReference.v6(groups[0..<6].allSatisfy { $0 == 0 } ? [1] + groups.dropFirst() : groups)
            default: return IPAddress(high: random.next() | 1 << 63, low: random.next(), family: .v6)
            }
        }
        func number<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> T {
            // Small, large and extreme values alike.
            T(truncatingIfNeeded: random.next() >> (random.next() % 65 == 64 ? 0 : random.next() % 64))
        }
        for _ in 0..<3000 {
            var record = FlowRecord()
            record.exporter = IPAddress(v4: UInt32(truncatingIfNeeded: random.next()))
            record.src = address()
            record.dst = address()
            record.srcPort = number(UInt16.self)
            record.dstPort = number(UInt16.self)
            record.proto = number(UInt8.self)
            record.tcpFlags = number(UInt16.self)
            record.bytes = number(UInt64.self)
            record.packets = number(UInt64.self)
            record.exportTimeMs = number(UInt64.self)

            let bytes = encodeToBytes(record)
            let object = OutputReference.object(bytes)
            #expect(OutputReference.keyOrder(bytes) == ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"])
            #expect(object["dvc"] as? String == OutputReference.ntop(record.exporter))
            #expect(object["src"] as? String == OutputReference.ntop(record.src))
            #expect(object["dst"] as? String == OutputReference.ntop(record.dst))
            #expect(uint64(object["srcp"]) == UInt64(record.srcPort))
            #expect(uint64(object["dstp"]) == UInt64(record.dstPort))
            #expect(uint64(object["proto"]) == UInt64(record.proto))
            #expect(uint64(object["flags"]) == UInt64(record.tcpFlags))
            #expect(uint64(object["bytes"]) == record.bytes)
            #expect(uint64(object["pkts"]) == record.packets)
            #expect(uint64(object["time"]) == record.exportTimeMs)
        }
    }

    @Test func extraFieldsFollowTheTenInCatalogOrderWhenPresent() {
        var record = Self.kflowExample()
        record.flowStartMs = 1_699_999_999_000
        record.flowEndMs = 1_700_000_000_500
        record.inputInterface = 4_294_967_295
        record.outputInterface = 7
        record.srcAS = 64_512
        record.dstAS = 4_200_000_000
        record.nextHop = IPAddress(high: 0x2001_0DB8_0000_0000, low: 1, family: .v6)
        record.vlan = 4094
        record.tos = 184
        record.observationDomain = 12_345
        record.direction = 1
        record.srcMask = 24
        record.dstMask = 128
        record.samplingInterval = 1000
        record.present = [.flowStart, .flowEnd, .inputInterface, .outputInterface, .srcAS, .dstAS, .nextHop, .vlan,
                          .tos, .direction, .srcMask, .dstMask, .samplingInterval]

        let bytes = encodeToBytes(record, fields: .all)
        #expect(OutputReference.keyOrder(bytes) == ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"]
            + ["start", "end", "in_if", "out_if", "src_as", "dst_as", "nexthop", "vlan", "tos", "domain", "dir", "src_mask", "dst_mask", "sampling"])
        let object = OutputReference.object(bytes)
        #expect(uint64(object["start"]) == 1_699_999_999_000)
        #expect(uint64(object["end"]) == 1_700_000_000_500)
        #expect(uint64(object["in_if"]) == 4_294_967_295)
        #expect(uint64(object["out_if"]) == 7)
        #expect(uint64(object["src_as"]) == 64_512)
        #expect(uint64(object["dst_as"]) == 4_200_000_000)
        #expect(object["nexthop"] as? String == "2001:db8::1")
        #expect(uint64(object["vlan"]) == 4094)
        #expect(uint64(object["tos"]) == 184)
        #expect(uint64(object["domain"]) == 12_345)
        #expect(uint64(object["dir"]) == 1)
        #expect(uint64(object["src_mask"]) == 24)
        #expect(uint64(object["dst_mask"]) == 128)
        #expect(uint64(object["sampling"]) == 1000)
        // The KFlow prefix is unchanged by extra fields.
        let kflow = encodeToBytes(Self.kflowExample())
        #expect(Array(bytes.prefix(kflow.count - 1)) == Array(kflow.dropLast()))
    }

    @Test func extraFieldsTheRecordLacksAreLeftOutButDomainIsAlwaysWritten() {
        var record = Self.kflowExample()
        record.vlan = 10  // set but not marked present: an exporter that did not send it
        record.tos = 4
        record.present = [.tos]
        record.observationDomain = 0
        let bytes = encodeToBytes(record, fields: OutputFields([.vlan, .tos, .domain, .start]))
        #expect(String(decoding: bytes, as: UTF8.self).hasSuffix(#","time":1700000000000,"tos":4,"domain":0}"#))
    }

    @Test func unselectedFieldsAreNotWrittenEvenWhenPresent() {
        var record = Self.kflowExample()
        record.present = [.flowStart, .vlan, .srcAS]
        record.vlan = 5
        let bytes = encodeToBytes(record, fields: OutputFields(.vlan))
        #expect(OutputReference.keyOrder(bytes).suffix(2) == ["time", "vlan"])
    }

    @Test func worstCaseRecordFitsTheDeclaredBound() {
        var record = FlowRecord()
        let longest = OutputReference.v6(Array(repeating: 0xFFFF, count: 8))
        record.exporter = longest
        record.src = longest
        record.dst = longest
        record.nextHop = longest
        record.srcPort = .max; record.dstPort = .max; record.proto = .max; record.tcpFlags = .max
        record.bytes = .max; record.packets = .max; record.exportTimeMs = .max
        record.flowStartMs = .max; record.flowEndMs = .max
        record.inputInterface = .max; record.outputInterface = .max; record.srcAS = .max; record.dstAS = .max
        record.vlan = .max; record.tos = .max; record.observationDomain = .max; record.direction = .max
        record.srcMask = .max; record.dstMask = .max; record.samplingInterval = .max
        record.present = FlowRecord.Present(rawValue: .max)

        let encoder = KFlowJSONEncoder(fields: .all)
        let bytes = encodeToBytes(record, fields: .all)
        _ = OutputReference.object(bytes)
        #expect(bytes.count + TextLimits.overrun <= encoder.maxRecordBytes)
        #expect(encoder.maxRecordBytes < 600, "the brief promises records under 600 bytes")
        // The bound is tight: no more than the overrun slack above the true worst case.
        #expect(encoder.maxRecordBytes - bytes.count == TextLimits.overrun)
    }

    @Test func fullBufferRefusesARecordAndKeepsItsContent() {
        let encoder = KFlowJSONEncoder()
        let buffer = OutputBuffer(capacity: encoder.maxRecordBytes + 10)
        #expect(encoder.append(Self.kflowExample(), to: buffer))
        let before = Array(buffer.bytes)
        #expect(!encoder.append(Self.kflowExample(), to: buffer))
        #expect(Array(buffer.bytes) == before)
    }

    @Test func reusedBufferWritesTheSameBytesEachTime() {
        let encoder = KFlowJSONEncoder(fields: .all)
        let buffer = OutputBuffer(capacity: encoder.maxRecordBytes)
        var first: [UInt8] = []
        for round in 0..<3 {
            buffer.removeAll()
            #expect(encoder.append(Self.kflowExample(), to: buffer))
            if round == 0 { first = Array(buffer.bytes) } else { #expect(Array(buffer.bytes) == first) }
        }
    }
}

/// A JSON integer as UInt64, exactly: Foundation keeps integers as integer NSNumbers (UInt64 above Int64.max);
/// a floating-point or negative number is not an exact UInt64 and gives nil.
func uint64(_ value: Any?) -> UInt64? {
    guard let number = value as? NSNumber else { return nil }
    let type = String(cString: number.objCType)
    guard ["c", "C", "s", "S", "i", "I", "l", "L", "q", "Q"].contains(type), number.int64Value >= 0 || type == "Q" else { return nil }
    return number.uint64Value
}
