"""Hand-built IPFIX (RFC 7011) and NetFlow v5 messages for tests that need exact bytes, valid or broken.

A builder, not a decoder: each function returns bytes, so a test can cut, corrupt or repeat them."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

# Information elements (id, length) of the KFlow base fields.
SOURCE_IPV4 = (8, 4)
DESTINATION_IPV4 = (12, 4)
SOURCE_IPV6 = (27, 16)
DESTINATION_IPV6 = (28, 16)
SOURCE_PORT = (7, 2)
DESTINATION_PORT = (11, 2)
PROTOCOL = (4, 1)
TCP_FLAGS = (6, 1)
OCTET_DELTA = (1, 8)
PACKET_DELTA = (2, 8)

FLOW_FIELDS_V4 = [SOURCE_IPV4, DESTINATION_IPV4, SOURCE_PORT, DESTINATION_PORT, PROTOCOL, TCP_FLAGS, OCTET_DELTA, PACKET_DELTA]
FLOW_FIELDS_V6 = [SOURCE_IPV6, DESTINATION_IPV6, SOURCE_PORT, DESTINATION_PORT, PROTOCOL, TCP_FLAGS, OCTET_DELTA, PACKET_DELTA]


@dataclass(frozen=True)
class Flow:
    """One flow and the KFlow JSON record it must become."""

    src: str
    dst: str
    srcp: int
    dstp: int
    proto: int
    flags: int
    bytes: int
    pkts: int

    @property
    def is_v6(self) -> bool:
        return ipaddress.ip_address(self.src).version == 6

    def encode(self) -> bytes:
        return (
            ipaddress.ip_address(self.src).packed
            + ipaddress.ip_address(self.dst).packed
            + struct.pack("!HHBBQQ", self.srcp, self.dstp, self.proto, self.flags, self.bytes, self.pkts)
        )

    def kflow_record(self, dvc: str, export_time: int) -> dict:
        return {
            "dvc": dvc,
            "src": ipaddress.ip_address(self.src).compressed,
            "srcp": self.srcp,
            "dst": ipaddress.ip_address(self.dst).compressed,
            "dstp": self.dstp,
            "proto": self.proto,
            "flags": self.flags,
            "bytes": self.bytes,
            "pkts": self.pkts,
            "time": export_time * 1000,
        }


def header(length: int, export_time: int, sequence: int = 0, domain: int = 0, version: int = 10) -> bytes:
    return struct.pack("!HHIII", version, length, export_time, sequence, domain)


def set_bytes(set_id: int, body: bytes, length: int | None = None) -> bytes:
    """A set; `length` overrides the header's length field (to lie about it)."""
    return struct.pack("!HH", set_id, 4 + len(body) if length is None else length) + body


def template_record(template_id: int, fields: list[tuple[int, int]]) -> bytes:
    return struct.pack("!HH", template_id, len(fields)) + b"".join(struct.pack("!HH", i, n) for i, n in fields)


def template_set(template_id: int, fields: list[tuple[int, int]]) -> bytes:
    return set_bytes(2, template_record(template_id, fields))


def message(sets: list[bytes], export_time: int, sequence: int = 0, domain: int = 0) -> bytes:
    body = b"".join(sets)
    return header(16 + len(body), export_time, sequence, domain) + body


def flow_message(flows: list[Flow], export_time: int, template_id: int = 256, sequence: int = 0,
                 domain: int = 0, with_template: bool = True) -> bytes:
    """Template (v4 or v6 layout, by the first flow) and one data set holding all flows."""
    fields = FLOW_FIELDS_V6 if flows[0].is_v6 else FLOW_FIELDS_V4
    sets = [template_set(template_id, fields)] if with_template else []
    sets.append(set_bytes(template_id, b"".join(flow.encode() for flow in flows)))
    return message(sets, export_time, sequence, domain)


def netflow_v5(flows: list[Flow], unix_secs: int, sequence: int = 0) -> bytes:
    """NetFlow v5: 24-octet header and 48-octet IPv4 records."""
    out = struct.pack("!HHIIIIBBH", 5, len(flows), 1000, unix_secs, 0, sequence, 0, 0, 0)
    for flow in flows:
        out += struct.pack(
            "!4s4s4sHHIIIIHHBBBBHHBBH",
            ipaddress.ip_address(flow.src).packed, ipaddress.ip_address(flow.dst).packed, b"\0" * 4,
            0, 0, flow.pkts, flow.bytes, 0, 0, flow.srcp, flow.dstp, 0, flow.flags, flow.proto, 0, 0, 0, 0, 0, 0,
        )
    return out
