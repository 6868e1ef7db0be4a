"""The virtualization tax: CPU cycles the vSwitch pipeline costs, charged to host cores (a
software vSwitch) or to DPU cores (offloaded), and what the host cores cost per year.

The data plane counts per-stage events per DPU (native/vswitch.c, ``sd_vs_stats``); this module
prices them. Per-packet stage costs in clock cycles, from the FD.io VPP wiki's per-node table
(page "VPP Missing Prefetches": 1 core, ~13 Mpps, ~50 vectors per call, L3 forward ≈ 245
clocks/packet):
  parse   113.7  dpdk-input 74.5 + ip4-input-no-checksum 39.2 (receive and parse a packet)
  lookup   38.8  ip4-lookup (one hash-table probe): the exact-match cache probe
  probe    38.8  ip4-lookup again, per classifier subtable probed (a tuple-space probe is a hash probe)
  action   58.3  interface-output 10.8 + tx 38.4 + -out 9.1 (output of a packet)
  encap    34.3  ip4-rewrite (a header rewrite), per VXLAN encap or decap
A hit without encapsulation thus costs 113.7 + 38.8 + 58.3 = 210.8 cycles, with encap 245.1 (the
VPP L3-forward total). Assumptions, not from a measurement (change them per study):
  copy      0.1  cycles per byte moved between function (VM) memory and the switch (vhost copy)
  upcall 20 000  cycles per miss handled by the slow path (ovs-vswitchd translation + install:
                 10 us on a 2 GHz DPU core, 8 us on a 2.5 GHz host core)
Cost unit: Azure AccelNet (NSDI'18), one physical host core ≈ $900 per year (≈ $4 500 over a
server's life).
"""
from __future__ import annotations

from controlplane.config.schema import Num, Strict, section

OFFLOADS = ("host", "dpu", "hw")
CYCLES = dict(lo=0)                       # a cost in clock cycles: >= 0
HZ = dict(lo=0, lo_open=True)             # a clock rate: > 0


class Tax(Strict):
    """The virtualization-tax model (``dpu.tax``): cycles per pipeline stage, core clocks, core cost."""
    parse: Num("cycles to receive and parse a packet (VPP dpdk-input + ip4-input-no-checksum)", **CYCLES) = 113.7
    lookup: Num("cycles per exact-match-cache probe (VPP ip4-lookup)", **CYCLES) = 38.8
    probe: Num("cycles per classifier subtable probed (a hash probe, VPP ip4-lookup)", **CYCLES) = 38.8
    action: Num("cycles to output a packet (VPP interface-output + tx + -out)", **CYCLES) = 58.3
    encap: Num("cycles per VXLAN encap or decap (VPP ip4-rewrite)", **CYCLES) = 34.3
    copy_per_byte: Num("cycles per byte copied between a function's memory and the switch (ASSUMPTION)",
                       **CYCLES) = 0.1
    upcall: Num("cycles per miss handled by the slow path (translation + install; ASSUMPTION)", **CYCLES) = 20_000.0
    host_core_hz: Num("a host core's clock (Hz)", **HZ) = 2.5e9
    dpu_core_hz: Num("a DPU core's clock (Hz)", **HZ) = 2.0e9
    usd_per_core_year: Num("what a host core costs per year (USD; Azure AccelNet, NSDI'18)", lo=0) = 900.0


STAGES = ("parse", "lookup", "probe", "action", "encap", "copy_per_byte", "upcall")


def params(overrides: dict | None = None) -> dict:
    """The tax model's parameters: ``overrides`` (``dpu.tax``) on the defaults of :class:`Tax`;
    a bad or unknown key is a ValueError naming ``dpu.tax.<key>``."""
    return section(Tax, overrides, "dpu.tax").model_dump()


def stage_cycles(stats: dict, p: dict, emc: bool = True) -> dict:
    """Cycles per stage from summed vSwitch counters (keys as in Dpus.stats(): vs_rx, ...)."""
    hits = stats["vs_exact_hit"] + stats["vs_masked_hit"] + stats["vs_executed"]
    return {
        "parse": stats["vs_rx"] * p["parse"],
        "lookup": (stats["vs_rx"] if emc else 0) * p["lookup"],
        "probe": stats["vs_masked_lookups"] * p["probe"],
        "action": hits * p["action"],
        "encap": (stats["vs_encaps"] + stats["vs_decaps"]) * p["encap"],
        "copy": stats["vs_copy_bytes"] * p["copy_per_byte"],
        "upcall": stats["vs_executed"] * p["upcall"],     # upcalls the handlers finished
    }


def tax(stats: dict, duration_ps: int, offload: str, num_dpus: int, p: dict, emc: bool = True) -> dict:
    """Cores consumed (averaged over the run) on the hosts and on the DPUs, and the yearly cost of
    the host cores per server. ``offload`` = "host": the whole pipeline runs on host cores;
    "dpu": all of it runs on the DPU's cores (OVS on the DPU's Arm cores) and the host pays
    nothing; "hw": the fast path runs in the DPU's embedded switch hardware (ASAP²-style flow
    offload: no core at all) and only the slow path (upcalls) runs on DPU cores."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload must be one of {OFFLOADS}, got {offload!r}")
    cyc = stage_cycles(stats, p, emc)
    total = sum(cyc.values())
    seconds = max(duration_ps, 1) / 1e12
    host_cycles = total if offload == "host" else 0.0
    dpu_cycles = total if offload == "dpu" else cyc["upcall"] if offload == "hw" else 0.0
    host_cores = host_cycles / seconds / p["host_core_hz"]
    dpu_cores = dpu_cycles / seconds / p["dpu_core_hz"]
    per_server = host_cores / max(num_dpus, 1)
    return {
        **{f"tax_cycles_{k}": float(v) for k, v in cyc.items()},
        "tax_cycles_total": float(total),
        "tax_cycles_per_packet": float(total / stats["vs_rx"]) if stats["vs_rx"] else 0.0,
        "tax_host_cores": float(host_cores), "tax_dpu_cores": float(dpu_cores),
        "tax_host_cores_per_server": float(per_server),
        "tax_usd_per_server_year": float(per_server * p["usd_per_core_year"]),
    }
