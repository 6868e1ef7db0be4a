"""Interop: older and newer NIC generations sharing a fabric, and two CCs on one bottleneck.

What happens when a share of the NICs is an older generation (go-back-N, DCQCN with CNP packets,
1 KB MTU) and the rest newer (selective repeat or out-of-order placement with an enhanced CC), on
shared, slightly lossy links? Each QP pair runs what both of its ends support (the rule table of
docs/interop.md): throughput, FCT and Jain fairness per class of pair (old->old, old->new,
new->old, new->new) and across classes, against the two homogeneous fabrics. And the mixed-CC
panel: two algorithms with long flows on one bottleneck, who starves whom.

Default: dumbbell, 8 senders on the left each to its own receiver on the right, 100 Gb/s
everywhere (the bottleneck too), 1 us links, 0.1 % random loss per packet on the bottleneck, one
4 MB flow per sender from t = 0; fabrics "old" (every NIC cx4_gbn_dcqcn), "mixed" (half of the
hosts, drawn by the seed, cx4_gbn_dcqcn, the rest irn_sr_hpcc) and "new" (every NIC
irn_sr_hpcc). Mixed CC: 2 + 2 flows of 8 MB, dcqcn against hpcc and dctcp against swift, every
NIC selective repeat with a 4 KB MTU, no loss. Writes results/interop/<variant>/ (a results folder
each), interop.csv (one row per fabric and class), interop_mixed_cc.csv (one row per pair and
algorithm) and interop.png.

    softdpu run interop
    softdpu run interop --set new=uec_ooo_nscc --set old_share=0.25 --set loss=0.01
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pydantic import field_validator

from congestion import registry
from controlplane.config.units import Gbps, MB, us
from controlplane.results.folder import jain_index, percentile
from controlplane.run.experiment import (variant_tasks, ExperimentParams, Item, ListOf, OneOf, Quantity, Real, Count,
                                         for_each_in_order, prune_stale_variants, run_scenario_task, write_csv,
                                         write_params)
from controlplane.run.scenario import Scenario
from controlplane.transport.nic_profile import BUILTIN

TITLE = "NIC generations and CCs sharing links"
FABRICS = ("old", "mixed", "new")
CLASSES = ("old->old", "old->new", "new->old", "new->new")


class Params(ExperimentParams):
    """interop's parameters."""
    senders: Count("flows across the bottleneck (senders on the left, one receiver each on the right)", lo=1,
                   hi=500) = 8
    size_bytes: Quantity("size", "bytes per flow", lo=1) = MB(4)
    rate_bps: Quantity("rate", "every link's rate (the bottleneck too)", lo=1) = Gbps(100)
    delay_ps: Quantity("time", "every link's one-way propagation delay") = us(1)
    loss: Real("random loss probability per packet on the bottleneck (both directions)", lo=0, hi=1) = 0.001
    old: OneOf(sorted(BUILTIN), "the older NIC generation (a built-in profile, docs/interop.md)") = "cx4_gbn_dcqcn"
    new: OneOf(sorted(BUILTIN), "the newer NIC generation") = "irn_sr_hpcc"
    old_share: Real("mixed fabric: the share of hosts with the older NIC (drawn by the seed)", lo=0, hi=1) = 0.5
    fabrics: ListOf(Item("choice", FABRICS), "fabrics to run: every NIC old, a mix, every NIC new",
                    unique=True) = list(FABRICS)
    mixed_ccs: ListOf(Item("text"), "mixed-CC panel: pairs of algorithms 'a+b' on one bottleneck ([] = none)",
                      nonempty=False, unique=True) = ["dcqcn+hpcc", "dctcp+swift"]
    pair_flows: Count("mixed-CC panel: long flows per algorithm", lo=1, hi=250) = 2
    pair_bytes: Quantity("size", "mixed-CC panel: bytes per long flow", lo=1) = MB(8)

    @field_validator("mixed_ccs")
    @classmethod
    def _pairs(cls, v):
        for pair in v:
            parts = pair.split("+")
            if len(parts) != 2 or parts[0] == parts[1]:
                raise ValueError(f"a mixed-CC entry is two different algorithms 'a+b', got {pair!r}")
            for name in parts:
                try:
                    registry.load_class(name)
                except ValueError as e:
                    raise ValueError(f"{pair!r}: {e}") from None
        return v


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def _dumbbell(p: dict, n: int) -> dict:
    return {"topology": "dumbbell", "num_left": n, "num_right": n, "host_rate_bps": p["rate_bps"],
            "bottleneck_rate_bps": p["rate_bps"], "host_delay_ps": p["delay_ps"], "bottleneck_delay_ps": p["delay_ps"]}


def fabric_scenario(p: dict, fabric: str, seed: int) -> Scenario:
    """Sender i (left) -> receiver n + i (right), every host a NIC of the fabric's generations."""
    n = p["senders"]
    flows = [{"src": i, "dst": n + i, "size_bytes": p["size_bytes"]} for i in range(n)]
    nics = {"old": {"default": p["old"]}, "new": {"default": p["new"]},
            "mixed": {"default": p["new"], "shares": {p["old"]: p["old_share"]}}}[fabric]
    return Scenario(name=f"interop-{fabric}", topology=_dumbbell(p, n), workload={"kind": "flows", "flows": flows},
                    cc="dcqcn", link_loss={2 * n: p["loss"]} if p["loss"] else 0.0, nic_profiles=nics,
                    sample_interval_ps=us(10), monitor_ports="none", seed=seed)


def _cc_profile(cc: str) -> dict:
    """A NIC that differs from the other only by its CC: selective repeat, 4 KB MTU, INT echoed,
    the CC's own CE feedback (network_defaults' cnp_mode), reacting to either kind."""
    return {"description": f"selective repeat with {cc}", "transports": ["sr", "gbn"], "sack": True, "cc": cc,
            "int_echo": True, "cnp_mode": registry.create(cc).network_defaults().get("cnp_mode", "interval"),
            "cnp_react": ["interval", "ack_echo"], "mtu_payload": 4096, "rto_low_ps": us(100), "cc_fallback": "dcqcn"}


def mixed_cc_scenario(p: dict, pair: str, seed: int) -> Scenario:
    """pair_flows flows of each algorithm, all from t = 0, left -> right; a flow's two ends have its
    algorithm's NIC. The switches mark ECN as the first of the two that wants marking expects."""
    a, b = pair.split("+")
    k = p["pair_flows"]
    n = 2 * k
    flows = [{"src": i, "dst": n + i, "size_bytes": p["pair_bytes"]} for i in range(n)]
    hosts = {h: ("a" if h % n < k else "b") for h in range(2 * n)}
    marking = next((c for c in (a, b) if registry.create(c).network_defaults().get("ecn")), a)
    return Scenario(name=f"interop-{pair}", topology=_dumbbell(p, n), workload={"kind": "flows", "flows": flows},
                    cc=marking, nic_profiles={"default": "a", "hosts": hosts,
                                              "profiles": {"a": _cc_profile(a), "b": _cc_profile(b)}},
                    sample_interval_ps=us(5), monitor_ports="none", seed=seed)


def scenarios(params: dict, seed: int) -> dict[str, Scenario]:
    p = Params.resolve(params, "interop")
    out = {f: fabric_scenario(p, f, seed) for f in p["fabrics"]}
    out.update({pair: mixed_cc_scenario(p, pair, seed) for pair in p["mixed_ccs"]})
    return out


def extract(result) -> dict:
    """What the tables need from a run, per flow: its ends' profiles, FCT, retransmissions; and
    the time series of each sender QP's goodput."""
    net, f = result.network, result.flows
    hp = net.nic_plan.host_profile
    qps = net.sim.qps
    ts = result.timeseries
    return {"src_profile": [hp[int(s)] for s in f["src"]], "dst_profile": [hp[int(d)] for d in f["dst"]],
            "size": f["size_bytes"].astype(np.int64), "fct_ps": f["fct_ps"].astype(np.int64),
            "finish_ps": f["finish_ps"].astype(np.int64), "qp": f["qp"].astype(np.int64),
            "retx": np.array([int(qps[int(q)]["retx_packets"]) for q in f["qp"]], dtype=np.int64),
            "timeouts": np.array([int(qps[int(q)]["timeouts"]) for q in f["qp"]], dtype=np.int64),
            "t_ps": ts["t_ps"], "qp_ids": ts["qp_ids"], "goodput": ts["qp_goodput_bps"]}


def _row(fabric: str, cls: str, sel, e: dict) -> dict:
    done = sel & (e["fct_ps"] > 0)
    gbps = e["size"][done] * 8e3 / e["fct_ps"][done]          # bits / ps x 1e3 = Gb/s
    fct = e["fct_ps"][done] / 1e6
    return {"fabric": fabric, "class": cls, "flows": int(sel.sum()), "completed": int(done.sum()),
            "mean_gbps": round(float(gbps.mean()), 3) if len(gbps) else float("nan"),
            "p50_fct_us": round(percentile(fct, 50), 1), "p99_fct_us": round(percentile(fct, 99), 1),
            "jain": round(jain_index(gbps), 4) if len(gbps) else float("nan"),
            "retx_packets": int(e["retx"][sel].sum()), "timeouts": int(e["timeouts"][sel].sum())}


def fabric_rows(fabric: str, e: dict, p: dict) -> list[dict]:
    gen = {p["old"]: "old", p["new"]: "new"}
    cls = np.array([f"{gen[s]}->{gen[d]}" for s, d in zip(e["src_profile"], e["dst_profile"])])
    rows = [_row(fabric, c, cls == c, e) for c in CLASSES if (cls == c).any()]
    return rows + [_row(fabric, "all", np.ones(len(cls), bool), e)]


def mixed_rows(pair: str, e: dict) -> tuple[list[dict], dict]:
    """Per algorithm: its share of the bottleneck's goodput while both algorithms had flows running
    (until the first flow finished), its flows' mean FCT and Jain index among them."""
    a, b = pair.split("+")
    algo = np.array([a if s == "a" else b for s in e["src_profile"]])
    t, good = e["t_ps"], e["goodput"]
    t_end = int(e["finish_ps"][e["finish_ps"] > 0].min()) if (e["finish_ps"] > 0).any() else int(t[-1])
    dt = np.diff(np.concatenate([[0], t])) / 1e12
    col = {int(q): i for i, q in enumerate(e["qp_ids"])}
    keep = t <= t_end
    bits = {c: float(sum((good[keep, col[int(q)]] * dt[keep]).sum() for q in e["qp"][algo == c])) for c in (a, b)}
    total = sum(bits.values()) or 1.0
    span = float(t[keep][-1]) / 1e12 if keep.any() else 1.0
    rows, series = [], {"t_us": t / 1e6}
    for c in (a, b):
        sel = algo == c
        done = sel & (e["fct_ps"] > 0)
        gbps = e["size"][done] * 8e3 / e["fct_ps"][done]
        rows.append({"pair": pair, "cc": c, "flows": int(sel.sum()), "share_while_both": round(bits[c] / total, 4),
                     "gbps_while_both": round(bits[c] / span / 1e9, 3), "both_until_us": round(t_end / 1e6, 1),
                     "mean_fct_us": round(float(e["fct_ps"][done].mean()) / 1e6, 1) if done.any() else float("nan"),
                     "jain_within": round(jain_index(gbps), 4) if len(gbps) else float("nan")})
        series[c] = sum(good[:, col[int(q)]] for q in e["qp"][sel])
    return rows, series


def run(out_dir: str | Path = "results/interop", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    p = Params.resolve(params, "interop")
    out = Path(out_dir)
    variants = scenarios(p, seed)
    prune_stale_variants(out, variants)
    names = list(variants)
    tasks = variant_tasks(out, variants, overrides, capture, extract)
    fabric, mixed, series = [], [], {}

    def report(i: int, res: dict) -> None:
        name, e = names[i], res["extra"]
        if name in FABRICS:
            rows = fabric_rows(name, e, p)
            fabric.extend(rows)
            a = rows[-1]
            print(f"[{i + 1}/{len(names)}] {name}: {a['completed']}/{a['flows']} flows, mean {a['mean_gbps']:.1f} Gb/s, "
                  f"p99 FCT {a['p99_fct_us']:.0f} us, Jain {a['jain']:.3f}, {a['retx_packets']} retransmitted, "
                  f"{res['counters']['events']:,} events, {res['wall_s']:.1f} s wall", file=sys.stderr)
        else:
            rows, series[name] = mixed_rows(name, e)
            mixed.extend(rows)
            print(f"[{i + 1}/{len(names)}] {name}: " + ", ".join(f"{r['cc']} {100 * r['share_while_both']:.0f} %"
                                                              for r in rows) +
                  f" of the bottleneck while both run, {res['wall_s']:.1f} s wall", file=sys.stderr)

    for_each_in_order(run_scenario_task, tasks, report)
    out.mkdir(parents=True, exist_ok=True)
    write_params(out, p, seed, overrides)
    if fabric:
        write_csv(out / "interop.csv", fabric)
        print(f"{'fabric':7s} {'class':9s} {'flows':>5s} {'Gb/s':>7s} {'p50 FCT':>9s} {'p99 FCT':>9s} {'Jain':>6s} "
              f"{'retx':>6s} {'RTOs':>5s}")
        for r in fabric:
            print(f"{r['fabric']:7s} {r['class']:9s} {r['flows']:5d} {r['mean_gbps']:7.2f} {r['p50_fct_us']:7.0f}us "
                  f"{r['p99_fct_us']:7.0f}us {r['jain']:6.3f} {r['retx_packets']:6d} {r['timeouts']:5d}")
    if mixed:
        write_csv(out / "interop_mixed_cc.csv", mixed)
        print(f"{'pair':14s} {'cc':7s} {'share':>6s} {'Gb/s':>7s} {'mean FCT':>9s}")
        for r in mixed:
            print(f"{r['pair']:14s} {r['cc']:7s} {100 * r['share_while_both']:5.1f}% {r['gbps_while_both']:7.2f} "
                  f"{r['mean_fct_us']:7.0f}us")
    if plots and (fabric or mixed):
        print(f"plot: {plot(fabric, mixed, series, p, out / 'interop.png')}")
    return {"fabric": fabric, "mixed_cc": mixed}


def plot(fabric: list[dict], mixed: list[dict], series: dict, p: dict, out_png: Path) -> Path:
    """Top: per fabric, each class's mean per-flow throughput, p99 FCT and Jain index ('all' =
    across classes); bottom: per CC pair, each algorithm's goodput over time on the bottleneck."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from controlplane.results.plots import series_style
    cols = max(3, len(series))
    rows = (1 if fabric else 0) + (1 if series else 0)
    fig = plt.figure(figsize=(4.6 * cols, 3.8 * rows))
    gs = fig.add_gridspec(rows, cols)
    r = 0
    if fabric:
        fabs = list(dict.fromkeys(x["fabric"] for x in fabric))
        classes = [c for c in (*CLASSES, "all") if any(x["class"] == c for x in fabric)]
        w = 0.8 / len(classes)
        for j, (key, label) in enumerate((("mean_gbps", "mean per-flow throughput (Gb/s)"),
                                          ("p99_fct_us", "p99 FCT (us)"), ("jain", "Jain index"))):
            ax = fig.add_subplot(gs[r, j])
            for k, c in enumerate(classes):
                ys = [next((x[key] for x in fabric if x["fabric"] == f and x["class"] == c), np.nan) for f in fabs]
                ax.bar(np.arange(len(fabs)) + (k - (len(classes) - 1) / 2) * w, ys, w, label=c,
                       hatch="//" if c == "all" else None, edgecolor="black", linewidth=0.4)
            ax.set_xticks(np.arange(len(fabs)))
            ax.set_xticklabels(fabs)
            ax.set_title(label, fontsize=10)
            if key == "jain":
                ax.set_ylim(0, 1.05)
            ax.grid(axis="y", alpha=0.3)
            if j == 0:
                ax.legend(fontsize=7, title=f"old={p['old']}, new={p['new']}", title_fontsize=7)
        r += 1
    for j, (pair, s) in enumerate(series.items()):
        ax = fig.add_subplot(gs[r, j])
        for i, cc in enumerate(k for k in s if k != "t_us"):
            share = next(x["share_while_both"] for x in mixed if x["pair"] == pair and x["cc"] == cc)
            ax.plot(s["t_us"], np.nan_to_num(s[cc]) / 1e9, label=f"{cc} ({100 * share:.0f} % while both run)",
                    lw=1.2, ms=4, markevery=(i * 3, max(1, len(s["t_us"]) // 15)), **series_style(i))
        ax.set_title(f"mixed CC: {pair}", fontsize=10)
        ax.set_xlabel("time (us)")
        ax.set_ylabel("goodput (Gb/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"interop: {TITLE} ({p['senders']} flows of {p['size_bytes'] / 1e6:g} MB, "
                 f"{p['loss'] * 100:g} % loss on the bottleneck)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/interop"))
