"""The bounds of a scenario's time and budget fields, in one table.

Simulated time is an integer number of picoseconds (docs/architecture.md, 'Units, time and
determinism'). A time field must therefore be an integer: an integral float such as ``1e6`` is
taken and converted (JSON and ``--set`` spell large numbers that way), anything else (``1.5``,
NaN, infinity, a string, a bool) is refused with the field named as the user wrote it. A
fractional end time used to make a run loop forever: the data plane stops at the integer below
it, which never reaches it.

Every field has a range. The lower bounds keep every run finite and meaningful; the upper bound
of every time, 10^15 ps (1000 s of simulated time), keeps deadlines (now + a time) far inside
int64 picoseconds (2^63 ps is about 106 days) and is the bound the CC parameters use
(congestion.api MAX_PS, native/sim.h CC_MAX_PS). Each row says why its floor is where it is.

``TABLE`` maps a field path to its :class:`Limit`; a path is a Scenario field (``rto_ps``), a key
of a dict field (``transport_params.rto_low_ps``) or a key of every entry of a list field
(``failures[].down_ps``). :func:`check_scenario` applies the table (Network builds call it first);
the scenario schema (controlplane/config/schema.py, pydantic) builds its time and budget fields from these rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

PS_PER_US = 1_000_000
MAX_TIME_PS = 10**15                 # 1000 s of simulated time
MAX_EVENTS = 2**63 - 1               # the events counter is 64-bit
MAX_WALL_S = 10.0**9                 # about 32 years: any finite number of seconds a run may take


@dataclass(frozen=True)
class Limit:
    """One field's rule. ``kind``: "time" (integer picoseconds), "count" (integer) or "seconds"
    (a real number). ``min``/``max``: the closed range; ``zero_off``: 0 is also allowed, meaning
    "off", below ``min``; ``optional``: None is allowed (the default is then derived)."""

    kind: str
    min: float
    max: float
    unit: str
    meaning: str
    why: str = ""
    zero_off: bool = False
    optional: bool = False


def human_ps(ps: int) -> str:
    """1_000_000 -> '1 us', 10**15 -> '1000 s'."""
    for unit, scale in (("s", 10**12), ("ms", 10**9), ("us", 10**6), ("ns", 10**3)):
        if ps >= scale:
            return f"{ps / scale:g} {unit}"
    return f"{ps} ps"


# The floors, and why (each is also printed when a value is refused):
RTO_FLOOR_PS = PS_PER_US
RTO_WHY = ("a retransmission timeout below 1 us is shorter than the base RTT of a realistic fabric (a 4 KB "
           "frame alone takes 0.34 us to serialize at 100 Gb/s, every hop adds its cable delay) and far "
           "below the smallest ACK timeout an InfiniBand/RoCE NIC takes (4.096 us x 2^t, t >= 1: 8.2 us); "
           "a timeout of 1 ps would fire every picosecond and the run would never end")
SAMPLE_FLOOR_PS = 100_000
SAMPLE_WHY = ("a sample copies every monitored QP and port (tens of us of wall time each) and adds a "
              "row per QP and port to the time series; 100 ns is finer than one full 4 KB packet at "
              "400 Gb/s (84 ns), so a queue barely changes between two samples below it, while "
              "sample_interval_ps=1 would take 10^6 samples per simulated microsecond")

TABLE: dict[str, Limit] = {
    "duration_ps": Limit("time", 1, MAX_TIME_PS, "ps", "how long the run lasts (None: until every message "
                         "completes, at most max_duration_ps)", optional=True),
    "max_duration_ps": Limit("time", 1, MAX_TIME_PS, "ps", "the longest a run without duration_ps lasts"),
    "sample_interval_ps": Limit("time", SAMPLE_FLOOR_PS, MAX_TIME_PS, "ps", "time-series sampling period "
                                "(0 = no time series)", SAMPLE_WHY, zero_off=True),
    "rto_ps": Limit("time", RTO_FLOOR_PS, MAX_TIME_PS, "ps", "retransmission timeout", RTO_WHY),
    "cnp_interval_ps": Limit("time", 0, MAX_TIME_PS, "ps", "the NP's minimum gap between two CNPs of a QP "
                             "(0 = a CNP for every CE-marked packet, finite: one per packet)", optional=True),
    "transport_params.rto_low_ps": Limit("time", RTO_FLOOR_PS, MAX_TIME_PS, "ps", "IRN's RTO_low, the "
                                         "timeout while few packets are out (0 = off)", RTO_WHY, zero_off=True),
    "path_params.flowlet_gap_ps": Limit("time", 0, MAX_TIME_PS, "ps", "idle gap that starts a new flowlet "
                                        "(0: every packet may take a new path; finite)"),
    "path_params.plb_suspend_ps": Limit("time", 0, MAX_TIME_PS, "ps", "PLB: how long re-pathing stays "
                                        "suspended after an idle RTO"),
    "failure_params.detect_ps": Limit("time", 0, MAX_TIME_PS, "ps", "delay before the NICs react to a "
                                      "link failure"),
    "failure_params.reconverge_ps": Limit("time", 0, MAX_TIME_PS, "ps", "delay before routing reconverges "
                                          "after a failure"),
    "failures[].down_ps": Limit("time", 0, MAX_TIME_PS, "ps", "when the link or switch fails"),
    "failures[].up_ps": Limit("time", 0, MAX_TIME_PS, "ps", "when it comes back (None/absent: never)",
                              optional=True),
    "workload.start_ps": Limit("time", 0, MAX_TIME_PS, "ps", "when the workload's messages are posted"),
    "workload.jitter_ps": Limit("time", 0, MAX_TIME_PS, "ps", "incast: uniform start jitter"),
    "workload.duration_ps": Limit("time", 1, MAX_TIME_PS, "ps", "poisson: the window in which flows start"),
    "qpc.fetch_latency_ps": Limit("time", 0, MAX_TIME_PS, "ps", "QP-context fetch latency (one PCIe read)"),
    # the run budget: a run that reaches it stops with BudgetExceeded and writes what it produced
    "max_events": Limit("count", 1, MAX_EVENTS, "events", "the most data-plane events a run may take "
                        "(0 = no limit)", zero_off=True),
    "max_wall_s": Limit("seconds", 0, MAX_WALL_S, "s", "the most wall-clock seconds a run may take "
                        "(0 = no limit)", zero_off=True),
}


def _range_text(lim: Limit) -> str:
    def show(v: float) -> str:
        if lim.kind == "time":
            return f"{int(v)} ps" + (f" ({human_ps(int(v))})" if v >= 1000 else "")
        if lim.kind == "count":
            return f"{int(v):_}"
        return f"{v:g} s"
    text = f"in [{show(lim.min)}, {show(lim.max)}]"
    if lim.zero_off:
        text = f"{text}, or 0 (off)"
    if lim.optional:
        text = f"{text}, or None"
    return text


def check_value(path: str, value: Any, lim: Limit | None = None) -> Any:
    """``value`` checked against the rule of ``path`` (its name as the user wrote it): an int for
    "time" and "count" fields, a float for "seconds", None when allowed; else ValueError naming
    ``path``, the rule and the reason for the floor."""
    lim = lim or TABLE[_rule_key(path)]
    if value is None and lim.optional:
        return None
    noun = {"time": "an integer number of picoseconds", "count": "an integer", "seconds": "a number of seconds"}
    rule = f"{noun[lim.kind]} {_range_text(lim)}"

    def refuse(reason: str = "") -> ValueError:
        why = f": {lim.why}" if reason == "low" and lim.why else ""
        if reason == "fraction" and math.isfinite(float(value)):
            why = (": simulated time is a whole number of picoseconds" if lim.kind == "time"
                   else ": a count is a whole number")
        return ValueError(f"{path} must be {rule}, got {value!r}{why}")

    if isinstance(value, bool) or not isinstance(value, Real):
        raise refuse()
    if lim.kind == "seconds":
        v: Any = float(value)
        if not math.isfinite(v):
            raise refuse()
    elif isinstance(value, Integral):
        v = int(value)
    else:
        f = float(value)
        if not math.isfinite(f) or f != math.floor(f):
            raise refuse("fraction")   # 1.5 ps, NaN, inf: simulated time is whole picoseconds
        v = int(f)
    if lim.zero_off and v == 0:
        return v
    if v < lim.min:
        raise refuse("low")
    if v > lim.max:
        raise refuse()
    return v


def _rule_key(path: str) -> str:
    """'failures[3].down_ps' -> 'failures[].down_ps'."""
    if "[" in path:
        head, rest = path.split("[", 1)
        return head + "[]" + rest.split("]", 1)[1]
    return path


def check_scenario(sc) -> None:
    """Check every field of ``TABLE`` on a Scenario and store the checked values back (1e6 -> 1000000,
    in copies of its dicts and lists); ValueError names the first bad field as the user wrote it.
    Sections that are not dicts or lists (or keys absent) are left to the code that owns them."""
    for key, lim in TABLE.items():
        if "." not in key:
            setattr(sc, key, check_value(key, getattr(sc, key), lim))
            continue
        section, name = key.split(".", 1)
        if section.endswith("[]"):
            field = section[:-2]
            items = getattr(sc, field)
            if not isinstance(items, (list, tuple)):
                continue
            out = []
            for i, item in enumerate(items):
                if isinstance(item, dict) and name in item:
                    item = {**item, name: check_value(f"{field}[{i}].{name}", item[name], lim)}
                out.append(item)
            setattr(sc, field, out)
            continue
        d = getattr(sc, section)
        if isinstance(d, dict) and name in d:
            setattr(sc, section, {**d, name: check_value(key, d[name], lim)})


__all__ = ["Limit", "TABLE", "check_value", "check_scenario", "MAX_TIME_PS"]
