"""Virtualization tax: host cores a software vSwitch burns vs DPU offload, for long-lived vs per-message connections.

Every host of a star (100 Gb/s links) sends 64 KB RDMA WRITEs to its peers at an offered load
(Gb/s per server), open loop; all hosts have a DPU vSwitch with the per-connection policy (a
stateful ACL: one megaflow per connection and direction, dpu.policy.per_connection), one tenant.
Two traffic mixes of the same messages:

  long   every host keeps `long_conns` long-lived connections (to the next hosts), opened by a
         one-packet message at t = 0 (the warm-up installs their megaflows), and posts its
         messages on them, round-robin, at evenly spaced times: in steady state nothing misses.
  short  every message is a new connection (its own QP pair) to a uniformly random peer, Poisson
         arrivals: each connection's first packets miss at both DPUs, in both directions (a
         64 KB message is sent in ~5 us at line rate, less than the ~20 us an install takes, so
         nearly every packet of it is upcalled).

For offload "host" (software vSwitch: the pipeline and the upcall handlers on 2.5 GHz host cores)
"dpu" (the same on 2 GHz DPU cores) and "hw" (the fast path in the DPU's switch hardware, only
the upcall handlers on its cores), the virtualization-tax model (controlplane/dpu/vtax.py)
prices the vSwitch counters accumulated in a measurement window after a warm-up: cores =
cycles / window / core Hz, per server; host cores x $900 per core-year (Azure AccelNet, NSDI'18)
= $/server/year. The slow path has `handlers` threads per DPU (default 5): once the upcalls of
the short mix need more than that, the upcall queue fills, packets are lost, transport retries
and the achieved load falls behind the offered load.

Writes virtualization_tax.csv (one row per mix, offload and load: offered/achieved Gb/s per
server, miss and lost rates, cycles per packet by stage, host and DPU cores per server,
$/server/year) and virtualization_tax.png (cores vs achieved load; cycles/packet by stage).

    softdpu run virtualization_tax                         # ~20 s
    softdpu run virtualization_tax --set 'loads_gbps=[1,5,20]' --set handlers=16
    softdpu run virtualization_tax --set 'offloads=["host"]' --set 'tax={"upcall": 5000}'
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from controlplane.dpu import vtax
from controlplane.run.experiment import (chosen, write_csv, apply_overrides, RATE_GBPS, TIME_US, Count, ExperimentParams,
                                     Flag, Item, ListOf, Overrides, Quantity, Scaled, for_each_in_order)
from controlplane.run.scenario import Scenario
from controlplane.fabric.topology import MAX_HOSTS
from controlplane.transport.workload import MAX_FLOWS
from controlplane.config.units import Gbps, KB, us
from controlplane.fabric.topology import MAX_HOSTS

MIXES = ["long", "short"]
OFFLOADS = ["host", "dpu", "hw"]
STAGES = ["parse", "lookup", "probe", "action", "encap", "copy", "upcall"]


class Params(ExperimentParams):
    """virtualization_tax's parameters."""
    hosts: Count("hosts on the switch, each with a DPU", lo=2, hi=MAX_HOSTS) = 8
    rate_gbps: Scaled("rate", "Gb/s", "link rate", **RATE_GBPS) = 100
    loads_gbps: ListOf(Item("Gb/s", lo=0, lo_open=True), "offered loads per server to sweep", unit="Gb/s",
                       unique=True) = [1, 2, 5, 10, 20, 40, 80]
    mixes: ListOf(Item("choice", MIXES), "traffic mixes: long (long-lived connections), short (a connection per "
                  "message)", unique=True) = MIXES
    offloads: ListOf(Item("choice", OFFLOADS), "where the vSwitch runs, one variant each: host, dpu, hw",
                     unique=True) = OFFLOADS
    msg_bytes: Quantity("size", "bytes per message", lo=1) = KB(64)
    long_conns: Count("long-lived connections per host (long mix)", hi=2**16) = 2
    handshake_bytes: Quantity("size", "bytes of the one-packet message that opens a long-lived connection", lo=1) = 1024
    warmup_us: Scaled("time", "us", "warm-up before the measurement window", **TIME_US) = 500
    window_us: Scaled("time", "us", "measurement window", **{**TIME_US, "lo_open": True}) = 3000
    handlers: Count("slow-path handler threads per DPU") = 5
    per_connection: Flag("per-connection policy (a megaflow per connection and direction)") = True
    bar_load_gbps: Scaled("rate", "Gb/s", "offered load of the cycles-per-stage bars (one of loads_gbps)",
                          **RATE_GBPS) = 2
    tax: Overrides(vtax.Tax().model_dump(), "virtualization-tax model overrides (controlplane/dpu/vtax.py), e.g. "
                   "{\"upcall\": 5000}", "the Tax model, controlplane/dpu/vtax.py") = {}


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def flows(p: dict, mix: str, load_gbps: float, seed: int) -> list[dict]:
    """Messages of `msg_bytes` from every host at `load_gbps` over [0, warmup + window)."""
    n, size = int(p["hosts"]), int(p["msg_bytes"])
    end = us(p["warmup_us"]) + us(p["window_us"])
    gap = size * 8 * 1e12 / (load_gbps * 1e9)            # per host
    # refuse before generating: hosts = 2e400 used to run out of memory in this loop
    if n > MAX_HOSTS:
        raise ValueError(f"hosts must be at most {MAX_HOSTS:,} (a fabric's host limit), got "
                         f"{n if n < 10**20 else f'{str(n)[:4]}... ({len(str(n))} digits)'}")
    about = n * (end / max(gap, 1e-9) + int(p["long_conns"]) + 1)
    if about > MAX_FLOWS:
        raise ValueError(f"hosts x (warmup_us + window_us) x loads_gbps / msg_bytes gives about {about:,.0f} messages "
                         f"at {load_gbps:g} Gb/s, more than a workload takes ({MAX_FLOWS:,}): lower hosts, "
                         f"loads_gbps or window_us, or raise msg_bytes")
    rng = np.random.default_rng([seed, int(load_gbps * 1000), MIXES.index(mix)])
    out = []
    for h in range(n):
        if mix == "long":
            k = int(p["long_conns"])
            conns = [h * k + j for j in range(k)]
            dsts = [(h + 1 + j) % n for j in range(k)]
            for c, d in zip(conns, dsts):             # the handshake: installs the connection's megaflows
                out.append({"src": h, "dst": d, "size_bytes": int(p["handshake_bytes"]), "start_ps": 0, "conn": c})
            t, i = us(p["warmup_us"]) + rng.random() * gap, 0
            while t < end:
                out.append({"src": h, "dst": dsts[i % k], "size_bytes": size, "start_ps": int(t), "conn": conns[i % k]})
                t += gap
                i += 1
        else:
            t = rng.exponential(gap)
            while t < end:
                d = int(rng.integers(n - 1))
                out.append({"src": h, "dst": d + (d >= h), "size_bytes": size, "start_ps": int(t)})
                t += rng.exponential(gap)
    out.sort(key=lambda f: (f["start_ps"], f["src"]))
    return out


def scenario(p: dict, mix: str, offload: str, load_gbps: float, seed: int) -> Scenario:
    return Scenario(name=f"vtax-{mix}-{offload}-{load_gbps:g}",
                    topology={"topology": "single_switch", "num_hosts": int(p["hosts"]),
                              "rate_bps": Gbps(p["rate_gbps"]), "delay_ps": us(1)},
                    workload={"kind": "flows", "flows": flows(p, mix, load_gbps, seed)}, cc="none", seed=seed,
                    sample_interval_ps=0, monitor_ports="none",
                    duration_ps=us(p["warmup_us"]) + us(p["window_us"]),
                    dpu={"tenants": 1, "offload": offload, "slow_path": {"handlers": int(p["handlers"])},
                         "policy": {"per_connection": bool(p["per_connection"])}, "tax": dict(p["tax"] or {})})


def _snapshot(net) -> dict:
    st = net.vswitch.stats()
    qp = net.sim.qps
    return {**{k: v for k, v in st.items() if k.startswith("vs_") and isinstance(v, (int, np.integer))},
            "acked": int(qp["acked_bytes"].sum()), "t": int(net.sim.now)}


def measure(net, p: dict, offload: str) -> dict:
    """Run the warm-up, then the window; the tax of the window's counters (deltas)."""
    sc = net.scenario
    warm, window = us(p["warmup_us"]), us(p["window_us"])
    sc.duration_ps = warm
    net.run()
    a = _snapshot(net)
    sc.duration_ps = warm + window
    net.run()
    b = _snapshot(net)
    d = {k: b[k] - a[k] for k in a if k.startswith("vs_")}
    span = b["t"] - a["t"]
    n = len(net.vswitch.hosts)
    tx = net.vswitch.tax
    t = vtax.tax(d, span, offload, n, tx, emc=net.vswitch.vs_params["emc_entries"] > 0)
    cyc = vtax.stage_cycles(d, tx)
    rx = max(d["vs_rx"], 1)
    posted = sum(f.size_bytes for f in net.flows if a["t"] <= f.start_ps < b["t"])
    row = {"offered_gbps_per_server": posted * 8e3 / span / n,
           "achieved_gbps_per_server": (b["acked"] - a["acked"]) * 8e3 / span / n,
           "vs_rx": d["vs_rx"], "miss_rate": d["vs_miss"] / rx, "lost_rate": d["vs_lost"] / rx,
           "hit_rate": (d["vs_exact_hit"] + d["vs_masked_hit"]) / rx, "installs": d["vs_installs"],
           "host_cores_per_server": t["tax_host_cores"] / n, "dpu_cores_per_server": t["tax_dpu_cores"] / n,
           "usd_per_server_year": t["tax_usd_per_server_year"], "cycles_per_packet": t["tax_cycles_per_packet"]}
    row.update({f"cpp_{s}": cyc[s] / rx for s in STAGES})
    return row


def point(task: tuple) -> dict:
    """One (mix, offload, load), in whichever worker: its run and CSV row."""
    p, overrides, mix, offload, load, seed, capture = task
    sc = apply_overrides(scenario(p, mix, offload, load, seed), overrides)
    net = sc.build()
    if capture:
        capture.for_variant(sc.name, True).attach(net)
    return {"mix": mix, "offload": offload, "load_gbps": load, **measure(net, p, offload)}


def run(out_dir: str | Path = "results/virtualization_tax", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "virtualization_tax")
    mixes = chosen("mixes", p["mixes"], MIXES)
    offloads = chosen("offloads", p["offloads"], OFFLOADS)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    tasks = [(p, overrides, mix, offload, float(load), seed, capture) for mix in mixes for offload in offloads
             for load in p["loads_gbps"]]

    def report(i: int, row: dict) -> None:
        # in loop order, whichever worker ran it (softdpu run virtualization_tax -j N)
        rows.append(row)
        print(f"{row['mix']:5s} {row['offload']:4s} offered {row['offered_gbps_per_server']:5.1f} Gb/s/server: achieved "
              f"{row['achieved_gbps_per_server']:5.1f}, miss {row['miss_rate']:6.1%}, "
              f"lost {row['lost_rate']:6.1%}, "
              f"{row['cycles_per_packet']:7.0f} cycles/pkt, host cores {row['host_cores_per_server']:6.3f}, "
              f"DPU cores {row['dpu_cores_per_server']:6.3f}, ${row['usd_per_server_year']:7.0f}/server/yr",
              file=sys.stderr)

    for_each_in_order(point, tasks, report)
    write_csv(out / "virtualization_tax.csv", rows)
    summary(rows, p)
    if plots:
        print(f"plot: {plot(rows, p, out / 'virtualization_tax.png')}")
    return {"rows": rows}


def summary(rows: list[dict], p: dict) -> None:
    usd = vtax.params(p["tax"] or {})["usd_per_core_year"]
    for mix in dict.fromkeys(r["mix"] for r in rows):
        rs = [r for r in rows if r["mix"] == mix and r["offload"] == "host"]
        if not rs:
            continue
        ok = [r for r in rs if r["lost_rate"] == 0 and r["achieved_gbps_per_server"] > 0] or rs
        per_gb = np.mean([r["host_cores_per_server"] / max(r["achieved_gbps_per_server"], 1e-9) for r in ok])
        top = max(rs, key=lambda r: r["achieved_gbps_per_server"])
        print(f"{mix}: software vSwitch {per_gb:.3f} host cores per Gb/s per server "
              f"(${per_gb * usd:,.0f}/yr per Gb/s); at most {top['achieved_gbps_per_server']:.1f} Gb/s achieved, "
              f"{top['host_cores_per_server']:.2f} host cores, "
              f"${top['usd_per_server_year']:,.0f}/server/yr; DPU offload: 0 host cores")


def plot(rows: list[dict], p: dict, out_png: Path) -> Path:
    """(a) host cores (software vSwitch) and DPU cores (offload) per server vs offered load, per
    mix, $/server/year on the right axis; (b) achieved vs offered load; (c) cycles per packet by
    stage for each mix at bar_load_gbps (offload host)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tp = vtax.params(p["tax"] or {})
    usd = tp["usd_per_core_year"]
    fig, (ax, cx, bx) = plt.subplots(1, 3, figsize=(17, 5), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    mixes = list(dict.fromkeys(r["mix"] for r in rows))
    offloads = list(dict.fromkeys(r["offload"] for r in rows))
    for i, mix in enumerate(mixes):
        for offload in offloads:
            rs = sorted((r for r in rows if r["mix"] == mix and r["offload"] == offload), key=lambda r: r["load_gbps"])
            if not rs:
                continue
            x = [r["offered_gbps_per_server"] for r in rs]
            key = "host_cores_per_server" if offload == "host" else "dpu_cores_per_server"
            ls, mk = {"host": ("-", "o"), "dpu": ("--", "s"), "hw": (":", "^")}[offload]
            what = {"host": "host cores, software vSwitch", "dpu": "DPU cores, vSwitch on the DPU (host: 0)",
                    "hw": "DPU cores, fast path in DPU hardware (host: 0)"}[offload]
            ax.plot(x, [r[key] for r in rs], ls=ls, marker=mk, color=f"C{i}", label=f"{mix}: {what}")
            cx.plot(x, [r["achieved_gbps_per_server"] for r in rs], ls=ls, marker=mk, color=f"C{i}",
                    label=f"{mix}, {offload}")
    ax.axhline(p["handlers"], color="grey", lw=0.8, ls="-.")
    ax.text(0.01, p["handlers"], f" {p['handlers']} upcall handler threads", va="bottom", fontsize=7, color="grey",
            transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load per server (Gb/s)")
    ax.set_ylabel("cores per server")
    ax.set_title("(a) vSwitch cores per server", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    sec = ax.secondary_yaxis("right", functions=(lambda c: c * usd, lambda d: d / usd))
    sec.set_ylabel(f"host cores x \\${usd:g} per core-year = \\$ per server per year")
    lim = max(float(p["loads_gbps"][-1]) if p["loads_gbps"] else 1, 1)
    cx.plot([0.5, lim * 1.5], [0.5, lim * 1.5], color="grey", lw=0.8, ls=":", label="achieved = offered")
    cx.set_xscale("log")
    cx.set_yscale("log")
    cx.set_xlabel("offered load per server (Gb/s)")
    cx.set_ylabel("achieved (acknowledged payload) per server (Gb/s)")
    cx.set_title("(b) achieved load: the short mix saturates the slow path", fontsize=10)
    cx.grid(alpha=0.3, which="both")
    cx.legend(fontsize=7)
    bl = float(p["bar_load_gbps"])
    bars = [r for r in rows if r["load_gbps"] == bl and r["offload"] == "host"] or \
        [r for r in rows if r["load_gbps"] == bl]
    bottom = np.zeros(len(bars))
    for k, s in enumerate(STAGES):
        v = np.array([r[f"cpp_{s}"] for r in bars])
        bx.bar(range(len(bars)), v, bottom=bottom, color=f"C{k}", label=s)
        bottom += v
    for j, r in enumerate(bars):
        bx.text(j, bottom[j], f"{bottom[j]:,.0f}\nmiss {r['miss_rate']:.0%}", ha="center", va="bottom", fontsize=8)
    bx.set_xticks(range(len(bars)), [f"{r['mix']} ({r['offload']})" for r in bars])
    bx.set_yscale("log")
    bx.set_ylim(10, max(bottom.max() * 4, 100) if len(bars) else 1e4)
    bx.set_ylabel("cycles per packet, stacked by stage (log scale)")
    bx.set_title(f"(c) cycles per packet at {bl:g} Gb/s offered per server", fontsize=10)
    bx.legend(fontsize=7, ncol=2, loc="upper left")
    fig.suptitle(f"Virtualization tax: {p['hosts']} hosts, {p['msg_bytes'] / 1000:g} kB WRITEs, per-connection policy, "
                 f"{p['handlers']} handlers/DPU, upcall {tp['upcall']:,.0f} cycles, "
                 f"host {tp['host_core_hz'] / 1e9:g} GHz, "
                 f"DPU {tp['dpu_core_hz'] / 1e9:g} GHz (long: {p['long_conns']} connections per host; short: a new "
                 "connection per message)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/virtualization_tax"))
