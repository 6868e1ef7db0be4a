"""What every experiment script shares: running a set of named scenario variants into one
results folder, plotting them, printing a summary table, and a small command line."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

from controlplane.run.scenario import Scenario
from controlplane.config.units import unit_kind
from controlplane.config.values import Kind, UsageError, closest, kind_of, parse_any, parse_bool, parse_json, parse_value


#: Scenario fields whose annotation is Any: how their text reads
#: the keys of Scenario sections whose keys are fixed (a partial section merges with the defaults)
SECTION_KINDS = {"ecn": {"kmin_bytes": Kind("int", minimum=0), "kmax_bytes": Kind("int", minimum=0),
                         "pmax": Kind("float", minimum=0.0), "base_rate_bps": Kind("int", minimum=1),
                         "scale_with_rate": Kind("bool")}}
_ANY_FIELDS = {"monitor_ports": Kind("str_or_list"), "adaptive_routing": Kind("bool_or_str"), "link_loss": Kind("any")}


def scenario_kinds() -> dict[str, Kind]:
    """The Kind of every Scenario field, from its annotation and default."""
    from dataclasses import fields
    out = {}
    for f in fields(Scenario):
        ann = str(f.type)
        optional = "None" in ann
        base = ann.replace("| None", "").strip()
        if f.name in _ANY_FIELDS:
            out[f.name] = _ANY_FIELDS[f.name]
        elif base in ("dict", "list"):
            out[f.name] = Kind(base, elem=Kind("any"), optional=optional)
        elif base in ("int", "str", "bool", "float"):
            out[f.name] = Kind(base, optional=optional, minimum=0 if base in ("int", "float") else None)
        else:
            out[f.name] = Kind("any", optional=optional)
    return out


def _cc_defaults(spec: str) -> dict:
    """The parameters (name -> default) of a CC by registered name or plug-in spec."""
    from congestion import registry
    cls = registry.load_class(spec)
    try:
        return dict(cls().defaults())
    except ValueError:
        raise
    except Exception:                                   # a plug-in that needs parameters to construct
        return dict(cls.defaults()) if isinstance(cls.__dict__.get("defaults"), classmethod) else {}


def _cc_ecn_default(spec: str, cc_params: dict | None = None) -> bool:
    """Whether the CC declares default ECN thresholds (a partial ecn section merges with them)."""
    from congestion import registry
    try:
        cc = registry.create(spec, **(cc_params or {}))
    except ValueError:
        return True                 # let the scenario report the CC's own error
    return bool(cc.network_defaults().get("ecn"))


_ECN_REQUIRED = ("kmin_bytes", "kmax_bytes", "pmax")


def _partial_ecn(keys) -> list[str]:
    """The ecn.* keys of a partial ecn section (one that does not give kmin, kmax and pmax)."""
    sub = [k for k in keys if k.startswith("ecn.")]
    return sub if sub and not {f"ecn.{k}" for k in _ECN_REQUIRED} <= set(sub) else []


def _cc_name(spec: str) -> str:
    from congestion import registry
    return registry.load_class(spec).name if ":" in spec else spec


def experiment_ccs(module, params: dict, overrides_cc: str | None = None) -> list[str] | None:
    """The CCs (registered name or plug-in spec) the experiment's variants run, from its ``ccs``
    or ``cc`` parameter (names in its VARIANTS table map to their algorithm), or None if the
    experiment does not say."""
    if overrides_cc is not None:
        return [overrides_cc]
    model = params_model(module)
    p = {**(model.defaults() if model is not None else getattr(module, "PARAMS", {})), **params}
    if "ccs" in p:
        aliases = getattr(module, "VARIANTS", {})
        out = []
        for n in p["ccs"]:
            v = aliases.get(n)
            out.append(v[0] if isinstance(v, tuple) and v and isinstance(v[0], str) else n)
        return out
    if "cc" in p and isinstance(p["cc"], str):
        return [p["cc"]]
    return None


def _set_nested(d: dict, path: list[str], value) -> None:
    for p in path[:-1]:
        if not isinstance(d.get(p), dict):
            d[p] = {}
        d = d[p]
    d[path[-1]] = value


def _nested_default(d, path: list[str]):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def parse_sets(items: list[str], module=None, cc: str | None = None) -> tuple[dict, dict]:
    """``--set key=value`` items -> (experiment parameters, scenario overrides), typed.

    ``module`` is the experiment (its ``Params`` model gives the parameters' names, types, units
    and bounds; without one every key is a Scenario field). A key is, in this order: an experiment
    parameter (``senders=8``, or ``tax.upcall=5000`` inside a dict parameter), read as its schema
    says (:func:`from_text`) and validated by the model; a Scenario field, dotted into a section
    (``ecn.kmin_bytes=100KB``, merged with the section's defaults); ``cc_params.NAME`` (applied to
    the variants whose CC has parameter NAME, an error if none has); ``CC.NAME``
    (``dcqcn.flavour=paper``: applied to the variants running that CC). Every error names the key
    as typed."""
    model = params_model(module)
    props = model.schema()["properties"] if model is not None else {}
    kinds = scenario_kinds()
    exp: dict = {}
    raw_over: list[tuple[str, str]] = []
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        key, _, text = item.partition("=")
        key = key.strip()
        if not key or any(not p for p in key.split(".")):
            raise UsageError(f"--set expects key=value, got {item!r} (empty name)")
        head, *rest = key.split(".")
        if head in props and not rest:
            exp[key] = from_text(key, text, props[key])
        elif head in props and "object" in json_types(props[head]):
            cur = exp.setdefault(head, copy.deepcopy(model.model_fields[head].default) or {})
            _set_nested(cur, rest, parse_any(key, text))
        elif head in props:
            raise UsageError(f"--set {key}: {head} is not a section (it is a {type_text(props[head])})")
        else:
            raw_over.append((key, text))
    if cc is not None:
        _check_ccs("--cc", [cc], {})
        if "ccs" in props:
            exp["ccs"] = [cc]
        elif "cc" in props:
            exp["cc"] = cc
        else:
            raise UsageError(f"--cc: {_module_name(module)} has no cc or ccs parameter")
    if model is not None:
        exp = model.check(exp, _module_name(module))
    over: dict = {}
    cc_over = None
    for key, text in raw_over:
        if key == "cc":
            cc_over = text.strip()
    ccs = experiment_ccs(module, exp, cc_over) if module is not None else None
    known_cc = _known_cc_names(ccs)
    for key, text in raw_over:
        head, *rest = key.split(".")
        if head == "cc_params":
            if not rest:
                v = parse_value(key, text, Kind("dict"))
                for k, x in v.items():
                    over.update(_cc_param(f"cc_params.{k}", [k], json.dumps(x) if not isinstance(x, str) else x, ccs,
                                          None))
            else:
                over.update(_cc_param(key, rest, text, ccs, None))
        elif head in kinds:
            if not rest:
                over[key] = parse_value(key, text, kinds[head])
            else:
                if kinds[head].base != "dict":
                    raise UsageError(f"--set {key}: {head} is not a section (it is a {kinds[head].describe(head)})")
                if head in SECTION_KINDS:
                    known = SECTION_KINDS[head]
                    if len(rest) != 1 or rest[0] not in known:
                        near = closest(rest[0], known)
                        raise UsageError(f"--set {key}: {head} has no key {'.'.join(rest)!r}"
                                         + (f" (did you mean {head}.{near[0]}?)" if near else "")
                                         + f"; its keys: {', '.join(known)}")
                    over[key] = parse_value(key, text, known[rest[0]])
                    continue
                leaf = _nested_default(Scenario().to_dict()[head], rest)
                k = kind_of(leaf, rest[-1]) if leaf is not None else Kind("any")
                over[key] = parse_value(key, text, Kind(k.base, elem=k.elem, optional=True) if leaf is not None
                                        else k)
        elif rest and head in known_cc:
            over.update(_cc_param(key, rest, text, ccs, head))
        else:
            names = list(props) + list(kinds) + known_cc
            near = closest(head, names)
            where = _module_name(module)
            raise UsageError(f"--set {key}: unknown parameter {head!r}"
                             + (f"; closest: {', '.join(near)}" if near else "")
                             + (f" ({where} parameters: {', '.join(props)}; scenario fields and more: "
                                f"softdpu run {where} --help)" if module is not None else ""))
    partial = _partial_ecn(over)
    if partial and "ecn" not in over and ccs is not None and not any(_cc_ecn_default(c) for c in ccs):
        raise UsageError(f"--set {partial[0]}: no CC of this run ({', '.join(ccs)}) has default ECN thresholds to "
                         f"merge with; give {', '.join('ecn.' + k for k in _ECN_REQUIRED)}")
    return exp, over


def _check_ccs(key: str, names, aliases: dict) -> None:
    """Each name is a registered CC, a loadable plug-in or one of the experiment's aliases (the
    check of a ``ccs``/``cc`` parameter)."""
    func = _parts(_cc(tuple(aliases)))[0]
    for n in names:
        try:
            func(n)
        except ValueError as e:
            raise UsageError(f"{key}: {e}") from None


def _module_name(module) -> str:
    return getattr(module, "__name__", "experiment").rpartition(".")[2]


def _known_cc_names(ccs) -> list[str]:
    from congestion import registry
    names = set(registry.names())
    for spec in ccs or []:
        try:
            names.add(_cc_name(spec))
        except ValueError:
            continue                     # not a candidate name; _check_ccs reports a bad spec itself
    return sorted(names)


def _cc_param(key: str, rest: list[str], text: str, ccs: list[str] | None, only: str | None) -> dict:
    """One CC parameter override: ``cc_params.NAME`` (every variant whose CC has NAME) or
    ``CC.NAME`` (``only`` = CC: the variants running it); checked against the run's CCs."""
    if len(rest) != 1:
        raise UsageError(f"--set {key}: a CC parameter is cc_params.NAME or CC.NAME")
    name = rest[0]
    from congestion import registry
    pool = ccs if ccs is not None else registry.names()
    if only is not None:
        pool = [c for c in pool if _cc_name(c) == only] or ([] if ccs is not None else [only])
        if not pool:
            raise UsageError(f"--set {key}: no variant of this run uses cc {only!r} (it runs {', '.join(ccs)})")
    knowers = [c for c in pool if name in _cc_defaults(c)]
    if not knowers:
        every = sorted({p for c in pool for p in _cc_defaults(c)})
        near = closest(name, every)
        who = f"cc {only!r} has no" if only else f"none of this run's CCs ({', '.join(pool)}) has a"
        field = f" ({name} is a scenario field: --set {name}=...)" if name in scenario_kinds() else ""
        raise UsageError(f"--set {key}: {who} parameter {name!r}"
                         + (f"; closest: {', '.join(near)}" if near else "")
                         + (f"; its parameters: {', '.join(every)}" if only and every else "") + field)
    # typed by the CC's declared parameter model (congestion/params.py): units, bounds, its words
    typed = []
    for spec in knowers:
        cls = registry.load_class(spec)
        model = cls.params_model()
        if model is not None:
            try:
                typed.append(model.from_text(cls.name, name, text, key=key))
            except ValueError as e:
                raise UsageError(str(e)) from None
    if typed:
        return {key: typed[0]}
    default = _cc_defaults(knowers[0])[name]
    k = kind_of(default, name)
    if unit_kind(name) and k.base in ("float", "int"):
        k = Kind("int", optional=default is None)
    k = Kind(k.base, elem=k.elem, optional=k.optional or default is None)
    return {key: parse_value(key, text, k)}


def apply_overrides(sc: Scenario, overrides: dict | None) -> Scenario:
    """``sc`` with the overrides of :func:`parse_sets`: a ``cc_params.NAME`` key only where the
    scenario's CC has parameter NAME, a ``CC.NAME`` key only where the scenario runs CC."""
    if not overrides:
        return sc
    from dataclasses import fields
    names = {f.name for f in fields(Scenario)}
    plain = {}
    # a partial ecn section merges with the CC's default thresholds; a variant whose CC has none
    # (none, hpcc) keeps marking off, as a cc_params key its CC lacks is not applied to it
    skip = set(_partial_ecn(overrides)) if sc.ecn is None and "ecn" not in overrides else set()
    if skip and _cc_ecn_default(sc.cc, sc.cc_params):
        skip = set()
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if key in skip:
            continue
        if head == "cc_params" and rest:
            if rest in _cc_defaults(sc.cc):
                plain[key] = value
        elif head not in names and rest:
            if _cc_name(sc.cc) == head:
                plain[f"cc_params.{rest}"] = value
        else:
            plain[key] = value
    return sc.with_overrides(plain)


def split_params(sets: dict, params) -> tuple[dict, dict]:
    """Experiment parameters (fields of the ``Params`` model, or keys of a dict of defaults) vs
    Scenario overrides (everything else), for already-typed values (a program's own dict; the
    command line uses :func:`parse_sets`)."""
    names = params.model_fields if isinstance(params, type) and issubclass(params, ExperimentParams) else params
    exp = {k: v for k, v in sets.items() if k in names}
    return exp, {k: v for k, v in sets.items() if k not in names}


def variant_tasks(out_dir: Path, variants: dict[str, Scenario], overrides: dict | None, capture, *extra) -> list:
    """One run_scenario_task task per variant: its scenario with the overrides, its results folder
    ``out_dir/<name>``, its capture (a file per variant when there are several) and ``extra``
    (the per-run extractor run_scenario_task passes on)."""
    return [(apply_overrides(sc, overrides), str(Path(out_dir) / name),
             capture.for_variant(name, len(variants) > 1) if capture else None, *extra)
            for name, sc in variants.items()]


def run_variants(out_dir: Path, variants: dict[str, Scenario], overrides: dict, plots: bool = True,
                 compare_name: str = "compare.png", title: str | None = None, capture=None,
                 rows: tuple[str, ...] = ("goodput", "queue", "ecn")) -> dict:
    """Run each variant into ``out_dir/<name>`` on the current executor (``softdpu run -j N``:
    N worker processes; controlplane/run/executor.py), plot each and a comparison, print a table.
    The summaries print in variant order, each as soon as it and the ones before it are done."""
    from controlplane.results.folder import format_summary, load_run, summary
    out_dir.mkdir(parents=True, exist_ok=True)
    prune_stale_variants(out_dir, variants)
    summaries = {}
    names = list(variants)
    tasks = variant_tasks(out_dir, variants, overrides, capture)

    def report(name: str, res: dict) -> None:
        run_dir = out_dir / name
        s = summary(load_run(run_dir))
        s["wall_s"] = round(res["wall_s"], 3)
        summaries[name] = s
        print(format_summary(s))
        print(f"  ({res['counters']['events']:,} events in {res['wall_s']:.2f} s wall)\n")
        if plots:
            from controlplane.results.plots import plot_run
            plot_run(run_dir)

    for_each_in_order(run_scenario_task, tasks, lambda i, res: report(names[i], res))
    if plots and variants:
        from controlplane.results.plots import plot_compare
        png = plot_compare([out_dir / n for n in variants], out_dir / compare_name, title=title, rows=rows)
        print(f"plots: {out_dir}/<variant>/plots/*.png and {png}")
    return summaries


def run_scenario_task(task: tuple) -> dict:
    """One independent run, in whichever worker: ``(scenario, results folder or None, capture spec or
    None[, extract])`` -> ``{"wall_s", "counters", "extra"}``; ``extract`` (a module-level function
    of the Result) computes what the caller needs from the in-memory run (``extra``)."""
    sc, run_dir, capture, *rest = task
    result = sc.run(run_dir, capture=capture)
    extra = rest[0](result) if rest and rest[0] is not None else None
    return {"wall_s": result.wall_s, "counters": result.counters, "extra": extra}


def for_each_in_order(fn, tasks: list, report) -> list:
    """Run ``fn(task)`` for every task on the current executor (controlplane/run/executor.py) and call
    ``report(i, value)`` in the order of ``tasks``, each as soon as it and every task before it are
    done (so what is printed does not depend on -j). The first task that fails stops the loop (the
    tasks not started are cancelled) and its exception is raised. Returns the values in order."""
    from controlplane.run import executor
    done: dict[int, object] = {}
    state = {"next": 0}

    def on_done(o) -> None:
        if not o.ok:
            return
        done[o.index] = o.value
        while state["next"] in done:
            report(state["next"], done[state["next"]])
            state["next"] += 1

    return executor.current().map(fn, tasks, on_done=on_done)


def prune_stale_variants(out_dir: Path, keep) -> list[str]:
    """Make ``out_dir`` hold this run only: remove the variant folders of an earlier run into
    the same folder that this run does not write, so that ``softdpu plot`` and the comparison
    plots see this run's variants only.

    A variant folder is a subfolder (at the depths of the names in ``keep``, e.g.
    ``websearch-30/dcqcn``) holding ``config.json``, i.e. a results folder written by a run.
    Nothing else is touched: other files and folders stay, and a parent folder is removed only
    when removing its stale variants left it empty. Prints one line naming the removed folders.

    Returns:
        The removed folders, relative to ``out_dir``.
    """
    import shutil
    import sys
    out_dir = Path(out_dir)
    keep = {Path(k).as_posix() for k in keep}
    depths = {len(Path(k).parts) for k in keep} or {1}
    stale = []
    for depth in sorted(depths):
        for cfg in sorted(out_dir.glob("/".join(["*"] * depth) + "/config.json")):
            rel = cfg.parent.relative_to(out_dir).as_posix()
            if rel not in keep and cfg.parent.is_dir() and not cfg.parent.is_symlink():
                stale.append(rel)
    for rel in stale:
        shutil.rmtree(out_dir / rel)
        parent = (out_dir / rel).parent
        while parent != out_dir and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    if stale:
        print(f"softdpu: removed {len(stale)} variant folder(s) of an earlier run from {out_dir}: "
              f"{', '.join(stale)}", file=sys.stderr)
    return stale


def chosen(field: str, names, known) -> list:
    """The experiment parameter ``field`` lists names from ``known``; an unknown one is an error."""
    for name in names:
        if name not in known:
            raise ValueError(f"{field}: unknown {name!r}; known: {list(known)}")
    return list(names)


def write_csv(path: Path, rows: list[dict]) -> Path:
    """One row per dict, the columns of the first."""
    import csv
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def permutation_on_fat_tree(name: str, k: int, size_bytes: int, cc: str, seed: int, paths: str = "ecmp",
                            transport: str = "gbn", adaptive_routing=False, **fields) -> Scenario:
    """The multipath experiments' scenario: one flow per host to a random-permutation peer on a
    k-ary fat-tree at 100 Gb/s with 1 us links; other Scenario fields as keywords."""
    from controlplane.config.units import Gbps, us
    return Scenario(name=name,
                    topology={"topology": "fat_tree", "k": int(k), "host_rate_bps": Gbps(fields.pop("rate_gbps", 100)),
                              "host_delay_ps": us(1)},
                    workload={"kind": "permutation", "size_bytes": int(size_bytes)}, cc=cc, seed=seed,
                    paths=paths, transport=transport, adaptive_routing=adaptive_routing, **fields)


# multipath variants of the AI-fabric experiments: name -> Scenario fields
AI_PATH_VARIANTS = {
    "ecmp": {"paths": "ecmp", "transport": "gbn"},
    "spray": {"paths": "spray_rr", "transport": "ooo"},
    "ar": {"paths": "ecmp", "transport": "ooo", "adaptive_routing": True},
}


def write_params(out_dir: Path, params: dict, seed: int, overrides: dict | None) -> Path:
    """params.json: the experiment's resolved parameters, seed and scenario overrides, so that
    ``--set`` of each reproduces the run (docs/architecture.md, 'The results folder')."""
    path = Path(out_dir) / "params.json"
    path.write_text(json.dumps({"params": params, "seed": seed, "overrides": overrides or {}}, indent=2,
                               sort_keys=True) + "\n")
    return path


def collective_experiment_setup(out_dir, model, params: dict | None, seed: int, overrides: dict | None,
                                capture) -> tuple[dict, Path]:
    """What the collective experiments do first: refuse --pcap (not wired into them), resolve the
    parameters through the experiment's ``Params`` model, make the results folder and write
    params.json. Returns (params, folder)."""
    if capture is not None:
        raise ValueError("--pcap: captures are not wired into the collective experiments")
    p = model.resolve(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_params(out, p, seed, overrides)
    return p, out


def rail_scenario(name: str, topology: dict, cc: str, seed: int, variant: str = "ecmp", **fields) -> Scenario:
    """A scenario on a rail_clos fabric with no workload of its own, for collectives
    (controlplane/ai/collectives.py) run by the control plane; ``variant`` is a key of
    AI_PATH_VARIANTS (16 entropies per QP when spraying)."""
    if variant not in AI_PATH_VARIANTS:
        raise ValueError(f"variants: unknown {variant!r}; known: {list(AI_PATH_VARIANTS)}")
    return Scenario(name=name, topology={"topology": "rail_clos", **topology}, workload={"kind": "flows", "flows": []},
                    cc=cc, seed=seed, sample_interval_ps=0, monitor_ports="none", num_paths=16,
                    **{**AI_PATH_VARIANTS[variant], **fields})


def experiment_main(module: str, run, params: dict, default_out: str, argv=None) -> int:
    """``python -m experiments.<name>``: exactly ``softdpu run <name>`` (same options, parsing,
    errors and exit codes; see controlplane/run/cli.py)."""
    import sys
    from controlplane.run.cli import main
    name = module.rpartition(".")[2] if module != "__main__" else Path(default_out).name
    return main(["run", name, *(sys.argv[1:] if argv is None else argv)])


def capture_arg(path: str | None, text: str | None):
    """The --pcap FILE and --pcap-filter options as a CaptureSpec (None without --pcap)."""
    from controlplane.results.capture import CaptureSpec
    if path is None:
        if text:
            raise UsageError("--pcap-filter needs --pcap FILE")
        return None
    return CaptureSpec.parse(path, text)


__all__ = ["AI_PATH_VARIANTS", "prune_stale_variants", "variant_tasks", "rail_scenario", "write_params", "parse_sets", "split_params", "apply_overrides", "experiment_ccs", "ExperimentParams",
           "params_model", "params_schema", "params_help", "json_types", "from_text", "Count", "Quantity", "Scaled", "Real", "Flag", "OneOf", "Name",
           "CcSpec", "Ccs", "ListOf", "Items", "Nullable", "Item", "FatTreeK", "Overrides",
           "scenario_kinds", "capture_arg", "run_variants", "run_scenario_task", "for_each_in_order", "experiment_main", "write_csv", "permutation_on_fat_tree", "chosen"]



# ---------------------------------------------------------------------------------- parameters
# Each experiment declares ``class Params(ExperimentParams)``: every parameter with its type,
# default, unit, bounds and one-line meaning. The types below compose the scenario schema's
# validators (controlplane/config/schema.py: Int, Num, Bool, Choice, Text; units parsed exactly by
# controlplane/config/units.py) and add what only experiments have: numbers in a unit other than the base
# one (``rate_gbps``, ``window_us``), lists of values, CC specs. ``PARAMS`` (the defaults),
# ``softdpu run EXP --help``, ``softdpu schema --experiment EXP`` and the typing of
# ``--set``/``--config`` values are all derived from the model.
import typing                                                        # noqa: E402
from decimal import Decimal, InvalidOperation                        # noqa: E402
from fractions import Fraction                                       # noqa: E402
from typing import Annotated, Any                                    # noqa: E402

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator  # noqa: E402

from controlplane.config import schema as _config                           # noqa: E402
from controlplane.config import limits as _limits                           # noqa: E402
from controlplane.config.units import BASE_UNIT, UNITS, format_quantity, parse_quantity  # noqa: E402

_UNIT_EXAMPLES = {"rate": "100G, 25Mbps", "size": "16MB, 64KiB", "time": "500ns, 2ms"}


def _parts(t) -> tuple:
    """(validator function, JSON schema) of a type made by the config.py factories or below."""
    args = typing.get_args(t)
    func = next(a.func for a in args[1:] if isinstance(a, BeforeValidator))
    schema = next(a.json_schema for a in args[1:] if isinstance(a, WithJsonSchema))
    return func, dict(schema)


def _raw(func, schema: dict):
    return Annotated[Any, BeforeValidator(func), WithJsonSchema(schema)]


def _field(t, description: str, unit: str | None = None):
    """``t`` as a parameter: its one-line meaning and unit go into the JSON Schema (and --help)."""
    return Annotated[t, Field(description=description, json_schema_extra={"unit": unit} if unit else None)]


def _scaled(kind: str, unit: str, lo: float | None, hi: float | None, lo_open: bool):
    """A number in ``unit`` (Gb/s, us, ns), or a string with any unit of its kind (``100G``,
    ``2ms``): converted exactly, an integer when whole."""
    factor = UNITS[kind][unit.lower().replace("gb/s", "gbps")]
    lo = None if lo is None else Fraction(str(lo))            # exact: 0.001 Gb/s is 1 Mb/s, not the float below
    hi = None if hi is None else Fraction(str(hi))

    def check(x: Any):
        given = x
        if isinstance(x, str):
            s = x.strip()
            try:
                d = Decimal(s)                              # a bare number: in the parameter's unit
                if not d.is_finite() or abs(d.adjusted()) > 30:
                    raise ValueError(f"must be a finite number of a sensible size, got {given!r}")
                v = Fraction(d)
            except ValueError:
                raise
            except ArithmeticError:
                try:
                    v = Fraction(parse_quantity(s, kind), factor)
                except ValueError as e:
                    why = "" if str(e).startswith("expected a") else f": {e}"
                    raise ValueError(f"must be a number in {unit} or a {kind} with a unit ({_UNIT_EXAMPLES[kind]}), "
                                     f"got {given!r}{why}") from None
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"must be a number in {unit} (or a string with a unit: {_UNIT_EXAMPLES[kind]}), "
                             f"got {given!r}")
        elif isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"must be a finite number, got {given!r}")
        else:
            v = Fraction(x)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ValueError(f"must be {'>' if lo_open else '>='} {float(lo):g} {unit}, got {given!r}")
        if hi is not None and v > hi:
            raise ValueError(f"must be <= {float(hi):g} {unit}, got {given!r}")
        return int(v) if v.denominator == 1 else float(v)
    s: dict = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*[A-Za-zµ/]*\s*$"}]}
    if lo is not None:
        s["anyOf"][0]["exclusiveMinimum" if lo_open else "minimum"] = float(lo)
    if hi is not None:
        s["anyOf"][0]["maximum"] = float(hi)
    return _raw(check, s)


def _list(item, nonempty: bool, unique: bool):
    func, schema = _parts(item)

    def check(x: Any) -> list:
        if isinstance(x, (str, bytes, dict)) or not isinstance(x, (list, tuple)):
            raise ValueError(f"must be a list, got {x!r}")
        out = []
        for i, e in enumerate(x):
            try:
                out.append(func(e))
            except ValueError as err:
                msg = str(err)
                raise ValueError(f"[{i}] {msg}" if msg.startswith(("must", "is not")) else f"[{i}]: {msg}") from None
        if nonempty and not out:
            raise ValueError("must be a non-empty list (an empty list runs nothing)")
        if unique:
            seen = set()
            for e in out:
                if e in seen:
                    raise ValueError(f"must be a list without repeats: {e!r} is listed twice")
                seen.add(e)
        return out
    schema.pop("description", None)
    s = {"type": "array", "items": schema}
    if nonempty:
        s["minItems"] = 1
    if unique:
        s["uniqueItems"] = True
    return _raw(check, s)


def _nullable(t):
    func, schema = _parts(t)
    return _raw(lambda x: None if x is None else func(x), {"anyOf": [*schema.get("anyOf", [schema]), {"type": "null"}]})


def _cc(aliases: tuple = ()):
    """A congestion control: a registered name, an entry point, ``path/to/file.py:Class`` or
    ``package.module:Class`` (loaded to check it), or one of the experiment's own variant names."""
    def check(x: Any) -> str:
        if not isinstance(x, str) or not x.strip():
            raise ValueError(f"must be a CC name, path/to/file.py:ClassName or package.module:ClassName, got {x!r}")
        if x in aliases:
            return x
        from congestion import registry
        try:
            registry.load_class(x)
        except ValueError as e:
            near = closest(x, list(registry.names()) + list(aliases)) if ":" not in x else []
            raise ValueError(f"{e}" + (f" (did you mean {near[0]}?)" if near else "")) from None
        return x
    from congestion import registry
    return _raw(check, {"type": "string", "format": "softdpu-cc",
                        "examples": sorted(registry.names()) + list(aliases) + ["path/to/file.py:ClassName",
                                                                                 "package.module:ClassName"]})


# The parameter types. Each takes the one-line meaning; counts are >= 1 unless said otherwise.
def _at_most(t, hi: int):
    """``t`` (an integer type) with an upper bound, said exactly (1048575, not 1.04858e+06)."""
    func, schema = _parts(t)

    def check(x: Any):
        v = func(x)
        if v > hi:
            raise ValueError(f"must be <= {hi}, got {x!r}")
        return v
    return _raw(check, {**schema, "maximum": hi})


def Count(description: str, lo: int = 1, hi: int | None = None):
    """An integer count (config.py Int)."""
    t = _config.Int(description, lo)
    return _field(t if hi is None else _at_most(t, hi), description)


def Quantity(kind: str, description: str, lo: int = 0, hi: int | None = None):
    """A rate (bit/s), size (bytes) or time (ps) as an integer in the base unit, or a string with a
    unit (``100G``, ``16MiB``, ``2ms``), converted exactly (config.py Int)."""
    if kind == "time" and hi is None:
        hi = _limits.MAX_TIME_PS
    return _field(_config.Int(description, lo, hi, kind=kind), description, BASE_UNIT[kind])


def Scaled(kind: str, unit: str, description: str, lo: float | None = 0, hi: float | None = None,
           lo_open: bool = False):
    """A number in ``unit`` (``Gb/s``, ``us``, ``ns``), or a string with a unit of its kind."""
    return _field(_scaled(kind, unit, lo, hi, lo_open), description, unit)


def Real(description: str, lo: float | None = 0, hi: float | None = None, lo_open: bool = False,
         unit: str | None = None):
    """A finite real number (config.py Num)."""
    return _field(_config.Num(description, lo, hi, lo_open), description, unit)


def Flag(description: str):
    return _field(_config.Bool(description), description)


def OneOf(options, description: str):
    return _field(_config.Choice(tuple(options), description), description)


def Name(description: str):
    return _field(_config.Text(description), description)


def CcSpec(description: str):
    return _field(_cc(), description)


def ListOf(item, description: str, nonempty: bool = True, unique: bool = False, unit: str | None = None):
    """A list of ``item`` (a type of config.py, or one of: ``Choices``, ``Numbers``...);
    ``nonempty``: an empty list would run nothing; ``unique``: an entry names a variant."""
    return _field(_list(item, nonempty, unique), description, unit)


def Items(item, nonempty: bool = True, unique: bool = False):
    """A list of ``item`` as an element type (for Nullable: ``Nullable(Items(Item("int", lo=1)), ...)``)."""
    return _list(item, nonempty, unique)


def Nullable(t, description: str, unit: str | None = None):
    """``t`` or None (the experiment's own choice, said in the description)."""
    return _field(_nullable(t), description, unit)


def Ccs(description: str, aliases: tuple = ()):
    """A non-empty list of CCs, one variant each; ``aliases``: the experiment's named variants."""
    return _field(_list(_cc(tuple(aliases)), nonempty=True, unique=True), description)


def Item(kind: str, *args, **kw):
    """An element type for ListOf/Nullable: ``Item("int", lo=1)``, ``Item("size", lo=1)``,
    ``Item("real", lo=0, lo_open=True)``, ``Item("choice", options)``, ``Item("text")``,
    ``Item("us"/"gbps", lo=...)`` (a number in that unit)."""
    if kind == "int":
        hi = kw.pop("hi", None)
        t = _config.Int("", *args, **kw)
        return t if hi is None else _at_most(t, hi)
    if kind in ("rate", "size", "time"):
        return _config.Int("", *args, kind=kind, **kw)
    if kind == "real":
        return _config.Num("", *args, **kw)
    if kind == "choice":
        return _config.Choice(tuple(args[0]), "")
    if kind == "text":
        return _config.Text("")
    if kind in ("us", "ns", "Gb/s"):
        return _scaled("rate" if kind == "Gb/s" else "time", kind, kw.get("lo", 0), kw.get("hi"), kw.get("lo_open", False))
    raise ValueError(f"Item: unknown kind {kind!r}")


#: fat-tree arity: even, and k^3/4 hosts within the fabric size bound (controlplane/fabric/topology.py)
def _max_k() -> int:
    from controlplane.fabric.topology import MAX_HOSTS
    k = 2
    while (k + 2) ** 3 // 4 <= MAX_HOSTS:
        k += 2
    return k


def _even(x: Any):
    v = _parts(_config.Int("", 2, _max_k()))[0](x)
    if v % 2:
        raise ValueError(f"must be even (a k-ary fat-tree has k/2 hosts per edge switch), got {x!r}")
    return v


def FatTreeK(description: str = "fat-tree arity (k-ary fat-tree: k^3/4 hosts, k even)"):
    return _field(_raw(_even, {"type": "integer", "minimum": 2, "maximum": _max_k(), "multipleOf": 2}), description)


def _overrides_of(known: dict, what: str):
    """A dict of overrides of the keys of ``known`` (e.g. the defaults of controlplane/dpu/vtax.py Tax), each a
    number >= 0; an unknown key is refused with the closest known names."""
    def check(x: Any) -> dict:
        if not isinstance(x, dict):
            raise ValueError(f'must be a JSON object such as {{"{next(iter(known))}": 1}}, got {x!r}')
        for k, v in x.items():
            if k not in known:
                near = closest(str(k), known)
                raise ValueError(f"has no key {k!r}" + (f" (did you mean {near[0]}?)" if near else "")
                                 + f"; its keys ({what}): {', '.join(known)}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (k.endswith("_hz") and v <= 0):
                raise ValueError(f"must map each key to a finite number >= 0 (> 0 for a clock rate), got {k}={v!r}")
        return dict(x)
    return check


def Overrides(known: dict, description: str, what: str):
    return _field(_raw(_overrides_of(known, what), {"type": "object", "propertyNames": {"enum": list(known)},
                                                    "additionalProperties": {"type": "number", "minimum": 0}}),
                  description)


def _rate_bounds() -> tuple:
    from controlplane.fabric.topology import MAX_RATE_BPS, MIN_RATE_BPS
    return MIN_RATE_BPS, MAX_RATE_BPS


#: bounds shared by the experiments: a link rate is in the data plane's [1 Mb/s, 100 Tb/s]
#: (controlplane/fabric/topology.py), a time at most 10^15 ps (controlplane/config/limits.py)
RATE_BPS = dict(lo=_rate_bounds()[0], hi=_rate_bounds()[1])
RATE_GBPS = dict(lo=_rate_bounds()[0] / 10**9, hi=_rate_bounds()[1] / 10**9)
TIME_US = dict(lo=0, hi=_limits.MAX_TIME_PS / _limits.PS_PER_US)


class ExperimentParams(_config.Strict):
    """The parameters of one experiment (subclassed as ``Params`` beside each experiment): the
    single source of their defaults, types, units, bounds and meanings. Cross-parameter rules go
    in a ``model_validator(mode="after")`` of the subclass."""

    @classmethod
    def defaults(cls) -> dict:
        """Every parameter's default (fresh copies: a caller may mutate them)."""
        return {k: copy.deepcopy(f.default) for k, f in cls.model_fields.items()}

    @classmethod
    def check(cls, params: dict | None, where: str = "") -> dict:
        """The given parameters validated and normalized (``"100G"`` -> 100 for a Gb/s parameter),
        only the keys given; a UsageError naming each parameter as typed otherwise, and for an
        unknown name the closest parameters and scenario fields."""
        params = dict(params or {})
        unknown = [k for k in params if k not in cls.model_fields]
        if unknown:
            from dataclasses import fields
            scenario = [f.name for f in fields(Scenario)]
            k = str(unknown[0])
            near = closest(k, list(cls.model_fields)) or closest(k, scenario)
            extra = (f" ({k} is a Scenario field: pass it in overrides, or --set {k}=VALUE)" if k in scenario else "")
            raise UsageError(f"unknown parameter {k!r}{' of ' + where if where else ''}"
                             + (f"; closest: {', '.join(near)}" if near else "") + extra
                             + f" ({where or 'its'} parameters: {', '.join(cls.model_fields)})")
        try:
            out = _config.validate(params, model=cls)
        except ValueError as e:
            raise UsageError("\n".join(line[2:] if line.startswith(": ") else line
                                       for line in str(e).splitlines())) from None
        return out

    @classmethod
    def resolve(cls, params: dict | None, where: str = "") -> dict:
        """The defaults updated with the validated ``params``: what an experiment's run() uses."""
        return {**cls.defaults(), **cls.check(params, where)}

    @classmethod
    def schema(cls, title: str = "") -> dict:
        """The JSON Schema of the parameters, with their defaults."""
        s = cls.model_json_schema()
        if title:
            s["title"] = title
        for k, prop in s.get("properties", {}).items():
            prop.pop("title", None)
            prop["default"] = cls.model_fields[k].default
        return s


def params_model(module) -> type[ExperimentParams] | None:
    """The experiment's ``Params`` model (None for a module without one)."""
    m = getattr(module, "Params", None)
    return m if isinstance(m, type) and issubclass(m, ExperimentParams) else None


def params_schema(module) -> dict:
    """``softdpu schema --experiment NAME``: the experiment's parameters as a JSON Schema."""
    name = _module_name(module)
    s = params_model(module).schema(f"softdpu experiment {name} parameters")
    s["description"] = ((module.__doc__ or "").strip().splitlines() or [""])[0]
    return s


def json_types(s: dict) -> set:
    """The JSON types a property schema admits (enum and const count as string)."""
    out = set()
    for part in s.get("anyOf", [s]):
        t = part.get("type")
        if isinstance(t, list):
            out.update(t)
        elif t:
            out.add(t)
        elif "enum" in part or "const" in part:
            out.add("string")
    return out


def from_text(name: str, text: str, s: dict) -> Any:
    """``--set name=text`` as the Python value the parameter's schema ``s`` reads: none/null for a
    nullable one; a list (``a,b`` or a JSON list) or a JSON object; a boolean word; a number
    (kept as text when it is not one, so that the model says what it expected). The model's
    validator then checks it and names ``name``."""
    t = str(text).strip()
    kinds = json_types(s)
    if "null" in kinds and t.lower() in ("none", "null"):
        return None
    if "array" in kinds:
        if t.startswith("["):
            return parse_json(name, t, 'a list such as a,b or ["a","b"]')
        parts = [p.strip() for p in t.split(",")] if t else []
        if any(not p for p in parts):
            raise UsageError(f"{name}: empty element in {t!r} (a list is a,b,c or a JSON list)")
        item = s.get("items", {})
        return [from_text(f"{name}[{i}]", p, item) for i, p in enumerate(parts)]
    if "object" in kinds:
        return parse_json(name, t, 'a JSON object such as {"key": 1}')
    if kinds == {"boolean"}:
        return parse_bool(name, t)
    if kinds & {"integer", "number"}:
        try:
            d = Decimal(t)
        except InvalidOperation:
            return t                       # a unit string, or a mistake the validator names
        if not d.is_finite() or abs(d.adjusted()) > 30:
            return float(d)                # inf, nan, 1e999999999 (inf), 1e-99 (0.0): not an exact int
        return int(d) if d == d.to_integral_value() else float(d)
    return t


def _bounds(s: dict, unit: str | None = None) -> str:
    def show(v) -> str:
        if float(v).is_integer():
            return default_text(int(v), unit) if unit in BASE_UNIT.values() and v >= 1000 else f"{int(v)}"
        return f"{v:g}"
    lo, hi = s.get("minimum", s.get("exclusiveMinimum")), s.get("maximum")
    lo_sym = ">" if "exclusiveMinimum" in s else ">="
    if lo is not None and hi is not None:
        return f" in {'(' if lo_sym == '>' else '['}{show(lo)}, {show(hi)}]"
    if lo is not None:
        return f" {lo_sym} {show(lo)}"
    if hi is not None:
        return f" <= {show(hi)}"
    return ""


def type_text(s: dict, unit: str | None = None) -> str:
    """A property schema in words: ``integer >= 1``, ``list of one of ecmp|spray``, ``... or none``."""
    parts = s.get("anyOf", [s])
    nullable = any(p.get("type") == "null" for p in parts)
    non_null = [p for p in parts if p.get("type") != "null"] or [{}]
    # a quantity is an integer or a string with a unit: the integer says the bounds
    main = next((p for p in non_null if p.get("type") != "string" or "pattern" not in p), non_null[0])
    t = main.get("type")
    if "enum" in main:
        out = "one of " + "|".join(map(str, main["enum"]))
    elif main.get("format") == "softdpu-cc":
        out = "CC (name, file.py:Class or module:Class)"
    elif t == "array":
        out = "list of " + type_text(main.get("items", {}), unit or s.get("unit")) + ("" if main.get("minItems") else " (may be empty)")
    elif t == "object":
        out = "JSON object" + (" of " + "|".join(main["propertyNames"]["enum"][:3]) + "|..."
                               if "propertyNames" in main else "")
    elif t in ("integer", "number"):
        out = ("integer" if t == "integer" else "number") + _bounds(main, unit or s.get("unit"))
    elif t == "boolean":
        out = "boolean"
    else:
        out = "text"
    return out + (" or none" if nullable else "")


def default_text(value, unit: str | None) -> str:
    """A default as typed on the command line: 100Gbps, 16MB, 1us for base-unit quantities."""
    kind = {v: k for k, v in BASE_UNIT.items()}.get(unit or "")
    if isinstance(value, (list, tuple)):
        return ",".join(default_text(v, unit) for v in value) if value else "[]"
    if kind and isinstance(value, int) and not isinstance(value, bool):
        return format_quantity(value, kind)
    if isinstance(value, dict):
        return json.dumps(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def params_help(module) -> list[str]:
    """One line per parameter: name, type and bounds, unit, default, meaning (from the model)."""
    model = params_model(module)
    props = model.schema()["properties"]
    rows = []
    for k, p in props.items():
        unit = p.get("unit") or p.get("items", {}).get("unit")
        rows.append((k, type_text(p), unit or "", default_text(model.model_fields[k].default, unit),
                     p.get("description", "")))
    w = [max(len(r[i]) for r in rows) for i in range(4)] if rows else [0] * 4
    return [f"  {r[0]:{w[0]}}  {r[1]:{w[1]}}  {r[2]:{w[2]}}  default {r[3]:{w[3]}}  {r[4]}".rstrip() for r in rows]
