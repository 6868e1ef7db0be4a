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
  traffic_class
             8 classes per switch port (native/qdisc_tc.c). A packet's DSCP (the scenario's
             dscp_data / dscp_ack / dscp_cnp) picks its class through ``dscp_map`` (default: the
             class selector, DSCP >> 3: data and ACKs at 26 -> class 3, CNPs at 48 -> class 6).
             ``classes`` sets each class: ``sched`` strict (the highest strict class first, before
             any dwrr class) or dwrr (deficit weighted round robin, ``quantum_bytes`` per visit:
             backlogged classes share what strict classes leave in proportion to their quanta),
             ``ecn`` its RED thresholds (default: the run's ecn thresholds, if any). Defaults:
             classes 6 and 7 strict (network control, CNPs), the others dwrr with one quantum of
             ``mtu_payload + 256`` bytes (at least one frame, as DRR needs).

Every discipline keeps the byte capacity ``buffer_bytes`` (drop-tail at the limit) and PFC as
today. NIC ports keep a plain FIFO (they hold at most one data packet).
"""
from __future__ import annotations

from typing import Any

from controlplane.config.schema import Choice, Int, Section, Strict, section
from controlplane.fabric.ecn import Ecn
from controlplane.config.units import ms

KINDS = ("red_ecn", "drop_tail", "codel_ecn", "traffic_class")
NUM_CLASSES = 8
STRICT_BY_DEFAULT = (6, 7)               # network control (CS6, CS7): CNPs at DSCP 48
CODEL_TARGET_PS = ms(5)                  # RFC 8289 §4.2: TARGET = 5 ms
CODEL_INTERVAL_PS = ms(100)              # RFC 8289 §4.3: INTERVAL = 100 ms
CODEL_KEYS = ("target_ps", "interval_ps", "maxpacket_bytes")
TC_KEYS = ("dscp_map", "classes")
QUANTUM_HEADROOM = 256                   # default quantum = mtu_payload + this: one whole frame


class TrafficClass(Strict):
    """One traffic class of a traffic_class port."""
    sched: Choice(("strict", "dwrr"), "strict priority or deficit weighted round robin") | None = None
    quantum_bytes: Int("dwrr: bytes per round (the class's weight)", lo=64, hi=10**9, kind="size") | None = None
    ecn: Ecn | None = None


class Qdisc(Strict):
    """Queue discipline of the switch egress data queues (None: red_ecn with ECN thresholds, else drop_tail)."""
    kind: Choice(KINDS, "red_ecn (the ecn section's RED), drop_tail (no marking), codel_ecn (RFC 8289, marking)",
                 noun="qdisc") | None = None
    target_ps: Int("codel_ecn: TARGET sojourn time (RFC 8289 default 5 ms)", lo=1, kind="time") | None = None
    interval_ps: Int("codel_ecn: INTERVAL (RFC 8289 default 100 ms)", lo=1, kind="time") | None = None
    maxpacket_bytes: Int("codel_ecn: never mark with at most this much queued (RFC 8289 MAXPACKET; "
                         "None: one MTU payload)", kind="size") | None = None
    dscp_map: Section("traffic_class: DSCP -> class (0..7) overrides of DSCP >> 3, e.g. {\"48\": 7}") | None = None
    classes: Section("traffic_class: class (\"0\"..\"7\") -> {sched, quantum_bytes, ecn}") | None = None


def resolve(given: dict | None, ecn: dict | None, mtu_payload: int) -> dict:
    """Every qdisc setting a run applies (config.json ``resolved.qdisc``); errors name ``qdisc.<key>``."""
    q = section(Qdisc, given, "qdisc").model_dump()
    kind = q["kind"] or ("red_ecn" if ecn is not None else "drop_tail")
    if kind != "traffic_class":
        for k in TC_KEYS:
            if q[k] is not None:
                raise ValueError(f"qdisc.{k} is a traffic_class parameter; qdisc.kind is {kind!r}")
    else:
        for k in CODEL_KEYS:
            if q[k] is not None:
                raise ValueError(f"qdisc.{k} is a codel_ecn parameter; qdisc.kind is {kind!r}")
        return {"kind": kind, "dscp_map": _dscp_map(q["dscp_map"]), "classes": _classes(q["classes"], mtu_payload)}
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


def _index(key: Any, hi: int, what: str, path: str) -> int:
    try:
        i = int(key)
    except (TypeError, ValueError):
        i = -1
    if str(i) != str(key).strip() or not 0 <= i <= hi:
        raise ValueError(f"{path}: {what} must be an integer in [0, {hi}], got {key!r}")
    return i


def _dscp_map(given: dict | None) -> list[int]:
    """The 64-entry DSCP -> class table: DSCP >> 3 (class selector), with the given overrides."""
    table = [d >> 3 for d in range(64)]
    for d, c in (given or {}).items():
        dscp = _index(d, 63, "a DSCP", "qdisc.dscp_map")
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < NUM_CLASSES:
            raise ValueError(f"qdisc.dscp_map.{d}: the class must be an integer in [0, 7], got {c!r}")
        table[dscp] = c
    return table


def _classes(given: dict | None, mtu_payload: int) -> list[dict]:
    """Every class's sched, quantum and ECN thresholds (None: the run's)."""
    out = [{"sched": "strict" if c in STRICT_BY_DEFAULT else "dwrr", "quantum_bytes": mtu_payload + QUANTUM_HEADROOM,
            "ecn": None} for c in range(NUM_CLASSES)]
    for key, spec in (given or {}).items():
        c = _index(key, NUM_CLASSES - 1, "a class", "qdisc.classes")
        t = section(TrafficClass, spec, f"qdisc.classes.{key}").model_dump(exclude_none=True)
        if "quantum_bytes" in t and t.get("sched", out[c]["sched"]) == "strict":
            raise ValueError(f"qdisc.classes.{key}.quantum_bytes is for a dwrr class; this one is strict")
        if "ecn" in t:
            e = t["ecn"]
            for k in ("kmin_bytes", "kmax_bytes", "pmax"):
                if e.get(k) is None:
                    raise ValueError(f"qdisc.classes.{key}.ecn.{k} is missing (a class's ecn needs kmin_bytes, "
                                     "kmax_bytes, pmax)")
            if e["kmax_bytes"] < e["kmin_bytes"]:
                raise ValueError(f"qdisc.classes.{key}.ecn.kmax_bytes must be >= its kmin_bytes")
        out[c].update(t)
    return out


def tc_params(resolved: dict, run_ecn: dict | None, rate_bps: float) -> dict:
    """The traffic_class provider's 32 parameters for a port of ``rate_bps``: quantum (0 = strict),
    kmin, kmax, pmax per class (a class without its own ecn takes the run's thresholds)."""
    from controlplane.fabric import ecn as ecn_mod
    p = {}
    for c, cl in enumerate(resolved["classes"]):
        kmin, kmax, pmax = ecn_mod.thresholds(cl["ecn"] if cl["ecn"] is not None else run_ecn, rate_bps)
        p.update({f"quantum_{c}": 0 if cl["sched"] == "strict" else cl["quantum_bytes"],
                  f"kmin_{c}": kmin, f"kmax_{c}": kmax, f"pmax_{c}": pmax})
    return p


def install(net, resolved: dict) -> None:
    """The discipline on every switch egress data queue (after the ECN thresholds and PFC set the
    queues: red_ecn is what they installed; the others replace it)."""
    from dataplane.sim import PRIO_DATA
    kind = resolved["kind"]
    if kind == "red_ecn":
        return
    fab = net.fabric
    if kind == "traffic_class":
        net.sim.set_dscp_map(resolved["dscp_map"])
        for port in range(fab.num_ports):
            if fab.is_switch(fab.port_owner(port)):
                rate = fab.links[port // 2].rate_bps
                net.sim.set_qdisc(port, PRIO_DATA, kind, **tc_params(resolved, net.resolved["ecn"], rate))
        return
    params = {k: v for k, v in resolved.items() if k != "kind"}
    for port in range(fab.num_ports):
        if fab.is_switch(fab.port_owner(port)):
            net.sim.set_qdisc(port, PRIO_DATA, kind, **params)


__all__ = ["Qdisc", "TrafficClass", "KINDS", "resolve", "tc_params", "install"]
