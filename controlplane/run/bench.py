"""Benchmarks (never tests): the field's standard permutation scenario, timed as a whole.

``permutation-1024``: 3-tier fat-tree k=16 (1024 hosts), 100 Gb/s links, 1 us per link, 4 KB MTU
payload; each host WRITEs 2 MB to a random-permutation destination; DCQCN + ECMP; run to
completion. ``permutation-128`` is the same with k=8. Reference point: htsim on its UEC model of
permutation-1024 took 20.8 s and 142 MiB on one core of this machine kind.
"""
from __future__ import annotations

import resource
import time

from congestion import registry
from congestion.api import CongestionControl
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, MB, us
from dataplane.sim import SIZEOF_PACKET, SIZEOF_QP

BENCHMARKS = {"permutation-1024": 16, "permutation-128": 8}


class _NoopEveryEvent(CongestionControl):
    """A Python plug-in that receives every event (each ACK included) and does nothing: what
    remains is the cost of the C -> Python call path itself."""
    name = "bench-noop-python"

    def on_ack(self, st, ev):
        return None                       # nothing: the call itself is what is measured


def scenario(name: str, cc_impl: str = "c", seed: int = 1) -> Scenario:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return Scenario(
        name=name,
        topology={"topology": "fat_tree", "k": BENCHMARKS[name], "host_rate_bps": Gbps(100), "host_delay_ps": us(1)},
        workload={"kind": "permutation", "size_bytes": MB(2)},
        cc="dcqcn", cc_impl=cc_impl, mtu_payload=4096, seed=seed,
        sample_interval_ps=0, monitor_ports="none")


def timed_run(sc):
    """Build and run a scenario to completion, timed: (network, result, build_s, run_s); run_s is
    the wall time of ``net.run`` (the simulation), build_s the fabric, routes and QPs."""
    t0 = time.perf_counter()
    net = sc.build()
    t1 = time.perf_counter()
    result = net.run(progress=False)
    return net, result, t1 - t0, time.perf_counter() - t1


def run(name: str, cc_impl: str = "c", seed: int = 1) -> dict:
    net, result, build_s, run_s = timed_run(scenario(name, cc_impl, seed))
    c = result.counters
    return {
        "benchmark": name, "cc_impl": cc_impl,
        "build_s": build_s, "run_s": run_s, "wall_s": build_s + run_s,
        "sim_time_us": float(result.flows["finish_ps"].max()) / 1e6,    # the last completion
        "events": c["events"], "events_per_s": c["events"] / run_s,
        "data_packets": c["data_sent"], "data_packets_per_s": c["data_sent"] / run_s,
        "packet_hops": c["packet_hops"], "packet_hops_per_s": c["packet_hops"] / run_s,
        "cc_events": c["cc_events"],
        "flows_done": f"{c['msgs_completed']}/{c['msgs_total']}",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "sim_memory_mib": net.sim.memory_bytes() / 2**20,
        "bytes_per_qp": SIZEOF_QP, "bytes_per_packet": SIZEOF_PACKET,
        "peak_packets_in_use": c["pkts_peak"], "peak_events_pending": c["heap_peak"],
        "drops": c["dropped"], "timeouts": c["timeouts"], "cnps": c["cnp_sent"],
    }


class _NoopBatched(_NoopEveryEvent):
    """The same, with ACK events delivered in batches of 16 ACKs."""
    name = "bench-noop-python-batched"
    ack_batch = 16


def run_cc_callback(name: str = "permutation-128", seed: int = 1) -> dict:
    """Cost of the Python plug-in path: the same scenario with `none` (no CC events) and with a
    plug-in that gets every ACK and does nothing, one call per ACK and in batches of 16."""
    registry.register(_NoopEveryEvent)
    registry.register(_NoopBatched)
    times = {}
    for cc in ("none", _NoopEveryEvent.name, _NoopBatched.name):
        sc = scenario(name, seed=seed)
        sc.cc, sc.cc_params = cc, {}
        net = sc.build()
        t0 = time.perf_counter()
        res = net.run(progress=False)
        times[cc] = (time.perf_counter() - t0, res.counters["cc_events"], res.counters["data_sent"])
    (t_base, _, _), (t_py, n, acks), (t_b, nb, _) = (times["none"], times[_NoopEveryEvent.name],
                                                     times[_NoopBatched.name])
    per_event = (t_py - t_base) / n
    return {"benchmark": f"cc-callback ({name})", "cc_events": n, "run_s_none": t_base, "run_s_python_noop": t_py,
            "us_per_cc_event": per_event * 1e6, "cc_events_per_s": 1 / per_event,
            "batched_cc_events": nb, "run_s_python_noop_batch16": t_b,
            "batched_us_per_ack": (t_b - t_base) / acks * 1e6,
            "batched_acks_per_s": acks / max(t_b - t_base, 1e-9)}


def run_cc_cost(name: str = "permutation-128", seed: int = 1, repeats: int = 3) -> dict:
    """What the Python path costs per CC event for each built-in algorithm: the C twin and the
    Python reference give the same trajectory (the differential tests require it), so the
    difference of their run times over the number of CC events is the cost of delivering an
    event to Python and running the reference there. Medians of `repeats` interleaved runs."""
    import statistics
    runs: dict[tuple[str, str], list[float]] = {}
    events: dict[str, int] = {}
    algos = ("dcqcn", "dctcp", "timely", "hpcc", "swift", "nscc")
    for _ in range(repeats):
        for cc in algos:
            for impl in ("c", "python"):
                sc = scenario(name, impl, seed)
                sc.cc = cc
                net = sc.build()
                t0 = time.perf_counter()
                res = net.run(progress=False)
                runs.setdefault((cc, impl), []).append(time.perf_counter() - t0)
                events[cc] = res.counters["cc_events"]
    out = {"benchmark": f"Python vs C per CC event ({name}, medians of {repeats})"}
    probe = scenario(name, "c", seed)
    for a in algos:
        probe.cc = a
        net = probe.build()
        cc = net.cc
        block = net.sim.add_cc_params(cc.c_kind, cc.c_params())
        out[f"{a}_c_twin_ns_per_event"] = statistics.median(net.sim.bench_cc_twin(block, 2_000_000) for _ in range(3))
    for a in algos:
        tc, tp = statistics.median(runs[(a, "c")]), statistics.median(runs[(a, "python")])
        out[f"{a}_cc_events"] = events[a]
        out[f"{a}_run_s_c"] = tc
        out[f"{a}_run_s_python"] = tp
        out[f"{a}_python_extra_ns_per_event"] = (tp - tc) / max(events[a], 1) * 1e9
    return out


def run_capture(name: str = "permutation-128", snaplen: int = 128, seed: int = 1, out_dir: str | None = None) -> dict:
    """Cost of capturing every packet at every port it leaves (one pcap record per hop), with
    a given snaplen, written by the data plane: the run with and without the capture."""
    import tempfile
    from pathlib import Path

    from controlplane.results.capture import CaptureSpec
    tmp = Path(out_dir or tempfile.mkdtemp(prefix="softdpu-bench-"))
    times = {}
    for capture in (False, True):
        net = scenario(name, seed=seed).build()
        spec = CaptureSpec(str(tmp / "all.pcap"), points=["all"], snaplen=snaplen) if capture else None
        if spec:
            spec.attach(net)
        t0 = time.perf_counter()
        net.run(progress=False)
        stats = spec.close(net) if spec else {}
        times[capture] = (time.perf_counter() - t0, stats)
    (t_off, _), (t_on, stats) = times[False], times[True]
    packets, nbytes = next(iter(stats.values()))
    (tmp / "all.pcap").unlink()
    return {"benchmark": f"capture ({name}, every port, snaplen {snaplen})", "packets_captured": packets,
            "pcap_mib": nbytes / 2**20, "run_s_without": t_off, "run_s_with": t_on,
            "captured_per_s_of_capture_cost": packets / max(t_on - t_off, 1e-9),
            "captured_per_s_of_run": packets / t_on}


def run_multipath(name: str = "permutation-1024", seed: int = 1, repeats: int = 3) -> dict:
    """The foundation's benchmark as is (ECMP + go-back-N) and with every QP spraying over 8
    entropies (spray_rr) with out-of-order placement: medians of `repeats` interleaved runs, the
    ratio in the same process, and what the reorder state costs per QP."""
    import statistics

    from dataplane.sim import SIZEOF_PATH_STATE
    runs: dict[str, list[tuple[float, int, int]]] = {"ecmp-gbn": [], "spray_rr-ooo": []}
    window = 2048
    for _ in range(repeats):
        for variant in runs:
            sc = scenario(name, seed=seed)
            if variant == "spray_rr-ooo":
                sc.paths, sc.transport, sc.num_paths = "spray_rr", "ooo", 8
                sc.transport_params = {"reorder_window": window}
            net = sc.build()
            t0 = time.perf_counter()
            res = net.run(progress=False)
            dt = time.perf_counter() - t0
            runs[variant].append((dt, res.counters["events"], int(res.flows["finish_ps"].max())))
    out = {"benchmark": f"multipath ({name}, medians of {repeats} interleaved runs)"}
    for v, rs in runs.items():
        t = statistics.median(r[0] for r in rs)
        out[f"{v}_run_s"] = t
        out[f"{v}_events"] = rs[0][1]
        out[f"{v}_events_per_s"] = statistics.median(r[1] / r[0] for r in rs)
        out[f"{v}_sim_time_us"] = rs[0][2] / 1e6
    out["spray_over_ecmp_run_time"] = out["spray_rr-ooo_run_s"] / out["ecmp-gbn_run_s"]
    out["reorder_bitmaps_bytes_per_qp"] = 4 * window // 8     # native/reorder.c: 4 bitmaps
    out["reorder_stamps_bytes_per_qp"] = window               # ... and a transmit-epoch byte per packet
    out["path_state_bytes_per_qp"] = SIZEOF_PATH_STATE
    out["bytes_per_qp"] = SIZEOF_QP
    return out


def format_row(r: dict) -> str:
    return "\n".join(f"  {k:22s} {v:,.3f}" if isinstance(v, float) else f"  {k:22s} {v:,}" if isinstance(v, int)
                     else f"  {k:22s} {v}" for k, v in r.items())


def run_vswitch(seed: int = 1, n_keys: int = 4096, reps: int = 200, repeats: int = 5) -> dict:
    """The vSwitch fast path in C, lookups per second: exact-match-cache hits, and classifier hits
    with the EMC off and the flows spread over 1, 8 and 32 subtables (distinct masks, equal
    priority, every key matching one flow; probes stop at the first hit, so a lookup probes about
    half the subtables on average once they are ranked by hits). Medians of ``repeats`` runs of
    ``n_keys`` x ``reps`` lookups each. Then the Python slow path's rate: wall time spent in
    SlowPath.handle (drain, translate through the policy, execute, install) during an upcall
    storm of 4096 new connections with per-connection megaflows."""
    import statistics

    import numpy as np

    from dataplane.sim import VS_FIELDS, VS_KEY_WORDS, VS_UPLINK, Simulator
    rng = np.random.default_rng(seed)
    out: dict = {"benchmark": f"vswitch ({n_keys} keys x {reps} reps, medians of {repeats})"}

    def keys_and_sim(subtables: int, emc: int):
        sim = Simulator(num_hosts=2, num_switches=0, max_links=1, seed=seed)
        sim.add_links([0], [1], [Gbps(100)], [us(1)])
        sim.vs_enable(0, emc_entries=emc, emc_insert_inv_prob=1)
        sim.vs_add_vf(0, 1, 0x0A000001)
        keys = rng.integers(0, 2**32, size=(n_keys, VS_KEY_WORDS), dtype=np.uint64).astype(np.uint32)
        keys[:, VS_FIELDS["in_port"]] = VS_UPLINK
        keys[:, VS_FIELDS["vni"]] &= 0xFFFFFF
        keys[:, 7] = 0
        # subtable s: in_port, vni exact + dst_ip under a prefix of 32 - s bits (distinct masks)
        for i, k in enumerate(keys):
            s = i % subtables
            mask = np.zeros(VS_KEY_WORDS, np.uint32)
            mask[VS_FIELDS["in_port"]] = mask[VS_FIELDS["vni"]] = 0xFFFFFFFF
            mask[VS_FIELDS["dst_ip"]] = (0xFFFFFFFF << s) & 0xFFFFFFFF
            mask[VS_FIELDS["l4"]] = 0xFFFF0000
            if sim.vs_lookup(0, k)[0] < 0:   # two random keys under one wide mask: one flow covers both
                sim.vs_install(0, k & mask, mask, 0, {"output": VS_UPLINK})
        return sim, keys

    cases = [("exact_hit", 1, 8192)] + [(f"masked_hit_{s}_subtables", s, 0) for s in (1, 8, 32)]
    for name, subtables, emc in cases:
        sim, keys = keys_and_sim(subtables, emc)
        if emc:
            sim.vs_bench_lookup(0, keys, 2)                  # warm: every key into the EMC
        ns = statistics.median(sim.vs_bench_lookup(0, keys, reps) for _ in range(repeats))
        probes = np.mean([sim.vs_lookup(0, k)[1] for k in keys[:512]])
        out[f"{name}_ns"] = ns
        out[f"{name}_Mlookups_per_s"] = 1e3 / ns
        if not emc:
            out[f"{name}_mean_probes"] = float(probes)
    out.update(run_slow_path(seed))
    return out


def run_slow_path(seed: int = 1, connections: int = 4096) -> dict:
    """Upcalls and installs per second of the Python slow path (wall time inside SlowPath.handle)."""
    flows = [{"src": 1 + i % 16, "dst": 0, "size_bytes": 4096, "start_ps": i * 1_000_000} for i in range(connections)]
    sc = Scenario(topology={"topology": "single_switch", "num_hosts": 17, "rate_bps": Gbps(100), "delay_ps": us(1)},
                  workload={"kind": "flows", "flows": flows}, seed=seed, sample_interval_ps=0, monitor_ports="none",
                  dpu={"tenants": 1, "policy": {"per_connection": True}})
    net = sc.build()
    slow = net.vswitch.slow
    spent = [0.0]
    handle = slow.handle

    def timed():
        t0 = time.perf_counter()
        n = handle()
        spent[0] += time.perf_counter() - t0
        return n
    slow.handle = timed
    c = net.run(progress=False).counters
    return {"slow_path_upcalls": c["sp_upcalls"], "slow_path_installs": c["sp_installs"],
            "slow_path_wall_s": spent[0], "slow_path_upcalls_per_s": c["sp_upcalls"] / spent[0],
            "slow_path_installs_per_s": c["sp_installs"] / spent[0]}


def _noop(x):
    return x


def run_sweep_overhead(seed: int = 1, points: int = 100) -> dict:
    """What a sweep point costs on Dask beyond its run: a local Dask cluster (a scheduler and one
    worker process with one thread, dask.distributed's LocalCluster) runs a trivial point (a 2:1
    incast of 4 KB messages, no time series: its results folder and point.json are still made and
    sent back) through controlplane/run/executor.py's DaskExecutor. Per-point overhead, one point at a
    time: median round trip through Dask minus the median of the same point called directly in this
    process (``points`` of each, interleaved); pipelined: ``points`` submitted at once, wall time
    per point minus the direct median. Also the round trip of a no-op task."""
    import statistics
    import time

    from distributed import Client, LocalCluster

    from controlplane.run import executor, sweep
    p = sweep.plan("incast", [], [seed], ["senders=2", "size_bytes=4KB", "sample_interval_ps=0", 'ccs=["dcqcn"]'])
    task = p.points[0].task
    out: dict = {"benchmark": f"sweep-overhead (trivial incast point, {points} points, local Dask: 1 worker x 1 thread)"}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            executor.DaskExecutor(Client(cluster, set_as_default=False)) as ex:
        list(ex.run(sweep.run_point, [task] * 5))           # warm the worker (imports)
        direct, through, noop = [], [], []
        for _ in range(points):
            t0 = time.perf_counter()
            sweep.run_point(task)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(ex.run(sweep.run_point, [task]))
            through.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(ex.run(_noop, [0]))
            noop.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        outs = list(ex.run(sweep.run_point, [task] * points))
        piped = (time.perf_counter() - t0) / points
    d = statistics.median(direct)
    out.update({"point_direct_ms": d * 1e3, "point_via_dask_ms": statistics.median(through) * 1e3,
                "overhead_serial_ms": (statistics.median(through) - d) * 1e3,
                "pipelined_per_point_ms": piped * 1e3, "overhead_pipelined_ms": (piped - d) * 1e3,
                "noop_round_trip_ms": statistics.median(noop) * 1e3,
                "worker_side_point_ms": statistics.median(o.wall_s for o in outs) * 1e3})
    return out


def _pcap_packets(n: int, seed: int):
    """n packets of a RoCEv2 trace for the pcap benchmark: WRITE First/Middle/Last/Only with
    1..1024 payload bytes, ACKs and CNPs, between 16 hosts on 256 QPs (PACKET_DTYPE)."""
    import numpy as np

    from dataplane.sim import NONE, PACKET_DTYPE
    rng = np.random.default_rng(seed)
    p = np.zeros(n, dtype=PACKET_DTYPE)
    ops = np.array([6, 7, 7, 8, 10, 17, 17, 0x81])
    p["opcode"] = ops[rng.integers(len(ops), size=n)]
    p["src"] = rng.integers(0, 16, size=n)
    p["dst"] = (p["src"] + 1 + rng.integers(0, 15, size=n)) % 16
    p["dqp"] = rng.integers(0, 256, size=n)
    p["psn"] = np.arange(n) & 0xFFFFFF
    p["sport"] = rng.integers(49152, 65536, size=n)
    data = np.isin(p["opcode"], [6, 7, 8, 10])
    p["payload"] = np.where(data, rng.integers(1, 1025, size=n), 0)
    p["ecn"] = np.where(data, 2, 0)
    p["syndrome"] = np.where(p["opcode"] == 17, 0x1F, 0)
    p["ttl"] = 64
    p["msg"] = NONE
    return p


def run_pcap(seed: int = 1, records: int = 1_000_000, repeats: int = 5, reference_records: int = 100_000) -> dict:
    """Reading captures (dataplane/pcap.py read_pcap): records per second of the C scanner on a
    ``records``-record pcap written by the data plane (sd_write_pcap) with a 128-byte snaplen
    (headers only, no ICRC to check) and on ``records // 5`` full-length records (every ICRC
    checked), medians of ``repeats`` reads of the file from the page cache; the Python reference
    reader (_read_pcap_python) on the first ``reference_records`` records, and the pcapng path
    (scapy's block reader, then the C scanner) on as many, medians of 3."""
    import statistics
    import struct
    import tempfile
    from pathlib import Path

    import numpy as np

    from dataplane.pcap import _read_pcap_python, read_pcap
    from dataplane.sim import Simulator

    def rate(fn, path, n, times):
        dts = []
        for _ in range(times):
            t0 = time.perf_counter()
            got = len(fn(path).records)
            dts.append(time.perf_counter() - t0)
            if got != n:
                raise RuntimeError(f"{path}: {got} records read, {n} written")
        return n / statistics.median(dts)

    tmp = Path(tempfile.mkdtemp(prefix="softdpu-bench-pcap-"))
    sim = Simulator(num_hosts=16, num_switches=0, max_links=8)
    out = {"benchmark": f"pcap reading ({records:,} records, medians of {repeats})"}
    try:
        heads, full, prefix, ng = (tmp / "headers.pcap", tmp / "full.pcap", tmp / "prefix.pcap",
                                   tmp / "prefix.pcapng")
        pk = _pcap_packets(records, seed)
        t_ps = np.arange(records, dtype=np.int64) * 100_000                  # 100 ns apart
        sim.write_pcap(heads, pk, t_ps, snaplen=128)
        sim.write_pcap(full, pk[:records // 5], t_ps[:records // 5], snaplen=65535)
        m = min(reference_records, records)
        sim.write_pcap(prefix, pk[:m], t_ps[:m], snaplen=128)
        # the same records as pcapng: one Ethernet interface at ns resolution, Enhanced Packet Blocks
        data = prefix.read_bytes()
        blocks = [struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28),
                  struct.pack("<IIHHIHHBBBBHH", 1, 32, 1, 0, 0, 9, 1, 9, 0, 0, 0, 0, 0) + struct.pack("<I", 32)]
        off = 24
        while off < len(data):
            sec, ns, incl, orig = struct.unpack_from("<IIII", data, off)
            frame = data[off + 16:off + 16 + incl] + b"\0" * (-incl % 4)
            t = sec * 10**9 + ns
            size = 32 + len(frame)
            blocks.append(struct.pack("<IIIIIII", 6, size, 0, t >> 32, t & 0xFFFFFFFF, incl, orig) + frame
                          + struct.pack("<I", size))
            off += 16 + incl
        ng.write_bytes(b"".join(blocks))
        out["pcap_mib_headers"] = heads.stat().st_size / 2**20
        out["pcap_mib_full"] = full.stat().st_size / 2**20
        out["records_per_s_c_snaplen128"] = rate(read_pcap, heads, records, repeats)
        out["records_per_s_c_full"] = rate(read_pcap, full, records // 5, repeats)
        out["records_per_s_python_reference"] = rate(_read_pcap_python, prefix, m, 3)
        out["records_per_s_pcapng"] = rate(read_pcap, ng, m, 3)
        out["c_over_python"] = out["records_per_s_c_snaplen128"] / out["records_per_s_python_reference"]
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return out
