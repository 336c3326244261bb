"""sFlow v5 end to end: a real exporter (pmacctd's sfprobe plugin) samples a capture written here and
exports to kflow's sflow.port; public captures from another collector's test suite are replayed. The
records in Kafka must equal the packets (sampling rate 1) and tshark's decoding of the very datagrams
kflow received (every rate). Also: sFlow on the IPFIX port, per-agent metrics, hostile datagrams, reloads."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

from support import ipfix, sflow
from support.kafka import read_records
from support.pcapwriter import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_PSH, TCP_SYN, Packet, write_pcap
from support.procs import free_port, udp_sockets, wait_until
from support.reload import reload_with, wait_reload_applied

CORPUS = Path(__file__).resolve().parent.parent / "sflow-corpus"
BASE_TIME = 1_700_000_000.0
MARKER = "10.99.0.1"


def start_kflow(kflow_factory, broker, topic, **overrides):
    settings = {"sflow__port": free_port(), "output__fields": sflow.FIELDS}
    settings.update(overrides)
    return kflow_factory(broker.bootstrap, topic, **settings)


def sflow_port(kflow) -> int:
    return int(kflow.properties["sflow.port"])


def send_sflow(kflow, payloads, port: int | None = None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for payload in payloads:
            sock.sendto(payload, ("127.0.0.1", port or sflow_port(kflow)))


def assert_same_records(got: list[dict], expected: list[dict], what: str) -> None:
    got_c = Counter(sflow.comparable(r) for r in got)
    expected_c = Counter(sflow.comparable(r) for r in expected)
    missing, extra = expected_c - got_c, got_c - expected_c
    assert not missing and not extra, (f"{what}: {len(got)} records, {len(expected)} expected;\n"
                                       f"missing {list(missing.elements())[:5]}\nextra {list(extra.elements())[:5]}")


class Tee:
    """A UDP relay between the exporter and kflow that keeps every datagram it forwards: what kflow
    received, for tshark to decode."""

    def __init__(self, destination: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.destination = destination
        self.datagrams: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self.relay, daemon=True)
        self.thread.start()

    def relay(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            while self.running:
                try:
                    data = self.sock.recv(65535)
                except socket.timeout:
                    continue
                self.datagrams.append(data)
                out.sendto(data, ("127.0.0.1", self.destination))

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def capture() -> list[Packet]:
    """IPv4 and IPv6; TCP, UDP, ICMP and ICMPv6; untagged, 802.1Q and QinQ."""
    packets = []
    t = BASE_TIME
    for i in range(40):
        t += 0.01
        vlans = [(), (120,), (300, 42)][i % 3]
        packets.append(Packet("10.20.0.1", "10.20.0.2", PROTO_TCP, 40000 + i, 443, b"a" * (10 + i),
                              [TCP_SYN, TCP_ACK, TCP_PSH | TCP_ACK][i % 3], t, vlans))
        packets.append(Packet("2001:db8:20::1", "2001:db8:20::2", PROTO_UDP, 50000 + i, 53, b"b" * (30 + 2 * i), 0, t, vlans))
        if i % 4 == 0:
            packets.append(Packet("192.0.2.7", "198.51.100.9", PROTO_ICMP, 8, 0, b"p" * 16, 0, t, vlans))
            packets.append(Packet("2001:db8:20::7", "2001:db8:20::9", PROTO_ICMPV6, 128, 0, b"q" * 8, 0, t, vlans))
    return packets


def packet_record(packet: Packet) -> dict:
    """What kflow must write for this packet sampled at rate 1 by sfprobe: the frame length it reports
    counts the 4-octet FCS it assumes stripped (its header record says `stripped 4`)."""
    icmp = packet.proto in (PROTO_ICMP, PROTO_ICMPV6)
    record = {"src": sflow._address(packet.src), "dst": sflow._address(packet.dst), "proto": packet.proto,
              "srcp": 0 if icmp else packet.sport, "dstp": packet.sport * 256 + packet.dport if icmp else packet.dport,
              "flags": packet.tcp_flags, "bytes": len(packet.frame()) + 4, "pkts": 1, "sampling": 1, "tos": 0}
    if packet.vlans:
        record["vlan"] = packet.vlans[0]
    return record


def without_interfaces(record: dict) -> dict:
    # sfprobe reading a file knows no interfaces (it sends 0x3FFFFFFF, "internal"): not part of a packet.
    return {k: v for k, v in record.items() if k not in ("in_if", "out_if")}


@pytest.mark.skipif(shutil.which("pmacctd") is None, reason="pmacctd (Debian's pmacct) is not installed")
@pytest.mark.parametrize("rate", [1, 8])
def test_pmacctd_sfprobe_samples_decode_to_the_packets_and_to_tsharks_decoding(kflow_factory, broker, topic, tmp_path, rate):
    kflow = start_kflow(kflow_factory, broker, topic)
    packets = capture()
    pcap = tmp_path / "traffic.pcap"
    # pmacctd's core hands packets to its sfprobe plugin in buffers and does not ship the last, partly
    # filled one when the file ends: marker packets after the capture push the real ones out.
    markers = [Packet(MARKER, "10.99.0.2", PROTO_UDP, 9, 9, b"m", 0, BASE_TIME + 10 + i / 1000) for i in range(16)]
    write_pcap(pcap, packets + markers)
    tee = Tee(sflow_port(kflow))
    try:
        sflow.run_sfprobe(tmp_path, pcap, f"127.0.0.1:{tee.port}", rate)
        # sfprobe sends its last datagram as it exits; the relay may still hold it for a moment.
        wait_until(lambda: kflow.metrics().total("kflow_messages_total", protocol="sflow") >= 1, 10, what="sFlow datagrams decoded")
    finally:
        tee.close()
    received = tee.datagrams
    assert received, "pmacctd sent no sFlow datagram"
    captured = tmp_path / "sflow.pcap"
    sflow.write_udp_pcap(captured, received)
    expected = sflow.tshark_records(captured)
    assert expected, "tshark found no flow sample in what pmacctd sent"
    records = read_records(broker.bootstrap, topic, len(expected), timeout=20)
    assert all(r["dvc"] == "127.0.0.1" for r in records)
    assert_same_records(records, expected, f"rate {rate} vs tshark")
    metrics = kflow.metrics()
    assert metrics.total("kflow_messages_total", protocol="sflow") == len(received)
    assert metrics.total("kflow_sflow_samples_total", type="flow") == len(expected)
    sampled = [r for r in records if r["src"] != MARKER]
    if rate == 1:
        assert len(sampled) == len(packets), f"rate 1: {len(sampled)} records for {len(packets)} packets"
        assert_same_records([without_interfaces(r) for r in sampled], [packet_record(p) for p in packets], "rate 1 vs the packets")
    else:
        assert 0 < len(sampled) < len(packets) and all(r["sampling"] == rate for r in records)


def test_public_captures_decode_to_tsharks_decoding(kflow_factory, broker, topic):
    kflow = start_kflow(kflow_factory, broker, topic)
    captures = sorted(CORPUS.glob("*.pcap"))
    assert len(captures) >= 10, f"the sFlow corpus is missing: {CORPUS}"
    expected, sent = [], 0
    for pcap in captures:
        payloads = sflow.udp_payloads(pcap)
        assert payloads, f"{pcap.name}: no sFlow datagram to port 6343"
        expected += sflow.tshark_records(pcap)
        send_sflow(kflow, payloads)
        sent += len(payloads)
    records = read_records(broker.bootstrap, topic, len(expected), timeout=20)
    assert_same_records(records, expected, "public captures")
    metrics = kflow.metrics()
    assert metrics.total("kflow_messages_total", protocol="sflow") == sent
    assert metrics.total("kflow_decode_errors_total") == 0


def test_sflow_on_the_ipfix_port_is_recognised_and_agents_drops_become_metrics(kflow_factory, broker, topic):
    kflow = start_kflow(kflow_factory, broker, topic, sflow__port=0)
    frame = Packet("10.30.0.1", "10.30.0.2", PROTO_UDP, 1000, 2000, b"x" * 20).frame()
    first = sflow.datagram([sflow.flow_sample([sflow.raw_header_record(frame)], rate=100, pool=1000, drops=5),
                            sflow.counter_sample()], agent="192.0.2.50", sequence=1)
    second = sflow.datagram([sflow.flow_sample([sflow.raw_header_record(frame)], rate=100, pool=1700, drops=12, sequence=2)],
                            agent="192.0.2.50", sequence=2)
    kflow.send([first, second, ipfix.flow_message([ipfix.Flow("10.30.0.3", "10.30.0.4", 1, 2, 17, 0, 64, 1)], 1_700_000_000)])
    records = read_records(broker.bootstrap, topic, 3, timeout=20)
    sflow_records = [r for r in records if r["src"] == "10.30.0.1"]
    assert len(sflow_records) == 2 and all(r["bytes"] == len(frame) + 4 and r["sampling"] == 100 for r in sflow_records)
    metrics = wait_until(lambda: (m := kflow.metrics()).get("kflow_sflow_samples_dropped_total", agent="192.0.2.50") == 7 and m,
                         5, what="the agent's drops in kflow_sflow_samples_dropped_total")
    assert metrics.get("kflow_sflow_sample_pool_total", agent="192.0.2.50") == 700
    assert metrics.total("kflow_sflow_samples_total", type="counter") == 1
    assert metrics.total("kflow_messages_total", protocol="ipfix") == 1


def hostile_variants(payloads: list[bytes], seed: int = 14) -> list[bytes]:
    generator = random.Random(seed)
    variants = []
    for payload in payloads:
        variants += [payload[:cut] for cut in range(0, len(payload), 7)]
        for _ in range(60):
            damaged = bytearray(payload)
            for _ in range(generator.randint(1, 4)):
                damaged[generator.randrange(len(damaged))] ^= 1 << generator.randrange(8)
            variants.append(bytes(damaged))
        # Hostile lengths: every 32-bit word set to a huge value in turn.
        for at in range(0, len(payload) - 3, 4):
            variants.append(payload[:at] + b"\xff\xff\xff\xf0" + payload[at + 4:])
    return variants


def test_hostile_datagrams_are_counted_and_kflow_keeps_decoding(kflow_factory, broker, topic):
    kflow = start_kflow(kflow_factory, broker, topic)
    good = [p for pcap in sorted(CORPUS.glob("*.pcap")) for p in sflow.udp_payloads(pcap)]
    variants = hostile_variants(good)
    workers = kflow.worker_pids()
    send_sflow(kflow, variants)
    wait_until(lambda: kflow.metrics().total("kflow_datagrams_received_total") >= len(variants), 20, what="every hostile datagram received")
    metrics = kflow.metrics()
    assert kflow.worker_pids() == workers and metrics.total("kflow_worker_restarts_total") == 0
    for reason in ("sflow_truncated_datagram", "sflow_bad_sample_length", "sflow_bad_record_length"):
        assert metrics.get("kflow_decode_errors_total", reason=reason) > 0, f"no {reason} counted"
    # Still decoding: a clean capture afterwards comes out whole.
    before = metrics.total("kflow_flows_decoded_total")
    send_sflow(kflow, sflow.udp_payloads(CORPUS / "akvorado__data-1140.pcap"))
    wait_until(lambda: kflow.metrics().total("kflow_flows_decoded_total") == before + 5, 10, what="5 flows of a clean datagram")


def test_the_sflow_listener_follows_reloads_and_worker_restarts(kflow_factory, broker, topic):
    kflow = start_kflow(kflow_factory, broker, topic)
    payload = sflow.udp_payloads(CORPUS / "akvorado__data-sflow-expanded-sample.pcap")[0]

    def decoded_after(send) -> None:
        before = kflow.metrics().total("kflow_sflow_samples_total", type="flow")
        send()
        wait_until(lambda: kflow.metrics().total("kflow_sflow_samples_total", type="flow") > before, 10, what="the sample decoded")

    decoded_after(lambda: send_sflow(kflow, [payload]))
    new_port = free_port()
    reload_with(kflow, sflow__port=new_port, server__threads=3)
    wait_reload_applied(kflow, 1)
    for source in range(6):  # several source ports: each of the 3 sockets gets its share
        decoded_after(lambda: send_sflow(kflow, [payload]))
    victim = kflow.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(kflow.worker_pids()) == 3 and victim not in kflow.worker_pids(), 10, what="the worker replaced")
    for source in range(6):
        decoded_after(lambda: send_sflow(kflow, [payload]))
    assert len(udp_sockets(new_port)) == 3
    # Off again: once the old generation is gone, nothing listens on the sFlow port any more.
    reload_with(kflow, sflow__port=0)
    wait_reload_applied(kflow, 2)
    wait_until(lambda: not udp_sockets(new_port), 10, what=f"port {new_port} closed")
