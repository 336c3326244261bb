import FlowModel
import Output

/// Encodes every record as the worker does, so the encoder sees whatever the decoders produce.
public struct JSONSink: FlowSink {
    let encoder: KFlowJSONEncoder
    let buffer = OutputBuffer(capacity: 1 << 16)
    public private(set) var records = 0

    public init(encoder: KFlowJSONEncoder = KFlowJSONEncoder(fields: .all)) { self.encoder = encoder }

    public mutating func emit(_ record: borrowing FlowRecord) {
        records += 1
        if encoder.append(record, to: buffer) { return }
        buffer.removeAll()
        if !encoder.append(record, to: buffer) { fatalError("one record does not fit an empty 64 KiB buffer") }
    }
}
