"""Biflows and flow times as real exporters send them: softflowd `-b` (RFC 5103 reverse counters) must give
every direction of every conversation of a capture, with exact counters, flags and times; softflowd with
uptime-relative times must give no invented start/end; crafted IPFIX and NetFlow v9 streams pin the
anchoring rules (systemInitTimeMilliseconds from options data, also across a reload; v9 sysUptime wrap)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import struct
import time

import pytest

from support import ipfix
from support.pcapwriter import expected_flows, write_pcap
from support.procs import wait_until
from support.reload import reload_with, wait_reload_applied
from test_softflowd import BASE_TIME, flow_key, run_softflowd, tcp_conversation, udp_exchange

needs_softflowd = pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd is not installed")


def conversations():
    """14 conversations: 11 answered (both directions), 3 one-way: 25 directional flows."""
    packets = []
    for i in range(4):
        packets += tcp_conversation(f"10.2.0.{i + 1}", f"10.2.1.{i + 1}", 41000 + i, 443, 2 + i, BASE_TIME + 0.05 * i)
    for i in range(3):
        packets += udp_exchange(f"10.3.0.{i + 1}", "10.3.1.1", 53000 + i, 53, 2 + i, BASE_TIME + 0.3 + 0.05 * i)
    packets += udp_exchange("10.4.0.1", "10.4.1.1", 50001, 9999, 3, BASE_TIME + 0.5, reply=False)
    packets += udp_exchange("10.4.0.2", "10.4.1.2", 50002, 514, 1, BASE_TIME + 0.55, reply=False)
    packets += udp_exchange("2001:db8:5::3", "2001:db8:5::4", 50003, 7000, 2, BASE_TIME + 0.6, reply=False)
    for i in range(2):
        packets += tcp_conversation(f"2001:db8:6::{i + 1}", "2001:db8:6::ff", 42000 + i, 80, 1 + i, BASE_TIME + 0.65 + 0.05 * i)
    for i in range(2):
        packets += udp_exchange(f"2001:db8:7::{i + 1}", "2001:db8:7::ff", 54000 + i, 123, 2, BASE_TIME + 0.8 + 0.05 * i)
    return sorted(packets, key=lambda p: p.timestamp)


def conversation_of(key: tuple) -> tuple:
    """Both directions of a 5-tuple give the same conversation."""
    src, sport, dst, dport, proto = key
    return (proto,) + tuple(sorted([(src, sport), (dst, dport)]))


def biflow_times(flows) -> dict[tuple, tuple[int, int]]:
    """softflowd's biflow record carries the conversation's first and last packet (either direction)."""
    spans: dict[tuple, list[float]] = {}
    for flow in flows.values():
        stamps = spans.setdefault(conversation_of(flow.key()), [])
        stamps += [p.timestamp for p in flow.packets]
    return {c: (int(round(min(s) * 1_000_000)) // 1000, int(round(max(s) * 1_000_000)) // 1000) for c, s in spans.items()}


@needs_softflowd
def test_softflowd_biflows_arrive_as_every_direction_with_exact_counters_flags_and_times(
        tmp_path, kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="start,end,in_if,out_if")
    packets = conversations()
    pcap = tmp_path / "biflows.pcap"
    write_pcap(pcap, packets)
    expected = expected_flows(packets)
    assert len(expected) == 25
    answered = {conversation_of(k) for k in expected if (k[2], k[3], k[0], k[1], k[4]) in expected}
    assert len(answered) == 11

    run_softflowd(pcap, "10", f"127.0.0.1:{kflow.port}", extra=["-b", "-A", "milli"])

    got = records(len(expected), timeout=20)
    by_key = {}
    for record in got:
        assert flow_key(record) not in by_key, f"flow reported twice: {record}"
        by_key[flow_key(record)] = record
    assert set(by_key) == set(expected), (
        f"missing {sorted(set(expected) - set(by_key))}, unexpected {sorted(set(by_key) - set(expected))}")
    times = biflow_times(expected)
    for key, flow in expected.items():
        record = by_key[key]
        assert (record["bytes"], record["pkts"], record["flags"]) == (flow.bytes, flow.pkts, flow.flags), f"{key}: {record}"
        assert (record["start"], record["end"]) == times[conversation_of(key)], f"{key}: {record}"
        assert (record["in_if"], record["out_if"]) == (0, 0), record
    metrics = kflow.metrics()
    assert metrics.total("kflow_flows_decoded_total") == 14, "one data record per conversation"
    assert metrics.total("kflow_reverse_flows_total") == 11
    assert metrics.total("kflow_exporter_reverse_flows_total", exporter="127.0.0.1") == 11
    assert metrics.total("kflow_flows_unanchored_times_total") == 0


@needs_softflowd
def test_softflowd_biflows_with_biflow_forward_give_one_flow_per_record(tmp_path, kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__biflow="forward")
    packets = conversations()
    pcap = tmp_path / "biflows.pcap"
    write_pcap(pcap, packets)
    expected = expected_flows(packets)

    run_softflowd(pcap, "10", f"127.0.0.1:{kflow.port}", extra=["-b", "-A", "milli"])

    got = records(14, timeout=20, settle=2.0)
    assert len(got) == 14, f"{len(got)} records"
    assert len({conversation_of(flow_key(r)) for r in got}) == 14, "one record per conversation"
    for record in got:
        flow = expected[flow_key(record)]
        assert (record["bytes"], record["pkts"], record["flags"]) == (flow.bytes, flow.pkts, flow.flags), record
    assert kflow.metrics().total("kflow_reverse_flows_total") == 0


@needs_softflowd
def test_softflowd_uptime_times_that_cannot_be_anchored_are_left_out_and_counted(
        tmp_path, kflow_factory, broker, topic, records):
    """softflowd reading a capture sends flowStart/EndSysUpTime relative to its own start (wrapped through
    32 bits, as the capture is older) and its start time as systemInitTimeMilliseconds: no date explains
    both, so kflow writes no start/end (before: about 31 days after the export) and counts each flow."""
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="start,end")
    packets = conversations()
    pcap = tmp_path / "relative.pcap"
    write_pcap(pcap, packets)
    expected = expected_flows(packets)

    run_softflowd(pcap, "10", f"127.0.0.1:{kflow.port}")

    got = records(len(expected), timeout=20)
    assert {flow_key(r) for r in got} == set(expected)
    for record in got:
        assert "start" not in record and "end" not in record, record
    wait_until(lambda: kflow.metrics().total("kflow_flows_unanchored_times_total") == len(expected), 5,
               what=f"{len(expected)} unanchored flows counted")


# --- crafted streams -------------------------------------------------------------------------------------

EXPORT = 1_700_000_000
INIT_MS = EXPORT * 1000 - 3_600_000  # the exporter came up an hour before
UPTIME_FIELDS = ipfix.FLOW_FIELDS_V4 + [(22, 4), (21, 4)]


def uptime_flows(count: int, first: int, net: int) -> bytes:
    """`count` flows from 10.9.`net`.i whose start/end uptimes are first + 1000 i and first + 1000 i + 250."""
    body = b""
    for i in range(count):
        flow = ipfix.Flow(f"10.9.{net}.{i + 1}", "10.9.255.1", 40000 + i, 80, 6, 0x18, 1000 + i, 10)
        body += flow.encode() + struct.pack("!II", first + 1000 * i, first + 1000 * i + 250)
    return ipfix.set_bytes(300, body)


def options_with_init_time() -> list[bytes]:
    """Options template 400 (scope exportingProcessId 144) with systemInitTimeMilliseconds 160, and its data."""
    template = ipfix.set_bytes(3, struct.pack("!HHHHHHH", 400, 2, 1, 144, 4, 160, 8))
    return [template, ipfix.set_bytes(400, struct.pack("!IQ", 1, INIT_MS))]


def test_ipfix_uptimes_are_anchored_by_the_init_time_from_options_data_also_after_a_reload(
        kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="start,end")
    template = ipfix.template_set(300, UPTIME_FIELDS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # one exporter session throughout
    sock.bind(("127.0.0.1", 0))

    def send(payload: bytes) -> None:
        sock.sendto(payload, ("127.0.0.1", kflow.port))

    def times_of(net: int, got: list[dict]) -> list[tuple]:
        return sorted((r["src"], r.get("start"), r.get("end")) for r in got if r["src"].startswith(f"10.9.{net}."))

    try:
        # Before any anchor: no start/end, counted.
        send(ipfix.message([template, uptime_flows(2, 3_500_000, net=1)], EXPORT, sequence=0, domain=3))
        assert times_of(1, records(2, timeout=15)) == [("10.9.1.1", None, None), ("10.9.1.2", None, None)]
        # The anchor arrives in options data; later flows get exact absolute times.
        send(ipfix.message(options_with_init_time() + [uptime_flows(3, 3_590_000, net=2)], EXPORT, sequence=2, domain=3))
        assert times_of(2, records(5, timeout=15)) == [
            (f"10.9.2.{i + 1}", INIT_MS + 3_590_000 + 1000 * i, INIT_MS + 3_590_000 + 1000 * i + 250) for i in range(3)]
        # A reload: the new workers take the anchor over with the templates (no options resent).
        reload_with(kflow, kafka__props__linger__ms=6)
        wait_reload_applied(kflow, 1)
        time.sleep(0.6)  # the old workers' last snapshots, published as they drain, are imported
        send(ipfix.message([uptime_flows(1, 3_599_000, net=3)], EXPORT + 1, sequence=6, domain=3))
        assert times_of(3, records(6, timeout=15)) == [("10.9.3.1", INIT_MS + 3_599_000, INIT_MS + 3_599_250)]
    finally:
        sock.close()
    assert kflow.metrics().total("kflow_flows_unanchored_times_total") == 2


def netflow_v9(sys_uptime: int, unix_secs: int, sequence: int, flowsets: list[bytes], source_id: int = 1) -> bytes:
    return struct.pack("!HHIIII", 9, 0, sys_uptime, unix_secs, sequence, source_id) + b"".join(flowsets)


def test_netflow_v9_switched_times_across_a_sys_uptime_wrap_are_exact(kflow_factory, broker, topic, records):
    kflow = kflow_factory(broker.bootstrap, topic, output__fields="start,end")
    template = ipfix.set_bytes(0, struct.pack("!HH", 260, 4) + struct.pack("!HHHHHHHH", 8, 4, 12, 4, 22, 4, 21, 4))

    def flow(first: int, last: int) -> bytes:
        return ipaddress.ip_address("10.8.0.1").packed + ipaddress.ip_address("10.8.0.2").packed + struct.pack("!II", first, last)

    before = netflow_v9(2**32 - 10_000, EXPORT, 0, [template, ipfix.set_bytes(260, flow(2**32 - 40_000, 2**32 - 30_000))])
    after = netflow_v9(1_000, EXPORT + 11, 1, [ipfix.set_bytes(260, flow(2**32 - 5_000, 500))])
    kflow.send([before, after])
    got = records(2, timeout=15)
    assert sorted((r["start"], r["end"]) for r in got) == [
        (EXPORT * 1000 - 30_000, EXPORT * 1000 - 20_000),
        ((EXPORT + 11) * 1000 - 6_000, (EXPORT + 11) * 1000 - 500),
    ], got
