"""read_pcap at scale: the C scanner (native/pcap_scan.c) against the Python reference reader it
replaced (dataplane.pcap._read_pcap_python), and pcapng files read through scapy.

Expectation: on any classic pcap file, damaged or not, the two readers give the same records
(every field of RECORD_DTYPE, byte for byte), the same skip counts in the same order, the same
``stopped`` text, or the same ValueError text. A pcapng file holding the same frames at the same
times gives the records of the pcap file (pcapng interfaces, resolutions and sections are
described in the pcapng specification, draft-ietf-opsawg-pcapng: SHB 0x0A0D0D0A with the
byte-order magic 0x1A2B3C4D, IDB type 1 with if_tsresol option 9, EPB type 6).
"""
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplane import pcap
from dataplane.pcap import RECORD_DTYPE, _read_pcap_python, read_pcap
# test_wire as pytest imports it (tests/ is on sys.path): importing it again as tests.test_wire would
# define and bind a second RETH layer in scapy, which its own tests then fail to find
from test_wire import TAG_STACKS, corruptible_capture, own_frames, pcap_file, with_tags


def same_result(path):
    """Both readers on one file: equal results or equal ValueError texts (the assertion)."""
    try:
        ref = _read_pcap_python(path)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            read_pcap(path)
        assert str(got.value) == str(exc)
        return None
    new = read_pcap(path)
    assert new.records.dtype == RECORD_DTYPE
    assert len(new.records) == len(ref.records)
    assert new.records.tobytes() == ref.records.tobytes()          # every field, byte for byte
    assert list(new.skipped.items()) == list(ref.skipped.items())  # counts and first-occurrence order
    assert new.stopped == ref.stopped
    assert (new.snaplen, new.nanosecond, new.path) == (ref.snaplen, ref.nanosecond, ref.path)
    return new


# values an edit writes: any, or the ones where a rule changes (opcodes with RETH / AETH / ImmDt /
# CNP bytes, IPv4 version+IHL bytes, EtherTypes and TPIDs, lengths around the snaplen limits)
_VALUES = st.one_of(st.integers(0, 2**32 - 1),
                    st.sampled_from([0, 1, 3, 5, 6, 9, 10, 11, 12, 13, 15, 16, 17, 18, 0x81, 0x45, 0x46, 0x4F,
                                     0x60, 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 4791, 15, 16, 20, 23, 24, 28, 44, 54, 60,
                                     70, 65535, 65536,
                                     262144, 262145, 999_999, 1_000_000, 10**9, 2**31, 2**32 - 1]))
# where: anywhere, anywhere in a record's first 112 bytes, or on a field (record offsets: the record
# header's time and lengths 4-15, then the frame from 16: EtherType 28, IPv4 30 (IHL 30, length 32,
# protocol 39), UDP 50 (port 52, length 54), BTH 58 (opcode 58, PadCnt 59); +4 / +8 with tags)
_FIELDS = [4, 8, 12, 28, 30, 32, 36, 39, 42, 43, 46, 50, 52, 54, 56, 58, 59, 62, 66, 70]
_WHERE = st.one_of(st.integers(0, 2**31), st.tuples(st.integers(0, 19), st.integers(0, 111)),
                   st.tuples(st.integers(0, 19), st.sampled_from(_FIELDS)))


def _variant(data: bytes, big_endian: bool, nano: bool, snaplen: int) -> bytearray:
    """The same records with the other byte order / magic / header snaplen (record headers
    rewritten, frames as they are)."""
    out = bytearray(struct.pack((">" if big_endian else "<") + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4,
                                2, 4, 0, 0, snaplen, 1))
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, off)
        out += struct.pack((">" if big_endian else "<") + "IIII", sec, frac * 1000 if nano else frac, incl, orig)
        out += data[off + 16:off + 16 + incl]
        off += 16 + incl
    return out


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(["byte", "u16", "u32", "u16be", "u32be"]), _WHERE, _VALUES),
                      max_size=10),
       cut=st.one_of(st.none(), st.integers(0, 2**31)),
       big_endian=st.booleans(), nano=st.booleans(), snaplen=st.sampled_from([65535, 0, 128, 262144, 300000]))
def test_the_c_reader_equals_the_reference_on_damaged_files(tmp_path, edits, cut, big_endian, nano, snaplen):
    """Random edits (record lengths and times, Ethernet/tag/IP/UDP/BTH headers, opcodes that
    carry RETH, AETH, ImmDt or the CNP's bytes), cuts, both byte orders, both resolutions and
    header snaplens below, at and above libpcap's 262144: the same result from both readers."""
    data = _variant(corruptible_capture(tmp_path), big_endian, nano, snaplen)
    starts, off = [], 24
    while off + 16 <= len(data):
        starts.append(off)
        off += 16 + struct.unpack_from(">I" if big_endian else "<I", data, off + 8)[0]
    for kind, where, value in edits:
        width = {"byte": 1, "u16": 2, "u16be": 2, "u32": 4, "u32be": 4}[kind]
        pos = where if isinstance(where, int) else starts[where[0] % len(starts)] + where[1]
        i = pos % (len(data) - width + 1)
        data[i:i + width] = (value % (1 << 8 * width)).to_bytes(width, "big" if kind.endswith("be") else "little")
    if cut is not None:
        data = data[:cut % (len(data) + 1)]
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(bytes(data))
    same_result(path)


def test_every_opcode_with_every_extension_header_and_ipv4_options(tmp_path):
    """Frames of every BTH opcode 0..31, the CNP and an unknown 0xFF, over IPv4 with options
    (IHL 6..15), IPv6 and QinQ tags (TPID 0x88A8 or 0x9100): the same records, byte for byte, and each ICRC verdict good
    where the frame is whole (the encoder and Annex A17 agree: both readers say 1)."""
    def data_frames(ipv6, seed):                            # WRITEs with >= 64 payload bytes: room for any header
        frames, pk = own_frames(40, ipv6=ipv6, seed=seed)
        return [f for f, p in zip(frames, pk) if p["opcode"] in (6, 7, 8, 10) and p["payload"] >= 64][:8]
    frames, v6 = data_frames(False, 9), data_frames(True, 10)
    assert len(frames) == len(v6) == 8
    out = []
    for k, op in enumerate(list(range(32)) + [0x81, 0xFF]):
        f = bytearray(frames[k % 8] if k % 3 else v6[k % 8])
        l3 = 14
        if k % 3 and k % 2:                                 # IPv4 options: k % 10 + 1 words of NOPs
            words = k % 10 + 1
            ihl = 5 + words
            f = f[:34] + b"\x01" * 4 * words + f[34:]
            f[14] = 0x40 | ihl
            struct.pack_into(">H", f, 16, struct.unpack_from(">H", f, 16)[0] + 4 * words)
        iphdr = 40 if f[12:14] == b"\x86\xdd" else (f[14] & 0x0F) * 4
        f[l3 + iphdr + 8] = op                              # the BTH opcode
        f[-4:] = struct.pack("<I", pcap.icrc_of(bytes(f)))  # a correct ICRC for the edited frame
        if k % 4 == 0:
            f = bytearray(with_tags(bytes(f), TAG_STACKS["qinq_vidF00_vid100"]))
            if k % 8 == 4:
                f[12:14] = b"\x91\x00"                      # the pre-standard QinQ S-tag TPID
        out.append(bytes(f))
    path = tmp_path / "ops.pcap"
    path.write_bytes(pcap_file(out, np.arange(len(out)) * 1000))
    read = same_result(path)
    assert sorted(set(read.records["opcode"])) == sorted(set(range(32)) | {0x81, 0xFF})
    assert (read.records["icrc_ok"] == 1).all()
    imm = read.records[np.isin(read.records["opcode"], [3, 5, 9, 11])]
    assert len(imm) == 4                                    # SEND Last/Only and WRITE Last/Only with Immediate


def test_records_spread_over_several_output_chunks(tmp_path, monkeypatch):
    """The scanner fills its output in chunks (1 M records each) and resumes where it stopped:
    with 7-record chunks, 40 records come back whole and in order."""
    monkeypatch.setattr(pcap, "_CHUNK", 7)
    frames, pk = own_frames(40, seed=4)
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_file(frames, np.arange(40) * 1000))
    read = same_result(path)
    assert np.array_equal(read.records["record"], np.arange(40)) and np.array_equal(read.records["psn"], pk["psn"])


def test_an_empty_file_and_a_header_only_file(tmp_path):
    path = tmp_path / "e.pcap"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="shorter than the 24-byte header"):
        read_pcap(path)
    path.write_bytes(pcap_file([], []))
    read = same_result(path)
    assert len(read.records) == 0 and not read.skipped and read.stopped is None


# ---------------------------------------------------------------- pcapng
def ng_block(e, btype, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(e + "II", btype, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))


def ng_shb(e):
    return ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def ng_idb(e, linktype=1, tsresol=None, snaplen=0):
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
    return ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def ng_epb(e, iface, ts, frame, wirelen=None):
    body = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                       len(frame) if wirelen is None else wirelen) + frame
    return ng_block(e, 6, body)


def test_a_pcapng_with_interfaces_resolutions_and_sections_reads_as_the_pcap(tmp_path):
    """Section 1 (little-endian): interface 0 at ns (if_tsresol 9), 1 at the default us, 2 at
    2^-20 s, 3 a raw-IP interface (link type 101); section 2 (big-endian) numbers its interfaces
    from 0 again (one at 10^-6 s). Every Ethernet packet gives the record the classic pcap-ns
    file of the same frames and times gives; the raw-IP packet is skipped, counted, and still
    takes its record index."""
    frames, _ = own_frames(24, seed=7)
    base = 1_700_000_000 * 10**9
    # times exact in each interface's unit: ns; us; 2^-20 s (t_ns = ts * 10^9 / 2^20 is whole
    # when ts is a multiple of 2^11, i.e. t_ns a multiple of 5^9 = 1953125 ns)
    t = []
    for i in range(24):
        iface = i % 3
        if iface == 0:
            t.append(base + i * 1_234_567 + 89)
        elif iface == 1:
            t.append(base + i * 1_234_000)
        else:
            t.append((base // 1953125 + i) * 1953125)
    le, be = "<", ">"
    ng = ng_shb(le) + ng_idb(le, tsresol=9) + ng_idb(le) + ng_idb(le, tsresol=0x80 | 20) + ng_idb(le, linktype=101)
    order = []
    for i in range(16):
        iface = i % 3
        ts = t[i] if iface == 0 else t[i] // 1000 if iface == 1 else t[i] * 2**20 // 10**9
        ng += ng_epb(le, iface, ts, frames[i])
        order.append(i)
        if i == 5:
            ng += ng_epb(le, 3, 0, frames[i][14:])                   # raw IP: no Ethernet header
            order.append(None)
    ng += ng_shb(be) + ng_idb(be, tsresol=6)
    for i in range(16, 24):
        t[i] = base + i * 1_234_000
        ng += ng_epb(be, 0, t[i] // 1000, frames[i])
        order.append(i)
    (tmp_path / "x.pcapng").write_bytes(ng)
    (tmp_path / "x.pcap").write_bytes(pcap_file(frames, t))
    got, want = read_pcap(tmp_path / "x.pcapng"), read_pcap(tmp_path / "x.pcap")
    assert got.format == "pcapng" and got.stopped is None and dict(got.skipped) == {"not_ethernet": 1}
    assert len(got.records) == 24
    for name in RECORD_DTYPE.names:
        if name != "record":
            assert np.array_equal(got.records[name], want.records[name]), name
    # record: the packet's index among the file's packets (the raw-IP packet is number 6)
    assert list(got.records["record"]) == [k for k, i in enumerate(order) if i is not None]


def test_a_pcapng_written_by_scapy_gives_the_records_of_the_pcap(tmp_path):
    """scapy's PcapNgWriter (microsecond resolution) from a microsecond pcap: the same records."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter
    frames, _ = own_frames(30, seed=8)
    t = 1_700_000_000 * 10**9 + np.arange(30) * 3_000_000
    (tmp_path / "us.pcap").write_bytes(pcap_file(frames, t, nano=False))
    w = PcapNgWriter(str(tmp_path / "us.pcapng"))
    for f, tt in zip(frames, t):
        p = Ether(f)
        p.time = int(tt) // 1000 / 1e6
        w.write(p)
    w.close()
    got, want = read_pcap(tmp_path / "us.pcapng"), read_pcap(tmp_path / "us.pcap")
    assert got.format == "pcapng" and not got.skipped and got.stopped is None
    assert got.records.tobytes() == want.records.tobytes()


def test_a_cut_pcapng_stops_after_its_whole_blocks(tmp_path):
    frames, _ = own_frames(6, seed=2)
    ng = ng_shb("<") + ng_idb("<", tsresol=9)
    for i, f in enumerate(frames):
        ng += ng_epb("<", 0, 10**18 + i * 1000, f)
    path = tmp_path / "cut.pcapng"
    path.write_bytes(ng[:-30])                                  # the last EPB loses its tail
    read = read_pcap(path)
    assert len(read.records) == 5 and read.skipped == {"bad_block": 1}
    assert str(path) in read.stopped and "record 5 " in read.stopped and "damaged pcapng block" in read.stopped


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 2**31), _VALUES, st.sampled_from([1, 2, 4])), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 2**31)))
def test_a_damaged_pcapng_gives_records_skips_a_stop_or_a_value_error(tmp_path, edits, cut):
    frames, _ = own_frames(8, seed=1)
    ng = bytearray(ng_shb("<") + ng_idb("<", tsresol=9) + ng_idb("<"))
    for i, f in enumerate(frames):
        ng += ng_epb("<", i % 2, 10**18 + i * 1000, f)
    for pos, value, width in edits:
        i = 4 + pos % (len(ng) - width - 3)                     # keep the magic: a pcapng file
        ng[i:i + width] = (value % (1 << 8 * width)).to_bytes(width, "little")
    if cut is not None:
        ng = ng[:max(4, cut % (len(ng) + 1))]
    path = tmp_path / "fuzz.pcapng"
    path.write_bytes(bytes(ng))
    try:
        read = read_pcap(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "pcapng" in str(exc)
        return
    assert read.records.dtype == RECORD_DTYPE and len(read.records) <= 8
    assert read.stopped is None or (str(path) in read.stopped and "record" in read.stopped)


def test_the_pcap_benchmark_runs_small():
    """softdpu bench pcap's code (docs/performance.md) on 2,000 records: every reader reads back
    what was written (run_pcap raises otherwise); the rates are positive numbers."""
    from controlplane.run.bench import run_pcap
    r = run_pcap(records=2000, repeats=1, reference_records=500)
    assert all(r[k] > 0 for k in ("records_per_s_c_snaplen128", "records_per_s_c_full",
                                  "records_per_s_python_reference", "records_per_s_pcapng"))


def test_icrc_verdicts_for_every_length_of_the_folded_crc(tmp_path):
    """The scanner's CRC runs 16 bytes at a time by carry-less multiplication where the CPU has
    it, the rest by table: WRITE Only frames with 1..400 and 4000..4100 payload bytes (every
    remainder mod 16 and 64, IPv4 and IPv6) get a good verdict as encoded, a bad one with the
    byte before the ICRC flipped, and equal the reference reader's (zlib's CRC-32)."""
    from test_wire import sim
    sizes = list(range(1, 401)) + list(range(4000, 4101))
    for ipv6 in (False, True):
        s = sim(ipv6)
        good = [s.encode({"opcode": 10, "src": 0, "dst": 1, "dqp": 3, "psn": i, "payload": n, "sport": 50000})
                for i, n in enumerate(sizes)]
        bad = [f[:-5] + bytes([f[-5] ^ 0x40]) + f[-4:] for f in good]
        path = tmp_path / "len.pcap"
        path.write_bytes(pcap_file(good + bad, np.arange(2 * len(sizes)) * 1000))
        r = same_result(path).records
        assert list(r["icrc_ok"]) == [1] * len(sizes) + [0] * len(sizes)
        assert list(r["payload_len"][:len(sizes)]) == sizes
