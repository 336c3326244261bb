"""templates.topic: two kflow nodes (two configurations on one host) share templates through a Kafka topic.
An exporter sends its template to node A only, then moves to node B (same address and source port) and
sends data sets only: B decodes them with A's template. Without the topic B drops every one as unknown."""

from __future__ import annotations

import pytest

from support import ipfix
from support.procs import free_port, wait_until
from test_balance import EXPORT_TIME, data_messages
from test_outage import numbered_flows

FLOWS = 500


@pytest.mark.parametrize("shared", [True, False], ids=["shared-topic", "no-topic"])
def test_a_node_decodes_an_exporter_that_moved_to_it_with_the_template_another_node_learned(
        kflow_factory, broker, topic, records, shared):
    templates_topic = f"{topic}-templates" if shared else ""
    if shared:
        broker.create_topic(templates_topic, partitions=2)
    node_a = kflow_factory(broker.bootstrap, topic, templates__topic=templates_topic, node__id="node-a")
    node_b = kflow_factory(broker.bootstrap, topic, templates__topic=templates_topic, node__id="node-b")
    source = ("127.0.0.1", free_port())
    node_a.send([ipfix.message([ipfix.template_set(256, ipfix.FLOW_FIELDS_V4)], EXPORT_TIME)], source=source)
    wait_until(lambda: node_a.metrics().total("kflow_templates_added_total") == 1, 10, what="node A learned the template")
    if shared:
        wait_until(lambda: node_a.metrics().total("kflow_fleet_templates_published_total") == 1, 10,
                   what="node A published the template")
        wait_until(lambda: node_b.metrics().total("kflow_fleet_templates_imported_total") == 1, 15,
                   what="node B imported it from the topic")
        # B's reader (worker 0) publishes it to its exchange within 100 ms, where worker 1 looks.
        # Held only by import until data arrives: counted apart from the templates of sessions heard.
        wait_until(lambda: node_b.metrics().total("kflow_templates_imported_only") >= 1, 5, what="node B holds it")
        import time
        time.sleep(0.3)

    datagrams = FLOWS // 10
    node_b.send(data_messages(numbered_flows(1, FLOWS)), source=source)
    metrics_b = lambda: node_b.metrics()
    if shared:
        got = records(FLOWS, timeout=20)
        assert sorted(r["srcp"] for r in got) == list(range(1, FLOWS + 1))
        assert metrics_b().total("kflow_unknown_template_sets_total") == 0, metrics_b().totals()
        # Node A skips its own message, back from the topic.
        assert node_a.metrics().total("kflow_fleet_messages_received_total") == 0
        assert node_b.metrics().total("kflow_fleet_messages_rejected_total") == 0
    else:
        wait_until(lambda: metrics_b().total("kflow_datagrams_received_total") == datagrams, 10,
                   what="node B received every datagram")
        wait_until(lambda: metrics_b().total("kflow_unknown_template_sets_total") == datagrams, 5,
                   what="every data set counted unknown")
