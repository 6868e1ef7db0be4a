"""Collectives as message-level schedules on top of the transport (bus bandwidth as NVIDIA/nccl-tests
doc/PERFORMANCE.md defines it; validation target V8 of docs/architecture.md).

A collective is a :class:`Schedule`: a DAG of RDMA WRITE *transfers* between endpoints (their
addresses: host nodes, or on a rail fabric NIC, NVLink and engine addresses). A transfer is posted when every transfer it depends on has completed, plus an optional
delay; the control plane resolves the dependencies at completion events (the data plane runs
with ``wake_on_completion`` and stops at each completion; nothing is called per packet).
A *compute task* (``Transfer(compute=True, nbytes=0, delay_ps=D)``) sends nothing: it completes D
after its dependencies, at a time the driver asks the control loop for (controlplane/ai/training.py
builds training steps with them: compute as delays between dependent transfers).
A transfer *completes* when its sender sees the last byte acknowledged (the data plane's message
completion), so every dependent step pays the ACK's way back: NCCL signals a step with a flag
written after the data, which costs about the same one-way latency.

Data. Every transfer carries a small numpy vector along with its bytes: at post time it
snapshots ``buffers[src_key][elements]`` and at completion it adds it into (``"add"``) or copies
it over (``"copy"``) ``buffers[dst_key][elements]``. The byte count on the wire and the vector
length are independent (the vector is a sample of the payload), so tests can check the
arithmetic of a schedule (sum of the inputs) on real packet-level runs.

Algorithms (``size_bytes`` = S as nccl-tests counts it: the per-rank buffer of all-reduce,
broadcast and all-to-all, the full gathered buffer of all-gather, the input of reduce-scatter):
  ring all-reduce       reduce-scatter + all-gather, 2(N-1) steps, each segment (S/N) cut into
                        chunks of at most ``chunk_bytes`` that pipeline around the ring
  hierarchical          (rail fabrics) intra-server reduce-scatter over NVLink, one ring
                        all-reduce per rail across servers on 1/G of the data, intra-server
                        all-gather
  all-gather, reduce-scatter   N-1 ring steps
  all-to-all            one transfer per ordered pair; ``via="nvlink"`` (PXN-like) first moves
                        cross-rail data over NVLink to the GPU on the destination's rail, which
                        sends it on its own rail, instead of crossing the third tier
  broadcast             a chunked pipeline along the ring from the root
  SHARP all-reduce      controlplane/ai/sharp.py

Reported per collective (:class:`CollectiveResult`): time (first post to last completion),
algbw = S/t, busbw = algbw x the nccl-tests factor (:data:`BUSBW_FACTOR`).
"""
from __future__ import annotations

import bisect
import heapq
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np

from controlplane.run.control_loop import Controller
from congestion.api import CCPluginError
from controlplane.ai.rails import Gpu, RailLayout
from dataplane.sim import CQ_REQUESTER, STOP_IDLE, STOP_UPCALL, VERBS, SimError

# NVIDIA/nccl-tests doc/PERFORMANCE.md: busbw = algbw x factor(n)
BUSBW_FACTOR: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
}


@dataclass
class Transfer:
    """One RDMA WRITE of a schedule (see the module docstring)."""

    src: int                        # addresses (host node ids unless the fabric declares addresses)
    dst: int
    nbytes: int
    deps: tuple[int, ...] = ()
    delay_ps: int = 0               # posted this long after the last dependency completed
    op: str | None = None           # "add", "copy" or None (bytes only)
    src_key: Hashable = None
    dst_key: Hashable = None
    elems: tuple[int, int] = (0, 0)  # element range [lo, hi) of the carried vector at the source
    tag: str = ""
    dst_elems: tuple[int, int] | None = None   # ... at the destination (None: the same range)
    src_bytes: tuple[int, int] | None = None   # byte range of the source buffer it reads (data dependencies)
    dst_bytes: tuple[int, int] | None = None   # ... of the destination buffer it writes (None: src_bytes)
    compute: bool = False           # not a transfer: a compute task of ``delay_ps`` on ``src`` (nbytes 0)


class _WriteLog:
    """Per buffer, which transfers wrote each byte range since it was last overwritten: a copy
    starts a new list, an add appends to it. Reading a range depends on all of them."""

    def __init__(self) -> None:
        self.starts: dict[Hashable, list[int]] = {}
        self.pieces: dict[Hashable, list[list]] = {}       # [lo, hi, [tids]], sorted, disjoint

    def _split_at(self, key: Hashable, x: int) -> None:
        starts, pieces = self.starts[key], self.pieces[key]
        i = bisect.bisect_right(starts, x) - 1
        if i >= 0 and pieces[i][0] < x < pieces[i][1]:
            lo, hi, tids = pieces[i]
            pieces[i] = [lo, x, tids]
            pieces.insert(i + 1, [x, hi, list(tids)])
            starts.insert(i + 1, x)

    def reads(self, key: Hashable, lo: int, hi: int) -> set[int]:
        out: set[int] = set()
        starts, pieces = self.starts.get(key), self.pieces.get(key)
        if not starts:
            return out
        i = max(0, bisect.bisect_right(starts, lo) - 1)
        while i < len(pieces) and pieces[i][0] < hi:
            if pieces[i][1] > lo:
                out.update(pieces[i][2])
            i += 1
        return out

    def write(self, key: Hashable, lo: int, hi: int, op: str, tid: int) -> None:
        starts = self.starts.setdefault(key, [])
        pieces = self.pieces.setdefault(key, [])
        self._split_at(key, lo)
        self._split_at(key, hi)
        i = bisect.bisect_left(starts, lo)
        pos, new = lo, []
        while i < len(pieces) and pieces[i][0] < hi:        # fill the gaps before existing pieces
            if pieces[i][0] > pos:
                new.append([pos, pieces[i][0], []])
            pos = pieces[i][1]
            i += 1
        if pos < hi:
            new.append([pos, hi, []])
        for piece in new:
            j = bisect.bisect_left(starts, piece[0])
            starts.insert(j, piece[0])
            pieces.insert(j, piece)
        i = bisect.bisect_left(starts, lo)
        while i < len(pieces) and pieces[i][0] < hi:
            pieces[i][2] = [tid] if op == "copy" else pieces[i][2] + [tid]
            i += 1


@dataclass
class Schedule:
    """A DAG of transfers plus the buffers their vectors live in."""

    name: str
    kind: str                       # a key of BUSBW_FACTOR
    n_ranks: int
    size_bytes: int
    transfers: list[Transfer] = field(default_factory=list)
    buffers: dict[Hashable, np.ndarray] = field(default_factory=dict)
    repeat: bool = False            # background job: start again when done, until the others finish
    _log: _WriteLog = field(default_factory=_WriteLog, repr=False)

    def add(self, t: Transfer) -> int:
        """Append a transfer. Besides its explicit ``deps`` it depends on every transfer that wrote
        the bytes it reads (``src_bytes`` of ``src_key``) since they were last overwritten, so a
        schedule made of phases pipelines chunk by chunk from one phase into the next."""
        if t.compute:
            if t.nbytes != 0 or t.op is not None or t.delay_ps < 0:
                raise ValueError(f"{self.name}: compute task {len(self.transfers)} must have nbytes 0, no op and "
                                 f"delay_ps >= 0 (got {t.nbytes}, {t.op!r}, {t.delay_ps})")
        elif t.nbytes <= 0:
            raise ValueError(f"{self.name}: transfer {len(self.transfers)} has {t.nbytes} bytes (size_bytes too small "
                             "for the number of ranks and chunks)")
        for d in t.deps:
            if not 0 <= d < len(self.transfers):
                raise ValueError(f"{self.name}: transfer {len(self.transfers)} depends on unknown transfer {d}")
        tid = len(self.transfers)
        if t.src_bytes is not None and t.src_key is not None:
            t.deps = tuple(sorted(set(t.deps) | self._log.reads(t.src_key, *t.src_bytes)))
        dst = t.dst_bytes if t.dst_bytes is not None else t.src_bytes
        if dst is not None and t.dst_key is not None and (t.op is not None or t.compute):
            self._log.write(t.dst_key, *dst, t.op or "copy", tid)
        self.transfers.append(t)
        return tid


@dataclass
class CollectiveResult:
    name: str
    kind: str
    n_ranks: int
    size_bytes: int
    start_ps: int
    end_ps: int
    iterations: int
    bytes_sent: dict[int, int]      # payload bytes per source node (one iteration)
    bytes_received: dict[int, int]
    buffers: dict[Hashable, np.ndarray]
    done_ps: np.ndarray | None = None   # completion time (ps) of each transfer and compute task (first iteration)

    @property
    def time_ps(self) -> int:
        return self.end_ps - self.start_ps

    @property
    def algbw_bps(self) -> float:
        return self.size_bytes * 8e12 / self.time_ps

    @property
    def busbw_bps(self) -> float:
        return self.algbw_bps * BUSBW_FACTOR[self.kind](self.n_ranks)

    def row(self) -> dict:
        return {"name": self.name, "kind": self.kind, "n_ranks": self.n_ranks, "size_bytes": self.size_bytes,
                "time_us": self.time_ps / 1e6, "algbw_gbps": self.algbw_bps / 1e9, "busbw_gbps": self.busbw_bps / 1e9}


# ------------------------------------------------------------------------------------------ ranks
def _size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Endpoints:
    """Maps the members of a group (host node ids, or :class:`Gpu` on a rail fabric) to the
    addresses a transfer between two of them uses (on a rail fabric a NIC's or an NVLink port's,
    on a host-addressed fabric the host), and checks that members are usable."""

    def __init__(self, net):
        self.net = net
        fab = net.fabric
        self.layout = RailLayout.of(fab) if fab.params.get("topology") == "rail_clos" else None

    def check(self, ranks, field_name: str = "ranks") -> list:
        ranks = list(ranks)
        if len(ranks) < 2:
            raise ValueError(f"{field_name} must list at least 2 members, got {len(ranks)}")
        seen = set()
        member_nodes: list[list[int]] = []
        fab = self.net.fabric
        self.net.failures.apply_due(self.net.sim.now)      # links scheduled down by now are down
        down = self.net.failures.down
        for i, m in enumerate(ranks):
            if m in seen:
                raise ValueError(f"{field_name}[{i}]: {m!r} appears more than once")
            seen.add(m)
            if isinstance(m, Gpu):
                if self.layout is None:
                    raise ValueError(f"{field_name}[{i}]: a Gpu member needs a rail_clos fabric, got {fab.name}")
                self.layout.check_gpu(m, f"{field_name}[{i}]")
                server = self.layout.server(m.server)
                nodes = [(server, self.layout.nic_port(m.server, m.rail, p)) for p in range(self.layout.planes)]
            else:
                if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not fab.is_host(int(m)):
                    raise ValueError(f"{field_name}[{i}] must be a host node id in [0, {fab.num_hosts}) or a Gpu, "
                                     f"got {m!r}")
                if self.layout is not None:
                    raise ValueError(f"{field_name}[{i}]: on a rail fabric name members as Gpu(server, rail)")
                nodes = [(int(m), fab.ports(int(m))[0])]
            for node, port in nodes:
                link = port // 2
                if link in down:
                    raise ValueError(f"{field_name}[{i}] ({m!r}) is unreachable: the link of {fab.port_name(port)} "
                                     f"(link {link}) is down")
            member_nodes.append(nodes)
        # every member must reach the first one over links that are up (per plane: from the
        # first member's port on that plane)
        for p in range(len(member_nodes[0])):
            reached = self._component(*member_nodes[0][p], down)
            for i, nodes in enumerate(member_nodes):
                if fab.port_peer(nodes[p][1]) not in reached:      # the switch its port faces
                    raise ValueError(f"{field_name}[{i}] ({ranks[i]!r}) is unreachable from {field_name}[0] with "
                                     f"links {sorted(down)} down")
        return ranks

    def _component(self, start: int, start_port: int, down: set) -> set[int]:
        """Nodes reachable from host ``start`` leaving by its port ``start_port``, over links that
        are up, never transiting a host."""
        fab = self.net.fabric
        seen, stack = {start}, [start]
        while stack:
            u = stack.pop()
            if u != start and fab.is_host(u):
                continue
            for port in fab.ports(u):
                if port // 2 in down or (u == start and port != start_port):
                    continue
                v = fab.port_peer(port)
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return seen

    def nic(self, m) -> int:
        return self.layout.nic(m.server, m.rail) if isinstance(m, Gpu) else int(m)

    def pair(self, a, b) -> tuple[int, int]:
        """Source and destination nodes of a transfer from member ``a`` to member ``b``: NVLink
        endpoints within one server when the fabric has NVLink, NICs otherwise."""
        if isinstance(a, Gpu) and isinstance(b, Gpu) and a.server == b.server and self.layout.has_nvlink:
            return self.layout.nvl(a.server, a.rail), self.layout.nvl(b.server, b.rail)
        return self.nic(a), self.nic(b)

    def planes_of(self, addr: int) -> list[int | None]:
        """The ports of address ``addr`` a transfer from/to it is split over, one QP each bound to
        its port at both ends: on a rail fabric the address's ports (a NIC's: one per plane; an
        NVLink port's or an engine's: one), else ``[None]`` (one QP, bound as opened)."""
        lay = self.layout
        if lay is None:
            return [None]
        return lay.address_ports(addr)


def _split(total: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) bounds of ``parts`` near-equal pieces of range(total) (some may be empty)."""
    edges = [total * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _bounds(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    return [(lo + a, lo + b) for a, b in _split(hi - lo, parts)]


# ------------------------------------------------------------------------------------------ builders
def _ring_phase(sched: Schedule, ep: Endpoints, members: list, region_bytes: tuple[int, int],
                region_elems: tuple[int, int], phases: tuple[str, ...], chunk_bytes: int, key: str = "buf") -> dict:
    """Ring reduce-scatter ("rs") and/or all-gather ("ag") over ``members`` on a byte region
    (and the matching element region of the vectors). After "rs", position p holds the full sum
    of segment p; "ag" starts from that state. Returns {member: [ids of transfers into it]}.

    Step j, position p sends to p+1: rs steps j = 0..N-2 send segment (p-j-1) mod N (added),
    ag steps send segment (p-(j-N+1)) mod N (copied); every step depends on the same chunk of
    the previous step from position p-1 (and, through :meth:`Schedule.add`, on whatever wrote
    the bytes it sends: the previous phase, chunk by chunk)."""
    n = len(members)
    incoming: dict = {m: [] for m in members}
    if n == 1:
        return incoming
    segs_b = _bounds(*region_bytes, n)
    segs_e = _bounds(*region_elems, n)
    # chunks of at most chunk_bytes, but never more chunks than the smallest segment has bytes
    nchunks = max(1, min(-(-max(b - a for a, b in segs_b) // chunk_bytes), min(b - a for a, b in segs_b)))
    steps = []
    if "rs" in phases:
        steps += [("rs", j) for j in range(n - 1)]
    if "ag" in phases:
        steps += [("ag", j) for j in range(n - 1)]
    prev: dict[tuple[int, int], int] = {}        # (position, chunk) -> transfer of the previous step
    for phase, j in steps:
        cur: dict[tuple[int, int], int] = {}
        for p in range(n):
            seg = (p - j - 1) % n if phase == "rs" else (p - j) % n
            cb = _bounds(*segs_b[seg], nchunks)
            ce = _bounds(*segs_e[seg], nchunks)
            src, dst = members[p], members[(p + 1) % n]
            s_node, d_node = ep.pair(src, dst)
            for c in range(nchunks):
                deps = (prev[((p - 1) % n, c)],) if prev else ()
                tid = sched.add(Transfer(s_node, d_node, cb[c][1] - cb[c][0], deps, 0,
                                         "add" if phase == "rs" else "copy", (key, src), (key, dst), ce[c],
                                         f"{phase}{j}", src_bytes=cb[c]))
                cur[(p, c)] = tid
                incoming[dst].append(tid)
        prev = cur
    return incoming


def _init_buffers(sched: Schedule, members: list, elems: int, rng: np.random.Generator | None, key: str = "buf",
                  data: dict | None = None) -> None:
    for i, m in enumerate(members):
        if data is not None and m in data:
            sched.buffers[(key, m)] = np.array(data[m], dtype=np.float64)
        elif rng is not None:
            sched.buffers[(key, m)] = rng.integers(0, 1000, size=elems).astype(np.float64)
        else:
            sched.buffers[(key, m)] = np.zeros(elems)


def _common(net, ranks, size_bytes, chunk_bytes, elems) -> tuple[Endpoints, list, int, int, int]:
    ep = Endpoints(net)
    ranks = ep.check(ranks)
    size = _size("size_bytes", size_bytes)
    chunk = _size("chunk_bytes", chunk_bytes)
    elems = int(elems)
    if elems < 0:
        raise ValueError(f"elems must be >= 0, got {elems}")
    if size < len(ranks):
        raise ValueError(f"size_bytes must be at least the number of ranks ({len(ranks)}), got {size}")
    return ep, ranks, size, chunk, elems


def ring_all_reduce(net, ranks, size_bytes: int, chunk_bytes: int = 1 << 20, elems: int = 0,
                    seed: int = 0, data: dict | None = None, channels: list[list] | None = None,
                    name: str = "ring_all_reduce") -> Schedule:
    """Ring all-reduce of ``size_bytes`` per rank over ``ranks`` (reduce-scatter + all-gather).

    ``channels``: several rings, each an ordering of ``ranks``, each reducing an equal share of
    the data at the same time (NCCL's channels; :func:`rail_rings` builds rail-aligned ones)."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    orders = [ranks] if channels is None else [list(c) for c in channels]
    for i, order in enumerate(orders):
        if sorted(map(repr, order)) != sorted(map(repr, ranks)):
            raise ValueError(f"channels[{i}] must be an ordering of ranks")
    if size < len(ranks) * len(orders):
        raise ValueError(f"size_bytes must be at least ranks x channels ({len(ranks) * len(orders)}), got {size}")
    s = Schedule(name, "all_reduce", len(ranks), size)
    _init_buffers(s, ranks, elems, np.random.default_rng(seed), data=data)
    for (blo, bhi), (elo, ehi), order in zip(_split(size, len(orders)), _split(elems, len(orders)), orders):
        _ring_phase(s, ep, order, (blo, bhi), (elo, ehi), ("rs", "ag"), chunk)
    return s


def rail_rings(layout: RailLayout, ranks: list[Gpu]) -> list[list[Gpu]]:
    """One ring per local GPU index, each crossing between servers on a single rail.

    Every server must hold the same rails ``L`` of the group. Ring ``c`` visits even-numbered
    servers (in the given order) as ``L`` rotated by ``c`` and odd-numbered ones in the reverse
    order, so it leaves an even server and enters the next (odd) one on rail ``L[c-1]`` and
    leaves an odd server and enters the next on rail ``L[c]``: no hop between servers changes
    rails (with an odd number of servers the hop closing the ring does)."""
    servers: dict[int, list[Gpu]] = {}
    for g in ranks:
        servers.setdefault(g.server, []).append(g)
    rails = {tuple(sorted(g.rail for g in gs)) for gs in servers.values()}
    if len(rails) != 1:
        raise ValueError(f"ranks: rail-aligned rings need the same rails on every server, got {sorted(rails)}")
    L = list(rails.pop())
    out = []
    for c in range(len(L)):
        rot = L[c:] + L[:c]
        ring = []
        for i, srv in enumerate(servers):
            order = rot if i % 2 == 0 else rot[::-1]
            ring += [Gpu(srv, r) for r in order]
        out.append(ring)
    return out


def reduce_scatter(net, ranks, size_bytes: int, chunk_bytes: int = 1 << 20, elems: int = 0, seed: int = 0,
                   data: dict | None = None, name: str = "reduce_scatter") -> Schedule:
    """Ring reduce-scatter: rank p ends with the sum of segment p (S/N) of the inputs."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    s = Schedule(name, "reduce_scatter", len(ranks), size)
    _init_buffers(s, ranks, elems, np.random.default_rng(seed), data=data)
    _ring_phase(s, ep, ranks, (0, size), (0, elems), ("rs",), chunk)
    return s


def all_gather(net, ranks, size_bytes: int, chunk_bytes: int = 1 << 20, elems: int = 0, seed: int = 0,
               data: dict | None = None, name: str = "all_gather") -> Schedule:
    """Ring all-gather of a ``size_bytes`` output: rank p contributes segment p."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    s = Schedule(name, "all_gather", len(ranks), size)
    _init_buffers(s, ranks, elems, np.random.default_rng(seed), data=data)
    _ring_phase(s, ep, ranks, (0, size), (0, elems), ("ag",), chunk)
    return s


def broadcast(net, ranks, size_bytes: int, root: int = 0, chunk_bytes: int = 1 << 20, elems: int = 0,
              seed: int = 0, data: dict | None = None, name: str = "broadcast") -> Schedule:
    """Pipelined chain broadcast from ``ranks[root]`` along the ring order."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    if not isinstance(root, int) or not 0 <= root < len(ranks):
        raise ValueError(f"root must be a position in [0, {len(ranks)}), got {root!r}")
    order = ranks[root:] + ranks[:root]
    s = Schedule(name, "broadcast", len(ranks), size)
    _init_buffers(s, order, elems, np.random.default_rng(seed), data=data)
    nchunks = max(1, min(-(-size // chunk), size))
    cb, ce = _split(size, nchunks), _split(elems, nchunks)
    prev: list[int | None] = [None] * nchunks
    for k in range(len(order) - 1):
        a, b = ep.pair(order[k], order[k + 1])
        for c in range(nchunks):
            deps = () if prev[c] is None else (prev[c],)
            prev[c] = s.add(Transfer(a, b, cb[c][1] - cb[c][0], deps, 0, "copy", ("buf", order[k]),
                                     ("buf", order[k + 1]), ce[c], f"bcast{k}", src_bytes=cb[c]))
    return s


def all_to_all(net, ranks, size_bytes: int, via: str = "direct", chunk_bytes: int = 1 << 20, elems: int = 0,
               seed: int = 0, name: str = "all_to_all") -> Schedule:
    """Every rank sends S/N to every other rank (block q of its input to rank q).

    ``via="direct"``: NIC to NIC (cross-rail pairs climb to the third tier); GPUs of one server
    use NVLink when the fabric has it. ``via="nvlink"`` (PXN-like, rail fabrics with NVLink): a
    block for a GPU on another server and another rail first goes over NVLink to the sender
    server's GPU on the destination's rail, which forwards it on that rail (chunk by chunk)."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    if via not in ("direct", "nvlink"):
        raise ValueError(f"via must be 'direct' or 'nvlink', got {via!r}")
    lay = ep.layout
    if via == "nvlink" and (lay is None or not lay.has_nvlink):
        raise ValueError("via: 'nvlink' needs a rail_clos fabric with nvlink_rate_bps > 0")
    n = len(ranks)
    elems -= elems % n                  # equal element blocks: block q of the input -> block p of the output
    s = Schedule(name, "all_to_all", n, size)
    rng = np.random.default_rng(seed)
    blocks_b, blocks_e = _split(size, n), _split(elems, n)
    members = set(ranks)
    for m in ranks:
        s.buffers[("in", m)] = rng.integers(0, 1000, size=elems).astype(np.float64)
        s.buffers[("out", m)] = np.zeros(elems)
    for p, a in enumerate(ranks):
        for q, b in enumerate(ranks):
            if p == q:
                continue
            nb = blocks_b[q][1] - blocks_b[q][0]
            nchunks = max(1, min(-(-nb // chunk), nb))
            cb = _split(nb, nchunks)
            src_e, dst_e = blocks_e[q], blocks_e[p]
            ce_src = _bounds(*src_e, nchunks)
            ce_dst = _bounds(*dst_e, nchunks)
            relay = None
            if via == "nvlink" and a.server != b.server and a.rail != b.rail:
                relay = Gpu(a.server, b.rail)
                if relay not in members:
                    relay = None
            for c in range(nchunks):
                nbytes = cb[c][1] - cb[c][0]
                if relay is None:
                    sn, dn = ep.pair(a, b)
                    s.add(Transfer(sn, dn, nbytes, (), 0, "copy", ("in", a), ("out", b), ce_src[c], "a2a", ce_dst[c]))
                else:
                    s.buffers.setdefault(("relay", a, b), np.zeros(elems))
                    sn, dn = ep.pair(a, relay)
                    t1 = s.add(Transfer(sn, dn, nbytes, (), 0, "copy", ("in", a), ("relay", a, b), ce_src[c],
                                        "a2a-nvlink"))
                    sn, dn = ep.pair(relay, b)
                    s.add(Transfer(sn, dn, nbytes, (t1,), 0, "copy", ("relay", a, b), ("out", b), ce_src[c],
                                   "a2a-rail", ce_dst[c]))
    return s


def hierarchical_all_reduce(net, ranks, size_bytes: int, chunk_bytes: int = 1 << 20, elems: int = 0,
                            seed: int = 0, data: dict | None = None,
                            name: str = "hierarchical_all_reduce") -> Schedule:
    """Rail-aware all-reduce on a rail fabric: reduce-scatter among the GPUs of each server
    (NVLink when present), then one ring all-reduce per local position across servers (GPU i of
    every server: rail i, so the rings never leave their rail; servers in the order they first
    appear in ``ranks``), then all-gather in each server. Every server must hold the same rails
    of the group."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    if ep.layout is None:
        raise ValueError("ranks: hierarchical all-reduce needs Gpu members on a rail_clos fabric")
    servers: dict[int, list[Gpu]] = {}
    for g in ranks:
        servers.setdefault(g.server, []).append(g)
    rails = {tuple(sorted(g.rail for g in gs)) for gs in servers.values()}
    if len(rails) != 1:
        raise ValueError("ranks: hierarchical all-reduce needs the same rails (GPU indices) on every server, got "
                         f"{sorted(rails)}")
    local = [sorted(gs, key=lambda g: g.rail) for gs in servers.values()]    # servers in the order given
    G = len(local[0])
    s = Schedule(name, "all_reduce", len(ranks), size)
    _init_buffers(s, ranks, elems, np.random.default_rng(seed), data=data)
    if size < G * len(local):
        raise ValueError(f"size_bytes must be at least the number of ranks ({len(ranks)}), got {size}")
    # phases chain chunk by chunk through the data dependencies Schedule.add tracks
    for gs in local:
        _ring_phase(s, ep, gs, (0, size), (0, elems), ("rs",), chunk)
    for q, (bq, eq) in enumerate(zip(_split(size, G), _split(elems, G))):
        _ring_phase(s, ep, [gs[q] for gs in local], bq, eq, ("rs", "ag"), chunk)
    for gs in local:
        _ring_phase(s, ep, gs, (0, size), (0, elems), ("ag",), chunk)
    return s


def job_all_reduce(net, gpus: list[Gpu], size_bytes: int, chunk_bytes: int = 1 << 20, name: str = "job",
                   repeat: bool = False) -> Schedule:
    """What a rail-aware library runs for a job's GPUs: the hierarchical all-reduce when every
    server holds the same rails, else one ring in (server, rail) order (GPUs of one server
    next to each other, so their hops use NVLink when the fabric has it)."""
    servers: dict[int, set[int]] = {}
    for g in gpus:
        servers.setdefault(g.server, set()).add(g.rail)
    if len({frozenset(r) for r in servers.values()}) == 1:
        s = hierarchical_all_reduce(net, sorted(gpus), size_bytes, chunk_bytes=chunk_bytes, name=name)
    else:
        s = ring_all_reduce(net, sorted(gpus), size_bytes, chunk_bytes=chunk_bytes, name=name)
    s.repeat = repeat
    return s


# ------------------------------------------------------------------------------------------ running
class Runner:
    """Runs schedules on a :class:`~controlplane.run.scenario.Network` built with
    ``wake_on_completion=True``: posts ready transfers, applies their vectors at completion,
    resolves dependencies. During :meth:`run` it is a controller ("collectives") of the network's
    control loop (``net.loop``, controlplane/run/control_loop.py), the one Network.run drives: scheduled
    failures, the DPU slow path (upcalls, revalidation, idle eviction, flow-limit adaptation),
    sampling (``net.loop.samples``), tick hooks and users' controllers act at the same simulated
    times in both."""

    def __init__(self, net, verb: str = "write"):
        """``verb``: the RDMA operation of every transfer (workload.VERBS): ``write`` (the default,
        as NCCL's IB transport for its data), ``write_imm`` / ``send`` / ``send_imm`` (these consume
        a receive at the destination: the scenario's ``verbs`` section), or ``read`` (the
        destination pulls: the QP runs from the destination to the source). A transfer is done
        when its requester's completion comes (the ACK of a WRITE or SEND, the last READ response)."""
        if not net.wake_on_completion:
            raise ValueError("wake_on_completion: build the Network with wake_on_completion=True to run collectives")
        if verb not in VERBS or verb.startswith("atomic"):
            raise ValueError(f"collectives: verb must be one of {[v for v in VERBS if not v.startswith('atomic')]}, "
                             f"got {verb!r}")
        self.net = net
        self.verb = verb
        self.ep = Endpoints(net)
        self._qps: dict[tuple[int, int], int] = {}
        self._msg: dict[int, tuple[int, int]] = {}          # message id -> (schedule index, transfer id)

    def qp(self, src: int, dst: int, sport: int | None = None, src_port: int | None = None,
           dst_port: int | None = None) -> int:
        """The QP pair transfers from address ``src`` to address ``dst`` use (one per ordered pair,
        and per plane: bound to ``src_port`` and ``dst_port`` when given, which gives each end the
        address of its port), opened on first use between the addresses' hosts; ``sport`` fixes
        its source port when it is opened (default: drawn by the network)."""
        key = (src, dst) if src_port is None else (src, dst, src_port, dst_port)
        if key not in self._qps:
            fab = self.net.fabric
            qp = self.net.open_qp(fab.address_host(src), fab.address_host(dst), sport)
            if src_port is not None:
                self.net.sim.bind_qp(qp, src_port)
                self.net.sim.bind_qp(qp + 1, dst_port)
            self._qps[key] = qp
        return self._qps[key]

    def run(self, schedules: list[Schedule], start_ps: int | None = None) -> list[CollectiveResult]:
        """Run ``schedules`` together from ``start_ps`` (default: now) until every schedule that
        does not repeat has finished; returns one result per schedule (a repeating one reports
        its first iteration and how many it completed)."""
        net, sim = self.net, self.net.sim
        end_limit = net.scenario.max_duration_ps
        if start_ps is not None and (isinstance(start_ps, bool) or not isinstance(start_ps, (int, np.integer))
                                     or start_ps < sim.now):
            raise ValueError(f"start_ps must be an integer time >= now ({sim.now} ps), got {start_ps!r}")
        if not schedules or not all(isinstance(x, Schedule) for x in schedules):
            raise ValueError("schedules must be a non-empty list of Schedule")
        t0 = sim.now if start_ps is None else int(start_ps)
        self._msg.clear()        # messages of an earlier run still in flight complete unattributed
        st = [_State(s) for s in schedules]
        pending_posts: list[tuple[int, int, int]] = []   # (schedule, transfer, post time)
        timers: list[tuple[int, int, int]] = []          # heap of compute tasks: (end time, schedule, task)

        def ready(i: int, tid: int, t: int) -> None:
            pending_posts.append((i, tid, t + st[i].sched.transfers[tid].delay_ps))

        def start(i: int, t: int) -> None:
            st[i].reset(t)
            for tid in st[i].roots:
                ready(i, tid, t)

        def flush() -> int:
            if not pending_posts:
                return 0
            qps, sizes, times, refs = [], [], [], []
            for i, tid, t in pending_posts:
                s = st[i]
                tr = s.sched.transfers[tid]
                if tr.compute:                     # no packet: done when its time comes (the driver's timer)
                    heapq.heappush(timers, (t, i, tid))
                    continue
                if tr.op is not None:
                    s.payload[tid] = s.buffers[tr.src_key][tr.elems[0]:tr.elems[1]].copy()
                srcs, dsts = self.ep.planes_of(tr.src), self.ep.planes_of(tr.dst)
                parts = _split(tr.nbytes, len(srcs))
                s.parts[tid] = sum(1 for a, b in parts if b > a)
                for (a, b), sp, dp in zip(parts, srcs, dsts):
                    if b > a:
                        qps.append(self.qp(tr.dst, tr.src, None, dp, sp) if self.verb == "read"
                                   else self.qp(tr.src, tr.dst, None, sp, dp))
                        sizes.append(b - a)
                        times.append(t)
                        refs.append((i, tid))
            if self.verb == "write":
                first = sim.post_writes(np.array(qps, dtype=np.int64), np.array(sizes, dtype=np.int64),
                                        np.array(times, dtype=np.int64))
            else:
                first = sim.post_msgs(np.array(qps, dtype=np.int64), np.array(sizes, dtype=np.int64),
                                      np.array(times, dtype=np.int64), [self.verb] * len(qps))
            for k, ref in enumerate(refs):
                self._msg[first + k] = ref
            pending_posts.clear()
            return len(refs)

        for i in range(len(st)):
            start(i, t0)
        flush()
        loop = net.loop
        loop.start_run()                           # this run's own wall-clock budget
        wall0 = time.perf_counter()
        driver = loop.register(_ScheduleDriver(self, st, ready, start, flush, timers))
        try:
            while not all(s.finished for s in st if not s.sched.repeat):
                # one control loop with Network.run (controlplane/run/control_loop.py): failures, the DPU
                # slow path (upcalls, revalidation), sampling, tick hooks and every other controller
                # act at the same simulated times; this schedule's completions are handled by its
                # driver's on_stop, after them
                stop = loop.step(end_limit)
                if stop == STOP_UPCALL:
                    continue
                if sim.now >= end_limit or (stop == STOP_IDLE and loop.busy() and not driver.posted
                                            and loop.next_time(end_limit) >= end_limit):
                    # (the second case: an idle data plane and nothing to act before the limit, such
                    # as a compute task ending after it: the loop would stand still)
                    raise SimError(f"the collectives did not finish by max_duration_ps = {end_limit} ps (raise it: "
                                   f"--set max_duration_ps=...)")
                if stop == STOP_IDLE and not loop.busy() and not driver.posted:
                    # (compute tasks finishing at this stop post nothing: the last ones may finish
                    # every schedule here)
                    missing = [s.sched.name for s in st if not s.finished and not s.sched.repeat]
                    if missing:
                        raise SimError(f"the data plane went idle with schedules unfinished: {missing}")
        except (CCPluginError, SimError) as exc:
            # stopped by a run budget, a CC or the data plane: keep what ran, like Network.run
            from controlplane.run.scenario import Result
            if loop.interval:
                loop.sample()
            exc.partial = Result(net, loop.samples, loop.ports, time.perf_counter() - wall0, error=str(exc))
            exc.collectives = [s.progress() for s in st]
            raise
        finally:
            loop.unregister(driver)
            loop.end()
        return [s.result() for s in st]


class _ScheduleDriver(Controller):
    """The Runner's schedules as a controller of the network's control loop: at every stop but an
    upcall stop it drains the completions, applies each finished transfer's vector, resolves the
    dependencies and posts the transfers that became ready (``posted``: how many, at this stop)."""

    name = "collectives"

    def __init__(self, runner: Runner, st: list, ready: Callable, start: Callable, flush: Callable,
                 timers: list):
        self.runner, self.st, self.ready, self.start, self.flush = runner, st, ready, start, flush
        self.timers = timers                   # compute tasks running: heap of (end time, schedule, task)
        self.posted = 0

    def next_time(self, now: int) -> int | None:
        return self.timers[0][0] if self.timers else None

    def busy(self) -> bool:
        return bool(self.timers)

    def fire(self, net, now: int) -> None:
        self._due(now)

    def _due(self, now: int) -> None:
        """Complete every compute task whose time has come (at its own end time)."""
        while self.timers and self.timers[0][0] <= now:
            t, i, tid = heapq.heappop(self.timers)
            self._done(i, tid, t)

    def _done(self, i: int, tid: int, t: int) -> None:
        st = self.st
        s = st[i]
        tr = s.sched.transfers[tid]
        s.apply(tid, tr)
        s.done += 1
        s.done_ps[tid] = t
        s.last = max(s.last, t)
        for child in s.children[tid]:
            s.waiting[child] -= 1
            if s.waiting[child] == 0:
                self.ready(i, child, t)
        if s.done == len(s.sched.transfers):
            s.finish()
            if s.sched.repeat and not all(x.finished for x in st if not x.sched.repeat):
                self.start(i, t)

    def on_stop(self, net, reason: int) -> None:
        if reason == STOP_UPCALL:
            return
        st, msgs = self.st, self.runner._msg
        for c in net.sim.drain_completions():
            if int(c["kind"]) != CQ_REQUESTER:
                continue                       # a SEND's arrival at its responder: the requester's comes later
            ref = msgs.pop(int(c["msg"]), None)
            if ref is None:
                continue                       # a message of the workload, not of a schedule
            i, tid = ref
            s = st[i]
            s.parts[tid] -= 1
            if s.parts[tid]:
                continue
            self._done(i, tid, int(c["t_ps"]))
        posted = self.flush()
        while self.timers and self.timers[0][0] <= net.sim.now:   # zero-time compute tasks chain at once
            self._due(net.sim.now)
            posted += self.flush()
        self.posted = posted


class _State:
    def __init__(self, sched: Schedule):
        self.sched = sched
        n = len(sched.transfers)
        self.children: list[list[int]] = [[] for _ in range(n)]
        self.ndeps = np.zeros(n, dtype=np.int64)
        for tid, t in enumerate(sched.transfers):
            for d in t.deps:
                self.children[d].append(tid)
            self.ndeps[tid] = len(t.deps)
        self.roots = [tid for tid in range(n) if self.ndeps[tid] == 0]
        self.initial = {k: v.copy() for k, v in sched.buffers.items()}
        self.buffers = sched.buffers
        self.finished, self.iterations, self.start_ps, self.first_end = False, 0, 0, None
        self.first_done: np.ndarray | None = None
        self.bytes_sent: dict[int, int] = {}
        self.bytes_received: dict[int, int] = {}
        self.done_ps = np.full(n, -1, dtype=np.int64)     # completion time of each transfer (first iteration)
        for t in sched.transfers:
            if t.compute:
                continue
            self.bytes_sent[t.src] = self.bytes_sent.get(t.src, 0) + t.nbytes
            self.bytes_received[t.dst] = self.bytes_received.get(t.dst, 0) + t.nbytes

    def reset(self, t: int) -> None:
        self.waiting = self.ndeps.copy()
        self.parts: dict[int, int] = {}
        self.payload: dict[int, np.ndarray] = {}
        self.done, self.last = 0, t
        if self.iterations > 0:
            self.done_ps = self.done_ps.copy()            # the first iteration's times are the result's
        if self.iterations == 0:
            self.start_ps = t
        else:
            for k, v in self.initial.items():
                self.buffers[k][:] = v

    def apply(self, tid: int, tr: Transfer) -> None:
        if tr.op is None:
            return
        v = self.payload.pop(tid)
        lo, hi = tr.elems if tr.dst_elems is None else tr.dst_elems
        dst = self.buffers[tr.dst_key]
        if tr.op == "add":
            dst[lo:hi] += v
        else:
            dst[lo:hi] = v

    def finish(self) -> None:
        self.iterations += 1
        if not self.finished:
            self.finished = True
            self.first_end = self.last
            self.first_done = self.done_ps

    def progress(self) -> dict:
        """How far the schedule got (for a run that stopped before it finished)."""
        s = self.sched
        return {"name": s.name, "kind": s.kind, "n_ranks": s.n_ranks, "size_bytes": s.size_bytes,
                "start_ps": self.start_ps, "last_completion_ps": self.last, "transfers": len(s.transfers),
                "transfers_done": self.done, "iterations": self.iterations, "finished": self.finished}

    def result(self) -> CollectiveResult:
        s = self.sched
        end = self.first_end if self.first_end is not None else self.last
        return CollectiveResult(s.name, s.kind, s.n_ranks, s.size_bytes, self.start_ps, end, self.iterations,
                                dict(self.bytes_sent), dict(self.bytes_received), self.buffers, self.first_done)


def network(scenario, **overrides):
    """A Network for collectives: the scenario with no workload of its own unless it has one,
    built with wake_on_completion."""
    from controlplane.run.scenario import Network
    sc = scenario.with_overrides(overrides) if overrides else scenario
    return Network(sc, wake_on_completion=True)


@contextmanager
def partial_results(out: Path, csv_name: str, rows: list[dict]):
    """What a collective experiment keeps when a run inside it stops (a run budget, a CC error,
    the data plane): the rows measured so far in ``out/csv_name`` and the stopped run's results
    folder ``out/<scenario name>`` (config.json, counters.json with the error, timeseries) with
    collectives.json (how far each schedule got), as a single run keeps its partial results; the
    error goes on (the CLI prints it in one line and exits 1)."""
    from controlplane.run.experiment import write_csv
    try:
        yield
    except (CCPluginError, SimError) as exc:
        out = Path(out)
        if rows:
            write_csv(out / csv_name, rows)
        partial = getattr(exc, "partial", None)
        if partial is not None:
            folder = out / partial.network.scenario.name
            partial.write(folder)
            (folder / "collectives.json").write_text(json.dumps(getattr(exc, "collectives", []), indent=2) + "\n")
        raise


def run_collective(net, sched: Schedule) -> CollectiveResult:
    """Run one schedule on a fresh network (built with :func:`network`)."""
    return Runner(net).run([sched])[0]


__all__ = ["Transfer", "Schedule", "CollectiveResult", "Endpoints", "Runner", "BUSBW_FACTOR", "ring_all_reduce", "rail_rings",
           "reduce_scatter", "all_gather", "broadcast", "all_to_all", "hierarchical_all_reduce", "job_all_reduce", "network",
           "run_collective", "partial_results"]
