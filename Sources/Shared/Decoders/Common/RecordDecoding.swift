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
    /// Flow records whose sampling rate nothing told (`DecodeStatistics.flowsWithUnknownSampling`).
    var unknownSampling = 0
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
private let ntpToUnixSeconds: UInt64 = 2_208_988_800

enum RecordDecoding {
    /// Decodes every record of a data set's body (`range`, after the set header) with `plan`, each
    /// starting from `messageRecord` (the message's exporter, domain and export time). Flow records go to
    /// `batch`; options records update `options` instead.
    static func decodeDataSet(
        _ bytes: UnsafeRawBufferPointer, range: Range<Int>, plan: DecodePlan, context: MessageContext,
        messageRecord: FlowRecord, options: inout OptionsValues, batch: inout RecordBatch
    ) -> DataSetOutcome {
        // Records of a template without flow fields are counted by the caller, never handed over (see
        // `DecodePlan.hasFlowFields`); a fixed-length set of them need not even be walked.
        if !plan.isOptions, !plan.hasFlowFields, plan.isFixedLength {
            return DataSetOutcome(records: range.count / plan.recordLength)
        }
        var outcome = DataSetOutcome()
        let end = range.upperBound
        let recordLength = plan.recordLength
        let isOptions = plan.isOptions
        let handsOver = !isOptions && plan.hasFlowFields
        plan.ops.withUnsafeBufferPointer { ops in
            var position = range.lowerBound
            if plan.isFixedLength {
                while end - position >= recordLength {
                    batch.add(sameMessageAs: messageRecord) { record in
                        var scratch = RecordScratch()
                        for op in ops {
                            apply(op.target, bytes, at: position + op.offset, length: op.length, slot: op.slot, context.customRows, &record, &scratch)
                        }
                        finish(plan, context, isOptions, &record, &scratch, &options, &outcome.unknownSampling)
                        return handsOver
                    }
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
                        if case .skip = op.target {} else { apply(op.target, bytes, at: position, length: length, slot: op.slot, context.customRows, &record, &scratch) }
                        position += length
                    }
                    finish(plan, context, isOptions, &record, &scratch, &options, &outcome.unknownSampling)
                    return handsOver
                }
                if outcome.truncated { return }
                outcome.records += 1
            }
        }
        return outcome
    }

    /// Completes a record once all its fields are read: an options record's values go to `options`;
    /// a flow record gets its times and sampling interval.
    @inline(__always)
    private static func finish(
        _ plan: DecodePlan, _ context: MessageContext, _ isOptions: Bool, _ record: inout FlowRecord,
        _ scratch: inout RecordScratch, _ options: inout OptionsValues, _ unknownSampling: inout Int
    ) {
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
            return
        }
        if scratch.hasStart, let ms = toEpochMilliseconds(scratch.startRaw, plan.startEncoding, context, scratch) {
            record.flowStartMs = ms
            record.present.insert(.flowStart)
        }
        if scratch.hasEnd, let ms = toEpochMilliseconds(scratch.endRaw, plan.endEncoding, context, scratch) {
            record.flowEndMs = ms
            record.present.insert(.flowEnd)
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
    }

    /// Sets the record's sampling rate (`sampling.default` when `rate` is 0) and, with
    /// `output.renormalize`, scales its counters by it (saturating). NetFlow v5 uses it too.
    @inline(__always)
    static func applySampling(_ rate: UInt32, defaultRate: UInt32, renormalize: Bool, to record: inout FlowRecord) {
        let rate = rate != 0 ? rate : defaultRate
        guard rate != 0 else { return }
        record.samplingInterval = rate
        record.present.insert(.samplingInterval)
        if renormalize {
            let bytes = record.bytes.multipliedReportingOverflow(by: UInt64(rate))
            record.bytes = bytes.overflow ? .max : bytes.partialValue
            let packets = record.packets.multipliedReportingOverflow(by: UInt64(rate))
            record.packets = packets.overflow ? .max : packets.partialValue
        }
    }

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
            if context.isNetFlowV9 {
                // unix_secs corresponds to sysUptime; a switched time is that many ms earlier (wrapping uptime).
                let age = UInt64(context.v9SysUptimeMs &- UInt32(truncatingIfNeeded: raw))
                let exportMs = UInt64(context.exportTimeSeconds) * 1000
                return age <= exportMs ? exportMs - age : nil
            }
            let initMs = scratch.systemInitTimeMs != 0 ? scratch.systemInitTimeMs : context.domainSystemInitTimeMs
            return initMs != 0 ? initMs &+ raw : nil
        }
    }

    /// Copies one field. `length` is the field's actual length (checked against the set already).
    @inline(__always)
    static func apply(
        _ target: FieldTarget, _ bytes: UnsafeRawBufferPointer, at offset: Int, length: Int, slot: UInt8,
        _ customRows: UnsafeMutablePointer<CustomValueStore.Row>, _ record: inout FlowRecord, _ scratch: inout RecordScratch
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
            assign(value, to: target, &record, &scratch)
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
    private static func assign(
        _ value: UInt64, to target: FieldTarget, _ record: inout FlowRecord, _ scratch: inout RecordScratch
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
        case .skip, .srcV4, .dstV4, .srcV6, .dstV6, .nextHopV4, .nextHopV6, .custom:
            return
        }
    }
}
