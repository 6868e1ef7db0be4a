"""NIC interoperability (issue #16, part 4): NIC profiles per host, the negotiation rule table of
docs/interop.md (one test per rule: the negotiated per-pair settings, and for the important rules
the behaviour in a small run), the per-QP NIC settings of the data plane (sd_set_qp_nic) and
that a scenario without profiles runs exactly as before."""
import math

import numpy as np
import pytest

from controlplane.run.scenario import Scenario
from controlplane.transport.nic_profile import BUILTIN, NicProfile, NicProfiles, assign, negotiate
from dataplane.sim import SimError
from tests.support import assert_conserved, star

CC_KIND = {"none": 0, "dcqcn": 1, "dctcp": 3, "hpcc": 5, "nscc": 7}     # enum sd_cc_kind (native/softdpu.h)
MODE = {"gbn": 0, "sr": 1, "ooo": 2}                                     # enum sd_transport
NP = {"interval": 0, "ack_echo": 1, "none": 2}                           # enum sd_cnp_mode


def P(**kw) -> NicProfile:
    return NicProfile(**kw)


GBN = dict(transports=["gbn"])
SR = dict(transports=["sr", "gbn"], sack=True)
OOO = dict(transports=["ooo", "sr", "gbn"], sack=True)
OOO_ONLY = dict(transports=["ooo", "gbn"], sack=True)


# ------------------------------------------------------------------ the rule table, negotiated settings
@pytest.mark.parametrize("snd,rcv,expect", [
    (SR, GBN, "gbn"),            # R1: an sr sender facing a gbn-only receiver falls back to go-back-N
    (OOO, GBN, "gbn"),
    (OOO, SR, "sr"),             # ooo needs both ends; else sr if both support it
    (OOO_ONLY, SR, "gbn"),       # ... else gbn
    (OOO, OOO, "ooo"),
    (SR, OOO, "sr"),             # the sender's preference: it never runs what it does not list first
    (dict(transports=["gbn", "sr"], sack=True), SR, "gbn"),
])
def test_rule_transport_is_the_senders_most_preferred_one_the_receiver_supports(snd, rcv, expect):
    assert negotiate(P(**snd), P(**rcv)).transport == expect


def test_rule_path_mtu_is_the_smaller_one():
    a, b = P(mtu_payload=4096), P(mtu_payload=1024)
    assert negotiate(a, b).mtu_payload == negotiate(b, a).mtu_payload == 1024


def test_rule_ack_coalescing_is_the_receivers():
    assert negotiate(P(ack_interval=1), P(ack_interval=8)).ack_interval == 8
    assert negotiate(P(ack_interval=8), P(ack_interval=1)).ack_interval == 1


@pytest.mark.parametrize("np_mode,react,mode,reacts", [
    ("interval", ["interval"], "interval", True),
    ("ack_echo", ["interval", "ack_echo"], "ack_echo", True),
    # the receiver echoes ECN on ACKs, the sender reads only CNP packets: no feedback
    ("ack_echo", ["interval"], "none", False),
    # the receiver sends CNP packets, the sender does not react to them: they cross the fabric unused
    ("interval", ["ack_echo"], "interval", False),
    ("none", ["interval", "ack_echo"], "none", False),
    ("interval", [], "interval", False),
])
def test_rule_cnp_feedback_counts_only_when_the_senders_rp_reacts_to_the_receivers_np(np_mode, react, mode, reacts):
    s = negotiate(P(cnp_react=react), P(cnp_mode=np_mode))
    assert (s.cnp_mode, s.cnp_reacts) == (mode, reacts)


def test_rule_cnp_interval_is_the_receivers():
    assert negotiate(P(cnp_interval_ps="50us"), P(cnp_interval_ps="4us")).cnp_interval_ps == 4_000_000
    assert negotiate(P(cnp_interval_ps="4us"), P()).cnp_interval_ps is None        # the simulator-wide one


def test_rule_each_sender_runs_its_own_cc_with_its_own_parameters():
    a = P(cc="dcqcn", cc_params={"flavour": "paper"})
    b = P(cc="dctcp", cc_params={"g": 0.125})
    assert (negotiate(a, b).cc, negotiate(a, b).cc_params) == ("dcqcn", {"flavour": "paper"})
    assert (negotiate(b, a).cc, negotiate(b, a).cc_params) == ("dctcp", {"g": 0.125})


def test_rule_hpcc_without_int_echo_runs_the_senders_fallback_cc():
    hpcc = P(cc="hpcc", cc_fallback="dcqcn", int_echo=True)
    assert negotiate(hpcc, P(int_echo=True)).cc == "hpcc"
    s = negotiate(hpcc, P(int_echo=False))
    assert s.cc == "dcqcn" and any("no INT echo" in r for r in s.rules)
    # without a fallback HPCC would run blind (its twin ignores ACKs without INT): refused, named
    with pytest.raises(ValueError, match="int_echo=false.*cc_fallback"):
        negotiate(P(cc="hpcc"), P(int_echo=False))


def test_rule_timers_are_the_senders_and_rto_low_only_for_sr_and_ooo():
    snd = P(**SR, rto_ps=320_000_000, rto_low_ps=100_000_000, rto_low_pkts=3)
    s = negotiate(snd, P(**SR, rto_ps=2_000_000_000))
    assert (s.rto_ps, s.rto_low_ps, s.rto_low_pkts) == (320_000_000, 100_000_000, 3)
    assert negotiate(snd, P(**GBN)).rto_low_ps == 0            # go-back-N has one timer


def test_rule_reorder_window_is_the_smaller_one():
    assert negotiate(P(**SR, reorder_window=4096), P(**SR, reorder_window=256)).reorder_window == 256


def test_builtin_profiles_negotiate_as_the_table_says():
    old, sr, irn, uec = (BUILTIN[n] for n in ("cx4_gbn_dcqcn", "cx6_sr_dcqcn", "irn_sr_hpcc", "uec_ooo_nscc"))
    s = negotiate(irn, old)
    assert (s.transport, s.mtu_payload, s.cc, s.cnp_mode, s.cnp_reacts) == ("gbn", 1024, "dcqcn", "interval", True)
    s = negotiate(old, irn)                # the old NIC does not read the ECN echo on ACKs
    assert (s.transport, s.cc, s.cnp_mode, s.cnp_reacts) == ("gbn", "dcqcn", "none", False)
    s = negotiate(uec, sr)
    assert (s.transport, s.cc, s.cnp_mode, s.cnp_reacts) == ("sr", "nscc", "interval", False)
    assert negotiate(uec, uec).transport == "ooo" and negotiate(irn, irn).cc == "hpcc"


@pytest.mark.parametrize("kw,words", [
    (dict(transports=["sr", "gbn"]), "needs sack"),
    (dict(transports=["ooo", "gbn"], sack=False), "needs sack"),
    (dict(transports=["sr"], sack=True), "must include 'gbn'"),
    (dict(transports=["sr", "gbn"], sack=True, nack=False), "needs nack"),
    (dict(transports=["irn"]), "distinct transports"),
    (dict(cnp_mode="becn"), "cnp_mode"),
    (dict(cnp_react=["none"]), "cnp_react"),
    (dict(mtu_payload=10_000), "mtu_payload"),
    (dict(reorder_window=100), "power of 2"),
])
def test_inconsistent_profiles_are_refused_with_the_reason(kw, words):
    with pytest.raises(ValueError, match=words):
        P(**kw)


def test_assignment_hosts_then_shares_by_seed_then_default():
    spec = NicProfiles(default="cx4_gbn_dcqcn", hosts={0: "irn_sr_hpcc"}, shares={"uec_ooo_nscc": 0.5})
    a = assign(spec, 9, seed=1)
    assert a[0] == "irn_sr_hpcc"
    assert a.count("uec_ooo_nscc") == 4 and a.count("cx4_gbn_dcqcn") == 4      # round(0.5 x 8 other hosts)
    assert a == assign(spec, 9, seed=1)                                      # one seed, one assignment
    assert any(assign(spec, 9, seed=s) != a for s in range(2, 6))


@pytest.mark.parametrize("given,words", [
    ({"default": "cx9"}, "unknown profile 'cx9'"),
    ({"hosts": {7: "cx4_gbn_dcqcn"}}, "7 is not a host"),
    ({"shares": {"cx4_gbn_dcqcn": 0.7, "irn_sr_hpcc": 0.7}}, "add up to 1.4"),
    ({"profiles": {"cx4_gbn_dcqcn": {}}}, "built-in"),
    ({"profiles": {"mine": {"transports": ["sr", "gbn"]}}}, "needs sack"),
    ({"bogus": 1}, "bogus"),
    ({"default": "h", "hosts": {0: "cx4_gbn_dcqcn"}, "profiles": {"h": {"cc": "hpcc"}}},
     "a pair from h to cx4_gbn_dcqcn: a hpcc sender needs INT"),
])
def test_a_bad_nic_profiles_section_is_refused_naming_it(given, words):
    with pytest.raises(ValueError, match=words):
        Scenario(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": 10_000},
                 nic_profiles=given, sample_interval_ps=0).build()


# ------------------------------------------------------------------ the data plane's per-QP settings
def _incast(n=4, size=400_000, **kw):
    return Scenario(topology=star(n + 1), workload={"kind": "incast", "senders": n, "size_bytes": size},
                    sample_interval_ps=0, **kw)


def test_without_profiles_and_with_the_scenario_profile_the_run_is_identical():
    """``nic_profiles: {}`` puts every host on the "scenario" profile: every setting negotiates
    to the scenario's own, so flows and counters are those of a run without the section (whose
    QPs keep the simulator-wide settings: their records show them)."""
    for kw in (dict(), dict(transport="sr", cc="dctcp", ack_interval=2), dict(cc="hpcc", mtu_payload=1024),
               dict(cc="swift", cc_impl="python")):
        a, b = _incast(**kw).run(), _incast(nic_profiles={}, **kw).run()
        for k in ("fct_ps", "finish_ps", "ideal_fct_ps"):
            assert np.array_equal(a.flows[k], b.flows[k]), (kw, k)
        assert a.counters == b.counters
        q = a.network.sim.qps[: 2 * len(a.network.flows)]
        sc = a.network.scenario
        assert (q["mtu_payload"] == sc.mtu_payload).all() and (q["ack_interval"] == sc.ack_interval).all()
        assert (q["rto_ps"] == sc.rto_ps).all() and (q["cnp_mode"] == NP[a.network.resolved["cnp_mode"]]).all()
        assert (q["cnp_interval_ps"] == a.network.resolved["cnp_interval_ps"]).all()


def _pair(snd: dict, rcv: dict, size=2_000_000, **kw):
    """One flow host 1 -> host 0, host 1 with profile snd, host 0 with rcv."""
    return Scenario(topology=star(2), workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": size}]},
                    sample_interval_ps=0, nic_profiles={"default": "rcv", "hosts": {1: "snd"},
                                                       "profiles": {"snd": snd, "rcv": rcv}}, **kw)


def test_data_plane_gets_the_negotiated_settings_per_end():
    net = _pair({**SR, "cc": "dctcp", "mtu_payload": 4096, "ack_interval": 2, "rto_ps": "300us", "cnp_mode": "ack_echo"},
                {**GBN, "cc": "dcqcn", "mtu_payload": 2048, "ack_interval": 4, "rto_ps": "2ms",
                 "cnp_react": ["interval"]}).build()
    q = net.sim.qps
    s, r = q[0], q[1]
    assert s["mode"] == r["mode"] == MODE["gbn"]
    assert s["mtu_payload"] == r["mtu_payload"] == 2048
    assert r["ack_interval"] == 4 and s["ack_interval"] == 2       # each end ACKs what it receives
    assert s["rto_ps"] == 300_000_000 and r["rto_ps"] == 2_000_000_000
    assert s["cc_kind"] == CC_KIND["dctcp"]
    # as receiver of the reverse direction the dctcp end echoes on ACKs, which a dcqcn RP reading
    # only CNP packets ignores: none
    assert r["cnp_mode"] == NP["interval"] and s["cnp_mode"] == NP["none"]


def test_per_qp_mtu_sets_packet_count_payload_and_ideal_fct():
    """A 1024-byte path MTU (the receiver's) splits 100 kB into ceil(100000 / 1024) = 98 packets;
    alone on the fabric the message's FCT is its ideal FCT computed with that MTU (slowdown 1)."""
    size = 100_000
    r = _pair({**GBN, "cc": "none", "mtu_payload": 4096}, {**GBN, "cc": "none", "mtu_payload": 1024}, size=size).run()
    assert_conserved(r)
    s, rc = r.network.sim.qps[0], r.network.sim.qps[1]
    assert s["sent_packets"] == math.ceil(size / 1024) and rc["rx_bytes"] == size
    assert r.flows["fct_ps"][0] == r.flows["ideal_fct_ps"][0]
    r4 = _pair({**GBN, "cc": "none"}, {**GBN, "cc": "none"}, size=size).run()
    assert r4.network.sim.qps[0]["sent_packets"] == math.ceil(size / 4096)
    assert r4.flows["fct_ps"][0] == r4.flows["ideal_fct_ps"][0] < r.flows["ideal_fct_ps"][0]


def test_ack_coalescing_of_the_receiver_sets_the_ack_count():
    """Receiver ACKs every 4th packet and the message's last (AckReq): 200 packets -> 50 ACKs;
    a sender ACKing every packet changes nothing (no reverse data)."""
    size = 200 * 4096
    r = _pair({**GBN, "cc": "none", "ack_interval": 1}, {**GBN, "cc": "none", "ack_interval": 4}, size=size).run()
    assert r.counters["ctrl_sent"] == 50 and r.counters["data_dropped"] == 0


def _lossy_pair(snd, rcv, seed):
    net = _pair({**snd, "cc": "none"}, {**rcv, "cc": "none"}, size=4_000_000, seed=seed).build()
    hp = net.routes.host_port
    for port in (int(hp[1]), int(hp[0]) ^ 1):         # the data direction: sender NIC, switch -> receiver
        net.sim.set_port_loss(port, 0.01)
    r = net.run()
    assert_conserved(r)
    return r


@pytest.mark.parametrize("seed", [1, 2])
def test_sr_sender_to_gbn_receiver_really_goes_back_n_under_loss(seed):
    """Selective repeat resends exactly the lost packets (retransmitted == data_dropped,
    tests/test_loss_recovery.py); facing a gbn-only receiver the same sender rewinds to each hole
    and resends what had arrived too (retransmitted > dropped), and the receiver discards the
    packets beyond a gap (rx_ooo > 0) instead of holding them."""
    sr = _lossy_pair(SR, SR, seed)
    c = sr.counters
    assert sr.network.sim.qps[0]["mode"] == MODE["sr"] and c["retransmitted"] == c["data_dropped"] > 0
    fb = _lossy_pair(SR, GBN, seed)
    c, q = fb.counters, fb.network.sim.qps
    assert q[0]["mode"] == q[1]["mode"] == MODE["gbn"]
    assert c["data_dropped"] > 0 and c["retransmitted"] > 2 * c["data_dropped"]
    assert q[1]["naks_tx"] > 0 and q[1]["rx_ooo"] > 0 and q[1]["ooo_held"] == 0


def test_rule_nak_is_the_receivers():
    """R9: a go-back-N receiver without NAK support stays silent at a gap; sr needs NAKs at both
    ends (R1 already keeps an sr sender on go-back-N against such a receiver)."""
    s = negotiate(P(**GBN), P(**GBN, nack=False))
    assert not s.nak and "no NAK" in " ".join(s.rules)
    assert negotiate(P(**GBN, nack=False), P(**GBN)).nak
    s = negotiate(P(**SR), P(**GBN, nack=False))
    assert s.transport == "gbn" and not s.nak


@pytest.mark.parametrize("seed", [1, 2])
def test_a_gbn_receiver_without_naks_leaves_recovery_to_the_timeout(seed):
    """The same lossy transfer to a NAK-less go-back-N receiver: no NAK is sent, every loss waits
    for the sender's timeout (1 ms here) and then goes back N, so there are timeouts where the
    NAKing receiver has none, and the transfer takes longer; every byte still arrives."""
    nak = _lossy_pair(GBN, GBN, seed)
    silent = _lossy_pair(GBN, {**GBN, "nack": False}, seed)
    q0, q1 = nak.network.sim.qps, silent.network.sim.qps
    assert q0[1]["naks_tx"] > 0 and q1[1]["naks_tx"] == 0 and q1[1]["nak_off"] == 1 and q0[1]["nak_off"] == 0
    assert q1[0]["timeouts"] > q0[0]["timeouts"] and q1[1]["rx_ooo"] > 0
    assert int(q1[1]["rx_bytes"]) == 4_000_000
    assert silent.flows["fct_ps"][0] > nak.flows["fct_ps"][0]


def _dcqcn_incast(np_mode, react, n=8):
    """An 8-to-1 incast of DCQCN senders (the nvidia flavour: CNPs every 4 us) whose RP reacts
    to ``react``, into a receiver whose NP is ``np_mode``; 100 Gb/s everywhere."""
    old = {**GBN, "cc": "dcqcn", "cc_params": {"flavour": "nvidia"}, "cnp_react": react}
    rcv = {**GBN, "cc": "dcqcn", "cnp_mode": np_mode}
    sc = Scenario(topology=star(n + 1), workload={"kind": "incast", "senders": n, "size_bytes": 2_000_000},
                  cc="dcqcn", sample_interval_ps=2_000_000,
                  nic_profiles={"default": "old", "hosts": {0: "rcv"}, "profiles": {"old": old, "rcv": rcv}})
    r = sc.run()
    assert_conserved(r)
    return r


def test_cnp_mismatch_gives_no_rate_cut_under_an_incast():
    """Matching NP/RP: DCQCN cuts the senders' rates (the smallest sampled rate is far below the
    100 Gb/s line rate). An NP echoing ECN on ACKs to senders that read only CNP packets, and an
    NP sending CNP packets to senders that react only to ACK echo, both leave every sender at line
    rate for the whole incast: no rate reduction (the CNP packets of the second case still cross
    the fabric and arrive)."""
    line = 100e9                  # rates are sampled while a QP is active (NaN once it is done)
    ok = _dcqcn_incast("interval", ["interval"])
    assert ok.counters["cnp_sent"] > 0 and np.nanmin(ok.timeseries["qp_rate_bps"]) < 0.5 * line
    echo = _dcqcn_incast("ack_echo", ["interval"])
    assert echo.counters["cnp_sent"] == 0 and np.nanmin(echo.timeseries["qp_rate_bps"]) == line
    ignored = _dcqcn_incast("interval", ["ack_echo"])
    assert ignored.counters["cnp_sent"] > 0 and ignored.counters["cnps_rx"] == ignored.counters["cnp_sent"]
    assert np.nanmin(ignored.timeseries["qp_rate_bps"]) == line


def test_hpcc_sender_to_a_receiver_without_int_echo_runs_its_fallback_in_the_data_plane():
    net = Scenario(topology=star(3), workload={"kind": "flows", "flows": [
        {"src": 1, "dst": 0, "size_bytes": 100_000}, {"src": 1, "dst": 2, "size_bytes": 100_000}]},
        sample_interval_ps=0, nic_profiles={"default": "irn_sr_hpcc", "hosts": {0: "cx6_sr_dcqcn"}}).build()
    q = net.sim.qps
    assert q[0]["cc_kind"] == CC_KIND["dcqcn"] and q[2]["cc_kind"] == CC_KIND["hpcc"]
    assert net.resolved["int_multi"] >= 1          # INT is stamped: some pair runs HPCC
    assert net.resolved["nic_profiles"]["hosts"] == ["cx6_sr_dcqcn", "irn_sr_hpcc", "irn_sr_hpcc"]


def test_set_qp_nic_refuses_bad_values_with_a_python_exception():
    net = _incast(n=2, size=10_000).build()
    sim = net.sim
    qp = sim.create_qp_pair(1, 0, 50000)                      # not posted yet
    with pytest.raises(ValueError, match=r"mtu_payload must be in \[64, 9000\]"):
        sim.set_qp_nic(qp, mtu_payload=9001)                   # the data plane's own check
    with pytest.raises(ValueError, match="mtu_payload must be an integer >= 64"):
        sim.set_qp_nic(qp, mtu_payload=10)
    with pytest.raises(ValueError, match="cnp_mode"):
        sim.set_qp_nic(qp, cnp_mode="becn")
    with pytest.raises(ValueError, match="ack_interval"):
        sim.set_qp_nic(qp, ack_interval=0)
    with pytest.raises(ValueError, match="qp 999 does not exist"):
        sim.set_qp_nic(999, mtu_payload=1024)
    with pytest.raises(SimError, match="already has posted messages"):
        sim.set_qp_nic(int(net.sender_qps[0]), mtu_payload=1024)
    with pytest.raises(ValueError, match="cnp_interval_ps must be an integer >= 0"):
        sim.set_qp_nic(qp, cnp_interval_ps=-5)
    sim.set_qp_nic(qp, mtu_payload=1024, ack_interval=3, cnp_mode="none", cnp_interval_ps=0, rto_ps=5_000_000)
    assert [int(sim.qps[qp][k]) for k in ("mtu_payload", "ack_interval", "cnp_mode", "cnp_interval_ps", "rto_ps")] == \
        [1024, 3, 2, 0, 5_000_000]
    sim.set_qp_nic(qp)                                          # None: the simulator's values again
    assert int(sim.qps[qp]["mtu_payload"]) == net.scenario.mtu_payload and int(sim.qps[qp]["cnp_mode"]) == 0


def test_interop_experiment_tables_classify_pairs_and_show_the_cnp_mismatch(tmp_path):
    """The experiment's mixed fabric: each flow lands in the class of its ends' generations, the
    classes add up to the fabric, and old senders facing new receivers (whose ECN echo on ACKs
    the old RP does not read: rule R4) never see a rate cut: their NICs count no CNP received."""
    from experiments import interop
    out = interop.run(tmp_path, params={"senders": 8, "size_bytes": 1_000_000, "fabrics": ["mixed"],
                                        "mixed_ccs": ["dcqcn+hpcc"], "pair_bytes": 1_000_000}, plots=False)
    rows = {r["class"]: r for r in out["fabric"]}
    assert sum(r["flows"] for c, r in rows.items() if c != "all") == rows["all"]["flows"] == 8
    assert (tmp_path / "interop.csv").exists() and (tmp_path / "interop_mixed_cc.csv").exists()
    import json
    cfg = json.loads((tmp_path / "mixed" / "config.json").read_text())
    hosts = cfg["resolved"]["nic_profiles"]["hosts"]
    assert hosts.count("cx4_gbn_dcqcn") == 8                    # round(0.5 x 16 hosts), drawn by the seed
    pair = cfg["resolved"]["nic_profiles"]["pairs"]["cx4_gbn_dcqcn->irn_sr_hpcc"]
    assert (pair["transport"], pair["mtu_payload"], pair["cnp_mode"], pair["cnp_reacts"]) == ("gbn", 1024, "none", False)
    shares = [r["share_while_both"] for r in out["mixed_cc"]]
    assert abs(sum(shares) - 1) < 1e-3                           # the two algorithms' shares of one bottleneck


def test_cnp_interval_of_the_receiver_limits_its_cnps(tmp_path):
    """The receiver's CNP gap (rule R4) is the receiver profile's, not the scenario-wide 50 us
    (the paper flavour's): on the wire, consecutive CNPs of one QP are at least the receiver's
    4 us apart (less 7 ns of ACK serialization jitter, as tests/test_cnp.py derives) and some are
    closer than 50 us, which the scenario-wide interval would forbid."""
    from controlplane.results.capture import CaptureSpec
    from dataplane.pcap import OP_CNP, read_pcap
    old = {**GBN, "cc": "dcqcn", "cc_params": {"flavour": "nvidia"}}
    rcv = {**GBN, "cc": "dcqcn", "cnp_interval_ps": "4us"}
    sc = Scenario(topology=star(9), workload={"kind": "incast", "senders": 8, "size_bytes": 2_000_000},
                  cc="dcqcn", cc_params={"flavour": "paper"}, sample_interval_ps=0,
                  nic_profiles={"default": "old", "hosts": {0: "rcv"}, "profiles": {"old": old, "rcv": rcv}})
    path = tmp_path / "incast.pcap"
    r = sc.run(capture=CaptureSpec(path=str(path), points=["hosts"], direction="tx"))
    assert r.network.resolved["cnp_interval_ps"] == 50_000_000
    assert int(r.network.sim.qps[1]["cnp_interval_ps"]) == 4_000_000
    rec = read_pcap(path).records
    cnp = rec[rec["opcode"] == OP_CNP]
    gaps = np.concatenate([np.diff(cnp["t_ns"][cnp["dqp"] == q]) for q in np.unique(cnp["dqp"])])
    assert len(gaps) > 0 and gaps.min() >= 4_000 - 7 and (gaps < 50_000).any(), (gaps.min(), len(gaps))


def test_config_json_of_a_profiled_run_reruns_identically(tmp_path):
    """config.json records nic_profiles as given (named profiles as dicts, host ids as keys):
    Scenario.from_dict of it runs the same flows."""
    import json
    sc = _pair({**SR, "cc": "dctcp", "mtu_payload": 2048}, {**GBN, "cc": "dcqcn"}, size=300_000)
    a = sc.run(tmp_path / "a")
    d = json.loads((tmp_path / "a" / "config.json").read_text())
    assert d["nic_profiles"]["profiles"]["snd"]["mtu_payload"] == 2048 and d["nic_profiles"]["hosts"] == {"1": "snd"}
    b = Scenario.from_dict({k: v for k, v in d.items() if k != "resolved"}).run()
    assert np.array_equal(a.flows["fct_ps"], b.flows["fct_ps"]) and a.counters == b.counters
