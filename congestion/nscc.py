"""UEC NSCC: the Python reference implementation (C twin: native/nscc.c).

The Ultra Ethernet Transport's sender-side congestion control (UET 1.0, 2025) as the UEC htsim
model implements it (htsim/sim/src/protocols/uec.cpp, read in the public copy atseis/uet-htsim:
initNsccParams, updateCwndOnAck_NSCC, quick_adapt, fulfill_adjustment, updateCwndOnNack_NSCC).
Scaling to a 100 Gb/s x 12 us reference network: a = BDP / (100 Gb/s x 12 us),
b = target / 12 us; fi = 5 MSS a, alpha = 4 MSS a b / target, eta = 0.15 MSS a,
fi_scale = 0.25 a; target = the network RTT (no trimming), maxwnd = 1.5 BDP, min = one MTU.
Per ACK (delay = RTT - base RTT, skip = ECN echoed):

    no ECN, delay >= target   fair increase:          inc += fi x acked
    no ECN, delay <  target   proportional increase:  inc += alpha x acked x (target - delay)
                              (fast increase cwnd += fi_scale x acked once delay < 1 us for a window)
    ECN,    delay >= target   multiplicative decrease once per base RTT:
                              cwnd *= max(1 - gamma (avg_delay - target)/avg_delay, 0.5)
    ECN,    delay <  target   nothing (UET changes path)
    fulfil after 8 MTU acknowledged or one network RTT: cwnd += inc/cwnd (+ eta per network RTT)
    quick adapt on loss or delay > 4 target when < maxwnd/8 was acknowledged in the last
    base RTT + target: cwnd = bytes acknowledged; NAK: cwnd -= the lost bytes.

softdpu specifics: a go-back-N NAK or a timeout counts as the loss of one packet; the path is
single (no entropy changes: issue #5); switches mark ECN with DCTCP-like step marking (a choice:
UET leaves the switch configuration open). Defaults: gamma 0.8, delay EWMA gain 0.0125,
qa_gate 3, 64 header bytes per packet (htsim's). The handlers follow native/nscc.c operation
for operation (a differential test compares the traces).
"""
from __future__ import annotations

from types import SimpleNamespace

from dataplane.sim import CC_NSCC

from congestion.api import EV_ACK, EV_NAK, EV_START, EV_TIMEOUT, CongestionControl
from congestion.params import FABRIC, MAX_PS, CCParams, Count, Bytes, Real, Time

FIELDS = ("cwnd", "inc", "recv", "achieved", "qa_end", "last_adj", "last_dec", "avg_delay", "fi_count", "increase",
          "to_ignore", "ignored", "base_rtt", "trigger")


class Nscc(CongestionControl):
    name = "nscc"
    events = frozenset({"start", "ack", "nak", "timeout"})
    c_kind = CC_NSCC

    class Params(CCParams):
        """native/nscc.c's block, in its order."""
        network_rtt_ps: Time("network RTT without queueing (default: the fabric's longest base RTT)", gt=0,
                             le=MAX_PS, fabric=True, note=FABRIC) = None
        target_qdelay_ps: Time("target queueing delay (default: network_rtt_ps)", gt=0, le=MAX_PS,
                               fabric=True, note=FABRIC) = None
        gamma: Real("multiplicative decrease gain", gt=0, le=1) = 0.8
        delay_alpha: Real("EWMA gain of the queueing delay", gt=0, le=1) = 0.0125
        qa_gate: Count("quick adapt when less than maxwnd / 2^qa_gate was acknowledged", ge=0, le=16) = 3
        header_bytes: Bytes("header bytes per packet (htsim's)", ge=0, le=1e6) = 64

    def network_defaults(self):
        return {"ecn": {"kmin_bytes": 100_000, "kmax_bytes": 100_000, "pmax": 1.0, "scale_with_rate": True},
                "cnp_mode": "ack_echo"}

    def bind(self, facts):
        super().bind(facts)
        p = self._params
        if p["network_rtt_ps"] is None:
            p["network_rtt_ps"] = int(facts["max_base_rtt_ps"])
        if p["target_qdelay_ps"] is None:
            p["target_qdelay_ps"] = int(p["network_rtt_ps"])
        self.check_params()

    def new_flow(self, qp):
        return SimpleNamespace(**{f: 0.0 for f in FIELDS})

    def _derive(self, p, ev, base_rtt):
        k = SimpleNamespace()
        k.mss = float(ev.mtu_payload)
        k.mtu = k.mss + p["header_bytes"]
        k.net_rtt, k.target, k.line = p["network_rtt_ps"], p["target_qdelay_ps"], ev.line_rate_bps
        ref_bdp = 12e-6 * 100e9 / 8.0
        net_bdp = k.net_rtt * 1e-12 * k.line / 8.0
        k.a = net_bdp / ref_bdp
        k.b = k.target / 12e6
        k.alpha = 4.0 * k.mss * k.a * k.b / k.target
        k.fi = 5.0 * k.mss * k.a
        k.eta = 0.15 * k.mss * k.a
        k.fi_scale = 0.25 * k.a
        k.gamma, k.delay_alpha, k.qa_gate = p["gamma"], p["delay_alpha"], int(p["qa_gate"])
        k.qa_threshold = 4.0 * k.target
        k.adjust_bytes = 8.0 * k.mtu
        k.maxwnd = 1.5 * (base_rtt * 1e-12 * k.line / 8.0)
        k.min_cwnd = k.mtu
        return k

    @staticmethod
    def _bounds(k, s):
        if s.cwnd < k.min_cwnd:
            s.cwnd = k.min_cwnd
        if s.cwnd > k.maxwnd:
            s.cwnd = k.maxwnd

    @staticmethod
    def _update_delay(k, s, raw, skip):
        delay = raw - s.base_rtt
        if not skip and delay > k.target:
            s.avg_delay = k.delay_alpha * s.base_rtt * 0.25 + (1.0 - k.delay_alpha) * s.avg_delay
        else:
            s.avg_delay = k.delay_alpha * delay + (1.0 - k.delay_alpha) * s.avg_delay

    @staticmethod
    def _quick_adapt(k, s, now, is_loss, skip, delay, inflight):
        done = False
        if s.ignored < s.to_ignore and skip:
            done = True
        elif now > s.qa_end:
            if (s.qa_end != 0.0 and (s.trigger != 0.0 or is_loss or delay > k.qa_threshold)
                    and s.achieved < k.maxwnd / float(1 << k.qa_gate)):
                s.cwnd = s.achieved if s.achieved > k.min_cwnd else k.min_cwnd
                s.to_ignore, s.ignored, s.trigger = inflight, 0.0, 0.0
                done = True
            s.achieved = 0.0
            s.qa_end = now + s.base_rtt + k.target
        if done:
            s.inc = 0.0
            s.recv = 0.0
        return done

    def _event(self, s, ev):
        p = self.resolved_params()
        now, inflight = float(ev.now_ps), float(ev.inflight_bytes)
        if ev.event == EV_START:
            for f in FIELDS:
                setattr(s, f, 0.0)
            s.base_rtt = p["network_rtt_ps"]
            k = self._derive(p, ev, s.base_rtt)
            s.cwnd = k.maxwnd
            s.last_dec = -1e18
        elif ev.event == EV_ACK and ev.rtt_ps >= 0:
            raw, acked, skip = float(ev.rtt_ps), float(ev.acked_bytes), ev.ecn != 0
            if raw < s.base_rtt:
                s.base_rtt = raw
            k = self._derive(p, ev, s.base_rtt)
            self._update_delay(k, s, raw, skip)
            delay = raw - s.base_rtt
            s.achieved += acked
            s.recv += acked
            if skip and s.ignored < s.to_ignore:
                s.ignored += acked
            if not self._quick_adapt(k, s, now, False, skip, delay, inflight):
                if not skip and delay >= k.target:
                    s.inc += k.fi * acked
                elif not skip:
                    if delay < 1e6:
                        s.fi_count += acked
                        if s.fi_count > s.cwnd or s.increase != 0.0:
                            s.cwnd += acked * k.fi_scale
                            s.increase = 1.0
                        else:
                            s.increase = 0.0
                    else:
                        s.fi_count = 0.0
                        s.increase = 0.0
                    if s.increase == 0.0:
                        s.inc += k.alpha * acked * (k.target - delay)
                elif delay >= k.target:
                    s.increase = 0.0
                    s.fi_count = 0.0
                    avg = s.avg_delay
                    if avg > k.target and now - s.last_dec > s.base_rtt:
                        f = 1.0 - k.gamma * (avg - k.target) / avg
                        s.cwnd *= f if f > 0.5 else 0.5
                        if s.cwnd < k.min_cwnd:
                            s.cwnd = k.min_cwnd
                        s.last_dec = now
                self._bounds(k, s)
                if s.recv > k.adjust_bytes or now - s.last_adj > k.net_rtt:
                    s.cwnd += s.inc / s.cwnd
                    if now - s.last_adj >= k.net_rtt:
                        s.cwnd += k.eta
                        s.last_adj = now
                    s.inc = 0.0
                    s.recv = 0.0
                self._bounds(k, s)
        elif ev.event in (EV_NAK, EV_TIMEOUT):
            k = self._derive(p, ev, s.base_rtt)
            nacked = k.mtu
            s.ignored += nacked
            self._update_delay(k, s, s.base_rtt + k.net_rtt, True)
            s.trigger = 1.0
            if not self._quick_adapt(k, s, now, True, True, 0.0, inflight):
                s.cwnd -= nacked
                self._bounds(k, s)
        ev.window_bytes = int(s.cwnd)
        ev.rate_bps = ev.line_rate_bps
        ev.trace[0] = s.cwnd
        ev.trace[1] = s.avg_delay
        ev.trace[2] = s.inc
        ev.trace[3] = s.base_rtt

    on_start = on_ack = on_nak = on_timeout = _event
