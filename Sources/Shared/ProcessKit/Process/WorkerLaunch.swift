/// Everything a worker needs to start, and the one place that says how it travels from master to
/// worker. The descriptors go in one fixed order (`descriptors`: `Spawn` makes the i-th fd `3 + i` in
/// the child); the arguments carry the slot, the generation and how many descriptors of each list
/// there are. The worker decodes the same order back (`init(arguments:)`), so no descriptor number is
/// ever written out or computed by hand on either side.
public struct WorkerLaunch: Equatable, Sendable {
    public var slot: Int
    public var generation: UInt64
    /// The SO_REUSEPORT sockets this worker reads.
    public var sockets: [Int32]
    /// Its counters (`WorkerSegment`).
    public var segment: Int32
    /// The read end of the pipe carrying its configuration.
    public var configuration: Int32
    /// Where it publishes its template snapshots (`TemplateExchange`).
    public var templateExchange: Int32
    /// Its predecessors' exchanges, to import at start.
    public var templateSources: [Int32]
    /// The exchanges of the other workers of its generation, read for its whole life: a template one of
    /// them learned is looked up there before a data set counts as unknown.
    public var siblings: [Int32]

    /// The first descriptor a child inherits (after stdin, stdout, stderr).
    public static let firstInheritedDescriptor: Int32 = 3
    /// More descriptors in a list than any master passes: such arguments are not a launch.
    static let maxListCount = 1024

    public init(slot: Int, generation: UInt64, sockets: [Int32], segment: Int32, configuration: Int32,
                templateExchange: Int32, templateSources: [Int32], siblings: [Int32] = []) {
        self.slot = slot
        self.generation = generation
        self.sockets = sockets
        self.segment = segment
        self.configuration = configuration
        self.templateExchange = templateExchange
        self.templateSources = templateSources
        self.siblings = siblings
    }

    /// The descriptors to pass to `Spawn.start`, in the order the worker expects them.
    public var descriptors: [Int32] { sockets + [segment, configuration, templateExchange] + templateSources + siblings }

    /// The worker's command line (after the executable).
    public var arguments: [String] {
        ["--slot", String(slot), "--generation", String(generation),
         "--sockets", String(sockets.count), "--template-sources", String(templateSources.count),
         "--siblings", String(siblings.count)]
    }

    /// This launch as the worker sees it: every descriptor at the number `Spawn` gives it.
    public var inherited: WorkerLaunch {
        var next = Self.firstInheritedDescriptor
        func take(_ count: Int) -> [Int32] {
            defer { next += Int32(count) }
            return (0..<Int32(count)).map { next + $0 }
        }
        return WorkerLaunch(slot: slot, generation: generation, sockets: take(sockets.count), segment: take(1)[0],
                            configuration: take(1)[0], templateExchange: take(1)[0],
                            templateSources: take(templateSources.count), siblings: take(siblings.count))
    }

    /// Decodes a worker's command line (`arguments`) into the descriptors it inherited.
    public init(arguments: [String]) throws(WorkerLaunchError) {
        var values: [String: String] = [:]
        var i = 0
        while i < arguments.count {
            let name = arguments[i]
            guard name.hasPrefix("--"), Self.options.contains(String(name.dropFirst(2))) else {
                throw WorkerLaunchError("unexpected argument '\(name)'")
            }
            guard i + 1 < arguments.count else { throw WorkerLaunchError("\(name) needs a value") }
            guard values.updateValue(arguments[i + 1], forKey: String(name.dropFirst(2))) == nil else {
                throw WorkerLaunchError("\(name) is given twice")
            }
            i += 2
        }
        func number(_ key: String, atMost limit: UInt64 = .max) throws(WorkerLaunchError) -> UInt64 {
            guard let text = values[key] else { throw WorkerLaunchError("--\(key) is missing") }
            guard let v = UInt64(text), v <= limit else {
                throw WorkerLaunchError("--\(key) needs a number up to \(limit), got '\(text)'")
            }
            return v
        }
        let slot = Int(try number("slot", atMost: UInt64(Int.max)))
        let generation = try number("generation")
        let socketCount = Int(try number("sockets", atMost: UInt64(Self.maxListCount)))
        guard socketCount > 0 else { throw WorkerLaunchError("--sockets needs at least one socket") }
        let sourceCount = Int(try number("template-sources", atMost: UInt64(Self.maxListCount)))
        let siblingCount = Int(try number("siblings", atMost: UInt64(Self.maxListCount)))
        // The shape (how many of each) is all the arguments say; the numbers follow from the order.
        self = WorkerLaunch(slot: slot, generation: generation, sockets: Array(repeating: -1, count: socketCount),
                            segment: -1, configuration: -1, templateExchange: -1,
                            templateSources: Array(repeating: -1, count: sourceCount),
                            siblings: Array(repeating: -1, count: siblingCount)).inherited
    }

    static let options: Set<String> = ["slot", "generation", "sockets", "template-sources", "siblings"]
}

/// A worker command line that is not a launch from a master.
public struct WorkerLaunchError: Error, CustomStringConvertible, Equatable, Sendable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { "usage: \(reason) (kflow-worker is started by kflow-master)" }
}
