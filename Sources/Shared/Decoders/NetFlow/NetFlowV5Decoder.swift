import FlowModel
import WireFormat
import Templates

/// NetFlow v5: a 24-octet header and fixed 48-octet records; no templates.
enum NetFlowV5Decoder {
    static let headerLength = 24
    static let recordLength = 48

    static func decode(
        _ bytes: UnsafeRawBufferPointer, from exporter: ExporterAddress, nowSeconds: UInt32,
        cache: TemplateCache, statistics: inout DecodeStatistics, batch: inout RecordBatch
    ) {
        guard bytes.count >= headerLength else {
            statistics.count(.truncatedHeader)
            return
        }
        let count = Int(bytes.readBE16(at: 2))
        let sysUptime = bytes.readBE32(at: 4)
        let unixSeconds = bytes.readBE32(at: 8)
        // engine_type and engine_id identify the flow cache; together they play the observation domain.
        let engine = UInt32(bytes.readBE16(at: 20))
        // Top 2 bits: sampling mode; low 14 bits: the interval.
        let samplingInterval = UInt32(bytes.readBE16(at: 22) & 0x3FFF)
        statistics.netflowV5Messages &+= 1

        let available = (bytes.count - headerLength) / recordLength
        if count > available { statistics.count(.v5CountMismatch) }
        let records = min(count, available)

        // v5 needs no session state: decoded even when no session can be had (the table is full of
        // sessions holding templates); only its per-exporter counts are missing then.
        let session = cache.beginMessage(from: exporter, domain: engine, nowSeconds: nowSeconds, statistics: &statistics)
        let messageRecord = FlowRecord(messageFrom: exporter, domain: engine, exportSeconds: unixSeconds)
        let exportMs = messageRecord.exportTimeMs
        let policy = cache.configuration.sampling
        let override = session?.samplingOverride ?? policy.overrideRate(for: exporter.address.unmapped)
        let rate = override != 0 ? override : samplingInterval

        /// Switched times are sysUptime values: that many ms before unix_secs (uptime wraps).
        @inline(__always) func epochMs(_ switched: UInt32) -> UInt64 {
            let age = UInt64(sysUptime &- switched)
            return age <= exportMs ? exportMs - age : 0
        }

        for index in 0..<records {
            let base = headerLength + index * recordLength
            batch.add(sameMessageAs: messageRecord) { record in
                record.src = IPAddress(v4: bytes.readBE32(at: base))
                record.dst = IPAddress(v4: bytes.readBE32(at: base + 4))
                record.nextHop = IPAddress(v4: bytes.readBE32(at: base + 8))
                record.inputInterface = UInt32(bytes.readBE16(at: base + 12))
                record.outputInterface = UInt32(bytes.readBE16(at: base + 14))
                record.packets = UInt64(bytes.readBE32(at: base + 16))
                record.bytes = UInt64(bytes.readBE32(at: base + 20))
                record.flowStartMs = epochMs(bytes.readBE32(at: base + 24))
                record.flowEndMs = epochMs(bytes.readBE32(at: base + 28))
                record.srcPort = bytes.readBE16(at: base + 32)
                record.dstPort = bytes.readBE16(at: base + 34)
                record.tcpFlags = UInt16(bytes[base + 37])
                record.proto = bytes[base + 38]
                record.tos = bytes[base + 39]
                record.srcAS = UInt32(bytes.readBE16(at: base + 40))
                record.dstAS = UInt32(bytes.readBE16(at: base + 42))
                record.srcMask = bytes[base + 44]
                record.dstMask = bytes[base + 45]
                record.present = [
                    .flowStart, .flowEnd, .inputInterface, .outputInterface, .srcAS, .dstAS, .nextHop, .tos,
                    .bytes, .packets, .srcPort, .dstPort, .proto, .tcpFlags, .srcMask, .dstMask,
                ]
                RecordDecoding.applySampling(rate, defaultRate: policy.defaultRate, renormalize: policy.renormalize, to: &record)
                return true
            }
        }
        statistics.flowRecords &+= UInt64(records)
        if rate == 0 { statistics.flowsWithUnknownSampling &+= UInt64(records) }
        session?.statistics.flowRecords &+= UInt64(records)
        if let session { observeSequence(bytes.readBE32(at: 16), count: count, uptimeMs: sysUptime, engine: engine, session, &statistics) }
    }

    /// flow_sequence is the number of the message's first flow (the flows the exporter had seen before
    /// it): the message covers its `count` flows. Per engine, a few per session at most.
    private static func observeSequence(
        _ sequence: UInt32, count: Int, uptimeMs: UInt32, engine: UInt32, _ session: TransportSession,
        _ statistics: inout DecodeStatistics
    ) {
        guard let counts = session.observeSequence(
            of: SequenceStream(id: engine), sequence, count: UInt32(count), uptimeMs: uptimeMs)
        else { return }
        DecodeMessage.account(counts, session: session, statistics: &statistics)
    }
}
