import FlowModel
import WireFormat
import Templates

/// RFC 3954 packet and FlowSet decoding. Templates are scoped to (exporter address, port, source ID).
/// The header Count is not trusted (softflowd counts data records only, FortiGate counts FlowSets):
/// FlowSets are walked by their lengths up to the end of the datagram.
enum NetFlowV9Decoder {
    static let headerLength = 20
    static let templateFlowSetID: UInt16 = 0
    static let optionsTemplateFlowSetID: UInt16 = 1
    static let firstDataFlowSetID: UInt16 = 256

    static func decode<S: FlowSink>(
        _ bytes: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
        cache: TemplateCache, statistics: inout DecodeStatistics, sink: inout S
    ) {
        guard bytes.count >= headerLength else {
            statistics.count(.truncatedHeader)
            return
        }
        let sysUptime = bytes.readBE32(at: 4)
        let unixSeconds = bytes.readBE32(at: 8)
        let sourceID = bytes.readBE32(at: 16)
        statistics.netflowV9Messages &+= 1

        guard let (session, firstRecord) = cache.beginMessage(
            from: exporter, domain: sourceID, exportSeconds: unixSeconds, nowSeconds: nowSeconds, statistics: &statistics)
        else {
            // A new session while every session slot holds templates: without one, nothing learned or
            // referenced here could be kept or found.
            statistics.datagramsWithoutSession &+= 1
            return
        }
        var record = firstRecord

        let end = bytes.count
        var offset = headerLength
        while offset < end {
            // Some exporters (Palo Alto, Cisco ACI) fill the datagram's tail with zeros: not a FlowSet.
            guard end - offset >= 4 else { return }
            let flowSetID = bytes.readBE16(at: offset)
            let flowSetLength = Int(bytes.readBE16(at: offset + 2))
            guard flowSetLength >= 4, flowSetLength <= end - offset else {
                if !bytes.isAllZero(offset..<end) { statistics.count(.badSetLength) }
                return
            }
            let body = (offset + 4)..<(offset + flowSetLength)
            switch flowSetID {
            case templateFlowSetID:
                decodeTemplateFlowSet(
                    bytes, body: body, domain: sourceID, session: session, cache: cache,
                    nowSeconds: nowSeconds, statistics: &statistics)
            case optionsTemplateFlowSetID:
                decodeOptionsTemplateFlowSet(
                    bytes, body: body, domain: sourceID, session: session, cache: cache,
                    nowSeconds: nowSeconds, statistics: &statistics)
            case ..<firstDataFlowSetID:
                statistics.count(.reservedSetID)
            default:
                decodeDataFlowSet(
                    bytes, body: body, templateID: flowSetID, sourceID: sourceID, sysUptime: sysUptime,
                    unixSeconds: unixSeconds, session: session, cache: cache, nowSeconds: nowSeconds,
                    record: &record, statistics: &statistics, sink: &sink)
            }
            offset += flowSetLength
        }
    }

    /// Template FlowSet (RFC 3954 §5.2): template ID, field count, (type, length) pairs; padding after.
    static func decodeTemplateFlowSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, domain: UInt32, session: TransportSession,
        cache: TemplateCache, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) {
        let end = body.upperBound
        var position = body.lowerBound
        while end - position >= 4 {
            let templateID = bytes.readBE16(at: position)
            let fieldCount = Int(bytes.readBE16(at: position + 2))
            guard templateID >= firstDataFlowSetID, fieldCount > 0 else {
                if bytes.isAllZero(position..<end) { return }  // padding
                statistics.count(.malformedTemplate)
                return
            }
            let fieldsStart = position + 4
            guard (end - fieldsStart) / 4 >= fieldCount else {
                statistics.count(.truncatedTemplate)
                return
            }
            let fieldsEnd = fieldsStart + fieldCount * 4
            guard fieldCount <= cache.configuration.maxFieldsPerTemplate else {
                statistics.count(.tooManyTemplateFields)
                position = fieldsEnd
                continue
            }
            storeTemplate(
                bytes, templateID: templateID, isOptions: false, definition: (position + 2)..<fieldsEnd,
                fields: fieldsStart..<fieldsEnd, scopeFieldCount: 0, domain: domain, session: session,
                cache: cache, nowSeconds: nowSeconds, statistics: &statistics)
            position = fieldsEnd
        }
    }

    /// Options Template FlowSet (RFC 3954 §6.1): template ID, scope length and option length in
    /// octets, then scope and option (type, length) pairs; padding after.
    static func decodeOptionsTemplateFlowSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, domain: UInt32, session: TransportSession,
        cache: TemplateCache, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) {
        let end = body.upperBound
        var position = body.lowerBound
        while end - position >= 6 {
            let templateID = bytes.readBE16(at: position)
            let scopeLength = Int(bytes.readBE16(at: position + 2))
            let optionLength = Int(bytes.readBE16(at: position + 4))
            guard templateID >= firstDataFlowSetID else {
                if bytes.isAllZero(position..<end) { return }
                statistics.count(.malformedTemplate)
                return
            }
            guard scopeLength % 4 == 0, optionLength % 4 == 0, scopeLength + optionLength > 0 else {
                statistics.count(.malformedTemplate)
                return
            }
            let fieldsStart = position + 6
            guard end - fieldsStart >= scopeLength + optionLength else {
                statistics.count(.truncatedTemplate)
                return
            }
            let fieldsEnd = fieldsStart + scopeLength + optionLength
            guard (scopeLength + optionLength) / 4 <= cache.configuration.maxFieldsPerTemplate else {
                statistics.count(.tooManyTemplateFields)
                position = fieldsEnd
                continue
            }
            storeTemplate(
                bytes, templateID: templateID, isOptions: true, definition: (position + 2)..<fieldsEnd,
                fields: fieldsStart..<fieldsEnd, scopeFieldCount: scopeLength / 4, domain: domain,
                session: session, cache: cache, nowSeconds: nowSeconds, statistics: &statistics)
            position = fieldsEnd
        }
    }

    private static func storeTemplate(
        _ bytes: UnsafeRawBufferPointer, templateID: UInt16, isOptions: Bool, definition: Range<Int>,
        fields: Range<Int>, scopeFieldCount: Int, domain: UInt32, session: TransportSession,
        cache: TemplateCache, nowSeconds: UInt32, statistics: inout DecodeStatistics
    ) {
        let definitionBytes = UnsafeRawBufferPointer(rebasing: bytes[definition])
        if cache.refreshIfUnchanged(
            templateID, isOptions: isOptions, definition: definitionBytes, domain: domain, in: session,
            nowSeconds: nowSeconds)
        {
            return
        }
        var parsed: [TemplateField] = []
        parsed.reserveCapacity(fields.count / 4)
        // v9 has no enterprise numbers: types ≥ 32768 are vendor-specific and simply unknown here.
        for (index, cursor) in stride(from: fields.lowerBound, to: fields.upperBound, by: 4).enumerated() {
            parsed.append(
                TemplateField(
                    id: bytes.readBE16(at: cursor), enterpriseNumber: 0, length: bytes.readBE16(at: cursor + 2),
                    isScope: index < scopeFieldCount))
        }
        // Vendor types must not alias IANA numbers when compiled: mark them as enterprise fields.
        for index in parsed.indices where parsed[index].id & 0x8000 != 0 { parsed[index].enterpriseNumber = 1 }
        switch DecodePlan.compile(
            templateID: templateID, isOptions: isOptions, fields: parsed, definition: Array(definitionBytes))
        {
        case .success(let plan):
            cache.store(plan, domain: domain, in: session, nowSeconds: nowSeconds, statistics: &statistics)
        case .failure:
            statistics.count(.malformedTemplate)
        }
    }

    private static func decodeDataFlowSet<S: FlowSink>(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, templateID: UInt16, sourceID: UInt32,
        sysUptime: UInt32, unixSeconds: UInt32, session: TransportSession, cache: TemplateCache,
        nowSeconds: UInt32, record: inout FlowRecord, statistics: inout DecodeStatistics, sink: inout S
    ) {
        guard
            let plan = cache.template(
                templateID, domain: sourceID, in: session, nowSeconds: nowSeconds, statistics: &statistics),
            let state = cache.domainState(sourceID, in: session)
        else {
            statistics.setsWithUnknownTemplate &+= 1
            session.statistics.setsWithUnknownTemplate &+= 1
            return
        }
        let context = MessageContext(
            exportTimeSeconds: unixSeconds, isNetFlowV9: true, v9SysUptimeMs: sysUptime,
            domainSystemInitTimeMs: state.systemInitTimeMs, domainSamplingInterval: state.samplingInterval)
        var options = OptionsValues()
        let outcome = RecordDecoding.decodeDataSet(
            bytes, range: body, plan: plan, context: context, record: &record, options: &options, sink: &sink)
        if outcome.truncated { statistics.count(.truncatedRecord) }
        if plan.isOptions {
            statistics.optionsRecords &+= UInt64(outcome.records)
            if outcome.records > 0 { cache.applyOptions(options, to: state, nowSeconds: nowSeconds) }
        } else if !plan.hasFlowFields {
            statistics.recordsWithoutFlowFields &+= UInt64(outcome.records)
        } else {
            statistics.flowRecords &+= UInt64(outcome.records)
            session.statistics.flowRecords &+= UInt64(outcome.records)
        }
    }
}
