"""Queue disciplines (native/qdisc.c, native/qdisc_codel.c, controlplane/qdisc.py)."""
from __future__ import annotations

import math
import struct

import pytest

from controlplane.scenario import Scenario
from controlplane.units import Gbps, us
from dataplane.sim import PRIO_CTRL, PRIO_DATA, qdisc_params
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
