import Foundation
import Testing
@testable import Output
@testable import KafkaOutput
import CRdKafka

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

    /// `flush` must send what `linger.ms` would still hold back: with a minute of lingering, the messages
    /// are delivered within seconds, not purged at the flush timeout (a stop would lose them).
    @Test func flushSendsWhatLingerWouldStillHold() throws {
        let broker = TestBroker(port: 39_420)
        try broker.start()
        defer { broker.stop() }
        let topic = Self.uniqueTopic()
        let count = 200
        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap), ("linger.ms", "60000")],
                                         topic: topic)
        for index in 0..<count { #expect(producer.produce(Self.payload(index)) == .queued) }
        let start = Date()
        #expect(producer.flush(timeoutMs: 15_000) == 0)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(producer.counters.delivered == UInt64(count) && producer.counters.failed == 0)
        let received = try broker.consume(topic: topic, expected: count)
        let allArrived = received.count == count && Set(received) == Set((0..<count).map(Self.payload))
        #expect(allArrived, "\(received.count) of \(count) messages read back")
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
        // Batches of 3, 3 and 1 records: counted in records as well as messages.
        #expect(producer.counters.recordsProduced == 7 && producer.counters.recordsDelivered == 7)
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

extension KafkaProducerTests {
    /// The stop of a worker whose broker hangs: what the flush timeout leaves is purged, and every message
    /// (and record) ends as delivered or failed before the counters are read, none unaccounted.
    @Test func messagesLeftAtTheFlushTimeoutArePurgedAndCountedInMessagesAndRecords() throws {
        let broker = TestBroker(port: 39_417)
        try broker.start()
        defer { broker.resume(); broker.stop() }
        let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap), ("linger.ms", "5")],
                                         topic: Self.uniqueTopic())
        // Delivered while the broker answers: batches of 2 records.
        for index in 0..<50 { #expect(producer.produce(Self.payload(index), records: 2) == .queued) }
        #expect(producer.flush(timeoutMs: 20_000) == 0)
        #expect(producer.counters.delivered == 50 && producer.counters.recordsDelivered == 100)

        broker.pause()
        let stranded = 300
        for index in 0..<stranded {
            #expect(producer.produce(Self.payload(index), records: 5) == .queued)
            if index % 50 == 0 { producer.poll() }
        }
        let started = monotonicSeconds()
        let outcome = producer.drain(timeoutMs: 300)
        let took = monotonicSeconds() - started
        let c = producer.counters
        #expect(outcome == KafkaProducer.DrainOutcome(undeliveredAtTimeout: stranded, unaccounted: 0))
        #expect(c.produced == 350 && c.delivered == 50)
        #expect(c.failed == UInt64(stranded) && c.purged == UInt64(stranded), "failed \(c.failed), purged \(c.purged)")
        #expect(c.recordsProduced == 100 + 5 * UInt64(stranded))
        #expect(c.recordsFailed == 5 * UInt64(stranded) && c.recordsDelivered == 100)
        #expect(c.outstanding == 0)
        #expect(took < 3, "drain took \(took) s with a 300 ms flush timeout")
        #expect(producer.lastDeliveryErrorCode.map(librdkafkaErrorText)?.contains("urge") == true)
    }

    @Test func dropsOnAFullQueueAreCountedInRecords() throws {
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:1"),
                                                      ("queue.buffering.max.messages", "4")], topic: Self.uniqueTopic())
        for index in 0..<10 { producer.produce(Self.payload(index), records: 3) }
        #expect(producer.counters.produced == 4 && producer.counters.recordsProduced == 12)
        #expect(producer.counters.queueFullDrops == 6 && producer.counters.recordsDropped == 18)
    }

    /// A fatal error (here librdkafka's test trigger) is counted once, logged once, and surfaces as
    /// `fatalError` so the worker can exit; drain then accounts for what was queued.
    @Test func aFatalErrorIsCountedLoggedAndSurfaced() throws {
        let lines = LockedValue<[KafkaProducer.LogMessage]>([])
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:1"),
                                                      ("enable.idempotence", "true")],
                                         topic: Self.uniqueTopic(), log: { line in lines.update { $0.append(line) } })
        for index in 0..<20 { producer.produce(Self.payload(index)) }
        #expect(producer.fatalError == nil)
        producer.simulateFatalError(reason: "kflow test")
        producer.simulateFatalError(reason: "kflow test, again")  // librdkafka keeps the first
        let deadline = monotonicSeconds() + 5
        while producer.fatalError == nil && monotonicSeconds() < deadline { producer.poll(); usleep(10_000) }
        #expect(producer.fatalError?.contains("kflow test") == true, "fatalError: \(producer.fatalError ?? "nil")")
        #expect(producer.counters.fatalErrors == 1)
        #expect(producer.counters.errors >= 1)
        // Logged once (by librdkafka), not once per trigger or per callback.
        #expect(lines.value.filter { $0.facility == "FATAL" }.count == 1, "\(lines.value.map(\.message))")
        if case .refused = producer.produce(Self.payload(99)) {} else { Issue.record("produce after a fatal error was not refused") }
        let outcome = producer.drain(timeoutMs: 0)
        #expect(outcome.unaccounted == 0)
        #expect(producer.counters.produced == producer.counters.delivered + producer.counters.failed)
        #expect(producer.counters.recordsDropped == 1)
    }

    /// The broker refusing connections raises errors through the error callback: each is counted, and
    /// logged (facility ERROR) no more than once per error code within the limiter's interval.
    @Test func errorCallbacksAreCountedAndLoggedAtMostOncePerCode() throws {
        let port = 39_418
        try #require(TestBroker.nothingListens(on: port))
        let lines = LockedValue<[KafkaProducer.LogMessage]>([])
        let producer = try KafkaProducer(properties: [("bootstrap.servers", "127.0.0.1:\(port)"),
                                                      ("reconnect.backoff.ms", "10"), ("reconnect.backoff.max.ms", "20")],
                                         topic: Self.uniqueTopic(), log: { line in lines.update { $0.append(line) } })
        producer.produce(Self.payload(1))
        let deadline = monotonicSeconds() + 3
        while monotonicSeconds() < deadline { producer.poll(); usleep(20_000) }
        let logged = lines.value.filter { $0.facility == "ERROR" }
        #expect(producer.counters.errors > 0)
        #expect(!logged.isEmpty && UInt64(logged.count) <= producer.counters.errors)
        // One line per error name at most (within 3 s < the 10 s interval).
        let names = logged.map { $0.message.prefix { $0 != ":" } }
        #expect(Set(names).count == names.count, "repeated error lines: \(logged.map(\.message))")
        _ = producer.drain(timeoutMs: 0)
    }

    @Test func errorLogLimiterLetsOnePerCodePerIntervalAndCountsTheRest() {
        var limiter = ErrorLogLimiter(intervalNs: 10)
        #expect(limiter.admit(code: 1, nowNs: 100) == 0)
        #expect(limiter.admit(code: 1, nowNs: 101) == nil)
        #expect(limiter.admit(code: 2, nowNs: 102) == 0)  // another code has its own budget
        #expect(limiter.admit(code: 1, nowNs: 105) == nil)
        #expect(limiter.admit(code: 1, nowNs: 110) == 2)  // the interval passed: logged, with 2 held back
        #expect(limiter.admit(code: 1, nowNs: 111) == nil)
        #expect(limiter.admit(code: 1, nowNs: 200) == 1)
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

/// The batched produce path: staged messages go to librdkafka in one produce_batch call per submit, with
/// the partition computed here; delivery reports come back as events.
extension KafkaProducerTests {
    @Test func keyPartitionerIsKafkasMurmur2AndAgreesWithLibrdkafka() {
        // Kafka's UtilsTest.testMurmur2: the Java int result of Utils.murmur2 for these inputs.
        let vectors: [(String, Int32)] = [
            ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (text, expected) in vectors {
            #expect(Array(text.utf8).withUnsafeBytes { KeyPartitioner.murmur2($0) } == UInt32(bitPattern: expected), "\(text)")
        }
        // librdkafka's own murmur2 partitioner (what partitioner=murmur2 runs), keys of every tail length.
        var mismatches = 0
        for length in 1..<80 {
            for partitions: Int32 in [1, 3, 8, 1000] {
                let key = (0..<length).map { _ in UInt8.random(in: 0...255) }
                key.withUnsafeBytes { bytes in
                    let theirs = rd_kafka_msg_partitioner_murmur2(nil, bytes.baseAddress, bytes.count, partitions, nil, nil)
                    if KeyPartitioner.partition(of: bytes, partitions: partitions) != theirs { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
        #expect(KeyPartitioner(properties: [("partitioner", "murmur2_random")]) == .murmur2)
        #expect(KeyPartitioner(properties: [("partitioner", "murmur2_random"), ("partitioner", "fnv1a")]) == .librdkafka)
        #expect(KeyPartitioner(properties: []) == .librdkafka)
    }

    @Test func stagedMessagesAreSubmittedInBatchesAndCountedExactlyAgainstTheBroker() throws {
        let broker = TestBroker(port: 39_419)
        try broker.start()
        defer { broker.stop() }
        let topic = Self.uniqueTopic()
        let count = 10_000
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        do {
            let producer = try KafkaProducer(properties: [("bootstrap.servers", broker.bootstrap), ("linger.ms", "5")], topic: topic)
            // The first 5,000 without a submit: staging submits by itself when it holds its limit.
            for index in 0..<count {
                Self.payload(index).withUnsafeBytes { producer.send($0, key: none, records: 2) }
                if index >= 5_000, index % 700 == 0 {
                    producer.submit()
                    producer.poll()
                }
            }
            #expect(producer.counters.produced >= 4_096, "staging did not submit at its limit")
            #expect(producer.flush(timeoutMs: 30_000) == 0)
            let c = producer.counters
            #expect(c.produced == UInt64(count) && c.delivered == UInt64(count))
            #expect(c.recordsProduced == 2 * UInt64(count) && c.recordsDelivered == 2 * UInt64(count))
            #expect(c.failed == 0 && c.queueFullDrops == 0 && c.produceErrors == 0 && c.outstanding == 0)
            #expect(producer.partitionCount > 0, "the partition count was never learned")
        }
        let received = try broker.consume(topic: topic, expected: count)
        #expect(received.count == count)
        #expect(Set(received) == Set((0..<count).map(Self.payload)))
    }
}
