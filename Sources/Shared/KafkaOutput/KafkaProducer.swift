import SystemKit
import Output
import CRdKafka

#if canImport(Glibc)
import Glibc
#endif

/// A librdkafka producer for one topic that only moves bytes: it copies each message into librdkafka's
/// queue, never blocks the caller, and counts what happens to every message.
///
/// Messages given to `send` are staged and handed to librdkafka together by `submit()` (the worker calls
/// it once per receive batch) with one `rd_kafka_produce_batch` call and an explicit partition: one
/// clock read and one topic/partition lock per call instead of per message, and no partitioner. Unkeyed
/// messages go to one partition, the next one every two linger periods (librdkafka's sticky partitioning,
/// without its per-message cost), over the topic's partitions (learned from metadata by `PartitionWatcher`);
/// keyed ones to the partition the configured partitioner would choose (`KeyPartitioner`). Until the
/// partition count is known, or for partitioners kflow does not compute, librdkafka's partitioner chooses.
///
/// Threading: delivery reports arrive as events on the main queue, served by `poll()`, `flush` and
/// `drain` on the caller's thread; errors and logs are callbacks served there too (logs are forwarded to
/// the main queue, `log.queue=true`), so librdkafka's own threads never call into Swift. One producer
/// belongs to one thread.
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
    /// The main queue, where delivery report events wait for `poll`.
    private let mainQueue: OpaquePointer
    private let events: ProducerEvents
    private let staged = StagedMessages()
    private let keyPartitioner: KeyPartitioner
    private let partitions: PartitionWatcher
    private var partition: Int32 = 0
    private var partitionSinceNs: UInt64 = 0
    /// How long unkeyed messages stay on one partition: `sticky.partitioning.linger.ms` when configured,
    /// else two `linger.ms` (100 ms with kflow's defaults), at least 10 ms. Measured (docs/BENCHMARKS.md):
    /// switching every 10 ms, librdkafka's default, made Tansu's cost per flow 1.4–1.6× at 100 k flows/s
    /// (smaller batches per partition); two linger periods give each request one full batch.
    private let stickyNs: UInt64
    /// Delivery-report message pointers, reused.
    private var reportBuffer = [UnsafePointer<rd_kafka_message_t>?](repeating: nil, count: 1024)

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
        keyPartitioner = KeyPartitioner(properties: properties)
        func milliseconds(_ name: String) -> UInt64? { properties.last { $0.name == name }.flatMap { UInt64($0.value) } }
        let lingerMs = milliseconds("linger.ms") ?? milliseconds("queue.buffering.max.ms") ?? 5
        stickyNs = max(milliseconds("sticky.partitioning.linger.ms") ?? 2 * lingerMs, 10) * 1_000_000
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(events).toOpaque())
        // Delivery reports as events: `poll` takes them a request's batch at a time (no callback per message).
        rd_kafka_conf_set_events(configuration, Librdkafka.deliveryReportEvent)
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
        mainQueue = rd_kafka_queue_get_main(handle)
        partitions = PartitionWatcher(handle: handle, topicHandle: topicHandle)
    }

    deinit {
        // Whatever is still queued will not be delivered: purge it rather than let rd_kafka_destroy wait
        // on an unreachable broker. Nobody reads the counts any more: call `drain` first to keep them.
        partitions.stop()
        rd_kafka_purge(handle, Librdkafka.purgeQueuedAndInFlight)
        serveEvents(timeoutMs: 0)
        rd_kafka_queue_destroy(mainQueue)
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

    /// Queues a copy of `payload` for the topic at once (`send` + `submit` for one message) and says what
    /// became of it. Never blocks: when the queue is full it serves pending reports once without waiting
    /// and retries, then drops and counts. `records` is how many records the message carries (batch
    /// mode), so losses are counted in records too. A non-empty `key` is copied as the message key.
    @discardableResult
    public func produce(_ payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                        records: Int = 1) -> ProduceOutcome {
        submit()
        stage(payload, key: key, records: records)
        return submit(outcomeOfFirst: true)
    }

    @discardableResult
    public func produce(_ payload: some Sequence<UInt8>, key: [UInt8] = [], records: Int = 1) -> ProduceOutcome {
        let bytes = Array(payload)
        return bytes.withUnsafeBytes { payload in key.withUnsafeBytes { produce(payload, key: $0, records: records) } }
    }

    /// Copies the message into the staging area; `submit()` hands what is staged to librdkafka (and is
    /// called here when the area is full, so the caller never has to).
    public func stage(_ payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
        if !staged.fits(payload.count + key.count) { submit() }
        staged.append(payload, key: key, records: max(records, 1))
    }

    /// Hands every staged message to librdkafka with one `rd_kafka_produce_batch` call (per partition
    /// choice: unkeyed ones to the next partition in turn, keyed ones each to its own), and counts the
    /// outcome of each. `outcomeOfFirst` returns the first message's outcome (for `produce`).
    @discardableResult
    public func submit(outcomeOfFirst: Bool = false) -> ProduceOutcome {
        guard staged.count > 0 else { return .queued }
        let partitionCount = partitions.count
        let count = staged.count
        var messages = staged.messages(topic: topicHandle)
        var flags = Librdkafka.copyPayload
        var partition = Librdkafka.unassignedPartition
        if partitionCount > 0 {
            if staged.keyed {
                if keyPartitioner == .murmur2 {
                    flags |= Librdkafka.perMessagePartition
                    for i in 0..<count {
                        messages[i].partition = KeyPartitioner.partition(
                            of: UnsafeRawBufferPointer(start: messages[i].key, count: messages[i].key_len), partitions: partitionCount)
                    }
                }
            } else {
                let now = Clock.monotonicNanoseconds
                if now &- partitionSinceNs >= stickyNs {
                    self.partition = (self.partition + 1) % partitionCount
                    partitionSinceNs = now
                }
                partition = self.partition % partitionCount
            }
        }
        var failures = produceBatch(&messages, partition: partition, flags: flags)
        if failures > 0 { failures = retry(&messages, flags: flags) }
        var first = ProduceOutcome.queued
        for i in 0..<count {
            let records = UInt64(Int(bitPattern: messages[i]._private))
            let outcome: ProduceOutcome
            switch messages[i].err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                events.counters.produced += 1
                events.counters.recordsProduced += records
                outcome = .queued
            case RD_KAFKA_RESP_ERR__QUEUE_FULL:
                events.counters.queueFullDrops += 1
                events.counters.recordsDropped += records
                outcome = .droppedQueueFull
            default:
                events.counters.produceErrors += 1
                events.counters.recordsDropped += records
                outcome = .refused(code: messages[i].err.rawValue)
            }
            if i == 0 { first = outcome }
        }
        staged.clear()
        return outcomeOfFirst ? first : .queued
    }

    /// Messages refused by the first call get one more chance: after serving pending reports (queue
    /// full), or unassigned (a partition the topic does not have: the partition count is relearned).
    /// Returns how many are still refused.
    private func retry(_ messages: inout [rd_kafka_message_t], flags: Int32) -> Int {
        var again: [Int] = []
        var unknownPartition = false
        for i in messages.indices where messages[i].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if messages[i].err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION { unknownPartition = true }
            if messages[i].err == RD_KAFKA_RESP_ERR__QUEUE_FULL || messages[i].err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION {
                again.append(i)
            }
        }
        guard !again.isEmpty else { return 0 }
        if unknownPartition {
            partitions.invalidate()
        } else {
            serveEvents(timeoutMs: 0)
        }
        var subset = again.map { messages[$0] }
        for i in subset.indices { subset[i].err = RD_KAFKA_RESP_ERR_NO_ERROR }
        let failures = produceBatch(&subset, partition: Librdkafka.unassignedPartition,
                                    flags: flags & ~Librdkafka.perMessagePartition)
        for (j, i) in again.enumerated() { messages[i].err = subset[j].err }
        return failures
    }

    /// rd_kafka_produce_batch; returns how many messages it refused (each has its `err` set).
    private func produceBatch(_ messages: inout [rd_kafka_message_t], partition: Int32, flags: Int32) -> Int {
        let count = messages.count
        let accepted = messages.withUnsafeMutableBufferPointer {
            rd_kafka_produce_batch(topicHandle, partition, flags, $0.baseAddress, Int32(count))
        }
        return count - Int(accepted)
    }

    /// The topic's partition count from metadata; 0 while unknown (then librdkafka partitions).
    public var partitionCount: Int32 { partitions.count }

    /// Serves delivery reports, errors and logs that are ready, waiting up to `timeoutMs` for the first
    /// (the worker never waits: it calls this once per loop turn). Returns the number of events served.
    @discardableResult
    public func poll(timeoutMs: Int32 = 0) -> Int { serveEvents(timeoutMs: timeoutMs) }

    /// Serves the main queue: delivery reports, errors and logs. rd_kafka_queue_poll returns errors and
    /// logs as events too (whatever the enabled set), so they go to the same handlers as the callbacks
    /// (which rd_kafka_poll would call). Waits up to `timeoutMs` for the first one only. Returns the
    /// number of events served.
    @discardableResult
    private func serveEvents(timeoutMs: Int32) -> Int {
        var served = 0
        var wait = timeoutMs
        while let event = rd_kafka_queue_poll(mainQueue, wait) {
            wait = 0
            switch rd_kafka_event_type(event) {
            case Librdkafka.deliveryReportEvent:
                countDeliveries(event)
            case Librdkafka.errorEvent:
                let fatal = rd_kafka_event_error_is_fatal(event) != 0
                // As the error callback gets it: a fatal one as __FATAL (its handler asks for the cause).
                kafkaError(handle, fatal ? RD_KAFKA_RESP_ERR__FATAL.rawValue : rd_kafka_event_error(event).rawValue,
                           rd_kafka_event_error_string(event), rd_kafka_opaque(handle))
            case Librdkafka.logEvent:
                var facility: UnsafePointer<CChar>?
                var message: UnsafePointer<CChar>?
                var level: Int32 = 0
                if rd_kafka_event_log(event, &facility, &message, &level) == 0 {
                    kafkaLog(handle, level, facility, message)
                }
            default:
                break
            }
            rd_kafka_event_destroy(event)
            served += 1
        }
        return served
    }

    /// One delivery report event: the messages of one produce request (or of one purge), each with its
    /// error and its record count (in the message's opaque pointer).
    private func countDeliveries(_ event: OpaquePointer) {
        let total = rd_kafka_event_message_count(event)
        var done = 0
        while done < total {
            let got = reportBuffer.withUnsafeMutableBufferPointer {
                rd_kafka_event_message_array(event, $0.baseAddress, $0.count)
            }
            guard got > 0 else { break }
            for i in 0..<got {
                guard let message = reportBuffer[i] else { continue }
                events.countDelivery(error: message.pointee.err, records: UInt64(max(Int(bitPattern: message.pointee._private), 1)))
            }
            done += got
        }
    }

    /// Waits up to `timeoutMs` for everything queued to be delivered (or to fail), serving reports.
    /// Returns the number of messages still undelivered (0 when all were handled).
    @discardableResult
    public func flush(timeoutMs: Int) -> Int {
        submit()
        let deadline = Clock.monotonicNanoseconds &+ UInt64(max(timeoutMs, 0)) &* 1_000_000
        serveEvents(timeoutMs: 0)
        while events.counters.outstanding > 0 {
            let now = Clock.monotonicNanoseconds
            guard now < deadline else { break }
            // rd_kafka_flush is what tells the broker threads to send now rather than after linger.ms
            // (its flushing state lasts for the call). In event mode it does not serve the main queue,
            // it only waits, so it runs in short slices with the reports served between them.
            rd_kafka_flush(handle, Int32(clamping: min((deadline - now) / 1_000_000 + 1, Self.flushSliceMs)))
            serveEvents(timeoutMs: 0)
        }
        return Int(events.counters.outstanding)
    }

    /// The end of a producer's life: flushes for up to `timeoutMs`, then purges what is left (queued and
    /// in flight) and serves the purged messages' delivery reports, so every message produced ends up
    /// counted as delivered or failed (`purged`) before the owner publishes its counters and exits.
    public func drain(timeoutMs: Int) -> DrainOutcome {
        let left = flush(timeoutMs: timeoutMs)
        guard left > 0 else { return DrainOutcome(undeliveredAtTimeout: 0, unaccounted: 0) }
        // Blocks only while librdkafka's threads hand over their queues; the reports then wait on the
        // main queue, which the flush below serves (it returns as soon as none is outstanding).
        rd_kafka_purge(handle, Librdkafka.purgeQueuedAndInFlight)
        let deadline = Clock.monotonicNanoseconds &+ Self.purgeReportWaitNs
        while events.counters.outstanding > 0, Clock.monotonicNanoseconds < deadline {
            serveEvents(timeoutMs: 100)
        }
        return DrainOutcome(undeliveredAtTimeout: left, unaccounted: Int(events.counters.outstanding))
    }

    /// How long one rd_kafka_flush call of `flush` lasts before the reports it waited for are served.
    static let flushSliceMs: UInt64 = 10

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
    /// Stages the message; the owner calls `submit()` once per receive batch (and `poll()` after it).
    public func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
        stage(message, key: key, records: records)
    }
}

/// Messages waiting for the next `rd_kafka_produce_batch`: their bytes (payload, then key) back to back
/// in one growing buffer, and where each starts. librdkafka copies them during the call, so the buffer
/// is reused at once.
private final class StagedMessages {
    /// Up to this many messages or bytes per produce_batch call (a message larger than the byte limit
    /// is staged alone).
    static let maxMessages = 4096
    static let maxBytes = 4 << 20

    struct Entry {
        var offset: Int
        var length: Int
        var keyLength: Int
        var records: Int
    }
    private(set) var entries: [Entry] = []
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    private(set) var keyed = false

    init() {
        entries.reserveCapacity(Self.maxMessages)
        capacity = 1 << 20
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    var count: Int { entries.count }

    func fits(_ size: Int) -> Bool {
        entries.isEmpty || (entries.count < Self.maxMessages && used + size <= Self.maxBytes)
    }

    func append(_ payload: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
        let size = payload.count + key.count
        if used + size > capacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: max(capacity * 2, used + size), alignment: 16)
            grown.copyMemory(from: buffer, byteCount: used)
            buffer.deallocate()
            buffer = grown
            capacity = max(capacity * 2, used + size)
        }
        entries.append(Entry(offset: used, length: payload.count, keyLength: key.count, records: records))
        if let base = payload.baseAddress { (buffer + used).copyMemory(from: base, byteCount: payload.count) }
        if let base = key.baseAddress, key.count > 0 {
            (buffer + used + payload.count).copyMemory(from: base, byteCount: key.count)
            keyed = true
        }
        used += size
    }

    func clear() {
        entries.removeAll(keepingCapacity: true)
        used = 0
        keyed = false
    }

    /// librdkafka's view of the staged messages; their pointers are valid until the next `append`/`clear`.
    func messages(topic: OpaquePointer) -> [rd_kafka_message_t] {
        entries.map { entry in
            let payload = buffer + entry.offset
            return rd_kafka_message_t(
                err: RD_KAFKA_RESP_ERR_NO_ERROR, rkt: topic, partition: Librdkafka.unassignedPartition,
                payload: payload, len: entry.length,
                key: entry.keyLength > 0 ? payload + entry.length : nil,
                key_len: entry.keyLength, offset: 0,
                _private: UnsafeMutableRawPointer(bitPattern: entry.records))
        }
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

    func countDelivery(error: rd_kafka_resp_err_t, records: UInt64) {
        if error == RD_KAFKA_RESP_ERR_NO_ERROR {
            counters.delivered += 1
            counters.recordsDelivered += records
        } else {
            counters.failed += 1
            counters.recordsFailed += records
            if error == RD_KAFKA_RESP_ERR__PURGE_QUEUE || error == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT {
                counters.purged += 1
            }
            lastDeliveryError = error.rawValue
        }
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ProducerEvents? {
        opaque.map { Unmanaged<ProducerEvents>.fromOpaque($0).takeUnretainedValue() }
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
