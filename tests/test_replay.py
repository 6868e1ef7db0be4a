"""Replay: a capture of a softdpu run, turned back into a workload, reproduces its WRITEs."""
import struct

import numpy as np
import pytest

from controlplane.results.capture import CaptureSpec
from controlplane.transport.replay import messages
from controlplane.run.scenario import Scenario
from dataplane.sim import OPCODES, PACKET_DTYPE, Simulator
from tests.support import assert_conserved, star

FLOWS = [{"src": 1, "dst": 0, "size_bytes": 200_000, "start_ps": 0, "conn": 0},
         {"src": 2, "dst": 0, "size_bytes": 50_000, "start_ps": 3_000_000},
         {"src": 1, "dst": 0, "size_bytes": 70_000, "start_ps": 20_000_000, "conn": 0},   # same QP as the first
         {"src": 3, "dst": 2, "size_bytes": 4096, "start_ps": 7_000_000}]


def capture_run(tmp_path, **kw):
    path = tmp_path / "src.pcap"
    sc = Scenario(topology=star(4), workload={"kind": "flows", "flows": FLOWS}, sample_interval_ps=0, **kw)
    result = sc.run(capture=CaptureSpec(str(path), points=["hosts"], direction="tx", snaplen=96))
    return path, result


def test_replay_recovers_the_writes_of_a_capture(tmp_path):
    path, result = capture_run(tmp_path, cc="none")
    flows, n_hosts = messages(path, hosts="softdpu")
    assert n_hosts == 4
    got = sorted((f["src"], f["dst"], f["size_bytes"]) for f in flows)
    assert got == sorted((f["src"], f["dst"], f["size_bytes"]) for f in FLOWS)
    # start times: when each message's first packet left its NIC, relative to the first packet
    first_tx = result.network.sim.msgs["first_tx_ps"]
    by_size = {f["size_bytes"]: f for f in flows}
    for i, f in enumerate(FLOWS):
        assert by_size[f["size_bytes"]]["start_ps"] == (first_tx[i] - first_tx.min()) // 1000 * 1000
    # the two messages of connection 0 stay on one connection
    assert by_size[200_000]["conn"] == by_size[70_000]["conn"] != by_size[50_000]["conn"]


def test_replay_runs_through_a_fabric_with_another_cc(tmp_path):
    path, _ = capture_run(tmp_path, cc="none")
    r = Scenario(topology=star(4), workload={"kind": "pcap", "path": str(path), "hosts": "softdpu"}, cc="dcqcn",
                 sample_interval_ps=0).run()
    assert_conserved(r)
    assert r.counters["msgs_total"] == 4
    qps = r.network.qps
    assert qps[np.argsort(r.flows["size_bytes"])].tolist().count(qps[0]) >= 1
    assert len(set(qps.tolist())) == 3                          # two messages share a QP pair


def test_retransmissions_are_counted_once(tmp_path):
    """A lossy incast (8 KB buffer, no CC) retransmits WRITE First packets; each message is
    replayed once."""
    path = tmp_path / "lossy.pcap"
    sc = Scenario(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 100_000}, cc="none",
                  buffer_bytes=8_000, sample_interval_ps=0)
    result = sc.run(capture=CaptureSpec(str(path), points=["hosts"], direction="tx", snaplen=96))
    assert result.counters["retransmitted"] > 0
    flows, _ = messages(path, hosts="order")
    assert len(flows) == 4 and all(f["size_bytes"] == 100_000 for f in flows)


def test_replay_errors_are_clear(tmp_path):
    path, _ = capture_run(tmp_path, cc="none")
    with pytest.raises(ValueError, match="needs 4 hosts"):
        Scenario(topology=star(3), workload={"kind": "pcap", "path": str(path)}).build()
    with pytest.raises(ValueError, match="hosts must be"):
        messages(path, hosts="guess")
    empty = tmp_path / "empty.pcap"
    Simulator(num_hosts=2, num_switches=0, max_links=1).write_pcap(empty, np.zeros(0, dtype=PACKET_DTYPE), [])
    with pytest.raises(ValueError, match="no RDMA WRITE"):
        messages(empty)


def test_capture_spec_points_and_split(tmp_path):
    sc = Scenario(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": 50_000}, cc="none",
                  sample_interval_ps=0)
    spec = CaptureSpec.parse(str(tmp_path / "c.pcap"), "points=h0,sw0->h1,4 dir=tx split=1 snaplen=64 max=50")
    net = sc.build()
    spec.attach(net)
    net.run()
    stats = spec.close(net)
    assert len(stats) == 3 and all(0 < p <= 50 for p, _ in stats.values())
    assert (tmp_path / "c-sw0_to_h1.pcap").exists()
    with pytest.raises(ValueError, match="named twice"):
        CaptureSpec.parse(str(tmp_path / "e.pcap"), "points=sw0->h1,3").attach(sc.build())
    with pytest.raises(ValueError, match="unknown key"):
        CaptureSpec.parse("x.pcap", "colour=blue")
    with pytest.raises(ValueError, match="capture point"):
        CaptureSpec(str(tmp_path / "d.pcap"), points=["nowhere"]).resolve(sc.build())


def write_only_capture(path, t_ns):
    """WRITE Only packets h1 -> h0 on one QP (softdpu's encoder), one per time, in a pcap-ns file."""
    s = Simulator(num_hosts=2, num_switches=0, max_links=1)
    pk = np.zeros(len(t_ns), dtype=PACKET_DTYPE)
    pk["opcode"], pk["src"], pk["dst"], pk["dqp"], pk["msg"] = OPCODES["write_only"], 1, 0, 0, 0xFFFFFFFF
    pk["payload"], pk["psn"], pk["sport"], pk["ttl"] = 64, np.arange(len(t_ns)), 49152, 64
    frames = [s.encode(p) for p in pk]
    out = bytearray(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
    for f, t in zip(frames, t_ns):
        out += struct.pack("<IIII", *divmod(int(t), 10**9), len(f), len(f)) + f
    path.write_bytes(bytes(out))
    return frames


def test_a_far_future_timestamp_is_a_counted_skip_not_an_object_array(tmp_path):
    """The issue's file: one record in the year 2106 among records of 2023. The reader skips and
    counts it (its time lies 83 years = 2.6e21 ps from the first, beyond int64 ps); the replay
    posts the other messages at their relative times."""
    base = 1_700_000_000 * 10**9
    t = [base, base + 1_000, (2**32 - 1) * 10**9, base + 5_000]
    path = tmp_path / "future.pcap"
    write_only_capture(path, t)
    flows, n_hosts = messages(path, hosts="softdpu")
    assert [f["start_ps"] for f in flows] == [0, 1_000_000, 5_000_000]         # ns x 1000, exact integers
    r = Scenario(topology=star(2), workload={"kind": "pcap", "path": str(path), "hosts": "softdpu"}, cc="none",
                 sample_interval_ps=0).run()
    assert r.counters["msgs_total"] == 3 and r.counters["msgs_completed"] == 3
    assert list(r.flows["start_ps"]) == [0, 1_000_000, 5_000_000]


def test_a_time_that_overflows_after_time_scale_names_the_file_and_record(tmp_path):
    """50 days after the first record fits int64 ps (4.3e18 < 9.2e18), x 3 does not."""
    base = 1_700_000_000 * 10**9
    path = tmp_path / "slow.pcap"
    write_only_capture(path, [base, base + 10**6, base + 50 * 86400 * 10**9])
    assert messages(path, time_scale=1.0)[0][2]["start_ps"] == 50 * 86400 * 10**12
    with pytest.raises(ValueError, match=rf"{path}: record 2: .*beyond int64 picoseconds"):
        messages(path, time_scale=3.0)
    for bad in (float("inf"), float("nan"), 0, True):
        with pytest.raises(ValueError, match="time_scale"):
            messages(path, time_scale=bad)
