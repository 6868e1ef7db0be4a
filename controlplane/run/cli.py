"""The ``softdpu`` command: run experiments, re-plot results, list what exists, benchmark."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def _experiments() -> dict[str, str]:
    import experiments
    out = {}
    for m in pkgutil.iter_modules(experiments.__path__):
        if m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"experiments.{m.name}")
        if hasattr(mod, "run") and hasattr(mod, "Params"):
            out[m.name] = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
    return out


BENCHMARKS = ["permutation-128", "permutation-1024", "cc-callback", "cc-cost", "capture", "multipath", "vswitch",
              "sweep-overhead", "scale", "record", "history", "partitions", "pcap", "ack-coalescing"]
#: --set keys of the benchmarks that take them (softdpu bench scale / record / partitions)
BENCH_SET_KEYS = {"scale": ("max_k", "min_k", "size_bytes"), "record": ("max_k",),
                  "partitions": ("k", "partitions", "size_bytes"), "ack-coalescing": ("k", "size_bytes")}


def cmd_list(a) -> int:
    from congestion import registry
    from controlplane.run.experiment import _cc_defaults
    exps = _experiments()
    if a.json:
        out = {"experiments": {}, "ccs": {}, "benchmarks": BENCHMARKS}
        for name in sorted(exps):
            mod = importlib.import_module(f"experiments.{name}")
            out["experiments"][name] = {"summary": exps[name], "params": mod.PARAMS}
        for cc in registry.available():
            out["ccs"][cc.name] = {"summary": cc.summary, "source": cc.source, "target": cc.target,
                                   "distribution": cc.distribution, "error": cc.error,
                                   "params": _cc_defaults(cc.name) if cc.error is None else None}
        print(json.dumps(out, indent=2, sort_keys=True, default=list))
        return 0
    print("experiments (softdpu run NAME --help lists its parameters):")
    for name, doc in sorted(exps.items()):
        print(f"  {name:20s} {doc}")
    print("congestion control (--cc NAME, --cc path/to/file.py:ClassName or --cc package.module:ClassName):")
    for cc in registry.available():
        if cc.error is not None:
            print(f"  {cc.name:20s} (cannot be used: {cc.error})")
        elif cc.source == "entry point":
            print(f"  {cc.name:20s} {cc.summary} [from {cc.distribution}]")
        else:
            print(f"  {cc.name:20s} {cc.summary}")
    print(f"benchmarks: softdpu bench [{'|'.join(BENCHMARKS)}] [--cc-impl c|python]")
    return 0


def _default_text(name: str, value) -> str:
    from controlplane.config.units import format_quantity, unit_kind
    kind = unit_kind(name)
    if kind and isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return format_quantity(int(value), kind)
    if isinstance(value, (list, tuple)):
        return ",".join(_default_text(name, v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return json.dumps(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def experiment_help(name: str, mod, cc: str | None = None) -> str:
    """``softdpu run NAME --help``: the experiment's docstring, a table of its parameters (type and
    bounds, unit, default, meaning: generated from its Params model), its CCs' parameters and the
    scenario fields."""
    from controlplane.run.experiment import _cc_defaults, experiment_ccs, params_help, scenario_kinds
    lines = [f"softdpu run {name} [--set NAME=VALUE ...]", "", (mod.__doc__ or "").strip(), "",
             f"experiment parameters (--set NAME=VALUE; JSON Schema: softdpu schema --experiment {name}):"]
    lines += params_help(mod)
    try:
        ccs = experiment_ccs(mod, {}, cc)
    except ValueError:
        ccs = None
    if ccs:
        lines += ["", "congestion-control parameters (--set cc_params.NAME=VALUE: every variant whose CC has NAME; "
                  "--set CC.NAME=VALUE: that CC's variants):"]
        from congestion.registry import load_class
        for cc in dict.fromkeys(ccs):
            try:
                d, model = _cc_defaults(cc), load_class(cc).params_model()
            except ValueError:
                continue
            if model is not None and d:           # the declared model: kind, unit, default, bound, meaning
                lines += [f"  {cc}:"] + [f"    {row}" for row in model.help_lines()]
                continue
            lines.append(f"  {cc}: " + (", ".join(f"{k}={_default_text(k, v)}" for k, v in d.items()) or "(none)"))
    lines += ["", "scenario fields (--set FIELD=VALUE, a section's key dotted: --set ecn.kmin_bytes=100KB;"
              " a partial section merges with its defaults):",
              "  " + ", ".join(f"{k} ({kd.describe(k)})" for k, kd in scenario_kinds().items()), "",
              "values: booleans true/false/yes/no/on/off/1/0; integers exact (8, 1e6); names ending in _bps take"
              " 100G/100Gbps, _bytes 16MB/16MiB, _ps 500ns/1us/2ms (converted exactly); lists a,b or [\"a\",\"b\"]"]
    return "\n".join(lines)


def _check_out(path: Path, option: str = "--out") -> None:
    """The folder can be made and written, or a UsageError naming the option."""
    import os
    from controlplane.config.values import UsageError
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option}: cannot create the folder {path} ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: the folder {path} is not writable")


def _experiment_module(name: str, exps: dict | None = None):
    """The experiment module ``name``, or a UsageError with the closest names."""
    from controlplane.config.values import UsageError, closest
    exps = _experiments() if exps is None else exps
    if name not in exps:
        near = closest(name, exps)
        raise UsageError(f"unknown experiment {name!r}" + (f" (did you mean {near[0]}?)" if near else "")
                         + f"; known: {', '.join(sorted(exps))}")
    return importlib.import_module(f"experiments.{name}")


def cmd_run(a) -> int:
    from controlplane.run.experiment import capture_arg, parse_sets
    from controlplane.config.values import UsageError
    exps = _experiments()
    if a.experiment is None:
        if a.help:
            print(a.parser.format_help() + "\nexperiments: " + ", ".join(sorted(exps)))
            return 0
        raise UsageError(f"run: which experiment? known: {', '.join(sorted(exps))}")
    mod = _experiment_module(a.experiment, exps)
    if a.help:
        print(a.parser.format_help() + "\n" + experiment_help(a.experiment, mod, a.cc))
        return 0
    exp, over = parse_sets(config_items(a.config, mod) + a.set, mod, cc=a.cc)
    capture = capture_arg(a.pcap, a.pcap_filter)
    if a.pcap is not None:
        _check_out(Path(a.pcap).resolve().parent, "--pcap")
    out = Path(a.out or f"results/{a.experiment}")
    _check_out(out)
    from controlplane.run import executor
    with executor.make(a.jobs) as ex, executor.use(ex):
        mod.run(str(out), exp, over, seed=a.seed, plots=not a.no_plots, capture=capture)
    return 0


def cmd_sweep(a) -> int:
    """softdpu sweep: the points of a grid x seeds, each one run, on local workers or a Dask cluster."""
    from controlplane.run import executor, sweep
    from controlplane.config.values import UsageError
    spec = sweep.read_spec(a.spec) if a.spec else {"grid": [], "set": []}
    name = a.experiment or spec.get("experiment")
    if name is None:
        if a.help:
            print(a.parser.format_help())
            return 0
        raise UsageError(f"sweep: which experiment? known: {', '.join(sorted(_experiments()))}")
    if a.help:
        print(a.parser.format_help() + "\n" + experiment_help(name, sweep._module(name)))
        return 0
    # the command line wins over the spec file: a --grid key replaces the spec's, --set items come after its
    cli_keys = {g.partition("=")[0].strip() for g in a.grid}
    grid = [g for g in spec["grid"] if g.partition("=")[0].strip() not in cli_keys] + a.grid
    seeds = sweep.parse_seeds(a.seeds or spec.get("seeds") or "1")
    cli_sets = {s.partition("=")[0].strip() for s in a.set}
    sets = [s for s in spec["set"] if s.partition("=")[0].strip() not in cli_sets] + a.set
    plan = sweep.plan(name, grid, seeds, sets, cc=a.cc or spec.get("cc"))
    out = Path(a.out or spec.get("out") or f"results/sweep-{name}")
    _check_out(out)
    jobs = a.jobs if a.jobs is not None else spec.get("jobs")
    scheduler = a.scheduler or spec.get("scheduler")
    with executor.make(jobs, scheduler) as ex:
        where = f"Dask scheduler {scheduler} ({ex.jobs} worker threads)" if scheduler else \
            f"{ex.jobs} local worker process{'es' if ex.jobs > 1 else ''}" if ex.jobs > 1 else "this process"
        combos = _combos(plan)
        per = len(plan.points) // max(1, combos * len(seeds))
        print(f"sweep {name}: {len(plan.points)} points = {combos} grid point(s) x {len(seeds)} seed(s) x "
              + (f"{per} variant(s)" if plan.kind == "scenario" else "the experiment's run()")
              + f", on {where} -> {out}", file=sys.stderr)
        rep = sweep.run(plan, out, ex, force=a.force, progress=a.progress)
    st = rep.statuses
    print(f"sweep {name}: {rep.total} points: {rep.ran} run, {rep.skipped} already done; ok {st['ok']}, "
          f"failed {st['failed']}, budget {st['budget']}; index {out / 'sweep.csv'}")
    if rep.failed:
        for r in sweep.index_rows(plan, out):
            if r["status"] != "ok":
                print(f"  {r['status']}: point {r['point']} ({sweep._where({k: r[k] for k in plan.grid}, r['seed'])}, "
                      f"variant {r['variant']}): {r['error']}", file=sys.stderr)
    return min(rep.failed, 125)


def _combos(plan) -> int:
    n = 1
    for vals in plan.grid.values():
        n *= len(vals)
    return n


def cmd_plot(a) -> int:
    root = Path(a.results)
    if (root / "sweep.json").is_file():
        return _plot_sweep(root, a.metrics)
    if a.metrics:
        from controlplane.config.values import UsageError
        raise UsageError(f"plot: --metrics is for a sweep folder (with sweep.json); {root} is not one")
    from controlplane.results.plots import plot_compare, plot_run
    if (root / "config.json").exists():
        runs = [root]
    else:
        runs = sorted(p.parent for p in root.glob("*/config.json"))
    if not runs:
        print(f"softdpu: no results folder (config.json) in {root}", file=sys.stderr)
        return 2
    for r in runs:
        for png in plot_run(r):
            print(png)
    if len(runs) > 1 and _is_cc_compare(runs):
        # the figures `softdpu run cc_compare` draws: one per question, one panel per algorithm
        from controlplane.results.plots import plot_questions
        from experiments.cc_compare import TITLE
        for png in plot_questions(runs, root, "cc_compare", title=TITLE):
            print(png)
    elif len(runs) > 1:
        print(plot_compare(runs, root / "compare.png"))
    return 0


def _is_cc_compare(runs: list[Path]) -> bool:
    """Whether every run folder is a variant of a cc_compare run (its scenario is named
    ``cc_compare-<variant>``, experiments/cc_compare.py scenarios())."""
    for r in runs:
        try:
            name = json.loads((r / "config.json").read_text()).get("name", "")
        except (OSError, ValueError):
            return False
        if not (isinstance(name, str) and name.startswith("cc_compare-")):
            return False
    return True


def _plot_sweep(root: Path, metrics: str | None) -> int:
    """``softdpu plot DIR`` on a sweep: metrics against each swept parameter, mean and 95 % CI
    across seeds (controlplane/results/sweep_plots.py); needs the analysis extra."""
    from controlplane.results.analysis import INSTALL_HINT, MissingExtra
    from controlplane.config.values import UsageError
    try:
        from controlplane.results.sweep_plots import plot_sweep
        chosen = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
        pngs, table, notes = plot_sweep(root, chosen)
    except MissingExtra as e:                # pandas / scipy missing: say which extra to install
        raise UsageError(f"plot: a sweep's plots need the analysis extra ({e.name} is missing): {INSTALL_HINT}") from None
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for png in pngs:
        print(png)
    print(table)
    return 0


def _bench_settings(a) -> dict:
    """softdpu bench scale|record|partitions|ack-coalescing: their --set keys (BENCH_SET_KEYS) and --max-k N."""
    from controlplane.config.values import UsageError, closest, parse_int
    keys = BENCH_SET_KEYS.get(a.scenario, ())
    out: dict = {}
    for item in a.set:
        key, eq, text = item.partition("=")
        if not eq:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        if key not in keys:
            near = closest(key, keys)
            raise UsageError(f"softdpu bench {a.scenario}: no setting {key!r}"
                             + (f" (known: {', '.join(keys)})" if keys else " (it takes no --set)")
                             + (f"; did you mean {near[0]!r}?" if near else ""))
        out[key] = parse_int(key, text, minimum=1)
    if a.max_k is not None:
        if "max_k" not in keys:
            raise UsageError(f"softdpu bench {a.scenario}: --max-k is for bench scale and bench record")
        out["max_k"] = a.max_k
    return out


def cmd_bench(a) -> int:
    from controlplane.run import bench
    if a.scenario in ("scale", "record", "history", "partitions", "ack-coalescing"):
        return _cmd_bench_scale(a)
    if a.set or a.max_k is not None:
        from controlplane.config.values import UsageError
        raise UsageError(f"softdpu bench {a.scenario} takes no --set or --max-k (bench scale and record do)")
    special = {"cc-callback": bench.run_cc_callback, "cc-cost": bench.run_cc_cost, "capture": bench.run_capture,
               "multipath": bench.run_multipath, "vswitch": bench.run_vswitch,
               "sweep-overhead": bench.run_sweep_overhead, "pcap": bench.run_pcap}
    if a.scenario in special:
        print(bench.format_row(special[a.scenario](seed=a.seed)))
        return 0
    for impl in a.cc_impl:
        r = bench.run(a.scenario, impl, seed=a.seed)
        print(f"{a.scenario} (cc_impl={impl}):")
        print(bench.format_row(r))
    return 0


def _cmd_bench_scale(a) -> int:
    from controlplane.run import bench, bench_history, bench_scale
    path = Path(a.history) if a.history else bench_history.HISTORY
    if a.scenario == "history":
        if not path.is_file():
            raise ValueError(f"no benchmark history at {path} (make bench-record writes it)")
        print(bench_history.format_table(bench_history.load(path), a.last))
        return 0
    settings = _bench_settings(a)
    if a.scenario == "record":
        bench_history.record(path, settings.get("max_k", bench_history.RECORD_DEFAULT_MAX_K), a.note or "")
        return 0
    if a.scenario == "ack-coalescing":
        k, size = settings.get("k", 16), settings.get("size_bytes", 2_000_000)
        print(f"permutation on a k = {k} fat-tree ({size:,} B per host, DCQCN + ECMP, 100 Gb/s, 1 us links), the "
              f"receivers ACKing every n-th packet; ref = the first row; |dFCT| = per flow, |FCT / FCT_ref - 1|")
        print(bench_scale.format_ack_header(), flush=True)
        bench_scale.ack_coalescing(k, size, seed=a.seed,
                                   report=lambda r: print(bench_scale.format_ack_row(r), flush=True))
        return 0
    if a.scenario == "partitions":
        k = settings.get("k", 16)
        prof = bench_scale.partition_profile(k, settings.get("partitions"), settings.get("size_bytes", 2_000_000),
                                             seed=a.seed)
        print(bench.format_row({f"profile_{key}": v for key, v in prof.items() if key != "per_window"}))
        return 0
    print(f"permutation on a k-ary fat-tree ({settings.get('size_bytes', 2_000_000):,} B per host, DCQCN + ECMP, "
          f"100 Gb/s, 1 us links); each k in its own process; run = the simulation (net.run), wall = build + run")
    print(bench_scale.format_scale_header(), flush=True)
    bench_scale.run_scale(max_k=settings.get("max_k", bench_scale.DEFAULT_MAX_K), min_k=settings.get("min_k", 8),
                          size_bytes=settings.get("size_bytes", 2_000_000), seed=a.seed,
                          report=lambda r: print(bench_scale.format_scale_row(r), flush=True))
    return 0


def _seed(text: str) -> int:
    """--seed: an integer >= 0 (numpy's generators take no negative seed)."""
    from controlplane.config.values import parse_int
    try:
        return parse_int("--seed", text, minimum=0)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _jobs(text: str) -> int:
    """-j: an integer >= 1."""
    from controlplane.config.values import parse_int
    try:
        return parse_int("-j", text, minimum=1)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a command-line error is a UsageError (one line, exit 2), not usage + exit."""

    def error(self, message):
        from controlplane.config.values import UsageError
        import re
        message = re.sub(r"^argument (\S+): (\1 )", r"\2", message)      # "argument --seed: --seed must ..."
        where = f"{self.prog.split()[-1]}: " if " " in self.prog else ""
        raise UsageError(f"{where}{message} (see {self.prog} --help)")


EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130

EPILOG = """exit status: 0 done; 1 a run stopped by its congestion control or the data plane (one line naming
the CC, QP and event; the results up to then are written); 2 a usage error (one line naming what
was typed); 70 an internal error (a bug: the message and traceback say where); 130 interrupted.
--debug prints the traceback of any error."""


SWEEP_EPILOG = """exit status: the number of points that did not end ok (failed, or stopped by their run
budget), at most 125; 0 when every point is ok. 2 a usage error (one line naming what was typed),
70 an internal error, 130 interrupted (rerun the same command to resume: points already done are
skipped). The folder: sweep.json, points/<id>/ (a results folder and point.json each), sweep.csv
(one row per point: parameters, seed, variant, status, summary metrics), wall.csv (wall times)."""


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("softdpu")
    except Exception:           # running from a source tree that is not installed
        return "unknown"


def config_items(path: str | None, module=None) -> list[str]:
    """``--config FILE`` (JSON, or TOML by the .toml suffix) as ``--set`` items, given before the
    command line's own: a key of the file is an experiment parameter or a Scenario field, as with
    --set, and a --set of the same key wins. A Scenario section given as a table/object replaces
    the section (a whole topology or workload); an experiment's dict parameter is merged key by key."""
    if path is None:
        return []
    from controlplane.config.values import UsageError
    text = Path(path).read_text()
    try:
        if path.endswith(".toml"):
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not a number")))
    except ValueError as e:
        raise UsageError(f"--config {path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: must hold an object (a table) of parameters, got {type(data).__name__}")

    def text_of(v):
        if v is None:
            return "none"
        return v if isinstance(v, str) else json.dumps(v)

    from controlplane.run.experiment import json_types, params_model, scenario_kinds
    kinds = scenario_kinds()
    model = params_model(module)
    props = model.schema()["properties"] if model is not None else {}
    items = []
    for key, value in data.items():
        is_bool = json_types(props[key]) == {"boolean"} if key in props else getattr(kinds.get(key), "base", "") == "bool"
        if is_bool and not isinstance(value, bool):
            # a file has real booleans: the string "no" there is a mistake, not a spelling of false
            raise UsageError(f"{key} must be a bool (true or false), got {value!r} (--config {path})")
        if key in props and "object" in json_types(props[key]) and isinstance(value, dict):
            items += [f"{key}.{k}={text_of(v)}" for k, v in value.items()]
        else:
            items.append(f"{key}={text_of(value)}")
    return items


def cmd_schema(a) -> int:
    """The JSON Schema of a scenario (controlplane/config/schema.py), with the Scenario's defaults, or with
    --experiment NAME that experiment's parameters (its Params model)."""
    if a.experiment is not None:
        from controlplane.run.experiment import params_schema
        print(json.dumps(params_schema(_experiment_module(a.experiment)), indent=2, sort_keys=True, default=str))
        return 0
    from controlplane.config.schema import json_schema
    if a.cc is not None:                       # one CC's parameters (congestion/params.py)
        from congestion.params import cc_schema
        print(json.dumps(cc_schema(a.cc), indent=2, sort_keys=True, default=str))
        return 0
    print(json.dumps(json_schema(), indent=2, sort_keys=True, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="softdpu", description=__doc__, epilog=EPILOG,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"softdpu {_version()}")
    ap.add_argument("--debug", action="store_true", help="print the traceback of any error")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run an experiment and plot it", add_help=False, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("experiment", nargs="?", help="an experiment (softdpu list); softdpu run NAME --help lists "
                   "its parameters")
    r.add_argument("-h", "--help", action="store_true", help="this help, and the experiment's parameters")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="experiment parameter or scenario field (dotted, e.g. ecn.kmin_bytes=100KB); "
                        "cc_params.NAME=VALUE for the variants whose CC has NAME, CC.NAME=VALUE for one CC")
    r.add_argument("--config", default=None, metavar="FILE",
                   help="experiment parameters and scenario fields from a JSON or TOML file (--set wins)")
    r.add_argument("--seed", type=_seed, default=1)
    r.add_argument("--out", default=None, help="results folder (default results/<experiment>)")
    r.add_argument("--cc", default=None, help="cc name or path/to/file.py:ClassName (replaces the experiment's list)")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                   help="run the experiment's independent runs (variants, seeds) on N local worker processes "
                        "(default 1: one after another in this process); results are the same for any N")
    r.add_argument("--debug", action="store_true", help="print the traceback of any error")
    r.add_argument("--pcap", default=None, metavar="FILE",
                   help="capture packets to a pcap file (one per variant: FILE-<variant>.pcap)")
    r.add_argument("--pcap-filter", default=None, metavar="'KEY=VALUE ...'",
                   help="points=hosts|switches|all|h3|sw0->h0|<port id>,... dir=tx|rx|both qp=N from_us= to_us= "
                        "max=N snaplen=BYTES split=0|1")
    r.set_defaults(func=cmd_run, parser=r)
    w = sub.add_parser("sweep", help="run an experiment over a grid of parameter values x seeds, in parallel",
                       add_help=False, epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("experiment", nargs="?", help="an experiment (softdpu list)")
    w.add_argument("-h", "--help", action="store_true", help="this help, and the experiment's parameters")
    w.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept key (anything --set takes: parameter, dotted scenario field, cc_params.NAME) and "
                        "its values, typed and with units as in --set; repeatable: the points are the product")
    w.add_argument("--seeds", default=None, metavar="1-20|1,3,5", help="seeds of every grid point (default 1)")
    w.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed for every point, as in run")
    w.add_argument("--cc", default=None, help="cc name or path/to/file.py:ClassName (replaces the experiment's list)")
    w.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="local worker processes (default: the number of cores; 1 = in this process)")
    w.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run the points on this Dask distributed cluster (pip install 'softdpu[sweep]')")
    w.add_argument("--out", default=None, metavar="DIR", help="sweep folder (default results/sweep-<experiment>)")
    w.add_argument("--force", action="store_true", help="rerun every point (default: skip the points already done)")
    w.add_argument("--spec", default=None, metavar="FILE",
                   help="the same options from a TOML or JSON file (experiment, grid, seeds, set, out, jobs, scheduler,"
                        " cc); the command line wins")
    w.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar (points done of total, failures, ETA); default: only on a terminal")
    w.add_argument("--debug", action="store_true", help="print the traceback of any error")
    w.set_defaults(func=cmd_sweep, parser=w)
    p = sub.add_parser("plot", help="(re)make the plots of a results folder")
    p.add_argument("results", help="a run's results folder, an experiment's (one run per variant) or a sweep's")
    p.add_argument("--metrics", default=None, metavar="M1,M2,...",
                   help="a sweep only: the metrics to draw (columns of sweep.csv; default: slowdown, FCT p99, "
                        "goodput, utilisation, Jain index and the counters with data)")
    p.set_defaults(func=cmd_plot)
    sc = sub.add_parser("schema", help="print the JSON Schema of a scenario (every field, its type, unit and bounds)")
    sc.add_argument("--experiment", default=None, metavar="NAME",
                    help="the JSON Schema of that experiment's parameters instead (softdpu list names them)")
    sc.add_argument("--cc", default=None, metavar="NAME", help="print only this CC's parameter schema (cc_params)")
    sc.set_defaults(func=cmd_schema)
    l = sub.add_parser("list", help="experiments and congestion-control algorithms")
    l.add_argument("--json", action="store_true", help="as JSON: experiments and CCs with their parameters")
    l.set_defaults(func=cmd_list)
    b = sub.add_parser("bench", help="time a benchmark scenario")
    b.add_argument("scenario", nargs="?", default="permutation-128", choices=BENCHMARKS,
                   help="permutation-128, permutation-1024, cc-callback (cost of the Python plug-in path) "
                        "cc-cost (ns per CC event of each built-in, C and Python), capture (pcap of every hop, 128-byte snaplen) "
                        "multipath (permutation-1024 with ECMP + go-back-N vs spray_rr + ooo) "
                        "or vswitch (fast-path lookups/s: exact, masked with 1/8/32 subtables; slow-path installs/s) "
                        "sweep-overhead (what a sweep point costs through Dask beyond its run; needs softdpu[sweep]) "
                        "scale (permutation at k = 8, 16, 32: events, us/event, run and wall time, peak RSS, bytes "
                        "per host), record (permutation-1024 and scale up to k = 16 appended to the benchmark "
                        "history), history (its last entries per benchmark, with ratios to the entry before) or partitions "
                        "(per 1 us lookahead window: events and packet hops crossing pod partitions, docs/scaling.md) "
                        "ack-coalescing (the permutation with an ACK every 1, 2, 4, 8 packets: events, run time and "
                        "how far the flow completion times move; docs/performance.md) "
                        "or pcap (records/s reading a 1 M-record capture: the C reader, the Python reference, pcapng)")
    b.add_argument("--cc-impl", choices=["c", "python"], action="append", default=None,
                   help="c (the DCQCN C twin, default) or python (the reference through the plug-in path); repeatable")
    b.add_argument("--seed", type=_seed, default=1)
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="bench scale: max_k (default 32; 64 = 65,536 hosts, refused with its estimate if it would "
                        "not fit in memory), min_k (default 8), size_bytes (default 2MB); bench record: max_k "
                        "(default 16); bench partitions: k (default 16), partitions (a divisor of k, default k: one per "
                        "pod), size_bytes; bench ack-coalescing: k (default 16), size_bytes")
    b.add_argument("--max-k", type=int, default=None, metavar="K", help="the same as --set max_k=K")
    b.add_argument("--history", default=None, metavar="FILE",
                   help="bench record / history: the history file (default: the repository's "
                        "benchmarks/history.jsonl)")
    b.add_argument("--last", type=int, default=5, metavar="N", help="bench history: the last N entries per benchmark")
    b.add_argument("--note", default=None, metavar="TEXT",
                   help="bench record: how the machine was (stored with the entries, e.g. 'shared, nice 19')")
    b.set_defaults(func=cmd_bench)
    return ap


def _plugin_frame(exc: BaseException) -> str | None:
    """'file.py:line in func' of the deepest frame of ``exc`` inside a user's cc plug-in file
    (congestion/registry.py loads them as modules named softdpu_plugin_*), or None."""
    import traceback
    where = None
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("softdpu_plugin_"):
            where = tb
        tb = tb.tb_next
    if where is None:
        return None
    fs = traceback.extract_tb(where, limit=1)[0]
    return f"{fs.filename}:{fs.lineno} in {fs.name}"


def main(argv=None) -> int:
    """The softdpu command; returns the exit status (see EPILOG) instead of raising."""
    import traceback
    from controlplane.config.values import UsageError
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    a = None
    try:
        try:
            a = build_parser().parse_args(argv)
        except SystemExit as e:             # --help, --version
            return int(e.code or 0) if isinstance(e.code, int) or e.code is None else EXIT_USAGE
        if a.cmd == "bench" and not a.cc_impl:
            a.cc_impl = ["c"]
        from dataplane.sim import CCPluginError, SimError
        try:
            return a.func(a)
        except (CCPluginError, SimError) as e:
            # a run stopped by its congestion control (a plug-in that raised, a rate below the floor) or
            # by the data plane: one line naming the CC, QP and event; the results so far are written
            if debug:
                traceback.print_exc()
            print(f"softdpu: the run stopped: {e}" + (f" (results up to then in {a.out or 'results/' + a.experiment})"
                                                      if a.cmd == "run" else ""), file=sys.stderr)
            return EXIT_STOPPED
        except SystemExit as e:             # raised by code the run called (e.g. a plug-in), not by softdpu
            if debug:
                traceback.print_exc()
            where = _plugin_frame(e)
            print(f"softdpu: the run stopped: SystemExit({e.code!r}) raised inside the run"
                  + (f" by the cc plug-in at {where}" if where else ""), file=sys.stderr)
            return EXIT_STOPPED
    except (UsageError, ValueError) as e:
        # what the user typed is wrong (a value, a name, a file that cannot be read): one line
        if debug:
            traceback.print_exc()
        print("softdpu: " + "; ".join(str(e).splitlines()), file=sys.stderr)    # one line, every problem
        return EXIT_USAGE
    except OSError as e:                    # a file or folder that cannot be read or written
        if debug:
            traceback.print_exc()
        print(f"softdpu: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("softdpu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        where = _plugin_frame(e)
        if where is not None:               # a bug in the user's plug-in, not in softdpu
            if debug:
                traceback.print_exc()
            print(f"softdpu: the cc plug-in raised {type(e).__name__}: {e} (at {where})", file=sys.stderr)
            return EXIT_USAGE
        traceback.print_exc()               # a bug in softdpu
        print(f"softdpu: internal error: {type(e).__name__}: {e} (a bug; the traceback above says where; "
              f"please report it with the command line)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
