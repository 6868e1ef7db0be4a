"""DCTCP (rate form): the Python reference implementation (C twin: native/dctcp.c).

Alizadeh et al., "Data Center TCP (DCTCP)", SIGCOMM'10, and RFC 8257, in the rate domain that the
HPCC repository uses for RDMA NICs (alibaba-edu/High-Precision-Congestion-Control,
simulation/src/point-to-point/model/rdma-hw.cc::HandleAckDctcp). Per ACK: count ECN echoes; once per
window of packets (when the cumulative ACK passes the sequence that was next when the window began)
update alpha <- (1-g) alpha + g F, F = echoes / window size; on an echo outside CWR cut the rate to
R (1 - alpha/2) and stay in CWR until the packets then in flight are acknowledged; at each new
window outside CWR add R_AI. Defaults: g = 1/16 and initial alpha = 1 (RFC 8257), R_AI = 615 Mb/s
(HPCC repo run.py), R_min = 100 Mb/s (RdmaHw MinRate). Switches use step marking at K = 30 KB per
Gb/s of port rate (300 KB at 100 Gb/s, Pmax = 1: run.py); receivers echo CE on every ACK. Sequence
numbers count packets (the HPCC code counts bytes / MTU). The handlers follow native/dctcp.c
operation for operation (a differential test compares the traces).
"""
from __future__ import annotations

from types import SimpleNamespace

from dataplane.sim import CC_DCTCP

from congestion.api import EV_ACK, EV_START, CongestionControl
from congestion.params import CCParams, Rate, Real


class Dctcp(CongestionControl):
    name = "dctcp"
    events = frozenset({"start", "ack"})
    c_kind = CC_DCTCP

    class Params(CCParams):
        """native/dctcp.c's block, in its order."""
        g: Real("alpha gain g (RFC 8257)", gt=0, le=1) = 1 / 16
        rai_bps: Rate("additive increase per window outside CWR (R_AI)", ge=0) = 615e6
        rmin_bps: Rate("smallest rate a cut leaves (R_min)", floor=True) = 100e6
        initial_alpha: Real("alpha when a flow starts", ge=0, le=1) = 1.0

    def __init__(self, **params):
        super().__init__(**params)
        p = self._params
        self.g, self.rai, self.rmin = float(p["g"]), float(p["rai_bps"]), float(p["rmin_bps"])

    def network_defaults(self):
        return {"ecn": {"kmin_bytes": 300_000, "kmax_bytes": 300_000, "pmax": 1.0, "scale_with_rate": True},
                "cnp_mode": "ack_echo"}

    def new_flow(self, qp):
        return SimpleNamespace(alpha=0.0, last=0.0, batch=0.0, ecns=0.0, cwr=0.0, high=0.0)

    def _event(self, s, ev):
        rate = ev.rate_bps
        if ev.event == EV_START:
            s.alpha = float(self._params["initial_alpha"])
            s.last = s.batch = s.ecns = s.cwr = s.high = 0.0
            rate = ev.line_rate_bps
        elif ev.event == EV_ACK:
            ack, nxt = float(ev.snd_una), float(ev.snd_nxt)
            new_batch = False
            s.ecns += 1.0 if ev.ecn else 0.0
            if ack > s.last:                              # a window of feedback is complete
                new_batch = True
                if s.last == 0.0:
                    s.last = nxt
                    s.batch = nxt + 1.0
                else:
                    frac = s.ecns / s.batch
                    if frac > 1.0:
                        frac = 1.0
                    s.alpha = (1.0 - self.g) * s.alpha + self.g * frac
                    s.last = nxt
                    s.ecns = 0.0
                    s.batch = (nxt - ack) + 1.0
            if s.cwr != 0.0 and ack > s.high:
                s.cwr = 0.0
            if ev.ecn and s.cwr == 0.0:
                rate = rate * (1.0 - s.alpha / 2.0)
                if rate < self.rmin:
                    rate = self.rmin
                s.cwr = 1.0
                s.high = nxt
            if s.cwr == 0.0 and new_batch:
                rate = rate + self.rai
                if rate > ev.line_rate_bps:
                    rate = ev.line_rate_bps
        ev.rate_bps = rate
        ev.trace[0] = s.alpha
        ev.trace[1] = s.cwr
        ev.trace[2] = s.ecns
        ev.trace[3] = s.batch

    on_start = on_ack = _event
