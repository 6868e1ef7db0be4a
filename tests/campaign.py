"""The long robustness campaign of issue #12: the generators of tests/generators.py (scenario
dicts drawn from the JSON Schema and mutated, --pcap-filter strings, softdpu command lines) run
for a wall-clock time, each case in a worker process under a hard timeout.

    python -m tests.campaign --minutes 10 --out results/campaign      (or: make campaign)

A case that takes longer than ``--timeout`` seconds is a hang (the worker is killed and
replaced); a worker that dies (a crash of the data plane, the kernel's OOM killer) is a crash, as
is an exception raised from inside the code or a rejection that names no field; a command line
that prints a traceback or exits 70 is a traceback. The workers run with at most 3 GiB of address
space, so an unbounded allocation is a MemoryError (a crash), not a dead machine. Prints and
writes (``--out``) the counts: cases, clean rejections by field, runs completed, budget stops,
hangs, crashes, tracebacks; every finding is written with its input to findings.jsonl.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

KINDS = ("scenario", "pcap", "cli")


class _TimeUp(Exception):
    """The campaign's time is over (ends the current batch of cases)."""
MEMORY_LIMIT = 3 << 30


def _worker(conn) -> None:
    import resource
    import warnings
    warnings.simplefilter("ignore")
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from tests import generators as G
    while True:
        try:
            kind, payload, tmp = conn.recv()
        except EOFError:
            return
        try:
            if kind == "scenario":
                d, _, touched = payload
                o = G.check_scenario(d, touched)
            elif kind == "pcap":
                o = G.check_pcap_filter(payload, Path(tmp))
            else:
                o = G.check_command_line(payload)
            conn.send((o.kind, o.field, o.detail))
        except BaseException as e:                 # noqa: BLE001 - a crash of the checker itself
            conn.send(("internal", "", f"{type(e).__name__} in the checker: {e}"))


class Pool:
    """One worker process; a case that runs over the timeout kills it (a hang)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.ctx = mp.get_context("fork")
        self.proc = None

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, kind: str, payload, tmp: str) -> tuple[str, str, str]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((kind, payload, tmp))
        if not self.conn.poll(self.timeout):
            self.stop()
            return "hang", "", f"no answer within {self.timeout:g} s"
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(5)
            code = self.proc.exitcode
            self.proc = None
            return "crash", "", f"the worker died (exit code {code})"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
            self.proc = None


def campaign(minutes: float, out: Path, seed: int = 0, timeout: float = 60.0, kinds=KINDS) -> dict:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    from tests import generators as G

    out.mkdir(parents=True, exist_ok=True)
    scratch = out / "scratch"
    findings_path = out / "findings.jsonl"
    findings_path.write_text("")
    deadline = time.monotonic() + minutes * 60
    counts: Counter = Counter()
    by_kind: dict[str, Counter] = {k: Counter() for k in kinds}
    fields: Counter = Counter()
    pool = Pool(timeout)
    n = [0]

    def record(kind: str, payload, outcome: tuple[str, str, str], wall: float) -> None:
        o_kind, field, detail = outcome
        if o_kind == "internal":
            o_kind = "traceback" if detail.startswith(("traceback", "exit 70")) else "crash"
        counts[o_kind] += 1
        by_kind[kind][o_kind] += 1
        if o_kind == "reject":
            fields[f"{kind}: {field}"] += 1
        if o_kind in ("hang", "crash", "traceback"):
            with open(findings_path, "a") as fh:
                fh.write(json.dumps({"kind": kind, "outcome": o_kind, "detail": detail, "wall_s": round(wall, 2),
                                     "input": payload}, default=repr) + "\n")
            print(f"  {o_kind.upper()} ({kind}): {detail[:300]}", flush=True)

    def one(kind: str, data) -> None:
        # every example draws the same way (hypothesis checks it); the time is looked at after
        tmp = scratch / f"case-{n[0]}"
        tmp.mkdir(parents=True, exist_ok=True)
        if kind == "scenario":
            payload = data.draw(G.scenario_cases())
        elif kind == "pcap":
            payload = data.draw(G.pcap_filters())
        else:
            payload = data.draw(G.command_lines(tmp))
        if time.monotonic() >= deadline:
            raise _TimeUp
        t = time.monotonic()
        outcome = pool.run(kind, payload, str(tmp))
        n[0] += 1
        record(kind, payload, outcome, time.monotonic() - t)
        shutil.rmtree(tmp, ignore_errors=True)
        if n[0] % 100 == 0:
            left = max(0.0, deadline - time.monotonic()) / 60
            print(f"... {n[0]} cases ({left:.1f} min left): {dict(counts)}", flush=True)

    batch = 0
    try:
        while time.monotonic() < deadline:
            kind = kinds[batch % len(kinds)]

            @hseed(seed * 100_003 + batch)
            @settings(max_examples=10, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(st.data())
            def cases(data):
                one(kind, data)
            try:
                cases()
            except _TimeUp:
                break
            batch += 1
    finally:
        pool.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {"minutes": minutes, "seed": seed, "timeout_s": timeout, "cases": sum(counts.values()),
               "clean_rejections": counts["reject"], "runs_completed": counts["run"],
               "budget_stops": counts["budget"], "stopped_by_cc_or_dataplane": counts["stopped"],
               "hangs": counts["hang"], "crashes": counts["crash"], "tracebacks": counts["traceback"],
               "by_input": {k: dict(v) for k, v in by_kind.items()},
               "rejections_by_field": dict(fields.most_common())}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(s: dict) -> str:
    lines = [f"cases {s['cases']}: clean rejections {s['clean_rejections']}, runs completed {s['runs_completed']}, "
             f"budget stops {s['budget_stops']}, stopped by a CC or the data plane {s['stopped_by_cc_or_dataplane']}, "
             f"hangs {s['hangs']}, crashes {s['crashes']}, tracebacks {s['tracebacks']}"]
    for k, v in s["by_input"].items():
        lines.append(f"  {k:8s} " + ", ".join(f"{a} {b}" for a, b in sorted(v.items())))
    lines.append("rejections by field (most frequent first):")
    lines += [f"  {v:6d}  {k}" for k, v in list(s["rejections_by_field"].items())[:40]]
    more = len(s["rejections_by_field"]) - 40
    if more > 0:
        lines.append(f"  ... {more} more fields (summary.json)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.campaign", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock time to run cases for")
    ap.add_argument("--out", default="results/campaign", help="folder for summary.json and findings.jsonl")
    ap.add_argument("--seed", type=int, default=0, help="the generators' seed (the same seed draws the same cases)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds after which a case is a hang")
    ap.add_argument("--kinds", default=",".join(KINDS), help="which inputs: scenario,pcap,cli")
    a = ap.parse_args(argv)
    kinds = tuple(k for k in a.kinds.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        ap.error(f"--kinds: choose from {', '.join(KINDS)}")
    s = campaign(a.minutes, Path(a.out), a.seed, a.timeout, kinds)
    print(format_summary(s))
    print(f"written: {Path(a.out) / 'summary.json'}, findings with their inputs: {Path(a.out) / 'findings.jsonl'}")
    return 1 if s["hangs"] or s["crashes"] or s["tracebacks"] else 0


if __name__ == "__main__":
    sys.exit(main())
