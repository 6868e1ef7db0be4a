"""A Scenario: fabric + DPUs + QPs (a CC per QP) + workload + seed + sampling, and its run.

``Scenario(...).run(out_dir)`` builds the data plane through a handful of batch calls, runs it
in control ticks (one per sample interval), and writes the results folder (docs/architecture.md,
'The results folder'):

  config.json      the fully resolved scenario (``Scenario.from_dict`` re-runs it)
  flows.csv        one row per message: size, start, finish, FCT, ideal FCT, slowdown
  timeseries.npz   per-QP rate/goodput/window and per-port queue/ECN/drops/tx, sampled in sim time
  counters.json    data-plane totals, per-QP sums and the conservation check
  trace.npz        the CC decision trace, when ``trace`` > 0

Everything in the folder is a function of the scenario and its seed: two runs write identical
bytes (wall-clock numbers are printed, never stored).
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from congestion import registry
from congestion.api import CCPluginError
from controlplane.config import schema as config, limits
from controlplane.run import devices
from controlplane.fabric import ecn, failures, pfc, qdisc, routing, topology
from controlplane.transport import multipath, nic_profile, verbs, workload
from controlplane.dpu import qpc, vswitch, vtax
from controlplane.run.control_loop import CHUNK_EVENTS, ControlLoop, ControllerError  # noqa: F401 (re-exported)
from controlplane.config.units import Gbps, MB, ms, us
from dataplane.sim import (CC_NONE, CC_PYTHON, OPCODES, PRIO_CTRL, PRIO_DATA, STOP_IDLE, STOP_UPCALL, SimError,
                           Simulator, VERBS, WC_STATUS, serialization_ps,
                           wire_bytes)

RESULT_FILES = ("config.json", "flows.csv", "timeseries.npz", "counters.json")
DERIVED_KEYS = {"resolved", "bottleneck_port", "bottleneck_rate_bps"}   # written to config.json, not inputs
QP_SPORT_BASE = 49152          # RoCEv2 source ports are drawn from the dynamic range 49152-65535
# Run budget defaults, generous: permutation-1024 (the benchmark: 1,024 hosts, 2 MB each, 1.39 ms
# simulated) takes 9.5 M events and 4 s, so 2e9 events is 200 such runs (about 13 min at the C
# twin's 2.5 M events/s); an hour of wall clock is ~1000 x that benchmark's run time.
DEFAULT_MAX_EVENTS = 2_000_000_000
DEFAULT_MAX_WALL_S = 3600.0
# The notification point when neither the scenario nor its CC says otherwise: CNP packets, at most
# one per QP per 50 us (the DCQCN paper's N).
CNP_MODE_FALLBACK = "interval"
CNP_INTERVAL_FALLBACK_PS = 50_000_000

@dataclass
class Scenario:
    """Everything that defines a run. Units: bytes, bit/s, picoseconds."""

    name: str = "scenario"
    topology: dict = field(default_factory=lambda: {"topology": "single_switch", "num_hosts": 17,
                                                    "rate_bps": Gbps(100), "delay_ps": us(1)})
    workload: dict = field(default_factory=lambda: {"kind": "incast", "senders": 16, "size_bytes": MB(4)})
    cc: str = "dcqcn"                   # registered name or "path/to/file.py:ClassName"
    cc_params: dict = field(default_factory=dict)
    cc_impl: str = "c"                  # "c": the C twin; "python": the reference through the plug-in path
    mtu_payload: int = 4096             # payload bytes per packet
    ack_interval: int = 1               # receiver ACKs every n-th packet (and the last of a message)
    buffer_bytes: int = 4_000_000       # drop-tail capacity of each switch egress data queue
    qdisc: dict | None = None           # controlplane/fabric/qdisc.py: {"kind": "red_ecn" | "drop_tail" | "codel_ecn", ...};
                                        # None = red_ecn with ECN thresholds (the ecn section), else drop_tail
    ecn: dict | None = None             # {"kmin_bytes", "kmax_bytes", "pmax"[, "base_rate_bps"]}; None = the CC's
                                        # default. With base_rate_bps the thresholds scale by port rate / it;
                                        # without some of the three, the rest comes from the CC's default
    cnp_mode: str | None = None         # "interval" (CNP packets) or "ack_echo" (BECN on ACKs); None = the CC's default
    cnp_interval_ps: int | None = None  # NP: at most one CNP per QP per interval; None = the CC's default
                                        # (50 us, the DCQCN paper's N, if the CC declares none)
    rto_ps: int = ms(1)
    seed: int = 1
    sample_interval_ps: int = us(10)    # 0 = no time series
    duration_ps: int | None = None      # None = until every message completes (capped at max_duration_ps)
    max_duration_ps: int = ms(1000)
    monitor_ports: Any = "switch"       # "switch", "all", "none" or a list of port ids
    trace: int = 0                      # CC decision-trace capacity (records); 0 = off
    pkt_pool: int | None = None         # packets preallocated; None = sized from the workload
    isn: int = 0                        # initial PSN of every QP (24-bit)
    ipv6: bool = False                  # RoCEv2 over IPv6 (40-byte IP header: longer frames)
    dscp_data: int = 26                 # DSCP of data, ACK/NAK and CNP packets (captures)
    dscp_ack: int = 26
    dscp_cnp: int = 48
    payload_pattern: str = "zeros"      # captured payload bytes: "zeros" or "address" (remote address mod 256)
    pfc: bool = False                   # lossless data priority: PFC with a shared switch buffer
    pfc_params: dict | None = None      # buffer_bytes, reserve_bytes, resume_offset_bytes, alpha_shift,
                                        # headroom_rtts; None = HPCC repo defaults (see _pfc_defaults)
    # multipath (controlplane/transport/multipath.py)
    transport: str = "gbn"              # "gbn" (RoCE go-back-N), "sr" (IRN selective repeat), "ooo" (SRD-like)
    transport_params: dict | None = None  # reorder_window, rto_low_ps, rto_low_pkts, bdp_cap ("auto")
    verbs: dict | None = None           # rq_depth, rq_repost_ps, min_rnr_timer, rnr_retry, max_rd_atomic
                                        # (controlplane/transport/verbs.py); a flow's verb is Flow.verb
    nic_profiles: dict | None = None    # {default, hosts, shares, profiles}: a NIC model per host, negotiated per
                                        # QP pair (controlplane/transport/nic_profile.py, docs/interop.md);
                                        # None = every QP has the scenario's settings
    paths: str = "ecmp"                 # "ecmp", "spray_rr", "spray_random", "spray_weighted"
    num_paths: int = 8                  # entropies per QP when spraying
    path_weights: list | None = None    # spray_weighted: one weight per entropy
    path_params: dict | None = None     # flowlet_gap_ps, plb_cong_thresh, plb_rehash_rounds, plb_suspend_ps
    adaptive_routing: Any = False       # True/"bytes" or "delay": data AR-eligible, least-loaded egress
    ar_classes: list = field(default_factory=lambda: ["data"])  # packet classes the NIC marks AR-eligible
    link_loss: Any = 0.0                # random loss per packet: one probability for every link, or {link: p}
    failures: list | None = None        # [{"link": i | "switch": node, "down_ps", "up_ps"}] (controlplane/fabric/failures.py)
    failure_params: dict | None = None  # detect_ps (NIC failover), reconverge_ps (routing)
    # the DPUs' functions and vSwitch (controlplane/dpu/vswitch.py); None = QPs on the PF, no vSwitch
    dpu: dict | None = None             # tenants, vfs_per_host, hosts, vswitch, slow_path, policy, offload, tax
    qpc: dict | None = None             # QP-context cache per host NIC: entries, fetch_latency_ps, max_outstanding,
                                        # policy, hosts ("all" or a list), trace; None = no cache (controlplane/dpu/qpc.py)
    # the run budget (controlplane/config/limits.py): a run that reaches either stops with BudgetExceeded,
    # naming it, and writes its results so far; 0 = no limit. Neither changes a run that ends within it.
    max_events: int = DEFAULT_MAX_EVENTS
    max_wall_s: float = DEFAULT_MAX_WALL_S

    # ------------------------------------------------------------------ config
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> Scenario:
        """Check every field against the declared schema (controlplane/config/schema.py) and store the
        normalized values ("4MB" -> 4000000, 1e9 -> 1000000000); ValueError names each bad field
        by its path. Construction and every build call it (a field may be changed in between)."""
        d = config.validate({f.name: getattr(self, f.name) for f in fields(self)})
        for k, v in d.items():
            setattr(self, k, v)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Scenario:
        if not isinstance(d, dict):
            raise ValueError(f"a scenario must be a dict, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - DERIVED_KEYS
        if unknown:
            from controlplane.config.values import closest
            near = {u: closest(u, known) for u in sorted(unknown)}
            hint = "; ".join(f"{u}: closest: {', '.join(n)}" for u, n in near.items() if n)
            raise ValueError(f"unknown scenario field(s) {sorted(unknown)}" + (f" ({hint})" if hint else "")
                             + f"; known: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """Apply ``{"a.b": value}`` overrides (the CLI's --set key=value)."""
        d = self.to_dict()
        for key, value in overrides.items():
            parts = key.split(".")
            if parts[0] not in d:
                raise ValueError(f"--set {key}: unknown scenario field {parts[0]!r}; known: {sorted(d)}")
            node = d
            for p in parts[:-1]:
                if node.get(p) is None:
                    node[p] = {}
                if not isinstance(node[p], dict):
                    raise ValueError(f"--set {key}: {p!r} is not a section")
                node = node[p]
            node[parts[-1]] = value
        return Scenario.from_dict(d)

    def make_cc(self):
        odd = [k for k in self.cc_params if not isinstance(k, str)]
        if odd:
            raise ValueError(f"cc_params keys are parameter names (text), got {odd[0]!r}")
        cc = registry.create(self.cc, **self.cc_params)
        if self.cc_impl not in ("c", "python"):
            raise ValueError(f"cc_impl must be 'c' or 'python', got {self.cc_impl!r}")
        return cc

    # ------------------------------------------------------------------ build
    def build(self) -> Network:
        return Network(self)

    def run(self, out_dir: str | Path | None = None, progress: bool | None = None, quiet: bool = True,
            capture=None) -> Result:
        """Build and run; ``capture`` (a controlplane.results.capture.CaptureSpec) records pcap files."""
        net = self.build()
        if capture is not None:
            capture.attach(net)
        try:
            result = net.run(progress=progress)
        except (CCPluginError, SimError, ControllerError) as exc:
            # keep what the run produced up to the failure, readable like any results folder
            if out_dir is not None and getattr(exc, "partial", None) is not None:
                exc.partial.write(out_dir)
            raise
        finally:
            if capture is not None:
                for path, (packets, nbytes) in capture.close(net).items():
                    print(f"capture: {packets:,} packets, {nbytes:,} bytes -> {path}")
        if out_dir is not None:
            result.write(out_dir)
        if not quiet:
            print(f"{self.name}: {result.wall_s:.2f} s wall, {result.counters['events']:,} events, "
                  f"sim time {result.sim_ps / 1e6:.1f} us", file=sys.stderr)
        return result


class Network:
    """A built scenario: the data plane plus the Python objects that describe it.

    ``wake_on_completion``: the data plane stops at every message completion so that a control
    plane driving message schedules (controlplane/ai/collectives.py) can post the next messages;
    such a driver (the collectives Runner) registers itself as a controller with the same control
    loop (:attr:`loop`, controlplane/run/control_loop.py) and drives it instead of :meth:`run`, so that
    failures, the DPU slow path, sampling, tick hooks and every other controller run at the same
    times as under :meth:`run`.
    """

    def __init__(self, sc: Scenario, wake_on_completion: bool = False):
        sc.validate()                          # the declared schema (controlplane/config/schema.py)
        limits.check_scenario(sc)              # times and budgets: integers in range, named when not
        self.scenario = sc
        self.wake_on_completion = bool(wake_on_completion)
        self.rng = np.random.default_rng(sc.seed)
        self.path_rng = np.random.default_rng([sc.seed, 2])
        self.fabric = topology.build(**sc.topology)
        if sc.dpu is not None:
            vswitch.check_spec(sc.dpu, self.fabric.num_hosts)    # a bad dpu spec fails here, before the build
        self.routes = routing.compute_routes(self.fabric)
        self.flows = workload.build(self.fabric, sc.workload, np.random.default_rng([sc.seed, 1]))
        self.monitored_ports()                 # a bad monitor_ports fails the build, not the run
        self.cc = sc.make_cc()
        self.resolved = self._resolve()
        self.sim = self._make_sim()
        self._install_fabric()
        self._install_flows()
        self._install_qpc()
        self.failures = failures.FailurePlan(self)
        # callables(net) run at every sample tick (the loop's tick_hooks controller, kept for existing
        # code; new code registers a controller: net.loop.register, docs/controllers.md)
        self.tick_hooks: list = []
        self._loop: ControlLoop | None = None
        self.vswitch: vswitch.Dpus | None = None
        if sc.dpu is not None:
            self.vswitch = vswitch.Dpus(self, sc.dpu)
            self.vswitch.place_flows()
            if self.vswitch.policy_spec["overlay"]:
                self.vswitch.install_default_policy()
            if self.vswitch.policy_spec["proactive"]:
                self.vswitch.install_proactive()

    # -------------------------------------------------------------- resolution of defaults
    def _resolve(self) -> dict:
        sc = self.scenario
        defaults = self.cc.network_defaults()
        ecn_ = ecn.resolve(sc.ecn, defaults.get("ecn"))
        cnp_mode = sc.cnp_mode or defaults.get("cnp_mode", CNP_MODE_FALLBACK)
        cnp_interval = (sc.cnp_interval_ps if sc.cnp_interval_ps is not None
                        else defaults.get("cnp_interval_ps", CNP_INTERVAL_FALLBACK_PS))
        pool = sc.pkt_pool or workload.default_pkt_pool(len(self.flows))
        host_rate = max(l.rate_bps for l in self.fabric.links if self.fabric.is_host(l.a) or self.fabric.is_host(l.b))
        self.nic_plan = None
        if sc.nic_profiles is not None:        # a NIC model per host (controlplane/transport/nic_profile.py)
            self.nic_plan = nic_profile.Plan(self, sc.nic_profiles, cnp_mode, int(cnp_interval))
        int_needed = defaults.get("int") or (self.nic_plan is not None and self.nic_plan.int_needed)
        int_multi = max(1, round(host_rate / Gbps(25))) if int_needed else 0
        facts = {"max_base_rtt_ps": self.max_base_rtt_ps(), "host_rate_bps": host_rate,
                 "mtu_payload": sc.mtu_payload, "int_multi": int_multi}
        self.cc.bind(facts)
        mp = multipath.resolve(sc, self.max_base_rtt_ps(), host_rate)
        extra = {}
        if self.nic_plan is not None:
            self.nic_plan.bind(facts)
            tp = config.section(multipath.TransportParams, sc.transport_params, "transport_params").model_dump()
            self._nic_bdp = (tp["bdp_cap"], self.max_base_rtt_ps() * host_rate / 8e12)
            extra["nic_profiles"] = self.nic_plan.record()
        # a queue discipline's default quantum is one whole frame: of the largest MTU any pair runs
        mtu_q = sc.mtu_payload if self.nic_plan is None else max(sc.mtu_payload, self.nic_plan.max_mtu)
        return {**extra, "ecn": ecn_, "qdisc": qdisc.resolve(sc.qdisc, ecn_, mtu_q), "ecn_ports": self._ecn_ports(ecn_), "cnp_mode": cnp_mode, "cnp_interval_ps": int(cnp_interval),
                "pkt_pool": pool, "int_multi": int_multi, "cc_params": self.cc.params(), "multipath": mp,
                "verbs": verbs.resolve(sc.verbs)}

    def max_base_rtt_ps(self) -> int:
        """The longest base RTT between two hosts (the HPCC repo's GLOBAL_T): two propagation
        delays per hop plus one full-size data packet and one ACK serialized on each hop, for
        the farthest host from host 0 (the built-in fabrics are symmetric; with declared
        addresses, the farthest address reachable from address 0)."""
        fab, mtu = self.fabric, self.scenario.mtu_payload
        ipv6 = bool(self.scenario.ipv6)          # frame sizes as the data plane counts them (sd_wire_bytes)
        data = wire_bytes(OPCODES["write_middle"], mtu, ipv6=ipv6)
        ack = wire_bytes(OPCODES["ack"], 0, ipv6=ipv6)
        best = 0
        for dst in range(1, fab.num_addresses):       # addresses: the hosts unless the fabric declares them
            if fab.addresses_declared:
                # host 0's other addresses and those its first one cannot reach (another server's
                # NVLink ports) are no destination of its traffic
                if fab.address_host(dst) == fab.address_host(0) or not len(self.routes.candidates(
                        fab.port_peer(fab.address_ports(0)[0]), dst)):
                    continue
            links = routing.path_links(fab, self.routes, 0, dst)
            rtt = sum(2 * l.delay_ps + (data + ack) * 8e12 / l.rate_bps for l in links)
            best = max(best, int(rtt))
        return best

    def _make_sim(self) -> Simulator:
        sc, fab = self.scenario, self.fabric
        return Simulator(num_hosts=fab.num_hosts, num_switches=fab.num_switches, max_links=len(fab.links),
                         max_qps=2 * self._num_connections() + 2, max_msgs=len(self.flows) + 1,
                         pkt_pool=self.resolved["pkt_pool"], mtu_payload=sc.mtu_payload,
                         ack_interval=sc.ack_interval, cnp_mode=self.resolved["cnp_mode"],
                         cnp_interval_ps=self.resolved["cnp_interval_ps"], rto_ps=sc.rto_ps, seed=sc.seed,
                         trace_capacity=sc.trace, ipv6=sc.ipv6, dscp_data=sc.dscp_data, dscp_ack=sc.dscp_ack,
                         dscp_cnp=sc.dscp_cnp, payload_pattern=sc.payload_pattern,
                         int_multi=self.resolved["int_multi"], wake_on_completion=self.wake_on_completion)

    def _num_connections(self) -> int:
        """QP pairs the workload needs: one per flow, flows of one ``conn`` sharing one."""
        return sum(f.conn is None for f in self.flows) + len({f.conn for f in self.flows if f.conn is not None})

    def _install_fabric(self) -> None:
        sc, fab, sim = self.scenario, self.fabric, self.sim
        links = fab.links
        sim.set_nodes(fab.node_kinds)
        sim.add_links([l.a for l in links], [l.b for l in links], [l.rate_bps for l in links],
                      [l.delay_ps for l in links])
        if fab.addresses_declared:       # several addresses per host (a GPU server's NICs): FIB columns
            sim.set_addresses(fab.port_addresses(), fab.num_addresses)
        for port in range(fab.num_ports):
            if fab.is_host(fab.port_owner(port)):
                continue                 # NIC ports hold at most one data packet: no AQM
            sim.set_queue(port, PRIO_DATA, sc.buffer_bytes, *self._ecn_args(port))
            sim.set_queue(port, PRIO_CTRL, sc.buffer_bytes)
        self.routes.install(sim)
        if sc.pfc:
            self._install_pfc()
        qdisc.install(self, self.resolved["qdisc"])
        multipath.install_fabric(self)

    def _install_pfc(self) -> None:
        """PFC on every switch (controlplane/fabric/pfc.py: the rules, the defaults and their sources)."""
        self.resolved["pfc"] = pfc.install(self)

    @staticmethod
    def _ecn_base_rate(e: dict) -> float | None:
        return ecn.base_rate(e)

    def _ecn_thresholds(self, e: dict | None, rate_bps: float) -> tuple[int, int, float]:
        """(kmin, kmax, pmax) for a switch port of ``rate_bps`` (controlplane/fabric/ecn.py)."""
        return ecn.thresholds(e, rate_bps)

    def _ecn_args(self, port: int) -> tuple[int, int, float]:
        """(kmin, kmax, pmax) of a switch port's data queue."""
        return self._ecn_thresholds(self.resolved["ecn"], self.fabric.links[port // 2].rate_bps)

    def _ecn_ports(self, ecn: dict | None) -> list[dict]:
        """The ECN thresholds applied to switch egress data queues, one entry per distinct port rate
        (config.json ``resolved.ecn_ports``): rate_bps, kmin_bytes, kmax_bytes, pmax, num_ports and
        the port names."""
        if ecn is None:
            return []
        fab = self.fabric
        by_rate: dict[float, list[str]] = {}
        for port in range(fab.num_ports):
            if fab.is_host(fab.port_owner(port)):
                continue
            by_rate.setdefault(fab.links[port // 2].rate_bps, []).append(fab.port_name(port))
        out = []
        for rate in sorted(by_rate):
            kmin, kmax, pmax = self._ecn_thresholds(ecn, rate)
            out.append({"rate_bps": rate, "kmin_bytes": kmin, "kmax_bytes": kmax, "pmax": pmax,
                        "num_ports": len(by_rate[rate]), "ports": by_rate[rate]})
        return out

    def _install_qpc(self) -> None:
        """The QP-context cache of each chosen host NIC (controlplane/dpu/qpc.py; Scenario.qpc None = none)."""
        p = qpc.install(self)
        if p is not None:
            self.resolved["qpc"] = p

    def _install_flows(self) -> None:
        sc, sim, cc = self.scenario, self.sim, self.cc
        python = sc.cc_impl == "python" or cc.c_kind is None
        if cc.c_kind == CC_NONE:
            kind, param = CC_NONE, 0
        elif python:
            kind, param = CC_PYTHON, 0
        else:
            kind, param = cc.c_kind, sim.add_cc_params(cc.c_kind, cc.c_params())
        self.cc_kind, self._cc_param, self._cc_mask = kind, param, cc.event_mask()
        if self.nic_plan is not None:
            self.nic_plan.install_ccs(sim, sc.cc_impl)
        sports = self.rng.integers(QP_SPORT_BASE, 65536, size=len(self.flows))
        self.qps = np.zeros(len(self.flows), dtype=np.int64)
        by_conn: dict[int, int] = {}
        for i, f in enumerate(self.flows):
            if f.conn is not None and f.conn in by_conn:
                self.qps[i] = by_conn[f.conn]          # another message on the same connection
                continue
            qp = self.open_qp(f.src, f.dst, int(sports[i]))
            if f.dscp is not None:
                sim.set_qp_dscp(qp, f.dscp)            # its own traffic class (qdisc traffic_class)
            self.qps[i] = qp
            if f.conn is not None:
                by_conn[f.conn] = qp
        # one time-series column per sender QP (flows of one connection share it)
        self.sender_qps = np.array(list(dict.fromkeys(self.qps.tolist())), dtype=np.int64)
        if self.flows:
            sizes, starts = [f.size_bytes for f in self.flows], [f.start_ps for f in self.flows]
            if any(f.verb != "write" for f in self.flows):
                first = sim.post_msgs(self.qps, sizes, starts, [f.verb for f in self.flows])
                for i, f in enumerate(self.flows):
                    if f.verb in workload.ATOMICS and (f.atomic_value, f.atomic_compare) != (1, 0):
                        sim.set_atomic_args(first + i, f.atomic_value, f.atomic_compare)
            else:
                sim.post_writes(self.qps, sizes, starts)

    def open_qp(self, src: int, dst: int, sport: int | None = None) -> int:
        """A QP pair from host ``src`` to ``dst`` with the scenario's CC, transport and path set;
        returns the sender QP. ``sport`` defaults to a draw from the network's RNG."""
        sc, sim, cc = self.scenario, self.sim, self.cc
        if sport is None:
            sport = int(self.rng.integers(QP_SPORT_BASE, 65536))
        if self.nic_plan is None:
            kind, param, mask, batch = self.cc_kind, self._cc_param, self._cc_mask, cc.ack_batch
        else:                                  # the pair's NIC profiles: the sender's CC, negotiated settings
            pair = self.nic_plan.settings(src, dst)
            cc, kind, param, mask, batch = self.nic_plan.cc_of(pair)
        qp = sim.create_qp_pair(src, dst, sport, kind, param, mask, sc.isn)
        self._bind_uplinks(qp, src, dst)
        if self.nic_plan is None:
            multipath.install_qp(self, qp, sport)
        else:
            multipath.install_qp(self, qp, sport, pair.transport, self._nic_transport_params(pair))
            self.nic_plan.apply(sim, qp, src, pair)
        verbs.install_qp(self, qp)
        peer = int(sim.qps[qp]["peer_qp"])
        if kind == CC_PYTHON:
            sim.set_python_cc(qp, cc.handler_for(qp))
            sim.set_python_cc(peer, cc.handler_for(peer))
        if batch > 1:
            sim.set_ack_batch(qp, batch)
            sim.set_ack_batch(peer, batch)
        return qp

    def _nic_transport_params(self, pair) -> dict:
        """transport_params of a pair under NIC profiles: reorder window and RTO_low negotiated,
        bdp_cap the scenario's ("auto": ceil(BDP / the pair's MTU))."""
        bdp, bdp_bytes = self._nic_bdp
        if bdp == "auto":
            bdp = math.ceil(bdp_bytes / pair.mtu_payload)
        return {"reorder_window": pair.reorder_window, "rto_low_ps": pair.rto_low_ps,
                "rto_low_pkts": pair.rto_low_pkts, "bdp_cap": bdp}

    def _bind_uplinks(self, qp: int, src: int, dst: int) -> None:
        """Active/active uplinks of a multi-port host: it binds its QPs (either end of a pair) to
        its ports in turn, in QP creation order (a per-QP uplink choice, as a bonded NIC's
        layer-3+4 hash spreads connections; deterministic). A single-port host has no choice. A
        host with several addresses (controlplane/fabric/topology.py, ``addresses``) binds to the
        ports of its first address only: the one its peers address it by."""
        turn = self.__dict__.setdefault("_uplink_turn", {})
        for q, h in ((qp, src), (qp + 1, dst)):
            # the ports of the host's address (all its ports, unless it declares several addresses:
            # then those of its first, e.g. a GPU server's NIC 0 with its plane ports)
            ports = self.fabric.address_ports(self.fabric.host_address(h))
            if len(ports) > 1:
                k = turn.get(h, 0)
                turn[h] = k + 1
                self.sim.bind_qp(q, ports[k % len(ports)])

    # -------------------------------------------------------------- devices
    @property
    def dpus(self) -> list[devices.Dpu]:
        return [devices.Dpu(self, h) for h in range(self.fabric.num_hosts)]

    @property
    def switches(self) -> list[devices.Switch]:
        return [devices.Switch(self, n) for n in range(self.fabric.num_hosts, self.fabric.num_nodes)]

    @property
    def links(self) -> list[devices.Link]:
        return [devices.Link(self, i) for i in range(len(self.fabric.links))]

    def port(self, port_id: int) -> devices.Port:
        return devices.Port(self, port_id)

    @property
    def connections(self) -> list[devices.Connection]:
        """One per sender QP (the workload's connections), in ``sender_qps`` order."""
        return [devices.Connection(self, q) for q in self.sender_qps]

    @property
    def receiver_qps(self) -> np.ndarray:
        """The receiver (responder) QP of each sender QP, in ``sender_qps`` order, as the data plane
        paired them (its ``peer_qp``); index it like ``sender_qps``."""
        return self.sim.qps["peer_qp"][self.sender_qps].astype(np.int64)

    # -------------------------------------------------------------- derived facts
    def monitored_ports(self) -> np.ndarray:
        """The ports of the time series: ``monitor_ports`` is "switch" (every switch port), "all",
        "none", or a flat list of port ids / port names (``fab.port_name``: "sw0->h1"), each
        once. Checked when the scenario is built; a bad value is named."""
        spec, fab = self.scenario.monitor_ports, self.fabric
        if isinstance(spec, str):
            if spec == "none":
                return np.zeros(0, dtype=np.int64)
            if spec == "all":
                return np.arange(fab.num_ports, dtype=np.int64)
            if spec == "switch":
                return np.array([p for p in range(fab.num_ports) if fab.is_switch(fab.port_owner(p))], dtype=np.int64)
            raise ValueError(f'monitor_ports must be "switch", "all", "none" or a list of port ids, got {spec!r}')
        if isinstance(spec, np.ndarray) and spec.ndim == 1:
            spec = spec.tolist()
        if not isinstance(spec, (list, tuple)):
            raise ValueError(f'monitor_ports must be "switch", "all", "none" or a list of port ids, got {spec!r}')
        names = {fab.port_name(p): p for p in range(fab.num_ports)}
        ports: list[int] = []
        for i, p in enumerate(spec):
            if isinstance(p, str) and p in names:
                p = names[p]
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 0 <= p < fab.num_ports:
                raise ValueError(f"monitor_ports[{i}] = {p!r} is not a port id in [0, {fab.num_ports}) "
                                 f"or a port name such as {fab.port_name(0)!r}")
            if int(p) in ports:
                raise ValueError(f"monitor_ports[{i}]: port {int(p)} ({fab.port_name(int(p))}) is listed twice")
            ports.append(int(p))
        return np.array(ports, dtype=np.int64)

    def bottleneck_port(self) -> int | None:
        """When every flow goes to one host (an incast): the switch port facing it."""
        dsts = {f.dst for f in self.flows}
        if len(dsts) != 1:
            return None
        return int(self.routes.host_port[dsts.pop()]) ^ 1             # the other end of its link

    def ideal_fct_ps(self, f: workload.Flow, qp: int | None = None) -> int:
        """Standalone FCT: the message alone on an idle fabric, from its post to the moment the
        sender receives the ACK of its last packet (when the data plane completes it), in the
        data plane's own integer picoseconds: an isolated message has slowdown exactly 1.

        Data: the sender puts its packets back to back on its uplink (it paces at line rate and
        the port serializes at the same rate) and every switch stores and forwards, so packet k
        reaches the receiver at A(k), the end of a tandem of FIFO servers
        (:func:`store_and_forward_ps`; on equal rates: all packets serialized on the first link,
        plus at each later hop the largest packet, the first, which carries the RETH; on mixed
        rates the slowest hop takes the bulk). ACKs: the receiver acknowledges every
        ``ack_interval``-th packet and the last (AckReq) at once; those ACKs, all of one size,
        cross the reverse path as a second tandem, so the last one arrives at
        max over ACKed k of (A(k) + ACKs after k x the slowest reverse hop's ACK time) + the ACK's
        serialization and propagation on every reverse hop. A(k) is convex in k inside the run of
        full middle packets (a max of affine functions), so the max needs only the first and last
        ACKed packet of each run. Wire sizes are the NIC's (opcode headers, padding, minimum
        frame, phy overhead, IPv6); serialization times are the data plane's ``ser_ps``.
        Not counted: what a DPU vSwitch adds (overlay bytes, slow-path upcalls) and QP-context
        fetches: they show in the slowdown. Paths: the lowest-port shortest path each way (every
        ECMP choice of the topologies here has the same rates and delays). With NIC profiles
        (``qp``: the flow's sender QP) the pair's negotiated MTU and the receiver's ACK interval."""
        fwd_rates, fwd_delays, rev_rates, rev_delays = self._ideal_paths(f.src, f.dst)
        mtu, sim, ack_interval = self.scenario.mtu_payload, self.sim, self.scenario.ack_interval
        if qp is not None and self.nic_plan is not None:
            pair = self.nic_plan.settings(f.src, f.dst)
            mtu, ack_interval = pair.mtu_payload, pair.ack_interval
        n = -(-f.size_bytes // mtu)
        last = f.size_bytes - (n - 1) * mtu
        verb = getattr(f, "verb", "write")
        if verb in ("atomic_cas", "atomic_fadd"):
            # an ATOMIC: its request (AtomicETH) one way, the ATOMIC Acknowledge back
            request = sim.wire_bytes(OPCODES["compare_swap" if verb == "atomic_cas" else "fetch_add"], 0)
            return (store_and_forward_ps([(request, 1)], fwd_rates, fwd_delays)
                    + store_and_forward_ps([(sim.wire_bytes(OPCODES["atomic_ack"], 0), 1)], rev_rates, rev_delays))
        # the opcodes of the message's packets (native/nic.c opcode_of): only / first, middle, last
        kind = {"write": "write", "write_imm": "write", "send": "send", "send_imm": "send",
                "read": "read_response"}[verb]
        imm = "_imm" if verb in ("write_imm", "send_imm") else ""
        if n == 1:
            runs = [(sim.wire_bytes(OPCODES[f"{kind}_only{imm}"], last), 1)]
        else:
            runs = [(sim.wire_bytes(OPCODES[f"{kind}_first"], mtu), 1),
                    (sim.wire_bytes(OPCODES[f"{kind}_middle"], mtu), n - 2),
                    (sim.wire_bytes(OPCODES[f"{kind}_last{imm}"], last), 1)]
        if verb == "read":
            # READ: the request crosses src -> dst, the responses stream back at once and the READ
            # completes when the last one is in (no ACK)
            request = sim.wire_bytes(OPCODES["read_request"], 0)
            return (store_and_forward_ps([(request, 1)], fwd_rates, fwd_delays)
                    + store_and_forward_ps(runs, rev_rates, rev_delays))
        return message_fct_ps(runs, ack_interval, sim.wire_bytes(OPCODES["ack"], 0),
                              fwd_rates, fwd_delays, rev_rates, rev_delays)

    def _ideal_paths(self, src: int, dst: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """Rates and delays of the links src -> dst and dst -> src (memoised per pair)."""
        cache = self.__dict__.setdefault("_ideal_path_cache", {})
        hit = cache.get((src, dst))
        if hit is None:
            a, b = self.fabric.host_address(src), self.fabric.host_address(dst)   # = the hosts by default
            fwd = routing.path_links(self.fabric, self.routes, a, b)
            rev = routing.path_links(self.fabric, self.routes, b, a)
            hit = cache[(src, dst)] = ([l.rate_bps for l in fwd], [l.delay_ps for l in fwd],
                                       [l.rate_bps for l in rev], [l.delay_ps for l in rev])
        return hit

    # -------------------------------------------------------------- run
    @property
    def loop(self) -> ControlLoop:
        """The control plane's clock (created on first use): every driver of this network advances
        the data plane through ``loop.step``."""
        if self._loop is None:
            self._loop = ControlLoop(self)
        return self._loop

    def run(self, progress: bool | None = None) -> Result:
        """Run the scenario to its end through the control loop (:attr:`loop`): until every message
        completed, the duration or max_duration_ps is reached, or the data plane is idle with no
        controller busy (controlplane/run/control_loop.py)."""
        sc, sim = self.scenario, self.sim
        end = sc.duration_ps if sc.duration_ps is not None else sc.max_duration_ps
        if sc.sample_interval_ps < 0 or end <= 0:
            raise ValueError("sample_interval_ps must be >= 0 and the duration > 0")
        loop = self.loop
        loop.start_run()                             # this run's own wall-clock budget
        total = len(self.flows)
        bar = _Progress(end if sc.duration_ps is not None else None, progress)
        wall0 = time.perf_counter()
        try:
            while True:
                stop = loop.step(end)
                if stop == STOP_UPCALL:
                    continue
                bar.update(sim.now)
                done = sim.msgs_completed >= total
                if done or (stop == STOP_IDLE and not loop.busy()) or sim.now >= end:
                    break
        except (CCPluginError, SimError, ControllerError) as exc:   # a CC's or a controller's error, or an event that could not be queued
            bar.close()
            if loop.interval:
                loop.sample()
            exc.partial = Result(self, loop.samples, loop.ports, time.perf_counter() - wall0, error=str(exc))
            raise
        finally:
            loop.end()
        bar.close()
        wall = time.perf_counter() - wall0
        if loop.interval and (not loop.samples["t"] or loop.samples["t"][-1] != sim.now):
            loop.sample()
        return Result(self, loop.samples, loop.ports, wall)


#: flows.csv's columns after slowdown: the message's verb, its completion status, its responder completion
FLOW_EXTRA_COLUMNS = ["verb", "wc_status", "rx_done_ps"]


def store_and_forward_ps(runs: list[tuple[int, int]], rates_bps: list[int], delays_ps: list[int]) -> int:
    """When the last bit of a packet train reaches the far end of a path of store-and-forward
    hops, counted from the moment its first bit leaves; the train leaves back to back and meets
    no other traffic. ``runs``: (wire bytes, packet count) in sending order; hop j serializes at
    ``rates_bps[j]`` (the data plane's ceil-rounded ``ser_ps``), then propagates ``delays_ps[j]``.

    Hop j finishes packet k at F(k, j) = max(F(k, j-1) + d(j-1), F(k-1, j)) + s(k, j) (a tandem
    of FIFO servers, max-plus algebra). Unrolled, F(n, H) = the delays of hops 1..H-1 plus the
    largest sum of s(k, j) over the monotone staircases from (packet 1, hop 1) to (packet n,
    hop H): each hop covers a contiguous range of packets, the last of one hop being the first
    of the next. The sum is linear in where a staircase turns inside a run of equal packets, so
    an optimal one turns only at the first or last packet of a run: a dynamic program over those
    turning points is exact in O(hops x runs), whatever the packet count. On equal rates it is
    every packet on the first hop plus the largest packet once per later hop."""
    runs = [(int(w), int(c)) for w, c in runs if c > 0]
    if not runs or not rates_bps or len(rates_bps) != len(delays_ps):
        raise ValueError("store_and_forward_ps needs packets and as many delays as rates (>= 1 hop)")
    ser = [[_ser_cached(w, int(r)) for w, _ in runs] for r in rates_bps]
    return _tandem_ps([c for _, c in runs], ser) + sum(int(d) for d in delays_ps)


def message_fct_ps(runs: list[tuple[int, int]], ack_interval: int, ack_wire: int, fwd_rates: list[int],
                   fwd_delays: list[int], rev_rates: list[int], rev_delays: list[int]) -> int:
    """FCT of a message alone on its path (see Network.ideal_fct_ps): its packets, ``runs`` of
    (wire bytes, count) in order, leave back to back and are stored and forwarded over the
    forward links; the receiver sends an ACK (``ack_wire`` bytes) on every ``ack_interval``-th
    packet and on the last, at once; the ACKs cross the reverse links as a second tandem.

    Packet k reaches the receiver at A(k) (:func:`store_and_forward_ps` of packets 1..k). The
    ACKs are alike, so the last one arrives at max over ACKed k of (A(k) + (ACKs after k) x the
    slowest reverse hop's ACK time) + each reverse hop's ACK time and delay. Inside a run of
    equal packets A(k) is a max of functions affine in k (convex), and the ACK term is affine in
    the ACK's index, so the max needs only the first and the last ACKed packet of each run."""
    runs = [(int(w), int(c)) for w, c in runs if c > 0]
    m = int(ack_interval)
    if not runs or m < 1 or len(fwd_rates) != len(fwd_delays) or len(rev_rates) != len(rev_delays) \
            or not fwd_rates or not rev_rates:
        raise ValueError("message_fct_ps needs packets, ack_interval >= 1 and a rate and delay per hop")
    n = sum(c for _, c in runs)
    ack_ser = [_ser_cached(int(ack_wire), int(r)) for r in rev_rates]
    fwd_ser = [[_ser_cached(w, int(r)) for w, _ in runs] for r in fwd_rates]
    fwd_prop = sum(int(d) for d in fwd_delays)
    acked, first = set(), 1
    for _, c in runs:                                    # per run: its first and last ACKed packet
        last = first + c - 1
        lo, hi = -(-first // m) * m, last // m * m
        if lo <= hi:
            acked.update((lo, hi))
        first = last + 1
    acked.add(n)                                         # AckReq on the last packet

    def arrival(k: int) -> int:                          # last bit of packet k at the receiver
        counts, left = [], k
        for _, c in runs:
            if left <= 0:
                break
            counts.append(min(c, left))
            left -= c
        return _tandem_ps(counts, [row[:len(counts)] for row in fwd_ser]) + fwd_prop

    def acks_after(k: int) -> int:                       # ACKed packets after packet k
        return (n - 1) // m - k // m + 1 if k < n else 0

    worst = max(arrival(k) + acks_after(k) * max(ack_ser) for k in acked)
    return worst + sum(ack_ser) + sum(int(d) for d in rev_delays)


def _tandem_ps(counts: list[int], ser: list[list[int]]) -> int:
    """The staircase maximum of :func:`store_and_forward_ps`: ``counts`` per run (all > 0),
    ``ser[j][r]`` the serialization of one packet of run r on hop j. Turning points are the
    first and the last packet of each run, in order; per hop, ``pre`` is the serialization of the
    packets before a point and ``upto`` of those up to and including it."""
    best = None
    for row in ser:
        pre, upto, total = [], [], 0
        for c, s in zip(counts, row):
            pre += (total, total + (c - 1) * s)
            upto += (total + s, total + c * s)
            total += c * s
        if best is None:
            best = upto                                     # the first hop covers packets 1 .. point
            continue
        run_max, nxt = best[0] - pre[0], []
        for b_i, p_i, u_i in zip(best, pre, upto):          # enter this hop at a point <= this one
            v = b_i - p_i
            if v > run_max:
                run_max = v
            nxt.append(run_max + u_i)
        best = nxt
    return best[-1]


_SER_CACHE: dict[tuple[int, int], int] = {}


def _ser_cached(wire: int, rate_bps: int) -> int:
    key = (wire, rate_bps)
    v = _SER_CACHE.get(key)
    if v is None:
        if len(_SER_CACHE) > 65536:
            _SER_CACHE.clear()
        v = int(serialization_ps(wire, rate_bps))
        if v < 0:
            raise ValueError(f"no serialization time for {wire} bytes at {rate_bps} bit/s (a rate must be > 0)")
        _SER_CACHE[key] = v
    return v


class _Progress:
    """tqdm bar over simulated time, shown only on a terminal, not in a worker process, and only
    once a run has taken more than two seconds."""

    def __init__(self, end_ps: int | None, enabled: bool | None):
        import os
        self.end, self.bar, self.t0 = end_ps, None, time.perf_counter()
        # not in a worker process of softdpu run -j N / sweep (controlplane/run/executor.py): several
        # workers' bars would write over each other on the one terminal
        self.enabled = (sys.stderr.isatty() and os.environ.get("SOFTDPU_WORKER") != "1") if enabled is None else enabled

    def update(self, now_ps: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.t0 < 2.0:
                return
            from tqdm import tqdm
            total = self.end / 1e6 if self.end else None
            self.bar = tqdm(total=total, unit="us(sim)", leave=False,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} sim-us [{elapsed}<{remaining}]"
                            if total else "{n:.0f} sim-us [{elapsed}]")
        self.bar.n = now_ps / 1e6
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Result:
    """What a run produced, in memory; :meth:`write` makes the results folder."""

    def __init__(self, net: Network, samples: dict, ports: np.ndarray, wall_s: float, error: str | None = None):
        sim, sc = net.sim, net.scenario
        self.network, self.wall_s, self.sim_ps = net, wall_s, sim.now
        msgs = sim.msgs
        n = len(net.flows)
        self.flows = {
            "flow_id": np.arange(n), "qp": net.qps,
            "src": np.array([f.src for f in net.flows], dtype=np.int64),
            "dst": np.array([f.dst for f in net.flows], dtype=np.int64),
            "size_bytes": msgs["bytes"][:n].astype(np.int64), "start_ps": msgs["post_ps"][:n].astype(np.int64),
            "finish_ps": msgs["finish_ps"][:n].astype(np.int64),
        }
        # the verb, how it completed (WC_STATUS: success, rnr_retry_exceeded, flushed) and, for a SEND
        # or WRITE with immediate, when it completed at the responder (-1: not yet / not such a verb)
        verb_names = {code: name for name, code in VERBS.items()}
        self.flows["verb"] = np.array([verb_names[int(v)] for v in msgs["verb"][:n]], dtype=object)
        self.flows["wc_status"] = np.array([WC_STATUS[int(v)] for v in msgs["status"][:n]], dtype=object)
        self.flows["rx_done_ps"] = msgs["rx_done_ps"][:n].astype(np.int64)
        fin = self.flows["finish_ps"]
        self.flows["fct_ps"] = np.where(fin >= 0, fin - self.flows["start_ps"], -1)
        self.flows["ideal_fct_ps"] = np.array([net.ideal_fct_ps(f, int(q)) for f, q in zip(net.flows, net.qps)],
                                              dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.flows["slowdown"] = np.where(fin >= 0, self.flows["fct_ps"] / self.flows["ideal_fct_ps"], np.nan)

        self.timeseries = self._timeseries(net, samples, ports)
        c = sim.counters()
        qp = sim.qps
        in_flight = sim.data_in_flight()
        c.update({
            "dropped": c["data_dropped"] + c["ctrl_dropped"],
            "data_in_flight": in_flight,
            "conservation_ok": int(c["data_sent"] == c["data_delivered"] + c["data_dropped"] + in_flight),
            "msgs_total": n,
            "bytes_posted": int(qp["posted_bytes"].sum()), "bytes_acked": int(qp["acked_bytes"].sum()),
            "cnps_rx": int(qp["cnps_rx"].sum()), "naks_rx": int(qp["naks_rx"].sum()),
            "cc_events": int(qp["cc_events"].sum()), "sim_time_ps": int(sim.now),
            "failure_drops": int(sim.ports["down_drops"].sum()),
            "rx_ooo": int(qp["rx_ooo"].sum()), "rx_dup": int(qp["rx_dup"].sum()), "rx_late": int(qp["rx_late"].sum()),
            "reorder_peak": int(qp["ooo_peak"].max()) if len(qp) else 0,
            "reorder_max_dist": int(qp["ooo_max_dist"].max()) if len(qp) else 0,
        })
        if net.vswitch is not None:
            vs = net.vswitch.stats()
            c.update(vs)
            c.update(vtax.tax(vs, int(sim.now), net.vswitch.offload, len(net.vswitch.hosts), net.vswitch.tax,
                              emc=net.vswitch.vs_params["emc_entries"] > 0))
        if sc.qpc is not None:
            qh = sim.qpc_hosts
            acc = int(qh["hits"].sum() + qh["misses"].sum() + qh["pending"].sum()) if len(qh) else 0
            for k in ("hits", "misses", "pending", "tx_hits", "tx_misses", "tx_waited", "fetches", "evictions", "fetch_queued",
                      "fetch_wait_ps", "pkts_parked"):
                c[f"qpc_{k}"] = int(qh[k].sum()) if len(qh) else 0
            c["qpc_peak_outstanding"] = int(qh["peak_outstanding"].max()) if len(qh) else 0
            c["qpc_hit_rate"] = c["qpc_hits"] / acc if acc else 1.0
        if error is not None:
            c["error"] = error
        if c.get("pool_exhausted"):
            # the pool is the simulator's memory, not a modelled buffer: running out of it shapes
            # the traffic (senders retry an MTU time later, ACKs are not sent) without the model
            # saying so; the count is in counters.json, and said here
            import warnings
            warnings.warn(f"{sc.name}: the packet pool ({net.resolved['pkt_pool']:,} packets) ran out "
                          f"{c['pool_exhausted']:,} times: senders were held back and ACKs not sent, which "
                          f"the network did not cause; set pkt_pool higher", RuntimeWarning, stacklevel=2)
        self.counters = c
        self.trace = sim.trace.copy() if sc.trace else None
        self.config = {**sc.to_dict(), "resolved": {
            **net.resolved, "fabric": net.fabric.params, "num_hosts": net.fabric.num_hosts,
            "num_switches": net.fabric.num_switches, "num_links": len(net.fabric.links),
            "num_flows": n}}
        bp = net.bottleneck_port()
        self.config["bottleneck_port"] = bp
        self.config["bottleneck_rate_bps"] = net.fabric.links[bp // 2].rate_bps if bp is not None else None

    @staticmethod
    def _timeseries(net: Network, s: dict, ports: np.ndarray) -> dict[str, np.ndarray]:
        fab, nq, npt = net.fabric, len(net.sender_qps), len(ports)
        t = np.array(s["t"], dtype=np.int64)
        shape_q, shape_p = (len(t), nq), (len(t), npt)

        def stack(key, shape, dtype):
            return np.array(s[key], dtype=dtype).reshape(shape)

        acked = stack("acked", shape_q, np.int64)
        dt = np.diff(np.concatenate([[0], t])).astype(np.float64)
        dt[dt <= 0] = np.nan
        goodput = np.nan_to_num(np.diff(np.vstack([np.zeros((1, nq), np.int64), acked]), axis=0) * 8e12 / dt[:, None])
        first_flow = {int(q): f for q, f in zip(net.qps[::-1], net.flows[::-1])}
        return {
            "t_ps": t,
            "qp_ids": net.sender_qps,
            "qp_labels": np.array([f"{fab.node_names[first_flow[int(q)].src]}->{fab.node_names[first_flow[int(q)].dst]}"
                                   for q in net.sender_qps], dtype=str),
            "qp_rate_bps": stack("rate", shape_q, np.float64),
            "qp_goodput_bps": goodput,
            "qp_window_bytes": stack("win", shape_q, np.float64),
            "qp_cnps": stack("cnp", shape_q, np.int64),
            "port_ids": ports.astype(np.int64),
            "port_names": np.array([fab.port_name(int(p)) for p in ports], dtype=str),
            "port_queue_bytes": stack("q", shape_p, np.int64),
            "port_ecn_marks": stack("ecn", shape_p, np.int64),
            "port_drops": stack("drop", shape_p, np.int64),
            "port_tx_bytes": stack("tx", shape_p, np.int64),
            "port_pause": stack("pause", shape_p, np.int64),
        }

    def write(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(self.config, indent=2, sort_keys=True, default=_json) + "\n")
        (out / "counters.json").write_text(json.dumps(self.counters, indent=2, sort_keys=True) + "\n")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = ["flow_id", "qp", "src", "dst", "size_bytes", "start_ps", "finish_ps", "fct_ps", "ideal_fct_ps", "slowdown"]
        w.writerow(cols + FLOW_EXTRA_COLUMNS)
        for i in range(len(self.flows["flow_id"])):
            row = [int(self.flows[c][i]) for c in cols[:-1]]
            sd = self.flows["slowdown"][i]
            w.writerow(row + ["" if np.isnan(sd) else f"{sd:.6f}", self.flows["verb"][i], self.flows["wc_status"][i],
                              int(self.flows["rx_done_ps"][i])])
        (out / "flows.csv").write_text(buf.getvalue())
        _save_npz(out / "timeseries.npz", self.timeseries)
        if self.trace is not None:
            _save_npz(out / "trace.npz", {name: self.trace[name] for name in self.trace.dtype.names})
        return out

    def summary(self, out_dir: str | Path) -> dict:
        from controlplane.results.folder import load_run, summary
        return summary(load_run(out_dir))


def _json(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez with fixed zip timestamps, so equal arrays give byte-identical files."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, b.getvalue())


__all__ = ["Scenario", "Network", "ControlLoop", "Result", "RESULT_FILES"]
