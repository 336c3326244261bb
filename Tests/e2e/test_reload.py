"""SIGHUP reloads as operators rely on them: a valid configuration is applied by a new generation of
workers on the same sockets without losing a flow at steady load; an invalid one is refused, named, and
the running configuration keeps working."""

from __future__ import annotations

import json
import signal
import time

import pytest

from support import ipfix
from support.ipfix import Flow
from support.kafka import TopicReader
from support.loadgen import IpfixGen, build_ipfix_gen
from support.procs import tail, wait_until

EXPORT_TIME = 1_700_000_000


@pytest.fixture(scope="module")
def ipfix_gen(tmp_path_factory):
    return build_ipfix_gen(tmp_path_factory.mktemp("ipfix-gen"))


class FlowKeyReader(TopicReader):
    """Reads a topic in batches and keeps only what the loss check needs: one (src, srcp) key per record
    (ipfix-gen makes that pair unique per flow) and the JSON keys seen."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(bootstrap, topic)
        self.keys: list[tuple[str, int]] = []
        self.field_sets: set[tuple[str, ...]] = set()

    def read_keys(self, count: int, timeout: float, settle: float = 2.0) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        settle_until = None
        next_metadata = 0.0
        while True:
            now = time.monotonic()
            if len(self.keys) >= count and settle_until is None:
                settle_until = now + settle
            if (settle_until is not None and now >= settle_until) or now >= deadline:
                return self.keys
            if now >= next_metadata:
                self._assign_new_partitions()
                next_metadata = now + 1.0
            if not self.assigned:
                time.sleep(0.2)
                continue
            for message in self.consumer.consume(num_messages=5000, timeout=0.2):
                if message.error() is not None:
                    continue
                record = json.loads(message.value())
                self.keys.append((record["src"], record["srcp"]))
                self.field_sets.add(tuple(record))


def read_keys(bootstrap: str, topic: str, count: int, timeout: float) -> FlowKeyReader:
    reader = FlowKeyReader(bootstrap, topic)
    try:
        reader.read_keys(count, timeout)
    finally:
        reader.close()
    return reader


def reload_with(kflow, **changes) -> None:
    """Rewrites the properties file with `changes` (dots as `__`) and sends SIGHUP."""
    for key, value in changes.items():
        kflow.properties[key.replace("__", ".")] = value
    kflow.config.write_text("".join(f"{k}={v}\n" for k, v in kflow.properties.items()))
    kflow.send_signal(signal.SIGHUP)


def reloads(kflow, result: str) -> float:
    return kflow.metrics().get("kflow_reloads_total", 0.0, result=result)


def wait_reload_applied(kflow, successes: int, timeout: float = 20.0) -> None:
    """Until `successes` reloads have completed and exactly the configured number of workers run."""
    def applied():
        m = kflow.metrics()
        return (m.get("kflow_reloads_total", result="success") == successes
                and len(kflow.worker_pids()) == kflow.threads and m.get("kflow_workers") == kflow.threads)
    try:
        wait_until(applied, timeout, 0.1, f"reload #{successes} applied with {kflow.threads} worker(s)")
    except TimeoutError as error:
        m = kflow.metrics()
        raise AssertionError(
            f"{error}: reloads {m.by_label('kflow_reloads_total', 'result')}, kflow_workers "
            f"{m.get('kflow_workers')}, worker pids {kflow.worker_pids()}\n{tail(kflow.stderr_path, 30)}") from None


def assert_every_flow_arrived(kflow, sent: int, keys: list[tuple[str, int]], what: str) -> None:
    metrics = kflow.metrics()
    drops = metrics.total("server_packet_drops")
    assert drops == 0, (f"the kernel dropped {drops:.0f} datagrams on kflow's sockets, so a loss check means "
                        f"nothing; expected 0 (lower the rate)")
    unknown = metrics.total("kflow_unknown_template_sets_total")
    distinct = len(set(keys))
    assert len(keys) == sent and distinct == sent, (
        f"{what}: expected {sent} records (one per flow sent), got {len(keys)} ({distinct} distinct, "
        f"{len(keys) - distinct} duplicates); kflow_flows_decoded_total "
        f"{metrics.total('kflow_flows_decoded_total'):.0f}, kflow_unknown_template_sets_total {unknown:.0f}, "
        f"kflow_kafka_delivery_failed_total {metrics.total('kflow_kafka_delivery_failed_total'):.0f}")


@pytest.mark.parametrize("template_refresh", [0, 5])
def test_no_flow_is_lost_across_reloads_at_steady_load(kflow_factory, broker, topic, ipfix_gen, template_refresh):
    """~300k flows at ~50k flows/s while SIGHUP applies a kafka.props change, 2 -> 3 -> 1 -> 2 workers and
    new output fields: every flow ipfix-gen sent is in Kafka exactly once."""
    kflow = kflow_factory(broker.bootstrap, topic, server__buffer__size=4 * 1024 * 1024)
    generator = IpfixGen(ipfix_gen, kflow.port, flows=300_000, rate=50_000, exporters=16,
                         template_refresh=template_refresh).start()
    steps = [
        {"kafka__props__linger__ms": 20},
        {"server__threads": 3},
        {"server__threads": 1},
        {"server__threads": 2},
        {"output__fields": "start,end"},
    ]
    try:
        for done, change in enumerate(steps, 1):
            time.sleep(0.6)
            reload_with(kflow, **change)
            wait_reload_applied(kflow, done)
        sent = generator.wait(timeout=60)
    finally:
        generator.stop()
    assert generator.running() is False
    sent_flows = generator.flows_sent
    reader = read_keys(broker.bootstrap, topic, sent_flows, timeout=90)
    assert_every_flow_arrived(kflow, sent_flows, reader.keys, f"{len(steps)} reloads during {sent['seconds']} s of load")
    assert any("start" in fields and "end" in fields for fields in reader.field_sets), (
        f"output.fields=start,end never took effect; JSON key sets seen: {sorted(reader.field_sets)}")
