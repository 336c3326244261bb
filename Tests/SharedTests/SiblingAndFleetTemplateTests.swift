import Testing
@testable import FlowModel
@testable import Templates
@testable import Decoders

/// A snapshot published by another process, as a worker sees a sibling's template exchange.
final class PublishedSnapshot: TemplateSnapshotSource {
    private(set) var sequence: UInt64 = 0
    private var bytes: [UInt8] = []
    private(set) var reads = 0

    func publish(_ decoder: FlowDecoder) {
        decoder.writeTemplateSnapshot(into: &bytes)
        sequence += 2
    }

    func read() -> [UInt8]? {
        reads += 1
        return bytes
    }
}

/// Workers of one node find templates their siblings learned (server.balance=round-robin, or the fleet's
/// templates imported by worker 0); nodes publish what their exporters taught them to the template topic.
@Suite struct SiblingAndFleetTemplateTests {
    static let now: UInt32 = 1_700_000_000
    static let ports = [FieldSpec(7, 2), FieldSpec(11, 2)]
    static let template = IPFIX.message(sets: [IPFIX.templateSet(IPFIX.templateRecord(256, ports))])

    static func data(_ sourcePort: UInt16) -> [UInt8] {
        IPFIX.message(sets: [IPFIX.set(256, [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0, 80])])
    }

    @Test func aWorkerDecodesDataOfATemplateOnlyItsSiblingLearned() {
        let learner = FlowDecoder(), sibling = FlowDecoder()
        let exchange = PublishedSnapshot()
        sibling.useSiblingTemplates([exchange])
        _ = learner.decode(Self.template, nowSeconds: Self.now)
        exchange.publish(learner)

        let records = sibling.decode(Self.data(1234), nowSeconds: Self.now)
        #expect(records.map(\.srcPort) == [1234])
        #expect(sibling.statistics.setsWithUnknownTemplate == 0)
        #expect(sibling.statistics.siblingLookups == 1 && sibling.statistics.templatesFromSiblings == 1)
        // Learned now: the next data set needs no lookup.
        #expect(sibling.decode(Self.data(1235), nowSeconds: Self.now).map(\.srcPort) == [1235])
        #expect(sibling.statistics.siblingLookups == 1)
    }

    @Test func aTemplateNobodyKnowsCostsOneLookupPerPublishNotOnePerDataSet() {
        let sibling = FlowDecoder(), other = FlowDecoder()
        let exchange = PublishedSnapshot()
        sibling.useSiblingTemplates([exchange])
        exchange.publish(other)
        for port in 1...50 { _ = sibling.decode(Self.data(UInt16(port)), nowSeconds: Self.now) }
        #expect(sibling.statistics.setsWithUnknownTemplate == 50)
        #expect(sibling.statistics.siblingLookups == 1 && exchange.reads == 1)
        exchange.publish(other)  // a publish (of something else): one more look
        for port in 1...50 { _ = sibling.decode(Self.data(UInt16(port)), nowSeconds: Self.now) }
        #expect(sibling.statistics.siblingLookups == 2 && exchange.reads == 2)
    }

    @Test func roundRobinSyncTakesOverSamplingStateOfSessionsHeldHereOnly() {
        let learner = FlowDecoder(), sibling = FlowDecoder()
        let exchange = PublishedSnapshot()
        sibling.useSiblingTemplates([exchange])
        let elsewhere = ExporterAddress.v4(0xC000_0202, port: 1)
        _ = learner.decode(Self.template, nowSeconds: Self.now)
        _ = learner.decode(Self.template, from: elsewhere, nowSeconds: Self.now)
        _ = sibling.decode(Self.template, nowSeconds: Self.now)
        // The learner hears a redefinition (a third field) later than the sibling's copy.
        let redefined = IPFIX.message(sets: [IPFIX.templateSet(IPFIX.templateRecord(256, Self.ports + [FieldSpec(4, 1)]))])
        _ = learner.decode(redefined, nowSeconds: Self.now + 5)
        exchange.publish(learner)
        #expect(sibling.syncSiblingSessions(nowSeconds: Self.now + 6) == 1)
        #expect(sibling.sessionCount == 1, "a session the sibling never heard is not taken over")
        let record = sibling.decode(IPFIX.message(sets: [IPFIX.set(256, [0, 9, 0, 80, 17])]), nowSeconds: Self.now + 6)
        #expect(record.map(\.proto) == [17])
    }

    // MARK: - The fleet's template topic

    @Test func aNodePublishesWhatItsExportersTaughtItOnceAndATombstoneWhenItExpires() throws {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(templateLifetimeSeconds: 100))
        var ledger = FleetTemplateLedger(node: "node-a")
        _ = decoder.decode(Self.template, nowSeconds: Self.now)
        let first = ledger.changes(in: decoder, nowSeconds: Self.now)
        let message = try #require(first.first)
        #expect(first.count == 1 && message.key == "192.0.2.1/40000/1/256")
        // The value is this node's envelope around a snapshot another node imports as is.
        let other = FlowDecoder()
        let value = try #require(message.value)
        let imported = value.withUnsafeBytes { bytes -> Int in
            guard let (node, snapshot) = FleetTemplateMessage.parse(bytes) else { return -1 }
            #expect(node == "node-a")
            return other.importTemplateSnapshot(snapshot, nowSeconds: Self.now + 1)
        }
        #expect(imported == 1)
        #expect(other.decode(Self.data(77), nowSeconds: Self.now + 1).map(\.srcPort) == [77])
        // Nothing changed: nothing to publish; an imported template is never published by the importer.
        #expect(ledger.changes(in: decoder, nowSeconds: Self.now + 10).isEmpty)
        var otherLedger = FleetTemplateLedger(node: "node-b")
        #expect(otherLedger.changes(in: other, nowSeconds: Self.now + 1).isEmpty)
        // Refreshed by its exporter past a quarter of its lifetime: published again.
        _ = decoder.decode(Self.template, nowSeconds: Self.now + 30)
        #expect(ledger.changes(in: decoder, nowSeconds: Self.now + 30).count == 1)
        // Expired and swept: a tombstone.
        decoder.expireTemplates(nowSeconds: Self.now + 200)
        let gone = ledger.changes(in: decoder, nowSeconds: Self.now + 200)
        #expect(gone.count == 1 && gone[0].value == nil && gone[0].key == message.key)
    }

    @Test(arguments: [
        [UInt8](), [0x4B, 0x46, 0x54], [0x4B, 0x46, 0x54, 0x4D, 0, 2, 0], [0x4B, 0x46, 0x54, 0x4D, 0, 1, 9, 0x41],
        [UInt8](repeating: 0x4B, count: FleetTemplateMessage.maxValueBytes + 1),
    ])
    func aValueThatIsNotAFleetMessageIsRefused(value: [UInt8]) {
        #expect(value.withUnsafeBytes { FleetTemplateMessage.parse($0) } == nil)
    }
}

extension SiblingAndFleetTemplateTests {
    /// Round-robin: the data's worker meets the template before its sibling published it, and waits for
    /// that publish (here: the sibling publishes during the third pause) instead of dropping the set.
    @Test func aLookupThatFindsNothingWaitsForTheSiblingsNextPublishWithinItsBudget() {
        let learner = FlowDecoder(), sibling = FlowDecoder()
        let exchange = PublishedSnapshot()
        exchange.publish(learner)  // nothing yet
        var clock: UInt64 = 1_000_000_000
        var pauses = 0
        sibling.useSiblingTemplates([exchange], wait: SiblingWait(
            maxWaitNs: 10_000_000, budgetNs: 15_000_000, clock: { clock },
            pause: {
                clock += 1_000_000
                pauses += 1
                if pauses == 3 {
                    _ = learner.decode(Self.template, nowSeconds: Self.now)
                    exchange.publish(learner)
                }
            }))
        #expect(sibling.decode(Self.data(1), nowSeconds: Self.now).map(\.srcPort) == [1])
        #expect(pauses == 3 && sibling.statistics.setsWithUnknownTemplate == 0)
        // A template nobody publishes: one full wait (10 ms), then only the 2 ms left of this second's
        // budget, then none until the next second.
        let other = ExporterAddress.v4(0xC000_0203, port: 9)
        exchange.publish(FlowDecoder())
        _ = sibling.decode(Self.data(2), from: other, nowSeconds: Self.now)
        #expect(pauses == 13)
        exchange.publish(FlowDecoder())
        _ = sibling.decode(Self.data(3), from: other, nowSeconds: Self.now)
        #expect(pauses == 15)
        exchange.publish(FlowDecoder())
        _ = sibling.decode(Self.data(4), from: other, nowSeconds: Self.now)
        #expect(pauses == 15 && sibling.statistics.setsWithUnknownTemplate == 3)
    }
}
