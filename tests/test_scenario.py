"""Scenario runs: the results folder, determinism, and clear errors for bad input."""
import json

import numpy as np
import pytest

from controlplane.results.folder import load_run
from controlplane.fabric.routing import RoutingError
from controlplane.run.scenario import RESULT_FILES, Scenario
from controlplane.fabric.topology import Fabric, Link
from dataplane.sim import Simulator
from tests.support import assert_conserved, star

SMALL = dict(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 500_000}, cc="dcqcn",
             sample_interval_ps=5_000_000, trace=10_000)


def test_results_folder_has_every_file_and_reloads(tmp_path):
    r = Scenario(**SMALL).run(tmp_path / "run")
    assert_conserved(r)
    for f in RESULT_FILES + ("trace.npz",):
        assert (tmp_path / "run" / f).stat().st_size > 0, f
    run = load_run(tmp_path / "run")
    assert np.array_equal(run.flows["finish_ps"], r.flows["finish_ps"])
    assert run.ts["qp_rate_bps"].shape == (len(run.ts["t_ps"]), 4)
    assert run.config["bottleneck_port"] == r.network.bottleneck_port()
    # the config is enough to re-run: from_dict(config) reproduces the same flows
    again = Scenario.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())).run()
    assert np.array_equal(again.flows["finish_ps"], r.flows["finish_ps"])


def test_same_scenario_and_seed_give_byte_identical_files(tmp_path):
    sc = Scenario(**SMALL, seed=7)
    sc.run(tmp_path / "a")
    sc.run(tmp_path / "b")
    for f in RESULT_FILES + ("trace.npz",):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_seed_changes_the_run():
    """Different seeds draw different UDP source ports (ECMP entropy) and ECN coin flips."""
    a = Scenario(**SMALL, seed=1).run()
    b = Scenario(**SMALL, seed=2).run()
    assert not np.array_equal(a.flows["finish_ps"], b.flows["finish_ps"])


def test_negative_rate_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="rate_bps"):
        Scenario(topology=star(3, rate_bps=-5)).build()


def test_unknown_cc_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown cc 'dcqnc'.*dcqcn"):
        Scenario(cc="dcqnc").build()


def test_unknown_cc_parameter_is_named():
    with pytest.raises(ValueError, match="flavor"):
        Scenario(cc_params={"flavor": "paper"}).build()


def test_host_without_route_is_named():
    """Two switches without a link between them: h1 cannot be reached from sw0."""
    fab = Fabric.from_links("split", 2, 2, [Link(0, 2, 10**11, 10**6, 0), Link(1, 3, 10**11, 10**6, 0)])
    from controlplane.fabric.routing import compute_routes
    with pytest.raises(RoutingError, match="h1"):
        compute_routes(fab)


def test_fib_with_a_missing_route_is_rejected_by_the_data_plane():
    s = Simulator(num_hosts=2, num_switches=1, max_links=2)
    s.add_links([0, 1], [2, 2], [10**11] * 2, [10**6] * 2)
    with pytest.raises(ValueError, match="no route from switch node 2 to host 1"):
        s.install_fib([0, 0xFFFFFFFF], [0, 1], [1])


def test_qp_to_a_missing_node_is_named():
    s = Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [10**11], [10**6])
    with pytest.raises(ValueError, match="dst_host 9"):
        s.create_qp_pair(0, 9, 49152)
    with pytest.raises(ValueError, match="receiver"):
        Scenario(topology=star(3), workload={"kind": "incast", "senders": 1, "size_bytes": 1000, "receiver": 7}).build()


@pytest.mark.parametrize("call,match", [
    (lambda s: s.add_links([0], [5], [10**11], [0]), "does not exist"),
    (lambda s: s.add_links([0], [1], [0], [0]), "rate_bps"),
    (lambda s: s.add_links([0], [1], [10**11], [-1]), "delay_ps"),
    (lambda s: s.set_queue(99, 1, 1000), "port 99"),
    (lambda s: s.post_writes([5], [100], [0]), "qp 5"),
    (lambda s: s.post_writes([0], [0], [0]), "bytes"),
    # a time beyond int64 ps: numpy would keep it as an object array (the pcap issue's symptom)
    (lambda s: s.post_writes([0, 0], [100, 100], [0, 2**72]), r"post_ps\[1\] = 4722366482869645213696 is not an integer "
                                                             r"that fits int64"),
    (lambda s: s.post_writes([0], [100], np.array([2**63], dtype=np.uint64)), r"post_ps\[0\] = 9223372036854775808"),
    (lambda s: s.run_until(-1), "before now"),
    (lambda s: s.add_cc_params(1, {"g": 2.0}), "missing"),
    (lambda s: s.add_cc_params(3, {"g": 2.0, "rai_bps": 1e6, "rmin_bps": 1e8, "initial_alpha": 1.0}), "g must be"),
    (lambda s: s.add_cc_params(4, {n: float("nan") for n in ("alpha", "beta", "t_low_ps", "t_high_ps", "min_rtt_ps",
                                                            "rai_bps", "rhai_bps", "rmin_bps", "hai_threshold")}), "NaN"),
])
def test_bad_data_plane_calls_raise_and_do_not_crash(call, match):
    s = Simulator(num_hosts=2, num_switches=0, max_links=2)
    s.add_links([0], [1], [10**11], [10**6])
    s.create_qp_pair(0, 1, 49152)
    with pytest.raises(ValueError, match=match):
        call(s)
    s.run_until(10**6)            # still usable afterwards


def test_bad_simulator_config_is_named():
    with pytest.raises(ValueError, match="mtu_payload"):
        Simulator(num_hosts=2, num_switches=0, max_links=1, mtu_payload=10)
    with pytest.raises(ValueError, match="cnp_mode"):
        Simulator(num_hosts=2, num_switches=0, max_links=1, cnp_mode="sometimes")


def test_overrides_reach_nested_fields():
    sc = Scenario().with_overrides({"cc_params.flavour": "paper", "topology.num_hosts": 5, "seed": 3})
    assert sc.cc_params == {"flavour": "paper"} and sc.topology["num_hosts"] == 5 and sc.seed == 3
    with pytest.raises(ValueError, match="nosuchfield"):
        Scenario().with_overrides({"nosuchfield": 1})


@pytest.mark.parametrize("spec,match", [
    ([[0]], r"monitor_ports\[0\] = \[0\] is not a port id in \[0, 8\)"),           # the IndexError
    ([0, 8], r"monitor_ports\[1\] = 8 is not a port id in \[0, 8\)"),              # star(4): 4 links, 8 ports
    ([-1], r"monitor_ports\[0\] = -1"),
    ([1.5], r"monitor_ports\[0\] = 1.5"),
    ([True], r"monitor_ports\[0\] = True"),
    ([3, 3], r"monitor_ports\[1\]: port 3 .* is listed twice"),
    (["sw9->h0"], r"monitor_ports\[0\] = 'sw9->h0'"),
    ("switches", r"monitor_ports must be .*got 'switches'"),
    (7, r"monitor_ports must be .*got 7"),
    (np.zeros((1, 2), dtype=np.int64), r"monitor_ports must be"),
])
def test_bad_monitor_ports_fail_the_build_with_the_value_named(spec, match):
    with pytest.raises(ValueError, match=match):
        Scenario(topology=star(4), workload={"kind": "incast", "senders": 2, "size_bytes": 10_000},
                 monitor_ports=spec).build()


def test_monitor_ports_by_id_and_by_name_give_those_columns():
    sc = Scenario(topology=star(4), workload={"kind": "incast", "senders": 2, "size_bytes": 100_000}, cc="none",
                  sample_interval_ps=5_000_000, monitor_ports=[1, "h2->sw0"])
    r = sc.run()
    fab = r.network.fabric
    assert list(r.timeseries["port_ids"]) == [1, 4]                       # link 2 = h2-sw0, port 2*2 at h2
    assert list(r.timeseries["port_names"]) == [fab.port_name(1), "h2->sw0"]
    assert r.timeseries["port_tx_bytes"].shape == (len(r.timeseries["t_ps"]), 2)
    # the last sample holds each port's whole transmitted byte count
    assert list(r.timeseries["port_tx_bytes"][-1]) == [int(r.network.sim.ports[p]["tx_bytes"]) for p in (1, 4)]


def test_a_run_that_runs_out_of_packets_says_so():
    """The packet pool is the simulator's memory, not a modelled buffer: when it runs dry, senders
    are held back and ACKs are not sent, which shapes the results. That used to pass silently (the
    count only in counters.json); a run now warns. The default pool leaves room: 65,536 + 256 per
    flow, at most 2^24 (it was 2^21, which a 65,536-host permutation exhausted)."""
    from controlplane.transport.workload import default_pkt_pool
    with pytest.warns(RuntimeWarning, match=r"the packet pool \(64 packets\) ran out [0-9,]+ times"):
        r = Scenario(**{**SMALL, "pkt_pool": 64}).run()
    assert r.counters["pool_exhausted"] > 0
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Scenario(**SMALL).run().counters["pool_exhausted"] == 0
    assert default_pkt_pool(4) == 65536 + 1024 and default_pkt_pool(65536) == 1 << 24
