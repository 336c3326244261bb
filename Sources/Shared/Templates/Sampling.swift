import FlowModel
import WireFormat

/// How a collector learns and applies packet sampling rates (`sampling.*`, `output.renormalize`).
/// Built once from the configuration; every session resolves its override when it is created.
public struct SamplingConfiguration: Sendable {
    /// The rate of flows whose exporter told none (`sampling.default`); 0 = leave them without one.
    public var defaultRate: UInt32
    /// Rates forced per exporter address (`sampling.override`): the first prefix holding the
    /// exporter wins, over anything the exporter says.
    public var overrides: [(prefix: AddressPrefix, rate: UInt32)]
    /// Multiply `bytes` and `pkts` by the rate in use (`output.renormalize`).
    public var renormalize: Bool

    public init(defaultRate: UInt32 = 0, overrides: [(prefix: AddressPrefix, rate: UInt32)] = [], renormalize: Bool = false) {
        self.defaultRate = defaultRate
        self.overrides = overrides
        self.renormalize = renormalize
    }

    /// The override for `address`, 0 when none applies.
    package func overrideRate(for address: IPAddress) -> UInt32 {
        for entry in overrides where entry.prefix.contains(address) { return entry.rate }
        return 0
    }
}

/// The raw sampling values of one record (options or data), turned into a 1-in-N rate by `rate`.
/// Which of them an exporter sends depends on its selector algorithm (RFC 5475/5477):
/// - random n-out-of-N (samplingSize 309, samplingPopulation 310, Cisco IOS-XE): N / n;
/// - systematic count-based (samplingPacketInterval 305, samplingPacketSpace 306; Nokia, softflowd):
///   (interval + space) / interval, or the interval alone when no space is sent (older exporters use
///   IE 305 as the 1-in-N value);
/// - samplingInterval 34 / samplerRandomInterval 50 (NetFlow v9 and its IPFIX successors): N itself.
package struct SamplingFields {
    // All unsigned32 in the registry (kept per record while it is read, so small: values beyond 2³²−1
    // are clamped).
    package var interval: UInt32 = 0
    package var randomInterval: UInt32 = 0
    package var packetInterval: UInt32 = 0
    package var packetSpace: UInt32 = 0
    package var hasPacketSpace = false
    package var size: UInt32 = 0
    package var population: UInt32 = 0

    package init() {}

    /// The rate these values give (rounded to the nearest whole N, at most UInt32.max); 0 when none.
    package var rate: UInt32 {
        if size != 0, population != 0 { return Self.ratio(UInt64(population), UInt64(size)) }
        if packetInterval != 0 {
            return hasPacketSpace ? Self.ratio(UInt64(packetInterval) + UInt64(packetSpace), UInt64(packetInterval)) : packetInterval
        }
        return interval != 0 ? interval : randomInterval
    }

    private static func ratio(_ whole: UInt64, _ part: UInt64) -> UInt32 {
        UInt32(clamping: max(1, (whole / part) + (whole % part >= (part + 1) / 2 ? 1 : 0)))
    }
}

/// One sampler (selector) of an observation domain and its rate, from options data.
package struct SamplerRate: Sendable, Equatable {
    package var id: UInt64
    package var rate: UInt32

    package init(id: UInt64, rate: UInt32) {
        self.id = id
        self.rate = rate
    }
}

/// The samplers of one observation domain: the rate of each sampler that options records named
/// (samplerId 48, selectorId 302, v9 FLOW_SAMPLER_ID 48). The domain's own rate (options records that
/// name no sampler) is `DomainState.samplingInterval`. At most `capacity` samplers: a new one beyond
/// it replaces the oldest.
package struct SamplerTable: Sendable, Equatable {
    /// In the order learned (oldest first).
    package private(set) var samplers: [SamplerRate] = []

    /// Real routers define a handful of samplers; the cap bounds what one domain can make kflow keep.
    package static let capacity = 64

    package init() {}

    package var isEmpty: Bool { samplers.isEmpty }

    /// The rate a record without its own sampler ID (or with an unknown one) falls back to: the
    /// domain's, else the only sampler's when exactly one is known; 0 when unknown.
    package func fallbackRate(domainRate: UInt32) -> UInt32 {
        if domainRate != 0 { return domainRate }
        return samplers.count == 1 ? samplers[0].rate : 0
    }

    /// The rate of sampler `id`, 0 when unknown. A linear scan: a domain has a handful.
    @inline(__always)
    package func rate(ofSampler id: UInt64) -> UInt32 {
        for sampler in samplers where sampler.id == id { return sampler.rate }
        return 0
    }

    /// Records sampler `id` at `rate`; returns whether anything changed.
    @discardableResult
    package mutating func set(sampler id: UInt64, rate: UInt32) -> Bool {
        guard rate != 0 else { return false }
        if let index = samplers.firstIndex(where: { $0.id == id }) {
            guard samplers[index].rate != rate else { return false }
            samplers[index].rate = rate
            return true
        }
        if samplers.count >= Self.capacity { samplers.removeFirst() }
        samplers.append(SamplerRate(id: id, rate: rate))
        return true
    }

    // MARK: - Serialized form (the snapshot extension `DomainExtension.samplers`)
    //
    //   per sampler: sampler ID u64 | rate u32   (the entry's length gives the count)

    package static let encodedEntryLength = 12

    package var encodedLength: Int { samplers.count * Self.encodedEntryLength }

    package func write(into bytes: inout [UInt8]) {
        for sampler in samplers {
            bytes.appendBE64(sampler.id)
            bytes.appendBE32(sampler.rate)
        }
    }

    /// Adds the samplers of a snapshot value that this table does not know yet (what a live exporter
    /// said since wins); false when `bytes` is not a whole number of entries within `capacity`.
    package mutating func merge(encoded bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count % Self.encodedEntryLength == 0, bytes.count / Self.encodedEntryLength <= Self.capacity
        else { return false }
        for base in stride(from: 0, to: bytes.count, by: Self.encodedEntryLength) {
            let id = bytes.readBE64(at: base)
            let rate = bytes.readBE32(at: base + 8)
            guard rate != 0 else { return false }
            if self.rate(ofSampler: id) == 0 { set(sampler: id, rate: rate) }
        }
        return true
    }
}
