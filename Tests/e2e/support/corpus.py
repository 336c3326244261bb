"""The shared corpus of real exporters' packets (see corpus/README.md) and tshark's reading of it."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .procs import REPO


def corpus_dir() -> Path | None:
    for candidate in (os.environ.get("KFLOW_CORPUS"), "/work/shared/corpus", REPO.parent / "shared" / "corpus"):
        if candidate and (Path(candidate) / "sequences.json").exists():
            return Path(candidate)
    return None


_OPTIONS_TEMPLATE = re.compile(r"Options Template \(Id = (\d+)\)")


@dataclass
class Sequence:
    name: str
    protocol: str
    packets: list[Path]
    exporters: list[str]
    truth: dict

    def header(self, index: int) -> dict:
        return self.truth["packets"][index]["header"]

    def options_template_ids(self) -> set[int]:
        """The IDs of the options templates the sequence defines (their data records are not flows)."""
        options_ids: set[int] = set()
        for packet in self.truth["packets"]:
            for s in packet.get("sets", []):
                for template in s.get("templates", []):
                    match = _OPTIONS_TEMPLATE.search(template)
                    if match:
                        options_ids.add(int(match.group(1)))
        return options_ids

    def flow_rows(self) -> list[dict]:
        """The TSV rows of flow data records (options data records dropped), with the packet index."""
        root = corpus_dir()
        options_ids = self.options_template_ids()
        with open(root / "truth" / f"{self.name}.tsv", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        out = []
        for row in rows:
            set_id = row["set_id"]
            if set_id not in ("None", "") and int(set_id) in options_ids:
                continue
            out.append(row)
        return out


def load(name: str) -> Sequence:
    root = corpus_dir()
    entries = {entry["name"]: entry for entry in json.loads((root / "sequences.json").read_text())}
    entry = entries[name]
    truth = json.loads((root / "truth" / f"{name}.json").read_text())
    return Sequence(name, entry["protocol"], [root / p for p in entry["packets"]], entry["exporters"], truth)


def _int(text: str, base: int = 10) -> int:
    return int(text, base) if text else 0


def expected_record(sequence: Sequence, row: dict, dvc: str) -> dict:
    """The KFlow record tshark's row must become (time checked separately: it depends on the version)."""
    src = row["srcaddr"] or row["srcaddrv6"]
    dst = row["dstaddr"] or row["dstaddrv6"]
    return {
        "dvc": dvc,
        "src": ipaddress.ip_address(src).compressed,
        "srcp": _int(row["srcport"]),
        "dst": ipaddress.ip_address(dst).compressed,
        "dstp": _int(row["dstport"]),
        "proto": _int(row["protocol"]),
        "flags": _int(row["tcpflags"], 16),
        "bytes": _int(row["octets"]),
        "pkts": _int(row["packets"]),
    }


def reverse_record(sequence: Sequence, row: dict, dvc: str) -> dict | None:
    """The reverse flow kflow emits for a biflow row (output.biflow=split, docs/DECODING.md "Biflows"):
    RFC 5103 reverse counters, or NSEL responder octets beside initiator octets alone; addresses and ports
    swapped, flags from tshark's reverse tcpControlBits (in its JSON, not the TSV). None when its counters
    are zero (a one-way flow has no reverse flow)."""
    nsel = bool(row["initiator_octets"]) and not (row["octets"] or row["permanent_octets"] or row["post_octets"])
    octets = _int(row["rev_octets"] or row["rev_permanent_octets"]) + (_int(row["responder_octets"]) if nsel else 0)
    packets = _int(row["rev_packets"] or row["rev_permanent_packets"])
    if octets == 0 and packets == 0:
        return None
    key = sequence.truth["packets"][int(row["pkt"])]["records"][int(row["rec"])]["key"]
    forward = expected_record(sequence, row, dvc)
    return forward | {
        "src": forward["dst"], "srcp": forward["dstp"], "dst": forward["src"], "dstp": forward["srcp"],
        "flags": _int(key.get("rev_tcpflags", "").removeprefix("0x"), 16), "bytes": octets, "pkts": packets,
    }


def expected_time_ms(sequence: Sequence, packet_index: int) -> tuple[int, int]:
    """Inclusive range of the `time` field for a record of packet `packet_index`: IPFIX export time is
    whole seconds; NetFlow's unix_secs may carry a sub-second part (v5 unix_nsecs)."""
    header = sequence.header(packet_index)
    if "exporttime" in header:
        return int(header["exporttime"]) * 1000, int(header["exporttime"]) * 1000
    seconds = int(header["unix_secs"])
    return seconds * 1000, seconds * 1000 + 999
