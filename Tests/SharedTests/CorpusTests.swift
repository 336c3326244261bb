import Foundation
import Testing
@testable import FlowModel
@testable import WireFormat
@testable import Decoders

#if canImport(Glibc)
import Glibc
#endif

/// Replays the real-exporter corpus (/work/shared/corpus, see its README and CATALOG) through the
/// decoder and compares every flow record with tshark's decoding, field by field.
@Suite struct CorpusTests {
    /// Where tshark's truth is known to be wrong or incomplete (CATALOG.md "Caveats"), the RFC decides.
    /// For these sequences each packet must give the independent lenient decoder's flow-record count
    /// (`minidecoder.data_records`) and contain every record tshark decoded, with the same values.
    static let tsharkExceptions: [String: String] = [
        "gl_nf9_softflowd_dat":
            "v9 header Count: softflowd counts data records only; tshark stops there and misses later FlowSets (RFC 3954 walks FlowSets by length)",
        "gl_nf9_softflowd":
            "v9 header Count: tshark stops at Count in packet 0 and so never learns template 2048, whose data it then misses in packets 6 and 8",
        "ls_nf9_h3c":
            "H3C: a field of type 0 with length 2 makes tshark throw after the first record; the template is valid, all 16 records decode",
    ]
    /// Negative sequences whose only fault is one kflow tolerates by design, so nothing is counted:
    /// they must decode to the lenient decoder's record count without errors instead.
    static let negativeButRFCValid: [String: String] = [
        "ls_nf9_softflowd_openwrt_invalid":
            "labelled malformed for its header Count (2 while 6 records are present); kflow ignores Count, and every FlowSet is well-formed",
    ]
    // Not an exception: pm_112_ipfix_cisco_options_reassign changes its UDP source port mid-capture.
    // RFC 7011 §10.3.1 scopes templates to the transport session (address and port), as tshark does,
    // and so does kflow: the catalog's extra records there are options records, never emitted.

    struct Mismatch: CustomStringConvertible {
        var sequence: String
        var packet: Int
        var detail: String
        var description: String { "\(sequence) packet \(packet): \(detail)" }
    }

    @Test func everyValidSequenceMatchesTheReferenceRecordForRecord() throws {
        let corpus = try #require(Self.corpusDirectory(), "corpus not found at ../shared/corpus from the package root nor at /work/shared/corpus")
        let sequences = try Self.loadJSON(corpus.appendingPathComponent("sequences.json")) as? [[String: Any]] ?? []
        #expect(sequences.count > 100, "sequences.json lists \(sequences.count) sequences")

        var mismatches: [Mismatch] = []
        var matchedSequences = 0, matchedRecords = 0, validSequences = 0, negativeSequences = 0
        for sequence in sequences {
            let name = sequence["name"] as? String ?? "?"
            let expect = sequence["expect"] as? String ?? "?"
            let packets = sequence["packets"] as? [String] ?? []
            let exporters = sequence["exporters"] as? [String] ?? []
            let truth = try Self.loadJSON(corpus.appendingPathComponent("truth/\(name).json")) as? [String: Any] ?? [:]
            let truthPackets = truth["packets"] as? [[String: Any]] ?? []
            try #require(truthPackets.count == packets.count, "\(name): truth has \(truthPackets.count) packets, sequence \(packets.count)")

            let decoder = FlowDecoder()
            var emitted: [[FlowRecord]] = []
            for (index, file) in packets.enumerated() {
                let payload = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(file)))
                let exporter = try #require(Self.parseExporter(exporters[index]), "\(name): bad exporter \(exporters[index])")
                var sink = CollectingSink()
                payload.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: 1_700_000_000, into: &sink) }
                emitted.append(sink.records)
            }

            if Self.negativeButRFCValid[name] != nil {
                let lenient = truthPackets.reduce(0) { $0 + (($1["minidecoder"] as? [String: Any])?["data_records"] as? Int ?? 0) }
                let stats = decoder.statistics
                if stats.flowRecords != UInt64(lenient) || stats.totalErrors != 0 {
                    mismatches.append(Mismatch(sequence: name, packet: -1, detail: "\(stats.flowRecords) records and \(stats.totalErrors) errors, expected \(lenient) records and none"))
                }
                negativeSequences += 1
                continue
            }
            guard expect == "valid" else {
                negativeSequences += 1
                let stats = decoder.statistics
                let counted = stats.totalErrors + stats.setsWithUnknownTemplate
                if counted == 0 {
                    mismatches.append(Mismatch(sequence: name, packet: -1, detail: "\(expect) sequence decoded without any counted error"))
                }
                continue
            }
            validSequences += 1
            let flowRecords = Self.flowRecordsByPacket(truthPackets, exporters: exporters)
            let before = mismatches.count
            var records = 0
            for index in packets.indices {
                let ours = emitted[index]
                let theirs = flowRecords[index]
                records += ours.count
                if Self.tsharkExceptions[name] != nil {
                    let lenient = (truthPackets[index]["minidecoder"] as? [String: Any])?["data_records"] as? Int ?? -1
                    if ours.count != lenient {
                        mismatches.append(Mismatch(sequence: name, packet: index, detail: "\(ours.count) records, the lenient decoder finds \(lenient)"))
                    }
                    var remaining = ours
                    for expected in theirs {
                        if let found = remaining.firstIndex(where: { Self.differences(expected, $0).isEmpty }) {
                            remaining.remove(at: found)
                        } else {
                            mismatches.append(Mismatch(sequence: name, packet: index, detail: "tshark's record \(expected) not decoded"))
                        }
                    }
                    continue
                }
                if ours.count != theirs.count {
                    mismatches.append(Mismatch(sequence: name, packet: index, detail: "\(ours.count) flow records, tshark \(theirs.count)"))
                    continue
                }
                for (position, (expected, got)) in zip(theirs, ours).enumerated() {
                    let differences = Self.differences(expected, got)
                    if !differences.isEmpty {
                        mismatches.append(Mismatch(sequence: name, packet: index, detail: "record \(position): \(differences.joined(separator: ", "))"))
                    }
                }
            }
            if mismatches.count == before {
                matchedSequences += 1
                matchedRecords += records
            }
        }
        print("corpus: \(matchedSequences)/\(validSequences) valid sequences matched record for record (\(matchedRecords) flow records); \(negativeSequences) malformed/missing-template sequences survived")
        for mismatch in mismatches.prefix(40) { Issue.record("\(mismatch)") }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches")
    }

    // MARK: - Reference records

    /// The fields kflow emits, as tshark decoded them.
    struct Expected: CustomStringConvertible {
        var src: IPAddress?
        var dst: IPAddress?
        var srcPort: UInt16
        var dstPort: UInt16
        var proto: UInt8
        var flags: UInt16
        var bytes: UInt64
        var packets: UInt64
        var description: String {
            "src=\(src.map { "\($0)" } ?? "-") dst=\(dst.map { "\($0)" } ?? "-") sp=\(srcPort) dp=\(dstPort) proto=\(proto) flags=\(flags) bytes=\(bytes) pkts=\(packets)"
        }
    }

    static func differences(_ expected: Expected, _ got: FlowRecord) -> [String] {
        var out: [String] = []
        func address(_ name: String, _ want: IPAddress?, _ have: IPAddress) {
            if let want {
                if want != have { out.append("\(name) \(have) != \(want)") }
            } else if have.family != .none {
                out.append("\(name) \(have) where tshark has none")
            }
        }
        address("src", expected.src, got.src)
        address("dst", expected.dst, got.dst)
        if got.srcPort != expected.srcPort { out.append("srcPort \(got.srcPort) != \(expected.srcPort)") }
        if got.dstPort != expected.dstPort { out.append("dstPort \(got.dstPort) != \(expected.dstPort)") }
        if got.proto != expected.proto { out.append("proto \(got.proto) != \(expected.proto)") }
        if got.tcpFlags != expected.flags { out.append("flags \(got.tcpFlags) != \(expected.flags)") }
        if got.bytes != expected.bytes { out.append("bytes \(got.bytes) != \(expected.bytes)") }
        if got.packets != expected.packets { out.append("packets \(got.packets) != \(expected.packets)") }
        return out
    }

    /// tshark's records per packet, without options-data records: a record is an options record when
    /// its set's template was last defined by an Options Template in the same session and domain.
    static func flowRecordsByPacket(_ packets: [[String: Any]], exporters: [String]) -> [[Expected]] {
        var optionsTemplates = Set<String>()
        var result: [[Expected]] = []
        for (index, packet) in packets.enumerated() {
            let header = packet["header"] as? [String: Any] ?? [:]
            let domain = header["od_id"] as? String ?? header["source_id"] as? String ?? "-"
            let scope = "\(exporters[index])/\(domain)/"
            for set in packet["sets"] as? [[String: Any]] ?? [] {
                for template in set["templates"] as? [String] ?? [] {
                    guard let id = template.split(separator: "=").dropFirst().first?.prefix(while: { $0.isNumber || $0 == " " })
                        .trimmingCharacters(in: .whitespaces)
                    else { continue }
                    if template.hasPrefix("Options Template") {
                        optionsTemplates.insert(scope + id)
                    } else {
                        optionsTemplates.remove(scope + id)
                    }
                }
            }
            var flows: [Expected] = []
            for record in packet["records"] as? [[String: Any]] ?? [] {
                let setID = record["set_id"].map { "\($0)" } ?? "None"
                if optionsTemplates.contains(scope + setID) { continue }
                let key = record["key"] as? [String: Any] ?? [:]
                flows.append(expected(from: key))
                // A biflow record's reverse direction follows it as a flow of its own (output.biflow=split).
                if let reverse = reverseExpected(from: key) { flows.append(reverse) }
            }
            result.append(flows)
        }
        return result
    }

    static func expected(from key: [String: Any]) -> Expected {
        func string(_ name: String) -> String? { (key[name] as? String).flatMap { $0.isEmpty ? nil : $0 } }
        func number(_ names: String...) -> UInt64 {
            for name in names {
                if let text = string(name) {
                    return text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) ?? 0 : UInt64(text) ?? 0
                }
            }
            return 0
        }
        // A template with both families carries the unused one as zeros: the non-zero one is the flow's.
        func address(_ v4: String, _ v6: String) -> IPAddress? {
            let candidates = [string(v4), string(v6)].compactMap { $0.flatMap(parseAddress) }
            return candidates.first { $0.high != 0 || $0.low != 0 } ?? candidates.first
        }
        return Expected(
            src: address("srcaddr", "srcaddrv6"), dst: address("dstaddr", "dstaddrv6"),
            srcPort: UInt16(truncatingIfNeeded: number("srcport")), dstPort: UInt16(truncatingIfNeeded: number("dstport")),
            proto: UInt8(truncatingIfNeeded: number("protocol")), flags: UInt16(truncatingIfNeeded: number("tcpflags")),
            // kflow's precedence (docs/DECODING.md): delta, total, post, then NSEL initiator counters.
            bytes: number("octets", "permanent_octets", "post_octets", "initiator_octets"),
            packets: number("packets", "permanent_packets", "post_packets"))
    }

    /// The reverse direction of a biflow record as tshark decoded it: RFC 5103 reverse counters (tshark's
    /// `rev_*`), or NSEL responder octets beside initiator octets with no other forward byte counter;
    /// addresses and ports swapped. Nil when its counters are zero (no reverse flow is emitted).
    static func reverseExpected(from key: [String: Any]) -> Expected? {
        func number(_ names: String...) -> UInt64 {
            for name in names {
                if let text = key[name] as? String, !text.isEmpty {
                    return text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) ?? 0 : UInt64(text) ?? 0
                }
            }
            return 0
        }
        let forward = expected(from: key)
        let nselPaired = key["initiator_octets"] != nil && key["octets"] == nil && key["permanent_octets"] == nil
            && key["post_octets"] == nil
        let bytes = number("rev_octets", "rev_permanent_octets") + (nselPaired ? number("responder_octets") : 0)
        let packets = number("rev_packets", "rev_permanent_packets")
        guard bytes != 0 || packets != 0 else { return nil }
        return Expected(
            src: forward.dst, dst: forward.src, srcPort: forward.dstPort, dstPort: forward.srcPort, proto: forward.proto,
            flags: UInt16(truncatingIfNeeded: number("rev_tcpflags")), bytes: bytes, packets: packets)
    }

    // MARK: - Files

    static func corpusDirectory() -> URL? {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [packageRoot.appendingPathComponent("../shared/corpus").standardized, URL(fileURLWithPath: "/work/shared/corpus")]
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("sequences.json").path) }
    }

    static func loadJSON(_ url: URL) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }

    static func parseAddress(_ text: String) -> IPAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return IPAddress(v4: UInt32(bigEndian: v4.s_addr)) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        return withUnsafeBytes(of: &v6) { raw in
            IPAddress(high: raw.readBE64(at: 0), low: raw.readBE64(at: 8), family: .v6)
        }
    }

    /// "a.b.c.d:port" or "[v6]:port".
    static func parseExporter(_ text: String) -> ExporterAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        let host = text[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return parseAddress(host).map { ExporterAddress(address: $0, port: port) }
    }
}
