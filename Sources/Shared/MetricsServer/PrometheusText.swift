import ProcessKit
/// Builds a Prometheus text exposition (format 0.0.4): each family's HELP and TYPE once, then samples.
public struct PrometheusText {
    public typealias Kind = MetricKind
    private(set) public var text = ""
    private var declared: Set<String> = []

    public init() {}

    public mutating func add(_ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [], value: UInt64) {
        add(name, kind, help: help, labels: labels, rendered: String(value))
    }

    public mutating func add(_ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [], value: Double) {
        add(name, kind, help: help, labels: labels, rendered: value.isFinite ? String(value) : "NaN")
    }

    /// Declares a family with no samples yet (so dashboards see it from the start).
    public mutating func declare(_ name: String, _ kind: Kind, help: String) {
        guard declared.insert(name).inserted else { return }
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    private mutating func add(_ name: String, _ kind: Kind, help: String, labels: [(String, String)], rendered: String) {
        declare(name, kind, help: help)
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(rendered)\n"
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
