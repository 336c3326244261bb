"""Real exporters' packets from the shared corpus, replayed over UDP in their original order: the records
in Kafka must be the flow records tshark decodes from the same packets (count and values)."""

from __future__ import annotations

import socket
import time
from collections import Counter

import pytest

from support import corpus

pytestmark = pytest.mark.skipif(corpus.corpus_dir() is None, reason="shared corpus not found")

# Representative valid sequences: one or two per feature the decoders must get right.
SEQUENCES = [
    # IPFIX
    ("ls_ipfix_openbsd_pflow", "IPv4, multiple templates"),
    ("ls_ipfix_mikrotik", "IPv4+IPv6 flows, padding, reduced-size encoding"),
    ("pm_111_ipfix_cisco_ipv6", "IPv6 flows over IPv6 transport"),
    ("ls_ipfix_barracuda", "reduced-size encoding"),
    ("ic_ipfix_cisco_avc_odid256_512", "variable-length fields incl. 3-octet lengths, two domains"),
    ("tg_ipfix_nprobe_pen35632", "enterprise IEs, variable-length"),
    ("ak_ipfix_ipfixprobe", "biflow enterprise IEs (PEN 29305)"),
    ("ls_ipfix_softflowd", "options template and data beside flows, padding"),
    ("tg_ipfix_cisco_nbar_options", "options data only: no flow records at all"),
    ("pm_500_ipfix_cisco_srv6", "padding in template sets, options"),
    ("ic_ipfix_flowmon_odid0", "4251 flows, enterprise IEs, padding"),
    ("ic2_ipfix_example_flows", "3979 flows, messages up to 3472 octets"),
    # NetFlow v9
    ("ls_nf9_softflowd", "v9 with IPv6, templates and data in one packet"),
    ("tg_nf9_example", "v9 template and data"),
    ("ls_nf9_cisco_1941", "v9 Cisco IOS"),
    ("ls_nf9_fortigate_542", "v9 options, padding, reduced-size encoding"),
    ("pm_101_nf9_cisco_asr9k_t313", "v9 IPv6 flows"),
    ("gl_nf9_nprobe_3", "v9 892 flows, header count != records"),
    # NetFlow v5
    ("ls_nf5_softflowd", "v5 softflowd"),
    ("gl_nf5_netgraph", "v5 FreeBSD ng_netflow"),
    ("ak_nf5", "v5"),
    # both
    ("gl_mixed_nprobe_v5_v9", "v5 and v9 from three exporters on one port"),
]


class Replayer:
    """One UDP socket per original exporter (address:port), on loopback of the same family and, where
    free, the same source port, so template scopes stay as distinct as they were."""

    def __init__(self):
        self.sockets: dict[str, socket.socket] = {}

    def socket_for(self, exporter: str) -> tuple[socket.socket, str]:
        address, _, port = exporter.rpartition(":")
        v6 = ":" in address.strip("[]")
        loopback = "::1" if v6 else "127.0.0.1"
        if exporter not in self.sockets:
            sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((loopback, int(port)))
            except OSError:
                sock.bind((loopback, 0))  # the original port is taken (by another exporter or process)
            self.sockets[exporter] = sock
        return self.sockets[exporter], loopback

    def close(self):
        for sock in self.sockets.values():
            sock.close()


def match(expected: list[tuple[dict, int, int]], got: list[dict]) -> tuple[list, list]:
    """Pairs each received record with an expected one (same fields, time within the range); returns
    (expected records never received, received records never expected)."""
    pending: dict[tuple, list[tuple[int, int]]] = {}
    for record, low, high in expected:
        pending.setdefault(tuple(record.items()), []).append((low, high))
    unexpected = []
    for record in got:
        fields = tuple((k, v) for k, v in record.items() if k != "time")
        ranges = pending.get(fields, [])
        hit = next((i for i, (low, high) in enumerate(ranges) if low <= record.get("time", -1) <= high), None)
        if hit is None:
            unexpected.append(record)
        else:
            ranges.pop(hit)
    missing = [dict(fields) for fields, ranges in pending.items() for _ in ranges]
    return missing, unexpected


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name, _ in SEQUENCES])
def test_corpus_sequence_yields_the_records_tshark_decodes(kflow, records, name):
    sequence = corpus.load(name)
    replayer = Replayer()
    dvc_by_packet = []
    try:
        for index, (path, exporter) in enumerate(zip(sequence.packets, sequence.exporters)):
            sock, loopback = replayer.socket_for(exporter)
            sock.sendto(path.read_bytes(), (loopback, kflow.port))
            dvc_by_packet.append(loopback)
            if index % 20 == 19:
                time.sleep(0.005)
    finally:
        replayer.close()

    expected = []
    reverse_flows = 0
    for row in sequence.flow_rows():
        packet = int(row["pkt"])
        low, high = corpus.expected_time_ms(sequence, packet)
        expected.append((corpus.expected_record(sequence, row, dvc_by_packet[packet]), low, high))
        # A biflow record's reverse direction is a flow of its own (output.biflow=split, the default).
        reverse = corpus.reverse_record(sequence, row, dvc_by_packet[packet])
        if reverse is not None:
            expected.append((reverse, low, high))
            reverse_flows += 1

    got = records(len(expected), timeout=30 if len(expected) > 500 else 15, settle=1.5)
    for record in got:
        assert list(record) == ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"], record

    missing, unexpected = match(expected, got)
    assert (len(got), missing[:5], unexpected[:5]) == (len(expected), [], []), (
        f"{name}: expected {len(expected)} records, got {len(got)}; "
        f"{len(missing)} missing (first shown), {len(unexpected)} unexpected (first shown)")

    metrics = kflow.metrics()
    assert metrics.total("kflow_flows_decoded_total") == len(expected) - reverse_flows
    assert metrics.total("kflow_reverse_flows_total") == reverse_flows
    assert metrics.total("kflow_datagrams_received_total") == len(sequence.packets)
