import Logging
import SystemKit
import Config
import ProcessKit
import MetricsServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The master process cycle (after nginx's): one loop that takes signals synchronously, reaps and
/// respawns workers, checks their heartbeats, pings the systemd watchdog and carries out reloads.
/// The master never touches a packet.
final class Master {
    private var configuration: KflowConfiguration
    private let sources: ConfigurationSources
    private let logger: Logger
    private let notifier = SystemdNotifier()
    private let signals = SignalWaiter(signals: [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGCHLD])
    private let workerExecutable: String
    let shared = MasterShared()

    private var groups = SocketGroups()
    private var slots: [WorkerSlot] = []
    /// Workers of earlier generations that are draining (or about to be asked to).
    private var retiring: [WorkerProcess] = []
    /// The generation new workers get: the serving one, or the one a pending reload is starting.
    private var generation: UInt64 = 1
    /// The highest generation number handed out (an abandoned reload's number is never reused).
    private var lastGenerationIssued: UInt64 = 1
    private var pendingReload: PendingReload?
    private var stopping = false
    private var readySent = false
    private let startedNs = Clock.monotonicNanoseconds
    private var lastWatchdogNs: UInt64 = 0
    private var lastStatusNs: UInt64 = 0
    private var lastStatusFlows: UInt64 = 0
    private var lastReloadText = "none"
    /// Template exchanges (memfd descriptors) of live workers and of workers gone less than a minute:
    /// every new worker imports their snapshots before it starts receiving.
    private var templateExchanges: [(fd: Int32, releasedAtNs: UInt64?)] = []
    private static let exchangeKeepNs: UInt64 = 60_000_000_000
    private static let maxExchangeSources = 64
    /// A heartbeat older than this withholds the watchdog ping and makes /healthz 503.
    private static let freshHeartbeatNs: UInt64 = 1_500_000_000
    /// A worker exiting sooner than this after its start counts as a quick failure (crash loop).
    private static let quickWorkerLifeNs: UInt64 = 10_000_000_000

    /// How long a reload's new generation has to reach `running` (every new worker running) before it is
    /// abandoned and the old generation keeps serving.
    private static let reloadDeadlineNs: UInt64 = 10_000_000_000
    /// A new worker that fails this many times in a row at start cannot run: the reload is abandoned
    /// at once rather than at its deadline.
    private static let reloadGiveUpFailures = 3

    struct PendingReload {
        var deadlineNs: UInt64
        var startedNs: UInt64
        /// What served before the reload: it keeps serving if the new generation never runs.
        var previous: ServingGeneration
    }

    struct ServingGeneration {
        let configuration: KflowConfiguration
        let generation: UInt64
        let slots: [WorkerSlot]
        let groupID: Int
        let socketCount: Int
    }

    init(configuration: KflowConfiguration, sources: ConfigurationSources, logger: Logger, workerExecutable: String) {
        self.configuration = configuration
        self.sources = sources
        self.logger = logger
        self.workerExecutable = workerExecutable
    }

    // MARK: - Start and the loop

    func run() throws(SystemError) -> Int32 {
        let workers = configuration.workerCount(onlineCPUs: onlineCPUs())
        let group = try groups.prepare(host: configuration.serverHost, port: configuration.serverPort,
                                       count: workers, bufferSize: configuration.serverBufferSize)
        logger.info("listening on [\(configuration.serverHost)]:\(configuration.serverPort)/udp with \(workers) worker(s), SO_RCVBUF \(group.sockets.first?.receiveBufferBytes ?? 0) bytes")
        if configuration.serverBufferSize * 2 > (group.sockets.first?.receiveBufferBytes ?? 0) {
            logger.warning("server.buffer.size \(configuration.serverBufferSize) was capped by the kernel; raise net.core.rmem_max")
        }
        shared.update { $0.socketInodes = groups.all.flatMap { g in g.sockets.map(\.inode) } }
        if configuration.metricsPort != 0 {
            let server = try MetricsHTTPServer(
                host: configuration.metricsHost, port: configuration.metricsPort, logger: logger,
                handler: { [shared] path in shared.respond(path: path) },
                observe: { [shared] outcome in shared.update { $0.metricsConnections[outcome.rawValue] &+= 1 } })
            server.start()
            logger.info("metrics on http://[\(configuration.metricsHost)]:\(configuration.metricsPort)/metrics")
        }
        slots = (0..<workers).map { WorkerSlot(index: $0) }
        for i in slots.indices { spawn(slot: i) }

        while true {
            let signal = signals.wait(timeoutMilliseconds: 100)
            if let signal { handle(signal: signal) }
            reap()
            if stopping {
                if liveWorkerCount == 0 { break }
                enforceStopDeadlines()
                continue
            }
            respawnDueSlots()
            checkHeartbeats()
            advanceReload()
            enforceStopDeadlines()
            if !readySent { sendReadyWhenWorkersRun() }
            pingWatchdog()
            refreshHealth()
            publishStatus()
        }
        logger.info("all workers stopped; \(shared.kafkaAccounting()); exiting")
        return 0
    }

    private func handle(signal: Int32) {
        switch signal {
        case SIGHUP:
            if stopping { return }
            reload()
        case SIGTERM, SIGINT, SIGQUIT:
            if stopping { return }
            beginShutdown(reason: signal == SIGINT ? "SIGINT" : signal == SIGQUIT ? "SIGQUIT" : "SIGTERM")
        default:
            break  // SIGCHLD: reaped below on every pass
        }
    }

    // MARK: - Workers

    private var liveWorkerCount: Int { slots.filter { $0.worker != nil }.count + retiring.count }

    private func spawn(slot index: Int) {
        let workerCount = slots.count
        let group = groups.current
        // Worker i serves every socket j with j % workers == i, so a shrunk worker count keeps all
        // sockets (and the packets queued in them) served.
        let sockets = group.sockets.indices.filter { $0 % workerCount == index }.map { group.sockets[$0].fd }
        do throws(SystemError) {
            let segment = try WorkerSegment.create(name: "kflow-worker-\(index)")
            let exchange = try TemplateExchange.create(name: "kflow-templates-\(index)")
            exchange.unmap()  // the master only hands the descriptor on
            let sources = templateExchanges.suffix(Self.maxExchangeSources).map(\.fd)
            var pipeFDs: [Int32] = [0, 0]
            guard pipe(&pipeFDs) == 0 else { throw SystemError("pipe") }
            // The master spawns from this thread only, so setting close-on-exec right away is race-free.
            _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
            let socketArguments = (0..<sockets.count).map { String(3 + $0) }.joined(separator: ",")
            let arguments = [
                "--socket-fds", socketArguments,
                "--segment-fd", String(3 + sockets.count),
                "--config-fd", String(4 + sockets.count),
                "--slot", String(index),
                "--generation", String(generation),
                "--template-exchange-fd", String(5 + sockets.count),
            ] + (sources.isEmpty ? [] : [
                "--template-source-fds", (0..<sources.count).map { String(6 + sockets.count + $0) }.joined(separator: ","),
            ])
            let pid: pid_t
            do throws(SystemError) {
                pid = try Spawn.start(executable: workerExecutable, arguments: arguments,
                                      descriptors: sockets + [segment.fd, pipeFDs[0], exchange.fd] + sources)
            } catch {
                close(pipeFDs[0]); close(pipeFDs[1]); segment.unmap(); close(segment.fd); close(exchange.fd)
                throw error
            }
            templateExchanges.append((fd: exchange.fd, releasedAtNs: nil))
            close(pipeFDs[0])
            DescriptorIO.writeAll(pipeFDs[1], Array(configuration.workerText().utf8))
            close(pipeFDs[1])
            let worker = WorkerProcess(slot: index, generation: generation, pid: pid, segment: segment,
                                       templateExchangeFD: exchange.fd, startedNs: Clock.monotonicNanoseconds, groupID: group.id)
            slots[index].worker = worker
            slots[index].respawnAtNs = nil
            shared.update { $0.live.append(worker.segment) }
            logger.info("worker \(index) started", metadata: ["pid": "\(pid)", "generation": "\(generation)"])
        } catch {
            logger.error("cannot start worker \(index): \(error)")
            slots[index].failures += 1
            slots[index].lastFailure = "cannot start: \(error)"
            scheduleRespawn(slot: index, failed: true)
        }
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            let how = describe(waitStatus: status)
            if let i = slots.firstIndex(where: { $0.worker?.pid == pid }), let worker = slots[i].worker {
                retire(worker)
                slots[i].worker = nil
                if stopping { logger.info("worker \(i) exited (\(how))"); continue }
                let lived = Clock.monotonicNanoseconds &- worker.startedNs
                slots[i].failures += 1
                slots[i].lastFailure = "\(how) after \(lived / 1_000_000) ms"
                logger.warning("worker \(i) exited unexpectedly (\(how)) after \(lived / 1_000_000) ms; restarting")
                shared.update { $0.restarts += 1 }
                scheduleRespawn(slot: i, failed: lived < Self.quickWorkerLifeNs)
            } else if let r = retiring.firstIndex(where: { $0.pid == pid }) {
                let worker = retiring.remove(at: r)
                retire(worker)
                logger.info("worker \(worker.slot) of generation \(worker.generation) retired (\(how))")
                groups.closeUnused(keeping: Set(slots.compactMap { $0.worker?.groupID } + retiring.map(\.groupID)))
            }
        }
    }

    /// Folds a finished worker's final counters into the master's totals and releases its segment.
    /// Whatever it left in its producer queue (a killed or crashed worker) is counted as lost.
    private func retire(_ worker: WorkerProcess) {
        var unsent = MasterShared.Unsent()
        shared.update { state in
            unsent = state.carry(worker.segment)
            state.live.removeAll { $0.fd == worker.segment.fd }
        }
        if unsent.messages > 0 {
            logger.error("worker \(worker.slot) (pid \(worker.pid), generation \(worker.generation)) left about \(unsent.messages) message(s) (\(unsent.records) record(s)) undelivered in its Kafka queue; counted in kflow_kafka_lost_in_dead_workers_total")
        }
        worker.segment.unmap()
        close(worker.segment.fd)
        let now = Clock.monotonicNanoseconds
        if let i = templateExchanges.firstIndex(where: { $0.fd == worker.templateExchangeFD }) {
            templateExchanges[i].releasedAtNs = now
        }
        // Snapshots of workers gone for a minute are stale: their successors have published their own.
        templateExchanges.removeAll { entry in
            guard let released = entry.releasedAtNs, now - released > Self.exchangeKeepNs else { return false }
            close(entry.fd)
            return true
        }
    }

    private func scheduleRespawn(slot index: Int, failed: Bool) {
        let now = Clock.monotonicNanoseconds
        slots[index].consecutiveFailures = failed ? slots[index].consecutiveFailures + 1 : 0
        let failures = slots[index].consecutiveFailures
        // First restart at once (well within a second); a crash loop backs off up to 30 s.
        let delayMs: UInt64 = failures <= 1 ? 0 : min(30_000, 250 << UInt64(min(failures - 2, 10)))
        slots[index].respawnAtNs = now + delayMs * 1_000_000
        if delayMs > 0 {
            logger.warning("worker \(index) is crash-looping (\(failures) quick failures); next start in \(delayMs) ms")
        }
    }

    private func respawnDueSlots() {
        let now = Clock.monotonicNanoseconds
        for i in slots.indices where slots[i].worker == nil {
            if let at = slots[i].respawnAtNs, at <= now { spawn(slot: i) }
        }
        // A worker that has stayed up for quickWorkerLifeNs ends its slot's crash loop; otherwise the
        // slot would count as crash-looping (gauge, STATUS) until its next exit, however far off.
        for i in slots.indices where slots[i].consecutiveFailures > 0 {
            // `now` predates workers spawned just above: compare without subtracting past zero.
            if let w = slots[i].worker, now >= w.startedNs + Self.quickWorkerLifeNs { slots[i].consecutiveFailures = 0 }
        }
    }

    private func checkHeartbeats() {
        let now = Clock.monotonicNanoseconds
        let limit = UInt64(configuration.workerHeartbeatTimeoutMilliseconds) * 1_000_000
        for slot in slots {
            guard let worker = slot.worker, !worker.killedForStall else { continue }
            let last = max(worker.segment.heartbeatNanoseconds, worker.startedNs)
            if now > last, now - last > limit {
                logger.error("worker \(slot.index) (pid \(worker.pid)) missed its heartbeat for \((now - last) / 1_000_000) ms; killing it")
                worker.killedForStall = true
                kill(worker.pid, SIGKILL)
            }
        }
    }

    /// True when every current worker exists and beat its heart within `withinNs`.
    private func allWorkersFresh(withinNs: UInt64) -> Bool {
        let now = Clock.monotonicNanoseconds
        return slots.allSatisfy { slot in
            guard let w = slot.worker, !w.killedForStall else { return false }
            let last = max(w.segment.heartbeatNanoseconds, w.startedNs)
            return now <= last || now - last <= withinNs
        }
    }

    private var allWorkersRunning: Bool {
        slots.allSatisfy { $0.worker?.segment.state == .running }
    }

    private func sendReadyWhenWorkersRun() {
        let waited = Clock.monotonicNanoseconds - startedNs
        if allWorkersRunning || waited > 10_000_000_000 {
            if !allWorkersRunning { logger.warning("not every worker is running after 10 s; reporting ready anyway") }
            readySent = true
            notifier.ready(status: statusLine(flowsPerSecond: 0))
            logger.info("ready: \(slots.count) worker(s) running")
        }
    }

    private func pingWatchdog() {
        guard let usec = notifier.watchdogMicroseconds else { return }
        let now = Clock.monotonicNanoseconds
        guard now - lastWatchdogNs >= usec * 1000 / 2 else { return }
        // Ping only while every worker's heartbeat is fresh: a stuck worker withholds the ping.
        guard allWorkersFresh(withinNs: Self.freshHeartbeatNs) else { return }
        notifier.watchdog()
        lastWatchdogNs = now
    }

    private func publishStatus() {
        let now = Clock.monotonicNanoseconds
        guard now - lastStatusNs >= 5_000_000_000 else { return }
        let flows = shared.totalFlowsDecoded()
        let seconds = Double(now - lastStatusNs) / 1e9
        let rate = lastStatusNs == 0 ? 0 : Double(flows &- lastStatusFlows) / seconds
        lastStatusNs = now
        lastStatusFlows = flows
        if readySent { notifier.status(statusLine(flowsPerSecond: rate)) }
    }

    /// Health and the crash-loop gauge, on every pass. /healthz follows the watchdog's rule: a worker
    /// stalled for 1.5 s (or its heartbeat timeout, if shorter) or missing makes it 503. Judged against
    /// the kill timeout alone, a stalled worker would be replaced the moment it turned unhealthy and
    /// /healthz would never say so.
    private func refreshHealth() {
        let limitNs = min(Self.freshHeartbeatNs, UInt64(configuration.workerHeartbeatTimeoutMilliseconds) * 1_000_000)
        let healthy = allWorkersFresh(withinNs: limitNs)
        let crashLooping = slots.filter { $0.consecutiveFailures > 1 }.count
        shared.update { $0.healthy = healthy; $0.slotsInBackoff = crashLooping }
    }

    private func statusLine(flowsPerSecond: Double) -> String {
        let running = slots.filter { $0.worker?.segment.state == .running }.count
        let backoff = slots.filter { $0.consecutiveFailures > 1 }.count
        var text = "workers \(running)/\(slots.count), \(Int(flowsPerSecond)) flows/s, last reload: \(lastReloadText)"
        if backoff > 0 { text += ", \(backoff) worker(s) crash-looping" }
        return text
    }

    // MARK: - Reload (SIGHUP)

    private func reload() {
        logger.info("SIGHUP: reloading configuration")
        let next: KflowConfiguration
        do {
            next = try sources.load()
        } catch {
            rejectReload(because: "\(error)", readyAfterReloading: false)
            return
        }
        notifier.reloading()
        // A reload during a reload abandons the generation still starting; the one serving before the
        // first stays the fallback.
        let previous: ServingGeneration
        if let pending = pendingReload {
            stopWorkers(slots.compactMap(\.worker), reason: "superseded by another reload")
            previous = pending.previous
        } else {
            previous = ServingGeneration(configuration: configuration, generation: generation, slots: slots,
                                         groupID: groups.current.id, socketCount: groups.current.sockets.count)
        }
        let workers = next.workerCount(onlineCPUs: onlineCPUs())
        do {
            _ = try groups.prepare(host: next.serverHost, port: next.serverPort, count: workers, bufferSize: next.serverBufferSize)
        } catch {
            if pendingReload != nil { rollBack(to: previous) }
            rejectReload(because: "\(error)", readyAfterReloading: true)
            return
        }
        if next.metricsPort != configuration.metricsPort || next.metricsHost != configuration.metricsHost {
            logger.warning("metrics.host/metrics.port changes take effect at the next restart")
        }
        configuration = next
        shared.update { $0.socketInodes = groups.all.flatMap { g in g.sockets.map(\.inode) } }
        // The old generation keeps receiving until the new one runs; then it drains and exits. Until
        // then its workers wait in `retiring` (without a stop deadline) and may still be taken back.
        if pendingReload == nil {
            for slot in slots { if let w = slot.worker { retiring.append(w) } }
        }
        lastGenerationIssued += 1
        generation = lastGenerationIssued
        slots = (0..<workers).map { WorkerSlot(index: $0) }
        for i in slots.indices { spawn(slot: i) }
        let now = Clock.monotonicNanoseconds
        pendingReload = PendingReload(deadlineNs: now + Self.reloadDeadlineNs, startedNs: now, previous: previous)
    }

    private func advanceReload() {
        guard let pending = pendingReload else { return }
        let now = Clock.monotonicNanoseconds
        if !allWorkersRunning {
            let hopeless = slots.contains { $0.worker == nil && $0.consecutiveFailures >= Self.reloadGiveUpFailures }
            guard hopeless || now > pending.deadlineNs else { return }
            abandonReload(pending, now: now)
            return
        }
        let deadline = now + UInt64(configuration.workerStopTimeoutMilliseconds) * 1_000_000
        for w in retiring where w.stopDeadlineNs == nil {
            w.stopDeadlineNs = deadline
            kill(w.pid, SIGTERM)
        }
        pendingReload = nil
        lastReloadText = "ok at \(wallClockText())"
        shared.update { $0.reloadSuccesses += 1; $0.lastReloadSucceeded = true }
        notifier.ready(status: statusLine(flowsPerSecond: 0))
        logger.info("reload complete: generation \(generation) with \(slots.count) worker(s), took \((now - pending.startedNs) / 1_000_000) ms")
    }

    /// The new generation did not reach `running`: stop it and put the old generation back in its slots.
    private func abandonReload(_ pending: PendingReload, now: UInt64) {
        let reason = "new workers did not start within \((now - pending.startedNs) / 1_000_000) ms: "
            + slots.filter { $0.worker?.segment.state != .running }.map(Self.describeStart).joined(separator: "; ")
        stopWorkers(slots.compactMap(\.worker), reason: "its reload is abandoned")
        rollBack(to: pending.previous)
        rejectReload(because: reason, readyAfterReloading: true)
    }

    /// What kept a new worker from running, for the log and STATUS.
    private static func describeStart(_ slot: WorkerSlot) -> String {
        var text = "worker \(slot.index) "
        if slot.failures > 0 {
            text += "failed \(slot.failures) time(s), last: \(slot.lastFailure ?? "unknown")"
        } else if let w = slot.worker {
            text += "still \(w.segment.state) (pid \(w.pid))"
        } else {
            text += "was never started"
        }
        return text
    }

    /// Asks `workers` to stop (drain and flush) with the stop deadline, and moves them to `retiring`.
    private func stopWorkers(_ workers: [WorkerProcess], reason: String) {
        let deadline = Clock.monotonicNanoseconds + UInt64(configuration.workerStopTimeoutMilliseconds) * 1_000_000
        for w in workers {
            logger.info("stopping worker \(w.slot) of generation \(w.generation) (pid \(w.pid)): \(reason)")
            w.stopDeadlineNs = w.stopDeadlineNs ?? deadline
            kill(w.pid, SIGTERM)
            if !retiring.contains(where: { $0 === w }) { retiring.append(w) }
        }
        for i in slots.indices { slots[i].worker = nil }
    }

    /// The serving generation back in its slots, with its configuration and sockets; a worker of it
    /// that exited meanwhile is started again (with the old configuration).
    private func rollBack(to previous: ServingGeneration) {
        configuration = previous.configuration
        generation = previous.generation
        groups.reinstate(id: previous.groupID, socketCount: previous.socketCount)
        let now = Clock.monotonicNanoseconds
        slots = previous.slots.map { old in
            var slot = old
            if let w = old.worker, let r = retiring.firstIndex(where: { $0 === w }) {
                retiring.remove(at: r)
            } else if old.worker != nil {
                slot.worker = nil
                slot.respawnAtNs = now
            }
            return slot
        }
        // A group the reload bound for a new address goes now unless a stopping new worker still reads it
        // (then when that worker is reaped): left bound, it would share a later group on that address.
        groups.closeUnused(keeping: Set(slots.compactMap { $0.worker?.groupID } + retiring.map(\.groupID)))
        shared.update { $0.socketInodes = groups.all.flatMap { g in g.sockets.map(\.inode) } }
        pendingReload = nil
    }

    private func rejectReload(because reason: String, readyAfterReloading: Bool) {
        logger.error("reload rejected, keeping the running configuration: \(reason)")
        lastReloadText = "failed at \(wallClockText()): \(reason)"
        shared.update { $0.reloadFailures += 1; $0.lastReloadSucceeded = false }
        let status = "reload failed, running the previous configuration: \(reason)"
        if readyAfterReloading { notifier.ready(status: status) } else { notifier.status(status) }
    }

    // MARK: - Shutdown

    private func beginShutdown(reason: String) {
        stopping = true
        notifier.stopping()
        logger.info("\(reason): stopping workers (flushing Kafka, up to \(configuration.workerStopTimeoutMilliseconds) ms)")
        let deadline = Clock.monotonicNanoseconds + UInt64(configuration.workerStopTimeoutMilliseconds) * 1_000_000
        for w in slots.compactMap(\.worker) + retiring {
            w.stopDeadlineNs = w.stopDeadlineNs ?? deadline
            kill(w.pid, SIGTERM)
        }
    }

    /// Termination escalates: a worker past its stop deadline is killed.
    private func enforceStopDeadlines() {
        let now = Clock.monotonicNanoseconds
        for w in slots.compactMap(\.worker) + retiring {
            if let deadline = w.stopDeadlineNs, now > deadline, !w.killedAfterDeadline {
                logger.error("worker \(w.slot) (pid \(w.pid)) did not stop in time; killing it")
                w.killedAfterDeadline = true
                kill(w.pid, SIGKILL)
            }
        }
    }
}

// MARK: - Process table

final class WorkerProcess {
    let slot: Int
    let generation: UInt64
    let pid: pid_t
    let segment: WorkerSegment
    let templateExchangeFD: Int32
    let startedNs: UInt64
    let groupID: Int
    var stopDeadlineNs: UInt64?
    var killedForStall = false
    var killedAfterDeadline = false

    init(slot: Int, generation: UInt64, pid: pid_t, segment: WorkerSegment, templateExchangeFD: Int32, startedNs: UInt64, groupID: Int) {
        self.templateExchangeFD = templateExchangeFD
        self.slot = slot
        self.generation = generation
        self.pid = pid
        self.segment = segment
        self.startedNs = startedNs
        self.groupID = groupID
    }
}

struct WorkerSlot {
    let index: Int
    var worker: WorkerProcess?
    var consecutiveFailures = 0
    var respawnAtNs: UInt64?
    /// Unexpected exits (or failed spawns) of this slot's workers, and how the latest ended: the reason a
    /// reload's new generation did not start.
    var failures = 0
    var lastFailure: String?

    init(index: Int) { self.index = index }
}

/// The master's SO_REUSEPORT groups: the current one, and older ones while workers still drain them.
struct SocketGroups {
    struct Group {
        let id: Int
        let host: String
        let port: UInt16
        var sockets: [UDPSocket]
    }

    private(set) var all: [Group] = []
    private var nextID = 1

    var current: Group { all[all.count - 1] }

    /// Makes the current group fit host:port with at least `count` sockets: a new group when the
    /// address changes, more sockets when the count grows (never fewer: queued packets are kept).
    @discardableResult
    mutating func prepare(host: String, port: UInt16, count: Int, bufferSize: Int) throws(SystemError) -> Group {
        if all.isEmpty || current.host != host || current.port != port {
            var fresh = Group(id: nextID, host: host, port: port, sockets: [])
            for _ in 0..<count {
                do { fresh.sockets.append(try UDPSocket.bind(host: host, port: port, receiveBufferBytes: bufferSize)) } catch {
                    fresh.sockets.forEach { $0.close() }
                    throw error
                }
            }
            nextID += 1
            all.append(fresh)
            return fresh
        }
        var group = current
        for s in group.sockets { s.setReceiveBuffer(bytes: bufferSize) }
        while group.sockets.count < count {
            group.sockets.append(try UDPSocket.bind(host: host, port: port, receiveBufferBytes: bufferSize))
        }
        all[all.count - 1] = group
        return group
    }

    /// Makes group `id` current again with its first `socketCount` sockets, after a reload that is
    /// abandoned: sockets the reload added are closed here (their kernel queue goes with the last copy,
    /// held by a stopping new worker), or they would take a share of the traffic nobody reads.
    mutating func reinstate(id: Int, socketCount: Int) {
        guard let index = all.firstIndex(where: { $0.id == id }) else { return }
        var group = all.remove(at: index)
        if group.sockets.count > socketCount {
            group.sockets[socketCount...].forEach { $0.close() }
            group.sockets.removeLast(group.sockets.count - socketCount)
        }
        all.append(group)
    }

    /// Closes the master's copies of groups no worker uses any more (never the current one).
    mutating func closeUnused(keeping used: Set<Int>) {
        guard all.count > 1 else { return }
        let currentID = current.id
        all.removeAll { g in
            guard g.id != currentID, !used.contains(g.id) else { return false }
            g.sockets.forEach { $0.close() }
            return true
        }
    }
}

// MARK: - Helpers

private func onlineCPUs() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

private func describe(waitStatus status: Int32) -> String {
    if status & 0x7F == 0 { return "exit code \((status >> 8) & 0xFF)" }
    let signal = status & 0x7F
    return "killed by signal \(signal)"
}

private func wallClockText() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
