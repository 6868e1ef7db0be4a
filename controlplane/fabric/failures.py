"""Failures: links and switches that go down (and back up) at given times, the NIC-side failover
that moves a QP's entropies off a failed link once the failure is detected, and routing
reconvergence after a modelled delay. The data plane only drops what a down link is given
(port counter down_drops); everything time-driven here runs at exact simulated times between
run_until() calls.

Scenario fields (controlplane/run/scenario.py):
  failures        [{"link": i | "switch": node, "down_ps": t, "up_ps": t2 (optional)}, ...]
  failure_params  detect_ps: a QP's entropies through a down link are replaced this long after it
                  fails (NIC/transport failure detection; default 100 us); reconverge_ps: the
                  switches' FIBs are recomputed without the down links this long after a change
                  (routing protocol convergence; default 1 ms). Until then, packets the ECMP hash
                  sends to a dead port are lost.
"""
from __future__ import annotations

import heapq
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, WithJsonSchema, model_validator

from controlplane.fabric import routing
from controlplane.config.schema import Int, Limited, Strict, _integer, section
from controlplane.config.limits import MAX_TIME_PS
from dataplane.sim import ONE_ENTROPY_POLICIES, WEIGHTED_POLICIES

def _is_index(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_time(v) -> bool:
    """An integer number of picoseconds in [0, MAX_TIME_PS] (controlplane/config/limits.py)."""
    return _is_index(v) and 0 <= v <= MAX_TIME_PS


class FailureParams(Strict):
    """How the fabric reacts to a failure: NIC failover after detect_ps, routing after reconverge_ps."""
    detect_ps: Limited("failure_params.detect_ps") = 100_000_000              # 100 us
    reconverge_ps: Limited("failure_params.reconverge_ps") = 1_000_000_000    # 1 ms


class Failure(Strict):
    """One failure: a link or a switch goes down at down_ps (and back up at up_ps)."""
    link: Int("the failing link's index", lo=0) = None
    switch: Annotated[Any, BeforeValidator(lambda x: x if isinstance(x, str) and x else _integer(None, 0, None)(x)),
                      WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
                                      "description": "the failing switch: node id or name"})] = None
    down_ps: Limited("failures[].down_ps")
    up_ps: Limited("failures[].up_ps") = None

    @model_validator(mode="after")
    def _one_target_and_order(self):
        if (self.link is None) == (self.switch is None):
            raise ValueError("needs exactly one of 'link' or 'switch'")
        if self.up_ps is not None and self.up_ps <= self.down_ps:
            raise ValueError(f"up_ps must be a time after down_ps ({self.down_ps}), got {self.up_ps!r}")
        return self


class FailurePlan:
    """The failure schedule of a network and the control plane's reactions to it."""

    def __init__(self, net):
        self.net = net
        sc = net.scenario
        if sc.failures is not None and not isinstance(sc.failures, (list, tuple)):
            raise ValueError(f"failures must be a list of {{link | switch, down_ps[, up_ps]}} or null, got {sc.failures!r}")
        p = section(FailureParams, sc.failure_params, "failure_params").model_dump()
        self.params = p
        self.down: set[int] = set()        # links down now
        self.detected: set[int] = set()    # ... whose failure the NICs have detected
        self.rng = np.random.default_rng([sc.seed, 3])
        self.queue: list[tuple[int, int, str, tuple]] = []
        self.log: list[dict] = []
        for i, f in enumerate(sc.failures or []):
            f = section(Failure, f, f"failures[{i}]")
            links = self._links_of(i, f)
            self._push(int(f.down_ps), "down", links)
            if f.up_ps is not None:
                self._push(int(f.up_ps), "up", links)

    def _links_of(self, i: int, f: Failure) -> tuple[int, ...]:
        fab = self.net.fabric
        if f.link is not None:
            link = f.link
            if not 0 <= link < len(fab.links):
                raise ValueError(f"failures[{i}].link: link {link!r} does not exist (links are 0..{len(fab.links) - 1})")
            return (int(link),)
        node = f.switch
        if isinstance(node, str) and node in fab.node_names:
            node = fab.node_names.index(node)
        if not _is_index(node) or not fab.num_hosts <= node < fab.num_nodes:
            raise ValueError(f"failures[{i}].switch: node {node!r} is not a switch "
                             f"(switches are {fab.num_hosts}..{fab.num_nodes - 1})")
        return tuple(j for j, l in enumerate(fab.links) if node in (l.a, l.b))

    def _push(self, t: int, kind: str, links: tuple[int, ...]) -> None:
        heapq.heappush(self.queue, (t, len(self.log) + len(self.queue), kind, links))

    def next_time(self) -> int | None:
        return self.queue[0][0] if self.queue else None

    def apply_due(self, now: int) -> None:
        while self.queue and self.queue[0][0] <= now:
            t, _, kind, links = heapq.heappop(self.queue)
            getattr(self, "_" + kind)(t, links)
            self.log.append({"t_ps": int(t), "action": kind, "links": list(links)})
        if self.log:
            self.net.resolved["failure_log"] = self.log

    # ------------------------------------------------------------------ actions
    def _down(self, t: int, links) -> None:
        for link in links:
            self.net.sim.set_link_up(link, False)
            self.down.add(link)
        self._push(t + self.params["detect_ps"], "detect", links)
        self._push(t + self.params["reconverge_ps"], "reconverge", links)

    def _up(self, t: int, links) -> None:
        for link in links:
            self.net.sim.set_link_up(link, True)
            self.down.discard(link)
            self.detected.discard(link)
        self._push(t + self.params["reconverge_ps"], "reconverge", links)

    def _detect(self, t: int, links) -> None:
        self.detected |= set(links) & self.down
        self.failover()

    def _reconverge(self, t: int, links) -> None:
        fab, sim = self.net.fabric, self.net.sim
        try:
            routes = routing.compute_routes(fab, down_links=sorted(self.down))
        except routing.RoutingError as exc:
            raise ValueError(f"failures: the fabric is partitioned with links {sorted(self.down)} down: {exc}") from None
        routes.install(sim)
        self.failover()                    # the new routes move the ECMP paths: check them again

    # ------------------------------------------------------------------ failover
    def crosses_failure(self, src: int, dst: int, sport: int, src_port: int | None = None) -> bool:
        return any(link in self.detected for link in self.net.sim.trace_path(src, dst, sport, src_port))

    def uplink_failover(self, qp: int) -> None:
        """A QP bound to a host port whose link failed (detected) moves to the host's first other
        port that is up and of the same rate (a bonded NIC's failover; it stays there when the
        link comes back). A single-port host has nowhere to go: its QP waits for the link. With
        declared addresses it moves among the ports of its address only (a NIC's plane ports)."""
        fab, sim = self.net.fabric, self.net.sim
        q = sim.qps[qp]
        port = int(q["port"])
        if port // 2 not in self.detected:
            return
        rate = fab.links[port // 2].rate_bps
        for p in fab.address_ports(fab.port_address(port)):      # its address's ports (the host's by default)
            if p // 2 not in self.down and fab.links[p // 2].rate_bps == rate:
                sim.bind_qp(qp, p)
                self.log.append({"t_ps": int(sim.now), "action": "uplink_failover", "qp": int(qp),
                                 "from_port": port, "to_port": int(p)})
                return

    def failover(self) -> None:
        """Move every QP end off a failed uplink of a multi-port host (uplink_failover), then
        replace every entropy whose ECMP path crosses a detected failure: the data entropies of
        each sender QP and the ACK/CNP entropy of each receiver QP."""
        if not self.detected:
            return
        sim = self.net.sim
        ends = np.concatenate([self.net.sender_qps, self.net.receiver_qps])   # data and ACK directions
        for qp in ends:
            self.uplink_failover(int(qp))
            q = sim.qps[int(qp)]
            src, dst = int(q["host"]), sim.qp_address(int(qp))[1]     # dst: the peer's address
            port = int(q["port"])
            ps = sim.path_set(int(qp))             # a QP without a path set: ecmp on its own sport
            ents = list(ps.entropies)
            keep = [e for e in ents if not self.crosses_failure(src, dst, e, port)]
            if len(keep) == len(ents):
                continue
            tries = 0
            while len(keep) < len(ents) and tries < 64 * len(ents):
                e = int(self.rng.integers(49152, 65536))
                tries += 1
                if e not in keep and not self.crosses_failure(src, dst, e, port):
                    keep.append(e)
            if not keep:
                continue                   # no working path found: wait for reconvergence
            if ps.policy in ONE_ENTROPY_POLICIES:
                keep = keep[:1]
            weights = None
            if ps.policy in WEIGHTED_POLICIES:      # a kept entropy keeps its weight, a new one gets 1
                wmap = dict(zip(ents, ps.weights))
                weights = [int(wmap.get(e, 1)) for e in keep]
            sim.set_paths(int(qp), ps.policy, keep, weights, ar_classes=ps.ar_classes)
