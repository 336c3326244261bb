"""Sampling rates per sampler: real routers' packets from the shared corpus (Cisco IOS-XR/NCS-55 v9
samplers, Cisco IOS-XE IPFIX selectors, Nokia IPFIX with samplingPacketSpace, Juniper options) and a
crafted IPFIX stream, through kflow over UDP. The rate each flow must carry is worked out from the
values tshark decodes in the same packets (options data, then the flow's own sampler ID)."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from support import corpus
from test_config import run_master
from test_corpus_replay import Replayer, match

pytestmark = pytest.mark.skipif(corpus.corpus_dir() is None, reason="shared corpus not found")

BASE_KEYS = ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"]


def rate_from(values: dict[str, str]) -> int:
    """1-in-N from one record's tshark fields (RFC 5475/5477 and NetFlow v9 meanings); 0 when none.
    random n-out-of-N: population / size; systematic count-based: (interval + space) / interval, or
    the interval alone without a space; else samplingInterval / samplerRandomInterval."""
    def number(name: str) -> int:
        return int(values.get(name, "0") or "0")

    size, population = number("sampling_size"), number("sampling_population")
    if size and population:
        return round(population / size)
    interval = number("sampling_packet_interval")
    if interval:
        return round((interval + number("sampling_packet_space")) / interval) if "sampling_packet_space" in values else interval
    return number("sampling_interval") or number("sampler_random_interval")


def expected_rates(sequence: corpus.Sequence) -> list[int]:
    """The rate of each flow record, in the order tshark lists them: options records set their
    domain's rate (no sampler ID) or their sampler's; a flow takes its own rate, else its sampler's,
    else the domain's (or its only sampler's)."""
    domains: dict[tuple, dict] = {}
    rates = []
    options_ids = sequence.options_template_ids()
    for index, packet in enumerate(sequence.truth["packets"]):
        header = packet["header"]
        key = (sequence.exporters[index], header.get("od_id", header.get("source_id")))
        state = domains.setdefault(key, {"domain": 0, "samplers": {}})
        for record in packet["records"]:
            values = {field[0]: field[1] for field in record["fields"] if len(field) < 3 or "N" not in field[2]}
            sampler = values.get("selector_id", values.get("sampler_id"))
            rate = rate_from(values)
            if record["set_id"] in options_ids:
                if rate and sampler is not None:
                    state["samplers"][int(sampler)] = rate
                elif rate:
                    state["domain"] = rate
                continue
            if not rate and sampler is not None:
                rate = state["samplers"].get(int(sampler), 0)
            if not rate:
                rate = state["domain"] or (next(iter(state["samplers"].values())) if len(state["samplers"]) == 1 else 0)
            rates.append(rate)
    return rates


def replay(sequence: corpus.Sequence, port: int) -> list[str]:
    replayer = Replayer()
    dvc_by_packet = []
    try:
        for path, exporter in zip(sequence.packets, sequence.exporters):
            sock, loopback = replayer.socket_for(exporter)
            sock.sendto(path.read_bytes(), (loopback, port))
            dvc_by_packet.append(loopback)
    finally:
        replayer.close()
    return dvc_by_packet


SEQUENCES = [
    ("ak_nf9_cisco_ncs55_samplers", "Cisco NCS-55 v9: two samplers (1 in 2000, 1 in 4000), FLOW_SAMPLER_ID in each flow"),
    ("ak_nf9_cisco_iosxr", "Cisco IOS-XR v9: FLOW_SAMPLER_RANDOM_INTERVAL and SAMPLING_INTERVAL 30000"),
    ("pm_104_ipfix_cisco_ipv6_sampling", "Cisco IOS-XE IPFIX: selectorId scope, samplingSize 1 of samplingPopulation 256"),
    ("ak_ipfix_nokia_7250ixr", "Nokia IPFIX: samplingPacketInterval 1 + samplingPacketSpace 999"),
    ("ak_ipfix_nokia_mpls", "Nokia IPFIX: samplingPacketInterval 1 + samplingPacketSpace 9"),
]


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name, _ in SEQUENCES])
def test_corpus_flows_carry_the_rate_their_sampler_options_give(kflow_factory, broker, topic, records, name):
    sequence = corpus.load(name)
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="sampling")
    dvc_by_packet = replay(sequence, kflow.port)

    rates = expected_rates(sequence)
    rows = sequence.flow_rows()
    assert len(rates) == len(rows), f"{name}: {len(rates)} flow records in the JSON, {len(rows)} in the TSV"
    assert any(rates), f"{name}: tshark shows no sampling rate for any flow"
    expected = []
    for row, rate in zip(rows, rates):
        low, high = corpus.expected_time_ms(sequence, int(row["pkt"]))
        record = corpus.expected_record(sequence, row, dvc_by_packet[int(row["pkt"])])
        if rate:
            record["sampling"] = rate
        expected.append((record, low, high))

    got = records(len(expected), timeout=15, settle=1.5)
    missing, unexpected = match(expected, got)
    assert (len(got), missing[:3], unexpected[:3]) == (len(expected), [], []), f"{name}: rates {sorted(set(rates))}"
    unknown = sum(1 for rate in rates if not rate)
    assert kflow.metrics().total("kflow_flows_sampling_unknown_total") == unknown


def test_juniper_options_rates_show_in_the_gauge(kflow_factory, broker, topic):
    """Juniper MX (IPFIX, samplingInterval 1000 in options naming no sampler) and SRX (v9, 1): no flows
    in these captures, so the per-domain gauge is where the rate shows."""
    kflow = kflow_factory(broker.bootstrap, topic)
    want = {}
    for name in ("ls_ipfix_juniper_mx240", "ls_nf9_juniper_srx_tplopt"):
        sequence = corpus.load(name)
        replay(sequence, kflow.port)
        header = sequence.header(0)
        want[header.get("od_id", header.get("source_id"))] = expected_domain_rate(sequence)
    assert want == {"524288": 1000, "142": 1}
    deadline = time.monotonic() + 5
    while True:
        gauges = {dict(pairs)["domain"]: value for (metric, pairs), value in kflow.metrics().samples.items()
                  if metric == "kflow_exporter_sampling_rate" and dict(pairs)["sampler"] == "none"}
        if gauges == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert gauges == want


def expected_domain_rate(sequence: corpus.Sequence) -> int:
    for packet in sequence.truth["packets"]:
        for record in packet["records"]:
            rate = rate_from({field[0]: field[1] for field in record["fields"]})
            if rate:
                return rate
    return 0


# A crafted IPFIX stream: one domain, two selectors (selector 1: interval 1 + space 99 = 1 in 100;
# selector 2: samplingPacketInterval 512 without IE 306), flows naming selector 1, 2 and an unknown one.

def ipfix_message(sets: list[bytes], domain: int = 1) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), 0, domain) + body


def ipfix_set(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


SELECTOR_OPTIONS = [
    # options templates 400 (scope selectorId; samplingPacketInterval, samplingPacketSpace), 401 (without 306)
    ipfix_set(3, struct.pack("!HHH HH HH HH", 400, 3, 1, 302, 4, 305, 4, 306, 4)),
    ipfix_set(3, struct.pack("!HHH HH HH", 401, 2, 1, 302, 4, 305, 4)),
    ipfix_set(400, struct.pack("!III", 1, 1, 99)),
    ipfix_set(401, struct.pack("!II", 2, 512)),
]
# flow template 300: selectorId, sourceIPv4Address, destinationIPv4Address, sourceTransportPort, octets, packets
FLOW_TEMPLATE = ipfix_set(2, struct.pack("!HH HH HH HH HH HH HH", 300, 6, 302, 2, 8, 4, 12, 4, 7, 2, 1, 4, 2, 4))


def flows(*selectors: int) -> bytes:
    return ipfix_set(300, b"".join(
        struct.pack("!H4s4sHII", selector, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), port, 1500, 3)
        for port, selector in enumerate(selectors, start=1)))


def send(port: int, messages: list[bytes], source_port: int = 0) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", source_port))
        for message in messages:
            sock.sendto(message, ("127.0.0.1", port))


def by_port(got: list[dict]) -> dict[int, dict]:
    return {record["srcp"]: record for record in got}


def test_two_selectors_on_one_domain_with_default_and_renormalisation(kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="sampling", sampling__default=10,
                          output__renormalize="true")
    send(kflow.port, [ipfix_message(SELECTOR_OPTIONS + [FLOW_TEMPLATE, flows(1, 2, 9)])])
    got = by_port(records(3))
    assert {port: (r["sampling"], r["bytes"], r["pkts"]) for port, r in got.items()} == {
        1: (100, 150_000, 300), 2: (512, 768_000, 1536), 3: (10, 15_000, 30)}
    assert list(got[1]) == BASE_KEYS + ["sampling"]
    metrics = kflow.metrics()
    assert metrics.total("kflow_flows_sampling_unknown_total") == 1
    deadline = time.monotonic() + 5
    while metrics.total("kflow_exporter_sampling_rate") == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        metrics = kflow.metrics()
    assert {dict(pairs)["sampler"]: value for (name, pairs), value in metrics.samples.items()
            if name == "kflow_exporter_sampling_rate"} == {"1": 100, "2": 512}


def test_override_beats_the_exporter_and_counters_stay_raw_by_default(kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="sampling",
                          sampling__override="192.0.2.0/24=7, 127.0.0.0/8=2000")
    send(kflow.port, [ipfix_message(SELECTOR_OPTIONS + [FLOW_TEMPLATE, flows(1, 2, 9)])])
    got = by_port(records(3))
    assert {port: (r["sampling"], r["bytes"], r["pkts"]) for port, r in got.items()} == {
        1: (2000, 1500, 3), 2: (2000, 1500, 3), 3: (2000, 1500, 3)}
    assert kflow.metrics().total("kflow_flows_sampling_unknown_total") == 0


def test_check_config_names_a_bad_override():
    result = run_master("--check-config", "-Dapp.sampling.override=10.0.0.0/8=many", "-Dapp.output.renormalize=true")
    assert result.returncode != 0
    assert "output.renormalize" not in result.stderr
    assert "sampling.override: '10.0.0.0/8=many' has entry '10.0.0.0/8=many' that is not CIDR=RATE" in result.stderr
