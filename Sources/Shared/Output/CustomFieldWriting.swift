import FlowModel

// JSON text of the fields chosen by `output.field.*` (`CustomField`): written after the other fields,
// out of line (only records that carry one get here), into the record's worst-case reservation.

extension CustomField {
    /// The longest JSON text of this field, key included: `,"name":` and its longest value.
    var maxJSONBytes: Int {
        let valueBytes: Int
        switch kind {
        case .unsigned, .signed: valueBytes = TextLimits.decimalDigits + 1
        case .float: valueBytes = CustomFieldText.maxFloatBytes
        case .address: valueBytes = TextLimits.address + 2
        case .mac: valueBytes = 17 + 2
        // A kind decided by the template's field length may be any: the longest one.
        case .string, .hex, nil: valueBytes = CustomFieldText.maxStringBytes
        }
        return name.utf8.count + 4 + valueBytes
    }
}

@usableFromInline enum CustomFieldText {
    /// A string value: every octet escaped as \u00XX at worst (6), or U+FFFD (3) for one that is not UTF-8, quoted.
    static let maxStringBytes = CustomField.maxValueOctets * 6 + 2
    /// Swift's shortest round-trip text of a Double ("-2.2250738585072014e-308": 24) or "null".
    static let maxFloatBytes = 32

    /// Writes every present custom value of `record` (`fields` in slot order) at `start`.
    @usableFromInline @inline(never)
    static func write(
        _ record: borrowing FlowRecord, fields: [CustomField], values: CustomValueStore, at start: UnsafeMutablePointer<UInt8>
    ) -> UnsafeMutablePointer<UInt8> {
        var cursor = TextCursor(start)
        for (index, field) in fields.enumerated() where record.customPresent & (1 << UInt8(index)) != 0 {
            let bytes = values.value(of: record, index)
            let isVariable = record.customVariableLength & (1 << UInt8(index)) != 0
            let kind = field.kind(forLength: isVariable ? CustomField.variableLength : UInt16(clamping: bytes.count))
            guard fits(bytes.count, kind) else { continue }  // a length its type cannot have: left out
            cursor.append(UInt8(ascii: ","))
            cursor.append(UInt8(ascii: "\""))
            for byte in field.name.utf8 { cursor.append(byte) }  // a-z 0-9 _ only: nothing to escape
            cursor.append(UInt8(ascii: "\""))
            cursor.append(UInt8(ascii: ":"))
            switch kind {
            case .unsigned: cursor.appendDecimal(bytes.readUnsignedBE())
            case .signed:
                let raw = bytes.readUnsignedBE()
                let shift = UInt64(64 - 8 * bytes.count)
                let value = Int64(bitPattern: raw << shift) >> Int64(shift)
                if value < 0 { cursor.append(UInt8(ascii: "-")) }
                cursor.appendDecimal(value.magnitude)
            case .float:
                // A float32 as its own shortest text (0.1, not 0.10000000149011612).
                let single = Float(bitPattern: UInt32(truncatingIfNeeded: bytes.readUnsignedBE()))
                let double = Double(bitPattern: bytes.readUnsignedBE())
                let finite = bytes.count == 4 ? single.isFinite : double.isFinite
                let text = bytes.count == 4 ? single.description : double.description
                if finite {
                    for byte in text.utf8.prefix(maxFloatBytes) { cursor.append(byte) }
                } else {
                    cursor.append("null")
                }
            case .address:
                let address = bytes.count == 4
                    ? IPAddress(v4: UInt32(bytes.readUnsignedBE()))
                    : IPAddress(high: bytes.loadBE64(at: 0), low: bytes.loadBE64(at: 8), family: .v6)
                cursor.append(UInt8(ascii: "\""))
                cursor.appendAddress(address)
                cursor.append(UInt8(ascii: "\""))
            case .mac:
                cursor.append(UInt8(ascii: "\""))
                for (octet, byte) in bytes.enumerated() {
                    if octet > 0 { cursor.append(UInt8(ascii: ":")) }
                    cursor.appendHexOctet(byte)
                }
                cursor.append(UInt8(ascii: "\""))
            case .hex:
                cursor.append(UInt8(ascii: "\""))
                for byte in bytes.prefix(CustomField.maxValueOctets) { cursor.appendHexOctet(byte) }
                cursor.append(UInt8(ascii: "\""))
            case .string:
                cursor.append(UInt8(ascii: "\""))
                cursor.appendJSONString(UnsafeRawBufferPointer(rebasing: bytes.prefix(CustomField.maxValueOctets)))
                cursor.append(UInt8(ascii: "\""))
            }
        }
        return cursor.position
    }

    static func fits(_ length: Int, _ kind: CustomField.Kind) -> Bool {
        switch kind {
        case .unsigned, .signed: (1...8).contains(length)
        case .float: length == 4 || length == 8
        case .address: length == 4 || length == 16
        case .mac: length == 6
        case .string, .hex: true
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The octets (1-8) as a big-endian unsigned integer.
    fileprivate func readUnsignedBE() -> UInt64 { reduce(0) { $0 << 8 | UInt64($1) } }

    fileprivate func loadBE64(at offset: Int) -> UInt64 {
        UnsafeRawBufferPointer(rebasing: self[offset..<(offset + 8)]).readUnsignedBE()
    }
}

extension TextCursor {
    mutating func appendHexOctet(_ byte: UInt8) {
        let digits: StaticString = "0123456789abcdef"
        append(digits.utf8Start[Int(byte >> 4)])
        append(digits.utf8Start[Int(byte & 0x0F)])
    }

    /// The octets up to the first NUL as the inside of a JSON string (RFC 8259 §7): `"` and `\` and
    /// controls escaped, well-formed UTF-8 (RFC 3629 §4) copied, anything else as U+FFFD.
    mutating func appendJSONString(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        while index < end {
            let byte = bytes[index]
            if byte < 0x80 {
                switch byte {
                case UInt8(ascii: "\""): append(UInt8(ascii: "\\")); append(byte)
                case UInt8(ascii: "\\"): append(UInt8(ascii: "\\")); append(byte)
                case 0x0A: append(UInt8(ascii: "\\")); append(UInt8(ascii: "n"))
                case 0x0D: append(UInt8(ascii: "\\")); append(UInt8(ascii: "r"))
                case 0x09: append(UInt8(ascii: "\\")); append(UInt8(ascii: "t"))
                case ..<0x20, 0x7F:
                    append("\\u00")
                    appendHexOctet(byte)
                default: append(byte)
                }
                index += 1
                continue
            }
            let length = Self.utf8SequenceLength(bytes, at: index, end: end)
            if length == 0 {
                append(0xEF); append(0xBF); append(0xBD)  // U+FFFD
                index += 1
            } else {
                for offset in 0..<length { append(bytes[index + offset]) }
                index += length
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence (2-4 octets) starting at a non-ASCII `index`, 0 if it is not one.
    static func utf8SequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int, end: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the second octet's range
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return 0
        }
        guard end - index >= length, (low...high).contains(bytes[index + 1]) else { return 0 }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) { return 0 }
        return length
    }
}
