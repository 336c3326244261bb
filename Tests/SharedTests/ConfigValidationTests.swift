import Testing
@testable import Shared

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
        ("kafka.props.compression.type", "zip", "is refused by librdkafka"),
        ("kafka.props.no.such.property", "1", "is refused by librdkafka"),
    ]

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
}
