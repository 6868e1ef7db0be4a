"""The grouped FIB (issue #15): routes held as a column per group of addresses attached to the same
switches (a ToR's hosts) plus each address's own entry at the switches it hangs off, instead of a
column per address. The data plane must route exactly as with the flat table (one entry per switch
and address): every (switch, address) lookup is compared with the flat table the routing computes,
and with the flat table installed through the old entry point."""

import os

import numpy as np
import pytest

from controlplane.ai.rails import rail_clos
from controlplane.config.units import Gbps, us
from controlplane.fabric.routing import FIB_LOCAL, NO_ROUTE, compute_routes
from controlplane.fabric.topology import Fabric, Link, dumbbell, fat_tree, leaf_spine
from controlplane.run.bench_history import proc_kib
from dataplane.sim import Simulator

R100, D1 = Gbps(100), us(1)


def _sim(fab: Fabric, pkt_pool: int = 64) -> Simulator:
    s = Simulator(num_hosts=fab.num_hosts, num_switches=fab.num_switches, max_links=len(fab.links),
                  pkt_pool=pkt_pool)
    s.add_links([l.a for l in fab.links], [l.b for l in fab.links], [l.rate_bps for l in fab.links],
                [l.delay_ps for l in fab.links])
    if fab.addresses_declared:
        s.set_addresses(fab.port_addresses(), fab.num_addresses)
    return s


def _lookups(s: Simulator, fab: Fabric) -> np.ndarray:
    return np.array([[s.fib_lookup(fab.num_hosts + sw, a) for a in range(fab.num_addresses)]
                     for sw in range(fab.num_switches)], dtype=np.uint32)


def _multihomed() -> Fabric:
    # h0 dual-homed to sw2 and sw3 (one address, both ports); h1 on sw2 only; sw2 - sw4 - sw3
    links = [Link(0, 2, R100, D1, 0), Link(0, 3, R100, D1, 0), Link(1, 2, R100, D1, 0),
             Link(2, 4, R100, D1, 1), Link(3, 4, R100, D1, 1)]
    return Fabric.from_links("dual_homed", 2, 3, links)


def _two_rails() -> Fabric:
    # two hosts with a NIC on each of two leaves, an address per NIC, a spine joining the leaves
    links = [Link(0, 2, R100, D1, 0), Link(0, 3, R100, D1, 0), Link(1, 2, R100, D1, 0),
             Link(1, 3, R100, D1, 0), Link(2, 4, R100, D1, 1), Link(3, 4, R100, D1, 1)]
    return Fabric.from_links("two_rails", 2, 3, links, addresses=[[0], [2], [4], [6]])


FABRICS = {
    "fat_tree_4": lambda: fat_tree(4, R100, D1),
    "fat_tree_8": lambda: fat_tree(8, R100, D1),
    "leaf_spine": lambda: leaf_spine(3, 2, 4, R100, R100, D1, D1),
    "dumbbell": lambda: dumbbell(3, 2, R100, R100, D1, D1),
    "dual_homed": _multihomed,
    "two_rails": _two_rails,
    "rail_clos_nvlink": lambda: rail_clos(R100, D1, num_rails=4, servers_per_leaf=2, nvlink_rate_bps=Gbps(900),
                                          nvlink_delay_ps=us(0.1)),
}


@pytest.mark.parametrize("name", sorted(FABRICS))
def test_grouped_lookups_equal_the_flat_table(name):
    fab = FABRICS[name]()
    r = compute_routes(fab)
    flat = r.fib
    assert flat.shape == (fab.num_switches, fab.num_addresses)
    grouped = _sim(fab)
    r.install(grouped)
    assert (_lookups(grouped, fab) == flat).all()
    old = _sim(fab)                                   # the flat entry point, one group per address
    old.install_fib(flat, r.set_offsets, r.set_ports)
    assert (_lookups(old, fab) == flat).all()
    # the Python lookup path (candidates, path) reads the grouped form alike
    for sw in range(fab.num_switches):
        assert (r.row(sw) == flat[sw]).all()
        for a in range(fab.num_addresses):
            assert r.set_id(fab.num_hosts + sw, a) == flat[sw, a]


def test_grouped_routes_after_link_failures_equal_the_flat_table():
    fab = fat_tree(4, R100, D1)
    inner = [i for i, l in enumerate(fab.links) if not (fab.is_host(l.a) or fab.is_host(l.b))]
    r = compute_routes(fab, down_links=inner[::5])
    s = _sim(fab)
    r.install(s)
    assert (_lookups(s, fab) == r.fib).all()
    assert (r.fib != compute_routes(fab).fib).any()
    dual = _multihomed()                               # h0 loses one of its two uplinks
    r = compute_routes(dual, down_links=[1])
    s = _sim(dual)
    r.install(s)
    assert (_lookups(s, dual) == r.fib).all() and len(r.local_set) == 2


def test_fat_tree_groups_are_its_tors():
    """A k-ary fat-tree has k^2/2 ToRs, k/2 hosts each: a column per ToR and one local entry per
    host (at its ToR, the port facing it); the table is 1/(k/2) of the flat one."""
    k = 8
    fab = fat_tree(k, R100, D1)
    r = compute_routes(fab)
    assert r.group_fib.shape == (5 * k * k // 4, k * k // 2)
    assert len(r.local_set) == fab.num_hosts and (np.diff(r.local_offsets.astype(np.int64)) == 1).all()
    assert ((r.group_fib == FIB_LOCAL).sum(axis=0) == 1).all()      # each group is local at its ToR only
    assert not (r.group_fib == NO_ROUTE).any()
    s = _sim(fab)
    r.install(s)
    S, H, G = fab.num_switches, fab.num_hosts, k * k // 2
    core = s.memory()["core"]
    s.install_fib(r.fib, r.set_offsets, r.set_ports)
    # the flat table costs S x (H - G) x 4 bytes more; the grouped form adds its local table
    assert s.memory()["core"] - core == S * (H - G) * 4 - 2 * H * 4    # the local table (switch, set) per host


def test_the_flat_table_of_routes_is_read_only():
    """Routes.fib is built from the grouped form; writing to it would change nothing installed."""
    r = compute_routes(fat_tree(4, R100, D1))
    with pytest.raises(ValueError, match="read-only"):
        r.fib[0, 0] = 1


def _install(s, r, **changes):
    t = dict(group_fib=r.group_fib.copy(), addr_group=r.addr_group.copy(), local_offsets=r.local_offsets.copy(),
             local_switch=r.local_switch.copy(), local_set=r.local_set.copy(), set_offsets=r.set_offsets,
             set_ports=r.set_ports)
    for k, f in changes.items():
        t[k] = f(t[k])
    s.install_routes(**t)


def _set(a, i, v):
    a[i] = v
    return a


@pytest.mark.parametrize("change,match", [
    (dict(addr_group=lambda g: _set(g, 3, 99)), r"routes: address 3 is in group 99 of 8"),
    (dict(addr_group=lambda g: _set(g, 2, g[0])), r"routes: address 2 has a local entry at switch index 1, "
                                                   r"where its group's entry is not SD_FIB_LOCAL"),
    (dict(addr_group=lambda g: _set(g, [2, 3], g[0])), r"routes: group 1 has no address"),
    (dict(local_switch=lambda l: _set(l, 0, 1)), r"routes: address 0 has a local entry at switch index 1, "
                                                 r"where its group's entry is not SD_FIB_LOCAL"),
    (dict(local_set=lambda l: _set(l, 0, FIB_LOCAL)), r"address 0: a local entry cannot be SD_FIB_LOCAL"),
    (dict(local_set=lambda l: _set(l, 0, 10**6)), r"fib: switch node 16: ECMP set 1000000 for|"
                                                   r"fib: no route from switch node 16 to host 0"),
    (dict(group_fib=lambda g: _set(g, (0, 0), 2)), r"routes: address 0 has 1 local entries, its group 0 has 0"),
    (dict(group_fib=lambda g: _set(g, (1, 0), FIB_LOCAL)), r"routes: address 0 has 1 local entries, its group 0 has 2"),
    (dict(group_fib=lambda g: _set(g, (4, 0), NO_ROUTE)), r"fib: no route from switch node 20 to host 0"),
    (dict(local_offsets=lambda o: _set(o, 16, 15)), r"local_offsets must start at 0 and end at num_local"),
])
def test_bad_grouped_routes_are_refused_by_name(change, match):
    fab = fat_tree(4, R100, D1)
    r = compute_routes(fab)
    s = _sim(fab)
    with pytest.raises(ValueError, match=match):
        _install(s, r, **change)
    with pytest.raises(ValueError, match="no fib installed"):
        s.fib_lookup(fab.num_hosts, 0)                 # nothing was installed
    r.install(s)
    assert (_lookups(s, fab) == r.fib).all()


def test_a_local_entry_twice_at_one_switch_is_refused():
    fab = _multihomed()
    r = compute_routes(fab)
    lo = int(r.local_offsets[0])
    assert r.local_offsets[1] - lo == 2               # h0 hangs off sw2 and sw3
    s = _sim(fab)
    with pytest.raises(ValueError, match="address 0 has two local entries at switch node 2"):
        _install(s, r, local_switch=lambda l: _set(l, lo + 1, l[lo]))


@pytest.mark.rss                # not in the sanitizer run: ASan's shadow memory and redzones are resident too
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_the_packet_pool_is_resident_only_as_far_as_it_is_used():
    """The pool is sized for the worst case (65,536 + 256 packets per flow: 132 MiB at 8,192
    hosts); a run uses part of it. Its pages become resident as packets are first handed out, not
    at creation (before: the whole pool was written to build the free list)."""
    fab = dumbbell(1, 1, R100, R100, D1, D1)
    before = proc_kib("/proc/self/status", "VmRSS")
    s = _sim(fab, pkt_pool=1 << 20)                    # 64 MiB of packets
    grew = proc_kib("/proc/self/status", "VmRSS") - before
    assert s.memory()["packets"] == (1 << 20) * 64
    assert grew < 16 << 20, f"creating the simulator made {grew >> 20} MiB resident"
