import CSystemd
import SystemKit

/// Where the master tells its service manager how it is doing (sd_notify(3) state lines); a protocol so
/// the unit tests read what the master would have said.
protocol ServiceNotifier {
    /// WatchdogSec as microseconds, when the manager asked for pings; the master pings at half of it.
    var watchdogMicroseconds: UInt64? { get }
    func notify(_ state: String)
}

extension ServiceNotifier {
    func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    func reloading() { notify("RELOADING=1\nMONOTONIC_USEC=\(Clock.monotonicNanoseconds / 1000)") }
    func stopping() { notify("STOPPING=1") }
    func status(_ text: String) { notify("STATUS=\(text)") }
    func watchdog() { notify("WATCHDOG=1") }
}

/// sd_notify through libsystemd. Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
struct SystemdNotifier: ServiceNotifier {
    let watchdogMicroseconds: UInt64?

    init() {
        var usec: UInt64 = 0
        watchdogMicroseconds = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    func notify(_ state: String) { _ = sd_notify(0, state) }
}
