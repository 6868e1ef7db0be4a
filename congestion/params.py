"""Declared parameters of a congestion control: one pydantic model per algorithm.

Each algorithm declares its parameters as a nested ``Params`` class (a :class:`CCParams`, built
on the scenario schema's strict base, controlplane/config/schema.py ``Strict``), one field per
parameter, in the order of its C twin's parameter block::

    class Params(CCParams):
        g: Real("alpha gain", gt=0, le=1) = 1 / 256
        rai_bps: Rate("additive increase step", ge=0) = 40e6
        rmin_bps: Rate("rate floor of the algorithm", floor=True) = 100e6
        alpha_period_ps: Time("alpha update period", ge=1, le=MAX_PS) = 55_000_000
        base_rtt_ps: Time("base RTT", gt=0, fabric=True) = None      # None until bind()

That model is the single source of the algorithm's defaults (the field defaults), units (the
field kind: a rate in bit/s takes ``"100G"``, a time in ps ``"1us"``, a size in bytes
``"16MB"``, converted exactly by controlplane/config/units.py), bounds and one-line descriptions.
From it come :meth:`CongestionControl.defaults`, ``param_rules`` and ``check_params``
(congestion/api.py), the parameters' typing on the command line (``--set dcqcn.rai_bps=40M``,
controlplane/run/experiment.py), the JSON Schema (``softdpu schema``, ``softdpu schema --cc NAME``)
and the parameter lines of ``softdpu run EXP --help``.

Validation has two steps, as the C twins' (native/sim.h ``CC_NEED``): first the type of every
parameter (a strict bool is a bool; counts, rates, sizes and times in ps are whole numbers; NaN
and infinities are refused; a bool is not a number), then each bound in field order, in the
words of the C twin's validate() (``in (0, 1]``, ``>= 1e+06 (the rate floor, 1 Mb/s)``; a bound
may refer to another parameter: ``> t_low_ps``). Parameters still None (filled in from the
fabric by ``bind``) and bounds that read one are skipped until then. The first problem is
raised as one line naming the parameter as the user wrote it:
``dcqcn: cc_params.rai_bps must be >= 0, got -1``; an unknown name lists the closest valid
names (difflib).
"""
from __future__ import annotations

import math
import typing
from numbers import Real as _RealNumber
from typing import Annotated, Any, Callable, ClassVar

from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from controlplane.config import schema as config
from controlplane.config.units import BASE_UNIT, parse_quantity
from controlplane.config.values import NONE_WORDS, closest, parse_bool, parse_float, parse_int
from dataplane.sim import MIN_RATE_BPS

# Shared parameter rules (the same words as native/sim.h CC_RULE_RATE, CC_MAX_PS, CC_MAX_BYTES)
RULE_RATE = ">= 1e+06 (the rate floor, 1 Mb/s)"
MAX_PS = 1e15                  # time parameters that become int64 deadlines: <= 1000 s
MAX_BYTES = 1e15               # byte parameters that become uint64 windows or counters
FABRIC = "the scenario computes it from the fabric"

#: a parameter rule: (name, test of (value, all parameters), words); see CongestionControl.check_params
Rule = tuple[str, Callable[[float, dict], bool], str]


def value_text(v: Any) -> str:
    """A parameter value as the C side prints it (%g, NaN)."""
    if isinstance(v, _RealNumber) and not isinstance(v, bool):
        f = float(v)
        return "NaN" if f != f else f"{f:g}"
    return repr(v)


def _got(given: Any, value: Any) -> str:
    """The value in an error: as the C side prints it, and as the user wrote it when that was
    text that reads differently (``500000 (from '500K')``)."""
    text = value_text(value)
    if isinstance(given, str) and given.strip() != text:
        return f"{text} (from {given!r})"
    return value_text(given) if not isinstance(given, str) else text


# ------------------------------------------------------------------------------ one parameter
class Spec:
    """What a parameter field is, besides its type: its kind ('rate', 'size', 'time' = an integer
    with a unit; 'count' = an integer; 'real', 'real_time', 'real_size' = a finite number, with
    a unit for the last two; 'bool'; 'choice'), its one-line description, and its bound (the C
    twin's rule): ge/gt/le/lt, ``gt_field`` (greater than another parameter), ``floor`` (the
    rate floor), ``fabric`` (optional: None until bind fills it in), ``note`` (words added to the
    rule, e.g. FABRIC), the words of the rule (default: made from the bounds as the C twins word
    them)."""

    def __init__(self, kind: str, description: str, ge=None, gt=None, le=None, lt=None, gt_field: str | None = None,
                 floor: bool = False, fabric: bool = False, words: str | None = None, note: str | None = None):
        if floor:
            ge = MIN_RATE_BPS
        self.kind, self.description = kind, description
        self.ge, self.gt, self.le, self.lt, self.gt_field = ge, gt, le, lt, gt_field
        self.floor, self.fabric, self.note = floor, fabric, note
        self.words = words if words is not None else self._words()

    @property
    def unit(self) -> str | None:
        base = {"rate": "rate", "size": "size", "time": "time", "real_time": "time", "real_size": "size"}.get(self.kind)
        return BASE_UNIT[base] if base else None

    @property
    def has_rule(self) -> bool:
        return any(b is not None for b in (self.ge, self.gt, self.le, self.lt, self.gt_field))

    def _words(self) -> str:
        """The rule in the C twins' words: '>= 0', '> 0', 'in (0, 1]', 'in [1, 1e+15] ps'."""
        lo, lo_open = (self.gt, True) if self.gt is not None else (self.ge, False)
        hi, hi_open = (self.lt, True) if self.lt is not None else (self.le, False)
        unit = {"ps": " ps", "bytes": " bytes"}.get(self.unit or "", "")
        if self.floor:
            w = RULE_RATE
        elif self.gt_field is not None:
            w = f"> {self.gt_field}" + (f" and {'<' if hi_open else '<='} {hi:g}" if hi is not None else "")
        elif lo is not None and hi is not None:
            w = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}{unit}"
        elif lo is not None:
            w = f"{'>' if lo_open else '>='} {lo:g}"
        elif hi is not None:
            w = f"{'<' if hi_open else '<='} {hi:g}"
        else:
            return ""
        if self.note:
            w += f" ({self.note})"
        return w

    def ok(self, v: float, p: dict) -> bool:
        """The rule on a finite value ``v`` (the other parameters in ``p``); TypeError when it
        reads a parameter that is still None."""
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt)
                and (self.gt_field is None or v > float(p[self.gt_field])))

    def schema(self) -> dict:
        """The bound as JSON Schema keywords (a bound on another parameter is only described)."""
        s: dict = {}
        for key, b in (("minimum", self.ge), ("exclusiveMinimum", self.gt), ("maximum", self.le),
                       ("exclusiveMaximum", self.lt)):
            if b is not None:
                s[key] = b
        return s

    def with_bound(self, **kw) -> Spec:
        """A copy with another bound (DCQCN's dec_period_ps depends on the flavour)."""
        d = dict(ge=self.ge, gt=self.gt, le=self.le, lt=self.lt, gt_field=self.gt_field, floor=self.floor,
                 fabric=self.fabric, note=self.note)
        d.update(kw)
        return Spec(self.kind, self.description, **d)

    def __repr__(self) -> str:
        return f"Spec({self.kind!r}, {self.words!r})"


def _unit_number(kind: str):
    """A finite number, or a string with a unit of ``kind`` (converted exactly)."""
    def check(x: Any):
        if isinstance(x, str):
            try:
                return parse_quantity(x, kind)
            except ValueError as e:
                raise ValueError(f"must be a number of {BASE_UNIT[kind]} or a string with a unit "
                                 f"({config._EXAMPLES[kind]}), got {x!r}: {e}") from None
        return x
    return check


def _field(base: Any, spec: Spec):
    t = Annotated[base, spec]
    return typing.Optional[t] if spec.fabric else t


def Rate(description: str, **bound):
    """A rate in bit/s: a whole number, or a string with a unit (``40M``, ``100Gbps``)."""
    return _field(config.Int(description, lo=None, kind="rate"), Spec("rate", description, **bound))


def Time(description: str, **bound):
    """A time in ps: a whole number, or a string with a unit (``500ns``, ``1us``, ``2ms``)."""
    return _field(config.Int(description, lo=None, kind="time"), Spec("time", description, **bound))


def Bytes(description: str, **bound):
    """A size in bytes: a whole number, or a string with a unit (``16MB``, ``16MiB``)."""
    return _field(config.Int(description, lo=None, kind="size"), Spec("size", description, **bound))


def Count(description: str, **bound):
    """A whole number without a unit."""
    return _field(config.Int(description, lo=None), Spec("count", description, **bound))


def Real(description: str, unit: str | None = None, **bound):
    """A finite real number (a gain, a fraction, a window in packets); with ``unit`` 'time' or
    'size' also a string with that unit (a per-hop delay scale, a window in bytes that may be
    fractional)."""
    base = config.Num(description, lo=None)
    if unit is not None:
        base = Annotated[base, BeforeValidator(_unit_number(unit))]
    return _field(base, Spec(f"real_{unit}" if unit else "real", description, **bound))


def Flag(description: str):
    """A strict boolean (True/False; on the command line true/false, yes/no, on/off, 1/0)."""
    return Annotated[config.Bool(description), Spec("bool", description)]


def OneOf(options: tuple, description: str):
    """One of a few names (DCQCN's flavour)."""
    return Annotated[config.Choice(options, description), Spec("choice", description)]


def spec_of(annotation: Any, metadata: list | None = None) -> Spec | None:
    """The Spec carried by a field (inside an Optional too)."""
    for m in metadata or []:
        if isinstance(m, Spec):
            return m
    stack = [annotation]
    while stack:
        a = stack.pop()
        for m in getattr(a, "__metadata__", ()):
            if isinstance(m, Spec):
                return m
        stack.extend(typing.get_args(a))
    return None


# ------------------------------------------------------------------------------ the model
class CCParams(config.Strict):
    """Base of every algorithm's parameter model: unknown names refused, each field declared with
    :func:`Rate`, :func:`Time`, :func:`Bytes`, :func:`Count`, :func:`Real`, :func:`Flag` or
    :func:`OneOf` and its default. Fields are in the C twin's parameter order (its rules are
    checked in that order)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    #: the model's parameters by name -> Spec (filled in by __pydantic_init_subclass__)
    specs: ClassVar[dict[str, Spec]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kw):
        super().__pydantic_init_subclass__(**kw)
        specs = {}
        for name, f in cls.model_fields.items():
            s = spec_of(f.annotation, f.metadata)
            if s is None and not cls.__pydantic_complete__:
                raise TypeError(f"{cls.__qualname__}.{name}: its annotation could not be resolved (with `from "
                                f"__future__ import annotations` the class must be in an importable module whose "
                                f"names include Rate, Time, ...)")
            if s is None:
                raise TypeError(f"{cls.__qualname__}.{name}: declare it with Rate, Time, Bytes, Count, Real, Flag "
                                f"or OneOf (congestion/params.py)")
            if f.is_required():
                raise TypeError(f"{cls.__qualname__}.{name}: give it a default (None for one that bind() computes "
                                f"from the fabric, declared with fabric=True)")
            specs[name] = s
        cls.specs = specs

    # -------------------------------------------------------------- defaults and rules
    @classmethod
    def defaults(cls, **selection: Any) -> dict[str, Any]:
        """Every parameter's default, in field order. ``selection`` holds parameters the user
        gave that choose other defaults (override: DCQCN's flavour)."""
        return {n: f.get_default(call_default_factory=True) for n, f in cls.model_fields.items()}

    @classmethod
    def spec_for(cls, name: str, params: dict | None = None) -> Spec:
        """The rule of ``name`` given the other parameters (None: not known yet). Override when a
        bound depends on another parameter's value (DCQCN's dec_period_ps on the flavour)."""
        return cls.specs[name]

    @classmethod
    def rules(cls, params: dict | None = None) -> list[Rule]:
        """The bounds as (name, ok(value, params), words), in field order (the C twin's)."""
        out = []
        for name in cls.model_fields:
            s = cls.spec_for(name, params)
            if s.has_rule:
                out.append((name, s.ok, s.words))
        return out

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """Absent parameters take the defaults the given ones select (DCQCN's flavour)."""
        if isinstance(data, dict):
            d = cls.defaults(**{k: v for k, v in data.items() if isinstance(k, str)})
            if any(d[k] != f.get_default(call_default_factory=True) for k, f in cls.model_fields.items() if k in d):
                return {**{k: v for k, v in d.items() if k not in data}, **data}
        return data

    @model_validator(mode="after")
    def _bounds(self, info: ValidationInfo):
        p = {n: getattr(self, n) for n in type(self).model_fields}
        given = (info.context or {}).get("given", {}) if info is not None else {}
        for name, ok, words in type(self).rules(p):
            v = p[name]
            if v is None:
                continue
            try:
                good = ok(float(v), p)
            except TypeError:                    # the rule reads a parameter not bound yet (None)
                continue
            if not good:
                raise PydanticCustomError("cc_bound", "{name} must be {words}, got {got}",
                                          {"name": name, "words": words, "got": _got(given.get(name, v), v)})
        return self

    # -------------------------------------------------------------- entry points
    @classmethod
    def check(cls, cc: str, params: dict, given: dict | None = None) -> dict[str, Any]:
        """``params`` validated: the full parameter dict (defaults for those absent), values given
        as strings or integral floats normalized (``"40M"`` -> 40000000), defaults kept exactly as
        declared. Raises one-line ValueError ``"<cc>: cc_params.<name> ..."``."""
        if not isinstance(params, dict):
            raise ValueError(f"{cc}: cc_params must be a dict (a JSON object), got {params!r}")
        odd = [k for k in params if not isinstance(k, str)]
        if odd:
            raise ValueError(f"{cc}: cc_params keys are parameter names (text), got {odd[0]!r}; "
                             f"known: {', '.join(cls.model_fields) or 'none'}")
        try:
            m = cls.model_validate(params, context={"given": params if given is None else given})
        except ValidationError as exc:
            raise ValueError(cls.message(cc, exc.errors())) from None
        defaults = cls.defaults(**params)
        return {n: (getattr(m, n) if n in params else defaults[n]) for n in cls.model_fields}

    @classmethod
    def message(cls, cc: str, errors: list[dict], prefix: str = "cc_params.") -> str:
        """The first problem of a validation, as one line naming the parameter."""
        unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            known = list(cls.model_fields)
            hints = []
            for u in unknown:
                near = closest(u, known)
                hints.append(f"{prefix}{u}" + (f" (closest: {', '.join(near)})" if near else ""))
            return (f"{cc}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                    f"known: {', '.join(known) if known else 'none (it takes no parameters)'}")
        e = errors[0]
        if e["type"] == "cc_bound":
            c = e["ctx"]
            return f"{cc}: {prefix}{c['name']} must be {c['words']}, got {c['got']}"
        name = ".".join(str(x) for x in e["loc"] if x not in ("function-before", "function-after"))
        if e["type"] == "value_error":
            msg = str(e["ctx"]["error"]).strip()
            return f"{cc}: {prefix}{name} {msg}" if msg.startswith("must") else f"{cc}: {prefix}{name}: {msg}"
        return f"{cc}: {prefix}{name}: {e['msg']}, got {e.get('input')!r}"

    @classmethod
    def typed(cls, name: str, value: Any) -> Any:
        """``value`` as parameter ``name`` takes it (its type only, no bounds): the normalized value,
        or ValueError saying what the type expects."""
        if value is None and cls.specs[name].fabric:
            return None
        try:
            return _adapter(cls, name).validate_python(value)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise ValueError(str(e["ctx"]["error"]).strip() if e["type"] == "value_error"
                             else f"{e['msg']}, got {value!r}") from None

    @classmethod
    def check_value(cls, cc: str, name: str, value: Any, key: str | None = None) -> Any:
        """One parameter on its own (the command line checks each ``--set`` as typed): its type
        and the bounds that do not read another parameter. Returns the normalized value; raises
        ValueError naming ``key`` (default ``cc_params.<name>``)."""
        key = key or f"cc_params.{name}"
        label = key if key.startswith(f"{cc}.") else f"{cc}: {key}"      # dcqcn.g names the CC itself
        try:
            v = cls.typed(name, value)
        except ValueError as e:
            msg = str(e)
            raise ValueError(f"{label} {msg}" if msg.startswith("must") else f"{label}: {msg}") from None
        s = cls.spec_for(name, None)
        if s.has_rule and s.gt_field is None and v is not None and not isinstance(v, (bool, str)):
            if not s.ok(float(v), {}):
                raise ValueError(f"{label} must be {s.words}, got {_got(value, v)}")
        return v

    @classmethod
    def from_text(cls, cc: str, name: str, text: str, key: str | None = None) -> Any:
        """A parameter typed on the command line (``--set dcqcn.rai_bps=40M``, ``...=none`` for a
        fabric-derived one), typed by its field and checked by :meth:`check_value`."""
        key = key or f"cc_params.{name}"
        s = cls.specs[name]
        t = str(text).strip()
        if s.fabric and t.lower() in NONE_WORDS:
            return None
        try:
            if s.kind == "bool":
                value: Any = parse_bool(key, t)
            elif s.kind == "count":
                value = parse_int(key, t)
            elif s.kind == "real":
                value = parse_float(key, t)
            elif s.kind in ("real_time", "real_size"):
                try:
                    value = parse_float(key, t)
                except ValueError:
                    value = t                    # a unit string: the field converts it
            else:
                value = t                        # rates, sizes, times (units), choices: the field reads text
        except ValueError as e:
            raise ValueError(str(e) if key.startswith(f"{cc}.") else f"{cc}: {e}") from None
        return cls.check_value(cc, name, value, key)

    # -------------------------------------------------------------- documentation
    @classmethod
    def json_schema(cls, cc: str) -> dict:
        """This algorithm's parameters as a JSON Schema: type, unit, default, bounds, description."""
        s = cls.model_json_schema()
        s["title"] = f"{cc} parameters (cc_params when cc is {cc!r})"
        s["description"] = (f"Parameters of congestion control {cc!r}. Absent ones take their default; "
                            f"those whose default is null are computed from the fabric.")
        props = s.setdefault("properties", {})
        for name, spec in cls.specs.items():
            prop = props[name]
            prop.pop("title", None)
            bound = cls.spec_for(name, None)
            desc = spec.description + (f" ({spec.unit})" if spec.unit else "")
            if bound.words:
                desc += f"; must be {bound.words}"
            extra = cls.schema_note(name)
            if extra:
                desc += f"; {extra}"
            _add_bounds(prop, bound.schema())
            prop["description"] = desc
        return s

    @classmethod
    def schema_note(cls, name: str) -> str:
        """More words on a parameter for the schema (override: DCQCN's per-flavour defaults)."""
        return ""

    @classmethod
    def help_lines(cls) -> list[str]:
        """One line per parameter: name, kind and unit, default, rule, description."""
        from controlplane.run.cli import _default_text
        rows = []
        for name, s in cls.specs.items():
            d = cls.model_fields[name].get_default(call_default_factory=True)
            kind = {"rate": "rate (bit/s)", "size": "size (bytes)", "time": "time (ps)", "count": "integer",
                    "real": "number", "real_time": "number (ps)", "real_size": "number (bytes)", "bool": "boolean",
                    "choice": "one of"}[s.kind]
            default = "from the fabric" if d is None and s.fabric else _default_text(name, d) if s.kind in (
                "rate", "size", "time") else ("true" if d is True else "false" if d is False else str(d))
            rule = cls.spec_for(name, None).words
            rows.append((name, kind, default, f"{s.description}" + (f" [{rule}]" if rule else "")))
        if not rows:
            return []
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        return [f"{r[0]:{w[0]}}  {r[1]:{w[1]}}  default {r[2]:{w[2]}}  {r[3]}" for r in rows]


_ADAPTERS: dict[tuple, TypeAdapter] = {}


def _adapter(model: type[CCParams], name: str) -> TypeAdapter:
    key = (model, name)
    if key not in _ADAPTERS:
        f = model.model_fields[name]
        _ADAPTERS[key] = TypeAdapter(Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation)
    return _ADAPTERS[key]


def _add_bounds(prop: dict, bounds: dict) -> None:
    """Put numeric bounds on the integer/number branch of a property's schema."""
    if not bounds:
        return
    stack = [prop]
    while stack:
        node = stack.pop()
        if node.get("type") == "integer":
            node.update({k: int(v) if float(v).is_integer() else v for k, v in bounds.items()})
        elif node.get("type") == "number":
            node.update(bounds)
        stack.extend(node.get("anyOf", []))


# ------------------------------------------------------------------------------ whole schema
def builtin_schemas() -> dict[str, dict]:
    """Each built-in algorithm's parameter schema by name (``none`` takes no parameters)."""
    from congestion import registry
    out = {}
    for name in registry.names():
        cls = registry.load_class(name)
        model = cls.params_model()
        if model is not None:
            out[name] = model.json_schema(name)
    return out


def add_to_scenario_schema(s: dict, default_cc: str) -> dict:
    """Add each built-in CC's parameter schema to a scenario's JSON Schema: ``$defs/cc_params_<cc>``
    and one ``if cc == <cc> then cc_params is that`` clause per CC (``cc`` absent: the default,
    ``default_cc``), so that an editor validates ``cc_params`` against the CC the file runs. A
    plug-in CC's cc_params stay a free object."""
    defs = s.setdefault("$defs", {})
    clauses = []
    for name, schema in builtin_schemas().items():
        ref = f"cc_params_{name}"
        defs[ref] = schema
        then = {"properties": {"cc_params": {"$ref": f"#/$defs/{ref}"}}}
        clauses.append({"if": {"properties": {"cc": {"const": name}}, "required": ["cc"]}, "then": then})
        if name == default_cc:
            clauses.append({"if": {"not": {"required": ["cc"]}}, "then": then})
    s.setdefault("allOf", []).extend(clauses)
    prop = s.get("properties", {}).get("cc_params")
    if prop is not None:
        prop["description"] = ("the CC's parameters: for a built-in CC, $defs/cc_params_<cc> (selected by cc; "
                               "`softdpu schema --cc NAME` prints one); a plug-in checks its own")
    return s


def cc_schema(spec: str) -> dict:
    """The parameter schema of one CC (a built-in name, an entry point or a plug-in spec). A
    plug-in declared the old way (``defaults()`` only) gets a schema of its names and defaults."""
    from congestion import registry
    cls = registry.load_class(spec)
    model = cls.params_model()
    if model is not None:
        return model.json_schema(cls.name)
    try:
        d = dict(cls().defaults())
    except Exception:                              # a plug-in that needs parameters to construct
        d = dict(cls.defaults()) if isinstance(cls.__dict__.get("defaults"), classmethod) else {}
    props = {}
    for k, v in d.items():
        t = ("boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "number"
             if isinstance(v, float) else "string" if isinstance(v, str) else None)
        props[k] = {"default": v, **({"type": t} if t else {})}
    return {"title": f"{cls.name} parameters (cc_params when cc is {spec!r})", "type": "object",
            "additionalProperties": False, "properties": props,
            "description": f"{cls.name} declares its parameters the old way (defaults() and param_rules()); "
                           f"only names and defaults are known here"}


__all__ = ["CCParams", "Spec", "Rate", "Time", "Bytes", "Count", "Real", "Flag", "OneOf", "RULE_RATE", "MAX_PS",
           "MAX_BYTES", "FABRIC", "Rule", "value_text", "add_to_scenario_schema", "cc_schema", "builtin_schemas"]
