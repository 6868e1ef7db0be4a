"""Reading RoCEv2 captures into numpy records.

:func:`read_pcap` parses a classic pcap file (micro- or nanosecond timestamps, either byte
order, Ethernet link type, optional 802.1Q tags) from softdpu or from real hardware. Each RoCEv2
frame becomes one record of :data:`RECORD_DTYPE`; everything else is skipped and counted by
reason, and a damaged file (bad magic, impossible or truncated records) raises a clear error or
stops with a counted reason, never crashes. The parser is plain Python over ``struct``: no scapy
(which is kept for tests, where speed does not matter).

Layouts: shared/reference/transport-cc.md §4 (BTH, RETH, AETH, CNP, ICRC).
"""
from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROCEV2_PORT = 4791
OP_WRITE_FIRST, OP_WRITE_MIDDLE, OP_WRITE_LAST, OP_WRITE_LAST_IMM, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM = 6, 7, 8, 9, 10, 11
OP_READ_REQUEST, OP_ACK, OP_ATOMIC_ACK, OP_CNP = 12, 17, 18, 0x81
_RETH_OPS = {OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, OP_READ_REQUEST}
_AETH_OPS = {13, 15, 16, OP_ACK, OP_ATOMIC_ACK}          # READ response first/last/only, ACK, atomic ACK
_IMM_OPS = {3, 5, OP_WRITE_LAST_IMM, OP_WRITE_ONLY_IMM}

RECORD_DTYPE = np.dtype([
    ("t_ns", np.int64), ("frame_len", np.uint32), ("caplen", np.uint32),
    ("ip_version", np.uint8), ("src", np.uint8, (16,)), ("dst", np.uint8, (16,)),   # IPv4 in bytes 0-3
    ("dscp", np.uint8), ("ecn", np.uint8), ("ttl", np.uint8),
    ("sport", np.uint16), ("dport", np.uint16),
    ("opcode", np.uint8), ("se", np.uint8), ("migreq", np.uint8), ("padcnt", np.uint8), ("tver", np.uint8),
    ("pkey", np.uint16), ("fecn", np.uint8), ("becn", np.uint8), ("dqp", np.uint32), ("ackreq", np.uint8),
    ("psn", np.uint32),
    ("reth_va", np.uint64), ("reth_rkey", np.uint32), ("reth_len", np.uint32),
    ("syndrome", np.uint8), ("msn", np.uint32), ("imm", np.uint32),
    ("payload_len", np.uint32),
    ("icrc", np.uint32),                                                # as on the wire, LSB first
    ("icrc_ok", np.int8),                                               # 1 good, 0 bad, -1 not captured
])


@dataclass
class PcapRead:
    records: np.ndarray
    skipped: Counter = field(default_factory=Counter)   # reason -> frames not turned into records
    stopped: str | None = None                          # why reading stopped early, if it did
    snaplen: int = 0
    nanosecond: bool = False

    def report(self) -> str:
        parts = [f"{len(self.records)} RoCEv2 records"]
        parts += [f"{n} {reason}" for reason, n in sorted(self.skipped.items())]
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return ", ".join(parts)


_MAGICS = {0xA1B2C3D4: False, 0xA1B23C4D: True}


def icrc_of(frame: bytes) -> int:
    """ICRC per IBTA Annex A17 (independent of the C implementation): CRC-32 over 8 x 0xFF, the
    IP header with TOS/TTL/checksum (IPv6: traffic class, flow label, hop limit) set to ones,
    UDP with the checksum set to ones, BTH with byte 4 set to ones, and the rest up to the ICRC."""
    b = bytearray(frame[14:-4])
    v6 = frame[12:14] == b"\x86\xdd"
    ip = 40 if v6 else (b[0] & 0x0F) * 4
    if v6:
        b[0] |= 0x0F
        b[1:4] = b"\xff\xff\xff"
        b[7] = 0xFF
    else:
        b[1] = 0xFF
        b[8] = 0xFF
        b[10:12] = b"\xff\xff"
    b[ip + 6:ip + 8] = b"\xff\xff"
    b[ip + 8 + 4] = 0xFF
    return zlib.crc32(b"\xff" * 8 + bytes(b)) & 0xFFFFFFFF


def read_pcap(path: str | Path) -> PcapRead:
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file ({len(data)} bytes, shorter than the 24-byte header)")
    magic_le = struct.unpack_from("<I", data, 0)[0]
    magic_be = struct.unpack_from(">I", data, 0)[0]
    if magic_le == 0x0A0D0D0A:
        raise ValueError(f"{path}: pcapng is not supported; convert it with 'editcap -F pcap'")
    if magic_le in _MAGICS:
        endian, nano = "<", _MAGICS[magic_le]
    elif magic_be in _MAGICS:
        endian, nano = ">", _MAGICS[magic_be]
    else:
        raise ValueError(f"{path}: not a pcap file (magic 0x{magic_le:08x})")
    _, _, _, _, snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype} is not Ethernet (1)")
    rec_hdr = struct.Struct(endian + "IIII")
    out: list[tuple] = []
    skipped: Counter = Counter()
    stopped = None
    off, n = 24, len(data)
    limit = max(snaplen, 65535) if snaplen else 262144
    while off < n:
        if off + 16 > n:
            stopped = "truncated record header at end of file"
            skipped["truncated_record"] += 1
            break
        sec, frac, incl, orig = rec_hdr.unpack_from(data, off)
        off += 16
        if incl > limit or incl > 262144 or incl > max(orig, incl):
            stopped = f"record at byte {off - 16} claims {incl} captured bytes (snaplen {snaplen}); cannot resync"
            skipped["bad_record_length"] += 1
            break
        if off + incl > n:
            stopped = f"record at byte {off - 16} truncated ({n - off} of {incl} bytes present)"
            skipped["truncated_record"] += 1
            break
        frame = data[off:off + incl]
        off += incl
        t_ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        rec = _parse(frame, orig, t_ns, skipped)
        if rec is not None:
            out.append(rec)
    records = np.array(out, dtype=RECORD_DTYPE) if out else np.zeros(0, dtype=RECORD_DTYPE)
    return PcapRead(records, skipped, stopped, snaplen, nano)


def _parse(f: bytes, orig: int, t_ns: int, skipped: Counter):
    caplen = len(f)
    if caplen < 14:
        skipped["truncated_frame"] += 1
        return None
    eth = struct.unpack_from("!H", f, 12)[0]
    l3 = 14
    while eth in (0x8100, 0x88A8) and caplen >= l3 + 4:        # 802.1Q / 802.1ad tags
        eth = struct.unpack_from("!H", f, l3 + 2)[0]
        l3 += 4
    if eth == 0x0800:
        if caplen < l3 + 20:
            skipped["truncated_frame"] += 1
            return None
        vihl, tos, total = f[l3], f[l3 + 1], struct.unpack_from("!H", f, l3 + 2)[0]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or total < ihl + 8 or l3 + total > orig:
            skipped["bad_ip_header"] += 1
            return None
        if f[l3 + 9] != 17:
            skipped["not_udp"] += 1
            return None
        ver, ttl, src, dst = 4, f[l3 + 8], f[l3 + 12:l3 + 16], f[l3 + 16:l3 + 20]
        l4 = l3 + ihl
        ip_end = l3 + total
    elif eth == 0x86DD:
        if caplen < l3 + 40:
            skipped["truncated_frame"] += 1
            return None
        w0, plen, nh, hlim = struct.unpack_from("!IHBB", f, l3)
        if w0 >> 28 != 6 or l3 + 40 + plen > orig:
            skipped["bad_ip_header"] += 1
            return None
        if nh != 17:
            skipped["not_udp"] += 1
            return None
        ver, tos, ttl, src, dst = 6, (w0 >> 20) & 0xFF, hlim, f[l3 + 8:l3 + 24], f[l3 + 24:l3 + 40]
        l4 = l3 + 40
        ip_end = l4 + plen
    else:
        skipped["not_ip"] += 1
        return None
    if caplen < l4 + 8:
        skipped["truncated_frame"] += 1
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", f, l4)
    if dport != ROCEV2_PORT:
        skipped["not_rocev2"] += 1
        return None
    if ulen < 8 + 12 + 4 or l4 + ulen > ip_end:
        skipped["bad_udp_length"] += 1
        return None
    bth = l4 + 8
    if caplen < bth + 12:
        skipped["snaplen_before_bth"] += 1
        return None
    op, b1, pkey, b4, dqp_hi, dqp_lo, b8, psn_hi, psn_lo = struct.unpack_from("!BBHBBHBBH", f, bth)
    ext = bth + 12
    reth_va = reth_rkey = reth_len = syndrome = msn = imm = 0
    if op in _RETH_OPS:
        if caplen >= ext + 16:
            reth_va, reth_rkey, reth_len = struct.unpack_from("!QII", f, ext)
        ext += 16
    if op in _AETH_OPS:
        if caplen >= ext + 4:
            syndrome, msn_hi, msn_lo = struct.unpack_from("!BBH", f, ext)
            msn = msn_hi << 16 | msn_lo
        ext += 4
    if op in _IMM_OPS:
        if caplen >= ext + 4:
            imm = struct.unpack_from("!I", f, ext)[0]
        ext += 4
    if op == OP_CNP:
        ext += 16
    pad = (b1 >> 4) & 3
    payload = l4 + ulen - 4 - ext - pad
    if payload < 0:
        skipped["bad_udp_length"] += 1
        return None
    icrc_end = l4 + ulen
    if caplen >= icrc_end and orig >= icrc_end:
        icrc = struct.unpack_from("<I", f, icrc_end - 4)[0]
        ok = int(icrc_of(f[:icrc_end]) == icrc)
    else:
        icrc, ok = 0, -1
    return (t_ns, orig, caplen, ver, tuple(src.ljust(16, b"\0")), tuple(dst.ljust(16, b"\0")), tos >> 2, tos & 3, ttl, sport, dport,
            op, b1 >> 7, (b1 >> 6) & 1, pad, b1 & 0x0F, pkey, b4 >> 7, (b4 >> 6) & 1,
            dqp_hi << 16 | dqp_lo, b8 >> 7, psn_hi << 16 | psn_lo,
            reth_va, reth_rkey, reth_len, syndrome, msn, imm, payload, icrc, ok)


def address_text(ip_version: int, addr) -> str:
    """Printable address of a record's ``src``/``dst`` field."""
    import ipaddress
    raw = bytes(np.asarray(addr, dtype=np.uint8))
    return str(ipaddress.IPv4Address(raw[:4]) if ip_version == 4 else ipaddress.IPv6Address(raw))


def softdpu_host(ip_version: int, addr) -> int:
    """softdpu's address plan (native/softdpu.h): 10.0.0.0 + h + 1 or fd00::h+1 -> host h;
    -1 for an address outside the plan."""
    raw = bytes(np.asarray(addr, dtype=np.uint8))
    if ip_version == 4:
        v = int.from_bytes(raw[:4], "big") - 0x0A000001
        return v if 0 <= v < 0xFFFFFE else -1
    if raw[0] == 0xFD and raw[1:12] == bytes(11):
        return int.from_bytes(raw[12:16], "big") - 1
    return -1
