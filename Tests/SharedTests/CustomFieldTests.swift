import Foundation
import Testing
@testable import FlowModel
@testable import Templates
@testable import Decoders
@testable import Output

/// `output.field.NAME = [PEN/]IE[:type]`: compiled into the templates that have the field, written to
/// JSON after the other fields; judged by Foundation's JSON parser.
@Suite struct CustomFieldTests {
    static func field(_ name: String, _ spec: String) -> CustomField {
        do { return try CustomField(name: name, parsing: spec) } catch { fatalError("\(name)=\(spec): \(error.problem)") }
    }

    /// Decodes one IPFIX message with `custom` configured and encodes every record; returns the JSON texts.
    static func decodeAndEncode(_ message: [UInt8], custom: [CustomField]) -> [[UInt8]] {
        let decoder = FlowDecoder(configuration: DecoderConfiguration(customFields: custom))
        let encoder = KFlowJSONEncoder(custom: custom, values: decoder.customValues)
        var texts: [[UInt8]] = []
        message.withUnsafeBytes { payload in
            decoder.decode(payload, from: .testExporter, nowSeconds: 1_700_000_000) { records in
                for record in records {
                    let buffer = OutputBuffer(capacity: encoder.maxRecordBytes)
                    #expect(encoder.append(record, to: buffer))
                    texts.append(Array(buffer.bytes))
                }
            }
        }
        return texts
    }

    // Fixed-length template: source port, reverse octetDeltaCount (PEN 29305 IE 1), sourceMacAddress 56,
    // sourceIPv4Address 8 (also kflow's src).
    static let fixedTemplate = IPFIX.templateSet(IPFIX.templateRecord(
        300, [FieldSpec(7, 2), FieldSpec(1, 4, enterprise: 29305), FieldSpec(56, 6), FieldSpec(8, 4)]))
    static let fixedRecord = Wire {
        $0.u16(1234); $0.u32(987_654); $0.raw([0x00, 0x1B, 0x21, 0xAA, 0xBB, 0xCC]); $0.ipv4(192, 0, 2, 7)
    }.bytes

    @Test func enterpriseAndIANAFieldsAreWrittenAfterTheOthersUnderTheirNames() throws {
        let custom = [Self.field("rev_bytes", "29305/1"), Self.field("src_mac", "56"), Self.field("src_again", "8")]
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [Self.fixedTemplate, IPFIX.set(300, Self.fixedRecord)]), custom: custom)
        // The reverse counter makes the record a biflow (output.biflow=split by default): its reverse flow
        // carries the record's custom values too (they describe the record, not a direction).
        #expect(texts.count == 2)
        let text = try #require(texts.first)
        #expect(OutputReference.keyOrder(text).suffix(3) == ["rev_bytes", "src_mac", "src_again"])
        let reverse = OutputReference.object(try #require(texts.last))
        #expect(reverse["rev_bytes"] as? Int == 987_654 && reverse["bytes"] as? Int == 987_654 && reverse["dst"] as? String == "192.0.2.7")
        let object = OutputReference.object(text)
        #expect(object["rev_bytes"] as? Int == 987_654)
        #expect(object["src_mac"] as? String == "00:1b:21:aa:bb:cc")
        #expect(object["src_again"] as? String == "192.0.2.7", "a field kflow reads too is read for both in a fixed-length template")
        #expect(object["src"] as? String == "192.0.2.7")
    }

    @Test func aTemplateWithoutTheFieldWritesNothingAndCompilesNoOperationForIt() {
        let custom = [Self.field("app_name", "96")]
        let plain = IPFIX.templateSet(IPFIX.templateRecord(301, [FieldSpec(7, 2), FieldSpec(11, 2)]))
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [plain, IPFIX.set(301, [0, 1, 0, 2])]), custom: custom)
        #expect(OutputReference.keyOrder(texts[0]).last == "time")
        let fields = [TemplateField(id: 7, enterpriseNumber: 0, length: 2, isScope: false)]
        let plan = try? DecodePlan.compile(templateID: 301, isOptions: false, fields: fields, definition: [], custom: custom).get()
        #expect(plan?.ops.count == 1)
    }

    @Test func variableLengthStringsAreEscapedCutAtNULAndInvalidUTF8Replaced() throws {
        let custom = [Self.field("app_name", "96"), Self.field("blob", "9/12235")]
        let template = IPFIX.templateSet(IPFIX.templateRecord(
            302, [FieldSpec(96, 0xFFFF), FieldSpec(7, 2), FieldSpec(12235, 0xFFFF, enterprise: 9)]))
        let name: [UInt8] = Array("a\"b\\c\nd\u{01}é€".utf8) + [0xFF, 0xC3] + Array("x".utf8) + [0, 0x41]
        let record = Wire { $0.u8(UInt8(name.count)); $0.raw(name); $0.u16(80); $0.u8(3); $0.raw([0x03, 0x00, 0x50]) }.bytes
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [template, IPFIX.set(302, record)]), custom: custom)
        let object = OutputReference.object(try #require(texts.first))
        #expect(object["app_name"] as? String == "a\"b\\c\nd\u{01}é€\u{FFFD}\u{FFFD}x")
        #expect(object["blob"] as? String == "030050", "an enterprise field of unknown type and variable length: hex")
        #expect(object["srcp"] as? Int == 80)
    }

    @Test(arguments: [
        ("signed", [0xFF, 0xFE] as [UInt8], "-2"),
        ("signed", [0x80, 0, 0, 0, 0, 0, 0, 0], "-9223372036854775808"),
        ("unsigned", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "18446744073709551615"),
        ("float", [0x3D, 0xCC, 0xCC, 0xCD], "0.1"),
        ("float", [0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18], "3.141592653589793"),
        ("float", [0x7F, 0xC0, 0x00, 0x00], "null"),
        ("address", [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "\"2001:db8::1\""),
        ("hex", [0xDE, 0xAD], "\"dead\""),
    ])
    func valuesOfEachType(kind: String, octets: [UInt8], json: String) {
        let custom = [Self.field("v", "9/1:\(kind)")]
        let template = IPFIX.templateSet(IPFIX.templateRecord(303, [FieldSpec(7, 2), FieldSpec(1, UInt16(octets.count), enterprise: 9)]))
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [template, IPFIX.set(303, [0, 5] + octets)]), custom: custom)
        let text = String(decoding: texts.first ?? [], as: UTF8.self)
        #expect(text.hasSuffix(",\"v\":\(json)}"), "got \(text)")
        #expect((try? JSONSerialization.jsonObject(with: Data(texts.first ?? []))) != nil, "valid JSON: \(text)")
    }

    @Test func aLengthItsTypeCannotHaveIsLeftOut() {
        let custom = [Self.field("mac", "9/1:mac")]
        let template = IPFIX.templateSet(IPFIX.templateRecord(304, [FieldSpec(7, 2), FieldSpec(1, 4, enterprise: 9)]))
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [template, IPFIX.set(304, [0, 5, 1, 2, 3, 4])]), custom: custom)
        #expect(OutputReference.keyOrder(texts[0]).last == "time")
    }

    @Test func theWorstCaseFitsTheDeclaredBound() {
        // 300 octets that each need \u00XX: cut at 256, 6 bytes each, for every one of 8 string fields.
        let custom = (0..<CustomField.maxCount).map { Self.field("s\($0)", "9/\($0 + 1):string") }
        let value = [UInt8](repeating: 0x01, count: 300)
        let template = IPFIX.templateSet(IPFIX.templateRecord(305, [FieldSpec(7, 2)]
            + (0..<CustomField.maxCount).map { FieldSpec(UInt16($0 + 1), 0xFFFF, enterprise: 9) }))
        let record = Wire {
            $0.u16(1)
            for _ in 0..<CustomField.maxCount { $0.u8(255); $0.u16(UInt16(value.count)); $0.raw(value) }
        }.bytes
        let texts = Self.decodeAndEncode(IPFIX.message(sets: [template, IPFIX.set(305, record)]), custom: custom)
        let text = texts.first ?? []
        let encoder = KFlowJSONEncoder(custom: custom, values: CustomValueStore())
        #expect(text.count <= encoder.maxRecordBytes)
        #expect(text.count > CustomField.maxCount * 256 * 6)
        #expect((OutputReference.object(text)["s7"] as? String)?.unicodeScalars.count == 256)
    }

    @Test(arguments: [
        ("src", "8", "names the field 'src', one of KFlow's own keys"),
        ("App", "96", "names the field 'App': a name is 1-64 of a-z 0-9 _"),
        ("x", "96:text", "has type 'text', not one of unsigned, signed, float, address, mac, string, hex"),
        ("x", "0/96", "has enterprise number '0', not one from 1 to 4294967295"),
        ("x", "40000", "has IE '40000', not a number from 1 to 32767 (expected [PEN/]IE[:type])"),
        ("x", "", "has IE '', not a number from 1 to 32767 (expected [PEN/]IE[:type])"),
    ])
    func badSpecificationsSayWhatIsWrong(name: String, spec: String, problem: String) {
        #expect(throws: CustomFieldError(problem: problem)) { try CustomField(name: name, parsing: spec) }
    }

    @Test func specificationsAreNormalised() throws {
        #expect(try CustomField(name: "a", parsing: "6876/890").description == "6876/890")
        #expect(try CustomField(name: "a", parsing: "96:string").description == "96:string")
        #expect(try CustomField(name: "a", parsing: "96").kind(forLength: 0xFFFF) == .string)
        #expect(try CustomField(name: "a", parsing: "9/96").kind(forLength: 4) == .unsigned, "an enterprise IE has no IANA type")
        #expect(try CustomField(name: "a", parsing: "9/96").kind(forLength: 12) == .hex)
    }
}
