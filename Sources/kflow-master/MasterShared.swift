import FlowModel
import SystemKit
import WireFormat
import KafkaOutput
import ProcessKit
import MetricsServer
import Synchronization

/// What the metrics thread reads: live workers' segments, the totals carried from retired workers,
/// and the master's own counters. The loop and the HTTP thread meet only here, under one lock.
final class MasterShared: Sendable {
    struct State {
        var live: [WorkerSegment] = []
        /// The live workers' segments and template exchanges with their slots, for /exporters and /templates.
        var inventory: [Inventory.Worker] = []
        var carriedCounters = [UInt64](repeating: 0, count: WorkerSegment.counterCapacity)
        var carriedErrors = [UInt64](repeating: 0, count: WorkerSegment.errorKindCapacity)
        var carriedExporters: [ExporterKey: WorkerSegment.ExporterEntry] = [:]
        var carriedSFlowAgents: [IPAddress: WorkerSegment.SFlowAgentEntry] = [:]
        var restarts: UInt64 = 0
        var slotsInBackoff = 0
        var reloadSuccesses: UInt64 = 0
        var reloadFailures: UInt64 = 0
        var lastReloadSucceeded = true
        var socketInodes: [UInt64] = []
        var healthy = false
        /// Messages (and their records) that finished workers left without a delivery outcome.
        var lostInDeadWorkers = Unsent()
        /// Metrics HTTP connections by how they ended (`MetricsHTTPServer.Outcome.rawValue`).
        var metricsConnections = [UInt64](repeating: 0, count: MetricsHTTPServer.Outcome.allCases.count)

        /// Adds a finished worker's final counters to the carried totals (gauges are not carried), and
        /// what it left unsent to `lostInDeadWorkers`; returns that.
        @discardableResult
        mutating func carry(_ segment: WorkerSegment) -> Unsent {
            let unsent = Unsent(segment)
            lostInDeadWorkers.messages &+= unsent.messages
            lostInDeadWorkers.records &+= unsent.records
            for c in WorkerCounter.allCases where !c.isGauge { carriedCounters[c.rawValue] &+= segment[c] }
            for i in 0..<WorkerSegment.errorKindCapacity { carriedErrors[i] &+= segment.errorCount(index: i) }
            for e in segment.readExporters() ?? [] {
                let key = ExporterKey(address: e.address, port: e.port)
                if var old = carriedExporters[key] {
                    old.add(e)
                    carriedExporters[key] = old
                } else if carriedExporters.count < maxCarriedExporters {
                    carriedExporters[key] = e
                }
            }
            addSFlowAgents(of: segment, to: &carriedSFlowAgents, limit: maxCarriedExporters)
            return unsent
        }
    }

    /// What a finished worker handed to librdkafka without a delivery outcome, from the counters it
    /// published last: produced - delivered - failed. A worker that drained (flush, then purge) leaves
    /// 0; a killed or crashed one leaves its queue, as of its last publish (every 20 ms). An estimate
    /// both ways: messages produced after that publish are in neither figure, and some counted here may
    /// have reached the broker just before the worker died. It counts messages only, not librdkafka's
    /// protocol requests, which its queue-depth gauge includes.
    struct Unsent: Equatable {
        var messages: UInt64 = 0
        var records: UInt64 = 0

        init() {}
        init(_ segment: WorkerSegment) {
            func left(_ produced: WorkerCounter, _ delivered: WorkerCounter, _ failed: WorkerCounter) -> UInt64 {
                let done = segment[delivered] &+ segment[failed]
                return segment[produced] > done ? segment[produced] - done : 0
            }
            messages = left(.kafkaProduced, .kafkaDelivered, .kafkaDeliveryFailed)
            records = left(.kafkaRecordsProduced, .kafkaRecordsDelivered, .kafkaRecordsFailed)
        }
    }

    /// Adds a segment's sFlow agent figures to `totals`, at most `limit` agents.
    static func addSFlowAgents(of segment: WorkerSegment, to totals: inout [IPAddress: WorkerSegment.SFlowAgentEntry], limit: Int) {
        for e in segment.readSFlowAgents() ?? [] {
            if var old = totals[e.agent] {
                old.samplePool &+= e.samplePool
                old.samplesDropped &+= e.samplesDropped
                totals[e.agent] = old
            } else if totals.count < limit {
                totals[e.agent] = e
            }
        }
    }

    struct ExporterKey: Hashable { let address: IPAddress; let port: UInt16 }
    struct SamplerKey: Hashable, Comparable {
        let address: IPAddress, port: UInt16, domain: UInt32, sampler: UInt64?
        static func < (a: SamplerKey, b: SamplerKey) -> Bool {
            // The domain's own rate (no sampler) first, then samplers by ID.
            (a.address.description, a.port, a.domain, a.sampler.map { $0 &+ 1 } ?? 0)
                < (b.address.description, b.port, b.domain, b.sampler.map { $0 &+ 1 } ?? 0)
        }
    }
    static let maxCarriedExporters = 10_000

    private let state = Mutex(State())

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    func read<T>(_ body: (State) -> T) -> T { state.withLock { body($0) } }

    /// Where every message (record) handed to Kafka ended, over all workers so far: the line the master
    /// logs when it exits, after every worker has drained or died.
    func kafkaAccounting() -> String {
        state.withLock { s in
            func total(_ c: WorkerCounter) -> UInt64 { s.carriedCounters[c.rawValue] &+ s.live.reduce(0) { $0 &+ $1[c] } }
            return "Kafka messages: produced \(total(.kafkaProduced)), delivered \(total(.kafkaDelivered)), "
                + "failed \(total(.kafkaDeliveryFailed)) (purged \(total(.kafkaPurged))), "
                + "lost in dead workers \(s.lostInDeadWorkers.messages); records: produced \(total(.kafkaRecordsProduced)), "
                + "delivered \(total(.kafkaRecordsDelivered)), failed \(total(.kafkaRecordsFailed)), "
                + "lost in dead workers \(s.lostInDeadWorkers.records); dropped before the queue: "
                + "\(total(.kafkaQueueFullDrops) &+ total(.kafkaProduceErrors)) message(s)"
        }
    }

    func totalFlowsDecoded() -> UInt64 {
        state.withLock { s in
            s.carriedCounters[WorkerCounter.flowsDecoded.rawValue] &+ s.live.reduce(0) { $0 &+ $1[.flowsDecoded] }
        }
    }

    func respond(path: String) -> MetricsHTTPServer.Response {
        switch path {
        case "/metrics", "/":
            return .init(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: renderMetrics())
        case "/exporters":
            let workers = state.withLock { $0.inventory }
            return .init(status: 200, contentType: "application/json", body: Inventory.exportersJSON(workers))
        case "/templates":
            let workers = state.withLock { $0.inventory }
            return .init(status: 200, contentType: "application/json", body: Inventory.templatesJSON(workers, nowSeconds: Clock.wallSeconds))
        case "/healthz":
            let healthy = state.withLock { $0.healthy }
            return .init(status: healthy ? 200 : 503, body: healthy ? "ok\n" : "unhealthy: a worker is missing or not heartbeating\n")
        default:
            return .init(status: 404, body: "not found; try /metrics, /healthz, /exporters or /templates\n")
        }
    }

    /// A session that sent datagrams to several live workers (round-robin balance, or two generations
    /// during a reload) is in each one's active gauges: how many times too many, and the templates those
    /// extra copies add, from the exporter tables (a worker lists up to `WorkerSegment.exporterCapacity`).
    static func sessionsHeardByMoreThanOneWorker(_ live: [WorkerSegment]) -> (sessions: UInt64, templates: UInt64) {
        var seen: [ExporterKey: (copies: UInt64, templates: UInt64, most: UInt64)] = [:]
        for segment in live {
            for e in segment.readExporters() ?? [] where e.heard {
                let key = ExporterKey(address: e.address, port: e.port)
                var entry = seen[key, default: (0, 0, 0)]
                entry.copies += 1
                entry.templates += UInt64(e.templateCount)
                entry.most = max(entry.most, UInt64(e.templateCount))
                seen[key] = entry
            }
        }
        var extra: (sessions: UInt64, templates: UInt64) = (0, 0)
        for entry in seen.values where entry.copies > 1 {
            extra.sessions += entry.copies - 1
            extra.templates += entry.templates - entry.most
        }
        return extra
    }

    func renderMetrics() -> String {
        // The state is copied under the lock (segments are shared references, the tables copy on write);
        // /proc, the segments and the text are read and built outside it: a scrape never holds the loop up.
        let s = state.withLock { $0 }
        let kernel = ProcNetUDP.read(inodes: Set(s.socketInodes))
        do {
            var out = PrometheusText()
            let duplicates = Self.sessionsHeardByMoreThanOneWorker(s.live)
            func total(_ c: WorkerCounter) -> UInt64 {
                let sum = (c.isGauge ? 0 : s.carriedCounters[c.rawValue]) &+ s.live.reduce(0) { $0 &+ $1[c] }
                switch c {
                case .exportersActive: return sum > duplicates.sessions ? sum - duplicates.sessions : 0
                case .templatesActive: return sum > duplicates.templates ? sum - duplicates.templates : 0
                default: return sum
                }
            }
            for c in WorkerCounter.allCases {
                let d = c.metric
                out.add(d.name, d.kind, help: d.help, labels: d.label.map { [$0] } ?? [], value: total(c))
            }
            out.declare("kflow_decode_errors_total", .counter, help: "Datagrams, sets or records rejected by the decoders, by reason.")
            for kind in DecodeErrorKind.allCases {
                let i = kind.rawValue
                let v = s.carriedErrors[min(i, WorkerSegment.errorKindCapacity - 1)] &+ s.live.reduce(0) { $0 &+ $1.errorCount(index: i) }
                out.add("kflow_decode_errors_total", .counter, help: "", labels: [("reason", kind.label)], value: v)
            }
            var exporters = s.carriedExporters
            for seg in s.live {
                for e in seg.readExporters() ?? [] {
                    let key = ExporterKey(address: e.address, port: e.port)
                    if var old = exporters[key] {
                        old.add(e)
                        exporters[key] = old
                    } else { exporters[key] = e }
                }
            }
            let sorted = exporters.values.sorted { ($0.address.description, $0.port) < ($1.address.description, $1.port) }
            let families: [(String, String, KeyPath<WorkerSegment.ExporterEntry, UInt64>)] = [
                ("kflow_exporter_datagrams_total", "Datagrams received per exporter (address and source port).", \.datagrams),
                ("kflow_exporter_flows_total", "Flow records decoded per exporter.", \.flows),
                ("kflow_exporter_unknown_template_sets_total", "Data sets dropped per exporter because their template was unknown.", \.unknownTemplateSets),
                ("kflow_exporter_reverse_flows_total", "Reverse directions of biflow records emitted as flows, per exporter.", \.reverseFlows),
                ("kflow_exporter_sequence_lost_total", "Units the exporter numbered but kflow never received (IPFIX data records, NetFlow v9 packets, v5 flows), per exporter, all its observation domains.", \.sequenceLost),
                ("kflow_exporter_sequence_reordered_total", "Messages of the exporter that arrived behind a later one, per exporter.", \.sequenceReordered),
                ("kflow_exporter_sequence_resets_total", "Exporter sequence restarts (not counted as loss), per exporter.", \.sequenceResets),
            ]
            for (name, help, field) in families {
                out.declare(name, .counter, help: help)
                for e in sorted {
                    out.add(name, .counter, help: help, labels: [("exporter", e.address.description), ("port", String(e.port))], value: e[keyPath: field])
                }
            }
            var agents = s.carriedSFlowAgents
            for seg in s.live { Self.addSFlowAgents(of: seg, to: &agents, limit: .max) }
            let sortedAgents = agents.values.sorted { $0.agent.description < $1.agent.description }
            let agentFamilies: [(String, String, KeyPath<WorkerSegment.SFlowAgentEntry, UInt64>)] = [
                ("kflow_sflow_samples_dropped_total", "Flow samples an sFlow agent dropped for lack of resources (growth of its samples' drops counters while kflow listened), per agent address.", \.samplesDropped),
                ("kflow_sflow_sample_pool_total", "Packets an sFlow agent's samplers saw (growth of its samples' sample_pool while kflow listened), per agent address.", \.samplePool),
            ]
            for (name, help, field) in agentFamilies {
                out.declare(name, .counter, help: help)
                for e in sortedAgents {
                    out.add(name, .counter, help: help, labels: [("agent", e.agent.description)], value: e[keyPath: field])
                }
            }
            // Per worker process, so an operator (and the balance test) sees how datagrams are spread.
            out.declare("kflow_worker_datagrams_received_total", .counter, help: "UDP datagrams received per live worker process (by pid): how server.balance spreads them.")
            for seg in s.live {
                out.add("kflow_worker_datagrams_received_total", .counter, help: "", labels: [("pid", String(seg.pid)), ("generation", String(seg.generation))], value: seg[.datagramsReceived])
            }
            // Gauges of live workers only; an exporter session read by two generations during a reload
            // shows once (either worker's rate: both learned it from the same options data).
            var rates: [SamplerKey: UInt32] = [:]
            for seg in s.live {
                for e in seg.readSamplers() ?? [] {
                    rates[SamplerKey(address: e.address, port: e.port, domain: e.domain, sampler: e.sampler)] = e.rate
                }
            }
            let samplingHelp = "Sampling rate (1-in-N) in use per exporter session, observation domain and sampler (sampler=\"none\": the domain's own rate), from options data or sampling.override."
            out.declare("kflow_exporter_sampling_rate", .gauge, help: samplingHelp)
            for (key, rate) in rates.sorted(by: { $0.key < $1.key }) {
                out.add("kflow_exporter_sampling_rate", .gauge, help: samplingHelp, labels: [
                    ("exporter", key.address.description), ("port", String(key.port)), ("domain", String(key.domain)),
                    ("sampler", key.sampler.map { String($0) } ?? "none"),
                ], value: UInt64(rate))
            }
            out.add("kflow_workers", .gauge, help: "Worker processes running now (all generations).", value: UInt64(s.live.filter { $0.state == .running }.count))
            out.add("kflow_kafka_lost_in_dead_workers_total", .counter, help: "Messages a worker left in its producer queue when it died (killed, crashed) or exited without a delivery report for them. An estimate: produced - delivered - failed as the worker last published them (every 20 ms).", value: s.lostInDeadWorkers.messages)
            out.add("kflow_kafka_records_lost_in_dead_workers_total", .counter, help: "Flow records in those messages (equals the messages unless output.batch.records > 1).", value: s.lostInDeadWorkers.records)
            out.add("kflow_worker_restarts_total", .counter, help: "Workers that exited unexpectedly and were replaced.", value: s.restarts)
            out.add("kflow_workers_crash_looping", .gauge, help: "Worker slots whose restarts are being delayed after repeated quick failures.", value: UInt64(s.slotsInBackoff))
            out.declare("kflow_reloads_total", .counter, help: "Configuration reloads (SIGHUP), by result.")
            out.add("kflow_reloads_total", .counter, help: "", labels: [("result", "success")], value: s.reloadSuccesses)
            out.add("kflow_reloads_total", .counter, help: "", labels: [("result", "failure")], value: s.reloadFailures)
            out.add("kflow_last_reload_successful", .gauge, help: "1 if the last reload was applied (or none happened), 0 if it was rejected.", value: s.lastReloadSucceeded ? UInt64(1) : UInt64(0))
            out.add("kflow_build_info", .gauge, help: "kflow build information.", labels: [("version", KflowVersion.string), ("librdkafka", librdkafkaVersion)], value: UInt64(1))
            out.declare("kflow_metrics_http_connections_total", .counter, help: "Connections to this metrics endpoint, by how they ended (docs/security/metrics.md).")
            for outcome in MetricsHTTPServer.Outcome.allCases where outcome != .acceptFailed {
                out.add("kflow_metrics_http_connections_total", .counter, help: "", labels: [("result", outcome.label)], value: s.metricsConnections[outcome.rawValue])
            }
            out.add("kflow_metrics_http_accept_errors_total", .counter, help: "Failures of accept(2) on the metrics port other than a client gone away (EMFILE, ENFILE, ...).", value: s.metricsConnections[MetricsHTTPServer.Outcome.acceptFailed.rawValue])
            // KFlow's name has no _total, which Prometheus reserves for counters: typed as a gauge (as a
            // running count it still works with rate()), so the exposition passes `promtool check metrics`.
            out.declare("server_packet_drops", .gauge, help: "Datagrams the kernel dropped on a kflow socket so far (from /proc/net/udp{,6}), per socket.")
            for (i, inode) in s.socketInodes.enumerated() {
                out.add("server_packet_drops", .gauge, help: "", labels: [("socket", String(i))], value: kernel[inode]?.drops ?? 0)
            }
            out.declare("server_receive_queue", .gauge, help: "Bytes waiting in a kflow socket's receive queue (from /proc/net/udp{,6}), per socket.")
            for (i, inode) in s.socketInodes.enumerated() {
                out.add("server_receive_queue", .gauge, help: "", labels: [("socket", String(i))], value: kernel[inode]?.receiveQueueBytes ?? 0)
            }
            return out.text
        }
    }
}
