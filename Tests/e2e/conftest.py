"""Fixtures for kflow's end-to-end tests: free ports, a Tansu broker per module, kflow-master with two
workers, a topic reader and a metrics scraper. Binaries come from $KFLOW_BIN (default .build/debug);
nothing is built here."""

from __future__ import annotations

import itertools
import os
import re

import pytest

from support.kafka import read_records
from support.procs import Broker, Kflow, free_port, tail

_topic_numbers = itertools.count(1)

# pytest keeps only the newest three base temp dirs per user under /tmp/pytest-of-USER: another engineer's
# run could delete this run's kflow logs. A root of our own keeps them (still pruned to three by pytest).
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/tmp/kflow-e2e")
os.makedirs(os.environ["PYTEST_DEBUG_TEMPROOT"], exist_ok=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for index, kflow in enumerate(getattr(item, "kflow_processes", [])):
            report.sections.append((f"kflow #{index} output ({kflow.stderr_path})", tail(kflow.stderr_path, 80)))


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A memory-only Tansu broker for the module, killed at teardown."""
    handle = Broker(free_port(), tmp_path_factory.mktemp("broker") / "tansu.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Brokers a test controls itself (e.g. to start one late or restart it); all stopped at teardown."""
    made: list[Broker] = []

    def make(port: int | None = None) -> Broker:
        handle = Broker(port or free_port(), tmp_path / f"tansu-{len(made)}.log")
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.stop()


@pytest.fixture
def topic(request) -> str:
    """A topic name of the test's own, so tests sharing a broker never read each other's records."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:80]
    return f"e2e-{name}-{next(_topic_numbers)}"


@pytest.fixture
def kflow_factory(request, tmp_path):
    """Starts kflow-master (2 workers unless told otherwise) and waits until /metrics reports all workers.
    At teardown: SIGTERM, exit code 0 within 25 s (kflow gives its workers 15 s to flush), no process of its group left behind."""
    started: list[Kflow] = []
    request.node.kflow_processes = started

    def start(bootstrap: str, topic: str, ready_timeout: float = 30.0, extra_args=None, environment=None,
              **overrides) -> Kflow:
        properties: dict[str, object] = {
            "server.port": free_port(),
            "server.threads": 2,
            "kafka.topic": topic,
            "kafka.props.bootstrap.servers": bootstrap,
            "kafka.props.linger.ms": 5,
            "metrics.host": "127.0.0.1",
            "metrics.port": free_port(),
            # No sFlow listener unless a test asks (the default, 6343, would be shared by every kflow here).
            "sflow.port": 0,
        }
        properties.update({key.replace("__", "."): value for key, value in overrides.items()})
        workdir = tmp_path / f"kflow-{len(started)}"
        workdir.mkdir()
        handle = Kflow(workdir, properties, extra_args, environment)
        started.append(handle)
        return handle.start(ready_timeout)

    yield start

    problems = []
    for handle in started:
        was_running = handle.process is not None
        try:
            code = handle.stop(timeout=25)
        except TimeoutError as error:
            problems.append(f"{error}\n{tail(handle.stderr_path)}")
            continue
        if was_running and code != 0:
            problems.append(f"kflow-master exited with {code} after SIGTERM\n{tail(handle.stderr_path)}")
        if handle.stray_pids:
            problems.append(f"processes outlived kflow-master: {handle.stray_pids}")
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def kflow(kflow_factory, broker, topic) -> Kflow:
    """kflow-master with 2 workers, producing to the module's broker and the test's topic."""
    return kflow_factory(broker.bootstrap, topic)


@pytest.fixture
def records(broker, topic):
    """records(n, timeout=20) -> the JSON records of the test's topic, read until n arrive (or timeout)."""

    def read(count: int, timeout: float = 20.0, settle: float = 1.0) -> list[dict]:
        return read_records(broker.bootstrap, topic, count, timeout, settle)

    return read
