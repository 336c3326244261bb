import FlowModel
import WireFormat
import Templates

/// The sFlow v5 datagram header (sflow_version_5.txt, `sample_datagram_v5`): who sent the datagram and
/// where it stands in that agent's sequence (tracked per agent and sub-agent like v5's engines, see
/// `SequenceStream`). Also handed to `FlowDecoder.sflowDatagramObserver`, when set.
public struct SFlowDatagramHeader: Equatable, Sendable {
    /// The agent's own address (not necessarily the UDP source).
    public var agent: IPAddress
    public var subAgent: UInt32
    /// Incremented by one per datagram of this agent and sub-agent.
    public var sequence: UInt32
    /// Milliseconds since the agent booted.
    public var uptimeMs: UInt32
    public var sampleCount: UInt32

    public init(agent: IPAddress, subAgent: UInt32, sequence: UInt32, uptimeMs: UInt32, sampleCount: UInt32) {
        self.agent = agent
        self.subAgent = subAgent
        self.sequence = sequence
        self.uptimeMs = uptimeMs
        self.sampleCount = sampleCount
    }
}

/// sFlow v5 (sflow.org/sflow_version_5.txt): each flow sample (formats 1 and 3) is one `FlowRecord` of
/// one sampled packet: `bytes` = its frame length, `packets` = 1, `samplingInterval` = the sample's rate.
/// Counter samples are counted, never emitted. Every length is checked before it is used; a structure
/// that does not fit where it is (a sample past the datagram, a record past its sample) is counted and
/// what holds it is dropped, unknown formats are skipped by their lengths.
enum SFlowDecoder {
    static let version: UInt32 = 5

    /// Sample formats (enterprise 0).
    static let flowSample: UInt32 = 1, counterSample: UInt32 = 2
    static let expandedFlowSample: UInt32 = 3, expandedCounterSample: UInt32 = 4
    /// Flow record formats (enterprise 0).
    static let rawPacketHeader: UInt32 = 1, ipv4Data: UInt32 = 3, ipv6Data: UInt32 = 4
    static let extendedSwitch: UInt32 = 1001, extendedRouter: UInt32 = 1002, extendedGateway: UInt32 = 1003

    static func decode(
        _ bytes: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, arrivalMs: UInt64,
        cache: TemplateCache, agents: SFlowAgentTable, observer: ((ExporterAddress, SFlowDatagramHeader) -> Void)?,
        statistics: inout DecodeStatistics, batch: inout RecordBatch
    ) {
        guard bytes.count >= 8 else {
            statistics.count(.sflowTruncatedDatagram)
            return
        }
        var offset = 8
        let agent: IPAddress
        switch bytes.readBE32(at: 4) {
        case 1 where bytes.count >= offset + 4:
            agent = IPAddress(v4: bytes.readBE32(at: offset))
            offset += 4
        case 2 where bytes.count >= offset + 16:
            agent = bytes.readIPv6(at: offset)
            offset += 16
        case 1, 2:
            statistics.count(.sflowTruncatedDatagram)
            return
        default:
            statistics.count(.sflowBadAddressType)
            return
        }
        guard bytes.count >= offset + 16 else {
            statistics.count(.sflowTruncatedDatagram)
            return
        }
        let header = SFlowDatagramHeader(
            agent: agent, subAgent: bytes.readBE32(at: offset), sequence: bytes.readBE32(at: offset + 4),
            uptimeMs: bytes.readBE32(at: offset + 8), sampleCount: bytes.readBE32(at: offset + 12))
        offset += 16
        statistics.sflowDatagrams &+= 1
        observer?(exporter, header)

        let session = cache.beginMessage(from: exporter, domain: header.subAgent, nowSeconds: nowSeconds, statistics: &statistics)
        // One datagram per sequence number, per agent and sub-agent (a relay may forward several agents).
        if let session, let counts = session.observeSequence(
            of: SequenceStream(origin: header.agent, id: header.subAgent), header.sequence, count: 1,
            uptimeMs: header.uptimeMs)
        {
            DecodeMessage.account(counts, session: session, statistics: &statistics)
        }
        var message = FlowRecord()
        message.exporter = exporter.address
        message.observationDomain = header.subAgent
        message.exportTimeMs = arrivalMs
        var flows: UInt64 = 0

        // Every sample consumes at least its 8-octet header: the loop ends with the datagram, whatever
        // the count says.
        var remaining = header.sampleCount
        while remaining > 0 {
            remaining -= 1
            guard bytes.count - offset >= 8 else {
                statistics.count(.sflowTruncatedDatagram)
                break
            }
            let format = bytes.readBE32(at: offset)
            let length = Int(bytes.readBE32(at: offset + 4))
            let start = offset + 8
            guard length <= bytes.count - start else {
                // The next sample cannot be found: the rest of the datagram goes.
                statistics.count(.sflowBadSampleLength)
                break
            }
            offset = start + length
            let sample = start..<offset
            switch format {
            case flowSample, expandedFlowSample:
                statistics.sflowFlowSamples &+= 1
                if decodeFlowSample(bytes, sample, expanded: format == expandedFlowSample, header: header,
                                    message: message, agents: agents, statistics: &statistics, batch: &batch) {
                    flows &+= 1
                }
            case counterSample, expandedCounterSample:
                statistics.sflowCounterSamples &+= 1
            default:
                statistics.sflowUnknownSamples &+= 1
            }
        }
        statistics.flowRecords &+= flows
        session?.statistics.flowRecords &+= flows
    }

    /// One flow sample in `sample` (its body, after format and length); true when it was emitted.
    private static func decodeFlowSample(
        _ bytes: UnsafeRawBufferPointer, _ sample: Range<Int>, expanded: Bool, header: SFlowDatagramHeader,
        message: borrowing FlowRecord, agents: SFlowAgentTable, statistics: inout DecodeStatistics,
        batch: inout RecordBatch
    ) -> Bool {
        // compact: sequence, source_id, rate, pool, drops, input, output, record count (8 words);
        // expanded: sequence, source type, source index, rate, pool, drops, input format+value,
        // output format+value, record count (11 words).
        let fixed = expanded ? 44 : 32
        guard sample.count >= fixed else {
            statistics.count(.sflowBadSampleLength)
            return false
        }
        let base = sample.lowerBound
        let source: UInt64, rate: UInt32, pool: UInt32, drops: UInt32, recordCount: UInt32
        var input: UInt32?, output: UInt32?
        if expanded {
            source = UInt64(bytes.readBE32(at: base + 4)) << 32 | UInt64(bytes.readBE32(at: base + 8))
            rate = bytes.readBE32(at: base + 12)
            pool = bytes.readBE32(at: base + 16)
            drops = bytes.readBE32(at: base + 20)
            // Format 0 = an ifIndex; 1 (discarded) and 2 (several interfaces) name no one interface.
            if bytes.readBE32(at: base + 24) == 0 { input = bytes.readBE32(at: base + 28) }
            if bytes.readBE32(at: base + 32) == 0 { output = bytes.readBE32(at: base + 36) }
            recordCount = bytes.readBE32(at: base + 40)
        } else {
            source = UInt64(bytes.readBE32(at: base + 4))
            rate = bytes.readBE32(at: base + 8)
            pool = bytes.readBE32(at: base + 12)
            drops = bytes.readBE32(at: base + 16)
            // The top 2 bits are the format (as above), the other 30 the value.
            let i = bytes.readBE32(at: base + 20), o = bytes.readBE32(at: base + 24)
            if i >> 30 == 0 { input = i }
            if o >> 30 == 0 { output = o }
            recordCount = bytes.readBE32(at: base + 28)
        }
        agents.observe(agent: header.agent, subAgent: header.subAgent, source: source, pool: pool, drops: drops)

        var emitted = false
        batch.add(sameMessageAs: message) { record in
            if rate != 0 {
                record.samplingInterval = rate
                record.present.insert(.samplingInterval)
            }
            if let input {
                record.inputInterface = input
                record.present.insert(.inputInterface)
            }
            if let output {
                record.outputInterface = output
                record.present.insert(.outputInterface)
            }
            record.packets = 1
            record.present.insert(.packets)
            guard decodeFlowRecords(bytes, base + fixed..<sample.upperBound, count: recordCount, into: &record,
                                    statistics: &statistics) else { return false }
            emitted = true
            return true
        }
        return emitted
    }

    /// The flow records of a sample into `record`; false (nothing to emit) when one does not fit.
    private static func decodeFlowRecords(
        _ bytes: UnsafeRawBufferPointer, _ area: Range<Int>, count: UInt32, into record: inout FlowRecord,
        statistics: inout DecodeStatistics
    ) -> Bool {
        var offset = area.lowerBound
        var remaining = count
        var sawPacketHeader = false
        var gatewayNextHop = IPAddress.none
        while remaining > 0 {
            remaining -= 1
            guard area.upperBound - offset >= 8 else {
                statistics.count(.sflowBadRecordLength)
                return false
            }
            let format = bytes.readBE32(at: offset)
            let length = Int(bytes.readBE32(at: offset + 4))
            let start = offset + 8
            guard length <= area.upperBound - start else {
                statistics.count(.sflowBadRecordLength)
                return false
            }
            offset = start + length
            let body = start..<offset
            let fits: Bool
            switch format {
            case rawPacketHeader:
                // A second header record (none seen in practice) would describe the same packet.
                guard !sawPacketHeader else { fits = true; break }
                sawPacketHeader = true
                fits = decodeRawPacketHeader(bytes, body, into: &record, statistics: &statistics)
            case ipv4Data, ipv6Data:
                // The header says more (VLANs, the whole frame's length): these only stand in for it.
                guard !sawPacketHeader else { fits = true; break }
                fits = decodeIPData(bytes, body, v6: format == ipv6Data, into: &record)
            case extendedSwitch:
                fits = body.count >= 16
                // The incoming VLAN; 0 (untagged) and values beyond 12 bits (agents send 0xFFFFFFFF for
                // unknown) leave what the packet's own tag said.
                if fits, case let vid = bytes.readBE32(at: start), vid > 0, vid < 4096 {
                    record.vlan = UInt16(vid)
                    record.present.insert(.vlan)
                }
            case extendedRouter:
                fits = decodeExtendedRouter(bytes, body, into: &record)
            case extendedGateway:
                fits = decodeExtendedGateway(bytes, body, into: &record, nextHop: &gatewayNextHop)
            default:
                statistics.sflowUnknownRecords &+= 1
                fits = true
            }
            guard fits else {
                statistics.count(.sflowBadRecordLength)
                return false
            }
        }
        // IPFIX's rule: the router's next hop (ipNextHop) before the gateway's (BGP).
        if !record.present.contains(.nextHop), gatewayNextHop.family != .none {
            record.nextHop = gatewayNextHop
            record.present.insert(.nextHop)
        }
        return true
    }

    /// An address as sFlow encodes it (type 1 = IPv4, 2 = IPv6, then the address) at `offset`, with the
    /// offset after it; nil when the type is another or it does not fit before `end`.
    private static func readAddress(_ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int) -> (IPAddress, Int)? {
        guard end - offset >= 4 else { return nil }
        switch bytes.readBE32(at: offset) {
        case 1 where end - offset >= 8: return (IPAddress(v4: bytes.readBE32(at: offset + 4)), offset + 8)
        case 2 where end - offset >= 20: return (bytes.readIPv6(at: offset + 4), offset + 20)
        default: return nil
        }
    }

    /// Extended router: next hop, source and destination prefix lengths.
    private static func decodeExtendedRouter(_ bytes: UnsafeRawBufferPointer, _ body: Range<Int>, into record: inout FlowRecord) -> Bool {
        guard let (nextHop, after) = readAddress(bytes, at: body.lowerBound, end: body.upperBound),
              body.upperBound - after >= 8 else { return false }
        record.nextHop = nextHop
        record.srcMask = UInt8(truncatingIfNeeded: bytes.readBE32(at: after))
        record.dstMask = UInt8(truncatingIfNeeded: bytes.readBE32(at: after + 4))
        record.present.formUnion([.nextHop, .srcMask, .dstMask])
        return true
    }

    /// Extended gateway: BGP next hop, the router's AS, the source AS, the source peer AS, then the AS
    /// path (segments of type and ASNs) whose last AS is the destination's; an empty path means the
    /// destination is in the router's own AS. Communities and local preference follow, unread.
    private static func decodeExtendedGateway(
        _ bytes: UnsafeRawBufferPointer, _ body: Range<Int>, into record: inout FlowRecord, nextHop: inout IPAddress
    ) -> Bool {
        let end = body.upperBound
        guard let (hop, after) = readAddress(bytes, at: body.lowerBound, end: end), end - after >= 16 else { return false }
        let ownAS = bytes.readBE32(at: after)
        let srcAS = bytes.readBE32(at: after + 4)
        var segments = bytes.readBE32(at: after + 12)
        var offset = after + 16
        var dstAS = ownAS
        while segments > 0 {
            segments -= 1
            guard end - offset >= 8 else { return false }
            let count = Int(bytes.readBE32(at: offset + 4))
            offset += 8
            guard count <= (end - offset) / 4 else { return false }
            if count > 0 { dstAS = bytes.readBE32(at: offset + (count - 1) * 4) }
            offset += count * 4
        }
        nextHop = hop
        record.srcAS = srcAS
        record.dstAS = dstAS
        record.present.formUnion([.srcAS, .dstAS])
        return true
    }

    /// IPv4 data (format 3) or IPv6 data (format 4): the packet's fields without its header.
    private static func decodeIPData(_ bytes: UnsafeRawBufferPointer, _ body: Range<Int>, v6: Bool, into record: inout FlowRecord) -> Bool {
        let o = body.lowerBound
        let addressLength = v6 ? 16 : 4
        guard body.count >= 8 + 2 * addressLength + 16 else { return false }
        record.bytes = UInt64(bytes.readBE32(at: o))
        record.proto = UInt8(truncatingIfNeeded: bytes.readBE32(at: o + 4))
        if v6 {
            record.src = bytes.readIPv6(at: o + 8)
            record.dst = bytes.readIPv6(at: o + 24)
        } else {
            record.src = IPAddress(v4: bytes.readBE32(at: o + 8))
            record.dst = IPAddress(v4: bytes.readBE32(at: o + 12))
        }
        let p = o + 8 + 2 * addressLength
        record.srcPort = UInt16(truncatingIfNeeded: bytes.readBE32(at: p))
        record.dstPort = UInt16(truncatingIfNeeded: bytes.readBE32(at: p + 4))
        record.tcpFlags = UInt16(truncatingIfNeeded: bytes.readBE32(at: p + 8))
        record.tos = UInt8(truncatingIfNeeded: bytes.readBE32(at: p + 12))
        record.present.formUnion([.bytes, .proto, .srcPort, .dstPort, .tcpFlags, .tos])
        return true
    }

    /// Raw packet header (format 1): protocol, frame length, octets stripped, header length, header.
    /// False only when the record's own lengths do not fit; a header cut short by the agent's snap length
    /// yields what it holds (`sflowPartialPacketHeaders` counts those).
    private static func decodeRawPacketHeader(
        _ bytes: UnsafeRawBufferPointer, _ body: Range<Int>, into record: inout FlowRecord, statistics: inout DecodeStatistics
    ) -> Bool {
        let o = body.lowerBound
        guard body.count >= 16 else { return false }
        let headerLength = Int(bytes.readBE32(at: o + 12))
        guard headerLength <= body.count - 16 else { return false }
        record.bytes = UInt64(bytes.readBE32(at: o + 4))
        record.present.insert(.bytes)
        var packet = PacketHeader(bytes: bytes, offset: o + 16, end: o + 16 + headerLength)
        let complete: Bool
        switch bytes.readBE32(at: o) {
        case 1: complete = packet.ethernet(into: &record)  // ISO 8802-3 Ethernet
        case 11: complete = packet.ipv4(into: &record)
        case 12: complete = packet.ipv6(into: &record)
        default: complete = true  // another link layer: the frame is counted, its fields are not read
        }
        if !complete { statistics.sflowPartialPacketHeaders &+= 1 }
        return true
    }
}

/// A sampled packet's header, read layer by layer; every read is checked against `end` (the agent cuts
/// headers at its snap length, typically 128 octets). Each step returns false when the header ends
/// before the layer it needs, having filled in what came before.
struct PacketHeader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int
    let end: Int

    static let etherTypeIPv4: UInt16 = 0x0800, etherTypeIPv6: UInt16 = 0x86DD

    private func has(_ count: Int) -> Bool { end - offset >= count }

    /// Ethernet II with any number of VLAN tags (the outermost tag's VID is the record's `vlan`).
    mutating func ethernet(into record: inout FlowRecord) -> Bool {
        guard has(14) else { return false }
        var type = bytes.readBE16(at: offset + 12)
        offset += 14
        var tagged = false
        // 802.1Q, 802.1ad (QinQ) and the older 0x9100 QinQ tag; each consumes 4 octets: bounded by the header.
        while type == 0x8100 || type == 0x88A8 || type == 0x9100 {
            guard has(4) else { return false }
            // The outermost tag's VID; 0 is a priority tag, no VLAN.
            if !tagged, case let vid = bytes.readBE16(at: offset) & 0x0FFF, vid != 0 {
                record.vlan = vid
                record.present.insert(.vlan)
            }
            tagged = true
            type = bytes.readBE16(at: offset + 2)
            offset += 4
        }
        switch type {
        case Self.etherTypeIPv4: return ipv4(into: &record)
        case Self.etherTypeIPv6: return ipv6(into: &record)
        default: return true  // not IP: a frame with no addresses
        }
    }

    mutating func ipv4(into record: inout FlowRecord) -> Bool {
        guard has(20), bytes[offset] >> 4 == 4 else { return false }
        let headerLength = Int(bytes[offset] & 0x0F) * 4
        record.tos = bytes[offset + 1]
        record.proto = bytes[offset + 9]
        record.src = IPAddress(v4: bytes.readBE32(at: offset + 12))
        record.dst = IPAddress(v4: bytes.readBE32(at: offset + 16))
        record.present.formUnion([.tos, .proto])
        // Only a first fragment carries the transport header.
        let fragmentOffset = bytes.readBE16(at: offset + 6) & 0x1FFF
        guard headerLength >= 20, has(headerLength) else { return false }
        offset += headerLength
        return fragmentOffset != 0 || transport(record.proto, into: &record)
    }

    mutating func ipv6(into record: inout FlowRecord) -> Bool {
        guard has(40), bytes[offset] >> 4 == 6 else { return false }
        record.tos = UInt8(truncatingIfNeeded: bytes.readBE16(at: offset) >> 4)
        record.src = bytes.readIPv6(at: offset + 8)
        record.dst = bytes.readIPv6(at: offset + 24)
        var next = bytes[offset + 6]
        offset += 40
        record.present.insert(.tos)
        // Extension headers: each at least 8 octets, so the walk is bounded by the header's length.
        while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination options, mobility, HIP, shim6
                guard has(8) else { return false }
                next = bytes[offset]
                offset += (Int(bytes[offset + 1]) + 1) * 8
            case 44:  // fragment: only the first carries the transport header
                guard has(8) else { return false }
                next = bytes[offset]
                let fragmentOffset = bytes.readBE16(at: offset + 2) >> 3
                offset += 8
                if fragmentOffset != 0 {
                    record.proto = next
                    record.present.insert(.proto)
                    return true
                }
            case 51:  // authentication header: its length is in 4-octet units, minus 2
                guard has(8) else { return false }
                next = bytes[offset]
                offset += (Int(bytes[offset + 1]) + 2) * 4
            default:
                record.proto = next
                record.present.insert(.proto)
                return transport(next, into: &record)
            }
        }
    }

    /// Ports of TCP, UDP, SCTP; TCP's flags; ICMP's and ICMPv6's type and code as IPFIX exporters write
    /// them (destination port = type × 256 + code).
    mutating func transport(_ proto: UInt8, into record: inout FlowRecord) -> Bool {
        switch proto {
        case 6, 17, 132:
            guard has(4) else { return false }
            record.srcPort = bytes.readBE16(at: offset)
            record.dstPort = bytes.readBE16(at: offset + 2)
            record.present.formUnion([.srcPort, .dstPort])
            guard proto == 6 else { return true }
            guard has(14) else { return false }
            record.tcpFlags = UInt16(bytes[offset + 13])
            record.present.insert(.tcpFlags)
            return true
        case 1, 58:
            guard has(2) else { return false }
            record.dstPort = bytes.readBE16(at: offset)
            record.present.formUnion([.srcPort, .dstPort])
            return true
        default:
            return true
        }
    }
}
