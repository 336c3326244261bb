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
        public var reverseFlows: UInt64
        /// Export sequence accounting (`SequenceTracker`), all the session's domains together.
        public var sequenceLost: UInt64
        public var sequenceReordered: UInt64
        public var sequenceResets: UInt64

        public init(
            address: IPAddress, port: UInt16, datagrams: UInt64, flows: UInt64, unknownTemplateSets: UInt64,
            reverseFlows: UInt64 = 0, sequenceLost: UInt64 = 0, sequenceReordered: UInt64 = 0, sequenceResets: UInt64 = 0
        ) {
            self.address = address
            self.port = port
            self.datagrams = datagrams
            self.flows = flows
            self.unknownTemplateSets = unknownTemplateSets
            self.reverseFlows = reverseFlows
            self.sequenceLost = sequenceLost
            self.sequenceReordered = sequenceReordered
            self.sequenceResets = sequenceResets
        }

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

    static let magic: UInt64 = 0x4B46_4C4F_5753_4547  // "KFLOWSEG"
    static let layoutVersion: UInt64 = 1
    public static let counterCapacity = 64
    public static let errorKindCapacity = 128
    public static let exporterCapacity = 512
    /// Address (2 words), family and port, then `ExporterEntry.counters`.
    static let exporterWords = 3 + 7
    /// Tries of a reader before it gives up on a worker that keeps rewriting its exporter table.
    static let exporterReadAttempts = 8

    // Word offsets.
    static let headerWords = 16
    static let countersOffset = headerWords
    static let errorsOffset = countersOffset + counterCapacity
    static let exporterSequenceOffset = errorsOffset + errorKindCapacity
    static let exporterCountOffset = exporterSequenceOffset + 1
    static let exportersOffset = exporterCountOffset + 1
    public static let byteSize = (exportersOffset + exporterCapacity * exporterWords) * 8

    private let region: SharedMemoryRegion
    private let words: UnsafeMutablePointer<UInt64>
    private let exporterLock: SeqLock
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

    // MARK: exporters (behind the seqlock: the worker rewrites the whole table)
    public func publishExporters(_ entries: some Sequence<ExporterEntry>) {
        exporterLock.write {
            var count = 0
            for e in entries where count < Self.exporterCapacity {
                let base = Self.exportersOffset + count * Self.exporterWords
                store(word: base, e.address.high)
                store(word: base + 1, e.address.low)
                store(word: base + 2, UInt64(e.address.family.rawValue) << 16 | UInt64(e.port))
                for (index, counter) in ExporterEntry.counters.enumerated() { store(word: base + 3 + index, e[keyPath: counter]) }
                count += 1
            }
            store(word: Self.exporterCountOffset, UInt64(count))
        }
    }

    /// A consistent copy of the exporter table, or nil if the worker kept rewriting it.
    public func readExporters() -> [ExporterEntry]? {
        exporterLock.read(attempts: Self.exporterReadAttempts) {
            let count = min(Int(load(word: Self.exporterCountOffset)), Self.exporterCapacity)
            var result: [ExporterEntry] = []
            result.reserveCapacity(count)
            for i in 0..<count {
                let base = Self.exportersOffset + i * Self.exporterWords
                let tag = load(word: base + 2)
                let family = IPAddress.Family(rawValue: UInt8(truncatingIfNeeded: tag >> 16)) ?? .none
                var entry = ExporterEntry(
                    address: IPAddress(high: load(word: base), low: load(word: base + 1), family: family),
                    port: UInt16(truncatingIfNeeded: tag), datagrams: 0, flows: 0, unknownTemplateSets: 0)
                for (index, counter) in ExporterEntry.counters.enumerated() { entry[keyPath: counter] = load(word: base + 3 + index) }
                result.append(entry)
            }
            return result
        }
    }
}
