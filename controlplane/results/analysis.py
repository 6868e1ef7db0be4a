"""Analysis API: a run, an experiment's variants or a sweep as pandas / xarray objects.

``load(path)`` takes any of the three folders softdpu writes and returns a :class:`Results`:

- a **run** folder (``config.json``, ``flows.csv``, ``timeseries.npz``, ``counters.json``; see
  controlplane/results/folder.py), e.g. ``results/incast/dcqcn``;
- an **experiment** folder holding one run folder per variant (``results/incast`` with
  ``dcqcn/`` and ``none/``; nested variants such as fct_slowdown's ``fb_hadoop-30/dcqcn`` too);
- a **sweep** folder written by ``softdpu sweep`` (``sweep.json``, ``sweep.csv``, one run folder
  per point under ``points/<id>/`` with its ``point.json``).

Every kind has the same attributes (docs/analysis.md has a worked example):

- ``flows``: pandas DataFrame, one row per message of every run: the id columns (``run`` or, for a
  sweep, ``point``; ``variant``, ``cc``, ``seed``; for a sweep the swept parameters and
  ``status``), then the columns of ``flows.csv`` with their values as written (``fct_ps`` is -1
  and ``slowdown`` nan for an unfinished message), then ``fct_us`` (nan if unfinished) and
  ``finished``.
- ``counters``: DataFrame, one row per run: the id columns and every key of ``counters.json``.
- ``config``: the resolved scenario (``config.json``) of a run; for an experiment or a sweep a dict
  of them keyed like ``runs`` (variant path, or point id).
- ``timeseries``: an xarray Dataset for a run, with dimensions ``time`` (integer ps; coordinate
  ``time_us`` beside it), ``qp`` (QP ids as in flows.csv's ``qp``; ``qp_label`` beside it) and
  ``port`` (port ids; ``port_name`` beside it, both indexed so ``.sel(port_name="sw0->h0")``
  works); one variable per array of ``timeseries.npz``. For an experiment or a sweep, a read-only
  mapping from the run's key to its Dataset, each loaded when first used (runs may differ in QPs,
  ports and samples, so they are not stacked); :meth:`Results.timeseries_frame` gives one
  variable of every run as one long DataFrame.
- ``index``: one row per run with the summary metrics of :data:`METRICS`. For a sweep this is
  ``sweep.csv`` as written by the sweep (``sweep.parquet`` when present and pyarrow is
  installed); for a run or an experiment it is computed here with :func:`run_metrics`, so the
  columns are the same.

pandas, xarray, pyarrow and scipy are the optional extra ``pip install 'softdpu[analysis]'``; this
module imports them only when an attribute needs them and otherwise raises :class:`MissingExtra`
naming the extra. The rest of softdpu never imports them.

Statistics across seeds: :func:`bootstrap_ci` (scipy.stats.bootstrap, BCa, fixed generator seed so
results are reproducible) and :func:`summarize` (n, mean and interval of each metric per group),
used by ``softdpu plot`` on a sweep (controlplane/results/sweep_plots.py).
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

import numpy as np

from controlplane.results.folder import PS_PER_US, Run, load_run, read_flows_csv, summary

INSTALL_HINT = "pip install 'softdpu[analysis]'"

METRICS = ("fct_p50_us", "fct_p99_us", "slowdown_p50", "slowdown_p95", "slowdown_p99", "goodput_gbps",
           "utilisation", "jain", "drops", "ecn_marks", "pfc_pauses", "retx", "events")
"""The summary metrics of a run, in the order of sweep.csv's metric columns (:func:`run_metrics`)."""

CONFIDENCE = 0.95
"""Default confidence level of :func:`bootstrap_ci` and :func:`summarize`."""

BOOTSTRAP_RESAMPLES = 9999
"""Bootstrap resamples per interval (scipy's default)."""

BOOTSTRAP_SEED = 0
"""Seed of the bootstrap's random generator: the same data gives the same interval every time."""

RUN_FILES = ("config.json", "flows.csv", "timeseries.npz", "counters.json")
"""The files of a results folder that :func:`controlplane.results.folder.load_run` reads."""

_TS_AXES = ("t_ps", "qp_ids", "qp_labels", "port_ids", "port_names")
_SWEEP_ID_COLUMNS = ("point", "experiment", "variant", "seed", "status", "error")


class MissingExtra(ModuleNotFoundError):
    """An optional dependency of the analysis extra is not installed."""


def require(module: str):
    """Import ``module`` (pandas, xarray, pyarrow, scipy.stats) or raise :class:`MissingExtra`
    saying how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(f"softdpu's analysis needs {module.split('.')[0]}, which is not installed: "
                           f"{INSTALL_HINT}", name=module) from e


# --- metrics of one run (numpy only) ------------------------------------------------------------

def run_metrics(run: Run) -> dict[str, float]:
    """The :data:`METRICS` of one loaded run, from :func:`controlplane.results.folder.summary` and
    ``counters.json``: FCT percentiles in µs, slowdown percentiles, aggregate goodput over the
    convergence window in Gbps, ``utilisation`` = goodput / bottleneck rate, Jain's index, and the
    end-of-run totals of drops, ECN marks, PFC pauses (``pfc_pauses``), retransmitted packets
    (``retransmitted``) and data-plane events. Undefined values (no finished flow, no bottleneck
    rate, a counter the run lacks) are nan."""
    s = summary(run)
    c = run.counters

    def count(key):
        return float(c[key]) if key in c and c[key] is not None else math.nan

    return {
        "fct_p50_us": s["fct_p50_ps"] / PS_PER_US,
        "fct_p99_us": s["fct_p99_ps"] / PS_PER_US,
        "slowdown_p50": s["slowdown_p50"],
        "slowdown_p95": s["slowdown_p95"],
        "slowdown_p99": s["slowdown_p99"],
        "goodput_gbps": s["aggregate_goodput_bps"] / 1e9,
        "utilisation": s["utilization"],
        "jain": s["jain_index"],
        "drops": float(s["drops"]),
        "ecn_marks": float(s["ecn_marks"]),
        "pfc_pauses": count("pfc_pauses"),
        "retx": count("retransmitted"),
        "events": count("events"),
    }


# --- loading --------------------------------------------------------------------------------------

def load(path: str | Path) -> Results:
    """A run, an experiment folder of variant runs, or a sweep folder, as a :class:`Results`.

    Raises:
        FileNotFoundError: the folder holds no run (``config.json``) and is not a sweep (``sweep.json``).
    """
    path = Path(path)
    if (path / "sweep.json").is_file():
        return _load_sweep(path)
    if (path / "config.json").is_file():
        config = _read_json(path / "config.json")
        key = path.resolve().name
        return Results(path, "run", {key: path}, {key: _run_ids(key, config)})
    found = sorted(p.parent for p in path.rglob("config.json"))
    if not found:
        raise FileNotFoundError(f"{path}: no results folder (config.json) and no sweep (sweep.json) in it")
    runs, ids = {}, {}
    for folder in found:
        key = folder.relative_to(path).as_posix()
        runs[key] = folder
        ids[key] = _run_ids(key, _read_json(folder / "config.json"))
    return Results(path, "experiment", runs, ids)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _run_ids(key: str, config: dict) -> dict:
    return {"run": key, "variant": key, "cc": config.get("cc"), "seed": config.get("seed")}


def _load_sweep(path: Path) -> Results:
    spec = _read_json(path / "sweep.json")
    statuses = {}                                  # sweep.csv's status of each point, if it has one
    if (path / "sweep.csv").is_file():
        import csv
        with open(path / "sweep.csv", newline="") as f:
            statuses = {row["point"]: row.get("status") for row in csv.DictReader(f) if "point" in row}
    runs, ids = {}, {}
    for point in spec.get("points", []):
        pid = str(point["id"])
        folder = path / "points" / pid
        meta = _read_json(folder / "point.json") if (folder / "point.json").is_file() else {}
        base = {"point": pid, "variant": point.get("variant", meta.get("variant")),
                "cc": None, "seed": point.get("seed", meta.get("seed")),
                "params": {k: _scalar(v) for k, v in point.get("params", meta.get("params", {})).items()},
                "status": meta.get("status", statuses.get(pid))}
        if all((folder / f).is_file() for f in RUN_FILES):
            base["cc"] = _read_json(folder / "config.json").get("cc")
            runs[pid], ids[pid] = folder, base
        elif folder.is_dir() and not (folder / "config.json").is_file():
            # a point written as an experiment folder (one run per variant below it)
            for sub in sorted(p.parent for p in folder.rglob("config.json")
                              if all((p.parent / f).is_file() for f in RUN_FILES)):
                rel = sub.relative_to(folder).as_posix()
                key = f"{pid}/{rel}"
                runs[key] = sub
                ids[key] = {**base, "variant": rel, "cc": _read_json(sub / "config.json").get("cc")}
        # a point without a complete results folder (it failed before writing one) is only in the index
    return Results(path, "sweep", runs, ids, sweep=spec)


def _scalar(value):
    """A swept value as a table cell: lists and dicts as their JSON text."""
    if isinstance(value, (list, dict)):            # as sweep.csv writes them: compact, sorted keys
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


class _LazyDatasets(Mapping):
    """Read-only mapping key -> xarray Dataset, each loaded on first access and kept."""

    def __init__(self, results: Results):
        self._results = results
        self._cache: dict = {}

    def __getitem__(self, key):
        if key not in self._results.runs:
            raise KeyError(key)
        if key not in self._cache:
            self._cache[key] = to_dataset(self._results.run(key))
        return self._cache[key]

    def __iter__(self) -> Iterator:
        return iter(self._results.runs)

    def __len__(self) -> int:
        return len(self._results.runs)

    def __repr__(self) -> str:
        return f"<timeseries of {len(self)} runs: {', '.join(list(self)[:6])}{' ...' if len(self) > 6 else ''}>"


class Results:
    """A run, an experiment or a sweep, loaded by :func:`load` (see the module docstring).

    Attributes:
        path: the folder given to :func:`load`.
        kind: ``"run"``, ``"experiment"`` or ``"sweep"``.
        runs: key -> run folder, in a stable order (a run: its folder name; an experiment: the
            variant's path below ``path``; a sweep: the point id).
        sweep: ``sweep.json`` (sweeps only, else None).
        params: the swept parameters' names (sweeps; else an empty list).
    """

    def __init__(self, path: Path, kind: str, runs: dict[str, Path], ids: dict[str, dict],
                 sweep: dict | None = None):
        self.path = path
        self.kind = kind
        self.runs = runs
        self._ids = ids
        self.sweep = sweep
        self.params: list[str] = list((sweep or {}).get("grid", {}))
        self._loaded: dict[str, Run] = {}

    def __repr__(self) -> str:
        return f"<softdpu {self.kind} {self.path}: {len(self.runs)} run(s)>"

    def run(self, key: str) -> Run:
        """One run folder read by :func:`controlplane.results.folder.load_run` (numpy arrays), cached."""
        if key not in self._loaded:
            self._loaded[key] = load_run(self.runs[key])
        return self._loaded[key]

    # --- id columns

    def _id_columns(self, key: str, taken: set[str]) -> dict:
        """The id columns of one run; a swept parameter whose name is a data column of the table
        (``taken``) is named ``param.<name>``."""
        ids = self._ids[key]
        if self.kind != "sweep":
            return {k: ids[k] for k in ("run", "variant", "cc", "seed")}
        out = {"point": ids["point"], "variant": ids["variant"], "cc": ids["cc"], "seed": ids["seed"]}
        for name in self.params:
            out[f"param.{name}" if name in taken or name in out else name] = ids["params"].get(name)
        out["status"] = ids["status"]
        return out

    # --- tables

    @cached_property
    def flows(self):
        """One row per message of every run (see the module docstring)."""
        pd = require("pandas")
        frames = []
        for key in self.runs:
            columns = self.run(key).flows
            frame = pd.DataFrame(columns)
            ids = self._id_columns(key, set(columns))
            for i, (name, value) in enumerate(ids.items()):
                frame.insert(i, name, value)
            if "fct_ps" in frame:
                fct = frame["fct_ps"].astype("float64")
                finished = np.isfinite(fct) & (fct >= 0)
                frame["fct_us"] = fct.where(finished) / PS_PER_US
                frame["finished"] = finished
            frames.append(frame)
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def counters(self):
        """One row per run: the id columns and every key of its ``counters.json``."""
        pd = require("pandas")
        rows = []
        for key in self.runs:
            counters = self.run(key).counters
            rows.append({**self._id_columns(key, set(counters)), **counters})
        return pd.DataFrame(rows)

    @cached_property
    def config(self) -> dict:
        """The run's resolved scenario; for an experiment or a sweep, key -> that dict."""
        if self.kind == "run":
            return self.run(next(iter(self.runs))).config
        return {key: self.run(key).config for key in self.runs}

    @cached_property
    def timeseries(self):
        """An xarray Dataset (a run), or a mapping key -> Dataset (see the module docstring)."""
        require("xarray")
        if self.kind == "run":
            return to_dataset(self.run(next(iter(self.runs))))
        return _LazyDatasets(self)

    @cached_property
    def index(self):
        """One row per run (a sweep: per point) with the summary :data:`METRICS`."""
        pd = require("pandas")
        if self.kind == "sweep":
            return read_index(self.path)
        rows = [{**self._id_columns(key, set()), **run_metrics(self.run(key))} for key in self.runs]
        return pd.DataFrame(rows)

    def timeseries_frame(self, variable: str):
        """One variable of every run's time series as a long DataFrame: the id columns, ``time_ps``,
        ``time_us``, ``qp`` and ``qp_label`` (or ``port`` and ``port_name``) and ``value``.

        Raises:
            KeyError: a run has no such variable (the message lists the ones it has).
        """
        pd = require("pandas")
        frames = []
        for key in self.runs:
            ts = self.run(key).ts
            if variable not in ts or variable in _TS_AXES:
                have = sorted(k for k in ts if k not in _TS_AXES)
                raise KeyError(f"{variable!r} is not a time-series variable of {key}; it has {', '.join(have)}")
            values = ts[variable]
            t = ts["t_ps"].astype(np.int64)
            if values.ndim == 1:
                cols = {"time_ps": t, "value": values}
            else:
                axis = "qp" if variable.startswith("qp_") else "port"
                ids_ = ts["qp_ids" if axis == "qp" else "port_ids"]
                labels = ts["qp_labels" if axis == "qp" else "port_names"].astype(str)
                s, n = values.shape
                cols = {"time_ps": np.repeat(t, n), axis: np.tile(ids_, s),
                        "qp_label" if axis == "qp" else "port_name": np.tile(labels, s), "value": values.ravel()}
            frame = pd.DataFrame(cols)
            frame.insert(1, "time_us", frame["time_ps"] / PS_PER_US)
            for i, (name, value) in enumerate(self._id_columns(key, set(frame)).items()):
                frame.insert(i, name, value)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()



def read_index(path: str | Path):
    """A sweep's index as a DataFrame: ``sweep.parquet`` when it exists and pyarrow is installed,
    else ``sweep.csv``; the text columns (point, experiment, variant, status, error) as text even
    when a value looks like a number."""
    pd = require("pandas")
    path = Path(path)
    parquet = path / "sweep.parquet"
    if parquet.is_file():
        try:
            require("pyarrow")
            return pd.read_parquet(parquet)
        except MissingExtra:
            pass
    text = {c: str for c in _SWEEP_ID_COLUMNS if c != "seed"}
    return pd.read_csv(path / "sweep.csv", dtype=text, keep_default_na=True)


def to_dataset(run: Run):
    """One run's ``timeseries.npz`` as an xarray Dataset (see the module docstring)."""
    xr = require("xarray")
    ts = run.ts
    t = ts["t_ps"].astype(np.int64)
    coords = {
        "time": ("time", t, {"units": "ps"}),
        "time_us": ("time", t / PS_PER_US, {"units": "µs"}),
        "qp": ("qp", ts["qp_ids"].astype(np.int64)),
        "qp_label": ("qp", ts["qp_labels"].astype(str)),
        "port": ("port", ts["port_ids"].astype(np.int64)),
        "port_name": ("port", ts["port_names"].astype(str)),
    }
    data, extra = {}, {}
    for key, values in ts.items():
        if key in _TS_AXES:
            continue
        attrs = {"units": _units(key)}
        if values.ndim == 2 and key.startswith("qp_"):
            data[key] = (("time", "qp"), values, attrs)
        elif values.ndim == 2 and key.startswith("port_"):
            data[key] = (("time", "port"), values, attrs)
        elif values.ndim == 1 and values.size == t.size:
            data[key] = (("time",), values, attrs)
        else:
            extra[key] = values               # an array on no time axis: kept under attrs
    cfg = run.config
    attrs = {"path": str(run.path), "name": cfg.get("name", run.path.name), "cc": str(cfg.get("cc")),
             "seed": cfg.get("seed", -1), "sample_interval_ps": cfg.get("sample_interval_ps", -1)}
    attrs.update({k: v.tolist() for k, v in extra.items()})
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for name in ("port_name", "qp_label"):
        labels = ds[name].values
        if len(set(labels.tolist())) == labels.size:      # unique labels: selectable by label too
            ds = ds.set_xindex(name)
    return ds


def _units(key: str) -> str:
    if key.endswith("_bps"):
        return "bit/s"
    if key.endswith("_bytes") and key != "port_tx_bytes":
        return "bytes"
    if key == "port_tx_bytes":
        return "bytes (cumulative)"
    if key.startswith("port_") or key == "qp_cnps":
        return "count (cumulative)"
    return ""


# --- statistics across seeds ----------------------------------------------------------------------

def bootstrap_ci(values, confidence: float = CONFIDENCE, method: str = "BCa",
                 n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of ``values`` (nan entries dropped).

    scipy.stats.bootstrap with ``method`` (BCa: bias-corrected and accelerated; "percentile" and
    "basic" also work), ``n_resamples`` resamples and a generator seeded with ``seed``, so the same
    values give the same interval. Fewer than two values: (nan, nan), there is no interval. All
    values equal: (v, v) (scipy's BCa is undefined there). If BCa still gives a non-finite bound
    (a degenerate bootstrap distribution), the percentile interval is returned.

    With few seeds (2 to 5) a bootstrap interval is narrower than the true 95 % interval: it
    resamples only the seeds there are. Treat it as a guide, and run more seeds for a claim.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    stats = require("scipy.stats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # scipy warns on small or degenerate samples
        res = stats.bootstrap((x,), np.mean, confidence_level=confidence, method=method,
                              n_resamples=n_resamples, rng=np.random.default_rng(seed))
        low, high = (float(v) for v in res.confidence_interval)
        if not (math.isfinite(low) and math.isfinite(high)) and method.lower() == "bca":
            res = stats.bootstrap((x,), np.mean, confidence_level=confidence, method="percentile",
                                  n_resamples=n_resamples, rng=np.random.default_rng(seed))
            low, high = (float(v) for v in res.confidence_interval)
    return low, high


def summarize(frame, by: list[str], metrics: list[str], confidence: float = CONFIDENCE, method: str = "BCa"):
    """Per group of ``by`` (in order of first appearance): ``points`` (rows in the group), and for
    each metric ``<metric>_n`` (finite values), ``<metric>_mean``, ``<metric>_ci_low``,
    ``<metric>_ci_high`` (:func:`bootstrap_ci`; nan with fewer than two values)."""
    pd = require("pandas")
    rows = []
    for keys, group in frame.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys))
        row["points"] = len(group)
        for m in metrics:
            x = pd.to_numeric(group[m], errors="coerce").to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            low, high = bootstrap_ci(x, confidence, method)
            row[f"{m}_n"] = int(x.size)
            row[f"{m}_mean"] = float(x.mean()) if x.size else math.nan
            row[f"{m}_ci_low"] = low
            row[f"{m}_ci_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)
