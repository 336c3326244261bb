#if canImport(Glibc)
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
        var v6 = in6_addr()
        var v4 = in_addr()
        let isV6 = inet_pton(AF_INET6, host, &v6) == 1
        guard isV6 || inet_pton(AF_INET, host, &v4) == 1 else {
            throw SystemError("server.host '\(host)' is not an IPv4 or IPv6 address", code: EINVAL)
        }
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket()") }
        var one: Int32 = 1
        var zero: Int32 = 0
        let intSize = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, intSize) == 0 else {
            let e = SystemError("setsockopt(SO_REUSEPORT)"); Glibc.close(fd); throw e
        }
        if isV6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, intSize) }
        // SO_RCVBUFFORCE exceeds net.core.rmem_max when privileged; otherwise the kernel caps SO_RCVBUF.
        var requested = Int32(clamping: max(receiveBufferBytes, 1))
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &requested, intSize) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &requested, intSize)
        }
        let bound: Int32
        if isV6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = v6
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = v4
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard bound == 0 else {
            let e = SystemError("bind([\(host)]:\(port))"); Glibc.close(fd); throw e
        }
        var effective: Int32 = 0
        var length = intSize
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
