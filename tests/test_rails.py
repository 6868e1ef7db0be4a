"""Rail-optimized CLOS builder (controlplane/ai/rails.py): wiring, path diversity, defaults, bad input."""
import numpy as np
import pytest

from controlplane.fabric import routing, topology
from controlplane.ai.rails import Gpu, RailLayout, rail_clos
from controlplane.config.units import MB, Gbps, ns, us


def fab(**kw):
    args = dict(host_rate_bps=Gbps(100), host_delay_ps=us(1), num_rails=4, servers_per_leaf=3, leaves_per_rail=3,
                spines_per_rail=2, cores_per_group=2)
    args.update(kw)
    return rail_clos(**args)


def test_every_nic_connects_only_to_its_rail():
    """A server is one host node: NIC r has one port per plane, to a leaf of rail r and of the
    server's leaf group; its address groups those ports. A leaf's hosts are the servers of its
    group, each through the port of its NIC on the leaf's rail; spines of rail r link only to
    leaves of rail r and cores. NVLink ports are the server's ports to its NVSwitch."""
    f = fab(planes=2, nvlink_rate_bps=Gbps(900))
    lay = RailLayout.of(f)
    assert f.num_hosts == f.servers == lay.num_servers
    for s in range(lay.num_servers):
        server = lay.server(s)
        nics = [lay.nic_port(s, r, p) for r in range(lay.R) for p in range(lay.planes)]
        nvls = [lay.nvl_port(s, r) for r in range(lay.R)]
        assert f.ports(server) == sorted(nics + nvls)
        for r in range(lay.R):
            nic = lay.nic(s, r)
            assert f.address_ports(nic) == [lay.nic_port(s, r, p) for p in range(lay.planes)]
            assert f.address_host(nic) == server and lay.host_of(nic) == server
            assert [f.port_peer(q) for q in f.address_ports(nic)] == [lay.leaf(r, lay.leaf_group(s), p)
                                                                       for p in range(lay.planes)]
            assert f.address_ports(lay.nvl(s, r)) == [lay.nvl_port(s, r)]
            assert f.port_peer(lay.nvl_port(s, r)) == lay.nvswitch(s)
    for p in range(lay.planes):
        for r in range(lay.R):
            for l in range(lay.L):
                leaf = lay.leaf(r, l, p)
                down = [q for q in f.ports(leaf) if f.is_host(f.port_peer(q))]
                assert sorted(f.port_peer(q) for q in down) == list(range(l * lay.spl, (l + 1) * lay.spl))
                assert all(lay.gpu_of(f.port_address(q ^ 1)).rail == r for q in down)
            for k in range(lay.P):
                peers = set(f.neighbors(lay.spine(r, k, p)))
                assert peers == {lay.leaf(r, l, p) for l in range(lay.L)} | {lay.core(k, c, p) for c in range(lay.C)}
    for s in range(lay.num_servers):            # an NVSwitch joins one server's GPUs and nothing else
        assert set(f.neighbors(lay.nvswitch(s))) == {lay.server(s)}


def test_path_diversity_between_two_leaves_equals_spine_count():
    """Routes between leaves of one rail have spines_per_rail equal-cost next hops at the source
    leaf and one at each spine; across rails spines x cores paths."""
    for spines in (1, 2, 4):
        f = fab(spines_per_rail=spines, cores_per_group=3)
        lay = RailLayout.of(f)
        rt = routing.compute_routes(f)
        src, dst = lay.nic(0, 1), lay.nic(lay.spl, 1)        # rail 1, leaf groups 0 and 1
        assert len(rt.candidates(lay.leaf(1, 0), dst)) == spines
        for k in range(spines):
            assert len(rt.candidates(lay.spine(1, k), dst)) == 1
        assert routing.hop_count(f, rt, src, dst) == 4
        other_rail = lay.nic(lay.spl, 2)
        assert len(rt.candidates(lay.leaf(1, 0), other_rail)) == spines
        assert len(rt.candidates(lay.spine(1, 0), other_rail)) == 3       # cores of group 0
        assert routing.hop_count(f, rt, src, other_rail) == 6
        # same leaf: one hop through the leaf
        assert routing.hop_count(f, rt, src, lay.nic(1, 1)) == 2


def test_nvlink_is_reached_only_through_the_nvswitch_and_planes_stay_apart():
    """No attachment links any more: an NVLink address is reachable from its server's NVSwitch
    only (every other switch has no route to it), and an NVSwitch routes nothing but its own
    server's NVLink addresses. A multi-plane NIC is one address with a port per plane, and the
    planes share nothing: every candidate egress of a plane-p switch towards a NIC leads to a
    plane-p switch or to the NIC itself through its plane-p port."""
    f = fab(planes=2, nvlink_rate_bps=Gbps(900))
    lay = RailLayout.of(f)
    rt = routing.compute_routes(f)
    nvsw = {lay.nvswitch(s) for s in range(lay.num_servers)}
    plane_of = {sw: (sw - lay.num_hosts) // lay.switches_per_plane
                for sw in range(f.num_hosts, f.num_nodes) if sw not in nvsw}
    # per plane NIC, leaf-spine and spine-core links; one NVLink per GPU; nothing else
    assert len(f.links) == lay.planes * lay.links_per_plane + lay.num_servers * lay.R
    for s in range(lay.num_servers):
        for r in range(lay.R):
            a = lay.nvl(s, r)
            assert list(rt.candidates(lay.nvswitch(s), a)) == [lay.nvl_port(s, r) ^ 1]
            assert all(len(rt.candidates(sw, a)) == 0 for sw in range(f.num_hosts, f.num_nodes)
                       if sw != lay.nvswitch(s))
            assert len(rt.candidates(lay.nvswitch(s), lay.nic(s, r))) == 0
    for sw, p in plane_of.items():
        for a in range(lay.num_nics):
            g = lay.gpu_of(a)
            for port in rt.candidates(sw, a):
                peer = f.port_peer(int(port))
                assert peer not in nvsw
                if peer == lay.server(g.server):      # delivered through the NIC's own plane-p port
                    assert int(port) ^ 1 == lay.nic_port(g.server, g.rail, p)
                else:
                    assert plane_of[peer] == p


def test_rates_from_oversubscription_and_rebuild_from_params():
    f = fab(oversubscription=3.0, core_oversubscription=2.0, nvlink_rate_bps=Gbps(900), nvlink_delay_ps=ns(50),
            sharp=True, sharp_latency_ps=ns(400))
    p = f.params
    assert p["leaf_rate_bps"] == round(Gbps(100) * 3 / (2 * 3.0))        # servers_per_leaf x host / (spines x over)
    assert p["core_rate_bps"] == round(p["leaf_rate_bps"] * 3 / (2 * 2.0))
    by_tier = {}
    for link in f.links:
        by_tier.setdefault(link.tier, set()).add(link.rate_bps)
    assert p["leaf_rate_bps"] in by_tier[1] and p["core_rate_bps"] in by_tier[2]
    lay = RailLayout.of(f)
    agg = lay.aggregator(lay.leaf(0, 0))
    assert f.ports(lay.engine(lay.leaf(0, 0))) == f.address_ports(agg) == [lay.engine_port(lay.leaf(0, 0))]
    (link,) = [f.links[q // 2] for q in f.address_ports(agg)]
    assert link.rate_bps == 2 * 3 * Gbps(100) and link.delay_ps == ns(200)   # 2 x down-links; half the latency
    again = topology.build(**f.params)
    assert again.to_dict() == f.to_dict()
    assert lay.num_hosts == f.num_hosts and lay.num_nodes == f.num_nodes


def test_tier_between_gpus():
    lay = RailLayout.of(fab(nvlink_rate_bps=Gbps(900)))
    assert lay.tier_between(Gpu(0, 0), Gpu(0, 3)) == 0
    assert lay.tier_between(Gpu(0, 1), Gpu(2, 1)) == 1
    assert lay.tier_between(Gpu(0, 1), Gpu(3, 1)) == 2
    assert lay.tier_between(Gpu(0, 1), Gpu(1, 2)) == 3


@pytest.mark.parametrize("field,value", [("num_rails", 0), ("servers_per_leaf", -1), ("spines_per_rail", 0),
                                         ("host_rate_bps", 0), ("oversubscription", 0.5), ("planes", 0),
                                         ("nvlink_rate_bps", -5), ("sharp_latency_ps", -1), ("leaf_delay_ps", -2)])
def test_bad_input_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        fab(**{field: value})


def test_layout_rejects_other_fabrics_and_missing_features():
    with pytest.raises(ValueError, match="topology"):
        RailLayout.of(topology.fat_tree(4, Gbps(100), us(1)))
    lay = RailLayout.of(fab())
    with pytest.raises(ValueError, match="nvlink"):
        lay.nvl(0, 0)
    with pytest.raises(ValueError, match="sharp"):
        lay.aggregator(lay.leaf(0, 0))
    with pytest.raises(ValueError, match="gpu"):
        lay.check_gpu(Gpu(99, 0))


# ---------------------------------------------------------------- the server as one host (addresses per NIC)
def _net(**topo):
    from controlplane.ai import collectives as C
    from controlplane.run.scenario import Scenario
    t = {"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": us(1), "num_rails": 2,
         "servers_per_leaf": 2, "leaves_per_rail": 1, "spines_per_rail": 1, "cores_per_group": 1}
    t.update(topo)
    return C.network(Scenario(topology=t, workload={"kind": "flows", "flows": []}, cc="none", sample_interval_ps=0))


def _tx(net, port: int) -> int:
    return int(net.sim.ports[port]["tx_packets"])


def test_cross_rail_transfer_arrives_on_the_destination_nic_of_its_rail():
    """GPU (0, 0) <-> GPU (1, 1): servers 0 and 1 share their leaves (one leaf group), so the
    leaf of rail 0 faces server 1 too (through its NIC 0). Addressed per NIC, the data to GPU
    (1, 1) climbs to the core and comes down rail 1 into server 1's NIC 1 (every data packet
    leaves the rail-1 leaf by the port facing it), and server 1's NIC 0 receives nothing; the
    other direction likewise. A host-addressed server would have taken NIC 0 (one hop)."""
    from controlplane.ai import collectives as C
    net = _net()
    lay = RailLayout.of(net.fabric)
    a, b = Gpu(0, 0), Gpu(1, 1)
    size = MB(1)
    r = C.run_collective(net, C.ring_all_reduce(net, [a, b], size, chunk_bytes=size))
    assert r.time_ps > 0
    data_each = -(-size // 2 // net.sim.mtu_payload) * 2        # two ring steps of S/2 each way
    into_b = _tx(net, lay.nic_port(1, 1) ^ 1)                   # rail-1 leaf -> server 1's NIC 1
    into_a = _tx(net, lay.nic_port(0, 0) ^ 1)
    assert into_b >= data_each and into_a >= data_each          # data (+ the ACKs of the other way)
    assert _tx(net, lay.nic_port(1, 0) ^ 1) == 0 and _tx(net, lay.nic_port(0, 1) ^ 1) == 0
    assert _tx(net, lay.nic_port(1, 0)) == 0 and _tx(net, lay.nic_port(0, 1)) == 0   # the unused NICs
    core_links = [i for i, l in enumerate(net.fabric.links) if l.tier == 2]
    assert sum(_tx(net, 2 * i) + _tx(net, 2 * i + 1) for i in core_links) >= 2 * data_each
    assert net.sim.no_route_drops == 0 and net.sim.counters()["misdelivered"] == 0
    for q in range(0, len(net.sim.qps), 2):                     # QPs bound to the GPUs' NICs
        assert net.sim.qp_address(q) in {(lay.nic(0, 0), lay.nic(1, 1)), (lay.nic(1, 1), lay.nic(0, 0))}


def test_nvlink_transfer_stays_inside_the_server():
    """A ring between two GPUs of one server goes over NVLink (one QP pair within the server
    host, bound to the two NVLink ports): no rail switch port and no NIC sends a packet."""
    from controlplane.ai import collectives as C
    net = _net(nvlink_rate_bps=Gbps(400))
    lay = RailLayout.of(net.fabric)
    C.run_collective(net, C.ring_all_reduce(net, [Gpu(0, 0), Gpu(0, 1)], MB(1)))
    nvsw = {lay.nvswitch(s) for s in range(lay.num_servers)}
    for p in range(net.fabric.num_ports):
        owner = net.fabric.port_owner(p)
        if p not in (lay.nvl_port(0, 0), lay.nvl_port(0, 1)) and owner not in nvsw:
            assert _tx(net, p) == 0, net.fabric.port_name(p)
    assert _tx(net, lay.nvl_port(0, 0)) > 0 and _tx(net, lay.nvl_port(0, 1)) > 0
    assert int(net.sim.qps["host"][0]) == int(net.sim.qps["host"][1]) == lay.server(0)


def test_engines_are_not_servers_and_workloads_address_nic_0():
    """With SHARP the aggregation engines are host nodes of their own role: not servers
    (fabric.servers), so a generic workload never picks one; its flows go from NIC 0 to NIC 0
    (each server's first address), so only NIC-0 ports and rail-0 switches carry data."""
    from controlplane.run.scenario import Network, Scenario
    topo = {"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": us(1), "num_rails": 2,
            "servers_per_leaf": 2, "leaves_per_rail": 2, "spines_per_rail": 1, "cores_per_group": 1, "sharp": True}
    f = topology.build(**topo)
    lay = RailLayout.of(f)
    assert f.servers == lay.num_servers == 4 and f.num_hosts == 4 + lay.num_engines
    assert all(f.node_names[lay.engine(sw)].startswith("agg@") for sw in lay.aggregating_switches())
    net = Network(Scenario(topology=topo, workload={"kind": "permutation", "size_bytes": 100_000}, cc="none",
                           sample_interval_ps=0))
    assert {fl.src for fl in net.flows} == {fl.dst for fl in net.flows} == set(range(4))
    net.run()
    assert all(m["finish_ps"] > 0 for m in net.sim.msgs)
    for s in range(4):
        assert _tx(net, lay.nic_port(s, 0)) > 0 and _tx(net, lay.nic_port(s, 1)) == 0
    for sw in lay.aggregating_switches():
        assert _tx(net, lay.engine_port(sw)) == 0 and _tx(net, lay.engine_port(sw) ^ 1) == 0
