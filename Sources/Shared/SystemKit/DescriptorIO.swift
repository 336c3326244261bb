#if canImport(Glibc)
import Glibc
#endif

/// Whole-buffer reads and writes on a descriptor, retrying on EINTR and short transfers. Not for the
/// packet path: pipes, procfs files, log lines and HTTP responses.
public enum DescriptorIO {
    /// Writes all of `bytes`; false when the descriptor refused before the end. Through `send`, so a
    /// socket (stderr under systemd is one) whose peer went away gives EPIPE here, never SIGPIPE.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return true }
            var offset = 0
            while offset < raw.count {
                let n = send(fd, base + offset, raw.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// One write of up to `count` bytes, retried on EINTR: send(2) with MSG_NOSIGNAL on a socket (a peer
    /// that reset the connection is EPIPE/ECONNRESET in errno, not a SIGPIPE that ends the process), plain
    /// write(2) on anything else. Returns what write(2) returns.
    public static func send(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Int {
        while true {
            var n = Glibc.send(fd, base, count, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == ENOTSOCK { n = write(fd, base, count) }
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// Everything until end of file.
    public static func readToEnd(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// A whole (small) file as text; procfs files report size 0, so it reads until end of file.
    public static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return String(decoding: readToEnd(fd), as: UTF8.self)
    }
}

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
