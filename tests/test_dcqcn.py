"""DCQCN: the Python reference against its equations, the C twin against the reference
(differential: identical decision traces), and V1 fairness/convergence
(shared/reference/transport-cc.md §5 V1)."""
from types import SimpleNamespace

import numpy as np
import pytest

from congestion.api import EV_CNP, EV_START, EV_TIMER
from congestion.dcqcn import T_ALPHA, T_DEC, T_INC, Dcqcn
from controlplane.results import jain_index
from controlplane.units import Gbps
from tests.support import PAYLOAD_EFFICIENCY_4K, assert_conserved, run, star, steady_state

LINE = 100e9


def io(event, now=0, timer_id=0):
    return SimpleNamespace(event=event, now_ps=now, timer_id=timer_id, line_rate_bps=LINE, rate_bps=LINE,
                           timer_at=[-1] * 4, byte_threshold=0, byte_reset=0, trace=[0.0] * 4)


def test_paper_cnp_cuts_rate_by_alpha_half_and_raises_alpha():
    """Zhu et al. SIGCOMM'15 RP: on CNP, RT <- RC, RC <- RC (1 - alpha/2), alpha <- (1-g) alpha + g."""
    cc = Dcqcn("paper")
    st = cc.new_flow(0)
    cc.on_start(st, io(EV_START))
    e = io(EV_CNP, now=1000)
    cc.on_cnp(st, e)
    assert e.rate_bps == LINE * (1 - 1.0 / 2)                 # alpha starts at 1
    assert st.rt == LINE and st.alpha == (1 - 1 / 256) + 1 / 256
    assert e.timer_at[T_INC] == 1000 + 55_000_000 and e.timer_at[T_ALPHA] == 1000 + 55_000_000
    assert e.byte_threshold == 10_000_000 and e.byte_reset == 1
    # five timer ticks of fast recovery halve the gap to RT each time (F = 5)
    rc = e.rate_bps
    for k in range(5):
        t = io(EV_TIMER, timer_id=T_INC)
        cc.on_timer(st, t)
        rc = (LINE + rc) / 2
        assert t.rate_bps == rc
    # then additive increase: RT grows by R_AI = 40 Mb/s but is clamped at line rate
    t = io(EV_TIMER, timer_id=T_INC)
    cc.on_timer(st, t)
    assert st.rt == LINE


def test_nvidia_first_cnp_arms_timers_without_cutting():
    """HPCC repo cnp_received_mlx: the first CNP sets alpha = 1, keeps the rate, starts the alpha
    timer (1 us) and the decrease check (4 us + 1 ns); the check then cuts by alpha/2."""
    cc = Dcqcn("nvidia")
    st = cc.new_flow(0)
    cc.on_start(st, io(EV_START))
    e = io(EV_CNP, now=0)
    cc.on_cnp(st, e)
    assert e.rate_bps == LINE
    assert e.timer_at[T_ALPHA] == 1_000_000 and e.timer_at[T_DEC] == 4_001_000
    d = io(EV_TIMER, now=4_001_000, timer_id=T_DEC)
    cc.on_timer(st, d)
    assert d.rate_bps == LINE / 2 and d.timer_at[T_INC] == 4_001_000 + 300_000_000


@pytest.mark.parametrize("flavour,extra", [
    ("nvidia", {"inc_period_ps": 20_000_000}),   # a short increase timer reaches every stage
    ("paper", {"byte_counter": 300_000}),    # a small byte counter exercises BYTES and hyper increase
])
def test_c_twin_matches_python_reference(flavour, extra):
    """Differential (DESIGN.md §6): the same scenario with the C twin and with the Python
    reference (through the plug-in path) must give identical decision traces and FCTs."""
    common = dict(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 3_000_000},
                  cc="dcqcn", cc_params={"flavour": flavour, **extra}, trace=400_000, sample_interval_ps=0)
    c = run(cc_impl="c", **common)
    py = run(cc_impl="python", **common)
    assert_conserved(c)
    assert_conserved(py)
    tc, tp = c.trace, py.trace
    assert len(tc) == len(tp) and len(tc) < 400_000
    for name in tc.dtype.names:
        assert np.array_equal(tc[name], tp[name]), name
    assert np.array_equal(c.flows["finish_ps"], py.flows["finish_ps"])
    # the trace is not trivial: CNPs, timers, rate cuts, and every increase stage were exercised
    events = set(np.unique(tc["event"]))
    assert {EV_START, EV_CNP, EV_TIMER} <= events
    assert tc["rate_bps"].min() < 0.5 * Gbps(100)
    stage = tc["v"][:, 2] if flavour == "nvidia" else np.maximum(tc["v"][:, 2], tc["v"][:, 3])
    f = 1 if flavour == "nvidia" else 5
    assert stage.max() > f                               # reached hyper increase
    if flavour == "paper":
        assert 6 in events                               # EV_BYTES


@pytest.mark.parametrize("flavour,rate,n", [
    ("nvidia", Gbps(100), 2), ("nvidia", Gbps(100), 4), ("nvidia", Gbps(100), 8),
    ("paper", Gbps(40), 4), ("paper", Gbps(40), 8),      # the paper's parameters are for 40 Gb/s
])
def test_v1_fairness_and_utilisation(flavour, rate, n):
    """V1: N long DCQCN flows into one bottleneck. Over the second half of the period when all
    are active: aggregate goodput >= 95 % of the achievable goodput (R x payload efficiency)
    and Jain's index >= 0.95 (issue #2; DCQCN paper fairness figures)."""
    r = run(topology=star(n + 1, rate), workload={"kind": "incast", "senders": n, "size_bytes": 20_000_000},
            cc="dcqcn", cc_params={"flavour": flavour}, sample_interval_ps=10_000_000)
    assert_conserved(r)
    mean, _ = steady_state(r)
    assert mean.sum() >= 0.95 * rate * PAYLOAD_EFFICIENCY_4K, mean
    assert jain_index(mean) >= 0.95, mean
    assert r.counters["cnps_rx"] > 0
