import CRdKafka

#if canImport(Glibc)
import Glibc
#endif

/// A librdkafka producer for one topic that only moves bytes: it copies each message into librdkafka's
/// queue, never blocks the caller, and counts what happens to every message.
///
/// Threading: all callbacks (delivery reports, errors, logs) run inside `poll()`, `flush(timeoutMs:)`
/// or `deinit` on the caller's thread — logs are forwarded to the main queue (`log.queue=true`), so
/// librdkafka's own threads never call into Swift. One producer belongs to one thread.
public final class KafkaProducer {
    /// What happened to the messages given to `produce`.
    public struct Counters: Sendable, Equatable {
        /// Accepted into librdkafka's queue.
        public var produced: UInt64 = 0
        /// Acknowledged by the broker (delivery report without error).
        public var delivered: UInt64 = 0
        /// Given up on by librdkafka (delivery report with an error: timeout, purge, rejected by the broker).
        public var failed: UInt64 = 0
        /// Dropped because the queue stayed full after serving callbacks once.
        public var queueFullDrops: UInt64 = 0
        /// Refused by produce for another reason (message too large, unknown topic, fatal error).
        public var produceErrors: UInt64 = 0
        public init() {}
    }

    /// The outcome of one `produce` call.
    public enum ProduceOutcome: Equatable, Sendable {
        case queued
        case droppedQueueFull
        /// librdkafka's error code (see `librdkafkaErrorText`).
        case refused(code: Int32)
    }

    /// One librdkafka log line; `level` is syslog's (3 = error, 4 = warning, 6 = info, 7 = debug).
    public struct LogMessage: Sendable {
        public let level: Int32
        public let facility: String
        public let message: String
    }

    public let topic: String
    private let handle: OpaquePointer
    private let topicHandle: OpaquePointer
    private let events: ProducerEvents

    /// - Parameters:
    ///   - properties: librdkafka properties, applied in order, verbatim (`kafka.props.*` without the prefix).
    ///   - topic: where every message goes.
    ///   - log: receives librdkafka's log lines, on the thread that calls `poll`/`flush`; nil drops them.
    public init(properties: [(name: String, value: String)], topic: String,
                log: ((LogMessage) -> Void)? = nil) throws(KafkaError) {
        self.topic = topic
        let events = ProducerEvents(log: log)
        self.events = events

        // Ours last, so a property from the configuration cannot undo what the callbacks rely on.
        let configuration = try KafkaConfiguration.make(properties: properties + [("log.queue", "true")])
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(events).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(configuration, kafkaDeliveryReport)
        rd_kafka_conf_set_error_cb(configuration, kafkaError)
        rd_kafka_conf_set_log_cb(configuration, kafkaLog)

        // On success rd_kafka_new owns the configuration; on failure it is still ours.
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw .producerCreationFailed(message: Self.text(errorText))
        }
        // Logs go to the main queue, served by poll: without this they would linger (log.queue=true).
        rd_kafka_set_log_queue(handle, nil)
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            let message = librdkafkaErrorText(rd_kafka_last_error().rawValue)
            rd_kafka_destroy(handle)
            throw .topicCreationFailed(topic: topic, message: message)
        }
        self.handle = handle
        self.topicHandle = topicHandle
    }

    deinit {
        // Whatever is still queued will not be delivered: purge it (counted as failed by the poll
        // below) rather than let rd_kafka_destroy wait on an unreachable broker.
        rd_kafka_purge(handle, Librdkafka.purgeQueuedAndInFlight)
        rd_kafka_poll(handle, 0)
        rd_kafka_topic_destroy(topicHandle)
        rd_kafka_destroy(handle)
    }

    /// Counters so far (delivery results are counted as `poll`/`flush` serve them).
    public var counters: Counters { events.counters }
    /// Errors librdkafka reported through its error callback (broker down, authentication, ...).
    public var errorCount: UInt64 { events.errorCount }
    /// The latest of those errors, as "<error name>: <reason>", or nil.
    public var lastError: String? { events.lastError }
    /// The error code of the latest failed delivery report, or nil (see `librdkafkaErrorText`).
    public var lastDeliveryErrorCode: Int32? { events.lastDeliveryError }
    /// Messages and requests waiting in librdkafka (rd_kafka_outq_len).
    public var queueDepth: Int { Int(rd_kafka_outq_len(handle)) }

    /// Queues a copy of `payload` for the topic (partition chosen by librdkafka). Never blocks: when the
    /// queue is full it serves pending callbacks once without waiting and retries, then drops and counts.
    @discardableResult
    public func produce(_ payload: UnsafeRawBufferPointer) -> ProduceOutcome {
        var code = enqueue(payload)
        if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            rd_kafka_poll(handle, 0)
            code = enqueue(payload)
        }
        switch code {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            events.counters.produced += 1
            return .queued
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            events.counters.queueFullDrops += 1
            return .droppedQueueFull
        default:
            events.counters.produceErrors += 1
            return .refused(code: code.rawValue)
        }
    }

    @discardableResult
    public func produce(_ payload: some Sequence<UInt8>) -> ProduceOutcome {
        let bytes = Array(payload)
        return bytes.withUnsafeBytes { produce($0) }
    }

    private func enqueue(_ payload: UnsafeRawBufferPointer) -> rd_kafka_resp_err_t {
        let status = rd_kafka_produce(topicHandle, Librdkafka.unassignedPartition, Librdkafka.copyPayload,
                                      UnsafeMutableRawPointer(mutating: payload.baseAddress), payload.count,
                                      nil, 0, nil)
        return status == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_last_error()
    }

    /// Serves delivery reports, errors and logs that are ready, without waiting. Call once per loop turn.
    /// Returns the number of events served.
    @discardableResult
    public func poll() -> Int { Int(rd_kafka_poll(handle, 0)) }

    /// Waits up to `timeoutMs` for everything queued to be delivered (or to fail), serving callbacks.
    /// Returns the number of messages still undelivered (0 when all were handled).
    @discardableResult
    public func flush(timeoutMs: Int) -> Int {
        rd_kafka_flush(handle, Int32(clamping: timeoutMs))
        return queueDepth
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension KafkaProducer: MessageTransport {
    public func send(_ message: UnsafeRawBufferPointer) { produce(message) }
}

/// What librdkafka's callbacks update, reached through the configuration's opaque pointer. Owned by the
/// producer and outliving its rd_kafka_t, so the pointer is valid whenever a callback can run.
private final class ProducerEvents {
    var counters = KafkaProducer.Counters()
    var errorCount: UInt64 = 0
    var lastError: String?
    var lastDeliveryError: Int32?
    let log: ((KafkaProducer.LogMessage) -> Void)?

    init(log: ((KafkaProducer.LogMessage) -> Void)?) { self.log = log }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ProducerEvents? {
        opaque.map { Unmanaged<ProducerEvents>.fromOpaque($0).takeUnretainedValue() }
    }
}

private func kafkaDeliveryReport(_: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?,
                                 _ opaque: UnsafeMutableRawPointer?) {
    guard let events = ProducerEvents.from(opaque), let message else { return }
    let error = message.pointee.err
    if error == RD_KAFKA_RESP_ERR_NO_ERROR {
        events.counters.delivered += 1
    } else {
        events.counters.failed += 1
        events.lastDeliveryError = error.rawValue
    }
}

private func kafkaError(_: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?,
                        _ opaque: UnsafeMutableRawPointer?) {
    guard let events = ProducerEvents.from(opaque) else { return }
    events.errorCount += 1
    let name = String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code)))
    events.lastError = "\(name): \(reason.map { String(cString: $0) } ?? "")"
}

private func kafkaLog(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?,
                      _ message: UnsafePointer<CChar>?) {
    guard let handle, let events = ProducerEvents.from(rd_kafka_opaque(handle)), let log = events.log else { return }
    log(KafkaProducer.LogMessage(level: level, facility: facility.map { String(cString: $0) } ?? "",
                                 message: message.map { String(cString: $0) } ?? ""))
}
