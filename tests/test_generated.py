"""Properties over generated inputs (issue #12, tests/generators.py): scenario dicts drawn from
the scenario's JSON Schema and mutated, --pcap-filter strings, and whole command lines. Every
case ends either in a clean rejection naming a field (exit code 2 and one line for the CLI, no
traceback) or in a run that ends within its budget with conservation holding. A few dozen cases
per property, derandomized (the same cases on every run); ``python -m tests.campaign`` runs the
same generators for minutes with a hard timeout per case."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import generators as G

FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@FAST
@given(G.valid_scenarios())
def test_schema_valid_scenarios_run_within_budget_or_are_refused_by_field(d):
    """What JSON Schema allows, the model either runs (conserving, within max_events) or refuses
    for a reason the schema cannot express (a receiver beyond the fabric ...), naming the field."""
    o = G.check_scenario(d)
    assert o.ok, f"{o.detail}\nscenario: {d!r}"


@settings(FAST, max_examples=60)
@given(G.mutated_scenarios())
def test_mutated_scenarios_are_refused_by_field_or_run_within_budget(case):
    d, kind, path = case
    o = G.check_scenario(d, path)
    assert o.ok, f"{o.detail}\nmutation {kind} at {path}; scenario: {d!r}"


@FAST
@given(G.pcap_filters())
def test_pcap_filters_are_refused_naming_the_key_or_capture(tmp_path_factory, text):
    o = G.check_pcap_filter(text, tmp_path_factory.mktemp("pcap"))
    assert o.ok, f"{o.detail}\n--pcap-filter {text!r}"


@pytest.mark.plots          # some generated command lines draw figures (softdpu plot, runs with plots)
@settings(FAST, max_examples=25)
@given(st.data())
def test_command_lines_exit_0_1_or_2_with_one_line_and_no_traceback(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("cli")
    argv = data.draw(G.command_lines(tmp), label="argv")
    o = G.check_command_line(argv)
    assert o.ok, f"{o.detail}\nsoftdpu {' '.join(argv)}"


# ---------------------------------------------------------------------------------------------
# The generators themselves: what they produce is what the properties claim to cover.

def test_the_generators_draw_from_the_published_schema():
    """small_schema() is json_schema() (what `softdpu schema` prints) with only the sizes capped:
    the same fields, each capped size a subset of the schema's own range."""
    from controlplane.config.schema import json_schema
    full, small = json_schema(), json.loads(G.small_schema())
    assert set(small["properties"]) == set(full["properties"])
    assert set(small["$defs"]) == set(full["$defs"])
    for name, cap in G.SMALL.items():
        if cap.get("type") == "integer":
            for where in [full["properties"]] + [d.get("properties", {}) for d in full["$defs"].values()]:
                if name in where and "minimum" in json.dumps(where[name]):
                    lo = min(b["minimum"] for b in _branches(where[name]) if "minimum" in b)
                    assert cap["minimum"] >= lo, name


def _branches(node):
    return node.get("anyOf", [node])


def test_mutations_cover_every_kind_and_leave_the_budget():
    """Across 150 derandomized draws every mutation kind occurs, and no mutation touches the run
    budget (max_events, max_wall_s, max_duration_ps stay at their capped values)."""
    seen = set()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(G.mutated_scenarios())
    def draw(case):
        d, kind, _ = case
        seen.add(kind)
        assert 1 <= d["max_events"] <= G.MAX_EVENTS and 0 < d["max_wall_s"] <= G.MAX_WALL_S
        assert 1 <= d["max_duration_ps"] <= G.MAX_DURATION_PS
    draw()
    assert set(G.MUTATIONS) - {"none"} <= seen | {"huge_size"}, seen
    assert {"wrong_type", "nonfinite", "delete_key", "unknown_key", "unit_string"} <= seen


@pytest.mark.parametrize("message, names, field", [
    ("workload.senders must be an integer, got 'x'", {"senders", "workload"}, "workload.senders"),
    ("failures[1].down_ps must be an integer", {"down_ps"}, "failures[1].down_ps"),
    ("--pcap-filter snaplen must be <= 262144 bytes, got 262145", {"--pcap-filter"}, "--pcap-filter snaplen"),
    ("the run went wrong", {"senders"}, None),
])
def test_named_field_finds_the_path_the_message_names(message, names, field):
    assert G.named_field(message, names) == field


def test_the_classifier_flags_internal_errors_and_unnamed_rejections(monkeypatch):
    """What the properties must never see is 'internal': an exception from inside the code (a
    KeyError), a ValueError naming no field, a CLI that returns 70 or prints a traceback."""
    from controlplane.run import cli
    from controlplane.run.scenario import Scenario
    assert G.check_scenario({"topology": {"num_hosts": 4}}).kind == "reject"
    monkeypatch.setattr(Scenario, "from_dict", classmethod(lambda cls, d: {}["src"]))
    o = G.check_scenario({"seed": 1})
    assert o.kind == "internal" and o.detail.startswith("KeyError at test_generated.py"), o
    monkeypatch.setattr(Scenario, "from_dict", classmethod(lambda cls, d: (_ for _ in ()).throw(ValueError("bad"))))
    assert G.check_scenario({"seed": 1}).kind == "internal"
    monkeypatch.setattr(cli, "cmd_schema", lambda a: 1 / 0)
    o = G.check_command_line(["schema"])
    assert o.kind == "internal" and "ZeroDivisionError" in o.detail, o


# ---------------------------------------------------------------------------------------------
# What the generated inputs found, one test each (each failed before its fix).

@pytest.mark.parametrize("ecn, message", [
    # found by the schema-valid property: a partial ecn merged with the CC's default kmin of
    # 400 KB; the data plane refused it as "port 1: ECN kmax (0) must be >= kmin (400000)"
    # (the merged wording is controlplane/fabric/ecn.py's: the values in brackets after each name)
    ({"kmax_bytes": 0}, r"^ecn\.kmax_bytes \(0\) must be >= ecn\.kmin_bytes \(400000\)"),
    ({"kmin_bytes": 5, "kmax_bytes": 4, "pmax": 0.1}, r"^ecn\.kmax_bytes \(4\) must be >= ecn\.kmin_bytes \(5\)$"),
])
def test_ecn_thresholds_out_of_order_are_refused_naming_the_fields(ecn, message):
    from controlplane.run.scenario import Scenario
    with pytest.raises(ValueError, match=message):
        Scenario(ecn=ecn, max_events=1000).build()


@pytest.mark.parametrize("name, sets, csv_name", [
    # found by the command-line property: np.percentile of no completed flow raised IndexError
    # (exit 70 with a traceback) when max_duration_ps cut every flow short
    ("link_failure", ["size_bytes=2000000", "fail_us=50", "max_duration_ps=20us"], "link_failure.csv"),
    ("spraying_vs_ecmp", ["k=4", "size_bytes=1000000", "max_duration_ps=5us"], "spraying_vs_ecmp_summary.csv"),
])
def test_an_experiment_whose_flows_all_miss_the_end_reports_nan_not_a_traceback(tmp_path, capsys, name, sets,
                                                                                 csv_name):
    """20 us (5 us) is shorter than any flow of 2 MB (1 MB) at 100 Gb/s (160 us): no flow
    completes, so its FCT statistics are NaN and the experiment ends normally (exit 0)."""
    import csv
    from controlplane.run.cli import main
    argv = ["run", name, "--no-plots", "--out", str(tmp_path)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err[-2000:]
    rows = list(csv.DictReader(open(tmp_path / csv_name)))
    assert rows and all(r["completed"] == "0" and math.isnan(float(r["p99_fct_us"])) for r in rows)


@pytest.mark.parametrize("path, message", [
    # found by the campaign: a pcap workload whose path names no file raised FileNotFoundError
    # (IsADirectoryError for a folder) from pathlib, naming no field
    ("nan", r"workload\.path must name a pcap file, got 'nan' \(no such file\)"),
    ("/", r"workload\.path must name a pcap file, got '/' \(a directory\)"),
])
def test_a_pcap_workload_without_a_file_is_refused_naming_workload_path(path, message):
    from controlplane.run.scenario import Scenario
    with pytest.raises(ValueError, match=message):
        Scenario.from_dict({"workload": {"kind": "pcap", "path": path}, "max_events": 1000}).build()


def test_mtu_payload_out_of_the_data_planes_range_is_refused_by_the_schema():
    """Found by the campaign: mtu_payload = 10^12 passed the model (lower bound 1 only) and
    reached cffi as "OverflowError: integer 1000000000000 does not fit '32-bit unsigned int'"
    (dataplane/sim.py wire_bytes, from max_base_rtt_ps); 1..63 reached the data plane's own check.
    The schema now has the data plane's bounds (native/sim.c: 64..9000 bytes)."""
    from controlplane.config.schema import json_schema
    from controlplane.run.scenario import Scenario
    for bad in (10**12, 9001, 63, 1):
        with pytest.raises(ValueError, match=rf"^mtu_payload must be in \[64, 9000\], got {bad}$"):
            Scenario.from_dict({"cc": "nscc", "mtu_payload": bad})
    branch = json_schema()["properties"]["mtu_payload"]["anyOf"][0]
    assert (branch["minimum"], branch["maximum"]) == (64, 9000)
    assert Scenario(mtu_payload="9000").mtu_payload == 9000


def test_pcap_filter_max_beyond_the_data_planes_counter_is_refused():
    """Found by the campaign: --pcap-filter max=18446744073709551616 (2^64) passed the parser and
    raised OverflowError in Simulator.capture_open ("int too big to convert")."""
    from controlplane.results.capture import CaptureSpec
    with pytest.raises(ValueError, match=r"^--pcap-filter max must be <= 18446744073709551615, "
                                         r"got 18446744073709551616$"):
        CaptureSpec.parse("c.pcap", "max=18446744073709551616")
    assert CaptureSpec.parse("c.pcap", f"max={2**63 - 1}").max_packets == 2**63 - 1


def test_a_rail_fabric_count_beyond_any_fabric_is_refused_before_rates_are_computed(tmp_path, capsys):
    """Found by the campaign: `softdpu run placement --set servers_per_leaf=2e400` (an exact
    integer, 2 x 10^400) reached rails.py's default leaf rate, host_rate x servers_per_leaf / ...,
    as a float: OverflowError, exit 70 with a traceback. Now one line, exit 2."""
    from controlplane.run.cli import main
    rc = main(["run", "placement", "--set", "servers_per_leaf=2e400", "--no-plots", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    # now refused by placement's Params model first (2e400 overflows a float: infinity)
    assert err[0] == "softdpu: servers_per_leaf must be an integer, got inf", err


@pytest.mark.parametrize("key", ["background_gpus", "job_gpus"])
def test_placement_names_the_gpu_count_parameter_not_the_collectives_ranks(tmp_path, capsys, key):
    """Found by the campaign: `--set background_gpus=1` stopped with "ranks must list at least 2
    members, got 1", naming the collective's internal argument instead of the parameter typed."""
    from controlplane.run.cli import main
    rc = main(["run", "placement", "--set", f"{key}=1", "--no-plots", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"softdpu: {key} must be >= 2 (a job's all-reduce needs at least 2 GPUs), got 1"], err


@pytest.mark.parametrize("kw, message", [
    # found by the campaign: no upper bound, so the value reached cffi or the data plane's own
    # check, which named an internal argument (trace_capacity) or nothing (OverflowError)
    (dict(buffer_bytes=2**70), r"^buffer_bytes must be a positive integer \(>= 1\) and <= 1000000000000000, got 1180591620717411303424$"),
    (dict(ecn={"kmin_bytes": 1, "kmax_bytes": 7778085416857002278, "pmax": 0.5}),
     r"^ecn\.kmax_bytes must be in \[0, 1000000000000000\], got 7778085416857002278$"),
    (dict(pfc=True, pfc_params={"buffer_bytes": 2**70}), r"^pfc_params\.buffer_bytes must be a positive integer \(>= 1\) and <= 1000000000000000"),
    (dict(trace=2**40), r"^trace must be in \[0, 4294967295\], got 1099511627776$"),
    (dict(ack_interval=2**40), r"^ack_interval must be a positive integer \(>= 1\) and <= 4294967295, got 1099511627776$"),
    (dict(pkt_pool=2**40), r"^pkt_pool must be a positive integer \(>= 1\) and <= 4294967295, got 1099511627776$"),
])
def test_sizes_and_32_bit_counts_have_upper_bounds_named_by_field(kw, message):
    from controlplane.run.scenario import Scenario
    with pytest.raises(ValueError, match=message):
        Scenario(**kw).build()


@pytest.mark.plots          # softdpu plot imports matplotlib (its C++ trips ASan: not in the sanitizer run)
@pytest.mark.parametrize("text, message", [
    # found by the campaign: "softdpu: Expecting property name enclosed in double quotes: line 1
    # column 2 (char 1)", naming neither the folder nor the file
    ("{", r"config\.json: not a results file \(invalid JSON: Expecting property name"),
    ("[]", r"config\.json: not a results file \(a JSON object expected, got list\)"),
])
def test_plot_of_a_folder_with_a_broken_config_names_the_file(tmp_path, capsys, text, message):
    import re
    from controlplane.run.cli import main
    (tmp_path / "config.json").write_text(text)
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"softdpu: {tmp_path}/config.json") and re.search(message, err[0]), err


def test_pfc_headroom_rtts_is_bounded_by_the_schema():
    """Found by the final campaign: pfc_params.headroom_rtts = 1.8e308 (finite, so accepted)
    made the headroom in bytes infinite: "OverflowError: cannot convert float infinity to
    integer" (scenario.py, PFC set-up). Now at most 1000 round trips, refused by its path."""
    from controlplane.run.scenario import Scenario
    with pytest.raises(ValueError, match=r"^pfc_params\.headroom_rtts must be .*1000.*got 1\.7976931348623155e\+308"):
        Scenario(pfc=True, pfc_params={"headroom_rtts": 1.7976931348623155e+308}).build()
    Scenario(pfc=True, pfc_params={"headroom_rtts": 10}).build()
    # the bound itself passes the schema; 1000 RTTs of 1 us at 100 Gb/s outgrow the default buffer
    with pytest.raises(ValueError, match=r"^pfc: switch node \d+: reserve x \d+ ports \+ headroom"):
        Scenario(pfc=True, pfc_params={"headroom_rtts": 1000}).build()


@pytest.mark.parametrize("sets, message", [
    # found by the final campaign: hosts = 2e400 (an exact integer) made the experiment generate
    # messages host by host until MemoryError (exit 70, a traceback, 27 s under a 3 GiB limit)
    # (now refused by the experiment's Params model first: 2e400 overflows a float)
    (["hosts=2e400"], r"^softdpu: hosts must be an integer, got inf$"),
    # 4 hosts x 6.2 ms x 8 Gb/s in 1-byte messages (one per ns per host): 24.8 M messages, above 4 M
    (["hosts=4", "loads_gbps=[8]", "warmup_us=200", "window_us=6000", "msg_bytes=1"],
     r"^softdpu: hosts x \(warmup_us \+ window_us\) x loads_gbps / msg_bytes gives about 24,800,0\d\d messages "
     r"at 8 Gb/s, more than a workload takes \(4,000,000\)"),
])
def test_virtualization_tax_refuses_a_workload_too_large_before_generating_it(tmp_path, capsys, sets, message):
    import re
    from controlplane.run.cli import main
    argv = ["run", "virtualization_tax", "--no-plots", "--out", str(tmp_path)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err


def test_qp_scale_refuses_more_messages_than_a_workload_takes_before_making_them(tmp_path, capsys):
    """Found by the last campaign: --set min_msgs=2e400 built the message list until MemoryError
    (exit 70 with a traceback)."""
    from controlplane.run.cli import main
    assert main(["run", "qp_scale", "--set", "qps=[16]", "--set", "caches=[32]", "--set", "min_msgs=2e400",
                 "--no-plots", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # (now refused by qp_scale's Params model first: 2e400 overflows a float)
    assert err == ["softdpu: min_msgs must be an integer, got inf"], err


def test_placement_names_job_gpus_beyond_the_fabric(tmp_path, capsys):
    """Found by the last campaign: --set job_gpus=2e400 was refused as "n_gpus: a job of 2000...0
    GPUs ..." (401 digits), naming the placement function's argument. Now the experiment's Params
    model refuses it first (2e400 is a float overflow: infinity), by the same name."""
    from controlplane.run.cli import main
    assert main(["run", "placement", "--set", "job_gpus=2e400", "--no-plots", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["softdpu: job_gpus must be an integer, got inf"], err


def test_placement_names_background_jobs_that_do_not_fit(tmp_path, capsys):
    """Found by the campaign run on the merged code: --set background_jobs=1e3 was refused as
    "n_gpus: a job of 8 GPUs does not fit", naming the placement function's argument. 1000 jobs
    of 8 GPUs and the 16-GPU job need 8,016 GPUs; the default fabric has 16 servers x 4 = 64."""
    from controlplane.run.cli import main
    assert main(["run", "placement", "--set", "background_jobs=1e3", "--no-plots", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["softdpu: background_jobs: 1000 jobs of background_gpus = 8 and the job_gpus = 16 job need "
                   "8,016 GPUs, the fabric has 64"], err


def test_ecn_thresholds_scaled_beyond_the_data_plane_are_refused_naming_the_fields():
    """Found by the campaign on the merged code: kmax_bytes = 1.7e14 given for a 9,417 bit/s base
    rate scales to 1.8e21 bytes at 100 Gb/s (x 1.06e7), which raised OverflowError ("int too big
    to convert") in the data plane's setter. Now refused naming ecn.kmax_bytes and ecn.base_rate_bps."""
    from controlplane.run.scenario import Scenario
    sc = Scenario(ecn={"scale_with_rate": True, "kmax_bytes": 168386379975289, "pmax": 0.4, "base_rate_bps": 9417},
                  max_events=100_000)
    with pytest.raises(ValueError, match=r"^ecn\.kmax_bytes = 168386379975289 scaled to a 100 Gb/s port .* above "
                                         r"1e\+15: lower ecn\.kmax_bytes or raise ecn\.base_rate_bps"):
        sc.run()


def test_a_unit_value_with_line_breaks_is_quoted_in_one_line():
    """Found by the campaign: a size written with line breaks inside ('-.1\\n b') was echoed raw,
    so the one-line rejection spanned three lines. The value is now quoted (repr)."""
    from controlplane.run.scenario import Scenario
    with pytest.raises(ValueError) as e:
        Scenario(pfc=True, pfc_params={"buffer_bytes": "-.1\n\r b"})
    assert "\n" not in str(e.value) and str(e.value).startswith("pfc_params.buffer_bytes must be"), str(e.value)


def test_the_memory_limit_follows_an_address_space_limit():
    """Found by the campaign (its workers run under a 3 GiB address-space limit): routing asked
    numpy for 3.8 GiB because the limit was half the machine's memory (11.8 GiB), and numpy's
    MemoryError became an internal error. With ulimit -v, half of it is the limit."""
    import resource
    import subprocess
    import sys
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
            "from controlplane.fabric.topology import memory_limit_bytes; print(memory_limit_bytes())")
    import os
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}    # ASan's shadow memory needs no ulimit -v
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert int(out) == 2 << 30
