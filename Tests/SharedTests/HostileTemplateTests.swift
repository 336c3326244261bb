import Testing
@testable import Templates
@testable import Decoders

/// Issue 9's rules against hostile templates and exporters: bounded work per datagram, templates
/// bounded in bytes, and exporters that cannot push each other out.
@Suite struct HostileTemplateTests {
    static func template(_ id: UInt16, _ fields: [FieldSpec]) -> [UInt8] { IPFIX.templateSet(IPFIX.templateRecord(id, fields)) }
    static let portsTemplate = template(256, [FieldSpec(7, 2), FieldSpec(11, 2)])
    static let portsData = IPFIX.set(256, [0, 1, 0, 2])
    static let variableLength: UInt16 = 65535
    static let v5 = NetFlowV5DecoderTests.packet(count: 1, records: 1)

    // MARK: - Bounded work per datagram

    @Test func emptyFieldsCostNothingAndAnOctetOfPaddingIsNotAFlow() throws {
        // The attack: thousands of zero-length fields and one variable-length field, so that each octet
        // of a data set is a record walking every field. Zero-length fields are legal (Juniper sends
        // them) but occupy nothing: the plan keeps one op, and the records feed no flow field.
        let fields = [FieldSpec](repeating: FieldSpec(1, 0), count: 1000) + [FieldSpec(210, Self.variableLength)]
        let plan = try DecodePlan.compile(
            templateID: 300, isOptions: false,
            fields: fields.map { TemplateField(id: $0.id, enterpriseNumber: 0, length: $0.length, isScope: false) },
            definition: []
        ).get()
        #expect(plan.ops.count == 1)
        #expect(!plan.hasFlowFields)
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [Self.template(300, fields)]))
        #expect(decoder.activeTemplateCount == 1)
        #expect(decoder.decode(IPFIX.message(sets: [IPFIX.set(300, [UInt8](repeating: 0, count: 1000))])).isEmpty)
        #expect(decoder.statistics.recordsWithoutFlowFields == 1000)
        #expect(decoder.statistics.flowRecords == 0)
        // A template of nothing but empty fields could never advance through a data set: malformed.
        _ = decoder.decode(IPFIX.message(sets: [Self.template(301, [FieldSpec(1, 0), FieldSpec(2, 0)])]))
        #expect(decoder.statistics.errors(.malformedTemplate) == 1)
    }

    @Test func templatesWithMoreFieldsThanTheCapAreRefusedAndTheRestOfTheSetIsRead() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxFieldsPerTemplate: 4))
        let big = IPFIX.templateRecord(300, [FieldSpec](repeating: FieldSpec(7, 2), count: 5))
        let small = IPFIX.templateRecord(256, [FieldSpec(7, 2), FieldSpec(11, 2)])
        _ = decoder.decode(IPFIX.message(sets: [IPFIX.templateSet(big, small)]))
        #expect(decoder.statistics.errors(.tooManyTemplateFields) == 1)
        #expect(decoder.activeTemplateCount == 1)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData])).count == 1)
        let v9Big = NetFlowV9.templateRecord(300, [(UInt16, UInt16)](repeating: (7, 2), count: 5))
        _ = decoder.decode(NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(0, v9Big)]))
        #expect(decoder.statistics.errors(.tooManyTemplateFields) == 2)
    }

    @Test func recordsOfATemplateWithoutFlowFieldsAreCountedNotEmitted() {
        let decoder = FlowDecoder()
        // paddingOctets (210) and an unknown IE: nothing a flow is made of.
        _ = decoder.decode(IPFIX.message(sets: [Self.template(300, [FieldSpec(210, Self.variableLength), FieldSpec(999, 1)])]))
        #expect(decoder.activeTemplateCount == 1)
        let records = decoder.decode(IPFIX.message(sets: [IPFIX.set(300, [UInt8](repeating: 0, count: 100))]))
        #expect(records.isEmpty)
        #expect(decoder.statistics.recordsWithoutFlowFields == 50)
        #expect(decoder.statistics.flowRecords == 0)
    }

    @Test func aVariableLengthTemplateCostsAtMostOneOperationPerOctetOfItsRecord() throws {
        // Unused fixed fields around a variable one merge into skips: 6 fields, 3 ops.
        let fields = [FieldSpec(999, 2), FieldSpec(998, 4), FieldSpec(7, Self.variableLength), FieldSpec(997, 1), FieldSpec(996, 8), FieldSpec(11, 2)]
        let plan = try DecodePlan.compile(
            templateID: 256, isOptions: false,
            fields: fields.map { TemplateField(id: $0.id, enterpriseNumber: 0, length: $0.length, isScope: false) },
            definition: []
        ).get()
        #expect(plan.ops.count == 4)
        #expect(plan.ops.map(\.length) == [6, 0, 9, 2])
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [Self.template(256, fields)]))
        let record: [UInt8] = [0, 0, 0, 0, 0, 0] + [2, 0, 80] + [UInt8](repeating: 0, count: 9) + [1, 187]
        let flows = decoder.decode(IPFIX.message(sets: [IPFIX.set(256, record + record)]))
        #expect(flows.map(\.srcPort) == [80, 80])
        #expect(flows.map(\.dstPort) == [443, 443])
    }

    // MARK: - Bytes

    @Test func templatesBeyondTheSessionByteBudgetAreRefused() {
        let fields = [FieldSpec](repeating: FieldSpec(7, 2), count: 100)  // ~656 bytes of cost each
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplateBytesPerSession: 2000))
        for id in UInt16(256)..<260 { _ = decoder.decode(IPFIX.message(sets: [Self.template(id, fields)])) }
        #expect(decoder.activeTemplateCount == 2)
        #expect(decoder.activeTemplateBytes <= 2000)
        #expect(decoder.statistics.templatesRejectedByLimit == 2)
        // Another session has its own budget.
        _ = decoder.decode(IPFIX.message(sets: [Self.template(256, fields)]), from: .v4(9, port: 9))
        #expect(decoder.activeTemplateCount == 3)
    }

    @Test func theWorkerByteBudgetEvictsTheLeastRecentlyUsedOtherSession() {
        let fields = [FieldSpec](repeating: FieldSpec(7, 2), count: 100)
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplateBytesTotal: 2000))
        for exporter in UInt32(1)...3 {
            _ = decoder.decode(IPFIX.message(sets: [Self.template(256, fields)]), from: .v4(exporter, port: 1))
        }
        #expect(decoder.activeTemplateCount == 2)
        #expect(decoder.activeTemplateBytes <= 2000)
        #expect(decoder.statistics.sessionsEvicted(.templateLimit) == 1)
        #expect(decoder.statistics.templatesRejectedByLimit == 0)
    }

    @Test func aRedefinitionTheBudgetRefusesRemovesTheOldDefinition() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplateBytesPerSession: 600))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]))
        _ = decoder.decode(IPFIX.message(sets: [Self.template(256, [FieldSpec](repeating: FieldSpec(7, 2), count: 100))]))
        #expect(decoder.statistics.templatesRejectedByLimit == 1)
        #expect(decoder.activeTemplateCount == 0)
        #expect(decoder.activeTemplateBytes == 0)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData])).isEmpty)
    }

    @Test func theSnapshotSizeIsKnownBeforeItIsWritten() {
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]))
        _ = decoder.decode(IPFIX.message(domain: 2, sets: [Self.portsTemplate, Self.template(257, [FieldSpec(8, 4)])]))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(9, port: 9))
        _ = decoder.decode(NetFlowV9.packet(flowSets: [NetFlowV9.flowSet(0, NetFlowV9.templateRecord(300, [(8, 4), (12, 4)]))]))
        var buffer: [UInt8] = []
        decoder.writeTemplateSnapshot(into: &buffer)
        #expect(decoder.templateSnapshotSize == buffer.count)
    }

    @Test func aSnapshotTemplateTheRulesRefuseIsSkippedAndCountedNotImported() {
        // A snapshot from a laxer writer: a zero-length field in one template, a good one after it.
        let source = FlowDecoder()
        _ = source.decode(IPFIX.message(sets: [Self.portsTemplate]))
        _ = source.decode(IPFIX.message(sets: [Self.template(257, [FieldSpec(8, 4)])]))
        var snapshot: [UInt8] = []
        source.writeTemplateSnapshot(into: &snapshot)
        // Turn template 257's field length 4 into 0 (its definition ends in 00 08 00 04) and fix the checksum.
        let tail: [UInt8] = [0, 8, 0, 4]
        guard let at = (0...(snapshot.count - 4)).first(where: { Array(snapshot[$0..<($0 + 4)]) == tail }) else {
            Issue.record("template 257's field not found in the snapshot")
            return
        }
        snapshot[at + 3] = 0
        let checksum = snapshot.withUnsafeBytes { TemplateSnapshot.checksum(UnsafeRawBufferPointer(rebasing: $0[TemplateSnapshot.headerLength...])) }
        for index in 0..<8 { snapshot[12 + index] = UInt8(truncatingIfNeeded: checksum >> UInt64(56 - 8 * index)) }
        let importer = FlowDecoder()
        let imported = snapshot.withUnsafeBytes { importer.importTemplateSnapshot($0, nowSeconds: 1_700_000_000) }
        #expect(imported == 1)
        #expect(importer.activeTemplateCount == 1)
        #expect(importer.statistics.errors(.malformedTemplate) == 1)
        #expect(importer.statistics.errors(.invalidTemplateSnapshot) == 0)
    }

    // MARK: - Sessions

    @Test func aHostCyclingPortsEvictsOnlyItsOwnSessions() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxSessions: 100, maxSessionsPerAddress: 8))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(1, port: 2055))
        for port in UInt16(1000)..<16000 {
            _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(2, port: port))
        }
        #expect(decoder.sessionCount == 9)
        #expect(decoder.statistics.sessionsEvicted(.addressQuota) == 15000 - 8)
        #expect(decoder.statistics.sessionsEvicted(.sessionLimit) == 0)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(1, port: 2055)).count == 1)
    }

    @Test func aSessionHoldingTemplatesIsNeverEvictedForANewSession() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxSessions: 3))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(1, port: 1))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(2, port: 1))
        // A v5 exporter has a session without templates: the least recently used such one goes first.
        _ = decoder.decode(Self.v5, from: .v4(3, port: 1))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(4, port: 1))
        #expect(decoder.statistics.sessionsEvicted(.sessionLimit) == 1)
        #expect(decoder.sessionCount == 3)
        // Now every session holds templates: a new IPFIX session is dropped, counted; v5 still decodes.
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsTemplate, Self.portsData]), from: .v4(5, port: 1)).isEmpty)
        #expect(decoder.statistics.datagramsWithoutSession == 1)
        #expect(decoder.decode(Self.v5, from: .v4(6, port: 1)).count == 1)
        #expect(decoder.statistics.datagramsWithoutSession == 1)
        for exporter in UInt32(1)...2 {
            #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(exporter, port: 1)).count == 1)
        }
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(4, port: 1)).count == 1)
    }

    @Test func evictionAtTheSessionLimitIsConstantTimeAndLeastRecentlyUsed() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxSessions: 1000, maxSessionsPerAddress: 1_000_000))
        for exporter in UInt32(1)...1000 {
            _ = decoder.decode(Self.v5, from: .v4(exporter, port: 1))
        }
        _ = decoder.decode(Self.v5, from: .v4(1, port: 1))  // 1 is now the newest
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for exporter in UInt32(2000)..<52000 {
                _ = decoder.decode(Self.v5, from: .v4(exporter, port: 1))
            }
        }
        #expect(decoder.sessionCount == 1000)
        #expect(decoder.statistics.sessionsEvicted(.sessionLimit) == 50000)
        // Exporter 1 was the newest before the flood; 999 newer sessions pushed it out after 1000 evictions.
        print("50,000 evictions at 1,000 sessions: \(elapsed)")
        #expect(elapsed < .seconds(5))
    }
}
