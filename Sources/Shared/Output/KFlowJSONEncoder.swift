import FlowModel

/// Turns a `FlowRecord` into KFlow's JSON object:
/// `{"dvc":"192.0.2.1","src":"10.0.0.1","srcp":443,"dst":"10.0.0.2","dstp":51000,"proto":6,"flags":24,"bytes":1500,"pkts":3,"time":1700000000000}`
/// in this key order without spaces, followed by the selected `OutputFields` the record has, in catalog order.
///
/// Writes straight into an `OutputBuffer` (no allocation, no `String`); one reservation of the worst case
/// per record is the only capacity check.
public struct KFlowJSONEncoder: Sendable {
    public let fields: OutputFields
    /// The longest JSON text one record can produce with `fields` (plus the writers' overrun slack).
    public let maxRecordBytes: Int

    public init(fields: OutputFields = []) {
        self.fields = fields
        var bound = JSONKeys.baseBound + TextLimits.overrun
        for extra in JSONKeys.extras where fields.contains(extra.field) {
            bound += extra.key.utf8CodeUnitCount + extra.maxValueBytes
        }
        maxRecordBytes = bound
    }

    /// Appends the record's JSON (no newline). Returns false, writing nothing, when the buffer has fewer
    /// than `maxRecordBytes` left.
    @inlinable @discardableResult
    public func append(_ record: borrowing FlowRecord, to buffer: OutputBuffer) -> Bool {
        guard let start = buffer.reserve(maxRecordBytes) else { return false }
        buffer.commit(write(record, at: start) - start)
        return true
    }

    /// Writes the record at `start` (room for `maxRecordBytes` reserved); returns the end of the text.
    @inlinable func write(_ record: borrowing FlowRecord, at start: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        // A local cursor the optimiser keeps in a register.
        var cursor = TextCursor(start)
        cursor.append(#"{"dvc":""#)
        cursor.appendAddress(record.exporter.unmapped)
        cursor.append(#"","src":""#)
        cursor.appendAddress(record.src)
        cursor.append(#"","srcp":"#)
        cursor.appendDecimal(record.srcPort)
        cursor.append(#","dst":""#)
        cursor.appendAddress(record.dst)
        cursor.append(#"","dstp":"#)
        cursor.appendDecimal(record.dstPort)
        cursor.append(#","proto":"#)
        cursor.appendDecimal(record.proto)
        cursor.append(#","flags":"#)
        cursor.appendDecimal(record.tcpFlags)
        cursor.append(#","bytes":"#)
        cursor.appendDecimal(record.bytes)
        cursor.append(#","pkts":"#)
        cursor.appendDecimal(record.packets)
        cursor.append(#","time":"#)
        cursor.appendDecimal(record.exportTimeMs)

        // OutputFields share FlowRecord.Present's bits (domain is always known).
        let selected = fields.rawValue & (record.present.rawValue | OutputFields.domain.rawValue)
        if selected != 0 { cursor.position = writeExtras(record, selected: selected, at: cursor.position) }
        cursor.append(UInt8(ascii: "}"))
        return cursor.position
    }

    @inlinable func writeExtras(_ record: borrowing FlowRecord, selected: UInt32,
                                at start: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var cursor = TextCursor(start)
        @inline(__always) func has(_ field: OutputFields) -> Bool { selected & field.rawValue != 0 }
        if has(.start) { cursor.append(#","start":"#); cursor.appendDecimal(record.flowStartMs) }
        if has(.end) { cursor.append(#","end":"#); cursor.appendDecimal(record.flowEndMs) }
        if has(.inInterface) { cursor.append(#","in_if":"#); cursor.appendDecimal(record.inputInterface) }
        if has(.outInterface) { cursor.append(#","out_if":"#); cursor.appendDecimal(record.outputInterface) }
        if has(.srcAS) { cursor.append(#","src_as":"#); cursor.appendDecimal(record.srcAS) }
        if has(.dstAS) { cursor.append(#","dst_as":"#); cursor.appendDecimal(record.dstAS) }
        if has(.nextHop) {
            cursor.append(#","nexthop":""#)
            cursor.appendAddress(record.nextHop)
            cursor.append(UInt8(ascii: "\""))
        }
        if has(.vlan) { cursor.append(#","vlan":"#); cursor.appendDecimal(record.vlan) }
        if has(.tos) { cursor.append(#","tos":"#); cursor.appendDecimal(record.tos) }
        if has(.domain) { cursor.append(#","domain":"#); cursor.appendDecimal(record.observationDomain) }
        if has(.direction) { cursor.append(#","dir":"#); cursor.appendDecimal(record.direction) }
        if has(.srcMask) { cursor.append(#","src_mask":"#); cursor.appendDecimal(record.srcMask) }
        if has(.dstMask) { cursor.append(#","dst_mask":"#); cursor.appendDecimal(record.dstMask) }
        if has(.sampling) { cursor.append(#","sampling":"#); cursor.appendDecimal(record.samplingInterval) }
        return cursor.position
    }
}

/// The literal text between values, for the worst-case bound. The encoder writes the same literals inline
/// (so they compile to constant-size stores); `worstCaseRecordFitsTheDeclaredBound` checks the two agree.
enum JSONKeys {
    static let dvc: StaticString = #"{"dvc":""#
    static let src: StaticString = #"","src":""#
    static let srcPort: StaticString = #"","srcp":"#
    static let dst: StaticString = #","dst":""#
    static let dstPort: StaticString = #"","dstp":"#
    static let proto: StaticString = #","proto":"#
    static let flags: StaticString = #","flags":"#
    static let bytes: StaticString = #","bytes":"#
    static let packets: StaticString = #","pkts":"#
    static let time: StaticString = #","time":"#

    static let start: StaticString = #","start":"#
    static let end: StaticString = #","end":"#
    static let inInterface: StaticString = #","in_if":"#
    static let outInterface: StaticString = #","out_if":"#
    static let srcAS: StaticString = #","src_as":"#
    static let dstAS: StaticString = #","dst_as":"#
    static let nextHop: StaticString = #","nexthop":""#
    static let vlan: StaticString = #","vlan":"#
    static let tos: StaticString = #","tos":"#
    static let domain: StaticString = #","domain":"#
    static let direction: StaticString = #","dir":"#
    static let srcMask: StaticString = #","src_mask":"#
    static let dstMask: StaticString = #","dst_mask":"#
    static let sampling: StaticString = #","sampling":"#

    /// KFlow's ten fields at their longest: three addresses, two ports, proto, flags, three UInt64s, "}".
    static var baseBound: Int {
        let literals: [StaticString] = [dvc, src, srcPort, dst, dstPort, proto, flags, bytes, packets, time]
        return literals.reduce(0) { $0 + $1.utf8CodeUnitCount }
            + 3 * TextLimits.address + 2 * 5 + 3 + 5 + 3 * TextLimits.decimalDigits + 1
    }

    /// Each optional field's key and the longest text of its value (UInt64: 20, UInt32: 10, UInt16: 5,
    /// UInt8: 3, an address and its closing quote: 40).
    static let extras: [(field: OutputFields, key: StaticString, maxValueBytes: Int)] = [
        (.start, start, 20), (.end, end, 20), (.inInterface, inInterface, 10), (.outInterface, outInterface, 10),
        (.srcAS, srcAS, 10), (.dstAS, dstAS, 10), (.nextHop, nextHop, TextLimits.address + 1), (.vlan, vlan, 5),
        (.tos, tos, 3), (.domain, domain, 10), (.direction, direction, 3), (.srcMask, srcMask, 3),
        (.dstMask, dstMask, 3), (.sampling, sampling, 10),
    ]
}
