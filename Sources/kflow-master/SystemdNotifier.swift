import CSystemd
import SystemKit

/// sd_notify through libsystemd. Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
struct SystemdNotifier {
    /// WatchdogSec as microseconds, when systemd asked for pings; the master pings at half of it.
    let watchdogMicroseconds: UInt64?

    init() {
        var usec: UInt64 = 0
        watchdogMicroseconds = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    func notify(_ state: String) { _ = sd_notify(0, state) }

    func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    func reloading() { notify("RELOADING=1\nMONOTONIC_USEC=\(Clock.monotonicNanoseconds / 1000)") }
    func stopping() { notify("STOPPING=1") }
    func status(_ text: String) { notify("STATUS=\(text)") }
    func watchdog() { notify("WATCHDOG=1") }
}
