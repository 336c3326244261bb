"""A real exporter: softflowd reads a capture written here and exports it to kflow; the records in Kafka
must be the flows of that capture, computed from the packets themselves."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import pytest

from support.pcapwriter import (PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, Packet,
                                expected_flows, write_pcap)

pytestmark = pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd is not installed")

BASE_TIME = 1_700_000_000.0


def tcp_conversation(client: str, server: str, cport: int, sport: int, exchanges: int, start: float) -> list[Packet]:
    packets = [Packet(client, server, PROTO_TCP, cport, sport, b"", TCP_SYN, start),
               Packet(server, client, PROTO_TCP, sport, cport, b"", TCP_SYN | TCP_ACK, start + 0.001)]
    for i in range(exchanges):
        t = start + 0.01 * (i + 1)
        packets.append(Packet(client, server, PROTO_TCP, cport, sport, b"q" * (40 + 7 * i), TCP_PSH | TCP_ACK, t))
        packets.append(Packet(server, client, PROTO_TCP, sport, cport, b"r" * (300 + 11 * i), TCP_ACK, t + 0.002))
    packets.append(Packet(client, server, PROTO_TCP, cport, sport, b"", TCP_FIN | TCP_ACK, start + 0.5))
    return packets


def udp_exchange(client: str, server: str, cport: int, sport: int, requests: int, start: float,
                 reply: bool = True) -> list[Packet]:
    packets = []
    for i in range(requests):
        t = start + 0.02 * i
        packets.append(Packet(client, server, PROTO_UDP, cport, sport, b"u" * (20 + i), 0, t))
        if reply:
            packets.append(Packet(server, client, PROTO_UDP, sport, cport, b"v" * (120 + 3 * i), 0, t + 0.001))
    return packets


def capture() -> list[Packet]:
    packets = (
        tcp_conversation("10.1.0.1", "10.1.0.2", 51000, 443, 3, BASE_TIME)
        + tcp_conversation("192.0.2.10", "198.51.100.20", 40000, 22, 5, BASE_TIME + 0.1)
        + udp_exchange("10.1.0.3", "10.1.0.4", 53001, 5353, 4, BASE_TIME + 0.2)
        + udp_exchange("10.1.0.5", "10.1.0.6", 50123, 9999, 2, BASE_TIME + 0.25, reply=False)
        + tcp_conversation("2001:db8::1", "2001:db8:ffff::2", 52000, 80, 2, BASE_TIME + 0.3)
        + udp_exchange("2001:db8::3", "2001:db8::4", 53002, 123, 3, BASE_TIME + 0.35)
    )
    return sorted(packets, key=lambda p: p.timestamp)


def run_softflowd(pcap, version: str, destination: str, timeout: float = 30.0, extra: list[str] = ()) -> None:
    """Runs softflowd over the capture; it exports every flow when the capture ends and exits.

    softflowd 1.1.0 sometimes blocks in accept() on its control socket while reading a capture (poll
    reports the socket readable); a `softflowctl statistics` connection releases it without changing
    what it exports, so the loop below nudges it until it exits."""
    # Its control-socket path must also be short: with pytest's long tmp_path it never exits.
    with tempfile.TemporaryDirectory(prefix="sf", dir="/tmp") as short:
        control = f"{short}/ctl"
        command = ["softflowd", "-r", str(pcap), "-n", destination, "-v", version, "-P", "udp", "-d",
                   "-p", f"{short}/pid", "-c", control, *extra]
        with open(f"{short}/out", "w+") as out:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            try:
                while True:
                    try:
                        process.wait(0.5)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    assert time.monotonic() < deadline, f"softflowd did not finish within {timeout} s"
                    subprocess.run(["softflowctl", "-c", control, "statistics"], capture_output=True, timeout=5)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
            out.seek(0)
            output = out.read()
    assert process.returncode == 0, f"softflowd failed ({process.returncode}):\n{output}"
    # softflowd expires every flow at the end of the capture ("flushed"); make sure it exported something.
    assert "Shutting down after pcap EOF" in output and "Flows exported:" in output, output


def flow_key(record: dict) -> tuple:
    return (record["src"], record["srcp"], record["dst"], record["dstp"], record["proto"])


@pytest.mark.parametrize(
    "version, destination_host, dvc, with_v6",
    [
        pytest.param("10", "127.0.0.1", "127.0.0.1", True, id="ipfix-v4-transport"),
        pytest.param("10", "[::1]", "::1", True, id="ipfix-v6-transport"),
        pytest.param("9", "127.0.0.1", "127.0.0.1", True, id="netflow-v9"),
        pytest.param("5", "127.0.0.1", "127.0.0.1", False, id="netflow-v5"),
    ],
)
def test_softflowd_export_arrives_in_kafka_as_the_flows_of_the_capture(
        tmp_path, kflow, records, version, destination_host, dvc, with_v6):
    packets = capture()
    pcap = tmp_path / "traffic.pcap"
    write_pcap(pcap, packets)
    expected = {key: flow for key, flow in expected_flows(packets).items() if with_v6 or ":" not in key[0]}

    before = time.time()
    run_softflowd(pcap, version, f"{destination_host}:{kflow.port}")
    after = time.time()

    got = records(len(expected), timeout=20)
    got_by_key: dict[tuple, dict] = {}
    for record in got:
        assert flow_key(record) not in got_by_key, f"flow reported twice: {record}"
        got_by_key[flow_key(record)] = record
    assert set(got_by_key) == set(expected), (
        f"missing {sorted(set(expected) - set(got_by_key))}, unexpected {sorted(set(got_by_key) - set(expected))}")

    for key, flow in expected.items():
        record = got_by_key[key]
        assert list(record) == ["dvc", "src", "srcp", "dst", "dstp", "proto", "flags", "bytes", "pkts", "time"]
        assert (record["bytes"], record["pkts"]) == (flow.bytes, flow.pkts), f"{key}: {record}"
        assert record["flags"] == flow.flags, f"{key}: flags {record['flags']:#x}, expected {flow.flags:#x}"
        assert record["dvc"] == dvc
        # softflowd stamps its messages with the wall clock (not the capture's time).
        assert int(before) * 1000 - 1000 <= record["time"] <= int(after) * 1000 + 1000, record
