"""All-reduce busbw: bus bandwidth vs message size for ring, hierarchical and SHARP on a rail fabric, ECMP vs spraying vs AR (V8, V9).

The nccl-tests view of a fabric (NVIDIA/nccl-tests doc/PERFORMANCE.md): for each message size S, time one
all-reduce over every GPU of the fabric and report algbw = S/t and busbw = algbw x 2(N-1)/N,
which for a ring approaches the slowest link's rate.

Algorithms (controlplane/ai/collectives.py, controlplane/ai/sharp.py):
  ring          NCCL-style channels: one ring per local GPU index, each crossing between
                servers on one rail (rail_rings), each reducing 1/G of the data
  hierarchical  NVLink reduce-scatter in each server, one ring per rail across servers on 1/G
                of the data, NVLink all-gather
  sharp         the same with the per-rail rings replaced by SHARP trees in the switches

Default fabric: 8 servers x 2 GPUs (16 ranks), 2 rails, 2 leaves per rail with 4 servers each,
4 spines per rail, 2 cores per group, 100 Gb/s on every link (non-blocking: a leaf has as many
100 Gb/s uplinks as servers), 1 us per link, NVLink 3.6 Tb/s per GPU, DCQCN. The servers are
in a random order, as a job placed without regard to the topology gets them: about half the
hops between servers cross leaves, and with ECMP two of them leaving one leaf pick the same
uplink with probability 1/4, halving that ring's rate. Each point is run with ``seeds``
different seeds (server order and QP entropies); the plot shows the mean and the min-max range.

Variants: ecmp (go-back-N), spray (spray_rr over 16 entropies, out-of-order placement),
ar (adaptive routing at the switches, out-of-order placement).
Writes results/allreduce_busbw/allreduce_busbw.csv and allreduce_busbw.png.

    softdpu run allreduce_busbw
    softdpu run allreduce_busbw --set max_size=1073741824      # up to 1 GB (minutes)
    softdpu run allreduce_busbw --set order=topology --set 'algos=["ring"]'
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from controlplane.ai import collectives as C
from controlplane.run.experiment import (AI_PATH_VARIANTS, chosen, collective_experiment_setup, rail_scenario, write_csv,
                                     apply_overrides, RATE_GBPS, TIME_US, CcSpec, Count, ExperimentParams, Item,
                                     ListOf, OneOf, Quantity, Scaled, for_each_in_order)
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.ai.sharp import sharp_all_reduce
from controlplane.config.units import Gbps, KiB, MiB, ns, us
from pydantic import model_validator

ALGOS = ("ring", "hierarchical", "sharp")


class Params(ExperimentParams):
    """allreduce_busbw's parameters."""
    num_rails: Count("rails (GPUs and NICs per server)") = 2
    servers_per_leaf: Count("servers under each leaf") = 4
    leaves_per_rail: Count("leaf switches per rail") = 2
    spines_per_rail: Count("spine switches per rail") = 4
    cores_per_group: Count("core switches per group") = 2
    seeds: Count("seeds per point (server order and QP entropies; mean and min-max range)", hi=10**4) = 3
    rate_gbps: Scaled("rate", "Gb/s", "GPU NIC link rate", **RATE_GBPS) = 100
    nvlink_gbps: Scaled("rate", "Gb/s", "NVLink bandwidth per GPU", **RATE_GBPS) = 3600
    min_size: Quantity("size", "smallest message (sizes go up x4 from it)", lo=1) = KiB(64)
    max_size: Quantity("size", "largest message", lo=1) = MiB(16)
    algos: ListOf(Item("choice", ALGOS), "all-reduce algorithms: ring, hierarchical, sharp", unique=True) = list(ALGOS)
    variants: ListOf(Item("choice", AI_PATH_VARIANTS), "path-policy variants: ecmp (go-back-N), spray (spray_rr, "
                     "out of order), ar (adaptive routing)", unique=True) = list(AI_PATH_VARIANTS)
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    order: OneOf(("random", "topology"), "rank order: servers in a random order, or in topology order") = "random"
    chunk_bytes: Quantity("size", "bytes per collective chunk (pipelining unit)", lo=1) = MiB(1)
    sharp_latency_ns: Scaled("time", "ns", "in-network reduction latency per switch", **{**TIME_US, "hi": TIME_US["hi"] * 1000}) = 500

    @model_validator(mode="after")
    def _size_range(self):
        if self.min_size > self.max_size:
            raise ValueError(f"min_size must be <= max_size, got min_size={self.min_size}, max_size={self.max_size}")
        return self


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def topology(p: dict) -> dict:
    return {"host_rate_bps": Gbps(p["rate_gbps"]), "host_delay_ps": us(1), "num_rails": int(p["num_rails"]),
            "servers_per_leaf": int(p["servers_per_leaf"]), "leaves_per_rail": int(p["leaves_per_rail"]),
            "spines_per_rail": int(p["spines_per_rail"]), "cores_per_group": int(p["cores_per_group"]),
            "nvlink_rate_bps": Gbps(p["nvlink_gbps"]), "nvlink_delay_ps": ns(100), "sharp": True,
            "sharp_latency_ps": ns(p["sharp_latency_ns"])}


def sizes(p: dict) -> list[int]:
    lo, hi = int(p["min_size"]), int(p["max_size"])
    if lo <= 0 or hi < lo:
        raise ValueError(f"min_size/max_size must satisfy 0 < min_size <= max_size, got {lo}, {hi}")
    out = [lo]
    while out[-1] * 4 <= hi:
        out.append(out[-1] * 4)
    return out


def ranks_of(layout: RailLayout, order: str, seed: int) -> list[Gpu]:
    servers = list(range(layout.num_servers))
    if order == "random":
        servers = [int(s) for s in np.random.default_rng([seed, 7]).permutation(servers)]
    elif order != "topology":
        raise ValueError(f"order must be 'random' or 'topology', got {order!r}")
    return [Gpu(s, r) for s in servers for r in range(layout.R)]


def schedule(algo: str, net, ranks: list[Gpu], size: int, chunk: int):
    if algo == "ring":
        return C.ring_all_reduce(net, ranks, size, chunk_bytes=chunk, channels=C.rail_rings(C.Endpoints(net).layout, ranks))
    if algo == "hierarchical":
        return C.hierarchical_all_reduce(net, ranks, size, chunk_bytes=chunk)
    return sharp_all_reduce(net, ranks, size, chunk_bytes=chunk, hierarchical=True)


def run(out_dir: str | Path = "results/allreduce_busbw", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    algos = chosen("algos", p["algos"], ALGOS)
    variants = chosen("variants", p["variants"], AI_PATH_VARIANTS)
    rows = []
    seeds = int(p["seeds"])
    tasks = [(p, overrides, v, a, z, seed + k) for v in variants for a in algos for z in sizes(p) for k in range(seeds)]

    def report(i: int, res: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run allreduce_busbw -j N)
        row = res["row"]
        rows.append(row)
        print(f"{row['variant']:6s} {row['algo']:12s} seed {row['seed']} {row['size_bytes']:>11,d} B "
              f"{row['time_us']:>11.1f} us algbw {row['algbw_gbps']:7.1f} busbw {row['busbw_gbps']:7.1f} Gb/s "
              f"({res['wall_s']:.1f} s wall)", file=sys.stderr)

    with C.partial_results(out, "allreduce_busbw.csv", rows):   # a stopped run keeps the rows so far
        for_each_in_order(measure, tasks, report)
    write_csv(out / "allreduce_busbw.csv", rows)
    summary = summarize(rows)
    write_csv(out / "allreduce_busbw_summary.csv", summary)
    print(f"{'variant':8s} {'algo':13s} {'size (B)':>12s} {'time (us)':>11s} {'algbw':>8s} {'busbw (Gb/s): mean':>19s} "
          f"{'min':>7s} {'max':>7s}")
    for r in summary:
        print(f"{r['variant']:8s} {r['algo']:13s} {r['size_bytes']:12,d} {r['time_us']:11.1f} {r['algbw_gbps']:8.1f} "
              f"{r['busbw_gbps']:19.1f} {r['busbw_min']:7.1f} {r['busbw_max']:7.1f}")
    if plots:
        print(f"plot: {plot(summary, p['rate_gbps'], out / 'allreduce_busbw.png')}")
    return {"rows": rows, "summary": summary}


def measure(task: tuple) -> dict:
    """One all-reduce (variant, algorithm, size, seed), in whichever worker: its row of the CSV."""
    p, overrides, variant, algo, size, run_seed = task
    sc = rail_scenario(f"allreduce-{algo}-{variant}", topology(p), p["cc"], run_seed, variant)
    net = C.network(apply_overrides(sc, overrides))
    ranks = ranks_of(RailLayout.of(net.fabric), p["order"], run_seed)
    wall = time.perf_counter()
    r = C.run_collective(net, schedule(algo, net, ranks, size, int(p["chunk_bytes"])))
    c = net.sim.counters()
    row = {"variant": variant, "algo": algo, "seed": run_seed, "n_ranks": r.n_ranks, "size_bytes": size,
           "time_us": round(r.time_ps / 1e6, 3), "algbw_gbps": round(r.algbw_bps / 1e9, 3),
           "busbw_gbps": round(r.busbw_bps / 1e9, 3), "retransmitted": c["retransmitted"], "dropped": c["data_dropped"]}
    return {"row": row, "wall_s": time.perf_counter() - wall}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean over seeds (time, algbw, busbw) and the busbw range, per variant x algo x size."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["algo"], r["size_bytes"]), []).append(r)
    out = []
    for (variant, algo, size), rs in groups.items():
        bus = [r["busbw_gbps"] for r in rs]
        out.append({"variant": variant, "algo": algo, "n_ranks": rs[0]["n_ranks"], "size_bytes": size, "runs": len(rs),
                    "time_us": round(float(np.mean([r["time_us"] for r in rs])), 3),
                    "algbw_gbps": round(float(np.mean([r["algbw_gbps"] for r in rs])), 3),
                    "busbw_gbps": round(float(np.mean(bus)), 3), "busbw_min": min(bus), "busbw_max": max(bus)})
    return out


def plot(rows: list[dict], rate_gbps: float, out_png: Path) -> Path:
    """Mean busbw vs message size (log x) with the min-max range over seeds, one line per
    algorithm x variant, like nccl-tests output."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    from controlplane.results.plots import SERIES_STYLES, legend_with_note
    colors = {"ring": "tab:blue", "hierarchical": "tab:green", "sharp": "tab:red"}
    # colour and line style per algorithm, hollow marker per path variant: the variants of one
    # algorithm often coincide (SHARP's tree paths are fixed) and stay visible by their markers
    algos = list(dict.fromkeys(r["algo"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for variant in variants:
        for algo in algos:
            pts = [(r["size_bytes"], r["busbw_gbps"], r["busbw_min"], r["busbw_max"]) for r in rows
                   if r["variant"] == variant and r["algo"] == algo]
            if pts:
                x, y, lo, hi = zip(*pts)
                ax.plot(x, y, linestyle=SERIES_STYLES[algos.index(algo) % len(SERIES_STYLES)][1],
                        marker=SERIES_STYLES[variants.index(variant) % len(SERIES_STYLES)][0], ms=5,
                        markerfacecolor="none", color=colors.get(algo), label=f"{algo} / {variant}")
                if len(set(lo + hi)) > 1:
                    ax.fill_between(x, lo, hi, color=colors.get(algo), alpha=0.08)
    ax.axhline(rate_gbps, color="grey", lw=0.8)
    ax.text(rows[0]["size_bytes"], rate_gbps * 1.02, "NIC rate", color="grey", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("message size S (bytes)")
    ax.set_ylabel("bus bandwidth (Gb/s) = S/t x 2(N-1)/N")
    ax.set_title(f"All-reduce on a rail-optimized fabric, {rows[0]['n_ranks']} ranks")
    ax.grid(alpha=0.3, which="both")
    legend_with_note(ax, fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/allreduce_busbw"))
