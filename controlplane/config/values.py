"""Typed values from text: what ``--set name=value`` and ``--pcap-filter key=value`` accept.

One small module, so that the command line and any configuration schema parse a value the same
way. Every parser takes the name as the user typed it and raises :class:`UsageError` naming it
(``senders must be an integer, got 8.5``), never an internal field name.

Grammar:
  boolean   true/false, yes/no, on/off, 1/0 (any case); nothing else
  integer   a whole number (``8``, ``-3``, ``1_000``, ``1e6``); with a unit where the name ends in
            _bps (``100G``, ``100Gbps``), _bytes (``16MB``, ``16MiB``) or _ps (``500ns``, ``2ms``),
            converted exactly (controlplane/config/units.py): ``1.5ps`` is refused, not rounded
  number    a finite decimal; NaN and infinities are refused
  text      as typed
  list      ``a,b,c`` or a JSON list ``["a","b"]``; each element of the element type
  object    a JSON object ``{"key": value}``
  optional  ``none`` or ``null`` for a field whose default is None
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from controlplane.config.units import parse_quantity, unit_kind

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
NONE_WORDS = ("none", "null")


class UsageError(ValueError):
    """A value or name the user typed is wrong; the message names it as typed."""


@dataclass(frozen=True)
class Kind:
    """The type of a parameter: ``base`` is one of bool, int, float, str, list, dict, any,
    bool_or_str, str_or_list; ``elem`` the element Kind of a list; ``optional``: None allowed;
    ``minimum``: the smallest number allowed (None: any); ``nonempty``: a list needs an element."""

    base: str
    elem: Kind | None = None
    optional: bool = False
    minimum: float | None = None
    nonempty: bool = False

    def describe(self, name: str = "") -> str:
        unit = unit_kind(name) if self.base in ("int", "any") else None
        t = {"bool": "boolean", "int": "integer", "float": "number", "str": "text", "dict": "JSON object",
             "any": "value", "bool_or_str": "boolean or text", "str_or_list": "text or list"}.get(self.base, "")
        if self.base == "list":
            t = f"list of {self.elem.describe(name) if self.elem else 'values'}"
        if unit:
            t = {"rate": "rate (bit/s; 100G, 25Mbps)", "size": "size (bytes; 16MB, 16MiB)",
                 "time": "time (ps; 500ns, 2ms)"}[unit]
        if self.optional:
            t += " or none"
        return t


def kind_of(default: Any, name: str = "") -> Kind:
    """The Kind a value like ``default`` has: counts and quantities are integers, rates, sizes and
    times (by name suffix) integers with units; None defaults accept anything JSON-like."""
    if isinstance(default, bool):
        return Kind("bool")
    if isinstance(default, int):
        return Kind("int", minimum=0 if default >= 0 else None)
    if isinstance(default, float):
        return Kind("float", minimum=0.0 if default >= 0 else None)
    if isinstance(default, str):
        return Kind("str")
    if isinstance(default, (list, tuple)):
        elem = kind_of(default[0], name) if default else Kind("any")
        return Kind("list", elem=elem, nonempty=bool(default))
    if isinstance(default, dict):
        return Kind("dict")
    if default is None:
        return Kind("int", optional=True, minimum=0) if unit_kind(name) else Kind("any", optional=True)
    return Kind("any")


def closest(name: str, known, n: int = 4) -> list[str]:
    """The known names nearest to a mistyped one (difflib), best first."""
    return difflib.get_close_matches(name, sorted(set(known)), n=n, cutoff=0.6)


def parse_bool(name: str, text: str) -> bool:
    t = str(text).strip().lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise UsageError(f"{name} must be a boolean (true/false, yes/no, on/off, 1/0), got {text!r}")


def parse_int(name: str, text: str, minimum: float | None = None) -> int:
    """An integer, with a unit if ``name`` ends in _bps, _bytes or _ps."""
    t = str(text).strip()
    unit = unit_kind(name)
    if unit is not None:
        try:
            v = parse_quantity(t, unit)
        except ValueError as e:
            raise UsageError(f"{name}: {e}") from None
    else:
        try:
            d = Decimal(t)
        except InvalidOperation:
            raise UsageError(f"{name} must be an integer, got {t!r}") from None
        if not d.is_finite() or d != d.to_integral_value():
            raise UsageError(f"{name} must be an integer, got {t}")
        v = int(d)
    if minimum is not None and v < minimum:
        raise UsageError(f"{name} must be >= {minimum:g}, got {t}")
    return v


def parse_float(name: str, text: str, minimum: float | None = None) -> float:
    t = str(text).strip()
    try:
        v = float(Decimal(t))
    except (InvalidOperation, ValueError):
        raise UsageError(f"{name} must be a number, got {t!r}") from None
    if not math.isfinite(v):
        raise UsageError(f"{name} must be a finite number, got {t}")
    if minimum is not None and v < minimum:
        raise UsageError(f"{name} must be >= {minimum:g}, got {t}")
    return v


def _no_constant(c: str):
    raise ValueError(f"{c} is not a finite number")


def parse_json(name: str, text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as e:
        raise UsageError(f"{name} must be {what}, got {text!r} ({e})") from None


def _from_json(name: str, value: Any, kind: Kind) -> Any:
    """An element already parsed from JSON, checked against ``kind``."""
    if kind.base in ("any", "dict", "str_or_list") or value is None and kind.optional:
        return value
    if isinstance(value, str):
        return parse_value(name, value, kind)
    if kind.base == "bool" and isinstance(value, bool):
        return value
    if kind.base in ("int", "float") and not isinstance(value, bool) and isinstance(value, (int, float)):
        return parse_value(name, json.dumps(value), kind)
    if kind.base == "bool_or_str" and isinstance(value, bool):
        return value
    raise UsageError(f"{name} must be a {kind.describe(name)}, got {json.dumps(value)}")


def parse_any(name: str, text: str) -> Any:
    """No declared type: none/null, true/false, an integer (with a unit by name suffix), a finite
    number, JSON for a list or an object, else the text."""
    t = str(text).strip()
    low = t.lower()
    if low in NONE_WORDS:
        return None
    if low in ("true", "false"):
        return low == "true"
    if unit_kind(name):
        return parse_int(name, t)
    if t[:1] in "[{":
        return parse_json(name, t, "JSON")
    try:
        d = Decimal(t)
    except InvalidOperation:
        return t
    if not d.is_finite():
        raise UsageError(f"{name} must be a finite number, got {t}")
    return int(d) if d == d.to_integral_value() and "." not in t and "e" not in low else float(d)


def parse_value(name: str, text: str, kind: Kind) -> Any:
    """``text`` as a value of ``kind``; UsageError naming ``name`` when it is not one."""
    t = str(text).strip()
    if kind.optional and t.lower() in NONE_WORDS:
        return None
    b = kind.base
    if b == "bool":
        return parse_bool(name, t)
    if b == "int":
        return parse_int(name, t, kind.minimum)
    if b == "float":
        return parse_float(name, t, kind.minimum)
    if b == "str":
        if not t:
            raise UsageError(f"{name} must not be empty")
        return t
    if b == "bool_or_str":
        if t.lower() in TRUE_WORDS + FALSE_WORDS:
            return parse_bool(name, t)
        if not t:
            raise UsageError(f"{name} must not be empty")
        return t
    if b == "dict":
        v = parse_json(name, t, 'a JSON object such as {"key": 1}')
        if not isinstance(v, dict):
            raise UsageError(f'{name} must be a JSON object such as {{"key": 1}}, got {t}')
        return v
    if b in ("list", "str_or_list"):
        if t.startswith("["):
            items = parse_json(name, t, 'a list such as a,b or ["a","b"]')
            if not isinstance(items, list):
                raise UsageError(f"{name} must be a list, got {t}")
            elem = kind.elem or Kind("any")
            values = [_from_json(f"{name}[{i}]", x, elem) for i, x in enumerate(items)]
        elif b == "str_or_list":
            return t
        else:
            parts = [p.strip() for p in t.split(",")] if t else []
            if any(not p for p in parts):
                raise UsageError(f"{name}: empty element in {t!r} (a list is a,b,c or a JSON list)")
            elem = kind.elem or Kind("any")
            values = [parse_value(f"{name}[{i}]", p, elem) for i, p in enumerate(parts)]
        if kind.nonempty and not values:
            raise UsageError(f"{name} must list at least one value (an empty list runs nothing)")
        return values
    return parse_any(name, t)


__all__ = ["UsageError", "Kind", "kind_of", "closest", "parse_bool", "parse_int", "parse_float", "parse_value",
           "parse_any", "TRUE_WORDS", "FALSE_WORDS"]
