import Testing
@testable import Decoders

/// NetFlow v9 (RFC 3954) and v5 decoding with hand-built packets.
@Suite struct NetFlowV9DecoderTests {
    static let fields: [(UInt16, UInt16)] = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (22, 4), (21, 4), (10, 2), (14, 2)]
    static let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(300, fields))
    static func record(src: UInt8 = 1) -> [UInt8] {
        Wire {
            $0.ipv4(10, 0, 0, src); $0.ipv4(10, 0, 1, 1); $0.u16(1234); $0.u16(80); $0.u8(6); $0.u8(0x1B)
            $0.u32(4000); $0.u32(10); $0.u32(350_000); $0.u32(359_000); $0.u16(3); $0.u16(4)
        }.bytes
    }

    @Test func decodesTemplateAndDataWithSwitchedTimesRelativeToSysUptime() {
        let decoder = FlowDecoder()
        let packet = NetFlowV9.packet(sourceID: 7, flowSets: [Self.template, NetFlowV9.flowSet(300, Self.record())])
        let records = decoder.decode(packet)
        #expect(records.count == 1)
        guard let r = records.first else { return }
        #expect(r.src == ipv4(10, 0, 0, 1) && r.dst == ipv4(10, 0, 1, 1))
        #expect((r.srcPort, r.dstPort, r.proto, r.tcpFlags, r.bytes, r.packets) == (1234, 80, 6, 0x1B, 4000, 10))
        #expect((r.inputInterface, r.outputInterface) == (3, 4))
        #expect(r.observationDomain == 7)
        #expect(r.exportTimeMs == UInt64(NetFlowV9.unixSeconds) * 1000)
        // sysUptime 360 000 ms at unix_secs: first switched 10 s earlier, last 1 s earlier.
        #expect(r.flowStartMs == UInt64(NetFlowV9.unixSeconds) * 1000 - 10_000)
        #expect(r.flowEndMs == UInt64(NetFlowV9.unixSeconds) * 1000 - 1_000)
        #expect(decoder.statistics.netflowV9Messages == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func headerCountIsIgnoredAndEveryFlowSetIsWalked() {
        let decoder = FlowDecoder()
        // softflowd style: Count says 1 although a template and two data FlowSets follow.
        let packet = NetFlowV9.packet(count: 1, flowSets: [
            Self.template, NetFlowV9.flowSet(300, Self.record(src: 1)), NetFlowV9.flowSet(300, Self.record(src: 2) + Self.record(src: 3)),
        ])
        #expect(decoder.decode(packet).map(\.src) == [ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), ipv4(10, 0, 0, 3)])
    }

    @Test func optionsTemplateWithScopeFeedsSamplingAndIsNotEmitted() {
        let decoder = FlowDecoder()
        // Scope: System (type 1) 4 octets; options: SAMPLING_INTERVAL (34) 4, algorithm (35) 1.
        let options = NetFlowV9.flowSet(1, NetFlowV9.optionsTemplateRecord(260, scope: [(1, 4)], options: [(34, 4), (35, 1)]) + [0, 0])
        let optionsData = NetFlowV9.flowSet(260, Wire { $0.u32(0x0A00_0001); $0.u32(512); $0.u8(2); $0.zeros(3) }.bytes)
        let records = decoder.decode(NetFlowV9.packet(flowSets: [options, optionsData, Self.template, NetFlowV9.flowSet(300, Self.record())]))
        #expect(records.count == 1)
        #expect(records.first?.samplingInterval == 512)
        #expect(decoder.statistics.optionsRecords == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func scopeFieldsNeverFeedFlowFields() {
        let decoder = FlowDecoder()
        // Scope type 1 (System) must not be read as IE 1 (octetDeltaCount) even in an options template
        // whose scope length is 0 (Juniper SRX) or present.
        let options = NetFlowV9.flowSet(1, NetFlowV9.optionsTemplateRecord(261, scope: [(1, 0)], options: [(34, 2)]))
        let data = NetFlowV9.flowSet(261, [0, 100])
        #expect(decoder.decode(NetFlowV9.packet(flowSets: [options, data])).isEmpty)
        #expect(decoder.statistics.optionsRecords == 1)
    }

    @Test func zeroTailAfterTheLastFlowSetIsNotAnErrorButGarbageIs() {
        let decoder = FlowDecoder()
        let packet = NetFlowV9.packet(flowSets: [Self.template, NetFlowV9.flowSet(300, Self.record()), [UInt8](repeating: 0, count: 40)])
        #expect(decoder.decode(packet).count == 1)
        #expect(decoder.statistics.totalErrors == 0)
        _ = decoder.decode(NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(300, Self.record()), [0x01, 0x2C, 0x00, 0x02, 0xFF]]))
        #expect(decoder.statistics.errors(.badSetLength) == 1)
    }

    @Test func flowSetLengthPastTheDatagramIsCounted() {
        let decoder = FlowDecoder()
        var data = NetFlowV9.flowSet(300, Self.record())
        data[3] &+= 4
        #expect(decoder.decode(NetFlowV9.packet(flowSets: [Self.template, data])).isEmpty)
        #expect(decoder.statistics.errors(.badSetLength) == 1)
    }

    @Test func reservedFlowSetIDsAreSkippedAndCounted() {
        let decoder = FlowDecoder()
        let packet = NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(2, [1, 2, 3, 4]), NetFlowV9.flowSet(255, []), Self.template, NetFlowV9.flowSet(300, Self.record())])
        #expect(decoder.decode(packet).count == 1)
        #expect(decoder.statistics.errors(.reservedSetID) == 2)
    }

    @Test func templatesAreKeyedBySourceID() {
        let decoder = FlowDecoder()
        _ = decoder.decode(NetFlowV9.packet(sourceID: 1, flowSets: [Self.template]))
        #expect(decoder.decode(NetFlowV9.packet(sourceID: 2, flowSets: [NetFlowV9.flowSet(300, Self.record())])).isEmpty)
        #expect(decoder.decode(NetFlowV9.packet(sourceID: 1, flowSets: [NetFlowV9.flowSet(300, Self.record())])).count == 1)
        #expect(decoder.statistics.setsWithUnknownTemplate == 1)
    }

    @Test func vendorFieldTypesDoNotAliasStandardOnes() {
        let decoder = FlowDecoder()
        // 0x8001 is a vendor type (Cisco ASA style), not IE 1 with an enterprise number (no PEN in v9).
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(301, [(0x8001, 4), (7, 2)]))
        let r = decoder.decode(NetFlowV9.packet(flowSets: [template, NetFlowV9.flowSet(301, [0, 0, 0, 99, 0, 53])])).first
        #expect(r?.bytes == 0)
        #expect(r?.srcPort == 53)
    }

    @Test func variableLengthFieldOf0xFFFFIsWalked() {
        let decoder = FlowDecoder()
        // H3C varstring style: length 0xFFFF in a v9 template, IPFIX-style length prefix in the data.
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(302, [(82, 0xFFFF), (7, 2)]))
        let data = NetFlowV9.flowSet(302, [2, 0x65, 0x30, 0, 22, 255, 0, 1, 0x41, 0, 23])
        #expect(decoder.decode(NetFlowV9.packet(flowSets: [template, data])).map(\.srcPort) == [22, 23])
    }

    @Test func truncatedTemplatesAndMalformedOptionsLengthsAreCounted() {
        let decoder = FlowDecoder()
        let cut = Array(NetFlowV9.templateRecord(303, Self.fields).dropLast(2))
        _ = decoder.decode(NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(0, cut)]))
        #expect(decoder.statistics.errors(.truncatedTemplate) == 1)
        let oddLength = Wire { $0.u16(304); $0.u16(3); $0.u16(4); $0.zeros(7) }.bytes
        _ = decoder.decode(NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(1, oddLength)]))
        #expect(decoder.statistics.errors(.malformedTemplate) == 1)
        _ = decoder.decode(Array(NetFlowV9.packet(flowSets: []).prefix(19)))
        #expect(decoder.statistics.errors(.truncatedHeader) == 1)
        #expect(decoder.activeTemplateCount == 0)
    }
}

@Suite struct NetFlowV5DecoderTests {
    static let unixSeconds: UInt32 = 1_700_000_000

    static func packet(count: UInt16, records: Int, sampling: UInt16 = 0) -> [UInt8] {
        Wire {
            $0.u16(5); $0.u16(count); $0.u32(100_000); $0.u32(unixSeconds); $0.u32(0); $0.u32(0)
            $0.u8(1); $0.u8(2); $0.u16(sampling)
            for index in 0..<records {
                $0.ipv4(172, 16, 0, UInt8(index)); $0.ipv4(172, 16, 1, 1); $0.ipv4(172, 16, 0, 254)
                $0.u16(5); $0.u16(6); $0.u32(7); $0.u32(800); $0.u32(90_000); $0.u32(99_000)
                $0.u16(40000); $0.u16(443); $0.u8(0); $0.u8(0x1A); $0.u8(6); $0.u8(0x10)
                $0.u16(64512); $0.u16(64513); $0.u8(24); $0.u8(20); $0.u16(0)
            }
        }.bytes
    }

    @Test func decodesTheFixedRecordLayout() {
        let decoder = FlowDecoder()
        let records = decoder.decode(Self.packet(count: 2, records: 2, sampling: 0x4000 | 100))
        #expect(records.count == 2)
        guard let r = records.last else { return }
        #expect(r.src == ipv4(172, 16, 0, 1) && r.dst == ipv4(172, 16, 1, 1) && r.nextHop == ipv4(172, 16, 0, 254))
        #expect((r.inputInterface, r.outputInterface, r.packets, r.bytes) == (5, 6, 7, 800))
        #expect((r.srcPort, r.dstPort, r.tcpFlags, r.proto, r.tos) == (40000, 443, 0x1A, 6, 0x10))
        #expect((r.srcAS, r.dstAS, r.srcMask, r.dstMask) == (64512, 64513, 24, 20))
        #expect(r.flowStartMs == UInt64(Self.unixSeconds) * 1000 - 10_000)
        #expect(r.flowEndMs == UInt64(Self.unixSeconds) * 1000 - 1_000)
        #expect(r.samplingInterval == 100)
        #expect(r.observationDomain == 0x0102)
        #expect(decoder.statistics.netflowV5Messages == 1)
    }

    @Test func countBeyondTheDatagramIsCountedAndOnlyWholeRecordsAreDecoded() {
        let decoder = FlowDecoder()
        let packet = Self.packet(count: 3, records: 3).dropLast(10)
        #expect(decoder.decode(Array(packet)).count == 2)
        #expect(decoder.statistics.errors(.v5CountMismatch) == 1)
        _ = decoder.decode(Array(Self.packet(count: 0, records: 0).prefix(23)))
        #expect(decoder.statistics.errors(.truncatedHeader) == 1)
    }
}
