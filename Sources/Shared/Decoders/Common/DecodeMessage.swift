import FlowModel
import WireFormat
import Templates

/// One IPFIX or NetFlow v9 message being decoded: what each of its sets needs besides its own bytes,
/// so the set functions take this instead of a dozen parameters. The wire format is explicit here:
/// templates learned through it are tagged with it.
struct DecodeMessage {
    let format: TemplateWireFormat
    let cache: TemplateCache
    let session: TransportSession
    /// IPFIX observation domain, NetFlow v9 source ID.
    let domain: UInt32
    let exportSeconds: UInt32
    let nowSeconds: UInt32
    /// NetFlow v9 only: the header's sysUptime, which FIRST/LAST_SWITCHED are relative to.
    var v9SysUptimeMs: UInt32 = 0

    /// Starts a message whose header checked out: its exporter's session, or nil (counted) when no
    /// session can be had — a new session while every slot holds templates, where nothing learned or
    /// referenced could be kept or found. `record` is the one each of the message's flows starts from.
    static func begin(
        _ format: TemplateWireFormat, from exporter: ExporterAddress, domain: UInt32, exportSeconds: UInt32,
        nowSeconds: UInt32, v9SysUptimeMs: UInt32 = 0, cache: TemplateCache, statistics: inout DecodeStatistics
    ) -> (message: DecodeMessage, record: FlowRecord)? {
        guard let session = cache.beginMessage(from: exporter, domain: domain, nowSeconds: nowSeconds, statistics: &statistics)
        else {
            statistics.datagramsWithoutSession &+= 1
            return nil
        }
        let message = DecodeMessage(
            format: format, cache: cache, session: session, domain: domain, exportSeconds: exportSeconds,
            nowSeconds: nowSeconds, v9SysUptimeMs: v9SysUptimeMs)
        return (message, FlowRecord(messageFrom: exporter, domain: domain, exportSeconds: exportSeconds))
    }

    /// Learns one template record (IPFIX and v9 alike): an unchanged definition only refreshes the
    /// held template; otherwise `fields` parses it, and it is compiled and stored.
    func learn(
        _ templateID: UInt16, isOptions: Bool, definition: UnsafeRawBufferPointer, statistics: inout DecodeStatistics,
        fields: () -> [TemplateField]
    ) {
        if cache.refreshIfUnchanged(
            templateID, isOptions: isOptions, definition: definition, domain: domain, in: session, nowSeconds: nowSeconds)
        {
            return
        }
        switch DecodePlan.compile(
            templateID: templateID, isOptions: isOptions, fields: fields(), definition: Array(definition),
            splitBiflows: cache.configuration.splitsBiflows, custom: cache.configuration.customFields)
        {
        case .success(let plan):
            cache.store(plan, format: format, domain: domain, in: session, nowSeconds: nowSeconds, statistics: &statistics)
        case .failure:
            statistics.count(.malformedTemplate)
        }
    }

    /// Decodes one data set (IPFIX) or data FlowSet (v9) with the template it names; a set whose
    /// template is unknown is counted and skipped. Options records update the domain's sampling state.
    /// Returns the data records the set held (what IPFIX sequence numbers count), nil when unknowable.
    @discardableResult
    func decodeDataSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, templateID: UInt16, record: FlowRecord,
        statistics: inout DecodeStatistics, batch: inout RecordBatch
    ) -> Int? {
        var found = cache.template(templateID, domain: domain, in: session, nowSeconds: nowSeconds, statistics: &statistics)
        if found == nil { found = lookUpElsewhere(templateID, statistics: &statistics) }
        guard let plan = found, let state = cache.domainState(domain, in: session) else {
            statistics.setsWithUnknownTemplate &+= 1
            session.statistics.setsWithUnknownTemplate &+= 1
            return nil
        }
        // A switch, not `==`: `TemplateWireFormat`'s `==` lives in Templates (a call).
        let isNetFlowV9 = switch format {
        case .netFlowV9: true
        case .ipfix: false
        }
        let override = session.samplingOverride
        let policy = cache.configuration.sampling
        var options = OptionsValues()
        let outcome = state.samplers.samplers.withUnsafeBufferPointer { samplers in
            let sampling = SamplingContext(
                fallbackRate: override != 0 ? override : state.samplers.fallbackRate(domainRate: state.samplingInterval),
                isOverridden: override != 0, samplers: samplers, defaultRate: policy.defaultRate,
                renormalize: policy.renormalize)
            let context = MessageContext(
                exportTimeSeconds: exportSeconds, isNetFlowV9: isNetFlowV9, v9SysUptimeMs: v9SysUptimeMs,
                domainSystemInitTimeMs: state.systemInitTimeMs, sampling: sampling,
                customRows: cache.configuration.customValues.rows)
            return RecordDecoding.decodeDataSet(
                bytes, range: body, plan: plan, context: context, messageRecord: record, options: &options, batch: &batch)
        }
        if outcome.truncated { statistics.count(.truncatedRecord) }
        if plan.isOptions {
            statistics.optionsRecords &+= UInt64(outcome.records)
            if outcome.records > 0 { cache.applyOptions(options, to: state, nowSeconds: nowSeconds) }
        } else if !plan.hasFlowFields {
            statistics.recordsWithoutFlowFields &+= UInt64(outcome.records)
        } else {
            statistics.flowsWithUnknownSampling &+= UInt64(outcome.unknownSampling)
            statistics.flowRecords &+= UInt64(outcome.records)
            session.statistics.flowRecords &+= UInt64(outcome.records)
            statistics.reverseFlows &+= UInt64(outcome.reverseFlows)
            session.statistics.reverseFlows &+= UInt64(outcome.reverseFlows)
            statistics.flowsWithUnanchoredTimes &+= UInt64(outcome.unanchoredTimes)
        }
        return outcome.truncated ? nil : outcome.records
    }
}

extension DecodeMessage {
    /// Feeds the message's export sequence number to its domain's tracker (a domain exists once it has a
    /// template; before that nothing can be decoded or counted anyway). `count`: the units it covers.
    func observeSequence(_ sequence: UInt32, count: UInt32?, uptimeMs: UInt32?, statistics: inout DecodeStatistics) {
        guard let state = cache.domainState(domain, in: session) else { return }
        let counts = state.sequence.observe(sequence, count: count, uptimeMs: uptimeMs)
        Self.account(counts, session: session, statistics: &statistics)
    }

    /// Adds one message's sequence outcome to the global and the exporter's counters.
    @inline(__always)
    static func account(_ counts: SequenceTracker.Counts, session: TransportSession?, statistics: inout DecodeStatistics) {
        guard counts != SequenceTracker.Counts() else { return }
        statistics.sequenceLost &+= counts.lost
        statistics.sequenceReordered &+= counts.reordered
        statistics.sequenceResets &+= counts.resets
        session?.statistics.sequenceLost &+= counts.lost
        session?.statistics.sequenceReordered &+= counts.reordered
        session?.statistics.sequenceResets &+= counts.resets
    }
}

extension DecodeMessage {
    /// A template the session lacks, asked of the cache's other sources (sibling workers, the fleet)
    /// before the set counts as unknown; out of line, off the path of known templates.
    @inline(never)
    func lookUpElsewhere(_ templateID: UInt16, statistics: inout DecodeStatistics) -> DecodePlan? {
        guard let handler = cache.unknownTemplateHandler, handler(session, nowSeconds, &statistics) else { return nil }
        return cache.template(templateID, domain: domain, in: session, nowSeconds: nowSeconds, statistics: &statistics)
    }
}

extension FlowRecord {
    /// The record a message's flows start from: who sent it and when.
    init(messageFrom exporter: ExporterAddress, domain: UInt32, exportSeconds: UInt32) {
        self.init()
        self.exporter = exporter.address
        observationDomain = domain
        exportTimeMs = UInt64(exportSeconds) * 1000
    }
}
