"""Every flow handed to Kafka ends in a counter: delivered, failed (purged at a stop whose flush timed
out), or lost with a worker that died with its queue. The broker outage is a SIGSTOPped Tansu (a restarted
memory-only Tansu would lose its topics); the accounting equation is checked from /metrics alone."""

from __future__ import annotations

import os
import re
import signal
import time

from support.procs import free_port, wait_until
from test_outage import numbered_flows, send_flows


def totals(kflow) -> dict[str, float]:
    metrics = kflow.metrics()
    names = ("produced_total", "delivered_total", "delivery_failed_total", "purged_total",
             "lost_in_dead_workers_total", "queue_depth", "records_produced_total", "records_delivered_total",
             "records_failed_total", "records_lost_in_dead_workers_total", "errors_total")
    out = {name: metrics.total(f"kflow_kafka_{name}") for name in names}
    out["restarts"] = metrics.total("kflow_worker_restarts_total")
    return out


def deliver_first_flows(kflow, count: int = 20) -> None:
    """Creates the topic and the producers' connections while the broker answers."""
    send_flows(kflow, numbered_flows(1000, count))
    wait_until(lambda: kflow.metrics().total("kflow_kafka_records_delivered_total") == count, 20,
               what=f"{count} first flows delivered")


def test_a_worker_killed_with_a_queue_counts_it_as_lost(kflow_factory, broker_factory, topic):
    broker = broker_factory().start()
    kflow = kflow_factory(broker.bootstrap, topic, server__threads=1, kafka__flush__timeout__ms=500)
    try:
        deliver_first_flows(kflow)
        broker.pause()
        stranded = numbered_flows(20000, 300)
        send_flows(kflow, stranded)
        wait_until(lambda: kflow.metrics().total("kflow_kafka_produced_total") == 20 + len(stranded), 10,
                   what="stranded flows produced")
        time.sleep(0.1)  # a few 20 ms publishes: the segment holds the final figures
        [worker] = kflow.worker_pids()
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: totals(kflow)["restarts"] == 1 and len(kflow.worker_pids()) == 1, 10,
                   what="the killed worker replaced")
        after = totals(kflow)
        assert after["lost_in_dead_workers_total"] == len(stranded), after
        assert after["records_lost_in_dead_workers_total"] == len(stranded), after
        # Nothing produced is unaccounted for (the new worker has produced nothing, so its queue is empty).
        assert after["produced_total"] == (after["delivered_total"] + after["delivery_failed_total"]
                                           + after["lost_in_dead_workers_total"]), after
    finally:
        broker.resume()


def test_a_stop_whose_flush_times_out_counts_every_record_as_delivered_or_purged(kflow_factory, broker_factory, topic):
    broker = broker_factory().start()
    # Batches of up to 5 records per message: the equation must hold in records as in messages.
    kflow = kflow_factory(broker.bootstrap, topic, server__threads=1, kafka__flush__timeout__ms=500,
                          output__batch__records=5)
    try:
        deliver_first_flows(kflow)
        first = totals(kflow)
        assert first["records_delivered_total"] == 20, first
        broker.pause()
        stranded = numbered_flows(30000, 300)
        send_flows(kflow, stranded)
        wait_until(lambda: kflow.metrics().total("kflow_kafka_records_produced_total") == 20 + len(stranded), 10,
                   what="stranded records produced")
        stranded_messages = totals(kflow)["produced_total"] - first["produced_total"]
        # A reload stops the old worker the way SIGTERM does (flush, bounded by kafka.flush.timeout.ms),
        # while the master stays up to show what the worker published last.
        kflow.send_signal(signal.SIGHUP)
        wait_until(lambda: totals(kflow)["purged_total"] > 0 and len(kflow.worker_pids()) == 1, 15,
                   what="the old generation drained and retired")
        after = totals(kflow)
        assert after["purged_total"] == stranded_messages, after
        assert after["delivery_failed_total"] == stranded_messages, after
        assert after["records_failed_total"] == len(stranded), after
        assert after["lost_in_dead_workers_total"] == 0, after
        assert after["produced_total"] == after["delivered_total"] + after["delivery_failed_total"], after
        assert after["records_produced_total"] == after["records_delivered_total"] + after["records_failed_total"], after
        assert after["restarts"] == 0, after
    finally:
        broker.resume()


def test_librdkafka_errors_are_counted_and_logged_once_per_code(kflow_factory, broker_factory, topic):
    broker = broker_factory(free_port())  # nobody listens: every connection attempt is refused
    kflow = kflow_factory(broker.bootstrap, topic, server__threads=1, kafka__flush__timeout__ms=500,
                          kafka__props__reconnect__backoff__ms=20, kafka__props__reconnect__backoff__max__ms=50)
    send_flows(kflow, numbered_flows(40000, 10))
    wait_until(lambda: kflow.metrics().total("kflow_kafka_errors_total") >= 2, 10, what="librdkafka errors counted")
    time.sleep(1.0)
    lines = [line for line in kflow.stderr_path.read_text(errors="replace").splitlines() if "librdkafka ERROR" in line]
    names = [line.split("librdkafka ERROR: ", 1)[1].split(":", 1)[0] for line in lines]
    assert names, "no librdkafka error was logged"
    # Within the 10 s interval each error code is logged once, however often it repeats.
    assert len(set(names)) == len(names), lines
    assert kflow.metrics().total("kflow_kafka_errors_total") >= len(lines)


def test_sigterm_with_the_broker_hung_purges_and_accounts_for_every_message(kflow_factory, broker_factory, topic):
    broker = broker_factory().start()
    kflow = kflow_factory(broker.bootstrap, topic, server__threads=2, kafka__flush__timeout__ms=500)
    try:
        deliver_first_flows(kflow)
        broker.pause()
        stranded = numbered_flows(50000, 300)
        send_flows(kflow, stranded)
        wait_until(lambda: kflow.metrics().total("kflow_kafka_produced_total") == 20 + len(stranded), 10,
                   what="stranded flows produced")
        started = time.monotonic()
        assert kflow.stop(timeout=10) == 0
        took = time.monotonic() - started
    finally:
        broker.resume()
    # The master is gone: its last line carries the totals it held after every worker drained.
    [line] = [l for l in kflow.stderr_path.read_text().splitlines() if "all workers stopped" in l]
    numbers = [int(n) for n in re.findall(r"\d+", line.split("Kafka messages:", 1)[1])]
    produced, delivered, failed, purged, lost, r_produced, r_delivered, r_failed, r_lost, dropped = numbers
    assert (produced, delivered, failed, purged, lost) == (320, 20, 300, 300, 0), line
    assert (r_produced, r_delivered, r_failed, r_lost, dropped) == (320, 20, 300, 0, 0), line
    assert took < 5, f"stop took {took:.1f} s with a 500 ms flush timeout"
