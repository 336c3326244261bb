#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on its own thread for /metrics, / and /healthz. One request per connection,
/// answered and closed; slow clients are cut off by a receive timeout so they cannot stall scraping.
public final class MetricsHTTPServer: @unchecked Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public typealias Handler = @Sendable (_ path: String) -> Response

    private let listener: Int32
    private let handler: Handler
    private var thread = pthread_t()

    /// Binds and listens on host:port (IPv4 or IPv6 literal); the thread starts with `start()`.
    public init(host: String, port: UInt16, handler: @escaping Handler) throws(SystemError) {
        let fd = try SocketBinding.bind(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), settingName: "metrics.host") { fd throws(SystemError) in
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        guard listen(fd, 64) == 0 else {
            let e = SystemError("listen on metrics [\(host)]:\(port)"); close(fd); throw e
        }
        listener = fd
        self.handler = handler
    }

    public func start() {
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { context in
            let server = Unmanaged<MetricsHTTPServer>.fromOpaque(context!).takeRetainedValue()
            server.serve()
            return nil
        }, unmanaged.toOpaque())
    }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384 {
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request.append(contentsOf: chunk[0..<n])
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            if let end = request.firstIndex(of: 10), request[..<end].contains(32) { break }
        }
        let line = request.prefix { $0 != 13 && $0 != 10 }
        let parts = line.split(separator: 32)
        let response: Response
        if parts.count >= 2, parts[0].elementsEqual("GET".utf8) || parts[0].elementsEqual("HEAD".utf8) {
            var path = String(decoding: parts[1], as: UTF8.self)
            if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
            response = handler(path)
        } else {
            response = Response(status: 405, body: "method not allowed\n")
        }
        let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][response.status] ?? "Status"
        let isHead = parts.first.map { $0.elementsEqual("HEAD".utf8) } ?? false
        let body = Array(response.body.utf8)
        let header = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        DescriptorIO.writeAll(client, Array(header.utf8) + (isHead ? [] : body))
    }
}
