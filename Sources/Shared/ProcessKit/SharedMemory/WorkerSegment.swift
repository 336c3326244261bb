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

        public init(address: IPAddress, port: UInt16, datagrams: UInt64, flows: UInt64, unknownTemplateSets: UInt64) {
            self.address = address
            self.port = port
            self.datagrams = datagrams
            self.flows = flows
            self.unknownTemplateSets = unknownTemplateSets
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
    static let layoutVersion: UInt64 = 1
    public static let counterCapacity = 64
    public static let errorKindCapacity = 128
    public static let exporterCapacity = 512
    static let exporterWords = 6
    /// Tries of a reader before it gives up on a worker that keeps rewriting its exporter table.
    static let exporterReadAttempts = 8

    // Word offsets.
    static let headerWords = 16
    static let countersOffset = headerWords
    static let errorsOffset = countersOffset + counterCapacity
    static let exporterSequenceOffset = errorsOffset + errorKindCapacity
    static let exporterCountOffset = exporterSequenceOffset + 1
    static let exportersOffset = exporterCountOffset + 1
    // The sampler table (after the exporter table): sequence, count, entries of 5 words (address,
    // family/port/kind, domain and rate, sampler ID), as bounded as the exporter table.
    public static let samplerCapacity = 512
    static let samplerWords = 5
    static let samplerSequenceOffset = exportersOffset + exporterCapacity * exporterWords
    static let samplerCountOffset = samplerSequenceOffset + 1
    static let samplersOffset = samplerCountOffset + 1
    public static let byteSize = (samplersOffset + samplerCapacity * samplerWords) * 8

    private let region: SharedMemoryRegion
    private let words: UnsafeMutablePointer<UInt64>
    private let exporterLock: SeqLock
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
            store(word: base + 3, e.datagrams)
            store(word: base + 4, e.flows)
            store(word: base + 5, e.unknownTemplateSets)
        }
    }

    /// A consistent copy of the exporter table, or nil if the worker kept rewriting it.
    public func readExporters() -> [ExporterEntry]? {
        read(lock: exporterLock, countWord: Self.exporterCountOffset, firstWord: Self.exportersOffset,
             wordsPerEntry: Self.exporterWords, capacity: Self.exporterCapacity) { base in
            let (address, port, _) = loadAddress(at: base)
            return ExporterEntry(
                address: address, port: port, datagrams: load(word: base + 3), flows: load(word: base + 4),
                unknownTemplateSets: load(word: base + 5))
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
