"""The data plane's node table (native/sim.c sd_set_nodes / sd_node_kind / sd_node_ports): every
node has a kind and a port list, and the data plane decides host versus switch by kind."""
import pytest

from controlplane.config.units import Gbps, us
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


# ---------------------------------------------------------------- multi-port hosts
# h0 is a dual-homed host (a DPU with two uplinks): port 0 to torA (s3), port 10 to torB (s4);
# h1 under torA, h2 under torB, both ToRs under one spine (s5).
#   link 0 h0-s3, 1 h1-s3, 2 h2-s4, 3 s3-s5, 4 s4-s5, 5 h0-s4
def _dual_homed():
    from controlplane.fabric.topology import Fabric, Link
    links = [Link(0, 3, Gbps(100), us(1), 0), Link(1, 3, Gbps(100), us(1), 0), Link(2, 4, Gbps(100), us(1), 0),
             Link(3, 5, Gbps(100), us(1), 1), Link(4, 5, Gbps(100), us(1), 1), Link(0, 4, Gbps(100), us(1), 0)]
    return Fabric.from_links("dual_homed", 3, 3, links)


def _dual_sim(fab, **kw):
    from controlplane.fabric import routing
    routes = routing.compute_routes(fab)
    sim = Simulator(num_hosts=3, num_switches=3, max_links=len(fab.links), pkt_pool=4096, **kw)
    sim.set_nodes(fab.node_kinds)
    sim.add_links([l.a for l in fab.links], [l.b for l in fab.links], [l.rate_bps for l in fab.links],
                  [l.delay_ps for l in fab.links])
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    return sim, routes


def test_routes_reach_a_multi_port_host_through_any_port():
    from controlplane.fabric import routing
    fab = _dual_homed()
    routes = routing.compute_routes(fab)
    # the spine is one hop from both ToRs, each of which faces h0: both down-ports are candidates
    assert list(routes.candidates(5, 0)) == [7, 9]
    assert list(routes.candidates(3, 0)) == [1] and list(routes.candidates(4, 0)) == [11]
    assert routes.host_port[0] == 0                       # the first port (link order)
    # with torA's link to h0 down, h0 is still reachable, only through torB
    down = routing.compute_routes(fab, down_links=[0])
    assert list(down.candidates(5, 0)) == [9] and list(down.candidates(3, 0)) == [6]
    assert down.host_port[0] == 10


def test_sim_node_ports_of_a_multi_port_host():
    sim, _ = _dual_sim(_dual_homed())
    assert sim.node_kind(0) == "host" and sim.node_ports(0) == [0, 10]


def _fct(sim, qp, nbytes):
    sim.post_writes([qp], [nbytes], [0])
    sim.run_until(10**12)
    m = sim.msgs[-1]
    assert m["finish_ps"] > 0
    return int(m["finish_ps"])


def test_qp_bound_to_a_nic_leaves_by_that_port():
    """h0 -> h2: bound to port 10 (torB) the data crosses h0-s4-h2 (2 links); bound to port 0
    (torA), h0-s3-s5-s4-h2 (4 links). Each data packet leaves by the bound port and no other."""
    fab = _dual_homed()
    for port, links in ((10, [5, 2]), (0, [0, 3, 4, 2])):
        sim, _ = _dual_sim(fab)
        qp = sim.create_qp_pair(0, 2, 49152)
        sim.bind_qp(qp, port)
        assert int(sim.qps[qp]["port"]) == port
        assert sim.trace_path(0, 2, 49152, src_port=port) == links
        _fct(sim, qp, 1_000_000)
        other = 0 if port == 10 else 10
        data_pkts = -(-1_000_000 // sim.mtu_payload)
        assert int(sim.ports[port]["tx_packets"]) == data_pkts       # all data, by the bound port
        assert int(sim.ports[other]["tx_packets"]) == 0
        # h2's ACKs come back the shortest way to h0 (through torB, h0's port 10's link)
        assert int(sim.ports[11]["tx_packets"]) > 0 and int(sim.ports[1]["tx_packets"]) == 0


def test_nics_of_one_host_send_in_parallel():
    """Two 4 MB flows from h0, to h1 (port 0) and to h2 (port 10): each NIC has its own
    transmit scheduler and line, so both finish in the time one flow alone takes (to within
    the two extra links' propagation, 2 us); on one port they share it and take twice as long."""
    fab = _dual_homed()
    size = 4_000_000

    def run_two(port_b):
        sim, _ = _dual_sim(fab)
        a = sim.create_qp_pair(0, 1, 49152)
        b = sim.create_qp_pair(0, 2, 49153)
        sim.bind_qp(a, 0)
        sim.bind_qp(b, port_b)
        sim.post_writes([a, b], [size, size], [0, 0])
        sim.run_until(10**12)
        return max(int(m["finish_ps"]) for m in sim.msgs)

    sim, _ = _dual_sim(fab)
    alone = _fct(sim, sim.create_qp_pair(0, 1, 49152), size)
    parallel, shared = run_two(10), run_two(0)
    assert abs(parallel - alone) <= us(2) + us(1) // 10, (parallel, alone)
    assert shared == pytest.approx(2 * alone, rel=0.02), (shared, alone)


def test_bind_qp_rejects_ports_of_other_nodes_and_busy_rate_changes():
    from controlplane.fabric.topology import Fabric, Link
    sim, _ = _dual_sim(_dual_homed())
    qp = sim.create_qp_pair(0, 2, 49152)
    with pytest.raises(ValueError, match=r"port 2 is not a port of qp 0's host 0"):
        sim.bind_qp(qp, 2)                                   # h1's port
    with pytest.raises(ValueError, match=r"port 1 is not a port of qp 0's host 0"):
        sim.bind_qp(qp, 1)                                   # torA's port facing h0
    with pytest.raises(ValueError, match=r"qp 99 does not exist"):
        sim.bind_qp(99, 0)
    with pytest.raises(ValueError, match=r"port must be a non-negative integer"):
        sim.bind_qp(qp, -1)
    # a second uplink of another rate: a QP with posted messages may not move to it
    links = list(_dual_homed().links)
    links[5] = Link(0, 4, Gbps(25), us(1), 0)
    fab = Fabric.from_links("dual_homed_25g", 3, 3, links)
    sim, _ = _dual_sim(fab)
    qp = sim.create_qp_pair(0, 2, 49152)
    sim.bind_qp(qp, 10)                                      # before posting: the QP takes 25 Gb/s
    assert float(sim.qps[qp]["rate_bps"]) == Gbps(25)                 # its pacing rate starts at the line rate
    sim.post_writes([qp], [100_000], [0])
    with pytest.raises(Exception, match=r"rebind a busy QP only between ports of one rate"):
        sim.bind_qp(qp, 0)


# ---------------------------------------------------------------- dual-homed hosts in scenarios
def _dual_leaf_spine():
    # 2 leaves (one pair), 1 spine, 2 hosts per leaf: h0, h1 on leaf0 (+ leaf1), h2, h3 on leaf1 (+ leaf0)
    return {"topology": "leaf_spine", "num_leaves": 2, "num_spines": 1, "hosts_per_leaf": 2,
            "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(100), "host_delay_ps": us(1),
            "fabric_delay_ps": us(1), "host_uplinks": 2}


def test_dual_homed_leaf_spine_shape():
    from controlplane.fabric.topology import build
    fab = build(**_dual_leaf_spine())
    # links 0..3 first uplinks, 4..5 leaf-spine, 6..9 second uplinks (to the pair's other leaf)
    assert [fab.ports(h) for h in range(4)] == [[0, 12], [2, 14], [4, 16], [6, 18]]
    assert [fab.port_peer(p) for p in (0, 12, 4, 16)] == [4, 5, 5, 4]
    with pytest.raises(ValueError, match="num_leaves must be even"):
        build(**{**_dual_leaf_spine(), "num_leaves": 3})
    with pytest.raises(ValueError, match="host_uplinks"):
        build(**{**_dual_leaf_spine(), "host_uplinks": 3})


def test_dual_homed_host_runs_active_active():
    """Two 4 MB flows h0 -> h2 and h0 -> h3: h0 binds its QPs to its two ports in turn, so both
    run at line rate at once (each on its own NIC and leaf): both finish within the time of one
    flow alone + 2 us, where single-homed they share h0's one link and take twice as long."""
    size = 4_000_000
    flows = [{"src": 0, "dst": 2, "size_bytes": size}, {"src": 0, "dst": 3, "size_bytes": size}]
    dual = run(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows}, cc="none",
               sample_interval_ps=0)
    alone = run(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows[:1]}, cc="none",
                sample_interval_ps=0)
    single = run(topology={**_dual_leaf_spine(), "host_uplinks": 1}, workload={"kind": "flows", "flows": flows},
                 cc="none", sample_interval_ps=0)
    sim = dual.network.sim
    qa, qb = (int(q) for q in dual.network.sender_qps)
    assert (int(sim.qps[qa]["port"]), int(sim.qps[qb]["port"])) == (0, 12)
    fin = lambda r: max(int(m["finish_ps"]) for m in r.network.sim.msgs)   # noqa: E731
    assert fin(dual) - fin(alone) <= us(2), (fin(dual), fin(alone))
    assert fin(single) == pytest.approx(2 * fin(alone), rel=0.03)


def test_dual_homed_host_fails_over_to_its_other_uplink():
    """h0's first uplink (link 0, to leaf0) fails at 50 us while both of its QPs send: the QP
    bound to it moves to h0's other port (12) when the failure is detected (detect_ps after)
    and completes; the other QP is untouched. Without the uplink failover the first QP stays on
    the dead port and never completes (the test's second half)."""
    from controlplane.fabric import failures
    size = 4_000_000
    flows = [{"src": 0, "dst": 2, "size_bytes": size}, {"src": 0, "dst": 3, "size_bytes": size}]
    fail = [{"link": 0, "down_ps": us(50)}]
    r = run(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows}, cc="none",
            sample_interval_ps=0, failures=fail)
    c = r.network.sim.counters()
    assert c["msgs_completed"] == 2, c
    qa, qb = (int(q) for q in r.network.sender_qps)
    assert int(r.network.sim.qps[qa]["port"]) == 12 and int(r.network.sim.qps[qb]["port"]) == 12
    moves = [e for e in r.network.failures.log if e["action"] == "uplink_failover"]
    assert {(e["qp"], e["from_port"], e["to_port"]) for e in moves} == {(qa, 0, 12)}
    # at detection: failure_params.detect_ps (default 100 us) after the failure
    assert all(e["t_ps"] == us(50) + us(100) for e in moves)
    orig = failures.FailurePlan.uplink_failover
    try:
        failures.FailurePlan.uplink_failover = lambda self, qp: None
        stuck = run(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows}, cc="none",
                    sample_interval_ps=0, failures=fail, duration_ps=us(5000))
    finally:
        failures.FailurePlan.uplink_failover = orig
    assert stuck.network.sim.counters()["msgs_completed"] == 1


def test_dual_homed_dpu_tunnels_leave_by_each_qps_uplink():
    """With a DPU vSwitch (tenants: VXLAN tunnels), the encapsulated packets of each QP still
    leave by the port the QP is bound to: h0's two QPs (ports 0 and 12) each put at least their
    1 MB of data packets (ceil(1e6 / 4096) = 245) on their own uplink."""
    flows = [{"src": 0, "dst": 2, "size_bytes": 1_000_000}, {"src": 0, "dst": 3, "size_bytes": 1_000_000}]
    r = run(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows}, cc="dcqcn",
            dpu={"tenants": 2}, sample_interval_ps=0)
    c, sim = r.counters, r.network.sim
    assert c["msgs_completed"] == 2 and c["vs_encaps"] > 0
    assert [int(sim.qps[int(q)]["port"]) for q in r.network.sender_qps] == [0, 12]
    assert all(int(sim.ports[p]["tx_packets"]) >= 245 for p in (0, 12))


def test_capture_and_devices_see_every_port_of_a_multi_port_host(tmp_path):
    """Capturing at a dual-homed host records the packets of both its NICs (tx: h0's data on
    ports 0 and 12, one record per data packet sent, 2 x 245 for two 1 MB flows); the Dpu device
    lists both ports."""
    from controlplane.results.capture import CaptureSpec
    from controlplane.run.scenario import Scenario
    from dataplane.pcap import read_pcap
    flows = [{"src": 0, "dst": 2, "size_bytes": 1_000_000}, {"src": 0, "dst": 3, "size_bytes": 1_000_000}]
    path = tmp_path / "h0.pcap"
    r = Scenario(topology=_dual_leaf_spine(), workload={"kind": "flows", "flows": flows}, cc="none",
                 sample_interval_ps=0).run(capture=CaptureSpec(str(path), points=["h0"], direction="tx"))
    sim = r.network.sim
    sent = int(sim.ports[0]["tx_packets"]) + int(sim.ports[12]["tx_packets"])
    assert len(read_pcap(path).records) == sent == 2 * 245
    assert [p.id for p in r.network.dpus[0].ports] == [0, 12]
