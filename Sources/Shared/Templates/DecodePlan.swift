import FlowModel
import WireFormat

/// Which `FlowRecord` field (or per-record scratch value) a template field feeds.
package enum FieldTarget: UInt8, CaseIterable, Sendable {
    case skip
    case srcV4, dstV4, srcV6, dstV6, nextHopV4, nextHopV6
    case srcPort, dstPort, proto, tcpFlags, bytes, packets
    case inputInterface, outputInterface, srcAS, dstAS, vlan, tos, direction, srcMask, dstMask
    case flowStart, flowEnd, systemInitTime, samplingInterval
    // Sampling: the raw values `SamplingFields` turns into a rate, and the sampler (selector) ID.
    case samplerRandomInterval, samplingPacketInterval, samplingPacketSpace, samplingSize, samplingPopulation
    case samplerID
    /// A field chosen by configuration (`output.field.*`): its octets' place goes to slot `FieldOp.slot`.
    case custom
    /// The reverse direction of a biflow record (RFC 5103 PEN 29305 IEs, or NSEL responder counters):
    /// compiled only when biflows are split (`DecoderConfiguration.splitsBiflows`). Last: the compiler
    /// drops every target from `reverseBytes` on when a template is no biflow.
    case reverseBytes, reversePackets, reverseTcpFlags, reverseTos, reverseFlowStart, reverseFlowEnd

    /// The targets that feed a record's sampling rate or sampler ID (never a flow field of their own).
    package static let samplingTargets: Set<FieldTarget> = [
        .samplingInterval, .samplerRandomInterval, .samplingPacketInterval, .samplingPacketSpace, .samplingSize,
        .samplingPopulation, .samplerID,
    ]
}

/// How a template encodes the flow start or end time; decides the conversion to epoch milliseconds.
package enum TimeEncoding: UInt8, Sendable {
    case none
    case seconds, milliseconds
    /// dateTimeMicroseconds / dateTimeNanoseconds: NTP format (RFC 7011 §6.1.9–10).
    case microsecondsNTP, nanosecondsNTP
    /// flowStart/EndDeltaMicroseconds: microseconds before the message's export time.
    case deltaMicroseconds
    /// flowStart/EndSysUpTime (IPFIX: after systemInitTimeMilliseconds) or FIRST/LAST_SWITCHED (v9:
    /// relative to the header's sysUptime and unix_secs).
    case sysUpTime
}

/// One field of a template as it was defined on the wire.
package struct TemplateField: Sendable {
    package var id: UInt16
    /// Non-zero for enterprise-specific IEs (IPFIX); NetFlow v9 has none.
    package var enterpriseNumber: UInt32
    /// Octets, or `InformationElement.variableLength`.
    package var length: UInt16
    /// Options template scope fields are never read (their meaning is not that of the IE namespace in v9).
    package var isScope: Bool

    package init(id: UInt16, enterpriseNumber: UInt32, length: UInt16, isScope: Bool) {
        self.id = id
        self.enterpriseNumber = enterpriseNumber
        self.length = length
        self.isScope = isScope
    }
}

/// One step of the per-record loop: copy the number at `offset` (fixed-length templates) or at the
/// walk position (variable-length templates) of `length` octets into `target`. 12 octets: a template's
/// ops are most of its memory, so they are kept small.
package struct FieldOp: Sendable {
    /// Octets from the record's start (fixed-length templates; 0 otherwise).
    package var offset: Int
    /// Octets; in a variable-length template a `.skip` op may stand for a run of fixed-length fields.
    package var length: Int
    package var target: FieldTarget
    /// The field's length is in the record (RFC 7011 §7), not in `length`.
    package var isVariable: Bool
    /// `.custom` ops: the configured field's index (`DecoderConfiguration.customFields`), plus
    /// `variableLengthSlot` when the template declares the field variable-length.
    package var slot: UInt8
    package static let variableLengthSlot: UInt8 = 0x80

    package init(offset: Int, length: Int, target: FieldTarget, isVariable: Bool = false, slot: UInt8 = 0) {
        self.offset = offset
        self.length = length
        self.target = target
        self.isVariable = isVariable
        self.slot = slot
    }
}

/// A template compiled once into what the per-record loop needs. Immutable, shared by reference.
package final class DecodePlan: Sendable {
    package let templateID: UInt16
    package let isOptions: Bool
    /// Fixed-length templates read only the fields kflow uses at precomputed offsets; templates with
    /// variable-length fields list every field in order and are walked.
    package let isFixedLength: Bool
    /// The record length of a fixed-length template; the smallest possible record otherwise (≥ 1).
    package let recordLength: Int
    package let ops: [FieldOp]
    package let startEncoding: TimeEncoding
    package let endEncoding: TimeEncoding
    /// The reverse direction's start and end encodings (RFC 5103 reverse time IEs); `.none` when absent.
    package let reverseStartEncoding: TimeEncoding
    package let reverseEndEncoding: TimeEncoding
    /// The template carries a reverse direction (RFC 5103 reverse counters or an NSEL responder
    /// counter paired with its initiator one) and biflows are split: each record may give two flows.
    /// Chosen per data set, so a template without reverse fields runs the one-direction loop.
    package let isBiflow: Bool
    /// The template's field specifiers as received, to tell a refresh (same bytes) from a redefinition.
    package let definition: [UInt8]
    /// False when the template feeds none of the fields kflow emits (addresses, ports, protocol,
    /// counters, interfaces, times, ...): its records are walked and counted but never emitted, so a
    /// template of padding or unknown IEs cannot turn each octet of a data set into an empty flow.
    package let hasFlowFields: Bool
    /// True when a data template's records carry their own sampling values or sampler ID: only their
    /// records look a rate up per record; the others take the domain's, resolved once per data set.
    package let readsSampling: Bool
    /// What keeping this plan in the cache costs, in bytes: the definition, the ops and a fixed
    /// overhead (objects, array headers, the cache's dictionary slot). What the byte budgets count.
    package let memoryCost: Int

    /// Per cached template beyond its definition and ops: the plan object and its two array headers
    /// (3 × 32), the `CachedTemplate` in its dictionary slot and malloc rounding, measured generously.
    package static let fixedMemoryCost = 256

    private init(
        templateID: UInt16, isOptions: Bool, isFixedLength: Bool, recordLength: Int, ops: [FieldOp],
        startEncoding: TimeEncoding, endEncoding: TimeEncoding, reverseStartEncoding: TimeEncoding,
        reverseEndEncoding: TimeEncoding, isBiflow: Bool, definition: [UInt8], hasFlowFields: Bool,
        readsSampling: Bool
    ) {
        self.templateID = templateID
        self.isOptions = isOptions
        self.isFixedLength = isFixedLength
        self.recordLength = recordLength
        self.ops = ops
        self.startEncoding = startEncoding
        self.endEncoding = endEncoding
        self.reverseStartEncoding = reverseStartEncoding
        self.reverseEndEncoding = reverseEndEncoding
        self.isBiflow = isBiflow
        self.definition = definition
        self.hasFlowFields = hasFlowFields
        self.readsSampling = readsSampling
        self.memoryCost = definition.count + ops.count * MemoryLayout<FieldOp>.stride + Self.fixedMemoryCost
    }

    /// Why a template cannot be compiled.
    package enum CompileError: Error, Equatable {
        /// Every field has length 0 (or there are none): a data set of such records could never be walked.
        case zeroLengthRecord(templateID: UInt16)
    }

    /// Compiles a template. For each record field kflow emits, the first valid occurrence of the
    /// highest-ranked IE wins (see docs/DECODING.md); later duplicates and unknown IEs are skipped.
    /// With `splitBiflows`, reverse-direction fields (RFC 5103, NSEL responder counters) are compiled too.
    ///
    /// `custom` fields (flow templates only) take fields kflow does not use otherwise, first occurrence
    /// each; one kflow uses too is read for both in a fixed-length template, only for kflow's own field in
    /// a variable-length one (its ops are a walk, one per field).
    package static func compile(
        templateID: UInt16, isOptions: Bool, fields: [TemplateField], definition: [UInt8], splitBiflows: Bool = false,
        custom: [CustomField] = []
    ) -> Result<DecodePlan, CompileError> {
        var minimumLength = 0
        var isFixedLength = true
        for field in fields {
            if field.length == InformationElement.variableLength {
                isFixedLength = false
                minimumLength += 1
            } else {
                minimumLength += Int(field.length)
            }
        }
        guard minimumLength > 0 else { return .failure(.zeroLengthRecord(templateID: templateID)) }

        // Pick, per target, the field index with the best rank (lowest), first occurrence on ties.
        var winner = [Int](repeating: -1, count: FieldTarget.allCases.count)
        var winnerRank = [Int](repeating: Int.max, count: winner.count)
        var startEncoding = TimeEncoding.none, endEncoding = TimeEncoding.none
        var reverseStartEncoding = TimeEncoding.none, reverseEndEncoding = TimeEncoding.none
        var encodingOfField = [TimeEncoding](repeating: .none, count: fields.count)
        for (index, field) in fields.enumerated() {
            let found: Mapping?
            switch field.enterpriseNumber {
            case 0: found = Self.mapping(of: field.id, isOptions: isOptions)
            case reversePEN where splitBiflows && !isOptions: found = Self.reverseMapping(of: field.id)
            default: found = nil
            }
            // Scope fields are read only for the sampler ID (IPFIX scopes options by selectorId/samplerId);
            // NetFlow v9 scope types (1-5) are another namespace and map to nothing here.
            guard let mapping = found,
                !field.isScope || mapping.target == .samplerID,
                Self.isUsableLength(field.length, for: mapping.target, encoding: mapping.encoding)
            else { continue }
            let slot = Int(mapping.target.rawValue)
            if mapping.rank < winnerRank[slot] {
                winner[slot] = index
                winnerRank[slot] = mapping.rank
                encodingOfField[index] = mapping.encoding
            }
        }
        var targetOfField = [FieldTarget](repeating: .skip, count: fields.count)
        for (slot, index) in winner.enumerated() where index >= 0 {
            let target = FieldTarget(rawValue: UInt8(slot)) ?? .skip
            targetOfField[index] = target
            if target == .flowStart { startEncoding = encodingOfField[index] }
            if target == .flowEnd { endEncoding = encodingOfField[index] }
            if target == .reverseFlowStart { reverseStartEncoding = encodingOfField[index] }
            if target == .reverseFlowEnd { reverseEndEncoding = encodingOfField[index] }
        }
        // NSEL responder counters are the reverse direction only beside their initiator counterparts
        // (then the record is one connection seen both ways); beside a plain delta count, which
        // direction a responder count belongs to is not said, so it is left alone.
        func dropUnpairedResponder(_ reverse: FieldTarget, responder: UInt16, forward: FieldTarget, initiator: UInt16) {
            let index = winner[Int(reverse.rawValue)]
            guard index >= 0, fields[index].enterpriseNumber == 0, fields[index].id == responder else { return }
            let forwardIndex = winner[Int(forward.rawValue)]
            if forwardIndex < 0 || fields[forwardIndex].enterpriseNumber != 0 || fields[forwardIndex].id != initiator {
                targetOfField[index] = .skip
            }
        }
        typealias IE = InformationElement
        dropUnpairedResponder(.reverseBytes, responder: IE.responderOctets, forward: .bytes, initiator: IE.initiatorOctets)
        dropUnpairedResponder(.reversePackets, responder: IE.responderPackets, forward: .packets, initiator: IE.initiatorPackets)
        // A biflow needs a reverse counter: flags or times alone cannot make a reverse flow non-empty.
        let isBiflow = splitBiflows && targetOfField.contains { $0 == .reverseBytes || $0 == .reversePackets }
        if !isBiflow {
            for index in targetOfField.indices where targetOfField[index].rawValue >= FieldTarget.reverseBytes.rawValue {
                targetOfField[index] = .skip
            }
            reverseStartEncoding = .none
            reverseEndEncoding = .none
        }

        // Custom fields: the first field of each that is not a scope field.
        var slotOfField = [Int](repeating: -1, count: fields.count)
        if !isOptions, !custom.isEmpty {
            for (slot, wanted) in custom.enumerated() {
                guard let index = fields.firstIndex(where: { field in
                    !field.isScope && field.id == wanted.id && field.enterpriseNumber == wanted.enterprise
                }) else { continue }
                slotOfField[index] = slot
            }
        }

        // Fixed-length: only the fields kflow uses, at their offsets. Variable-length: the fields in
        // order, a run of unused fixed-length fields merged into one skip and zero-length fields (real
        // exporters send them: Juniper, some v9 ones) left out, as they occupy nothing. So a record costs
        // at most one op per octet it occupies: each op stands for at least one octet (a variable-length
        // field for its length octet), and a crafted template of thousands of empty fields costs nothing.
        var ops: [FieldOp] = []
        var offset = 0
        for (index, field) in fields.enumerated() {
            let length = Int(field.length)
            let target = targetOfField[index]
            let slot = slotOfField[index]
            if isFixedLength {
                if target != .skip { ops.append(FieldOp(offset: offset, length: length, target: target)) }
                if slot >= 0 { ops.append(FieldOp(offset: offset, length: length, target: .custom, slot: UInt8(slot))) }
                offset += length
            } else if field.length == 0 {
                continue
            } else if slot >= 0, target == .skip {
                let isVariable = field.length == InformationElement.variableLength
                ops.append(FieldOp(
                    offset: 0, length: isVariable ? 0 : length, target: .custom, isVariable: isVariable,
                    slot: UInt8(slot) | (isVariable ? FieldOp.variableLengthSlot : 0)))
            } else if field.length == InformationElement.variableLength {
                ops.append(FieldOp(offset: 0, length: 0, target: target, isVariable: true))
            } else if target == .skip, let last = ops.last, last.target == .skip, !last.isVariable {
                ops[ops.count - 1].length += length
            } else {
                ops.append(FieldOp(offset: 0, length: length, target: target))
            }
        }
        // Any field kflow emits counts: real exporters send records of interfaces and times alone
        // (Juniper's data-link and SRv6 templates, EoMPLS), and their flows must stay.
        let hasFlowFields = !isOptions && targetOfField.contains {
            $0 != .skip && $0 != .systemInitTime && !FieldTarget.samplingTargets.contains($0)
        }
        let readsSampling = !isOptions && targetOfField.contains { FieldTarget.samplingTargets.contains($0) }
        return .success(
            DecodePlan(
                templateID: templateID, isOptions: isOptions, isFixedLength: isFixedLength,
                recordLength: minimumLength, ops: ops, startEncoding: startEncoding,
                endEncoding: endEncoding, reverseStartEncoding: reverseStartEncoding,
                reverseEndEncoding: reverseEndEncoding, isBiflow: isBiflow, definition: definition,
                hasFlowFields: hasFlowFields, readsSampling: readsSampling))
    }

    private struct Mapping {
        var target: FieldTarget
        var rank: Int
        var encoding: TimeEncoding = .none
    }

    /// The IE → record field table. Rank orders alternatives for one field (0 preferred).
    private static func mapping(of id: UInt16, isOptions: Bool) -> Mapping? {
        typealias IE = InformationElement
        if isOptions {
            // Options records only feed the per-domain sampling and uptime state.
            if id == IE.systemInitTimeMilliseconds { return Mapping(target: .systemInitTime, rank: 0) }
            return samplingMapping(of: id)
        }
        if let sampling = samplingMapping(of: id) { return sampling }
        switch id {
        case IE.sourceIPv4Address: return Mapping(target: .srcV4, rank: 0)
        case IE.destinationIPv4Address: return Mapping(target: .dstV4, rank: 0)
        case IE.sourceIPv6Address: return Mapping(target: .srcV6, rank: 0)
        case IE.destinationIPv6Address: return Mapping(target: .dstV6, rank: 0)
        case IE.ipNextHopIPv4Address: return Mapping(target: .nextHopV4, rank: 0)
        case IE.bgpNextHopIPv4Address: return Mapping(target: .nextHopV4, rank: 1)
        case IE.ipNextHopIPv6Address: return Mapping(target: .nextHopV6, rank: 0)
        case IE.bgpNextHopIPv6Address: return Mapping(target: .nextHopV6, rank: 1)
        case IE.sourceTransportPort: return Mapping(target: .srcPort, rank: 0)
        case IE.destinationTransportPort: return Mapping(target: .dstPort, rank: 0)
        case IE.protocolIdentifier: return Mapping(target: .proto, rank: 0)
        case IE.tcpControlBits: return Mapping(target: .tcpFlags, rank: 0)
        case IE.octetDeltaCount: return Mapping(target: .bytes, rank: 0)
        case IE.octetTotalCount: return Mapping(target: .bytes, rank: 1)
        case IE.postOctetDeltaCount: return Mapping(target: .bytes, rank: 2)
        case IE.initiatorOctets: return Mapping(target: .bytes, rank: 3)
        case IE.responderOctets: return Mapping(target: .reverseBytes, rank: 3)
        case IE.responderPackets: return Mapping(target: .reversePackets, rank: 3)
        case IE.packetDeltaCount: return Mapping(target: .packets, rank: 0)
        case IE.packetTotalCount: return Mapping(target: .packets, rank: 1)
        case IE.postPacketDeltaCount: return Mapping(target: .packets, rank: 2)
        case IE.initiatorPackets: return Mapping(target: .packets, rank: 3)
        case IE.ingressInterface: return Mapping(target: .inputInterface, rank: 0)
        case IE.egressInterface: return Mapping(target: .outputInterface, rank: 0)
        case IE.bgpSourceAsNumber: return Mapping(target: .srcAS, rank: 0)
        case IE.bgpDestinationAsNumber: return Mapping(target: .dstAS, rank: 0)
        case IE.vlanId: return Mapping(target: .vlan, rank: 0)
        case IE.dot1qVlanId: return Mapping(target: .vlan, rank: 1)
        case IE.ipClassOfService: return Mapping(target: .tos, rank: 0)
        case IE.flowDirection: return Mapping(target: .direction, rank: 0)
        case IE.sourceIPv4PrefixLength: return Mapping(target: .srcMask, rank: 0)
        case IE.sourceIPv6PrefixLength: return Mapping(target: .srcMask, rank: 1)
        case IE.destinationIPv4PrefixLength: return Mapping(target: .dstMask, rank: 0)
        case IE.destinationIPv6PrefixLength: return Mapping(target: .dstMask, rank: 1)
        case IE.flowStartMilliseconds: return Mapping(target: .flowStart, rank: 0, encoding: .milliseconds)
        case IE.flowStartSeconds: return Mapping(target: .flowStart, rank: 1, encoding: .seconds)
        case IE.flowStartMicroseconds: return Mapping(target: .flowStart, rank: 2, encoding: .microsecondsNTP)
        case IE.flowStartNanoseconds: return Mapping(target: .flowStart, rank: 3, encoding: .nanosecondsNTP)
        case IE.flowStartDeltaMicroseconds:
            return Mapping(target: .flowStart, rank: 4, encoding: .deltaMicroseconds)
        case IE.flowStartSysUpTime: return Mapping(target: .flowStart, rank: 5, encoding: .sysUpTime)
        case IE.flowEndMilliseconds: return Mapping(target: .flowEnd, rank: 0, encoding: .milliseconds)
        case IE.flowEndSeconds: return Mapping(target: .flowEnd, rank: 1, encoding: .seconds)
        case IE.flowEndMicroseconds: return Mapping(target: .flowEnd, rank: 2, encoding: .microsecondsNTP)
        case IE.flowEndNanoseconds: return Mapping(target: .flowEnd, rank: 3, encoding: .nanosecondsNTP)
        case IE.flowEndDeltaMicroseconds: return Mapping(target: .flowEnd, rank: 4, encoding: .deltaMicroseconds)
        case IE.flowEndSysUpTime: return Mapping(target: .flowEnd, rank: 5, encoding: .sysUpTime)
        case IE.systemInitTimeMilliseconds: return Mapping(target: .systemInitTime, rank: 0)
        default: return nil
        }
    }

    /// The sampling IEs, in options and data records alike (see `SamplingFields` for their meaning).
    private static func samplingMapping(of id: UInt16) -> Mapping? {
        typealias IE = InformationElement
        switch id {
        case IE.samplingInterval: return Mapping(target: .samplingInterval, rank: 0)
        case IE.samplerRandomInterval: return Mapping(target: .samplerRandomInterval, rank: 0)
        case IE.samplingPacketInterval: return Mapping(target: .samplingPacketInterval, rank: 0)
        case IE.samplingPacketSpace: return Mapping(target: .samplingPacketSpace, rank: 0)
        case IE.samplingSize: return Mapping(target: .samplingSize, rank: 0)
        case IE.samplingPopulation: return Mapping(target: .samplingPopulation, rank: 0)
        case IE.selectorId: return Mapping(target: .samplerID, rank: 0)
        case IE.samplerId: return Mapping(target: .samplerID, rank: 1)
        default: return nil
        }
    }

    /// The IANA Reverse Information Element PEN (RFC 5103 §6.1): the reverse direction of IE n is (29305, n).
    package static let reversePEN: UInt32 = 29305

    /// The reverse-direction IEs (PEN 29305) that become the reverse flow's fields, ranked as their
    /// forward counterparts.
    private static func reverseMapping(of id: UInt16) -> Mapping? {
        guard let forward = mapping(of: id, isOptions: false) else { return nil }
        let target: FieldTarget
        switch forward.target {
        case .bytes: target = .reverseBytes
        case .packets: target = .reversePackets
        case .tcpFlags: target = .reverseTcpFlags
        case .tos: target = .reverseTos
        case .flowStart: target = .reverseFlowStart
        case .flowEnd: target = .reverseFlowEnd
        default: return nil
        }
        // initiator/responder have no reverse form (each already names a direction).
        if id == InformationElement.initiatorOctets || id == InformationElement.initiatorPackets { return nil }
        return Mapping(target: target, rank: forward.rank, encoding: forward.encoding)
    }

    /// Addresses must have their exact size; integers 1–8 octets (reduced-size encoding); NTP
    /// timestamps 8 octets. A variable-length field is checked per record instead.
    private static func isUsableLength(_ length: UInt16, for target: FieldTarget, encoding: TimeEncoding) -> Bool {
        if length == InformationElement.variableLength { return true }
        switch target {
        case .srcV4, .dstV4, .nextHopV4: return length == 4
        case .srcV6, .dstV6, .nextHopV6: return length == 16
        default:
            if encoding == .microsecondsNTP || encoding == .nanosecondsNTP { return length == 8 }
            return (1...8).contains(length)
        }
    }
}
