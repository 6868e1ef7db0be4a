"""SHARP in-network all-reduce (controlplane/ai/sharp.py): per-node bytes S up + S down, the sum of
the inputs on every member, the gain over a ring against 2(N-1)/N (nccl-tests doc/PERFORMANCE.md; V9 of
docs/architecture.md),
and bad input."""
import numpy as np
import pytest

from controlplane.ai import collectives as C
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.run.scenario import Scenario
from controlplane.ai.sharp import reduction_tree, sharp_all_reduce
from controlplane.config.units import Gbps, KB, MB, ns, us


def scenario(cc="none", **topo) -> Scenario:
    t = {"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": us(1), "num_rails": 2,
         "servers_per_leaf": 4, "leaves_per_rail": 2, "spines_per_rail": 2, "cores_per_group": 2, "sharp": True,
         "sharp_latency_ps": ns(500)}
    t.update(topo)
    return Scenario(topology=t, workload={"kind": "flows", "flows": []}, cc=cc, sample_interval_ps=0)


GROUPS = {"one-leaf": [Gpu(s, 0) for s in range(4)],
          "one-rail": [Gpu(s, 1) for s in range(8)],
          "two-rails": [Gpu(s, r) for s in range(2, 8) for r in range(2)]}


@pytest.mark.parametrize("group", list(GROUPS))
def test_sharp_sum_and_bytes_per_node(group):
    """Every member ends with the elementwise sum of the inputs (small real vectors carried
    through the tree); each member's NIC WRITEs exactly S and is written exactly S, counted
    from the data plane's acknowledged bytes per QP."""
    ranks = GROUPS[group]
    net = C.network(scenario())
    S = KB(768)
    sched = sharp_all_reduce(net, ranks, S, chunk_bytes=KB(64), elems=41, seed=7)
    init = {k: v.copy() for k, v in sched.buffers.items()}
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    assert total.any()
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], total)
    lay = RailLayout.of(net.fabric)
    qps = net.sim.qps
    sent = {}
    recv = {}
    for q in range(0, len(qps), 2):                  # sender QPs are even, their receiver ends odd
        a, b = net.sim.qp_address(q)                 # NIC and engine addresses (a server is one host)
        sent[a] = sent.get(a, 0) + int(qps["acked_bytes"][q])
        recv[b] = recv.get(b, 0) + int(qps["acked_bytes"][q])
    for g in ranks:
        nic = lay.nic(g.server, g.rail)
        assert sent[nic] == S and recv[nic] == S
        assert r.bytes_sent[nic] == S and r.bytes_received[nic] == S


def test_hierarchical_sharp_sum_and_nic_bytes():
    """NVLink reduce-scatter, SHARP per rail on S/G, NVLink all-gather: the sum arrives
    everywhere and each NIC carries S/G up and S/G down."""
    ranks = [Gpu(s, r) for s in range(6) for r in range(2)]
    net = C.network(scenario(nvlink_rate_bps=Gbps(3600), nvlink_delay_ps=ns(100)))
    S = KB(512)
    sched = sharp_all_reduce(net, ranks, S, chunk_bytes=KB(64), elems=30, seed=3, hierarchical=True)
    init = {k: v.copy() for k, v in sched.buffers.items()}
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], total)
    lay = RailLayout.of(net.fabric)
    for g in ranks:
        assert r.bytes_sent[lay.nic(g.server, g.rail)] == S // 2
        assert r.bytes_received[lay.nic(g.server, g.rail)] == S // 2


def test_trees_follow_the_fabric():
    lay = RailLayout.of(C.network(scenario()).fabric)
    root, ch = reduction_tree(lay, GROUPS["one-leaf"])
    assert root == lay.leaf(0, 0) and ch == {root: GROUPS["one-leaf"]}
    root, ch = reduction_tree(lay, GROUPS["one-rail"], tree=1)
    assert root == lay.spine(1, 1) and sorted(ch[root]) == [lay.leaf(1, 0), lay.leaf(1, 1)]
    root, ch = reduction_tree(lay, GROUPS["two-rails"], tree=3)
    assert root == lay.core(1, 1) and ch[root] == [lay.spine(0, 1), lay.spine(1, 1)]


@pytest.mark.parametrize("n", [4, 8])
def test_sharp_gain_over_ring_approaches_2_n_minus_1_over_n(n):
    """V9: a ring moves 2(N-1)/N x S through each NIC, SHARP 1 x S, so for large messages on
    an idle fabric the speed-up approaches 2(N-1)/N (1.5 for 4 ranks, 1.75 for 8); allow 10 %
    for the tree's latency and pipeline fill."""
    ranks = [Gpu(s, 0) for s in range(n)]
    t = {}
    for name, make in (("ring", C.ring_all_reduce), ("sharp", sharp_all_reduce)):
        net = C.network(scenario())
        t[name] = C.run_collective(net, make(net, ranks, MB(16), chunk_bytes=KB(256))).time_ps
    assert t["ring"] / t["sharp"] == pytest.approx(2 * (n - 1) / n, rel=0.10)


def test_overhead_and_capacity_slow_sharp_down():
    """A per-operation overhead adds to every chunk's way through the tree; a lower
    aggregation capacity makes the aggregation link the bottleneck."""
    ranks = [Gpu(s, 0) for s in range(4)]

    def run(op_overhead_ps=0, **topo):
        net = C.network(scenario(**topo))
        return C.run_collective(net, sharp_all_reduce(net, ranks, MB(2), chunk_bytes=KB(256),
                                                      op_overhead_ps=op_overhead_ps)).time_ps

    base = run()
    assert run(op_overhead_ps=us(5)) > base + 0.9 * us(5)      # pipelined: about one overhead in all
    assert run(sharp_rate_bps=Gbps(100)) > 3 * base


def test_bad_input():
    net = C.network(scenario(sharp=False))
    with pytest.raises(ValueError, match="sharp"):
        sharp_all_reduce(net, GROUPS["one-leaf"], MB(1))
    # a multi-plane fabric with aggregators is refused when built (controlplane/ai/rails.py: an
    # aggregator of plane p is reachable from plane p only)
    with pytest.raises(ValueError, match=r"sharp: SHARP over a multi-plane fabric is not modelled \(planes=2\)"):
        C.network(scenario(planes=2))
    net = C.network(scenario())
    with pytest.raises(ValueError, match="size_bytes"):
        sharp_all_reduce(net, GROUPS["one-leaf"], 0)
    with pytest.raises(ValueError, match="op_overhead_ps"):
        sharp_all_reduce(net, GROUPS["one-leaf"], MB(1), op_overhead_ps=-1)
    with pytest.raises(ValueError, match="num_trees"):
        sharp_all_reduce(net, GROUPS["one-leaf"], MB(1), num_trees=0)
    with pytest.raises(ValueError, match=r"ranks\[1\]"):
        sharp_all_reduce(net, [Gpu(0, 0), Gpu(0, 5)], MB(1))


def test_a_large_sharp_rail_fabric_builds_with_its_engines_at_the_largest_rate():
    """The default engine rate is twice the switch's down-link rates (controlplane/ai/rails.py), at
    most the data plane's largest rate (100 Tb/s): 64 servers x 8 rails at 400 Gb/s give a core
    engine 2 x 8 rails x 6.4 Tb/s = 102.4 Tb/s of down-links, which failed to build before (found
    by the training_step experiment at 512 GPUs); a leaf engine keeps 2 x 4 x 400 Gb/s."""
    from controlplane.fabric.topology import build, MAX_RATE_BPS
    fab = build(topology="rail_clos", host_rate_bps=Gbps(400), host_delay_ps=us(1), num_rails=8, servers_per_leaf=4,
                leaves_per_rail=16, spines_per_rail=2, cores_per_group=2, sharp=True)
    lay = RailLayout(fab.params)
    rates = {}
    for link in fab.links:
        for end in (link.a, link.b):
            if lay.num_servers <= end < lay.num_hosts:          # an aggregation engine's link
                peer = link.b if end == link.a else link.a
                rates[fab.node_tier[peer]] = max(rates.get(fab.node_tier[peer], 0), link.rate_bps)
    assert rates[3] == MAX_RATE_BPS
    assert rates[1] == 2 * 4 * Gbps(400)
