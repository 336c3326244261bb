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

/// The process table (after nginx's): one slot per worker of the serving generation, the workers of
/// earlier generations still draining, and what starts, reaps, restarts and kills them. It decides
/// nothing about generations: the reload coordinator sets what new workers get (`configuration`,
/// `generation`, `group`) and says when a generation starts, retires or comes back.
final class Supervisor {
    /// A worker exiting sooner than this after its start counts as a quick failure (crash loop).
    static let quickWorkerLifeNs: UInt64 = 10_000_000_000

    private let processes: any WorkerProcesses
    private let clock: any MonotonicClock
    private let logger: Logger
    private let shared: MasterShared

    private(set) var slots: [WorkerSlot] = []
    /// Workers of earlier generations that are draining (or about to be asked to).
    private(set) var retiring: [WorkerProcess] = []
    private var exchanges = TemplateExchangeBook()

    /// What new workers get: the serving configuration and generation, or those a pending reload starts.
    var configuration: KflowConfiguration
    var generation: UInt64 = 1
    /// The socket groups new workers read (flows, then sFlow when it listens).
    var groups: [SocketGroups.Group]

    init(processes: any WorkerProcesses, clock: any MonotonicClock, logger: Logger, shared: MasterShared,
         configuration: KflowConfiguration, groups: [SocketGroups.Group]) {
        self.processes = processes
        self.clock = clock
        self.logger = logger
        self.shared = shared
        self.configuration = configuration
        self.groups = groups
    }

    // MARK: - What the other parts ask

    var liveWorkerCount: Int { slots.filter { $0.worker != nil }.count + retiring.count }
    var runningCount: Int { slots.filter { $0.worker?.segment.state == .running }.count }
    var allRunning: Bool { slots.allSatisfy { $0.worker?.segment.state == .running } }
    /// Slots whose restarts are delayed after repeated quick failures.
    var crashLoopingCount: Int { slots.filter { $0.consecutiveFailures > 1 }.count }
    /// Socket groups some worker still reads.
    var usedGroupIDs: Set<Int> { Set(slots.flatMap { $0.worker?.groupIDs ?? [] } + retiring.flatMap(\.groupIDs)) }

    /// True when every current worker exists and beat its heart within `withinNs`.
    func allWorkersFresh(withinNs: UInt64) -> Bool {
        let now = clock.nowNs
        return slots.allSatisfy { slot in
            guard let w = slot.worker, !w.killedForStall else { return false }
            let last = max(w.segment.heartbeatNanoseconds, w.startedNs)
            return now <= last || now - last <= withinNs
        }
    }

    private var stopTimeoutNs: UInt64 { UInt64(configuration.workerStopTimeoutMilliseconds) * 1_000_000 }

    // MARK: - Starting

    /// A new set of `count` slots, each with a worker of the current generation started now. Every
    /// slot's template exchange exists before the first start: each worker gets its siblings' to read.
    func startGeneration(workers count: Int) {
        slots = (0..<count).map { WorkerSlot(index: $0) }
        for i in slots.indices {
            do { slots[i].exchange = try TemplateExchange(creating: "kflow-templates-\(i)") } catch {
                logger.error("cannot create worker \(i)'s template exchange: \(error); retried at its start")
            }
        }
        for i in slots.indices { spawn(slot: i) }
    }

    /// Starts slot `index`'s worker. The segment is released if the start fails, the configuration pipe
    /// by `WorkerProcesses`. The slot keeps its exchange for its whole generation: a replacement imports
    /// what its predecessor published there and goes on publishing there, where its siblings look.
    private func spawn(slot index: Int) {
        // Worker i serves every socket j of each group with j % workers == i, so a shrunk worker count
        // keeps all sockets (and the packets queued in them) served.
        let sockets = groups.flatMap { group in
            group.sockets.indices.filter { $0 % slots.count == index }.map { group.sockets[$0].fd }
        }
        do throws(SystemError) {
            let segment = try WorkerSegment(creating: "kflow-worker-\(index)")
            let exchange: TemplateExchange
            if let held = slots[index].exchange { exchange = held } else {
                exchange = try TemplateExchange(creating: "kflow-templates-\(index)")
                slots[index].exchange = exchange
            }
            let generationExchanges = Set(slots.compactMap { $0.exchange?.fd })
            let siblings = slots.filter { $0.index != index }.compactMap { $0.exchange?.fd }
            let launch = WorkerLaunch(slot: index, generation: generation, sockets: sockets, segment: segment.fd,
                                      configuration: -1, templateExchange: exchange.fd,
                                      templateSources: exchanges.sources.filter { !generationExchanges.contains($0) },
                                      siblings: siblings)
            let pid = try processes.start(launch, configuration: Array(configuration.workerText().utf8))
            exchanges.add(exchange)
            let worker = WorkerProcess(slot: index, generation: generation, pid: pid, segment: segment,
                                       exchange: exchange, startedNs: clock.nowNs, groupIDs: groups.map(\.id))
            slots[index].worker = worker
            slots[index].respawnAtNs = nil
            shared.update {
                $0.live.append(segment)
                $0.inventory.append(Inventory.Worker(slot: index, segment: segment, exchange: exchange))
            }
            logger.info("worker \(index) started", metadata: ["pid": "\(pid)", "generation": "\(generation)"])
        } catch {
            logger.error("cannot start worker \(index): \(error)")
            slots[index].failures += 1
            slots[index].lastFailure = "cannot start: \(error)"
            scheduleRespawn(slot: index, failed: true)
        }
    }

    /// Starts the workers of slots whose restart is due.
    func respawnDueSlots() {
        let now = clock.nowNs
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

    private func scheduleRespawn(slot index: Int, failed: Bool) {
        slots[index].consecutiveFailures = failed ? slots[index].consecutiveFailures + 1 : 0
        let failures = slots[index].consecutiveFailures
        let delayMs = Backoff.delayMilliseconds(consecutiveFailures: failures)
        slots[index].respawnAtNs = clock.nowNs + delayMs * 1_000_000
        if delayMs > 0 {
            logger.warning("worker \(index) is crash-looping (\(failures) quick failures); next start in \(delayMs) ms")
        }
    }

    // MARK: - Reaping

    /// Reaps every exited child. A current worker's slot is scheduled for a restart (unless `stopping`);
    /// returns true when a retiring worker went, which may leave a socket group unused.
    @discardableResult
    func reap(stopping: Bool) -> Bool {
        var retireeGone = false
        while let (pid, status) = processes.reapExited() {
            let how = describe(waitStatus: status)
            if let i = slots.firstIndex(where: { $0.worker?.pid == pid }), let worker = slots[i].worker {
                retire(worker)
                slots[i].worker = nil
                if stopping { logger.info("worker \(i) exited (\(how))"); continue }
                let lived = clock.nowNs &- worker.startedNs
                slots[i].failures += 1
                slots[i].lastFailure = "\(how) after \(lived / 1_000_000) ms"
                logger.warning("worker \(i) exited unexpectedly (\(how)) after \(lived / 1_000_000) ms; restarting")
                shared.update { $0.restarts += 1 }
                scheduleRespawn(slot: i, failed: lived < Self.quickWorkerLifeNs)
            } else if let r = retiring.firstIndex(where: { $0.pid == pid }) {
                let worker = retiring.remove(at: r)
                retire(worker)
                logger.info("worker \(worker.slot) of generation \(worker.generation) retired (\(how))")
                retireeGone = true
            }
        }
        return retireeGone
    }

    /// Folds a finished worker's final counters into the master's totals; its segment goes with the
    /// last reference (this, the metrics thread's copy of `live` being done with it).
    /// Whatever it left in its producer queue (a killed or crashed worker) is counted as lost.
    private func retire(_ worker: WorkerProcess) {
        var unsent = MasterShared.Unsent()
        shared.update { state in
            unsent = state.carry(worker.segment)
            state.live.removeAll { $0 === worker.segment }
            state.inventory.removeAll { $0.segment === worker.segment }
        }
        if unsent.messages > 0 {
            logger.error("worker \(worker.slot) (pid \(worker.pid), generation \(worker.generation)) left about \(unsent.messages) message(s) (\(unsent.records) record(s)) undelivered in its Kafka queue; counted in kflow_kafka_lost_in_dead_workers_total")
        }
        exchanges.release(worker.exchange, nowNs: clock.nowNs)
    }

    // MARK: - Killing and stopping

    /// Kills (SIGKILL) every current worker whose heartbeat is older than its timeout.
    func killStalledWorkers() {
        let now = clock.nowNs
        let limit = UInt64(configuration.workerHeartbeatTimeoutMilliseconds) * 1_000_000
        for slot in slots {
            guard let worker = slot.worker, !worker.killedForStall else { continue }
            let last = max(worker.segment.heartbeatNanoseconds, worker.startedNs)
            if now > last, now - last > limit {
                logger.error("worker \(slot.index) (pid \(worker.pid)) missed its heartbeat for \((now - last) / 1_000_000) ms; killing it")
                worker.killedForStall = true
                processes.send(SIGKILL, to: worker.pid)
            }
        }
    }

    /// Asks `workers` to drain and exit (SIGTERM), each with a stop deadline unless it has one.
    func terminate(_ workers: [WorkerProcess]) {
        let deadline = clock.nowNs + stopTimeoutNs
        for w in workers {
            w.stopDeadlineNs = w.stopDeadlineNs ?? deadline
            processes.send(SIGTERM, to: w.pid)
        }
    }

    /// Every worker, current and retiring, asked to stop (shutdown).
    func terminateAll() { terminate(slots.compactMap(\.worker) + retiring) }

    /// Retiring workers not yet asked to stop are asked now (their successors run).
    func terminateRetiring() { terminate(retiring.filter { $0.stopDeadlineNs == nil }) }

    /// Termination escalates: a worker past its stop deadline is killed.
    func enforceStopDeadlines() {
        let now = clock.nowNs
        for w in slots.compactMap(\.worker) + retiring {
            if let deadline = w.stopDeadlineNs, now > deadline, !w.killedAfterDeadline {
                logger.error("worker \(w.slot) (pid \(w.pid)) did not stop in time; killing it")
                w.killedAfterDeadline = true
                processes.send(SIGKILL, to: w.pid)
            }
        }
    }

    // MARK: - Generations (for the reload coordinator)

    /// The current workers keep serving, moved to `retiring` without a deadline: a reload's new
    /// generation replaces them once it runs, or they are taken back.
    func retireCurrent() {
        for slot in slots { if let w = slot.worker { retiring.append(w) } }
    }

    /// Asks the current workers to stop with their deadline and empties their slots.
    func stopCurrent(reason: String) {
        let workers = slots.compactMap(\.worker)
        for w in workers {
            logger.info("stopping worker \(w.slot) of generation \(w.generation) (pid \(w.pid)): \(reason)")
            if !retiring.contains(where: { $0 === w }) { retiring.append(w) }
        }
        terminate(workers)
        for i in slots.indices { slots[i].worker = nil }
    }

    /// Puts `previous` slots back: each worker of them still retiring returns to its slot; one that exited
    /// meanwhile is started again at once (with the reinstated configuration).
    func reinstate(_ previous: [WorkerSlot]) {
        let now = clock.nowNs
        slots = previous.map { old in
            var slot = old
            if let w = old.worker, let r = retiring.firstIndex(where: { $0 === w }) {
                retiring.remove(at: r)
            } else if old.worker != nil {
                slot.worker = nil
                slot.respawnAtNs = now
            }
            return slot
        }
    }

    /// What kept each current worker that is not running from running, for the log and STATUS.
    func describeStarts() -> String {
        slots.filter { $0.worker?.segment.state != .running }.map { slot in
            var text = "worker \(slot.index) "
            if slot.failures > 0 {
                text += "failed \(slot.failures) time(s), last: \(slot.lastFailure ?? "unknown")"
            } else if let w = slot.worker {
                text += "still \(w.segment.state) (pid \(w.pid))"
            } else {
                text += "was never started"
            }
            return text
        }.joined(separator: "; ")
    }
}

/// The restart delay after `consecutiveFailures` quick failures: the first restart at once (well within
/// a second); a crash loop backs off from 250 ms, doubling, up to 30 s.
enum Backoff {
    static let firstDelayMilliseconds: UInt64 = 250
    static let maxDelayMilliseconds: UInt64 = 30_000
    /// Doublings after which the delay is past the maximum anyway (keeps the shift in range).
    static let maxDoublings = 10

    static func delayMilliseconds(consecutiveFailures failures: Int) -> UInt64 {
        guard failures > 1 else { return 0 }
        return min(maxDelayMilliseconds, firstDelayMilliseconds << UInt64(min(failures - 2, maxDoublings)))
    }
}

/// Template exchanges of live workers and of workers gone less than `keepNs`: every new worker imports
/// their snapshots before it starts receiving. The master only hands their descriptors on.
struct TemplateExchangeBook {
    /// Snapshots of workers gone this long are stale: their successors have published their own.
    static let keepNs: UInt64 = 60_000_000_000
    /// The most recent exchanges a new worker gets (its descriptor table stays small).
    static let maxSources = 64

    private var entries: [(exchange: TemplateExchange, releasedAtNs: UInt64?)] = []

    var sources: [Int32] { entries.suffix(Self.maxSources).map(\.exchange.fd) }
    var count: Int { entries.count }

    /// Adds `exchange` for a new worker; a replacement's (its slot's exchange, reused) is live again.
    mutating func add(_ exchange: TemplateExchange) {
        if let i = entries.firstIndex(where: { $0.exchange === exchange }) {
            entries[i].releasedAtNs = nil
        } else {
            entries.append((exchange, nil))
        }
    }

    /// Marks `exchange`'s worker gone at `nowNs`, and drops the exchanges gone longer than `keepNs`.
    mutating func release(_ exchange: TemplateExchange, nowNs: UInt64) {
        if let i = entries.firstIndex(where: { $0.exchange === exchange }) { entries[i].releasedAtNs = nowNs }
        entries.removeAll { entry in
            guard let released = entry.releasedAtNs else { return false }
            return nowNs - released > Self.keepNs
        }
    }
}

// MARK: - Process table

final class WorkerProcess {
    let slot: Int
    let generation: UInt64
    let pid: pid_t
    let segment: WorkerSegment
    let exchange: TemplateExchange
    let startedNs: UInt64
    let groupIDs: [Int]
    var stopDeadlineNs: UInt64?
    var killedForStall = false
    var killedAfterDeadline = false

    init(slot: Int, generation: UInt64, pid: pid_t, segment: WorkerSegment, exchange: TemplateExchange,
         startedNs: UInt64, groupIDs: [Int]) {
        self.slot = slot
        self.generation = generation
        self.pid = pid
        self.segment = segment
        self.exchange = exchange
        self.startedNs = startedNs
        self.groupIDs = groupIDs
    }
}

struct WorkerSlot {
    let index: Int
    var worker: WorkerProcess?
    /// Where the slot's workers publish their templates, for the generation's life (see `spawn`).
    var exchange: TemplateExchange?
    var consecutiveFailures = 0
    var respawnAtNs: UInt64?
    /// Unexpected exits (or failed spawns) of this slot's workers, and how the latest ended: the reason a
    /// reload's new generation did not start.
    var failures = 0
    var lastFailure: String?

    init(index: Int) { self.index = index }
}
