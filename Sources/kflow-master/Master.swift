import Logging
import SystemKit
import Config
import ConfigLayers
import ProcessKit
import MetricsServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The master process cycle (after nginx's): one loop that takes signals synchronously and has its
/// parts act in turn: the supervisor reaps, restarts and kills workers, the reload coordinator carries
/// out reloads, the health reporter tells the service manager and /healthz. The master never touches
/// a packet.
final class Master {
    /// The longest the loop sleeps waiting for a signal: the resolution of every timeout it keeps.
    static let passMilliseconds = 100

    private let sources: ConfigurationSources
    private let logger: Logger
    private let shared: MasterShared
    let supervisor: Supervisor
    let reloads: ReloadCoordinator
    let health: HealthReporter
    private(set) var stopping = false

    /// A master over `groups` (bound) whose parts use `processes`, `clock` and `notifier`: the real ones
    /// below, fakes in the unit tests. `sources` are read again on SIGHUP.
    init(configuration: KflowConfiguration, groups: SocketGroups, sources: ConfigurationSources, logger: Logger,
         processes: any WorkerProcesses, clock: any MonotonicClock, notifier: any ServiceNotifier, onlineCPUs: Int,
         shared: MasterShared = MasterShared()) {
        self.sources = sources
        self.logger = logger
        self.shared = shared
        supervisor = Supervisor(processes: processes, clock: clock, logger: logger, shared: shared,
                                configuration: configuration, groups: groups.serving)
        reloads = ReloadCoordinator(supervisor: supervisor, groups: groups, clock: clock, logger: logger,
                                    shared: shared, onlineCPUs: onlineCPUs)
        health = HealthReporter(supervisor: supervisor, notifier: notifier, clock: clock, logger: logger, shared: shared)
    }

    /// The real master: binds the sockets and starts the metrics server; no worker runs yet.
    convenience init(configuration: KflowConfiguration, sources: ConfigurationSources, logger: Logger,
                     workerExecutable: String) throws(SystemError) {
        let cpus = onlineCPUs()
        let workers = configuration.workerCount(onlineCPUs: cpus)
        var groups = SocketGroups()
        try groups.prepare(for: configuration, count: workers)
        let bufferBytes = groups.current.sockets.first?.receiveBufferBytes ?? 0
        logger.info("listening on [\(configuration.serverHost)]:\(configuration.serverPort)/udp with \(workers) worker(s), SO_RCVBUF \(bufferBytes) bytes")
        if let sflow = groups.current(.sflow) { logger.info("sFlow on [\(sflow.host)]:\(sflow.port)/udp") }
        if configuration.serverBufferSize * 2 > bufferBytes {
            logger.warning("server.buffer.size \(configuration.serverBufferSize) was capped by the kernel; raise net.core.rmem_max")
        }
        self.init(configuration: configuration, groups: groups, sources: sources, logger: logger,
                  processes: PosixWorkerProcesses(executable: workerExecutable), clock: SystemClock(),
                  notifier: SystemdNotifier(), onlineCPUs: cpus)
        if configuration.metricsPort != 0 {
            let server = try MetricsHTTPServer(
                host: configuration.metricsHost, port: configuration.metricsPort, logger: logger,
                handler: { [shared] path in shared.respond(path: path) },
                observe: { [shared] outcome in shared.update { $0.metricsConnections[outcome.rawValue] &+= 1 } })
            server.start()
            logger.info("metrics on http://[\(configuration.metricsHost)]:\(configuration.metricsPort)/metrics")
        }
    }

    // MARK: - The loop

    /// The signals the loop takes. Blocked when this is created: before any thread starts (the metrics
    /// server's), so every thread inherits the mask and each signal waits for the loop.
    static func blockSignals() -> SignalWaiter { SignalWaiter(signals: [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGCHLD]) }

    func run(signals: SignalWaiter) -> Int32 {
        reloads.startFirstGeneration()
        repeat {
            if let signal = signals.wait(timeoutMilliseconds: Self.passMilliseconds) { handle(signal: signal) }
        } while pass()
        logger.info("all workers stopped; \(shared.kafkaAccounting()); exiting")
        return 0
    }

    /// One pass of the cycle after a signal (or none); false once stopping and every worker is gone.
    func pass() -> Bool {
        if supervisor.reap(stopping: stopping) { reloads.closeUnusedGroups() }
        if stopping {
            supervisor.enforceStopDeadlines()
            return supervisor.liveWorkerCount > 0
        }
        supervisor.respawnDueSlots()
        supervisor.killStalledWorkers()
        if let outcome = reloads.advance() { health.reloadFinished(outcome) }
        supervisor.enforceStopDeadlines()
        health.tick()
        return true
    }

    func handle(signal: Int32) {
        guard !stopping else { return }
        switch signal {
        case SIGHUP:
            reload()
        case SIGTERM, SIGINT, SIGQUIT:
            beginShutdown(reason: signal == SIGINT ? "SIGINT" : signal == SIGQUIT ? "SIGQUIT" : "SIGTERM")
        default:
            break  // SIGCHLD: reaped on every pass
        }
    }

    /// SIGHUP: the new configuration is loaded completely first; a failure changes nothing.
    private func reload() {
        logger.info("SIGHUP: reloading configuration")
        let next: KflowConfiguration
        do {
            next = try sources.load()
        } catch {
            health.reloadRejected(because: "\(error)", afterReloading: false)
            return
        }
        health.reloadStarted()
        if let reason = reloads.begin(next) { health.reloadRejected(because: reason, afterReloading: true) }
    }

    private func beginShutdown(reason: String) {
        stopping = true
        health.stopping()
        logger.info("\(reason): stopping workers (flushing Kafka, up to \(supervisor.configuration.workerStopTimeoutMilliseconds) ms)")
        supervisor.terminateAll()
    }
}

private func onlineCPUs() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
