import FlowModel
import SystemKit
import WireFormat
import KafkaOutput
import Config
import ProcessKit
import MetricsServer
import Testing

/// The master encodes a worker's launch into arguments and a descriptor order; the worker decodes it.
@Suite struct WorkerLaunchTests {
    let launch = WorkerLaunch(slot: 2, generation: 7, sockets: [40, 41, 42], segment: 50, configuration: 51,
                              templateExchange: 52, templateSources: [60, 61], siblings: [70])

    @Test func theWorkerDecodesWhatTheMasterEncodedAtTheDescriptorsSpawnGivesIt() throws {
        let decoded = try WorkerLaunch(arguments: launch.arguments)
        // Spawn makes descriptors[i] fd 3 + i in the child.
        let expected = WorkerLaunch(slot: 2, generation: 7, sockets: [3, 4, 5], segment: 6, configuration: 7,
                                    templateExchange: 8, templateSources: [9, 10], siblings: [11])
        #expect(decoded == expected)
        #expect(decoded == launch.inherited)
        #expect(launch.descriptors == [40, 41, 42, 50, 51, 52, 60, 61, 70])
        #expect(decoded.descriptors == Array(3...11))
    }

    @Test func aLaunchWithoutTemplateSourcesRoundTrips() throws {
        let first = WorkerLaunch(slot: 0, generation: 1, sockets: [9], segment: 10, configuration: 11,
                                 templateExchange: 12, templateSources: [])
        let decoded = try WorkerLaunch(arguments: first.arguments)
        #expect(decoded.templateSources.isEmpty && decoded.siblings.isEmpty)
        #expect(decoded.sockets == [3])
        #expect(decoded.templateExchange == 6)
    }

    @Test(arguments: [
        ([], "--slot is missing"),
        (["--slot", "0", "--generation", "1", "--sockets", "1"], "--template-sources is missing"),
        (["--slot", "0", "--generation", "1", "--sockets", "1", "--template-sources", "0"], "--siblings is missing"),
        (["--slot", "0", "--generation", "1", "--sockets", "0", "--template-sources", "0"], "--sockets needs at least one socket"),
        (["--slot", "-1", "--generation", "1", "--sockets", "1", "--template-sources", "0"], "--slot needs a number"),
        (["--slot", "0", "--generation", "x", "--sockets", "1", "--template-sources", "0"], "--generation needs a number"),
        (["--slot", "0", "--generation", "1", "--sockets", "5000", "--template-sources", "0"], "--sockets needs a number up to 1024"),
        (["--slot", "0", "--slot", "1"], "--slot is given twice"),
        (["--socket-fds", "3,4"], "unexpected argument '--socket-fds'"),
        (["stray"], "unexpected argument 'stray'"),
        (["--slot"], "--slot needs a value"),
    ] as [([String], String)])
    func badArgumentsSayWhatIsWrong(arguments: [String], expected: String) {
        #expect(throws: WorkerLaunchError.self) { try WorkerLaunch(arguments: arguments) }
        do {
            _ = try WorkerLaunch(arguments: arguments)
        } catch {
            #expect(error.reason.hasPrefix(expected), "got: \(error.reason)")
        }
    }
}
