import Logging
import SystemKit
import KafkaOutput
import Config
import ProcessKit

#if canImport(Glibc)
import Glibc
#endif

/// Entry point once the command line is parsed and the configuration validated.
enum MasterMain {
    static func run(sources: ConfigurationSources, configuration: KflowConfiguration) -> Int32 {
        KflowLogging.bootstrap(label: "kflow-master", level: configuration.logLevel.loggerLevel)
        let logger = Logger(label: "kflow-master")
        guard let worker = locateWorker() else {
            logger.critical("cannot find kflow-worker beside kflow-master, in $KFLOW_WORKER or /usr/libexec/kflow")
            return 1
        }
        logger.info("kflow \(KflowVersion.string) (librdkafka \(librdkafkaVersion)) starting; worker \(worker)")
        let signals = Master.blockSignals()
        do {
            let master = try Master(configuration: configuration, sources: sources, logger: logger, workerExecutable: worker)
            return master.run(signals: signals)
        } catch {
            logger.critical("cannot start: \(error)")
            return 1
        }
    }

    /// $KFLOW_WORKER, else beside this executable, else where the Debian package installs it.
    static func locateWorker() -> String? {
        var candidates: [String] = []
        if let env = getenv("KFLOW_WORKER") { candidates.append(String(cString: env)) }
        if let dir = Spawn.ownExecutableDirectory { candidates.append(dir + "/kflow-worker") }
        candidates.append("/usr/libexec/kflow/kflow-worker")
        return candidates.first { access($0, X_OK) == 0 }
    }
}
