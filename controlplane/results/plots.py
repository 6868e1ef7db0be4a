"""Plots of a run, made from its results folder only (docs/architecture.md, 'The results folder'),
so a user can re-plot without re-running.

- :func:`plot_run` writes ``rates.png`` (per-flow goodput and CC pacing rate), ``queue.png``
  (queue and ECN-mark rate of the bottleneck port) and ``fct.png`` (FCT and slowdown CDFs).
- :func:`plot_compare` puts several runs side by side (e.g. DCQCN vs no CC), one column each.
- :func:`plot_questions` compares many runs (e.g. every CC) with one figure per question: how
  the flows share the bottleneck, what the queue and the congestion signals do, and the CC
  windows; one panel per run, each with its own ranges.

Display units: time in µs (ms for traces longer than 5 ms), rates in Gbps, queues in KB
(10^3 bytes; MB = 10^6 bytes for queues of megabytes), ECN marks per µs.
matplotlib is imported lazily, inside the functions, with the headless Agg backend, so that
importing this module (e.g. from the CLI) stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from controlplane.results.folder import (
    PS_PER_US,
    sample_intervals,
    Run,
    convergence_window,
    counter_rate_per_us,
    finished_mask,
    load_run,
    queue_port_index,
    summary,
)

DPI = 120
"""Resolution of every PNG written here."""

MAX_LEGEND_FLOWS = 16
"""Per-flow plots get a legend only up to this many flows."""

MS_ABOVE_US = 5000.0
"""Time axes switch from µs to ms when the longest trace is longer than this (µs)."""

PANEL_COLUMNS = 4
"""Panels per row in :func:`plot_questions` (4 × 3.5 in at 120 dpi: 1776 px wide)."""

PANEL_SIZE_IN = (3.5, 2.6)
"""Width and height of one panel of :func:`plot_questions`, in inches."""

_NOTE_COLOR = "0.45"


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the standard plots of one run as PNGs.

    Args:
        run_dir: the results folder.
        out_dir: where to write; default ``<run_dir>/plots/`` (created if needed).

    Returns:
        Paths of ``rates.png``, ``queue.png`` and ``fct.png``. Panels without data (no QPs,
        no ports, no finished flows) carry a note instead of a plot.
    """
    plt = _pyplot()
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "plots"
    out.mkdir(parents=True, exist_ok=True)
    return [_save(plt, fig, out / file_name) for file_name, fig in run_figures(run).items()]


def run_figures(run: Run) -> dict:
    """The figures of :func:`plot_run` (file name -> matplotlib Figure), not yet saved."""
    plt = _pyplot()
    figs = {}
    for file_name, draw in (
        ("rates.png", _rates_figure),
        ("queue.png", _queue_figure),
        ("fct.png", _fct_figure),
    ):
        fig = draw(plt, run)
        fig.suptitle(_fit(run.title, fig.get_figwidth() - 0.4, 12))
        fig.tight_layout()
        figs[file_name] = fig
    return figs


ROWS = {
    "goodput": ("goodput (Gbps)", lambda ax, run, port, last, tu: _draw_flows(ax, run, "qp_goodput_bps", legend=last, tu=tu,
                                                                               max_points=MAX_POINTS)),
    "rate": ("pacing rate (Gbps)", lambda ax, run, port, last, tu: _draw_flows(ax, run, "qp_rate_bps", legend=False, tu=tu)),
    "window": ("window (KB)", lambda ax, run, port, last, tu: _draw_windows(ax, run, tu)),
    "queue": ("queue (KB)", lambda ax, run, port, last, tu: _draw_queue(ax, run, port, show_port=True, tu=tu)),
    "ecn": ("ECN marks / µs", lambda ax, run, port, last, tu: _draw_ecn_rate(ax, run, port, tu, MAX_POINTS)),
    "pfc": ("PFC pauses / µs", lambda ax, run, port, last, tu: _draw_pfc_rate(ax, run, tu)),
    "cnp": ("CNP packets / µs", lambda ax, run, port, last, tu: _draw_cnp_rate(ax, run, tu)),
}

#: rows whose panels get their own y range when their peaks differ by more than OWN_RANGE_RATIO
#: (a queue of MB next to one of KB hides the latter); within that ratio they share one scale
OWN_RANGE_ROWS = {"queue", "ecn", "pfc", "cnp", "window"}
OWN_RANGE_RATIO = 4.0


def plot_compare(
    run_dirs: list[str | Path], out_png: str | Path, title: str | None = None,
    rows: tuple[str, ...] = ("goodput", "queue", "ecn"),
) -> Path:
    """Compare runs side by side in one PNG: one column per run.

    Rows: per-flow goodput (Gbps), queue of the bottleneck port (KB; the port with the largest
    peak queue if none is configured) and its ECN-mark rate (marks per µs). All panels share
    the time axis; rates share their y scale across columns, so columns compare at a glance,
    while queues and event rates get each panel's own range (see ``OWN_RANGE_ROWS``). Each
    column is titled with the run, its Jain index and utilization (see :func:`summary`).
    The ``cnp`` row draws CNP packets only for runs whose receivers send them; other runs'
    panels are blanked with a note saying what they use instead.

    Raises:
        ValueError: ``run_dirs`` is empty.
    """
    if not run_dirs:
        raise ValueError("plot_compare needs at least one run")
    plt = _pyplot()
    fig = compare_figure([load_run(d) for d in run_dirs], title, rows)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    return _save(plt, fig, out_png)


def compare_figure(runs: list[Run], title: str | None = None,
                   rows: tuple[str, ...] = ("goodput", "queue", "ecn")):
    """The figure of :func:`plot_compare` for loaded runs, not yet saved."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"plot_compare: unknown row(s) {unknown}; known: {sorted(ROWS)}")
    plt = _pyplot()
    tu = _time_unit(runs)
    width = 4.2
    fig, axes = plt.subplots(
        len(rows), len(runs), sharex=True, squeeze=False,
        figsize=(1.0 + width * len(runs), 2.5 * len(rows)),
    )
    bins: list[float] = []
    for col, run in enumerate(runs):
        axes[0, col].set_title(_fit(_column_title(run), width - 0.5, 10), fontsize=10)
        port = queue_port_index(run)
        for r, row in enumerate(rows):
            binned = ROWS[row][1](axes[r, col], run, port, col == len(runs) - 1, tu)
            if row == "goodput" and binned:
                bins.append(binned)
        axes[-1, col].set_xlabel(f"time ({tu[1]})")
    for r, row in enumerate(rows):
        if row not in OWN_RANGE_ROWS:
            _share_y(axes[r])
        else:
            _share_y(axes[r], max_ratio=OWN_RANGE_RATIO)
        axes[r, 0].set_ylabel(ROWS[row][0])
    _floor_at_zero(axes.ravel())
    _few_ticks(axes.ravel())
    if title:
        fig.suptitle(title)
    if bins:
        fig.text(0.01, 0.005, f"goodput and event rates: means over bins of up to {_us_text(max(bins))}", fontsize=7,
                 color=_NOTE_COLOR, ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.02, 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_questions(run_dirs: list[str | Path], out_dir: str | Path, stem: str = "compare",
                   title: str | None = None) -> list[Path]:
    """Compare many runs with one figure per question, one panel per run (named by its folder).

    - ``<stem>.png``: how do the flows share the bottleneck? Per-flow goodput (Gbps, the same
      scale in every panel), the summary window shaded; each panel titled with the Jain index
      and utilization over that window (see :func:`summary`).
    - ``<stem>_queue.png``: what do the queue and the congestion signals do? The bottleneck
      queue (each panel its own range, KB or MB) with the ECN-mark rate on the right axis (runs
      without ECN marking say so), PFC pauses in the title; then, for the runs whose receivers
      send CNP packets only, the CNPs the senders receive per µs. Runs that echo ECN on ACKs
      (BECN) instead are named in a note.
    - ``<stem>_window.png``: the CC window per flow (KB), for the runs whose CC sets one.
      Not written if none does.

    Returns:
        The paths written, in this order.

    Raises:
        ValueError: ``run_dirs`` is empty.
    """
    if not run_dirs:
        raise ValueError("plot_questions needs at least one run")
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = question_figures([load_run(d) for d in run_dirs], title)
    return [_save(plt, fig, out / f"{stem}{suffix}.png") for suffix, fig in figs.items()]


def question_figures(runs: list[Run], title: str | None = None) -> dict:
    """The figures of :func:`plot_questions` (file-name suffix "", "_queue", "_window" ->
    matplotlib Figure), not yet saved."""
    plt = _pyplot()
    tu = _time_unit(runs)
    figs = {"": _goodput_question(plt, runs, tu, title), "_queue": _queue_question(plt, runs, tu, title)}
    windowed = [r for r in runs if _has_window(r)]
    if windowed:
        figs["_window"] = _window_question(plt, windowed, tu, title)
    return figs


def feedback(run: Run) -> str | None:
    """How the run's senders learn about congestion marks: ``"cnp"`` (CNP packets from the
    receivers, counted in ``qp_cnps``), ``"ack_echo"`` (BECN bits on ACKs, counted in the same
    series) or None (no notification reached a sender). The mode is the resolved
    ``cnp_mode`` of config.json (the CC's default unless the scenario sets one)."""
    cnps = run.ts.get("qp_cnps")
    if cnps is None or cnps.size == 0 or not np.any(cnps[-1] > 0):
        return None
    mode = run.config.get("resolved", {}).get("cnp_mode") or run.config.get("cnp_mode") or "interval"
    return "ack_echo" if mode == "ack_echo" else "cnp"


def _pyplot():
    """Import pyplot on the headless Agg backend (lazily: only when plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _panel_grid(plt, sections: list[int], title: str | None):
    """A figure of PANEL_COLUMNS-wide rows holding ``sections`` (panel counts, each section
    starting on a new row); unused cells are removed. Returns (fig, [axes of each section])."""
    ncols = min(PANEL_COLUMNS, max(sections))
    rows_per = [math.ceil(n / ncols) for n in sections]
    nrows = sum(rows_per)
    w, h = PANEL_SIZE_IN
    fig, grid = plt.subplots(nrows, ncols, squeeze=False, figsize=(w * ncols + 0.3, h * nrows + 0.9))
    out, row = [], 0
    for n, k in zip(sections, rows_per):
        cells = [grid[row + i // ncols, i % ncols] for i in range(k * ncols)]
        for ax in cells[n:]:
            fig.delaxes(ax)
        out.append(cells[:n])
        row += k
    if title:
        fig.suptitle(title)
    return fig, out


def _goodput_question(plt, runs: list[Run], tu, title):
    fig, (axes,) = _panel_grid(plt, [len(runs)], _with(title, "goodput per flow"))
    top = 0.0
    bins = []
    for ax, run in zip(axes, runs):
        bins.append(_draw_flows(ax, run, "qp_goodput_bps", legend=False, tu=tu, max_points=MAX_POINTS))
        if run.ts["qp_ids"].size:
            t_from, t_to = convergence_window(run)
            ax.axvspan(t_from / PS_PER_US / tu[0], t_to / PS_PER_US / tu[0], color="0.92", zorder=0)
            top = max(top, float(np.nanmax(run.ts["qp_goodput_bps"], initial=0.0)) / 1e9)
        rate_bps = run.config.get("bottleneck_rate_bps")
        if rate_bps:
            ax.axhline(rate_bps / 1e9, color="0.3", linestyle="--", linewidth=0.8)
            top = max(top, rate_bps / 1e9)
        ax.set_title(_fit(run.path.name + "\n" + _facts(run), PANEL_SIZE_IN[0] - 0.4, 9), fontsize=9)
    for ax in axes:
        ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)
    _label_grid(fig, axes, "goodput (Gbps)", tu)
    _few_ticks(axes)
    coarse = [b for b in bins if b]
    mean_over = (f"goodput: mean per bin of up to {_us_text(max(coarse))}\n" if coarse else "")
    fig.text(0.01, 0.005, mean_over + "shaded: summary window (all flows active, first 20 % skipped)\n"
             "dashed: bottleneck rate", fontsize=7, color=_NOTE_COLOR, ha="left", va="bottom")
    handles, labels = axes[0].get_legend_handles_labels()
    if 0 < len(labels) <= MAX_LEGEND_FLOWS and all(
            list(r.ts["qp_labels"]) == list(runs[0].ts["qp_labels"]) for r in runs):
        fig.legend(handles, labels, loc="lower right", ncol=min(len(labels), 8), fontsize=7,
                   title="flow", title_fontsize=7, frameon=False)
        legend_in = 0.17 * (1 + math.ceil(len(labels) / 8)) + 0.1    # rows of 7 pt text and the title
        fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def _queue_question(plt, runs: list[Run], tu, title):
    cnp_runs = [r for r in runs if feedback(r) == "cnp"]
    sections = [len(runs)] + ([len(cnp_runs)] if cnp_runs else [])
    fig, groups = _panel_grid(plt, sections, _with(title, "bottleneck queue and congestion signals"))
    twins = []
    for ax, run in zip(groups[0], runs):
        port = queue_port_index(run)
        if port is None:
            _note(ax, "no ports")
            ax.set_title(run.path.name, fontsize=9)
            continue
        q = run.ts["port_queue_bytes"][:, port].astype(np.float64)
        peak = float(q.max()) if q.size else 0.0
        scale, unit = (1e6, "MB") if peak >= 2e6 else (1e3, "KB")
        t = run.ts["t_ps"] / PS_PER_US / tu[0]
        ax.fill_between(t, q / scale, step="pre", color="tab:blue", alpha=0.35, linewidth=0)
        ax.plot(t, q / scale, color="tab:blue", linewidth=0.9, drawstyle="steps-pre")
        ax.set_ylabel(f"queue ({unit})", color="tab:blue", fontsize=8)
        ax.set_ylim(0, peak / scale * 1.1 if peak > 0 else 1.0)
        ax.grid(alpha=0.3)
        facts = [f"peak {peak / scale:.3g} {unit}"]
        marks = run.ts["port_ecn_marks"][:, port]
        ecn_on = run.config.get("resolved", {}).get("ecn", True) is not None
        if marks.size and marks[-1] > 0:
            tw = ax.twinx()
            ends = _bin_ends(marks.size, MAX_POINTS)
            tw.plot(t[ends], counter_rate_per_us(run.ts["t_ps"][ends], marks[ends]), color="tab:red",
                    linewidth=0.8, drawstyle="steps-pre")
            tw.set_ylim(bottom=0)
            tw.set_ylabel("ECN marks / µs", color="tab:red", fontsize=8)
            twins.append(tw)
        else:
            facts.append("no ECN marks" if ecn_on else "ECN off")
        pauses = int(run.counters.get("pfc_pauses", 0))
        if pauses:
            facts.append(f"{pauses:,} PFC pauses")
        ax.set_title(_fit(run.path.name + "\n" + ", ".join(facts), PANEL_SIZE_IN[0] - 0.6, 9), fontsize=9)
    if cnp_runs:
        for ax, run in zip(groups[1], cnp_runs):
            t = run.ts["t_ps"] / PS_PER_US / tu[0]
            cnps = run.ts["qp_cnps"]
            ends = _bin_ends(cnps.shape[0], MAX_POINTS)
            ax.plot(t[ends], counter_rate_per_us(run.ts["t_ps"][ends], cnps.sum(axis=1)[ends]),
                    color="tab:orange", linewidth=0.9, drawstyle="steps-pre")
            ax.set_ylabel("CNPs rx / µs", color="tab:orange", fontsize=8)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.set_title(_fit(f"{run.path.name}: CNP packets received by the senders"
                              f" ({int(cnps[-1].sum()):,} in all)", PANEL_SIZE_IN[0] - 0.4, 9), fontsize=9)
    panels = [ax for g in groups for ax in g]
    for g in groups:
        for ax in g[-PANEL_COLUMNS:]:
            ax.set_xlabel(f"time ({tu[1]})", fontsize=8)
    _few_ticks(panels + twins)
    echo = [r.path.name for r in runs if feedback(r) == "ack_echo"]
    note = ("blue: queue of the bottleneck port; red: ECN marks there."
            + (" CNP panels only for the runs whose receivers send CNP packets" if cnp_runs else "")
            + (f"; {', '.join(echo)} echo ECN on ACKs instead" if echo else "") + ".")
    fig.text(0.01, 0.005, note, fontsize=7, color=_NOTE_COLOR, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def _window_question(plt, runs: list[Run], tu, title):
    fig, (axes,) = _panel_grid(plt, [len(runs)], _with(title, "CC window per flow (window-based CCs)"))
    for ax, run in zip(axes, runs):
        _draw_windows(ax, run, tu)
        ax.set_ylim(bottom=0)
        ax.set_title(run.path.name, fontsize=9)
    _label_grid(fig, axes, "window (KB)", tu)
    _few_ticks(axes)
    fig.tight_layout()
    return fig


def _label_grid(fig, axes, ylabel: str, tu) -> None:
    """y label on the first panel of each row, x label on the bottom panel of each column."""
    ncols = min(PANEL_COLUMNS, len(axes))
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        if i + ncols >= len(axes):
            ax.set_xlabel(f"time ({tu[1]})", fontsize=8)


def _with(title: str | None, what: str) -> str:
    return f"{title}: {what}" if title else what


def _has_window(run: Run) -> bool:
    w = run.ts["qp_window_bytes"]
    return bool(w.size and np.any(w > 0))


def _facts(run: Run) -> str:
    """Jain index and utilization over the summary window, or why fairness is not defined."""
    s = summary(run)
    facts = []
    if math.isfinite(s["jain_index"]):
        facts.append(f"Jain {s['jain_index']:.2f}")
    elif not s.get("flows_overlap", True):
        facts.append("flows never overlap")
    if math.isfinite(s["utilization"]):
        facts.append(f"util. {100 * s['utilization']:.0f} %")
    return ", ".join(facts)


def _column_title(run: Run) -> str:
    """Run title plus, where defined, its Jain index and utilization (see :func:`summary`)."""
    facts = _facts(run)
    return run.title + ("\n" + facts if facts else "")


def _time_unit(runs: list[Run]) -> tuple[float, str]:
    """(µs per display unit, unit name): ms when the longest trace exceeds MS_ABOVE_US."""
    end_us = max((float(r.ts["t_ps"][-1]) / PS_PER_US for r in runs if r.ts["t_ps"].size), default=0.0)
    return (1000.0, "ms") if end_us > MS_ABOVE_US else (1.0, "µs")


def _rates_figure(plt, run: Run):
    """Per-flow goodput (top) and CC pacing rate (bottom) over time."""
    tu = _time_unit([run])
    fig, (ax_goodput, ax_rate) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    _draw_flows(ax_goodput, run, "qp_goodput_bps", legend=True, tu=tu)
    notes = []
    rate_bps = run.config.get("bottleneck_rate_bps")
    if rate_bps:
        ax_goodput.axhline(rate_bps / 1e9, color="0.3", linestyle="--", linewidth=1)
        notes.append("dashed: bottleneck rate")
    if run.ts["qp_ids"].size:
        t_from, t_to = convergence_window(run)
        ax_goodput.axvspan(t_from / PS_PER_US / tu[0], t_to / PS_PER_US / tu[0], color="0.92", zorder=0)
        notes.append("shaded: summary window")
    ax_goodput.set_ylabel("goodput (Gbps)")
    ax_goodput.set_title("goodput per flow" + (f" ({', '.join(notes)})" if notes else ""),
                         fontsize=9)
    _draw_flows(ax_rate, run, "qp_rate_bps", legend=False, tu=tu)
    ax_rate.set_ylabel("pacing rate (Gbps)")
    ax_rate.set_title("CC pacing rate per flow", fontsize=9)
    ax_rate.set_xlabel(f"time ({tu[1]})")
    _floor_at_zero((ax_goodput, ax_rate))
    _few_ticks((ax_goodput, ax_rate))
    return fig


def _queue_figure(plt, run: Run):
    """Queue length (top) and ECN-mark rate (bottom) of the bottleneck port over time."""
    tu = _time_unit([run])
    fig, (ax_queue, ax_ecn) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    port = queue_port_index(run)
    _draw_queue(ax_queue, run, port, show_port=False, tu=tu)
    _draw_ecn_rate(ax_ecn, run, port, tu)
    if port is not None:
        configured = run.config.get("bottleneck_port") is not None
        why = "bottleneck" if configured else "largest peak queue"
        ax_queue.set_title(f"egress queue of {run.ts['port_names'][port]} ({why})", fontsize=9)
    ax_queue.set_ylabel("queue (KB)")
    ax_ecn.set_ylabel("ECN marks / µs")
    ax_ecn.set_xlabel(f"time ({tu[1]})")
    _floor_at_zero((ax_queue, ax_ecn))
    _few_ticks((ax_queue, ax_ecn))
    return fig


def _fct_figure(plt, run: Run):
    """CDFs of flow completion time (µs, or ms for flows of 10 ms and more) and slowdown."""
    fig, (ax_fct, ax_slowdown) = plt.subplots(1, 2, figsize=(10, 4))
    done = finished_mask(run.flows)
    fct_us = run.flows["fct_ps"][done].astype(np.float64) / PS_PER_US
    slowdown = run.flows["slowdown"][done].astype(np.float64)
    note = f"{int(done.sum())} of {done.size} flows finished"
    div, unit = (1000.0, "ms") if fct_us.size and fct_us.max() >= 1e4 else (1.0, "µs")
    _draw_cdf(ax_fct, fct_us / div, note)
    _draw_cdf(ax_slowdown, slowdown[np.isfinite(slowdown)], note)
    ax_fct.set_xlabel(f"flow completion time ({unit})")
    ax_slowdown.set_xlabel("slowdown (FCT / ideal FCT)")
    ax_fct.set_ylabel("fraction of finished flows")
    return fig


MAX_POINTS = 240
"""Goodput and event rates in :func:`plot_questions` are averaged into at most this many bins
per panel (a 5 µs sample holds a few packets: drawn raw over milliseconds, it is a blur)."""


def _bin_ends(n: int, max_points: int | None) -> np.ndarray:
    """Indices of the last sample of each bin of ceil(n / max_points) consecutive samples."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    step = 1 if not max_points or n <= max_points else math.ceil(n / max_points)
    ends = np.arange(step - 1, n, step)
    return ends if ends.size and ends[-1] == n - 1 else np.append(ends, n - 1).astype(np.int64)


def _draw_flows(ax, run: Run, key: str, legend: bool, tu=(1.0, "µs"),
                max_points: int | None = None) -> float:
    """One line per QP of ``ts[key]`` (bps) in Gbps over time.

    Goodput is a mean over the interval ending at each sample, so it is drawn as steps
    covering that interval; the pacing rate is an instantaneous sample, drawn as a line.
    With ``max_points``, goodput is averaged (weighted by interval length: the exact mean)
    into at most that many bins. Returns the bin width in ps (0 if not binned).
    """
    labels = run.ts["qp_labels"]
    if labels.size == 0:
        _note(ax, "no flows")
        return 0.0
    t_ps = run.ts["t_ps"]
    values_bps = run.ts[key].astype(np.float64)
    width = 0.0
    if key == "qp_goodput_bps" and max_points and t_ps.size > max_points:
        start, end = sample_intervals(run)
        ends = _bin_ends(t_ps.size, max_points)
        firsts = np.concatenate(([0], ends[:-1] + 1))
        w = (end - start).astype(np.float64)
        sums = np.add.reduceat(values_bps * w[:, None], firsts, axis=0)
        spans = np.add.reduceat(w, firsts)
        values_bps = sums / np.where(spans > 0, spans, 1.0)[:, None]
        width = float(np.max(spans))
        t_ps = t_ps[ends]
    t = t_ps / PS_PER_US / tu[0]
    drawstyle = "steps-pre" if key == "qp_goodput_bps" else "default"
    marker = "o" if t.size == 1 else None
    for values, label, color in zip(values_bps.T / 1e9, labels, _flow_colors(labels.size)):
        ax.plot(t, values, color=color, label=str(label), linewidth=1.0,
                drawstyle=drawstyle, marker=marker)
    if legend and labels.size <= MAX_LEGEND_FLOWS:
        ax.legend(fontsize=7, ncol=2 if labels.size > 8 else 1, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title="flow", title_fontsize=7)
    ax.grid(alpha=0.3)
    return width


def _us_text(ps: float) -> str:
    us = ps / PS_PER_US
    return f"{us / 1000:g} ms" if us >= 1000 else f"{us:g} µs"


def _draw_queue(ax, run: Run, port: int | None, show_port: bool, tu=(1.0, "µs")) -> None:
    """Queue length (KB) of port column ``port`` over time; note if there is none."""
    if port is None:
        _note(ax, "no ports")
        return
    t = run.ts["t_ps"] / PS_PER_US / tu[0]
    ax.plot(t, run.ts["port_queue_bytes"][:, port] / 1e3, color="tab:blue", linewidth=1.2,
            marker="o" if t.size == 1 else None)
    if show_port:
        ax.text(0.98, 0.95, str(run.ts["port_names"][port]), transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color=_NOTE_COLOR)
    ax.grid(alpha=0.3)


def _draw_ecn_rate(ax, run: Run, port: int | None, tu=(1.0, "µs"), max_points: int | None = None) -> None:
    """ECN marks per µs at port column ``port``, per sample interval (with ``max_points``, per
    bin of consecutive intervals); note if there is none."""
    if port is None:
        _note(ax, "no ports")
        return
    ends = _bin_ends(run.ts["t_ps"].size, max_points)
    t = run.ts["t_ps"][ends] / PS_PER_US / tu[0]
    rate = counter_rate_per_us(run.ts["t_ps"][ends], run.ts["port_ecn_marks"][ends, port])
    ax.plot(t, rate, color="tab:red", linewidth=1.2, drawstyle="steps-pre",
            marker="o" if t.size == 1 else None)
    if not np.any(rate > 0):
        ecn_on = run.config.get("resolved", {}).get("ecn", True) is not None
        _note(ax, "no ECN marks" if ecn_on else "no ECN marks (ECN off)")
    ax.grid(alpha=0.3)


def _draw_windows(ax, run: Run, tu=(1.0, "µs")) -> None:
    """Per-flow CC window (KB); a note when the algorithm sets none (rate-based CCs)."""
    if not _has_window(run):
        _note(ax, "no window (rate-based)")
        return
    t = run.ts["t_ps"] / PS_PER_US / tu[0]
    w = run.ts["qp_window_bytes"] / 1e3
    flows = run.flows
    if len(flows.get("finish_ps", ())) == w.shape[1]:    # one flow per QP: no window before or after it
        fin, t_ps = flows["finish_ps"], run.ts["t_ps"][:, None]
        gone = ((fin[None, :] >= 0) & (t_ps > fin[None, :])) | (t_ps < flows["start_ps"][None, :])
        w = np.where(gone, np.nan, w)
    for values, color in zip(w.T, _flow_colors(w.shape[1])):
        ax.plot(t, values, color=color, linewidth=1.0)
    ax.grid(alpha=0.3)


def _draw_cnp_rate(ax, run: Run, tu=(1.0, "µs")) -> None:
    """CNP packets received by the senders per µs; for a run whose senders get no CNP packets
    (no marks, or marks echoed on ACKs) the panel is blanked with a note saying so."""
    kind = feedback(run)
    if kind != "cnp":
        ax.set_axis_off()
        _note(ax, "no CNP packets" + (" (ECN echoed on ACKs)" if kind == "ack_echo" else ""))
        return
    t = run.ts["t_ps"] / PS_PER_US / tu[0]
    ax.plot(t, counter_rate_per_us(run.ts["t_ps"], run.ts["qp_cnps"].sum(axis=1)), color="tab:orange",
            linewidth=1.2, drawstyle="steps-pre")
    ax.grid(alpha=0.3)


def _draw_pfc_rate(ax, run: Run, tu=(1.0, "µs")) -> None:
    """PFC pause frames received per µs, summed over the monitored ports."""
    pauses = run.ts.get("port_pause")
    if pauses is None or pauses.size == 0:
        _note(ax, "no PFC data")
        return
    t = run.ts["t_ps"] / PS_PER_US / tu[0]
    rate = counter_rate_per_us(run.ts["t_ps"], pauses.sum(axis=1))
    ax.plot(t, rate, color="tab:purple", linewidth=1.2, drawstyle="steps-pre")
    if not np.any(rate > 0):
        _note(ax, "no pauses")
    ax.grid(alpha=0.3)


def _draw_cdf(ax, values: np.ndarray, note: str) -> None:
    """Empirical CDF of ``values`` on a log x axis (see :func:`log_axis`), or ``note`` if
    there are none."""
    if values.size == 0:
        _note(ax, note)
        return
    x = np.sort(values)
    y = np.arange(1, x.size + 1) / x.size
    ax.step(x, y, where="post", color="tab:blue", marker="o" if x.size == 1 else None)
    if x[0] > 0:
        log_axis(ax, float(x[0]), float(x[-1]), "x")
    ax.set_ylim(0, 1.02)
    ax.set_title(note, fontsize=9)
    ax.grid(alpha=0.3, which="both")


#: tick mantissas of :func:`log_axis` by the decades the data spans (at least this many)
_LOG_SUBS = ((3.0, (1.0,)), (1.0, (1.0, 2.0, 5.0)), (0.0, (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))


def log_axis(ax, lo: float, hi: float, axis: str = "x") -> None:
    """Put ``ax``'s ``axis`` on a log scale with a few readable ticks covering [lo, hi] (> 0).

    Ticks are at 10^k only over 3+ decades (labelled 10^k), at 1, 2, 5·10^k over 1-3, and at
    1, 1.5, 2, 3, 5, 7·10^k over less, labelled as plain numbers ("20", "1500", "0.5"); the limits widen to
    the ticks just outside the data, so at least two ticks show however narrow the range.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    lo, hi = (lo, hi) if lo <= hi else (hi, lo)
    decades = math.log10(hi / lo)
    subs = next(s for floor, s in _LOG_SUBS if decades >= floor)
    ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in subs]
    below = max(t for t in ticks if t <= lo * (1 + 1e-12))
    above = min(t for t in ticks if t >= hi * (1 - 1e-12))
    if above <= below:
        above = min(t for t in ticks if t > below)
    shown = [t for t in ticks if below <= t <= above]
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(below, above)
    a = ax.xaxis if axis == "x" else ax.yaxis
    if subs == (1.0,):                     # powers of ten only: 10^k, every other one past 8 decades
        step = 2 if len(shown) > 9 else 1
        a.set_major_locator(FixedLocator(shown[::step]))
        a.set_major_formatter(FuncFormatter(lambda v, _pos: f"$10^{{{round(math.log10(v))}}}$"))
    else:
        a.set_major_locator(FixedLocator(shown))
        a.set_major_formatter(FuncFormatter(lambda v, _pos: tick_text(v)))
    a.set_minor_locator(NullLocator())
    a.set_minor_formatter(NullFormatter())


def tick_text(v: float) -> str:
    """A tick value as short plain text: 20, 1500, 25000, 0.5, 1.5 (no exponent below 10^7)."""
    if v == 0:
        return "0"
    if abs(v) >= 1e7 or abs(v) < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text


def _few_ticks(axes, nbins: int = 4) -> None:
    """At most ``nbins`` + 1 round major ticks on each linear axis, so labels stay apart."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        if not ax.get_visible() or not ax.axison:
            continue
        if ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
        if ax.get_yscale() == "linear":
            ax.yaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))


def _share_y(axes, max_ratio: float | None = None) -> None:
    """One y range over the row (the union of each panel's autoscaled range); with
    ``max_ratio``, only if the largest top is at most that many times the smallest positive
    top (else each panel keeps its own range)."""
    lims = [ax.get_ylim() for ax in axes if ax.axison and _has_data(ax)]
    if not lims:
        return
    lo, hi = min(l[0] for l in lims), max(l[1] for l in lims)
    tops = [l[1] for l in lims if l[1] > 0]
    if max_ratio is not None and tops and max(tops) > max_ratio * min(tops):
        return
    for ax in axes:
        if ax.axison and _has_data(ax):
            ax.set_ylim(lo, hi)


def _has_data(ax) -> bool:
    """The panel draws something other than a flat zero line (its own range would be arbitrary)."""
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=np.float64)
        if y.size and np.nanmax(np.abs(y), initial=0.0) > 0:
            return True
    return False


def _fit(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped so that each line fits ``width_in`` inches at ``fontsize`` points
    (DejaVu Sans averages about 0.6 em per character)."""
    import textwrap

    chars = max(8, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) or line
                     for line in text.split("\n"))


def _floor_at_zero(axes) -> None:
    """Start each y axis at 0, keeping the top.

    Called once everything is drawn: setting a limit freezes autoscaling, and axes sharing y
    autoscale over all their data only while it is still on.
    """
    for ax in axes:
        if ax.axison:
            if _has_data(ax) or not ax.get_lines():
                ax.set_ylim(bottom=0)
            else:
                ax.set_ylim(0, 1)          # all zero: a plain 0-1 axis, not matplotlib's ±0.05


def _note(ax, text: str) -> None:
    """Mark an empty panel with a centred grey note."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color=_NOTE_COLOR, fontsize=10)


def _flow_colors(n: int) -> list:
    """n distinguishable colours: tab10 / tab20 for few flows, a viridis ramp for many."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["viridis"](v) for v in np.linspace(0.0, 0.95, n)]


#: marker / line style cycle for experiments' line plots whose series may coincide: a series
#: drawn exactly over another stays visible by its markers and dashes
SERIES_STYLES = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1))), ("x", (0, (3, 1, 1, 1))),
                 ("P", (0, (1, 1))), ("*", (0, (8, 2)))]


def series_style(i: int) -> dict:
    """Keyword arguments (marker, linestyle, hollow markers) of the i-th series of a plot,
    distinct for the first ``len(SERIES_STYLES)`` series."""
    marker, ls = SERIES_STYLES[i % len(SERIES_STYLES)]
    return {"marker": marker, "linestyle": ls, "markerfacecolor": "none"}


def coinciding(ax, rtol: float = 1e-3) -> list[list[str]]:
    """Groups (of two or more) of labelled lines in ``ax`` that lie on top of each other: the
    same x values and y values within ``rtol`` of the largest |y| of the pair (0.1 %: less
    than a line width on any plot made here)."""
    groups: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
    for line in ax.get_lines():
        label = str(line.get_label())
        if label.startswith("_"):
            continue
        x = np.asarray(line.get_xdata(), dtype=np.float64)
        y = np.asarray(line.get_ydata(), dtype=np.float64)
        for gx, gy, names in groups:
            if gx.shape == x.shape and np.array_equal(gx, x, equal_nan=True):
                scale = max(float(np.nanmax(np.abs(gy), initial=0.0)), float(np.nanmax(np.abs(y), initial=0.0)))
                if np.all((np.abs(gy - y) <= rtol * scale) | (np.isnan(gy) & np.isnan(y))):
                    names.append(label)
                    break
        else:
            groups.append((x, y, [label]))
    return [names for _, _, names in groups if len(names) > 1]


def coincide_note(ax) -> str | None:
    """A note naming the lines of ``ax`` that lie on top of each other, or None."""
    groups = coinciding(ax)
    if not groups:
        return None
    return "coincide: " + "; ".join(" = ".join(g) for g in groups)


def legend_with_note(ax, **kwargs):
    """``ax.legend(**kwargs)``, titled with :func:`coincide_note` when lines coincide."""
    note = coincide_note(ax)
    if note:
        kwargs.setdefault("title", _fit(note, 3.0, kwargs.get("fontsize", 8)))
        kwargs.setdefault("title_fontsize", kwargs.get("fontsize", 8))
    return ax.legend(**kwargs)
