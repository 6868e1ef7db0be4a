"""RED/ECN marking of the switches' egress data queues: the ``ecn`` section of a scenario.

A queue marks CE on an ECT packet with probability 0 below ``kmin_bytes``, rising linearly to
``pmax`` at ``kmax_bytes``, 1 above it (native/port.c, as the HPCC repo's switch). A scenario
without ``ecn`` takes its CC's default (``network_defaults()["ecn"]``, e.g. DCQCN's per flavour);
a partial ``ecn`` (``--set ecn.kmin_bytes=...``) adjusts that default. With ``base_rate_bps`` (or
``scale_with_rate``: 100 Gb/s) the thresholds are those of a port of that rate and scale with
each port's rate / it.
"""
from __future__ import annotations

from controlplane.config.schema import MAX_SIZE_BYTES, RATE, Bool, Int, Num, Strict, section
from controlplane.config.units import Gbps

REQUIRED = ("kmin_bytes", "kmax_bytes", "pmax")


class Ecn(Strict):
    """RED/ECN marking of switch egress data queues; absent keys come from the CC's default."""
    kmin_bytes: Int("queue where marking starts (bytes)", kind="size") = None
    kmax_bytes: Int("queue where the marking probability reaches pmax (bytes)", kind="size") = None
    pmax: Num("marking probability at kmax, in [0, 1] (0: no marking)", lo=0, hi=1) = None
    base_rate_bps: Int("the port rate the thresholds are for: they scale by rate / it (bit/s)", **RATE) | None = None
    scale_with_rate: Bool("scale the thresholds with port rate / 100 Gb/s") = False


def resolve(given: dict | None, cc_default: dict | None) -> dict | None:
    """The ECN thresholds a run applies: the scenario's ``ecn``, completed with the CC's default
    when partial; None when neither gives any (no marking). Every key is checked by :class:`Ecn`
    (errors name ``ecn.<key>``); kmin_bytes, kmax_bytes and pmax must all be known in the end."""
    if given is None:
        return None if cc_default is None else dict(cc_default)
    section(Ecn, given, "ecn")
    ecn = dict(given)
    if cc_default and not set(REQUIRED) <= set(given):
        ecn = {**cc_default, **given}              # a partial ecn adjusts the CC's default, for its base rate
    for k in REQUIRED:
        if ecn.get(k) is None:
            raise ValueError(f"ecn.{k} is missing (ecn needs kmin_bytes, kmax_bytes, pmax)")
    if ecn["pmax"] > 0 and ecn["kmax_bytes"] < ecn["kmin_bytes"]:
        raise ValueError(f"ecn.kmax_bytes ({ecn['kmax_bytes']}) must be >= ecn.kmin_bytes ({ecn['kmin_bytes']})")
    return ecn


def base_rate(ecn: dict) -> float | None:
    """The link rate the thresholds were given for (None: applied as they are). ``base_rate_bps``
    declares it; ``scale_with_rate`` without it means 100 Gb/s."""
    if ecn.get("base_rate_bps") is not None:
        return float(ecn["base_rate_bps"])
    return float(Gbps(100)) if ecn.get("scale_with_rate") else None




def thresholds(ecn: dict | None, rate_bps: float) -> tuple[int, int, float]:
    """(kmin, kmax, pmax) for a switch port of ``rate_bps``; (0, 0, 0.0) without ECN."""
    if ecn is None:
        return 0, 0, 0.0
    base = base_rate(ecn)
    scale = rate_bps / base if base is not None else 1.0
    kmin, kmax = ecn["kmin_bytes"] * scale, ecn["kmax_bytes"] * scale
    if kmax > MAX_SIZE_BYTES:
        # the data plane's thresholds are 64-bit byte counts: refuse by the fields that made it
        raise ValueError(f"ecn.kmax_bytes = {ecn['kmax_bytes']} scaled to a {rate_bps / 1e9:g} Gb/s port "
                         f"(x {scale:g}: rate / {'ecn.base_rate_bps' if ecn.get('base_rate_bps') is not None else '100 Gb/s'})"
                         f" is {kmax:.3g} bytes, above {MAX_SIZE_BYTES:.0e}: lower ecn.kmax_bytes or raise ecn.base_rate_bps")
    return int(kmin), int(kmax), float(ecn["pmax"])


__all__ = ["Ecn", "resolve", "base_rate", "thresholds"]
