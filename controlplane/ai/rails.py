"""The AI fabric: a rail-optimized 3-tier CLOS (the rail-optimized design of NVIDIA's DGX SuperPOD
reference architecture: GPU r of every server on rail r; controlplane/ai/collectives.py for the
collectives that run on it).

Shape. A *server* holds ``num_rails`` GPUs, GPU ``r`` with its own NIC on *rail* ``r``. Each rail
is a full 2-level CLOS of its own: ``leaves_per_rail`` leaves, each serving NIC ``r`` of
``servers_per_leaf`` servers (the servers of one *leaf group* ``s // servers_per_leaf``), and
``spines_per_rail`` spines linked to every leaf of the rail. A third tier joins the rails: core
group ``k`` (``cores_per_group`` switches) is linked to spine ``k`` of every rail, so traffic from
rail ``i`` to rail ``j != i`` goes leaf -> spine -> core -> spine -> leaf.

How multi-NIC servers map onto the data plane. Each NIC is its own host node ("endpoint") with
its own address: ``s3.g5`` is NIC 5 of server 3 (a QP lives on a NIC, and traffic between rails
must reach the destination's NIC through the third tier: a host-addressed multi-port server
would not express that). A multi-plane fabric (``planes > 1``) replicates the whole rail fabric
per plane and gives every NIC one port per plane: the NIC is one host with ``planes`` ports
(docs/architecture.md, 'The node model'), port ``p`` on plane ``p``, reachable through any of
them; a transfer is split over the planes, one QP per plane bound to that plane's port at both
ends, so its packets never leave their plane (the planes share no switch or link).

NVLink. With ``nvlink_rate_bps > 0`` every GPU also gets an NVLink endpoint (``s3.g5.nvl``), a
host node linked (``nvlink_rate_bps``, ``nvlink_delay_ps``) to the server's NVSwitch
(``nvsw3``), a switch joining the server's GPUs. The data plane needs a route from every switch
to every host, so each NVSwitch also has one *attachment link* per plane, to the rail-0 leaf of
its leaf group. It is never on a shortest path between two NICs (a NIC is one hop from a leaf
of every plane; a detour through the NVSwitch costs at least two hops more), and the collectives never address an NVLink endpoint of another server:
nothing is sent on it. Intra-server traffic between GPUs goes NVLink endpoint -> NVSwitch ->
NVLink endpoint; a schedule decides whether cross-rail traffic crosses the third tier (NIC to
NIC) or first moves over NVLink to the GPU on the destination's rail (PXN-like relay).

SHARP. With ``sharp=True`` (one plane only) every leaf, spine and core switch gets an *aggregation endpoint*
(``agg@leaf0.r1``), a host node on a link of rate ``sharp_rate_bps`` (the aggregation capacity)
and one-way delay ``sharp_latency_ps / 2`` (one pass in and out costs ``sharp_latency_ps``).
The endpoint of a non-root switch receives its children's chunks going up *and* the parent's
result coming down, and sends the partial sum up *and* one copy of the result per child, so the
default rate is twice the sum of the switch's down-link rates: aggregation at line rate, never
the bottleneck unless set lower. controlplane/ai/sharp.py drives the reduction tree through these endpoints.

Numbering (hosts first, as every Fabric): NIC endpoints ``server * R + rail`` (its plane-``p``
port: :meth:`RailLayout.nic_port`);
then NVLink endpoints ``server * R + rail`` (offset); then aggregation endpoints in switch order;
then switches: per plane leaves (rail-major), spines (rail-major), cores (group-major); then
NVSwitches. :class:`RailLayout` recomputes all maps from ``fabric.params``.

The workload generators of controlplane/transport/workload.py treat every host node alike (NVLink and
aggregation endpoints included): on a rail fabric drive traffic with controlplane/ai/collectives.py
or explicit flows between NIC endpoints.

Links: per plane, the NIC links (``server * R + rail``), leaf-spine, spine-core; then NVLink
and NVSwitch attachment links, then aggregation links. Tiers: link tier 0 = endpoint <-> its
switch, 1 = leaf <-> spine, 2 = spine <-> core (the third tier); the NVSwitch attachment link
has tier 1. Node tiers: leaves 1, spines 2, cores 3,
NVSwitches 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.fabric.topology import MAX_HOSTS, MAX_SWITCHES, Fabric, Link, _delay, _positive, _rate, check_size


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
        GPU <-> NVSwitch: ``nvlink_rate_bps`` (0 = no NVLink endpoints), ``nvlink_delay_ps``
        aggregation endpoint: ``sharp_rate_bps``, ``sharp_latency_ps`` (only with ``sharp``)
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
    num_links = (planes * (S * R + R * L * P + R * P * C) + (S * R + planes * S if nv_rate else 0)
                 + (planes * lay.switches_per_plane if sharp else 0))
    check_size(f"rail_clos(num_rails={R}, servers_per_leaf={spl}, leaves_per_rail={L}, spines_per_rail={P}, "
               f"cores_per_group={C}, planes={planes})", lay.num_hosts, lay.num_nodes - lay.num_hosts, num_links)
    names: list[str] = [""] * lay.num_nodes
    tiers: list[int] = [0] * lay.num_nodes
    links: list[Link] = []
    for s in range(S):
        for r in range(R):
            names[lay.nic(s, r)] = f"s{s}.g{r}"
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
        # tier 0: NIC (its plane-p port) -> leaf of its rail and leaf group
        for s in range(S):
            for r in range(R):
                links.append(Link(lay.nic(s, r), lay.leaf(r, s // spl, p), h_rate, h_delay, 0))
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
            for r in range(R):
                names[lay.nvl(s, r)] = f"s{s}.g{r}.nvl"
                links.append(Link(lay.nvl(s, r), lay.nvswitch(s), nv_rate, nv_delay, 0))
            for p in range(planes):      # one attachment per plane: every plane routes to the endpoints
                links.append(Link(lay.nvswitch(s), lay.leaf(0, s // spl, p), h_rate, h_delay, 1))
    if sharp:
        # default capacity: twice the sum of the switch's down-link rates (see the module docstring)
        down_rate = {1: 2 * spl * h_rate, 2: 2 * L * l_rate, 3: 2 * R * c_rate}
        for sw in lay.aggregating_switches():
            a = lay.aggregator(sw)
            names[a] = f"agg@{names[sw]}"
            rate = sh_rate if sh_rate is not None else _rate("sharp_rate_bps (default: twice the down-link rates)",
                                                             down_rate[tiers[sw]])
            links.append(Link(a, sw, rate, sh_lat // 2, 0))
    name = (f"rail_clos(rails={R}, servers={S}, leaves/rail={L}, spines/rail={P}, cores/group={C}"
            + (f", planes={planes}" if planes > 1 else "") + (", nvlink" if nv_rate else "")
            + (", sharp" if sharp else "") + ")")
    return Fabric(name=name, num_hosts=lay.num_hosts, num_switches=lay.num_nodes - lay.num_hosts,
                  node_names=names, node_tier=tiers, links=links, params=params)


@dataclass(frozen=True, order=True)
class Gpu:
    """One GPU: ``server`` and local index ``rail`` (its NIC is on rail ``rail``)."""

    server: int
    rail: int


class RailLayout:
    """Index maps of a :func:`rail_clos` fabric, from its ``params`` (``RailLayout.of(fabric)``)."""

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
        self.num_nics = S * R                      # one node per NIC, with a port per plane
        self.links_per_plane = S * R + R * self.L * self.P + R * self.P * self.C
        self._nvl0 = self.num_nics
        self._agg0 = self._nvl0 + (S * R if self.has_nvlink else 0)
        self.switches_per_plane = R * self.L + R * self.P + self.P * self.C
        n_agg = self.planes * self.switches_per_plane if self.has_sharp else 0
        self.num_hosts = self._agg0 + n_agg
        self._sw0 = self.num_hosts
        self._nvsw0 = self._sw0 + self.planes * self.switches_per_plane
        self.num_nodes = self._nvsw0 + (S if self.has_nvlink else 0)

    @classmethod
    def of(cls, fabric: Fabric) -> RailLayout:
        return cls(fabric.params)

    # ----- node ids
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

    def nic(self, server: int, rail: int) -> int:
        """The NIC endpoint (a host node; with planes > 1 it has one port per plane)."""
        return server * self.R + rail

    def nic_port(self, server: int, rail: int, plane: int = 0) -> int:
        """The port of NIC (server, rail) on plane ``plane``: its link is the plane's
        ``server * R + rail``-th (the NIC is the link's end a)."""
        if not 0 <= plane < self.planes:
            raise ValueError(f"plane {plane} is not in the fabric ({self.planes} planes)")
        return 2 * (plane * self.links_per_plane + server * self.R + rail)

    def nvl(self, server: int, rail: int) -> int:
        if not self.has_nvlink:
            raise ValueError("nvlink_rate_bps: this fabric has no NVLink endpoints (nvlink_rate_bps = 0)")
        return self._nvl0 + server * self.R + rail

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
        """Leaves, spines and cores of every plane (the switches that get an aggregation endpoint)."""
        return list(range(self._sw0, self._nvsw0))

    def aggregator(self, switch: int) -> int:
        """The aggregation endpoint (a host node) of a leaf, spine or core switch."""
        if not self.has_sharp:
            raise ValueError("sharp: this fabric has no aggregation endpoints (build it with sharp=True)")
        if not self._sw0 <= switch < self._nvsw0:
            raise ValueError(f"switch {switch} is not a leaf, spine or core of this fabric")
        return self._agg0 + switch - self._sw0

    def gpu_of(self, node: int) -> Gpu:
        """The GPU owning a NIC or NVLink endpoint."""
        if 0 <= node < self.num_nics:
            return Gpu(node // self.R, node % self.R)
        if self.has_nvlink and self._nvl0 <= node < self._agg0:
            i = node - self._nvl0
            return Gpu(i // self.R, i % self.R)
        raise ValueError(f"node {node} is not a GPU endpoint")

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
