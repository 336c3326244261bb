"""sFlow v5 for the tests: tshark's decoding of captured datagrams as the reference (what kflow must write
for each flow sample), UDP payloads out of a pcap, a small datagram builder for hostile and metrics tests,
and pmacctd's sfprobe plugin as a real exporter."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
from pathlib import Path

# The optional fields an sFlow record can carry, as kflow names them (output.fields).
FIELDS = "sampling,in_if,out_if,vlan,tos,nexthop,src_as,dst_as,src_mask,dst_mask"


# MARK: - tshark as the reference

def _find(pairs, key, default=None):
    for k, v in pairs:
        if k == key:
            return v
    return default


def _children(pairs):
    return [(k, v) for k, v in pairs if isinstance(v, list) and v and isinstance(v[0], tuple)]


def _int(text) -> int:
    return int(text, 16) if str(text).startswith("0x") else int(text)


def _address(text: str) -> str:
    return ipaddress.ip_address(text).compressed


def _from_header(record: dict, header_tree) -> None:
    """Fills `record` from tshark's dissection of a sampled header: the first IP layer and the transport
    layer after it (top level only: what an ICMP error quotes is nested inside the icmp layer)."""
    ip_seen = vlan_seen = False
    for name, layer in header_tree:
        if name == "vlan" and not vlan_seen:
            vlan_seen = True  # the outermost tag; VID 0 is a priority tag, no VLAN
            vid = _int(_find(layer, "vlan.id", "0"))
            if vid:
                record["vlan"] = vid
        elif name == "ip" and not ip_seen:
            ip_seen = True
            record.update(src=_address(_find(layer, "ip.src")), dst=_address(_find(layer, "ip.dst")),
                          proto=_int(_find(layer, "ip.proto")), tos=_int(_find(layer, "ip.dsfield")))
        elif name == "ipv6" and not ip_seen:
            ip_seen = True
            record.update(src=_address(_find(layer, "ipv6.src")), dst=_address(_find(layer, "ipv6.dst")),
                          proto=_int(_find(layer, "ipv6.nxt")), tos=_int(_find(layer, "ipv6.tclass")))
        elif ip_seen and name in ("tcp", "udp") and "srcp" not in record:
            record.update(srcp=_int(_find(layer, f"{name}.srcport")), dstp=_int(_find(layer, f"{name}.dstport")),
                          proto=6 if name == "tcp" else 17)
            if name == "tcp":
                record["flags"] = _int(_find(layer, "tcp.flags")) & 0xFF
        elif ip_seen and name in ("icmp", "icmpv6") and "srcp" not in record:
            record.update(srcp=0, dstp=_int(_find(layer, f"{name}.type")) * 256 + _int(_find(layer, f"{name}.code")),
                          proto=1 if name == "icmp" else 58)
        if name in ("tcp", "udp", "icmp", "icmpv6") and ip_seen:
            break


def _expanded_interface(sample, fmt: str, value: str):
    """An expanded sample's interface: its value when the format is 0 (an ifIndex), else none."""
    return _int(_find(sample, value)) if _int(_find(sample, fmt, "1")) == 0 else None


def _sample_record(sample) -> dict:
    # Ports are set by the transport layer when there is one, else 0 below.
    record: dict = {"pkts": 1, "proto": 0, "flags": 0, "bytes": 0, "src": "0.0.0.0", "dst": "0.0.0.0"}
    rate = _int(_find(sample, "sflow.flow_sample.sampling_rate"))
    if rate:
        record["sampling"] = rate
    expanded = _int(_find(sample, "sflow_245.sampletype")) == 3
    if expanded:
        in_if = _expanded_interface(sample, "sflow.flow_sample.input_interface_format", "sflow.flow_sample.input_interface_value")
        out_if = _expanded_interface(sample, "sflow.flow_sample.output_interface.format", "sflow.flow_sample.output_interface_value")
    else:
        raw_in = _int(_find(sample, "sflow.flow_sample.input_interface"))
        in_if = raw_in if raw_in >> 30 == 0 else None
        tree = _find(sample, "sflow.flow_sample.output_interface_tree")
        out_if = (_int(_find(tree, "sflow.flow_sample.output_interface_value"))
                  if _int(_find(tree, "sflow.flow_sample.output_interface_format")) == 0 else None)
    if in_if is not None:
        record["in_if"] = in_if
    if out_if is not None:
        record["out_if"] = out_if
    header_seen = False
    gateway_hop = None
    switch_vlan = 0
    for title, rec in _children(sample):
        fmt = _int(_find(rec, "sflow_245.flow_record_format", "-1"))
        if fmt == 1 and not header_seen:
            header_seen = True
            record["bytes"] = _int(_find(rec, "sflow_245.header.frame_length"))
            tree = _find(rec, "sflow_245.header_tree")
            if tree:
                _from_header(record, tree)
        elif fmt in (3, 4) and not header_seen:
            v = "ipv4" if fmt == 3 else "ipv6"
            record.update(src=_address(_find(rec, f"sflow_245.{v}_src")), dst=_address(_find(rec, f"sflow_245.{v}_dst")),
                          proto=_int(_find(rec, "sflow.ip_protocol")),
                          srcp=_int(_find(rec, "sflow_245.ip.source_port")),
                          dstp=_int(_find(rec, "sflow.ip.destination_port")))
        elif fmt == 1001:
            switch_vlan = _int(_find(rec, "sflow_245.vlan.in"))
        elif fmt == 1002:
            record.update(nexthop=_address(_find(rec, "sflow_245.nexthop")),
                          src_mask=_int(_find(rec, "sflow_245.nexthop.src_mask")),
                          dst_mask=_int(_find(rec, "sflow_245.nexthop.dst_mask")))
        elif fmt == 1003:
            gateway_hop = _address(_find(rec, "sflow_245.nexthop"))
            path = [_int(v) for k, v in (_find(rec, "sflow.as_type_tree") or []) if k == "sflow_245.dstAS"]
            record.update(src_as=_int(_find(rec, "sflow_245.srcAS")),
                          dst_as=path[-1] if path else _int(_find(rec, "sflow_245.as")))
    if 0 < switch_vlan < 4096:  # 0 = untagged, larger = unknown (0xFFFFFFFF): the packet's tag stands
        record["vlan"] = switch_vlan
    if gateway_hop is not None and "nexthop" not in record:
        record["nexthop"] = gateway_hop
    record.setdefault("srcp", 0)
    record.setdefault("dstp", 0)
    return record


def tshark_records(pcap: Path, port: int = 6343) -> list[dict]:
    """One expected kflow record (without dvc and time) per flow sample tshark finds in `pcap`."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-d", f"udp.port=={port},sflow", "-T", "json", "-J", "sflow"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    frames = json.loads(out, object_pairs_hook=lambda pairs: pairs) if out.strip() else []
    records = []
    for frame in frames:
        layers = _find(_find(frame, "_source"), "layers")
        for name, datagram in layers:
            if name != "sflow":
                continue
            for _, sample in _children(datagram):
                if _int(_find(sample, "sflow.enterprise", "0")) == 0 and _int(_find(sample, "sflow_245.sampletype", "0")) in (1, 3):
                    records.append(_sample_record(sample))
    return records


def comparable(record: dict) -> tuple:
    """A record as a sorted tuple of the fields both sides have, for multiset comparison."""
    keep = {k: v for k, v in record.items() if k not in ("dvc", "time")}
    return tuple(sorted(keep.items()))


# MARK: - captures

def udp_payloads(pcap: Path, port: int = 6343) -> list[bytes]:
    """UDP payloads sent to `port` in a classic pcap (Ethernet, Linux cooked or raw IP link types)."""
    data = Path(pcap).read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    offset, payloads = 24, []
    while offset + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + caplen]
        offset += 16 + caplen
        if linktype == 1:
            ethertype, at = struct.unpack("!H", frame[12:14])[0], 14
            while ethertype in (0x8100, 0x88A8):
                ethertype, at = struct.unpack("!H", frame[at + 2:at + 4])[0], at + 4
        elif linktype == 113:
            ethertype, at = struct.unpack("!H", frame[14:16])[0], 16
        elif linktype in (12, 101):
            ethertype, at = (0x0800 if frame[0] >> 4 == 4 else 0x86DD), 0
        else:
            raise ValueError(f"{pcap}: link type {linktype} not handled")
        if ethertype == 0x0800:
            proto, at = frame[at + 9], at + (frame[at] & 0x0F) * 4
        elif ethertype == 0x86DD:
            proto, at = frame[at + 6], at + 40
        else:
            continue
        if proto == 17 and struct.unpack("!H", frame[at + 2:at + 4])[0] == port:
            length = struct.unpack("!H", frame[at + 4:at + 6])[0]
            payloads.append(frame[at + 8:at + length])
    return payloads


def write_udp_pcap(path: Path, payloads: list[bytes], port: int = 6343) -> None:
    """The payloads as IPv4/UDP datagrams from 127.0.0.1 to `port` (raw IP link type), for tshark."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
        for payload in payloads:
            udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            out.write(struct.pack("<IIII", 1_700_000_000, 0, len(ip), len(ip)) + ip)


# MARK: - building datagrams

def _address_bytes(text: str) -> bytes:
    address = ipaddress.ip_address(text)
    return struct.pack("!I", 1 if address.version == 4 else 2) + address.packed


def record(fmt: int, body: bytes) -> bytes:
    return struct.pack("!II", fmt, len(body)) + body


def raw_header_record(frame: bytes, frame_length: int | None = None, protocol: int = 1) -> bytes:
    padded = frame + b"\0" * (-len(frame) % 4)
    return record(1, struct.pack("!IIII", protocol, frame_length or len(frame) + 4, 4, len(frame)) + padded)


def flow_sample(records: list[bytes], rate: int = 1, pool: int = 0, drops: int = 0, sequence: int = 1,
                source: int = 1, input_if: int = 1, output_if: int = 2) -> bytes:
    body = struct.pack("!IIIIIIII", sequence, source, rate, pool, drops, input_if, output_if, len(records))
    body += b"".join(records)
    return struct.pack("!II", 1, len(body)) + body


def counter_sample(sequence: int = 1, source: int = 1) -> bytes:
    # One generic interface counters record (format 1, 88 octets of zeros is a valid all-zero record).
    body = struct.pack("!III", sequence, source, 1) + record(1, b"\0" * 88)
    return struct.pack("!II", 2, len(body)) + body


def datagram(samples: list[bytes], agent: str = "192.0.2.1", sub_agent: int = 0, sequence: int = 1,
             uptime_ms: int = 1000) -> bytes:
    return (struct.pack("!I", 5) + _address_bytes(agent)
            + struct.pack("!IIII", sub_agent, sequence, uptime_ms, len(samples)) + b"".join(samples))


# MARK: - pmacctd's sfprobe as a real exporter

def run_sfprobe(workdir: Path, pcap: Path, receiver: str, sampling_rate: int, timeout: float = 60.0) -> None:
    """pmacctd reads `pcap` and exports sFlow samples of it to `receiver` (host:port), then exits."""
    conf = workdir / f"sfprobe-{sampling_rate}.conf"
    conf.write_text("daemonize: false\n"
                    f"pcap_savefile: {pcap}\n"
                    "plugins: sfprobe\n"
                    f"sfprobe_receiver: {receiver}\n"
                    f"sampling_rate: {sampling_rate}\n")
    result = subprocess.run(["pmacctd", "-f", str(conf)], capture_output=True, text=True, timeout=timeout)
    # At the end of the file pmacctd's core and plugin stop in either order; when the plugin goes first
    # the core exits 1 after "no more plugins active" although everything was exported.
    finished = "no more plugins active" in result.stderr and "ERROR" not in result.stderr
    if result.returncode != 0 and not (result.returncode == 1 and finished):
        raise RuntimeError(f"pmacctd exited {result.returncode}: {result.stderr[-2000:]}")
