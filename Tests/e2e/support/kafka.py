"""Reads KFlow records back from a topic.

Uses assign() on explicit partitions, never a consumer group (Tansu's group coordination can hang), and
counts records by consuming them (Tansu's ListOffsets(LATEST) under-counts)."""

from __future__ import annotations

import json
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition


class TopicReader:
    """Reads one topic from the beginning of every partition, across calls."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-{topic}",  # required by the client; no group protocol is used with assign()
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
            "socket.connection.setup.timeout.ms": 2000,
            "reconnect.backoff.max.ms": 500,
        })
        self.assigned: set[int] = set()
        self.records: list[dict] = []
        self.raw: list[bytes] = []

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
            self.assigned.update(new)
            self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(self.assigned)])

    def read(self, count: int, timeout: float, settle: float = 1.0) -> list[dict]:
        """Polls until `count` records in total have been read or `timeout` seconds pass; then keeps polling
        for `settle` seconds so that extra (unexpected) records show up too. Returns all records so far."""
        deadline = time.monotonic() + timeout
        settle_until = None
        next_metadata = 0.0
        while True:
            now = time.monotonic()
            if len(self.records) >= count and settle_until is None:
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
            self.raw.append(message.value())
            self.records.append(json.loads(message.value()))
        return self.records

    def close(self) -> None:
        self.consumer.close()


def read_records(bootstrap: str, topic: str, count: int, timeout: float = 20.0, settle: float = 1.0) -> list[dict]:
    reader = TopicReader(bootstrap, topic)
    try:
        return reader.read(count, timeout, settle)
    finally:
        reader.close()
