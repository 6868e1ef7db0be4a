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
