"""Queue disciplines of the switches' egress data queues: the ``qdisc`` section of a scenario.

Each discipline is a C provider (native/qdisc.c registers them: a table of name, parameters,
validate, enqueue, dequeue, on_dequeue); this module is its config model and its install.

``kind``:
  red_ecn    RED-style ECN marking at dequeue with the ``ecn`` section's thresholds (DCQCN's CP,
             native/qdisc.c). The default whenever the run has ECN thresholds (the scenario's
             ``ecn`` or its CC's default), as before this section existed.
  drop_tail  no marking at all, whatever the CC's ECN default (the default without thresholds).
  codel_ecn  CoDel (RFC 8289) marking CE instead of dropping (native/qdisc_codel.c): once the
             sojourn time has stayed >= ``target_ps`` for ``interval_ps``, mark, then mark again
             at next = previous + interval / sqrt(count). RFC 8289 §4.2-4.3 defaults: target 5 ms,
             interval 100 ms (the open Internet; a data-centre study gives microseconds).

Every discipline keeps the byte capacity ``buffer_bytes`` (drop-tail at the limit) and PFC as
today. NIC ports keep a plain FIFO (they hold at most one data packet).
"""
from __future__ import annotations

from controlplane.config import Choice, Int, Strict, section
from controlplane.units import ms

KINDS = ("red_ecn", "drop_tail", "codel_ecn")
CODEL_TARGET_PS = ms(5)                  # RFC 8289 §4.2: TARGET = 5 ms
CODEL_INTERVAL_PS = ms(100)              # RFC 8289 §4.3: INTERVAL = 100 ms
CODEL_KEYS = ("target_ps", "interval_ps", "maxpacket_bytes")


class Qdisc(Strict):
    """Queue discipline of the switch egress data queues (None: red_ecn with ECN thresholds, else drop_tail)."""
    kind: Choice(KINDS, "red_ecn (the ecn section's RED), drop_tail (no marking), codel_ecn (RFC 8289, marking)",
                 noun="qdisc") | None = None
    target_ps: Int("codel_ecn: TARGET sojourn time (RFC 8289 default 5 ms)", lo=1, kind="time") | None = None
    interval_ps: Int("codel_ecn: INTERVAL (RFC 8289 default 100 ms)", lo=1, kind="time") | None = None
    maxpacket_bytes: Int("codel_ecn: never mark with at most this much queued (RFC 8289 MAXPACKET; "
                         "None: one MTU payload)", kind="size") | None = None


def resolve(given: dict | None, ecn: dict | None, mtu_payload: int) -> dict:
    """Every qdisc setting a run applies (config.json ``resolved.qdisc``); errors name ``qdisc.<key>``."""
    q = section(Qdisc, given, "qdisc").model_dump()
    kind = q["kind"] or ("red_ecn" if ecn is not None else "drop_tail")
    if kind != "codel_ecn":
        for k in CODEL_KEYS:
            if q[k] is not None:
                raise ValueError(f"qdisc.{k} is a codel_ecn parameter; qdisc.kind is {kind!r}")
        if kind == "red_ecn" and ecn is None:
            raise ValueError("qdisc.kind red_ecn needs ECN thresholds: give the ecn section (this CC has no default)")
        return {"kind": kind}
    out = {"kind": kind,
           "target_ps": q["target_ps"] if q["target_ps"] is not None else CODEL_TARGET_PS,
           "interval_ps": q["interval_ps"] if q["interval_ps"] is not None else CODEL_INTERVAL_PS,
           "maxpacket_bytes": q["maxpacket_bytes"] if q["maxpacket_bytes"] is not None else mtu_payload}
    if out["interval_ps"] < out["target_ps"]:
        raise ValueError(f"qdisc.interval_ps ({out['interval_ps']}) must be >= qdisc.target_ps ({out['target_ps']})")
    return out


def install(net, resolved: dict) -> None:
    """The discipline on every switch egress data queue (after the ECN thresholds and PFC set the
    queues: red_ecn is what they installed; the others replace it)."""
    from dataplane.sim import PRIO_DATA
    kind = resolved["kind"]
    if kind == "red_ecn":
        return
    params = {k: v for k, v in resolved.items() if k != "kind"}
    fab = net.fabric
    for port in range(fab.num_ports):
        if fab.is_switch(fab.port_owner(port)):
            net.sim.set_qdisc(port, PRIO_DATA, kind, **params)


__all__ = ["Qdisc", "KINDS", "resolve", "install"]
