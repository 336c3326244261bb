/// The IANA IPFIX information elements kflow reads (RFC 7012 / IANA registry). NetFlow v9 field
/// types 1–127 share these numbers (RFC 3954 §8), and exporters reuse 150–160 in v9 as well.
enum InformationElement {
    static let octetDeltaCount: UInt16 = 1
    static let packetDeltaCount: UInt16 = 2
    static let protocolIdentifier: UInt16 = 4
    static let ipClassOfService: UInt16 = 5
    static let tcpControlBits: UInt16 = 6
    static let sourceTransportPort: UInt16 = 7
    static let sourceIPv4Address: UInt16 = 8
    static let sourceIPv4PrefixLength: UInt16 = 9
    static let ingressInterface: UInt16 = 10
    static let destinationTransportPort: UInt16 = 11
    static let destinationIPv4Address: UInt16 = 12
    static let destinationIPv4PrefixLength: UInt16 = 13
    static let egressInterface: UInt16 = 14
    static let ipNextHopIPv4Address: UInt16 = 15
    static let bgpSourceAsNumber: UInt16 = 16
    static let bgpDestinationAsNumber: UInt16 = 17
    static let bgpNextHopIPv4Address: UInt16 = 18
    /// NetFlow v9 LAST_SWITCHED / IPFIX flowEndSysUpTime.
    static let flowEndSysUpTime: UInt16 = 21
    /// NetFlow v9 FIRST_SWITCHED / IPFIX flowStartSysUpTime.
    static let flowStartSysUpTime: UInt16 = 22
    static let postOctetDeltaCount: UInt16 = 23
    static let postPacketDeltaCount: UInt16 = 24
    static let sourceIPv6Address: UInt16 = 27
    static let destinationIPv6Address: UInt16 = 28
    static let sourceIPv6PrefixLength: UInt16 = 29
    static let destinationIPv6PrefixLength: UInt16 = 30
    static let samplingInterval: UInt16 = 34
    static let samplerRandomInterval: UInt16 = 50
    static let vlanId: UInt16 = 58
    static let flowDirection: UInt16 = 61
    static let ipNextHopIPv6Address: UInt16 = 62
    static let bgpNextHopIPv6Address: UInt16 = 63
    static let octetTotalCount: UInt16 = 85
    static let packetTotalCount: UInt16 = 86
    static let flowStartSeconds: UInt16 = 150
    static let flowEndSeconds: UInt16 = 151
    static let flowStartMilliseconds: UInt16 = 152
    static let flowEndMilliseconds: UInt16 = 153
    static let flowStartMicroseconds: UInt16 = 154
    static let flowEndMicroseconds: UInt16 = 155
    static let flowStartNanoseconds: UInt16 = 156
    static let flowEndNanoseconds: UInt16 = 157
    static let flowStartDeltaMicroseconds: UInt16 = 158
    static let flowEndDeltaMicroseconds: UInt16 = 159
    static let systemInitTimeMilliseconds: UInt16 = 160
    static let initiatorOctets: UInt16 = 231
    static let dot1qVlanId: UInt16 = 243
    static let initiatorPackets: UInt16 = 298
    static let samplingPacketInterval: UInt16 = 305

    /// The length that marks a variable-length field in a template (RFC 7011 §7).
    static let variableLength: UInt16 = 0xFFFF
    /// The enterprise bit of an IE identifier (RFC 7011 §3.2): a 4-octet PEN follows in the template.
    static let enterpriseBit: UInt16 = 0x8000
}
