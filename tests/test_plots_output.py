"""Plots and printed output that make their point (issue 13, item 8): figure sizes and panel
counts, tick labels that do not run together, log axes with readable labels, titles that fit,
markers for coinciding series, fairness only for overlapping flows, a results folder holding
one run, and the printed summaries."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from controlplane.results import plots
from controlplane.run.cli import main
from controlplane.results.folder import flows_overlap, format_summary, load_run, summary
from tests.test_results import PS_PER_US, incast_config, tiny_timeseries, write_run

REPO = Path(__file__).resolve().parents[1]
CCS = ["dcqcn", "dcqcn-paper", "dctcp", "timely", "hpcc", "swift", "nscc", "none"]

#: README figures are shown about 900 px wide; a PNG of at most ~1800 px stays legible at half size
MAX_WIDTH_PX = 1800


# --- helpers -------------------------------------------------------------------------------------

def _tick_labels(ax, which: str) -> list:
    """The drawn tick labels of one axis of ``ax``: ticks inside the view, visible, non-empty."""
    ax.figure.canvas.draw()                     # tick texts are set when drawn
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for tick in axis.get_major_ticks():
        if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
            continue
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text():
                out.append(label)
    return out


def overlapping_tick_labels(fig) -> list[tuple[str, str]]:
    """Pairs of tick labels of the same axis whose rendered boxes (Agg renderer) intersect."""
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        for which in ("x", "y"):
            labels = _tick_labels(ax, which)
            renderer = fig.canvas.get_renderer()
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for (ta, ba), (tb, bb) in itertools.combinations(boxes, 2):
                if ba.overlaps(bb):
                    bad.append((ta, tb))
    return bad


def panels(fig) -> list:
    """The visible axes that are panels of their own (a twin y axis shares its host's box)."""
    out = []
    for ax in fig.axes:
        if ax.axison and not any(ax is not o and ax.get_position().bounds == o.get_position().bounds
                                 and fig.axes.index(o) < fig.axes.index(ax) for o in fig.axes):
            out.append(ax)
    return out


def size_px(fig) -> tuple[float, float]:
    w, h = fig.get_size_inches()
    return w * plots.DPI, h * plots.DPI


@pytest.fixture
def captured_figures(monkeypatch):
    """Keep the figures an experiment's plot() closes, to inspect them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kept = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    for fig in kept:
        real_close(fig)


@pytest.fixture(scope="module")
def cc_compare_runs(tmp_path_factory):
    """A small cc_compare (2 long flows, a 2-flow burst) with every default CC, without plots."""
    out = tmp_path_factory.mktemp("cc_compare")
    assert main(["run", "cc_compare", "--set", "long_flows=2", "--set", "long_bytes=300KB", "--set", "burst=2",
                 "--set", "burst_bytes=100KB", "--set", "burst_at_ps=20us", "--out", str(out), "--no-plots"]) == 0
    return [load_run(out / cc) for cc in CCS]


# --- 1. cc_compare ------------------------------------------------------------------------------

@pytest.mark.plots
def test_cc_compare_figures_are_few_readable_panels(cc_compare_runs):
    figs = plots.question_figures(cc_compare_runs, "cc_compare")
    # one figure per question: goodput + fairness, queue + signals, windows
    assert set(figs) == {"", "_queue", "_window"}
    for name, fig in figs.items():
        w, h = size_px(fig)
        assert w <= MAX_WIDTH_PX, (name, w)
        # the old single figure: 56 panels in 4152 x 2100 px; now at most one panel per CC
        # (+ one CNP panel per CNP-sending CC) per figure
        assert 1 <= len(panels(fig)) <= len(CCS) + 2, (name, len(panels(fig)))
        assert overlapping_tick_labels(fig) == [], name
        for ax in panels(fig):
            assert 2 <= len(_tick_labels(ax, "x")) <= 6, (name, ax.get_title())
    # the queue panels have their own ranges: a 100 KB queue is not drawn on a 12 MB axis
    queue_axes = [ax for ax in panels(figs["_queue"]) if ax.get_ylabel().startswith("queue")]
    assert len(queue_axes) == len(CCS)
    for ax, run in zip(queue_axes, cc_compare_runs):
        port = plots.queue_port_index(run)
        peak = run.ts["port_queue_bytes"][:, port].max() / (1e6 if "MB" in ax.get_ylabel() else 1e3)
        assert ax.get_ylim()[1] == pytest.approx(1.1 * peak)
    import matplotlib.pyplot as plt
    for fig in figs.values():
        plt.close(fig)


@pytest.mark.plots
def test_cnp_panels_only_for_ccs_that_send_cnps(cc_compare_runs):
    kinds = {run.path.name: plots.feedback(run) for run in cc_compare_runs}
    # DCQCN's receivers send CNP packets; DCTCP and NSCC echo ECN on ACKs (counted in the same
    # qp_cnps series: the old CNP row plotted those as CNPs); the others get no marks
    assert kinds["dcqcn"] == "cnp" and kinds["dcqcn-paper"] == "cnp"
    assert kinds["dctcp"] == "ack_echo" and kinds["nscc"] == "ack_echo"
    assert kinds["timely"] is None and kinds["none"] is None
    fig = plots.question_figures(cc_compare_runs)["_queue"]
    cnp_titles = [ax.get_title() for ax in panels(fig) if "CNP" in ax.get_ylabel()]
    assert sorted(t.split(":")[0] for t in cnp_titles) == ["dcqcn", "dcqcn-paper"]
    # plot_compare's cnp row: a run without CNP packets gets a blanked panel saying what it uses
    cmp = plots.compare_figure(cc_compare_runs[1:4], rows=("goodput", "cnp"))
    drawn = [ax for ax in cmp.axes if ax.axison and ax.get_lines() and "CNP" not in ax.get_ylabel()]
    blank = [ax for ax in cmp.axes if not ax.axison]
    assert len(blank) == 2                         # dctcp (ACK echo), timely (nothing)
    assert any("ECN echoed on ACKs" in t.get_text() for ax in blank for t in ax.texts)
    assert drawn
    import matplotlib.pyplot as plt
    plt.close(fig)
    plt.close(cmp)


@pytest.mark.plots
def test_softdpu_plot_on_a_cc_compare_folder_draws_the_question_figures(cc_compare_runs, tmp_path, capsys):
    # `softdpu plot DIR` on a cc_compare results folder draws what `softdpu run cc_compare` draws
    # (experiments/cc_compare.py: plot_questions -> cc_compare.png, _queue, _window), not the
    # one-column-per-run compare.png (before the fix it wrote only compare.png)
    import shutil
    for cc in ("dcqcn", "dctcp", "hpcc"):        # three variants keep it short; hpcc has a window
        shutil.copytree(cc_compare_runs[0].path.parent / cc, tmp_path / cc)
    assert main(["plot", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    for stem in ("cc_compare", "cc_compare_queue", "cc_compare_window"):
        assert (tmp_path / f"{stem}.png").is_file(), stem
        assert str(tmp_path / f"{stem}.png") in printed
    assert not (tmp_path / "compare.png").exists()
    # the same figures as plot_questions draws: one goodput panel per variant
    import matplotlib.image as mpimg
    drawn = mpimg.imread(tmp_path / "cc_compare.png")
    figs = plots.question_figures([load_run(tmp_path / cc) for cc in ("dcqcn", "dctcp", "hpcc")])
    w, h = size_px(figs[""])
    assert drawn.shape[:2] == (round(h), round(w))
    import matplotlib.pyplot as plt
    for fig in figs.values():
        plt.close(fig)


@pytest.mark.plots
def test_compare_many_long_runs_has_readable_ticks(tmp_path):
    # eight runs of 15 ms (long traces in µs gave labels like "7500100001250015000")
    ts = tiny_timeseries(np.full((300, 2), 40.0))
    ts["t_ps"] = ts["t_ps"] * 50                   # 50 µs samples: 15 ms
    runs = [load_run(write_run(tmp_path / f"r{i}", config=incast_config(bottleneck_port=0), ts=ts,
                               flows=[])) for i in range(8)]
    fig = plots.compare_figure(runs)
    assert overlapping_tick_labels(fig) == []
    assert fig.axes[-1].get_xlabel() == "time (ms)"
    import matplotlib.pyplot as plt
    plt.close(fig)


# --- 2. log axes and titles -----------------------------------------------------------------------

@pytest.mark.plots
@pytest.mark.parametrize("lo,hi", [(18_000.0, 26_000.0), (1.05, 1.8), (300.0, 3e7), (0.7, 12.0), (20_000.0, 20_400.0)])
def test_log_axis_labels_are_distinct_and_apart(lo, hi):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([lo, hi], [0, 1])
    plots.log_axis(ax, lo, hi, "x")
    labels = [t.get_text() for t in _tick_labels(ax, "x")]
    # the old formatter labelled every minor tick of 18,000-26,000 "2e+04"
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert all("e+" not in t and "e-" not in t for t in labels), labels
    assert ax.get_xlim()[0] <= lo and ax.get_xlim()[1] >= hi
    assert overlapping_tick_labels(fig) == []
    plt.close(fig)


@pytest.mark.plots
def test_fct_cdf_ticks_and_plugin_title(tmp_path):
    flows = [{"flow_id": k, "qp": k, "src": f"h{k}", "dst": "h0", "size_bytes": 10_000_000, "start_ps": 0,
              "finish_ps": f, "fct_ps": f, "ideal_fct_ps": 800 * PS_PER_US, "slowdown": f / (800 * PS_PER_US)}
             for k, f in enumerate(np.linspace(18_000, 26_000, 9).astype(int) * PS_PER_US)]
    spec = "experiments/plugins/ecn_aimd.py:EcnAimd"
    run = load_run(write_run(tmp_path / "r", config=incast_config(cc=spec, name="incast-16to1"), flows=flows))
    figs = plots.run_figures(run)
    ax_fct = figs["fct.png"].axes[0]
    labels = [t.get_text() for t in _tick_labels(ax_fct, "x")]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert ax_fct.get_xlabel() == "flow completion time (ms)"
    # the plug-in is named by its label, and column titles fit their panel
    assert run.title == "incast-16to1 (cc=ecn_aimd)"
    cmp = plots.compare_figure([run, run])
    cmp.canvas.draw()
    r = cmp.canvas.get_renderer()
    for ax in cmp.axes[:2]:
        assert ax.title.get_window_extent(r).width <= ax.get_window_extent(r).width
        assert spec not in ax.get_title()
    import matplotlib.pyplot as plt
    for fig in [*figs.values(), cmp]:
        plt.close(fig)


@pytest.mark.plots
def test_long_title_is_wrapped_to_fit():
    text = "a-very-long-scenario-name-with-many-parts (cc=a_plugin_with_a_long_name)\nJain 0.98, util. 97 %"
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3.5, 2.6))
    ax.set_title(plots._fit(text, 3.5 - 0.5, 10), fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert ax.title.get_window_extent(r).width <= ax.get_window_extent(r).width
    plt.close(fig)


# --- 3. reorder_cost ------------------------------------------------------------------------------

@pytest.mark.plots
def test_reorder_cost_labels_and_zero_bars(tmp_path, captured_figures):
    from experiments import reorder_cost
    rows = [{"policy": pol, "transport": tr, "reorder_peak": 0 if pol == "ecmp" else 40, "ooo_fraction": 0.0 if pol == "ecmp" else 0.3,
             "retransmitted": 0 if tr == "ooo" or pol == "ecmp" else 10 ** (3 + i), "mean_fct_us": 500.0 + i}
            for pol in ("ecmp", "spray_rr") for i, tr in enumerate(("gbn", "sr", "ooo"))]
    reorder_cost.plot(rows, tmp_path / "r.png")
    fig = captured_figures[-1]
    for ax in fig.axes:
        assert ax.get_ylabel(), ax.get_title()     # every panel says what and in which unit
    retx = next(ax for ax in fig.axes if ax.get_title() == "retransmitted packets")
    assert retx.get_yscale() != "log"              # a log axis cannot draw 0: it drew 0.5
    heights = sorted(p.get_height() for p in retx.patches)
    zeros = sum(1 for r in rows if r["retransmitted"] == 0)
    assert heights[:zeros] == [0.0] * zeros
    assert sum(t.get_text() == "0" for t in retx.texts) == zeros
    assert retx.get_ylim()[0] == 0


# --- 4. coinciding lines ---------------------------------------------------------------------------

def _assert_lines_distinguishable(fig):
    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if not str(ln.get_label()).startswith("_")]
        for a, b in itertools.combinations(lines, 2):
            assert (a.get_marker(), a.get_linestyle()) != (b.get_marker(), b.get_linestyle()), \
                (a.get_label(), b.get_label())


def _legend_and_text(fig) -> str:
    parts = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            parts.append(leg.get_title().get_text())
        parts += [t.get_text() for t in ax.texts]
    return " ".join(parts)


@pytest.mark.plots
def test_spraying_coinciding_curves_are_marked(tmp_path, captured_figures):
    from experiments import spraying_vs_ecmp
    rows = []
    for name in ("ecmp-gbn", "ecmp-ooo", "spray_rr-ooo"):
        for j in range(16):
            fct = (1000 + 100 * j) * PS_PER_US if name.startswith("ecmp") else (700 + 10 * j) * PS_PER_US
            rows.append({"variant": name, "fct_ps": fct, "throughput_bps": 8e6 * 8e12 / fct})
    spraying_vs_ecmp.plot(rows, 100e9, tmp_path / "s.png")
    fig = captured_figures[-1]
    _assert_lines_distinguishable(fig)
    assert "ecmp-gbn = ecmp-ooo" in _legend_and_text(fig)
    assert overlapping_tick_labels(fig) == []


@pytest.mark.plots
def test_link_failure_coinciding_curves_are_marked(tmp_path, captured_figures):
    from experiments import link_failure
    t = np.arange(1, 101, dtype=np.float64) * 10
    series = {"ecmp-gbn": (t, np.full(100, 8e11)), "ecmp-sr": (t, np.full(100, 8e11)),
              "spray_rr-ooo": (t, np.full(100, 1.2e12))}
    summ = [{"variant": n, "p99_fct_us": 900.0, "max_fct_us": 1000.0} for n in series]
    link_failure.plot(series, summ, {"k": 4, "link": 47, "fail_us": 300, "detect_us": 100, "reconverge_us": 1000},
                      tmp_path / "l.png")
    fig = captured_figures[-1]
    _assert_lines_distinguishable(fig)
    assert "ecmp-gbn = ecmp-sr" in _legend_and_text(fig)


@pytest.mark.plots
def test_allreduce_coinciding_curves_are_marked(tmp_path, captured_figures):
    from experiments import allreduce_busbw
    rows = [{"variant": v, "algo": a, "size_bytes": s, "busbw_gbps": (150.0 if a == "sharp" else 50.0 + (v == "spray") * 40)
             * (1 + np.log2(s) / 40), "busbw_min": 1.0, "busbw_max": 1.0, "n_ranks": 16}
            for v in ("ecmp", "spray", "ar") for a in ("ring", "sharp") for s in (2 ** 16, 2 ** 20, 2 ** 24)]
    allreduce_busbw.plot(rows, 100, tmp_path / "a.png")
    fig = captured_figures[-1]
    _assert_lines_distinguishable(fig)
    assert "sharp / ecmp = sharp / spray = sharp / ar" in _legend_and_text(fig).replace("\n", " ")


@pytest.mark.plots
def test_alltoall_coinciding_curves_are_marked(tmp_path, captured_figures):
    from experiments import alltoall_rails
    rows = [{"core_oversubscription": o, "variant": v, "via": via, "size_bytes": s, "n_ranks": 32,
             "busbw_gbps": 105.0 if via == "nvlink" else 80.0 / o + (v == "spray") * 20}
            for o in (1, 4) for v in ("ecmp", "spray") for via in ("direct", "nvlink") for s in (2 ** 20, 2 ** 24)]
    alltoall_rails.plot(rows, tmp_path / "t.png")
    fig = captured_figures[-1]
    _assert_lines_distinguishable(fig)
    assert "NVLink (PXN) / ecmp = NVLink (PXN) / spray" in _legend_and_text(fig)


# --- 5. fairness only for overlapping flows ---------------------------------------------------------

def _two_flows(tmp_path, name, a, b):
    """Two QPs, one flow each, active over [a0, a1) and [b0, b1) µs (1 µs samples, 50 Gbps)."""
    end = max(a[1], b[1]) + 1
    g = np.zeros((end, 2))
    g[a[0]:a[1], 0] = 50.0
    g[b[0]:b[1], 1] = 50.0
    flows = [{"flow_id": q, "qp": q, "src": f"h{q + 1}", "dst": "h0", "size_bytes": 1000, "start_ps": s * PS_PER_US,
              "finish_ps": f * PS_PER_US, "fct_ps": (f - s) * PS_PER_US, "ideal_fct_ps": PS_PER_US,
              "slowdown": float(f - s)} for q, (s, f) in enumerate((a, b))]
    return load_run(write_run(tmp_path / name, config=incast_config(bottleneck_port=0), ts=tiny_timeseries(g),
                              flows=flows))


def test_fairness_only_when_flows_overlap(tmp_path):
    # one after the other: the replay of messages that never overlap
    seq = _two_flows(tmp_path, "seq", (0, 10), (10, 20))
    # they share 5 of the shorter flow's 10 µs (>= MIN_OVERLAP_FRACTION = 10 %)
    both = _two_flows(tmp_path, "both", (0, 10), (5, 15))
    # 0.5 µs of 10 µs shared would be 5 %; at 1 µs sampling the nearest is a touch of 0 µs
    touch = _two_flows(tmp_path, "touch", (0, 10), (10, 30))
    assert not flows_overlap(seq) and not flows_overlap(touch)
    assert flows_overlap(both)
    s = summary(seq)
    assert math.isnan(s["jain_index"]) and s["flows_overlap"] is False
    text = format_summary(s)
    assert "flows never overlap: fairness not defined" in text
    assert "Jain fairness index: 1" not in text and "Jain fairness index: 0" not in text
    assert "Jain fairness index: 1.0000" in format_summary(summary(both))   # equal rates: J = 1
    assert "Jain" not in plots._facts(seq) and "never overlap" in plots._facts(seq)


# --- 6. a results folder holds one run ---------------------------------------------------------------

@pytest.mark.plots                                 # softdpu plot draws
def test_rerun_removes_stale_variant_folders(tmp_path, capsys):
    out = tmp_path / "inc"
    tiny = ["--set", "senders=2", "--set", "size_bytes=100000", "--no-plots", "--out", str(out)]
    assert main(["run", "incast", "--set", 'ccs=["dcqcn","none"]', *tiny]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "data.csv").write_text("1")
    capsys.readouterr()
    assert main(["run", "incast", "--set", 'ccs=["dcqcn"]', *tiny]) == 0
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "earlier run" in line]
    assert len(notices) == 1 and notices[0].endswith(": none"), err
    assert not (out / "none").exists() and (out / "dcqcn" / "config.json").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "mine" / "data.csv").exists()
    assert main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dcqcn" in printed and f"{out}/none" not in printed and "compare.png" not in printed


def test_prune_nested_variants(tmp_path, capsys):
    from controlplane.run.experiment import prune_stale_variants
    for rel in ("websearch-30/dcqcn", "websearch-30/hpcc", "websearch-50/dcqcn"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "config.json").write_text("{}")
    assert prune_stale_variants(tmp_path, ["websearch-50/dcqcn"]) == ["websearch-30/dcqcn", "websearch-30/hpcc"]
    assert not (tmp_path / "websearch-30").exists()          # left empty: removed
    assert (tmp_path / "websearch-50" / "dcqcn" / "config.json").exists()
    assert "websearch-30/dcqcn, websearch-30/hpcc" in capsys.readouterr().err


# --- 7. printed summaries ------------------------------------------------------------------------

def test_summary_text_explains_window_and_gives_one_peak(tmp_path):
    run = load_run(write_run(tmp_path / "r"))       # bottleneck = the port with the largest queue
    text = format_summary(summary(run))
    window = [line for line in text.splitlines() if line.startswith("window:")]
    assert len(window) == 1 and "every flow is active" in window[0] and "20 %" in window[0]
    peaks = [line for line in text.splitlines() if "peak" in line]
    assert peaks == ["peak queue: 150.0 KB at sw0->h0 (bottleneck)"], peaks
    # a bottleneck other than the largest queue: both, each once
    other = load_run(write_run(tmp_path / "o", config=incast_config(bottleneck_port=20)))
    peaks = [line for line in format_summary(summary(other)).splitlines() if "peak" in line]
    assert len(peaks) == 2 and "h1->sw0" in peaks[1]


def test_summary_text_shows_dpu_counters(tmp_path):
    counters = {"dropped": 0, "ecn_marked": 0, "vs_rx": 200, "vs_exact_hit": 36, "vs_masked_hit": 150, "vs_miss": 14,
                "vs_lost": 0, "vs_flows": 8, "sp_upcalls": 14, "sp_install_latency_p50_ps": 20 * PS_PER_US,
                "sp_install_latency_p99_ps": 31 * PS_PER_US, "tax_cycles_per_packet": 485.3, "tax_host_cores": 0.0,
                "tax_dpu_cores": 1.62, "tax_usd_per_server_year": 0.0, "sp_install_latency_hist": [0, 1]}
    cfg = incast_config(dpu={"tenants": 2, "offload": "dpu"})
    text = format_summary(summary(load_run(write_run(tmp_path / "d", config=cfg, counters=counters))))
    assert "vSwitch: 200 packets, 36 EMC hits, 150 megaflow hits, 14 misses (7.0 %); 14 upcalls" in text
    assert "install latency p50/p99 20.00 / 31.00 µs" in text
    assert "virtualization tax (vSwitch on dpu): 485 cycles/packet, host cores 0.00, DPU cores 1.62" in text
    plain = format_summary(summary(load_run(write_run(tmp_path / "p"))))
    assert "vSwitch" not in plain and "virtualization tax" not in plain


def test_fct_slowdown_prints_a_short_table(tmp_path, capsys):
    out = tmp_path / "fct"
    assert main(["run", "fct_slowdown", "--set", 'ccs=["dcqcn","hpcc"]', "--set", "loads=[0.5]", "--set",
                 'workloads=["fb_hadoop"]', "--set", "duration_us=300", "--no-plots", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line for line in lines if line.startswith("fb_hadoop")]
    assert len(rows) == 2                               # one per workload-load x CC, not per bucket
    import csv
    with open(out / "fct_slowdown.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) > len(rows)                       # the full table stays in the CSV
    # each row: small flows (bucket 0) p50/p95/p99 as in the CSV, then all finished flows
    flows = load_run(out / "fb_hadoop-50" / "dcqcn").flows
    done = flows["fct_ps"] >= 0
    want = np.percentile(flows["slowdown"][done], [50, 95, 99])
    first = next(r for r in table if r["cc"] == "dcqcn" and r["bucket"] == "0")
    dcqcn = next(r for r in rows if " dcqcn " in r).split()
    nums = [float(x) for x in dcqcn if x.replace(".", "", 1).isdigit()]
    assert nums[-6:-3] == pytest.approx([float(first[k]) for k in ("p50", "p95", "p99")], abs=0.006)
    assert nums[-3:] == pytest.approx(want, abs=0.006)
