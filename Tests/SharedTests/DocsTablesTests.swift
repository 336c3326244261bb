import Foundation
import Testing
@testable import FlowModel
@testable import SystemKit
@testable import WireFormat
@testable import Templates
@testable import Decoders
@testable import Output
@testable import KafkaOutput
@testable import Config
@testable import ProcessKit
@testable import MetricsServer
@testable import WorkerRuntime

/// The docs' tables of settings, metrics and output fields against the code's tables: each test fails
/// when one names something the other does not (or a default differs), saying which.
@Suite struct DocsTablesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The rows of the first table under the heading `heading` in `file`, as cells without the outer pipes
    /// (the header and separator rows left out).
    static func table(_ file: String, under heading: String) throws -> [[String]] {
        let text = try String(contentsOf: repository.appendingPathComponent(file), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: heading) else {
            Issue.record("\(file) has no heading '\(heading)'")
            return []
        }
        let rows = lines[(start + 1)...].drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        return rows.dropFirst(2).map { row in
            // A `\|` inside a cell is text, not a column break.
            row.replacingOccurrences(of: "\\|", with: "\u{1}").split(separator: "|", omittingEmptySubsequences: false)
                .dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{1}", with: "|") }
        }
    }

    /// The `code` spans of a cell: "`a` / `b`" is ["a", "b"].
    static func codeSpans(_ cell: String) -> [String] {
        cell.components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
    }

    /// `a_{b,c}_total` is a_b_total and a_c_total; a brace group ending the name lists labels instead.
    static func metricNames(_ span: String) -> [(name: String, labels: Set<String>)] {
        var name = span
        var labels: Set<String> = []
        if name.hasSuffix("}"), let open = name.lastIndex(of: "{"), !name[..<open].hasSuffix("_") {
            labels = Set(name[name.index(after: open)..<name.index(before: name.endIndex)].split(separator: ",").map(String.init))
            name = String(name[..<open])
        }
        guard let open = name.firstIndex(of: "{"), let close = name.firstIndex(of: "}") else { return [(name, labels)] }
        return name[name.index(after: open)..<close].split(separator: ",").map {
            (String(name[..<open]) + $0 + String(name[name.index(after: close)...]), labels)
        }
    }

    @Test func everyWorkerCounterIsInTheReadmeMetricsTableWithItsLabel() throws {
        var documented: [String: Set<String>] = [:]
        for row in try Self.table("README.md", under: "## Metrics and health") {
            for span in Self.codeSpans(row[0]) { for (name, labels) in Self.metricNames(span) { documented[name] = labels } }
        }
        #expect(documented.count >= 30, "the README's metrics table parsed into only \(documented.count) names")
        for counter in WorkerCounter.allCases {
            let metric = counter.metric
            let labels = Set(metric.label.map { [$0.0] } ?? [])
            #expect(documented[metric.name] == labels,
                    "\(counter): \(metric.name) with labels \(labels.sorted()) is not in the README's metrics table (README has \(documented[metric.name].map { $0.sorted().description } ?? "no such row"))")
        }
    }

    @Test func theCounterTableGivesOneSlotPerSampleAndKeepsEachFamilyTogether() {
        var seen: Set<String> = []
        var families: [String] = []
        for counter in WorkerCounter.allCases {
            let metric = counter.metric
            let sample = metric.name + "{" + (metric.label.map { "\($0.0)=\($0.1)" } ?? "") + "}"
            #expect(seen.insert(sample).inserted, "\(counter) repeats the sample \(sample)")
            if families.last != metric.name {
                #expect(!families.contains(metric.name), "\(metric.name)'s slots are not adjacent: the exposition would split the family")
                families.append(metric.name)
            }
            #expect(metric.name.hasSuffix("_total") == (metric.kind == .counter), "\(metric.name): a counter ends in _total, a gauge does not")
        }
        #expect(WorkerCounter.allCases.count <= WorkerSegment.counterCapacity)
    }

    @Test func workerCountersAreReadFromWhatTheWorkerCollects() {
        var readings = WorkerReadings()
        readings.receive.rejected = 3
        readings.decode.ipfixMessages = 5
        readings.decode.netflowV5Messages = 7
        readings.kafka.errors = 11
        readings.templateBytesActive = 13
        #expect(WorkerCounter.datagramsRejected.metric.read(readings) == 3)
        #expect(WorkerCounter.ipfixMessages.metric.read(readings) == 5)
        #expect(WorkerCounter.netflowV5Messages.metric.read(readings) == 7)
        #expect(WorkerCounter.kafkaErrors.metric.read(readings) == 11)
        #expect(WorkerCounter.templateBytesActive.metric.read(readings) == 13)
    }

    @Test func theReadmeSettingsTableNamesEverySettingWithItsDefault() throws {
        let defaults = KflowConfiguration.defaults.flatEntries()
        var expected: [String: [String]] = [:]
        for (key, value) in defaults where !key.hasPrefix(ConfigurationKey.kafkaPropsPrefix) { expected[key] = [value] }
        expected["kafka.props.*"] = defaults.filter { $0.key.hasPrefix(ConfigurationKey.kafkaPropsPrefix) }
            .map { String($0.key.dropFirst(ConfigurationKey.kafkaPropsPrefix.count)) + "=" + $0.value }
        expected["output.field.*"] = [""]  // none by default
        var documented: [String: [String]] = [:]
        for row in try Self.table("README.md", under: "## Configuration") {
            let keys = Self.codeSpans(row[0])
            // "(empty)" is the empty default; "`a` / `b`" gives the defaults of "`k1` / `k2`" in turn.
            let values = row[1] == "(empty)" ? [""] : Self.codeSpans(row[1])
            if keys.count == 1 {
                documented[keys[0]] = values
            } else {
                #expect(keys.count == values.count, "README row \(row[0]): \(keys.count) keys, \(values.count) defaults")
                for (key, value) in zip(keys, values) { documented[key] = [value] }
            }
        }
        #expect(Set(documented.keys) == Set(expected.keys),
                "README settings table: missing \(Set(expected.keys).subtracting(documented.keys).sorted()), unknown \(Set(documented.keys).subtracting(expected.keys).sorted())")
        for (key, values) in expected where documented[key] != nil {
            #expect(documented[key] == values, "README says \(key) defaults to \(documented[key] ?? []), the reference to \(values)")
        }
    }

    @Test func theConfigurationKeysTableNamesEverySettingAndItsRange() throws {
        var documented: [String: String] = [:]
        for row in try Self.table("docs/CONFIGURATION.md", under: "## Keys") {
            for key in Self.codeSpans(row[0]) { documented[key] = row[1] }
        }
        let expected = Set(ConfigurationKey.allCases.map(\.documentedName))
        #expect(Set(documented.keys) == expected,
                "docs/CONFIGURATION.md keys table: missing \(expected.subtracting(documented.keys).sorted()), unknown \(Set(documented.keys).subtracting(expected).sorted())")
        for key in ConfigurationKey.allCases {
            guard let range = key.range, let accepted = documented[key.rawValue] else { continue }
            #expect(Self.ranges(in: accepted).contains(range),
                    "docs/CONFIGURATION.md says \(key.rawValue) accepts '\(accepted)'; validation takes \(range)")
        }
    }

    /// The "A–B" ranges of a docs cell, with 2³¹−1 and 2⁴⁰ written as powers and 100000 plain.
    static func ranges(in text: String) -> [ClosedRange<Int>] {
        let normalised = text.replacingOccurrences(of: "2³¹−1", with: String(Int32.max)).replacingOccurrences(of: "2⁴⁰", with: String(1 << 40))
        let pieces = normalised.components(separatedBy: "–")
        return zip(pieces, pieces.dropFirst()).compactMap { before, after in
            let low = String(before.reversed().prefix { $0.isNumber }.reversed())
            guard let l = Int(low), let h = Int(after.prefix { $0.isNumber }), l <= h else { return nil }
            return l...h
        }
    }

    @Test func theOutputFieldsTableListsTheCatalogInOutputOrder() throws {
        let documented = try Self.table("docs/OUTPUT.md", under: "## Optional fields (`output.fields`)").map { Self.codeSpans($0[0]).first ?? $0[0] }
        #expect(documented == OutputFields.catalog.map(\.name), "docs/OUTPUT.md lists \(documented), the catalog \(OutputFields.catalog.map(\.name))")
    }
}
