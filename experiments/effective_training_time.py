"""Effective training time: useful share of wall-clock time of a synchronous training job under failures.

The model is controlplane/ai/effective_time.py (docs/effective_time.md): Poisson failure
processes per component class (GPU, NIC, link, switch, host, host software, loss spikes) with
rates per component per day from Meta's Llama 3 report (419 unexpected interruptions in 54 days
on 16,384 GPUs) and PaLM's loss spikes, counts scaled with the cluster; per interruption a
detection time, a restart and, for a node fault, a replacement node (``recovery``: restart in
place, standby, hot spare); recomputation since the last committed checkpoint; a checkpoint
(``model_params`` x ``bytes_per_param``) every tau of useful time, written at the storage
bandwidth, synchronously or asynchronously.

For each cluster size in ``cluster_gpus`` (the same model, tau at Daly's optimum): the expected
effective fraction (exact renewal form; Young's first order beside it), a seeded Monte-Carlo over
``days`` of useful training (``replicas`` runs, 95 % interval), the share of wall time of each
term; at ``interval_gpus`` GPUs the effective fraction vs the checkpoint interval with Young's
and Daly's optima; and what it takes to reach ``target``: the mean detection + recovery time,
the failure rate (x the defaults), the storage bandwidth (each alone), and the effective fraction
with hot spares and/or asynchronous checkpoints. Seconds to run. Writes
results/effective_training_time/effective_training_time.csv, _interval.csv, _target.csv and
effective_training_time.png.

A tolerated link failure (``link_tolerated``) slows the steps by ``link_down_slowdown`` while the
link is down; ``link_down_policy`` = ecmp, spray or ar measures that factor at packet level
(experiments/training_step.py, part 3) instead of taking the number.

    softdpu run effective_training_time
    softdpu run effective_training_time --set recovery=hot_spare --set checkpoint=async
    softdpu run effective_training_time --set link_tolerated=0.5 --set link_down_policy=spray
"""
from __future__ import annotations

from pathlib import Path

from controlplane.ai import effective_time as E
from controlplane.run.experiment import (RATE_GBPS, Count, ExperimentParams, Item, ListOf, OneOf, Real, Scaled,
                                         collective_experiment_setup, write_csv)


class Params(ExperimentParams):
    """effective_training_time's parameters."""
    cluster_gpus: ListOf(Item("int", lo=8, hi=10**7), "cluster sizes (GPUs) to compare", unique=True) = \
        [1024, 2048, 4096, 8192, 16384, 32768]
    model_params: Real("model parameters (checkpoint size = this x bytes_per_param)", lo_open=True) = 405e9
    bytes_per_param: Real("checkpoint bytes per parameter (16: mixed-precision Adam model states)",
                          lo_open=True) = 16
    storage_gbps: Scaled("rate", "Gb/s", "storage bandwidth for checkpoints (Llama 3: 2 TB/s sustained)",
                         **RATE_GBPS) = 16000
    host_storage_gbps: Scaled("rate", "Gb/s", "front-end bandwidth per host to storage", **RATE_GBPS) = 400
    checkpoint: OneOf(("sync", "async"), "checkpoint writes: sync stops the job, async overlaps") = "sync"
    detection_min: Real("minutes from a fault to its detection") = 10
    restart_min: Real("minutes to relaunch the job and load the checkpoint") = 10
    recovery: OneOf(E.RECOVERY, "how a node fault gets a healthy node: restart (repair in place), "
                    "standby, hot_spare") = "standby"
    link_tolerated: Real("share of link failures the fabric routes around", hi=1) = 0
    link_down_slowdown: Real("step-time factor while such a link is down (from the fabric model)", lo=1) = 1
    link_down_policy: OneOf(("none", "ecmp", "spray", "ar"), "none: use link_down_slowdown; a path policy: "
                            "measure it at packet level (training_step's link-down part)") = "none"
    days: Real("days of useful training per Monte-Carlo run", lo_open=True) = 30
    replicas: Count("Monte-Carlo runs per point", lo=2, hi=10**6) = 100
    interval_gpus: Count("cluster size of the checkpoint-interval sweep", lo=8) = 16384
    intervals_min: ListOf(Item("real", lo=0, lo_open=True), "checkpoint intervals to sweep (useful minutes)",
                          unique=True) = [0.5, 1, 2, 4, 8, 16, 32, 64]
    target: Real("effective fraction to reach", lo=0, hi=1, lo_open=True) = 0.95


PARAMS = Params.defaults()


def make_job(p: dict, gpus: int, **kw) -> E.TrainingJob:
    d = {"gpus": gpus, "params": p["model_params"], "bytes_per_param": p["bytes_per_param"],
         "storage_bps": p["storage_gbps"] * 1e9, "host_storage_bps": p["host_storage_gbps"] * 1e9,
         "checkpoint": p["checkpoint"], "detection_s": p["detection_min"] * 60, "restart_s": p["restart_min"] * 60,
         "recovery": p["recovery"], "link_tolerated": p["link_tolerated"],
         "link_down_slowdown": p["link_down_slowdown"]}
    return E.job({**d, **kw})


def _r(x: float | None, nd: int = 4):
    return "" if x is None else round(x, nd)


def cluster_row(p: dict, gpus: int, seed: int) -> dict:
    j = make_job(p, gpus)
    t = E.expected_terms(j)
    mc = E.monte_carlo(j, days=p["days"], replicas=p["replicas"], seed=seed)
    wall = sum(t[k] for k in E.TERMS) + 1
    row = {"gpus": gpus, "interruptions_per_day": _r(j.rate() * E.DAY_S, 3), "mtbi_h": _r(j.mtbi_s() / 3600, 3),
           "checkpoint_tb": _r(j.checkpoint_bytes() / 1e12, 3), "write_s": _r(j.write_s(), 2),
           "stall_s": _r(j.stall_s(), 3), "tau_s": _r(j.tau(), 1),
           "young_tau_s": _r(E.young_tau(j.write_s(), j.mtbi_s()), 1),
           "effective": _r(t["effective"]), "effective_first_order": _r(E.effective_first_order(j)),
           "mc_effective": _r(mc["effective"]), "mc_lo": _r(mc["effective_lo"]), "mc_hi": _r(mc["effective_hi"]),
           "mc_interruptions": _r(mc["interruptions"], 1), "mc_days": p["days"], "mc_replicas": p["replicas"]}
    for k in E.TERMS:
        row[f"{k}_pct"] = _r(100 * t[k] / wall, 3)
    row["useful_pct"] = _r(100 / wall, 3)
    return row


def interval_rows(p: dict, seed: int) -> list[dict]:
    j = make_job(p, p["interval_gpus"])
    rows = []
    for m in p["intervals_min"]:
        tau = m * 60
        mc = E.monte_carlo(j, days=p["days"], replicas=p["replicas"], seed=seed, tau=tau)
        rows.append({"gpus": p["interval_gpus"], "tau_min": m, "effective": _r(E.effective_exact(j, tau)),
                     "mc_effective": _r(mc["effective"]), "mc_lo": _r(mc["effective_lo"]),
                     "mc_hi": _r(mc["effective_hi"]),
                     "young_tau_min": _r(E.young_tau(j.write_s(), j.mtbi_s()) / 60, 3),
                     "daly_tau_min": _r(j.tau() / 60, 3), "effective_at_daly": _r(E.effective_exact(j))})
    return rows


def target_row(p: dict, gpus: int) -> dict:
    j = make_job(p, gpus)
    need = E.requirement(j, p["target"])
    det, rec = j.mean_recovery_s()
    eff = lambda **kw: _r(E.effective_exact(make_job(p, gpus, **kw)))   # noqa: E731
    return {"gpus": gpus, "target": p["target"], "effective": _r(E.effective_exact(j)),
            "detect_recover_min": _r((det + rec) / 60, 2),
            "needed_detect_recover_min": _r(None if need["detect_recover_s"] is None else need["detect_recover_s"] / 60, 2),
            "needed_rate_scale": _r(need["rate_scale"]),
            "needed_storage_gbps": _r(None if need["storage_bps"] is None else need["storage_bps"] / 1e9, 1),
            "effective_hot_spare": eff(recovery="hot_spare"), "effective_async": eff(checkpoint="async"),
            "effective_hot_spare_async": eff(recovery="hot_spare", checkpoint="async")}


def run(out_dir: str | Path = "results/effective_training_time", params: dict | None = None,
        overrides: dict | None = None, seed: int = 1, plots: bool = True, capture=None) -> dict:
    if overrides:
        raise ValueError("effective_training_time runs no scenario: scenario settings "
                         f"({', '.join(sorted(overrides))}) do not apply; use its parameters")
    p, out = collective_experiment_setup(out_dir, Params, params, seed, overrides, capture)
    if p["link_down_policy"] != "none":
        # the packet-level model: a 7B-like step on 64 GPUs with one leaf-spine link down
        # (experiments/training_step.py, part 3, its defaults)
        from experiments.training_step import link_down_slowdown
        p = {**p, "link_down_slowdown": link_down_slowdown(p["link_down_policy"], seed=seed)}
        print(f"link_down_slowdown = {p['link_down_slowdown']:.4f} (measured, {p['link_down_policy']})")
    rows = [cluster_row(p, g, seed) for g in p["cluster_gpus"]]
    ivl = interval_rows(p, seed)
    tgt = [target_row(p, g) for g in p["cluster_gpus"]]
    write_csv(out / "effective_training_time.csv", rows)
    write_csv(out / "effective_training_time_interval.csv", ivl)
    write_csv(out / "effective_training_time_target.csv", tgt)
    print(f"{'GPUs':>6s} {'int/day':>8s} {'MTBI h':>7s} {'tau s':>7s} {'effective':>9s} {'Monte-Carlo [95% CI]':>24s}"
          f" {'ckpt':>6s} {'detect':>6s} {'recov':>6s} {'recomp':>6s} {'slow':>6s}  (% of wall)")
    for r in rows:
        print(f"{r['gpus']:6d} {r['interruptions_per_day']:8.2f} {r['mtbi_h']:7.2f} {r['tau_s']:7.1f} "
              f"{r['effective']:9.4f} {r['mc_effective']:8.4f} [{r['mc_lo']:.4f}, {r['mc_hi']:.4f}] "
              f"{r['checkpoint_pct']:6.2f} {r['detection_pct']:6.2f} {r['recovery_pct']:6.2f} "
              f"{r['recomputation_pct']:6.2f} {r['slowdown_pct']:6.2f}")
    print(f"interval sweep at {p['interval_gpus']} GPUs: Young {ivl[0]['young_tau_min']} min, "
          f"Daly {ivl[0]['daly_tau_min']} min -> {ivl[0]['effective_at_daly']}")
    for r in ivl:
        print(f"  tau {r['tau_min']:6g} min: {r['effective']:.4f} (Monte-Carlo {r['mc_effective']:.4f} "
              f"[{r['mc_lo']:.4f}, {r['mc_hi']:.4f}])")
    for r in tgt:
        print(f"{r['gpus']:6d} GPUs to reach {r['target']}: detection+recovery {r['detect_recover_min']} -> "
              f"{r['needed_detect_recover_min'] or 'unreachable'} min at most, or failures x "
              f"{r['needed_rate_scale'] or '-'} at most, "
              f"or storage {r['needed_storage_gbps'] or 'unreachable'} Gb/s at least; hot spare {r['effective_hot_spare']}, "
              f"async {r['effective_async']}, both {r['effective_hot_spare_async']}")
    if plots:
        print(f"plot: {plot(rows, ivl, tgt, out / 'effective_training_time.png')}")
    return {"rows": rows, "interval": ivl, "target": tgt}


def plot(rows: list[dict], ivl: list[dict], tgt: list[dict], out_png: Path) -> Path:
    """(a) effective vs cluster size; (b) vs checkpoint interval with the optima; (c) share of wall
    time per term; (d) detection + recovery time needed for the target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(2, 2, figsize=(12, 8.5))
    g = [r["gpus"] for r in rows]
    target = tgt[0]["target"]
    ax = axs[0][0]
    ax.plot(g, [r["effective"] for r in rows], marker="o", label="expected (renewal form)")
    ax.plot(g, [r["effective_first_order"] for r in rows], ls=":", color="grey", label="first order (Young)")
    ax.errorbar(g, [r["mc_effective"] for r in rows],
                yerr=[[r["mc_effective"] - r["mc_lo"] for r in rows], [r["mc_hi"] - r["mc_effective"] for r in rows]],
                fmt="x", color="k", capsize=3, label=f"Monte-Carlo ({rows[0]['mc_replicas']} x {rows[0]['mc_days']:g} d, 95 %)")
    ax.plot(g, [r["effective_hot_spare_async"] for r in tgt], marker="s", ls="--", label="hot spare + async checkpoints")
    ax.axhline(target, color="tab:red", lw=1, label=f"target {target:g}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("GPUs")
    ax.set_ylabel("effective training time (useful / wall)")
    ax.set_title("Effective training time vs cluster size (tau at Daly's optimum)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    bx = axs[0][1]
    t = [r["tau_min"] for r in ivl]
    bx.plot(t, [r["effective"] for r in ivl], marker="o", label="expected")
    bx.errorbar(t, [r["mc_effective"] for r in ivl],
                yerr=[[r["mc_effective"] - r["mc_lo"] for r in ivl], [r["mc_hi"] - r["mc_effective"] for r in ivl]],
                fmt="x", color="k", capsize=3, label="Monte-Carlo (95 %)")
    bx.axvline(ivl[0]["young_tau_min"], color="tab:green", ls=":", label=f"Young {ivl[0]['young_tau_min']:.2f} min")
    bx.axvline(ivl[0]["daly_tau_min"], color="tab:red", ls="--", label=f"Daly {ivl[0]['daly_tau_min']:.2f} min")
    bx.set_xscale("log", base=2)
    bx.set_xlabel("checkpoint interval tau (useful minutes)")
    bx.set_ylabel("effective training time")
    bx.set_title(f"vs checkpoint interval, {ivl[0]['gpus']} GPUs")
    bx.grid(alpha=0.3, which="both")
    bx.legend(fontsize=8)
    cx = axs[1][0]
    x = range(len(rows))
    bottom = [0.0] * len(rows)
    for k, col in zip(E.TERMS, ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown")):
        v = [r[f"{k}_pct"] for r in rows]
        if any(v):
            cx.bar(x, v, bottom=bottom, color=col, label=k)
            bottom = [b + y for b, y in zip(bottom, v)]
    cx.axhline(100 * (1 - target), color="tab:red", lw=1, label=f"{100 * (1 - target):g} % (target)")
    cx.set_xticks(list(x), [str(v) for v in g])
    cx.set_xlabel("GPUs")
    cx.set_ylabel("unproductive share of wall time (%)")
    cx.set_title("Contribution of each term")
    cx.legend(fontsize=8)
    cx.grid(alpha=0.3, axis="y")
    dx = axs[1][1]
    dx.plot(g, [r["detect_recover_min"] for r in tgt], marker="o", label="now (mean over interruptions)")
    need = [(r["gpus"], r["needed_detect_recover_min"]) for r in tgt if r["needed_detect_recover_min"] != ""]
    if need:
        dx.plot(*zip(*need), marker="s", label=f"largest that reaches {target:g}")
    dx.set_xscale("log", base=2)
    dx.set_yscale("log")
    dx.set_xlabel("GPUs")
    dx.set_ylabel("detection + recovery per interruption (min)")
    dx.set_title(f"What it takes to reach {target:g}")
    dx.grid(alpha=0.3, which="both")
    dx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/effective_training_time"))
