"""Runs that always end (issue #12): time fields are whole picoseconds within documented bounds
(controlplane/config/limits.py), a run budget (max_events, max_wall_s) stops any run with its partial
results, a CC that arms a timer at or before now is stopped naming it, and the data plane stops a
run that makes no progress at one instant."""
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.config import limits
from controlplane.results.folder import load_run
from controlplane.run.scenario import CHUNK_EVENTS, Scenario
from controlplane.config.units import KB, MB, us
from dataplane.sim import BudgetExceeded, CCPluginError, SimError
from tests.support import assert_conserved, star

# 2:1 incast of 64 KB each, no CC: a few hundred events, a few milliseconds of wall time
TINY = dict(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": KB(64)}, cc="none",
            sample_interval_ps=0, monitor_ports="none")
# the default 16:1 incast of 4 MB with DCQCN: 270 k events, more than 4 chunks of CHUNK_EVENTS
INCAST = dict(sample_interval_ps=0)


# ---------------------------------------------------------------- time fields
@pytest.mark.parametrize("field, value", [("duration_ps", 1.5), ("max_duration_ps", 10_000_000.5),
                                          ("sample_interval_ps", 1_000_000.5), ("rto_ps", 1_000_000.5),
                                          ("cnp_interval_ps", 50_000_000.5)])
def test_fractional_times_are_refused_naming_the_field(field, value):
    """The issue's generated scenarios that never ended: simulated time is an integer, so a run
    asked to end at 1.5 ps stopped at 1 ps, short of it, and looped; now refused at build."""
    with pytest.raises(ValueError, match=rf"^{field} must be an integer number of picoseconds .*got {value}: "
                                         r"simulated time is a whole number of picoseconds"):
        Scenario(**{**TINY, field: value}).run()


@pytest.mark.parametrize("field, value", [("rto_ps", 1), ("rto_ps", limits.RTO_FLOOR_PS - 1),
                                          ("sample_interval_ps", 1), ("sample_interval_ps", limits.SAMPLE_FLOOR_PS - 1)])
def test_times_below_their_floor_are_refused_with_the_reason(field, value):
    """rto_ps=1 (a timeout every picosecond) and sample_interval_ps=1 (10^6 samples per
    simulated microsecond) made runs effectively endless; the floors are 1 us and 100 ns."""
    floor, why = {"rto_ps": ("1000000 ps (1 us)", "the run would never end"),
                  "sample_interval_ps": ("100000 ps (100 ns)", "10^6 samples per simulated microsecond")}[field]
    with pytest.raises(ValueError) as e:
        Scenario(**{**TINY, field: value}).run()
    msg = str(e.value)
    assert msg.startswith(f"{field} must be an integer number of picoseconds in [{floor}, "), msg
    assert f"got {value}: " in msg and why in msg, msg


def test_floors_are_accepted_and_integral_floats_converted():
    """The floor itself is a valid value; 1e9 (JSON's and --set's spelling) becomes the integer
    1_000_000_000 in the scenario and its config.json, and runs exactly like the integer."""
    Scenario(**{**TINY, "rto_ps": limits.RTO_FLOOR_PS, "sample_interval_ps": limits.SAMPLE_FLOOR_PS}).build()
    as_float = Scenario(**{**TINY, "rto_ps": 1e9, "max_duration_ps": 1e12})
    r = as_float.run()
    assert type(as_float.rto_ps) is int and as_float.rto_ps == 10**9
    assert r.config["rto_ps"] == 10**9 and r.config["max_duration_ps"] == 10**12
    exact = Scenario(**{**TINY, "rto_ps": 10**9, "max_duration_ps": 10**12}).run()
    assert r.counters == exact.counters


@pytest.mark.parametrize("spec, path", [
    (dict(transport="sr", transport_params={"rto_low_ps": 5}), "transport_params.rto_low_ps"),
    (dict(paths="flowlet", path_params={"flowlet_gap_ps": 0.5}), "path_params.flowlet_gap_ps"),
    (dict(failure_params={"detect_ps": float("inf")}), "failure_params.detect_ps"),
    (dict(failures=[{"link": 0, "down_ps": us(5)}, {"link": 1, "down_ps": 2.5}]), r"failures\[1\].down_ps"),
    (dict(qpc={"fetch_latency_ps": "soon"}), "qpc.fetch_latency_ps"),   # "1us" is a time now (units)
    (dict(workload={"kind": "incast", "senders": 2, "size_bytes": KB(64), "jitter_ps": 2.5}), "workload.jitter_ps"),
    (dict(workload={"kind": "incast", "senders": 2, "size_bytes": KB(64), "start_ps": -1}), "workload.start_ps"),
    (dict(max_events=-1), "max_events"),
    (dict(max_wall_s=float("nan")), "max_wall_s"),
])
def test_nested_times_and_budgets_are_refused_by_their_path(spec, path):
    with pytest.raises(ValueError, match=rf"^{path} must be "):
        Scenario(**{**TINY, **spec}).build()


# ---------------------------------------------------------------- the run budget
def test_max_events_stops_at_exactly_that_many_events_with_partial_results(tmp_path):
    """max_events = half the events of the full run: the data plane stops before handling one
    more, so the partial counters show exactly max_events events, and the results folder written
    so far reads back with the error naming the budget."""
    full = Scenario(**TINY).run()
    n = full.counters["events"]
    budget = n // 2
    with pytest.raises(BudgetExceeded, match=rf"the run budget max_events = {budget:,} is used up: simulated "
                                             rf"time reached t=\d+ ps after {budget:,} events.*--set max_events") as e:
        Scenario(**{**TINY, "max_events": budget}).run(tmp_path / "out")
    assert (e.value.budget, e.value.limit) == ("max_events", budget)
    assert isinstance(e.value, SimError)                     # the CLI's "the run stopped" path
    partial = load_run(tmp_path / "out")
    assert partial.counters["events"] == budget
    assert "max_events" in partial.counters["error"]
    assert partial.counters["sim_time_ps"] == e.value.sim_ps < full.sim_ps
    # the events the full run needs, exactly, are within budget: identical results
    same = Scenario(**{**TINY, "max_events": n}).run()
    assert same.counters == full.counters


def test_a_run_within_budget_is_identical_to_the_run_without_budget():
    """The default 16:1 incast (270 k events, so the wall-clock budget makes the data plane return
    every CHUNK_EVENTS events) with the default budgets, with budgets off, and with max_events set
    to exactly the events it needs: the same counters, messages and time series, bit for bit."""
    off = Scenario(**INCAST, max_events=0, max_wall_s=0).run()
    assert off.counters["events"] > 4 * CHUNK_EVENTS
    for kw in ({}, {"max_events": off.counters["events"]}):
        on = Scenario(**INCAST, **kw).run()
        assert on.counters == off.counters
        for k in off.flows:
            np.testing.assert_array_equal(on.flows[k], off.flows[k])
    sampled_off = Scenario(sample_interval_ps=us(10), max_events=0, max_wall_s=0).run()
    sampled_on = Scenario(sample_interval_ps=us(10)).run()
    assert sampled_on.counters == sampled_off.counters
    for k in sampled_off.timeseries:
        np.testing.assert_array_equal(sampled_on.timeseries[k], sampled_off.timeseries[k])


def test_max_wall_s_is_checked_every_chunk_of_events():
    """A loop clock that advances 1 s per reading (no real timing): with sample_interval_ps = 0
    the whole run is one control step, so only the chunk stops can look at the clock. The loop
    reads it when the run starts (its zero), before the step (1 s) and after each chunk of
    CHUNK_EVENTS events (2 s, 3 s, 4 s): with max_wall_s = 3.5 the 3rd chunk stop reads 4 s > 3.5 s
    and the run stops after exactly 3 x CHUNK_EVENTS events."""
    clock = iter(range(10**6))
    net = Scenario(**INCAST, max_wall_s=3.5).build()
    net.loop.clock = lambda: float(next(clock))
    with pytest.raises(BudgetExceeded, match=r"the run budget max_wall_s = 3.5 s is used up: .* s of wall clock, "
                                             r"simulated time reached t=\d+ ps .*--set max_wall_s") as e:
        net.run()
    assert e.value.budget == "max_wall_s"
    assert net.sim.events == 3 * CHUNK_EVENTS
    assert e.value.partial.counters["events"] == 3 * CHUNK_EVENTS


def test_a_tiny_max_wall_s_stops_a_longer_run(tmp_path):
    """max_wall_s = 0.05 s on a 16:1 incast of 16 MB each (about 1 M events, ~0.5 s here: 10 x the
    budget) with no sampling: it stops with its partial results written."""
    sc = Scenario(workload={"kind": "incast", "senders": 16, "size_bytes": MB(16)}, sample_interval_ps=0,
                  max_wall_s=0.05)
    with pytest.raises(BudgetExceeded, match="max_wall_s = 0.05 s is used up") as e:
        sc.run(tmp_path / "out")
    partial = load_run(tmp_path / "out")
    assert partial.counters["msgs_completed"] < 16
    assert "max_wall_s" in partial.counters["error"]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["max_wall_s"] == 0.05
    assert e.value.sim_ps == partial.counters["sim_time_ps"]


# ---------------------------------------------------------------- CC timers and no progress
SPIN = """
from congestion.api import CongestionControl
class Spin(CongestionControl):
    name = "spin"
    def on_start(self, st, ev):
        ev.timer_at[0] = ev.now_ps + {first}
    def on_timer(self, st, ev):
        ev.timer_at[0] = ev.now_ps{again}
"""


def test_plugin_rearming_its_timer_at_now_is_stopped_naming_it(tmp_path):
    """A plug-in that re-arms its timer at the instant it fires used to hold simulated time still
    forever; now CCPluginError names the plug-in, the QP, the timer and the event, and the
    results so far are written. The first timer fires 1 us after the QP starts (t = 0)."""
    f = tmp_path / "spin.py"
    f.write_text(SPIN.format(first=us(1), again=""))
    with pytest.raises(CCPluginError, match=r"cc 'spin' armed timer 0 at t=1000000 ps \(QP \d+, event timer, "
                                            r"t=1000000 ps\): a timer must be later than now"):
        Scenario(**{**TINY, "cc": f"{f}:Spin"}).run(tmp_path / "out")
    assert "cc 'spin' armed timer 0" in load_run(tmp_path / "out").counters["error"]


def test_plugin_arming_a_timer_at_or_before_now_is_stopped(tmp_path):
    """The QPs start at t = 0: a deadline of now - 1 ps (written as -1: "off") runs to the end;
    a deadline of now (0) is refused at the start event."""
    off, now = tmp_path / "off.py", tmp_path / "now.py"
    off.write_text(SPIN.format(first=-1, again=""))
    assert_conserved(Scenario(**{**TINY, "cc": f"{off}:Spin"}).run())
    now.write_text(SPIN.format(first=0, again=" + 1"))
    with pytest.raises(CCPluginError, match=r"cc 'spin' armed timer 0 at t=0 ps \(QP \d+, event start"):
        Scenario(**{**TINY, "cc": f"{now}:Spin"}).run()


def test_plugin_timer_one_microsecond_ahead_is_legal(tmp_path):
    """The rule is "later than now": a timer re-armed 1 us ahead on every firing runs to the end."""
    f = tmp_path / "ahead.py"
    f.write_text(SPIN.format(first=us(1), again=" + 1_000_000"))
    r = Scenario(**{**TINY, "cc": f"{f}:Spin"}).run()
    assert_conserved(r)


def test_no_progress_at_one_instant_stops_the_run_naming_the_event():
    """With a stall limit of 1 event per picosecond: every sender starts at t = 0 and finishes
    serializing its first frame (4194 wire bytes at 100 Gb/s = 335,520 ps) at the same instant,
    so the second serializer completion (host 2's port, port 4) is one event too many."""
    net = Scenario(**TINY).build()
    net.sim.set_stall_limit(1)
    with pytest.raises(SimError, match=r"no progress: 1 events ran at t=335520 ps \(the stall limit\), the next a "
                                       r"tx_done event \(port 4\) at the same instant"):
        net.run()
    with pytest.raises(SimError, match="no progress"):      # sticky: the run cannot go on
        net.sim.run_until(net.sim.now + 1)


def test_a_synchronized_incast_is_far_below_the_stall_limit():
    """The largest legitimate burst: N senders in lockstep (same start, rates and delays) have
    their events at the same instants, about one per sender (measured: N + 1 at most for
    N = 4..256), so a limit of 2N passes for a 256:1 incast; the default limit is 10^7 + 16 per
    port, QP and host."""
    n = 256
    sc = Scenario(topology=star(n + 1), workload={"kind": "incast", "senders": n, "size_bytes": KB(16)}, cc="none",
                  sample_interval_ps=0, monitor_ports="none")
    net = sc.build()
    net.sim.set_stall_limit(2 * n)
    assert_conserved(net.run())


# ---------------------------------------------------------------- property: refused or ends
TIME_FIELDS = ["duration_ps", "max_duration_ps", "sample_interval_ps", "rto_ps", "cnp_interval_ps", "max_events",
               "max_wall_s", "transport_params.rto_low_ps", "failures[0].down_ps"]
VALUES = st.one_of(st.integers(min_value=-2**70, max_value=2**70),
                   st.integers(min_value=0, max_value=10**16).map(float),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0, 1, 100_000, 10**6, 10**15, 10**15 + 1, 2**63, -0.0, 1e-300]),
                   st.text(max_size=4), st.booleans(), st.none())


def _with(field: str, value) -> Scenario:
    kw = dict(TINY, cc="dcqcn", max_wall_s=60)
    if field.startswith("transport_params."):
        kw.update(transport="sr", transport_params={"rto_low_ps": value})
    elif field.startswith("failures[0]."):                  # an idle fourth host's link fails
        kw.update(topology=star(4), failures=[{"link": 3, "down_ps": value}])
    else:
        kw[field] = value
    return Scenario(**kw)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(TIME_FIELDS), value=VALUES)
def test_any_time_value_is_refused_naming_the_field_or_the_run_ends(field, value):
    """Whatever a user writes in a time or budget field: a ValueError that starts with the field's
    name, or a run that ends (completes, or stops at its budget: BudgetExceeded)."""
    try:
        r = _with(field, value).run()
    except ValueError as e:
        assert str(e).startswith(f"{field} must be "), str(e)
        return
    except BudgetExceeded as e:
        assert field in ("max_events", "max_wall_s") or e.budget == "max_wall_s", str(e)
        return
    assert r.sim_ps >= 0
    # what was accepted is in range
    lim = limits.TABLE[field.replace("[0]", "[]")]
    if value is not None and not (lim.zero_off and value == 0):
        assert lim.min <= value <= lim.max and (lim.kind == "seconds" or float(value).is_integer())
    assert not (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------- the wall budget, checked often
def test_the_data_planes_wall_budget_stops_between_events_and_resumes_exactly():
    """Simulator.set_wall_budget: a deadline already past (1 ns, 50 ms ago) stops run_until with STOP_WALL
    before the first event; with the budget off (0) the run resumes and ends exactly like a run
    that never had one (the stop is between two events: nothing is lost or repeated)."""
    from dataplane.sim import STOP_WALL
    plain = Scenario(**TINY).run()
    net = Scenario(**{**TINY, "max_wall_s": 0}).build()
    sim = net.sim
    sim.set_wall_budget(1e-9)
    import time
    time.sleep(0.05)                    # well past the deadline, also by a coarse clock (1-4 ms ticks)
    assert sim.run_until(10**12) == STOP_WALL
    assert sim.events == 0
    sim.set_wall_budget(0)
    r = net.run()
    assert r.counters == plain.counters
    with pytest.raises(ValueError, match=r"wall budget must be a number of seconds in \[0, 1e9\], got nan"):
        sim.set_wall_budget(float("nan"))


SLOW = """
import time
from congestion.api import CongestionControl
class Slow(CongestionControl):
    name = "slow"
    calls = 0
    def on_start(self, st, ev):
        ev.timer_at[0] = ev.now_ps + 1_000_000
    def on_timer(self, st, ev):
        Slow.calls += 1
        if Slow.calls > {limit}:
            raise RuntimeError("the wall budget did not stop the run")
        time.sleep({sleep})
        ev.timer_at[0] = ev.now_ps + 1_000_000
"""


def test_max_wall_s_stops_a_run_of_slow_events_soon_after_its_budget(tmp_path):
    """Events that are slow (a plug-in whose timer callback takes 5 ms): the wall clock used to be
    read only every CHUNK_EVENTS = 65,536 events, 330 s of such events, so a 0.2 s budget was
    overrun by minutes. Now the data plane reads it after every plug-in call: the run stops with
    BudgetExceeded and its partial results. The plug-in raises at its 400th call, 2 s of sleeps
    (10 x the budget): reaching it means the budget was not enforced."""
    f = tmp_path / "slow.py"
    f.write_text(SLOW.format(limit=400, sleep=0.005))
    # 2 x 16 MB at 100 Gb/s: 2.7 ms of simulated time, a timer call per simulated microsecond
    sc = Scenario(**{**TINY, "cc": f"{f}:Slow", "max_wall_s": 0.2,
                     "workload": {"kind": "incast", "senders": 2, "size_bytes": MB(16)}})
    with pytest.raises(BudgetExceeded, match=r"the run budget max_wall_s = 0.2 s is used up") as e:
        sc.run(tmp_path / "out")
    assert e.value.budget == "max_wall_s"
    partial = load_run(tmp_path / "out")
    assert "max_wall_s" in partial.counters["error"]
    assert partial.counters["conservation_ok"] == 1


def test_each_run_of_a_network_has_its_own_wall_budget():
    """max_wall_s is per run: the budget of a second run of one network (here after 100 s of the
    loop's clock and 0.4 s of real time between the runs, longer than the 0.3 s budget) starts
    when that run starts; it used to count from the first run's start and stop the second at once."""
    import time
    now = [0.0]
    net = Scenario(**{**TINY, "max_wall_s": 0.3}).build()
    net.loop.clock = lambda: now[0]
    assert_conserved(net.run())
    now[0] += 100.0
    time.sleep(0.4)
    assert_conserved(net.run())


def test_each_collectives_run_has_its_own_wall_budget():
    """The same for the collectives Runner: two all-reduces run one after the other on one
    network, 100 s of the loop's clock apart, each within a 10 s budget."""
    from controlplane.ai import collectives as C
    from controlplane.ai.rails import Gpu
    from controlplane.config.units import Gbps
    sc = Scenario(topology={"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": us(1),
                            "num_rails": 1, "servers_per_leaf": 2, "leaves_per_rail": 1, "spines_per_rail": 1,
                            "cores_per_group": 1},
                  workload={"kind": "flows", "flows": []}, cc="none", sample_interval_ps=0, max_wall_s=10)
    net = C.network(sc)
    now = [0.0]
    net.loop.clock = lambda: now[0]
    ranks = [Gpu(0, 0), Gpu(1, 0)]
    first = C.Runner(net).run([C.ring_all_reduce(net, ranks, KB(64))])[0]
    now[0] += 100.0
    second = C.Runner(net).run([C.ring_all_reduce(net, ranks, KB(64))])[0]
    assert first.iterations == second.iterations == 1


def test_a_collective_experiment_stopped_by_its_budget_writes_its_partial_results(tmp_path, capsys):
    """allreduce_busbw with max_events = 5,000: the 64 KB point (fewer events) completes, the
    256 KB one stops. Like a single run: one line "the run stopped: ... max_events", exit 1, and
    the results so far: the CSV with the completed row, the stopped run's folder (counters.json
    with the error) and collectives.json saying how far the all-reduce got. Before, nothing but
    params.json was written although the message said the results were there."""
    import csv
    from controlplane.run.cli import main
    out = tmp_path / "ar"
    rc = main(["run", "allreduce_busbw", "--set", "max_events=5000", "--set", "seeds=1", "--set", "max_size=262144",
               "--set", 'algos=["ring"]', "--set", 'variants=["ecmp"]', "--no-plots", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("softdpu: the run stopped: the run budget max_events = 5,000 is used up"), err
    assert "Traceback" not in "\n".join(err)
    rows = list(csv.DictReader(open(out / "allreduce_busbw.csv")))
    assert [int(r["size_bytes"]) for r in rows] == [65536]
    stopped = load_run(out / "allreduce-ring-ecmp")
    assert "max_events" in stopped.counters["error"] and stopped.counters["events"] == 5000
    progress = json.loads((out / "allreduce-ring-ecmp" / "collectives.json").read_text())
    assert progress[0]["size_bytes"] == 262144 and 0 < progress[0]["transfers_done"] < progress[0]["transfers"]
    assert progress[0]["finished"] is False
