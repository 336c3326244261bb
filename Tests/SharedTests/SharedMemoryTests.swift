@testable import FlowModel
@testable import SystemKit
@testable import WireFormat
@testable import Templates
@testable import Decoders
@testable import Output
@testable import KafkaOutput
@testable import Config
@testable import ProcessKit
@testable import MetricsServer
@testable import WorkerRuntime
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }

/// Shared-memory regions release themselves; what one mapping writes behind the seqlock another reads whole.
@Suite struct SharedMemoryTests {
    @Test func aRegionClosesItsDescriptorWhenItGoes() throws {
        var fd: Int32 = -1
        do {
            let region = try SharedMemoryRegion(creating: "kflow-test-region", byteCount: 4096)
            fd = region.fd
            #expect(isOpen(fd))
            region.word(3).pointee = 42
        }
        #expect(!isOpen(fd), "the region's memfd is still open after the region went")
    }

    @Test func anAttachedRegionSeesTheCreatorsWritesAndOwnsItsDescriptor() throws {
        let created = try SharedMemoryRegion(creating: "kflow-test-region", byteCount: 4096)
        created.word(1).pointee = 0xABCD
        let copy = dup(created.fd)
        do {
            let attached = try SharedMemoryRegion(attaching: copy, byteCount: 4096, writable: false, what: "test")
            #expect(attached.word(1).pointee == 0xABCD)
        }
        #expect(!isOpen(copy))
        #expect(isOpen(created.fd))
    }

    @Test func attachingSomethingThatIsNotARegionFailsAndClosesIt() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[1]) }
        #expect(throws: SystemError.self) { try SharedMemoryRegion(attaching: fds[0], byteCount: 4096, writable: true, what: "a pipe") }
        #expect(!isOpen(fds[0]))
    }

    @Test func aReaderGivesUpWhileAWriteIsUnderWayAndReadsOnceItEnds() throws {
        let region = try SharedMemoryRegion(creating: "kflow-test-seqlock", byteCount: 4096)
        let lock = SeqLock(sequence: region.word(0))
        region.word(0).pointee = 1  // a writer that died mid-write, as a reader meets it
        var pauses = 0
        #expect(lock.read(attempts: 3, pause: { pauses += 1 }) { region.word(1).pointee } == nil)
        #expect(pauses == 3)
        region.word(0).pointee = 2
        lock.write { region.word(1).pointee = 9 }
        #expect(lock.current == 4)
        #expect(lock.read(attempts: 1) { region.word(1).pointee } == 9)
    }

    @Test func readersNeverSeeATornWrite() async throws {
        let region = try SharedMemoryRegion(creating: "kflow-test-seqlock", byteCount: 4096)
        let lock = SeqLock(sequence: region.word(0))
        let a = region.word(1), b = region.word(2)
        nonisolated(unsafe) let pointers = (a, b)
        let writer = Task.detached {
            for i in UInt64(1)...200_000 {
                lock.write { pointers.0.pointee = i; pointers.1.pointee = i &* 3 }
            }
        }
        var consistent = 0
        while consistent < 2_000 {
            if let (x, y) = lock.read(attempts: 100, { (a.pointee, b.pointee) }) {
                #expect(y == x &* 3, "torn read: \(x), \(y)")
                consistent += 1
            }
        }
        await writer.value
    }

    @Test func theExporterTableAndTemplateSnapshotsCrossMappings() throws {
        let segment = try WorkerSegment(creating: "kflow-test-segment")
        let workerSide = try WorkerSegment(attaching: dup(segment.fd))
        let entry = WorkerSegment.ExporterEntry(address: IPAddress(v4: 0x0A00_0001), port: 2055, datagrams: 5,
                                                flows: 50, unknownTemplateSets: 1)
        workerSide.publishExporters([entry])
        let read = try #require(segment.readExporters())
        #expect(read.count == 1)
        #expect(read.first?.flows == 50 && read.first?.port == 2055)
        #expect(read.first?.heard == false)

        // What /exporters shows: first and last datagram, template count, observation domains (4 listed).
        let busy = WorkerSegment.ExporterEntry(
            address: IPAddress(high: 0x2001_0DB8_0000_0000, low: 9, family: .v6), port: 4739, datagrams: 7, flows: 70,
            unknownTemplateSets: 0, firstSeenSeconds: 1_700_000_000, lastSeenSeconds: 1_700_000_060, templateCount: 12,
            domains: [0, 1, 70000, UInt32.max, 5])
        workerSide.publishExporters([entry, busy])
        let second = try #require(segment.readExporters()?.last)
        #expect(second.address == busy.address && second.heard)
        #expect((second.firstSeenSeconds, second.lastSeenSeconds, second.templateCount) == (1_700_000_000, 1_700_000_060, 12))
        #expect(second.domains == [0, 1, 70000, UInt32.max] && second.domainCount == 5)
        // The sFlow agent table: rows beyond its capacity are left out, the others read back whole.
        let agents = (0..<(WorkerSegment.sflowAgentCapacity + 3)).map {
            WorkerSegment.SFlowAgentEntry(agent: IPAddress(v4: 0xC000_0200 + UInt32($0)), samplePool: UInt64($0) * 10, samplesDropped: UInt64($0))
        }
        workerSide.publishSFlowAgents(agents)
        #expect(segment.readSFlowAgents() == Array(agents.prefix(WorkerSegment.sflowAgentCapacity)))
        workerSide.publishSFlowAgents([WorkerSegment.SFlowAgentEntry(agent: IPAddress(v4: 1), samplePool: 1, samplesDropped: 2)])
        #expect(segment.readSFlowAgents()?.count == 1)

        let exchange = try TemplateExchange(creating: "kflow-test-templates")
        let reader = try TemplateExchange(attaching: dup(exchange.fd), writable: false)
        #expect(reader.read() == [])
        #expect(exchange.publish([1, 2, 3]))
        #expect(reader.read() == [1, 2, 3])
        #expect(reader.sequence == 2)
        #expect(!reader.publish([4]), "a read-only mapping published")
    }
}
