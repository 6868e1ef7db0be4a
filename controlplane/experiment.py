"""What every experiment script shares: running a set of named scenario variants into one
results folder, plotting them, printing a summary table, and a small command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from controlplane.scenario import Scenario


def parse_value(text: str):
    """--set values: JSON if it parses (numbers, lists, true/false/null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, _, v = item.partition("=")
        out[k.strip()] = parse_value(v.strip())
    return out


def split_params(sets: dict, params: dict) -> tuple[dict, dict]:
    """Experiment parameters (keys of ``params``) vs Scenario overrides (everything else)."""
    exp = {k: v for k, v in sets.items() if k in params}
    return exp, {k: v for k, v in sets.items() if k not in params}


def run_variants(out_dir: Path, variants: dict[str, Scenario], overrides: dict, plots: bool = True,
                 compare_name: str = "compare.png", title: str | None = None, capture=None,
                 rows: tuple[str, ...] = ("goodput", "queue", "ecn")) -> dict:
    """Run each variant into ``out_dir/<name>``, plot each and a comparison, print a table."""
    from controlplane.results import format_summary, load_run, summary
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name, sc in variants.items():
        sc = sc.with_overrides(overrides)
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
    """``python -m experiments.<name>``: the same options as ``softdpu run <name>``."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--cc", default=None, help="a cc name or path/to/file.py:ClassName")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--pcap", default=None, help="write a pcap capture (see controlplane/capture.py)")
    ap.add_argument("--pcap-filter", default=None, metavar="'points=... snaplen=... ...'")
    a = ap.parse_args(argv)
    exp, over = split_params(parse_sets(a.set), params)
    if a.cc:
        exp["ccs"] = [a.cc]
    run(a.out, exp, over, seed=a.seed, plots=not a.no_plots, capture=capture_arg(a.pcap, a.pcap_filter))
    return 0


def capture_arg(path: str | None, text: str | None):
    from controlplane.capture import CaptureSpec
    if path is None:
        if text:
            raise ValueError("--pcap-filter needs --pcap FILE")
        return None
    return CaptureSpec.parse(path, text)


__all__ = ["AI_PATH_VARIANTS", "rail_scenario", "write_params", "parse_sets", "split_params", "run_variants", "experiment_main", "write_csv", "permutation_on_fat_tree", "chosen"]
