"""RDMA verbs beyond WRITE (native/nic.c, reorder.c): SEND and WRITE with immediate against a
receive queue (RNR NAK, RNR timer, retry count, reposting), READ (responses under the
responder's rate, max_rd_atomic, recovery of lost responses), each with gbn, sr and ooo.

Expected values: the ideal FCT of a message alone (scenario.ideal_fct_ps: the data plane's own
integer picoseconds, exact), the RNR timer table (IBTA Vol. 1 Table 45) and the retry rule of
IBTA §9.7.5.2.8 (a requester retries an RNR NAK rnr_retry times, 7 = forever)."""
import numpy as np
import pytest

import dataplane.sim as dp
from controlplane.config.units import us
from controlplane.run.scenario import Scenario
from tests.support import assert_conserved, run, star

VERBS = ["write", "write_imm", "send", "send_imm", "read"]
TRANSPORTS = ["gbn", "sr", "ooo"]


def flows(verb, size, n=1, conn=0, **kw):
    fl = [{"src": 1, "dst": 0, "size_bytes": size, "verb": verb, "conn": conn} for _ in range(n)]
    return dict(topology=star(2), workload={"kind": "flows", "flows": fl}, cc="none", sample_interval_ps=0, **kw)


def ends(r):
    q = r.network.sim.qps
    s = int(r.network.sender_qps[0])
    return q[s], q[s + 1]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("size", [1, 4096, 5000, 1_000_000])
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_alone_completes_in_its_ideal_time(verb, size, transport):
    """A message alone on its path completes exactly at its ideal FCT (slowdown 1): SEND First
    has no RETH (16 B less on the wire), the immediate opcodes 4 B more, and a READ is one
    request one way plus the responses back, with no ACK."""
    r = run(**flows(verb, size, transport=transport))
    assert_conserved(r)
    assert r.flows["fct_ps"][0] == r.flows["ideal_fct_ps"][0]
    req, resp = ends(r)
    if verb == "read":
        assert int(req["rx_bytes"]) == size and int(resp["read_resp_bytes"]) == size
        assert int(resp["rx_bytes"]) == 0 and int(resp["rx_completions"]) == 0
    else:
        assert int(resp["rx_bytes"]) == size and int(req["rx_bytes"]) == 0
        assert int(resp["rx_completions"]) == (verb != "write")     # a receive consumed, a responder completion
    m = r.network.sim.msgs[0]
    assert int(m["verb"]) == dp.VERBS[verb] and int(m["status"]) == 0
    if verb in ("send", "send_imm", "write_imm"):
        # the responder completes when the last packet is in: one ACK's trip before the requester
        assert 0 < int(m["rx_done_ps"]) < int(m["finish_ps"])
    else:
        assert int(m["rx_done_ps"]) == -1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_several_messages_of_mixed_verbs_on_one_qp_complete_in_order(transport):
    """WRITE, READ, SEND, READ, WRITE with immediate on one QP: every one completes, in posting
    order (RC completes in order), and every byte arrives once."""
    fl = [{"src": 1, "dst": 0, "size_bytes": s, "verb": v, "conn": 0}
          for v, s in [("write", 300_000), ("read", 500_000), ("send", 70_000), ("read", 4096), ("write_imm", 9000)]]
    r = run(topology=star(2), workload={"kind": "flows", "flows": fl}, cc="none", sample_interval_ps=0,
            transport=transport)
    assert_conserved(r)
    fin = r.network.sim.msgs["finish_ps"]
    assert (fin > 0).all() and (np.diff(fin) >= 0).all()
    req, resp = ends(r)
    assert int(req["rx_bytes"]) == 504_096 and int(resp["read_resp_bytes"]) == 504_096
    assert int(resp["rx_bytes"]) == 300_000 + 70_000 + 9000
    assert int(resp["rx_completions"]) == 2 and int(req["timeouts"]) == 0


def test_an_ack_that_overtakes_read_responses_does_not_complete_the_read():
    """READ 1 MB then a small WRITE on one QP: the WRITE's ACK (control priority) leaves the
    responder while its READ responses are still queued behind it, and covers a PSN past the
    READ's. It must not complete the READ: the READ completes when its last response is in (its
    ideal time plus that one ACK's serialization ahead of the responses on the responder's
    uplink: 86 B x 80 ps at 100 Gb/s), the WRITE with it, and no timer fires."""
    fl = [{"src": 1, "dst": 0, "size_bytes": 1_000_000, "verb": "read", "conn": 0},
          {"src": 1, "dst": 0, "size_bytes": 1000, "verb": "write", "conn": 0}]
    r = run(topology=star(2), workload={"kind": "flows", "flows": fl}, cc="none", sample_interval_ps=0)
    req, _ = ends(r)
    fin = r.network.sim.msgs["finish_ps"]
    ack_ps = dp.wire_bytes(dp.OPCODES["ack"], 0) * 80
    assert fin[0] == r.flows["ideal_fct_ps"][0] + ack_ps
    assert fin[1] == fin[0]                  # the WRITE's ACK came first: it completes with the READ
    assert int(req["rx_bytes"]) == 1_000_000 and int(req["timeouts"]) == 0


def test_max_rd_atomic_limits_outstanding_reads():
    """Eight 64 KB READs (16 responses each) posted at once. max_rd_atomic = 1: each is requested
    when the one before completes, so READ k completes at exactly k x the ideal READ time. 16: the
    eight requests go out together and the responses stream back to back, so the last READ
    completes one ideal READ plus 7 x 16 full responses' serialization later (+ the requests'
    own serialization, < 1 us). 2: the same here (a 64 KB transfer outlasts the RTT)."""
    last = {}
    for limit in (1, 2, 16):
        r = run(**flows("read", 65536, n=8, verbs={"max_rd_atomic": limit}))
        fin = r.network.sim.msgs["finish_ps"].astype(np.int64)
        ideal = int(r.flows["ideal_fct_ps"][0])
        if limit == 1:
            assert fin.tolist() == [ideal * (k + 1) for k in range(8)]
        assert int(ends(r)[0]["rx_bytes"]) == 8 * 65536
        last[limit] = int(fin[-1])
    stream = 7 * 16 * dp.wire_bytes(dp.OPCODES["read_response_middle"], 4096) * 80
    assert ideal + stream <= last[16] <= ideal + stream + us(1)
    assert last[16] <= last[2] < last[1]        # two READs in flight already cover the RTT here


def _lossy_read(transport, port_of, loss, seed, n=4, size=1_000_000):
    net = Scenario(**flows("read", size, n=n, transport=transport, seed=seed, rto_ps=us(100))).build()
    hp = net.routes.host_port
    net.sim.set_port_loss(port_of(hp), loss)
    return net.run()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("where", ["responses", "requests"])
def test_lost_read_requests_and_responses_are_recovered(transport, seed, where):
    """Random loss on the responder's uplink (2 % of the READ responses) or on the requester's
    (half of the READ requests): every READ completes with every byte placed exactly once at the
    requester, and the data plane conserves packets. gbn re-requests the rest of a READ from the
    first missing response; sr/ooo re-request each missing response alone; a lost request is
    asked again when the timer fires."""
    port_of = (lambda hp: int(hp[0])) if where == "responses" else (lambda hp: int(hp[1]))
    r = _lossy_read(transport, port_of, 0.02 if where == "responses" else 0.5, seed)
    assert_conserved(r)
    assert (r.network.sim.msgs["finish_ps"] > 0).all()
    req, resp = ends(r)
    assert int(req["rx_bytes"]) == 4_000_000
    assert r.counters["data_dropped"] > 0
    assert int(resp["read_resp_bytes"]) >= 4_000_000


def test_sr_re_requests_only_the_lost_responses():
    """sr: a lost READ response is re-requested alone (a one-packet READ request), so the
    responder sends about as many extra responses as were lost, far from go-back-N's rest of
    the READ (gbn on the same losses resends much more)."""
    extra = {}
    for transport in ("gbn", "sr"):
        r = _lossy_read(transport, lambda hp: int(hp[0]), 0.01, 3)
        _, resp = ends(r)
        extra[transport] = int(resp["read_resp_bytes"]) - 4_000_000
        lost = int(resp["data_dropped"])
        assert lost > 0
        if transport == "sr":
            # each lost response resent once (+ a lost re-request's resend): at most 2 MTUs per loss
            assert extra["sr"] <= 2 * lost * 4096
    assert extra["gbn"] > 4 * extra["sr"]


# ---------------------------------------------------------------- receive queues and RNR
def rnr_timer_us(code):
    return dp.lib.sd_rnr_timer_ps(code) / 1e6


def test_rnr_timer_table():
    """IBTA Vol. 1 Table 45: 0 = 655.36 ms, 1 = 0.01 ms, 12 = 0.64 ms, 31 = 491.52 ms; codes > 31 invalid."""
    assert [rnr_timer_us(c) for c in (0, 1, 2, 12, 13, 31)] == [655360, 10, 20, 640, 960, 491520]
    assert dp.lib.sd_rnr_timer_ps(32) == -1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rnr_retries_exhausted_complete_in_error(transport):
    """No receive is ever posted (rq_depth 0, never reposted), rnr_retry 2, RNR timer 10 us: a
    one-packet SEND is RNR-NAKed three times (the first try and two retries) and then completes
    in error (rnr_retry_exceeded); the SEND behind it is flushed. Each try costs T = its ideal
    FCT (the RNR NAK is an ACK-sized frame on the way back) plus the 10 us wait before a retry:
    the error comes at 3 T + 2 x 10 us."""
    r = run(**flows("send", 100, n=2, transport=transport,
                    verbs={"rq_depth": 0, "rq_repost_ps": -1, "rnr_retry": 2, "min_rnr_timer": 1}))
    req, resp = ends(r)
    assert int(req["rnr_naks_rx"]) == int(resp["rnr_naks_tx"]) == 3
    m = r.network.sim.msgs
    assert [dp.WC_STATUS[int(x)] for x in m["status"]] == ["rnr_retry_exceeded", "flushed"]
    assert (m["finish_ps"] == -1).all() and int(resp["rx_bytes"]) == 0
    assert r.counters["timeouts"] == 0


def test_rnr_wait_then_success_when_the_receive_is_posted():
    """Low level: rq_depth 0, the application posts one receive at 15 us. The SEND (one packet)
    is RNR-NAKed at T (its ideal FCT, 4 us here), the requester waits the 10 us RNR timer and
    resends; the receive is there by then, so it completes at 2 T + 10 us."""
    s = dp.Simulator(num_hosts=2, num_switches=1, max_links=2)
    s.add_links([0, 1], [2, 2], [100_000_000_000] * 2, [1_000_000] * 2)
    s.install_fib([[0, 1]], [0, 1, 2], [1, 3])
    qp = s.create_qp_pair(1, 0, 49152)
    s.set_stall_limit(10_000)
    s.set_qp_verbs(qp + 1, rq_depth=0, rq_repost_ps=-1, min_rnr_timer=1)
    s.post_msgs([qp], [100], [0], ["send"])
    s.run_until(us(15))
    assert int(s.qps[qp]["rnr_naks_rx"]) == 1 and int(s.msgs[0]["finish_ps"]) == -1
    s.post_recv(qp + 1, 1)
    s.run_until(us(1000))
    m = s.msgs[0]
    fin = int(m["finish_ps"])
    T = (fin - us(10)) // 2
    assert fin == 2 * T + us(10) and us(3) < T < us(6)
    c = s.drain_completions()
    kinds = sorted((int(x["kind"]), int(x["qp"])) for x in c)
    assert kinds == [(dp.CQ_REQUESTER, qp), (dp.CQ_RESPONDER, qp + 1)]
    assert (c["status"] == 0).all()
    with pytest.raises(Exception, match="unlimited receives"):
        s.post_recv(qp, 1)                   # the requester end keeps the unlimited default


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reposted_receives_pace_the_sends(transport):
    """rq_depth 1, each receive reposted 50 us after its SEND completed at the responder: four
    one-packet SENDs posted at once all complete, every one after an RNR wait but the first, and
    the responder completes them at least 50 us apart (the repost turnaround)."""
    r = run(**flows("send", 100, n=4, transport=transport,
                    verbs={"rq_depth": 1, "rq_repost_ps": us(50), "min_rnr_timer": 1}))
    assert_conserved(r)
    req, resp = ends(r)
    m = r.network.sim.msgs
    assert (m["status"] == 0).all() and (m["finish_ps"] > 0).all()
    rx = m["rx_done_ps"].astype(np.int64)
    assert (np.diff(rx) >= us(50)).all()
    assert int(resp["rx_completions"]) == int(resp["rq_used"]) == 4
    assert int(resp["rq_posted"]) >= 4 and int(req["rnr_naks_rx"]) >= 3


def test_write_with_immediate_needs_a_receive_only_at_its_last_packet():
    """A 3-packet WRITE with immediate and no receive: only its last packet (WRITE Last with
    Immediate) needs one (IBTA §9.7.5.2.8), so exactly that PSN is RNR-NAKed; First and Middle
    are placed."""
    r = run(**flows("write_imm", 3 * 4096, transport="gbn",
                    verbs={"rq_depth": 0, "rq_repost_ps": -1, "rnr_retry": 0, "min_rnr_timer": 1}))
    req, resp = ends(r)
    assert int(resp["rnr_naks_tx"]) == 1 and int(resp["rx_bytes"]) == 2 * 4096
    assert dp.WC_STATUS[int(r.network.sim.msgs["status"][0])] == "rnr_retry_exceeded"


# ---------------------------------------------------------------- configuration
def test_bad_verbs_settings_and_verbs_are_named():
    with pytest.raises(ValueError, match="verbs.min_rnr_timer"):
        Scenario(**flows("send", 100, verbs={"min_rnr_timer": 32})).build()
    with pytest.raises(ValueError, match="verbs.max_rd_atomic"):
        Scenario(**flows("send", 100, verbs={"max_rd_atomic": 0})).build()
    with pytest.raises(ValueError, match="flows.0..verb|flows\\[0\\].verb"):
        Scenario(**flows("atomic", 100)).build()
    with pytest.raises(ValueError, match="reorder window"):
        Scenario(**flows("read", 100 * 4096, transport="sr", transport_params={"reorder_window": 64})).run()
    with pytest.raises(ValueError, match="2\\^31"):
        Scenario(**flows("send", 2**31 + 1)).run()
    s = dp.Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [10**11], [10**6])
    qp = s.create_qp_pair(0, 1, 49152)
    with pytest.raises(ValueError, match="rnr_retry"):
        s.set_qp_verbs(qp, rnr_retry=8)
    with pytest.raises(ValueError, match="verbs\\[0\\]"):
        s.post_msgs([qp], [10], [0], ["atomic"])


def test_verbs_runs_are_deterministic():
    kw = flows("read", 200_000, n=3, transport="sr", seed=5)
    a, b = run(**kw), run(**kw)
    assert a.flows["fct_ps"].tolist() == b.flows["fct_ps"].tolist()
    assert a.counters == b.counters


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verbs_cross_the_dpu_vswitch_overlay(transport):
    """Every verb between tenants' VFs through the DPUs' vSwitches (VXLAN overlay, slow-path
    upcalls for the first packet of each flow in each direction: READ responses and ACKs go the
    other way and are classified there): all complete, every byte placed once, and the overlay
    adds the 50-byte VXLAN header to every frame (so each FCT exceeds its ideal)."""
    fl = [{"src": 1 + i % 3, "dst": 0, "size_bytes": 200_000, "verb": v, "conn": i}
          for i, v in enumerate(VERBS)]
    r = Scenario(topology=star(4), workload={"kind": "flows", "flows": fl}, cc="none", sample_interval_ps=0,
                 transport=transport, dpu={"tenants": 2, "vfs_per_host": 2}).run()
    assert_conserved(r)
    m = r.network.sim.msgs
    assert (m["finish_ps"] > 0).all() and (m["status"] == 0).all()
    assert (r.flows["fct_ps"] > r.flows["ideal_fct_ps"]).all()
    q = r.network.sim.qps
    snd = r.network.qps
    for i, v in enumerate(VERBS):
        got = q["rx_bytes"][snd[i]] if v == "read" else q["rx_bytes"][snd[i] + 1]
        assert int(got) == 200_000


def test_generated_workloads_take_a_verb_and_read_keeps_the_data_direction():
    """workload.verb applies to every message of a generated workload; with "read" the data still
    converges on the incast's receiver: it is the requester (src) of every READ, the senders
    answer (dst)."""
    for verb in VERBS:
        r = run(topology=star(4), workload={"kind": "incast", "senders": 3, "size_bytes": 100_000, "verb": verb},
                cc="none", sample_interval_ps=0)
        assert set(r.flows["verb"]) == {verb}
        if verb == "read":
            assert set(r.flows["src"]) == {0} and sorted(r.flows["dst"]) == [1, 2, 3]
        else:
            assert sorted(r.flows["src"]) == [1, 2, 3] and set(r.flows["dst"]) == {0}
        assert (r.flows["wc_status"] == "success").all()
    with pytest.raises(ValueError, match="workload.verb"):
        run(topology=star(4), workload={"kind": "permutation", "size_bytes": 1000, "verb": "atomic"})


def test_a_read_incast_under_dcqcn_cuts_the_responders_rates():
    """4 hosts answer READs from host 0 at once (a READ incast) under DCQCN: the responders' CC
    starts with their first response (before this was fixed, the first CNP found DCQCN never
    started and the run stopped: 'dcqcn set rate_bps=0'), the CNPs from the requester reach the
    responders and cut their rates (DCQCN's timers run while a responder owes responses: before
    that was fixed they stayed parked as for an idle sender, and no cut was ever applied), and
    every READ completes, about as late as the same incast of WRITEs (within 10 %)."""
    kw = dict(topology=star(5), cc="dcqcn", sample_interval_ps=us(5), trace=100_000)
    r = run(workload={"kind": "incast", "senders": 4, "size_bytes": 1_000_000, "verb": "read"}, **kw)
    assert_conserved(r)
    assert (r.flows["finish_ps"] > 0).all()
    q = r.network.sim.qps
    responders = r.network.qps + 1
    assert (q["cnps_rx"][responders] > 0).all() and (q["read_resp_bytes"][responders] == 1_000_000).all()
    t = r.trace[np.isin(r.trace["qp"], responders)]
    assert t["rate_bps"].min() < 0.5 * 100e9
    w = run(workload={"kind": "incast", "senders": 4, "size_bytes": 1_000_000}, **kw)
    assert r.flows["fct_ps"].max() == pytest.approx(w.flows["fct_ps"].max(), rel=0.10)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_lost_read_request_is_asked_again_in_one_request(transport):
    """The READ request (1 MB, 245 responses) is lost on the requester's uplink: the timer fires
    once (rto 100 us) and the READ is requested again in one request for all 245 responses
    (sr/ooo: the timeout declares the 245 PSNs lost, and consecutive lost responses of one READ
    go out as one request), not 245 one-packet requests; then it completes in its ideal time
    after the resend."""
    s = dp.Simulator(num_hosts=2, num_switches=1, max_links=2, rto_ps=us(100))
    s.add_links([0, 1], [2, 2], [100_000_000_000] * 2, [1_000_000] * 2)
    s.install_fib([[0, 1]], [0, 1, 2], [1, 3])
    s.set_stall_limit(10_000)
    qp = s.create_qp_pair(1, 0, 49152)
    if transport != "gbn":
        s.set_transport(qp, transport)
    s.post_msgs([qp], [1_000_000], [0], ["read"])
    s.set_port_loss(2, 1.0)                   # host 1's uplink (link 1 = ports 2, 3)
    s.run_until(us(5))
    s.set_port_loss(2, 0.0)
    s.run_until(us(10_000))
    q = s.qps[qp]
    assert int(q["timeouts"]) == 1 and int(q["retx_packets"]) == 1 and int(q["sent_packets"]) == 2
    assert int(q["rx_bytes"]) == 1_000_000 and int(s.qps[qp + 1]["read_resp_bytes"]) == 1_000_000
    assert int(s.msgs[0]["finish_ps"]) > us(100)


# ---------------------------------------------------------------- ATOMICs
def atomics(verb, n, transport="gbn", args=None, **kw):
    fl = [{"src": 1, "dst": 0, "size_bytes": 8, "verb": verb, "conn": 0, **((args or [{}] * n)[i])} for i in range(n)]
    return Scenario(topology=star(2), workload={"kind": "flows", "flows": fl}, cc="none", sample_interval_ps=0,
                    transport=transport, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("verb", ["atomic_cas", "atomic_fadd"])
def test_an_atomic_alone_completes_in_its_ideal_time(verb, transport):
    """Its request (AtomicETH, 28 B) one way, the ATOMIC Acknowledge (AETH + AtomicAckETH, 12 B)
    back: exactly the ideal FCT; the requester counts the 8 returned bytes."""
    r = atomics(verb, 1, transport).run()
    assert_conserved(r)
    assert r.flows["fct_ps"][0] == r.flows["ideal_fct_ps"][0]
    assert int(ends(r)[0]["rx_bytes"]) == 8


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fetch_and_add_returns_every_value_once(transport):
    """Ten fetch-and-adds of 3 on one QP: the responder's word ends at 30 and the originals
    returned are 0, 3, ..., 27, each once (IBTA §9.4.5: the operation is atomic on the word)."""
    r = atomics("atomic_fadd", 10, transport, args=[{"atomic_value": 3}] * 10).run()
    sim = r.network.sim
    resp = int(r.network.qps[0]) + 1
    assert sim.atomic_word(resp) == 30
    assert sorted(int(x) for x in sim.msgs["atomic_orig"]) == list(range(0, 30, 3))
    assert (r.flows["wc_status"] == "success").all()


def test_compare_and_swap_swaps_only_on_a_match():
    """CAS(0 -> 5) finds 0 and swaps; CAS(0 -> 7) finds 5 and leaves it; CAS(5 -> 9) swaps."""
    args = [{"atomic_compare": 0, "atomic_value": 5}, {"atomic_compare": 0, "atomic_value": 7},
            {"atomic_compare": 5, "atomic_value": 9}]
    r = atomics("atomic_cas", 3, args=args).run()
    sim = r.network.sim
    assert [int(x) for x in sim.msgs["atomic_orig"]] == [0, 5, 5]
    assert sim.atomic_word(int(r.network.qps[0]) + 1) == 9


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_lost_atomic_acknowledge_does_not_execute_it_twice(transport, seed):
    """Half the ATOMIC Acknowledges are lost (the responder's uplink): the requester asks again and
    the responder answers a duplicate from the saved result without adding again, so 40
    fetch-and-adds of 1 leave exactly 40 and return 0..39 once each."""
    net = atomics("atomic_fadd", 40, transport, seed=seed, rto_ps=us(50)).build()
    net.sim.set_port_loss(int(net.routes.host_port[0]), 0.5)
    r = net.run()
    sim = r.network.sim
    resp = int(r.network.qps[0]) + 1
    assert r.counters["data_dropped"] > 0 and r.counters["retransmitted"] > 0
    assert sim.atomic_word(resp) == 40
    assert sorted(int(x) for x in sim.msgs["atomic_orig"]) == list(range(40))
    assert (r.flows["wc_status"] == "success").all()


def test_atomic_arguments_are_checked():
    with pytest.raises(ValueError, match="8 bytes"):
        Scenario(**flows("atomic_fadd", 16)).build()
    with pytest.raises(ValueError, match="8 bytes"):
        Scenario(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": 100, "verb": "atomic_cas"},
                 cc="none").build()
    s = dp.Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [10**11], [10**6])
    qp = s.create_qp_pair(0, 1, 49152)
    first = s.post_msgs([qp, qp], [8, 100], [0, 0], ["atomic_fadd", "write"])
    with pytest.raises(ValueError, match="not an ATOMIC"):
        s.set_atomic_args(first + 1, 1)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        s.set_atomic_args(first, -1)
    s.set_atomic_word(qp + 1, 2**64 - 1)
    s.set_atomic_args(first, 2)                                     # adds wrap modulo 2^64
    s.set_stall_limit(10_000)
    s.run_until(us(1000))
    assert s.atomic_word(qp + 1) == 1 and int(s.msgs[first]["atomic_orig"]) == 2**64 - 1
    with pytest.raises(Exception, match="sent already"):
        s.set_atomic_args(first, 5)


@pytest.mark.parametrize("verb", VERBS + ["atomic_fadd"])
def test_every_verb_runs_on_a_negotiated_path_mtu(verb):
    """NIC profiles (docs/interop.md): a ConnectX-4-like NIC at both ends negotiates a 1024-byte
    path MTU; every verb then uses it (packet counts, READ responses sized by the requester's
    MTU) and a message alone still completes exactly at its ideal FCT."""
    size = 8 if verb.startswith("atomic") else 100_000
    r = run(topology=star(2), workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": size,
                                                                    "verb": verb}]},
            cc="none", sample_interval_ps=0, nic_profiles={"default": "cx4_gbn_dcqcn"})
    assert_conserved(r)
    assert (r.network.sim.qps["mtu_payload"][:2] == 1024).all()
    assert r.flows["fct_ps"][0] == r.flows["ideal_fct_ps"][0]
    if verb in ("write", "send", "read"):
        assert r.counters["data_sent"] == (1 if verb == "read" else 0) + -(-size // 1024)
