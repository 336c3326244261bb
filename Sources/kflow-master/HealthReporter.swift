import Logging
import FlowModel
import SystemKit
import WireFormat
import KafkaOutput
import Config
import ProcessKit
import MetricsServer

#if canImport(Glibc)
import Glibc
#endif

/// What the outside world sees of the master: READY, RELOADING, STOPPING and STATUS for the service
/// manager, the watchdog ping, /healthz, the crash-loop gauge and the reload counters. It reads the
/// supervisor's table and changes nothing in it.
final class HealthReporter {
    /// A heartbeat older than this withholds the watchdog ping and makes /healthz 503.
    static let freshHeartbeatNs: UInt64 = 1_500_000_000
    /// READY is sent when every worker runs, or after this long anyway (a worker that cannot start
    /// keeps being restarted; the service is up).
    static let readyWaitNs: UInt64 = 10_000_000_000
    /// How often STATUS (flows/s) is refreshed.
    static let statusIntervalNs: UInt64 = 5_000_000_000

    private let supervisor: Supervisor
    private let notifier: any ServiceNotifier
    private let clock: any MonotonicClock
    private let logger: Logger
    private let shared: MasterShared
    private let startedNs: UInt64
    private(set) var readySent = false
    private var lastWatchdogNs: UInt64 = 0
    private var lastStatusNs: UInt64 = 0
    private var lastStatusFlows: UInt64 = 0
    private(set) var lastReloadText = "none"

    init(supervisor: Supervisor, notifier: any ServiceNotifier, clock: any MonotonicClock, logger: Logger, shared: MasterShared) {
        self.supervisor = supervisor
        self.notifier = notifier
        self.clock = clock
        self.logger = logger
        self.shared = shared
        startedNs = clock.nowNs
    }

    /// On every pass of the loop (not while stopping).
    func tick() {
        if !readySent { sendReadyWhenWorkersRun() }
        pingWatchdog()
        refreshHealth()
        publishStatus()
    }

    private func sendReadyWhenWorkersRun() {
        let running = supervisor.allRunning
        guard running || clock.nowNs - startedNs > Self.readyWaitNs else { return }
        if !running { logger.warning("not every worker is running after \(Self.readyWaitNs / 1_000_000_000) s; reporting ready anyway") }
        readySent = true
        notifier.ready(status: statusLine(flowsPerSecond: 0))
        logger.info("ready: \(supervisor.slots.count) worker(s) running")
    }

    private func pingWatchdog() {
        guard let usec = notifier.watchdogMicroseconds else { return }
        let now = clock.nowNs
        guard now - lastWatchdogNs >= usec * 1000 / 2 else { return }
        // Ping only while every worker's heartbeat is fresh: a stuck worker withholds the ping.
        guard supervisor.allWorkersFresh(withinNs: Self.freshHeartbeatNs) else { return }
        notifier.watchdog()
        lastWatchdogNs = now
    }

    /// Health and the crash-loop gauge, on every pass. /healthz follows the watchdog's rule: a worker
    /// stalled for 1.5 s (or its heartbeat timeout, if shorter) or missing makes it 503. Judged against
    /// the kill timeout alone, a stalled worker would be replaced the moment it turned unhealthy and
    /// /healthz would never say so.
    private func refreshHealth() {
        let timeoutNs = UInt64(supervisor.configuration.workerHeartbeatTimeoutMilliseconds) * 1_000_000
        let healthy = supervisor.allWorkersFresh(withinNs: min(Self.freshHeartbeatNs, timeoutNs))
        let crashLooping = supervisor.crashLoopingCount
        shared.update { $0.healthy = healthy; $0.slotsInBackoff = crashLooping }
    }

    private func publishStatus() {
        let now = clock.nowNs
        guard now - lastStatusNs >= Self.statusIntervalNs else { return }
        let flows = shared.totalFlowsDecoded()
        let seconds = Double(now - lastStatusNs) / 1e9
        let rate = lastStatusNs == 0 ? 0 : Double(flows &- lastStatusFlows) / seconds
        lastStatusNs = now
        lastStatusFlows = flows
        if readySent { notifier.status(statusLine(flowsPerSecond: rate)) }
    }

    func statusLine(flowsPerSecond: Double) -> String {
        let backoff = supervisor.crashLoopingCount
        var text = "workers \(supervisor.runningCount)/\(supervisor.slots.count), \(Int(flowsPerSecond)) flows/s, last reload: \(lastReloadText)"
        if backoff > 0 { text += ", \(backoff) worker(s) crash-looping" }
        return text
    }

    // MARK: - Reloads and shutdown

    /// A reload whose configuration loaded: the manager hears RELOADING until it is applied or rejected.
    func reloadStarted() { notifier.reloading() }

    func reloadFinished(_ outcome: ReloadCoordinator.Outcome) {
        switch outcome {
        case let .applied(generation, workers, tookMs):
            lastReloadText = "ok at \(wallClockText())"
            shared.update { $0.reloadSuccesses += 1; $0.lastReloadSucceeded = true }
            notifier.ready(status: statusLine(flowsPerSecond: 0))
            logger.info("reload complete: generation \(generation) with \(workers) worker(s), took \(tookMs) ms")
        case let .rejected(reason):
            reloadRejected(because: reason, afterReloading: true)
        }
    }

    /// The running configuration stays. `afterReloading`: RELOADING was sent, so READY ends it.
    func reloadRejected(because reason: String, afterReloading: Bool) {
        logger.error("reload rejected, keeping the running configuration: \(reason)")
        lastReloadText = "failed at \(wallClockText()): \(reason)"
        shared.update { $0.reloadFailures += 1; $0.lastReloadSucceeded = false }
        let status = "reload failed, running the previous configuration: \(reason)"
        if afterReloading { notifier.ready(status: status) } else { notifier.status(status) }
    }

    func stopping() { notifier.stopping() }
}

private func wallClockText() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
