import SystemKit
import ProcessKit
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server for /metrics, / and /healthz on one thread of its own: one request per
/// connection, answered and closed. It is reachable by anyone who can reach `metrics.host`, so it assumes
/// hostile clients: many connections are served at once by one poll(2) loop over non-blocking sockets,
/// each connection has a whole-request deadline, requests and connections are bounded, and no client
/// can make it block, raise SIGPIPE or stop accepting. Every connection ends with one counted `Outcome`.
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

    /// The bounds a client cannot exceed (docs/security/metrics.md).
    public struct Limits: Sendable {
        /// From accept to the last byte of the response; a connection still open then is closed.
        public var deadlineMilliseconds: Int = 5000
        /// Request line plus headers; beyond it the request is answered 431 and closed.
        public var maxRequestBytes: Int = 8192
        /// Connections open at once; one accepted beyond it is closed at once.
        public var maxConnections: Int = 64
        public init() {}
    }

    /// How a connection (or an attempt to accept one) ended.
    public enum Outcome: Int, CaseIterable, Sendable {
        /// A complete request was answered in full (whatever the status).
        case served
        /// The request grew past `maxRequestBytes`: answered 431 (or closed if that could not be sent).
        case tooLarge
        /// The deadline passed before the request was read or the response written.
        case timedOut
        /// The client closed or reset the connection before its answer was written.
        case aborted
        /// Accepted while `maxConnections` were open, all being answered, and closed at once.
        case overCapacity
        /// Closed unanswered to make room for a new connection while `maxConnections` were open: the
        /// oldest of those still sending their request.
        case evicted
        /// accept(2) failed for a reason other than a client that went away (EMFILE, ENFILE, ENOBUFS...).
        case acceptFailed

        public var label: String {
            switch self {
            case .served: "served"
            case .tooLarge: "too_large"
            case .timedOut: "timeout"
            case .aborted: "aborted"
            case .overCapacity: "over_capacity"
            case .acceptFailed: "accept_failed"
            case .evicted: "evicted"
            }
        }
    }

    public typealias Handler = @Sendable (_ path: String) -> Response
    public typealias Observer = @Sendable (Outcome) -> Void

    private struct Connection {
        let fd: Int32
        let deadlineNs: UInt64
        var request: [UInt8] = []
        /// Set once the request is complete (or too large): what is left to send and the outcome it ends in.
        var response: [UInt8]? = nil
        var sent = 0
        var outcome = Outcome.served
    }

    private let listener: Int32
    private let limits: Limits
    private let logger: Logger
    private let handler: Handler
    private let observe: Observer
    private var thread = pthread_t()
    private var connections: [Connection] = []
    private var chunk = [UInt8](repeating: 0, count: 4096)
    /// accept(2) is not retried before this time after it failed (a full descriptor table would fail again).
    private var acceptPausedUntilNs: UInt64 = 0
    private var lastAcceptLogNs: UInt64 = 0
    private var acceptFailuresNotLogged = 0

    /// Binds and listens on host:port (IPv4 or IPv6 literal); the thread starts with `start()`.
    public init(host: String, port: UInt16, limits: Limits = .init(), logger: Logger,
                handler: @escaping Handler, observe: @escaping Observer = { _ in }) throws(SystemError) {
        let fd = try SocketBinding.bind(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), settingName: "metrics.host") { fd throws(SystemError) in
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        guard listen(fd, Int32(limits.maxConnections)) == 0, fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 else {
            let e = SystemError("listen on metrics [\(host)]:\(port)"); close(fd); throw e
        }
        listener = fd
        self.limits = limits
        self.logger = logger
        self.handler = handler
        self.observe = observe
        connections.reserveCapacity(limits.maxConnections)
    }

    public func start() {
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { context in
            let server = Unmanaged<MetricsHTTPServer>.fromOpaque(context!).takeRetainedValue()
            server.serve()
            return nil
        }, unmanaged.toOpaque())
    }

    // MARK: - The loop

    private func serve() {
        var fds: [pollfd] = []
        while true {
            let now = Clock.monotonicNanoseconds
            closeExpired(now: now)
            let accepting = now >= acceptPausedUntilNs
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: accepting ? listener : -1, events: Int16(POLLIN), revents: 0))
            var wakeNs = accepting ? now + 1_000_000_000 : acceptPausedUntilNs
            for c in connections {
                fds.append(pollfd(fd: c.fd, events: Int16(c.response == nil ? POLLIN : POLLOUT), revents: 0))
                wakeNs = min(wakeNs, c.deadlineNs)
            }
            let timeout = Int32((wakeNs - min(wakeNs, now)) / 1_000_000) + 1
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready <= 0 { continue }  // timeout (deadlines are checked above) or EINTR
            // Connections first (indices match fds[1...]); new ones are appended after.
            var index = connections.count - 1
            while index >= 0 {
                if fds[index + 1].revents != 0 { service(at: index) }
                index -= 1
            }
            if fds[0].revents != 0 { acceptPending() }
        }
    }

    private func acceptPending() {
        // A bounded batch per turn, so a flood of connects cannot starve the open connections.
        for _ in 0..<limits.maxConnections {
            // accept4 is not visible to Swift without _GNU_SOURCE, and importing the C shims here upsets
            // the Glibc socket constants elsewhere in this module: accept, then set the flags.
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO, EPERM: continue  // a client that went away or was refused
                default:
                    acceptFailed(errno: errno)
                    return
                }
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if connections.count >= limits.maxConnections {
                // Full: the oldest connection still sending its request (the slowest client, nearest its
                // deadline) makes room, so slow clients cannot lock a scraper out; if every connection is
                // being answered, the new one is closed instead.
                guard let oldest = connections.indices.filter({ connections[$0].response == nil })
                    .min(by: { connections[$0].deadlineNs < connections[$1].deadlineNs }) else {
                    close(fd)
                    observe(.overCapacity)
                    continue
                }
                finish(at: oldest, .evicted)
            }
            let deadline = Clock.monotonicNanoseconds + UInt64(limits.deadlineMilliseconds) * 1_000_000
            connections.append(Connection(fd: fd, deadlineNs: deadline))
        }
    }

    /// Out of descriptors or memory: keep serving the open connections, retry accepting in 100 ms, log at
    /// most every 10 s (with how many failures went unlogged).
    private func acceptFailed(errno code: Int32) {
        observe(.acceptFailed)
        let now = Clock.monotonicNanoseconds
        acceptPausedUntilNs = now + 100_000_000
        if now - lastAcceptLogNs >= 10_000_000_000 || lastAcceptLogNs == 0 {
            let more = acceptFailuresNotLogged > 0 ? " (and \(acceptFailuresNotLogged) more since the last report)" : ""
            logger.warning("metrics: accept failed: \(String(cString: strerror(code)))\(more); retrying in 100 ms")
            lastAcceptLogNs = now
            acceptFailuresNotLogged = 0
        } else {
            acceptFailuresNotLogged += 1
        }
    }

    private func closeExpired(now: UInt64) {
        var index = connections.count - 1
        while index >= 0 {
            if now >= connections[index].deadlineNs { finish(at: index, .timedOut) }
            index -= 1
        }
    }

    private func finish(at index: Int, _ outcome: Outcome) {
        close(connections[index].fd)
        connections.remove(at: index)
        observe(outcome)
    }

    /// Reads what the client sent (answering once the request is complete), or writes what it can of the
    /// answer; never waits.
    private func service(at index: Int) {
        if connections[index].response == nil {
            switch read(at: index) {
            case .pending: return
            case .closed: finish(at: index, .aborted); return
            case .complete: answer(at: index)
            case .tooLarge: reject(at: index)
            }
        }
        guard let response = connections[index].response else { return }
        var sent = connections[index].sent
        let fd = connections[index].fd
        let finished = response.withUnsafeBytes { raw -> Bool? in
            guard let base = raw.baseAddress else { return true }
            while sent < raw.count {
                let n = DescriptorIO.send(fd, base + sent, raw.count - sent)
                if n > 0 { sent += n; continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? nil : false
            }
            return true
        }
        connections[index].sent = sent
        switch finished {
        case true?: finish(at: index, connections[index].outcome)
        case false?: finish(at: index, .aborted)
        case nil: break  // the socket buffer is full: the rest when poll says POLLOUT
        }
    }

    private enum ReadState { case pending, closed, complete, tooLarge }

    private func read(at index: Int) -> ReadState {
        return chunk.withUnsafeMutableBytes { buffer in
            while true {
                let n = recv(connections[index].fd, buffer.baseAddress, buffer.count, 0)
                if n == 0 { return .closed }
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno == EAGAIN || errno == EWOULDBLOCK ? .pending : .closed
                }
                let searchFrom = max(0, connections[index].request.count - 3)
                connections[index].request.append(contentsOf: buffer[0..<n])
                if connections[index].request.count > limits.maxRequestBytes { return .tooLarge }
                if Self.headersEnd(in: connections[index].request, from: searchFrom) { return .complete }
            }
        }
    }

    /// True when the request holds an empty line (CRLF CRLF, or bare LF LF) at or after `from`.
    static func headersEnd(in request: [UInt8], from: Int) -> Bool {
        var i = from
        while i < request.count {
            if request[i] == 10 {
                if i >= 1, request[i - 1] == 10 { return true }
                if i >= 3, request[i - 1] == 13, request[i - 2] == 10 { return true }
            }
            i += 1
        }
        return false
    }

    private func answer(at index: Int) {
        let request = connections[index].request
        let line = request.prefix { $0 != 13 && $0 != 10 }
        let parts = line.split(separator: 32)
        let isGet = parts.first.map { $0.elementsEqual("GET".utf8) } ?? false
        let isHead = parts.first.map { $0.elementsEqual("HEAD".utf8) } ?? false
        let response: Response
        if parts.count >= 2, isGet || isHead {
            var path = String(decoding: parts[1], as: UTF8.self)
            if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
            response = handler(path)
        } else {
            response = Response(status: 405, body: "method not allowed\n")
        }
        connections[index].response = Self.encode(response, withBody: !isHead)
        connections[index].request = []
    }

    private func reject(at index: Int) {
        let body = "request line and headers exceed \(limits.maxRequestBytes) bytes\n"
        connections[index].response = Self.encode(Response(status: 431, body: body), withBody: true)
        connections[index].outcome = .tooLarge
        connections[index].request = []
    }

    static func encode(_ response: Response, withBody: Bool) -> [UInt8] {
        let reasons = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large",
                       503: "Service Unavailable"]
        let body = Array(response.body.utf8)
        let header = "HTTP/1.1 \(response.status) \(reasons[response.status] ?? "Status")\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(header.utf8) + (withBody ? body : [])
    }
}
