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
             just before the generator starts until the collector is quiet; reported per million flows
  broker     Tansu's CPU the same way (it shares the two cores)
  memory     peak sum of PSS over the collector's process tree, sampled 4 times a second
  others     CPU used on the host by everything else during the step (to tell a quiet run from a noisy one)

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
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
DEPS = Path(os.environ.get("KFLOW_DEPS", "/opt/kflow-deps"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# One match per JSON record, whichever collector wrote it: (source address, packet count). kflow writes
# "src" ... "pkts", pmacct "ip_src" ... "packets"; both put the source first. Records are single lines.
RECORD = re.compile(rb'"(?:src|ip_src)":\s*"([^"]*)"[^\n]*?"(?:pkts|packets)":\s*(\d+)')
# Room per record in nfacctd's kafka_multi_values buffer (a byte count): nfacctd writes about 290
# bytes a record here, so N-record batches hold about N.
NFACCTD_RECORD_BYTES = 290
# The end-of-step marker flows come from this IPv4 /8 (the measured flows from 10/8 and fd00::/8).
TAIL_NET = 11
MARKER_PREFIX = b"11."


class BenchError(Exception):
    """A step could not be run; the message says which and why."""


# ---------------------------------------------------------------------------------------------------
# /proc readers

@dataclasses.dataclass
class ProcStat:
    pid: int
    ppid: int
    ticks: int        # utime + stime + cutime + cstime


def read_proc_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return ProcStat(pid, int(fields[1]), utime + stime + cutime + cstime)


def process_tree(root: int) -> list[ProcStat]:
    """root and all its live descendants. A reaped child's CPU is in its parent's cutime/cstime, so
    summing `ticks` over the tree counts every process the collector ever ran, once."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_proc_stat(int(entry.name))
            if stat:
                stats[stat.pid] = stat
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(stats[pid])
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    return sum(s.ticks for s in process_tree(root)) / CLK_TCK


def tree_pss_mb(root: int) -> float:
    total_kb = 0
    for stat in process_tree(root):
        try:
            for line in Path(f"/proc/{stat.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total_kb / 1024


def host_busy_seconds() -> float:
    """CPU-seconds the whole host spent not idle (all CPUs)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]                 # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK    # guest time is already in user


def udp_snmp() -> dict[str, int]:
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


def udp_socket_drops(port: int) -> tuple[int, int]:
    """(sockets bound to port, sum of their drop counters) from /proc/net/udp and udp6."""
    sockets = drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                sockets += 1
                drops += int(cols[-1])
    return sockets, drops


# ---------------------------------------------------------------------------------------------------
# Broker and topic

class Broker:
    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.bootstrap = f"127.0.0.1:{port}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise BenchError(f"something already listens on broker port {port}; pick another (--broker-port)")
        out = subprocess.run(["bash", str(REPO / "scripts/broker.sh"), str(port), str(log)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise BenchError(f"Tansu did not start on port {port}: {out.stderr.strip()} (log {log})")
        self.pid = int(out.stdout.strip().splitlines()[-1])

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        try:
            futures[topic].result(timeout=10)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return  # the client retried a request the broker had already carried out
            raise BenchError(f"creating topic {topic} with {partitions} partitions on {self.bootstrap}: {error}")
        except Exception as error:  # confluent-kafka raises KafkaException wrapping the broker's answer
            raise BenchError(f"creating topic {topic} with {partitions} partitions on {self.bootstrap}: {error}")

    def offsets_sum(self, topic: str, partitions: int) -> int:
        """Sum of ListOffsets(LATEST): Tansu's answer lags by up to a batch per partition, so this is
        only used to see whether the topic is still growing, never to count."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench-watch"})
        try:
            return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                       for p in range(partitions))
        finally:
            consumer.close()

    def stop(self) -> None:
        """Tansu is not our child (broker.sh started it) nor a group leader: signal it alone and watch
        /proc until it is gone, so the next step's broker can bind the port."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not process_alive(self.pid):
                    return
                time.sleep(0.05)
        raise BenchError(f"Tansu (pid {self.pid}) survived SIGKILL")


def process_alive(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return raw[raw.rindex(")") + 2] not in "ZX"


@dataclasses.dataclass
class TopicCount:
    messages: int = 0
    records: int = 0          # measured flows' records
    packets: int = 0          # their packet counts, summed
    markers: int = 0          # end-of-step marker records


def count_records(bootstrap: str, topic: str, partitions: int, timeout: float) -> TopicCount:
    """Reads topic from offset 0 to the end of every partition and counts records."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"bench-count-{topic}", "enable.auto.commit": False,
        "enable.partition.eof": True, "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    count = TopicCount()
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise BenchError(f"counting {topic}: partitions {sorted(set(range(partitions)) - at_end)} "
                                 f"did not reach their end within {timeout:.0f} s ({count.records} records so far)")
            batch = consumer.consume(num_messages=20000, timeout=1.0)
            values = []
            for message in batch:
                error = message.error()
                if error is None:
                    values.append(message.value() or b"")
                    at_end.discard(message.partition())
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise BenchError(f"counting {topic}: {error}")
            if values:
                count.messages += len(values)
                for source, packets in RECORD.findall(b"\n".join(values)):
                    if source.startswith(MARKER_PREFIX):
                        count.markers += 1
                    else:
                        count.records += 1
                        count.packets += int(packets)
    finally:
        consumer.close()
    return count


# ---------------------------------------------------------------------------------------------------
# Collectors

def stop_process(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid           # not our child (broker.sh's) or already reaped
            try:
                os.kill(pid, 0)
                done = 0
            except ProcessLookupError:
                pass
        if done == pid:
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:                         # the rest of the group (nfacctd writers) must not outlive the step
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclasses.dataclass
class CollectorSpec:
    name: str             # nfacctd, nfacctd-batch, kflow, kflow-batch
    kind: str             # nfacctd or kflow
    batch_records: int    # 1 = one record per Kafka message


class Collector:
    """A running collector: started fresh for one step, stopped after it."""

    def __init__(self, spec: CollectorSpec, args, workdir: Path, broker: Broker, topic: str, port: int):
        self.spec, self.port = spec, port
        self.log = workdir / f"{spec.name}.log"
        env = dict(os.environ)
        env.pop("KFLOW_BIN", None)   # kflow reads KFLOW_* variables as settings and would log a notice
        if spec.kind == "nfacctd":
            command = self._nfacctd_command(args, workdir, broker, topic, env)
        else:
            command = self._kflow_command(args, workdir, broker, topic)
        self.command = command
        self.process = subprocess.Popen(command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=workdir)
        self._wait_ready(args.ready_timeout)

    def _nfacctd_command(self, args, workdir, broker, topic, env) -> list[str]:
        rdkafka = workdir / "nfacctd-librdkafka.conf"
        # The same producer settings as kflow's defaults; pmacct's QUICKSTART also asks for a deep queue,
        # since each purge hands librdkafka a whole refresh interval's records at once.
        rdkafka.write_text("".join(f"global, {k}, {v}\n" for k, v in args.nfacctd_rdkafka.items()))
        template = string.Template((REPO / "bench/nfacctd.conf").read_text())
        conf = workdir / "nfacctd.conf"
        conf.write_text(template.substitute(
            logfile=self.log, port=self.port, rcvbuf=args.rcvbuf, topic=topic, broker_port=broker.port,
            # pmacct sizes its multi-value buffer in bytes: its flow records are about 330 bytes of JSON.
            multi_values=self.spec.batch_records * NFACCTD_RECORD_BYTES if self.spec.batch_records > 1 else 0,
            kafka_config_file=rdkafka))
        if args.nfacctd_librdkafka:
            # Debian's pmacct links librdkafka 2.0.2, whose ApiVersion v3 parsing fails against Tansu;
            # 2.8.0 (the one kflow links statically) is ABI-compatible (soname librdkafka.so.1).
            env["LD_LIBRARY_PATH"] = args.nfacctd_librdkafka
        return [args.nfacctd, "-f", str(conf)]

    def _kflow_command(self, args, workdir, broker, topic) -> list[str]:
        if not args.kflow_bin:
            raise BenchError("KFLOW_BIN is not set (make bench sets it to the release build's bin path)")
        master = Path(args.kflow_bin) / "kflow-master"
        if not master.exists():
            raise BenchError(f"{master} does not exist: build kflow first (make build)")
        props = {
            "server.host": "127.0.0.1", "server.port": self.port, "server.buffer.size": args.rcvbuf,
            "kafka.topic": topic, "kafka.props.bootstrap.servers": broker.bootstrap,
            "metrics.host": "127.0.0.1", "metrics.port": args.metrics_port,
            "output.batch.records": self.spec.batch_records,
        }
        props.update(args.kflow_set)
        conf = workdir / "kflow.properties"
        conf.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return [str(master), "-c", str(conf)]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.spec.name} exited with {self.process.returncode} on start-up; "
                                 f"see {self.log}: {tail(self.log)}")
            sockets, _ = udp_socket_drops(self.port)
            # nfacctd's core binds the port long before its Kafka plugin has allocated its cache, and what
            # arrives in between is lost: wait for the plugin's first (empty) purge.
            if sockets and (self.spec.kind != "nfacctd" or "Purging cache - END" in tail(self.log, 4000)):
                time.sleep(0.5)  # let the plugin / workers finish connecting to the broker
                return
            time.sleep(0.05)
        raise BenchError(f"{self.spec.name} did not bind UDP port {self.port} within {timeout:.0f} s; "
                         f"see {self.log}: {tail(self.log)}")

    def metrics(self, port: int) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                return reply.read().decode()
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.process.pid)


# kflow counters worth showing next to a step whenever they are not zero.
KFLOW_LOSS_COUNTERS = ("kflow_kafka_queue_full_drops_total", "kflow_kafka_produce_errors_total",
                       "kflow_kafka_delivery_failed_total", "kflow_decode_errors_total",
                       "kflow_receive_errors_total", "kflow_unknown_template_sets_total",
                       "kflow_kafka_lost_in_dead_workers_total", "kflow_worker_restarts_total")


def prometheus_totals(text: str) -> dict[str, float]:
    """Sums each metric over its label sets."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, _, value = line.rpartition(" ")
        name = name_and_labels.split("{", 1)[0]
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


def tail(path: Path, size: int = 600) -> str:
    try:
        data = path.read_bytes()[-size:]
    except FileNotFoundError:
        return "(no log)"
    return data.decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------------
# Generator

def build_generator(out: Path) -> Path:
    source = REPO / "tools/ipfix-gen/ipfix-gen.c"
    binary = out / "ipfix-gen"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def parse_summary(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)


# ---------------------------------------------------------------------------------------------------
# One step

@dataclasses.dataclass
class StepResult:
    collector: str
    rate: int
    exporters: int
    sent: int = 0
    offered: float = 0.0
    delivered: int = 0
    messages: int = 0
    socket_drops: int = 0
    rcvbuf_errors: int = 0
    cpu: float = 0.0
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

    @property
    def broker_cpu_per_million(self) -> float:
        return self.broker_cpu / self.work_millions if self.sent else float("nan")

    def lossless(self, tolerance: float) -> bool:
        return not self.error and self.sent > 0 and self.lost <= tolerance * self.sent


def run_step(spec: CollectorSpec, rate: int, exporters: int, flows: int, args, gen: Path, workroot: Path,
             step_no: int) -> StepResult:
    result = StepResult(spec.name, rate, exporters)
    workdir = workroot / f"{step_no:02d}-{spec.name}-{rate}-{exporters}"
    workdir.mkdir(parents=True, exist_ok=True)
    topic = f"bench-{spec.name}-{rate}-{exporters}-{step_no}"
    broker = Broker(args.broker_port, workdir / "tansu.log")
    collector = None
    try:
        broker.create_topic(topic, args.partitions)
        collector = Collector(spec, args, workdir, broker, topic, args.port)
        root = collector.process.pid

        # What the collector burns with no traffic (nfacctd forks a Kafka writer every refresh interval),
        # reported apart so a reader can tell fixed costs from per-flow ones.
        idle0, idle_processes = tree_cpu_seconds(root), len(process_tree(root))
        time.sleep(args.idle_seconds)
        result.idle_cpu_per_s = (tree_cpu_seconds(root) - idle0) / args.idle_seconds if args.idle_seconds else 0.0

        cpu0, broker0, busy0, snmp0 = tree_cpu_seconds(root), tree_cpu_seconds(broker.pid), host_busy_seconds(), udp_snmp()
        t0 = time.monotonic()
        command = [str(gen), "--dest", f"127.0.0.1:{args.port}", "--flows", str(flows), "--rate", str(rate),
                   "--exporters", str(exporters), "--v6-ratio", str(args.v6_ratio), "--seed", str(args.seed)]
        if args.burst:
            command += ["--burst", str(args.burst)]
        generator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        peak = 0.0
        while True:   # wait4 rather than poll(): it also returns the generator's own CPU use
            pid, status, usage = os.wait4(generator.pid, os.WNOHANG)
            if pid:
                generator.returncode = os.waitstatus_to_exitcode(status)
                break
            peak = max(peak, tree_pss_mb(root))
            time.sleep(0.25)
        result.gen_cpu = usage.ru_utime + usage.ru_stime
        line = generator.stdout.read().strip()
        if generator.returncode != 0 or not line.startswith("ipfix-gen "):
            raise BenchError(f"ipfix-gen failed ({generator.returncode}): {' '.join(command)}: {line!r}")
        summary = parse_summary(line)
        result.sent = int(summary["flows"])
        result.offered = float(summary["rate"])
        expected_packets = int(summary["sum_packets"])
        tail_sent = 0
        if args.tail_flows:
            # A slow trickle of marker flows (sources in TAIL_NET/8) pushes out whatever a collector holds
            # in a partly filled buffer (pmacct's core->plugin buffer ships only when full), so records
            # still held are not mistaken for lost ones. Markers are counted apart; their CPU is not.
            tail = subprocess.run([str(gen), "--dest", f"127.0.0.1:{args.port}", "--flows", str(args.tail_flows),
                                   "--rate", str(args.tail_rate), "--src-net", str(TAIL_NET), "--seed", str(args.seed)],
                                  capture_output=True, text=True)
            tail_sent = int(parse_summary(tail.stdout.strip()).get("flows", 0))
        result.tail_sent = tail_sent

        # Quiet means: the collector used < 20 ms CPU in the last second, the topic stopped growing, and
        # it runs no more processes than when idle (nfacctd's Kafka writers may wait, CPU-less, on each other).
        last_cpu, last_offsets = tree_cpu_seconds(root), -1
        deadline = time.monotonic() + args.drain_timeout
        time.sleep(args.min_drain)
        while time.monotonic() < deadline:
            time.sleep(1.0)
            peak = max(peak, tree_pss_mb(root))
            cpu, offsets = tree_cpu_seconds(root), broker.offsets_sum(topic, args.partitions)
            if cpu - last_cpu < 0.02 and offsets == last_offsets and len(process_tree(root)) <= idle_processes:
                break
            last_cpu, last_offsets = cpu, offsets
        else:
            result.error = f"still busy after {args.drain_timeout:.0f} s drain"

        result.seconds = time.monotonic() - t0
        result.cpu = tree_cpu_seconds(root) - cpu0
        result.broker_cpu = tree_cpu_seconds(broker.pid) - broker0
        busy = host_busy_seconds() - busy0
        snmp1 = udp_snmp()
        result.rcvbuf_errors = snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0)
        _, result.socket_drops = udp_socket_drops(args.port)
        result.peak_pss_mb = peak
        others = busy - result.cpu - result.broker_cpu - result.gen_cpu
        result.others_cpu_pct = 100.0 * max(others, 0.0) / result.seconds if result.seconds else 0.0
        if collector.process.poll() is not None:
            result.error = f"{spec.name} exited with {collector.process.returncode} during the step: {tail(collector.log)}"

        if spec.kind == "kflow":
            # kflow's own account of where flows went, so a loss can be placed (socket, decoder, producer).
            text = collector.metrics(args.metrics_port)
            (workdir / "metrics.txt").write_text(text)
            result.collector_counters = {name: value for name, value in prometheus_totals(text).items()
                                         if name in KFLOW_LOSS_COUNTERS and value}
        count = count_records(broker.bootstrap, topic, args.partitions, args.count_timeout)
        result.messages, result.delivered, result.tail_delivered = count.messages, count.records, count.markers
        # Every flow has a distinct key, so with all records in, the packet sums must agree exactly.
        result.packets_ok = result.delivered != result.sent or count.packets == expected_packets
    except BenchError as error:
        result.error = str(error)
    finally:
        if collector:
            collector.stop()
        broker.stop()
        if not args.keep_work:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------------
# Reporting

COLUMNS = ["collector", "target/s", "offered/s", "exporters", "sent", "delivered", "lost", "rec/msg", "sock drops dgr",
           "RcvbufErr dgr", "CPU-s", "CPU-s/M", "idle CPU %", "broker CPU-s/M", "gen CPU-s/M", "peak PSS MB", "others %",
           "note"]


def row(r: StepResult) -> list[str]:
    notes = [r.error] if r.error else []
    if not r.packets_ok:
        notes.append("packet sums differ")
    if r.tail_delivered != r.tail_sent:
        notes.append(f"markers {r.tail_delivered}/{r.tail_sent}")
    notes += [f"{name.removeprefix('kflow_').removesuffix('_total')} {value:,.0f}"
              for name, value in r.collector_counters.items()]
    note = "; ".join(notes)
    records_per_message = f"{(r.delivered + r.tail_delivered) / r.messages:.1f}" if r.messages else "-"
    gen_cpu_per_million = r.gen_cpu / (r.sent / 1e6) if r.sent else float("nan")
    return [r.collector, f"{r.rate:,}" if r.rate else "max", f"{r.offered:,.0f}", str(r.exporters), f"{r.sent:,}",
            f"{r.delivered:,}", f"{r.lost:,}", records_per_message, f"{r.socket_drops:,}", f"{r.rcvbuf_errors:,}",
            f"{r.cpu:.2f}", f"{r.cpu_per_million:.2f}", f"{100 * r.idle_cpu_per_s:.1f}", f"{r.broker_cpu_per_million:.2f}",
            f"{gen_cpu_per_million:.2f}", f"{r.peak_pss_mb:.0f}", f"{r.others_cpu_pct:.0f}", note[:160]]


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
    header = ["step", "pair", "kflow CPU-s/M", "nfacctd CPU-s/M", "CPU ratio", "kflow lost", "nfacctd lost"]
    rows = []
    for k in sorted({key(r) for r in results}):
        for ours, theirs in pairs:
            a, b = by.get((ours, k)), by.get((theirs, k))
            if a and b and not a.error and not b.error:
                rows.append([str(k), f"{ours}/{theirs}", f"{a.cpu_per_million:.2f}", f"{b.cpu_per_million:.2f}",
                             f"{a.cpu_per_million / b.cpu_per_million:.3f}", f"{a.lost:,}", f"{b.lost:,}"])
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


# ---------------------------------------------------------------------------------------------------

def parse_rate(text: str) -> int:
    text = text.strip().lower()
    if text in ("max", "0"):
        return 0
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


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
    broker = Broker(args.broker_port, workroot / "broker-microbench.log")
    try:
        for extra in ([], ["--set", "compression.type=lz4"]):
            for batch, messages in ((1, 2_000_000), (args.batch_records, 2_000_000 // args.batch_records)):
                lines += run(["--kafka", broker.bootstrap, "--messages", str(messages), "--batch", str(batch), *extra])
    finally:
        broker.stop()
    return lines


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collectors", default="nfacctd,kflow,kflow-batch",
                        help="comma-separated: nfacctd, nfacctd-batch, kflow, kflow-batch")
    parser.add_argument("--rates", default="10k,50k,100k,200k,300k,400k,600k,800k",
                        help="rate sweep, flows/s (k, M suffixes; 'max' = flat out); empty to skip")
    parser.add_argument("--seconds", type=float, default=5.0, help="step length: flows = rate x seconds")
    parser.add_argument("--flows", type=int, default=0, help="flows per step (overrides --seconds)")
    parser.add_argument("--max-flows", type=int, default=2_000_000, help="flows for a 'max' step")
    parser.add_argument("--exporters", type=int, default=1, help="exporters during the rate sweep")
    parser.add_argument("--components", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure decode + JSON alone and librdkafka alone (kflow-microbench)")
    parser.add_argument("--exporter-sweep", default="1,100,1000,10000", help="exporter counts, e.g. 1,100,1000,10000")
    parser.add_argument("--exporter-rate", default="100k", help="rate of the exporter sweep")
    parser.add_argument("--burst", type=int, default=0,
                        help="datagrams per exporter turn (ipfix-gen --burst; 0 = its default, 32/exporters)")
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
    specs = []
    for name in (n.strip() for n in args.collectors.split(",") if n.strip()):
        kind = name.split("-")[0]
        if kind not in ("nfacctd", "kflow") or name not in (kind, f"{kind}-batch"):
            parser.error(f"unknown collector '{name}'")
        specs.append(CollectorSpec(name, kind, args.batch_records if name.endswith("-batch") else 1))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = build_generator(out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workroot = out / f"bench-{stamp}"
    header_lines = machine_description()
    print("\n".join(header_lines), flush=True)

    def flows_for(rate: int) -> int:
        return args.flows or (int(rate * args.seconds) if rate else args.max_flows)

    rate_results: list[StepResult] = []
    exporter_results: list[StepResult] = []
    step_no = 0
    losses_in_a_row = {s.name: 0 for s in specs}
    rates = [parse_rate(r) for r in args.rates.split(",") if r.strip()]
    for rate in rates:
        for spec in specs:
            if args.stop_after_losses and losses_in_a_row[spec.name] >= args.stop_after_losses:
                continue
            step_no += 1
            r = run_step(spec, rate, args.exporters, flows_for(rate), args, gen, workroot, step_no)
            rate_results.append(r)
            losses_in_a_row[spec.name] = 0 if r.lossless(args.loss_tolerance) else losses_in_a_row[spec.name] + 1
            print(text_table(COLUMNS, [row(r)]).splitlines()[1], flush=True)

    exporter_rate = parse_rate(args.exporter_rate)
    for count in (int(c) for c in args.exporter_sweep.split(",") if c.strip()):
        for spec in specs:
            step_no += 1
            # Every exporter sends templates first: give each at least 4 full data datagrams so the step
            # measures steady state rather than 10,000 template messages.
            flows = max(flows_for(exporter_rate), count * 31 * 4)
            r = run_step(spec, exporter_rate, count, flows, args, gen, workroot, step_no)
            exporter_results.append(r)
            print(text_table(COLUMNS, [row(r)]).splitlines()[1], flush=True)

    report = [f"# kflow vs nfacctd benchmark, {stamp}", "", "```", *header_lines,
              "command: " + " ".join(sys.argv), "```", ""]
    for title, results, key in (("Rate sweep", rate_results, lambda r: r.rate),
                                ("Exporter sweep", exporter_results, lambda r: r.exporters)):
        if not results:
            continue
        rows = [row(r) for r in sorted(results, key=lambda r: (key(r), r.collector))]
        rheader, rrows = ratio_rows(results, args.loss_tolerance, key)
        summary = lossless_summary(results, args.loss_tolerance) if title == "Rate sweep" else []
        print(f"\n== {title} ==\n" + text_table(COLUMNS, rows))
        if rrows:
            print("\n" + text_table(rheader, rrows))
        if summary:
            print("\n" + "\n".join(summary))
        report += [f"## {title}", "", markdown_table(COLUMNS, rows), ""]
        if rrows:
            report += ["Cost ratios (CPU-s per million flows, same step):", "", markdown_table(rheader, rrows), ""]
        report += [f"- {line}" for line in summary] + [""]
    if args.components:
        components = component_figures(args, workroot)
        print("\n== kflow's halves apart (kflow-microbench) ==\n" + "\n".join(components))
        report += ["## kflow's halves apart (kflow-microbench)", "", "```", *components, "```", ""]
    report_path = out / f"bench-{stamp}.md"
    report_path.write_text("\n".join(report))
    raw_path = out / f"bench-{stamp}.json"
    raw_path.write_text(json.dumps([dataclasses.asdict(r) for r in rate_results + exporter_results], indent=1))
    print(f"\nwrote {report_path} and {raw_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
