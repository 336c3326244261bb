"""Kafka message keys (`kafka.key`): every record read back carries the key its mode promises, and with
the default `murmur2_random` partitioner each message sits on the partition Kafka's Java client computes
for its key (murmur2 implemented here from Kafka's `Utils.murmur2`, not taken from kflow)."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

from support import ipfix
from support.ipfix import Flow
from support.kafka import TopicReader

EXPORT_TIME = 1_700_000_000
PARTITIONS = 8
EXPORTERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
DOMAINS = [1, 70000]


def murmur2(data: bytes) -> int:
    """Kafka's org.apache.kafka.common.utils.Utils.murmur2 (MurmurHash2, seed 0x9747b28c, 32-bit)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_murmur2_matches_kafkas_published_vectors():
    # Kafka's UtilsTest.testMurmur2: the Java int result of Utils.murmur2 for these inputs.
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
               b"abc": 479470107}
    for data, expected in vectors.items():
        assert murmur2(data) == expected & 0xFFFFFFFF, data


def conversations() -> list[Flow]:
    """Both directions of 12 conversations over IPv4 and IPv6, one of them between equal addresses."""
    flows = []
    for index in range(12):
        if index % 3 == 2:
            a, b = f"2001:db8::{index + 1:x}", "2001:db8::ff"
        else:
            a, b = f"10.0.{index}.1", f"10.1.0.{index % 4}"
        forward = Flow(a, b, 40000 + index, 443, 6 if index % 2 else 17, 0, 100 + index, 1)
        flows += [forward, Flow(b, a, forward.dstp, forward.srcp, forward.proto, 0, 200 + index, 2)]
    flows.append(Flow("10.9.9.9", "10.9.9.9", 2000, 1000, 6, 0, 1, 1))  # endpoints differ by port only
    return flows


def send_all(kflow) -> int:
    """From each exporter, per domain, IPv4 and IPv6 flows in separate messages; returns the flow count."""
    flows = conversations()
    sent = 0
    for exporter in EXPORTERS:
        payloads = []
        for domain in DOMAINS:
            v4 = [flow for flow in flows if not flow.is_v6]
            v6 = [flow for flow in flows if flow.is_v6]
            payloads.append(ipfix.flow_message(v4, EXPORT_TIME, template_id=256, domain=domain))
            payloads.append(ipfix.flow_message(v6, EXPORT_TIME, template_id=257, domain=domain))
            sent += len(v4) + len(v6)
        kflow.send(payloads, source=(exporter, 0))
    return sent


def endpoint(address: str, port: int) -> tuple[int, int]:
    return int(ipaddress.ip_address(address)), port


def expected_key(mode: str, record: dict, domain: int) -> str | None:
    flow = f"{record['proto']}|{record['src']}|{record['srcp']}|{record['dst']}|{record['dstp']}"
    if mode == "exporter":
        return record["dvc"]
    if mode == "exporter-domain":
        return f"{record['dvc']}|{domain}"
    if mode == "flow":
        return flow
    if mode == "flow-symmetric":
        if endpoint(record["src"], record["srcp"]) <= endpoint(record["dst"], record["dstp"]):
            return flow
        return f"{record['proto']}|{record['dst']}|{record['dstp']}|{record['src']}|{record['srcp']}"
    return None


def read_keyed(broker, topic: str, expected: int, timeout: float = 20.0) -> list[tuple[int, str | None, list[dict]]]:
    """(partition, key, records) of every message, read until `expected` records arrived (+1 s for extras)."""
    reader = TopicReader(broker.bootstrap, topic, partitions=PARTITIONS)
    messages = []
    try:
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < (settle_until or deadline):
            for message in reader.consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is None:
                    key = message.key()
                    messages.append((message.partition(), None if key is None else key.decode(),
                                     [json.loads(line) for line in message.value().splitlines()]))
            if settle_until is None and sum(len(batch) for _, _, batch in messages) >= expected:
                settle_until = time.monotonic() + 1.0
        return messages
    finally:
        reader.close()


@pytest.mark.parametrize("mode", ["none", "exporter", "exporter-domain", "flow", "flow-symmetric"])
def test_each_key_mode_writes_its_key_on_the_java_partition(kflow_factory, broker, topic, mode):
    broker.create_topic(topic, PARTITIONS)
    kflow = kflow_factory(broker.bootstrap, topic, kafka__key=mode, output__fields="domain")
    sent = send_all(kflow)
    messages = read_keyed(broker, topic, sent)
    records = [record for _, _, batch in messages for record in batch]
    assert len(records) == sent, f"{len(records)} of {sent} records arrived"
    for partition, key, batch in messages:
        assert len(batch) == 1
        want = expected_key(mode, batch[0], batch[0]["domain"])
        assert key == want, f"{mode}: key {key!r}, expected {want!r} for {batch[0]}"
        if key is not None:
            assert partition == java_partition(key.encode(), PARTITIONS), f"{key!r} on partition {partition}"
    if mode != "none":
        assert len({partition for partition, _, _ in messages}) > 1, "every key on one partition: nothing was tested"


def test_exporter_spread_keeps_conversations_together_over_n_keys(kflow_factory, broker, topic):
    broker.create_topic(topic, PARTITIONS)
    kflow = kflow_factory(broker.bootstrap, topic, kafka__key="exporter:4")
    sent = send_all(kflow)
    messages = read_keyed(broker, topic, sent)
    assert sum(len(batch) for _, _, batch in messages) == sent
    conversation_keys: dict[tuple, set[str]] = {}
    per_exporter: dict[str, set[str]] = {}
    for partition, key, (record,) in messages:
        address, _, k = key.rpartition("|")
        assert address == record["dvc"] and k in {"0", "1", "2", "3"}, key
        assert partition == java_partition(key.encode(), PARTITIONS)
        ends = tuple(sorted([(record["src"], record["srcp"]), (record["dst"], record["dstp"])]))
        conversation_keys.setdefault((record["dvc"], record["proto"], ends), set()).add(key)
        per_exporter.setdefault(record["dvc"], set()).add(key)
    assert all(len(keys) == 1 for keys in conversation_keys.values()), "a conversation was split over keys"
    assert all(len(keys) > 1 for keys in per_exporter.values()), f"an exporter was not spread: {per_exporter}"


def test_batched_messages_hold_records_of_their_key_only(kflow_factory, broker, topic):
    broker.create_topic(topic, PARTITIONS)
    kflow = kflow_factory(broker.bootstrap, topic, kafka__key="exporter-domain", output__fields="domain",
                          output__batch__records=50)
    sent = send_all(kflow)
    messages = read_keyed(broker, topic, sent)
    assert sum(len(batch) for _, _, batch in messages) == sent
    assert any(len(batch) > 1 for _, _, batch in messages), "no message held more than one record"
    for partition, key, batch in messages:
        assert {f"{record['dvc']}|{record['domain']}" for record in batch} == {key}
        assert partition == java_partition(key.encode(), PARTITIONS)


def test_an_explicit_partitioner_is_kept(kflow_factory, broker, topic):
    """kafka.props.partitioner wins over the murmur2 default: with librdkafka's CRC32 partitioner the
    placement differs from Java's for at least one of these keys."""
    broker.create_topic(topic, PARTITIONS)
    kflow = kflow_factory(broker.bootstrap, topic, kafka__key="flow", kafka__props__partitioner="consistent")
    sent = send_all(kflow)
    messages = read_keyed(broker, topic, sent)
    assert sum(len(batch) for _, _, batch in messages) == sent
    assert any(partition != java_partition(key.encode(), PARTITIONS) for partition, key, _ in messages)


def test_unkeyed_records_are_spread_over_the_partitions(kflow_factory, broker, topic):
    """Without a key each receive batch goes to one partition (one produce_batch call), the next batch to
    the next partition: over a few batches several partitions fill, and every record arrives once."""
    broker.create_topic(topic, PARTITIONS)
    kflow = kflow_factory(broker.bootstrap, topic, kafka__key="none")
    time.sleep(1.0)  # the producer learns the partition count from metadata meanwhile
    sent = 0
    for _ in range(6):
        sent += send_all(kflow)
        time.sleep(0.2)
    messages = read_keyed(broker, topic, sent)
    assert sum(len(batch) for _, _, batch in messages) == sent
    assert len({partition for partition, _, _ in messages}) >= 3, "records were not spread over the partitions"
