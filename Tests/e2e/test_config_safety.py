"""Configuration that cannot work is caught before it runs, and a hostile configuration or sender gets
nowhere: librdkafka properties that load code or run commands are refused; the whole librdkafka
configuration is built at load (a missing certificate file fails --check-config and a reload, not every
worker); a reload whose new workers cannot start keeps the old generation delivering; server.allow drops
(and counts) datagrams from senders outside it; workers never inherit KFLOW_* variables (secrets)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from support import ipfix
from support.ipfix import Flow
from support.kafka import read_records
from support.procs import free_port, kflow_bin_dir, wait_until
from support.reload import reload_with, wait_reload_applied

CONFIG_ERROR = 78  # sysexits EX_CONFIG
EXPORT_TIME = 1_700_000_000


def run_check(*args: str) -> subprocess.CompletedProcess:
    master = kflow_bin_dir() / "kflow-master"
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([str(master), "--check-config", *args], env=clean, capture_output=True, text=True,
                          timeout=30)


def flows(first_port: int, count: int) -> list[Flow]:
    return [Flow("10.12.0.1", "10.12.0.2", first_port + i, 443, 6, 0x10, 100, 1) for i in range(count)]


def send_and_read(kflow, broker, topic, first_port: int, count: int, already: int, source=None) -> list[dict]:
    """Sends `count` flows (source ports from `first_port`) in one datagram, returns those read back."""
    kflow.send([ipfix.flow_message(flows(first_port, count), EXPORT_TIME)], source=source)
    got = read_records(broker.bootstrap, topic, already + count, timeout=15, settle=0.3)
    return [r for r in got if first_port <= r["srcp"] < first_port + count]


@pytest.fixture
def marker_library(tmp_path) -> Path:
    """A shared object whose constructor writes a marker file: proof of whether anything loaded it."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.fail("no C compiler (cc, gcc or clang) to build the marker library")
    marker = tmp_path / "loaded"
    source = tmp_path / "marker.c"
    source.write_text(
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void mark(void) {\n"
        f'    FILE *f = fopen("{marker}", "w"); if (f) fclose(f);\n'
        "}\n")
    library = tmp_path / "marker.so"
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return library


@pytest.mark.parametrize("key", ["plugin.library.paths", "ssl.engine.location"])
def test_check_config_refuses_properties_that_load_code_without_loading_it(marker_library, key):
    result = run_check(f"-Dapp.kafka.props.{key}={marker_library}")
    assert result.returncode == CONFIG_ERROR, f"expected exit {CONFIG_ERROR}, got {result.returncode}: {result.stderr}"
    assert f"kafka.props.{key}: '{marker_library}' is refused: this property loads" in result.stderr, result.stderr
    assert not (marker_library.parent / "loaded").exists(), f"--check-config loaded {marker_library} (its constructor ran)"


def test_check_config_refuses_a_kinit_command(tmp_path):
    marker = tmp_path / "ran"
    result = run_check(f"-Dapp.kafka.props.sasl.kerberos.kinit.cmd=touch {marker}")
    assert result.returncode == CONFIG_ERROR, result.stderr
    assert "kafka.props.sasl.kerberos.kinit.cmd: 'touch" in result.stderr and "is a shell command" in result.stderr, result.stderr
    assert not marker.exists()


def test_check_config_builds_the_whole_producer_so_a_missing_ca_file_fails(tmp_path):
    result = run_check("-Dapp.kafka.props.security.protocol=ssl", f"-Dapp.kafka.props.ssl.ca.location={tmp_path}/none.pem")
    assert result.returncode == CONFIG_ERROR, f"expected exit {CONFIG_ERROR}, got {result.returncode}: {result.stdout}{result.stderr}"
    assert f"kafka.props.ssl.ca.location: '{tmp_path}/none.pem' is refused by librdkafka" in result.stderr, result.stderr
    assert "No such file or directory" in result.stderr, result.stderr
    # The same file, present and valid, passes: the check is about the file, not the setting.
    ok = run_check("-Dapp.kafka.props.security.protocol=ssl", "-Dapp.kafka.props.ssl.ca.location=/etc/ssl/certs")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("value, problem", [
    ("10.0.0.1/8", "its address has bits set beyond the /8 prefix (did you mean 10.0.0.0/8?)"),
    ("192.0.2.0/24,router1", "'router1' is not an IPv4 or IPv6 address"),
    ("2001:db8::/200", "'/200' is not a prefix length from 0 to 128"),
])
def test_check_config_refuses_a_bad_server_allow_entry(value, problem):
    result = run_check(f"-Dapp.server.allow={value}")
    assert result.returncode == CONFIG_ERROR, result.stderr
    assert f"server.allow: '{value}' has entry" in result.stderr and problem in result.stderr, result.stderr


def test_a_reload_to_a_missing_ca_file_is_refused_and_the_old_generation_keeps_delivering(kflow_factory, broker, topic):
    kflow = kflow_factory(broker.bootstrap, topic)
    workers = kflow.worker_pids()
    reload_with(kflow, kafka__props__security__protocol="ssl", kafka__props__ssl__ca__location="/nonexistent/ca.pem")
    wait_until(lambda: kflow.metrics().get("kflow_reloads_total", result="failure") == 1, 5,
               what='kflow_reloads_total{result="failure"} == 1')
    assert kflow.metrics().get("kflow_last_reload_successful") == 0
    assert "ssl.ca.location" in kflow.stderr_path.read_text(errors="replace")
    assert kflow.worker_pids() == workers, "workers were replaced although the reload was refused"
    got = send_and_read(kflow, broker, topic, 20000, 25, 0)
    assert len(got) == 25, f"after the refused reload expected 25 records, got {len(got)}"


@pytest.mark.parametrize("change", ["linger", "port"])
def test_a_reload_whose_workers_cannot_start_keeps_the_old_generation_delivering(
        kflow_factory, broker, topic, tmp_path, change):
    # kflow-worker reached through a link the test can point elsewhere: a broken upgrade of the worker
    # (here a program that exits 3) is something only starting the new generation finds out.
    link = tmp_path / "kflow-worker"
    link.symlink_to(kflow_bin_dir() / "kflow-worker")
    broken = tmp_path / "broken-worker"
    broken.write_text("#!/bin/sh\necho 'kflow-worker: broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    kflow = kflow_factory(broker.bootstrap, topic, environment={"KFLOW_WORKER": str(link)})
    old_workers = sorted(kflow.worker_pids())
    assert len(send_and_read(kflow, broker, topic, 21000, 10, 0)) == 10

    link.unlink()
    link.symlink_to(broken)
    old_port = kflow.port
    if change == "port":
        reload_with(kflow, server__port=free_port())
    else:
        reload_with(kflow, kafka__props__linger__ms=1)
    new_port = kflow.port
    wait_until(lambda: kflow.metrics().get("kflow_reloads_total", result="failure") == 1, 15,
               what='kflow_reloads_total{result="failure"} == 1')
    metrics = kflow.metrics()
    assert metrics.get("kflow_last_reload_successful") == 0
    assert metrics.get("kflow_reloads_total", result="success") == 0
    log = kflow.stderr_path.read_text(errors="replace")
    assert "new workers did not start" in log and "exit code 3" in log, log[-3000:]
    wait_until(lambda: sorted(kflow.worker_pids()) == old_workers, 5,
               what=f"only the old workers {old_workers} left")
    assert metrics.get("kflow_workers") == kflow.threads
    if change == "port":
        # The sockets bound for the new port are closed again: nothing of kflow's shares that port.
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::", new_port))
    kflow.properties["server.port"] = old_port  # the old generation still serves the old port
    got = send_and_read(kflow, broker, topic, 22000, 30, 10)
    kflow.properties["server.port"] = new_port
    assert len(got) == 30, f"after the abandoned reload expected 30 records from the old generation, got {len(got)}"

    # The worker fixed, the same reload goes through.
    link.unlink()
    link.symlink_to(kflow_bin_dir() / "kflow-worker")
    kflow.send_signal(signal.SIGHUP)
    wait_reload_applied(kflow, 1)
    assert not set(kflow.worker_pids()) & set(old_workers)
    got = send_and_read(kflow, broker, topic, 23000, 30, 40)
    assert len(got) == 30, f"after the good reload expected 30 records, got {len(got)}"


def test_server_allow_decodes_listed_senders_and_counts_the_rest(kflow_factory, broker, topic):
    kflow = kflow_factory(broker.bootstrap, topic, **{"server.allow": "127.0.0.1/32, 2001:db8::/32"},
                          environment={"KFLOW_KAFKA_PROPS_CLIENT_ID": "kflow-secret-marker"})
    got = send_and_read(kflow, broker, topic, 24000, 20, 0, source=("127.0.0.1", 0))
    assert len(got) == 20, f"expected 20 records from the allowed 127.0.0.1, got {len(got)}"
    for _ in range(5):
        kflow.send([ipfix.flow_message(flows(25000, 20), EXPORT_TIME)], source=("127.0.0.2", 0))
    wait_until(lambda: kflow.metrics().get("kflow_datagrams_rejected_total") == 5, 5,
               what="kflow_datagrams_rejected_total == 5")
    got = read_records(broker.bootstrap, topic, 21, timeout=3, settle=0.5)
    assert len(got) == 20, f"records from 127.0.0.2 reached Kafka: {[r for r in got if r['srcp'] >= 25000][:3]}"
    # Workers get settings through their pipe only: no KFLOW_* variable reaches their environment.
    for pid in kflow.worker_pids():
        names = [entry.split(b"=", 1)[0] for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if entry]
        assert not [n for n in names if n.startswith(b"KFLOW_")], f"worker {pid} inherited {names}"

    # Reloadable: widened to 127.0.0.0/8, 127.0.0.2 gets through.
    reload_with(kflow, server__allow="127.0.0.0/8")
    wait_reload_applied(kflow, 1)
    got = send_and_read(kflow, broker, topic, 26000, 20, 20, source=("127.0.0.2", 0))
    assert len(got) == 20, f"after widening server.allow expected 20 records from 127.0.0.2, got {len(got)}"
    assert kflow.metrics().get("kflow_datagrams_rejected_total") == 5
