"""Queue disciplines of the switches' egress data queues: the ``qdisc`` section of a scenario.

Each discipline is a C provider (native/qdisc_<name>.c, registered by one line in native/qdisc.h:
a table of name, parameters, validate, enqueue, dequeue, on_dequeue) with one config model here (a
:class:`QdiscModel` subclass: its keys of this section, their defaults, and how they become the
provider's parameters). The section :class:`Qdisc` is the union of the models; at import every
registered C kind must have exactly one model, and a model that passes its keys through must
declare exactly the parameters its provider does (dataplane.sim.qdisc_params), each of the kind
the provider declares (an integer field for an integer parameter) and with bounds inside the
provider's range (dataplane.sim.qdisc_param_decls), so a value the model accepts is never refused
by the data plane.

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

import math
import typing
from typing import Any, ClassVar

from pydantic import create_model

from controlplane.config.limits import MAX_TIME_PS
from controlplane.config.schema import Choice, Int, Section, Strict, section
from controlplane.fabric.ecn import Ecn
from controlplane.config.units import ms
from dataplane.sim import QDISC_KINDS, qdisc_param_decls, qdisc_params

NUM_CLASSES = 8
STRICT_BY_DEFAULT = (6, 7)               # network control (CS6, CS7): CNPs at DSCP 48
CODEL_TARGET_PS = ms(5)                  # RFC 8289 §4.2: TARGET = 5 ms
CODEL_INTERVAL_PS = ms(100)              # RFC 8289 §4.3: INTERVAL = 100 ms
QUANTUM_HEADROOM = 256                   # default quantum = mtu_payload + this: one whole frame


# ------------------------------------------------------------------ the disciplines' config models
class QdiscModel(Strict):
    """The config model of a queue discipline (its C provider: native/qdisc_<name>.c). A subclass
    names its discipline (``kind = "codel_ecn"``) and declares its keys of the ``qdisc`` section
    (each ``... | None = None``: None = not given); defining the class registers it
    (:data:`MODELS`). By default a model's keys are its provider's parameters, in the provider's
    order: :meth:`resolve` fills the defaults :meth:`defaults` gives, :meth:`c_params` passes the
    resolved values through and :meth:`install` puts the discipline on every switch egress data
    queue. A discipline whose keys are not its provider's parameters overrides :meth:`c_params`
    (and sets ``passthrough = False``); one that needs other control-plane work overrides
    :meth:`install`."""
    kind: ClassVar[str]
    summary: ClassVar[str] = ""          # a few words for the kind's description in the schema
    passthrough: ClassVar[bool] = True   # the keys are exactly the provider's parameters

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            MODELS[cls.kind] = cls

    @classmethod
    def defaults(cls, ecn: dict | None, mtu_payload: int) -> dict:
        """The value of each key not given (those that depend on the run)."""
        return {}

    @classmethod
    def resolve(cls, given: dict, ecn: dict | None, mtu_payload: int) -> dict:
        """The resolved settings (config.json ``resolved.qdisc``, without ``kind``) from the keys
        given (None: not given); errors name ``qdisc.<key>``."""
        d = cls.defaults(ecn, mtu_payload)
        return {k: given[k] if given[k] is not None else d.get(k) for k in cls.model_fields}

    @classmethod
    def c_params(cls, resolved: dict, net, port: int) -> dict:
        """The C provider's parameters, by name, for switch port ``port``."""
        return {k: resolved[k] for k in cls.model_fields}

    @classmethod
    def install(cls, net, resolved: dict) -> None:
        """The discipline on every switch egress data queue."""
        from dataplane.sim import PRIO_DATA
        fab = net.fabric
        for port in range(fab.num_ports):
            if fab.is_switch(fab.port_owner(port)):
                net.sim.set_qdisc(port, PRIO_DATA, cls.kind, **cls.c_params(resolved, net, port))


MODELS: dict[str, type[QdiscModel]] = {}


class RedEcn(QdiscModel):
    """red_ecn: RED-style ECN marking at dequeue with the ``ecn`` section's thresholds (DCQCN's CP,
    native/qdisc.c). The queues are set when the thresholds are (controlplane/fabric/ecn.py:
    sd_set_queue installs red_ecn), so this discipline has no keys and nothing to install."""
    kind = "red_ecn"
    summary = "the ecn section's RED"
    passthrough = False

    @classmethod
    def resolve(cls, given: dict, ecn: dict | None, mtu_payload: int) -> dict:
        if ecn is None:
            raise ValueError("qdisc.kind red_ecn needs ECN thresholds: give the ecn section (this CC has no default)")
        return {}

    @classmethod
    def install(cls, net, resolved: dict) -> None:
        return


class DropTail(QdiscModel):
    """drop_tail: no marking at all, whatever the CC's ECN default (native/qdisc.c)."""
    kind = "drop_tail"
    summary = "no marking"


class CodelEcn(QdiscModel):
    """codel_ecn: CoDel (RFC 8289) marking CE instead of dropping (native/qdisc_codel.c)."""
    kind = "codel_ecn"
    summary = "RFC 8289, marking"
    target_ps: Int("codel_ecn: TARGET sojourn time (RFC 8289 default 5 ms)", lo=1, hi=MAX_TIME_PS,
                   kind="time") | None = None
    interval_ps: Int("codel_ecn: INTERVAL (RFC 8289 default 100 ms)", lo=1, hi=MAX_TIME_PS, kind="time") | None = None
    maxpacket_bytes: Int("codel_ecn: never mark with at most this much queued (RFC 8289 MAXPACKET; "
                         "None: one MTU payload)", kind="size") | None = None

    @classmethod
    def defaults(cls, ecn: dict | None, mtu_payload: int) -> dict:
        return {"target_ps": CODEL_TARGET_PS, "interval_ps": CODEL_INTERVAL_PS, "maxpacket_bytes": mtu_payload}

    @classmethod
    def resolve(cls, given: dict, ecn: dict | None, mtu_payload: int) -> dict:
        out = super().resolve(given, ecn, mtu_payload)
        if out["interval_ps"] < out["target_ps"]:
            raise ValueError(f"qdisc.interval_ps ({out['interval_ps']}) must be >= qdisc.target_ps ({out['target_ps']})")
        return out


class TrafficClass(Strict):
    """One traffic class of a traffic_class port."""
    sched: Choice(("strict", "dwrr"), "strict priority or deficit weighted round robin") | None = None
    quantum_bytes: Int("dwrr: bytes per round (the class's weight)", lo=64, hi=10**9, kind="size") | None = None
    ecn: Ecn | None = None


class TrafficClasses(QdiscModel):
    """traffic_class: 8 classes per switch port from DSCP, strict priority and DWRR
    (native/qdisc_tc.c). Its keys are a DSCP map (installed once per run) and per-class settings;
    the provider's 32 parameters per port come from them and the port's rate (:func:`tc_params`)."""
    kind = "traffic_class"
    summary = "8 classes from DSCP, strict priority + DWRR"
    passthrough = False
    dscp_map: Section("traffic_class: DSCP -> class (0..7) overrides of DSCP >> 3, e.g. {\"48\": 7}") | None = None
    classes: Section("traffic_class: class (\"0\"..\"7\") -> {sched, quantum_bytes, ecn}") | None = None

    @classmethod
    def resolve(cls, given: dict, ecn: dict | None, mtu_payload: int) -> dict:
        return {"dscp_map": _dscp_map(given["dscp_map"]), "classes": _classes(given["classes"], mtu_payload)}

    @classmethod
    def c_params(cls, resolved: dict, net, port: int) -> dict:
        return tc_params(resolved, net.resolved["ecn"], net.fabric.links[port // 2].rate_bps)

    @classmethod
    def install(cls, net, resolved: dict) -> None:
        net.sim.set_dscp_map(resolved["dscp_map"])
        super().install(net, resolved)


def _field_range(prop: dict) -> tuple[str | None, float, float]:
    """A field's number kind ("int", "real", None: no number) and the closed range its JSON schema
    allows (an exclusive bound as the nearest value inside it; -inf / inf where it has none)."""
    subs: list[dict] = []

    def walk(s: dict) -> None:
        if s.get("type") in ("integer", "number"):
            subs.append(s)
        for k in ("anyOf", "oneOf", "allOf"):
            for x in s.get(k, []):
                walk(x)
    walk(prop)
    if not subs:
        return None, math.inf, -math.inf
    kind = "int" if all(s["type"] == "integer" for s in subs) else "real"
    step = (lambda x: x + 1) if kind == "int" else (lambda x: math.nextafter(x, math.inf))
    lo = min(s["minimum"] if "minimum" in s else step(s["exclusiveMinimum"]) if "exclusiveMinimum" in s
             else -math.inf for s in subs)
    back = (lambda x: x - 1) if kind == "int" else (lambda x: math.nextafter(x, -math.inf))
    hi = max(s["maximum"] if "maximum" in s else back(s["exclusiveMaximum"]) if "exclusiveMaximum" in s
             else math.inf for s in subs)
    return kind, lo, hi


def _check_against_provider(kind: str, model: type[QdiscModel]) -> None:
    """A passthrough model's fields are its C provider's parameters (sd_qdisc_param_name), each of
    the declared kind and with bounds inside the declared range (sd_qdisc_param_kind / _range), so
    whatever the model accepts, sd_set_qdisc accepts too (the rules between parameters, such as
    interval >= target, are the model's resolve())."""
    if list(model.model_fields) != qdisc_params(kind):
        raise RuntimeError(f"qdisc {kind}: the model {model.__name__} declares {list(model.model_fields)}, "
                           f"its C provider takes {qdisc_params(kind)}")
    schema = model.model_json_schema()["properties"] if model.model_fields else {}
    for d in qdisc_param_decls(kind):
        fkind, lo, hi = _field_range(schema[d.name])
        if fkind != d.kind:
            raise RuntimeError(f"qdisc {kind}: the model {model.__name__} declares {d.name} as "
                               f"{fkind or 'not a number'}, its C provider as {d.kind}")
        if d.zero_off and lo == 0:                   # 0 is the provider's "off", outside its range
            if hi == 0:
                continue
            lo = 1 if fkind == "int" else math.nextafter(0.0, math.inf)
        if not d.lo <= lo <= hi <= d.hi:
            raise RuntimeError(f"qdisc {kind}: the model {model.__name__} accepts {d.name} in [{lo:g}, {hi:g}], "
                               f"its C provider only {d.rule} ([{d.lo:g}, {d.hi:g}])")


def _union(models: dict[str, type[QdiscModel]]) -> type[Strict]:
    """The ``qdisc`` section: ``kind`` and every model's keys (a key two models share must be
    declared alike). Every C provider has one model, and a passthrough model declares exactly its
    provider's parameters, of their kinds and within their ranges, so the two cannot drift apart."""
    missing = [k for k in QDISC_KINDS if k not in models]
    if missing:
        raise RuntimeError(f"queue disciplines without a config model (controlplane/fabric/qdisc.py): {missing}")
    fields: dict[str, tuple] = {}
    for kind, model in models.items():
        if kind not in QDISC_KINDS:
            raise RuntimeError(f"qdisc model {model.__name__}: no C provider named {kind!r} (native/qdisc.h)")
        if model.passthrough:
            _check_against_provider(kind, model)
        hints = typing.get_type_hints(model, include_extras=True)
        schema = model.model_json_schema()["properties"] if model.model_fields else {}
        for key, info in model.model_fields.items():
            if key in fields and fields[key][2] != schema[key]:
                raise RuntimeError(f"qdisc.{key}: declared differently by two queue disciplines")
            fields.setdefault(key, (hints[key], info.default, schema[key]))
    kinds = tuple(models)
    described = ", ".join(f"{k} ({m.summary})" if m.summary else k for k, m in models.items())
    return create_model("Qdisc", __base__=Strict,
                        __doc__="Queue discipline of the switch egress data queues (None: red_ecn with ECN "
                                "thresholds, else drop_tail): the union of the disciplines' config models.",
                        kind=(Choice(kinds, described, noun="qdisc") | None, None),
                        **{k: (t, d) for k, (t, d, _) in fields.items()})


Qdisc = _union(MODELS)
KINDS = tuple(MODELS)


def owner(key: str) -> str:
    """The discipline whose model declares ``key``."""
    return next(k for k, m in MODELS.items() if key in m.model_fields)


def resolve(given: dict | None, ecn: dict | None, mtu_payload: int) -> dict:
    """Every qdisc setting a run applies (config.json ``resolved.qdisc``); errors name ``qdisc.<key>``."""
    q = section(Qdisc, given, "qdisc").model_dump()
    kind = q.pop("kind") or ("red_ecn" if ecn is not None else "drop_tail")
    model = MODELS[kind]
    for k, v in q.items():
        if v is not None and k not in model.model_fields:
            raise ValueError(f"qdisc.{k} is a {owner(k)} parameter; qdisc.kind is {kind!r}")
    return {"kind": kind, **model.resolve({k: q[k] for k in model.model_fields}, ecn, mtu_payload)}


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
    MODELS[resolved["kind"]].install(net, resolved)


__all__ = ["Qdisc", "QdiscModel", "MODELS", "TrafficClass", "KINDS", "resolve", "tc_params", "install"]
