import CKflowShims
import Logging
import SystemKit
import ProcessKit
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

// First, before any thread: a reset peer is an EPIPE for the writer, never a SIGPIPE that ends the worker.
signal(SIGPIPE, SIG_IGN)
// Signals are taken synchronously by the loop; the master's death becomes a SIGTERM too.
let signals = SignalWaiter(signals: [SIGTERM, SIGINT, SIGQUIT])
_ = kflow_set_parent_death_signal(SIGTERM)
signal(SIGHUP, SIG_IGN)  // reloads are the master's business
if getppid() == 1 { exit(0) }  // the master died before we got here

KflowLogging.bootstrap(label: "kflow-worker[\(getpid())]", level: .info)
let logger = Logger(label: "kflow-worker")
do {
    let launch: WorkerLaunch
    do { launch = try WorkerLaunch(arguments: Array(CommandLine.arguments.dropFirst())) } catch {
        throw Worker.WorkerError.usage(error)
    }
    let worker = try Worker(launch: launch, signals: signals, logger: logger)
    exit(worker.run())
} catch {
    logger.critical("cannot start: \(error)")
    exit(2)
}
