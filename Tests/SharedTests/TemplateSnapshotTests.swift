import Foundation
import Testing
@testable import FlowModel
@testable import Templates
@testable import Decoders

/// Template snapshots: a decoder that learned templates from real exporters' packets hands them to a
/// fresh decoder (another worker process), which must then decode data exactly as the first one does.
@Suite struct TemplateSnapshotTests {
    static let now: UInt32 = 1_700_000_000

    // MARK: - Corpus round trip

    /// One valid corpus sequence: its packets and the exporter of each.
    struct Sequence {
        var name: String
        var packets: [(payload: [UInt8], exporter: ExporterAddress)]
    }

    static func validSequences() throws -> [Sequence] {
        let corpus = try #require(CorpusTests.corpusDirectory(), "corpus not found at ../shared/corpus nor /work/shared/corpus")
        let sequences = try CorpusTests.loadJSON(corpus.appendingPathComponent("sequences.json")) as? [[String: Any]] ?? []
        var result: [Sequence] = []
        for sequence in sequences where sequence["expect"] as? String == "valid" {
            let files = sequence["packets"] as? [String] ?? []
            let exporters = sequence["exporters"] as? [String] ?? []
            var packets: [(payload: [UInt8], exporter: ExporterAddress)] = []
            for (file, exporter) in zip(files, exporters) {
                let payload = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(file)))
                packets.append((payload, try #require(CorpusTests.parseExporter(exporter))))
            }
            result.append(Sequence(name: sequence["name"] as? String ?? "?", packets: packets))
        }
        return result
    }

    /// The payload without its (options) template sets / FlowSets: what a worker that never saw the
    /// templates receives once the exporter has sent them to its predecessor. Walks sets by their lengths
    /// (RFC 7011 §3.3, RFC 3954 §5); anything it cannot walk is kept as it is.
    static func withoutTemplates(_ payload: [UInt8]) -> [UInt8] {
        func be16(_ offset: Int) -> Int { Int(payload[offset]) << 8 | Int(payload[offset + 1]) }
        guard payload.count >= 20 else { return payload }
        let version = be16(0)
        guard version == 10 || version == 9 else { return payload }
        let headerLength = version == 10 ? 16 : 20
        let end = version == 10 ? min(be16(2), payload.count) : payload.count
        let templateSetIDs = version == 10 ? [2, 3] : [0, 1]
        var result = Array(payload[0..<headerLength])
        var offset = headerLength
        while end - offset >= 4 {
            let id = be16(offset), length = be16(offset + 2)
            guard length >= 4, length <= end - offset else { break }
            if !templateSetIDs.contains(id) { result += payload[offset..<(offset + length)] }
            offset += length
        }
        result += payload[offset..<end]
        if version == 10 {
            result[2] = UInt8(result.count >> 8)
            result[3] = UInt8(result.count & 0xFF)
        }
        return result
    }

    static func decode(_ decoder: FlowDecoder, _ payload: [UInt8], from exporter: ExporterAddress, nowSeconds: UInt32 = now) -> [String] {
        var sink = CollectingSink()
        payload.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: nowSeconds, into: &sink) }
        return sink.records.map { String(describing: $0) }
    }

    /// True when an IPFIX definition has an enterprise-specific field specifier (RFC 7011 §3.2).
    static func hasEnterpriseField(_ cached: CachedTemplate) -> Bool {
        guard cached.format == .ipfix else { return false }
        let definition = cached.plan.definition
        var cursor = cached.plan.isOptions ? 4 : 2
        while cursor + 4 <= definition.count {
            let isEnterprise = definition[cursor] & 0x80 != 0
            if isEnterprise { return true }
            cursor += 4
        }
        return false
    }

    @Test func aFreshDecoderThatImportsTheSnapshotDecodesDataLikeTheDecoderThatLearnedTheTemplates() throws {
        var sequencesCompared = 0, records = 0, recordsWithoutImport = 0, templatesImported = 0
        var sawOptions = false, sawVariableLength = false, sawEnterprise = false, sawIPFIX = false, sawNetFlowV9 = false
        for sequence in try Self.validSequences() {
            let learner = FlowDecoder()
            for packet in sequence.packets { _ = Self.decode(learner, packet.payload, from: packet.exporter) }
            for session in learner.cache.sessions.values {
                for state in session.domains.values {
                    for cached in state.templates.values {
                        sawOptions = sawOptions || cached.plan.isOptions
                        sawVariableLength = sawVariableLength || !cached.plan.isFixedLength
                        sawIPFIX = sawIPFIX || cached.format == .ipfix
                        sawNetFlowV9 = sawNetFlowV9 || cached.format == .netFlowV9
                        sawEnterprise = sawEnterprise || Self.hasEnterpriseField(cached)
                    }
                }
            }
            var snapshot: [UInt8] = []
            learner.writeTemplateSnapshot(into: &snapshot)
            let importer = FlowDecoder()
            let imported = snapshot.withUnsafeBytes { importer.importTemplateSnapshot($0, nowSeconds: Self.now) }
            #expect(imported == learner.activeTemplateCount, "\(sequence.name): imported \(imported) of \(learner.activeTemplateCount)")
            #expect(importer.activeTemplateCount == learner.activeTemplateCount, "\(sequence.name)")
            #expect(importer.statistics.errors(.invalidTemplateSnapshot) == 0, "\(sequence.name): \(String(describing: importer.lastTemplateSnapshotError))")
            templatesImported += imported

            let control = FlowDecoder()
            for packet in sequence.packets {
                let dataOnly = Self.withoutTemplates(packet.payload)
                let fromLearner = Self.decode(learner, dataOnly, from: packet.exporter)
                let fromImporter = Self.decode(importer, dataOnly, from: packet.exporter)
                #expect(fromImporter == fromLearner, "\(sequence.name): records differ after import")
                records += fromImporter.count
                recordsWithoutImport += Self.decode(control, dataOnly, from: packet.exporter).count
            }
            sequencesCompared += 1
        }
        print("snapshot: \(sequencesCompared) sequences, \(templatesImported) templates imported, \(records) data records identical; \(recordsWithoutImport) without import (NetFlow v5)")
        #expect(sequencesCompared > 100)
        #expect(records > 10_000)
        #expect(recordsWithoutImport < records / 10, "without the import the template-based data is lost")
        #expect(sawOptions && sawVariableLength && sawEnterprise && sawIPFIX && sawNetFlowV9)
    }

    /// Cisco NCS-55 (v9, two samplers) and ASR 9000 (IPFIX, a 1-in-256 selector) send their samplers'
    /// rates in options data only.
    @Test(arguments: ["ak_nf9_cisco_ncs55_samplers", "pm_104_ipfix_cisco_ipv6_sampling"])
    func samplingLearnedFromOptionsDataCarriesOver(sequenceName: String) throws {
        let sequence = try #require(try Self.validSequences().first { $0.name == sequenceName })
        let learner = FlowDecoder()
        for packet in sequence.packets { _ = Self.decode(learner, packet.payload, from: packet.exporter) }
        var snapshot: [UInt8] = []
        learner.writeTemplateSnapshot(into: &snapshot)
        let importer = FlowDecoder()
        snapshot.withUnsafeBytes { _ = importer.importTemplateSnapshot($0, nowSeconds: Self.now) }

        var domainsWithSampling = 0
        for (exporter, session) in learner.cache.sessions {
            for (domain, state) in session.domains where state.samplingInterval != 0 || !state.samplers.isEmpty {
                let imported = importer.cache.sessions[exporter]?.domains[domain]
                #expect(imported?.samplingInterval == state.samplingInterval)
                #expect(imported?.samplers == state.samplers, "samplers (snapshot extension kind 3)")
                #expect(imported?.optionsRefreshedSeconds == state.optionsRefreshedSeconds)
                domainsWithSampling += 1
            }
        }
        #expect(domainsWithSampling > 0)

        // Only packets without options data: the importer must not relearn the interval from them.
        var sampled = 0
        for packet in sequence.packets {
            let flowOnly = Self.withoutTemplates(packet.payload)
            let probe = FlowDecoder()
            Self.importing(snapshot, into: probe)
            _ = Self.decode(probe, flowOnly, from: packet.exporter)
            guard probe.statistics.optionsRecords == 0 else { continue }
            var fromLearner = CollectingSink(), fromImporter = CollectingSink()
            flowOnly.withUnsafeBytes {
                learner.decode($0, from: packet.exporter, nowSeconds: Self.now, into: &fromLearner)
                importer.decode($0, from: packet.exporter, nowSeconds: Self.now, into: &fromImporter)
            }
            #expect(fromImporter.records.map(\.samplingInterval) == fromLearner.records.map(\.samplingInterval))
            sampled += fromImporter.records.filter { $0.samplingInterval != 0 }.count
        }
        #expect(sampled > 0, "\(sequenceName): no record took its sampling interval from the imported options state")
    }

    // MARK: - Lifetimes

    static let portsTemplate = IPFIX.templateSet(IPFIX.templateRecord(256, [FieldSpec(7, 2), FieldSpec(11, 2)]))
    static let swappedPortsTemplate = IPFIX.templateSet(IPFIX.templateRecord(256, [FieldSpec(11, 2), FieldSpec(7, 2)]))
    static let portsData = IPFIX.set(256, [0, 1, 0, 2])

    static func snapshot(of decoder: FlowDecoder) -> [UInt8] {
        var bytes: [UInt8] = []
        decoder.writeTemplateSnapshot(into: &bytes)
        return bytes
    }

    @discardableResult
    static func importing(_ snapshot: [UInt8], into decoder: FlowDecoder, nowSeconds: UInt32 = now) -> Int {
        snapshot.withUnsafeBytes { decoder.importTemplateSnapshot($0, nowSeconds: nowSeconds) }
    }

    /// The sources of every template in a snapshot, as the master's /templates reads them.
    static func sources(in snapshot: [UInt8]) -> [TemplateSource] {
        snapshot.withUnsafeBytes { TemplateSnapshot.read($0).domains.flatMap { $0.templates.map(\.source) } }
    }

    @Test func eachTemplateRecordsHowTheWorkerGotItAndTheSnapshotCarriesIt() {
        let learner = FlowDecoder()
        _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        #expect(Self.sources(in: Self.snapshot(of: learner)) == [.wire])

        let restarted = FlowDecoder()
        let imported = Self.snapshot(of: learner).withUnsafeBytes { restarted.importTemplateSnapshot($0, nowSeconds: Self.now + 1, source: .disk) }
        #expect(imported == 1)
        #expect(Self.sources(in: Self.snapshot(of: restarted)) == [.disk])
        let sibling = FlowDecoder()
        Self.importing(Self.snapshot(of: restarted), into: sibling)
        #expect(Self.sources(in: Self.snapshot(of: sibling)) == [.sibling], "an importer records its own source")
        // The exporter re-sends the same template: from now on this worker has it from the wire.
        _ = restarted.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now + 2)
        #expect(Self.sources(in: Self.snapshot(of: restarted)) == [.wire])
    }

    @Test func aDomainExtensionOfAKindThisBuildDoesNotKnowIsSkippedAndTheTemplatesStillImport() {
        let learner = FlowDecoder()
        _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        var snapshot = Self.snapshot(of: learner)
        // One session, one domain, one template: the domain's extensions end the body; this build's is its
        // sequence state (kind 4, 14 octets without holes).
        let extensionArea = 2 + DomainExtension.entryHeaderLength + 14
        #expect(Array(snapshot.suffix(extensionArea).prefix(5)) == [0, 1, 4, 0, 14], "the sequence state is the one extension")
        #expect(snapshot.count == learner.templateSnapshotSize)
        snapshot.removeLast(extensionArea)
        snapshot += [0, 1, 250, 0, 3, 1, 2, 3]  // one extension: kind 250, 3 octets
        let importer = FlowDecoder()
        #expect(Self.importing(Self.resealed(snapshot), into: importer) == 1)
        #expect(importer.lastTemplateSnapshotError == nil)

        // The same extension cut short is a truncated entry.
        snapshot.removeLast(1)
        let cut = FlowDecoder()
        Self.importing(Self.resealed(snapshot), into: cut)
        guard case .truncatedEntry = cut.lastTemplateSnapshotError else {
            Issue.record("expected a truncated entry, got \(String(describing: cut.lastTemplateSnapshotError))")
            return
        }
    }

    @Test func aTemplateExpiredByTheImportersClockIsNotImported() {
        let configuration = DecoderConfiguration(templateLifetimeSeconds: 100)
        let learner = FlowDecoder(configuration: configuration)
        _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        let snapshot = Self.snapshot(of: learner)

        let late = FlowDecoder(configuration: configuration)
        #expect(Self.importing(snapshot, into: late, nowSeconds: Self.now + 101) == 0)
        #expect(late.activeTemplateCount == 0)
        #expect(late.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 101).isEmpty)

        let onTime = FlowDecoder(configuration: configuration)
        #expect(Self.importing(snapshot, into: onTime, nowSeconds: Self.now + 100) == 1)
    }

    @Test func anImportedTemplateKeepsItsLastRefreshTimeAndExpiresOnSchedule() {
        let configuration = DecoderConfiguration(templateLifetimeSeconds: 100)
        let learner = FlowDecoder(configuration: configuration)
        _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        let importer = FlowDecoder(configuration: configuration)
        #expect(Self.importing(Self.snapshot(of: learner), into: importer, nowSeconds: Self.now + 60) == 1)

        // Learned at `now`, not at the import: alive at now + 100, gone at now + 101.
        #expect(importer.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 100).count == 1)
        #expect(importer.decode(IPFIX.message(sets: [Self.portsData]), nowSeconds: Self.now + 101).isEmpty)
        #expect(importer.statistics.templatesExpired == 1)
    }

    @Test func theNewerDefinitionWinsWhicheverSideHoldsIt() {
        let older = FlowDecoder(), newer = FlowDecoder()
        _ = older.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        _ = newer.decode(IPFIX.message(sets: [Self.swappedPortsTemplate]), nowSeconds: Self.now + 10)

        // The older snapshot does not overwrite the newer definition.
        #expect(Self.importing(Self.snapshot(of: older), into: newer) == 0)
        #expect(newer.decode(IPFIX.message(sets: [Self.portsData])).map { $0.srcPort } == [2])
        // The newer snapshot replaces the older definition.
        #expect(Self.importing(Self.snapshot(of: newer), into: older) == 1)
        #expect(older.decode(IPFIX.message(sets: [Self.portsData])).map { $0.srcPort } == [2])
        #expect(older.statistics.templatesImported == 1)
        #expect(older.statistics.templatesAdded == 1, "imports are counted apart from templates learned from exporters")
    }

    // MARK: - Limits

    @Test func importHonoursTemplateAndSessionLimitsAndNeverEvicts() {
        let learner = FlowDecoder()
        for exporter in 1...4 as ClosedRange<UInt32> {
            let templates = (0..<3).map { IPFIX.templateRecord(256 + UInt16($0), [FieldSpec(7, 2), FieldSpec(11, 2)]) }
            _ = learner.decode(IPFIX.message(sets: [IPFIX.set(2, templates.flatMap { $0 })]), from: .v4(exporter, port: 9))
        }
        #expect(learner.activeTemplateCount == 12)

        let configuration = DecoderConfiguration(maxTemplatesPerSession: 2, maxTemplatesTotal: 5, maxSessions: 3)
        let importer = FlowDecoder(configuration: configuration)
        _ = importer.decode(IPFIX.message(sets: [Self.portsTemplate]), from: .v4(99, port: 9))
        let imported = Self.importing(Self.snapshot(of: learner), into: importer)

        // One live session, two importable ones of two templates each, but only 4 more fit in total.
        #expect(imported == 4)
        #expect(importer.activeTemplateCount == 5)
        #expect(importer.sessionCount == 3)
        #expect(importer.statistics.sessionsEvicted == 0)
        #expect(importer.decode(IPFIX.message(sets: [Self.portsData]), from: .v4(99, port: 9)).count == 1, "the live session stays")
        #expect(importer.statistics.templatesRejectedByLimit == UInt64(12 - imported))
    }

    // MARK: - Generation

    @Test func generationMovesOnAddReplaceExpiryAndImportButNotOnAnIdenticalRefresh() {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(templateLifetimeSeconds: 100))
        let initial = decoder.templateGeneration
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now)
        let afterAdd = decoder.templateGeneration
        #expect(afterAdd != initial)
        _ = decoder.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now + 5)
        #expect(decoder.templateGeneration == afterAdd, "an identical resend only refreshes")
        _ = decoder.decode(IPFIX.message(sets: [Self.swappedPortsTemplate]), nowSeconds: Self.now + 10)
        let afterReplace = decoder.templateGeneration
        #expect(afterReplace != afterAdd)
        decoder.expireTemplates(nowSeconds: Self.now + 111)
        let afterExpiry = decoder.templateGeneration
        #expect(afterExpiry != afterReplace)

        let learner = FlowDecoder()
        _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]), nowSeconds: Self.now + 200)
        let snapshot = Self.snapshot(of: learner)
        #expect(Self.importing(snapshot, into: decoder, nowSeconds: Self.now + 200) == 1)
        let afterImport = decoder.templateGeneration
        #expect(afterImport != afterExpiry)
        #expect(Self.importing(snapshot, into: decoder, nowSeconds: Self.now + 200) == 0, "import is idempotent")
        #expect(decoder.templateGeneration == afterImport)
    }

    @Test func importingTheSameSnapshotTwiceOrIntoItsWriterChangesNothing() throws {
        let sequence = try #require(try Self.validSequences().first { $0.name == "gl_nf9_nprobe_3" })
        let learner = FlowDecoder()
        for packet in sequence.packets { _ = Self.decode(learner, packet.payload, from: packet.exporter) }
        let snapshot = Self.snapshot(of: learner)
        let generation = learner.templateGeneration
        #expect(Self.importing(snapshot, into: learner) == 0)
        #expect(learner.templateGeneration == generation)

        let importer = FlowDecoder()
        let first = Self.importing(snapshot, into: importer)
        #expect(first == learner.activeTemplateCount && first > 0)
        let afterFirst = importer.templateGeneration
        #expect(Self.importing(snapshot, into: importer) == 0)
        #expect(importer.templateGeneration == afterFirst)
        #expect(importer.activeTemplateCount == first)
        #expect(Self.snapshot(of: importer).count == snapshot.count)
    }

    // MARK: - Bad input

    /// A snapshot of every valid corpus sequence at once (one exporter per sequence).
    static func corpusSnapshot() throws -> [UInt8] {
        let learner = FlowDecoder()
        for (index, sequence) in try validSequences().enumerated() {
            for packet in sequence.packets {
                _ = decode(learner, packet.payload, from: ExporterAddress(address: packet.exporter.address, port: UInt16(1000 + index)))
            }
        }
        return snapshot(of: learner)
    }

    @Test func headerFaultsRejectTheWholeSnapshotAndAreCounted() {
        let decoder = FlowDecoder()
        let valid = { () -> [UInt8] in
            let learner = FlowDecoder()
            _ = learner.decode(IPFIX.message(sets: [Self.portsTemplate]))
            return Self.snapshot(of: learner)
        }()
        var badMagic = valid
        badMagic[0] ^= 0xFF
        var badVersion = valid
        badVersion[5] = 99
        let cases: [([UInt8], TemplateSnapshotError)] = [
            ([], .tooShort(octets: 0)),
            (badMagic, .badMagic(found: 0xB446_5453)),
            (badVersion, .unsupportedVersion(99)),
            (valid + [0], .bodyLengthMismatch(declared: valid.count - 20, available: valid.count - 19)),
        ]
        for (index, (bytes, error)) in cases.enumerated() {
            #expect(Self.importing(bytes, into: decoder) == 0)
            #expect(decoder.lastTemplateSnapshotError == error)
            #expect(decoder.statistics.errors(.invalidTemplateSnapshot) == UInt64(index + 1))
        }
        #expect(decoder.activeTemplateCount == 0)
        #expect(Self.importing(valid, into: decoder) == 1)
        #expect(decoder.lastTemplateSnapshotError == nil)
    }

    @Test func everyTruncationAndBitFlipIsRejectedWithoutTrapping() throws {
        let snapshot = try Self.corpusSnapshot()
        let decoder = FlowDecoder()
        var rejected: UInt64 = 0, importedFromDamage = 0
        for length in 0..<snapshot.count {
            importedFromDamage += snapshot.withUnsafeBytes {
                decoder.importTemplateSnapshot(UnsafeRawBufferPointer(rebasing: $0[0..<length]), nowSeconds: Self.now)
            }
            rejected += 1
        }
        var generator = SeededGenerator(seed: 20_250_101)
        for _ in 0..<200 {
            var flipped = snapshot
            flipped[Int.random(in: 0..<flipped.count, using: &generator)] ^= 1 << UInt8.random(in: 0...7, using: &generator)
            importedFromDamage += Self.importing(flipped, into: decoder)
            rejected += 1
        }
        #expect(importedFromDamage == 0)
        #expect(decoder.activeTemplateCount == 0)
        #expect(decoder.templateGeneration == 0)
        #expect(decoder.statistics.errors(.invalidTemplateSnapshot) == rejected)
        print("snapshot robustness: \(snapshot.count)-octet corpus snapshot, \(rejected) truncated or flipped copies rejected")
    }

    /// Rewrites the body length and checksum so damage inside the body reaches the entry parser and the
    /// template decoders (a writer bug would look like this; transport damage fails the checksum).
    static func resealed(_ snapshot: [UInt8]) -> [UInt8] {
        var bytes = snapshot
        let bodyLength = UInt32(bytes.count - TemplateSnapshot.headerLength)
        for index in 0..<4 { bytes[8 + index] = UInt8(truncatingIfNeeded: bodyLength >> UInt32(24 - 8 * index)) }
        let checksum = bytes.withUnsafeBytes { TemplateSnapshot.checksum(UnsafeRawBufferPointer(rebasing: $0[TemplateSnapshot.headerLength...])) }
        for index in 0..<8 { bytes[12 + index] = UInt8(truncatingIfNeeded: checksum >> UInt64(56 - 8 * index)) }
        return bytes
    }

    @Test func damageBehindAValidChecksumNeverTrapsAndKeepsTheEntriesBeforeIt() throws {
        // Two templates in one domain, cut inside the second: the first is imported, the rest counted.
        let learner = FlowDecoder()
        _ = learner.decode(IPFIX.message(sets: [IPFIX.templateSet(
            IPFIX.templateRecord(256, [FieldSpec(7, 2), FieldSpec(11, 2)]),
            IPFIX.templateRecord(257, [FieldSpec(8, 4), FieldSpec(12, 4)]))]))
        let whole = Self.snapshot(of: learner)
        // Behind the second template: the domain's sequence state (2 + 3 + 14 octets).
        let cut = Self.resealed(Array(whole.dropLast(3 + 19)))
        let partial = FlowDecoder()
        #expect(Self.importing(cut, into: partial) == 1)
        #expect(partial.statistics.errors(.invalidTemplateSnapshot) == 1)
        guard case .truncatedEntry = partial.lastTemplateSnapshotError else {
            Issue.record("expected a truncated entry, got \(String(describing: partial.lastTemplateSnapshotError))")
            return
        }

        // Seeded byte damage everywhere in a corpus snapshot: whatever is imported stays within the
        // limits and decodes the corpus without trapping.
        let snapshot = try Self.corpusSnapshot()
        let sequences = try Self.validSequences()
        let configuration = DecoderConfiguration(maxTemplatesPerSession: 64, maxTemplatesTotal: 256, maxSessions: 16)
        var generator = SeededGenerator(seed: 7_340_033)
        var sink = DecoderRobustnessTests.CountingSink()
        for round in 0..<60 {
            var damaged = snapshot
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                damaged[Int.random(in: TemplateSnapshot.headerLength..<damaged.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            let decoder = FlowDecoder(configuration: configuration)
            Self.importing(Self.resealed(damaged), into: decoder)
            #expect(decoder.activeTemplateCount <= configuration.maxTemplatesTotal)
            #expect(decoder.sessionCount <= configuration.maxSessions)
            for (index, sequence) in sequences.enumerated() where index % 10 == round % 10 {
                for packet in sequence.packets.prefix(4) {
                    Self.withoutTemplates(packet.payload).withUnsafeBytes {
                        decoder.decode($0, from: ExporterAddress(address: packet.exporter.address, port: UInt16(1000 + index)), nowSeconds: Self.now, into: &sink)
                    }
                }
            }
        }
    }
}
