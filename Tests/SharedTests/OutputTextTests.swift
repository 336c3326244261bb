import Testing
@testable import FlowModel
@testable import Output

/// The low-level writers: decimal numbers and address text, checked against Swift's own formatting and
/// glibc's inet_ntop.
@Suite struct OutputTextTests {
    private func written(_ body: (inout TextCursor) -> Void) -> String {
        let buffer = OutputBuffer(capacity: 64)
        guard let start = buffer.reserve(64) else { return "<no room>" }
        var cursor = TextCursor(start)
        body(&cursor)
        buffer.commit(cursor.position - start)
        return String(decoding: buffer.bytes, as: UTF8.self)
    }

    @Test func decimalsMatchSwiftFormattingAtEveryDigitCount() {
        var values: [UInt64] = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, UInt64.max, UInt64.max - 1]
        var power: UInt64 = 1
        for _ in 0..<19 {
            power *= 10
            values += [power - 1, power, power + 1]
        }
        var random = SeededGenerator(seed: 1)
        for _ in 0..<2000 { values.append(random.next() >> (random.next() % 64)) }
        for value in values {
            #expect(written { $0.appendDecimal(value) } == String(value))
        }
    }

    @Test func octetTableHoldsEveryOctetsDigits() {
        for octet in UInt32(0)...255 {
            #expect(written { $0.appendOctet(octet) } == String(octet))
        }
    }

    @Test func ipv4AddressesMatchInetNtop() {
        var random = SeededGenerator(seed: 2)
        var samples: [UInt32] = [0, 0xFFFF_FFFF, 0xC000_0201, 0x0A00_0001, 0x0100_00FF, 0x6464_6464]
        for _ in 0..<2000 { samples.append(UInt32(truncatingIfNeeded: random.next())) }
        for value in samples {
            let address = IPAddress(v4: value)
            #expect(written { $0.appendAddress(address) } == OutputReference.ntop(address))
        }
    }

    @Test func ipv6ZeroRunShapesMatchInetNtop() {
        // Every pattern of zero/non-zero groups (256 shapes: single zeros, ties, runs at either end),
        // with several non-zero values so leading-zero suppression of 1..4 hex digits is exercised.
        var random = SeededGenerator(seed: 3)
        for shape in 0..<256 {
            for _ in 0..<8 {
                let groups: [UInt16] = (0..<8).map { index in
                    guard shape >> index & 1 == 1 else { return 0 }
                    // 1 to 4 significant hex digits: the top one set, the rest random.
                    let digits = 1 + random.next() % 4
                    let top = UInt64(1) << (4 * (digits - 1))
                    return UInt16(truncatingIfNeeded: top | random.next() % top)
                }
                let address = OutputReference.v6(groups)
                // glibc writes the deprecated ::/96 IPv4-compatible form as ::a.b.c.d; see the literal cases.
                if groups[0..<6].allSatisfy({ $0 == 0 }) && groups[6] != 0 { continue }
                #expect(written { $0.appendAddress(address) } == OutputReference.ntop(address), "groups \(groups)")
            }
        }
    }

    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group is not shortened
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // the longest run wins
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // a tie: the first run
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::", "fe80::"),
        ("FE80::ABCD:EF01", "fe80::abcd:ef01"),  // lowercase
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),  // IPv4-mapped in mixed notation
        ("::ffff:0.0.0.0", "::ffff:0.0.0.0"),
        ("::102:304", "::102:304"),  // IPv4-compatible (deprecated): plain hex, unlike glibc's ::1.2.3.4
        ("::ffff:0:102:304", "::ffff:0:102:304"),  // not mapped (SIIT prefix): plain hex
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func ipv6CanonicalTextFollowsRFC5952(input: String, expected: String) throws {
        let address = try #require(OutputReference.pton(input))
        #expect(written { $0.appendAddress(address) } == expected)
    }

    @Test func missingAddressIsWrittenAsTheUnspecifiedIPv4Address() {
        #expect(written { $0.appendAddress(.none) } == "0.0.0.0")
    }

    @Test func longestAddressTextFitsTheDeclaredLimit() {
        let longest = OutputReference.v6(Array(repeating: 0xFFFF, count: 8))
        #expect(written { $0.appendAddress(longest) }.utf8.count == TextLimits.address)
        #expect(written { $0.appendAddress(IPAddress(high: 0, low: 0xFFFF_FFFF_FFFF, family: .v6)) }.utf8.count <= TextLimits.address)
    }
}
