#if canImport(Glibc)
import Glibc
#endif

/// Clocks read without allocation: monotonic for timeouts and heartbeats, wall for export times.
public enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC (comparable across processes on the same boot).
    @inlinable public static var monotonicNanoseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Milliseconds since the epoch.
    @inlinable public static var wallMilliseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1000 &+ UInt64(ts.tv_nsec / 1_000_000)
    }

    /// Seconds since the epoch.
    @inlinable public static var wallSeconds: UInt32 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt32(truncatingIfNeeded: ts.tv_sec)
    }
}
