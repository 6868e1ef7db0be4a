"""Swift: the Python reference implementation (C twin: native/swift.c).

Kumar et al., "Swift: Delay is Simple and Effective for Congestion Control in the Datacenter",
SIGCOMM'20, in the form htsim models it (Broadcom/csg-htsim sim/swift.cpp):

    target = base_target + hops x h + fs_delay(cwnd),
    fs_delay = clamp(fs_alpha / sqrt(cwnd/MSS) + fs_beta, 0, fs_range),
    fs_alpha = fs_range / (1/sqrt(fs_min_cwnd) - 1/sqrt(fs_max_cwnd)), fs_beta = -fs_alpha/sqrt(fs_max_cwnd)
    per ACK: delay < target -> cwnd += ai x MSS x acked / cwnd   (ai x acked below one packet)
             otherwise, at most once per RTT -> cwnd *= max(1 - beta (delay - target)/delay, 1 - max_mdf)
    timeout or NAK (at most once per RTT): cwnd *= 1 - max_mdf
    cwnd in [min_cwnd, max_cwnd]; below one packet the NIC paces at cwnd per RTT, but no slower
    than the rate floor (MIN_RATE_BPS, 1 Mb/s).

Defaults: htsim's (self-described as guesses): ai = 1, beta = 0.8, max_mdf = 0.5, base_target =
20 us, h = base_target / 6.55, fs_range = 5 x base_target, fs_min_cwnd = 0.1 and fs_max_cwnd = 100
packets. max_cwnd = 2 x the fabric's largest BDP (from the scenario), min_cwnd = 1 % of a packet;
the hop count comes from the TTL of the acknowledged packet. Not modelled: the paper's split of
fabric and endpoint delay (one delay, one window). The handlers follow native/swift.c operation
for operation (a differential test compares the traces).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from dataplane.sim import CC_SWIFT, MIN_RATE_BPS

from congestion.api import EV_ACK, EV_NAK, EV_START, EV_TIMEOUT, CongestionControl
from congestion.params import MAX_BYTES, CCParams, Real, Time


class Swift(CongestionControl):
    name = "swift"
    events = frozenset({"start", "ack", "nak", "timeout"})
    c_kind = CC_SWIFT

    class Params(CCParams):
        """native/swift.c's block, in its order."""
        ai: Real("additive increment per RTT (packets)", gt=0) = 1.0
        beta: Real("multiplicative decrease factor", gt=0, le=1) = 0.8
        max_mdf: Real("largest multiplicative decrease", gt=0, lt=1) = 0.5
        base_target_ps: Time("base target delay", gt=0) = 20_000_000
        hop_scale_ps: Real("target delay added per switch hop (h; a real number of ps: base_target / 6.55)",
                           unit="time", ge=0) = 20_000_000 / 6.55
        fs_range_ps: Time("flow-scaling range of the target (fs_range)", ge=0) = 100_000_000
        fs_min_cwnd: Real("flow scaling: window (packets) at which the full range applies", gt=0,
                          note="packets") = 0.1
        fs_max_cwnd: Real("flow scaling: window (packets) at which it vanishes", gt_field="fs_min_cwnd",
                          note="packets") = 100.0
        min_cwnd_bytes: Real("smallest window (default: 1 % of a packet's payload)", unit="size", gt=0,
                             fabric=True) = None
        max_cwnd_bytes: Real("largest window (default: 2 x the fabric's largest BDP)", unit="size",
                             gt_field="min_cwnd_bytes", le=MAX_BYTES, fabric=True) = None

    def bind(self, facts):
        super().bind(facts)
        p = self._params
        if p["min_cwnd_bytes"] is None:
            p["min_cwnd_bytes"] = 0.01 * facts["mtu_payload"]
        if p["max_cwnd_bytes"] is None:
            p["max_cwnd_bytes"] = 2.0 * facts["max_base_rtt_ps"] * facts["host_rate_bps"] / 8e12
        self.check_params()

    def new_flow(self, qp):
        return SimpleNamespace(cwnd=0.0, last_dec=0.0, rtt=0.0, target=0.0)

    def _target(self, p, cwnd_pkts, hops):
        fs_range = p["fs_range_ps"]
        fs_alpha = fs_range / (1.0 / math.sqrt(p["fs_min_cwnd"]) - 1.0 / math.sqrt(p["fs_max_cwnd"]))
        fs_beta = -fs_alpha / math.sqrt(p["fs_max_cwnd"])
        fs = fs_alpha / math.sqrt(cwnd_pkts) + fs_beta
        if fs < 0.0:
            fs = 0.0
        if fs > fs_range:
            fs = fs_range
        return p["base_target_ps"] + hops * p["hop_scale_ps"] + fs

    def _event(self, s, ev):
        p = self.resolved_params()
        ai, beta, max_mdf, min_cwnd, max_cwnd = p["ai"], p["beta"], p["max_mdf"], p["min_cwnd_bytes"], p["max_cwnd_bytes"]
        mss, now = float(ev.mtu_payload), float(ev.now_ps)
        if ev.event == EV_START:
            s.cwnd = max_cwnd / 2.0
            s.last_dec = -1e18
            s.rtt = p["base_target_ps"]
            s.target = p["base_target_ps"]
        elif ev.event == EV_ACK and ev.rtt_ps >= 0:
            delay, cwnd = float(ev.rtt_ps), s.cwnd
            target = self._target(p, cwnd / mss, float(ev.hops))
            s.rtt, s.target = delay, target
            if delay < target:
                if cwnd >= mss:
                    cwnd = cwnd + ai * mss * float(ev.acked_bytes) / cwnd
                else:
                    cwnd = cwnd + ai * float(ev.acked_bytes)
            elif now - s.last_dec >= delay:
                f = 1.0 - beta * (delay - target) / delay
                if f < 1.0 - max_mdf:
                    f = 1.0 - max_mdf
                cwnd = cwnd * f
                s.last_dec = now
            if cwnd < min_cwnd:
                cwnd = min_cwnd
            if cwnd > max_cwnd:
                cwnd = max_cwnd
            s.cwnd = cwnd
        elif ev.event in (EV_TIMEOUT, EV_NAK) and now - s.last_dec >= s.rtt:
            cwnd = s.cwnd * (1.0 - max_mdf)
            s.cwnd = min_cwnd if cwnd < min_cwnd else cwnd
            s.last_dec = now
        cwnd = s.cwnd
        ev.window_bytes = int(1.0 if cwnd < 1.0 else cwnd)
        rate = ev.line_rate_bps if cwnd >= mss else cwnd * 8.0 / (s.rtt * 1e-12)
        rate = ev.line_rate_bps if rate > ev.line_rate_bps else rate
        ev.rate_bps = MIN_RATE_BPS if rate < MIN_RATE_BPS else rate    # the NIC paces no slower
        ev.trace[0] = cwnd
        ev.trace[1] = s.target
        ev.trace[2] = s.rtt
        ev.trace[3] = s.last_dec

    on_start = on_ack = on_nak = on_timeout = _event
