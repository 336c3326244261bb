"""Builds Ethernet/IPv4/IPv6 TCP and UDP frames and writes them as a classic pcap file.

Only what the tests need: correct lengths and checksums (softflowd ignores checksums, but a capture that
tshark or tcpdump would call broken would make a failure harder to read)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Packet:
    """One IP packet between two endpoints. `ip_length` is what a flow exporter counts as bytes.
    ICMP and ICMPv6 take `sport` as the type and `dport` as the code; `vlans` are 802.1Q tags (TPID
    0x8100), outermost first: two are QinQ as double 802.1Q tagging, which pmacctd parses (frames with
    802.1ad's 0x88A8 it drops)."""

    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    payload: bytes = b""
    tcp_flags: int = 0
    timestamp: float = 1_700_000_000.0
    vlans: tuple[int, ...] = ()

    @property
    def is_v6(self) -> bool:
        return ipaddress.ip_address(self.src).version == 6

    def transport(self) -> bytes:
        src = ipaddress.ip_address(self.src).packed
        dst = ipaddress.ip_address(self.dst).packed
        if self.proto == PROTO_TCP:
            header = struct.pack("!HHIIBBHHH", self.sport, self.dport, 1, 0, 5 << 4, self.tcp_flags, 65535, 0, 0)
        elif self.proto == PROTO_UDP:
            header = struct.pack("!HHHH", self.sport, self.dport, 8 + len(self.payload), 0)
        elif self.proto in (PROTO_ICMP, PROTO_ICMPV6):
            header = struct.pack("!BBHI", self.sport, self.dport, 0, 0x00010001)  # echo: identifier, sequence
        else:
            raise ValueError(f"protocol {self.proto} is not TCP, UDP, ICMP or ICMPv6")
        segment = header + self.payload
        if self.proto == PROTO_ICMP:
            return segment[:2] + struct.pack("!H", _checksum(segment)) + segment[4:]
        if self.is_v6:
            pseudo = src + dst + struct.pack("!IxxxB", len(segment), self.proto)
        else:
            pseudo = src + dst + struct.pack("!xBH", self.proto, len(segment))
        checksum = _checksum(pseudo + segment) or 0xFFFF
        offset = {PROTO_TCP: 16, PROTO_UDP: 6, PROTO_ICMPV6: 2}[self.proto]
        return segment[:offset] + struct.pack("!H", checksum) + segment[offset + 2 :]

    def ip(self) -> bytes:
        segment = self.transport()
        src = ipaddress.ip_address(self.src).packed
        dst = ipaddress.ip_address(self.dst).packed
        if self.is_v6:
            return struct.pack("!IHBB", 6 << 28, len(segment), self.proto, 64) + src + dst + segment
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, self.proto, 0, src, dst)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + segment

    @property
    def ip_length(self) -> int:
        return len(self.ip())

    def frame(self) -> bytes:
        ethertype = ETHERTYPE_IPV6 if self.is_v6 else ETHERTYPE_IPV4
        tags = b"".join(struct.pack("!HH", 0x8100, vid) for vid in self.vlans)
        return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tags + struct.pack("!H", ethertype) + self.ip()


def write_pcap(path, packets: list[Packet]) -> None:
    """Classic pcap, microsecond timestamps, LINKTYPE_ETHERNET."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for packet in packets:
            frame = packet.frame()
            seconds = int(packet.timestamp)
            micros = int(round((packet.timestamp - seconds) * 1_000_000))
            out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
            out.write(frame)


@dataclass
class ExpectedFlow:
    """One direction of a conversation as a flow exporter reports it."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    bytes: int = 0
    pkts: int = 0
    flags: int = 0
    packets: list[Packet] = field(default_factory=list, repr=False)

    def key(self) -> tuple:
        return (self.src, self.sport, self.dst, self.dport, self.proto)


def expected_flows(packets: list[Packet]) -> dict[tuple, ExpectedFlow]:
    """Aggregates packets by 5-tuple: bytes are IP lengths, flags are the OR of the TCP flags."""
    flows: dict[tuple, ExpectedFlow] = {}
    for packet in packets:
        src = ipaddress.ip_address(packet.src).compressed
        dst = ipaddress.ip_address(packet.dst).compressed
        key = (src, packet.sport, dst, packet.dport, packet.proto)
        flow = flows.setdefault(key, ExpectedFlow(src, dst, packet.sport, packet.dport, packet.proto))
        flow.bytes += packet.ip_length
        flow.pkts += 1
        flow.flags |= packet.tcp_flags
        flow.packets.append(packet)
    return flows
