import CRdKafka
import Synchronization
import SystemKit

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a topic's partition count current for the producer, from a thread of its own: a metadata
/// request waits for the broker (up to `requestTimeoutMs`), which the receive loop must never do. The
/// count is 0 until known; retried at growing intervals (1 s … 30 s) while unknown, refreshed every
/// minute once known (so added partitions get their turn), at once after `invalidate()`.
final class PartitionWatcher: @unchecked Sendable {
    static let requestTimeoutMs: Int32 = 500
    static let refreshNs: UInt64 = 60_000_000_000
    static let retryMinNs: UInt64 = 1_000_000_000
    static let retryMaxNs: UInt64 = 30_000_000_000
    static let sleepStepUs: UInt32 = 250_000  // 4 wake-ups a second: idle stays idle; stop waits at most this + a request

    private let handle: OpaquePointer
    private let topicHandle: OpaquePointer
    private let partitions = Atomic<Int32>(0)
    private let stopping = Atomic<Bool>(false)
    private let invalidated = Atomic<Bool>(false)
    private var thread: pthread_t?

    /// The partition count, 0 while unknown.
    var count: Int32 { partitions.load(ordering: .relaxed) }

    /// `handle` and `topicHandle` must outlive `stop()` (the producer stops the watcher first).
    init(handle: OpaquePointer, topicHandle: OpaquePointer) {
        self.handle = handle
        self.topicHandle = topicHandle
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let started = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<PartitionWatcher>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context)
        if started == 0 {
            self.thread = thread
        } else {
            Unmanaged<PartitionWatcher>.fromOpaque(context).release()  // no thread: the count stays 0 (librdkafka partitions)
        }
    }

    /// A produce call named a partition the topic does not have: forget the count and ask again now.
    func invalidate() {
        partitions.store(0, ordering: .relaxed)
        invalidated.store(true, ordering: .relaxed)
    }

    /// Ends the thread (waits at most one request timeout).
    func stop() {
        stopping.store(true, ordering: .relaxed)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        var retryNs = Self.retryMinNs
        while !stopping.load(ordering: .relaxed) {
            invalidated.store(false, ordering: .relaxed)
            let learned = request()
            let waitNs: UInt64
            if learned > 0 {
                partitions.store(learned, ordering: .relaxed)
                retryNs = Self.retryMinNs
                waitNs = Self.refreshNs
            } else {
                // A refresh that failed says nothing new: a count learned before stays.
                waitNs = partitions.load(ordering: .relaxed) > 0 ? Self.retryMinNs : retryNs
                retryNs = min(retryNs * 2, Self.retryMaxNs)
            }
            let until = Clock.monotonicNanoseconds &+ waitNs
            while !stopping.load(ordering: .relaxed), !invalidated.load(ordering: .relaxed),
                  Clock.monotonicNanoseconds < until {
                usleep(Self.sleepStepUs)
            }
        }
    }

    private func request() -> Int32 {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, Self.requestTimeoutMs)
        defer { if let metadata { rd_kafka_metadata_destroy(metadata) } }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata, metadata.pointee.topic_cnt == 1,
              let topic = metadata.pointee.topics, topic.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return 0 }
        return max(topic.pointee.partition_cnt, 0)
    }
}
