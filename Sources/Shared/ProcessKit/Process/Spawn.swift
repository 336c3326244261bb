import Config
import SystemKit

#if canImport(Glibc)
import Glibc
#endif

/// Starts a child with spawn-and-exec (never fork-only: librdkafka and the metrics thread are not
/// fork-safe). `descriptors[i]` becomes fd `3 + i` in the child; nothing else is inherited, signal
/// mask and dispositions are reset.
public enum Spawn {
    public static func start(executable: String, arguments: [String], descriptors: [Int32]) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Two steps through a high range so a source that equals another's target is never clobbered.
        let staging: Int32 = 512
        for (i, fd) in descriptors.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd, staging + Int32(i))
        }
        for i in descriptors.indices {
            posix_spawn_file_actions_adddup2(&actions, staging + Int32(i), 3 + Int32(i))
            posix_spawn_file_actions_addclose(&actions, staging + Int32(i))
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = childEnvironment().map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SystemError("posix_spawn(\(executable))", code: rc) }
        return pid
    }

    /// This process's environment without the `KFLOW_*` variables: they are settings (and may carry
    /// secrets such as KFLOW_KAFKA_PROPS_SASL_PASSWORD), which a worker gets through its configuration
    /// pipe only, so they never sit in a worker's /proc/PID/environ or reach what a worker might run.
    static func childEnvironment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if !text.hasPrefix(ConfigurationSources.environmentPrefix) { entries.append(text) }
            cursor += 1
        }
        return entries
    }

    /// The directory holding this process's executable (from /proc/self/exe).
    public static var ownExecutableDirectory: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}
