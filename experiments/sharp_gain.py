"""SHARP gain: speed-up of SHARP over a ring all-reduce vs N, InfiniBand-like vs NVSwitch-like fabric (V9).

A ring all-reduce moves 2(N-1)/N x S through every NIC, in-network reduction 1 x S up and 1 x S
down (Graham et al. COMHPC'16; nccl-tests doc/PERFORMANCE.md), so for large messages the ideal
speed-up of SHARP over a ring is 2(N-1)/N: 1.0 at N = 2, 1.75 at N = 8, about 2 for large N. What
eats into it:
  * N: a small domain (an NVSwitch joins 8 GPUs) caps the gain at 1.75;
  * fixed costs per operation (``op_overhead_ps`` at every aggregation step, the aggregation
    latency ``sharp_latency_ps``) against the time the bytes take: on fast NVLink the bytes of
    a message take 9x less time than on a 400 Gb/s NIC, so the same microseconds weigh 9x more;
  * the aggregation capacity (``sharp_rate_bps``, the rate of the aggregation engine's link):
    below the rate the members push, the switch, not the links, sets the pace.

Fabrics (controlplane/ai/rails.py, one rail; SHARP model in controlplane/ai/sharp.py):
  ib        32 servers, 400 Gb/s NICs, 8 per leaf, 4 leaves, 4 spines (non-blocking), 0.5 us
            links, 1 us aggregation latency, no per-operation overhead, line-rate aggregation
  nvswitch  8 GPUs on one switch, 3.6 Tb/s NVLink ports (450 GB/s), 100 ns links, 1 us
            aggregation latency, ``op_overhead_us`` (default 3 us, an assumption standing for
            NVLS's synchronisation and launch costs, not a measured figure) at every aggregation
            step, line-rate aggregation
  nvswitch-ideal  the same NVSwitch without the per-operation overhead, to separate the
            effect of N from that of the costs

A ring's own latency grows with N (2(N-1) dependent steps) while the tree's grows with its
depth, so on the IB-like fabric the measured gain can exceed 2(N-1)/N at large N.

The seed reports about 2x (InfiniBand SHARP) and about 1.3x (NVLink SHARP); the numbers here
come from the parameters above, which are assumptions stated in the CSV, not fitted to those
figures. Writes results/sharp_gain/sharp_gain.csv and sharp_gain.png.

    softdpu run sharp_gain
    softdpu run sharp_gain --set size_bytes=67108864 --set 'fabrics=["ib"]'
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from controlplane.ai import collectives as C
from controlplane.run.experiment import (chosen, collective_experiment_setup, rail_scenario, write_csv, apply_overrides,
                                     TIME_US, CcSpec, ExperimentParams, Item, ListOf, Quantity, Scaled,
                                     for_each_in_order)
from controlplane.ai.rails import Gpu
from controlplane.ai.sharp import sharp_all_reduce
from controlplane.config.units import Gbps, MiB, ns, us

FABRICS = {
    "ib": {"topology": {"host_rate_bps": Gbps(400), "host_delay_ps": ns(500), "num_rails": 1, "servers_per_leaf": 8,
                        "leaves_per_rail": 4, "spines_per_rail": 4, "cores_per_group": 1, "sharp": True,
                        "sharp_latency_ps": us(1)},
           "ranks": [2, 4, 8, 16, 32], "op_overhead_ps": 0},
    "nvswitch": {"topology": {"host_rate_bps": Gbps(3600), "host_delay_ps": ns(100), "num_rails": 1,
                              "servers_per_leaf": 8, "leaves_per_rail": 1, "spines_per_rail": 1, "cores_per_group": 1,
                              "sharp": True, "sharp_latency_ps": us(1)},
                 "ranks": [2, 4, 8], "op_overhead_ps": None},       # None: the op_overhead_us parameter
    "nvswitch-ideal": {"topology": {"host_rate_bps": Gbps(3600), "host_delay_ps": ns(100), "num_rails": 1,
                                    "servers_per_leaf": 8, "leaves_per_rail": 1, "spines_per_rail": 1,
                                    "cores_per_group": 1, "sharp": True, "sharp_latency_ps": us(1)},
                       "ranks": [2, 4, 8], "op_overhead_ps": 0},
}


class Params(ExperimentParams):
    """sharp_gain's parameters."""
    fabrics: ListOf(Item("choice", FABRICS), "fabrics to compare: ib, nvswitch, nvswitch-ideal", unique=True) = list(FABRICS)
    size_bytes: Quantity("size", "bytes per all-reduce", lo=1) = MiB(16)
    chunk_bytes: Quantity("size", "bytes per collective chunk (pipelining unit)", lo=1) = MiB(1)
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    op_overhead_us: Scaled("time", "us", "nvswitch: per-operation overhead at every aggregation step (an "
                           "assumption)", **TIME_US) = 3
    overheads_us: ListOf(Item("us", **TIME_US), "nvswitch: per-operation overheads to sweep", unit="us",
                         unique=True) = [0, 1, 3, 10, 30]


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def point(task: tuple) -> dict:
    """One (fabric, rank count), in whichever worker: ring and SHARP all-reduce, one CSV row."""
    p, overrides, fname, n, seed = task
    fab = dict(FABRICS[fname])
    if fab["op_overhead_ps"] is None:
        fab["op_overhead_ps"] = us(p["op_overhead_us"])
    ranks = [Gpu(s, 0) for s in range(n)]
    t, walls = {}, {}
    for algo in ("ring", "sharp"):
        sc = rail_scenario(f"sharp_gain-{fname}-{algo}-{n}", fab["topology"], p["cc"], seed)
        net = C.network(apply_overrides(sc, overrides))
        wall = time.perf_counter()
        if algo == "ring":
            sched = C.ring_all_reduce(net, ranks, int(p["size_bytes"]), chunk_bytes=int(p["chunk_bytes"]))
        else:
            sched = sharp_all_reduce(net, ranks, int(p["size_bytes"]), chunk_bytes=int(p["chunk_bytes"]),
                                     op_overhead_ps=fab["op_overhead_ps"])
        t[algo] = C.run_collective(net, sched)
        walls[algo] = time.perf_counter() - wall
    topo = fab["topology"]
    row = {"fabric": fname, "n_ranks": n, "size_bytes": int(p["size_bytes"]),
           "ring_us": round(t["ring"].time_ps / 1e6, 3), "sharp_us": round(t["sharp"].time_ps / 1e6, 3),
           "gain": round(t["ring"].time_ps / t["sharp"].time_ps, 4),
           "ideal_gain": round(2 * (n - 1) / n, 4),
           "ring_busbw_gbps": round(t["ring"].busbw_bps / 1e9, 2),
           "sharp_busbw_gbps": round(t["sharp"].busbw_bps / 1e9, 2),
           "link_gbps": topo["host_rate_bps"] / 1e9, "link_delay_ns": topo["host_delay_ps"] / 1e3,
           "sharp_latency_ns": topo["sharp_latency_ps"] / 1e3,
           "sharp_rate_gbps": (topo.get("sharp_rate_bps") or 0) / 1e9 or "line rate",
           "op_overhead_ns": fab["op_overhead_ps"] / 1e3}
    return {"row": row, "wall_s": walls, "time_ps": {a: t[a].time_ps for a in t}}


def run(out_dir: str | Path = "results/sharp_gain", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    rows = []
    tasks = [(p, overrides, fname, n, seed) for fname in chosen("fabrics", p["fabrics"], FABRICS)
             for n in FABRICS[fname]["ranks"]]

    def report(i: int, res: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run sharp_gain -j N)
        row = res["row"]
        for algo in ("ring", "sharp"):
            print(f"{row['fabric']:15s} N={row['n_ranks']:3d} {algo:5s} {res['time_ps'][algo] / 1e6:10.1f} us "
                  f"({res['wall_s'][algo]:.1f} s wall)", file=sys.stderr)
        rows.append(row)

    with C.partial_results(out, "sharp_gain.csv", rows):   # a stopped run keeps the rows so far
        for_each_in_order(point, tasks, report)
    write_csv(out / "sharp_gain.csv", rows)
    sweep = []
    if "nvswitch" in p["fabrics"]:
        with C.partial_results(out, "sharp_gain_overhead.csv", sweep):
            sweep += overhead_sweep(p, seed, overrides)
        write_csv(out / "sharp_gain_overhead.csv", sweep)
    print(f"{'fabric':15s} {'N':>4s} {'ring (us)':>10s} {'SHARP (us)':>11s} {'gain':>6s} {'2(N-1)/N':>9s}")
    for r in rows:
        print(f"{r['fabric']:15s} {r['n_ranks']:4d} {r['ring_us']:10.1f} {r['sharp_us']:11.1f} {r['gain']:6.2f} "
              f"{r['ideal_gain']:9.2f}")
    for r in sweep:
        print(f"nvswitch N={r['n_ranks']} op_overhead {r['op_overhead_us']:5.1f} us: gain {r['gain']:.2f}")
    if plots:
        print(f"plot: {plot(rows, sweep, out / 'sharp_gain.png')}")
    return {"rows": rows, "overhead_sweep": sweep}


def overhead_sweep(p: dict, seed: int, overrides: dict | None) -> list[dict]:
    """The NVSwitch at its largest N with each per-operation overhead of ``overheads_us``."""
    fab = FABRICS["nvswitch"]
    n = max(fab["ranks"])
    ranks = [Gpu(s, 0) for s in range(n)]
    size, chunk = int(p["size_bytes"]), int(p["chunk_bytes"])
    net = C.network(apply_overrides(rail_scenario("sharp_gain-overhead-ring", fab["topology"], p["cc"], seed), overrides))
    ring = C.run_collective(net, C.ring_all_reduce(net, ranks, size, chunk_bytes=chunk)).time_ps
    out = []
    for o in p["overheads_us"]:
        net = C.network(apply_overrides(rail_scenario("sharp_gain-overhead", fab["topology"], p["cc"], seed), overrides))
        t = C.run_collective(net, sharp_all_reduce(net, ranks, size, chunk_bytes=chunk, op_overhead_ps=us(o))).time_ps
        out.append({"fabric": "nvswitch", "n_ranks": n, "size_bytes": size, "op_overhead_us": o,
                    "ring_us": round(ring / 1e6, 3), "sharp_us": round(t / 1e6, 3), "gain": round(ring / t, 4)})
    return out


def plot(rows: list[dict], sweep: list[dict], out_png: Path) -> Path:
    """Left: speed-up of SHARP over ring vs N per fabric, with the 2(N-1)/N bound; right: the
    NVSwitch's speed-up vs the per-operation overhead."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    if sweep:
        bx.plot([r["op_overhead_us"] for r in sweep], [r["gain"] for r in sweep], marker="o", color="tab:orange")
        bx.axhline(2 * (sweep[0]["n_ranks"] - 1) / sweep[0]["n_ranks"], color="grey", lw=1)
        bx.set_xlabel("per-operation overhead of the aggregation (us)")
        bx.set_ylabel("speed-up of SHARP over ring")
        bx.set_title(f"NVSwitch-like, N = {sweep[0]['n_ranks']}")
        bx.grid(alpha=0.3)
    else:
        bx.set_visible(False)
    ns_all = sorted({r["n_ranks"] for r in rows})
    ax.plot(ns_all, [2 * (n - 1) / n for n in ns_all], color="grey", lw=1, label="2(N-1)/N (bytes per NIC)")
    for fname in dict.fromkeys(r["fabric"] for r in rows):
        pts = [(r["n_ranks"], r["gain"]) for r in rows if r["fabric"] == fname]
        x, y = zip(*pts)
        ax.plot(x, y, marker="o", label=fname)
        ax.annotate(f"{y[-1]:.2f}x", (x[-1], y[-1]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks N")
    ax.set_ylabel("speed-up of SHARP over ring (time ratio)")
    ax.set_title(f"In-network all-reduce gain, {rows[0]['size_bytes'] / 2**20:.0f} MiB per rank")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/sharp_gain"))
