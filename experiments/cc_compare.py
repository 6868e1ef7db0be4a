"""CC compare: long flows plus an incast burst on one bottleneck, for every algorithm.

How does each congestion control share a bottleneck between long flows, absorb a sudden N:1
burst into the same receiver, and recover? One figure per question, one panel per algorithm
(controlplane/results/plots.py, plot_questions): cc_compare.png, per-flow goodput with the Jain index
and utilization; cc_compare_queue.png, the bottleneck queue (each panel its own range) with its
ECN-mark rate and PFC pauses, and the CNPs received for the algorithms whose receivers send CNP
packets; cc_compare_window.png, the window of the window-based algorithms.
Default: 100 Gb/s single switch, 1 us links, lossless (PFC), 3 long flows of 24 MB from t = 0
and a burst of 8 x 500 KB at t = 600 us, algorithms dcqcn (NVIDIA flavour), dcqcn paper flavour,
dctcp, timely, hpcc, swift, nscc, none.

    softdpu run cc_compare
    softdpu run cc_compare --set burst=16 --set 'ccs=["dctcp","timely"]' --set pfc=false
"""
from __future__ import annotations

from pathlib import Path

from congestion import registry
from controlplane.run.experiment import run_variants, RATE_BPS, Ccs, Count, ExperimentParams, Quantity
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us
from controlplane.fabric.topology import MAX_HOSTS
from pydantic import model_validator


TITLE = "long flows + incast burst, one bottleneck"

#: names in `ccs` that are a registered algorithm with parameters
VARIANTS = {"dcqcn-paper": ("dcqcn", {"flavour": "paper"})}


class Params(ExperimentParams):
    """cc_compare's parameters."""
    long_flows: Count("long flows from t = 0, one sender each", lo=0, hi=MAX_HOSTS - 1) = 3
    long_bytes: Quantity("size", "bytes per long flow", lo=1) = MB(24)
    burst: Count("senders of the incast burst (one message each)", lo=0, hi=MAX_HOSTS - 1) = 8
    burst_bytes: Quantity("size", "bytes per burst message", lo=1) = 500_000
    burst_at_ps: Quantity("time", "when the burst starts") = us(600)
    rate_bps: Quantity("rate", "every link's rate", **RATE_BPS) = Gbps(100)
    delay_ps: Quantity("time", "every link's one-way propagation delay") = us(1)
    ccs: Ccs("congestion-control algorithms, one variant each (dcqcn-paper: DCQCN, paper flavour)",
             aliases=tuple(VARIANTS)) = ["dcqcn", "dcqcn-paper", "dctcp", "timely", "hpcc", "swift", "nscc", "none"]

    @model_validator(mode="after")
    def _someone_sends(self):
        if self.long_flows + self.burst < 1:
            raise ValueError("long_flows + burst must be >= 1 (no flow would run), got 0 + 0")
        return self


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(params: dict, seed: int) -> dict[str, Scenario]:
    p = Params.resolve(params, "cc_compare")
    n = p["long_flows"] + p["burst"]
    flows = [{"src": 1 + i, "dst": 0, "size_bytes": p["long_bytes"], "start_ps": 0} for i in range(p["long_flows"])]
    flows += [{"src": 1 + p["long_flows"] + i, "dst": 0, "size_bytes": p["burst_bytes"], "start_ps": p["burst_at_ps"]}
              for i in range(p["burst"])]
    out = {}
    for name in p["ccs"]:
        cc, cc_params = VARIANTS.get(name, (name, {}))
        key = registry.label(name)
        out[key] = Scenario(
            name=f"cc_compare-{key}",
            topology={"topology": "single_switch", "num_hosts": n + 1, "rate_bps": p["rate_bps"],
                      "delay_ps": p["delay_ps"]},
            workload={"kind": "flows", "flows": flows}, cc=cc, cc_params=cc_params, pfc=True,
            monitor_ports="all", sample_interval_ps=us(5), seed=seed)
    return out


def run(out_dir: str | Path = "results/cc_compare", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    out = Path(out_dir)
    variants = scenarios(params or {}, seed)
    summaries = run_variants(out, variants, overrides or {}, plots=False, capture=capture)
    if plots and variants:
        from controlplane.results.plots import plot_questions, plot_run
        for name in variants:
            plot_run(out / name)
        pngs = plot_questions([out / n for n in variants], out, "cc_compare", title=TITLE)
        print(f"plots: {out}/<variant>/plots/*.png and {', '.join(str(p) for p in pngs)}")
    return summaries


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/cc_compare"))
