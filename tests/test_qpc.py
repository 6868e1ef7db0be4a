"""QP-context cache (native/qpc.c, issue #6): hit/miss counts and victims match a pure-Python LRU
(and FIFO; random: outcomes given its victims) model replaying the recorded trace; no cache = bit-identical results; throughput falls
when active QPs exceed the cache and recovers with a larger one; packets that wait for a context
are processed in order and exactly once; bad input is refused by name."""
from collections import OrderedDict

import numpy as np
import pytest

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, KB, us
from dataplane import sim as dp
from dataplane._native import ffi, lib
from tests.support import assert_conserved, star

HIT, MISS, PENDING, FILL, EVICT = (lib.SD_QPC_HIT, lib.SD_QPC_MISS, lib.SD_QPC_PENDING, lib.SD_QPC_FILL,
                                   lib.SD_QPC_EVICT)


def many_qps(n_qps, peers=8, size=KB(2), msgs=4, seed=1, qpc=None, random_sizes=False, **kw):
    """Host 0 opens n_qps connections round-robin over `peers` peers, `msgs` WRITEs each, all
    posted at t=0 (plus, with random_sizes, random sizes and a few reverse flows)."""
    rng = np.random.default_rng(seed)
    flows = []
    for i in range(n_qps):
        for _ in range(msgs):
            s = int(rng.integers(64, 3 * 4096)) if random_sizes else size
            flows.append({"src": 0, "dst": 1 + i % peers, "size_bytes": s, "start_ps": 0, "conn": i})
    if random_sizes:                     # some traffic the other way, at random times
        for j in range(n_qps // 2):
            flows.append({"src": 1 + j % peers, "dst": 0, "size_bytes": int(rng.integers(64, 20000)),
                          "start_ps": int(rng.integers(0, us(50))), "conn": n_qps + j})
    base = dict(topology=star(peers + 1), workload={"kind": "flows", "flows": flows}, cc="none",
                sample_interval_ps=0, monitor_ports="none", seed=seed, qpc=qpc)
    base.update(kw)
    return Scenario(**base)


class Model:
    """The cache as a textbook LRU (or FIFO): an ordered dict of cached QPs (first = victim) and a
    set of QPs whose fetch is queued or in flight. Accesses come from the trace; the model decides
    hit / miss / pending and its own victims; fills come from the trace (their timing is the
    fetch pipeline's, not the replacement policy's)."""

    def __init__(self, entries, policy="lru"):
        self.entries, self.policy = entries, policy
        self.cache, self.inflight = OrderedDict(), set()
        self.outcomes, self.victims = [], []

    def access(self, qp):
        if qp in self.cache:
            if self.policy == "lru":
                self.cache.move_to_end(qp)
            self.outcomes.append(HIT)
        elif qp in self.inflight:
            self.outcomes.append(PENDING)
        else:
            self.inflight.add(qp)
            self.outcomes.append(MISS)

    def evict(self, qp):
        """random: the simulator's victim (its RNG is not modelled); it must be cached."""
        assert qp in self.cache, f"victim {qp} is not cached"
        del self.cache[qp]
        self.victims.append(qp)

    def fill(self, qp):
        assert qp in self.inflight, f"fill of qp {qp} that the model never missed"
        self.inflight.remove(qp)
        if len(self.cache) >= self.entries:
            assert self.policy != "random", "random: a fill into a full cache without a victim"
            victim, _ = self.cache.popitem(last=False)
            self.victims.append(victim)
        self.cache[qp] = True


def replay(trace, entries, policy):
    """Per host: (C outcomes, model outcomes, C victims, model victims)."""
    out = {}
    for h in np.unique(trace["host"]):
        rec = trace[trace["host"] == h]
        m = Model(entries, policy)
        c_out, c_vic = [], []
        for r in rec:
            o = int(r["outcome"])
            if o in (HIT, MISS, PENDING):
                m.access(int(r["qp"]))
                c_out.append(o)
            elif o == FILL:
                m.fill(int(r["qp"]))
            else:
                c_vic.append(int(r["qp"]))
                if policy == "random":
                    m.evict(int(r["qp"]))
        out[int(h)] = (c_out, m.outcomes, c_vic, m.victims)
    return out


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_hits_and_misses_match_an_lru_model_on_the_recorded_trace(seed, policy):
    """lru and fifo: the model picks its own victims and must agree on each; random: the model
    takes the simulator's victims (each must be cached, with no packet waiting) and must agree
    on every access's outcome."""
    entries = [8, 16, 24, 40][seed - 1]
    sc = many_qps(64, random_sizes=True, seed=seed,
                  qpc={"entries": entries, "fetch_latency_ps": 700_000 + 300_000 * seed, "max_outstanding": 2 + seed,
                       "policy": policy, "trace": 1_000_000})
    r = sc.run()
    assert_conserved(r)
    trace, dropped = r.network.sim.qpc_trace
    assert dropped == 0 and len(trace) > 1000
    qh = r.network.sim.qpc_hosts
    total = {"hits": 0, "misses": 0, "pending": 0}
    for h, (c_out, m_out, c_vic, m_vic) in replay(trace, entries, policy).items():
        # every access classified alike, in order, and the same victims in the same order
        assert c_out == m_out, f"host {h}: first difference at access {next(i for i, (a, b) in enumerate(zip(c_out, m_out)) if a != b)}"
        assert c_vic == m_vic
        for name, o in (("hits", HIT), ("misses", MISS), ("pending", PENDING)):
            assert qh[name][h] == m_out.count(o)
            total[name] += m_out.count(o)
        assert qh["evictions"][h] == len(m_vic)
    # the trace exercised every path: hits, misses, merged arrivals, evictions, queued fetches
    assert min(total.values()) > 0 and qh["evictions"].sum() > 0 and qh["fetch_queued"].sum() > 0
    assert r.counters["qpc_hits"] == total["hits"] and r.counters["qpc_misses"] == total["misses"]
    # sends that waited: a transmit hit with a transmit miss on its QP since that QP's last send
    tx = trace[trace["access"] == lib.SD_QPC_TX]
    tx = tx[np.isin(tx["outcome"], [HIT, MISS])]
    for h in np.unique(trace["host"]):
        missed, waited = set(), 0
        for r_ in tx[tx["host"] == h]:
            qp = int(r_["qp"])
            if r_["outcome"] == MISS:
                missed.add(qp)
            elif qp in missed:
                missed.remove(qp)
                waited += 1
        assert qh["tx_waited"][h] == waited
    assert (qh["peak_outstanding"] <= qh["max_outstanding"]).all()


def test_no_cache_is_bit_identical():
    """qpc=None, and a cache of 0 entries on every host, give the same run to the last counter,
    FCT and port statistic (and the counters gain no qpc_* keys without a cache)."""
    plain = many_qps(40, random_sizes=True).run()
    zero = many_qps(40, random_sizes=True, qpc={"entries": 0}).run()
    a = plain.counters
    b = {k: v for k, v in zero.counters.items() if not k.startswith("qpc_")}
    assert not any(k.startswith("qpc_") for k in a)
    assert a == b
    for k in plain.flows:
        np.testing.assert_array_equal(plain.flows[k], zero.flows[k], err_msg=k)   # NaNs equal; text columns too
    assert np.array_equal(plain.network.sim.ports, zero.network.sim.ports)
    assert zero.counters["qpc_hits"] == zero.counters["qpc_misses"] == 0


def aggregate(r):
    f = r.flows
    span = f["finish_ps"].max() - f["start_ps"].min()
    return f["size_bytes"].sum() * 8e12 / span


def test_throughput_falls_past_the_cache_and_recovers_with_a_larger_one():
    """1024 QPs from one host, 512 B WRITEs (16 per QP) served round-robin: every pick of the
    scheduler is a different QP, so with 256 entries LRU misses on every send (a cyclic pattern
    longer than the cache) and the NIC sends at most max_outstanding packets per fetch round trip
    (16 / (1 us + 16 x 49 ns) = 9 Mpps = 37 Gb/s of payload, against 81 Gb/s at line rate).
    With 4096 entries only the first touch of each QP misses (1024 of 16384 sends), so it must
    be back within 10 % of no cache; 16 QPs fit either cache and lose < 2 % (compulsory misses)."""
    def tput(n, entries):
        msgs = 16384 // n
        qpc = None if entries is None else {"entries": entries}
        return aggregate(many_qps(n, peers=16, size=512, msgs=msgs, qpc=qpc).run())

    line = tput(1024, None)
    small, large = tput(1024, 256), tput(1024, 4096)
    assert line > Gbps(75)
    assert small < 0.6 * line
    assert large > 0.9 * line
    assert tput(16, 256) > 0.98 * tput(16, None)


def test_waiting_packets_are_processed_in_order_and_exactly_once():
    """Receivers with one cache entry for two QPs each, one fetch at a time, 10 us per fetch:
    packets pile up behind their QP's context, several per QP. Processed in arrival order, go-back-N receivers see no gap (no NAK, nothing out of
    order, no retransmission); exactly once: every byte placed, every message complete; and
    packet conservation holds at every tick while packets are waiting (they count in flight)."""
    sc = many_qps(8, peers=4, size=KB(64), msgs=2,
                  qpc={"entries": 1, "fetch_latency_ps": us(10), "max_outstanding": 1, "hosts": [1, 2, 3, 4]})
    net = sc.build()
    sim = net.sim
    waiting_seen = 0
    while sim.msgs_completed < len(net.flows):
        stop = sim.run_until(sim.now + us(2))
        c = sim.counters()
        waiting = sim.data_in_flight()
        assert c["data_sent"] == c["data_delivered"] + c["data_dropped"] + waiting
        waiting_seen = max(waiting_seen, int(sum(c2["pkts_parked"] for c2 in sim.qpc_hosts)))
        assert stop != dp.STOP_IDLE or sim.msgs_completed == len(net.flows)
    qh = sim.qpc_hosts
    assert qh["pkts_parked"].sum() > 100 and qh["pending"].sum() > 50
    c = sim.counters()
    assert c["nak_sent"] == 0 and c["retransmitted"] == 0 and c["timeouts"] == 0
    q = sim.qps
    snd = np.unique(net.qps)
    assert (q["rx_ooo"] == 0).all() and (q["rx_dup"] == 0).all()
    assert np.array_equal(q["rx_bytes"][snd + 1], q["posted_bytes"][snd])
    assert (q["acked_bytes"][snd] == q["posted_bytes"][snd]).all()
    assert c["data_sent"] == c["data_delivered"] and sim.data_in_flight() == 0
    assert (qh["queued"] == 0).all() and (qh["outstanding"] == 0).all()


@pytest.mark.parametrize("transport", ["gbn", "sr", "ooo"])
def test_exactly_once_with_loss_and_each_transport(transport):
    """Random loss, retransmissions and timeouts on top of a thrashing cache: still every byte
    placed once and every message complete, for go-back-N, selective repeat and ooo."""
    r = many_qps(32, peers=4, size=KB(32), msgs=2, transport=transport, link_loss=0.01, rto_ps=us(200),
                 qpc={"entries": 4, "fetch_latency_ps": us(2), "max_outstanding": 2}).run()
    assert r.counters["random_drops"] > 0 and r.counters["qpc_evictions"] > 100
    assert_conserved(r)
    q = r.network.sim.qps
    snd = np.unique(r.network.qps)
    assert np.array_equal(q["rx_bytes"][snd + 1], q["posted_bytes"][snd])


def test_trace_is_bounded_and_counts_what_it_could_not_keep():
    r = many_qps(32, qpc={"entries": 8, "max_outstanding": 4, "trace": 50}).run()
    trace, dropped = r.network.sim.qpc_trace
    c = r.counters
    events = c["qpc_hits"] + c["qpc_misses"] + c["qpc_pending"] + c["qpc_fetches"] + c["qpc_evictions"]
    assert len(trace) == 50 and dropped == events - 50
    assert (np.diff(trace["t_ps"]) >= 0).all()


def test_cache_set_before_the_qps_grows_with_the_qp_table():
    """sd_set_qpc first, then 60 QP pairs (the QP table and the per-QP cache state grow from 2)."""
    s = dp.Simulator(num_hosts=3, num_switches=1, max_links=3, max_qps=2, max_msgs=1)
    s.add_links([0, 1, 2], [3, 3, 3], [Gbps(100)] * 3, [us(1)] * 3)
    s.install_fib([[0, 1, 2]], [0, 1, 2, 3], [1, 3, 5])
    for h in range(3):
        s.set_qpc(h, 8, us(1), 4, "random" if h == 0 else "lru")
    qps = [s.create_qp_pair(i % 3, (i + 1) % 3, 49152 + i) for i in range(60)]
    s.post_writes(qps, [KB(16)] * 60, [0] * 60)
    assert s.run_until(10**10) == dp.STOP_IDLE
    assert s.msgs_completed == 60
    qh = s.qpc_hosts
    assert qh["evictions"].sum() > 0 and (qh["used"] == 8).all()
    # the memory account follows the growth: the same simulator before any QP or message, plus at
    # least 58 more QP pairs (2 x a QP's state and record each) and 59 more messages (sd_msg each)
    fresh = dp.Simulator(num_hosts=3, num_switches=1, max_links=3, max_qps=2, max_msgs=1)
    fresh.add_links([0, 1, 2], [3, 3, 3], [Gbps(100)] * 3, [us(1)] * 3)
    fresh.install_fib([[0, 1, 2]], [0, 1, 2, 3], [1, 3, 5])
    for h in range(3):
        fresh.set_qpc(h, 8, us(1), 4, "lru")
    grown = s.memory_bytes() - fresh.memory_bytes()
    assert grown >= 2 * 58 * dp.SIZEOF_QP + 59 * dp.ffi.sizeof("sd_msg"), grown


def test_counters_and_result_keys():
    r = many_qps(32, qpc={"entries": 8, "max_outstanding": 4}).run()
    c = r.counters
    qh = r.network.sim.qpc_hosts
    assert len(qh) == 9 and (qh["entries"] == 8).all() and (qh["used"] <= 8).all()
    assert c["qpc_fetches"] == c["qpc_misses"]          # every miss was fetched by the end
    assert c["qpc_fetch_wait_ps"] >= c["qpc_fetches"] * 1_000_000
    assert 0 < c["qpc_hit_rate"] < 1
    assert c["qpc_tx_hits"] == c["data_sent"]           # a data packet leaves only with its context
    assert 0 < c["qpc_tx_waited"] <= min(c["qpc_tx_misses"], c["qpc_tx_hits"])
    assert r.config["resolved"]["qpc"]["fetch_latency_ps"] == 1_000_000


def bare_sim():
    s = dp.Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [Gbps(100)], [us(1)])
    return s


@pytest.mark.parametrize("kw,field", [
    (dict(host=5, entries=4), "host"),
    (dict(host=0, entries=4, fetch_latency_ps=-1), "fetch_latency_ps"),
    (dict(host=0, entries=4, max_outstanding=0), "max_outstanding"),
    (dict(host=0, entries=4, policy="clock"), "policy"),
    (dict(host=0, entries=-1), "entries"),
])
def test_bad_input_is_refused_by_name(kw, field):
    with pytest.raises(ValueError, match=field):
        bare_sim().set_qpc(**kw)


@pytest.mark.parametrize("args,field", [
    ((7, 4, 1000, 1, 0), "host"), ((0, 4, -5, 1, 0), "fetch_latency_ps"), ((0, 4, 1000, 0, 0), "max_outstanding"),
    ((0, 4, 1000, 1, 9), "policy")])
def test_c_checks_too(args, field):
    s = bare_sim()
    assert lib.sd_set_qpc(s._sim, *args) == lib.SD_EINVAL
    assert field in ffi.string(lib.sd_last_error(s._sim)).decode()


def test_reconfiguring_a_cache_in_use_is_refused_and_scenario_keys_are_checked():
    s = bare_sim()
    s.set_qpc(0, 4)
    qp = s.create_qp_pair(0, 1, 49152)
    s.post_writes([qp], [KB(64)], [0])
    s.run_until(us(1) // 2)                               # the first fetch is in flight
    assert s.qpc_hosts["outstanding"][0] == 1
    with pytest.raises(dp.SimError, match="in use"):
        s.set_qpc(0, 8)
    s.run_until(us(100))
    with pytest.raises(ValueError, match="unknown key"):
        many_qps(4, qpc={"entrys": 4}).build()
    with pytest.raises(ValueError, match="hosts"):
        many_qps(4, qpc={"entries": 4, "hosts": 3}).build()


def test_qp_scale_experiment_runs_small(tmp_path):
    from experiments import qp_scale
    res = qp_scale.run(tmp_path, {"qps": [16, 64], "caches": [32], "min_msgs": 512}, plots=False)
    rows = {(r["qps"], r["cache"]): r for r in res["rows"]}
    assert set(rows) == {(16, 32), (64, 32), (16, "none"), (64, "none")}
    assert (tmp_path / "qp_scale.csv").read_text().startswith("qps,cache,messages,sat_throughput_gbps")
    # 64 QPs round-robin through 32 entries: most sends miss (an ACK's miss brings a context back
    # in time for that QP's next send now and then: 51 % here); 16 QPs fit
    assert rows[64, 32]["sat_sender_send_hit_rate"] < 0.6 and rows[16, 32]["sat_sender_send_hit_rate"] > 0.9
    assert rows[64, 32]["sat_throughput_gbps"] < 0.7 * rows[64, "none"]["sat_throughput_gbps"]
    assert rows[64, 32]["load_latency_mean_us"] > rows[64, "none"]["load_latency_mean_us"] + 0.9   # >= one fetch
    assert all(r["sat_completed"] == r["messages"] == r["load_completed"] for r in res["rows"])


@pytest.mark.plots
def test_qp_scale_plot(tmp_path):
    from experiments import qp_scale
    qp_scale.run(tmp_path, {"qps": [16, 64], "caches": [32], "min_msgs": 256})
    assert (tmp_path / "qp_scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
