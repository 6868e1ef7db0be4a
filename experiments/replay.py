"""Replay: run the RDMA messages of a RoCEv2 capture through a fabric, with each CC.

Which congestion control would have served a recorded workload best? The capture's WRITEs,
SENDs and READs (verbs, sizes, start times, connections) become the workload
(controlplane/transport/replay.py) on a single
switch by default; every CC in `ccs` runs it. Without `pcap`, the experiment first records a
demonstration capture (an 8:1 incast of 1 MB WRITEs under no CC) and replays that.

    softdpu run replay --set pcap=trace.pcap --set hosts=order
    softdpu run replay --set topology.rate_bps=25000000000
"""
from __future__ import annotations

from pathlib import Path

from congestion import registry
from controlplane.run.experiment import (run_variants, RATE_BPS, Ccs, ExperimentParams, Item, Nullable, OneOf, Quantity,
                                     Real)
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us
from pydantic import field_validator


class Params(ExperimentParams):
    """replay's parameters."""
    pcap: Nullable(Item("text"), "pcap file to replay (none: record a built-in 8:1 incast and replay that)") = None
    hosts: OneOf(("order", "softdpu"), "capture addresses to hosts: in order of appearance, or softdpu's own "
                 "address plan") = "order"
    time_scale: Real("multiplies the capture's time stamps", lo=0, lo_open=True) = 1.0
    rate_bps: Quantity("rate", "every link's rate", **RATE_BPS) = Gbps(100)
    delay_ps: Quantity("time", "every link's one-way propagation delay") = us(1)
    ccs: Ccs("congestion-control algorithms, one variant each") = ["dcqcn", "none"]

    @field_validator("pcap")
    @classmethod
    def _exists(cls, v):
        if v is not None and not Path(v).is_file():
            raise ValueError(f"no such file {v!r} (relative to {Path.cwd()})")
        return v


PARAMS = Params.defaults()      # the defaults, as a dict (derived from Params)


def demo_capture(path: Path, seed: int) -> Path:
    """A capture to replay when none is given: 8 senders x 1 MB into one host, DPU ports."""
    from controlplane.results.capture import CaptureSpec
    path.parent.mkdir(parents=True, exist_ok=True)
    Scenario(name="replay-source", topology={"topology": "single_switch", "num_hosts": 9, "rate_bps": Gbps(100),
                                            "delay_ps": us(1)},
             workload={"kind": "incast", "senders": 8, "size_bytes": 1_000_000, "jitter_ps": us(20)},
             cc="none", seed=seed, sample_interval_ps=0).run(
        capture=CaptureSpec(str(path), points=["hosts"], direction="tx", snaplen=128))
    return path


def scenarios(params: dict, seed: int, out_dir: Path) -> dict[str, Scenario]:
    p = Params.resolve(params, "replay")
    pcap = Path(p["pcap"]) if p["pcap"] else demo_capture(out_dir / "source.pcap", seed)
    from controlplane.transport.replay import messages
    _, n_hosts = messages(pcap, p["hosts"], p["time_scale"])
    return {registry.label(cc): Scenario(
        name=f"replay-{pcap.stem}",
        topology={"topology": "single_switch", "num_hosts": n_hosts, "rate_bps": p["rate_bps"], "delay_ps": p["delay_ps"]},
        workload={"kind": "pcap", "path": str(pcap), "hosts": p["hosts"], "time_scale": p["time_scale"]},
        cc=cc, seed=seed) for cc in p["ccs"]}


def run(out_dir: str | Path = "results/replay", params: dict | None = None, overrides: dict | None = None,
        seed: int = 1, plots: bool = True, capture=None) -> dict:
    out = Path(out_dir)
    return run_variants(out, scenarios(params or {}, seed, out), overrides or {}, plots=plots,
                        compare_name="replay.png", title="capture replay", capture=capture)


if __name__ == "__main__":
    from controlplane.run.experiment import experiment_main
    raise SystemExit(experiment_main(__name__, run, PARAMS, "results/replay"))
