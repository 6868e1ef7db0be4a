"""Each configuration section's model lives beside its mechanism and is the one place its defaults
are written (issue #12, "one declared schema"): the models give the values the retired
``*_DEFAULTS`` dicts gave, refuse bad values naming the full path as the user wrote it, suggest
close names for unknown keys, and the data plane keeps no default of its own."""
import contextlib
import io
import json
import math

import pytest

from controlplane.config import models
from controlplane.dpu import vswitch, vtax
from controlplane.results.capture import CaptureFilter, CaptureSpec
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, KB, ms, us
from controlplane.config.values import UsageError
from dataplane._native import ffi, lib
from dataplane.sim import PATH_POLICIES, Simulator

STAR3 = {"topology": "single_switch", "num_hosts": 3, "rate_bps": Gbps(100), "delay_ps": us(1)}
TWO = {"kind": "incast", "senders": 2, "size_bytes": KB(16)}

# The dicts this change retired, verbatim as they stood in the modules named (commit 504baf4):
OLD = {
    # controlplane/run/scenario.py QPC_DEFAULTS
    "qpc": {"entries": 4096, "fetch_latency_ps": 1_000_000, "max_outstanding": 16, "policy": "lru",
            "hosts": "all", "trace": 0},
    # controlplane/dpu/vswitch.py VSWITCH_DEFAULTS
    "dpu.vswitch": {"max_flows": 200_000, "emc_entries": 8192, "emc_insert_inv_prob": 100, "upcall_queue": 1024,
                    "max_meters": 64, "rerank_interval_ps": 10**12},
    # controlplane/dpu/vswitch.py SLOW_PATH_DEFAULTS
    "dpu.slow_path": {"handlers": 5, "install_latency_ps": us(10), "batch_upcalls": True, "flow_limit": 10_000,
                      "max_flow_limit": 200_000, "max_idle_ps": 10**13, "revalidate_interval_ps": ms(500),
                      "revalidate_cycles_per_flow": 2_000},
    # controlplane/dpu/vswitch.py POLICY_DEFAULTS
    "dpu.policy": {"overlay": True, "per_connection": False, "proactive": False, "meter_bps": None,
                   "meter_burst_bytes": 65536, "dscp": None},
    # controlplane/fabric/failures.py FAILURE_DEFAULTS
    "failure_params": {"detect_ps": us(100), "reconverge_ps": ms(1)},
    # controlplane/dpu/vtax.py TAX_DEFAULTS (STAGE_CYCLES and the clocks and cost)
    "dpu.tax": {"parse": 113.7, "lookup": 38.8, "probe": 38.8, "action": 58.3, "encap": 34.3, "copy_per_byte": 0.1,
                "upcall": 20_000.0, "host_core_hz": 2.5e9, "dpu_core_hz": 2.0e9, "usd_per_core_year": 900.0},
    # dataplane/sim.py TRANSPORT_DEFAULTS
    "transport_params": {"reorder_window": 2048, "rto_low_ps": 100_000_000, "rto_low_pkts": 3, "bdp_cap": 0},
    # dataplane/sim.py PATH_PARAM_DEFAULTS
    "path_params": {"flowlet_gap_ps": 100_000_000, "plb_cong_thresh": 0.5, "plb_rehash_rounds": 12,
                    "plb_suspend_ps": 60 * 10**12},
    # controlplane/run/scenario.py _install_pfc's dict (buffer_bytes: 32 MB per 100 Gb/s of host rate)
    "pfc_params": {"buffer_bytes": None, "reserve_bytes": 4096, "resume_offset_bytes": 3072, "alpha_shift": 3,
                   "headroom_rtts": 3.0, "pause_quanta": 65535},
}


@pytest.mark.parametrize("path", sorted(OLD))
def test_each_models_defaults_are_the_retired_dicts_values(path):
    """Same keys, same values, same Python types (3.0 stays a float, 4096 an int): no default moved,
    so every golden scenario stays bit-identical."""
    got = models.defaults(path)
    assert got == OLD[path]
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in OLD[path].items()}


def test_the_pfc_buffer_default_scales_with_the_host_rate():
    """32 MB per 100 Gb/s of host link rate (the HPCC repo's run.py), as _install_pfc computed it."""
    from controlplane.fabric import pfc
    assert pfc.resolve(None, Gbps(100))["buffer_bytes"] == 32_000_000
    assert pfc.resolve(None, Gbps(25))["buffer_bytes"] == 8_000_000
    assert pfc.resolve({"buffer_bytes": "4MB"}, Gbps(100))["buffer_bytes"] == 4_000_000


def test_every_field_of_every_section_has_a_description():
    for path, model in models.SECTIONS.items():
        props = model.model_json_schema()["properties"]
        for name, prop in props.items():
            desc = prop.get("description") or next((a.get("description") for a in prop.get("anyOf", [])
                                                    if a.get("description")), None)
            assert desc, f"{path}.{name} has no description"


# ------------------------------------------------------------------ refusals naming the full path
@pytest.mark.parametrize("dpu, message", [
    # dpu.vswitch: the data plane's own ranges (native/vswitch.c sd_vs_enable), now refused at construction
    ({"vswitch": {"emc_entries": 1000}}, r"^dpu\.vswitch\.emc_entries must be 0 \(no EMC\) or a power of 2 <= 2\^20, got 1000$"),
    ({"vswitch": {"max_flows": 2**24 + 1}}, r"^dpu\.vswitch\.max_flows must be a positive integer \(>= 1\) and <= 16777216, got 16777217$"),
    ({"vswitch": {"emc_insert_inv_prob": 0}}, r"^dpu\.vswitch\.emc_insert_inv_prob must be a positive integer"),
    ({"vswitch": {"upcall_queue": "lots"}}, r"^dpu\.vswitch\.upcall_queue must be an integer, got 'lots'$"),
    ({"vswitch": {"rerank_interval_ps": "1ns"}}, r"^dpu\.vswitch\.rerank_interval_ps must be in \[1000000, .*got '1ns' \(1000 ps\)$"),
    ({"vswitch": {"max_flow": 10}}, r"^dpu\.vswitch: unknown key 'max_flow' \(dpu\.vswitch\.max_flow\); closest: max_flows"),
    # dpu.slow_path
    ({"slow_path": {"handlers": 2.5}}, r"^dpu\.slow_path\.handlers must be an integer \(a whole number\), got 2\.5$"),
    ({"slow_path": {"handlers": True}}, r"^dpu\.slow_path\.handlers must be an integer, got True$"),
    ({"slow_path": {"install_latency_ps": "1.5ps"}}, r"^dpu\.slow_path\.install_latency_ps must be a time in ps"),
    ({"slow_path": {"revalidate_interval_ps": 1}}, r"^dpu\.slow_path\.revalidate_interval_ps must be in \[1000000,"),
    ({"slow_path": {"batch_upcalls": "yes"}}, r"^dpu\.slow_path\.batch_upcalls must be a bool \(true or false\), got 'yes'$"),
    ({"slow_path": {"handler": 3}}, r"^dpu\.slow_path: unknown key 'handler' \(dpu\.slow_path\.handler\); closest: handlers"),
    # dpu.tax
    ({"tax": {"host_core_hz": 0}}, r"^dpu\.tax\.host_core_hz must be > 0, got 0$"),
    ({"tax": {"upcall": float("nan")}}, r"^dpu\.tax\.upcall must be a finite number, got nan$"),
    ({"tax": {"parse": "fast"}}, r"^dpu\.tax\.parse must be a number, got 'fast'$"),
    ({"tax": {"host_cor_hz": 1e9}}, r"^dpu\.tax: unknown key 'host_cor_hz' \(dpu\.tax\.host_cor_hz\); closest: host_core_hz"),
    # dpu itself
    ({"tenants": 2**24}, r"^dpu\.tenants must be a positive integer \(>= 1\) and <= 16777215, got 16777216$"),
    ({"ofload": "hw"}, r"^dpu: unknown key 'ofload' \(dpu\.ofload\); closest: offload"),
])
def test_dpu_sections_refuse_bad_values_naming_the_full_path(dpu, message):
    """At construction (the scenario schema) and again in vswitch.check_spec, which the build calls
    with the spec as written: both name the field by the path the user wrote."""
    with pytest.raises(ValueError, match=message):
        Scenario(topology=STAR3, workload=TWO, dpu=dpu)
    with pytest.raises(ValueError, match=message):
        vswitch.check_spec(dpu, 3)


def test_dpu_sections_take_units_and_complete_with_defaults():
    spec = vswitch.check_spec({"vswitch": {"rerank_interval_ps": "2s"},
                               "slow_path": {"install_latency_ps": "20us", "handlers": 8.0}}, 4)
    assert spec["vswitch"] == {**OLD["dpu.vswitch"], "rerank_interval_ps": 2 * 10**12}
    assert spec["slow_path"] == {**OLD["dpu.slow_path"], "install_latency_ps": us(20), "handlers": 8}
    assert spec["policy"] == OLD["dpu.policy"]
    assert vtax.params({"dpu_core_hz": 3e9}) == {**OLD["dpu.tax"], "dpu_core_hz": 3e9}
    with pytest.raises(ValueError, match=r"^dpu\.tax: unknown key 'hots_core_hz'.*closest: host_core_hz"):
        vtax.params({"hots_core_hz": 1e9})


@pytest.mark.parametrize("extra, message", [
    # these reached the data plane before and failed at build with its wording (native/pfc.c,
    # native/sim.c): now the model carries the same ranges
    ({"pfc": True, "pfc_params": {"alpha_shift": 17}}, r"^pfc_params\.alpha_shift must be in \[0, 16\], got 17$"),
    ({"pfc": True, "pfc_params": {"pause_quanta": 0}}, r"^pfc_params\.pause_quanta must be a positive integer"),
    ({"transport": "sr", "transport_params": {"reorder_window": 100}},
     r"^transport_params\.reorder_window must be a power of 2 in \[64, 32768\] \(packets\), got 100$"),
    ({"qpc": {"policy": "clock"}}, r"^qpc\.policy must be one of 'lru', 'fifo', 'random', got 'clock'"),
    ({"failure_params": {"detect": 5}}, r"^failure_params: unknown key 'detect'.*closest: detect_ps"),
])
def test_other_sections_refuse_at_construction(extra, message):
    with pytest.raises(ValueError, match=message):
        Scenario(topology=STAR3, workload=TWO, **extra)


# ------------------------------------------------------------------ the capture filter
@pytest.mark.parametrize("text, message", [
    ("qp=-1", "--pcap-filter qp must be >= 0, got -1"),
    ("qp=4294967295", "--pcap-filter qp must be <= 4294967294, got 4294967295"),
    ("qp=1.5", "--pcap-filter qp must be an integer, got 1.5"),
    ("snaplen=13", "--pcap-filter snaplen must be >= 14 bytes (an Ethernet header), got 13"),
    ("snaplen=262145", "--pcap-filter snaplen must be <= 262144 bytes, got 262145"),
    ("snaplen=abc", "--pcap-filter snaplen must be an integer, got 'abc'"),
    ("max=-1", "--pcap-filter max must be >= 0, got -1"),
    ("from_us=inf", "--pcap-filter from_us: expected a finite time, got 'inf'"),
    ("to_us=-1", "--pcap-filter to_us must be >= 0 and < 2**63 ps, got -1"),
    ("from_us=1.5ps", "--pcap-filter from_us: '1.5ps' is not a whole number of ps"),
    ("from_us=10 to_us=5", "--pcap-filter: from_us (10) must be < to_us (5)"),
    ("dir=up", "--pcap-filter dir must be tx, rx or both, got 'up'"),
    ("split=maybe", "--pcap-filter split must be a boolean"),
    ("points=h0,,h1", "--pcap-filter points: empty point"),
    ("snapln=64", "--pcap-filter: unknown key 'snapln' (did you mean snaplen?)"),
    ("form_us=3", "--pcap-filter: unknown key 'form_us' (did you mean from_us?)"),
])
def test_capture_filter_refuses_naming_the_key_as_typed(text, message):
    with pytest.raises(UsageError) as e:
        CaptureSpec.parse("c.pcap", text)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_capture_filter_parses_into_the_model():
    spec = CaptureSpec.parse("c.pcap", "points=h0,sw0->h1 dir=tx qp=2 from_us=1.5 to_us=2ms max=10 snaplen=64 split=on")
    assert (spec.points, spec.direction, spec.qp, spec.from_ps, spec.to_ps, spec.max_packets, spec.snaplen,
            spec.split) == (["h0", "sw0->h1"], "tx", 2, 1_500_000, 2 * 10**9, 10, 64, True)
    # no filter: the model's defaults (every DPU port, 65535 bytes, the whole run)
    d = CaptureSpec.parse("c.pcap", None)
    f = CaptureFilter()
    assert (d.points, d.direction, d.qp, d.from_ps, d.to_ps, d.max_packets, d.snaplen, d.split) == \
        (f.points, f.direction, f.qp, f.from_ps, f.to_ps, f.max_packets, f.snaplen, f.split) == \
        (["hosts"], None, None, 0, 2**63 - 1, 0, 65535, False)
    assert CaptureFilter.keys() == CaptureSpec.FILTER_KEYS
    # the model's bounds are the data plane's (native/wire.c sd_capture_open: snaplen in [14, 262144])
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2)
    for snaplen, ok in ((13, False), (14, True), (262144, True), (262145, False)):
        rc = lib.sd_capture_open(sim._sim, b"/dev/null", snaplen, 0, 1, 0, 0xFFFFFFFF)
        assert (rc >= 0) == ok
        if rc >= 0:
            lib.sd_capture_close(sim._sim, rc)
        with (contextlib.nullcontext() if ok else pytest.raises(UsageError)):
            CaptureSpec.parse("c.pcap", f"snaplen={snaplen}")


# ------------------------------------------------------------------ softdpu schema
def test_softdpu_schema_declares_the_dpu_sub_sections():
    from controlplane.run.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    s = json.loads(out.getvalue())
    dpu = s["$defs"]["Dpu"]["properties"]

    def model_of(prop):
        ref = next(a["$ref"] for a in prop["anyOf"] if "$ref" in a)
        return s["$defs"][ref.rsplit("/", 1)[1]]["properties"]

    vs, sp, tax = model_of(dpu["vswitch"]), model_of(dpu["slow_path"]), model_of(dpu["tax"])
    assert set(vs) == set(OLD["dpu.vswitch"]) and set(sp) == set(OLD["dpu.slow_path"]) and set(tax) == set(OLD["dpu.tax"])
    assert vs["max_flows"]["default"] == 200_000 and vs["max_flows"]["maximum"] == 2**24
    assert sp["handlers"]["default"] == 5 and sp["handlers"]["minimum"] == 1 and "handler threads" in sp["handlers"]["description"]
    assert tax["host_core_hz"]["default"] == 2.5e9 and tax["host_core_hz"]["exclusiveMinimum"] == 0
    assert "ps" in sp["install_latency_ps"]["description"]                   # the unit is named


# ------------------------------------------------------------------ C keeps no defaults of its own
def _sim_with_qp():
    from controlplane.fabric import routing, topology
    routes = routing.compute_routes(topology.single_switch(2, Gbps(100), us(1)))
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2, max_qps=4, max_msgs=2, pkt_pool=64)
    sim.add_links([0, 1], [2, 2], [Gbps(100)] * 2, [us(1)] * 2)
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    return sim, sim.create_qp_pair(0, 1, 49152)


@pytest.mark.parametrize("policy", ["reps", "flowlet", "plb"])
def test_the_data_plane_refuses_a_feedback_path_set_without_its_parameters(policy):
    """native/sim.c used to start a QP's path state with its own PLB/flowlet values (a second copy of
    the defaults, once 1000 x off); now a reps/flowlet/plb set before sd_set_path_params is refused,
    naming the call. (Before: rc 0, the C constants in force.)"""
    sim, qp = _sim_with_qp()
    e = ffi.new("uint32_t[]", [49152, 49153])
    rc = lib.sd_set_paths(sim._sim, qp, PATH_POLICIES[policy], e, ffi.NULL, 2, 0)
    assert rc == lib.SD_EINVAL
    msg = ffi.string(lib.sd_last_error(sim._sim)).decode()
    assert f"policy {policy} needs its parameters first (sd_set_path_params)" in msg
    # given explicitly first, the same set is taken and keeps exactly those values
    assert lib.sd_set_path_params(sim._sim, qp, 7, 0.25, 3, 11) == 0
    assert lib.sd_set_paths(sim._sim, qp, PATH_POLICIES[policy], e, ffi.NULL, 2, 0) == 0
    st = sim.path_states[qp]
    assert (int(st["flowlet_gap_ps"]), float(st["plb_cong_thresh"]), int(st["plb_rehash_rounds"]),
            int(st["plb_suspend_ps"])) == (7, 0.25, 3, 11)


def test_the_wrapper_fills_path_params_from_the_model():
    """Simulator.set_paths on a QP without parameters passes PathParams' defaults to C first."""
    sim, qp = _sim_with_qp()
    sim.set_paths(qp, "flowlet", [49152, 49153])
    st = sim.path_states[qp]
    assert {k: (float(st[k]) if k == "plb_cong_thresh" else int(st[k])) for k in OLD["path_params"]} == OLD["path_params"]


def test_a_zero_flowlet_gap_runs_as_documented():
    """path_params.flowlet_gap_ps = 0 ("every packet may take a new path", controlplane/config/limits.py)
    passed the schema but the data plane refused it at build ("flowlet_gap_ps must be > 0"): the two
    disagreed. It now builds and runs, each packet free to change path."""
    sc = Scenario(topology={"topology": "leaf_spine", "num_leaves": 2, "num_spines": 2, "hosts_per_leaf": 2,
                            "host_rate_bps": Gbps(100), "fabric_rate_bps": Gbps(100), "host_delay_ps": us(1),
                            "fabric_delay_ps": us(1)},
                  workload={"kind": "incast", "senders": 3, "size_bytes": KB(64)}, cc="none",
                  paths="flowlet", num_paths=4, path_params={"flowlet_gap_ps": 0}, sample_interval_ps=0)
    r = sc.run()
    assert r.counters["conservation_ok"] == 1 and r.counters["msgs_completed"] == 3
    assert int(r.network.sim.path_states[int(r.network.sender_qps[0])]["flowlet_gap_ps"]) == 0


def test_simulator_network_defaults_are_the_scenarios():
    """A Simulator made without network parameters takes the Scenario's (the wrapper used to hold
    its own copies: mtu 4096, rto 1 ms, DSCP 26/26/48, ...)."""
    from dataclasses import fields
    from dataplane.sim import _scenario_defaults
    d = _scenario_defaults()
    sc = {f.name: f.default for f in fields(Scenario) if f.name in d and not f.name.startswith("cnp_")}
    assert {k: d[k] for k in sc} == sc
    assert (d["cnp_mode"], d["cnp_interval_ps"]) == ("interval", us(50))       # the DCQCN paper's N
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2)
    assert sim.mtu_payload == Scenario.mtu_payload


def test_failures_name_a_switch_by_name_as_the_schema_says():
    """Failure.switch is documented as "node id or name"; a name used to be refused at build
    ("node 'sw0' is not a switch")."""
    sc = Scenario(topology=STAR3, workload=TWO, cc="none", failures=[{"switch": "sw0", "down_ps": us(5),
                                                                      "up_ps": us(6)}], sample_interval_ps=0)
    net = sc.build()
    assert net.failures.queue[0][2:] == ("down", (0, 1, 2))             # every link of sw0 (node 3)
    with pytest.raises(ValueError, match=r"^failures\[0\]\.up_ps must be a time after down_ps"):
        Scenario(topology=STAR3, workload=TWO, failures=[{"link": 0, "down_ps": 10, "up_ps": 5}])
    with pytest.raises(ValueError, match=r"^failures\[0\]: needs exactly one of 'link' or 'switch'"):
        Scenario(topology=STAR3, workload=TWO, failures=[{"down_ps": 10}])


def test_qpc_entries_zero_means_off_as_the_data_plane_does_it():
    """native/qpc.c: entries = 0 disables the cache (no access is counted); the model used to
    describe it as "every access misses"."""
    desc = models.Qpc.model_json_schema()["properties"]["entries"]["description"]
    assert "0: off" in desc and "misses" not in desc
    r = Scenario(topology=STAR3, workload=TWO, cc="none", qpc={"entries": 0}, sample_interval_ps=0).run()
    assert r.counters["qpc_hits"] == r.counters["qpc_misses"] == 0 and r.counters["msgs_completed"] == 2
    assert math.isclose(r.counters["qpc_hit_rate"], 1.0)


def test_the_data_plane_refuses_to_run_without_a_stall_limit():
    """The no-progress guard was a C default (SD_STALL_EVENTS + 16 per port, QP and host when 0);
    now sd_run_until refuses without one and the wrapper passes it, computed in Python
    (dataplane/sim.py STALL_EVENTS). (Before: rc >= 0, C's own limit in force.)"""
    from dataplane.sim import STALL_EVENTS, STALL_EVENTS_PER_OBJECT
    sim, qp = _sim_with_qp()
    assert lib.sd_run_until(sim._sim, 10) == lib.SD_EINVAL
    assert "no stall limit set" in ffi.string(lib.sd_last_error(sim._sim)).decode()
    assert lib.sd_set_stall_limit(sim._sim, 0) == lib.SD_EINVAL
    sim.run_until(10)                                 # the wrapper sets it: 10^7 + 16 x (ports + QPs + hosts)
    assert sim._stall_set == STALL_EVENTS + STALL_EVENTS_PER_OBJECT * (len(sim.ports) + len(sim.qps) + 2)
    with pytest.raises(ValueError, match="stall limit must be an integer in"):
        sim.set_stall_limit(0)


def test_ecn_thresholds_out_of_order_are_named_before_the_build():
    """kmax below kmin reached the data plane, which refused it per port ("port 5: ECN kmax (1000)
    must be >= kmin (5000)"); now the ecn section says it, in the user's names, once."""
    sc = Scenario(topology=STAR3, workload=TWO, ecn={"kmin_bytes": 5000, "kmax_bytes": 1000, "pmax": 0.1})
    with pytest.raises(ValueError, match=r"^ecn\.kmax_bytes \(1000\) must be >= ecn\.kmin_bytes \(5000\)$"):
        sc.build()
