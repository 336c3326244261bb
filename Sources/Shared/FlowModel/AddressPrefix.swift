#if canImport(Glibc)
import Glibc
#endif

/// One CIDR block (`192.0.2.0/24`, `2001:db8::/32`; a bare address is a /32 or /128), as a masked
/// 128-bit value so a check is two ANDs and two compares.
public struct AddressPrefix: Sendable, Equatable, CustomStringConvertible {
    public let family: IPAddress.Family
    public let length: Int
    let high: UInt64
    let low: UInt64
    let maskHigh: UInt64
    let maskLow: UInt64

    /// Why a text is not a CIDR block, phrased to follow `'text' `.
    public struct ParseError: Error, Sendable, Equatable {
        public let problem: String
        public init(problem: String) { self.problem = problem }
    }

    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var v6 = in6_addr()
        var v4 = in_addr()
        var address: IPAddress
        if parts[0].withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            address = IPAddress(v4: UInt32(bigEndian: v4.s_addr))
        } else if parts[0].withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            let (high, low) = withUnsafeBytes(of: v6) { raw in
                (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            address = IPAddress(high: high, low: low, family: .v6)
        } else {
            throw ParseError(problem: "'\(parts[0])' is not an IPv4 or IPv6 address")
        }
        let maximum = address.family == .v4 ? 32 : 128
        var length = maximum
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...maximum).contains(given), parts[1].allSatisfy(\.isASCII) else {
                throw ParseError(problem: "'/\(parts[1])' is not a prefix length from 0 to \(maximum)")
            }
            length = given
        }
        // Senders are matched as dvc reports them (an IPv4 sender on a dual-stack socket is IPv4), so an
        // IPv4-mapped block is the IPv4 block it names.
        if address.isV4Mapped, length >= 96 {
            address = address.unmapped
            length -= 96
        }
        self.init(address: address, length: length)
        guard high == address.high, low == address.low else {
            throw ParseError(problem: "its address has bits set beyond the /\(length) prefix (did you mean \(self)?)")
        }
    }

    /// The block of `length` leading bits of `address` (host bits cleared).
    public init(address: IPAddress, length: Int) {
        // An IPv4 address sits in the top 32 bits of `high` (see IPAddress), so its prefix does too.
        let highBits = min(length, 64)
        let lowBits = max(0, length - 64)
        maskHigh = highBits == 0 ? 0 : ~UInt64(0) << UInt64(64 - highBits)
        maskLow = lowBits == 0 ? 0 : ~UInt64(0) << UInt64(64 - lowBits)
        family = address.family
        self.length = length
        high = address.high & maskHigh
        low = address.low & maskLow
    }

    @inline(__always)
    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && address.high & maskHigh == high && address.low & maskLow == low
    }

    public var description: String {
        "\(IPAddress(high: high, low: low, family: family))/\(length)"
    }
}
