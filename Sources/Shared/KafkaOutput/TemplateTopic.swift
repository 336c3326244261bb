import SystemKit
import CRdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The Kafka side of the fleet's template topic (`templates.topic`): a producer of its own (so template
/// messages never mix with the flow producer's counts and flush), and, in one worker per node, a
/// consumer that reads every partition from the beginning with `assign` (no consumer group: brokers
/// such as Tansu can hang in group coordination, and every node needs every message anyway).
///
/// The consumer runs on its own thread (metadata requests and fetches block); what it reads waits in an
/// inbox bounded to `inboxCapacityBytes` — the thread waits while it is full — until the worker's
/// loop takes it with `received()`.
public final class TemplateTopic: @unchecked Sendable {
    /// One message read: `value` nil is a tombstone.
    public struct Received: Sendable {
        public let key: [UInt8]
        public let value: [UInt8]?
    }

    public struct Counters: Sendable {
        public var published: UInt64 = 0
        public var tombstones: UInt64 = 0
        /// Refused by produce, or failed delivery.
        public var failed: UInt64 = 0
        /// Messages over `maxMessageBytes`, dropped by the consumer thread unread.
        public var oversized: UInt64 = 0
    }

    public let topic: String
    private let producer: OpaquePointer
    private let producerTopic: OpaquePointer
    private let failures: DeliveryFailures
    private var counters = Counters()
    private let inbox = Mutex(Inbox())
    private let consumer: Consumer?
    private var thread = pthread_t()

    /// Bytes read and not yet taken, at most.
    static let inboxCapacityBytes = 16 << 20

    /// - Parameters:
    ///   - properties: `kafka.props.*`, as for the flow producer (brokers, security).
    ///   - consume: also read the topic (one worker per node does).
    ///   - maxMessageBytes: larger messages are dropped unread (counted in `Counters.oversized`).
    public init(properties: [(name: String, value: String)], topic: String, consume: Bool, maxMessageBytes: Int,
                log: @escaping @Sendable (String) -> Void) throws(KafkaError) {
        self.topic = topic
        let failures = DeliveryFailures()
        self.failures = failures
        let configuration = try KafkaConfiguration.make(properties: properties)
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(failures).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(configuration) { _, message, opaque in
            guard let opaque, let message, message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
            Unmanaged<DeliveryFailures>.fromOpaque(opaque).takeUnretainedValue().count += 1
        }
        // Broker errors are the flow producer's to log and count (rate-limited); unset, librdkafka would
        // print each one to stderr a second time from here.
        rd_kafka_conf_set_error_cb(configuration) { _, _, _, _ in }
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        guard let producer = rd_kafka_new(RD_KAFKA_PRODUCER, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw .producerCreationFailed(message: Librdkafka.text(errorText))
        }
        guard let producerTopic = rd_kafka_topic_new(producer, topic, nil) else {
            rd_kafka_destroy(producer)
            throw .topicCreationFailed(topic: topic, message: librdkafkaErrorText(rd_kafka_last_error().rawValue))
        }
        self.producer = producer
        self.producerTopic = producerTopic
        if consume {
            do throws(KafkaError) {
                consumer = try Consumer(properties: properties, topic: topic, maxMessageBytes: maxMessageBytes, log: log)
            } catch {
                rd_kafka_topic_destroy(producerTopic)
                rd_kafka_destroy(producer)
                throw error
            }
            let unmanaged = Unmanaged.passRetained(self)
            pthread_create(&thread, nil, { context in
                let topic = Unmanaged<TemplateTopic>.fromOpaque(context!).takeRetainedValue()
                topic.consume()
                return nil
            }, unmanaged.toOpaque())
        } else {
            consumer = nil
        }
    }

    deinit {
        rd_kafka_topic_destroy(producerTopic)
        rd_kafka_destroy(producer)
    }

    /// Stops the consumer thread and waits for it (the worker's exit); pending messages are flushed for
    /// up to `flushMs`.
    public func stop(flushMs: Int32) {
        rd_kafka_flush(producer, flushMs)
        guard consumer != nil else { return }
        inbox.withLock { $0.stopping = true }
        pthread_join(thread, nil)
    }

    /// Queues a message (`value` nil: a tombstone). Never blocks.
    public func publish(key: String, value: [UInt8]?) {
        let keyBytes = Array(key.utf8)
        let status: Int32 = keyBytes.withUnsafeBytes { keyBuffer in
            if let value {
                return value.withUnsafeBytes { valueBuffer in
                    rd_kafka_produce(producerTopic, Librdkafka.unassignedPartition, Librdkafka.copyPayload,
                                     UnsafeMutableRawPointer(mutating: valueBuffer.baseAddress), valueBuffer.count,
                                     keyBuffer.baseAddress, keyBuffer.count, nil)
                }
            }
            return rd_kafka_produce(producerTopic, Librdkafka.unassignedPartition, Librdkafka.copyPayload,
                                    nil, 0, keyBuffer.baseAddress, keyBuffer.count, nil)
        }
        if status != 0 {
            counters.failed += 1
        } else if value == nil {
            counters.tombstones += 1
        } else {
            counters.published += 1
        }
    }

    /// Serves delivery reports (the worker's loop, every pass) and returns the counters.
    public func poll() -> Counters {
        rd_kafka_poll(producer, 0)
        var result = counters
        result.failed += failures.count
        result.oversized = inbox.withLock { $0.oversized }
        return result
    }

    /// The messages read since the last call, in order.
    public func received() -> [Received] {
        inbox.withLock { inbox in
            defer {
                inbox.messages = []
                inbox.bytes = 0
            }
            return inbox.messages
        }
    }

    // MARK: - The consumer thread

    private struct Inbox: ~Copyable {
        var messages: [Received] = []
        var bytes = 0
        var oversized: UInt64 = 0
        var stopping = false
    }

    private func consume() {
        guard let consumer else { return }
        var assigned = false
        while !inbox.withLock({ $0.stopping }) {
            if !assigned {
                assigned = consumer.assignAllPartitions()
                if !assigned { sleepMilliseconds(1000) }
                continue
            }
            // Wait while the worker has not taken what was read: memory stays bounded.
            if inbox.withLock({ $0.bytes >= Self.inboxCapacityBytes }) {
                sleepMilliseconds(10)
                continue
            }
            guard let message = consumer.poll(timeoutMs: 200) else { continue }
            inbox.withLock { inbox in
                switch message {
                case .oversized: inbox.oversized += 1
                case .message(let received):
                    inbox.bytes += received.key.count + (received.value?.count ?? 0)
                    inbox.messages.append(received)
                }
            }
        }
    }

    private func sleepMilliseconds(_ ms: Int) {
        var pause = timespec(tv_sec: 0, tv_nsec: ms * 1_000_000)
        if ms >= 1000 { pause = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000) }
        nanosleep(&pause, nil)
    }
}

/// Failed deliveries of template messages, counted by the delivery callback (run inside `poll`).
private final class DeliveryFailures {
    var count: UInt64 = 0
}

/// A librdkafka consumer of one topic, assigned every partition from the beginning.
private final class Consumer {
    enum Polled {
        case message(TemplateTopic.Received)
        case oversized
    }

    private let handle: OpaquePointer
    private let topic: String
    private let maxMessageBytes: Int
    private let log: @Sendable (String) -> Void
    private var lastProblem: String?

    init(properties: [(name: String, value: String)], topic: String, maxMessageBytes: Int,
         log: @escaping @Sendable (String) -> Void) throws(KafkaError) {
        self.topic = topic
        self.maxMessageBytes = maxMessageBytes
        self.log = log
        // Producer-only properties from kafka.props.* would be logged as ignored: left out here.
        let producerOnly: Set<String> = [
            "linger.ms", "queue.buffering.max.ms", "batch.num.messages", "batch.size", "compression.type",
            "compression.codec", "acks", "request.required.acks", "enable.idempotence", "message.timeout.ms",
            "queue.buffering.max.messages", "queue.buffering.max.kbytes", "retries", "message.send.max.retries",
            "partitioner", "delivery.timeout.ms", "compression.level", "sticky.partitioning.linger.ms",
        ]
        let own: [(name: String, value: String)] = [
            ("group.id", "kflow-templates"), ("enable.auto.commit", "false"), ("enable.partition.eof", "false"),
            ("auto.offset.reset", "earliest"),
            // Bounded fetches: a broker cannot make this process buffer more than a few MiB.
            ("queued.max.messages.kbytes", "8192"), ("fetch.max.bytes", "4194304"),
            ("receive.message.max.bytes", "8388608"),
        ]
        let configuration = try KafkaConfiguration.make(
            properties: properties.filter { !producerOnly.contains($0.name) } + own)
        rd_kafka_conf_set_error_cb(configuration) { _, _, _, _ in }  // as the producer's, above
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw .producerCreationFailed(message: "template topic consumer: " + Librdkafka.text(errorText))
        }
        rd_kafka_poll_set_consumer(handle)
        self.handle = handle
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }

    /// Assigns every partition of the topic from its beginning; false (logged once per problem) while
    /// the topic or the broker cannot be had.
    func assignAllPartitions() -> Bool {
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else { return false }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, 2000)  // bounds a stop while the broker is away
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            report("metadata of \(topic): \(librdkafkaErrorText(error.rawValue))")
            return false
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, let topicMetadata = metadata.pointee.topics,
            topicMetadata.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR, topicMetadata.pointee.partition_cnt > 0
        else {
            report("topic \(topic) has no partitions (does it exist?)")
            return false
        }
        let count = Int(topicMetadata.pointee.partition_cnt)
        guard let list = rd_kafka_topic_partition_list_new(Int32(count)) else { return false }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for i in 0..<count {
            let id = topicMetadata.pointee.partitions[i].id
            rd_kafka_topic_partition_list_add(list, topic, id)?.pointee.offset = -2  // RD_KAFKA_OFFSET_BEGINNING
        }
        let assigned = rd_kafka_assign(handle, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            report("assign \(topic): \(librdkafkaErrorText(assigned.rawValue))")
            return false
        }
        log("reading \(topic) from the beginning of its \(count) partition(s)")
        return true
    }

    func poll(timeoutMs: Int32) -> Polled? {
        guard let message = rd_kafka_consumer_poll(handle, timeoutMs) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        guard message.pointee.len <= maxMessageBytes, message.pointee.key_len <= 1024 else { return .oversized }
        let key = message.pointee.key.map {
            Array(UnsafeRawBufferPointer(start: $0, count: message.pointee.key_len))
        } ?? []
        let value = message.pointee.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.pointee.len)) }
        return .message(TemplateTopic.Received(key: key, value: value))
    }

    private func report(_ problem: String) {
        guard problem != lastProblem else { return }
        lastProblem = problem
        log("template topic: \(problem); retrying every second")
    }
}
