"""Sweeps (controlplane/run/sweep.py, controlplane/run/executor.py, ``softdpu sweep``; ``softdpu run -j N``).

The expectations come from the stated contract of a sweep: a point is one scenario run whose folder
is the same results folder ``Scenario.run`` writes (plus point.json); where a point runs (this
process, local worker processes, a Dask cluster, a worker that died and was replaced) does not
change one byte of it nor of sweep.csv; points already done are not run again; a point that fails
is recorded and the exit status counts the points that did not end ok.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlplane.run import executor, sweep
from controlplane.run.cli import main
from controlplane.config.values import UsageError
from experiments import incast

BIN = Path(sys.executable).parent
# a tiny incast (2 or 3 senders x 64 KB, 1 us samples): tens of ms per point
TINY = ["--set", "size_bytes=64KB", "--set", "sample_interval_ps=1us"]
GRID = ["--grid", "senders=2,3", "--seeds", "1-2"]


def files_of(root: Path, skip=("wall.csv",)) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), but the non-deterministic ``skip``."""
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
            if f.is_file() and f.name not in skip}


def sweep_cli(out: Path, *extra: str) -> int:
    return main(["sweep", "incast", *GRID, *TINY, "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny sweep with -j 1 (in this process): the reference every other way must equal."""
    out = tmp_path_factory.mktemp("ref") / "sweep"
    assert sweep_cli(out, "-j", "1") == 0
    return out


# 8 points of ~0.3 s (4 or 5 senders x 1 MB): slow enough to interrupt a sweep or kill a worker mid-way
SLOW = ["sweep", "incast", "--grid", "senders=4,5", "--seeds", "1-2", "--set", "size_bytes=1MB",
        "--set", "sample_interval_ps=2us", "--no-progress"]


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slow") / "sweep"
    assert main([*SLOW, "-j", "1", "--out", str(out)]) == 0
    return out


def wait_for_a_point(proc: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    """Until a first point of the sweep run by ``proc`` is written (or the process ends)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if (out / "points").exists() and list((out / "points").glob("*/point.json")):
            return
        time.sleep(0.02)


# --------------------------------------------------------------------------------- parsing
def test_grid_values_are_typed_with_units_like_set():
    # values parse as --set would (controlplane/config/values.py): sizes with units to integer bytes,
    # counts as integers, dotted scenario fields, CC parameters by name
    g = sweep.parse_grid(["size_bytes=64KB,1MiB", "senders=2,1e1", "ecn.kmin_bytes=100KB",
                          "dcqcn.flavour=paper,nvidia", "pfc=yes,off"], incast)
    assert [v for _, v in g["size_bytes"]] == [64_000, 1_048_576]
    assert [v for _, v in g["senders"]] == [2, 10]
    assert [v for _, v in g["ecn.kmin_bytes"]] == [100_000]
    assert [v for _, v in g["dcqcn.flavour"]] == ["paper", "nvidia"]
    assert [v for _, v in g["pfc"]] == [True, False]
    # a list parameter: the commas inside brackets belong to a value
    g = sweep.parse_grid(['ccs=["dcqcn","none"],["dctcp"]'], incast)
    assert [v for _, v in g["ccs"]] == [["dcqcn", "none"], ["dctcp"]]


@pytest.mark.parametrize("item, words", [
    ("senders=2,8.5", ["senders", "8.5"]),                  # a count is an integer
    ("size_bytes=64KB,1.5B", ["size_bytes"]),               # bytes are whole
    ("sendres=2,3", ["sendres", "senders"]),                # unknown: names it and the closest
    ("senders=2,,3", ["senders", "empty"]),
    ("senders=2,2", ["senders", "twice"]),
    ("senders", ["--grid", "KEY=V1,V2"]),
    ("ecn.kmin=1KB", ["ecn", "kmin"]),
])
def test_grid_errors_name_the_key(item, words):
    with pytest.raises(UsageError) as e:
        sweep.parse_grid([item], incast)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_grid_key_given_twice_or_also_set_is_refused():
    with pytest.raises(UsageError, match="senders: given twice"):
        sweep.parse_grid(["senders=2", "senders=3"], incast)
    with pytest.raises(UsageError, match="senders: also given with --set"):
        sweep.parse_grid(["senders=2,3"], incast, ["senders=4"])


def test_seeds():
    assert sweep.parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert sweep.parse_seeds("5") == [5]
    for bad, word in (("3-1", "backwards"), ("1,x", "x"), ("1,1", "twice"), ("-1", "--seeds"), ("1,", "empty")):
        with pytest.raises(UsageError, match=word):
            sweep.parse_seeds(bad)


def test_split_values_keeps_brackets_and_quotes():
    assert sweep.split_values('[0.3],[0.5, 0.7],"a,b",c') == ["[0.3]", "[0.5, 0.7]", '"a,b"', "c"]


def test_plan_points_and_ids():
    p = sweep.plan("incast", ["senders=2,3"], [1, 2], ["size_bytes=64KB"])
    # 2 grid values x 2 seeds x incast's 2 variants (dcqcn, none), sorted by grid value, variant, seed
    assert [(pt.params["senders"], pt.variant, pt.seed) for pt in p.points] == [
        (s, v, seed) for s in (2, 3) for v in ("dcqcn", "none") for seed in (1, 2)]
    assert len({pt.id for pt in p.points}) == 8 and all(len(pt.id) == 16 for pt in p.points)
    # the id is the hash of the resolved config: the same run typed differently is the same point
    q = sweep.plan("incast", ["senders=2,3"], [1, 2], ["size_bytes=0.064MB"])
    assert [pt.id for pt in q.points] == [pt.id for pt in p.points]
    assert sweep.point_id(p.points[0].resolved) == p.points[0].id


# --------------------------------------------------------------------------------- running
def test_sweep_folder_layout_and_index(reference):
    doc = json.loads((reference / "sweep.json").read_text())
    assert doc["experiment"] == "incast" and doc["grid"] == {"senders": [2, 3]} and doc["seeds"] == [1, 2]
    assert len(doc["points"]) == 8
    rows = list(csv.DictReader(open(reference / "sweep.csv")))
    assert list(rows[0])[:7] == ["point", "experiment", "variant", "seed", "senders", "status", "error"]
    assert set(sweep.METRICS) <= set(rows[0])
    assert [r["point"] for r in rows] == [p["id"] for p in doc["points"]]
    assert all(r["status"] == "ok" for r in rows)
    walls = list(csv.DictReader(open(reference / "wall.csv")))
    assert sorted(w["point"] for w in walls) == sorted(r["point"] for r in rows)
    # a point's folder is exactly what Scenario.run writes for that variant (and point.json)
    r = next(r for r in rows if (r["senders"], r["variant"], r["seed"]) == ("3", "dcqcn", "2"))
    sc = incast.scenarios({**incast.PARAMS, "senders": 3, "size_bytes": 64_000}, 2)["dcqcn"]
    direct = reference.parent / "direct"
    sc.with_overrides({"sample_interval_ps": 1_000_000}).run(direct)
    assert files_of(direct) == files_of(reference / "points" / r["point"], skip=("point.json",))
    pj = json.loads((reference / "points" / r["point"] / "point.json").read_text())
    assert (pj["status"], pj["seed"], pj["variant"], pj["params"]) == ("ok", 2, "dcqcn", {"senders": 3})
    # the index's metrics are the run's summary (controlplane/results/folder.py), in the columns' units
    from controlplane.results.folder import load_run, summary
    s = summary(load_run(direct))
    assert float(r["fct_p99_us"]) == s["fct_p99_ps"] / 1e6 and int(r["events"]) == s["events"]


def test_parquet_index_is_the_csv_when_pyarrow_is_installed(reference):
    # sweep.parquet is written exactly when pyarrow can be imported (an optional dependency); its
    # rows are sweep.csv's, typed (the CSV's floats are shortest round-trip reprs: equal exactly)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert not (reference / "sweep.parquet").exists()
        return
    table = pq.read_table(reference / "sweep.parquet").to_pylist()
    rows = list(csv.DictReader(open(reference / "sweep.csv")))
    assert [list(r) for r in rows][0] == list(table[0])
    for r, t in zip(rows, table, strict=True):
        assert (t["point"], t["seed"], t["senders"], t["status"]) == (r["point"], int(r["seed"]), int(r["senders"]),
                                                                      r["status"])
        assert t["fct_p99_us"] == float(r["fct_p99_us"]) and t["events"] == int(r["events"])


def test_j2_gives_the_same_bytes_as_j1(reference, tmp_path):
    assert sweep_cli(tmp_path / "j2", "-j", "2") == 0
    assert files_of(tmp_path / "j2") == files_of(reference)
    # two worker processes ran the points (wall.csv names the worker of each)
    workers = {w["worker"] for w in csv.DictReader(open(tmp_path / "j2" / "wall.csv"))}
    assert workers and all(w.rsplit(":", 1)[1] != str(os.getpid()) for w in workers)


def test_resume_skips_done_points_and_force_reruns(reference, tmp_path, capsys):
    out = tmp_path / "s"
    assert sweep_cli(out, "-j", "1") == 0
    capsys.readouterr()
    stamps = {f: f.stat().st_mtime_ns for f in (out / "points").rglob("*")}
    assert sweep_cli(out, "-j", "1") == 0
    assert "0 run, 8 already done" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in (out / "points").rglob("*")} == stamps    # nothing rewritten
    # a point whose folder was not completed (no point.json: a crash) runs again, only it
    victim = sorted((out / "points").iterdir())[3]
    (victim / "point.json").unlink()
    assert sweep_cli(out, "-j", "1") == 0
    assert "1 run, 7 already done" in capsys.readouterr().out
    assert sweep_cli(out, "-j", "1", "--force") == 0
    assert "8 run, 0 already done" in capsys.readouterr().out
    assert files_of(out) == files_of(reference)


BOOM = '''
from congestion.api import CongestionControl


class Boom(CongestionControl):
    """Line rate; raises at the start of a flow when its parameter boom is 1."""
    name = "boom"
    events = frozenset({"start"})

    @classmethod
    def defaults(cls):
        return {"boom": 0}

    def on_start(self, st, ev):
        if self._params["boom"]:
            raise RuntimeError("boom was asked for")
        ev.rate_bps = ev.line_rate_bps
'''


def test_interrupted_sweep_resumes_to_the_same_bytes(slow_reference, tmp_path):
    # Ctrl-C (SIGINT) after the first point: exit 130, the workers stopped, every point written is
    # whole; the same command again runs only the points not done and ends with the same bytes
    out = tmp_path / "s"
    # the child gets SIGINT's default disposition: a suite started as a background job (`pytest &`)
    # has SIGINT ignored, which children inherit and Python then never turns into KeyboardInterrupt
    proc = subprocess.Popen([str(BIN / "softdpu"), *SLOW, "-j", "2", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_a_point(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, (proc.returncode, stderr)
    # no half-written point is left behind (points/<id>.tmp, the folder a point is written into
    # before it is renamed, once held a point.json when Ctrl-C came between the two)
    assert not list((out / "points").glob("*.tmp"))
    done = [d for d in (out / "points").iterdir() if (d / "point.json").exists()]
    assert 1 <= len(done) < 8
    for d in done:                             # a written point is the reference's, byte for byte
        assert files_of(d) == files_of(slow_reference / "points" / d.name)
    rc = main([*SLOW, "-j", "2", "--out", str(out)])
    assert rc == 0
    assert files_of(out) == files_of(slow_reference)


def test_ctrl_c_while_a_point_is_written_leaves_no_partial_point(tmp_path, monkeypatch, reference):
    # a point is written into points/<id>.tmp and renamed to points/<id>; Ctrl-C between the two
    # (here: the rename raises KeyboardInterrupt) must not leave the .tmp folder, whose point.json
    # makes it look like a done point. A .tmp left by a killed run (SIGKILL: no cleanup) is removed
    # by the next run. Either way the resumed sweep ends with the reference's bytes.
    out = tmp_path / "s"
    real = os.replace
    calls = []

    def replace_then_interrupt(src, dst):
        if Path(dst).parent.name == "points":      # a point's rename (os.replace is also used elsewhere)
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(sweep.os, "replace", replace_then_interrupt)
    assert sweep_cli(out, "-j", "1") == 130
    monkeypatch.setattr(sweep.os, "replace", real)
    points = out / "points"
    assert not list(points.glob("*.tmp"))
    assert len([d for d in points.iterdir() if (d / "point.json").exists()]) == 1
    stale = points / "stale.tmp"                    # what a SIGKILLed run leaves
    stale.mkdir()
    (stale / "point.json").write_text("{}")
    assert sweep_cli(out, "-j", "1") == 0
    assert files_of(out) == files_of(reference)


def test_failed_and_budget_points_are_recorded_and_counted(tmp_path, capsys):
    plugin = tmp_path / "boom.py"
    plugin.write_text(BOOM)
    out = tmp_path / "s"
    rc = main(["sweep", "incast", "--grid", "cc_params.boom=0,1", "--grid", "max_events=50,0", *TINY,
               "--set", f"ccs={plugin}:Boom", "--out", str(out), "-j", "2", "--no-progress"])
    rows = {(r["cc_params.boom"], r["max_events"]): r for r in csv.DictReader(open(out / "sweep.csv"))}
    # boom=1 fails at the first flow start, whatever the budget; boom=0 with 50 events stops at
    # the budget (an incast of 2 x 64 KB takes ~190 events, see the reference index); 0 = no limit
    assert {k: r["status"] for k, r in rows.items()} == {("0", "50"): "budget", ("0", "0"): "ok",
                                                          ("1", "50"): "failed", ("1", "0"): "failed"}
    assert "CCPluginError" in rows[("1", "0")]["error"] and "boom was asked for" in rows[("1", "0")]["error"]
    assert "max_events" in rows[("0", "50")]["error"]
    assert rc == 3                     # three points did not end ok
    assert "failed: point" in capsys.readouterr().err
    # a failed point is rerun by the next sweep, ok and budget points are kept
    rc = main(["sweep", "incast", "--grid", "cc_params.boom=0,1", "--grid", "max_events=50,0", *TINY,
               "--set", f"ccs={plugin}:Boom", "--out", str(out), "-j", "1", "--no-progress"])
    assert rc == 3 and "2 run, 2 already done" in capsys.readouterr().out


def test_progress_bar_only_on_a_terminal_or_when_asked(tmp_path, capsys):
    # stderr is not a terminal here: no bar by default; --progress draws one bar for the sweep
    assert main(["sweep", "incast", *GRID, *TINY, "-j", "1", "--out", str(tmp_path / "b")]) == 0
    assert "8/8" not in capsys.readouterr().err
    assert main(["sweep", "incast", *GRID, *TINY, "-j", "1", "--force", "--progress", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "sweep incast" in err and "8/8" in err


def test_spec_file_gives_the_same_sweep(reference, tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('experiment = "incast"\nseeds = "1-2"\n[grid]\nsenders = [2, 3]\n'
                    '[set]\nsize_bytes = "64KB"\nsample_interval_ps = "1us"\n')
    assert main(["sweep", "--spec", str(spec), "--out", str(tmp_path / "s"), "-j", "1", "--no-progress"]) == 0
    assert files_of(tmp_path / "s") == files_of(reference)


def test_run_points_of_experiments_without_scenarios(tmp_path):
    # placement has no scenarios(params, seed): a point runs its run() (variant "all")
    out = tmp_path / "s"
    rc = main(["sweep", "placement", "--grid", "background_jobs=0,1", "--seeds", "1", "--set", "num_rails=2",
               "--set", "servers_per_leaf=2", "--set", "leaves_per_rail=2", "--set", "job_gpus=4",
               "--set", "background_gpus=2", "--set", "grad_bytes=1MiB", "--set", "seeds=1",
               "--out", str(out), "-j", "1", "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [(r["background_jobs"], r["variant"], r["status"]) for r in rows] == [("0", "all", "ok"), ("1", "all", "ok")]
    assert (out / "points" / rows[0]["point"] / "placement.csv").exists()


# --------------------------------------------------------------------------------- softdpu run -j
def test_run_j2_gives_the_same_results_as_j1(tmp_path):
    args = ["run", "fct_slowdown", "--set", 'ccs=["dcqcn","dctcp"]', "--set", "loads=[0.3]",
            "--set", 'workloads=["websearch"]', "--set", "duration_us=300", "--no-plots"]
    assert main([*args, "-j", "1", "--out", str(tmp_path / "j1")]) == 0
    assert main([*args, "-j", "2", "--out", str(tmp_path / "j2")]) == 0
    got = files_of(tmp_path / "j2")
    assert len([f for f in got if f.endswith("flows.csv")]) == 2
    assert got == files_of(tmp_path / "j1")


def test_executor_map_keeps_order_and_raises_the_failure():
    with executor.make(2) as ex:
        assert ex.map(abs, [-3, 2, -1]) == [3, 2, 1]
        with pytest.raises(TypeError):
            ex.map(abs, [-3, "x"])


def test_budget_exceeded_comes_back_from_a_worker_as_itself():
    import pickle
    from dataplane.sim import BudgetExceeded
    e = pickle.loads(pickle.dumps(BudgetExceeded("max_events", 50, 123, "the run budget ...")))
    assert (type(e), e.budget, e.limit, e.sim_ps, str(e)) == (BudgetExceeded, "max_events", 50, 123, "the run budget ...")


# --------------------------------------------------------------------------------- Dask
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real ``dask scheduler`` and two ``dask worker`` processes (one thread each, no nanny: a
    killed worker stays dead) on free localhost ports; every process is killed at the end."""
    procs: list[subprocess.Popen] = []
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ)
    log = open(tmp_path / "dask.log", "w")
    try:
        procs.append(subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard", "--no-show"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True))
        workers = []
        for i in range(2):
            w = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                                  "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                                  "--local-directory", str(tmp_path / f"w{i}")],
                                 stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            procs.append(w)
            workers.append(w)
        from distributed import Client
        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()


def test_dask_cluster_same_results_and_survives_a_killed_worker(dask_cluster, reference, slow_reference, tmp_path):
    address, workers = dask_cluster
    # 1. the tiny sweep through the cluster: byte-identical to -j 1
    assert sweep_cli(tmp_path / "dask", "--scheduler", address) == 0
    assert files_of(tmp_path / "dask") == files_of(reference)
    # 2. the slow sweep; one worker is killed while it runs a point, once a first point is done: the
    # scheduler gives its point to the other worker, the sweep completes with the same bytes as -j 1
    out = tmp_path / "slow-dask"
    proc = subprocess.Popen([str(BIN / "softdpu"), *SLOW, "--scheduler", address, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from distributed import Client
    killed = None
    with Client(address, timeout=30) as c:
        pids = c.run(os.getpid)                     # worker address -> pid
        deadline = time.monotonic() + 300
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            done = list((out / "points").glob("*/point.json")) if (out / "points").exists() else []
            busy = [w for w, keys in c.processing().items() if keys]
            if done and busy:
                victim = next(p for p in workers if p.pid == pids[busy[0]])
                # the points on the victim (task keys are softdpu-<point id>-<stamp>)
                lost = {str(k).split("-")[1] for k in c.processing()[busy[0]]}
                os.killpg(victim.pid, signal.SIGKILL)
                killed = busy[0]
            time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=600)
    assert killed is not None, "the sweep ended before a worker could be killed mid-point"
    assert proc.returncode == 0, stderr
    assert "8 run" in stdout
    assert files_of(out) == files_of(slow_reference)
    # the points the killed worker held were run by the survivor (wall.csv names each point's worker)
    survivor = next(p for p in workers if p.poll() is None)
    ran_by = {w["point"]: w["worker"].rsplit(":", 1)[1] for w in csv.DictReader(open(out / "wall.csv"))}
    assert lost and all(ran_by[pt] == str(survivor.pid) for pt in lost), (lost, ran_by, survivor.pid)


def test_fct_slowdown_sweep_index_has_the_small_flow_slowdown(tmp_path):
    """fct_slowdown's README figure is the p95 slowdown of the small flows (its printed table's
    first size bucket), not of all flows: sweep.csv carries it per point (before, only the
    all-flow slowdown_p50/p95/p99 were there), so a sweep over seeds can quote it."""
    import numpy as np
    from controlplane.results.folder import load_run
    out = tmp_path / "fct"
    assert main(["sweep", "fct_slowdown", "--set", 'workloads=["fb_hadoop"]', "--set", "loads=[0.5]",
                 "--set", 'ccs=["dcqcn","hpcc"]', "--set", "duration_us=200", "--set", "buckets=4",
                 "--seeds", "1", "-j", "1", "--no-progress", "--out", str(out)]) == 0
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["fb_hadoop-50/dcqcn", "fb_hadoop-50/hpcc"]
    cols = list(rows[0])
    assert cols[-4:] == ["small_slowdown_p50", "small_slowdown_p95", "small_slowdown_p99", "small_hi_bytes"]
    for r in rows:
        flows = load_run(out / "points" / r["point"]).flows
        done = flows["fct_ps"] >= 0
        size, sd = flows["size_bytes"][done], flows["slowdown"][done]
        # expected, from the definition: finished flows sorted by size (stable), the first of
        # 4 near-equal groups (np.array_split: the first ceil(n/4) flows), its percentiles
        order = np.argsort(size, kind="stable")[: -(-size.size // 4)]
        p50, p95, p99 = np.percentile(sd[order], [50, 95, 99])
        assert float(r["small_slowdown_p50"]) == pytest.approx(p50, rel=1e-12)
        assert float(r["small_slowdown_p95"]) == pytest.approx(p95, rel=1e-12)
        assert float(r["small_slowdown_p99"]) == pytest.approx(p99, rel=1e-12)
        assert int(r["small_hi_bytes"]) == int(size[order].max())
        # and not the all-flow column under another name
        assert float(r["slowdown_p95"]) == pytest.approx(np.percentile(sd, 95), rel=1e-12)
