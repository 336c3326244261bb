/// An IPv4 or IPv6 address held inline (no allocation): 16 bytes in network order plus the family.
/// IPv4 addresses occupy the first 4 bytes of `high`'s big-endian image.
public struct IPAddress: Hashable, Sendable {
    public enum Family: UInt8, Sendable { case none = 0, v4 = 4, v6 = 6 }

    /// Bytes 0..<8 and 8..<16 of the address in network order, as big-endian integers.
    public var high: UInt64
    public var low: UInt64
    public var family: Family

    @inlinable public static var none: IPAddress { IPAddress(high: 0, low: 0, family: .none) }

    @inlinable public init(high: UInt64, low: UInt64, family: Family) {
        self.high = high
        self.low = low
        self.family = family
    }

    /// An IPv4 address from its 32-bit value in host order (192.0.2.1 == 0xC000_0201).
    @inlinable public init(v4 value: UInt32) {
        self.init(high: UInt64(value) << 32, low: 0, family: .v4)
    }

    /// The IPv4 address as a 32-bit value in host order; meaningful only when `family == .v4`.
    @inlinable public var v4Value: UInt32 { UInt32(truncatingIfNeeded: high >> 32) }

    /// True for ::ffff:a.b.c.d, which a dual-stack socket reports for IPv4 senders.
    @inlinable public var isV4Mapped: Bool {
        family == .v6 && high == 0 && (low >> 32) == 0xFFFF
    }

    /// The IPv4 address behind an IPv4-mapped IPv6 address, else self.
    @inlinable public var unmapped: IPAddress {
        isV4Mapped ? IPAddress(v4: UInt32(truncatingIfNeeded: low)) : self
    }
}
