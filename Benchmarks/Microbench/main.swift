// kflow-microbench: decode + KFlow JSON encode on one core, without Kafka or sockets.
// Builds realistic IPFIX messages in memory (one template message, then data messages of ~1400 bytes:
// 29 IPv4 or 19 IPv6 records each) and times: encode alone, decode alone, decode + encode.
// Prints figures, not verdicts. Usage: kflow-microbench [--seconds S] [--fields LIST] [--batch N]
// (build with -c release; debug figures mean nothing).
// With --kafka HOST:PORT it measures instead what librdkafka alone costs per message with kflow's
// default producer settings: the same JSON records produced to a real broker, CPU of the whole process
// (all librdkafka threads) per million messages, delivery included.

import FlowModel
import Decoders
import Templates
import Output
import KafkaOutput
import Config

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Options

struct Options {
    var secondsPerRun = 0.5
    var runs = 5
    var fields: OutputFields = []
    /// `--custom name=SPEC,...`: fields chosen as by output.field.NAME=SPEC.
    var custom: [CustomField] = []
    var batchRecords = 1
    var kafkaBootstrap: String?
    var kafkaMessages = 2_000_000
    var kafkaSettings: [(name: String, value: String)] = []

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            let value = rest.popFirst() ?? ""
            switch flag {
            case "--seconds": secondsPerRun = Double(value) ?? secondsPerRun
            case "--runs": runs = max(Int(value) ?? runs, 1)
            case "--batch": batchRecords = max(Int(value) ?? 1, 1)
            case "--kafka": kafkaBootstrap = value
            case "--messages": kafkaMessages = max(Int(value) ?? kafkaMessages, 1)
            case "--set":
                let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { fail("kflow-microbench: --set needs KEY=VALUE") }
                kafkaSettings.append((name: parts[0], value: parts[1]))
            case "--custom":
                for item in value.split(separator: ",") {
                    let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { fail("kflow-microbench: --custom needs NAME=[PEN/]IE[:type],...") }
                    do { custom.append(try CustomField(name: parts[0], parsing: parts[1])) } catch { fail("kflow-microbench: \(parts[0]): \(error.problem)") }
                }
            case "--fields":
                do { fields = try OutputFields(parsing: value) } catch { fail("kflow-microbench: \(error)") }
            default: fail("usage: kflow-microbench [--seconds S] [--runs N] [--fields LIST] [--custom NAME=SPEC,...] [--batch N] [--kafka HOST:PORT [--messages N] [--set KEY=VALUE]...]")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(2)
}

// MARK: - IPFIX messages (RFC 7011)

/// SplitMix64, so every run measures the same records.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct MessageWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(truncatingIfNeeded: v)] }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
    mutating func patch16(at offset: Int, _ v: UInt16) {
        bytes[offset] = UInt8(v >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v)
    }
}

/// (information element, length) of the two templates: a typical router export.
let ipv4Template: [(UInt16, UInt16)] = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 2), (1, 8), (2, 8), (10, 4), (14, 4), (152, 8)]
let ipv6Template: [(UInt16, UInt16)] = [(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (6, 2), (1, 8), (2, 8), (10, 4), (14, 4), (152, 8)]
let ipv4TemplateID: UInt16 = 256, ipv6TemplateID: UInt16 = 257
let exportTime: UInt32 = 1_700_000_000
let observationDomain: UInt32 = 7

func messageHeader(_ writer: inout MessageWriter, sequence: UInt32) {
    writer.u16(10)
    writer.u16(0)  // length, patched
    writer.u32(exportTime)
    writer.u32(sequence)
    writer.u32(observationDomain)
}

func templateMessage() -> [UInt8] {
    var writer = MessageWriter()
    messageHeader(&writer, sequence: 0)
    let setStart = writer.bytes.count
    writer.u16(2)
    writer.u16(0)
    for (id, fields) in [(ipv4TemplateID, ipv4Template), (ipv6TemplateID, ipv6Template)] {
        writer.u16(id)
        writer.u16(UInt16(fields.count))
        for (element, length) in fields { writer.u16(element); writer.u16(length) }
    }
    writer.patch16(at: setStart + 2, UInt16(writer.bytes.count - setStart))
    writer.patch16(at: 2, UInt16(writer.bytes.count))
    return writer.bytes
}

/// Data message number `index`, its sequence number the data records before it (RFC 7011 §3.1), as an
/// exporter numbers them: the decoder's sequence accounting sees an unbroken stream (one restart per 64).
func dataMessage(ipv6: Bool, index: Int, random: inout SeededGenerator) -> (bytes: [UInt8], records: Int) {
    let recordLength = (ipv6 ? ipv6Template : ipv4Template).reduce(0) { $0 + Int($1.1) }
    let records = (1400 - 16 - 4) / recordLength
    var writer = MessageWriter()
    messageHeader(&writer, sequence: UInt32(index * records))
    let setStart = writer.bytes.count
    writer.u16(ipv6 ? ipv6TemplateID : ipv4TemplateID)
    writer.u16(0)
    for _ in 0..<records {
        if ipv6 {
            writer.u64(0x2001_0DB8_0000_0000 | random.next() & 0xFFFF_FFFF); writer.u64(random.next() & 0xFFFF)
            writer.u64(0x2A00_1450_4001_0800 | random.next() & 0xFF); writer.u64(random.next())
        } else {
            writer.u32(0x0A00_0000 | UInt32(truncatingIfNeeded: random.next()) & 0x00FF_FFFF)
            writer.u32(UInt32(truncatingIfNeeded: random.next()))
        }
        writer.u16(random.next() % 2 == 0 ? 443 : UInt16(truncatingIfNeeded: 1024 + random.next() % 64_000))
        writer.u16(UInt16(truncatingIfNeeded: 1024 + random.next() % 64_000))
        writer.u8(random.next() % 4 == 0 ? 17 : 6)
        writer.u16(UInt16(truncatingIfNeeded: random.next() & 0x3F))
        writer.u64(40 + random.next() % 1_500_000)
        writer.u64(1 + random.next() % 1000)
        writer.u32(UInt32(truncatingIfNeeded: random.next() % 64))
        writer.u32(UInt32(truncatingIfNeeded: random.next() % 64))
        writer.u64(UInt64(exportTime) * 1000 - random.next() % 60_000)
    }
    writer.patch16(at: setStart + 2, UInt16(writer.bytes.count - setStart))
    writer.patch16(at: 2, UInt16(writer.bytes.count))
    return (writer.bytes, records)
}

// MARK: - sFlow v5 datagrams (sflow_version_5.txt)

/// A switch's datagram: 6 compact flow samples (rate 1024), each an extended switch record and a 128-octet
/// sampled header (Ethernet, 802.1Q, IPv4, TCP or UDP, payload), ~1400 octets in all.
func sflowDatagram(sequence: UInt32, random: inout SeededGenerator) -> (bytes: [UInt8], records: Int) {
    let samples = 6
    var writer = MessageWriter()
    writer.u32(5); writer.u32(1); writer.u32(0xC000_0201)  // version, IPv4 agent
    writer.u32(0); writer.u32(sequence); writer.u32(3_600_000); writer.u32(UInt32(samples))
    for index in 0..<samples {
        let tcp = random.next() % 4 != 0
        writer.u32(1); writer.u32(32 + 24 + 24 + 128)  // flow sample, length
        writer.u32(sequence &* 6 &+ UInt32(index)); writer.u32(3)  // sample sequence, source ifIndex 3
        writer.u32(1024); writer.u32(sequence &* 6144); writer.u32(0)  // rate, pool, drops
        writer.u32(3); writer.u32(UInt32(truncatingIfNeeded: 1 + random.next() % 48)); writer.u32(2)  // in, out, 2 records
        writer.u32(1001); writer.u32(16); writer.u32(120); writer.u32(0); writer.u32(120); writer.u32(0)
        writer.u32(1); writer.u32(16 + 128)  // raw packet header
        writer.u32(1); writer.u32(UInt32(truncatingIfNeeded: 64 + random.next() % 1450)); writer.u32(4); writer.u32(128)
        let header = writer.bytes.count
        writer.u32(0x0200_0000); writer.u16(0x0002); writer.u32(0x0200_0000); writer.u16(0x0001)  // MACs
        writer.u16(0x8100); writer.u16(120); writer.u16(0x0800)
        writer.u16(0x4500); writer.u16(1400); writer.u32(0x0000_4000); writer.u8(64); writer.u8(tcp ? 6 : 17); writer.u16(0)
        writer.u32(0x0A00_0000 | UInt32(truncatingIfNeeded: random.next()) & 0x00FF_FFFF)
        writer.u32(UInt32(truncatingIfNeeded: random.next()))
        writer.u16(random.next() % 2 == 0 ? 443 : UInt16(truncatingIfNeeded: 1024 + random.next() % 64_000))
        writer.u16(UInt16(truncatingIfNeeded: 1024 + random.next() % 64_000))
        if tcp { writer.u32(1); writer.u32(0); writer.u8(0x50); writer.u8(0x18); writer.u16(65535); writer.u32(0) }
        while writer.bytes.count < header + 128 { writer.u8(0x61) }
    }
    return (writer.bytes, samples)
}

// MARK: - Sinks and transports that do nothing measurable

/// Counts messages and bytes, and reads one byte of each so the encoder's work cannot be elided.
struct CountingTransport: MessageTransport {
    var messages = 0
    var bytes = 0
    var checksum: UInt8 = 0
    mutating func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) {
        messages &+= 1
        bytes &+= message.count
        if !message.isEmpty { checksum &+= message[message.count / 2] }
    }
}

/// The decoder alone: touches each record once.
struct CountingSink: FlowSink {
    var records = 0
    var checksum: UInt64 = 0
    mutating func emit(_ record: borrowing FlowRecord) {
        records &+= 1
        checksum &+= record.bytes ^ UInt64(record.srcPort)
    }
}

/// Keeps copies of decoded records, to feed the encode-only case with exactly what the decoder produces.
struct CollectingSink: FlowSink {
    var records: [FlowRecord] = []
    mutating func emit(_ record: borrowing FlowRecord) { records.append(copy record) }
}

// MARK: - Timing

/// This thread's CPU time: on a machine shared with other work, wall time would measure the neighbours.
func nowSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Runs `round` (which handles `flowsPerRound` flows) repeatedly for about `seconds`; returns flows/s.
func measure(seconds: Double, flowsPerRound: Int, _ round: () -> Void) -> Double {
    var rounds = 0
    let start = nowSeconds()
    var elapsed = 0.0
    repeat {
        for _ in 0..<16 { round() }
        rounds += 16
        elapsed = nowSeconds() - start
    } while elapsed < seconds
    return Double(rounds * flowsPerRound) / elapsed
}

func report(_ name: String, options: Options, flowsPerRound: Int, _ round: () -> Void) {
    _ = measure(seconds: min(0.2, options.secondsPerRun), flowsPerRound: flowsPerRound, round)  // warm-up
    let rates = (0..<options.runs).map { _ in measure(seconds: options.secondsPerRun, flowsPerRound: flowsPerRound, round) }.sorted()
    let median = rates[rates.count / 2], best = rates[rates.count - 1]
    let label = name + String(repeating: " ", count: max(0, 34 - name.count))  // Foundation's padding(toLength:) without Foundation
    print("\(label) median \(format(median / 1e6)) M flows/s (\(format(1e9 / median)) ns/flow), best \(format(best / 1e6)) M flows/s")
}

func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

// MARK: - Cases

let options = Options(CommandLine.arguments)
var random = SeededGenerator(state: 2024)
let exporter = ExporterAddress(address: IPAddress(v4: 0xC000_0201), port: 4739)
let messageCount = 64
let workloads: [(name: String, messages: [[UInt8]], flows: Int)] = [false, true].map { ipv6 in
    let messages = (0..<messageCount).map { dataMessage(ipv6: ipv6, index: $0, random: &random) }
    return (ipv6 ? "IPv6" : "IPv4", messages.map(\.bytes), messages.reduce(0) { $0 + $1.records })
} + [{
    let datagrams = (0..<messageCount).map { sflowDatagram(sequence: UInt32($0), random: &random) }
    return ("sFlow", datagrams.map(\.bytes), datagrams.reduce(0) { $0 + $1.records })
}()]

let decoder = FlowDecoder(configuration: DecoderConfiguration(customFields: options.custom))
var ignoredSink = CountingSink()
templateMessage().withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: exportTime, into: &ignoredSink) }

if let bootstrap = options.kafkaBootstrap {
    measureKafka(bootstrap: bootstrap)
    exit(0)
}

print("kflow-microbench: librdkafka not involved; fields [\(options.fields.names.joined(separator: ","))], "
    + "custom [\(options.custom.map { "\($0.name)=\($0)" }.joined(separator: ","))], "
    + "\(options.batchRecords) record(s) per message, \(options.runs) runs of \(options.secondsPerRun) s of thread CPU time")
for workload in workloads {
    let sizes = workload.messages.map(\.count)
    print("\(workload.name): \(workload.messages.count) messages of \(sizes.min() ?? 0)-\(sizes.max() ?? 0) bytes, "
        + "\(workload.flows / workload.messages.count) flows each")

    // The records the decoder produces, checked against what the messages hold.
    var collected = CollectingSink()
    for message in workload.messages {
        message.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: exportTime, into: &collected) }
    }
    guard collected.records.count == workload.flows, decoder.statistics.totalErrors == 0 else {
        print("  decoder produced \(collected.records.count) of \(workload.flows) flows, "
            + "\(decoder.statistics.totalErrors) errors; skipping \(workload.name)")
        continue
    }
    let records = collected.records

    var encodeSink = JSONFlowSink(batch: JSONMessageBatch(encoder: KFlowJSONEncoder(fields: options.fields, custom: options.custom, values: decoder.customValues),
                                                          maxRecords: options.batchRecords),
                                  transport: CountingTransport())
    report("  encode only", options: options, flowsPerRound: records.count) {
        for record in records { encodeSink.emit(record) }
    }

    var decodeSink = CountingSink()
    report("  decode only", options: options, flowsPerRound: workload.flows) {
        for message in workload.messages {
            message.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: exportTime, into: &decodeSink) }
        }
    }

    var bothSink = JSONFlowSink(batch: JSONMessageBatch(encoder: KFlowJSONEncoder(fields: options.fields, custom: options.custom, values: decoder.customValues),
                                                        maxRecords: options.batchRecords),
                                transport: CountingTransport())
    report("  decode + encode", options: options, flowsPerRound: workload.flows) {
        for message in workload.messages {
            message.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: exportTime, into: &bothSink) }
        }
    }
    encodeSink.flush()
    bothSink.flush()
    let averageBytes = Double(bothSink.transport.bytes) / Double(max(bothSink.transport.messages, 1))
    // Printing the checksums keeps the measured work observable.
    print("  (JSON: \(format(averageBytes)) bytes per message; checksums \(encodeSink.transport.checksum) "
        + "\(bothSink.transport.checksum) \(decodeSink.checksum & 0xFF))")
}

// MARK: - librdkafka alone

/// CPU time of the whole process (every thread, librdkafka's included).
func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Collects each encoded message's bytes (encoding happens before the clock starts).
struct StoringTransport: MessageTransport {
    var messages: [[UInt8]] = []
    mutating func send(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, records: Int) { messages.append(Array(message)) }
}

@MainActor func measureKafka(bootstrap: String) {
    // Realistic, distinct payloads: the IPv4 workload's records (10 % IPv6, as ipfix-gen sends), encoded once.
    var store = JSONFlowSink(batch: JSONMessageBatch(encoder: KFlowJSONEncoder(fields: options.fields, custom: options.custom, values: decoder.customValues),
                                                     maxRecords: options.batchRecords),
                             transport: StoringTransport())
    for (index, workload) in workloads.prefix(2).enumerated() {  // IPv4 and IPv6, not sFlow
        let share = index == 0 ? 9 : 1
        for _ in 0..<share {
            for message in workload.messages {
                message.withUnsafeBytes { decoder.decode($0, from: exporter, nowSeconds: exportTime, into: &store) }
            }
        }
    }
    store.flush()
    let payloads = store.transport.messages
    let properties = KflowConfiguration.defaults.kafkaProperties
        .filter { $0.key != "bootstrap.servers" }
        .map { (name: $0.key, value: $0.value) } + options.kafkaSettings + [(name: "bootstrap.servers", value: bootstrap)]
    let topic = "microbench-\(getpid())"
    let producer: KafkaProducer
    do { producer = try KafkaProducer(properties: properties, topic: topic) } catch { fail("kflow-microbench: \(error)") }
    print("kflow-microbench: librdkafka \(librdkafkaVersion) alone, kflow's defaults "
        + properties.filter { $0.name != "bootstrap.servers" }.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        + "; \(options.kafkaMessages) messages of \(options.batchRecords) record(s) to \(bootstrap) topic \(topic)")
    // Warm-up: metadata, connection, topic creation, before the clock starts.
    payloads[0].withUnsafeBytes { _ = producer.produce($0) }
    _ = producer.flush(timeoutMs: 30_000)
    let before = producer.counters
    let cpuStart = processCPUSeconds()
    var wallStart = timespec()
    clock_gettime(CLOCK_MONOTONIC, &wallStart)
    var fullQueueWaits = 0
    // As the worker does: messages staged per receive batch (64 here), one produce_batch per batch.
    // Paced: a queue more than half full waits for deliveries instead of dropping messages.
    let empty = UnsafeRawBufferPointer(start: nil, count: 0)
    var i = 0
    while i < options.kafkaMessages {
        while producer.queueDepth > 50_000 {
            fullQueueWaits += 1
            _ = producer.poll(timeoutMs: 1)  // not flush: that would send at once rather than after linger.ms
        }
        for _ in 0..<min(64, options.kafkaMessages - i) {
            payloads[i % payloads.count].withUnsafeBytes { producer.send($0, key: empty, records: 1) }
            i += 1
        }
        producer.submit()
        producer.poll()
    }
    let left = producer.flush(timeoutMs: 120_000)
    let cpu = processCPUSeconds() - cpuStart
    var wallEnd = timespec()
    clock_gettime(CLOCK_MONOTONIC, &wallEnd)
    let wall = Double(wallEnd.tv_sec - wallStart.tv_sec) + Double(wallEnd.tv_nsec - wallStart.tv_nsec) / 1e9
    let after = producer.counters
    let delivered = after.delivered - before.delivered
    let records = Double(delivered) * Double(options.batchRecords)
    print("  delivered \(delivered) of \(options.kafkaMessages) (\(fullQueueWaits) waits for a full queue, "
        + "failed \(after.failed - before.failed), dropped \(after.queueFullDrops - before.queueFullDrops), left \(left)) in \(format(wall)) s")
    print("  librdkafka: \(format(cpu / max(Double(delivered), 1) * 1e6)) CPU-s per million messages, "
        + "\(format(cpu / max(records, 1) * 1e6)) per million records, \(format(Double(delivered) / wall / 1e3)) k messages/s")
}
