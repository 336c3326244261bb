import Testing
@testable import Config
import ConfigLayers

@Suite struct ConfigLayeringTests {
    @Test func defaultsAloneGiveTheReferenceValues() throws {
        let configuration = try testSources().load()
        #expect(configuration.serverHost == "::")
        #expect(configuration.serverPort == 4739)
        #expect(configuration.serverThreads == 0)
        #expect(configuration.serverBufferSize == 8_388_608)
        #expect(configuration.serverBatchSize == 64)
        #expect(configuration.kafkaTopic == "ipfix")
        #expect(configuration.kafkaProducers == 1)
        #expect(configuration.kafkaFlushTimeoutMilliseconds == 10_000)
        #expect(configuration.outputFields == [])
        #expect(configuration.outputBatchRecords == 1)
        #expect(configuration.templatesLifetimeSeconds == 1800)
        #expect(configuration.templatesMaxPerSession == 4096)
        #expect(configuration.templatesMaxTotal == 65536)
        #expect(configuration.exportersMax == 10_000)
        #expect(configuration.metricsHost == "0.0.0.0")
        #expect(configuration.metricsPort == 8080)
        #expect(configuration.workerHeartbeatTimeoutMilliseconds == 5000)
        #expect(configuration.workerStopTimeoutMilliseconds == 15_000)
        #expect(configuration.logLevel == .info)
        #expect(configuration.kafkaProperties.map { "\($0.key)=\($0.value)" } == [
            "bootstrap.servers=localhost:9092", "linger.ms=50", "batch.num.messages=10000", "compression.type=none",
        ])
        #expect(configuration.effectiveEntries().allSatisfy { $0.source == .builtInDefault })
        #expect(configuration == KflowConfiguration.defaults)
    }

    @Test func referenceTextNamesExactlyTheKnownKeys() throws {
        let referenceKeys = try PropertiesFormat.parse(ReferenceConfiguration.text).map(\.key)
            .filter { !$0.hasPrefix("kafka.props.") }
        #expect(referenceKeys == ConfigurationKey.scalarKeys.map(\.rawValue))
    }

    /// One key set in every layer at or below `layer`: the highest of those wins, with its source.
    @Test(arguments: 0...3)
    func eachLayerOverridesTheOnesBelow(highestLayer: Int) throws {
        let file = try TemporaryPropertiesFile("# kflow\nserver.port=1001\nkafka.props.bootstrap.servers=file:9092\n")
        let sources = testSources(
            file: highestLayer >= 1 ? file.path : nil,
            environment: highestLayer >= 2
                ? ["KFLOW_SERVER_PORT": "1002", "KFLOW_KAFKA_PROPS_BOOTSTRAP_SERVERS": "env:9092"] : [:],
            commandLine: highestLayer >= 3
                ? [
                    CommandLineOverride(key: "server.port", value: "1003", argument: "--server-port"),
                    try CommandLineOverride.define("app.kafka.props.bootstrap.servers=cli:9092"),
                ] : []
        )
        let configuration = try sources.load()
        let expected: [(port: UInt16, portSource: ConfigurationSource, servers: String, serversSource: ConfigurationSource)] = [
            (4739, .builtInDefault, "localhost:9092", .builtInDefault),
            (1001, .file(path: file.path, line: 2), "file:9092", .file(path: file.path, line: 3)),
            (1002, .environment(variable: "KFLOW_SERVER_PORT"), "env:9092", .environment(variable: "KFLOW_KAFKA_PROPS_BOOTSTRAP_SERVERS")),
            (1003, .commandLine(argument: "--server-port"), "cli:9092", .commandLine(argument: "-Dapp.kafka.props.bootstrap.servers")),
        ]
        let want = expected[highestLayer]
        #expect(configuration.serverPort == want.port)
        #expect(configuration.effectiveEntry("server.port")?.source == want.portSource)
        #expect(configuration.kafkaProperties.first { $0.key == "bootstrap.servers" }?.value == want.servers)
        #expect(configuration.effectiveEntry("kafka.props.bootstrap.servers")?.source == want.serversSource)
    }

    @Test func laterCommandLineSettingForTheSameKeyWins() throws {
        let configuration = try testSources(commandLine: [
            try CommandLineOverride.define("app.kafka.topic=first"),
            CommandLineOverride(key: "kafka.topic", value: "second", argument: "--kafka-topic"),
        ]).load()
        #expect(configuration.kafkaTopic == "second")
        #expect(configuration.effectiveEntry("kafka.topic")?.source == .commandLine(argument: "--kafka-topic"))
    }

    @Test func environmentNamesMapToDottedKeys() throws {
        let (configuration, notices) = try testSources(environment: [
            "KFLOW_TEMPLATES_MAX_PER_SESSION": "17",
            "KFLOW_WORKER_HEARTBEAT_TIMEOUT_MS": "900",
            "KFLOW_LOG_LEVEL": "debug",
            "KFLOW_KAFKA_PROPS_CLIENT_ID": "collector-7",
            "KFLOW_KAFKA_PROPS_MESSAGE_MAX_BYTES": "2000000",
            "PATH": "/usr/bin",
        ]).loadWithNotices()
        #expect(configuration.templatesMaxPerSession == 17)
        #expect(configuration.workerHeartbeatTimeoutMilliseconds == 900)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.kafkaProperties.suffix(2).map { "\($0.key)=\($0.value)" } == [
            "client.id=collector-7", "message.max.bytes=2000000",
        ])
        #expect(notices.isEmpty)
    }

    @Test func environmentVariableNamingNoSettingIsANoticeNotAnError() throws {
        let (configuration, notices) = try testSources(environment: ["KFLOW_SERVER_PROT": "1", "KFLOW_BIN": "/x"]).loadWithNotices()
        #expect(configuration.serverPort == 4739)
        #expect(notices == [
            "environment variable KFLOW_BIN names no kflow setting; ignored",
            "environment variable KFLOW_SERVER_PROT names no kflow setting; ignored",
        ])
    }

    @Test func configFileComesFromFlagThenEnvironmentThenConventionalPath() {
        let environment = ["KFLOW_CONFIG": "/env/kflow.properties"]
        #expect(ConfigurationSources(configFile: "/flag.properties", environment: environment, commandLine: []).file
            == .required(path: "/flag.properties", namedBy: .commandLine(argument: "--config")))
        #expect(ConfigurationSources(configFile: nil, environment: environment, commandLine: []).file
            == .required(path: "/env/kflow.properties", namedBy: .environment(variable: "KFLOW_CONFIG")))
        #expect(ConfigurationSources(configFile: nil, environment: [:], commandLine: []).file
            == .ifPresent(path: "/etc/kflow/kflow.properties"))
    }

    @Test func missingConventionalFileIsSkippedButMissingNamedFileIsAnError() throws {
        var sources = testSources()
        sources.file = .ifPresent(path: "/nonexistent/kflow.properties")
        #expect(try sources.load() == KflowConfiguration.defaults)

        sources.file = .required(path: "/nonexistent/kflow.properties", namedBy: .environment(variable: "KFLOW_CONFIG"))
        #expect(loadIssues(sources).map(\.description) == [
            "cannot read /nonexistent/kflow.properties: No such file or directory (from environment KFLOW_CONFIG)",
        ])
    }

    @Test func loadRereadsTheFileEachTime() throws {
        let file = try TemporaryPropertiesFile("server.port=5000\n")
        let sources = testSources(file: file.path)
        #expect(try sources.load().serverPort == 5000)
        try "server.port=5001\n".write(toFile: file.path, atomically: true, encoding: .utf8)
        #expect(try sources.load().serverPort == 5001)
    }

    @Test(arguments: [
        ("app.server.port=4739", "server.port", "4739", "-Dapp.server.port"),
        ("app.kafka.props.sasl.oauthbearer.config=a=b c=d", "kafka.props.sasl.oauthbearer.config", "a=b c=d", "-Dapp.kafka.props.sasl.oauthbearer.config"),
        ("app.output.fields=", "output.fields", "", "-Dapp.output.fields"),
    ] as [(String, String, String, String)])
    func defineTakesKeyAfterAppAndValueAfterFirstEquals(definition: String, key: String, value: String, argument: String) throws {
        #expect(try CommandLineOverride.define(definition) == CommandLineOverride(key: key, value: value, argument: argument))
    }

    @Test(arguments: ["server.port=4739", "app.server.port", "app.=1", "java.io.tmpdir=/tmp"])
    func defineWithoutAppPrefixOrValueIsAnError(definition: String) {
        #expect(throws: ConfigurationError.self) { try CommandLineOverride.define(definition) }
    }

    @Test func kafkaPropertiesGoLowestLayerFirstSoHigherLayersAreSetLast() throws {
        let file = try TemporaryPropertiesFile("""
            kafka.props.acks=all
            kafka.props.linger.ms=50
            kafka.props.compression.codec=gzip
            kafka.props.batch.num.messages=
            """)
        let configuration = try testSources(
            file: file.path,
            environment: ["KFLOW_KAFKA_PROPS_CLIENT_ID": "c1", "KFLOW_KAFKA_PROPS_ACKS": "1"],
            commandLine: [try CommandLineOverride.define("app.kafka.props.bootstrap.servers=b:9092")]
        ).load()
        // Untouched defaults in reference order, then the file's in file order, then environment
        // (by name), then command line; an empty value removed batch.num.messages.
        #expect(configuration.kafkaProperties.map { "\($0.key)=\($0.value)" } == [
            "compression.type=none",
            "linger.ms=50", "compression.codec=gzip",
            "acks=1", "client.id=c1",
            "bootstrap.servers=b:9092",
        ])
    }

    @Test func equalSettingsFromDifferentLayersAreEqualConfigurations() throws {
        let file = try TemporaryPropertiesFile("server.port=4739\nkafka.topic=ipfix\n")
        #expect(try testSources(file: file.path).load() == KflowConfiguration.defaults)
        #expect(try testSources(environment: ["KFLOW_SERVER_PORT": "4740"]).load() != KflowConfiguration.defaults)
    }

    @Test func producerCountAboveOneIsANotice() throws {
        let (_, notices) = try testSources(environment: ["KFLOW_KAFKA_PRODUCERS": "4"]).loadWithNotices()
        #expect(notices.count == 1)
        #expect(notices.first?.hasPrefix("kafka.producers=4 (from environment KFLOW_KAFKA_PRODUCERS)") == true)
    }

    @Test func workerCountFollowsServerThreadsOrOnlineCPUs() throws {
        var configuration = KflowConfiguration.defaults
        #expect(configuration.workerCount(onlineCPUs: 6) == 6)
        configuration.serverThreads = 3
        #expect(configuration.workerCount(onlineCPUs: 6) == 3)
    }
}
