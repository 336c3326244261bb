import FlowModel
import WireFormat

/// The protocol a template definition is encoded in; its raw value is the header's version number.
package enum TemplateWireFormat: UInt8, Sendable {
    case netFlowV9 = 9
    case ipfix = 10
}

/// How a worker came to hold a template (shown by the master's /templates; carried in snapshots).
public enum TemplateSource: UInt8, Sendable, CaseIterable {
    /// Received from the exporter (a template set in a datagram), or refreshed from it since.
    case wire = 0
    /// Read from the template state directory at start (`templates.state.dir`).
    case disk = 1
    /// From another kflow node (reserved for the fleet's template topic).
    case fleet = 2
    /// From another worker of this node (a predecessor's or sibling's template exchange).
    case sibling = 3

    public var name: String {
        switch self {
        case .wire: "wire"
        case .disk: "disk"
        case .fleet: "fleet"
        case .sibling: "sibling"
        }
    }
}

/// A template as cached: its compiled plan, the protocol it came in (a snapshot replays the definition
/// through that protocol's decoder), when it was last (re)received and how this worker got it.
package struct CachedTemplate {
    package let plan: DecodePlan
    package let format: TemplateWireFormat
    package var lastRefreshedSeconds: UInt32
    package var source: TemplateSource
}

/// One observation domain (IPFIX) or source ID (NetFlow v9) of a transport session.
package final class DomainState {
    package var templates: [UInt16: CachedTemplate] = [:]
    /// Latest sampling interval from the domain's options records; 0 when none was seen.
    package var samplingInterval: UInt32 = 0
    /// systemInitTimeMilliseconds from the domain's options records; 0 when unknown.
    package var systemInitTimeMs: UInt64 = 0
    package var optionsRefreshedSeconds: UInt32 = 0
    /// The domain's export sequence numbers (IPFIX, NetFlow v9); carried in snapshots (extension kind 4).
    package var sequence = SequenceTracker()
    /// The rates of the samplers the domain's options records named (extension kind 3).
    package var samplers = SamplerTable()
}

/// A numbered stream of messages within a transport session, for the protocols without templates:
/// NetFlow v5's engine (`origin` none, `id` engine type and ID), sFlow's agent and sub-agent.
package struct SequenceStream: Hashable, Sendable {
    package var origin: IPAddress
    package var id: UInt32
    package init(origin: IPAddress = .none, id: UInt32) {
        self.origin = origin
        self.id = id
    }
}

/// One transport session: an exporter's address and UDP source port (RFC 7011 §10.3.1).
package final class TransportSession {
    package let exporter: ExporterAddress
    package var domains: [UInt32: DomainState] = [:]
    package var templateCount = 0
    /// What its templates cost (`DecodePlan.memoryCost`), and their definitions' octets (snapshot size).
    package var templateBytes = 0
    package var definitionBytes = 0
    package var lastUsedTick: UInt64 = 0
    package var lastActiveSeconds: UInt32 = 0
    /// When its first datagram reached this worker; 0 while it is known only from an import.
    package var firstActiveSeconds: UInt32 = 0
    package var statistics = ExporterStatistics()
    /// The template sources' state (`TemplateCache.unknownTemplateHandler`) when this session last
    /// looked an unknown template up there: nothing new was published since if it is unchanged.
    package var templateLookupEpoch: UInt64?
    /// Sequence numbers of the protocols without templates, so without a `DomainState`: NetFlow v5 per
    /// engine, sFlow per agent and sub-agent. At most `maxSequenceStreams` (real exporters have one or a
    /// few), others untracked.
    package var streamSequences: [SequenceStream: SequenceTracker] = [:]
    package static let maxSequenceStreams = 16

    /// Feeds one message's sequence number to its stream's tracker (see `SequenceTracker.observe`); nil
    /// when the session already tracks `maxSequenceStreams` others.
    package func observeSequence(
        of stream: SequenceStream, _ sequence: UInt32, count: UInt32?, uptimeMs: UInt32?
    ) -> SequenceTracker.Counts? {
        guard streamSequences[stream] != nil || streamSequences.count < Self.maxSequenceStreams else { return nil }
        return streamSequences[stream, default: SequenceTracker()].observe(sequence, count: count, uptimeMs: uptimeMs)
    }
    /// `sampling.override`'s rate for this exporter (0: none), resolved once when the session is created.
    package var samplingOverride: UInt32 = 0
    /// Links of the cache's recency list this session is on (with or without templates); the cache
    /// alone changes them, and unlinks a session when it forgets it.
    fileprivate var newer: TransportSession?
    fileprivate var older: TransportSession?

    package init(exporter: ExporterAddress) { self.exporter = exporter }
}

/// Sessions from the most to the least recently used, linked through the sessions themselves, so
/// touching, adding, removing and finding the least recently used are O(1).
private struct RecencyList {
    private(set) var newest: TransportSession?
    private(set) var oldest: TransportSession?

    mutating func pushNewest(_ session: TransportSession) {
        session.older = newest
        session.newer = nil
        newest?.newer = session
        newest = session
        if oldest == nil { oldest = session }
    }

    mutating func unlink(_ session: TransportSession) {
        if let newer = session.newer { newer.older = session.older } else { newest = session.older }
        if let older = session.older { older.newer = session.newer } else { oldest = session.newer }
        session.newer = nil
        session.older = nil
    }

    /// Breaks the strong links between sessions so they are freed with the cache.
    mutating func removeAll() {
        var current = newest
        while let session = current {
            current = session.older
            session.newer = nil
            session.older = nil
        }
        newest = nil
        oldest = nil
    }
}

/// Templates per (transport session, observation domain), with lifetimes and limits
/// (RFC 7011 §8, RFC 3954 §5–6). Owned by one `FlowDecoder`; not thread-safe.
///
/// Every limit is checked where things are added, each refusal and eviction counted:
/// - sessions: `maxSessions` in total, `maxSessionsPerAddress` per exporter address. A new session at
///   its address's quota evicts that address's least recently used session; at the total limit, the
///   least recently used session *without* templates. Sessions holding templates are never evicted for
///   a new session; when all hold templates, an IPFIX/v9 datagram of a new session is dropped (counted).
/// - templates: count per session and in total, and their cost in bytes per session and in total. A new
///   template at a total limit evicts the least recently used *other* session holding templates.
package final class TemplateCache {
    package let configuration: DecoderConfiguration
    package private(set) var sessions: [ExporterAddress: TransportSession] = [:]
    /// The sessions of each exporter address (at most `maxSessionsPerAddress`).
    private var sessionsOfAddress: [IPAddress: [TransportSession]] = [:]
    private var withTemplates = RecencyList()
    private var withoutTemplates = RecencyList()
    package private(set) var templateCount = 0
    /// What the cached templates cost, in bytes (`DecodePlan.memoryCost`), and their definitions' octets.
    package private(set) var templateBytes = 0
    package private(set) var definitionBytes = 0
    /// Bumped whenever a template is added, redefined, expired or evicted, or a domain's sampling state
    /// changes value: a template snapshot taken at one generation is current until it moves.
    package private(set) var generation: UInt64 = 0
    /// Set while a snapshot is imported: sessions heard from live outrank ones read from a snapshot, so
    /// an import never evicts.
    package var isImporting = false
    /// What an import stores as each template's source.
    package var importSource = TemplateSource.sibling
    /// Asked when a data set names a template the session's domain lacks, before the set is counted as
    /// unknown: may import it (from sibling workers' or the fleet's snapshots) and returns true when it
    /// added anything. Nil: no such sources. Only the miss path calls it.
    package var unknownTemplateHandler: ((TransportSession, _ nowSeconds: UInt32, inout DecodeStatistics) -> Bool)?
    private var tick: UInt64 = 0
    /// Most datagrams come from the session of the previous one: skip the hash lookup then.
    private var lastSession: TransportSession?
    private var lastSweepSeconds: UInt32?

    /// How often (seconds of `nowSeconds`) the whole cache is swept for expired templates.
    package static let sweepIntervalSeconds: UInt32 = 60

    package init(configuration: DecoderConfiguration) { self.configuration = configuration }

    deinit {
        withTemplates.removeAll()
        withoutTemplates.removeAll()
    }

    /// The session of `exporter`, created when new if the session limits allow (see the type's
    /// comment); nil when every session that could make room holds templates.
    package func session(for exporter: ExporterAddress, nowSeconds: UInt32, statistics: inout DecodeStatistics) -> TransportSession? {
        tick &+= 1
        if let last = lastSession, last.exporter == exporter {
            last.lastUsedTick = tick
            last.lastActiveSeconds = nowSeconds
            return last
        }
        return switchSession(to: exporter, nowSeconds: nowSeconds, statistics: &statistics)
    }

    /// `session(for:)` when the datagram is not from the previous one's session; out of line, so that
    /// the common case stays small where it is inlined.
    @inline(never)
    private func switchSession(
        to exporter: ExporterAddress, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) -> TransportSession? {
        let session: TransportSession
        if let existing = sessions[exporter] {
            session = existing
            relist(session)
        } else {
            guard makeRoomForSession(of: exporter.address, statistics: &statistics) else { return nil }
            session = add(exporter)
        }
        session.lastUsedTick = tick
        session.lastActiveSeconds = nowSeconds
        // A session's first datagram always comes through here: an import never sets `lastSession`.
        if session.firstActiveSeconds == 0 { session.firstActiveSeconds = nowSeconds }
        lastSession = session
        return session
    }

    /// The session of `exporter` for a snapshot import, created when new if `maxSessions` and the
    /// address quota allow; nil at a limit. An import never evicts.
    package func sessionForImport(_ exporter: ExporterAddress, nowSeconds: UInt32) -> TransportSession? {
        if let existing = sessions[exporter] { return existing }
        guard sessions.count < configuration.maxSessions,
            sessionsOfAddress[exporter.address, default: []].count < configuration.maxSessionsPerAddress
        else { return nil }
        tick &+= 1
        let session = add(exporter)
        session.lastUsedTick = tick
        session.lastActiveSeconds = nowSeconds
        return session
    }

    /// The cached entry of template `id`, expired or not, without touching it.
    package func cachedTemplate(_ id: UInt16, domain: UInt32, exporter: ExporterAddress) -> CachedTemplate? {
        sessions[exporter]?.domains[domain]?.templates[id]
    }

    /// The live template `id` of `domain`, or nil when unknown or expired (expired ones are removed).
    package func template(
        _ id: UInt16, domain: UInt32, in session: TransportSession, nowSeconds: UInt32,
        statistics: inout DecodeStatistics
    ) -> DecodePlan? {
        guard let state = session.domains[domain], let cached = state.templates[id] else { return nil }
        if isExpired(cached.lastRefreshedSeconds, now: nowSeconds) {
            expire(id, of: state, in: session, statistics: &statistics)
            return nil
        }
        return cached.plan
    }

    @inline(never)
    private func expire(_ id: UInt16, of state: DomainState, in session: TransportSession, statistics: inout DecodeStatistics) {
        guard let cached = state.templates.removeValue(forKey: id) else { return }
        account(session, removing: cached.plan)
        statistics.templatesExpired &+= 1
    }

    /// The domain's state if it exists (it does once a template was stored for it).
    package func domainState(_ domain: UInt32, in session: TransportSession) -> DomainState? {
        session.domains[domain]
    }

    /// When the template is already cached with exactly this definition, refreshes its lifetime and
    /// returns true; the caller then need not compile anything.
    package func refreshIfUnchanged(
        _ id: UInt16, isOptions: Bool, definition: UnsafeRawBufferPointer, domain: UInt32,
        in session: TransportSession, nowSeconds: UInt32
    ) -> Bool {
        guard let state = session.domains[domain], var cached = state.templates[id],
            cached.plan.isOptions == isOptions,
            cached.plan.definition.elementsEqual(definition)
        else { return false }
        cached.lastRefreshedSeconds = nowSeconds
        if !isImporting { cached.source = .wire }  // the exporter itself has now sent it
        state.templates[id] = cached
        return true
    }

    /// Stores a newly compiled template: replaces a definition with the same ID, or adds it, if the
    /// per-session and total limits (count and bytes) allow. A redefinition the limits refuse removes
    /// the old definition too: data sets must not be read with a template their exporter replaced.
    package func store(
        _ plan: DecodePlan, format: TemplateWireFormat, domain: UInt32, in session: TransportSession, nowSeconds: UInt32,
        statistics: inout DecodeStatistics
    ) {
        let held = session.domains[domain]?.templates[plan.templateID]
        let addedCount = held == nil ? 1 : 0
        let addedBytes = plan.memoryCost - (held?.plan.memoryCost ?? 0)
        let fitsSession =
            session.templateCount + addedCount <= configuration.maxTemplatesPerSession
            && session.templateBytes + addedBytes <= configuration.maxTemplateBytesPerSession
        if fitsSession {
            makeRoomForTemplate(keeping: session, count: addedCount, bytes: addedBytes, statistics: &statistics)
        }
        guard fitsSession, templateCount + addedCount <= configuration.maxTemplatesTotal,
            templateBytes + addedBytes <= configuration.maxTemplateBytesTotal
        else {
            statistics.templatesRejectedByLimit &+= 1
            if let held, let state = session.domains[domain] {
                state.templates[plan.templateID] = nil
                account(session, removing: held.plan)
            }
            return
        }
        let state: DomainState
        if let existing = session.domains[domain] {
            state = existing
        } else {
            state = DomainState()
            session.domains[domain] = state
        }
        state.templates[plan.templateID] = CachedTemplate(
            plan: plan, format: format, lastRefreshedSeconds: nowSeconds, source: isImporting ? importSource : .wire)
        if let held { account(session, removing: held.plan) }
        account(session, adding: plan)
        if held != nil {
            statistics.templatesReplaced &+= 1
        } else {
            statistics.templatesAdded &+= 1
        }
    }

    /// Records what an options data set said about its domain.
    package func applyOptions(_ values: OptionsValues, to state: DomainState, nowSeconds: UInt32) {
        if values.samplingInterval != 0, values.samplingInterval != state.samplingInterval {
            state.samplingInterval = values.samplingInterval
            generation &+= 1
        }
        for sampler in values.samplers where state.samplers.set(sampler: sampler.id, rate: sampler.rate) {
            generation &+= 1
        }
        if values.systemInitTimeMs != 0, values.systemInitTimeMs != state.systemInitTimeMs {
            state.systemInitTimeMs = values.systemInitTimeMs
            generation &+= 1
        }
        state.optionsRefreshedSeconds = nowSeconds
    }

    /// Sweeps every `sweepIntervalSeconds`: removes expired templates, then domains left without
    /// templates, then sessions without domains that were idle for a whole template lifetime.
    package func sweepIfDue(nowSeconds: UInt32, statistics: inout DecodeStatistics) {
        if let last = lastSweepSeconds, nowSeconds >= last, nowSeconds - last < Self.sweepIntervalSeconds { return }
        lastSweepSeconds = nowSeconds
        sweep(nowSeconds: nowSeconds, statistics: &statistics)
    }

    package func sweep(nowSeconds: UInt32, statistics: inout DecodeStatistics) {
        var idleSessions: [TransportSession] = []
        for session in sessions.values {
            for (domain, state) in session.domains {
                for (id, cached) in state.templates where isExpired(cached.lastRefreshedSeconds, now: nowSeconds) {
                    state.templates[id] = nil
                    account(session, removing: cached.plan)
                    statistics.templatesExpired &+= 1
                }
                if state.templates.isEmpty { session.domains[domain] = nil }
            }
            if session.domains.isEmpty, isExpired(session.lastActiveSeconds, now: nowSeconds) {
                idleSessions.append(session)
            }
        }
        for session in idleSessions { remove(session) }
    }

    package func isExpired(_ refreshed: UInt32, now: UInt32) -> Bool {
        // A clock that went backwards keeps templates alive rather than dropping them all.
        now > refreshed && now - refreshed > configuration.templateLifetimeSeconds
    }

    /// The size `TemplateSnapshot.write` would produce now, in octets, without writing it:
    /// O(sessions + domains), so an oversized snapshot can be skipped before it is serialised.
    package var snapshotSize: Int {
        var size = TemplateSnapshot.headerLength + 4 + definitionBytes + templateCount * TemplateSnapshot.templateEntryLength
        var session = withTemplates.newest
        while let current = session {
            size += TemplateSnapshot.sessionEntryLength
            for state in current.domains.values where !state.templates.isEmpty {
                size += TemplateSnapshot.domainEntryLength - 2 + TemplateSnapshot.extensionsLength(of: state)
            }
            session = current.older
        }
        return size
    }

    // MARK: - Limits

    /// Frees a session slot for a new session of `address` (see the type's comment); false when none
    /// may be freed.
    private func makeRoomForSession(of address: IPAddress, statistics: inout DecodeStatistics) -> Bool {
        if let peers = sessionsOfAddress[address], peers.count >= configuration.maxSessionsPerAddress {
            // A bounded scan (at most the quota): the address's idle sessions go first, then its oldest.
            var victim = peers[0]
            for peer in peers.dropFirst() {
                let peerIdle = peer.templateCount == 0, victimIdle = victim.templateCount == 0
                if peerIdle != victimIdle ? peerIdle : peer.lastUsedTick < victim.lastUsedTick { victim = peer }
            }
            remove(victim)
            statistics.sessionsEvictedByReason[SessionEvictionReason.addressQuota.rawValue] &+= 1
            return true
        }
        guard sessions.count >= configuration.maxSessions else { return true }
        guard let victim = withoutTemplates.oldest else { return false }
        remove(victim)
        statistics.sessionsEvictedByReason[SessionEvictionReason.sessionLimit.rawValue] &+= 1
        return true
    }

    /// At a total limit (count or bytes), evicts the least recently used *other* sessions holding
    /// templates until `count` more templates of `bytes` more fit, so a flood from many source ports
    /// cannot lock every other exporter out until its templates expire; the per-session limits still
    /// bound what one session may hold. Never during an import.
    private func makeRoomForTemplate(
        keeping session: TransportSession, count: Int, bytes: Int, statistics: inout DecodeStatistics
    ) {
        guard !isImporting, bytes <= configuration.maxTemplateBytesTotal else { return }
        while templateCount + count > configuration.maxTemplatesTotal
            || templateBytes + bytes > configuration.maxTemplateBytesTotal
        {
            guard let oldest = withTemplates.oldest,
                let victim = oldest !== session ? oldest : oldest.newer
            else { return }
            remove(victim)
            statistics.sessionsEvictedByReason[SessionEvictionReason.templateLimit.rawValue] &+= 1
        }
    }

    // MARK: - Bookkeeping

    private func add(_ exporter: ExporterAddress) -> TransportSession {
        let session = TransportSession(exporter: exporter)
        session.samplingOverride = configuration.sampling.overrideRate(for: exporter.address.unmapped)
        sessions[exporter] = session
        sessionsOfAddress[exporter.address, default: []].append(session)
        withoutTemplates.pushNewest(session)
        return session
    }

    /// Moves a session to the newest end of the list it belongs on (by whether it holds templates).
    private func relist(_ session: TransportSession) {
        if session.templateCount > 0 {
            withTemplates.unlink(session)
            withTemplates.pushNewest(session)
        } else {
            withoutTemplates.unlink(session)
            withoutTemplates.pushNewest(session)
        }
    }

    private func account(_ session: TransportSession, adding plan: DecodePlan) {
        if session.templateCount == 0 {
            withoutTemplates.unlink(session)
            withTemplates.pushNewest(session)
        }
        session.templateCount += 1
        session.templateBytes += plan.memoryCost
        session.definitionBytes += plan.definition.count
        templateCount += 1
        templateBytes += plan.memoryCost
        definitionBytes += plan.definition.count
        generation &+= 1
    }

    private func account(_ session: TransportSession, removing plan: DecodePlan) {
        session.templateCount -= 1
        session.templateBytes -= plan.memoryCost
        session.definitionBytes -= plan.definition.count
        templateCount -= 1
        templateBytes -= plan.memoryCost
        definitionBytes -= plan.definition.count
        generation &+= 1
        if session.templateCount == 0 {
            withTemplates.unlink(session)
            withoutTemplates.pushNewest(session)
        }
    }

    private func remove(_ session: TransportSession) {
        guard sessions.removeValue(forKey: session.exporter) != nil else { return }
        let address = session.exporter.address
        if var peers = sessionsOfAddress[address] {
            peers.removeAll { $0 === session }
            sessionsOfAddress[address] = peers.isEmpty ? nil : peers
        }
        if session.templateCount > 0 {
            withTemplates.unlink(session)
            generation &+= 1
        } else {
            withoutTemplates.unlink(session)
        }
        templateCount -= session.templateCount
        templateBytes -= session.templateBytes
        definitionBytes -= session.definitionBytes
        session.domains = [:]
        session.templateCount = 0
        session.templateBytes = 0
        session.definitionBytes = 0
        if lastSession === session { lastSession = nil }
    }
}

extension TemplateCache {
    /// What every decoder does once a message header checks out: find (or create) the exporter's
    /// session and count the datagram and its domain. Nil when no session can be had (the caller
    /// decides: v5 needs none, IPFIX and v9 drop the datagram).
    package func beginMessage(
        from exporter: ExporterAddress, domain: UInt32, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) -> TransportSession? {
        guard let session = session(for: exporter, nowSeconds: nowSeconds, statistics: &statistics) else { return nil }
        session.statistics.datagrams &+= 1
        return session
    }
}
