import SystemKit
#if canImport(Glibc)
import Glibc
#endif

/// A listening address given as an IPv4 or IPv6 literal, bound on a new socket: the one place the
/// UDP receive sockets and the metrics listener turn `host`/`port` settings into a bound descriptor.
public enum SocketBinding {
    /// A new socket of `type` bound to host:port ("::" binds dual-stack); `configure` runs before bind.
    public static func bind(host: String, port: UInt16, type: Int32, settingName: String,
                            configure: (Int32) throws(SystemError) -> Void = { _ throws(SystemError) in }) throws(SystemError) -> Int32 {
        var v6 = in6_addr()
        var v4 = in_addr()
        let isV6 = inet_pton(AF_INET6, host, &v6) == 1
        guard isV6 || inet_pton(AF_INET, host, &v4) == 1 else {
            throw SystemError("\(settingName) '\(host)' is not an IPv4 or IPv6 address", code: EINVAL)
        }
        let fd = socket(isV6 ? AF_INET6 : AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket()") }
        do {
            try configure(fd)
        } catch {
            close(fd)
            throw error
        }
        let bound: Int32
        if isV6 {
            var zero: Int32 = 0
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = v6
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = v4
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0 else {
            let e = SystemError("bind([\(host)]:\(port))")
            close(fd)
            throw e
        }
        return fd
    }
}
