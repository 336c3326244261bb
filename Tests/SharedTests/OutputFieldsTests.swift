import Testing
@testable import FlowModel
@testable import Output

@Suite struct OutputFieldsTests {
    @Test func commaSeparatedNamesSelectFields() throws {
        let fields = try OutputFields(parsing: "start, end,in_if ,out_if,src_as,dst_as,nexthop,vlan,tos,domain,dir,src_mask,dst_mask,sampling")
        #expect(fields == .all)
        #expect(try OutputFields(parsing: "vlan,tos") == [.vlan, .tos])
    }

    @Test func emptyListAndEmptyItemsSelectNothingExtra() throws {
        #expect(try OutputFields(parsing: "") == [])
        #expect(try OutputFields(parsing: " , ,") == [])
        #expect(try OutputFields(parsing: "vlan,,tos,") == [.vlan, .tos])
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

    @Test func eachFieldIsGatedByThePresentBitOfItsValue() {
        // The encoder ANDs OutputFields with FlowRecord.Present: each option must be its value's bit.
        let pairs: [(OutputFields, FlowRecord.Present)] = [
            (.start, .flowStart), (.end, .flowEnd), (.inInterface, .inputInterface), (.outInterface, .outputInterface),
            (.srcAS, .srcAS), (.dstAS, .dstAS), (.nextHop, .nextHop), (.vlan, .vlan), (.tos, .tos),
            (.direction, .direction), (.srcMask, .srcMask), (.dstMask, .dstMask), (.sampling, .samplingInterval),
        ]
        for (field, present) in pairs {
            var record = FlowRecord()
            record.present = present
            let keys = OutputReference.keyOrder(encodeToBytes(record, fields: field))
            #expect(keys.count == 11, "\(field.names) with its present bit set")
            record.present = FlowRecord.Present(rawValue: ~present.rawValue)
            #expect(OutputReference.keyOrder(encodeToBytes(record, fields: field)).count == 10, "\(field.names) without it")
        }
        #expect(OutputFields.domain.rawValue & FlowRecord.Present(rawValue: .max).rawValue != 0)
        #expect(OutputFields.catalog.count == 14)
    }
}
