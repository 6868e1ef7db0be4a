"""Unit behaviour of data-plane mechanisms, each against its formula."""
import numpy as np
import pytest

from controlplane.config.units import Gbps, us
from dataplane import sim as dp
from tests.support import assert_conserved, run, star


@pytest.mark.parametrize("q,expected", [
    (0, 0.0), (5_000, 0.0),                     # at or below Kmin: never
    (102_500, 0.005), (200_000, 0.01),           # linear: Pmax (q-Kmin)/(Kmax-Kmin)
    (200_001, 1.0), (10**9, 1.0)])               # above Kmax: always
def test_red_probability_is_dcqcn_cp_formula(q, expected):
    # DCQCN CP (Zhu et al. SIGCOMM'15 §3.1) with the paper's Kmin 5 KB, Kmax 200 KB, Pmax 1 %
    assert dp.red_probability(q, 5_000, 200_000, 0.01) == pytest.approx(expected, rel=1e-12)


def test_red_zero_pmax_disables_marking():
    assert dp.red_probability(10**9, 0, 0, 0.0) == 0.0


def test_empirical_marking_rate_follows_red():
    """2:1 incast without CC holds the bottleneck queue at the drop-tail cap (400 KB), so every
    dequeue sees q in (cap - 2 packets, cap]; the marked fraction must match
    p(q) = Pmax (q - Kmin)/(Kmax - Kmin) with Kmin = 0, Kmax = 1 MB, Pmax = 0.5 -> p in [0.194, 0.2]."""
    r = run(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": 20_000_000}, cc="none",
            buffer_bytes=400_000, ecn={"kmin_bytes": 0, "kmax_bytes": 1_000_000, "pmax": 0.5}, sample_interval_ps=0)
    port = r.network.bottleneck_port()
    p = r.network.sim.ports[port]
    frac = p["ecn_marked"] / p["tx_packets"]
    wire = 4096 + 82
    lo = 0.5 * (400_000 - 2 * wire) / 1_000_000
    hi = 0.5 * 400_000 / 1_000_000
    n = p["tx_packets"]
    slack = 4 * np.sqrt(hi * (1 - hi) / n)           # 4 sigma of a binomial fraction
    assert lo - slack <= frac <= hi + slack, (frac, lo, hi, n)
    assert_conserved(r)


@pytest.mark.parametrize("nbytes,rate", [(4178, Gbps(100)), (64, Gbps(25)), (9000, 400_000_000_000), (1, Gbps(1))])
def test_serialization_time_is_bytes_times_8_over_rate(nbytes, rate):
    expected = -(-nbytes * 8 * 10**12 // rate)      # bytes*8/rate in ps, rounded up (exact integers)
    assert dp.serialization_ps(nbytes, rate) == expected


def test_psn_diff_is_24_bit_modular():
    assert dp.psn_diff(5, 3) == 2
    assert dp.psn_diff(3, 5) == -2
    assert dp.psn_diff(0, 0xFFFFFF) == 1              # wraps forward
    assert dp.psn_diff(0xFFFFFF, 0) == -1
    assert dp.psn_diff(0x7FFFFF, 0) == 0x7FFFFF       # half window
    assert dp.psn_diff(0x800000, 0) == -0x800000


def test_transfer_across_psn_wrap_completes_without_loss():
    """ISN 100 below 2^24: a 1000-packet WRITE crosses the wrap; the receiver must accept every
    PSN in order (no NAK, no duplicate) and the message must complete."""
    r = run(topology=star(2), workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": 1000 * 4096}]},
            cc="none", isn=(1 << 24) - 100, sample_interval_ps=0)
    assert_conserved(r)
    qp = r.network.sim.qps
    assert qp["naks_tx"].sum() == 0 and qp["rx_dup"].sum() == 0 and qp["rx_ooo"].sum() == 0
    assert qp[1]["epsn"] == ((1 << 24) - 100 + 1000) % (1 << 24)   # receiver's expected PSN wrapped
    assert qp[1]["rx_bytes"] == 1000 * 4096


def test_ecmp_hash_is_uniform_over_candidates():
    """Chi-square over 4 and 8 candidates for 20 000 flows (random source ports): the statistic
    must stay below the 0.999 quantile (16.27 for 3 dof, 24.32 for 7 dof)."""
    rng = np.random.default_rng(7)
    for n, crit in ((4, 16.27), (8, 24.32)):
        sports = rng.integers(49152, 65536, size=20_000)
        picks = np.array([dp.ecmp_hash(3, 17, int(s), 4791, 0xABCDEF) % n for s in sports])
        counts = np.bincount(picks, minlength=n)
        chi2 = ((counts - len(sports) / n) ** 2 / (len(sports) / n)).sum()
        assert chi2 < crit, (n, counts)


def test_ecmp_spreads_flows_over_uplinks_in_a_fabric():
    """Permutation on a 4-leaf/4-spine fabric: every leaf uplink carries traffic, and a flow's
    packets all take one path (per-flow ECMP: no reordering, so no NAKs without loss)."""
    topo = {"topology": "leaf_spine", "num_leaves": 4, "num_spines": 4, "hosts_per_leaf": 8,
            "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(100), "host_delay_ps": us(1), "fabric_delay_ps": us(1)}
    r = run(topology=topo, workload={"kind": "permutation", "size_bytes": 400_000}, cc="none", buffer_bytes=50_000_000,
            sample_interval_ps=0)
    assert_conserved(r)
    fab, ports = r.network.fabric, r.network.sim.ports
    uplinks = [p for p in range(fab.num_ports)
               if fab.node_tier[fab.port_owner(p)] == 1 and fab.node_tier[fab.port_peer(p)] == 2]
    assert len(uplinks) == 16
    # ~6 inter-leaf flows per leaf hashed onto 4 uplinks: balls into bins leave 16*(3/4)^6 = 2.8
    # uplinks idle on average, so at least 12 must carry traffic
    assert (ports["tx_packets"][uplinks] > 0).sum() >= 12
    assert r.counters["nak_sent"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_event_queue_pops_in_time_then_insertion_order(seed):
    """The calendar queue against its specification: 300 k random pushes (equal times, same
    bucket, within the window, far beyond it) interleaved with pops; every pop must be the
    smallest pending (time, insertion sequence) and every pushed event must come out, with the
    run's depth switching between 1 and 16 (the lookahead off and on) and the pending count kept."""
    from dataplane._native import lib
    assert lib.sd_selftest_event_queue(seed, 300_000) == 0


def test_an_event_that_cannot_be_queued_stops_the_run_loudly():
    """An event push that fails (here: the pending-event cap of set_event_limit, which takes the
    path of a failed allocation) must never lose the event silently: run_until raises SimError
    naming the event and its time, keeps raising it, and the state at the failure stays readable
    and conserved. The expected numbers come from the uncapped run of the same scenario (runs are
    deterministic, so the capped one is identical up to the push that would pass the cap)."""
    import re

    from controlplane.run.scenario import Scenario
    from dataplane.sim import SimError
    sc = Scenario(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 300_000}, cc="dcqcn",
                  sample_interval_ps=0)
    full = sc.run()
    peak, events = full.counters["heap_peak"], full.counters["events"]
    # a cap at the peak never bites: the same run, event for event
    net = sc.build()
    net.sim.set_event_limit(peak)
    capped = net.run()
    assert capped.counters["events"] == events and np.array_equal(capped.flows["finish_ps"], full.flows["finish_ps"])
    # one below: the push that would reach the peak fails, and the run stops right there
    net = sc.build()
    net.sim.set_event_limit(peak - 1)
    with pytest.raises(SimError, match=rf"limit of {peak - 1} pending events is reached; a \w+ event") as err:
        net.run()
    c = net.sim.counters()
    assert c["heap_peak"] == peak - 1 and c["events"] < events
    assert net.sim.msgs_completed < len(net.flows)
    t_fail = int(re.search(r"scheduled at t=(\d+) ps", str(err.value)).group(1))
    assert net.sim.now == t_fail                        # stopped after the event whose push failed
    for _ in range(2):                                  # sticky: the run cannot go on
        with pytest.raises(SimError, match="limit of"):
            net.sim.run_until(net.sim.now + 1_000_000)
    assert net.sim.now == t_fail and net.sim.counters()["events"] == c["events"]
    # the run's partial results come with the error (Scenario.run writes them as a results folder)
    partial = err.value.partial
    assert partial.counters["conservation_ok"] == 1 and "limit of" in partial.counters["error"]
    assert partial.counters["events"] == c["events"] and partial.sim_ps == t_fail
    with pytest.raises(ValueError, match="event limit"):
        net.sim.set_event_limit(-1)


def test_the_built_library_keeps_its_prefetch_hints():
    """The event loop's lookahead (native/sim.c ev_lookahead) only works if the prefetches are in the
    binary: gcc 12 at -O2 dropped __builtin_prefetch inside small static inline helpers (a build
    had 3 prefetch instructions for the 11 written), which is why they are SD_PREFETCH (an asm
    prefetcht0 on x86-64). All but 3 SD_PREFETCH call sites must leave an instruction: the
    compiler may merge the same hint on two branches or keep a helper's once (22 of 22 at -O2 now;
    15 of 18 before the third round's prefetches); __builtin_prefetch left 7 of 18."""
    import platform
    import shutil
    import subprocess
    from pathlib import Path

    import dataplane
    if platform.machine() not in ("x86_64", "AMD64") or not shutil.which("objdump"):
        pytest.skip("the asm prefetch is x86-64's; objdump is needed to read the binary")
    root = Path(dataplane.__file__).resolve().parent
    so = next(root.glob("_native*.so"))
    sites = sum(f.read_text().count("SD_PREFETCH(") for f in (root.parent / "native").glob("*.c"))
    asm = subprocess.run(["objdump", "-d", str(so)], capture_output=True, text=True, check=True).stdout
    found = asm.count("prefetcht0")
    assert sites >= 15, sites                    # the lookahead's stages and the bucket drain
    assert found >= sites - 3, (found, sites)


def _fat4_permutation(**kw):
    """A k = 4 fat-tree (16 hosts), every host WRITEs 300 KB to a permutation peer, DCQCN, every
    port monitored."""
    from controlplane.run.scenario import Scenario
    return Scenario(topology={"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)},
                    workload={"kind": "permutation", "size_bytes": 300_000}, cc="dcqcn", sample_interval_ps=0,
                    monitor_ports="all", **kw)


LOOKAHEAD_CASES = {
    "ecmp": {},
    "adaptive_routing": {"adaptive_routing": True},
    "pfc": {"pfc": True},
    "routes_change_mid_run": {"failures": [{"link": 40, "down_ps": us(30), "up_ps": us(400)}],
                              "failure_params": {"detect_ps": us(1_000_000), "reconverge_ps": us(20)}},
    "python_cc": {"cc_impl": "python"},
}


@pytest.mark.parametrize("case", sorted(LOOKAHEAD_CASES))
def test_results_do_not_depend_on_the_lookahead(case):
    """The event loop's lookahead (native/sim.c ev_lookahead) runs by itself only above 4 MiB of
    working set, so the tests' small fabrics never reach it: here it is forced off and on
    (sd_debug_set_lookahead) on a k = 4 fat-tree permutation, and everything must be identical.
    It reads ahead (the FIB, the ECMP pick, QPs, queue heads) but must write nothing the handlers
    read; the cases add what it reads around: adaptive routing (decided on arrival), PFC admission,
    a link failure with routes reconverging, and a Python CC plug-in (called inside the run). An
    ECMP pick reused from the lookahead with a wrong port (tried by hand: out ^ 1) failed every case."""
    from dataplane._native import lib
    sc = _fat4_permutation(**LOOKAHEAD_CASES[case])
    runs = []
    for mode in (1, 2):                                  # off, on
        net = sc.build()
        assert lib.sd_debug_set_lookahead(net.sim._sim, mode) == 0
        runs.append((net.run(progress=False), net))
    (off, net_off), (on, net_on) = runs
    assert on.counters["events"] == off.counters["events"] > 0
    assert on.counters == off.counters
    assert np.array_equal(on.flows["finish_ps"], off.flows["finish_ps"])
    assert np.array_equal(net_on.sim.ports, net_off.sim.ports)      # every port's counters and gauges
    assert np.array_equal(net_on.sim.qps, net_off.sim.qps)
    if case == "adaptive_routing":
        assert on.counters["ar_moves"] > 0               # the case exercises AR's own pick
    if case == "routes_change_mid_run":
        assert on.counters["failure_drops"] > 0          # the link did go down under traffic
    with pytest.raises(ValueError, match="mode 3"):
        net_on.sim._check(lib.sd_debug_set_lookahead(net_on.sim._sim, 3))


def test_routes_installed_between_run_calls_apply_to_the_next_packet_with_the_lookahead_on():
    """The lookahead reads a packet's FIB entry and ECMP pick a few events before it arrives; routes
    the control plane installs between two run_until calls must still apply to that packet. Two
    valid route tables (all links, and two aggregation-core links avoided) alternate every 97 ns of
    a k = 4 fat-tree permutation: the run with the lookahead forced on must match the run with it
    off, event for event. (A version that let switch_receive reuse the lookahead's pick, without
    forgetting the picks at each run_until call, parted here: 21,752 vs 22,486 events.)"""
    from controlplane.fabric import routing
    from dataplane._native import lib
    sc = _fat4_permutation()
    runs = []
    for mode in (1, 2):                                  # off, on
        net = sc.build()
        assert lib.sd_debug_set_lookahead(net.sim._sim, mode) == 0
        tables = [routing.compute_routes(net.fabric), routing.compute_routes(net.fabric, down_links=[44, 47])]
        steps = 0
        while net.sim.msgs_completed < len(net.flows) and steps < 20_000:
            net.sim.run_until(net.sim.now + 97_000)
            tables[steps % 2].install(net.sim)
            steps += 1
        assert net.sim.msgs_completed == len(net.flows)
        runs.append((steps, net.sim.counters(), net.sim.ports.copy(), net.sim.qps.copy()))
    (s_off, c_off, p_off, q_off), (s_on, c_on, p_on, q_on) = runs
    assert s_on == s_off and c_on == c_off and c_on["events"] > 0
    assert np.array_equal(p_on, p_off) and np.array_equal(q_on, q_off)
