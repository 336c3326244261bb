"""Process lifecycle: a signal flushes what the producers still hold, the master exits 0, no worker is left
behind; and both workers of the SO_REUSEPORT group take traffic."""

from __future__ import annotations

import os
import signal
import time

import pytest

from support import ipfix
from support.ipfix import Flow
from support.kafka import read_records
from support.metrics import fetch
from support.procs import alive, wait_until

EXPORT_TIME = 1_700_000_000


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_flushes_lingering_records_and_exits_zero(kflow_factory, broker, topic, signum):
    # linger.ms far above the time the test takes to send and signal: only a flush at exit can deliver.
    kflow = kflow_factory(broker.bootstrap, topic, kafka__props__linger__ms=5000)
    workers = kflow.worker_pids()
    flows = [Flow("10.7.0.1", "10.7.0.2", 10000 + i, 53, 17, 0, 80 + i, 1) for i in range(200)]
    # From many source ports, so that both workers hold records when the signal comes.
    for i in range(0, len(flows), 5):
        kflow.send([ipfix.flow_message(flows[i:i + 5], EXPORT_TIME)])
    wait_until(lambda: kflow.metrics().total("kflow_kafka_produced_total") == len(flows), 5,
               what="all records handed to the producers")
    held = kflow.metrics()
    assert held.total("kflow_kafka_delivered_total") == 0, "linger.ms did not hold the records back"

    started = time.monotonic()
    code = kflow.stop(timeout=25, signum=signum)
    took = time.monotonic() - started
    assert code == 0, f"kflow-master exited with {code}"
    assert kflow.stray_pids == [], f"processes outlived the master: {kflow.stray_pids}"
    assert not any(alive(pid) for pid in workers), "a worker is still running"
    print(f"{signum.name}: master exited in {took:.2f} s")

    got = read_records(broker.bootstrap, topic, len(flows), timeout=15, settle=1.0)
    assert sorted(r["srcp"] for r in got) == [f.srcp for f in flows], f"{len(got)} of {len(flows)} records"


def test_both_workers_take_traffic_from_many_source_ports(kflow_factory, broker, topic):
    """Pauses one worker at a time (SIGSTOP) while datagrams arrive from many source ports: the paused
    worker's socket must fill (so SO_REUSEPORT gives it a share), and once resumed it must drain it, so
    every record reaches Kafka."""
    # A paused worker misses heartbeats; the default 5 s is close to what a slow machine needs here.
    kflow = kflow_factory(broker.bootstrap, topic, server__buffer__size=4 * 1024 * 1024,
                          worker__heartbeat__timeout__ms=60000)
    workers = kflow.worker_pids()
    assert len(workers) == 2
    filled_sockets = []
    sent = []
    for round_index, paused in enumerate(workers):
        flows = [Flow("10.8.0.1", "10.8.0.2", 20000 + 1000 * round_index + i, 80, 6, 0x18, 1000, 2)
                 for i in range(300)]
        os.kill(paused, signal.SIGSTOP)
        try:
            for i in range(0, len(flows), 3):
                kflow.send([ipfix.flow_message(flows[i:i + 3], EXPORT_TIME)])  # a new source port each time
            time.sleep(0.5)
            queues = kflow.metrics().by_label("server_receive_queue", "socket")
        finally:
            os.kill(paused, signal.SIGCONT)
        sent += flows
        assert len(queues) == 2, f"expected 2 sockets in server_receive_queue, got {queues}"
        filled = [name for name, depth in queues.items() if depth > 0]
        assert len(filled) == 1, f"with worker {paused} paused, receive queues were {queues}"
        filled_sockets += filled

    assert len(set(filled_sockets)) == 2, f"the same socket filled both times: {filled_sockets}"
    got = read_records(broker.bootstrap, topic, len(sent), timeout=30)
    assert sorted(r["srcp"] for r in got) == sorted(f.srcp for f in sent), f"{len(got)} of {len(sent)} records"
    assert kflow.worker_pids() == workers, "a paused worker was restarted"


def test_healthz_answers_200_once_the_workers_heartbeat(kflow):
    # kflow_workers counts started workers; /healthz also wants a fresh heartbeat from each, which can lag
    # on a loaded machine: allow it a bound, then it must stay healthy.
    started = time.monotonic()
    answers = []

    def healthy() -> bool:
        answers.append(fetch(f"http://127.0.0.1:{kflow.metrics_port}/healthz"))
        return answers[-1][0] == 200

    try:
        wait_until(healthy, 10.0, 0.1)
    except TimeoutError:
        pytest.fail(f"/healthz never answered 200 within 10 s; last answer {answers[-1]}")
    print(f"/healthz 200 after {time.monotonic() - started:.2f} s ({len(answers)} requests)")
    for _ in range(10):
        time.sleep(0.2)
        status, body = fetch(f"http://127.0.0.1:{kflow.metrics_port}/healthz")
        assert status == 200, f"/healthz turned {status} while idle: {body}"


def test_metrics_endpoint_exposes_the_documented_series(kflow):
    kflow.send([ipfix.flow_message([Flow("10.6.0.1", "10.6.0.2", 1, 2, 17, 0, 10, 1)], EXPORT_TIME)])
    wait_until(lambda: kflow.metrics().total("kflow_flows_decoded_total") == 1, 5, what="one flow decoded")
    names = kflow.metrics().names()
    documented = {
        "kflow_datagrams_received_total", "kflow_flows_decoded_total", "kflow_unknown_template_sets_total",
        "kflow_templates_active", "kflow_kafka_produced_total", "kflow_kafka_delivered_total",
        "kflow_kafka_delivery_failed_total", "kflow_kafka_queue_full_drops_total", "kflow_kafka_queue_depth",
        "kflow_workers", "server_packet_drops", "server_receive_queue",
    }
    assert documented <= names, f"missing series: {sorted(documented - names)}"
    # A clean start and one valid message leave every error counter at zero (nothing counted spuriously,
    # e.g. a sibling's still-empty template exchange read as a bad snapshot).
    errors = {reason: value for reason, value in kflow.metrics().by_label("kflow_decode_errors_total", "reason").items() if value}
    assert errors == {}, f"decode errors after a clean start and one valid message: {errors}"
