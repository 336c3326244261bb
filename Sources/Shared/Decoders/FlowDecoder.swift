import FlowModel
import WireFormat
import Templates

/// Decodes IPFIX (v10), NetFlow v9 and NetFlow v5 datagrams into `FlowRecord`s. One per worker
/// thread: it owns its template cache and counters and is not thread-safe.
public final class FlowDecoder {
    public internal(set) var statistics = DecodeStatistics()
    /// Why the last template snapshot import rejected all or part of its input; nil when it was whole.
    public internal(set) var lastTemplateSnapshotError: TemplateSnapshotError?
    let cache: TemplateCache
    let sflowAgents: SFlowAgentTable
    /// Called with each sFlow datagram's header (agent, sub-agent, sequence) once it is valid, before its
    /// samples: where sequence tracking for sFlow hooks in. Nil costs a comparison per sFlow datagram.
    public var sflowDatagramObserver: ((ExporterAddress, SFlowDatagramHeader) -> Void)?
    /// The other workers' snapshots, when this decoder looks unknown templates up there.
    var siblings: SiblingTemplates?
    /// Records per batch handed to `decode`'s caller: a typical datagram's (about 30) in one.
    public static let recordBatchCapacity = 64
    /// The batch's records, allocated once (`FlowRecord` is plain data: nothing to deinitialise).
    private let batchStorage = UnsafeMutablePointer<FlowRecord>.allocate(capacity: recordBatchCapacity)

    public init(configuration: DecoderConfiguration = .init()) {
        cache = TemplateCache(configuration: configuration)
        sflowAgents = SFlowAgentTable(maxSources: configuration.maxSessions)
    }

    deinit { batchStorage.deallocate() }

    /// Where this decoder's records keep their `output.field.*` values: the encoder reads them there.
    public var customValues: CustomValueStore { cache.configuration.customValues }

    /// Templates currently cached, across all sessions and domains.
    public var activeTemplateCount: Int { cache.templateCount }

    /// What the cached templates cost in memory, in bytes (what `maxTemplateBytesTotal` bounds).
    public var activeTemplateBytes: Int { cache.templateBytes }

    /// Transport sessions currently known.
    public var sessionCount: Int { cache.sessions.count }

    /// One transport session as a worker reports it (exporter table, /exporters, the active gauges).
    public struct SessionSummary: Sendable {
        public var exporter: ExporterAddress
        public var statistics: ExporterStatistics
        /// Wall-clock seconds of its first and latest datagram here; 0 when none came (held by import).
        public var firstSeenSeconds: UInt32
        public var lastSeenSeconds: UInt32
        public var templateCount: Int
        /// The observation domains / source IDs it holds templates for, ascending.
        public var domains: [UInt32]
        /// True once a datagram from it reached this decoder (not only an imported template).
        public var heard: Bool { firstSeenSeconds != 0 }
    }

    /// Every session, for the worker's exporter table and gauges (once a second, not per datagram).
    public func forEachSession(_ body: (SessionSummary) -> Void) {
        for (exporter, session) in cache.sessions {
            let heard = session.firstActiveSeconds != 0
            body(SessionSummary(
                exporter: exporter, statistics: session.statistics, firstSeenSeconds: session.firstActiveSeconds,
                lastSeenSeconds: heard ? session.lastActiveSeconds : 0, templateCount: session.templateCount,
                domains: session.domains.keys.sorted()))
        }
    }

    /// sFlow agents heard (by agent address, not UDP source) and what their samples said about sampling.
    public func forEachSFlowAgent(_ body: (IPAddress, SFlowAgentStatistics) -> Void) {
        sflowAgents.forEach(body)
    }

    /// The sampling rates in use, for the per-sampler gauge: per exporter session and observation
    /// domain, the domain's own rate (`sampler` nil) and each sampler's; `sampling.override` replaces
    /// each where it applies. Domains without any rate are left out.
    public func forEachSamplingRate(_ body: (ExporterAddress, _ domain: UInt32, _ sampler: UInt64?, _ rate: UInt32) -> Void) {
        for (exporter, session) in cache.sessions {
            let override = session.samplingOverride
            for (domain, state) in session.domains {
                if override != 0 || state.samplingInterval != 0 {
                    body(exporter, domain, nil, override != 0 ? override : state.samplingInterval)
                }
                for sampler in state.samplers.samplers {
                    body(exporter, domain, sampler.id, override != 0 ? override : sampler.rate)
                }
            }
        }
    }

    /// Decodes one UDP payload; version 10 = IPFIX, 9 = NetFlow v9, 5 = NetFlow v5, a first 32-bit word
    /// of 5 = sFlow v5 (no NetFlow/IPFIX version is 0); anything else is counted as an error.
    /// `arrivalMs` (ms since the epoch) is sFlow's record time, which has no export time; 0 = `nowSeconds`.
    /// Calls `sink.emit` once per flow data record. Never traps, never
    /// throws: everything bad is counted in `statistics`.
    ///
    /// Inlined into the caller, so the loop over each batch is specialised for the caller's sink while
    /// the decoders stay compiled in this module (see `decode(_:from:nowSeconds:batches:)`).
    @inlinable
    public func decode<S: FlowSink>(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, arrivalMs: UInt64 = 0,
        into sink: inout S
    ) {
        decode(payload, from: exporter, nowSeconds: nowSeconds, arrivalMs: arrivalMs) { records in
            for index in records.indices { sink.emit(records[index]) }
        }
    }

    /// Decodes one UDP payload as above, handing its records over in batches of at most
    /// `recordBatchCapacity`, in order, one `body` call per batch (a typical datagram is one batch).
    /// The records are valid only during the call. The decoders meet the output only here, once per
    /// batch, so neither needs the other's generic code specialised across modules.
    public func decode(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, arrivalMs: UInt64 = 0,
        batches body: (UnsafeBufferPointer<FlowRecord>) -> Void
    ) {
        // Custom field values are offsets into this datagram (`CustomValueStore`).
        cache.configuration.customValues.base = payload.baseAddress
        withoutActuallyEscaping(body) { deliver in
            var batch = RecordBatch(storage: batchStorage, deliver: deliver)
            dispatch(payload, from: exporter, nowSeconds: nowSeconds, arrivalMs: arrivalMs, into: &batch)
            batch.flush()
        }
    }

    private func dispatch(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, arrivalMs: UInt64,
        into batch: inout RecordBatch
    ) {
        cache.sweepIfDue(nowSeconds: nowSeconds, statistics: &statistics)
        guard payload.count >= 2 else {
            statistics.count(.truncatedHeader)
            return
        }
        switch payload.readBE16(at: 0) {
        case 10:
            IPFIXDecoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, batch: &batch)
        case 9:
            NetFlowV9Decoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, batch: &batch)
        case 5:
            NetFlowV5Decoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds, cache: cache, statistics: &statistics, batch: &batch)
        case 0 where payload.count >= 4 && payload.readBE32(at: 0) == SFlowDecoder.version:
            SFlowDecoder.decode(
                payload, from: exporter, nowSeconds: nowSeconds,
                arrivalMs: arrivalMs != 0 ? arrivalMs : UInt64(nowSeconds) * 1000, cache: cache, agents: sflowAgents,
                observer: sflowDatagramObserver, statistics: &statistics, batch: &batch)
        default:
            statistics.count(.unsupportedVersion)
        }
    }

    /// Removes expired templates now (decode also does it every minute of `nowSeconds`).
    public func expireTemplates(nowSeconds: UInt32) {
        cache.sweep(nowSeconds: nowSeconds, statistics: &statistics)
    }
}
