"""The collectors a step compares, each started fresh for one step and stopped after it: nfacctd (pmacct)
with bench/nfacctd.conf, and kflow through the harness's Kflow wrapper (the one the end-to-end tests use)."""
from __future__ import annotations

import dataclasses
import os
import signal
import string
import subprocess
import time
from pathlib import Path

import common  # noqa: F401  (the harness's import path)
from common import REPO, BenchError, HarnessError
from measure import udp_socket_drops
from support.procs import Broker, Kflow, tail

# Room per record in nfacctd's kafka_multi_values buffer (a byte count): nfacctd writes about 290
# bytes a record here, so N-record batches hold about N.
NFACCTD_RECORD_BYTES = 290

# kflow counters worth showing next to a step whenever they are not zero.
KFLOW_LOSS_COUNTERS = ("kflow_kafka_queue_full_drops_total", "kflow_kafka_produce_errors_total",
                       "kflow_kafka_delivery_failed_total", "kflow_decode_errors_total",
                       "kflow_receive_errors_total", "kflow_unknown_template_sets_total",
                       "kflow_kafka_lost_in_dead_workers_total", "kflow_worker_restarts_total")


@dataclasses.dataclass
class CollectorSpec:
    name: str             # nfacctd, nfacctd-batch, kflow, kflow-batch, kflow-rr
    kind: str             # nfacctd or kflow
    batch_records: int    # 1 = one record per Kafka message


def start_collector(spec: CollectorSpec, args, workdir: Path, broker: Broker, topic: str, port: int):
    """A running collector of `spec`'s kind, ready for traffic on UDP `port`."""
    kind = NfacctdCollector if spec.kind == "nfacctd" else KflowCollector
    return kind(spec, args, workdir, broker, topic, port)


class NfacctdCollector:
    def __init__(self, spec: CollectorSpec, args, workdir: Path, broker: Broker, topic: str, port: int):
        self.spec, self.port = spec, port
        self.log = workdir / f"{spec.name}.log"
        env = {k: v for k, v in os.environ.items() if k != "KFLOW_BIN"}
        rdkafka = workdir / "nfacctd-librdkafka.conf"
        # The same producer settings as kflow's defaults; pmacct's QUICKSTART also asks for a deep queue,
        # since each purge hands librdkafka a whole refresh interval's records at once.
        rdkafka.write_text("".join(f"global, {k}, {v}\n" for k, v in args.nfacctd_rdkafka.items()))
        template = string.Template((REPO / "bench/nfacctd.conf").read_text())
        conf = workdir / "nfacctd.conf"
        conf.write_text(template.substitute(
            logfile=self.log, port=port, rcvbuf=args.rcvbuf, topic=topic, broker_port=broker.port,
            # pmacct sizes its multi-value buffer in bytes: its flow records are about 330 bytes of JSON.
            multi_values=spec.batch_records * NFACCTD_RECORD_BYTES if spec.batch_records > 1 else 0,
            kafka_config_file=rdkafka))
        if args.nfacctd_librdkafka:
            # Debian's pmacct links librdkafka 2.0.2, whose ApiVersion v3 parsing fails against Tansu;
            # 2.8.0 (the one kflow links statically) is ABI-compatible (soname librdkafka.so.1).
            env["LD_LIBRARY_PATH"] = args.nfacctd_librdkafka
        self.command = [args.nfacctd, "-f", str(conf)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=workdir)
        self._wait_ready(args.ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.spec.name} exited with {self.process.returncode} on start-up; "
                                 f"see {self.log}: {tail(self.log, 10)}")
            sockets, _ = udp_socket_drops(self.port)
            # nfacctd's core binds the port long before its Kafka plugin has allocated its cache, and what
            # arrives in between is lost: wait for the plugin's first (empty) purge.
            if sockets and "Purging cache - END" in tail(self.log, 60):
                time.sleep(0.5)  # let the plugin finish connecting to the broker
                return
            time.sleep(0.05)
        raise BenchError(f"{self.spec.name} did not bind UDP port {self.port} within {timeout:.0f} s; "
                         f"see {self.log}: {tail(self.log, 10)}")

    def counters(self) -> tuple[str, dict[str, float]]:
        """nfacctd has no metrics endpoint."""
        return "", {}

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` s; the rest of the group (nfacctd's Kafka
        writers) must not outlive the step either."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            if sig == signal.SIGTERM:
                try:
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
        self.process.wait(5)


class KflowCollector:
    def __init__(self, spec: CollectorSpec, args, workdir: Path, broker: Broker, topic: str, port: int):
        if not args.kflow_bin:
            raise BenchError("KFLOW_BIN is not set (make bench sets it to the release build's bin path)")
        self.spec, self.port, self.metrics_port = spec, port, args.metrics_port
        properties = {
            "server.host": "127.0.0.1", "server.port": port, "server.buffer.size": args.rcvbuf,
            "kafka.topic": topic, "kafka.props.bootstrap.servers": broker.bootstrap,
            "metrics.host": "127.0.0.1", "metrics.port": args.metrics_port,
            "output.batch.records": spec.batch_records,
            # ipfix-gen's exporters all send from 127.0.0.1 (one source port each): the per-address limit
            # (64 sessions by default, against one host cycling ports) would evict all but 64 of them.
            "exporters.max.per.address": args.max_exporters + 1,
            "exporters.max": args.max_exporters + 1,
        }
        if spec.name == "kflow-rr":
            properties["server.balance"] = "round-robin"  # one exporter spread over every worker
        properties.update(args.kflow_set)
        self.kflow = Kflow(workdir, properties, bin_dir=Path(args.kflow_bin))
        self.log = self.kflow.stderr_path
        try:
            self.kflow.start(args.ready_timeout)  # until /metrics shows every worker running
        except HarnessError as error:
            self.stop()
            raise BenchError(f"{spec.name} did not start: {error}") from None
        self.process = self.kflow.process
        time.sleep(0.5)  # let the workers finish connecting to the broker

    def counters(self) -> tuple[str, dict[str, float]]:
        """kflow's /metrics text and its loss counters that are not zero: kflow's own account of where flows
        went, so that a loss can be placed (socket, decoder, producer)."""
        try:
            metrics = self.kflow.metrics()
        except (OSError, RuntimeError, ValueError):
            return "", {}
        return metrics.text, {name: value for name, value in metrics.totals().items()
                              if name in KFLOW_LOSS_COUNTERS and value}

    def stop(self) -> None:
        try:
            self.kflow.stop(timeout=10.0)
        except TimeoutError:
            pass  # its process group was killed; the next step starts a fresh one
