"""Path policies as providers (native/paths.c registry, native/path_*.c, controlplane/transport/multipath.py
config models), the decoded path-set accessor, and the failover that keeps a QP's AR classes."""
import numpy as np

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us

FAT4 = {"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)}
CORE_LINK = 47          # k=4 fat-tree: the last link joins an aggregation switch to a core switch


def test_failover_keeps_the_qps_ar_classes():
    """Issue #14: failures.py re-installed a failed-over path set with ar=bool(mask), and the data
    plane read that as "data packets are AR-eligible": a QP configured with ar_classes=["ack"]
    gained adaptive routing of its DATA after a failover. The QPs whose entropies crossed the dead
    link must keep exactly the classes the scenario gave (ack only: mask SD_AR_CLASS_ACK = 2)."""
    r = Scenario(topology=FAT4, workload={"kind": "permutation", "size_bytes": MB(1)}, cc="dcqcn",
                 transport="ooo", adaptive_routing=True, ar_classes=["ack"], sample_interval_ps=0,
                 buffer_bytes=1_000_000, failures=[{"link": CORE_LINK, "down_ps": us(50)}],
                 failure_params={"detect_ps": us(10), "reconverge_ps": 10_000_000_000}).run()
    net = r.network
    moved = [e for e in r.config["resolved"]["failure_log"] if e["action"] == "detect"]
    assert moved                                           # the failover ran
    ends = np.concatenate([net.sender_qps, net.sender_qps + 1])
    assert [int(net.sim.qps[int(qp)]["ar"]) for qp in ends] == [2] * len(ends)
    assert {net.sim.path_set(int(qp)).ar_classes for qp in ends} == {frozenset({"ack"})}


# ---------------------------------------------------------------- the registry and the accessor
def _sim_with_qp():
    from controlplane.fabric import routing
    from controlplane.fabric import topology
    from dataplane.sim import Simulator
    routes = routing.compute_routes(topology.single_switch(2, Gbps(100), us(1)))
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2, max_qps=4, max_msgs=2, pkt_pool=64)
    sim.add_links([0, 1], [2, 2], [Gbps(100)] * 2, [us(1)] * 2)
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    return sim, sim.create_qp_pair(0, 1, 49152)


def test_every_registered_policy_has_a_config_model_that_reads_what_its_provider_reads():
    """Python discovers the policies from native/paths.c's registry; each config model declares
    exactly the path_params its C provider lists (checked when multipath.py builds PathParams), and
    a model that disagrees with its provider is refused at that point."""
    import pytest
    from controlplane.transport import multipath
    from dataplane.sim import PATH_POLICIES, path_policy_params
    assert set(multipath.POLICY_MODELS) == set(PATH_POLICIES)
    for name, model in multipath.POLICY_MODELS.items():
        assert tuple(model.model_fields) == path_policy_params(name)
    assert set(multipath.PathParams.model_fields) == {k for m in multipath.POLICY_MODELS.values()
                                                      for k in m.model_fields}
    bad = dict(multipath.POLICY_MODELS)
    bad["plb"] = multipath.Flowlet                 # declares flowlet_gap_ps; the plb provider reads plb_*
    with pytest.raises(RuntimeError, match="path policy plb: the model Flowlet declares"):
        multipath._union(bad)
    with pytest.raises(RuntimeError, match="without a config model"):
        multipath._union({k: v for k, v in multipath.POLICY_MODELS.items() if k != "clove"})


def test_path_set_decodes_policy_entropies_weights_classes_and_params():
    """sd_get_paths: weights per path as given (the C side keeps them cumulative: 1, 3, 6), the AR
    classes as names, the parameters the policy reads with their model's types; a QP with no set
    reports ecmp on its own UDP source port."""
    from dataplane.sim import PathSet
    sim, qp = _sim_with_qp()
    assert sim.path_set(qp) == PathSet("ecmp", (49152,), (1.0,), frozenset(), {})
    sim.set_paths(qp, "spray_weighted", [49152, 50000, 60000], [1, 2, 3], ar_classes=["data", "cnp"])
    ps = sim.path_set(qp)
    assert (ps.policy, ps.entropies, ps.weights) == ("spray_weighted", (49152, 50000, 60000), (1.0, 2.0, 3.0))
    assert ps.ar_classes == {"data", "cnp"} and dict(ps.params) == {}
    sim.set_path_params(qp, plb_rehash_rounds=5)
    sim.set_paths(qp, "plb", [49152, 50000])           # ar_classes not given: the QP keeps its classes
    ps = sim.path_set(qp)
    assert ps.ar_classes == {"data", "cnp"} and ps.weights == (1.0, 1.0)
    assert dict(ps.params) == {"plb_cong_thresh": 0.5, "plb_rehash_rounds": 5, "plb_suspend_ps": 60 * 10**12}
    assert type(ps.params["plb_rehash_rounds"]) is int and type(ps.params["plb_cong_thresh"]) is float
    sim.set_paths(qp, "plb", [49152, 50000], ar_classes=())
    assert sim.path_set(qp).ar_classes == frozenset()
    sim.set_path_params(qp, plb_suspend_ps=2**60 + 1)       # beyond a double's 53 bits: still exact
    assert sim.path_set(qp).params["plb_suspend_ps"] == 2**60 + 1


# ---------------------------------------------------------------- clove (Clove-ECN), the policy added
LEAF_SPINE = {"topology": "leaf_spine", "num_leaves": 2, "num_spines": 4, "hosts_per_leaf": 2,
              "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(100), "host_delay_ps": us(1),
              "fabric_delay_ps": us(1)}


def _clove_vs_cross_traffic(paths):
    """Flow A (host 0 -> 2) on 8 entropies; flow B (host 1 -> 3) on ECMP crosses one spine. The
    fabric runs at the host rate, so A alone never queues: only the spine path B shares with A
    (200 Gb/s offered into 100 Gb/s with cc none) builds a queue and marks CE."""
    flows = [{"src": 0, "dst": 2, "size_bytes": MB(2)}, {"src": 1, "dst": 3, "size_bytes": MB(4)}]
    net = Scenario(topology=LEAF_SPINE, workload={"kind": "flows", "flows": flows}, cc="none", transport="ooo",
                   paths=paths, num_paths=8, path_params={"flowlet_gap_ps": 0}, seed=2, sample_interval_ps=0,
                   ecn={"kmin_bytes": 20_000, "kmax_bytes": 200_000, "pmax": 0.2}, buffer_bytes=MB(16)).build()
    a, b = int(net.sender_qps[0]), int(net.sender_qps[1])
    net.sim.set_paths(b, "ecmp", net.sim.path_set(b).entropies[:1])      # B: one path
    r = net.run()
    link_b = set(net.sim.trace_path(1, 3, net.sim.path_set(b).entropies[0]))
    ents = net.sim.path_set(a).entropies
    shared = np.array([bool(set(net.sim.trace_path(0, 2, e)) & link_b) for e in ents])
    return r, net.sim.path_set(a), net.sim.path_states[a], shared


def test_clove_moves_flowlets_off_the_path_whose_acks_echo_ce():
    """Clove-ECN (Katta et al., CoNEXT'17, §3): a path whose feedback carries ECN loses a third of
    its weight to the unmarked paths, and weighted round robin sends new flowlets by weight. With
    flowlet_gap_ps = 0 every packet (spaced by its serialization) is a new flowlet. Expected:
    (1) the weights always sum to the number of paths (cuts are moved, never lost: exact up to
    float rounding, 1e-9); (2) only the entropies through B's spine are marked, so each ends
    below 1 and each other one above 1 (they only ever gain); (3) spray_rr sends A's packets
    equally (k of 8 entropies shared: k/8 of them into the queue, within one packet); clove sends
    at most (1/16 + 15/16 x 2/3) = 0.69 of that share there: A lasts about 16 RTTs (2 MB at
    100 Gb/s = 160 us; RTT about 10 us), the first at equal weights, and from the first marked
    round on each shared path keeps at most 2/3 of its weight (it is cut again in later rounds,
    so the true share is lower); and more than the final weights' share (sum of their weights / 8),
    since those weights only fell."""
    rr, _, st_rr, shared_rr = _clove_vs_cross_traffic("spray_rr")
    r, ps, st, shared = _clove_vs_cross_traffic("clove")
    assert list(shared) == list(shared_rr) and 0 < shared.sum() < 8     # seed 2: both kinds of entropy
    assert r.counters["msgs_completed"] == 2 and rr.counters["msgs_completed"] == 2
    w = np.array(ps.weights)
    assert ps.policy == "clove" and dict(ps.params) == {"flowlet_gap_ps": 0}
    assert abs(w.sum() - 8) < 1e-9
    assert st["ce"][:8][shared].min() > 0 and st["ce"][:8][~shared].max() == 0
    assert w[shared].max() < 1 < w[~shared].min()
    frac_rr = st_rr["sent"][:8][shared].sum() / st_rr["sent"].sum()
    assert abs(frac_rr - shared.sum() / 8) <= 1 / st_rr["sent"].sum() * 8
    frac = st["sent"][:8][shared].sum() / st["sent"].sum()
    assert w[shared].sum() / 8 < frac <= (1 / 16 + 15 / 16 * 2 / 3) * frac_rr


def test_clove_is_deterministic_and_one_path_per_flowlet_for_hpcc():
    """Same seed, same run (the WRR draws nothing at random); clove is one path per flowlet, so
    HPCC does not warn about per-hop INT state as it does for sprays."""
    import warnings
    a = _clove_vs_cross_traffic("clove")
    b = _clove_vs_cross_traffic("clove")
    assert a[1] == b[1] and np.array_equal(a[2]["sent"], b[2]["sent"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Scenario(topology=LEAF_SPINE, workload={"kind": "flows", "flows": [{"src": 0, "dst": 2, "size_bytes": MB(1)}]},
                 cc="hpcc", transport="ooo", paths="clove", sample_interval_ps=0).build()
