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
