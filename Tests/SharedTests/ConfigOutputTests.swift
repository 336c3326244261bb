import Testing
@testable import Config
import ConfigLayers

@Suite struct ConfigOutputTests {
    @Test(arguments: [
        "kafka.props.sasl.password", "kafka.props.ssl.key.password", "kafka.props.sasl.oauthbearer.client.secret",
        "kafka.props.ssl.keystore.password", "kafka.props.sasl.oauthbearer.config", "kafka.props.ssl.key.pem",
    ])
    func secretsAreMaskedInEffectiveEntriesButNotInWorkerText(key: String) throws {
        var sources = testSources(commandLine: [try CommandLineOverride.define("app.\(key)=hunter2")])
        sources.checksKafkaPropertiesWithLibrdkafka = false  // some need SSL/SASL context to be accepted
        let configuration = try sources.load()
        let entry = configuration.effectiveEntry(key)
        #expect(entry?.value == "********")
        #expect(entry?.source == .commandLine(argument: "-Dapp.\(key)"))
        #expect(configuration.workerText().contains("\(key)=hunter2\n"))
    }

    @Test func ordinaryValuesAreNotMasked() throws {
        let configuration = try testSources(environment: ["KFLOW_KAFKA_PROPS_SASL_USERNAME": "kflow"]).load()
        #expect(configuration.effectiveEntry("kafka.props.sasl.username")?.value == "kflow")
        #expect(configuration.effectiveEntry("kafka.props.bootstrap.servers")?.value == "localhost:9092")
    }

    @Test func effectiveEntriesListEveryKeyInReferenceOrderWithItsSource() throws {
        let file = try TemporaryPropertiesFile("kafka.topic=flows\n\nkafka.props.acks=all\n")
        let configuration = try testSources(file: file.path, environment: ["KFLOW_SERVER_THREADS": "2"]).load()
        let entries = configuration.effectiveEntries()
        #expect(entries.map(\.key) == [
            "server.host", "server.port", "server.threads", "server.buffer.size", "server.batch.size",
            "server.receive.wait.us",
            "kafka.topic", "kafka.producers", "kafka.flush.timeout.ms",
            "kafka.props.bootstrap.servers", "kafka.props.linger.ms", "kafka.props.batch.num.messages",
            "kafka.props.compression.type", "kafka.props.acks",
            "output.fields", "output.batch.records",
            "templates.lifetime", "templates.max.per.session", "templates.max.total", "exporters.max",
            "metrics.host", "metrics.port", "worker.heartbeat.timeout.ms", "worker.stop.timeout.ms", "log.level",
            "server.allow",
            "templates.max.fields", "templates.max.bytes", "templates.max.bytes.per.session", "exporters.max.per.address",
            "kafka.key", "templates.state.dir",
            "sflow.port",
            "server.balance", "templates.topic", "node.id",
            "output.biflow",
            "sampling.default", "sampling.override", "output.renormalize",
        ])
        #expect(configuration.effectiveEntry("kafka.topic")?.source == .file(path: file.path, line: 1))
        #expect(configuration.effectiveEntry("kafka.props.acks")?.source == .file(path: file.path, line: 3))
        #expect(configuration.effectiveEntry("server.threads")?.source == .environment(variable: "KFLOW_SERVER_THREADS"))
        #expect(configuration.effectiveEntry("server.port")?.source == .builtInDefault)
    }

    @Test func workerTextReadsBackAsAnEqualConfiguration() throws {
        let file = try TemporaryPropertiesFile("""
            server.host=2001:db8::7
            server.port=2055
            server.threads=3
            kafka.topic=flows.v1
            output.fields=vlan,src_as
            output.batch.records=50
            log.level=debug
            metrics.port=0
            kafka.props.compression.type=
            kafka.props.client.id=  spaced = and : and # and \\\\ and \\n and été
            kafka.props.sasl.password=p@ss word
            """)
        var sources = testSources(file: file.path, environment: ["KFLOW_KAFKA_PROPS_ACKS": "all", "KFLOW_KAFKA_PROPS_CLIENT_RACK": "  r1 "])
        sources.checksKafkaPropertiesWithLibrdkafka = false
        let original = try sources.load()
        let text = original.workerText()
        let parsed = try KflowConfiguration.parse(workerText: text)
        #expect(parsed == original)
        #expect(parsed.kafkaProperties.map(\.key) == original.kafkaProperties.map(\.key))
        // Java drops blanks after the separator in a file; a value from elsewhere keeps them through the text.
        #expect(parsed.kafkaProperties.first { $0.key == "client.id" }?.value == "spaced = and : and # and \\ and \n and été")
        #expect(parsed.kafkaProperties.first { $0.key == "client.rack" }?.value == "  r1 ")
        #expect(!parsed.kafkaProperties.contains { $0.key == "compression.type" }, "a removed default stays removed")
        #expect(parsed.effectiveEntry("server.port")?.source == .workerText(line: 2))
        #expect(parsed.workerText() == text)
    }

    @Test func workerTextIsOneKeyValueLinePerSetting() throws {
        let text = KflowConfiguration.defaults.workerText()
        #expect(text.hasPrefix("server.host=::\nserver.port=4739\n"))
        #expect(text.hasSuffix("exporters.max.per.address=64\nkafka.key=none\ntemplates.state.dir=\nsflow.port=6343\nserver.balance=hash\ntemplates.topic=\nnode.id=\noutput.biflow=split\nsampling.default=0\nsampling.override=\noutput.renormalize=false\n"))
        #expect(text.split(separator: "\n").count == KflowConfiguration.defaults.effectiveEntries().count)
    }

    @Test func workerTextWithUnknownKeyOrBadValueIsRejected() {
        #expect(throws: ConfigurationError(issues: [
            .init(key: "server.prot", value: nil, problem: "is not a kflow setting", source: .workerText(line: 2)),
        ])) {
            try KflowConfiguration.parse(workerText: "server.port=1\nserver.prot=2\n")
        }
        #expect(throws: ConfigurationError.self) { try KflowConfiguration.parse(workerText: "server.port=x\n") }
    }

    @Test func workerTextMissingKeysTakeDefaultsButNotDefaultKafkaProps() throws {
        let parsed = try KflowConfiguration.parse(workerText: "server.port=9995\nkafka.props.bootstrap.servers=k:1\n")
        #expect(parsed.serverPort == 9995)
        #expect(parsed.kafkaTopic == "ipfix")
        #expect(parsed.kafkaProperties.map(\.key) == ["bootstrap.servers"])
    }
}
