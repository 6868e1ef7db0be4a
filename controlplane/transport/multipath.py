"""Multipath policy of the control plane: which transport each QP runs, which entropies (UDP
source ports) its data packets may carry, whether the NIC marks them for adaptive routing, and
random link loss. The per-packet choice is in C (native/paths.c, native/switch.c); this module
only decides the sets and validates them.

Scenario fields it reads (controlplane/run/scenario.py):
  transport         "gbn" | "sr" | "ooo"
  transport_params  reorder_window (packets, power of 2; default 2048), rto_low_ps / rto_low_pkts
                    (IRN two-level RTO: defaults 100 us while <= 3 packets are out, sr/ooo only),
                    bdp_cap (packets in flight; "auto" = ceil(BDP / MTU) on the longest path, as
                    IRN's BDP-FC; default 0 = off): :class:`TransportParams`
  paths             a registered path policy (native/paths.c path_table; dataplane.sim.PATH_POLICIES):
                    "ecmp" | "spray_rr" | "spray_random" | "spray_weighted" | "reps" | "flowlet" |
                    "plb" | "clove" (docs/path_policies.md)
  num_paths         entropies per QP for the spraying policies (default 8, at most 16)
  path_weights      spray_weighted: one integer weight per entropy
  path_params       the parameters of the policies, each declared by its policy's config model
                    below (a :class:`PathPolicy`); :class:`PathParams` is their union:
                    flowlet_gap_ps (default 100 us; flowlet, clove), plb_cong_thresh (0.5),
                    plb_rehash_rounds (12), plb_suspend_ps (60 s): the Linux defaults
                    (net/ipv4/tcp_plb.c; sysctls tcp_plb_cong_thresh 128/256, tcp_plb_rehash_rounds
                    12, tcp_plb_suspend_rto_sec 60, set in tcp_sk_init)
  adaptive_routing  True or "bytes": data packets are AR-eligible and every switch with more than
                    one candidate egress sends them to the one with the fewest queued bytes;
                    "delay": the least queued bytes / link rate
  ar_classes        packet classes the NICs mark AR-eligible (default ["data"]; "ack", "cnp")
  link_loss         random loss probability per packet on every link direction, or
                    {link index: probability} for some links (both directions)
"""
from __future__ import annotations

import math
import typing
import warnings
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator, WithJsonSchema, create_model

from controlplane.config.schema import Int, Limited, Num, Strict, _integer, section
from dataplane.sim import (FEEDBACK_POLICIES, MAX_REORDER_WINDOW, ONE_ENTROPY_POLICIES, PATH_POLICIES, TRANSPORTS,
                           WEIGHTED_POLICIES, path_policy_param_kinds, path_policy_params)
SPORT_BASE = 49152


def _reorder_window(x: Any) -> int:
    v = _integer(None, 64, MAX_REORDER_WINDOW)(x)
    if v & (v - 1):
        raise ValueError(f"must be a power of 2 in [64, {MAX_REORDER_WINDOW}] (packets), got {x!r}")
    return v


class TransportParams(Strict):
    """The sr/ooo transports (IRN, SIGCOMM'18): reorder window, two-level RTO, BDP cap."""
    reorder_window: Annotated[Any, BeforeValidator(_reorder_window),
                              WithJsonSchema({"type": "integer", "minimum": 64, "maximum": MAX_REORDER_WINDOW,
                                              "description": "receiver reorder window, packets (a power of 2)"})] = 2048
    rto_low_ps: Limited("transport_params.rto_low_ps") = 100_000_000        # IRN's RTO_low: 100 us
    rto_low_pkts: Int("RTO_low applies while at most this many packets are out (packets)", lo=0,
                      hi=2**32 - 1) = 3
    bdp_cap: Annotated[Any, BeforeValidator(lambda x: x if x == "auto" else _integer(None, 0, 2**32 - 1)(x)),
                       WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"const": "auto"}],
                                       "description": "packets in flight at most (0: off; 'auto': "
                                                      "ceil(BDP / MTU) on the longest path, IRN's BDP-FC)"})] = 0


# ------------------------------------------------------------------ path policies' config models
class PathPolicy(Strict):
    """The config model of a path policy (its C provider: native/path_*.c). A subclass names its
    policy (``policy = "plb"``) and declares the ``path_params`` keys the provider reads, with their
    defaults, units and bounds; defining the class registers it (:data:`POLICY_MODELS`). ``sprays``:
    whether consecutive packets of one QP may take different paths (HPCC's per-hop INT state
    assumes they do not)."""
    policy: ClassVar[str]
    sprays: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        if "policy" in cls.__dict__:
            POLICY_MODELS[cls.policy] = cls


POLICY_MODELS: dict[str, type[PathPolicy]] = {}


class Ecmp(PathPolicy):
    """ecmp: the QP's one entropy; switches hash it (native/paths.c)."""
    policy = "ecmp"
    sprays = False


class SprayRr(PathPolicy):
    """spray_rr: round robin over the entropies, packet by packet (native/path_spray.c)."""
    policy = "spray_rr"


class SprayRandom(PathPolicy):
    """spray_random: a uniformly random entropy per packet (native/path_spray.c)."""
    policy = "spray_random"


class SprayWeighted(PathPolicy):
    """spray_weighted: a random entropy per packet, drawn by the scenario's path_weights (native/path_spray.c)."""
    policy = "spray_weighted"


class Reps(PathPolicy):
    """reps: recycle entropies whose ACKs came back unmarked (Bonato et al. 2024; native/path_reps.c)."""
    policy = "reps"


class Flowlet(PathPolicy):
    """flowlet: a new random path after an idle gap (LetFlow, NSDI'17; native/path_flowlet.c)."""
    policy = "flowlet"
    sprays = False
    flowlet_gap_ps: Limited("path_params.flowlet_gap_ps") = 100_000_000               # 100 us


class Plb(PathPolicy):
    """plb: repath after congested rounds (Qureshi et al. SIGCOMM'22; Linux net/ipv4/tcp_plb.c; native/path_plb.c)."""
    policy = "plb"
    sprays = False
    plb_cong_thresh: Num("PLB: fraction of CE-marked rounds that counts as congested, in [0, 1]",
                         lo=0, hi=1) = 0.5                                            # tcp_plb_cong_thresh 128/256
    plb_rehash_rounds: Int("PLB: congested rounds before re-pathing (rounds)", lo=1, hi=2**32 - 1) = 12
    plb_suspend_ps: Limited("path_params.plb_suspend_ps") = 60 * 10**12               # tcp_plb_suspend_rto_sec 60 s


class Clove(PathPolicy):
    """clove: Clove-ECN (Katta et al. CoNEXT'17): flowlets by weighted round robin, a path's weight
    cut by a third when its ACKs echo CE (native/path_clove.c)."""
    policy = "clove"
    sprays = False
    flowlet_gap_ps: Limited("path_params.flowlet_gap_ps") = 100_000_000               # as flowlet's


def _schema_kind(prop: dict) -> str:
    """"int" or "real": a field's JSON-schema type, as the C providers' SD_PATH_PARAM_* say it."""
    types = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", [])}
    return "int" if "integer" in types else "real"


def _union(models: dict[str, type[PathPolicy]]) -> type[Strict]:
    """The ``path_params`` section: every registered policy's fields (a key two policies share,
    such as flowlet_gap_ps, must be declared alike). Each model's fields must be what its C
    provider reads (sd_path_param_name), so a model and its provider cannot drift apart."""
    fields: dict[str, tuple] = {}
    for name, model in models.items():
        if name not in PATH_POLICIES:
            raise RuntimeError(f"path policy model {model.__name__}: no C provider named {name!r} (native/paths.c)")
        if tuple(model.model_fields) != path_policy_params(name):
            raise RuntimeError(f"path policy {name}: the model {model.__name__} declares {tuple(model.model_fields)}, "
                               f"its C provider reads {path_policy_params(name)}")
        hints = typing.get_type_hints(model, include_extras=True)
        schema = model.model_json_schema()["properties"] if model.model_fields else {}
        for key, kind in path_policy_param_kinds(name).items():
            if _schema_kind(schema[key]) != kind:
                raise RuntimeError(f"path policy {name}: the model {model.__name__} declares {key} as "
                                   f"{_schema_kind(schema[key])}, its C provider as {kind}")
        for key, info in model.model_fields.items():
            if key in fields and fields[key][2] != schema[key]:
                raise RuntimeError(f"path_params.{key}: declared differently by two path policies")
            fields.setdefault(key, (hints[key], info.default, schema[key]))
    missing = set(PATH_POLICIES) - set(models)
    if missing:
        raise RuntimeError(f"path policies without a config model (controlplane/transport/multipath.py): {sorted(missing)}")
    return create_model("PathParams", __base__=Strict, __doc__="The path_params section: the union of the path "
                        "policies' parameters (each policy's model says which it reads).",
                        **{k: (t, d) for k, (t, d, _) in fields.items()})


PathParams = _union(POLICY_MODELS)


def resolve(sc, max_base_rtt_ps: int, host_rate_bps: int) -> dict:
    """Check the multipath fields of a scenario and fill in defaults; returns what config.json records."""
    if not isinstance(sc.transport, str) or sc.transport not in TRANSPORTS:
        raise ValueError(f"transport: unknown mode {sc.transport!r}; known: {sorted(TRANSPORTS)}")
    if not isinstance(sc.paths, str) or sc.paths not in PATH_POLICIES:
        raise ValueError(f"paths: unknown policy {sc.paths!r}; known: {sorted(PATH_POLICIES)}")
    tp = section(TransportParams, sc.transport_params, "transport_params").model_dump()
    if tp["bdp_cap"] == "auto":
        tp["bdp_cap"] = math.ceil(max_base_rtt_ps * host_rate_bps / 8e12 / sc.mtu_payload)
    if tp["bdp_cap"] >= 2**32:
        raise ValueError(f"transport_params.bdp_cap: 'auto' gives {tp['bdp_cap']} packets, more than 2^32 - 1")
    if sc.transport == "gbn":
        tp = {}
    n = 1 if sc.paths in ONE_ENTROPY_POLICIES else sc.num_paths
    if not _is_int(n) or not 1 <= n <= 16:
        raise ValueError(f"num_paths must be an integer in [1, 16], got {sc.num_paths!r}")
    weights = sc.path_weights
    if sc.paths in WEIGHTED_POLICIES:
        if not isinstance(weights, (list, tuple)) or len(weights) != n:
            raise ValueError(f"path_weights: {sc.paths} needs num_paths={n} weights, got {weights!r}")
        for i, w in enumerate(weights):
            if not _is_int(w) or not 1 <= w <= 1_000_000:
                raise ValueError(f"path_weights[{i}] must be an integer in [1, 10^6], got {w!r}")
    elif weights is not None:
        raise ValueError(f"path_weights is only used with paths={' or '.join(repr(p) for p in WEIGHTED_POLICIES)}")
    pp = section(PathParams, sc.path_params, "path_params").model_dump()
    if not isinstance(sc.adaptive_routing, (bool, str)) or sc.adaptive_routing not in (False, True, "bytes", "delay"):
        raise ValueError(f"adaptive_routing must be false, true, 'bytes' or 'delay', got {sc.adaptive_routing!r}")
    if not isinstance(sc.ar_classes, (list, tuple)) or not all(isinstance(c, str) for c in sc.ar_classes) \
            or set(sc.ar_classes) - {"data", "ack", "cnp"}:
        raise ValueError(f"ar_classes must be a list of 'data', 'ack', 'cnp', got {sc.ar_classes!r}")
    losses = sc.link_loss.values() if isinstance(sc.link_loss, dict) else [sc.link_loss]
    for p in losses:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"link_loss must be a probability in [0, 1] (or a dict of them), got {p!r}")
    if isinstance(sc.link_loss, dict):
        for link in sc.link_loss:
            if isinstance(link, bool) or not (_is_int(link) or isinstance(link, str) and link.isdigit()):
                raise ValueError(f"link_loss: keys must be link indices, got {link!r}")
    if sc.cc == "hpcc" and (POLICY_MODELS[sc.paths].sprays or sc.adaptive_routing):
        warnings.warn("hpcc with per-packet spraying or adaptive routing: HPCC compares each INT hop with the "
                      "previous ACK's hop of the same index, which is another port once packets take different "
                      "paths; its window collapses (per-path INT state is not modelled)", stacklevel=2)
    return {"transport": sc.transport, "transport_params": tp, "paths": sc.paths, "num_paths": n,
            "path_params": pp if sc.paths in FEEDBACK_POLICIES else {}}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def entropies(rng: np.random.Generator, first: int, n: int) -> np.ndarray:
    """n distinct UDP source ports: the QP's own first, then n-1 more drawn from the dynamic range."""
    out = [int(first)]
    while len(out) < n:
        e = int(rng.integers(SPORT_BASE, 65536))
        if e not in out:
            out.append(e)
    return np.array(out, dtype=np.int64)


def install_qp(net, qp: int, sport: int, transport: str | None = None, tp: dict | None = None) -> None:
    """Transport and path set of a QP pair just created (both ends: ACKs keep the QP's sport).
    ``transport`` and ``tp`` (transport_params): what the pair's NIC profiles negotiated
    (controlplane/transport/nic_profile.py), else the scenario's."""
    sc, sim, r = net.scenario, net.sim, net.resolved["multipath"]
    if transport is None:
        transport, tp = sc.transport, r["transport_params"]
    if transport != "gbn":
        sim.set_transport(qp, transport, tp["reorder_window"], tp["rto_low_ps"], tp["rto_low_pkts"], tp["bdp_cap"])
    if sc.adaptive_routing:
        sim.set_ar_classes(qp, sc.ar_classes)
        sim.set_ar_classes(qp + 1, sc.ar_classes)      # the receiver end sends the ACKs and CNPs
    if sc.paths != "ecmp" or sc.adaptive_routing:
        e = entropies(net.path_rng, sport, r["num_paths"])
        if sc.paths in FEEDBACK_POLICIES:             # every parameter explicit, before the policy that reads them
            pp = r["path_params"]
            sim.set_path_params(qp, **pp)
        sim.set_paths(qp, sc.paths, e, sc.path_weights, ar_classes=sc.ar_classes if sc.adaptive_routing else ())


def telemetry(net) -> dict[str, np.ndarray]:
    """Per-entropy telemetry of the sender QPs, shape (QPs, 16) each: entropy, packets sent, ACKs,
    ECN fraction of those ACKs, last RTT (ps, -1 none), timeouts; plus repaths per QP. Slots past a QP's
    npaths are zero. What a control-plane policy reads at its ticks to reweight or remove paths."""
    sim = net.sim
    qps = net.sender_qps
    st = sim.path_states
    if len(st) == 0:
        z = np.zeros((len(qps), 16))
        return {"entropy": z.astype(np.int64), "sent": z.astype(np.int64), "acks": z.astype(np.int64),
                "ecn_fraction": z, "rtt_ps": z.astype(np.int64) - 1, "timeouts": z.astype(np.int64),
                "repaths": np.zeros(len(qps), np.int64)}
    s = st[qps]
    acks = s["acks"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(acks > 0, s["ce"] / np.maximum(acks, 1), 0.0)
    return {"entropy": s["entropy"].astype(np.int64), "sent": s["sent"].astype(np.int64), "acks": acks,
            "ecn_fraction": frac, "rtt_ps": s["rtt_ps"].astype(np.int64), "timeouts": s["timeouts"].astype(np.int64),
            "repaths": s["repaths"].astype(np.int64)}


def install_fabric(net) -> None:
    """Adaptive routing on every switch that has a choice; random loss on every link."""
    sc, fab, sim = net.scenario, net.fabric, net.sim
    if sc.adaptive_routing:
        on = []
        for node in range(fab.num_hosts, fab.num_nodes):
            sets = net.routes.row(node - fab.num_hosts)
            widths = np.diff(net.routes.set_offsets)[sets[sets != 0xFFFFFFFF]]
            if widths.size and widths.max() > 1:
                sim.set_adaptive_routing(node, sc.adaptive_routing)
                on.append(node)
        if not on:
            raise ValueError("adaptive_routing: no switch of this fabric has more than one candidate egress")
        net.resolved["multipath"]["ar_switches"] = on
    if isinstance(sc.link_loss, dict):
        for link, p in sc.link_loss.items():
            link = int(link)                          # JSON keys of a re-run config are strings
            if not 0 <= link < len(fab.links):
                raise ValueError(f"link_loss: link {link} does not exist (links are 0..{len(fab.links) - 1})")
            sim.set_port_loss(2 * link, float(p))
            sim.set_port_loss(2 * link + 1, float(p))
    elif sc.link_loss:
        for port in range(fab.num_ports):
            sim.set_port_loss(port, float(sc.link_loss))
