"""PFC: a lossless data priority with the HPCC simulator's shared-buffer rules."""
import numpy as np
import pytest

from controlplane.run.scenario import Scenario
from tests.support import assert_conserved, run, star


def incast(n, **kw):
    return run(topology=star(n + 1), workload={"kind": "incast", "senders": n, "size_bytes": 2_000_000},
               sample_interval_ps=5_000_000, **kw)


def test_incast_without_cc_is_lossless_with_pfc():
    """32:1 at line rate without congestion control: drop-tail loses packets, PFC loses none
    (the headroom of 3 x rate x delay absorbs what is in flight after XOFF), pauses reach the
    senders, and every byte is delivered once."""
    lossy = incast(32, cc="none", buffer_bytes=2_000_000)
    assert lossy.counters["dropped"] > 0
    r = incast(32, cc="none", pfc=True)
    assert_conserved(r)
    c = r.counters
    assert c["dropped"] == 0 and c["retransmitted"] == 0
    assert c["pfc_pauses"] > 0 and c["pfc_resumes"] == c["pfc_pauses"]      # every XOFF got its XON
    ports = r.network.sim.ports
    hosts = [int(p) for p in r.network.routes.host_port[1:]]
    paused = ports["pauses"][hosts] > 0
    assert paused.sum() >= 16                                                # the senders were paused
    assert (ports["paused_ps"][hosts][paused] > 0).all()                     # ... for a measurable time


def test_buffer_accounting_returns_to_zero():
    r = incast(16, cc="none", pfc=True)
    p = r.network.sim.ports
    assert (p["in_bytes"] == 0).all() and (p["hdrm_bytes"] == 0).all() and (p["pause_sent"] == 0).all()
    assert (p["paused"] == 0).all() and (p["paused_since"] == -1).all()


def test_switch_buffer_is_bounded_by_pfc():
    """The switch never buffers more than its shared buffer plus the reserves and headrooms."""
    r = incast(16, cc="none", pfc=True, pfc_params={"buffer_bytes": 3_000_000})
    q = r.timeseries["port_queue_bytes"].sum(axis=1)
    assert q.max() <= 3_000_000
    assert r.counters["dropped"] == 0


def test_dcqcn_with_pfc_pauses_less_than_no_cc():
    none = incast(16, cc="none", pfc=True)
    dcqcn = incast(16, cc="dcqcn", pfc=True)
    assert_conserved(dcqcn)
    assert dcqcn.counters["dropped"] == 0
    assert dcqcn.counters["pfc_pauses"] < none.counters["pfc_pauses"]


def test_pfc_configuration_errors_are_named():
    wl = {"kind": "incast", "senders": 2, "size_bytes": 1000}
    with pytest.raises(ValueError, match="leaves no shared"):
        Scenario(topology=star(3), workload=wl, pfc=True, pfc_params={"buffer_bytes": 10_000}).build()
    with pytest.raises(ValueError, match="unknown key"):
        Scenario(topology=star(3), workload=wl, pfc=True, pfc_params={"xoff": 1}).build()


def test_short_pause_times_are_refreshed_while_congested():
    """With a pause time of 64 quanta (0.33 us at 100 Gb/s, shorter than the congestion), the
    switch repeats XOFF every half pause time: many more PFC frames than pause episodes, still
    no loss; with the largest pause time (335 us) far fewer refreshes are needed."""
    def refreshes(r):
        return int(r.network.sim.ports["pfc_tx"].sum()) - r.counters["pfc_pauses"] - r.counters["pfc_resumes"]
    short = incast(16, cc="none", pfc=True, pfc_params={"pause_quanta": 64})
    assert_conserved(short)
    assert short.counters["dropped"] == 0 and refreshes(short) > 10 * short.counters["pfc_pauses"]
    long = incast(16, cc="none", pfc=True)
    assert 0 <= refreshes(long) < refreshes(short) / 10
