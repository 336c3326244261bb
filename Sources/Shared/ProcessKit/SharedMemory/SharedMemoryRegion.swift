import SystemKit
import CKflowShims

#if canImport(Glibc)
import Glibc
#endif

/// An anonymous shared-memory file (memfd) and its mapping, released together exactly once (`deinit`).
/// The master creates one per worker for its counters and one for its template snapshots, and hands the
/// descriptor to the worker, which attaches it. Nobody closes or unmaps a region by hand.
public struct SharedMemoryRegion: ~Copyable, @unchecked Sendable {
    public let fd: Int32
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int

    /// A new zero-filled region of `byteCount` bytes (sparse: only written pages use memory). The
    /// descriptor is close-on-exec in this process; a spawn passes it on explicitly.
    public init(creating name: String, byteCount: Int) throws(SystemError) {
        let fd = kflow_memfd_create(name)
        guard fd >= 0 else { throw SystemError("memfd_create(\(name))", code: -fd) }
        guard ftruncate(fd, off_t(byteCount)) == 0 else {
            let e = SystemError("ftruncate(\(name), \(byteCount))"); close(fd); throw e
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        try self.init(owning: fd, byteCount: byteCount, writable: true, what: name)
    }

    /// Maps an inherited region `fd` (a worker's side) and takes ownership of the descriptor, which is
    /// closed here when the mapping fails.
    public init(attaching fd: Int32, byteCount: Int, writable: Bool, what: String) throws(SystemError) {
        try self.init(owning: fd, byteCount: byteCount, writable: writable, what: what)
    }

    private init(owning fd: Int32, byteCount: Int, writable: Bool, what: String) throws(SystemError) {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let p = mmap(nil, byteCount, protection, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            let e = SystemError("mmap(\(what), fd \(fd), \(byteCount) bytes)"); close(fd); throw e
        }
        self.fd = fd
        self.base = p
        self.byteCount = byteCount
    }

    /// The region's 64-bit word `index`, for relaxed single-writer fields and sequence numbers.
    @inline(__always) public func word(_ index: Int) -> UnsafeMutablePointer<UInt64> {
        base.assumingMemoryBound(to: UInt64.self) + index
    }

    deinit {
        munmap(base, byteCount)
        close(fd)
    }
}
