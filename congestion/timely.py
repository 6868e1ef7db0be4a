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

from dataplane.sim import CC_TIMELY, MIN_RATE_BPS

from congestion.api import EV_ACK, EV_START, RULE_RATE, CongestionControl


class Timely(CongestionControl):
    name = "timely"
    events = frozenset({"start", "ack"})
    c_kind = CC_TIMELY

    @classmethod
    def defaults(cls):
        return {"alpha": 0.875, "beta": 0.8, "t_low_ps": 50_000_000, "t_high_ps": 500_000_000,
                "min_rtt_ps": 20_000_000, "rai_bps": 100e6, "rhai_bps": 500e6, "rmin_bps": 100e6, "hai_threshold": 5}

    def __init__(self, **params):
        super().__init__(**params)
        p = {k: float(v) for k, v in self._params.items()}
        self.a, self.beta, self.t_low, self.t_high = p["alpha"], p["beta"], p["t_low_ps"], p["t_high_ps"]
        self.min_rtt, self.rai, self.rhai, self.rmin = p["min_rtt_ps"], p["rai_bps"], p["rhai_bps"], p["rmin_bps"]
        self.hai_after = p["hai_threshold"]

    def param_rules(self):
        """native/timely.c validate(), rule for rule."""
        return [("alpha", lambda v, p: 0.0 < v <= 1.0, "in (0, 1]"),
                ("beta", lambda v, p: 0.0 < v <= 1.0, "in (0, 1]"),
                ("t_low_ps", lambda v, p: v >= 0.0, ">= 0"),
                ("t_high_ps", lambda v, p: v > float(p["t_low_ps"]), "> t_low_ps"),
                ("min_rtt_ps", lambda v, p: v > 0.0, "> 0"),
                ("rai_bps", lambda v, p: v >= 0.0, ">= 0"),
                ("rhai_bps", lambda v, p: v >= 0.0, ">= 0"),
                ("rmin_bps", lambda v, p: v >= MIN_RATE_BPS, RULE_RATE),
                ("hai_threshold", lambda v, p: v >= 0.0, ">= 0")]

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
