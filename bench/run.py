#!/usr/bin/env python3
"""Side-by-side benchmark: kflow against nfacctd (pmacct), IPFIX over UDP in, JSON records in Kafka out.

For each step of a rate sweep (and optionally an exporter-count sweep) and each collector, in turn:
a fresh Tansu broker (scripts/broker.sh) and a fresh topic, a freshly started collector, then
tools/ipfix-gen sends the step's flows at the step's rate. When the collector has gone quiet
(CPU flat, topic offsets flat) the runner reads, per step:

  offered    the generator's achieved flow rate
  delivered  records in Kafka, counted by consuming every partition with assign() from the start to EOF
             (a record = one JSON object, so batched messages count for each object they hold)
  lost       sent - delivered
  drops      in datagrams (about 30 flows each): the collector sockets' drop counters (/proc/net/udp{,6})
             and the host's UDP RcvbufErrors delta (/proc/net/snmp; host-wide, others' traffic shows up too)
  CPU        user+sys of the collector's process tree (live processes plus reaped children), from
             just before the generator starts until the collector is quiet; reported per million flows;
             beside it the same window from a cgroup v2 directory per step (cpu.stat usage_usec: every
             process and thread, reaped or not), and from the first datagram to the last delivery
  broker     Tansu's CPU the same way (it shares the two cores)
  memory     peak sum of PSS over the collector's process tree, sampled 4 times a second
  others     CPU used on the host by everything else during the step (to tell a quiet run from a noisy one)

Sweeps: rates, exporter counts, and datagram packing (records per datagram: 1, 10, full).
Prints a table per sweep and the kflow/nfacctd ratios, and writes them as markdown to out/bench-*.md.
Steps are interleaved (each rate runs every collector before the next rate) so background load
affects both alike. Standard library plus confluent-kafka only; run with /opt/kflow-deps/venv.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import common  # noqa: F401  (first: puts the harness, Tests/e2e/support, on the import path)
from collectors import CollectorSpec
from common import DEPS, REPO
from report import machine_description, step_line, sweep_section
from step import StepResult, component_figures, run_step
from support.loadgen import build_ipfix_gen

# The modules: common (paths, BenchError, the harness's import path), measure (/proc figures, counting the
# topic), collectors (nfacctd and kflow runners), step (one step; kflow's halves apart), report (tables).
# The harness (Tests/e2e/support) gives the broker, kflow wrapper, topic reader, metrics parser and ipfix-gen.


def parse_rate(text: str) -> int:
    text = text.strip().lower()
    if text in ("max", "0"):
        return 0
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def kflow_default_producer_settings(kflow_bin: str) -> dict[str, str]:
    """kflow's built-in kafka.props.* defaults (without bootstrap.servers), from --print-reference."""
    master = Path(kflow_bin or ".") / "kflow-master"
    try:
        text = subprocess.run([str(master), "--print-reference"], capture_output=True, text=True,
                              check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"bench: cannot read kflow's defaults from {master} --print-reference: {error}")
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("kafka.props.") and key != "kafka.props.bootstrap.servers":
            settings[key.removeprefix("kafka.props.")] = value
    return settings


def parse_settings(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"'{item}' is not KEY=VALUE")
        out[key] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collectors", default="nfacctd,kflow,kflow-batch",
                        help="comma-separated: nfacctd, nfacctd-batch, kflow, kflow-batch, "
                             "kflow-rr (kflow with server.balance=round-robin)")
    parser.add_argument("--rates", default="100k,400k,600k,1M,1.5M",
                        help="rate sweep, flows/s (k, M suffixes; 'max' = flat out); empty to skip")
    parser.add_argument("--seconds", type=float, default=5.0, help="step length: flows = rate x seconds")
    parser.add_argument("--flows", type=int, default=0, help="flows per step (overrides --seconds)")
    parser.add_argument("--max-flows", type=int, default=2_000_000, help="flows for a 'max' step")
    parser.add_argument("--exporters", type=int, default=1, help="exporters during the rate sweep")
    parser.add_argument("--components", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure decode + JSON alone and librdkafka alone (kflow-microbench)")
    parser.add_argument("--exporter-sweep", default="1,1000,10000", help="exporter counts, e.g. 1,100,1000,10000")
    parser.add_argument("--exporter-rate", default="100k", help="rate of the exporter sweep")
    parser.add_argument("--template-refresh", type=float, default=60.0,
                        help="seconds between an exporter's template refreshes (ipfix-gen; Junos' default is 60 s or 4,800 packets; "
                             "at 10,000 exporters and 100 k/s, 5 s makes a third of all datagrams templates)")
    parser.add_argument("--exporter-warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="exporters send their templates (and one record) before each exporter-sweep step is "
                             "measured: the steady state; --no-exporter-warmup measures template learning too")
    parser.add_argument("--burst", type=int, default=0,
                        help="datagrams per exporter turn (ipfix-gen --burst; 0 = its default, 32/exporters)")
    parser.add_argument("--packing", default="full",
                        help="data records per datagram in the rate and exporter sweeps (N or 'full' = ~30 in 1,400 bytes)")
    parser.add_argument("--packing-sweep", default="1,10,full",
                        help="records per datagram for the packing sweep (1 = worst case, full = what routers send)")
    parser.add_argument("--packing-rate", default="100k", help="rate of the packing sweep")
    parser.add_argument("--v6-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-records", type=int, default=100, help="records per message in *-batch modes")
    parser.add_argument("--stop-after-losses", type=int, default=2,
                        help="stop a collector's rate sweep after this many lossy steps in a row (0 = never)")
    parser.add_argument("--loss-tolerance", type=float, default=0.0, help="fraction of flows a lossless step may lose")
    parser.add_argument("--broker-port", type=int, default=19392)
    parser.add_argument("--port", type=int, default=47390, help="collector UDP port")
    parser.add_argument("--metrics-port", type=int, default=19480, help="kflow metrics port")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rcvbuf", type=int, default=4194304, help="SO_RCVBUF for both collectors")
    parser.add_argument("--tail-flows", type=int, default=5000, help="end-of-step marker flows (0 = none)")
    parser.add_argument("--tail-rate", type=int, default=20000, help="rate of the marker flows")
    parser.add_argument("--idle-seconds", type=float, default=2.0, help="idle CPU measured before each step")
    parser.add_argument("--min-drain", type=float, default=1.5, help="seconds to wait before checking for quiet")
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--count-timeout", type=float, default=120.0)
    parser.add_argument("--ready-timeout", type=float, default=20.0)
    parser.add_argument("--nfacctd", default=shutil.which("nfacctd") or "/usr/sbin/nfacctd")
    parser.add_argument("--nfacctd-librdkafka", default=str(DEPS / "librdkafka/lib"),
                        help="LD_LIBRARY_PATH for nfacctd ('' = Debian's librdkafka 2.0.2)")
    parser.add_argument("--nfacctd-rdkafka", action="append", default=[], metavar="KEY=VALUE",
                        help="extra librdkafka setting for nfacctd")
    parser.add_argument("--kflow-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra kflow property")
    parser.add_argument("--kflow-bin", default=os.environ.get("KFLOW_BIN", ""))
    parser.add_argument("--out", default=str(REPO / "out"))
    parser.add_argument("--keep-work", action="store_true", help="keep per-step logs and configs")
    args = parser.parse_args()

    # nfacctd's producer gets kflow's default librdkafka settings (read from kflow's reference
    # configuration, so the two stay alike) plus the queue size pmacct's QUICKSTART advises.
    args.nfacctd_rdkafka = {**kflow_default_producer_settings(args.kflow_bin),
                            "queue.buffering.max.messages": "8000000", **parse_settings(args.nfacctd_rdkafka)}
    args.kflow_set = parse_settings(args.kflow_set)
    # kflow's session limits must hold every exporter of the run plus the marker exporter.
    args.max_exporters = max([args.exporters] + [int(c) for c in args.exporter_sweep.split(",") if c.strip()])
    specs = []
    for name in (n.strip() for n in args.collectors.split(",") if n.strip()):
        kind = name.split("-")[0]
        if kind not in ("nfacctd", "kflow") or name not in (kind, f"{kind}-batch", "kflow-rr"):
            parser.error(f"unknown collector '{name}'")
        specs.append(CollectorSpec(name, kind, args.batch_records if name.endswith("-batch") else 1))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = build_ipfix_gen(out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workroot = out / f"bench-{stamp}"
    header_lines = machine_description()
    print("\n".join(header_lines), flush=True)

    def flows_for(rate: int) -> int:
        return args.flows or (int(rate * args.seconds) if rate else args.max_flows)

    def packing_of(text: str) -> int:
        return 0 if text.strip() in ("full", "0") else int(text)

    packing = packing_of(args.packing)
    rate_results: list[StepResult] = []
    exporter_results: list[StepResult] = []
    packing_results: list[StepResult] = []
    step_no = 0
    losses_in_a_row = {s.name: 0 for s in specs}
    rates = [parse_rate(r) for r in args.rates.split(",") if r.strip()]
    for rate in rates:
        for spec in specs:
            if args.stop_after_losses and losses_in_a_row[spec.name] >= args.stop_after_losses:
                continue
            step_no += 1
            r = run_step(spec, rate, args.exporters, flows_for(rate), args, gen, workroot, step_no, packing)
            rate_results.append(r)
            losses_in_a_row[spec.name] = 0 if r.lossless(args.loss_tolerance) else losses_in_a_row[spec.name] + 1
            print(step_line(r), flush=True)

    exporter_rate = parse_rate(args.exporter_rate)
    for count in (int(c) for c in args.exporter_sweep.split(",") if c.strip()):
        for spec in specs:
            step_no += 1
            # Every exporter sends templates first (before the window with --exporter-warmup): give each at
            # least 4 full data datagrams so the step measures steady state rather than template messages.
            flows = max(flows_for(exporter_rate), count * 31 * 4)
            r = run_step(spec, exporter_rate, count, flows, args, gen, workroot, step_no, packing,
                         warmup=args.exporter_warmup)
            exporter_results.append(r)
            print(step_line(r), flush=True)

    packing_rate = parse_rate(args.packing_rate)
    for records in (packing_of(p) for p in args.packing_sweep.split(",") if p.strip()):
        for spec in specs:
            step_no += 1
            r = run_step(spec, packing_rate, args.exporters, flows_for(packing_rate), args, gen, workroot, step_no,
                         records)
            packing_results.append(r)
            print(step_line(r), flush=True)

    report = [f"# kflow vs nfacctd benchmark, {stamp}", "", "```", *header_lines,
              "command: " + " ".join(sys.argv), "```", ""]
    for title, results, key in (("Rate sweep", rate_results, lambda r: r.rate),
                                ("Exporter sweep" + (" (templates learnt before each step)" if args.exporter_warmup
                                                     else " (templates learnt inside each step)"),
                                 exporter_results, lambda r: r.exporters),
                                ("Packing sweep (records per datagram; 0 = full)", packing_results,
                                 lambda r: r.packing)):
        if not results:
            continue
        text, markdown = sweep_section(title, results, key, args.loss_tolerance)
        print(text)
        report += markdown
    if args.components:
        components = component_figures(args, workroot)
        print("\n== kflow's halves apart (kflow-microbench) ==\n" + "\n".join(components))
        report += ["## kflow's halves apart (kflow-microbench)", "", "```", *components, "```", ""]
    report_path = out / f"bench-{stamp}.md"
    report_path.write_text("\n".join(report))
    raw_path = out / f"bench-{stamp}.json"
    raw_path.write_text(json.dumps([dataclasses.asdict(r) for r in rate_results + exporter_results + packing_results],
                                   indent=1))
    print(f"\nwrote {report_path} and {raw_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
