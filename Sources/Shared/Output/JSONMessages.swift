import FlowModel

/// Where finished messages go (the Kafka producer in the worker; a counter in benchmarks and tests).
/// The bytes are valid only during the call: a transport that keeps them must copy them. `records` is
/// how many records the message carries (1 unless batching), so a transport can count in records.
/// `key` is the message key (`MessageKey`), empty when there is none; valid only during the call too.
public protocol MessageTransport {
    mutating func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int)
}

/// Builds messages from records: one record per message (KFlow's format and the default) or, opt-in,
/// several records separated by "\n" in one message, up to `maxRecords` records or `maxBytes` bytes.
///
/// Protocol: `append` a record; when `isFull`, send `message` and `clear()`. A full batch refuses
/// records (append returns false), so nothing is lost silently and no message exceeds `maxBytes`.
///
/// With a message key every record of a message has the same key (`key`): a record whose key differs
/// from the message's is refused like a full batch, so it starts the next message.
public struct JSONMessageBatch {
    public let encoder: KFlowJSONEncoder
    public let keyMode: MessageKey
    public let maxRecords: Int
    /// The size limit of one message; raised to one worst-case record when given smaller.
    public let maxBytes: Int
    @inlinable public var recordCount: Int { records }
    @usableFromInline var records = 0
    @usableFromInline let buffer: OutputBuffer
    /// The message's key, and the next record's while it is compared.
    @usableFromInline let keyBuffer: OutputBuffer
    @usableFromInline let candidateKey: OutputBuffer
    @usableFromInline let hasKey: Bool

    /// - Parameters:
    ///   - maxRecords: records per message; 1 (the default) is KFlow's one message per flow.
    ///   - maxBytes: message size limit, e.g. below the broker's `message.max.bytes` (default 1 MB).
    ///   - keyMode: how each record's Kafka message key is made; `.none` costs one branch per record.
    public init(encoder: KFlowJSONEncoder = KFlowJSONEncoder(), maxRecords: Int = 1, maxBytes: Int = 1_000_000,
                keyMode: MessageKey = .none) {
        self.encoder = encoder
        self.keyMode = keyMode
        hasKey = keyMode != .none
        keyBuffer = OutputBuffer(capacity: keyMode == .none ? 0 : MessageKey.maxBytes)
        candidateKey = OutputBuffer(capacity: keyMode == .none ? 0 : MessageKey.maxBytes)
        self.maxRecords = max(maxRecords, 1)
        self.maxBytes = max(maxBytes, encoder.maxRecordBytes)
        // No more memory than maxRecords worst-case records (and their separators) can use.
        let needed = self.maxRecords.multipliedReportingOverflow(by: encoder.maxRecordBytes + 1)
        buffer = OutputBuffer(capacity: needed.overflow ? self.maxBytes : min(self.maxBytes, needed.partialValue))
    }

    @inlinable public var isEmpty: Bool { recordCount == 0 }

    /// True when the message must be sent before another record can be added: it holds `maxRecords`
    /// records, or too little room is left for a worst-case record and its separator.
    @inlinable public var isFull: Bool {
        recordCount >= maxRecords || buffer.remaining < encoder.maxRecordBytes + (recordCount > 0 ? 1 : 0)
    }

    /// Adds the record to the message; false (nothing written) when the batch is full.
    @inlinable @discardableResult
    public mutating func append(_ record: borrowing FlowRecord) -> Bool {
        if isFull { return false }
        if hasKey, !takeKey(of: record) { return false }
        if recordCount > 0 { buffer.append(UInt8(ascii: "\n")) }
        guard encoder.append(record, to: buffer) else { return false }  // unreachable: isFull checked room
        records += 1
        return true
    }

    /// The first record's key becomes the message's; a later record must have the same key.
    @inlinable mutating func takeKey(of record: borrowing FlowRecord) -> Bool {
        let target = recordCount == 0 ? keyBuffer : candidateKey
        target.removeAll()
        guard let start = target.reserve(MessageKey.maxBytes) else { return false }  // unreachable: sized so
        target.commit(keyMode.write(record, at: start) - start)
        if recordCount == 0 { return true }
        return candidateKey.bytes.elementsEqual(keyBuffer.bytes)
    }

    /// The message so far. Valid until the next `append` or `clear`.
    @inlinable public var message: UnsafeRawBufferPointer { buffer.bytes }

    /// The message's key (empty without one). Valid until the next `append` or `clear`.
    @inlinable public var key: UnsafeRawBufferPointer { keyBuffer.bytes }

    /// Starts a new, empty message, keeping the memory.
    @inlinable public mutating func clear() {
        buffer.removeAll()
        keyBuffer.removeAll()
        records = 0
    }
}

/// The `FlowSink` that encodes each record and hands complete messages to a transport.
public struct JSONFlowSink<Transport: MessageTransport>: FlowSink {
    public var transport: Transport
    /// The message being built (read-only outside: records go in through `emit`).
    @inlinable public var pending: JSONMessageBatch { batch }
    @usableFromInline var batch: JSONMessageBatch

    public init(batch: JSONMessageBatch = JSONMessageBatch(), transport: Transport) {
        self.batch = batch
        self.transport = transport
    }

    @inlinable public mutating func emit(_ record: borrowing FlowRecord) {
        if !batch.append(record) {
            sendBatch()
            batch.append(record)
        }
        if batch.isFull { sendBatch() }
    }

    /// Sends a partly filled batch; call when the receive loop goes idle so batched records never wait.
    /// (In one-record-per-message mode nothing is ever pending.)
    @inlinable public mutating func flush() {
        if !batch.isEmpty { sendBatch() }
    }

    @inlinable mutating func sendBatch() {
        transport.send(batch.message, key: batch.key, records: batch.recordCount)
        batch.clear()
    }
}
