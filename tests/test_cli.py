"""The softdpu command, as a user runs it."""
import subprocess
import sys

import pytest

from controlplane.cli import main


def test_list_names_experiments_and_ccs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "incast" in out and "dcqcn" in out and "none" in out


@pytest.mark.plots
def test_run_incast_writes_results_and_plots(tmp_path, capsys):
    out = tmp_path / "inc"
    rc = main(["run", "incast", "--set", "senders=2", "--set", "size_bytes=300000", "--out", str(out)])
    assert rc == 0
    for variant in ("dcqcn", "none"):
        for f in ("config.json", "flows.csv", "timeseries.npz", "counters.json", "plots/rates.png",
                  "plots/queue.png", "plots/fct.png"):
            assert (out / variant / f).stat().st_size > 0, (variant, f)
    assert (out / "incast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "Jain" in text and "goodput" in text
    # re-plot from the folder alone
    assert main(["plot", str(out)]) == 0


def test_unknown_experiment_and_bad_set_fail_cleanly(capsys):
    assert main(["run", "nosuch"]) == 2
    assert main(["run", "incast", "--set", "senders"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment" in err and "key=value" in err


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "controlplane.cli", "list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "incast" in r.stdout


def test_run_with_pcap_writes_one_capture_per_variant(tmp_path):
    from dataplane.pcap import read_pcap
    out = tmp_path / "inc"
    rc = main(["run", "incast", "--set", "senders=2", "--set", "size_bytes=100000", "--out", str(out), "--no-plots",
               "--pcap", str(tmp_path / "cap.pcap"), "--pcap-filter", "points=h0 dir=rx snaplen=128 max=40"])
    assert rc == 0
    for variant in ("dcqcn", "none"):
        r = read_pcap(tmp_path / f"cap-{variant}.pcap")
        assert len(r.records) == 40 and r.snaplen == 128
    assert main(["run", "incast", "--pcap-filter", "points=h0"]) == 2           # a filter without a file


@pytest.mark.plots
def test_cc_compare_runs_every_algorithm(tmp_path):
    out = tmp_path / "ccc"
    rc = main(["run", "cc_compare", "--set", "long_bytes=400000", "--set", "burst=2", "--set", "burst_bytes=50000",
               "--set", "burst_at_ps=20000000", "--out", str(out)])
    assert rc == 0
    for variant in ("dcqcn", "dcqcn-paper", "dctcp", "timely", "none"):
        assert (out / variant / "counters.json").exists()
    assert (out / "cc_compare.png").stat().st_size > 10_000


@pytest.mark.plots
def test_fct_slowdown_writes_buckets_and_plot(tmp_path):
    import csv
    out = tmp_path / "fct"
    rc = main(["run", "fct_slowdown", "--set", 'workloads=["fb_hadoop"]', "--set", "loads=[0.3]",
               "--set", 'ccs=["dctcp","none"]', "--set", "duration_us=300", "--set", "buckets=4", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "fct_slowdown.csv")))
    assert {r["cc"] for r in rows} == {"dctcp", "none"} and len(rows) == 8
    assert all(float(r["p50"]) >= 0.99 for r in rows)          # nothing beats its standalone FCT
    assert (out / "fct_slowdown.png").stat().st_size > 10_000


def test_a_run_stopped_by_its_cc_is_one_line_not_a_traceback(tmp_path, capsys):
    """A plug-in setting a rate below the 1 Mb/s floor stops the run: the CLI says so in one line
    naming the plug-in, the QP and the event, exits 1, and the results up to then are on disk."""
    plugin = tmp_path / "slow_cc.py"
    plugin.write_text("from congestion.api import CongestionControl\n"
                      "class Slow(CongestionControl):\n"
                      "    name = 'slow'\n"
                      "    def on_start(self, st, ev):\n"
                      "        ev.rate_bps = 0.5\n")
    out = tmp_path / "out"
    rc = main(["run", "incast", "--cc", f"{plugin}:Slow", "--set", "senders=2", "--set", "size_bytes=100000",
               "--out", str(out), "--no-plots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert "cc 'slow' set rate_bps=0.5" in err[0] and "event start" in err[0] and str(out) in err[0]
    assert list(out.rglob("counters.json")), "the partial results were not written"
