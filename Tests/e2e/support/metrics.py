"""Scrapes and parses kflow's Prometheus text endpoint (for the end-to-end tests and the benchmark)."""

from __future__ import annotations

import re
import urllib.request

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape: samples keyed by (name, sorted label pairs)."""

    def __init__(self, text: str):
        self.text = text
        self.samples: dict[tuple[str, tuple], float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = _SAMPLE.match(line.strip())
            if match is None:
                raise ValueError(f"not a Prometheus sample line: {line!r}")
            name, labels, value = match.groups()
            pairs = tuple(sorted(_LABEL.findall(labels or "")))
            self.samples[(name, pairs)] = float(value)

    def get(self, name: str, default: float | None = None, **labels) -> float | None:
        """The sample with exactly these labels."""
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name: str, **labels) -> float:
        """Sum over every sample of `name` whose labels include `labels` (0 when there is none)."""
        wanted = set(labels.items())
        return sum(v for (n, pairs), v in self.samples.items() if n == name and wanted <= set(pairs))

    def totals(self) -> dict[str, float]:
        """Each metric summed over its label sets, in the order the scrape first names them."""
        out: dict[str, float] = {}
        for (name, _), value in self.samples.items():
            out[name] = out.get(name, 0.0) + value
        return out

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, pairs), v in self.samples.items():
            if n == name:
                key = dict(pairs).get(label, "")
                out[key] = out.get(key, 0.0) + v
        return out

    def names(self) -> set[str]:
        return {n for n, _ in self.samples}


def fetch(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def scrape(port: int, host: str = "127.0.0.1") -> Metrics:
    status, body = fetch(f"http://{host}:{port}/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}: {body[:200]}")
    return Metrics(body)
