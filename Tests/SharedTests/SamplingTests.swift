import Testing
@testable import FlowModel
@testable import Templates
@testable import Decoders

/// Sampling rates per sampler (selector) from options data, the record's own sampler ID choosing one,
/// `sampling.default`, `sampling.override` and renormalisation.
@Suite struct SamplingTests {
    // IPFIX: a flow template with the selector ID (302, 2 octets), source port and counters.
    static let ipfixFlowTemplate = IPFIX.templateSet(IPFIX.templateRecord(
        300, [FieldSpec(302, 2), FieldSpec(7, 2), FieldSpec(1, 4), FieldSpec(2, 4)]))
    static func ipfixFlow(selector: UInt16, port: UInt16, bytes: UInt32 = 1500, packets: UInt32 = 3) -> [UInt8] {
        Wire { $0.u16(selector); $0.u16(port); $0.u32(bytes); $0.u32(packets) }.bytes
    }

    /// One domain, two selectors (scope selectorId 302): selector 1 is 1 packet in 100 (interval 1,
    /// space 99, IE 306 present); selector 2 sends samplingPacketInterval 512 without IE 306.
    static let twoSelectors: [[UInt8]] = [
        IPFIX.set(3, IPFIX.optionsTemplateRecord(
            400, scope: [FieldSpec(302, 4)], options: [FieldSpec(305, 4), FieldSpec(306, 4)])),
        IPFIX.set(3, IPFIX.optionsTemplateRecord(401, scope: [FieldSpec(302, 4)], options: [FieldSpec(305, 4)])),
        IPFIX.set(400, Wire { $0.u32(1); $0.u32(1); $0.u32(99) }.bytes),
        IPFIX.set(401, Wire { $0.u32(2); $0.u32(512) }.bytes),
    ]

    @Test func eachIPFIXRecordTakesItsSelectorsRateAndAnUnknownSelectorIsCounted() {
        let decoder = FlowDecoder()
        let data = IPFIX.set(300, Self.ipfixFlow(selector: 1, port: 1) + Self.ipfixFlow(selector: 2, port: 2)
            + Self.ipfixFlow(selector: 9, port: 3))
        let records = decoder.decode(IPFIX.message(sets: Self.twoSelectors + [Self.ipfixFlowTemplate, data]))
        #expect(records.map(\.srcPort) == [1, 2, 3])
        #expect(records.map(\.samplingInterval) == [100, 512, 0])
        #expect(records.map { $0.present.contains(.samplingInterval) } == [true, true, false])
        // Selector 9 is unknown and the domain has two samplers and no rate of its own: nothing to fall back on.
        #expect(decoder.statistics.flowsWithUnknownSampling == 1)
        #expect(decoder.statistics.optionsRecords == 2)
        // Counters stay as exported unless output.renormalize is set.
        #expect(records.map(\.bytes) == [1500, 1500, 1500])

        var gauges: [String] = []
        decoder.forEachSamplingRate { _, domain, sampler, rate in gauges.append("\(domain)/\(sampler.map(String.init) ?? "none")=\(rate)") }
        #expect(gauges.sorted() == ["1/1=100", "1/2=512"])
    }

    @Test func aRecordWithoutSelectorFallsBackToTheDomainsOwnRate() {
        let decoder = FlowDecoder()
        // Juniper style: options naming no sampler (scope: exportingProcessId 144) with samplingInterval 34.
        let domainOptions = [
            IPFIX.set(3, IPFIX.optionsTemplateRecord(402, scope: [FieldSpec(144, 4)], options: [FieldSpec(34, 4)])),
            IPFIX.set(402, Wire { $0.u32(7); $0.u32(2000) }.bytes),
        ]
        let plain = IPFIX.templateSet(IPFIX.templateRecord(301, [FieldSpec(7, 2), FieldSpec(1, 4)]))
        let records = decoder.decode(IPFIX.message(sets: Self.twoSelectors + domainOptions + [
            Self.ipfixFlowTemplate, plain,
            IPFIX.set(300, Self.ipfixFlow(selector: 2, port: 1) + Self.ipfixFlow(selector: 77, port: 2)),
            IPFIX.set(301, Wire { $0.u16(3); $0.u32(10) }.bytes),
        ]))
        #expect(records.map(\.samplingInterval) == [512, 2000, 2000])
        #expect(decoder.statistics.flowsWithUnknownSampling == 0)
    }

    @Test func randomNOutOfNSelectorsGivePopulationOverSize() {
        let decoder = FlowDecoder()
        // Cisco IOS-XE: selectorAlgorithm 3, samplingPacketInterval 1 beside samplingSize 1 and
        // samplingPopulation 256 (pm_104 in the corpus): the rate is 256, not 1.
        let options = IPFIX.set(3, IPFIX.optionsTemplateRecord(
            403, scope: [FieldSpec(302, 8)], options: [FieldSpec(305, 4), FieldSpec(304, 1), FieldSpec(309, 4), FieldSpec(310, 4)]))
        let optionsData = IPFIX.set(403, Wire { $0.u64(1); $0.u32(1); $0.u8(3); $0.u32(1); $0.u32(256) }.bytes)
        let records = decoder.decode(IPFIX.message(sets: [options, optionsData, Self.ipfixFlowTemplate, IPFIX.set(300, Self.ipfixFlow(selector: 1, port: 1))]))
        #expect(records.map(\.samplingInterval) == [256])
    }

    @Test func ratesFromRawValues() {
        func rate(_ build: (inout SamplingFields) -> Void) -> UInt32 {
            var fields = SamplingFields()
            build(&fields)
            return fields.rate
        }
        #expect(rate { $0.packetInterval = 1; $0.packetSpace = 999; $0.hasPacketSpace = true } == 1000)
        #expect(rate { $0.packetInterval = 1; $0.packetSpace = 0; $0.hasPacketSpace = true } == 1)  // softflowd, unsampled
        #expect(rate { $0.packetInterval = 3; $0.packetSpace = 7; $0.hasPacketSpace = true } == 3)  // 10/3 rounds to 3
        #expect(rate { $0.packetInterval = 2; $0.packetSpace = 3; $0.hasPacketSpace = true } == 3)  // 5/2 rounds up
        #expect(rate { $0.packetInterval = 512 } == 512)
        #expect(rate { $0.size = 1; $0.population = 256; $0.packetInterval = 1 } == 256)
        #expect(rate { $0.interval = 30000; $0.randomInterval = 30000 } == 30000)
        #expect(rate { $0.randomInterval = 4000 } == 4000)
        #expect(rate { _ in } == 0)
    }

    /// NetFlow v9 (Cisco IOS-XR / NCS-55): options scoped by System, FLOW_SAMPLER_ID 48 (1 octet),
    /// FLOW_SAMPLER_MODE 49, FLOW_SAMPLER_RANDOM_INTERVAL 50; flows carry FLOW_SAMPLER_ID.
    @Test func eachV9RecordTakesItsSamplersRate() {
        let decoder = FlowDecoder()
        let options = NetFlowV9.flowSet(1, NetFlowV9.optionsTemplateRecord(
            257, scope: [(1, 4)], options: [(48, 1), (49, 1), (50, 4)]) + [0, 0])
        let optionsData = NetFlowV9.flowSet(257, Wire {
            $0.u32(0xAC13_C8E4); $0.u8(1); $0.u8(2); $0.u32(2000)
            $0.u32(0xAC13_C8E4); $0.u8(2); $0.u8(2); $0.u32(4000)
            $0.zeros(0)
        }.bytes)
        let template = NetFlowV9.flowSet(0, NetFlowV9.templateRecord(260, [(7, 2), (1, 4), (2, 4), (48, 1)]))
        let data = NetFlowV9.flowSet(260, Wire {
            $0.u16(1); $0.u32(100); $0.u32(1); $0.u8(2)
            $0.u16(2); $0.u32(100); $0.u32(1); $0.u8(1)
            $0.u16(3); $0.u32(100); $0.u32(1); $0.u8(5)
            $0.zeros(3)
        }.bytes)
        let records = decoder.decode(NetFlowV9.packet(flowSets: [options, optionsData, template, data]))
        #expect(records.map(\.srcPort) == [1, 2, 3])
        #expect(records.map(\.samplingInterval) == [4000, 2000, 0])
        #expect(decoder.statistics.flowsWithUnknownSampling == 1)
    }

    static let overrideBlock = try! AddressPrefix(parsing: "10.0.0.0/8")

    @Test func overrideBeatsWhatTheExporterSaysAndDefaultFillsTheUnknown() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(
            sampling: SamplingConfiguration(defaultRate: 10, overrides: [(Self.overrideBlock, 2000)])))
        let message = IPFIX.message(sets: Self.twoSelectors + [
            Self.ipfixFlowTemplate, IPFIX.set(300, Self.ipfixFlow(selector: 1, port: 1) + Self.ipfixFlow(selector: 9, port: 2)),
        ])
        let overridden = decoder.decode(message, from: .v4(0x0A01_0203, port: 5000))
        #expect(overridden.map(\.samplingInterval) == [2000, 2000])
        #expect(decoder.statistics.flowsWithUnknownSampling == 0)

        let other = decoder.decode(message, from: .v4(0xC000_0201, port: 5000))
        #expect(other.map(\.samplingInterval) == [100, 10], "selector 1's rate, then sampling.default for selector 9")
        #expect(other.map { $0.present.contains(.samplingInterval) } == [true, true])
        #expect(decoder.statistics.flowsWithUnknownSampling == 1, "the default was needed: counted")

        var gauges: [String] = []
        decoder.forEachSamplingRate { exporter, _, sampler, rate in
            gauges.append("\(exporter.address)/\(sampler.map(String.init) ?? "none")=\(rate)")
        }
        #expect(gauges.sorted() == [
            "10.1.2.3/1=2000", "10.1.2.3/2=2000", "10.1.2.3/none=2000", "192.0.2.1/1=100", "192.0.2.1/2=512",
        ])
    }

    @Test func renormalisationMultipliesCountersByTheRateInUseAndSaturates() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(sampling: SamplingConfiguration(renormalize: true)))
        let data = IPFIX.set(300, Self.ipfixFlow(selector: 1, port: 1, bytes: 1500, packets: 3)
            + Self.ipfixFlow(selector: 2, port: 2, bytes: 40, packets: 1) + Self.ipfixFlow(selector: 9, port: 3, bytes: 7, packets: 1))
        let records = decoder.decode(IPFIX.message(sets: Self.twoSelectors + [Self.ipfixFlowTemplate, data]))
        #expect(records.map(\.bytes) == [150_000, 20_480, 7], "an unknown rate leaves the counters alone")
        #expect(records.map(\.packets) == [300, 512, 1])

        var record = FlowRecord()
        record.bytes = UInt64.max / 2
        record.packets = 5
        RecordDecoding.applySampling(3, defaultRate: 0, renormalize: true, to: &record)
        #expect(record.bytes == UInt64.max)
        #expect(record.packets == 15)
    }

    @Test func netFlowV5HeaderRateWithOverrideDefaultAndRenormalisation() {
        let plain = FlowDecoder(configuration: DecoderConfiguration(sampling: SamplingConfiguration(defaultRate: 50, renormalize: true)))
        let sampled = plain.decode(NetFlowV5DecoderTests.packet(count: 1, records: 1, sampling: 0x4000 | 100))
        #expect(sampled.map(\.samplingInterval) == [100])
        let unsampled = plain.decode(NetFlowV5DecoderTests.packet(count: 1, records: 1, sampling: 0))
        #expect(unsampled.map(\.samplingInterval) == [50])
        #expect(unsampled.first.map { $0.bytes / 50 } == sampled.first.map { $0.bytes / 100 })
        #expect(plain.statistics.flowsWithUnknownSampling == 1)

        let overridden = FlowDecoder(configuration: DecoderConfiguration(
            sampling: SamplingConfiguration(overrides: [(Self.overrideBlock, 7)])))
        let records = overridden.decode(NetFlowV5DecoderTests.packet(count: 1, records: 1, sampling: 0x4000 | 100), from: .v4(0x0A00_0001, port: 9))
        #expect(records.map(\.samplingInterval) == [7])
    }

    @Test func samplerTableIsBoundedAndItsSnapshotValueRoundTrips() {
        var table = SamplerTable()
        for id in 0..<UInt64(SamplerTable.capacity + 10) { table.set(sampler: id, rate: UInt32(id + 1)) }
        #expect(table.samplers.count == SamplerTable.capacity)
        #expect(table.rate(ofSampler: 0) == 0, "the oldest went")
        #expect(table.rate(ofSampler: 73) == 74)

        var bytes: [UInt8] = []
        table.write(into: &bytes)
        #expect(bytes.count == table.encodedLength)
        var copy = SamplerTable()
        #expect(bytes.withUnsafeBytes { copy.merge(encoded: $0) })
        #expect(copy == table)

        // What a live exporter said wins over the snapshot.
        var live = SamplerTable()
        live.set(sampler: 73, rate: 5)
        #expect(bytes.withUnsafeBytes { live.merge(encoded: $0) })
        #expect(live.rate(ofSampler: 73) == 5)
        #expect(live.rate(ofSampler: 72) == 73)

        // A value that is not whole entries, or has a zero rate, is refused.
        var refused = SamplerTable()
        #expect(![UInt8](repeating: 1, count: 13).withUnsafeBytes { refused.merge(encoded: $0) })
        #expect(![UInt8](repeating: 0, count: 12).withUnsafeBytes { refused.merge(encoded: $0) })
    }

    @Test func samplersCrossATemplateSnapshot() {
        let learner = FlowDecoder()
        _ = learner.decode(IPFIX.message(sets: Self.twoSelectors + [Self.ipfixFlowTemplate]))
        var snapshot: [UInt8] = []
        learner.writeTemplateSnapshot(into: &snapshot)
        let importer = FlowDecoder()
        snapshot.withUnsafeBytes { _ = importer.importTemplateSnapshot($0, nowSeconds: 1_700_000_000) }
        #expect(importer.lastTemplateSnapshotError == nil)
        let data = IPFIX.set(300, Self.ipfixFlow(selector: 2, port: 1) + Self.ipfixFlow(selector: 1, port: 2))
        #expect(importer.decode(IPFIX.message(sets: [data])).map(\.samplingInterval) == [512, 100])
    }
}
