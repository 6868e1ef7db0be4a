"""``softdpu bench scale``: the permutation benchmark as the fat-tree grows (a benchmark, never a test).

The scenario is ``softdpu bench permutation-1024``'s (controlplane/run/bench.py): a 3-tier
fat-tree, 100 Gb/s links, 1 us per link, every host WRITEs 2 MB to a random-permutation
destination, DCQCN (the C twin) + ECMP, 4 KB MTU payload, no sampling, run to completion; only
``k`` changes: k = 8 (128 hosts), 16 (1,024), 32 (8,192) and, asked for, 64 (65,536).

Each size runs in its own Python process (``python -m controlplane.run.bench_scale K ...``), so
that its peak RSS (``ru_maxrss`` of that process) is the peak of that size alone. Before a size is
started its memory is estimated from the sizes measured before it (bytes per host, and how much
they grew per doubling of k) and compared with the machine's MemAvailable: a size that would not
fit is refused with its estimate (memory and time) instead of being killed by the kernel.

:func:`partition_profile` measures what a conservative parallel simulation partitioned by pod
would exchange (docs/scaling.md): per lookahead window (the link delay), the events, the packet
hops each partition transmits and the hops that cross from one partition to another.
"""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time

from controlplane.config.units import Gbps, MB, us
from controlplane.run.bench_history import proc_kib
from controlplane.run.scenario import Scenario

#: the sizes of ``softdpu bench scale``: k = 64 only when asked for (--set max_k=64)
SCALE_KS = (8, 16, 32, 64)
DEFAULT_MAX_K = 32
#: headroom over the estimate asked of MemAvailable (the estimate extrapolates; the kernel needs some too)
MEMORY_MARGIN = 1.25


def hosts_of(k: int) -> int:
    """Hosts of a k-ary fat-tree: k^3 / 4 (controlplane/fabric/topology.py fat_tree)."""
    return k ** 3 // 4


def scale_scenario(k: int, size_bytes: int = MB(2), seed: int = 1, ack_interval: int = 1) -> Scenario:
    """``permutation-1024``'s scenario (controlplane/run/bench.py) on a k-ary fat-tree."""
    return Scenario(
        name=f"scale-k{k}",
        topology={"topology": "fat_tree", "k": k, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)},
        workload={"kind": "permutation", "size_bytes": size_bytes},
        cc="dcqcn", cc_impl="c", mtu_payload=4096, seed=seed, ack_interval=ack_interval,
        sample_interval_ps=0, monitor_ports="none")


_peak_seen = 0


def peak_rss_bytes(read=None) -> int:
    """This process's peak resident set: VmHWM of /proc/self/status (the high-water mark of this
    address space, which starts afresh at exec), else ru_maxrss (KiB on Linux; it keeps the
    parent's peak across fork + exec, so a child started by a big process would report that).

    The highest value read so far in this process, never less: the kernel keeps the resident set
    in per-CPU counters (Linux 6.2 on) and reports VmHWM as max(recorded peak, current RSS), both
    read approximately, so a later reading could be a few pages below an earlier one (seen on
    Linux 6.18: 96.492 MiB after 96.496 MiB). ``read`` replaces the /proc reading (tests)."""
    global _peak_seen
    if read is None:
        hwm = proc_kib("/proc/self/status", "VmHWM")
        read = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _peak_seen = max(_peak_seen, int(read))
    return _peak_seen


def run_point(k: int, size_bytes: int = MB(2), seed: int = 1) -> dict:
    """One size, in this process: build, run to completion, the figures. ``peak_rss_mib`` is this
    process's peak so far (per size only when the process ran nothing bigger before: run_scale
    gives every size its own process); ``base_rss_mib`` its peak before the fabric was built (the
    interpreter, numpy, cffi and softdpu imported); ``bytes_per_host`` what the simulation added to
    the peak, per host; ``sim_bytes_per_host`` the data plane's own arrays (Simulator.memory_bytes)
    per host."""
    from controlplane.run.bench import timed_run
    base = peak_rss_bytes()                      # the interpreter with softdpu imported, before the fabric
    net, result, build_s, run_s = timed_run(scale_scenario(k, size_bytes, seed))
    c = result.counters
    hosts = net.fabric.num_hosts
    rss, sim_mem = peak_rss_bytes(), net.sim.memory_bytes()
    return {
        "benchmark": f"scale-k{k}", "k": k, "hosts": hosts, "size_bytes": size_bytes, "seed": seed,
        "events": c["events"], "us_per_event": run_s / c["events"] * 1e6,
        "run_s": run_s, "build_s": build_s, "wall_s": build_s + run_s,
        "sim_time_us": float(result.flows["finish_ps"].max()) / 1e6,
        "packet_hops": c["packet_hops"],
        "flows_done": f"{c['msgs_completed']}/{c['msgs_total']}", "pool_exhausted": c["pool_exhausted"],
        "peak_rss_mib": rss / 2**20, "base_rss_mib": base / 2**20, "sim_memory_mib": sim_mem / 2**20,
        "bytes_per_host": (rss - base) / hosts, "sim_bytes_per_host": sim_mem / hosts,
    }


def run_point_subprocess(k: int, size_bytes: int = MB(2), seed: int = 1) -> dict:
    """:func:`run_point` in a fresh Python process (its own peak RSS); the wall time of the whole
    process (interpreter start and imports included) is ``process_wall_s``. The process gets one
    BLAS thread: the benchmark is one core's, and OpenBLAS's idle threads spin for a while after
    any numpy call that used them (3 % of a k = 16 run's samples under perf), on the core the run
    is measured on when it is pinned."""
    t0 = time.perf_counter()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "controlplane.run.bench_scale", str(k), str(size_bytes), str(seed)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"bench scale: k = {k} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = time.perf_counter() - t0
    return out


def mem_available_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where the file or the line is missing)."""
    return proc_kib(meminfo, "MemAvailable")


def estimate(k: int, measured: list[dict]) -> dict:
    """What size ``k`` would need, from the sizes measured so far (at least one).

    Memory: the interpreter's base RSS, plus the bytes per host of the largest measured size
    (what the simulation added to the peak RSS), times the growth of bytes per host from the size
    before it to that one (per doubling of k; 1 with a single measured size), times the hosts of
    ``k``; or, when larger, the base plus the structural estimate of
    controlplane/fabric/topology.py estimate_bytes (the one every scenario is checked against).
    Bytes per host can grow with k because routing's work arrays (per switch, ToR column and port)
    grow as k^5 (per host: k^2); the FIB itself is per ToR (routing.py Routes). Extrapolating the
    last growth misses that term taking over, which the structural estimate counts. MEMORY_MARGIN
    in :func:`check_fits` covers the rest.
    Time: the events scale with the hosts (the same per-host traffic), the cost per event grows as
    it did over the last doubling of k."""
    if not measured:
        raise ValueError("estimate: needs at least one measured size")
    pts = sorted(measured, key=lambda r: r["k"])
    last = pts[-1]
    doublings = 0
    kk = last["k"]
    while kk < k:
        kk, doublings = kk * 2, doublings + 1
    mem_growth = time_growth = 1.0
    if len(pts) >= 2:
        prev = pts[-2]
        steps = max(1, round(math.log2(last["k"] / prev["k"])))
        mem_growth = max(1.0, (last["bytes_per_host"] / prev["bytes_per_host"]) ** (1 / steps))
        time_growth = max(1.0, (last["us_per_event"] / prev["us_per_event"]) ** (1 / steps))
    from controlplane.fabric.topology import estimate_bytes
    hosts = hosts_of(k)
    per_host = last["bytes_per_host"] * mem_growth ** doublings
    events = last["events"] * hosts / last["hosts"]
    us_per_event = last["us_per_event"] * time_growth ** doublings
    base = last["base_rss_mib"] * 2**20
    # the structural estimate the scenario check uses (routing's work arrays per switch and host,
    # ports, QPs, messages, the packet pool): it grows as k^5 and takes over at large k
    structural = estimate_bytes(hosts, 5 * k * k // 4, 3 * hosts, num_flows=hosts)
    return {"k": k, "hosts": hosts, "from_k": last["k"], "bytes_per_host": per_host,
            "structural_bytes": base + structural,
            "memory_bytes": max(base + per_host * hosts, base + structural), "events": events, "us_per_event": us_per_event,
            "run_s": events * us_per_event / 1e6, "memory_growth_per_doubling": mem_growth,
            "time_growth_per_doubling": time_growth}


def check_fits(est: dict, available: int | None) -> None:
    """ValueError naming the estimate when ``est`` (from :func:`estimate`) with MEMORY_MARGIN does
    not fit in ``available`` bytes (None: unknown, not checked)."""
    need = est["memory_bytes"] * MEMORY_MARGIN
    if available is not None and need > available:
        raise ValueError(
            f"k = {est['k']} ({est['hosts']:,} hosts) not run: it would need about "
            f"{est['memory_bytes'] / 2**30:.1f} GiB (the larger of {est['bytes_per_host'] / 1024:,.1f} KiB per host, "
            f"from k = {est['from_k']} growing x{est['memory_growth_per_doubling']:.2f} per doubling of k, and the "
            f"fabric's structural estimate, {est['structural_bytes'] / 2**30:.1f} GiB; x{MEMORY_MARGIN} margin "
            f"asked) and this machine has {available / 2**30:.1f} GiB available "
            f"(MemAvailable); estimated run: about {est['events']:.3g} events at "
            f"{est['us_per_event']:.2f} us each = {est['run_s']:,.0f} s")


def scale_ks(max_k: int = DEFAULT_MAX_K, min_k: int = 8) -> list[int]:
    """The sizes run: k in 8, 16, 32, 64 from ``min_k`` to ``max_k`` (any even k >= 4 may be named
    as min_k; then it doubles)."""
    for name, v in (("max_k", max_k), ("min_k", min_k)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 4 or v % 2:
            raise ValueError(f"bench scale: {name} must be an even integer >= 4, got {v!r}")
    if max_k > SCALE_KS[-1]:
        raise ValueError(f"bench scale: max_k = {max_k}: at most {SCALE_KS[-1]} (65,536 hosts)")
    if min_k > max_k:
        raise ValueError(f"bench scale: min_k = {min_k} is above max_k = {max_k}")
    ks, k = [], min_k
    while k <= max_k:
        ks.append(k)
        k *= 2
    return ks


def run_scale(max_k: int = DEFAULT_MAX_K, min_k: int = 8, size_bytes: int = MB(2), seed: int = 1,
              subprocesses: bool = True, available: int | None = -1, report=None) -> list[dict]:
    """Every size from ``min_k`` to ``max_k`` (:func:`scale_ks`), smallest first, each in its own
    process (``subprocesses``); a size whose estimate does not fit ``available`` bytes (default:
    MemAvailable now) is not run: its row holds the estimate and ``refused`` (the message), and
    no larger size runs. ``report(row)`` is called as each row is ready (printing as it goes)."""
    rows: list[dict] = []
    measured: list[dict] = []
    for k in scale_ks(max_k, min_k):
        if measured:
            est = estimate(k, measured)
            try:
                check_fits(est, mem_available_bytes() if available == -1 else available)
            except ValueError as e:
                row = {"benchmark": f"scale-k{k}", "k": k, "hosts": hosts_of(k), "refused": str(e),
                       "estimate": est}
                rows.append(row)
                if report:
                    report(row)
                break
        row = run_point_subprocess(k, size_bytes, seed) if subprocesses else run_point(k, size_bytes, seed)
        if measured:                     # what was expected before it ran (how good the estimate is)
            row["estimated_mib"], row["estimated_run_s"] = est["memory_bytes"] / 2**20, est["run_s"]
        measured.append(row)
        rows.append(row)
        if report:
            report(row)
    return rows


SCALE_COLUMNS = [("k", "k", "{:d}"), ("hosts", "hosts", "{:,d}"), ("events", "events", "{:,d}"),
                 ("us_per_event", "us/event", "{:.3f}"), ("run_s", "run s", "{:.2f}"),
                 ("wall_s", "wall s", "{:.2f}"), ("peak_rss_mib", "peak RSS MiB", "{:,.0f}"),
                 ("sim_memory_mib", "sim MiB", "{:,.1f}"), ("bytes_per_host", "B/host", "{:,.0f}"),
                 ("sim_bytes_per_host", "sim B/host", "{:,.0f}"), ("estimated_mib", "est. MiB", "{:,.0f}"),
                 ("estimated_run_s", "est. run s", "{:,.1f}")]


def format_scale_header() -> str:
    return "  ".join(f"{title:>12s}" for _, title, _ in SCALE_COLUMNS)


def format_scale_row(r: dict) -> str:
    if "refused" in r:
        return f"{r['k']:>12d}  {r['hosts']:>12,d}  {r['refused']}"
    return "  ".join(f"{fmt.format(r[key]) if key in r else '-':>12s}" for key, _, fmt in SCALE_COLUMNS)


# --------------------------------------------------------------------------------- ACK coalescing
#: the receivers' ACK intervals `softdpu bench ack-coalescing` compares; the first is the reference
ACK_INTERVALS = (1, 2, 4, 8)
ACK_COLUMNS = (("ack_interval", "ACK every", "{:d}"), ("events", "events", "{:,d}"),
               ("events_ratio", "events/ref", "{:.3f}"), ("run_s", "run s", "{:.2f}"),
               ("run_ratio", "run/ref", "{:.2f}"), ("ctrl_sent", "ACKs+CNPs", "{:,d}"),
               ("fct_mean_us", "FCT mean us", "{:.1f}"), ("fct_p99_us", "FCT p99 us", "{:.1f}"),
               ("fct_max_us", "last us", "{:.1f}"), ("flow_change_median", "|dFCT| med", "{:.2%}"),
               ("flow_change_max", "|dFCT| max", "{:.2%}"))


def ack_coalescing(k: int = 16, size_bytes: int = MB(2), seed: int = 1, intervals=ACK_INTERVALS,
                   report=None) -> list[dict]:
    """The permutation of ``bench scale`` at one k, once per receiver ACK interval (``ack_interval``:
    an ACK every n-th data packet, and at every AckReq, the last packet of a message): what fewer
    ACKs save (events, run time) and what they cost in fidelity, as the flow completion times' change
    from the first interval's run (the same flows: the permutation is the seed's). ``flow_change_*``
    are the median and largest |FCT / FCT_ref - 1| over the flows. In this process, one run after the
    other (run time is the C run, ``net.run``)."""
    import numpy as np
    from controlplane.run.bench import timed_run
    rows: list[dict] = []
    ref = None
    for n in intervals:
        net, result, build_s, run_s = timed_run(scale_scenario(k, size_bytes, seed, ack_interval=n))
        c = result.counters
        fct = np.asarray(result.flows["fct_ps"], dtype=float)
        ids = np.asarray(result.flows["flow_id"])
        if ref is None:
            ref = {"fct": fct, "ids": ids, "events": c["events"], "run_s": run_s}
        if not np.array_equal(ids, ref["ids"]) or not np.all(fct > 0):
            raise RuntimeError(f"ack_interval={n}: not the same completed flows as the reference run")
        change = np.abs(fct / ref["fct"] - 1.0)
        row = {"k": k, "hosts": net.fabric.num_hosts, "ack_interval": n, "events": c["events"],
               "events_ratio": c["events"] / ref["events"], "run_s": run_s, "run_ratio": run_s / ref["run_s"],
               "us_per_event": run_s / c["events"] * 1e6, "ctrl_sent": c["ctrl_sent"],
               "data_sent": c["data_sent"], "cnp_sent": c["cnp_sent"],
               "flows_done": f"{c['msgs_completed']}/{c['msgs_total']}",
               "fct_mean_us": float(fct.mean()) / 1e6, "fct_p99_us": float(np.percentile(fct, 99)) / 1e6,
               "fct_max_us": float(fct.max()) / 1e6,
               "flow_change_median": float(np.median(change)), "flow_change_max": float(change.max())}
        rows.append(row)
        if report:
            report(row)
    return rows


def format_ack_header() -> str:
    return "  ".join(f"{title:>11s}" for _, title, _ in ACK_COLUMNS)


def format_ack_row(r: dict) -> str:
    return "  ".join(f"{fmt.format(r[key]):>11s}" for key, _, fmt in ACK_COLUMNS)


# ------------------------------------------------------------------------------------- partitions
def pod_partition(k: int, partitions: int | None = None) -> "object":
    """Node -> partition of a k-ary fat-tree split by pod (docs/scaling.md): ``partitions`` (a
    divisor of k; default k) partitions, pod p in partition p * partitions // k; hosts, edge and
    aggregation switches go with their pod; core j (connected to aggregation switch j // (k/2)
    of every pod) goes to partition j % partitions, so each holds (k/2)^2 / partitions cores.
    Numbering of controlplane/fabric/topology.py fat_tree: hosts, edges, aggs, cores."""
    import numpy as np
    p = k if partitions is None else partitions
    if p < 1 or k % p:
        raise ValueError(f"partitions must divide k = {k}, got {partitions!r}")
    half, hosts = k // 2, hosts_of(k)
    pod_sw = k * half
    pod_of_host = np.arange(hosts) // (half * half)
    pod_of_sw = np.arange(pod_sw) // half
    part = np.concatenate([pod_of_host * p // k, pod_of_sw * p // k, pod_of_sw * p // k,
                           np.arange(half * half) % p])
    return part


def partition_profile(k: int, partitions: int | None = None, size_bytes: int = MB(2), seed: int = 1) -> dict:
    """:func:`partition_profiles` for one partition count (default k: one partition per pod)."""
    return partition_profiles(k, [partitions], size_bytes, seed)[0]


def partition_profiles(k: int, partition_counts: list[int | None], size_bytes: int = MB(2), seed: int = 1) -> list[dict]:
    """Run the scale scenario at ``k`` once with a controller that stops the data plane at every
    lookahead window (the smallest link delay: 1 us here) and reads the event counter and every
    port's transmitted packets: per window the events, and for each partitioning of
    ``partition_counts`` (:func:`pod_partition`) the packet hops transmitted in each partition and
    the hops whose receiving node is in another partition (the messages a partitioned simulation
    would exchange). Stopping changes no result (a controller that only reads: the same flows,
    finish times and packet hops as the plain run; the run ends at the first window boundary
    after the last completion, where the plain run goes on to its next stop, so its event counter
    can hold a few more timer events)."""
    import numpy as np

    from controlplane.run.control_loop import Periodic
    sc = scale_scenario(k, size_bytes, seed)
    net = sc.build()
    sim = net.sim
    lookahead = min(int(link.delay_ps) for link in net.fabric.links)
    ports = sim.ports
    node = ports["node"].astype(np.int64)
    peer_node = node[ports["peer"].astype(np.int64)]                   # peer: the port at the other end
    layouts = []
    for count in partition_counts:
        part = pod_partition(k, count)
        src_part = part[node]                                          # the partition transmitting on the port
        layouts.append((int(part.max()) + 1, src_part, src_part != part[peer_node]))
    per_window_events: list[int] = []
    per_window_hops: list[list[np.ndarray]] = [[] for _ in layouts]
    per_window_cross: list[list[int]] = [[] for _ in layouts]
    state = {"events": sim.events, "tx": ports["tx_packets"].astype(np.int64)}

    def tick(net_):
        tx = net_.sim.ports["tx_packets"].astype(np.int64)
        d = tx - state["tx"]
        ev = net_.sim.events
        per_window_events.append(ev - state["events"])
        for i, (nparts, src_part, cross) in enumerate(layouts):
            per_window_hops[i].append(np.bincount(src_part, weights=d, minlength=nparts))
            per_window_cross[i].append(int(d[cross].sum()))
        state["events"], state["tx"] = ev, tx

    net.loop.register(Periodic(lookahead, tick, name="window-profile"))
    t0 = time.perf_counter()
    res = net.run(progress=False)
    wall = time.perf_counter() - t0
    tick(net)                                           # the last partial window
    ev = np.array(per_window_events, dtype=np.int64)
    busy = ev > 0
    c = res.counters
    out = []
    for i, (nparts, _, _) in enumerate(layouts):
        hops = np.array(per_window_hops[i])
        xw = np.array(per_window_cross[i], dtype=np.int64)
        total_hops = hops.sum()
        # events of a partition in a window: the window's events shared as its transmitted hops
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(hops.sum(1, keepdims=True) > 0, hops / hops.sum(1, keepdims=True), 1 / nparts)
        max_part = (ev[:, None] * share).max(1)
        out.append({
            "k": k, "partitions": nparts, "lookahead_ps": lookahead, "events": int(c["events"]),
            "events_windows_sum": int(ev.sum()), "packet_hops": int(c["packet_hops"]),
            "port_tx_packets": int(total_hops), "cross_hops": int(xw.sum()),
            "cross_fraction_of_hops": float(xw.sum() / total_hops),
            "cross_fraction_of_events": float(xw.sum() / ev.sum()),
            "windows": int(len(ev)), "busy_windows": int(busy.sum()),
            "events_per_window_mean": float(ev[busy].mean()),
            "events_per_window_median": float(np.median(ev[busy])),
            "events_per_window_p10": float(np.percentile(ev[busy], 10)),
            "cross_per_window_mean": float(xw[busy].mean()),
            "max_partition_events_sum": float(max_part.sum()),
            "balance": float(ev.sum() / nparts / max_part.sum()),     # 1 = perfectly even
            "run_wall_s": wall, "sim_time_us": float(res.flows["finish_ps"].max()) / 1e6,
            "per_window": {"events": ev.tolist(), "cross": xw.tolist(), "max_part_events": max_part.tolist()}})
    return out


def speedup_model(profile: dict, us_per_event: float, barrier_us: float, cross_us: float,
                  us_per_event_parallel: float | None = None) -> dict:
    """The model of docs/scaling.md on a :func:`partition_profile`: a window-synchronous (YAWNS)
    run takes, per window, the busiest partition's events x the cost per event, plus one barrier,
    plus the cross-partition messages of the window shared by the partitions (each sends and
    receives its own) x the cost per message. Sequential: every event x ``us_per_event``.
    ``us_per_event_parallel``: the per-event cost inside a partition (a smaller working set),
    default the sequential one."""
    import numpy as np
    pw = profile["per_window"]
    ev, mx, xw = (np.array(pw[key], dtype=float) for key in ("events", "max_part_events", "cross"))
    busy = ev > 0
    upe = us_per_event if us_per_event_parallel is None else us_per_event_parallel
    p = profile["partitions"]
    seq = ev.sum() * us_per_event
    par = (mx[busy] * upe).sum() + busy.sum() * barrier_us + (xw[busy] / p).sum() * cross_us
    return {"sequential_s": seq / 1e6, "parallel_s": par / 1e6, "speedup": seq / par,
            "compute_s": (mx[busy] * upe).sum() / 1e6, "barrier_s": busy.sum() * barrier_us / 1e6,
            "messages_s": (xw[busy] / p).sum() * cross_us / 1e6}


def _main(argv: list[str]) -> int:
    """``python -m controlplane.run.bench_scale K [SIZE_BYTES [SEED]]``: one size, its figures as
    one JSON line (run_scale's child process)."""
    k = int(argv[0])
    size = int(argv[1]) if len(argv) > 1 else MB(2)
    seed = int(argv[2]) if len(argv) > 2 else 1
    print(json.dumps(run_point(k, size, seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
