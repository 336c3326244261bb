import CRdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Building a librdkafka configuration from `kafka.props.*`, shared by the producer (worker) and the
/// configuration check (`--check-config`, the master's start and reload), so both judge the same thing.
public enum KafkaConfiguration {
    /// librdkafka properties that load code into the process or run a command; a configuration file
    /// (or an environment variable) must not be able to do either. Each maps to the reason shown.
    public static let refusedProperties: [String: String] = [
        "plugin.library.paths": "loads shared libraries (librdkafka plugins) into kflow",
        "ssl.engine.location": "loads an OpenSSL engine library into kflow",
        "ssl.engine.id": "selects an OpenSSL engine (loaded from ssl.engine.location or OpenSSL's engine directory)",
        "ssl.providers": "loads OpenSSL provider modules into kflow",
        "sasl.kerberos.kinit.cmd": "is a shell command librdkafka runs",
    ]

    /// Why `name` is refused, or nil when kflow lets librdkafka judge it.
    public static func refusal(of name: String) -> String? {
        refusedProperties[name.lowercased()]
    }

    /// A new configuration with `properties` set in order. The caller owns the result (pass it to
    /// rd_kafka_new, or rd_kafka_conf_destroy it).
    static func make(properties: [(name: String, value: String)]) throws(KafkaError) -> OpaquePointer {
        for property in properties {
            if let reason = refusal(of: property.name) {
                throw .refusedProperty(name: property.name, reason: reason)
            }
        }
        guard let configuration = rd_kafka_conf_new() else {
            throw .producerCreationFailed(message: "rd_kafka_conf_new returned no configuration")
        }
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        for (name, value) in properties {
            if rd_kafka_conf_set(configuration, name, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(configuration)
                throw .invalidProperty(name: name, message: Librdkafka.text(errorText))
            }
        }
        return configuration
    }

    /// Builds the whole configuration and a producer from it, then destroys the producer at once: what
    /// rd_kafka_new checks (combinations such as idempotence with acks, SASL credentials, every
    /// certificate and key file) fails here rather than in each worker. No broker is contacted:
    /// `bootstrap.servers` is left out, and so is the Kerberos ticket refresh (a command).
    public static func verify(properties: [(name: String, value: String)]) throws(KafkaError) {
        let offline: Set<String> = ["bootstrap.servers", "metadata.broker.list"]
        let checked = properties.filter { !offline.contains($0.name) }
            + [("sasl.kerberos.min.time.before.relogin", "0")]
        let configuration = try make(properties: checked)
        // librdkafka's log line often says more than rd_kafka_new's error ("No such file or directory:
        // calling fopen(...)"); errors logged while the producer is created are kept for the message.
        let logs = VerificationLog()
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(logs).toOpaque())
        rd_kafka_conf_set_log_cb(configuration, verificationLog)
        var errorText = [CChar](repeating: 0, count: Librdkafka.errorTextCapacity)
        let handle = withExtendedLifetime(logs) {
            rd_kafka_new(RD_KAFKA_PRODUCER, configuration, &errorText, errorText.count)
        }
        guard let handle else {
            rd_kafka_conf_destroy(configuration)
            var message = Librdkafka.text(errorText)
            let detail = logs.errors.withLock { $0 }
            if !detail.isEmpty { message += " (librdkafka: \(detail.joined(separator: "; ")))" }
            throw .producerCreationFailed(message: message)
        }
        rd_kafka_destroy(handle)
        withExtendedLifetime(logs) {}
    }
}

/// Error-level log lines librdkafka emits while `verify` creates its producer.
private final class VerificationLog: Sendable {
    let errors = Mutex<[String]>([])
}

private func verificationLog(_ handle: OpaquePointer?, _ level: Int32, _: UnsafePointer<CChar>?,
                             _ message: UnsafePointer<CChar>?) {
    guard level <= 3, let handle, let opaque = rd_kafka_opaque(handle), let message else { return }
    let logs = Unmanaged<VerificationLog>.fromOpaque(opaque).takeUnretainedValue()
    let text = String(cString: message)
    logs.errors.withLock { if $0.count < 4 { $0.append(text) } }
}
