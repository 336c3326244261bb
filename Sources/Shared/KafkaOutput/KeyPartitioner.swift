/// The partition librdkafka's `murmur2` / `murmur2_random` partitioners (and Java's default
/// partitioner) choose for a key: `(murmur2(key) & 0x7fffffff) % partitions`. The producer computes it
/// itself so it can hand librdkafka messages with their partition already set (`rd_kafka_produce_batch`
/// with `RD_KAFKA_MSG_F_PARTITION`), which skips librdkafka's per-message partitioner call and its locks.
/// Keys land exactly where the configured partitioner would put them; a test compares with the broker.
public enum KeyPartitioner: Equatable, Sendable {
    /// Keys are hashed with Kafka's murmur2: `murmur2` and `murmur2_random` (which differ only for
    /// messages without a key; kflow never produces an empty key).
    case murmur2
    /// Any other partitioner (`consistent_random`, `fnv1a`, a Java class name, ...): keyed messages go
    /// to librdkafka unassigned and its partitioner chooses.
    case librdkafka

    /// The partitioner the producer's properties configure; librdkafka's default is consistent_random.
    public init(properties: [(name: String, value: String)]) {
        let configured = properties.last { $0.name == "partitioner" }?.value ?? "consistent_random"
        self = configured == "murmur2" || configured == "murmur2_random" ? .murmur2 : .librdkafka
    }

    /// Kafka's murmur2 (seed 0x9747b28c, the Java client's `Utils.murmur2`), over `key`.
    @inlinable public static func murmur2(_ key: UnsafeRawBufferPointer) -> UInt32 {
        let m: UInt32 = 0x5bd1_e995
        let count = key.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: count)
        var i = 0
        while i + 4 <= count {
            var k = UInt32(key[i]) | UInt32(key[i + 1]) << 8 | UInt32(key[i + 2]) << 16 | UInt32(key[i + 3]) << 24
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            i += 4
        }
        let tail = count & 3
        if tail == 3 { h ^= UInt32(key[i + 2]) << 16 }
        if tail >= 2 { h ^= UInt32(key[i + 1]) << 8 }
        if tail >= 1 {
            h ^= UInt32(key[i])
            h = h &* m
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return h
    }

    /// The partition of `key` among `partitions` (> 0).
    @inlinable public static func partition(of key: UnsafeRawBufferPointer, partitions: Int32) -> Int32 {
        Int32(bitPattern: murmur2(key) & 0x7fff_ffff) % partitions
    }
}
