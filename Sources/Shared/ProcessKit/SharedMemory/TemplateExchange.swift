import SystemKit
import CKflowShims
#if canImport(Glibc)
import Glibc
#endif

/// A shared-memory area in which one worker publishes a snapshot of its template cache, so that the
/// workers started after it — a new generation on reload, or its replacement after a crash — begin
/// with the templates it learned instead of dropping data until every exporter re-sends them.
/// One writer (the worker), any number of readers, behind a `SeqLock`.
/// A class: the master keeps exchanges in its bookkeeping after their worker is gone, the worker keeps
/// its predecessors' in a list; the region is released with the last reference.
public final class TemplateExchange: @unchecked Sendable {
    static let magic: UInt64 = 0x4B46_4C4F_5754_504C  // "KFLOWTPL"
    static let headerBytes = 64
    /// Room for the snapshot; the memfd is sparse, so only what is written uses memory.
    public static let capacity = 16 << 20
    static let byteCount = headerBytes + capacity
    /// Tries of a reader (1 ms apart while a write is under way) before it gives up on this round.
    static let readAttempts = 16
    // Word offsets in the header.
    static let magicWord = 0, sequenceWord = 1, lengthWord = 2

    private let region: SharedMemoryRegion
    private let writable: Bool
    private let lock: SeqLock
    /// The memfd, for handing to a worker.
    public var fd: Int32 { region.fd }

    /// A new, empty exchange (the master, before spawning the worker that will write it).
    public convenience init(creating name: String) throws(SystemError) {
        self.init(region: try SharedMemoryRegion(creating: name, byteCount: Self.byteCount), writable: true)
        kflow_counter_store(region.word(Self.magicWord), Self.magic)
    }

    /// Maps an exchange handed over as `fd`, for writing (the worker's own) or reading (its predecessors').
    public convenience init(attaching fd: Int32, writable: Bool) throws(SystemError) {
        self.init(region: try SharedMemoryRegion(attaching: fd, byteCount: Self.byteCount, writable: writable,
                                                 what: "template exchange"), writable: writable)
        guard kflow_counter_load(region.word(Self.magicWord)) == Self.magic else {
            throw SystemError("template exchange fd \(fd) has no kflow layout", code: EINVAL)
        }
    }

    private init(region: consuming SharedMemoryRegion, writable: Bool) {
        lock = SeqLock(sequence: region.word(Self.sequenceWord))
        self.region = region
        self.writable = writable
    }

    /// Changes (by 2) on every completed publish; readers use it to skip an unchanged snapshot.
    public var sequence: UInt64 { lock.current }

    /// Publishes `snapshot`; false when it does not fit (the previous snapshot stays readable).
    @discardableResult
    public func publish(_ snapshot: [UInt8]) -> Bool {
        guard writable, snapshot.count <= Self.capacity else { return false }
        let payload = region.base + Self.headerBytes
        let length = region.word(Self.lengthWord)
        lock.write {
            snapshot.withUnsafeBytes { bytes in
                if let source = bytes.baseAddress { payload.copyMemory(from: source, byteCount: bytes.count) }
            }
            kflow_counter_store(length, UInt64(snapshot.count))
        }
        return true
    }

    /// A consistent copy of the last published snapshot (empty if none), or nil when the writer kept
    /// rewriting it during every attempt.
    public func read() -> [UInt8]? {
        let payload = region.base + Self.headerBytes
        let length = region.word(Self.lengthWord)
        return lock.read(attempts: Self.readAttempts, pause: { usleep(1000) }) {
            let count = min(Int(kflow_counter_load(length)), Self.capacity)
            return [UInt8](UnsafeRawBufferPointer(start: payload, count: count))
        }
    }
}
