"""The control loop: one clock for everything the control plane does between two runs of the data plane.

A :class:`Controller` declares when it next wants to act (:meth:`Controller.next_time`), what it
does then (:meth:`Controller.fire`) and how it reacts when the data plane stops on its own
(:meth:`Controller.on_stop`: vSwitch misses waiting for the slow path, message completions to
drain, a time or idle stop). The loop (:class:`ControlLoop`, one per
:class:`~controlplane.run.scenario.Network`, ``net.loop``) runs the data plane up to the earliest time
any controller asked for, or to an earlier stop, and dispatches. Everything time-driven in the
control plane is a controller registered with it:

=====================  ==========================================================================
``failures``           the failure plan (controlplane/fabric/failures.py): links down/up, NIC failover after
                       detection, routing reconvergence
``vswitch``            the DPU slow path (controlplane/dpu/vswitch.py): upcall handling at upcall stops;
                       revalidation (idle eviction, re-translation, flow-limit adaptation) each
                       ``revalidate_interval_ps``; only on DPU scenarios
``sampler``            the time series (``sample_interval_ps``; ``net.loop.samples``)
``tick_hooks``         the compatibility adapter of ``net.tick_hooks``: each callable(net) runs at
                       every sample tick, after the sample
=====================  ==========================================================================

then, in the order they register, users' controllers (``net.loop.register(c)``: path-policy
controllers, experiments' probes) and the collectives Runner (controlplane/ai/collectives.py), which
registers itself for the duration of :meth:`~controlplane.ai.collectives.Runner.run` and posts the
next transfers from its :meth:`~Controller.on_stop` at completion stops. ``docs/controllers.md``
shows how to write one.

Dispatch, deterministic (one scenario + one seed = the same calls in the same order):

1. The loop runs the data plane to ``t = min(limit, every controller's next_time(now))`` (never
   before ``now``: a time in the past means "now").
2. At an upcall stop or a completion stop the data plane may still hold events of that very
   instant: no controller fires; each gets ``on_stop(net, reason)``, in registration order.
3. At any other stop (the time was reached, the data plane went idle, ...) every event up to
   ``now`` has run. Each controller whose ``next_time(now) <= now`` fires, in registration order
   (a tie between two controllers due at the same picosecond goes to the one registered first;
   the built-ins come before any user's controller). Then each controller gets ``on_stop``.
4. After a controller fired at ``now`` it must ask for a later time (or None): one that asks for
   ``now`` or earlier again would hold simulated time still forever, so the loop raises
   :class:`ControllerError` naming it (the model is the data plane's guard against a
   congestion-control timer armed at or before now, congestion/api.py).

The run budgets are the loop's: the data plane stops at ``max_events`` and returns every
``CHUNK_EVENTS`` events so that ``max_wall_s`` is checked inside a long step; either raises
:class:`~dataplane.sim.BudgetExceeded`, and :meth:`~controlplane.run.scenario.Network.run` attaches the
partial results (``exc.partial``) as for any run that fails.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from dataplane.sim import STOP_COMPLETIONS, STOP_EVENTS, STOP_IDLE, STOP_TIME, STOP_MAX_EVENTS, STOP_UPCALL, STOP_WALL, BudgetExceeded

# The data plane returns to the control loop at least every CHUNK_EVENTS events, so that the wall-
# clock budget is checked even when the next control step is far away (sample_interval_ps = 0):
# 2^16 events are about 26 ms with a C twin (2.5 M events/s), 0.13 s through a Python plug-in.
CHUNK_EVENTS = 1 << 16

class ControllerError(RuntimeError):
    """A controller broke the loop's contract (it asked to act again at or before the time it just
    acted at); the message names it. Network.run attaches the partial results (``partial``)."""


class Controller:
    """Something the control plane does at times it chooses, or when the data plane stops.

    Subclass and override what you need; every method has a do-nothing default. ``name`` is what
    errors and :meth:`ControlLoop.describe` call it (default: the class name).

    - :meth:`next_time`: the next simulated time (integer ps) at which it wants :meth:`fire`, or
      None for "no time of my own". Asked before every step, so it may change its mind.
    - :meth:`fire`: act at ``now``; every data-plane event up to ``now`` has run. Afterwards
      :meth:`next_time` must be later than ``now`` (or None).
    - :meth:`on_stop`: the data plane stopped (``reason`` is one of dataplane.sim's STOP_*:
      STOP_UPCALL, STOP_COMPLETIONS, STOP_TIME, STOP_IDLE); called at every stop, after any firing.
    - :meth:`busy`: True while it has scheduled work that may still change the data plane (a
      failure to come, a message to post): an idle data plane does not end Network.run while a
      registered controller is busy. A periodic observer is never busy (the default).
    - :meth:`on_start` / :meth:`on_end`: around one driver's run (Network.run, Runner.run); a
      controller registered while a run is on gets :meth:`on_start` at registration.
    - An idle data plane (nothing left to run) stops the step there; if the driver steps again at
      that time while a controller is busy (a compute task of the collectives to end, a failure
      to come), the loop moves the clock to the next controller time (:meth:`ControlLoop.step`).
    """

    name: str | None = None

    def next_time(self, now: int) -> int | None:
        return None

    def fire(self, net, now: int) -> None:
        pass

    def on_stop(self, net, reason: int) -> None:
        pass

    def busy(self) -> bool:
        return False

    def on_start(self, net) -> None:
        pass

    def on_end(self, net) -> None:
        pass


class Periodic(Controller):
    """A controller that acts every ``interval_ps``, first at ``first_ps`` (default: one interval
    from the time it is registered), calling ``action(net)`` (or override :meth:`tick`). The
    ticks stay on the grid first_ps + k x interval_ps whatever the stops in between."""

    def __init__(self, interval_ps: int, action: Callable | None = None, first_ps: int | None = None,
                 name: str | None = None):
        if isinstance(interval_ps, bool) or not isinstance(interval_ps, (int, np.integer)) or interval_ps <= 0:
            raise ValueError(f"interval_ps must be a positive integer (ps), got {interval_ps!r}")
        if first_ps is not None and (isinstance(first_ps, bool) or not isinstance(first_ps, (int, np.integer))
                                     or first_ps < 0):
            raise ValueError(f"first_ps must be an integer time >= 0 (ps), got {first_ps!r}")
        self.interval = int(interval_ps)
        self.action = action
        self.next_tick = None if first_ps is None else int(first_ps)
        self.name = name or (getattr(action, "__name__", None) if action is not None else None) or type(self).__name__

    def on_start(self, net) -> None:
        if self.next_tick is None:
            self.next_tick = int(net.sim.now) + self.interval

    def next_time(self, now: int) -> int | None:
        return self.next_tick

    def fire(self, net, now: int) -> None:
        self.tick(net, now)
        self.next_tick = (now - self.next_tick) // self.interval * self.interval + self.next_tick + self.interval

    def tick(self, net, now: int) -> None:
        if self.action is None:
            raise NotImplementedError(f"{self.name}: give an action or override tick(net, now)")
        self.action(net)


# ------------------------------------------------------------------ the built-in controllers
class FailureController(Controller):
    """The failure plan (controlplane/fabric/failures.py) on the loop: its queued actions (down, up,
    detect, reconverge) at their times. A failure due at the instant of an upcall stop is applied
    before the slow path handles the upcalls (as it always was)."""

    name = "failures"

    def __init__(self, plan):
        self.plan = plan

    def next_time(self, now: int) -> int | None:
        return self.plan.next_time()

    def fire(self, net, now: int) -> None:
        self.plan.apply_due(now)

    def on_stop(self, net, reason: int) -> None:
        if reason == STOP_UPCALL:
            self.plan.apply_due(net.sim.now)

    def busy(self) -> bool:
        return self.plan.next_time() is not None


class SlowPathController(Controller):
    """The DPUs' slow path (controlplane/dpu/vswitch.py SlowPath): upcalls at upcall stops,
    revalidation (idle eviction, re-translation, flow-limit adaptation) each interval."""

    name = "vswitch"

    def __init__(self, slow):
        self.slow = slow

    def next_time(self, now: int) -> int | None:
        return self.slow.next_time()

    def fire(self, net, now: int) -> None:
        self.slow.revalidate()

    def on_stop(self, net, reason: int) -> None:
        if reason == STOP_UPCALL:
            self.slow.handle()


class Sampler(Controller):
    """The time series of a run: one row per ``sample_interval_ps`` tick (0 = none): per sender QP
    its pacing rate, acked bytes, window and CNPs; per monitored port its queue, ECN marks, drops,
    bytes sent and pauses."""

    name = "sampler"
    KEYS = ("t", "rate", "acked", "win", "cnp", "q", "ecn", "drop", "tx", "pause")

    def __init__(self, net):
        self.net = net
        self.interval = int(net.scenario.sample_interval_ps)
        if self.interval < 0:
            raise ValueError("sample_interval_ps must be >= 0")
        self.ports = net.monitored_ports()
        self.next_sample = self.interval
        self.samples: dict[str, list] = {k: [] for k in self.KEYS}

    def next_time(self, now: int) -> int | None:
        return self.next_sample if self.interval else None

    def fire(self, net, now: int) -> None:
        self.sample()
        self.next_sample = (now // self.interval + 1) * self.interval

    def sample(self) -> None:
        """Record one row of the time series at the current time."""
        sim, s = self.net.sim, self.samples
        q, p = sim.qps[self.net.sender_qps], sim.ports[self.ports]
        s["t"].append(sim.now)
        # the pacing rate of a QP with nothing outstanding means nothing: leave a gap
        s["rate"].append(np.where(q["posted_bytes"] > q["acked_bytes"], q["rate_bps"], np.nan))
        s["acked"].append(q["acked_bytes"].astype(np.int64))
        s["win"].append(q["window_bytes"].astype(np.float64))
        s["cnp"].append(q["cnps_rx"].astype(np.int64))
        s["q"].append((p["q_bytes"][:, 0] + p["q_bytes"][:, 1]).astype(np.int64))
        s["ecn"].append(p["ecn_marked"].astype(np.int64))
        s["drop"].append((p["dropped"] + p["down_drops"]).astype(np.int64))
        s["tx"].append(p["tx_bytes"].astype(np.int64))
        s["pause"].append(p["pauses"].astype(np.int64))


class TickHooks(Controller):
    """``net.tick_hooks`` (callables(net)) on the loop: all of them, in list order, at every
    sample tick (after the sample), as before the loop had controllers. New code registers a
    :class:`Periodic` or its own :class:`Controller` instead: its own interval, and no sampling
    needed."""

    name = "tick_hooks"

    def __init__(self, net):
        self.net = net
        self.interval = int(net.scenario.sample_interval_ps)
        self.next_tick = self.interval

    def next_time(self, now: int) -> int | None:
        return self.next_tick if self.interval else None

    def fire(self, net, now: int) -> None:
        self.next_tick = (now // self.interval + 1) * self.interval
        for hook in net.tick_hooks:
            hook(net)


# ------------------------------------------------------------------ the loop
class ControlLoop:
    """The control plane's clock, one per :class:`~controlplane.run.scenario.Network` (``net.loop``).
    Every driver (:meth:`Network.run <controlplane.run.scenario.Network.run>`, the collectives Runner,
    a test stepping by hand) advances the data plane only through :meth:`step`, so every
    controller acts at the same simulated times whichever drives. The module docstring gives the
    dispatch rules."""

    KEYS = Sampler.KEYS

    def __init__(self, net):
        self.net = net
        sc = net.scenario
        self.controllers: list[Controller] = []
        self.started = False
        self._idle_at: int | None = None         # the time of the last step's idle stop (None: it was not one)
        self.failures = self.register(FailureController(net.failures))
        self.slow_path = self.register(SlowPathController(net.vswitch.slow)) if net.vswitch is not None else None
        self.sampler = self.register(Sampler(net))
        self.hooks = self.register(TickHooks(net))
        # the run budget: max_events and the max_wall_s deadline in the data plane (it stops between
        # two events; it reads a cheap clock every few hundred events and after every Python plug-in
        # call), max_wall_s also here, checked before each step and every CHUNK_EVENTS events
        self.max_events, self.max_wall_s = int(sc.max_events), float(sc.max_wall_s)
        net.sim.set_run_budget(self.max_events, CHUNK_EVENTS if self.max_wall_s > 0 else 0)
        self.wall0: float | None = None

    # -------------------------------------------------------------- registration
    def register(self, controller: Controller) -> Controller:
        """Add ``controller`` after every one registered so far (it wins no tie against them);
        returns it. A controller is registered once."""
        for name in ("next_time", "fire", "on_stop"):
            if not callable(getattr(controller, name, None)):
                raise TypeError(f"register: {controller!r} is not a Controller (it has no {name}())")
        if any(c is controller for c in self.controllers):
            raise ValueError(f"register: controller {self.name_of(controller)!r} is already registered")
        self.controllers.append(controller)
        if self.started and hasattr(controller, "on_start"):
            controller.on_start(self.net)
        return controller

    def unregister(self, controller: Controller) -> None:
        """Remove ``controller`` (its on_end is called if a run is on)."""
        for i, c in enumerate(self.controllers):
            if c is controller:
                del self.controllers[i]
                if self.started and hasattr(controller, "on_end"):
                    controller.on_end(self.net)
                return
        raise ValueError(f"unregister: controller {self.name_of(controller)!r} is not registered")

    @staticmethod
    def name_of(c) -> str:
        return getattr(c, "name", None) or type(c).__name__

    def describe(self) -> list[str]:
        """The registered controllers' names, in dispatch order."""
        return [self.name_of(c) for c in self.controllers]

    def start(self) -> None:
        """Begin a driver's run: on_start of every controller (once; :meth:`step` calls it)."""
        if not self.started:
            self.started = True
            for c in list(self.controllers):
                if hasattr(c, "on_start"):
                    c.on_start(self.net)

    def end(self) -> None:
        """End a driver's run: on_end of every controller (the next step starts a new run)."""
        self._idle_at = None
        if self.started:
            self.started = False
            for c in list(self.controllers):
                if hasattr(c, "on_end"):
                    c.on_end(self.net)

    def busy(self) -> bool:
        """Does a controller still have work that may change the data plane?"""
        return any(c.busy() for c in self.controllers if hasattr(c, "busy"))

    # -------------------------------------------------------------- sampling (the Sampler's, kept here)
    @property
    def interval(self) -> int:
        return self.sampler.interval

    @property
    def ports(self):
        return self.sampler.ports

    @property
    def samples(self) -> dict[str, list]:
        return self.sampler.samples

    @property
    def next_sample(self) -> int:
        return self.sampler.next_sample

    def sample(self) -> None:
        """Record one row of the time series now (see :class:`Sampler`)."""
        self.sampler.sample()

    # -------------------------------------------------------------- budget
    def start_run(self) -> None:
        """A run starts now: its wall-clock budget (``max_wall_s``) counts from here. Network.run and
        the collectives Runner call it, so that each run of one network gets the whole budget (the
        first step of a driver that does not call it starts the run)."""
        self.wall0 = self.clock()
        self.net.sim.set_wall_budget(self.max_wall_s)

    @staticmethod
    def clock() -> float:
        """The wall clock of max_wall_s (seconds; tests replace it)."""
        return time.perf_counter()

    def wall_s(self) -> float:
        """Wall-clock seconds since the first step."""
        return 0.0 if self.wall0 is None else self.clock() - self.wall0

    def _check_wall(self, passed: bool = False) -> None:
        """BudgetExceeded if the wall budget is used up by the loop's clock (or ``passed``: the
        data plane's deadline passed)."""
        if self.max_wall_s > 0 and (passed or self.wall_s() > self.max_wall_s):
            sim = self.net.sim
            raise BudgetExceeded(
                "max_wall_s", self.max_wall_s, sim.now,
                f"the run budget max_wall_s = {self.max_wall_s:g} s is used up: {self.wall_s():.2f} s of wall "
                f"clock, simulated time reached t={sim.now} ps ({sim.events:,} events), before the run ended; "
                f"raise it (--set max_wall_s=SECONDS, 0 = no limit) to let such a run go on")

    def _run(self, t_ps: int) -> int:
        """sim.run_until(t_ps), looking at the wall clock at every chunk of events."""
        sim = self.net.sim
        while True:
            stop = sim.run_until(t_ps)
            if stop == STOP_WALL:
                self._check_wall(passed=True)
            if stop != STOP_EVENTS:
                break
            self._check_wall()
        if stop == STOP_MAX_EVENTS:
            raise BudgetExceeded(
                "max_events", self.max_events, sim.now,
                f"the run budget max_events = {self.max_events:,} is used up: simulated time reached t={sim.now} ps "
                f"after {sim.events:,} events, before the run ended; raise it (--set max_events=N, 0 = no limit) "
                f"to let such a run go on")
        return stop

    # -------------------------------------------------------------- stepping
    def next_time(self, limit_ps: int) -> int:
        """The earliest time a controller asked for, at most ``limit_ps``."""
        now = self.net.sim.now
        t = limit_ps
        for c in self.controllers:
            tc = c.next_time(now)
            if tc is not None and tc < t:
                t = tc
        return t

    def step(self, limit_ps: int) -> int:
        """Run the data plane towards ``limit_ps``, no further than the earliest controller time,
        then dispatch (module docstring); returns the data plane's stop reason."""
        net, sim = self.net, self.net.sim
        if self.wall0 is None:
            self.start_run()
        if not self.started:
            self.start()
        self._check_wall()
        target = max(self.next_time(limit_ps), sim.now)
        stop = self._run(target)
        if stop == STOP_IDLE and sim.now < target and self._idle_at == sim.now and self.busy() and any(
                (tc := c.next_time(sim.now)) is not None and tc <= target for c in self.controllers):
            # nothing left to run before a busy controller's time (a compute delay, a failure to
            # come): move the clock there, or the loop would stand still at the last event. Only
            # when the driver steps again after an idle stop at this time: a driver that is done
            # (every message completed) ends the run at the last event, not at the controller's time
            sim.advance_idle(target)
            stop = STOP_TIME
        self._idle_at = sim.now if stop == STOP_IDLE else None
        controllers = self.controllers
        if stop != STOP_UPCALL and stop != STOP_COMPLETIONS:
            now = sim.now
            for c in list(controllers):
                tc = c.next_time(now)
                if tc is None or tc > now:
                    continue
                c.fire(net, now)
                again = c.next_time(now)
                if again is not None and again <= now:
                    raise ControllerError(
                        f"controller {self.name_of(c)!r} fired at t={now} ps and asks to fire again at "
                        f"t={again} ps, not later: simulated time would stand still; its next_time() must "
                        f"move past now after fire() (or return None)")
        for c in list(controllers):
            c.on_stop(net, stop)
        return stop
