"""Placement: step time of a data-parallel job, topology-aware vs random placement, with background jobs.

A shared rail fabric under one scheduling policy: ``background_jobs`` jobs are placed first,
then a data-parallel job of ``job_gpus`` GPUs, all either by
:func:`controlplane.ai.placement.place_topology_aware` (lowest tier its all-reduce crosses, then
fewest servers, then best fit) or at random among the free GPUs. The background jobs run
all-reduce after all-reduce for the whole measurement; one training step's gradient all-reduce
of the job (``grad_bytes`` per GPU) is timed: the step time of a synchronous job whose compute is
not modelled (add your compute time). Under random placement the background jobs also fragment
the fabric, which is part of what the policy decides. The job also runs alone on its placement
to separate topology from interference.

The job's collective is what a rail-aware library would run (collectives.job_all_reduce):
hierarchical (NVLink + one ring per rail) when every server holds the same rails, else one ring
over its GPUs in (server, rail) order, whose hops between servers change rails and cross the
third tier. Background jobs use the same rule.

Default fabric: 16 servers x 4 GPUs (64), 4 servers per leaf, 2 spines per rail (leaf uplinks
2 x 200 Gb/s), 2 cores per group, 100 Gb/s NICs, NVLink 3.6 Tb/s, DCQCN, ECMP; 5 background jobs
of 8 GPUs; a 16-GPU job; 16 MiB gradients; 3 seeds.
Writes results/placement/placement.csv and placement.png.

    softdpu run placement
    softdpu run placement --set seeds=10 --set background_jobs=6
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from controlplane.ai import collectives as C
from controlplane.run.experiment import (AI_PATH_VARIANTS, collective_experiment_setup, rail_scenario, write_csv,
                                     apply_overrides, RATE_GBPS, CcSpec, Count, ExperimentParams, OneOf, Quantity,
                                     Scaled, for_each_in_order)
from controlplane.ai.placement import Occupancy, place_random, place_topology_aware, placement_tier
from controlplane.ai.rails import RailLayout
from controlplane.config.units import Gbps, MiB, ns, us


class Params(ExperimentParams):
    """placement's parameters."""
    num_rails: Count("rails (GPUs and NICs per server)") = 4
    servers_per_leaf: Count("servers under each leaf") = 4
    leaves_per_rail: Count("leaf switches per rail") = 4
    spines_per_rail: Count("spine switches per rail") = 2
    cores_per_group: Count("core switches per group") = 2
    rate_gbps: Scaled("rate", "Gb/s", "GPU NIC link rate", **RATE_GBPS) = 100
    nvlink_gbps: Scaled("rate", "Gb/s", "NVLink bandwidth per GPU", **RATE_GBPS) = 3600
    job_gpus: Count("GPUs of the measured data-parallel job") = 16
    background_jobs: Count("background jobs placed before it", lo=0) = 5
    background_gpus: Count("GPUs per background job") = 8
    grad_bytes: Quantity("size", "gradient bytes per GPU of one step's all-reduce", lo=1) = MiB(16)
    chunk_bytes: Quantity("size", "bytes per collective chunk (pipelining unit)", lo=1) = MiB(1)
    seeds: Count("seeds (placements) per policy", hi=10**4) = 3
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    variant: OneOf(tuple(AI_PATH_VARIANTS), "path-policy variant: ecmp (go-back-N), spray (spray_rr, out of order), ar (adaptive routing)") = "ecmp"


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)
POLICIES = ("topology-aware", "random")


def topology(p: dict) -> dict:
    return {"host_rate_bps": Gbps(p["rate_gbps"]), "host_delay_ps": us(1), "num_rails": int(p["num_rails"]),
            "servers_per_leaf": int(p["servers_per_leaf"]), "leaves_per_rail": int(p["leaves_per_rail"]),
            "spines_per_rail": int(p["spines_per_rail"]), "cores_per_group": int(p["cores_per_group"]),
            "nvlink_rate_bps": Gbps(p["nvlink_gbps"]), "nvlink_delay_ps": ns(100)}


def place(policy: str, occ: Occupancy, n: int, rng: np.random.Generator, job: int) -> list:
    if policy == "topology-aware":
        return place_topology_aware(occ, n, job=job)
    return place_random(occ, n, rng, job=job)


def step(p: dict, seed: int, overrides: dict | None, job_gpus: list, background: dict[int, list]) -> int:
    """Time (ps) of the job's gradient all-reduce with the background jobs running."""
    if p["variant"] not in AI_PATH_VARIANTS:
        raise ValueError(f"variant: unknown {p['variant']!r}; known: {list(AI_PATH_VARIANTS)}")
    sc = rail_scenario("placement", topology(p), p["cc"], seed, p["variant"])
    net = C.network(apply_overrides(sc, overrides))
    job = C.job_all_reduce(net, job_gpus, int(p["grad_bytes"]), int(p["chunk_bytes"]), name="job")
    bgs = [C.job_all_reduce(net, g, int(p["grad_bytes"]), int(p["chunk_bytes"]), name=f"background{j}", repeat=True)
           for j, g in sorted(background.items())]
    return C.Runner(net).run([job] + bgs)[0].time_ps


def measure(task: tuple) -> dict:
    """One (seed, policy), in whichever worker: place the background jobs and the job, time its
    step with and without the background; its row of the CSV."""
    p, overrides, run_seed, policy = task
    lay = RailLayout(C.network(rail_scenario("placement", topology(p), p["cc"], run_seed)).fabric.params)
    rng = np.random.default_rng([run_seed, 11])          # the same draws for both policies
    occ = Occupancy(lay)
    for j in range(int(p["background_jobs"])):
        place(policy, occ, int(p["background_gpus"]), rng, j + 1)
    background = occ.jobs()
    gpus = place(policy, occ, int(p["job_gpus"]), rng, 0)
    wall = time.perf_counter()
    loaded = step(p, run_seed, overrides, gpus, background)
    alone = step(p, run_seed, overrides, gpus, {})
    row = {"seed": run_seed, "policy": policy, "tier": placement_tier(lay, gpus),
           "servers": len({g.server for g in gpus}), "leaf_groups": len({lay.leaf_group(g.server) for g in gpus}),
           "step_us": round(loaded / 1e6, 3), "alone_us": round(alone / 1e6, 3),
           "gpus": " ".join(f"s{g.server}g{g.rail}" for g in gpus)}
    return {"row": row, "wall_s": time.perf_counter() - wall}


def run(out_dir: str | Path = "results/placement", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    # an all-reduce needs 2 members: say so by the parameter typed, not by the collective's "ranks"
    for key in ("job_gpus",) + (("background_gpus",) if int(p["background_jobs"]) > 0 else ()):
        if int(p[key]) < 2:
            raise ValueError(f"{key} must be >= 2 (a job's all-reduce needs at least 2 GPUs), got {p[key]}")
    lay = RailLayout(C.network(rail_scenario("placement", topology(p), p["cc"], seed)).fabric.params)
    gpus = lay.num_servers * lay.R
    for key in ("job_gpus", "background_gpus"):
        if int(p[key]) > gpus:                  # by its name, not the placement's n_gpus
            v = int(p[key])
            raise ValueError(f"{key} must be at most {gpus} (the fabric's GPUs), got "
                             f"{v if v < 10**20 else f'{str(v)[:4]}... ({len(str(v))} digits)'}")
    need = int(p["background_jobs"]) * int(p["background_gpus"]) + int(p["job_gpus"])
    if need > gpus:                             # by the parameters typed, not the placement's n_gpus
        raise ValueError(f"background_jobs: {p['background_jobs']} jobs of background_gpus = {p['background_gpus']} "
                         f"and the job_gpus = {p['job_gpus']} job need {need:,} GPUs, the fabric has {gpus}")
    rows = []
    tasks = [(p, overrides, seed + k, policy) for k in range(int(p["seeds"])) for policy in POLICIES]

    def report(i: int, res: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run placement -j N)
        r = res["row"]
        rows.append(r)
        print(f"seed {r['seed']} {r['policy']:15s} tier {r['tier']} on {r['servers']} servers: step {r['step_us']:9.1f} us "
              f"(alone {r['alone_us']:9.1f} us) ({res['wall_s']:.1f} s wall)", file=sys.stderr)

    with C.partial_results(out, "placement.csv", rows):   # a stopped run keeps the rows so far
        for_each_in_order(measure, tasks, report)
    write_csv(out / "placement.csv", rows)
    print(f"{'policy':15s} {'mean step (us)':>15s} {'alone (us)':>11s} {'mean tier':>10s}")
    summary = []
    for policy in POLICIES:
        rs = [r for r in rows if r["policy"] == policy]
        summary.append({"policy": policy, "step_us": float(np.mean([r["step_us"] for r in rs])),
                        "alone_us": float(np.mean([r["alone_us"] for r in rs])),
                        "tier": float(np.mean([r["tier"] for r in rs]))})
        s = summary[-1]
        print(f"{policy:15s} {s['step_us']:15.1f} {s['alone_us']:11.1f} {s['tier']:10.2f}")
    write_csv(out / "placement_summary.csv", summary)
    if plots:
        print(f"plot: {plot(rows, out / 'placement.png', p)}")
    return {"rows": rows, "summary": summary}


def plot(rows: list[dict], out_png: Path, p: dict) -> Path:
    """Step time per policy (bars: mean with background, hatched: alone; dots: seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, policy in enumerate(POLICIES):
        rs = [r for r in rows if r["policy"] == policy]
        loaded = [r["step_us"] / 1e3 for r in rs]
        alone = [r["alone_us"] / 1e3 for r in rs]
        ax.bar(i - 0.2, np.mean(loaded), 0.38, color=["tab:green", "tab:red"][i], alpha=0.8,
               label="with background jobs" if i == 0 else None)
        ax.bar(i + 0.2, np.mean(alone), 0.38, color=["tab:green", "tab:red"][i], alpha=0.35, hatch="//",
               label="alone" if i == 0 else None)
        ax.scatter([i - 0.2] * len(loaded), loaded, color="k", s=10, zorder=3)
        ax.scatter([i + 0.2] * len(alone), alone, color="k", s=10, zorder=3)
        tiers = sorted({r["tier"] for r in rs})
        ax.text(i, max(loaded + alone) * 1.03, f"tier {'/'.join(map(str, tiers))}", ha="center", fontsize=9)
    ax.set_xticks(range(len(POLICIES)), POLICIES)
    ax.set_ylabel("step time: gradient all-reduce (ms)")
    ax.set_title(f"{p['job_gpus']}-GPU data-parallel job, {p['grad_bytes'] / 2**20:.0f} MiB gradients, "
                 f"{p['background_jobs']} background jobs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/placement"))
