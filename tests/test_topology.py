"""Tests for controlplane.config.units and controlplane.fabric.topology."""

import json
from collections import Counter

import pytest

from controlplane.fabric.topology import (Fabric, Link, build, dumbbell, fat_tree, leaf_spine,
                                   single_switch)
from controlplane.config.units import KB, MB, Gbps, KiB, Mbps, MiB, ms, ns, us

R100 = 100_000_000_000  # 100 Gb/s in bits/s
D1 = 1_000_000          # 1 us in ps


# ----- units ------------------------------------------------------------------------------

def test_units_convert_to_integers():
    # Expected values: SI prefixes (10**3 steps) and IEC binary prefixes (2**10 steps).
    assert Gbps(100) == 100 * 10**9
    assert Gbps(2.5) == 2_500_000_000
    assert Mbps(10) == 10**7
    assert ns(1) == 1_000 and ns(1.5) == 1_500
    assert us(1) == 10**6
    assert ms(2) == 2 * 10**9
    assert KB(4) == 4_000 and KiB(4) == 4_096
    assert MB(1) == 10**6 and MiB(1) == 2**20
    assert all(type(f(1.5)) is int for f in (Gbps, Mbps, ns, us, ms, KB, KiB, MB, MiB))


@pytest.mark.parametrize("bad", ["1", None, True])
def test_units_reject_non_numbers(bad):
    with pytest.raises(TypeError, match="us"):
        us(bad)


# ----- fat-tree -----------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 4, 8])
def test_fat_tree_counts(k):
    # Al-Fares et al., "A Scalable, Commodity Data Center Network Architecture", SIGCOMM'08:
    # k pods of k/2 edge + k/2 aggregation switches, (k/2)^2 cores, k^3/4 hosts, so
    # 5k^2/4 switches; host, edge-agg and agg-core layers each have k^3/4 links.
    f = fat_tree(k, R100, D1)
    assert f.num_hosts == k**3 // 4
    assert f.num_switches == 5 * k**2 // 4
    assert len(f.links) == 3 * k**3 // 4
    assert Counter(link.tier for link in f.links) == {0: k**3 // 4, 1: k**3 // 4, 2: k**3 // 4}
    assert Counter(f.node_tier) == {0: k**3 // 4, 1: k**2 // 2, 2: k**2 // 2, 3: k**2 // 4}
    # Every switch is a k-port switch (same paper); every host has one port.
    for node in range(f.num_nodes):
        assert len(f.ports(node)) == (1 if f.is_host(node) else k)


def test_fat_tree_k4_numbering_and_wiring():
    k, half = 4, 2
    f = fat_tree(k, R100, D1)
    assert f.name == "fat_tree(k=4)"
    assert f.node_names[:3] == ["h0", "h1", "h2"]
    assert f.node_names[16] == "tor0" and f.node_names[24] == "agg0" and f.node_names[32] == "core0"
    assert f.node_names[-1] == "core3"
    # Host h hangs off edge h // (k/2) (spec of the builder).
    for h in range(f.num_hosts):
        assert f.neighbors(h) == [16 + h // half]
    # Core j connects to aggregation switch j // (k/2) of every pod: one link per pod.
    for j in range(half * half):
        core = 32 + j
        aggs = sorted(f.neighbors(core))
        assert aggs == [24 + pod * half + j // half for pod in range(k)]
    # Edge switch: its k/2 hosts and the k/2 aggs of its own pod.
    assert sorted(f.neighbors(16 + 3)) == [6, 7, 24 + 2, 24 + 3]


def test_fat_tree_per_tier_rates_and_defaults():
    f = fat_tree(4, Gbps(100), us(1), agg_rate_bps=Gbps(200), core_rate_bps=Gbps(400),
                 agg_delay_ps=us(2), core_delay_ps=us(3))
    by_tier = {link.tier: (link.rate_bps, link.delay_ps) for link in f.links}
    assert by_tier == {0: (Gbps(100), us(1)), 1: (Gbps(200), us(2)), 2: (Gbps(400), us(3))}
    g = fat_tree(4, Gbps(100), us(1))  # per-tier values default to the host tier's
    assert {(link.rate_bps, link.delay_ps) for link in g.links} == {(Gbps(100), us(1))}
    assert g.params["agg_rate_bps"] == Gbps(100) and g.params["core_delay_ps"] == us(1)


# ----- other builders -------------------------------------------------------------------------

def test_leaf_spine_counts():
    # hosts_per_leaf host links per leaf plus a full leaf x spine bipartite mesh.
    f = leaf_spine(4, 3, 5, Gbps(100), Gbps(400), us(1), us(2))
    assert (f.num_hosts, f.num_switches) == (20, 7)
    assert len(f.links) == 4 * 5 + 4 * 3
    assert Counter(link.tier for link in f.links) == {0: 20, 1: 12}
    leaves = range(20, 24)
    spines = range(24, 27)
    assert [f.node_names[n] for n in leaves] == ["leaf0", "leaf1", "leaf2", "leaf3"]
    assert all(len(f.ports(n)) == 5 + 3 for n in leaves)
    assert all(sorted(f.neighbors(n)) == list(leaves) for n in spines)
    assert f.neighbors(7) == [20 + 7 // 5]
    assert {link.rate_bps for link in f.links if link.tier == 1} == {Gbps(400)}


def test_dumbbell_structure():
    f = dumbbell(2, 3, Gbps(100), Gbps(40), us(1), us(5))
    assert (f.num_hosts, f.num_switches, len(f.links)) == (5, 2, 6)
    left, right = f.node_id("sw0"), f.node_id("sw1")
    assert sorted(f.neighbors(left)) == [0, 1, right]
    assert sorted(f.neighbors(right)) == [2, 3, 4, left]
    bottleneck = f.links[-1]
    assert (bottleneck.a, bottleneck.b, bottleneck.rate_bps, bottleneck.delay_ps) == \
        (left, right, Gbps(40), us(5))


def test_single_switch_star():
    f = single_switch(8, Gbps(25), ns(500))
    assert (f.num_hosts, f.num_switches, len(f.links)) == (8, 1, 8)
    assert sorted(f.neighbors(8)) == list(range(8))
    assert f.node_names[8] == "sw0" and f.node_tier[8] == 1


# ----- ports, names, serialisation --------------------------------------------------------------

def test_port_convention():
    f = fat_tree(4, R100, D1)
    # Link i: port 2i at links[i].a, port 2i+1 at links[i].b (data plane convention).
    for i, link in enumerate(f.links):
        assert f.port_of(i, link.a) == 2 * i and f.port_of(i, link.b) == 2 * i + 1
        assert f.port_owner(2 * i) == link.a and f.port_peer(2 * i) == link.b
        assert f.port_owner(2 * i + 1) == link.b and f.port_peer(2 * i + 1) == link.a
        assert f.port_link(2 * i + 1) == i
    assert f.port_name(0) == "h0->tor0"
    assert f.port_name(1) == "tor0->h0"
    assert f.num_ports == 2 * len(f.links)
    assert f.ports(16) == sorted(f.ports(16))
    with pytest.raises(ValueError, match="not an end of link 0"):
        f.port_of(0, 5)
    with pytest.raises(ValueError, match="port must be in"):
        f.port_owner(f.num_ports)


def test_parallel_links_get_distinct_port_names():
    links = [Link(0, 2, R100, D1, 0), Link(1, 3, R100, D1, 0),
             Link(2, 3, R100, D1, 1), Link(3, 2, R100, D1, 1)]
    f = Fabric.from_links("two_rails", 2, 2, links)
    assert [f.port_name(p) for p in range(4, 8)] == \
        ["sw0->sw1#0", "sw1->sw0#0", "sw1->sw0#1", "sw0->sw1#1"]


def test_to_dict_is_json_and_round_trips():
    f = leaf_spine(2, 2, 2, Gbps(100), Gbps(100), us(1), us(1))
    d = json.loads(json.dumps(f.to_dict()))
    assert Fabric.from_dict(d) == f


@pytest.mark.parametrize("fabric", [
    single_switch(4, Gbps(100), us(1)),
    dumbbell(1, 2, Gbps(100), Gbps(10), us(1), us(10)),
    leaf_spine(2, 2, 3, Gbps(100), Gbps(400), us(1), us(1)),
    fat_tree(4, Gbps(100), us(1), core_rate_bps=Gbps(400)),
])
def test_build_from_params_rebuilds(fabric):
    json.dumps(fabric.params)
    assert build(**fabric.params) == fabric


def test_from_links_defaults():
    # h0 - sw0 - sw1 - h1, plus sw2 above sw0 only.
    links = [Link(0, 2, R100, D1, 0), Link(1, 3, R100, D1, 0),
             Link(2, 3, R100, D1, 1), Link(2, 4, R100, D1, 1)]
    f = Fabric.from_links("custom", 2, 3, links)
    assert f.node_names == ["h0", "h1", "sw0", "sw1", "sw2"]
    assert f.node_tier == [0, 0, 1, 1, 2]  # hop distance from the nearest host
    assert f.params == {}


def test_numpy_and_integral_float_values_are_normalised():
    import numpy as np
    f = single_switch(np.int64(2), 100e9, np.int32(5))
    assert type(f.links[0].rate_bps) is int and f.links[0].rate_bps == 10**11
    assert type(f.links[0].delay_ps) is int
    json.dumps(f.to_dict())


# ----- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: single_switch(0, R100, D1), "num_hosts must be > 0, got 0"),
    (lambda: single_switch(2, -5, D1), "rate_bps must be a rate in \\[1e6, 1e14\\] bit/s \\(1 Mb/s to 100 Tb/s\\), got -5"),
    (lambda: single_switch(2, R100, -1), "delay_ps must be a delay in \\[0, 10\\^15\\] ps, got -1"),
    (lambda: single_switch(2, 1.5, D1), "rate_bps must be an integer"),
    (lambda: single_switch(True, R100, D1), "num_hosts must be an integer"),
    (lambda: dumbbell(1, 1, R100, 0, D1, D1), "bottleneck_rate_bps must be a rate in \\[1e6, 1e14\\] bit/s \\(1 Mb/s to 100 Tb/s\\), got 0"),
    (lambda: dumbbell(1, 0, R100, R100, D1, D1), "num_right must be > 0"),
    (lambda: dumbbell(1, 1, R100, R100, D1, -3), "bottleneck_delay_ps must be a delay in \\[0, 10\\^15\\] ps, got -3"),
    (lambda: leaf_spine(2, 0, 2, R100, R100, D1, D1), "num_spines must be > 0"),
    (lambda: leaf_spine(2, 2, 2, -5, R100, D1, D1), "host_rate_bps must be a rate in \\[1e6, 1e14\\] bit/s \\(1 Mb/s to 100 Tb/s\\), got -5"),
    (lambda: leaf_spine(2, 2, 2, R100, R100, D1, -2), "fabric_delay_ps must be a delay in \\[0, 10\\^15\\] ps"),
    (lambda: fat_tree(3, R100, D1), "k must be an even integer >= 2, got 3"),
    (lambda: fat_tree(0, R100, D1), "k must be an even integer >= 2, got 0"),
    (lambda: fat_tree(4, -5, D1), "host_rate_bps must be a rate in \\[1e6, 1e14\\] bit/s \\(1 Mb/s to 100 Tb/s\\), got -5"),
    (lambda: fat_tree(4, R100, D1, core_rate_bps=-1), "core_rate_bps must be a rate in \\[1e6, 1e14\\] bit/s \\(1 Mb/s to 100 Tb/s\\), got -1"),
    (lambda: fat_tree(4, R100, D1, agg_delay_ps=-1), "agg_delay_ps must be a delay in \\[0, 10\\^15\\] ps, got -1"),
])
def test_builders_reject_bad_values_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_build_dispatch_errors():
    with pytest.raises(ValueError, match="unknown topology 'torus'"):
        build("torus", k=4)
    with pytest.raises(ValueError, match="fat_tree.*host_rate_bps"):
        build("fat_tree", k=4, host_delay_ps=D1)  # missing argument
    with pytest.raises(ValueError, match="fat_tree.*hosts"):
        build("fat_tree", k=4, host_rate_bps=R100, host_delay_ps=D1, hosts=3)
    assert build("fat_tree", k=2, host_rate_bps=R100, host_delay_ps=D1).num_hosts == 2


def _star_links(num_hosts):
    return [Link(h, num_hosts, R100, D1, 0) for h in range(num_hosts)]


@pytest.mark.parametrize("num_hosts, num_switches, links, message", [
    # host h1 has no link
    (2, 1, [Link(0, 2, R100, D1, 0)],
     r"host 'h1' \(node 1\) has no link; every host needs at least one link"),
    (2, 1, _star_links(2) + [Link(2, 2, R100, D1, 1)], r"links\[2\] is a self link"),
    (2, 1, _star_links(2) + [Link(2, 7, R100, D1, 1)], r"links\[2\]\.b must be a node id in \[0, 3\), got 7"),
    (2, 1, [Link(0, 1, R100, D1, 0)], r"links\[0\] joins two hosts 'h0' and 'h1'"),
    (2, 1, [Link(0, 2, -5, D1, 0), Link(1, 2, R100, D1, 0)], r"links\[0\]\.rate_bps must be a rate in \[1e6, 1e14\] bit/s \(1 Mb/s to 100 Tb/s\), got -5"),
    (2, 1, [Link(0, 2, R100, D1, 0), Link(1, 2, R100, -1, 0)], r"links\[1\]\.delay_ps must be a delay in \[0, 10\^15\] ps, got -1"),
    (2, 1, [Link(0, 2, R100, D1, -1), Link(1, 2, R100, D1, 0)], r"links\[0\]\.tier must be >= 0"),
    (2, 0, [], "num_switches must be > 0, got 0"),
])
def test_from_links_validation(num_hosts, num_switches, links, message):
    with pytest.raises(ValueError, match=message):
        Fabric.from_links("bad", num_hosts, num_switches, links)


def test_multi_port_host_is_one_node_with_its_ports():
    # host h0 has two links (two NICs, to two switches): one node, ports in link order
    fab = Fabric.from_links("dual", 2, 2, _star_links(2) + [Link(0, 3, R100, D1, 0), Link(2, 3, R100, D1, 1)])
    assert fab.ports(0) == [0, 4] and fab.node_kinds == ["host", "host", "switch", "switch"]


def test_fabric_checks_names_tiers_and_params():
    links = _star_links(2)
    with pytest.raises(ValueError, match="node_names must be unique, 'x' appears"):
        Fabric.from_links("bad", 2, 1, links, node_names=["x", "y", "x"])
    with pytest.raises(ValueError, match="node_names must have num_nodes=3 entries, got 2"):
        Fabric.from_links("bad", 2, 1, links, node_names=["a", "b"])
    with pytest.raises(ValueError, match=r"node_tier\[2\] must be >= 1 for switch 'sw0'"):
        Fabric.from_links("bad", 2, 1, links, node_tier=[0, 0, 0])
    with pytest.raises(ValueError, match="params must be JSON-serialisable"):
        Fabric.from_links("bad", 2, 1, links, params={"x": object()})
    with pytest.raises(ValueError, match="no node named 'nope'"):
        Fabric.from_links("ok", 2, 1, links).node_id("nope")


# ----- a topology kind added by a user (docs/extending.md, 'Topology') ---------------------------

def _ring(num_switches: int, rate_bps: int, delay_ps: int) -> Fabric:
    """A ring of switches with one host each: host h on switch n+h, switch i linked to switch i+1."""
    n = num_switches
    links = [Link(h, n + h, rate_bps, delay_ps, 0) for h in range(n)]
    links += [Link(n + i, n + (i + 1) % n, rate_bps, delay_ps, 1) for i in range(n)]
    return Fabric(name=f"ring({n})", num_hosts=n, num_switches=n,
                  node_names=[f"h{i}" for i in range(n)] + [f"sw{i}" for i in range(n)],
                  node_tier=[0] * n + [1] * n, links=links,
                  params={"topology": "ring", "num_switches": n, "rate_bps": rate_bps, "delay_ps": delay_ps})


def _ring_model():
    from typing import Literal
    from controlplane.config.schema import DELAY, RATE, Int, Strict

    class Ring(Strict):
        topology: Literal["ring"]
        num_switches: Int("switches in the ring", lo=3)
        rate_bps: Int("every link's rate", **RATE)
        delay_ps: Int("every link's one-way delay", **DELAY)
    return Ring


def test_a_registered_topology_kind_is_validated_built_and_run(tmp_path, registries_restored):
    """One builder and one model, one register_topology call: the scenario schema, the build, the run
    and the re-run from config.json all know the new kind."""
    from controlplane.config.schema import json_schema, validate
    from controlplane.fabric.topology import register_topology
    from controlplane.run.scenario import Scenario
    register_topology("ring", _ring, _ring_model())
    assert {"$ref": "#/$defs/Ring"} in json_schema()["properties"]["topology"]["oneOf"]
    sc = Scenario(name="ring", topology={"topology": "ring", "num_switches": 4, "rate_bps": "100G", "delay_ps": "1us"},
                  workload={"kind": "flows", "flows": [{"src": 0, "dst": 2, "size_bytes": "100KB"}]}, cc="dcqcn")
    r = sc.run(tmp_path / "run")
    # expected: a lone flow on an idle fabric finishes in exactly its standalone ideal FCT (the
    # scenario computes it from the path's rates and delays: 2 of the ring's 4 switches away)
    assert r.network.fabric.params["topology"] == "ring"
    assert r.flows["finish_ps"][0] > 0 and r.flows["fct_ps"][0] == r.flows["ideal_fct_ps"][0]
    again = Scenario.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())).run()
    assert list(again.flows["fct_ps"]) == list(r.flows["fct_ps"])
    # its model's bounds are the scenario's, named by the user's path
    with pytest.raises(ValueError, match=r"topology\.num_switches must be >= 3, got 2"):
        validate({"topology": {"topology": "ring", "num_switches": 2, "rate_bps": 10**11, "delay_ps": 10**6}})
    with pytest.raises(ValueError, match=r"unknown topology; known: dumbbell, fat_tree, leaf_spine, rail_clos, "
                                         r"ring, single_switch, got 'rnig' \(closest: ring\)"):
        validate({"topology": {"topology": "rnig"}})


def test_register_topology_refuses_what_it_cannot_use(registries_restored):
    from controlplane.fabric.topology import register_topology
    Ring = _ring_model()
    with pytest.raises(ValueError, match="must be an identifier"):
        register_topology("my ring", _ring, Ring)
    with pytest.raises(ValueError, match=r"Ring must declare topology: Literal\['loop'\]"):
        register_topology("loop", _ring, Ring)
    with pytest.raises(ValueError, match="must be a subclass of controlplane.config.schema.Strict"):
        register_topology("ring", _ring, dict)
    with pytest.raises(ValueError, match="the builder must be a function or 'module:function'"):
        register_topology("ring", "no_colon", Ring)
    register_topology("ring", _ring, Ring)
    register_topology("ring", _ring, Ring)                   # the same registration again: nothing to do
    with pytest.raises(ValueError, match="topology 'fat_tree' is already registered"):
        register_topology("fat_tree", _ring, _ring_model())


def test_the_built_in_kinds_are_registered_the_same_way():
    from controlplane.config.models import ScenarioModel
    from controlplane.fabric import topology
    assert sorted(topology.MODELS) == sorted(topology.BUILDERS) == ["dumbbell", "fat_tree", "leaf_spine", "rail_clos",
                                                                      "single_switch"]
    with pytest.raises(Exception, match="unknown topology; known: dumbbell, fat_tree, leaf_spine, rail_clos, "
                                        "single_switch"):
        ScenarioModel.model_validate({"topology": {"topology": "ring"}})


def test_the_scenario_schema_loads_first_or_second():
    """Importing the scenario schema before the topology module (a fresh process, as the CLI's
    `softdpu schema` does) registers the built-in kinds while models.py is still loading: the schema
    must still take every kind, and a kind registered afterwards too."""
    import subprocess
    import sys
    code = ("import controlplane.config.models as m\n"
            "from controlplane.fabric import topology as t\n"
            "m.ScenarioModel.model_validate({'topology': {'topology': 'dumbbell', 'num_left': 1, 'num_right': 1,"
            " 'host_rate_bps': 10**11, 'bottleneck_rate_bps': 10**11, 'host_delay_ps': 1, 'bottleneck_delay_ps': 1}})\n"
            "print(sorted(t.MODELS))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['dumbbell',", "'fat_tree',", "'leaf_spine',", "'rail_clos',", "'single_switch']"]
