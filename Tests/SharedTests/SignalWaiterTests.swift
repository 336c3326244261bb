import ProcessKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The worker's loop learns of SIGTERM through the signal descriptor in its poll set; the signal must
/// make the descriptor readable, be taken exactly once, and leave it quiet again.
@Suite(.serialized) struct SignalWaiterTests {
    @Test func aPendingSignalMakesTheDescriptorReadableAndIsTakenOnce() throws {
        // SIGUSR2: blocked by the waiter, so raising it here leaves it pending instead of killing the test.
        let waiter = SignalWaiter(signals: [SIGUSR2])
        let fd = try #require(waiter.makeDescriptor())
        defer { close(fd) }
        var watched = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&watched, 1, 0) == 0, "readable before any signal")
        #expect(waiter.poll() == nil)

        pthread_kill(pthread_self(), SIGUSR2)
        #expect(poll(&watched, 1, 1000) == 1)
        #expect(watched.revents & Int16(POLLIN) != 0)
        #expect(waiter.poll() == SIGUSR2)

        watched.revents = 0
        #expect(poll(&watched, 1, 0) == 0, "still readable after the signal was taken")
        #expect(waiter.poll() == nil)
    }
}
