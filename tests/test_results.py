"""Tests of controlplane.results.folder (loading, metrics) and controlplane.results.plots, on synthetic
results folders written by the helpers below (no simulator needed)."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from controlplane.results.plots import plot_compare, plot_run
from controlplane.results.folder import (
    PS_PER_US,
    convergence_window,
    counter_rate_per_us,
    finished_mask,
    format_summary,
    jain_index,
    load_run,
    mean_rates,
    queue_port_index,
    read_flows_csv,
    summary,
)

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FLOW_COLUMNS = ["flow_id", "qp", "src", "dst", "size_bytes", "start_ps", "finish_ps", "fct_ps",
                "ideal_fct_ps", "slowdown"]

# The synthetic incast: N_FLOWS senders h1..h4 into h0 through sw0, a 100 Gbps bottleneck
# sw0->h0, sampled every 1 µs. Flows converge to FAIR_GBPS each; the bottleneck queue peaks
# at PEAK_QUEUE_BYTES.
N_FLOWS = 4
RATE_BPS = 100e9
FAIR_GBPS = 24.0
PEAK_QUEUE_BYTES = 150_000
PORT_NAMES = ["sw0->h0", "sw0->h1", "sw0->h2", "h1->sw0"]
PORT_IDS = [10, 11, 12, 20]
BOTTLENECK_PORT_ID = 10


def incast_config(**overrides) -> dict:
    config = {
        "name": "incast-4",
        "cc": "dcqcn",
        "seed": 1,
        "sample_interval_ps": PS_PER_US,
        "topology": {"name": "star"},
        "bottleneck_port": BOTTLENECK_PORT_ID,
        "bottleneck_rate_bps": RATE_BPS,
    }
    config.update(overrides)
    return config


def incast_timeseries(samples: int = 200, seed: int = 1) -> dict:
    """Plausible DCQCN-like traces: staggered starts, a queue spike, convergence to fair share."""
    rng = np.random.default_rng(seed)
    t_ps = np.arange(1, samples + 1, dtype=np.int64) * PS_PER_US
    t_us = t_ps / PS_PER_US
    starts_us = 2.0 * np.arange(N_FLOWS)  # flow k starts at 2k µs
    active = t_us[:, None] > starts_us[None, :]
    settle = np.exp(-(t_us[:, None] - starts_us) / 15.0)
    wobble = np.cos((t_us[:, None] - starts_us) / 4.0) ** 2
    rate_gbps = FAIR_GBPS + (100.0 - FAIR_GBPS) * settle * wobble
    qp_rate_bps = np.where(active, rate_gbps, 100.0) * 1e9
    noise = rng.normal(0.0, 0.3, size=(samples, N_FLOWS))
    # fewer flows share the bottleneck before 8 µs; afterwards each gets its fair share.
    goodput_gbps = np.where(t_us[:, None] > 8.0, FAIR_GBPS, np.minimum(rate_gbps, 30.0)) + noise
    qp_goodput_bps = np.where(active, goodput_gbps, 0.0) * 1e9

    queue = np.zeros((samples, len(PORT_IDS)), dtype=np.int64)
    spike = PEAK_QUEUE_BYTES * np.exp(-((t_us - 12.0) / 5.0) ** 2)
    steady = 20_000 + 5_000 * np.sin(t_us / 3.0)
    queue[:, 0] = np.round(np.maximum(spike, np.where(t_us > 10, steady, 0))).astype(np.int64)
    queue[np.argmin(np.abs(t_us - 12.0)), 0] = PEAK_QUEUE_BYTES
    queue[:, 3] = np.round(3_000 * (1 + np.sin(t_us))).astype(np.int64)
    marks_per_sample = np.where(queue[:, 0] > 15_000, queue[:, 0] // 10_000, 0)
    ecn = np.zeros_like(queue)
    ecn[:, 0] = np.cumsum(marks_per_sample)
    drops = np.zeros_like(queue)
    drops[t_us >= 12.0, 0] = 5
    tx = np.cumsum(np.full((samples, len(PORT_IDS)), 12_500, dtype=np.int64), axis=0)  # 100 Gbps
    return {
        "t_ps": t_ps,
        "qp_ids": np.arange(1, N_FLOWS + 1, dtype=np.int64),
        "qp_labels": np.array([f"h{k}->h0" for k in range(1, N_FLOWS + 1)]),
        "qp_rate_bps": qp_rate_bps,
        "qp_goodput_bps": qp_goodput_bps,
        "qp_window_bytes": np.zeros((samples, N_FLOWS)),
        "port_ids": np.array(PORT_IDS, dtype=np.int64),
        "port_names": np.array(PORT_NAMES),
        "port_queue_bytes": queue,
        "port_ecn_marks": ecn,
        "port_drops": drops,
        "port_tx_bytes": tx,
    }


def incast_flows() -> list[dict]:
    """Four finished long flows and two unfinished ones."""
    rows = []
    for k in range(1, 7):
        size = 1_000_000 * k
        start = 2 * (k - 1) * PS_PER_US
        ideal = round(size * 8 / RATE_BPS * 1e12) + 2 * PS_PER_US
        finished = k <= 4
        fct = round(ideal * (1.5 + 0.5 * k)) if finished else -1
        rows.append({
            "flow_id": k, "qp": k, "src": f"h{k}", "dst": "h0", "size_bytes": size,
            "start_ps": start, "finish_ps": start + fct if finished else -1, "fct_ps": fct,
            "ideal_fct_ps": ideal, "slowdown": fct / ideal if finished else "",
        })
    return rows


def write_run(folder: Path, config=None, flows=None, ts=None, counters=None) -> Path:
    """Write a results folder as a simulation run would; defaults give the synthetic incast."""
    folder.mkdir(parents=True, exist_ok=True)
    config = incast_config() if config is None else config
    flows = incast_flows() if flows is None else flows
    ts = incast_timeseries() if ts is None else ts
    if counters is None:
        counters = {"packets_sent": 12345, "delivered": 12300, "dropped": 5,
                    "ecn_marked": int(ts["port_ecn_marks"][-1].sum()), "cnp_sent": 40}
    (folder / "config.json").write_text(json.dumps(config))
    with open(folder / "flows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FLOW_COLUMNS)
        writer.writeheader()
        writer.writerows(flows)
    np.savez(folder / "timeseries.npz", **ts)
    (folder / "counters.json").write_text(json.dumps(counters))
    return folder


def tiny_timeseries(goodput_gbps) -> dict:
    """Samples at 1, 2, 3, ... µs with the given goodput (Gbps, shape (S, Q)) and one idle port."""
    goodput = np.asarray(goodput_gbps, dtype=np.float64) * 1e9
    samples, qps = goodput.shape
    return {
        "t_ps": np.arange(1, samples + 1, dtype=np.int64) * PS_PER_US,
        "qp_ids": np.arange(qps, dtype=np.int64),
        "qp_labels": np.array([f"h{q + 1}->h0" for q in range(qps)]),
        "qp_rate_bps": np.full((samples, qps), 100e9),
        "qp_goodput_bps": goodput,
        "qp_window_bytes": np.zeros((samples, qps)),
        "port_ids": np.array([0], dtype=np.int64),
        "port_names": np.array(["sw0->h0"]),
        "port_queue_bytes": np.zeros((samples, 1), dtype=np.int64),
        "port_ecn_marks": np.zeros((samples, 1), dtype=np.int64),
        "port_drops": np.zeros((samples, 1), dtype=np.int64),
        "port_tx_bytes": np.zeros((samples, 1), dtype=np.int64),
    }


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


# --- metrics ---------------------------------------------------------------------------------

def test_jain_index_known_vectors():
    # Jain, Chiu, Hawe 1984: J = 1 for equal shares, J = 1/n when one of n gets everything.
    assert jain_index([25e9, 25e9, 25e9, 25e9]) == pytest.approx(1.0)
    assert jain_index([0.0, 0.0, 7.0, 0.0]) == pytest.approx(1 / 4)
    assert jain_index([1.0, 2.0, 3.0]) == pytest.approx(36 / (3 * 14))
    assert math.isnan(jain_index([]))
    assert math.isnan(jain_index([0.0, 0.0]))
    with pytest.raises(ValueError):
        jain_index([1.0, -1.0])


def test_mean_rates_hand_computed(tmp_path):
    ts = tiny_timeseries([[1, 0], [2, 4], [3, 4], [4, 4]])
    run = load_run(write_run(tmp_path / "run", config=incast_config(bottleneck_port=0), ts=ts))
    us = PS_PER_US
    # sample i covers ((i-1) µs, i µs]; the first covers (0, 1 µs].
    assert mean_rates(run, 0, 4 * us) == pytest.approx([2.5e9, 3e9])
    assert mean_rates(run, 1 * us, 4 * us) == pytest.approx([3e9, 4e9])
    # half of (1, 2] plus all of (2, 3] and (3, 4]: (0.5*2 + 3 + 4) / 2.5 = 3.2
    assert mean_rates(run, 1.5 * us, 4 * us) == pytest.approx([3.2e9, 4e9])
    assert np.isnan(mean_rates(run, 10 * us, 20 * us)).all()


def test_convergence_window(tmp_path):
    us = PS_PER_US
    ts = tiny_timeseries([[1, 0], [2, 4], [3, 4], [4, 4], [4, 0]])
    run = load_run(write_run(tmp_path / "a", config=incast_config(bottleneck_port=0), ts=ts))
    # all active in (1, 4] µs; skip the first 20 % of it.
    assert convergence_window(run) == (1 * us + round(0.2 * 3 * us), 4 * us)
    never_together = tiny_timeseries([[1, 0], [1, 0], [0, 1]])
    run = load_run(write_run(tmp_path / "b", config=incast_config(bottleneck_port=0),
                             ts=never_together))
    assert convergence_window(run) == (round(0.2 * 3 * us), 3 * us)


def test_counter_rate_per_us():
    t_ps = np.array([1, 2, 4]) * PS_PER_US
    assert counter_rate_per_us(t_ps, np.array([2, 2, 8])) == pytest.approx([2.0, 0.0, 3.0])
    per_port = counter_rate_per_us(t_ps, np.array([[2, 0], [2, 1], [8, 1]]))
    assert per_port.shape == (3, 2)
    assert per_port[:, 1] == pytest.approx([0.0, 1.0, 0.0])


def test_summary_fields(tmp_path):
    run = load_run(write_run(tmp_path / "run"))
    s = summary(run)
    assert s["name"] == "incast-4" and s["cc"] == "dcqcn"
    assert s["peak_queue_bytes"] == PEAK_QUEUE_BYTES
    assert s["peak_queue_port"] == "sw0->h0"
    assert s["bottleneck_port"] == "sw0->h0"
    assert s["bottleneck_peak_queue_bytes"] == PEAK_QUEUE_BYTES
    assert s["aggregate_goodput_bps"] == pytest.approx(N_FLOWS * FAIR_GBPS * 1e9, rel=0.01)
    assert s["utilization"] == pytest.approx(N_FLOWS * FAIR_GBPS / 100, rel=0.01)
    assert s["jain_index"] > 0.999
    assert s["drops"] == 5
    assert s["ecn_marks"] == int(run.ts["port_ecn_marks"][-1].sum())
    assert (s["flows_finished"], s["flows_total"]) == (4, 6)
    fcts = [row["fct_ps"] for row in incast_flows() if row["fct_ps"] >= 0]
    assert s["fct_p50_ps"] == pytest.approx(np.percentile(fcts, 50))
    assert s["fct_p99_ps"] == pytest.approx(np.percentile(fcts, 99))
    assert 1.0 < s["slowdown_p50"] < s["slowdown_p95"] <= s["slowdown_p99"]
    text = format_summary(s)
    for expected in ("incast-4", "dcqcn", "Gbps", "150.0 KB", "µs", "4 / 6"):
        assert expected in text


def test_summary_other_bottleneck_and_series_totals(tmp_path):
    config = incast_config(bottleneck_port=20, bottleneck_rate_bps=None)
    run = load_run(write_run(tmp_path / "run", config=config, counters={}))
    s = summary(run)
    assert s["peak_queue_bytes"] == PEAK_QUEUE_BYTES
    assert s["bottleneck_port"] == "h1->sw0"
    assert s["bottleneck_peak_queue_bytes"] == int(run.ts["port_queue_bytes"][:, 3].max())
    assert math.isnan(s["utilization"])
    assert s["drops"] == 5  # from the last sample of port_drops, counters.json is empty
    assert s["ecn_marks"] == int(run.ts["port_ecn_marks"][-1].sum())


def test_queue_port_without_configured_bottleneck(tmp_path):
    run = load_run(write_run(tmp_path / "run", config=incast_config(bottleneck_port=None)))
    assert queue_port_index(run) == 0  # sw0->h0 has the largest peak queue
    assert summary(run)["bottleneck_port"] is None


def test_flows_csv_round_trip_with_unfinished_flows(tmp_path):
    write_run(tmp_path / "run")
    flows = read_flows_csv(tmp_path / "run" / "flows.csv")
    rows = incast_flows()
    assert list(flows) == FLOW_COLUMNS
    for name in ("flow_id", "qp", "size_bytes", "start_ps", "finish_ps", "fct_ps", "ideal_fct_ps"):
        assert flows[name].dtype == np.int64
        assert flows[name].tolist() == [row[name] for row in rows]
    assert flows["src"].tolist() == [row["src"] for row in rows]
    assert finished_mask(flows).tolist() == [True] * 4 + [False] * 2
    assert flows["finish_ps"][4:].tolist() == [-1, -1]
    assert np.isnan(flows["slowdown"][4:]).all()
    assert flows["slowdown"][:4] == pytest.approx([row["slowdown"] for row in rows[:4]])


def test_header_only_flows_csv(tmp_path):
    run = load_run(write_run(tmp_path / "run", flows=[]))
    assert all(column.size == 0 for column in run.flows.values())
    s = summary(run)
    assert (s["flows_finished"], s["flows_total"]) == (0, 0)
    assert math.isnan(s["fct_p50_ps"]) and math.isnan(s["slowdown_p99"])


def test_load_run_rejects_incomplete_timeseries(tmp_path):
    ts = incast_timeseries()
    del ts["port_queue_bytes"]
    with pytest.raises(ValueError, match="port_queue_bytes"):
        load_run(write_run(tmp_path / "run", ts=ts))


# --- plots -----------------------------------------------------------------------------------

def test_plots_module_imports_without_matplotlib():
    code = "import sys, controlplane.results.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.plots
def test_plot_run_writes_pngs(tmp_path):
    run_dir = write_run(tmp_path / "run")
    paths = plot_run(run_dir)
    assert [p.name for p in paths] == ["rates.png", "queue.png", "fct.png"]
    assert all(p.parent == run_dir / "plots" for p in paths)
    for path in paths:
        assert_png(path)


@pytest.mark.plots
def test_plot_run_single_sample_no_finished_flows(tmp_path):
    ts = {key: value[:1] if value.ndim == 2 or key == "t_ps" else value
          for key, value in incast_timeseries().items()}
    unfinished = [dict(row, finish_ps=-1, fct_ps=-1, slowdown="") for row in incast_flows()]
    run_dir = write_run(tmp_path / "run", flows=unfinished, ts=ts)
    s = summary(load_run(run_dir))
    assert s["flows_finished"] == 0 and math.isnan(s["fct_p50_ps"])
    assert "n/a" in format_summary(s)
    for path in plot_run(run_dir, tmp_path / "out"):
        assert_png(path)


@pytest.mark.plots
def test_plot_compare(tmp_path):
    dcqcn = write_run(tmp_path / "dcqcn")
    no_cc_ts = incast_timeseries(seed=2)
    no_cc_ts["port_queue_bytes"][:, 0] *= 3
    none = write_run(tmp_path / "none", config=incast_config(cc="none"), ts=no_cc_ts)
    out = plot_compare([dcqcn, none], tmp_path / "cmp" / "compare.png", title="DCQCN vs none")
    assert out == tmp_path / "cmp" / "compare.png"
    assert_png(out)
    with pytest.raises(ValueError):
        plot_compare([], tmp_path / "empty.png")


def test_convergence_window_counts_a_starved_flow(tmp_path):
    """With per-flow records, the span is 'every flow started, none finished': a flow that is
    active but starved (goodput 0, as under go-back-N lock-out) stays in the window, so Jain's
    index shows the unfairness (two flows, one at 4 Gb/s, one at 0: index 1/2)."""
    us = PS_PER_US
    ts = tiny_timeseries([[4, 0], [4, 0], [4, 0], [4, 0], [4, 4]])
    flows = [dict(flow_id=i, qp=i, src=i + 1, dst=0, size_bytes=1000, start_ps=0, finish_ps=5 * us,
                  fct_ps=5 * us, ideal_fct_ps=us, slowdown=5.0) for i in range(2)]
    run = load_run(write_run(tmp_path / "s", config=incast_config(bottleneck_port=0), flows=flows, ts=ts))
    t_from, t_to = convergence_window(run)
    assert (t_from, t_to) == (round(0.2 * 5 * us), 5 * us)
    assert summary(run)["jain_index"] == pytest.approx(jain_index(mean_rates(run, t_from, t_to)))
    assert jain_index(mean_rates(run, t_from, 4 * us)) == pytest.approx(0.5)
