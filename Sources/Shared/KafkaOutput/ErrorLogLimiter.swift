/// Decides which librdkafka errors are logged: the first of each error code, then at most one per code
/// every `intervalNs`, saying how many like it were held back meanwhile. A broker that stays down
/// raises the same error several times a second; the count goes to a metric, the log gets one line.
///
/// Bounded: one entry per distinct error code, and librdkafka's codes are a fixed set of a few hundred.
public struct ErrorLogLimiter: Sendable {
    public let intervalNs: UInt64
    private var entries: [Int32: (lastLoggedNs: UInt64, suppressed: UInt64)] = [:]

    public init(intervalNs: UInt64 = 10_000_000_000) { self.intervalNs = intervalNs }

    /// Records one error with `code` at `nowNs` (monotonic). Returns nil when it is held back, else the
    /// number of errors with this code held back since the last one logged.
    public mutating func admit(code: Int32, nowNs: UInt64) -> UInt64? {
        guard let entry = entries[code] else {
            entries[code] = (nowNs, 0)
            return 0
        }
        if nowNs &- entry.lastLoggedNs < intervalNs {
            entries[code] = (entry.lastLoggedNs, entry.suppressed &+ 1)
            return nil
        }
        entries[code] = (nowNs, 0)
        return entry.suppressed
    }
}
