"""The scenario's schema, gathered: ``ScenarioModel`` is every top-level field of a Scenario,
each section's model imported from the module of the mechanism it configures.

  topology         controlplane/fabric/topology.py    SingleSwitch, Dumbbell, LeafSpine, FatTree, RailClos
  workload         controlplane/transport/workload.py    Incast, Permutation, Poisson, Flows (FlowSpec), Pcap
  ecn              controlplane/fabric/ecn.py         Ecn
  pfc_params       controlplane/fabric/pfc.py         PfcParams
  qdisc            controlplane/fabric/qdisc.py       Qdisc
  transport_params controlplane/transport/multipath.py   TransportParams
  verbs            controlplane/transport/verbs.py       Verbs
  nic_profiles     controlplane/transport/nic_profile.py NicProfiles (NicProfile)
  path_params      controlplane/transport/multipath.py   PathParams (the union of each path policy's model)
  failures         controlplane/fabric/failures.py    Failure, FailureParams
  qpc              controlplane/dpu/qpc.py         Qpc
  dpu              controlplane/dpu/vswitch.py     Dpu (VSwitch, SlowPath, PolicySpec), vtax.py Tax
  --pcap-filter    controlplane/results/capture.py     CaptureFilter

Each field carries its default, unit, bounds and a one-line description; the data plane gets
every value explicitly (:func:`defaults` is what dataplane/sim.py fills a parameter it is not
given with). controlplane/config/schema.py holds the shared field types and the validation entry point.
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, WithJsonSchema

from controlplane.results.capture import CaptureFilter
from controlplane.config.schema import MAX_U32, Bool, Choice, Int, Limited, Section, Strict, Text, _real
from controlplane.fabric.ecn import Ecn
from controlplane.fabric.failures import Failure, FailureParams
from controlplane.transport.multipath import PathParams, TransportParams
from controlplane.transport.verbs import Verbs
from controlplane.transport.nic_profile import NicProfile, NicProfiles
from controlplane.fabric.pfc import PfcParams
from controlplane.fabric.qdisc import Qdisc
from controlplane.dpu.qpc import Qpc
from controlplane.fabric.topology import Dumbbell, FatTree, LeafSpine, RailClos, SingleSwitch, Topology
from controlplane.dpu.vswitch import Dpu, PolicySpec, SlowPathParams, VSwitchParams
from controlplane.dpu.vtax import Tax
from controlplane.transport.workload import FlowSpec, Flows, Incast, Pcap, Permutation, Poisson, Workload
from dataplane.sim import PATH_POLICIES

VSwitch, SlowPath = VSwitchParams, SlowPathParams        # dpu.vswitch, dpu.slow_path (vswitch.py has a SlowPath runtime class)

#: the sections whose defaults the data plane's wrapper fills in, by the path a user writes
SECTIONS: dict[str, type[BaseModel]] = {
    "ecn": Ecn, "qdisc": Qdisc, "pfc_params": PfcParams, "transport_params": TransportParams, "verbs": Verbs, "path_params": PathParams,
    "nic_profiles": NicProfiles,
    "failure_params": FailureParams, "qpc": Qpc, "dpu": Dpu, "dpu.vswitch": VSwitch, "dpu.slow_path": SlowPath,
    "dpu.policy": PolicySpec, "dpu.tax": Tax, "--pcap-filter": CaptureFilter,
}


def defaults(path: str) -> dict:
    """The defaults of the section at ``path`` (``"transport_params"``, ``"dpu.vswitch"``)."""
    return SECTIONS[path]().model_dump()


def _monitor(x: Any):
    if isinstance(x, str) and x in ("switch", "all", "none") or isinstance(x, (list, tuple)):
        return x
    raise ValueError(f"monitor_ports must be 'switch', 'all', 'none' or a list of port ids, got {x!r}")


def _adaptive(x: Any):
    if isinstance(x, (bool, np.bool_)) or x in ("bytes", "delay"):
        return x
    raise ValueError(f"adaptive_routing must be false, true, 'bytes' or 'delay', got {x!r}")


def _loss(x: Any):
    if isinstance(x, dict):
        return {k: _real(0, 1)(v) for k, v in x.items()}
    return _real(0, 1)(x)


def _ar_classes(x: Any):
    if not isinstance(x, (list, tuple)) or any(c not in ("data", "ack", "cnp") for c in x):
        raise ValueError(f"ar_classes must be a list of 'data', 'ack', 'cnp', got {x!r}")
    return list(x)


def _weights(x: Any):
    if not isinstance(x, (list, tuple)):
        raise ValueError(f"must be a list of weights, got {x!r}")
    return [_real(0, None)(w) for w in x]


class ScenarioModel(Strict):
    """Every top-level Scenario field. Defaults live on the Scenario dataclass (json_schema adds them)."""
    name: Text("the run's name")
    topology: Topology
    workload: Workload
    cc: Text("congestion control: a registered name or path/to/file.py:Class")
    cc_params: Section("the CC's parameters (the CC checks them: congestion.api check_params)")
    cc_impl: Choice(("c", "python"), "the C twin or the Python reference")
    mtu_payload: Int("payload bytes per packet (the data plane takes 64..9000; RoCE MTUs are 256..4096)", lo=64, hi=9000,
                     kind="size")
    ack_interval: Int("receiver ACKs every n-th packet", lo=1, hi=MAX_U32)
    buffer_bytes: Int("drop-tail capacity of each switch egress data queue", lo=1, kind="size")
    ecn: Ecn | None
    qdisc: Qdisc | None
    cnp_mode: Choice(("interval", "ack_echo"), "how congestion is echoed") | None
    cnp_interval_ps: Limited("cnp_interval_ps")
    rto_ps: Limited("rto_ps")
    seed: Int("random seed", lo=0)
    sample_interval_ps: Limited("sample_interval_ps")
    duration_ps: Limited("duration_ps")
    max_duration_ps: Limited("max_duration_ps")
    monitor_ports: Annotated[Any, BeforeValidator(_monitor),
                             WithJsonSchema({"anyOf": [{"enum": ["switch", "all", "none"]},
                                                       {"type": "array", "items": {"type": ["integer", "string"]}}],
                                             "description": "ports sampled in the time series"})]
    trace: Int("CC decision-trace capacity (records; 0 off)", hi=MAX_U32)
    pkt_pool: Int("packets preallocated (None: sized from the workload)", lo=1, hi=MAX_U32) | None
    isn: Int("initial PSN of every QP (24-bit)", lo=0, hi=2**24 - 1)
    ipv6: Bool("RoCEv2 over IPv6")
    dscp_data: Int("DSCP of data packets", lo=0, hi=63)
    dscp_ack: Int("DSCP of ACK/NAK packets", lo=0, hi=63)
    dscp_cnp: Int("DSCP of CNP packets", lo=0, hi=63)
    payload_pattern: Choice(("zeros", "address"), "captured payload bytes")
    pfc: Bool("lossless data priority: PFC with a shared switch buffer")
    pfc_params: PfcParams | None
    transport: Choice(("gbn", "sr", "ooo"), "RoCE go-back-N, IRN selective repeat, SRD-like out of order", "mode")
    transport_params: TransportParams | None
    verbs: Verbs | None
    nic_profiles: NicProfiles | None
    paths: Choice(tuple(PATH_POLICIES), "path policy (the data plane's registry)", "policy")
    num_paths: Int("entropies per QP when spraying", lo=1, hi=16)
    path_weights: Annotated[Any, BeforeValidator(_weights),
                            WithJsonSchema({"type": "array", "items": {"type": "number", "minimum": 0},
                                            "description": "spray_weighted: one weight per entropy"})] | None
    path_params: PathParams | None
    adaptive_routing: Annotated[Any, BeforeValidator(_adaptive),
                                WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": ["bytes", "delay"]}],
                                                "description": "adaptive routing of AR-eligible packets"})]
    ar_classes: Annotated[Any, BeforeValidator(_ar_classes),
                          WithJsonSchema({"type": "array", "items": {"enum": ["data", "ack", "cnp"]},
                                          "description": "packet classes the NIC marks AR-eligible"})]
    link_loss: Annotated[Any, BeforeValidator(_loss),
                         WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                                                   {"type": "object", "additionalProperties":
                                                    {"type": "number", "minimum": 0, "maximum": 1}}],
                                         "description": "random loss probability per packet (or per link)"})]
    failures: list[Failure] | None
    failure_params: FailureParams | None
    dpu: Dpu | None
    qpc: Qpc | None
    max_events: Limited("max_events")
    max_wall_s: Limited("max_wall_s")


# validate() takes a partial dict too (from_dict, a file): a top-level field absent is not checked
for _f in ScenarioModel.model_fields.values():
    _f.default = None
ScenarioModel.model_rebuild(force=True)


def rebuild_topology() -> None:
    """Re-derive the ``topology`` field from the registered kinds (called by
    controlplane.fabric.topology.register_topology for a kind added after this module was built)."""
    from pydantic.fields import FieldInfo
    from controlplane.fabric import topology
    f = FieldInfo.from_annotation(topology.topology_union())
    f.default = None
    ScenarioModel.model_fields["topology"] = f
    ScenarioModel.model_rebuild(force=True)

__all__ = ["ScenarioModel", "SECTIONS", "defaults", "SingleSwitch", "Dumbbell", "LeafSpine", "FatTree", "RailClos",
           "Topology", "Incast", "Permutation", "Poisson", "FlowSpec", "Flows", "Pcap", "Workload", "Ecn",
           "PfcParams", "TransportParams", "NicProfiles", "NicProfile", "PathParams", "FailureParams", "Failure", "Qpc", "PolicySpec", "VSwitch",
           "SlowPath", "VSwitchParams", "SlowPathParams", "Tax", "Dpu", "CaptureFilter"]
