import Testing
@testable import FlowModel
@testable import Output

/// Messages: one record each (KFlow) by default; opt-in batches of newline-separated records.
@Suite struct OutputBatchTests {
    /// Keeps a copy of every message it is given, and the record count the sink declared for it.
    struct RecordingTransport: MessageTransport {
        var messages: [[UInt8]] = []
        var recordCounts: [Int] = []
        var keys: [String] = []
        mutating func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
            messages.append(Array(message))
            keys.append(String(decoding: key, as: UTF8.self))
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

    // MARK: - Message keys (kafka.key)

    static func keys(_ mode: MessageKey, _ records: [FlowRecord], maxRecords: Int = 1) -> (keys: [String], counts: [Int]) {
        var sink = JSONFlowSink(batch: JSONMessageBatch(maxRecords: maxRecords, keyMode: mode), transport: RecordingTransport())
        for record in records { sink.emit(record) }
        sink.flush()
        return (sink.transport.keys, sink.transport.recordCounts)
    }

    @Test func eachKeyModeWritesItsDocumentedText() {
        var record = OutputEncoderTests.kflowExample()  // 10.0.0.1:443 -> 10.0.0.2:51000, proto 6, dvc 192.0.2.1
        record.observationDomain = 256
        #expect(Self.keys(.none, [record]).keys == [""])
        #expect(Self.keys(.exporter, [record]).keys == ["192.0.2.1"])
        #expect(Self.keys(.exporterDomain, [record]).keys == ["192.0.2.1|256"])
        #expect(Self.keys(.flow, [record]).keys == ["6|10.0.0.1|443|10.0.0.2|51000"])
        #expect(Self.keys(.flowSymmetric, [record]).keys == ["6|10.0.0.1|443|10.0.0.2|51000"])
        var reverse = record
        swap(&reverse.src, &reverse.dst)
        swap(&reverse.srcPort, &reverse.dstPort)
        #expect(Self.keys(.flow, [reverse]).keys == ["6|10.0.0.2|51000|10.0.0.1|443"])
        #expect(Self.keys(.flowSymmetric, [reverse]).keys == ["6|10.0.0.1|443|10.0.0.2|51000"])
        var v6 = record
        v6.exporter = IPAddress(high: 0x2001_0DB8_0000_0000, low: 1, family: .v6)
        #expect(Self.keys(.exporter, [v6]).keys == ["2001:db8::1"])
    }

    @Test func exporterSpreadKeepsAConversationOnOneOfNKeys() {
        var records: [FlowRecord] = []
        for port in 0..<400 {
            var record = OutputEncoderTests.kflowExample()
            record.srcPort = UInt16(1000 + port)
            records.append(record)
            var reverse = record
            swap(&reverse.src, &reverse.dst)
            swap(&reverse.srcPort, &reverse.dstPort)
            records.append(reverse)
        }
        let keys = Self.keys(.exporterSpread(8), records).keys
        #expect(Set(keys) == Set((0..<8).map { "192.0.2.1|\($0)" }))
        for pair in stride(from: 0, to: keys.count, by: 2) { #expect(keys[pair] == keys[pair + 1]) }
    }

    @Test func batchesHoldRecordsOfOneKeyOnly() {
        var a = OutputEncoderTests.kflowExample()
        a.observationDomain = 1
        var b = a
        b.observationDomain = 2
        let sent = Self.keys(.exporterDomain, [a, a, b, b, b, a], maxRecords: 10)
        #expect(sent.keys == ["192.0.2.1|1", "192.0.2.1|2", "192.0.2.1|1"])
        #expect(sent.counts == [2, 3, 1])
    }

    @Test func keySettingParsesEveryModeAndRejectsOthers() {
        for text in ["none", "exporter", "exporter-domain", "flow", "flow-symmetric", "exporter:1", "exporter:4096"] {
            #expect(MessageKey(parsing: text)?.description == text)
        }
        for text in ["", "exporter:0", "exporter:4097", "exporter:x", "src", "exporter:"] {
            #expect(MessageKey(parsing: text) == nil, "\(text)")
        }
    }
}
