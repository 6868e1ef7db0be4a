"""Reorder cost: the reordering each path policy creates, and what each transport pays for it.

Per (path policy, transport mode): the receivers' reorder-buffer occupancy (peak PSNs
held beyond the expected PSN), the largest out-of-order distance, the share of packets that
arrived out of order, duplicates, retransmissions and mean FCT.

go-back-N discards everything after a gap and rewinds the sender; selective repeat (IRN) NACKs
every out-of-order packet and resends each hole below it once (spuriously, when the hole was
only late); out-of-order placement holds the packet and resends only on timeout. The memory a
sender and receiver need is set by the reorder window: 4 bitmaps of reorder_window bits and a
transmit-epoch byte per packet per QP (3 KiB at the default 2048), whatever the occupancy.

Default: k=4 fat-tree, one 4 MB flow per host, DCQCN, 8 entropies per sprayed QP.
Writes results/reorder_cost/<policy>-<transport>/, reorder_cost.csv and reorder_cost.png.

    softdpu run reorder_cost
    softdpu run reorder_cost --set 'policies=["ecmp","spray_rr"]' --set 'transports=["sr","ooo"]'
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from controlplane.run.experiment import (variant_tasks, chosen, permutation_on_fat_tree, write_csv, prune_stale_variants, CcSpec, Count,
                                     ExperimentParams, FatTreeK, Item, ListOf, Quantity, for_each_in_order,
                                     run_scenario_task)
from controlplane.run.scenario import Scenario
from controlplane.config.units import MB
from dataplane.sim import lib
from pydantic import field_validator

POLICIES = ["ecmp", "ar", "flowlet", "plb", "reps", "spray_rr", "spray_random"]
TRANSPORTS = ["gbn", "sr", "ooo"]


class Params(ExperimentParams):
    """reorder_cost's parameters."""
    k: FatTreeK() = 4
    size_bytes: Quantity("size", "bytes per flow (one flow per host)", lo=1) = MB(4)
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    policies: ListOf(Item("choice", POLICIES), "path policies to compare", unique=True) = POLICIES
    transports: ListOf(Item("choice", TRANSPORTS), "transports to compare: gbn (go-back-N), sr (IRN selective "
                       "repeat), ooo (out-of-order placement)", unique=True) = TRANSPORTS
    num_paths: Count("entropies (paths) per QP when spraying", hi=lib.SD_MAX_PATHS) = 8
    reorder_window: Count("receiver reorder window of sr and ooo (packets, a power of 2)", lo=64,
                          hi=lib.SD_MAX_REORDER_WINDOW) = 2048

    @field_validator("reorder_window")
    @classmethod
    def _power_of_2(cls, v):
        if v & (v - 1):
            raise ValueError(f"must be a power of 2 (the data plane's reorder bitmaps), got {v}")
        return v


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(p: dict, seed: int) -> dict[str, Scenario]:
    out = {}
    for pol in chosen("policies", p["policies"], POLICIES):
        for tr in chosen("transports", p["transports"], TRANSPORTS):
            out[f"{pol}-{tr}"] = permutation_on_fat_tree(
                f"reorder-{pol}-{tr}", p["k"], p["size_bytes"], p["cc"], seed, "ecmp" if pol == "ar" else pol, tr,
                pol == "ar", transport_params=None if tr == "gbn" else {"reorder_window": int(p["reorder_window"])},
                num_paths=int(p["num_paths"]), sample_interval_ps=0, monitor_ports="none")
    return out


def run(out_dir: str | Path = "results/reorder_cost", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "reorder_cost")
    out = Path(out_dir)
    rows = []
    variants = scenarios(p, seed)
    prune_stale_variants(out, variants)
    names = list(variants)
    tasks = variant_tasks(out, variants, overrides, capture, receiver_stats)

    def report(i: int, res: dict) -> None:
        # in variant order, whichever worker ran it (softdpu run reorder_cost -j N)
        name, c, x = names[i], res["counters"], res["extra"]
        pol, tr = name.rsplit("-", 1)
        delivered = max(int(c["data_delivered"]), 1)
        rows.append({"policy": pol, "transport": tr, "reorder_peak": x["reorder_peak"],
                     "reorder_max_dist": x["reorder_max_dist"], "ooo_fraction": float(x["rx_ooo"] / delivered),
                     "duplicates": x["duplicates"], "retransmitted": int(c["retransmitted"]),
                     "mean_fct_us": x["mean_fct_us"], "completed": x["completed"], "flows": x["flows"],
                     "reorder_bytes_per_qp": 0 if tr == "gbn" else 4 * int(p["reorder_window"]) // 8})
        print(f"[{i + 1}/{len(variants)}] {name}: {c['events']:,} events, {res['wall_s']:.1f} s wall", file=sys.stderr)

    for_each_in_order(run_scenario_task, tasks, report)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "reorder_cost.csv", rows)
    print(f"{'policy':13s} {'mode':4s} {'peak':>5s} {'dist':>5s} {'ooo%':>6s} {'dups':>7s} {'retx':>8s} {'mean FCT':>9s}")
    for r in rows:
        print(f"{r['policy']:13s} {r['transport']:4s} {r['reorder_peak']:5d} {r['reorder_max_dist']:5d} "
              f"{r['ooo_fraction']:6.1%} {r['duplicates']:7d} {r['retransmitted']:8d} {r['mean_fct_us']:7.0f}us")
    if plots:
        print(f"plot: {plot(rows, out / 'reorder_cost.png')}")
    return {"rows": rows}


def receiver_stats(r) -> dict:
    """What the table needs of a run that only the in-memory run has: the receivers' reorder state."""
    f = r.flows
    rcv = r.network.sim.qps[r.network.receiver_qps]
    return {"reorder_peak": int(rcv["ooo_peak"].max()), "reorder_max_dist": int(rcv["ooo_max_dist"].max()),
            "rx_ooo": int(rcv["rx_ooo"].sum()), "duplicates": int(rcv["rx_dup"].sum()),
            "mean_fct_us": float(f["fct_ps"][f["fct_ps"] > 0].mean() / 1e6),
            "completed": int((f["fct_ps"] > 0).sum()), "flows": int(len(f["fct_ps"]))}


def plot(rows: list[dict], out_png: Path) -> Path:
    """Four panels of grouped bars (policy on x, one bar per transport), each y axis labelled
    with its unit. Retransmissions span 0 to 10^5: a symlog axis (linear below 1, log above)
    draws 0 at 0; every bar of value 0 is marked "0" so that it reads as zero, not missing."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    from controlplane.results.plots import tick_text
    pols = list(dict.fromkeys(r["policy"] for r in rows))
    trs = list(dict.fromkeys(r["transport"] for r in rows))
    panels = [("reorder_peak", "reorder buffer peak", "PSNs held beyond the expected PSN", 1.0, False),
              ("ooo_fraction", "packets arriving out of order", "% of delivered packets", 100.0, False),
              ("retransmitted", "retransmitted packets", "packets (0, then log scale)", 1.0, True),
              ("mean_fct_us", "mean FCT", "FCT (µs)", 1.0, False)]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.2))
    x = np.arange(len(pols))
    wbar = 0.8 / len(trs)
    for ax, (key, title, ylabel, scale, symlog) in zip(axes.ravel(), panels):
        top = 0.0
        for j, tr in enumerate(trs):
            vals = [scale * next((r[key] for r in rows if r["policy"] == pol and r["transport"] == tr), 0) for pol in pols]
            xs = x + (j - (len(trs) - 1) / 2) * wbar
            ax.bar(xs, vals, wbar, label=tr)
            top = max(top, max(vals, default=0.0))
            for xi, v in zip(xs, vals):
                if v == 0:
                    ax.text(xi, 0, "0", ha="center", va="bottom", fontsize=7, color="0.3")
        ax.set_xticks(x, pols, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        if symlog:
            ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
            decades = int(np.ceil(np.log10(max(top, 1.0))))
            ax.set_ylim(0, 10.0 ** (decades + 0.3))
            ax.yaxis.set_major_locator(FixedLocator([0] + [10.0 ** k for k in range(0, decades + 1)]))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
            ax.yaxis.set_minor_locator(NullLocator())
        else:
            ax.set_ylim(0, top * 1.1 if top > 0 else 1.0)
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=8, title="transport")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/reorder_cost"))
