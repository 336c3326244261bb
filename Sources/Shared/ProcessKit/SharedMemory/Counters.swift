import WireFormat
import KafkaOutput
/// A Prometheus metric type (the exposition writer in MetricsServer uses the same).
public enum MetricKind: String, Sendable { case counter, gauge }

/// What a worker publishes to the master. Counters are cumulative since the worker started; gauges are
/// current values. The master adds the final counters of retired workers to its own totals.
///
/// This file is the one list of them: a case names the counter in code and gives its slot in the
/// segment (its raw value, so cases are only ever appended: a master and its workers come from one
/// build, but an appended slot keeps every older slot where it was); `metric` says how the master
/// exposes it and where the worker reads it. `Worker.publish` and the master's /metrics loop over
/// `allCases`, and the README's metrics table is checked against `metric.name` (CountersDocsTests).
/// Adding a counter: a case here, its row in `metric`, and a README row.
public enum WorkerCounter: Int, CaseIterable, Sendable {
    case datagramsReceived, datagramBytesReceived, datagramsTruncated, receiveErrors
    case flowsDecoded, optionsRecords, unknownTemplateSets
    case templatesAdded, templatesReplaced, templatesExpired, templatesRejected, templateWithdrawalsIgnored
    case templatesImported
    case kafkaProduced, kafkaDelivered, kafkaDeliveryFailed, kafkaQueueFullDrops, kafkaProduceErrors
    case kafkaQueueDepth, templatesActive, exportersActive
    case kafkaRecordsProduced, kafkaRecordsDelivered, kafkaRecordsFailed, kafkaRecordsDropped
    case kafkaPurged, kafkaErrors, kafkaFatalErrors
    case datagramsRejected
    case sessionsEvictedSessionLimit, sessionsEvictedAddressQuota, sessionsEvictedTemplateLimit
    case recordsWithoutFlowFields, datagramsWithoutSession
    case templateBytesActive
    case ipfixMessages, netflowV9Messages, netflowV5Messages
    // The sFlow case sits here, out of append order, so the kflow_messages_total family stays contiguous.
    case sflowDatagrams
    case exportersImportedOnly, templatesImportedOnly
    case templateStateRejected, templateStateWrites, templateStateWriteErrors
    case sflowFlowSamples, sflowCounterSamples, sflowUnknownSamples, sflowUnknownRecords
    case sflowPartialPacketHeaders
    case siblingTemplateLookups, templatesFromSiblings
    case fleetTemplatesPublished, fleetTombstonesPublished, fleetPublishFailed
    case fleetMessagesReceived, fleetTemplatesImported, fleetMessagesRejected
    case reverseFlows, flowsUnanchoredTimes, sequenceLost, sequenceReordered, sequenceResets
    case flowsSamplingUnknown

    /// How the master exposes a counter, and what the worker stores in its slot.
    public struct Metric: Sendable {
        public let name: String
        public let kind: MetricKind
        /// One label (name, value) distinguishing this slot from the others of its family (e.g. a reason).
        public let label: (String, String)?
        public let help: String
        /// The value from the worker's readings (called at each publish, every 20 ms: not a hot path).
        public let read: @Sendable (WorkerReadings) -> UInt64

        init(_ name: String, _ help: String, kind: MetricKind = .counter, label: (String, String)? = nil,
             read: @escaping @Sendable (WorkerReadings) -> UInt64) {
            self.name = name
            self.kind = kind
            self.label = label
            self.help = help
            self.read = read
        }
    }

    /// Every counter's metric, by raw value (built once: `metric` is read per counter per publish).
    private static let metrics: [Metric] = allCases.map(\.row)

    public var metric: Metric { Self.metrics[rawValue] }
    public var isGauge: Bool { metric.kind == .gauge }

    private var row: Metric {
        switch self {
        case .datagramsReceived: Metric("kflow_datagrams_received_total", "UDP datagrams received.") { $0.receive.datagrams }
        case .datagramBytesReceived: Metric("kflow_datagram_bytes_received_total", "UDP payload bytes received.") { $0.receive.bytes }
        case .datagramsTruncated: Metric("kflow_datagrams_truncated_total", "Datagrams larger than the receive buffer, dropped.") { $0.receive.truncated }
        case .receiveErrors: Metric("kflow_receive_errors_total", "Socket receive errors.") { $0.receive.receiveErrors }
        case .flowsDecoded: Metric("kflow_flows_decoded_total", "Flow records decoded.") { $0.decode.flowRecords }
        case .optionsRecords: Metric("kflow_options_records_total", "Options data records parsed (not emitted as flows).") { $0.decode.optionsRecords }
        case .unknownTemplateSets: Metric("kflow_unknown_template_sets_total", "Data sets dropped because their template is unknown (per exporter: kflow_exporter_unknown_template_sets_total).") { $0.decode.setsWithUnknownTemplate }
        case .templatesAdded: Metric("kflow_templates_added_total", "Templates learned.") { $0.decode.templatesAdded }
        case .templatesReplaced: Metric("kflow_templates_replaced_total", "Templates redefined by their exporter.") { $0.decode.templatesReplaced }
        case .templatesExpired: Metric("kflow_templates_expired_total", "Templates expired after templates.lifetime without refresh.") { $0.decode.templatesExpired }
        case .templatesRejected: Metric("kflow_templates_rejected_total", "Templates refused by the per-session or total limit.") { $0.decode.templatesRejectedByLimit }
        case .templateWithdrawalsIgnored: Metric("kflow_template_withdrawals_ignored_total", "Template withdrawals received over UDP and ignored (RFC 7011 section 8.4).") { $0.decode.withdrawalsIgnored }
        case .templatesImported: Metric("kflow_templates_imported_total", "Templates taken over from earlier workers' snapshots (reload, restart).") { $0.decode.templatesImported }
        case .kafkaProduced: Metric("kflow_kafka_produced_total", "Messages handed to the Kafka producer.") { $0.kafka.produced }
        case .kafkaDelivered: Metric("kflow_kafka_delivered_total", "Messages the broker acknowledged.") { $0.kafka.delivered }
        case .kafkaDeliveryFailed: Metric("kflow_kafka_delivery_failed_total", "Messages that failed delivery (after librdkafka's retries).") { $0.kafka.failed }
        case .kafkaQueueFullDrops: Metric("kflow_kafka_queue_full_drops_total", "Messages dropped because the producer queue was full.") { $0.kafka.queueFullDrops }
        case .kafkaProduceErrors: Metric("kflow_kafka_produce_errors_total", "Messages the producer refused for another reason.") { $0.kafka.produceErrors }
        case .kafkaQueueDepth: Metric("kflow_kafka_queue_depth", "Messages waiting in the producers' queues.", kind: .gauge) { $0.kafkaQueueDepth }
        case .templatesActive: Metric("kflow_templates_active", "Templates cached for exporter sessions that sent data to kflow, each counted once.", kind: .gauge) { $0.templatesActive }
        case .exportersActive: Metric("kflow_exporters_active", "Exporter sessions (address and source port) that sent datagrams to kflow and are still tracked, each counted once.", kind: .gauge) { $0.exportersActive }
        case .kafkaRecordsProduced: Metric("kflow_kafka_records_produced_total", "Flow records in the messages handed to the Kafka producer (equals messages unless output.batch.records > 1).") { $0.kafka.recordsProduced }
        case .kafkaRecordsDelivered: Metric("kflow_kafka_records_delivered_total", "Flow records in messages the broker acknowledged.") { $0.kafka.recordsDelivered }
        case .kafkaRecordsFailed: Metric("kflow_kafka_records_failed_total", "Flow records in messages that failed delivery, purges included.") { $0.kafka.recordsFailed }
        case .kafkaRecordsDropped: Metric("kflow_kafka_records_dropped_total", "Flow records in messages dropped on a full queue or refused by the producer.") { $0.kafka.recordsDropped }
        case .kafkaPurged: Metric("kflow_kafka_purged_total", "Messages still undelivered when a worker stopped (kafka.flush.timeout.ms passed, or a fatal producer error), purged; included in kflow_kafka_delivery_failed_total.") { $0.kafka.purged }
        case .kafkaErrors: Metric("kflow_kafka_errors_total", "Errors librdkafka reported (broker down, authentication, all brokers down, ...); logged at most once per error code per 10 s.") { $0.kafka.errors }
        case .kafkaFatalErrors: Metric("kflow_kafka_fatal_errors_total", "Fatal producer errors; the worker drains, exits and is replaced.") { $0.kafka.fatalErrors }
        case .datagramsRejected: Metric("kflow_datagrams_rejected_total", "Datagrams from senders outside server.allow, dropped before decoding.") { $0.receive.rejected }
        case .sessionsEvictedSessionLimit: Self.sessionsEvicted(.sessionLimit)
        case .sessionsEvictedAddressQuota: Self.sessionsEvicted(.addressQuota)
        case .sessionsEvictedTemplateLimit: Self.sessionsEvicted(.templateLimit)
        case .recordsWithoutFlowFields: Metric("kflow_records_without_flow_fields_total", "Data records whose template has no address, port, protocol or counter field: parsed, not emitted.") { $0.decode.recordsWithoutFlowFields }
        case .datagramsWithoutSession: Metric("kflow_datagrams_without_session_total", "IPFIX/v9 datagrams of a new exporter session dropped: exporters.max reached and every session holds templates.") { $0.decode.datagramsWithoutSession }
        case .templateBytesActive: Metric("kflow_template_bytes_active", "Memory the cached templates use, in bytes (as templates.max.bytes counts it).", kind: .gauge) { $0.templateBytesActive }
        case .ipfixMessages: Self.messages("ipfix") { $0.decode.ipfixMessages }
        case .netflowV9Messages: Self.messages("netflow_v9") { $0.decode.netflowV9Messages }
        case .netflowV5Messages: Self.messages("netflow_v5") { $0.decode.netflowV5Messages }
        case .exportersImportedOnly: Metric("kflow_exporters_imported_only", "Exporter sessions a worker holds only from imported templates (a sibling, predecessor or state file), summed over workers: no datagram of theirs reached that worker.", kind: .gauge) { $0.exportersImportedOnly }
        case .templatesImportedOnly: Metric("kflow_templates_imported_only", "Templates of those sessions, summed over workers.", kind: .gauge) { $0.templatesImportedOnly }
        case .templateStateRejected: Metric("kflow_template_state_rejected_total", "Template state files (templates.state.dir) rejected at start: corrupt, truncated, foreign or unsafe to trust; each is logged.") { $0.templateState.rejected }
        case .templateStateWrites: Metric("kflow_template_state_writes_total", "Template state files written (atomically: temporary file, fsync, rename).") { $0.templateState.writes }
        case .templateStateWriteErrors: Metric("kflow_template_state_write_errors_total", "Template state files that could not be written; logged.") { $0.templateState.writeErrors }
        case .sflowDatagrams: Self.messages("sflow") { $0.decode.sflowDatagrams }
        case .sflowFlowSamples: Self.sflowSamples("flow") { $0.decode.sflowFlowSamples }
        case .sflowCounterSamples: Self.sflowSamples("counter") { $0.decode.sflowCounterSamples }
        case .sflowUnknownSamples: Self.sflowSamples("unknown") { $0.decode.sflowUnknownSamples }
        case .sflowUnknownRecords: Metric("kflow_sflow_records_skipped_total", "sFlow flow records of formats kflow does not read, skipped by their length.") { $0.decode.sflowUnknownRecords }
        case .sflowPartialPacketHeaders: Metric("kflow_sflow_partial_headers_total", "Sampled packet headers that end before the last layer kflow reads (snap length or damage): the record keeps the fields before the cut.") { $0.decode.sflowPartialPacketHeaders }
        case .siblingTemplateLookups: Metric("kflow_sibling_template_lookups_total", "Unknown templates looked up in the other workers' template snapshots (at most once per session per publish of theirs).") { $0.decode.siblingLookups }
        case .templatesFromSiblings: Metric("kflow_templates_from_siblings_total", "Templates taken over from other workers of the same generation (lookups, and the round-robin sync); also in kflow_templates_imported_total.") { $0.decode.templatesFromSiblings }
        case .fleetTemplatesPublished: Metric("kflow_fleet_templates_published_total", "Template definitions this node's workers heard from exporters and published to templates.topic.") { $0.fleet.published }
        case .fleetTombstonesPublished: Metric("kflow_fleet_tombstones_published_total", "Tombstones (null values) published to templates.topic for templates that expired here.") { $0.fleet.tombstones }
        case .fleetPublishFailed: Metric("kflow_fleet_publish_failed_total", "Template messages the producer refused or failed to deliver to templates.topic.") { $0.fleet.publishFailed }
        case .fleetMessagesReceived: Metric("kflow_fleet_messages_received_total", "Messages read from templates.topic that other nodes published (tombstones included; this node's own are skipped).") { $0.fleet.received }
        case .fleetTemplatesImported: Metric("kflow_fleet_templates_imported_total", "Templates from templates.topic added or redefined here; also in kflow_templates_imported_total.") { $0.fleet.imported }
        case .fleetMessagesRejected: Metric("kflow_fleet_messages_rejected_total", "Messages read from templates.topic that are not a kflow template message (bad key, envelope or snapshot, or over the size bound); a bad snapshot is also in kflow_decode_errors_total{reason=\"invalid_template_snapshot\"}.") { $0.fleet.rejected }
        case .reverseFlows: Metric("kflow_reverse_flows_total", "Reverse directions of biflow records (RFC 5103, NSEL initiator/responder) emitted as flows of their own (output.biflow=split; per exporter: kflow_exporter_reverse_flows_total).") { $0.decode.reverseFlows }
        case .flowsUnanchoredTimes: Metric("kflow_flows_unanchored_times_total", "Flows emitted without the start/end their exporter sent as uptime, because nothing anchors it in time (IPFIX flowStart/EndSysUpTime without a systemInitTimeMilliseconds that explains it).") { $0.decode.flowsWithUnanchoredTimes }
        case .sequenceLost: Metric("kflow_sequence_lost_total", "Units the exporters numbered but kflow never received, by their sequence numbers: IPFIX data records, NetFlow v9 packets, v5 flows (per exporter: kflow_exporter_sequence_lost_total).") { $0.decode.sequenceLost }
        case .sequenceReordered: Metric("kflow_sequence_reordered_total", "Messages that arrived behind a later one of their exporter stream (late within the reorder window, or stray).") { $0.decode.sequenceReordered }
        case .sequenceResets: Metric("kflow_sequence_resets_total", "Exporter sequence restarts (exporter restart: uptime fell, or the numbers restarted), not counted as loss.") { $0.decode.sequenceResets }
        case .flowsSamplingUnknown: Metric("kflow_flows_sampling_unknown_total", "Flow records whose sampling rate neither the exporter (record, options data, v5 header) nor sampling.override gave; sampling.default, if set, was used for them.") { $0.decode.flowsWithUnknownSampling }
        }
    }

    private static func sessionsEvicted(_ reason: SessionEvictionReason) -> Metric {
        Metric("kflow_template_sessions_evicted_total",
               "Exporter sessions (and their templates) evicted before expiry, by reason: session_limit (exporters.max; only sessions without templates), address_quota (exporters.max.per.address), template_limit (templates.max.total or templates.max.bytes).",
               label: ("reason", reason.label)) {
            $0.decode.sessionsEvicted(reason)
        }
    }

    private static func messages(_ protocolLabel: String, read: @escaping @Sendable (WorkerReadings) -> UInt64) -> Metric {
        Metric("kflow_messages_total", "IPFIX, NetFlow v9 and v5 messages and sFlow v5 datagrams whose header was valid, by protocol (ipfix, netflow_v9, netflow_v5, sflow).",
               label: ("protocol", protocolLabel), read: read)
    }

    private static func sflowSamples(_ type: String, read: @escaping @Sendable (WorkerReadings) -> UInt64) -> Metric {
        Metric("kflow_sflow_samples_total", "sFlow samples read, by type: flow (formats 1 and 3; each emitted as one record unless malformed), counter (formats 2 and 4; not flows), unknown (skipped by their length).",
               label: ("type", type), read: read)
    }
}

/// Everything a worker's counters are read from at a publish.
public struct WorkerReadings: Sendable {
    /// Counted by the receive loop itself.
    public struct Receive: Sendable {
        public var datagrams: UInt64 = 0
        public var bytes: UInt64 = 0
        public var truncated: UInt64 = 0
        public var receiveErrors: UInt64 = 0
        /// Datagrams from senders outside `server.allow`.
        public var rejected: UInt64 = 0
        public init() {}
    }

    /// Templates shared with the fleet through `templates.topic`.
    public struct Fleet: Sendable {
        public var published: UInt64 = 0
        public var tombstones: UInt64 = 0
        public var publishFailed: UInt64 = 0
        public var received: UInt64 = 0
        public var imported: UInt64 = 0
        public var rejected: UInt64 = 0
        public init() {}
    }

    public var receive = Receive()
    public var fleet = Fleet()
    public var decode = DecodeStatistics()
    public var kafka = KafkaProducer.Counters()
    public var kafkaQueueDepth: UInt64 = 0
    public var templatesActive: UInt64 = 0
    public var exportersActive: UInt64 = 0
    public var exportersImportedOnly: UInt64 = 0
    public var templatesImportedOnly: UInt64 = 0
    /// What the worker did with its template state file.
    public struct TemplateState: Sendable {
        public var rejected: UInt64 = 0
        public var writes: UInt64 = 0
        public var writeErrors: UInt64 = 0
        public init() {}
    }
    public var templateState = TemplateState()
    public var templateBytesActive: UInt64 = 0

    public init() {}
}
