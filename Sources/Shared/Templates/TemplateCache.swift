/// The protocol a template definition is encoded in; its raw value is the header's version number.
enum TemplateWireFormat: UInt8, Sendable {
    case netFlowV9 = 9
    case ipfix = 10
}

/// A template as cached: its compiled plan, the protocol it came in (a snapshot replays the definition
/// through that protocol's decoder) and when it was last (re)received.
struct CachedTemplate {
    let plan: DecodePlan
    let format: TemplateWireFormat
    var lastRefreshedSeconds: UInt32
}

/// One observation domain (IPFIX) or source ID (NetFlow v9) of a transport session.
final class DomainState {
    var templates: [UInt16: CachedTemplate] = [:]
    /// Latest sampling interval from the domain's options records; 0 when none was seen.
    var samplingInterval: UInt32 = 0
    /// systemInitTimeMilliseconds from the domain's options records; 0 when unknown.
    var systemInitTimeMs: UInt64 = 0
    var optionsRefreshedSeconds: UInt32 = 0
}

/// One transport session: an exporter's address and UDP source port (RFC 7011 §10.3.1).
final class TransportSession {
    let exporter: ExporterAddress
    var domains: [UInt32: DomainState] = [:]
    var templateCount = 0
    var lastUsedTick: UInt64 = 0
    var lastActiveSeconds: UInt32 = 0
    var statistics = ExporterStatistics()

    /// The statistics list of domains is for metrics; bounded so garbage headers cannot grow it.
    static let maxListedDomains = 64

    init(exporter: ExporterAddress) { self.exporter = exporter }

    func noteDomain(_ domain: UInt32) {
        if statistics.observationDomains.last == domain || statistics.observationDomains.contains(domain) { return }
        if statistics.observationDomains.count < Self.maxListedDomains { statistics.observationDomains.append(domain) }
    }
}

/// Templates per (transport session, observation domain), with lifetimes and limits
/// (RFC 7011 §8, RFC 3954 §5–6). Owned by one `FlowDecoder`; not thread-safe.
final class TemplateCache {
    let configuration: DecoderConfiguration
    private(set) var sessions: [ExporterAddress: TransportSession] = [:]
    private(set) var templateCount = 0
    /// Bumped whenever a template is added, redefined, expired or evicted, or a domain's sampling state
    /// changes value: a template snapshot taken at one generation is current until it moves.
    private(set) var generation: UInt64 = 0
    /// The protocol of the datagram being decoded, set by `FlowDecoder` before it dispatches: templates
    /// stored meanwhile are tagged with it.
    var wireFormat = TemplateWireFormat.ipfix
    private var tick: UInt64 = 0
    /// Most datagrams come from the session of the previous one: skip the hash lookup then.
    private var lastSession: TransportSession?
    private var lastSweepSeconds: UInt32?

    /// How often (seconds of `nowSeconds`) the whole cache is swept for expired templates.
    static let sweepIntervalSeconds: UInt32 = 60

    init(configuration: DecoderConfiguration) { self.configuration = configuration }

    /// The session of `exporter`, created when new (evicting the least recently used one at the limit).
    func session(for exporter: ExporterAddress, nowSeconds: UInt32, statistics: inout DecodeStatistics) -> TransportSession {
        tick &+= 1
        if let last = lastSession, last.exporter == exporter {
            last.lastUsedTick = tick
            last.lastActiveSeconds = nowSeconds
            return last
        }
        let session: TransportSession
        if let existing = sessions[exporter] {
            session = existing
        } else {
            if sessions.count >= configuration.maxSessions { evictLeastRecentlyUsed(&statistics) }
            session = TransportSession(exporter: exporter)
            sessions[exporter] = session
        }
        session.lastUsedTick = tick
        session.lastActiveSeconds = nowSeconds
        lastSession = session
        return session
    }

    /// The session of `exporter` for a snapshot import, created when new if `maxSessions` allows; nil at
    /// the limit. An import never evicts: sessions heard from live outrank ones read from a snapshot.
    func sessionForImport(_ exporter: ExporterAddress, nowSeconds: UInt32) -> TransportSession? {
        if let existing = sessions[exporter] { return existing }
        guard sessions.count < configuration.maxSessions else { return nil }
        tick &+= 1
        let session = TransportSession(exporter: exporter)
        session.lastUsedTick = tick
        session.lastActiveSeconds = nowSeconds
        sessions[exporter] = session
        return session
    }

    /// The cached entry of template `id`, expired or not, without touching it.
    func cachedTemplate(_ id: UInt16, domain: UInt32, exporter: ExporterAddress) -> CachedTemplate? {
        sessions[exporter]?.domains[domain]?.templates[id]
    }

    /// The live template `id` of `domain`, or nil when unknown or expired (expired ones are removed).
    func template(
        _ id: UInt16, domain: UInt32, in session: TransportSession, nowSeconds: UInt32,
        statistics: inout DecodeStatistics
    ) -> DecodePlan? {
        guard let state = session.domains[domain], let cached = state.templates[id] else { return nil }
        if isExpired(cached.lastRefreshedSeconds, now: nowSeconds) {
            state.templates[id] = nil
            session.templateCount -= 1
            templateCount -= 1
            generation &+= 1
            statistics.templatesExpired &+= 1
            return nil
        }
        return cached.plan
    }

    /// The domain's state if it exists (it does once a template was stored for it).
    func domainState(_ domain: UInt32, in session: TransportSession) -> DomainState? {
        session.domains[domain]
    }

    /// When the template is already cached with exactly this definition, refreshes its lifetime and
    /// returns true; the caller then need not compile anything.
    func refreshIfUnchanged(
        _ id: UInt16, isOptions: Bool, definition: UnsafeRawBufferPointer, domain: UInt32,
        in session: TransportSession, nowSeconds: UInt32
    ) -> Bool {
        guard let state = session.domains[domain], var cached = state.templates[id],
            cached.plan.isOptions == isOptions,
            cached.plan.definition.elementsEqual(definition)
        else { return false }
        cached.lastRefreshedSeconds = nowSeconds
        state.templates[id] = cached
        return true
    }

    /// Stores a newly compiled template: replaces a definition with the same ID, or adds it if the
    /// per-session and total limits allow.
    func store(
        _ plan: DecodePlan, domain: UInt32, in session: TransportSession, nowSeconds: UInt32,
        statistics: inout DecodeStatistics
    ) {
        let state: DomainState
        if let existing = session.domains[domain] {
            state = existing
        } else {
            makeRoomForOneTemplate(keeping: session, statistics: &statistics)
            guard session.templateCount < configuration.maxTemplatesPerSession,
                templateCount < configuration.maxTemplatesTotal
            else {
                statistics.templatesRejectedByLimit &+= 1
                return
            }
            state = DomainState()
            session.domains[domain] = state
        }
        let entry = CachedTemplate(plan: plan, format: wireFormat, lastRefreshedSeconds: nowSeconds)
        if state.templates.updateValue(entry, forKey: plan.templateID) != nil {
            // Only reached after `refreshIfUnchanged` said no: the definition differs.
            generation &+= 1
            statistics.templatesReplaced &+= 1
            return
        }
        makeRoomForOneTemplate(keeping: session, statistics: &statistics)
        guard session.templateCount < configuration.maxTemplatesPerSession,
            templateCount < configuration.maxTemplatesTotal
        else {
            state.templates[plan.templateID] = nil
            statistics.templatesRejectedByLimit &+= 1
            return
        }
        session.templateCount += 1
        templateCount += 1
        generation &+= 1
        statistics.templatesAdded &+= 1
    }

    /// Records what an options data set said about its domain.
    func applyOptions(_ values: OptionsValues, to state: DomainState, nowSeconds: UInt32) {
        if values.samplingInterval != 0, values.samplingInterval != state.samplingInterval {
            state.samplingInterval = values.samplingInterval
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
    func sweepIfDue(nowSeconds: UInt32, statistics: inout DecodeStatistics) {
        if let last = lastSweepSeconds, nowSeconds >= last, nowSeconds - last < Self.sweepIntervalSeconds { return }
        lastSweepSeconds = nowSeconds
        sweep(nowSeconds: nowSeconds, statistics: &statistics)
    }

    func sweep(nowSeconds: UInt32, statistics: inout DecodeStatistics) {
        var idleSessions: [ExporterAddress] = []
        for (address, session) in sessions {
            for (domain, state) in session.domains {
                for (id, cached) in state.templates where isExpired(cached.lastRefreshedSeconds, now: nowSeconds) {
                    state.templates[id] = nil
                    session.templateCount -= 1
                    templateCount -= 1
                    generation &+= 1
                    statistics.templatesExpired &+= 1
                }
                if state.templates.isEmpty { session.domains[domain] = nil }
            }
            if session.domains.isEmpty, isExpired(session.lastActiveSeconds, now: nowSeconds) {
                idleSessions.append(address)
            }
        }
        for address in idleSessions { remove(address) }
    }

    func isExpired(_ refreshed: UInt32, now: UInt32) -> Bool {
        // A clock that went backwards keeps templates alive rather than dropping them all.
        now > refreshed && now - refreshed > configuration.templateLifetimeSeconds
    }

    /// At the total limit, the least recently used *other* session holding templates is evicted, so a
    /// flood from many source ports cannot lock every other exporter out until its templates expire;
    /// the per-session limit still bounds what one session may hold.
    private func makeRoomForOneTemplate(keeping session: TransportSession, statistics: inout DecodeStatistics) {
        guard templateCount >= configuration.maxTemplatesTotal,
            session.templateCount < configuration.maxTemplatesPerSession else { return }
        let victim = sessions.values.lazy.filter { $0 !== session && $0.templateCount > 0 }
            .min { $0.lastUsedTick < $1.lastUsedTick }
        guard let victim else { return }
        remove(victim.exporter)
        statistics.sessionsEvicted &+= 1
    }

    private func evictLeastRecentlyUsed(_ statistics: inout DecodeStatistics) {
        // A linear scan, only when a new session arrives at the limit: no per-datagram bookkeeping.
        guard let oldest = sessions.min(by: { $0.value.lastUsedTick < $1.value.lastUsedTick }) else { return }
        remove(oldest.key)
        statistics.sessionsEvicted &+= 1
    }

    private func remove(_ address: ExporterAddress) {
        guard let session = sessions.removeValue(forKey: address) else { return }
        templateCount -= session.templateCount
        if session.templateCount > 0 { generation &+= 1 }
        if lastSession === session { lastSession = nil }
    }
}

extension TemplateCache {
    /// What every decoder does once a message header checks out: find (or create) the exporter's
    /// session, count the datagram and its domain, and set up the record the message's flows reuse.
    func beginMessage(
        from exporter: ExporterAddress, domain: UInt32, exportSeconds: UInt32, nowSeconds: UInt32,
        statistics: inout DecodeStatistics
    ) -> (TransportSession, FlowRecord) {
        let session = session(for: exporter, nowSeconds: nowSeconds, statistics: &statistics)
        session.statistics.datagrams &+= 1
        session.noteDomain(domain)
        var record = FlowRecord()
        record.exporter = exporter.address
        record.observationDomain = domain
        record.exportTimeMs = UInt64(exportSeconds) * 1000
        return (session, record)
    }
}
