"""FCT slowdown: Poisson flows from WebSearch and FB-Hadoop at 30 % and 50 % load on a fat-tree.

How much longer than alone does a flow of each size take under each congestion control? The HPCC
paper's Figure 11 method (validation target V5, docs/architecture.md): slowdown = FCT / standalone
FCT (base RTT + wire bytes / rate), flows grouped into size buckets by size percentile, p50/p95/p99
per bucket per algorithm.

Default scale (about half a minute on one core): k=4 fat-tree (16 hosts), 100 Gb/s, 1 us links,
flows arriving for 20 ms, PFC on. `--set scale=paper`: k=8 (128 hosts) with 400 Gb/s above the
ToRs, like the paper's 100/400 Gb/s fat-tree, flows arriving for 50 ms (much longer to run).
Writes results/fct_slowdown/<workload>-<load>/<cc>/ (a results folder each),
fct_slowdown.csv and fct_slowdown.png.

    softdpu run fct_slowdown
    softdpu run fct_slowdown --set 'ccs=["dcqcn","dctcp"]' --set 'loads=[0.5]' --set duration_us=2000
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from congestion import registry
from controlplane.results.folder import load_run
from controlplane.run.experiment import (apply_overrides, prune_stale_variants, TIME_US, Ccs, Count, ExperimentParams, Flag, Item, ListOf,
                                     Nullable, OneOf, for_each_in_order, run_scenario_task)
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us
from controlplane.config.values import closest
from pydantic import field_validator

SCALES = {
    "default": dict(topology={"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)},
                    duration_us=20000),
    "paper": dict(topology={"topology": "fat_tree", "k": 8, "host_rate_bps": Gbps(100), "host_delay_ps": us(1),
                            "agg_rate_bps": Gbps(400), "core_rate_bps": Gbps(400)}, duration_us=50000),
}


class Params(ExperimentParams):
    """fct_slowdown's parameters."""
    workloads: ListOf(Item("text"), "flow-size distributions (websearch, fb_hadoop, alistorage2019 or a CDF file), "
                      "one run each", unique=True) = ["websearch", "fb_hadoop"]
    loads: ListOf(Item("real", lo=0, hi=1, lo_open=True), "offered loads (fraction of host line rate), one run each",
                  unique=True) = [0.3, 0.5]
    ccs: Ccs("congestion-control algorithms, one variant each") = ["dcqcn", "dctcp", "timely", "hpcc", "swift", "nscc"]
    scale: OneOf(tuple(SCALES), "preset fabric: default (k=4 fat-tree), paper (k=8, 400 Gb/s above the "
                 "ToRs)") = "default"
    duration_us: Nullable(Item("us", lo=0, lo_open=True, hi=TIME_US["hi"]), "how long flows arrive "
                          "(none: the scale's, 20000 us default, 50000 us paper)", unit="us") = None
    buckets: Count("flow-size buckets (size percentiles) of the table") = 10
    pfc: Flag("lossless fabric (PFC)") = True

    @field_validator("workloads")
    @classmethod
    def _cdfs(cls, v):
        from controlplane.transport.workload import CDFS
        for i, w in enumerate(v):
            if w not in CDFS and not Path(w).is_file():
                near = closest(w, CDFS)
                raise ValueError(f"[{i}]: {w!r} is not one of {', '.join(CDFS)} nor a CDF file"
                                 + (f" (did you mean {near[0]}?)" if near else ""))
        return v


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(params: dict, seed: int) -> dict[str, Scenario]:
    p = Params.resolve(params, "fct_slowdown")
    scale = SCALES[p["scale"]]
    duration = int(float(p["duration_us"] or scale["duration_us"]) * 1e6)
    out = {}
    for wl in p["workloads"]:
        for load in p["loads"]:
            for cc in p["ccs"]:
                key = f"{wl}-{int(round(load * 100))}/{registry.label(cc)}"
                out[key] = Scenario(
                    name=f"fct-{wl}-{load:g}", topology=dict(scale["topology"]),
                    workload={"kind": "poisson", "cdf": wl, "load": load, "duration_ps": duration},
                    cc=cc, pfc=bool(p["pfc"]), seed=seed, sample_interval_ps=0, monitor_ports="none")
    return out


def slowdown_buckets(flows: dict, buckets: int) -> list[dict]:
    """Finished flows sorted by size, cut into `buckets` groups of equal count (size percentiles,
    as the HPCC repo's fct_analysis.py); p50/p95/p99 slowdown of each."""
    done = flows["fct_ps"] >= 0
    size, sd = flows["size_bytes"][done], flows["slowdown"][done]
    order = np.argsort(size, kind="stable")
    rows = []
    for i, idx in enumerate(np.array_split(order, buckets)):
        if idx.size == 0:
            continue
        p50, p95, p99 = np.percentile(sd[idx], [50, 95, 99])
        rows.append({"bucket": i, "size_hi_bytes": int(size[idx].max()), "flows": int(idx.size),
                     "p50": float(p50), "p95": float(p95), "p99": float(p99)})
    return rows


def run(out_dir: str | Path = "results/fct_slowdown", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "fct_slowdown")
    out = Path(out_dir)
    table, short = [], []
    variants = scenarios(p, seed)
    prune_stale_variants(out, variants)
    keys = list(variants)
    tasks = [(apply_overrides(sc, overrides), str(out / key),
              capture.for_variant(key.replace("/", "-"), True) if capture else None) for key, sc in variants.items()]

    def report(i: int, res: dict) -> None:
        # in variant order, whichever worker ran it (softdpu run fct_slowdown -j N)
        key, c = keys[i], res["counters"]
        print(f"[{i + 1}/{len(variants)}] {key}: {c['msgs_completed']}/{c['msgs_total']} flows, "
              f"{c['events']:,} events, {res['wall_s']:.1f} s wall, drops {c['dropped']}, "
              f"PFC pauses {c['pfc_pauses']}", file=sys.stderr)
        wl_load, cc = key.split("/")
        flows = load_run(out / key).flows
        case = {"workload": wl_load.rsplit("-", 1)[0], "load": int(wl_load.rsplit("-", 1)[1]) / 100, "cc": cc}
        buckets = slowdown_buckets(flows, int(p["buckets"]))
        for row in buckets:
            table.append({**case, **row})
        short.append(short_row(case, flows, buckets))

    for_each_in_order(run_scenario_task, tasks, report)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "fct_slowdown.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["workload", "load", "cc", "bucket", "size_hi_bytes", "flows", "p50", "p95", "p99"])
        w.writeheader()
        w.writerows(table)
    print_short_table(short)
    print(f"every bucket: {out / 'fct_slowdown.csv'}")
    if plots:
        print(f"plot: {plot(table, out / 'fct_slowdown.png')}")
    return {"rows": table}


def short_row(case: dict, flows: dict, buckets: list[dict]) -> dict:
    """One line of the printed table: slowdown p50/p95/p99 of the small flows (the first size
    bucket: the smallest 1/buckets of the finished flows) and of all finished flows."""
    done = flows["fct_ps"] >= 0
    sd = flows["slowdown"][done]
    first = buckets[0] if buckets else {"size_hi_bytes": 0, "flows": 0, "p50": np.nan, "p95": np.nan, "p99": np.nan}
    allp = np.percentile(sd, [50, 95, 99]) if sd.size else [np.nan] * 3
    return {**case, "flows": int(done.sum()), "small_hi_bytes": first["size_hi_bytes"],
            "small": [first["p50"], first["p95"], first["p99"]], "all": [float(v) for v in allp]}


#: fct_slowdown's own columns of a sweep's sweep.csv (controlplane/run/sweep.py) -> the label of its
#: panel in `softdpu plot` (None: not drawn unless named with --metrics): the printed table's
#: small-flow slowdown percentiles of each point, and the smallest bucket's largest flow size
SWEEP_METRICS = {"small_slowdown_p50": "small-flow slowdown p50", "small_slowdown_p95": "small-flow slowdown p95",
                 "small_slowdown_p99": "small-flow slowdown p99", "small_hi_bytes": None}


def sweep_metrics(run_dir: str | Path, params: dict) -> dict:
    """One point's :data:`SWEEP_METRICS`: p50/p95/p99 slowdown of the small flows (the first of
    ``buckets`` size buckets, as :func:`short_row` and the printed table) and that bucket's
    largest size in bytes."""
    p = Params.resolve(params, "fct_slowdown")
    flows = load_run(run_dir).flows
    buckets = slowdown_buckets(flows, int(p["buckets"]))
    if not buckets:
        return {}
    b = buckets[0]
    return {"small_slowdown_p50": b["p50"], "small_slowdown_p95": b["p95"], "small_slowdown_p99": b["p99"],
            "small_hi_bytes": b["size_hi_bytes"]}


def print_short_table(short: list[dict]) -> None:
    """The printed summary: one line per workload-load x CC (the full table is in the CSV)."""
    print("FCT slowdown (FCT / ideal FCT), p50/p95/p99: of the small flows (the smallest size bucket,"
          " sizes up to 'small <=') and of all finished flows")
    print(f"{'workload':10s} {'load':>4s} {'cc':8s} {'flows':>6s} {'small <=':>9s} {'small p50/p95/p99':>20s} "
          f"{'all p50/p95/p99':>20s}")
    for r in short:
        print(f"{r['workload']:10s} {r['load']:4.1f} {r['cc']:8s} {r['flows']:6d} {r['small_hi_bytes']:8d}B "
              f"{' / '.join(f'{v:5.2f}' for v in r['small']):>20s} {' / '.join(f'{v:5.2f}' for v in r['all']):>20s}")


def plot(table: list[dict], out_png: Path) -> Path:
    """Rows: workload x load; columns: p50, p95, p99 slowdown vs flow size (log), a line per CC."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from controlplane.results.plots import log_axis
    cases = sorted({(r["workload"], r["load"]) for r in table})
    ccs = list(dict.fromkeys(r["cc"] for r in table))
    fig, axes = plt.subplots(len(cases), 3, figsize=(13, 3.0 * len(cases)), squeeze=False, sharex="row")
    for i, (wl, load) in enumerate(cases):
        for j, pct in enumerate(("p50", "p95", "p99")):
            ax = axes[i, j]
            for cc in ccs:
                rows = [r for r in table if (r["workload"], r["load"], r["cc"]) == (wl, load, cc)]
                ax.plot([r["size_hi_bytes"] for r in rows], [r[pct] for r in rows], marker="o", ms=3, label=cc)
            ax.set_xscale("log")
            ys = [r[pct] for r in table if (r["workload"], r["load"]) == (wl, load) and r[pct] > 0]
            if ys:
                log_axis(ax, min(ys), max(ys), "y")
            ax.set_title(f"{wl}, load {load:.0%}: {pct} slowdown", fontsize=10)
            ax.grid(alpha=0.3, which="both")
            if i == len(cases) - 1:
                ax.set_xlabel("flow size (bytes, bucket upper bound)")
        axes[i, 0].set_ylabel("FCT / ideal FCT")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/fct_slowdown"))
