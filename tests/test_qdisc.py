"""Queue disciplines (native/qdisc.c, native/qdisc_codel.c, controlplane/fabric/qdisc.py)."""
from __future__ import annotations

import math
import struct

import pytest

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, us
from dataplane.sim import PRIO_CTRL, PRIO_DATA, qdisc_param_decls, qdisc_params
from tests.support import star

PKTS = 64                                  # packets each of the two incast senders writes
MTU = 4096


def incast2(packets: int = PKTS, **kw) -> Scenario:
    """Two line-rate senders (no CC) into one 100 Gb/s receiver port: the switch's egress queue to
    the receiver grows by one packet per packet time while both send, then drains."""
    return Scenario(topology=star(3), workload={"kind": "incast", "senders": 2, "size_bytes": packets * MTU},
                    cc="none", sample_interval_ps=0, monitor_ports="none", **kw)


def receiver_port(net) -> int:
    """The switch egress port towards host 0 (the incast receiver)."""
    fab = net.fabric
    return next(p for p in range(fab.num_ports) if fab.is_switch(fab.port_owner(p)) and fab.port_owner(p ^ 1) == 0)


def left_behind(j: int, n: int = 2 * PKTS) -> int:
    """Packets the j-th departure (1-based) leaves in that queue: the first packet is served as it
    arrives (its twin arrives at the same instant, behind it: 0 left); from then on two arrive per
    packet time and one leaves (j left) until the senders stop, then the queue drains (n - j)."""
    return 0 if j == 1 else min(j, n - j)


def test_registry_lists_the_providers_and_their_parameters():
    assert qdisc_params("drop_tail") == []
    assert qdisc_params("red_ecn") == ["kmin_bytes", "kmax_bytes", "pmax"]
    assert qdisc_params("codel_ecn") == ["target_ps", "interval_ps", "maxpacket_bytes"]
    assert qdisc_params("fq_codel") is None


def test_default_discipline_is_red_with_ecn_and_drop_tail_without():
    net = incast2(ecn={"kmin_bytes": 4 * MTU, "kmax_bytes": 4 * MTU, "pmax": 1.0}).build()
    port = receiver_port(net)
    assert net.sim.qdisc_of(port, PRIO_DATA) == "red_ecn"
    assert net.sim.qdisc_of(port, PRIO_CTRL) == "drop_tail"
    assert net.resolved["qdisc"] == {"kind": "red_ecn"}
    net = incast2(ecn={"kmin_bytes": 4 * MTU, "kmax_bytes": 4 * MTU, "pmax": 1.0}, qdisc={"kind": "drop_tail"}).build()
    assert net.sim.qdisc_of(receiver_port(net), PRIO_DATA) == "drop_tail"
    assert net.run().counters["ecn_marked"] == 0          # drop_tail overrides the thresholds: nothing marks


@pytest.mark.parametrize("k", [2, 4, 16])
def test_red_step_marks_every_departure_above_kmin(k):
    """kmin = kmax = k MTUs, pmax = 1: the RED formula (sd_red_probability) is 0 up to kmin and 1
    above, so exactly the departures that leave more than k*4096 bytes behind are marked; a data
    frame is 4096 B + headers, so that is >= k packets: j in [k, 2*PKTS - k], 2*PKTS - 2k + 1 of them."""
    res = incast2(ecn={"kmin_bytes": k * MTU, "kmax_bytes": k * MTU, "pmax": 1.0}).run()
    expected = sum(left_behind(j) >= k for j in range(1, 2 * PKTS + 1))
    assert expected == 2 * PKTS - 2 * k + 1
    assert res.counters["ecn_marked"] == expected
    assert res.counters["dropped"] == 0


def test_red_linear_marks_as_before_and_as_the_formula_expects():
    """kmin 8, kmax 40 MTUs, pmax 0.5 on the same queue. The count is the stored one from the
    inline RED before the provider table (commit 4980786 gives 69: same RNG stream, same draws),
    and within 4 sigma of the RED formula's expectation sum_j p(q_j) over the known queue."""
    net = incast2(ecn={"kmin_bytes": 8 * MTU, "kmax_bytes": 40 * MTU, "pmax": 0.5}).build()
    res = net.run()
    pt = net.sim.ports[receiver_port(net)]
    wire = int(pt["tx_bytes"]) // int(pt["tx_packets"])  # every data frame has the same size here
    probs = []
    for j in range(1, 2 * PKTS + 1):
        q = left_behind(j) * wire
        probs.append(0.0 if q <= 8 * MTU else 1.0 if q > 40 * MTU else 0.5 * (q - 8 * MTU) / (32 * MTU))
    mean, sd = sum(probs), math.sqrt(sum(p * (1 - p) for p in probs))
    assert res.counters["ecn_marked"] == 69
    assert abs(69 - mean) <= 4 * sd


def ce_times(path) -> list[int]:
    """Timestamps (ns) of the CE-marked IPv4 frames in a nanosecond pcap."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B23C4D
    out, off = [], 24
    while off < len(data):
        sec, nsec, incl, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16: off + 16 + incl]
        if struct.unpack_from(">H", frame, 12)[0] == 0x0800 and frame[15] & 3 == 3:
            out.append(sec * 10**9 + nsec)
        off += 16 + incl
    return out


def test_codel_marks_at_the_rfc8289_control_law_spacing(tmp_path):
    """RFC 8289 §5: once the sojourn time has stayed >= TARGET for INTERVAL the queue marks, then
    marks the first departure at or after next = previous next + INTERVAL / sqrt(count), count
    1, 2, 3, ... The capture records each departure's start time (ns), so mark k+1 lies in
    [next_k, next_k + one frame's serialization + 1 ns of timestamp rounding)."""
    target, interval = us(2), us(20)
    net = incast2(packets=512, qdisc={"kind": "codel_ecn", "target_ps": target, "interval_ps": interval}).build()
    port = receiver_port(net)
    assert net.sim.qdisc_of(port, PRIO_DATA) == "codel_ecn"
    s = net.sim.capture_open(tmp_path / "q.pcap")
    net.sim.capture_port(s, port, tx=True)
    res = net.run()
    net.sim.capture_close(s)
    marks = ce_times(tmp_path / "q.pcap")
    assert res.counters["ecn_marked"] == len(marks) > 20
    pt = net.sim.ports[port]
    ser_ns = int(pt["tx_bytes"]) // int(pt["tx_packets"]) * 8 / Gbps(100) * 1e9
    # the first mark: the queue needs >= TARGET of sojourn (target / ser packets queued) and then
    # INTERVAL more; it grows one packet per packet time from the start
    assert marks[0] >= (target + interval) / 1000
    nxt = marks[0] + interval / 1000                       # count = 1
    for k, t in enumerate(marks[1:], start=2):
        assert nxt <= t + 1 < nxt + ser_ns + 2, (k, t, nxt)
        nxt += interval / 1000 / math.sqrt(k)


def test_codel_defaults_are_the_rfc_constants():
    net = incast2(qdisc={"kind": "codel_ecn"}).build()
    assert net.resolved["qdisc"] == {"kind": "codel_ecn", "target_ps": 5_000_000_000, "interval_ps": 100_000_000_000,
                                     "maxpacket_bytes": MTU}


@pytest.mark.parametrize("qdisc, words", [
    ({"kind": "fifo"}, "qdisc.kind"),
    ({"kind": "red_ecn", "target_ps": 5}, "qdisc.target_ps"),
    ({"kind": "codel_ecn", "target_ps": -1}, "qdisc.target_ps"),
    ({"kind": "codel_ecn", "target_ps": us(10), "interval_ps": us(5)}, "qdisc.interval_ps"),
    ({"kind": "codel_ecn", "tagret_ps": us(10)}, "qdisc.tagret_ps"),
])
def test_bad_config_names_the_field(qdisc, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        incast2(qdisc=qdisc).build()


def test_bad_data_plane_parameters_are_named():
    net = incast2().build()
    port = receiver_port(net)
    with pytest.raises(ValueError, match="pmax must be in"):
        net.sim.set_qdisc(port, PRIO_DATA, "red_ecn", kmin_bytes=0, kmax_bytes=10, pmax=2.0)
    with pytest.raises(ValueError, match="interval_ps must be"):
        net.sim.set_qdisc(port, PRIO_DATA, "codel_ecn", target_ps=10, interval_ps=5, maxpacket_bytes=0)
    with pytest.raises(ValueError, match="missing: maxpacket_bytes"):
        net.sim.set_qdisc(port, PRIO_DATA, "codel_ecn", target_ps=10, interval_ps=50)
    with pytest.raises(ValueError, match="qdisc kind must be one of drop_tail, red_ecn, codel_ecn"):
        net.sim.set_qdisc(port, PRIO_DATA, "pie")


# ---------------------------------------------------------------------------- declared parameters
# Values every rule between parameters allows (kmax >= kmin, interval >= target) whatever the one
# parameter being probed takes within its own range: the probe then meets only its declaration.
LOOSE = {"drop_tail": {},
         "red_ecn": {"kmin_bytes": 0, "kmax_bytes": 10**15, "pmax": 1.0},
         "codel_ecn": {"target_ps": 1, "interval_ps": 10**15, "maxpacket_bytes": 0},
         "traffic_class": {**{f"quantum_{c}": 0 for c in range(8)}, **{f"kmin_{c}": 0 for c in range(8)},
                           **{f"kmax_{c}": 10**15 for c in range(8)}, **{f"pmax_{c}": 0.0 for c in range(8)}}}


def probes(d) -> list[float]:
    """Values at and around a declaration's bounds, 0, a fraction, and the non-finite ones."""
    out = [d.lo, d.hi, math.nextafter(d.lo, -math.inf), math.nextafter(d.hi, math.inf), d.lo - 1, d.hi + 1,
           0.0, 0.5, d.lo + 0.5, -1.0, math.nan, math.inf, -math.inf]
    return [v for v in out if not (math.isfinite(v) and abs(v) > 2**53)]


@pytest.mark.parametrize("kind", ["drop_tail", "red_ecn", "codel_ecn", "traffic_class"])
def test_the_data_plane_accepts_exactly_what_each_parameter_declares(kind):
    """sd_set_qdisc checks each value against its provider's declaration (finite; an integer for
    an integer one; in [lo, hi], or 0 where 0 means off) before the discipline's own rules: with
    the others at LOOSE, C takes a probe exactly when QdiscParam.accepts (the declaration's rule
    restated) says so, and a refusal names the discipline, the parameter, its rule and the value,
    and leaves the queue's discipline as it was."""
    net = incast2().build()
    port = receiver_port(net)
    decls = qdisc_param_decls(kind)
    assert [d.name for d in decls] == qdisc_params(kind) == list(LOOSE[kind])
    net.sim.set_qdisc(port, PRIO_DATA, kind, **LOOSE[kind])
    for d in decls:
        for v in probes(d):
            before = net.sim.qdisc_of(port, PRIO_DATA)
            if d.accepts(v):
                net.sim.set_qdisc(port, PRIO_DATA, kind, **{**LOOSE[kind], d.name: v})
                assert net.sim.qdisc_of(port, PRIO_DATA) == kind
                continue
            with pytest.raises(ValueError) as e:
                net.sim.set_qdisc(port, PRIO_DATA, kind, **{**LOOSE[kind], d.name: v})
            an = "an integer " if d.kind == "int" else ""
            assert f"qdisc {kind}: {d.name} must be {an}{d.rule}, got " in str(e.value), (d.name, v, str(e.value))
            got = str(e.value).rsplit("got ", 1)[1]          # the value itself, shortest round trip
            assert (got == "NaN") if math.isnan(v) else float(got) == v, (d.name, v, got)
            assert net.sim.qdisc_of(port, PRIO_DATA) == before


@pytest.mark.parametrize("kind, params, words", [
    # a byte count is an integer (it was truncated before the declarations)
    ("red_ecn", {"kmin_bytes": 2.5, "kmax_bytes": 10, "pmax": 0.5},
     "qdisc red_ecn: kmin_bytes must be an integer in [0, 1e15] bytes, got 2.5"),
    ("red_ecn", {"kmin_bytes": 0, "kmax_bytes": 10, "pmax": 0.0}, "qdisc red_ecn: pmax must be in (0, 1], got 0"),
    # the rule between two parameters, the provider's validate, after each one's own range
    ("red_ecn", {"kmin_bytes": 20, "kmax_bytes": 10, "pmax": 0.5}, "qdisc red_ecn: kmax_bytes must be >= kmin_bytes, got 10"),
    ("codel_ecn", {"target_ps": 1.5, "interval_ps": 10, "maxpacket_bytes": 0},
     "qdisc codel_ecn: target_ps must be an integer in [1, 1e15] ps, got 1.5"),
    ("codel_ecn", {"target_ps": 10, "interval_ps": 10, "maxpacket_bytes": 10**15 + 1},
     "qdisc codel_ecn: maxpacket_bytes must be an integer in [0, 1e15] bytes, got 1000000000000001"),
    ("codel_ecn", {"target_ps": 10, "interval_ps": math.nan, "maxpacket_bytes": 0},
     "qdisc codel_ecn: interval_ps must be an integer in [1, 1e15] ps, got NaN"),
    ("codel_ecn", {"target_ps": 10, "interval_ps": 5, "maxpacket_bytes": 0},
     "qdisc codel_ecn: interval_ps must be >= target_ps, got 5"),
    ("traffic_class", {**LOOSE["traffic_class"], "quantum_2": 100.5},
     "qdisc traffic_class: quantum_2 must be an integer in [64, 1e9] bytes or 0 (strict priority), got 100.5"),
    ("traffic_class", {**LOOSE["traffic_class"], "quantum_5": 10},
     "qdisc traffic_class: quantum_5 must be an integer in [64, 1e9] bytes or 0 (strict priority), got 10"),
    ("traffic_class", {**LOOSE["traffic_class"], "pmax_7": -0.5}, "qdisc traffic_class: pmax_7 must be in [0, 1], got -0.5"),
    ("traffic_class", {**LOOSE["traffic_class"], "kmin_4": 6, "kmax_4": 5},
     "qdisc traffic_class: kmax_4 must be >= kmin_4, got 5"),
    ("codel_ecn", {"target_ps": "5us", "interval_ps": 10, "maxpacket_bytes": 0},
     "qdisc codel_ecn: target_ps must be a number, got '5us'"),
])
def test_a_refused_parameter_is_named_with_its_rule(kind, params, words):
    """The errors' exact words: discipline, parameter, the declared rule (or the rule between
    parameters) and the value as given (native/qdisc.c param_check)."""
    net = incast2().build()
    with pytest.raises(ValueError) as e:
        net.sim.set_qdisc(receiver_port(net), PRIO_DATA, kind, **params)
    assert str(e.value).endswith(words), str(e.value)


# ---------------------------------------------------------------------------- traffic classes
def tc_net(flows, qdisc, hosts: int = 4):
    return Scenario(topology=star(hosts), workload={"kind": "flows", "flows": flows}, cc="none", buffer_bytes=16 * 2**20,
                    sample_interval_ps=0, monitor_ports="none", qdisc=qdisc).build()


def frames(path) -> list[tuple[int, int, int]]:
    """(time ns, DSCP, wire length) of each IPv4 frame in a nanosecond pcap."""
    data, out, off = path.read_bytes(), [], 24
    while off < len(data):
        sec, nsec, incl, orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16: off + 16 + incl]
        out.append((sec * 10**9 + nsec, frame[15] >> 2, orig))
        off += 16 + incl
    return out


def high_fct_us(qdisc, low: bool) -> float:
    """A 4-packet flow of DSCP 40 (class 5) from host 3, posted at 30 us, with or without two
    line-rate 1 MB flows of DSCP 8 (class 1) from hosts 1 and 2 that keep the queue to host 0
    growing by one packet per packet time."""
    flows = [{"src": 3, "dst": 0, "size_bytes": 4 * MTU, "start_ps": us(30), "dscp": 40}]
    if low:
        flows += [{"src": s, "dst": 0, "size_bytes": 2**20, "dscp": 8} for s in (1, 2)]
    res = tc_net(flows, qdisc).run()
    return (int(res.flows["finish_ps"][0]) - us(30)) / 1e6


def test_strict_priority_class_ignores_a_saturating_lower_class():
    """With class 5 strict, each of its packets waits at the switch for at most the lower-class
    frame in service: the flow completes within one MTU frame's serialization (4096 B + headers,
    < 4300 B at 100 Gb/s = 344 ns) of its time alone, plus two ACK frames (< 128 B each) the
    receiver's NIC may be sending for the other flows. Under the default FIFO it queues behind
    the growing backlog (tens of us)."""
    tc = {"kind": "traffic_class", "classes": {"5": {"sched": "strict"}}}
    alone, loaded = high_fct_us(tc, low=False), high_fct_us(tc, low=True)
    bound_us = (4300 + 2 * 128) * 8 / Gbps(100) * 1e6
    assert alone <= loaded <= alone + bound_us
    assert high_fct_us(None, low=True) > alone + 20 * bound_us       # the same load without classes


def test_dwrr_shares_by_quanta(tmp_path):
    """Classes 1 and 2 (DSCP 8, 16), both backlogged from the start, quanta 5000 and 15000 B: DRR
    (Shreedhar & Varghese 1995) gives class 1 a quarter of the bytes while class 2 is backlogged;
    in any interval the deviation from the ideal split is below one round's quanta plus a frame
    per class, which sets the tolerance relative to the bytes in the window."""
    q = 5000
    net = tc_net([{"src": 1, "dst": 0, "size_bytes": 2**21, "dscp": 8}, {"src": 2, "dst": 0, "size_bytes": 2**21, "dscp": 16}],
                 {"kind": "traffic_class", "classes": {"1": {"quantum_bytes": q}, "2": {"quantum_bytes": 3 * q}}}, hosts=3)
    port = receiver_port(net)
    s = net.sim.capture_open(tmp_path / "d.pcap")
    net.sim.capture_port(s, port, tx=True)
    res = net.run()
    net.sim.capture_close(s)
    assert res.counters["dropped"] == 0
    fr = frames(tmp_path / "d.pcap")
    end = max(t for t, d, _ in fr if d == 16)                        # class 2's last departure
    b1 = sum(n for t, d, n in fr if d == 8 and t <= end)
    b2 = sum(n for t, d, n in fr if d == 16 and t <= end)
    tol = (q + 3 * q + 2 * 4300) / (b1 + b2)
    assert abs(b1 / (b1 + b2) - 0.25) <= tol, (b1, b2, tol)
    assert tol < 0.015                                               # the window is long enough to mean something


@pytest.mark.parametrize("dscp_map, expect", [(None, {1, 2}), ({"8": 5, "16": 0}, {5, 0})])
def test_dscp_selects_the_class(dscp_map, expect):
    """Default class = DSCP >> 3 (8 -> 1, 16 -> 2); dscp_map overrides it. Mid-run the backlog
    sits in exactly the mapped classes of the port towards the receiver."""
    q = {"kind": "traffic_class", **({"dscp_map": dscp_map} if dscp_map else {})}
    net = tc_net([{"src": 1, "dst": 0, "size_bytes": 2**20, "dscp": 8}, {"src": 2, "dst": 0, "size_bytes": 2**20, "dscp": 16}],
                 q, hosts=3)
    net.sim.run_until(us(20))
    by_class = net.sim.tc_class_bytes(receiver_port(net))
    assert {c for c in range(8) if by_class[c] > 0} == expect
    assert int(by_class.sum()) == int(net.sim.ports[receiver_port(net)]["q_bytes"][PRIO_DATA])


def test_traffic_class_defaults_keep_cnps_strict_and_the_runs_ecn():
    net = incast2(ecn={"kmin_bytes": 4 * MTU, "kmax_bytes": 4 * MTU, "pmax": 1.0}, qdisc={"kind": "traffic_class"}).build()
    r = net.resolved["qdisc"]
    assert r["dscp_map"][26] == 3 and r["dscp_map"][48] == 6        # RoCE data AF31, CNP CS6
    assert [c["sched"] for c in r["classes"]] == ["dwrr"] * 6 + ["strict"] * 2
    assert net.sim.qdisc_of(receiver_port(net), PRIO_DATA) == "traffic_class"
    # the class's ECN thresholds are the run's: the step RED count of the FIFO test above
    assert net.run().counters["ecn_marked"] == 2 * PKTS - 2 * 4 + 1


@pytest.mark.parametrize("qdisc, words", [
    ({"kind": "traffic_class", "dscp_map": {"64": 1}}, "qdisc.dscp_map"),
    ({"kind": "traffic_class", "dscp_map": {"8": 9}}, "qdisc.dscp_map.8"),
    ({"kind": "traffic_class", "classes": {"8": {}}}, "qdisc.classes"),
    ({"kind": "traffic_class", "classes": {"3": {"quantum_bytes": 10}}}, "qdisc.classes.3.quantum_bytes"),
    ({"kind": "traffic_class", "classes": {"3": {"sched": "wfq"}}}, "qdisc.classes.3.sched"),
    ({"kind": "traffic_class", "classes": {"6": {"quantum_bytes": 9000}}}, "qdisc.classes.6.quantum_bytes"),
    ({"kind": "traffic_class", "classes": {"2": {"ecn": {"kmin_bytes": 10}}}}, "qdisc.classes.2.ecn.kmax_bytes"),
    ({"kind": "red_ecn", "classes": {}}, "qdisc.classes"),
])
def test_bad_traffic_class_config_names_the_field(qdisc, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        incast2(ecn={"kmin_bytes": 1, "kmax_bytes": 2, "pmax": 0.1}, qdisc=qdisc).build()


def test_traffic_class_ports_stay_lossless_under_pfc():
    """PFC pauses the data priority of a traffic_class port: a class whose head is a data packet
    waits, nothing is dropped, every message completes and packets are conserved."""
    sc = Scenario(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 2**20}, cc="none",
                  pfc=True, pfc_params={"buffer_bytes": 2**20}, sample_interval_ps=0, monitor_ports="none",
                  qdisc={"kind": "traffic_class"})
    c = sc.run().counters
    assert c["pfc_pauses"] > 0 and c["dropped"] == 0 and c["conservation_ok"] == 1
    assert c["msgs_completed"] == c["msgs_total"] == 4


def test_a_port_device_sets_its_discipline():
    net = incast2().build()
    port = net.port(receiver_port(net))
    assert port.qdisc == "drop_tail"
    port.set_qdisc(PRIO_DATA, "codel_ecn", target_ps=us(1), interval_ps=us(10), maxpacket_bytes=MTU)
    assert port.qdisc == "codel_ecn"
    assert net.run().counters["ecn_marked"] > 0
