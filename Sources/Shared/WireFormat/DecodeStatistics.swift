import FlowModel

/// Everything that can be wrong with a datagram. Each is counted, none stops the decoder.
public enum DecodeErrorKind: Int, CaseIterable, Sendable {
    /// Shorter than the fixed header of its version.
    case truncatedHeader
    /// Version field is not 5, 9 or 10.
    case unsupportedVersion
    /// IPFIX header length below 16 or above the datagram's size (the message is dropped).
    case badMessageLength
    /// Set/FlowSet length below 4 or past the end of the message (the rest of the message is dropped).
    case badSetLength
    /// Set ID 0, 1 or 4–255 in IPFIX, 2–255 in NetFlow v9: skipped by its length.
    case reservedSetID
    /// A template record runs past the end of its set.
    case truncatedTemplate
    /// A template record that cannot be valid: ID below 256, scope count 0 or above the field count,
    /// or a record whose every field is zero-length (it could never advance through a data set).
    case malformedTemplate
    /// A data record runs past the end of its set (variable-length field longer than the set).
    case truncatedRecord
    /// NetFlow v5 header count says more records than the datagram holds.
    case v5CountMismatch
    /// A template snapshot (from another worker) rejected whole, or from one bad entry on; not a datagram.
    case invalidTemplateSnapshot
    /// A template with more fields than `maxFieldsPerTemplate` (templates.max.fields): skipped.
    case tooManyTemplateFields
    /// sFlow: shorter than its datagram header, or fewer samples than the header says.
    case sflowTruncatedDatagram
    /// sFlow: an agent address type other than 1 (IPv4) or 2 (IPv6): the rest cannot be located.
    case sflowBadAddressType
    /// sFlow: a sample longer than what is left of the datagram (the rest of the datagram is dropped),
    /// or shorter than its format's fixed fields (the sample is skipped).
    case sflowBadSampleLength
    /// sFlow: a flow record longer than what is left of its sample, or shorter than its format's fields
    /// (the sample is not emitted; the next sample is read).
    case sflowBadRecordLength

    /// snake_case, for a Prometheus label.
    public var label: String {
        switch self {
        case .truncatedHeader: "truncated_header"
        case .unsupportedVersion: "unsupported_version"
        case .badMessageLength: "bad_message_length"
        case .badSetLength: "bad_set_length"
        case .reservedSetID: "reserved_set_id"
        case .truncatedTemplate: "truncated_template"
        case .malformedTemplate: "malformed_template"
        case .truncatedRecord: "truncated_record"
        case .v5CountMismatch: "v5_count_mismatch"
        case .invalidTemplateSnapshot: "invalid_template_snapshot"
        case .tooManyTemplateFields: "too_many_template_fields"
        case .sflowTruncatedDatagram: "sflow_truncated_datagram"
        case .sflowBadAddressType: "sflow_bad_address_type"
        case .sflowBadSampleLength: "sflow_bad_sample_length"
        case .sflowBadRecordLength: "sflow_bad_record_length"
        }
    }
}

/// Cumulative counters of one `FlowDecoder`. Plain stored integers (the error counters in an array
/// allocated once, indexed by `DecodeErrorKind.rawValue`), so counting costs an add.
public struct DecodeStatistics: Sendable {
    public var ipfixMessages: UInt64 = 0
    public var netflowV9Messages: UInt64 = 0
    public var netflowV5Messages: UInt64 = 0
    /// Flow data records handed to the sink.
    public var flowRecords: UInt64 = 0
    /// Options data records parsed (never emitted).
    public var optionsRecords: UInt64 = 0
    /// Data sets dropped because their template is unknown (or expired). Counted per set: without
    /// the template the number of records in the set cannot be known.
    public var setsWithUnknownTemplate: UInt64 = 0
    public var templatesAdded: UInt64 = 0
    /// A template ID redefined (the new definition wins, RFC 7011 §8.1).
    public var templatesReplaced: UInt64 = 0
    public var templatesExpired: UInt64 = 0
    /// New templates refused because a per-session or total limit was reached.
    public var templatesRejectedByLimit: UInt64 = 0
    /// Template withdrawals received over UDP, ignored as RFC 7011 §8.4 requires.
    public var withdrawalsIgnored: UInt64 = 0
    /// Transport sessions evicted, by reason (`SessionEvictionReason`).
    public var sessionsEvictedByReason = [UInt64](repeating: 0, count: SessionEvictionReason.allCases.count)
    /// Records of data sets whose template has none of the flow fields: walked, never emitted.
    public var recordsWithoutFlowFields: UInt64 = 0
    /// IPFIX and v9 datagrams of a new transport session dropped because the session table was full
    /// of sessions holding templates (none may be evicted for it).
    public var datagramsWithoutSession: UInt64 = 0

    /// sFlow v5 datagrams whose header was valid.
    public var sflowDatagrams: UInt64 = 0
    /// sFlow flow samples (formats 1 and 3) read; those emitted are in `flowRecords`.
    public var sflowFlowSamples: UInt64 = 0
    /// sFlow counter samples (formats 2 and 4): counted, not flows.
    public var sflowCounterSamples: UInt64 = 0
    /// sFlow samples of other formats or enterprises, skipped by their length.
    public var sflowUnknownSamples: UInt64 = 0
    /// sFlow flow records of formats kflow does not read, skipped by their length.
    public var sflowUnknownRecords: UInt64 = 0
    /// Sampled packet headers cut before the last layer kflow reads (the agent's snap length, or a
    /// damaged header): the record keeps the fields before the cut.
    public var sflowPartialPacketHeaders: UInt64 = 0

    /// Transport sessions evicted, all reasons.
    public var sessionsEvicted: UInt64 { sessionsEvictedByReason.reduce(0, &+) }

    public func sessionsEvicted(_ reason: SessionEvictionReason) -> UInt64 { sessionsEvictedByReason[reason.rawValue] }
    /// Templates added or redefined from another worker's snapshot (not counted in `templatesAdded`).
    public var templatesImported: UInt64 = 0
    /// Reverse directions of biflow records (RFC 5103, NSEL) handed over as flows of their own (not in
    /// `flowRecords`, which counts data records).
    public var reverseFlows: UInt64 = 0
    /// Flows handed over without a start or end their template carries as uptime (IPFIX
    /// flowStart/EndSysUpTime without a systemInitTimeMilliseconds that explains it; v9 FIRST/LAST_SWITCHED
    /// beyond the header's unix_secs).
    public var flowsWithUnanchoredTimes: UInt64 = 0
    /// Export sequence accounting over every exporter stream (`SequenceTracker`): units (IPFIX records,
    /// v9 packets, v5 flows) the exporter sent that never arrived, messages that arrived out of order,
    /// and exporter restarts.
    public var sequenceLost: UInt64 = 0
    public var sequenceReordered: UInt64 = 0
    public var sequenceResets: UInt64 = 0

    /// Lookups of an unknown template in the other workers' template snapshots (at most one per session
    /// each time one of them publishes), and templates those lookups (and `server.balance=round-robin`'s
    /// sync of sessions held here) took over; the latter are also in `templatesImported`.
    public var siblingLookups: UInt64 = 0
    public var templatesFromSiblings: UInt64 = 0
    /// Flow records for which neither the exporter (record, options data, v5 header) nor
    /// `sampling.override` gave a sampling rate (`sampling.default`, if set, was used for them).
    public var flowsWithUnknownSampling: UInt64 = 0

    private var errorCounts = [UInt64](repeating: 0, count: DecodeErrorKind.allCases.count)

    public init() {}

    public func errors(_ kind: DecodeErrorKind) -> UInt64 { errorCounts[kind.rawValue] }

    /// All errors of every kind.
    public var totalErrors: UInt64 { errorCounts.reduce(0, &+) }

    package mutating func count(_ kind: DecodeErrorKind) {
        errorCounts[kind.rawValue] &+= 1
    }
}

/// Why a transport session (and its templates) was forgotten before its templates expired.
public enum SessionEvictionReason: Int, CaseIterable, Sendable {
    /// A new session arrived at `maxSessions`: the least recently used session without templates went.
    case sessionLimit
    /// A new session of an address at `maxSessionsPerAddress`: that address's least recently used went.
    case addressQuota
    /// A new template at the total template count or byte budget: the least recently used other
    /// session holding templates went.
    case templateLimit

    /// snake_case, for a Prometheus label.
    public var label: String {
        switch self {
        case .sessionLimit: "session_limit"
        case .addressQuota: "address_quota"
        case .templateLimit: "template_limit"
        }
    }
}

/// Per transport session counters, for the per-exporter metrics.
public struct ExporterStatistics: Sendable {
    public var datagrams: UInt64 = 0
    /// Flow data records emitted.
    public var flowRecords: UInt64 = 0
    /// Data sets dropped because their template was unknown.
    public var setsWithUnknownTemplate: UInt64 = 0
    /// Reverse directions of biflow records handed over as flows of their own.
    public var reverseFlows: UInt64 = 0
    /// Export sequence accounting of the session's streams (all its domains), as in `DecodeStatistics`.
    public var sequenceLost: UInt64 = 0
    public var sequenceReordered: UInt64 = 0
    public var sequenceResets: UInt64 = 0

    public init() {}
}
