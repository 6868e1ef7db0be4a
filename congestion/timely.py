"""TIMELY: the Python reference implementation (C twin: native/timely.c).

Mittal et al., "TIMELY: RTT-based Congestion Control for the Datacenter", SIGCOMM'15, as the
HPCC repository runs it (alibaba-edu/High-Precision-Congestion-Control,
simulation/src/point-to-point/model/rdma-hw.cc::UpdateRateTimely). Once per window of packets, with
the RTT of the packet the ACK acknowledges (its send time is echoed):
rtt_diff <- (1-a) rtt_diff + a (rtt - prev_rtt),
gradient = rtt_diff / min_rtt; RTT below T_low: add R_AI; above T_high: multiply by
1 - beta (1 - T_high/rtt); otherwise add R_AI (R_HAI once 5 increases came in a row) when the
gradient is <= 0, else multiply by 1 - beta gradient. Defaults: a = 0.875, beta = 0.8,
T_low = 50 us, T_high = 500 us, min_rtt = 20 us (paper and HPCC repo); R_AI = 100 Mb/s and
R_HAI = 500 Mb/s (run.py at 100 Gb/s: 10 and 50 Mb/s per 10 Gb/s); R_min = 100 Mb/s. No ECN.
The handlers follow native/timely.c operation for operation (a differential test compares them).
"""
from __future__ import annotations

from types import SimpleNamespace

from dataplane.sim import CC_TIMELY

from congestion.api import EV_ACK, EV_START, CongestionControl
from congestion.params import CCParams, Count, Rate, Real, Time


class Timely(CongestionControl):
    name = "timely"
    events = frozenset({"start", "ack"})
    c_kind = CC_TIMELY

    class Params(CCParams):
        """native/timely.c's block, in its order."""
        alpha: Real("EWMA gain of the RTT difference", gt=0, le=1) = 0.875
        beta: Real("multiplicative decrease factor", gt=0, le=1) = 0.8
        t_low_ps: Time("RTT below which the rate always increases (T_low)", ge=0) = 50_000_000
        t_high_ps: Time("RTT above which the rate always decreases (T_high)", gt_field="t_low_ps") = 500_000_000
        min_rtt_ps: Time("minimum RTT that normalizes the gradient", gt=0) = 20_000_000
        rai_bps: Rate("additive increase step (R_AI)", ge=0) = 100e6
        rhai_bps: Rate("hyper-additive increase step after hai_threshold increases (R_HAI)", ge=0) = 500e6
        rmin_bps: Rate("smallest rate a decrease leaves (R_min)", floor=True) = 100e6
        hai_threshold: Count("consecutive increases before R_HAI applies", ge=0) = 5

    def __init__(self, **params):
        super().__init__(**params)
        p = {k: float(v) for k, v in self._params.items()}
        self.a, self.beta, self.t_low, self.t_high = p["alpha"], p["beta"], p["t_low_ps"], p["t_high_ps"]
        self.min_rtt, self.rai, self.rhai, self.rmin = p["min_rtt_ps"], p["rai_bps"], p["rhai_bps"], p["rmin_bps"]
        self.hai_after = p["hai_threshold"]

    def new_flow(self, qp):
        return SimpleNamespace(cur=0.0, stage=0.0, diff=0.0, prev=0.0, last=0.0)

    def _event(self, s, ev):
        rate = ev.rate_bps
        if ev.event == EV_START:
            s.cur = ev.line_rate_bps
            s.stage = s.diff = s.prev = s.last = 0.0
            rate = ev.line_rate_bps
        elif ev.event == EV_ACK and ev.rtt_ps >= 0 and float(ev.snd_una) > s.last:
            rtt, nxt = float(ev.rtt_ps), float(ev.snd_nxt)
            if s.last != 0.0:
                rtt_diff = (1.0 - self.a) * s.diff + self.a * (rtt - s.prev)
                gradient = rtt_diff / self.min_rtt
                c = 0.0
                if rtt < self.t_low:
                    inc = True
                elif rtt > self.t_high:
                    c = 1.0 - self.beta * (1.0 - self.t_high / rtt)
                    inc = False
                elif gradient <= 0.0:
                    inc = True
                else:
                    c = 1.0 - self.beta * gradient
                    if c < 0.0:
                        c = 0.0
                    inc = False
                if inc:
                    rate = s.cur + (self.rai if s.stage < self.hai_after else self.rhai)
                    if rate > ev.line_rate_bps:
                        rate = ev.line_rate_bps
                    s.stage += 1.0
                else:
                    rate = s.cur * c
                    if rate < self.rmin:
                        rate = self.rmin
                    s.stage = 0.0
                s.cur = rate
                s.diff = rtt_diff
            if nxt > s.last:
                s.last = nxt
                s.prev = rtt
        ev.rate_bps = rate
        ev.trace[0] = s.cur
        ev.trace[1] = s.stage
        ev.trace[2] = s.diff
        ev.trace[3] = s.prev

    on_start = on_ack = _event
