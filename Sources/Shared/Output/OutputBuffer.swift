/// A fixed-capacity byte buffer, allocated once and reused for every message a worker sends.
///
/// Writers reserve the worst-case size of what they are about to write, write through the returned
/// pointer, then commit what they wrote. The reservation is the one place capacity is enforced, so
/// nothing is ever written past the end. A class because it owns memory: one owner, freed in one place.
public final class OutputBuffer {
    /// Bytes the buffer can hold.
    public let capacity: Int
    /// Bytes written so far.
    @inlinable public var count: Int { written }
    @usableFromInline var written = 0
    @usableFromInline let base: UnsafeMutablePointer<UInt8>

    public init(capacity: Int) {
        self.capacity = max(capacity, 0)
        base = .allocate(capacity: max(capacity, 1))
    }

    deinit { base.deallocate() }

    @inlinable public var remaining: Int { capacity - written }
    @inlinable public var isEmpty: Bool { written == 0 }

    /// The written bytes. Valid until the next write or `removeAll()`; the memory lives as long as the buffer.
    @inlinable public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: written)
    }

    /// Forgets the content, keeping the memory.
    @inlinable public func removeAll() { written = 0 }

    /// Start of `count` writable bytes after the content, or nil when fewer remain. Follow with `commit`.
    @inlinable public func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8>? {
        count >= 0 && count <= capacity - written ? base + written : nil
    }

    /// Adds `written` bytes, written through the pointer `reserve` returned, to the content. Clamped to
    /// the capacity so a writer that overstates can never make `bytes` cover memory it does not own.
    @inlinable public func commit(_ written: Int) {
        self.written += min(max(written, 0), capacity - self.written)
    }

    /// Appends bytes if they fit; returns false (writing nothing) otherwise.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let destination = reserve(bytes.count) else { return false }
        if let source = bytes.baseAddress {
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: bytes.count)
        }
        commit(bytes.count)
        return true
    }

    /// Appends one byte if it fits; returns false otherwise.
    @inlinable @discardableResult
    public func append(_ byte: UInt8) -> Bool {
        guard let destination = reserve(1) else { return false }
        destination.pointee = byte
        commit(1)
        return true
    }
}
