import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Decoders

/// RFC 7011 decoding with hand-built messages.
@Suite struct IPFIXDecoderTests {
    /// Template 256: the usual IPv4 5-tuple with counters, interfaces, AS, next hop, vlan, tos, masks, times.
    static let ipv4Fields: [FieldSpec] = [
        FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(7, 2), FieldSpec(11, 2), FieldSpec(4, 1), FieldSpec(6, 1),
        FieldSpec(1, 8), FieldSpec(2, 8), FieldSpec(10, 4), FieldSpec(14, 4), FieldSpec(16, 4), FieldSpec(17, 4),
        FieldSpec(15, 4), FieldSpec(58, 2), FieldSpec(5, 1), FieldSpec(61, 1), FieldSpec(9, 1), FieldSpec(13, 1),
        FieldSpec(152, 8), FieldSpec(153, 8),
    ]

    static func ipv4Record(src: UInt8 = 1, bytes: UInt64 = 1500) -> [UInt8] {
        Wire {
            $0.ipv4(192, 0, 2, src); $0.ipv4(198, 51, 100, 7); $0.u16(443); $0.u16(51000); $0.u8(6); $0.u8(0x12)
            $0.u64(bytes); $0.u64(3); $0.u32(11); $0.u32(12); $0.u32(64500); $0.u32(64501)
            $0.ipv4(203, 0, 113, 1); $0.u16(100); $0.u8(0x28); $0.u8(1); $0.u8(24); $0.u8(16)
            $0.u64(1_699_999_990_123); $0.u64(1_699_999_999_456)
        }.bytes
    }

    static var ipv4Template: [UInt8] { IPFIX.templateSet(IPFIX.templateRecord(256, ipv4Fields)) }

    @Test func decodesEveryMappedFieldOfAnIPv4Record() {
        let decoder = FlowDecoder()
        let message = IPFIX.message(domain: 42, sets: [Self.ipv4Template, IPFIX.set(256, Self.ipv4Record())])
        let records = decoder.decode(message)
        #expect(records.count == 1)
        guard let r = records.first else { return }
        #expect(r.exporter == ExporterAddress.testExporter.address)
        #expect(r.observationDomain == 42)
        #expect(r.exportTimeMs == UInt64(IPFIX.exportTime) * 1000)
        #expect(r.src == ipv4(192, 0, 2, 1))
        #expect(r.dst == ipv4(198, 51, 100, 7))
        #expect((r.srcPort, r.dstPort, r.proto, r.tcpFlags) == (443, 51000, 6, 0x12))
        #expect((r.bytes, r.packets) == (1500, 3))
        #expect((r.inputInterface, r.outputInterface, r.srcAS, r.dstAS) == (11, 12, 64500, 64501))
        #expect(r.nextHop == ipv4(203, 0, 113, 1))
        #expect((r.vlan, r.tos, r.direction, r.srcMask, r.dstMask) == (100, 0x28, 1, 24, 16))
        #expect((r.flowStartMs, r.flowEndMs) == (1_699_999_990_123, 1_699_999_999_456))
        let expected: FlowRecord.Present = [
            .flowStart, .flowEnd, .inputInterface, .outputInterface, .srcAS, .dstAS, .nextHop, .vlan, .tos,
            .bytes, .packets, .srcPort, .dstPort, .proto, .tcpFlags, .direction, .srcMask, .dstMask,
        ]
        #expect(r.present == expected)
        #expect(decoder.statistics.flowRecords == 1)
        #expect(decoder.statistics.templatesAdded == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func decodesSeveralRecordsOfOneSetInOrder() {
        let decoder = FlowDecoder()
        let body = Self.ipv4Record(src: 1) + Self.ipv4Record(src: 2) + Self.ipv4Record(src: 3)
        let records = decoder.decode(IPFIX.message(sets: [Self.ipv4Template, IPFIX.set(256, body)]))
        #expect(records.map(\.src) == [ipv4(192, 0, 2, 1), ipv4(192, 0, 2, 2), ipv4(192, 0, 2, 3)])
    }

    @Test func decodesIPv6AddressesNextHopAndPrefixLengths() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(300, [
            FieldSpec(27, 16), FieldSpec(28, 16), FieldSpec(62, 16), FieldSpec(29, 1), FieldSpec(30, 1), FieldSpec(4, 1),
        ]))
        let data = Wire {
            $0.u32(0x2001_0DB8); $0.u32(0); $0.u32(0); $0.u32(1)
            $0.u32(0x2001_0DB8); $0.u32(0); $0.u32(0); $0.u32(2)
            $0.u32(0xFE80_0000); $0.u32(0); $0.u32(0); $0.u32(3)
            $0.u8(48); $0.u8(64); $0.u8(58)
        }.bytes
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(300, data)]))
        #expect(records.count == 1)
        #expect(records.first?.src == IPAddress(high: 0x2001_0DB8_0000_0000, low: 1, family: .v6))
        #expect(records.first?.dst == IPAddress(high: 0x2001_0DB8_0000_0000, low: 2, family: .v6))
        #expect(records.first?.nextHop == IPAddress(high: 0xFE80_0000_0000_0000, low: 3, family: .v6))
        #expect(records.first.map { ($0.srcMask, $0.dstMask, $0.proto) } ?? (0, 0, 0) == (48, 64, 58))
    }

    @Test func nonZeroAddressWinsOverAllZeroOneOfTheOtherFamily() {
        // nProbe/Procera style: both v4 and v6 fields in one template, the unused family all zeros.
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(301, [
            FieldSpec(8, 4), FieldSpec(27, 16), FieldSpec(12, 4), FieldSpec(28, 16),
        ]))
        let v6Flow = Wire { $0.zeros(4); $0.u64(0x2001_0DB8_0000_0000); $0.u64(9); $0.zeros(4); $0.u64(0x2001_0DB8_0000_0000); $0.u64(10) }.bytes
        let v4Flow = Wire { $0.ipv4(10, 0, 0, 1); $0.zeros(16); $0.ipv4(10, 0, 0, 2); $0.zeros(16) }.bytes
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(301, v6Flow + v4Flow)]))
        #expect(records.map(\.src) == [IPAddress(high: 0x2001_0DB8_0000_0000, low: 9, family: .v6), ipv4(10, 0, 0, 1)])
        #expect(records.map(\.dst) == [IPAddress(high: 0x2001_0DB8_0000_0000, low: 10, family: .v6), ipv4(10, 0, 0, 2)])
    }

    @Test func readsReducedSizeIntegersOfEveryWidth() {
        let decoder = FlowDecoder()
        // octetDeltaCount in 4, packetDeltaCount in 3, ports in 2, AS in 2, tcpControlBits in 2 (RFC 7125).
        let template = IPFIX.templateSet(IPFIX.templateRecord(302, [
            FieldSpec(1, 4), FieldSpec(2, 3), FieldSpec(16, 2), FieldSpec(6, 2), FieldSpec(10, 1), FieldSpec(14, 5),
        ]))
        let data = Wire {
            $0.uint(0xFEDC_BA98, length: 4); $0.uint(0x01_0203, length: 3); $0.u16(65001); $0.u16(0x0212); $0.u8(9)
            $0.uint(0x01_0000_0002, length: 5)
        }.bytes
        let r = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(302, data)])).first
        #expect(r?.bytes == 0xFEDC_BA98)
        #expect(r?.packets == 0x01_0203)
        #expect(r?.srcAS == 65001)
        #expect(r?.tcpFlags == 0x0212)
        #expect(r?.inputInterface == 9)
        #expect(r?.outputInterface == 2, "a 5-octet interface index is truncated to its 32-bit field")
    }

    @Test func walksVariableLengthFieldsInBothLengthForms() {
        let decoder = FlowDecoder()
        // interfaceName (82) variable-length between fields kflow reads.
        let template = IPFIX.templateSet(IPFIX.templateRecord(303, [
            FieldSpec(7, 2), FieldSpec(82, 0xFFFF), FieldSpec(11, 2), FieldSpec(82, 0xFFFF), FieldSpec(1, 4),
        ]))
        let shortForm = Wire { $0.u16(1); $0.u8(3); $0.raw(Array("ab0".utf8)); $0.u16(2); $0.u8(0); $0.u32(100) }.bytes
        let longForm = Wire {
            $0.u16(3); $0.u8(255); $0.u16(300); $0.zeros(300); $0.u16(4); $0.u8(255); $0.u16(0); $0.u32(200)
        }.bytes
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(303, shortForm + longForm)]))
        #expect(records.map(\.srcPort) == [1, 3])
        #expect(records.map(\.dstPort) == [2, 4])
        #expect(records.map(\.bytes) == [100, 200])
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func variableLengthFieldPastTheSetEndIsCountedAndDropsTheRestOfTheSet() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(304, [FieldSpec(7, 2), FieldSpec(82, 0xFFFF)]))
        let data = Wire { $0.u16(1); $0.u8(1); $0.u8(0x41); $0.u16(2); $0.u8(200); $0.zeros(10) }.bytes
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(304, data)]))
        #expect(records.map(\.srcPort) == [1])
        #expect(decoder.statistics.errors(.truncatedRecord) == 1)
    }

    @Test func enterpriseFieldsAreSkippedIncludingReverseDirectionCounters() {
        let decoder = FlowDecoder()
        // Reverse octetDeltaCount (PEN 29305, IE 1) before the forward one, and a vendor varlen IE.
        let template = IPFIX.templateSet(IPFIX.templateRecord(305, [
            FieldSpec(1, 8, enterprise: 29305), FieldSpec(1, 8), FieldSpec(100, 0xFFFF, enterprise: 9),
            FieldSpec(2, 4, enterprise: 29305), FieldSpec(7, 2),
        ]))
        let data = Wire { $0.u64(999); $0.u64(123); $0.u8(2); $0.u16(0xFFFF); $0.u32(77); $0.u16(8080) }.bytes
        let r = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(305, data)])).first
        #expect(r?.bytes == 123)
        #expect(r?.packets == 0)
        #expect(r?.present.contains(.packets) == false)
        #expect(r?.srcPort == 8080)
    }

    @Test func shortTailOfADataSetIsPaddingNotAnError() {
        let decoder = FlowDecoder()
        let body = Self.ipv4Record() + [0, 0, 0]
        let records = decoder.decode(IPFIX.message(sets: [Self.ipv4Template, IPFIX.set(256, body)]))
        #expect(records.count == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func zeroPaddingInATemplateSetIsNotAnError() {
        let decoder = FlowDecoder()
        let templateSet = IPFIX.set(2, IPFIX.templateRecord(256, Self.ipv4Fields) + [0, 0, 0, 0, 0, 0])
        let records = decoder.decode(IPFIX.message(sets: [templateSet, IPFIX.set(256, Self.ipv4Record())]))
        #expect(records.count == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func firstOccurrenceOfADuplicatedIEWins() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(306, [FieldSpec(7, 2), FieldSpec(7, 2), FieldSpec(1, 4), FieldSpec(1, 4)]))
        let data = Wire { $0.u16(10); $0.u16(20); $0.u32(30); $0.u32(40) }.bytes
        let r = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(306, data)])).first
        #expect(r?.srcPort == 10)
        #expect(r?.bytes == 30)
    }

    @Test func byteAndPacketCountsFallBackFromDeltaToTotalToPost() {
        let decoder = FlowDecoder()
        // Template 307: post (23/24) before total (85/86): total still wins. Template 308: post only.
        let sets = [
            IPFIX.templateSet(
                IPFIX.templateRecord(307, [FieldSpec(23, 4), FieldSpec(24, 4), FieldSpec(85, 4), FieldSpec(86, 4)]),
                IPFIX.templateRecord(308, [FieldSpec(23, 4), FieldSpec(24, 4)]),
                IPFIX.templateRecord(309, [FieldSpec(85, 4), FieldSpec(1, 4), FieldSpec(86, 4), FieldSpec(2, 4)])),
            IPFIX.set(307, Wire { $0.u32(1); $0.u32(2); $0.u32(3); $0.u32(4) }.bytes),
            IPFIX.set(308, Wire { $0.u32(5); $0.u32(6) }.bytes),
            IPFIX.set(309, Wire { $0.u32(7); $0.u32(8); $0.u32(9); $0.u32(10) }.bytes),
        ]
        let records = decoder.decode(IPFIX.message(sets: sets))
        #expect(records.map(\.bytes) == [3, 5, 8])
        #expect(records.map(\.packets) == [4, 6, 10])
    }

    @Test func reservedSetIDsAreSkippedByLengthAndCounted() {
        let decoder = FlowDecoder()
        let sets = [
            Self.ipv4Template, IPFIX.set(0, [1, 2, 3, 4]), IPFIX.set(1, [9, 9]), IPFIX.set(4, []), IPFIX.set(255, [7]),
            IPFIX.set(256, Self.ipv4Record()),
        ]
        let records = decoder.decode(IPFIX.message(sets: sets))
        #expect(records.count == 1)
        #expect(decoder.statistics.errors(.reservedSetID) == 4)
    }

    @Test func headerOnlyMessageIsValidAndEmpty() {
        let decoder = FlowDecoder()
        #expect(decoder.decode(IPFIX.message(sets: [])).isEmpty)
        #expect(decoder.statistics.ipfixMessages == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func datagramShorterThanTheHeaderIsCounted() {
        let decoder = FlowDecoder()
        let message = IPFIX.message(sets: [])
        for length in [0, 1, 2, 15] { _ = decoder.decode(Array(message.prefix(length))) }
        #expect(decoder.statistics.errors(.truncatedHeader) == 4)
        #expect(decoder.statistics.ipfixMessages == 0)
    }

    @Test func messageLengthBeyondTheDatagramDropsTheMessage() {
        let decoder = FlowDecoder()
        let message = IPFIX.message(sets: [Self.ipv4Template, IPFIX.set(256, Self.ipv4Record())])
        #expect(decoder.decode(Array(message.dropLast())).isEmpty)
        #expect(decoder.statistics.errors(.badMessageLength) == 1)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func messageLengthBelowTheHeaderIsCounted() {
        let decoder = FlowDecoder()
        var message = IPFIX.message(sets: [Self.ipv4Template])
        message[2] = 0
        message[3] = 12
        _ = decoder.decode(message)
        #expect(decoder.statistics.errors(.badMessageLength) == 1)
    }

    @Test func bytesAfterTheMessageLengthAreIgnored() {
        let decoder = FlowDecoder()
        let message = IPFIX.message(sets: [Self.ipv4Template, IPFIX.set(256, Self.ipv4Record())]) + [0xDE, 0xAD]
        #expect(decoder.decode(message).count == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func setLengthBelowFourEndsTheMessageWithoutLooping() {
        let decoder = FlowDecoder()
        let badSet: [UInt8] = [0x01, 0x00, 0x00, 0x00]  // data set 256 with length 0
        let records = decoder.decode(IPFIX.message(sets: [Self.ipv4Template, badSet, IPFIX.set(256, Self.ipv4Record())]))
        #expect(records.isEmpty)
        #expect(decoder.statistics.errors(.badSetLength) == 1)
        #expect(decoder.activeTemplateCount == 1, "the template set before the bad set was kept")
    }

    @Test func setLengthPastTheMessageEndIsCounted() {
        let decoder = FlowDecoder()
        var data = IPFIX.set(256, Self.ipv4Record())
        data[3] &+= 1
        let records = decoder.decode(IPFIX.message(sets: [Self.ipv4Template, data]))
        #expect(records.isEmpty)
        #expect(decoder.statistics.errors(.badSetLength) == 1)
    }

    @Test func trailingBytesShorterThanASetHeaderAreCounted() {
        let decoder = FlowDecoder()
        let records = decoder.decode(IPFIX.message(sets: [Self.ipv4Template, IPFIX.set(256, Self.ipv4Record()), [0, 0]]))
        #expect(records.count == 1)
        #expect(decoder.statistics.errors(.badSetLength) == 1)
    }

    @Test func templateRecordCutByItsSetIsCountedAndNotStored() {
        let decoder = FlowDecoder()
        let record = IPFIX.templateRecord(256, Self.ipv4Fields)
        for cut in [2, 5, 9] {
            _ = decoder.decode(IPFIX.message(sets: [IPFIX.set(2, Array(record.dropLast(cut)))]))
        }
        // An enterprise field whose PEN is cut off.
        let enterprise = IPFIX.templateRecord(257, [FieldSpec(7, 2), FieldSpec(1, 4, enterprise: 9)])
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.set(2, Array(enterprise.dropLast(2)))]))
        // An options template whose scope count is cut off.
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.set(3, [0x01, 0x00, 0x00, 0x02, 0x00])]))
        #expect(decoder.statistics.errors(.truncatedTemplate) == 5)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func templateIDBelow256IsMalformed() {
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.templateSet(IPFIX.templateRecord(255, [FieldSpec(7, 2)]))]))
        #expect(decoder.statistics.errors(.malformedTemplate) == 1)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func optionsTemplateWithScopeCountZeroOrAboveFieldCountIsMalformed() {
        let decoder = FlowDecoder()
        let zeroScope = Wire { $0.u16(400); $0.u16(1); $0.u16(0); $0.u16(34); $0.u16(4) }.bytes
        let tooManyScopes = Wire { $0.u16(401); $0.u16(1); $0.u16(2); $0.u16(34); $0.u16(4) }.bytes
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.set(3, zeroScope)]))
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.set(3, tooManyScopes)]))
        #expect(decoder.statistics.errors(.malformedTemplate) == 2)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func templateWhoseFieldsAreAllZeroLengthIsRejectedAndItsDataCannotLoop() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(310, [FieldSpec(7, 0), FieldSpec(11, 0)]))
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(310, [1, 2, 3, 4, 5, 6, 7, 8])]))
        #expect(records.isEmpty)
        #expect(decoder.statistics.errors(.malformedTemplate) == 1)
        #expect(decoder.statistics.setsWithUnknownTemplate == 1)
    }

    @Test func zeroLengthFieldsBesideOthersAreAccepted() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(311, [FieldSpec(7, 0), FieldSpec(11, 2)]))
        let records = decoder.decode(IPFIX.message(sets: [template, IPFIX.set(311, [0, 80, 0, 81])]))
        #expect(records.map(\.dstPort) == [80, 81])
        #expect(records.allSatisfy { !$0.present.contains(.srcPort) })
    }

    @Test func withdrawalsAreIgnoredAndCounted() {
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [Self.ipv4Template]))
        // Withdraw template 256, withdraw all (ID 2), withdraw options template 512 (ID 3 set).
        let withdrawals = [IPFIX.set(2, [0x01, 0x00, 0, 0, 0x00, 0x02, 0, 0]), IPFIX.set(3, [0x02, 0x00, 0, 0])]
        _ = decoder.decode(IPFIX.message(sets: withdrawals))
        #expect(decoder.statistics.withdrawalsIgnored == 3)
        #expect(decoder.decode(IPFIX.message(sets: [IPFIX.set(256, Self.ipv4Record())])).count == 1)
    }

    @Test func dataWithUnknownTemplateIsCountedPerExporterAndTheNextSetStillDecodes() {
        let decoder = FlowDecoder()
        let records = decoder.decode(IPFIX.message(sets: [
            IPFIX.set(999, [1, 2, 3, 4, 5]), Self.ipv4Template, IPFIX.set(256, Self.ipv4Record()),
        ]))
        #expect(records.count == 1)
        #expect(decoder.statistics.setsWithUnknownTemplate == 1)
        var perExporter: [ExporterAddress: ExporterStatistics] = [:]
        decoder.forEachSession { perExporter[$0.exporter] = $0.statistics }
        #expect(perExporter[.testExporter]?.setsWithUnknownTemplate == 1)
        #expect(perExporter[.testExporter]?.flowRecords == 1)
        #expect(perExporter[.testExporter]?.datagrams == 1)
    }

    @Test func optionsRecordsAreNotEmittedAndTheirSamplingIntervalReachesLaterFlows() {
        let decoder = FlowDecoder()
        let options = IPFIX.set(3, IPFIX.optionsTemplateRecord(512, scope: [FieldSpec(302, 4)], options: [FieldSpec(306, 4), FieldSpec(305, 4)]))
        // samplingPacketSpace 999, samplingPacketInterval 1 (RFC 5477: 1 packet taken, 999 skipped): 1 in
        // 1000; the flow names no selector and its domain has only this one.
        let optionsData = IPFIX.set(512, Wire { $0.u32(1); $0.u32(999); $0.u32(1) }.bytes)
        let records = decoder.decode(IPFIX.message(sets: [options, optionsData, Self.ipv4Template, IPFIX.set(256, Self.ipv4Record())]))
        #expect(records.count == 1)
        #expect(records.first?.samplingInterval == 1000)
        #expect(records.first?.present.contains(.samplingInterval) == true)
        #expect(decoder.statistics.optionsRecords == 1)
        #expect(decoder.statistics.flowRecords == 1)
    }

    @Test func samplingIntervalInTheFlowRecordBeatsTheOptionsOne() {
        let decoder = FlowDecoder()
        let options = IPFIX.set(3, IPFIX.optionsTemplateRecord(512, scope: [FieldSpec(302, 4)], options: [FieldSpec(34, 4)]))
        let optionsData = IPFIX.set(512, Wire { $0.u32(1); $0.u32(1000) }.bytes)
        let template = IPFIX.templateSet(IPFIX.templateRecord(312, [FieldSpec(7, 2), FieldSpec(50, 4)]))
        let records = decoder.decode(IPFIX.message(sets: [options, optionsData, template, IPFIX.set(312, [0, 1, 0, 0, 0, 64])]))
        #expect(records.first?.samplingInterval == 64)
    }

    @Test func convertsEveryFlowTimeEncodingToEpochMilliseconds() {
        let decoder = FlowDecoder()
        let exportTime: UInt32 = 1_700_000_000
        let ntpSeconds = UInt64(1_699_999_000) + 2_208_988_800
        let sets = [
            IPFIX.templateSet(
                IPFIX.templateRecord(320, [FieldSpec(150, 4), FieldSpec(151, 4)]),
                IPFIX.templateRecord(321, [FieldSpec(154, 8), FieldSpec(157, 8)]),
                IPFIX.templateRecord(322, [FieldSpec(158, 4), FieldSpec(159, 4)]),
                IPFIX.templateRecord(323, [FieldSpec(22, 4), FieldSpec(21, 4), FieldSpec(160, 8)])),
            IPFIX.set(320, Wire { $0.u32(1_699_999_000); $0.u32(1_699_999_100) }.bytes),
            // Half a second as an NTP fraction is 0x8000_0000.
            IPFIX.set(321, Wire { $0.u64(ntpSeconds << 32 | 0x8000_0000); $0.u64((ntpSeconds + 1) << 32) }.bytes),
            IPFIX.set(322, Wire { $0.u32(5_000_000); $0.u32(1_500) }.bytes),
            // The device came up 2.8 hours before the export.
            IPFIX.set(323, Wire { $0.u32(1_000); $0.u32(9_000); $0.u64(1_699_990_000_000) }.bytes),
        ]
        let records = decoder.decode(IPFIX.message(exportTime: exportTime, sets: sets))
        #expect(records.map(\.flowStartMs) == [1_699_999_000_000, 1_699_999_000_500, 1_699_999_995_000, 1_699_990_001_000])
        #expect(records.map(\.flowEndMs) == [1_699_999_100_000, 1_699_999_001_000, 1_699_999_999_999, 1_699_990_009_000])
        #expect(records.allSatisfy { $0.present.isSuperset(of: [.flowStart, .flowEnd]) })
    }

    @Test func sysUpTimesUseSystemInitTimeFromOptionsAndAreAbsentWithoutIt() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(324, [FieldSpec(22, 4), FieldSpec(21, 4)]))
        let data = IPFIX.set(324, Wire { $0.u32(2_000); $0.u32(3_000) }.bytes)
        let before = decoder.decode(IPFIX.message(sets: [template, data]))
        #expect(before.first?.present.contains(.flowStart) == false)
        let options = IPFIX.set(3, IPFIX.optionsTemplateRecord(513, scope: [FieldSpec(144, 4)], options: [FieldSpec(160, 8)]))
        let optionsData = IPFIX.set(513, Wire { $0.u32(1); $0.u64(1_699_999_000_000) }.bytes)
        let after = decoder.decode(IPFIX.message(sets: [options, optionsData, data]))
        #expect(after.first?.flowStartMs == 1_699_999_002_000)
        #expect(after.first?.flowEndMs == 1_699_999_003_000)
        #expect(decoder.statistics.flowsWithUnanchoredTimes == 1, "only the flow before the options data")
    }

    /// flowStart/EndSysUpTime are 32-bit milliseconds: on a device up longer than 49.7 days they have
    /// wrapped, and the time is the latest one with those low bits that is not after the export.
    @Test func sysUpTimesOfADeviceUpLongerThanTheirRangeAreTakenFromTheLatestWrap() {
        let decoder = FlowDecoder()
        let exportMs: UInt64 = UInt64(IPFIX.exportTime) * 1000
        let initMs = exportMs - 60 * 86_400_000  // up 60 days
        let startUptime = UInt64(60 * 86_400_000 - 120_000)  // 2 minutes before the export
        let template = IPFIX.templateSet(IPFIX.templateRecord(324, [FieldSpec(22, 4), FieldSpec(21, 4), FieldSpec(160, 8)]))
        let data = IPFIX.set(324, Wire {
            $0.u32(UInt32(truncatingIfNeeded: startUptime)); $0.u32(UInt32(truncatingIfNeeded: startUptime + 60_000)); $0.u64(initMs)
        }.bytes)
        let records = decoder.decode(IPFIX.message(sets: [template, data]))
        #expect(records.first?.flowStartMs == exportMs - 120_000)
        #expect(records.first?.flowEndMs == exportMs - 60_000)
    }

    /// An uptime the anchor cannot explain (beyond what the device had been up at export: softflowd reading
    /// an old capture) leaves the times out and counts the flow, instead of inventing a date.
    @Test func sysUpTimesTheAnchorCannotExplainAreLeftOutAndCounted() {
        let decoder = FlowDecoder()
        let exportMs: UInt64 = UInt64(IPFIX.exportTime) * 1000
        let template = IPFIX.templateSet(IPFIX.templateRecord(324, [FieldSpec(22, 4), FieldSpec(21, 4), FieldSpec(160, 8)]))
        // Up 2 s at export; the uptimes say 31 days.
        let data = IPFIX.set(324, Wire { $0.u32(2_743_578_175); $0.u32(2_743_578_236); $0.u64(exportMs - 2_000) }.bytes)
        let records = decoder.decode(IPFIX.message(sets: [template, data]))
        #expect(records.count == 1)
        #expect(records.first?.present.contains(.flowStart) == false)
        #expect(records.first?.present.contains(.flowEnd) == false)
        #expect(decoder.statistics.flowsWithUnanchoredTimes == 1)
    }

    @Test func decodesAMessageOfTheMaximumSize65535() {
        let decoder = FlowDecoder()
        // Template 330: one 8-octet field; (65535 - 16 - 4 - template set) / 8 records plus padding.
        let template = IPFIX.templateSet(IPFIX.templateRecord(330, [FieldSpec(1, 8)]))
        let room = 65535 - 16 - template.count - 4
        let recordCount = room / 8
        var body = Wire()
        for index in 0..<recordCount { body.u64(UInt64(index)) }
        body.zeros(room - recordCount * 8)
        let message = IPFIX.message(sets: [template, IPFIX.set(330, body.bytes)])
        #expect(message.count == 65535)
        let records = decoder.decode(message)
        #expect(records.count == recordCount)
        #expect(records.last?.bytes == UInt64(recordCount - 1))
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func unsupportedVersionIsCounted() {
        let decoder = FlowDecoder()
        _ = decoder.decode([0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(decoder.statistics.errors(.unsupportedVersion) == 1)
        #expect(DecodeErrorKind.allCases.map(\.label).allSatisfy { !$0.isEmpty && $0 == $0.lowercased() })
    }
}
