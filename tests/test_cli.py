"""The softdpu command, as a user runs it."""
import subprocess
import sys

import pytest

from controlplane.run.cli import main


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
    r = subprocess.run([sys.executable, "-m", "controlplane.run.cli", "list"], capture_output=True, text=True, timeout=120)
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


# ---------------------------------------------------------------------- issue #12: a CLI that never lies
import json as _json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TINY = ["--set", "senders=2", "--set", "size_bytes=100000", "--no-plots"]


def _one_line_error(capsys, rc):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("args, expected", [
    # the command lines of the issue: the message names what was typed, not an internal field
    (["--set", "buffer_bytes=lots"], "buffer_bytes"),
    (["--set", "senders=8.5"], "senders must be an integer (a whole number), got 8.5"),
    (["--set", "senders=-1"], "senders must be a positive integer (>= 1), got -1"),
    (["--set", "senders=0"], "senders must be a positive integer (>= 1), got 0"),
    (["--set", "senders=abc"], "senders must be an integer, got 'abc'"),
    (["--set", "sender=8"], "unknown parameter 'sender'; closest: senders"),
    (["--set", "ccs=bogus"], "ccs[0]: unknown cc 'bogus'"),
    (["--set", "ccs=[]"], "ccs must be a non-empty list"),
    (["--set", "ccs=dcqcn,dcqcn"], "ccs must be a list without repeats: 'dcqcn' is listed twice"),
    (["--set", "rate_bps=1e999999999G"], "rate_bps must be a rate in bit/s (e.g. 100G, 100Gbps, 25Mbps), got "
                                          "'1e999999999G': '1e999999999G' is out of range"),
    (["--set", "rate_bps=0.5M"], "rate_bps must be in [1000000, 100000000000000], got '0.5M'"),
    (["--set", "dpu={ 2: 3"], "dpu must be a JSON object"),
    (["--set", "pfc=maybe"], "pfc must be a boolean"),
    (["--set", "ipv6=2"], "ipv6 must be a boolean"),
    (["--set", "rate_bps=100Gbit"], "rate_bps must be a rate in bit/s (e.g. 100G, 100Gbps, 25Mbps), got '100Gbit': unknown rate unit 'Gbit'"),
    (["--set", "delay_ps=1.5ps"], "delay_ps must be a time in ps (e.g. 500ns, 1us, 2ms), got '1.5ps': '1.5ps' is not a whole number of ps"),
    (["--set", "link_loss=nan"], "link_loss must be a finite number"),
    (["--set", "cc_params.flavor=paper"], "none of this run's CCs (dcqcn, none) has a parameter 'flavor'; closest: flavour"),
    (["--set", "dctcp.g=0.1"], "no variant of this run uses cc 'dctcp'"),
    (["--set", "=3"], "empty name"),
    (["--set", "ccs=none", "--set", "ecn.kmin_bytes=1"], "no CC of this run (none) has default ECN thresholds"),
    (["--set", "ecn.kmn_bytes=1"], "ecn has no key 'kmn_bytes' (did you mean ecn.kmin_bytes?)"),
    (["--cc", "nosuchcc"], "--cc: unknown cc 'nosuchcc'"),
    (["--seed", "x"], "--seed must be an integer, got 'x'"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--pcap-filter", "qp=-1"], "--pcap-filter qp must be >= 0, got -1"),
    (["--pcap-filter", "snaplen=-1"], "--pcap-filter snaplen must be >= 14 bytes (an Ethernet header), got -1"),
    (["--pcap-filter", "snaplen=0"], "--pcap-filter snaplen must be >= 14 bytes (an Ethernet header), got 0"),
    (["--pcap-filter", "from_us=inf"], "--pcap-filter from_us: expected a finite time"),
    (["--pcap-filter", "to_us=nan"], "--pcap-filter to_us: expected a finite time"),
    (["--pcap-filter", "split=2"], "--pcap-filter split must be a boolean"),
    (["--pcap-filter", "points="], "--pcap-filter: points needs a value"),
    (["--pcap-filter", "points=h0,,h1"], "--pcap-filter points: empty point"),
    (["--pcap-filter", "=5"], "--pcap-filter: expected key=value"),
    (["--pcap-filter", "snaplne=64"], "unknown key 'snaplne' (did you mean snaplen?)"),
    (["--pcap-filter", "max=1 max=2"], "--pcap-filter: max given twice"),
    (["--pcap-filter", "from_us=5 to_us=5"], "from_us (5) must be < to_us (5)"),
])
def test_a_bad_command_line_is_one_line_naming_what_was_typed(tmp_path, capsys, args, expected):
    """Each is refused before anything runs: exit 2, one line on stderr naming the key as typed."""
    argv = ["run", "incast", *TINY, "--out", str(tmp_path / "o"), *args]
    if args[0] == "--pcap-filter":
        argv += ["--pcap", str(tmp_path / "c.pcap")]
    line = _one_line_error(capsys, main(argv))
    assert expected in line, line
    assert not (tmp_path / "o" / "dcqcn").exists()          # nothing ran


def test_an_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_error(capsys, main(["run", "incast", *TINY, "--out", str(blocker / "sub")]))
    assert "--out" in line and str(blocker / "sub") in line
    line = _one_line_error(capsys, main(["run", "incast", *TINY, "--out", str(tmp_path / "o"),
                                         "--pcap", str(blocker / "sub" / "c.pcap")]))
    assert line.startswith("softdpu: --pcap: cannot create the folder") and str(blocker / "sub") in line


def test_no_command_or_no_experiment_is_one_line(capsys):
    assert "the following arguments are required: cmd" in _one_line_error(capsys, main([]))
    assert "run: which experiment? known: " in _one_line_error(capsys, main(["run"]))
    assert "unknown experiment 'incat' (did you mean incast?)" in _one_line_error(capsys, main(["run", "incat"]))


def test_debug_shows_the_traceback_of_a_user_error(capsys):
    rc = main(["--debug", "run", "incast", "--set", "senders=8.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" in err and err.strip().splitlines()[-1] == "softdpu: senders must be an integer (a whole number), got 8.5"


def test_an_internal_error_says_so_with_its_traceback(tmp_path, capsys, monkeypatch):
    """A bug (here an experiment raising RuntimeError) is not a usage error: exit 70 (EX_SOFTWARE
    of sysexits.h), 'internal error' and the traceback."""
    import experiments.incast as inc

    def broken(*a, **k):
        raise RuntimeError("a bug")
    monkeypatch.setattr(inc, "run", broken)
    rc = main(["run", "incast", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 70 and "Traceback" in err and "internal error: RuntimeError: a bug" in err


def test_a_plugin_raising_systemexit_is_one_line_exit_1(tmp_path, capsys):
    plugin = tmp_path / "exit_cc.py"
    plugin.write_text("from congestion.api import CongestionControl\n"
                      "class Exit(CongestionControl):\n"
                      "    name = 'exitcc'\n"
                      "    def on_start(self, st, ev):\n"
                      "        raise SystemExit(3)\n"
                      "class BadInit(CongestionControl):\n"
                      "    name = 'badinit'\n"
                      "    def __init__(self, **p):\n"
                      "        raise TypeError('boom')\n")
    rc = main(["run", "incast", *TINY, "--out", str(tmp_path / "o"), "--cc", f"{plugin}:Exit"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "SystemExit(3)" in err[0] and f"{plugin}:5 in on_start" in err[0], err
    line = _one_line_error(capsys, main(["run", "incast", *TINY, "--out", str(tmp_path / "o"), "--cc", f"{plugin}:BadInit"]))
    assert "the cc plug-in raised TypeError: boom" in line and f"{plugin}:9 in __init__" in line


def _config(out, variant):
    return _json.loads((out / variant / "config.json").read_text())


def test_false_is_false(tmp_path):
    """--set pfc=False and ipv6=False used to be the string "False" (truthy: the feature on)."""
    out = tmp_path / "o"
    assert main(["run", "incast", *TINY, "--out", str(out), "--set", "pfc=False", "--set", "ipv6=False"]) == 0
    for v in ("dcqcn", "none"):
        c = _config(out, v)
        assert c["pfc"] is False and c["ipv6"] is False


def test_units_convert_exactly(tmp_path):
    """rate 25G = 25e9 bit/s, 500ns = 5e5 ps, 64KiB = 65536 bytes, 2MB = 2e6 bytes, 2ms = 2e9 ps."""
    out = tmp_path / "o"
    assert main(["run", "incast", *TINY, "--out", str(out), "--set", "rate_bps=25G", "--set", "delay_ps=500ns",
                 "--set", "size_bytes=64KiB", "--set", "buffer_bytes=2MB", "--set", "rto_ps=2ms"]) == 0
    for v in ("dcqcn", "none"):
        c = _config(out, v)
        assert c["topology"]["rate_bps"] == 25 * 10**9 and c["topology"]["delay_ps"] == 500 * 10**3
        assert c["workload"]["size_bytes"] == 64 * 1024 and c["buffer_bytes"] == 2 * 10**6
        assert c["rto_ps"] == 2 * 10**9


def test_boolean_words_and_types_of_every_kind():
    from controlplane.run.experiment import parse_sets
    import experiments.incast as inc
    for word, val in [("true", True), ("Yes", True), ("ON", True), ("1", True),
                      ("False", False), ("no", False), ("Off", False), ("0", False)]:
        assert parse_sets([f"pfc={word}"], inc)[1] == {"pfc": val}
    exp, over = parse_sets(["senders=1e1", "ccs=dcqcn,none", "cnp_mode=none", "monitor_ports=all",
                            "adaptive_routing=yes", 'cc_params={"flavour": "paper"}', "ecn.kmin_bytes=100KB"], inc)
    assert exp == {"senders": 10, "ccs": ["dcqcn", "none"]}
    assert over == {"cnp_mode": None, "monitor_ports": "all", "adaptive_routing": True,
                    "cc_params.flavour": "paper", "ecn.kmin_bytes": 100_000}


def test_cc_option_sets_the_experiments_own_cc_parameter():
    """--cc used to set 'ccs' even on experiments whose parameter is 'cc' (silently ignored)."""
    from controlplane.run.experiment import parse_sets
    import experiments.incast as inc
    import experiments.link_failure as lf
    assert parse_sets([], lf, cc="dctcp")[0] == {"cc": "dctcp"}
    assert parse_sets([], inc, cc="dctcp")[0] == {"ccs": ["dctcp"]}


@pytest.mark.parametrize("key", ["cc_params.flavour", "dcqcn.flavour"])
def test_a_cc_parameter_applies_to_the_variants_whose_cc_has_it(tmp_path, key):
    """The README's `softdpu run incast --set cc_params.flavour=paper` stopped at the `none`
    variant (none: unknown parameter(s) ['flavour']); now dcqcn runs the paper flavour, none runs."""
    out = tmp_path / "o"
    assert main(["run", "incast", *TINY, "--out", str(out), "--set", f"{key}=paper"]) == 0
    assert _config(out, "dcqcn")["resolved"]["cc_params"]["flavour"] == "paper"
    assert _config(out, "none")["cc_params"] == {}
    assert (out / "none" / "counters.json").exists()
    assert _json.loads((out / "dcqcn" / "counters.json").read_text())["msgs_total"] == 2


def test_a_partial_ecn_section_merges_with_the_ccs_defaults(tmp_path):
    """--set ecn.kmin_bytes=100KB keeps the CC's kmax_bytes, pmax and base rate
    (congestion/dcqcn.py ECN_DEFAULTS, NVIDIA flavour); the `none` variant, whose CC has no ECN
    defaults to merge with, keeps marking off instead of stopping the run (ecn.kmax_bytes is missing)."""
    from congestion.dcqcn import ECN_DEFAULTS
    out = tmp_path / "o"
    assert main(["run", "incast", *TINY, "--out", str(out), "--set", "ecn.kmin_bytes=100KB"]) == 0
    assert _config(out, "none")["resolved"]["ecn"] is None
    ecn = _config(out, "dcqcn")["resolved"]["ecn"]
    d = ECN_DEFAULTS["nvidia"]
    assert ecn == {"kmin_bytes": 100_000, "kmax_bytes": d["kmax_bytes"], "pmax": d["pmax"],
                   "base_rate_bps": d["base_rate_bps"]}


def test_version(capsys):
    from importlib.metadata import version
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"softdpu {version('softdpu')}"


def test_run_experiment_help_lists_every_parameter_with_type_default_and_meaning(capsys):
    """Every parameter of every experiment has a row ending in its model's description (the
    per-parameter checks are in tests/test_experiment_params.py); incast's rows as typed."""
    from controlplane.run.cli import _experiments
    for name in _experiments():
        import importlib
        mod = importlib.import_module(f"experiments.{name}")
        assert main(["run", name, "--help"]) == 0
        out = capsys.readouterr().out
        rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
        for p, field in mod.Params.model_fields.items():
            assert f"\n  {p} " in out, (name, p)
            assert field.description and rows[p].endswith(field.description), (name, p)
    main(["run", "incast", "--help"])
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "integer in [1, 1048575]" in rows["senders"] and "default 16 " in rows["senders"] and "receiver" in rows["senders"]
    assert " bit/s " in rows["rate_bps"] and "default 100Gbps" in rows["rate_bps"]
    assert "default 16MB" in rows["size_bytes"] and "default 1us" in rows["delay_ps"]
    assert "default dcqcn,none" in rows["ccs"]


def test_list_json_parses(capsys):
    import experiments.incast as inc
    assert main(["list", "--json"]) == 0
    d = _json.loads(capsys.readouterr().out)
    assert d["experiments"]["incast"]["params"] == _json.loads(_json.dumps(inc.PARAMS))
    assert d["ccs"]["dcqcn"]["params"]["flavour"] == "nvidia" and d["ccs"]["none"]["params"] == {}
    assert "permutation-128" in d["benchmarks"]


def test_python_m_experiment_is_the_same_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "experiments.incast", "--set", "senders=8.5"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "softdpu: senders must be an integer (a whole number), got 8.5"


# the property: whatever --set and --pcap-filter text, main() returns 0, 1 or 2 and never raises
_KEYS = ["senders", "rate_bps", "delay_ps", "size_bytes", "ccs", "pfc", "ipv6", "buffer_bytes", "ecn",
         "ecn.kmin_bytes", "ecn.pmax", "cc_params", "cc_params.flavour", "cc_params.g", "dcqcn.flavour", "dcqcn.g",
         "none.x", "mtu_payload", "ack_interval", "dpu", "monitor_ports", "adaptive_routing", "link_loss",
         "cnp_mode", "cnp_interval_ps", "isn", "dscp_data", "transport", "paths", "topology.num_hosts",
         "sender", "ecn.bogus", "cc_params.bogus", "cc", ""]
_TOKENS = ["0", "1", "2", "-1", "8.5", "1e0", "2.0", "100G", "25Gbps", "16KB", "1KiB", "1us", "500ns", "1.5ps",
           "true", "False", "yes", "off", "none", "null", "nan", "inf", "-inf", "abc", "", "[]", "[1,2]",
           '["dcqcn"]', '["none","dcqcn"]', "{}", '{"a":1}', '{"flavour":"paper"}', "{ 2: 3", "dcqcn", "none",
           "paper", "nvidia", "1,2", "[nan]", "0.5", "all", "switch", "ooo", "spray_rr", "interval"]
_PCAP = ["points", "dir", "qp", "from_us", "to_us", "max", "snaplen", "split", "colour", ""]
_PCAP_VALUES = _TOKENS[:20] + ["h0", "h1,h2", "hosts", "switches", "sw0->h0", "99", "tx", "rx", "both", "65536",
                               "300000"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sets=st.lists(st.tuples(st.sampled_from(_KEYS), st.sampled_from(_TOKENS)), max_size=3),
       filt=st.none() | st.lists(st.tuples(st.sampled_from(_PCAP), st.sampled_from(_PCAP_VALUES)), max_size=3))
def test_property_main_returns_0_1_or_2_and_never_raises(sets, filt):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        argv = ["run", "incast", *TINY, "--out", f"{d}/o"]
        for k, v in sets:
            argv += ["--set", f"{k}={v}"]
        if filt is not None:
            argv += ["--pcap", f"{d}/c.pcap", "--pcap-filter", " ".join(f"{k}={v}" for k, v in filt)]
        import contextlib
        import io
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        assert rc in (0, 1, 2), (argv, err.getvalue())
        if rc == 2:                                   # a usage error: one line, no traceback
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in lines[0], (argv, lines)


def test_a_module_spec_cc_gets_its_own_results_folder(tmp_path):
    """--cc package.module:Class writes results/<experiment>/<module's last name>/ (registry.label),
    not a folder named after the package."""
    out = tmp_path / "out"
    assert main(["run", "incast", "--cc", "experiments.plugins.ecn_aimd:EcnAimd", "--set", "senders=2",
                 "--set", "size_bytes=100000", "--out", str(out), "--no-plots"]) == 0
    assert (out / "ecn_aimd" / "counters.json").exists() and not (out / "experiments.plugins").exists()
