"""The AI fabric: a rail-optimized 3-tier CLOS (the rail-optimized design of NVIDIA's DGX SuperPOD
reference architecture: GPU r of every server on rail r; controlplane/ai/collectives.py for the
collectives that run on it).

Shape. A *server* holds ``num_rails`` GPUs, GPU ``r`` with its own NIC on *rail* ``r``. Each rail
is a full 2-level CLOS of its own: ``leaves_per_rail`` leaves, each serving NIC ``r`` of
``servers_per_leaf`` servers (the servers of one *leaf group* ``s // servers_per_leaf``), and
``spines_per_rail`` spines linked to every leaf of the rail. A third tier joins the rails: core
group ``k`` (``cores_per_group`` switches) is linked to spine ``k`` of every rail, so traffic from
rail ``i`` to rail ``j != i`` goes leaf -> spine -> core -> spine -> leaf.

How a server maps onto the data plane (docs/architecture.md, 'The node model'). A server is ONE
host node (``s3``) whose ports are its NICs and its NVLink ports. What a packet is addressed to
is not the server but an *address* (``Fabric.addresses``): one per NIC, grouping its plane ports,
and one per GPU's NVLink port. A QP lives on a NIC: the collectives bind each end of a QP pair to
the NIC (port) of the GPU it serves and address it to the peer NIC's address, so traffic from
rail ``i`` to rail ``j != i`` reaches the destination's NIC ``j`` through the third tier, never
NIC ``i`` of the destination server although rail ``i``'s leaf faces it. A multi-plane fabric
(``planes > 1``) replicates the whole rail fabric per plane and gives every NIC one port per
plane, port ``p`` on plane ``p``, all in the NIC's address; a transfer is split over the planes,
one QP per plane bound to that plane's port at both ends, so its packets never leave their plane
(the planes share no switch or link).

NVLink. With ``nvlink_rate_bps > 0`` GPU ``r`` of server ``s`` has an NVLink port, a link
(``nvlink_rate_bps``, ``nvlink_delay_ps``) from the server to its NVSwitch (``nvsw3``, a switch
node joining that server's GPUs): NVLink is an intra-host link, and a QP pair between two GPUs of
one server has both ends on the server, bound to the two NVLink ports. An NVLink address is
reachable from its server's NVSwitch only: every other switch has no route to it (the data plane
drops and counts what would meet that; nothing is addressed so), and an NVSwitch has no route to
anything else (no attachment links). A schedule decides whether cross-rail traffic crosses the
third tier (NIC to NIC) or first moves over NVLink to the GPU on the destination's rail
(PXN-like relay).

SHARP. With ``sharp=True`` (one plane only) every leaf, spine and core switch gets an
*aggregation engine* (``agg@leaf0.r1``): a host node of the role "engine" (not a server: it is
after the servers, ``Fabric.num_servers``, so generic workloads never pick it) with one link of
rate ``sharp_rate_bps`` (the aggregation capacity) and one-way delay ``sharp_latency_ps / 2`` to
its switch (one pass in and out costs ``sharp_latency_ps``), and an address of its own. The
engine of a non-root switch receives its children's chunks going up *and* the parent's result
coming down, and sends the partial sum up *and* one copy of the result per child, so the default
rate is twice the sum of the switch's down-link rates (at most 100 Tb/s, the data plane's largest
rate): aggregation at line rate, never the bottleneck unless set lower. controlplane/ai/sharp.py drives the reduction tree through these
engines.

Numbering. Nodes (hosts first, as every Fabric): servers ``0 .. S-1``, then engines in switch
order; then switches: per plane leaves (rail-major), spines (rail-major), cores (group-major);
then NVSwitches. Addresses: NIC ``(s, r)`` is ``s * R + r`` (its plane-``p`` port:
:meth:`RailLayout.nic_port`), then NVLink ``(s, r)`` at ``S * R + s * R + r``
(:meth:`RailLayout.nvl_port`), then engines in switch order. These are the numbers the NIC,
NVLink and aggregator host nodes had before a server became one host, so packets carry the same
source and destination (and hash alike under ECMP). :class:`RailLayout` recomputes all maps from
``fabric.params``.

Generic workloads (controlplane/transport/workload.py) use the servers only and address each
server's first address, NIC 0 (plane ports bound in turn): a permutation or incast on a rail
fabric is one between NIC 0s, on rail 0. Drive GPU traffic with controlplane/ai/collectives.py.

Links: per plane, the NIC links (``server * R + rail``), leaf-spine, spine-core; then NVLink
links (``server * R + rail``), then aggregation links. Tiers: link tier 0 = a host's port <-> its
switch (NIC, NVLink, engine), 1 = leaf <-> spine, 2 = spine <-> core (the third tier). Node tiers:
leaves 1, spines 2, cores 3, NVSwitches 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.fabric.topology import (MAX_HOSTS, MAX_RATE_BPS, MAX_SWITCHES, Fabric, Link, _delay, _positive,
                                         _rate, check_size)


def _ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1.0:
        raise ValueError(f"{name} must be a number >= 1, got {value!r}")
    return float(value)


def rail_clos(host_rate_bps: int, host_delay_ps: int, *, num_rails: int = 8, servers_per_leaf: int = 4,
              leaves_per_rail: int = 2, spines_per_rail: int = 2, cores_per_group: int = 2,
              leaf_rate_bps: int | None = None, leaf_delay_ps: int | None = None,
              core_rate_bps: int | None = None, core_delay_ps: int | None = None,
              oversubscription: float = 1.0, core_oversubscription: float = 1.0, planes: int = 1,
              nvlink_rate_bps: int = 0, nvlink_delay_ps: int = 0, sharp: bool = False,
              sharp_rate_bps: int | None = None, sharp_latency_ps: int = 0) -> Fabric:
    """Rail-optimized 3-tier CLOS (see the module docstring for the shape and numbering).

    Rates in bits/s, delays one-way in picoseconds:
        NIC <-> leaf (tier 0): ``host_rate_bps``, ``host_delay_ps`` (per NIC port, per plane)
        leaf <-> spine (tier 1): ``leaf_rate_bps`` (default: non-blocking divided by
            ``oversubscription``: host_rate x servers_per_leaf / (spines_per_rail x oversubscription)),
            ``leaf_delay_ps`` (default host_delay_ps)
        spine <-> core (tier 2): ``core_rate_bps`` (default: leaf_rate x leaves_per_rail /
            (cores_per_group x core_oversubscription)), ``core_delay_ps`` (default host_delay_ps)
        GPU <-> NVSwitch: ``nvlink_rate_bps`` (0 = no NVLink ports), ``nvlink_delay_ps``
        aggregation engine: ``sharp_rate_bps``, ``sharp_latency_ps`` (only with ``sharp``)
    """
    R = _positive("num_rails", num_rails)
    spl = _positive("servers_per_leaf", servers_per_leaf)
    L = _positive("leaves_per_rail", leaves_per_rail)
    P = _positive("spines_per_rail", spines_per_rail)
    C = _positive("cores_per_group", cores_per_group)
    planes = _positive("planes", planes)
    for name, v in (("num_rails", R), ("servers_per_leaf", spl), ("leaves_per_rail", L), ("spines_per_rail", P),
                    ("cores_per_group", C), ("planes", planes)):
        # before the default rates are computed from them (a float: 2e400 servers overflowed it)
        if v > max(MAX_HOSTS, MAX_SWITCHES):
            digits = str(v)
            shown = digits if len(digits) <= 20 else f"{digits[:4]}... ({len(digits)} digits)"
            raise ValueError(f"{name} must be at most {max(MAX_HOSTS, MAX_SWITCHES):,} (a fabric has at most "
                             f"{MAX_HOSTS:,} hosts and {MAX_SWITCHES:,} switches), got {shown}")
    h_rate = _rate("host_rate_bps", host_rate_bps)
    h_delay = _delay("host_delay_ps", host_delay_ps)
    over = _ratio("oversubscription", oversubscription)
    c_over = _ratio("core_oversubscription", core_oversubscription)
    l_rate = (_rate("leaf_rate_bps", leaf_rate_bps) if leaf_rate_bps is not None
              else _rate("leaf_rate_bps (host_rate_bps x servers_per_leaf / (spines_per_rail x oversubscription))",
                         max(1, round(h_rate * spl / (P * over)))))
    l_delay = h_delay if leaf_delay_ps is None else _delay("leaf_delay_ps", leaf_delay_ps)
    c_rate = (_rate("core_rate_bps", core_rate_bps) if core_rate_bps is not None
              else _rate("core_rate_bps (leaf_rate_bps x leaves_per_rail / (cores_per_group x core_oversubscription))",
                         max(1, round(l_rate * L / (C * c_over)))))
    c_delay = h_delay if core_delay_ps is None else _delay("core_delay_ps", core_delay_ps)
    nv_rate = 0 if nvlink_rate_bps == 0 and not isinstance(nvlink_rate_bps, bool) \
        else _rate("nvlink_rate_bps (0 = no NVLink)", nvlink_rate_bps)
    nv_delay = _delay("nvlink_delay_ps", nvlink_delay_ps)
    if not isinstance(sharp, bool):
        raise ValueError(f"sharp must be true or false, got {sharp!r}")
    if sharp and planes > 1:            # an aggregator of plane p is reachable from plane p only
        raise ValueError(f"sharp: SHARP over a multi-plane fabric is not modelled (planes={planes})")
    sh_rate = None if sharp_rate_bps is None else _rate("sharp_rate_bps", sharp_rate_bps)
    sh_lat = _delay("sharp_latency_ps", sharp_latency_ps)

    params = {"topology": "rail_clos", "host_rate_bps": h_rate, "host_delay_ps": h_delay, "num_rails": R,
              "servers_per_leaf": spl, "leaves_per_rail": L, "spines_per_rail": P, "cores_per_group": C,
              "leaf_rate_bps": l_rate, "leaf_delay_ps": l_delay, "core_rate_bps": c_rate, "core_delay_ps": c_delay,
              "oversubscription": over, "core_oversubscription": c_over, "planes": planes,
              "nvlink_rate_bps": nv_rate, "nvlink_delay_ps": nv_delay, "sharp": sharp,
              "sharp_rate_bps": sh_rate, "sharp_latency_ps": sh_lat}
    lay = RailLayout(params)
    S = lay.num_servers
    num_links = (planes * (S * R + R * L * P + R * P * C) + (S * R if nv_rate else 0)
                 + (planes * lay.switches_per_plane if sharp else 0))
    check_size(f"rail_clos(num_rails={R}, servers_per_leaf={spl}, leaves_per_rail={L}, spines_per_rail={P}, "
               f"cores_per_group={C}, planes={planes})", lay.num_hosts, lay.num_nodes - lay.num_hosts, num_links)
    names: list[str] = [""] * lay.num_nodes
    tiers: list[int] = [0] * lay.num_nodes
    links: list[Link] = []
    for s in range(S):
        names[lay.server(s)] = f"s{s}"
    for p in range(planes):
        sfx = f".p{p}" if planes > 1 else ""
        for r in range(R):
            for l in range(L):
                names[lay.leaf(r, l, p)] = f"leaf{l}.r{r}{sfx}"
                tiers[lay.leaf(r, l, p)] = 1
            for k in range(P):
                names[lay.spine(r, k, p)] = f"spine{k}.r{r}{sfx}"
                tiers[lay.spine(r, k, p)] = 2
        for k in range(P):
            for c in range(C):
                names[lay.core(k, c, p)] = f"core{c}.g{k}{sfx}"
                tiers[lay.core(k, c, p)] = 3
        # tier 0: NIC r of server s (its plane-p port) -> leaf of its rail and leaf group
        for s in range(S):
            for r in range(R):
                links.append(Link(lay.server(s), lay.leaf(r, s // spl, p), h_rate, h_delay, 0))
        for r in range(R):
            for l in range(L):
                for k in range(P):
                    links.append(Link(lay.leaf(r, l, p), lay.spine(r, k, p), l_rate, l_delay, 1))
        for r in range(R):
            for k in range(P):
                for c in range(C):
                    links.append(Link(lay.spine(r, k, p), lay.core(k, c, p), c_rate, c_delay, 2))
    if nv_rate:
        for s in range(S):
            names[lay.nvswitch(s)] = f"nvsw{s}"
            tiers[lay.nvswitch(s)] = 1
            for r in range(R):             # GPU r's NVLink port: an intra-host link to the NVSwitch
                links.append(Link(lay.server(s), lay.nvswitch(s), nv_rate, nv_delay, 0))
    if sharp:
        # default capacity: twice the sum of the switch's down-link rates (see the module docstring)
        down_rate = {1: 2 * spl * h_rate, 2: 2 * L * l_rate, 3: 2 * R * c_rate}
        for sw in lay.aggregating_switches():
            e = lay.engine(sw)
            names[e] = f"agg@{names[sw]}"
            # (at most the data plane's largest rate, 100 Tb/s: a core engine of a large fabric
            # would otherwise ask for more and the fabric could not be built)
            rate = sh_rate if sh_rate is not None else _rate("sharp_rate_bps (default: twice the down-link rates)",
                                                             min(down_rate[tiers[sw]], MAX_RATE_BPS))
            links.append(Link(e, sw, rate, sh_lat // 2, 0))
    name = (f"rail_clos(rails={R}, servers={S}, leaves/rail={L}, spines/rail={P}, cores/group={C}"
            + (f", planes={planes}" if planes > 1 else "") + (", nvlink" if nv_rate else "")
            + (", sharp" if sharp else "") + ")")
    return Fabric(name=name, num_hosts=lay.num_hosts, num_switches=lay.num_nodes - lay.num_hosts,
                  node_names=names, node_tier=tiers, links=links, params=params,
                  addresses=lay.address_table(), num_servers=S)


@dataclass(frozen=True, order=True)
class Gpu:
    """One GPU: ``server`` and local index ``rail`` (its NIC is on rail ``rail``)."""

    server: int
    rail: int


class RailLayout:
    """Index maps of a :func:`rail_clos` fabric, from its ``params`` (``RailLayout.of(fabric)``):
    nodes (servers, engines, switches), addresses (NICs, NVLink ports, engines) and ports."""

    def __init__(self, params: dict):
        if params.get("topology") != "rail_clos":
            raise ValueError(f"topology: a rail layout needs a rail_clos fabric, got {params.get('topology')!r}")
        self.params = dict(params)
        self.R = params["num_rails"]
        self.spl = params["servers_per_leaf"]
        self.L = params["leaves_per_rail"]
        self.P = params["spines_per_rail"]
        self.C = params["cores_per_group"]
        self.planes = params["planes"]
        self.has_nvlink = params["nvlink_rate_bps"] > 0
        self.has_sharp = bool(params["sharp"])
        self.num_servers = self.spl * self.L
        S, R = self.num_servers, self.R
        self.num_nics = S * R                      # one address per NIC, with a port per plane
        self.links_per_plane = S * R + R * self.L * self.P + R * self.P * self.C
        self._nvl_link0 = self.planes * self.links_per_plane
        self.switches_per_plane = R * self.L + R * self.P + self.P * self.C
        self.num_engines = self.planes * self.switches_per_plane if self.has_sharp else 0
        self._agg_link0 = self._nvl_link0 + (S * R if self.has_nvlink else 0)
        # nodes: servers, then engines (hosts); switches: per plane leaves, spines, cores; NVSwitches
        self.num_hosts = S + self.num_engines
        self._sw0 = self.num_hosts
        self._nvsw0 = self._sw0 + self.planes * self.switches_per_plane
        self.num_nodes = self._nvsw0 + (S if self.has_nvlink else 0)
        # addresses: NICs, then NVLink ports, then engines
        self._nvl0 = self.num_nics
        self._agg0 = self._nvl0 + (S * R if self.has_nvlink else 0)
        self.num_addresses = self._agg0 + self.num_engines

    @classmethod
    def of(cls, fabric: Fabric) -> RailLayout:
        return cls(fabric.params)

    # ----- GPUs
    @property
    def num_gpus(self) -> int:
        return self.num_servers * self.R

    def gpus(self) -> list[Gpu]:
        return [Gpu(s, r) for s in range(self.num_servers) for r in range(self.R)]

    def check_gpu(self, g: Gpu, name: str = "gpu") -> Gpu:
        if not isinstance(g, Gpu):
            raise ValueError(f"{name} must be a Gpu(server, rail), got {g!r}")
        if not 0 <= g.server < self.num_servers or not 0 <= g.rail < self.R:
            raise ValueError(f"{name} {g} is not in the fabric ({self.num_servers} servers x {self.R} rails)")
        return g

    # ----- nodes
    def server(self, server: int) -> int:
        """The server's host node (all its NICs and NVLink ports are its ports)."""
        return server

    def engine(self, switch: int) -> int:
        """The host node of the aggregation engine attached to a leaf, spine or core switch."""
        return self.num_servers + self._agg_index(switch)

    def leaf(self, rail: int, leaf: int, plane: int = 0) -> int:
        return self._sw0 + plane * self.switches_per_plane + rail * self.L + leaf

    def spine(self, rail: int, spine: int, plane: int = 0) -> int:
        return self._sw0 + plane * self.switches_per_plane + self.R * self.L + rail * self.P + spine

    def core(self, group: int, core: int, plane: int = 0) -> int:
        return self._sw0 + plane * self.switches_per_plane + self.R * (self.L + self.P) + group * self.C + core

    def nvswitch(self, server: int) -> int:
        return self._nvsw0 + server

    def leaf_group(self, server: int) -> int:
        return server // self.spl

    def aggregating_switches(self) -> list[int]:
        """Leaves, spines and cores of every plane (the switches that get an aggregation engine)."""
        return list(range(self._sw0, self._nvsw0))

    def _agg_index(self, switch: int) -> int:
        if not self.has_sharp:
            raise ValueError("sharp: this fabric has no aggregation engines (build it with sharp=True)")
        if not self._sw0 <= switch < self._nvsw0:
            raise ValueError(f"switch {switch} is not a leaf, spine or core of this fabric")
        return switch - self._sw0

    # ----- addresses (what a transfer names: controlplane/ai/collectives.py)
    def nic(self, server: int, rail: int) -> int:
        """The address of NIC (server, rail): its plane ports (:meth:`nic_port`)."""
        return server * self.R + rail

    def nvl(self, server: int, rail: int) -> int:
        """The address of GPU (server, rail)'s NVLink port (:meth:`nvl_port`)."""
        if not self.has_nvlink:
            raise ValueError("nvlink_rate_bps: this fabric has no NVLink ports (nvlink_rate_bps = 0)")
        return self._nvl0 + server * self.R + rail

    def aggregator(self, switch: int) -> int:
        """The address of the aggregation engine of a leaf, spine or core switch."""
        return self._agg0 + self._agg_index(switch)

    def host_of(self, addr: int) -> int:
        """The host node of an address (a NIC's or NVLink port's server, or an engine)."""
        if 0 <= addr < self._agg0:
            return (addr % self.num_nics) // self.R
        if self._agg0 <= addr < self.num_addresses:
            return self.num_servers + addr - self._agg0
        raise ValueError(f"address {addr} is not in the fabric ({self.num_addresses} addresses)")

    def gpu_of(self, addr: int) -> Gpu:
        """The GPU owning a NIC or NVLink address."""
        if 0 <= addr < self.num_nics:
            return Gpu(addr // self.R, addr % self.R)
        if self.has_nvlink and self._nvl0 <= addr < self._agg0:
            i = addr - self._nvl0
            return Gpu(i // self.R, i % self.R)
        raise ValueError(f"address {addr} is not a GPU endpoint (a NIC or NVLink address)")

    # ----- ports
    def nic_port(self, server: int, rail: int, plane: int = 0) -> int:
        """The port of NIC (server, rail) on plane ``plane``: its link is the plane's
        ``server * R + rail``-th (the server is the link's end a)."""
        if not 0 <= plane < self.planes:
            raise ValueError(f"plane {plane} is not in the fabric ({self.planes} planes)")
        return 2 * (plane * self.links_per_plane + server * self.R + rail)

    def nvl_port(self, server: int, rail: int) -> int:
        """The server's port of GPU (server, rail)'s NVLink (to its NVSwitch)."""
        self.nvl(server, rail)
        return 2 * (self._nvl_link0 + server * self.R + rail)

    def engine_port(self, switch: int) -> int:
        """The engine's port (its one link, to its switch)."""
        return 2 * (self._agg_link0 + self._agg_index(switch))

    def address_ports(self, addr: int) -> list[int]:
        """The ports of an address, ascending (a NIC's: one per plane, in plane order)."""
        if 0 <= addr < self.num_nics:
            g = self.gpu_of(addr)
            return [self.nic_port(g.server, g.rail, p) for p in range(self.planes)]
        if self.has_nvlink and self._nvl0 <= addr < self._agg0:
            g = self.gpu_of(addr)
            return [self.nvl_port(g.server, g.rail)]
        if self._agg0 <= addr < self.num_addresses:
            return [2 * (self._agg_link0 + addr - self._agg0)]
        raise ValueError(f"address {addr} is not in the fabric ({self.num_addresses} addresses)")

    def address_table(self) -> list[list[int]]:
        """Every address's ports (Fabric.addresses)."""
        return [self.address_ports(a) for a in range(self.num_addresses)]

    def tier_between(self, a: Gpu, b: Gpu) -> int:
        """Highest switch tier the traffic between two GPUs climbs (NIC to NIC, shortest path):
        0 same server (NVLink; with no NVLink the NICs meet at a leaf only if on one rail),
        1 one rail and one leaf group, 2 one rail across leaf groups, 3 across rails."""
        if a == b:
            return 0
        if a.server == b.server and self.has_nvlink:
            return 0
        if a.rail != b.rail:
            return 3
        return 1 if self.leaf_group(a.server) == self.leaf_group(b.server) else 2


__all__ = ["rail_clos", "RailLayout", "Gpu"]
