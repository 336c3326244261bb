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

    static func decode(
        _ bytes: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
        cache: TemplateCache, statistics: inout DecodeStatistics, batch: inout RecordBatch
    ) {
        guard bytes.count >= headerLength else {
            statistics.count(.truncatedHeader)
            return
        }
        let sysUptime = bytes.readBE32(at: 4)
        let unixSeconds = bytes.readBE32(at: 8)
        let sourceID = bytes.readBE32(at: 16)
        statistics.netflowV9Messages &+= 1

        guard case (let message, let record)? = DecodeMessage.begin(
            .netFlowV9, from: exporter, domain: sourceID, exportSeconds: unixSeconds, nowSeconds: nowSeconds,
            v9SysUptimeMs: sysUptime, cache: cache, statistics: &statistics)
        else { return }

        // The header's sequence number counts export packets (RFC 3954 §5.1): this one is 1.
        defer {
            message.observeSequence(bytes.readBE32(at: 12), count: 1, uptimeMs: sysUptime, statistics: &statistics)
        }
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
                decodeTemplateFlowSet(bytes, body: body, message: message, statistics: &statistics)
            case optionsTemplateFlowSetID:
                decodeOptionsTemplateFlowSet(bytes, body: body, message: message, statistics: &statistics)
            case ..<firstDataFlowSetID:
                statistics.count(.reservedSetID)
            default:
                message.decodeDataSet(
                    bytes, body: body, templateID: flowSetID, record: record, statistics: &statistics, batch: &batch)
            }
            offset += flowSetLength
        }
    }

    /// Template FlowSet (RFC 3954 §5.2): template ID, field count, (type, length) pairs; padding after.
    static func decodeTemplateFlowSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, message: DecodeMessage, statistics: inout DecodeStatistics
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
            guard fieldCount <= message.cache.configuration.maxFieldsPerTemplate else {
                statistics.count(.tooManyTemplateFields)
                position = fieldsEnd
                continue
            }
            storeTemplate(
                bytes, templateID: templateID, isOptions: false, definition: (position + 2)..<fieldsEnd,
                fields: fieldsStart..<fieldsEnd, scopeFieldCount: 0, message: message, statistics: &statistics)
            position = fieldsEnd
        }
    }

    /// Options Template FlowSet (RFC 3954 §6.1): template ID, scope length and option length in
    /// octets, then scope and option (type, length) pairs; padding after.
    static func decodeOptionsTemplateFlowSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, message: DecodeMessage, statistics: inout DecodeStatistics
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
            guard (scopeLength + optionLength) / 4 <= message.cache.configuration.maxFieldsPerTemplate else {
                statistics.count(.tooManyTemplateFields)
                position = fieldsEnd
                continue
            }
            storeTemplate(
                bytes, templateID: templateID, isOptions: true, definition: (position + 2)..<fieldsEnd,
                fields: fieldsStart..<fieldsEnd, scopeFieldCount: scopeLength / 4, message: message,
                statistics: &statistics)
            position = fieldsEnd
        }
    }

    /// v9's field specifiers: no enterprise numbers; types ≥ 32768 are vendor-specific and simply
    /// unknown here, marked as enterprise fields so they never alias IANA numbers when compiled.
    private static func storeTemplate(
        _ bytes: UnsafeRawBufferPointer, templateID: UInt16, isOptions: Bool, definition: Range<Int>,
        fields: Range<Int>, scopeFieldCount: Int, message: DecodeMessage, statistics: inout DecodeStatistics
    ) {
        message.learn(
            templateID, isOptions: isOptions, definition: UnsafeRawBufferPointer(rebasing: bytes[definition]),
            statistics: &statistics
        ) {
            stride(from: fields.lowerBound, to: fields.upperBound, by: 4).enumerated().map { index, cursor in
                let id = bytes.readBE16(at: cursor)
                return TemplateField(
                    id: id, enterpriseNumber: id & 0x8000 != 0 ? 1 : 0, length: bytes.readBE16(at: cursor + 2),
                    isScope: index < scopeFieldCount)
            }
        }
    }
}
