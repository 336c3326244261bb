import Foundation
import Testing
@testable import Shared

#if canImport(Glibc)
import Glibc
#endif

/// The producer against a real broker (Tansu), messages read back with the Python confluent-kafka consumer.
/// Serialized: each test owns a broker port, and two cores are shared with the rest of the build.
@Suite(.serialized) struct KafkaProducerTests {
    static func uniqueTopic() -> String { "kflow-test-\(UUID().uuidString.prefix(8).lowercased())" }

    static func payload(_ index: Int) -> [UInt8] {
        var record = OutputEncoderTests.kflowExample()
        record.bytes = UInt64(index)
        return encodeToBytes(record)
    }

    @Test func producedMessagesArriveOnceEachWithTheirBytes() throws {
        let broker = TestBroker(port: 39_411)
        try broker.start()
        defer { broker.stop() }
        let topic = Self.uniqueTopic()
        let count = 500
        do {
            let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap), ("linger.ms", "5")], topic: topic)
            for index in 0..<count {
                #expect(producer.produce(Self.payload(index)) == .queued)
                producer.poll()
            }
            #expect(producer.flush(timeoutMs: 20_000) == 0)
            let counters = producer.counters
            #expect(counters.produced == UInt64(count))
            #expect(counters.delivered == UInt64(count))
            #expect(counters.failed == 0 && counters.queueFullDrops == 0 && counters.produceErrors == 0)
            #expect(producer.queueDepth == 0)
        }
        let received = try broker.consume(topic: topic, expected: count)
        #expect(received.count == count)
        #expect(Set(received) == Set((0..<count).map(Self.payload)))
    }

    @Test func sinkOutputGoesThroughTheProducerUnchanged() throws {
        let broker = TestBroker(port: 39_412)
        try broker.start()
        defer { broker.stop() }
        let topic = Self.uniqueTopic()
        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap)], topic: topic)
        var sink = JSONFlowSink(batch: JSONMessageBatch(maxRecords: 3), transport: producer)
        for index in 0..<7 {
            var record = OutputEncoderTests.kflowExample()
            record.bytes = UInt64(index)
            sink.emit(record)
        }
        sink.flush()
        #expect(producer.flush(timeoutMs: 20_000) == 0)
        #expect(producer.counters.delivered == 3)
        let received = try broker.consume(topic: topic, expected: 3)
        let lines = received.flatMap { $0.split(separator: UInt8(ascii: "\n")).map(Array.init) }
        #expect(Set(lines) == Set((0..<7).map(Self.payload)))
    }

    @Test func unknownPropertyIsATypedErrorNamingIt() {
        #expect {
            _ = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:1"), ("buffer.memory", "33554432")], topic: "t")
        } throws: { error in
            guard case let .invalidProperty(name, message)? = error as? KafkaError else { return false }
            return name == "buffer.memory" && message.contains("No such configuration property")
        }
    }

    @Test func invalidValueIsATypedErrorNamingTheProperty() {
        #expect {
            _ = try KafkaProducer(properties: [("linger.ms", "soon")], topic: "t")
        } throws: { error in
            guard case let .invalidProperty(name, message)? = error as? KafkaError else { return false }
            return name == "linger.ms" && !message.isEmpty
        }
    }

    @Test func messagesQueuedWhileTheBrokerIsDownArriveOnceItStarts() throws {
        let port = 39_413
        try #require(TestBroker.nothingListens(on: port))
        let topic = Self.uniqueTopic()
        let count = 200
        let broker = TestBroker(port: port)
        defer { broker.stop() }
        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap),
                                                      ("message.timeout.ms", "60000"),
                                                      ("reconnect.backoff.max.ms", "200")], topic: topic)
        for index in 0..<count { #expect(producer.produce(Self.payload(index)) == .queued) }
        let waitUntil = monotonicSeconds() + 1
        while monotonicSeconds() < waitUntil { producer.poll(); usleep(20_000) }
        #expect(producer.counters.delivered == 0)
        #expect(producer.queueDepth >= count)

        try broker.start()
        #expect(producer.flush(timeoutMs: 30_000) == 0)
        #expect(producer.counters.delivered == UInt64(count))
        #expect(producer.counters.failed == 0)
        let received = try broker.consume(topic: topic, expected: count)
        #expect(received.count == count)
        #expect(Set(received) == Set((0..<count).map(Self.payload)))
    }

    @Test func fullQueueWithTheBrokerDownDropsAndCountsWithoutBlocking() throws {
        let port = 39_414
        try #require(TestBroker.nothingListens(on: port))
        let errorsSeenOn = LockedValue<[pthread_t]>([])
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:\(port)"),
                                                      ("queue.buffering.max.messages", "10"),
                                                      ("reconnect.backoff.max.ms", "100")],
                                         topic: Self.uniqueTopic(),
                                         log: { _ in errorsSeenOn.update { $0.append(pthread_self()) } })
        let attempts = 1000
        var slowest = 0.0
        let started = monotonicSeconds()
        for index in 0..<attempts {
            let before = monotonicSeconds()
            producer.produce(Self.payload(index))
            slowest = max(slowest, monotonicSeconds() - before)
        }
        let elapsed = monotonicSeconds() - started
        let counters = producer.counters
        #expect(counters.produced == 10)
        #expect(counters.queueFullDrops == UInt64(attempts - 10))
        #expect(counters.produceErrors == 0)
        #expect(slowest < 0.05, "slowest produce call took \(slowest) s")
        #expect(elapsed < 1, "\(attempts) produce calls took \(elapsed) s")

        // The refused connection is reported through the error callback and the log hook, both on this thread.
        let deadline = monotonicSeconds() + 10
        while (producer.errorCount == 0 || errorsSeenOn.value.isEmpty) && monotonicSeconds() < deadline {
            producer.poll()
            usleep(20_000)
        }
        #expect(producer.errorCount > 0)
        #expect(producer.lastError?.isEmpty == false)
        #expect(!errorsSeenOn.value.isEmpty)
        #expect(errorsSeenOn.value.allSatisfy { pthread_equal($0, pthread_self()) != 0 }, "a log line arrived on a librdkafka thread")
    }

    @Test func undeliverableMessagesAreCountedAsFailedWhenTheyTimeOut() throws {
        let port = 39_415
        try #require(TestBroker.nothingListens(on: port))
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:\(port)"),
                                                      ("message.timeout.ms", "300")], topic: Self.uniqueTopic())
        for index in 0..<5 { producer.produce(Self.payload(index)) }
        #expect(producer.flush(timeoutMs: 5_000) == 0)
        #expect(producer.counters.failed == 5)
        #expect(producer.counters.delivered == 0)
        #expect(producer.lastDeliveryErrorCode.map(librdkafkaErrorText)?.isEmpty == false)
    }

    @Test func destroyingAProducerWithQueuedMessagesDoesNotWaitForTheBroker() throws {
        let port = 39_416
        try #require(TestBroker.nothingListens(on: port))
        var producer: KafkaProducer? = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:\(port)")],
                                                         topic: Self.uniqueTopic())
        for index in 0..<100 { producer?.produce(Self.payload(index)) }
        let started = monotonicSeconds()
        producer = nil
        #expect(monotonicSeconds() - started < 3)
    }
}

/// A value shared with a callback, guarded by a lock (the test checks which thread the callback ran on).
final class LockedValue<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
