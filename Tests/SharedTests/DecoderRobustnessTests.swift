import Foundation
import Testing
@testable import FlowModel
@testable import Templates
@testable import Decoders

/// Corrupted real payloads: every truncation and seeded random byte flips of each corpus datagram.
/// The decoder must never trap, and the template cache must stay within its limits.
@Suite struct DecoderRobustnessTests {
    struct CountingSink: FlowSink {
        var count = 0
        mutating func emit(_ record: borrowing FlowRecord) { count += 1 }
    }

    @Test func truncatedAndBitFlippedCorpusPayloadsNeverTrapAndStayWithinLimits() throws {
        let corpus = try #require(CorpusTests.corpusDirectory(), "corpus not found at ../shared/corpus from the package root nor at /work/shared/corpus")
        let sequences = try CorpusTests.loadJSON(corpus.appendingPathComponent("sequences.json")) as? [[String: Any]] ?? []
        let configuration = DecoderConfiguration(maxTemplatesPerSession: 64, maxTemplatesTotal: 256, maxSessions: 16)
        let decoder = FlowDecoder(configuration: configuration)
        var generator = SeededGenerator(seed: 20_240_601)
        var sink = CountingSink()
        var datagrams = 0
        for (sequenceIndex, sequence) in sequences.enumerated() {
            // One exporter per sequence (mod 32, beyond maxSessions) so eviction is exercised too.
            let exporter = ExporterAddress.v4(0x0A00_0000 | UInt32(sequenceIndex % 32), port: 4739)
            for file in (sequence["packets"] as? [String] ?? []).prefix(8) {
                let original = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(file)))
                // The intact packet first, so templates exist and data sets are reached.
                original.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: 1_700_000_000, into: &sink) }
                for length in 0..<original.count {
                    original.withUnsafeBytes {
                        decoder.decode(UnsafeRawBufferPointer(rebasing: $0[0..<length]), from: exporter, nowSeconds: 1_700_000_000, into: &sink)
                    }
                }
                for _ in 0..<32 {
                    var mutated = original
                    for _ in 0..<Int.random(in: 1...4, using: &generator) where !mutated.isEmpty {
                        mutated[Int.random(in: 0..<mutated.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                    }
                    mutated.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: 1_700_000_000, into: &sink) }
                }
                datagrams += original.count + 33
                #expect(decoder.activeTemplateCount <= configuration.maxTemplatesTotal)
                #expect(decoder.sessionCount <= configuration.maxSessions)
            }
        }
        let stats = decoder.statistics
        print("robustness: \(datagrams) corrupted datagrams, \(sink.count) records, \(stats.totalErrors) errors, \(stats.templatesRejectedByLimit) templates rejected by limit, \(stats.sessionsEvicted) sessions evicted, \(decoder.activeTemplateCount) templates cached")
        #expect(datagrams > 100_000)
        #expect(stats.totalErrors > 0)
        #expect(stats.sessionsEvicted > 0)
    }
}
