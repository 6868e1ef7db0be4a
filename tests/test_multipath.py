"""Multipath transport (issue #5): sr/ooo deliver exactly once under loss and reordering,
spraying vs ECMP, adaptive routing, and clear errors for bad input."""
import numpy as np
import pytest

from controlplane.fabric import routing
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, KB, MB, us
from tests.support import assert_conserved

FAT4 = {"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)}


def perm(size=KB(512), **kw):
    base = dict(topology=FAT4, workload={"kind": "permutation", "size_bytes": size}, cc="none",
                sample_interval_ps=0, buffer_bytes=1_000_000)
    base.update(kw)
    return Scenario(**base)


def receivers(r):
    """(sender QP, its peer) rows: what each receiver placed and completed."""
    q = r.network.sim.qps
    snd = r.network.sender_qps
    return q[snd], q[snd + 1]


def assert_exactly_once(r):
    assert_conserved(r)
    snd, rcv = receivers(r)
    sizes = np.array([f.size_bytes for f in r.network.flows])
    # every payload byte placed once (duplicates are counted in rx_dup, never placed twice) ...
    assert np.array_equal(rcv["rx_bytes"], sizes)
    # ... and every message completed once, in order, at the receiver (one message per QP here)
    assert np.all(rcv["msn"] == 1)
    assert np.all(rcv["ooo_held"] == 0)


@pytest.mark.parametrize("transport", ["sr", "ooo"])
@pytest.mark.parametrize("loss", [0.001, 0.01, 0.05])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sr_and_ooo_deliver_every_message_exactly_once_under_random_loss(transport, loss, seed):
    r = perm(transport=transport, paths="spray_random", link_loss=loss, seed=seed).run()
    assert r.counters["random_drops"] > 0
    assert_exactly_once(r)


@pytest.mark.parametrize("transport", ["gbn", "sr", "ooo"])
def test_heavy_reordering_is_absorbed(transport):
    # spraying 16 flows over a k=4 fat-tree reorders heavily (queues differ per path)
    r = perm(transport=transport, paths="spray_rr").run()
    assert_exactly_once(r)
    snd, rcv = receivers(r)
    packets = len(r.network.flows) * KB(512) // 4096
    assert rcv["rx_ooo"].sum() > 0.2 * packets                   # at least one packet in five out of order
    if transport != "gbn":
        assert rcv["ooo_max_dist"].max() > 10
        assert rcv["ooo_peak"].max() <= 2048                    # bounded by the reorder window


def test_gbn_retransmits_under_reordering_and_ooo_does_not():
    gbn = perm(transport="gbn", paths="spray_rr").run()
    ooo = perm(transport="ooo", paths="spray_rr").run()
    assert ooo.counters["data_dropped"] == 0 and ooo.counters["retransmitted"] == 0
    assert receivers(ooo)[1]["rx_ooo"].sum() > 400            # it was reordered (of 2048 packets), at no cost
    assert gbn.counters["retransmitted"] > 2048               # every gap rewinds the sender
    assert ooo.flows["fct_ps"].max() < gbn.flows["fct_ps"].max()


def test_ecmp_uplink_use_matches_balls_into_bins():
    """V7 (docs/architecture.md, 'Tests'): with m flows hashed onto n uplinks, the expected fraction
    of uplinks used is 1 - (1 - 1/n)^m (balls into bins). Leaf-spine, 8 leaves x 8 hosts x 8 spines,
    a random permutation per seed; the measured mean over 12 seeds must be within 0.04 of the
    expectation computed for the flows each leaf actually sends off-leaf."""
    topo = {"topology": "leaf_spine", "num_leaves": 8, "num_spines": 8, "hosts_per_leaf": 8,
            "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(100), "host_delay_ps": us(1),
            "fabric_delay_ps": us(1)}
    used, expected = [], []
    for seed in range(1, 13):
        sc = Scenario(topology=topo, workload={"kind": "permutation", "size_bytes": KB(64)}, cc="none",
                      sample_interval_ps=0, seed=seed)
        net = sc.build()
        net.run()
        fab, ports = net.fabric, net.sim.ports
        leaf_of = lambda h: h // 8                                  # noqa: E731 (hosts are numbered leaf by leaf)
        for leaf in range(8):
            m = sum(1 for f in net.flows if leaf_of(f.src) == leaf and leaf_of(f.dst) != leaf)
            node = fab.num_hosts + leaf
            up = [p for p in range(fab.num_ports) if fab.port_owner(p) == node
                  and fab.is_switch(fab.port_owner(p ^ 1))]
            assert len(up) == 8
            # an uplink carries data if it sent more than the ACKs of every flow could add up to
            used.append(np.mean([ports[p]["tx_bytes"] > KB(32) for p in up]))
            expected.append(1 - (1 - 1 / 8) ** m)
    print(f"uplinks used {np.mean(used):.3f}, balls-into-bins {np.mean(expected):.3f}")
    assert abs(np.mean(used) - np.mean(expected)) < 0.04, (np.mean(used), np.mean(expected))


def test_spraying_and_ar_beat_ecmp_on_a_permutation():
    fct = {}
    for name, kw in {"ecmp": {}, "spray": {"paths": "spray_rr"}, "ar": {"adaptive_routing": True}}.items():
        r = perm(size=MB(2), transport="ooo", **kw).run()
        assert_exactly_once(r)
        fct[name] = r.flows["fct_ps"].mean()
    assert fct["spray"] < 0.5 * fct["ecmp"] and fct["ar"] < fct["ecmp"]


def test_unmarked_packets_never_change_path():
    """AR enabled on every switch, but the NIC does not mark the packets: forwarding is ECMP,
    so every port sends exactly what it sends with AR off."""
    def ports(ar_switches):
        net = perm(transport="ooo").build()
        if ar_switches:
            for node in range(net.fabric.num_hosts, net.fabric.num_nodes):
                try:
                    net.sim.set_adaptive_routing(node, True)
                except ValueError:
                    pass                                        # a core switch: one egress per destination
        r = net.run()
        return r, net.sim.ports["tx_packets"].copy()
    r_off, off = ports(False)
    r_on, on = ports(True)
    assert r_on.counters["ar_moves"] == 0
    assert np.array_equal(off, on)


def test_ar_moves_marked_packets_within_their_candidate_set():
    r = perm(size=MB(1), transport="ooo", adaptive_routing=True).run()
    c = r.counters
    # a packet taken off its candidate set would reach a wrong host (or loop): every receiver got
    # exactly its own bytes and nothing is left in flight
    assert_exactly_once(r)
    # ... and every packet took a shortest path: with no loss and cc none each data packet is sent
    # once and ACKed once (ack_interval 1), so the link traversals are exactly
    # sum over flows of packets x (hops there + hops back), the hop counts of the ECMP routes
    net = r.network
    assert c["retransmitted"] == 0 and c["data_sent"] == c["ctrl_sent"]
    hops = sum(-(-f.size_bytes // 4096) * (len(routing.path_links(net.fabric, net.routes, f.src, f.dst)) +
                                           len(routing.path_links(net.fabric, net.routes, f.dst, f.src)))
               for f in net.flows)
    assert c["packet_hops"] == hops
    # the switches did move packets: a decision differs from the ECMP hash for a sizeable share of
    # the aggregation-layer choices (two candidates each on a k=4 fat-tree: about half would
    # differ if the choice were independent of the hash; at least one in ten here)
    assert c["ar_moves"] > 0.1 * c["data_sent"]


def test_same_seed_same_sprayed_run():
    a = perm(transport="sr", paths="spray_random", link_loss=0.01, seed=5).run()
    b = perm(transport="sr", paths="spray_random", link_loss=0.01, seed=5).run()
    assert np.array_equal(a.flows["finish_ps"], b.flows["finish_ps"])
    assert a.counters == b.counters


@pytest.mark.parametrize("kw,match", [
    (dict(transport="irn"), "transport: unknown mode 'irn'"),
    (dict(paths="flowlet_x"), "paths: unknown policy"),
    (dict(paths="spray_rr", num_paths=0), "num_paths must be"),
    (dict(paths="spray_weighted", num_paths=2), "path_weights"),
    (dict(paths="spray_rr", path_weights=[1, 2]), "path_weights is only used"),
    (dict(transport="sr", transport_params={"reorder_window": 100}), "reorder_window must be a power of 2"),
    (dict(transport="sr", transport_params={"window": 64}), "transport_params: unknown key"),
    (dict(link_loss=1.5), "link_loss must be"),
])
def test_bad_multipath_input_names_the_field(kw, match):
    with pytest.raises(Exception, match=match):
        perm(**kw).build()


def test_ar_needs_a_switch_with_a_choice():
    sc = Scenario(topology={"topology": "single_switch", "num_hosts": 4, "rate_bps": Gbps(100), "delay_ps": us(1)},
                  workload={"kind": "incast", "senders": 3, "size_bytes": KB(64)}, cc="none",
                  adaptive_routing=True)
    with pytest.raises(ValueError, match="adaptive_routing: no switch"):
        sc.build()
    net = Scenario(topology=FAT4, workload={"kind": "permutation", "size_bytes": KB(64)}, cc="none").build()
    with pytest.raises(Exception, match="adaptive_routing: node 0 is not a switch"):
        net.sim.set_adaptive_routing(0, True)
    with pytest.raises(Exception, match="loss: port 9999 does not exist"):
        net.sim.set_port_loss(9999, 0.1)
    with pytest.raises(Exception, match="path set .* is empty"):
        net.sim.set_paths(0, "spray_rr", [])
    with pytest.raises(Exception, match="already has posted messages"):
        net.sim.set_transport(0, "sr")


def test_spraying_vs_ecmp_experiment_writes_its_csvs(tmp_path):
    from experiments import spraying_vs_ecmp
    out = spraying_vs_ecmp.run(tmp_path, {"k": 4, "size_bytes": MB(1), "variants": ["ecmp-gbn", "spray_rr-ooo"]},
                               plots=False)
    s = {r["variant"]: r for r in out["summary"]}
    assert s["spray_rr-ooo"]["mean_tput_frac"] > s["ecmp-gbn"]["mean_tput_frac"]
    assert s["spray_rr-ooo"]["retransmitted"] == 0 and s["spray_rr-ooo"]["rx_ooo"] > 0
    rows = (tmp_path / "spraying_vs_ecmp.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 16


CORE_LINK = 47          # k=4 fat-tree: the last link joins an aggregation switch to a core switch


@pytest.mark.parametrize("paths,transport", [("ecmp", "gbn"), ("spray_rr", "ooo"), ("spray_weighted", "sr")])
def test_failover_stops_traffic_into_a_failed_link_once_detected(paths, transport):
    """A core link fails at 200 us; NICs detect it 50 us later; routing would only reconverge
    after 10 ms. From detection on, no QP (data or ACK direction) has an entropy whose path
    crosses the dead link, so its drop counters stop growing once the packets sent before
    detection have left the switch queues in front of it (edge and aggregation: at most 1 MB of
    buffer each = 80 us at 100 Gb/s, plus a sample interval)."""
    extra = {"path_weights": [1, 2, 3, 4, 1, 2, 3, 4]} if paths == "spray_weighted" else {}
    r = perm(size=MB(4), cc="dcqcn", transport=transport, paths=paths, **extra,
             failures=[{"link": CORE_LINK, "down_ps": us(200)}],
             failure_params={"detect_ps": us(50), "reconverge_ps": 10_000_000_000},
             sample_interval_ps=us(10), monitor_ports=[2 * CORE_LINK, 2 * CORE_LINK + 1]).run()
    ts = r.timeseries
    drops = ts["port_drops"].sum(axis=1)
    t = ts["t_ps"]
    assert drops[-1] > 0                                         # the failure did cost packets
    after = drops[t >= us(200) + us(50) + 2 * us(80) + us(10)]
    assert np.all(after == drops[-1]), (t, drops)
    net = r.network
    for qp in np.concatenate([net.sender_qps, net.receiver_qps]):
        q = net.sim.qps[int(qp)]
        ents = net.sim.path_set(int(qp)).entropies
        for e in ents:
            assert CORE_LINK not in net.sim.trace_path(int(q["host"]), int(q["peer_host"]), int(e))
    assert r.counters["failure_drops"] == drops[-1]
    assert r.counters["msgs_completed"] == r.counters["msgs_total"]


def test_reconvergence_alone_restores_service():
    """Without NIC failover (detection slower than routing), the FIBs recomputed without the link
    bring every flow to completion."""
    r = perm(size=MB(2), cc="dcqcn", failures=[{"link": CORE_LINK, "down_ps": us(100), "up_ps": us(5000)}],
             failure_params={"detect_ps": 10_000_000_000, "reconverge_ps": us(300)}).run()
    assert r.counters["msgs_completed"] == r.counters["msgs_total"]
    log = r.config["resolved"]["failure_log"]
    assert [e["action"] for e in log][:2] == ["down", "reconverge"]


@pytest.mark.parametrize("failures,match", [
    ([{"link": 999, "down_ps": 0}], r"failures\[0\].link: link 999 does not exist"),
    ([{"switch": 3, "down_ps": 0}], r"failures\[0\].switch: node 3 is not a switch"),
    ([{"link": 1}], r"failures\[0\].down_ps must be"),
    ([{"link": 1, "down_ps": 10, "up_ps": 5}], r"failures\[0\].up_ps must be"),
    ([{"link": 1, "switch": 20, "down_ps": 0}], r"exactly one of"),
])
def test_bad_failures_name_the_field(failures, match):
    with pytest.raises(ValueError, match=match):
        perm(failures=failures).build()


# ---------------------------------------------------------------- feedback-driven path policies
LEAF_SPINE_SLOW = {"topology": "leaf_spine", "num_leaves": 2, "num_spines": 4, "hosts_per_leaf": 2,
                   "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(50), "host_delay_ps": us(1),
                   "fabric_delay_ps": us(1)}
MARK_ALL = {"kmin_bytes": 0, "kmax_bytes": 1, "pmax": 1.0}    # CE on every packet that leaves a queue behind


def one_flow(paths, size=MB(2), topology=LEAF_SPINE_SLOW, **kw):
    base = dict(topology=topology, workload={"kind": "flows", "flows": [{"src": 0, "dst": 2, "size_bytes": size}]},
                cc="none", transport="ooo", paths=paths, sample_interval_ps=us(10), buffer_bytes=MB(8))
    base.update(kw)
    return Scenario(**base).run()


def test_telemetry_counts_what_each_entropy_carried():
    from controlplane.transport.multipath import telemetry
    r = perm(transport="ooo", paths="spray_rr", sample_interval_ps=0).run()
    t = telemetry(r.network)
    sent = t["sent"][:, :8]
    assert np.all(sent.max(axis=1) - sent.min(axis=1) <= 1)        # round-robin: equal shares
    assert t["sent"].sum() == r.counters["data_sent"]
    assert t["acks"].sum() == r.counters["data_delivered"]          # one ACK per packet, each echoes its slot
    assert np.all(t["rtt_ps"][:, :8] > 0) and np.all(t["ecn_fraction"] == 0)   # cc none, no ECN configured


def test_reps_recycles_unmarked_entropies_and_explores_when_marked():
    quiet = one_flow("reps", topology={**LEAF_SPINE_SLOW, "fabric_rate_bps": Gbps(100)})
    marked = one_flow("reps", ecn=MARK_ALL)
    def explored(r):
        st = r.network.sim.path_states[r.network.sender_qps[0]]
        return st["reps_explored"] / st["sent"].sum()
    # unmarked ACKs come back for everything: only the first window (before any ACK) explores
    assert explored(quiet) < 0.1
    # the 50 Gb/s fabric queues behind a 100 Gb/s host: nearly every ACK echoes CE, nothing to recycle
    assert explored(marked) > 0.5


def test_plb_repaths_after_congested_rounds_and_not_otherwise():
    """32 packets in flight (IRN's BDP cap) into a 50 Gb/s fabric, twice the path's BDP (about 15
    packets at a 10 us RTT): every round (about 21 us) leaves a standing queue and is congested.
    4 MB at 50 Gb/s is about 32 rounds, so PLB's 12-round rule repaths twice; with an
    unreachable rule it never does."""
    cap = {"bdp_cap": 32}
    congested = one_flow("plb", size=MB(4), ecn=MARK_ALL, transport_params=cap)
    st = congested.network.sim.path_states[congested.network.sender_qps[0]]
    assert 2 <= st["repaths"] <= 3
    never = one_flow("plb", size=MB(4), ecn=MARK_ALL, transport_params=cap, path_params={"plb_rehash_rounds": 10**6})
    assert never.network.sim.path_states[never.network.sender_qps[0]]["repaths"] == 0
    # one path at a time: every packet of a round went on the same slot, so at most repaths+1 slots carried data
    assert (st["sent"] > 0).sum() <= st["repaths"] + 1


def test_flowlet_changes_path_after_an_idle_gap_only():
    def run(gap_us):
        flows = [{"src": 0, "dst": 2, "size_bytes": KB(64), "start_ps": i * us(gap_us), "conn": 1} for i in range(5)]
        r = Scenario(topology=LEAF_SPINE_SLOW, workload={"kind": "flows", "flows": flows}, cc="none",
                     transport="ooo", paths="flowlet", path_params={"flowlet_gap_ps": us(50)},
                     sample_interval_ps=0).run()
        assert r.counters["msgs_completed"] == 5
        return r.network.sim.path_states[r.network.sender_qps[0]]
    assert run(500)["repaths"] == 4            # 4 idle gaps of ~490 us > 50 us
    assert run(5)["repaths"] == 0              # back-to-back messages: one flowlet


def test_link_failure_and_reorder_cost_experiments_run_small(tmp_path):
    from experiments import link_failure, reorder_cost
    lf = link_failure.run(tmp_path / "lf", {"size_bytes": MB(2), "fail_us": 50, "variants": ["ecmp-gbn", "spray_rr-ooo"]},
                          plots=False)
    s = {r["variant"]: r for r in lf["summary"]}
    assert all(r["completed"] == r["flows"] for r in lf["summary"])
    assert s["spray_rr-ooo"]["failure_drops"] > 0                     # some sprayed packets hit the dead link
    assert (tmp_path / "lf" / "link_failure_throughput.csv").stat().st_size > 0
    rc = reorder_cost.run(tmp_path / "rc", {"size_bytes": MB(1), "policies": ["ecmp", "spray_rr"],
                                            "transports": ["gbn", "ooo"]}, plots=False)
    r = {(x["policy"], x["transport"]): x for x in rc["rows"]}
    assert r[("ecmp", "ooo")]["ooo_fraction"] == 0 and r[("spray_rr", "ooo")]["ooo_fraction"] > 0.1
    assert r[("spray_rr", "ooo")]["retransmitted"] == 0 < r[("spray_rr", "gbn")]["retransmitted"]


def test_ar_delay_metric_equals_bytes_when_links_share_a_rate():
    # queued bytes / rate orders the candidates as queued bytes does when every rate is equal
    a = perm(size=MB(1), transport="ooo", adaptive_routing="bytes").run()
    b = perm(size=MB(1), transport="ooo", adaptive_routing="delay").run()
    assert a.counters["ar_moves"] > 0 and a.counters == b.counters
    with pytest.raises(ValueError, match="adaptive_routing must be"):
        perm(adaptive_routing="least").build()


def test_loss_on_one_link_only():
    r = perm(transport="sr", paths="spray_rr", link_loss={CORE_LINK: 0.2}).run()
    assert_exactly_once(r)
    net = r.network
    lost = net.sim.counters()["random_drops"]
    # only packets crossing link 47 can be lost, each with probability 0.2: the loss rate of what
    # the link carried is 0.2 within 4 binomial standard deviations
    carried = int(net.sim.ports["tx_packets"][[2 * CORE_LINK, 2 * CORE_LINK + 1]].sum())
    assert 0 < lost <= carried
    assert abs(lost / carried - 0.2) < 4 * np.sqrt(0.2 * 0.8 / carried), (lost, carried)
    with pytest.raises(ValueError, match="link_loss: link 999 does not exist"):
        perm(link_loss={999: 0.1}).build()


def test_a_tick_hook_can_replace_path_sets():
    """The control plane reads per-entropy telemetry at a tick and acts on it: here, at the
    first tick, every sprayed QP keeps only its least-marked entropy (ECMP from then on)."""
    from controlplane.transport.multipath import telemetry
    net = perm(size=MB(2), cc="dcqcn", transport="ooo", paths="spray_rr", sample_interval_ps=us(50)).build()
    done = []

    def narrow(n):
        if done:
            return
        t = telemetry(n)
        for row, qp in enumerate(n.sender_qps):
            k = int(n.sim.qps[int(qp)]["npaths"])
            best = int(np.argmin(t["ecn_fraction"][row, :k]))
            n.sim.set_paths(int(qp), "ecmp", [int(t["entropy"][row, best])])
        done.append(n.sim.now)
    net.tick_hooks.append(narrow)
    r = net.run()
    assert done == [us(50)]
    st = net.sim.path_states[net.sender_qps]
    assert np.all(st["sent"][:, 1:] == 0) and np.all(st["sent"][:, 0] > 0)   # one entropy after the tick
    assert r.counters["msgs_completed"] == r.counters["msgs_total"]


def test_ar_classes_choose_which_packets_may_move():
    """Marking ACKs and CNPs as well lets the switches move them too (more AR decisions differ from
    ECMP), and delivery stays exactly-once; that unmarked packets never move is
    test_unmarked_packets_never_change_path."""
    runs = {tuple(cl): perm(size=MB(1), transport="ooo", adaptive_routing=True, ar_classes=cl).run()
            for cl in (["data"], ["ack"], ["data", "ack", "cnp"])}
    for r in runs.values():
        assert_exactly_once(r)
    # A switch can move a packet only where it has a choice: on a k=4 fat-tree, the edge->aggregation
    # hop (2 candidates) when leaving the edge switch's hosts and the aggregation->core hop (2) when
    # leaving the pod. So the moves of a class are at most sum(packets x choice points on its path).
    net = runs[("data",)].network

    def choices(a, b):                   # links on the path: 2 same edge, 4 same pod, 6 across pods
        return {2: 0, 4: 1, 6: 2}[len(routing.path_links(net.fabric, net.routes, a, b))]

    pkts = [-(-f.size_bytes // 4096) for f in net.flows]
    data_bound = sum(n * choices(f.src, f.dst) for n, f in zip(pkts, net.flows))
    ack_bound = sum(n * choices(f.dst, f.src) for n, f in zip(pkts, net.flows))
    moves = {k: r.counters["ar_moves"] for k, r in runs.items()}
    assert 0 < moves[("data",)] <= data_bound
    assert 0 < moves[("ack",)] <= ack_bound + runs[("ack",)].counters["retransmitted"] * 2  # ACKs of resends too
    assert moves[("data",)] < moves[("data", "ack", "cnp")] <= data_bound + ack_bound
    with pytest.raises(ValueError, match="ar_classes must be"):
        perm(adaptive_routing=True, ar_classes=["nak"]).build()


def test_timeouts_are_charged_to_the_entropy_that_lost_the_packet():
    """ooo recovers a lost data packet only by timeout, and the timer is charged to the slot of
    the oldest outstanding packet: with loss on link 47 only, (almost) every charged slot is an
    entropy whose path crosses link 47 (a lost ACK is covered by the next cumulative ACK)."""
    from controlplane.transport.multipath import telemetry
    r = perm(size=MB(1), transport="ooo", paths="spray_rr", link_loss={CORE_LINK: 0.05}).run()
    net, t = r.network, telemetry(r.network)
    on = off = 0
    for row, qp in enumerate(net.sender_qps):
        q = net.sim.qps[int(qp)]
        for k in np.flatnonzero(t["timeouts"][row, :int(q["npaths"])]):
            path = net.sim.trace_path(int(q["host"]), int(q["peer_host"]), int(t["entropy"][row, k]))
            if CORE_LINK in path:
                on += t["timeouts"][row, k]
            else:
                off += t["timeouts"][row, k]
    assert on + off == r.counters["timeouts"] > 0
    assert off <= 0.2 * on
