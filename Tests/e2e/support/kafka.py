"""Reads records back from a topic: the one topic reader of the end-to-end tests, the benchmark and the
Swift Kafka tests (which run `python -m support.kafka`, see `main`).

Uses assign() on explicit partitions, never a consumer group (Tansu's group coordination can hang), and
counts records by consuming them (Tansu's ListOffsets(LATEST) under-counts)."""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .procs import HarnessError


class TopicReader:
    """Reads one topic from offset 0 of every partition, across calls. Partitions are found from the
    topic's metadata as they appear, unless `partitions` names how many there are."""

    def __init__(self, bootstrap: str, topic: str, partitions: int | None = None):
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}",  # required by the client; no group protocol is used with assign()
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,  # for `batches_to_end`; other reads skip these events
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": 10485760,
            "topic.metadata.refresh.interval.ms": 1000,
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 500,
        })
        self.assigned: set[int] = set()
        self.records: list[dict] = []
        self.raw: list[bytes] = []
        if partitions is not None:
            self._assign(range(partitions))

    def _assign(self, partitions) -> None:
        self.assigned.update(partitions)
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in sorted(self.assigned)])

    def _assign_new_partitions(self) -> None:
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=2)
        except KafkaException:
            return
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return
        new = [p for p in topic.partitions if p not in self.assigned]
        if new:
            self._assign(new)

    def read_values(self, count: int, timeout: float, settle: float = 1.0) -> list[bytes]:
        """Polls until `count` messages in total have been read or `timeout` seconds pass; then keeps polling
        for `settle` seconds so that extra (unexpected) messages show up too. Returns all payloads so far."""
        deadline = time.monotonic() + timeout
        settle_until = None
        next_metadata = 0.0
        while True:
            now = time.monotonic()
            if len(self.raw) >= count and settle_until is None:
                settle_until = now + settle
            if settle_until is not None and now >= settle_until:
                break
            if now >= deadline:
                break
            if now >= next_metadata:
                self._assign_new_partitions()
                next_metadata = now + 1.0
            if not self.assigned:
                time.sleep(0.2)
                continue
            message = self.consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            self.raw.append(message.value() or b"")
        return self.raw

    def read(self, count: int, timeout: float, settle: float = 1.0) -> list[dict]:
        """`read_values` for KFlow records (one JSON object a message): all records so far."""
        self.read_values(count, timeout, settle)
        self.records.extend(json.loads(value) for value in self.raw[len(self.records):])
        return self.records

    def batches_to_end(self, timeout: float, batch: int = 20000):
        """Yields the payloads of each consumed batch until every assigned partition has reached its end;
        HarnessError when one did not within `timeout` seconds or the client reports an error."""
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while not self.assigned or len(at_end) < len(self.assigned):
            if time.monotonic() > deadline:
                missing = sorted(self.assigned - at_end) if self.assigned else "(none found)"
                raise HarnessError(f"partitions {missing} did not reach their end within {timeout:.0f} s")
            if not self.assigned:
                self._assign_new_partitions()
                time.sleep(0.2)
                continue
            values = []
            for message in self.consumer.consume(num_messages=batch, timeout=1.0):
                error = message.error()
                if error is None:
                    values.append(message.value() or b"")
                    at_end.discard(message.partition())
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise HarnessError(f"reading {self.topic}: {error}")
            if values:
                yield values

    def close(self) -> None:
        self.consumer.close()


def read_records(bootstrap: str, topic: str, count: int, timeout: float = 20.0, settle: float = 1.0) -> list[dict]:
    reader = TopicReader(bootstrap, topic)
    try:
        return reader.read(count, timeout, settle)
    finally:
        reader.close()


def end_offsets_sum(bootstrap: str, topic: str, partitions: int) -> int:
    """Sum of ListOffsets(LATEST) over the partitions. Tansu's answer lags by up to a batch per partition:
    use it to see whether a topic still grows, never to count."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{topic}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(partitions))
    finally:
        consumer.close()


def main(argv: list[str]) -> int:
    """`python -m support.kafka BOOTSTRAP TOPIC EXPECTED TIMEOUT_S`: prints the payloads read (until EXPECTED
    arrived plus 1 s for extras, or the timeout) as a JSON list of hex strings. The Swift tests' reader."""
    if len(argv) != 4:
        print("usage: python -m support.kafka BOOTSTRAP TOPIC EXPECTED TIMEOUT_S", file=sys.stderr)
        return 2
    bootstrap, topic, expected, timeout = argv[0], argv[1], int(argv[2]), float(argv[3])
    reader = TopicReader(bootstrap, topic)
    try:
        values = reader.read_values(expected, timeout, settle=1.0)
    finally:
        reader.close()
    print(json.dumps([value.hex() for value in values]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
