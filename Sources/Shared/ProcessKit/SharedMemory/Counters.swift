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
        case .templatesActive: Metric("kflow_templates_active", "Templates currently cached.", kind: .gauge) { $0.templatesActive }
        case .exportersActive: Metric("kflow_exporters_active", "Exporter sessions currently tracked.", kind: .gauge) { $0.exportersActive }
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
        Metric("kflow_messages_total", "IPFIX, NetFlow v9 and v5 messages whose header was valid, by protocol (ipfix, netflow_v9, netflow_v5).",
               label: ("protocol", protocolLabel), read: read)
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

    public var receive = Receive()
    public var decode = DecodeStatistics()
    public var kafka = KafkaProducer.Counters()
    public var kafkaQueueDepth: UInt64 = 0
    public var templatesActive: UInt64 = 0
    public var exportersActive: UInt64 = 0
    public var templateBytesActive: UInt64 = 0

    public init() {}
}
