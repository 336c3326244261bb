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

/// Reloads (SIGHUP), after nginx's: the new configuration is loaded completely and its sockets bound
/// before anything changes; then a new generation of workers starts beside the serving one, which
/// drains once every new worker runs. A generation that never runs (its deadline passes, or a worker
/// keeps failing at start) is abandoned and the serving one kept: its configuration, its sockets, its
/// workers (the rollback). The socket groups are kept here: the current one, and older ones while
/// workers still read them.
final class ReloadCoordinator {
    /// How long a reload's new generation has to reach `running` (every new worker running) before it
    /// is abandoned and the old generation keeps serving.
    static let deadlineNs: UInt64 = 10_000_000_000
    /// A new worker that fails this many times in a row at start cannot run: the reload is abandoned
    /// at once rather than at its deadline.
    static let giveUpFailures = 3

    enum Outcome: Equatable {
        case applied(generation: UInt64, workers: Int, tookMs: UInt64)
        case rejected(reason: String)
    }

    /// What served before a reload: it keeps serving if the new generation never runs.
    struct ServingGeneration {
        let configuration: KflowConfiguration
        let generation: UInt64
        let slots: [WorkerSlot]
        let groupID: Int
        let socketCount: Int
        let balance: ReusePortBalance
    }

    struct PendingReload {
        var deadlineNs: UInt64
        var startedNs: UInt64
        var previous: ServingGeneration
    }

    private let supervisor: Supervisor
    private let clock: any MonotonicClock
    private let logger: Logger
    private let shared: MasterShared
    private let onlineCPUs: Int
    private(set) var groups: SocketGroups
    private(set) var pending: PendingReload?
    /// The highest generation number handed out (an abandoned reload's number is never reused).
    private var lastGenerationIssued: UInt64 = 1

    init(supervisor: Supervisor, groups: SocketGroups, clock: any MonotonicClock, logger: Logger,
         shared: MasterShared, onlineCPUs: Int) {
        self.supervisor = supervisor
        self.groups = groups
        self.clock = clock
        self.logger = logger
        self.shared = shared
        self.onlineCPUs = onlineCPUs
        publishSocketInodes()
    }

    /// Generation 1, at start.
    func startFirstGeneration() {
        supervisor.startGeneration(workers: supervisor.configuration.workerCount(onlineCPUs: onlineCPUs))
    }

    /// Starts a generation for `next` (already loaded and valid); returns why it cannot (its sockets),
    /// with nothing changed but an abandoned pending reload rolled back.
    func begin(_ next: KflowConfiguration) -> String? {
        let configuration = supervisor.configuration
        // A reload during a reload abandons the generation still starting; the one serving before the
        // first stays the fallback.
        let previous: ServingGeneration
        if let pending {
            supervisor.stopCurrent(reason: "superseded by another reload")
            previous = pending.previous
        } else {
            previous = ServingGeneration(configuration: configuration, generation: supervisor.generation,
                                         slots: supervisor.slots, groupID: groups.current.id,
                                         socketCount: groups.current.sockets.count, balance: groups.current.balance)
        }
        let workers = next.workerCount(onlineCPUs: onlineCPUs)
        let group: SocketGroups.Group
        do {
            group = try groups.prepare(host: next.serverHost, port: next.serverPort, count: workers,
                                       bufferSize: next.serverBufferSize, balance: next.balance(workers: workers))
        } catch {
            if pending != nil { rollBack(to: previous) }
            return "\(error)"
        }
        if next.metricsPort != configuration.metricsPort || next.metricsHost != configuration.metricsHost {
            logger.warning("metrics.host/metrics.port changes take effect at the next restart")
        }
        publishSocketInodes()
        // The old generation keeps receiving until the new one runs; then it drains and exits. Until
        // then its workers wait in `retiring` (without a stop deadline) and may still be taken back.
        if pending == nil { supervisor.retireCurrent() }
        lastGenerationIssued += 1
        supervisor.configuration = next
        supervisor.generation = lastGenerationIssued
        supervisor.group = group
        supervisor.startGeneration(workers: workers)
        let now = clock.nowNs
        pending = PendingReload(deadlineNs: now + Self.deadlineNs, startedNs: now, previous: previous)
        return nil
    }

    /// On every pass while a reload is pending: completes it once every new worker runs (the old
    /// generation is then asked to drain), abandons it when it cannot run. Nil while undecided.
    func advance() -> Outcome? {
        guard let pending else { return nil }
        let now = clock.nowNs
        guard supervisor.allRunning else {
            let hopeless = supervisor.slots.contains { $0.worker == nil && $0.consecutiveFailures >= Self.giveUpFailures }
            guard hopeless || now > pending.deadlineNs else { return nil }
            let reason = "new workers did not start within \((now - pending.startedNs) / 1_000_000) ms: "
                + supervisor.describeStarts()
            supervisor.stopCurrent(reason: "its reload is abandoned")
            rollBack(to: pending.previous)
            return .rejected(reason: reason)
        }
        supervisor.terminateRetiring()
        self.pending = nil
        return .applied(generation: supervisor.generation, workers: supervisor.slots.count,
                        tookMs: (now - pending.startedNs) / 1_000_000)
    }

    /// Closes the groups no worker reads any more (after a retiring worker exits).
    func closeUnusedGroups() { groups.closeUnused(keeping: supervisor.usedGroupIDs) }

    /// The serving generation back in its slots, with its configuration and sockets.
    private func rollBack(to previous: ServingGeneration) {
        supervisor.configuration = previous.configuration
        supervisor.generation = previous.generation
        groups.reinstate(id: previous.groupID, socketCount: previous.socketCount, balance: previous.balance)
        supervisor.group = groups.current
        supervisor.reinstate(previous.slots)
        // A group the reload bound for a new address goes now unless a stopping new worker still reads it
        // (then when that worker is reaped): left bound, it would share a later group on that address.
        closeUnusedGroups()
        publishSocketInodes()
        pending = nil
    }

    private func publishSocketInodes() {
        let inodes = groups.all.flatMap { g in g.sockets.map(\.inode) }
        shared.update { $0.socketInodes = inodes }
    }
}

/// The master's SO_REUSEPORT groups: the current one, and older ones while workers still drain them.
struct SocketGroups {
    struct Group {
        let id: Int
        let host: String
        let port: UInt16
        var sockets: [UDPSocket]
        /// How the kernel spreads datagrams over the sockets (set on the group, re-set on reload).
        var balance: ReusePortBalance = .hash
    }

    private(set) var all: [Group] = []
    private var nextID = 1

    var current: Group { all[all.count - 1] }

    /// Makes the current group fit host:port with at least `count` sockets: a new group when the
    /// address changes, more sockets when the count grows (never fewer: queued packets are kept); then
    /// sets its `balance` (round-robin over `count` workers, or the kernel's hash).
    @discardableResult
    mutating func prepare(host: String, port: UInt16, count: Int, bufferSize: Int,
                          balance: ReusePortBalance = .hash) throws(SystemError) -> Group {
        if all.isEmpty || current.host != host || current.port != port {
            var fresh = Group(id: nextID, host: host, port: port, sockets: [])
            do throws(SystemError) {
                for _ in 0..<count {
                    fresh.sockets.append(try UDPSocket.bind(host: host, port: port, receiveBufferBytes: bufferSize))
                }
                try Self.set(balance, on: &fresh)
            } catch {
                fresh.sockets.forEach { $0.close() }
                throw error
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
        try Self.set(balance, on: &group)
        all[all.count - 1] = group
        return group
    }

    /// One socket sets the program of its whole SO_REUSEPORT group (sockets bound later join it).
    private static func set(_ balance: ReusePortBalance, on group: inout Group) throws(SystemError) {
        guard let first = group.sockets.first, balance != group.balance else { return }
        try balance.apply(toGroupOf: first.fd)
        group.balance = balance
    }

    /// Makes group `id` current again with its first `socketCount` sockets, after a reload that is
    /// abandoned: sockets the reload added are closed here (their kernel queue goes with the last copy,
    /// held by a stopping new worker), or they would take a share of the traffic nobody reads.
    mutating func reinstate(id: Int, socketCount: Int, balance: ReusePortBalance) {
        guard let index = all.firstIndex(where: { $0.id == id }) else { return }
        var group = all.remove(at: index)
        if group.sockets.count > socketCount {
            group.sockets[socketCount...].forEach { $0.close() }
            group.sockets.removeLast(group.sockets.count - socketCount)
        }
        // The abandoned reload may have changed the group's program: the serving one's goes back.
        if balance != group.balance, let first = group.sockets.first, (try? balance.apply(toGroupOf: first.fd)) != nil {
            group.balance = balance
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
