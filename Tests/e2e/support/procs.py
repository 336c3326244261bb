"""Real processes for the end-to-end tests and the benchmark: the Tansu broker, kflow-master (and its workers).

Every wait is bounded; every process started here is stopped by its owner even when a test fails."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import metrics as metrics_mod

REPO = Path(__file__).resolve().parents[3]
DEPS = Path(os.environ.get("KFLOW_DEPS", "/opt/kflow-deps"))
BROKER_SCRIPT = REPO / "scripts" / "broker.sh"


class HarnessError(RuntimeError):
    """A process or broker the harness runs failed or could not start; the message says which and why."""


def kflow_bin_dir() -> Path:
    return Path(os.environ.get("KFLOW_BIN") or REPO / ".build" / "debug")


def online_cpus() -> int:
    """What kflow counts for `server.threads=0` (one worker per online CPU)."""
    return max(1, os.sysconf("SC_NPROCESSORS_ONLN"))


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


def udp_sockets(port: int) -> dict[int, int]:
    """inode -> drops of every UDP socket bound to `port`, read from /proc/net/udp and udp6."""
    sockets = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            columns = line.split()
            if int(columns[1].rsplit(":", 1)[1], 16) == port:
                sockets[int(columns[9])] = int(columns[12])
    return sockets


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} unreadable>"


class Broker:
    """A memory-only Tansu broker on 127.0.0.1:port, started with scripts/broker.sh (the one way the project
    starts Tansu: `make run` and the Swift Kafka tests use it too), that can be stopped and started again on
    the same port."""

    def __init__(self, port: int, log: Path):
        self.port = port
        self.log = log
        self.pid: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "Broker":
        assert self.pid is None, "broker already running"
        if self.listening():
            raise HarnessError(f"something already listens on broker port {self.port}")
        # The script returns once Tansu listens (or fails): it bounds its own wait by `timeout`.
        out = subprocess.run(["bash", str(BROKER_SCRIPT), str(self.port), str(self.log), str(math.ceil(timeout))],
                             capture_output=True, text=True, timeout=timeout + 10)
        if out.returncode != 0:
            raise HarnessError(f"Tansu did not start on port {self.port}: {out.stderr.strip()}\n{tail(self.log)}")
        self.pid = int(out.stdout.strip().splitlines()[-1])
        return self

    def create_topic(self, topic: str, partitions: int = 4, timeout: float = 10.0) -> None:
        """Creates `topic` (as auto-creation would: 4 partitions)."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=timeout)
        try:
            futures[topic].result(timeout)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return  # the client retried a request the broker had already carried out
            raise HarnessError(f"creating topic {topic} with {partitions} partitions on {self.bootstrap}: {error}")

    def listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def pause(self) -> None:
        """Freezes the broker (SIGSTOP): connections stay open, requests go unanswered, and the topics
        survive (a restarted memory-only Tansu loses them). `resume` (SIGCONT) ends the outage."""
        assert self.pid is not None, "broker not running"
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid is not None and alive(self.pid):
            os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """Kills Tansu (a memory broker has nothing to flush; killing it is the outage tests want) and waits
        until it is gone and its port is closed, so that a broker can bind the port again. Tansu is not our
        child (the script gives it a session of its own), so /proc and the port are watched: its main
        thread turns zombie while its other threads, which share the listening socket, may still exit."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            wait_until(lambda: not alive(pid) and not self.listening(), timeout, 0.05,
                       f"Tansu (pid {pid}) gone and port {self.port} closed")
        except TimeoutError as error:
            raise HarnessError(str(error)) from None


class Kflow:
    """kflow-master in the foreground with its workers, a properties file and a stderr log. Binaries come
    from `bin_dir` (default: $KFLOW_BIN, else .build/debug)."""

    def __init__(self, workdir: Path, properties: dict[str, object], extra_args: list[str] | None = None,
                 environment: dict[str, str] | None = None, bin_dir: Path | None = None):
        self.workdir = workdir
        self.bin_dir = Path(bin_dir) if bin_dir else kflow_bin_dir()
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
        threads = int(self.properties.get("server.threads", 0))
        return threads if threads > 0 else online_cpus()

    def start(self, ready_timeout: float = 30.0) -> "Kflow":
        master = self.bin_dir / "kflow-master"
        if not master.exists():
            raise HarnessError(f"{master} does not exist (build it: make build; or set KFLOW_BIN)")
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
            raise HarnessError(f"{error}; last seen {seen}\n--- kflow output ---\n{tail(self.stderr_path)}") from None

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
