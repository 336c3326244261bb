#if canImport(Glibc)
import FlowModel
import SystemKit
import Glibc
#endif

/// A bound UDP socket in the collector's SO_REUSEPORT group. The master owns it for its whole life;
/// workers inherit the descriptor.
public struct UDPSocket: Sendable {
    public let fd: Int32
    /// The kernel's receive buffer size after our request (Linux reports double the requested value).
    public let receiveBufferBytes: Int
    /// The socket's inode, which /proc/net/udp{,6} lists next to its drop counter and queue length.
    public let inode: UInt64

    /// Binds `host:port` (an IPv4 or IPv6 literal; "::" is dual-stack) with SO_REUSEPORT.
    public static func bind(host: String, port: UInt16, receiveBufferBytes: Int) throws(SystemError) -> UDPSocket {
        let fd = try SocketBinding.bind(host: host, port: port, type: Int32(SOCK_DGRAM.rawValue), settingName: "server.host") { fd throws(SystemError) in
            var one: Int32 = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw SystemError("setsockopt(SO_REUSEPORT)")
            }
        }
        let socket = UDPSocket(fd: fd, receiveBufferBytes: 0, inode: 0)
        socket.setReceiveBuffer(bytes: receiveBufferBytes)
        var effective: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &length)
        var status = stat()
        _ = fstat(fd, &status)
        return UDPSocket(fd: fd, receiveBufferBytes: Int(effective), inode: UInt64(status.st_ino))
    }

    /// Applies a new server.buffer.size on reload (same privilege rules as at bind time).
    public func setReceiveBuffer(bytes: Int) {
        var requested = Int32(clamping: max(bytes, 1))
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &requested, size) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &requested, size)
        }
    }

    public func close() { _ = Glibc.close(fd) }
}

extension IPAddress {
    /// The address and port of a received datagram's source; IPv4-mapped IPv6 sources become IPv4.
    public static func fromSocketAddress(_ storage: UnsafePointer<sockaddr_storage>) -> (IPAddress, UInt16) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            return UnsafeRawPointer(storage).withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                (IPAddress(v4: UInt32(bigEndian: sin.pointee.sin_addr.s_addr)), UInt16(bigEndian: sin.pointee.sin_port))
            }
        case AF_INET6:
            return UnsafeRawPointer(storage).withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                let (high, low) = withUnsafeBytes(of: sin6.pointee.sin6_addr) { raw in
                    (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)),
                     UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                }
                return (IPAddress(high: high, low: low, family: .v6).unmapped, UInt16(bigEndian: sin6.pointee.sin6_port))
            }
        default:
            return (.none, 0)
        }
    }
}
