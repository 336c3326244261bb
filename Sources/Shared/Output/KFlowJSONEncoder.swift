import FlowModel

/// Turns a `FlowRecord` into KFlow's JSON object:
/// `{"dvc":"192.0.2.1","src":"10.0.0.1","srcp":443,"dst":"10.0.0.2","dstp":51000,"proto":6,"flags":24,"bytes":1500,"pkts":3,"time":1700000000000}`
/// in this key order without spaces, followed by the selected `OutputFields` the record has, in catalog order.
///
/// Writes straight into an `OutputBuffer` (no allocation, no `String`); one reservation of the worst case
/// per record is the only capacity check.
public struct KFlowJSONEncoder: Sendable {
    public let fields: OutputFields
    /// Fields chosen by `output.field.*`, in slot order (the decoder's `customFields`), written last.
    public let custom: [CustomField]
    /// Where the decoder put their values (`FlowDecoder.customValues`); nil when none are configured.
    @usableFromInline let customValues: CustomValueStore?
    /// The longest JSON text one record can produce with `fields` (plus the writers' overrun slack).
    public let maxRecordBytes: Int

    /// `fields` ∩ `OutputFields.alwaysKnown`: written whatever the record has.
    @usableFromInline let alwaysSelected: UInt32

    public init(fields: OutputFields = [], custom: [CustomField] = [], values: CustomValueStore? = nil) {
        self.fields = fields
        self.custom = values == nil ? [] : Array(custom.prefix(CustomField.maxCount))
        customValues = values
        alwaysSelected = fields.intersection(.alwaysKnown).rawValue
        var bound = JSONKeys.baseBound + TextLimits.overrun
        for field in OutputField.allCases where fields.contains(OutputFields(field)) {
            bound += JSONKeys.extraKeyBytes(field) + field.spec.maxValueBytes
        }
        maxRecordBytes = self.custom.reduce(bound) { $0 + $1.maxJSONBytes }
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

        // OutputFields share FlowRecord.Present's bits (`OutputField`).
        let selected = (fields.rawValue & record.present.rawValue) | alwaysSelected
        if selected != 0 { cursor.position = writeExtras(record, selected: selected, at: cursor.position) }
        // Never set unless output.field.* is configured: one predictable branch.
        if record.customPresent != 0, let customValues {
            cursor.position = CustomFieldText.write(record, fields: custom, values: customValues, at: cursor.position)
        }
        cursor.append(UInt8(ascii: "}"))
        return cursor.position
    }

    /// Writes the fields of `selected` in ascending bit order, which is output order.
    @inlinable func writeExtras(_ record: borrowing FlowRecord, selected: UInt32,
                                at start: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var cursor = TextCursor(start)
        var bits = selected
        while bits != 0 {
            let bit = bits.trailingZeroBitCount
            bits &= bits &- 1
            // `fields` holds fields' bits only, so every bit names one.
            guard let field = OutputField(rawValue: bit) else { continue }
            Self.write(field, of: record, to: &cursor)
        }
        return cursor.position
    }

    /// One field's key (the literal `JSONKeys.extraKeyBytes` measures) and value.
    @inlinable @inline(__always)
    static func write(_ field: OutputField, of record: borrowing FlowRecord, to cursor: inout TextCursor) {
        switch field {
        case .start: cursor.append(#","start":"#); cursor.appendDecimal(record.flowStartMs)
        case .end: cursor.append(#","end":"#); cursor.appendDecimal(record.flowEndMs)
        case .inInterface: cursor.append(#","in_if":"#); cursor.appendDecimal(record.inputInterface)
        case .outInterface: cursor.append(#","out_if":"#); cursor.appendDecimal(record.outputInterface)
        case .srcAS: cursor.append(#","src_as":"#); cursor.appendDecimal(record.srcAS)
        case .dstAS: cursor.append(#","dst_as":"#); cursor.appendDecimal(record.dstAS)
        case .nextHop:
            cursor.append(#","nexthop":""#)
            cursor.appendAddress(record.nextHop)
            cursor.append(UInt8(ascii: "\""))
        case .vlan: cursor.append(#","vlan":"#); cursor.appendDecimal(record.vlan)
        case .tos: cursor.append(#","tos":"#); cursor.appendDecimal(record.tos)
        case .domain: cursor.append(#","domain":"#); cursor.appendDecimal(record.observationDomain)
        case .direction: cursor.append(#","dir":"#); cursor.appendDecimal(record.direction)
        case .srcMask: cursor.append(#","src_mask":"#); cursor.appendDecimal(record.srcMask)
        case .dstMask: cursor.append(#","dst_mask":"#); cursor.appendDecimal(record.dstMask)
        case .sampling: cursor.append(#","sampling":"#); cursor.appendDecimal(record.samplingInterval)
        }
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

    /// KFlow's ten fields at their longest: three addresses, two ports, proto, flags, three UInt64s, "}".
    static var baseBound: Int {
        let literals: [StaticString] = [dvc, src, srcPort, dst, dstPort, proto, flags, bytes, packets, time]
        return literals.reduce(0) { $0 + $1.utf8CodeUnitCount }
            + 3 * TextLimits.address + 2 * 5 + 3 + 5 + 3 * TextLimits.decimalDigits + 1
    }

    /// The literal before an optional field's value: `,"name":` (its value's quotes count in the value).
    static func extraKeyBytes(_ field: OutputField) -> Int { field.name.utf8.count + 4 }
}
