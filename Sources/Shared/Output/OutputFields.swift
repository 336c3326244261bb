import FlowModel

/// The optional fields written after KFlow's ten, chosen by configuration (`output.fields`, a
/// comma-separated list of the names below). See docs/OUTPUT.md for each field's type and source.
///
/// Each option uses the raw value of the `FlowRecord.Present` bit it depends on, so the encoder finds
/// the fields to write with one AND; `domain` (always known) takes a bit `Present` does not use.
public struct OutputFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable init(_ present: FlowRecord.Present) { rawValue = present.rawValue }

    @inlinable public static var start: OutputFields { OutputFields(.flowStart) }
    @inlinable public static var end: OutputFields { OutputFields(.flowEnd) }
    @inlinable public static var inInterface: OutputFields { OutputFields(.inputInterface) }
    @inlinable public static var outInterface: OutputFields { OutputFields(.outputInterface) }
    @inlinable public static var srcAS: OutputFields { OutputFields(.srcAS) }
    @inlinable public static var dstAS: OutputFields { OutputFields(.dstAS) }
    @inlinable public static var nextHop: OutputFields { OutputFields(.nextHop) }
    @inlinable public static var vlan: OutputFields { OutputFields(.vlan) }
    @inlinable public static var tos: OutputFields { OutputFields(.tos) }
    @inlinable public static var domain: OutputFields { OutputFields(rawValue: 1 << 31) }
    @inlinable public static var direction: OutputFields { OutputFields(.direction) }
    @inlinable public static var srcMask: OutputFields { OutputFields(.srcMask) }
    @inlinable public static var dstMask: OutputFields { OutputFields(.dstMask) }
    @inlinable public static var sampling: OutputFields { OutputFields(.samplingInterval) }

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
