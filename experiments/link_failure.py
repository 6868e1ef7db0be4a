"""Link failure: a core link fails mid-run; throughput over time and tail FCT per path policy.

How much throughput is lost, for how long, and what happens to the tail FCT under each policy?

ECMP flows hashed onto the dead link lose every packet until the NIC detects the failure and
moves them (detect_us), or routing reconverges (reconverge_us); sprayed flows lose only the share
of packets on the dead path, and out-of-order placement retransmits just those; adaptive routing
steers around the dead port at once (switches skip links that are down).

Default: k=4 fat-tree (16 hosts, 100 Gb/s, 1 us links), one 16 MB flow per host, DCQCN; the
aggregation-core link 47 fails at 300 us; NICs detect it after 100 us; routing reconverges after
1 ms. Writes results/link_failure/<variant>/ (a results folder each), link_failure.csv (summary),
link_failure_throughput.csv (aggregate rate of bytes placed at the receivers over time) and link_failure.png.

    softdpu run link_failure
    softdpu run link_failure --set detect_us=1000 --set 'variants=["ecmp-gbn","spray_rr-ooo"]'
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from controlplane.results.folder import percentile
from controlplane.run.experiment import (variant_tasks, chosen, permutation_on_fat_tree, write_csv, prune_stale_variants, TIME_US, CcSpec,
                                     Count, ExperimentParams, FatTreeK, Item, ListOf, Quantity, Scaled,
                                     for_each_in_order)
from controlplane.run.scenario import Scenario
from controlplane.config.units import MB, us
from controlplane.config import limits as _limits

VARIANTS = {   # name -> (path policy, transport, adaptive routing)
    "ecmp-gbn": ("ecmp", "gbn", False),
    "ecmp-sr": ("ecmp", "sr", False),
    "spray_rr-ooo": ("spray_rr", "ooo", False),
    "reps-ooo": ("reps", "ooo", False),
    "plb-ooo": ("plb", "ooo", False),
    "ar-ooo": ("ecmp", "ooo", True),
}


class Params(ExperimentParams):
    """link_failure's parameters."""
    k: FatTreeK() = 4
    size_bytes: Quantity("size", "bytes per flow (one flow per host)", lo=1) = MB(16)
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    link: Count("index of the link that fails (47: an aggregation-core link of the k=4 fat-tree)", lo=0) = 47
    fail_us: Scaled("time", "us", "when the link fails", **TIME_US) = 300
    detect_us: Scaled("time", "us", "NIC failure detection time (ECMP flows move off the link)", **TIME_US) = 100
    reconverge_us: Scaled("time", "us", "routing reconvergence time", **TIME_US) = 1000
    variants: ListOf(Item("choice", VARIANTS), "path policy + transport variants to run", unique=True) = list(VARIANTS)
    sample_us: Scaled("time", "us", "time-series sampling interval",
                      lo=_limits.SAMPLE_FLOOR_PS / _limits.PS_PER_US, hi=TIME_US["hi"]) = 10


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(p: dict, seed: int) -> dict[str, Scenario]:
    out = {}
    for name in chosen("variants", p["variants"], VARIANTS):
        paths, transport, ar = VARIANTS[name]
        out[name] = permutation_on_fat_tree(
            f"link_failure-{name}", p["k"], p["size_bytes"], p["cc"], seed, paths, transport, ar,
            failures=[{"link": int(p["link"]), "down_ps": us(p["fail_us"])}],
            failure_params={"detect_ps": us(p["detect_us"]), "reconverge_ps": us(p["reconverge_us"])},
            sample_interval_ps=us(p["sample_us"]), monitor_ports="none")
    return out


def run(out_dir: str | Path = "results/link_failure", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "link_failure")
    out = Path(out_dir)
    summary, series = [], {}
    variants = scenarios(p, seed)
    prune_stale_variants(out, variants)
    names = list(variants)
    tasks = variant_tasks(out, variants, overrides, capture)

    def report(i: int, res: dict) -> None:
        # in variant order, whichever worker ran it (softdpu run link_failure -j N)
        name, s, c = names[i], res["summary"], res["counters"]
        series[name] = res["series"]
        summary.append(s)
        print(f"[{i + 1}/{len(variants)}] {name}: {s['completed']}/{s['flows']} flows, p99 FCT {s['p99_fct_us']:.0f} us, "
              f"max {s['max_fct_us']:.0f} us, {s['failure_drops']} packets lost to the failure, "
              f"{c['events']:,} events, {res['wall_s']:.1f} s wall", file=sys.stderr)

    for_each_in_order(run_variant, [(n, *t) for n, t in zip(names, tasks)], report)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "link_failure.csv", summary)
    with open(out / "link_failure_throughput.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "t_us", "placed_gbps"])
        for name, (t, g) in series.items():
            w.writerows([name, f"{a:.3f}", f"{b / 1e9:.3f}"] for a, b in zip(t, g))
    print(f"{'variant':14s} {'p50 FCT':>9s} {'p99 FCT':>9s} {'max FCT':>9s} {'lost':>6s} {'retx':>8s} {'RTOs':>5s}")
    for s in summary:
        print(f"{s['variant']:14s} {s['p50_fct_us']:7.0f}us {s['p99_fct_us']:7.0f}us {s['max_fct_us']:7.0f}us "
              f"{s['failure_drops']:6d} {s['retransmitted']:8d} {s['timeouts']:5d}")
    if plots:
        print(f"plot: {plot(series, summary, p, out / 'link_failure.png')}")
    return {"summary": summary}


def run_variant(task: tuple) -> dict:
    """One variant, in whichever worker: run it with the receivers' placed bytes sampled at each
    control tick, write its results folder, return its summary row and throughput series."""
    name, sc, run_dir, spec = task
    net = sc.build()
    placed: list[tuple[int, int]] = []
    # receiver side: bytes placed in memory (in or out of order), sampled at each control tick;
    # the sender's cumulative ACKs jump when a hole fills, so they would show bursts that never were
    net.tick_hooks.append(lambda n: placed.append((n.sim.now, int(n.sim.qps[n.receiver_qps]["rx_bytes"].sum()))))
    if spec:
        spec.attach(net)
    try:
        r = net.run()
    finally:
        if spec:
            spec.close(net)
    r.write(run_dir)
    f, c = r.flows, r.counters
    done = f["fct_ps"] > 0
    fct = f["fct_ps"][done] / 1e6
    t = np.array([0] + [a for a, _ in placed], dtype=np.float64)
    b = np.array([0] + [v for _, v in placed], dtype=np.float64)
    series = (t[1:] / 1e6, np.diff(b) * 8e12 / np.maximum(np.diff(t), 1))
    s = {"variant": name, "flows": int(len(f["fct_ps"])), "completed": int(done.sum()),
         "p50_fct_us": percentile(fct, 50), "p99_fct_us": percentile(fct, 99),
         "max_fct_us": percentile(fct, 100), "failure_drops": int(c["failure_drops"]),   # NaN: none completed
         "retransmitted": int(c["retransmitted"]), "timeouts": int(c["timeouts"])}
    return {"summary": s, "series": series, "counters": c, "wall_s": r.wall_s}


def plot(series: dict, summary: list[dict], p: dict, out_png: Path) -> Path:
    """Left: aggregate goodput over time, failure/detection/reconvergence marked, each policy with
    its own marker and line style (the legend names policies whose curves coincide); right: tail FCT."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    from controlplane.results.plots import legend_with_note, series_style
    for i, (name, (t, g)) in enumerate(series.items()):  # own marker + dashes: coinciding series stay visible
        every = max(1, len(t) // 10)
        a.plot(t, g / 1e9, label=name, lw=1.2, ms=4, markevery=(i * every // 8, every), **series_style(i))
    for x, label in ((p["fail_us"], "link down"), (p["fail_us"] + p["detect_us"], "NIC detects"),
                     (p["fail_us"] + p["reconverge_us"], "routes reconverge")):
        a.axvline(x, color="gray", ls="--", lw=0.8)
        a.text(x, 0.02, " " + label, rotation=90, fontsize=7, color="gray", va="bottom", transform=a.get_xaxis_transform())
    a.set_xlabel("time (us)")
    a.set_ylabel("bytes placed at receivers (Gb/s)")
    a.grid(alpha=0.3)
    legend_with_note(a, fontsize=8, loc="lower right")
    names = [s["variant"] for s in summary]
    x = np.arange(len(names))
    b.bar(x - 0.2, [s["p99_fct_us"] for s in summary], 0.4, label="p99 FCT")
    b.bar(x + 0.2, [s["max_fct_us"] for s in summary], 0.4, label="max FCT")
    b.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    b.set_ylabel("FCT (us)")
    b.legend(fontsize=8)
    b.grid(alpha=0.3, axis="y")
    fig.suptitle(f"k={p['k']} fat-tree permutation, link {p['link']} fails at {p['fail_us']} us")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/link_failure"))
