/// A field chosen by configuration (`output.field.NAME = [PEN/]IE[:type]`): any IANA or enterprise IE,
/// compiled into each template that has it and written to JSON under NAME after the other fields.
public struct CustomField: Sendable, Equatable, CustomStringConvertible {
    /// How the value's octets become JSON.
    public enum Kind: String, CaseIterable, Sendable {
        /// Big-endian unsigned integer, 1-8 octets: a number.
        case unsigned
        /// Big-endian two's complement, 1-8 octets: a number.
        case signed
        /// IEEE 754, 4 or 8 octets: a number (null when not finite).
        case float
        /// IPv4 (4 octets) or IPv6 (16): a string.
        case address
        /// 6 octets: "aa:bb:cc:dd:ee:ff".
        case mac
        /// UTF-8 up to the first NUL (fixed-length strings are padded with them), escaped; octets that are
        /// not UTF-8 become U+FFFD: a string.
        case string
        /// Every octet as two lowercase hex digits: a string.
        case hex
    }

    /// The JSON key.
    public let name: String
    /// 0 for IANA IEs.
    public let enterprise: UInt32
    public let id: UInt16
    /// nil: the IANA registry's type for the IANA IEs `InformationElementTypes` knows, else unsigned for
    /// 1-8 octets and hex otherwise.
    public let kind: Kind?

    /// At most this many custom fields (the record keeps one slot each).
    public static let maxCount = 8
    /// A string or hex value is cut after this many octets (it bounds the JSON a record can produce).
    public static let maxValueOctets = 256
    /// KFlow's ten keys, which a custom field may not reuse.
    public static let reservedNames: Set<String> = ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"]

    public init(name: String, enterprise: UInt32, id: UInt16, kind: Kind?) {
        self.name = name
        self.enterprise = enterprise
        self.id = id
        self.kind = kind
    }

    /// Parses NAME and its `[PEN/]IE[:type]` text; the error says what is wrong, phrased to follow the value.
    public init(name: String, parsing text: String) throws(CustomFieldError) {
        guard (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
        else { throw CustomFieldError(problem: "names the field '\(name)': a name is 1-64 of a-z 0-9 _") }
        guard !Self.reservedNames.contains(name) else {
            throw CustomFieldError(problem: "names the field '\(name)', one of KFlow's own keys")
        }
        let typeSplit = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        var kind: Kind?
        if typeSplit.count == 2 {
            guard let given = Kind(rawValue: String(typeSplit[1])) else {
                throw CustomFieldError(problem: "has type '\(typeSplit[1])', not one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kind = given
        }
        let ieSplit = typeSplit[0].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var enterprise: UInt32 = 0
        if ieSplit.count == 2 {
            guard let pen = UInt32(ieSplit[0]), pen != 0 else {
                throw CustomFieldError(problem: "has enterprise number '\(ieSplit[0])', not one from 1 to \(UInt32.max)")
            }
            enterprise = pen
        }
        guard let id = UInt16(ieSplit[ieSplit.count - 1]), (1...32767).contains(id) else {
            throw CustomFieldError(problem: "has IE '\(ieSplit[ieSplit.count - 1])', not a number from 1 to 32767 (expected [PEN/]IE[:type])")
        }
        self.init(name: name, enterprise: enterprise, id: id, kind: kind)
    }

    /// The normalised `[PEN/]IE[:type]`.
    public var description: String {
        (enterprise != 0 ? "\(enterprise)/" : "") + "\(id)" + (kind.map { ":\($0.rawValue)" } ?? "")
    }

    /// The length a template declares for a variable-length field (RFC 7011 §7).
    public static let variableLength: UInt16 = 0xFFFF

    /// The kind a field of `length` octets is written as (`variableLength` for variable-length fields).
    public func kind(forLength length: UInt16) -> Kind {
        if let kind { return kind }
        if enterprise == 0, let registered = InformationElementTypes.kind(of: id) { return registered }
        return (1...8).contains(length) ? .unsigned : .hex
    }
}

/// Why a custom field's configuration is wrong.
public struct CustomFieldError: Error, Sendable, Equatable {
    public let problem: String
    public init(problem: String) { self.problem = problem }
}

/// The IANA registry's abstract data types of the IEs exporters commonly send that are not integers
/// (https://www.iana.org/assignments/ipfix: ipv4Address, ipv6Address, macAddress, string, float64,
/// octetArray); every other IANA IE is an integer and defaults to unsigned.
public enum InformationElementTypes {
    public static func kind(of id: UInt16) -> CustomField.Kind? {
        switch id {
        case 8, 12, 15, 18, 44, 45, 130, 225, 226, 366: .address  // ipv4Address: addresses, prefixes, exporter, NAT
        case 27, 28, 62, 63, 131, 281, 282: .address  // ipv6Address
        case 56, 57, 80, 81, 365, 414, 415: .mac
        case 82, 83, 84, 94, 96, 100, 335, 341: .string  // interface, sampler, application, class, selector names
        case 95, 313, 314, 315, 316, 317: .hex  // applicationId and the packet sections (octetArray)
        case 320, 321, 336, 337, 338: .float
        default: nil
        }
    }
}

/// Where the custom field values of one batch of records are: per record (its `customRow`, the record's
/// place in its batch) and configured field, an offset and a length into the datagram the batch was
/// decoded from. Kept beside the records, not in them, so a `FlowRecord` stays as small as it was when no
/// field is configured. The octets stay in the datagram, which outlives the batch: records are handed
/// over and encoded during the decode call that read them. One per decoder, shared with its encoder.
public final class CustomValueStore: @unchecked Sendable {
    public struct Row: Sendable {
        public var offsets: SIMD8<UInt16> = .zero
        public var lengths: SIMD8<UInt16> = .zero
    }

    /// As many as a batch has records (`FlowDecoder.recordBatchCapacity`).
    public static let rowCount = 64
    public let rows: UnsafeMutablePointer<Row>
    /// The datagram being decoded, set by the decoder for each one.
    public var base: UnsafeRawPointer?

    public init() {
        rows = .allocate(capacity: Self.rowCount)
        rows.initialize(repeating: Row(), count: Self.rowCount)
    }

    deinit { rows.deallocate() }

    /// The octets of field `index` of `record` (present in its `customPresent`).
    public func value(of record: borrowing FlowRecord, _ index: Int) -> UnsafeRawBufferPointer {
        let row = rows[Int(record.customRow) % Self.rowCount]
        let start = base.map { $0 + Int(row.offsets[index]) }
        return UnsafeRawBufferPointer(start: start, count: start == nil ? 0 : Int(row.lengths[index]))
    }
}
