import Testing
@testable import FlowModel
@testable import KafkaOutput
@testable import Config
import ConfigLayers
@testable import Output

@Suite struct ConfigValidationTests {
    /// (key, a value it must refuse, what the message must say about it)
    static let refusals: [(String, String, String)] = [
        ("server.host", "localhost", "is not an IPv4 or IPv6 address literal"),
        ("server.host", "10.0.0.256", "is not an IPv4 or IPv6 address literal"),
        ("server.port", "abc", "is not a port number (1-65535)"),
        ("server.port", "0", "is not a port number (1-65535)"),
        ("server.port", "65536", "is not a port number (1-65535)"),
        ("server.threads", "-1", "is not a whole number from 0 to 1024"),
        ("server.buffer.size", "8M", "is not a whole number from 1024 to 2147483647"),
        ("server.batch.size", "1025", "is not a whole number from 1 to 1024"),
        ("server.receive.wait.us", "100001", "is not a whole number from 0 to 100000"),
        ("kafka.topic", "flows/v4", "is not a Kafka topic name"),
        ("kafka.topic", "..", "is not a Kafka topic name"),
        ("kafka.topic", String(repeating: "t", count: 250), "is not a Kafka topic name"),
        ("kafka.producers", "0", "is not a whole number from 1 to 1024"),
        ("kafka.flush.timeout.ms", "1.5", "is not a whole number from 0 to 2147483647"),
        ("output.batch.records", "0", "is not a whole number from 1 to 100000"),
        ("templates.lifetime", "0", "is not a whole number from 1 to 2147483647"),
        ("templates.max.per.session", "many", "is not a whole number from 1 to 2147483647"),
        ("templates.max.total", "-5", "is not a whole number from 1 to 2147483647"),
        ("exporters.max", "", "is not a whole number from 1 to 2147483647"),
        ("metrics.host", "::g", "is not an IPv4 or IPv6 address literal"),
        ("metrics.port", "-1", "is not a port number (1-65535, or 0 to disable metrics)"),
        ("worker.heartbeat.timeout.ms", "10", "is not a whole number from 100 to 86400000"),
        ("worker.stop.timeout.ms", "forever", "is not a whole number from 100 to 86400000"),
        ("log.level", "verbose", "is not one of debug, info, notice, warning, error"),
        ("output.biflow", "both", "is not one of split, forward"),
        ("kafka.props.compression.type", "zip", "is refused by librdkafka"),
        ("kafka.props.no.such.property", "1", "is refused by librdkafka"),
        ("kafka.props.plugin.library.paths", "/tmp/x.so", "is refused: this property loads shared libraries"),
        ("kafka.props.ssl.engine.location", "/tmp/engine.so", "is refused: this property loads an OpenSSL engine"),
        ("kafka.props.ssl.providers", "legacy", "is refused: this property loads OpenSSL provider modules"),
        ("kafka.props.sasl.kerberos.kinit.cmd", "touch /tmp/x", "is refused: this property is a shell command"),
        ("server.allow", "10.0.0.1/8", "has entry '10.0.0.1/8' that is not a CIDR block: its address has bits set beyond the /8 prefix (did you mean 10.0.0.0/8?)"),
        ("server.allow", "10.0.0.0/8,example.net", "has entry 'example.net' that is not a CIDR block: 'example.net' is not an IPv4 or IPv6 address"),
        ("server.allow", "2001:db8::/129", "has entry '2001:db8::/129' that is not a CIDR block: '/129' is not a prefix length from 0 to 128"),
        ("kafka.key", "src", "is not one of none, exporter, exporter-domain, exporter:N (N = 1-4096), flow, flow-symmetric"),
        ("kafka.key", "exporter:0", "is not one of none, exporter, exporter-domain, exporter:N (N = 1-4096), flow, flow-symmetric"),
        ("templates.state.dir", "var/lib/kflow", "is not an absolute directory path (or empty)"),
    ]

    @Test func aKeyedProducerPlacesKeysLikeJavaUnlessAPartitionerIsSet() throws {
        #expect(!KflowConfiguration.defaults.producerProperties.contains { $0.name == "partitioner" })
        var sources = testSources(commandLine: [CommandLineOverride(key: "kafka.key", value: "flow-symmetric", argument: "-k")])
        sources.checksKafkaPropertiesWithLibrdkafka = false
        let keyed = try sources.load()
        #expect(keyed.kafkaKey == .flowSymmetric)
        #expect(keyed.producerProperties.first { $0.name == "partitioner" }?.value == "murmur2_random")
        sources = testSources(commandLine: [
            CommandLineOverride(key: "kafka.key", value: "exporter:8", argument: "-k"),
            CommandLineOverride(key: "kafka.props.partitioner", value: "consistent_random", argument: "-p"),
        ])
        sources.checksKafkaPropertiesWithLibrdkafka = false
        let chosen = try sources.load()
        #expect(chosen.kafkaKey == .exporterSpread(8))
        #expect(chosen.producerProperties.filter { $0.name == "partitioner" }.map(\.value) == ["consistent_random"])
    }

    @Test(arguments: refusals)
    func invalidValueInFileNamesKeyValueAndLine(key: String, value: String, problem: String) throws {
        let file = try TemporaryPropertiesFile("# first\n\n\(PropertiesFormat.line(key: key, value: value))\n")
        let issues = loadIssues(testSources(file: file.path))
        #expect(issues.count == 1, "\(issues)")
        let text = issues.first?.description ?? ""
        #expect(text.hasPrefix("\(key): '\(value)' \(problem)"), "got: \(text)")
        #expect(text.hasSuffix("(from \(file.path) line 3)"), "got: \(text)")
    }

    @Test func invalidValueFromEnvironmentNamesTheVariable() {
        let issues = loadIssues(testSources(environment: ["KFLOW_SERVER_PORT": "abc"]))
        #expect(issues.map(\.description) == ["server.port: 'abc' is not a port number (1-65535) (from environment KFLOW_SERVER_PORT)"])
    }

    @Test func invalidValueFromCommandLineNamesTheArgument() throws {
        let issues = loadIssues(testSources(commandLine: [
            CommandLineOverride(key: "metrics.port", value: "http", argument: "--metrics-port"),
            try CommandLineOverride.define("app.server.batch.size=0"),
        ]))
        #expect(issues.map(\.description) == [
            "server.batch.size: '0' is not a whole number from 1 to 1024 (from command line -Dapp.server.batch.size)",
            "metrics.port: 'http' is not a port number (1-65535, or 0 to disable metrics) (from command line --metrics-port)",
        ])
    }

    @Test func everyProblemIsReportedNotJustTheFirst() throws {
        let file = try TemporaryPropertiesFile("server.port=x\nserver.prot=1\nkafka.topic=a b\nlog.level=loud\n")
        let issues = loadIssues(testSources(file: file.path, environment: ["KFLOW_METRICS_PORT": "y"]))
        #expect(issues.compactMap(\.key).sorted() == ["kafka.topic", "log.level", "metrics.port", "server.port", "server.prot"])
    }

    @Test func unknownKeyIsAnErrorNamingKeyAndSource() throws {
        let file = try TemporaryPropertiesFile("server.port=4739\nserver.prot=4739\nkafka.props.=x\n")
        let issues = loadIssues(testSources(file: file.path, commandLine: [try CommandLineOverride.define("app.kafka.topik=x")]))
        #expect(issues.map(\.description) == [
            "server.prot: is not a kflow setting (from \(file.path) line 2)",
            "kafka.props.: names no librdkafka property (from \(file.path) line 3)",
            "kafka.topik: is not a kflow setting (from command line -Dapp.kafka.topik)",
        ])
    }

    @Test func kafkaPropsAreNotKflowKeysButAreCheckedByLibrdkafka() throws {
        let file = try TemporaryPropertiesFile("kafka.props.queue.buffering.max.kbytes=2048\nkafka.props.enable.idempotence=true\n")
        #expect(loadIssues(testSources(file: file.path)).isEmpty)
        var unchecked = testSources(commandLine: [try CommandLineOverride.define("app.kafka.props.made.up=1")])
        unchecked.checksKafkaPropertiesWithLibrdkafka = false
        #expect(try unchecked.load().kafkaProperties.last?.key == "made.up")
    }

    @Test func outputFieldsAreCheckedAgainstTheKnownNames() throws {
        var sources = testSources(environment: ["KFLOW_OUTPUT_FIELDS": " vlan, tos ,vlan,"])
        sources.outputFieldNames = ["vlan", "tos", "asn"]
        #expect(try sources.load().outputFields == ["vlan", "tos"])

        sources.environment = ["KFLOW_OUTPUT_FIELDS": "vlan,colour"]
        #expect(loadIssues(sources).map(\.description) == [
            "output.fields: 'vlan,colour' names unknown output field 'colour' (known: asn, tos, vlan) (from environment KFLOW_OUTPUT_FIELDS)",
        ])
    }

    @Test func outputFieldsAreCheckedAgainstTheEncodersCatalogByDefault() throws {
        let sources = testSources(environment: ["KFLOW_OUTPUT_FIELDS": "src_as,dst_as,vlan"])
        #expect(try sources.load().outputFields == ["src_as", "dst_as", "vlan"])
        #expect(loadIssues(testSources(environment: ["KFLOW_OUTPUT_FIELDS": "src_as,srcas"])).compactMap(\.key) == ["output.fields"])
    }

    @Test func biflowModeDefaultsToSplitAndAcceptsForward() throws {
        #expect(try testSources().load().outputBiflow == .split)
        #expect(try testSources(environment: ["KFLOW_OUTPUT_BIFLOW": "Forward"]).load().outputBiflow == .forward)
    }

    @Test func valuesAreReadWithoutSurroundingBlanks() throws {
        let file = try TemporaryPropertiesFile("server.port = 4800  \nlog.level=WARNING\t\n")
        let configuration = try testSources(file: file.path).load()
        #expect(configuration.serverPort == 4800)
        #expect(configuration.logLevel == .warning)
    }

    @Test func acceptsAnyAddressLiteral() throws {
        for host in ["0.0.0.0", "192.0.2.7", "::", "2001:db8::1", "::ffff:192.0.2.7"] {
            #expect(try testSources(environment: ["KFLOW_SERVER_HOST": host]).load().serverHost == host)
        }
    }

    @Test func metricsPortZeroDisablesMetrics() throws {
        #expect(try testSources(environment: ["KFLOW_METRICS_PORT": "0"]).load().metricsPort == 0)
    }

    @Test func malformedEscapeInFileIsAnErrorWithItsLine() throws {
        let file = try TemporaryPropertiesFile("kafka.topic=ipfix\nkafka.props.client.id=\\uZZZZ\n")
        #expect(loadIssues(testSources(file: file.path)).map(\.description) == [
            "malformed \\uXXXX escape (needs four hexadecimal digits) (from \(file.path) line 2)",
        ])
    }

    @Test func secretValuesAreMaskedInErrors() {
        let issues = loadIssues(testSources(environment: ["KFLOW_KAFKA_PROPS_MY_SECRET": "hunter2"]))
        #expect(issues.count == 1)
        #expect(issues.first?.description.hasPrefix("kafka.props.my.secret: '********' is refused by librdkafka") == true, "\(issues)")
    }
}

@Suite struct JavaProducerSettingsTests {
    @Test func javaOnlyProducerSettingsFromAKFlowFileAreLeftOutWithANotice() throws {
        let file = try TemporaryPropertiesFile("""
            kafka.props.key.serializer=org.apache.kafka.common.serialization.StringSerializer
            kafka.props.buffer.memory=33554432
            kafka.props.acks=all
            """)
        let loaded = try testSources(file: file.path).loadWithNotices()
        let keys = loaded.configuration.kafkaProperties.map(\.key)
        #expect(!keys.contains("key.serializer") && !keys.contains("buffer.memory"), "Java-only settings reached librdkafka: \(keys)")
        #expect(keys.contains("acks"))
        #expect(loaded.notices.contains { $0.contains("kafka.props.key.serializer") && $0.contains("ignored") }, "notices: \(loaded.notices)")
        #expect(loaded.notices.contains { $0.contains("kafka.props.buffer.memory") }, "notices: \(loaded.notices)")
    }

    @Test func javaTruststoreSettingsAreStillRefusedBecauseTLSWithoutThemWouldBeUnsafe() throws {
        let issues = loadIssues(testSources(commandLine: [try .define("app.kafka.props.ssl.truststore.location=/etc/ssl/kafka.jks")]))
        #expect(issues.contains { $0.key == "kafka.props.ssl.truststore.location" }, "issues: \(issues)")
    }

    /// Each property is valid alone; only building the producer finds that they cannot work together.
    @Test func combinationRefusedByLibrdkafkaNamesTheKeys() throws {
        let file = try TemporaryPropertiesFile("""
            kafka.props.security.protocol=sasl_ssl
            kafka.props.sasl.mechanisms=PLAIN
            kafka.props.enable.idempotence=true
            kafka.props.acks=1

            """)
        let issues = loadIssues(testSources(file: file.path))
        #expect(issues.count == 1, "\(issues)")
        let text = issues.first?.description ?? ""
        #expect(text.contains("acks") && text.contains("enable.idempotence"), "got: \(text)")
    }

    @Test func missingCertificateFileIsFoundAtLoad() throws {
        let file = try TemporaryPropertiesFile("kafka.props.security.protocol=ssl\nkafka.props.ssl.ca.location=/nonexistent/ca.pem\n")
        let issues = loadIssues(testSources(file: file.path))
        #expect(issues.count == 1, "\(issues)")
        let text = issues.first?.description ?? ""
        #expect(text.hasPrefix("kafka.props.ssl.ca.location: '/nonexistent/ca.pem' is refused by librdkafka with the other kafka.props.* settings: ssl.ca.location failed"), "got: \(text)")
        #expect(text.contains("No such file or directory"), "librdkafka's log line is not in the message: \(text)")
        #expect(text.hasSuffix("(from \(file.path) line 2)"), "got: \(text)")
    }

    @Test func refusedPropertyIsRefusedWhateverItsLayer() {
        let issues = loadIssues(testSources(environment: ["KFLOW_KAFKA_PROPS_PLUGIN_LIBRARY_PATHS": "/tmp/x.so"]))
        #expect(issues.map(\.description) == [
            "kafka.props.plugin.library.paths: '/tmp/x.so' is refused: this property loads shared libraries (librdkafka plugins) into kflow, which kflow does not allow from a configuration (from environment KFLOW_KAFKA_PROPS_PLUGIN_LIBRARY_PATHS)",
        ])
    }

    @Test func workerRefusesCodeLoadingPropertiesToo() {
        #expect(throws: KafkaError.refusedProperty(name: "plugin.library.paths", reason: KafkaConfiguration.refusedProperties["plugin.library.paths"] ?? "")) {
            try KafkaProducer(properties: [(name: "plugin.library.paths", value: "/tmp/x.so")], topic: "t")
        }
    }

    @Test func serverAllowRoundTripsThroughTheWorkerText() throws {
        let file = try TemporaryPropertiesFile("server.allow= 192.0.2.0/24 , ::ffff:198.51.100.7, 2001:db8::/32\n")
        let configuration = try testSources(file: file.path).load()
        #expect(configuration.serverAllow.description == "192.0.2.0/24,198.51.100.7/32,2001:db8::/32")
        #expect(try KflowConfiguration.parse(workerText: configuration.workerText()).serverAllow == configuration.serverAllow)
    }

    @Test func samplingSettingsRoundTripThroughTheWorkerText() throws {
        let file = try TemporaryPropertiesFile(
            "sampling.default=100\nsampling.override= 10.0.0.0/8 = 1000 , 2001:db8::/32=512\noutput.renormalize=TRUE\n")
        let configuration = try testSources(file: file.path).load()
        #expect(configuration.samplingDefault == 100)
        #expect(configuration.samplingOverride.description == "10.0.0.0/8=1000,2001:db8::/32=512")
        #expect(configuration.outputRenormalize)
        let parsed = try KflowConfiguration.parse(workerText: configuration.workerText())
        #expect(parsed.samplingOverride == configuration.samplingOverride)
        #expect(parsed.outputRenormalize && parsed.samplingDefault == 100)
        #expect(!KflowConfiguration.defaults.outputRenormalize && KflowConfiguration.defaults.samplingOverride.entries.isEmpty)
    }

    @Test func customFieldsRoundTripThroughTheWorkerTextInNameOrder() throws {
        let file = try TemporaryPropertiesFile("output.field.rev_bytes=29305/1\noutput.field.app_name = 96:string\n")
        let configuration = try testSources(file: file.path).load()
        #expect(configuration.outputCustomFields.map { "\($0.name)=\($0)" } == ["app_name=96:string", "rev_bytes=29305/1"])
        #expect(configuration.workerText().contains("output.field.app_name=96:string\noutput.field.rev_bytes=29305/1\n"))
        #expect(try KflowConfiguration.parse(workerText: configuration.workerText()).outputCustomFields == configuration.outputCustomFields)
    }

    @Test(arguments: [
        ("output.field.dir", "61", "output.field.dir: '61' names the field 'dir', which output.fields already offers"),
        ("output.field.x", "29305/", "output.field.x: '29305/' has IE '', not a number from 1 to 32767 (expected [PEN/]IE[:type])"),
        ("output.field.", "61", "output.field.: names no field (output.field.NAME)"),
    ])
    func badCustomFieldsAreNamed(key: String, value: String, message: String) throws {
        let file = try TemporaryPropertiesFile("\(key)=\(value)\n")
        #expect(loadIssues(testSources(file: file.path)).map(\.description) == ["\(message) (from \(file.path) line 1)"])
    }

    @Test func atMostEightCustomFields() throws {
        let file = try TemporaryPropertiesFile((0..<9).map { "output.field.f\($0)=9/\($0 + 1)\n" }.joined())
        #expect(loadIssues(testSources(file: file.path)).map(\.problem) == ["are 9 fields; at most 8 may be chosen"])
    }

    @Test(arguments: [
        ("sampling.override", "10.0.0.0/8", "sampling.override: '10.0.0.0/8' has entry '10.0.0.0/8' that is not CIDR=RATE with a rate from 1 to 4294967295"),
        ("sampling.override", "10.0.0.0/8=0", "sampling.override: '10.0.0.0/8=0' has entry '10.0.0.0/8=0' that is not CIDR=RATE with a rate from 1 to 4294967295"),
        ("sampling.override", "10.0.0.1/8=5", "sampling.override: '10.0.0.1/8=5' has entry '10.0.0.1/8=5' whose block is wrong: its address has bits set beyond the /8 prefix (did you mean 10.0.0.0/8?)"),
        ("sampling.default", "-1", "sampling.default: '-1' is not a whole number from 0 to 4294967295"),
        ("output.renormalize", "yes", "output.renormalize: 'yes' is not true or false"),
    ])
    func badSamplingSettingsAreNamed(key: String, value: String, message: String) throws {
        let file = try TemporaryPropertiesFile("\(key)=\(value)\n")
        #expect(loadIssues(testSources(file: file.path)).map(\.description) == ["\(message) (from \(file.path) line 1)"])
    }
}

@Suite struct AddressAllowListTests {
    private func address(_ text: String) -> IPAddress {
        let prefix = try? AddressPrefix(parsing: text)
        return prefix.map { IPAddress(high: $0.high, low: $0.low, family: $0.family) } ?? .none
    }

    @Test func emptyListAllowsEveryone() throws {
        let list = try AddressAllowList(parsing: " , ")
        #expect(list.prefixes.isEmpty)
        #expect(list.allows(address("203.0.113.9")) && list.allows(address("2001:db8::1")))
    }

    @Test(arguments: [
        ("127.0.0.1/32", "127.0.0.1", true), ("127.0.0.1/32", "127.0.0.2", false),
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.0", false),
        ("0.0.0.0/0", "198.51.100.1", true), ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true), ("2001:db8::/32", "2001:db9::1", false),
        ("2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", true), ("2001:db8:0:0:8000::/65", "2001:db8::1", false),
        ("::/0", "::1", true), ("::/0", "192.0.2.1", false),
        ("::ffff:192.0.2.0/120", "192.0.2.77", true), ("192.0.2.5", "192.0.2.5", true), ("192.0.2.5", "192.0.2.6", false),
    ])
    func matches(block: String, sender: String, allowed: Bool) throws {
        let list = try AddressAllowList(parsing: block)
        #expect(list.allows(address(sender)) == allowed, "\(block) vs \(sender)")
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0/8", "fe80::1%eth0", "/8", "10.0.0.0/8/8", "192.0.2.1/24"])
    func refusesMalformedBlocks(text: String) {
        #expect(throws: AddressPrefix.ParseError.self) { try AddressAllowList(parsing: text) }
    }
}
