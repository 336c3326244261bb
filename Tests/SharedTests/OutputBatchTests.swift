import Testing
@testable import FlowModel
@testable import Output

/// Messages: one record each (KFlow) by default; opt-in batches of newline-separated records.
@Suite struct OutputBatchTests {
    /// Keeps a copy of every message it is given, and the record count the sink declared for it.
    struct RecordingTransport: MessageTransport {
        var messages: [[UInt8]] = []
        var recordCounts: [Int] = []
        mutating func send(_ message: UnsafeRawBufferPointer, records: Int) {
            messages.append(Array(message))
            recordCounts.append(records)
        }
    }

    static func record(_ index: Int) -> FlowRecord {
        var record = OutputEncoderTests.kflowExample()
        record.bytes = UInt64(index)
        return record
    }

    @Test func defaultSinkSendsOneMessagePerRecordImmediately() {
        var sink = JSONFlowSink(transport: RecordingTransport())
        for index in 0..<5 {
            sink.emit(Self.record(index))
            #expect(sink.transport.messages.count == index + 1)
        }
        #expect(sink.transport.recordCounts == [1, 1, 1, 1, 1])
        for (index, message) in sink.transport.messages.enumerated() {
            #expect(!message.contains(UInt8(ascii: "\n")))
            #expect(uint64(OutputReference.object(message)["bytes"]) == UInt64(index))
        }
        #expect(sink.pending.isEmpty)
    }

    @Test func batchesHoldUpToMaxRecordsSeparatedByNewlines() {
        let batch = JSONMessageBatch(maxRecords: 4)
        var sink = JSONFlowSink(batch: batch, transport: RecordingTransport())
        for index in 0..<10 { sink.emit(Self.record(index)) }
        #expect(sink.transport.messages.count == 2)  // 4 + 4 sent, 2 pending
        #expect(sink.pending.recordCount == 2)
        sink.flush()
        #expect(sink.transport.messages.count == 3)
        sink.flush()  // nothing pending: no empty message
        #expect(sink.transport.messages.count == 3)

        var seen: [UInt64] = []
        for message in sink.transport.messages {
            #expect(message.last != UInt8(ascii: "\n"))
            for line in message.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                seen.append(uint64(OutputReference.object(Array(line))["bytes"]) ?? .max)
            }
        }
        #expect(seen == (0..<10).map(UInt64.init))
        #expect(sink.transport.messages.map { $0.split(separator: UInt8(ascii: "\n")).count } == [4, 4, 2])
        // The producer counts losses in records from what the sink declares: it must match the lines.
        #expect(sink.transport.recordCounts == [4, 4, 2])
    }

    @Test func batchesNeverExceedTheByteLimit() {
        let encoder = KFlowJSONEncoder(fields: .all)
        let limit = 3 * encoder.maxRecordBytes + 100
        var sink = JSONFlowSink(batch: JSONMessageBatch(encoder: encoder, maxRecords: 1000, maxBytes: limit),
                                transport: RecordingTransport())
        for index in 0..<100 { sink.emit(Self.record(index)) }
        sink.flush()
        let messages = sink.transport.messages
        #expect(messages.allSatisfy { $0.count <= limit })
        #expect(messages.reduce(0) { $0 + $1.split(separator: UInt8(ascii: "\n")).count } == 100)
        // Real records are far shorter than the worst case, so more than three fit per message.
        #expect(messages.count < 34)
    }

    @Test func fullBatchRefusesRecordsUntilCleared() {
        var batch = JSONMessageBatch(maxRecords: 2)
        let first = batch.append(Self.record(1))
        #expect(first && !batch.isFull)
        let second = batch.append(Self.record(2))
        #expect(second && batch.isFull)
        let message = Array(batch.message)
        let third = batch.append(Self.record(3))
        #expect(!third)
        #expect(Array(batch.message) == message)
        batch.clear()
        #expect(batch.isEmpty && batch.message.isEmpty)
        let afterClear = batch.append(Self.record(3))
        #expect(afterClear)
    }

    @Test func byteLimitBelowOneRecordIsRaisedSoEveryRecordFits() {
        var sink = JSONFlowSink(batch: JSONMessageBatch(maxRecords: 10, maxBytes: 10), transport: RecordingTransport())
        sink.emit(Self.record(1))
        sink.emit(Self.record(2))
        #expect(sink.transport.messages.count == 2)
        #expect(sink.transport.messages.allSatisfy { !OutputReference.object($0).isEmpty })
    }
}
