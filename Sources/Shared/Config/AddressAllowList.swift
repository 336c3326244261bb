#if canImport(Glibc)
import FlowModel
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

/// `server.allow`: the senders a worker decodes datagrams from. Empty = everyone. A handful of
/// prefixes checked in order is cheaper per datagram than any structure worth building for them.
public struct AddressAllowList: Sendable, Equatable, CustomStringConvertible {
    public let prefixes: [AddressPrefix]

    public static let everyone = AddressAllowList(prefixes: [])

    public init(prefixes: [AddressPrefix]) { self.prefixes = prefixes }

    /// A comma-separated list of CIDR blocks (blanks around entries ignored); "" allows everyone.
    public init(parsing text: String) throws(AddressPrefix.ParseError) {
        var prefixes: [AddressPrefix] = []
        for entry in text.split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: " \t")
            if trimmed.isEmpty { continue }
            do throws(AddressPrefix.ParseError) {
                prefixes.append(try AddressPrefix(parsing: trimmed))
            } catch {
                throw AddressPrefix.ParseError(problem: "has entry '\(trimmed)' that is not a CIDR block: \(error.problem)")
            }
        }
        self.init(prefixes: prefixes)
    }

    /// True when datagrams from `address` (as `IPAddress.fromSocketAddress` reports it) may be decoded.
    @inline(__always)
    public func allows(_ address: IPAddress) -> Bool {
        if prefixes.isEmpty { return true }
        for prefix in prefixes where prefix.contains(address) { return true }
        return false
    }

    /// The normalised list, e.g. `10.0.0.0/8,2001:db8::/32`.
    public var description: String { prefixes.map(\.description).joined(separator: ",") }
}

extension Substring {
    fileprivate func trimmingCharacters(in blanks: String) -> String {
        let set = Set(blanks.unicodeScalars)
        let scalars = unicodeScalars.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed()
        return String(String.UnicodeScalarView(scalars))
    }
}
