"""DCQCN reaction point: the Python reference implementation (C twin: native/dcqcn.c).

Two flavours, selected by ``flavour``:

``paper``  Zhu et al., "Congestion Control for Large-Scale RDMA Deployments", SIGCOMM'15: the RP
           decreases on every CNP (RT <- RC, RC <- RC(1 - alpha/2), alpha <- (1-g)alpha + g),
           alpha decays every K without CNPs, and rate-increase events come from a timer (T) and
           a byte counter (B): fast recovery while max(stages) < F, additive increase (R_AI)
           while min(stages) < F, then hyper increase (i x R_HAI). Defaults: the paper's table
           (40 Gb/s testbed): g = 1/256, K = T = 55 us, B = 10 MB, F = 5, R_AI = 40 Mb/s;
           R_HAI = 200 Mb/s and R_min = 100 Mb/s from ns3-rdma.
``nvidia`` ConnectX-firmware-like, as the HPCC repo models it (rdma-hw.cc ``*Mlx``): a CNP only
           sets flags; alpha is updated every 1 us; every 4 us the rate is cut if a CNP arrived
           (RT <- RC only when clamping or stage > 0); the increase timer (300 us) does fast
           recovery while stage < F, additive at stage == F, hyper after. The first CNP sets
           alpha = 1 and starts the timers without cutting the rate. Defaults: the HPCC repo's
           ``dcqcn`` preset at 100 Gb/s: g = 1/256, F = 1, R_AI = 20 Mb/s, R_HAI = 200 Mb/s,
           R_min = 1 Gb/s.

Network settings each flavour declares (:data:`ECN_DEFAULTS`, applied by a Scenario unless it
sets ``ecn``, ``cnp_mode`` or ``cnp_interval_ps`` itself):

* Switch ECN (RED-like: no mark below Kmin, probability rising to Pmax at Kmax, all above),
  with the link rate the values were published for; a port of rate R gets them scaled by
  R / base_rate_bps (config.json lists what each port got, under ``resolved.ecn_ports``).
  paper: Kmin 5 KB, Kmax 200 KB, Pmax 1 % for 40 Gb/s (the paper's testbed values, also the
  ns3-rdma config). nvidia: the HPCC repo's run.py, Kmin = 100 x bw/25 KB, Kmax = 400 x bw/25 KB,
  Pmax 0.2 (config.txt KMIN_MAP 25G 100 / 50G 200 / 100G 400 KB), i.e. 400 KB / 1600 KB for
  100 Gb/s.
* Notification point: both flavours send CNP packets (BTH opcode 0x81), at most one per QP per
  interval (cnp_mode="interval"). paper: N = 50 us (the paper's NP). nvidia: 4 us, ConnectX's
  ``min_time_between_cnps`` (sysfs ecn/roce_np/min_time_between_cnps, mlx5 debugfs
  ``np_min_time_between_cnps``, NVConfig MIN_TIME_BETWEEN_CNPS, in microseconds): 4 is the
  value ``mlxconfig -q`` reports on ConnectX adapters with factory settings, next to the
  documented defaults DCE_TCP_G 1019, DCE_TCP_RTT 1, RATE_REDUCE_MONITOR_PERIOD 4,
  RPG_TIME_RESET 300, CNP_DSCP 48 (NVIDIA "DCQCN CC Parameters", ConnectX-4 and later). The
  mlx5 driver patch that added the debugfs knob (IB/mlx5, 2020) calls its PRM default 0, and the
  firmware applies the limit per port ("minimum time between sending CNPs from the port"); the
  emulator applies it per QP, as the DCQCN paper's NP does.
  cnp_mode="ack_echo" instead sets BECN on the ACK of every CE-marked packet: the HPCC
  simulator's model (no CNP packets), kept for comparison with it.

The handlers below follow native/dcqcn.c line for line: same state, same timer ids, same
floating-point operations in the same order, so that the differential test can require
identical decision traces. Not modelled: ns3-rdma's non-paper extras (halved T and B in hyper
increase, RT/8 when RT > 10 RC).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

from dataplane.sim import CC_DCQCN

from congestion.api import EV_CNP, EV_START, EV_TIMER, CongestionControl
from congestion.params import MAX_BYTES, MAX_PS, Bytes, CCParams, Count, Flag, OneOf, Rate, Real, Time

T_ALPHA, T_INC, T_DEC = 0, 1, 2
FLAVOURS = {"paper": 0, "nvidia": 1}


class DcqcnParams(CCParams):
    """DCQCN's parameters, in native/dcqcn.c's block order (flavour aside: a name here, 0/1 there).
    The field defaults are the nvidia flavour's; ``flavour="paper"`` selects the paper's
    (:data:`_PAPER`) for every parameter not given."""
    flavour: OneOf(tuple(FLAVOURS), "paper (Zhu et al., SIGCOMM'15) or nvidia (ConnectX firmware, "
                                    "the HPCC repo's Mlx model); selects the other defaults") = "nvidia"
    g: Real("alpha gain g: alpha <- (1 - g) alpha + g on a cut", gt=0, le=1) = 1 / 256
    rai_bps: Rate("additive-increase step R_AI", ge=0) = 20e6
    rhai_bps: Rate("hyper-increase step R_HAI", ge=0) = 200e6
    rmin_bps: Rate("smallest rate a cut leaves (R_min)", floor=True) = 1e9
    initial_alpha: Real("alpha when a flow starts", ge=0, le=1) = 1.0
    rate_on_first_cnp: Real("nvidia: rate factor on the first CNP (1 = no cut)", gt=0, le=1) = 1.0
    alpha_period_ps: Time("alpha update period K (nvidia: alpha timer)", ge=1, le=MAX_PS) = 1_000_000
    inc_period_ps: Time("rate-increase timer T", ge=1, le=MAX_PS) = 300_000_000
    dec_period_ps: Time("nvidia: rate-decrease check period (paper: unused, >= 0)", ge=0, le=MAX_PS) = 4_000_000
    byte_counter: Bytes("rate-increase byte counter B (0 = off)", ge=0, le=MAX_BYTES) = 0
    fast_recovery: Count("fast-recovery stages F", ge=0, le=1e6) = 1
    clamp_target: Flag("paper: RT <- RC on every cut (clamp the target rate)") = False

    @classmethod
    def defaults(cls, **selection):
        return dict(_PAPER if selection.get("flavour") == "paper" else _NVIDIA)

    @classmethod
    def spec_for(cls, name, params=None):
        """dec_period_ps: [1, 1e15] ps for nvidia (a period), [0, 1e15] ps for paper (unused)."""
        s = cls.specs[name]
        if name == "dec_period_ps" and (params or {}).get("flavour", "nvidia") == "nvidia" and params is not None:
            return s.with_bound(ge=1)
        return s

    @classmethod
    def schema_note(cls, name):
        if name == "flavour":
            return ""
        note = f"paper flavour default {json.dumps(_PAPER[name])}"
        return note + ("; nvidia: must be in [1, 1e+15] ps" if name == "dec_period_ps" else "")


_PAPER = dict(flavour="paper", g=1 / 256, rai_bps=40e6, rhai_bps=200e6, rmin_bps=100e6, initial_alpha=1.0,
              rate_on_first_cnp=1.0, alpha_period_ps=55_000_000, inc_period_ps=55_000_000,
              dec_period_ps=50_000_000, byte_counter=10_000_000, fast_recovery=5, clamp_target=True)
#: the nvidia flavour's defaults: DcqcnParams' field defaults
_NVIDIA = {n: f.default for n, f in DcqcnParams.model_fields.items()}

#: switch ECN marking and NP settings that go with each flavour: thresholds for a link of
#: base_rate_bps (scaled by port rate / base_rate_bps), CNP frames at most every cnp_interval_ps
ECN_DEFAULTS = {
    "paper": dict(kmin_bytes=5_000, kmax_bytes=200_000, pmax=0.01, base_rate_bps=40e9,
                  cnp_mode="interval", cnp_interval_ps=50_000_000),
    "nvidia": dict(kmin_bytes=400_000, kmax_bytes=1_600_000, pmax=0.2, base_rate_bps=100e9,
                   cnp_mode="interval", cnp_interval_ps=4_000_000),
}


class Dcqcn(CongestionControl):
    """DCQCN (Python reference). ``flavour`` is "paper" or "nvidia"; other keyword arguments
    override that flavour's defaults (rates in bit/s, periods in ps, byte_counter in bytes;
    :class:`DcqcnParams` declares each)."""

    name = "dcqcn"
    events = frozenset({"start", "cnp", "timer", "bytes"})
    c_kind = CC_DCQCN
    Params = DcqcnParams

    def __init__(self, flavour: str = "nvidia", **params):
        super().__init__(flavour=flavour, **params)
        p = self._params
        self.flavour = FLAVOURS[p["flavour"]]
        self.g, self.rai, self.rhai, self.rmin = float(p["g"]), float(p["rai_bps"]), float(p["rhai_bps"]), float(p["rmin_bps"])
        self.initial_alpha, self.first_cnp_factor = float(p["initial_alpha"]), float(p["rate_on_first_cnp"])
        self.k, self.t, self.dec = int(p["alpha_period_ps"]), int(p["inc_period_ps"]), int(p["dec_period_ps"])
        self.b, self.f, self.clamp = int(p["byte_counter"]), int(p["fast_recovery"]), bool(p["clamp_target"])

    def network_defaults(self):
        d = ECN_DEFAULTS[self._params["flavour"]]
        return {"ecn": {k: d[k] for k in ("kmin_bytes", "kmax_bytes", "pmax", "base_rate_bps")},
                "cnp_mode": d["cnp_mode"], "cnp_interval_ps": d["cnp_interval_ps"]}

    def c_params(self):
        p = self._params
        return dict(g=float(p["g"]), rai_bps=float(p["rai_bps"]), rhai_bps=float(p["rhai_bps"]),
                    rmin_bps=float(p["rmin_bps"]), initial_alpha=float(p["initial_alpha"]),
                    rate_on_first_cnp=float(p["rate_on_first_cnp"]), alpha_period_ps=int(p["alpha_period_ps"]),
                    inc_period_ps=int(p["inc_period_ps"]), dec_period_ps=int(p["dec_period_ps"]),
                    byte_counter=int(p["byte_counter"]), flavour=self.flavour,
                    fast_recovery=int(p["fast_recovery"]), clamp_target=int(bool(p["clamp_target"])))

    def new_flow(self, qp):
        return SimpleNamespace(rc=0.0, rt=0.0, alpha=0.0, t_stage=0.0, bc_stage=0.0, started=0.0,
                               alpha_cnp=0.0, dec_cnp=0.0)

    # one entry point for all events, as in the C twin
    def _event(self, s, ev):
        kind = ev.event
        if kind == EV_START:
            s.rc = ev.line_rate_bps
            s.rt = ev.line_rate_bps
            s.alpha = self.initial_alpha
            s.t_stage = s.bc_stage = s.started = s.alpha_cnp = s.dec_cnp = 0.0
        elif self.flavour == 0:
            self._paper(s, ev)
        else:
            self._nvidia(s, ev)
        ev.rate_bps = s.rc
        ev.trace[0] = s.rt
        ev.trace[1] = s.alpha
        ev.trace[2] = s.t_stage
        ev.trace[3] = s.bc_stage

    on_start = on_cnp = on_timer = on_bytes = _event

    def _paper_increase(self, s, line):
        mx = s.t_stage if s.t_stage > s.bc_stage else s.bc_stage
        mn = s.t_stage if s.t_stage < s.bc_stage else s.bc_stage
        f = float(self.f)
        if mx < f:
            pass                                        # fast recovery: RT unchanged
        elif mn >= f:
            s.rt += (mn - f + 1.0) * self.rhai          # hyper increase, step x i
        else:
            s.rt += self.rai                            # additive increase
        if s.rt > line:
            s.rt = line
        s.rc = (s.rt + s.rc) / 2.0
        if s.rc > line:
            s.rc = line

    def _paper(self, s, ev):
        line = ev.line_rate_bps
        if ev.event == EV_CNP:
            s.started = 1.0
            if self.clamp or s.t_stage != 0.0 or s.bc_stage != 0.0:
                s.rt = s.rc
            s.rc = s.rc * (1.0 - s.alpha / 2.0)
            if s.rc < self.rmin:
                s.rc = self.rmin
            s.alpha = (1.0 - self.g) * s.alpha + self.g
            s.t_stage = 0.0
            s.bc_stage = 0.0
            ev.timer_at[T_INC] = ev.now_ps + self.t
            ev.timer_at[T_ALPHA] = ev.now_ps + self.k
            ev.byte_threshold = self.b
            ev.byte_reset = 1
        elif ev.event == EV_TIMER:
            if ev.timer_id == T_ALPHA:
                s.alpha = (1.0 - self.g) * s.alpha
                ev.timer_at[T_ALPHA] = ev.now_ps + self.k
            elif ev.timer_id == T_INC:
                s.t_stage += 1.0
                self._paper_increase(s, line)
                ev.timer_at[T_INC] = ev.now_ps + self.t
        else:                                           # EV_BYTES
            s.bc_stage += 1.0
            self._paper_increase(s, line)

    def _nvidia(self, s, ev):
        line = ev.line_rate_bps
        if ev.event == EV_CNP:
            s.alpha_cnp = 1.0
            s.dec_cnp = 1.0
            if s.started == 0.0:
                s.started = 1.0
                s.alpha = self.initial_alpha
                s.alpha_cnp = 0.0
                ev.timer_at[T_ALPHA] = ev.now_ps + self.k
                ev.timer_at[T_DEC] = ev.now_ps + self.dec + 1000   # +1 ns: after an alpha update
                s.rc = self.first_cnp_factor * s.rc
                s.rt = s.rc
        elif ev.event == EV_TIMER:
            if ev.timer_id == T_ALPHA:
                if s.alpha_cnp != 0.0:
                    s.alpha = (1.0 - self.g) * s.alpha + self.g
                else:
                    s.alpha = (1.0 - self.g) * s.alpha
                s.alpha_cnp = 0.0
                ev.timer_at[T_ALPHA] = ev.now_ps + self.k
            elif ev.timer_id == T_DEC:
                ev.timer_at[T_DEC] = ev.now_ps + self.dec
                if s.dec_cnp != 0.0:
                    if self.clamp or s.t_stage != 0.0:
                        s.rt = s.rc
                    s.rc = s.rc * (1.0 - s.alpha / 2.0)
                    if s.rc < self.rmin:
                        s.rc = self.rmin
                    s.t_stage = 0.0
                    s.dec_cnp = 0.0
                    ev.timer_at[T_INC] = ev.now_ps + self.t
            elif ev.timer_id == T_INC:
                ev.timer_at[T_INC] = ev.now_ps + self.t
                f = float(self.f)
                if s.t_stage == f:
                    s.rt += self.rai                     # additive increase
                elif s.t_stage > f:
                    s.rt += self.rhai                    # hyper increase (no x i)
                if s.rt > line:
                    s.rt = line
                s.rc = (s.rt + s.rc) / 2.0               # fast recovery when stage < F
                s.t_stage += 1.0
