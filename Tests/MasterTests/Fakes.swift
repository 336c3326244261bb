import Foundation
import Logging
import FlowModel
import SystemKit
import WireFormat
import KafkaOutput
import Config
import ConfigLayers
import ProcessKit
import MetricsServer
@testable import kflow_master

#if canImport(Glibc)
import Glibc
#endif

/// A clock the test moves.
final class FakeClock: MonotonicClock {
    var nowNs: UInt64 = 1_000_000_000_000
    func advance(milliseconds: UInt64) { nowNs += milliseconds * 1_000_000 }
}

/// Processes that exist only in this table: starts are recorded (or fail on request), signals are
/// recorded, exits happen when the test scripts them.
final class FakeProcesses: WorkerProcesses {
    struct Started { let pid: pid_t; let launch: WorkerLaunch; let configuration: String }
    private(set) var started: [Started] = []
    private(set) var signals: [(signal: Int32, pid: pid_t)] = []
    private var exits: [(pid: pid_t, status: Int32)] = []
    private var nextPID: pid_t = 1000
    /// The next this many starts fail as posix_spawn would.
    var failingStarts = 0

    func start(_ launch: WorkerLaunch, configuration: [UInt8]) throws(SystemError) -> pid_t {
        if failingStarts > 0 {
            failingStarts -= 1
            throw SystemError("posix_spawn(fake)", code: ENOEXEC)
        }
        nextPID += 1
        started.append(Started(pid: nextPID, launch: launch, configuration: String(decoding: configuration, as: UTF8.self)))
        return nextPID
    }

    func send(_ signal: Int32, to pid: pid_t) { signals.append((signal, pid)) }

    func reapExited() -> (pid: pid_t, status: Int32)? { exits.isEmpty ? nil : exits.removeFirst() }

    /// Scripts `pid`'s exit with `code` (seen at the next reap).
    func exit(_ pid: pid_t, code: Int32 = 1) { exits.append((pid, (code & 0xFF) << 8)) }
    /// Scripts `pid`'s death by `signal`.
    func kill(_ pid: pid_t, by signal: Int32) { exits.append((pid, signal)) }

    func signals(to pid: pid_t) -> [Int32] { signals.filter { $0.pid == pid }.map(\.signal) }
}

/// What the master told its service manager.
final class FakeNotifier: ServiceNotifier {
    var watchdogMicroseconds: UInt64?
    private(set) var states: [String] = []
    func notify(_ state: String) { states.append(state) }
}

/// The master's parts wired as the real master wires them, over fakes, with real sockets on 127.0.0.1
/// and real shared-memory segments (a test plays a worker by writing its segment). SIGHUP reloads from
/// `settings` (the test changes them).
final class MasterHarness {
    let clock = FakeClock()
    let processes = FakeProcesses()
    let notifier = FakeNotifier()
    let shared = MasterShared()
    let port: UInt16
    let master: Master
    var supervisor: Supervisor { master.supervisor }

    /// The configuration file the master reads (again on SIGHUP).
    let path: String

    init(_ settings: [String: String] = [:]) throws {
        port = UInt16.random(in: 40_000...60_000)
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kflow-master-test-\(UUID().uuidString).properties").path
        try Self.write(Self.baseSettings(port: port).merging(settings) { $1 }, to: path)
        let sources = ConfigurationSources(file: .required(path: path, namedBy: .commandLine(argument: "--config")),
                                           environment: [:], commandLine: [])
        let configuration = try sources.load()
        var groups = SocketGroups()
        try groups.prepare(for: configuration, count: configuration.workerCount(onlineCPUs: 1))
        master = Master(configuration: configuration, groups: groups, sources: sources,
                        logger: Logger(label: "master-test", factory: { _ in SwiftLogNoOpLogHandler() }),
                        processes: processes, clock: clock, notifier: notifier, onlineCPUs: 1, shared: shared)
        master.reloads.startFirstGeneration()
    }

    deinit { unlink(path) }

    static func baseSettings(port: UInt16) -> [String: String] {
        ["server.host": "127.0.0.1", "server.port": String(port), "server.threads": "2", "sflow.port": "0"]
    }

    static func write(_ settings: [String: String], to path: String) throws {
        let text = settings.map { "\($0.key)=\($0.value)\n" }.joined()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// SIGHUP after the configuration file was rewritten with `settings` (over the base settings).
    func reload(_ settings: [String: String]) throws {
        try Self.write(Self.baseSettings(port: port).merging(settings) { $1 }, to: path)
        master.handle(signal: SIGHUP)
    }

    var currentPIDs: [pid_t] { supervisor.slots.compactMap { $0.worker?.pid } }

    /// Plays every current worker reaching its loop: state running, heartbeat now.
    func workersRun() {
        for slot in supervisor.slots {
            guard let w = slot.worker else { continue }
            w.segment.setState(.running)
            w.segment.heartbeat(at: clock.nowNs)
        }
    }

    /// Plays every current worker's loop going round: heartbeat now.
    func workersBeat() {
        for slot in supervisor.slots { slot.worker?.segment.heartbeat(at: clock.nowNs) }
    }
}
