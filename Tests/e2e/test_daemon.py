"""kflow-master as a daemon operators expect: it tells systemd (through a NOTIFY_SOCKET the test binds)
READY once its workers run, STATUS, RELOADING/READY around a SIGHUP, STOPPING on SIGTERM, and pings the
watchdog only while every worker's heartbeat is fresh; it replaces a killed or stalled worker quickly,
keeps its counters monotonic across the replacement, and /healthz says when a worker is stalled or missing."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time

import pytest

from support.loadgen import IpfixGen, build_ipfix_gen
from support.metrics import fetch
from support.procs import alive, wait_until
from support.reload import reload_with

WATCHDOG_USEC = 2_000_000  # the master pings every WATCHDOG_USEC / 2 = 1 s
_socket_numbers = itertools.count(1)


class NotifyListener:
    """A unix datagram socket standing in for systemd's notification socket: keeps every datagram with
    the monotonic time it arrived."""

    def __init__(self):
        # An abstract address (NOTIFY_SOCKET=@name): no path-length limit, nothing to clean up.
        self.name = f"kflow-e2e-notify-{os.getpid()}-{next(_socket_numbers)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.messages)

    def with_line(self, line: str, after: float = 0.0) -> list[tuple[float, str]]:
        """Messages holding `line` (e.g. "READY=1") as one of their lines, received after `after`."""
        return [(t, m) for t, m in self.snapshot() if t > after and line in m.split("\n")]

    def wait_for(self, line: str, after: float = 0.0, count: int = 1, timeout: float = 10.0) -> list[tuple[float, str]]:
        try:
            return wait_until(lambda: len(self.with_line(line, after)) >= count and self.with_line(line, after),
                              timeout, 0.02, f"{count} x {line}")
        except TimeoutError:
            raise AssertionError(f"expected {count} x {line!r} within {timeout} s; got {self.describe()}") from None

    def pings(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        return [t for t, _ in self.with_line("WATCHDOG=1") if start < t < end]

    def describe(self) -> str:
        base = self.messages[0][0] if self.messages else 0.0
        return "; ".join(f"+{t - base:.2f}s {m!r}" for t, m in self.snapshot())


@pytest.fixture
def notify(monkeypatch):
    """NOTIFY_SOCKET and WATCHDOG_USEC for the kflow started by the test (WATCHDOG_PID left unset: the
    master's pid is not known before it starts, and libsystemd accepts WATCHDOG_USEC alone)."""
    listener = NotifyListener()
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + listener.name)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def ipfix_gen(tmp_path_factory):
    return build_ipfix_gen(tmp_path_factory.mktemp("ipfix-gen"))


def healthz(kflow) -> int:
    return fetch(f"http://127.0.0.1:{kflow.metrics_port}/healthz", timeout=1.0)[0]


def wait_replacement(kflow, gone: int, timeout: float, interval: float = 0.01) -> tuple[float, list[int]]:
    """Until `gone` is dead and the master has its full set of workers again; returns when that was
    first seen and the new worker pids."""
    def replaced():
        pids = kflow.worker_pids()
        return not alive(gone) and len(pids) == kflow.threads and gone not in pids and pids
    pids = wait_until(replaced, timeout, interval, f"worker {gone} replaced")
    return time.monotonic(), pids


def test_systemd_hears_ready_watchdog_status_reloading_and_stopping_in_order(notify, kflow_factory, broker, topic):
    kflow = kflow_factory(broker.bootstrap, topic)
    ready = notify.wait_for("READY=1")
    assert "STATUS=workers 2/2, 0 flows/s, last reload: none" in ready[0][1].split("\n"), (
        f"READY=1 must come once both workers run and carry a STATUS saying so; got {ready[0][1]!r}")
    # STATUS is also published on its own (every 5 s); pings come every WATCHDOG_USEC / 2.
    status = [(t, m) for t, m in notify.wait_for("STATUS=workers 2/2, 0 flows/s, last reload: none",
                                                count=2, timeout=7)
              if not m.startswith("READY=1")]
    assert status, f"expected a STATUS= message of its own besides READY's; got {notify.describe()}"
    pings = [t for t, _ in notify.wait_for("WATCHDOG=1", count=4, timeout=6)]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert all(0.8 <= gap <= 1.4 for gap in gaps), f"expected pings every ~1.0 s, got gaps {gaps}"

    before_reload = time.monotonic()
    reload_with(kflow, kafka__props__linger__ms=7)
    reloading = notify.wait_for("RELOADING=1", after=before_reload)
    assert any(line.startswith("MONOTONIC_USEC=") for line in reloading[0][1].split("\n")), (
        f"RELOADING=1 needs MONOTONIC_USEC= (Type=notify-reload); got {reloading[0][1]!r}")
    reloaded = notify.wait_for("READY=1", after=reloading[0][0], timeout=20)
    assert "last reload: ok at " in reloaded[0][1], f"READY after a reload should say so; got {reloaded[0][1]!r}"

    before_stop = time.monotonic()
    code = kflow.stop(timeout=25)
    assert code == 0, f"kflow-master exited with {code} after SIGTERM"
    stopping = notify.wait_for("STOPPING=1", after=before_stop, timeout=2)

    events = [line for _, m in notify.snapshot() for line in m.split("\n")
              if line in ("READY=1", "RELOADING=1", "STOPPING=1")]
    assert events == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], (
        f"expected READY, RELOADING, READY, STOPPING; got {events}")
    assert notify.pings(start=stopping[0][0]) == [], "the master kept pinging the watchdog after STOPPING=1"
    assert status[0][0] < reloading[0][0]


def test_a_stalled_worker_withholds_watchdog_pings_until_it_is_killed_and_replaced(notify, kflow_factory, broker, topic):
    timeout_ms = 4000  # long enough that a master ignoring the stall would ping twice meanwhile
    kflow = kflow_factory(broker.bootstrap, topic, worker__heartbeat__timeout__ms=timeout_ms)
    notify.wait_for("WATCHDOG=1", count=2, timeout=5)
    restarts = kflow.metrics().get("kflow_worker_restarts_total")
    wait_until(lambda: healthz(kflow) == 200, 2, 0.05, "/healthz 200 before the stall")
    victim = kflow.worker_pids()[0]

    stalled_at = time.monotonic()
    os.kill(victim, signal.SIGSTOP)
    health: list[tuple[float, int]] = []
    try:
        def replaced_while_probing():
            health.append((time.monotonic(), healthz(kflow)))
            pids = kflow.worker_pids()
            return not alive(victim) and len(pids) == 2 and victim not in pids
        wait_until(replaced_while_probing, timeout_ms / 1000 + 3, 0.05, f"stalled worker {victim} replaced")
        replaced_at = time.monotonic()
    finally:
        if alive(victim):
            os.kill(victim, signal.SIGCONT)

    took = replaced_at - stalled_at
    assert timeout_ms / 1000 - 0.3 <= took <= timeout_ms / 1000 + 1.5, (
        f"expected the stalled worker killed and replaced ~{timeout_ms} ms after it stopped, took {took:.2f} s")
    withheld = notify.pings(start=stalled_at + 1.7, end=replaced_at - 0.3)
    assert withheld == [], (f"expected no WATCHDOG=1 from 1.7 s into the stall until the replacement "
                            f"({took:.2f} s); got pings at {[round(t - stalled_at, 2) for t in withheld]} s")
    resumed = notify.wait_for("WATCHDOG=1", after=replaced_at, timeout=3)
    assert resumed, "watchdog pings did not resume after the replacement"

    unhealthy = [round(t - stalled_at, 2) for t, status in health if status == 503]
    assert unhealthy and 1.4 <= unhealthy[0] <= 2.2, (
        f"expected /healthz 503 from ~1.5 s into the stall; 503 seen at {unhealthy} s")
    wait_until(lambda: healthz(kflow) == 200, 3, what="/healthz 200 again after the replacement")
    after = kflow.metrics().get("kflow_worker_restarts_total")
    assert after == restarts + 1, f"expected kflow_worker_restarts_total {restarts + 1}, got {after}"


def test_a_killed_worker_is_replaced_within_a_second_and_counters_keep_rising(kflow_factory, broker, topic, ipfix_gen):
    kflow = kflow_factory(broker.bootstrap, topic, server__buffer__size=4 * 1024 * 1024)
    generator = IpfixGen(ipfix_gen, kflow.port, flows=140_000, rate=20_000, exporters=16, template_refresh=1).start()
    names = ("kflow_flows_decoded_total", "kflow_kafka_delivered_total", "kflow_worker_restarts_total")
    scrapes: list[tuple[float, dict[str, float]]] = []

    def scrape() -> dict[str, float]:
        m = kflow.metrics()
        values = {name: m.total(name) for name in names}
        scrapes.append((time.monotonic(), values))
        return values

    try:
        wait_until(lambda: scrape()["kflow_kafka_delivered_total"] > 10_000, 10, 0.2, "load flowing to Kafka")
        victim = kflow.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        replaced_at, _ = wait_replacement(kflow, victim, timeout=3)
        while generator.running():
            scrape()
            time.sleep(0.2)
        generator.wait(timeout=30)
    finally:
        generator.stop()
    assert replaced_at - killed_at < 1.0, f"expected a new worker within 1 s of kill -9, took {replaced_at - killed_at:.2f} s"

    first, last = scrapes[0][1], scrapes[-1][1]
    assert last["kflow_worker_restarts_total"] == first["kflow_worker_restarts_total"] + 1, (
        f"expected kflow_worker_restarts_total +1, got {first['kflow_worker_restarts_total']} -> {last['kflow_worker_restarts_total']}")
    for name in names:
        series = [values[name] for _, values in scrapes]
        backwards = [(a, b) for a, b in zip(series, series[1:]) if b < a]
        assert not backwards, f"{name} went backwards across scrapes: {backwards}"
    after_kill = [values for t, values in scrapes if t > replaced_at]
    assert len(after_kill) >= 5, f"only {len(after_kill)} scrapes after the replacement: the load ended too soon"
    for name in names[:2]:
        assert after_kill[-1][name] > after_kill[0][name], (
            f"{name} stopped rising after the replacement: {after_kill[0][name]} -> {after_kill[-1][name]}")


def test_healthz_is_503_while_a_crash_looping_worker_is_missing(kflow_factory, broker, topic):
    kflow = kflow_factory(broker.bootstrap, topic)
    # /healthz is judged on the master's 100 ms tick, so it may trail the workers' own "running" by one.
    wait_until(lambda: healthz(kflow) == 200, 2, 0.05, "/healthz 200 with both workers running")
    # Quick repeated crashes of one slot: the first is restarted at once, later ones after a growing delay
    # (250 ms, 500 ms ...), during which the slot has no worker.
    missing_seen: list[tuple[int, float]] = []
    for crash in range(3):
        victim = kflow.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        statuses = []

        def replaced_while_probing():
            status = healthz(kflow)
            statuses.append(status)
            if status == 503:
                looping = kflow.metrics().get("kflow_workers_crash_looping")
                missing_seen.append((crash, looping))
            pids = kflow.worker_pids()
            return not alive(victim) and len(pids) == 2 and victim not in pids
        wait_until(replaced_while_probing, 5, 0.02, f"worker {victim} replaced after crash {crash + 1}")
    assert any(crash >= 1 for crash, _ in missing_seen), (
        f"expected /healthz 503 while a crash-looping slot waited for its restart; 503 seen after crashes "
        f"{sorted({c + 1 for c, _ in missing_seen})}")
    assert any(looping == 1 for _, looping in missing_seen), (
        f"expected kflow_workers_crash_looping 1 while the slot waited; saw {missing_seen}")
    wait_until(lambda: healthz(kflow) == 200, 3, what="/healthz 200 once the slot's worker runs again")
    assert kflow.metrics().get("kflow_worker_restarts_total") == 3
    # The crash loop ends once the slot's worker has stayed up 10 s (the quick-failure threshold).
    recovered_from = time.monotonic()
    wait_until(lambda: kflow.metrics().get("kflow_workers_crash_looping") == 0, 13, 0.2,
               "kflow_workers_crash_looping back to 0 after 10 s of a stable worker")
    assert time.monotonic() - recovered_from > 8, "kflow_workers_crash_looping cleared before the worker proved stable"


def test_workers_log_at_the_configured_level(kflow_factory, broker, topic):
    # Workers get log.level over their configuration pipe after they start; they used to keep logging at
    # info ("worker 0 (generation 1) receiving on ..."), whatever the setting.
    kflow = kflow_factory(broker.bootstrap, topic, log__level="warning")
    kflow.stop()
    lines = kflow.stderr_path.read_text().splitlines()
    worker_info = [line for line in lines if line.startswith(("<6>kflow-worker", "<5>kflow-worker", "<7>kflow-worker"))]
    assert not worker_info, f"log.level=warning, yet workers logged below warning: {worker_info[:5]}"
    master_info = [line for line in lines if line.startswith(("<6>kflow-master", "<5>kflow-master"))]
    assert not master_info, f"log.level=warning, yet the master logged below warning: {master_info[:5]}"
