"""The data plane's node table (native/sim.c sd_set_nodes / sd_node_kind / sd_node_ports): every
node has a kind and a port list, and the data plane decides host versus switch by kind."""
import pytest

from controlplane.units import Gbps, us
from dataplane.sim import Simulator
from tests.support import run


def _star_sim(n_hosts: int = 3) -> Simulator:
    s = Simulator(num_hosts=n_hosts, num_switches=1, max_links=n_hosts)
    s.add_links(list(range(n_hosts)), [n_hosts] * n_hosts, [Gbps(100)] * n_hosts, [us(1)] * n_hosts)
    return s


def test_default_table_hosts_first_then_switches():
    s = _star_sim(3)
    assert [s.node_kind(n) for n in range(4)] == ["host", "host", "host", "switch"]
    # link i owns ports 2i (its node a, the host) and 2i+1 (node b, the switch)
    assert [s.node_ports(h) for h in range(3)] == [[0], [2], [4]]
    assert s.node_ports(3) == [1, 3, 5]


def test_node_ports_follow_link_order_across_calls():
    s = Simulator(num_hosts=2, num_switches=2, max_links=4)
    s.add_links([0, 1], [2, 3], [Gbps(100)] * 2, [us(1)] * 2)
    s.add_links([2], [3], [Gbps(100)], [us(1)])          # a second call regroups the ports
    assert s.node_ports(2) == [1, 4] and s.node_ports(3) == [3, 5]


def test_table_from_fabric_matches_the_fabric():
    topo = {"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)}
    r = run(topology=topo, workload={"kind": "permutation", "size_bytes": 10_000}, cc="none", sample_interval_ps=0)
    sim, fab = r.network.sim, r.network.fabric
    assert [sim.node_kind(n) for n in range(fab.num_nodes)] == fab.node_kinds
    for n in (0, fab.num_hosts, fab.num_nodes - 1):
        assert sim.node_ports(n) == fab.ports(n)


@pytest.mark.parametrize("kinds,match", [
    (["host", "host", "host"], r"3 kinds given for 4 nodes \(3 hosts \+ 1 switches\)"),
    (["host", "switch", "host", "switch"], r"node 1 is a switch, but nodes 0\.\.2 are the hosts"),
    (["host", "host", "host", "host"], r"node 3 is a host, .* \(it must be a switch\)"),
    (["host", "host", "host", "router"], r"node 3: kind must be one of host, switch, got 'router'"),
    ([0, 0, 0, 7], r"node 3: kind must be one of host, switch, got 7"),
    ([0, 0, 0, True], r"node 3: kind must be one of"),
    ("hhhs", r"node kinds must be a list"),
])
def test_bad_node_table_is_a_clear_error(kinds, match):
    s = _star_sim(3)
    with pytest.raises(ValueError, match=match):
        s.set_nodes(kinds)
    assert s.node_kind(3) == "switch"                   # a rejected table changes nothing


def test_node_queries_reject_unknown_nodes():
    s = _star_sim(2)
    with pytest.raises(ValueError, match="node 9 does not exist"):
        s.node_kind(9)
    with pytest.raises(ValueError, match="node 9 does not exist"):
        s.node_ports(9)
    with pytest.raises(ValueError, match="node must be a node id"):
        s.node_ports(-1)


def test_switch_only_calls_refuse_hosts_by_kind():
    """PFC, adaptive routing and switch headroom look the node's kind up (not its number)."""
    s = _star_sim(2)
    s.install_fib([0, 1], [0, 1, 2], [1, 3])
    with pytest.raises(ValueError, match="node 0 is not a switch"):
        s.set_pfc(0, 1_000_000)
    with pytest.raises(ValueError, match="port 0 belongs to a host"):
        s.set_pfc_headroom(0, 1000)
