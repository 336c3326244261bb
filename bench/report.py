"""What a run prints and writes: one row per step, the tables per sweep (text for the terminal, markdown
for out/bench-STAMP.md), the kflow/nfacctd cost ratios, the lossless maxima and the machine's description."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from common import DEPS, REPO
from step import StepResult

COLUMNS = ["collector", "target/s", "offered/s", "exporters", "rec/dgr", "sent", "delivered", "lost", "rec/msg", "sock drops dgr",
           "RcvbufErr dgr", "CPU-s", "CPU-s/M", "cg CPU-s/M", "cg to last delivery", "idle CPU %", "broker CPU-s/M", "gen CPU-s/M", "peak PSS MB", "others %",
           "note"]


def row(r: StepResult) -> list[str]:
    notes = [r.error] if r.error else []
    if not r.packets_ok:
        notes.append("packet sums differ")
    if r.tail_delivered != r.tail_sent + r.warmup_sent:
        notes.append(f"markers {r.tail_delivered}/{r.tail_sent + r.warmup_sent}")
    notes += [f"{name.removeprefix('kflow_').removesuffix('_total')} {value:,.0f}"
              for name, value in r.collector_counters.items()]
    note = "; ".join(notes)
    records_per_message = f"{(r.delivered + r.tail_delivered) / r.messages:.1f}" if r.messages else "-"
    gen_cpu_per_million = r.gen_cpu / (r.sent / 1e6) if r.sent else float("nan")
    return [r.collector, f"{r.rate:,}" if r.rate else "max", f"{r.offered:,.0f}", str(r.exporters),
            str(r.packing) if r.packing else "full", f"{r.sent:,}",
            f"{r.delivered:,}", f"{r.lost:,}", records_per_message, f"{r.socket_drops:,}", f"{r.rcvbuf_errors:,}",
            f"{r.cpu:.2f}", f"{r.cpu_per_million:.2f}", f"{r.per_million(r.cg_cpu):.2f}",
            f"{r.per_million(r.cg_cpu_delivered):.2f}", f"{100 * r.idle_cpu_per_s:.1f}", f"{r.broker_cpu_per_million:.2f}",
            f"{gen_cpu_per_million:.2f}", f"{r.peak_pss_mb:.0f}", f"{r.others_cpu_pct:.0f}", note[:160]]


def step_line(r: StepResult) -> str:
    """The row printed as a step ends (aligned to its own widths)."""
    return text_table(COLUMNS, [row(r)]).splitlines()[1]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def ratio_rows(results: list[StepResult], tolerance: float, key) -> tuple[list[str], list[list[str]]]:
    """kflow* / nfacctd* cost per step and the lossless maxima, pairing each kflow variant with the
    nfacctd variant of the same batching."""
    pairs = [("kflow", "nfacctd"), ("kflow-batch", "nfacctd-batch"), ("kflow-batch", "nfacctd")]
    by = {(r.collector, key(r)): r for r in results}
    header = ["step", "pair", "kflow CPU-s/M", "nfacctd CPU-s/M", "CPU ratio", "cgroup ratio", "kflow lost",
              "nfacctd lost"]
    rows = []
    for k in sorted({key(r) for r in results}):
        for ours, theirs in pairs:
            a, b = by.get((ours, k)), by.get((theirs, k))
            if a and b and not a.error and not b.error:
                rows.append([str(k), f"{ours}/{theirs}", f"{a.cpu_per_million:.2f}", f"{b.cpu_per_million:.2f}",
                             f"{a.cpu_per_million / b.cpu_per_million:.3f}",
                             f"{a.per_million(a.cg_cpu) / b.per_million(b.cg_cpu):.3f}", f"{a.lost:,}", f"{b.lost:,}"])
    return header, rows


def lossless_summary(results: list[StepResult], tolerance: float) -> list[str]:
    best: dict[str, float] = {}
    first_loss: dict[str, float] = {}
    for r in sorted(results, key=lambda r: r.offered):
        if r.lossless(tolerance):
            if r.collector not in first_loss:
                best[r.collector] = max(best.get(r.collector, 0), r.offered)
        else:
            first_loss.setdefault(r.collector, r.offered)
    lines = []
    for name in sorted({r.collector for r in results}):
        lost_at = f", first loss at {first_loss[name]:,.0f}/s" if name in first_loss else ", no loss seen"
        lines.append(f"{name}: highest lossless offered rate {best.get(name, 0):,.0f} flows/s{lost_at}")
    for ours, theirs in (("kflow", "nfacctd"), ("kflow-batch", "nfacctd-batch")):
        if best.get(ours) and best.get(theirs):
            bound = " (kflow never lost: a lower bound)" if ours not in first_loss else ""
            lines.append(f"lossless rate {ours}/{theirs}: {best[ours] / best[theirs]:.2f}x{bound}")
    return lines


def sweep_section(title: str, results: list[StepResult], key, tolerance: float) -> tuple[str, list[str]]:
    """A sweep's table, cost ratios and (for the rate sweep) lossless maxima: (terminal text, markdown lines)."""
    rows = [row(r) for r in sorted(results, key=lambda r: (key(r), r.collector))]
    rheader, rrows = ratio_rows(results, tolerance, key)
    summary = lossless_summary(results, tolerance) if title == "Rate sweep" else []
    text = f"\n== {title} ==\n" + text_table(COLUMNS, rows)
    if rrows:
        text += "\n\n" + text_table(rheader, rrows)
    if summary:
        text += "\n\n" + "\n".join(summary)
    markdown = [f"## {title}", "", markdown_table(COLUMNS, rows), ""]
    if rrows:
        markdown += ["Cost ratios (CPU-s per million flows, same step):", "", markdown_table(rheader, rrows), ""]
    markdown += [f"- {line}" for line in summary] + [""]
    return text, markdown


def machine_description() -> list[str]:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    lines = [f"host: {os.cpu_count()} CPUs ({cpu}), {mem_kb // 1024} MB RAM, kernel {os.uname().release}",
             f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}"]
    for command in (["nfacctd", "-V"], [str(DEPS / "bin/tansu"), "--version"]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
            lines.append(out[0] if out else f"{command[0]}: no output")
        except (OSError, subprocess.TimeoutExpired) as error:
            lines.append(f"{command[0]}: {error}")
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        lines.append(f"kflow commit: {rev}")
    except OSError:
        pass
    return lines
