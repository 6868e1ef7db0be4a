"""Training jobs on the AI fabric: one step of a transformer trained with tensor (TP), pipeline (PP)
and data (DP) parallelism, run at packet level on a rail fabric, with compute as delays between
dependent transfers (docs/training.md).

The model (:class:`Model`): ``layers`` transformer layers of hidden size ``h`` (attention 4h^2 and
an MLP of 2 h ffn parameters, ffn = 4h by default: 12 h^2 per layer), sequence length ``s``, an input
embedding and an output layer of ``vocab`` x h each (``vocab = 0``: neither). FLOPs (Narayanan et
al., SC'21, "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
Appendix: 24 b s h^2 + 4 b s^2 h per layer forward for ffn = 4h): a layer's forward on a micro-batch
of b sequences takes 2 b s P_layer + 4 b s^2 h FLOPs, the output layer 2 b s h V; backward takes
twice its forward.

The GPU (:class:`GpuSpec`): a roofline, time = max(FLOPs / (peak x efficiency), bytes / HBM
bandwidth), with bytes = the layer's weights (2 bytes each, 1/TP of them) plus its activations (34 b
s h bytes per layer, Korthikanti et al., MLSys'23, "Reducing Activation Recomputation in Large
Transformer Models", Eq. 2 without the attention-score term, 1/TP with sequence parallelism);
backward moves twice the bytes. Defaults: an H100 SXM (989 TFLOP/s dense BF16, 3.35 TB/s HBM3;
NVIDIA H100 datasheet) at 50 % of peak for the transformer's GEMMs (an assumption: Llama 3's
training reached 38-43 % MFU end to end, Dubey et al. 2024, Table 4).

Parallelism (:class:`Parallelism`): TP x PP x DP GPUs; ``global_batch`` sequences per step in
micro-batches of ``micro_batch``, so each pipeline runs m = global_batch / (micro_batch x DP)
micro-batches.

- TP (Shoeybi et al. 2019, Megatron-LM): per layer two all-reduces of the activations (b s h x 2
  bytes) in the forward pass and two in the backward, among the TP GPUs of one server over NVLink.
  They are not run packet by packet (hundreds of GB per step): each costs the ring all-reduce's
  closed form on the fabric's NVLink, 2 (t-1)/t x bytes / NVLink bandwidth + 2 (t-1) x
  (2 x nvlink_delay), and is exposed (added to the layer's compute; no overlap).
- PP: the 1F1B schedule (PipeDream-Flush; Narayanan et al. SC'21, Fig. 4): stage k runs
  min(p - k - 1, m) forwards, then one forward and one backward in turn, then the remaining
  backwards. After a forward, each TP rank sends its 1/t of the activations (b s h x 2 / t bytes,
  Megatron's scatter/gather optimisation) to the same TP rank of the next stage; after a backward
  the activation gradient goes back the same way. These transfers run at packet level.
- DP: gradients (``grad_bytes_per_param`` per parameter of the GPU's shard) are reduced in
  buckets of ``bucket_params`` parameters (Megatron's default, 40 M), in the order the backward
  pass of the last micro-batch produces them (last layer first): bucket j's collective starts
  when that share of the last backward is done, so it overlaps the rest of the backward. The
  collective is an all-reduce (``dp_algorithm``: ``ring``; ``auto``: hierarchical when the group
  holds several GPUs of each server, else the ring; ``sharp``: in-network reduction through the
  switches' engines) with ``sharding = "none"``; a reduce-scatter with ``"optimizer"`` (ZeRO-1,
  Megatron's distributed optimizer), followed after the optimizer by an all-gather of the updated
  parameters (exposed); with ``"full"`` (ZeRO-3/FSDP) also an all-gather of the stage's parameters
  before its first forward and again before its first backward (kept for all micro-batches: a
  simplification). These run at packet level, over the rails.
- The optimizer: a memory-bound pass of ``optimizer_bytes_per_param`` (16: fp32 master weights,
  two Adam moments and the gradient, read and written) over the GPU's parameter shard (1/DP of it
  when the optimizer state is sharded), after the GPU's last DP collective.

``scale`` (>= 1) runs a miniature of the step: every byte count on the fabric (PP and DP transfers,
buckets; not the collectives' pipelining chunk, ``chunk_bytes``) and every compute and TP time is
divided by ``scale`` and the times measured are
multiplied back. Bandwidth-bound phases keep their ratios (a transfer of bytes / scale at the same
rate takes 1/scale of the time), but every latency (a hop, an ACK, a ring step) weighs ``scale``
times more than at full size: ``scale`` trades accuracy for packets, and docs/training.md gives the
difference measured between scales.

The step's breakdown (:class:`StepResult`), all terms >= 0 and summing to the step time:
``compute`` and ``tp`` (the busiest stage's m forwards and backwards), ``bubble`` (the rest of the
ideal 1F1B pipeline, computed on the same schedule with free communication: (p - 1)/(m + p - 1) of
it for equal stages), ``pp`` (how much the measured pipeline ends after the ideal one: exposed PP
communication, and with full sharding the parameter all-gathers), ``dp`` (from the last backward to
the end of the step, less the optimizer: exposed DP communication) and ``optimizer``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from controlplane.ai import collectives as C
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.ai.sharp import sharp_all_reduce

SHARDING = ("none", "optimizer", "full")
DP_ALGORITHMS = ("auto", "ring", "sharp")


def _pos_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _pos_num(name: str, v, lo_open: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
            or v <= lo_open:
        raise ValueError(f"{name} must be a finite number > {lo_open:g}, got {v!r}")
    return float(v)


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class Model:
    """A decoder-only transformer (module docstring)."""

    name: str
    layers: int
    hidden: int
    seq_len: int
    vocab: int = 32000
    ffn_mult: float = 4.0

    def __post_init__(self):
        _pos_int("model.layers", self.layers)
        _pos_int("model.hidden", self.hidden)
        _pos_int("model.seq_len", self.seq_len)
        if isinstance(self.vocab, bool) or not isinstance(self.vocab, (int, np.integer)) or self.vocab < 0:
            raise ValueError(f"model.vocab must be an integer >= 0, got {self.vocab!r}")
        _pos_num("model.ffn_mult", self.ffn_mult)

    @property
    def params_per_layer(self) -> float:
        h = self.hidden
        return 4 * h * h + 2 * h * self.ffn_mult * h

    @property
    def params(self) -> float:
        """All parameters: the layers, the input embedding and the output layer."""
        return self.layers * self.params_per_layer + 2 * self.vocab * self.hidden

    def layer_fwd_flops(self, micro_batch: int) -> float:
        b, s, h = micro_batch, self.seq_len, self.hidden
        return 2 * b * s * self.params_per_layer + 4 * b * s * s * h

    def head_fwd_flops(self, micro_batch: int) -> float:
        return 2 * micro_batch * self.seq_len * self.hidden * self.vocab


# "-like" models: the depth and width of published models with this module's standard layer
# (multi-head attention, a 4h MLP), so the parameter counts are close, not equal
MODELS = {
    "7b": Model("7b", layers=32, hidden=4096, seq_len=4096),      # Llama-2-7B's shape: 6.7 B parameters
    "13b": Model("13b", layers=40, hidden=5120, seq_len=4096),    # Llama-2-13B's shape: 12.9 B
    "70b": Model("70b", layers=80, hidden=8192, seq_len=4096),    # Llama-2-70B's depth and width: 64.9 B
}


@dataclass(frozen=True)
class GpuSpec:
    """The roofline of one GPU (defaults: H100 SXM, module docstring)."""

    peak_flops: float = 989e12
    efficiency: float = 0.5
    hbm_bytes_per_s: float = 3.35e12

    def __post_init__(self):
        _pos_num("gpu.peak_flops", self.peak_flops)
        _pos_num("gpu.hbm_bytes_per_s", self.hbm_bytes_per_s)
        if not 0 < self.efficiency <= 1:
            raise ValueError(f"gpu.efficiency must be in (0, 1], got {self.efficiency!r}")

    def time_s(self, flops: float, nbytes: float) -> float:
        return max(flops / (self.peak_flops * self.efficiency), nbytes / self.hbm_bytes_per_s)


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    micro_batch: int = 1
    global_batch: int = 8
    sharding: str = "none"
    dp_algorithm: str = "auto"
    bucket_params: int = 40_000_000
    grad_bytes_per_param: int = 2
    optimizer_bytes_per_param: int = 16
    chunk_bytes: int = 1 << 20

    def __post_init__(self):
        for k in ("tp", "pp", "dp", "micro_batch", "global_batch", "bucket_params", "grad_bytes_per_param",
                  "chunk_bytes"):
            _pos_int(k, getattr(self, k))
        if isinstance(self.optimizer_bytes_per_param, bool) or not isinstance(self.optimizer_bytes_per_param, int) \
                or self.optimizer_bytes_per_param < 0:
            raise ValueError(f"optimizer_bytes_per_param must be an integer >= 0, got {self.optimizer_bytes_per_param!r}")
        if self.sharding not in SHARDING:
            raise ValueError(f"sharding must be one of {list(SHARDING)}, got {self.sharding!r}")
        if self.dp_algorithm not in DP_ALGORITHMS:
            raise ValueError(f"dp_algorithm must be one of {list(DP_ALGORITHMS)}, got {self.dp_algorithm!r}")
        if self.global_batch % (self.micro_batch * self.dp):
            raise ValueError(f"global_batch ({self.global_batch}) must be a multiple of micro_batch x dp "
                             f"({self.micro_batch} x {self.dp})")
        if self.sharding != "none" and self.dp_algorithm == "sharp":
            raise ValueError("dp_algorithm: sharp reduces whole buffers (an all-reduce); sharded optimizers "
                             "reduce-scatter: use sharding = none with sharp")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def micro_batches(self) -> int:
        return self.global_batch // (self.micro_batch * self.dp)

    def label(self) -> str:
        return f"TP{self.tp}xPP{self.pp}xDP{self.dp}"


# ------------------------------------------------------------------------------------------ costs
@dataclass
class StageCosts:
    """Per stage, per micro-batch: compute and exposed TP times (s), and bytes."""

    fwd_s: float
    bwd_s: float
    tp_fwd_s: float
    tp_bwd_s: float
    params: float                 # parameters of the stage (all TP ranks)
    grad_bytes: int               # DP bytes per GPU of the stage (its TP shard)
    optimizer_s: float


@dataclass
class JobCosts:
    stages: list[StageCosts]
    act_bytes: int                # PP bytes per TP rank per micro-batch and direction


def tp_all_reduce_s(nbytes: float, tp: int, nvlink_bps: float, nvlink_delay_ps: int) -> float:
    """The ring all-reduce of ``nbytes`` among ``tp`` GPUs over NVLink (closed form: bandwidth and
    2 (t-1) steps of one NVLink round trip through the NVSwitch)."""
    if tp == 1:
        return 0.0
    return 2 * (tp - 1) / tp * nbytes * 8 / nvlink_bps + 2 * (tp - 1) * 2 * nvlink_delay_ps * 1e-12


def job_costs(model: Model, par: Parallelism, gpu: GpuSpec, nvlink_bps: float, nvlink_delay_ps: int) -> JobCosts:
    """Compute, TP and byte counts per stage (module docstring)."""
    t, p = par.tp, par.pp
    if model.layers % p:
        raise ValueError(f"pp ({p}) must divide the model's layers ({model.layers})")
    if t > 1 and nvlink_bps <= 0:
        raise ValueError(f"tp = {t}: tensor parallelism runs over NVLink; the fabric has none (nvlink_rate_bps = 0)")
    b, s, h = par.micro_batch, model.seq_len, model.hidden
    lp = model.layers // p
    act = b * s * h * 2
    lf = model.layer_fwd_flops(b) / t
    lbytes = (2 * model.params_per_layer + 34 * b * s * h) / t
    tp_layer = 2 * tp_all_reduce_s(act, t, nvlink_bps, nvlink_delay_ps)      # two all-reduces per pass
    stages = []
    for k in range(p):
        fwd = lp * gpu.time_s(lf, lbytes)
        bwd = lp * gpu.time_s(2 * lf, 2 * lbytes)
        params = lp * model.params_per_layer
        if k == p - 1 and model.vocab:
            hf = model.head_fwd_flops(b) / t
            hb = (2 * model.vocab * h + 2 * b * s * model.vocab) / t
            fwd += gpu.time_s(hf, hb)
            bwd += gpu.time_s(2 * hf, 2 * hb)
            params += model.vocab * h
        if k == 0 and model.vocab:
            params += model.vocab * h          # the embedding: a lookup, no GEMM
        shard = params / t
        opt_shard = shard / (par.dp if par.sharding != "none" else 1)
        stages.append(StageCosts(fwd, bwd, lp * tp_layer, lp * tp_layer, params,
                                 int(round(shard * par.grad_bytes_per_param)),
                                 opt_shard * par.optimizer_bytes_per_param / gpu.hbm_bytes_per_s))
    return JobCosts(stages, act // t)


# ------------------------------------------------------------------------------------------ placement
@dataclass(frozen=True)
class Placement:
    """Which GPU holds each rank: ``gpus[(replica, stage, tp_rank)]``."""

    par: Parallelism
    gpus: dict

    def __post_init__(self):
        want = {(r, k, i) for r in range(self.par.dp) for k in range(self.par.pp) for i in range(self.par.tp)}
        if set(self.gpus) != want:
            raise ValueError(f"placement: needs exactly the ranks (replica, stage, tp) of {self.par.label()}")
        if len(set(self.gpus.values())) != len(self.gpus):
            raise ValueError("placement: a GPU holds two ranks")

    def all(self) -> list[Gpu]:
        return [self.gpus[key] for key in sorted(self.gpus)]

    def describe(self) -> str:
        return " ".join(f"s{g.server}g{g.rail}" for g in self.all())


def place_ranks(par: Parallelism, gpus: list[Gpu], order: str = "tp-dp-pp") -> Placement:
    """Assign ranks to ``gpus`` taken in the given order, the first named dimension varying fastest
    (Megatron-LM's default rank order is tp, then dp, then pp: ``"tp-dp-pp"``)."""
    dims = order.split("-")
    if sorted(dims) != ["dp", "pp", "tp"]:
        raise ValueError(f"order must name tp, dp and pp once each (e.g. 'tp-dp-pp'), got {order!r}")
    if len(gpus) != par.gpus:
        raise ValueError(f"placement: {par.label()} needs {par.gpus} GPUs, got {len(gpus)}")
    size = {"tp": par.tp, "dp": par.dp, "pp": par.pp}
    out = {}
    for n, g in enumerate(gpus):
        idx = {}
        for d in dims:
            idx[d] = n % size[d]
            n //= size[d]
        out[(idx["dp"], idx["pp"], idx["tp"])] = g
    return Placement(par, out)


def tp_groups(free: list[Gpu], tp: int, layout: RailLayout) -> list[list[Gpu]]:
    """Free GPUs cut into groups of ``tp`` on one server each (lowest rails first), servers ordered
    by leaf group, so consecutive groups sit under the same leaves."""
    by_server: dict[int, list[Gpu]] = {}
    for g in free:
        by_server.setdefault(g.server, []).append(g)
    out = []
    for srv in sorted(by_server, key=lambda s: (layout.leaf_group(s), s)):
        gs = sorted(by_server[srv], key=lambda g: g.rail)
        out += [gs[i:i + tp] for i in range(0, len(gs) - tp + 1, tp)]
    return out


# ------------------------------------------------------------------------------------------ the step
@dataclass
class StepPlan:
    """One step as a schedule, with what the breakdown needs."""

    schedule: C.Schedule
    placement: Placement
    costs: JobCosts
    scale: float
    last_bwd: list[int] = field(default_factory=list)     # task ids of each stage's last backward piece
    compute_ids: list[int] = field(default_factory=list)
    category: dict[int, str] = field(default_factory=dict)   # task id -> "pp", "dp", "gather"
    optimizer_ps: int = 0
    busy_ps: list[int] = field(default_factory=list)     # per stage: its forward and backward tasks (ps, replica 0)


def _ps(seconds: float, scale: float) -> int:
    return int(round(seconds * 1e12 / scale))


def _slice_bytes(nbytes: int, scale: float) -> int:
    return max(1, int(round(nbytes / scale)))


def build_step(net, model: Model, par: Parallelism, placement: Placement, gpu: GpuSpec = GpuSpec(),
               scale: float = 1.0, elems: int = 0, seed: int = 0, name: str = "step",
               closed_form: bool = False) -> StepPlan:
    """The step of ``model`` under ``par`` on ``placement`` as one schedule (module docstring).

    ``closed_form``: each DP collective (per bucket, per group) becomes one transfer per member to
    its ring successor carrying the member's whole ring volume (2 (d-1)/d of the bucket for an
    all-reduce, (d-1)/d for a reduce-scatter or all-gather, the bucket for SHARP), tagged with its
    number of ring steps: the cost model's form (:func:`estimate_step`), a few transfers instead of
    2 (d-1) d x chunks."""
    scale = _pos_num("scale", scale)
    if scale < 1:
        raise ValueError(f"scale must be >= 1 (a miniature of the step), got {scale!r}")
    if placement.par != par:
        raise ValueError("placement: made for another parallelism")
    lay = RailLayout(net.fabric.params)
    ep = C.Endpoints(net)
    costs = job_costs(model, par, gpu, lay.params["nvlink_rate_bps"], lay.params["nvlink_delay_ps"])
    t, p, d, m = par.tp, par.pp, par.dp, par.micro_batches
    G = placement.gpus
    for (r, k, i), g in G.items():
        lay.check_gpu(g, f"placement[{(r, k, i)}]")
    if t > 1:
        for r in range(d):
            for k in range(p):
                if len({G[(r, k, i)].server for i in range(t)}) != 1:
                    raise ValueError(f"placement: the TP group of replica {r}, stage {k} spans servers (TP runs over "
                                     "NVLink inside one server)")
    s = C.Schedule(name, "all_reduce", par.gpus, 1)
    plan = StepPlan(s, placement, costs, scale)

    def compute(owner: Gpu, dur_s: float, deps) -> int:
        tid = s.add(C.Transfer(lay.nic(owner.server, owner.rail), lay.nic(owner.server, owner.rail), 0,
                               tuple(sorted(set(deps))), _ps(dur_s, scale), compute=True, tag="compute"))
        plan.compute_ids.append(tid)
        return tid

    def transfer(a: Gpu, b: Gpu, nbytes: int, deps, cat: str) -> int:
        sn, dn = ep.pair(a, b)
        tid = s.add(C.Transfer(sn, dn, _slice_bytes(nbytes, scale), tuple(sorted(set(deps))), tag=cat))
        plan.category[tid] = cat
        return tid

    act = costs.act_bytes
    # ZeRO-3: gather each stage's parameters before its first forward (and again before its first backward)
    gather_fwd: dict[tuple[int, int], list[int]] = {}
    gather_bwd: dict[tuple[int, int], list[int]] = {}
    if par.sharding == "full" and d > 1:
        for k in range(p):
            for i in range(t):
                members = [G[(r, k, i)] for r in range(d)]
                for which, store in (("fwd", gather_fwd), ("bwd", gather_bwd)):
                    nbytes = max(d, _slice_bytes(costs.stages[k].grad_bytes, scale))
                    sub = (_ring_closed(ep, members, nbytes, "all_gather") if closed_form else
                           C.all_gather(net, members, nbytes, chunk_bytes=par.chunk_bytes, name=f"gather{which}{k}.{i}"))
                    ids = _merge(s, sub, lambda tr: (), ("gather", which, k, i), plan, "gather")
                    for r in range(d):
                        store.setdefault((r, k), []).extend(ids)
    # the pipelines: 1F1B per stage
    fwd_done: dict[tuple[int, int, int], int] = {}       # (replica, stage, mb) -> forward task
    bwd_done: dict[tuple[int, int, int], int] = {}
    act_in: dict[tuple[int, int, int], list[int]] = {}   # transfers feeding stage k's forward of mb j
    grad_in: dict[tuple[int, int, int], list[int]] = {}
    nb = [max(1, math.ceil(costs.stages[k].params / t / par.bucket_params)) for k in range(p)] if d > 1 else [1] * p
    pieces: dict[tuple[int, int], list[int]] = {}        # (replica, stage) -> last backward's pieces
    plan.busy_ps = [0] * p
    order = []
    for k in range(p):
        w = min(p - k - 1, m)
        ops = [("F", j) for j in range(w)]
        for j in range(m - w):
            ops += [("F", w + j), ("B", j)]
        ops += [("B", j) for j in range(m - w, m)]
        order.append(ops)
    # the ops depend on other stages' ops: issue them in an order where every dependency exists
    # already (a global topological order of the 1F1B DAG: repeatedly take each stage's next op
    # whose inputs were issued)
    for r in range(d):
        nxt = [0] * p
        prev: list[int | None] = [None] * p               # each stage's previous task
        left = sum(len(o) for o in order)
        while left:
            progressed = False
            for k in range(p):
                while nxt[k] < len(order[k]):
                    op, j = order[k][nxt[k]]
                    st = costs.stages[k]
                    owner = G[(r, k, 0)]
                    if op == "F":
                        if k > 0 and (r, k, j) not in act_in:
                            break
                        deps = list(act_in.get((r, k, j), ()))
                        if prev[k] is not None:
                            deps.append(prev[k])
                        deps += gather_fwd.get((r, k), []) if j == 0 else []
                        tid = compute(owner, st.fwd_s + st.tp_fwd_s, deps)
                        fwd_done[(r, k, j)] = tid
                        plan.busy_ps[k] += s.transfers[tid].delay_ps if r == 0 else 0
                        if k < p - 1:
                            act_in[(r, k + 1, j)] = [transfer(G[(r, k, i)], G[(r, k + 1, i)], act, (tid,), "pp")
                                                     for i in range(t)]
                    else:
                        if k < p - 1 and (r, k, j) not in grad_in:
                            break
                        deps = list(grad_in.get((r, k, j), ())) + [fwd_done[(r, k, j)]]
                        if prev[k] is not None:
                            deps.append(prev[k])
                        if j == 0:
                            deps += gather_bwd.get((r, k), [])
                        dur = st.bwd_s + st.tp_bwd_s
                        if j == m - 1:         # the last backward, in pieces: one per gradient bucket
                            ids = []
                            nbk = nb[k]
                            for q in range(nbk):
                                ids.append(compute(owner, dur / nbk, deps if q == 0 else [ids[-1]]))
                            pieces[(r, k)] = ids
                            tid = ids[-1]
                            plan.last_bwd.append(tid)
                        else:
                            ids = [compute(owner, dur, deps)]
                            tid = ids[0]
                        plan.busy_ps[k] += sum(s.transfers[x].delay_ps for x in ids) if r == 0 else 0
                        bwd_done[(r, k, j)] = tid
                        if k > 0:
                            grad_in[(r, k - 1, j)] = [transfer(G[(r, k, i)], G[(r, k - 1, i)], act, (tid,), "pp")
                                                      for i in range(t)]
                    prev[k] = tid
                    nxt[k] += 1
                    left -= 1
                    progressed = True
            if not progressed:
                raise RuntimeError("training: the 1F1B schedule deadlocked (a bug)")
    # data parallelism: per (stage, tp rank) group, per bucket
    into: dict[Gpu, list[int]] = {}                     # DP transfers into each GPU (the optimizer waits for them)
    for k in range(p):
        if d == 1:
            break
        grad = costs.stages[k].grad_bytes
        for i in range(t):
            members = [G[(r, k, i)] for r in range(d)]
            addr_of = {}
            for r, g in enumerate(members):
                for a in _addresses(lay, g):
                    addr_of[a] = r
            bounds = C._split(grad, nb[k])
            for q, (lo, hi) in enumerate(bounds):
                nbytes = max(d, _slice_bytes(hi - lo, scale))     # a collective needs a byte per member
                chunk = par.chunk_bytes
                if closed_form:
                    kind = "sharp" if par.dp_algorithm == "sharp" else ("all_reduce" if par.sharding == "none"
                                                                         else "reduce_scatter")
                    sub = _ring_closed(ep, members, nbytes, kind)
                elif par.sharding == "none":
                    sub = _all_reduce(net, lay, members, nbytes, chunk, par.dp_algorithm, elems, seed + q)
                else:
                    sub = C.reduce_scatter(net, members, nbytes, chunk_bytes=chunk, elems=elems, seed=seed + q)

                def extra(tr, q=q, k=k):
                    out = []
                    for a in (tr.src, tr.dst):
                        r = addr_of.get(a)
                        if r is not None:
                            out.append(pieces[(r, k)][q])
                    return tuple(out)
                ids = _merge(s, sub, extra, ("dp", k, i, q), plan, "dp")
                for tid in ids:
                    tr = s.transfers[tid]
                    r = addr_of.get(tr.dst)
                    if r is not None:
                        into.setdefault(members[r], []).append(tid)
    # the optimizer, per GPU group (replica, stage): after its last backward and its DP transfers
    opt_ids: dict[tuple[int, int], int] = {}
    for r in range(d):
        for k in range(p):
            deps = [bwd_done[(r, k, m - 1)]]
            for i in range(t):
                deps += into.get(G[(r, k, i)], [])
            opt_ids[(r, k)] = compute(G[(r, k, 0)], costs.stages[k].optimizer_s, deps)
    plan.optimizer_ps = max(_ps(st.optimizer_s, scale) for st in costs.stages)
    # a sharded optimizer gathers the updated parameters (ZeRO-1/2: exposed at the end of the step)
    if par.sharding == "optimizer" and d > 1:
        for k in range(p):
            for i in range(t):
                members = [G[(r, k, i)] for r in range(d)]
                addr_of = {a: r for r, g in enumerate(members) for a in _addresses(lay, g)}
                nbytes = max(d, _slice_bytes(costs.stages[k].grad_bytes, scale))
                sub = (_ring_closed(ep, members, nbytes, "all_gather") if closed_form else
                       C.all_gather(net, members, nbytes, chunk_bytes=par.chunk_bytes, name=f"gather{k}.{i}"))
                _merge(s, sub, lambda tr, k=k: tuple(opt_ids[(addr_of[a], k)] for a in (tr.src, tr.dst)
                                                     if a in addr_of), ("gather", k, i), plan, "dp")
    return plan


def _addresses(lay: RailLayout, g: Gpu) -> list[int]:
    out = [lay.nic(g.server, g.rail)]
    if lay.has_nvlink:
        out.append(lay.nvl(g.server, g.rail))
    return out


def _all_reduce(net, lay: RailLayout, members: list[Gpu], nbytes: int, chunk: int, algorithm: str, elems: int,
                seed: int) -> C.Schedule:
    if algorithm == "sharp":
        return sharp_all_reduce(net, members, nbytes, chunk_bytes=chunk, elems=elems, seed=seed)
    servers: dict[int, set[int]] = {}
    for g in members:
        servers.setdefault(g.server, set()).add(g.rail)
    if algorithm == "auto" and all(len(r) > 1 for r in servers.values()) \
            and len({frozenset(r) for r in servers.values()}) == 1:
        return C.hierarchical_all_reduce(net, members, nbytes, chunk_bytes=chunk, elems=elems, seed=seed)
    return C.ring_all_reduce(net, members, nbytes, chunk_bytes=chunk, elems=elems, seed=seed)


RING_STEPS = {"all_reduce": lambda d: 2 * (d - 1), "reduce_scatter": lambda d: d - 1, "all_gather": lambda d: d - 1,
              "sharp": lambda d: 2}
RING_VOLUME = {"all_reduce": lambda d: 2 * (d - 1) / d, "reduce_scatter": lambda d: (d - 1) / d,
               "all_gather": lambda d: (d - 1) / d, "sharp": lambda d: 1.0}


def _ring_closed(ep, members: list[Gpu], nbytes: int, kind: str) -> C.Schedule:
    """A collective in the cost model's closed form (build_step's ``closed_form``)."""
    d = len(members)
    sub = C.Schedule(f"closed {kind}", "all_reduce", d, nbytes)
    vol = max(1, int(round(nbytes * RING_VOLUME[kind](d))))
    for r in range(d):
        sn, dn = ep.pair(members[r], members[(r + 1) % d])
        sub.add(C.Transfer(sn, dn, vol, tag=f"ring{RING_STEPS[kind](d)}"))
    return sub


def _merge(step: C.Schedule, sub: C.Schedule, extra: Callable, prefix, plan: StepPlan, cat: str) -> list[int]:
    """Append ``sub``'s transfers to ``step`` (dependencies shifted; ``extra(transfer)`` adds
    dependencies on tasks of the step) with its buffers under ``prefix``."""
    base = len(step.transfers)
    ids = []
    for tr in sub.transfers:
        deps = tuple(sorted({dd + base for dd in tr.deps} | set(extra(tr))))
        step.transfers.append(replace(tr, deps=deps, src_key=None if tr.src_key is None else (prefix, tr.src_key),
                                      dst_key=None if tr.dst_key is None else (prefix, tr.dst_key)))
        plan.category[len(step.transfers) - 1] = cat
        ids.append(len(step.transfers) - 1)
    for key, v in sub.buffers.items():
        step.buffers[(prefix, key)] = v
    return ids


# ------------------------------------------------------------------------------------------ evaluating
def critical_times(sched: C.Schedule, cost_ps: Callable[[C.Transfer], tuple[int, int]] | None = None) -> np.ndarray:
    """Completion time of every task. ``cost_ps(transfer)`` gives a transfer's (serialization,
    latency): tasks are taken in the order they become ready (list scheduling), a transfer
    occupies its sender's and its receiver's port for its serialization (one at a time each, in
    that order) and completes a latency later. None: communication is free (the ideal pipeline:
    every task starts when its dependencies are done)."""
    import heapq
    tasks = sched.transfers
    n = len(tasks)
    done = np.zeros(n, dtype=np.int64)
    if cost_ps is None:              # tasks are in dependency order: a dependency always comes first
        for tid, tr in enumerate(tasks):
            done[tid] = max((int(done[x]) for x in tr.deps), default=0) + tr.delay_ps
        return done
    children: list[list[int]] = [[] for _ in range(n)]
    waiting = np.zeros(n, dtype=np.int64)
    ready_at = np.zeros(n, dtype=np.int64)
    for tid, tr in enumerate(tasks):
        for x in tr.deps:
            children[x].append(tid)
        waiting[tid] = len(tr.deps)
    heap = [(tr.delay_ps, tid) for tid, tr in enumerate(tasks) if not tr.deps]
    heapq.heapify(heap)
    tx: dict[int, int] = {}
    rx: dict[int, int] = {}
    while heap:
        t, tid = heapq.heappop(heap)
        tr = tasks[tid]
        if tr.compute:
            end = t
        else:
            ser, lat = cost_ps(tr)
            start = max(t, tx.get(tr.src, 0), rx.get(tr.dst, 0))
            tx[tr.src] = rx[tr.dst] = start + ser
            end = start + ser + lat
        done[tid] = end
        for c in children[tid]:
            ready_at[c] = max(ready_at[c], end)
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (int(ready_at[c]) + tasks[c].delay_ps, c))
    return done


@dataclass
class StepResult:
    """A step's time and breakdown (seconds at full scale; module docstring)."""

    label: str
    step_s: float
    compute_s: float
    tp_s: float
    bubble_s: float
    pp_s: float
    dp_s: float
    optimizer_s: float
    ideal_pipeline_s: float
    bytes_pp: int                 # payload bytes of the PP transfers (full size)
    bytes_dp: int                 # ... of the DP collectives' transfers (SHARP's: every edge of the tree)

    def row(self) -> dict:
        return {k: (round(v, 9) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    @property
    def bubble_fraction(self) -> float:
        return self.bubble_s / self.ideal_pipeline_s if self.ideal_pipeline_s else 0.0


def breakdown(plan: StepPlan, done_ps: np.ndarray, start_ps: int) -> StepResult:
    """The breakdown of a step whose tasks completed at ``done_ps`` (module docstring)."""
    s, costs, sc = plan.schedule, plan.costs, plan.scale
    par = plan.placement.par
    m = par.micro_batches
    ideal = critical_times(s)
    t_ideal = int(max(ideal[x] for x in plan.last_bwd))
    t_pipe = int(max(done_ps[x] for x in plan.last_bwd)) - start_ps
    t_step = int(done_ps.max()) - start_ps
    # the busiest stage's forwards and backwards as the schedule has them (task times rounded to
    # ps one by one, as the ideal pipeline and the run add them up: so one stage's bubble is 0 and
    # pp >= 0 exactly); its TP share is the closed form's, the rest is compute
    kstar = int(np.argmax(plan.busy_ps))
    st = costs.stages[kstar]
    busy_ps = plan.busy_ps[kstar]
    tp_ps = min(busy_ps, _ps(m * (st.tp_fwd_s + st.tp_bwd_s), sc))
    compute_ps = busy_ps - tp_ps
    bubble_ps = max(0, t_ideal - busy_ps)
    opt_ps = t_step - t_pipe if t_step - t_pipe < plan.optimizer_ps else plan.optimizer_ps
    dp_ps = t_step - t_pipe - opt_ps
    pp_ps = t_pipe - busy_ps - bubble_ps
    bytes_pp = sum(s.transfers[x].nbytes for x, c in plan.category.items() if c == "pp")
    bytes_dp = sum(s.transfers[x].nbytes for x, c in plan.category.items() if c in ("dp", "gather"))
    f = sc * 1e-12
    return StepResult(par.label(), t_step * f, compute_ps * f, tp_ps * f, bubble_ps * f, pp_ps * f, dp_ps * f,
                      opt_ps * f, t_ideal * f, int(round(bytes_pp * sc)), int(round(bytes_dp * sc)))


def run_step(net, plan: StepPlan, verb: str = "write") -> StepResult:
    """Run the step at packet level on ``net`` (built with collectives.network) and break it down."""
    res = C.Runner(net, verb=verb).run([plan.schedule])[0]
    return breakdown(plan, res.done_ps, res.start_ps)


def fabric_cost_ps(net) -> Callable[[C.Transfer], tuple[int, int]]:
    """The cost model's (serialization, latency) of a transfer: bytes at the bottleneck rate of its
    tier (NVLink inside a server; the NIC rate derated by the oversubscription of each tier it
    crosses), and the one-way latency of its path's hops there and back (the ACK)."""
    lay = RailLayout(net.fabric.params)
    prm = lay.params
    host = prm["host_rate_bps"]
    over = prm.get("oversubscription", 1.0) or 1.0
    c_over = prm.get("core_oversubscription", 1.0) or 1.0
    d0 = prm["host_delay_ps"]
    d1 = prm.get("leaf_delay_ps") or d0
    d2 = prm.get("core_delay_ps") or d0
    nv = prm["nvlink_rate_bps"]
    nvd = prm["nvlink_delay_ps"]
    cache: dict[tuple[int, int], tuple[float, int]] = {}

    def path(src: int, dst: int) -> tuple[float, int]:
        key = (src, dst)
        if key not in cache:
            a, b = lay.gpu_of(src), lay.gpu_of(dst)
            if a.server == b.server and src >= lay.num_nics:        # NVLink addresses
                cache[key] = (float(nv), 2 * nvd)
            else:
                tier = lay.tier_between(a, b)         # 1 leaf, 2 spine, 3 core
                rate = host / (over if tier >= 2 else 1) / (c_over if tier >= 3 else 1)
                lat = 2 * d0 + (2 * d1 if tier >= 2 else 0) + (2 * d2 if tier >= 3 else 0)
                cache[key] = (rate, lat)
        return cache[key]

    def cost(tr: C.Transfer) -> tuple[int, int]:
        if tr.src >= lay._agg0 or tr.dst >= lay._agg0:
            # an aggregation engine: SHARP's hop costs the NIC rate and one switch hop
            return int(tr.nbytes * 8e12 / host), 2 * d0
        rate, lat = path(tr.src, tr.dst)
        steps = int(tr.tag[4:]) if tr.tag.startswith("ring") else 1     # a closed-form collective's steps
        return int(tr.nbytes * 8e12 / rate), 2 * lat * steps
    return cost


def estimate_step(net, plan: StepPlan) -> StepResult:
    """The cost model: the step with every transfer costed by fabric_cost_ps, each port sending
    and receiving one transfer at a time (critical_times); contention inside the fabric is not
    modelled."""
    done = critical_times(plan.schedule, fabric_cost_ps(net))
    return breakdown(plan, done, 0)


__all__ = ["Model", "MODELS", "GpuSpec", "Parallelism", "Placement", "StepPlan", "StepResult", "SHARDING",
           "DP_ALGORITHMS", "job_costs", "tp_all_reduce_s", "place_ranks", "tp_groups", "build_step", "run_step",
           "estimate_step", "critical_times", "breakdown", "fabric_cost_ps"]


# ------------------------------------------------------------------------------------------ placement by cost model
def parallelisms(model: Model, n_gpus: int, gpus_per_server: int, global_batch: int, micro_batch: int = 1,
                 max_pp: int = 8, **fields) -> list[Parallelism]:
    """Every TP x PP x DP of ``n_gpus`` this module can run: TP dividing the GPUs of a server (NVLink),
    PP dividing the layers (at most ``max_pp`` stages and no more than micro-batches), DP making the
    micro-batches whole (``fields``: the other Parallelism fields, e.g. sharding)."""
    out = []
    for tp in range(1, gpus_per_server + 1):
        if gpus_per_server % tp or n_gpus % tp:
            continue
        for pp in range(1, min(model.layers, max_pp) + 1):
            if model.layers % pp or (n_gpus // tp) % pp:
                continue
            dp = n_gpus // (tp * pp)
            if global_batch % (micro_batch * dp) or global_batch // (micro_batch * dp) < pp:
                continue
            out.append(Parallelism(tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=global_batch, **fields))
    return out


def place_naive(par: Parallelism, free: list[Gpu]) -> Placement | None:
    """First fit: servers in index order, each server's free GPUs (lowest rails first) cut into TP
    groups, the first groups taken, ranks in Megatron-LM's order (tp, dp, pp). None if too few."""
    by_server: dict[int, list[Gpu]] = {}
    for g in sorted(free):
        by_server.setdefault(g.server, []).append(g)
    groups = [gs[i:i + par.tp] for gs in by_server.values() for i in range(0, len(gs) - par.tp + 1, par.tp)]
    need = par.gpus // par.tp
    if len(groups) < need:
        return None
    return place_ranks(par, [g for gs in groups[:need] for g in gs], "tp-dp-pp")


def place_random_groups(par: Parallelism, free: list[Gpu], layout: RailLayout, rng: np.random.Generator) -> Placement | None:
    """TP groups drawn at random among the servers' free GPUs (any rails), ranks in Megatron-LM's
    order: what a scheduler that only keeps TP inside a server gives."""
    by_server: dict[int, list[Gpu]] = {}
    for g in free:
        by_server.setdefault(g.server, []).append(g)
    groups = []
    for srv in by_server:
        gs = list(by_server[srv])
        rng.shuffle(gs)
        groups += [sorted(gs[i:i + par.tp]) for i in range(0, len(gs) - par.tp + 1, par.tp)]
    need = par.gpus // par.tp
    if len(groups) < need:
        return None
    pick = rng.permutation(len(groups))[:need]
    return place_ranks(par, [g for j in pick for g in groups[j]], "tp-dp-pp")


def _tp_local(pl: Placement) -> bool:
    par = pl.par
    return all(len({pl.gpus[(r, k, i)].server for i in range(par.tp)}) == 1
               for r in range(par.dp) for k in range(par.pp))


def packed_placements(par: Parallelism, free: list[Gpu], layout: RailLayout) -> dict[str, Placement]:
    """Topology-aware candidates: TP groups inside servers on the lowest free rails, servers by
    leaf group (so neighbouring groups share leaves), and the ranks ordered either with PP
    neighbours next to each other (``tp-pp-dp``: pipelines inside a leaf group, DP across) or DP
    neighbours (``tp-dp-pp``: DP rings inside a leaf group, pipelines across). Groups on the same
    rails come first, so DP peers (same TP rank) share a rail."""
    groups = tp_groups(free, par.tp, layout)
    need = par.gpus // par.tp
    if len(groups) < need:
        return {}
    by_rails: dict[tuple, list] = {}
    for gs in groups:
        by_rails.setdefault(tuple(g.rail for g in gs), []).append(gs)
    ordered = sorted(by_rails.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    chosen = [gs for _, v in ordered for gs in v][:need]
    rank_of = {rails: n for n, (rails, _) in enumerate(ordered)}
    # same rails together (DP peers, consecutive under tp-dp-pp, on one rail), then by leaf group
    chosen.sort(key=lambda gs: (rank_of[tuple(g.rail for g in gs)], layout.leaf_group(gs[0].server), gs[0].server))
    flat = [g for gs in chosen for g in gs]
    out: dict[str, Placement] = {}
    for o in ("tp-dp-pp", "tp-pp-dp"):
        pl = place_ranks(par, flat, o)
        if all(pl.gpus != other.gpus for other in out.values()):     # with pp = 1 or dp = 1 the orders agree
            out[f"packed {o}"] = pl
    return out


@dataclass
class Choice:
    """A placement the search considered: its cost-model step and, for the short list, the
    packet-level one (None if not measured)."""

    name: str
    placement: Placement
    estimate: StepResult
    measured: StepResult | None = None


def choose_placement(make_net: Callable, model: Model, free: list[Gpu], n_gpus: int, global_batch: int,
                     micro_batch: int = 1, gpu: GpuSpec = GpuSpec(), scale: float = 1.0,
                     parallelism: Parallelism | None = None, verify: int = 3, **fields) -> list[Choice]:
    """Placement by cost model. Every parallelism of ``n_gpus`` (or only ``parallelism``) on each
    packed candidate of the ``free`` GPUs (:func:`packed_placements`) is costed by
    :func:`estimate_step` on the closed-form step; the ``verify`` cheapest are then run at packet
    level on fresh networks (``make_net()``: the cost model leaves out contention inside the
    fabric, which the packet level has) and the fastest measured comes first. Returns every
    candidate, best first (measured ones by measured time, then the others by estimate; ties:
    fewer servers, then the name)."""
    net = make_net()
    lay = RailLayout(net.fabric.params)
    pars = [parallelism] if parallelism is not None else parallelisms(model, n_gpus, lay.R, global_batch, micro_batch,
                                                                       **fields)
    out = []
    for par in pars:
        if model.layers % par.pp:
            continue
        for name, pl in packed_placements(par, free, lay).items():
            plan = build_step(net, model, par, pl, gpu, scale, closed_form=True)
            out.append(Choice(f"{par.label()} {name}", pl, estimate_step(net, plan)))
    if not out:
        raise ValueError(f"placement: no parallelism of {n_gpus} GPUs fits the {len(free)} free GPUs with TP inside "
                         "a server")

    def servers(c: Choice) -> int:
        return len({g.server for g in c.placement.all()})
    out.sort(key=lambda c: (c.estimate.step_s, servers(c), c.name))
    for c in out[:max(0, int(verify))]:
        n = make_net()
        c.measured = run_step(n, build_step(n, model, c.placement.par, c.placement, gpu, scale))
    out.sort(key=lambda c: (c.measured is None, c.measured.step_s if c.measured else c.estimate.step_s,
                            servers(c), c.name))
    return out


__all__ += ["parallelisms", "place_naive", "place_random_groups", "packed_placements", "Choice", "choose_placement"]
