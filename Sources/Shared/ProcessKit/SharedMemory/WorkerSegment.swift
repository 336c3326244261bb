import FlowModel
import SystemKit
import WireFormat
import CKflowShims
#if canImport(Glibc)
import Glibc
#endif

/// What a worker publishes to the master. Counters are cumulative since the worker started; gauges are
/// current values. The master adds the final values of retired workers to its own totals.
public enum WorkerCounter: Int, CaseIterable, Sendable {
    case datagramsReceived, datagramBytesReceived, datagramsTruncated, receiveErrors
    case flowsDecoded, optionsRecords, unknownTemplateSets
    case templatesAdded, templatesReplaced, templatesExpired, templatesRejected, templateWithdrawalsIgnored
    case templatesImported
    case kafkaProduced, kafkaDelivered, kafkaDeliveryFailed, kafkaQueueFullDrops, kafkaProduceErrors
    // gauges
    case kafkaQueueDepth, templatesActive, exportersActive
    // Kafka outcomes in records (batch mode: several per message), purges at stop, error callbacks.
    case kafkaRecordsProduced, kafkaRecordsDelivered, kafkaRecordsFailed, kafkaRecordsDropped
    case kafkaPurged, kafkaErrors, kafkaFatalErrors
    // counters added later (a counter's raw value is its slot in the segment: append only)
    case datagramsRejected
    case sessionsEvictedSessionLimit, sessionsEvictedAddressQuota, sessionsEvictedTemplateLimit
    case recordsWithoutFlowFields, datagramsWithoutSession
    case templateBytesActive

    public var isGauge: Bool {
        switch self {
        case .kafkaQueueDepth, .templatesActive, .exportersActive, .templateBytesActive: return true
        default: return false
        }
    }

    /// The counter of sessions evicted for `reason`.
    public static func sessionsEvicted(_ reason: SessionEvictionReason) -> WorkerCounter {
        switch reason {
        case .sessionLimit: .sessionsEvictedSessionLimit
        case .addressQuota: .sessionsEvictedAddressQuota
        case .templateLimit: .sessionsEvictedTemplateLimit
        }
    }
}

/// One worker's shared-memory segment: a header, counters, per-error-kind counters and a table of
/// exporters. Created by the master (memfd, handed to the worker as an inherited descriptor) and
/// mapped by both. Every field has exactly one writer, and is read with relaxed atomics.
public struct WorkerSegment: @unchecked Sendable {
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

    static let magic: UInt64 = 0x4B46_4C4F_5753_4547  // "KFLOWSEG"
    static let layoutVersion: UInt64 = 1
    public static let counterCapacity = 64
    public static let errorKindCapacity = 128
    public static let exporterCapacity = 512
    static let exporterWords = 6

    // Word offsets.
    static let headerWords = 16
    static let countersOffset = headerWords
    static let errorsOffset = countersOffset + counterCapacity
    static let exporterSequenceOffset = errorsOffset + errorKindCapacity
    static let exporterCountOffset = exporterSequenceOffset + 1
    static let exportersOffset = exporterCountOffset + 1
    public static let byteSize = (exportersOffset + exporterCapacity * exporterWords) * 8

    public let fd: Int32
    private let words: UnsafeMutablePointer<UInt64>

    /// Creates a new anonymous segment (memfd) for a worker slot; the master does this before spawning.
    public static func create(name: String) throws(SystemError) -> WorkerSegment {
        let fd = kflow_memfd_create(name)
        guard fd >= 0 else { throw SystemError("memfd_create", code: -fd) }
        guard ftruncate(fd, off_t(byteSize)) == 0 else {
            let e = SystemError("ftruncate(segment)"); close(fd); throw e
        }
        // The master's copy must not leak into other children; the spawn passes it explicitly.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let segment = try map(fd: fd)
        segment.store(word: 0, magic)
        segment.store(word: 1, layoutVersion)
        return segment
    }

    /// Maps a segment handed over as `fd` (the worker side), checking its magic and layout version.
    public static func attach(fd: Int32) throws(SystemError) -> WorkerSegment {
        let segment = try map(fd: fd)
        guard segment.load(word: 0) == magic, segment.load(word: 1) == layoutVersion else {
            throw SystemError("segment fd \(fd) has no kflow layout v\(layoutVersion)", code: EINVAL)
        }
        return segment
    }

    private static func map(fd: Int32) throws(SystemError) -> WorkerSegment {
        let p = mmap(nil, byteSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw SystemError("mmap(segment)") }
        return WorkerSegment(fd: fd, words: p.bindMemory(to: UInt64.self, capacity: byteSize / 8))
    }

    private init(fd: Int32, words: UnsafeMutablePointer<UInt64>) {
        self.fd = fd
        self.words = words
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
        nonmutating set { store(word: Self.countersOffset + counter.rawValue, newValue) }
    }

    /// Counter for a decode error kind, by its raw index (kinds beyond the capacity share the last slot).
    public func errorCount(index: Int) -> UInt64 {
        load(word: Self.errorsOffset + min(index, Self.errorKindCapacity - 1))
    }
    public func setErrorCount(index: Int, _ value: UInt64) {
        store(word: Self.errorsOffset + min(index, Self.errorKindCapacity - 1), value)
    }

    /// Zeroes everything but the magic, for a slot's next worker.
    public func reset() {
        for w in 2..<(Self.byteSize / 8) { store(word: w, 0) }
    }

    // MARK: exporters (seqlock: odd sequence while the worker rewrites the table)
    public func publishExporters(_ entries: some Sequence<ExporterEntry>) {
        let sequence = load(word: Self.exporterSequenceOffset) &+ 1
        store(word: Self.exporterSequenceOffset, sequence)
        var count = 0
        for e in entries where count < Self.exporterCapacity {
            let base = Self.exportersOffset + count * Self.exporterWords
            store(word: base, e.address.high)
            store(word: base + 1, e.address.low)
            store(word: base + 2, UInt64(e.address.family.rawValue) << 16 | UInt64(e.port))
            store(word: base + 3, e.datagrams)
            store(word: base + 4, e.flows)
            store(word: base + 5, e.unknownTemplateSets)
            count += 1
        }
        store(word: Self.exporterCountOffset, UInt64(count))
        store(word: Self.exporterSequenceOffset, sequence &+ 1)
    }

    /// A consistent copy of the exporter table, or nil if the worker kept rewriting it.
    public func readExporters() -> [ExporterEntry]? {
        for _ in 0..<8 {
            let before = load(word: Self.exporterSequenceOffset)
            if before & 1 == 1 { continue }
            let count = min(Int(load(word: Self.exporterCountOffset)), Self.exporterCapacity)
            var result: [ExporterEntry] = []
            result.reserveCapacity(count)
            for i in 0..<count {
                let base = Self.exportersOffset + i * Self.exporterWords
                let tag = load(word: base + 2)
                let family = IPAddress.Family(rawValue: UInt8(truncatingIfNeeded: tag >> 16)) ?? .none
                result.append(ExporterEntry(
                    address: IPAddress(high: load(word: base), low: load(word: base + 1), family: family),
                    port: UInt16(truncatingIfNeeded: tag),
                    datagrams: load(word: base + 3), flows: load(word: base + 4),
                    unknownTemplateSets: load(word: base + 5)))
            }
            if load(word: Self.exporterSequenceOffset) == before { return result }
        }
        return nil
    }

    public func unmap() { munmap(UnsafeMutableRawPointer(words), Self.byteSize) }
}
