"""tools/ipfix-gen as an instrument of the tests and the benchmark: built when missing or older than its
source, run in the background, and its one-line summary (flows actually sent) parsed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .procs import REPO, HarnessError

SOURCE = REPO / "tools" / "ipfix-gen" / "ipfix-gen.c"


def build_ipfix_gen(directory: Path) -> Path:
    """Compiles ipfix-gen into `directory` unless an executable newer than the source is there (as
    `make gen` leaves in out/); returns the executable's path."""
    binary = Path(directory) / "ipfix-gen"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise HarnessError("no C compiler (cc, gcc or clang) to build ipfix-gen")
    result = subprocess.run([compiler, "-O2", "-Wall", "-o", str(binary), str(SOURCE)], capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"building ipfix-gen failed:\n{result.stderr}")
    return binary


def parse_summary(stdout: str) -> dict[str, str]:
    """`ipfix-gen flows=.. datagrams=.. ...` as a dict of strings (empty when there is no such line)."""
    line = next((l for l in stdout.splitlines() if l.startswith("ipfix-gen ")), "")
    return dict(pair.split("=", 1) for pair in line.split()[1:] if "=" in pair)


class IpfixGen:
    """One run of ipfix-gen against 127.0.0.1:port. `wait()` returns its summary as a dict of strings."""

    def __init__(self, binary: Path, port: int, flows: int, rate: int, exporters: int = 8, seed: int = 1,
                 template_refresh: float = 5.0, extra: list[str] | None = None):
        self.args = [str(binary), "--dest", f"127.0.0.1:{port}", "--flows", str(flows), "--rate", str(rate),
                     "--exporters", str(exporters), "--seed", str(seed),
                     "--template-refresh", str(template_refresh), *(extra or [])]
        self.process: subprocess.Popen | None = None
        self.summary: dict[str, str] = {}
        self.cpu_seconds = 0.0  # its own user + system time, known after `wait_measured`

    def start(self) -> "IpfixGen":
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> dict[str, str]:
        """Waits for the run to end (TimeoutError after `timeout` s, the generator is killed) and parses
        its summary."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(f"ipfix-gen did not finish within {timeout} s: {' '.join(self.args)}") from None
        return self._summary(out, err)

    def wait_measured(self, while_running, interval: float = 0.25) -> dict[str, str]:
        """Waits for the run to end, calling `while_running()` every `interval` s meanwhile, and keeps the
        generator's own CPU time in `cpu_seconds` (wait4 reports it). Parses and returns its summary."""
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            while_running()
            time.sleep(interval)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        out, err = self.process.communicate()
        return self._summary(out, err)

    def _summary(self, out: str, err: str) -> dict[str, str]:
        if self.process.returncode != 0:
            raise HarnessError(f"ipfix-gen exited with {self.process.returncode}: {' '.join(self.args)}: {err.strip()}")
        self.summary = parse_summary(out)
        if "flows" not in self.summary:
            raise HarnessError(f"ipfix-gen printed no summary: {out!r} {err!r}")
        return self.summary

    @property
    def flows_sent(self) -> int:
        return int(self.summary["flows"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
