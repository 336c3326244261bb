/// The optional fields written after KFlow's ten, chosen by configuration (`output.fields`, a
/// comma-separated list of the names below). See docs/OUTPUT.md for each field's type and source.
///
/// Each option uses the raw value of the `FlowRecord.Present` bit it depends on, so the encoder finds
/// the fields to write with one AND; `domain` (always known) takes a bit `Present` does not use.
public struct OutputFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    private init(_ present: FlowRecord.Present) { rawValue = present.rawValue }

    public static let start = OutputFields(.flowStart)
    public static let end = OutputFields(.flowEnd)
    public static let inInterface = OutputFields(.inputInterface)
    public static let outInterface = OutputFields(.outputInterface)
    public static let srcAS = OutputFields(.srcAS)
    public static let dstAS = OutputFields(.dstAS)
    public static let nextHop = OutputFields(.nextHop)
    public static let vlan = OutputFields(.vlan)
    public static let tos = OutputFields(.tos)
    public static let domain = OutputFields(rawValue: 1 << 31)
    public static let direction = OutputFields(.direction)
    public static let srcMask = OutputFields(.srcMask)
    public static let dstMask = OutputFields(.dstMask)
    public static let sampling = OutputFields(.samplingInterval)

    /// Every field, in output order, with its configuration name (which is also its JSON key).
    public static let catalog: [(name: String, field: OutputFields)] = [
        ("start", .start), ("end", .end), ("in_if", .inInterface), ("out_if", .outInterface),
        ("src_as", .srcAS), ("dst_as", .dstAS), ("nexthop", .nextHop), ("vlan", .vlan), ("tos", .tos),
        ("domain", .domain), ("dir", .direction), ("src_mask", .srcMask), ("dst_mask", .dstMask),
        ("sampling", .sampling),
    ]

    public static let all: OutputFields = catalog.reduce(into: []) { $0.insert($1.field) }

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
