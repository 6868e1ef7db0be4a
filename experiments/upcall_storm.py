"""Upcall storm: new connections per second vs slow-path capacity (install latency, miss/lost rates, completions).

Every host of a star (100 Gb/s links) opens new connections to uniformly random peers, Poisson
arrivals at `rates` connections per second per host, for `window_us`; each connection (its own QP
pair) carries one `size_bytes` RDMA WRITE (one packet, answered by one ACK). All hosts have a
DPU vSwitch (dpu.offload `offload`) with the per-connection policy (a stateful ACL: a megaflow per
connection and direction), so each connection costs 4 upcalls: data out and ACK in at the
opener's DPU, data in and ACK out at the peer's; with uniform peers every DPU handles
4 x rate upcalls per second.

The slow path of each DPU is `handlers` FIFO servers costing the tax model's upcall cycles each
(20 000 by default, 10 us on a 2 GHz DPU core): its capacity is handlers x core_hz / upcall
cycles upcalls/s, so it saturates at

    rate_sat = handlers x core_hz / upcall_cycles / 4   connections/s per host

(drawn as vertical lines). Below it an install takes upcall service + install_latency (20 us);
above it the backlog grows until the bounded upcall queue (1024 slots) is full and packets are
lost (OVS's ``lost``); a connection whose packet waits longer than the RDMA timeout (1 ms) is
retransmitted, and the duplicate upcalls waste handler time, so completions fall below the
slow path's capacity (congestion collapse).

Per (handlers, rate): install latency p50/p99 (upcall to megaflow active), miss rate (miss / rx),
lost rate (lost / rx), the peak upcall-queue depth, duplicate upcalls, timeouts, and completed
connections/s per host in steady state (completions between window/4 and the end of the window).
Writes upcall_storm.csv and upcall_storm.png.

    softdpu run upcall_storm                                  # ~40 s
    softdpu run upcall_storm --set 'handlers=[5,16]' --set 'rates=[50000,100000,200000,400000]'
    softdpu run upcall_storm --set offload=host --set upcall_queue=256
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from controlplane.dpu import vtax
from controlplane.run.experiment import (write_csv, apply_overrides, RATE_GBPS, TIME_US, Count, ExperimentParams, Item,
                                     ListOf, OneOf, Overrides, Quantity, Scaled, for_each_in_order)
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us
from controlplane.fabric.topology import MAX_HOSTS
from controlplane.config import limits as _limits

UPCALLS_PER_CONNECTION = 4       # per DPU, per connection each host opens (see the docstring)


class Params(ExperimentParams):
    """upcall_storm's parameters."""
    hosts: Count("hosts on the switch, each with a DPU", lo=2, hi=MAX_HOSTS) = 8
    rate_gbps: Scaled("rate", "Gb/s", "link rate", **RATE_GBPS) = 100
    rates: ListOf(Item("real", lo=0, hi=10**9, lo_open=True), "new connections per second per host to sweep",
                  unit="connections/s", unique=True) = [5_000, 10_000, 20_000, 30_000, 40_000, 60_000, 80_000,
                                                        120_000, 160_000, 240_000]
    handlers: ListOf(Item("int", lo=1), "slow-path handler threads per DPU to sweep", unique=True) = [1, 2, 5]
    offload: OneOf(("dpu", "host"), "where the vSwitch runs: dpu (its cores) or host (software vSwitch)") = "dpu"
    size_bytes: Quantity("size", "bytes of each connection's one RDMA WRITE", lo=1) = 1024
    window_us: Scaled("time", "us", "how long connections arrive", **{**TIME_US, "lo_open": True}) = 5000
    drain_us: Scaled("time", "us", "time after the window to let connections finish", **TIME_US) = 2000
    upcall_queue: Count("slots of each DPU's upcall queue") = 1024
    install_latency_us: Scaled("time", "us", "megaflow install latency after the upcall is served", **TIME_US) = 10
    rto_us: Scaled("time", "us", "RDMA retransmission timeout", lo=_limits.RTO_FLOOR_PS / _limits.PS_PER_US,
                   hi=TIME_US["hi"]) = 1000
    tax: Overrides(vtax.Tax().model_dump(), "virtualization-tax model overrides (controlplane/dpu/vtax.py), e.g. "
                   "{\"upcall\": 5000}", "the Tax model, controlplane/dpu/vtax.py") = {}


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def saturation(p: dict, handlers: int) -> dict:
    """The slow path's capacity per DPU (upcalls/s) and the connection rate per host that fills it."""
    tp = vtax.params(p["tax"] or {})
    hz = tp["dpu_core_hz"] if p["offload"] == "dpu" else tp["host_core_hz"]
    ups = handlers * hz / tp["upcall"]
    return {"upcalls_per_s": ups, "conns_per_s": ups / UPCALLS_PER_CONNECTION}


def scenario(p: dict, handlers: int, rate: float, seed: int) -> Scenario:
    n, window = int(p["hosts"]), us(p["window_us"])
    rng = np.random.default_rng([seed, int(rate)])
    flows = []
    for h in range(n):
        t = rng.exponential(1e12 / rate)
        while t < window:
            d = int(rng.integers(n - 1))
            flows.append({"src": h, "dst": d + (d >= h), "size_bytes": int(p["size_bytes"]), "start_ps": int(t)})
            t += rng.exponential(1e12 / rate)
    flows.sort(key=lambda f: (f["start_ps"], f["src"]))
    return Scenario(name=f"upcall_storm-h{handlers}-{int(rate)}",
                    topology={"topology": "single_switch", "num_hosts": n, "rate_bps": Gbps(p["rate_gbps"]),
                              "delay_ps": us(1)},
                    workload={"kind": "flows", "flows": flows}, cc="none", seed=seed, sample_interval_ps=0,
                    monitor_ports="none", duration_ps=window + us(p["drain_us"]), rto_ps=us(p["rto_us"]),
                    dpu={"tenants": 1, "offload": p["offload"], "policy": {"per_connection": True},
                         "vswitch": {"upcall_queue": int(p["upcall_queue"])},
                         "slow_path": {"handlers": int(handlers), "install_latency_ps": us(p["install_latency_us"])},
                         "tax": dict(p["tax"] or {})})


def measure(r, p: dict) -> dict:
    c, f = r.counters, r.flows
    n, window = int(p["hosts"]), us(p["window_us"])
    rx = max(int(c["vs_rx"]), 1)
    fin, start = f["finish_ps"], f["start_ps"]
    steady = (fin >= window // 4) & (fin < window)
    done = fin >= 0
    conn_lat = (fin[done] - start[done]) / 1e6
    return {"offered_conns_per_s": float((start < window).sum() / (window / 1e12) / n),
            "completed_conns_per_s": float(steady.sum() / (0.75 * window / 1e12) / n),
            "completed_fraction": float(done.mean()) if len(fin) else 0.0,
            "install_latency_p50_us": c["sp_install_latency_p50_ps"] / 1e6,
            "install_latency_p99_us": c["sp_install_latency_p99_ps"] / 1e6,
            "conn_latency_p50_us": float(np.percentile(conn_lat, 50)) if len(conn_lat) else float("nan"),
            "conn_latency_p99_us": float(np.percentile(conn_lat, 99)) if len(conn_lat) else float("nan"),
            "vs_rx": int(c["vs_rx"]), "miss_rate": c["vs_miss"] / rx, "lost_rate": c["vs_lost"] / rx,
            "hit_rate": (c["vs_exact_hit"] + c["vs_masked_hit"]) / rx,
            "upcalls": int(c["sp_upcalls"]), "installs": int(c["sp_installs"]),
            "duplicate_upcalls": int(c["sp_duplicate_upcalls"]), "upcall_peak": int(c["vs_upcall_peak"]),
            "timeouts": int(c["timeouts"]), "dpu_cores_per_dpu": c["tax_dpu_cores"] / n,
            "host_cores_per_server": c["tax_host_cores"] / n}


def point(task: tuple) -> dict:
    """One (handlers, offered rate), in whichever worker: its run and CSV row."""
    p, overrides, handlers, rate, seed, capture = task
    sat = saturation(p, handlers)
    sc = apply_overrides(scenario(p, handlers, rate, seed), overrides)
    r = sc.run(None, capture=capture.for_variant(sc.name, True) if capture else None)
    return {"handlers": handlers, "rate": rate, "saturation_conns_per_s": sat["conns_per_s"],
            "saturation_upcalls_per_s": sat["upcalls_per_s"], **measure(r, p)}


def run(out_dir: str | Path = "results/upcall_storm", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "upcall_storm")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    tasks = [(p, overrides, int(h), float(rate), seed, capture) for h in p["handlers"] for rate in p["rates"]]

    def report(i: int, row: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run upcall_storm -j N)
        rows.append(row)
        handlers = row["handlers"]
        print(f"{handlers} handler{'s' if handlers > 1 else ' '} (saturate at {row['saturation_conns_per_s']:8,.0f} "
              f"conn/s/host) offered "
              f"{row['offered_conns_per_s']:8,.0f}: completed {row['completed_conns_per_s']:8,.0f}/s, install "
              f"p50 {row['install_latency_p50_us']:7.0f} us p99 {row['install_latency_p99_us']:7.0f} us, miss "
              f"{row['miss_rate']:6.1%}, lost {row['lost_rate']:6.1%}, queue peak {row['upcall_peak']:4d}, "
              f"timeouts {row['timeouts']}", file=sys.stderr)

    for_each_in_order(point, tasks, report)
    write_csv(out / "upcall_storm.csv", rows)
    summary(rows)
    if plots:
        print(f"plot: {plot(rows, p, out / 'upcall_storm.png')}")
    return {"rows": rows}


def summary(rows: list[dict]) -> None:
    for h in dict.fromkeys(r["handlers"] for r in rows):
        rs = [r for r in rows if r["handlers"] == h]
        best = max(rs, key=lambda r: r["completed_conns_per_s"])
        first_loss = next((r for r in sorted(rs, key=lambda r: r["rate"]) if r["lost_rate"] > 0), None)
        print(f"{h} handler{'s' if h > 1 else ''}: saturation {rs[0]['saturation_conns_per_s']:,.0f} conn/s per host; "
              f"peak completed "
              f"{best['completed_conns_per_s']:,.0f}/s at {best['rate']:,.0f} offered; "
              + (f"first loss at {first_loss['rate']:,.0f} offered (lost {first_loss['lost_rate']:.1%}, install p99 "
                 f"{first_loss['install_latency_p99_us']:,.0f} us)" if first_loss else "no loss in the sweep"))


def plot(rows: list[dict], p: dict, out_png: Path) -> Path:
    """(a) install latency p50/p99, (b) miss and lost rates, (c) completed connections/s, each vs
    offered connections/s per host, one colour per handler count; vertical lines: saturation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for i, h in enumerate(dict.fromkeys(r["handlers"] for r in rows)):
        rs = sorted((r for r in rows if r["handlers"] == h), key=lambda r: r["rate"])
        x = [r["offered_conns_per_s"] for r in rs]
        col = f"C{i}"
        lab = f"{h} handler{'s' if h > 1 else ''}"
        axes[0].plot(x, [r["install_latency_p50_us"] for r in rs], marker="o", color=col, label=f"{lab}, p50")
        axes[0].plot(x, [r["install_latency_p99_us"] for r in rs], marker="x", ls=":", color=col, label=f"{lab}, p99")
        axes[1].plot(x, [r["miss_rate"] for r in rs], marker="o", color=col, label=f"{lab}, miss / rx")
        axes[1].plot(x, [r["lost_rate"] for r in rs], marker="x", ls="--", color=col, label=f"{lab}, lost / rx")
        axes[2].plot(x, [r["completed_conns_per_s"] for r in rs], marker="o", color=col, label=lab)
        sat = rs[0]["saturation_conns_per_s"]
        for ax in axes:
            ax.axvline(sat, color=col, lw=1, alpha=0.5)
        axes[2].axhline(sat, color=col, lw=0.8, ls=":", alpha=0.6)
        axes[0].text(sat, 0.98, f" sat. {sat / 1000:g}k", color=col, fontsize=7, va="top",
                     transform=axes[0].get_xaxis_transform())
    lo = min(r["offered_conns_per_s"] for r in rows)
    hi = max(r["offered_conns_per_s"] for r in rows)
    axes[2].plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls=":", label="completed = offered")
    tp = vtax.params(p["tax"] or {})
    hz = tp["dpu_core_hz"] if p["offload"] == "dpu" else tp["host_core_hz"]
    axes[0].axhline(tp["upcall"] / hz * 1e6 + p["install_latency_us"], color="grey", lw=0.8, ls="-.")
    titles = ["(a) install latency, upcall to megaflow active (us)", "(b) packets missed / lost (per vSwitch rx)",
              "(c) completed connections/s per host (steady state)"]
    for ax, t in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("offered new connections/s per host")
        ax.set_title(t, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[1].set_ylim(-0.02, 1.02)
    axes[2].set_yscale("log")
    fig.suptitle(f"Upcall storm: {p['hosts']} hosts, one {p['size_bytes']} B WRITE per new connection, per-connection "
                 f"megaflows, offload {p['offload']} ({hz / 1e9:g} GHz), upcall {tp['upcall']:,.0f} cycles, install "
                 f"{p['install_latency_us']:g} us, queue {p['upcall_queue']}, RTO {p['rto_us']:g} us; vertical lines: "
                 f"handlers x core_hz / upcall cycles / {UPCALLS_PER_CONNECTION} upcalls per connection", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/upcall_storm"))
