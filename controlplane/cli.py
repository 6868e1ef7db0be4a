"""The ``softdpu`` command: run experiments, re-plot results, list what exists, benchmark."""
from __future__ import annotations

import argparse
import importlib
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
        if hasattr(mod, "run") and hasattr(mod, "PARAMS"):
            out[m.name] = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
    return out


def cmd_list(_a) -> int:
    from congestion import registry
    print("experiments:")
    for name, doc in sorted(_experiments().items()):
        print(f"  {name:20s} {doc}")
    print("congestion control (--cc NAME, or --cc path/to/file.py:ClassName):")
    for name in registry.names():
        cls = registry.load_class(name)
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        print(f"  {name:20s} {doc[0] if doc else ''}")
    print("benchmarks: softdpu bench [permutation-128|permutation-1024|cc-callback|cc-cost|capture|multipath|vswitch] [--cc-impl c|python]")
    return 0


def cmd_run(a) -> int:
    from controlplane.experiment import capture_arg, parse_sets, split_params
    exps = _experiments()
    if a.experiment not in exps:
        print(f"softdpu: unknown experiment {a.experiment!r}; known: {', '.join(sorted(exps))}", file=sys.stderr)
        return 2
    mod = importlib.import_module(f"experiments.{a.experiment}")
    exp, over = split_params(parse_sets(a.set), mod.PARAMS)
    if a.cc:
        exp["ccs"] = [a.cc]
    out = a.out or f"results/{a.experiment}"
    mod.run(out, exp, over, seed=a.seed, plots=not a.no_plots, capture=capture_arg(a.pcap, a.pcap_filter))
    return 0


def cmd_plot(a) -> int:
    from controlplane.plots import plot_compare, plot_run
    root = Path(a.results)
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
    if len(runs) > 1:
        print(plot_compare(runs, root / "compare.png"))
    return 0


def cmd_bench(a) -> int:
    from controlplane import bench
    special = {"cc-callback": bench.run_cc_callback, "cc-cost": bench.run_cc_cost, "capture": bench.run_capture,
               "multipath": bench.run_multipath, "vswitch": bench.run_vswitch}
    if a.scenario in special:
        print(bench.format_row(special[a.scenario](seed=a.seed)))
        return 0
    for impl in a.cc_impl:
        r = bench.run(a.scenario, impl, seed=a.seed)
        print(f"{a.scenario} (cc_impl={impl}):")
        print(bench.format_row(r))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="softdpu", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run an experiment and plot it")
    r.add_argument("experiment")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="experiment parameter or scenario field (dotted, e.g. cc_params.flavour=paper)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--out", default=None, help="results folder (default results/<experiment>)")
    r.add_argument("--cc", default=None, help="cc name or path/to/file.py:ClassName (replaces the experiment's list)")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--pcap", default=None, metavar="FILE",
                   help="capture packets to a pcap file (one per variant: FILE-<variant>.pcap)")
    r.add_argument("--pcap-filter", default=None, metavar="'KEY=VALUE ...'",
                   help="points=hosts|switches|all|h3|sw0->h0|<port id>,... dir=tx|rx|both qp=N from_us= to_us= "
                        "max=N snaplen=BYTES split=1")
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("plot", help="(re)make the plots of a results folder")
    p.add_argument("results")
    p.set_defaults(func=cmd_plot)
    l = sub.add_parser("list", help="experiments and congestion-control algorithms")
    l.set_defaults(func=cmd_list)
    b = sub.add_parser("bench", help="time a benchmark scenario")
    b.add_argument("scenario", nargs="?", default="permutation-128",
                   help="permutation-128, permutation-1024, cc-callback (cost of the Python plug-in path) "
                        "cc-cost (ns per CC event of each built-in, C and Python), capture (pcap of every hop, 128-byte snaplen) "
                        "multipath (permutation-1024 with ECMP + go-back-N vs spray_rr + ooo) "
                        "or vswitch (fast-path lookups/s: exact, masked with 1/8/32 subtables; slow-path installs/s)")
    b.add_argument("--cc-impl", choices=["c", "python"], action="append", default=None,
                   help="c (the DCQCN C twin, default) or python (the reference through the plug-in path); repeatable")
    b.add_argument("--seed", type=int, default=1)
    b.set_defaults(func=cmd_bench)
    a = ap.parse_args(argv)
    if a.cmd == "bench" and not a.cc_impl:
        a.cc_impl = ["c"]
    from dataplane.sim import CCPluginError, SimError
    try:
        return a.func(a)
    except ValueError as e:
        print(f"softdpu: {e}", file=sys.stderr)
        return 2
    except (CCPluginError, SimError) as e:
        # a run stopped by its congestion control (a plug-in that raised, a rate below the floor) or
        # by the data plane: one line naming the CC, QP and event; the results so far are written
        print(f"softdpu: the run stopped: {e}" + (f" (results up to then in {a.out or 'results/' + a.experiment})"
                                                  if a.cmd == "run" else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
