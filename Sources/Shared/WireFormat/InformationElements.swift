/// The IANA IPFIX information elements kflow reads (RFC 7012 / IANA registry). NetFlow v9 field
/// types 1–127 share these numbers (RFC 3954 §8), and exporters reuse 150–160 in v9 as well.
@usableFromInline package enum InformationElement {
    @inlinable package static var octetDeltaCount: UInt16 { 1 }
    @inlinable package static var packetDeltaCount: UInt16 { 2 }
    @inlinable package static var protocolIdentifier: UInt16 { 4 }
    @inlinable package static var ipClassOfService: UInt16 { 5 }
    @inlinable package static var tcpControlBits: UInt16 { 6 }
    @inlinable package static var sourceTransportPort: UInt16 { 7 }
    @inlinable package static var sourceIPv4Address: UInt16 { 8 }
    @inlinable package static var sourceIPv4PrefixLength: UInt16 { 9 }
    @inlinable package static var ingressInterface: UInt16 { 10 }
    @inlinable package static var destinationTransportPort: UInt16 { 11 }
    @inlinable package static var destinationIPv4Address: UInt16 { 12 }
    @inlinable package static var destinationIPv4PrefixLength: UInt16 { 13 }
    @inlinable package static var egressInterface: UInt16 { 14 }
    @inlinable package static var ipNextHopIPv4Address: UInt16 { 15 }
    @inlinable package static var bgpSourceAsNumber: UInt16 { 16 }
    @inlinable package static var bgpDestinationAsNumber: UInt16 { 17 }
    @inlinable package static var bgpNextHopIPv4Address: UInt16 { 18 }
    /// NetFlow v9 LAST_SWITCHED / IPFIX flowEndSysUpTime.
    @inlinable package static var flowEndSysUpTime: UInt16 { 21 }
    /// NetFlow v9 FIRST_SWITCHED / IPFIX flowStartSysUpTime.
    @inlinable package static var flowStartSysUpTime: UInt16 { 22 }
    @inlinable package static var postOctetDeltaCount: UInt16 { 23 }
    @inlinable package static var postPacketDeltaCount: UInt16 { 24 }
    @inlinable package static var sourceIPv6Address: UInt16 { 27 }
    @inlinable package static var destinationIPv6Address: UInt16 { 28 }
    @inlinable package static var sourceIPv6PrefixLength: UInt16 { 29 }
    @inlinable package static var destinationIPv6PrefixLength: UInt16 { 30 }
    @inlinable package static var samplingInterval: UInt16 { 34 }
    /// NetFlow v9 FLOW_SAMPLER_ID / IPFIX samplerId (deprecated for selectorId 302, still sent).
    @inlinable package static var samplerId: UInt16 { 48 }
    @inlinable package static var samplerRandomInterval: UInt16 { 50 }
    @inlinable package static var vlanId: UInt16 { 58 }
    @inlinable package static var flowDirection: UInt16 { 61 }
    @inlinable package static var ipNextHopIPv6Address: UInt16 { 62 }
    @inlinable package static var bgpNextHopIPv6Address: UInt16 { 63 }
    @inlinable package static var octetTotalCount: UInt16 { 85 }
    @inlinable package static var packetTotalCount: UInt16 { 86 }
    @inlinable package static var flowStartSeconds: UInt16 { 150 }
    @inlinable package static var flowEndSeconds: UInt16 { 151 }
    @inlinable package static var flowStartMilliseconds: UInt16 { 152 }
    @inlinable package static var flowEndMilliseconds: UInt16 { 153 }
    @inlinable package static var flowStartMicroseconds: UInt16 { 154 }
    @inlinable package static var flowEndMicroseconds: UInt16 { 155 }
    @inlinable package static var flowStartNanoseconds: UInt16 { 156 }
    @inlinable package static var flowEndNanoseconds: UInt16 { 157 }
    @inlinable package static var flowStartDeltaMicroseconds: UInt16 { 158 }
    @inlinable package static var flowEndDeltaMicroseconds: UInt16 { 159 }
    @inlinable package static var systemInitTimeMilliseconds: UInt16 { 160 }
    @inlinable package static var initiatorOctets: UInt16 { 231 }
    @inlinable package static var dot1qVlanId: UInt16 { 243 }
    @inlinable package static var initiatorPackets: UInt16 { 298 }
    @inlinable package static var selectorId: UInt16 { 302 }
    @inlinable package static var samplingPacketInterval: UInt16 { 305 }
    @inlinable package static var samplingPacketSpace: UInt16 { 306 }
    @inlinable package static var samplingSize: UInt16 { 309 }
    @inlinable package static var samplingPopulation: UInt16 { 310 }

    /// The length that marks a variable-length field in a template (RFC 7011 §7).
    @inlinable package static var variableLength: UInt16 { 0xFFFF }
    /// The enterprise bit of an IE identifier (RFC 7011 §3.2): a 4-octet PEN follows in the template.
    @inlinable package static var enterpriseBit: UInt16 { 0x8000 }
}
