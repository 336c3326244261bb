import Testing
@testable import Config

/// What java.util.Properties.load reads from the same text (checked against the JDK's documented rules).
@Suite struct ConfigPropertiesFormatTests {
    private func pairs(_ text: String) throws -> [String: String] {
        Dictionary(try PropertiesFormat.parse(text).map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    }

    @Test(arguments: [
        ("a=b", "a", "b"),
        ("a = b", "a", "b"),
        ("a: b", "a", "b"),
        ("a b", "a", "b"),
        ("a\t=\tb", "a", "b"),
        ("   a=b", "a", "b"),
        ("a=b  ", "a", "b  "),  // trailing blanks belong to the value
        ("a==b", "a", "=b"),  // one separator only
        ("a = :b", "a", ":b"),
        ("a", "a", ""),
        ("a=", "a", ""),
        ("a=b#c", "a", "b#c"),  // '#' starts a comment only at the start of a line
        ("key\\ with\\ spaces = v", "key with spaces", "v"),
        ("a\\=b=c", "a=b", "c"),
        ("a\\:b:c", "a:b", "c"),
        ("a=\\u00e9t\\u00E9", "a", "été"),
        ("a=\\uD83D\\uDE00", "a", "😀"),  // UTF-16 surrogate pair, as Java strings hold it
        ("a=\\t\\n\\r\\f", "a", "\t\n\r\u{0C}"),
        ("a=\\x\\\\y", "a", "x\\y"),  // backslash before another character keeps the character
        ("a=b\\\\", "a", "b\\"),  // an even number of backslashes does not continue the line
        ("a=b\\\n    c", "a", "bc"),  // continuation drops the next line's leading blanks
        ("a=b\\\n#c", "a", "b#c"),  // a continued line is value, even when it starts with '#'
        ("a=b\\\r\n  c\\\r  d", "a", "bcd"),
    ] as [(String, String, String)])
    func readsJavaSyntax(text: String, key: String, value: String) throws {
        let entries = try PropertiesFormat.parse(text)
        #expect(entries.map(\.key) == [key])
        #expect(entries.first?.value == value)
    }

    @Test func skipsCommentsAndBlankLines() throws {
        let text = "# comment\n  ! bang comment\n\n   \t\nkey=value\n#a=b\n"
        #expect(try pairs(text) == ["key": "value"])
    }

    @Test func commentLineEndingInBackslashDoesNotContinue() throws {
        let entries = try PropertiesFormat.parse("# note \\\na=1\n")
        #expect(entries == [.init(key: "a", value: "1", line: 2)])
    }

    @Test func reportsTheLineEachEntryStartsOn() throws {
        let entries = try PropertiesFormat.parse("x=1\\\n  2\r\n\r\ny=3\rz=4")
        #expect(entries == [
            .init(key: "x", value: "12", line: 1),
            .init(key: "y", value: "3", line: 4),
            .init(key: "z", value: "4", line: 5),
        ])
    }

    @Test func laterDuplicateReplacesEarlierAtItsOwnPosition() throws {
        let entries = try PropertiesFormat.parse("a=1\nb=2\na=3\n")
        #expect(entries == [.init(key: "b", value: "2", line: 2), .init(key: "a", value: "3", line: 3)])
    }

    @Test func malformedUnicodeEscapeIsAnErrorWithItsLine() {
        #expect(throws: PropertiesFormat.SyntaxError(line: 2, message: "malformed \\uXXXX escape (needs four hexadecimal digits)")) {
            try PropertiesFormat.parse("ok=1\nbad=\\u12g4\n")
        }
    }

    @Test(arguments: [
        ("plain.key", "plain value"),
        ("a b=c:d#!", " leading blank, trailing blank "),
        ("k", "tab\there, newline\nhere, cr\rhere, backslash\\here, ff\u{0C}"),
        ("#starts.with.hash", "!starts with bang"),
        ("k", "control \u{01}\u{7F} and unicode été 😀"),
        ("k", ""),
        ("k", "ends with backslash\\"),
    ] as [(String, String)])
    func writtenLineReadsBackExactly(key: String, value: String) throws {
        let line = PropertiesFormat.line(key: key, value: value)
        #expect(!line.contains("\n") && !line.contains("\r"), "one line: \(line)")
        #expect(try PropertiesFormat.parse(line) == [.init(key: key, value: value, line: 1)])
    }
}
