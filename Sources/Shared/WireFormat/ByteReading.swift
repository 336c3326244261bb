import FlowModel

// Big-endian reads at byte offsets of a received datagram. The only unchecked memory access of the
// decoders lives here: every caller has already checked `offset + length <= count` against the
// enclosing message/set/record bounds, which is why these do not check again.

extension UnsafeRawBufferPointer {
    @inlinable @inline(__always) package func readBE16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always) package func readBE32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always) package func readBE64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// An unsigned integer of 1–8 octets (RFC 7011 §6.2 reduced-size encoding); 0 for other lengths.
    @inlinable @inline(__always) package func readUnsigned(at offset: Int, length: Int) -> UInt64 {
        switch length {
        case 1: return UInt64(self[offset])
        case 2: return UInt64(readBE16(at: offset))
        case 4: return UInt64(readBE32(at: offset))
        case 8: return readBE64(at: offset)
        case 3, 5, 6, 7:
            var value: UInt64 = 0
            for index in offset..<(offset + length) { value = value << 8 | UInt64(self[index]) }
            return value
        default: return 0
        }
    }

    /// An IPv6 address (16 octets) at `offset`.
    @inlinable @inline(__always) package func readIPv6(at offset: Int) -> IPAddress {
        IPAddress(high: readBE64(at: offset), low: readBE64(at: offset + 8), family: .v6)
    }

    /// True when every byte in `range` is zero (exporters pad with zeros).
    package func isAllZero(_ range: Range<Int>) -> Bool {
        for index in range where self[index] != 0 { return false }
        return true
    }
}
