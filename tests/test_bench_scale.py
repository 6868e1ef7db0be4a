"""`softdpu bench scale`, the benchmark history (`make bench-record`, `softdpu bench history`) and
the partition profile of docs/scaling.md: the figures' relations, the memory refusal, the history
file's lines and the table's ratios. Nothing here is timed (speed is a benchmark, never a test): the
runs are k = 4 fat-trees with small messages."""
from __future__ import annotations

import datetime
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from controlplane.run import bench_history, bench_scale
from controlplane.run.cli import main

REPO = Path(__file__).resolve().parents[1]


def _check_point(r: dict, k: int, fresh_process: bool) -> None:
    # hosts of a k-ary fat-tree: k^3 / 4 (Al-Fares et al.; controlplane/fabric/topology.py)
    assert r["k"] == k and r["hosts"] == k ** 3 // 4
    assert r["events"] > 0 and r["run_s"] > 0
    # us per event is defined as the run's time over its events
    assert r["us_per_event"] == pytest.approx(r["run_s"] / r["events"] * 1e6, rel=1e-12)
    assert r["wall_s"] == pytest.approx(r["build_s"] + r["run_s"], rel=1e-9)
    # every host sends one message (a permutation) and every message completes
    assert r["flows_done"] == f"{r['hosts']}/{r['hosts']}"
    # the peak RSS includes the interpreter's base; in a fresh process the simulation adds something
    # per host (in this test process the peak may already be higher from earlier tests: then 0)
    assert r["peak_rss_mib"] >= r["base_rss_mib"] > 0 and r["bytes_per_host"] >= 0
    if fresh_process:
        assert r["bytes_per_host"] > 0
    assert r["bytes_per_host"] == pytest.approx((r["peak_rss_mib"] - r["base_rss_mib"]) * 2**20 / r["hosts"])
    assert r["sim_bytes_per_host"] == pytest.approx(r["sim_memory_mib"] * 2**20 / r["hosts"]) and r["sim_memory_mib"] > 0
    # the data plane's arrays are part of the process's memory
    assert r["sim_memory_mib"] < r["peak_rss_mib"]


def test_scale_point_at_k4_returns_every_field_with_sane_relations():
    _check_point(bench_scale.run_point(4, size_bytes=100_000), 4, fresh_process=False)


def test_run_scale_runs_each_size_in_its_own_process():
    rows = bench_scale.run_scale(max_k=4, min_k=4, size_bytes=100_000)
    assert len(rows) == 1 and "refused" not in rows[0]
    _check_point(rows[0], 4, fresh_process=True)
    # the child's whole life (interpreter start, imports, build, run) is longer than its build + run
    assert rows[0]["process_wall_s"] > rows[0]["wall_s"]


def test_peak_rss_never_reads_lower_than_before(monkeypatch):
    """A process's peak cannot fall, but VmHWM as the kernel reports it can read a page lower later
    (approximate per-CPU RSS counters, Linux 6.2 on: 96.492 MiB after 96.496 MiB, which failed the
    relation checked above): peak_rss_bytes keeps the highest reading. (The module's highest
    reading is restored afterwards, so the made-up one does not reach later tests.)"""
    monkeypatch.setattr(bench_scale, "_peak_seen", 0)
    first = bench_scale.peak_rss_bytes()
    assert bench_scale.peak_rss_bytes(read=first - 4096) == first
    assert bench_scale.peak_rss_bytes(read=first + 8192) == first + 8192
    assert bench_scale.peak_rss_bytes() >= first + 8192


def test_scale_sizes():
    assert bench_scale.scale_ks() == [8, 16, 32]                       # the default: up to k = 32
    assert bench_scale.scale_ks(64) == [8, 16, 32, 64]                 # --set max_k=64
    assert bench_scale.scale_ks(16) == [8, 16]                         # a quick run
    assert bench_scale.scale_ks(8, 4) == [4, 8]
    for bad in ((128, 8), (7, 4), (8, 16), (8, 3)):
        with pytest.raises(ValueError, match="max_k|min_k"):
            bench_scale.scale_ks(*bad)


def _row(k, bph, upe, base_mib=60.0):
    hosts = k ** 3 // 4
    return {"k": k, "hosts": hosts, "bytes_per_host": bph, "us_per_event": upe, "events": 1000 * hosts,
            "base_rss_mib": base_mib}


def test_estimate_extrapolates_the_growth_per_doubling():
    # bytes per host 1000 -> 2000 from k = 8 to 16 (x2 per doubling): 4000 at k = 32, 8000 at 64;
    # us per event 0.1 -> 0.2 (x2): 0.8 at k = 64; events scale with the hosts (1000 per host here)
    rows = [_row(8, 1000.0, 0.1), _row(16, 2000.0, 0.2)]
    e = bench_scale.estimate(64, rows)
    assert e["from_k"] == 16 and e["hosts"] == 65536
    assert e["bytes_per_host"] == pytest.approx(8000.0)
    # memory: the larger of the base + bytes per host x hosts and the base + the fabric's structural
    # estimate (controlplane/fabric/topology.py estimate_bytes: 5 k^2 / 4 switches, 3 links per host,
    # one message per host); at k = 64 the structural one (its k^5 FIB term) is the larger
    from controlplane.fabric.topology import estimate_bytes
    structural = 60 * 2**20 + estimate_bytes(65536, 5120, 3 * 65536, num_flows=65536)
    assert e["structural_bytes"] == structural
    assert e["memory_bytes"] == max(60 * 2**20 + 8000.0 * 65536, structural) == structural
    big = bench_scale.estimate(16, [_row(8, 1e6, 0.1)])                  # 1 MB per host: the measured one
    assert big["memory_bytes"] == pytest.approx(60 * 2**20 + 1e6 * 1024)
    assert e["us_per_event"] == pytest.approx(0.8)
    assert e["run_s"] == pytest.approx(1000 * 65536 * 0.8e-6)
    # one measured size: no growth assumed
    assert bench_scale.estimate(16, rows[:1])["bytes_per_host"] == pytest.approx(1000.0)


def test_memory_estimate_refuses_an_impossible_k_naming_the_estimate():
    rows = [_row(8, 100_000.0, 0.1), _row(16, 200_000.0, 0.2)]
    est = bench_scale.estimate(64, rows)              # 60 MiB + 800 kB x 65,536 hosts = ~48.9 GiB
    with pytest.raises(ValueError) as exc:
        bench_scale.check_fits(est, available=8 * 2**30)
    msg = str(exc.value)
    assert "k = 64" in msg and "65,536 hosts" in msg and "not run" in msg
    assert f"{est['memory_bytes'] / 2**30:.1f} GiB" in msg and "8.0 GiB available" in msg
    assert "MemAvailable" in msg and f"{est['run_s']:,.0f} s" in msg
    # the margin: an estimate that fits with MEMORY_MARGIN to spare is accepted; unknown memory is not checked
    bench_scale.check_fits(est, available=int(est["memory_bytes"] * bench_scale.MEMORY_MARGIN) + 1)
    bench_scale.check_fits(est, available=None)


def test_run_scale_stops_at_the_first_size_that_would_not_fit():
    # 1 MiB available: the first size runs (nothing measured to estimate from), the next one is
    # refused with its estimate and nothing larger runs
    seen = []
    rows = bench_scale.run_scale(max_k=16, min_k=4, size_bytes=50_000, subprocesses=False,
                                 available=2**20, report=seen.append)
    assert [r["k"] for r in rows] == [4, 8] and seen == rows
    assert "refused" not in rows[0] and "k = 8 (128 hosts) not run" in rows[1]["refused"]
    assert rows[1]["estimate"]["memory_bytes"] > 2**20
    assert "not run" in bench_scale.format_scale_row(rows[1])


def test_mem_available_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       24684092 kB\nMemFree: 1 kB\nMemAvailable:   23017820 kB\n")
    assert bench_scale.mem_available_bytes(str(f)) == 23017820 * 1024
    assert bench_scale.mem_available_bytes(str(tmp_path / "missing")) is None


# ------------------------------------------------------------------------------------- history
def test_history_writer_appends_well_formed_lines(tmp_path):
    path = tmp_path / "sub" / "history.jsonl"
    env = bench_history.environment("shared machine, nice 19")
    figs = {"run_s": 1.25, "events": 1000, "us_per_event": 1.25e3}
    bench_history.append(path, [bench_history.entry("scale-k4", figs, env)])
    bench_history.append(path, [bench_history.entry("scale-k8", dict(figs, run_s=2.5), env)])
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    e = json.loads(lines[0])
    assert e["benchmark"] == "scale-k4" and e["figures"] == figs and e["note"] == "shared machine, nice 19"
    # the commit of this repository (the tests run in a git checkout) and whether it has changes
    assert re.fullmatch(r"[0-9a-f]{40}", e["commit"]) and isinstance(e["dirty"], bool)
    assert datetime.datetime.fromisoformat(e["date"]).utcoffset() == datetime.timedelta(0)
    m = e["machine"]
    assert m["cores"] >= 1 and m["cpu"] and m["kernel"] and m["mem_total_gib"] > 0
    from dataplane.build import cflags
    assert e["cflags"] == cflags() and e["python"].count(".") == 2
    assert [x["benchmark"] for x in bench_history.load(path)] == ["scale-k4", "scale-k8"]
    with pytest.raises(ValueError, match="figures"):
        bench_history.append(path, [{"benchmark": "x"}])
    (tmp_path / "bad.jsonl").write_text('{"benchmark": "a", "figures": {}}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        bench_history.load(tmp_path / "bad.jsonl")


def _e(name, run_s, commit="c" * 40, **figs):
    return {"benchmark": name, "commit": commit, "dirty": False, "date": "2026-11-30T04:00:00+00:00",
            "figures": {"run_s": run_s, **figs}, "note": ""}


def test_history_table_ratios_are_to_the_previous_entry_of_the_same_benchmark():
    entries = [_e("a", 1.0, peak_rss_mib=100.0), _e("b", 10.0), _e("a", 2.0, peak_rss_mib=150.0),
               _e("b", 5.0), _e("a", 1.0)]
    t = bench_history.table_rows(entries, last=5)
    assert list(t) == ["a", "b"]
    # a: 1.0 -> 2.0 (x2), 2.0 -> 1.0 (x0.5); its peak RSS 100 -> 150 (x1.5), then missing
    assert [r["ratios"]["run_s"] for r in t["a"]] == [None, 2.0, 0.5]
    assert [r["ratios"]["peak_rss_mib"] for r in t["a"]] == [None, 1.5, None]
    assert [r["ratios"]["run_s"] for r in t["b"]] == [None, 0.5]
    # the last N per benchmark, the ratio still to the entry before it in the file
    assert [r["ratios"]["run_s"] for r in bench_history.table_rows(entries, last=1)["a"]] == [0.5]
    text = bench_history.format_table(entries, last=2)
    assert "(x2.00)" in text and "(x0.50)" in text and "(x1.50)" in text and text.startswith("a:")


def test_bench_history_and_record_commands(tmp_path, capsys, monkeypatch):
    path = tmp_path / "h.jsonl"
    # record: the fixed set (permutation-1024, then scale up to --max-k), one line each; the runs
    # themselves are replaced here (a benchmark is timed, never a test), their lines are written as is
    from controlplane.run import bench
    monkeypatch.setattr(bench, "run", lambda name, impl: {"benchmark": name, "run_s": 2.0, "events": 4,
                                                          "peak_rss_mib": 70.0})
    asked = {}

    def fake_scale(max_k):
        asked["max_k"] = max_k
        return [{"benchmark": "scale-k8", "k": 8, "run_s": 1.0, "us_per_event": 0.5, "peak_rss_mib": 60.0},
                {"benchmark": "scale-k16", "k": 16, "hosts": 1024, "refused": "k = 16 not run"}]
    monkeypatch.setattr(bench_scale, "run_scale", fake_scale)
    assert main(["bench", "record", "--history", str(path), "--max-k", "8", "--note", "niced"]) == 0
    assert asked == {"max_k": 8}
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["benchmark"] for x in lines] == ["permutation-1024", "scale-k8"]          # the refused size: no line
    assert lines[0]["figures"]["us_per_event"] == pytest.approx(2.0 / 4 * 1e6) and lines[0]["note"] == "niced"
    capsys.readouterr()
    assert main(["bench", "history", "--history", str(path)]) == 0
    out = capsys.readouterr().out
    assert "permutation-1024:" in out and "scale-k8:" in out
    assert main(["bench", "history", "--history", str(tmp_path / "none.jsonl")]) == 2
    assert "no benchmark history" in capsys.readouterr().err
    assert main(["bench", "scale", "--set", "maxk=8"]) == 2
    assert "did you mean 'max_k'" in capsys.readouterr().err
    assert main(["bench", "permutation-128", "--max-k", "8"]) == 2


def test_repository_history_is_well_formed():
    # benchmarks/history.jsonl is committed with at least one real entry per benchmark of the set
    entries = bench_history.load(bench_history.HISTORY)
    names = {e["benchmark"] for e in entries}
    assert {"permutation-1024", "scale-k8", "scale-k16"} <= names
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{40}", e["commit"]) and e["figures"]["events"] > 0


def test_make_bench_record_runs_the_record_command():
    # a dry run (make -n): the target runs `softdpu bench record` with BENCH_MAX_K (default 16)
    out = subprocess.run(["make", "-n", "bench-record"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert re.search(r"softdpu bench record --max-k 16\b", out), out
    out = subprocess.run(["make", "-n", "bench-record", "BENCH_MAX_K=32"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert re.search(r"softdpu bench record --max-k 32\b", out), out
    out = subprocess.run(["make", "-n", "bench-compare"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "softdpu bench history" in out


# ----------------------------------------------------------------------------------- partitions
def test_pod_partition_follows_the_fat_tree_numbering():
    k = 4
    part = bench_scale.pod_partition(k)
    # 16 hosts (4 per pod), 8 edges and 8 aggs (2 per pod), 4 cores (one per partition: j % 4)
    assert part.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [0, 0, 1, 1, 2, 2, 3, 3] * 2 + [0, 1, 2, 3]
    assert bench_scale.pod_partition(k, 2).tolist()[:16] == [0] * 8 + [1] * 8
    with pytest.raises(ValueError, match="divide"):
        bench_scale.pod_partition(k, 3)


def test_partition_profile_counts_hops_that_cross_partitions():
    from controlplane.run.scenario import Scenario  # noqa: F401  (the scenario is bench_scale's)
    one = bench_scale.partition_profile(4, partitions=1, size_bytes=50_000)
    pods = bench_scale.partition_profile(4, size_bytes=50_000)
    for p in (one, pods):
        # the port counters add up to the data plane's hop counter; the windows' events to the run's
        assert p["port_tx_packets"] == p["packet_hops"]
        assert p["events_windows_sum"] <= p["events"]
        assert len(p["per_window"]["events"]) == p["windows"]
        assert 0 < p["balance"] <= 1
    assert one["cross_hops"] == 0 and one["partitions"] == 1 and one["balance"] == pytest.approx(1.0)
    # by pod: only agg <-> core hops can cross (hosts, edges and aggs live with their pod), and a
    # permutation of 16 hosts over 4 pods sends most messages between pods
    net = bench_scale.scale_scenario(4, 50_000).build()
    net.run(progress=False)
    ports = net.sim.ports
    tiers = np.array(net.fabric.node_tier)
    core_links = (tiers[ports["node"]] >= 2) & (tiers[ports["node"][ports["peer"]]] >= 2)
    assert 0 < pods["cross_hops"] <= int(ports["tx_packets"][core_links].sum())
    assert pods["packet_hops"] == one["packet_hops"] == int(ports["tx_packets"].sum())


def test_speedup_model_on_a_hand_made_profile():
    # two busy windows: 100 and 50 events, busiest partition 60 and 30, 10 and 0 cross hops, 2 partitions.
    # sequential: 150 x 1 us; parallel: (60 + 30) x 1 us + 2 barriers x 5 us + (10 / 2) x 2 us = 110 us
    prof = {"partitions": 2, "per_window": {"events": [100, 50, 0], "max_part_events": [60, 30, 0],
                                            "cross": [10, 0, 0]}}
    m = bench_scale.speedup_model(prof, us_per_event=1.0, barrier_us=5.0, cross_us=2.0)
    assert m["sequential_s"] == pytest.approx(150e-6) and m["parallel_s"] == pytest.approx(110e-6)
    assert m["speedup"] == pytest.approx(150 / 110)
    assert m["compute_s"] + m["barrier_s"] + m["messages_s"] == pytest.approx(m["parallel_s"])


def test_partition_profile_changes_no_result():
    # docs/scaling.md: "Stopping changes no result": the profile's run (stopped every 1 us by a
    # reading controller) and the plain run give the same finish times and packet hops
    from controlplane.run.control_loop import Periodic
    plain = bench_scale.scale_scenario(4, 50_000).build()
    r1 = plain.run(progress=False)
    stepped = bench_scale.scale_scenario(4, 50_000).build()
    stepped.loop.register(Periodic(10**6, lambda net: net.sim.ports["tx_packets"].sum()))
    r2 = stepped.run(progress=False)
    assert (r1.flows["finish_ps"] == r2.flows["finish_ps"]).all()
    assert r1.counters["packet_hops"] == r2.counters["packet_hops"]
    assert bench_scale.partition_profile(4, size_bytes=50_000)["packet_hops"] == r1.counters["packet_hops"]


def test_bench_scale_command_prints_one_row_per_size(capsys):
    assert main(["bench", "scale", "--set", "min_k=4", "--max-k", "4", "--set", "size_bytes=50KB"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "50,000 B per host" in out[0] and "us/event" in out[1] and "peak RSS MiB" in out[1]
    row = out[2].split()
    assert row[:2] == ["4", "16"] and len(out) == 3          # k, hosts; one size


def test_ack_coalescing_counts_the_acks_it_saves_and_compares_the_same_flows():
    rows = bench_scale.ack_coalescing(4, 200_000, intervals=(1, 4))
    ref, coal = rows
    # the first run is the reference: ratios 1, no change
    assert ref["events_ratio"] == 1 and ref["run_ratio"] == 1
    assert ref["flow_change_median"] == ref["flow_change_max"] == 0
    assert ref["flows_done"] == coal["flows_done"] == "16/16"
    # 200,000 B at 4,096 B per packet: 49 data packets per flow (k = 4: 16 hosts, one flow each, no
    # loss here). ACK every packet: 49 per flow. Every 4th and at the AckReq on the last: packets
    # 4, 8, ..., 48 and 49, 13 per flow.
    assert ref["ctrl_sent"] - ref["cnp_sent"] == 16 * 49
    assert coal["ctrl_sent"] - coal["cnp_sent"] == 16 * 13
    # the ACKs not sent are events not run: each ACK is an event per hop (serializer and wire)
    assert coal["events"] < ref["events"] and coal["events_ratio"] == pytest.approx(coal["events"] / ref["events"])
    assert 0 <= coal["flow_change_median"] <= coal["flow_change_max"]
    assert coal["fct_mean_us"] > 0 and coal["fct_p99_us"] <= coal["fct_max_us"]


def test_bench_ack_coalescing_command_prints_one_row_per_interval(capsys):
    assert main(["bench", "ack-coalescing", "--set", "k=4", "--set", "size_bytes=50KB"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "k = 4 fat-tree" in out[0] and "50,000 B per host" in out[0] and "|dFCT| max" in out[1]
    assert [line.split()[0] for line in out[2:]] == [str(n) for n in bench_scale.ACK_INTERVALS]
    # a key of another benchmark is refused, naming the ones it takes
    assert main(["bench", "ack-coalescing", "--set", "max_k=8"]) != 0
    assert "known: k, size_bytes" in capsys.readouterr().err
