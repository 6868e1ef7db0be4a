"""Shared checks for tests that run full scenarios."""
import numpy as np

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us

PAYLOAD_EFFICIENCY_4K = 4096 / (4096 + 14 + 20 + 8 + 12 + 4 + 4 + 20)   # Eth+IPv4+UDP+BTH+ICRC+FCS+preamble/IFG


def star(n_hosts: int, rate_bps: int = Gbps(100), delay_ps: int = us(1)) -> dict:
    return {"topology": "single_switch", "num_hosts": n_hosts, "rate_bps": rate_bps, "delay_ps": delay_ps}


def assert_conserved(result, all_complete: bool = True) -> None:
    """Packets sent = delivered + dropped + in flight; every posted byte acknowledged."""
    c = result.counters
    assert c["data_sent"] == c["data_delivered"] + c["data_dropped"] + c["data_in_flight"], c
    assert c["conservation_ok"] == 1
    if all_complete:
        assert c["msgs_completed"] == c["msgs_total"], c
        assert c["bytes_acked"] == c["bytes_posted"], c
        assert c["data_in_flight"] == 0


def run(**kw) -> "Result":  # noqa: F821
    return Scenario(**kw).run()


def steady_state(result):
    """Per-flow mean goodput (bps) and the bottleneck queue samples over the second half of
    the period in which every flow delivers data (the convergence window of the V-tests)."""
    ts = result.timeseries
    g = ts["qp_goodput_bps"]
    active = np.flatnonzero((g > 0).all(axis=1))
    lo, hi = active[0] + (active[-1] - active[0]) // 2, active[-1]
    queue = ts["port_queue_bytes"][lo:hi, list(ts["port_ids"]).index(result.network.bottleneck_port())]
    return g[lo:hi + 1].mean(axis=0), queue
