"""``softdpu plot DIR`` on a sweep folder: each metric against each swept parameter, with the mean
across seeds and a 95 % bootstrap confidence interval, and ``DIR/summary.csv``.

Statistics (controlplane/results/analysis.py): the points of a sweep that share every swept value and the
variant are one *cell*; its seeds are the samples. Per cell and metric: n (finite values), the
mean, and the BCa bootstrap interval of the mean (scipy.stats.bootstrap, 9999 resamples, a fixed
generator seed: the same sweep gives the same figure and table). A cell with one seed has a mean
and no interval, and the figure says so. Points whose status is not ``ok`` (failed, or stopped by
a budget: their metrics describe a truncated run) are left out, and the figure counts them.

Figures: one PNG per swept parameter, ``DIR/plots/by_<parameter>.png``, one panel per metric
(up to 3 panels a row, about 1650 px wide), each panel with its own y range. The x axis is the
parameter: numeric values on a numeric axis (logarithmic when they span 50x or more, ticks at the
swept values, in units for ``*_bytes`` / ``*_bps`` / ``*_ps``), anything else on a categorical
axis in grid order. One line per variant (colour and marker); with other swept parameters, one
line per combination of their values (line style), so a line never averages over a parameter.
Counter metrics that are zero at every point are not drawn (the figure says which). A sweep
without a grid (seeds only) writes ``DIR/plots/by_variant.png``: the variants on the x axis;
variants named ``GROUP/LINE`` (fct_slowdown's ``fb_hadoop-50/hpcc``) put GROUP on the axis and
draw one line per LINE. An experiment's own metrics (its ``SWEEP_METRICS``, controlplane/run/sweep.py)
are in summary.csv and, those with a label, drawn first by default.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from controlplane.results.analysis import CONFIDENCE, METRICS, load, require, summarize

DEFAULT_METRICS = ("slowdown_p50", "slowdown_p99", "fct_p99_us", "goodput_gbps", "utilisation", "jain",
                   "drops", "ecn_marks", "pfc_pauses", "retx")
"""Metrics drawn by default, those with data."""

COUNTERS = {"drops", "ecn_marks", "pfc_pauses", "retx", "events"}
"""Metrics left out of the figure when zero at every point."""

LABELS = {
    "fct_p50_us": "FCT p50 (µs)", "fct_p99_us": "FCT p99 (µs)",
    "slowdown_p50": "slowdown p50", "slowdown_p95": "slowdown p95", "slowdown_p99": "slowdown p99",
    "goodput_gbps": "goodput (Gbps)", "utilisation": "utilisation of bottleneck", "jain": "Jain index",
    "drops": "drops (packets)", "ecn_marks": "ECN marks (packets)", "pfc_pauses": "PFC pauses",
    "retx": "retransmitted packets", "events": "events",
}

DPI = 120
PANEL_W, PANEL_H, MAX_COLS = 4.6, 3.3, 3
MARKERS = "osD^v<>phX*"
STYLES = ("-", "--", ":", "-.")


def plot_sweep(sweep_dir: str | Path, metrics: list[str] | None = None,
               confidence: float = CONFIDENCE) -> tuple[list[Path], Path, list[str]]:
    """Write ``DIR/summary.csv`` and one figure per swept parameter.

    Args:
        metrics: metric columns to draw (default :data:`DEFAULT_METRICS`, those with data);
            summary.csv has every metric of the index either way.

    Returns:
        (the PNGs, summary.csv, notes: what was left out and why, one line each).

    Raises:
        ValueError: a named metric is not a column of the index, or the sweep has no swept parameter.
        MissingExtra: pandas or scipy is not installed.
    """
    require("pandas")
    require("scipy.stats")
    root = Path(sweep_dir)
    results = load(root)
    index = results.index
    params = [p for p in results.params if p in index.columns]
    missing = [p for p in results.params if p not in index.columns]
    if missing:
        raise ValueError(f"{root}/sweep.csv has no column for the swept parameter(s) {', '.join(missing)}")
    from controlplane.run.sweep import extra_metric_labels
    extra = extra_metric_labels(results.sweep.get("experiment", ""))
    available = [m for m in (*METRICS, *extra) if m in index.columns]
    labels = {**LABELS, **{m: lab for m, lab in extra.items() if lab}}
    defaults = [m for m, lab in extra.items() if lab] + list(DEFAULT_METRICS)
    if metrics:
        unknown = [m for m in metrics if m not in index.columns]
        if unknown:
            raise ValueError(f"--metrics: {', '.join(unknown)} not in {root}/sweep.csv; "
                             f"its metrics: {', '.join(available)}")
    notes = []
    status = index["status"].astype(str) if "status" in index else None
    ok = index[status == "ok"] if status is not None else index
    if len(ok) < len(index):
        counts = status[status != "ok"].value_counts()
        notes.append(f"left out {len(index) - len(ok)} of {len(index)} points: "
                     + ", ".join(f"{n} {s}" for s, n in counts.items()))
    ok = _in_grid_order(ok, params, results.sweep.get("grid", {}))
    by = params + ["variant"]
    table = summarize(ok, by, available, confidence) if len(ok) else None
    summary_csv = root / "summary.csv"
    if table is not None:
        table.to_csv(summary_csv, index=False)
    else:
        import pandas as pd
        pd.DataFrame(columns=by + ["points"]).to_csv(summary_csv, index=False)
        notes.append("no point finished: nothing to plot")
        return [], summary_csv, notes

    chosen, no_value, zero = [], [], []
    for m in (metrics or defaults):
        if f"{m}_mean" not in table.columns:
            continue
        values = table[f"{m}_mean"].to_numpy(dtype=np.float64)
        if not np.isfinite(values).any():
            no_value.append(m)          # e.g. goodput of runs that record no time series
        elif m in COUNTERS and not metrics and np.nanmax(np.abs(values)) == 0:
            zero.append(m)
        else:
            chosen.append(m)
    if no_value:
        notes.append(f"not drawn, no value at any point: {', '.join(no_value)}")
    if zero:
        notes.append(f"not drawn, 0 at every point: {', '.join(zero)}")
    out = root / "plots"
    out.mkdir(parents=True, exist_ok=True)
    seeds = sorted(ok["seed"].unique().tolist()) if "seed" in ok else []
    title = results.sweep.get("experiment", root.name)
    pngs = []
    if not params:              # seeds only: the metrics per variant
        axis, plotted = _by_variant(table)
        pngs.append(_figure(plotted, axis, [], chosen, out / "by_variant.png", title=title, seeds=seeds,
                            notes=notes, confidence=confidence, labels=labels))
    for p in params:
        pngs.append(_figure(table, p, [q for q in params if q != p], chosen, out / f"by_{_file_part(p)}.png",
                            title=title, seeds=seeds, notes=notes, confidence=confidence, labels=labels))
    return pngs, summary_csv, notes


def _by_variant(table):
    """A sweep without a grid (seeds only) is drawn against its variants: variants named
    ``GROUP/LINE`` (fct_slowdown's ``fb_hadoop-50/hpcc``) put GROUP on the x axis and draw one
    line per LINE; other variants are each a category of their own."""
    table = table.copy()
    names = table["variant"].astype(str)
    if names.str.contains("/").all():
        parts = names.str.rsplit("/", n=1)
        table["variant group"] = parts.str[0]
        table["variant"] = parts.str[1]
        return "variant group", table
    table["variant group"] = names
    return "variant group", table


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _in_grid_order(frame, params: list[str], grid: dict):
    """Rows ordered by each parameter's position in the grid (numbers by value), then variant, seed."""
    if frame.empty:
        return frame
    keys = []
    for p in params:
        keys.append(_order_key(frame[p], grid.get(p, [])))
    frame = frame.assign(**{f"__k{i}": k for i, k in enumerate(keys)})
    cols = [f"__k{i}" for i in range(len(keys))] + [c for c in ("variant", "seed") if c in frame]
    return frame.sort_values(cols, kind="stable").drop(columns=[f"__k{i}" for i in range(len(keys))])


def _order_key(column, grid_values: list):
    """A sortable key per value: the value itself if the column is numeric, else its position in
    the grid (values not in the grid after, in order of appearance)."""
    if _numeric(column):
        return column.astype("float64")
    order = {str(v): i for i, v in enumerate(grid_values)}
    seen = {}
    for v in column.astype(str):
        if v not in order and v not in seen:
            seen[v] = len(order) + len(seen)
    return column.astype(str).map(lambda v: order.get(v, seen.get(v)))


def _numeric(column) -> bool:
    import pandas as pd
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _tick_text(param: str, value) -> str:
    from controlplane.config.units import format_quantity, unit_kind
    kind = unit_kind(param.rsplit(".", 1)[-1])
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (int, np.integer)) and kind:
        return format_quantity(int(value), kind)
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _figure(table, param: str, others: list[str], metrics: list[str], png: Path, title: str,
            seeds: list, notes: list[str], confidence: float, labels: dict | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    numeric = _numeric(table[param])
    categories = list(dict.fromkeys(table[param].astype(str))) if not numeric else []
    xs_all = table[param].to_numpy(dtype=np.float64) if numeric else None
    log_x = bool(numeric and np.all(xs_all > 0) and xs_all.max() / xs_all.min() >= 50)
    variants = list(dict.fromkeys(table["variant"].astype(str)))
    combos = list(dict.fromkeys(tuple(r) for r in table[others].astype(str).itertuples(index=False))) \
        if others else [()]
    raw = {}                                     # the values of each combination, for the legend
    for r in table[others].itertuples(index=False) if others else ():
        raw.setdefault(tuple(str(v) for v in r), tuple(r))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = [(v, c) for v in variants for c in combos]

    n = max(1, len(metrics))
    cols = min(MAX_COLS, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows + 1.0), squeeze=False,
                             layout="constrained")
    one_seed = len(seeds) <= 1
    handles = {}
    for k, metric in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        for li, (variant, combo) in enumerate(lines):
            sel = table["variant"].astype(str) == variant
            for name, value in zip(others, combo):
                sel &= table[name].astype(str) == value
            part = table[sel]
            if part.empty:
                continue
            if numeric:
                x = part[param].to_numpy(dtype=np.float64)
            else:
                x = np.array([categories.index(v) for v in part[param].astype(str)], dtype=np.float64)
                if len(lines) > 1:       # dodge coinciding lines sideways on a categorical axis
                    x = x + (li - (len(lines) - 1) / 2) * min(0.25, 0.6 / len(lines))
            y = part[f"{metric}_mean"].to_numpy(dtype=np.float64)
            low = part[f"{metric}_ci_low"].to_numpy(dtype=np.float64)
            high = part[f"{metric}_ci_high"].to_numpy(dtype=np.float64)
            vi = variants.index(variant)
            color = colors[vi % len(colors)]
            style = STYLES[combos.index(combo) % len(STYLES)]
            marker = MARKERS[vi % len(MARKERS)]
            label = variant + (" (" + ", ".join(f"{o}={_tick_text(o, v)}" for o, v in zip(others, raw[combo])) + ")"
                               if others else "")
            # hollow markers and lines that get smaller and thinner from the first variant to the
            # last: lines that coincide (two variants that behave alike) stay visible, as rings
            size = 9 - 6 * vi / max(1, len(variants) - 1) if len(variants) > 1 else 6
            width = 2.6 - 1.6 * vi / max(1, len(variants) - 1) if len(variants) > 1 else 1.6
            (h,) = ax.plot(x, y, linestyle=style, marker=marker, color=color, markersize=size, linewidth=width,
                           markerfacecolor="none", markeredgewidth=1.3, label=label)
            has_ci = np.isfinite(low) & np.isfinite(high)
            if has_ci.any():
                ax.errorbar(x[has_ci], y[has_ci], yerr=[y[has_ci] - low[has_ci], high[has_ci] - y[has_ci]],
                            fmt="none", ecolor=color, elinewidth=1, capsize=3, alpha=0.8)
            handles.setdefault(label, h)
        ax.set_title((labels or LABELS).get(metric, metric), fontsize=10)
        if log_x:
            ax.set_xscale("log")
        if numeric:
            ticks = np.unique(xs_all)
            if ticks.size <= 10:
                ax.set_xticks(ticks)
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xticklabels([_tick_text(param, v) for v in ticks])
        else:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories, rotation=30 if max(map(len, categories), default=0) > 8 else 0,
                               ha="right" if max(map(len, categories), default=0) > 8 else "center")
            ax.set_xlim(-0.5, len(categories) - 0.5)
        y_all = table[[f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"]].to_numpy(dtype=np.float64)
        y_all = y_all[np.isfinite(y_all)]
        if metric.startswith(("slowdown", "fct")) and y_all.size and y_all.min() > 0 and y_all.max() / y_all.min() >= 50:
            ax.set_yscale("log")
        ax.set_xlabel(param, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    for k in range(len(metrics), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    if not metrics:
        axes[0][0].text(0.5, 0.5, "no metric with data", ha="center", va="center", transform=axes[0][0].transAxes)
    if one_seed:
        how = f"{len(seeds)} seed: mean of one run, no interval (run more seeds for one)"
    else:
        how = (f"mean over {len(seeds)} seeds, error bars: {round(confidence * 100)} % bootstrap CI of the mean "
               "(BCa, 9999 resamples)")
    if len(variants) > 1:
        how += "; lines that coincide show as concentric markers"
    fig.suptitle(f"{title}: metrics vs {param}\n{how}" + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 4), fontsize=9, frameon=False)
    fig.savefig(png, dpi=DPI)
    plt.close(fig)
    return png
