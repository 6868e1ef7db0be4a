"""Job placement on a rail fabric: topology-aware vs random (a topology-aware scheduler keeps
a job's all-reduce as low in the fabric as it can).

A data-parallel job of N GPUs runs all-reduce every step; how high in the fabric its traffic
climbs depends on where its GPUs are (controlplane/ai/rails.py, ``RailLayout.tier_between``):

  tier 0  one server: NVLink only
  tier 1  several servers, the same rails on each, one leaf group: the per-rail rings of the
          hierarchical all-reduce stay under one leaf per rail
  tier 2  ... across leaf groups: the rings cross the spines of their rail
  tier 3  servers holding different rails (or no NVLink between a server's GPUs): traffic
          changes rails, through the third tier

:func:`place_topology_aware` picks free GPUs that minimise that tier (:func:`placement_tier`),
then the number of servers, then fragmentation (best fit: the fullest server or leaf group that
still fits). :func:`place_random` picks free GPUs uniformly at random, the baseline.
:class:`Occupancy` records which job holds each GPU and refuses to give one GPU to two jobs.
"""
from __future__ import annotations

import numpy as np

from controlplane.ai.rails import Gpu, RailLayout


class Occupancy:
    """Which job holds each GPU of a rail fabric (-1 = free)."""

    def __init__(self, layout: RailLayout):
        self.layout = layout
        self.owner = np.full((layout.num_servers, layout.R), -1, dtype=np.int64)

    def free(self) -> list[Gpu]:
        return [Gpu(int(s), int(r)) for s, r in zip(*np.nonzero(self.owner < 0))]

    @property
    def num_free(self) -> int:
        return int((self.owner < 0).sum())

    def free_rails(self, server: int) -> tuple[int, ...]:
        return tuple(int(r) for r in np.flatnonzero(self.owner[server] < 0))

    def allocate(self, job: int, gpus: list[Gpu]) -> list[Gpu]:
        if isinstance(job, bool) or not isinstance(job, (int, np.integer)) or job < 0:
            raise ValueError(f"job must be a non-negative integer id, got {job!r}")
        if (self.owner == job).any():
            raise ValueError(f"job {job} already holds GPUs")
        if len(set(gpus)) != len(gpus):
            raise ValueError("gpus: the same GPU is listed twice")
        for i, g in enumerate(gpus):
            self.layout.check_gpu(g, f"gpus[{i}]")
            if self.owner[g.server, g.rail] >= 0:
                raise ValueError(f"gpus[{i}] {g} is already held by job {int(self.owner[g.server, g.rail])}")
        for g in gpus:
            self.owner[g.server, g.rail] = job
        return list(gpus)

    def release(self, job: int) -> None:
        self.owner[self.owner == job] = -1

    def jobs(self) -> dict[int, list[Gpu]]:
        out: dict[int, list[Gpu]] = {}
        for s, r in zip(*np.nonzero(self.owner >= 0)):
            out.setdefault(int(self.owner[s, r]), []).append(Gpu(int(s), int(r)))
        return out


def placement_tier(layout: RailLayout, gpus: list[Gpu]) -> int:
    """The highest tier a hierarchical (rail-aware) all-reduce of these GPUs crosses."""
    servers: dict[int, set[int]] = {}
    for g in gpus:
        servers.setdefault(g.server, set()).add(g.rail)
    if len({frozenset(r) for r in servers.values()}) > 1:
        return 3                                   # some server-to-server hop changes rails
    intra = 0 if layout.has_nvlink or len(next(iter(servers.values()))) == 1 else 3
    if len(servers) == 1:
        return intra if len(gpus) > 1 else 0
    groups = {layout.leaf_group(s) for s in servers}
    return max(intra, 1 if len(groups) == 1 else 2)


def _check_n(occ: Occupancy, n_gpus) -> int:
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, (int, np.integer)) or n_gpus <= 0:
        raise ValueError(f"n_gpus must be a positive integer, got {n_gpus!r}")
    if n_gpus > occ.num_free:
        raise ValueError(f"n_gpus: a job of {n_gpus} GPUs does not fit, the fabric has {occ.num_free} free GPUs "
                         f"({occ.layout.num_gpus} in all)")
    return int(n_gpus)


def place_topology_aware(occ: Occupancy, n_gpus: int, job: int | None = None) -> list[Gpu]:
    """Free GPUs for a job of ``n_gpus`` minimising (tier, servers, fragmentation); allocated to
    ``job`` when given."""
    lay = occ.layout
    n = _check_n(occ, n_gpus)
    best: tuple | None = None
    free_by_server = {s: occ.free_rails(s) for s in range(lay.num_servers)}
    # rail-aligned placements: k servers with a common set T of m free rails, k x m = n
    for m in range(min(n, lay.R), 0, -1):
        if n % m:
            continue
        k = n // m
        candidates = {tuple(range(b * m, (b + 1) * m)) for b in range(lay.R // m)}
        candidates |= {rails[:m] for rails in free_by_server.values() if len(rails) >= m}
        for T in sorted(candidates):
            eligible = [s for s, rails in free_by_server.items() if set(T) <= set(rails)]
            if len(eligible) < k:
                continue
            chosen = _pick_servers(lay, eligible, k, free_by_server)
            gpus = [Gpu(s, r) for s in chosen for r in T]
            # fullest servers first (best fit): fewer free GPUs left over on the chosen servers
            key = (placement_tier(lay, gpus), k, sum(len(free_by_server[s]) for s in chosen), T)
            if best is None or key < best[0]:
                best = (key, gpus)
    if best is None:                                  # no aligned placement: fill the emptiest servers
        gpus: list[Gpu] = []
        for s in sorted(free_by_server, key=lambda s: (-len(free_by_server[s]), s)):
            gpus += [Gpu(s, r) for r in free_by_server[s]][:n - len(gpus)]
            if len(gpus) == n:
                break
    else:
        gpus = best[1]
    return occ.allocate(job, gpus) if job is not None else gpus


def _pick_servers(lay: RailLayout, eligible: list[int], k: int, free_by_server: dict) -> list[int]:
    """k eligible servers: within one leaf group if one has enough (the group with the fewest
    eligible servers that fits), else from the groups with the most eligible servers first;
    within a group the fullest servers (fewest free GPUs) first."""
    groups: dict[int, list[int]] = {}
    for s in eligible:
        groups.setdefault(lay.leaf_group(s), []).append(s)
    for g in groups.values():
        g.sort(key=lambda s: (len(free_by_server[s]), s))
    fitting = [g for g, ss in groups.items() if len(ss) >= k]
    if fitting:
        g = min(fitting, key=lambda g: (len(groups[g]), g))
        return groups[g][:k]
    out: list[int] = []
    for g in sorted(groups, key=lambda g: (-len(groups[g]), g)):
        out += groups[g][:k - len(out)]
        if len(out) == k:
            break
    return out


def place_random(occ: Occupancy, n_gpus: int, rng: np.random.Generator, job: int | None = None) -> list[Gpu]:
    """``n_gpus`` free GPUs drawn uniformly at random (the baseline); allocated to ``job`` when given."""
    n = _check_n(occ, n_gpus)
    free = occ.free()
    idx = rng.choice(len(free), size=n, replace=False)
    gpus = sorted(free[int(i)] for i in idx)
    return occ.allocate(job, gpus) if job is not None else gpus


__all__ = ["Occupancy", "placement_tier", "place_topology_aware", "place_random"]
