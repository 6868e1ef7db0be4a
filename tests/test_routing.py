"""Tests for controlplane.fabric.routing."""

import numpy as np
import pytest

from controlplane.fabric.routing import (Routes, RoutingError, compute_routes, hop_count, path,
                                  path_links)
from controlplane.fabric.topology import Fabric, Link, dumbbell, fat_tree, leaf_spine, single_switch
from controlplane.config.units import Gbps, us

R100 = Gbps(100)
D1 = us(1)


def all_sets(routes: Routes) -> list[np.ndarray]:
    return [routes.set_members(i) for i in range(routes.num_sets)]


def brute_force_candidates(fabric: Fabric, switch: int, dst: int) -> set[int]:
    """First ports of all shortest switch->dst paths that avoid other hosts, by enumerating
    every simple path (depth-first, bounded by the shortest length found so far)."""
    best: dict[str, object] = {"len": fabric.num_nodes, "ports": set()}

    def walk(node, first_port, visited, length):
        if length > best["len"]:
            return
        if node == dst:
            if length < best["len"]:
                best["len"], best["ports"] = length, set()
            best["ports"].add(first_port)
            return
        if fabric.is_host(node):
            return  # never transit a host
        for port in fabric.ports(node):
            nxt = fabric.port_peer(port)
            if nxt not in visited:
                walk(nxt, port if first_port is None else first_port, visited | {nxt}, length + 1)

    walk(switch, None, {switch}, 0)
    return best["ports"]


# ----- table format -------------------------------------------------------------------------

def test_table_shapes_dtypes_and_ownership():
    f = fat_tree(4, R100, D1)
    r = compute_routes(f)
    for arr in (r.fib, r.set_offsets, r.set_ports, r.host_port):
        assert arr.dtype == np.uint32
    assert r.fib.shape == (f.num_switches, f.num_hosts)
    assert r.set_offsets[0] == 0 and r.set_offsets[-1] == len(r.set_ports)
    assert np.all(np.diff(r.set_offsets.astype(np.int64)) >= 1)
    assert r.fib.max() == r.num_sets - 1
    for h in range(f.num_hosts):
        assert f.port_owner(int(r.host_port[h])) == h
    # Every port in the set used at switch s belongs to s; sets are ascending and distinct.
    for s in range(f.num_hosts, f.num_nodes):
        for h in range(f.num_hosts):
            ports = r.candidates(s, h)
            assert all(f.port_owner(int(p)) == s for p in ports)
            assert np.all(np.diff(ports.astype(np.int64)) > 0)
    assert len({tuple(p) for p in all_sets(r)}) == r.num_sets


def test_set_ids_follow_first_appearance_in_fib():
    r = compute_routes(leaf_spine(3, 2, 2, R100, R100, D1, D1))
    _, first = np.unique(r.fib.reshape(-1), return_index=True)
    assert list(np.argsort(first)) == list(range(r.num_sets))


@pytest.mark.parametrize("k", [4, 8, 16])
def test_fat_tree_sets_are_deduplicated(k):
    # Distinct candidate sets in a fat-tree (derived from Al-Fares'08 wiring):
    #   edge: one per attached host (the port facing it) + one "all uplinks" set
    #   agg:  one per edge switch of its pod + one "all core uplinks" set
    #   core: one per pod
    f = fat_tree(k, R100, D1)
    r = compute_routes(f)
    half = k // 2
    expected = (f.num_hosts + k * half) + k * half * (half + 1) + half * half * k
    assert r.num_sets == expected
    # Without deduplication there would be one set per (switch, host) entry: 320 for k=4,
    # 327,680 for k=16 (which has 3,328 distinct sets).
    assert r.num_sets * 4 < f.num_switches * f.num_hosts
    if k == 16:
        assert r.num_sets * 50 < f.num_switches * f.num_hosts


def test_repeated_runs_are_identical():
    f = fat_tree(4, R100, D1)
    a, b = compute_routes(f), compute_routes(f)
    for name in ("fib", "set_offsets", "set_ports", "host_port"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


# ----- candidate sets -----------------------------------------------------------------------

@pytest.mark.parametrize("k", [4, 8])
def test_fat_tree_candidate_counts(k):
    # Fat-tree ECMP (Al-Fares'08, section 3): edge and agg switches spread upward traffic over
    # their k/2 uplinks; downward there is exactly one path.
    f = fat_tree(k, R100, D1)
    r = compute_routes(f)
    half, H = k // 2, f.num_hosts
    edge0, agg0, core0 = H, H + k * half, H + 2 * k * half
    hosts_per_pod = half * half
    own, same_pod, other_pod = 0, half, hosts_per_pod  # hosts seen from edge 0 / agg 0 (pod 0)
    assert len(r.candidates(edge0, own)) == 1
    assert [f.port_peer(int(p)) for p in r.candidates(edge0, own)] == [own]
    assert len(r.candidates(edge0, same_pod)) == half
    assert len(r.candidates(edge0, other_pod)) == half
    assert {f.node_tier[f.port_peer(int(p))] for p in r.candidates(edge0, other_pod)} == {2}
    assert len(r.candidates(agg0, own)) == 1
    assert len(r.candidates(agg0, other_pod)) == half
    assert {f.node_tier[f.port_peer(int(p))] for p in r.candidates(agg0, other_pod)} == {3}
    assert len(r.candidates(core0, own)) == 1


def test_leaf_spine_candidates():
    f = leaf_spine(4, 3, 2, R100, R100, D1, D1)
    r = compute_routes(f)
    leaf0 = f.node_id("leaf0")
    assert len(r.candidates(leaf0, 7)) == 3   # one per spine
    assert len(r.candidates(leaf0, 1)) == 1   # local host
    assert len(r.candidates(f.node_id("spine2"), 7)) == 1


def _check_against_brute_force(f: Fabric) -> None:
    r = compute_routes(f)
    for s in range(f.num_hosts, f.num_nodes):
        for h in range(f.num_hosts):
            assert set(int(p) for p in r.candidates(s, h)) == brute_force_candidates(f, s, h), \
                (f.node_names[s], f.node_names[h])


def test_matches_brute_force_all_shortest_paths_fat_tree_k4():
    _check_against_brute_force(fat_tree(4, R100, D1))


def test_matches_brute_force_on_irregular_fabric():
    # A ring of 5 switches with a chord and a parallel link, hosts on 4 of them: exercises
    # odd cycles, equal-length detours, parallel links and a host-less switch.
    ring = [(5, 6), (6, 7), (7, 8), (8, 9), (9, 5), (5, 7), (6, 7)]
    links = [Link(0, 5, R100, D1, 0), Link(6, 1, R100, D1, 0), Link(2, 8, R100, D1, 0),
             Link(3, 9, R100, D1, 0), Link(4, 9, R100, D1, 0)]
    links += [Link(a, b, R100, D1, 1) for a, b in ring]
    f = Fabric.from_links("ring", 5, 5, links)
    _check_against_brute_force(f)
    r = compute_routes(f)
    assert len(r.candidates(7, 1)) == 2   # sw2 -> sw1 over both parallel links
    assert len(r.candidates(8, 0)) == 2   # sw3 -> sw0 via sw2 or via sw4, both 2 hops
    assert len(r.candidates(8, 1)) == 1   # sw3 -> sw1 only via sw2 (2 hops, vs 3 via sw4)


# ----- paths --------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [4, 8])
def test_fat_tree_path_lengths(k):
    # Al-Fares'08: same edge 2 links, same pod 4 links, different pods 6 links.
    f = fat_tree(k, R100, D1)
    r = compute_routes(f)
    half = k // 2
    per_pod = half * half
    assert hop_count(f, r, 0, 1) == 2
    assert hop_count(f, r, 0, half) == 4
    assert hop_count(f, r, 0, per_pod) == 6
    assert hop_count(f, r, f.num_hosts - 1, 0) == 6


def test_path_is_a_walk_from_src_to_dst_using_lowest_ports():
    f = fat_tree(4, R100, D1)
    r = compute_routes(f)
    ports = path(f, r, 0, 15)
    assert ports[0] == r.host_port[0]
    node = 0
    for p in ports:
        assert f.port_owner(p) == node
        if f.is_switch(node):
            assert p == min(r.candidates(node, 15))
        node = f.port_peer(p)
    assert node == 15
    assert [f.port_name(p) for p in ports] == \
        ["h0->tor0", "tor0->agg0", "agg0->core0", "core0->agg6", "agg6->tor7", "tor7->h15"]


def test_path_links_give_base_delay():
    # One-way propagation along an inter-pod path: 2 x (host + agg + core tier delays).
    f = fat_tree(4, R100, us(1), agg_delay_ps=us(2), core_delay_ps=us(3))
    r = compute_routes(f)
    links = path_links(f, r, 0, 15)
    assert [link.tier for link in links] == [0, 1, 2, 2, 1, 0]
    assert sum(link.delay_ps for link in links) == us(12)


def test_paths_on_small_topologies():
    f = single_switch(4, R100, D1)
    r = compute_routes(f)
    assert hop_count(f, r, 0, 3) == 2 and r.num_sets == 4
    f = dumbbell(2, 2, R100, Gbps(10), D1, us(5))
    r = compute_routes(f)
    assert [link.rate_bps for link in path_links(f, r, 0, 3)] == [R100, Gbps(10), R100]
    assert hop_count(f, r, 0, 1) == 2


def test_path_argument_errors():
    f = single_switch(3, R100, D1)
    r = compute_routes(f)
    with pytest.raises(ValueError, match="src and dst must differ"):
        path(f, r, 1, 1)
    with pytest.raises(ValueError, match=r"dst must be a host id in \[0, 3\), got 3"):
        path(f, r, 0, 3)
    with pytest.raises(ValueError, match="src must be a host id"):
        path(f, r, -1, 0)
    with pytest.raises(ValueError, match="routes.fib has shape"):
        path(single_switch(4, R100, D1), r, 0, 1)


def test_path_detects_routes_that_do_not_fit_the_fabric():
    f = fat_tree(4, R100, D1)
    r = compute_routes(f)
    g = r.addr_group[15]
    r.group_fib[0, g] = r.group_fib[1, g]  # tor0 now uses tor1's set towards host 15: ports owned by tor1
    with pytest.raises(RoutingError, match="belongs to 'tor1'"):
        path(f, r, 0, 15)


# ----- failures and unreachable hosts ---------------------------------------------------------

def test_disconnected_fabric_names_switch_and_host():
    # Two islands: h0 - sw0 and h1 - sw1.
    f = Fabric.from_links("islands", 2, 2, [Link(0, 2, R100, D1, 0), Link(1, 3, R100, D1, 0)])
    with pytest.raises(RoutingError, match=r"no route from switch 'sw0' \(node 2\) to host "
                                           r"'h1' \(node 1\)"):
        compute_routes(f)


def test_isolated_switch_is_reported():
    links = [Link(0, 2, R100, D1, 0), Link(1, 2, R100, D1, 0)]
    f = Fabric.from_links("spare", 2, 2, links, node_names=["a", "b", "tor", "spare"])
    with pytest.raises(RoutingError, match=r"switch 'spare' \(node 3\) to host 'a' \(node 0\)"):
        compute_routes(f)


def test_routing_error_is_a_value_error():
    assert issubclass(RoutingError, ValueError)


def test_down_links_keep_port_ids_and_shrink_sets():
    f = fat_tree(4, R100, D1)
    edge_agg = next(i for i, link in enumerate(f.links)
                    if link.a == f.node_id("tor0") and link.b == f.node_id("agg0"))
    r = compute_routes(f, down_links=[edge_agg])
    ups = r.candidates(f.node_id("tor0"), 15)
    assert len(ups) == 1 and f.port_peer(int(ups[0])) == f.node_id("agg1")
    assert hop_count(f, r, 0, 15) == 6
    # agg0 now reaches h0 only via agg0 -> tor1 -> agg1 -> tor0 -> h0: cores lead back to
    # pod 0 only through agg0 itself.
    assert [f.node_names[f.port_peer(int(p))] for p in r.candidates(f.node_id("agg0"), 0)] \
        == ["tor1"]


def test_down_links_errors():
    f = fat_tree(4, R100, D1)
    with pytest.raises(RoutingError, match=r"host 'h3' \(node 3\) has no link up"):
        compute_routes(f, down_links=[3])
    tor0 = f.node_id("tor0")
    cut = [i for i, link in enumerate(f.links) if link.a == tor0 and link.tier == 1]
    with pytest.raises(RoutingError, match=r"no route from switch 'tor0' \(node 16\) to host 'h2'"):
        compute_routes(f, down_links=cut)
    with pytest.raises(ValueError, match="down_links entries must be link indices"):
        compute_routes(f, down_links=[len(f.links)])


def test_k16_fat_tree_routes():
    # Size check only (timing is measured outside the tests): 1024 hosts, 320 switches.
    f = fat_tree(16, R100, D1)
    r = compute_routes(f)
    assert r.fib.shape == (320, 1024)
    assert hop_count(f, r, 0, 1023) == 6


def test_routing_tables_too_large_for_the_memory_limit_are_refused_by_name(monkeypatch):
    """The transit-set table is one byte per (switch, ToR column, switch port), doubled for the
    copy numpy makes while packing it: a leaf-spine of 64 leaves, 2 spines and 16 hosts per leaf
    needs 66 x 64 x 18 x 2 B ~ 152 KB of it. With the memory limit set below that, routing is
    refused with the memory message before numpy allocates (the campaign of issue #12 found
    `softdpu run alltoall_rails --set leaves_per_rail=1e3` dying with a 60 GiB numpy MemoryError)."""
    fab = leaf_spine(num_leaves=64, num_spines=2, hosts_per_leaf=16, host_rate_bps=Gbps(100),
                     fabric_rate_bps=Gbps(100), host_delay_ps=us(1), fabric_delay_ps=us(1))
    monkeypatch.setenv("SOFTDPU_MAX_MEMORY_GIB", str(100_000 / 2**30))      # 100 KB
    with pytest.raises(ValueError, match=r"the fabric's routing tables: this scenario needs about .* GiB "
                                         r"\(limit .* GiB; raise it with SOFTDPU_MAX_MEMORY_GIB=\.\.\.\)"):
        compute_routes(fab)
    monkeypatch.setenv("SOFTDPU_MAX_MEMORY_GIB", "1")
    compute_routes(fab)                                                       # and fits in 1 GiB
