import FlowModel
import WireFormat
import Templates

/// A template snapshot another process publishes and keeps current (a sibling worker's template
/// exchange): `sequence` changes with every publish, `read` returns a consistent copy or nil.
public protocol TemplateSnapshotSource: AnyObject {
    var sequence: UInt64 { get }
    func read() -> [UInt8]?
}

/// The snapshots of the other workers of this node, each read and parsed once per publish and indexed by
/// transport session, so a worker meeting an unknown template (one exporter spread over every worker by
/// `server.balance=round-robin`, or templates the fleet's topic brought to another worker) finds it
/// within a publish (100 ms) instead of dropping data sets until the exporter re-sends it.
final class SiblingTemplates {
    private struct Source {
        let source: any TemplateSnapshotSource
        var parsedSequence: UInt64?
        var sessions: [ExporterAddress: [SnapshotDomain]] = [:]
        /// What reading the rest of the snapshot met, reported with the first import from it.
        var readError: TemplateSnapshotError?
    }

    private var sources: [Source]
    var wait: SiblingWait?

    init(_ sources: [any TemplateSnapshotSource], wait: SiblingWait?) {
        self.sources = sources.map { Source(source: $0) }
        self.wait = wait
    }

    /// Moves whenever any source publishes: a session that looked up at one epoch need not look again
    /// before it moves (this is the lookups' rate limit).
    var epoch: UInt64 { sources.reduce(0) { $0 &+ $1.source.sequence } }

    /// Re-reads the sources that published since they were last read; returns their indices. A source
    /// being rewritten throughout the read keeps its previous contents until the next try.
    func refresh() -> [Int] {
        var changed: [Int] = []
        for i in sources.indices {
            let sequence = sources[i].source.sequence
            guard sequence != sources[i].parsedSequence, sequence & 1 == 0, let bytes = sources[i].source.read() else { continue }
            sources[i].parsedSequence = sequence
            sources[i].sessions = [:]
            sources[i].readError = nil
            // Sequence 0 or empty: nothing published yet, not a bad snapshot.
            guard sequence != 0, !bytes.isEmpty else { continue }
            let (domains, error) = bytes.withUnsafeBytes { TemplateSnapshot.read($0) }
            for domain in domains { sources[i].sessions[domain.exporter, default: []].append(domain) }
            sources[i].readError = error
            changed.append(i)
        }
        return changed
    }

    /// What the sources hold for `exporter`, source by source.
    func domains(of exporter: ExporterAddress) -> [[SnapshotDomain]] {
        sources.compactMap { $0.sessions[exporter] }
    }

    /// Every session source `index` holds, with what reading it met.
    func sessions(ofSource index: Int) -> (sessions: [ExporterAddress: [SnapshotDomain]], readError: TemplateSnapshotError?) {
        (sources[index].sessions, sources[index].readError)
    }
}

/// With `server.balance=round-robin` the datagram carrying a template and the exporter's next data sets
/// reach different workers at once: the data's worker may meet the template before its sibling has even
/// published it. Such a worker waits for a sibling's next publish (polling its sequence) up to
/// `maxWaitNs` before dropping the set as unknown — within a budget of `budgetNs` of waiting per second,
/// so a template nobody will ever publish costs at most that share of the worker's time.
public struct SiblingWait {
    public var maxWaitNs: UInt64
    public var budgetNs: UInt64
    /// Monotonic nanoseconds, and a short sleep between looks (the worker's own, from SystemKit).
    public var clock: () -> UInt64
    public var pause: () -> Void
    private var windowStartNs: UInt64 = 0
    private var spentNs: UInt64 = 0

    public init(maxWaitNs: UInt64, budgetNs: UInt64, clock: @escaping () -> UInt64, pause: @escaping () -> Void) {
        self.maxWaitNs = maxWaitNs
        self.budgetNs = budgetNs
        self.clock = clock
        self.pause = pause
    }

    /// Waits until `changed()` or the wait (or what is left of this second's budget) runs out; true when
    /// something changed.
    mutating func wait(until changed: () -> Bool) -> Bool {
        let start = clock()
        if start &- windowStartNs >= 1_000_000_000 {
            windowStartNs = start
            spentNs = 0
        }
        guard spentNs < budgetNs else { return false }
        let deadline = start + min(maxWaitNs, budgetNs - spentNs)
        var now = start
        var seen = false
        while now < deadline {
            pause()
            now = clock()
            if changed() {
                seen = true
                break
            }
        }
        spentNs += now &- start
        return seen
    }
}

extension FlowDecoder {
    /// Makes the other workers' snapshots a source of templates: a data set whose template this decoder
    /// lacks is looked up there (the whole session's templates and state are imported) before it is
    /// counted as unknown. A session looks again only after some source published since its last look,
    /// so a template nobody knows costs one lookup per publish, not one per data set.
    /// With `wait`, a lookup that finds nothing waits for a sibling's next publish (see `SiblingWait`).
    public func useSiblingTemplates(_ sources: [any TemplateSnapshotSource], wait: SiblingWait? = nil) {
        guard !sources.isEmpty else {
            siblings = nil
            cache.unknownTemplateHandler = nil
            return
        }
        let siblings = SiblingTemplates(sources, wait: wait)
        self.siblings = siblings
        cache.unknownTemplateHandler = { [unowned self] session, nowSeconds, statistics in
            self.lookUpSiblings(session, in: siblings, nowSeconds: nowSeconds, statistics: &statistics)
        }
    }

    private func lookUpSiblings(
        _ session: TransportSession, in siblings: SiblingTemplates, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) -> Bool {
        var epoch = siblings.epoch
        guard session.templateLookupEpoch != epoch else { return false }
        var imported = 0
        for attempt in 0..<2 {
            session.templateLookupEpoch = epoch
            statistics.siblingLookups &+= 1
            _ = siblings.refresh()
            for domains in siblings.domains(of: session.exporter) {
                imported += importDomains(domains, readError: nil, nowSeconds: nowSeconds, statistics: &statistics)
            }
            // Nothing yet: once, wait for a sibling's next publish and look again.
            guard imported == 0, attempt == 0,
                siblings.wait?.wait(until: { siblings.epoch != epoch }) == true
            else { break }
            epoch = siblings.epoch
        }
        statistics.templatesFromSiblings &+= UInt64(imported)
        statistics.templatesImported &+= UInt64(imported)
        return imported > 0
    }

    /// For sessions spread over every worker (`server.balance=round-robin`): takes over from the sources
    /// that published since the last call what they learned about sessions this decoder holds — newer
    /// templates, options-derived sampling state, other per-domain state — so each worker decodes such a
    /// session as the one that last heard its exporter. Sessions not held here are left alone. Returns
    /// the templates imported.
    @discardableResult
    public func syncSiblingSessions(nowSeconds: UInt32) -> Int {
        guard let siblings else { return 0 }
        var imported = 0
        for index in siblings.refresh() {
            let (sessions, readError) = siblings.sessions(ofSource: index)
            var held: [SnapshotDomain] = []
            for (exporter, domains) in sessions where cache.sessions[exporter] != nil { held += domains }
            guard !held.isEmpty || readError != nil else { continue }
            imported += importDomains(held, readError: readError, nowSeconds: nowSeconds, statistics: &statistics)
        }
        statistics.templatesFromSiblings &+= UInt64(imported)
        statistics.templatesImported &+= UInt64(imported)
        return imported
    }
}
