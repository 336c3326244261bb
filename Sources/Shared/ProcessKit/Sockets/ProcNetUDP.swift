#if canImport(Glibc)
import SystemKit
import Glibc
#endif

/// KFlow's `server_packet_drops` and `server_receive_queue`: the kernel's per-socket drop counter and
/// receive-queue length from /proc/net/udp and /proc/net/udp6, found by socket inode.
public struct UDPSocketKernelStats: Sendable, Equatable {
    public var drops: UInt64
    public var receiveQueueBytes: UInt64
}

public enum ProcNetUDP {
    /// Stats for the sockets with these inodes (absent ones are missing from the result).
    public static func read(inodes: Set<UInt64>) -> [UInt64: UDPSocketKernelStats] {
        var result: [UInt64: UDPSocketKernelStats] = [:]
        for path in ["/proc/net/udp", "/proc/net/udp6"] {
            guard let text = DescriptorIO.readFile(path) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let columns = line.split(separator: " ", omittingEmptySubsequences: true)
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                guard columns.count >= 13, let inode = UInt64(columns[9]), inodes.contains(inode) else { continue }
                let queues = columns[4].split(separator: ":")
                let rx = queues.count == 2 ? UInt64(queues[1], radix: 16) ?? 0 : 0
                result[inode] = UDPSocketKernelStats(drops: UInt64(columns[12]) ?? 0, receiveQueueBytes: rx)
            }
        }
        return result
    }
}
