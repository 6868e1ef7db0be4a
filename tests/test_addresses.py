"""Addresses (native/sim.c sd_set_addresses): a packet's destination and a FIB column name a
group of ports of one host, not the host. A two-NIC host with one address per NIC receives on
the NIC its peer QP addressed, even when another NIC of it is nearer (docs/architecture.md, 'The
node model')."""
import pytest

from controlplane.config.units import Gbps, us
from dataplane.sim import Simulator

NONE = 0xFFFFFFFF

# Two two-NIC hosts A (node 0) and B (node 1), NIC r of each on leaf r (a "rail"), both leaves
# under one spine. Nodes: 0 A, 1 B, 2 leaf0, 3 leaf1, 4 spine.
#   link 0 A-leaf0 (ports 0, 1), 1 A-leaf1 (2, 3), 2 B-leaf0 (4, 5), 3 B-leaf1 (6, 7),
#   4 leaf0-spine (8, 9), 5 leaf1-spine (10, 11)
# Addresses: A.nic0 = 0 (port 0), A.nic1 = 1 (port 2), B.nic0 = 2 (port 4), B.nic1 = 3 (port 6).
PORT_ADDR = [0, None, 1, None, 2, None, 3, None, None, None, None, None]
# Hand-made routes, one egress per (switch, address): sets are single ports, set i = SETS[i]
SETS = [1, 8, 5, 10, 3, 7, 9, 11]
FIB = [[0, 1, 2, 1],        # leaf0: A.nic0 down (1), A.nic1 up (8), B.nic0 down (5), B.nic1 up (8)
       [3, 4, 3, 5],        # leaf1: up (10), A.nic1 down (3), up (10), B.nic1 down (7)
       [6, 7, 6, 7]]        # spine: rail 0 addresses via leaf0 (9), rail 1 via leaf1 (11)


def _sim(addresses: bool = True) -> Simulator:
    s = Simulator(num_hosts=2, num_switches=3, max_links=6, pkt_pool=4096)
    s.add_links([0, 0, 1, 1, 2, 3], [2, 3, 2, 3, 4, 4], [Gbps(100)] * 6, [us(1)] * 6)
    if addresses:
        s.set_addresses(PORT_ADDR, 4)
    return s


def _install(s: Simulator, fib=FIB) -> None:
    s.install_fib(fib, list(range(len(SETS) + 1)), SETS)


def test_cross_rail_traffic_arrives_on_the_addressed_nic():
    """A's QP on NIC 0 (rail 0) to B's QP on NIC 1 (rail 1): the data climbs to the spine and
    comes down rail 1 into B's NIC 1 (port 7 carries every data packet), never into B's NIC 0,
    which its first-hop leaf0 faces (port 5 stays idle); the ACKs go back to A's NIC 0 the same
    way round (leaf0 -> A, port 1), never into A's NIC 1 (port 3)."""
    s = _sim()
    _install(s)
    qp = s.create_qp_pair(0, 1, 49152)
    s.bind_qp(qp, 0)
    s.bind_qp(qp + 1, 6)
    assert s.qp_address(qp) == (0, 3) and s.qp_address(qp + 1) == (3, 0)
    assert s.trace_path(0, 3, 49152, src_port=0) == [0, 4, 5, 3]
    size = 1_000_000
    s.post_writes([qp], [size], [0])
    s.run_until(10**12)
    assert int(s.msgs[-1]["finish_ps"]) > 0
    data_pkts = -(-size // s.mtu_payload)
    assert int(s.ports[7]["tx_packets"]) == data_pkts       # leaf1 -> B.nic1: all the data
    assert int(s.ports[5]["tx_packets"]) == 0               # leaf0 -> B.nic0: nothing
    assert int(s.ports[1]["tx_packets"]) > 0 and int(s.ports[3]["tx_packets"]) == 0
    assert s.counters()["misdelivered"] == 0 and s.no_route_drops == 0


def test_without_addresses_the_host_is_reached_by_its_nearest_port():
    """The contrast (why addresses are needed): with the default address (B = all its ports),
    leaf0 delivers into B's NIC 0 directly, so a QP bound to B's NIC 1 receives on NIC 0."""
    s = _sim(addresses=False)
    # default fib: one column per host; to B, leaf0 faces it (5), leaf1 faces it (7), spine either
    s.install_fib([[0, 2], [3, 5], [6, 7]], list(range(len(SETS) + 1)), SETS)
    qp = s.create_qp_pair(0, 1, 49152)
    s.bind_qp(qp, 0)
    s.bind_qp(qp + 1, 6)
    assert s.qp_address(qp) == (0, 1)                        # hosts are the addresses
    s.post_writes([qp], [100_000], [0])
    s.run_until(10**12)
    assert int(s.ports[5]["tx_packets"]) > 0 and int(s.ports[7]["tx_packets"]) == 0


def test_a_qp_takes_the_address_of_the_port_it_is_bound_to():
    s = _sim()
    _install(s)
    qp = s.create_qp_pair(1, 0, 49152)          # B -> A: each starts on its host's first port
    assert s.qp_address(qp) == (2, 0) and s.qp_address(qp + 1) == (0, 2)
    s.bind_qp(qp + 1, 2)                        # A's end to NIC 1: B now sends to address 1
    assert s.qp_address(qp) == (2, 1) and s.qp_address(qp + 1) == (1, 2)
    assert [s.address_of_port(p) for p in (0, 1, 2, 6)] == [0, None, 1, 3]


def test_unreachable_address_is_dropped_and_counted():
    """A declared address may have no route from a switch (SD_NONE): a packet meeting it is
    dropped there and counted (no_route_drops, and in data_dropped: conservation holds)."""
    s = _sim()
    fib = [row[:] for row in FIB]
    fib[0][3] = NONE                            # leaf0 cannot reach B.nic1
    _install(s, fib)
    qp = s.create_qp_pair(0, 1, 49152)
    s.bind_qp(qp + 1, 6)
    s.post_writes([qp], [10_000], [0])
    s.run_until(us(20))
    c = s.counters()
    assert c["data_sent"] > 0 and s.no_route_drops == c["data_dropped"] == c["data_sent"]
    assert c["data_delivered"] == 0
    with pytest.raises(ValueError, match="switch node 2 has no route to address 3"):
        s.trace_path(0, 3, 49152)


def test_default_fib_still_needs_every_route():
    """Without declared addresses a missing route is refused, as before."""
    s = _sim(addresses=False)
    with pytest.raises(ValueError, match="no route from switch node 2 to host 1"):
        s.install_fib([[0, NONE], [3, 5], [6, 7]], list(range(len(SETS) + 1)), SETS)


@pytest.mark.parametrize("port_addr,n,match", [
    (PORT_ADDR[:-1], 4, r"11 port addresses given for 12 ports"),
    ([0, 5] + PORT_ADDR[2:], 4, r"port 1 of node 2 \(address 5\) is a switch port"),
    ([None] + PORT_ADDR[1:], 4, r"port 0 of node 0 .* is a host port without an address"),
    ([0, None, 1, None, 1] + PORT_ADDR[5:], 4, r"port 4 of node 1 \(address 1\) names an address of another host"),
    (PORT_ADDR, 5, r"address 4 has no port"),
    ([9] + PORT_ADDR[1:], 4, r"port 0 of node 0 \(address 9\) is a host port without an address"),
    (PORT_ADDR, 0, r"num_addrs must be a positive integer"),
    ([-2] + PORT_ADDR[1:], 4, r"port 0: address must be a non-negative integer or None"),
])
def test_bad_addresses_are_refused_by_name(port_addr, n, match):
    s = _sim(addresses=False)
    with pytest.raises(ValueError, match=match):
        s.set_addresses(port_addr, n)
    assert s.num_addrs == 2                     # nothing changed: the default addresses stay


def test_addresses_are_declared_before_the_fib_and_qps_and_after_the_links():
    s = _sim(addresses=False)
    s.install_fib([[0, 2], [3, 5], [6, 7]], list(range(len(SETS) + 1)), SETS)
    with pytest.raises(Exception, match="before the fib and the QPs"):
        s.set_addresses(PORT_ADDR, 4)
    s = _sim()
    with pytest.raises(Exception, match="add every link first"):
        s.add_links([2], [3], [Gbps(100)], [us(1)])
    with pytest.raises(ValueError, match="num_switches x num_addrs = 12"):
        s.install_fib([[0, 2], [3, 5], [6, 7]], list(range(len(SETS) + 1)), SETS)


# ---------------------------------------------------------------- the control plane: Fabric.addresses and routes
def _two_rail_fabric(addresses=((0,), (2,), (4,), (6,))):
    from controlplane.fabric.topology import Fabric, Link
    links = [Link(0, 2, Gbps(100), us(1), 0), Link(0, 3, Gbps(100), us(1), 0), Link(1, 2, Gbps(100), us(1), 0),
             Link(1, 3, Gbps(100), us(1), 0), Link(2, 4, Gbps(100), us(1), 1), Link(3, 4, Gbps(100), us(1), 1)]
    return Fabric.from_links("two_rails", 2, 3, links,
                             addresses=None if addresses is None else [list(a) for a in addresses])


def test_routes_have_one_column_per_address_and_reach_it_through_its_ports_only():
    """The hand-made FIB of the tests above, computed: at leaf0 the address B.nic1 (3) goes up
    (port 8) although leaf0 faces B (port 5); B.nic0 (2) is delivered at once."""
    from controlplane.fabric import routing
    fab = _two_rail_fabric()
    r = routing.compute_routes(fab)
    assert r.fib.shape == (3, 4)
    assert [list(r.candidates(2, a)) for a in range(4)] == [[1], [8], [5], [8]]
    assert [list(r.candidates(3, a)) for a in range(4)] == [[10], [3], [10], [7]]
    assert [list(r.candidates(4, a)) for a in range(4)] == [[9], [11], [9], [11]]
    assert routing.path(fab, r, 0, 3) == [0, 8, 11, 7] and routing.hop_count(fab, r, 1, 2) == 4
    assert routing.path(fab, r, 0, 2) == [0, 5]
    assert fab.address_host(3) == 1 and fab.port_address(6) == 3 and fab.port_address(7) is None


def test_network_delivers_cross_rail_traffic_on_the_addressed_nic():
    """End to end with computed routes: a Simulator built from the fabric (addresses declared
    from it), a QP from A.nic0 to B.nic1: all data leaves leaf1 into B.nic1 (port 7)."""
    from controlplane.fabric import routing
    fab = _two_rail_fabric()
    r = routing.compute_routes(fab)
    s = Simulator(num_hosts=2, num_switches=3, max_links=6, pkt_pool=4096)
    s.add_links([l.a for l in fab.links], [l.b for l in fab.links], [l.rate_bps for l in fab.links],
                [l.delay_ps for l in fab.links])
    s.set_addresses(fab.port_addresses(), fab.num_addresses)
    s.install_fib(r.fib, r.set_offsets, r.set_ports)
    qp = s.create_qp_pair(0, 1, 49152)
    s.bind_qp(qp + 1, 6)
    s.post_writes([qp], [200_000], [0])
    s.run_until(10**12)
    assert int(s.ports[7]["tx_packets"]) == -(-200_000 // s.mtu_payload) and int(s.ports[5]["tx_packets"]) == 0


def test_default_addresses_are_the_hosts_and_change_nothing():
    """Declaring the default (one address per host with all its ports) is the same fabric and
    the same routes as declaring none."""
    from controlplane.fabric import routing
    plain = _two_rail_fabric(None)
    same = _two_rail_fabric(((0, 2), (4, 6)))
    assert same.addresses is None and not same.addresses_declared and same.num_addresses == 2
    a, b = routing.compute_routes(plain), routing.compute_routes(same)
    assert (a.fib == b.fib).all() and (a.set_ports == b.set_ports).all() and (a.set_offsets == b.set_offsets).all()
    assert plain.to_dict() == same.to_dict() and "addresses" not in plain.to_dict()
    declared = _two_rail_fabric()
    from controlplane.fabric.topology import Fabric
    assert Fabric.from_dict(declared.to_dict()).addresses == [[0], [2], [4], [6]]


@pytest.mark.parametrize("addresses,match", [
    (((0,), (0, 2), (4,), (6,)), r"addresses\[1\]: port 0 \(h0->sw0\) is already in address 0"),
    (((0, 4), (2,), (6,)), r"addresses\[0\]: ports of several hosts \(h0, h1\)"),
    (((0,), (2,), (4,)), r"host port 6 \(h1->sw1\) has no address"),
    (((0,), (1,), (4,), (6,)), r"addresses\[1\]: port 1 is not a host port"),
    (((0,), (), (4,), (6,)), r"addresses\[1\] must be a non-empty list"),
])
def test_bad_fabric_addresses_are_named(addresses, match):
    with pytest.raises(ValueError, match=match):
        _two_rail_fabric(addresses)


def test_a_declared_address_unreachable_from_a_switch_has_no_route():
    """With declared addresses an address behind a switch the rest cannot reach gets NO_ROUTE
    there (with default addresses the same fabric is refused: test_routing)."""
    from controlplane.fabric import routing
    from controlplane.fabric.topology import Fabric, Link
    # A (0) has port 0 on leaf (2) and port 2 on an island switch (3) joined to nothing else; B (1) on leaf
    links = [Link(0, 2, Gbps(100), us(1), 0), Link(0, 3, Gbps(100), us(1), 0), Link(1, 2, Gbps(100), us(1), 0)]
    fab = Fabric(name="island", num_hosts=2, num_switches=2, node_names=["A", "B", "leaf", "island"],
                 node_tier=[0, 0, 1, 1], links=links, addresses=[[0], [2], [4]])
    r = routing.compute_routes(fab)
    assert r.fib[0, 1] == routing.NO_ROUTE and r.fib[1, 0] == routing.NO_ROUTE and r.fib[1, 2] == routing.NO_ROUTE
    assert list(r.candidates(3, 1)) == [3] and list(r.candidates(2, 1)) == []
    with pytest.raises(routing.RoutingError, match="switch 'leaf' has no route to it"):
        routing.path(fab, r, 2, 1)


def test_a_qp_pair_within_one_host_joins_two_of_its_addresses():
    """Both ends on host A (two GPUs of one server, say): allowed once A has two addresses, and
    it must be bound to ports of both before it posts (no loopback); then the data leaves A's
    NIC 0 and comes back into its NIC 1 through the spine."""
    s = _sim()
    _install(s)
    qp = s.create_qp_pair(0, 0, 49152)
    with pytest.raises(ValueError, match=r"qp 0 and its peer both have address 0 \(loopback is not modelled\)"):
        s.post_writes([qp], [10_000], [0])
    s.bind_qp(qp + 1, 2)
    assert s.qp_address(qp) == (0, 1)
    s.post_writes([qp], [100_000], [0])
    s.run_until(10**12)
    assert int(s.msgs[-1]["finish_ps"]) > 0
    assert int(s.ports[3]["tx_packets"]) == -(-100_000 // s.mtu_payload)     # leaf1 -> A.nic1: the data
    plain = _sim(addresses=False)
    plain.install_fib([[0, 2], [3, 5], [6, 7]], list(range(len(SETS) + 1)), SETS)
    with pytest.raises(ValueError, match="src_host and dst_host are both 0"):
        plain.create_qp_pair(0, 0, 49152)


def test_wire_addresses_are_per_address(tmp_path):
    """On the wire (capture, scapy-independent reader) a packet's IP addresses are its addresses':
    A.nic0 (address 0) -> B.nic1 (address 3) is 10.0.0.1 -> 10.0.0.4, and the ACKs come back
    10.0.0.4 -> 10.0.0.1 (with host addressing both would name the hosts, 10.0.0.1 and .2)."""
    from dataplane.pcap import read_pcap, softdpu_host
    s = _sim()
    _install(s)
    qp = s.create_qp_pair(0, 1, 49152)
    s.bind_qp(qp + 1, 6)
    sess = s.capture_open(tmp_path / "b.pcap")
    s.capture_port(sess, 6, tx=True, rx=True)     # B's NIC 1: what it receives and sends
    s.post_writes([qp], [50_000], [0])
    s.run_until(10**12)
    s.capture_close(sess)
    rec = read_pcap(tmp_path / "b.pcap").records
    pairs = {(softdpu_host(4, a), softdpu_host(4, b)) for a, b in zip(rec["src"], rec["dst"])}
    assert pairs == {(0, 3), (3, 0)}
