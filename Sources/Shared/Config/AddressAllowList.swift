#if canImport(Glibc)
import FlowModel
import Glibc
#endif

/// `server.allow`: the senders a worker decodes datagrams from. Empty = everyone. A handful of
/// prefixes checked in order is cheaper per datagram than any structure worth building for them.
public struct AddressAllowList: Sendable, Equatable, CustomStringConvertible {
    public let prefixes: [AddressPrefix]

    public static let everyone = AddressAllowList(prefixes: [])

    public init(prefixes: [AddressPrefix]) { self.prefixes = prefixes }

    /// A comma-separated list of CIDR blocks (blanks around entries ignored); "" allows everyone.
    public init(parsing text: String) throws(AddressPrefix.ParseError) {
        let prefixes = try commaSeparatedEntries(text) { entry throws(AddressPrefix.ParseError) in
            do throws(AddressPrefix.ParseError) {
                return try AddressPrefix(parsing: entry)
            } catch {
                throw AddressPrefix.ParseError(problem: "has entry '\(entry)' that is not a CIDR block: \(error.problem)")
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

/// The non-blank entries of a comma-separated list, blanks around each trimmed, each through `parse`.
private func commaSeparatedEntries<Entry>(
    _ text: String, _ parse: (String) throws(AddressPrefix.ParseError) -> Entry
) throws(AddressPrefix.ParseError) -> [Entry] {
    var entries: [Entry] = []
    for item in text.split(separator: ",") {
        let trimmed = item.trimmingCharacters(in: " \t")
        if !trimmed.isEmpty { entries.append(try parse(trimmed)) }
    }
    return entries
}

extension Substring {
    fileprivate func trimmingCharacters(in blanks: String) -> String {
        let set = Set(blanks.unicodeScalars)
        let scalars = unicodeScalars.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed()
        return String(String.UnicodeScalarView(scalars))
    }
}

/// `sampling.override`: a comma-separated list of `CIDR=RATE` entries (e.g.
/// `10.0.0.0/8=1000, 2001:db8::/32=512`); an exporter takes the rate of the first block holding it.
public struct SamplingOverrideList: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        public let prefix: AddressPrefix
        /// 1-in-N, 1 ... UInt32.max.
        public let rate: UInt32
    }

    public let entries: [Entry]

    public static let none = SamplingOverrideList(entries: [])

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses the list ("" is no override); the error names the entry that is wrong.
    public init(parsing text: String) throws(AddressPrefix.ParseError) {
        let entries = try commaSeparatedEntries(text) { entry throws(AddressPrefix.ParseError) in
            let parts = entry.split(separator: "=", maxSplits: 1).map { Substring($0).trimmingCharacters(in: " \t") }
            guard parts.count == 2, let rate = UInt32(parts[1]), rate >= 1 else {
                throw AddressPrefix.ParseError(
                    problem: "has entry '\(entry)' that is not CIDR=RATE with a rate from 1 to \(UInt32.max)")
            }
            do throws(AddressPrefix.ParseError) {
                return Entry(prefix: try AddressPrefix(parsing: parts[0]), rate: rate)
            } catch {
                throw AddressPrefix.ParseError(problem: "has entry '\(entry)' whose block is wrong: \(error.problem)")
            }
        }
        self.init(entries: entries)
    }

    /// The normalised list, e.g. `10.0.0.0/8=1000,2001:db8::/32=512`.
    public var description: String { entries.map { "\($0.prefix)=\($0.rate)" }.joined(separator: ",") }
}
