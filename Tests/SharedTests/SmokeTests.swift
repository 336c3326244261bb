import Testing
@testable import KafkaOutput

@Test func linksCurrentLibrdkafka() {
    let parts = librdkafkaVersion.split(separator: ".").compactMap { Int($0) }
    #expect(parts.count >= 2 && (parts[0], parts[1]) >= (2, 1), "librdkafka \(librdkafkaVersion) is older than 2.1.1")
}
