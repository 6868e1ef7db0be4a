"""SHARP-style in-network all-reduce (Graham et al., "Scalable Hierarchical Aggregation Protocol
(SHArP)", COMHPC'16; busbw factor (n-1)/(n+1) for in-network all-reduce in NVIDIA/nccl-tests
doc/PERFORMANCE.md; validation target V9 of docs/architecture.md).

The model, stated plainly. The data plane has no arithmetic in its switches, so aggregation is
modelled by the control plane on top of the *aggregation engines* that
:func:`controlplane.ai.rails.rail_clos` attaches to every leaf, spine and core when built with
``sharp=True``: a host node on a link of rate ``sharp_rate_bps`` (the switch's aggregation
capacity) and one-way delay ``sharp_latency_ps / 2`` (one pass in and out of the aggregation unit
costs ``sharp_latency_ps``). The reduction tree of a group is built from the fabric:

  * all members under one leaf: that leaf is the root;
  * all members on one rail: their leaves, under spine k of the rail (the root);
  * members on several rails: leaves under spine k of each rail, under a core of group k.

As NCCL spreads SHARP traffic over several trees (channels), chunk ``i`` uses tree ``i mod
num_trees`` (default: one per spine x core, so the leaves' uplinks all carry a share). The data is
cut into chunks of at most ``chunk_bytes`` (and at least ``num_trees`` chunks when it has the bytes). For each chunk every member WRITEs it to
its leaf's aggregation engine; an aggregation engine forwards the sum of a chunk to its
parent's endpoint once all its children's copies of that chunk have arrived (plus
``op_overhead_ps``, a per-operation cost of the aggregation unit); the root sends the result down
the same tree, each endpoint WRITEs it to each of its children. Chunks pipeline through the tree.
Per member: S bytes up and S bytes down, against 2(N-1)/N x S each way for a ring.

What differs from real SHARP: replication on the way down is done by the aggregation engine
sending one copy per child over its link (a switch ASIC replicates in the crossbar), so the
down-going copies of a switch's children share the aggregation link (its default rate, the sum
of the switch's down-links, makes that free); the transport to and from the tree is the
emulated RDMA WRITE (reliable, with the CC and path policy of the scenario); no SHARP resource
limits (trees, outstanding operations) are modelled.
"""
from __future__ import annotations

import numpy as np

from controlplane.ai.collectives import Schedule, Transfer, _bounds, _common, _init_buffers, _ring_phase, _split
from controlplane.ai.rails import Gpu


def reduction_tree(layout, ranks: list[Gpu], tree: int = 0) -> tuple[int, dict[int, list]]:
    """(root switch, {switch: children}) where children are switches or member Gpus. Tree
    ``t`` uses spine ``t mod spines_per_rail`` of each rail and core ``(t // spines_per_rail)
    mod cores_per_group`` of that spine's group."""
    k, c = tree % layout.P, (tree // layout.P) % layout.C
    leaves: dict[int, list] = {}
    for g in ranks:
        leaves.setdefault(layout.leaf(g.rail, layout.leaf_group(g.server)), []).append(g)
    children: dict[int, list] = dict(leaves)
    if len(leaves) == 1:
        return next(iter(leaves)), children
    rails = sorted({g.rail for g in ranks})
    spines = {}
    for r in rails:
        spine = layout.spine(r, k)
        spines[r] = spine
        children[spine] = [leaf for leaf in leaves if (leaf - layout.leaf(0, 0)) // layout.L == r]
    if len(rails) == 1:
        return spines[rails[0]], children
    root = layout.core(k, c)
    children[root] = [spines[r] for r in rails]
    return root, children


def sharp_all_reduce(net, ranks, size_bytes: int, chunk_bytes: int = 1 << 20, elems: int = 0, seed: int = 0,
                     data: dict | None = None, op_overhead_ps: int = 0, num_trees: int | None = None,
                     hierarchical: bool = False, name: str = "sharp_all_reduce") -> Schedule:
    """All-reduce of ``size_bytes`` per rank through the switches' aggregation engines.

    ``hierarchical`` (NCCL's CollNet on multi-GPU servers): reduce-scatter among the GPUs of each
    server over NVLink, one SHARP all-reduce per local GPU index (per rail) on its 1/G share,
    then all-gather in each server; every server must hold the same rails of the group."""
    ep, ranks, size, chunk, elems = _common(net, ranks, size_bytes, chunk_bytes, elems)
    lay = ep.layout
    if lay is None or not all(isinstance(g, Gpu) for g in ranks):
        raise ValueError("ranks: SHARP needs Gpu members on a rail_clos fabric")
    if not lay.has_sharp:
        raise ValueError("sharp: the fabric has no aggregation engines (build rail_clos with sharp=True)")
    if lay.planes != 1:
        raise ValueError(f"planes: SHARP over a multi-plane fabric is not modelled (planes={lay.planes})")
    if isinstance(op_overhead_ps, bool) or not isinstance(op_overhead_ps, (int, np.integer)) or op_overhead_ps < 0:
        raise ValueError(f"op_overhead_ps must be a non-negative integer (ps), got {op_overhead_ps!r}")
    if num_trees is None:
        num_trees = lay.P * lay.C
    if isinstance(num_trees, bool) or not isinstance(num_trees, (int, np.integer)) or num_trees < 1:
        raise ValueError(f"num_trees must be a positive integer, got {num_trees!r}")
    s = Schedule(name, "all_reduce", len(ranks), size)
    _init_buffers(s, ranks, elems, np.random.default_rng(seed), data=data)
    if not hierarchical:
        _sharp_phase(s, ep, ranks, (0, size), (0, elems), chunk, int(num_trees), int(op_overhead_ps))
        return s
    servers: dict[int, list[Gpu]] = {}
    for g in ranks:
        servers.setdefault(g.server, []).append(g)
    rails = {tuple(sorted(g.rail for g in gs)) for gs in servers.values()}
    if len(rails) != 1:
        raise ValueError(f"ranks: hierarchical SHARP needs the same rails on every server, got {sorted(rails)}")
    local = [sorted(gs, key=lambda g: g.rail) for _, gs in sorted(servers.items())]
    G = len(local[0])
    # phases chain chunk by chunk through the data dependencies Schedule.add tracks
    for gs in local:
        _ring_phase(s, ep, gs, (0, size), (0, elems), ("rs",), chunk)
    for q, (bq, eq) in enumerate(zip(_split(size, G), _split(elems, G))):
        column = [gs[q] for gs in local]
        if len(column) > 1:
            _sharp_phase(s, ep, column, bq, eq, chunk, int(num_trees), int(op_overhead_ps))
    for gs in local:
        _ring_phase(s, ep, gs, (0, size), (0, elems), ("ag",), chunk)
    return s


def _sharp_phase(s: Schedule, ep, ranks: list[Gpu], region_bytes: tuple[int, int], region_elems: tuple[int, int],
                 chunk: int, num_trees: int, op_overhead_ps: int) -> None:
    """The transfers of one SHARP all-reduce over a byte/element region (a member's first send
    of a chunk waits, through Schedule.add, for whatever wrote those bytes before)."""
    lay = ep.layout
    trees = [reduction_tree(lay, ranks, t) for t in range(num_trees)]
    for _, children in trees:
        for sw in children:
            s.buffers.setdefault(("agg", sw), np.zeros(s.buffers[("buf", ranks[0])].size))
    size = region_bytes[1] - region_bytes[0]
    nchunks = max(1, min(max(-(-size // chunk), num_trees), size))
    cb, ce = _bounds(*region_bytes, nchunks), _bounds(*region_elems, nchunks)

    def node(x) -> int:
        return ep.nic(x) if isinstance(x, Gpu) else lay.aggregator(x)

    def key(x):
        return ("buf", x) if isinstance(x, Gpu) else ("agg", x)

    for c in range(nchunks):
        root, children = trees[c % num_trees]
        parent = {x: sw for sw, xs in children.items() for x in xs}
        order = _bottom_up(root, children)
        nb = cb[c][1] - cb[c][0]
        into: dict[int, list[int]] = {sw: [] for sw in children}
        for g in ranks:
            leaf = parent[g]
            into[leaf].append(s.add(Transfer(node(g), node(leaf), nb, (), 0, "add", key(g), key(leaf), ce[c],
                                             "sharp-up", src_bytes=cb[c])))
        for sw in order:                                  # children before parents
            if sw == root:
                continue
            p = parent[sw]
            into[p].append(s.add(Transfer(node(sw), node(p), nb, tuple(into[sw]), op_overhead_ps, "add",
                                          key(sw), key(p), ce[c], "sharp-up", src_bytes=cb[c])))
        down_dep = {root: tuple(into[root])}
        for sw in reversed(order):                        # root first
            for child in children[sw]:
                delay = op_overhead_ps if sw == root else 0
                tid = s.add(Transfer(node(sw), node(child), nb, down_dep[sw], delay, "copy", key(sw), key(child),
                                     ce[c], "sharp-down", src_bytes=cb[c]))
                if not isinstance(child, Gpu):
                    down_dep[child] = (tid,)


def _bottom_up(root: int, children: dict[int, list]) -> list[int]:
    out: list[int] = []

    def visit(sw: int) -> None:
        for c in children.get(sw, []):
            if not isinstance(c, Gpu):
                visit(c)
        out.append(sw)

    visit(root)
    return out


__all__ = ["sharp_all_reduce", "reduction_tree"]
