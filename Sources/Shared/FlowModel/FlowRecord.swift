/// One decoded flow, the record model every decoder (IPFIX, NetFlow v9, v5) fills and every output reads.
/// A plain value reused across records: decoders reset and fill it in place, so decoding allocates nothing.
public struct FlowRecord: Sendable {
    /// Which optional fields the exporter supplied (the KFlow base fields are always written, as 0 when absent).
    public struct Present: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let flowStart = Present(rawValue: 1 << 0)
        public static let flowEnd = Present(rawValue: 1 << 1)
        public static let inputInterface = Present(rawValue: 1 << 2)
        public static let outputInterface = Present(rawValue: 1 << 3)
        public static let srcAS = Present(rawValue: 1 << 4)
        public static let dstAS = Present(rawValue: 1 << 5)
        public static let nextHop = Present(rawValue: 1 << 6)
        public static let vlan = Present(rawValue: 1 << 7)
        public static let tos = Present(rawValue: 1 << 8)
        public static let bytes = Present(rawValue: 1 << 9)
        public static let packets = Present(rawValue: 1 << 10)
        public static let srcPort = Present(rawValue: 1 << 11)
        public static let dstPort = Present(rawValue: 1 << 12)
        public static let proto = Present(rawValue: 1 << 13)
        public static let tcpFlags = Present(rawValue: 1 << 14)
        public static let direction = Present(rawValue: 1 << 15)
        public static let srcMask = Present(rawValue: 1 << 16)
        public static let dstMask = Present(rawValue: 1 << 17)
        public static let samplingInterval = Present(rawValue: 1 << 18)
    }

    /// `dvc`: the UDP source address of the datagram that carried the record.
    public var exporter: IPAddress = .none
    /// The observation domain (IPFIX) or source ID (NetFlow v9) of the message.
    public var observationDomain: UInt32 = 0
    /// `time`: the message's export time, in milliseconds since the epoch.
    public var exportTimeMs: UInt64 = 0

    public var src: IPAddress = .none
    public var dst: IPAddress = .none
    public var srcPort: UInt16 = 0
    public var dstPort: UInt16 = 0
    public var proto: UInt8 = 0
    public var tcpFlags: UInt16 = 0
    public var bytes: UInt64 = 0
    public var packets: UInt64 = 0

    // Optional fields (see `present`).
    public var flowStartMs: UInt64 = 0
    public var flowEndMs: UInt64 = 0
    public var inputInterface: UInt32 = 0
    public var outputInterface: UInt32 = 0
    public var srcAS: UInt32 = 0
    public var dstAS: UInt32 = 0
    public var nextHop: IPAddress = .none
    public var vlan: UInt16 = 0
    public var tos: UInt8 = 0
    public var direction: UInt8 = 0
    public var srcMask: UInt8 = 0
    public var dstMask: UInt8 = 0
    /// Packet sampling interval (1-in-N) when the record or its options say so; 0 when unknown.
    public var samplingInterval: UInt32 = 0

    public var present: Present = []

    public init() {}

    /// Clears the per-record fields, keeping the per-message ones (exporter, domain, export time).
    @inlinable public mutating func resetFlowFields() {
        let exporter = self.exporter, domain = observationDomain, time = exportTimeMs
        self = FlowRecord()
        self.exporter = exporter
        observationDomain = domain
        exportTimeMs = time
    }
}

/// Where a decoder delivers each record. Generic (not an existential) so the decode loop and the
/// output are specialised together and the per-record call costs nothing.
public protocol FlowSink {
    mutating func emit(_ record: borrowing FlowRecord)
}
