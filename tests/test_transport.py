"""RC transport on an idle fabric and under loss: goodput, FCT, go-back-N, RTO, conservation."""
import numpy as np
import pytest

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us
from tests.support import PAYLOAD_EFFICIENCY_4K, assert_conserved, run, star

R = Gbps(100)


def one_flow(size, **kw):
    return dict(topology=star(2), workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": size}]}, **kw)


def test_single_flow_goodput_is_line_rate_times_payload_efficiency():
    """goodput = R * payload/(payload + headers), headers = Eth 14 + IPv4 20 + UDP 8 + BTH 12 +
    ICRC 4 + FCS 4 + preamble/IFG 20 = 82 B per 4096 B packet (98.04 %), within 1 %."""
    r = run(**one_flow(MB(20), cc="none", sample_interval_ps=us(10)))
    assert_conserved(r)
    ts = r.timeseries
    mid = slice(len(ts["t_ps"]) // 4, 3 * len(ts["t_ps"]) // 4)    # steady state, away from start/end
    goodput = ts["qp_goodput_bps"][mid, 0].mean()
    assert goodput == pytest.approx(R * PAYLOAD_EFFICIENCY_4K, rel=0.01)


def test_single_message_fct_is_base_rtt_plus_wire_bytes_over_rate():
    """1 MB = 245 packets over host-switch-host (2 x 1 us, 100 Gb/s). FCT = all wire bytes / R
    + the switch's store-and-forward of the largest packet (the first: it carries the RETH) +
    the ACK's serialization on 2 hops + 4 propagation delays (base RTT). Wire bytes: first
    packet 4096 + 82 + RETH 16, 243 x 4178, last 576 + 82. At 100 Gb/s a byte takes exactly
    80 ps, so no rounding enters: the FCT and the scenario's ideal-FCT column equal it exactly."""
    size = 1_000_000
    r = run(**one_flow(size, cc="none", sample_interval_ps=0))
    assert_conserved(r)
    last = size - 244 * 4096
    first = 4096 + 82 + 16
    wire = first + 243 * (4096 + 82) + (last + 82)
    ack = 14 + 20 + 8 + 12 + 4 + 4 + 4 + 20                         # + AETH 4, incl. preamble/IFG
    expected_ps = (wire + first + 2 * ack) * 8 * 10**12 // R + 4 * us(1)   # 80 ps per byte: exact
    assert r.flows["fct_ps"][0] == expected_ps
    assert r.flows["ideal_fct_ps"][0] == expected_ps
    assert r.flows["slowdown"][0] == 1.0


def test_go_back_n_recovers_drops_in_an_incast():
    """8:1 incast without CC into a 100 KB buffer drops packets; NAKs trigger go-back-N and every
    byte is eventually delivered exactly once (rx_bytes == size), with conservation."""
    r = run(topology=star(9), workload={"kind": "incast", "senders": 8, "size_bytes": 2_000_000}, cc="none",
            buffer_bytes=100_000, sample_interval_ps=0)
    assert_conserved(r)
    c = r.counters
    assert c["data_dropped"] > 0 and c["nak_sent"] > 0 and c["retransmitted"] > 0
    qps = r.network.sim.qps
    receivers = r.network.qps + 1
    assert (qps["rx_bytes"][receivers] == 2_000_000).all()


def test_retransmission_timeout_recovers_a_lost_tail():
    """Take the sender's link down while the last packets are in flight: no later packet exists
    to reveal the gap, so only the RTO (1 ms here) can recover; the message completes after it."""
    sc = Scenario(**one_flow(400_000, cc="none", sample_interval_ps=0, rto_ps=us(200)))
    net = sc.build()
    sim = net.sim
    sim.run_until(us(31))                    # ~32 us to send 400 KB at 100 Gb/s: near the tail
    host_link = int(net.routes.host_port[1]) // 2
    sim.set_link_up(host_link, False)
    sim.run_until(us(60))
    sim.set_link_up(host_link, True)
    result = net.run()
    assert_conserved(result)
    assert result.counters["timeouts"] >= 1
    assert result.network.sim.ports["down_drops"].sum() > 0
    assert result.flows["finish_ps"][0] > us(200)


def test_ack_coalescing_keeps_delivery_exact():
    r = run(**one_flow(MB(2), cc="none", ack_interval=8, sample_interval_ps=0))
    assert_conserved(r)
    acks = r.counters["ctrl_sent"]
    assert acks == pytest.approx(512 / 8, abs=2)        # one ACK per 8 packets + the AckReq of the last


def test_paced_rate_is_respected():
    """A plug-in-free check of pacing: a QP paced at 25 Gb/s (set through the Python CC path)
    gets 25 Gb/s x payload efficiency."""
    from congestion.api import CongestionControl

    class Fixed(CongestionControl):
        name = "fixed"
        events = frozenset({"start"})

        def on_start(self, st, ev):
            ev.rate_bps = 25e9

    from congestion import registry
    registry.register(Fixed)
    r = run(**one_flow(MB(5), cc="fixed", sample_interval_ps=us(10)))
    assert_conserved(r)
    g = r.timeseries["qp_goodput_bps"][:, 0]
    assert g[len(g) // 4: 3 * len(g) // 4].mean() == pytest.approx(25e9 * PAYLOAD_EFFICIENCY_4K, rel=0.01)


def test_run_until_returns_at_completions_for_the_control_plane():
    """With wake_on_completion, run_until stops as soon as a message completes (control
    ticks: docs/architecture.md, 'The C/Python boundary'); the drained record names the message,
    its QP and the time, which equal the message table's finish time."""
    from dataplane.sim import STOP_COMPLETIONS, STOP_IDLE, Simulator
    s = Simulator(num_hosts=2, num_switches=0, max_links=1, wake_on_completion=True)
    s.add_links([0], [1], [R], [us(1)])
    qp = s.create_qp_pair(0, 1, 49152)
    s.post_writes([qp, qp, qp], [10_000, 20_000, 30_000], [0, 0, us(50)])
    seen = []
    while True:
        stop = s.run_until(10**12)
        if stop == STOP_IDLE:
            break
        assert stop == STOP_COMPLETIONS
        for c in s.drain_completions():
            seen.append((int(c["msg"]), int(c["qp"]), int(c["t_ps"])))
    msgs = s.msgs
    assert [m for m, _, _ in seen] == [0, 1, 2] and all(q == qp for _, q, _ in seen)
    assert [t for _, _, t in seen] == list(msgs["finish_ps"])
    assert seen[2][2] > us(50)
