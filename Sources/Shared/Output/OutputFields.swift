import FlowModel

/// The optional fields written after KFlow's ten, chosen by configuration (`output.fields`, a
/// comma-separated list of the names below). See docs/OUTPUT.md for each field's type and source.
///
/// This enum is the one list of them: a case's raw value is its bit in `OutputFields`, and `spec` gives
/// its name (configuration name and JSON key), the `FlowRecord.Present` flag it needs and the longest
/// text of its value. Parsing, the names, the encoder's worst-case bound and the docs/OUTPUT.md check
/// (DocsTablesTests) follow from it; the encoder's `writeValue` switch is exhaustive over it. Adding a
/// field: the `FlowRecord` value and its `Present` flag, a case and its row here, its arm in
/// `KFlowJSONEncoder.writeValue`, and a row in docs/OUTPUT.md.
///
/// Each bit is the bit of the `Present` flag the field depends on (a test checks), so the encoder finds
/// the fields to write with one AND; ascending bits are output order, so it writes them by walking the
/// set bits. `domain` (always known) borrows the bit of `Present.bytes`, a base field no option uses.
public enum OutputField: Int, CaseIterable, Sendable {
    case start = 0, end = 1, inInterface = 2, outInterface = 3, srcAS = 4, dstAS = 5, nextHop = 6, vlan = 7, tos = 8
    case domain = 9
    case direction = 15, srcMask = 16, dstMask = 17, sampling = 18

    /// The configuration name (also the JSON key); the `Present` flag the value needs (nil: always
    /// known); the longest text of the value (UInt64: 20, UInt32: 10, UInt16: 5, UInt8: 3, an address
    /// in quotes: 41).
    public var spec: (name: String, present: FlowRecord.Present?, maxValueBytes: Int) {
        switch self {
        case .start: ("start", .flowStart, 20)
        case .end: ("end", .flowEnd, 20)
        case .inInterface: ("in_if", .inputInterface, 10)
        case .outInterface: ("out_if", .outputInterface, 10)
        case .srcAS: ("src_as", .srcAS, 10)
        case .dstAS: ("dst_as", .dstAS, 10)
        case .nextHop: ("nexthop", .nextHop, TextLimits.address + 2)
        case .vlan: ("vlan", .vlan, 5)
        case .tos: ("tos", .tos, 3)
        case .domain: ("domain", nil, 10)
        case .direction: ("dir", .direction, 3)
        case .srcMask: ("src_mask", .srcMask, 3)
        case .dstMask: ("dst_mask", .dstMask, 3)
        case .sampling: ("sampling", .samplingInterval, 10)
        }
    }

    public var name: String { spec.name }
}

/// A selection of `OutputField`s, one bit each (the field's raw value).
public struct OutputFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(_ field: OutputField) { rawValue = 1 << UInt32(field.rawValue) }

    /// The selection of `fields`: `OutputFields([.vlan, .tos])`.
    public init(_ fields: some Sequence<OutputField>) {
        rawValue = fields.reduce(0) { $0 | OutputFields($1).rawValue }
    }

    /// Every field, in output order, with its configuration name (which is also its JSON key).
    public static let catalog: [(name: String, field: OutputFields)] = OutputField.allCases.map { ($0.name, OutputFields($0)) }

    public static let all = OutputFields(OutputField.allCases)

    /// The fields written whatever the record has: those always known.
    public static let alwaysKnown = OutputFields(OutputField.allCases.filter { $0.spec.present == nil })

    /// Parses "start,end,in_if" (spaces around names are ignored, empty items skipped; "" is no field).
    public init(parsing list: some StringProtocol) throws(OutputFieldsError) {
        self = []
        for item in list.split(separator: ",") {
            let name = item.trimmingSpaces
            if name.isEmpty { continue }
            guard let entry = Self.catalog.first(where: { $0.name == name }) else {
                throw OutputFieldsError.unknownField(name: String(name), known: Self.catalog.map(\.name))
            }
            insert(entry.field)
        }
    }

    /// The configuration names of the selected fields, in output order.
    public var names: [String] { Self.catalog.filter { contains($0.field) }.map(\.name) }
}

/// A configuration error in the list of output fields.
public enum OutputFieldsError: Error, Equatable, CustomStringConvertible {
    case unknownField(name: String, known: [String])

    public var description: String {
        switch self {
        case let .unknownField(name, known):
            "unknown output field \"\(name)\"; known fields are \(known.joined(separator: ", "))"
        }
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        let last = lastIndex(where: { !isSpace($0) }) ?? first
        return self[first...last]
    }
}
