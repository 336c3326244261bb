"""One step of a sweep (a fresh broker, topic and collector; ipfix-gen at the step's rate; the collector
measured until quiet; the topic counted) and kflow's halves measured apart with kflow-microbench."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

import common  # noqa: F401  (the harness's import path)
from collectors import CollectorSpec, start_collector
from common import BenchError, HarnessError
from measure import (TAIL_NET, CpuCgroup, count_records, host_busy_seconds, process_tree, tree_cpu_seconds, tree_pss_mb,
                     udp_snmp, udp_socket_drops)
from support.kafka import end_offsets_sum
from support.loadgen import IpfixGen
from support.procs import Broker, tail

# Source ports of the exporters when a step warms them up first (the same ports in both runs of ipfix-gen);
# below the kernel's ephemeral range, so nothing else holds them.
WARMUP_PORT_BASE = 20000


@dataclasses.dataclass
class StepResult:
    collector: str
    rate: int
    exporters: int
    packing: int = 0          # data records per datagram; 0 = as many as fit in 1,400 bytes (~30)
    sent: int = 0
    offered: float = 0.0
    delivered: int = 0
    messages: int = 0
    socket_drops: int = 0
    rcvbuf_errors: int = 0
    cpu: float = 0.0
    cg_cpu: float | None = None          # the same window from the step's cgroup (cpu.stat usage_usec)
    cg_cpu_delivered: float | None = None  # cgroup CPU from the first datagram to the last delivery (±1 s poll)
    broker_cpu: float = 0.0
    gen_cpu: float = 0.0
    others_cpu_pct: float = 0.0
    seconds: float = 0.0
    peak_pss_mb: float = 0.0
    packets_ok: bool = True
    idle_cpu_per_s: float = 0.0
    collector_counters: dict = dataclasses.field(default_factory=dict)
    tail_sent: int = 0
    tail_delivered: int = 0
    warmup_sent: int = 0        # flows that taught the exporters' templates before the measured window
    error: str = ""

    @property
    def lost(self) -> int:
        return self.sent - self.delivered

    @property
    def work_millions(self) -> float:
        """Flows the collector handled while its CPU was measured: the step's and the end markers."""
        return (self.sent + self.tail_sent) / 1e6

    @property
    def cpu_per_million(self) -> float:
        return self.cpu / self.work_millions if self.sent else float("nan")

    def per_million(self, seconds: float | None) -> float:
        return seconds / self.work_millions if self.sent and seconds is not None else float("nan")

    @property
    def broker_cpu_per_million(self) -> float:
        return self.broker_cpu / self.work_millions if self.sent else float("nan")

    def lossless(self, tolerance: float) -> bool:
        return not self.error and self.sent > 0 and self.lost <= tolerance * self.sent


def run_step(spec: CollectorSpec, rate: int, exporters: int, flows: int, args, gen: Path, workroot: Path,
             step_no: int, packing: int = 0, warmup: bool = False) -> StepResult:
    result = StepResult(spec.name, rate, exporters, packing)
    workdir = workroot / f"{step_no:02d}-{spec.name}-{rate}-{exporters}-{packing}"
    workdir.mkdir(parents=True, exist_ok=True)
    topic = f"bench-{spec.name}-{rate}-{exporters}-{step_no}"
    broker = Broker(args.broker_port, workdir / "tansu.log").start()  # no broker: no step can run, stop here
    collector = None
    cgroup = CpuCgroup(f"kflow-bench-{os.getpid()}-{step_no}")
    try:
        broker.create_topic(topic, args.partitions)
        collector = start_collector(spec, args, workdir, broker, topic, args.port)
        root = collector.process.pid
        cgroup.adopt([p.pid for p in process_tree(root)])

        # What the collector burns with no traffic (nfacctd forks a Kafka writer every refresh interval),
        # reported apart so a reader can tell fixed costs from per-flow ones.
        idle0, idle_processes = tree_cpu_seconds(root), len(process_tree(root))
        time.sleep(args.idle_seconds)
        result.idle_cpu_per_s = (tree_cpu_seconds(root) - idle0) / args.idle_seconds if args.idle_seconds else 0.0

        extra = ["--v6-ratio", str(args.v6_ratio), "--records-per-datagram", str(packing)]
        extra += ["--burst", str(args.burst)] if args.burst else []
        if warmup and exporters > 1:
            # Steady state: every exporter (the same source ports as the step's) has sent its templates and
            # one record before the window opens, so the step measures flows, not template learning.
            # Its records are markers (counted apart, outside the CPU window).
            ports = ["--source-port-base", str(WARMUP_PORT_BASE)]
            warm = IpfixGen(gen, args.port, exporters, min(rate, 50_000), exporters, seed=args.seed,
                            template_refresh=args.template_refresh,
                            extra=["--src-net", str(TAIL_NET), "--records-per-datagram", "1", *ports]).start()
            result.warmup_sent = int(warm.wait(timeout=600)["flows"])
            extra += [*ports, "--templates-known"]  # refreshes then come spread out, as in a steady state
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 1.0:  # until the collector has settled for a second
                before = tree_cpu_seconds(root)
                time.sleep(0.5)
                if tree_cpu_seconds(root) - before > 0.01:
                    quiet_since = time.monotonic()

        cpu0, broker0, busy0, snmp0 = tree_cpu_seconds(root), tree_cpu_seconds(broker.pid), host_busy_seconds(), udp_snmp()
        cg0 = cgroup.usage_seconds()
        t0 = time.monotonic()
        generator = IpfixGen(gen, args.port, flows, rate, exporters, args.seed, template_refresh=args.template_refresh,
                             extra=extra).start()
        peak = 0.0

        def sample_pss():
            nonlocal peak
            peak = max(peak, tree_pss_mb(root))

        summary = generator.wait_measured(sample_pss, 0.25)
        result.gen_cpu = generator.cpu_seconds
        result.sent = int(summary["flows"])
        result.offered = float(summary["rate"])
        expected_packets = int(summary["sum_packets"])
        tail_sent = 0
        if args.tail_flows:
            # A slow trickle of marker flows (sources in TAIL_NET/8) pushes out whatever a collector holds
            # in a partly filled buffer (pmacct's core->plugin buffer ships only when full), so records
            # still held are not mistaken for lost ones. Markers are counted apart; their CPU is not.
            markers = IpfixGen(gen, args.port, args.tail_flows, args.tail_rate, exporters=1, seed=args.seed,
                               extra=["--src-net", str(TAIL_NET)]).start()
            try:
                tail_sent = int(markers.wait(timeout=600)["flows"])
            except (HarnessError, TimeoutError):
                pass  # the step's note shows it: "markers 0/0"
        result.tail_sent = tail_sent

        # Quiet means: the collector used < 20 ms CPU in the last second, the topic stopped growing, and
        # it runs no more processes than when idle (nfacctd's Kafka writers may wait, CPU-less, on each other).
        last_cpu, last_offsets, cg_delivered = tree_cpu_seconds(root), -1, None
        deadline = time.monotonic() + args.drain_timeout
        time.sleep(args.min_drain)
        while time.monotonic() < deadline:
            time.sleep(1.0)
            peak = max(peak, tree_pss_mb(root))
            cpu, offsets = tree_cpu_seconds(root), end_offsets_sum(broker.bootstrap, topic, args.partitions)
            if offsets != last_offsets:  # the topic grew since the last poll: delivery was still going on
                cg_delivered = cgroup.usage_seconds()
            if cpu - last_cpu < 0.02 and offsets == last_offsets and len(process_tree(root)) <= idle_processes:
                break
            last_cpu, last_offsets = cpu, offsets
        else:
            result.error = f"still busy after {args.drain_timeout:.0f} s drain"

        result.seconds = time.monotonic() - t0
        result.cpu = tree_cpu_seconds(root) - cpu0
        cg1 = cgroup.usage_seconds()
        if cg0 is not None and cg1 is not None:
            result.cg_cpu = cg1 - cg0
            result.cg_cpu_delivered = (cg_delivered if cg_delivered is not None else cg1) - cg0
        result.broker_cpu = tree_cpu_seconds(broker.pid) - broker0
        busy = host_busy_seconds() - busy0
        snmp1 = udp_snmp()
        result.rcvbuf_errors = snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0)
        _, result.socket_drops = udp_socket_drops(args.port)
        result.peak_pss_mb = peak
        others = busy - result.cpu - result.broker_cpu - result.gen_cpu
        result.others_cpu_pct = 100.0 * max(others, 0.0) / result.seconds if result.seconds else 0.0
        if collector.process.poll() is not None:
            result.error = (f"{spec.name} exited with {collector.process.returncode} during the step: "
                            f"{tail(collector.log, 10)}")

        text, result.collector_counters = collector.counters()
        if text:
            (workdir / "metrics.txt").write_text(text)
        count = count_records(broker.bootstrap, topic, args.partitions, args.count_timeout)
        result.messages, result.delivered, result.tail_delivered = count.messages, count.records, count.markers
        # Every flow has a distinct key, so with all records in, the packet sums must agree exactly.
        result.packets_ok = result.delivered != result.sent or count.packets == expected_packets
    except HarnessError as error:  # BenchError included
        result.error = str(error)
    finally:
        if collector:
            collector.stop()
        broker.stop()
        cgroup.close()
        if not args.keep_work:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def component_figures(args, workroot: Path) -> list[str]:
    """kflow's two halves measured apart with kflow-microbench: decode + JSON on one core (no Kafka),
    and librdkafka alone producing the same JSON records to a real Tansu with kflow's defaults, one
    record per message and batched, without and with lz4. What librdkafka alone costs is a floor
    under the end-to-end figures above."""
    bench = Path(args.kflow_bin) / "kflow-microbench"
    if not bench.exists():
        return [f"({bench} not found: component figures skipped; make build builds it)"]

    def run(arguments: list[str]) -> list[str]:
        out = subprocess.run([str(bench), *arguments], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise BenchError(f"kflow-microbench {' '.join(arguments)} failed: {out.stderr.strip()[-400:]}")
        return out.stdout.splitlines()

    lines = run([])
    workroot.mkdir(parents=True, exist_ok=True)
    broker = Broker(args.broker_port, workroot / "broker-microbench.log").start()
    try:
        for extra in ([], ["--set", "compression.type=lz4"]):
            for batch, messages in ((1, 2_000_000), (args.batch_records, 2_000_000 // args.batch_records)):
                lines += run(["--kafka", broker.bootstrap, "--messages", str(messages), "--batch", str(batch), *extra])
    finally:
        broker.stop()
    return lines
