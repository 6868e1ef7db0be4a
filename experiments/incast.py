"""Incast: N senders WRITE to one receiver through one switch, with DCQCN and without CC.

How fast and how fairly do they share the bottleneck, and what does its queue do?

Default: 16:1 on a single 100 Gb/s switch, 1 us links, 16 MB per sender, DCQCN (NVIDIA-firmware
flavour, its ECN defaults) vs `none`. Writes results/incast/<cc>/ per algorithm (config, flows,
time series, counters, plots) and results/incast/incast.png comparing them.

    softdpu run incast
    softdpu run incast --set senders=8 --set cc_params.flavour=paper
    python -m experiments.incast --out /tmp/incast
"""
from __future__ import annotations

from pathlib import Path

from congestion import registry
from controlplane.run.experiment import experiment_main, run_variants, RATE_BPS, Ccs, Count, ExperimentParams, Quantity
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us
from controlplane.fabric.topology import MAX_HOSTS


#: experiment parameters (--set name=value); any other --set key is a Scenario field
class Params(ExperimentParams):
    """incast's parameters (--set NAME=VALUE; any other key is a Scenario field)."""
    senders: Count("hosts sending to the one receiver (N of N:1)", hi=MAX_HOSTS - 1) = 16
    rate_bps: Quantity("rate", "every link's rate", **RATE_BPS) = Gbps(100)
    delay_ps: Quantity("time", "every link's one-way propagation delay") = us(1)
    size_bytes: Quantity("size", "bytes each sender writes", lo=1) = MB(16)
    ccs: Ccs("congestion-control algorithms, one variant each") = ["dcqcn", "none"]


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def scenarios(params: dict, seed: int) -> dict[str, Scenario]:
    p = Params.resolve(params, "incast")
    out = {}
    for cc in p["ccs"]:
        out[registry.label(cc)] = Scenario(
            name=f"incast-{p['senders']}to1",
            topology={"topology": "single_switch", "num_hosts": p["senders"] + 1, "rate_bps": p["rate_bps"],
                      "delay_ps": p["delay_ps"]},
            workload={"kind": "incast", "senders": p["senders"], "size_bytes": p["size_bytes"], "receiver": 0},
            cc=cc, seed=seed)
    return out


def run(out_dir: str | Path = "results/incast", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    return run_variants(Path(out_dir), scenarios(params or {}, seed), overrides or {}, plots=plots,
                        compare_name="incast.png", title="N:1 incast", capture=capture)


if __name__ == "__main__":
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/incast"))
