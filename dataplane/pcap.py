"""Reading RoCEv2 captures into numpy records.

:func:`read_pcap` parses a classic pcap file (micro- or nanosecond timestamps, either byte
order, Ethernet link type, optional 802.1Q VLAN tags and 802.1ad QinQ double tags) from softdpu
or from real hardware, or a pcapng file (recognised by its magic; read through scapy, the
``pcap`` extra: :func:`_read_pcapng`). Each RoCEv2 frame becomes one record of
:data:`RECORD_DTYPE`; everything else is skipped and counted by reason
(:attr:`PcapRead.skipped`). A damaged file gives counted skips, a counted stop
(:attr:`PcapRead.stopped`, naming the file, the record index and its byte offset) where the
record boundaries are lost, or a ``ValueError`` naming the file; never another exception.

Speed: the file is memory-mapped and walked by a C function (native/pcap_scan.c,
``sd_pcap_scan``) that writes the records straight into a RECORD_DTYPE array, several million
records per second (docs/performance.md, ``softdpu bench pcap``). The plain-Python reader it
replaced is kept as the reference (:func:`_read_pcap_python`, about 85 k records/s): the C
scanner must give exactly its records, skip counts, stop texts and errors (tests/test_pcap_scan.py).

Record rules (libpcap's ``sf-pcap.c``): a record's captured length may not exceed the snaplen of
the file header (a header snaplen of 0 or above 262144, libpcap's ``MAXIMUM_SNAPLEN``, stands for
262144); past it the record boundaries cannot be trusted and reading stops. A captured length
above the original length is malformed: that record is skipped and counted. A timestamp whose
sub-second part is out of range (>= 10^6 us or 10^9 ns), or whose distance from the first
record's does not fit int64 picoseconds (about 106 days), is skipped and counted.

Layouts: IBTA Vol. 1 §9.2-9.3 (BTH, RETH, AETH, ImmDt), Annex A16 (RoCEv2: UDP port 4791, CNP
opcode 0x81 with 16 reserved bytes) and Annex A17 (ICRC). The ICRC covers the packet from the IP
header on, so VLAN tags and the rest of the Ethernet header are outside it.
"""
from __future__ import annotations

import functools
import mmap
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
    ("record", np.uint32),                                              # index of the pcap record (0 = first)
])

MAX_SNAPLEN = 262144                   # libpcap MAXIMUM_SNAPLEN: no record may be longer
MAX_SPAN_NS = (2**63 - 1) // 1000      # a time relative to the first record must fit int64 picoseconds
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q C-tag, 802.1ad S-tag, the pre-standard QinQ S-tag


@dataclass
class PcapRead:
    records: np.ndarray
    skipped: Counter = field(default_factory=Counter)   # reason -> frames not turned into records
    stopped: str | None = None                          # why reading stopped early, if it did
    snaplen: int = 0
    nanosecond: bool = False                            # pcapng: the first packet's interface resolves ns
    path: str = ""
    format: str = "pcap"                                # or "pcapng"

    def report(self) -> str:
        parts = [f"{len(self.records)} RoCEv2 records"]
        parts += [f"{n} {reason}" for reason, n in sorted(self.skipped.items())]
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return ", ".join(parts)


_MAGICS = {0xA1B2C3D4: False, 0xA1B23C4D: True}          # pcap (us), pcap-ns (ns)
PCAPNG_MAGIC = 0x0A0D0D0A                                # a pcapng Section Header Block (either byte order)


def l3_offset(frame: bytes) -> tuple[int, int]:
    """(offset of the network header, its EtherType) after the Ethernet header and any stack of
    802.1Q / 802.1ad tags; the EtherType is -1 when the frame ends inside the tags."""
    if len(frame) < 14:
        return len(frame), -1
    eth, l3 = struct.unpack_from("!H", frame, 12)[0], 14
    while eth in VLAN_TPIDS:
        if len(frame) < l3 + 4:
            return l3, -1
        eth = struct.unpack_from("!H", frame, l3 + 2)[0]          # the TCI (PCP, DEI, VID) is not looked at
        l3 += 4
    return l3, eth


def icrc_of(frame: bytes, l3: int | None = None) -> int:
    """ICRC per IBTA Annex A17 (independent of the C implementation): CRC-32 over 8 x 0xFF, the
    IP header with TOS/TTL/checksum (IPv6: traffic class, flow label, hop limit) set to ones,
    UDP with the checksum set to ones, BTH with byte 4 set to ones, and the rest up to the ICRC.
    ``frame`` runs from the Ethernet header to the ICRC; ``l3`` is the offset of the IP header
    (default: after the Ethernet header and its VLAN tags), where the covered bytes begin."""
    if l3 is None:
        l3, _ = l3_offset(frame)
    b = bytearray(frame[l3:-4])
    if not b:
        raise ValueError(f"icrc: a {len(frame)}-byte frame has no IP header at byte {l3}")
    v6 = b[0] >> 4 == 6
    ip = 40 if v6 else (b[0] & 0x0F) * 4
    if len(b) < ip + 8 + 12:
        raise ValueError(f"icrc: {len(b)} bytes from the IP header on are fewer than IP ({ip}) + UDP (8) + BTH (12)")
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
    """The RoCEv2 records of a classic pcap or a pcapng file (told apart by their magic)."""
    data = _contents(path)
    try:
        head = _classic_header(path, data)
        if head is None:
            return _read_pcapng(path, bytes(data))
        endian, nano, snaplen, limit = head
        records, skipped, stopped = _scan(path, data, endian == ">", nano, limit)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    return PcapRead(records, skipped, stopped, snaplen, nano, str(path))


def _contents(path):
    """The file's bytes: a read-only memory map (no copy: the C scanner reads the page cache), or
    its contents where it cannot be mapped (an empty file, a pipe). A file that another process
    appends to is read as far as it was when mapped; one truncated while it is read would fault
    (SIGBUS), as with any memory-mapped reader."""
    with open(path, "rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):
            return f.read()


def _classic_header(path, data: bytes):
    """(byte order, nanosecond, header snaplen, captured-length limit) of a classic pcap file,
    None for a pcapng file; ValueError naming the file for anything else."""
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file ({len(data)} bytes, shorter than the 24-byte header)")
    magic_le = struct.unpack_from("<I", data, 0)[0]
    magic_be = struct.unpack_from(">I", data, 0)[0]
    if magic_le == PCAPNG_MAGIC:
        return None
    if magic_le in _MAGICS:
        endian, nano = "<", _MAGICS[magic_le]
    elif magic_be in _MAGICS:
        endian, nano = ">", _MAGICS[magic_be]
    else:
        raise ValueError(f"{path}: not a pcap file (magic 0x{magic_le:08x})")
    _, _, _, _, snaplen, linktype = struct.unpack_from(endian + "HHiIII", data, 4)
    if linktype & 0xFFFF != 1 or linktype & 0x03FF0000:   # libpcap LT_LINKTYPE / LT_RESERVED1 (top: FCS length)
        raise ValueError(f"{path}: link type {linktype} is not Ethernet (1)")
    limit = snaplen if 0 < snaplen <= MAX_SNAPLEN else MAX_SNAPLEN     # libpcap's reading of the header
    return endian, nano, snaplen, limit


#: skip reasons in the order of native/softdpu.h enum sd_pcap_skip
_SKIP_REASONS = ("truncated_record", "bad_record_length", "incl_exceeds_orig", "bad_timestamp",
                 "timestamp_out_of_range", "truncated_frame", "bad_ip_header", "not_udp", "not_ip", "not_rocev2",
                 "bad_udp_length", "snaplen_before_bth")
_MIN_RECORD_BYTES = 16 + 14 + 20 + 8 + 12          # record header, Ethernet, IPv4, UDP, BTH: the least a record takes
_CHUNK = 1 << 20                                    # records per call of the C scanner


def _scan(path, data: bytes, big_endian: bool, nano: bool, limit: int, start: int = 24):
    """The C scanner (native/pcap_scan.c) over the records of ``data`` from byte ``start``:
    (records, skipped, stopped), as the reference reader gives them."""
    from dataplane._native import ffi, lib
    _check_layout(lib)
    st = ffi.new("sd_pcap_scan_state *")
    st.big_endian, st.nanosecond, st.limit, st.offset = int(big_endian), int(nano), limit, start
    n = len(data)
    buf = ffi.from_buffer("uint8_t[]", data)
    chunk = min(_CHUNK, max(0, n - start) // _MIN_RECORD_BYTES + 1)
    parts = []
    try:
        while True:
            part = np.empty(chunk, dtype=RECORD_DTYPE)
            out = ffi.from_buffer(part)
            k = lib.sd_pcap_scan(buf, n, st, ffi.cast("uint8_t *", out), chunk)
            ffi.release(out)
            if k:
                part.resize(k, refcheck=False)     # in place (realloc): no copy of the records
                parts.append(part)
            if st.stop != lib.SD_PCAP_OUT_FULL:
                break
    finally:
        ffi.release(buf)                           # the caller closes a memory map after this
    records = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)
    order = sorted((st.first_skip[i], reason) for i, reason in enumerate(_SKIP_REASONS) if st.skipped[i])
    skipped = Counter({reason: int(st.skipped[_SKIP_REASONS.index(reason)]) for _, reason in order})
    stopped = None
    if st.stop != lib.SD_PCAP_END:
        off, incl = int(st.stop_offset), int(st.stop_incl)
        where = f"{path}: record {int(st.stop_index)} (byte {off})"
        if st.stop == lib.SD_PCAP_STOP_SHORT_HEADER:
            stopped = f"{where}: truncated record header ({n - off} of 16 bytes) at the end of the file"
        elif st.stop == lib.SD_PCAP_STOP_SNAPLEN:
            stopped = (f"{where} claims {incl} captured bytes, more than the file's snaplen {limit}; "
                       f"the record boundaries are lost, reading stops")
        elif st.stop == lib.SD_PCAP_STOP_TRUNCATED:
            stopped = f"{where}: truncated ({n - off - 16} of {incl} bytes present)"
        else:
            raise RuntimeError(f"sd_pcap_scan: unexpected stop code {st.stop}")
    return records, skipped, stopped


@functools.cache
def _check_layout(lib) -> None:
    """The C scanner writes RECORD_DTYPE's packed layout at the offsets native/softdpu.h names:
    refuse to run if the two disagree (a field added on one side only)."""
    wrong = [name for name in RECORD_DTYPE.names
             if getattr(lib, f"SD_PCAP_AT_{name.upper()}", None) != RECORD_DTYPE.fields[name][1]]
    if wrong or lib.SD_PCAP_REC_BYTES != RECORD_DTYPE.itemsize or RECORD_DTYPE.isnative is False:
        raise RuntimeError(f"native/softdpu.h enum sd_pcap_rec_layout disagrees with RECORD_DTYPE: {wrong or 'size'}")


def _read_pcapng(path, data: bytes) -> PcapRead:
    """A pcapng file through scapy's ``RawPcapNgReader``: each packet block (Enhanced, Simple or
    the obsolete Packet Block) of an Ethernet interface becomes a record of a classic pcap-ns
    image in memory, which the C scanner then reads like any pcap file, so records, skip reasons
    and the ICRC verdict follow the same rules.

    Why scapy: it is the project's ``pcap`` extra already (and in the dev extra, so CI has it),
    actively maintained, and its raw reader walks the blocks without dissecting packets (about
    200 k packets/s here; ``softdpu bench pcap``). It reads either byte order, several sections
    and interfaces, and each interface's ``if_tsresol`` (10^-k or 2^-k s). dpkt's pcapng reader
    turns timestamps into floats (losing nanoseconds) and assumes one interface; python-pcapng
    builds an object per option and is several times slower. Not applied: ``if_tsoffset`` (scapy
    does not read it; capture tools rarely write it).

    Records are numbered by packet block (0 = the first packet of the file, whatever its
    interface). Packets of a non-Ethernet interface are skipped (``not_ethernet``), a packet
    without a timestamp (a Simple Packet Block) as ``no_timestamp``, one whose time is beyond
    the classic format's 32-bit seconds as ``timestamp_out_of_range``. A damaged block stops the
    reading (``stopped``, naming the file, the record index and the block's byte offset,
    counted as ``bad_block``); a damaged Section Header Block at the start is a ``ValueError``."""
    import io
    import logging
    try:
        from scapy.error import Scapy_Exception
        from scapy.utils import RawPcapNgReader
    except ImportError:
        raise ValueError(f"{path}: a pcapng file: reading it needs scapy (pip install 'softdpu[pcap]')") from None
    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)                   # scapy warns about every damaged block: counted here instead
    try:
        f = io.BytesIO(data)
        try:
            reader = RawPcapNgReader(f)          # reads the magic and the first Section Header Block
        except (Scapy_Exception, EOFError, OSError, ValueError, struct.error) as exc:
            raise ValueError(f"{path}: not a readable pcapng file ({exc or type(exc).__name__})") from None
        image = bytearray()                       # records as classic pcap-ns: 16-byte header + frame
        index_of: list[int] = []                  # the pcapng packet index of each record of the image
        skipped: Counter = Counter()
        stopped, index, first = None, 0, None
        n = len(data)
        while True:
            pos = f.tell()
            if pos >= n:
                break
            if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
                reader.interfaces = []            # a new section numbers its interfaces from 0 (scapy keeps them)
            try:
                block = reader._read_block(size=1 << 32)
            except Exception as exc:              # any damage in scapy's block parser: the boundaries are lost
                stopped = (f"{path}: record {index} (block at byte {pos}): damaged pcapng block "
                           f"({exc or type(exc).__name__}); reading stops")
                skipped["bad_block"] += 1
                break
            if block is None:
                continue                          # not a packet: an interface, statistics, name resolution ...
            frame, meta = block
            i, index = index, index + 1
            if first is None:
                first = meta
            if meta.linktype != 1:
                skipped["not_ethernet"] += 1
                continue
            if meta.tshigh is None:
                skipped["no_timestamp"] += 1
                continue
            sec, ns = divmod((meta.tshigh << 32 | meta.tslow) * 1_000_000_000 // meta.tsresol, 1_000_000_000)
            if sec >= 1 << 32:
                skipped["timestamp_out_of_range"] += 1
                continue
            image += struct.pack("<IIII", sec, ns, len(frame), meta.wirelen)
            image += frame
            index_of.append(i)
    finally:
        log.setLevel(level)
    records, more, _ = _scan(path, bytes(image), False, True, 0xFFFFFFFF, start=0)
    if len(records):
        records["record"] = np.asarray(index_of, dtype=np.uint32)[records["record"]]
    skipped.update(more)
    snaplen = reader.interfaces[0][1] if reader.interfaces else 0
    nano = first is not None and first.tsresol >= 1_000_000_000
    return PcapRead(records, skipped, stopped, snaplen, nano, str(path), "pcapng")


def _read_pcap_python(path: str | Path) -> PcapRead:
    """The reference reader: plain Python over ``struct``, one record at a time (about 85 k
    records/s). :func:`read_pcap` must give exactly what it gives on a classic pcap file (records,
    skip counts and their order, the stop message, the errors): tests/test_pcap_scan.py checks
    that on damaged files, and ``softdpu bench pcap`` times both."""
    data = Path(path).read_bytes()
    head = _classic_header(path, data)
    if head is None:
        raise ValueError(f"{path}: pcapng: the reference reader reads classic pcap only")
    endian, nano, snaplen, limit = head
    frac_max = 1_000_000_000 if nano else 1_000_000
    rec_hdr = struct.Struct(endian + "IIII")
    out: list[tuple] = []
    skipped: Counter = Counter()
    stopped = None
    t_first = None
    off, n, index = 24, len(data), 0
    while off < n:
        where = f"{path}: record {index} (byte {off})"
        if off + 16 > n:
            stopped = f"{where}: truncated record header ({n - off} of 16 bytes) at the end of the file"
            skipped["truncated_record"] += 1
            break
        sec, frac, incl, orig = rec_hdr.unpack_from(data, off)
        if incl > limit:
            stopped = (f"{where} claims {incl} captured bytes, more than the file's snaplen {limit}; "
                       f"the record boundaries are lost, reading stops")
            skipped["bad_record_length"] += 1
            break
        if off + 16 + incl > n:
            stopped = f"{where}: truncated ({n - off - 16} of {incl} bytes present)"
            skipped["truncated_record"] += 1
            break
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        index += 1
        if incl > orig:
            skipped["incl_exceeds_orig"] += 1                 # more bytes captured than the frame had
            continue
        if frac >= frac_max:
            skipped["bad_timestamp"] += 1
            continue
        t_ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        if t_first is None:
            t_first = t_ns
        elif abs(t_ns - t_first) > MAX_SPAN_NS:
            skipped["timestamp_out_of_range"] += 1
            continue
        rec = _parse(frame, orig, t_ns, skipped)
        if rec is not None:
            out.append(rec + (index - 1,))
    records = np.array(out, dtype=RECORD_DTYPE) if out else np.zeros(0, dtype=RECORD_DTYPE)
    return PcapRead(records, skipped, stopped, snaplen, nano, str(path))


def _parse(f: bytes, orig: int, t_ns: int, skipped: Counter):
    caplen = len(f)
    if caplen < 14:
        skipped["truncated_frame"] += 1
        return None
    l3, eth = l3_offset(f)                                    # past 802.1Q / 802.1ad tags
    if eth < 0:
        skipped["truncated_frame"] += 1
        return None
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
        ok = int(icrc_of(f[:icrc_end], l3) == icrc)
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
    """softdpu's address plan (native/softdpu.h): 10.0.0.0 + h + 1 or fd00::h+1 -> host h (address
    h on a fabric that declares addresses, e.g. a rail server's NICs); -1 outside the plan."""
    raw = bytes(np.asarray(addr, dtype=np.uint8))
    if ip_version == 4:
        v = int.from_bytes(raw[:4], "big") - 0x0A000001
        return v if 0 <= v < 0xFFFFFE else -1
    if raw[0] == 0xFD and raw[1:12] == bytes(11):
        return int.from_bytes(raw[12:16], "big") - 1
    return -1
