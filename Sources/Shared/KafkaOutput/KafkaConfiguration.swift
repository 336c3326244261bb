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
    /// `teardown`: `.background` for a long-running caller whose loop must not stall (the master on
    /// reload); `.wait` (one-shot commands, tests, fuzzing) returns only once the producer is gone.
    public static func verify(properties: [(name: String, value: String)], teardown: VerificationTeardown = .wait) throws(KafkaError) {
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
        switch teardown {
        case .wait:
            rd_kafka_destroy(handle)
            withExtendedLifetime(logs) {}
        case .background:
            destroyInBackground(handle, logs: logs)
        }
    }

    /// How `verify` disposes of its producer. rd_kafka_destroy joins librdkafka's threads, which notice
    /// the request only when their timed waits end: about a second (1.0 s per SIGHUP in the master).
    public enum VerificationTeardown: Sendable, Equatable {
        /// Destroy before returning.
        case wait
        /// The verdict is known once rd_kafka_new returns: destroy on a detached thread, so the caller's
        /// loop (watchdog, supervision) goes on. A process that exits at once may leave it unfinished.
        case background
    }

    private static func destroyInBackground(_ handle: OpaquePointer, logs: VerificationLog) {
        let context = Unmanaged.passRetained(PendingDestroy(handle: handle, logs: logs)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            let pending = Unmanaged<PendingDestroy>.fromOpaque(context).takeRetainedValue()
            rd_kafka_destroy(pending.handle)
            withExtendedLifetime(pending.logs) {}
            return nil
        }, context)
        if started == 0 {
            pthread_detach(thread)
        } else {
            let pending = Unmanaged<PendingDestroy>.fromOpaque(context).takeRetainedValue()
            rd_kafka_destroy(pending.handle)  // no thread to be had: wait here instead
            withExtendedLifetime(pending.logs) {}
        }
    }
}

/// A verification producer on its way out, and the log sink its callbacks may still reach.
private final class PendingDestroy: @unchecked Sendable {
    let handle: OpaquePointer
    let logs: VerificationLog
    init(handle: OpaquePointer, logs: VerificationLog) {
        self.handle = handle
        self.logs = logs
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
