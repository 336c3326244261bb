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
    @inlinable package static var responderOctets: UInt16 { 232 }
    @inlinable package static var dot1qVlanId: UInt16 { 243 }
    @inlinable package static var initiatorPackets: UInt16 { 298 }
    @inlinable package static var responderPackets: UInt16 { 299 }
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

extension InformationElement {
    /// IANA names of common information elements (and NetFlow v9 field types 1–127, which share them),
    /// for showing templates (/templates); nil for the others.
    package static func name(of id: UInt16) -> String? { names[id] }

    private static let names: [UInt16: String] = [
        1: "octetDeltaCount", 2: "packetDeltaCount", 3: "deltaFlowCount", 4: "protocolIdentifier",
        5: "ipClassOfService", 6: "tcpControlBits", 7: "sourceTransportPort", 8: "sourceIPv4Address",
        9: "sourceIPv4PrefixLength", 10: "ingressInterface", 11: "destinationTransportPort",
        12: "destinationIPv4Address", 13: "destinationIPv4PrefixLength", 14: "egressInterface",
        15: "ipNextHopIPv4Address", 16: "bgpSourceAsNumber", 17: "bgpDestinationAsNumber",
        18: "bgpNextHopIPv4Address", 19: "postMCastPacketDeltaCount", 20: "postMCastOctetDeltaCount",
        21: "flowEndSysUpTime", 22: "flowStartSysUpTime", 23: "postOctetDeltaCount", 24: "postPacketDeltaCount",
        25: "minimumIpTotalLength", 26: "maximumIpTotalLength", 27: "sourceIPv6Address",
        28: "destinationIPv6Address", 29: "sourceIPv6PrefixLength", 30: "destinationIPv6PrefixLength",
        31: "flowLabelIPv6", 32: "icmpTypeCodeIPv4", 33: "igmpType", 34: "samplingInterval",
        35: "samplingAlgorithm", 36: "flowActiveTimeout", 37: "flowIdleTimeout", 38: "engineType", 39: "engineId",
        40: "exportedOctetTotalCount", 41: "exportedMessageTotalCount", 42: "exportedFlowRecordTotalCount",
        44: "sourceIPv4Prefix", 45: "destinationIPv4Prefix", 46: "mplsTopLabelType",
        47: "mplsTopLabelIPv4Address", 48: "samplerId", 49: "samplerMode", 50: "samplerRandomInterval",
        52: "minimumTTL", 53: "maximumTTL", 54: "fragmentIdentification", 55: "postIpClassOfService",
        56: "sourceMacAddress", 57: "postDestinationMacAddress", 58: "vlanId", 59: "postVlanId", 60: "ipVersion",
        61: "flowDirection", 62: "ipNextHopIPv6Address", 63: "bgpNextHopIPv6Address", 64: "ipv6ExtensionHeaders",
        70: "mplsTopLabelStackSection", 80: "destinationMacAddress", 81: "postSourceMacAddress",
        82: "interfaceName", 83: "interfaceDescription", 85: "octetTotalCount", 86: "packetTotalCount",
        88: "fragmentOffset", 89: "forwardingStatus", 95: "applicationId", 130: "exporterIPv4Address",
        131: "exporterIPv6Address", 136: "flowEndReason", 148: "flowId", 149: "observationDomainId",
        150: "flowStartSeconds", 151: "flowEndSeconds", 152: "flowStartMilliseconds", 153: "flowEndMilliseconds",
        154: "flowStartMicroseconds", 155: "flowEndMicroseconds", 156: "flowStartNanoseconds",
        157: "flowEndNanoseconds", 158: "flowStartDeltaMicroseconds", 159: "flowEndDeltaMicroseconds",
        160: "systemInitTimeMilliseconds", 176: "icmpTypeIPv4", 177: "icmpCodeIPv4", 178: "icmpTypeIPv6",
        179: "icmpCodeIPv6", 192: "ipTTL", 225: "postNATSourceIPv4Address", 226: "postNATDestinationIPv4Address",
        227: "postNAPTSourceTransportPort", 228: "postNAPTDestinationTransportPort", 231: "initiatorOctets",
        232: "responderOctets", 243: "dot1qVlanId", 298: "initiatorPackets", 299: "responderPackets",
        302: "selectorId", 305: "samplingPacketInterval", 306: "samplingPacketSpace",
    ]
}
