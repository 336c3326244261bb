import FlowModel
import SystemKit
import WireFormat
import CKflowShims
#if canImport(Glibc)
import Glibc
#endif

/// One worker's shared-memory segment: a header, counters, per-error-kind counters and a table of
/// exporters. Created by the master (memfd, handed to the worker as an inherited descriptor) and
/// mapped by both. Every field has exactly one writer, and is read with relaxed atomics; the exporter
/// table, rewritten as a whole, behind a `SeqLock`.
/// A class: the master's loop and its metrics thread share a live worker's segment; the region is
/// released when the last of them lets go.
public final class WorkerSegment: @unchecked Sendable {
    public enum State: UInt64, Sendable { case empty = 0, starting = 1, running = 2, draining = 3, exited = 4 }

    public struct ExporterEntry: Sendable {
        public var address: IPAddress
        public var port: UInt16
        public var datagrams: UInt64
        public var flows: UInt64
        public var unknownTemplateSets: UInt64
        /// Reverse directions of biflow records emitted as flows.
        public var reverseFlows: UInt64 = 0
        /// Export sequence accounting (`SequenceTracker`), all the session's domains together.
        public var sequenceLost: UInt64 = 0
        public var sequenceReordered: UInt64 = 0
        public var sequenceResets: UInt64 = 0
        /// Wall-clock seconds of the session's first and latest datagram at this worker; 0 = none (a
        /// session this worker holds only from an imported template).
        public var firstSeenSeconds: UInt32 = 0
        public var lastSeenSeconds: UInt32 = 0
        public var templateCount: UInt32 = 0
        /// How many observation domains it holds templates for, and the first `domainCapacity` of them.
        public var domainCount: UInt32 = 0
        public var domains: [UInt32] = []

        public init(address: IPAddress, port: UInt16, datagrams: UInt64, flows: UInt64, unknownTemplateSets: UInt64,
                    reverseFlows: UInt64 = 0, sequenceLost: UInt64 = 0, sequenceReordered: UInt64 = 0,
                    sequenceResets: UInt64 = 0, firstSeenSeconds: UInt32 = 0, lastSeenSeconds: UInt32 = 0,
                    templateCount: UInt32 = 0, domains: [UInt32] = []) {
            self.address = address
            self.port = port
            self.datagrams = datagrams
            self.flows = flows
            self.unknownTemplateSets = unknownTemplateSets
            self.reverseFlows = reverseFlows
            self.sequenceLost = sequenceLost
            self.sequenceReordered = sequenceReordered
            self.sequenceResets = sequenceResets
            self.firstSeenSeconds = firstSeenSeconds
            self.lastSeenSeconds = lastSeenSeconds
            self.templateCount = templateCount
            self.domainCount = UInt32(clamping: domains.count)
            self.domains = Array(domains.prefix(WorkerSegment.domainCapacity))
        }

        /// True when a datagram of this session reached the worker.
        public var heard: Bool { firstSeenSeconds != 0 }

        /// The counters, in table order after address and port: what the master sums per exporter and
        /// exposes. Key paths are immutable values (`nonisolated(unsafe)`: the array itself is never mutated).
        public nonisolated(unsafe) static let counters: [WritableKeyPath<ExporterEntry, UInt64>] = [
            \.datagrams, \.flows, \.unknownTemplateSets, \.reverseFlows, \.sequenceLost, \.sequenceReordered,
            \.sequenceResets,
        ]

        /// Adds another worker's counters of the same exporter.
        public mutating func add(_ other: ExporterEntry) {
            for counter in Self.counters { self[keyPath: counter] &+= other[keyPath: counter] }
        }
    }

    /// One sFlow agent's sampling figures (`FlowDecoder.forEachSFlowAgent`), by agent address.
    public struct SFlowAgentEntry: Equatable, Sendable {
        public var agent: IPAddress
        public var samplePool: UInt64
        public var samplesDropped: UInt64

        public init(agent: IPAddress, samplePool: UInt64, samplesDropped: UInt64) {
            self.agent = agent
            self.samplePool = samplePool
            self.samplesDropped = samplesDropped
        }
    }

    /// The sampling rate in use for one sampler of one observation domain of one exporter session
    /// (`sampler` nil: the domain's own rate, from options data naming no sampler).
    public struct SamplerEntry: Sendable, Equatable {
        public var address: IPAddress
        public var port: UInt16
        public var domain: UInt32
        public var sampler: UInt64?
        public var rate: UInt32

        public init(address: IPAddress, port: UInt16, domain: UInt32, sampler: UInt64?, rate: UInt32) {
            self.address = address
            self.port = port
            self.domain = domain
            self.sampler = sampler
            self.rate = rate
        }
    }

    static let magic: UInt64 = 0x4B46_4C4F_5753_4547  // "KFLOWSEG"
    static let layoutVersion: UInt64 = 2
    public static let counterCapacity = 64
    public static let errorKindCapacity = 128
    public static let exporterCapacity = 512
    /// Address (2 words), family and port, then `ExporterEntry.counters`, then first/last seen, template
    /// and domain counts, and `domainCapacity` observation domains (two per word).
    static let exporterWords = 3 + 7 + 2 + 2
    /// Observation domains listed per exporter entry (two per word); the count says if there are more.
    public static let domainCapacity = 4
    /// The word after the counters in an exporter entry.
    static let exporterDetailWord = 3 + 7
    /// Tries of a reader before it gives up on a worker that keeps rewriting its exporter table.
    static let exporterReadAttempts = 8

    // Word offsets.
    static let headerWords = 16
    static let countersOffset = headerWords
    static let errorsOffset = countersOffset + counterCapacity
    static let exporterSequenceOffset = errorsOffset + errorKindCapacity
    static let exporterCountOffset = exporterSequenceOffset + 1
    static let exportersOffset = exporterCountOffset + 1
    // The sFlow agent table (behind its own seqlock) follows the exporter table: sequence, count, rows of
    // 5 words (address, family, sample pool, drops).
    public static let sflowAgentCapacity = 256
    static let sflowAgentWords = 5
    static let sflowAgentSequenceOffset = exportersOffset + exporterCapacity * exporterWords
    static let sflowAgentCountOffset = sflowAgentSequenceOffset + 1
    static let sflowAgentsOffset = sflowAgentCountOffset + 1
    // The sampler table (after the sFlow agents): sequence, count, entries of 5 words (address,
    // family/port/kind, domain and rate, sampler ID), as bounded as the exporter table.
    public static let samplerCapacity = 512
    static let samplerWords = 5
    static let samplerSequenceOffset = sflowAgentsOffset + sflowAgentCapacity * sflowAgentWords
    static let samplerCountOffset = samplerSequenceOffset + 1
    static let samplersOffset = samplerCountOffset + 1
    public static let byteSize = (samplersOffset + samplerCapacity * samplerWords) * 8

    private let region: SharedMemoryRegion
    private let words: UnsafeMutablePointer<UInt64>
    private let exporterLock: SeqLock
    private let sflowAgentLock: SeqLock
    private let samplerLock: SeqLock
    /// The memfd, for handing to the worker.
    public var fd: Int32 { region.fd }

    /// Creates a new anonymous segment (memfd) for a worker slot; the master does this before spawning.
    public convenience init(creating name: String) throws(SystemError) {
        self.init(region: try SharedMemoryRegion(creating: name, byteCount: Self.byteSize))
        store(word: 0, Self.magic)
        store(word: 1, Self.layoutVersion)
    }

    /// Maps a segment handed over as `fd` (the worker side), checking its magic and layout version.
    public convenience init(attaching fd: Int32) throws(SystemError) {
        self.init(region: try SharedMemoryRegion(attaching: fd, byteCount: Self.byteSize, writable: true, what: "segment"))
        guard load(word: 0) == Self.magic, load(word: 1) == Self.layoutVersion else {
            throw SystemError("segment fd \(fd) has no kflow layout v\(Self.layoutVersion)", code: EINVAL)
        }
    }

    private init(region: consuming SharedMemoryRegion) {
        words = region.word(0)
        exporterLock = SeqLock(sequence: region.word(Self.exporterSequenceOffset))
        sflowAgentLock = SeqLock(sequence: region.word(Self.sflowAgentSequenceOffset))
        samplerLock = SeqLock(sequence: region.word(Self.samplerSequenceOffset))
        self.region = region
    }

    @inline(__always) func load(word: Int) -> UInt64 { kflow_counter_load(words + word) }
    @inline(__always) func store(word: Int, _ value: UInt64) { kflow_counter_store(words + word, value) }

    // MARK: header (pid, generation, state, heartbeat)
    public var pid: Int32 { Int32(truncatingIfNeeded: load(word: 2)) }
    public var generation: UInt64 { load(word: 3) }
    public var state: State { State(rawValue: load(word: 4)) ?? .empty }
    /// CLOCK_MONOTONIC nanoseconds of the worker's last loop iteration.
    public var heartbeatNanoseconds: UInt64 { load(word: 5) }

    public func announce(pid: Int32, generation: UInt64) {
        store(word: 2, UInt64(UInt32(bitPattern: pid)))
        store(word: 3, generation)
        heartbeat()
    }
    public func setState(_ state: State) { store(word: 4, state.rawValue) }
    @inline(__always) public func heartbeat() { heartbeat(at: Clock.monotonicNanoseconds) }
    @inline(__always) public func heartbeat(at monotonicNanoseconds: UInt64) { store(word: 5, monotonicNanoseconds) }

    // MARK: counters
    @inline(__always) public subscript(counter: WorkerCounter) -> UInt64 {
        get { load(word: Self.countersOffset + counter.rawValue) }
        set { store(word: Self.countersOffset + counter.rawValue, newValue) }
    }

    /// Counter for a decode error kind, by its raw index (kinds beyond the capacity share the last slot).
    public func errorCount(index: Int) -> UInt64 {
        load(word: Self.errorsOffset + min(index, Self.errorKindCapacity - 1))
    }
    public func setErrorCount(index: Int, _ value: UInt64) {
        store(word: Self.errorsOffset + min(index, Self.errorKindCapacity - 1), value)
    }

    // MARK: exporters and samplers: tables the worker rewrites as a whole, each behind its seqlock

    public func publishExporters(_ entries: some Sequence<ExporterEntry>) {
        publish(entries, lock: exporterLock, countWord: Self.exporterCountOffset, firstWord: Self.exportersOffset,
                wordsPerEntry: Self.exporterWords, capacity: Self.exporterCapacity) { e, base in
            storeAddress(e.address, port: e.port, at: base)
            for (index, counter) in ExporterEntry.counters.enumerated() { store(word: base + 3 + index, e[keyPath: counter]) }
            let detail = base + Self.exporterDetailWord
            store(word: detail, UInt64(e.firstSeenSeconds) << 32 | UInt64(e.lastSeenSeconds))
            store(word: detail + 1, UInt64(e.templateCount) << 32 | UInt64(e.domainCount))
            var domainWords: [UInt64] = [0, 0]
            for (i, domain) in e.domains.prefix(Self.domainCapacity).enumerated() {
                domainWords[i / 2] |= UInt64(domain) << (i % 2 == 0 ? 32 : 0)
            }
            store(word: detail + 2, domainWords[0])
            store(word: detail + 3, domainWords[1])
        }
    }

    /// A consistent copy of the exporter table, or nil if the worker kept rewriting it.
    public func readExporters() -> [ExporterEntry]? {
        read(lock: exporterLock, countWord: Self.exporterCountOffset, firstWord: Self.exportersOffset,
             wordsPerEntry: Self.exporterWords, capacity: Self.exporterCapacity) { base in
            let (address, port, _) = loadAddress(at: base)
            let detail = base + Self.exporterDetailWord
            let seen = load(word: detail), counts = load(word: detail + 1)
            let domainCount = Int(UInt32(truncatingIfNeeded: counts))
            let domainWords = [load(word: detail + 2), load(word: detail + 3)]
            let domains = (0..<min(domainCount, Self.domainCapacity)).map { i in
                UInt32(truncatingIfNeeded: domainWords[i / 2] >> (i % 2 == 0 ? 32 : 0))
            }
            var entry = ExporterEntry(
                address: address, port: port, datagrams: 0, flows: 0, unknownTemplateSets: 0,
                firstSeenSeconds: UInt32(truncatingIfNeeded: seen >> 32), lastSeenSeconds: UInt32(truncatingIfNeeded: seen),
                templateCount: UInt32(truncatingIfNeeded: counts >> 32), domains: domains)
            entry.domainCount = UInt32(domainCount)
            for (index, counter) in ExporterEntry.counters.enumerated() { entry[keyPath: counter] = load(word: base + 3 + index) }
            return entry
        }
    }

    // MARK: sFlow agents (behind their seqlock, rewritten as a whole like the exporters)
    public func publishSFlowAgents(_ entries: some Sequence<SFlowAgentEntry>) {
        publish(entries, lock: sflowAgentLock, countWord: Self.sflowAgentCountOffset, firstWord: Self.sflowAgentsOffset,
                wordsPerEntry: Self.sflowAgentWords, capacity: Self.sflowAgentCapacity) { e, base in
            storeAddress(e.agent, port: 0, at: base)
            store(word: base + 3, e.samplePool)
            store(word: base + 4, e.samplesDropped)
        }
    }

    /// A consistent copy of the sFlow agent table, or nil if the worker kept rewriting it.
    public func readSFlowAgents() -> [SFlowAgentEntry]? {
        read(lock: sflowAgentLock, countWord: Self.sflowAgentCountOffset, firstWord: Self.sflowAgentsOffset,
             wordsPerEntry: Self.sflowAgentWords, capacity: Self.sflowAgentCapacity) { base in
            SFlowAgentEntry(agent: loadAddress(at: base).address, samplePool: load(word: base + 3), samplesDropped: load(word: base + 4))
        }
    }

    public func publishSamplers(_ entries: some Sequence<SamplerEntry>) {
        publish(entries, lock: samplerLock, countWord: Self.samplerCountOffset, firstWord: Self.samplersOffset,
                wordsPerEntry: Self.samplerWords, capacity: Self.samplerCapacity) { e, base in
            storeAddress(e.address, port: e.port, flags: e.sampler == nil ? 0 : 1, at: base)
            store(word: base + 3, UInt64(e.domain) << 32 | UInt64(e.rate))
            store(word: base + 4, e.sampler ?? 0)
        }
    }

    /// A consistent copy of the sampler table, or nil if the worker kept rewriting it.
    public func readSamplers() -> [SamplerEntry]? {
        read(lock: samplerLock, countWord: Self.samplerCountOffset, firstWord: Self.samplersOffset,
             wordsPerEntry: Self.samplerWords, capacity: Self.samplerCapacity) { base in
            let (address, port, flags) = loadAddress(at: base)
            let domainAndRate = load(word: base + 3)
            return SamplerEntry(
                address: address, port: port, domain: UInt32(truncatingIfNeeded: domainAndRate >> 32),
                sampler: flags & 1 == 1 ? load(word: base + 4) : nil, rate: UInt32(truncatingIfNeeded: domainAndRate))
        }
    }

    /// Rewrites a table of fixed-size rows (its count word, first row, words per row, capacity) with the
    /// first `capacity` of `entries`, `write` storing each at its first word.
    private func publish<Entry>(
        _ entries: some Sequence<Entry>, lock: SeqLock, countWord: Int, firstWord: Int, wordsPerEntry: Int,
        capacity: Int, _ write: (Entry, Int) -> Void
    ) {
        lock.write {
            var count = 0
            for entry in entries where count < capacity {
                write(entry, firstWord + count * wordsPerEntry)
                count += 1
            }
            store(word: countWord, UInt64(count))
        }
    }

    /// The rows of such a table, each made by `entry` from its first word, or nil if the writer kept
    /// rewriting it.
    private func read<Entry>(
        lock: SeqLock, countWord: Int, firstWord: Int, wordsPerEntry: Int, capacity: Int, _ entry: (Int) -> Entry
    ) -> [Entry]? {
        lock.read(attempts: Self.exporterReadAttempts) {
            let count = min(Int(load(word: countWord)), capacity)
            return (0..<count).map { entry(firstWord + $0 * wordsPerEntry) }
        }
    }

    /// Three words: the address's two halves, then flags << 24 | family << 16 | port.
    private func storeAddress(_ address: IPAddress, port: UInt16, flags: UInt64 = 0, at base: Int) {
        store(word: base, address.high)
        store(word: base + 1, address.low)
        store(word: base + 2, flags << 24 | UInt64(address.family.rawValue) << 16 | UInt64(port))
    }

    private func loadAddress(at base: Int) -> (address: IPAddress, port: UInt16, flags: UInt64) {
        let tag = load(word: base + 2)
        let family = IPAddress.Family(rawValue: UInt8(truncatingIfNeeded: tag >> 16)) ?? .none
        return (IPAddress(high: load(word: base), low: load(word: base + 1), family: family),
                UInt16(truncatingIfNeeded: tag), tag >> 24)
    }
}
