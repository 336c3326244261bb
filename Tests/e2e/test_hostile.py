"""Hostile input over the socket: kflow must count it, survive it, keep its memory bounded, never restart a
worker, emit nothing for it, and still decode the next valid message exactly."""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from support import ipfix
from support.ipfix import Flow
from support.procs import rss_kib, wait_until

EXPORT_TIME = 1_700_000_000
PROBE = Flow("10.0.0.1", "10.0.0.2", 443, 51000, 6, 24, 1500, 3)
PROBE_V6 = Flow("2001:db8::1", "2001:db8::2", 80, 52000, 6, 2, 60, 1)
# Two templates (IPv4 256, IPv6 257) and a data set for each: the message every category is cut from.
VALID = ipfix.message([
    ipfix.template_set(256, ipfix.FLOW_FIELDS_V4), ipfix.template_set(257, ipfix.FLOW_FIELDS_V6),
    ipfix.set_bytes(256, PROBE.encode()), ipfix.set_bytes(257, PROBE_V6.encode()),
], EXPORT_TIME)


def send_from_many_ports(kflow, datagrams: list[bytes], ports: int = 64, pause_every: int = 100) -> None:
    """Spreads datagrams over `ports` source ports, so both workers (SO_REUSEPORT hashes the 4-tuple) see them."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(ports)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        for index, datagram in enumerate(datagrams):
            sockets[index % ports].sendto(datagram, ("127.0.0.1", kflow.port))
            if index % pause_every == pause_every - 1:
                time.sleep(0.01)  # the receive queue is finite; a drop would make the counts meaningless
    finally:
        for sock in sockets:
            sock.close()


def truncations() -> list[bytes]:
    return [VALID[:cut] for cut in range(0, len(VALID))]


def garbage() -> list[bytes]:
    rng = random.Random(7011)
    out = [bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 2, 3, 15, 16, 17, 100, 1400, 9000])))
           for _ in range(400)]
    # Random bodies behind plausible IPFIX and v9 headers, with the right and wrong length. (Not v5: any
    # 48 octets are a valid v5 record, so random v5 bodies are flows, not garbage.)
    for version in (9, 10):
        for _ in range(100):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 600)))
            length = 16 + len(body) if rng.random() < 0.5 else rng.randrange(0, 65536)
            out.append(struct.pack("!HH", version, length) + body)
    return out


def bad_lengths() -> list[bytes]:
    header = lambda length, body=b"": ipfix.header(length, EXPORT_TIME) + body
    template = ipfix.template_set(256, ipfix.FLOW_FIELDS_V4)
    return [
        header(0), header(0, template),  # message length 0 (a naive walker loops forever)
        header(65535), header(65535, template),  # longer than the datagram
        header(8), header(15),  # shorter than the header itself
        struct.pack("!HH", 10, 16),  # header cut after the length
        header(20, ipfix.set_bytes(256, b"", length=0)),  # set length 0
        header(24, ipfix.set_bytes(256, b"\0\0\0\0", length=0) + b""),
        header(20, ipfix.set_bytes(256, b"", length=3)),  # set length shorter than the set header
        header(16 + len(template), ipfix.set_bytes(2, template[4:], length=60000)),  # set past the message
        struct.pack("!HHIIII", 9, 65535, 0, EXPORT_TIME, 0, 0),  # v9 claiming 65535 records, none present
        struct.pack("!HHIIIIBBH", 5, 30, 0, EXPORT_TIME, 0, 0, 0, 0, 0),  # v5 claiming 30 records, none present
        struct.pack("!HHIIIIBBH", 5, 65535, 0, EXPORT_TIME, 0, 0, 0, 0, 0) + b"\0" * 47,  # not one whole record
    ]


def bad_templates() -> list[bytes]:
    out = []
    # Zero-field templates (a withdrawal in IPFIX), followed by data for them.
    for template_id in range(256, 264):
        out.append(ipfix.message([ipfix.set_bytes(2, struct.pack("!HH", template_id, 0)),
                                  ipfix.set_bytes(template_id, b"\x01" * 32)], EXPORT_TIME))
    # Options template with zero scope fields / more scope fields than fields.
    out.append(ipfix.message([ipfix.set_bytes(3, struct.pack("!HHHHH", 300, 1, 0, 1, 4))], EXPORT_TIME))
    out.append(ipfix.message([ipfix.set_bytes(3, struct.pack("!HHH", 301, 1, 5) + struct.pack("!HH", 1, 4))],
                             EXPORT_TIME))
    # Template whose field count runs past the set; template ids below 256; a data set with a reserved id.
    out.append(ipfix.message([ipfix.set_bytes(2, struct.pack("!HH", 302, 500) + struct.pack("!HH", 8, 4))],
                             EXPORT_TIME))
    out.append(ipfix.message([ipfix.template_set(7, ipfix.FLOW_FIELDS_V4)], EXPORT_TIME))
    out.append(ipfix.message([ipfix.set_bytes(100, b"\0" * 40)], EXPORT_TIME))
    # Fields of length 0, and a record of 65535 varlen octets claimed inside a short data set.
    out.append(ipfix.message([ipfix.template_set(303, [(8, 0), (12, 0), (1, 0)]),
                              ipfix.set_bytes(303, b"\0" * 16)], EXPORT_TIME))
    out.append(ipfix.message([ipfix.template_set(304, [(8, 4), (82, 65535)]),
                              ipfix.set_bytes(304, b"\x0a\0\0\x01\xff\xff\xff" + b"a" * 20)], EXPORT_TIME))
    # Data for templates nobody defined.
    out.append(ipfix.message([ipfix.set_bytes(40000, b"\0" * 64)], EXPORT_TIME, domain=99))
    return out


def template_flood(ports: int, datagrams_per_port: int, templates_per_datagram: int = 8,
                   fields_per_template: int = 40) -> list[list[bytes]]:
    """Per source port, datagrams that define distinct template ids (256..65535) of many fields each."""
    fields = [(1 + (i % 120), 4) for i in range(fields_per_template)]
    per_port = []
    for port_index in range(ports):
        datagrams = []
        next_id = 256
        for _ in range(datagrams_per_port):
            records = b""
            for _ in range(templates_per_datagram):
                records += ipfix.template_record(next_id, fields)
                next_id += 1
            datagrams.append(ipfix.message([ipfix.set_bytes(2, records)], EXPORT_TIME, domain=port_index))
        per_port.append(datagrams)
    return per_port


def assert_still_decodes(kflow, records, workers_before, expected_records_before: int = 0) -> None:
    """kflow alive, same workers, and a valid message from a new port becomes exactly its records."""
    assert kflow.process.poll() is None, "kflow-master died"
    assert kflow.worker_pids() == workers_before, "a worker was restarted"
    kflow.send([VALID])
    got = records(expected_records_before + 2, timeout=15, settle=1.5)
    assert got[expected_records_before:] and sorted(got[expected_records_before:], key=lambda r: r["src"]) == [
        PROBE.kflow_record("127.0.0.1", EXPORT_TIME),
        PROBE_V6.kflow_record("127.0.0.1", EXPORT_TIME),
    ], f"records after hostile input: {got}"
    metrics = kflow.metrics()
    assert metrics.get("kflow_workers") == 2
    assert metrics.total("kflow_worker_restarts_total") == 0


# Reasons each category must raise (DecodeErrorKind labels); other reasons may rise too.
@pytest.mark.parametrize("make, reasons", [
    pytest.param(truncations, {"truncated_header", "bad_message_length"}, id="truncated-datagrams"),
    pytest.param(garbage, {"unsupported_version"}, id="random-bytes-and-random-bodies"),
    pytest.param(bad_lengths, {"truncated_header", "bad_message_length", "bad_set_length", "v5_count_mismatch"},
                 id="zero-huge-and-short-lengths"),
    pytest.param(bad_templates, {"malformed_template", "truncated_template", "reserved_set_id", "truncated_record"},
                 id="zero-field-and-malformed-templates"),
])
def test_hostile_datagrams_are_counted_and_nothing_else_changes(kflow, records, make, reasons):
    workers = kflow.worker_pids()
    before = kflow.metrics()
    datagrams = make()
    send_from_many_ports(kflow, datagrams)
    time.sleep(1.0)
    after = kflow.metrics()

    received = after.total("kflow_datagrams_received_total") - before.total("kflow_datagrams_received_total")
    assert received == len(datagrams), f"received {received} of {len(datagrams)} datagrams"
    errors_before = before.by_label("kflow_decode_errors_total", "reason")
    errors_after = after.by_label("kflow_decode_errors_total", "reason")
    rose = {reason: errors_after[reason] - errors_before.get(reason, 0) for reason in errors_after
            if errors_after[reason] > errors_before.get(reason, 0)}
    # Records behind an unknown template cannot be counted (their length is unknown): kflow counts the sets.
    unknown = after.total("kflow_unknown_template_sets_total") - before.total("kflow_unknown_template_sets_total")
    print(f"{make.__name__}: {len(datagrams)} datagrams; decode errors by reason {rose}; unknown-template {unknown}")
    assert reasons <= set(rose), f"reasons not counted: {sorted(reasons - set(rose))}; counted: {rose}"
    if make in (truncations, garbage):
        # Nearly every datagram here is broken; a collector that counts only a few of them hides trouble.
        assert sum(rose.values()) >= len(datagrams) * 0.9, rose
    if make is bad_templates:
        assert unknown >= 1, "data for an undefined template was not counted"

    assert_still_decodes(kflow, records, workers)


def send_flood(kflow, flood: list[list[bytes]]) -> int:
    """Each port's datagrams from a socket of its own, paced by kflow itself: every 500 datagrams it waits
    (at most 10 s) until kflow has received what was sent, so a slow debug build on a busy machine is not
    flooded past its receive buffers and the figures stay comparable."""
    received_before = kflow.metrics().total("kflow_datagrams_received_total")
    sent = 0

    def caught_up() -> bool:
        return kflow.metrics().total("kflow_datagrams_received_total") - received_before >= sent - 50

    for datagrams in flood:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for datagram in datagrams:
                sock.sendto(datagram, ("127.0.0.1", kflow.port))
                sent += 1
                if sent % 500 == 0:
                    try:
                        wait_until(caught_up, 10.0, 0.02)
                    except TimeoutError:
                        pass  # counted as drops below
    try:
        wait_until(lambda: kflow.metrics().total("kflow_datagrams_received_total") - received_before >= sent,
                   10.0, 0.05)
    except TimeoutError:
        pass
    return sent


def test_template_flood_keeps_memory_bounded_and_decoding_working(kflow, records):
    """Two floods of ~150,000 distinct templates each (1,200 source ports × 128 template ids, 40 fields):
    the first fills any template cache limit, the second must not grow the workers any further."""
    workers = kflow.worker_pids()
    rss_start = {pid: rss_kib(pid) for pid in workers}
    ports, per_port, per_datagram = 1200, 16, 8
    templates = ports * per_port * per_datagram

    sent = send_flood(kflow, template_flood(ports, per_port, per_datagram))
    rss_first = {pid: rss_kib(pid) for pid in workers}
    sent += send_flood(kflow, template_flood(ports, per_port, per_datagram))
    rss_second = {pid: rss_kib(pid) for pid in workers}

    metrics = kflow.metrics()
    print(f"template flood: {sent} datagrams, {2 * templates} templates; "
          f"templates_active={metrics.total('kflow_templates_active')}; RSS KiB start {rss_start} "
          f"after flood 1 {rss_first} after flood 2 {rss_second}; "
          f"received {metrics.total('kflow_datagrams_received_total')}")
    assert metrics.total("kflow_datagrams_received_total") >= sent * 0.95, "too many datagrams dropped to judge"
    assert 0 < metrics.total("kflow_templates_active") <= 2 * templates
    for pid in workers:
        growth_mib = (rss_second[pid] - rss_first[pid]) / 1024
        assert growth_mib < 16, f"worker {pid} grew by {growth_mib:.1f} MiB in the second flood: unbounded"
        assert rss_second[pid] < 512 * 1024, f"worker {pid} RSS {rss_second[pid]} KiB"
    assert kflow.process.poll() is None and kflow.worker_pids() == workers


def test_after_a_template_flood_a_new_exporter_still_gets_its_flows_decoded(kflow, records):
    """A flooding exporter may be refused templates, but a well-behaved exporter arriving later must not be
    locked out (for templates.lifetime) because someone else filled the cache."""
    workers = kflow.worker_pids()
    send_flood(kflow, template_flood(1200, 16, 8))
    flooded = kflow.metrics()
    try:
        assert_still_decodes(kflow, records, workers)
    except AssertionError as failure:
        after = kflow.metrics()
        raise AssertionError(
            f"{failure}\nafter the flood: kflow_templates_active={flooded.total('kflow_templates_active')}, "
            f"kflow_templates_rejected_total={flooded.total('kflow_templates_rejected_total')}; the new exporter's "
            f"templates rejected: {after.total('kflow_templates_rejected_total') - flooded.total('kflow_templates_rejected_total')}"
        ) from None
