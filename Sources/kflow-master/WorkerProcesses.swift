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

/// Starting, signalling and reaping worker processes: what the supervisor asks of the system, behind a
/// protocol so the unit tests drive the master's parts with scripted processes and a clock they move.
protocol WorkerProcesses: AnyObject {
    /// Starts a worker for `launch` and sends it `configuration` through a pipe, whose read end this
    /// fills in as `launch.configuration`. Returns the worker's pid.
    func start(_ launch: WorkerLaunch, configuration: [UInt8]) throws(SystemError) -> pid_t
    func send(_ signal: Int32, to pid: pid_t)
    /// One exited child and its wait status, without waiting; nil when none has exited.
    func reapExited() -> (pid: pid_t, status: Int32)?
}

/// The master's clock (CLOCK_MONOTONIC nanoseconds), a protocol for the same reason.
protocol MonotonicClock: AnyObject {
    var nowNs: UInt64 { get }
}

final class SystemClock: MonotonicClock {
    var nowNs: UInt64 { Clock.monotonicNanoseconds }
}

/// posix_spawn, kill(2) and waitpid(2).
final class PosixWorkerProcesses: WorkerProcesses {
    let executable: String

    init(executable: String) { self.executable = executable }

    func start(_ launch: WorkerLaunch, configuration: [UInt8]) throws(SystemError) -> pid_t {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SystemError("pipe(worker configuration)") }
        // The master spawns from this thread only, so setting close-on-exec right away is race-free.
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        var launch = launch
        launch.configuration = pipeFDs[0]
        let pid: pid_t
        do throws(SystemError) {
            pid = try Spawn.start(executable: executable, arguments: launch.arguments, descriptors: launch.descriptors)
        } catch {
            close(pipeFDs[0]); close(pipeFDs[1])
            throw error
        }
        close(pipeFDs[0])
        DescriptorIO.writeAll(pipeFDs[1], configuration)
        close(pipeFDs[1])
        return pid
    }

    func send(_ signal: Int32, to pid: pid_t) { kill(pid, signal) }

    func reapExited() -> (pid: pid_t, status: Int32)? {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        return pid > 0 ? (pid, status) : nil
    }
}

/// A wait status as the log says it.
func describe(waitStatus status: Int32) -> String {
    if status & 0x7F == 0 { return "exit code \((status >> 8) & 0xFF)" }
    return "killed by signal \(status & 0x7F)"
}
