"""The metrics endpoint as Prometheus and operators read it: a valid, lint-clean exposition; every family
the README documents; KFlow's per-socket kernel series with one sample per socket of kflow's; `/` the same
as `/metrics`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from support import ipfix, sflow
from support.ipfix import Flow
from support.pcapwriter import PROTO_UDP, Packet
from support.metrics import Metrics, fetch
from support.procs import REPO, udp_sockets, wait_until
from support.reload import reload_with, wait_reload_applied

EXPORT_TIME = 1_700_000_000
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def documented_families() -> dict[str, set[str]]:
    """Metric family -> label names, from the README's "Metrics and health" table. `a_{b,c}_total` expands
    to a_b_total and a_c_total; a brace group closing the name lists labels."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Metrics and health", 1)[1].split("\n## ", 1)[0]
    families: dict[str, set[str]] = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        names_cell = row.split("|")[1]
        for token in re.findall(r"`([^`]+)`", names_cell):
            labels: set[str] = set()
            match = re.fullmatch(r"(.*[a-z_])\{([a-z_,]+)\}", token)
            if match:
                token, labels = match.group(1), set(match.group(2).split(","))
            expansion = re.search(r"\{([a-z_,]+)\}", token)
            names = ([token[:expansion.start()] + part + token[expansion.end():] for part in expansion.group(1).split(",")]
                     if expansion else [token])
            for name in names:
                families[name] = labels
    return families


def scrape_text(kflow, path: str = "/metrics") -> str:
    status, body = fetch(f"http://127.0.0.1:{kflow.metrics_port}{path}")
    assert status == 200, f"GET {path} answered {status}: {body[:200]}"
    return body


def send_some_flows(kflow, count: int = 10) -> None:
    """`count` IPFIX flows and one sFlow datagram (one flow sample, from agent 192.0.2.60), so per-exporter
    and per-agent families carry samples too."""
    flows = [Flow("10.12.0.1", "10.12.0.2", 40000 + i, 53, 17, 0, 64, 1) for i in range(count)]
    frame = Packet("10.12.0.1", "10.12.0.2", PROTO_UDP, 40000, 53, b"x").frame()
    kflow.send([ipfix.flow_message(flows, EXPORT_TIME),
                sflow.datagram([sflow.flow_sample([sflow.raw_header_record(frame)])], agent="192.0.2.60")])
    wait_until(lambda: kflow.metrics().total("kflow_kafka_delivered_total") >= count + 1, 10, what=f"{count + 1} flows delivered")


def test_the_exposition_passes_promtool_check_metrics(kflow):
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"{PROMTOOL} is missing: scripts/setup.sh installs the Debian package prometheus")
    send_some_flows(kflow)  # so that per-exporter and per-reason families carry samples too
    body = scrape_text(kflow)
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and report == "", f"promtool check metrics said (exit {result.returncode}):\n{report}"


def test_the_readme_metrics_table_and_the_exposed_families_match_with_their_labels(kflow_factory, broker, topic):
    # An override gives every exporter domain a sampling rate, so kflow_exporter_sampling_rate has samples.
    kflow = kflow_factory(broker.bootstrap, topic, sampling__override="127.0.0.0/8=1,::1/128=1")
    families = documented_families()
    assert len(families) >= 30, f"the README table parsed into only {len(families)} families: {sorted(families)}"
    send_some_flows(kflow)
    # Workers publish their exporter and sFlow agent tables once a second, after the counters: 10 IPFIX
    # flows and the sFlow one.
    metrics = wait_until(lambda: (m := kflow.metrics()).total("kflow_exporter_flows_total") >= 11 and m, 3, 0.1,
                         "the exporter's flows in kflow_exporter_flows_total")
    declared = set(re.findall(r"^# TYPE (\S+) ", metrics.text, re.M))
    missing = sorted(set(families) - declared)
    assert not missing, f"documented but not exposed: {missing}"
    undocumented = sorted(declared - set(families))
    assert not undocumented, f"exposed but not in the README's metrics table: {undocumented}"
    problems = []
    for name, labels in families.items():
        label_sets = {tuple(sorted(k for k, _ in pairs)) for n, pairs in metrics.samples if n == name}
        if not label_sets:
            problems.append(f"{name}: no sample")
        elif label_sets != {tuple(sorted(labels))}:
            problems.append(f"{name}: labels {sorted(label_sets)}, documented {sorted(labels)}")
    assert not problems, "\n".join(problems)


def test_kernel_socket_series_have_one_sample_per_socket_and_report_the_kernel_drops(kflow_factory, broker, topic):
    # A small receive buffer and long heartbeat timeout: both workers can be paused long enough to drop.
    kflow = kflow_factory(broker.bootstrap, topic, server__buffer__size=65536, worker__heartbeat__timeout__ms=60000)
    sockets = udp_sockets(kflow.port)
    assert len(sockets) == 2, f"expected kflow's 2 sockets on port {kflow.port} in /proc/net/udp*, found {sockets}"
    metrics = kflow.metrics()
    for name in ("server_packet_drops", "server_receive_queue"):
        per_socket = metrics.by_label(name, "socket")
        assert sorted(per_socket) == ["0", "1"], f"{name}: expected sockets 0 and 1, got {per_socket}"

    workers = kflow.worker_pids()
    flows = [Flow("10.13.0.1", "10.13.0.2", 1000 + i, 80, 6, 0x18, 1500, 3) for i in range(30)]
    message = ipfix.flow_message(flows, EXPORT_TIME)
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        for round_index in range(40):  # a new source port per round: both sockets get their share
            kflow.send([message] * 50, pause_every=1000)
        kernel_drops = sum(udp_sockets(kflow.port).values())
        reported = kflow.metrics().total("server_packet_drops")
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    assert kernel_drops > 0, "the paused sockets dropped nothing: the test did not overflow them"
    assert reported == kernel_drops, f"server_packet_drops summed to {reported}, the kernel says {kernel_drops}"

    # A reload to 3 workers adds a socket; back to 2 keeps all 3 (packets queued in them must be served).
    for successes, threads in enumerate((3, 2), 1):
        reload_with(kflow, server__threads=threads)
        wait_reload_applied(kflow, successes)
        sockets = udp_sockets(kflow.port)
        assert len(sockets) == 3, f"after a reload to {threads} workers: expected 3 sockets on the port, found {sockets}"
        metrics = kflow.metrics()
        for name in ("server_packet_drops", "server_receive_queue"):
            per_socket = metrics.by_label(name, "socket")
            assert sorted(per_socket) == ["0", "1", "2"], f"{name} with {threads} workers: expected sockets 0-2, got {per_socket}"
        assert metrics.total("server_packet_drops") == sum(sockets.values())


def test_slash_serves_the_same_exposition_as_metrics(kflow):
    send_some_flows(kflow)
    # Counters move between two requests only with traffic or time; compare the families and label sets,
    # and the values of the ones that cannot change while idle.
    root, metrics = Metrics(scrape_text(kflow, "/")), Metrics(scrape_text(kflow, "/metrics"))
    assert set(root.samples) == set(metrics.samples), (
        f"/ and /metrics differ in series: only in /: {sorted(set(root.samples) - set(metrics.samples))[:5]}, "
        f"only in /metrics: {sorted(set(metrics.samples) - set(root.samples))[:5]}")
    for key in ("kflow_flows_decoded_total", "kflow_kafka_delivered_total", "kflow_workers"):
        assert root.get(key) == metrics.get(key), f"{key}: / says {root.get(key)}, /metrics says {metrics.get(key)}"
    assert re.sub(r"^(?!#).*$", "", scrape_text(kflow, "/"), flags=re.M) == \
        re.sub(r"^(?!#).*$", "", scrape_text(kflow, "/metrics"), flags=re.M), "HELP/TYPE lines differ"
