import Foundation
import Testing
@testable import ProcessKit

#if canImport(Glibc)
import Glibc
#endif

/// A Tansu broker for one test, started with scripts/broker.sh on a port of its own and killed by `stop()`.
/// The script is the project's one Tansu launcher (the Python harness in Tests/e2e/support runs it too);
/// this handle only keeps the PID a Swift test needs, and reads topics with the harness's reader.
final class TestBroker {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = "/opt/kflow-deps/venv/bin/python"

    let port: Int
    private(set) var pid: pid_t?

    init(port: Int) { self.port = port }

    var bootstrap: String { "127.0.0.1:\(port)" }

    /// Starts the broker and waits (at most ~10 s, bounded by the script and `timeout`) until it listens.
    func start() throws {
        let log = "/tmp/kflow-test-tansu-\(port).log"
        let output = try run("/usr/bin/timeout", ["20", Self.repository.appendingPathComponent("scripts/broker.sh").path, String(port), log])
        guard let pid = pid_t(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("broker.sh printed no PID: \(output); see \(log)")
        }
        self.pid = pid
    }

    /// Kills the broker and waits (at most 5 s) until it is gone.
    func stop() {
        guard let pid else { return }
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        self.pid = nil
    }

    /// Freezes the broker (SIGSTOP): connections stay open and requests go unanswered, an outage that
    /// keeps its topics (a restarted memory-only Tansu loses them). `resume()` (SIGCONT) ends it.
    func pause() { if let pid { kill(pid, SIGSTOP) } }
    func resume() { if let pid { kill(pid, SIGCONT) } }

    /// True when nothing accepts connections on the port (so a test's "broker down" is real).
    static func nothingListens(on port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } != 0
    }

    /// Reads every message of `topic` from offset 0 of each partition with the project's topic reader
    /// (Tests/e2e/support/kafka.py, shared with the end-to-end tests and the benchmark: assign(), not a
    /// consumer group, since Tansu's groups can hang), until `expected` messages arrived plus a second to
    /// catch extras, or `timeoutSeconds` passed. Returns the payloads.
    func consume(topic: String, expected: Int, timeoutSeconds: Int = 30) throws -> [[UInt8]] {
        let harness = Self.repository.appendingPathComponent("Tests/e2e").path
        let output = try run("/usr/bin/timeout", [String(timeoutSeconds + 15), "/usr/bin/env", "PYTHONPATH=\(harness)", Self.python,
                                                  "-m", "support.kafka", bootstrap, topic, String(expected), String(timeoutSeconds)])
        guard let hexes = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String] else {
            throw TestFailure("consumer printed no JSON list: \(output)")
        }
        return hexes.map { hex in
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
                index = next
            }
            return bytes
        }
    }

    /// Runs a command to completion with its standard output in a file (not a pipe: a background child
    /// such as the broker must not hold our read open), via the project's posix_spawn helper.
    /// Every caller bounds the command with timeout(1), so the wait is bounded.
    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        let outputPath = "/tmp/kflow-test-output-\(getpid())-\(port)-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(outputPath) }
        let pid = try Spawn.start(executable: "/bin/sh",
                                  arguments: ["-c", #"out=$1; shift; exec "$@" >"$out""#, "sh", outputPath, executable] + arguments,
                                  descriptors: [])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7F == 0, exitCode = (status >> 8) & 0xFF
        guard exited && exitCode == 0 else {
            throw TestFailure("\(executable) \(arguments.prefix(2)) ended with status \(status): \(output)")
        }
        return output
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Monotonic seconds, for bounding waits and timing calls.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
