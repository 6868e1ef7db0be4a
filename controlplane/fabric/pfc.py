"""PFC (IEEE 802.1Qbb) on the switches: the ``pfc_params`` section of a scenario and its install.

Rules of the shared buffer (native/pfc.c, as the HPCC repo's switch-mmu.cc): each ingress port
has a reserve and a headroom; beyond its reserve an ingress draws on the shared buffer and sends
XOFF upstream once its share reaches ``free shared buffer >> alpha_shift`` (dynamic threshold),
XON again ``resume_offset_bytes`` below it. Defaults: the HPCC repo's run.py / switch-mmu.cc (a
buffer of 32 MB per 100 Gb/s of host link rate, 4 KB reserve, 3 KB resume offset, alpha_shift 3:
threshold = free buffer / 8), headroom 3 x rate x delay per ingress port (+ 2 frames); XOFF
carries the largest pause time (65535 quanta of 512 bit times = 335 us at 100 Gb/s).
"""
from __future__ import annotations

from controlplane.config.schema import Int, Num, Strict, section
from controlplane.config.units import Gbps

BUFFER_PER_100G = 32_000_000              # the HPCC repo: 32 MB of switch buffer per 100 Gb/s of host rate
HEADROOM_FRAMES = 2 * 4200                # two full frames in flight besides rate x delay


class PfcParams(Strict):
    """PFC with a shared switch buffer (defaults: the HPCC repo's run.py / switch-mmu.cc)."""
    buffer_bytes: Int("shared buffer per switch, bytes (None: 32 MB per 100 Gb/s of host rate)", lo=1,
                      kind="size") | None = None
    reserve_bytes: Int("reserved per ingress port, bytes", kind="size") = 4096
    resume_offset_bytes: Int("XON this many bytes below the XOFF threshold", kind="size") = 3072
    alpha_shift: Int("dynamic threshold = free shared buffer >> alpha_shift (0..16)", lo=0, hi=16) = 3
    headroom_rtts: Num("headroom per ingress port, in units of link rate x delay (+ 2 frames)", lo=0,
                       hi=1000) = 3.0
    pause_quanta: Int("pause time an XOFF carries, in 512-bit-time quanta (1..65535)", lo=1, hi=65535) = 65535


def resolve(given: dict | None, host_rate_bps: int) -> dict:
    """Every PFC parameter of a run (config.json ``resolved.pfc``): the scenario's, completed with
    the defaults; the buffer default scales with the host link rate."""
    p = section(PfcParams, given, "pfc_params").model_dump()
    if p["buffer_bytes"] is None:
        p["buffer_bytes"] = int(BUFFER_PER_100G * host_rate_bps / Gbps(100))
    return p


def install(net) -> dict:
    """PFC on every switch of a built network, each value passed to the data plane explicitly."""
    fab, sim = net.fabric, net.sim
    from dataplane.sim import PRIO_DATA
    from controlplane.config.schema import MAX_SIZE_BYTES
    host_rate = max(l.rate_bps for l in fab.links if fab.is_host(l.a) or fab.is_host(l.b))
    p = resolve(net.scenario.pfc_params, host_rate)
    for port in range(fab.num_ports):
        if fab.is_switch(fab.port_owner(port)):
            link = fab.links[port // 2]
            # capped at 10^15 B (config.MAX_SIZE_BYTES): 1000 RTTs of a 100 Tb/s, 1000 s link overflow 64 bits
            headroom = min(p["headroom_rtts"] * link.rate_bps * link.delay_ps / 8e12, MAX_SIZE_BYTES)
            sim.set_pfc_headroom(port, int(headroom) + HEADROOM_FRAMES)
            sim.set_queue(port, PRIO_DATA, int(p["buffer_bytes"]), *net._ecn_args(port))
    for node in range(fab.num_hosts, fab.num_nodes):
        sim.set_pfc(node, int(p["buffer_bytes"]), int(p["reserve_bytes"]), int(p["resume_offset_bytes"]),
                    int(p["alpha_shift"]), int(p["pause_quanta"]))
    return p


__all__ = ["PfcParams", "resolve", "install"]
