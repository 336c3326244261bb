import SystemKit
import Config
import CKflowShims
#if canImport(Glibc)
import Glibc
#endif

/// How the kernel spreads datagrams over the workers' SO_REUSEPORT group (`server.balance`).
public enum ReusePortBalance: Equatable, Sendable {
    /// The kernel's hash of source and destination address and port: one exporter session, one worker.
    case hash
    /// Every datagram to one of the first `workers` sockets at random (a classic BPF program on the
    /// group): one busy exporter uses every worker. Worker i reads socket i, so each gets 1/workers.
    case roundRobin(workers: Int)

    /// Sets the group `fd` belongs to: attaches the program, or removes one a previous setting attached.
    public func apply(toGroupOf fd: Int32) throws(SystemError) {
        switch self {
        case .hash:
            let result = kflow_reuseport_unspread(fd)
            guard result == 0 else { throw SystemError("setsockopt(SO_DETACH_REUSEPORT_BPF)", code: -result) }
        case .roundRobin(let workers):
            let result = kflow_reuseport_spread(fd, UInt32(clamping: max(workers, 1)))
            guard result == 0 else {
                throw SystemError("server.balance=round-robin: setsockopt(SO_ATTACH_REUSEPORT_CBPF)", code: -result)
            }
        }
    }
}

extension KflowConfiguration {
    /// `server.balance` for a generation of `workers` workers.
    public func balance(workers: Int) -> ReusePortBalance {
        serverBalance == "round-robin" ? .roundRobin(workers: workers) : .hash
    }
}
