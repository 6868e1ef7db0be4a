"""NIC profiles: each end of a connection may be a different NIC model, and a QP pair runs what
both ends support (docs/interop.md has the rule table and the sources of the built-in profiles).

A :class:`NicProfile` names what one NIC does: the transports it supports (in order of
preference), NACK and SACK support, its congestion control and that CC's parameters, what it does
when its CC needs HPCC's INT and the peer does not echo it (``cc_fallback``), whether it echoes INT
itself, its ACK coalescing (``ack_interval``), its CNP behaviour as notification point (NP:
``cnp_mode`` "interval" = CNP packets, "ack_echo" = ECN echoed on ACKs, "none") and as reaction
point (RP: ``cnp_react``, the NP modes it reacts to), its MTU and its retransmission timers.

The scenario section ``nic_profiles`` (:class:`NicProfiles`) assigns them to hosts: ``default``
(a built-in name, one of ``profiles``, or "scenario": the scenario's own transport, cc, MTU, ACK
interval, CNP mode and RTO), ``hosts`` ({host id: name}), ``shares`` ({name: fraction of the other
hosts}, drawn by a seed-deterministic permutation) and ``profiles`` (named profiles of the
scenario's own). Without the section (``nic_profiles`` None) nothing here runs: every QP has the
simulator-wide settings, as before profiles existed.

:func:`negotiate` is the rule table: it turns (sender profile, receiver profile) into the settings
of one QP pair (:class:`PairSettings`); :class:`Plan` applies them when the Network opens a QP pair
(the data plane's sd_set_transport and sd_set_qp_nic per end, the sender's CC on both ends).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from congestion import registry
from congestion.api import EV_CNP
from controlplane.config.schema import Bool, Choice, Int, Limited, Section, Strict, Text, section
from controlplane.config.units import ms, us
from dataplane.sim import CC_NONE, CC_PYTHON, MAX_REORDER_WINDOW, TRANSPORTS

NP_MODES = ("interval", "ack_echo", "none")      # what a receiver does with a CE mark
RP_MODES = ("interval", "ack_echo")              # what a sender may react to
#: preference when a profile lists several transports: its own order; negotiation keeps it
TRANSPORT_NEEDS = {"gbn": (), "sr": ("nack", "sack"), "ooo": ("sack",)}   # gbn without NAKs: timeout only
SCENARIO = "scenario"                            # the profile made of the scenario's own fields


def _transports(x: Any) -> list[str]:
    if not isinstance(x, (list, tuple)) or not x or any(t not in TRANSPORTS for t in x) or len(set(x)) != len(x):
        raise ValueError(f"must be a non-empty list of distinct transports from {sorted(TRANSPORTS)} "
                         f"(most preferred first), got {x!r}")
    return list(x)


def _react(x: Any) -> list[str]:
    if not isinstance(x, (list, tuple)) or any(m not in RP_MODES for m in x) or len(set(x)) != len(x):
        raise ValueError(f"must be a list of distinct NP modes from {list(RP_MODES)} (empty: reacts to none), got {x!r}")
    return list(x)


def _window(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not 64 <= x <= MAX_REORDER_WINDOW or x & (x - 1):
        raise ValueError(f"must be a power of 2 in [64, {MAX_REORDER_WINDOW}] (packets), got {x!r}")
    return int(x)


class NicProfile(Strict):
    """One NIC model (a generation of a vendor's RDMA NIC)."""
    description: Text("what NIC this models and where its values come from") = "a NIC"
    transports: Annotated[Any, BeforeValidator(_transports),
                          WithJsonSchema({"type": "array", "items": {"enum": sorted(TRANSPORTS)},
                                          "description": "transports it supports, most preferred first"})] = ["gbn"]
    nack: Bool("sends a NAK (PSN sequence error) at a gap: go-back-N's fast retransmit and IRN's NACK "
               "(false: a go-back-N NIC whose senders recover losses by timeout only; sr needs it)") = True
    sack: Bool("its ACKs/NACKs carry selective acknowledgements (sr, ooo)") = False
    cc: Text("its congestion control (a registered name, congestion/registry.py)") = "dcqcn"
    cc_params: Section("that CC's parameters (the CC checks them)") = {}
    cc_fallback: Text("the CC it runs when its cc needs INT echoed and the receiver does not echo it") | None = None
    int_echo: Bool("as receiver, copies the data packet's INT records into its ACK (HPCC needs it)") = False
    ack_interval: Int("as receiver, ACKs every n-th packet (and every AckReq)", lo=1, hi=2**32 - 1) = 1
    cnp_mode: Choice(NP_MODES, "as receiver (notification point): CNP packets, ECN echoed on ACKs, or none") = "interval"
    cnp_interval_ps: Limited("cnp_interval_ps") = None
    cnp_react: Annotated[Any, BeforeValidator(_react),
                         WithJsonSchema({"type": "array", "items": {"enum": list(RP_MODES)},
                                         "description": "as sender (reaction point): the NP modes it reacts to"})] = ["interval"]
    mtu_payload: Int("payload bytes per packet (its active MTU)", lo=64, hi=9000, kind="size") = 4096
    rto_ps: Limited("rto_ps") = ms(1)
    rto_low_ps: Limited("transport_params.rto_low_ps") = 0
    rto_low_pkts: Int("RTO_low applies while at most this many packets are out (packets)", lo=0, hi=2**32 - 1) = 3
    reorder_window: Annotated[Any, BeforeValidator(_window),
                              WithJsonSchema({"type": "integer", "minimum": 64, "maximum": MAX_REORDER_WINDOW,
                                              "description": "sr/ooo: PSNs it can hold beyond a gap (a power of 2)"})] = 2048

    @model_validator(mode="after")
    def _consistent(self):
        for t in self.transports:
            missing = [f for f in TRANSPORT_NEEDS[t] if not getattr(self, f)]
            if missing:
                raise ValueError(f"transport {t!r} needs {' and '.join(missing)} support "
                                 f"({', '.join(m + '=true' for m in missing)})")
        if "gbn" not in self.transports:
            raise ValueError("every RoCE NIC falls back to go-back-N: transports must include 'gbn'")
        return self


def _profile_name(x: Any) -> str:
    if not isinstance(x, str) or not x:
        raise ValueError(f"must be a profile name, got {x!r}")
    return x


class NicProfiles(Strict):
    """The ``nic_profiles`` section: which NIC model each host has."""
    default: Text("the profile of every host not named in hosts or drawn by shares "
                  "(a built-in name, one of profiles, or 'scenario')") = SCENARIO
    hosts: Annotated[Any, BeforeValidator(lambda x: _host_map(x)),
                     WithJsonSchema({"type": "object", "additionalProperties": {"type": "string"},
                                     "description": "{host id: profile name}"})] = {}
    shares: Annotated[Any, BeforeValidator(lambda x: _shares(x)),
                      WithJsonSchema({"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                                                  "maximum": 1},
                                      "description": "{profile name: fraction of the hosts not in hosts}"})] = {}
    profiles: Annotated[dict[str, NicProfile], Field(description="named profiles of this scenario "
                                                              "(NicProfile fields), besides the built-in ones")] = {}


def _host_map(x: Any) -> dict[int, str]:
    if not isinstance(x, dict):
        raise ValueError(f"must be a dict {{host id: profile name}}, got {x!r}")
    out = {}
    for k, v in x.items():
        try:
            h = int(k) if not isinstance(k, bool) and str(k).strip().lstrip("-").isdigit() else None
        except ValueError:
            h = None
        if h is None or h < 0:
            raise ValueError(f"key {k!r} is not a host id (an integer >= 0)")
        out[h] = _profile_name(v)
    return out


def _shares(x: Any) -> dict[str, float]:
    if not isinstance(x, dict):
        raise ValueError(f"must be a dict {{profile name: fraction}}, got {x!r}")
    out = {}
    for k, v in x.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{k}: a share must be a fraction in [0, 1], got {v!r}")
        out[_profile_name(k)] = float(v)
    if sum(out.values()) > 1 + 1e-9:
        raise ValueError(f"the shares add up to {sum(out.values()):g} > 1")
    return out


# ------------------------------------------------------------------ the built-in profiles
# Sources and assumptions: docs/interop.md ("The built-in profiles").
_CX_TIMEOUT_8 = 4096 * 2**8 * 1000       # ConnectX local ACK timeout 4.096 us x 2^t, t = 8: 1.05 ms
BUILTIN: dict[str, NicProfile] = {
    "cx4_gbn_dcqcn": NicProfile(
        description="an older RoCE NIC generation (ConnectX-4 Lx class): go-back-N only, DCQCN with CNP "
                    "packets as NP and RP, 1024-byte IB MTU (the usual MTU over 1500-byte Ethernet), no INT",
        transports=["gbn"], nack=True, sack=False, cc="dcqcn", cc_params={"flavour": "nvidia"},
        int_echo=False, ack_interval=1, cnp_mode="interval", cnp_interval_ps=us(4), cnp_react=["interval"],
        mtu_payload=1024,
        rto_ps=_CX_TIMEOUT_8),
    "cx6_sr_dcqcn": NicProfile(
        description="a newer NVIDIA-class NIC with selective repeat (ConnectX-6 Dx / 7 class): sr (gbn "
                    "fallback), DCQCN with CNP packets, 4096-byte MTU, no INT echo",
        transports=["sr", "gbn"], nack=True, sack=True, cc="dcqcn", cc_params={"flavour": "nvidia"},
        int_echo=False, ack_interval=1, cnp_mode="interval", cnp_interval_ps=us(4), cnp_react=["interval"],
        mtu_payload=4096,
        rto_ps=_CX_TIMEOUT_8, rto_low_ps=us(100), rto_low_pkts=3),
    "irn_sr_hpcc": NicProfile(
        description="an IRN-style NIC with HPCC (IRN, SIGCOMM'18; HPCC, SIGCOMM'19): selective repeat with "
                    "SACK, RTO_high 320 us / RTO_low 100 us (N = 3), HPCC with INT echoed on its ACKs, "
                    "ECN echoed on ACKs as NP, reacts to CNPs and ACK echo (DCQCN as fallback CC)",
        transports=["sr", "gbn"], nack=True, sack=True, cc="hpcc", cc_params={}, cc_fallback="dcqcn",
        int_echo=True, ack_interval=1, cnp_mode="ack_echo", cnp_react=["interval", "ack_echo"],
        mtu_payload=4096, rto_ps=us(320), rto_low_ps=us(100), rto_low_pkts=3),
    "uec_ooo_nscc": NicProfile(
        description="a UEC-style NIC: out-of-order placement with SACK (selective repeat and go-back-N "
                    "as fallbacks), NSCC (ECN echoed on ACKs plus delay), 4096-byte MTU, no INT",
        transports=["ooo", "sr", "gbn"], nack=True, sack=True, cc="nscc", cc_params={},
        int_echo=False, ack_interval=1, cnp_mode="ack_echo", cnp_react=["ack_echo"], mtu_payload=4096,
        rto_ps=us(320), rto_low_ps=us(100), rto_low_pkts=3),
}


def scenario_profile(sc, cnp_mode: str, cnp_interval_ps: int | None = None) -> NicProfile:
    """The profile of a host that follows the scenario's own fields (``default: scenario``):
    exactly what every QP runs without nic_profiles."""
    tp = section(_transport_params_model(), sc.transport_params, "transport_params").model_dump()
    transports = [sc.transport] if sc.transport == "gbn" else [sc.transport, "gbn"]
    return NicProfile(description="the scenario's own transport, cc, MTU, ACK interval, CNP mode and RTO",
                      transports=transports, nack=True, sack=sc.transport != "gbn", cc=sc.cc,
                      cc_params=dict(sc.cc_params), int_echo=True, ack_interval=sc.ack_interval, cnp_mode=cnp_mode,
                      cnp_interval_ps=cnp_interval_ps,
                      cnp_react=list(RP_MODES), mtu_payload=sc.mtu_payload, rto_ps=sc.rto_ps,
                      rto_low_ps=tp["rto_low_ps"], rto_low_pkts=tp["rto_low_pkts"], reorder_window=tp["reorder_window"])


def _transport_params_model():
    from controlplane.transport.multipath import TransportParams
    return TransportParams


# ------------------------------------------------------------------ the rule table
@dataclass(frozen=True)
class PairSettings:
    """What a QP pair from a ``sender`` NIC to a ``receiver`` NIC runs (docs/interop.md)."""
    transport: str                 # R1: the sender's most preferred transport the receiver supports
    mtu_payload: int               # R2: the smaller MTU
    ack_interval: int              # R3: the receiver's ACK coalescing
    cnp_mode: str                  # R4: the receiver's NP mode as it acts ("none" when its ECN echo is not read)
    cnp_reacts: bool               # R4: the sender's CC sees that feedback
    cnp_interval_ps: int | None    # R4: the receiver's gap between CNPs (None: the simulator-wide one)
    cc: str                        # R5/R6: the sender's CC (its fallback when INT is not echoed)
    cc_params: dict = field(default_factory=dict)
    rto_ps: int = 0                # R7: the sender's timers
    rto_low_ps: int = 0
    rto_low_pkts: int = 0
    reorder_window: int = 0        # R8: the smaller reorder window (sr/ooo)
    nak: bool = True               # R9: the receiver NAKs a gap (gbn); else the sender's timeout alone recovers
    rules: tuple = ()              # the rules that changed something against the sender's own profile

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rules"] = list(self.rules)
        return d


def needs_int(cc_name: str, cc_params: dict) -> bool:
    """Whether a CC needs INT echoed on the ACKs (its network_defaults say "int": HPCC)."""
    return bool(registry.create(cc_name, **cc_params).network_defaults().get("int"))


def negotiate(sender: NicProfile, receiver: NicProfile) -> PairSettings:
    """The rule table (docs/interop.md): the settings of a QP pair whose data goes from a NIC of
    profile ``sender`` to one of profile ``receiver``."""
    rules = []
    # R1 transport: the sender's most preferred one the receiver also runs (gbn at worst: every
    # profile has it). ooo needs both ends; else sr if both have it; else go-back-N.
    transport = next(t for t in sender.transports if t in receiver.transports)
    if transport != sender.transports[0]:
        rules.append(f"transport {sender.transports[0]}->{transport}")
    # R2 path MTU: the smaller active MTU
    mtu = min(sender.mtu_payload, receiver.mtu_payload)
    if mtu != sender.mtu_payload:
        rules.append(f"mtu {sender.mtu_payload}->{mtu}")
    # R3 ACK coalescing: the receiver generates the ACKs
    if receiver.ack_interval != sender.ack_interval:
        rules.append(f"ack_interval {receiver.ack_interval} (receiver's)")
    # R5/R6 CC: the sender's own, unless it needs INT the receiver does not echo
    cc, params = sender.cc, dict(sender.cc_params)
    if needs_int(cc, params) and not receiver.int_echo:
        if sender.cc_fallback is None:
            raise ValueError(f"a {cc} sender needs INT echoed by the receiver, whose profile has int_echo=false, "
                             f"and the sender's profile names no cc_fallback (HPCC would see no INT and never "
                             f"reduce its rate)")
        cc, params = sender.cc_fallback, {}
        rules.append(f"cc {sender.cc}->{cc} (no INT echo)")
    # R4 CNP: the receiver's NP feedback counts only if the sender's RP reacts to that kind
    np_mode = receiver.cnp_mode
    reacts = np_mode != "none" and np_mode in sender.cnp_react
    if np_mode != "none" and not reacts:
        rules.append(f"cnp {np_mode} ignored (sender reacts to {sender.cnp_react or 'none'})")
        if np_mode == "ack_echo":
            np_mode = "none"        # an ECN-echo bit the sender does not read: no feedback at all
    # R8 reorder window: the receiver holds it, the sender must not outrun it
    window = min(sender.reorder_window, receiver.reorder_window)
    # R9 NAK: the receiver sends it (go-back-N; sr needs NAK support at both ends, R1 saw to that)
    if not receiver.nack and transport == "gbn":
        rules.append("no NAK (receiver): losses recovered by the sender's timeout")
    return PairSettings(transport=transport, mtu_payload=mtu, ack_interval=receiver.ack_interval, cnp_mode=np_mode,
                        cnp_reacts=reacts, cnp_interval_ps=receiver.cnp_interval_ps, cc=cc, cc_params=params, rto_ps=sender.rto_ps,
                        rto_low_ps=sender.rto_low_ps if transport != "gbn" else 0, rto_low_pkts=sender.rto_low_pkts,
                        reorder_window=window, nak=receiver.nack or transport != "gbn", rules=tuple(rules))


def assign(spec: NicProfiles, num_hosts: int, seed: int) -> list[str]:
    """The profile name of each host: ``hosts`` first, then each share of the others (in the
    order given, round(share x their count) hosts each) by a permutation drawn from the seed, the
    rest ``default``."""
    names = [spec.default] * num_hosts
    for h, name in spec.hosts.items():
        if h >= num_hosts:
            raise ValueError(f"nic_profiles.hosts: {h} is not a host (hosts are 0..{num_hosts - 1})")
        names[h] = name
    rest = [h for h in range(num_hosts) if h not in spec.hosts]
    order = np.random.default_rng([seed, 16]).permutation(len(rest))
    at = 0
    for name, share in spec.shares.items():
        n = int(round(share * len(rest)))
        for i in order[at:at + n]:
            names[rest[int(i)]] = name
        at += n
    return names


class Plan:
    """The NIC profiles of a built Network: each host's profile, and per QP pair the negotiated
    settings applied when the pair is opened (:meth:`open`)."""

    def __init__(self, net, given, cnp_mode: str, cnp_interval_ps: int | None = None):
        sc = net.scenario
        self.spec = spec = section(NicProfiles, given, "nic_profiles")
        clash = sorted(set(spec.profiles) & (set(BUILTIN) | {SCENARIO}))
        if clash:
            raise ValueError(f"nic_profiles.profiles: {clash} name built-in profiles; choose other names")
        self.profiles: dict[str, NicProfile] = {**BUILTIN, **spec.profiles,
                                                SCENARIO: scenario_profile(sc, cnp_mode, cnp_interval_ps)}
        for where, name in [("default", spec.default)] + [(f"hosts.{h}", n) for h, n in spec.hosts.items()] + \
                [(f"shares.{n}", n) for n in spec.shares]:
            if name not in self.profiles:
                raise ValueError(f"nic_profiles.{where}: unknown profile {name!r}; known: {sorted(self.profiles)}")
        self.host_profile = assign(spec, net.fabric.num_hosts, sc.seed)
        self._pairs: dict[tuple[str, str], PairSettings] = {}
        self._ccs: dict[str, tuple] = {}           # cc key -> (cc object, kind, param block | None, mask, ack_batch)
        used = sorted(set(self.host_profile))
        for a in used:                             # every pair the fabric may open: errors at build time
            for b in used:
                self.pair(a, b)
        self.int_needed = any(needs_int(p.cc, p.cc_params) for p in self._pairs.values())
        self.max_mtu = max(p.mtu_payload for p in self._pairs.values())

    def pair(self, src_profile: str, dst_profile: str) -> PairSettings:
        key = (src_profile, dst_profile)
        if key not in self._pairs:
            try:
                self._pairs[key] = negotiate(self.profiles[src_profile], self.profiles[dst_profile])
            except ValueError as e:
                raise ValueError(f"nic_profiles: a pair from {src_profile} to {dst_profile}: {e}") from None
        return self._pairs[key]

    def settings(self, src: int, dst: int) -> PairSettings:
        return self.pair(self.host_profile[src], self.host_profile[dst])

    def bind(self, facts: dict) -> None:
        """Create and bind (fabric facts) every CC the pairs run, before the data plane exists."""
        for s in self._pairs.values():
            key = _cc_key(s.cc, s.cc_params)
            if key not in self._ccs:
                cc = registry.create(s.cc, **s.cc_params)
                cc.bind({**facts, "mtu_payload": s.mtu_payload})
                self._ccs[key] = [cc, None, None, cc.event_mask(), cc.ack_batch]

    def install_ccs(self, sim, cc_impl: str) -> None:
        """The C parameter block of each CC (one per distinct CC and parameters)."""
        for entry in self._ccs.values():
            cc = entry[0]
            if cc.c_kind == CC_NONE:
                entry[1], entry[2] = CC_NONE, 0
            elif cc_impl == "python" or cc.c_kind is None:
                entry[1], entry[2] = CC_PYTHON, 0
            else:
                entry[1], entry[2] = cc.c_kind, sim.add_cc_params(cc.c_kind, cc.c_params())

    def cc_of(self, s: PairSettings):
        """(cc object, kind, param block, event mask, ack batch) of a pair's sender. A sender whose
        RP does not react to the receiver's CNP packets does not get the CNP events (the packets
        still cross the fabric)."""
        cc, kind, param, mask, batch = self._ccs[_cc_key(s.cc, s.cc_params)]
        if not s.cnp_reacts:
            mask &= ~(1 << EV_CNP)
        return cc, kind, param, mask, batch

    def apply(self, sim, qp: int, src: int, s: PairSettings) -> None:
        """The NIC settings of both ends of a pair just created (sender qp at host src)."""
        own = self.profiles[self.host_profile[src]]
        peer = self.profiles[self.host_profile[int(sim.qps[qp + 1]["host"])]]
        back = self.pair(self.host_profile[int(sim.qps[qp + 1]["host"])], self.host_profile[src])
        # the sender end: its own timers; as a receiver of reverse traffic, the reverse pair's rules
        sim.set_qp_nic(qp, mtu_payload=s.mtu_payload, ack_interval=own.ack_interval, cnp_mode=back.cnp_mode,
                       cnp_interval_ps=back.cnp_interval_ps, rto_ps=s.rto_ps)
        sim.set_qp_nic(qp + 1, mtu_payload=s.mtu_payload, ack_interval=s.ack_interval, cnp_mode=s.cnp_mode,
                       cnp_interval_ps=s.cnp_interval_ps, rto_ps=peer.rto_ps)
        if not s.nak:
            sim.set_qp_nak(qp + 1, False)        # R9: the receiver end sends no NAK
        if not back.nak:
            sim.set_qp_nak(qp, False)            # ... and the sender end, as receiver of reverse data

    def record(self) -> dict:
        """What config.json records (resolved.nic_profiles)."""
        used = sorted(set(self.host_profile))
        return {"hosts": list(self.host_profile),
                "profiles": {n: self.profiles[n].model_dump() for n in used},
                "pairs": {f"{a}->{b}": self.pair(a, b).as_dict() for a in used for b in used}}


def _cc_key(name: str, params: dict) -> str:
    return name + json.dumps(params, sort_keys=True, default=str)


__all__ = ["NicProfile", "NicProfiles", "PairSettings", "BUILTIN", "SCENARIO", "negotiate", "assign", "Plan",
           "scenario_profile", "needs_int"]
