"""The benchmark history: ``benchmarks/history.jsonl`` in the repository, one JSON line per
benchmark run (``make bench-record`` = ``softdpu bench record``), read back as a table of the last
entries per benchmark with the ratio of each figure to the entry before it
(``softdpu bench history``), so that a regression shows across commits.

A line: ``benchmark`` (its name), ``commit`` (git rev-parse HEAD) and ``dirty`` (uncommitted
changes in the tree), ``date`` (UTC, ISO 8601), ``machine`` (CPU model, cores, MemTotal, kernel),
``python``, ``compiler`` (the first line of ``$CC --version``), ``cflags`` (the data plane's,
dataplane/build.py cflags()), ``note`` (free text: how the machine was, e.g. shared or niced) and
``figures`` (the benchmark's own dict: run_s, events, us_per_event, peak_rss_mib, ...).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: the repository's history file (the package is installed editable from the repository)
HISTORY = REPO / "benchmarks" / "history.jsonl"
#: the figures the table shows, in this order, where a benchmark has them (lower is better for all)
TABLE_FIGURES = ("run_s", "us_per_event", "wall_s", "peak_rss_mib", "bytes_per_host")
#: the fixed set ``softdpu bench record`` runs: permutation-1024 and the scale sizes up to max_k
RECORD_DEFAULT_MAX_K = 16


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit_info() -> dict:
    """HEAD of the repository and whether its tree has uncommitted changes (None outside git)."""
    head = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head, "dirty": None if status is None else bool(status)}


def proc_field(path: str | Path, key: str) -> str | None:
    """The value of ``key`` in a ``key: value`` file of /proc (cpuinfo, meminfo, self/status),
    stripped; None where the file or the line is missing."""
    try:
        with open(path) as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def proc_kib(path: str | Path, key: str) -> int | None:
    """A ``key: N kB`` line of /proc (meminfo, self/status) in bytes, None where missing."""
    v = proc_field(path, key)
    return int(v.split()[0]) * 1024 if v else None


def machine_info(cpuinfo: str = "/proc/cpuinfo", meminfo: str = "/proc/meminfo") -> dict:
    """CPU model, cores (os.cpu_count), MemTotal (GiB) and kernel (uname -r)."""
    model = proc_field(cpuinfo, "model name")
    mem = proc_kib(meminfo, "MemTotal")
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "mem_total_gib": None if mem is None else round(mem / 2**30, 2), "kernel": platform.release(),
            "arch": platform.machine()}


def compiler_version() -> str | None:
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")[:1] or ["cc"]
    try:
        done = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout else None


def environment(note: str = "") -> dict:
    """Everything of a history line but the benchmark and its figures."""
    from dataplane.build import cflags
    return {**commit_info(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), "python": platform.python_version(), "compiler": compiler_version(),
            "cflags": cflags(), "note": note}


def entry(benchmark: str, figures: dict, env: dict) -> dict:
    return {"benchmark": benchmark, **env, "figures": figures}


def append(path: str | Path, entries: list[dict]) -> None:
    """Append one JSON line per entry (the folder is made if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for e in entries:
            if not isinstance(e.get("benchmark"), str) or not isinstance(e.get("figures"), dict):
                raise ValueError(f"a history entry needs a benchmark name and a figures dict, got {sorted(e)}")
            f.write(json.dumps(e, sort_keys=True, default=float) + "\n")


def load(path: str | Path) -> list[dict]:
    """The entries in file order; a line that is not a JSON object is an error naming its line."""
    out = []
    with Path(path).open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc})") from None
            if not isinstance(e, dict) or "benchmark" not in e or not isinstance(e.get("figures"), dict):
                raise ValueError(f"{path}:{n}: a history line needs 'benchmark' and a 'figures' object")
            out.append(e)
    return out


def table_rows(entries: list[dict], last: int = 5) -> dict[str, list[dict]]:
    """Per benchmark (first seen first): its last ``last`` entries, each with ``ratios``: every
    TABLE_FIGURES figure divided by the same figure of the entry before it in the file (of the
    same benchmark; None for the first entry or a figure the previous one lacks)."""
    by: dict[str, list[dict]] = {}
    for e in entries:
        by.setdefault(e["benchmark"], []).append(e)
    out = {}
    for name, es in by.items():
        rows = []
        for i, e in enumerate(es):
            prev = es[i - 1]["figures"] if i else None
            ratios = {}
            for f in TABLE_FIGURES:
                v = e["figures"].get(f)
                p = prev.get(f) if prev else None
                ratios[f] = (v / p) if isinstance(v, (int, float)) and isinstance(p, (int, float)) and p else None
            rows.append({**e, "ratios": ratios})
        out[name] = rows[-last:] if last > 0 else rows
    return out


def format_table(entries: list[dict], last: int = 5) -> str:
    """The history as text: per benchmark, one row per entry (date, commit, + if dirty, the
    figures with their ratio to the entry before: x1.10 = 10 % more than before)."""
    lines = []
    for name, rows in table_rows(entries, last).items():
        figs = [f for f in TABLE_FIGURES if any(f in r["figures"] for r in rows)]
        lines.append(f"{name}:")
        lines.append("  " + f"{'date (UTC)':20s} {'commit':11s} " + " ".join(f"{f:>22s}" for f in figs) + "  note")
        for r in rows:
            cells = []
            for f in figs:
                v, q = r["figures"].get(f), r["ratios"][f]
                cells.append(f"{'-' if v is None else f'{v:,.4g}':>12s} {'' if q is None else f'(x{q:.2f})':>9s}")
            commit = (r.get("commit") or "?")[:10] + ("+" if r.get("dirty") else "")
            lines.append("  " + f"{str(r.get('date', '?'))[:19]:20s} {commit:11s} " + " ".join(cells)
                         + f"  {r.get('note', '')[:60]}")
    return "\n".join(lines) if lines else "(no entries)"


def record(path: str | Path = HISTORY, max_k: int = RECORD_DEFAULT_MAX_K, note: str = "",
           report=print) -> list[dict]:
    """Run the fixed benchmark set (permutation-1024, then ``softdpu bench scale`` up to
    ``max_k``) and append one line per benchmark (a scale size is a benchmark: scale-k8, ...)
    to ``path``. Sizes refused for memory are not recorded."""
    from controlplane.run import bench, bench_scale
    env = environment(note)
    report(f"recording to {path} (commit {env['commit']}{' + uncommitted changes' if env['dirty'] else ''})")
    entries = []
    r = bench.run("permutation-1024", "c")
    r["us_per_event"] = r["run_s"] / r["events"] * 1e6
    entries.append(entry("permutation-1024", r, env))
    report(f"  permutation-1024: run {r['run_s']:.2f} s, {r['events']:,} events, peak RSS {r['peak_rss_mib']:.0f} MiB")
    for row in bench_scale.run_scale(max_k=max_k):
        if "refused" in row:
            report(f"  {row['benchmark']}: {row['refused']}")
            continue
        entries.append(entry(row["benchmark"], row, env))
        report(f"  {row['benchmark']}: run {row['run_s']:.2f} s, {row['us_per_event']:.3f} us/event, "
               f"peak RSS {row['peak_rss_mib']:.0f} MiB")
    append(path, entries)
    return entries
