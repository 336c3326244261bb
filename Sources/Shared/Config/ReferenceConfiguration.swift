/// The built-in defaults, the lowest configuration layer. This text is the one source of truth: it is
/// parsed at start-up like any `.properties` file, printed by `kflow-master --print-reference` (which
/// packaging uses to install it as documentation), and every key it names is a known key.
/// Keep each setting's comment here; docs/CONFIGURATION.md explains the layers around it.
public enum ReferenceConfiguration {
    public static let text = #"""
# kflow reference configuration: every setting with its built-in default.
# Put only what you change in /etc/kflow/kflow.properties (Java .properties syntax, as KFlow's).
# Precedence, lowest to highest: these defaults < the file < KFLOW_* environment < command line.

# Address to receive IPFIX / NetFlow v9 / v5 on: any IPv4 or IPv6 literal; "::" is dual-stack.
server.host=::
# UDP port, 1-65535.
server.port=4739
# Worker processes, each with its own socket in an SO_REUSEPORT group and its own Kafka producer.
# 0 = one per online CPU.
server.threads=0
# SO_RCVBUF per worker socket, in bytes (the kernel caps it at net.core.rmem_max unless kflow runs
# with CAP_NET_ADMIN).
server.buffer.size=8388608
# Datagrams read per recvmmsg call, 1-1024.
server.batch.size=64
# After a read that found fewer than server.batch.size datagrams, a worker waits this many
# microseconds (0-100000) before it looks again, so datagrams trickling in from many exporters are
# read a batch per wake-up instead of one per wake-up. Adds at most this much latency; 0 = no wait.
server.receive.wait.us=8000

# Kafka topic the JSON records are written to.
kafka.topic=ipfix
# Accepted for KFlow compatibility: each kflow worker owns exactly one producer; use server.threads.
kafka.producers=1
# How long a stopping worker waits for undelivered messages, in milliseconds.
kafka.flush.timeout.ms=10000
# Anything under kafka.props. goes to librdkafka verbatim (see librdkafka's CONFIGURATION.md).
# An empty value removes a default below.
kafka.props.bootstrap.servers=localhost:9092
kafka.props.linger.ms=50
kafka.props.batch.num.messages=10000
kafka.props.compression.type=none

# Optional extra JSON fields, comma-separated (KFlow's fields are always present).
output.fields=
# Any other field, by configuration: output.field.NAME=[PEN/]IE[:type] writes IE (enterprise PEN's when
# given) under NAME, after the other fields, in the order of NAME; type is unsigned, signed, float,
# address, mac, string or hex (default: the IANA type, else unsigned for 1-8 octets, else hex). At most
# 8. Examples: output.field.app_name=96 (Cisco NBAR applicationName), output.field.rev_bytes=29305/1
# (RFC 5103 reverse octetDeltaCount). None by default.
# Records per Kafka message: 1 = one JSON object per message (KFlow's format); N > 1 = up to N
# newline-separated JSON objects per message.
output.batch.records=1

# Seconds a template stays valid without being refreshed.
templates.lifetime=1800
# Templates kept per exporter session (address and source port, all its observation domains
# together), and in total per worker.
templates.max.per.session=4096
templates.max.total=65536
# Exporter sessions tracked per worker.
exporters.max=10000

# Prometheus endpoint (/metrics); port 0 disables it. It answers anyone who can reach it (exporter
# addresses, volumes, versions): bind a management address where that matters.
metrics.host=0.0.0.0
metrics.port=8080

# A worker that has not signalled life for this long is restarted, in milliseconds.
worker.heartbeat.timeout.ms=5000
# How long a stopping worker may take (flush included) before it is killed, in milliseconds.
worker.stop.timeout.ms=15000

# debug, info, notice, warning or error.
log.level=info

# Senders whose datagrams are decoded: comma-separated CIDR blocks, IPv4 and IPv6 (e.g.
# 192.0.2.0/24,2001:db8::/32; a bare address is one host). Empty = every sender. Datagrams from
# anyone else are dropped before decoding and counted in kflow_datagrams_rejected_total.
server.allow=
# Fields in one template; a template with more is refused (counted).
templates.max.fields=1024
# Memory the cached templates may use per worker, and per exporter session, in bytes (counted by
# definition + compiled operations + 256 bytes each); templates beyond it are refused (counted).
templates.max.bytes=67108864
templates.max.bytes.per.session=4194304
# Exporter sessions (source ports) per exporter address: a host cycling ports evicts only its own.
exporters.max.per.address=64

# The Kafka message key of each record: none (no key: librdkafka spreads messages as it likes),
# exporter ("192.0.2.1"), exporter-domain ("192.0.2.1|256"), exporter:N ("192.0.2.1|k", k = 0..N-1
# from the conversation: one busy exporter over up to N partitions), flow ("6|10.0.0.1|443|10.0.0.2|51000")
# or flow-symmetric (both directions of a conversation share one key). With a key and no
# kafka.props.partitioner, partitioner=murmur2_random is set: Java clients place the same key on the
# same partition. In batches (output.batch.records > 1) all records of a message share its key.
kafka.key=none
# Directory where each worker keeps its templates, so a restart decodes at once instead of waiting
# for every exporter to re-send them (docs/DECODING.md). Empty = templates are not kept. The
# packaged service sets /var/lib/kflow.
templates.state.dir=
# UDP port for sFlow v5 (a second socket per worker on server.host, same server.allow); 0 = no
# sFlow listener. sFlow sent to server.port is recognised and decoded there too.
sflow.port=6343
# How the kernel spreads datagrams over the workers: hash (one exporter session always reaches the
# same worker) or round-robin (every datagram to any worker, so one busy exporter uses them all;
# templates and sampling state are shared between the workers, sequence loss is not counted).
server.balance=hash
# Kafka topic through which the nodes of a fleet share templates (compacted on real Kafka:
# cleanup.policy=compact); empty = not shared. A node then decodes data of an exporter that moved to
# it with the templates another node learned.
templates.topic=
# This node's name in templates.topic (its own messages are skipped); empty = hostname:server.port.
node.id=
# A biflow record (IPFIX RFC 5103 reverse counters, NSEL initiator/responder counters): split = two
# flows, the reverse one with addresses, ports and interfaces swapped (only when it has counters);
# forward = the forward direction only.
output.biflow=split
# Packet sampling. kflow learns each exporter's rates from its options data (per observation domain
# and per sampler/selector ID), NetFlow v5 headers and the records themselves; output.fields=sampling
# writes the rate in use.
# The rate (1-in-N) of flows whose exporter told none; 0 = none (such flows get no rate).
sampling.default=0
# Rates forced per exporter, over anything the exporter says: comma-separated CIDR=RATE entries,
# the first block holding the exporter wins (e.g. 10.0.0.0/8=1000,2001:db8::/32=512).
sampling.override=
# true: bytes and pkts are multiplied by the rate in use (estimated totals); false: as exported.
output.renormalize=false
"""#
}
