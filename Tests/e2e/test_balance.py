"""server.balance: with round-robin one exporter's datagrams reach every worker (a classic BPF program on
the SO_REUSEPORT group) and a template one worker learned is found by the others in its template
exchange; with hash (the default) the same exporter reaches one worker only."""

from __future__ import annotations

import time

from support import ipfix
from support.procs import free_port, wait_until
from test_outage import numbered_flows

EXPORT_TIME = 1_700_000_000
FLOWS = 6000
PER_MESSAGE = 10


def data_messages(flows, template_id=256):
    return [ipfix.message([ipfix.set_bytes(template_id, b"".join(f.encode() for f in flows[i:i + PER_MESSAGE]))],
                          EXPORT_TIME, sequence=i)
            for i in range(0, len(flows), PER_MESSAGE)]


def per_worker_datagrams(kflow) -> list[float]:
    return sorted(kflow.metrics().by_label("kflow_worker_datagrams_received_total", "pid").values())


def run_one_exporter(kflow, records):
    """The template alone in the exporter's first datagram (so one worker learns it), then data sets only,
    all from one source address and port."""
    source = ("127.0.0.1", free_port())
    kflow.send([ipfix.message([ipfix.template_set(256, ipfix.FLOW_FIELDS_V4)], EXPORT_TIME)], source=source)
    wait_until(lambda: kflow.metrics().total("kflow_templates_added_total") == 1, 10, what="the template learned")
    time.sleep(0.3)  # its worker publishes it to its exchange within 100 ms
    flows = numbered_flows(1, FLOWS)
    kflow.send(data_messages(flows), source=source)
    got = records(FLOWS, timeout=30)
    return sorted(r["srcp"] for r in got)


def test_round_robin_spreads_one_exporter_over_every_worker_and_every_flow_arrives_once(kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, server__balance="round-robin")
    ports = run_one_exporter(kflow, records)
    assert ports == list(range(1, FLOWS + 1)), f"{len(ports)} records, {len(set(ports))} distinct, expected {FLOWS} once each"
    metrics = kflow.metrics()
    spread = per_worker_datagrams(kflow)
    assert len(spread) == 2 and all(count > 0.3 * (FLOWS / PER_MESSAGE) for count in spread), \
        f"datagrams per worker: {spread} (one exporter, round-robin over 2 workers)"
    # The worker that did not get the template datagram took it from its sibling's exchange.
    assert metrics.total("kflow_templates_from_siblings_total") >= 1, metrics.totals()
    assert metrics.total("kflow_unknown_template_sets_total") == 0, metrics.totals()


def test_hash_keeps_one_exporter_on_one_worker(kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic)
    ports = run_one_exporter(kflow, records)
    assert ports == list(range(1, FLOWS + 1))
    assert per_worker_datagrams(kflow)[0] == 0, per_worker_datagrams(kflow)
