"""Real processes for the end-to-end tests: the Tansu broker, kflow-master (and its workers), softflowd.

Every wait is bounded; every process started here is stopped by its owner even when a test fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import metrics as metrics_mod

REPO = Path(__file__).resolve().parents[3]
DEPS = Path(os.environ.get("KFLOW_DEPS", "/opt/kflow-deps"))
TANSU = DEPS / "bin" / "tansu"


def kflow_bin_dir() -> Path:
    return Path(os.environ.get("KFLOW_BIN") or REPO / ".build" / "debug")


class ProcessExited(RuntimeError):
    """A process a wait depends on is gone: waiting longer cannot help."""


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` seconds pass (TimeoutError)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ProcessExited:
            raise
        except Exception as error:  # a scrape of a process that is still starting may fail; keep polling
            last_error = error
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what} not reached within {timeout:.1f} s{suffix}")
        time.sleep(interval)


def free_port() -> int:
    """A port free for both TCP and UDP on IPv4 and IPv6 loopback/any at the time of the call."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            udp.bind(("::", 0))
            port = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
                    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    tcp.bind(("::", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(x) for x in text)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return sorted(set(out))


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} unreadable>"


class Broker:
    """A memory-only Tansu broker on 127.0.0.1:port that can be stopped and started again on the same port."""

    def __init__(self, port: int, log: Path):
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "Broker":
        assert self.process is None, "broker already running"
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

        def listening():
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}:\n{tail(self.log)}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True

        wait_until(listening, timeout, 0.05, f"tansu listening on {self.port}")
        return self

    def create_topic(self, topic: str, partitions: int = 4, timeout: float = 10.0) -> None:
        """Creates `topic` (as auto-creation would: 4 partitions)."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=timeout)
        futures[topic].result(timeout)

    def pause(self) -> None:
        """Freezes the broker (SIGSTOP): connections stay open, requests go unanswered, and the topics
        survive (a restarted memory-only Tansu loses them). `resume` (SIGCONT) ends the outage."""
        assert self.process is not None, "broker not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.kill()  # a memory broker has nothing to flush; killing it is the outage we want
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


class Kflow:
    """kflow-master in the foreground with its workers, a properties file and a stderr log."""

    def __init__(self, workdir: Path, properties: dict[str, object], extra_args: list[str] | None = None,
                 environment: dict[str, str] | None = None):
        self.workdir = workdir
        self.environment = environment or {}
        self.properties = properties
        self.extra_args = extra_args or []
        self.config = workdir / "kflow.properties"
        self.stderr_path = workdir / "kflow.stderr"
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None

    @property
    def port(self) -> int:
        return int(self.properties["server.port"])

    @property
    def metrics_port(self) -> int:
        return int(self.properties["metrics.port"])

    @property
    def threads(self) -> int:
        return int(self.properties.get("server.threads", 1))

    def start(self, ready_timeout: float = 30.0) -> "Kflow":
        master = kflow_bin_dir() / "kflow-master"
        if not master.exists():
            raise FileNotFoundError(f"{master} does not exist (build it, or set KFLOW_BIN)")
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.properties.items()))
        # kflow reads KFLOW_* variables as settings: keep the test harness's own out of its environment.
        environment = {k: v for k, v in os.environ.items() if k not in ("KFLOW_BIN", "KFLOW_DEPS", "KFLOW_CORPUS")}
        environment.update(self.environment)
        stderr = open(self.stderr_path, "ab")
        self.process = subprocess.Popen(
            [str(master), "-c", str(self.config), *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT, cwd=self.workdir,
            start_new_session=True, env=environment,
        )
        stderr.close()
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        seen = {}

        def ready():
            if self.process.poll() is not None:
                raise ProcessExited(f"kflow-master exited with {self.process.returncode}")
            seen["kflow_workers"] = self.metrics().get("kflow_workers")
            seen["worker processes"] = self.worker_pids()
            return seen["kflow_workers"] == self.threads and len(seen["worker processes"]) == self.threads

        try:
            wait_until(ready, timeout, 0.1, f"kflow ready with {self.threads} workers")
        except (TimeoutError, ProcessExited) as error:
            raise RuntimeError(f"{error}; last seen {seen}\n--- kflow output ---\n{tail(self.stderr_path)}") from None

    def metrics(self) -> metrics_mod.Metrics:
        return metrics_mod.scrape(self.metrics_port)

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return [pid for pid in children_of(self.process.pid) if alive(pid) and "worker" in process_name(pid)]

    def send(self, payloads, source: tuple[str, int] | None = None, destination: str = "127.0.0.1",
             pause_every: int = 50, pause: float = 0.002) -> None:
        """Sends each payload as one datagram from one socket (bound to `source` when given)."""
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            if source is not None:
                sock.bind(source)
            for index, payload in enumerate(payloads, 1):
                sock.sendto(payload, (destination, self.port))
                if index % pause_every == 0:
                    time.sleep(pause)  # loopback drops nothing, but the receive queue is finite

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0, signum: int = signal.SIGTERM) -> int:
        """Sends `signum` (SIGTERM), waits up to `timeout` for the master; records in `stray_pids` whatever
        of its process group outlived it by 3 s, then SIGKILLs the group. Raises TimeoutError on a hang."""
        if self.process is None:
            return self.exit_code if self.exit_code is not None else 0
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signum)
        try:
            self.exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stray_pids = self._group_members(process.pid)
            self._kill_group(process.pid)
            process.wait(5)
            raise TimeoutError(f"kflow-master did not exit within {timeout} s of signal {signum}") from None
        try:
            wait_until(lambda: not self._group_members(process.pid), 3.0, 0.05)
        except TimeoutError:
            pass
        self.stray_pids = self._group_members(process.pid)
        self._kill_group(process.pid)
        return self.exit_code

    stray_pids: list[int] = []

    def kill(self) -> None:
        if self.process is not None:
            self._kill_group(self.process.pid)
            self.process.wait(5)
            self.process = None

    @staticmethod
    def _kill_group(pgid: int) -> None:
        # The master runs in its own session: its process group holds it and its workers only.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _group_members(pgid: int) -> list[int]:
        """Live (non-zombie) processes in process group `pgid`."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                pid = int(entry.name)
                try:
                    if os.getpgid(pid) == pgid and alive(pid):
                        out.append(pid)
                except (ProcessLookupError, PermissionError):
                    pass
        return out
