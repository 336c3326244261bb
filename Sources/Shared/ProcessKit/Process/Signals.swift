import CKflowShims

#if canImport(Glibc)
import Glibc
#endif

/// Synchronous signal handling: the signals a process cares about are blocked in every thread and
/// taken one at a time by the main loop with `sigtimedwait`, so no work ever happens in a handler
/// (the same effect as nginx's flags-plus-sigsuspend, with a timeout for the loop's timers).
public struct SignalWaiter {
    private var set = sigset_t()

    /// Blocks `signals` in the calling thread; call before starting any other thread so they inherit it.
    public init(signals: [Int32]) {
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The next pending signal, waiting at most `timeoutMilliseconds`; nil on timeout.
    public func wait(timeoutMilliseconds: Int) -> Int32? {
        var timeout = timespec(tv_sec: timeoutMilliseconds / 1000, tv_nsec: (timeoutMilliseconds % 1000) * 1_000_000)
        var info = siginfo_t()
        let s = withUnsafePointer(to: set) { sigtimedwait($0, &info, &timeout) }
        return s > 0 ? s : nil
    }

    /// A pending signal if there is one, without waiting.
    public func poll() -> Int32? { wait(timeoutMilliseconds: 0) }

    /// A descriptor that is readable while one of the signals is pending (signalfd), for a loop that
    /// already waits in poll(2): it learns of a signal without a system call of its own per turn.
    /// Take the signal itself with `poll()`. Nil if the kernel refuses one.
    public func makeDescriptor() -> Int32? {
        let fd = withUnsafePointer(to: set) { kflow_signalfd($0) }
        return fd >= 0 ? fd : nil
    }
}
