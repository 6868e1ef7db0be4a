"""Spraying vs ECMP: a random permutation of long flows on a fat-tree (validation target V7,
docs/architecture.md).

With hash-based ECMP, flows that hash onto the same uplink share it while other uplinks idle
(balls into bins: with n flows on n uplinks only 1 - 1/e ~ 63 % of uplinks carry traffic), so
mean flow throughput stays well below line rate. Spraying each QP's packets over several
entropies, or letting switches route NIC-marked packets adaptively, should approach full
bisection, provided the transport tolerates reordering: go-back-N (RoCE) does not, selective
repeat (IRN) pays spurious retransmissions, out-of-order placement (SRD-like) pays nothing.

Default: k=8 fat-tree (128 hosts, 100 Gb/s, 1 us links), one 8 MB flow per host, DCQCN, 16
entropies per sprayed QP (a k=8 fat-tree has 16 paths between pods). HPCC is a poor choice
here: its per-hop INT differencing assumes every packet of a flow crosses the same ports, and
with spraying its window collapses (per-path INT state is not modelled).
Writes results/spraying_vs_ecmp/<variant>/ (a results folder each), spraying_vs_ecmp.csv (one
row per flow), spraying_vs_ecmp_summary.csv and spraying_vs_ecmp.png (throughput and FCT CDFs).

    softdpu run spraying_vs_ecmp
    softdpu run spraying_vs_ecmp --set k=4 --set 'variants=["ecmp-gbn","spray_rr-ooo"]'
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from controlplane.run.experiment import (variant_tasks, chosen, permutation_on_fat_tree, write_csv, prune_stale_variants, RATE_GBPS, CcSpec,
                                     Count, ExperimentParams, FatTreeK, Item, ListOf, Quantity, Scaled,
                                     for_each_in_order, run_scenario_task)
from controlplane.results.folder import load_run, percentile
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us
from dataplane.sim import lib

# variant name -> (path policy, transport, adaptive routing)
VARIANTS = {
    "ecmp-gbn": ("ecmp", "gbn", False),
    "ecmp-ooo": ("ecmp", "ooo", False),
    "spray_rr-gbn": ("spray_rr", "gbn", False),
    "spray_rr-sr": ("spray_rr", "sr", False),
    "spray_rr-ooo": ("spray_rr", "ooo", False),
    "spray_random-ooo": ("spray_random", "ooo", False),
    "reps-ooo": ("reps", "ooo", False),
    "ar-ooo": ("ecmp", "ooo", True),
}


class Params(ExperimentParams):
    """spraying_vs_ecmp's parameters."""
    k: FatTreeK() = 8
    size_bytes: Quantity("size", "bytes per flow (one flow per host)", lo=1) = MB(8)
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    variants: ListOf(Item("choice", VARIANTS), "path policy + transport variants to run", unique=True) = list(VARIANTS)
    rate_gbps: Scaled("rate", "Gb/s", "host link rate", **RATE_GBPS) = 100
    num_paths: Count("entropies (paths) per QP when spraying", hi=lib.SD_MAX_PATHS) = 16


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(p: dict, seed: int) -> dict[str, Scenario]:
    out = {}
    for name in chosen("variants", p["variants"], VARIANTS):
        paths, transport, ar = VARIANTS[name]
        out[name] = permutation_on_fat_tree(f"spraying-{name}", p["k"], p["size_bytes"], p["cc"], seed, paths, transport,
                                            ar, rate_gbps=p["rate_gbps"], num_paths=int(p["num_paths"]),
                                            sample_interval_ps=us(20), monitor_ports="none")
    return out


def run(out_dir: str | Path = "results/spraying_vs_ecmp", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "spraying_vs_ecmp")
    out = Path(out_dir)
    rows, summary = [], []
    variants = scenarios(p, seed)
    line = Gbps(p["rate_gbps"])
    prune_stale_variants(out, variants)
    names = list(variants)
    tasks = variant_tasks(out, variants, overrides, capture, receiver_stats)

    def report(i: int, res: dict) -> None:
        # in variant order, whichever worker ran it (softdpu run spraying_vs_ecmp -j N)
        name, c, x = names[i], res["counters"], res["extra"]
        f = load_run(out / name).flows
        done = f["fct_ps"] > 0
        tput = np.where(done, f["size_bytes"] * 8e12 / np.maximum(f["fct_ps"], 1), 0.0)
        for j in range(len(tput)):
            rows.append({"variant": name, "flow": j, "src": int(f["src"][j]), "dst": int(f["dst"][j]),
                         "size_bytes": int(f["size_bytes"][j]), "fct_ps": int(f["fct_ps"][j]),
                         "throughput_bps": float(tput[j])})
        s = {"variant": name, "flows": int(len(tput)), "completed": int(done.sum()),
             "mean_tput_frac": float(tput.mean() / line) if len(tput) else float("nan"),
             "p1_tput_frac": percentile(tput, 1) / line,
             # NaN when no flow completed (a run cut short by max_duration_ps or its budget)
             "mean_fct_us": float(f["fct_ps"][done].mean() / 1e6) if done.any() else float("nan"),
             "p99_fct_us": percentile(f["fct_ps"][done], 99) / 1e6,
             "retransmitted": int(c["retransmitted"]), "dropped": int(c["data_dropped"]),
             "rx_ooo": x["rx_ooo"], "ooo_peak": x["ooo_peak"], "ooo_max_dist": x["ooo_max_dist"],
             "ar_moves": int(c["ar_moves"])}
        summary.append(s)
        print(f"[{i + 1}/{len(variants)}] {name}: {s['completed']}/{s['flows']} flows, mean throughput "
              f"{s['mean_tput_frac']:.0%} of line rate, p99 FCT {s['p99_fct_us']:.0f} us, retx {s['retransmitted']}, "
              f"{c['events']:,} events, {res['wall_s']:.1f} s wall", file=sys.stderr)

    for_each_in_order(run_scenario_task, tasks, report)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "spraying_vs_ecmp.csv", rows)
    write_csv(out / "spraying_vs_ecmp_summary.csv", summary)
    print(f"{'variant':18s} {'tput/line':>9s} {'p1 tput':>8s} {'mean FCT':>10s} {'p99 FCT':>10s} {'retx':>8s} "
          f"{'rx_ooo':>8s} {'ooo peak':>8s}")
    for s in summary:
        print(f"{s['variant']:18s} {s['mean_tput_frac']:9.1%} {s['p1_tput_frac']:8.1%} {s['mean_fct_us']:8.0f}us "
              f"{s['p99_fct_us']:8.0f}us {s['retransmitted']:8d} {s['rx_ooo']:8d} {s['ooo_peak']:8d}")
    if plots:
        print(f"plot: {plot(rows, line, out / 'spraying_vs_ecmp.png')}")
    return {"summary": summary}


def receiver_stats(r) -> dict:
    """The receivers' reorder counters of a run (only the in-memory run has them)."""
    rcv = r.network.sim.qps[r.network.receiver_qps]
    return {"rx_ooo": int(rcv["rx_ooo"].sum()), "ooo_peak": int(rcv["ooo_peak"].max()),
            "ooo_max_dist": int(rcv["ooo_max_dist"].max())}


def plot(rows: list[dict], line_bps: float, out_png: Path) -> Path:
    """Left: CDF of per-flow throughput (fraction of line rate); right: CDF of FCT (log, in us
    or ms). Each variant has its own marker and line style, so variants whose curves coincide
    (ecmp-gbn and ecmp-ooo: nothing is reordered) stay visible; the legend names them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from controlplane.results.plots import legend_with_note, log_axis, series_style
    fig, (a, b) = plt.subplots(1, 2, figsize=(13.5, 4.6))
    fcts = [r["fct_ps"] / 1e6 for r in rows if r["fct_ps"] > 0]
    div, unit = (1000.0, "ms") if fcts and max(fcts) >= 1e4 else (1.0, "us")
    for i, name in enumerate(dict.fromkeys(r["variant"] for r in rows)):
        t = np.sort([r["throughput_bps"] / line_bps for r in rows if r["variant"] == name])
        fct = np.sort([r["fct_ps"] / 1e6 / div for r in rows if r["variant"] == name and r["fct_ps"] > 0])
        style = dict(series_style(i), ms=4, lw=1.2)
        for ax, x in ((a, t), (b, fct)):        # markers at staggered points: coinciding curves show both
            every = max(1, len(x) // 6)
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=name, drawstyle="steps-post",
                    markevery=(i * every // 8, every), **style)
    a.set_xlabel("per-flow throughput / line rate")
    a.set_xlim(0, 1.05)
    b.set_xlabel(f"flow completion time ({unit})")
    if fcts:
        log_axis(b, min(fcts) / div, max(fcts) / div, "x")
    for ax in (a, b):
        ax.set_ylabel("CDF of flows")
        ax.grid(alpha=0.3)
    legend_with_note(b, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Random permutation on a fat-tree: ECMP vs spraying vs adaptive routing")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/spraying_vs_ecmp"))
