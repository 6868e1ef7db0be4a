"""Golden scenarios: one small canonical run per mechanism, whose results are committed.

Each scenario below is a full run of a few hundred milliseconds of wall time. What it produced is
stored beside this file, readable and small:

  <name>.json   the data-plane counters and the scenario-level totals (counters.json of a run,
                without the numbers that describe the simulator's implementation rather than the
                network: event counts and peak queue/pool occupancy of the simulator itself)
  <name>.csv    one row per message: sender QP, bytes, post time, finish time (ps)

tests/test_golden.py re-runs every scenario and requires the same numbers, bit for bit (one
scenario + one seed = one result). A change in behaviour is then a test failure that names the
scenario and each number that moved. When the change is intended, regenerate with

    make golden            # = python tests/golden/scenarios.py

and say in the commit message which numbers moved and why.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":                      # `python tests/golden/scenarios.py` from the repository root
    sys.path.insert(0, str(HERE.parent.parent))

from controlplane.ai import collectives as C       # noqa: E402
from controlplane.ai.rails import Gpu              # noqa: E402
from controlplane.run.scenario import Scenario      # noqa: E402
from controlplane.ai.sharp import sharp_all_reduce  # noqa: E402
from controlplane.config.units import Gbps, KB, MB, us  # noqa: E402

# counters that describe how the simulator did its work, not what the network did
IMPLEMENTATION_COUNTERS = {"events", "heap_peak", "pkts_peak", "pkts_in_use"}

STAR = {"topology": "single_switch", "rate_bps": Gbps(100), "delay_ps": us(1)}
FAT4 = {"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)}
CORE_LINK = 47                                   # k=4 fat-tree: an aggregation-core link
RAILS = {"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": us(1), "num_rails": 1,
         "servers_per_leaf": 4, "leaves_per_rail": 2, "spines_per_rail": 2, "cores_per_group": 2}


def incast(cc: str, senders: int = 4, size: int = KB(512), **kw) -> Scenario:
    base = dict(name=f"incast-{cc}", topology={**STAR, "num_hosts": senders + 1}, cc=cc,
                workload={"kind": "incast", "senders": senders, "size_bytes": size}, sample_interval_ps=0)
    base.update(kw)
    return Scenario(**base)


def permutation(size: int = KB(256), **kw) -> Scenario:
    base = dict(topology=FAT4, workload={"kind": "permutation", "size_bytes": size}, cc="none",
                sample_interval_ps=0, buffer_bytes=1_000_000)
    base.update(kw)
    return Scenario(**base)


def many_qps(n_qps: int = 48, peers: int = 4, msgs: int = 3, entries: int = 16) -> Scenario:
    """Host 0 cycles over n_qps connections, more than its QP-context cache holds (LRU thrash)."""
    flows = [{"src": 0, "dst": 1 + i % peers, "size_bytes": KB(2), "start_ps": 0, "conn": i}
             for i in range(n_qps) for _ in range(msgs)]
    return Scenario(topology={**STAR, "num_hosts": peers + 1}, workload={"kind": "flows", "flows": flows}, cc="none",
                    sample_interval_ps=0, monitor_ports="none",
                    qpc={"entries": entries, "fetch_latency_ps": us(1), "max_outstanding": 4})


def overlay(**policy) -> Scenario:
    """4:1 incast between VMs of two tenants, every host with a DPU vSwitch (VXLAN overlay)."""
    return Scenario(topology={**STAR, "num_hosts": 5}, workload={"kind": "incast", "senders": 4, "size_bytes": KB(256)},
                    sample_interval_ps=0, dpu={"tenants": 2, "vfs_per_host": 2, "policy": policy})


# name -> (what it pins, how to build it). Scenario runs return a Result; collective runs a network.
SCENARIOS: dict[str, tuple[str, Callable[[], Scenario]]] = {
    **{f"incast_{cc}": (f"4:1 incast, 512 KB each, 100 Gb/s, {cc}", (lambda cc=cc: incast(cc)))
       for cc in ("dcqcn", "dctcp", "timely", "hpcc", "swift", "nscc", "none")},
    "pfc_incast": ("8:1 incast into a small shared buffer with PFC, no CC: pauses, no drops",
                   lambda: incast("none", senders=8, size=KB(256), pfc=True,
                                  pfc_params={"buffer_bytes": 1_000_000})),
    "gbn_loss": ("permutation on a k=4 fat-tree, go-back-N, 1 % random loss",
                 lambda: permutation(transport="gbn", link_loss=0.01, seed=3)),
    "sr_loss": ("permutation on a k=4 fat-tree, selective repeat (IRN), 1 % random loss",
                lambda: permutation(transport="sr", link_loss=0.01, seed=3)),
    "ooo_loss": ("permutation on a k=4 fat-tree, out-of-order (SRD-like), 1 % random loss",
                 lambda: permutation(transport="ooo", link_loss=0.01, seed=3)),
    "spray_reps": ("permutation sprayed with REPS entropy recycling, ooo transport",
                   lambda: permutation(transport="ooo", paths="reps", cc="dcqcn")),
    "adaptive_routing": ("permutation with per-packet adaptive routing (least queued bytes), ooo transport",
                         lambda: permutation(transport="ooo", adaptive_routing=True)),
    "link_failure": ("permutation sprayed over a core link that fails at 20 us, NIC failover after 10 us",
                     lambda: permutation(size=MB(1), transport="sr", paths="spray_rr",
                                         failures=[{"link": CORE_LINK, "down_ps": us(20)}],
                                         failure_params={"detect_ps": us(10), "reconverge_ps": us(5000)})),
    "vswitch_reactive": ("VM-to-VM incast through DPU vSwitches, megaflows installed on upcalls",
                         lambda: overlay()),
    "vswitch_proactive": ("VM-to-VM incast through DPU vSwitches, megaflows installed at t = 0",
                          lambda: overlay(proactive=True)),
    "qpc_thrash": ("48 connections cycled through a 16-entry LRU QP-context cache", lambda: many_qps()),
    "read_incast_dcqcn": ("4 hosts answer 512 KB READs from one host at once, DCQCN on the responders",
                          lambda: incast("dcqcn", workload={"kind": "incast", "senders": 4, "size_bytes": KB(512),
                                                            "verb": "read"})),
    "read_sr_loss": ("permutation of READs on a k=4 fat-tree, selective repeat, 1 % random loss",
                     lambda: permutation(transport="sr", link_loss=0.01, seed=3,
                                         workload={"kind": "permutation", "size_bytes": KB(256), "verb": "read"})),
    "send_rnr": ("3 SENDs from each of 4 hosts into one receive per QP, reposted 5 us after use: RNR NAKs",
                 lambda: incast("none", workload={"kind": "flows", "flows": [
                     {"src": 1 + i % 4, "dst": 0, "size_bytes": KB(16), "verb": "send", "conn": i % 4}
                     for i in range(12)]}, verbs={"rq_depth": 1, "rq_repost_ps": us(5), "min_rnr_timer": 1})),
}

# collective scenarios: name -> (what it pins, topology overrides, schedule builder)
COLLECTIVES: dict[str, tuple[str, dict, Callable]] = {
    "ring_allreduce": ("8-rank ring all-reduce of 2 MB, 512 KB chunks, on a one-rail CLOS", {},
                       lambda net: C.ring_all_reduce(net, [Gpu(s, 0) for s in range(8)], MB(2), chunk_bytes=KB(512),
                                                     elems=16, seed=1)),
    "sharp_allreduce": ("4-rank SHARP all-reduce of 1 MB through the leaf's aggregation node",
                        {"sharp": True, "sharp_latency_ps": 500_000},
                        lambda net: sharp_all_reduce(net, [Gpu(s, 0) for s in range(4)], MB(1), chunk_bytes=KB(256),
                                                     elems=16, seed=1)),
}

NAMES = [*SCENARIOS, *COLLECTIVES]

# What each scenario must exercise, so that a golden cannot silently stop testing its mechanism
# (e.g. traffic that ends before the failure it was meant to meet): counter -> minimum.
EXERCISES: dict[str, dict[str, int]] = {
    **{f"incast_{cc}": {"msgs_completed": 4} for cc in ("dctcp", "timely", "hpcc", "swift", "nscc", "none")},
    "incast_dcqcn": {"cnp_sent": 1, "msgs_completed": 4},
    "pfc_incast": {"pfc_pauses": 1, "msgs_completed": 8},
    "gbn_loss": {"random_drops": 1, "naks_rx": 1, "retransmitted": 1, "msgs_completed": 16},
    "sr_loss": {"random_drops": 1, "naks_rx": 1, "retransmitted": 1, "msgs_completed": 16},
    "ooo_loss": {"random_drops": 1, "timeouts": 1, "retransmitted": 1, "msgs_completed": 16},
    "spray_reps": {"rx_ooo": 1, "msgs_completed": 16},
    "adaptive_routing": {"ar_moves": 1, "msgs_completed": 16},
    "link_failure": {"failure_drops": 1, "msgs_completed": 16},
    "vswitch_reactive": {"vs_miss": 1, "sp_installs": 1, "msgs_completed": 4},
    "vswitch_proactive": {"vs_installs": 1, "msgs_completed": 4},
    "qpc_thrash": {"qpc_misses": 1, "qpc_evictions": 1, "msgs_completed": 144},
    "read_incast_dcqcn": {"cnp_sent": 1, "msgs_completed": 4},
    "read_sr_loss": {"random_drops": 1, "retransmitted": 1, "msgs_completed": 16},
    "send_rnr": {"nak_sent": 1, "msgs_completed": 12},
    "ring_allreduce": {"msgs_completed": 112},
    "sharp_allreduce": {"msgs_completed": 32},
}


def _messages_csv(sim, n: int) -> str:
    m = sim.msgs[:n]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["msg", "qp", "bytes", "post_ps", "finish_ps"])
    for i in range(n):
        w.writerow([i, int(m["qp"][i]), int(m["bytes"][i]), int(m["post_ps"][i]), int(m["finish_ps"][i])])
    return buf.getvalue()


def _clean(counters: dict) -> dict:
    return {k: v for k, v in sorted(counters.items()) if k not in IMPLEMENTATION_COUNTERS}


def run(name: str) -> tuple[dict, str]:
    """Run one golden scenario: (its JSON record, its messages CSV)."""
    if name in SCENARIOS:
        what, make = SCENARIOS[name]
        r = make().run()
        sim = r.network.sim
        record = {"scenario": name, "pins": what, "counters": _clean(r.counters)}
        return record, _messages_csv(sim, len(r.network.flows))
    what, topo, schedule = COLLECTIVES[name]
    net = C.network(Scenario(topology={**RAILS, **topo}, workload={"kind": "flows", "flows": []}, cc="none",
                             sample_interval_ps=0))
    res = C.run_collective(net, schedule(net))
    sim = net.sim
    counters = sim.counters()
    counters["data_in_flight"] = sim.data_in_flight()
    record = {"scenario": name, "pins": what, "counters": _clean(counters),
              "collective": {"start_ps": res.start_ps, "end_ps": res.end_ps,
                             "bytes_sent": {str(k): v for k, v in sorted(res.bytes_sent.items())},
                             "bytes_received": {str(k): v for k, v in sorted(res.bytes_received.items())},
                             "buffers": {f"{k[0]}/{k[1]}": [float(x) for x in v]
                                         for k, v in sorted(res.buffers.items(), key=lambda kv: str(kv[0]))}}}
    return record, _messages_csv(sim, sim.num_msgs)


def dumps(record: dict) -> str:
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def regenerate(names: list[str] | None = None) -> None:
    for name in names or NAMES:
        record, messages = run(name)
        (HERE / f"{name}.json").write_text(dumps(record))
        (HERE / f"{name}.csv").write_text(messages)
        print(f"golden {name}: {len(messages.splitlines()) - 1} messages written")


if __name__ == "__main__":
    regenerate(sys.argv[1:] or None)
