import FlowModel

/// Low-level text writing for the JSON encoder: decimal numbers and IP addresses written straight into
/// reserved output memory. Fenced here so the rest of the output code never touches raw pointers.
///
/// The caller reserves the worst case first (see `TextLimits`); these writes do no bounds checks.
/// The digit tables are `StaticString`s: they live in the binary's read-only data, so using them costs
/// no initialisation and no allocation.

/// "00", "01", ... "99": decimal numbers are written two digits at a time.
@usableFromInline let decimalPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

/// 0...255 as 4 bytes each: the digits, padded with '.', then the digit count as an ASCII digit.
/// A dotted quad is written with one 4-byte store per octet; the padding is overwritten by what follows.
@usableFromInline let octetTexts: StaticString = """
    0..11..12..13..14..15..16..17..18..19..110.211.212.213.214.215.2\
    16.217.218.219.220.221.222.223.224.225.226.227.228.229.230.231.2\
    32.233.234.235.236.237.238.239.240.241.242.243.244.245.246.247.2\
    48.249.250.251.252.253.254.255.256.257.258.259.260.261.262.263.2\
    64.265.266.267.268.269.270.271.272.273.274.275.276.277.278.279.2\
    80.281.282.283.284.285.286.287.288.289.290.291.292.293.294.295.2\
    96.297.298.299.2100310131023103310431053106310731083109311031113\
    1123113311431153116311731183119312031213122312331243125312631273\
    1283129313031313132313331343135313631373138313931403141314231433\
    1443145314631473148314931503151315231533154315531563157315831593\
    1603161316231633164316531663167316831693170317131723173317431753\
    1763177317831793180318131823183318431853186318731883189319031913\
    1923193319431953196319731983199320032013202320332043205320632073\
    2083209321032113212321332143215321632173218321932203221322232233\
    2243225322632273228322932303231323232333234323532363237323832393\
    2403241324232433244324532463247324832493250325132523253325432553
    """

/// "00", "01", ... "ff": IPv6 groups are written a byte (two hex digits) at a time.
@usableFromInline let hexPairs: StaticString = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

/// For each 8-bit mask of an IPv6 address's zero groups (bit i = group i is zero): the first group and
/// the length of its longest run of two or more zero groups, first run on a tie (RFC 5952 §4.2), as two
/// ASCII digits; "00" when there is no such run.
@usableFromInline let ipv6ZeroRuns: StaticString = """
    0000000200001203000000022222130400000002000012033232320223231405\
    0000000200001203000000022222130442424202424212033333333324241506\
    0000000200001203000000022222130400000002000012033232320223231405\
    5252520252521203525252022222130443434343434343033434343425251607\
    0000000200001203000000022222130400000002000012033232320223231405\
    0000000200001203000000022222130442424202424212033333333324241506\
    6262620262621203626262022222130462626202626212033232320223231405\
    5353535353535303535353535353130444444444444444443535353526261708
    """

/// Longest texts the writers produce, for reservations.
public enum TextLimits {
    /// UInt64.max has 20 digits.
    public static let decimalDigits = 20
    /// An IPv6 address without mixed notation, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" (39), is longer
    /// than "::ffff:255.255.255.255" (22) and "255.255.255.255" (15).
    public static let address = 39
    /// The dotted-quad writer stores 4 bytes per octet, up to 3 past the text it leaves.
    public static let overrun = 3
}

/// A write position in reserved memory.
@usableFromInline struct TextCursor {
    @usableFromInline var position: UnsafeMutablePointer<UInt8>

    @inlinable init(_ position: UnsafeMutablePointer<UInt8>) { self.position = position }

    @inlinable @inline(__always)
    mutating func append(_ byte: UInt8) {
        position.pointee = byte
        position += 1
    }

    @inlinable @inline(__always)
    mutating func append(_ literal: StaticString) {
        let count = literal.utf8CodeUnitCount
        position.update(from: literal.utf8Start, count: count)
        position += count
    }

    /// Unsigned decimal without leading zeros. Large values are split into 8-digit blocks with one
    /// division each, so the digit pairs of a block are computed independently rather than in a chain.
    @inlinable @inline(__always) mutating func appendDecimal(_ value: UInt64) {
        var local = TextCursor(position)  // in a register, see appendIPv6
        if value < 100_000_000 {
            local.appendDecimal(below100Million: UInt32(truncatingIfNeeded: value))
        } else {
            let high = value / 100_000_000
            let low = UInt32(truncatingIfNeeded: value &- high &* 100_000_000)
            if high < 100_000_000 {
                local.appendDecimal(below100Million: UInt32(truncatingIfNeeded: high))
            } else {
                // UInt64.max has 20 digits: at most 4 above the two 8-digit blocks.
                let top = high / 100_000_000
                local.appendDecimal(below10Thousand: UInt32(truncatingIfNeeded: top))
                local.appendEightDigits(UInt32(truncatingIfNeeded: high &- top &* 100_000_000))
            }
            local.appendEightDigits(low)
        }
        position = local.position
    }

    @inlinable mutating func appendDecimal(_ value: UInt32) { appendDecimal(UInt64(value)) }
    @inlinable mutating func appendDecimal(_ value: UInt16) { appendDecimal(below100Million: UInt32(value)) }
    @inlinable mutating func appendDecimal(_ value: UInt8) { appendDecimal(below10Thousand: UInt32(value)) }

    @inlinable @inline(__always) mutating func appendDecimal(below100Million value: UInt32) {
        if value < 10_000 {
            appendDecimal(below10Thousand: value)
        } else {
            let high = value / 10_000
            appendDecimal(below10Thousand: high)
            appendFourDigits(value &- high &* 10_000)
        }
    }

    @inlinable @inline(__always) mutating func appendDecimal(below10Thousand value: UInt32) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ UInt8(ascii: "0"))
        } else if value < 100 {
            appendPair(value)
        } else if value < 1000 {
            let high = value / 100
            append(UInt8(truncatingIfNeeded: high) &+ UInt8(ascii: "0"))
            appendPair(value &- high &* 100)
        } else {
            appendFourDigits(value)
        }
    }

    /// Exactly 8 digits, leading zeros included.
    @inlinable @inline(__always) mutating func appendEightDigits(_ value: UInt32) {
        let high = value / 10_000
        appendFourDigits(high)
        appendFourDigits(value &- high &* 10_000)
    }

    /// Exactly 4 digits, leading zeros included.
    @inlinable @inline(__always) mutating func appendFourDigits(_ value: UInt32) {
        let high = value / 100
        appendPair(high)
        appendPair(value &- high &* 100)
    }

    /// Exactly 2 digits of a value below 100.
    @inlinable @inline(__always) mutating func appendPair(_ value: UInt32) {
        let pair = UnsafeRawPointer(decimalPairs.utf8Start).loadUnaligned(fromByteOffset: Int(value) &* 2, as: UInt16.self)
        UnsafeMutableRawPointer(position).storeBytes(of: pair, as: UInt16.self)
        position += 2
    }

    /// One IPv4 octet, through the octet table (see `octetTexts`). Writes up to 3 bytes past the text.
    @inlinable @inline(__always)
    mutating func appendOctet(_ octet: UInt32) {
        let entry = octetTexts.utf8Start + Int(octet & 0xFF) &* 4
        UnsafeMutableRawPointer(position).copyMemory(from: entry, byteCount: 4)
        position += Int(entry[3] &- UInt8(ascii: "0"))
    }

    /// a.b.c.d from the address in host order (192.0.2.1 == 0xC000_0201).
    @inlinable @inline(__always)
    mutating func appendDottedQuad(_ value: UInt32) {
        appendOctet(value >> 24)
        append(UInt8(ascii: "."))
        appendOctet(value >> 16)
        append(UInt8(ascii: "."))
        appendOctet(value >> 8)
        append(UInt8(ascii: "."))
        appendOctet(value)
    }

    /// A 16-bit group in lowercase hex without leading zeros ("0" for zero): the four digits are built in
    /// a register from the pair table, the leading zeros shifted out, and stored at once (up to 3 bytes
    /// past the text, like the octets).
    @inlinable mutating func appendHexGroup(_ group: UInt16) {
        let pairs = UnsafeRawPointer(hexPairs.utf8Start)
        let high = UInt32(pairs.loadUnaligned(fromByteOffset: Int(group >> 8) &* 2, as: UInt16.self))
        let low = UInt32(pairs.loadUnaligned(fromByteOffset: Int(group & 0xFF) &* 2, as: UInt16.self))
        // In memory order (little-endian): the high byte's two digits first.
        let digits = UInt32(littleEndian: high | low << 16)
        // Leading zero digits, "0" keeping one; comparisons rather than a 16-bit bit scan (slow on x86).
        let skipped = (group < 0x1000 ? 1 : 0) &+ (group < 0x100 ? 1 : 0) &+ (group < 0x10 ? 1 : 0)
        UnsafeMutableRawPointer(position).storeBytes(of: (digits >> UInt32(skipped &* 8)).littleEndian, as: UInt32.self)
        position += 4 &- skipped
    }

    /// The address as text: dotted quad for IPv4, RFC 5952 for IPv6 (IPv4-mapped as ::ffff:a.b.c.d),
    /// "0.0.0.0" when there is no address (KFlow's consumers expect an address string in every field).
    @inlinable @inline(__always)
    mutating func appendAddress(_ address: IPAddress) {
        switch address.family {
        case .v4: appendDottedQuad(address.v4Value)
        case .none: append("0.0.0.0")
        case .v6:
            if address.isV4Mapped {
                append("::ffff:")
                appendDottedQuad(UInt32(truncatingIfNeeded: address.low))
            } else {
                appendIPv6(high: address.high, low: address.low)
            }
        }
    }

    /// Bit i (0...3) set when 16-bit group i of `half` (0 = most significant) is zero, without branches:
    /// adding 0x7FFF to a lane's low 15 bits sets its top bit unless they are all zero.
    @inlinable @inline(__always) static func zeroGroups(_ half: UInt64) -> UInt32 {
        let topBits: UInt64 = 0x8000_8000_8000_8000
        let nonZero = ((half & ~topBits) &+ ~topBits | half) & topBits
        let zero = ~nonZero & topBits
        return UInt32(truncatingIfNeeded: zero >> 63 & 1 | zero >> 46 & 2 | zero >> 29 & 4 | zero >> 12 & 8)
    }

    /// RFC 5952 section 4: lowercase, no leading zeros, the longest run of two or more zero groups
    /// shortened to "::" (the first such run on a tie), a single zero group written as "0".
    @usableFromInline mutating func appendIPv6(high: UInt64, low: UInt64) {
        @inline(__always) func group(_ index: Int) -> UInt16 {
            let half = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64((3 &- (index & 3)) &* 16))
        }
        let zeroMask = Self.zeroGroups(high) | Self.zeroGroups(low) << 4
        let run = ipv6ZeroRuns.utf8Start + Int(zeroMask) &* 2
        let bestLength = Int(run[1] &- UInt8(ascii: "0"))
        let bestStart = bestLength == 0 ? 8 : Int(run[0] &- UInt8(ascii: "0"))

        // A local cursor stays in a register; `self` may live in memory that byte stores could alias.
        var local = TextCursor(position)
        var index = 0
        var needsSeparator = false
        while index < 8 {
            if index == bestStart {
                local.append("::")
                index &+= bestLength
                needsSeparator = false
                continue
            }
            if needsSeparator { local.append(UInt8(ascii: ":")) }
            local.appendHexGroup(group(index))
            needsSeparator = true
            index &+= 1
        }
        position = local.position
    }
}
