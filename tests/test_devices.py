"""Device objects read the data plane's state and act on it."""
import pytest

from controlplane.run.scenario import Scenario
from tests.support import assert_conserved, star


def test_devices_reflect_a_run():
    net = Scenario(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": 1_000_000}, cc="dcqcn",
                   sample_interval_ps=0).build()
    result = net.run()
    assert_conserved(result)
    assert [d.name for d in net.dpus] == ["h0", "h1", "h2"]
    sender = net.dpus[1].qps[0]
    assert sender.posted_bytes == sender.acked_bytes == 1_000_000
    assert sender.peer.rx_bytes == 1_000_000 and sender.peer.host == 0
    sw = net.switches[0]
    assert len(sw.ports) == 3 and sw.tier == 1
    down = net.port(net.bottleneck_port())
    assert down.name == "sw0->h0" and down.tx_packets == 2 * 245 and down.peer.node == 0
    assert down.peak_queue_bytes > 0 and down.rate_bps == 100_000_000_000
    # every packet reached the host it was addressed to: no NIC refused one
    assert [d.misdelivered for d in net.dpus] == [0, 0, 0] and result.counters["misdelivered"] == 0
    with pytest.raises(ValueError, match="3 is not a host"):
        net.sim.host_misdelivered(3)


def test_connections_pair_each_sender_with_its_responder():
    """net.connections are the workload's QP pairs as the data plane paired them: the sender on the
    flow's source host, the receiver on its destination, which received every byte the sender had
    ACKed (an incast of 3 x 200 KB into h0)."""
    net = Scenario(topology=star(4), workload={"kind": "incast", "senders": 3, "size_bytes": 200_000}, cc="dcqcn",
                   sample_interval_ps=0).build()
    r = net.run()
    assert_conserved(r)
    conns = net.connections
    assert [c.sender.index for c in conns] == net.sender_qps.tolist()
    assert [c.receiver.index for c in conns] == net.receiver_qps.tolist()
    for i, c in enumerate(conns):
        assert (c.src, c.dst) == (int(r.flows["src"][i]), int(r.flows["dst"][i])) == (c.sender.host, c.sender.peer_host)
        assert c.receiver.peer.index == c.sender.index
        assert c.receiver.rx_bytes == c.sender.acked_bytes == 200_000 and c.receiver.rx_packets > 0
    assert repr(conns[0]).startswith(f"Connection(h{conns[0].src} qp{conns[0].sender.index} -> h0 ")


def test_failed_link_drops_and_qp_post_write_recovers():
    net = Scenario(topology=star(2), workload={"kind": "flows", "flows": []}, cc="none", sample_interval_ps=0,
                   rto_ps=100_000_000).build()
    qp_index = net.sim.create_qp_pair(1, 0, 50000)
    from controlplane.run.devices import QueuePair
    qp = QueuePair(net, qp_index)
    link = net.links[1]
    link.up = False
    assert not link.up
    qp.post_write(100_000)
    net.sim.run_until(50_000_000)
    assert net.dpus[1].port.dropped > 0 and qp.acked_bytes == 0
    link.up = True
    net.sim.run_until(10**10)
    assert qp.acked_bytes == 100_000 and qp.retransmitted_packets > 0


def test_port_set_queue_validates():
    net = Scenario(topology=star(2), workload={"kind": "flows", "flows": []}, cc="none").build()
    with pytest.raises(ValueError, match="pmax"):
        net.port(1).set_queue(1, 10_000, 0, 100, 1.5)
