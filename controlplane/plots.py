"""Plots of a run, made from its results folder only (docs/architecture.md, 'The results folder'),
so a user can re-plot without re-running.

- :func:`plot_run` writes ``rates.png`` (per-flow goodput and CC pacing rate), ``queue.png``
  (queue and ECN-mark rate of the bottleneck port) and ``fct.png`` (FCT and slowdown CDFs).
- :func:`plot_compare` puts several runs side by side (e.g. DCQCN vs no CC), one column each.

Display units: time in µs, rates in Gbps, queues in KB (10^3 bytes), ECN marks per µs.
matplotlib is imported lazily, inside the functions, with the headless Agg backend, so that
importing this module (e.g. from the CLI) stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from controlplane.results import (
    PS_PER_US,
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
    paths = []
    for file_name, draw in (
        ("rates.png", _rates_figure),
        ("queue.png", _queue_figure),
        ("fct.png", _fct_figure),
    ):
        fig = draw(plt, run)
        fig.suptitle(run.title)
        fig.tight_layout()
        path = out / file_name
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths.append(path)
    return paths


ROWS = {
    "goodput": ("goodput (Gbps)", lambda ax, run, port, last: _draw_flows(ax, run, "qp_goodput_bps", legend=last)),
    "rate": ("pacing rate (Gbps)", lambda ax, run, port, last: _draw_flows(ax, run, "qp_rate_bps", legend=False)),
    "window": ("window (KB)", lambda ax, run, port, last: _draw_windows(ax, run)),
    "queue": ("queue (KB)", lambda ax, run, port, last: _draw_queue(ax, run, port, show_port=True)),
    "ecn": ("ECN marks / µs", lambda ax, run, port, last: _draw_ecn_rate(ax, run, port)),
    "pfc": ("PFC pauses / µs", lambda ax, run, port, last: _draw_pfc_rate(ax, run)),
    "cnp": ("CNPs / µs", lambda ax, run, port, last: _draw_cnp_rate(ax, run)),
}


def plot_compare(
    run_dirs: list[str | Path], out_png: str | Path, title: str | None = None,
    rows: tuple[str, ...] = ("goodput", "queue", "ecn"),
) -> Path:
    """Compare runs side by side in one PNG: one column per run.

    Rows: per-flow goodput (Gbps), queue of the bottleneck port (KB; the port with the largest
    peak queue if none is configured) and its ECN-mark rate (marks per µs). All panels share
    the time axis and each row shares its y scale, so columns compare at a glance. Each column
    is titled with the run, its Jain index and utilization (see :func:`summary`).

    Raises:
        ValueError: ``run_dirs`` is empty.
    """
    if not run_dirs:
        raise ValueError("plot_compare needs at least one run")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ValueError(f"plot_compare: unknown row(s) {unknown}; known: {sorted(ROWS)}")
    plt = _pyplot()
    runs = [load_run(d) for d in run_dirs]
    fig, axes = plt.subplots(
        len(rows), len(runs), sharex=True, sharey="row", squeeze=False,
        figsize=(1.0 + 4.2 * len(runs), 2.5 * len(rows)),
    )
    for col, run in enumerate(runs):
        axes[0, col].set_title(_column_title(run), fontsize=10)
        port = queue_port_index(run)
        for r, row in enumerate(rows):
            ROWS[row][1](axes[r, col], run, port, col == len(runs) - 1)
        axes[-1, col].set_xlabel("time (µs)")
    _floor_at_zero(axes.ravel())
    for r, row in enumerate(rows):
        axes[r, 0].set_ylabel(ROWS[row][0])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=DPI)
    plt.close(fig)
    return out_png


def _pyplot():
    """Import pyplot on the headless Agg backend (lazily: only when plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _column_title(run: Run) -> str:
    """Run title plus, where defined, its Jain index and utilization (see :func:`summary`)."""
    s = summary(run)
    facts = []
    if math.isfinite(s["jain_index"]):
        facts.append(f"Jain {s['jain_index']:.3f}")
    if math.isfinite(s["utilization"]):
        facts.append(f"utilization {100 * s['utilization']:.0f} %")
    return run.title + ("\n" + ", ".join(facts) if facts else "")


def _rates_figure(plt, run: Run):
    """Per-flow goodput (top) and CC pacing rate (bottom) over time."""
    fig, (ax_goodput, ax_rate) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    _draw_flows(ax_goodput, run, "qp_goodput_bps", legend=True)
    notes = []
    rate_bps = run.config.get("bottleneck_rate_bps")
    if rate_bps:
        ax_goodput.axhline(rate_bps / 1e9, color="0.3", linestyle="--", linewidth=1)
        notes.append("dashed: bottleneck rate")
    if run.ts["qp_ids"].size:
        t_from, t_to = convergence_window(run)
        ax_goodput.axvspan(t_from / PS_PER_US, t_to / PS_PER_US, color="0.92", zorder=0)
        notes.append("shaded: summary window")
    ax_goodput.set_ylabel("goodput (Gbps)")
    ax_goodput.set_title("goodput per flow" + (f" ({', '.join(notes)})" if notes else ""),
                         fontsize=9)
    _draw_flows(ax_rate, run, "qp_rate_bps", legend=False)
    ax_rate.set_ylabel("pacing rate (Gbps)")
    ax_rate.set_title("CC pacing rate per flow", fontsize=9)
    ax_rate.set_xlabel("time (µs)")
    _floor_at_zero((ax_goodput, ax_rate))
    return fig


def _queue_figure(plt, run: Run):
    """Queue length (top) and ECN-mark rate (bottom) of the bottleneck port over time."""
    fig, (ax_queue, ax_ecn) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    port = queue_port_index(run)
    _draw_queue(ax_queue, run, port, show_port=False)
    _draw_ecn_rate(ax_ecn, run, port)
    if port is not None:
        configured = run.config.get("bottleneck_port") is not None
        why = "bottleneck" if configured else "largest peak queue"
        ax_queue.set_title(f"egress queue of {run.ts['port_names'][port]} ({why})", fontsize=9)
    ax_queue.set_ylabel("queue (KB)")
    ax_ecn.set_ylabel("ECN marks / µs")
    ax_ecn.set_xlabel("time (µs)")
    _floor_at_zero((ax_queue, ax_ecn))
    return fig


def _fct_figure(plt, run: Run):
    """CDFs of flow completion time (µs) and slowdown over the finished flows."""
    fig, (ax_fct, ax_slowdown) = plt.subplots(1, 2, figsize=(10, 4))
    done = finished_mask(run.flows)
    fct_us = run.flows["fct_ps"][done].astype(np.float64) / PS_PER_US
    slowdown = run.flows["slowdown"][done].astype(np.float64)
    note = f"{int(done.sum())} of {done.size} flows finished"
    _draw_cdf(ax_fct, fct_us, note)
    _draw_cdf(ax_slowdown, slowdown[np.isfinite(slowdown)], note)
    ax_fct.set_xlabel("flow completion time (µs)")
    ax_slowdown.set_xlabel("slowdown (FCT / ideal FCT)")
    ax_fct.set_ylabel("fraction of finished flows")
    return fig


def _draw_flows(ax, run: Run, key: str, legend: bool) -> None:
    """One line per QP of ``ts[key]`` (bps) in Gbps over time (µs).

    Goodput is a mean over the interval ending at each sample, so it is drawn as steps
    covering that interval; the pacing rate is an instantaneous sample, drawn as a line.
    """
    labels = run.ts["qp_labels"]
    if labels.size == 0:
        _note(ax, "no flows")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    drawstyle = "steps-pre" if key == "qp_goodput_bps" else "default"
    marker = "o" if t_us.size == 1 else None
    for values, label, color in zip(run.ts[key].T / 1e9, labels, _flow_colors(labels.size)):
        ax.plot(t_us, values, color=color, label=str(label), linewidth=1.2,
                drawstyle=drawstyle, marker=marker)
    if legend and labels.size <= MAX_LEGEND_FLOWS:
        ax.legend(fontsize=7, ncol=2 if labels.size > 8 else 1, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, title="flow", title_fontsize=7)
    ax.grid(alpha=0.3)


def _draw_queue(ax, run: Run, port: int | None, show_port: bool) -> None:
    """Queue length (KB) of port column ``port`` over time (µs); note if there is none."""
    if port is None:
        _note(ax, "no ports")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    ax.plot(t_us, run.ts["port_queue_bytes"][:, port] / 1e3, color="tab:blue", linewidth=1.2,
            marker="o" if t_us.size == 1 else None)
    if show_port:
        ax.text(0.98, 0.95, str(run.ts["port_names"][port]), transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color=_NOTE_COLOR)
    ax.grid(alpha=0.3)


def _draw_ecn_rate(ax, run: Run, port: int | None) -> None:
    """ECN marks per µs at port column ``port``, per sample interval; note if there is none."""
    if port is None:
        _note(ax, "no ports")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    rate = counter_rate_per_us(run.ts["t_ps"], run.ts["port_ecn_marks"][:, port])
    ax.plot(t_us, rate, color="tab:red", linewidth=1.2, drawstyle="steps-pre",
            marker="o" if t_us.size == 1 else None)
    ax.grid(alpha=0.3)


def _draw_windows(ax, run: Run) -> None:
    """Per-flow CC window (KB); a note when the algorithm sets none (rate-based CCs)."""
    w = run.ts["qp_window_bytes"]
    if w.size == 0 or not np.any(w > 0):
        _note(ax, "no window (rate-based)")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    for values, color in zip(w.T / 1e3, _flow_colors(w.shape[1])):
        ax.plot(t_us, values, color=color, linewidth=1.2)
    ax.grid(alpha=0.3)


def _draw_cnp_rate(ax, run: Run) -> None:
    """Congestion notifications received by the senders per µs (CNP packets or BECN ACKs)."""
    cnps = run.ts.get("qp_cnps")
    if cnps is None or cnps.size == 0 or not np.any(cnps[-1] > 0):
        _note(ax, "no CNPs")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    ax.plot(t_us, counter_rate_per_us(run.ts["t_ps"], cnps.sum(axis=1)), color="tab:orange", linewidth=1.2,
            drawstyle="steps-pre")
    ax.grid(alpha=0.3)


def _draw_pfc_rate(ax, run: Run) -> None:
    """PFC pause frames received per µs, summed over the monitored ports."""
    pauses = run.ts.get("port_pause")
    if pauses is None or pauses.size == 0:
        _note(ax, "no PFC data")
        return
    t_us = run.ts["t_ps"] / PS_PER_US
    rate = counter_rate_per_us(run.ts["t_ps"], pauses.sum(axis=1))
    ax.plot(t_us, rate, color="tab:purple", linewidth=1.2, drawstyle="steps-pre")
    if not np.any(rate > 0):
        _note(ax, "no pauses")
    ax.grid(alpha=0.3)


def _draw_cdf(ax, values: np.ndarray, note: str) -> None:
    """Empirical CDF of ``values`` on a log x axis, or ``note`` if there are none."""
    if values.size == 0:
        _note(ax, note)
        return
    x = np.sort(values)
    y = np.arange(1, x.size + 1) / x.size
    ax.step(x, y, where="post", color="tab:blue", marker="o" if x.size == 1 else None)
    if x[0] > 0:
        from matplotlib.ticker import FormatStrFormatter, LogFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_ylim(0, 1.02)
    ax.set_title(note, fontsize=9)
    ax.grid(alpha=0.3, which="both")


def _floor_at_zero(axes) -> None:
    """Start each y axis at 0, keeping the autoscaled top.

    Called once everything is drawn: setting a limit freezes autoscaling, and axes sharing y
    autoscale over all their data only while it is still on.
    """
    for ax in axes:
        ax.set_ylim(bottom=0)


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
