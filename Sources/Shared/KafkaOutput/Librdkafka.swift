import CRdKafka

/// The librdkafka version linked in, e.g. "2.8.0".
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// librdkafka's text for an error code, e.g. "Local: Queue full".
public func librdkafkaErrorText(_ code: Int32) -> String {
    String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: code)))
}

/// Constants from rdkafka.h that Swift does not import (macros with casts or comments).
enum Librdkafka {
    /// RD_KAFKA_PARTITION_UA: let the configured partitioner choose.
    static let unassignedPartition: Int32 = -1
    /// RD_KAFKA_MSG_F_COPY: librdkafka copies the payload before produce returns.
    static let copyPayload: Int32 = 0x2
    /// RD_KAFKA_MSG_F_PARTITION: produce_batch uses each message's own partition.
    static let perMessagePartition: Int32 = 0x8
    /// RD_KAFKA_EVENT_DR: delivery reports as events on the main queue.
    static let deliveryReportEvent: Int32 = 0x1
    /// RD_KAFKA_EVENT_LOG and RD_KAFKA_EVENT_ERROR.
    static let logEvent: Int32 = 0x4
    static let errorEvent: Int32 = 0x8
    /// RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT.
    static let purgeQueuedAndInFlight: Int32 = 0x1 | 0x2
    /// Size of the error text buffers librdkafka fills (its own examples use 512).
    static let errorTextCapacity = 512

    /// The NUL-terminated text librdkafka wrote into `buffer`.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
