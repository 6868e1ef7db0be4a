"""The congestion-control API (DESIGN.md §6).

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
line_rate_bps      in     NIC port rate (bit/s)
rate_bps           inout  pacing rate (bit/s); the data plane clamps it to (0, line_rate_bps]
window_bytes       inout  cap on unacknowledged payload bytes; 0 = no window
timer_at[i]        inout  deadline of timer i (ps), -1 = off; a fired timer reads -1 until re-armed
byte_threshold     inout  deliver EV_BYTES every this many payload bytes sent; 0 = off
byte_reset         out    1 = restart the byte count from zero
trace[0..3]        out    four numbers recorded in the decision trace (the algorithm's state)
=================  =====  ==========================================================================

Timers of a QP that has nothing outstanding are parked and resume when it gets data.
Each handler costs one C -> Python call (about 0.5 us plus the handler's own work); declare in
:attr:`CongestionControl.events` only the events the algorithm uses, the others are never sent.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

EV_START, EV_ACK, EV_CNP, EV_NAK, EV_TIMEOUT, EV_TIMER, EV_BYTES = range(7)
EVENT_NAMES = ("start", "ack", "cnp", "nak", "timeout", "timer", "bytes")


class CongestionControl:
    """Base class of every congestion-control algorithm (reference or plug-in).

    Subclasses set :attr:`name`, optionally :attr:`events`, and override the handlers they need.
    Parameters are keyword arguments of ``__init__``; :meth:`params` returns them resolved
    (JSON-serialisable), so a run's config says exactly what ran.
    """

    name: ClassVar[str] = "base"
    #: events this algorithm wants (names from EVENT_NAMES); others are not delivered
    events: ClassVar[frozenset[str]] = frozenset(EVENT_NAMES)
    #: SD_CC_* kind of the C twin, or None if this algorithm exists only in Python
    c_kind: ClassVar[int | None] = None

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults())
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                             f"known: {sorted(self.defaults())}")
        self._params = {**self.defaults(), **params}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default parameters (override)."""
        return {}

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def event_mask(self) -> int:
        unknown = set(self.events) - set(EVENT_NAMES)
        if unknown:
            raise ValueError(f"{self.name}: unknown event name(s) {sorted(unknown)} in events")
        return sum(1 << i for i, n in enumerate(EVENT_NAMES) if n in self.events)

    def network_defaults(self) -> dict[str, Any]:
        """Network settings this algorithm expects unless the scenario sets them: switch ECN
        marking ``ecn`` ({"kmin_bytes", "kmax_bytes", "pmax", "scale_with_rate"}; None = no
        marking; with scale_with_rate the thresholds are for 100 Gb/s and scale with a port's
        rate) and the receiver's CE feedback ``cnp_mode`` ("interval" CNPs or "ack_echo")."""
        return {"ecn": None, "cnp_mode": "interval"}

    def new_flow(self, qp: int) -> Any:
        """Per-flow state for QP ``qp``; initialise it in :meth:`on_start`."""
        return SimpleNamespace()

    def c_params(self) -> dict[str, Any] | None:
        """Parameter block for the C twin (field names of its sd_*_params struct)."""
        return None

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

        def handle(ev):
            table[ev.event](st, ev)
        handle.state = st
        return handle
