"""Training steps on the AI fabric (controlplane/ai/training.py): a step of TP x PP x DP with 1F1B and
bucketed DP collectives, run at packet level with compute as delays between dependent transfers.

What is checked, each against a stated expectation: a pure data-parallel step is its compute, the
all-reduce measured alone and the optimizer; the 1F1B pipeline's bubble is (p-1)/(m+p-1) of the
ideal pipeline (m+p-1)(F+B) (Narayanan et al., SC'21, Sec. 2.2); the payloads sum to their closed
forms (PP: 2(p-1) m per pipeline and TP rank of b s h 2 / t bytes; DP: the ring's 2(d-1) x the
gradient bytes, ZeRO's reduce-scatter + all-gather alike, ZeRO-3's three passes 1.5 x); the carried
vectors of the DP collectives are the sums over replicas; the breakdown's terms are >= 0 and add up
to the step; determinism; the cost model and the miniature (``scale``) against the packet-level
step within measured tolerances; bad input names its field.

The fabric: a rail_clos of 4 rails x 4 servers (2 per leaf, 2 leaves per rail, 2 spines per rail,
2 cores per group), 100 Gb/s NICs with 1 us links, NVLink 3.6 Tb/s with 100 ns.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from controlplane.ai import collectives as C
from controlplane.ai import training as T
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.config.units import Gbps, ns, us
from controlplane.run.experiment import rail_scenario

TOPO = {"host_rate_bps": Gbps(100), "host_delay_ps": us(1), "num_rails": 4, "servers_per_leaf": 2,
        "leaves_per_rail": 2, "spines_per_rail": 2, "cores_per_group": 2, "nvlink_rate_bps": Gbps(3600),
        "nvlink_delay_ps": ns(100)}
# 4 layers of h = 256 (786 K parameters each: 3.1 M), s = 256: ~1.7 us of compute per layer and
# micro-batch on the default H100 roofline, 128 KB of activations per micro-batch
TINY = T.Model("tiny", layers=4, hidden=256, seq_len=256, vocab=0)
# 8 layers of h = 1024 and a 8000-word vocabulary (117 M parameters), s = 1024: compute-bound
# enough that a step is milliseconds, as a real one is seconds
SMALL = T.Model("small", layers=8, hidden=1024, seq_len=1024, vocab=8000)


def net_of(**topo):
    return C.network(rail_scenario("training", {**TOPO, **topo}, "none", 1))


def placement(net, par: T.Parallelism, gpus=None, order: str = "tp-dp-pp") -> T.Placement:
    """Megatron's rank order over the fabric's GPUs cut into TP groups (one server each)."""
    lay = RailLayout(net.fabric.params)
    if gpus is None:
        gpus = [g for grp in T.tp_groups(lay.gpus(), par.tp, lay) for g in grp][:par.gpus]
    return T.place_ranks(par, gpus, order)


def run(par: T.Parallelism, model: T.Model = TINY, gpus=None, scale: float = 1, elems: int = 0, **topo):
    net = net_of(**topo)
    plan = T.build_step(net, model, par, placement(net, par, gpus), scale=scale, elems=elems, seed=3)
    return net, plan, T.run_step(net, plan)


def ps(seconds: float) -> int:
    """A StepResult time (s, from an integer number of ps at scale 1) back in ps."""
    return round(seconds * 1e12)


TERMS = ("compute_s", "tp_s", "bubble_s", "pp_s", "dp_s", "optimizer_s")


def assert_breakdown(r: T.StepResult) -> None:
    """Every term >= 0 and the terms add up to the step (float rounding of six sums)."""
    for k in TERMS:
        assert getattr(r, k) >= 0, (k, r.row())
    assert sum(getattr(r, k) for k in TERMS) == pytest.approx(r.step_s, rel=1e-12, abs=1e-18)


# ------------------------------------------------------------------ 2. pure data parallelism
def test_a_pure_dp_step_is_compute_plus_the_all_reduce_alone_plus_the_optimizer():
    """pp = 1, tp = 1, d = 4 GPUs on rail 0 of four servers (one each, two leaves), one bucket (every
    parameter): nothing overlaps the all-reduce, so the step is the m forwards and backwards, the
    ring all-reduce of the 6.3 MB of gradients (same members, bytes and chunk) as measured alone on
    a fresh network, and the optimizer. Exact to the picosecond: the data plane is idle until the
    last backward ends, and the ring's QPs are opened in the same order (the same source ports,
    so the same ECMP paths), so its packets are the same, only later."""
    par = T.Parallelism(tp=1, pp=1, dp=4, global_batch=8, bucket_params=10 ** 9, dp_algorithm="ring")
    gpus = [Gpu(s, 0) for s in range(4)]
    net, plan, r = run(par, gpus=gpus)
    st = plan.costs.stages[0]
    assert st.grad_bytes == TINY.params * 2
    alone_net = net_of()
    alone = C.run_collective(alone_net, C.ring_all_reduce(alone_net, gpus, st.grad_bytes,
                                                          chunk_bytes=par.chunk_bytes))
    m = par.micro_batches
    busy = m * (T._ps(st.fwd_s, 1) + T._ps(st.bwd_s, 1))          # the step's tasks, rounded one by one
    assert ps(r.dp_s) == alone.time_ps
    assert ps(r.step_s) == busy + alone.time_ps + T._ps(st.optimizer_s, 1)
    assert (ps(r.compute_s), r.tp_s, r.bubble_s, r.pp_s) == (busy, 0, 0, 0)
    assert ps(r.optimizer_s) == T._ps(st.optimizer_s, 1)


def test_a_pure_dp_step_with_tp_across_a_server_matches_its_rails_all_reduces():
    """tp = 4 (a whole server), d = 4 servers: one ring per TP rank, each on its own rail. The step's
    DP phase is the longest of the four, measured together on a fresh network as four schedules:
    equal within 2.1 %. Not exact: the step opens its QPs in another order, so they draw other
    source ports, and on some ECMP choices a ring's ACKs (86 B per 4178 B data packet on the wire:
    2.1 %) share a spine link with the other direction's data (measured: 0.15 %)."""
    par = T.Parallelism(tp=4, pp=1, dp=4, global_batch=8, bucket_params=10 ** 9)
    net, plan, r = run(par)
    grad = plan.costs.stages[0].grad_bytes
    G = plan.placement.gpus
    together = net_of()
    rings = [C.ring_all_reduce(together, [G[(q, 0, i)] for q in range(4)], grad, chunk_bytes=par.chunk_bytes)
             for i in range(4)]
    assert all(len({g.rail for g in (G[(q, 0, i)] for q in range(4))}) == 1 for i in range(4))
    slowest = max(x.time_ps for x in C.Runner(together).run(rings))
    assert ps(r.dp_s) == pytest.approx(slowest, rel=0.021)
    st = plan.costs.stages[0]
    tp = T._ps(par.micro_batches * (st.tp_fwd_s + st.tp_bwd_s), 1)
    assert ps(r.step_s) == ps(r.compute_s) + tp + ps(r.dp_s) + T._ps(st.optimizer_s, 1)
    assert ps(r.tp_s) == tp


def test_gradient_buckets_overlap_the_last_backward():
    """d = 4 on rail 0, pp = tp = 1, the 117 M-parameter model at scale 16 (the all-reduce of its
    234 MB of gradients, ~29 ms, dwarfs the ~1 ms last backward). In 12 buckets of 10 M parameters
    bucket q's all-reduce starts when the q-th piece of the last backward is done, so the DP phase
    left after the backward shrinks by what of the backward follows the first piece, (nb-1)/nb of it,
    as the ring is bandwidth-bound (measured: 99.3 % of that; at least 90 %, at most 101 %: the
    twelve rings' extra steps cost a little latency)."""
    gpus = [Gpu(s, 0) for s in range(4)]
    dp = {}
    for bucket in (10 ** 9, 10 ** 7):
        par = T.Parallelism(tp=1, pp=1, dp=4, global_batch=8, bucket_params=bucket, dp_algorithm="ring")
        net, plan, r = run(par, model=SMALL, gpus=gpus, scale=16)
        assert_breakdown(r)
        dp[bucket] = r.dp_s
    nb = math.ceil(SMALL.params / 10 ** 7)
    assert nb == 12
    overlap = plan.costs.stages[0].bwd_s * (nb - 1) / nb
    assert 0.90 * overlap <= dp[10 ** 9] - dp[10 ** 7] <= 1.01 * overlap


# ------------------------------------------------------------------ 3. the pipeline bubble
@pytest.mark.parametrize("p,m", [(2, 1), (2, 4), (3, 6), (4, 2), (4, 8), (8, 8)])
def test_the_1f1b_bubble_is_p_minus_1_over_m_plus_p_minus_1(p, m):
    """Equal stages (vocab = 0, 24 layers), p stages, m micro-batches, tp = dp = 1: the ideal 1F1B
    pipeline (communication free) lasts (m+p-1)(F+B) and its bubble is (p-1)/(m+p-1) of it
    (Narayanan et al., SC'21, Sec. 2.2): exact in ps, since the step's tasks are rounded to ps one
    by one and add up. At packet level the pipeline ends pp_s >= 0 after the ideal one (the PP
    transfers on its critical path); at most 2(m+p-1) transfers of the step's slowest activation
    transfer measured alone (one after each forward and each backward of the ideal path's m+p-1
    F+B slots; measured: 2 to 16 transfers' worth, NVLink within a server for p <= 4, a NIC hop
    across servers for p = 8)."""
    model = T.Model("equal", layers=24, hidden=256, seq_len=256, vocab=0)
    par = T.Parallelism(tp=1, pp=p, dp=1, global_batch=m)
    net = net_of()
    lay = RailLayout(net.fabric.params)
    pl = T.place_ranks(par, lay.gpus()[:p])
    plan = T.build_step(net, model, par, pl)
    r = T.run_step(net, plan)
    st = plan.costs.stages[0]
    F, B = T._ps(st.fwd_s, 1), T._ps(st.bwd_s, 1)
    assert ps(r.ideal_pipeline_s) == (m + p - 1) * (F + B)
    assert ps(r.bubble_s) == (p - 1) * (F + B)
    assert r.bubble_fraction == pytest.approx((p - 1) / (m + p - 1), rel=1e-12)
    assert ps(r.compute_s) == m * (F + B) and r.tp_s == 0 and r.dp_s == 0
    # the activation transfers one by one, alone on a fresh network
    ep = C.Endpoints(net)
    slowest = 0
    for k in range(p - 1):
        alone = net_of()
        s = C.Schedule("act", "all_reduce", 2, 1)
        s.add(C.Transfer(*ep.pair(pl.gpus[(0, k, 0)], pl.gpus[(0, k + 1, 0)]), plan.costs.act_bytes))
        slowest = max(slowest, C.run_collective(alone, s).time_ps)
    assert 0 <= ps(r.pp_s) <= 2 * (m + p - 1) * slowest
    assert_breakdown(r)


# ------------------------------------------------------------------ 4. the payloads
def test_pp_and_dp_bytes_are_their_closed_forms_and_the_dp_vectors_sum_the_replicas():
    """TP2 x PP2 x DP2, 8 sequences of s = 256, h = 256 with a 1000-word vocabulary, buckets of
    100 K parameters (10 per stage), ring all-reduces:
    - PP: each of the 2(p-1) m transfers per pipeline and TP rank carries b s h 2 / t bytes
      (Megatron's scatter/gather: 1/t of the activations per TP rank): 2 (p-1) m d t x that;
    - DP: a ring all-reduce moves 2(d-1) x its buffer over all members (each sends 2(d-1)/d of
      it); the buckets split each stage's gradient bytes exactly (scale 1): t x sum over stages of
      2(d-1) x the GPU's gradient bytes (2 per parameter of its 1/t shard);
    - the vector each DP all-reduce carries (13 elements, bucket q of TP rank i of stage k under
      the prefix ("dp", k, i, q)) ends on every replica as the sum of the replicas' inputs;
    - at scale 4 the bytes scaled back are within the rounding of each bucket to whole bytes."""
    model = T.Model("tiny-vocab", layers=4, hidden=256, seq_len=256, vocab=1000)
    par = T.Parallelism(tp=2, pp=2, dp=2, global_batch=8, bucket_params=100_000, dp_algorithm="ring")
    net = net_of()
    plan = T.build_step(net, model, par, placement(net, par), elems=13, seed=3)
    init = {k: v.copy() for k, v in plan.schedule.buffers.items()}
    res = C.Runner(net).run([plan.schedule])[0]
    r = T.breakdown(plan, res.done_ps, res.start_ps)
    b, s, h, t, p, d, m = 1, 256, 256, 2, 2, 2, par.micro_batches
    act = b * s * h * 2 // t
    assert plan.costs.act_bytes == act
    assert r.bytes_pp == 2 * (p - 1) * m * d * t * act == 2 * 4 * 2 * 2 * 65536
    grads = [st.grad_bytes for st in plan.costs.stages]
    assert grads == [round((2 * 786432 + 1000 * 256) / t) * 2] * 2       # two layers and an embedding/head
    assert r.bytes_dp == t * sum(2 * (d - 1) * g for g in grads)
    # the DP buffers: one prefix per (stage, TP rank, bucket), the sum of the replicas everywhere
    nb = [math.ceil(st.params / t / par.bucket_params) for st in plan.costs.stages]
    assert nb == [10, 10]
    prefixes = {key[0] for key in plan.schedule.buffers}
    assert prefixes == {("dp", k, i, q) for k in range(p) for i in range(t) for q in range(nb[k])}
    G = plan.placement.gpus
    for (_, k, i, q) in prefixes:
        members = [G[(rep, k, i)] for rep in range(d)]
        total = sum(init[(("dp", k, i, q), ("buf", g))] for g in members)
        assert total.any()
        for g in members:
            np.testing.assert_array_equal(res.buffers[(("dp", k, i, q), ("buf", g))], total)
    # at scale 4: each bucket's slice is rounded to whole bytes (<= 1/2 byte), its ring moves
    # 2(d-1) x that, scaled back x 4
    net4 = net_of()
    plan4 = T.build_step(net4, model, par, placement(net4, par), scale=4)
    r4 = T.estimate_step(net4, plan4)
    assert abs(r4.bytes_dp - r.bytes_dp) <= t * sum(nb) * 2 * (d - 1) * 0.5 * 4
    assert r4.bytes_pp == r.bytes_pp                                    # 65536 / 4 is whole


# ------------------------------------------------------------------ 5. the breakdown
@pytest.mark.parametrize("par", [
    T.Parallelism(tp=2, pp=2, dp=2, global_batch=8, bucket_params=100_000),
    T.Parallelism(tp=1, pp=4, dp=4, global_batch=16, bucket_params=200_000, dp_algorithm="ring"),
    T.Parallelism(tp=4, pp=2, dp=2, global_batch=8, sharding="optimizer"),
    T.Parallelism(tp=4, pp=2, dp=2, global_batch=8, sharding="full"),
], ids=lambda p: f"{p.label()}-{p.sharding}")
def test_the_breakdown_terms_are_non_negative_and_add_up_to_the_step(par):
    """At packet level and in the cost model, at scale 1 and 4."""
    for scale in (1, 4):
        net, plan, r = run(par, scale=scale)
        assert_breakdown(r)
        assert_breakdown(T.estimate_step(net, plan))


@pytest.mark.parametrize("model,tp,gb", [(TINY, 1, 8), (TINY, 4, 8), (T.Model("odd", 4, 64, 64, 0), 4, 8),
                                         (T.Model("odd", 4, 64, 100, 0), 1, 3)], ids=["tp1", "tp4", "h64", "s100"])
def test_one_stage_one_replica_is_compute_plus_tp_plus_optimizer_exactly(model, tp, gb):
    """p = d = 1: no bubble, no PP, no DP: the step is the m forwards and backwards (their TP
    all-reduces included) and the optimizer, to the picosecond. TP: two all-reduces of b s h 2 bytes
    per layer and pass, each 2(t-1)/t x bytes over NVLink + 2(t-1) NVLink round trips. The h = 64
    and s = 100 cases left bubble_s = 1..5 ps and pp_s = -1 ps before the breakdown took the
    busiest stage's time from its tasks as rounded to ps rather than rounding the sum."""
    par = T.Parallelism(tp=tp, pp=1, dp=1, global_batch=gb)
    net, plan, r = run(par, model=model)
    st = plan.costs.stages[0]
    m = gb
    assert (r.bubble_s, r.pp_s, r.dp_s) == (0, 0, 0)
    assert ps(r.step_s) == ps(r.compute_s) + ps(r.tp_s) + ps(r.optimizer_s)
    assert ps(r.step_s) == m * (T._ps(st.fwd_s + st.tp_fwd_s, 1) + T._ps(st.bwd_s + st.tp_bwd_s, 1)) \
        + T._ps(st.optimizer_s, 1)
    ar = 2 * (tp - 1) / tp * model.seq_len * model.hidden * 2 * 8 / Gbps(3600) + 2 * (tp - 1) * 2 * ns(100) * 1e-12
    assert r.tp_s == pytest.approx(m * 2 * model.layers * 2 * ar, abs=1e-12)
    assert r.compute_s == pytest.approx(m * (st.fwd_s + st.bwd_s), abs=m * 1e-12)


def test_a_step_is_deterministic():
    """The same step on two fresh networks: bit-identical completion times of every task."""
    par = T.Parallelism(tp=2, pp=2, dp=2, global_batch=8, bucket_params=100_000)
    done = []
    for _ in range(2):
        net = net_of()
        plan = T.build_step(net, TINY, par, placement(net, par))
        done.append(C.Runner(net).run([plan.schedule])[0].done_ps)
    assert (done[0] >= 0).all()
    np.testing.assert_array_equal(done[0], done[1])


# ------------------------------------------------------------------ 6. the cost model and the miniature
@pytest.mark.parametrize("par", [
    T.Parallelism(tp=4, pp=1, dp=4, global_batch=8),
    T.Parallelism(tp=2, pp=2, dp=4, global_batch=8),
    T.Parallelism(tp=4, pp=2, dp=2, global_batch=8, sharding="optimizer"),
], ids=lambda p: f"{p.label()}-{p.sharding}")
def test_the_cost_model_is_within_10_percent_of_the_packet_level_step(par):
    """estimate_step (each transfer its bytes at the tier's rate plus the path's latency there and
    back, one transfer at a time per port) against the packet-level step at scale 4 on the
    117 M-parameter model: within 10 % (measured: 3.3, 5.2 and 5.4 % below). The model leaves out
    the headers (4178 B on the wire per 4096 B of payload: 2 %), the ACKs sharing the links (86 B
    per data packet: 2 %), store-and-forward per hop and ECMP collisions inside the fabric.
    (Not within it: many small buckets, where a port's FIFO in the model holds a PP transfer
    behind the queued DP chunks that a fair share at packet level lets it pass: +18 to +21 % with
    1 M and 100 K parameter buckets on TP4xPP2xDP2, scales 1 and 4.)"""
    net, plan, r = run(par, model=SMALL, scale=4)
    est = T.estimate_step(net, plan)
    assert est.step_s == pytest.approx(r.step_s, rel=0.10)
    # what does not depend on the network is the same in both
    for k in ("compute_s", "tp_s", "bubble_s", "ideal_pipeline_s", "bytes_pp", "bytes_dp"):
        assert getattr(est, k) == getattr(r, k), k


@pytest.mark.parametrize("par", [
    T.Parallelism(tp=4, pp=1, dp=4, global_batch=8),
    T.Parallelism(tp=2, pp=2, dp=4, global_batch=8),
], ids=lambda p: p.label())
def test_a_miniature_step_keeps_the_step_time(par):
    """scale = 4 divides every byte and compute time by 4 and multiplies the times back: the
    bandwidth-bound phases keep their time, each latency (a hop, an ACK, a ring step) weighs 4 x
    more. On the 117 M-parameter model (steps of 4.4-8.8 ms) the miniature is slower by at most
    5 %: an extra 3 x ~4 us round trip (2 hops of 1 us each way) per latency-bound step on the
    critical path, 2(d-1) ring steps per bucket and 2(m+p-1) PP transfers (measured: +0.3 and
    +1.9 %), and scale 16 more so (+7.4, +10 %)."""
    runs = {scale: run(par, model=SMALL, scale=scale)[1:] for scale in (1, 4, 16)}
    steps = {scale: r for scale, (_, r) in runs.items()}
    assert steps[1].step_s <= steps[4].step_s <= 1.05 * steps[1].step_s
    assert steps[16].step_s > steps[4].step_s
    for scale in (4, 16):
        # the compute side is the same whatever the scale, but for each task's rounding to whole
        # ps at the miniature's size (<= 1/2 ps each, x scale)
        rounding = len(runs[scale][0].compute_ids) * scale / 2 * 1e-12
        assert steps[scale].compute_s == pytest.approx(steps[1].compute_s, abs=rounding)
        assert steps[scale].bubble_s == pytest.approx(steps[1].bubble_s, abs=rounding)


# ------------------------------------------------------------------ 7. bad input
def test_parallelism_rejects_bad_input_naming_the_field():
    with pytest.raises(ValueError, match=r"global_batch \(12\) must be a multiple of micro_batch x dp \(2 x 4\)"):
        T.Parallelism(dp=4, micro_batch=2, global_batch=12)
    with pytest.raises(ValueError, match=r"sharding must be one of \['none', 'optimizer', 'full'\], got 'zero'"):
        T.Parallelism(sharding="zero")
    with pytest.raises(ValueError, match=r"dp_algorithm must be one of \['auto', 'ring', 'sharp'\], got 'tree'"):
        T.Parallelism(dp_algorithm="tree")
    with pytest.raises(ValueError, match=r"dp_algorithm: sharp .* use sharding = none with sharp"):
        T.Parallelism(dp_algorithm="sharp", sharding="optimizer")
    for field, bad in (("tp", 0), ("pp", -1), ("dp", 1.5), ("micro_batch", True), ("bucket_params", 0),
                       ("chunk_bytes", None)):
        with pytest.raises(ValueError, match=rf"^{field} must be a positive integer"):
            T.Parallelism(**{field: bad})
    with pytest.raises(ValueError, match=r"optimizer_bytes_per_param must be an integer >= 0"):
        T.Parallelism(optimizer_bytes_per_param=-1)
    with pytest.raises(ValueError, match=r"model.vocab must be an integer >= 0"):
        T.Model("m", 4, 256, 256, vocab=-1)
    with pytest.raises(ValueError, match=r"gpu.efficiency must be in \(0, 1\]"):
        T.GpuSpec(efficiency=1.5)


def test_job_costs_rejects_pp_not_dividing_layers_and_tp_without_nvlink():
    with pytest.raises(ValueError, match=r"pp \(3\) must divide the model's layers \(4\)"):
        T.job_costs(TINY, T.Parallelism(pp=3, global_batch=3), T.GpuSpec(), Gbps(3600), ns(100))
    with pytest.raises(ValueError, match=r"tp = 2: tensor parallelism runs over NVLink; .*nvlink_rate_bps = 0"):
        T.job_costs(TINY, T.Parallelism(tp=2), T.GpuSpec(), 0, 0)
    net = net_of(nvlink_rate_bps=0)                    # the same through build_step on a fabric without NVLink
    par = T.Parallelism(tp=2)
    with pytest.raises(ValueError, match=r"tp = 2: .*nvlink_rate_bps = 0"):
        T.build_step(net, TINY, par, T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1)]))


def test_build_step_and_place_ranks_reject_bad_input_naming_the_field():
    net = net_of()
    par = T.Parallelism(tp=2, dp=2, global_batch=8)
    across = T.place_ranks(par, [Gpu(0, 0), Gpu(1, 0), Gpu(2, 0), Gpu(3, 0)])   # TP pairs on two servers
    with pytest.raises(ValueError, match=r"placement: the TP group of replica 0, stage 0 spans servers"):
        T.build_step(net, TINY, par, across)
    ok = T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1), Gpu(1, 0), Gpu(1, 1)])
    for bad in (0.5, 0, float("nan")):
        with pytest.raises(ValueError, match=r"^scale must be"):
            T.build_step(net, TINY, par, ok, scale=bad)
    with pytest.raises(ValueError, match=r"placement: made for another parallelism"):
        T.build_step(net, TINY, T.Parallelism(tp=2, dp=2, global_batch=4), ok)
    with pytest.raises(ValueError, match=r"placement\[\(1, 0, 0\)\] Gpu\(server=9, rail=0\) is not in the fabric \(4 servers x 4 rails\)"):
        T.build_step(net, TINY, par, T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1), Gpu(9, 0), Gpu(9, 1)]))
    with pytest.raises(ValueError, match=r"placement: TP2xPP1xDP2 needs 4 GPUs, got 3"):
        T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1), Gpu(1, 0)])
    for order in ("tp-dp", "tp-dp-dp", "tp-pp-xx", "tp,dp,pp"):
        with pytest.raises(ValueError, match=r"order must name tp, dp and pp once each"):
            T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1), Gpu(1, 0), Gpu(1, 1)], order)
    with pytest.raises(ValueError, match=r"placement: a GPU holds two ranks"):
        T.place_ranks(par, [Gpu(0, 0), Gpu(0, 1), Gpu(0, 0), Gpu(1, 1)])


def test_place_ranks_orders_the_dimensions_first_fastest():
    """Megatron's default tp-dp-pp: consecutive GPUs are a TP group, then the replicas, then the
    stages; pp-tp-dp puts consecutive GPUs in consecutive stages."""
    par = T.Parallelism(tp=2, pp=2, dp=2, global_batch=8)
    gpus = [Gpu(s, r) for s in range(2) for r in range(4)]
    pl = T.place_ranks(par, gpus)
    assert [pl.gpus[(0, 0, 0)], pl.gpus[(0, 0, 1)], pl.gpus[(1, 0, 0)], pl.gpus[(0, 1, 0)]] == \
        [gpus[0], gpus[1], gpus[2], gpus[4]]
    pl = T.place_ranks(par, gpus, "pp-tp-dp")
    assert [pl.gpus[(0, 0, 0)], pl.gpus[(0, 1, 0)], pl.gpus[(0, 0, 1)], pl.gpus[(1, 0, 0)]] == \
        [gpus[0], gpus[1], gpus[2], gpus[4]]


# ------------------------------------------------------------------ 8. sharded optimizers and SHARP
@pytest.mark.parametrize("sharding,passes", [("none", 2), ("optimizer", 2), ("full", 3)])
def test_sharded_steps_move_their_closed_form_bytes(sharding, passes):
    """Per DP group of d GPUs with G gradient bytes each, a ring moves (d-1) G per pass over all
    members: an all-reduce is two (reduce-scatter + all-gather); ZeRO-1 (optimizer) is a
    reduce-scatter of the gradients and an all-gather of the updated parameters: the same 2
    (Rajbhandari et al., SC'20, Sec. 7.2.1); ZeRO-3 (full) all-gathers the parameters before the
    forward and again before the backward, and reduce-scatters the gradients: 3 (Sec. 7.2.2:
    1.5 x the data-parallel baseline), with no gather after the optimizer. The optimizer's pass
    is over 1/d of the parameters when sharded. The reduce-scatter's vectors: replica r ends with
    the sum over replicas of segment r of each bucket."""
    par = T.Parallelism(tp=4, pp=2, dp=2, global_batch=8, bucket_params=100_000, sharding=sharding,
                        dp_algorithm="ring")
    net = net_of()
    plan = T.build_step(net, TINY, par, placement(net, par), elems=11, seed=3)
    init = {k: v.copy() for k, v in plan.schedule.buffers.items()}
    res = C.Runner(net).run([plan.schedule])[0]
    r = T.breakdown(plan, res.done_ps, res.start_ps)
    assert_breakdown(r)
    t, p, d = 4, 2, 2
    grads = [st.grad_bytes for st in plan.costs.stages]
    assert grads == [2 * 786432 // 4 * 2] * 2
    assert r.bytes_dp == t * sum(passes * (d - 1) * g for g in grads)
    opt = T._ps(plan.costs.stages[0].params / t / (d if sharding != "none" else 1) * 16 / 3.35e12, 1)
    assert ps(r.optimizer_s) == opt
    if sharding == "none":
        return
    G = plan.placement.gpus
    seg = C._split(11, d)
    buckets = {key[0] for key in plan.schedule.buffers if key[0][0] == "dp"}
    assert len(buckets) == p * t * math.ceil(2 * 786432 / t / 100_000)
    for (_, k, i, q) in buckets:
        members = [G[(rep, k, i)] for rep in range(d)]
        total = sum(init[(("dp", k, i, q), ("buf", g))] for g in members)
        for rep, g in enumerate(members):
            lo, hi = seg[rep]
            np.testing.assert_array_equal(res.buffers[(("dp", k, i, q), ("buf", g))][lo:hi], total[lo:hi])


def test_a_sharp_step_runs_and_sums_the_replicas():
    """dp_algorithm = sharp on a fabric built with sharp = True: d = 4 GPUs on rail 0 of four servers
    (the tree: two leaves under a spine of rail 0), one bucket. Every replica ends with the sum of
    the replicas' vectors; each member's NIC WRITEs its G bytes up the tree and is written G down
    (against 2(d-1)/d G = 1.5 G each way for a ring), so the DP phase is shorter than the ring's on
    the same fabric."""
    par = T.Parallelism(tp=1, pp=1, dp=4, global_batch=8, bucket_params=10 ** 9, dp_algorithm="sharp")
    gpus = [Gpu(s, 0) for s in range(4)]
    net = net_of(sharp=True, sharp_latency_ps=ns(500))
    plan = T.build_step(net, TINY, par, placement(net, par, gpus), elems=7, seed=3)
    init = {k: v.copy() for k, v in plan.schedule.buffers.items()}
    res = C.Runner(net).run([plan.schedule])[0]
    r = T.breakdown(plan, res.done_ps, res.start_ps)
    assert_breakdown(r)
    total = sum(init[(("dp", 0, 0, 0), ("buf", g))] for g in gpus)
    assert total.any()
    for g in gpus:
        np.testing.assert_array_equal(res.buffers[(("dp", 0, 0, 0), ("buf", g))], total)
    lay = RailLayout(net.fabric.params)
    grad = plan.costs.stages[0].grad_bytes
    for g in gpus:
        nic = lay.nic(g.server, g.rail)
        assert res.bytes_sent[nic] == grad and res.bytes_received[nic] == grad
    ring = run(T.Parallelism(tp=1, pp=1, dp=4, global_batch=8, bucket_params=10 ** 9, dp_algorithm="ring"),
               gpus=gpus, sharp=True, sharp_latency_ps=ns(500))[2]
    assert r.dp_s < ring.dp_s
    assert r.step_s - r.dp_s == pytest.approx(ring.step_s - ring.dp_s, abs=1e-15)
