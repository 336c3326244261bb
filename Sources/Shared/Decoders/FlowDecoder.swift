/// Decodes IPFIX (v10), NetFlow v9 and NetFlow v5 datagrams into `FlowRecord`s. One per worker
/// thread: it owns its template cache and counters and is not thread-safe.
public final class FlowDecoder {
    public internal(set) var statistics = DecodeStatistics()
    /// Why the last template snapshot import rejected all or part of its input; nil when it was whole.
    public internal(set) var lastTemplateSnapshotError: TemplateSnapshotError?
    let cache: TemplateCache

    public init(configuration: DecoderConfiguration = .init()) {
        cache = TemplateCache(configuration: configuration)
    }

    /// Templates currently cached, across all sessions and domains.
    public var activeTemplateCount: Int { cache.templateCount }

    /// What the cached templates cost in memory, in bytes (what `maxTemplateBytesTotal` bounds).
    public var activeTemplateBytes: Int { cache.templateBytes }

    /// Transport sessions currently known.
    public var sessionCount: Int { cache.sessions.count }

    /// Per-exporter view for metrics: address+port, observation domain(s), datagrams, records,
    /// data sets dropped for an unknown template.
    public func forEachExporter(_ body: (ExporterAddress, ExporterStatistics) -> Void) {
        for (exporter, session) in cache.sessions { body(exporter, session.statistics) }
    }

    /// Decodes one UDP payload; version 10 = IPFIX, 9 = NetFlow v9, 5 = NetFlow v5; anything else
    /// is counted as an error. Calls `sink.emit` once per flow data record. Never traps, never
    /// throws: everything bad is counted in `statistics`.
    public func decode<S: FlowSink>(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, into sink: inout S
    ) {
        cache.sweepIfDue(nowSeconds: nowSeconds, statistics: &statistics)
        guard payload.count >= 2 else {
            statistics.count(.truncatedHeader)
            return
        }
        switch payload.readBE16(at: 0) {
        case 10:
            cache.wireFormat = .ipfix
            IPFIXDecoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, sink: &sink)
        case 9:
            cache.wireFormat = .netFlowV9
            NetFlowV9Decoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, sink: &sink)
        case 5:
            NetFlowV5Decoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, sink: &sink)
        default:
            statistics.count(.unsupportedVersion)
        }
    }

    /// Removes expired templates now (decode also does it every minute of `nowSeconds`).
    public func expireTemplates(nowSeconds: UInt32) {
        cache.sweep(nowSeconds: nowSeconds, statistics: &statistics)
    }
}
