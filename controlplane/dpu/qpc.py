"""The NICs' QP-context cache: the ``qpc`` section of a scenario and its install (native/qpc.c).

A NIC keeps the contexts of recently used QPs on chip; a packet of a QP whose context is not
cached waits for a fetch over PCIe (``fetch_latency_ps``, at most ``max_outstanding`` at once,
more wait in a FIFO), and the fill evicts one by ``policy``. ``qpc: None`` = no cache model.

Defaults: fetch_latency_ps one PCIe read round trip, taken as 1 us, the order of magnitude of the
DMA read latencies Neugebauer et al. measure with pcie-bench (SIGCOMM'18, "Understanding PCIe
performance for end host networking"; only the paper's abstract was checked here, not its
figures: an ASSUMPTION to sweep). entries (4096) and max_outstanding (16) are ASSUMPTIONS: no
public figure for a NIC's QPC cache size or its fetch concurrency was found.
"""
from __future__ import annotations

from controlplane.config.schema import Choice, HostList, Int, Limited, Strict, section


class Qpc(Strict):
    """QP-context cache per host NIC (native/qpc.c)."""
    entries: Int("cached QP contexts per NIC (0: off, no access is counted, as qpc None)", lo=0,
                 hi=2**32 - 1) = 4096
    fetch_latency_ps: Limited("qpc.fetch_latency_ps") = 1_000_000
    max_outstanding: Int("context fetches in flight at once (>= 1 when entries > 0)", lo=0, hi=2**32 - 1) = 16
    policy: Choice(("lru", "fifo", "random"), "replacement policy") = "lru"
    hosts: HostList("hosts whose NIC has the cache ('all': every host)", all_ok=True) = "all"
    trace: Int("cache events recorded (records; 0: off)", lo=0, hi=2**32 - 1) = 0


def resolve(given: dict | None) -> dict:
    """Every qpc parameter of a run (config.json ``resolved.qpc``); errors name ``qpc.<key>``."""
    p = section(Qpc, given, "qpc").model_dump()
    if p["entries"] > 0 and p["max_outstanding"] < 1:
        raise ValueError(f"qpc.max_outstanding must be >= 1 when qpc.entries > 0, got {p['max_outstanding']}")
    return p


def install(net) -> dict | None:
    """The QP-context cache of each chosen host NIC (Scenario.qpc; None = none)."""
    spec = net.scenario.qpc
    if spec is None:
        return None
    p = resolve(spec)
    hosts = range(net.fabric.num_hosts) if p["hosts"] == "all" else p["hosts"]
    for h in hosts:
        net.sim.set_qpc(h, p["entries"], p["fetch_latency_ps"], p["max_outstanding"], p["policy"])
    if p["trace"]:
        net.sim.set_qpc_trace(p["trace"])
    return p


#: the defaults as a dict (derived from :class:`Qpc`; for experiments that quote them)
QPC_DEFAULTS = Qpc().model_dump()

__all__ = ["Qpc", "resolve", "install", "QPC_DEFAULTS"]
