"""tools/ipfix-gen as a test instrument: built once into a temporary directory, run in the background,
and its one-line summary (flows actually sent) parsed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .procs import REPO

SOURCE = REPO / "tools" / "ipfix-gen" / "ipfix-gen.c"


def build_ipfix_gen(directory: Path) -> Path:
    """Compiles ipfix-gen into `directory` and returns the executable's path."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) to build ipfix-gen")
    binary = Path(directory) / "ipfix-gen"
    result = subprocess.run([compiler, "-O2", "-o", str(binary), str(SOURCE)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building ipfix-gen failed:\n{result.stderr}")
    return binary


class IpfixGen:
    """One run of ipfix-gen against 127.0.0.1:port. `wait()` returns its summary as a dict of strings."""

    def __init__(self, binary: Path, port: int, flows: int, rate: int, exporters: int = 8, seed: int = 1,
                 template_refresh: float = 5.0, extra: list[str] | None = None):
        self.args = [str(binary), "--dest", f"127.0.0.1:{port}", "--flows", str(flows), "--rate", str(rate),
                     "--exporters", str(exporters), "--seed", str(seed),
                     "--template-refresh", str(template_refresh), *(extra or [])]
        self.process: subprocess.Popen | None = None
        self.summary: dict[str, str] = {}

    def start(self) -> "IpfixGen":
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> dict[str, str]:
        """Waits for the run to end (TimeoutError after `timeout` s, the generator is killed) and parses
        `ipfix-gen flows=.. datagrams=.. ...`."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(f"ipfix-gen did not finish within {timeout} s: {' '.join(self.args)}") from None
        if self.process.returncode != 0:
            raise RuntimeError(f"ipfix-gen exited with {self.process.returncode}: {err.strip()}")
        line = next((l for l in out.splitlines() if l.startswith("ipfix-gen ")), "")
        self.summary = dict(pair.split("=", 1) for pair in line.split()[1:] if "=" in pair)
        if "flows" not in self.summary:
            raise RuntimeError(f"ipfix-gen printed no summary: {out!r} {err!r}")
        return self.summary

    @property
    def flows_sent(self) -> int:
        return int(self.summary["flows"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
