"""Documentation test: every `softdpu ...` command and every Python block in README.md and
docs/*.md runs, so a documented command that breaks fails CI.

What is extracted (`extract`):
  * fenced ```bash / ```sh / ```console blocks: one case per line (a trailing `\\` continues it,
    a `$ ` prompt is dropped, `# ...` comments are dropped as the shell drops them);
  * inline code spans outside fences (tables included, a span may wrap a line) that start with
    `softdpu ` (or `time softdpu `), and spans that are a bare `--set key=value` or `--cc X`
    fragment of a command (FRAGMENTS says which command each belongs to);
  * fenced ```python blocks; a block whose first line is indented continues the previous Python
    block of the same file (the CC tutorial builds one class over several blocks), so the joined
    source is one case, named by its first block.

How a `softdpu` command runs: in process through `controlplane.run.cli.main(argv)` (shlex.split, the
leading `softdpu` dropped), with the working directory a fresh tmp_path holding a link to the
repository's `experiments/` (the commands name `experiments/plugins/...` relative to a clone),
`--out` added (or replaced) to point into tmp_path, and the experiment's size reduction from
REDUCE. The command must return 0, or, for the commands the docs say fail, the documented exit
code and message (EXPECTED_FAILURES). A command printed in several places runs once; its id
names every place.

Size reductions (REDUCE): each experiment at its printed size takes seconds to minutes (the
README's own estimates: fct_slowdown ~1 min, qp_scale ~80 s, ...); the test adds `--set`
settings that shrink the fabric, the messages or the sweep, taken from the experiments' smoke
tests (tests/test_cli.py, test_multipath.py, test_dpu_experiments.py, test_qpc.py,
test_collectives.py). They go in before the command's own `--set`s and never override a key the
command sets itself: a documented setting always runs as printed. The whole file runs in about a
minute on one core.

Not run, by design, each with its reason (the lists are checked against the docs, so an entry
cannot outlive the text it excuses):
  * SHELL_EXCLUDED: shell lines that are not softdpu and not run (make); the tshark line (SHELL_RUN)
    runs on the capture of the softdpu command printed above it, where tshark is installed (always
    in CI, where its absence fails);
  * BENCH_EXCLUDED: benchmarks measure speed on a full-size fabric (seconds to a minute each);
    they are not tests (docs/performance.md: "Benchmarks are never tests"); the cheap ones run;
  * FRAGMENT_EXCLUDED, COMMAND_EXCLUDED, PY_EXCLUDED: anything else not run, each with its reason;
  * SIZE_EXCLUDED: a documented setting whose only purpose is to make a run big (a 1 GB
    all-reduce point takes ~25 s): its keys are checked to be parameters of the experiment, so a
    rename still fails here.
Inputs: a command or a Python block that reads what printed commands wrote (a sweep's plot, the
analysis example's folders) has them run first, as printed, in its working directory
(PREREQUISITES, PY_PREREQUISITES); PY_EXCLUDED lists Python blocks not run, with the reason.
Templates (`softdpu plot <folder>`, `--seed N`, `cnp_mode=...`) run as the concrete command in
TEMPLATES.

Python blocks run with exec in a fresh namespace, cwd = tmp_path (with the `experiments/` link),
after the substitutions in PY_SUBSTITUTIONS (each must match the block, so it cannot go stale).
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# --- what is not run, and why -------------------------------------------------------------------

#: shell lines in bash blocks that are not softdpu commands, by program
SHELL_EXCLUDED = {
    "make": "sets up the virtualenv and runs the suite or the default experiment: this test runs inside "
            "`make test` (make run = `softdpu run incast`, run below; make golden/bench/sanitize are CI steps)",
    "pip": "installs an extra into the reader's environment; CI installs the dev extra, which includes it",
    "dask": "starts a Dask scheduler or worker on the reader's machines; tests/test_sweep.py starts a real "
            "`dask scheduler` and two `dask worker` processes on localhost and sweeps through them",
}

#: shell programs whose lines run (after the softdpu command that makes their input); a case is made
#: where the program is installed, and always in CI (SOFTDPU_NO_SKIPS=1), where its absence fails
SHELL_RUN = {"tshark": "softdpu run incast --pcap out.pcap"}

#: benchmarks not run (a benchmark times a full-size run; it asserts nothing)
BENCH_EXCLUDED = {
    "softdpu bench permutation-1024": "1024-host fat-tree, ~4 s (C) per run, median of several",
    "softdpu bench permutation-1024 --cc-impl c --cc-impl python": "1024-host fat-tree, ~4 s (C) + ~9 s (Python)",
    "softdpu bench permutation-1024 --cc-impl c|python": "a template of the line above",
    "softdpu bench multipath": "permutation-1024 twice, 3 interleaved runs each (~25 s)",
    "softdpu bench permutation-128": "a benchmark (docs/performance.md runs it under callgrind, ~4 min), not a test",
    "softdpu bench cc-cost": "every algorithm's Python reference on permutation-128, medians of 3 (~1 min)",
    "softdpu bench ...": "a placeholder for every benchmark",
    "softdpu bench sweep-overhead": "starts a local Dask cluster and times 300 points (~20 s); the Dask path "
                                    "itself is tested in tests/test_sweep.py",
    "softdpu bench scale": "the permutation at k = 8, 16 and 32 (8,192 hosts: ~45 s, ~210 MiB); "
                           "tests/test_bench_scale.py runs the same code at k = 4",
    "softdpu bench scale --max-k 16": "k = 8 and 16 (1,024 hosts, ~3-5 s); tests/test_bench_scale.py runs the "
                                      "same code at k = 4 and the memory refusal with a made-up limit",
    "softdpu bench scale --set max_k=64": "65,536 hosts: ~2 GiB and ~13 min, or its refusal on a smaller machine; "
                                          "tests/test_bench_scale.py tests the estimate and the refusal",
    "softdpu bench scale --set max_k=64 --set min_k=32": "k = 32 and 64 (~15 min, ~2 GiB)",
    "softdpu bench partitions": "permutation-1024 stopped at every 1 us window (~3 s); tests/test_bench_scale.py "
                                "runs the profile at k = 4",
    "softdpu bench partitions --set k=16": "the same (k = 16 is the default)",
    "softdpu bench partitions --set k=16 --set partitions=8": "the same, 2 pods per partition",
    "softdpu bench ack-coalescing": "permutation-1024 four times (~10 s); tests/test_bench_scale.py runs the same "
                                    "code at k = 4 and checks the ACK counts",
    "softdpu bench ack-coalescing --set k=32": "8,192 hosts four times (~90 s)",
    "softdpu bench pcap": "writes and reads a 1 M-record capture 5 times, the Python reference 3 times on 100 k "
                          "records (~20 s); tests/test_pcap_scan.py runs the same code on 2,000 records and checks "
                          "the reader against the reference",
}

#: inline --set/--cc fragments: the command each belongs to (None = not run: SIZE_EXCLUDED or
#: FRAGMENT_EXCLUDED says why)
FRAGMENTS = {
    "--set ipv6=true": "softdpu run incast --set ipv6=true --pcap out.pcap",
    "--set ecn.kmin_bytes=100000": "softdpu run incast --set ecn.kmin_bytes=100000",
    "--set cnp_mode=ack_echo": "softdpu run incast --pcap out.pcap --set cnp_mode=ack_echo",
    "--set cc_params.rmin_bps=500000": "softdpu run incast --set cc_params.rmin_bps=500000",
    "--set pfc=true": "softdpu run incast --set pfc=true",
    "--set scale=paper": "softdpu run fct_slowdown --set scale=paper",
    "--set scale=full": None,
    "--set max_size=1073741824": None,
    "--set policy=fifo": "softdpu run qp_scale --set policy=fifo",
    "--cc file.py:Class": "softdpu run incast --cc experiments/plugins/ecn_aimd.py:EcnAimd",
    "--cc ecn_aimd": "softdpu run incast --cc ecn_aimd",
    "--set ecn_aimd.period_ps=50us": "softdpu run incast --cc ecn_aimd --set ecn_aimd.period_ps=50us",
    "--set dcqcn.rai_bps=40M": "softdpu run incast --set dcqcn.rai_bps=40M",
    "--set dcqcn.byte_counter=10MB": "softdpu run incast --set dcqcn.byte_counter=10MB",
    "--cc experiments.plugins.ecn_aimd:EcnAimd": "softdpu run incast --cc experiments.plugins.ecn_aimd:EcnAimd",
    "--cc dcqnc": "softdpu run incast --cc dcqnc",
    "--cc pkg.module:Class": None,
    "--cc my_cc.aimd:MyAimd": None,
    "--set KEY=VALUE": None,
    "--cc NAME": None,
    "--cc package.module:Class": None,
    "--set max_events=N": None,
    "--set 'jobs=[\"70b/512/tp8-pp8-dp8\"]'": None,
}

#: documented settings that only make a run big: (experiment, reason); keys checked against PARAMS
SIZE_EXCLUDED = {
    "--set scale=full": ("qp_scale", "adds 65,536 QPs: ~5 min by the README's own estimate"),
    "--set max_size=1073741824": ("allreduce_busbw", "1 GB points: ~25 s each by the README's own estimate"),
    "--set 'jobs=[\"70b/512/tp8-pp8-dp8\"]'": ("training_step", "512 GPUs: 30-40 s per run by docs/training.md, "
                                                                "6 runs"),
}

#: other fragments not run: {fragment: reason}
FRAGMENT_EXCLUDED: dict[str, str] = {
    "--cc pkg.module:Class": "a template; its concrete form --cc experiments.plugins.ecn_aimd:EcnAimd runs",
    "--cc my_cc.aimd:MyAimd": "a module of the reader's own package (docs/writing-a-cc.md, 8); the "
                              "package.module:Class form runs with experiments.plugins.ecn_aimd:EcnAimd",
    "--set KEY=VALUE": "the grammar's placeholder; the README's examples of each form run",
    "--cc NAME": "a template (an entry-point name); its concrete form --cc ecn_aimd runs",
    "--cc package.module:Class": "a template; its concrete form --cc experiments.plugins.ecn_aimd:EcnAimd runs",
    "--set max_events=N": "a template in the run-budget paragraph (how to raise the budget); "
                          "tests/test_budget.py runs budgets",
}

#: printed commands not run (other than benchmarks): {command: reason}
COMMAND_EXCLUDED: dict[str, str] = {
    "softdpu run incast --cc my_aimd": "needs `pip install ./my-cc`, a package the reader writes; the "
                                       "entry-point form runs with --cc ecn_aimd (softdpu's own entry point)",
    "softdpu run NAME ...": "a placeholder for any run command (`python -m experiments.NAME ...` is the same)",
    "softdpu sweep fct_slowdown --seeds 1-5 -j 2": "120 runs of fct_slowdown (~2.6 s each on one core); "
                                                   "tests/test_sweep.py runs small sweeps with -j 1 and -j 2",
    "softdpu sweep fct_slowdown --seeds 1-20 --scheduler tcp://HOST:8786": "needs the reader's Dask cluster; "
        "tests/test_sweep.py sweeps through a real local one",
    "softdpu sweep fct_slowdown --seeds 1": "the -j 1 vs -j 2 measurement: 24 runs, a minute or more; "
                                            "tests/test_sweep.py runs small sweeps with -j 1 and -j 2",
    "softdpu plot results/sweep-fct_slowdown --metrics small_slowdown_p95,small_slowdown_p99,slowdown_p99":
        "reads the 120-run sweep printed before it; tests/test_analysis.py "
        "test_plot_sweep_of_seeds_only_draws_the_variants plots a seeds-only sweep of GROUP/CC variants, and "
        "tests/test_sweep.py test_fct_slowdown_sweep_index_has_the_small_flow_slowdown checks these metrics",
}


#: commands a printed command reads the output of, run first as printed (cheap by construction), in
#: the same working directory: {command: [commands]}
PREREQUISITES: dict[str, list[str]] = {
    "softdpu plot results/incast_sweep": ["softdpu sweep incast --grid senders=2,4,8 --seeds 1-3 --set size_bytes=200KB --set workload.jitter_ps=3us --out results/incast_sweep"],
}

#: Python blocks that read what printed commands wrote: {(doc, a line of the block): [commands]},
#: run first as printed (cheap by construction) in the block's working directory
PY_PREREQUISITES: dict[tuple[str, str], list[str]] = {
    ("docs/analysis.md", 'inc = load("results/incast_small")'): [
        "softdpu run incast --set senders=4 --set size_bytes=1MB --no-plots --out results/incast_small"],
    ("docs/analysis.md", 'ds = load("results/incast_small/dcqcn").timeseries'): [
        "softdpu run incast --set senders=4 --set size_bytes=1MB --no-plots --out results/incast_small"],
    ("docs/analysis.md", 'fct = load("results/fct_small")'): [
        "softdpu run fct_slowdown --set 'workloads=[\"fb_hadoop\"]' --set 'loads=[0.3]' --set 'ccs=[\"dcqcn\",\"hpcc\"]' "
        "--set duration_us=300 --no-plots --out results/fct_small"],
    ("docs/analysis.md", 'sw = load("results/incast_sweep")'): ["softdpu sweep incast --grid senders=2,4,8 --seeds 1-3 --set size_bytes=200KB --set workload.jitter_ps=3us --out results/incast_sweep"],
}

#: Python blocks not run: {(file, a line of the block): reason}
PY_EXCLUDED: dict[tuple[str, str], str] = {
    ("README.md", "from dask_jobqueue import SLURMCluster"): "starts Slurm jobs: needs a Slurm cluster and "
        "dask-jobqueue; the Dask path itself runs in tests/test_sweep.py",
}

#: files a doc tells the reader to save, made before a command that names them:
#: {file name: (doc, class)} = the doc's Python blocks assembled (see `extract`), saved under that name
SAVED_FILES: dict[str, tuple[str, str]] = {
    # docs/writing-a-cc.md, 1: "Save it as `my_aimd.py` in any folder"
    "my_aimd.py": ("docs/writing-a-cc.md", "EcnAimd"),
}

#: printed templates -> the concrete command run for them
TEMPLATES = {
    "softdpu plot <folder>": "softdpu plot results/incast",
    "softdpu run NAME --help": "softdpu run qp_scale --help",
    "softdpu schema --experiment NAME": "softdpu schema --experiment qp_scale",
    "softdpu run incast --seed N --set cnp_mode=...": "softdpu run incast --seed 2 --set cnp_mode=ack_echo",
}

#: commands the docs say fail: (exit code, regex the error line must match)
EXPECTED_FAILURES = {
    # docs/writing-a-cc.md: "An unknown parameter is an error that names it"
    "softdpu run incast --cc ecn_aimd --set cc_params.stepp_bps=1":
        (2, r"stepp_bps"),
    # docs/writing-a-cc.md: "stops with `timely: cc_params.rmin_bps must be >= 1e+06 (the rate floor, 1 Mb/s), got
    # 500000 (from '500K')`"
    "softdpu run incast --set 'ccs=[\"timely\"]' --set cc_params.rmin_bps=500K":
        (2, re.escape("timely: cc_params.rmin_bps must be >= 1e+06 (the rate floor, 1 Mb/s), got 500000 (from '500K')")),
    # README: "a rate parameter below it (`--set cc_params.rmin_bps=500000`) is refused at setup naming the parameter"
    "softdpu run incast --set cc_params.rmin_bps=500000": (2, r"rmin_bps must be >= 1e\+06"),
    # docs/writing-a-cc.md, 8: "`--cc dcqnc` asks \"did you mean 'dcqcn'?\""
    "softdpu run incast --cc dcqnc": (2, r"did you mean 'dcqcn'"),
}

#: per experiment, --set settings added to shrink the run (from the experiments' smoke tests)
REDUCE = {
    "incast": ["senders=2", "size_bytes=100000"],                                # tests/test_cli.py
    "cc_compare": ["long_bytes=400000", "burst=2", "burst_bytes=50000", "burst_at_ps=20000000"],
    "fct_slowdown": ['workloads=["fb_hadoop"]', "loads=[0.3]", "duration_us=300", "buckets=4"],
    "replay": [],                                                                # 8 x 1 MB already
    "spraying_vs_ecmp": ["k=4", "size_bytes=1000000"],                           # tests/test_multipath.py
    "link_failure": ["size_bytes=2000000", "fail_us=50"],
    "reorder_cost": ["size_bytes=1000000", 'policies=["ecmp","spray_rr"]', 'transports=["gbn","ooo"]'],
    "virtualization_tax": ["hosts=4", "loads_gbps=[2,8]", "warmup_us=200", "window_us=600"],
    "upcall_storm": ["hosts=4", "handlers=[1]", "rates=[5000,100000]", "window_us=2000", "drain_us=1000",
                     "upcall_queue=64"],                                         # tests/test_dpu_experiments.py
    "qp_scale": ["qps=[16,64]", "caches=[32]", "min_msgs=512"],                  # tests/test_qpc.py
    "allreduce_busbw": ["max_size=262144", "seeds=1", 'variants=["ecmp"]'],      # tests/test_collectives.py
    "sharp_gain": ["size_bytes=1048576", 'fabrics=["nvswitch"]', "overheads_us=[0,3]"],
    "placement": ["seeds=1", "grad_bytes=1048576", "background_jobs=2"],
    "alltoall_rails": ["sizes=[262144]", "core_oversubscription=[1]", 'variants=["ecmp"]'],
    "effective_training_time": ["replicas=10", "days=5"],                        # ~3 s at full size
    "training_step": ['jobs=["7b/16/tp8-pp1-dp2"]', 'variants=["ecmp"]', 'sharp=["off"]', "scale=1024",
                      "place_gpus=16", "place_servers=4", "background_jobs=2", "verify=1",
                      "global_batch=16"],                                        # ~3 min at full size
    "interop": ["senders=4", "size_bytes=500000", "pair_bytes=1000000"],         # ~3 s at full size
}

#: Python blocks: (file, original text) -> replacement, to shrink a long run
PY_SUBSTITUTIONS: dict[tuple[str, str], str] = {}


# --- extraction ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snippet:
    file: str           # relative to the repository
    line: int
    kind: str           # "command" (softdpu ...), "shell", "fragment", "python"
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
SHELL_LANGS = {"bash", "sh", "shell", "console"}


def extract(path: Path) -> list[Snippet]:
    rel = str(path.relative_to(REPO))
    lines = path.read_text().splitlines()
    out: list[Snippet] = []
    prose = list(lines)                      # the text with fenced blocks blanked, for inline spans
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1).lower(), i
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        body = lines[start + 1:j]
        for k in range(start, min(j + 1, len(lines))):
            prose[k] = ""
        if lang in SHELL_LANGS:
            k = 0
            while k < len(body):
                first, text = start + 2 + k, body[k]
                while text.endswith("\\") and k + 1 < len(body):
                    k += 1
                    text = text[:-1] + " " + body[k].strip()
                k += 1
                text = text.strip()
                if text.startswith("$ "):
                    text = text[2:]
                argv = shlex.split(text, comments=True)
                if not argv:
                    continue
                kind = "command" if argv[0] == "softdpu" else "shell"
                out.append(Snippet(rel, first, kind, shlex.join(argv)))
        elif lang == "python":
            src = "\n".join(body) + "\n"
            prev = next((k for k in range(len(out) - 1, -1, -1) if out[k].kind == "python"), None)
            if body and body[0][:1] in (" ", "\t") and prev is not None:
                out[prev] = Snippet(rel, out[prev].line, "python", out[prev].text + "\n" + src)
            else:
                out.append(Snippet(rel, start + 2, "python", src))
        i = j + 1
    text = "\n".join(prose)
    for m in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)?)`", text):
        span = " ".join(m.group(1).split())
        line = text.count("\n", 0, m.start()) + 1
        if span.startswith("time softdpu "):
            span = span[len("time "):]
        if span.startswith("softdpu "):
            out.append(Snippet(rel, line, "command", span))
        elif span.startswith(("--set ", "--cc ")):
            out.append(Snippet(rel, line, "fragment", span))
    return sorted(out, key=lambda s: s.line)


SNIPPETS = [s for f in DOC_FILES for s in extract(f)]


def _norm(cmd: str) -> str:
    """One spelling per command (quotes as shlex.join writes them), to match the tables."""
    return shlex.join(shlex.split(cmd))


def _cases() -> tuple[dict, dict]:
    """{command: [snippets]} to run, {command: [snippets]} excluded as benchmarks."""
    run, bench = {}, {}
    for s in SNIPPETS:
        if s.kind == "fragment":
            cmd = FRAGMENTS.get(s.text)
            if cmd is None:
                continue                       # SIZE_EXCLUDED (checked below) or unknown (fails below)
        elif s.kind == "command":
            cmd = TEMPLATES.get(s.text, s.text)
        else:
            continue
        cmd = _norm(cmd)
        if cmd in {_norm(c) for c in COMMAND_EXCLUDED}:
            continue
        if shlex.split(cmd)[1] == "bench" and cmd not in BENCH_RUN:
            bench.setdefault(cmd, []).append(s)
        else:
            run.setdefault(cmd, []).append(s)
    return run, bench


#: benchmarks cheap enough to run (1-4 s each): they run as printed (exit 0; their numbers are not checked)
BENCH_RUN = {"softdpu bench vswitch", "softdpu bench capture", "softdpu bench cc-callback",
             "softdpu bench history"}   # history: reads the repository's benchmarks/history.jsonl

RUN_CASES, BENCH_CASES = _cases()

def _results_table() -> list[str]:
    """The files of README's "Results folder (one run)" table (trace.npz only with trace=N)."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Results folder (one run)", 1)[1].split("\n#", 1)[0]
    files = []
    for m in re.finditer(r"^\| `([^`]+)` \| (.*) \|$", section, re.M):
        name, contents = m.groups()
        if name == "trace.npz":
            continue                    # written only with trace=N (the row says so)
        if name == "plots/*.png":
            files += [f"plots/{png}" for png in re.findall(r"`([\w.]+\.png)`", contents)]
        else:
            files.append(name)
    return files


#: files the docs say a command writes: relative to its results folder, or ./ = the working directory
DOC_OUTPUTS = {
    # README, Two commands: "`make run` writes `results/incast/{dcqcn,none}/` (config, per-flow CSV,
    # time series, counters, plots) and `results/incast/incast.png`" (make run = softdpu run incast)
    "softdpu run incast": [f"{v}/{f}" for v in ("dcqcn", "none") for f in _results_table()] + ["incast.png"],
    # docs/writing-a-cc.md, 5: "the plots (`results/incast/ecn_aimd/plots/`)"
    "softdpu run incast --cc ecn_aimd": ["ecn_aimd/plots/rates.png"],
    # README, Packet captures: "An experiment with several variants writes out-<variant>.pcap for each"
    "softdpu run incast --pcap out.pcap": ["./out-dcqcn.pcap", "./out-none.pcap"],
}

#: the plot the README's experiments table promises for each experiment (`results/<exp>/<file>`)
DOC_PLOTS = {m.group(1): m.group(2) for m in re.finditer(
    r"^\| `softdpu run (\w+)` \|.*\| `results/\1/([^`/]+)`", (REPO / "README.md").read_text(), re.M)}


def _id(cmd: str, where: list[Snippet]) -> str:
    return f"{where[0].where} {cmd}" + (f" (+{len(where) - 1} more)" if len(where) > 1 else "")


# --- the tables cannot go stale -----------------------------------------------------------------

def test_docs_were_found():
    # the docs print at least these many runnable commands and Python blocks today; far fewer
    # means the extraction broke, not that the docs shrank
    assert len(RUN_CASES) >= 30
    assert sum(s.kind == "python" for s in SNIPPETS) >= 5


def test_every_exclusion_names_something_in_the_docs():
    commands = {_norm(TEMPLATES.get(s.text, s.text)) for s in SNIPPETS if s.kind == "command"}
    printed = {_norm(s.text) for s in SNIPPETS if s.kind == "command"} | commands
    fragments = {s.text for s in SNIPPETS if s.kind == "fragment"}
    programs = {shlex.split(s.text)[0] for s in SNIPPETS if s.kind == "shell"}
    assert set(SHELL_EXCLUDED) | set(SHELL_RUN) == programs, (
        "SHELL_EXCLUDED and SHELL_RUN must list exactly the programs of the docs' shell lines",
        programs ^ (set(SHELL_EXCLUDED) | set(SHELL_RUN)))
    assert {_norm(c) for c in SHELL_RUN.values()} <= set(RUN_CASES)
    assert {_norm(c) for c in BENCH_EXCLUDED} <= printed, set(map(_norm, BENCH_EXCLUDED)) - printed
    assert set(BENCH_CASES) <= {_norm(c) for c in BENCH_EXCLUDED}, "a documented benchmark is neither run nor excluded"
    assert set(TEMPLATES) <= {s.text for s in SNIPPETS if s.kind == "command"}
    assert set(FRAGMENTS) == fragments, ("every inline --set/--cc fragment needs its command in FRAGMENTS",
                                         fragments ^ set(FRAGMENTS))
    assert set(SIZE_EXCLUDED) | set(FRAGMENT_EXCLUDED) == {f for f, c in FRAGMENTS.items() if c is None}
    assert not set(SIZE_EXCLUDED) & set(FRAGMENT_EXCLUDED)
    assert {_norm(c) for c in COMMAND_EXCLUDED} <= printed
    for name, (doc, cls) in SAVED_FILES.items():
        assert any(s.kind == "python" and s.file == doc and f"class {cls}(" in s.text for s in SNIPPETS), (name, doc)
        assert any(f" {name}:" in c for c in RUN_CASES), f"no command uses {name}"
    assert {_norm(c) for c in EXPECTED_FAILURES} <= set(RUN_CASES)
    assert BENCH_RUN <= set(RUN_CASES)
    experiments = {shlex.split(c)[2] for c in RUN_CASES if shlex.split(c)[1] == "run"}
    assert set(REDUCE) == experiments, "REDUCE lists exactly the experiments the docs run"
    assert set(DOC_PLOTS) == experiments, "the README's experiments table names every experiment and its plot"
    assert set(DOC_OUTPUTS) <= set(RUN_CASES)
    assert {"config.json", "flows.csv", "counters.json", "plots/rates.png"} <= set(_results_table())
    for (file, old), _new in PY_SUBSTITUTIONS.items():
        assert any(s.kind == "python" and s.file == file and old in s.text for s in SNIPPETS), (file, old)
    for (file, line) in set(PY_PREREQUISITES) | set(PY_EXCLUDED):
        assert any(s.kind == "python" and s.file == file and line in s.text for s in SNIPPETS), (file, line)
    assert {_norm(c) for c in PREREQUISITES} <= printed
    for what, before in [*PREREQUISITES.items(), *PY_PREREQUISITES.items()]:
        assert {_norm(c) for c in before} <= printed, (what, set(map(_norm, before)) - printed)


@pytest.mark.parametrize("fragment", sorted(SIZE_EXCLUDED))
def test_size_excluded_settings_name_real_parameters(fragment):
    """A setting not run because of its size must still name a parameter the experiment has."""
    import importlib
    exp, _why = SIZE_EXCLUDED[fragment]
    params = importlib.import_module(f"experiments.{exp}").PARAMS
    for item in shlex.split(fragment)[1::2]:
        key = item.partition("=")[0]
        assert key in params, f"{fragment}: {key!r} is not a parameter of {exp} ({sorted(params)})"
    if fragment == "--set scale=full":
        from experiments.qp_scale import SCALES
        assert "full" in SCALES


# --- running ------------------------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory that looks like a clone for relative paths in the commands."""
    (tmp_path / "experiments").symlink_to(REPO / "experiments")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sets_keys(argv: list[str]) -> set[str]:
    return {argv[i + 1].partition("=")[0] for i, a in enumerate(argv[:-1]) if a == "--set"}


def prepare_argv(cmd: str, tmp: Path) -> tuple[list[str], Path | None]:
    """The argv main() gets: --out into tmp, the experiment's reductions before its own --sets."""
    argv = shlex.split(cmd)[1:]
    if argv[0] != "run":
        return argv, None
    exp = argv[1]
    own = _sets_keys(argv)
    extra = []
    for item in REDUCE[exp]:
        if item.partition("=")[0] not in own:
            extra += ["--set", item]
    argv = argv[:2] + extra + argv[2:]
    if "--out" in argv:
        k = argv.index("--out")
        out = tmp / "out" / Path(argv[k + 1]).name
        argv[k + 1] = str(out)
    else:
        out = tmp / "results" / exp
        argv += ["--out", str(out)]
    return argv, out


def _prerequisites(cmd: str, tmp: Path) -> None:
    """Files a command reads that a user would have made first."""
    from controlplane.run.cli import main
    if cmd.startswith("softdpu plot results/incast"):
        # made by `softdpu run incast` (README: "re-plot from the results folder alone")
        argv, _ = prepare_argv("softdpu run incast --no-plots", tmp)
        assert main(argv) == 0
    for name, (doc, cls) in SAVED_FILES.items():
        if f" {name}:" in cmd:
            # the doc's class as the reader saved it (its blocks assembled, see `extract`)
            (tmp / name).write_text(next(s.text for s in SNIPPETS
                                         if s.kind == "python" and s.file == doc and f"class {cls}(" in s.text))
    for before in PREREQUISITES.get(cmd, []):
        assert main(shlex.split(before)[1:]) == 0, before
    if "pcap=trace.pcap" in cmd:
        # the user's own capture; here the replay experiment's demo capture
        from experiments.replay import demo_capture
        demo_capture(tmp / "trace.pcap", 1)


def _plots(cmd: str) -> bool:
    argv = shlex.split(cmd)
    return argv[1] == "plot" or (argv[1] == "run" and "--no-plots" not in argv)


@pytest.mark.parametrize("cmd", [
    pytest.param(c, id=_id(c, w), marks=[pytest.mark.plots] if _plots(c) else [])
    for c, w in sorted(RUN_CASES.items(), key=lambda kv: (kv[1][0].file, kv[1][0].line))])
def test_documented_command_runs(cmd, workdir, capsys):
    from controlplane.run.cli import main
    _prerequisites(cmd, workdir)
    argv, out = prepare_argv(cmd, workdir)
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:                  # argparse's own exits (--help, --version, usage)
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    stdout, stderr = capsys.readouterr()
    where = ", ".join(s.where for s in RUN_CASES[cmd])
    if cmd in {_norm(c) for c in EXPECTED_FAILURES}:
        code, pattern = {_norm(c): v for c, v in EXPECTED_FAILURES.items()}[cmd]
        assert rc == code and re.search(pattern, stderr), (where, argv, rc, stderr[-2000:])
        return
    assert rc == 0, f"{where}: `{cmd}` -> exit {rc}\n{stderr[-3000:]}"
    if {"--help", "-h", "--version"} & set(argv):
        assert stdout.strip(), f"{where}: `{cmd}` printed nothing"
        return
    if argv[0] == "plot" and (Path(argv[1]) / "sweep.json").is_file():
        # docs/analysis.md: a sweep's plot writes plots/by_<parameter>.png per swept parameter and summary.csv
        import json
        grid = json.loads((Path(argv[1]) / "sweep.json").read_text())["grid"]
        printed = stdout.split()
        # (a sweep of seeds only: plots/by_variant.png)
        assert printed == [str(Path(argv[1]) / "plots" / f"by_{p}.png") for p in grid or ["variant"]] + \
            [str(Path(argv[1]) / "summary.csv")], (where, stdout)
        assert all(Path(p).is_file() for p in printed), (where, printed)
    elif argv[0] == "plot":
        # "re-plot from the results folder alone": it prints the PNGs it wrote (3 per variant, the
        # results folder table's plots/*.png, and a comparison when the folder holds several runs)
        pngs = [Path(line) for line in stdout.split() if line.endswith(".png")]
        assert pngs and all(p.is_file() for p in pngs), (where, stdout)
        plots_per_run = sum(f.startswith("plots/") for f in _results_table())
        runs = len(list(Path(argv[1]).glob("*/config.json")))
        assert len(pngs) == runs * plots_per_run + (runs > 1), (where, runs, pngs)
    if out is not None:
        assert out.is_dir() and any(out.iterdir()), f"{where}: no results in {out}"
        exp = argv[1]
        if _plots(cmd):
            # README, Experiments: the plot column names the figure each run writes
            assert (out / DOC_PLOTS[exp]).is_file(), f"{where}: no {DOC_PLOTS[exp]} in {sorted(out.iterdir())}"
    for rel in DOC_OUTPUTS.get(cmd, []):
        path = workdir / rel if rel.startswith("./") else out / rel
        assert path.is_file(), f"{where}: the docs say `{cmd}` writes {rel}; it did not"


def _py_excluded(snippet: Snippet) -> bool:
    return any(file == snippet.file and line in snippet.text for file, line in PY_EXCLUDED)


@pytest.mark.parametrize("snippet", [pytest.param(s, id=f"{s.where} python")
                                     for s in SNIPPETS if s.kind == "python" and not _py_excluded(s)])
def test_documented_python_block_runs(snippet, workdir, capsys, registries_restored):
    from controlplane.run.cli import main
    for (file, line), before in PY_PREREQUISITES.items():
        if file == snippet.file and line in snippet.text:
            for cmd in before:
                assert main(shlex.split(cmd)[1:]) == 0, (snippet.where, cmd)
    src = snippet.text
    for (file, old), new in PY_SUBSTITUTIONS.items():
        if file == snippet.file and old in src:
            src = src.replace(old, new)
    ns = {"__name__": "__docs__"}
    # dont_inherit: run the block as a reader's file would, without this module's
    # `from __future__ import annotations` (it made the tutorial's Params annotations strings that
    # pydantic cannot resolve in an exec namespace that is no module)
    exec(compile(src, snippet.where, "exec", dont_inherit=True), ns)
    # a block that defines a congestion control (the tutorial's class, assembled from its blocks)
    # must also run as the plug-in the tutorial says it is: from its file, on a small incast
    from congestion.api import CongestionControl
    from controlplane.run.scenario import Scenario
    from controlplane.config.units import Gbps, us
    for name, obj in ns.items():
        if isinstance(obj, type) and issubclass(obj, CongestionControl) and obj.__module__ == "__docs__":
            path = workdir / f"doc_{name.lower()}.py"
            path.write_text(src)
            r = Scenario(topology={"topology": "single_switch", "num_hosts": 3, "rate_bps": Gbps(100),
                                   "delay_ps": us(1)},
                         workload={"kind": "incast", "senders": 2, "size_bytes": 1_000_000},
                         cc=f"{path}:{name}", sample_interval_ps=0).run()
            # both messages delivered, none faster than alone on the idle fabric (README: slowdown >= 1)
            assert len(r.flows["fct_ps"]) == 2, snippet.where
            assert (r.flows["finish_ps"] >= 0).all() and (r.flows["fct_ps"] >= r.flows["ideal_fct_ps"]).all(), \
                (snippet.where, r.flows)


def _shell_cases():
    import shutil
    for sn in SNIPPETS:
        if sn.kind == "shell" and shlex.split(sn.text)[0] in SHELL_RUN:
            if shutil.which(shlex.split(sn.text)[0]) or os.environ.get("SOFTDPU_NO_SKIPS") == "1":
                yield pytest.param(sn, id=f"{sn.where} {sn.text[:60]}")


@pytest.mark.parametrize("snippet", list(_shell_cases()))
def test_documented_shell_line_runs(snippet, workdir, capsys):
    """The tshark line decodes the capture `softdpu run incast --pcap out.pcap` wrote: one row per
    packet of the file (read back by dataplane.pcap), every row with a BTH opcode."""
    import subprocess
    from controlplane.run.cli import main
    from dataplane.pcap import read_pcap
    argv = shlex.split(snippet.text)
    before = SHELL_RUN[argv[0]]
    pre, _ = prepare_argv(before, workdir)
    assert main(pre + ["--no-plots"]) == 0
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{snippet.where}: {snippet.text}\n{done.stderr[-2000:]}"
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    pcap = next(a for a in argv if a.endswith(".pcap"))
    packets = len(read_pcap(pcap).records)
    assert len(rows) == packets > 0, (snippet.where, len(rows), packets)
    fields = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-e"]
    col = fields.index("infiniband.bth.opcode")
    assert all(r[col].isdigit() for r in rows), f"{snippet.where}: a packet without a decoded BTH opcode"


def test_the_set_keys_the_readme_names_exist():
    """README, Using it: "`--set` takes an experiment parameter (for incast: ...) or any `Scenario`
    field, dotted for nested ones (...)": every incast parameter named is one, every field named is
    a Scenario field, and a dotted one names a key of that section (ecn's, or DCQCN's parameters,
    the default CC's, for cc_params)."""
    from dataclasses import fields

    from congestion.dcqcn import _NVIDIA, _PAPER
    from controlplane.run.scenario import Scenario
    from experiments import incast
    text = " ".join((REPO / "README.md").read_text().split())
    m = re.search(r"`--set(?: KEY=VALUE)?` takes,?(?: in this order:)? an experiment parameter \(for incast: "
                  r"(.*?)[;)].*?any `Scenario` field, dotted for (?:nested ones|a key of a section) \((.*?)\)", text)
    assert m, "the README's sentence on --set moved: update this test"
    exp_keys = re.findall(r"`([^`]+)`", m.group(1))
    assert exp_keys and set(exp_keys) <= set(incast.PARAMS), set(exp_keys) - set(incast.PARAMS)
    scenario_fields = {f.name for f in fields(Scenario)}
    sections = {"ecn": {"kmin_bytes", "kmax_bytes", "pmax", "base_rate_bps", "scale_with_rate"},
                "cc_params": set(_NVIDIA) | set(_PAPER)}
    named = re.findall(r"`([^`=]+)=[^`]*`", m.group(2))
    assert len(named) >= 4
    for key in named:
        head, _, rest = key.partition(".")
        assert head in scenario_fields, f"README names --set {key}: {head!r} is not a Scenario field"
        if rest:
            assert rest in sections[head], f"README names --set {key}: {head} has no key {rest!r}"
