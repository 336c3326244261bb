import CRdKafka

/// The librdkafka version linked in, e.g. "2.8.0".
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }
