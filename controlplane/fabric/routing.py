"""Shortest-path ECMP routes in the form the C data plane takes.

For every (switch, destination address) pair the candidate egress ports are all ports leading to a
neighbour one hop closer to the destination (hop count, not delay or rate). Paths never transit
a host. Identical candidate sets share one id, so the tables stay small.

How it is computed: every path to host ``h`` ends with ``a -> h``, where ``a`` is one of the
switches ``h``'s ports are linked to (one, ``tor(h)``, for a single-port host; a multi-port host
is reachable through any of its ports). Hence the candidates at a switch not attached to ``h``
depend only on ``h``'s set of attachment switches: they are the switch-to-switch ports of ``s``
whose peer is one hop closer to the nearest switch of that set in the switch-only graph. One
vectorised multi-source BFS over the switch graph (one column per attachment switch) gives all
those distances; at an attachment switch the candidates are its ports facing ``h``.

A destination is an *address* (:class:`controlplane.fabric.topology.Fabric`, ``addresses``): a
group of ports of one host, by default address ``h`` = host ``h`` with all its ports (then
"address" reads "host" everywhere below). A multi-address host (a GPU server with a NIC per rail)
is reached at the address a packet names, through that address's ports only. With declared
addresses an address may be unreachable from some switches (an NVLink port behind its server's
NVSwitch): the FIB holds ``NO_ROUTE`` there, and the data plane drops and counts what meets it;
with default addresses every switch must reach every host (RoutingError otherwise).

Port ids follow :mod:`controlplane.fabric.topology`: link ``i`` has port ``2*i`` at ``links[i].a`` and
``2*i+1`` at ``links[i].b``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from controlplane.fabric.topology import Fabric, Link


NO_ROUTE = 0xFFFFFFFF          # a FIB entry without a route (declared addresses only)
FIB_LOCAL = 0xFFFFFFFE         # a group entry standing for each address's own (native/softdpu.h SD_FIB_LOCAL)


class RoutingError(ValueError):
    """A fabric (or a routing table) cannot deliver some host's traffic."""


@dataclass
class Routes:
    """Forwarding state for the data plane (all arrays uint32), grouped.

    Addresses attached to the same switches (a ToR's hosts) form a *group*; a switch routes a
    group's addresses alike, except at the switches they are attached to, where each address has
    the set of ports facing it. So the table holds a column per group (per ToR) and one entry per
    (address, attached switch): 2.6 MB at k = 32 instead of the 40 MiB of a column per address.

    group_fib: shape ``(num_switches, num_groups)``; ``group_fib[s - num_hosts, g]`` is the ECMP
        set id used at switch node ``s`` for group ``g``, ``NO_ROUTE``, or ``FIB_LOCAL``: then
        each address of the group has its own entry for that switch in the local table.
    addr_group: shape ``(num_addresses,)``; the group of each address.
    local_offsets: shape ``(num_addresses + 1,)``; address ``a``'s own entries are
        ``local_switch[local_offsets[a]:local_offsets[a+1]]`` (switch indices, ascending) with
        sets ``local_set[...]``, one per ``FIB_LOCAL`` entry of its group.
    set_offsets: shape ``(num_sets + 1,)``; set ``i`` is
        ``set_ports[set_offsets[i]:set_offsets[i+1]]``.
    set_ports: egress port ids, ascending within each set.
    host_port: shape ``(num_hosts,)``; each host's first port (link order; its only uplink
        unless it is a multi-port host).

    Set ids are numbered in order of first appearance when the flat table :attr:`fib` is read
    row by row.
    """

    group_fib: np.ndarray
    addr_group: np.ndarray
    local_offsets: np.ndarray
    local_switch: np.ndarray
    local_set: np.ndarray
    set_offsets: np.ndarray
    set_ports: np.ndarray
    host_port: np.ndarray
    num_hosts: int = 0           # the first switch node

    @property
    def num_sets(self) -> int:
        """Number of distinct ECMP sets."""
        return len(self.set_offsets) - 1

    @property
    def num_switches(self) -> int:
        return self.group_fib.shape[0]

    @property
    def num_addresses(self) -> int:
        return len(self.addr_group)

    @property
    def fib(self) -> np.ndarray:
        """The flat table, built on demand (a copy): shape ``(num_switches, num_addresses)``,
        ``fib[s - num_hosts, a]`` = the set id (or ``NO_ROUTE``) at switch node ``s`` towards
        address ``a``. For inspection and tests (read-only); the data plane takes the grouped form."""
        flat = self.group_fib[:, self.addr_group]
        flat[self.local_switch, self._local_address()] = self.local_set
        flat.flags.writeable = False      # a derived copy: changing it would change nothing
        return flat

    def row(self, switch_index: int) -> np.ndarray:
        """The flat table's row of switch index ``switch_index`` (node ``num_hosts + switch_index``)."""
        r = self.group_fib[switch_index, self.addr_group]
        mine = self.local_switch == switch_index
        r[self._local_address()[mine]] = self.local_set[mine]
        return r

    def _local_address(self) -> np.ndarray:
        """The address of each local entry (local_offsets read back)."""
        return np.repeat(np.arange(self.num_addresses), np.diff(self.local_offsets.astype(np.int64)))

    def set_id(self, switch: int, dst: int) -> int:
        """The set id at switch node ``switch`` towards address ``dst`` (``NO_ROUTE`` if none)."""
        sw = switch - self.num_hosts
        s = int(self.group_fib[sw, self.addr_group[dst]])
        if s == FIB_LOCAL:
            lo, hi = int(self.local_offsets[dst]), int(self.local_offsets[dst + 1])
            hit = np.flatnonzero(self.local_switch[lo:hi] == sw)
            s = int(self.local_set[lo + hit[0]]) if len(hit) else NO_ROUTE
        return s

    def set_members(self, set_id: int) -> np.ndarray:
        """The egress ports of ECMP set ``set_id`` (ascending)."""
        return self.set_ports[self.set_offsets[set_id]:self.set_offsets[set_id + 1]]

    def candidates(self, switch: int, dst: int) -> np.ndarray:
        """Candidate egress ports at switch node ``switch`` towards address ``dst`` (empty if it
        has no route there)."""
        set_id = self.set_id(switch, dst)
        if set_id == NO_ROUTE:
            return self.set_ports[:0]
        return self.set_members(set_id)

    def install(self, sim) -> None:
        """Install these routes into a data plane (dataplane.sim.Simulator), grouped."""
        sim.install_routes(self.group_fib, self.addr_group, self.local_offsets, self.local_switch,
                           self.local_set, self.set_offsets, self.set_ports)


def _check_down_links(fabric: Fabric, down_links: Iterable[int]) -> set[int]:
    down = set()
    for i in down_links:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) \
                or not 0 <= i < len(fabric.links):
            raise ValueError(f"down_links entries must be link indices in [0, {len(fabric.links)}), "
                             f"got {i!r}")
        down.add(int(i))
    return down


def _no_route(fabric: Fabric, switch: int, host: int) -> RoutingError:
    return RoutingError(
        f"no route from switch {fabric.node_names[switch]!r} (node {switch}) to host "
        f"{fabric.node_names[host]!r} (node {host})")


def compute_routes(fabric: Fabric, down_links: Iterable[int] = ()) -> Routes:
    """Shortest-path (hop count) ECMP routes for ``fabric``.

    ``down_links`` lists link indices to treat as failed; port ids stay those of the full
    fabric, so routes after a failure can be installed into the same data plane.

    Raises :class:`RoutingError` naming the host (and switch) if a host has no working link
    or some switch cannot reach some host.
    """
    H, S = fabric.num_hosts, fabric.num_switches
    A, declared = fabric.num_addresses, fabric.addresses_declared
    down = _check_down_links(fabric, down_links)
    up = np.array([i for i in range(len(fabric.links)) if i not in down], dtype=np.int64)
    end_a = np.array([fabric.links[i].a for i in up], dtype=np.int64)
    end_b = np.array([fabric.links[i].b for i in up], dtype=np.int64)

    # Host attachments. A Fabric never joins two hosts, so each host link has one switch end; a
    # host may have several (a multi-port host: NICs on one or several switches).
    at_a = end_a < H
    at_b = end_b < H
    att_host = np.concatenate([end_a[at_a], end_b[at_b]])
    att_sw = np.concatenate([end_b[at_a], end_a[at_b]]) - H          # switch index
    att_hport = np.concatenate([2 * up[at_a], 2 * up[at_b] + 1])       # the host's port
    host_port = np.full(H, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(host_port, att_host, att_hport)                     # its first port (link order)
    if (host_port == np.iinfo(np.int64).max).any():
        h = int(np.flatnonzero(host_port == np.iinfo(np.int64).max)[0])
        raise RoutingError(f"host {fabric.node_names[h]!r} (node {h}) has no link up "
                           "(every link of it is in down_links)")
    # (address, switch) attachment pairs, by address then switch; each pair's ports facing the address
    port_addr = np.array([-1 if a is None else a for a in fabric.port_addresses()], dtype=np.int64)
    att_addr = port_addr[att_hport] if len(att_hport) else att_host
    pair_key = att_addr * S + att_sw
    pairs, pair_of = np.unique(pair_key, return_inverse=True)
    a_host, a_sw = pairs // S, pairs % S                              # a_host: the pair's address
    by_pair_order = np.argsort(pair_of, kind="stable")
    bounds = np.cumsum(np.bincount(pair_of, minlength=len(pairs)))[:-1]
    facing = [np.sort(f) for f in np.split(att_hport[by_pair_order] ^ 1, bounds)]

    # Switch-to-switch ports (both directions of each link): owner and peer as switch indices.
    sw = ~(at_a | at_b)
    sw_ports = np.concatenate([2 * up[sw], 2 * up[sw] + 1])
    owner = np.concatenate([end_a[sw], end_b[sw]]) - H
    peer = np.concatenate([end_b[sw], end_a[sw]]) - H

    # One distance column per distinct set of attachment switches (a single-homed host's: its
    # ToR): hops from every switch to the nearest switch of the set.
    n_att = np.bincount(a_host, minlength=A)
    tor = np.full(A, -1, dtype=np.int64)
    single = n_att == 1
    tor[a_host[single[a_host]]] = a_sw[single[a_host]]
    targets = np.unique(a_sw)
    dist_t = _hops_to(targets, owner, peer, S)        # (S, T): hops from switch s to targets[t]
    if single.all():
        tors, tor_col = np.unique(tor, return_inverse=True)
        dist = dist_t[:, np.searchsorted(targets, tors)]
    else:
        keys = [tuple(a_sw[a_host == h]) for h in range(A)]
        uniq = sorted(set(keys))
        index = {k: i for i, k in enumerate(uniq)}
        tor_col = np.array([index[k] for k in keys], dtype=np.int64)
        big = np.where(dist_t < 0, np.iinfo(np.int64).max, dist_t)
        dist = np.stack([big[:, np.searchsorted(targets, list(k))].min(axis=1) if k   # () = every port down
                         else np.full(S, np.iinfo(np.int64).max) for k in uniq], axis=1)
        dist[dist == np.iinfo(np.int64).max] = -1
    if (dist < 0).any() and not declared:
        s, col = (int(x) for x in np.argwhere(dist < 0)[0])
        h = int(np.flatnonzero(tor_col == col)[0])
        raise _no_route(fabric, s + H, h)

    pair_switch, pair_col = np.nonzero(dist > 0)      # (s, t) pairs with s not attached to column t's hosts
    sets, inverse = _transit_sets(dist, sw_ports, owner, peer, pair_switch, pair_col)
    host_set = len(sets) + np.arange(len(pairs))
    sets += facing                                    # at an attachment switch: the ports facing the host

    # Number sets by first appearance in fib read row by row: pair (s, t) first appears at
    # the lowest host of column t, host h's own set at each row of a switch it is attached to.
    lowest_host = np.full(dist.shape[1], A, dtype=np.int64)
    np.minimum.at(lowest_host, tor_col, np.arange(A))
    first_seen = np.full(len(sets), S * A, dtype=np.int64)
    np.minimum.at(first_seen, inverse, pair_switch * A + lowest_host[pair_col])
    first_seen[host_set] = a_sw * A + a_host
    ordered = np.argsort(first_seen, kind="stable")
    new_id = np.empty(len(sets), dtype=np.int64)
    new_id[ordered] = np.arange(len(sets))

    by_pair = np.zeros(dist.shape, dtype=np.uint32)
    by_pair[pair_switch, pair_col] = new_id[inverse]
    by_pair[dist < 0] = NO_ROUTE                      # declared addresses only (else raised above)
    by_pair[dist == 0] = FIB_LOCAL                    # at an attachment switch: each address its own set
    sizes = np.array([len(sets[i]) for i in ordered], dtype=np.int64)
    # pairs are sorted by (address, switch): the local table in CSR form
    local_offsets = np.concatenate([[0], np.cumsum(np.bincount(a_host, minlength=A))])
    return Routes(
        group_fib=by_pair,
        addr_group=tor_col.astype(np.uint32),
        local_offsets=local_offsets.astype(np.uint32),
        local_switch=a_sw.astype(np.uint32),
        local_set=new_id[host_set].astype(np.uint32),
        set_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint32),
        set_ports=np.concatenate([sets[i] for i in ordered]).astype(np.uint32),
        host_port=host_port.astype(np.uint32),
        num_hosts=H,
    )


def _hops_to(targets: np.ndarray, owner: np.ndarray, peer: np.ndarray,
             num_switches: int) -> np.ndarray:
    """Hop distance over the switch-only graph from every switch to each switch in
    ``targets``; -1 where unreachable. ``owner``/``peer`` list the switch ports (both
    directions of each link) as switch indices. One breadth-first search per target, all run
    together: column ``t`` of the frontier holds the switches reached at the current depth.
    """
    T = len(targets)
    dist = np.full((num_switches, T), -1, dtype=np.int64)
    dist[targets, np.arange(T)] = 0
    frontier = dist == 0
    by_owner = np.argsort(owner, kind="stable")
    recv, send = owner[by_owner], peer[by_owner]
    receivers, starts = np.unique(recv, return_index=True)
    depth = 0
    while frontier.any() and len(send):
        depth += 1
        reached = np.zeros_like(frontier)
        # A switch is reached if any of its neighbours was in the frontier.
        reached[receivers] = np.logical_or.reduceat(frontier[send], starts, axis=0)
        frontier = reached & (dist < 0)
        dist[frontier] = depth
    return dist


def _transit_sets(dist: np.ndarray, sw_ports: np.ndarray, owner: np.ndarray, peer: np.ndarray,
                  pair_switch: np.ndarray, pair_col: np.ndarray
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct candidate sets for the (switch, ToR column) pairs given, and per pair the index
    of its set.

    The candidates at switch ``s`` towards ToR column ``t`` are the switch ports of ``s`` whose
    peer is one hop closer (``dist[peer, t] == dist[s, t] - 1``). Each pair's set is written as
    a bitmask over its switch's ports (ascending), and pairs are deduplicated by (switch,
    bitmask): sets at different switches never share ports.
    """
    num_switches = dist.shape[0]
    order = np.lexsort((sw_ports, owner))
    sw_ports, owner, peer = sw_ports[order], owner[order], peer[order]
    deg = np.bincount(owner, minlength=num_switches)
    first = np.concatenate([[0], np.cumsum(deg)[:-1]])
    local = np.arange(len(owner)) - first[owner]       # index of each port among its owner's
    # one byte per (switch, ToR column, port of the switch): refuse, naming the memory, before
    # numpy would fail on a fabric too large for this machine
    from controlplane.fabric.topology import check_memory
    check_memory(2 * int(np.prod(dist.shape, dtype=np.int64)) * int(deg.max(initial=0)), "the fabric's routing tables")
    closer = np.zeros((*dist.shape, int(deg.max(initial=0))), dtype=bool)
    # in blocks of ports: dist[peer] for all ports at once would be (ports x columns) int64, 134 MB
    # apiece at k = 32, three of them alive at once
    block = max(1, (1 << 22) // max(1, dist.shape[1]))
    for i in range(0, len(owner), block):
        o, pe = owner[i:i + block], peer[i:i + block]
        closer[o, :, local[i:i + block]] = dist[pe] == dist[o] - 1
    masks = np.packbits(closer[pair_switch, pair_col], axis=1)
    switch_bytes = pair_switch.astype(">u4").view(np.uint8).reshape(-1, 4)
    uniq, inverse = _unique_rows(np.column_stack([switch_bytes, masks]))
    sets = []
    for key in uniq:
        s = int(key[:4].view(">u4")[0])
        members = np.unpackbits(key[4:])[:deg[s]].astype(bool)
        sets.append(sw_ports[first[s]:first[s] + deg[s]][members])
    return sets, inverse


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D uint8 array and, per input row, the index of its distinct row.

    Rows are packed into big-endian uint64 words and sorted with ``lexsort``, which is much
    faster than ``np.unique(axis=0)``.
    """
    n, width = rows.shape
    words = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
    words[:, :width] = rows
    words = words.view(">u8")
    order = np.lexsort(words.T[::-1])
    sorted_words = words[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (sorted_words[1:] != sorted_words[:-1]).any(axis=1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return rows[order[starts]], inverse


def _check_host(fabric: Fabric, name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not 0 <= int(value) < fabric.num_addresses:
        what = "a host id" if not fabric.addresses_declared else "an address"
        raise ValueError(f"{name} must be {what} in [0, {fabric.num_addresses}), got {value!r}")
    return int(value)


def path(fabric: Fabric, routes: Routes, src: int, dst: int) -> list[int]:
    """One shortest path from address ``src`` to address ``dst`` (host ids unless the fabric
    declares addresses) as a list of egress port ids.

    The first port is ``src``'s first port (a host's first working uplink); at each switch the
    lowest port of the ECMP set is taken, so the result is deterministic. Raises RoutingError if
    ``routes`` do not lead to ``dst`` (e.g. they were computed for another fabric, or ``dst`` is
    not reachable from ``src``'s switch).
    """
    src = _check_host(fabric, "src", src)
    dst = _check_host(fabric, "dst", dst)
    if src == dst:
        raise ValueError(f"src and dst must differ, both are {src}")
    if (routes.num_switches, routes.num_addresses) != (fabric.num_switches, fabric.num_addresses):
        raise ValueError(f"routes.fib has shape {(routes.num_switches, routes.num_addresses)}, fabric needs "
                         f"{(fabric.num_switches, fabric.num_addresses)}")
    if fabric.addresses_declared:
        ports = [fabric.address_ports(src)[0]]
        src_name, dst_node = fabric.port_name(ports[0]), fabric.address_host(dst)
        dst_name = f"{fabric.node_names[dst_node]} (address {dst})"
    else:
        ports = [int(routes.host_port[src])]
        src_name, dst_node, dst_name = fabric.node_names[src], dst, fabric.node_names[dst]
    node = fabric.port_peer(ports[0])
    while node != dst_node:
        if fabric.is_host(node) or len(ports) > fabric.num_nodes:
            raise RoutingError(f"routes from host {src_name!r} to host "
                               f"{dst_name!r} do not reach it (at node "
                               f"{fabric.node_names[node]!r} after {len(ports)} hops)")
        cand = routes.candidates(node, dst)
        if not len(cand):
            raise RoutingError(f"routes from {src_name!r} to {dst_name!r}: switch "
                               f"{fabric.node_names[node]!r} has no route to it")
        port = int(cand[0])
        if fabric.port_owner(port) != node:
            raise RoutingError(f"routes give switch {fabric.node_names[node]!r} port {port}, "
                               f"which belongs to {fabric.node_names[fabric.port_owner(port)]!r}")
        ports.append(port)
        node = fabric.port_peer(port)
    return ports


def path_links(fabric: Fabric, routes: Routes, src: int, dst: int) -> list[Link]:
    """The links of :func:`path` in order from ``src`` to ``dst``."""
    return [fabric.links[p // 2] for p in path(fabric, routes, src, dst)]


def hop_count(fabric: Fabric, routes: Routes, src: int, dst: int) -> int:
    """Number of links on a shortest path from address ``src`` to address ``dst`` (hosts by default)."""
    return len(path(fabric, routes, src, dst))
