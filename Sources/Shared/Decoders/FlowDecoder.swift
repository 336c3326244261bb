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
    /// Records per batch handed to `decode`'s caller: a typical datagram's (about 30) in one.
    public static let recordBatchCapacity = 64
    /// The batch's records, allocated once (`FlowRecord` is plain data: nothing to deinitialise).
    private let batchStorage = UnsafeMutablePointer<FlowRecord>.allocate(capacity: recordBatchCapacity)

    public init(configuration: DecoderConfiguration = .init()) {
        cache = TemplateCache(configuration: configuration)
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

    /// Per-exporter view for metrics: address+port, observation domain(s), datagrams, records,
    /// data sets dropped for an unknown template.
    public func forEachExporter(_ body: (ExporterAddress, ExporterStatistics) -> Void) {
        for (exporter, session) in cache.sessions { body(exporter, session.statistics) }
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

    /// Decodes one UDP payload; version 10 = IPFIX, 9 = NetFlow v9, 5 = NetFlow v5; anything else
    /// is counted as an error. Calls `sink.emit` once per flow data record. Never traps, never
    /// throws: everything bad is counted in `statistics`.
    ///
    /// Inlined into the caller, so the loop over each batch is specialised for the caller's sink while
    /// the decoders stay compiled in this module (see `decode(_:from:nowSeconds:batches:)`).
    @inlinable
    public func decode<S: FlowSink>(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32, into sink: inout S
    ) {
        decode(payload, from: exporter, nowSeconds: nowSeconds) { records in
            for index in records.indices { sink.emit(records[index]) }
        }
    }

    /// Decodes one UDP payload as above, handing its records over in batches of at most
    /// `recordBatchCapacity`, in order, one `body` call per batch (a typical datagram is one batch).
    /// The records are valid only during the call. The decoders meet the output only here, once per
    /// batch, so neither needs the other's generic code specialised across modules.
    public func decode(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
        batches body: (UnsafeBufferPointer<FlowRecord>) -> Void
    ) {
        // Custom field values are offsets into this datagram (`CustomValueStore`).
        cache.configuration.customValues.base = payload.baseAddress
        withoutActuallyEscaping(body) { deliver in
            var batch = RecordBatch(storage: batchStorage, deliver: deliver)
            dispatch(payload, from: exporter, nowSeconds: nowSeconds, into: &batch)
            batch.flush()
        }
    }

    private func dispatch(
        _ payload: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
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
        default:
            statistics.count(.unsupportedVersion)
        }
    }

    /// Removes expired templates now (decode also does it every minute of `nowSeconds`).
    public func expireTemplates(nowSeconds: UInt32) {
        cache.sweep(nowSeconds: nowSeconds, statistics: &statistics)
    }
}
