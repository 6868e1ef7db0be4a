"""Read a run's results folder and compute its summary metrics.

A simulation run writes one folder (docs/architecture.md, 'The results folder'); this module reads
it back, without the simulator:

- ``config.json``: the resolved scenario config. Used here: ``name``, ``cc``,
  ``sample_interval_ps``, ``bottleneck_port`` (a port id or null) and ``bottleneck_rate_bps``.
- ``flows.csv``: one row per message (flow): ``flow_id, qp, src, dst, size_bytes, start_ps,
  finish_ps, fct_ps, ideal_fct_ps, slowdown, verb, wc_status, rx_done_ps``. ``finish_ps`` and
  ``fct_ps`` are -1 and ``slowdown`` is empty for a flow that did not finish. ``verb`` is the
  RDMA operation (write, write_imm, send, send_imm, read), ``wc_status`` how it completed (success,
  rnr_retry_exceeded, flushed), ``rx_done_ps`` when a SEND or WRITE with immediate completed at
  the responder (-1 otherwise). Files written before these three columns existed still load.
- ``timeseries.npz``: samples at times ``t_ps`` (S,) of per-QP arrays (S, Q): ``qp_rate_bps``
  (CC pacing rate), ``qp_goodput_bps``, ``qp_window_bytes``; and per-port arrays (S, P):
  ``port_queue_bytes`` (egress queue, all priorities) and the cumulative counters
  ``port_ecn_marks``, ``port_drops``, ``port_tx_bytes`` and, optionally, ``port_pause``.
  ``qp_ids``/``qp_labels`` (Q,) and ``port_ids``/``port_names`` (P,) name the columns.
- ``counters.json``: end-of-run totals; every key is optional.

Units (docs/architecture.md, 'Units, time and determinism'): time in picoseconds (ps), rates in bits
per second (bps), sizes in bytes. For display, 1 µs = 10^6 ps, 1 Gbps = 10^9 bps and 1 KB = 10^3 bytes.

Sampling convention: a rate sampled at ``t_ps[i]`` (``qp_goodput_bps``) is the mean over the
sample interval ``(t_ps[i-1], t_ps[i]]`` that ends at the sample (see :func:`sample_intervals`).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PS_PER_US = 1_000_000
"""Picoseconds per microsecond."""

CONVERGENCE_SKIP_FRACTION = 0.2
"""Share of the all-flows-active span that :func:`convergence_window` skips as start-up."""

MIN_OVERLAP_FRACTION = 0.1
"""Fairness between flows is defined only if the time during which all of them are active
lasts at least this share of the shortest flow's lifetime (see :func:`flows_overlap`)."""

PERCENTILES = (50, 95, 99)
"""Percentiles of FCT and slowdown reported by :func:`summary`."""

TIMESERIES_KEYS = (
    "t_ps",
    "qp_ids",
    "qp_labels",
    "qp_rate_bps",
    "qp_goodput_bps",
    "qp_window_bytes",
    "port_ids",
    "port_names",
    "port_queue_bytes",
    "port_ecn_marks",
    "port_drops",
    "port_tx_bytes",
)
"""Arrays every ``timeseries.npz`` must hold (``port_pause`` is optional)."""


@dataclass(frozen=True)
class Run:
    """One results folder, loaded eagerly into memory.

    Attributes:
        path: the results folder.
        config: the resolved scenario config (``config.json``).
        flows: ``flows.csv`` as a dict of numpy columns, one entry per CSV column (see
            :func:`read_flows_csv`).
        ts: every array of ``timeseries.npz`` by name.
        counters: end-of-run totals (``counters.json``); keys are optional.
    """

    path: Path
    config: dict
    flows: dict[str, np.ndarray]
    ts: dict[str, np.ndarray]
    counters: dict

    @property
    def title(self) -> str:
        """Run name and CC algorithm, e.g. ``"incast-8 (cc=dcqcn)"``, for plot titles; a plug-in
        CC given as ``path/to/file.py:Class`` or ``module:Class`` is named by its short label
        (``congestion.registry.label``: the file's stem or the module's last component)."""
        name = self.config.get("name", self.path.name)
        return f"{name} (cc={cc_label(self.config.get('cc', '?'))})"


def cc_label(spec) -> str:
    """The short name of a CC spec for titles (see ``congestion.registry.label``)."""
    if not isinstance(spec, str) or ":" not in spec:
        return str(spec)
    from congestion.registry import label

    return label(spec)


def load_run(path: str | Path) -> Run:
    """Load a results folder written by a simulation run.

    Raises:
        FileNotFoundError: a file of the folder is missing.
        ValueError: ``timeseries.npz`` lacks a required array or its shapes disagree.
    """
    path = Path(path)

    def json_of(name: str) -> dict:
        try:
            data = json.loads((path / name).read_text())
        except json.JSONDecodeError as e:          # the file, not only "Expecting ... line 1 column 2"
            raise ValueError(f"{path / name}: not a results file (invalid JSON: {e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path / name}: not a results file (a JSON object expected, got {type(data).__name__})")
        return data
    config = json_of("config.json")
    flows = read_flows_csv(path / "flows.csv")
    with np.load(path / "timeseries.npz", allow_pickle=False) as npz:
        ts = {key: npz[key] for key in npz.files}
    _check_timeseries(ts)
    counters = json_of("counters.json")
    return Run(path=path, config=config, flows=flows, ts=ts, counters=counters)


def read_flows_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``flows.csv`` into a dict of numpy columns, in file order.

    Each column gets the narrowest of three types that holds all its values: int64, float64
    (an empty cell becomes nan, e.g. the ``slowdown`` of an unfinished flow), or str (e.g. host
    names in ``src``/``dst``). A file with a header and no rows gives empty float64 columns.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for row in reader if row]
    return {name: _parse_column([row[i] for row in rows]) for i, name in enumerate(header)}


def finished_mask(flows: dict[str, np.ndarray]) -> np.ndarray:
    """Boolean mask of the flows that finished (``fct_ps`` >= 0; -1 marks an unfinished flow)."""
    fct = flows["fct_ps"]
    return np.isfinite(fct) & (fct >= 0)


def sample_intervals(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Start and end times (ps) of the sample interval that each sample closes.

    Sample ``i`` covers ``(t_ps[i-1], t_ps[i]]``. The first sample covers the configured
    ``sample_interval_ps`` before it (else the gap to the second sample, else everything since
    time 0), clipped at time 0.

    Returns:
        ``(start_ps, end_ps)``, two int64 arrays of shape (S,).
    """
    t = run.ts["t_ps"].astype(np.int64)
    if t.size == 0:
        return t.copy(), t
    if "sample_interval_ps" in run.config:
        first = int(run.config["sample_interval_ps"])
    elif t.size >= 2:
        first = int(t[1] - t[0])
    else:
        first = int(t[0])
    start = np.concatenate(([max(0, int(t[0]) - first)], t[:-1]))
    return start, t


def counter_rate_per_us(t_ps: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Event rate (events per µs) from a cumulative counter sampled at ``t_ps``.

    rate[i] = (c[i] - c[i-1]) / (t[i] - t[i-1]) · 10^6, with c = 0 at t = 0 before the first
    sample, so rate[0] is the mean since time 0. Works on (S,) or (S, P) counters; a zero-length
    interval gives nan.
    """
    dt_us = np.diff(t_ps.astype(np.float64), prepend=0.0) / PS_PER_US
    if cumulative.ndim == 2:
        dt_us = dt_us[:, None]
    counts = np.diff(cumulative.astype(np.float64), axis=0, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dt_us > 0, counts / dt_us, np.nan)


def percentile(values, q: float) -> float:
    """``np.percentile(values, q)``, or NaN when there are no values (no flow completed: a run
    cut short by max_duration_ps or its budget), instead of numpy's IndexError."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.percentile(values, q)) if values.size else float("nan")


def jain_index(x) -> float:
    """Jain's fairness index J = (Σ x_i)² / (n · Σ x_i²) of n non-negative allocations.

    J is 1 when all x_i are equal and 1/n when one of the n is nonzero; zeros count in n.
    It is undefined (0/0) for an empty or all-zero input: nan is returned.
    Source: R. Jain, D.-M. Chiu, W. Hawe, "A Quantitative Measure of Fairness and
    Discrimination for Resource Allocation in Shared Computer Systems", DEC-TR-301, 1984.

    Raises:
        ValueError: a value is negative.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if np.any(x < 0):
        raise ValueError("jain_index needs non-negative values")
    sum_sq = float(np.sum(x * x))
    if x.size == 0 or sum_sq == 0.0:
        return math.nan
    return float(np.sum(x)) ** 2 / (x.size * sum_sq)


def mean_rates(run: Run, t_from_ps: float, t_to_ps: float) -> np.ndarray:
    """Per-QP mean goodput (bps) over the time window [t_from_ps, t_to_ps].

    Goodput is taken as constant over each sample interval (see :func:`sample_intervals`), so
    the mean is weighted by the overlap w_i of interval i with the window:
    mean_q = Σ_i w_i · goodput[i, q] / Σ_i w_i.

    Returns:
        float64 array (Q,) in ``qp_ids`` order; all nan if the window overlaps no interval.
    """
    goodput = run.ts["qp_goodput_bps"].astype(np.float64)
    start, end = sample_intervals(run)
    overlap = np.clip(np.minimum(end, t_to_ps) - np.maximum(start, t_from_ps), 0, None)
    total = float(np.sum(overlap))
    if total == 0.0:
        return np.full(goodput.shape[1], np.nan)
    return overlap.astype(np.float64) @ goodput / total


def convergence_window(run: Run) -> tuple[int, int]:
    """Default steady-state window (ps) for throughput and fairness, skipping the start-up.

    The *active span* [a, b] is the time during which every flow has started and none has
    finished, from flows.csv (a = the last start, b = the first finish, or the end of the trace
    if no flow finished), clipped to the trace. A flow that is active but starved (goodput 0,
    e.g. locked out by go-back-N) therefore counts against fairness. Without per-flow records
    matching the QPs, the span is the samples in which every QP delivered goodput (> 0).
    The window is the span minus its first ``CONVERGENCE_SKIP_FRACTION`` (20 %):
    t_from = a + 0.2 · (b - a), t_to = b. If the span is empty, the whole trace is used.

    Returns:
        ``(t_from_ps, t_to_ps)``; ``(0, 0)`` if there are no samples.
    """
    start, end = sample_intervals(run)
    if end.size == 0:
        return 0, 0
    span_from, span_to = active_span(run)
    if span_to <= span_from:
        span_from, span_to = int(start[0]), int(end[-1])
    return span_from + round(CONVERGENCE_SKIP_FRACTION * (span_to - span_from)), span_to


def active_span(run: Run) -> tuple[int, int]:
    """The *active span* of :func:`convergence_window` (ps): when every flow has started and
    none has finished; ``(0, 0)`` if there is none (some flow ends before another starts)."""
    start, end = sample_intervals(run)
    if end.size == 0:
        return 0, 0
    flows = run.flows
    nq = run.ts["qp_goodput_bps"].shape[1]
    if nq and len(flows.get("start_ps", ())) == nq:
        finished = flows["finish_ps"][flows["finish_ps"] >= 0]
        span_from = max(int(flows["start_ps"].max()), int(start[0]))
        span_to = min(int(finished.min()) if finished.size else int(end[-1]), int(end[-1]))
    else:
        all_active = np.all(run.ts["qp_goodput_bps"] > 0, axis=1)
        active = np.flatnonzero(all_active)
        span_from, span_to = (int(start[active[0]]), int(end[active[-1]])) if active.size else (0, 0)
    return (span_from, span_to) if span_to > span_from else (0, 0)


def flows_overlap(run: Run) -> bool:
    """Whether the flows run at the same time, so that fairness between them means something.

    True if the active span (all flows started, none finished: :func:`active_span`) lasts at
    least ``MIN_OVERLAP_FRACTION`` (10 %) of the shortest flow's lifetime (its FCT, or for an
    unfinished flow the time from its start to the end of the trace) and at least one sample
    interval. With one flow (or none), False: there is nothing to share.
    """
    start, end = sample_intervals(run)
    nq = run.ts["qp_goodput_bps"].shape[1]
    if end.size == 0 or nq < 2:
        return False
    a, b = active_span(run)
    if b <= a:
        return False
    flows = run.flows
    if len(flows.get("start_ps", ())) == nq:
        life = np.where(flows["finish_ps"] >= 0, flows["finish_ps"], int(end[-1])) - flows["start_ps"]
        shortest = float(np.min(life))
    else:                                  # no per-flow records: QP activity from the samples
        active = run.ts["qp_goodput_bps"] > 0
        widths = (end - start).astype(np.float64)
        shortest = float(np.min(widths @ active))
    return (b - a) >= MIN_OVERLAP_FRACTION * shortest and (b - a) >= float(np.min(end - start))


def queue_port_index(run: Run) -> int | None:
    """Column index of the port whose queue to report.

    The configured ``bottleneck_port`` (a port id) if set, else the port with the largest peak
    queue; None if the trace has no ports.

    Raises:
        ValueError: ``bottleneck_port`` is not among ``port_ids``.
    """
    port_id = run.config.get("bottleneck_port")
    if port_id is not None:
        matches = np.flatnonzero(run.ts["port_ids"] == port_id)
        if matches.size == 0:
            raise ValueError(f"bottleneck_port {port_id} is not in port_ids")
        return int(matches[0])
    queue = run.ts["port_queue_bytes"]
    if queue.shape[1] == 0:
        return None
    if queue.shape[0] == 0:
        return 0
    return int(np.argmax(queue.max(axis=0)))


def summary(run: Run) -> dict:
    """Headline metrics of a run.

    Throughput and fairness are over :func:`convergence_window`. Undefined values (no samples,
    no finished flows, no configured rate) are nan; values that do not apply (no bottleneck
    port configured) are None. Keys:

    - ``name``, ``cc``: from the config.
    - ``window_from_ps``, ``window_to_ps``: the convergence window.
    - ``aggregate_goodput_bps``: Σ over QPs of :func:`mean_rates` over the window.
    - ``bottleneck_rate_bps``, ``utilization``: the configured rate and
      aggregate_goodput_bps / bottleneck_rate_bps.
    - ``jain_index``: :func:`jain_index` of the per-QP mean goodputs over the window; nan
      when the flows do not overlap in time (:func:`flows_overlap`): fairness between flows
      that never share the network is not defined.
    - ``flows_overlap``: :func:`flows_overlap`.
    - ``peak_queue_bytes``, ``peak_queue_port``: max queue over all ports and samples, and the
      name of that port.
    - ``bottleneck_port``, ``bottleneck_peak_queue_bytes``: name and max queue of the
      configured bottleneck port.
    - ``drops``, ``ecn_marks``: totals; ``dropped`` / ``ecn_marked`` of counters.json if present
      (end-of-run), else the last sample of ``port_drops`` / ``port_ecn_marks`` summed over ports.
    - ``flows_finished``, ``flows_total``.
    - ``pfc_pauses``, ``retransmitted``, ``events``: end-of-run totals of counters.json (PFC pause
      frames sent, data packets retransmitted, data-plane events); nan if the counter is absent.
    - ``fct_p50_ps``, ``fct_p95_ps``, ``fct_p99_ps``, ``slowdown_p50``, ``slowdown_p95``,
      ``slowdown_p99``: percentiles (numpy linear interpolation) over the finished flows.
    - ``dpu``: when the run has DPU vSwitches (counters.json has ``vs_rx``), the vSwitch and
      virtualization-tax counters (``vs_*``, ``sp_*``, ``tax_*`` scalars) and ``offload``;
      else None.
    """
    ts, flows = run.ts, run.flows
    t_from, t_to = convergence_window(run)
    overlap = flows_overlap(run)
    rates = mean_rates(run, t_from, t_to)
    aggregate = float(np.sum(rates))
    rate_bps = run.config.get("bottleneck_rate_bps")
    rate_bps = math.nan if rate_bps is None else float(rate_bps)

    queue = ts["port_queue_bytes"]
    port_peaks = queue.max(axis=0) if queue.shape[0] else np.zeros(queue.shape[1], np.int64)
    peak_col = int(np.argmax(port_peaks)) if port_peaks.size else None
    has_bottleneck = run.config.get("bottleneck_port") is not None
    bottleneck_col = queue_port_index(run) if has_bottleneck else None

    done = finished_mask(flows)
    fct = flows["fct_ps"][done].astype(np.float64)
    slowdown = flows["slowdown"][done].astype(np.float64)
    result = {
        "name": run.config.get("name", run.path.name),
        "cc": run.config.get("cc"),
        "window_from_ps": t_from,
        "window_to_ps": t_to,
        "aggregate_goodput_bps": aggregate,
        "bottleneck_rate_bps": rate_bps,
        "utilization": aggregate / rate_bps if rate_bps > 0 else math.nan,
        "jain_index": jain_index(rates) if overlap else math.nan,
        "flows_overlap": overlap,
        "peak_queue_bytes": int(port_peaks[peak_col]) if peak_col is not None else math.nan,
        "peak_queue_port": str(ts["port_names"][peak_col]) if peak_col is not None else None,
        "bottleneck_port": str(ts["port_names"][bottleneck_col]) if has_bottleneck else None,
        "bottleneck_peak_queue_bytes": int(port_peaks[bottleneck_col]) if has_bottleneck else None,
        "drops": _total(run, "dropped", "port_drops"),
        "ecn_marks": _total(run, "ecn_marked", "port_ecn_marks"),
        "flows_finished": int(np.sum(done)),
        "flows_total": int(done.size),
        "pfc_pauses": _counter(run, "pfc_pauses"),
        "retransmitted": _counter(run, "retransmitted"),
        "events": _counter(run, "events"),
    }
    result.update(_percentile_fields("fct", "_ps", fct))
    result.update(_percentile_fields("slowdown", "", slowdown))
    result["dpu"] = _dpu_counters(run)
    return result


def _dpu_counters(run: Run) -> dict | None:
    """The vSwitch (``vs_*``, slow path ``sp_*``) and virtualization-tax (``tax_*``) scalar
    counters of a run with DPUs, plus ``offload`` (where the vSwitch runs); None without."""
    c = run.counters
    if "vs_rx" not in c:
        return None
    out = {k: v for k, v in c.items() if k.startswith(("vs_", "sp_", "tax_")) and isinstance(v, (int, float))}
    dpu = run.config.get("dpu")
    out["offload"] = (dpu.get("offload") if isinstance(dpu, dict) else None) or "dpu"
    return out


def format_summary(s: dict) -> str:
    """A short multi-line human-readable text of a :func:`summary` dict (Gbps, KB, µs).

    The window line says what the rates and the Jain index are computed over; the peak queue
    is given once (with "(bottleneck)" when the largest queue is at the bottleneck port); runs
    with DPUs add a vSwitch line and a virtualization-tax line.
    """
    overlap = s.get("flows_overlap", True)
    lines = [
        f"run: {s['name']} (cc={cc_label(s['cc'])})",
        f"window: {_us(s['window_from_ps'])} to {_us(s['window_to_ps'])} µs"
        + (" (goodput and Jain: while every flow is active, first 20 % skipped as start-up)"
           if overlap else " (the whole trace: flows never overlap)"),
        f"aggregate goodput: {_gbps(s['aggregate_goodput_bps'])} Gbps"
        + (
            f" = {_fmt(100 * s['utilization'], '.1f')} % of"
            f" {_gbps(s['bottleneck_rate_bps'])} Gbps bottleneck"
            if math.isfinite(s["bottleneck_rate_bps"])
            else ""
        ),
        f"Jain fairness index: {_fmt(s['jain_index'], '.4f')}" if overlap
        else "Jain fairness index: flows never overlap: fairness not defined",
    ]
    peak = f"peak queue: {_kb(s['peak_queue_bytes'])} KB"
    at_peak = s["peak_queue_port"]
    bottleneck = s["bottleneck_port"]
    if bottleneck is not None and (bottleneck != at_peak
                                   or s["bottleneck_peak_queue_bytes"] != s["peak_queue_bytes"]):
        lines.append(peak + (f" at {at_peak}" if at_peak is not None else ""))
        lines.append(f"bottleneck queue peak: {_kb(s['bottleneck_peak_queue_bytes'])} KB at {bottleneck}")
    else:
        lines.append(peak + (f" at {at_peak}" if at_peak is not None else "")
                     + (" (bottleneck)" if bottleneck is not None else ""))
    lines += [
        f"drops: {s['drops']}   ECN marks: {s['ecn_marks']}",
        f"flows finished: {s['flows_finished']} / {s['flows_total']}",
        "FCT p50/p95/p99: "
        + " / ".join(_us(s[f"fct_p{p}_ps"]) for p in PERCENTILES)
        + " µs",
        "slowdown p50/p95/p99: "
        + " / ".join(_fmt(s[f"slowdown_p{p}"], ".2f") for p in PERCENTILES),
    ]
    if s.get("dpu"):
        lines += _dpu_lines(s["dpu"])
    return "\n".join(lines)


def _dpu_lines(d: dict) -> list[str]:
    """The vSwitch and virtualization-tax lines of :func:`format_summary`."""
    rx = int(d.get("vs_rx", 0))
    exact, masked, miss = int(d.get("vs_exact_hit", 0)), int(d.get("vs_masked_hit", 0)), int(d.get("vs_miss", 0))
    drops = sum(int(d.get(k, 0)) for k in ("vs_action_drops", "vs_isolation_drops", "vs_meter_drops",
                                               "vs_no_qp_drops"))
    miss_pct = f" ({100 * miss / rx:.1f} %)" if rx else ""
    vs = (f"vSwitch: {rx:,} packets, {exact:,} EMC hits, {masked:,} megaflow hits, {miss:,} misses{miss_pct};"
          f" {int(d.get('sp_upcalls', 0)):,} upcalls, {int(d.get('vs_lost', 0)):,} lost,"
          f" {drops:,} dropped by policy; {int(d.get('vs_flows', 0)):,} megaflows")
    if int(d.get("sp_install_latency_p50_ps", -1)) >= 0:
        vs += (f"; install latency p50/p99 {_us(d['sp_install_latency_p50_ps'])} /"
               f" {_us(d['sp_install_latency_p99_ps'])} µs")
    tax = (f"virtualization tax (vSwitch on {d.get('offload', 'dpu')}):"
           f" {_fmt(d.get('tax_cycles_per_packet'), '.0f')} cycles/packet,"
           f" host cores {_fmt(d.get('tax_host_cores'), '.2f')}, DPU cores {_fmt(d.get('tax_dpu_cores'), '.2f')},"
           f" ${_fmt(d.get('tax_usd_per_server_year'), ',.0f')} per server-year of host cores")
    return [vs, tax]


def _check_timeseries(ts: dict[str, np.ndarray]) -> None:
    """Raise ValueError if a required array is missing or a (S, Q)/(S, P) shape is wrong."""
    missing = [key for key in TIMESERIES_KEYS if key not in ts]
    if missing:
        raise ValueError(f"timeseries.npz lacks {', '.join(missing)}")
    samples, qps, ports = ts["t_ps"].size, ts["qp_ids"].size, ts["port_ids"].size
    for key, array in ts.items():
        if key.startswith("qp_") and array.ndim == 2 and array.shape != (samples, qps):
            raise ValueError(f"{key} has shape {array.shape}, expected {(samples, qps)}")
        if key.startswith("port_") and array.ndim == 2 and array.shape != (samples, ports):
            raise ValueError(f"{key} has shape {array.shape}, expected {(samples, ports)}")


def _parse_column(values: list[str]) -> np.ndarray:
    """Parse CSV cells as int64, else float64 (empty cell = nan), else str; no cells: float64."""
    if not values:
        return np.array([], dtype=np.float64)
    for parse in (lambda: np.array([int(v) for v in values], dtype=np.int64),
                  lambda: np.array([float(v) if v.strip() else math.nan for v in values], dtype=np.float64)):
        try:
            return parse()
        except ValueError:
            continue                      # not this type: try the next, wider one
    return np.array(values, dtype=str)


def _total(run: Run, counter: str, series: str) -> int:
    """End-of-run total: counters.json[counter] if present, else Σ_ports series[-1]."""
    if counter in run.counters:
        return int(run.counters[counter])
    cumulative = run.ts[series]
    return int(cumulative[-1].sum()) if cumulative.shape[0] else 0


def _counter(run: Run, key: str):
    """counters.json[key] as an int, nan if the run did not record it."""
    return int(run.counters[key]) if key in run.counters else math.nan


def _percentile_fields(prefix: str, suffix: str, values: np.ndarray) -> dict[str, float]:
    """``{prefix}_p{p}{suffix}`` for each p in PERCENTILES over the finite values (nan if none)."""
    values = values[np.isfinite(values)]
    return {
        f"{prefix}_p{p}{suffix}": float(np.percentile(values, p)) if values.size else math.nan
        for p in PERCENTILES
    }


def _fmt(value, spec: str) -> str:
    """Format a number, or "n/a" for None/nan."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def _us(ps) -> str:
    """Picoseconds as µs text."""
    return _fmt(None if ps is None else ps / PS_PER_US, ".2f")


def _gbps(bps) -> str:
    """Bits per second as Gbps text."""
    return _fmt(None if bps is None else bps / 1e9, ".2f")


def _kb(size_bytes) -> str:
    """Bytes as KB (10^3 bytes) text."""
    return _fmt(None if size_bytes is None else size_bytes / 1e3, ".1f")
