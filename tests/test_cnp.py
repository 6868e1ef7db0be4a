"""The DCQCN notification point on the wire: what a capture of an incast shows.

Default DCQCN (both flavours): the receiver NIC answers CE-marked data with CNP packets (RoCEv2
BTH opcode 0x81, BECN set, DSCP 48, ECT(0), to the sender's QP), at most one per QP per
interval: 4 us for the nvidia flavour (ConnectX ``min_time_between_cnps``), 50 us for the
paper flavour (the DCQCN paper's N). cnp_mode="ack_echo" (the HPCC simulator's model) sends no
CNP packets and sets BECN on the ACK of each CE-marked packet instead.
"""
import numpy as np
import pytest

from controlplane.results.capture import CaptureSpec
from controlplane.run.scenario import Scenario
from controlplane.config.units import us
from dataplane.pcap import OP_ACK, OP_CNP, read_pcap
from dataplane.sim import OPCODES

QPN_BASE = 0x100          # the wire's QPN = QP index + 0x100 (native/wire.c)
SENDERS = 8


def _incast(tmp_path, **kw):
    sc = Scenario(workload={"kind": "incast", "senders": SENDERS, "size_bytes": 2_000_000}, cc="dcqcn",
                  sample_interval_ps=0, **kw)
    path = tmp_path / "incast.pcap"
    result = sc.run(capture=CaptureSpec(path=str(path), points=["hosts"], direction="tx"))
    read = read_pcap(path)
    assert not read.skipped and read.stopped is None
    return result, read.records


def _ipv4(rec_field):
    return rec_field[:, 3].astype(np.int64) - 1                # 10.0.0.(h + 1) -> h


@pytest.mark.parametrize("flavour,interval", [("nvidia", us(4)), ("paper", us(50))])
def test_default_dcqcn_sends_cnp_packets_at_most_once_per_interval_per_qp(tmp_path, flavour, interval):
    result, rec = _incast(tmp_path, cc_params={"flavour": flavour})
    net, c = result.network, result.counters
    assert net.resolved["cnp_mode"] == "interval" and net.resolved["cnp_interval_ps"] == interval
    cnp = rec[rec["opcode"] == OP_CNP]
    # every CNP the NICs counted is on the wire, once (capture: each NIC port as it transmits)
    assert len(cnp) == c["cnp_sent"] == c["cnps_rx"] and len(cnp) > 0
    receiver = net.flows[0].dst
    sender_qps = {int(q) for q in net.sender_qps}
    # a CNP as a ConnectX sends it: BECN, DSCP 48, ECT(0), PSN 0, from the receiver to a sender's QP
    assert (cnp["becn"] == 1).all() and (cnp["dscp"] == 48).all() and (cnp["ecn"] == 2).all()
    assert (cnp["psn"] == 0).all() and (cnp["dport"] == 4791).all() and (cnp["icrc_ok"] == 1).all()
    assert set(_ipv4(cnp["src"])) == {receiver}
    assert {int(q) - QPN_BASE for q in cnp["dqp"]} <= sender_qps
    # NP rule: per QP, consecutive CNPs at least the interval apart. The receiver's uplink carries
    # only ACKs and CNPs (~1.4 % of its rate here), so a CNP leaves within one ACK's serialization
    # (86 B at 100 Gb/s = 6.9 ns) of being generated: allow that much jitter between two of them.
    jitter_ns = 7
    gaps = []
    for q in np.unique(cnp["dqp"]):
        t = cnp["t_ns"][cnp["dqp"] == q]
        gaps.append(np.diff(t))
    gaps = np.concatenate(gaps)
    assert len(gaps) > 0 and gaps.min() >= interval // 1000 - jitter_ns, gaps.min()
    # the interval binds: more CE-marked packets reached the receiver than CNPs were sent
    assert int(net.sim.qps["ce_rx"].sum()) > len(cnp)
    # no ACK echoes congestion in this mode
    acks = rec[rec["opcode"] == OP_ACK]
    assert len(acks) > 0 and (acks["becn"] == 0).all()


def test_ack_echo_sets_becn_on_acks_and_sends_no_cnp(tmp_path):
    """cnp_mode="ack_echo" (HPCC simulator): no opcode 0x81 on the wire; each CE-marked data
    packet's ACK carries BECN, and each counts as one CNP at the sender."""
    result, rec = _incast(tmp_path, cnp_mode="ack_echo")
    net, c = result.network, result.counters
    assert net.resolved["cnp_mode"] == "ack_echo"
    assert (rec["opcode"] == OP_CNP).sum() == 0
    acks = rec[rec["opcode"] == OP_ACK]
    becn = acks[acks["becn"] == 1]
    assert len(becn) == c["cnp_sent"] == c["cnps_rx"] > 0
    # with an ACK per packet (ack_interval 1) every CE-marked packet gets its own BECN ACK
    assert len(becn) == int(net.sim.qps["ce_rx"].sum())
    assert set(_ipv4(becn["src"])) == {net.flows[0].dst}
    assert OPCODES["cnp"] == OP_CNP
