"""The declared schema of a scenario: the shared field types, one validation entry point.

Everything a user can set on a :class:`controlplane.run.scenario.Scenario` (from Python, a JSON/TOML
file given to ``softdpu run --config`` or ``--set``) is checked before anything is built. Each
section's pydantic model lives beside the mechanism it configures, with its defaults, units,
bounds and a one-line description per field (topology.py, workload.py, ecn.py, pfc.py,
multipath.py, failures.py, qpc.py, vswitch.py, vtax.py, capture.py); controlplane/config/models.py
gathers them into ``ScenarioModel``. This module holds what they share:

- strict types: a boolean is ``True``/``False`` (never the string ``"no"``), a count is an integer
  (an integral float such as ``1e6`` is taken as the integer), NaN and infinities are refused;
- units: a field whose name ends in ``_bps``, ``_bytes`` or ``_ps`` also takes a unit string
  (``"100G"``, ``"16MiB"``, ``"500ns"``), converted exactly by :mod:`controlplane.config.units`
  (``"1.5ps"`` is refused, never rounded);
- bounds: the time and budget fields take their range from :mod:`controlplane.config.limits` (its table
  stays the one place that says why a floor is where it is); other quantities are >= 0 or > 0;
- names: an unknown key is refused with the closest valid names at that place.

:func:`validate` returns the scenario dict with the values normalized (``"4MB"`` -> 4000000,
``1e9`` -> 1000000000) and only the keys the user gave (the defaults are the models' and the
Scenario dataclass's: each mechanism completes its section with :func:`section`), or raises one
ValueError whose message has one line per problem, each starting with the field's path as the
user wrote it (``topology.num_hosts``, ``failures[1].down_ps``, ``dpu.slow_path.handlers``).

Checks that need the built fabric (a host id below the host count, senders < hosts, a link index)
stay in the code that builds it; each CC checks its own parameters (congestion.api check_params).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WithJsonSchema

from controlplane.config import limits
from controlplane.config.units import BASE_UNIT, parse_quantity, unit_kind
from controlplane.config.values import closest

MAX_TIME_PS = limits.MAX_TIME_PS
_EXAMPLES = {"rate": "100G, 100Gbps, 25Mbps", "size": "16MB, 16MiB, 4096", "time": "500ns, 1us, 2ms"}


# ---------------------------------------------------------------------------------- value types
def _int_of(x: Any) -> int | None:
    """An int for an int, a numpy integer or a finite integral float; None otherwise (bools too)."""
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (Integral, np.integer)):
        return int(x)
    if isinstance(x, Real):
        f = float(x)
        if math.isfinite(f) and f == math.floor(f):
            return int(f)
    return None


def _integer(kind: str | None, lo: float | None, hi: float | None, zero_off: bool = False, lim=None):
    """A validator for an integer field, with units when ``kind`` is 'rate', 'size' or 'time'."""
    noun = {"rate": "a rate in bit/s", "size": "a size in bytes", "time": "a time in ps", None: "an integer"}[kind]

    def check(x: Any) -> int:
        given = x
        if isinstance(x, str) and kind is not None:
            try:
                x = parse_quantity(x, kind)
            except ValueError as e:
                raise ValueError(f"must be {noun} (e.g. {_EXAMPLES[kind]}), got {given!r}: {e}") from None
        if lim is not None:                  # the limits table: its wording, its floor's reason
            return limits.check_value("", x, lim) if not (isinstance(x, str)) else _refuse_text(x, lim)
        v = _int_of(x)
        if v is None:
            what = " (a whole number)" if isinstance(x, float) and math.isfinite(x) else ""
            unit = f" or a string with a unit such as {_EXAMPLES[kind]}" if kind else ""
            raise ValueError(f"must be {noun}{what}{unit}, got {given!r}")
        if zero_off and v == 0:
            return v
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo == 1:
                rule = "a positive integer (>= 1)" + (f" and <= {_num(hi)}" if hi is not None else "")
            elif lo is not None and hi is not None:
                rule = f"in [{_num(lo)}, {_num(hi)}]"
            elif hi is not None:
                rule = f"<= {_num(hi)}"
            else:
                rule = f">= {_num(lo)}"
            shown = f"{given!r} ({v} {BASE_UNIT[kind]})" if isinstance(given, str) and kind else repr(given)
            raise ValueError(f"must be {rule}{' (or 0: off)' if zero_off else ''}, got {shown}")
        return v
    return check


def _num(v: float) -> str:
    """A bound as text: an integer in full (16777215, not 1.67772e+07)."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _refuse_text(x: str, lim) -> int:
    return limits.check_value("", x, lim)      # a string where no unit applies: refused in its words


def _json_int(kind: str | None, lo, hi, description: str) -> dict:
    s: dict = {"type": "integer", "description": description}
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    if kind is not None:
        s = {"anyOf": [s, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*[A-Za-zµ/]*\s*$"}],
             "description": f"{description} ({BASE_UNIT[kind]}; also a string with a unit: {_EXAMPLES[kind]})"}
    return s


#: the largest size in bytes any field takes (1 PB: beyond any buffer or message; the data plane's
#: byte counters are 64-bit, and ECN thresholds are scaled by the port rate, so 2^64 is no bound)
MAX_SIZE_BYTES = 10**15
#: the data plane's 32-bit counts (ack_interval, pkt_pool, trace capacity)
MAX_U32 = 2**32 - 1


def Int(description: str, lo: float | None = 0, hi: float | None = None, *, kind: str | None = None,
        zero_off: bool = False):
    """An integer field (a count, or a rate/size/time when ``kind`` is given); a size is at most
    MAX_SIZE_BYTES unless ``hi`` says otherwise."""
    if kind == "size" and hi is None:
        hi = MAX_SIZE_BYTES
    return Annotated[Any, BeforeValidator(_integer(kind, lo, hi, zero_off)),
                     WithJsonSchema(_json_int(kind, lo, hi, description))]


def Limited(path: str):
    """A time or budget field whose rule is the row ``path`` of controlplane/config/limits.py."""
    lim = limits.TABLE[path]
    kind = "time" if lim.kind == "time" else None
    if lim.kind == "seconds":
        def check(x):
            return limits.check_value("", x, lim)
        schema = {"type": "number", "minimum": 0, "maximum": lim.max, "description": f"{lim.meaning} ({lim.unit})"}
    else:
        check = _integer(kind, lim.min, lim.max, lim.zero_off, lim)
        schema = _json_int(kind, 0 if lim.zero_off else lim.min, lim.max, lim.meaning if kind else f"{lim.meaning} ({lim.unit})")
        if lim.kind == "time":
            base = check

            def check(x, base=base):       # a time with a unit, then the table's range
                given = x
                if isinstance(x, str) and x.strip().lower() not in ("none", "null"):
                    try:
                        x = parse_quantity(x, "time")
                    except ValueError as e:
                        raise ValueError(f"must be a time in ps (e.g. {_EXAMPLES['time']}), got {x!r}: {e}") from None
                try:
                    return base(x)
                except ValueError as e:
                    if given is x:
                        raise
                    # name the value as the user wrote it: got '500ns' (500000 ps)
                    raise ValueError(str(e).replace(f"got {x!r}", f"got {given!r} ({x} ps)", 1)) from None
    if lim.optional:
        schema = {"anyOf": [schema, {"type": "null"}], "description": schema.get("description", "")}
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


def _real(lo: float | None, hi: float | None, lo_open: bool = False):
    def check(x: Any):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (Real, np.floating, np.integer)):
            raise ValueError(f"must be a number, got {x!r}")
        f = float(x)
        if not math.isfinite(f):
            raise ValueError(f"must be a finite number, got {x!r}")
        if lo is not None and (f < lo or lo_open and f == lo):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}, got {x!r}")
        if hi is not None and f > hi:
            raise ValueError(f"must be <= {hi:g}, got {x!r}")
        return x if isinstance(x, (int, float)) else f      # the value as given: 1 stays 1
    return check


def Num(description: str, lo: float | None = 0, hi: float | None = None, lo_open: bool = False):
    """A finite real number (a probability, a ratio): NaN and infinities are refused."""
    s: dict = {"type": "number", "description": description}
    if lo is not None:
        s["exclusiveMinimum" if lo_open else "minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return Annotated[Any, BeforeValidator(_real(lo, hi, lo_open)), WithJsonSchema(s)]


def _bool(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise ValueError(f"must be a bool (true or false), got {x!r}")


def Bool(description: str):
    """A strict boolean: True/False only (``"no"`` and 1 are refused)."""
    return Annotated[Any, BeforeValidator(_bool), WithJsonSchema({"type": "boolean", "description": description})]


def _text(x: Any) -> str:
    if not isinstance(x, str) or not x:
        raise ValueError(f"must be a non-empty string, got {x!r}")
    return x


def Text(description: str):
    return Annotated[Any, BeforeValidator(_text), WithJsonSchema({"type": "string", "description": description})]


def _choice(options: tuple, noun: str):
    def check(x: Any):
        if isinstance(x, str) and x in options:
            return x
        near = closest(str(x), options) if isinstance(x, str) else []
        hint = f" (closest: {', '.join(near)})" if near else ""
        if noun:                             # the mechanism's own wording: "transport: unknown mode 'irn'"
            raise ValueError(f"unknown {noun} {x!r}; known: {', '.join(map(repr, options))}{hint}")
        raise ValueError(f"must be one of {', '.join(map(repr, options))}, got {x!r}{hint}")
    return check


def Choice(options: tuple, description: str, noun: str = ""):
    return Annotated[Any, BeforeValidator(_choice(options, noun)),
                     WithJsonSchema({"enum": list(options), "description": description})]


def _dict(x: Any) -> dict:
    if not isinstance(x, dict):
        raise ValueError(f"must be a dict (a JSON object), got {x!r}")
    return x


def Section(description: str):
    """A dict whose keys are checked elsewhere (a CC's parameters, a DPU sub-section's detail)."""
    return Annotated[Any, BeforeValidator(_dict), WithJsonSchema({"type": "object", "description": description})]


def _host_list(x: Any) -> list:
    if isinstance(x, (str, bytes, dict)) or not isinstance(x, (list, tuple)):
        raise ValueError(f"must be a list of host ids, got {x!r}")
    out = []
    for i, h in enumerate(x):
        v = _int_of(h) if not isinstance(h, float) else None
        if v is None or v < 0:
            raise ValueError(f"[{i}]: {h!r} is not a host id (an integer >= 0)")
        out.append(v)
    return out


class Strict(BaseModel):
    """Base of every section: unknown keys refused, values validated on assignment too."""
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


# ---------------------------------------------------------------------------------- shared bits of sections
RATE = dict(lo=1, kind="rate")
DELAY = dict(lo=0, hi=MAX_TIME_PS, kind="time")


def _tag(key: str):
    def get(v: Any):
        return v.get(key) if isinstance(v, dict) else getattr(v, key, None)
    return get


def HostList(description: str, all_ok: bool = False):
    """A list of host ids (each an integer >= 0); with ``all_ok`` also the string "all"."""
    def check(x: Any):
        return x if all_ok and x == "all" else _host_list(x)
    items = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    schema = {"anyOf": [{"const": "all"}, items], "description": description} if all_ok else \
        {**items, "description": description}
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


def defaults(model: type[BaseModel]) -> dict:
    """A section's defaults as a dict (the model is where they are written)."""
    return model().model_dump()


def section(model: type[BaseModel], given: Any, path: str) -> BaseModel:
    """``given`` (a dict, or None for every default) validated against a section's ``model``; a
    ValueError has one line per problem, each naming the field by its full path as the user
    wrote it (``path`` is where the section sits: ``dpu.slow_path``, ``dpu.tax``)."""
    if given is None:
        given = {}
    if isinstance(given, BaseModel):
        given = given.model_dump(exclude_unset=True)
    if not isinstance(given, dict):
        raise ValueError(f"{path} must be a dict (a JSON object) or None, got {given!r}")
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise ValueError("\n".join(_message(model, e, given, prefix=path) for e in exc.errors())) from None


# ---------------------------------------------------------------------------------- entry points
def _path(loc: tuple, prefix: str = "") -> str:
    out = prefix
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_tag(loc, i):
            continue                                  # the union's branch name is not a user's key
        else:
            out += f".{part}" if out else str(part)
    return out


_TAGS = {"incast", "permutation", "poisson", "flows", "pcap", "function-after", "function-before"}


def _tags() -> set[str]:
    """The branch names of the tagged unions: the workload kinds and every registered topology kind
    (controlplane/fabric/topology.py register_topology)."""
    from controlplane.fabric.topology import MODELS
    return _TAGS | set(MODELS)


def _is_tag(loc: tuple, i: int) -> bool:
    """Is loc[i] the branch (tag) pydantic inserts after a tagged union (topology, workload) or a
    validator step, rather than a key the user wrote?"""
    return (i == 1 and loc[0] in ("topology", "workload") and loc[1] in _tags()) or loc[i] in ("function-after",
                                                                                              "function-before")


def _known_at(model: type[BaseModel], loc: tuple, data: Any) -> list[str]:
    """The field names valid at ``loc`` (for closest-name suggestions)."""
    m: Any = model
    node = data
    for i, part in enumerate(loc[:-1]):
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if _is_tag(loc, i):
            continue
        fields = getattr(m, "model_fields", {})
        if part not in fields:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        m = _model_of(fields[part].annotation, node)
    return list(getattr(m, "model_fields", {}))


def _model_of(ann: Any, node: Any):
    import typing
    stack = [ann]
    found = []
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            found.append(a)
            continue
        stack.extend(typing.get_args(a))
    if isinstance(node, dict):
        for m in found:
            for key in ("topology", "kind"):
                f = m.model_fields.get(key)
                if f is not None and node.get(key) in typing.get_args(f.annotation):
                    return m
    if len(found) == 1 or (found and list(found[0].model_fields) and "list" in str(ann)):
        return found[0]
    return None


def _message(model: type[BaseModel], err: dict, data: Any, prefix: str = "") -> str:
    path = _path(err["loc"], prefix)
    typ = err["type"]
    given = err.get("input")
    if typ == "extra_forbidden":
        name = str(err["loc"][-1])
        known = _known_at(model, err["loc"], data)
        near = closest(name, known)
        hint = f"; closest: {', '.join(near)}" if near else ""
        parent = path[:-len(name)].rstrip(".") or prefix or "scenario"
        return f"{parent}: unknown key {name!r} ({path}){hint} (known here: {', '.join(sorted(known))})"
    if typ == "missing":
        return f"{path} must be set: it is required and missing"
    if typ == "value_error":
        msg = str(err["ctx"]["error"]).strip()
        if msg.startswith(("must be", "is not")):
            return f"{path} {msg}"
        if msg.startswith("["):                       # an element: hosts[2] = ...
            return f"{path}{msg}"
        if msg.startswith(path.rsplit(".", 1)[-1] + " must"):
            return f"{path}{msg[len(path.rsplit('.', 1)[-1]):]}" if "." in path else msg
        head = msg.split(" ", 1)[0]
        if head.isidentifier() and msg[len(head):].startswith(" must"):   # a model-level rule naming a key
            return f"{path}.{msg}" if path else msg
        return f"{path}: {msg}"
    if typ in ("topology", "workload_kind"):
        key = "topology" if typ == "topology" else "kind"
        tag = given.get(key) if isinstance(given, dict) else None
        if not isinstance(given, dict):
            return f"{path} must be a dict with a {key!r} key, got {given!r}"
        names = [t for t in _tags() if t in str(err["msg"])]
        near = closest(str(tag), names) if isinstance(tag, str) else []
        hint = f" (closest: {', '.join(near)})" if near else ""
        return f"{path}.{key}: {err['msg']}, got {tag!r}{hint}"
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path} must be a dict (a JSON object) or None, got {given!r}"
    if typ == "list_type":
        return f"{path} must be a list, got {given!r}"
    return f"{path}: {err['msg']}, got {given!r}"


def validate(d: dict, model: type[BaseModel] | None = None) -> dict:
    """``d`` (a scenario as a dict) checked against the schema and normalized: returns a new dict,
    the keys ``d`` had with their values converted (units, integral floats) and nested sections
    holding only the keys given. Raises ValueError with one line per problem, each naming the
    field's path as the user wrote it."""
    if model is None:
        from controlplane.config.models import ScenarioModel as model
    if not isinstance(d, dict):
        raise ValueError(f"a scenario must be a dict, got {d!r}")
    try:
        m = model.model_validate({k: v for k, v in d.items()})
    except ValidationError as exc:
        raise ValueError("\n".join(_message(model, e, d) for e in exc.errors())) from None
    out = dict(d)
    for k in d:
        if k in model.model_fields:
            out[k] = _dump(getattr(m, k), d[k])
    return out


def _dump(v: Any, given: Any) -> Any:
    """The validated value in the shape the user gave: a section keeps its keys, in their order."""
    if isinstance(v, BaseModel) and isinstance(given, dict):
        return {k: _dump(getattr(v, k), x) for k, x in given.items()}
    if isinstance(v, list) and isinstance(given, (list, tuple)):
        return [_dump(x, g) for x, g in zip(v, given)]
    if isinstance(v, dict) and isinstance(given, dict) and len(v) == len(given) and \
            any(isinstance(x, BaseModel) for x in v.values()):      # named sections (nic_profiles.profiles)
        return {k: _dump(x, g) for (k, x), g in zip(v.items(), given.values())}
    return v


def scenario_model_partial() -> type[BaseModel]:
    from controlplane.config.models import ScenarioModel
    return ScenarioModel


def json_schema() -> dict:
    """The JSON Schema of a scenario, with the Scenario dataclass's defaults filled in."""
    from dataclasses import MISSING, fields
    from controlplane.config.models import ScenarioModel
    from controlplane.run.scenario import Scenario
    s = ScenarioModel.model_json_schema()
    s["title"] = "softdpu scenario"
    s.pop("required", None)                          # every top-level field has a default
    for f in fields(Scenario):
        prop = s["properties"].get(f.name)
        if prop is None:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        prop["default"] = default
    from congestion.params import add_to_scenario_schema       # each built-in CC's cc_params, by cc
    return add_to_scenario_schema(s, Scenario.cc)


# The section models live beside their mechanisms (controlplane/config/models.py gathers them); their
# names stay importable from here.
_MODEL_NAMES = ("ScenarioModel", "SingleSwitch", "Dumbbell", "LeafSpine", "FatTree", "RailClos", "Topology",
                "Incast", "Permutation", "Poisson", "FlowSpec", "Flows", "Pcap", "Workload", "Ecn", "PfcParams",
                "TransportParams", "PathParams", "FailureParams", "Failure", "Qpc", "PolicySpec", "VSwitch",
                "SlowPath", "Tax", "Dpu", "CaptureFilter")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from controlplane.config import models
        return getattr(models, name)
    raise AttributeError(f"module 'controlplane.config.schema' has no attribute {name!r}")


__all__ = ["validate", "json_schema", "section", "defaults", "Strict", "Int", "Num", "Bool", "Choice", "Text",
           "Section", "Limited", "HostList", "unit_kind"]
