"""QP scaling: RDMA throughput and latency as active QPs outgrow the NIC's QP-context cache.

One host opens N connections (QPs) round-robin to 16 peers and keeps them all busy with
`msgs` 512-byte RDMA WRITEs each (msgs = max(2, 16384 / N), so every point sends at least 16384
messages), no CC, one 100 Gb/s switch. Every host NIC has a QPC cache (native/qpc.c)
of `caches` entries (LRU, 1 us PCIe fetch, 16 fetches in flight), plus a run without any cache
(an ideal NIC) as the reference. The transmit scheduler serves QPs round-robin, one packet per
turn, so its access pattern is cyclic over the N QPs: LRU holds all of them while N <= entries
and misses on every send beyond that, where the NIC can send at most max_outstanding packets per
fetch round trip.

Per (N, cache), two runs. Saturated: aggregate payload throughput in steady state (messages
completed between the 50th and 90th percentile of completion times over that time; the whole-run
average, compulsory misses included, is in the CSV too). Open loop at `load` (30 % of line
rate): each QP posts a message every N / rate from a random phase; message latency = post to
completion (mean, p99). Both: the sender's share of sends that found their context cached
(a send that waited for a fill is a miss), the receivers' hit rate, fetches, evictions, mean
fetch wait. Writes qp_scale.csv and qp_scale.png.

    softdpu run qp_scale                       # 16 .. 16384 QPs, ~75 s
    softdpu run qp_scale --set scale=full      # 16 .. 65536 QPs, a few minutes
    softdpu run qp_scale --set 'caches=[1024]' --set max_outstanding=64 --set load=0.4
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from controlplane.run.experiment import (write_csv, apply_overrides, RATE_GBPS, Count, ExperimentParams, Flag, Items,
                                     Item, ListOf, Nullable, OneOf, Quantity, Real, Scaled, for_each_in_order)
from controlplane.dpu.qpc import QPC_DEFAULTS
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us
from controlplane.fabric.topology import MAX_HOSTS
from dataplane.sim import QPC_POLICIES
from pydantic import model_validator

from controlplane.transport.workload import MAX_FLOWS

SCALES = {"default": [16, 64, 256, 1024, 4096, 16384], "full": [16, 64, 256, 1024, 4096, 16384, 65536]}


class Params(ExperimentParams):
    """qp_scale's parameters."""
    scale: OneOf(tuple(SCALES), "preset QP counts: default (16 .. 16384), full (16 .. 65536)") = "default"
    qps: Nullable(Items(Item("int", lo=1, hi=2**24), unique=True), "QP counts to sweep (none: the scale's list; at most 2^24, RoCE's 24-bit QP numbers)") = None
    caches: ListOf(Item("int", lo=0), "QP-context cache sizes (entries) to compare", nonempty=False,
                   unique=True) = [256, 4096]
    baseline: Flag("also run without a QP-context cache (an ideal NIC)") = True
    peers: Count("peers the QPs are spread over, round-robin", hi=MAX_HOSTS - 1) = 16
    size_bytes: Quantity("size", "bytes per RDMA WRITE", lo=1) = 512
    min_msgs: Count("messages per run at least (each QP sends max(2, min_msgs / N))", hi=2**24) = 16384
    fetch_latency_ps: Quantity("time", "QP-context fetch latency (one PCIe read)") = QPC_DEFAULTS["fetch_latency_ps"]
    max_outstanding: Count("concurrent QP-context fetches") = QPC_DEFAULTS["max_outstanding"]
    policy: OneOf(tuple(QPC_POLICIES), "QP-context cache replacement policy") = "lru"
    rate_gbps: Scaled("rate", "Gb/s", "link rate", **RATE_GBPS) = 100
    load: Real("open-loop offered load (fraction of line rate)", lo=0, hi=1, lo_open=True) = 0.3

    @model_validator(mode="after")
    def _something_runs(self):
        if not self.caches and not self.baseline:
            raise ValueError("caches is empty and baseline is false: nothing would run")
        return self


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenario(p: dict, n_qps: int, entries: int | None, seed: int, open_loop: bool = False) -> Scenario:
    """Saturated (every message posted at t = 0) or open-loop: each QP posts a message every
    n_qps / rate, rate = load x line rate / message bits, from a random phase."""
    peers, size = int(p["peers"]), int(p["size_bytes"])
    msgs = max(2, int(p["min_msgs"]) // n_qps)
    if n_qps * msgs > MAX_FLOWS:        # refused before the list is made (min_msgs=2e400: MemoryError)
        raise ValueError(f"min_msgs: {n_qps:,} QPs x {msgs if msgs < 10**20 else f'{str(msgs)[:4]}...'} messages "
                         f"each is more than a workload takes ({MAX_FLOWS:,} messages); lower min_msgs or qps")
    if open_loop:
        period = n_qps * size * 8 * 1e12 / (float(p["load"]) * Gbps(p["rate_gbps"]))
        phase = np.random.default_rng([seed, n_qps]).random(n_qps)
        flows = [{"src": 0, "dst": 1 + i % peers, "size_bytes": size, "start_ps": int((k + phase[i]) * period),
                  "conn": i} for i in range(n_qps) for k in range(msgs)]
    else:
        flows = [{"src": 0, "dst": 1 + i % peers, "size_bytes": size, "start_ps": 0, "conn": i}
                 for i in range(n_qps) for _ in range(msgs)]
    qpc = None if entries is None else {"entries": int(entries), "fetch_latency_ps": int(p["fetch_latency_ps"]),
                                        "max_outstanding": int(p["max_outstanding"]), "policy": p["policy"]}
    return Scenario(name=f"qp_scale-{'load' if open_loop else 'sat'}-{n_qps}-{entries or 'none'}",
                    topology={"topology": "single_switch", "num_hosts": peers + 1,
                              "rate_bps": Gbps(p["rate_gbps"]), "delay_ps": us(1)},
                    workload={"kind": "flows", "flows": flows}, cc="none", seed=seed, qpc=qpc,
                    sample_interval_ps=0, monitor_ports="none", rto_ps=10**10)


def measure(r, prefix: str) -> dict:
    """Throughput, latency (post to completion, and first packet on the wire to completion) and
    the caches' hit rates of one run; a send that waited for a fill counts as a sender miss."""
    f, c, sim = r.flows, r.counters, r.network.sim
    n = len(f["size_bytes"])
    m = sim.msgs[:n]
    span = int(f["finish_ps"].max() - f["start_ps"].min())
    # steady state: the completions between the 50th and 90th percentile (past every QP's first,
    # compulsory, miss when each QP has >= 2 messages and the scheduler is round-robin)
    fin = np.sort(f["finish_ps"])
    a, b = n // 2, (9 * n) // 10
    steady = float((b - a) * f["size_bytes"][0] * 8e3 / max(int(fin[b] - fin[a]), 1))
    lat = (m["finish_ps"] - m["post_ps"]) / 1e6
    wire = (m["finish_ps"] - m["first_tx_ps"]) / 1e6
    row = {"throughput_gbps": steady, "throughput_whole_run_gbps": float(f["size_bytes"].sum() * 8e3 / span),
           "latency_mean_us": float(lat.mean()),
           "latency_p99_us": float(np.percentile(lat, 99)), "wire_latency_mean_us": float(wire.mean()),
           "completed": int(c["msgs_completed"]), "timeouts": int(c["timeouts"])}
    qh = sim.qpc_hosts
    if len(qh):
        sends = max(int(qh["tx_hits"][0]), 1)
        rx = qh["hits"] - qh["tx_hits"] + qh["misses"] - qh["tx_misses"] + qh["pending"]
        row.update({"sender_send_hit_rate": 1.0 - float(qh["tx_waited"][0]) / sends,
                    "sender_rx_hit_rate": float((qh["hits"][0] - qh["tx_hits"][0]) / max(rx[0], 1)),
                    "receiver_hit_rate": float(qh["hits"][1:].sum() / max(rx[1:].sum(), 1)),
                    "fetches": int(qh["fetches"].sum()), "evictions": int(qh["evictions"].sum()),
                    "mean_fetch_wait_us": float(qh["fetch_wait_ps"].sum() / max(qh["fetches"].sum(), 1) / 1e6)})
    else:
        row.update({"sender_send_hit_rate": 1.0, "sender_rx_hit_rate": 1.0, "receiver_hit_rate": 1.0, "fetches": 0,
                    "evictions": 0, "mean_fetch_wait_us": 0.0})
    return {f"{prefix}_{k}": v for k, v in row.items()}


def point(task: tuple) -> dict:
    """One (QP count, cache size), in whichever worker: its saturated and open-loop runs, one CSV row."""
    p, overrides, n, entries, seed, capture = task
    row = {"qps": n, "cache": entries if entries is not None else "none",
           "messages": max(2, int(p["min_msgs"]) // n) * n}
    for prefix, open_loop in (("sat", False), ("load", True)):
        sc = apply_overrides(scenario(p, n, entries, seed, open_loop), overrides)
        r = sc.run(None, capture=capture.for_variant(sc.name, True) if capture else None)
        row.update(measure(r, prefix))
    return row


def run(out_dir: str | Path = "results/qp_scale", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "qp_scale")
    qps = [int(n) for n in (p["qps"] or SCALES[p["scale"]])]
    caches = [int(e) for e in p["caches"]] + ([None] if p["baseline"] else [])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    tasks = [(p, overrides, n, entries, seed, capture) for entries in caches for n in qps]

    def report(i: int, row: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run qp_scale -j N)
        rows.append(row)
        print(f"cache {str(row['cache']):>5s} {row['qps']:6d} QPs: saturated {row['sat_throughput_gbps']:5.1f} Gb/s "
              f"(sends hit {row['sat_sender_send_hit_rate']:6.1%}); at {p['load']:.0%} load latency "
              f"{row['load_latency_mean_us']:7.2f} us, p99 {row['load_latency_p99_us']:7.2f} us (sends hit "
              f"{row['load_sender_send_hit_rate']:6.1%}, receivers {row['load_receiver_hit_rate']:6.1%})",
              file=sys.stderr)

    for_each_in_order(point, tasks, report)
    write_csv(out / "qp_scale.csv", rows)
    if plots:
        print(f"plot: {plot(rows, p, out / 'qp_scale.png')}")
    return {"rows": rows}


def plot(rows: list[dict], p: dict, out_png: Path) -> Path:
    """Saturated throughput, latency at the offered load (mean and p99) and the sender's send hit
    rate vs active QPs, one colour per cache size, each cache size marked by a vertical line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    caches = list(dict.fromkeys(r["cache"] for r in rows))
    for k, cache in enumerate(caches):
        rs = sorted((r for r in rows if r["cache"] == cache), key=lambda r: r["qps"])
        x = [r["qps"] for r in rs]
        label = "no cache (ideal NIC)" if cache == "none" else f"{cache} entries"
        color = "k" if cache == "none" else f"C{k}"
        ls = "--" if cache == "none" else "-"
        axes[0].plot(x, [r["sat_throughput_gbps"] for r in rs], marker="o", color=color, ls=ls, label=label)
        axes[1].plot(x, [r["load_latency_mean_us"] for r in rs], marker="o", color=color, ls=ls, label=f"{label}, mean")
        axes[1].plot(x, [r["load_latency_p99_us"] for r in rs], marker="x", color=color, ls=":", alpha=0.7,
                     label=f"{label}, p99")
        if cache != "none":
            axes[2].plot(x, [r["sat_sender_send_hit_rate"] for r in rs], marker="o", color=color,
                         label=f"{label}, saturated")
            axes[2].plot(x, [r["load_sender_send_hit_rate"] for r in rs], marker="s", color=color, ls=":",
                         label=f"{label}, {p['load']:.0%} load")
            for ax in axes:
                ax.axvline(cache, color=color, lw=0.8, alpha=0.4)
    titles = ["aggregate payload throughput, saturated (Gb/s)",
              f"message latency, post to completion, at {p['load']:.0%} load (us)",
              "sends that found their QP context cached"]
    for ax, t in zip(axes, titles):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("active QPs at the sender")
        ax.set_title(t, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylim(-0.02, 1.02)
    fig.suptitle(f"QPC cache: {p['size_bytes']} B WRITEs from one host to {p['peers']} peers at {p['rate_gbps']} Gb/s, "
                 f"fetch {p['fetch_latency_ps'] / 1e6:g} us, {p['max_outstanding']} in flight, {p['policy'].upper()} "
                 "(vertical lines: cache sizes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/qp_scale"))
