import FlowModel
import WireFormat
import Templates

/// RFC 7011 message and set decoding. Data records go through `RecordDecoding` with plans from the
/// `TemplateCache`; everything wrong is counted in `DecodeStatistics` and skipped.
enum IPFIXDecoder {
    static let headerLength = 16
    static let setHeaderLength = 4
    static let templateSetID: UInt16 = 2
    static let optionsTemplateSetID: UInt16 = 3
    /// Set IDs from 256 up are data sets (RFC 7011 §3.3.2).
    static let firstDataSetID: UInt16 = 256

    static func decode(
        _ bytes: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
        cache: TemplateCache, statistics: inout DecodeStatistics, batch: inout RecordBatch
    ) {
        guard bytes.count >= headerLength else {
            statistics.count(.truncatedHeader)
            return
        }
        // The header length bounds the message; a datagram shorter than it was cut in transit.
        let messageLength = Int(bytes.readBE16(at: 2))
        guard messageLength >= headerLength, messageLength <= bytes.count else {
            statistics.count(.badMessageLength)
            return
        }
        let exportTime = bytes.readBE32(at: 4)
        let domain = bytes.readBE32(at: 12)
        statistics.ipfixMessages &+= 1

        guard case (let message, let record)? = DecodeMessage.begin(
            .ipfix, from: exporter, domain: domain, exportSeconds: exportTime, nowSeconds: nowSeconds, cache: cache,
            statistics: &statistics)
        else { return }

        // The header's sequence number counts data records (RFC 7011 §3.1): those of this message are
        // known unless a set was unreadable or its template unknown.
        var dataRecords: Int? = 0
        defer {
            message.observeSequence(
                bytes.readBE32(at: 8), count: dataRecords.map { UInt32(truncatingIfNeeded: $0) }, uptimeMs: nil,
                statistics: &statistics)
        }
        var offset = headerLength
        while offset < messageLength {
            guard messageLength - offset >= setHeaderLength else {
                statistics.count(.badSetLength)
                dataRecords = nil
                return
            }
            let setID = bytes.readBE16(at: offset)
            let setLength = Int(bytes.readBE16(at: offset + 2))
            guard setLength >= setHeaderLength, setLength <= messageLength - offset else {
                statistics.count(.badSetLength)
                dataRecords = nil
                return
            }
            let body = (offset + setHeaderLength)..<(offset + setLength)
            switch setID {
            case templateSetID, optionsTemplateSetID:
                decodeTemplateSet(
                    bytes, body: body, isOptions: setID == optionsTemplateSetID, message: message, statistics: &statistics)
            case ..<firstDataSetID:
                statistics.count(.reservedSetID)
            default:
                let records = message.decodeDataSet(
                    bytes, body: body, templateID: setID, record: record, statistics: &statistics, batch: &batch)
                if let counted = dataRecords, let records { dataRecords = counted + records } else { dataRecords = nil }
            }
            offset += setLength
        }
    }

    /// Template and Options Template records (RFC 7011 §3.4.1–2) until the end of the set or padding.
    static func decodeTemplateSet(
        _ bytes: UnsafeRawBufferPointer, body: Range<Int>, isOptions: Bool, message: DecodeMessage,
        statistics: inout DecodeStatistics
    ) {
        let end = body.upperBound
        var position = body.lowerBound
        // Fewer than 4 octets left cannot be a template record: padding (RFC 7011 §3.3.1).
        while end - position >= 4 {
            let templateID = bytes.readBE16(at: position)
            let fieldCount = Int(bytes.readBE16(at: position + 2))
            if fieldCount == 0, templateID == templateSetID || templateID == optionsTemplateSetID
                || templateID >= firstDataSetID
            {
                // A withdrawal (or "withdraw all", ID 2/3): meaningless over UDP, ignored (RFC 7011 §8.4).
                statistics.withdrawalsIgnored &+= 1
                position += 4
                continue
            }
            guard templateID >= firstDataSetID else {
                if bytes.isAllZero(position..<end) { return }  // zero padding
                statistics.count(.malformedTemplate)
                return
            }
            var cursor = position + 4
            var scopeCount = 0
            if isOptions {
                guard end - cursor >= 2 else {
                    statistics.count(.truncatedTemplate)
                    return
                }
                scopeCount = Int(bytes.readBE16(at: cursor))
                cursor += 2
                guard scopeCount >= 1, scopeCount <= fieldCount else {
                    statistics.count(.malformedTemplate)
                    return
                }
            }
            // First pass: find the record's end without allocating (most templates are refreshes).
            for _ in 0..<fieldCount {
                guard end - cursor >= 4 else {
                    statistics.count(.truncatedTemplate)
                    return
                }
                let isEnterprise = bytes.readBE16(at: cursor) & InformationElement.enterpriseBit != 0
                cursor += 4
                if isEnterprise {
                    guard end - cursor >= 4 else {
                        statistics.count(.truncatedTemplate)
                        return
                    }
                    cursor += 4
                }
            }
            guard fieldCount <= message.cache.configuration.maxFieldsPerTemplate else {
                statistics.count(.tooManyTemplateFields)
                position = cursor
                continue
            }
            let fieldsStart = position + (isOptions ? 6 : 4)
            message.learn(
                templateID, isOptions: isOptions, definition: UnsafeRawBufferPointer(rebasing: bytes[(position + 2)..<cursor]),
                statistics: &statistics
            ) { parseFields(bytes, from: fieldsStart, count: fieldCount, scopeCount: scopeCount) }
            position = cursor
        }
    }

    /// Field specifiers of a template whose extent was already checked.
    private static func parseFields(
        _ bytes: UnsafeRawBufferPointer, from start: Int, count: Int, scopeCount: Int
    ) -> [TemplateField] {
        var fields: [TemplateField] = []
        fields.reserveCapacity(count)
        var cursor = start
        for index in 0..<count {
            let rawID = bytes.readBE16(at: cursor)
            let length = bytes.readBE16(at: cursor + 2)
            cursor += 4
            var enterprise: UInt32 = 0
            if rawID & InformationElement.enterpriseBit != 0 {
                enterprise = bytes.readBE32(at: cursor)
                cursor += 4
            }
            fields.append(
                TemplateField(
                    id: rawID & ~InformationElement.enterpriseBit, enterpriseNumber: enterprise,
                    length: length, isScope: index < scopeCount))
        }
        return fields
    }
}
