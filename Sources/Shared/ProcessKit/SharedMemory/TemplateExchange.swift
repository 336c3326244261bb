import SystemKit
import CKflowShims
#if canImport(Glibc)
import Glibc
#endif

/// A shared-memory area in which one worker publishes a snapshot of its template cache, so that the
/// workers started after it — a new generation on reload, or its replacement after a crash — begin
/// with the templates it learned instead of dropping data until every exporter re-sends them.
/// One writer (the worker), any number of readers; a sequence number (odd while writing) lets a reader
/// detect a torn copy and retry.
public struct TemplateExchange: @unchecked Sendable {
    static let magic: UInt64 = 0x4B46_4C4F_5754_504C  // "KFLOWTPL"
    static let headerBytes = 64
    /// Room for the snapshot; the memfd is sparse, so only what is written uses memory.
    public static let capacity = 16 << 20

    public let fd: Int32
    private let base: UnsafeMutableRawPointer
    private let writable: Bool

    /// A new, empty exchange (the master, before spawning the worker that will write it).
    public static func create(name: String) throws(SystemError) -> TemplateExchange {
        let fd = kflow_memfd_create(name)
        guard fd >= 0 else { throw SystemError("memfd_create", code: -fd) }
        guard ftruncate(fd, off_t(headerBytes + capacity)) == 0 else {
            let e = SystemError("ftruncate(template exchange)"); close(fd); throw e
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let exchange = try map(fd: fd, writable: true)
        exchange.word(0).storeRelaxed(magic)
        return exchange
    }

    /// Maps an exchange handed over as `fd`, for writing (the worker's own) or reading (its predecessors').
    public static func attach(fd: Int32, writable: Bool) throws(SystemError) -> TemplateExchange {
        let exchange = try map(fd: fd, writable: writable)
        guard exchange.word(0).loadRelaxed() == magic else {
            throw SystemError("template exchange fd \(fd) has no kflow layout", code: EINVAL)
        }
        return exchange
    }

    private static func map(fd: Int32, writable: Bool) throws(SystemError) -> TemplateExchange {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let p = mmap(nil, headerBytes + capacity, protection, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw SystemError("mmap(template exchange)") }
        return TemplateExchange(fd: fd, base: p, writable: writable)
    }

    private init(fd: Int32, base: UnsafeMutableRawPointer, writable: Bool) {
        self.fd = fd
        self.base = base
        self.writable = writable
    }

    private func word(_ index: Int) -> Word { Word(pointer: base.assumingMemoryBound(to: UInt64.self) + index) }

    /// Changes (by 2) on every completed publish; readers use it to skip an unchanged snapshot.
    public var sequence: UInt64 { word(1).loadRelaxed() }

    /// Publishes `snapshot`; false when it does not fit (the previous snapshot stays readable).
    @discardableResult
    public func publish(_ snapshot: [UInt8]) -> Bool {
        guard writable, snapshot.count <= Self.capacity else { return false }
        let sequence = word(1).loadRelaxed()
        word(1).storeRelaxed(sequence | 1)
        kflow_memory_fence()
        snapshot.withUnsafeBytes { bytes in
            if let source = bytes.baseAddress { (base + Self.headerBytes).copyMemory(from: source, byteCount: bytes.count) }
        }
        word(2).storeRelaxed(UInt64(snapshot.count))
        kflow_memory_fence()
        word(1).storeRelaxed((sequence | 1) &+ 1)
        return true
    }

    /// A consistent copy of the last published snapshot (empty if none), or nil when the writer kept
    /// rewriting it during every attempt.
    public func read() -> [UInt8]? {
        for _ in 0..<16 {
            let before = word(1).loadRelaxed()
            if before & 1 == 1 { usleep(1000); continue }
            kflow_memory_fence()
            let length = min(Int(word(2).loadRelaxed()), Self.capacity)
            let copy = [UInt8](UnsafeRawBufferPointer(start: base + Self.headerBytes, count: length))
            kflow_memory_fence()
            if word(1).loadRelaxed() == before { return copy }
        }
        return nil
    }

    public func unmap() { munmap(base, Self.headerBytes + Self.capacity) }

    private struct Word {
        let pointer: UnsafeMutablePointer<UInt64>
        func loadRelaxed() -> UInt64 { kflow_counter_load(pointer) }
        func storeRelaxed(_ value: UInt64) { kflow_counter_store(pointer, value) }
    }
}
