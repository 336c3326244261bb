import FlowModel

/// The sink the decoders fill: copies each record into the decoder's batch storage and hands full
/// batches to `deliver`. The per-record decode loop is specialised for this one type, in this module.
struct RecordBatch: FlowSink {
    let storage: UnsafeMutablePointer<FlowRecord>
    let deliver: (UnsafeBufferPointer<FlowRecord>) -> Void
    private(set) var count = 0

    init(storage: UnsafeMutablePointer<FlowRecord>, deliver: @escaping (UnsafeBufferPointer<FlowRecord>) -> Void) {
        self.storage = storage
        self.deliver = deliver
    }

    @inline(__always)
    mutating func emit(_ record: borrowing FlowRecord) {
        (storage + count).initialize(to: copy record)
        count += 1
        if count == FlowDecoder.recordBatchCapacity { flush() }
    }

    /// Hands over the records collected so far, if any.
    mutating func flush() {
        guard count > 0 else { return }
        deliver(UnsafeBufferPointer(start: storage, count: count))
        count = 0
    }
}
