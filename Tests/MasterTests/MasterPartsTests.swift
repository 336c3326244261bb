import FlowModel
import SystemKit
import WireFormat
import KafkaOutput
import Config
import ProcessKit
import MetricsServer
import Testing
@testable import kflow_master

#if canImport(Glibc)
import Glibc
#endif

/// The master's cycle driven pass by pass, with a clock the test moves and processes it scripts.
/// Serialized: a test counts the shared-memory files the master holds.
@Suite(.serialized) struct MasterCycleTests {
// MARK: - Supervisor

    @Test func theFirstRestartIsImmediateThenACrashLoopBacksOffDoublingUpToThirtySeconds() {
        let delays = (0...12).map { Backoff.delayMilliseconds(consecutiveFailures: $0) }
        #expect(delays == [0, 0, 250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000])
    }

    @Test func aWorkerThatKeepsDyingAtStartIsRestartedLaterEachTime() throws {
        let h = try MasterHarness(["server.threads": "1"])
        var waits: [UInt64] = []
        for _ in 0..<4 {
            let pid = try #require(h.currentPIDs.first)
            h.processes.exit(pid, code: 2)
            #expect(h.master.pass())
            var waitedMs: UInt64 = 0
            while h.currentPIDs.first == nil || h.currentPIDs.first == pid {
                h.clock.advance(milliseconds: 50)
                waitedMs += 50
                #expect(h.master.pass())
            }
            waits.append(waitedMs)
        }
        // The first restart in the pass that reaps the exit; then 250 ms, 500 ms, 1 s.
        #expect(waits == [0, 250, 500, 1000])
        #expect(h.shared.read { $0.restarts } == 4)
        #expect(h.supervisor.crashLoopingCount == 1)
        #expect(h.master.health.statusLine(flowsPerSecond: 0).hasSuffix(", 1 worker(s) crash-looping"))
        #expect(h.shared.read { $0.slotsInBackoff } == 1)

        // Once a worker stays up past the quick-failure window, the slot is out of its crash loop.
        h.workersRun()
        h.clock.advance(milliseconds: Supervisor.quickWorkerLifeNs / 1_000_000)
        h.workersBeat()
        #expect(h.master.pass())
        #expect(h.supervisor.crashLoopingCount == 0)
    }

    @Test func aWorkerWhoseHeartbeatStopsIsKilledOnce() throws {
        let h = try MasterHarness(["worker.heartbeat.timeout.ms": "2000"])
        h.workersRun()
        #expect(h.master.pass())
        #expect(h.shared.read { $0.healthy })
        let stalled = h.currentPIDs[0]
        for _ in 0..<21 {
            h.clock.advance(milliseconds: 100)
            h.supervisor.slots[1].worker?.segment.heartbeat(at: h.clock.nowNs)  // the other one keeps beating
            #expect(h.master.pass())
        }
        #expect(h.processes.signals(to: stalled) == [SIGKILL])
        #expect(h.processes.signals(to: h.currentPIDs[1]) == [])
        #expect(!h.shared.read { $0.healthy }, "/healthz says healthy with a stalled worker")
        h.clock.advance(milliseconds: 100)
        #expect(h.master.pass())
        #expect(h.processes.signals(to: stalled) == [SIGKILL], "killed again")
        // Reaped: replaced at once.
        h.processes.kill(stalled, by: SIGKILL)
        #expect(h.master.pass())
        #expect(h.master.pass())
        #expect(h.currentPIDs.count == 2 && !h.currentPIDs.contains(stalled))
    }

    @Test func aStartThatFailsLeavesNoSharedMemoryBehind() throws {
        let h = try MasterHarness(["server.threads": "1"])
        #expect(memfds(named: "kflow-worker-") == 1 && memfds(named: "kflow-templates-") == 1)
        h.processes.failingStarts = 3
        h.processes.exit(h.currentPIDs[0])
        // Starts fail at once, after 250 ms and after 500 ms more; the next is 1 s later.
        for _ in 0..<10 {
            h.clock.advance(milliseconds: 100)
            #expect(h.master.pass())
        }
        #expect(h.supervisor.slots[0].failures == 4 && h.currentPIDs.isEmpty)
        // The dead worker's segment is released; its slot keeps its template exchange for its successor;
        // the segments of the failed starts are gone.
        #expect(memfds(named: "kflow-worker-") == 0)
        #expect(memfds(named: "kflow-templates-") == 1)
        while h.currentPIDs.isEmpty {
            h.clock.advance(milliseconds: 100)
            #expect(h.master.pass())
        }
        // The successor publishes where its predecessor did (and reads it first): no new exchange.
        #expect(memfds(named: "kflow-worker-") == 1 && memfds(named: "kflow-templates-") == 1)
        let launches = h.processes.started.map(\.launch)
        #expect(launches.last?.templateExchange == launches.first?.templateExchange)
        #expect(launches.last?.templateSources == [])
    }

    @Test func eachWorkerGetsItsSocketsAndItsPredecessorsTemplateExchanges() throws {
        let h = try MasterHarness(["server.threads": "2"])
        let first = h.processes.started
        #expect(first.map(\.launch.slot) == [0, 1])
        #expect(first.map(\.launch.sockets.count) == [1, 1])
        // Each worker reads its sibling's exchange for its whole life (a template one learns, the other
        // finds); none of them is a predecessor to import at start.
        #expect(first[0].launch.templateSources == [] && first[1].launch.templateSources == [])
        #expect(first[0].launch.siblings == [first[1].launch.templateExchange])
        #expect(first[1].launch.siblings == [first[0].launch.templateExchange])
        #expect(first[0].configuration.contains("kafka.topic="))
    }

// MARK: - Reload coordinator
    /// Sends `count` datagrams from one source socket to the group's port and returns how many each
    /// socket of the group holds (read back non-blocking): real kernel placement.
    static func datagramsPerSocket(_ h: MasterHarness, count: Int = 200) -> [Int] {
        let sockets = h.master.reloads.groups.current.sockets
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sender) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = h.port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var payload: [UInt8] = [0, 10, 0, 4]
        for _ in 0..<count {
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, &payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        usleep(50_000)
        return sockets.map { s in
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 64)
            while recv(s.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) >= 0 { received += 1 }
            return received
        }
    }

    @Test func aReloadToRoundRobinSpreadsOneSenderOverEveryWorkersSocketAndBackToHashKeepsItOnOne() throws {
        let h = try MasterHarness()
        #expect(Self.datagramsPerSocket(h).filter { $0 > 0 }.count == 1, "hash: one source, one socket")
        try h.reload(["server.balance": "round-robin"])
        #expect(h.master.reloads.groups.current.balance == .roundRobin(workers: 2))
        let spread = Self.datagramsPerSocket(h)
        #expect(spread.count == 2 && spread.reduce(0, +) == 200 && spread.allSatisfy { $0 > 40 }, "round-robin: \(spread)")
        h.workersRun()
        #expect(h.master.pass())
        try h.reload([:])
        #expect(h.master.reloads.groups.current.balance == .hash)
        #expect(Self.datagramsPerSocket(h).filter { $0 > 0 }.count == 1, "back to hash: the program is gone")
    }

    @Test func aReloadStartsANewGenerationAndDrainsTheOldOnceEveryNewWorkerRuns() throws {
        let h = try MasterHarness()
        h.workersRun()
        #expect(h.master.pass())
        let old = h.currentPIDs
        try h.reload(["kafka.topic": "reloaded"])
        #expect(h.notifier.states.last?.hasPrefix("RELOADING=1") == true)
        #expect(h.supervisor.generation == 2)
        let new = h.currentPIDs
        #expect(new.count == 2 && Set(new).isDisjoint(with: old))
        #expect(h.processes.started.suffix(2).allSatisfy { $0.configuration.contains("kafka.topic=reloaded") })
        #expect(h.master.pass())
        #expect(old.allSatisfy { h.processes.signals(to: $0).isEmpty }, "the old generation stopped before the new one ran")

        h.workersRun()
        #expect(h.master.pass())
        #expect(old.allSatisfy { h.processes.signals(to: $0) == [SIGTERM] })
        #expect(h.shared.read { ($0.reloadSuccesses, $0.lastReloadSucceeded) } == (1, true))
        #expect(h.notifier.states.last?.hasPrefix("READY=1") == true)
        #expect(h.master.health.lastReloadText.hasPrefix("ok at"))
    }

    @Test func aGenerationThatNeverRunsIsAbandonedAndTheServingOneKept() throws {
        let h = try MasterHarness()
        h.workersRun()
        #expect(h.master.pass())
        let old = h.currentPIDs
        let socketsBefore = h.master.reloads.groups.current.sockets.count
        try h.reload(["kafka.topic": "never", "server.threads": "3"])
        let new = h.currentPIDs
        #expect(new.count == 3)
        #expect(h.master.reloads.groups.current.sockets.count == 3)
        // The new workers stay `starting` until the deadline.
        var passes = 0
        while h.master.reloads.pending != nil {
            h.clock.advance(milliseconds: 100)
            // Every worker beats its heart (none is killed for a stall); the new ones never run.
            for w in h.supervisor.slots.compactMap(\.worker) + h.supervisor.retiring { w.segment.heartbeat(at: h.clock.nowNs) }
            #expect(h.master.pass())
            passes += 1
        }
        #expect(passes == Int(ReloadCoordinator.deadlineNs / 100_000_000) + 1)
        #expect(h.currentPIDs == old, "the serving workers are not back in their slots")
        #expect(new.allSatisfy { h.processes.signals(to: $0) == [SIGTERM] })
        #expect(old.allSatisfy { h.processes.signals(to: $0).isEmpty })
        #expect(h.supervisor.generation == 1)
        #expect(h.supervisor.configuration.kafkaTopic != "never")
        #expect(h.master.reloads.groups.current.sockets.count == socketsBefore)
        #expect(h.shared.read { ($0.reloadFailures, $0.lastReloadSucceeded) } == (1, false))
        #expect(h.notifier.states.last?.hasPrefix("READY=1\nSTATUS=reload failed") == true)

        // An abandoned generation's number is never reused.
        try h.reload(["kafka.topic": "next"])
        #expect(h.supervisor.generation == 3)
    }

    @Test func theSFlowGroupIsReadBesideTheFlowGroupAndFollowsReloadsAndRollbacks() throws {
        let h = try MasterHarness()
        h.workersRun()
        #expect(h.master.pass())
        #expect(h.master.reloads.groups.current(.sflow) == nil)
        let sflowPort = h.port == 65535 ? h.port - 1 : h.port + 1
        // On: every new worker reads its share of both groups, flows first.
        try h.reload(["sflow.port": String(sflowPort)])
        let sflow = try #require(h.master.reloads.groups.current(.sflow))
        #expect(sflow.port == sflowPort && sflow.sockets.count == 2)
        let flows = h.master.reloads.groups.current
        #expect(h.processes.started.suffix(2).map(\.launch.sockets) == [[flows.sockets[0].fd, sflow.sockets[0].fd], [flows.sockets[1].fd, sflow.sockets[1].fd]])
        h.workersRun()
        #expect(h.master.pass() && h.master.reloads.pending == nil)
        let serving = h.currentPIDs
        // A move to another port whose generation never runs is rolled back to the serving group.
        try h.reload(["sflow.port": String(sflowPort == 65534 ? sflowPort - 2 : sflowPort + 1), "kafka.topic": "never"])
        #expect(h.master.reloads.groups.current(.sflow)?.port != sflowPort)
        while h.master.reloads.pending != nil {
            h.clock.advance(milliseconds: 100)
            for w in h.supervisor.slots.compactMap(\.worker) + h.supervisor.retiring { w.segment.heartbeat(at: h.clock.nowNs) }
            #expect(h.master.pass())
        }
        #expect(h.currentPIDs == serving)
        #expect(h.master.reloads.groups.current(.sflow)?.id == sflow.id && h.master.reloads.groups.current(.sflow)?.sockets.count == 2)
        // The abandoned generation's group closes once its stopping workers are gone.
        for pid in h.supervisor.retiring.map(\.pid) { h.processes.exit(pid, code: 0) }
        #expect(h.master.pass())
        #expect(h.master.reloads.groups.all.map(\.id).sorted() == [flows.id, sflow.id])
        // Off again: new workers read the flow group only; the sFlow group closes when the old ones are gone.
        try h.reload(["sflow.port": "0"])
        #expect(h.processes.started.suffix(2).map(\.launch.sockets.count) == [1, 1])
        h.workersRun()
        #expect(h.master.pass())
        for pid in serving { h.processes.exit(pid, code: 0) }
        #expect(h.master.pass())
        #expect(h.master.reloads.groups.all.map(\.id) == [flows.id])
    }

    @Test func aNewWorkerThatFailsAtEveryStartAbandonsTheReloadBeforeItsDeadline() throws {
        let h = try MasterHarness(["server.threads": "1"])
        h.workersRun()
        #expect(h.master.pass())
        let old = h.currentPIDs
        h.processes.failingStarts = 100
        try h.reload(["kafka.topic": "broken"])
        var outcome: String?
        for _ in 0..<30 where h.master.reloads.pending != nil {
            h.clock.advance(milliseconds: 100)
            #expect(h.master.pass())
            outcome = h.master.health.lastReloadText
        }
        #expect(h.master.reloads.pending == nil)
        #expect(h.currentPIDs == old)
        #expect(outcome?.contains("failed 3 time(s), last: cannot start: posix_spawn(fake)") == true)
    }

    @Test func aConfigurationThatDoesNotLoadChangesNothing() throws {
        let h = try MasterHarness()
        h.workersRun()
        #expect(h.master.pass())
        let old = h.currentPIDs
        try h.reload(["server.threads": "many"])
        #expect(h.currentPIDs == old)
        #expect(h.master.reloads.pending == nil)
        #expect(h.shared.read { $0.reloadFailures } == 1)
        // Not RELOADING then READY: the manager only hears a status.
        #expect(h.notifier.states.last?.hasPrefix("STATUS=reload failed") == true)
    }

// MARK: - Shutdown
    @Test func stoppingWorkersAreAskedThenKilledAfterTheStopTimeout() throws {
        let h = try MasterHarness(["worker.stop.timeout.ms": "12000"])
        h.workersRun()
        #expect(h.master.pass())
        let workers = h.currentPIDs
        h.master.handle(signal: SIGTERM)
        #expect(h.notifier.states.last == "STOPPING=1")
        #expect(workers.allSatisfy { h.processes.signals(to: $0) == [SIGTERM] })
        h.processes.exit(workers[0], code: 0)  // drained in time
        h.clock.advance(milliseconds: 12_000)
        #expect(h.master.pass())
        #expect(h.processes.signals(to: workers[1]) == [SIGTERM], "killed at the deadline, not after it")
        h.clock.advance(milliseconds: 1)
        #expect(h.master.pass())
        #expect(h.processes.signals(to: workers[1]) == [SIGTERM, SIGKILL])
        #expect(h.processes.signals(to: workers[0]) == [SIGTERM])
        h.master.handle(signal: SIGHUP)  // ignored while stopping
        #expect(h.processes.started.count == 2)
        h.processes.kill(workers[1], by: SIGKILL)
        #expect(!h.master.pass(), "the loop goes on with no worker left")
    }
}

/// This process's open memfds whose name starts with `prefix`.
private func memfds(named prefix: String) -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var target = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(name)", &target, 255)
        guard n > 0 else { continue }
        if String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("/memfd:" + prefix) { count += 1 }
    }
    return count
}
