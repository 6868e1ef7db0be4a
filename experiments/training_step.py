"""Training step: where the time of one training step goes, on which placement, and what a failed link costs.

The model is controlplane/ai/training.py (docs/training.md): a decoder-only transformer trained
with TP x PP x DP on a rail-optimized fabric, the 1F1B pipeline schedule, gradients reduced in
buckets overlapped with the last backward pass, compute from a roofline (H100-like, 50 % of peak),
TP all-reduces over NVLink in closed form, PP and DP transfers at packet level. Three questions:

1. Breakdown. For each job in ``jobs`` ("model/GPUs/tpX-ppY-dpZ"; models 7b, 13b, 70b: Llama-2
   shapes with a standard layer) and each path policy in ``variants`` (ecmp: go-back-N; spray:
   spray_rr, out of order; ar: adaptive routing), with and without SHARP (``sharp``: the DP
   all-reduce through the switches' aggregation engines): the step time split into compute,
   exposed TP, pipeline bubble, exposed PP, exposed DP and optimizer, and the cost model's
   estimate beside it.
2. Placement. On a shared fabric of ``place_servers`` servers where ``background_jobs`` jobs of
   ``background_gpus`` GPUs were placed at random first, a ``place_model`` job of ``place_gpus``
   GPUs: the cost model searches every TP x PP x DP and two rank orders on topology-aware GPU
   choices and checks its ``verify`` best at packet level; naive (first fit, Megatron's rank order)
   and random placement (random TP groups) run the parallelism it chose.
3. A link down. The first job with one leaf-spine link of rail 0 down for the whole step, per path
   policy, on a fabric with ``link_down_oversubscription``:1 leaf uplinks: the step-time factor
   effective_training_time takes as ``link_down_slowdown`` (its ``link_down_policy``). On a
   non-blocking rail fabric the rings' one flow per direction across a leaf group fits in the
   uplinks left, and the factor is 1.

Every packet run is a miniature: bytes and compute divided by ``scale``, times multiplied back
(docs/training.md, "Scale"). Default fabric: 8 GPUs (rails) per server, 4 servers per leaf,
2 spines per rail, 2 cores per group, 400 Gb/s NICs, NVLink 3.6 Tb/s, DCQCN. Writes
results/training_step/training_step.csv, training_placement.csv, training_link_down.csv and
training_step.png.

    softdpu run training_step
    softdpu run training_step --set 'jobs=["7b/64/tp8-pp1-dp8"]' --set 'variants=["ecmp"]'
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from controlplane.ai import collectives as C
from controlplane.ai import training as T
from controlplane.ai.placement import Occupancy, place_random
from controlplane.ai.rails import RailLayout
from controlplane.config.units import Gbps, ns, us
from controlplane.run.experiment import (AI_PATH_VARIANTS, RATE_GBPS, CcSpec, Count, ExperimentParams, Flag, Item,
                                         ListOf, OneOf, Real, Scaled, apply_overrides, collective_experiment_setup,
                                         for_each_in_order, rail_scenario, write_csv)

JOB_RE = re.compile(r"^(?P<model>[0-9a-z]+)/(?P<gpus>[0-9]+)/tp(?P<tp>[0-9]+)-pp(?P<pp>[0-9]+)-dp(?P<dp>[0-9]+)$")


class Params(ExperimentParams):
    """training_step's parameters."""
    jobs: ListOf(Item("text"), "jobs as model/GPUs/tpX-ppY-dpZ (models: 7b, 13b, 70b)", unique=True) = \
        ["7b/64/tp8-pp1-dp8", "7b/64/tp4-pp2-dp8", "70b/256/tp8-pp8-dp4"]
    global_batch: Count("sequences per step (4,096 tokens each)") = 128
    micro_batch: Count("sequences per micro-batch") = 1
    sharding: OneOf(T.SHARDING, "optimizer/parameter sharding: none, optimizer (ZeRO-1), full (ZeRO-3)") = "none"
    variants: ListOf(Item("choice", tuple(AI_PATH_VARIANTS)), "path policies: ecmp, spray, ar", unique=True) = \
        ["ecmp", "spray", "ar"]
    sharp: ListOf(Item("choice", ("off", "on")), "without and/or with SHARP for the DP all-reduce",
                  unique=True) = ["off", "on"]
    scale: Real("miniature factor: bytes and compute / scale, times x scale (1 = full size)", lo=1) = 64
    rate_gbps: Scaled("rate", "Gb/s", "GPU NIC link rate", **RATE_GBPS) = 400
    nvlink_gbps: Scaled("rate", "Gb/s", "NVLink bandwidth per GPU", **RATE_GBPS) = 3600
    servers_per_leaf: Count("servers under each leaf") = 4
    spines_per_rail: Count("spine switches per rail") = 2
    cores_per_group: Count("core switches per group") = 2
    efficiency: Real("achieved share of the GPU's peak FLOP/s", lo_open=True, hi=1) = 0.5
    place_model: OneOf(tuple(T.MODELS), "the placed job's model") = "7b"
    place_gpus: Count("GPUs of the placed job") = 64
    place_servers: Count("servers of the shared fabric for the placement") = 16
    background_jobs: Count("jobs placed at random before it", lo=0) = 8
    background_gpus: Count("GPUs per background job") = 4
    verify: Count("cheapest candidates the search checks at packet level", lo=0) = 2
    oversubscription: Real("leaf uplink oversubscription of the fabric (1 = non-blocking)", lo=1) = 1
    link_down: Flag("measure the first job with one leaf-spine link of rail 0 down") = True
    link_down_oversubscription: Real("leaf uplink oversubscription of the link-down runs", lo=1) = 4
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"


PARAMS = Params.defaults()


def parse_job(text: str) -> tuple[T.Model, int, tuple[int, int, int]]:
    m = JOB_RE.match(text)
    if not m:
        raise ValueError(f"jobs: {text!r} is not model/GPUs/tpX-ppY-dpZ (e.g. 7b/64/tp8-pp1-dp8)")
    if m["model"] not in T.MODELS:
        raise ValueError(f"jobs: {text!r}: unknown model {m['model']!r}; known: {list(T.MODELS)}")
    gpus, tp, pp, dp = int(m["gpus"]), int(m["tp"]), int(m["pp"]), int(m["dp"])
    if tp * pp * dp != gpus:
        raise ValueError(f"jobs: {text!r}: tp x pp x dp = {tp * pp * dp}, not {gpus} GPUs")
    return T.MODELS[m["model"]], gpus, (tp, pp, dp)


def topology(p: dict, servers: int, sharp: bool = False, oversubscription: float | None = None) -> dict:
    spl = min(int(p["servers_per_leaf"]), servers)
    if servers % spl:
        raise ValueError(f"servers_per_leaf ({spl}) must divide the job's servers ({servers})")
    return {"host_rate_bps": Gbps(p["rate_gbps"]), "host_delay_ps": us(1), "num_rails": 8,
            "servers_per_leaf": spl, "leaves_per_rail": servers // spl, "spines_per_rail": int(p["spines_per_rail"]),
            "cores_per_group": int(p["cores_per_group"]), "nvlink_rate_bps": Gbps(p["nvlink_gbps"]),
            "nvlink_delay_ps": ns(100), "sharp": sharp,
            "oversubscription": float(p["oversubscription"] if oversubscription is None else oversubscription)}


def network(p: dict, servers: int, variant: str, seed: int, overrides: dict | None, sharp: bool = False,
            failures: list | None = None, oversubscription: float | None = None):
    fields = {"failures": failures} if failures else {}
    sc = rail_scenario("training_step", topology(p, servers, sharp, oversubscription), p["cc"], seed, variant,
                       **fields)
    return C.network(apply_overrides(sc, overrides))


def parallelism(p: dict, tp: int, pp: int, dp: int, sharp: bool = False) -> T.Parallelism:
    return T.Parallelism(tp=tp, pp=pp, dp=dp, micro_batch=int(p["micro_batch"]), global_batch=int(p["global_batch"]),
                         sharding=p["sharding"], dp_algorithm="sharp" if sharp else "auto")


def gpu_spec(p: dict) -> T.GpuSpec:
    return T.GpuSpec(efficiency=float(p["efficiency"]))


def tokens_mfu(model: T.Model, p: dict, step_s: float, gpus: int, gpu: T.GpuSpec) -> tuple[float, float]:
    tokens = int(p["global_batch"]) * model.seq_len
    flops = 3 * tokens * (model.layers * model.layer_fwd_flops(1) / model.seq_len
                          + model.head_fwd_flops(1) / model.seq_len)
    return tokens / step_s, flops / (step_s * gpus * gpu.peak_flops)


def measure_step(task: tuple) -> dict:
    """One (job, variant, sharp): the packet-level step and the cost model's estimate."""
    p, overrides, seed, job, variant, sharp, failures, *over = task
    model, gpus, (tp, pp, dp) = parse_job(job)
    servers = gpus // 8
    par = parallelism(p, tp, pp, dp, sharp == "on")
    net = network(p, servers, variant, seed, overrides, sharp == "on", failures, *over)
    lay = RailLayout(net.fabric.params)
    pl = T.packed_placements(par, lay.gpus(), lay)["packed tp-dp-pp"]
    gpu = gpu_spec(p)
    est = T.estimate_step(net, T.build_step(net, model, par, pl, gpu, p["scale"], closed_form=True))
    res = T.run_step(net, T.build_step(net, model, par, pl, gpu, p["scale"]))
    tok, mfu = tokens_mfu(model, p, res.step_s, gpus, gpu)
    return {"job": job, "model": model.name, "gpus": gpus, "parallelism": par.label(), "variant": variant,
            "sharp": sharp, **{k: round(v, 6) for k, v in res.row().items() if k.endswith("_s")},
            "estimate_s": round(est.step_s, 6), "bubble_fraction": round(res.bubble_fraction, 4),
            "tokens_per_s": round(tok), "mfu": round(mfu, 4), "bytes_pp": res.bytes_pp, "bytes_dp": res.bytes_dp,
            "events": net.sim.events}


def leaf_spine_link(lay: RailLayout, rail: int = 0, leaf: int = 0, spine: int = 0) -> int:
    """The index of the plane-0 link between leaf ``leaf`` and spine ``spine`` of ``rail``
    (controlplane/ai/rails.py, 'Links')."""
    return lay.num_servers * lay.R + (rail * lay.L + leaf) * lay.P + spine


def run(out_dir: str | Path = "results/training_step", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    jobs = [parse_job(j) for j in p["jobs"]]
    for text, (model, gpus, _) in zip(p["jobs"], jobs):
        if gpus % 8:
            raise ValueError(f"jobs: {text!r}: GPUs must fill 8-GPU servers")
    # 1. the breakdown
    tasks = [(p, overrides, seed, j, v, s, None) for j in p["jobs"] for v in p["variants"] for s in p["sharp"]]
    rows: list[dict] = []

    def report(i: int, r: dict) -> None:
        rows.append(r)
        print(f"{r['job']:22s} {r['variant']:5s} sharp {r['sharp']:3s}: step {r['step_s'] * 1e3:8.1f} ms "
              f"(compute {r['compute_s'] * 1e3:.1f}, tp {r['tp_s'] * 1e3:.1f}, bubble {r['bubble_s'] * 1e3:.1f}, "
              f"pp {r['pp_s'] * 1e3:.1f}, dp {r['dp_s'] * 1e3:.1f}, opt {r['optimizer_s'] * 1e3:.1f}; "
              f"estimate {r['estimate_s'] * 1e3:.1f} ms)", file=sys.stderr)

    with C.partial_results(out, "training_step.csv", rows):
        for_each_in_order(measure_step, tasks, report)
    write_csv(out / "training_step.csv", rows)
    # 2. placement
    place = placement(p, overrides, seed)
    write_csv(out / "training_placement.csv", place)
    # 3. a link down
    down = link_down_rows(p, overrides, seed, p["jobs"][0], p["variants"]) if p["link_down"] else []
    if down:
        write_csv(out / "training_link_down.csv", down)
    summary(rows, place, down)
    if plots:
        print(f"plot: {plot(rows, place, down, out / 'training_step.png', p)}")
    return {"rows": rows, "placement": place, "link_down": down}


def link_down_rows(p: dict, overrides: dict | None, seed: int, job: str, variants: list[str]) -> list[dict]:
    """Part 3: ``job`` with all links up and with leaf0-spine0 of rail 0 down from the start (routing
    and the NICs know it: the step's steady state while the link is down), per path policy, at
    ``link_down_oversubscription``."""
    model, gpus, _ = parse_job(job)
    over = float(p["link_down_oversubscription"])
    lay = RailLayout(network(p, gpus // 8, "ecmp", seed, overrides, oversubscription=over).fabric.params)
    link = leaf_spine_link(lay)
    fail = [{"link": link, "down_ps": 0}]
    tasks = [(p, overrides, seed, job, v, "off", f, over) for v in variants for f in (None, fail)]
    res = for_each_in_order(measure_step, tasks, lambda i, r: None)
    rows = []
    for v, up, dn in zip(variants, res[::2], res[1::2]):
        rows.append({"job": job, "variant": v, "oversubscription": over, "link": link, "step_up_s": up["step_s"],
                     "step_down_s": dn["step_s"], "slowdown": round(dn["step_s"] / up["step_s"], 4)})
        print(f"link {link} down at {over:g}:1, {v:5s}: step {up['step_s'] * 1e3:.1f} -> {dn['step_s'] * 1e3:.1f} ms "
              f"(x{rows[-1]['slowdown']:.3f})", file=sys.stderr)
    return rows


def link_down_slowdown(variant: str, params: dict | None = None, seed: int = 1) -> float:
    """The step-time factor while a leaf-spine link is down (part 3, for ``variant``, with this
    experiment's parameters ``params`` over its defaults): what effective_training_time takes as
    ``link_down_slowdown``."""
    p = Params.resolve(params)
    return link_down_rows(p, None, seed, p["jobs"][0], [variant])[0]["slowdown"]


def placement(p: dict, overrides: dict | None, seed: int) -> list[dict]:
    """Part 2: cost-model placement vs naive vs random on a shared fabric."""
    servers = int(p["place_servers"])
    mk = lambda: network(p, servers, "ecmp", seed, overrides)       # noqa: E731
    lay = RailLayout(mk().fabric.params)
    need = int(p["background_jobs"]) * int(p["background_gpus"]) + int(p["place_gpus"])
    if need > lay.num_gpus:
        raise ValueError(f"background_jobs x background_gpus + place_gpus = {need} GPUs, the shared fabric has "
                         f"{lay.num_gpus} (place_servers x 8)")
    occ = Occupancy(lay)
    rng = np.random.default_rng([seed, 17])
    for j in range(int(p["background_jobs"])):
        place_random(occ, int(p["background_gpus"]), rng, job=j + 1)
    free = occ.free()
    model = T.MODELS[p["place_model"]]
    gpu = gpu_spec(p)
    choices = T.choose_placement(mk, model, free, int(p["place_gpus"]), int(p["global_batch"]),
                                 int(p["micro_batch"]), gpu, p["scale"], verify=int(p["verify"]),
                                 sharding=p["sharding"])
    best = choices[0]
    rows = [{"policy": "cost model", "choice": best.name, "estimate_s": round(best.estimate.step_s, 6),
             "step_s": round(best.measured.step_s if best.measured else float("nan"), 6),
             "servers": len({g.server for g in best.placement.all()}), "gpus": best.placement.describe()}]
    par = best.placement.par
    for policy, pl in (("naive", T.place_naive(par, free)),
                       ("random", T.place_random_groups(par, free, lay, np.random.default_rng([seed, 19])))):
        if pl is None:
            rows.append({"policy": policy, "choice": f"{par.label()}: does not fit", "estimate_s": float("nan"),
                         "step_s": float("nan"), "servers": 0, "gpus": ""})
            continue
        net = mk()
        est = T.estimate_step(net, T.build_step(net, model, par, pl, gpu, p["scale"], closed_form=True))
        res = T.run_step(net, T.build_step(net, model, par, pl, gpu, p["scale"]))
        rows.append({"policy": policy, "choice": par.label(), "estimate_s": round(est.step_s, 6),
                     "step_s": round(res.step_s, 6), "servers": len({g.server for g in pl.all()}),
                     "gpus": pl.describe()})
    for c in choices[1:]:
        rows.append({"policy": "candidate", "choice": c.name, "estimate_s": round(c.estimate.step_s, 6),
                     "step_s": round(c.measured.step_s, 6) if c.measured else float("nan"),
                     "servers": len({g.server for g in c.placement.all()}), "gpus": c.placement.describe()})
    for r in rows[:3]:
        print(f"placement {r['policy']:10s} {r['choice']:32s} estimate {r['estimate_s'] * 1e3:8.1f} ms, "
              f"measured {r['step_s'] * 1e3:8.1f} ms", file=sys.stderr)
    return rows


def summary(rows: list[dict], place: list[dict], down: list[dict]) -> None:
    print(f"{'job':22s} {'variant':7s} {'sharp':5s} {'step ms':>8s} {'est ms':>8s} {'bubble':>7s} {'dp ms':>7s} "
          f"{'MFU':>6s}")
    for r in rows:
        print(f"{r['job']:22s} {r['variant']:7s} {r['sharp']:5s} {r['step_s'] * 1e3:8.1f} {r['estimate_s'] * 1e3:8.1f} "
              f"{r['bubble_fraction']:7.3f} {r['dp_s'] * 1e3:7.1f} {r['mfu']:6.3f}")
    for r in place[:3]:
        print(f"placement {r['policy']:10s} {r['choice']:32s} {r['step_s'] * 1e3:8.1f} ms")
    for r in down:
        print(f"link down {r['variant']:5s} x{r['slowdown']:.3f}")


TERMS = ("compute_s", "tp_s", "bubble_s", "pp_s", "dp_s", "optimizer_s")
COLORS = ("tab:blue", "tab:cyan", "tab:gray", "tab:orange", "tab:red", "tab:green")


def plot(rows: list[dict], place: list[dict], down: list[dict], out_png: Path, p: dict) -> Path:
    """Left: each run's step split into its terms (share of the step, stacked; the step time and
    the cost model's estimate written at the end); middle: placement policies; right: the step
    with all links up and with a leaf-spine link down, per path policy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.8 + 0.32 * max(6, len(rows))),
                             gridspec_kw={"width_ratios": [3, 1.2, 1.2]})
    ax = axes[0]
    labels = []
    for i, r in enumerate(rows):
        left = 0.0
        for term, color in zip(TERMS, COLORS):
            v = r[term] / r["step_s"]
            ax.barh(i, v, 0.7, left=left, color=color, label=term[:-2] if i == 0 else None)
            left += v
        ax.text(1.01, i, f"{r['step_s'] * 1e3:.0f} ms (model {r['estimate_s'] * 1e3:.0f})", va="center", fontsize=7)
        labels.append(f"{r['job']} {r['variant']}{' +SHARP' if r['sharp'] == 'on' else ''}")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xlabel("share of the step")
    ax.set_title(f"step breakdown (global batch {p['global_batch']} x 4096 tokens)", fontsize=10)
    ax.legend(fontsize=7, ncol=6, loc="lower center", bbox_to_anchor=(0.45, 1.04))
    ax.grid(alpha=0.3, axis="x")
    ax = axes[1]
    main = place[:3]
    ax.bar(range(len(main)), [r["step_s"] * 1e3 for r in main], color=["tab:green", "tab:orange", "tab:red"][:len(main)])
    ax.scatter(range(len(main)), [r["estimate_s"] * 1e3 for r in main], color="k", marker="_", s=200, zorder=3,
               label="cost model")
    ax.set_xticks(range(len(main)), [f"{r['policy']}\n{r['choice'].split(' ')[0]}" for r in main], fontsize=8)
    ax.set_ylabel("step time (ms)")
    vals = [r["step_s"] * 1e3 for r in main if r["step_s"] == r["step_s"]]
    vals += [r["estimate_s"] * 1e3 for r in main if r["estimate_s"] == r["estimate_s"]]
    if vals:
        ax.set_ylim(min(vals) * 0.95, max(vals) * 1.03)
    ax.set_title(f"placement: {p['place_model']} on {p['place_gpus']} GPUs", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax = axes[2]
    if down:
        x = np.arange(len(down))
        ax.bar(x - 0.2, [r["step_up_s"] * 1e3 for r in down], 0.38, color="tab:blue", label="all links up")
        ax.bar(x + 0.2, [r["step_down_s"] * 1e3 for r in down], 0.38, color="tab:purple", label="a leaf-spine link down")
        for k, r in enumerate(down):
            ax.text(k + 0.2, r["step_down_s"] * 1e3, f"x{r['slowdown']:.3f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [r["variant"] for r in down])
        vals = [r["step_up_s"] * 1e3 for r in down] + [r["step_down_s"] * 1e3 for r in down]
        ax.set_ylim(min(vals) * 0.97, max(vals) * 1.03)
        ax.set_title(f"{down[0]['job']}, {down[0]['oversubscription']:g}:1 leaves", fontsize=10)
        ax.set_ylabel("step time (ms)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    else:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/training_step"))
