"""The declared schema of a scenario: one pydantic model per section, one validation entry point.

Everything a user can set on a :class:`controlplane.scenario.Scenario` (from Python, a JSON/TOML
file given to ``softdpu run --config`` or ``--set``) is checked here before anything is built:

- strict types: a boolean is ``True``/``False`` (never the string ``"no"``), a count is an integer
  (an integral float such as ``1e6`` is taken as the integer), NaN and infinities are refused;
- units: a field whose name ends in ``_bps``, ``_bytes`` or ``_ps`` also takes a unit string
  (``"100G"``, ``"16MiB"``, ``"500ns"``), converted exactly by :mod:`controlplane.units`
  (``"1.5ps"`` is refused, never rounded);
- bounds: the time and budget fields take their range from :mod:`controlplane.limits` (its table
  stays the one place that says why a floor is where it is); other quantities are >= 0 or > 0;
- names: an unknown key is refused with the closest valid names at that place.

:func:`validate` returns the scenario dict with the values normalized (``"4MB"`` -> 4000000,
``1e9`` -> 1000000000) and only the keys the user gave (defaults stay where they live: the
Scenario dataclass and each mechanism's ``*_DEFAULTS``), or raises one ValueError whose message
has one line per problem, each starting with the field's path as the user wrote it
(``topology.num_hosts``, ``failures[1].down_ps``, ``dpu.policy.proactive``).

Checks that need the built fabric (a host id below the host count, senders < hosts, a link index)
stay in the code that builds it; each CC checks its own parameters (congestion.api check_params),
and the DPU spec's detail is checked by controlplane/vswitch.py check_spec.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, WithJsonSchema

from controlplane import limits
from controlplane.units import BASE_UNIT, parse_quantity, unit_kind
from controlplane.values import closest

MAX_TIME_PS = limits.MAX_TIME_PS
_EXAMPLES = {"rate": "100G, 100Gbps, 25Mbps", "size": "16MB, 16MiB, 4096", "time": "500ns, 1us, 2ms"}


# ---------------------------------------------------------------------------------- value types
def _int_of(x: Any) -> int | None:
    """An int for an int, a numpy integer or a finite integral float; None otherwise (bools too)."""
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (Integral, np.integer)):
        return int(x)
    if isinstance(x, Real):
        f = float(x)
        if math.isfinite(f) and f == math.floor(f):
            return int(f)
    return None


def _integer(kind: str | None, lo: float | None, hi: float | None, zero_off: bool = False, lim=None):
    """A validator for an integer field, with units when ``kind`` is 'rate', 'size' or 'time'."""
    noun = {"rate": "a rate in bit/s", "size": "a size in bytes", "time": "a time in ps", None: "an integer"}[kind]

    def check(x: Any) -> int:
        given = x
        if isinstance(x, str) and kind is not None:
            try:
                x = parse_quantity(x, kind)
            except ValueError as e:
                raise ValueError(f"must be {noun} (e.g. {_EXAMPLES[kind]}), got {given!r}: {e}") from None
        if lim is not None:                  # the limits table: its wording, its floor's reason
            return limits.check_value("", x, lim) if not (isinstance(x, str)) else _refuse_text(x, lim)
        v = _int_of(x)
        if v is None:
            what = " (a whole number)" if isinstance(x, float) and math.isfinite(x) else ""
            unit = f" or a string with a unit such as {_EXAMPLES[kind]}" if kind else ""
            raise ValueError(f"must be {noun}{what}{unit}, got {given!r}")
        if zero_off and v == 0:
            return v
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            def num(b) -> str:              # 4294967295, not 4.29497e+09
                return str(int(b)) if float(b).is_integer() else f"{b:g}"
            if lo is not None and hi is not None:
                rule = f"in [{num(lo)}, {num(hi)}]"
            elif hi is not None:
                rule = f"<= {num(hi)}"
            else:
                rule = "a positive integer (>= 1)" if lo == 1 else f">= {num(lo)}"
            raise ValueError(f"must be {rule}{' (or 0: off)' if zero_off else ''}, got {given!r}")
        return v
    return check


def _refuse_text(x: str, lim) -> int:
    return limits.check_value("", x, lim)      # a string where no unit applies: refused in its words


def _json_int(kind: str | None, lo, hi, description: str) -> dict:
    s: dict = {"type": "integer", "description": description}
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    if kind is not None:
        s = {"anyOf": [s, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*[A-Za-zµ/]*\s*$"}],
             "description": f"{description} ({BASE_UNIT[kind]}; also a string with a unit: {_EXAMPLES[kind]})"}
    return s


#: the largest size in bytes any field takes (1 PB: beyond any buffer or message; the data plane's
#: byte counters are 64-bit, and ECN thresholds are scaled by the port rate, so 2^64 is no bound)
MAX_SIZE_BYTES = 10**15
#: the data plane's 32-bit counts (ack_interval, pkt_pool, trace capacity)
MAX_U32 = 2**32 - 1


def Int(description: str, lo: float | None = 0, hi: float | None = None, *, kind: str | None = None,
        zero_off: bool = False):
    """An integer field (a count, or a rate/size/time when ``kind`` is given); a size is at most
    MAX_SIZE_BYTES unless ``hi`` says otherwise."""
    if kind == "size" and hi is None:
        hi = MAX_SIZE_BYTES
    return Annotated[Any, BeforeValidator(_integer(kind, lo, hi, zero_off)),
                     WithJsonSchema(_json_int(kind, lo, hi, description))]


def Limited(path: str):
    """A time or budget field whose rule is the row ``path`` of controlplane/limits.py."""
    lim = limits.TABLE[path]
    kind = "time" if lim.kind == "time" else None
    if lim.kind == "seconds":
        def check(x):
            return limits.check_value("", x, lim)
        schema = {"type": "number", "minimum": 0, "maximum": lim.max, "description": f"{lim.meaning} ({lim.unit})"}
    else:
        check = _integer(kind, lim.min, lim.max, lim.zero_off, lim)
        schema = _json_int(kind, 0 if lim.zero_off else lim.min, lim.max, lim.meaning if kind else f"{lim.meaning} ({lim.unit})")
        if lim.kind == "time":
            base = check

            def check(x, base=base):       # a time with a unit, then the table's range
                given = x
                if isinstance(x, str) and x.strip().lower() not in ("none", "null"):
                    try:
                        x = parse_quantity(x, "time")
                    except ValueError as e:
                        raise ValueError(f"must be a time in ps (e.g. {_EXAMPLES['time']}), got {x!r}: {e}") from None
                try:
                    return base(x)
                except ValueError as e:
                    if given is x:
                        raise
                    # name the value as the user wrote it: got '500ns' (500000 ps)
                    raise ValueError(str(e).replace(f"got {x!r}", f"got {given!r} ({x} ps)", 1)) from None
    if lim.optional:
        schema = {"anyOf": [schema, {"type": "null"}], "description": schema.get("description", "")}
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


def _real(lo: float | None, hi: float | None, lo_open: bool = False):
    def check(x: Any):
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (Real, np.floating, np.integer)):
            raise ValueError(f"must be a number, got {x!r}")
        f = float(x)
        if not math.isfinite(f):
            raise ValueError(f"must be a finite number, got {x!r}")
        if lo is not None and (f < lo or lo_open and f == lo):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}, got {x!r}")
        if hi is not None and f > hi:
            raise ValueError(f"must be <= {hi:g}, got {x!r}")
        return x if isinstance(x, (int, float)) else f      # the value as given: 1 stays 1
    return check


def Num(description: str, lo: float | None = 0, hi: float | None = None, lo_open: bool = False):
    """A finite real number (a probability, a ratio): NaN and infinities are refused."""
    s: dict = {"type": "number", "description": description}
    if lo is not None:
        s["exclusiveMinimum" if lo_open else "minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return Annotated[Any, BeforeValidator(_real(lo, hi, lo_open)), WithJsonSchema(s)]


def _bool(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise ValueError(f"must be a bool (true or false), got {x!r}")


def Bool(description: str):
    """A strict boolean: True/False only (``"no"`` and 1 are refused)."""
    return Annotated[Any, BeforeValidator(_bool), WithJsonSchema({"type": "boolean", "description": description})]


def _text(x: Any) -> str:
    if not isinstance(x, str) or not x:
        raise ValueError(f"must be a non-empty string, got {x!r}")
    return x


def Text(description: str):
    return Annotated[Any, BeforeValidator(_text), WithJsonSchema({"type": "string", "description": description})]


def _choice(options: tuple, noun: str):
    def check(x: Any):
        if isinstance(x, str) and x in options:
            return x
        near = closest(str(x), options) if isinstance(x, str) else []
        hint = f" (closest: {', '.join(near)})" if near else ""
        if noun:                             # the mechanism's own wording: "transport: unknown mode 'irn'"
            raise ValueError(f"unknown {noun} {x!r}; known: {', '.join(map(repr, options))}{hint}")
        raise ValueError(f"must be one of {', '.join(map(repr, options))}, got {x!r}{hint}")
    return check


def Choice(options: tuple, description: str, noun: str = ""):
    return Annotated[Any, BeforeValidator(_choice(options, noun)),
                     WithJsonSchema({"enum": list(options), "description": description})]


def _dict(x: Any) -> dict:
    if not isinstance(x, dict):
        raise ValueError(f"must be a dict (a JSON object), got {x!r}")
    return x


def Section(description: str):
    """A dict whose keys are checked elsewhere (a CC's parameters, a DPU sub-section's detail)."""
    return Annotated[Any, BeforeValidator(_dict), WithJsonSchema({"type": "object", "description": description})]


def _host_list(x: Any) -> list:
    if isinstance(x, (str, bytes, dict)) or not isinstance(x, (list, tuple)):
        raise ValueError(f"must be a list of host ids, got {x!r}")
    out = []
    for i, h in enumerate(x):
        v = _int_of(h) if not isinstance(h, float) else None
        if v is None or v < 0:
            raise ValueError(f"[{i}]: {h!r} is not a host id (an integer >= 0)")
        out.append(v)
    return out


class Strict(BaseModel):
    """Base of every section: unknown keys refused, values validated on assignment too."""
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


# ---------------------------------------------------------------------------------- topology
RATE = dict(lo=1, kind="rate")
DELAY = dict(lo=0, hi=MAX_TIME_PS, kind="time")


class SingleSwitch(Strict):
    """Star: every host on one switch (controlplane/topology.py single_switch)."""
    topology: Literal["single_switch"]
    num_hosts: Int("hosts on the switch", lo=1)
    rate_bps: Int("every link's rate", **RATE)
    delay_ps: Int("every link's one-way delay", **DELAY)


class Dumbbell(Strict):
    """Two switches joined by one bottleneck link (topology.py dumbbell)."""
    topology: Literal["dumbbell"]
    num_left: Int("hosts on the left switch", lo=1)
    num_right: Int("hosts on the right switch", lo=1)
    host_rate_bps: Int("host links' rate", **RATE)
    bottleneck_rate_bps: Int("the bottleneck link's rate", **RATE)
    host_delay_ps: Int("host links' one-way delay", **DELAY)
    bottleneck_delay_ps: Int("the bottleneck's one-way delay", **DELAY)


class LeafSpine(Strict):
    """Two-tier Clos, every leaf linked to every spine (topology.py leaf_spine)."""
    topology: Literal["leaf_spine"]
    num_leaves: Int("leaf switches", lo=1)
    num_spines: Int("spine switches", lo=1)
    hosts_per_leaf: Int("hosts per leaf", lo=1)
    host_rate_bps: Int("host links' rate", **RATE)
    fabric_rate_bps: Int("leaf-spine links' rate", **RATE)
    host_delay_ps: Int("host links' one-way delay", **DELAY)
    fabric_delay_ps: Int("leaf-spine links' one-way delay", **DELAY)


class FatTree(Strict):
    """k-ary fat-tree (Al-Fares et al., SIGCOMM 2008; topology.py fat_tree)."""
    topology: Literal["fat_tree"]
    k: Int("pods (even, >= 2): k^3/4 hosts", lo=2)
    host_rate_bps: Int("host-edge links' rate", **RATE)
    host_delay_ps: Int("host-edge links' one-way delay", **DELAY)
    agg_rate_bps: Int("edge-agg links' rate (None: the host rate)", **RATE) | None = None
    agg_delay_ps: Int("edge-agg links' delay (None: the host delay)", **DELAY) | None = None
    core_rate_bps: Int("agg-core links' rate (None: the host rate)", **RATE) | None = None
    core_delay_ps: Int("agg-core links' delay (None: the host delay)", **DELAY) | None = None


class RailClos(Strict):
    """Rail-optimized 3-tier Clos (controlplane/rails.py rail_clos); defaults as its signature."""
    topology: Literal["rail_clos"]
    host_rate_bps: Int("GPU NIC links' rate", **RATE)
    host_delay_ps: Int("GPU NIC links' one-way delay", **DELAY)
    num_rails: Int("rails (GPUs per server)", lo=1) = 8
    servers_per_leaf: Int("servers per rail leaf", lo=1) = 4
    leaves_per_rail: Int("leaves per rail", lo=1) = 2
    spines_per_rail: Int("spines per rail", lo=1) = 2
    cores_per_group: Int("cores per group", lo=1) = 2
    leaf_rate_bps: Int("leaf-spine rate (None: host rate)", **RATE) | None = None
    leaf_delay_ps: Int("leaf-spine delay (None: host delay)", **DELAY) | None = None
    core_rate_bps: Int("spine-core rate (None: host rate)", **RATE) | None = None
    core_delay_ps: Int("spine-core delay (None: host delay)", **DELAY) | None = None
    oversubscription: Num("leaf oversubscription ratio", lo=0, lo_open=True) = 1.0
    core_oversubscription: Num("spine oversubscription ratio", lo=0, lo_open=True) = 1.0
    planes: Int("parallel network planes", lo=1) = 1
    nvlink_rate_bps: Int("NVLink rate inside a server (0: none)", lo=0, kind="rate") = 0
    nvlink_delay_ps: Int("NVLink delay", **DELAY) = 0
    sharp: Bool("in-network reduction (SHARP) on the switches") = False
    sharp_rate_bps: Int("SHARP aggregation rate (None: the link rate)", **RATE) | None = None
    sharp_latency_ps: Int("SHARP per-switch latency", **DELAY) = 0


def _tag(key: str):
    def get(v: Any):
        return v.get(key) if isinstance(v, dict) else getattr(v, key, None)
    return get


Topology = Annotated[Union[Annotated[SingleSwitch, Tag("single_switch")], Annotated[Dumbbell, Tag("dumbbell")],
                           Annotated[LeafSpine, Tag("leaf_spine")], Annotated[FatTree, Tag("fat_tree")],
                           Annotated[RailClos, Tag("rail_clos")]],
                     Discriminator(_tag("topology"), custom_error_type="topology",
                                   custom_error_message="unknown topology; known: dumbbell, fat_tree, leaf_spine, "
                                                        "rail_clos, single_switch")]


# ---------------------------------------------------------------------------------- workload
START = Limited("workload.start_ps")


class Incast(Strict):
    """N:1 incast (controlplane/workload.py incast)."""
    kind: Literal["incast"]
    senders: Int("senders (hosts other than the receiver, in order)", lo=1)
    size_bytes: Int("bytes each sender writes", lo=1, kind="size")
    receiver: Int("the receiving host", lo=0) = 0
    start_ps: START = 0
    jitter_ps: Limited("workload.jitter_ps") = 0


class Permutation(Strict):
    """Random derangement: every host sends to a distinct other host (workload.py permutation)."""
    kind: Literal["permutation"]
    size_bytes: Int("bytes each host writes", lo=1, kind="size")
    start_ps: START = 0


class Poisson(Strict):
    """Poisson arrivals, sizes from a CDF (workload.py poisson, the HPCC repo's traffic_gen.py)."""
    kind: Literal["poisson"]
    cdf: Text("flow-size CDF: websearch, fb_hadoop, alistorage2019 or a file")
    load: Num("offered load per host link, in (0, 1]", lo=0, hi=1, lo_open=True)
    duration_ps: Limited("workload.duration_ps")
    start_ps: START = 0


class FlowSpec(Strict):
    """One explicit message."""
    src: Int("sending host", lo=0)
    dst: Int("receiving host", lo=0)
    size_bytes: Int("message size", lo=1, kind="size")
    start_ps: Int("when it is posted", **DELAY) = 0
    conn: Int("connection id: messages of one conn share a QP", lo=None) | None = None


class Flows(Strict):
    """Explicit messages (workload.py from_list)."""
    kind: Literal["flows"]
    flows: list[FlowSpec] = []


class Pcap(Strict):
    """The RDMA WRITEs of a RoCEv2 capture (controlplane/replay.py)."""
    kind: Literal["pcap"]
    path: Text("the capture file")
    hosts: Choice(("order", "softdpu"), "capture addresses to hosts: in order of appearance, or softdpu's plan") = "order"
    time_scale: Num("multiplies the capture's times", lo=0, lo_open=True) = 1.0


Workload = Annotated[Union[Annotated[Incast, Tag("incast")], Annotated[Permutation, Tag("permutation")],
                           Annotated[Poisson, Tag("poisson")], Annotated[Flows, Tag("flows")],
                           Annotated[Pcap, Tag("pcap")]],
                     Discriminator(_tag("kind"), custom_error_type="workload_kind",
                                   custom_error_message="workload kind must be 'incast', 'permutation', 'flows', "
                                                        "'pcap' or 'poisson'")]


# ---------------------------------------------------------------------------------- sections
class Ecn(Strict):
    """RED/ECN marking of switch egress data queues; absent keys come from the CC's default."""
    kmin_bytes: Int("queue where marking starts", kind="size") = None
    kmax_bytes: Int("queue where the marking probability reaches pmax", kind="size") = None
    pmax: Num("marking probability at kmax", lo=0, hi=1) = None
    base_rate_bps: Int("the port rate the thresholds are for: they scale by rate / it", **RATE) | None = None
    scale_with_rate: Bool("scale the thresholds with port rate / 100 Gb/s") = False


class PfcParams(Strict):
    """PFC with a shared switch buffer (scenario.py _install_pfc; defaults: the HPCC repo)."""
    buffer_bytes: Int("shared buffer per switch (default 32 MB per 100 Gb/s of host rate)", lo=1, kind="size") = None
    reserve_bytes: Int("reserved per ingress", kind="size") = 4096
    resume_offset_bytes: Int("XON offset below the XOFF threshold", kind="size") = 3072
    alpha_shift: Int("dynamic threshold = free buffer >> alpha_shift", lo=0, hi=31) = 3
    headroom_rtts: Num("headroom per ingress in rate x delay units (at most 1000)", lo=0, hi=1000) = 3.0
    pause_quanta: Int("pause time in XOFF frames (512-bit quanta)", lo=0, hi=65535) = 65535


class TransportParams(Strict):
    """Selective repeat / out-of-order transports (controlplane/multipath.py TRANSPORT_DEFAULTS)."""
    reorder_window: Int("receiver reorder window, packets (power of 2)", lo=1) = 2048
    rto_low_ps: Limited("transport_params.rto_low_ps") = 100_000_000
    rto_low_pkts: Int("RTO_low applies while at most this many packets are out", lo=0) = 3
    bdp_cap: Annotated[Any, BeforeValidator(lambda x: x if x == "auto" else _integer(None, 0, None)(x)),
                       WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"const": "auto"}],
                                       "description": "packets in flight cap (0 off, 'auto': the BDP)"})] = 0


class PathParams(Strict):
    """Path policies with feedback (multipath.py PATH_PARAM_DEFAULTS; Linux PLB defaults)."""
    flowlet_gap_ps: Limited("path_params.flowlet_gap_ps") = 100_000_000
    plb_cong_thresh: Num("PLB: fraction of CE-marked rounds that counts as congested", lo=0, hi=1) = 0.5
    plb_rehash_rounds: Int("PLB: congested rounds before re-pathing", lo=1) = 12
    plb_suspend_ps: Limited("path_params.plb_suspend_ps") = 60 * 10**12


class FailureParams(Strict):
    """Reaction to failures (controlplane/failures.py FAILURE_DEFAULTS)."""
    detect_ps: Limited("failure_params.detect_ps") = 100_000_000
    reconverge_ps: Limited("failure_params.reconverge_ps") = 10**9


class Failure(Strict):
    """One failure: a link or a switch goes down at down_ps (and up at up_ps)."""
    link: Int("link index", lo=0) = None
    switch: Annotated[Any, BeforeValidator(lambda x: x if isinstance(x, str) and x else _integer(None, 0, None)(x)),
                      WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
                                      "description": "switch node id or name"})] = None
    down_ps: Limited("failures[].down_ps")
    up_ps: Limited("failures[].up_ps") = None


class Qpc(Strict):
    """QP-context cache per host NIC (native/qpc.c; defaults scenario.py QPC_DEFAULTS)."""
    entries: Int("cached QP contexts (0: every access misses)", lo=0) = 4096
    fetch_latency_ps: Limited("qpc.fetch_latency_ps") = 1_000_000
    max_outstanding: Int("concurrent context fetches (>= 1 when entries > 0)", lo=0) = 16
    policy: Text("replacement policy") = "lru"
    hosts: Annotated[Any, BeforeValidator(lambda x: x if x == "all" else _host_list(x)),
                     WithJsonSchema({"anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "integer"}}],
                                     "description": "hosts with a cache"})] = "all"
    trace: Int("trace capacity (records; 0 off)", hi=MAX_U32) = 0


class PolicySpec(Strict):
    """The DPU's forwarding policy (controlplane/vswitch.py POLICY_DEFAULTS)."""
    overlay: Bool("install the default overlay (VXLAN) rules") = True
    per_connection: Bool("one rule per connection instead of per destination") = False
    proactive: Bool("install every rule before the run (no upcalls)") = False
    meter_bps: Int("per-VF meter rate (None: no meter)", **RATE) | None = None
    meter_burst_bytes: Int("meter burst", kind="size") = 65536
    dscp: Int("DSCP rewrite (None: keep)", lo=0, hi=63) | None = None


class Dpu(Strict):
    """The DPUs' functions and vSwitch (vswitch.py check_spec checks the detail)."""
    tenants: Int("tenants (one VNI each)", lo=1) = 1
    vfs_per_host: Int("VFs per DPU (default: tenants)", lo=1, hi=1024) = None
    hosts: Annotated[Any, BeforeValidator(_host_list),
                     WithJsonSchema({"type": "array", "items": {"type": "integer", "minimum": 0},
                                     "description": "hosts with a DPU (omitted: every host)"})] = None
    vswitch: Section("vSwitch sizes: max_flows, emc_entries, emc_insert_inv_prob, upcall_queue, max_meters, "
                     "rerank_interval_ps") = None
    slow_path: Section("slow path: handlers, install_latency_ps, batch_upcalls, flow_limit, ...") = None
    policy: PolicySpec | None = None
    offload: Choice(("dpu", "host", "hw"), "where the vSwitch runs") = "dpu"
    tax: Section("host-CPU tax parameters (controlplane/vtax.py)") | None = None


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
    paths: Choice(("ecmp", "spray_rr", "spray_random", "spray_weighted", "reps", "flowlet", "plb"), "path policy", "policy")
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


# ---------------------------------------------------------------------------------- entry points
def _path(loc: tuple) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_tag(loc, i):
            continue                                  # the union's branch name is not a user's key
        else:
            out += f".{part}" if out else str(part)
    return out


_TAGS = {"single_switch", "dumbbell", "leaf_spine", "fat_tree", "rail_clos", "incast", "permutation", "poisson",
         "flows", "pcap", "function-after", "function-before"}


def _is_tag(loc: tuple, i: int) -> bool:
    """Is loc[i] the branch (tag) pydantic inserts after a tagged union (topology, workload) or a
    validator step, rather than a key the user wrote?"""
    return (i == 1 and loc[0] in ("topology", "workload") and loc[1] in _TAGS) or loc[i] in ("function-after",
                                                                                            "function-before")


def _known_at(model: type[BaseModel], loc: tuple, data: Any) -> list[str]:
    """The field names valid at ``loc`` (for closest-name suggestions)."""
    m: Any = model
    node = data
    for i, part in enumerate(loc[:-1]):
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if _is_tag(loc, i):
            continue
        fields = getattr(m, "model_fields", {})
        if part not in fields:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        m = _model_of(fields[part].annotation, node)
    return list(getattr(m, "model_fields", {}))


def _model_of(ann: Any, node: Any):
    import typing
    stack = [ann]
    found = []
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            found.append(a)
            continue
        stack.extend(typing.get_args(a))
    if isinstance(node, dict):
        for m in found:
            for key in ("topology", "kind"):
                f = m.model_fields.get(key)
                if f is not None and node.get(key) in typing.get_args(f.annotation):
                    return m
    if len(found) == 1 or (found and list(found[0].model_fields) and "list" in str(ann)):
        return found[0]
    return None


def _message(model: type[BaseModel], err: dict, data: Any) -> str:
    path = _path(err["loc"])
    typ = err["type"]
    given = err.get("input")
    if typ == "extra_forbidden":
        name = str(err["loc"][-1])
        known = _known_at(model, err["loc"], data)
        near = closest(name, known)
        hint = f"; closest: {', '.join(near)}" if near else ""
        parent = path[:-len(name)].rstrip(".") or "scenario"
        return f"{parent}: unknown key {name!r} ({path}){hint} (known here: {', '.join(sorted(known))})"
    if typ == "missing":
        return f"{path} must be set: it is required and missing"
    if typ == "value_error":
        msg = str(err["ctx"]["error"]).strip()
        if msg.startswith(("must be", "is not")):
            return f"{path} {msg}"
        if msg.startswith("["):                       # an element: hosts[2] = ...
            return f"{path}{msg}"
        if msg.startswith(path.rsplit(".", 1)[-1] + " must"):
            return f"{path}{msg[len(path.rsplit('.', 1)[-1]):]}" if "." in path else msg
        return f"{path}: {msg}"
    if typ in ("topology", "workload_kind"):
        key = "topology" if typ == "topology" else "kind"
        tag = given.get(key) if isinstance(given, dict) else None
        if not isinstance(given, dict):
            return f"{path} must be a dict with a {key!r} key, got {given!r}"
        names = [t for t in _TAGS if t in str(err["msg"])]
        near = closest(str(tag), names) if isinstance(tag, str) else []
        hint = f" (closest: {', '.join(near)})" if near else ""
        return f"{path}.{key}: {err['msg']}, got {tag!r}{hint}"
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path} must be a dict (a JSON object) or None, got {given!r}"
    if typ == "list_type":
        return f"{path} must be a list, got {given!r}"
    return f"{path}: {err['msg']}, got {given!r}"


def validate(d: dict, model: type[BaseModel] = ScenarioModel) -> dict:
    """``d`` (a scenario as a dict) checked against the schema and normalized: returns a new dict,
    the keys ``d`` had with their values converted (units, integral floats) and nested sections
    holding only the keys given. Raises ValueError with one line per problem, each naming the
    field's path as the user wrote it."""
    if not isinstance(d, dict):
        raise ValueError(f"a scenario must be a dict, got {d!r}")
    try:
        m = model.model_validate({k: v for k, v in d.items()})
    except ValidationError as exc:
        raise ValueError("\n".join(_message(model, e, d) for e in exc.errors())) from None
    out = dict(d)
    for k in d:
        if k in model.model_fields:
            out[k] = _dump(getattr(m, k), d[k])
    return out


def _dump(v: Any, given: Any) -> Any:
    """The validated value in the shape the user gave: a section keeps its keys, in their order."""
    if isinstance(v, BaseModel) and isinstance(given, dict):
        return {k: _dump(getattr(v, k), x) for k, x in given.items()}
    if isinstance(v, list) and isinstance(given, (list, tuple)):
        return [_dump(x, g) for x, g in zip(v, given)]
    return v


def scenario_model_partial() -> type[BaseModel]:
    return ScenarioModel


def json_schema() -> dict:
    """The JSON Schema of a scenario, with the Scenario dataclass's defaults filled in."""
    from dataclasses import MISSING, fields
    from controlplane.scenario import Scenario
    s = ScenarioModel.model_json_schema()
    s["title"] = "softdpu scenario"
    s.pop("required", None)                          # every top-level field has a default
    for f in fields(Scenario):
        prop = s["properties"].get(f.name)
        if prop is None:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        prop["default"] = default
    return s


__all__ = ["ScenarioModel", "validate", "json_schema", "Int", "Num", "Bool", "Limited", "unit_kind"]


# validate() takes a partial dict too (from_dict, a file): a top-level field absent is not checked
for _f in ScenarioModel.model_fields.values():
    _f.default = None
ScenarioModel.model_rebuild(force=True)
