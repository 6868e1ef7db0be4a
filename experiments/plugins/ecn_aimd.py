"""ECN-AIMD: a small congestion control written as a user plug-in (no rebuild needed).

Halve the rate on a congestion notification, at most once per `hold_ps`; add `step_bps` every
`period_ps` while the flow has data. softdpu installs it and publishes it under the name
`ecn_aimd` (entry point group `softdpu.cc` in pyproject.toml), so from any directory

    softdpu run incast --cc ecn_aimd
    softdpu run incast --cc experiments.plugins.ecn_aimd:EcnAimd      # the same class, by module

and from a checkout, as any user file: `--cc experiments/plugins/ecn_aimd.py:EcnAimd`.
"""
from congestion.api import CongestionControl
from congestion.params import CCParams, Rate, Time


class EcnAimd(CongestionControl):
    name = "ecn_aimd"
    events = frozenset({"start", "cnp", "timer"})

    class Params(CCParams):
        """ECN-AIMD's parameters: type and unit, default, bounds, one line each."""
        step_bps: Rate("rate added every period_ps", gt=0) = 2e9
        period_ps: Time("additive-increase period", ge=1_000_000, note="1 us: shorter floods the run with timers") \
            = 20_000_000
        hold_ps: Time("at most one cut per hold_ps", ge=0) = 20_000_000
        min_bps: Rate("no cut goes below this rate", floor=True) = 1e9

    def network_defaults(self):
        # switches mark ECN (RED 100-400 KB at 100 Gb/s); receivers send CNPs at most every 50 us
        return {"ecn": {"kmin_bytes": 100_000, "kmax_bytes": 400_000, "pmax": 0.2, "scale_with_rate": True},
                "cnp_mode": "interval"}

    def on_start(self, st, ev):
        st.last_cut = -10**18
        ev.rate_bps = ev.line_rate_bps
        ev.timer_at[0] = ev.now_ps + self._params["period_ps"]

    def on_cnp(self, st, ev):
        if ev.now_ps - st.last_cut >= self._params["hold_ps"]:
            st.last_cut = ev.now_ps
            ev.rate_bps = max(self._params["min_bps"], ev.rate_bps / 2)

    def on_timer(self, st, ev):
        ev.rate_bps = ev.rate_bps + self._params["step_bps"]      # the data plane clamps to line rate
        ev.timer_at[0] = ev.now_ps + self._params["period_ps"]
        ev.trace[0] = ev.rate_bps
