/// Why a `KafkaProducer` could not be created. Each case carries what a person needs to fix it.
public enum KafkaError: Error, Equatable, CustomStringConvertible {
    /// librdkafka rejected a property (unknown name or invalid value); `message` is librdkafka's.
    case invalidProperty(name: String, message: String)
    /// rd_kafka_new failed (e.g. inconsistent properties that are each valid alone).
    case producerCreationFailed(message: String)
    /// rd_kafka_topic_new failed for the topic name.
    case topicCreationFailed(topic: String, message: String)
    /// A property kflow refuses whatever its value: it loads code or runs a command.
    case refusedProperty(name: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidProperty(name, message): "Kafka property \"\(name)\" rejected by librdkafka: \(message)"
        case let .producerCreationFailed(message): "cannot create the Kafka producer: \(message)"
        case let .topicCreationFailed(topic, message): "cannot use Kafka topic \"\(topic)\": \(message)"
        case let .refusedProperty(name, reason): "Kafka property \"\(name)\" is refused by kflow: it \(reason)"
        }
    }
}
