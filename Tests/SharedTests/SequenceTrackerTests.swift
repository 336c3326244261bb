import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Templates
@testable import Decoders

/// Export sequence accounting: loss, reordering within the window, restarts.
@Suite struct SequenceTrackerTests {
    /// Feeds (sequence, count) pairs and sums what each message changed.
    static func run(_ messages: [(UInt32, UInt32)], uptimes: [UInt32]? = nil, into tracker: inout SequenceTracker) -> SequenceTracker.Counts {
        var total = SequenceTracker.Counts()
        for (index, (sequence, count)) in messages.enumerated() {
            total += tracker.observe(sequence, count: count, uptimeMs: uptimes?[index])
        }
        return total
    }

    static func run(_ messages: [(UInt32, UInt32)], uptimes: [UInt32]? = nil) -> SequenceTracker.Counts {
        var tracker = SequenceTracker()
        return run(messages, uptimes: uptimes, into: &tracker)
    }

    /// Messages of 10 records each, numbered from `first`.
    static func stream(from first: UInt32, messages: Int, records: UInt32 = 10) -> [(UInt32, UInt32)] {
        (0..<messages).map { (first &+ UInt32($0) * records, records) }
    }

    @Test func anUnbrokenStreamCountsNothing() {
        #expect(Self.run(Self.stream(from: 0, messages: 50)) == .init())
    }

    @Test func aGapIsLostOnlyOnceTheWindowHasPassed() {
        var tracker = SequenceTracker()
        var messages = Self.stream(from: 0, messages: 5)
        messages += Self.stream(from: 70, messages: Int(SequenceTracker.reorderWindow))  // 20 records (2 messages) missing
        #expect(Self.run(messages, into: &tracker) == .init(), "within the window nothing is lost yet")
        #expect(tracker.observe(70 + UInt32(SequenceTracker.reorderWindow) * 10, count: 10) == .init(lost: 20))
    }

    @Test func aLateMessageWithinTheWindowIsReorderedNotLost() {
        let messages: [(UInt32, UInt32)] = [(0, 10), (20, 10), (10, 10), (30, 10)] + Self.stream(from: 40, messages: 30)
        #expect(Self.run(messages) == .init(reordered: 1))
    }

    @Test func aLateMessageFillingPartOfAHoleLeavesTheRestLost() {
        // 10..40 missing; 20..30 arrives late; 10..20 and 30..40 never do.
        let messages: [(UInt32, UInt32)] = [(0, 10), (40, 10), (20, 10)] + Self.stream(from: 50, messages: 30)
        #expect(Self.run(messages) == .init(lost: 20, reordered: 1))
    }

    @Test func anExporterRestartIsAResetNotLoss() {
        // Back to 0 after 500 records, then on from there.
        let messages = Self.stream(from: 0, messages: 50) + Self.stream(from: 0, messages: 30)
        #expect(Self.run(messages) == .init(resets: 1))
    }

    @Test func aFallingUptimeIsARestartAtOnce() {
        // NetFlow v9: packets numbered 100, 101, then a restarted exporter at 7 whose uptime is small.
        let counts = Self.run([(100, 1), (101, 1), (7, 1), (8, 1)], uptimes: [900_000, 901_000, 2_000, 3_000])
        #expect(counts == .init(resets: 1))
    }

    @Test func aStrayDuplicateBehindTheStreamIsReorderedNotAReset() {
        let messages: [(UInt32, UInt32)] = Self.stream(from: 0, messages: 30) + [(100, 10)] + Self.stream(from: 300, messages: 30)
        #expect(Self.run(messages) == .init(reordered: 1))
    }

    @Test func aHugeForwardJumpIsAResetNotLoss() {
        let messages = Self.stream(from: 0, messages: 5) + Self.stream(from: 3_000_000_000, messages: 30)
        #expect(Self.run(messages) == .init(resets: 1))
    }

    @Test func numbersWrapAt32Bits() {
        #expect(Self.run(Self.stream(from: UInt32.max - 45, messages: 30)) == .init())
    }

    @Test func moreOpenHolesThanKeptSettleTheOldest() {
        // Every other message missing: each of the 9 gaps is a hole; the ninth settles the first at once.
        let messages = (0..<10).map { (UInt32($0) * 20, UInt32(10)) }
        #expect(Self.run(messages).lost == 10 * UInt64(9 - SequenceTracker.maxHoles))
    }

    @Test func anUnknownCountOnlyResynchronises() {
        var tracker = SequenceTracker()
        _ = tracker.observe(0, count: 10)
        _ = tracker.observe(10, count: nil)  // a set with an unknown template
        var counts = tracker.observe(57, count: 10)
        for sequence in stride(from: UInt32(67), to: 400, by: 10) { counts += tracker.observe(sequence, count: 10) }
        #expect(counts == .init())
    }

    @Test func theStateRoundTripsThroughItsSnapshotForm() throws {
        var tracker = SequenceTracker()
        _ = Self.run([(0, 10), (40, 10), (20, 10)], into: &tracker)
        var bytes: [UInt8] = []
        tracker.write(into: &bytes)
        #expect(bytes.count == tracker.encodedLength)
        var copy = try #require(bytes.withUnsafeBytes { SequenceTracker(serialized: $0) })
        #expect(copy.isFromSnapshot)
        // The copy goes on exactly as the original would.
        let rest = Self.stream(from: 50, messages: 30)
        #expect(Self.run(rest, into: &copy) == Self.run(rest, into: &tracker))
        #expect(!copy.isFromSnapshot)
        // Damaged forms are refused.
        #expect(bytes.dropLast().withUnsafeBytes { SequenceTracker(serialized: $0) } == nil)
        var badFlags = bytes
        badFlags[12] = 0x80
        #expect(badFlags.withUnsafeBytes { SequenceTracker(serialized: $0) } == nil)
    }

    // MARK: - Through the decoders, with each protocol's meaning

    /// IPFIX numbers data records: a message of 3 records advances the sequence by 3.
    @Test func ipfixCountsDataRecords() {
        let decoder = FlowDecoder()
        let template = IPFIX.templateSet(IPFIX.templateRecord(256, [FieldSpec(7, 2), FieldSpec(11, 2)]))
        let three = IPFIX.set(256, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])
        _ = decoder.decode(IPFIX.message(sequence: 0, sets: [template, three]))
        _ = decoder.decode(IPFIX.message(sequence: 3, sets: [three]))
        _ = decoder.decode(IPFIX.message(sequence: 12, sets: [three]))  // 6..12 lost
        for index in 0..<Int(SequenceTracker.reorderWindow) {
            _ = decoder.decode(IPFIX.message(sequence: 15 + UInt32(index) * 3, sets: [three]))
        }
        #expect(decoder.statistics.sequenceLost == 6)
        var perExporter: [ExporterAddress: ExporterStatistics] = [:]
        decoder.forEachSession { perExporter[$0.exporter] = $0.statistics }
        #expect(perExporter[.testExporter]?.sequenceLost == 6)
    }

    /// NetFlow v9 numbers export packets, whatever they hold.
    @Test func netflowV9CountsPackets() {
        let decoder = FlowDecoder()
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(300, [(8, 4)]))
        let data = NetFlowV9.flowSet(300, Wire { $0.ipv4(10, 0, 0, 1); $0.ipv4(10, 0, 0, 2) }.bytes)
        _ = decoder.decode(NetFlowV9.packet(sequence: 0, flowSets: [template, data]))
        for sequence in UInt32(1)...40 where sequence != 5 && sequence != 9 {
            _ = decoder.decode(NetFlowV9.packet(sequence: sequence, flowSets: [data]))
        }
        #expect((decoder.statistics.sequenceLost, decoder.statistics.sequenceReordered) == (2, 0))
    }

    /// NetFlow v5 numbers flows: flow_sequence is the first flow's number.
    @Test func netflowV5CountsFlows() {
        func packet(_ sequence: UInt32, flows: Int) -> [UInt8] {
            var bytes = NetFlowV5DecoderTests.packet(count: UInt16(flows), records: flows)
            for index in 0..<4 { bytes[16 + index] = UInt8(truncatingIfNeeded: sequence >> UInt32(24 - 8 * index)) }
            return bytes
        }
        let decoder = FlowDecoder()
        var sequence: UInt32 = 1000
        for index in 0..<30 {
            if index != 3 { _ = decoder.decode(packet(sequence, flows: 5)) }
            sequence += 5
        }
        #expect(decoder.statistics.sequenceLost == 5)
    }

    // MARK: - Across snapshots (reload, crash)

    static let oneRecord = IPFIX.set(256, [0, 1, 0, 2])

    /// Sends messages numbered `numbers`, one record each (the first with its template when `learning`).
    static func feed(_ decoder: FlowDecoder, _ numbers: Range<UInt32>, learning: Bool = false) {
        let template = IPFIX.templateSet(IPFIX.templateRecord(256, [FieldSpec(7, 2), FieldSpec(11, 2)]))
        for sequence in numbers {
            let sets = learning && sequence == numbers.lowerBound ? [template, oneRecord] : [oneRecord]
            _ = decoder.decode(IPFIX.message(sequence: sequence, sets: sets))
        }
    }

    static func snapshot(of decoder: FlowDecoder) -> [UInt8] {
        var bytes: [UInt8] = []
        decoder.writeTemplateSnapshot(into: &bytes)
        return bytes
    }

    /// A fresh decoder that imported `snapshots` in order.
    static func successor(importing snapshots: [[UInt8]]) -> FlowDecoder {
        let decoder = FlowDecoder()
        for snapshot in snapshots {
            _ = snapshot.withUnsafeBytes { decoder.importTemplateSnapshot($0, nowSeconds: 1_700_000_000) }
            #expect(decoder.lastTemplateSnapshotError == nil)
        }
        return decoder
    }

    @Test func sequenceStateCarriesThroughATemplateSnapshot() {
        let learner = FlowDecoder()
        Self.feed(learner, 0..<2, learning: true)
        let successor = Self.successor(importing: [Self.snapshot(of: learner)])
        // The successor expects 2: the stream goes on without loss or reset; a gap is still seen.
        Self.feed(successor, 2..<10)
        Self.feed(successor, 12..<40)
        #expect(successor.statistics.sequenceLost == 2)
        #expect(successor.statistics.sequenceResets == 0)
    }

    /// A successor takes the predecessor's early snapshot at start and its last one as it drains: the last
    /// one wins while the stream has not been heard live.
    @Test func aLaterSnapshotReplacesAnImportedStateNotYetHeardLive() {
        let learner = FlowDecoder()
        Self.feed(learner, 0..<1, learning: true)
        let early = Self.snapshot(of: learner)
        Self.feed(learner, 1..<20)
        let successor = Self.successor(importing: [early, Self.snapshot(of: learner)])
        Self.feed(successor, 20..<40)
        #expect(successor.statistics.sequenceLost == 0)
    }

    /// A sibling that imported the stream early (and never heard it) publishes that stale copy too; the
    /// copy of the worker that heard the stream wins whatever the order the successor reads them in.
    @Test func theCopyOfTheWorkerThatHeardTheStreamBeatsASiblingsImportedCopy() {
        let learner = FlowDecoder()
        Self.feed(learner, 0..<1, learning: true)
        let stale = Self.snapshot(of: Self.successor(importing: [Self.snapshot(of: learner)]))
        Self.feed(learner, 1..<20)
        let heard = Self.snapshot(of: learner)
        for order in [[heard, stale], [stale, heard]] {
            let successor = Self.successor(importing: order)
            Self.feed(successor, 20..<40)
            #expect(successor.statistics.sequenceLost == 0)
        }
    }
}
