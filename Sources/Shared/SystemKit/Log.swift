import Logging

#if canImport(Glibc)
import Glibc
#endif

/// swift-log handler writing one line per event to stderr with an sd-daemon priority prefix
/// (`<3>` error … `<7>` debug), so journald keeps each line's level. Unbuffered writes of whole lines
/// keep lines from the master and its workers (sharing stderr) from interleaving.
public struct SDDaemonLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let prefix: String
        switch event.level {
        case .trace, .debug: prefix = "<7>"
        case .info: prefix = "<6>"
        case .notice: prefix = "<5>"
        case .warning: prefix = "<4>"
        case .error: prefix = "<3>"
        case .critical: prefix = "<2>"
        }
        var line = "\(prefix)\(label): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        if !merged.isEmpty {
            line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        line += "\n"
        DescriptorIO.writeAll(2, Array(line.utf8))
    }
}

public enum KflowLogging {
    /// Routes swift-log to stderr with sd-daemon prefixes; call once at process start.
    public static func bootstrap(label: String, level: Logger.Level) {
        LoggingSystem.bootstrap { _ in SDDaemonLogHandler(label: label, level: level) }
    }
}
