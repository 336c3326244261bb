import CKflowShims

/// A sequence lock over one word of shared memory: one writer, any number of readers in other
/// processes, nobody waits on anybody. The writer makes the sequence odd, writes, and makes it even
/// again; a reader that saw an odd sequence, or a different one after copying, copied a torn state and
/// tries again. Data are read and written with relaxed atomics (or plain copies, for bulk bytes) between
/// the fences.
public struct SeqLock: @unchecked Sendable {
    let sequence: UnsafeMutablePointer<UInt64>

    public init(sequence: UnsafeMutablePointer<UInt64>) { self.sequence = sequence }

    /// Changes (by 2) on every completed write; even when no write is under way.
    public var current: UInt64 { kflow_sequence_load_acquire(sequence) }

    /// Runs `write` between an odd and the next even sequence (the only writer calls this).
    public func write<R>(_ write: () -> R) -> R {
        let odd = kflow_counter_load(sequence) | 1
        kflow_counter_store(sequence, odd)
        kflow_fence_release()  // the odd sequence is visible before any of the data written below
        let result = write()
        kflow_sequence_store_release(sequence, odd &+ 1)  // ... and all of it before the even one
        return result
    }

    /// A consistent result of `read`, or nil when the writer was busy in each of `attempts` tries;
    /// `pause` runs after a try that met a write under way.
    public func read<R>(attempts: Int, pause: () -> Void = {}, _ read: () -> R) -> R? {
        for _ in 0..<attempts {
            let before = kflow_sequence_load_acquire(sequence)
            if before & 1 == 1 { pause(); continue }
            let result = read()
            kflow_fence_acquire()  // the data loads above complete before the sequence is checked again
            if kflow_counter_load(sequence) == before { return result }
            pause()
        }
        return nil
    }
}
