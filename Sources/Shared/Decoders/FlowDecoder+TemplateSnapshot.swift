import FlowModel
import WireFormat
import Templates

// Template snapshots: a worker publishes its template cache, and a worker started after it (on reload or
// after a crash) imports it, so data that arrives before the exporters re-send their templates is decoded
// instead of dropped. The format is in Templates/TemplateSnapshot.swift.

extension FlowDecoder {
    /// Changes whenever the set of templates or their definitions changes (added, replaced, expired,
    /// evicted, imported) or a domain's options-derived sampling state changes value — not on a mere
    /// refresh of an identical template. A plain stored counter: cheap to read every loop pass.
    public var templateGeneration: UInt64 { cache.generation }

    /// The octets `writeTemplateSnapshot` would write now, computed without writing them.
    public var templateSnapshotSize: Int { cache.snapshotSize }

    /// Serializes every cached template — transport session (exporter address and port), observation
    /// domain / source ID, protocol, template ID, options flag, the definition as received (field count,
    /// scope count, field specifiers with enterprise numbers), its last-refresh time — and each domain's
    /// options-derived sampling state into `buffer`, replacing its contents. Versioned, with a magic and a
    /// checksum.
    public func writeTemplateSnapshot(into buffer: inout [UInt8]) {
        TemplateSnapshot.write(cache, into: &buffer)
    }

    /// Imports a snapshot written by any decoder (another process): adds the templates this decoder lacks,
    /// replaces those it holds with an older last-refresh time, keeps each template's last-refresh time (so
    /// lifetimes run out on schedule) and skips those already expired at `nowSeconds`. Limits hold: a
    /// template beyond `maxTemplatesPerSession` / `maxTemplatesTotal`, or of a new session beyond
    /// `maxSessions` (an import never evicts), is counted in `templatesRejectedByLimit`.
    ///
    /// Every definition goes through its protocol's template decoder, exactly as if it had arrived in a
    /// datagram. Bad input never traps: a bad header or checksum rejects the whole snapshot, a bad entry
    /// rejects the rest from there; either is counted as `.invalidTemplateSnapshot` and described in
    /// `lastTemplateSnapshotError`. Returns the number of templates added or redefined.
    @discardableResult
    public func importTemplateSnapshot(_ bytes: UnsafeRawBufferPointer, nowSeconds: UInt32) -> Int {
        let (domains, readError) = TemplateSnapshot.read(bytes)
        var failure = readError
        var imported = 0
        entries: for domain in domains {
            for template in domain.templates {
                switch importTemplate(template, of: domain, nowSeconds: nowSeconds) {
                case .imported: imported += 1
                case .skipped: break
                case .rejected(let error):
                    failure = error
                    break entries
                }
            }
            importOptionsState(of: domain)
            if let error = importExtensions(of: domain) {
                failure = error
                break entries
            }
        }
        statistics.templatesImported &+= UInt64(imported)
        lastTemplateSnapshotError = failure
        if failure != nil { statistics.count(.invalidTemplateSnapshot) }
        return imported
    }

    private enum ImportOutcome {
        case imported
        /// Expired, not newer than the one held, refreshed an identical one, or refused by a limit.
        case skipped
        case rejected(TemplateSnapshotError)
    }

    private func importTemplate(_ template: SnapshotTemplate, of domain: SnapshotDomain, nowSeconds: UInt32) -> ImportOutcome {
        if cache.isExpired(template.lastRefreshedSeconds, now: nowSeconds) { return .skipped }
        let held = cache.cachedTemplate(template.templateID, domain: domain.domain, exporter: domain.exporter)
        if let held, held.lastRefreshedSeconds >= template.lastRefreshedSeconds { return .skipped }
        // At the total limit the cache makes room by evicting another session; exporters heard live
        // outrank a snapshot, so a new template from one is refused here instead.
        guard held != nil || cache.templateCount < cache.configuration.maxTemplatesTotal,
            let session = cache.sessionForImport(domain.exporter, nowSeconds: nowSeconds)
        else {
            statistics.templatesRejectedByLimit &+= 1
            return .skipped
        }
        // The template record as it was on the wire (ID, then the definition), alone in its set, learned
        // at its original time so its lifetime runs on from there.
        var record: [UInt8] = [UInt8(truncatingIfNeeded: template.templateID >> 8), UInt8(truncatingIfNeeded: template.templateID)]
        record.append(contentsOf: template.definition)
        var learned = DecodeStatistics()
        cache.isImporting = true
        defer { cache.isImporting = false }
        let message = DecodeMessage(
            format: template.format, cache: cache, session: session, domain: domain.domain, exportSeconds: 0,
            nowSeconds: template.lastRefreshedSeconds)
        record.withUnsafeBytes { bytes in
            let body = 0..<bytes.count
            switch template.format {
            case .ipfix:
                IPFIXDecoder.decodeTemplateSet(
                    bytes, body: body, isOptions: template.isOptions, message: message, statistics: &learned)
            case .netFlowV9 where template.isOptions:
                NetFlowV9Decoder.decodeOptionsTemplateFlowSet(bytes, body: body, message: message, statistics: &learned)
            case .netFlowV9:
                NetFlowV9Decoder.decodeTemplateFlowSet(bytes, body: body, message: message, statistics: &learned)
            }
        }
        statistics.templatesRejectedByLimit &+= learned.templatesRejectedByLimit
        // A whole template record the rules refuse (written by a version with laxer rules, or forged):
        // counted as from the wire and skipped; the entries after it stand on their own.
        let refusedByRule = learned.errors(.malformedTemplate) + learned.errors(.tooManyTemplateFields)
        if refusedByRule > 0, learned.totalErrors == refusedByRule, learned.withdrawalsIgnored == 0 {
            for kind in [DecodeErrorKind.malformedTemplate, .tooManyTemplateFields] {
                for _ in 0..<learned.errors(kind) { statistics.count(kind) }
            }
            return .skipped
        }
        if learned.totalErrors > 0 || learned.withdrawalsIgnored > 0 {
            let protocolName = template.format == .ipfix ? "IPFIX" : "NetFlow v9"
            return .rejected(
                .invalidEntry(
                    atOffset: template.offset,
                    reason: "the \(protocolName) decoder refused template \(template.templateID) of domain \(domain.domain)"))
        }
        return learned.templatesAdded + learned.templatesReplaced > 0 ? .imported : .skipped
    }

    /// The domain's other state (`DomainExtension`), applied by each kind's row to the domain held here
    /// (domains exist only with templates); a kind this build does not know is skipped.
    private func importExtensions(of domain: SnapshotDomain) -> TemplateSnapshotError? {
        guard !domain.extensions.isEmpty, let session = cache.sessions[domain.exporter],
            let state = cache.domainState(domain.domain, in: session)
        else { return nil }
        for (kind, value) in domain.extensions {
            guard let row = DomainExtension.row(kind) else { continue }
            let accepted = value.withUnsafeBytes { row.apply($0, state) }
            if !accepted {
                return .invalidEntry(
                    atOffset: domain.templates.last?.offset ?? 0,
                    reason: "state of kind \(kind) of domain \(domain.domain) refused by its reader")
            }
        }
        return nil
    }

    /// The domain's sampling interval and system init time, when the snapshot's are newer than ours
    /// (only for a domain that holds templates here: domains exist only with templates).
    private func importOptionsState(of domain: SnapshotDomain) {
        guard domain.optionsRefreshedSeconds != 0, let session = cache.sessions[domain.exporter],
            let state = cache.domainState(domain.domain, in: session),
            state.optionsRefreshedSeconds < domain.optionsRefreshedSeconds
        else { return }
        cache.applyOptions(
            OptionsValues(samplingInterval: domain.samplingInterval, systemInitTimeMs: domain.systemInitTimeMs),
            to: state, nowSeconds: domain.optionsRefreshedSeconds)
    }
}
