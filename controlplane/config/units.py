"""Unit helpers: turn human units into the integers the data plane uses.

softdpu's convention (docs/architecture.md, 'Units, time and determinism'): rates are integer bits
per second, times are integer picoseconds, sizes are integer bytes. These helpers make call sites
say their units::

    single_switch(8, rate_bps=Gbps(100), delay_ps=us(1))

Decimal prefixes are powers of 1000 (``KB``, ``MB``, ``Gbps``); binary prefixes are powers of 1024
(``KiB``, ``MiB``). Integer inputs convert exactly; float inputs are rounded to the nearest integer.
"""

from __future__ import annotations

from numbers import Real


def _scale(value: Real, factor: int, helper: str) -> int:
    """Return ``value * factor`` as an int (exact for ints, rounded for other reals)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{helper}() takes a number, got {value!r}")
    if isinstance(value, int):
        return value * factor
    return round(float(value) * factor)


# Rates -> bits per second.
def Mbps(x: Real) -> int:
    """Megabits per second -> bits per second (10**6)."""
    return _scale(x, 10**6, "Mbps")


def Gbps(x: Real) -> int:
    """Gigabits per second -> bits per second (10**9)."""
    return _scale(x, 10**9, "Gbps")


# Times -> picoseconds.
def ns(x: Real) -> int:
    """Nanoseconds -> picoseconds."""
    return _scale(x, 10**3, "ns")


def us(x: Real) -> int:
    """Microseconds -> picoseconds."""
    return _scale(x, 10**6, "us")


def ms(x: Real) -> int:
    """Milliseconds -> picoseconds."""
    return _scale(x, 10**9, "ms")


# Sizes -> bytes.
def KB(x: Real) -> int:
    """Kilobytes (1000 bytes) -> bytes."""
    return _scale(x, 1000, "KB")


def KiB(x: Real) -> int:
    """Kibibytes (1024 bytes) -> bytes."""
    return _scale(x, 1024, "KiB")


def MB(x: Real) -> int:
    """Megabytes (10**6 bytes) -> bytes."""
    return _scale(x, 10**6, "MB")


def MiB(x: Real) -> int:
    """Mebibytes (2**20 bytes) -> bytes."""
    return _scale(x, 2**20, "MiB")


# ---------------------------------------------------------------------- unit strings
# The command line (``--set rate_bps=100G``, ``--set size_bytes=16MiB``, ``--set rto_ps=2ms``) and
# any configuration file: a number with an optional unit, converted exactly to the integer base
# unit of the field (bit/s, bytes, ps). A value that is not a whole number of the base unit
# (``1.5ps``, ``0.1bps``) is refused rather than rounded.

from decimal import Decimal, InvalidOperation  # noqa: E402

#: unit spellings per kind (matched case-insensitively) -> factor to the base unit
UNITS: dict[str, dict[str, int]] = {
    "rate": {"bps": 1, "b/s": 1, "k": 10**3, "kbps": 10**3, "kb/s": 10**3, "m": 10**6, "mbps": 10**6, "mb/s": 10**6,
             "g": 10**9, "gbps": 10**9, "gb/s": 10**9, "t": 10**12, "tbps": 10**12, "tb/s": 10**12},
    "size": {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40},
    "time": {"ps": 1, "ns": 10**3, "us": 10**6, "\u00b5s": 10**6, "ms": 10**9, "s": 10**12},
}
#: the base unit of each kind, and the field-name suffix that selects it
BASE_UNIT = {"rate": "bit/s", "size": "bytes", "time": "ps"}
SUFFIX_KIND = {"_bps": "rate", "_bytes": "size", "_ps": "time"}
_EXAMPLES = {"rate": "100G, 100Gbps, 25Mbps", "size": "16MB, 16MiB, 4096", "time": "500ns, 1us, 2ms"}


def unit_kind(name: str) -> str | None:
    """'rate', 'size' or 'time' for a field or parameter name ending in _bps, _bytes or _ps."""
    for suffix, kind in SUFFIX_KIND.items():
        if name.endswith(suffix):
            return kind
    return None


#: the largest decimal exponent a quantity may be written with (10^30 is far above every bound)
MAX_EXPONENT = 30


def parse_quantity(text: str, kind: str) -> int:
    """``"100G"`` (kind 'rate') -> 100_000_000_000; ``"16MiB"`` -> 16_777_216; ``"1.5us"`` (kind
    'time') -> 1_500_000. A bare number is in the base unit. Raises ValueError (without naming a
    field: the caller adds it) for a malformed, non-finite, or not exactly convertible value."""
    s = str(text).strip()
    i = len(s)
    while i > 0 and (s[i - 1].isalpha() or s[i - 1] in "/\u00b5"):
        i -= 1
    number, unit = s[:i].strip(), s[i:].strip().lower()
    units = UNITS[kind]
    if number in ("", "+", "-") and unit in ("nan", "inf", "infinity"):
        raise ValueError(f"expected a finite {kind}, got {s!r}")
    if not number:
        raise ValueError(f"expected a {kind} such as {_EXAMPLES[kind]}, got {s!r}")
    if unit and unit not in units:
        raise ValueError(f"unknown {kind} unit {s[i:]!r} in {s!r} (e.g. {_EXAMPLES[kind]})")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"expected a {kind} such as {_EXAMPLES[kind]}, got {s!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a finite {kind}, got {s!r}")
    if value and not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        # 1e999999999G overflowed the decimal context (a traceback); 1e900000 took seconds to
        # become an int: no rate, size or time of a run is within 10^30 of such a number
        raise ValueError(f"{s!r} is out of range (a {kind} is written with at most {MAX_EXPONENT} digits)")
    scaled = value * units[unit or next(iter(units))]
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{s!r} is not a whole number of {BASE_UNIT[kind]} ({scaled.normalize()})")
    return int(scaled)


def format_quantity(value: int, kind: str) -> str:
    """The shortest exact spelling of an integer quantity: 100000000000 (rate) -> '100Gbps'."""
    if not isinstance(value, int) or isinstance(value, bool) or value == 0:
        return str(value)
    names = {"rate": ["Tbps", "Gbps", "Mbps", "Kbps"], "size": ["TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"],
             "time": ["s", "ms", "us", "ns"]}[kind]
    exact = [(value // UNITS[kind][n.lower()], n) for n in names if value % UNITS[kind][n.lower()] == 0]
    if exact:
        q, n = min(exact, key=lambda e: abs(e[0]))
        return f"{q}{n}"
    return f"{value}{ {'rate': 'bps', 'size': 'B', 'time': 'ps'}[kind]}"
