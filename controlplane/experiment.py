"""What every experiment script shares: running a set of named scenario variants into one
results folder, plotting them, printing a summary table, and a small command line."""
from __future__ import annotations

import json
from pathlib import Path

from controlplane.scenario import Scenario
from controlplane.units import unit_kind
from controlplane.values import Kind, UsageError, closest, kind_of, parse_any, parse_value


#: experiment parameters that count things of which a run needs at least one
AT_LEAST_ONE = {"senders", "hosts", "peers", "k", "seeds", "num_rails", "servers_per_leaf", "leaves_per_rail",
                "spines_per_rail", "cores_per_group", "buckets", "num_paths", "handlers", "job_gpus", "min_msgs",
                "upcall_queue", "reorder_window", "mtu_payload", "ack_interval", "max_outstanding"}
#: list parameters that may be empty (the run still does something)
MAY_BE_EMPTY = {"caches"}
#: Scenario fields whose annotation is Any: how their text reads
#: the keys of Scenario sections whose keys are fixed (a partial section merges with the defaults)
SECTION_KINDS = {"ecn": {"kmin_bytes": Kind("int", minimum=0), "kmax_bytes": Kind("int", minimum=0),
                         "pmax": Kind("float", minimum=0.0), "base_rate_bps": Kind("int", minimum=1),
                         "scale_with_rate": Kind("bool")}}
_ANY_FIELDS = {"monitor_ports": Kind("str_or_list"), "adaptive_routing": Kind("bool_or_str"), "link_loss": Kind("any")}


#: experiment parameters whose default is None (meaning "the experiment's choice"): their type
NONE_DEFAULT_KINDS = {"qps": Kind("list", elem=Kind("int", minimum=1), optional=True, nonempty=True),
                      "duration_us": Kind("float", optional=True, minimum=0.0),
                      "pcap": Kind("str", optional=True)}


def param_kind(name: str, default) -> Kind:
    """The Kind of experiment parameter ``name`` (its default's type, see controlplane/values.py):
    rates, sizes and times by name suffix take units; parameters in another unit by name
    (``_gbps``, ``_us``, ``_ns``) take decimals; counts of things a run needs are >= 1."""
    if default is None and name in NONE_DEFAULT_KINDS:
        return NONE_DEFAULT_KINDS[name]
    k = kind_of(default, name)
    if k.base == "int" and not unit_kind(name) and name.endswith(("_gbps", "_us", "_ns", "_ms")):
        k = Kind("any" if default is None else "float", optional=default is None, minimum=0.0)
    if k.base in ("int", "float") and (name in AT_LEAST_ONE or name.endswith(("_bps", "_gbps"))):
        k = Kind(k.base, optional=k.optional, minimum=1)
    if k.base == "list" and name in MAY_BE_EMPTY:
        k = Kind("list", elem=k.elem, optional=k.optional)
    return k


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
        if out[f.name].base == "int" and f.name in AT_LEAST_ONE:
            out[f.name] = Kind("int", optional=optional, minimum=1)
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
    p = {**module.PARAMS, **params}
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

    ``module`` is the experiment (its PARAMS give the parameters' names and types; without one
    every key is a Scenario field). A key is, in this order: an experiment parameter
    (``senders=8``, or ``tax.dpu_core_hz=2e9`` inside a dict parameter); a Scenario field,
    dotted into a section (``ecn.kmin_bytes=100KB``, merged with the section's defaults);
    ``cc_params.NAME`` (applied to the variants whose CC has parameter NAME, an error if none
    has); ``CC.NAME`` (``dcqcn.flavour=paper``: applied to the variants running that CC).
    Values are typed by controlplane/values.py; every error names the key as typed."""
    params = dict(getattr(module, "PARAMS", {}) or {})
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
        if head in params and not rest:
            v = parse_value(key, text, param_kind(key, params[key]))
            if isinstance(params[key], int) and isinstance(v, float) and v.is_integer():
                v = int(v)                  # rate_gbps=100 stays 100 (12.5 is 12.5)
            exp[key] = v
        elif head in params and isinstance(params[head], dict):
            cur = exp.setdefault(head, json.loads(json.dumps(params[head])))
            _set_nested(cur, rest, parse_any(key, text))
        elif head in params:
            raise UsageError(f"--set {key}: {head} is not a section (it is a {param_kind(head, params[head]).describe(head)})")
        else:
            raw_over.append((key, text))
    for key in ("ccs", "cc"):
        if key in exp:
            _check_ccs(key, exp[key] if key == "ccs" else [exp[key]], getattr(module, "VARIANTS", {}))
    if cc is not None:
        _check_ccs("--cc", [cc], {})
        if "ccs" in params:
            exp["ccs"] = [cc]
        elif "cc" in params:
            exp["cc"] = cc
        else:
            raise UsageError(f"--cc: {_module_name(module)} has no cc or ccs parameter")
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
            names = list(params) + list(kinds) + known_cc
            near = closest(head, names)
            where = _module_name(module)
            raise UsageError(f"--set {key}: unknown parameter {head!r}"
                             + (f"; closest: {', '.join(near)}" if near else "")
                             + (f" ({where} parameters: {', '.join(params)}; scenario fields and more: "
                                f"softdpu run {where} --help)" if module is not None else ""))
    partial = _partial_ecn(over)
    if partial and "ecn" not in over and ccs is not None and not any(_cc_ecn_default(c) for c in ccs):
        raise UsageError(f"--set {partial[0]}: no CC of this run ({', '.join(ccs)}) has default ECN thresholds to "
                         f"merge with; give {', '.join('ecn.' + k for k in _ECN_REQUIRED)}")
    return exp, over


def _check_ccs(key: str, names, aliases: dict) -> None:
    """Each name is a registered CC, a loadable plug-in or one of the experiment's aliases."""
    from congestion import registry
    for n in names:
        if not isinstance(n, str):
            raise UsageError(f"{key}: a CC is a name or path/to/file.py:ClassName, got {n!r}")
        if n in aliases:
            continue
        try:
            registry.load_class(n)
        except ValueError as e:
            near = closest(n, list(registry.names()) + list(aliases))
            raise UsageError(f"{key}: {e}" + (f" (did you mean {near[0]}?)" if near and ":" not in n else "")) from None


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
        raise UsageError(f"--set {key}: {who} parameter {name!r}"
                         + (f"; closest: {', '.join(near)}" if near else "")
                         + (f"; its parameters: {', '.join(every)}" if only and every else ""))
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


def split_params(sets: dict, params: dict) -> tuple[dict, dict]:
    """Experiment parameters (keys of ``params``) vs Scenario overrides (everything else), for
    already-typed values (a program's own dict; the command line uses :func:`parse_sets`)."""
    exp = {k: v for k, v in sets.items() if k in params}
    return exp, {k: v for k, v in sets.items() if k not in params}


def run_variants(out_dir: Path, variants: dict[str, Scenario], overrides: dict, plots: bool = True,
                 compare_name: str = "compare.png", title: str | None = None, capture=None,
                 rows: tuple[str, ...] = ("goodput", "queue", "ecn")) -> dict:
    """Run each variant into ``out_dir/<name>``, plot each and a comparison, print a table."""
    from controlplane.results import format_summary, load_run, summary
    out_dir.mkdir(parents=True, exist_ok=True)
    prune_stale_variants(out_dir, variants)
    summaries = {}
    for name, sc in variants.items():
        sc = apply_overrides(sc, overrides)
        run_dir = out_dir / name
        result = sc.run(run_dir, capture=capture.for_variant(name, len(variants) > 1) if capture else None)
        s = summary(load_run(run_dir))
        s["wall_s"] = round(result.wall_s, 3)
        summaries[name] = s
        print(format_summary(s))
        print(f"  ({result.counters['events']:,} events in {result.wall_s:.2f} s wall)\n")
        if plots:
            from controlplane.plots import plot_run
            plot_run(run_dir)
    if plots and variants:
        from controlplane.plots import plot_compare
        png = plot_compare([out_dir / n for n in variants], out_dir / compare_name, title=title, rows=rows)
        print(f"plots: {out_dir}/<variant>/plots/*.png and {png}")
    return summaries


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
    from controlplane.units import Gbps, us
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


def collective_experiment_setup(out_dir, defaults: dict, params: dict | None, seed: int, overrides: dict | None,
                                capture) -> tuple[dict, Path]:
    """What the collective experiments do first: refuse --pcap (not wired into them), resolve the
    parameters, make the results folder and write params.json. Returns (params, folder)."""
    if capture is not None:
        raise ValueError("--pcap: captures are not wired into the collective experiments")
    p = {**defaults, **(params or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_params(out, p, seed, overrides)
    return p, out


def rail_scenario(name: str, topology: dict, cc: str, seed: int, variant: str = "ecmp", **fields) -> Scenario:
    """A scenario on a rail_clos fabric with no workload of its own, for collectives
    (controlplane/collectives.py) run by the control plane; ``variant`` is a key of
    AI_PATH_VARIANTS (16 entropies per QP when spraying)."""
    if variant not in AI_PATH_VARIANTS:
        raise ValueError(f"variants: unknown {variant!r}; known: {list(AI_PATH_VARIANTS)}")
    return Scenario(name=name, topology={"topology": "rail_clos", **topology}, workload={"kind": "flows", "flows": []},
                    cc=cc, seed=seed, sample_interval_ps=0, monitor_ports="none", num_paths=16,
                    **{**AI_PATH_VARIANTS[variant], **fields})


def experiment_main(module: str, run, params: dict, default_out: str, argv=None) -> int:
    """``python -m experiments.<name>``: exactly ``softdpu run <name>`` (same options, parsing,
    errors and exit codes; see controlplane/cli.py)."""
    import sys
    from controlplane.cli import main
    name = module.rpartition(".")[2] if module != "__main__" else Path(default_out).name
    return main(["run", name, *(sys.argv[1:] if argv is None else argv)])


def capture_arg(path: str | None, text: str | None):
    """The --pcap FILE and --pcap-filter options as a CaptureSpec (None without --pcap)."""
    from controlplane.capture import CaptureSpec
    if path is None:
        if text:
            raise UsageError("--pcap-filter needs --pcap FILE")
        return None
    return CaptureSpec.parse(path, text)


__all__ = ["AI_PATH_VARIANTS", "prune_stale_variants", "rail_scenario", "write_params", "parse_sets", "split_params", "apply_overrides", "experiment_ccs", "param_kind",
           "scenario_kinds", "capture_arg", "run_variants", "experiment_main", "write_csv", "permutation_on_fat_tree", "chosen"]


#: what the experiments' parameters mean, where the name is shared by several experiments
#: (an experiment's docstring sentence naming a parameter in backquotes is used otherwise)
PARAM_MEANINGS = {
    "senders": "hosts sending to the one receiver (N of N:1)",
    "rate_bps": "link rate", "rate_gbps": "host link rate in Gb/s", "delay_ps": "propagation delay of each link",
    "size_bytes": "bytes per message (per flow)", "ccs": "congestion-control algorithms, one variant each",
    "cc": "the congestion-control algorithm (name or path/to/file.py:ClassName)",
    "long_flows": "long flows from t = 0", "long_bytes": "bytes per long flow", "burst": "senders of the incast burst",
    "burst_bytes": "bytes per burst message", "burst_at_ps": "when the burst starts",
    "k": "fat-tree arity (k-ary fat-tree: k^3/4 hosts)", "num_paths": "entropies (paths) per QP when spraying",
    "variants": "path-policy variants to run", "variant": "path-policy variant", "seeds": "seeds per point (averaged)",
    "num_rails": "rails (NICs per server)", "servers_per_leaf": "servers under each leaf",
    "leaves_per_rail": "leaf switches per rail", "spines_per_rail": "spine switches per rail",
    "cores_per_group": "core switches per group", "nvlink_gbps": "NVLink bandwidth per GPU in Gb/s",
    "chunk_bytes": "bytes per collective chunk (pipelining unit)", "hosts": "hosts",
    "handlers": "slow-path handler threads per DPU", "tax": "virtualization-tax model overrides (controlplane/vtax.py)",
    "pfc": "lossless fabric (PFC)", "scale": "preset size of the sweep", "buckets": "flow-size buckets of the table",
    "workloads": "flow-size distributions", "loads": "offered loads (fraction of host line rate)",
    "duration_us": "simulated time in us (none: the scale's default)",
    "window_us": "measurement window in us", "policy": "QP-context cache replacement policy",
    "fetch_latency_ps": "QP-context fetch latency (one PCIe read)", "max_outstanding": "concurrent QP-context fetches",
    "caches": "QP-context cache sizes (entries) to compare", "baseline": "also run without a QP-context cache",
    "peers": "peers per host", "qps": "QP counts to sweep (none: the scale's list)",
    "min_msgs": "messages per run at least", "load": "offered load (fraction of line rate)",
    "policies": "path policies to compare", "transports": "transports to compare (gbn, sr, ooo)",
    "reorder_window": "receiver reorder window (packets)", "pcap": "pcap file to replay (none: a built-in demo)",
    "time_scale": "multiplies the capture's time stamps", "algos": "all-reduce algorithms",
    "order": "rank order (random or topology)", "min_size": "smallest message in bytes",
    "max_size": "largest message in bytes", "sharp_latency_ns": "in-network reduction latency per switch (ns)",
    "sizes": "message sizes in bytes", "core_oversubscription": "core oversubscription ratios",
    "vias": "all-to-all routes (direct or via NVLink)", "fabrics": "fabrics to compare",
    "op_overhead_us": "per-operation software overhead (us)", "overheads_us": "overheads to sweep (us)",
    "link": "index of the link that fails", "fail_us": "when the link fails (us)",
    "detect_us": "NIC failure detection time (us)", "reconverge_us": "routing reconvergence time (us)",
    "sample_us": "sampling interval (us)", "grad_bytes": "gradient bytes per all-reduce",
    "job_gpus": "GPUs of the measured job", "background_jobs": "background jobs", "background_gpus": "GPUs per background job",
    "rates": "new connections per second per host to sweep", "offload": "where the vSwitch runs: host, dpu or hw",
    "offloads": "where the vSwitch runs, one variant each: host, dpu, hw", "drain_us": "time after the window to let "
    "connections finish (us)", "upcall_queue": "slots of each DPU's upcall queue", "install_latency_us":
    "megaflow install latency after the upcall is served (us)", "rto_us": "RDMA retransmission timeout (us)",
    "loads_gbps": "offered loads per server (Gb/s) to sweep", "mixes": "traffic mixes: long (long-lived connections), "
    "short (a connection per message)", "msg_bytes": "bytes per message", "long_conns": "long-lived connections per "
    "host (long mix)", "handshake_bytes": "bytes of the one-packet message that opens a long-lived connection",
    "warmup_us": "warm-up before the measurement window (us)", "per_connection": "per-connection policy (a megaflow "
    "per connection and direction)", "bar_load_gbps": "offered load (Gb/s) of the cycles-per-stage bars",
}


def param_meaning(module, name: str) -> str:
    """What experiment parameter ``name`` means: the shared glossary, else the experiment's
    docstring sentence naming it in backquotes."""
    import re
    if name in PARAM_MEANINGS:
        return PARAM_MEANINGS[name]
    doc = " ".join((module.__doc__ or "").split())
    for sentence in re.split(r"(?<=[.;:])\s+", doc):
        if f"`{name}`" in sentence:
            return sentence.strip() if len(sentence) <= 120 else sentence[:117].rstrip() + "..."
    return ""
