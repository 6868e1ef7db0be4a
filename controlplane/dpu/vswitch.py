"""The DPU's functions and the vSwitch slow path: tenants, VFs, policy tables, upcall handling,
megaflow installation, idle eviction, revalidation and the dynamic flow limit.

The fast path is native/vswitch.c (an exact-match cache in front of a tuple-space classifier of
megaflows). What a miss does, as in Open vSwitch (ofproto/ofproto-dpif-upcall.c):

  1. the packet waits in the DPU's bounded upcall queue (full queue: dropped, counted ``lost``);
  2. a handler thread translates it through the policy of its tenant (here: a rule table per
     tenant and DPU, highest priority wins) into actions and a *megaflow* mask: every field any
     rule of priority >= the match looked at, plus in_port and VNI (OVS un-wildcards the fields
     its lookups consulted, so one megaflow covers every packet that would translate the same);
  3. the handler executes the packet (``sd_vs_execute``) when it is done with it, and installs the
     megaflow, visible to the fast path after ``install_latency_ps`` (a hardware table insert on an
     offloaded DPU, rte_flow / TC flower; a cmap insert in software);
  4. revalidator ticks evict flows idle for ``max_idle_ps``, re-translate flows when the policy
     changed, and adapt ``flow_limit`` to the modelled dump duration with OVS's rules.

Handlers are modelled as ``handlers`` FIFO servers, each upcall costing the virtualization-tax
model's ``upcall`` cycles (controlplane/dpu/vtax.py) on a core of wherever the vSwitch runs (DPU
cores when offloaded, host cores for a software vSwitch): the queue a storm builds, and the
install latency it causes, come from that.

Naming follows NVIDIA BlueField's representor model: the uplink ``p0``, the host PF ``pf0hpf``,
VF n ``pf0vfN`` (each VF also has a representor of that name on the DPU: the control plane's
handle for its rules and its slow-path channel).

Defaults and their sources (Open vSwitch, openvswitch/ovs: ofproto/ofproto.h, lib/dpif-netdev.c,
lib/dpif-netdev-dfc.h, ofproto/ofproto-dpif-upcall.c):
  max_flows 200 000 (OFPROTO_FLOW_LIMIT_DEFAULT), initial flow_limit min(200000, 10000),
  emc_entries 8192 (EM_FLOW_HASH_SHIFT 13), emc_insert_inv_prob 100, rerank 1 s
  (DPCLS_OPTIMIZATION_INTERVAL), max_idle 10 s, revalidator interval 500 ms (ofproto.h defaults),
  flow_limit adaptation (udpif_revalidator): dump > 2 s: limit /= dump_s; > 1.3 s: x 3/4;
  fast and limit < n_flows*1000/dump_ms: +1000; clamped to [1000, 200000]; all flows deleted
  when n_flows > 2 x flow_limit.
Assumptions (no public figure found; change them per experiment):
  upcall_queue 1024 slots per DPU; handlers 5 (OVS's default thread split on an 8-core
  BlueField-2: n_revalidators = cores/4 + 1 = 3, handlers = the other 5); install_latency_ps
  10 us; revalidate_cycles_per_flow 2 000; the upcall cost is vtax's (20 000 cycles).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, WithJsonSchema

from controlplane.dpu import vtax
from controlplane.config.schema import RATE, Bool, Choice, HostList, Int, Strict, _integer, section
from controlplane.config.units import ms, us
from dataplane.sim import NONE, VS_FIELDS, VS_KEY_WORDS, VS_MAX_VNI, VS_PF, VS_UPLINK, VS_VF0, vs_action

FULL = 0xFFFFFFFF


# ---------------------------------------------------------------------------- the dpu section's schema
# A periodic tick below 1 us (revalidation, dpcls re-ranking) would walk a DPU's tables a million
# times per simulated second: far finer than anything OVS does (its revalidator wakes every 500 ms)
# and a run that effectively never ends.
TICK_FLOOR_PS = us(1)
TIME = dict(kind="time", hi=10**15)


def _emc_entries(x: Any) -> int:
    v = _integer(None, 0, 1 << 20)(x)
    if v & (v - 1):
        raise ValueError(f"must be 0 (no EMC) or a power of 2 <= 2^20, got {x!r}")
    return v


#: the default overlay policy installs one rule per (DPU, VF of its tenant): 256 fully meshed DPUs
#: with one VF each (65,536 rules) build in seconds; the overlap check of each new rule against its
#: table makes the build quadratic per table, so far larger policies would take minutes
MAX_DEFAULT_POLICY_RULES = 65_536

class VSwitchParams(Strict):
    """The fast path of each DPU's vSwitch (native/vswitch.c; OVS lib/dpif-netdev.c defaults)."""
    max_flows: Int("megaflows a DPU's datapath holds at most (OVS OFPROTO_FLOW_LIMIT_DEFAULT)",
                   lo=1, hi=1 << 24) = 200_000
    emc_entries: Annotated[Any, BeforeValidator(_emc_entries),
                           WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 1 << 20,
                                           "description": "exact-match cache entries, 0 or a power of 2 "
                                                          "(OVS EM_FLOW_HASH_SHIFT 13: 8192)"})] = 8192
    emc_insert_inv_prob: Int("insert into the EMC once per this many misses (1: always; OVS default 100)",
                             lo=1, hi=2**32 - 1) = 100
    upcall_queue: Int("upcalls a DPU queues at most, more are lost (slots; ASSUMPTION)", lo=1, hi=1 << 20) = 1024
    max_meters: Int("meters per DPU (OVS MAX_METERS is 2^18)", lo=0, hi=1 << 18) = 64
    rerank_interval_ps: Int("dpcls subtable re-ranking period (OVS DPCLS_OPTIMIZATION_INTERVAL 1 s)",
                            lo=TICK_FLOOR_PS, **TIME) = 10**12


class SlowPathParams(Strict):
    """Upcall handlers and revalidators of each DPU (OVS ofproto-dpif-upcall.c; ASSUMPTIONS noted)."""
    handlers: Int("handler threads per DPU (ASSUMPTION: OVS's split of an 8-core BlueField-2)", lo=1,
                  hi=1024) = 5
    install_latency_ps: Int("from a handler's decision to the megaflow being visible (ASSUMPTION)",
                            lo=0, **TIME) = us(10)
    batch_upcalls: Bool("hand upcalls over in batches of one handler service time (identical results)") = True
    flow_limit: Int("initial dynamic flow limit (OVS: min(200000, 10000))", lo=1, hi=2**32 - 1) = 10_000
    max_flow_limit: Int("the flow limit never exceeds this (OVS ofproto_flow_limit)", lo=1,
                        hi=2**32 - 1) = 200_000
    max_idle_ps: Int("a megaflow idle this long is evicted (OVS max-idle 10 s)", lo=1, **TIME) = 10**13
    revalidate_interval_ps: Int("revalidator period (OVS max-revalidator 500 ms)", lo=TICK_FLOOR_PS,
                                **TIME) = ms(500)
    revalidate_cycles_per_flow: Int("cycles a revalidator spends per flow dumped (ASSUMPTION)", lo=0,
                                    hi=2**32 - 1) = 2_000


class PolicySpec(Strict):
    """The DPU's forwarding policy: the default overlay and its options."""
    overlay: Bool("install the default overlay (VXLAN) rules") = True
    per_connection: Bool("one megaflow per connection (a stateful ACL) instead of per destination") = False
    proactive: Bool("install every known connection's megaflows before the run (no upcalls)") = False
    meter_bps: Int("per-VF policer rate (None: no meter)", **RATE) | None = None
    meter_burst_bytes: Int("policer burst (bytes)", lo=1, kind="size") = 65536
    dscp: Int("DSCP the overlay rules set (None: keep)", lo=0, hi=63) | None = None


class Dpu(Strict):
    """The DPUs' functions, vSwitch, slow path, policy and tax model (``Scenario.dpu``)."""
    tenants: Int("tenants (one VNI each)", lo=1, hi=VS_MAX_VNI) = 1
    vfs_per_host: Int("VFs per DPU, >= tenants (None: tenants)", lo=1, hi=1024) | None = None
    hosts: HostList("hosts with a DPU vSwitch (None: every host)") | None = None
    vswitch: VSwitchParams | None = Field(None, description="the fast path's sizes (None: every default)")
    slow_path: SlowPathParams | None = Field(None, description="handlers and revalidators (None: every default)")
    policy: PolicySpec | None = Field(None, description="the forwarding policy (None: the default overlay)")
    offload: Choice(("dpu", "host", "hw"), "where the vSwitch runs: on the DPU's cores, on host cores (software), "
                    "or its fast path in the DPU's switch hardware") = "dpu"
    tax: vtax.Tax | None = Field(None, description="the virtualization-tax model (None: every default)")


# ---------------------------------------------------------------------------- names
def port_name(port: int) -> str:
    """BlueField names of DPU ports: p0, pf0hpf, pf0vfN."""
    if port == VS_UPLINK:
        return "p0"
    if port == VS_PF:
        return "pf0hpf"
    return f"pf0vf{port - VS_VF0}"


def port_number(name: str | int) -> int:
    if isinstance(name, (int, np.integer)):
        return int(name)
    if name == "p0":
        return VS_UPLINK
    if name == "pf0hpf":
        return VS_PF
    if name.startswith("pf0vf") and name[5:].isdigit():
        return VS_VF0 + int(name[5:])
    raise ValueError(f"unknown DPU port {name!r} (p0, pf0hpf or pf0vfN)")


def ip_int(ip) -> int:
    return int(ipaddress.IPv4Address(ip)) if not isinstance(ip, (int, np.integer)) else int(ip)


# ---------------------------------------------------------------------------- rules
def match_to_key(match: dict) -> tuple[np.ndarray, np.ndarray]:
    """(value, mask) key words from a match dict. Fields: in_port ("p0", "pf0vf3"), vni, src_ip /
    dst_ip ("10.0.1.5" or "10.0.1.0/24"), dscp, sport, dport, dqpn; each exact, or a
    (value, mask) pair of integers."""
    value = np.zeros(VS_KEY_WORDS, np.uint32)
    mask = np.zeros(VS_KEY_WORDS, np.uint32)

    def put(word: int, v: int, m: int, shift: int = 0, width: int = 32):
        field_mask = ((1 << width) - 1) << shift
        value[word] = (int(value[word]) & ~field_mask) | ((v << shift) & field_mask)
        mask[word] = (int(mask[word]) & ~field_mask) | ((m << shift) & field_mask)

    for name, spec in match.items():
        if isinstance(spec, tuple):
            v, m = int(spec[0]), int(spec[1])
        else:
            v, m = None, None
        if name == "in_port":
            put(VS_FIELDS["in_port"], port_number(spec) if v is None else v, FULL if m is None else m)
        elif name == "vni":
            vv = int(spec) if v is None else v
            if not 0 <= vv <= VS_MAX_VNI:
                raise ValueError(f"rule: vni {vv} out of range [0, 2^24-1]")
            put(VS_FIELDS["vni"], vv, FULL if m is None else m)
        elif name in ("src_ip", "dst_ip"):
            if v is None:
                net = ipaddress.IPv4Network(spec, strict=False) if "/" in str(spec) else \
                    ipaddress.IPv4Network(f"{ipaddress.IPv4Address(ip_int(spec))}/32")
                v, m = int(net.network_address), int(net.netmask)
            put(VS_FIELDS[name], v, m)
        elif name == "dscp":
            put(VS_FIELDS["proto_dscp"], int(spec) if v is None else v, 0x3F if m is None else m, 0, 8)
        elif name == "sport":
            put(VS_FIELDS["l4"], int(spec) if v is None else v, 0xFFFF if m is None else m, 16, 16)
        elif name == "dport":
            put(VS_FIELDS["l4"], int(spec) if v is None else v, 0xFFFF if m is None else m, 0, 16)
        elif name == "dqpn":
            put(VS_FIELDS["dqpn"], int(spec) if v is None else v, FULL if m is None else m)
        else:
            raise ValueError(f"rule: unknown match field {name!r} (in_port, vni, src_ip, dst_ip, dscp, sport, "
                             f"dport, dqpn)")
    return value & mask, mask


@dataclass
class Rule:
    """One policy rule: highest priority wins within a tenant table."""
    priority: int
    value: np.ndarray
    mask: np.ndarray
    actions: dict


def overlaps(a: Rule, b: Rule) -> bool:
    """Some key matches both: on every bit both rules look at, they agree."""
    common = a.mask & b.mask
    return bool(np.all((a.value & common) == (b.value & common)))


class RuleTable:
    """The rules of one tenant on one DPU (the slow path's policy, the Python reference classifier)."""

    def __init__(self, tenant: int):
        self.tenant = tenant
        self.rules: list[Rule] = []
        self._stack()

    def add(self, rule: Rule) -> None:
        for r in self.rules:
            if r.priority == rule.priority and overlaps(r, rule):
                if np.array_equal(r.mask, rule.mask) and np.array_equal(r.value, rule.value):
                    raise ValueError(f"rule: the same match at priority {rule.priority} is already in tenant "
                                     f"{self.tenant}'s table")
                raise ValueError(f"rule: overlaps another rule of tenant {self.tenant} at the same priority "
                                 f"{rule.priority} (ambiguous: give one a higher priority)")
        self.rules.append(rule)
        self.rules.sort(key=lambda r: -r.priority)
        self._stack()

    def _stack(self) -> None:
        n = len(self.rules)
        self._values = np.array([r.value for r in self.rules], np.uint32).reshape(n, VS_KEY_WORDS)
        self._masks = np.array([r.mask for r in self.rules], np.uint32).reshape(n, VS_KEY_WORDS)
        # megaflow mask if rule i wins: the OR of the masks of rules 0..i (priority order)
        self._prefix_or = np.bitwise_or.accumulate(self._masks, axis=0) if n else self._masks
        self._all_or = self._prefix_or[-1].copy() if n else np.zeros(VS_KEY_WORDS, np.uint32)

    def classify(self, key: np.ndarray) -> tuple[Rule | None, np.ndarray]:
        """The winning rule and the megaflow mask: every bit a rule of priority >= the winner's
        looked at (a lower-priority rule cannot change the outcome; a later rule of the same
        priority cannot match any packet of the megaflow, since equal priorities never overlap)."""
        if not self.rules:
            return None, self._all_or.copy()
        hit = ((key & self._masks) == self._values).all(axis=1)
        i = int(hit.argmax())
        if not hit[i]:
            return None, self._all_or.copy()
        return self.rules[i], self._prefix_or[i].copy()


def reference_lookup(rules: list[tuple[int, np.ndarray, np.ndarray]], key: np.ndarray) -> int:
    """Slow reference classifier for the differential test: index of the highest-priority rule
    matching ``key`` (rules given as (priority, value, mask)), -1 if none."""
    best, bp = -1, None
    for i, (prio, value, mask) in enumerate(rules):
        if np.all((key & mask) == value) and (bp is None or prio > bp):
            best, bp = i, prio
    return best


# ---------------------------------------------------------------------------- the DPUs of a network
def check_spec(spec, num_hosts: int) -> dict:
    """``Scenario.dpu`` validated (:class:`Dpu`, errors naming ``dpu.<key>`` as written) against a
    fabric of ``num_hosts`` hosts and completed with the defaults. Network() calls it before
    building the data plane, so a bad spec fails at build time, never after a run."""
    if not isinstance(spec, dict):
        raise ValueError(f"dpu must be a dict (a JSON object) or None, got {spec!r}")
    d = section(Dpu, spec, "dpu")
    out: dict = {"tenants": d.tenants}
    out["vfs_per_host"] = d.vfs_per_host if d.vfs_per_host is not None else d.tenants
    if out["vfs_per_host"] < out["tenants"]:
        raise ValueError(f"dpu.vfs_per_host ({out['vfs_per_host']}) must be >= dpu.tenants ({out['tenants']}): "
                         f"every tenant needs a VF on every DPU its flows use")
    if out["vfs_per_host"] > 1024:
        raise ValueError(f"dpu.vfs_per_host: at most 1024 VFs per DPU, got {out['vfs_per_host']}")
    if d.hosts is None:
        out["hosts"] = list(range(num_hosts))
    else:
        if not d.hosts:
            raise ValueError("dpu.hosts is empty: list at least one host (omit dpu.hosts for every host, "
                             "or set dpu to None for no DPU vSwitch)")
        seen = set()
        for i, h in enumerate(d.hosts):
            if not 0 <= h < num_hosts:
                raise ValueError(f"dpu.hosts[{i}]: {h!r} is not a host (hosts are 0..{num_hosts - 1})")
            if h in seen:
                raise ValueError(f"dpu.hosts[{i}]: host {h} is listed twice")
            seen.add(h)
        out["hosts"] = list(d.hosts)
    out["vswitch"] = section(VSwitchParams, spec.get("vswitch"), "dpu.vswitch").model_dump()
    out["slow_path"] = section(SlowPathParams, spec.get("slow_path"), "dpu.slow_path").model_dump()
    out["policy"] = section(PolicySpec, spec.get("policy"), "dpu.policy").model_dump()
    out["offload"] = d.offload
    tax = spec.get("tax") or {}
    vtax.params(tax)                                 # validates (names dpu.tax.<key>)
    out["tax"] = tax
    return out


class Dpus:
    """Functions, tenants, policy and the slow path of every DPU of a built network."""

    def __init__(self, net, spec: dict):
        self.net, sim = net, net.sim
        spec = check_spec(spec, net.fabric.num_hosts)
        self.tenants = spec["tenants"]
        self.vfs_per_host = spec["vfs_per_host"]
        self.vs_params = spec["vswitch"]
        self.sp = spec["slow_path"]
        self.policy_spec = spec["policy"]
        self.per_connection = bool(self.policy_spec["per_connection"])
        self.offload = spec["offload"]
        self.tax_params = spec["tax"]
        self.hosts = spec["hosts"]
        # functions: VF n of a DPU belongs to tenant (n % tenants) + 1; its address is tenant-scoped
        # (10.<host>.<k+1>, the same in every tenant: VNIs keep them apart)
        self.vf_of: dict[tuple[int, int], list[int]] = {}      # (host, tenant) -> global VF ids
        self.vf_info: dict[int, dict] = {}                       # global VF id -> its description
        self.vf_global: dict[tuple[int, int], int] = {}          # (host, n of pf0vfN) -> global VF id
        for h in self.hosts:
            sim.vs_enable(h, **self.vs_params)
            for n in range(self.vfs_per_host):
                t = n % self.tenants + 1
                k = n // self.tenants
                ip = (10 << 24) | ((h & 0xFFFF) << 8) | (k + 1)
                g = sim.vs_add_vf(h, t, ip)
                self.vf_of.setdefault((h, t), []).append(g)
                self.vf_global[(h, n)] = g
                self.vf_info[g] = {"host": h, "index": n, "tenant": t, "ip": ip, "name": port_name(VS_VF0 + n)}
            if self.policy_spec["meter_bps"]:
                for n in range(self.vfs_per_host):
                    sim.vs_set_meter(h, n, int(self.policy_spec["meter_bps"]), int(self.policy_spec["meter_burst_bytes"]))
        self.tables: dict[tuple[int, int], RuleTable] = {}
        self.policy_version = 0
        self._xlate_cache: dict[tuple[int, bytes], tuple] = {}
        self._xlate_version = 0
        self.tax = vtax.params(self.tax_params)
        self.core_hz = self.tax["host_core_hz"] if self.offload == "host" else self.tax["dpu_core_hz"]
        self.slow = SlowPath(self)

    # -------------------------------------------------------------- placing QPs on functions
    def place_flows(self) -> None:
        """Flow i belongs to tenant (i % tenants) + 1; both ends sit on a VF of that tenant. A flow
        with an end on a host without a DPU vSwitch stays on the PFs (provider traffic, untunnelled):
        a tenant VM can only talk to its tenant's VMs, and those live behind DPUs."""
        sim, net = self.net.sim, self.net
        hosted = set(self.hosts)
        placed: set[int] = set()
        self.qp_tenant: dict[int, int] = {}
        for i, f in enumerate(net.flows):
            qp = int(net.qps[i])
            if qp in placed:
                continue                         # another message on the same connection
            placed.add(qp)
            if f.src not in hosted or f.dst not in hosted:
                self.qp_tenant[qp] = 0
                continue
            t = i % self.tenants + 1
            self.qp_tenant[qp] = t
            for q, h in ((qp, f.src), (int(sim.qps[qp]["peer_qp"]), f.dst)):
                vfs = self.vf_of[(h, t)]
                sim.vs_set_qp_function(q, vfs[(i // self.tenants) % len(vfs)])

    def tenant_of_port(self, host: int, in_port: int, vni: int) -> int:
        if in_port == VS_UPLINK:
            return vni
        if in_port == VS_PF:
            return 0
        return self.vf_info[self.vf_global[(host, in_port - VS_VF0)]]["tenant"]

    # -------------------------------------------------------------- policy
    def table(self, host: int, tenant: int) -> RuleTable:
        key = (host, tenant)
        if key not in self.tables:
            self.tables[key] = RuleTable(tenant)
        return self.tables[key]

    def add_rule(self, host: int, tenant: int, priority: int, match: dict, actions: dict) -> Rule:
        """Add a policy rule for ``tenant`` on DPU ``host``; validated (VNI range, VFs of this tenant,
        ambiguous overlaps); takes effect for new upcalls at once and for installed megaflows at the
        next revalidation."""
        if host not in self.hosts:
            raise ValueError(f"rule: host {host} has no DPU vSwitch")
        if not 0 <= tenant <= self.tenants:
            raise ValueError(f"rule: unknown tenant {tenant} (tenants are 1..{self.tenants}, 0 = provider)")
        acts = dict(actions)
        if "output" in acts:
            out = port_number(acts["output"])
            if out >= VS_VF0:
                n = out - VS_VF0
                if n >= self.vfs_per_host:
                    raise ValueError(f"rule: unknown VF {port_name(out)} on dpu {host} ({self.vfs_per_host} VFs)")
                if self.vf_info[self.vf_global[(host, n)]]["tenant"] != tenant:
                    raise ValueError(f"rule: {port_name(out)} on dpu {host} belongs to tenant "
                                     f"{self.vf_info[self.vf_global[(host, n)]]['tenant']}, not {tenant}")
            acts["output"] = out
        if "encap" in acts:
            vni = acts["encap"]
            if not isinstance(vni, (int, np.integer)) or not 1 <= vni <= VS_MAX_VNI:
                raise ValueError(f"rule: encap VNI {vni!r} out of range [1, 2^24-1]")
            if vni != tenant:
                raise ValueError(f"rule: tenant {tenant} may only encapsulate into its own VNI, not {vni}")
        if acts.get("tun_dst") is not None:
            # a tunnel must end at a VTEP of the same tenant: a DPU with a vSwitch and a VF of that tenant
            # (a NIC without a vSwitch would neither decapsulate the frame nor own the QP inside it)
            dst = acts["tun_dst"]
            if "encap" not in acts:
                raise ValueError("rule: tun_dst needs encap (the tunnel's VNI)")
            if isinstance(dst, bool) or not isinstance(dst, (int, np.integer)):
                raise ValueError(f"rule: tun_dst must be a host id, got {dst!r}")
            if int(dst) not in self.hosts:
                raise ValueError(f"rule: tun_dst {dst} has no DPU vSwitch to end the tunnel (dpu.hosts: "
                                 f"{_ranges(self.hosts)})")
            if (int(dst), tenant) not in self.vf_of:
                raise ValueError(f"rule: tun_dst {dst} has no function of tenant {tenant}")
            acts["tun_dst"] = int(dst)
        value, mask = match_to_key(match)
        rule = Rule(int(priority), value, mask, acts)
        self.table(host, tenant).add(rule)
        self.policy_version += 1
        return rule

    def install_default_policy(self) -> None:
        """An L3 overlay per tenant: a VM's packets to another VM of its tenant are encapsulated
        (VNI = tenant) towards the DPU hosting it; arriving tunnelled packets are decapsulated to the
        VF owning the destination address; PF traffic (tenant 0) goes on the underlay, untunnelled.
        Options: per_connection (a stateful ACL: megaflows match the full 5-tuple, so each new
        connection is an upcall), proactive (megaflows of the known connections installed up front:
        see install_proactive), meter_bps (a policer per VF), dscp."""
        meter = self.policy_spec["meter_bps"]
        dscp = self.policy_spec["dscp"]
        # one rule per (DPU, VF of the tenant) for every tenant: refuse, before installing them, a
        # policy whose table would take minutes to build (each rule is checked against the others
        # of its table for overlap) instead of starting a run that never gets going
        rules = sum(len(self.hosts) * sum(len(self.vf_of.get((h, t), [])) for h in self.hosts)
                    for t in range(1, self.tenants + 1))
        if rules > MAX_DEFAULT_POLICY_RULES:
            raise ValueError(f"dpu.hosts: the default overlay policy needs {rules:,} rules ({len(self.hosts):,} DPUs x "
                             f"the VFs of their tenants), at most {MAX_DEFAULT_POLICY_RULES:,}: use fewer DPU hosts "
                             f"(dpu.hosts) or fewer VFs per host")
        # the provider's underlay for PF traffic (tenant 0): to this host's PF, else out unencapsulated
        for h in self.hosts:
            self.add_rule(h, 0, 10, {"dst_ip": (10 << 24) + h + 1}, {"output": VS_PF})
            self.add_rule(h, 0, 1, {}, {"output": VS_UPLINK})
        for t in range(1, self.tenants + 1):
            members = [(self.vf_info[g]["host"], self.vf_info[g]["index"], self.vf_info[g]["ip"])
                       for h in self.hosts for g in self.vf_of.get((h, t), [])]
            for h in self.hosts:
                for (dh, dn, dip) in members:
                    match = {"dst_ip": dip}
                    acts: dict = {}
                    if dscp is not None:
                        acts["set_dscp"] = int(dscp)
                    if dh == h:
                        acts.update({"decap": True, "output": VS_VF0 + dn})
                        if meter:
                            acts["meter"] = dn
                    else:
                        acts.update({"encap": t, "tun_dst": dh, "output": VS_UPLINK})
                    self.add_rule(h, t, 10, match, acts)

    def install_proactive(self) -> int:
        """Pre-install, at t = 0, the megaflows every known connection needs (both directions, at
        both DPUs), as a control plane that sets RDMA connections up itself would: their packets
        never miss. Returns how many megaflows were installed. With a path set, only the QP's
        base entropy is covered under per-connection megaflows (the other entropies still miss).
        A DPU whose table reaches ``max_flows`` gets no more: those connections are set up
        reactively, by their first packets (with the slow path's limits)."""
        sim = self.net.sim
        n = 0
        in_dp = sim.vs_stats["flows"].tolist()
        for qp in sorted(self.qp_tenant):
            for q in (qp, int(sim.qps[qp]["peer_qp"])):
                src, dst = int(sim.qps[q]["host"]), int(sim.qps[q]["peer_host"])
                key = sim.vs_packet_key(q)
                keys = [(src, key)] if src in self.hosts else []
                if dst in self.hosts:
                    rx = key.copy()
                    rx[VS_FIELDS["in_port"]] = VS_UPLINK
                    rx[VS_FIELDS["vni"]] = self.qp_tenant[qp]
                    keys.append((dst, rx))
                for host, k in keys:
                    actions, mask, value, act, uk = self.translate_cached(host, k)
                    if uk in self.slow.ukeys or in_dp[host] >= self.slow.max_flows:
                        continue
                    fid = sim.vs_install_raw(host, value, mask, 0, act, int(sim.now))
                    in_dp[host] += 1
                    self.slow.ukeys[uk] = (fid, self.policy_version)
                    self.slow.nflows[host] += 1
                    n += 1
        return n

    def translate_cached(self, host: int, key: np.ndarray) -> tuple:
        """translate() memoised per exact key (duplicate upcalls of one flow carry the same key),
        with the C action struct; forgotten when the policy changes. A speed-up of this Python
        process only: the modelled handler time is charged per upcall all the same."""
        if self._xlate_version != self.policy_version:
            self._xlate_cache.clear()
            self._xlate_version = self.policy_version
        ck = (host, key.tobytes())
        hit = self._xlate_cache.get(ck)
        if hit is None:
            actions, mask = self.translate(host, key)
            value = np.ascontiguousarray(key & mask)
            hit = (actions, np.ascontiguousarray(mask), value, vs_action(actions),
                   (host, value.tobytes(), mask.tobytes()))
            if len(self._xlate_cache) > 65536:
                self._xlate_cache.clear()
            self._xlate_cache[ck] = hit
        return hit

    def translate(self, host: int, key: np.ndarray) -> tuple[dict, np.ndarray]:
        """Actions and megaflow mask for an upcalled key (in_port and VNI always exact)."""
        in_port, vni = int(key[VS_FIELDS["in_port"]]), int(key[VS_FIELDS["vni"]])
        tenant = self.tenant_of_port(host, in_port, vni)
        table = self.tables.get((host, tenant))
        mask = np.zeros(VS_KEY_WORDS, np.uint32)
        rule = None
        if table is not None:
            rule, mask = table.classify(key)
        mask[VS_FIELDS["in_port"]] = FULL
        mask[VS_FIELDS["vni"]] = FULL
        if self.per_connection:
            mask[VS_FIELDS["src_ip"]] = FULL
            mask[VS_FIELDS["l4"]] = FULL
            mask[VS_FIELDS["dqpn"]] = FULL
        return (dict(rule.actions) if rule is not None else {"drop": True}), mask

    # -------------------------------------------------------------- telemetry
    def stats(self) -> dict:
        """Per-DPU OVS-style counters summed over the DPUs, plus the slow path's own."""
        st = self.net.sim.vs_stats[self.hosts]
        out = {f"vs_{name}": int(st[name].sum()) for name in st.dtype.names if name != "counters"}
        out["vs_upcall_peak"] = int(st["upcall_peak"].max())
        out.update(self.slow.stats())
        return out


class SlowPath:
    """Upcall handlers and revalidators of all DPUs (one set per DPU, as one ovs-vswitchd each)."""

    def __init__(self, dpus: Dpus):
        self.dpus = dpus
        sp = dpus.sp
        self.service_ps = int(round(dpus.tax["upcall"] / dpus.core_hz * 1e12))
        # nothing a handler does about an upcall at t acts before t + service_ps: the data plane may
        # run that far ahead and hand over the upcalls in batches, with identical results
        dpus.net.sim.vs_set_lookahead(self.service_ps if dpus.sp["batch_upcalls"] else 0)
        n_handlers = _pos_int("dpu.slow_path.handlers", sp["handlers"])
        self.handlers = {h: [0] * n_handlers for h in dpus.hosts}  # when each handler is free (ps)
        self.flow_limit = {h: int(min(sp["max_flow_limit"], sp["flow_limit"])) for h in dpus.hosts}
        self.nflows = {h: 0 for h in dpus.hosts}                # megaflows installed by this slow path
        self.ukeys: dict[tuple, tuple[int, int]] = {}          # (host, masked key) -> (flow id, policy version)
        self.latencies: list[int] = []                           # install latency of each megaflow (ps)
        self.by_host = {h: {"installs": 0, "limit_hits": 0, "table_full": 0, "evictions": 0, "latencies": []}
                        for h in dpus.hosts}
        self.max_flows = int(dpus.vs_params["max_flows"])       # the datapath's hard capacity, per DPU
        self.upcalls = self.installs = self.limit_hits = self.table_full = self.evictions = self.revalidated = 0
        self.kill_all = self.dup_skips = 0
        self.dump_ms: dict[int, float] = {}
        self.next_revalidate = int(sp["revalidate_interval_ps"])

    def handle(self) -> int:
        """Drain and handle every queued upcall; returns how many."""
        sim, d = self.dpus.net.sim, self.dpus
        lat = int(d.sp["install_latency_ps"])
        svc = self.service_ps
        total = 0
        while True:
            ups = sim.vs_drain_upcalls()
            if len(ups) == 0:
                return total
            total += len(ups)
            now = sim.now
            keys = ups["key"]
            in_dp = sim.vs_stats["flows"].tolist()      # flows in each datapath now (any installer)
            for j, (host, slot, t) in enumerate(zip(ups["dpu"].tolist(), ups["slot"].tolist(), ups["t_ps"].tolist())):
                h = self.handlers[host]
                i = min(range(len(h)), key=h.__getitem__)
                done = max(t, h[i]) + svc
                h[i] = done
                at = max(done, now)
                actions, mask, value, act, uk = d.translate_cached(host, keys[j])
                sim.vs_execute_raw(host, slot, act, at)
                self.upcalls += 1
                if uk in self.ukeys:
                    self.dup_skips += 1          # another handler installed (or is installing) it
                    continue
                if self.nflows[host] >= self.flow_limit[host]:
                    self.limit_hits += 1         # OVS upcall_flow_limit_hit: executed, not installed
                    self.by_host[host]["limit_hits"] += 1
                    continue
                if in_dp[host] >= self.max_flows:
                    # the datapath table is at its hard capacity (a hardware table, or dpif-netdev's
                    # MAX_FLOWS): the flow put would fail, so the packet is forwarded by the slow path
                    # only, as OVS does when a put fails; its next packets miss again
                    self.table_full += 1
                    self.by_host[host]["table_full"] += 1
                    continue
                fid = sim.vs_install_raw(host, value, mask, 0, act, at + lat)
                in_dp[host] += 1
                self.nflows[host] += 1
                self.ukeys[uk] = (fid, d.policy_version)
                self.installs += 1
                self.latencies.append(at + lat - t)
                self.by_host[host]["installs"] += 1
                self.by_host[host]["latencies"].append(at + lat - t)

    def next_time(self) -> int:
        return self.next_revalidate

    def revalidate(self) -> None:
        """Idle eviction, re-translation after policy changes, dynamic flow limit (OVS
        udpif_revalidator / revalidator_sweep)."""
        sim, d, sp = self.dpus.net.sim, self.dpus, self.dpus.sp
        now = sim.now
        by_flow = {(uk[0], fid): uk for uk, (fid, _) in self.ukeys.items()}
        for host in d.hosts:
            flows = sim.vs_flows(host)
            live = np.nonzero(flows["subtable"] != NONE)[0]
            n = len(live)
            dump_ms = n * sp["revalidate_cycles_per_flow"] / d.core_hz * 1e3
            self.dump_ms[host] = dump_ms
            limit = self.flow_limit[host]
            if n > 2 * limit:                # OVS: far over the limit, delete everything
                for f in live:
                    sim.vs_delete(host, int(f))
                    self.ukeys.pop(by_flow.get((host, int(f))), None)
                    self.nflows[host] -= 1
                self.kill_all += 1
                live = live[:0]
            else:
                used = np.where(flows["used_ps"][live] >= 0, flows["used_ps"][live], flows["active_ps"][live])
                idle = live[used < now - int(sp["max_idle_ps"])]
                for f in idle:
                    sim.vs_delete(host, int(f))
                    self.ukeys.pop(by_flow.get((host, int(f))), None)
                    self.nflows[host] -= 1
                    self.evictions += 1
                    self.by_host[host]["evictions"] += 1
                # re-translate flows installed under an older policy
                for f in np.setdiff1d(live, idle):
                    uk = by_flow.get((host, int(f)))
                    if uk is None or self.ukeys[uk][1] == d.policy_version:
                        continue
                    row = sim.vs_flows(host)[int(f)]
                    actions, mask = d.translate(host, row["key"].astype(np.uint32))
                    if not np.array_equal(mask, row["mask"]):
                        sim.vs_delete(host, int(f))
                        self.ukeys.pop(uk, None)
                        self.nflows[host] -= 1
                    else:
                        sim.vs_modify(host, int(f), actions)
                        self.ukeys[uk] = (int(f), d.policy_version)
                    self.revalidated += 1
            # flow_limit adaptation, as udpif_revalidator()
            if dump_ms > 2000:
                limit = int(limit / (dump_ms / 1000))
            elif dump_ms > 1300:
                limit = limit * 3 // 4
            elif dump_ms < 1000 and n and limit < n * 1000 / max(dump_ms, 1e-9):
                limit += 1000
            self.flow_limit[host] = int(min(sp["max_flow_limit"], max(limit, 1000)))
        self.next_revalidate = now + int(sp["revalidate_interval_ps"])

    def host_stats(self, host: int) -> dict:
        """The slow path's counters of one DPU: installs, flow-limit hits, evictions, its current
        flow limit and its install-latency histogram."""
        b = self.by_host[host]
        lat = np.array(b["latencies"], dtype=np.int64)
        hist, _ = latency_histogram(lat)
        return {"installs": b["installs"], "limit_hits": b["limit_hits"], "table_full": b["table_full"],
                "evictions": b["evictions"],
                "flow_limit": self.flow_limit[host],
                "install_latency_p50_ps": int(np.percentile(lat, 50)) if len(lat) else -1,
                "install_latency_p99_ps": int(np.percentile(lat, 99)) if len(lat) else -1,
                "install_latency_hist": hist.tolist()}

    def stats(self) -> dict:
        lat = np.array(self.latencies, dtype=np.int64)
        hist, edges = latency_histogram(lat)
        return {"sp_upcalls": self.upcalls, "sp_installs": self.installs, "sp_limit_hits": self.limit_hits,
                "sp_table_full": self.table_full,
                "sp_evictions": self.evictions, "sp_revalidated": self.revalidated, "sp_kill_all": self.kill_all,
                "sp_duplicate_upcalls": self.dup_skips,
                "sp_flow_limit_min": int(min(self.flow_limit.values())) if self.flow_limit else 0,
                "sp_install_latency_p50_ps": int(np.percentile(lat, 50)) if len(lat) else -1,
                "sp_install_latency_p99_ps": int(np.percentile(lat, 99)) if len(lat) else -1,
                "sp_install_latency_hist": hist.tolist(), "sp_install_latency_edges_ps": edges.tolist()}


def latency_histogram(lat_ps: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced histogram (32 bins, as OVS's pmd-perf histograms) from 1 us to 1 s."""
    edges = np.logspace(6, 12, bins + 1)
    hist, _ = np.histogram(np.clip(lat_ps, edges[0], edges[-1]), bins=edges)
    return hist, edges


def _ranges(hosts) -> str:
    """[0, 1, 2, 5] -> "0-2, 5" (short error messages for long host lists)."""
    out, hs = [], sorted(hosts)
    i = 0
    while i < len(hs):
        j = i
        while j + 1 < len(hs) and hs[j + 1] == hs[j] + 1:
            j += 1
        out.append(str(hs[i]) if i == j else f"{hs[i]}-{hs[j]}")
        i = j + 1
    return ", ".join(out)


def _pos_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)
