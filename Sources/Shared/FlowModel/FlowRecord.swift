/// One decoded flow, the record model every decoder (IPFIX, NetFlow v9, v5) fills and every output reads.
/// A plain value reused across records: decoders reset and fill it in place, so decoding allocates nothing.
public struct FlowRecord: Sendable {
    /// Which optional fields the exporter supplied (the KFlow base fields are always written, as 0 when absent).
    public struct Present: OptionSet, Sendable {
        public let rawValue: UInt32
        @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
        @inlinable public static var flowStart: Present { Present(rawValue: 1 << 0) }
        @inlinable public static var flowEnd: Present { Present(rawValue: 1 << 1) }
        @inlinable public static var inputInterface: Present { Present(rawValue: 1 << 2) }
        @inlinable public static var outputInterface: Present { Present(rawValue: 1 << 3) }
        @inlinable public static var srcAS: Present { Present(rawValue: 1 << 4) }
        @inlinable public static var dstAS: Present { Present(rawValue: 1 << 5) }
        @inlinable public static var nextHop: Present { Present(rawValue: 1 << 6) }
        @inlinable public static var vlan: Present { Present(rawValue: 1 << 7) }
        @inlinable public static var tos: Present { Present(rawValue: 1 << 8) }
        @inlinable public static var bytes: Present { Present(rawValue: 1 << 9) }
        @inlinable public static var packets: Present { Present(rawValue: 1 << 10) }
        @inlinable public static var srcPort: Present { Present(rawValue: 1 << 11) }
        @inlinable public static var dstPort: Present { Present(rawValue: 1 << 12) }
        @inlinable public static var proto: Present { Present(rawValue: 1 << 13) }
        @inlinable public static var tcpFlags: Present { Present(rawValue: 1 << 14) }
        @inlinable public static var direction: Present { Present(rawValue: 1 << 15) }
        @inlinable public static var srcMask: Present { Present(rawValue: 1 << 16) }
        @inlinable public static var dstMask: Present { Present(rawValue: 1 << 17) }
        @inlinable public static var samplingInterval: Present { Present(rawValue: 1 << 18) }
    }

    /// `dvc`: the UDP source address of the datagram that carried the record.
    public var exporter: IPAddress
    // Fields chosen by `output.field.*` (`CustomValueStore`); declared here, where `exporter` leaves
    // padding, so they cost no size. Bit i of `customPresent`: configured field i has a value;
    // of `customVariableLength`: its template declares it variable-length (its default type does not
    // follow each value's length). `customRow`: the record's row in the store (its place in its batch).
    public var customPresent: UInt8
    public var customVariableLength: UInt8
    public var customRow: UInt8
    /// The observation domain (IPFIX) or source ID (NetFlow v9) of the message.
    public var observationDomain: UInt32
    /// `time`: the message's export time, in milliseconds since the epoch.
    public var exportTimeMs: UInt64

    public var src: IPAddress
    public var dst: IPAddress
    public var srcPort: UInt16
    public var dstPort: UInt16
    public var proto: UInt8
    public var tcpFlags: UInt16
    public var bytes: UInt64
    public var packets: UInt64

    // Optional fields (see `present`).
    public var flowStartMs: UInt64
    public var flowEndMs: UInt64
    public var inputInterface: UInt32
    public var outputInterface: UInt32
    public var srcAS: UInt32
    public var dstAS: UInt32
    public var nextHop: IPAddress
    public var vlan: UInt16
    public var tos: UInt8
    public var direction: UInt8
    public var srcMask: UInt8
    public var dstMask: UInt8
    /// Packet sampling interval (1-in-N) when the record or its options say so; 0 when unknown.
    public var samplingInterval: UInt32

    public var present: Present

    // Every field assigned here rather than by default values: inlined into another module (a decoder
    // resets the record per record), default values would each be a call.
    @inlinable public init() {
        exporter = .none
        observationDomain = 0
        exportTimeMs = 0
        src = .none
        dst = .none
        srcPort = 0
        dstPort = 0
        proto = 0
        tcpFlags = 0
        bytes = 0
        packets = 0
        flowStartMs = 0
        flowEndMs = 0
        inputInterface = 0
        outputInterface = 0
        srcAS = 0
        dstAS = 0
        nextHop = .none
        vlan = 0
        tos = 0
        direction = 0
        srcMask = 0
        dstMask = 0
        samplingInterval = 0
        present = []
        customPresent = 0
        customVariableLength = 0
        customRow = 0
    }

    /// A record of the same message as `message` (its exporter, domain and export time), every flow field
    /// cleared: where a decoder starts each record.
    @inlinable public init(sameMessageAs message: borrowing FlowRecord) {
        self.init()
        exporter = message.exporter
        observationDomain = message.observationDomain
        exportTimeMs = message.exportTimeMs
    }
}

/// Where a decoder delivers each record. Generic (not an existential) so the decode loop and the
/// output are specialised together and the per-record call costs nothing.
public protocol FlowSink {
    mutating func emit(_ record: borrowing FlowRecord)
}
