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
