"""Workloads: which RDMA WRITE messages are posted, between which hosts, when.

A workload is a list of :class:`Flow` (one QP pair and one message each). Generators are
deterministic functions of their arguments and a numpy ``Generator``.

The hosts of a workload are the fabric's servers (``fabric.servers``: every host, unless the
fabric has engines, such as the SHARP aggregation engines of a rail fabric, which only their own
driver addresses). A flow to a host goes to the host's first address (its only one, unless the
fabric declares several per host: a GPU server of ``rail_clos`` is reached at NIC 0; see
controlplane/ai/rails.py).
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Discriminator, Tag

from controlplane.config.schema import DELAY, Choice, Int, Limited, Num, Strict, Text, _tag, section
from controlplane.config.limits import MAX_TIME_PS
from controlplane.fabric.topology import Fabric, check_memory, estimate_bytes

# Bounds of the workload's fields. A message is at most 2^40 B (1 TiB: 88 s at 100 Gb/s, past any
# run's 1000 s of simulated time at 10 Gb/s); the data plane counts message bytes in uint64 and
# sums them per QP. A workload has at most MAX_FLOWS messages (each holds a QP pair and a message
# slot in the data plane, about 1.5 kB, plus ~0.5 kB of Python objects: 4 M flows are ~8 GB).
MAX_MESSAGE_BYTES = 2**40
MAX_FLOWS = 4_000_000

#: The RDMA operations a message can be (IBTA Vol. 1 §9.4): "write" (RDMA WRITE), "write_imm" (RDMA
#: WRITE with immediate: consumes a posted receive at the responder), "send" / "send_imm" (SEND,
#: without or with immediate data: consumes a posted receive), "read" (RDMA READ: the data flows
#: from dst back to src in READ responses), "atomic_cas" / "atomic_fadd" (ATOMIC compare-and-swap /
#: fetch-and-add of dst's 64-bit word: 8 bytes, the original value comes back).
VERBS = ("write", "write_imm", "send", "send_imm", "read", "atomic_cas", "atomic_fadd")
ATOMICS = ("atomic_cas", "atomic_fadd")


@dataclass(frozen=True)
class Flow:
    src: int            # sending host
    dst: int            # receiving host
    size_bytes: int     # RDMA WRITE length
    start_ps: int       # when the application posts it
    conn: int | None = None   # flows with the same conn share one QP pair (None: a QP pair of its own)
    dscp: int | None = None   # DSCP of its data packets (None: the scenario's dscp_data); qdisc traffic_class
    verb: str = "write"       # RDMA operation: one of VERBS
    atomic_value: int = 1     # an ATOMIC's swap (cas) or add (fadd) operand
    atomic_compare: int = 0   # an ATOMIC compare-and-swap's compare operand

    def to_dict(self) -> dict:
        return asdict(self)



#: most packets a default pool holds: 2^24 (1 GiB of address space, resident only as far as a run
#: uses it: native/sim.c pkt_alloc). It was 2^21 while the pool was written whole at creation; a
#: permutation at 65,536 hosts keeps millions in flight and ran the smaller pool dry.
MAX_DEFAULT_PKT_POOL = 1 << 24


def default_pkt_pool(num_flows: int) -> int:
    """The packet pool a scenario gets unless it sets ``pkt_pool``: 65,536 + 256 per flow, at most
    MAX_DEFAULT_PKT_POOL (a run that exhausts it is warned: controlplane/run/scenario.py Result)."""
    return min(MAX_DEFAULT_PKT_POOL, 65536 + 256 * num_flows)

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_host(fabric: Fabric, name: str, h: int) -> int:
    if not _is_int(h) or not 0 <= h < fabric.servers:
        raise ValueError(f"{name} must be a host id in [0, {fabric.servers}), got {h!r}")
    return int(h)


def _check_size(size_bytes: int, name: str = "size_bytes") -> int:
    if not _is_int(size_bytes) or not 0 < size_bytes <= MAX_MESSAGE_BYTES:
        raise ValueError(f"{name} must be a positive integer <= 2^40 (bytes), got {size_bytes!r}")
    return int(size_bytes)


def _check_time(name: str, t, positive: bool = False) -> int:
    """A time in integer picoseconds in [0, MAX_TIME_PS] (controlplane/config/limits.py), > 0 if ``positive``."""
    if not _is_int(t) or not (0 < t if positive else 0 <= t) or t > MAX_TIME_PS:
        raise ValueError(f"{name} must be an integer number of picoseconds in [{int(positive)}, 10^15], got {t!r}")
    return int(t)


def incast(fabric: Fabric, senders: int, size_bytes: int, receiver: int = 0, start_ps: int = 0,
           jitter_ps: int = 0, rng: np.random.Generator | None = None) -> list[Flow]:
    """N:1 incast: hosts other than ``receiver`` (the first ``senders`` of them) each WRITE
    ``size_bytes`` to ``receiver`` at ``start_ps`` (+ uniform jitter in [0, jitter_ps))."""
    receiver = _check_host(fabric, "receiver", receiver)
    size_bytes = _check_size(size_bytes)
    if not _is_int(senders) or not 1 <= senders < fabric.servers:
        raise ValueError(f"senders must be in [1, {fabric.servers - 1}], got {senders!r}")
    start_ps = _check_time("start_ps", start_ps)
    jitter_ps = _check_time("jitter_ps", jitter_ps)
    hosts = [h for h in range(fabric.servers) if h != receiver][:senders]
    if jitter_ps and rng is None:
        raise ValueError("incast with jitter_ps needs an rng")
    starts = [start_ps + (int(rng.integers(jitter_ps)) if jitter_ps else 0) for _ in hosts]
    return [Flow(h, receiver, size_bytes, t) for h, t in zip(hosts, starts)]


def permutation(fabric: Fabric, size_bytes: int, rng: np.random.Generator, start_ps: int = 0) -> list[Flow]:
    """Random permutation: every host sends ``size_bytes`` to a distinct host, never itself
    (a uniformly random derangement, by rejection)."""
    size_bytes = _check_size(size_bytes)
    start_ps = _check_time("start_ps", start_ps)
    n = fabric.servers
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
        if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
            raise ValueError(f"cdf must be one of {sorted(CDFS)} or the path of a CDF file, got {name_or_path!r}")
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
    if isinstance(load, bool) or not isinstance(load, (int, float, np.integer, np.floating)) or not 0 < load <= 1:
        raise ValueError(f"load must be in (0, 1], got {load!r}")
    duration_ps = _check_time("duration_ps", duration_ps, positive=True)
    start_ps = _check_time("start_ps", start_ps)
    if fabric.servers < 2:
        raise ValueError("poisson needs at least 2 hosts")
    dist = SizeCdf(cdf)
    host_rate = sum(l.rate_bps for l in fabric.links if fabric.is_host(l.a) or fabric.is_host(l.b))
    expected = host_rate * load * duration_ps / 1e12 / (8 * dist.mean)     # flows expected in duration_ps
    if expected > MAX_FLOWS:
        raise ValueError(f"poisson: load {load} over duration_ps {duration_ps} makes about {expected:.3g} flows "
                         f"on this fabric (at most {MAX_FLOWS:,}); shorten duration_ps")
    rate = {h: fabric.links[fabric.ports(h)[0] // 2].rate_bps for h in range(fabric.servers)}   # its first port's
    flows = []
    for h in range(fabric.servers):
        gap_ps = dist.mean * 8 / (rate[h] * load) * 1e12
        t = start_ps + rng.exponential(gap_ps)
        while t < start_ps + duration_ps:
            dst = int(rng.integers(fabric.servers - 1))
            dst += dst >= h
            flows.append(Flow(h, dst, int(dist.sample(rng, 1)[0]), int(t)))
            t += rng.exponential(gap_ps)
    flows.sort(key=lambda f: (f.start_ps, f.src))
    return flows


def from_list(fabric: Fabric, flows: list[dict]) -> list[Flow]:
    """Explicit flows: ``[{"src": 1, "dst": 0, "size_bytes": 1_000_000, "start_ps": 0}, ...]``."""
    if not isinstance(flows, (list, tuple)):
        raise ValueError(f"flows must be a list of {{src, dst, size_bytes[, start_ps, conn]}}, got {flows!r}")
    if len(flows) > MAX_FLOWS:
        raise ValueError(f"flows: {len(flows):,} flows, at most {MAX_FLOWS:,}")
    out = []
    for i, f in enumerate(flows):
        if not isinstance(f, dict):
            raise ValueError(f"flows[{i}] must be a dict with src, dst, size_bytes[, start_ps, conn], got {f!r}")
        spec = section(FlowSpec, f, f"flows[{i}]")          # keys, types, units (errors name flows[i].key)
        src = _check_host(fabric, f"flows[{i}].src", spec.src)
        dst = _check_host(fabric, f"flows[{i}].dst", spec.dst)
        if src == dst:
            raise ValueError(f"flows[{i}]: src and dst are both host {src}")
        start = _check_time(f"flows[{i}].start_ps", spec.start_ps)
        if spec.verb in ATOMICS and spec.size_bytes != 8:
            raise ValueError(f"flows[{i}].size_bytes: an ATOMIC ({spec.verb}) operates on 8 bytes, got {spec.size_bytes}")
        out.append(Flow(src, dst, _check_size(spec.size_bytes, f"flows[{i}].size_bytes"), start, spec.conn, spec.dscp,
                        spec.verb, spec.atomic_value, spec.atomic_compare))
    return out


def from_pcap(fabric: Fabric, path: str, hosts: str = "order", time_scale: float = 1.0) -> list[Flow]:
    """The RDMA messages (WRITE, SEND, READ, each with its verb) of a RoCEv2 capture
    (controlplane/transport/replay.py)."""
    from pathlib import Path
    from controlplane.transport.replay import messages
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        what = "a directory" if isinstance(path, (str, Path)) and Path(path).is_dir() else "no such file"
        raise ValueError(f"workload.path must name a pcap file, got {path!r} ({what})")
    try:
        flows, needed = messages(path, hosts, time_scale)
    except OSError as e:
        raise ValueError(f"workload.path: cannot read the capture {str(path)!r} ({e.strerror or e})") from None
    except ValueError as e:
        if str(e).startswith(str(path)):               # "<path>: not a pcap file ...": name the field
            raise ValueError(f"workload.path: {e}") from None
        raise
    if needed > fabric.servers:
        raise ValueError(f"the capture {path} needs {needed} hosts; the fabric has {fabric.servers}")
    return from_list(fabric, flows)


def build(fabric: Fabric, spec: dict, rng: np.random.Generator) -> list[Flow]:
    """Dispatch on ``spec["kind"]``: "incast", "permutation", "flows", "pcap" or "poisson". A spec
    that is not a dict, an unknown kind and missing or unknown keys raise ValueError naming them."""
    if not isinstance(spec, dict):
        raise ValueError(f"workload must be a dict with a 'kind', got {spec!r}")
    spec = dict(spec)
    kind = spec.pop("kind", None)
    builders = {"pcap": from_pcap, "poisson": poisson, "incast": incast, "permutation": permutation,
                "flows": from_list}
    if not isinstance(kind, str) or kind not in builders:
        raise ValueError(f"workload.kind must be 'incast', 'permutation', 'flows', 'pcap' or 'poisson', got {kind!r}")
    if kind == "flows":
        spec.setdefault("flows", [])
    verb = spec.pop("verb", "write") if kind in ("incast", "permutation", "poisson") else "write"
    if verb not in VERBS:
        raise ValueError(f"workload.verb must be one of {list(VERBS)}, got {verb!r}")
    if verb in ATOMICS and kind == "poisson":
        raise ValueError(f"workload.verb: a poisson workload's sizes come from a CDF; an ATOMIC ({verb}) is 8 bytes")
    if verb in ATOMICS and spec.get("size_bytes", 8) != 8:
        raise ValueError(f"workload.size_bytes: an ATOMIC ({verb}) operates on 8 bytes, got {spec.get('size_bytes')!r}")
    fn = builders[kind]
    if "rng" in inspect.signature(fn).parameters:
        spec["rng"] = rng
    try:
        inspect.signature(fn).bind(fabric, **spec)
    except TypeError as exc:
        raise ValueError(f"workload {kind!r}: {exc} (keys: "
                         f"{[p for p in inspect.signature(fn).parameters if p not in ('fabric', 'rng')]})") from None
    try:
        flows = fn(fabric, **spec)
    except ValueError as exc:                       # name the field as the scenario spells it
        msg, params = str(exc), inspect.signature(fn).parameters
        head = msg.split(" ")[0].split("[")[0].split(".")[0].rstrip(":")
        raise ValueError(f"workload.{msg}" if head in params else f"workload ({kind}): {msg}") from None
    if len(flows) > MAX_FLOWS:
        raise ValueError(f"workload: {len(flows):,} flows, at most {MAX_FLOWS:,}")
    if verb == "read":        # the data still goes src -> dst: dst pulls it (the READ's requester is dst)
        flows = [replace(f, src=f.dst, dst=f.src, verb=verb) for f in flows]
    elif verb != "write":
        flows = [replace(f, verb=verb) for f in flows]
    # the whole scenario's memory, before the data plane is allocated: the fabric, a QP pair and a
    # message per flow, and the default packet pool (default_pkt_pool)
    check_memory(estimate_bytes(fabric.num_hosts, fabric.num_switches, len(fabric.links), num_flows=len(flows),
                                pkt_pool=default_pkt_pool(len(flows))), f"workload ({kind})")
    return flows


# ---------------------------------------------------------------------------------- the schema
# One model per kind: Scenario.workload is checked against it before the fabric is built (the
# builders above check what needs the fabric: host ids, sender counts).
START = Limited("workload.start_ps")


class Incast(Strict):
    """N:1 incast (controlplane/transport/workload.py incast)."""
    kind: Literal["incast"]
    senders: Int("senders (hosts other than the receiver, in order)", lo=1)
    size_bytes: Int("bytes each sender writes", lo=1, kind="size")
    receiver: Int("the receiving host", lo=0) = 0
    start_ps: START = 0
    jitter_ps: Limited("workload.jitter_ps") = 0
    verb: Choice(VERBS, "the RDMA operation of every message (read: the data's receiver pulls it)") = "write"


class Permutation(Strict):
    """Random derangement: every host sends to a distinct other host (workload.py permutation)."""
    kind: Literal["permutation"]
    size_bytes: Int("bytes each host writes", lo=1, kind="size")
    start_ps: START = 0
    verb: Choice(VERBS, "the RDMA operation of every message (read: the data's receiver pulls it)") = "write"


class Poisson(Strict):
    """Poisson arrivals, sizes from a CDF (workload.py poisson, the HPCC repo's traffic_gen.py)."""
    kind: Literal["poisson"]
    cdf: Text("flow-size CDF: websearch, fb_hadoop, alistorage2019 or a file")
    load: Num("offered load per host link, in (0, 1]", lo=0, hi=1, lo_open=True)
    duration_ps: Limited("workload.duration_ps")
    start_ps: START = 0
    verb: Choice(VERBS, "the RDMA operation of every message (read: the data's receiver pulls it)") = "write"


class FlowSpec(Strict):
    """One explicit message."""
    src: Int("sending host", lo=0)
    dst: Int("receiving host", lo=0)
    size_bytes: Int("message size", lo=1, kind="size")
    start_ps: Int("when it is posted", **DELAY) = 0
    conn: Int("connection id: messages of one conn share a QP", lo=None) | None = None
    dscp: Int("DSCP of its data packets (None: the scenario's dscp_data); selects a traffic class", lo=0,
              hi=63) | None = None
    verb: Choice(VERBS, "the RDMA operation (read: dst sends the data back in READ responses)") = "write"
    atomic_value: Int("an ATOMIC's swap (atomic_cas) or add (atomic_fadd) operand", lo=0, hi=2**64 - 1) = 1
    atomic_compare: Int("an atomic_cas's compare operand", lo=0, hi=2**64 - 1) = 0


class Flows(Strict):
    """Explicit messages (workload.py from_list)."""
    kind: Literal["flows"]
    flows: list[FlowSpec] = []


class Pcap(Strict):
    """The RDMA messages (WRITE, SEND, READ) of a RoCEv2 capture (controlplane/transport/replay.py)."""
    kind: Literal["pcap"]
    path: Text("the capture file")
    hosts: Choice(("order", "softdpu"), "capture addresses to hosts: in order of appearance, or softdpu's plan") = "order"
    time_scale: Num("multiplies the capture's times", lo=0, lo_open=True) = 1.0


Workload = Annotated[Union[Annotated[Incast, Tag("incast")], Annotated[Permutation, Tag("permutation")],
                           Annotated[Poisson, Tag("poisson")], Annotated[Flows, Tag("flows")],
                           Annotated[Pcap, Tag("pcap")]],
                     Discriminator(_tag("kind"), custom_error_type="workload_kind",
                                   custom_error_message="workload kind must be 'incast', 'permutation', 'flows', "
                                                        "'pcap' or 'poisson'")]
