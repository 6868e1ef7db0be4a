"""Replay of SEND, READ and WRITE captures: each message's verb, size, start time and connection.

The captures are built independently of softdpu's encoder, frame by frame with scapy
(scapy.contrib.roce BTH/AETH, which computes the ICRC of IBTA Annex A17; RETH and ImmDt as raw
bytes after the BTH, IBTA Vol. 1 §9.3.3 / §9.3.5), and written as classic pcap files. Expected
values are written out by hand from the packets each test builds (module docstring of
controlplane/transport/replay.py gives the rules: WRITE size = RETH DMA length of First/Only,
SEND size = the sum of its packets' payloads, READ = the READ Request's RETH length from the
requester to the responder; start = the first packet's time relative to the earliest record;
one connection per (source, destination, DestQP); a retransmitted PSN counted once).
"""
import struct
import warnings

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.contrib.roce import AETH, BTH
from scapy.packet import Raw

from controlplane.config.units import Gbps, us
from controlplane.fabric import topology
from controlplane.run.scenario import Scenario
from controlplane.transport import workload
from controlplane.transport.replay import extract, messages
from dataplane.pcap import read_pcap
from tests.support import star
from test_wire import pcap_file        # as pytest imports it (see tests/test_pcap_scan.py)

MACS = {}


def frame(src, dst, op, dqpn, psn, payload=0, reth=None, imm=None, aeth=None, ackreq=0) -> bytes:
    """One RoCEv2 frame by scapy: IPv4, UDP 4791, BTH, [RETH], [AETH], [ImmDt], payload + pad, ICRC."""
    for a in (src, dst):
        MACS.setdefault(a, "b8:ce:f6:%02x:%02x:%02x" % tuple(int(x) for x in a.split(".")[1:]))
    pad = -payload % 4
    ext = b""
    if reth is not None:
        ext += struct.pack(">QII", 0x7F00_0000_1000, 0x2A17, reth)   # VA, R_Key, DMA length
    if imm is not None:
        ext += struct.pack(">I", imm)
    bth = BTH(opcode=op, padcount=pad, pkey=0xFFFF, dqpn=dqpn, psn=psn, ackreq=ackreq)
    pkt = Ether(src=MACS[src], dst=MACS[dst]) / IP(src=src, dst=dst, flags="DF", ttl=64, tos=0x68) / \
        UDP(sport=0xC000 | (dqpn & 0x3FFF), dport=4791, chksum=0) / bth
    if aeth is not None:
        pkt = pkt / AETH(syndrome=aeth[0], msn=aeth[1])
    return bytes(pkt / Raw(ext + bytes(payload + pad)))


def write_capture(path, packets):
    """packets: (t_ns, frame) in capture order; a nanosecond pcap."""
    path.write_bytes(pcap_file([f for _, f in packets], [t for t, _ in packets]))
    read = read_pcap(path)
    assert len(read.records) == len(packets) and not read.skipped and (read.records["icrc_ok"] == 1).all()
    return read


A, B, C = "172.16.0.1", "172.16.0.2", "172.16.0.3"
T0 = 1_700_000_000_123_456_789


def test_send_recv_capture(tmp_path):
    """SEND First+Middle+Last, SEND Only, SEND First+Last with Immediate, a retransmitted Middle,
    a SEND Only with Immediate and no payload, a SEND cut at the capture's start (Middle+Last:
    left out, counted), one cut at its end (First only: left out, counted), ACKs ignored."""
    p = []
    t = lambda us_: T0 + int(us_ * 1000)
    p.append((t(0), frame(A, B, 0, 0x11, 100, payload=1024)))              # A->B SEND First
    p.append((t(1), frame(C, A, 1, 0x33, 7, payload=1024)))                # C->A SEND Middle: its First is missing
    p.append((t(2), frame(A, B, 1, 0x11, 101, payload=1024)))              # SEND Middle
    p.append((t(3), frame(C, A, 2, 0x33, 8, payload=12)))                  # ... and its Last
    p.append((t(4), frame(A, B, 2, 0x11, 102, payload=500, ackreq=1)))     # SEND Last: 2548 B
    p.append((t(5), frame(B, A, 17, 0x12, 102, aeth=(0, 1))))              # ACK
    p.append((t(6), frame(A, B, 1, 0x11, 101, payload=1024)))              # a retransmitted Middle: once
    p.append((t(7.5), frame(A, B, 4, 0x11, 103, payload=64, ackreq=1)))    # SEND Only: 64 B
    p.append((t(9), frame(B, A, 5, 0x12, 7, imm=0xBEEF, ackreq=1)))        # B->A SEND Only w/ Imm, 0 B -> 1 B
    p.append((t(10), frame(A, B, 0, 0x11, 104, payload=1024)))             # SEND First ...
    p.append((t(11), frame(A, B, 3, 0x11, 105, payload=10, imm=5, ackreq=1)))   # ... Last w/ Imm: 1034 B
    p.append((t(12), frame(C, A, 4, 0x33, 9, payload=128, ackreq=1)))      # C->A SEND Only: 128 B
    p.append((t(13), frame(B, C, 0, 0x44, 1, payload=1024)))               # B->C SEND First: the capture ends
    read = write_capture(tmp_path / "send.pcap", p)
    got = extract(read, hosts="order")
    # hosts in order of appearance among complete messages: A (0), B (1), then C (2)
    assert got.flows == [
        {"src": 0, "dst": 1, "size_bytes": 2548, "start_ps": 0, "conn": 0, "verb": "send"},
        {"src": 0, "dst": 1, "size_bytes": 64, "start_ps": 7_500_000, "conn": 0, "verb": "send"},
        {"src": 1, "dst": 0, "size_bytes": 1, "start_ps": 9_000_000, "conn": 1, "verb": "send_imm"},
        {"src": 0, "dst": 1, "size_bytes": 1034, "start_ps": 10_000_000, "conn": 0, "verb": "send_imm"},
        {"src": 2, "dst": 0, "size_bytes": 128, "start_ps": 12_000_000, "conn": 2, "verb": "send"},
    ]
    assert got.n_hosts == 3 and got.repeated == 1
    assert got.incomplete == {"send_without_first": 1, "send_without_last": 1}
    with pytest.warns(UserWarning, match="1 send_without_first, 1 send_without_last"):
        flows, n = messages(tmp_path / "send.pcap")
    assert flows == got.flows and n == 3
    fab = topology.single_switch(3, Gbps(100), us(1))
    with pytest.warns(UserWarning, match="left out"):
        built = workload.from_pcap(fab, str(tmp_path / "send.pcap"))
    assert [(f.src, f.dst, f.size_bytes, f.start_ps, f.verb) for f in built] == \
        [(f["src"], f["dst"], f["size_bytes"], f["start_ps"], f["verb"]) for f in got.flows]


def test_read_and_write_capture(tmp_path):
    """READ Requests (their responses, First/Middle/Last and Only, flow back and are not
    messages), WRITE First+Middle+Last with Immediate and WRITE Only on the same QP pair."""
    t = lambda us_: T0 + int(us_ * 1000)
    p = [(t(0), frame(A, B, 12, 0x44, 50, reth=8192)),                     # READ Request 8 KiB
         (t(1), frame(B, A, 13, 0x55, 50, payload=4096, aeth=(0, 1))),     # READ Response First (AETH)
         (t(2), frame(B, A, 14, 0x55, 51, payload=4000)),                  # ... Middle
         (t(3), frame(B, A, 15, 0x55, 52, payload=96, aeth=(0, 1))),       # ... Last
         (t(4), frame(A, B, 12, 0x44, 53, reth=100)),                      # READ Request 100 B
         (t(5), frame(B, A, 16, 0x55, 53, payload=100, aeth=(0, 2))),      # READ Response Only
         (t(6), frame(A, B, 6, 0x44, 54, payload=1024, reth=3000)),        # WRITE First, RETH 3000
         (t(7), frame(A, B, 7, 0x44, 55, payload=1024)),                   # WRITE Middle
         (t(8), frame(A, B, 9, 0x44, 56, payload=952, imm=0x1234, ackreq=1)),   # WRITE Last w/ Imm
         (t(9), frame(B, A, 17, 0x55, 56, aeth=(0, 4))),                   # ACK
         (t(10), frame(A, B, 10, 0x44, 57, payload=200, reth=200, ackreq=1)),   # WRITE Only
         (t(11), frame(A, B, 12, 0x44, 53, reth=100))]                     # the 100 B READ retransmitted
    read = write_capture(tmp_path / "read.pcap", p)
    flows, n = messages(read, hosts="order")
    assert flows == [
        {"src": 0, "dst": 1, "size_bytes": 8192, "start_ps": 0, "conn": 0, "verb": "read"},
        {"src": 0, "dst": 1, "size_bytes": 100, "start_ps": 4_000_000, "conn": 0, "verb": "read"},
        {"src": 0, "dst": 1, "size_bytes": 3000, "start_ps": 6_000_000, "conn": 0, "verb": "write_imm"},
        {"src": 0, "dst": 1, "size_bytes": 200, "start_ps": 10_000_000, "conn": 0, "verb": "write"},
    ]
    assert n == 2 and extract(read).repeated == 1


def real_like_capture(path):
    """Shaped like the hardware capture of the issue: 105 RoCEv2 frames between two hosts of
    192.168.100.0/24, IPv4, 4096-byte path MTU: 21 rounds of a request (SEND Only with Immediate,
    64 B) answered by an ACK, then a response (SEND First 4096 B + SEND Last with Immediate
    1000 B) answered by an ACK. Times: 1 us to 20 us apart, irregular."""
    cli, srv = "192.168.100.11", "192.168.100.12"
    qp_cli, qp_srv = 0x0001D4, 0x0001D7               # each side's QPN (the other side's DestQP)
    rng = np.random.default_rng(16)
    t, packets, starts = 1_700_000_123_000_000_000, [], {"req": [], "resp": []}
    psn_c, psn_s = 0x5A3C1, 0xE07A9
    for i in range(21):
        starts["req"].append(t)
        packets.append((t, frame(cli, srv, 5, qp_srv, psn_c, payload=64, imm=i, ackreq=1)))
        t += int(rng.integers(1_000, 20_000))
        packets.append((t, frame(srv, cli, 17, qp_cli, psn_c, aeth=(0, i + 1))))
        t += int(rng.integers(1_000, 20_000))
        starts["resp"].append(t)
        packets.append((t, frame(srv, cli, 0, qp_cli, psn_s, payload=4096)))
        t += int(rng.integers(1_000, 20_000))
        packets.append((t, frame(srv, cli, 3, qp_cli, (psn_s + 1) & 0xFFFFFF, payload=1000, imm=0x8000 + i,
                                 ackreq=1)))
        t += int(rng.integers(1_000, 20_000))
        packets.append((t, frame(cli, srv, 17, qp_srv, (psn_s + 1) & 0xFFFFFF, aeth=(0, i + 1))))
        t += int(rng.integers(1_000, 20_000))
        psn_c, psn_s = (psn_c + 1) & 0xFFFFFF, (psn_s + 2) & 0xFFFFFF
    assert len(packets) == 105
    return write_capture(path, packets), starts


def test_a_capture_like_the_issues_hardware_capture_replays(tmp_path):
    read, starts = real_like_capture(tmp_path / "hw.pcap")
    t0 = starts["req"][0]
    flows, n = messages(tmp_path / "hw.pcap", hosts="order")
    want = []
    for i in range(21):
        want.append({"src": 0, "dst": 1, "size_bytes": 64, "start_ps": (starts["req"][i] - t0) * 1000,
                     "conn": 0, "verb": "send_imm"})
        want.append({"src": 1, "dst": 0, "size_bytes": 4096 + 1000, "start_ps": (starts["resp"][i] - t0) * 1000,
                     "conn": 1, "verb": "send_imm"})
    assert flows == want and n == 2
    # softdpu's address plan does not cover 192.168.100.0/24
    with pytest.raises(ValueError, match="outside 10.0.0.0/8"):
        messages(tmp_path / "hw.pcap", hosts="softdpu")
    # as a workload of the pcap kind: the flows, on their two connections, with their verbs
    fab = topology.single_switch(2, Gbps(100), us(1))
    built = workload.build(fab, {"kind": "pcap", "path": str(tmp_path / "hw.pcap"), "hosts": "order"},
                           np.random.default_rng(1))
    assert [(f.src, f.dst, f.size_bytes, f.start_ps, f.conn, f.verb) for f in built] == \
        [(f["src"], f["dst"], f["size_bytes"], f["start_ps"], f["conn"], f["verb"]) for f in want]


def test_psns_wrap_and_out_of_order_copies_keep_messages_whole(tmp_path):
    """A connection whose PSNs wrap past 2^24 - 1, and a capture point that saw a SEND's
    Middle after the next message's First (a selective-repeat retransmission): packets are
    taken in PSN order, so each SEND gets its own bytes."""
    t = lambda k: T0 + k * 1000
    p = [(t(0), frame(A, B, 0, 0x11, 0xFFFFFE, payload=1024)),    # SEND First
         (t(1), frame(A, B, 2, 0x11, 0x000000, payload=100)),     # its Last (PSN 0xFFFFFF lost here)
         (t(2), frame(A, B, 4, 0x11, 0x000001, payload=64)),      # the next SEND (Only)
         (t(3), frame(A, B, 1, 0x11, 0xFFFFFF, payload=1024))]    # the lost Middle, retransmitted
    read = write_capture(tmp_path / "wrap.pcap", p)
    flows, _ = messages(read)
    assert [(f["size_bytes"], f["start_ps"], f["verb"]) for f in flows] == [(2148, 0, "send"), (64, 2_000_000, "send")]


def test_a_capture_without_messages_names_what_replay_looks_for(tmp_path):
    p = [(T0, frame(B, A, 17, 0x12, 5, aeth=(0, 1))),
         (T0 + 1000, frame(B, A, 14, 0x12, 6, payload=64)),       # a READ Response Middle: not a message
         (T0 + 2000, frame(A, B, 1, 0x11, 7, payload=64))]        # a SEND Middle without its First
    write_capture(tmp_path / "acks.pcap", p)
    with pytest.raises(ValueError, match=r"no RDMA WRITE, SEND or READ message .*left out: 1 send_without_first"):
        messages(tmp_path / "acks.pcap")


def test_a_write_only_capture_still_runs_end_to_end(tmp_path):
    """WRITE Only and WRITE First..Last messages from scapy frames at softdpu's addresses: the
    replay runs through the data plane (verbs other than write wait for it), every message
    completes with its size."""
    a, b = "10.0.0.1", "10.0.0.2"
    p = [(T0, frame(a, b, 10, 0x100, 1, payload=4000, reth=4000)),
         (T0 + 5000, frame(a, b, 6, 0x100, 2, payload=1024, reth=2048)),
         (T0 + 6000, frame(a, b, 8, 0x100, 3, payload=1024))]
    write_capture(tmp_path / "w.pcap", p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # nothing left out
        flows, n = messages(tmp_path / "w.pcap", hosts="softdpu")
    assert [(f["size_bytes"], f["start_ps"], f["verb"]) for f in flows] == [(4000, 0, "write"), (2048, 5_000_000, "write")]
    r = Scenario(topology=star(2), workload={"kind": "pcap", "path": str(tmp_path / "w.pcap"), "hosts": "softdpu"},
                 cc="none", sample_interval_ps=0).run()
    assert r.counters["msgs_completed"] == 2 and sorted(r.flows["size_bytes"]) == [2048, 4000]


def test_the_same_capture_as_pcapng_replays_the_same(tmp_path):
    """The hardware-like capture written as pcapng (one Ethernet interface at ns resolution,
    Enhanced Packet Blocks) gives the same messages as the pcap."""
    from test_pcap_scan import ng_epb, ng_idb, ng_shb
    read, _ = real_like_capture(tmp_path / "hw.pcap")
    data = (tmp_path / "hw.pcap").read_bytes()
    ng, off = ng_shb("<") + ng_idb("<", tsresol=9), 24
    while off < len(data):
        sec, ns, incl, orig = struct.unpack_from("<IIII", data, off)
        ng += ng_epb("<", 0, sec * 10**9 + ns, data[off + 16:off + 16 + incl], orig)
        off += 16 + incl
    (tmp_path / "hw.pcapng").write_bytes(ng)
    assert messages(tmp_path / "hw.pcapng") == messages(tmp_path / "hw.pcap")
    assert len(messages(tmp_path / "hw.pcapng")[0]) == 42


# ---------------------------------------------------------------- end to end through the data plane
def test_the_hardware_like_capture_replays_end_to_end(tmp_path):
    """The issue's capture (SEND Only with Immediate requests, SEND First + Last with Immediate
    responses, on two connections) as a `pcap` workload: it runs through the data plane with its
    verbs, every SEND completes at both ends (a responder completion each), the bytes received
    are the capture's, and with receives to spare each message alone on its path completes at its
    ideal time (they never overlap: 21 request/response rounds)."""
    real_like_capture(tmp_path / "hw.pcap")
    sc = Scenario(topology=star(2), workload={"kind": "pcap", "path": str(tmp_path / "hw.pcap"), "hosts": "order"},
                  cc="dcqcn", sample_interval_ps=0)
    r = sc.run()
    assert len(r.flows["fct_ps"]) == 42 and (r.flows["wc_status"] == "success").all()
    assert set(r.flows["verb"]) == {"send_imm"}
    assert (r.flows["rx_done_ps"] > 0).all()
    q = r.network.sim.qps
    recv = q["rx_bytes"][r.network.qps + 1]
    assert sorted(set(recv.tolist())) == [21 * 64, 21 * 5096]
    assert int(q["rx_completions"].sum()) == 42
    assert (r.flows["slowdown"] == 1.0).all()


def test_a_read_and_write_capture_replays_end_to_end(tmp_path):
    """The READ/WRITE fixture replayed: the READs pull their bytes back to the requester (READ
    responses from the responder), the WRITEs with and without immediate push theirs; every
    message completes, and the messages of the shared connection complete in posting order."""
    test_read_and_write_capture(tmp_path)                # writes rw.pcap and checks the extraction
    path = next(tmp_path.glob("*.pcap"))
    r = Scenario(topology=star(3), workload={"kind": "pcap", "path": str(path), "hosts": "order"}, cc="none",
                 sample_interval_ps=0).run()
    assert (r.flows["wc_status"] == "success").all() and (r.flows["finish_ps"] > 0).all()
    f = r.flows
    q = r.network.sim.qps
    reads = f["verb"] == "read"
    assert reads.any() and (~reads).any()
    assert int(q["read_resp_bytes"].sum()) == int(f["size_bytes"][reads].sum())
