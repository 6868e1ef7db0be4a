"""The thin, validating Python face of the C data plane.

:class:`Simulator` owns one ``sd_sim``. Configuration goes in through a few batch calls, state
comes back as zero-copy numpy views of the C arrays (dtypes derived from the compiled layout,
never written by hand), and every C error code becomes a Python exception carrying the C side's
message, which names the offending field.

Views (``ports``, ``qps``, ``path_states``: the telemetry records of native/softdpu.h, not the
data plane's working state; ``msgs``, ``trace``) alias C memory: take a fresh one after posting
messages or creating QPs (the tables may grow) and never keep one beyond the simulator's life.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
from typing import Callable, Mapping

import numpy as np

from dataplane._native import ffi, lib

NONE = 0xFFFFFFFF

CC_NONE, CC_DCQCN, CC_PYTHON = lib.SD_CC_NONE, lib.SD_CC_DCQCN, lib.SD_CC_PYTHON
CC_DCTCP, CC_TIMELY, CC_HPCC, CC_SWIFT, CC_NSCC = (lib.SD_CC_DCTCP, lib.SD_CC_TIMELY, lib.SD_CC_HPCC, lib.SD_CC_SWIFT,
                                                   lib.SD_CC_NSCC)


def cc_param_names(kind: int) -> list[str]:
    """Parameter names of a C twin, in block order (native/<cc>.c is the source of truth)."""
    names, i = [], 0
    while (name := lib.sd_cc_param_name(kind, i)) != ffi.NULL:
        names.append(ffi.string(name).decode())
        i += 1
    return names
PRIO_CTRL, PRIO_DATA = lib.SD_PRIO_CTRL, lib.SD_PRIO_DATA
STOP_TIME, STOP_IDLE, STOP_COMPLETIONS = lib.SD_STOP_TIME, lib.SD_STOP_IDLE, lib.SD_STOP_COMPLETIONS
STOP_UPCALL = lib.SD_STOP_UPCALL
STOP_EVENTS, STOP_MAX_EVENTS, STOP_WALL = lib.SD_STOP_EVENTS, lib.SD_STOP_MAX_EVENTS, lib.SD_STOP_WALL
WALL_CHECK_EVENTS = lib.SD_WALL_CHECK_EVENTS
# The no-progress guard (run_until): more events than this at one picosecond stop a run. 10
# million plus 16 per port, QP and host is far above any legitimate burst: at one instant each
# port, QP and host has at most a handful of events (a wire arrival, a serializer completion, a
# PFC frame, its timers, a NIC wake).
STALL_EVENTS = 10_000_000
STALL_EVENTS_PER_OBJECT = 16
CNP_MODES = {"interval": lib.SD_CNP_INTERVAL, "ack_echo": lib.SD_CNP_ACK_ECHO}
# a QP's notification point (set_qp_nic) may also give no feedback at all
QP_CNP_MODES = {**CNP_MODES, "none": lib.SD_CNP_NONE}
PAYLOAD_PATTERNS = {"zeros": 0, "address": 1}
MAX_CAPTURES = lib.SD_MAX_CAPTURES
TRANSPORTS = {"gbn": lib.SD_GBN, "sr": lib.SD_SR, "ooo": lib.SD_OOO}
#: the RDMA operation of a message (enum sd_verb); the same names as workload.VERBS
VERBS = {"write": lib.SD_VERB_WRITE, "write_imm": lib.SD_VERB_WRITE_IMM, "send": lib.SD_VERB_SEND,
         "send_imm": lib.SD_VERB_SEND_IMM, "read": lib.SD_VERB_READ, "atomic_cas": lib.SD_VERB_ATOMIC_CAS,
         "atomic_fadd": lib.SD_VERB_ATOMIC_FADD}
#: completion kinds and statuses (sd_completion.kind / .status)
CQ_REQUESTER, CQ_RESPONDER = lib.SD_CQ_REQUESTER, lib.SD_CQ_RESPONDER
WC_STATUS = {lib.SD_WC_SUCCESS: "success", lib.SD_WC_RNR_RETRY_EXC: "rnr_retry_exceeded", lib.SD_WC_FLUSH: "flushed"}
MAX_RD_ATOMIC = lib.SD_MAX_RD_ATOMIC
RQ_UNLIMITED = 0xFFFFFFFF
# Path policies: discovered from the data plane's registry (native/paths.c path_table), by index
PATH_POLICIES = {ffi.string(lib.sd_path_policy_name(i)).decode(): i for i in range(lib.sd_path_policy_count())}
PATH_POLICY_NAMES = {i: name for name, i in PATH_POLICIES.items()}
AR_CLASSES = {"data": lib.SD_AR_CLASS_DATA, "ack": lib.SD_AR_CLASS_ACK, "cnp": lib.SD_AR_CLASS_CNP}


def path_policy_params(policy: str) -> tuple[str, ...]:
    """The path_params a path policy reads, as its C provider lists them (native/path_*.c)."""
    i, out = PATH_POLICIES[policy], []
    while (name := lib.sd_path_param_name(i, len(out))) != ffi.NULL:
        out.append(ffi.string(name).decode())
    return tuple(out)


PATH_PARAM_KINDS = {lib.SD_PATH_PARAM_INT: "int", lib.SD_PATH_PARAM_REAL: "real"}


def path_policy_param_kinds(policy: str) -> dict[str, str]:
    """The kind ("int" or "real") of each path_param a path policy reads, as its C provider
    declares it (native/path_*.c: path_param)."""
    i = PATH_POLICIES[policy]
    return {n: PATH_PARAM_KINDS[lib.sd_path_param_kind(i, j)] for j, n in enumerate(path_policy_params(policy))}


#: every path_params name the registered policies read, each once in registry order, with its kind
PATH_PARAMS = {n: k for p in PATH_POLICIES for n, k in path_policy_param_kinds(p).items()}


def _ar_mask(classes) -> int:
    if isinstance(classes, str):
        raise ValueError(f"ar_classes must be a collection of class names, got the string {classes!r}")
    unknown = set(classes) - set(AR_CLASSES)
    if unknown:
        raise ValueError(f"ar_classes: unknown class(es) {sorted(unknown)}; known: {sorted(AR_CLASSES)}")
    return sum(AR_CLASSES[c] for c in set(classes))


@dataclasses.dataclass(frozen=True)
class PathSet:
    """A QP's path set, decoded (:meth:`Simulator.path_set`): its policy's name, its entropies (UDP
    source ports), one weight per entropy as the policy uses it now (spray_weighted: the integer
    weights given; clove: the ECN-driven weights; otherwise 1 each; never cumulative), the packet
    classes it marks eligible for adaptive routing, and the path_params its policy reads."""
    policy: str
    entropies: tuple[int, ...]
    weights: tuple[float, ...]
    ar_classes: frozenset[str]
    params: Mapping[str, int | float]


EVENT_NAMES = ("start", "ack", "cnp", "nak", "timeout", "timer", "bytes")
ALL_EVENTS = (1 << len(EVENT_NAMES)) - 1


class SimError(RuntimeError):
    """The data plane refused a call or failed; the message is the C side's."""


class BudgetExceeded(SimError):
    """A run reached its budget (``Scenario.max_events`` or ``max_wall_s``) before it ended: the
    message names the budget, its value, the simulated time reached and how to raise it.
    ``budget`` is "max_events" or "max_wall_s", ``limit`` its value, ``sim_ps`` the time reached."""

    def __init__(self, budget: str, limit, sim_ps: int, message: str):
        super().__init__(message)
        self.budget, self.limit, self.sim_ps = budget, limit, sim_ps

    def __reduce__(self):       # picklable, so that it comes back from a worker process as itself
        return (type(self), (self.budget, self.limit, self.sim_ps, str(self)))


class CCPluginError(RuntimeError):
    """A congestion control failed mid-run: a plug-in raised or set an invalid rate, or a C twin
    set a rate below the floor; the message names the algorithm, the QP and the event.
    (congestion.api re-exports it; Scenario.run writes the partial results first.)"""


#: the rate floor, bit/s (native/softdpu.h SD_MIN_RATE_BPS: a ConnectX QP rate limiter's minimum)
MIN_RATE_BPS = lib.SD_MIN_RATE_BPS


# ---------------------------------------------------------------------------- dtypes
_C2NP = {"uint8_t": np.uint8, "uint16_t": np.uint16, "uint32_t": np.uint32, "uint64_t": np.uint64,
         "int32_t": np.int32, "int64_t": np.int64, "float": np.float32, "double": np.float64}


def dtype_of(ctype: str) -> np.dtype:
    """numpy dtype of a C struct, from the compiled layout (offsets, sizes, tail padding)."""
    names, formats, offsets = [], [], []
    for name, field in ffi.typeof(ctype).fields:
        t = field.type
        if field.bitsize != -1:
            raise TypeError(f"{ctype}.{name}: bit-fields cannot map to numpy")
        if t.kind == "array" and t.item.kind == "struct":
            fmt = (dtype_of(t.item.cname), t.length)
        elif t.kind == "array":
            fmt = (_C2NP[t.item.cname], t.length)
        elif t.kind == "primitive":
            fmt = _C2NP[t.cname]
        elif t.kind == "struct":
            fmt = dtype_of(t.cname)
        else:
            raise TypeError(f"{ctype}.{name}: {t.kind} fields are not mapped")
        names.append(name)
        formats.append(fmt)
        offsets.append(field.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ffi.sizeof(ctype)})


PACKET_DTYPE = dtype_of("sd_packet")
PORT_DTYPE = dtype_of("sd_port_stats")       # the telemetry records (native/softdpu.h)
QP_DTYPE = dtype_of("sd_qp_stats")
MSG_DTYPE = dtype_of("sd_msg")
TRACE_DTYPE = dtype_of("sd_cc_trace")
COMPLETION_DTYPE = dtype_of("sd_completion")
PATH_STATE_DTYPE = dtype_of("sd_path_stats")
QPC_HOST_DTYPE = dtype_of("sd_qpc_host")
QPC_REC_DTYPE = dtype_of("sd_qpc_rec")
QPC_POLICIES = {"lru": lib.SD_QPC_LRU, "fifo": lib.SD_QPC_FIFO, "random": lib.SD_QPC_RANDOM}
QPC_OUTCOMES = {lib.SD_QPC_HIT: "hit", lib.SD_QPC_MISS: "miss", lib.SD_QPC_PENDING: "pending",
                lib.SD_QPC_FILL: "fill", lib.SD_QPC_EVICT: "evict"}
COUNTER_FIELDS = [name for name, _ in ffi.typeof("sd_counters").fields]
VS_FLOW_DTYPE = dtype_of("sd_vs_flow")
VS_VF_DTYPE = dtype_of("sd_vs_vf")
VS_STATS_DTYPE = dtype_of("sd_vs_stats")
VS_UPCALL_DTYPE = dtype_of("sd_vs_upcall")
VS_ACTION_DTYPE = dtype_of("sd_vs_action")

# vSwitch: DPU ports, key words, action bits (native/softdpu.h is the source of truth)
VS_UPLINK, VS_PF, VS_VF0 = lib.SD_VS_UPLINK, lib.SD_VS_PF, lib.SD_VS_VF0
VS_KEY_WORDS = lib.SD_VS_KEY_WORDS
VS_FIELDS = {"in_port": lib.SD_VS_F_IN_PORT, "vni": lib.SD_VS_F_VNI, "src_ip": lib.SD_VS_F_SRC_IP,
             "dst_ip": lib.SD_VS_F_DST_IP, "proto_dscp": lib.SD_VS_F_PROTO_DSCP, "l4": lib.SD_VS_F_L4,
             "dqpn": lib.SD_VS_F_DQPN}
VS_ACTIONS = {"output": lib.SD_VS_OUTPUT, "encap": lib.SD_VS_ENCAP, "decap": lib.SD_VS_DECAP,
              "set_dscp": lib.SD_VS_SET_DSCP, "meter": lib.SD_VS_METER, "count": lib.SD_VS_COUNT,
              "drop": lib.SD_VS_DROP}
VS_META_ENCAP, VS_META_DSCP_SET, VS_META_DSCP_SHIFT = (lib.SD_VS_META_ENCAP, lib.SD_VS_META_DSCP_SET,
                                                       lib.SD_VS_META_DSCP_SHIFT)
VXLAN_OVERHEAD, VXLAN_PORT, VS_MAX_VNI = lib.SD_VXLAN_OVERHEAD, lib.SD_VXLAN_PORT, lib.SD_VS_MAX_VNI


def vs_action(actions: dict):
    """An ``sd_vs_action`` from a dict: ``{"output": port, "encap": vni, "tun_dst": host, "decap": True,
    "set_dscp": d, "meter": m, "count": c, "drop": True}`` (an empty dict drops)."""
    unknown = set(actions) - set(VS_ACTIONS) - {"tun_dst"}
    if unknown:
        raise ValueError(f"action: unknown key(s) {sorted(unknown)}; known: {sorted(VS_ACTIONS) + ['tun_dst']}")
    a = ffi.new("sd_vs_action *")
    a.tun_dst = NONE
    for name, bit in VS_ACTIONS.items():
        v = actions.get(name)
        if v is None or v is False:
            continue
        a.flags |= bit
        if name in ("decap", "drop"):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
            raise ValueError(f"action: {name} needs a non-negative integer, got {v!r}")
        setattr(a, {"output": "out_port", "encap": "vni", "set_dscp": "dscp", "meter": "meter",
                    "count": "counter"}[name], int(v))
    if actions.get("tun_dst") is not None:
        if "encap" not in actions:
            raise ValueError("action: tun_dst needs encap")
        a.tun_dst = int(actions["tun_dst"])
    return a


def _key(name: str, values) -> np.ndarray:
    """A flow key (or mask): 8 uint32 words, contiguous."""
    return _u32(name, values, VS_KEY_WORDS)


def _view(ptr, count: int, ctype: str, dtype: np.dtype) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(ffi.buffer(ptr, count * ffi.sizeof(ctype)), dtype=dtype)


# ---------------------------------------------------------------------------- Python CC hook
_cc_error: list = []          # the exception a plug-in raised, re-raised by run_until


def _on_cc_error(exc_type, exc_value, tb):
    _cc_error.append(exc_value if exc_value is not None else exc_type())
    return None


@ffi.def_extern(onerror=_on_cc_error, error=1)
def sd_cc_python_event(userdata, io):
    ffi.from_handle(userdata)._cc_handlers[io.qp](io)
    return 0


# ---------------------------------------------------------------------------- helpers
# Queue disciplines: discovered from the data plane's registry (native/qdisc.h), in index order
QDISC_KINDS = tuple(ffi.string(lib.sd_qdisc_name(i)).decode() for i in range(lib.sd_qdisc_count()))


def qdisc_params(kind: str) -> list[str] | None:
    """The parameter names of queue discipline ``kind``, as its C provider declares them; None
    for an unknown kind."""
    if kind not in QDISC_KINDS:
        return None
    out = []
    while (n := lib.sd_qdisc_param_name(kind.encode(), len(out))) != ffi.NULL:
        out.append(ffi.string(n).decode())
    return out


QDISC_PARAM_KINDS = {lib.SD_QDISC_PARAM_INT: "int", lib.SD_QDISC_PARAM_REAL: "real"}


@dataclasses.dataclass(frozen=True)
class QdiscParam:
    """A parameter of a queue discipline as its C provider declares it (native/qdisc*.c, sim.h
    ``qdisc_param``): ``kind`` "int" (bytes, ps: an integer) or "real"; the closed range
    [``lo``, ``hi``] ``sd_set_qdisc`` accepts, and 0 as well when ``zero_off`` (off: a strict
    class's quantum); ``rule``: that range in words, as the data plane's error gives it."""
    name: str
    kind: str
    lo: float
    hi: float
    rule: str
    zero_off: bool

    def accepts(self, v: float) -> bool:
        """Whether sd_set_qdisc takes ``v`` for this parameter (before the discipline's rules
        between parameters, such as kmax >= kmin)."""
        v = float(v)
        return math.isfinite(v) and (self.kind == "real" or v == math.floor(v)) and \
            (self.lo <= v <= self.hi or (self.zero_off and v == 0))


def qdisc_param_decls(kind: str) -> tuple[QdiscParam, ...] | None:
    """The parameters of queue discipline ``kind`` with their kinds and ranges, in the order its C
    provider declares them (the order :meth:`Simulator.set_qdisc` passes them); None for an
    unknown kind."""
    names = qdisc_params(kind)
    if names is None:
        return None
    out, lo, hi = [], ffi.new("double *"), ffi.new("double *")
    for i, name in enumerate(names):
        zero_off = lib.sd_qdisc_param_range(kind.encode(), i, lo, hi)
        out.append(QdiscParam(name, QDISC_PARAM_KINDS[lib.sd_qdisc_param_kind(kind.encode(), i)], lo[0], hi[0],
                              ffi.string(lib.sd_qdisc_param_rule(kind.encode(), i)).decode(), zero_off == 1))
    return tuple(out)


def _u32(name: str, values, n: int | None = None) -> np.ndarray:
    a = np.ascontiguousarray(values)
    if n is not None and a.shape != (n,):
        raise ValueError(f"{name} must have {n} entries, got shape {a.shape}")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() > NONE):
        raise ValueError(f"{name} must hold integers in [0, 2^32), got {a.dtype} {a.min()}..{a.max()}")
    return a.astype(np.uint32)


def _i64(name: str, values, n: int) -> np.ndarray:
    a = np.ascontiguousarray(values)
    if a.shape != (n,):
        raise ValueError(f"{name} must have {n} entries, got shape {a.shape}")
    if a.dtype == object or (a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max):
        # Python integers beyond int64 (numpy keeps them as objects) or uint64 above 2^63 - 1
        for i, v in enumerate(a.tolist()):
            if not isinstance(v, int) or isinstance(v, bool) or not -2**63 <= v < 2**63:
                raise ValueError(f"{name}[{i}] = {v!r} is not an integer that fits int64 picoseconds "
                                 f"(|t| < 2^63 ps, about 106 days)")
    elif a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (picoseconds), got {a.dtype}")
    return a.astype(np.int64)


def _u64(name: str, values, n: int) -> np.ndarray:
    a = np.ascontiguousarray(values)
    if a.shape != (n,):
        raise ValueError(f"{name} must have {n} entries, got shape {a.shape}")
    if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0):
        raise ValueError(f"{name} must hold non-negative integers, got {a.dtype} min {a.min()}")
    return a.astype(np.uint64)


def _ptr(ctype: str, a: np.ndarray):
    return ffi.cast(ctype, ffi.from_buffer(a)) if a.size else ffi.NULL


MAX_REORDER_WINDOW = lib.SD_MAX_REORDER_WINDOW
#: the policies that need the QP's path_params first (SD_PATHF_PARAMS in their C provider)
FEEDBACK_POLICIES = tuple(n for n, i in PATH_POLICIES.items() if lib.sd_path_policy_flags(i) & lib.SD_PATHF_PARAMS)
#: the policies that take exactly one entropy (SD_PATHF_ONE) / integer weights (SD_PATHF_WEIGHTS)
ONE_ENTROPY_POLICIES = tuple(n for n, i in PATH_POLICIES.items() if lib.sd_path_policy_flags(i) & lib.SD_PATHF_ONE)
WEIGHTED_POLICIES = tuple(n for n, i in PATH_POLICIES.items() if lib.sd_path_policy_flags(i) & lib.SD_PATHF_WEIGHTS)


def _defaults(section: str) -> dict:
    """The defaults of a configuration section, from its model in the control plane (the one place
    they are written: controlplane/config/models.py lists them). The data plane keeps none of its own: a
    parameter this wrapper is not given is filled from there and passed to C explicitly."""
    from controlplane.config import models
    return models.defaults(section)


def _given(section: str, **values) -> dict:
    """``values`` with every None replaced by the section's default."""
    d = None
    out = {}
    for k, v in values.items():
        if v is None:
            d = d or _defaults(section)
            v = d[k]
        out[k] = v
    return out


def _scenario_defaults() -> dict:
    """The network defaults of a Scenario (its dataclass fields), for a Simulator made without them."""
    from dataclasses import MISSING, fields
    from controlplane.run import scenario
    d = {f.name: f.default for f in fields(scenario.Scenario) if f.default is not MISSING}
    d["cnp_mode"] = scenario.CNP_MODE_FALLBACK
    d["cnp_interval_ps"] = scenario.CNP_INTERVAL_FALLBACK_PS
    return d


@functools.lru_cache(maxsize=8)
def _wire_sim(ipv6: bool, phy_overhead: int) -> Simulator:
    return Simulator(num_hosts=1, num_switches=1, max_links=1, max_qps=2, max_msgs=1, pkt_pool=16,
                     completion_ring=1, ipv6=ipv6, phy_overhead=phy_overhead, mtu_payload=4096, ack_interval=1,
                     cnp_mode="interval", cnp_interval_ps=1, rto_ps=1, dscp_data=0, dscp_ack=0, dscp_cnp=0,
                     payload_pattern="zeros")


def wire_bytes(opcode: int, payload: int, *, ipv6: bool = False, phy_overhead: int = 20) -> int:
    """Bytes one frame takes on the wire, headers and ``phy_overhead`` (preamble, SFD, IFG)
    included, as the data plane counts them (sd_wire_bytes): for control-plane arithmetic before
    a Simulator exists. ``opcode``: a value of OPCODES."""
    return _wire_sim(bool(ipv6), int(phy_overhead)).wire_bytes(opcode, payload)


class Simulator:
    """One emulated fabric: hosts with DPU NICs, switches, links, QPs, messages."""

    def __init__(self, *, num_hosts: int, num_switches: int, max_links: int, max_qps: int = 64,
                 max_msgs: int = 1024, pkt_pool: int = 65536, mtu_payload: int | None = None,
                 ack_interval: int | None = None, cnp_mode: str | None = None, cnp_interval_ps: int | None = None,
                 rto_ps: int | None = None, seed: int = 0, trace_capacity: int = 0,
                 completion_ring: int = 4096, wake_on_completion: bool = False, phy_overhead: int = 20,
                 ipv6: bool | None = None, dscp_data: int | None = None, dscp_ack: int | None = None,
                 dscp_cnp: int | None = None, payload_pattern: str | None = None, int_multi: int = 0):
        """A data plane for ``num_hosts`` hosts and ``num_switches`` switches. The sizes (max_qps,
        max_msgs, pkt_pool, completion_ring, trace_capacity) are this object's; a network
        parameter not given (None) is the Scenario's default (controlplane/run/scenario.py: mtu_payload,
        ack_interval, rto_ps, ipv6, dscp_*, payload_pattern; cnp_mode and cnp_interval_ps: the
        notification point's fallback), so the wrapper keeps no value of its own. phy_overhead is
        Ethernet's 20 bytes of preamble, SFD and inter-frame gap."""
        if None in (mtu_payload, ack_interval, cnp_mode, cnp_interval_ps, rto_ps, ipv6, dscp_data, dscp_ack, dscp_cnp,
                    payload_pattern):
            d = _scenario_defaults()
            mtu_payload = d["mtu_payload"] if mtu_payload is None else mtu_payload
            ack_interval = d["ack_interval"] if ack_interval is None else ack_interval
            cnp_mode = d["cnp_mode"] if cnp_mode is None else cnp_mode
            cnp_interval_ps = d["cnp_interval_ps"] if cnp_interval_ps is None else cnp_interval_ps
            rto_ps = d["rto_ps"] if rto_ps is None else rto_ps
            ipv6 = d["ipv6"] if ipv6 is None else ipv6
            dscp_data = d["dscp_data"] if dscp_data is None else dscp_data
            dscp_ack = d["dscp_ack"] if dscp_ack is None else dscp_ack
            dscp_cnp = d["dscp_cnp"] if dscp_cnp is None else dscp_cnp
            payload_pattern = d["payload_pattern"] if payload_pattern is None else payload_pattern
        if payload_pattern not in PAYLOAD_PATTERNS:
            raise ValueError(f"payload_pattern must be one of {sorted(PAYLOAD_PATTERNS)}, got {payload_pattern!r}")
        if cnp_mode not in CNP_MODES:
            raise ValueError(f"cnp_mode must be one of {sorted(CNP_MODES)}, got {cnp_mode!r}")
        for name, v in (("num_hosts", num_hosts), ("num_switches", num_switches), ("max_links", max_links),
                        ("max_qps", max_qps), ("max_msgs", max_msgs), ("pkt_pool", pkt_pool),
                        ("mtu_payload", mtu_payload), ("ack_interval", ack_interval),
                        ("trace_capacity", trace_capacity), ("completion_ring", completion_ring),
                        ("phy_overhead", phy_overhead), ("dscp_data", dscp_data), ("dscp_ack", dscp_ack),
                        ("dscp_cnp", dscp_cnp)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v < 2**32:
                raise ValueError(f"{name} must be an integer in [0, 2^32), got {v!r}")
        for name, v in (("cnp_interval_ps", cnp_interval_ps), ("rto_ps", rto_ps)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise ValueError(f"{name} must be an integer number of picoseconds, got {v!r}")
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2^64), got {seed!r}")
        cfg = ffi.new("sd_config *")
        cfg.num_hosts, cfg.num_switches, cfg.max_links = num_hosts, num_switches, max_links
        cfg.max_qps, cfg.max_msgs, cfg.pkt_pool = max(2, max_qps), max(1, max_msgs), pkt_pool
        cfg.mtu_payload, cfg.ack_interval, cfg.cnp_mode = mtu_payload, ack_interval, CNP_MODES[cnp_mode]
        cfg.completion_ring, cfg.wake_on_completion = completion_ring, int(bool(wake_on_completion))
        cfg.trace_capacity, cfg.phy_overhead = trace_capacity, phy_overhead
        cfg.cnp_interval_ps, cfg.rto_ps, cfg.seed = cnp_interval_ps, rto_ps, seed
        cfg.ipv6, cfg.payload_pattern = int(bool(ipv6)), PAYLOAD_PATTERNS[payload_pattern]
        cfg.dscp_data, cfg.dscp_ack, cfg.dscp_cnp = dscp_data, dscp_ack, dscp_cnp
        if not isinstance(int_multi, (int, np.integer)) or not 0 <= int_multi <= 64:
            raise ValueError(f"int_multi must be 0 (no INT) or in [1, 64], got {int_multi!r}")
        cfg.int_enabled, cfg.int_multi = int(int_multi > 0), int_multi
        sim = lib.sd_create(cfg)
        if sim == ffi.NULL:
            raise ValueError(ffi.string(lib.sd_last_error(ffi.NULL)).decode())
        self._sim = ffi.gc(sim, lib.sd_destroy)
        self._handle = ffi.new_handle(self)
        lib.sd_set_userdata(self._sim, self._handle)
        self._cc_handlers: dict[int, Callable] = {}
        self.num_hosts, self.num_switches = num_hosts, num_switches
        self.mtu_payload = mtu_payload
        self._stall_limit = self._stall_set = None

    # ------------------------------------------------------------------ errors
    def _check(self, rc: int) -> int:
        if rc < 0:
            msg = ffi.string(lib.sd_last_error(self._sim)).decode()
            if rc == lib.SD_EINVAL:
                raise ValueError(msg)
            raise SimError(msg)
        return rc

    # ------------------------------------------------------------------ fabric
    NODE_KINDS = ("host", "switch")     # enum sd_node_kind, by value

    def set_nodes(self, kinds) -> None:
        """The node table (native/sim.c sd_set_nodes): one kind per node, by name (``"host"``,
        ``"switch"``) or value; nodes ``0 .. num_hosts-1`` must be the hosts."""
        if isinstance(kinds, (str, bytes)) or not hasattr(kinds, "__len__"):
            raise ValueError(f"node kinds must be a list of {'/'.join(self.NODE_KINDS)}, got {kinds!r}")
        vals = []
        for i, k in enumerate(kinds):
            if isinstance(k, str):
                if k not in self.NODE_KINDS:
                    raise ValueError(f"node {i}: kind must be one of {', '.join(self.NODE_KINDS)}, got {k!r}")
                k = self.NODE_KINDS.index(k)
            elif isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < len(self.NODE_KINDS):
                raise ValueError(f"node {i}: kind must be one of {', '.join(self.NODE_KINDS)}, got {k!r}")
            vals.append(int(k))
        arr = np.asarray(vals, dtype=np.uint8)
        self._check(lib.sd_set_nodes(self._sim, ffi.cast("uint8_t *", ffi.from_buffer(arr)) if len(arr) else ffi.NULL,
                                     len(arr)))

    def node_kind(self, node: int) -> str:
        """``"host"`` or ``"switch"``."""
        k = lib.sd_node_kind(self._sim, int(node)) if isinstance(node, (int, np.integer)) and 0 <= node < 2**32 else -1
        if k < 0:
            raise ValueError(f"node {node!r} does not exist ({self.num_hosts + self.num_switches} nodes)")
        return self.NODE_KINDS[k]

    def node_ports(self, node: int) -> list[int]:
        """The ports of ``node``, in link order."""
        if not isinstance(node, (int, np.integer)) or not 0 <= node < 2**32:
            raise ValueError(f"node must be a node id, got {node!r}")
        n = self._check(lib.sd_node_ports(self._sim, int(node), ffi.NULL, 0))
        out = ffi.new("uint32_t[]", max(n, 1))
        self._check(lib.sd_node_ports(self._sim, int(node), out, n))
        return [out[i] for i in range(n)]

    def set_addresses(self, port_addr, num_addrs: int) -> None:
        """Declare the addresses (native/sim.c sd_set_addresses): ``port_addr[p]`` is the address
        (``0 .. num_addrs-1``) of host port ``p`` and ``None`` (or ``-1``) at a switch port; an
        address groups ports of one host. After the links, before the fib and the QPs. Without it,
        address ``h`` is host ``h`` with all its ports."""
        if isinstance(port_addr, (str, bytes)) or not hasattr(port_addr, "__len__"):
            raise ValueError(f"addresses: port_addr must be a list, one entry per port, got {port_addr!r}")
        if isinstance(num_addrs, bool) or not isinstance(num_addrs, (int, np.integer)) or not 0 < num_addrs < 2**30:
            raise ValueError(f"addresses: num_addrs must be a positive integer, got {num_addrs!r}")
        vals = []
        for p, a in enumerate(port_addr):
            if a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a == -1):
                vals.append(0xFFFFFFFF)
            elif isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < 2**32 - 1:
                raise ValueError(f"addresses: port {p}: address must be a non-negative integer or None, got {a!r}")
            else:
                vals.append(int(a))
        arr = np.asarray(vals, dtype=np.uint32)
        self._check(lib.sd_set_addresses(self._sim, _ptr("uint32_t *", arr), len(arr), int(num_addrs)))
        self._num_addrs = int(num_addrs)

    @property
    def num_addrs(self) -> int:
        """The number of addresses (fib columns): ``num_hosts`` unless declared."""
        return getattr(self, "_num_addrs", self.num_hosts)

    def address_of_port(self, port: int) -> int | None:
        """The address of host port ``port`` (None at a switch port)."""
        a = lib.sd_address_of_port(self._sim, int(port))
        return None if a < 0 else int(a)

    def qp_address(self, qp: int) -> tuple[int, int]:
        """(own address, peer address) of ``qp``: where its peer sends, where it sends."""
        a, b = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        self._check(lib.sd_qp_address(self._sim, int(qp), a, b))
        return int(a[0]), int(b[0])

    @property
    def no_route_drops(self) -> int:
        """Packets dropped at a switch with no route to their address (declared addresses only)."""
        return int(lib.sd_no_route_drops(self._sim))

    def add_links(self, a, b, rate_bps, delay_ps) -> None:
        a = _u32("a", a)
        n = a.shape[0]
        b, rate, delay = _u32("b", b, n), _u64("rate_bps", rate_bps, n), _i64("delay_ps", delay_ps, n)
        self._check(lib.sd_add_links(self._sim, _ptr("uint32_t *", a), _ptr("uint32_t *", b),
                                     _ptr("uint64_t *", rate), _ptr("int64_t *", delay), n))

    def set_queue(self, port: int, prio: int, cap_bytes: int, kmin_bytes: int = 0, kmax_bytes: int = 0,
                  pmax: float = 0.0) -> None:
        for name, v in (("port", port), ("prio", prio), ("cap_bytes", cap_bytes), ("kmin_bytes", kmin_bytes),
                        ("kmax_bytes", kmax_bytes)):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        self._check(lib.sd_set_queue(self._sim, port, prio, cap_bytes, kmin_bytes, kmax_bytes, float(pmax)))

    def set_qdisc(self, port: int, prio: int, kind: str, **params) -> None:
        """The queue discipline of queue (port, prio) (native/qdisc.c): ``kind`` by name, its
        parameters by the names the C provider declares (all of them). The data plane checks each
        value against its declaration (:func:`qdisc_param_decls`: an integer where it is one,
        within its range), then the discipline's rules between parameters; a ValueError names the
        discipline, the parameter, the rule and the value."""
        if not isinstance(kind, str):
            raise ValueError(f"qdisc kind must be a string, got {kind!r}")
        names = qdisc_params(kind)
        if names is None:
            self._check(lib.sd_set_qdisc(self._sim, port, prio, kind.encode(), ffi.NULL, 0))
        unknown = sorted(set(params) - set(names))
        missing = [n for n in names if n not in params]
        if unknown or missing:
            raise ValueError(f"qdisc {kind} takes {', '.join(names) or 'no parameters'}; "
                             + (f"unknown: {', '.join(unknown)} " if unknown else "")
                             + (f"missing: {', '.join(missing)}" if missing else ""))
        given = []
        for n in names:
            v = params[n]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"qdisc {kind}: {n} must be a number, got {v!r}")
            try:
                given.append(float(v))
            except OverflowError:
                raise ValueError(f"qdisc {kind}: {n} is too large, got {v!r}") from None
        # each value is checked in C against its declaration (qdisc_param_decls), then the rules
        # between parameters; the error names the discipline, the parameter and its rule
        vals = ffi.new("double[]", given or [0.0])
        self._check(lib.sd_set_qdisc(self._sim, port, prio, kind.encode(), vals, len(names)))

    def set_dscp_map(self, classes) -> None:
        """DSCP -> traffic class (0..7) of the traffic_class discipline: 64 entries."""
        c = _u32("classes", classes)
        self._check(lib.sd_set_dscp_map(self._sim, _ptr("uint32_t *", c), c.shape[0]))

    def set_qp_dscp(self, qp: int, dscp: int) -> None:
        """The DSCP of a QP pair's data packets (both ends), instead of the scenario's dscp_data."""
        self._check(lib.sd_set_qp_dscp(self._sim, qp, dscp))

    def tc_class_bytes(self, port: int) -> np.ndarray:
        """Bytes queued in each of the 8 classes of a traffic_class port."""
        out = np.zeros(8, dtype=np.uint64)
        self._check(lib.sd_tc_class_bytes(self._sim, port, _ptr("uint64_t *", out)))
        return out

    def qdisc_of(self, port: int, prio: int) -> str:
        k = lib.sd_qdisc_of(self._sim, port, prio)
        if k < 0:
            raise ValueError(f"no queue ({port}, {prio})")
        return QDISC_KINDS[k]

    def install_fib(self, fib, set_offsets, set_ports) -> None:
        fib = _u32("fib", np.asarray(fib).reshape(-1))
        if fib.shape[0] != self.num_switches * self.num_addrs:
            what = "num_addrs" if hasattr(self, "_num_addrs") else "num_hosts"
            raise ValueError(f"fib must have num_switches x {what} = {self.num_switches * self.num_addrs} "
                             f"entries, got {fib.shape[0]}")
        off, ports = _u32("set_offsets", set_offsets), _u32("set_ports", set_ports)
        if off.shape[0] < 1:
            raise ValueError("set_offsets must have at least one entry")
        self._check(lib.sd_install_fib(self._sim, _ptr("uint32_t *", fib), _ptr("uint32_t *", off),
                                       off.shape[0] - 1, _ptr("uint32_t *", ports), ports.shape[0]))

    def install_routes(self, group_fib, addr_group, local_offsets, local_switch, local_set,
                       set_offsets, set_ports) -> None:
        """The grouped FIB (controlplane/fabric/routing.py Routes; native/softdpu.h
        sd_install_routes): group_fib (num_switches x groups) of set ids, NO_ROUTE or FIB_LOCAL;
        addr_group per address; each address's own (switch index, set) entries where its group's
        entry is FIB_LOCAL, as CSR (local_offsets, num_addrs + 1)."""
        g = _u32("group_fib", group_fib)
        if g.ndim != 2 or g.shape[0] != self.num_switches or g.shape[1] < 1:
            raise ValueError(f"group_fib must be a (num_switches = {self.num_switches}, groups) table, got shape {g.shape}")
        ag = _u32("addr_group", addr_group)
        lo = _u32("local_offsets", local_offsets)
        lsw, lset = _u32("local_switch", local_switch), _u32("local_set", local_set)
        if ag.shape != (self.num_addrs,) or lo.shape != (self.num_addrs + 1,):
            raise ValueError(f"addr_group needs {self.num_addrs} entries and local_offsets {self.num_addrs + 1}, "
                             f"got {ag.shape[0]} and {lo.shape[0]}")
        if lsw.shape != lset.shape:
            raise ValueError(f"local_switch and local_set differ in length: {lsw.shape[0]} and {lset.shape[0]}")
        off, ports = _u32("set_offsets", set_offsets), _u32("set_ports", set_ports)
        if off.shape[0] < 1:
            raise ValueError("set_offsets must have at least one entry")
        g = np.ascontiguousarray(g)
        self._check(lib.sd_install_routes(self._sim, _ptr("uint32_t *", g), g.shape[1], _ptr("uint32_t *", ag),
                                          _ptr("uint32_t *", lo), _ptr("uint32_t *", lsw), _ptr("uint32_t *", lset),
                                          lsw.shape[0], _ptr("uint32_t *", off), off.shape[0] - 1,
                                          _ptr("uint32_t *", ports), ports.shape[0]))

    def fib_lookup(self, node: int, addr: int) -> int:
        """The ECMP set id switch node ``node`` has installed for address ``addr`` (0xFFFFFFFF = no route)."""
        r = lib.sd_fib_lookup(self._sim, node, addr)
        if r < 0:
            self._check(lib.SD_EINVAL)
        return int(r)

    def set_pfc(self, switch_node: int, buffer_bytes: int, reserve_bytes: int | None = None,
                resume_offset_bytes: int | None = None, alpha_shift: int | None = None,
                pause_quanta: int | None = None) -> None:
        """Enable PFC on a switch (shared buffer, HPCC switch-mmu rules); set headroom first. A
        parameter not given is pfc_params' default (controlplane/fabric/pfc.py PfcParams)."""
        p = _given("pfc_params", reserve_bytes=reserve_bytes, resume_offset_bytes=resume_offset_bytes,
                   alpha_shift=alpha_shift, pause_quanta=pause_quanta)
        self._check(lib.sd_set_pfc(self._sim, switch_node, buffer_bytes, p["reserve_bytes"], p["resume_offset_bytes"],
                                   p["alpha_shift"], p["pause_quanta"]))

    def set_pfc_headroom(self, port: int, headroom_bytes: int) -> None:
        self._check(lib.sd_set_pfc_headroom(self._sim, port, headroom_bytes))

    def set_link_up(self, link: int, up: bool) -> None:
        self._check(lib.sd_set_link_up(self._sim, link, int(bool(up))))

    # ------------------------------------------------------------------ congestion control
    def add_cc_params(self, kind: int, params: dict) -> int:
        """A parameter block for a C twin: ``params`` by name (all of them, no others);
        returns the block index to pass to :meth:`create_qp_pair`."""
        names = cc_param_names(kind)
        if not names:
            raise ValueError(f"cc kind {kind} has no C twin")
        missing, unknown = set(names) - set(params), set(params) - set(names)
        if missing or unknown:
            raise ValueError(f"cc parameters: missing {sorted(missing)}, unknown {sorted(unknown)}; expected {names}")
        values = np.array([float(params[n]) for n in names], dtype=np.float64)
        return self._check(lib.sd_add_cc_params(self._sim, kind, _ptr("double *", values), len(values)))

    def set_ack_batch(self, qp: int, n: int) -> None:
        """Deliver the ACK events of ``qp`` in batches of ``n`` ACKs (aggregated fields)."""
        self._check(lib.sd_set_ack_batch(self._sim, qp, n))

    def bench_cc_twin(self, cc_param: int, n: int = 1_000_000) -> float:
        """ns per event of a C twin's event function on a synthetic ACK stream."""
        return float(lib.sd_bench_cc_twin(self._sim, cc_param, n))

    def set_python_cc(self, qp: int, handler: Callable) -> None:
        """Route the CC events of ``qp`` (created with cc_kind=CC_PYTHON) to ``handler(io)``. A
        handler's ``cc_name`` attribute (congestion.api sets it) names the plug-in in the data
        plane's error messages (one name per simulator: the last one set)."""
        self._cc_handlers[qp] = handler
        name = getattr(handler, "cc_name", None)
        if name is not None and name != getattr(self, "_py_cc_name", None):
            self._check(lib.sd_set_python_cc_name(self._sim, str(name).encode()))
            self._py_cc_name = name

    # ------------------------------------------------------------------ transport
    def create_qp_pair(self, src: int, dst: int, sport: int, cc_kind: int = CC_NONE, cc_param: int = 0,
                       cc_events: int = ALL_EVENTS, isn: int = 0) -> int:
        for name, v in (("src", src), ("dst", dst), ("sport", sport), ("cc_param", cc_param), ("isn", isn)):
            if not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
                raise ValueError(f"qp {name} must be an integer in [0, 2^32), got {v!r}")
        return self._check(lib.sd_create_qp_pair(self._sim, src, dst, sport, cc_kind, cc_param, cc_events, isn))

    def set_qp_nic(self, qp: int, mtu_payload: int | None = None, ack_interval: int | None = None,
                   cnp_mode: str | None = None, cnp_interval_ps: int | None = None, rto_ps: int | None = None) -> None:
        """NIC settings of one end of a QP pair (native/sim.c sd_set_qp_nic), before the pair's first
        post: ``mtu_payload`` (payload bytes per packet it sends, 64..9000), ``ack_interval`` (as
        receiver: ACK every n-th packet), ``cnp_mode`` (as receiver: "interval", "ack_echo" or
        "none") and ``cnp_interval_ps`` (its minimum gap between CNPs), ``rto_ps`` (as sender).
        None = the simulator's value. The control plane's NIC profiles
        (controlplane/transport/nic_profile.py) negotiate them per pair."""
        for name, v, lo in (("mtu_payload", mtu_payload, 64), ("ack_interval", ack_interval, 1), ("rto_ps", rto_ps, 1),
                            ("cnp_interval_ps", cnp_interval_ps, 0)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v < 2**63
                                  or name in ("mtu_payload", "ack_interval") and v >= 2**32):
                raise ValueError(f"qp_nic: {name} must be an integer >= {lo}, got {v!r}")
        if cnp_mode is not None and cnp_mode not in QP_CNP_MODES:
            raise ValueError(f"qp_nic: cnp_mode must be one of {sorted(QP_CNP_MODES)}, got {cnp_mode!r}")
        if not isinstance(qp, (int, np.integer)) or not 0 <= qp < 2**32:
            raise ValueError(f"qp_nic: qp must be an integer in [0, 2^32), got {qp!r}")
        self._check(lib.sd_set_qp_nic(self._sim, qp, int(mtu_payload or 0), int(ack_interval or 0),
                                      lib.SD_QP_NIC_DEFAULT if cnp_mode is None else QP_CNP_MODES[cnp_mode],
                                      -1 if cnp_interval_ps is None else int(cnp_interval_ps), int(rto_ps or 0)))

    def set_qp_nak(self, qp: int, enabled: bool) -> None:
        """Whether QP end ``qp``, as a go-back-N receiver, NAKs a gap (the default) or stays silent (a
        NIC without NAK support: its sender recovers a loss only by its timeout)."""
        if not isinstance(enabled, (bool, np.bool_)):
            raise ValueError(f"qp_nak: enabled must be a bool, got {enabled!r}")
        self._check(lib.sd_set_qp_nak(self._sim, qp, int(bool(enabled))))

    def set_transport(self, qp: int, mode: str, reorder_window: int | None = None, rto_low_ps: int | None = None,
                      rto_low_pkts: int | None = None, bdp_cap: int | None = None) -> None:
        """Transport of the QP pair holding ``qp``: "gbn", "sr" (IRN selective repeat) or "ooo"
        (out-of-order placement, SRD-like); before the first post. A parameter not given is
        transport_params' default (controlplane/transport/multipath.py TransportParams)."""
        if mode not in TRANSPORTS:
            raise ValueError(f"transport: unknown mode {mode!r}; known: {sorted(TRANSPORTS)}")
        p = _given("transport_params", reorder_window=reorder_window, rto_low_ps=rto_low_ps,
                   rto_low_pkts=rto_low_pkts, bdp_cap=bdp_cap)
        if p["bdp_cap"] == "auto":
            raise ValueError("transport: bdp_cap 'auto' is resolved by the control plane (multipath.resolve); "
                             "give a packet count")
        self._check(lib.sd_set_transport(self._sim, qp, TRANSPORTS[mode], int(p["reorder_window"]),
                                         int(p["rto_low_ps"]), int(p["rto_low_pkts"]), int(p["bdp_cap"])))

    def set_paths(self, qp: int, policy: str, entropies, weights=None, ar_classes=None) -> None:
        """Path set of ``qp``'s data packets: entropies (UDP source ports) and the per-packet
        policy (a name of :data:`PATH_POLICIES`: "ecmp", "spray_rr", "spray_random", "spray_weighted",
        "reps", "flowlet", "plb", "clove", ...). ``ar_classes``: the packet classes ("data", "ack",
        "cnp") the QP marks eligible for adaptive routing; None keeps what it has
        (:meth:`set_ar_classes`). The policies of :data:`FEEDBACK_POLICIES` need the QP's
        parameters: a QP that has none yet gets path_params' defaults (:meth:`set_path_params`
        with nothing given) first."""
        if policy not in PATH_POLICIES:
            raise ValueError(f"paths: unknown policy {policy!r}; known: {sorted(PATH_POLICIES)}")
        if ar_classes is None:
            qps = self.qps
            if not 0 <= qp < len(qps):
                raise ValueError(f"paths: qp {qp} does not exist")
            mask = int(qps[qp]["ar"])
        else:
            mask = _ar_mask(ar_classes)
        if policy in FEEDBACK_POLICIES and 0 <= qp < len(self.qps) and not lib.sd_path_params_ready(self._sim, qp):
            self.set_path_params(qp)
        e = _u32("paths.entropies", entropies)
        w = _u32("paths.weights", weights, len(e)) if weights is not None else None
        self._check(lib.sd_set_paths(self._sim, qp, PATH_POLICIES[policy], _ptr("uint32_t *", e),
                                     _ptr("uint32_t *", w) if w is not None else ffi.NULL, len(e), mask))

    def path_set(self, qp: int) -> PathSet:
        """``qp``'s path set, decoded (sd_get_paths): a QP without one reports "ecmp" on its own
        UDP source port."""
        out = ffi.new("sd_path_set *")
        self._check(lib.sd_get_paths(self._sim, qp, out))
        policy = PATH_POLICY_NAMES[int(out.policy)]
        kinds = path_policy_param_kinds(policy)
        params = {k: (int(out.param_int[i]) if kinds[k] == "int" else float(out.param[i]))
                  for i, k in enumerate(list(kinds)[:out.nparams])}
        return PathSet(policy=policy, entropies=tuple(int(out.entropy[i]) for i in range(out.n)),
                       weights=tuple(float(out.weight[i]) for i in range(out.n)),
                       ar_classes=frozenset(c for c, bit in AR_CLASSES.items() if out.ar_classes & bit),
                       params=types.MappingProxyType(params))

    def set_path_params(self, qp: int, **params) -> None:
        """Parameters of the path policies of ``qp`` (the path_params block; before or after
        :meth:`set_paths`), by the names the policies' C providers declare (:data:`PATH_PARAMS`:
        flowlet_gap_ps, plb_cong_thresh, plb_rehash_rounds, plb_suspend_ps, ...). A parameter not
        given (or None) is path_params' default (controlplane/transport/multipath.py, each policy's
        model: 100 us flowlet gap; PLB as Linux); the data plane has none of its own. Every name is
        set, each through sd_set_path_param (integers exactly)."""
        unknown = sorted(set(params) - set(PATH_PARAMS))
        if unknown:
            raise ValueError(f"path_params: unknown parameter(s) {unknown}; the policies read {list(PATH_PARAMS)}")
        p = _given("path_params", **{n: params.get(n) for n in PATH_PARAMS})
        for name, kind in PATH_PARAMS.items():
            v = p[name]
            if kind == "int":
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -2**63 <= v < 2**63:
                    raise ValueError(f"path_params: {name} must be an integer, got {v!r}")
                self._check(lib.sd_set_path_param(self._sim, qp, name.encode(), int(v), 0.0))
            else:
                self._check(lib.sd_set_path_param(self._sim, qp, name.encode(), 0, float(v)))

    @property
    def path_states(self) -> np.ndarray:
        """Per-QP path state (rows indexed like :attr:`qps`; zero for QPs without a path set)."""
        n = ffi.new("uint32_t *")
        return _view(lib.sd_path_states(self._sim, n), n[0], "sd_path_stats", PATH_STATE_DTYPE)

    def set_adaptive_routing(self, switch_node: int, on: bool | str = True) -> None:
        """Adaptive routing at a switch: True or "bytes" (least queued bytes), "delay" (least
        queued bytes / link rate), False = ECMP only."""
        modes = {False: lib.SD_AR_OFF, True: lib.SD_AR_BYTES, "bytes": lib.SD_AR_BYTES, "delay": lib.SD_AR_DELAY}
        if on not in modes:
            raise ValueError(f"adaptive_routing: mode must be True/False, 'bytes' or 'delay', got {on!r}")
        self._check(lib.sd_set_adaptive_routing(self._sim, switch_node, modes[on]))

    def trace_path(self, src: int, dst: int, sport: int, src_port: int | None = None) -> list[int]:
        """Link indices of the ECMP path of (src, dst, sport), in order: from host ``src``'s first
        port, or from ``src_port`` (a port of host ``src``: the port a QP is bound to), to address
        ``dst`` (host ``dst`` unless addresses are declared)."""
        out = ffi.new("uint32_t[64]")
        if src_port is None:
            n = self._check(lib.sd_trace_path(self._sim, src, dst, sport, out, 64))
        else:
            if not (isinstance(src_port, (int, np.integer)) and 0 <= src_port < len(self.ports)) \
                    or int(self.ports[src_port]["node"]) != src:
                raise ValueError(f"trace_path: port {src_port} is not a port of host {src}")
            n = self._check(lib.sd_trace_path_from(self._sim, src_port, dst, sport, out, 64))
        return [int(out[i]) for i in range(n)]

    def bind_qp(self, qp: int, port: int) -> None:
        """Bind one QP to a port (NIC) of its host (native/sim.c sd_bind_qp): its data, ACKs and
        CNPs leave by that port. A QP with posted messages moves only between ports of one rate."""
        for name, v in (("qp", qp), ("port", port)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**32:
                raise ValueError(f"bind_qp: {name} must be a non-negative integer, got {v!r}")
        self._check(lib.sd_bind_qp(self._sim, int(qp), int(port)))

    def set_ar_classes(self, qp: int, classes) -> None:
        """Packet classes ``qp`` marks eligible for adaptive routing: any of "data", "ack", "cnp"."""
        self._check(lib.sd_set_ar_classes(self._sim, qp, _ar_mask(classes)))

    def set_port_loss(self, port: int, probability: float) -> None:
        """Random loss per packet on the link direction leaving ``port``."""
        self._check(lib.sd_set_port_loss(self._sim, port, float(probability)))

    # ------------------------------------------------------------------ QP-context cache (native/qpc.c)
    def set_qpc(self, host: int, entries: int, fetch_latency_ps: int | None = None,
                max_outstanding: int | None = None, policy: str | None = None) -> None:
        """QP-context cache of ``host``'s NIC: ``entries`` contexts (0 = none), a miss fetches over
        PCIe in ``fetch_latency_ps`` with at most ``max_outstanding`` fetches in flight (more wait
        in a FIFO); replacement ``policy`` "lru", "fifo" or "random". Only while that cache is empty.
        A parameter not given is the qpc section's default (controlplane/dpu/qpc.py Qpc)."""
        p = _given("qpc", fetch_latency_ps=fetch_latency_ps, max_outstanding=max_outstanding, policy=policy)
        fetch_latency_ps, max_outstanding, policy = p["fetch_latency_ps"], p["max_outstanding"], p["policy"]
        if policy not in QPC_POLICIES:
            raise ValueError(f"qpc: policy must be one of {sorted(QPC_POLICIES)}, got {policy!r}")
        for name, v in (("host", host), ("entries", entries), ("max_outstanding", max_outstanding)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v < 2**32:
                raise ValueError(f"qpc: {name} must be an integer in [0, 2^32), got {v!r}")
        if not isinstance(fetch_latency_ps, (int, np.integer)) or isinstance(fetch_latency_ps, bool) \
                or not 0 <= fetch_latency_ps < 2**62:
            raise ValueError(f"qpc: fetch_latency_ps must be a non-negative integer (ps), got {fetch_latency_ps!r}")
        if entries > 0 and max_outstanding < 1:
            raise ValueError(f"qpc: max_outstanding must be >= 1 when the cache is enabled, got {max_outstanding}")
        if not 0 <= host < self.num_hosts:
            raise ValueError(f"qpc: host {host} is not a host (hosts are 0..{self.num_hosts - 1})")
        self._check(lib.sd_set_qpc(self._sim, host, entries, fetch_latency_ps, max_outstanding, QPC_POLICIES[policy]))

    def set_qpc_trace(self, capacity: int) -> None:
        """Record the first ``capacity`` QPC cache events (accesses, fills, evictions) of all hosts."""
        if not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool) or not 0 <= capacity < 2**32:
            raise ValueError(f"qpc trace capacity must be an integer in [0, 2^32), got {capacity!r}")
        self._check(lib.sd_set_qpc_trace(self._sim, capacity))

    @property
    def qpc_hosts(self) -> np.ndarray:
        """Per-host QPC cache configuration, state and counters (empty until some host has one)."""
        n = ffi.new("uint32_t *")
        return _view(lib.sd_qpc_hosts(self._sim, n), n[0], "sd_qpc_host", QPC_HOST_DTYPE)

    @property
    def qpc_trace(self) -> tuple[np.ndarray, int]:
        """(recorded cache events, events not recorded because the trace was full)."""
        n, dropped = ffi.new("uint32_t *"), ffi.new("uint64_t *")
        ptr = lib.sd_qpc_trace(self._sim, n, dropped)
        return _view(ptr, n[0], "sd_qpc_rec", QPC_REC_DTYPE), int(dropped[0])

    def post_writes(self, qp, nbytes, post_ps) -> int:
        qp = _u32("qp", qp)
        n = qp.shape[0]
        if n == 0:
            return self.num_msgs
        b, t = _u64("bytes", nbytes, n), _i64("post_ps", post_ps, n)
        return self._check(lib.sd_post_writes(self._sim, _ptr("uint32_t *", qp), _ptr("uint64_t *", b),
                                              _ptr("int64_t *", t), n))

    def post_msgs(self, qp, nbytes, post_ps, verbs) -> int:
        """Post messages of any verb: ``verbs`` holds names ("write", "send", "read", ...: VERBS) or
        their codes. Returns the first message's index."""
        qp = _u32("qp", qp)
        n = qp.shape[0]
        if n == 0:
            return self.num_msgs
        b, t = _u64("bytes", nbytes, n), _i64("post_ps", post_ps, n)
        codes = []
        for i, v in enumerate(verbs):
            if isinstance(v, str):
                if v not in VERBS:
                    raise ValueError(f"verbs[{i}] = {v!r} is not one of {sorted(VERBS)}")
                v = VERBS[v]
            codes.append(v)
        vb = _u32("verbs", codes, n)
        if vb.size and vb.max() >= len(VERBS):
            raise ValueError(f"verbs: codes are 0..{len(VERBS) - 1}, got {int(vb.max())}")
        vb = vb.astype(np.uint8)
        return self._check(lib.sd_post_msgs(self._sim, _ptr("uint32_t *", qp), _ptr("uint64_t *", b),
                                            _ptr("int64_t *", t), _ptr("uint8_t *", vb), n))

    def set_qp_verbs(self, qp: int, rq_depth: int | None = None, rq_repost_ps: int = 0, min_rnr_timer: int = 12,
                     rnr_retry: int = 7, max_rd_atomic: int = MAX_RD_ATOMIC) -> None:
        """The verbs settings of one QP end (sd_set_qp_verbs): ``rq_depth`` receives posted (None:
        unlimited), each reposted ``rq_repost_ps`` after use (< 0: never), the RNR timer code of its RNR
        NAKs, its RNR retry count (7 = forever) and its outstanding READs at most."""
        depth = RQ_UNLIMITED if rq_depth is None else rq_depth
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= RQ_UNLIMITED:
            raise ValueError(f"rq_depth must be an integer in [0, 2^32 - 1) or None (unlimited), got {rq_depth!r}")
        self._check(lib.sd_set_qp_verbs(self._sim, qp, depth, rq_repost_ps, min_rnr_timer, rnr_retry, max_rd_atomic))

    def post_recv(self, qp: int, n: int = 1) -> None:
        """The application posts ``n`` more receives at QP end ``qp`` now."""
        self._check(lib.sd_post_recv(self._sim, qp, n))

    def set_atomic_args(self, msg: int, value: int = 1, compare: int = 0) -> None:
        """The operands of an ATOMIC message not yet sent: ``value`` = the swap data of a
        compare-and-swap or the add data of a fetch-and-add (unsigned 64-bit, adds wrap), ``compare``
        = the compare data."""
        for name, v in (("value", value), ("compare", compare)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
                raise ValueError(f"atomic {name} must be an unsigned 64-bit integer, got {v!r}")
        self._check(lib.sd_set_atomic_args(self._sim, msg, value, compare))

    def atomic_word(self, qp: int) -> int:
        """The 64-bit word the ATOMICs to QP end ``qp`` operate on."""
        out = ffi.new("uint64_t *")
        self._check(lib.sd_atomic_word(self._sim, qp, out))
        return int(out[0])

    def set_atomic_word(self, qp: int, value: int) -> None:
        self._check(lib.sd_set_atomic_word(self._sim, qp, value))

    # ------------------------------------------------------------------ DPU vSwitch (native/vswitch.c)
    def vs_enable(self, host: int, max_flows: int | None = None, emc_entries: int | None = None,
                  emc_insert_inv_prob: int | None = None, upcall_queue: int | None = None,
                  max_meters: int | None = None, rerank_interval_ps: int | None = None) -> None:
        """Give DPU ``host`` a vSwitch. A parameter not given is dpu.vswitch's default
        (controlplane/dpu/vswitch.py VSwitch: OVS's flow limit, EMC size and insert probability,
        dpcls re-ranking every 1 s)."""
        p = _given("dpu.vswitch", max_flows=max_flows, emc_entries=emc_entries,
                   emc_insert_inv_prob=emc_insert_inv_prob, upcall_queue=upcall_queue, max_meters=max_meters,
                   rerank_interval_ps=rerank_interval_ps)
        self._check(lib.sd_vs_enable(self._sim, host, p["max_flows"], p["emc_entries"], p["emc_insert_inv_prob"],
                                     p["upcall_queue"], p["max_meters"], int(p["rerank_interval_ps"])))

    def vs_debug_fail_alloc(self, nth: int) -> None:
        """Test hook: the ``nth`` vSwitch setup allocation from now on fails as if out of memory (0 disarms)."""
        self._check(lib.sd_vs_debug_fail_alloc(self._sim, int(nth)))

    def vs_add_vf(self, host: int, vni: int, ip: int) -> int:
        """A VF on DPU ``host`` for the tenant ``vni`` at IPv4 ``ip`` (int); returns its global id."""
        return self._check(lib.sd_vs_add_vf(self._sim, host, vni, ip))

    def vs_set_qp_function(self, qp: int, vf: int | None) -> None:
        self._check(lib.sd_vs_set_qp_function(self._sim, qp, NONE if vf is None else vf))

    def vs_set_meter(self, host: int, meter: int, rate_bps: int, burst_bytes: int) -> None:
        self._check(lib.sd_vs_set_meter(self._sim, host, meter, int(rate_bps), int(burst_bytes)))

    def vs_install(self, host: int, value, mask, priority: int, actions: dict, active_ps: int | None = None) -> int:
        v, m = _key("value", value), _key("mask", mask)
        if not isinstance(priority, (int, np.integer)) or not -2**31 <= priority < 2**31:
            raise ValueError(f"priority must be a 32-bit integer, got {priority!r}")
        return self._check(lib.sd_vs_install(self._sim, host, _ptr("uint32_t *", v), _ptr("uint32_t *", m),
                                             int(priority), vs_action(actions),
                                             self.now if active_ps is None else int(active_ps)))

    def vs_install_raw(self, host: int, value: np.ndarray, mask: np.ndarray, priority: int, action,
                       active_ps: int) -> int:
        """vs_install for the slow path's hot loop: contiguous uint32 keys and an ``sd_vs_action``
        from :func:`vs_action` (the C side still checks everything)."""
        return self._check(lib.sd_vs_install(self._sim, host, ffi.cast("uint32_t *", ffi.from_buffer(value)),
                                             ffi.cast("uint32_t *", ffi.from_buffer(mask)), priority, action, active_ps))

    def vs_execute_raw(self, host: int, slot: int, action, at_ps: int) -> None:
        self._check(lib.sd_vs_execute(self._sim, host, slot, action, at_ps))

    def vs_delete(self, host: int, flow: int) -> None:
        self._check(lib.sd_vs_delete(self._sim, host, flow))

    def vs_modify(self, host: int, flow: int, actions: dict) -> None:
        self._check(lib.sd_vs_modify(self._sim, host, flow, vs_action(actions)))

    def vs_drain_upcalls(self, max_items: int = 4096) -> np.ndarray:
        """The queued upcalls, oldest first (a copy)."""
        buf = getattr(self, "_upbuf", None)
        if buf is None or len(buf) < max_items:
            buf = self._upbuf = np.zeros(max_items, dtype=VS_UPCALL_DTYPE)
            self._upptr = ffi.cast("sd_vs_upcall *", ffi.from_buffer(buf))
        n = lib.sd_vs_drain_upcalls(self._sim, self._upptr, max_items)
        return buf[:n].copy()

    def vs_set_lookahead(self, lookahead_ps: int) -> None:
        """Let run_until go on up to ``lookahead_ps`` past the oldest pending upcall before it
        returns STOP_UPCALL (batching; exact if nothing the slow path does about an upcall at t
        can take effect before t + lookahead_ps)."""
        self._check(lib.sd_vs_set_lookahead(self._sim, int(lookahead_ps)))

    def vs_execute(self, host: int, slot: int, actions: dict, at_ps: int) -> None:
        self._check(lib.sd_vs_execute(self._sim, host, slot, vs_action(actions), int(at_ps)))

    def vs_lookup(self, host: int, key) -> tuple[int, int]:
        """(flow id or -1, subtables probed) for a key, as the classifier sees it now."""
        k = _key("key", key)
        flow, probes = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        self._check(lib.sd_vs_lookup(self._sim, host, _ptr("uint32_t *", k), flow, probes))
        return (-1 if flow[0] == NONE else int(flow[0])), int(probes[0])

    def vs_bench_lookup(self, host: int, keys: np.ndarray, reps: int) -> float:
        """ns per fast-path lookup (EMC then classifier) of ``keys`` (n x 8 uint32), each ``reps`` times."""
        k = np.ascontiguousarray(keys, dtype=np.uint32)
        if k.ndim != 2 or k.shape[1] != VS_KEY_WORDS:
            raise ValueError(f"keys must have shape (n, {VS_KEY_WORDS})")
        ns = lib.sd_vs_bench_lookup(self._sim, host, _ptr("uint32_t *", k), k.shape[0], reps)
        if ns < 0:
            raise ValueError("bench lookup: no key matched a flow (or no vSwitch on this DPU)")
        return ns

    def vs_flows(self, host: int) -> np.ndarray:
        """All flow slots of a DPU (free ones have subtable == NONE); re-fetch after installs."""
        n = ffi.new("uint32_t *")
        ptr = lib.sd_vs_flows(self._sim, host, n)
        return _view(ptr, n[0], "sd_vs_flow", VS_FLOW_DTYPE)

    @property
    def vs_vfs(self) -> np.ndarray:
        n = ffi.new("uint32_t *")
        ptr = lib.sd_vs_vfs(self._sim, n)
        return _view(ptr, n[0], "sd_vs_vf", VS_VF_DTYPE)

    @property
    def vs_stats(self) -> np.ndarray:
        """Per-DPU vSwitch counters (one row per host; zeros without a vSwitch)."""
        n = ffi.new("uint32_t *")
        ptr = lib.sd_vs_get_stats(self._sim, n)
        if n[0] == 0:
            return np.zeros(self.num_hosts, dtype=VS_STATS_DTYPE)
        return _view(ptr, n[0], "sd_vs_stats", VS_STATS_DTYPE)

    def vs_packet_key(self, qp: int) -> np.ndarray:
        """The flow key a data packet of ``qp`` presents to its DPU's vSwitch."""
        k = np.zeros(VS_KEY_WORDS, dtype=np.uint32)
        self._check(lib.sd_vs_packet_key(self._sim, qp, _ptr("uint32_t *", k)))
        return k

    # ------------------------------------------------------------------ running
    def run_until(self, t_ps: int) -> int:
        """Advance to ``t_ps`` or an earlier stop; returns STOP_TIME, STOP_IDLE, STOP_COMPLETIONS,
        STOP_UPCALL (vSwitch misses wait in the upcall queue: drain them with vs_drain_upcalls), or,
        with :meth:`set_run_budget`, STOP_EVENTS (a chunk of events ran) or STOP_MAX_EVENTS (the
        budget is used up; the state is between two events, a larger budget lets the run go on), or
        with :meth:`set_wall_budget`, STOP_WALL (its deadline passed; the state is between two events).
        Raises SimError when an event could not be scheduled (the event queue could not grow or
        reached :meth:`set_event_limit`) or when the run made no progress (more events at one
        picosecond than :meth:`set_stall_limit`); the run cannot go on, later calls raise the same
        error, and the views and counters keep the state at the failure. Raises CCPluginError when a
        CC raised, set a rate below the floor or armed a timer at or before now."""
        if self._stall_limit is None:       # the guard scales with the fabric as it is now
            n = ffi.new("uint32_t *")
            lib.sd_ports(self._sim, n)
            ports = n[0]
            lib.sd_qps(self._sim, n)
            stall = STALL_EVENTS + STALL_EVENTS_PER_OBJECT * (ports + n[0] + self.num_hosts)
            if stall != self._stall_set:
                self._check(lib.sd_set_stall_limit(self._sim, stall))
                self._stall_set = stall
        rc = lib.sd_run_until(self._sim, int(t_ps))
        if _cc_error:
            exc = _cc_error.pop()
            _cc_error.clear()
            raise exc
        if rc == lib.SD_ECC:             # a CC set a rate below the floor: the run stops cleanly
            raise CCPluginError(ffi.string(lib.sd_last_error(self._sim)).decode())
        return self._check(rc)

    def advance_idle(self, t_ps: int) -> None:
        """Move an idle data plane's clock to ``t_ps`` (>= now): the control loop does so when the
        data plane went idle but a busy controller acts later (a compute delay, a failure to come).
        SimError if an event or upcall is pending; ValueError if ``t_ps`` is before now (as
        :meth:`run_until`)."""
        self._check(lib.sd_advance_idle(self._sim, int(t_ps)))

    def set_event_limit(self, max_pending: int) -> None:
        """Cap the number of pending events (0 = no cap). Scheduling one more fails the run as an
        allocation failure would: run_until raises SimError naming the event, and keeps raising
        it (the state stays readable). For tests of that path and as a memory guard."""
        if not isinstance(max_pending, (int, np.integer)) or isinstance(max_pending, bool) or \
                not 0 <= max_pending < 2**64:
            raise ValueError(f"event limit must be an integer in [0, 2^64), got {max_pending!r}")
        self._check(lib.sd_set_event_limit(self._sim, int(max_pending)))

    def set_run_budget(self, max_events: int = 0, chunk_events: int = 0) -> None:
        """The event budget of :meth:`run_until` (both 0 = none, the default): it returns
        STOP_MAX_EVENTS rather than handle an event beyond ``max_events`` (counted over the whole
        run, the ``events`` counter), and STOP_EVENTS after ``chunk_events`` events in one call (a
        point where a control plane can check a wall-clock budget). Neither changes the events
        that run: calling again resumes exactly where the run stopped."""
        for name, v in (("max_events", max_events), ("chunk_events", chunk_events)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v < 2**64:
                raise ValueError(f"{name} must be an integer in [0, 2^64), got {v!r}")
        self._check(lib.sd_set_run_budget(self._sim, int(max_events), int(chunk_events)))

    def set_wall_budget(self, seconds: float = 0.0) -> None:
        """The wall-clock budget of :meth:`run_until`: it returns STOP_WALL rather than handle an
        event once ``seconds`` of wall clock (monotonic) have passed since this call (0 = none, the
        default). The data plane reads the clock every WALL_CHECK_EVENTS events and after every
        event that called a Python plug-in, so a run stops within a few ms of the deadline unless a
        single plug-in call takes longer. Each call starts a new deadline."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
                or not 0 <= float(seconds) <= 1e9:
            raise ValueError(f"wall budget must be a number of seconds in [0, 1e9], got {seconds!r}")
        self._check(lib.sd_set_wall_budget(self._sim, float(seconds)))

    def set_stall_limit(self, max_same_instant: int | None = None) -> None:
        """Most events at one picosecond before :meth:`run_until` fails with SimError ("no
        progress"), naming the next event; None (the default) = STALL_EVENTS (10 million) + 16 per
        port, QP and host, recomputed at each run_until, far above a legitimate burst (each has a
        handful of events at one instant). For tests; and a guard against any cycle that does not
        advance time. The data plane has no default: it refuses to run without one."""
        if max_same_instant is None:
            self._stall_limit = None
            self._stall_set = None
            return
        if not isinstance(max_same_instant, (int, np.integer)) or isinstance(max_same_instant, bool) or \
                not 1 <= max_same_instant < 2**64:
            raise ValueError(f"stall limit must be an integer in [1, 2^64), got {max_same_instant!r}")
        self._stall_limit = self._stall_set = int(max_same_instant)
        self._check(lib.sd_set_stall_limit(self._sim, int(max_same_instant)))

    @property
    def events(self) -> int:
        """Events handled so far (the ``events`` counter)."""
        return int(lib.sd_get_counters(self._sim).events)

    @property
    def now(self) -> int:
        return lib.sd_now(self._sim)

    def drain_completions(self, max_items: int = 4096) -> np.ndarray:
        out = np.zeros(max_items, dtype=COMPLETION_DTYPE)
        n = lib.sd_drain_completions(self._sim, ffi.cast("sd_completion *", ffi.from_buffer(out)), max_items)
        return out[:n]

    # ------------------------------------------------------------------ wire and capture
    def encode(self, packet) -> bytes:
        """The frame of one packet (a PACKET_DTYPE record or a dict of its fields), Ethernet
        header to ICRC, as a capture would show it."""
        pk = self._packet(packet)
        buf = ffi.new("uint8_t[]", 65536 + 256)
        n = self._check(lib.sd_encode(self._sim, pk, buf, len(buf), len(buf)))
        return bytes(ffi.buffer(buf, n))

    def encode_meta(self, packet, meta: int) -> bytes:
        """As :meth:`encode`, with vSwitch metadata (VNI | VS_META_ENCAP: a VXLAN frame)."""
        pk = self._packet(packet)
        buf = ffi.new("uint8_t[]", 65536 + 256)
        n = self._check(lib.sd_encode_meta(self._sim, pk, int(meta), buf, len(buf), len(buf)))
        return bytes(ffi.buffer(buf, n))

    @staticmethod
    def _packet(packet):
        pk = ffi.new("sd_packet *")
        fields = packet if isinstance(packet, dict) else {n: packet[n] for n in PACKET_DTYPE.names}
        pk.msg = NONE
        pk.ttl = 64
        for name, value in fields.items():
            if name not in PACKET_DTYPE.names:
                raise ValueError(f"packet has no field {name!r}; fields: {PACKET_DTYPE.names}")
            if name != "pad0":
                setattr(pk, name, int(value))
        return pk

    def write_pcap(self, path, packets: np.ndarray, t_ps, snaplen: int | None = None) -> None:
        """Write PACKET_DTYPE records with their timestamps (ps) to a pcap file (``snaplen`` not
        given: the capture filter's default, controlplane/results/capture.py)."""
        snaplen = _given("--pcap-filter", snaplen=snaplen)["snaplen"]
        packets = np.ascontiguousarray(packets, dtype=PACKET_DTYPE)
        t = _i64("t_ps", t_ps, packets.shape[0])
        ptr = ffi.cast("sd_packet *", ffi.from_buffer(packets)) if packets.size else ffi.NULL
        self._check(lib.sd_write_pcap(self._sim, str(path).encode(), ptr, _ptr("int64_t *", t), packets.shape[0],
                                      snaplen))

    def capture_open(self, path, snaplen: int | None = None, t_start_ps: int | None = None,
                     t_end_ps: int | None = None, max_packets: int | None = None, qp: int | None = None) -> int:
        """Start a pcap capture session; attach ports with :meth:`capture_port`. A limit not given
        is the capture filter's default (controlplane/results/capture.py CaptureFilter: 65535 bytes, the
        whole run, no packet limit)."""
        p = _given("--pcap-filter", snaplen=snaplen, from_ps=t_start_ps, to_ps=t_end_ps, max_packets=max_packets)
        snaplen, t_start_ps, t_end_ps, max_packets = p["snaplen"], p["from_ps"], p["to_ps"], p["max_packets"]
        if not isinstance(max_packets, (int, np.integer)) or max_packets < 0:
            raise ValueError(f"max_packets must be a non-negative integer, got {max_packets!r}")
        return self._check(lib.sd_capture_open(self._sim, str(path).encode(), snaplen, int(t_start_ps), int(t_end_ps),
                                               max_packets, NONE if qp is None else qp))

    def capture_port(self, session: int, port: int, tx: bool = True, rx: bool = False) -> None:
        self._check(lib.sd_capture_port(self._sim, session, port, int(bool(tx)), int(bool(rx))))

    def capture_stats(self, session: int) -> tuple[int, int]:
        """(packets, bytes) written by a session so far."""
        p, b = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        self._check(lib.sd_capture_stats(self._sim, session, p, b))
        return int(p[0]), int(b[0])

    def capture_close(self, session: int) -> tuple[int, int]:
        stats = self.capture_stats(session)
        self._check(lib.sd_capture_close(self._sim, session))
        return stats

    # ------------------------------------------------------------------ views
    @property
    def ports(self) -> np.ndarray:
        """Per-port telemetry records (``sd_port_stats``: counters, queue gauges, PFC state and the
        port's configuration), indexed like the ports; a view of their own C array."""
        n = ffi.new("uint32_t *")
        return _view(lib.sd_ports(self._sim, n), n[0], "sd_port_stats", PORT_DTYPE)

    @property
    def qps(self) -> np.ndarray:
        """Per-QP telemetry records (``sd_qp_stats``: rate, window, sender and receiver counters and
        the QP's configuration), indexed like the QPs; a view of their own C array."""
        n = ffi.new("uint32_t *")
        return _view(lib.sd_qps(self._sim, n), n[0], "sd_qp_stats", QP_DTYPE)

    @property
    def msgs(self) -> np.ndarray:
        n = ffi.new("uint32_t *")
        return _view(lib.sd_msgs(self._sim, n), n[0], "sd_msg", MSG_DTYPE)

    @property
    def num_msgs(self) -> int:
        n = ffi.new("uint32_t *")
        lib.sd_msgs(self._sim, n)
        return n[0]

    @property
    def trace(self) -> np.ndarray:
        n = ffi.new("uint32_t *")
        return _view(lib.sd_trace(self._sim, n), n[0], "sd_cc_trace", TRACE_DTYPE)

    def counters(self) -> dict[str, int]:
        c = lib.sd_get_counters(self._sim)
        return {name: int(getattr(c, name)) for name in COUNTER_FIELDS}

    def host_misdelivered(self, host: int) -> int:
        """Packets the NIC of ``host`` refused as not addressed to it or to its QPs (dropped)."""
        out = ffi.new("uint64_t *")
        self._check(lib.sd_host_misdelivered(self._sim, int(host), out))
        return int(out[0])

    @property
    def msgs_completed(self) -> int:
        return int(lib.sd_get_counters(self._sim).msgs_completed)

    def data_in_flight(self) -> int:
        return int(lib.sd_data_in_flight(self._sim))

    def memory_bytes(self) -> int:
        return int(lib.sd_memory_bytes(self._sim))

    def memory(self) -> dict[str, int]:
        """Bytes the data plane holds, by module (native/sim.c's module table, in its order):
        core, ports, packets, events, transport, cc, paths, reorder, pfc, int, qdisc, vswitch,
        qpc, capture. The values add up to :meth:`memory_bytes`."""
        cap = 64
        names, sizes = ffi.new("const char *[]", cap), ffi.new("uint64_t[]", cap)
        n = lib.sd_mem_report(self._sim, names, sizes, cap)
        return {ffi.string(names[i]).decode(): int(sizes[i]) for i in range(min(n, cap))}

    def wire_bytes(self, opcode: int, payload: int) -> int:
        return int(lib.sd_wire_bytes(self._sim, opcode, payload))


# Pure helpers, for tests and for the control plane's ideal-FCT arithmetic.
red_probability = lib.sd_red_probability
serialization_ps = lib.sd_serialization_ps
psn_diff = lib.sd_psn_diff
ecmp_hash = lib.sd_ecmp_hash


def icrc(frame: bytes) -> int:
    """ICRC of a frame (Ethernet header to ICRC) as the data plane computes it; the value is
    put on the wire least-significant byte first."""
    buf = ffi.from_buffer(frame)
    return lib.sd_icrc(ffi.cast("uint8_t *", buf), len(frame))
SIZEOF_PACKET = lib.sd_sizeof_packet()
# bytes per object in the data plane: its working state (private) plus its telemetry record
SIZEOF_PORT = lib.sd_sizeof_port()
SIZEOF_QP = lib.sd_sizeof_qp()
SIZEOF_PATH_STATE = lib.sd_sizeof_path_state()
OPCODES = {"send_first": lib.SD_OP_SEND_FIRST, "send_middle": lib.SD_OP_SEND_MIDDLE, "send_last": lib.SD_OP_SEND_LAST,
           "send_last_imm": lib.SD_OP_SEND_LAST_IMM, "send_only": lib.SD_OP_SEND_ONLY,
           "send_only_imm": lib.SD_OP_SEND_ONLY_IMM,
           "write_first": lib.SD_OP_WRITE_FIRST, "write_middle": lib.SD_OP_WRITE_MIDDLE,
           "write_last": lib.SD_OP_WRITE_LAST, "write_last_imm": lib.SD_OP_WRITE_LAST_IMM,
           "write_only": lib.SD_OP_WRITE_ONLY, "write_only_imm": lib.SD_OP_WRITE_ONLY_IMM,
           "read_request": lib.SD_OP_READ_REQ, "read_response_first": lib.SD_OP_READ_RESP_FIRST,
           "read_response_middle": lib.SD_OP_READ_RESP_MIDDLE, "read_response_last": lib.SD_OP_READ_RESP_LAST,
           "read_response_only": lib.SD_OP_READ_RESP_ONLY, "ack": lib.SD_OP_ACK, "atomic_ack": lib.SD_OP_ATOMIC_ACK,
           "compare_swap": lib.SD_OP_CMP_SWAP, "fetch_add": lib.SD_OP_FETCH_ADD, "cnp": lib.SD_OP_CNP}

__all__ = ["Simulator", "SimError", "BudgetExceeded", "CCPluginError", "MIN_RATE_BPS", "dtype_of", "PACKET_DTYPE", "PORT_DTYPE",
           "QP_DTYPE", "MSG_DTYPE", "TRACE_DTYPE", "red_probability", "serialization_ps", "wire_bytes", "psn_diff",
           "ecmp_hash"]
