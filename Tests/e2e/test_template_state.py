"""Templates that survive restarts (`templates.state.dir`), and asking a node what it knows (`/exporters`,
`/templates`, the active gauges).

Restart: templates learned, kflow stopped with SIGTERM and started again, then data sets sent with no
template: with a state directory every one decodes (source `disk`), without one every one is dropped as
unknown-template (the figure before this feature). A corrupt, foreign or group-writable state file is
rejected, logged and counted, never used."""

from __future__ import annotations

import json
import os

import pytest

from support import ipfix
from support.ipfix import Flow
from support.kafka import TopicReader
from support.metrics import fetch
from support.procs import free_port, wait_until

EXPORT_TIME = 1_700_000_000
FIELD_NAMES = ["sourceIPv4Address", "destinationIPv4Address", "sourceTransportPort", "destinationTransportPort",
               "protocolIdentifier", "tcpControlBits", "octetDeltaCount", "packetDeltaCount"]


def flows(base: int, count: int) -> list[Flow]:
    return [Flow(f"10.{base}.0.1", "10.200.0.2", 30000 + i, 443, 6, 0x18, 1000 + i, 2) for i in range(count)]


def get_json(kflow, path: str) -> dict:
    status, body = fetch(f"http://127.0.0.1:{kflow.metrics_port}{path}")
    assert status == 200, f"GET {path} answered {status}: {body[:200]}"
    return json.loads(body)


def delivered(kflow, count: int) -> None:
    wait_until(lambda: kflow.metrics().total("kflow_kafka_delivered_total") >= count, 15, what=f"{count} records delivered")


class Exporter:
    """One exporter session: a fixed source address and port, so it is the same session after kflow restarts."""

    def __init__(self, address: str, domain: int = 7):
        self.source = (address, free_port())
        self.domain = domain

    def templates_and_data(self, kflow, count: int) -> None:
        kflow.send([ipfix.flow_message(flows(1, count), EXPORT_TIME, domain=self.domain)], source=self.source)

    def data_only(self, kflow, count: int) -> None:
        kflow.send([ipfix.flow_message(flows(2, count), EXPORT_TIME, domain=self.domain, with_template=False)],
                   source=self.source)


@pytest.mark.parametrize("keep", [True, False], ids=["state-dir", "no-state-dir"])
def test_templates_survive_a_restart(kflow_factory, broker, topic, tmp_path, keep):
    state = tmp_path / "state"
    settings = {"templates__state__dir": str(state)} if keep else {}
    kflow = kflow_factory(broker.bootstrap, topic, **settings)
    exporter = Exporter("127.0.0.2")
    exporter.templates_and_data(kflow, 10)
    delivered(kflow, 10)
    assert kflow.stop(timeout=25) == 0
    if keep:
        assert sorted(os.listdir(state)) == ["templates-0.kfts", "templates-1.kfts"]
        assert all((state / name).stat().st_mode & 0o077 == 0 for name in os.listdir(state))

    kflow.start()
    exporter.data_only(kflow, 20)
    reader = TopicReader(broker.bootstrap, topic)
    try:
        if keep:
            records = reader.read(30, timeout=20)
            assert len(records) == 30, f"{len(records)} of 30 records"
            assert sorted(r["srcp"] for r in records if r["src"] == "10.2.0.1") == [30000 + i for i in range(20)]
            metrics = kflow.metrics()
            assert metrics.total("kflow_unknown_template_sets_total") == 0
            assert metrics.total("kflow_template_state_rejected_total") == 0
            # Each worker read both files: the union; one template in the node.
            assert metrics.total("kflow_templates_imported_total") >= 2
            templates = get_json(kflow, "/templates")["sessions"]
            assert [(s["exporter"], s["port"]) for s in templates] == [exporter.source]
            assert [t["source"] for t in templates[0]["templates"]] == ["disk"]
        else:
            wait_until(lambda: kflow.metrics().total("kflow_unknown_template_sets_total") >= 1, 10,
                       what="the data set counted unknown-template")
            records = reader.read(10, timeout=3)
            assert len(records) == 10, "a data set without its template was decoded"
    finally:
        reader.close()


def test_corrupt_foreign_and_unsafe_state_files_are_rejected_and_counted(kflow_factory, broker, topic, tmp_path):
    state = tmp_path / "state"
    kflow = kflow_factory(broker.bootstrap, topic, templates__state__dir=str(state), server__threads=1)
    exporter = Exporter("127.0.0.3")
    exporter.templates_and_data(kflow, 5)
    delivered(kflow, 5)
    assert kflow.stop(timeout=25) == 0
    good = (state / "templates-0.kfts").read_bytes()
    # One octet flipped in the body: the checksum no longer matches.
    damaged = bytearray(good)
    damaged[-3] ^= 0x40
    (state / "templates-0.kfts").write_bytes(bytes(damaged))
    (state / "templates-0.kfts").chmod(0o600)
    # Not a snapshot at all.
    (state / "templates-5.kfts").write_bytes(b"PK\x03\x04 not kflow's" * 10)
    (state / "templates-5.kfts").chmod(0o600)
    # A valid snapshot anyone in the group could have written.
    (state / "templates-6.kfts").write_bytes(good)
    (state / "templates-6.kfts").chmod(0o664)

    kflow.start()
    exporter.data_only(kflow, 5)
    wait_until(lambda: kflow.metrics().total("kflow_unknown_template_sets_total") >= 1, 10,
               what="the data set counted unknown-template (no template trusted)")
    metrics = kflow.metrics()
    assert metrics.total("kflow_template_state_rejected_total") == 3
    assert metrics.total("kflow_templates_imported_total") == 0
    log = kflow.stderr_path.read_text()
    for name, reason in [("templates-0.kfts", "checksum"), ("templates-5.kfts", "magic"),
                         ("templates-6.kfts", "writable by group or others")]:
        assert any(name in line and "rejected" in line and reason in line for line in log.splitlines()), \
            f"no log line rejecting {name} for {reason!r}"


def test_exporters_and_templates_answer_what_was_sent(kflow_factory, broker, topic):
    kflow = kflow_factory(broker.bootstrap, topic)
    sent = {Exporter("127.0.0.4", domain=1): 3, Exporter("127.0.0.5", domain=70000): 5}
    for exporter, datagrams in sent.items():
        for _ in range(datagrams):
            exporter.templates_and_data(kflow, 4)
    delivered(kflow, 4 * 8)
    wait_until(lambda: sum(e["datagrams"] for e in get_json(kflow, "/exporters")["exporters"]) == 8, 5,
               what="the exporter tables published")
    answer = get_json(kflow, "/exporters")
    assert answer["truncated"] is False
    by_session = {(e["address"], e["port"]): e for e in answer["exporters"] if e["heard"]}
    assert set(by_session) == {exporter.source for exporter in sent}
    for exporter, datagrams in sent.items():
        entry = by_session[exporter.source]
        assert entry["datagrams"] == datagrams and entry["flows"] == 4 * datagrams
        assert [d["id"] for d in entry["domains"]] == [exporter.domain]
        assert entry["templates"] == 1 and entry["unknown_template_sets"] == 0
        assert entry["first_seen"] is not None and entry["first_seen"] <= entry["last_seen"]
        assert len(entry["workers"]) == 1
    # The gauges are counted with the exporter table but reach the segment with the next counter
    # publish (every 20 ms): wait for them rather than race it.
    wait_until(lambda: kflow.metrics().total("kflow_exporters_active") == 2, 5, what="2 exporters active")
    metrics = kflow.metrics()
    assert metrics.total("kflow_exporters_active") == 2
    assert metrics.total("kflow_templates_active") == 2

    sessions = get_json(kflow, "/templates")["sessions"]
    assert {(s["exporter"], s["port"]) for s in sessions} == {exporter.source for exporter in sent}
    for session in sessions:
        (template,) = session["templates"]
        exporter = next(e for e in sent if e.source == (session["exporter"], session["port"]))
        assert (template["domain"], template["id"], template["protocol"], template["options"]) == (exporter.domain, 256, "ipfix", False)
        assert template["source"] == "wire"
        assert [f["name"] for f in template["fields"]] == FIELD_NAMES
        assert [(f["id"], f["length"]) for f in template["fields"]] == ipfix.FLOW_FIELDS_V4
        assert 0 <= template["age_seconds"] < 30


def test_active_gauges_count_each_exporter_once(kflow_factory, broker, topic):
    """1,000 exporter sessions over 2 workers, sent right after start while the workers still import each
    other's templates: each session counted once in the active gauges, the imported copies apart."""
    kflow = kflow_factory(broker.bootstrap, topic)
    count = 1000
    payloads = [ipfix.flow_message(flows(3, 1), EXPORT_TIME)]
    for index in range(count):  # 1,000 addresses: exporters.max.per.address bounds sessions of one address
        kflow.send(payloads, source=(f"127.1.{index // 250}.{index % 250 + 1}", 0))
    delivered(kflow, count)

    seen = {}

    def settled():
        m = kflow.metrics()
        seen.update(exporters=m.total("kflow_exporters_active"), templates=m.total("kflow_templates_active"))
        return seen["exporters"] == count and seen["templates"] == count
    try:
        wait_until(settled, 10, what="1,000 active exporters and templates")
    except TimeoutError as error:
        raise AssertionError(f"{error}: last read {seen}") from None
    metrics = kflow.metrics()
    # Sessions a worker holds from its sibling's snapshot are shown apart, not as active.
    print("gauges:", {name: metrics.total(name) for name in ("kflow_exporters_active", "kflow_templates_active", "kflow_exporters_imported_only", "kflow_templates_imported_only")})
    assert metrics.total("kflow_exporters_imported_only") == metrics.total("kflow_templates_imported_only")
