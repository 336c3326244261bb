import SystemKit
import Output
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
    /// What happened to the messages given to `produce`, and to the records they carry (one per message
    /// unless messages are batches: each `produce` says how many records its message holds).
    public struct Counters: Sendable, Equatable {
        /// Accepted into librdkafka's queue.
        public var produced: UInt64 = 0
        /// Acknowledged by the broker (delivery report without error).
        public var delivered: UInt64 = 0
        /// Given up on by librdkafka (delivery report with an error: timeout, purge, rejected by the broker).
        public var failed: UInt64 = 0
        /// Of `failed`: purged by `drain` after its flush timeout, or after a fatal error (in-flight ones
        /// may still have reached the broker; nobody can know).
        public var purged: UInt64 = 0
        /// Dropped because the queue stayed full after serving callbacks once.
        public var queueFullDrops: UInt64 = 0
        /// Refused by produce for another reason (message too large, unknown topic, fatal error).
        public var produceErrors: UInt64 = 0
        /// The same outcomes in records: produced = delivered + failed + records still queued.
        public var recordsProduced: UInt64 = 0
        public var recordsDelivered: UInt64 = 0
        public var recordsFailed: UInt64 = 0
        /// Records in messages that never entered the queue (`queueFullDrops` + `produceErrors`).
        public var recordsDropped: UInt64 = 0
        /// librdkafka error callbacks (broker down, authentication, ...), logged or not.
        public var errors: UInt64 = 0
        /// Fatal errors (idempotence/ordering guarantees lost): at most one per producer.
        public var fatalErrors: UInt64 = 0
        public init() {}

        /// Messages in librdkafka's hands whose outcome is not known yet.
        public var outstanding: UInt64 { produced &- min(produced, delivered &+ failed) }
    }

    /// What `drain` did: `undeliveredAtTimeout` messages were still queued when the flush timed out
    /// (then purged and counted as failed); `unaccounted` never got a delivery report even after the purge.
    public struct DrainOutcome: Sendable, Equatable {
        public var undeliveredAtTimeout: Int
        public var unaccounted: Int
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
    ///   - log: receives librdkafka's log lines, and its error callbacks as level-3 lines of facility
    ///     "ERROR" (each error code at most once per 10 s, with the count held back), on the thread that
    ///     calls `poll`/`flush`; nil drops them (errors are still counted).
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
        // Whatever is still queued will not be delivered: purge it rather than let rd_kafka_destroy wait
        // on an unreachable broker. Nobody reads the counts any more: call `drain` first to keep them.
        rd_kafka_purge(handle, Librdkafka.purgeQueuedAndInFlight)
        rd_kafka_poll(handle, 0)
        rd_kafka_topic_destroy(topicHandle)
        rd_kafka_destroy(handle)
    }

    /// Counters so far (delivery results are counted as `poll`/`flush` serve them).
    public var counters: Counters { events.counters }
    /// Errors librdkafka reported through its error callback (broker down, authentication, ...).
    public var errorCount: UInt64 { events.counters.errors }
    /// The fatal error, as "<error name>: <reason>", once librdkafka raised one: the producer can no
    /// longer deliver (produce refuses everything); the owner should drain it and exit.
    public var fatalError: String? { events.fatalError }
    /// The latest of those errors, as "<error name>: <reason>", or nil.
    public var lastError: String? { events.lastError }
    /// The error code of the latest failed delivery report, or nil (see `librdkafkaErrorText`).
    public var lastDeliveryErrorCode: Int32? { events.lastDeliveryError }
    /// Messages and requests waiting in librdkafka (rd_kafka_outq_len).
    public var queueDepth: Int { Int(rd_kafka_outq_len(handle)) }

    /// Queues a copy of `payload` for the topic (partition chosen by librdkafka). Never blocks: when the
    /// queue is full it serves pending callbacks once without waiting and retries, then drops and counts.
    /// `records` is how many records the message carries (batch mode), so losses are counted in records too.
    /// A non-empty `key` is copied as the message key (the partitioner hashes it).
    @discardableResult
    public func produce(_ payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                        records: Int = 1) -> ProduceOutcome {
        let records = max(records, 1)
        var code = enqueue(payload, key: key, records: records)
        if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            rd_kafka_poll(handle, 0)
            code = enqueue(payload, key: key, records: records)
        }
        switch code {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            events.counters.produced += 1
            events.counters.recordsProduced += UInt64(records)
            return .queued
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            events.counters.queueFullDrops += 1
            events.counters.recordsDropped += UInt64(records)
            return .droppedQueueFull
        default:
            events.counters.produceErrors += 1
            events.counters.recordsDropped += UInt64(records)
            return .refused(code: code.rawValue)
        }
    }

    @discardableResult
    public func produce(_ payload: some Sequence<UInt8>, key: [UInt8] = [], records: Int = 1) -> ProduceOutcome {
        let bytes = Array(payload)
        return bytes.withUnsafeBytes { payload in key.withUnsafeBytes { produce(payload, key: $0, records: records) } }
    }

    private func enqueue(_ payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) -> rd_kafka_resp_err_t {
        // The record count rides in the message's opaque pointer (no allocation); the delivery report
        // hands it back. records >= 1, so the pointer is never nil.
        let status = rd_kafka_produce(topicHandle, Librdkafka.unassignedPartition, Librdkafka.copyPayload,
                                      UnsafeMutableRawPointer(mutating: payload.baseAddress), payload.count,
                                      key.count > 0 ? key.baseAddress : nil, key.count,
                                      UnsafeMutableRawPointer(bitPattern: records))
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

    /// The end of a producer's life: flushes for up to `timeoutMs`, then purges what is left (queued and
    /// in flight) and serves the purged messages' delivery reports, so every message produced ends up
    /// counted as delivered or failed (`purged`) before the owner publishes its counters and exits.
    public func drain(timeoutMs: Int) -> DrainOutcome {
        rd_kafka_flush(handle, Int32(clamping: timeoutMs))
        let left = Int(events.counters.outstanding)
        guard left > 0 else { return DrainOutcome(undeliveredAtTimeout: 0, unaccounted: 0) }
        // Blocks only while librdkafka's threads hand over their queues; the reports then wait on the
        // main queue, which the flush below serves (it returns as soon as none is outstanding).
        rd_kafka_purge(handle, Librdkafka.purgeQueuedAndInFlight)
        let deadline = Clock.monotonicNanoseconds &+ Self.purgeReportWaitNs
        while events.counters.outstanding > 0, Clock.monotonicNanoseconds < deadline {
            rd_kafka_flush(handle, 100)
        }
        return DrainOutcome(undeliveredAtTimeout: left, unaccounted: Int(events.counters.outstanding))
    }

    /// How long `drain` waits for the delivery reports of purged messages (they are normally served at once).
    static let purgeReportWaitNs: UInt64 = 2_000_000_000

    /// Makes librdkafka raise a fatal error as if the idempotent producer had lost its guarantees
    /// (rd_kafka_test_fatal_error): for tests of what the owner does then.
    public func simulateFatalError(reason: String) {
        rd_kafka_test_fatal_error(handle, RD_KAFKA_RESP_ERR__INCONSISTENT, reason)
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension KafkaProducer: MessageTransport {
    public func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
        produce(message, key: key, records: records)
    }
}

/// What librdkafka's callbacks update, reached through the configuration's opaque pointer. Owned by the
/// producer and outliving its rd_kafka_t, so the pointer is valid whenever a callback can run.
private final class ProducerEvents {
    var counters = KafkaProducer.Counters()
    var lastError: String?
    var fatalError: String?
    var lastDeliveryError: Int32?
    var errorLog = ErrorLogLimiter()
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
    let records = UInt64(max(Int(bitPattern: message.pointee._private), 1))
    if error == RD_KAFKA_RESP_ERR_NO_ERROR {
        events.counters.delivered += 1
        events.counters.recordsDelivered += records
    } else {
        events.counters.failed += 1
        events.counters.recordsFailed += records
        if error == RD_KAFKA_RESP_ERR__PURGE_QUEUE || error == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT {
            events.counters.purged += 1
        }
        events.lastDeliveryError = error.rawValue
    }
}

private func kafkaError(_ handle: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?,
                        _ opaque: UnsafeMutableRawPointer?) {
    guard let events = ProducerEvents.from(opaque) else { return }
    events.counters.errors += 1
    var code = code
    var text = reason.map { String(cString: $0) } ?? ""
    var fatal = false
    if code == RD_KAFKA_RESP_ERR__FATAL.rawValue, let handle {
        // The callback only says "fatal"; the underlying error and its reason come from here.
        var buffer = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        let underlying = rd_kafka_fatal_error(handle, &buffer, buffer.count)
        if underlying != RD_KAFKA_RESP_ERR_NO_ERROR {
            code = underlying.rawValue
            text = String(cString: buffer)
        }
        fatal = true
    }
    let name = String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code)))
    events.lastError = "\(name): \(text)"
    if fatal && events.fatalError == nil {
        events.fatalError = events.lastError
        events.counters.fatalErrors += 1
    }
    // librdkafka logs a fatal error itself (facility FATAL, once); the others are logged here, at most
    // once per code per interval.
    guard !fatal, let log = events.log else { return }
    if let held = events.errorLog.admit(code: code, nowNs: Clock.monotonicNanoseconds) {
        let note = held > 0 ? " (and \(held) more since the last one logged)" : ""
        log(KafkaProducer.LogMessage(level: 3, facility: "ERROR", message: "\(name): \(text)\(note)"))
    }
}

private func kafkaLog(_ handle: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?,
                      _ message: UnsafePointer<CChar>?) {
    guard let handle, let events = ProducerEvents.from(rd_kafka_opaque(handle)), let log = events.log else { return }
    log(KafkaProducer.LogMessage(level: level, facility: facility.map { String(cString: $0) } ?? "",
                                 message: message.map { String(cString: $0) } ?? ""))
}
