import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Templates
@testable import Decoders

/// Template scoping, lifetimes and limits (RFC 7011 §8, §10.3.1), through the decoder's public API.
@Suite struct TemplateCacheTests {
    static let now: UInt32 = 1_700_000_000

    static func template(_ id: UInt16, _ fields: [FieldSpec]) -> [UInt8] { IPFIX.templateSet(IPFIX.templateRecord(id, fields)) }
    static let portsTemplate = template(256, [FieldSpec(7, 2), FieldSpec(11, 2)])
    static let portsData = IPFIX.set(256, [0, 1, 0, 2])
    /// One template set defining templates 256, 257 and 258 (one field each).
    static let threeTemplates = IPFIX.templateSet(
        IPFIX.templateRecord(256, [FieldSpec(7, 2)]), IPFIX.templateRecord(257, [FieldSpec(7, 2)]),
        IPFIX.templateRecord(258, [FieldSpec(7, 2)]))

    @Test func redefinitionReplacesTheTemplateAndIdenticalResendOnlyRefreshes() {
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]))
        #expect(decoder.statistics.templatesAdded == 1)
        #expect(decoder.statistics.templatesReplaced == 0)
        // Same ID, ports swapped.
        let swapped = Self.template(256, [FieldSpec(11, 2), FieldSpec(7, 2)])
        let records = decoder.decode(IPFIX.message(sets: [swapped, Self.portsData]))
        #expect(decoder.statistics.templatesReplaced == 1)
        #expect(decoder.activeTemplateCount == 1)
        #expect(records.first.map { ($0.srcPort, $0.dstPort) } ?? (0, 0) == (2, 1))
    }

    @Test func templateExpiresAfterItsLifetimeWithoutRefresh() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(templateLifetimeSeconds: 100))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 100).count == 1)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 101).isEmpty)
        #expect(decoder.statistics.templatesExpired == 1)
        #expect(decoder.statistics.setsWithUnknownTemplate == 1)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func refreshExtendsTheLifetime() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(templateLifetimeSeconds: 100))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now + 90)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 180).count == 1)
        #expect(decoder.statistics.templatesExpired == 0)
    }

    @Test func sweepRemovesExpiredTemplatesOfIdleExporters() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(templateLifetimeSeconds: 100))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(1, port: 1), nowSeconds: Self.now)
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(2, port: 1), nowSeconds: Self.now + 50)
        #expect(decoder.activeTemplateCount == 2)
        decoder.expireTemplates(nowSeconds: Self.now + 101)
        #expect(decoder.activeTemplateCount == 1)
        #expect(decoder.statistics.templatesExpired == 1)
        #expect(decoder.sessionCount == 1, "the idle session without templates is dropped")
        // Decoding also sweeps by itself, once a minute of `nowSeconds`.
        _ = decoder.decode(IPFIX.message(sets: []), from: .v4(3, port: 1), nowSeconds: Self.now + 400)
        #expect(decoder.activeTemplateCount == 0)
    }

    @Test func templatesAreScopedToAddressPortAndObservationDomain() {
        let decoder = FlowDecoder()
        _ = decoder.decode(IPFIX.message(domain: 1, sets: [Self.portsTemplate]), from: .v4(1, port: 1000))
        // Same ID, other layout, for another domain of the same session.
        _ = decoder.decode(IPFIX.message(domain: 2, sets: [Self.template(256, [FieldSpec(11, 2), FieldSpec(7, 2)])]), from: .v4(1, port: 1000))
        let domain1 = decoder.decode(IPFIX.message(domain: 1, sets: [Self.portsData]), from: .v4(1, port: 1000))
        let domain2 = decoder.decode(IPFIX.message(domain: 2, sets: [Self.portsData]), from: .v4(1, port: 1000))
        let otherPort = decoder.decode(IPFIX.message(domain: 1, sets: [Self.portsData]), from: .v4(1, port: 1001))
        let otherAddress = decoder.decode(IPFIX.message(domain: 1, sets: [Self.portsData]), from: .v4(9, port: 1000))
        #expect(domain1.first?.srcPort == 1)
        #expect(domain2.first?.srcPort == 2)
        #expect(otherPort.isEmpty && otherAddress.isEmpty)
        #expect(decoder.statistics.setsWithUnknownTemplate == 2)
        #expect(decoder.statistics.templatesReplaced == 0)
    }

    @Test func perSessionLimitRejectsNewTemplatesButAllowsRedefinition() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplatesPerSession: 2))
        _ = decoder.decode(IPFIX.message(sets: [Self.threeTemplates]))
        #expect(decoder.activeTemplateCount == 2)
        #expect(decoder.statistics.templatesRejectedByLimit == 1)
        // A new domain of the same session is within the same limit.
        _ = decoder.decode(IPFIX.message(domain: 5, sets: [Self.template(300, [FieldSpec(7, 2)])]))
        #expect(decoder.statistics.templatesRejectedByLimit == 2)
        // Redefining an existing ID at the limit is allowed.
        _ = decoder.decode(IPFIX.message(sets: [Self.template(257, [FieldSpec(11, 2)])]))
        #expect(decoder.statistics.templatesReplaced == 1)
        #expect(decoder.decode(IPFIX.message(sets: [IPFIX.set(257, [0, 9])])).first?.dstPort == 9)
        // Another session has its own allowance.
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(7, port: 7))
        #expect(decoder.activeTemplateCount == 3)
    }

    @Test func totalLimitEvictsTheLeastRecentlyUsedOtherSessionSoNewExportersAreNotLockedOut() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplatesTotal: 3))
        for exporter in 1...3 {
            _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(UInt32(exporter), port: 1))
        }
        _ = decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(1, port: 1))  // 1 is now the most recent
        // A fourth exporter at the total limit gets its template; exporter 2, idle the longest, makes room.
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(4, port: 1))
        #expect(decoder.activeTemplateCount == 3)
        #expect(decoder.statistics.templatesRejectedByLimit == 0)
        #expect(decoder.statistics.sessionsEvicted == 1)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(4, port: 1)).count == 1)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(1, port: 1)).count == 1)
        #expect(decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(2, port: 1)).isEmpty)
    }

    @Test func totalLimitStillRejectsWhenOnlyTheSessionItselfHoldsTemplates() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxTemplatesPerSession: 10, maxTemplatesTotal: 2))
        _ = decoder.decode(IPFIX.message(sets: [Self.threeTemplates]))
        #expect(decoder.activeTemplateCount == 2)
        #expect(decoder.statistics.templatesRejectedByLimit == 1)
    }

    @Test func leastRecentlyUsedSessionWithoutTemplatesIsEvictedAtTheSessionLimit() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(maxSessions: 2))
        // Sessions that sent only data (templates not yet known) hold none: those make room.
        _ = decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(1, port: 1))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(2, port: 1))
        _ = decoder.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(1, port: 1))  // 1 is now the most recent
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(3, port: 1))
        #expect(decoder.sessionCount == 2)
        #expect(decoder.statistics.sessionsEvicted(.sessionLimit) == 1)
        #expect(decoder.activeTemplateCount == 1)
        var exporters: [ExporterAddress] = []
        decoder.forEachSession { exporters.append($0.exporter) }
        #expect(Set(exporters) == [.v4(1, port: 1), .v4(3, port: 1)])
    }

    @Test func perExporterStatisticsCountDatagramsAndRecordsAcrossDomains() {
        let decoder = FlowDecoder()
        let exporter = ExporterAddress.v4(0x0A00_0001, port: 2055)
        _ = decoder.decode(IPFIX.message(domain: 3, sets: [Self.portsTemplate, Self.portsData]), from: exporter)
        _ = decoder.decode(IPFIX.message(domain: 4, sets: [Self.portsData]), from: exporter)
        var seen: [(ExporterAddress, ExporterStatistics)] = []
        decoder.forEachSession { seen.append(($0.exporter, $0.statistics)) }
        #expect(seen.count == 1)
        #expect(seen.first?.0 == exporter)
        #expect(seen.first?.1.datagrams == 2)
        #expect(seen.first?.1.flowRecords == 1)
        #expect(seen.first?.1.setsWithUnknownTemplate == 1)
    }
}
