"""The control loop (controlplane/run/control_loop.py): controllers registered with one clock.

What is checked: dispatch order (time, then registration order; the built-ins first), the refusal
of a controller that asks to fire again at or before the time it just fired at (named), the run
budget with controllers registered (BudgetExceeded with the partial results), that a passive
controller's extra stops change nothing, that the collectives Runner is a controller of the same
loop (its networks now get the DPU slow path's revalidation, tick hooks and users' controllers),
and the worked example of docs/controllers.md (a controller reweighting a sprayed QP's paths from
per-entropy RTT telemetry)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from controlplane.ai import collectives as C
from controlplane.run.control_loop import Controller, ControllerError, Periodic
from controlplane.run.scenario import Scenario
from controlplane.config.units import KB, us
from dataplane.sim import STOP_COMPLETIONS, STOP_IDLE, STOP_TIME, STOP_UPCALL, BudgetExceeded, SimError
from support import star

REPO = Path(__file__).resolve().parents[1]


def incast(**kw) -> Scenario:
    """4:1 incast of 64 KB each on a star (it ends at 27 us)."""
    return Scenario(**{"workload": {"kind": "incast", "senders": 4, "size_bytes": KB(64)},
                       "topology": star(5), "sample_interval_ps": us(10), **kw})


class Recorder(Controller):
    """Fires at the given times, recording (name, now, samples taken so far) in a shared log."""

    def __init__(self, name: str, times: list[int], log: list):
        self.name, self.times, self.log = name, list(times), log

    def next_time(self, now):
        return self.times[0] if self.times else None

    def fire(self, net, now):
        self.log.append((self.name, now, len(net.loop.samples["t"])))
        while self.times and self.times[0] <= now:
            self.times.pop(0)


def test_dispatch_is_by_time_then_registration_order_after_the_builtins():
    """Two controllers due at the same picoseconds fire in the order they were registered, whatever
    their times elsewhere; at a sample tick both see that tick's sample taken (the sampler is a
    built-in, registered before them); the built-ins are listed first."""
    net = incast().build()
    log: list = []
    net.loop.register(Recorder("b", [us(5), us(10), us(20)], log))
    net.loop.register(Recorder("a", [us(3), us(10), us(20)], log))
    assert net.loop.describe() == ["failures", "sampler", "tick_hooks", "b", "a"]
    net.run()
    # expected: sorted by time, ties (10 us, 20 us) in registration order b then a; at 10 us and
    # 20 us the sampler's row of that tick exists already (1 and 2 rows), at 3 and 5 us none
    assert log == [("a", us(3), 0), ("b", us(5), 0), ("b", us(10), 1), ("a", us(10), 1),
                   ("b", us(20), 2), ("a", us(20), 2)]


def test_a_controller_that_asks_for_now_again_is_refused_by_name():
    """A controller that fired at 5 us and still asks for 5 us would hold simulated time still;
    the loop stops the run with ControllerError naming it, and Network.run attaches the partial
    results (the run reached 5 us)."""

    class Stuck(Controller):
        name = "stuck-probe"

        def next_time(self, now):
            return us(5)

    net = incast().build()
    net.loop.register(Stuck())
    with pytest.raises(ControllerError, match=r"controller 'stuck-probe' fired at t=5000000 ps and asks to fire "
                                              r"again at t=5000000 ps") as e:
        net.run()
    assert e.value.partial.counters["sim_time_ps"] == us(5)
    assert "stuck-probe" in e.value.partial.counters["error"]


def test_a_periodic_controller_keeps_its_grid_and_its_name():
    net = incast().build()
    seen: list = []

    def probe(n):
        seen.append(n.sim.now)

    ctl = net.loop.register(Periodic(us(7), probe))
    assert ctl.name == "probe"
    net.run()
    end = net.sim.now
    # expected: every multiple of 7 us up to the end of the run (the last message's completion)
    assert seen == list(range(us(7), end + 1, us(7)))
    with pytest.raises(ValueError, match="interval_ps must be a positive integer"):
        Periodic(0, probe)


def test_a_passive_controller_changes_nothing():
    """Extra stops of the data plane (a controller every 1 us that only reads) give bit-identical
    results: the data plane's state does not depend on where it is stopped. Only where the run
    ends moves: Network.run ends at the first stop after the last completion (26 us with the
    controller, the 30 us sample tick without), so sim_time_ps and the closing row of the time
    series differ; every sample tick both have is identical."""
    plain = incast().run()
    net = incast().build()
    reads: list = []
    net.loop.register(Periodic(us(1), lambda n: reads.append(int(n.sim.qps["acked_bytes"].sum()))))
    with_ctl = net.run()
    assert len(reads) > 20
    def strip(c):
        # wall-clock time differs; the run ends at the first stop after the last completion
        return {k: v for k, v in c.items() if "wall" not in k and k != "sim_time_ps"}
    assert strip(with_ctl.counters) == strip(plain.counters)
    assert with_ctl.counters["sim_time_ps"] == us(26) and plain.counters["sim_time_ps"] == us(30)
    for k in plain.flows:
        np.testing.assert_array_equal(with_ctl.flows[k], plain.flows[k], err_msg=k)
    ta, tb = plain.timeseries, with_ctl.timeseries
    assert list(ta["t_ps"]) == [us(10), us(20), us(30)] and list(tb["t_ps"]) == [us(10), us(20), us(26)]
    for k in ta:
        rows = 2 if ta[k].ndim == 2 or k == "t_ps" else None           # per-tick arrays: the common ticks
        np.testing.assert_array_equal(tb[k][:rows], ta[k][:rows], err_msg=k)


def test_the_event_budget_stops_a_run_with_controllers_and_keeps_the_partial_results():
    """max_events = 200 (the whole run takes 380) with a controller ticking every 2 us: the run
    stops after exactly 200 events (the data plane stops between two events), with BudgetExceeded and the partial results;
    the controller fired only at times the run reached."""
    net = incast(max_events=200).build()
    seen: list = []
    net.loop.register(Periodic(us(2), lambda n: seen.append(n.sim.now)))
    with pytest.raises(BudgetExceeded, match="max_events = 200 is used up") as e:
        net.run()
    assert net.sim.events == 200
    assert e.value.partial.counters["events"] == 200
    assert seen and max(seen) <= e.value.sim_ps


def test_on_start_and_on_end_bracket_a_run_and_busy_keeps_an_idle_run_going():
    """on_start once before the first step, on_end once after the run. A busy controller keeps
    Network.run going through an idle data plane until it fired (then it is not busy any more)."""
    calls: list = []

    class Late(Controller):
        name = "late"

        def __init__(self):
            self.due = us(500)               # long after the incast finished (27 us)

        def next_time(self, now):
            return self.due

        def fire(self, net, now):
            calls.append(("fire", now))
            self.due = None

        def busy(self):
            return self.due is not None

        def on_start(self, net):
            calls.append(("start", net.sim.now))

        def on_end(self, net):
            calls.append(("end", net.sim.now))

    net = Scenario(workload={"kind": "incast", "senders": 4, "size_bytes": KB(64)}, topology=star(5),
                   sample_interval_ps=0, duration_ps=us(1000)).build()
    net.loop.register(Late())
    net.run()
    assert calls == [("start", 0), ("fire", us(500)), ("end", net.sim.now)]


def test_an_idle_data_plane_is_advanced_to_a_busy_controllers_time():
    """Nothing in the data plane and a busy controller due at 40 us: the first step stops idle at
    t=0 (STOP_IDLE, nothing fired: a driver that is done, such as Network.run once every message
    completed, ends its run at the last event); the next step, the driver going on, moves the clock
    to 40 us (Simulator.advance_idle) and fires the controller there (STOP_TIME). Before the loop
    advanced an idle data plane, every step returned STOP_IDLE at t=0 and a driver waiting on that
    controller (a compute delay of the collectives Runner) stood still forever. The golden
    link_failure scenario (tests/golden) checks the first half: its run ends at its last event,
    1.1 ms, not at the failure plan's reconvergence at 5.02 ms."""
    fired: list = []

    class Due(Controller):
        name = "due"

        def __init__(self):
            self.due = us(40)

        def next_time(self, now):
            return self.due

        def fire(self, net, now):
            fired.append(now)
            self.due = None

        def busy(self):
            return self.due is not None

    net = C.network(Scenario(topology=star(2), workload={"kind": "flows", "flows": []}, sample_interval_ps=0))
    net.loop.register(Due())
    assert net.loop.step(us(1000)) == STOP_IDLE and net.sim.now == 0 and fired == []
    assert net.loop.step(us(1000)) == STOP_TIME
    assert fired == [us(40)] and net.sim.now == us(40) and net.sim.events == 0
    # not busy any more: the next steps go no further than the last event (none)
    assert net.loop.step(us(1000)) == STOP_IDLE and net.loop.step(us(1000)) == STOP_IDLE
    assert net.sim.now == us(40)


def test_advance_idle_refuses_a_busy_data_plane_and_the_past():
    """Simulator.advance_idle moves the clock of an idle data plane only: ValueError for a time before
    now (an argument out of range, as run_until), SimError while an event is pending (a posted
    WRITE: the data plane's state, SD_ESTATE; it was an argument error, SD_EINVAL, hence a
    ValueError, against the method's docstring); the clock stays where it was."""
    net = C.network(Scenario(topology=star(2), workload={"kind": "flows", "flows": []}, cc="none",
                             sample_interval_ps=0))
    sim = net.sim
    sim.advance_idle(us(3))                                      # idle: allowed, and to now as well
    sim.advance_idle(us(3))
    assert sim.now == us(3)
    with pytest.raises(ValueError, match=rf"advance_idle: t_ps={us(3) - 1} is before now \({us(3)}\)"):
        sim.advance_idle(us(3) - 1)
    qp = net.open_qp(0, 1)
    sim.post_writes(np.array([qp]), np.array([KB(8)]), np.array([us(5)]))
    with pytest.raises(SimError, match=r"advance_idle: the data plane is not idle \(an event or upcall is pending\)"):
        sim.advance_idle(us(50))
    assert sim.now == us(3)


# ------------------------------------------------------------------ collectives on the same loop
def _dpu_scenario() -> Scenario:
    """4 DPU hosts with a busy slow path: per-connection megaflows, revalidation every 20 us,
    megaflows idle for 40 us evicted, a flow limit of 2 per DPU until a revalidation adapts it."""
    return Scenario(topology=star(4), workload={"kind": "flows", "flows": []}, cc="dcqcn", sample_interval_ps=us(10),
                    dpu={"tenants": 1, "policy": {"per_connection": True},
                         "slow_path": {"revalidate_interval_ps": us(20), "max_idle_ps": us(40), "flow_limit": 2}})


def test_a_collective_gets_revalidation_tick_hooks_and_users_controllers():
    """A collective (two waves of transfers on four host pairs, the second at 200 us) on a DPU
    scenario, run by the collectives Runner: the slow path revalidates every 20 us during it (the
    first wave's megaflows go idle and are evicted; OVS's rules raise the flow limit from 2 to
    1002, controlplane/dpu/vswitch.py), the tick hooks run at every 10 us sample tick, a user's
    controller fires and sees the completion stops, and the Runner's own controller is listed last
    while it runs and gone after."""
    net = C.network(_dpu_scenario())
    hooks: list = []
    net.tick_hooks.append(lambda n: hooks.append(n.sim.now))
    stops: list = []
    order: list = []

    class Watch(Controller):
        name = "watch"

        def __init__(self):
            self.next = us(15)

        def next_time(self, now):
            return self.next

        def fire(self, net, now):
            order.append(list(net.loop.describe()))
            self.next = now + us(15)

        def on_stop(self, net, reason):
            stops.append(reason)

    net.loop.register(Watch())
    sched = C.Schedule("waves", "all_to_all", 4, KB(300))
    for s, d in [(1, 0), (2, 0), (3, 1), (0, 2)]:
        sched.add(C.Transfer(s, d, KB(200), delay_ps=0))
        sched.add(C.Transfer(s, d, KB(100), delay_ps=us(200)))
    r = C.Runner(net).run([sched])[0]
    end = net.sim.now
    assert r.iterations == 1 and end > us(200)
    slow = net.vswitch.slow
    assert slow.evictions > 0                                    # revalidation ran during the collective
    # OVS udpif_revalidator: a quick dump raises the limit by 1000 per revalidation (from 2)
    assert min(slow.flow_limit.values()) >= 1002
    assert hooks == list(range(us(10), end + 1, us(10)))        # every sample tick up to the end
    assert net.loop.samples["t"] == hooks
    assert STOP_COMPLETIONS in stops and STOP_UPCALL in stops
    assert order[0] == ["failures", "vswitch", "sampler", "tick_hooks", "watch", "collectives"]
    assert net.loop.describe() == ["failures", "vswitch", "sampler", "tick_hooks", "watch"]


# ------------------------------------------------------------------ the worked example of docs/controllers.md
def test_the_documented_reweighting_controller_moves_traffic_off_the_busy_spines():
    """docs/controllers.md's example, run as printed: a QP sprayed over 8 entropies on a 2 x 4
    leaf-spine whose spines 0 and 2 carry ECMP background flows, with and without a controller
    that weights each entropy by (best RTT / its RTT)^2 every 20 us. Expected: the entropies
    through the background flows' spines queue behind them, so their RTTs are larger and the
    controller gives them less weight than any entropy through the idle spine, fewer of the QP's
    packets take them, and the QP, which finishes when its slowest path has delivered, finishes
    sooner. (The run as printed in the page: 49.8 % -> 18.3 % of its packets on those spines, FCT
    448.3 -> 309.2 us; the test asserts the directions, with a 10 % margin on the FCT.)"""
    text = (REPO / "docs" / "controllers.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(b for b in blocks if "class RttReweight" in b)
    ns: dict = {}
    exec(compile(example, "docs/controllers.md", "exec"), ns)      # noqa: S102 - the documented example
    spine, background, ctl = ns["spine"], set(ns["background"]), ns["ctl"]
    busy = np.array([s in background for s in spine])
    assert busy.any() and (~busy).any()
    lowest = np.min([w for _, w in ctl.history], axis=0)
    assert lowest[busy].max() < lowest[~busy].min()
    share = lambda sent: sent[busy].sum() / sent.sum()               # noqa: E731
    assert share(ns["sent_with"]) < share(ns["sent_without"]) / 2
    assert ns["fct_with"] < 0.9 * ns["fct_without"]
