"""Replay: a capture of a softdpu run, turned back into a workload, reproduces its WRITEs."""
import numpy as np
import pytest

from controlplane.capture import CaptureSpec
from controlplane.replay import messages
from controlplane.scenario import Scenario
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
    from dataplane.sim import Simulator, PACKET_DTYPE
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
