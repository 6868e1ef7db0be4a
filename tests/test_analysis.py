"""Tests of controlplane.results.analysis (load a run, an experiment, a sweep as pandas/xarray; bootstrap
statistics) and controlplane.results.sweep_plots (`softdpu plot DIR` on a sweep).

The sweep folder here is written by `write_sweep` below in the layout `softdpu sweep` writes
(sweep.json, sweep.csv, points/<id>/ = a results folder + point.json), from real tiny incast runs,
so these tests do not depend on the sweep command itself.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from controlplane.results.analysis import (METRICS, Results, bootstrap_ci, load, run_metrics, summarize)
from controlplane.results.folder import load_run

REPO = Path(__file__).resolve().parents[1]
SMALL = {"senders": 2, "size_bytes": 100_000}          # tests/test_cli.py's small incast


def write_sweep(root: Path, grid: dict, seeds: list[int], failed=()) -> Path:
    """A sweep folder of incast points in the agreed layout. A point is (grid values, seed,
    variant); its id is a hash of them; the points in ``failed`` are recorded as failed with no
    results folder. Runs use 3 µs start jitter so that seeds differ."""
    from controlplane.run.experiment import apply_overrides
    from controlplane.config.units import us
    from experiments import incast
    (root / "points").mkdir(parents=True)
    points, rows = [], []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        for seed in seeds:
            exp = {k: v for k, v in params.items() if k in incast.PARAMS}
            over = {"workload.jitter_ps": us(3), **{k: v for k, v in params.items() if k not in incast.PARAMS}}
            for variant, sc in incast.scenarios({**SMALL, **exp}, seed).items():
                pid = hashlib.sha256(json.dumps([params, seed, variant], sort_keys=True).encode()).hexdigest()[:16]
                points.append({"id": pid, "params": params, "seed": seed, "variant": variant})
                row = {"point": pid, "experiment": "incast", "variant": variant, "seed": seed, **params}
                if (params, seed, variant) in failed:
                    row.update(status="failed", error="ValueError: made to fail", **{m: "" for m in METRICS})
                else:
                    folder = root / "points" / pid
                    apply_overrides(sc, over).run(folder)
                    (folder / "point.json").write_text(json.dumps(
                        {"params": params, "seed": seed, "variant": variant, "status": "ok", "error": None,
                         "config": json.loads((folder / "config.json").read_text())}))
                    row.update(status="ok", error="", **run_metrics(load_run(folder)))
                rows.append(row)
    (root / "sweep.json").write_text(json.dumps({"experiment": "incast", "grid": grid, "seeds": seeds,
                                                 "sets": SMALL, "points": points}))
    with open(root / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(root / "wall.csv", "w", newline="") as f:
        f.write("point,wall_s,worker\n" + "".join(f"{p['id']},0.1,local-0\n" for p in points))
    return root


FAILED = ({"senders": 3, "size_bytes": 100_000}, 2, "none")


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    from experiments import incast
    out = tmp_path_factory.mktemp("exp") / "incast"
    incast.run(out, dict(SMALL), plots=False)
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    # size_bytes is swept (one value) to check a swept name that is also a flows.csv column
    return write_sweep(tmp_path_factory.mktemp("sweep") / "sw", {"senders": [2, 3], "size_bytes": [100_000]},
                       [1, 2, 3], failed=[FAILED])


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- load: a run --------------------------------------------------------------------------------

FLOW_COLUMNS = ["flow_id", "qp", "src", "dst", "size_bytes", "start_ps", "finish_ps", "fct_ps", "ideal_fct_ps",
                "slowdown", "verb", "wc_status", "rx_done_ps"]


def test_load_a_run_gives_flows_equal_to_flows_csv(experiment_dir):
    r = load(experiment_dir / "dcqcn")
    assert isinstance(r, Results) and r.kind == "run"
    f = r.flows
    # id columns, the file's columns in file order, then the two derived ones (module docstring)
    assert list(f.columns) == ["run", "variant", "cc", "seed", *FLOW_COLUMNS, "fct_us", "finished"]
    for c in ("flow_id", "qp", "size_bytes", "start_ps", "finish_ps", "fct_ps", "ideal_fct_ps", "seed"):
        assert f[c].dtype == np.int64, c
    assert f["slowdown"].dtype == np.float64 and f["fct_us"].dtype == np.float64 and f["finished"].dtype == bool
    rows = _csv_rows(experiment_dir / "dcqcn" / "flows.csv")
    assert len(f) == len(rows) == SMALL["senders"]
    for i, row in enumerate(rows):
        for c in FLOW_COLUMNS:
            if c in ("verb", "wc_status"):
                assert f[c].iloc[i] == row[c], (i, c)
            else:
                assert float(f[c].iloc[i]) == float(row[c]), (i, c)
        assert f["fct_us"].iloc[i] == int(row["fct_ps"]) / 1e6          # 1 µs = 10^6 ps
    assert set(f["cc"]) == {"dcqcn"} and set(f["variant"]) == {"dcqcn"} and set(f["seed"]) == {1}


def test_load_a_run_counters_config_and_timeseries_equal_the_files(experiment_dir):
    folder = experiment_dir / "dcqcn"
    r = load(folder)
    counters = json.loads((folder / "counters.json").read_text())
    assert len(r.counters) == 1
    row = r.counters.iloc[0]
    assert {k: row[k] for k in counters} == counters
    assert r.config == json.loads((folder / "config.json").read_text())
    ds = r.timeseries
    with np.load(folder / "timeseries.npz") as npz:
        assert dict(ds.sizes) == {"time": npz["t_ps"].size, "qp": npz["qp_ids"].size, "port": npz["port_ids"].size}
        np.testing.assert_array_equal(ds["time"].values, npz["t_ps"])
        np.testing.assert_array_equal(ds["qp"].values, npz["qp_ids"])
        np.testing.assert_array_equal(ds["port_name"].values, npz["port_names"])
        for key in ("qp_rate_bps", "qp_goodput_bps", "port_queue_bytes", "port_tx_bytes"):
            np.testing.assert_array_equal(ds[key].values, npz[key])
        assert ds["port_queue_bytes"].dims == ("time", "port") and ds["qp_goodput_bps"].dims == ("time", "qp")
        # selectable by port name (a unique label): the column of that port
        col = list(npz["port_names"]).index("sw0->h0")
        np.testing.assert_array_equal(ds["port_queue_bytes"].sel(port_name="sw0->h0").values,
                                      npz["port_queue_bytes"][:, col])
    np.testing.assert_allclose(ds["time_us"].values, ds["time"].values / 1e6)


# --- load: an experiment ------------------------------------------------------------------------

def test_load_an_experiment_has_one_run_per_variant(experiment_dir):
    r = load(experiment_dir)
    assert r.kind == "experiment" and list(r.runs) == ["dcqcn", "none"]
    f = r.flows
    assert list(f["variant"].unique()) == ["dcqcn", "none"]
    for v in ("dcqcn", "none"):
        rows = _csv_rows(experiment_dir / v / "flows.csv")
        part = f[f["variant"] == v]
        assert part["fct_ps"].tolist() == [int(x["fct_ps"]) for x in rows]
        assert set(part["cc"]) == {v}
    c = r.counters
    assert c["variant"].tolist() == ["dcqcn", "none"]
    for v in ("dcqcn", "none"):
        assert c.loc[c["variant"] == v, "events"].item() == json.loads((experiment_dir / v / "counters.json").read_text())["events"]
    assert set(r.config) == {"dcqcn", "none"} and r.config["none"]["cc"] == "none"
    assert set(r.timeseries) == {"dcqcn", "none"} and r.timeseries["none"].attrs["cc"] == "none"
    # the index has the sweep's metric columns, computed by run_metrics from each folder
    idx = r.index
    assert list(idx.columns) == ["run", "variant", "cc", "seed", *METRICS]
    assert idx.iloc[0][list(METRICS)].to_dict() == pytest.approx(run_metrics(load_run(experiment_dir / "dcqcn")),
                                                                  nan_ok=True)


def test_timeseries_frame_is_long_with_id_columns(experiment_dir):
    r = load(experiment_dir)
    long = r.timeseries_frame("port_queue_bytes")
    ds = r.timeseries["none"]
    part = long[long["variant"] == "none"]
    assert len(part) == ds.sizes["time"] * ds.sizes["port"]
    # row order: time-major, then port (as the (S, P) array ravels)
    np.testing.assert_array_equal(part["value"].to_numpy(), ds["port_queue_bytes"].values.ravel())
    assert {"run", "variant", "cc", "seed", "time_ps", "time_us", "port", "port_name", "value"} == set(long.columns)
    with pytest.raises(KeyError, match="qp_goodput_bps"):
        r.timeseries_frame("no_such_variable")


def test_load_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results folder"):
        load(tmp_path)


# --- load: a sweep ------------------------------------------------------------------------------

def test_load_a_sweep(sweep_dir):
    r = load(sweep_dir)
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    assert r.kind == "sweep" and r.params == ["senders", "size_bytes"]
    ok = [p for p in spec["points"] if (p["params"], p["seed"], p["variant"]) != FAILED]
    assert list(r.runs) == [p["id"] for p in ok]                  # the failed point has no folder
    # index: sweep.csv as written, every point (the failed one too), text columns as text
    idx = r.index
    rows = _csv_rows(sweep_dir / "sweep.csv")
    assert len(idx) == len(rows) == len(spec["points"])
    assert idx["point"].tolist() == [x["point"] for x in rows]
    assert idx["status"].tolist().count("failed") == 1
    assert idx["seed"].dtype == np.int64 and idx["senders"].dtype == np.int64
    for m in METRICS:
        assert idx[m].dtype == np.float64, m
        np.testing.assert_array_equal(idx[m].to_numpy(), [float(x[m]) if x[m] else math.nan for x in rows])
    # flows: one block per point, with the point's swept values; size_bytes is a flows.csv column,
    # so the swept size_bytes is param.size_bytes (module docstring)
    f = r.flows
    assert list(f.columns)[:8] == ["point", "variant", "cc", "seed", "senders", "param.size_bytes", "status", "flow_id"]
    for p in ok:
        part = f[f["point"] == p["id"]]
        rows_p = _csv_rows(sweep_dir / "points" / p["id"] / "flows.csv")
        assert len(part) == p["params"]["senders"] == len(rows_p)
        assert part["fct_ps"].tolist() == [int(x["fct_ps"]) for x in rows_p]
        assert set(part["senders"]) == {p["params"]["senders"]} and set(part["seed"]) == {p["seed"]}
        assert set(part["variant"]) == {p["variant"]} and set(part["status"]) == {"ok"}
    assert set(f["param.size_bytes"]) == {100_000} and set(f["size_bytes"]) == {100_000}
    # counters: one row per point with results; config and time series keyed by point
    assert r.counters["point"].tolist() == list(r.runs)
    assert "size_bytes" in r.counters.columns              # no clash with a counters.json key
    first = ok[0]["id"]
    assert r.config[first] == json.loads((sweep_dir / "points" / first / "config.json").read_text())
    assert len(r.timeseries) == len(ok) and r.timeseries[first].sizes["qp"] == ok[0]["params"]["senders"]
    with pytest.raises(KeyError):
        r.timeseries["not-a-point"]
    # the seeds differ (start jitter), so a sweep has a spread to put an interval on
    dcqcn2 = idx[(idx["variant"] == "dcqcn") & (idx["senders"] == 2)]
    assert dcqcn2["fct_p99_us"].nunique() == 3


def test_sweep_index_prefers_parquet(sweep_dir, tmp_path):
    import shutil

    import pandas as pd
    copy = tmp_path / "sw"
    shutil.copytree(sweep_dir, copy)
    frame = pd.read_csv(copy / "sweep.csv", dtype={"point": str})
    frame["from_parquet"] = 1
    frame.to_parquet(copy / "sweep.parquet")
    assert load(copy).index["from_parquet"].tolist() == [1] * len(frame)


# --- statistics ---------------------------------------------------------------------------------

SAMPLE = [4.7, 8.2, 5.9, 6.1, 7.4, 5.2]      # a skewed handful, as per-seed slowdowns are


def test_bootstrap_ci_is_scipys_bca_with_a_fixed_seed():
    from scipy import stats
    low, high = bootstrap_ci(SAMPLE)
    # the same call to scipy, written out: BCa, 9999 resamples, generator seeded with 0
    ref = stats.bootstrap((np.array(SAMPLE),), np.mean, method="BCa", n_resamples=9999, confidence_level=0.95,
                          rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == (ref.low, ref.high)
    assert low < np.mean(SAMPLE) < high
    assert bootstrap_ci(SAMPLE) == (low, high)                 # deterministic
    assert bootstrap_ci(SAMPLE, confidence=0.5)[1] - bootstrap_ci(SAMPLE, confidence=0.5)[0] < high - low


def test_bootstrap_ci_matches_the_normal_interval_on_a_large_sample():
    # n = 400 from N(10, 2^2): the interval of the mean is mean ± 1.96·s/√n (central limit
    # theorem); the bootstrap's half-width differs by the factor √((n-1)/n) and by the Monte-Carlo
    # error of 9999 resamples (a few %): 10 % tolerance
    x = np.random.default_rng(7).normal(10.0, 2.0, 400)
    low, high = bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.10)
    assert (low + high) / 2 == pytest.approx(x.mean(), abs=0.1 * half)


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([3.0]))     # one seed: no interval
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([2.5, 2.5, 2.5]) == (2.5, 2.5)         # no spread: the interval is the value
    assert bootstrap_ci([1.0, float("nan"), 3.0]) == bootstrap_ci([1.0, 3.0])


def test_summarize_per_group():
    import pandas as pd
    frame = pd.DataFrame({"load": [0.3] * 6 + [0.5], "variant": ["a"] * 3 + ["b"] * 3 + ["a"],
                          "m": [1.0, 2.0, 4.0, 5.0, 5.0, float("nan"), 9.0]})
    s = summarize(frame, ["load", "variant"], ["m"])
    assert s[["load", "variant"]].values.tolist() == [[0.3, "a"], [0.3, "b"], [0.5, "a"]]
    assert s["points"].tolist() == [3, 3, 1] and s["m_n"].tolist() == [3, 2, 1]
    assert s["m_mean"].tolist() == [7 / 3, 5.0, 9.0]
    assert (s.loc[0, "m_ci_low"], s.loc[0, "m_ci_high"]) == bootstrap_ci([1.0, 2.0, 4.0])
    assert (s.loc[1, "m_ci_low"], s.loc[1, "m_ci_high"]) == (5.0, 5.0)
    assert math.isnan(s.loc[2, "m_ci_low"]) and math.isnan(s.loc[2, "m_ci_high"])
    pd.testing.assert_frame_equal(s, summarize(frame, ["load", "variant"], ["m"]))   # deterministic


# --- softdpu plot on a sweep --------------------------------------------------------------------

@pytest.fixture
def figures(monkeypatch):
    """The figures saved, as (path, [visible panel titles], suptitle, size in px)."""
    from matplotlib.figure import Figure
    saved = []
    original = Figure.savefig

    def savefig(self, fname, *args, **kw):
        visible = [a for a in self.axes if a.get_visible()]
        saved.append((Path(fname), [a.get_title() for a in visible],
                      self.get_suptitle(), tuple(self.get_size_inches() * kw.get("dpi", self.dpi)),
                      [([t.get_text() for t in a.get_xticklabels()], a.get_xscale()) for a in visible]))
        return original(self, fname, *args, **kw)
    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


@pytest.mark.plots
def test_plot_sweep_writes_a_figure_per_parameter_and_summary_csv(sweep_dir, figures, capsys):
    import pandas as pd

    from controlplane.run.cli import main
    from controlplane.results.sweep_plots import DEFAULT_METRICS, LABELS
    assert main(["plot", str(sweep_dir)]) == 0
    out, err = capsys.readouterr()
    printed = out.split()
    pngs = [sweep_dir / "plots" / "by_senders.png", sweep_dir / "plots" / "by_size_bytes.png"]
    assert printed == [str(p) for p in pngs] + [str(sweep_dir / "summary.csv")]
    assert all(p.is_file() and p.stat().st_size > 10_000 for p in pngs)
    assert "left out 1 of 12 points: 1 failed" in err
    assert "pfc_pauses" in err.split("not drawn, 0 at every point:")[1]     # no PFC in these runs
    # summary.csv: one row per (senders, size_bytes, variant) cell; the failed point is not counted
    s = pd.read_csv(sweep_dir / "summary.csv")
    assert s[["senders", "variant"]].values.tolist() == [[2, "dcqcn"], [2, "none"], [3, "dcqcn"], [3, "none"]]
    assert s["points"].tolist() == [3, 3, 3, 2]
    idx = load(sweep_dir).index
    ok = idx[idx["status"] == "ok"]
    for _, row in s.iterrows():
        cell = ok[(ok["senders"] == row["senders"]) & (ok["variant"] == row["variant"])]
        for m in METRICS:
            assert row[f"{m}_mean"] == pytest.approx(cell[m].mean(), nan_ok=True)
            assert (row[f"{m}_ci_low"], row[f"{m}_ci_high"]) == pytest.approx(bootstrap_ci(cell[m]), nan_ok=True)
    # the panels: the default metrics that have data; a counter that is 0 everywhere is left out
    expected = [m for m in DEFAULT_METRICS
                if np.isfinite(s[f"{m}_mean"]).any() and not (m in ("drops", "ecn_marks", "pfc_pauses", "retx")
                                                             and (s[f"{m}_mean"] == 0).all())]
    assert "pfc_pauses" not in expected and "slowdown_p99" in expected
    assert [f[0] for f in figures] == pngs
    for path, titles, suptitle, (w, h), _ in figures:
        assert titles == [LABELS[m] for m in expected], path
        assert "mean over 3 seeds" in suptitle and "95 % bootstrap CI" in suptitle
        assert w < 1800, (path, w)                  # readable at README size


@pytest.mark.plots
def test_plot_sweep_with_one_seed_draws_points_without_an_interval(sweep_dir, tmp_path, figures, capsys):
    import pandas as pd

    from controlplane.run.cli import main
    one = tmp_path / "one"
    one.mkdir()
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    spec["seeds"] = [1]
    spec["points"] = [p for p in spec["points"] if p["seed"] == 1]
    (one / "sweep.json").write_text(json.dumps(spec))
    idx = pd.read_csv(sweep_dir / "sweep.csv", dtype={"point": str})
    idx[idx["seed"] == 1].to_csv(one / "sweep.csv", index=False)
    assert main(["plot", str(one), "--metrics", "slowdown_p99,goodput_gbps"]) == 0
    s = pd.read_csv(one / "summary.csv")
    assert (s["slowdown_p99_n"] == 1).all() and s["slowdown_p99_ci_low"].isna().all()
    assert [f[1] for f in figures] == [["slowdown p99", "goodput (Gbps)"]] * 2
    assert all("no interval" in f[2] for f in figures)


def _synthetic_sweep(root: Path, grid: dict, seeds: list[int]) -> Path:
    """A sweep folder with an index only (no point folders: the plot reads sweep.json and
    sweep.csv): goodput_gbps = 10 · position of `paths` in the grid + load + seed / 10."""
    root.mkdir()
    points, rows = [], []
    for i, (paths, load_, seed) in enumerate(itertools.product(grid["paths"], grid["load"], seeds)):
        pid = f"p{i:03d}"
        points.append({"id": pid, "params": {"paths": paths, "load": load_}, "seed": seed, "variant": "dcqcn"})
        rows.append({"point": pid, "experiment": "x", "variant": "dcqcn", "seed": seed, "paths": paths,
                     "load": load_, "status": "ok", "error": "",
                     "goodput_gbps": 10 * grid["paths"].index(paths) + load_ + seed / 10})
    (root / "sweep.json").write_text(json.dumps({"experiment": "x", "grid": grid, "seeds": seeds, "sets": {},
                                                 "points": points}))
    with open(root / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.mark.plots
def test_plot_sweep_axes_categorical_in_grid_order_numeric_log(tmp_path, figures, capsys):
    """A parameter of names is on a categorical axis in the grid's order (not sorted); numbers
    spanning 50x or more on a logarithmic axis with ticks at the swept values (module docstring)."""
    import pandas as pd

    from controlplane.results.sweep_plots import plot_sweep
    grid = {"paths": ["spray_rr", "ecmp", "ar"], "load": [1, 10, 100]}
    root = _synthetic_sweep(tmp_path / "syn", grid, [1, 2])
    pngs, table, notes = plot_sweep(root, ["goodput_gbps"])
    assert [p.name for p in pngs] == ["by_paths.png", "by_load.png"] and notes == []
    (_, _, _, _, [(paths_ticks, paths_scale)]), (_, _, _, _, [(load_ticks, load_scale)]) = figures
    assert paths_ticks == grid["paths"] and paths_scale == "linear"
    assert load_ticks == ["1", "10", "100"] and load_scale == "log"
    s = pd.read_csv(table)
    assert s["paths"].tolist() == [p for p in grid["paths"] for _ in grid["load"]]
    # the mean of seeds 1 and 2 of each cell: 10 · position + load + 0.15
    assert s["goodput_gbps_mean"].tolist() == pytest.approx(
        [10 * i + load_ + 0.15 for i in range(3) for load_ in grid["load"]])
    assert (s["goodput_gbps_n"] == 2).all()


def test_sweep_point_with_an_incomplete_folder_is_only_in_the_index(sweep_dir, tmp_path):
    import shutil
    copy = tmp_path / "sw"
    shutil.copytree(sweep_dir, copy)
    first = json.loads((copy / "sweep.json").read_text())["points"][0]["id"]
    (copy / "points" / first / "flows.csv").unlink()            # a point that died while writing
    r = load(copy)
    assert first not in r.runs and first in r.index["point"].tolist()
    assert first not in set(r.flows["point"]) and len(r.counters) == len(r.runs)


def test_sweep_point_that_is_an_experiment_folder(experiment_dir, tmp_path):
    """A point that ran a whole experiment (variant "all": its runs are folders below the point)
    gives one run per variant folder, keyed <point>/<variant>, with the point's swept values."""
    import shutil
    root = tmp_path / "sw"
    shutil.copytree(experiment_dir, root / "points" / "p0")
    grid = {"cc_params": [{"flavour": "paper"}]}
    (root / "sweep.json").write_text(json.dumps({"experiment": "incast", "grid": grid, "seeds": [1], "sets": {},
                                                 "points": [{"id": "p0", "params": {"cc_params": {"flavour": "paper"}},
                                                             "seed": 1, "variant": "all"}]}))
    (root / "sweep.csv").write_text("point,experiment,variant,seed,cc_params,status,error\n"
                                    'p0,incast,all,1,"{""flavour"":""paper""}",ok,\n')
    r = load(root)
    assert list(r.runs) == ["p0/dcqcn", "p0/none"]
    f = r.flows
    assert f["variant"].unique().tolist() == ["dcqcn", "none"] and set(f["point"]) == {"p0"}
    assert set(f["status"]) == {"ok"}                       # from sweep.csv: the point has no point.json
    # a dict value is the compact JSON text sweep.csv has, so flows and index join on it
    assert set(f["cc_params"]) == set(r.index["cc_params"]) == {'{"flavour":"paper"}'}


def test_plot_refuses_an_unknown_metric(sweep_dir, capsys):
    from controlplane.run.cli import main
    assert main(["plot", str(sweep_dir), "--metrics", "slowdown_p999"]) == 2
    assert "slowdown_p999" in capsys.readouterr().err


def test_plot_metrics_option_needs_a_sweep(experiment_dir, capsys):
    from controlplane.run.cli import main
    assert main(["plot", str(experiment_dir), "--metrics", "jain"]) == 2
    assert "sweep" in capsys.readouterr().err


# --- the core without the extra -----------------------------------------------------------------

HIDE = "import sys\nfor m in ('pandas', 'xarray', 'pyarrow', 'scipy'):\n    sys.modules[m] = None\n"


def test_core_works_without_the_analysis_extra(experiment_dir, sweep_dir, tmp_path):
    """pandas, xarray, pyarrow and scipy blocked (None in sys.modules makes their import fail): a
    run works, analysis imports and reads folders with numpy, and what needs the extra says how to
    install it; `softdpu plot` on a sweep exits 2 with that line."""
    code = HIDE + f"""
from controlplane.run.cli import main
import controlplane.results.analysis, controlplane.results.sweep_plots, controlplane.results.plots, controlplane.results.folder
assert main(["run", "incast", "--set", "senders=2", "--set", "size_bytes=100000", "--no-plots",
             "--out", {str(tmp_path / 'run')!r}]) == 0
from controlplane.results.analysis import MissingExtra, load, run_metrics
r = load({str(experiment_dir)!r})
assert r.kind == "experiment" and run_metrics(r.run("dcqcn"))["events"] > 0
for attr in ("flows", "counters", "timeseries", "index"):
    try:
        getattr(r, attr)
    except MissingExtra as e:
        assert "pip install 'softdpu[analysis]'" in str(e), e
    else:
        raise AssertionError(attr + " worked without pandas/xarray")
assert main(["plot", {str(sweep_dir)!r}]) == 2
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "softdpu: plot: a sweep's plots need the analysis extra" in done.stderr
    assert "pip install 'softdpu[analysis]'" in done.stderr


@pytest.mark.plots
def test_plot_sweep_of_seeds_only_draws_the_variants(tmp_path, figures, capsys):
    """`softdpu sweep fct_slowdown --seeds 1-5` has no grid: `softdpu plot` on it drew nothing and
    failed ("no swept parameter"). It draws the metrics per variant: variants GROUP/LINE (as
    fct_slowdown's fb_hadoop-50/hpcc) with GROUP on the x axis and a line per LINE."""
    import pandas as pd

    from controlplane.run.cli import main
    root = tmp_path / "seeds"
    root.mkdir()
    variants = ["fb-30/dcqcn", "fb-30/hpcc", "fb-50/dcqcn", "fb-50/hpcc"]
    points, rows = [], []
    for vi, (variant, seed) in enumerate(itertools.product(variants, [1, 2, 3])):
        pid = f"p{vi:03d}"
        points.append({"id": pid, "params": {}, "seed": seed, "variant": variant})
        # slowdown_p99 = 10 · variant index + seed: the mean of seeds 1-3 is 10 · index + 2
        rows.append({"point": pid, "experiment": "x", "variant": variant, "seed": seed, "status": "ok", "error": "",
                     "slowdown_p99": 10 * variants.index(variant) + seed})
    (root / "sweep.json").write_text(json.dumps({"experiment": "x", "grid": {}, "seeds": [1, 2, 3], "sets": {},
                                                 "points": points}))
    with open(root / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["plot", str(root), "--metrics", "slowdown_p99"]) == 0
    assert capsys.readouterr().out.split() == [str(root / "plots" / "by_variant.png"), str(root / "summary.csv")]
    [(path, titles, suptitle, _, [(ticks, _)])] = figures
    assert ticks == ["fb-30", "fb-50"] and titles == ["slowdown p99"]
    assert "mean over 3 seeds" in suptitle
    s = pd.read_csv(root / "summary.csv")
    assert s["variant"].tolist() == variants
    assert s["slowdown_p99_mean"].tolist() == pytest.approx([10 * i + 2 for i in range(4)])
