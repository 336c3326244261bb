#if canImport(Glibc)
import Glibc
#endif

extension IPAddress: CustomStringConvertible {
    /// Text form for logs and metric labels (not the hot path: the JSON encoder writes its own bytes).
    public var description: String {
        switch family {
        case .none: return ""
        case .v4:
            let v = v4Value
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        case .v6:
            var raw = (high.bigEndian, low.bigEndian)
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            return withUnsafeBytes(of: &raw) { bytes in
                guard inet_ntop(AF_INET6, bytes.baseAddress, &text, socklen_t(text.count)) != nil else { return "" }
                return String(cString: text)
            }
        }
    }
}
