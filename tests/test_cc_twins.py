"""The C twins of DCTCP, TIMELY, HPCC, Swift and NSCC against their Python references (identical
decision traces), and their behaviour against the published targets."""
import numpy as np
import pytest

from controlplane.results.folder import jain_index
from controlplane.run.scenario import Scenario
from dataplane.sim import cc_param_names, CC_DCQCN, CC_DCTCP, CC_TIMELY
from tests.support import PAYLOAD_EFFICIENCY_4K, assert_conserved, run, star, steady_state


def twins(**common):
    """Run a scenario with the C twin and with the Python reference; require identical decision
    traces and completion times (docs/architecture.md, 'Congestion control'), and return both runs."""
    c, py = run(cc_impl="c", trace=400_000, sample_interval_ps=0, **common), \
        run(cc_impl="python", trace=400_000, sample_interval_ps=0, **common)
    assert_conserved(c)
    assert_conserved(py)
    assert 0 < len(c.trace) < 400_000
    for name in c.trace.dtype.names:
        assert np.array_equal(c.trace[name], py.trace[name]), name
    assert np.array_equal(c.flows["finish_ps"], py.flows["finish_ps"])
    return c, py


@pytest.mark.parametrize("cc,extra", [
    ("dctcp", {}),
    ("timely", {"t_low_ps": 8_000_000, "t_high_ps": 60_000_000, "min_rtt_ps": 5_000_000}),   # every branch
])
def test_c_twin_matches_python_reference(cc, extra):
    c, _ = twins(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 2_000_000}, cc=cc,
                 cc_params=extra)
    assert c.trace["rate_bps"].min() < 50e9                       # it did react
    if cc == "timely":
        stages = c.trace["v"][:, 1]
        assert stages.max() > 5                                    # reached hyper increase


def test_dctcp_queue_holds_near_k():
    """DCTCP with step marking at K keeps the bottleneck queue around K while the link stays
    busy (Alizadeh et al. SIGCOMM'10 §3.3; HPCC run.py K = 300 KB at 100 Gb/s): time-averaged
    queue within K ± 30 % and aggregate goodput >= 95 % of R x payload efficiency."""
    r = run(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 20_000_000}, cc="dctcp",
            sample_interval_ps=10_000_000)
    assert_conserved(r)
    mean, q = steady_state(r)
    assert 0.7 * 300_000 <= q.mean() <= 1.3 * 300_000, q.mean()
    assert mean.sum() >= 0.95 * 100e9 * PAYLOAD_EFFICIENCY_4K
    assert jain_index(mean) >= 0.95
    assert r.counters["dropped"] == 0


def test_timely_keeps_rtt_under_t_high():
    """TIMELY's update rules cut the rate whenever the RTT exceeds T_high (500 us), so in steady
    state the queueing delay stays well below it: the bottleneck queue stays under
    T_high x R = 6.25 MB after the first window (the buffer is 12 MB, so an algorithm that did
    not react would fill it), and the link stays busy (>= 85 %)."""
    r = run(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 20_000_000}, cc="timely",
            buffer_bytes=12_000_000, sample_interval_ps=10_000_000)
    assert_conserved(r)
    mean, q = steady_state(r)
    assert q.max() < 500e-6 * 100e9 / 8
    assert mean.sum() >= 0.85 * 100e9 * PAYLOAD_EFFICIENCY_4K


def test_parameter_names_come_from_the_c_twins():
    assert cc_param_names(CC_DCTCP) == ["g", "rai_bps", "rmin_bps", "initial_alpha"]
    assert "hai_threshold" in cc_param_names(CC_TIMELY) and "fast_recovery" in cc_param_names(CC_DCQCN)
    with pytest.raises(ValueError, match="unknown parameter"):
        Scenario(cc="timely", cc_params={"gamma": 1}).build()


def test_hpcc_c_twin_matches_python_reference():
    """HPCC with INT: identical decision traces (rate, window, R_c, stage, U) C vs Python, on a
    2-tier fabric so that several INT hops are unwrapped."""
    topo = {"topology": "leaf_spine", "num_leaves": 2, "num_spines": 2, "hosts_per_leaf": 3,
            "host_rate_bps": 100_000_000_000, "fabric_rate_bps": 100_000_000_000,
            "host_delay_ps": 1_000_000, "fabric_delay_ps": 1_000_000}
    c, _ = twins(topology=topo, workload={"kind": "incast", "senders": 5, "size_bytes": 2_000_000}, cc="hpcc")
    assert c.trace["window_bytes"].max() > 0 and c.trace["rate_bps"].min() < 50e9
    assert c.trace["v"][:, 1].max() >= 1 and (c.trace["v"][:, 1] == 0).any()    # AI stages and MD


def test_hpcc_v3_utilisation_near_eta_with_a_near_empty_queue():
    """V3 (HPCC steady state: Li et al. SIGCOMM'19 Alg. 1, U_TARGET 0.95 in the HPCC repo's
    simulation/mix/config.txt): 4:1 into a 100 Gb/s port, eta = 0.95. In steady state
    the bottleneck link runs at eta of its capacity (INT counts wire bytes: goodput/(R x payload
    efficiency) within 0.95 +- 0.03) and the queue stays at a few packets (mean < 2 x 4 KB)."""
    r = run(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 20_000_000}, cc="hpcc",
            sample_interval_ps=10_000_000)
    assert_conserved(r)
    mean, q = steady_state(r)
    assert 0.92 <= mean.sum() / (100e9 * PAYLOAD_EFFICIENCY_4K) <= 0.98, mean.sum()
    assert q.mean() < 2 * 4178, q.mean()
    assert r.counters["dropped"] == 0 and r.counters["ecn_marked"] == 0


def test_swift_c_twin_matches_python_reference():
    c, _ = twins(topology=star(9), workload={"kind": "incast", "senders": 8, "size_bytes": 2_000_000}, cc="swift")
    grew = cut = False
    for qp in np.unique(c.trace["qp"]):
        d = np.diff(c.trace["v"][c.trace["qp"] == qp, 0])
        grew, cut = grew or bool((d > 0).any()), cut or bool((d < 0).any())
    assert grew and cut                                          # additive increase and multiplicative decrease


def test_swift_holds_delay_near_its_target():
    """Swift (Kumar et al. SIGCOMM'20 §3; htsim swift.cpp): in steady state the measured RTT
    tracks the target delay (base target + hops x h + flow-scaling term): the median of
    RTT / target over the middle half of the ACKs within 5 %, 90 % of them within 10 %, while
    the link stays busy (>= 95 % of R x payload efficiency) and flows share it fairly."""
    r = run(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 20_000_000}, cc="swift",
            trace=400_000, sample_interval_ps=10_000_000)
    assert_conserved(r)
    acks = r.trace[r.trace["event"] == 1]
    mid = acks[len(acks) // 4: 3 * len(acks) // 4]
    ratio = mid["v"][:, 2] / mid["v"][:, 1]
    assert abs(np.median(ratio) - 1.0) <= 0.05
    assert np.mean(np.abs(ratio - 1.0) <= 0.10) >= 0.9
    mean, _ = steady_state(r)
    assert mean.sum() >= 0.95 * 100e9 * PAYLOAD_EFFICIENCY_4K and jain_index(mean) >= 0.95


def test_nscc_c_twin_matches_python_reference():
    """UEC NSCC: identical traces, and both increase cases and the ECN decrease occur."""
    c, _ = twins(topology=star(9), workload={"kind": "incast", "senders": 8, "size_bytes": 2_000_000}, cc="nscc")
    cwnd = c.trace["window_bytes"]
    assert cwnd.min() < cwnd.max() / 2 and c.counters["ecn_marked"] > 0


def test_nscc_shares_a_bottleneck_fully_and_fairly():
    """NSCC on 4:1: the link stays busy (>= 95 % of R x payload efficiency), the flows share
    it (Jain >= 0.95) and the queue stays bounded near the marking step (mean < 3 x K)."""
    r = run(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 20_000_000}, cc="nscc",
            sample_interval_ps=10_000_000)
    assert_conserved(r)
    mean, q = steady_state(r)
    assert mean.sum() >= 0.95 * 100e9 * PAYLOAD_EFFICIENCY_4K and jain_index(mean) >= 0.95
    assert q.mean() < 3 * 100_000
