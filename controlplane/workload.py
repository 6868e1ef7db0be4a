"""Workloads: which RDMA WRITE messages are posted, between which hosts, when.

A workload is a list of :class:`Flow` (one QP pair and one message each). Generators are
deterministic functions of their arguments and a numpy ``Generator``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from controlplane.topology import Fabric


@dataclass(frozen=True)
class Flow:
    src: int            # sending host
    dst: int            # receiving host
    size_bytes: int     # RDMA WRITE length
    start_ps: int       # when the application posts it
    conn: int | None = None   # flows with the same conn share one QP pair (None: a QP pair of its own)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_host(fabric: Fabric, name: str, h: int) -> int:
    if not isinstance(h, (int, np.integer)) or not 0 <= h < fabric.num_hosts:
        raise ValueError(f"{name} must be a host id in [0, {fabric.num_hosts}), got {h!r}")
    return int(h)


def _check_size(size_bytes: int) -> int:
    if not isinstance(size_bytes, (int, np.integer)) or size_bytes <= 0:
        raise ValueError(f"size_bytes must be a positive integer, got {size_bytes!r}")
    return int(size_bytes)


def incast(fabric: Fabric, senders: int, size_bytes: int, receiver: int = 0, start_ps: int = 0,
           jitter_ps: int = 0, rng: np.random.Generator | None = None) -> list[Flow]:
    """N:1 incast: hosts other than ``receiver`` (the first ``senders`` of them) each WRITE
    ``size_bytes`` to ``receiver`` at ``start_ps`` (+ uniform jitter in [0, jitter_ps))."""
    receiver = _check_host(fabric, "receiver", receiver)
    size_bytes = _check_size(size_bytes)
    if not isinstance(senders, (int, np.integer)) or not 1 <= senders < fabric.num_hosts:
        raise ValueError(f"senders must be in [1, {fabric.num_hosts - 1}], got {senders!r}")
    if jitter_ps < 0 or start_ps < 0:
        raise ValueError("start_ps and jitter_ps must be >= 0")
    hosts = [h for h in range(fabric.num_hosts) if h != receiver][:senders]
    if jitter_ps and rng is None:
        raise ValueError("incast with jitter_ps needs an rng")
    starts = [start_ps + (int(rng.integers(jitter_ps)) if jitter_ps else 0) for _ in hosts]
    return [Flow(h, receiver, size_bytes, t) for h, t in zip(hosts, starts)]


def permutation(fabric: Fabric, size_bytes: int, rng: np.random.Generator, start_ps: int = 0) -> list[Flow]:
    """Random permutation: every host sends ``size_bytes`` to a distinct host, never itself
    (a uniformly random derangement, by rejection)."""
    size_bytes = _check_size(size_bytes)
    n = fabric.num_hosts
    if n < 2:
        raise ValueError("permutation needs at least 2 hosts")
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            break
    return [Flow(i, int(perm[i]), size_bytes, start_ps) for i in range(n)]


FLOW_SIZES = Path(__file__).resolve().parent / "flow_sizes"
CDFS = {"websearch": "websearch.txt", "fb_hadoop": "fb_hadoop.txt", "alistorage2019": "alistorage2019.txt"}


class SizeCdf:
    """A flow-size distribution from `<size_bytes> <cdf_percent>` points, sampled by inverse
    transform with linear interpolation between points (the HPCC repo's custom_rand.py), whose
    mean is the trapezoid integral (custom_rand.getAvg: WebSearch 1,711,250 B)."""

    def __init__(self, name_or_path: str):
        path = FLOW_SIZES / CDFS[name_or_path] if name_or_path in CDFS else Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"flow-size CDF {name_or_path!r}: not one of {sorted(CDFS)} and no such file")
        rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        self.size = np.array([float(r[0]) for r in rows])
        self.cdf = np.array([float(r[1]) for r in rows]) / 100.0
        if self.cdf[0] != 0.0 or self.cdf[-1] != 1.0 or np.any(np.diff(self.cdf) <= 0) or np.any(np.diff(self.size) <= 0):
            raise ValueError(f"flow-size CDF {path}: must start at 0 %, end at 100 % and increase strictly")
        self.name = Path(path).stem

    @property
    def mean(self) -> float:
        return float(np.sum(np.diff(self.cdf) * (self.size[1:] + self.size[:-1]) / 2))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.maximum(1, np.round(np.interp(rng.random(n), self.cdf, self.size))).astype(np.int64)


def poisson(fabric: Fabric, cdf: str, load: float, duration_ps: int, rng: np.random.Generator,
            start_ps: int = 0) -> list[Flow]:
    """Poisson flow arrivals at every host, sizes from a CDF, destinations uniform over the other
    hosts (the HPCC repo's traffic_gen.py): per-host mean inter-arrival = mean size x 8 /
    (host link rate x load), flows that start within `duration_ps`."""
    if not 0 < load <= 1:
        raise ValueError(f"load must be in (0, 1], got {load!r}")
    if duration_ps <= 0:
        raise ValueError(f"duration_ps must be > 0, got {duration_ps!r}")
    if fabric.num_hosts < 2:
        raise ValueError("poisson needs at least 2 hosts")
    dist = SizeCdf(cdf)
    rate = {}
    for link in fabric.links:
        for h in (link.a, link.b):
            if fabric.is_host(h):
                rate[h] = link.rate_bps
    flows = []
    for h in range(fabric.num_hosts):
        gap_ps = dist.mean * 8 / (rate[h] * load) * 1e12
        t = start_ps + rng.exponential(gap_ps)
        while t < start_ps + duration_ps:
            dst = int(rng.integers(fabric.num_hosts - 1))
            dst += dst >= h
            flows.append(Flow(h, dst, int(dist.sample(rng, 1)[0]), int(t)))
            t += rng.exponential(gap_ps)
    flows.sort(key=lambda f: (f.start_ps, f.src))
    return flows


def from_list(fabric: Fabric, flows: list[dict]) -> list[Flow]:
    """Explicit flows: ``[{"src": 1, "dst": 0, "size_bytes": 1_000_000, "start_ps": 0}, ...]``."""
    out = []
    for i, f in enumerate(flows):
        src = _check_host(fabric, f"flows[{i}].src", f["src"])
        dst = _check_host(fabric, f"flows[{i}].dst", f["dst"])
        if src == dst:
            raise ValueError(f"flows[{i}]: src and dst are both host {src}")
        start = f.get("start_ps", 0)
        if not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"flows[{i}].start_ps must be a non-negative integer, got {start!r}")
        conn = f.get("conn")
        if conn is not None and not isinstance(conn, (int, np.integer)):
            raise ValueError(f"flows[{i}].conn must be an integer or None, got {conn!r}")
        out.append(Flow(src, dst, _check_size(f["size_bytes"]), int(start), None if conn is None else int(conn)))
    return out


def from_pcap(fabric: Fabric, path: str, hosts: str = "order", time_scale: float = 1.0) -> list[Flow]:
    """The RDMA WRITEs of a RoCEv2 capture (controlplane/replay.py)."""
    from controlplane.replay import messages
    flows, needed = messages(path, hosts, time_scale)
    if needed > fabric.num_hosts:
        raise ValueError(f"the capture {path} needs {needed} hosts; the fabric has {fabric.num_hosts}")
    return from_list(fabric, flows)


def build(fabric: Fabric, spec: dict, rng: np.random.Generator) -> list[Flow]:
    """Dispatch on ``spec["kind"]``: "incast", "permutation", "flows" or "pcap"."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "pcap":
        return from_pcap(fabric, **spec)
    if kind == "poisson":
        return poisson(fabric, rng=rng, **spec)
    if kind == "incast":
        return incast(fabric, rng=rng, **spec)
    if kind == "permutation":
        return permutation(fabric, rng=rng, **spec)
    if kind == "flows":
        return from_list(fabric, spec.get("flows", []))
    raise ValueError(f"workload kind must be 'incast', 'permutation', 'flows', 'pcap' or 'poisson', got {kind!r}")
