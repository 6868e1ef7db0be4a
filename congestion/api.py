"""The congestion-control API (docs/architecture.md, 'Congestion control').

An algorithm is a class with per-flow state and one handler per event a DPU delivers. It mirrors
NVIDIA DOCA PCC: the data plane calls the algorithm with a per-flow context and an event, the
algorithm sets the flow's rate and/or window, and may arm timers.

Handlers get ``(st, ev)``: ``st`` is the per-flow state returned by :meth:`new_flow`; ``ev`` is
the event record ``sd_cc_io`` (native/softdpu.h), read and written in place:

=================  =====  ==========================================================================
field              dir    meaning (units)
=================  =====  ==========================================================================
now_ps             in     simulated time (ps)
qp                 in     QP index (the flow)
event              in     EV_START, EV_ACK, EV_CNP, EV_NAK, EV_TIMEOUT, EV_TIMER, EV_BYTES
timer_id           in     EV_TIMER: which timer fired (0..3)
acked_bytes        in     EV_ACK/EV_NAK: payload bytes newly acknowledged
ecn                in     EV_ACK: 1 if the ACK echoes CE (BECN)
rtt_ps             in     EV_ACK/EV_NAK: RTT sample of the acknowledged packet (ps), -1 if none
inflight_bytes     in     payload bytes sent and not acknowledged (upper bound, full-MTU packets)
snd_una, snd_nxt   in     packet sequence numbers: cumulatively acknowledged, next to send
batch_acks         in     EV_ACK: how many ACKs this event stands for (> 1 with ack_batch)
batch_ecn          in     EV_ACK: how many of them echoed ECN
rtt_min_ps         in     EV_ACK: the smallest RTT sample among them
hops               in     EV_ACK: switch hops of the acknowledged packet's path (from its TTL)
mtu_payload        in     payload bytes per full packet
int_nhop, int_hop  in     EV_ACK with INT (network_defaults "int": True): HPCC INT hop records
line_rate_bps      in     NIC port rate (bit/s)
rate_bps           inout  pacing rate (bit/s), >= MIN_RATE_BPS (1 Mb/s); the data plane caps it at
                          line_rate_bps
window_bytes       inout  cap on unacknowledged payload bytes; 0 = no window
timer_at[i]        inout  deadline of timer i (ps), -1 = off; a fired timer reads -1 until re-armed;
                          a new deadline must be later than now_ps (see Timers below)
byte_threshold     inout  deliver EV_BYTES every this many payload bytes sent; 0 = off
byte_reset         out    1 = restart the byte count from zero
trace[0..3]        out    four numbers recorded in the decision trace (the algorithm's state)
=================  =====  ==========================================================================

Timers: up to four per QP (``timer_at[0..3]``). Setting ``timer_at[i]`` to a deadline arms timer i
(one pending timer per slot; a new deadline replaces the old one), -1 disarms it. A deadline must
be later than ``now_ps``: one at or before it would fire at the same instant, and a handler that
re-arms on each firing would hold simulated time still forever, so it is an error
(:class:`CCPluginError` naming the algorithm, the QP, the timer and the event), for a plug-in and
a C twin alike. A deadline left unchanged is never an error (a parked timer may lie in the past).
Timers of a QP that has nothing outstanding are parked and resume when it gets data. Besides, the
data plane stops any run that makes no progress (more than 10 million events at one picosecond,
plus 16 per port, QP and host; a large incast has a few per QP) with an error naming the event.
Only the events whose handlers a class overrides are delivered (or exactly those listed in
:attr:`CongestionControl.events`, which must then all have handlers): each costs one C -> Python
call, about 2 us with the dispatch (``softdpu bench cc-callback``).

The rate floor: MIN_RATE_BPS = 1 Mb/s (native/softdpu.h SD_MIN_RATE_BPS), the smallest rate a
ConnectX QP rate limiter accepts (DCQCN's rpg_min_rate). It bounds the time one packet takes to
serialize (< 74 ms for the largest frame), so every run stays finite. Link rates and CC rate
parameters (``rmin_bps``) below it are refused at setup; a rate below it set at run time is an
error, for a plug-in and for a built-in C twin alike.

Errors: a handler that raises, that sets a rate that is not a number >= MIN_RATE_BPS, or that
arms a timer at or before now, stops the run with :class:`CCPluginError` naming the algorithm, the
QP and the event (Scenario.run writes the results up to that point first).

Parameters: an algorithm declares them as a nested pydantic model ``Params`` (a
:class:`congestion.params.CCParams`: each parameter's type, unit, default, bounds and
description; see congestion/params.py and docs/writing-a-cc.md). Parameters of the wrong type or
out of range raise one-line ValueError naming the parameter (``dcqcn: cc_params.rai_bps must be
>= 0, got -1``) when the algorithm is created or bound (:meth:`CongestionControl.check_params`);
an unknown name lists the closest valid ones. A plug-in may instead override :meth:`defaults`
and :meth:`param_rules` (the older way, still supported).
"""
from __future__ import annotations

import math
from numbers import Real
from types import SimpleNamespace
from typing import Any, ClassVar

from dataplane.sim import MIN_RATE_BPS, CCPluginError

# the parameter model (congestion/params.py); its names are part of this API too
from congestion.params import MAX_BYTES, MAX_PS, RULE_RATE, CCParams, Rule  # noqa: F401
from congestion.params import value_text as _value_text
from controlplane.config.values import closest

EV_START, EV_ACK, EV_CNP, EV_NAK, EV_TIMEOUT, EV_TIMER, EV_BYTES = range(7)
EVENT_NAMES = ("start", "ack", "cnp", "nak", "timeout", "timer", "bytes")


class _class_or_instance:
    """A method that works on the class and on an instance (``defaults``: an instance's defaults
    may depend on parameters it was given, DCQCN's flavour)."""

    def __init__(self, f):
        self.f = f
        self.__doc__ = f.__doc__

    def __get__(self, obj, cls):
        def bound(*args, **kw):
            return self.f(cls, obj, *args, **kw)
        bound.__doc__ = self.__doc__
        return bound


class CongestionControl:
    """Base class of every congestion-control algorithm (reference or plug-in).

    Subclasses set :attr:`name` and override the handlers they need; :attr:`events` may list
    the events explicitly (every listed event must have a handler).
    Parameters are keyword arguments of ``__init__``; :meth:`params` returns them resolved
    (JSON-serialisable), so a run's config says exactly what ran.
    """

    name: ClassVar[str] = "base"
    #: events this algorithm wants (names from EVENT_NAMES); None = those it has handlers for
    events: ClassVar[frozenset[str] | None] = None
    #: SD_CC_* kind of the C twin, or None if this algorithm exists only in Python
    c_kind: ClassVar[int | None] = None
    #: deliver ACK events in batches of this many ACKs: acked_bytes is their sum, batch_acks and
    #: batch_ecn count them, ecn = any echoed, rtt_ps the last sample, rtt_min_ps the smallest;
    #: a batch is cut short when nothing is outstanding or before a NAK. For algorithms that
    #: react per window rather than per ACK this divides the Python call cost by the batch.
    ack_batch: ClassVar[int] = 1

    #: the parameter model (a :class:`congestion.params.CCParams`): names, types, units, defaults,
    #: bounds and descriptions. None: the algorithm declares its parameters the old way, with
    #: :meth:`defaults` and :meth:`param_rules` overridden (still supported).
    Params: ClassVar[type[CCParams] | None] = None

    def __init__(self, **params: Any):
        model = type(self).params_model()
        if model is not None:
            self._params = model.check(self.name, params)
            return
        known = self.defaults()
        unknown = [k for k in params if k not in known]
        if unknown:
            hints = []
            for u in unknown:
                near = closest(u, known)
                hints.append(f"cc_params.{u}" + (f" (closest: {', '.join(near)})" if near else ""))
            raise ValueError(f"{self.name}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                             f"known: {', '.join(known) if known else 'none (it takes no parameters)'}")
        self._params = {**known, **params}
        self.check_params()

    @classmethod
    def params_model(cls) -> type[CCParams] | None:
        """The class's parameter model, or None when the class (or the nearest base that says)
        declares its parameters the old way: whichever of ``Params`` and an overridden
        ``defaults``/``param_rules`` is declared nearest in the class hierarchy wins."""
        for klass in cls.__mro__:
            d = klass.__dict__
            if "Params" in d:
                return d["Params"]
            if "defaults" in d or "param_rules" in d:
                return None
        return None

    def param_rules(self) -> list[Rule]:
        """The range of every numeric parameter, in the order of the C twin's block:
        ``(name, ok(value, params), words)``. With a :attr:`Params` model, its bounds; a plug-in
        without one may override this. A built-in's rules are those of validate() in
        native/<name>.c, in the same order and words (tests/test_cc_params.py checks both)."""
        model = type(self).params_model()
        return model.rules(getattr(self, "_params", None)) if model is not None else []

    def check_params(self) -> None:
        """Raise ValueError naming the first parameter out of range, as the C twin would: first
        every parameter's type (every ruled one a finite number), then each rule in turn.
        Parameters still None (filled in from the fabric by :meth:`bind`) and rules that read one
        are skipped until then. Called by ``__init__`` and, for algorithms with fabric-derived
        parameters, at the end of ``bind``. The message names the parameter as a scenario's
        ``cc_params`` key: ``dcqcn: cc_params.rai_bps must be >= 0, got -1``."""
        model = type(self).params_model()
        if model is not None:
            model.check(self.name, self._params)
            return
        rules, p = self.param_rules(), self._params
        for name, _, _ in rules:
            v = p.get(name)
            if v is None:
                continue
            if not isinstance(v, Real):            # bools are 0 and 1
                raise ValueError(f"{self.name}: cc_params.{name} must be a finite number, got {v!r}")
            if not math.isfinite(float(v)):
                raise ValueError(f"{self.name}: cc_params.{name} must be a finite number, got {_value_text(v)}")
        for name, ok, words in rules:
            if p.get(name) is None:
                continue
            try:
                good = ok(float(p[name]), p)
            except TypeError:                    # the rule reads a parameter not bound yet (None)
                continue
            if not good:
                raise ValueError(f"{self.name}: cc_params.{name} must be {words}, got {_value_text(p[name])}")

    @_class_or_instance
    def defaults(cls, self=None) -> dict[str, Any]:
        """Default parameters: the :attr:`Params` model's (on an instance, those its given
        parameters select: DCQCN's flavour). A plug-in without a model overrides this."""
        model = cls.params_model()
        if model is None:
            return {}
        return model.defaults(**(getattr(self, "_params", None) or {}))

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def handled_events(self) -> set[str]:
        """Events whose handler this class overrides."""
        return {n for n in EVENT_NAMES if getattr(type(self), f"on_{n}") is not getattr(CongestionControl, f"on_{n}")}

    def event_mask(self) -> int:
        handled = self.handled_events()
        wanted = handled if self.events is None else set(self.events)
        unknown = wanted - set(EVENT_NAMES)
        if unknown:
            raise ValueError(f"cc {self.name!r}: unknown event name(s) {sorted(unknown)} in events")
        missing = wanted - handled
        if missing:
            raise ValueError(f"cc {self.name!r} lists events {sorted(missing)} but has no "
                             f"{', '.join('on_' + m for m in sorted(missing))} handler")
        return sum(1 << i for i, n in enumerate(EVENT_NAMES) if n in wanted)

    def network_defaults(self) -> dict[str, Any]:
        """Network settings this algorithm expects unless the scenario sets them: switch ECN
        marking ``ecn`` ({"kmin_bytes", "kmax_bytes", "pmax", "base_rate_bps"}; None = no
        marking; the thresholds are for a link of base_rate_bps and scale with a port's rate;
        "scale_with_rate": True instead of base_rate_bps means 100 Gb/s), the receiver's CE
        feedback ``cnp_mode`` ("interval": CNP packets; "ack_echo": BECN on ACKs) and
        ``cnp_interval_ps`` (the NP's minimum gap between CNPs of one QP; default 50 us)."""
        return {"ecn": None, "cnp_mode": "interval"}

    def bind(self, facts: dict[str, Any]) -> None:
        """Called once per run before the QPs exist, with facts of the fabric: max_base_rtt_ps
        (longest host-to-host base RTT), host_rate_bps, mtu_payload, int_multi. Override to
        derive parameters from them (HPCC's T and W_init), calling super().bind(facts) first."""
        self._resolved = None

    def new_flow(self, qp: int) -> Any:
        """Per-flow state for QP ``qp``; initialise it in :meth:`on_start`."""
        return SimpleNamespace()

    def c_params(self) -> dict[str, Any] | None:
        """Parameter block for the C twin, by the names native/<name>.c lists (None: no twin).
        The default: every parameter as a number, once `bind` has filled in those that come
        from the fabric."""
        if self.c_kind is None:
            return None
        missing = [k for k, v in self._params.items() if v is None]
        if missing:
            raise ValueError(f"{self.name}: {missing} not set (a Scenario computes them from the fabric)")
        return {k: float(v) for k, v in self._params.items()}

    def resolved_params(self) -> dict[str, Any]:
        """c_params(), computed once per run (the Python references read it on every event)."""
        if getattr(self, "_resolved", None) is None:
            self._resolved = self.c_params()
        return self._resolved

    # handlers: override the ones listed in `events`
    def on_start(self, st, ev) -> None: ...
    def on_ack(self, st, ev) -> None: ...
    def on_cnp(self, st, ev) -> None: ...
    def on_nak(self, st, ev) -> None: ...
    def on_timeout(self, st, ev) -> None: ...
    def on_timer(self, st, ev) -> None: ...
    def on_bytes(self, st, ev) -> None: ...

    def handler_for(self, qp: int):
        """The callable the data plane invokes with each event record of ``qp``."""
        st = self.new_flow(qp)
        table = (self.on_start, self.on_ack, self.on_cnp, self.on_nak, self.on_timeout, self.on_timer,
                 self.on_bytes)
        name = self.name

        def handle(ev):
            try:
                table[ev.event](st, ev)
            except Exception as exc:
                raise CCPluginError(f"cc {name!r} raised {type(exc).__name__}: {exc} "
                                    f"(QP {ev.qp}, event {EVENT_NAMES[ev.event]}, t={ev.now_ps} ps)") from exc
            rate = ev.rate_bps
            if not rate >= MIN_RATE_BPS:       # NaN, zero, negative or below the floor
                raise CCPluginError(f"cc {name!r} set rate_bps={rate!r} (QP {ev.qp}, event "
                                    f"{EVENT_NAMES[ev.event]}, t={ev.now_ps} ps): a rate must be a number "
                                    f">= {MIN_RATE_BPS} bit/s (the rate floor, 1 Mb/s)")
        handle.state = st
        handle.cc_name = name          # the data plane names the plug-in in its errors (a timer at or before now)
        return handle
