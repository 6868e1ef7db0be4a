"""Parameter sweeps: an experiment over a grid of values x seeds, each point one run, in parallel.

``softdpu sweep EXP --grid KEY=V1,V2 ... --seeds 1-20 --set ... -j N --out DIR`` (or
``--scheduler tcp://HOST:PORT`` for a Dask cluster, ``--spec sweep.toml`` for the same options
from a file). A grid key is anything ``--set`` takes (an experiment parameter, a dotted Scenario
field, ``cc_params.NAME``, ``CC.NAME``), its values typed and with units the same way
(controlplane/run/experiment.py ``parse_sets``, controlplane/config/values.py).

A **point** is one run:

- experiments that define ``scenarios(params, seed) -> {variant: Scenario}`` (incast, cc_compare,
  fct_slowdown, link_failure, reorder_cost, spraying_vs_ecmp): one point per grid combination x
  seed x variant, running that one scenario (a plain results folder, no plots);
- the others (the collective experiments and those that drive the data plane themselves:
  allreduce_busbw, alltoall_rails, placement, sharp_gain, qp_scale, replay, upcall_storm,
  virtualization_tax): one point per grid combination x seed, running the experiment's ``run()``
  (without plots) into the point folder; its ``variant`` is ``all``.

The output folder (DIR):

- ``sweep.json``: the experiment, the grid (typed values), the seeds, the --set items and the
  points: ``{"id", "params", "seed", "variant"}`` each.
- ``points/<id>/``: a point's results folder (config.json, flows.csv, counters.json,
  timeseries.npz; for a run() point the experiment's folder) and ``point.json``: the resolved
  config that was hashed, the swept params, seed, variant, status (ok / failed / budget) and
  error. ``<id>`` is the first 16 hex digits of the SHA-256 of the canonical JSON of the
  resolved config (experiment, variant, seed, softdpu version, and the resolved Scenario, or for
  a run() point the experiment's parameters and scenario overrides). A point's folder is written
  whole or not at all (a temporary folder renamed into place), so a point with a ``point.json``
  of status ok or budget is done: a rerun skips it (``--force`` reruns every point).
- ``sweep.csv`` (and ``sweep.parquet`` when pyarrow is installed): one row per point, sorted by
  the grid values, variant and seed: ``point, experiment, variant, seed``, one column per grid key
  (named as typed on --grid), ``status, error`` and the summary metrics of
  controlplane/results/folder.py ``summary()`` with units in their names, then the experiment's own
  metrics (its ``SWEEP_METRICS``, computed by its ``sweep_metrics(run_dir, params)``; fct_slowdown:
  the slowdown p50/p95/p99 of the small flows). Nothing in it depends on where
  or how fast a point ran: the same sweep gives the same bytes with any -j and on any cluster.
- ``wall.csv``: ``point, wall_s, worker``, the only non-deterministic file.

The worker runs a point in a temporary folder and sends the folder's files back, so Dask workers
need only the package (no shared file system); the client writes them.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import io
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.config.values import UsageError

#: the summary metrics of sweep.csv: column -> (key of results.summary(), scale)
METRICS = {
    "fct_p50_us": ("fct_p50_ps", 1e-6), "fct_p99_us": ("fct_p99_ps", 1e-6),
    "slowdown_p50": ("slowdown_p50", 1), "slowdown_p95": ("slowdown_p95", 1), "slowdown_p99": ("slowdown_p99", 1),
    "goodput_gbps": ("aggregate_goodput_bps", 1e-9), "utilisation": ("utilization", 1), "jain": ("jain_index", 1),
    "drops": ("drops", None), "ecn_marks": ("ecn_marks", None), "pfc_pauses": ("pfc_pauses", None),
    "retx": ("retransmitted", None), "events": ("events", None),
}
STATUSES = ("ok", "failed", "budget")
RUN_VARIANT = "all"             # the variant of a point that runs the experiment's run()
DONE = ("ok", "budget")         # statuses a rerun keeps


def version() -> str:
    try:
        from importlib.metadata import version as v
        return v("softdpu")
    except Exception:           # a source tree that is not installed
        return "unknown"


# ---------------------------------------------------------------------------------------- parsing
def split_values(text: str) -> list[str]:
    """``V1,V2,...`` -> the values, split at the commas outside brackets, braces and quotes
    (``[0.3],[0.5]`` is two lists; ``"a,b",c`` two strings)."""
    out, cur, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``1-20``, ``1,3,5`` or a mix (``1-3,7``): distinct integers >= 0, in order."""
    from controlplane.config.values import parse_int
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise UsageError(f"--seeds: an empty item in {text!r} (give 1-20 or 1,3,5)")
        lo, sep, hi = part.partition("-")
        try:
            if sep and lo.strip():
                a, b = parse_int("--seeds", lo.strip(), minimum=0), parse_int("--seeds", hi.strip(), minimum=0)
                if b < a:
                    raise UsageError(f"--seeds: the range {part!r} runs backwards")
                seeds += range(a, b + 1)
            else:
                seeds.append(parse_int("--seeds", part, minimum=0))
        except ValueError as e:
            raise UsageError(f"{e} (give 1-20 or 1,3,5)") from None
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise UsageError(f"--seeds: seed {dup[0]} is given twice in {text!r}")
    return seeds


def _typed(key: str, module, sets: list[str], raw: str, cc: str | None = None):
    """The typed value of ``--grid KEY=raw`` (as ``--set KEY=raw`` would give it): errors name the key."""
    from controlplane.run.experiment import parse_sets
    exp, over = parse_sets(sets + [f"{key}={raw}"], module, cc=cc)
    if key in over:
        return over[key]
    head, *rest = key.split(".")
    if head in exp:
        v = exp[head]
        for r in rest:
            v = v[r]
        return v
    if key == "cc_params":                  # a whole dict fans out into cc_params.NAME overrides
        return {k.partition(".")[2]: v for k, v in over.items() if k.startswith("cc_params.")}
    return raw


def parse_grid(items: list[str], module, sets: list[str] | None = None,
               cc: str | None = None) -> dict[str, list[tuple[str, object]]]:
    """``--grid KEY=V1,V2`` items -> {key: [(text, typed value), ...]} in the order given. A key is
    anything --set takes; each value is parsed as ``--set KEY=V`` would be (units, types), and an
    error names the key and the value."""
    sets = list(sets or [])
    set_keys = {s.partition("=")[0].strip() for s in sets}
    grid: dict[str, list[tuple[str, object]]] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        key, _, text = item.partition("=")
        key = key.strip()
        if not key or any(not p for p in key.split(".")):
            raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r} (empty name)")
        if key in grid:
            raise UsageError(f"--grid {key}: given twice (list every value in one --grid {key}=V1,V2,...)")
        if key in set_keys:
            raise UsageError(f"--grid {key}: also given with --set (a key is either fixed or swept)")
        texts = split_values(text)
        if any(t == "" for t in texts):
            raise UsageError(f"--grid {key}: an empty value in {text!r}")
        values = []
        for t in texts:
            try:
                values.append((t, _typed(key, module, sets, t, cc)))
            except UsageError as e:
                msg = str(e)
                raise UsageError(msg.replace("--set ", "--grid ", 1) if msg.startswith("--set ")
                                 else f"--grid {key}={t}: {msg}") from None
        canon = [_canon(v) for _, v in values]
        dup = [t for (t, _), c in zip(values, canon) if canon.count(c) > 1]
        if dup:
            raise UsageError(f"--grid {key}: the value {dup[0]!r} is given twice")
        grid[key] = values
    return grid


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def point_id(resolved: dict) -> str:
    """First 16 hex digits of SHA-256 of the canonical JSON (sorted keys, no spaces) of ``resolved``."""
    return hashlib.sha256(_canon(resolved).encode()).hexdigest()[:16]


def has_scenarios(module) -> bool:
    """The experiment defines ``scenarios(params, seed)``: one point per variant."""
    fn = getattr(module, "scenarios", None)
    if not callable(fn):
        return False
    try:
        return len(inspect.signature(fn).parameters) == 2
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------- the plan
@dataclass
class Point:
    id: str
    params: dict            # swept key -> typed value
    seed: int
    variant: str
    resolved: dict          # what was hashed
    task: dict              # what the worker needs
    order: tuple = ()
    exp: dict = field(default_factory=dict)     # the experiment's parameters (for its sweep_metrics)


@dataclass
class Plan:
    experiment: str
    grid: dict              # key -> [(text, typed)]
    seeds: list[int]
    sets: list[str]
    cc: str | None
    kind: str               # "scenario" or "run"
    points: list[Point] = field(default_factory=list)


def _sort_key(v):
    if isinstance(v, bool):
        return (0, int(v), "")
    if isinstance(v, (int, float)):
        return (0, v, "")
    if v is None:
        return (1, 0, "")
    return (2, 0, v if isinstance(v, str) else _canon(v))


def plan(experiment: str, grid_items: list[str], seeds: list[int], sets: list[str] | None = None,
         cc: str | None = None) -> Plan:
    """Every point of the sweep, resolved and hashed, sorted by grid values, variant and seed.
    Every configuration error (a bad key or value, a scenario that does not validate) is raised
    here, before anything runs."""
    from controlplane.run.experiment import apply_overrides, parse_sets
    module = _module(experiment)
    sets = list(sets or [])
    grid = parse_grid(grid_items, module, sets, cc)
    kind = "scenario" if has_scenarios(module) else "run"
    p = Plan(experiment, grid, list(seeds), sets, cc, kind)
    keys = list(grid)
    ver = version()
    seen: dict[str, Point] = {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        items = sets + [f"{k}={t}" for k, (t, _) in zip(keys, combo)]
        exp, over = parse_sets(items, module, cc=cc)
        swept = {k: v for k, (_, v) in zip(keys, combo)}
        for seed in seeds:
            if kind == "scenario":
                try:
                    variants = module.scenarios({**module.PARAMS, **exp}, seed)
                except (ValueError, KeyError, TypeError) as e:
                    raise UsageError(f"{experiment}: {_where(swept, seed)}: {e}") from None
                for name, sc in variants.items():
                    try:
                        sc = apply_overrides(sc, over)
                    except ValueError as e:
                        raise UsageError(f"{experiment} variant {name}, {_where(swept, seed)}: {e}") from None
                    d = json.loads(_canon(sc.to_dict()))
                    resolved = {"experiment": experiment, "variant": name, "seed": seed, "version": ver,
                                "scenario": d}
                    pid = point_id(resolved)
                    task = {"kind": "scenario", "scenario": d}
                    _add(seen, Point(pid, swept, seed, name, resolved, task, exp={**module.PARAMS, **exp}))
            else:
                params = json.loads(_canon({**module.PARAMS, **exp}))
                resolved = {"experiment": experiment, "variant": RUN_VARIANT, "seed": seed, "version": ver,
                            "params": params, "overrides": json.loads(_canon(over))}
                pid = point_id(resolved)
                task = {"kind": "run", "experiment": experiment, "params": json.loads(_canon(exp)),
                        "overrides": json.loads(_canon(over)), "seed": seed}
                _add(seen, Point(pid, swept, seed, RUN_VARIANT, resolved, task))
    for pt in seen.values():
        pt.order = (tuple(_sort_key(pt.params[k]) for k in keys), pt.variant, pt.seed)
    p.points = sorted(seen.values(), key=lambda x: x.order)
    return p


def _add(seen: dict, pt: Point) -> None:
    if pt.id in seen:           # two grid values that resolve to the same run (e.g. 1e3 and 1000 as text)
        other = seen[pt.id]
        raise UsageError(f"points {_where(other.params, other.seed)} and {_where(pt.params, pt.seed)} "
                         f"(variant {pt.variant}) are the same run")
    seen[pt.id] = pt


def _where(params: dict, seed: int) -> str:
    return ", ".join([f"{k}={_text(v)}" for k, v in params.items()] + [f"seed {seed}"])


def _module(experiment: str):
    from controlplane.run.cli import _experiments
    exps = _experiments()
    if experiment not in exps:
        from controlplane.config.values import closest
        near = closest(experiment, exps)
        raise UsageError(f"unknown experiment {experiment!r}" + (f" (did you mean {near[0]}?)" if near else "")
                         + f"; known: {', '.join(sorted(exps))}")
    return importlib.import_module(f"experiments.{experiment}")


# ---------------------------------------------------------------------------------------- a point
def run_point(task: dict) -> dict:
    """Run one point in a temporary folder (in whichever worker) and return its files:
    ``{"status", "error", "files": {relative path: bytes}}``. A run that fails or reaches its
    budget is a point result (with the files written up to then), not an exception."""
    from dataplane.sim import BudgetExceeded
    from controlplane.run.executor import error_text
    status, error = "ok", None
    with tempfile.TemporaryDirectory(prefix="softdpu-point-") as tmp:
        try:
            if task["kind"] == "scenario":
                from controlplane.run.scenario import Scenario
                Scenario.from_dict(task["scenario"]).run(tmp)
            else:
                module = importlib.import_module(f"experiments.{task['experiment']}")
                module.run(tmp, task["params"], task["overrides"], seed=task["seed"], plots=False, capture=None)
        except BudgetExceeded as e:
            status, error = "budget", error_text(e)
        except Exception as e:        # noqa: BLE001 - a failed point is recorded, the sweep goes on
            status, error = "failed", error_text(e)
        root = Path(tmp)
        files = {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}
    return {"status": status, "error": error, "files": files}


def _point_json(pt: Point, status: str, error: str | None) -> bytes:
    doc = {"id": pt.id, "params": pt.params, "seed": pt.seed, "variant": pt.variant, "status": status,
           "error": error, "resolved": pt.resolved}
    return (json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def read_point(folder: Path) -> dict | None:
    """A point folder's point.json, or None if there is none (or it cannot be read)."""
    try:
        return json.loads((folder / "point.json").read_text())
    except (OSError, ValueError):
        return None


def _write_point(root: Path, pt: Point, result: dict) -> None:
    """Write the point's files into points/<id>.tmp, then rename it to points/<id> (whole or nothing)."""
    final = root / "points" / pt.id
    tmp = root / "points" / f"{pt.id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rel, data in result["files"].items():
        f = tmp / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    (tmp / "point.json").write_bytes(_point_json(pt, result["status"], result["error"]))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def _remove_partial_points(root: Path) -> None:
    """Remove the points/<id>.tmp folders of points whose writing was cut short: their point.json
    would otherwise make them look done (the point itself is run again)."""
    for d in (root / "points").glob("*.tmp"):
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------- the sweep
@dataclass
class Report:
    out: Path
    total: int
    ran: int
    skipped: int
    failed: int             # points whose status is not ok (failed or budget)
    statuses: dict


def run(p: Plan, out: Path, executor, force: bool = False, progress: bool | None = None) -> Report:
    """Run the points of ``p`` not yet done in ``out`` on ``executor``; write sweep.json,
    points/<id>/, sweep.csv (sweep.parquet) and wall.csv. Returns what happened."""
    out = Path(out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    old = _read_json(out / "sweep.json")
    if old is not None and old.get("experiment") != p.experiment and not force:
        raise UsageError(f"--out {out}: holds a sweep of {old.get('experiment')!r}, not {p.experiment!r} "
                         f"(use another folder, or --force to replace it)")
    ids = {pt.id for pt in p.points}
    _remove_partial_points(out)                 # left by a run killed while it wrote a point
    if force:
        for d in (out / "points").iterdir():
            if d.is_dir() and d.name not in ids:
                shutil.rmtree(d)
    _write_sweep_json(out, p)
    todo = []
    for pt in p.points:
        doc = None if force else read_point(out / "points" / pt.id)
        if doc is None or doc.get("status") not in DONE:
            todo.append(pt)
    walls = _read_wall(out / "wall.csv")
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm
    bar = tqdm(total=len(p.points), initial=len(p.points) - len(todo), desc=f"sweep {p.experiment}", unit="point",
               disable=not show, file=sys.stderr, dynamic_ncols=True)
    failures = 0
    try:
        for o in executor.run(run_point, [pt.task for pt in todo], quiet=True, keys=[pt.id for pt in todo]):
            pt = todo[o.index]
            result = o.value if o.ok else {"status": "failed", "error": o.error, "files": {}}
            _write_point(out, pt, result)
            walls[pt.id] = (f"{o.wall_s:.3f}", o.worker)
            if result["status"] != "ok":
                failures += 1
                bar.set_postfix_str(f"{failures} failed", refresh=False)
            bar.update(1)
    finally:
        bar.close()
        _remove_partial_points(out)             # Ctrl-C between a point's write and its rename
        _write_wall(out / "wall.csv", p, walls)
    rows = index_rows(p, out)
    write_index(out, p, rows)
    statuses = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    return Report(out, len(p.points), len(todo), len(p.points) - len(todo), len(rows) - statuses["ok"], statuses)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_sweep_json(out: Path, p: Plan) -> None:
    doc = {"experiment": p.experiment, "kind": p.kind, "version": version(),
           "grid": {k: [v for _, v in vals] for k, vals in p.grid.items()},
           "seeds": p.seeds, "sets": {s.partition("=")[0].strip(): s.partition("=")[2] for s in p.sets},
           "cc": p.cc,
           "points": [{"id": pt.id, "params": pt.params, "seed": pt.seed, "variant": pt.variant} for pt in p.points]}
    (out / "sweep.json").write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")


def _read_wall(path: Path) -> dict:
    try:
        with open(path, newline="") as fh:
            return {r["point"]: (r["wall_s"], r["worker"]) for r in csv.DictReader(fh)}
    except (OSError, KeyError):
        return {}


def _write_wall(path: Path, p: Plan, walls: dict) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["point", "wall_s", "worker"])
        for pt in p.points:
            if pt.id in walls:
                w.writerow([pt.id, *walls[pt.id]])


def point_metrics(folder: Path) -> dict:
    """The METRICS of a point folder that is a results folder (nan where it is not, or a metric
    does not apply: no samples, no finished flows)."""
    from controlplane.results.folder import load_run, summary
    try:
        s = summary(load_run(folder))
    except Exception:           # noqa: BLE001 - not a results folder (a run() point, a failed point)
        return {m: math.nan for m in METRICS}
    out = {}
    for col, (key, scale) in METRICS.items():
        v = s.get(key)
        if v is None:
            out[col] = math.nan
        elif scale is None:
            out[col] = v if isinstance(v, float) and math.isnan(v) else int(v)
        else:
            out[col] = float(v) * scale
    return out


def index_rows(p: Plan, out: Path) -> list[dict]:
    """One dict per point (the columns of sweep.csv), in the plan's order."""
    rows = []
    module = _module(p.experiment)
    for pt in p.points:
        folder = out / "points" / pt.id
        doc = read_point(folder) or {"status": "failed", "error": "no point.json (the point did not run)"}
        row = {"point": pt.id, "experiment": p.experiment, "variant": pt.variant, "seed": pt.seed}
        row.update({k: pt.params[k] for k in p.grid})
        row.update({"status": doc.get("status"), "error": doc.get("error") or ""})
        row.update(point_metrics(folder))
        row.update(experiment_point_metrics(module, folder, pt))
        rows.append(row)
    return rows


def extra_metrics(experiment: str) -> tuple:
    """The experiment's own metric columns of sweep.csv (its ``SWEEP_METRICS``, after
    :data:`METRICS`), e.g. fct_slowdown's slowdown percentiles of the small flows; () if none."""
    try:
        module = _module(experiment)
    except UsageError:
        return ()
    return tuple(getattr(module, "SWEEP_METRICS", ()))


def extra_metric_labels(experiment: str) -> dict:
    """:func:`extra_metrics` -> the label of its plot panel, None for a column not drawn by default."""
    try:
        metrics = getattr(_module(experiment), "SWEEP_METRICS", {})
    except UsageError:
        return {}
    return dict(metrics) if isinstance(metrics, dict) else {m: m for m in metrics}


def experiment_point_metrics(module, folder: Path, pt: Point) -> dict:
    """The experiment's ``sweep_metrics(run_dir, params)`` of a scenario point that ran (nan
    for a point without a results folder, or a run() point)."""
    names = tuple(getattr(module, "SWEEP_METRICS", ()))
    if not names:
        return {}
    out = {m: math.nan for m in names}
    if pt.variant == RUN_VARIANT or not (folder / "config.json").is_file():
        return out
    try:
        got = module.sweep_metrics(folder, pt.exp)
    except (OSError, ValueError, KeyError):     # a point whose files do not give the metric
        return out
    out.update({m: got[m] for m in names if m in got})
    return out


def _text(v) -> str:
    """A cell of sweep.csv: integers as digits, floats shortest round-trip (nan: empty), booleans
    true/false, strings as they are, lists and dicts as compact JSON."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (int, str)):
        return str(v)
    return _canon(v)


def write_index(out: Path, p: Plan, rows: list[dict]) -> Path:
    """sweep.csv, and sweep.parquet when pyarrow can be imported."""
    cols = ["point", "experiment", "variant", "seed", *p.grid, "status", "error", *METRICS,
            *extra_metrics(p.experiment)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_text(r[c]) for c in cols])
    (out / "sweep.csv").write_text(buf.getvalue())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return out / "sweep.csv"
    data = {}
    for c in cols:
        vals = [r[c] for r in rows]
        if c in p.grid and any(isinstance(v, (list, dict)) for v in vals):
            vals = [_canon(v) for v in vals]
        data[c] = vals
    pq.write_table(pa.table(data), out / "sweep.parquet")
    return out / "sweep.csv"


# ---------------------------------------------------------------------------------------- spec file
def read_spec(path: str) -> dict:
    """``--spec sweep.toml`` (or .json): ``experiment``, ``grid`` (key = [values] or "V1,V2"),
    ``seeds`` ("1-20" or [1, 2]), ``set`` (a table like --config), ``out``, ``jobs``, ``scheduler``,
    ``cc``. Returns them as command-line texts: {"experiment", "grid": [items], "seeds": text,
    "set": [items], "out", "jobs", "scheduler", "cc"}."""
    text = Path(path).read_text()
    try:
        if path.endswith(".toml"):
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"--spec {path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--spec {path}: must hold a table of options")
    known = {"experiment", "grid", "seeds", "set", "out", "jobs", "scheduler", "cc"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"--spec {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")

    def text_of(v):
        if v is None:
            return "none"
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v)

    grid = []
    g = data.get("grid", {})
    if not isinstance(g, dict):
        raise UsageError(f"--spec {path}: grid must be a table of key = [values]")
    for k, vals in _flatten(g):
        if isinstance(vals, list):
            grid.append(f"{k}={','.join(text_of(v) for v in vals)}")
        else:
            grid.append(f"{k}={text_of(vals)}")
    sets = [f"{k}={text_of(v)}" for k, v in _flatten(data.get("set", {}))]
    seeds = data.get("seeds")
    if isinstance(seeds, list):
        seeds = ",".join(str(s) for s in seeds)
    elif isinstance(seeds, int):
        seeds = str(seeds)
    return {"experiment": data.get("experiment"), "grid": grid, "seeds": seeds, "set": sets, "out": data.get("out"),
            "jobs": data.get("jobs"), "scheduler": data.get("scheduler"), "cc": data.get("cc")}


def _flatten(d: dict, prefix: str = ""):
    """Nested TOML tables as dotted keys ({"workload": {"load": [..]}} -> "workload.load")."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


__all__ = ["plan", "run", "run_point", "parse_grid", "parse_seeds", "split_values", "point_id", "read_spec",
           "METRICS", "Plan", "Point", "Report"]
