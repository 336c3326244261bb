import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Templates
@testable import Decoders

/// RFC 5103 biflows and NSEL initiator/responder pairs: one record, two flows (output.biflow=split).
@Suite struct BiflowTests {
    static let reversePEN: UInt32 = 29305

    /// src, dst, sport, dport, proto, in/out interface, octets, packets, flags, then the reverse octets,
    /// packets and flags (PEN 29305), and flowStart/EndMilliseconds.
    static let template = IPFIX.templateSet(IPFIX.templateRecord(400, [
        FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(7, 2), FieldSpec(11, 2), FieldSpec(4, 1),
        FieldSpec(10, 4), FieldSpec(14, 4), FieldSpec(1, 8), FieldSpec(2, 4), FieldSpec(6, 1),
        FieldSpec(1, 8, enterprise: reversePEN), FieldSpec(2, 4, enterprise: reversePEN),
        FieldSpec(6, 1, enterprise: reversePEN), FieldSpec(152, 8), FieldSpec(153, 8),
    ]))

    static func record(reverseOctets: UInt64, reversePackets: UInt32) -> [UInt8] {
        Wire {
            $0.ipv4(10, 0, 0, 1); $0.ipv4(10, 0, 0, 2); $0.u16(51000); $0.u16(443); $0.u8(6)
            $0.u32(3); $0.u32(7); $0.u64(1200); $0.u32(10); $0.u8(0x1A)
            $0.u64(reverseOctets); $0.u32(reversePackets); $0.u8(0x12)
            $0.u64(1_699_999_990_000); $0.u64(1_699_999_995_000)
        }.bytes
    }

    @Test func aBiflowRecordBecomesTwoFlowsTheReverseOneSwapped() throws {
        let decoder = FlowDecoder()
        let records = decoder.decode(IPFIX.message(sets: [Self.template, IPFIX.set(400, Self.record(reverseOctets: 5000, reversePackets: 8))]))
        try #require(records.count == 2, "forward and reverse, got \(records.count)")
        let (forward, reverse) = (records[0], records[1])
        #expect((forward.src, forward.dst, forward.srcPort, forward.dstPort) == (ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 51000, 443))
        #expect((forward.bytes, forward.packets, forward.tcpFlags) == (1200, 10, 0x1A))
        #expect((reverse.src, reverse.dst, reverse.srcPort, reverse.dstPort) == (ipv4(10, 0, 0, 2), ipv4(10, 0, 0, 1), 443, 51000))
        #expect((reverse.bytes, reverse.packets, reverse.tcpFlags, reverse.proto) == (5000, 8, 0x12, 6))
        #expect((reverse.inputInterface, reverse.outputInterface) == (7, 3), "interfaces swapped")
        // No reverse times in the template: the biflow's own apply to both directions (RFC 5103 §5.2).
        #expect((reverse.flowStartMs, reverse.flowEndMs) == (1_699_999_990_000, 1_699_999_995_000))
        #expect(reverse.present.isSuperset(of: [.flowStart, .flowEnd, .inputInterface, .outputInterface, .bytes, .packets, .tcpFlags]))
        #expect(decoder.statistics.flowRecords == 1, "one data record")
        #expect(decoder.statistics.reverseFlows == 1)
        var perExporter: [ExporterAddress: ExporterStatistics] = [:]
        decoder.forEachSession { perExporter[$0.exporter] = $0.statistics }
        #expect(perExporter[.testExporter]?.reverseFlows == 1)
    }

    @Test func aReverseDirectionWithoutCountersIsNoFlow() {
        let decoder = FlowDecoder()
        let records = decoder.decode(IPFIX.message(sets: [Self.template, IPFIX.set(400, Self.record(reverseOctets: 0, reversePackets: 0))]))
        #expect(records.count == 1)
        #expect(decoder.statistics.reverseFlows == 0)
    }

    @Test func forwardModeKeepsOneFlowPerRecord() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(splitsBiflows: false))
        let records = decoder.decode(IPFIX.message(sets: [Self.template, IPFIX.set(400, Self.record(reverseOctets: 5000, reversePackets: 8))]))
        #expect(records.count == 1)
        #expect(records.first?.bytes == 1200)
        #expect(decoder.statistics.reverseFlows == 0)
    }

    @Test func aTemplateWithoutReverseFieldsIsNotABiflowPlan() throws {
        let fields = [TemplateField(id: 8, enterpriseNumber: 0, length: 4, isScope: false), TemplateField(id: 1, enterpriseNumber: 0, length: 8, isScope: false)]
        let plan = try DecodePlan.compile(templateID: 256, isOptions: false, fields: fields, definition: [], splitBiflows: true).get()
        #expect(!plan.isBiflow)
        // Reverse flags alone make no reverse flow: a biflow needs a reverse counter.
        let flagsOnly = fields + [TemplateField(id: 6, enterpriseNumber: Self.reversePEN, length: 1, isScope: false)]
        #expect(try !DecodePlan.compile(templateID: 256, isOptions: false, fields: flagsOnly, definition: [], splitBiflows: true).get().isBiflow)
    }

    @Test func reverseTimesOfTheirOwnAreUsedForTheReverseFlow() throws {
        let template = IPFIX.templateSet(IPFIX.templateRecord(401, [
            FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(2, 4), FieldSpec(2, 4, enterprise: Self.reversePEN),
            FieldSpec(152, 8), FieldSpec(153, 8), FieldSpec(152, 8, enterprise: Self.reversePEN), FieldSpec(153, 8, enterprise: Self.reversePEN),
        ]))
        let data = IPFIX.set(401, Wire {
            $0.ipv4(10, 0, 0, 1); $0.ipv4(10, 0, 0, 2); $0.u32(3); $0.u32(2)
            $0.u64(1_000); $0.u64(2_000); $0.u64(1_500); $0.u64(2_500)
        }.bytes)
        let records = FlowDecoder().decode(IPFIX.message(sets: [template, data]))
        try #require(records.count == 2)
        #expect((records[0].flowStartMs, records[0].flowEndMs) == (1_000, 2_000))
        #expect((records[1].flowStartMs, records[1].flowEndMs) == (1_500, 2_500))
        #expect(records[1].present.contains(.bytes) == false, "no reverse octets in the template")
    }

    /// Cisco ASA (NSEL, v9): initiator and responder octets are one connection's two directions.
    @Test func nselResponderOctetsBesideInitiatorOctetsAreTheReverseFlow() throws {
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(260, [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (231, 4), (232, 4)]))
        let data = NetFlowV9.flowSet(260, Wire {
            $0.ipv4(10, 4, 102, 104); $0.ipv4(10, 4, 11, 102); $0.u16(51034); $0.u16(53); $0.u8(17); $0.u32(64); $0.u32(128)
        }.bytes)
        let decoder = FlowDecoder()
        let records = decoder.decode(NetFlowV9.packet(flowSets: [template, data]))
        try #require(records.count == 2)
        #expect((records[0].bytes, records[1].bytes) == (64, 128))
        #expect((records[1].src, records[1].srcPort, records[1].dstPort) == (ipv4(10, 4, 11, 102), 53, 51034))
    }

    /// Beside a plain delta count, which direction a responder count belongs to is not said: no split.
    @Test func aResponderCountBesideAPlainDeltaCountIsNotSplit() {
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(261, [(8, 4), (12, 4), (1, 4), (232, 4)]))
        let data = NetFlowV9.flowSet(261, Wire { $0.ipv4(10, 0, 0, 1); $0.ipv4(10, 0, 0, 2); $0.u32(64); $0.u32(128) }.bytes)
        let records = FlowDecoder().decode(NetFlowV9.packet(flowSets: [template, data]))
        #expect(records.count == 1)
        #expect(records.first?.bytes == 64)
    }

    /// A batch holds 64 records: 40 biflow records (80 flows) cross the batch boundary intact and in order.
    @Test func reverseFlowsCrossTheBatchBoundaryInOrder() {
        let body = (0..<40).flatMap { _ in Self.record(reverseOctets: 5000, reversePackets: 8) }
        let records = FlowDecoder().decode(IPFIX.message(sets: [Self.template, IPFIX.set(400, body)]))
        #expect(records.count == 80)
        #expect(records.enumerated().allSatisfy { index, record in record.srcPort == (index % 2 == 0 ? 51000 : 443) })
    }
}

/// NetFlow v9 FIRST/LAST_SWITCHED across the header's 32-bit sysUptime wrap.
@Suite struct NetFlowUptimeTests {
    @Test func switchedTimesBeforeTheUptimeWrapAreThatMuchEarlier() throws {
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(300, [(8, 4), (22, 4), (21, 4)]))
        // sysUptime wrapped 1 s ago; the flow started 5 s before the wrap and ended 0.5 s after it.
        let data = NetFlowV9.flowSet(300, Wire { $0.ipv4(10, 0, 0, 1); $0.u32(UInt32.max - 4_999); $0.u32(500) }.bytes)
        let records = FlowDecoder().decode(NetFlowV9.packet(sysUptime: 1_000, unixSeconds: 1_700_000_000, flowSets: [template, data]))
        let record = try #require(records.first)
        #expect(record.flowStartMs == 1_700_000_000_000 - 6_000)
        #expect(record.flowEndMs == 1_700_000_000_000 - 500)
    }

    @Test func aSwitchedTimeJustAfterTheHeadersUptimeIsNotFiftyDaysEarlier() throws {
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(300, [(8, 4), (22, 4), (21, 4)]))
        let data = NetFlowV9.flowSet(300, Wire { $0.ipv4(10, 0, 0, 1); $0.u32(9_000); $0.u32(10_004) }.bytes)
        let records = FlowDecoder().decode(NetFlowV9.packet(sysUptime: 10_000, unixSeconds: 1_700_000_000, flowSets: [template, data]))
        let record = try #require(records.first)
        #expect(record.flowStartMs == 1_700_000_000_000 - 1_000)
        #expect(record.flowEndMs == 1_700_000_000_000 + 4)
    }
}
