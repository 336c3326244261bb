"""What a step measures outside the collector: CPU and PSS of process trees, host CPU, UDP drops (all from
/proc), and the records that reached the topic (counted by consuming them with the harness's reader)."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import common  # noqa: F401  (the harness's import path)
from common import BenchError, HarnessError
from support.kafka import TopicReader
from support.procs import udp_sockets

CLK_TCK = os.sysconf("SC_CLK_TCK")
# One match per JSON record, whichever collector wrote it: (source address, packet count). kflow writes
# "src" ... "pkts", pmacct "ip_src" ... "packets"; both put the source first. Records are single lines.
RECORD = re.compile(rb'"(?:src|ip_src)":\s*"([^"]*)"[^\n]*?"(?:pkts|packets)":\s*(\d+)')
# The end-of-step marker flows come from this IPv4 /8 (the measured flows from 10/8 and fd00::/8).
TAIL_NET = 11
MARKER_PREFIX = b"11."


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


class CpuCgroup:
    """A cgroup v2 directory of its own for one step's collector: every process it runs (master, workers,
    nfacctd's forked Kafka writers, threads that have exited) is charged to it, to the nanosecond, which
    `/proc/PID/stat` (clock ticks, children only once reaped) cannot promise. On a hybrid v1/v2 host the
    v2 hierarchy is /sys/fs/cgroup/unified; cpu.stat's usage_usec needs no controller enabled.
    `usage_seconds()` is None when no cgroup could be made (not root, no v2 hierarchy)."""

    def __init__(self, name: str):
        self.path: Path | None = None
        for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            if (root / "cgroup.procs").exists() and (root / "cgroup.controllers").exists():
                try:
                    path = root / name
                    path.mkdir(exist_ok=True)
                    self.path, self.parent = path, root
                except OSError:
                    pass
                break

    def adopt(self, pids: list[int]) -> None:
        """Moves these processes (each with all its threads) in; what they fork later starts inside."""
        if not self.path:
            return
        for pid in pids:
            try:
                (self.path / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass  # exited meanwhile

    def usage_seconds(self) -> float | None:
        if not self.path:
            return None
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except OSError:
            pass
        return None

    def close(self) -> None:
        """Moves whatever is left back to the parent and removes the directory."""
        if not self.path:
            return
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                try:
                    (self.parent / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            self.path.rmdir()
        except OSError:
            pass
        self.path = None


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
    sockets = udp_sockets(port)
    return len(sockets), sum(sockets.values())


# ---------------------------------------------------------------------------------------------------
# Records in the topic

@dataclasses.dataclass
class TopicCount:
    messages: int = 0
    records: int = 0          # measured flows' records
    packets: int = 0          # their packet counts, summed
    markers: int = 0          # end-of-step marker records


def count_records(bootstrap: str, topic: str, partitions: int, timeout: float) -> TopicCount:
    """Reads topic from offset 0 to the end of every partition and counts records (a record = one JSON
    object, so a batched message counts for each object it holds)."""
    reader = TopicReader(bootstrap, topic, partitions)
    count = TopicCount()
    try:
        for values in reader.batches_to_end(timeout):
            count.messages += len(values)
            for source, packets in RECORD.findall(b"\n".join(values)):
                if source.startswith(MARKER_PREFIX):
                    count.markers += 1
                else:
                    count.records += 1
                    count.packets += int(packets)
    except HarnessError as error:
        raise BenchError(f"counting {topic}: {error} ({count.records} records so far)") from None
    finally:
        reader.close()
    return count
