import FlowModel
import WireFormat
import Templates

// The per-record loop shared by IPFIX and NetFlow v9 data sets: walks a data set with a compiled
// `DecodePlan` and copies numbers into each record's slot of the `RecordBatch`. Nothing here allocates
// or retains.

/// Per-message values the time and sampling conversions need.
struct MessageContext {
    var exportTimeSeconds: UInt32
    /// NetFlow v9 FIRST/LAST_SWITCHED are relative to the header's sysUptime; IPFIX's
    /// flowStart/EndSysUpTime to systemInitTimeMilliseconds.
    var isNetFlowV9: Bool
    var v9SysUptimeMs: UInt32
    /// From the domain's options records; 0 when unknown.
    var domainSystemInitTimeMs: UInt64
    /// Sampling, resolved once per data set (see `SamplingContext`).
    var sampling: SamplingContext
    /// Where `.custom` ops put their offsets (`CustomValueStore.rows`).
    var customRows: UnsafeMutablePointer<CustomValueStore.Row>
}

/// What a data set's records need to find their sampling rate.
struct SamplingContext {
    /// The rate of a record that names no known sampler and carries no rate: `sampling.override` for
    /// the exporter, else the domain's (`SamplerTable.fallbackRate`); 0 when unknown.
    var fallbackRate: UInt32
    /// `sampling.override` applies: it beats whatever a record says.
    var isOverridden: Bool
    /// The domain's samplers, for records that carry a sampler ID (a view, valid during the data set:
    /// the context stays plain data, so handing it to each record costs no reference counting).
    var samplers: UnsafeBufferPointer<SamplerRate>
    /// `sampling.default`, for records whose rate is unknown (0: none).
    var defaultRate: UInt32
    var renormalize: Bool
}

/// Values of one record that are converted only once the whole record is read (their meaning can
/// depend on a later field of the same record, e.g. systemInitTimeMilliseconds).
struct RecordScratch {
    var startRaw: UInt64 = 0
    var endRaw: UInt64 = 0
    var hasStart = false
    var hasEnd = false
    var systemInitTimeMs: UInt64 = 0
    var sampling = SamplingFields()
    var samplerID: UInt64 = 0
    var hasSamplerID = false
}

/// The outcome of one data set.
struct DataSetOutcome {
    var records = 0
    /// A variable-length field ran past the end of the set; the rest of the set was dropped.
    var truncated = false
    /// Reverse directions of biflow records handed over as flows of their own.
    var reverseFlows = 0
    /// Flows handed over without the start or end their template carries as uptime, because no anchor
    /// (systemInitTimeMilliseconds, a consistent sysUptime) places it in time.
    var unanchoredTimes = 0
    /// Flow records whose sampling rate nothing told (`DecodeStatistics.flowsWithUnknownSampling`).
    var unknownSampling = 0
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
private let ntpToUnixSeconds: UInt64 = 2_208_988_800

/// What the per-record loop keeps beyond the forward flow. Two forms, chosen per data set by
/// `DecodePlan.isBiflow`, each a specialisation of the loop: a template without a reverse direction runs
/// `OneDirection`, whose every member is empty, so it costs nothing per record.
protocol RecordDirections {
    /// False for `OneDirection`: a constant in each specialisation, so the reverse steps of the loop are
    /// compiled out of it (calling the empty members still cost a copy of the record per record).
    static var handlesReverse: Bool { get }
    init()
    /// Takes a reverse-direction value (only reverse targets reach it).
    mutating func take(_ target: FieldTarget, _ value: UInt64)
    /// Builds the reverse flow of the completed `forward` record, when its counters are non-zero.
    mutating func finish(
        forward: borrowing FlowRecord, forwardUnanchored: Bool, _ plan: DecodePlan, _ context: MessageContext,
        _ scratch: RecordScratch)
    /// Hands the reverse flow built by `finish` over (after the forward one); true when there was one,
    /// and whether its times were left out for want of an anchor.
    mutating func handOver(into batch: inout RecordBatch) -> (handed: Bool, unanchored: Bool)
}

struct OneDirection: RecordDirections {
    @inline(__always) static var handlesReverse: Bool { false }
    @inline(__always) init() {}
    @inline(__always) mutating func take(_ target: FieldTarget, _ value: UInt64) {}
    @inline(__always) mutating func finish(
        forward: borrowing FlowRecord, forwardUnanchored: Bool, _ plan: DecodePlan, _ context: MessageContext,
        _ scratch: RecordScratch) {}
    @inline(__always) mutating func handOver(into batch: inout RecordBatch) -> (handed: Bool, unanchored: Bool) { (false, false) }
}

/// RFC 5103: a biflow record's reverse direction. Its counters, flags and ToS come from the reverse IEs;
/// its times from the reverse time IEs, else the record's own (the biflow's, RFC 5103 §5.2); addresses,
/// ports, interfaces, AS numbers and masks are the forward ones swapped; everything else is shared.
struct BothDirections: RecordDirections {
    @inline(__always) static var handlesReverse: Bool { true }
    var bytes: UInt64 = 0
    var packets: UInt64 = 0
    var tcpFlags: UInt64 = 0
    var tos: UInt64 = 0
    var startRaw: UInt64 = 0
    var endRaw: UInt64 = 0
    var has: FlowRecord.Present = []
    var reverse = FlowRecord()
    var reverseUnanchored = false
    var pending = false

    init() {}

    @inline(__always)
    mutating func take(_ target: FieldTarget, _ value: UInt64) {
        switch target {
        case .reverseBytes: bytes = value; has.insert(.bytes)
        case .reversePackets: packets = value; has.insert(.packets)
        case .reverseTcpFlags: tcpFlags = value; has.insert(.tcpFlags)
        case .reverseTos: tos = value; has.insert(.tos)
        case .reverseFlowStart: startRaw = value; has.insert(.flowStart)
        case .reverseFlowEnd: endRaw = value; has.insert(.flowEnd)
        default: return
        }
    }

    mutating func finish(
        forward: borrowing FlowRecord, forwardUnanchored: Bool, _ plan: DecodePlan, _ context: MessageContext,
        _ scratch: RecordScratch
    ) {
        defer { bytes = 0; packets = 0; has = [] }
        // An idle reverse direction (a one-way flow) is no flow.
        guard bytes != 0 || packets != 0 else { return }
        var flow = copy forward
        swap(&flow.src, &flow.dst)
        swap(&flow.srcPort, &flow.dstPort)
        swap(&flow.inputInterface, &flow.outputInterface)
        swap(&flow.srcAS, &flow.dstAS)
        swap(&flow.srcMask, &flow.dstMask)
        flow.present.swapBits(.inputInterface, .outputInterface)
        flow.present.swapBits(.srcAS, .dstAS)
        flow.present.swapBits(.srcMask, .dstMask)
        flow.present.subtract([.bytes, .packets, .tcpFlags])
        flow.bytes = bytes
        flow.packets = packets
        flow.tcpFlags = has.contains(.tcpFlags) ? UInt16(truncatingIfNeeded: tcpFlags) : 0
        flow.present.formUnion(has.intersection([.bytes, .packets, .tcpFlags]))
        // The forward flow's rate applies to both directions; its counters were scaled already.
        if context.sampling.renormalize, flow.samplingInterval != 0 {
            RecordDecoding.scaleCounters(of: &flow, by: flow.samplingInterval)
        }
        if has.contains(.tos) {
            flow.tos = UInt8(truncatingIfNeeded: tos)
            flow.present.insert(.tos)
        }
        var unanchored = forwardUnanchored
        if has.contains(.flowStart) || has.contains(.flowEnd) {
            // Reverse times of their own: the forward ones do not apply.
            unanchored = false
            if has.contains(.flowStart),
                !RecordDecoding.setTime(.flowStart, startRaw, plan.reverseStartEncoding, context, scratch, &flow)
            {
                unanchored = true
            }
            if has.contains(.flowEnd),
                !RecordDecoding.setTime(.flowEnd, endRaw, plan.reverseEndEncoding, context, scratch, &flow)
            {
                unanchored = true
            }
        }
        reverse = flow
        reverseUnanchored = unanchored
        pending = true
    }

    @inline(__always)
    mutating func handOver(into batch: inout RecordBatch) -> (handed: Bool, unanchored: Bool) {
        guard pending else { return (false, false) }
        pending = false
        batch.add(reverse)
        return (true, reverseUnanchored)
    }
}

extension FlowRecord.Present {
    /// Exchanges the presence of two fields (the reverse flow swaps them).
    fileprivate mutating func swapBits(_ a: FlowRecord.Present, _ b: FlowRecord.Present) {
        let hasA = contains(a), hasB = contains(b)
        if hasA != hasB {
            if hasA { remove(a); insert(b) } else { remove(b); insert(a) }
        }
    }
}

enum RecordDecoding {
    /// Decodes every record of a data set's body (`range`, after the set header) with `plan`, each
    /// starting from `messageRecord` (the message's exporter, domain and export time). Flow records go to
    /// `batch`; options records update `options` instead. A biflow plan runs the loop that also hands over
    /// each record's reverse direction; every other plan the one-direction loop.
    static func decodeDataSet(
        _ bytes: UnsafeRawBufferPointer, range: Range<Int>, plan: DecodePlan, context: MessageContext,
        messageRecord: FlowRecord, options: inout OptionsValues, batch: inout RecordBatch
    ) -> DataSetOutcome {
        // Records of a template without flow fields are counted by the caller, never handed over (see
        // `DecodePlan.hasFlowFields`); a fixed-length set of them need not even be walked.
        if !plan.isOptions, !plan.hasFlowFields, plan.isFixedLength {
            return DataSetOutcome(records: range.count / plan.recordLength)
        }
        if plan.isBiflow {
            return decodeBiflowRecords(
                bytes, range: range, plan: plan, context: context, messageRecord: messageRecord, options: &options,
                batch: &batch)
        }
        return decodeRecords(
            bytes, range: range, plan: plan, context: context, messageRecord: messageRecord, options: &options,
            batch: &batch, directions: OneDirection.self)
    }

    /// The biflow loop, out of line: its code stays out of the one-direction loop's function (measured:
    /// inlined beside it, the one-direction loop ran 6-12 % slower).
    @inline(never)
    private static func decodeBiflowRecords(
        _ bytes: UnsafeRawBufferPointer, range: Range<Int>, plan: DecodePlan, context: MessageContext,
        messageRecord: FlowRecord, options: inout OptionsValues, batch: inout RecordBatch
    ) -> DataSetOutcome {
        decodeRecords(
            bytes, range: range, plan: plan, context: context, messageRecord: messageRecord, options: &options,
            batch: &batch, directions: BothDirections.self)
    }

    /// Inlined into `decodeDataSet` once per `RecordDirections` form, so each copy of the loop is compiled
    /// for its concrete form: the one-direction loop exactly as if biflows did not exist.
    @inline(__always)
    private static func decodeRecords<D: RecordDirections>(
        _ bytes: UnsafeRawBufferPointer, range: Range<Int>, plan: DecodePlan, context: MessageContext,
        messageRecord: FlowRecord, options: inout OptionsValues, batch: inout RecordBatch, directions: D.Type
    ) -> DataSetOutcome {
        var outcome = DataSetOutcome()
        let end = range.upperBound
        let recordLength = plan.recordLength
        let isOptions = plan.isOptions
        let handsOver = !isOptions && plan.hasFlowFields
        var reverse = D()
        /// After a record: its reverse flow, if any, follows it.
        @inline(__always) func handOverReverse(_ batch: inout RecordBatch) {
            let (handed, unanchored) = reverse.handOver(into: &batch)
            if handed {
                outcome.reverseFlows += 1
                if unanchored { outcome.unanchoredTimes += 1 }
            }
        }
        plan.ops.withUnsafeBufferPointer { ops in
            var position = range.lowerBound
            if plan.isFixedLength {
                while end - position >= recordLength {
                    batch.add(sameMessageAs: messageRecord) { record in
                        var scratch = RecordScratch()
                        for op in ops {
                            apply(op.target, bytes, at: position + op.offset, length: op.length, slot: op.slot, context.customRows, &record, &scratch, &reverse)
                        }
                        let unanchored = finish(plan, context, isOptions, &record, &scratch, &options, &outcome.unknownSampling)
                        if unanchored { outcome.unanchoredTimes += 1 }
                        if D.handlesReverse, handsOver { reverse.finish(forward: record, forwardUnanchored: unanchored, plan, context, scratch) }
                        return handsOver
                    }
                    if D.handlesReverse { handOverReverse(&batch) }
                    position += recordLength
                    outcome.records += 1
                }
                return
            }
            // Variable-length template: walk every field (RFC 7011 §7: 1-octet length, or 255 then 2 octets).
            while end - position >= recordLength {
                batch.add(sameMessageAs: messageRecord) { record in
                    var scratch = RecordScratch()
                    for op in ops {
                        var length = op.length
                        if op.isVariable {
                            guard position < end else { outcome.truncated = true; return false }
                            length = Int(bytes[position])
                            position += 1
                            if length == 255 {
                                guard end - position >= 2 else { outcome.truncated = true; return false }
                                length = Int(bytes.readBE16(at: position))
                                position += 2
                            }
                        }
                        guard end - position >= length else { outcome.truncated = true; return false }
                        // A pattern, not `!=`: `FieldTarget`'s `==` lives in Templates and would be a call per field.
                        if case .skip = op.target {} else { apply(op.target, bytes, at: position, length: length, slot: op.slot, context.customRows, &record, &scratch, &reverse) }
                        position += length
                    }
                    let unanchored = finish(plan, context, isOptions, &record, &scratch, &options, &outcome.unknownSampling)
                    if unanchored { outcome.unanchoredTimes += 1 }
                    if D.handlesReverse, handsOver { reverse.finish(forward: record, forwardUnanchored: unanchored, plan, context, scratch) }
                    return handsOver
                }
                if outcome.truncated { return }
                if D.handlesReverse { handOverReverse(&batch) }
                outcome.records += 1
            }
        }
        return outcome
    }

    /// Completes a record once all its fields are read: an options record's values go to `options`;
    /// a flow record gets its times and sampling interval. True when a time the template carries as
    /// uptime was left out for want of an anchor.
    @inline(__always)
    private static func finish(
        _ plan: DecodePlan, _ context: MessageContext, _ isOptions: Bool, _ record: inout FlowRecord,
        _ scratch: inout RecordScratch, _ options: inout OptionsValues, _ unknownSampling: inout Int
    ) -> Bool {
        if isOptions {
            let rate = scratch.sampling.rate
            if rate != 0 {
                if scratch.hasSamplerID {
                    options.samplers.append(SamplerRate(id: scratch.samplerID, rate: rate))
                } else {
                    options.samplingInterval = rate
                }
            }
            if scratch.systemInitTimeMs != 0 { options.systemInitTimeMs = scratch.systemInitTimeMs }
            return false
        }
        var unanchored = false
        if scratch.hasStart, !setTime(.flowStart, scratch.startRaw, plan.startEncoding, context, scratch, &record) {
            unanchored = true
        }
        if scratch.hasEnd, !setTime(.flowEnd, scratch.endRaw, plan.endEncoding, context, scratch, &record) {
            unanchored = true
        }
        var rate = context.sampling.fallbackRate
        if plan.readsSampling, !context.sampling.isOverridden {
            // The record's own rate, else its sampler's, else the domain's.
            let own = scratch.sampling.rate
            if own != 0 {
                rate = own
            } else if scratch.hasSamplerID {
                for sampler in context.sampling.samplers where sampler.id == scratch.samplerID {
                    rate = sampler.rate
                    break
                }
            }
        }
        if rate == 0 { unknownSampling += 1 }
        applySampling(rate, defaultRate: context.sampling.defaultRate, renormalize: context.sampling.renormalize, to: &record)
        return unanchored && plan.hasFlowFields
    }

    /// Sets the record's sampling rate (`sampling.default` when `rate` is 0) and, with
    /// `output.renormalize`, scales its counters by it (saturating). NetFlow v5 uses it too.
    @inline(__always)
    static func applySampling(_ rate: UInt32, defaultRate: UInt32, renormalize: Bool, to record: inout FlowRecord) {
        let rate = rate != 0 ? rate : defaultRate
        guard rate != 0 else { return }
        record.samplingInterval = rate
        record.present.insert(.samplingInterval)
        if renormalize { scaleCounters(of: &record, by: rate) }
    }

    /// `output.renormalize`: bytes and packets times the sampling rate, saturating.
    @inline(__always)
    static func scaleCounters(of record: inout FlowRecord, by rate: UInt32) {
        let bytes = record.bytes.multipliedReportingOverflow(by: UInt64(rate))
        record.bytes = bytes.overflow ? .max : bytes.partialValue
        let packets = record.packets.multipliedReportingOverflow(by: UInt64(rate))
        record.packets = packets.overflow ? .max : packets.partialValue
    }

    /// Sets the flow's start or end (`field`) from its raw value, or leaves it out when it converts to no
    /// time. False when that is for want of an anchor (the template carries it as uptime): counted.
    @inline(__always)
    static func setTime(
        _ field: FlowRecord.Present, _ raw: UInt64, _ encoding: TimeEncoding, _ context: MessageContext,
        _ scratch: RecordScratch, _ record: inout FlowRecord
    ) -> Bool {
        guard let ms = toEpochMilliseconds(raw, encoding, context, scratch) else {
            record.present.remove(field)
            if case .sysUpTime = encoding { return false }
            return true
        }
        if field == .flowStart { record.flowStartMs = ms } else { record.flowEndMs = ms }
        record.present.insert(field)
        return true
    }

    /// How far (ms) a flow time may lie after the moment its message says it was exported: the header's
    /// export time is truncated to seconds, and exporters' uptime counters and clocks disagree a little.
    static let exportTimeSlackMs: UInt64 = 60_000

    @inline(__always)
    static func toEpochMilliseconds(
        _ raw: UInt64, _ encoding: TimeEncoding, _ context: MessageContext, _ scratch: RecordScratch
    ) -> UInt64? {
        switch encoding {
        case .none: return nil
        case .seconds: return raw &* 1000
        case .milliseconds: return raw
        case .microsecondsNTP, .nanosecondsNTP:
            let seconds = raw >> 32
            guard seconds >= ntpToUnixSeconds else { return nil }
            return (seconds - ntpToUnixSeconds) * 1000 + ((raw & 0xFFFF_FFFF) * 1000) >> 32
        case .deltaMicroseconds:
            let exportMs = UInt64(context.exportTimeSeconds) * 1000
            let delta = raw / 1000
            return delta <= exportMs ? exportMs - delta : nil
        case .sysUpTime:
            let exportMs = UInt64(context.exportTimeSeconds) * 1000
            if context.isNetFlowV9 {
                // unix_secs corresponds to sysUptime; a switched time is that many ms earlier, both 32-bit
                // and wrapping. A time slightly *after* sysUptime (exporters stamp it racily) is that close
                // after the export, not 49.7 days before it.
                let switched = UInt32(truncatingIfNeeded: raw)
                let ahead = UInt64(switched &- context.v9SysUptimeMs)
                if ahead <= exportTimeSlackMs { return exportMs + ahead }
                let age = UInt64(context.v9SysUptimeMs &- switched)
                return age <= exportMs ? exportMs - age : nil
            }
            // IPFIX: systemInitTimeMilliseconds (the record's, else the domain's options data) + uptime. The
            // uptime IEs are 32-bit milliseconds and wrap every 49.7 days, so the value is the latest one
            // with those low 32 bits that is not after the export; none is when the anchor cannot explain it
            // (an uptime beyond what the device had been up at export): then the time stays unknown.
            let initMs = scratch.systemInitTimeMs != 0 ? scratch.systemInitTimeMs : context.domainSystemInitTimeMs
            guard initMs != 0, raw <= UInt64(UInt32.max), exportMs + exportTimeSlackMs >= initMs else { return nil }
            let latestUptime = exportMs + exportTimeSlackMs - initMs
            guard raw <= latestUptime else { return nil }
            let wraps = (latestUptime - raw) >> 32
            return initMs + raw + (wraps << 32)
        }
    }

    /// Copies one field. `length` is the field's actual length (checked against the set already).
    @inline(__always)
    static func apply<D: RecordDirections>(
        _ target: FieldTarget, _ bytes: UnsafeRawBufferPointer, at offset: Int, length: Int, slot: UInt8,
        _ customRows: UnsafeMutablePointer<CustomValueStore.Row>, _ record: inout FlowRecord, _ scratch: inout RecordScratch,
        _ reverse: inout D
    ) {
        switch target {
        case .skip: return
        case .custom:
            // Where the octets are, not a copy: the datagram outlives the record (`CustomValueStore`).
            let index = slot & ~FieldOp.variableLengthSlot
            let row = customRows + Int(record.customRow)
            row.pointee.offsets[Int(index)] = UInt16(truncatingIfNeeded: offset)
            row.pointee.lengths[Int(index)] = UInt16(truncatingIfNeeded: length)
            record.customPresent |= 1 << index
            if slot & FieldOp.variableLengthSlot != 0 { record.customVariableLength |= 1 << index }
        case .srcV4, .dstV4, .nextHopV4:
            guard length == 4 else { return }
            let address = IPAddress(v4: bytes.readBE32(at: offset))
            assign(address, to: target, &record)
        case .srcV6, .dstV6, .nextHopV6:
            guard length == 16 else { return }
            assign(bytes.readIPv6(at: offset), to: target, &record)
        default:
            guard length >= 1, length <= 8 else { return }
            let value = bytes.readUnsigned(at: offset, length: length)
            assign(value, to: target, &record, &scratch, &reverse)
        }
    }

    /// Sets an address field that a template may feed from both an IPv4 and an IPv6 IE. Exporters
    /// send the unused family as all zeros, so a non-zero address beats a zero one; when both are
    /// non-zero (Cisco SRv6: the IPv6 pair is the outer encapsulation) IPv4 wins, whatever the order.
    @inline(__always)
    private static func assign(_ address: IPAddress, to target: FieldTarget, _ record: inout FlowRecord) {
        @inline(__always) func merge(_ slot: inout IPAddress) {
            let slotIsZero = slot.high == 0 && slot.low == 0
            let newIsZero = address.high == 0 && address.low == 0
            if slot.family == .none || (slotIsZero && !newIsZero)
                || (!newIsZero && address.family == .v4 && slot.family == .v6)
            {
                slot = address
            }
        }
        switch target {
        case .srcV4, .srcV6: merge(&record.src)
        case .dstV4, .dstV6: merge(&record.dst)
        default:
            merge(&record.nextHop)
            record.present.insert(.nextHop)
        }
    }

    @inline(__always)
    private static func assign<D: RecordDirections>(
        _ value: UInt64, to target: FieldTarget, _ record: inout FlowRecord, _ scratch: inout RecordScratch,
        _ reverse: inout D
    ) {
        switch target {
        case .srcPort:
            record.srcPort = UInt16(truncatingIfNeeded: value)
            record.present.insert(.srcPort)
        case .dstPort:
            record.dstPort = UInt16(truncatingIfNeeded: value)
            record.present.insert(.dstPort)
        case .proto:
            record.proto = UInt8(truncatingIfNeeded: value)
            record.present.insert(.proto)
        case .tcpFlags:
            record.tcpFlags = UInt16(truncatingIfNeeded: value)
            record.present.insert(.tcpFlags)
        case .bytes:
            record.bytes = value
            record.present.insert(.bytes)
        case .packets:
            record.packets = value
            record.present.insert(.packets)
        case .inputInterface:
            record.inputInterface = UInt32(truncatingIfNeeded: value)
            record.present.insert(.inputInterface)
        case .outputInterface:
            record.outputInterface = UInt32(truncatingIfNeeded: value)
            record.present.insert(.outputInterface)
        case .srcAS:
            record.srcAS = UInt32(truncatingIfNeeded: value)
            record.present.insert(.srcAS)
        case .dstAS:
            record.dstAS = UInt32(truncatingIfNeeded: value)
            record.present.insert(.dstAS)
        case .vlan:
            record.vlan = UInt16(truncatingIfNeeded: value)
            record.present.insert(.vlan)
        case .tos:
            record.tos = UInt8(truncatingIfNeeded: value)
            record.present.insert(.tos)
        case .direction:
            record.direction = UInt8(truncatingIfNeeded: value)
            record.present.insert(.direction)
        case .srcMask:
            record.srcMask = UInt8(truncatingIfNeeded: value)
            record.present.insert(.srcMask)
        case .dstMask:
            record.dstMask = UInt8(truncatingIfNeeded: value)
            record.present.insert(.dstMask)
        case .flowStart:
            scratch.startRaw = value
            scratch.hasStart = true
        case .flowEnd:
            scratch.endRaw = value
            scratch.hasEnd = true
        case .systemInitTime:
            scratch.systemInitTimeMs = value
        case .samplingInterval: scratch.sampling.interval = UInt32(clamping: value)
        case .samplerRandomInterval: scratch.sampling.randomInterval = UInt32(clamping: value)
        case .samplingPacketInterval: scratch.sampling.packetInterval = UInt32(clamping: value)
        case .samplingPacketSpace:
            scratch.sampling.packetSpace = UInt32(clamping: value)
            scratch.sampling.hasPacketSpace = true
        case .samplingSize: scratch.sampling.size = UInt32(clamping: value)
        case .samplingPopulation: scratch.sampling.population = UInt32(clamping: value)
        case .samplerID:
            scratch.samplerID = value
            scratch.hasSamplerID = true
        case .reverseBytes, .reversePackets, .reverseTcpFlags, .reverseTos, .reverseFlowStart, .reverseFlowEnd:
            reverse.take(target, value)
        case .skip, .srcV4, .dstV4, .srcV6, .dstV6, .nextHopV4, .nextHopV6, .custom:
            return
        }
    }
}
