import Foundation
import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Decoders

/// sFlow v5 datagrams written by hand (sflow_version_5.txt), so each test states the octets it feeds.
enum SFlow {
    static let arrivalMs: UInt64 = 1_700_000_000_123

    static func datagram(agentV6: Bool = false, subAgent: UInt32 = 3, sequence: UInt32 = 77, samples: [[UInt8]],
                         sampleCount: UInt32? = nil) -> [UInt8] {
        Wire {
            $0.u32(5)
            if agentV6 {
                $0.u32(2)
                $0.raw([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9])
            } else {
                $0.u32(1)
                $0.ipv4(192, 0, 2, 9)
            }
            $0.u32(subAgent)
            $0.u32(sequence)
            $0.u32(123_456)
            $0.u32(sampleCount ?? UInt32(samples.count))
            for sample in samples { $0.raw(sample) }
        }.bytes
    }

    static func tagged(_ format: UInt32, _ body: [UInt8]) -> [UInt8] {
        Wire { $0.u32(format); $0.u32(UInt32(body.count)); $0.raw(body) }.bytes
    }

    static func flowSample(rate: UInt32 = 512, pool: UInt32 = 1000, drops: UInt32 = 0, source: UInt32 = 5,
                           input: UInt32 = 11, output: UInt32 = 12, records: [[UInt8]]) -> [UInt8] {
        tagged(1, Wire {
            $0.u32(9)  // sequence
            $0.u32(source)
            $0.u32(rate)
            $0.u32(pool)
            $0.u32(drops)
            $0.u32(input)
            $0.u32(output)
            $0.u32(UInt32(records.count))
            for r in records { $0.raw(r) }
        }.bytes)
    }

    static func expandedFlowSample(rate: UInt32 = 1000, input: (UInt32, UInt32) = (0, 21), output: (UInt32, UInt32) = (0, 22),
                                   records: [[UInt8]]) -> [UInt8] {
        tagged(3, Wire {
            $0.u32(9)
            $0.u32(0)  // source type
            $0.u32(0x0100_0000)  // source index beyond 24 bits
            $0.u32(rate)
            $0.u32(4000)
            $0.u32(0)
            $0.u32(input.0); $0.u32(input.1)
            $0.u32(output.0); $0.u32(output.1)
            $0.u32(UInt32(records.count))
            for r in records { $0.raw(r) }
        }.bytes)
    }

    static func rawHeader(_ packet: [UInt8], protocol headerProtocol: UInt32 = 1, frameLength: UInt32? = nil) -> [UInt8] {
        tagged(1, Wire {
            $0.u32(headerProtocol)
            $0.u32(frameLength ?? UInt32(packet.count + 4))
            $0.u32(4)
            $0.u32(UInt32(packet.count))
            $0.raw(packet)
            $0.zeros((4 - packet.count % 4) % 4)
        }.bytes)
    }

    static func ethernet(vlans: [UInt16] = [], type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        Wire {
            $0.raw([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
            for (i, vid) in vlans.enumerated() { $0.u16(i == 0 && vlans.count > 1 ? 0x88A8 : 0x8100); $0.u16(vid) }
            $0.u16(type)
            $0.raw(payload)
        }.bytes
    }

    static func ipv4(proto: UInt8, tos: UInt8 = 0x20, fragmentOffset: UInt16 = 0, _ transport: [UInt8]) -> [UInt8] {
        Wire {
            $0.u8(0x45); $0.u8(tos); $0.u16(UInt16(20 + transport.count)); $0.u16(0); $0.u16(fragmentOffset)
            $0.u8(64); $0.u8(proto); $0.u16(0)
            $0.ipv4(10, 0, 0, 1); $0.ipv4(10, 0, 0, 2)
            $0.raw(transport)
        }.bytes
    }

    static let v6Source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    static let v6Destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]

    /// IPv6 with `extensions` (next header, body after the 2 octets of next header and length) before the transport.
    static func ipv6(next: UInt8, extensions: [(UInt8, [UInt8])] = [], _ transport: [UInt8]) -> [UInt8] {
        Wire {
            $0.u32(6 << 28 | 0x0B << 20)  // traffic class 0x0B
            $0.u16(0)
            $0.u8(extensions.first?.0 ?? next)
            $0.u8(64)
            $0.raw(v6Source); $0.raw(v6Destination)
            for (i, ext) in extensions.enumerated() {
                $0.u8(i + 1 < extensions.count ? extensions[i + 1].0 : next)
                let length = 2 + ext.1.count
                $0.u8(ext.0 == 44 ? 0 : UInt8(length / 8 - 1))
                $0.raw(ext.1)
            }
            $0.raw(transport)
        }.bytes
    }

    static func tcp(_ sport: UInt16, _ dport: UInt16, flags: UInt8) -> [UInt8] {
        Wire { $0.u16(sport); $0.u16(dport); $0.u32(1); $0.u32(0); $0.u8(0x50); $0.u8(flags); $0.u16(65535); $0.u32(0) }.bytes
    }

    static func udp(_ sport: UInt16, _ dport: UInt16) -> [UInt8] { Wire { $0.u16(sport); $0.u16(dport); $0.u16(8); $0.u16(0) }.bytes }

    static func extendedSwitch(vlan: UInt32) -> [UInt8] { tagged(1001, Wire { $0.u32(vlan); $0.u32(0); $0.u32(7); $0.u32(0) }.bytes) }

    static func extendedRouter() -> [UInt8] {
        tagged(1002, Wire { $0.u32(1); $0.ipv4(192, 0, 2, 254); $0.u32(24); $0.u32(16) }.bytes)
    }

    static func extendedGateway(path: [[UInt32]]) -> [UInt8] {
        tagged(1003, Wire {
            $0.u32(1); $0.ipv4(198, 51, 100, 1)
            $0.u32(64500)  // own AS
            $0.u32(64501)  // source AS
            $0.u32(64502)  // source peer AS
            $0.u32(UInt32(path.count))
            for segment in path { $0.u32(2); $0.u32(UInt32(segment.count)); for asn in segment { $0.u32(asn) } }
            $0.u32(1); $0.u32(0xFFFF_0001)  // one community
            $0.u32(100)  // local preference
        }.bytes)
    }

    static func counterSample() -> [UInt8] {
        tagged(2, Wire { $0.u32(1); $0.u32(5); $0.u32(1); $0.raw(tagged(1, [UInt8](repeating: 0, count: 88))) }.bytes)
    }

    /// UDP payloads to port 6343 in a classic pcap with Ethernet link type (the public captures).
    static func payloads(ofPcap url: URL) throws -> [[UInt8]] {
        let data = [UInt8](try Data(contentsOf: url))
        func le32(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 | Int(data[at + 2]) << 16 | Int(data[at + 3]) << 24 }
        func be16(_ frame: ArraySlice<UInt8>, _ at: Int) -> Int { Int(frame[frame.startIndex + at]) << 8 | Int(frame[frame.startIndex + at + 1]) }
        #expect(le32(0) == 0xA1B2_C3D4 && le32(20) == 1, "\(url.lastPathComponent): not a little-endian Ethernet pcap")
        var offset = 24, result: [[UInt8]] = []
        while offset + 16 <= data.count {
            let length = le32(offset + 8)
            let frame = data[(offset + 16)..<(offset + 16 + length)]
            offset += 16 + length
            var at = 14, type = be16(frame, 12)
            while type == 0x8100 { type = be16(frame, at + 2); at += 4 }
            let udpAt: Int
            switch type {
            case 0x0800 where frame[frame.startIndex + at + 9] == 17: udpAt = at + Int(frame[frame.startIndex + at] & 0x0F) * 4
            case 0x86DD where frame[frame.startIndex + at + 6] == 17: udpAt = at + 40
            default: continue
            }
            guard be16(frame, udpAt + 2) == 6343 else { continue }
            let start = frame.startIndex + udpAt + 8
            result.append(Array(data[start..<(frame.startIndex + udpAt + be16(frame, udpAt + 4))]))
        }
        return result
    }

    static var corpus: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sflow-corpus")
    }

    static func corpusPayloads() throws -> [[UInt8]] {
        let files = try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "pcap" }.sorted { $0.path < $1.path }
        #expect(files.count >= 10, "the sFlow corpus is missing at \(corpus.path)")
        return try files.flatMap { try payloads(ofPcap: $0) }
    }
}

extension FlowDecoder {
    func decodeSFlow(_ bytes: [UInt8], from exporter: ExporterAddress = .testExporter) -> [FlowRecord] {
        var sink = CollectingSink()
        bytes.withUnsafeBytes { decode($0, from: exporter, nowSeconds: 1_700_000_000, arrivalMs: SFlow.arrivalMs, into: &sink) }
        return sink.records
    }
}

@Suite struct SFlowDecoderTests {
    @Test func aCompactSampleOfATaggedIPv4TCPPacketWithExtendedRecordsFillsTheRecord() throws {
        let packet = SFlow.ethernet(vlans: [120], type: 0x0800, SFlow.ipv4(proto: 6, SFlow.tcp(443, 51000, flags: 0x18)))
        let datagram = SFlow.datagram(samples: [SFlow.flowSample(records: [
            SFlow.extendedSwitch(vlan: 0), SFlow.rawHeader(packet, frameLength: 1514), SFlow.extendedRouter(),
            SFlow.extendedGateway(path: [[64510, 64511], [64512]]),
        ])])
        let decoder = FlowDecoder()
        var seen: [SFlowDatagramHeader] = []
        decoder.sflowDatagramObserver = { _, header in seen.append(header) }
        let records = decoder.decodeSFlow(datagram)
        let r = try #require(records.first)
        #expect(records.count == 1)
        #expect(r.exporter == ExporterAddress.testExporter.address && r.observationDomain == 3 && r.exportTimeMs == SFlow.arrivalMs)
        #expect((r.src, r.dst, r.srcPort, r.dstPort) == (ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 443, 51000))
        #expect((r.proto, r.tcpFlags, r.tos) == (6, 0x18, 0x20))
        #expect((r.bytes, r.packets, r.samplingInterval) == (1514, 1, 512))
        #expect((r.inputInterface, r.outputInterface, r.vlan) == (11, 12, 120))
        #expect((r.nextHop, r.srcMask, r.dstMask) == (ipv4(192, 0, 2, 254), 24, 16))
        #expect((r.srcAS, r.dstAS) == (64501, 64512))
        #expect(r.present.isSuperset(of: [.samplingInterval, .inputInterface, .outputInterface, .vlan, .nextHop, .srcAS, .dstAS, .srcMask, .dstMask, .tos]))
        #expect(seen == [SFlowDatagramHeader(agent: ipv4(192, 0, 2, 9), subAgent: 3, sequence: 77, uptimeMs: 123_456, sampleCount: 1)])
        #expect(decoder.statistics.sflowDatagrams == 1 && decoder.statistics.sflowFlowSamples == 1 && decoder.statistics.flowRecords == 1)
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func sequenceNumbersAreTrackedPerAgentAndSubAgent() {
        let decoder = FlowDecoder()
        let sample = SFlow.flowSample(records: [SFlow.rawHeader(SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 17, SFlow.udp(1, 2))))])
        // Sub-agent 3: 1, 2, 4, 3 (one reordered), then 5 and 22 (16 lost once the window passes);
        // sub-agent 4 interleaved with its own numbering: no loss of its own.
        for (index, sequence) in [UInt32](arrayLiteral: 1, 2, 4, 3, 5, 22).enumerated() {
            _ = decoder.decodeSFlow(SFlow.datagram(subAgent: 3, sequence: sequence, samples: [sample]))
            _ = decoder.decodeSFlow(SFlow.datagram(subAgent: 4, sequence: 100 + UInt32(index), samples: [sample]))
        }
        for sequence: UInt32 in 23...40 { _ = decoder.decodeSFlow(SFlow.datagram(subAgent: 3, sequence: sequence, samples: [sample])) }
        #expect(decoder.statistics.sequenceReordered == 1)
        #expect(decoder.statistics.sequenceLost == 16, "6...21 never came")
        #expect(decoder.statistics.sequenceResets == 0)
    }

    @Test func anExpandedSampleOfIPv6WithExtensionHeadersFromAnIPv6Agent() throws {
        let hopByHop: (UInt8, [UInt8]) = (0, [UInt8](repeating: 0, count: 6))
        let routing: (UInt8, [UInt8]) = (43, [UInt8](repeating: 0, count: 14))
        let fragment: (UInt8, [UInt8]) = (44, [0, 0, 0, 0, 0, 1])  // offset 0: the first fragment
        let packet = SFlow.ethernet(type: 0x86DD, SFlow.ipv6(next: 17, extensions: [hopByHop, routing, fragment], SFlow.udp(5353, 53)))
        let datagram = SFlow.datagram(agentV6: true, samples: [SFlow.expandedFlowSample(output: (2, 3), records: [SFlow.rawHeader(packet)])])
        let decoder = FlowDecoder()
        var agents: [IPAddress] = []
        decoder.sflowDatagramObserver = { _, header in agents.append(header.agent) }
        let r = try #require(decoder.decodeSFlow(datagram).first)
        #expect(r.src.family == .v6 && r.src.low == 1 && r.dst.low == 2)
        #expect((r.proto, r.srcPort, r.dstPort, r.tos) == (17, 5353, 53, 0x0B))
        #expect((r.inputInterface, r.samplingInterval) == (21, 1000))
        #expect(!r.present.contains(.outputInterface), "output format 2 (several interfaces) names no one interface")
        #expect(agents.first?.family == .v6)
    }

    @Test func qinqKeepsTheOuterVLANAndAnExtendedSwitchVLANOverridesIt() throws {
        let packet = SFlow.ethernet(vlans: [300, 42], type: 0x0800, SFlow.ipv4(proto: 17, SFlow.udp(1, 2)))
        let decoder = FlowDecoder()
        #expect(decoder.decodeSFlow(SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(packet)])])).first?.vlan == 300)
        let unknownSwitchVLAN = SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.extendedSwitch(vlan: 0xFFFF_FFFF), SFlow.rawHeader(packet)])])
        #expect(decoder.decodeSFlow(unknownSwitchVLAN).first?.vlan == 300)
        let switchVLAN = SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(packet), SFlow.extendedSwitch(vlan: 77)])])
        #expect(decoder.decodeSFlow(switchVLAN).first?.vlan == 77)
    }

    @Test func icmpAndICMPv6TypeAndCodeGoToTheDestinationPortAsIPFIXExportersWriteThem() {
        let icmp = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 1, [3, 1, 0, 0, 0, 0, 0, 0]))
        let icmp6 = SFlow.ethernet(type: 0x86DD, SFlow.ipv6(next: 58, [128, 0, 0, 0, 0, 0, 0, 0]))
        let records = FlowDecoder().decodeSFlow(SFlow.datagram(samples: [
            SFlow.flowSample(records: [SFlow.rawHeader(icmp)]), SFlow.flowSample(records: [SFlow.rawHeader(icmp6)]),
        ]))
        #expect(records.map { [$0.proto, UInt8($0.dstPort >> 8), UInt8($0.dstPort & 0xFF), UInt8($0.srcPort)] } == [[1, 3, 1, 0], [58, 128, 0, 0]])
    }

    @Test func aHeaderCutByTheSnapLengthKeepsWhatCameBeforeTheCutAndIsCounted() throws {
        let full = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 6, SFlow.tcp(443, 80, flags: 2)))
        let decoder = FlowDecoder()
        let cutInTCP = Array(full[..<(14 + 20 + 6)])  // ports, but not the flags
        let r = try #require(decoder.decodeSFlow(SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(cutInTCP, frameLength: 60)])])).first)
        #expect((r.src, r.srcPort, r.dstPort, r.bytes) == (ipv4(10, 0, 0, 1), 443, 80, 60))
        #expect(!r.present.contains(.tcpFlags))
        let cutInIP = Array(full[..<20])
        let s = try #require(decoder.decodeSFlow(SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(cutInIP, frameLength: 60)])])).first)
        #expect(s.src == .none && s.bytes == 60)
        #expect(decoder.statistics.sflowPartialPacketHeaders == 2 && decoder.statistics.totalErrors == 0)
    }

    @Test func laterFragmentsHaveNoPorts() throws {
        let packet = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 17, fragmentOffset: 100, SFlow.udp(1, 2)))
        let r = try #require(FlowDecoder().decodeSFlow(SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(packet)])])).first)
        #expect(r.proto == 17 && r.srcPort == 0 && r.dstPort == 0)
    }

    @Test func counterSamplesAndUnknownFormatsAreCountedAndSkippedByTheirLength() {
        let packet = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 17, SFlow.udp(1, 2)))
        let datagram = SFlow.datagram(samples: [
            SFlow.counterSample(), SFlow.tagged(0x0001_2001, [1, 2, 3, 4]),  // enterprise 18, format 1
            SFlow.flowSample(records: [SFlow.tagged(2100, [9, 9, 9, 9, 9, 9, 9, 9]), SFlow.rawHeader(packet)]),
        ])
        let decoder = FlowDecoder()
        #expect(decoder.decodeSFlow(datagram).map(\.dstPort) == [2])
        #expect((decoder.statistics.sflowCounterSamples, decoder.statistics.sflowUnknownSamples, decoder.statistics.sflowUnknownRecords) == (1, 1, 1))
        #expect(decoder.statistics.totalErrors == 0)
    }

    @Test func badLengthsAreCountedByKindAndTheRestSalvagedWhereItCanBeFound() {
        let packet = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 17, SFlow.udp(1, 2)))
        let good = SFlow.flowSample(records: [SFlow.rawHeader(packet)])
        let decoder = FlowDecoder()
        // A record longer than its sample: that sample is dropped, the next one read.
        var badRecord = SFlow.flowSample(records: [SFlow.rawHeader(packet)])
        badRecord[8 + 32 + 7] = 0xF0
        #expect(decoder.decodeSFlow(SFlow.datagram(samples: [badRecord, good])).count == 1)
        #expect(decoder.statistics.errors(.sflowBadRecordLength) == 1)
        // A sample longer than the datagram: the rest of the datagram is lost.
        var badSample = good
        badSample[7] = 0xFF
        #expect(decoder.decodeSFlow(SFlow.datagram(samples: [good, badSample, good])).count == 1)
        #expect(decoder.statistics.errors(.sflowBadSampleLength) == 1)
        // More samples announced than present; an unknown agent address type; a short datagram.
        #expect(decoder.decodeSFlow(SFlow.datagram(samples: [good], sampleCount: 3)).count == 1)
        #expect(decoder.statistics.errors(.sflowTruncatedDatagram) == 1)
        var badAgent = SFlow.datagram(samples: [good])
        badAgent[7] = 3
        #expect(decoder.decodeSFlow(badAgent).isEmpty && decoder.statistics.errors(.sflowBadAddressType) == 1)
        #expect(decoder.decodeSFlow([0, 0, 0, 5, 0, 0, 0, 1, 192, 0]).isEmpty && decoder.statistics.errors(.sflowTruncatedDatagram) == 2)
    }

    @Test func theSharedPortTellsSFlowFromNetFlowV5ByTheFirstWord() {
        let decoder = FlowDecoder()
        let packet = SFlow.ethernet(type: 0x0800, SFlow.ipv4(proto: 17, SFlow.udp(1, 2)))
        #expect(decoder.decodeSFlow(SFlow.datagram(samples: [SFlow.flowSample(records: [SFlow.rawHeader(packet)])])).count == 1)
        #expect(decoder.decodeSFlow([0, 0, 0, 4] + [UInt8](repeating: 0, count: 40)).isEmpty)  // sFlow v4: not decoded
        #expect(decoder.statistics.errors(.unsupportedVersion) == 1 && decoder.statistics.sflowDatagrams == 1)
    }

    @Test func agentsDropsAndPoolGrowFromTheFirstValueSeenAcrossWrapsAndRestarts() {
        let table = SFlowAgentTable(maxSources: 2)
        let agent = ipv4(192, 0, 2, 1)
        table.observe(agent: agent, subAgent: 0, source: 1, pool: 4_294_967_000, drops: 10)
        table.observe(agent: agent, subAgent: 0, source: 1, pool: 704, drops: 15)  // pool wrapped: +1000
        table.observe(agent: agent, subAgent: 0, source: 2, pool: 50, drops: 100)  // a new source: its baseline
        table.observe(agent: agent, subAgent: 0, source: 2, pool: 60, drops: 103)
        table.observe(agent: agent, subAgent: 0, source: 1, pool: 30, drops: 2)  // the agent restarted
        #expect(table.agents[agent] == SFlowAgentStatistics(samplePool: 1000 + 10 + 30, samplesDropped: 5 + 3 + 2))
        table.observe(agent: ipv4(192, 0, 2, 2), subAgent: 0, source: 1, pool: 1, drops: 1)  // beyond maxSources
        #expect(table.agents.count == 1)
    }

    @Test func everyTruncationBitFlipAndHostileLengthOfRealDatagramsIsSurvivedAndCounted() throws {
        let payloads = try SFlow.corpusPayloads()
        let decoder = FlowDecoder()
        var whole = 0
        for payload in payloads { whole += decoder.decodeSFlow(payload).count }
        #expect(whole > 10 && decoder.statistics.totalErrors == 0, "the public captures decode cleanly")
        var generator = SeededGenerator(seed: 14)
        for payload in payloads {
            // Where the announced samples end (some agents send octets after them, which are ignored).
            func word(_ at: Int) -> Int { payload[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
            var end = word(4) == 1 ? 28 : 40
            for _ in 0..<word(end - 4) { end += 8 + word(end + 4) }
            for cut in 0..<end {
                let before = decoder.statistics.totalErrors
                _ = decoder.decodeSFlow(Array(payload[..<cut]))
                // Whatever the cut, something the datagram announced is missing: always counted.
                #expect(decoder.statistics.totalErrors > before, "a cut at \(cut) of \(end) octets went uncounted")
            }
            for _ in 0..<300 {
                var damaged = payload
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    damaged[Int.random(in: 0..<damaged.count, using: &generator)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
                }
                _ = decoder.decodeSFlow(damaged)
            }
            for word in stride(from: 0, to: payload.count - 3, by: 4) {
                var hostile = payload
                hostile.replaceSubrange(word..<(word + 4), with: [0xFF, 0xFF, 0xFF, 0xF0])
                _ = decoder.decodeSFlow(hostile)
            }
        }
        #expect(decoder.statistics.errors(.sflowBadSampleLength) > 0 && decoder.statistics.errors(.sflowBadRecordLength) > 0)
        #expect(decoder.statistics.errors(.sflowTruncatedDatagram) > 0)
    }
}
