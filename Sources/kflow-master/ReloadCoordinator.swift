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
        let groups: SocketGroups.Saved
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
                                         slots: supervisor.slots, groups: groups.saved)
        }
        let workers = next.workerCount(onlineCPUs: onlineCPUs)
        let serving: [SocketGroups.Group]
        do {
            serving = try groups.prepare(for: next, count: workers)
        } catch {
            if pending != nil { rollBack(to: previous) } else { closeUnusedGroups() }
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
        supervisor.groups = serving
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
        groups.reinstate(previous.groups)
        supervisor.groups = groups.serving
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

/// The master's SO_REUSEPORT groups: per listener (flows on server.port, sFlow on sflow.port) the current
/// one, and older ones while workers still drain them.
struct SocketGroups {
    enum Listener: CaseIterable { case flows, sflow }

    struct Group {
        let id: Int
        let listener: Listener
        let host: String
        let port: UInt16
        var sockets: [UDPSocket]
        /// How the kernel spreads datagrams over the sockets (set on the group, re-set on reload).
        var balance: ReusePortBalance = .hash
    }

    /// Which group each listener had, how many of its sockets and its balance: what a rollback restores.
    typealias Saved = [Listener: (id: Int, socketCount: Int, balance: ReusePortBalance)]

    private(set) var all: [Group] = []
    private var currentIDs: [Listener: Int] = [:]
    private var nextID = 1

    /// The current group of `listener`, nil when it is off (sflow.port 0) or none was prepared.
    func current(_ listener: Listener) -> Group? {
        currentIDs[listener].flatMap { id in all.first { $0.id == id } }
    }

    /// The flows group (there is always one once the master has bound its sockets).
    var current: Group {
        guard let group = current(.flows) else { preconditionFailure("no flow socket group prepared") }
        return group
    }

    /// The current groups, flows first: what new workers read.
    var serving: [Group] { Listener.allCases.compactMap { current($0) } }

    var saved: Saved {
        var saved: Saved = [:]
        for group in serving { saved[group.listener] = (group.id, group.sockets.count, group.balance) }
        return saved
    }

    /// Makes the current groups fit `configuration` with `count` sockets each: the flows group on
    /// server.host:server.port and, when sflow.port names another port, the sFlow group there; none for
    /// sFlow otherwise (an old one closes once unused). On a bind failure what this call changed is undone.
    @discardableResult
    mutating func prepare(for configuration: KflowConfiguration, count: Int) throws(SystemError) -> [Group] {
        let before = saved
        let balance = configuration.balance(workers: count)
        do {
            try prepare(.flows, host: configuration.serverHost, port: configuration.serverPort, count: count,
                        bufferSize: configuration.serverBufferSize, balance: balance)
            if let port = configuration.sflowListenerPort {
                try prepare(.sflow, host: configuration.serverHost, port: port, count: count,
                            bufferSize: configuration.serverBufferSize, balance: balance)
            } else {
                currentIDs[.sflow] = nil
            }
        } catch {
            reinstate(before)
            throw error
        }
        return serving
    }

    /// Makes the current group of `listener` fit host:port with at least `count` sockets: a new group
    /// when the address changes, more sockets when the count grows (never fewer: queued packets are kept);
    /// then sets its `balance` (round-robin over `count` workers, or the kernel's hash).
    @discardableResult
    mutating func prepare(_ listener: Listener = .flows, host: String, port: UInt16, count: Int,
                          bufferSize: Int, balance: ReusePortBalance = .hash) throws(SystemError) -> Group {
        guard var group = current(listener), group.host == host, group.port == port else {
            var fresh = Group(id: nextID, listener: listener, host: host, port: port, sockets: [])
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
            currentIDs[listener] = fresh.id
            return fresh
        }
        for s in group.sockets { s.setReceiveBuffer(bytes: bufferSize) }
        while group.sockets.count < count {
            group.sockets.append(try UDPSocket.bind(host: host, port: port, receiveBufferBytes: bufferSize))
        }
        try Self.set(balance, on: &group)
        replace(group)
        return group
    }

    /// One socket sets the program of its whole SO_REUSEPORT group (sockets bound later join it).
    private static func set(_ balance: ReusePortBalance, on group: inout Group) throws(SystemError) {
        guard let first = group.sockets.first, balance != group.balance else { return }
        try balance.apply(toGroupOf: first.fd)
        group.balance = balance
    }

    private mutating func replace(_ group: Group) {
        if let index = all.firstIndex(where: { $0.id == group.id }) { all[index] = group }
    }

    /// Makes the groups of `saved` current again with their socket counts, after a reload that is
    /// abandoned (a listener absent from it is off again): sockets the reload added are closed here
    /// (their kernel queue goes with the last copy, held by a stopping new worker), or they would take a
    /// share of the traffic nobody reads. Groups it made current and nobody uses close in `closeUnused`.
    mutating func reinstate(_ saved: Saved) {
        for listener in Listener.allCases {
            guard let (id, socketCount, balance) = saved[listener],
                  var group = all.first(where: { $0.id == id }) else {
                currentIDs[listener] = nil
                continue
            }
            if group.sockets.count > socketCount {
                group.sockets[socketCount...].forEach { $0.close() }
                group.sockets.removeLast(group.sockets.count - socketCount)
            }
            // The abandoned reload may have changed the group's program: the serving one's goes back.
            if balance != group.balance, let first = group.sockets.first, (try? balance.apply(toGroupOf: first.fd)) != nil {
                group.balance = balance
            }
            replace(group)
            currentIDs[listener] = id
        }
    }

    /// Closes the master's copies of groups no worker uses any more (never a current one).
    mutating func closeUnused(keeping used: Set<Int>) {
        let current = Set(currentIDs.values)
        all.removeAll { g in
            guard !current.contains(g.id), !used.contains(g.id) else { return false }
            g.sockets.forEach { $0.close() }
            return true
        }
    }
}
