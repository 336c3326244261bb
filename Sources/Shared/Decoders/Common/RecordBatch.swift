import FlowModel

/// Where the decoders put records: each is decoded straight into its slot of the decoder's batch storage
/// (no copy per record; `FlowRecord` is 168 bytes), and full batches go to `deliver`. The pointer work is
/// fenced here: the decoders see only an `inout FlowRecord`.
struct RecordBatch {
    let storage: UnsafeMutablePointer<FlowRecord>
    let deliver: (UnsafeBufferPointer<FlowRecord>) -> Void
    private(set) var count = 0

    init(storage: UnsafeMutablePointer<FlowRecord>, deliver: @escaping (UnsafeBufferPointer<FlowRecord>) -> Void) {
        self.storage = storage
        self.deliver = deliver
    }

    /// Decodes one record in the next free slot: `decode` fills it, starting from a record of the same message
    /// as `message`, and returns whether it is a flow record to hand over; if not, the slot stays free.
    @inline(__always)
    mutating func add(sameMessageAs message: borrowing FlowRecord, _ decode: (inout FlowRecord) -> Bool) {
        let slot = storage + count
        slot.initialize(to: FlowRecord(sameMessageAs: message))
        slot.pointee.customRow = UInt8(truncatingIfNeeded: count)
        guard decode(&slot.pointee) else { return }
        count += 1
        if count == FlowDecoder.recordBatchCapacity { flush() }
    }

    /// Adds a record built elsewhere (a biflow's reverse direction).
    @inline(__always)
    mutating func add(_ record: borrowing FlowRecord) {
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
