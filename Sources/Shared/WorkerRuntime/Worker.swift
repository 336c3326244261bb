import FlowModel
import SystemKit
import WireFormat
import Templates
import Decoders
import Output
import KafkaOutput
import Config
import ProcessKit
import CKflowShims
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One worker process's job: receive datagrams from its sockets in batches, decode them, encode JSON
/// and produce to Kafka, publishing counters and a heartbeat to its shared-memory segment. It never
/// waits on another worker, and it stops on SIGTERM/SIGINT (or its master's death) after flushing.
public final class Worker {
    public enum WorkerError: Error, CustomStringConvertible {
        case usage(WorkerLaunchError)
        case configuration(String)
        case system(SystemError)
        case kafka(String)

        public var description: String {
            switch self {
            case .usage(let e): e.description
            case .configuration(let s): "configuration from the master: \(s)"
            case .system(let e): e.description
            case .kafka(let s): "Kafka producer: \(s)"
            }
        }
    }

    private let launch: WorkerLaunch
    private let configuration: KflowConfiguration
    private let segment: WorkerSegment
    private let logger: Logger
    private let producer: KafkaProducer
    private let decoder: FlowDecoder
    private var sink: JSONFlowSink<KafkaProducer>
    private let signals: SignalWaiter
    private let allowList: AddressAllowList
    private let templateExchange: TemplateExchange?
    /// Predecessors' exchanges, read during the first seconds of life, with the sequence last imported.
    private var templateSources: [(exchange: TemplateExchange, importedSequence: UInt64?)]
    private var publishedTemplateGeneration: UInt64 = 0
    private var snapshotBuffer: [UInt8] = []
    /// What the last publish of the template snapshot took (sizing plus writing), in nanoseconds.
    private var lastTemplatePublishCostNs: UInt64 = 0
    /// What the last publish of the exporter, sFlow agent and sampler tables took, in nanoseconds.
    private var lastExportersPublishCostNs: UInt64 = 0
    private static let templateImportWindowNs: UInt64 = 3_000_000_000
    /// This slot's file in `templates.state.dir`, if one is configured.
    private let stateFiles: TemplateStateFiles?
    /// The last snapshot published differs from the file (or the file was never written by us).
    private var stateDirty = false
    private var lastStateWriteNs: UInt64 = 0
    private var stateWriteFailing = false
    private var templateState = WorkerReadings.TemplateState()
    /// Changes reach the state file at most this often (and at exit).
    static let stateWriteIntervalNs: UInt64 = 5_000_000_000
    /// Session gauges, counted when the exporter table is published (every second).
    private var sessionGauges = SessionGauges()
    /// `server.balance=round-robin`: every session may reach every worker, so what siblings learn about
    /// sessions held here (templates, sampling state) is taken over every `siblingSyncIntervalNs`.
    private let spreadsSessions: Bool
    /// The fleet's template topic (`templates.topic`), when set: what this worker's exporters taught it
    /// goes out (`fleetLedger`), and slot 0 reads what other nodes published.
    private let fleet: TemplateTopic?
    private var fleetLedger: FleetTemplateLedger
    private var fleetCounters = WorkerReadings.Fleet()
    private static let siblingSyncIntervalNs: UInt64 = 250_000_000

    /// Reads the configuration from the master's pipe and sets everything up; nothing is received yet.
    public init(launch: WorkerLaunch, signals: SignalWaiter, logger: Logger) throws(WorkerError) {
        self.launch = launch
        self.signals = signals
        do { segment = try WorkerSegment(attaching: launch.segment) } catch { throw .system(error) }
        segment.announce(pid: getpid(), generation: launch.generation)
        segment.setState(.starting)
        let text = String(decoding: DescriptorIO.readToEnd(launch.configuration), as: UTF8.self)
        close(launch.configuration)
        do { configuration = try KflowConfiguration.parse(workerText: text) } catch {
            throw .configuration("\(error)")
        }
        // The process logs at info until the configuration arrives; from here on at log.level.
        var logger = logger
        logger.logLevel = configuration.logLevel.loggerLevel
        self.logger = logger
        allowList = configuration.serverAllow
        do {
            producer = try KafkaProducer(
                properties: configuration.producerProperties,
                topic: configuration.kafkaTopic,
                log: { [logger] line in
                    // librdkafka's syslog levels: 0-3 errors, 4 warning, 5 notice, 6 info, 7 debug.
                    let level: Logger.Level = line.level <= 3 ? .error : line.level == 4 ? .warning : line.level == 5 ? .notice : .info
                    logger.log(level: level, "librdkafka \(line.facility): \(line.message)")
                })
        } catch {
            throw .kafka("\(error)")
        }
        decoder = FlowDecoder(configuration: DecoderConfiguration(
            templateLifetimeSeconds: UInt32(clamping: configuration.templatesLifetimeSeconds),
            maxTemplatesPerSession: configuration.templatesMaxPerSession,
            maxTemplatesTotal: configuration.templatesMaxTotal,
            maxSessions: configuration.exportersMax,
            maxFieldsPerTemplate: configuration.templatesMaxFields,
            maxTemplateBytesTotal: configuration.templatesMaxBytes,
            maxTemplateBytesPerSession: configuration.templatesMaxBytesPerSession,
            maxSessionsPerAddress: configuration.exportersMaxPerAddress,
            splitsBiflows: configuration.outputBiflow == .split,
            sampling: SamplingConfiguration(
                defaultRate: UInt32(clamping: configuration.samplingDefault),
                overrides: configuration.samplingOverride.entries.map { (prefix: $0.prefix, rate: $0.rate) },
                renormalize: configuration.outputRenormalize),
            customFields: configuration.outputCustomFields))
        let fields: OutputFields
        do { fields = try OutputFields(parsing: configuration.outputFields.joined(separator: ",")) } catch {
            throw .configuration("\(error)")
        }
        // Without its exchange a worker still decodes; successors then relearn its templates: say so.
        do { templateExchange = try TemplateExchange(attaching: launch.templateExchange, writable: true) } catch {
            templateExchange = nil
            logger.warning("worker \(launch.slot): no template exchange (\(error)); successors will relearn templates")
        }
        // The slot's exchange may hold what this slot's previous worker published (it crashed or was
        // killed): it is this worker's first predecessor.
        templateSources = (templateExchange.map { [(exchange: $0, importedSequence: nil)] } ?? [])
            + launch.templateSources.compactMap { fd in
                do { return (exchange: try TemplateExchange(attaching: fd, writable: false), importedSequence: nil) } catch {
                    logger.warning("worker \(launch.slot): a predecessor's template exchange is unreadable (\(error)); its templates are relearned")
                    return nil
                }
            }
        let siblings: [any TemplateSnapshotSource] = launch.siblings.compactMap { fd in
            do { return try TemplateExchange(attaching: fd, writable: false) } catch {
                logger.warning("worker \(launch.slot): a sibling's template exchange is unreadable (\(error)); its templates are not looked up")
                return nil
            }
        }
        stateFiles = configuration.templatesStateDirectory.isEmpty
            ? nil : TemplateStateFiles(directory: configuration.templatesStateDirectory, slot: launch.slot)
        let batch = JSONMessageBatch(
            encoder: KFlowJSONEncoder(fields: fields, custom: configuration.outputCustomFields, values: decoder.customValues),
            maxRecords: configuration.outputBatchRecords, keyMode: configuration.kafkaKey)
        spreadsSessions = configuration.serverBalance == "round-robin" && !siblings.isEmpty
        // Round-robin: the template's datagram and the next data sets reach different workers at once.
        let wait = spreadsSessions
            ? SiblingWait(maxWaitNs: 10_000_000, budgetNs: 50_000_000, clock: { Clock.monotonicNanoseconds },
                          pause: { usleep(200) })
            : nil
        decoder.useSiblingTemplates(siblings, wait: wait)
        let node = configuration.nodeID.isEmpty ? "\(Self.hostname()):\(configuration.serverPort)" : configuration.nodeID
        fleetLedger = FleetTemplateLedger(node: node)
        if configuration.templatesTopic.isEmpty {
            fleet = nil
        } else {
            do {
                fleet = try TemplateTopic(
                    properties: configuration.kafkaProperties.map { (name: $0.key, value: $0.value) },
                    topic: configuration.templatesTopic, consume: launch.slot == 0,
                    maxMessageBytes: FleetTemplateMessage.maxValueBytes,
                    log: { [logger, slot = launch.slot] line in logger.info("worker \(slot): \(line)") })
                logger.info("worker \(launch.slot): sharing templates through \(configuration.templatesTopic) as node \(node)")
            } catch {
                // Without it the node still decodes what its exporters send it: say so, keep going.
                fleet = nil
                logger.error("worker \(launch.slot): templates.topic \(configuration.templatesTopic) unusable (\(error)); templates are not shared")
            }
        }
        sink = JSONFlowSink(batch: batch, transport: producer)
    }

    /// The receive loop; returns the process exit code.
    public func run() -> Int32 {
        let batchSize = max(1, min(configuration.serverBatchSize, 1024))
        // 65535-octet IPFIX messages must fit; one more byte lets MSG_TRUNC flag anything longer.
        guard let rx = kflow_rx_batch_create(UInt32(batchSize), 65536) else {
            logger.critical("cannot allocate the receive batch")
            return 1
        }
        defer { kflow_rx_batch_destroy(rx) }
        var pollFDs = launch.sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        // A pending SIGTERM makes the signal descriptor readable: poll(2) watches it with the sockets,
        // so the loop costs no system call of its own for signals.
        let signalFD = signals.makeDescriptor()
        if let signalFD { pollFDs.append(pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)) }
        defer { if let signalFD { close(signalFD) } }
        let socketCount = launch.sockets.count
        let receiveWait = configuration.serverReceiveWaitMicroseconds
        var local = WorkerReadings.Receive()
        var lastExportersPublishNs: UInt64 = 0
        let imported = importTemplateSnapshots()
        if imported > 0 { logger.info("worker \(launch.slot): \(imported) template(s) taken over from earlier workers") }
        importTemplateState()
        let startNs = Clock.monotonicNanoseconds
        var lastImportNs = startNs
        var lastSiblingSyncNs = startNs
        var lastTemplatePublishNs: UInt64 = 0
        segment.setState(.running)
        logger.info("worker \(launch.slot) (generation \(launch.generation)) receiving on \(launch.sockets.count) socket(s)")

        var lastPublishNs: UInt64 = 0
        var exitCode: Int32 = 0
        while true {
            let nowNs = Clock.monotonicNanoseconds
            segment.heartbeat(at: nowNs)
            let ready = poll(&pollFDs, nfds_t(pollFDs.count), 100)
            if signalFD == nil || (ready > 0 && pollFDs[socketCount].revents != 0) {
                if signals.poll() != nil { break }
            }
            var received = 0
            if ready > 0 {
                // Read once per turn: sFlow records carry it (ms) as their time; templates age by the second.
                let nowMs = Clock.wallMilliseconds
                let now = UInt32(truncatingIfNeeded: nowMs / 1000)
                for i in 0..<socketCount where pollFDs[i].revents & Int16(POLLIN) != 0 {
                    let n = kflow_rx_batch_receive(rx, pollFDs[i].fd, 0)
                    if n < 0 {
                        local.receiveErrors &+= 1
                        continue
                    }
                    // The heartbeat advances per datagram (a clock read and a store, ~1% of the cheapest
                    // datagram's decode): a batch of costly datagrams cannot starve it.
                    for d in 0..<UInt32(n) {
                        receive(rx, index: d, nowSeconds: now, nowMs: nowMs, counters: &local)
                        segment.heartbeat(at: Clock.monotonicNanoseconds)
                    }
                    received += Int(n)
                    if Int(n) < batchSize { sink.flush() }  // socket drained: send a partial batch now
                }
            } else {
                sink.flush()
            }
            // What this turn's datagrams produced goes to librdkafka in one produce_batch call.
            producer.submit()
            _ = producer.poll()
            // A fatal producer error (e.g. the idempotent producer lost its ordering guarantee) means
            // nothing more can be delivered: stop, account for the queue, exit non-zero to be replaced.
            if let fatal = producer.fatalError {
                logger.critical("worker \(launch.slot): fatal Kafka producer error: \(fatal); exiting to be replaced")
                exitCode = Self.fatalProducerExitCode
                break
            }
            // Counters reach the master every 20 ms: fresh enough for scrapes, cheap at any packet rate.
            if nowNs &- lastPublishNs > 20_000_000 {
                publish(local)
                lastPublishNs = nowNs
            }
            // Templates predecessors learn while they still overlap with us (reload) are taken over too.
            if !templateSources.isEmpty, nowNs &- lastImportNs > 250_000_000 {
                importTemplateSnapshots()
                lastImportNs = nowNs
                if nowNs &- startNs > Self.templateImportWindowNs { releaseTemplateSources() }
            }
            if let fleet { exchangeWithFleet(fleet, nowNs: nowNs) }
            if spreadsSessions, nowNs &- lastSiblingSyncNs > Self.siblingSyncIntervalNs {
                decoder.syncSiblingSessions(nowSeconds: Clock.wallSeconds)
                lastSiblingSyncNs = nowNs
            }
            // Changes go out within 100 ms (5 ms with round-robin); a periodic republish carries refresh times forward, so a
            // successor never takes templates as expired that the exporter keeps refreshing.
            let sincePublish = nowNs &- lastTemplatePublishNs
            if (decoder.templateGeneration != publishedTemplateGeneration && sincePublish > templatePublishIntervalNs())
                || sincePublish > 60_000_000_000 {
                publishTemplateSnapshot()
                lastTemplatePublishNs = nowNs
            }
            if stateDirty, nowNs &- lastStateWriteNs > Self.stateWriteIntervalNs {
                writeTemplateState()
                lastStateWriteNs = nowNs
            }
            // Every second; with thousands of sessions the walk costs milliseconds, and then it waits at
            // least 1,000 times what it took (≤ 0.1 % of the worker; 10,000 exporters: every few seconds).
            if nowNs &- lastExportersPublishNs > max(1_000_000_000, lastExportersPublishCostNs &* Self.exportersPublishCostFactor) {
                publishExporters()
                lastExportersPublishNs = nowNs
            }
            // A short read means datagrams trickle in (many exporters, or a light load): let some gather
            // instead of waking up for each one. Full reads go straight round again.
            if receiveWait > 0, received > 0, received < batchSize {
                var pause = timespec(tv_sec: 0, tv_nsec: receiveWait * 1000)
                nanosleep(&pause, nil)
            }
        }

        // Stop receiving; what is queued in the socket stays for the sibling or next-generation worker.
        segment.setState(.draining)
        publishTemplateSnapshot()
        if stateDirty { writeTemplateState() }
        sink.flush()
        // After a fatal error nothing will be delivered: purge at once instead of waiting out the flush.
        let flushMs = exitCode == 0 ? configuration.kafkaFlushTimeoutMilliseconds : 0
        let drained = producer.drain(timeoutMs: flushMs)
        // Published before exiting: the master carries these final figures, purges included.
        publish(local)
        publishExporters()
        if drained.undeliveredAtTimeout > 0 {
            logger.error("worker \(launch.slot): \(drained.undeliveredAtTimeout) message(s) still undelivered after \(flushMs) ms; purged, counted in kflow_kafka_purged_total and kflow_kafka_delivery_failed_total")
        }
        if drained.unaccounted > 0 {
            logger.error("worker \(launch.slot): \(drained.unaccounted) purged message(s) got no delivery report; the master counts them in kflow_kafka_lost_in_dead_workers_total")
        }
        fleet?.stop(flushMs: Int32(clamping: min(flushMs, 2000)))
        segment.setState(.exited)
        logger.info("worker \(launch.slot) (generation \(launch.generation)) stopped")
        return exitCode
    }

    /// The exit status of a worker whose producer hit a fatal error (the master replaces it).
    static let fatalProducerExitCode: Int32 = 3

    @inline(__always)
    private func receive(_ rx: OpaquePointer, index: UInt32, nowSeconds: UInt32, nowMs: UInt64,
                         counters: inout WorkerReadings.Receive) {
        var length = 0
        var truncated: Int32 = 0
        guard let data = kflow_rx_batch_data(rx, index, &length, &truncated) else { return }
        counters.datagrams &+= 1
        counters.bytes &+= UInt64(length)
        if truncated != 0 {
            counters.truncated &+= 1
            return
        }
        let (address, port) = IPAddress.fromSocketAddress(kflow_rx_batch_source(rx, index))
        guard allowList.allows(address) else {
            counters.rejected &+= 1
            return
        }
        decoder.decode(UnsafeRawBufferPointer(start: data, count: length),
                       from: ExporterAddress(address: address, port: port), nowSeconds: nowSeconds, arrivalMs: nowMs,
                       into: &sink)
    }

    private func publish(_ local: WorkerReadings.Receive) {
        var readings = WorkerReadings()
        readings.receive = local
        readings.decode = decoder.statistics
        readings.kafka = producer.counters
        readings.fleet = fleetCounters
        readings.kafkaQueueDepth = UInt64(producer.queueDepth)
        readings.templatesActive = sessionGauges.heardTemplates
        readings.exportersActive = sessionGauges.heardSessions
        readings.templatesImportedOnly = sessionGauges.importedOnlyTemplates
        readings.exportersImportedOnly = sessionGauges.importedOnlySessions
        readings.templateState = templateState
        readings.templateBytesActive = UInt64(decoder.activeTemplateBytes)
        for counter in WorkerCounter.allCases { segment[counter] = counter.metric.read(readings) }
        for kind in DecodeErrorKind.allCases { segment.setErrorCount(index: kind.rawValue, readings.decode.errors(kind)) }
    }

    private func publishExporters() {
        let startNs = Clock.monotonicNanoseconds
        defer { lastExportersPublishCostNs = Clock.monotonicNanoseconds &- startNs }
        var entries: [WorkerSegment.ExporterEntry] = []
        var gauges = SessionGauges()
        decoder.forEachSession { session in
            let stats = session.statistics
            entries.append(.init(address: session.exporter.address, port: session.exporter.port, datagrams: stats.datagrams,
                                 flows: stats.flowRecords, unknownTemplateSets: stats.setsWithUnknownTemplate,
                                 reverseFlows: stats.reverseFlows, sequenceLost: stats.sequenceLost,
                                 sequenceReordered: stats.sequenceReordered, sequenceResets: stats.sequenceResets,
                                 firstSeenSeconds: session.firstSeenSeconds, lastSeenSeconds: session.lastSeenSeconds,
                                 templateCount: UInt32(clamping: session.templateCount), domains: session.domains))
            gauges.count(session)
        }
        sessionGauges = gauges
        // The busiest exporters first, so the table's capacity keeps the ones that matter.
        if entries.count > WorkerSegment.exporterCapacity { entries.sort { $0.datagrams > $1.datagrams } }
        segment.publishExporters(entries)
        var agents: [WorkerSegment.SFlowAgentEntry] = []
        decoder.forEachSFlowAgent { agent, stats in
            agents.append(.init(agent: agent, samplePool: stats.samplePool, samplesDropped: stats.samplesDropped))
        }
        // The agents dropping most first, then the busiest, so the table's capacity keeps the ones that matter.
        if agents.count > WorkerSegment.sflowAgentCapacity {
            agents.sort { ($0.samplesDropped, $0.samplePool) > ($1.samplesDropped, $1.samplePool) }
        }
        segment.publishSFlowAgents(agents)
        var samplers: [WorkerSegment.SamplerEntry] = []
        decoder.forEachSamplingRate { exporter, domain, sampler, rate in
            samplers.append(.init(address: exporter.address, port: exporter.port, domain: domain, sampler: sampler, rate: rate))
        }
        segment.publishSamplers(samplers)
    }

    /// How soon a changed template cache is published again: 100 ms, or 5 ms with round-robin (until
    /// then a sibling that gets the exporter's next data sets drops them as unknown: the window of loss
    /// at a session's start shrinks twentyfold). Never sooner than 100 times what the last publish took,
    /// so that thousands of exporters learning templates (each change rewrites the whole snapshot) cost
    /// the worker at most about 1 % of its time.
    private func templatePublishIntervalNs() -> UInt64 {
        max(spreadsSessions ? 5_000_000 : 100_000_000, lastTemplatePublishCostNs &* Self.templatePublishCostFactor)
    }
    static let templatePublishCostFactor: UInt64 = 100
    static let exportersPublishCostFactor: UInt64 = 1_000

    /// Imports what other nodes published (slot 0 reads the topic; its siblings find those templates in
    /// its exchange), and publishes, at most every second, what this worker's exporters taught it.
    private func exchangeWithFleet(_ fleet: TemplateTopic, nowNs: UInt64) {
        let now = Clock.wallSeconds
        for message in fleet.received() {
            guard let value = message.value else {
                fleetCounters.received &+= 1  // a tombstone: the templates imported here expire by their lifetime
                continue
            }
            let accepted: Bool? = value.withUnsafeBytes { bytes in
                guard let (node, snapshot) = FleetTemplateMessage.parse(bytes) else { return false }
                if node == fleetLedger.node { return nil }  // our own, back from the topic
                fleetCounters.received &+= 1
                fleetCounters.imported &+= UInt64(decoder.importTemplateSnapshot(snapshot, nowSeconds: now))
                return decoder.lastTemplateSnapshotError == nil
            }
            if accepted == false { fleetCounters.rejected &+= 1 }
        }
        if nowNs &- lastFleetPublishNs > 1_000_000_000 {
            lastFleetPublishNs = nowNs
            for message in fleetLedger.changes(in: decoder, nowSeconds: now) { fleet.publish(key: message.key, value: message.value) }
        }
        let counters = fleet.poll()
        fleetCounters.published = counters.published
        fleetCounters.tombstones = counters.tombstones
        fleetCounters.publishFailed = counters.failed
        fleetRejectedOversized = counters.oversized
    }

    private var lastFleetPublishNs: UInt64 = 0
    private var fleetRejectedOversized: UInt64 = 0 {
        didSet { fleetCounters.rejected &+= fleetRejectedOversized &- oldValue }
    }

    private static func hostname() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "kflow" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Imports every predecessor snapshot that changed since the last import; returns templates added.
    @discardableResult
    private func importTemplateSnapshots() -> Int {
        var imported = 0
        let now = Clock.wallSeconds
        for i in templateSources.indices {
            let source = templateSources[i]
            let sequence = source.exchange.sequence
            guard sequence != source.importedSequence, sequence & 1 == 0, let bytes = source.exchange.read() else { continue }
            templateSources[i].importedSequence = sequence
            // Sequence 0: nothing published yet (a sibling started just before us), not a bad snapshot.
            if sequence == 0 || bytes.isEmpty { continue }
            imported += bytes.withUnsafeBytes { decoder.importTemplateSnapshot($0, nowSeconds: now) }
        }
        return imported
    }

    /// Imports every slot's file of the state directory (once, before the first datagram): the node's
    /// templates from before its restart. A file that is not trusted or not a whole, valid snapshot is
    /// rejected, logged and counted; the templates of a partly valid one before the bad entry are kept
    /// (each entry stands on its own, as for an exchange).
    private func importTemplateState() {
        guard let stateFiles else { return }
        do { try stateFiles.prepare() } catch {
            logger.warning("worker \(launch.slot): \(error); templates will not be kept across restarts")
        }
        let now = Clock.wallSeconds
        var imported = 0
        for file in stateFiles.readAll() {
            switch file.content {
            case .failure(let error):
                templateState.rejected &+= 1
                logger.warning("worker \(launch.slot): template state file \(file.path) rejected: \(error.operation)")
            case .success(let bytes):
                imported += bytes.withUnsafeBytes { decoder.importTemplateSnapshot($0, nowSeconds: now, source: .disk) }
                if let error = decoder.lastTemplateSnapshotError {
                    templateState.rejected &+= 1
                    logger.warning("worker \(launch.slot): template state file \(file.path) rejected: \(error)")
                }
            }
        }
        if imported > 0 { logger.info("worker \(launch.slot): \(imported) template(s) read from \(stateFiles.directory)") }
        // Written soon even without a change: after a reload the old generation's last write must not
        // be the file's final word.
        stateDirty = true
    }

    /// Writes the last published snapshot to this slot's state file.
    private func writeTemplateState() {
        guard let stateFiles else { return }
        stateDirty = false
        // Normally the exchange's latest snapshot; without an exchange (or before its first publish) made here.
        if snapshotBuffer.isEmpty || publishedTemplateGeneration != decoder.templateGeneration {
            guard decoder.templateSnapshotSize <= TemplateExchange.capacity else { return }
            decoder.writeTemplateSnapshot(into: &snapshotBuffer)
        }
        do {
            try stateFiles.write(snapshotBuffer)
            templateState.writes &+= 1
            if stateWriteFailing { logger.notice("worker \(launch.slot): template state file \(stateFiles.path) written again") }
            stateWriteFailing = false
        } catch {
            templateState.writeErrors &+= 1
            // Logged when it starts failing, not at every retry.
            if !stateWriteFailing { logger.error("worker \(launch.slot): template state not kept: \(error)") }
            stateWriteFailing = true
        }
    }

    /// Unmaps and closes the predecessors' exchanges (their regions go with the last reference).
    private func releaseTemplateSources() { templateSources = [] }

    private func publishTemplateSnapshot() {
        guard let exchange = templateExchange else { return }
        let startNs = Clock.monotonicNanoseconds
        defer { lastTemplatePublishCostNs = Clock.monotonicNanoseconds &- startNs }
        let generation = decoder.templateGeneration
        // Sized before it is written: a cache beyond the exchange is not serialised at every change.
        let size = decoder.templateSnapshotSize
        guard size <= TemplateExchange.capacity else {
            if publishedTemplateGeneration != generation {
                logger.warning("template snapshot of \(size) bytes exceeds the exchange (\(TemplateExchange.capacity)); successors will relearn templates")
                publishedTemplateGeneration = generation
            }
            return
        }
        decoder.writeTemplateSnapshot(into: &snapshotBuffer)
        if exchange.publish(snapshotBuffer) {
            publishedTemplateGeneration = generation
            stateDirty = stateFiles != nil
        } else if publishedTemplateGeneration != generation {
            logger.warning("template snapshot of \(snapshotBuffer.count) bytes exceeds the exchange; successors will relearn templates")
            publishedTemplateGeneration = generation
        }
    }
}

/// The session gauges of one worker: sessions that sent it datagrams, and those it holds only from an
/// import (a sibling's, predecessor's or state file's templates), with their templates.
struct SessionGauges {
    var heardSessions: UInt64 = 0
    var heardTemplates: UInt64 = 0
    var importedOnlySessions: UInt64 = 0
    var importedOnlyTemplates: UInt64 = 0

    mutating func count(_ session: FlowDecoder.SessionSummary) {
        if session.heard {
            heardSessions += 1
            heardTemplates += UInt64(session.templateCount)
        } else {
            importedOnlySessions += 1
            importedOnlyTemplates += UInt64(session.templateCount)
        }
    }
}
/// A sibling's exchange is a source of templates for the decoder's lookups.
extension TemplateExchange: TemplateSnapshotSource {}
