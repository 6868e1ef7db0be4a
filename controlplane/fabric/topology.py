"""Fabrics: hosts, switches and the links between them, plus builders for common topologies.

Units (docs/architecture.md, 'Units, time and determinism'): link rates are integer bits per second
(``rate_bps``), one-way propagation delays are integer picoseconds (``delay_ps``).
``controlplane.config.units`` has helpers (``Gbps(100)``, ``us(1)``).

Node ids: hosts are ``0 .. num_hosts-1``, switches are ``num_hosts .. num_nodes-1``.

Port ids follow the data plane's convention: link ``i`` has port ``2*i`` at node ``links[i].a``
and port ``2*i+1`` at node ``links[i].b``. A port is where a node transmits onto a link, so a
port id names one direction of one link.

A :class:`Fabric` validates itself when constructed and should be treated as immutable
afterwards (its per-node port lists are computed once).

Builders: :func:`single_switch`, :func:`dumbbell`, :func:`leaf_spine`, :func:`fat_tree` (and
``rail_clos`` in controlplane/ai/rails.py), and :func:`build` which dispatches on a builder name
(for configuration files). Every builder stores its arguments, with defaults resolved, in
``Fabric.params`` under the builder name key ``"topology"``, so ``build(**fabric.params)`` rebuilds
the same fabric. A topology kind is a builder plus its schema model, registered by
:func:`register_topology` (the built-in kinds at the end of this module; a user's kind the same
way, docs/extending.md 'Topology').
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import Discriminator, Tag

from controlplane.config.schema import DELAY, RATE, Bool, Int, Num, Strict, _tag


@dataclass(frozen=True)
class Link:
    """A full-duplex link between nodes ``a`` and ``b``.

    ``rate_bps`` is the line rate in bits/s (both directions), ``delay_ps`` the one-way
    propagation delay in picoseconds, ``tier`` the fabric layer: 0 = host <-> first switch,
    1 = the next layer up, and so on. Values are checked when the link joins a :class:`Fabric`.
    """

    a: int
    b: int
    rate_bps: int
    delay_ps: int
    tier: int


def _as_int(name: str, value: Any) -> int:
    """Return ``value`` as a Python int, or raise ValueError naming ``name``.

    Accepts integers (including numpy integers) and integral floats such as ``100e9``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def _positive(name: str, value: Any) -> int:
    """``value`` as an int that must be > 0."""
    v = _as_int(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def _rate(name: str, value: Any) -> int:
    """``value`` as a link rate in bit/s, in [MIN_RATE_BPS, MAX_RATE_BPS]."""
    v = _as_int(name, value)
    if not MIN_RATE_BPS <= v <= MAX_RATE_BPS:
        raise ValueError(f"{name} must be a rate in [1e6, 1e14] bit/s (1 Mb/s to 100 Tb/s), got {v}")
    return v


def _delay(name: str, value: Any) -> int:
    """``value`` as a one-way delay in ps, in [0, MAX_DELAY_PS]."""
    v = _as_int(name, value)
    if not 0 <= v <= MAX_DELAY_PS:
        raise ValueError(f"{name} must be a delay in [0, 10^15] ps, got {v}")
    return v


def _non_negative(name: str, value: Any) -> int:
    """``value`` as an int that must be >= 0."""
    v = _as_int(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


# ----- size bounds and the memory estimate ---------------------------------------------------
# Node ids are uint32 in the data plane and every switch holds a FIB entry per host, so a
# fabric's size is bounded twice: by count (below) and by the memory it needs (estimate_bytes,
# checked against memory_limit_bytes() before anything is allocated). The counts are far above
# any fabric the emulator runs in reasonable time (the permutation benchmark has 1,024 hosts).
MAX_HOSTS = 1 << 20
MAX_SWITCHES = 1 << 20
MAX_LINKS = 1 << 22
# Per-object costs the data plane's struct sizes do not cover, measured on fat_tree(k=32)
# (8,192 hosts, 1,280 switches, 24,576 links; peak RSS over the build, CPython 3.11):
PY_BYTES_PER_LINK = 600          # Link object, two port names, port lists (~500 B measured)
PY_BYTES_PER_NODE = 200          # name, tier, adjacency
HOST_BYTES = 64                  # the data plane's per-host NIC state (sd_host is not in the cffi interface)
ROUTE_BYTES_PER_PAIR = 12        # per (switch, host): routing's work arrays at their peak (11 B measured at k = 32; the C FIB is per ToR now)
# A link rate is in [1 Mb/s, 100 Tb/s], the data plane's range (native/sim.c sd_add_links: the
# floor is SD_MIN_RATE_BPS, a ConnectX QP rate limiter's minimum); a delay at most 10^15 ps, the
# bound of every time (controlplane/config/limits.py).
MIN_RATE_BPS = 10**6
MAX_RATE_BPS = 10**14
MAX_DELAY_PS = 10**15
MEMORY_ENV = "SOFTDPU_MAX_MEMORY_GIB"
GiB = 1 << 30


def memory_limit_bytes() -> int:
    """The memory a scenario may need: ``SOFTDPU_MAX_MEMORY_GIB`` (GiB, a number > 0) when set, else
    half of the machine's physical memory (os.sysconf), or half of the process's address-space
    limit (``ulimit -v``) when that is smaller."""
    env = os.environ.get(MEMORY_ENV)
    if env is not None and env.strip():
        try:
            gib = float(env)
        except ValueError:
            gib = float("nan")
        if not gib > 0 or gib == float("inf"):
            raise ValueError(f"{MEMORY_ENV} must be a number of GiB > 0, got {env!r}")
        return int(gib * GiB)
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):     # no sysconf: assume a 16 GiB machine
        limit = 8 * GiB
    try:                                               # a process address-space limit (ulimit -v)
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            limit = min(limit, soft // 2)              # half of it: the interpreter and libraries use the rest
    except (ImportError, OSError, ValueError):
        pass
    return limit


def estimate_bytes(num_hosts: int, num_switches: int, num_links: int, *, num_flows: int = 0,
                   pkt_pool: int = 0) -> int:
    """About how many bytes a scenario needs: the data plane's arrays (sizes from the C structs:
    two ports per link, a FIB entry per switch and host, two QPs and one sd_msg per flow, and
    sd_packet per pool slot) plus the Python side's fabric, routing and flow objects."""
    from dataplane.sim import SIZEOF_PORT, SIZEOF_QP, ffi
    nodes = num_hosts + num_switches
    data_plane = (2 * num_links * SIZEOF_PORT + num_hosts * HOST_BYTES
                  + num_flows * (2 * SIZEOF_QP + ffi.sizeof("sd_msg") + 4)
                  + pkt_pool * ffi.sizeof("sd_packet"))
    python = (num_links * PY_BYTES_PER_LINK + nodes * PY_BYTES_PER_NODE
              + num_switches * num_hosts * ROUTE_BYTES_PER_PAIR + num_flows * 400)
    return data_plane + python


def check_memory(need_bytes: int, what: str) -> None:
    """ValueError when ``need_bytes`` exceeds :func:`memory_limit_bytes`, saying how to raise it."""
    limit = memory_limit_bytes()
    if need_bytes > limit:
        raise ValueError(f"{what}: this scenario needs about {need_bytes / GiB:.1f} GiB "
                         f"(limit {limit / GiB:.1f} GiB; raise it with {MEMORY_ENV}=...)")


def check_size(field: str, num_hosts: int, num_switches: int, num_links: int) -> None:
    """Refuse a fabric over the count bounds or the memory limit, before it is built; ``field``
    names the topology in the message."""
    for what, n, cap in (("hosts", num_hosts, MAX_HOSTS), ("switches", num_switches, MAX_SWITCHES),
                         ("links", num_links, MAX_LINKS)):
        if n > cap:
            raise ValueError(f"topology {field}: {n:,} {what}, at most {cap:,}")
    check_memory(estimate_bytes(num_hosts, num_switches, num_links), f"topology {field}")


@dataclass
class Fabric:
    """A network of hosts and switches joined by :class:`Link` objects.

    Fields:
        name: human-readable label, e.g. ``"fat_tree(k=4)"``.
        num_hosts: host nodes are ids ``0 .. num_hosts-1``.
        num_switches: switch nodes are ids ``num_hosts .. num_hosts+num_switches-1``.
        node_names: one unique name per node (``"h0"``, ``"tor3"``, ``"spine1"``, ...).
        node_tier: 0 for hosts; 1 for ToR/leaf/edge switches, 2 for agg/spine, 3 for core.
        links: the links; list position ``i`` defines port ids ``2*i`` and ``2*i+1``.
        params: JSON-serialisable builder arguments (see module docstring).
        addresses: optional, the host interface groups a packet can be addressed to: address ``a``
            is ``addresses[a]``, a list of ports of one host (docs/architecture.md, 'The node
            model'). Every host port is in exactly one address. ``None`` (the default): address
            ``h`` is host ``h`` with all its ports. Routes have one FIB column per address.
        num_servers: optional, the hosts ``0 .. num_servers-1`` that workloads use (servers); the
            hosts after them are engines (e.g. SHARP aggregation engines attached to switches),
            which only their own driver addresses. ``None``: every host is a server.

    Invariants checked at construction (ValueError naming the offending field): node ids in
    range, no self links, rates > 0, delays >= 0, tiers consistent, unique names, and every
    host has at least one link (a port), each to a switch.
    """

    name: str
    num_hosts: int
    num_switches: int
    node_names: list[str]
    node_tier: list[int]
    links: list[Link]
    params: dict = field(default_factory=dict)
    addresses: list[list[int]] | None = None
    num_servers: int | None = None
    _node_ports: list[list[int]] = field(init=False, repr=False, compare=False)
    _port_names: list[str] = field(init=False, repr=False, compare=False)
    _port_addr: list[int | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        self.num_hosts = _positive("num_hosts", self.num_hosts)
        self.num_switches = _positive("num_switches", self.num_switches)
        self._check_nodes()
        self.links = [self._checked_link(i, link) for i, link in enumerate(self.links)]
        self._check_host_links()
        if not isinstance(self.params, dict):
            raise ValueError(f"params must be a dict, got {type(self.params).__name__}")
        try:
            json.dumps(self.params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params must be JSON-serialisable: {exc}") from None

        self._node_ports = [[] for _ in range(self.num_nodes)]
        for i, link in enumerate(self.links):
            self._node_ports[link.a].append(2 * i)
            self._node_ports[link.b].append(2 * i + 1)
        self._port_names = self._make_port_names()
        self._check_addresses()
        if self.num_servers is not None:
            ns = _as_int("num_servers", self.num_servers)
            if not 1 <= ns <= self.num_hosts:
                raise ValueError(f"num_servers must be in [1, num_hosts = {self.num_hosts}], got {ns}")
            self.num_servers = None if ns == self.num_hosts else ns

    def _check_addresses(self) -> None:
        """Every address a non-empty list of ports of one host, every host port in exactly one.
        Addresses equal to the default (one per host, all its ports, in host order) become None."""
        self._port_addr = [None] * self.num_ports
        if self.addresses is None:
            for h in range(self.num_hosts):
                for p in self._node_ports[h]:
                    self._port_addr[p] = h
            return
        if isinstance(self.addresses, (str, bytes)) or not hasattr(self.addresses, "__len__"):
            raise ValueError(f"addresses must be a list of port lists, got {self.addresses!r}")
        addrs = []
        for a, ports in enumerate(self.addresses):
            if isinstance(ports, (str, bytes)) or not hasattr(ports, "__len__") or not len(ports):
                raise ValueError(f"addresses[{a}] must be a non-empty list of host ports, got {ports!r}")
            ports = [_as_int(f"addresses[{a}] port", p) for p in ports]
            owners = set()
            for p in ports:
                if not 0 <= p < self.num_ports or not self.is_host(self.port_owner(p)):
                    raise ValueError(f"addresses[{a}]: port {p} is not a host port")
                if self._port_addr[p] is not None:
                    raise ValueError(f"addresses[{a}]: port {p} ({self.port_name(p)}) is already in "
                                     f"address {self._port_addr[p]}")
                self._port_addr[p] = a
                owners.add(self.port_owner(p))
            if len(owners) > 1:
                raise ValueError(f"addresses[{a}]: ports of several hosts "
                                 f"({', '.join(self.node_names[o] for o in sorted(owners))}); an address "
                                 "groups ports of one host")
            addrs.append(sorted(ports))
        missing = [p for p in range(self.num_ports) if self.is_host(self.port_owner(p)) and self._port_addr[p] is None]
        if missing:
            raise ValueError(f"addresses: host port {missing[0]} ({self.port_name(missing[0])}) has no address; "
                             "every host port needs one")
        self.addresses = addrs
        if addrs == [sorted(self._node_ports[h]) for h in range(self.num_hosts)]:
            self.addresses = None            # the default: one address per host

    # ----- addresses ------------------------------------------------------------------

    @property
    def addresses_declared(self) -> bool:
        """True if the addresses differ from the default (one per host)."""
        return self.addresses is not None

    @property
    def num_addresses(self) -> int:
        """Addresses (FIB columns): ``num_hosts`` unless declared."""
        return self.num_hosts if self.addresses is None else len(self.addresses)

    def address_ports(self, addr: int) -> list[int]:
        """The ports of address ``addr`` (ascending)."""
        a = _as_int("address", addr)
        if not 0 <= a < self.num_addresses:
            raise ValueError(f"address must be in [0, {self.num_addresses}), got {a}")
        return list(self._node_ports[a]) if self.addresses is None else list(self.addresses[a])

    def address_host(self, addr: int) -> int:
        """The host node of address ``addr``."""
        return self.port_owner(self.address_ports(addr)[0])

    def port_address(self, port: int) -> int | None:
        """The address of a host port; None at a switch port."""
        return self._port_addr[self._check_port(port)]

    def port_addresses(self) -> list[int | None]:
        """The address of every port (None at switch ports): sd_set_addresses' table."""
        return list(self._port_addr)

    def host_address(self, host: int) -> int:
        """The address of host ``host``'s first port: where traffic addressed "to the host"
        (a generic workload's flow) goes; the host itself unless addresses are declared."""
        h = _as_int("host", host)
        if not self.is_host(h):
            raise ValueError(f"host must be in [0, {self.num_hosts}), got {h}")
        return h if self.addresses is None else self._port_addr[self._node_ports[h][0]]

    @property
    def servers(self) -> int:
        """Hosts ``0 .. servers-1`` are servers (workload endpoints); the rest are engines."""
        return self.num_hosts if self.num_servers is None else self.num_servers

    # ----- validation -------------------------------------------------------------------

    def _check_nodes(self) -> None:
        n = self.num_nodes
        self.node_names = list(self.node_names)
        self.node_tier = list(self.node_tier)
        if len(self.node_names) != n:
            raise ValueError(f"node_names must have num_nodes={n} entries, got {len(self.node_names)}")
        for i, nm in enumerate(self.node_names):
            if not isinstance(nm, str) or not nm:
                raise ValueError(f"node_names[{i}] must be a non-empty string, got {nm!r}")
        seen: set[str] = set()
        for nm in self.node_names:
            if nm in seen:
                raise ValueError(f"node_names must be unique, {nm!r} appears more than once")
            seen.add(nm)
        if len(self.node_tier) != n:
            raise ValueError(f"node_tier must have num_nodes={n} entries, got {len(self.node_tier)}")
        self.node_tier = [_as_int(f"node_tier[{i}]", t) for i, t in enumerate(self.node_tier)]
        for i, t in enumerate(self.node_tier):
            if self.is_host(i) and t != 0:
                raise ValueError(f"node_tier[{i}] must be 0 for host {self.node_names[i]!r}, got {t}")
            if not self.is_host(i) and t < 1:
                raise ValueError(f"node_tier[{i}] must be >= 1 for switch {self.node_names[i]!r}, got {t}")

    def _checked_link(self, i: int, link: Link) -> Link:
        if not isinstance(link, Link):
            raise ValueError(f"links[{i}] must be a Link, got {type(link).__name__}")
        n = self.num_nodes
        a = _as_int(f"links[{i}].a", link.a)
        b = _as_int(f"links[{i}].b", link.b)
        for end, v in (("a", a), ("b", b)):
            if not 0 <= v < n:
                raise ValueError(f"links[{i}].{end} must be a node id in [0, {n}), got {v}")
        if a == b:
            raise ValueError(f"links[{i}] is a self link on node {self.node_names[a]!r} ({a})")
        if self.is_host(a) and self.is_host(b):
            raise ValueError(
                f"links[{i}] joins two hosts {self.node_names[a]!r} and {self.node_names[b]!r}; "
                "a host must link to a switch")
        rate = _rate(f"links[{i}].rate_bps", link.rate_bps)
        delay = _delay(f"links[{i}].delay_ps", link.delay_ps)
        return Link(a=a, b=b, rate_bps=rate, delay_ps=delay,
                    tier=_non_negative(f"links[{i}].tier", link.tier))

    def _check_host_links(self) -> None:
        host_links: list[list[int]] = [[] for _ in range(self.num_hosts)]
        for i, link in enumerate(self.links):
            for end in (link.a, link.b):
                if self.is_host(end):
                    host_links[end].append(i)
        for h, ids in enumerate(host_links):
            if not ids:
                raise ValueError(
                    f"host {self.node_names[h]!r} (node {h}) has no link; every host needs at least "
                    "one link (a port), to a switch")

    def _make_port_names(self) -> list[str]:
        """``"owner->peer"`` per port; parallel links get ``#1``, ``#2``... by link order."""
        pair_count: dict[tuple[int, int], int] = {}
        for link in self.links:
            key = (min(link.a, link.b), max(link.a, link.b))
            pair_count[key] = pair_count.get(key, 0) + 1
        seen: dict[tuple[int, int], int] = {}
        names: list[str] = []
        for link in self.links:
            key = (min(link.a, link.b), max(link.a, link.b))
            suffix = ""
            if pair_count[key] > 1:
                suffix = f"#{seen.get(key, 0)}"
                seen[key] = seen.get(key, 0) + 1
            names.append(f"{self.node_names[link.a]}->{self.node_names[link.b]}{suffix}")
            names.append(f"{self.node_names[link.b]}->{self.node_names[link.a]}{suffix}")
        return names

    # ----- nodes ------------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        """Hosts plus switches."""
        return self.num_hosts + self.num_switches

    @property
    def num_ports(self) -> int:
        """Two ports per link."""
        return 2 * len(self.links)

    @property
    def node_kinds(self) -> list[str]:
        """The node table's kinds, one per node: ``"host"`` or ``"switch"`` (the data plane's
        sd_set_nodes; hosts are numbered first)."""
        return ["host" if self.is_host(n) else "switch" for n in range(self.num_nodes)]

    def is_host(self, node: int) -> bool:
        """True if ``node`` is a host id."""
        return 0 <= node < self.num_hosts

    def is_switch(self, node: int) -> bool:
        """True if ``node`` is a switch id."""
        return self.num_hosts <= node < self.num_nodes

    def node_id(self, name: str) -> int:
        """The id of the node called ``name``."""
        try:
            return self.node_names.index(name)
        except ValueError:
            raise ValueError(f"no node named {name!r} in fabric {self.name!r}") from None

    def _check_node(self, node: int) -> int:
        n = _as_int("node", node)
        if not 0 <= n < self.num_nodes:
            raise ValueError(f"node must be in [0, {self.num_nodes}), got {n}")
        return n

    def ports(self, node: int) -> list[int]:
        """Egress port ids at ``node``, ascending."""
        return list(self._node_ports[self._check_node(node)])

    def neighbors(self, node: int) -> list[int]:
        """Peer node of each port of ``node``, in the order of :meth:`ports` (repeats for
        parallel links)."""
        return [self.port_peer(p) for p in self._node_ports[self._check_node(node)]]

    # ----- ports ------------------------------------------------------------------------

    def _check_port(self, port: int) -> int:
        p = _as_int("port", port)
        if not 0 <= p < self.num_ports:
            raise ValueError(f"port must be in [0, {self.num_ports}), got {p}")
        return p

    def port_of(self, link_index: int, node: int) -> int:
        """The port of link ``link_index`` at ``node`` (``2*i`` at end ``a``, ``2*i+1`` at ``b``)."""
        i = _as_int("link_index", link_index)
        if not 0 <= i < len(self.links):
            raise ValueError(f"link_index must be in [0, {len(self.links)}), got {i}")
        link = self.links[i]
        if node == link.a:
            return 2 * i
        if node == link.b:
            return 2 * i + 1
        raise ValueError(f"node {node} is not an end of link {i} ({link.a} <-> {link.b})")

    def port_link(self, port: int) -> int:
        """Index of the link a port belongs to."""
        return self._check_port(port) // 2

    def port_owner(self, port: int) -> int:
        """The node that transmits on ``port``."""
        p = self._check_port(port)
        link = self.links[p // 2]
        return link.b if p & 1 else link.a

    def port_peer(self, port: int) -> int:
        """The node at the far end of ``port``."""
        p = self._check_port(port)
        link = self.links[p // 2]
        return link.a if p & 1 else link.b

    def port_name(self, port: int) -> str:
        """``"owner->peer"``, e.g. ``"tor0->h3"``; parallel links add ``#n`` (n = 0, 1, ...)."""
        return self._port_names[self._check_port(port)]

    # ----- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-serialisable dict holding everything needed by :meth:`from_dict`."""
        return {
            "name": self.name,
            "num_hosts": self.num_hosts,
            "num_switches": self.num_switches,
            "node_names": list(self.node_names),
            "node_tier": list(self.node_tier),
            "links": [asdict(link) for link in self.links],
            "params": self.params,
            **({"addresses": [list(a) for a in self.addresses]} if self.addresses is not None else {}),
            **({"num_servers": self.num_servers} if self.num_servers is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Fabric:
        """Inverse of :meth:`to_dict`."""
        return cls(name=d["name"], num_hosts=d["num_hosts"], num_switches=d["num_switches"],
                   node_names=d["node_names"], node_tier=d["node_tier"],
                   links=[Link(**link) for link in d["links"]], params=dict(d.get("params", {})),
                   addresses=d.get("addresses"), num_servers=d.get("num_servers"))

    @classmethod
    def from_links(cls, name: str, num_hosts: int, num_switches: int, links: list[Link],
                   node_names: list[str] | None = None, node_tier: list[int] | None = None,
                   params: dict | None = None, addresses: list[list[int]] | None = None,
                   num_servers: int | None = None) -> Fabric:
        """A custom fabric from an explicit link list (``addresses``, ``num_servers``: see
        :class:`Fabric`).

        ``node_names`` defaults to ``h0..`` for hosts and ``sw0..`` for switches. ``node_tier``
        defaults to each switch's hop distance from the nearest host (ToR = 1, next layer = 2,
        ...); a switch with no path to any host gets tier 1. All checks of :class:`Fabric` apply.
        """
        nh = _positive("num_hosts", num_hosts)
        ns = _positive("num_switches", num_switches)
        links = list(links)
        if node_names is None:
            node_names = [f"h{i}" for i in range(nh)] + [f"sw{i}" for i in range(ns)]
        if node_tier is None:
            node_tier = _tiers_by_distance(nh, ns, links)
        return cls(name=name, num_hosts=nh, num_switches=ns, node_names=node_names,
                   node_tier=node_tier, links=links, params={} if params is None else params,
                   addresses=addresses, num_servers=num_servers)


def _tiers_by_distance(num_hosts: int, num_switches: int, links: list[Link]) -> list[int]:
    """Hop distance of every node from the nearest host (hosts 0; unreachable switches 1).

    Links with out-of-range ends are skipped here; the Fabric constructor reports them.
    """
    n = num_hosts + num_switches
    adj: list[list[int]] = [[] for _ in range(n)]
    for link in links:
        if isinstance(link, Link) and 0 <= link.a < n and 0 <= link.b < n:
            adj[link.a].append(link.b)
            adj[link.b].append(link.a)
    tier = [0] * num_hosts + [-1] * num_switches
    frontier = list(range(num_hosts))
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for u in frontier:
            for v in adj[u]:
                if tier[v] < 0:
                    tier[v] = depth
                    nxt.append(v)
        frontier = nxt
    return [t if t >= 0 else 1 for t in tier]


# ----- builders -----------------------------------------------------------------------------

def _host_names(n: int) -> list[str]:
    return [f"h{i}" for i in range(n)]


def single_switch(num_hosts: int, rate_bps: int, delay_ps: int) -> Fabric:
    """Star: hosts ``0..num_hosts-1`` each linked to one switch ``sw0`` (the incast topology).

    ``rate_bps`` (bits/s) and ``delay_ps`` (one-way, picoseconds) apply to every link.
    Link ``h`` joins host ``h`` (end ``a``) to the switch.
    """
    n = _positive("num_hosts", num_hosts)
    rate = _rate("rate_bps", rate_bps)
    delay = _delay("delay_ps", delay_ps)
    check_size(f"single_switch(num_hosts={n})", n, 1, n)
    sw = n
    links = [Link(h, sw, rate, delay, 0) for h in range(n)]
    return Fabric(name=f"single_switch(hosts={n})", num_hosts=n, num_switches=1,
                  node_names=_host_names(n) + ["sw0"], node_tier=[0] * n + [1], links=links,
                  params={"topology": "single_switch", "num_hosts": n, "rate_bps": rate,
                          "delay_ps": delay})


def dumbbell(num_left: int, num_right: int, host_rate_bps: int, bottleneck_rate_bps: int,
             host_delay_ps: int, bottleneck_delay_ps: int) -> Fabric:
    """Two switches joined by one bottleneck link.

    Hosts ``0..num_left-1`` hang off ``sw0`` (left), the next ``num_right`` hosts off ``sw1``
    (right). Host links (tier 0) use ``host_rate_bps``/``host_delay_ps``; the last link is the
    ``sw0``-``sw1`` bottleneck (tier 1) with ``bottleneck_rate_bps``/``bottleneck_delay_ps``.
    Rates in bits/s, delays one-way in picoseconds.
    """
    nl = _positive("num_left", num_left)
    nr = _positive("num_right", num_right)
    h_rate = _rate("host_rate_bps", host_rate_bps)
    b_rate = _rate("bottleneck_rate_bps", bottleneck_rate_bps)
    h_delay = _delay("host_delay_ps", host_delay_ps)
    b_delay = _delay("bottleneck_delay_ps", bottleneck_delay_ps)
    n = nl + nr
    check_size(f"dumbbell(num_left={nl}, num_right={nr})", n, 2, n + 1)
    left, right = n, n + 1
    links = [Link(h, left if h < nl else right, h_rate, h_delay, 0) for h in range(n)]
    links.append(Link(left, right, b_rate, b_delay, 1))
    return Fabric(name=f"dumbbell(left={nl}, right={nr})", num_hosts=n, num_switches=2,
                  node_names=_host_names(n) + ["sw0", "sw1"], node_tier=[0] * n + [1, 1],
                  links=links,
                  params={"topology": "dumbbell", "num_left": nl, "num_right": nr,
                          "host_rate_bps": h_rate, "bottleneck_rate_bps": b_rate,
                          "host_delay_ps": h_delay, "bottleneck_delay_ps": b_delay})


def leaf_spine(num_leaves: int, num_spines: int, hosts_per_leaf: int, host_rate_bps: int,
               fabric_rate_bps: int, host_delay_ps: int, fabric_delay_ps: int, host_uplinks: int = 1) -> Fabric:
    """Two-tier Clos: every leaf linked to every spine.

    Host ``h`` is on leaf ``h // hosts_per_leaf``. Node order: hosts, ``leaf0..``, ``spine0..``.
    Link order: host links (tier 0, ``host_rate_bps``/``host_delay_ps``), then for each leaf
    its links to spines 0.. (tier 1, ``fabric_rate_bps``/``fabric_delay_ps``).
    Rates in bits/s, delays one-way in picoseconds.

    ``host_uplinks=2``: dual-homed hosts (a DPU or NIC with two ports to a leaf pair, as MC-LAG
    or EVPN multihoming racks are built): leaves ``2i`` and ``2i+1`` are a pair (``num_leaves``
    even) and host ``h`` also has a second port to the other leaf of its pair, ``(h //
    hosts_per_leaf) ^ 1``; those links come last (link ``n + num_leaves * num_spines + h``).
    """
    nl = _positive("num_leaves", num_leaves)
    nsp = _positive("num_spines", num_spines)
    hpl = _positive("hosts_per_leaf", hosts_per_leaf)
    h_rate = _rate("host_rate_bps", host_rate_bps)
    f_rate = _rate("fabric_rate_bps", fabric_rate_bps)
    h_delay = _delay("host_delay_ps", host_delay_ps)
    f_delay = _delay("fabric_delay_ps", fabric_delay_ps)
    up = _positive("host_uplinks", host_uplinks)
    if up > 2:
        raise ValueError(f"host_uplinks must be 1 or 2, got {up}")
    if up == 2 and nl % 2:
        raise ValueError(f"host_uplinks=2 pairs the leaves (2i, 2i+1): num_leaves must be even, got {nl}")
    n = nl * hpl
    check_size(f"leaf_spine(num_leaves={nl}, num_spines={nsp}, hosts_per_leaf={hpl})", n, nl + nsp,
               up * n + nl * nsp)
    leaf0, spine0 = n, n + nl
    links = [Link(h, leaf0 + h // hpl, h_rate, h_delay, 0) for h in range(n)]
    links += [Link(leaf0 + l, spine0 + s, f_rate, f_delay, 1)
              for l in range(nl) for s in range(nsp)]
    if up == 2:
        links += [Link(h, leaf0 + ((h // hpl) ^ 1), h_rate, h_delay, 0) for h in range(n)]
    extra = {"host_uplinks": 2} if up == 2 else {}      # a single-homed fabric's params are unchanged
    return Fabric(name=f"leaf_spine(leaves={nl}, spines={nsp}, hosts_per_leaf={hpl}"
                  + (", dual-homed" if up == 2 else "") + ")",
                  num_hosts=n, num_switches=nl + nsp,
                  node_names=(_host_names(n) + [f"leaf{i}" for i in range(nl)]
                              + [f"spine{i}" for i in range(nsp)]),
                  node_tier=[0] * n + [1] * nl + [2] * nsp, links=links,
                  params={"topology": "leaf_spine", "num_leaves": nl, "num_spines": nsp,
                          "hosts_per_leaf": hpl, "host_rate_bps": h_rate,
                          "fabric_rate_bps": f_rate, "host_delay_ps": h_delay,
                          "fabric_delay_ps": f_delay, **extra})


def fat_tree(k: int, host_rate_bps: int, host_delay_ps: int, *,
             agg_rate_bps: int | None = None, agg_delay_ps: int | None = None,
             core_rate_bps: int | None = None, core_delay_ps: int | None = None) -> Fabric:
    """Three-tier k-ary fat-tree (Al-Fares, Loukissas, Vahdat, SIGCOMM 2008).

    ``k`` pods, each with ``k/2`` edge (ToR) and ``k/2`` aggregation switches; ``(k/2)**2``
    core switches; ``k**3/4`` hosts, ``k/2`` per edge switch. ``k`` must be even and >= 2.

    Per-tier link parameters (rates in bits/s, delays one-way in picoseconds):
        host <-> edge (tier 0): ``host_rate_bps``, ``host_delay_ps``
        edge <-> agg  (tier 1): ``agg_rate_bps``, ``agg_delay_ps``   (default: host values)
        agg  <-> core (tier 2): ``core_rate_bps``, ``core_delay_ps`` (default: host values)

    Numbering: hosts first (host ``h`` on edge ``h // (k/2)``, in pod ``h // (k**2/4)``), then
    edge switches ``tor0..`` (edge ``e`` in pod ``e // (k/2)``), aggregation switches
    ``agg0..`` (same numbering), core switches ``core0..``. Core ``j`` connects to aggregation
    switch ``j // (k/2)`` of every pod. Links: host links, then edge-agg links pod by pod, then
    agg-core links pod by pod; end ``a`` is always the lower tier.
    """
    k = _as_int("k", k)
    if k < 2 or k % 2:
        raise ValueError(f"k must be an even integer >= 2, got {k}")
    h_rate = _rate("host_rate_bps", host_rate_bps)
    h_delay = _delay("host_delay_ps", host_delay_ps)
    a_rate = h_rate if agg_rate_bps is None else _rate("agg_rate_bps", agg_rate_bps)
    a_delay = h_delay if agg_delay_ps is None else _delay("agg_delay_ps", agg_delay_ps)
    c_rate = h_rate if core_rate_bps is None else _rate("core_rate_bps", core_rate_bps)
    c_delay = h_delay if core_delay_ps is None else _delay("core_delay_ps", core_delay_ps)

    half = k // 2
    num_hosts = k ** 3 // 4
    num_pod_sw = k * half          # edge switches == aggregation switches == k * k/2
    num_core = half * half
    edge0 = num_hosts
    agg0 = edge0 + num_pod_sw
    core0 = agg0 + num_pod_sw
    check_size(f"fat_tree(k={k})", num_hosts, 2 * num_pod_sw + num_core, 3 * num_hosts)

    links = [Link(h, edge0 + h // half, h_rate, h_delay, 0) for h in range(num_hosts)]
    for pod in range(k):
        for e in range(half):
            for a in range(half):
                links.append(Link(edge0 + pod * half + e, agg0 + pod * half + a, a_rate, a_delay, 1))
    for pod in range(k):
        for a in range(half):
            for j in range(a * half, (a + 1) * half):
                links.append(Link(agg0 + pod * half + a, core0 + j, c_rate, c_delay, 2))

    names = (_host_names(num_hosts) + [f"tor{i}" for i in range(num_pod_sw)]
             + [f"agg{i}" for i in range(num_pod_sw)] + [f"core{i}" for i in range(num_core)])
    tiers = [0] * num_hosts + [1] * num_pod_sw + [2] * num_pod_sw + [3] * num_core
    return Fabric(name=f"fat_tree(k={k})", num_hosts=num_hosts,
                  num_switches=2 * num_pod_sw + num_core, node_names=names, node_tier=tiers,
                  links=links,
                  params={"topology": "fat_tree", "k": k, "host_rate_bps": h_rate,
                          "host_delay_ps": h_delay, "agg_rate_bps": a_rate,
                          "agg_delay_ps": a_delay, "core_rate_bps": c_rate,
                          "core_delay_ps": c_delay})


#: topology kind -> its builder (a function, or "module:function" imported when first built) and its
#: schema model; filled by register_topology (the built-in kinds at the end of this module)
BUILDERS: dict[str, Callable[..., Fabric] | str] = {}
MODELS: dict[str, type[Strict]] = {}


def build(topology: str | None = None, **kwargs: Any) -> Fabric:
    """Build a fabric by builder name, e.g. ``build("fat_tree", k=4, host_rate_bps=..., ...)``.

    ``build(**fabric.params)`` rebuilds a fabric made by any builder. Unknown names and
    missing/unexpected arguments raise ValueError.
    """
    if topology is None:
        raise ValueError(f"topology.topology (the builder name) is missing; known: {', '.join(sorted(BUILDERS))}")
    builder = BUILDERS.get(topology) if isinstance(topology, str) else None
    if builder is None:
        raise ValueError(f"unknown topology {topology!r}; known: {', '.join(sorted(BUILDERS))}")
    if isinstance(builder, str):
        import importlib
        module, _, fn = builder.partition(":")
        builder = getattr(importlib.import_module(module), fn)
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        raise ValueError(f"topology {topology!r}: {exc}") from None
    fabric = builder(**kwargs)
    if fabric.num_hosts < 2:           # no pair of hosts: no path, no base RTT, nothing to send
        raise ValueError(f"topology {fabric.name}: {fabric.num_hosts} host; a scenario's fabric needs at least 2")
    return fabric


# ---------------------------------------------------------------------------------- the schema
# One model per kind: Scenario.topology is checked against it before anything is built (build()
# above then checks what needs the numbers together: sizes, memory).
class SingleSwitch(Strict):
    """Star: every host on one switch (controlplane/fabric/topology.py single_switch)."""
    topology: Literal["single_switch"]
    num_hosts: Int("hosts on the switch", lo=1)
    rate_bps: Int("every link's rate", **RATE)
    delay_ps: Int("every link's one-way delay", **DELAY)


class Dumbbell(Strict):
    """Two switches joined by one bottleneck link (topology.py dumbbell)."""
    topology: Literal["dumbbell"]
    num_left: Int("hosts on the left switch", lo=1)
    num_right: Int("hosts on the right switch", lo=1)
    host_rate_bps: Int("host links' rate", **RATE)
    bottleneck_rate_bps: Int("the bottleneck link's rate", **RATE)
    host_delay_ps: Int("host links' one-way delay", **DELAY)
    bottleneck_delay_ps: Int("the bottleneck's one-way delay", **DELAY)


class LeafSpine(Strict):
    """Two-tier Clos, every leaf linked to every spine (topology.py leaf_spine)."""
    topology: Literal["leaf_spine"]
    num_leaves: Int("leaf switches", lo=1)
    num_spines: Int("spine switches", lo=1)
    hosts_per_leaf: Int("hosts per leaf", lo=1)
    host_rate_bps: Int("host links' rate", **RATE)
    fabric_rate_bps: Int("leaf-spine links' rate", **RATE)
    host_delay_ps: Int("host links' one-way delay", **DELAY)
    fabric_delay_ps: Int("leaf-spine links' one-way delay", **DELAY)
    host_uplinks: Int("ports per host: 1, or 2 (dual-homed to a leaf pair)", lo=1, hi=2) = 1


class FatTree(Strict):
    """k-ary fat-tree (Al-Fares et al., SIGCOMM 2008; topology.py fat_tree)."""
    topology: Literal["fat_tree"]
    k: Int("pods (even, >= 2): k^3/4 hosts", lo=2)
    host_rate_bps: Int("host-edge links' rate", **RATE)
    host_delay_ps: Int("host-edge links' one-way delay", **DELAY)
    agg_rate_bps: Int("edge-agg links' rate (None: the host rate)", **RATE) | None = None
    agg_delay_ps: Int("edge-agg links' delay (None: the host delay)", **DELAY) | None = None
    core_rate_bps: Int("agg-core links' rate (None: the host rate)", **RATE) | None = None
    core_delay_ps: Int("agg-core links' delay (None: the host delay)", **DELAY) | None = None


class RailClos(Strict):
    """Rail-optimized 3-tier Clos (controlplane/ai/rails.py rail_clos); defaults as its signature."""
    topology: Literal["rail_clos"]
    host_rate_bps: Int("GPU NIC links' rate", **RATE)
    host_delay_ps: Int("GPU NIC links' one-way delay", **DELAY)
    num_rails: Int("rails (GPUs per server)", lo=1) = 8
    servers_per_leaf: Int("servers per rail leaf", lo=1) = 4
    leaves_per_rail: Int("leaves per rail", lo=1) = 2
    spines_per_rail: Int("spines per rail", lo=1) = 2
    cores_per_group: Int("cores per group", lo=1) = 2
    leaf_rate_bps: Int("leaf-spine rate (None: host rate)", **RATE) | None = None
    leaf_delay_ps: Int("leaf-spine delay (None: host delay)", **DELAY) | None = None
    core_rate_bps: Int("spine-core rate (None: host rate)", **RATE) | None = None
    core_delay_ps: Int("spine-core delay (None: host delay)", **DELAY) | None = None
    oversubscription: Num("leaf oversubscription ratio", lo=0, lo_open=True) = 1.0
    core_oversubscription: Num("spine oversubscription ratio", lo=0, lo_open=True) = 1.0
    planes: Int("parallel network planes", lo=1) = 1
    nvlink_rate_bps: Int("NVLink rate inside a server (0: none)", lo=0, kind="rate") = 0
    nvlink_delay_ps: Int("NVLink delay", **DELAY) = 0
    sharp: Bool("in-network reduction (SHARP) on the switches") = False
    sharp_rate_bps: Int("SHARP aggregation rate (None: the link rate)", **RATE) | None = None
    sharp_latency_ps: Int("SHARP per-switch latency", **DELAY) = 0


def topology_union() -> Any:
    """The schema of a scenario's ``topology``: the registered kinds' models as one union tagged by the
    ``topology`` key (an unknown name is refused naming every known one)."""
    known = ", ".join(sorted(MODELS))
    return Annotated[Union[tuple(Annotated[m, Tag(n)] for n, m in MODELS.items())],
                     Discriminator(_tag("topology"), custom_error_type="topology",
                                   custom_error_message=f"unknown topology; known: {known}")]


def register_topology(name: str, builder: Callable[..., Fabric] | str, model: type[Strict]) -> None:
    """Make ``name`` a topology kind: ``Scenario(topology={"topology": name, ...})`` is validated by
    ``model`` and built by ``builder(**the other keys)`` (docs/extending.md, 'Topology').

    ``builder`` returns a :class:`Fabric` whose ``params`` hold ``"topology": name`` and its
    arguments (so ``build(**fabric.params)`` rebuilds it), or is ``"module:function"``, imported when
    the kind is first built. ``model`` is a :class:`~controlplane.config.schema.Strict` model with
    ``topology: Literal[name]`` and one field per builder argument. The scenario schema
    (``controlplane.config.models.ScenarioModel``, ``softdpu schema``) follows at once. A name is
    registered once; registering it again with other objects is refused."""
    import sys
    import typing
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a topology kind's name must be an identifier, got {name!r}")
    if name in MODELS:
        if (BUILDERS[name], MODELS[name]) == (builder, model):
            return
        raise ValueError(f"topology {name!r} is already registered (builder {BUILDERS[name]!r})")
    if not (callable(builder) or (isinstance(builder, str) and builder.count(":") == 1)):
        raise ValueError(f"topology {name!r}: the builder must be a function or 'module:function', got {builder!r}")
    if not (isinstance(model, type) and issubclass(model, Strict)):
        raise ValueError(f"topology {name!r}: the model must be a subclass of controlplane.config.schema.Strict, "
                         f"got {model!r}")
    tag = model.model_fields.get("topology")
    if tag is None or typing.get_args(tag.annotation) != (name,):
        raise ValueError(f"topology {name!r}: {model.__name__} must declare topology: Literal[{name!r}]")
    BUILDERS[name] = builder
    MODELS[name] = model
    global Topology
    Topology = topology_union()
    models = sys.modules.get("controlplane.config.models")
    if hasattr(models, "rebuild_topology"):    # ScenarioModel already built from the earlier kinds: follow
        models.rebuild_topology()              # (while models.py is still importing this module, it is not)


register_topology("single_switch", single_switch, SingleSwitch)
register_topology("dumbbell", dumbbell, Dumbbell)
register_topology("leaf_spine", leaf_spine, LeafSpine)
register_topology("fat_tree", fat_tree, FatTree)
register_topology("rail_clos", "controlplane.ai.rails:rail_clos", RailClos)   # rails.py imports this module
