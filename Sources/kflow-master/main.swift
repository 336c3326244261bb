
#if canImport(Glibc)
import Glibc
#endif

// Before any thread exists: a peer that resets a socket (a metrics client, journald's stream on stderr)
// must be an EPIPE for the writer, never a SIGPIPE that ends the master and, with it, every worker.
signal(SIGPIPE, SIG_IGN)
KflowMasterCommand.main()
