#!/usr/bin/env python3
"""Writes the decoder fuzz target's seed corpus from the shared corpus of real exporters' packets
(../shared/corpus, see its README): each replay sequence becomes inputs of consecutive datagrams in the
target's format (Fuzz/Support/FuzzInput.swift: 1-byte control, 2-byte big-endian length, the bytes), at
most MAX_BYTES each, so templates and the data sets that use them travel together. Nothing is committed:
`make fuzz` writes these into out/ each time."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

MAX_BYTES = 16384


def corpus_dir() -> Path | None:
    repo = Path(__file__).resolve().parent.parent
    for candidate in (os.environ.get("KFLOW_CORPUS"), "/work/shared/corpus", repo.parent / "shared" / "corpus"):
        if candidate and (Path(candidate) / "sequences.json").exists():
            return Path(candidate)
    return None


def sflow_seeds(out: Path) -> int:
    """The sFlow target's seeds: each datagram of Tests/sflow-corpus after its version word (the target
    supplies it), read with the e2e tests' pcap reader."""
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo / "Tests" / "e2e"))
    from support.sflow import udp_payloads
    written = 0
    for pcap in sorted((repo / "Tests" / "sflow-corpus").glob("*.pcap")):
        for index, payload in enumerate(udp_payloads(pcap)):
            (out / f"{pcap.stem}.{index}").write_bytes(payload[4:])
            written += 1
    print(f"fuzz-seeds: {written} sFlow seeds in {out}")
    return 0


def main() -> int:
    if sys.argv[1] == "--sflow":
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        return sflow_seeds(out)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    corpus = corpus_dir()
    if corpus is None:
        print("fuzz-seeds: no corpus (set KFLOW_CORPUS); the decoder target starts from nothing", file=sys.stderr)
        return 0
    written = 0
    for sequence in json.loads((corpus / "sequences.json").read_text()):
        first_exporter = sequence["exporters"][0] if sequence["exporters"] else ""
        chunk, part = b"", 0
        for file, exporter in zip(sequence["packets"], sequence["exporters"]):
            payload = (corpus / file).read_bytes()[:0xFFFF]
            framed = struct.pack("!BH", 0 if exporter == first_exporter else 1, len(payload)) + payload
            if chunk and len(chunk) + len(framed) > MAX_BYTES:
                (out / f"{sequence['name']}.{part}").write_bytes(chunk)
                chunk, part, written = b"", part + 1, written + 1
            chunk += framed
        if chunk:
            (out / f"{sequence['name']}.{part}").write_bytes(chunk)
            written += 1
    print(f"fuzz-seeds: {written} decoder seeds from {corpus} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
