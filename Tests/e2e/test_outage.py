"""Kafka outages: flows received while the broker is unreachable wait in the producer's queue and arrive
once it is back; nothing crashes and no worker is restarted."""

from __future__ import annotations

import time

from support import ipfix
from support.ipfix import Flow
from support.kafka import TopicReader
from support.procs import free_port, wait_until

EXPORT_TIME = 1_700_000_000


def numbered_flows(first: int, count: int) -> list[Flow]:
    """Flows told apart by their source port, so every record can be accounted for."""
    return [Flow("10.9.0.1", "10.9.0.2", first + i, 443, 6, 0x10, 100 + i, 1) for i in range(count)]


def send_flows(kflow, flows: list[Flow], per_message: int = 10) -> None:
    messages = [ipfix.flow_message(flows[i:i + per_message], EXPORT_TIME, sequence=i)
                for i in range(0, len(flows), per_message)]
    kflow.send(messages, source=("127.0.0.1", 0))


def ports_of(records: list[dict]) -> list[int]:
    return sorted(record["srcp"] for record in records)


def kafka_counters(kflow) -> dict:
    metrics = kflow.metrics()
    return {name: metrics.total(f"kflow_kafka_{name}") for name in
            ("produced_total", "delivered_total", "delivery_failed_total", "queue_full_drops_total", "queue_depth")}


def wait_produced(kflow, total: int, timeout: float = 10.0) -> None:
    wait_until(lambda: kflow.metrics().total("kflow_kafka_produced_total") >= total, timeout,
               what=f"kflow_kafka_produced_total >= {total}")


def test_flows_received_before_the_broker_exists_arrive_once_it_starts(kflow_factory, broker_factory, topic):
    broker = broker_factory(free_port())  # a port nobody listens on yet
    kflow = kflow_factory(broker.bootstrap, topic, kafka__props__message__timeout__ms=120000)
    workers = kflow.worker_pids()

    flows = numbered_flows(20000, 300)
    send_flows(kflow, flows)
    wait_produced(kflow, len(flows))
    time.sleep(1.0)
    waiting = kflow.metrics()
    assert waiting.total("kflow_kafka_delivered_total") == 0
    # librdkafka's queue length also counts protocol requests waiting for the broker, hence >=.
    assert waiting.total("kflow_kafka_queue_depth") >= len(flows), "queued records not shown in the queue gauge"

    broker.start()
    reader = TopicReader(broker.bootstrap, topic)
    try:
        got = reader.read(len(flows), timeout=45, settle=2.0)
    finally:
        reader.close()
    assert ports_of(got) == [f.srcp for f in flows], (
        f"{len(got)} of {len(flows)} records arrived; kflow: {kafka_counters(kflow)}")

    wait_until(lambda: kflow.metrics().total("kflow_kafka_delivered_total") == len(flows), 10,
               what="all deliveries reported")
    wait_until(lambda: kflow.metrics().total("kflow_kafka_queue_depth") == 0, 10, what="producer queues empty")
    after = kflow.metrics()
    assert after.total("kflow_kafka_delivery_failed_total") == 0
    assert kflow.worker_pids() == workers, "a worker was restarted during the outage"


def test_flows_sent_while_the_broker_is_down_arrive_after_it_restarts(kflow_factory, broker_factory, topic):
    broker = broker_factory().start()
    kflow = kflow_factory(broker.bootstrap, topic, kafka__props__message__timeout__ms=120000)
    workers = kflow.worker_pids()

    before = numbered_flows(30000, 100)
    send_flows(kflow, before)
    reader = TopicReader(broker.bootstrap, topic)
    try:
        assert len(reader.read(len(before), timeout=20, settle=0.5)) == len(before)
    finally:
        reader.close()
    wait_until(lambda: kflow.metrics().total("kflow_kafka_delivered_total") == len(before), 10,
               what="deliveries of the first batch reported")

    broker.stop()  # memory-only: the first batch is gone with it, only what follows is counted
    during = numbered_flows(40000, 200)
    send_flows(kflow, during)
    wait_produced(kflow, len(before) + len(during))
    time.sleep(3.0)  # long enough for the producer to notice the broker is gone
    assert kflow.process.poll() is None

    broker.start()
    # A memory-only Tansu comes back without the topic, and it acknowledges produce requests for a topic it
    # does not have (the records vanish), so recreate it at once, before kflow's producers reconnect (their
    # reconnect backoff is >= 100 ms; this takes a few ms). A real broker keeps its topics across a restart.
    broker.create_topic(topic)
    after = numbered_flows(50000, 100)
    send_flows(kflow, after)
    reader = TopicReader(broker.bootstrap, topic)
    try:
        got = reader.read(len(during) + len(after), timeout=45, settle=2.0)
    finally:
        reader.close()
    assert ports_of(got) == [f.srcp for f in during + after], (
        f"{len(got)} of {len(during) + len(after)} records arrived; "
        f"gap flows missing: {len(set(f.srcp for f in during) - set(ports_of(got)))}; kflow: {kafka_counters(kflow)}")

    metrics = kflow.metrics()
    assert metrics.total("kflow_kafka_delivery_failed_total") == 0
    assert kflow.worker_pids() == workers, "a worker was restarted during the outage"
    assert metrics.get("kflow_workers") == 2
