import Testing
@testable import FlowModel
@testable import Output

@Suite struct OutputFieldsTests {
    @Test func commaSeparatedNamesSelectFields() throws {
        let fields = try OutputFields(parsing: "start, end,in_if ,out_if,src_as,dst_as,nexthop,vlan,tos,domain,dir,src_mask,dst_mask,sampling")
        #expect(fields == .all)
        #expect(try OutputFields(parsing: "vlan,tos") == OutputFields([.vlan, .tos]))
    }

    @Test func emptyListAndEmptyItemsSelectNothingExtra() throws {
        #expect(try OutputFields(parsing: "") == [])
        #expect(try OutputFields(parsing: " , ,") == [])
        #expect(try OutputFields(parsing: "vlan,,tos,") == OutputFields([.vlan, .tos]))
    }

    @Test func unknownNameIsATypedErrorNamingIt() {
        #expect(throws: OutputFieldsError.unknownField(name: "src_port", known: OutputFields.catalog.map(\.name))) {
            try OutputFields(parsing: "start,src_port,end")
        }
        do {
            _ = try OutputFields(parsing: "Vlan")
            Issue.record("names are case-sensitive; \"Vlan\" was accepted")
        } catch {
            #expect(error.description.contains("\"Vlan\""))
            #expect(error.description.contains("vlan"))
        }
    }

    @Test func namesListTheSelectionInOutputOrder() throws {
        #expect(try OutputFields(parsing: "sampling,start,domain").names == ["start", "domain", "sampling"])
    }

    @Test func eachFieldIsGatedByThePresentBitOfItsValueAndWrittenUnderItsName() {
        // The encoder ANDs OutputFields with FlowRecord.Present: each option must be its value's bit.
        for field in OutputField.allCases {
            let selection = OutputFields(field)
            var record = FlowRecord()
            guard let present = field.spec.present else {
                // Always known: written whatever the record has, on a bit no option depends on.
                #expect(OutputReference.keyOrder(encodeToBytes(record, fields: selection)).last == field.name)
                #expect(OutputField.allCases.allSatisfy { $0.spec.present?.rawValue != selection.rawValue })
                continue
            }
            #expect(present.rawValue == selection.rawValue, "\(field): bit \(field.rawValue) is not its Present flag's")
            record.present = present
            let keys = OutputReference.keyOrder(encodeToBytes(record, fields: selection))
            #expect(keys.count == 11 && keys.last == field.name, "\(field) with its present bit set wrote \(keys)")
            record.present = FlowRecord.Present(rawValue: ~present.rawValue)
            #expect(OutputReference.keyOrder(encodeToBytes(record, fields: selection)).count == 10, "\(field) without it")
        }
        #expect(OutputFields.catalog.count == 14)
    }

    @Test func everyFieldSelectedIsWrittenInCatalogOrder() {
        var record = FlowRecord()
        record.present = FlowRecord.Present(rawValue: .max)
        #expect(Array(OutputReference.keyOrder(encodeToBytes(record, fields: .all)).dropFirst(10)) == OutputFields.catalog.map(\.name))
    }
}
