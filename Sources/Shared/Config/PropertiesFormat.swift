/// Java `.properties` text, as `java.util.Properties.load` reads it, so KFlow's files load unchanged:
/// `key=value`, `key = value`, `key: value`, `key value`; `#` and `!` comment lines; a line ending in
/// an odd number of backslashes continues on the next line (whose leading blanks are dropped);
/// escapes `\t \n \r \f \uXXXX`, and a backslash before any other character keeps that character
/// (`\=`, `\:`, `\ `, `\#`, `\\`). A later duplicate key replaces an earlier one, as in Java.
public enum PropertiesFormat {
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: String
        /// The 1-based line the entry starts on (its first natural line when continued).
        public var line: Int

        public init(key: String, value: String, line: Int) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// The one thing Java rejects: a `\u` escape not followed by four hexadecimal digits.
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// The entries in file order; for a repeated key only the last occurrence is kept, at its position.
    public static func parse(_ text: String) throws(SyntaxError) -> [Entry] {
        var entries: [Entry] = []
        var indexByKey: [String: Int] = [:]
        let lines = naturalLines(Array(text.unicodeScalars))
        var index = 0
        while index < lines.count {
            let startLine = index + 1
            var logical = lines[index].dropLeadingBlanks()
            index += 1
            if logical.isEmpty || logical[0] == "#" || logical[0] == "!" { continue }
            while logical.endsWithOddBackslashes {
                logical.removeLast()
                guard index < lines.count else { break }
                logical += lines[index].dropLeadingBlanks()
                index += 1
            }
            let entry = try splitEntry(logical, line: startLine)
            if let earlier = indexByKey[entry.key] {
                entries.remove(at: earlier)
                for (key, position) in indexByKey where position > earlier { indexByKey[key] = position - 1 }
            }
            indexByKey[entry.key] = entries.count
            entries.append(entry)
        }
        return entries
    }

    /// One `key=value` line that `parse` reads back as exactly `key` and `value`.
    public static func line(key: String, value: String) -> String {
        escape(key, isKey: true) + "=" + escape(value, isKey: false)
    }

    // MARK: - Reading

    private static func naturalLines(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var lines: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if scalar == "\n" || scalar == "\r" {
                if scalar == "\r", index < scalars.count, scalars[index] == "\n" { index += 1 }
                lines.append(current)
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// Java's `load0`: the key ends at the first unescaped `=`, `:` or blank; blanks and at most one
    /// `=` or `:` separate it from the value, whose trailing blanks are kept.
    private static func splitEntry(_ logical: [Unicode.Scalar], line: Int) throws(SyntaxError) -> Entry {
        var keyEnd = 0
        var valueStart = logical.count
        var hasSeparator = false
        var precedingBackslash = false
        while keyEnd < logical.count {
            let scalar = logical[keyEnd]
            if !precedingBackslash {
                if scalar == "=" || scalar == ":" {
                    valueStart = keyEnd + 1
                    hasSeparator = true
                    break
                }
                if scalar.isPropertiesBlank {
                    valueStart = keyEnd + 1
                    break
                }
            }
            precedingBackslash = scalar == "\\" ? !precedingBackslash : false
            keyEnd += 1
        }
        while valueStart < logical.count {
            let scalar = logical[valueStart]
            if !scalar.isPropertiesBlank {
                guard !hasSeparator, scalar == "=" || scalar == ":" else { break }
                hasSeparator = true
            }
            valueStart += 1
        }
        let key = try unescape(logical[0..<keyEnd], line: line)
        let value = try unescape(logical[valueStart...], line: line)
        return Entry(key: key, value: value, line: line)
    }

    private static func unescape(_ scalars: ArraySlice<Unicode.Scalar>, line: Int) throws(SyntaxError) -> String {
        var utf16: [UInt16] = []
        utf16.reserveCapacity(scalars.count)
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let scalar = scalars[index]
            index += 1
            guard scalar == "\\", index < scalars.endIndex else {
                // A lone trailing backslash (only possible at end of input) is dropped, as Java does.
                if scalar != "\\" { utf16.append(contentsOf: String(scalar).utf16) }
                continue
            }
            let escaped = scalars[index]
            index += 1
            switch escaped {
            case "t": utf16.append(0x09)
            case "n": utf16.append(0x0A)
            case "r": utf16.append(0x0D)
            case "f": utf16.append(0x0C)
            case "u":
                var unit: UInt16 = 0
                for _ in 0..<4 {
                    guard index < scalars.endIndex, let digit = scalars[index].hexDigitValue else {
                        throw SyntaxError(line: line, message: "malformed \\uXXXX escape (needs four hexadecimal digits)")
                    }
                    unit = unit << 4 | digit
                    index += 1
                }
                utf16.append(unit)
            default: utf16.append(contentsOf: String(escaped).utf16)
            }
        }
        // `\u` escapes are UTF-16 units (surrogate pairs for astral characters), as in Java.
        return String(decoding: utf16, as: UTF16.self)
    }

    // MARK: - Writing

    private static func escape(_ text: String, isKey: Bool) -> String {
        var out = ""
        for (offset, scalar) in text.unicodeScalars.enumerated() {
            switch scalar {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\u{0C}": out += "\\f"
            case " " where isKey || offset == 0: out += "\\ "
            case _ where isKey && (scalar == "=" || scalar == ":" || scalar == "#" || scalar == "!"):
                out += "\\" + String(scalar)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension Array where Element == Unicode.Scalar {
    fileprivate func dropLeadingBlanks() -> [Unicode.Scalar] {
        Array(drop { $0.isPropertiesBlank })
    }

    fileprivate var endsWithOddBackslashes: Bool {
        var count = 0
        for scalar in reversed() {
            guard scalar == "\\" else { break }
            count += 1
        }
        return count % 2 == 1
    }
}

extension Unicode.Scalar {
    fileprivate var isPropertiesBlank: Bool { self == " " || self == "\t" || self == "\u{0C}" }

    fileprivate var hexDigitValue: UInt16? {
        switch value {
        case 0x30...0x39: UInt16(value - 0x30)
        case 0x41...0x46: UInt16(value - 0x41 + 10)
        case 0x61...0x66: UInt16(value - 0x61 + 10)
        default: nil
        }
    }
}
