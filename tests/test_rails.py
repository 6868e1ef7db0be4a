"""Rail-optimized CLOS builder (controlplane/ai/rails.py): wiring, path diversity, defaults, bad input."""
import numpy as np
import pytest

from controlplane.fabric import routing, topology
from controlplane.ai.rails import Gpu, RailLayout, rail_clos
from controlplane.config.units import Gbps, ns, us


def fab(**kw):
    args = dict(host_rate_bps=Gbps(100), host_delay_ps=us(1), num_rails=4, servers_per_leaf=3, leaves_per_rail=3,
                spines_per_rail=2, cores_per_group=2)
    args.update(kw)
    return rail_clos(**args)


def test_every_nic_connects_only_to_its_rail():
    """NIC i of every server has one link, to a leaf of rail i, and that leaf's group; a leaf's
    endpoints are all NICs of its rail; spines of rail r link only to leaves of rail r and cores."""
    f = fab(planes=2, nvlink_rate_bps=Gbps(900))
    lay = RailLayout.of(f)
    for s in range(lay.num_servers):
        for r in range(lay.R):
            # one NIC node, one port per plane (in plane order), each to its plane's leaf
            nic = lay.nic(s, r)
            assert f.ports(nic) == [lay.nic_port(s, r, p) for p in range(lay.planes)]
            assert [f.port_peer(q) for q in f.ports(nic)] == [lay.leaf(r, lay.leaf_group(s), p)
                                                               for p in range(lay.planes)]
    for p in range(lay.planes):
        for r in range(lay.R):
            for l in range(lay.L):
                leaf = lay.leaf(r, l, p)
                hosts = [n for n in f.neighbors(leaf) if f.is_host(n)]
                assert len(hosts) == lay.spl
                assert all(n < lay.num_nics and lay.gpu_of(n).rail == r for n in hosts)
            for k in range(lay.P):
                peers = set(f.neighbors(lay.spine(r, k, p)))
                assert peers == {lay.leaf(r, l, p) for l in range(lay.L)} | {lay.core(k, c, p) for c in range(lay.C)}
    # NVLink endpoints hang off their server's NVSwitch only
    for s in range(lay.num_servers):
        for r in range(lay.R):
            assert f.neighbors(lay.nvl(s, r)) == [lay.nvswitch(s)]


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


def test_attachment_links_carry_no_nic_route_and_planes_stay_apart():
    """The NVSwitch attachment links only make routing total: no switch forwards traffic for a
    NIC towards an NVSwitch. A multi-plane NIC is one host with a port per plane, and the planes
    share nothing (no bridge links): every candidate egress of a plane-p switch towards a NIC
    leads to a plane-p switch or to the NIC itself (through its plane-p port)."""
    f = fab(planes=2, nvlink_rate_bps=Gbps(900))
    lay = RailLayout.of(f)
    rt = routing.compute_routes(f)
    nvsw = {lay.nvswitch(s) for s in range(lay.num_servers)}
    plane_of = {}
    for sw in range(f.num_hosts, f.num_nodes):
        if sw not in nvsw:
            plane_of[sw] = (sw - lay.num_hosts) // lay.switches_per_plane
    # per plane NIC, leaf-spine and spine-core links; NVLink; an NVSwitch attachment per plane
    assert len(f.links) == lay.planes * lay.links_per_plane + lay.num_servers * lay.R + lay.planes * lay.num_servers
    for sw, p in plane_of.items():
        for h in range(lay.num_nics):
            g = lay.gpu_of(h)
            for port in rt.candidates(sw, h):
                peer = f.port_peer(int(port))
                assert peer not in nvsw
                if peer == h:                     # delivered through the NIC's own plane-p port
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
    (link,) = [f.links[q // 2] for q in f.ports(agg)]
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
