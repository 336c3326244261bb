"""A Debian 12 guest booted with systemd-nspawn, for testing the kflow package under a real systemd.

The host has no systemd as PID 1; nspawn boots one in its own PID, mount and network namespaces. The
root file system (scripts/nspawn-rootfs.sh) is mounted with --volatile=overlay, so every boot starts
from the same pristine tree and nothing a test does survives it. Commands run inside with
`nsenter -a` (all the guest's namespaces); host programs that only need the guest's loopback (the
Kafka consumer, the flow sender) run with `nsenter -n`.

A boot that fails raises GuestError with nspawn's output: the tests fail, never skip."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() \
    else Path("/sys/fs/cgroup")


class GuestError(RuntimeError):
    pass


class Guest:
    """One booted guest. Use as a context manager: boots on enter, powers off on exit."""

    def __init__(self, root: Path, log: Path, binds_ro: dict[str, str] | None = None, name: str | None = None):
        self.root = root
        self.log = log
        self.binds_ro = binds_ro or {}
        # nspawn keeps per-machine state under /run/systemd/nspawn/<name>: a name per test process lets two
        # runs boot side by side.
        self.name = name or f"kflow-guest-{os.getpid()}"
        self.cgroup = CGROUP_V2 / f"kflow-nspawn-{os.getpid()}"
        self.nspawn: subprocess.Popen | None = None
        self.init_pid: int | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> "Guest":
        self.boot()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def boot(self, timeout: float = 60.0) -> None:
        if os.geteuid() != 0:
            raise GuestError("booting a guest with systemd-nspawn needs root")
        if not (self.root / "sbin" / "init").exists():
            raise GuestError(f"{self.root} is not a bootable root file system (run scripts/nspawn-rootfs.sh)")
        # nspawn runs with --keep-unit (there is no host systemd to make it a scope), so it gets a cgroup of
        # its own first: the guest's systemd needs a delegated cgroup2 subtree, and shutdown can then find
        # every process left behind.
        self.cgroup.mkdir(exist_ok=True)
        args = ["systemd-nspawn", "--quiet", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
                "--volatile=overlay", "--private-network", "--console=pipe", f"--machine={self.name}"]
        args += [f"--bind-ro={host}:{guest}" for host, guest in self.binds_ro.items()]
        enter_cgroup = f"echo $$ > {shlex.quote(str(self.cgroup / 'cgroup.procs'))} && exec {shlex.join(args)}"
        log = open(self.log, "ab")
        self.nspawn = subprocess.Popen(
            ["sh", "-c", enter_cgroup], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while self.init_pid is None:
            if self.nspawn.poll() is not None:
                raise GuestError(f"systemd-nspawn exited with {self.nspawn.returncode} while booting:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.shutdown()
                raise GuestError(f"no systemd inside the guest after {timeout:.0f} s:\n{self._log_tail()}")
            self.init_pid = self._find_init()
            time.sleep(0.1)
        # Until the guest's systemd has set up its private bus, systemctl answers nothing; then --wait blocks
        # until start-up is over.
        state = ""
        while state in ("", "offline", "unknown"):
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                break
            remaining = max(1.0, deadline - time.monotonic())
            state = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=remaining).stdout.strip()
            if state in ("", "offline", "unknown"):
                time.sleep(0.2)
        if state not in ("running", "degraded"):
            failed = self.run(["systemctl", "--failed", "--no-pager"], check=False).stdout
            self.shutdown()
            raise GuestError(f"guest system state is {state!r} after boot:\n{failed}\n{self._log_tail()}")

    def shutdown(self, timeout: float = 30.0) -> None:
        """Powers the guest off (SIGTERM makes nspawn ask the guest's systemd to halt), then makes sure
        nothing of it is left: SIGKILL to nspawn and to every process still in its cgroup."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait(5)
        self.nspawn = None
        self.init_pid = None
        if self.cgroup.exists():
            kill = self.cgroup / "cgroup.kill"
            if kill.exists():
                kill.write_text("1")
            for directory in sorted((p for p in self.cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir_when_empty(directory)
            _rmdir_when_empty(self.cgroup)

    @property
    def alive(self) -> bool:
        return self.nspawn is not None and self.nspawn.poll() is None

    # -- running things inside ----------------------------------------------------------------------

    def run(self, argv: list[str], check: bool = True, timeout: float = 60.0, input: str | None = None,
            ) -> subprocess.CompletedProcess:
        """Runs argv inside the guest (all its namespaces) and returns the completed process, text mode."""
        result = subprocess.run(
            self._enter("-a") + argv, input=input, capture_output=True, text=True, timeout=timeout,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )
        if check and result.returncode != 0:
            raise GuestError(f"`{shlex.join(argv)}` exited with {result.returncode} in the guest:\n"
                             f"{result.stdout}{result.stderr}")
        return result

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """Starts argv inside the guest (all its namespaces) without waiting for it."""
        return subprocess.Popen(self._enter("-a") + argv, **kwargs)

    def sh(self, script: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return self.run(["sh", "-c", script], check=check, timeout=timeout)

    def netns_argv(self, argv: list[str]) -> list[str]:
        """argv prefixed to run a host program inside the guest's network namespace only."""
        return self._enter("-n") + argv

    def host_pid(self, guest_pid: int) -> int:
        """The host PID of a guest process (for signalling it from the host)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:"):
                    pids = line.split()[1:]
                    if len(pids) >= 2 and int(pids[-1]) == guest_pid and self._in_guest_pidns(int(entry.name)):
                        return int(entry.name)
        raise GuestError(f"no host process for guest PID {guest_pid}")

    # -- helpers --------------------------------------------------------------------------------------

    def _enter(self, namespaces: str) -> list[str]:
        if self.init_pid is None:
            raise GuestError("the guest is not booted")
        return ["nsenter", "-t", str(self.init_pid), namespaces, "--"]

    def _find_init(self) -> int | None:
        """The guest's PID 1: the process in the nspawn cgroup that is PID 1 of its own PID namespace."""
        try:
            pids = [int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            return None
        for subdir in self.cgroup.rglob("cgroup.procs"):
            try:
                pids += [int(p) for p in subdir.read_text().split()]
            except OSError:
                continue
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if len(nspid) >= 2 and nspid[-1] == "1" and comm == "systemd":
                return pid
        return None

    def _in_guest_pidns(self, pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return False

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no nspawn log)"


def _rmdir_when_empty(directory: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
