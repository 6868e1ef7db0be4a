"""All-to-all across rails: through the third tier vs an NVLink relay (PXN-like), vs third-tier oversubscription.

On a rail-optimized fabric GPU i of every server sits on rail i, so an all-to-all sends most of
its bytes between GPUs on different rails: (G-1)/G of every rank's blocks to other servers go
to another rail. Sent directly, they climb leaf -> spine -> core -> spine -> leaf: the third
tier carries them, and it is often the thinnest tier (rails are built for all-reduce). Sent
the PXN way (collectives.all_to_all via="nvlink"), a block first crosses NVLink to the sending
server's GPU on the destination's rail and then travels on that rail: nothing climbs to the
cores, at the cost of NVLink bytes and a store-and-forward per chunk.

Default: 8 servers x 4 GPUs (32 ranks), 4 servers per leaf, 2 leaves and 2 spines per rail,
2 cores per group, 100 Gb/s NICs, NVLink 3.6 Tb/s per GPU, 1 us links, DCQCN; per-rank
message sizes 1, 4 and 16 MiB; third tier non-blocking (core_oversubscription 1) and 4:1;
ECMP (go-back-N) and spraying (spray_rr, out-of-order placement). busbw = algbw x (N-1)/N
(nccl-tests). Writes results/alltoall_rails/alltoall_rails.csv and alltoall_rails.png.

    softdpu run alltoall_rails
    softdpu run alltoall_rails --set 'core_oversubscription=[1,2,4,8]' --set 'variants=["spray"]'
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from controlplane.ai import collectives as C
from controlplane.run.experiment import (AI_PATH_VARIANTS, chosen, collective_experiment_setup, rail_scenario, write_csv,
                                     apply_overrides, RATE_GBPS, CcSpec, Count, ExperimentParams, Item, ListOf,
                                     Quantity, Scaled, for_each_in_order)
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.config.units import Gbps, MiB, ns, us

VIAS = ("direct", "nvlink")


class Params(ExperimentParams):
    """alltoall_rails's parameters."""
    num_rails: Count("rails (GPUs and NICs per server)") = 4
    servers_per_leaf: Count("servers under each leaf") = 4
    leaves_per_rail: Count("leaf switches per rail") = 2
    spines_per_rail: Count("spine switches per rail") = 2
    cores_per_group: Count("core switches per group") = 2
    rate_gbps: Scaled("rate", "Gb/s", "GPU NIC link rate", **RATE_GBPS) = 100
    nvlink_gbps: Scaled("rate", "Gb/s", "NVLink bandwidth per GPU", **RATE_GBPS) = 3600
    sizes: ListOf(Item("size", lo=1), "per-rank message sizes", unit="bytes", unique=True) = [MiB(1), MiB(4), MiB(16)]
    core_oversubscription: ListOf(Item("real", lo=0, lo_open=True), "third-tier (spine-core) oversubscription "
                                  "ratios, one fabric each", unique=True) = [1, 4]
    vias: ListOf(Item("choice", VIAS), "all-to-all routes: direct (through the third tier) or nvlink (PXN-like "
                 "relay)", unique=True) = list(VIAS)
    variants: ListOf(Item("choice", AI_PATH_VARIANTS), "path-policy variants: ecmp (go-back-N), spray (spray_rr, "
                     "out of order), ar (adaptive routing)", unique=True) = ["ecmp", "spray"]
    cc: CcSpec("the congestion-control algorithm") = "dcqcn"
    chunk_bytes: Quantity("size", "bytes per collective chunk (pipelining unit)", lo=1) = MiB(1) // 4


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def topology(p: dict, over: float) -> dict:
    return {"host_rate_bps": Gbps(p["rate_gbps"]), "host_delay_ps": us(1), "num_rails": int(p["num_rails"]),
            "servers_per_leaf": int(p["servers_per_leaf"]), "leaves_per_rail": int(p["leaves_per_rail"]),
            "spines_per_rail": int(p["spines_per_rail"]), "cores_per_group": int(p["cores_per_group"]),
            "core_oversubscription": float(over), "nvlink_rate_bps": Gbps(p["nvlink_gbps"]),
            "nvlink_delay_ps": ns(100)}


def point(task: tuple) -> dict:
    """One (variant, oversubscription, route, size), in whichever worker: its all-to-all and CSV row."""
    p, overrides, variant, over, via, size, seed = task
    sc = rail_scenario(f"alltoall-{via}", topology(p, over), p["cc"], seed, variant)
    net = C.network(apply_overrides(sc, overrides))
    lay = RailLayout.of(net.fabric)
    ranks = [Gpu(s, r) for s in range(lay.num_servers) for r in range(lay.R)]
    wall = time.perf_counter()
    r = C.run_collective(net, C.all_to_all(net, ranks, size, via=via, chunk_bytes=int(p["chunk_bytes"])))
    ports = net.sim.ports
    core_bytes = int(sum(int(ports["tx_bytes"][q]) for q in range(net.fabric.num_ports)
                         if net.fabric.node_tier[net.fabric.port_owner(q)] == 3))
    row = {"variant": variant, "core_oversubscription": over, "via": via, "n_ranks": r.n_ranks,
           "size_bytes": size, "time_us": round(r.time_ps / 1e6, 3),
           "algbw_gbps": round(r.algbw_bps / 1e9, 3), "busbw_gbps": round(r.busbw_bps / 1e9, 3),
           "core_tx_bytes": core_bytes, "retransmitted": net.sim.counters()["retransmitted"]}
    return {"row": row, "wall_s": time.perf_counter() - wall}


def run(out_dir: str | Path = "results/alltoall_rails", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    rows = []
    tasks = [(p, overrides, variant, over, via, int(size), seed)
             for variant in chosen("variants", p["variants"], AI_PATH_VARIANTS) for over in p["core_oversubscription"]
             for via in chosen("vias", p["vias"], VIAS) for size in p["sizes"]]

    def report(i: int, res: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run alltoall_rails -j N)
        x = res["row"]
        rows.append(x)
        print(f"{x['variant']:5s} core {x['core_oversubscription']}:1 {x['via']:6s} {x['size_bytes']:>10,d} B: "
              f"{x['time_us']:9.1f} us busbw {x['busbw_gbps']:6.1f} Gb/s, core bytes {x['core_tx_bytes'] / 1e6:8.1f} MB "
              f"({res['wall_s']:.1f} s wall)", file=sys.stderr)

    with C.partial_results(out, "alltoall_rails.csv", rows):   # a stopped run keeps the rows so far
        for_each_in_order(point, tasks, report)
    write_csv(out / "alltoall_rails.csv", rows)
    print(f"{'variant':7s} {'core':>5s} {'via':7s} {'size (B)':>11s} {'time (us)':>10s} {'busbw (Gb/s)':>13s} "
          f"{'core MB':>9s}")
    for x in rows:
        print(f"{x['variant']:7s} {x['core_oversubscription']:>3}:1 {x['via']:7s} {x['size_bytes']:11,d} "
              f"{x['time_us']:10.1f} {x['busbw_gbps']:13.1f} {x['core_tx_bytes'] / 1e6:9.1f}")
    if plots:
        print(f"plot: {plot(rows, out / 'alltoall_rails.png')}")
    return {"rows": rows}


def plot(rows: list[dict], out_png: Path) -> Path:
    """busbw vs per-rank size, one panel per third-tier oversubscription, lines per via x variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    overs = list(dict.fromkeys(r["core_oversubscription"] for r in rows))
    fig, axes = plt.subplots(1, len(overs), figsize=(5.5 * len(overs), 4.2), sharey=True, squeeze=False)
    from controlplane.results.plots import SERIES_STYLES, legend_with_note
    colors = {"direct": "tab:red", "nvlink": "tab:green"}
    # colour and line style per route, hollow marker per path variant: through NVLink the
    # variants coincide (no byte reaches a core switch) and stay visible by their markers
    vias = list(dict.fromkeys(r["via"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for ax, over in zip(axes[0], overs):
        for variant in variants:
            for via in vias:
                pts = [(r["size_bytes"], r["busbw_gbps"]) for r in rows
                       if r["core_oversubscription"] == over and r["variant"] == variant and r["via"] == via]
                if pts:
                    x, y = zip(*pts)
                    label = ("third tier" if via == "direct" else "NVLink (PXN)") + f" / {variant}"
                    ax.plot(x, y, linestyle=SERIES_STYLES[vias.index(via) % len(SERIES_STYLES)][1],
                            marker=SERIES_STYLES[variants.index(variant) % len(SERIES_STYLES)][0], ms=7,
                            markerfacecolor="none", color=colors.get(via), label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bytes per rank S")
        ax.set_title(f"third tier {over}:1 oversubscribed")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("all-to-all busbw (Gb/s) = S/t x (N-1)/N")
    for ax in axes[0]:
        from controlplane.results.plots import coincide_note
        note = coincide_note(ax)
        if note:
            ax.text(0.02, 0.55, note.replace("; ", "\n"), transform=ax.transAxes, fontsize=7, color="0.35",
                    va="center")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"All-to-all over {rows[0]['n_ranks']} GPUs on a rail-optimized fabric")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/alltoall_rails"))
