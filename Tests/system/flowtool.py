"""Sends numbered IPFIX flows and finds them again in Kafka; run inside the guest's network namespace.

Every flow of batch B carries pkts=B and bytes=index (0..count-1), so a collector that loses, duplicates
or garbles records is caught by looking for exactly those (pkts, bytes) pairs in the topic.

  flowtool.py send    --batch B --count N [--rate FLOWS_PER_S] [--port 4739] [--source-port P] [--no-template] [--domain D]
  flowtool.py collect --batch B --count N [--timeout S] [--topic ipfix] [--bootstrap 127.0.0.1:9092]
  flowtool.py absent  --batch B [--wait S]     (how many records of batch B are in Kafka right now)

`collect` prints one JSON line: {"found": K, "duplicates": D, "missing": [first few indexes], "wrong": [...]}
and exits 0 when K == N, D == 0 and nothing is wrong, 1 otherwise."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from support import ipfix  # noqa: E402  (the project's IPFIX message builder)
from support.kafka import TopicReader  # noqa: E402

FLOWS_PER_MESSAGE = 20


def flow(batch: int, index: int) -> ipfix.Flow:
    return ipfix.Flow(src=f"192.0.2.{1 + index % 250}", dst="198.51.100.7", srcp=10000 + index % 50000,
                      dstp=443, proto=6, flags=0x18, bytes=index, pkts=batch)


def send(batch: int, count: int, rate: float, port: int, source_port: int = 0, template: bool = True,
         domain: int | None = None) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if source_port:
        sock.bind(("127.0.0.1", source_port))  # one exporter session across runs (templates are per session)
    start = time.monotonic()
    sequence = 0
    for first in range(0, count, FLOWS_PER_MESSAGE):
        flows = [flow(batch, i) for i in range(first, min(count, first + FLOWS_PER_MESSAGE))]
        # The template goes with every message (unless told not to): a worker of a new generation must
        # decode the first datagram it sees.
        message = ipfix.flow_message(flows, int(time.time()), sequence=sequence, domain=domain if domain is not None else batch,
                                    with_template=template)
        sock.sendto(message, ("127.0.0.1", port))
        sequence += len(flows)
        if rate > 0:
            ahead = start + (first + len(flows)) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    print(json.dumps({"sent": count, "seconds": round(time.monotonic() - start, 3)}))


def records_of(reader: TopicReader, batch: int) -> list[dict]:
    return [r for r in reader.records if r.get("pkts") == batch]


def collect(batch: int, count: int, timeout: float, bootstrap: str, topic: str) -> int:
    reader = TopicReader(bootstrap, topic)
    try:
        deadline = time.monotonic() + timeout
        while len(records_of(reader, batch)) < count and time.monotonic() < deadline:
            reader.read(10**9, timeout=min(1.0, max(0.1, deadline - time.monotonic())), settle=0)
        reader.read(10**9, timeout=1.0, settle=0)  # one more second, so that duplicates show up too
        mine = records_of(reader, batch)
    finally:
        reader.close()
    seen: dict[int, int] = {}
    wrong = []
    for record in mine:
        index = record.get("bytes")
        expected = flow(batch, index).kflow_record("127.0.0.1", 0) if isinstance(index, int) else None
        if expected is None or any(record.get(k) != v for k, v in expected.items() if k != "time"):
            wrong.append(record)
            continue
        seen[index] = seen.get(index, 0) + 1
    missing = [i for i in range(count) if i not in seen]
    duplicates = sum(n - 1 for n in seen.values())
    print(json.dumps({"found": len(seen), "duplicates": duplicates, "missing": missing[:10],
                      "missing_count": len(missing), "wrong": wrong[:3]}))
    return 0 if not missing and duplicates == 0 and not wrong else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["send", "collect", "absent"])
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--port", type=int, default=4739)
    parser.add_argument("--source-port", type=int, default=0)
    parser.add_argument("--no-template", action="store_true")
    parser.add_argument("--domain", type=int, default=None, help="observation domain (default: the batch)")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--wait", type=float, default=2)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="ipfix")
    args = parser.parse_args()
    if args.command == "send":
        send(args.batch, args.count, args.rate, args.port, args.source_port, not args.no_template, args.domain)
        return 0
    if args.command == "collect":
        return collect(args.batch, args.count, args.timeout, args.bootstrap, args.topic)
    reader = TopicReader(args.bootstrap, args.topic)
    try:
        reader.read(10**9, timeout=args.wait, settle=0)
        print(json.dumps({"found": len(records_of(reader, args.batch))}))
    finally:
        reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
