"""HPCC: the Python reference implementation (C twin: native/hpcc.c).

Li et al., "HPCC: High Precision Congestion Control", SIGCOMM'19, Algorithm 1, as the HPCC
repository runs it (alibaba-edu/High-Precision-Congestion-Control,
simulation/src/point-to-point/model/rdma-hw.cc::UpdateRateHp, single-rate mode, fast react on).
Switches stamp INT on every data packet at dequeue (native/int.c: 24-bit ns time, 20-bit byte
counter in 128 x INT_MULTI units, 17-bit queue in 80 x INT_MULTI units, line-rate index), the
receiver echoes it in the ACK, and per ACK:

    for each hop:  tau = time delta,  txRate = byte delta x 8 / tau,
                   u = txRate / B + min(qlen, qlen_prev) x line / (B x W_init)
    (u, tau) of the hop with the largest u;  U <- (1 - tau/T) U + (tau/T) u,  tau <= T
    R = R_c / (U / eta) + R_AI   if U >= eta or stage >= max_stage   (stage <- 0)
    R = R_c + R_AI               otherwise                          (stage + 1)
    R_c, stage committed once per window; other ACKs react with R without committing.
    window = W_init x R / line

Defaults: eta = 0.95, max_stage = 5 (the paper; the repo's run.py uses 0), R_AI = 40 Mb/s at
100 Gb/s (run.py: 10 x bw/25 Mb/s), R_min = 100 Mb/s. T (base RTT) and W_init (its BDP) come
from the fabric (the longest host-to-host path, as the repo's GLOBAL_T), INT_MULTI = host rate /
25 Gb/s. The handlers follow native/hpcc.c operation for operation (a differential test
compares the traces). Not modelled: the repo's per-hop-rate mode (MULTI_RATE 1), PINT.
"""
from __future__ import annotations

from types import SimpleNamespace

from dataplane.sim import CC_HPCC

from congestion.api import EV_ACK, EV_START, CongestionControl
from congestion.params import FABRIC, MAX_BYTES, Bytes, CCParams, Count, Flag, Rate, Real, Time

RATES = (25e9, 50e9, 100e9, 200e9, 400e9)


class Hpcc(CongestionControl):
    name = "hpcc"
    events = frozenset({"start", "ack"})
    c_kind = CC_HPCC

    class Params(CCParams):
        """native/hpcc.c's block, in its order."""
        eta: Real("target utilization (eta)", gt=0, le=1) = 0.95
        max_stage: Count("additive-increase stages before a multiplicative update (maxStage)", ge=0) = 5
        rai_bps: Rate("additive increase step (W_AI as a rate)", ge=0) = 40e6
        rmin_bps: Rate("smallest rate (R_min)", floor=True) = 100e6
        base_rtt_ps: Time("base RTT T (default: the fabric's longest host-to-host base RTT)", gt=0,
                          fabric=True, note=FABRIC) = None
        win_bytes: Bytes("initial window W_init (default: T x host rate)", gt=0, le=MAX_BYTES, fabric=True, note=FABRIC) = None
        int_multi: Count("INT byte/queue unit multiplier (default: host rate / 25 Gb/s)", ge=1, le=64,
                         fabric=True) = None
        fast_react: Flag("react on every ACK, not only once per window") = True

    def network_defaults(self):
        return {"ecn": None, "cnp_mode": "interval", "int": True}

    def bind(self, facts: dict) -> None:
        super().bind(facts)
        """Fill in what comes from the fabric (unless given): T, W_init, INT_MULTI."""
        p = self._params
        if p["base_rtt_ps"] is None:
            p["base_rtt_ps"] = int(facts["max_base_rtt_ps"])
        if p["win_bytes"] is None:
            p["win_bytes"] = int(facts["max_base_rtt_ps"] * facts["host_rate_bps"] / 8e12)
        if p["int_multi"] is None:
            p["int_multi"] = int(facts["int_multi"])
        self.check_params()

    def new_flow(self, qp):
        return SimpleNamespace(cur=0.0, stage=0.0, util=0.0, last=0.0, nprev=0.0,
                               ptime=[0.0] * 5, pbytes=[0.0] * 5, pqlen=[0.0] * 5)

    def _event(self, s, ev):
        p = self.resolved_params()
        eta, max_stage, rai, rmin, T, win, multi = (p["eta"], p["max_stage"], p["rai_bps"], p["rmin_bps"],
                                                    p["base_rtt_ps"], p["win_bytes"], p["int_multi"])
        line, rate = ev.line_rate_bps, ev.rate_bps
        if ev.event == EV_START:
            s.cur, s.stage, s.util, s.last, s.nprev = line, 0.0, 1.0, 0.0, 0.0
            ev.rate_bps = line
            ev.window_bytes = int(win)
            return
        n = ev.int_nhop
        if ev.event != EV_ACK or n == 0 or n > 5:
            return
        ack, nxt = float(ev.snd_una), float(ev.snd_nxt)
        fast = not ack > s.last
        if fast and p["fast_react"] == 0.0:
            return
        if s.last == 0.0:                                   # first window: remember the INT
            for i in range(n):
                h = ev.int_hop[i]
                s.ptime[i], s.pbytes[i], s.pqlen[i] = float(h.time), float(h.bytes), float(h.qlen)
            s.nprev = float(n)
            s.last = nxt
            return
        U = dt = 0.0
        updated = False
        for i in range(n):
            h = ev.int_hop[i]
            tau = float((h.time - int(s.ptime[i])) & 0xFFFFFF)
            nbytes = float((h.bytes - int(s.pbytes[i])) & 0xFFFFF) * 128.0 * multi
            qlen = float(min(h.qlen, int(s.pqlen[i]))) * 80.0 * multi
            s.ptime[i], s.pbytes[i], s.pqlen[i] = float(h.time), float(h.bytes), float(h.qlen)
            if tau <= 0.0:
                continue
            B = RATES[min(h.rate_idx, 4)]
            u = nbytes * 8.0 / (tau * 1e-9) / B + qlen * line / B / win
            updated = True
            if u > U:
                U = u
                dt = tau * 1000.0
        s.nprev = float(n)
        if updated:
            if dt > T:
                dt = T
            s.util = (s.util * (T - dt) + U * dt) / T
            max_c = s.util / eta
            if max_c >= 1.0 or s.stage >= max_stage:
                new_rate, new_stage = s.cur / max_c + rai, 0.0
            else:
                new_rate, new_stage = s.cur + rai, s.stage + 1.0
            if new_rate < rmin:
                new_rate = rmin
            if new_rate > line:
                new_rate = line
            rate = new_rate
            if not fast:
                s.cur, s.stage = new_rate, new_stage
        if not fast and nxt > s.last:
            s.last = nxt
        ev.rate_bps = rate
        ev.window_bytes = int(win * rate / line)
        ev.trace[0] = s.cur
        ev.trace[1] = s.stage
        ev.trace[2] = s.util
        ev.trace[3] = U

    on_start = on_ack = _event
