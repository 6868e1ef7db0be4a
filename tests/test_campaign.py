"""Robustness campaign over generated scenario dicts (issue #12).

A generated scenario is a tiny fabric of every kind controlplane/fabric/topology.py builds, a workload of
every kind controlplane/transport/workload.py builds, an optional failures list and multipath fields; with
some probability one value somewhere is mutated (wrong type, out of range, NaN, huge, missing or
unknown key). Every case must end in exactly one of two ways:

  * a ValueError whose message names a field: one of the keys that occur in the scenario dict
    (a section name such as ``workload`` or one of its keys such as ``senders``);
  * a run that completes within a small ``max_duration_ps`` with the data plane's conservation
    check holding (counters ``conservation_ok`` == 1: data sent = delivered + dropped + in flight).

Anything else (KeyError, TypeError, ZeroDivisionError, OverflowError, numpy errors, ...) is an
internal error reached by user input: a defect.

``python tests/test_campaign.py N`` runs N cases and prints the counts by outcome (the long
campaign); the pytest test runs ~150 cases.
"""
from __future__ import annotations

import math
import re
import sys
import traceback
import warnings
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.run.scenario import Scenario
from controlplane.config.units import KB, Gbps, us

BAD_VALUES = [-1, 0, 1, 2**31, 2**40, 2**64, 1.5, -0.5, math.nan, math.inf, "x", "", None, True, [], {}, [1, 2],
              {"a": 1}, 1e300]
MAX_DURATION_PS = us(100)

RATES = st.sampled_from([Gbps(10), Gbps(25), Gbps(100)])
DELAYS = st.sampled_from([0, 100_000, us(1)])


def topologies():
    single = st.fixed_dictionaries({"topology": st.just("single_switch"), "num_hosts": st.integers(2, 6),
                                    "rate_bps": RATES, "delay_ps": DELAYS})
    dumbbell = st.fixed_dictionaries({"topology": st.just("dumbbell"), "num_left": st.integers(1, 3),
                                      "num_right": st.integers(1, 3), "host_rate_bps": RATES,
                                      "bottleneck_rate_bps": RATES, "host_delay_ps": DELAYS,
                                      "bottleneck_delay_ps": DELAYS})
    leaf_spine = st.fixed_dictionaries({"topology": st.just("leaf_spine"), "num_leaves": st.integers(1, 3),
                                        "num_spines": st.integers(1, 2), "hosts_per_leaf": st.integers(1, 3),
                                        "host_rate_bps": RATES, "fabric_rate_bps": RATES,
                                        "host_delay_ps": DELAYS, "fabric_delay_ps": DELAYS})
    fat_tree = st.fixed_dictionaries({"topology": st.just("fat_tree"), "k": st.sampled_from([2, 4]),
                                      "host_rate_bps": RATES, "host_delay_ps": DELAYS},
                                     optional={"agg_rate_bps": RATES, "core_delay_ps": DELAYS})
    rail = st.fixed_dictionaries({"topology": st.just("rail_clos"), "host_rate_bps": RATES, "host_delay_ps": DELAYS,
                                  "num_rails": st.integers(1, 2), "servers_per_leaf": st.integers(1, 2),
                                  "leaves_per_rail": st.integers(1, 2), "spines_per_rail": st.integers(1, 2),
                                  "cores_per_group": st.integers(1, 2)},
                                 optional={"planes": st.integers(1, 2), "nvlink_rate_bps": st.sampled_from([0, Gbps(400)]),
                                           "sharp": st.booleans(), "oversubscription": st.sampled_from([1.0, 2.0])})
    return st.one_of(single, dumbbell, leaf_spine, fat_tree, rail)


def workloads():
    size = st.integers(1, KB(64))
    return st.one_of(
        st.fixed_dictionaries({"kind": st.just("incast"), "senders": st.integers(1, 3), "size_bytes": size},
                              optional={"receiver": st.integers(0, 1), "jitter_ps": st.sampled_from([0, us(1)]),
                                        "start_ps": st.sampled_from([0, us(2)])}),
        st.fixed_dictionaries({"kind": st.just("permutation"), "size_bytes": size},
                              optional={"start_ps": st.sampled_from([0, us(1)])}),
        st.fixed_dictionaries({"kind": st.just("poisson"), "cdf": st.sampled_from(["websearch", "fb_hadoop"]),
                               "load": st.sampled_from([0.1, 0.5, 1.0]), "duration_ps": st.sampled_from([us(2), us(5)])}),
        st.fixed_dictionaries({"kind": st.just("flows"), "flows": st.lists(
            st.fixed_dictionaries({"src": st.integers(0, 1), "dst": st.integers(1, 2), "size_bytes": size},
                                  optional={"start_ps": st.sampled_from([0, us(1)]), "conn": st.integers(0, 2)}),
            min_size=0, max_size=3)}),
    )


def failure_lists():
    entry = st.one_of(
        st.fixed_dictionaries({"link": st.integers(0, 3), "down_ps": st.sampled_from([0, us(5)])},
                              optional={"up_ps": st.sampled_from([us(10), us(50)])}),
        st.fixed_dictionaries({"switch": st.integers(0, 8), "down_ps": st.sampled_from([us(5)])}),
    )
    return st.one_of(st.none(), st.lists(entry, max_size=2))


def multipath_fields():
    return st.fixed_dictionaries({}, optional={
        "transport": st.sampled_from(["gbn", "sr", "ooo"]),
        "paths": st.sampled_from(["ecmp", "spray_rr", "spray_random", "reps", "flowlet", "plb"]),
        "num_paths": st.integers(1, 4),
        "transport_params": st.fixed_dictionaries({}, optional={"reorder_window": st.sampled_from([64, 2048]),
                                                                 "bdp_cap": st.sampled_from([0, "auto", 8])}),
        "path_params": st.fixed_dictionaries({}, optional={"flowlet_gap_ps": st.sampled_from([us(10), us(100)]),
                                                            "plb_rehash_rounds": st.integers(1, 12)}),
        "adaptive_routing": st.sampled_from([False, True, "delay"]),
        "link_loss": st.sampled_from([0.0, 0.01]),
    })


def _paths(d, prefix=()):
    """Every (path, container, key) of nested dicts and lists, for mutation."""
    if isinstance(d, dict):
        for k in list(d):
            yield prefix + (k,), d, k
            yield from _paths(d[k], prefix + (k,))
    elif isinstance(d, list):
        for i in range(len(d)):
            yield prefix + (i,), d, i
            yield from _paths(d[i], prefix + (i,))


# Top-level fields whose type is checked by the scenario's own validation (controlplane/run/scenario.py,
# config.py, limits.py: a section that is not a dict, the seed, the CC name), not by the section
# builders; the committed test mutates only what the builders own, the campaign (main) everything.
SCENARIO_LEVEL = ("topology", "workload", "seed", "cc")


@st.composite
def scenario_dicts(draw, scope: str = "builders"):
    d = {"topology": draw(topologies()), "workload": draw(workloads()), "failures": draw(failure_lists()),
         "seed": draw(st.integers(0, 2**32 - 1)), "max_duration_ps": MAX_DURATION_PS, "sample_interval_ps": us(10),
         "monitor_ports": "none"}
    d.update(draw(multipath_fields()))
    d["cc"] = draw(st.sampled_from(["dcqcn", "dctcp", "timely", "hpcc"]))
    mutate = draw(st.sampled_from(["none", "value", "value", "value", "drop", "extra"]
                                  + (["seed"] if scope == "all" else [])))
    if mutate == "seed":
        d["seed"] = draw(st.sampled_from(BAD_VALUES))
    elif mutate != "none":
        targets = [t for t in _paths(d) if t[0][0] not in ("max_duration_ps", "sample_interval_ps", "monitor_ports")
                   and (scope == "all" or len(t[0]) > 1 or t[0][0] not in SCENARIO_LEVEL)]
        path, container, key = draw(st.sampled_from(targets))
        if mutate == "value":
            container[key] = draw(st.sampled_from(BAD_VALUES))
        elif mutate == "drop" and isinstance(container, dict) and len(path) > 1:
            del container[key]
        elif mutate == "extra" and isinstance(container, dict) and len(path) > 1:
            container["bogus_key"] = 1
    return d


def _field_names(d) -> set[str]:
    names = set()
    if isinstance(d, dict):
        for k, v in d.items():
            names.add(str(k))
            names |= _field_names(v)
    elif isinstance(d, list):
        for v in d:
            names |= _field_names(v)
    return names


def run_case(d: dict) -> tuple[str, str]:
    """('reject', msg) | ('run', '') | ('internal', 'Type at file:line: msg')."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = Scenario.from_dict(d).run(None)
    except ValueError as exc:
        msg = str(exc)
        names = _field_names(d) | {"topology", "workload", "seed", "failures"}
        if any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", msg) for n in names):
            return "reject", msg
        return "internal", f"ValueError naming no field: {msg[:200]}"
    except Exception as exc:                                  # noqa: BLE001 - the campaign classifies them
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return "internal", f"{type(exc).__name__} at {tb.filename.split('/')[-1]}:{tb.lineno}: {str(exc)[:160]}"
    c = result.counters
    if c["conservation_ok"] != 1:
        return "internal", f"conservation broken: {c['data_sent']} sent, {c['data_delivered']} delivered"
    return "run", ""


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(scenario_dicts())
def test_campaign_rejects_by_field_or_runs_conserving(d):
    outcome, msg = run_case(d)
    assert outcome != "internal", f"{msg}\nscenario: {d!r}"


def main(n: int) -> None:
    import resource
    import signal
    # the campaign process gets at most 3 GiB of address space and 60 s per case, so that an
    # unbounded fabric shows up as a MemoryError (or a timeout) instead of taking the machine down
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    def _timeout(*_):
        raise TimeoutError("case took over 60 s")
    signal.signal(signal.SIGALRM, _timeout)
    counts: Counter = Counter()
    internal: Counter = Counter()
    examples: dict[str, dict] = {}

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(scenario_dicts("all"))
    def campaign(d):
        import copy
        d0 = copy.deepcopy(d)
        signal.alarm(60)
        try:
            outcome, msg = run_case(d)
        finally:
            signal.alarm(0)
        counts[outcome] += 1
        if sum(counts.values()) % 100 == 0:                 # progress, in case the run is cut short
            print(f"... {sum(counts.values())} cases: {dict(counts)}", flush=True)
        if outcome == "internal":
            key = msg.split(":")[0] + ":" + msg.split(":")[1] if msg.count(":") > 1 else msg
            internal[key] += 1
            examples.setdefault(key, d0)

    campaign()
    print(f"cases {sum(counts.values())}: rejected {counts['reject']}, ran {counts['run']}, internal {counts['internal']}")
    for k, v in internal.most_common():
        print(f"  {v:5d}  {k}\n         e.g. {examples[k]!r}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)


# ---------------------------------------------------------------------------------------------
# The defects the campaign and the issue found, one test each.

def test_plb_defaults_of_the_data_plane_are_the_documented_ones():
    """A QP given a plb path set and no explicit parameters runs with PATH_PARAM_DEFAULTS, the
    one table of them: the suspension after an RTO repath is Linux's tcp_plb_suspend_rto_sec,
    60 s = 6e13 ps (the C default was 6e16 ps, 60,000 s)."""
    from controlplane.config.models import defaults
    from dataplane.sim import Simulator
    PATH_PARAM_DEFAULTS = defaults("path_params")          # the PathParams model (controlplane/transport/multipath.py)
    assert PATH_PARAM_DEFAULTS["plb_suspend_ps"] == 60 * 10**12
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2, max_qps=4, max_msgs=2, pkt_pool=64)
    from controlplane.fabric import routing, topology
    routes = routing.compute_routes(topology.single_switch(2, Gbps(100), us(1)))
    sim.add_links([0, 1], [2, 2], [Gbps(100)] * 2, [us(1)] * 2)
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    qp = sim.create_qp_pair(0, 1, 49152)
    sim.set_paths(qp, "plb", [49152, 49153])
    st_ = sim.path_states[qp]
    assert int(st_["plb_suspend_ps"]) == PATH_PARAM_DEFAULTS["plb_suspend_ps"]
    assert int(st_["flowlet_gap_ps"]) == PATH_PARAM_DEFAULTS["flowlet_gap_ps"]
    assert float(st_["plb_cong_thresh"]) == PATH_PARAM_DEFAULTS["plb_cong_thresh"]
    assert int(st_["plb_rehash_rounds"]) == PATH_PARAM_DEFAULTS["plb_rehash_rounds"]


def test_wire_bytes_helper_is_the_data_planes():
    """dataplane.sim.wire_bytes (no Simulator needed) is sd_wire_bytes of a Simulator of the same
    ipv6/phy_overhead, for every opcode; a 4 KB middle packet is 4096 + 14 (Ethernet) + 20 (IPv4)
    + 8 (UDP) + 12 (BTH) + 4 (ICRC) + 4 (FCS) + 20 (preamble, SFD, IFG) = 4178 B, an ACK 86 B
    (AETH 4 B, no payload); IPv6 adds 20 B."""
    from dataplane.sim import OPCODES, Simulator, wire_bytes
    for ipv6 in (False, True):
        sim = Simulator(num_hosts=2, num_switches=1, max_links=2, pkt_pool=64, ipv6=ipv6)
        for op in OPCODES.values():
            for payload in (0, 1, 1000, 4096):
                assert wire_bytes(op, payload, ipv6=ipv6) == sim.wire_bytes(op, payload)
    assert wire_bytes(OPCODES["write_middle"], 4096) == 4178
    assert wire_bytes(OPCODES["ack"], 0) == 86
    assert wire_bytes(OPCODES["ack"], 0, ipv6=True) == 106


def test_fabric_sizes_are_bounded_before_allocation(monkeypatch):
    """num_hosts = 2^32 used to grow memory until the process died, fat_tree(k=100) to fail with a
    numpy MemoryError: both are refused before anything is built, naming the topology."""
    from controlplane.fabric import topology
    monkeypatch.setenv("SOFTDPU_MAX_MEMORY_GIB", "4")
    with pytest.raises(ValueError, match=r"single_switch\(num_hosts=4294967296\): 4,294,967,296 hosts, at most 1,048,576"):
        topology.build("single_switch", num_hosts=2**32, rate_bps=Gbps(100), delay_ps=us(1))
    # k=100: 250,000 hosts, 12,500 switches, 750,000 links: routing's work arrays alone are
    # 12,500 x 250,000 x 12 B = 34.9 GiB (topology.ROUTE_BYTES_PER_PAIR, measured at k = 32), the ports
    # 1.5 M x their state and record and the Python links ~1 GiB more
    need = topology.estimate_bytes(250_000, 12_500, 750_000) / 2**30
    assert 34.9 < need < 37
    with pytest.raises(ValueError, match=rf"fat_tree\(k=100\): this scenario needs about {need:.1f} GiB "
                                         r"\(limit 4\.0 GiB; raise it with SOFTDPU_MAX_MEMORY_GIB=\.\.\.\)"):
        topology.build("fat_tree", k=100, host_rate_bps=Gbps(100), host_delay_ps=us(1))
    # the limit is what the variable says: fat_tree(k=16) (1,024 hosts x 320 switches) needs ~9 MB
    assert 6e6 < topology.estimate_bytes(1024, 320, 3072) < 12e6
    monkeypatch.setenv("SOFTDPU_MAX_MEMORY_GIB", "0.005")
    with pytest.raises(ValueError, match=r"fat_tree\(k=16\).*limit 0\.0 GiB"):
        topology.build("fat_tree", k=16, host_rate_bps=Gbps(100), host_delay_ps=us(1))
    monkeypatch.setenv("SOFTDPU_MAX_MEMORY_GIB", "lots")
    with pytest.raises(ValueError, match="SOFTDPU_MAX_MEMORY_GIB must be a number of GiB > 0, got 'lots'"):
        topology.build("fat_tree", k=4, host_rate_bps=Gbps(100), host_delay_ps=us(1))
    monkeypatch.delenv("SOFTDPU_MAX_MEMORY_GIB")
    # default: half of physical memory
    import os
    assert topology.memory_limit_bytes() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def test_transport_defaults_of_the_simulator_wrapper_are_the_control_planes():
    """Simulator.set_transport without parameters gives what a scenario's transport_params default
    to (TRANSPORT_DEFAULTS, IRN: 100 us low RTO while <= 3 packets are out); the wrapper's own
    default was rto_low_ps = 0 (no low RTO) while the control plane documented 100 us."""
    from controlplane.fabric import routing, topology
    from controlplane.config.models import defaults
    from dataplane.sim import Simulator
    TRANSPORT_DEFAULTS = defaults("transport_params")      # the TransportParams model (controlplane/transport/multipath.py)
    assert TRANSPORT_DEFAULTS["rto_low_ps"] == us(100)
    routes = routing.compute_routes(topology.single_switch(2, Gbps(100), us(1)))
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2, max_qps=4, max_msgs=2, pkt_pool=64)
    sim.add_links([0, 1], [2, 2], [Gbps(100)] * 2, [us(1)] * 2)
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    qp = sim.create_qp_pair(0, 1, 49152)
    sim.set_transport(qp, "sr")
    q = sim.qps[qp]
    assert int(q["rto_low_ps"]) == TRANSPORT_DEFAULTS["rto_low_ps"]
    assert int(q["rto_low_pkts"]) == TRANSPORT_DEFAULTS["rto_low_pkts"]
    assert int(q["reorder_window"]) == TRANSPORT_DEFAULTS["reorder_window"]


@pytest.mark.parametrize("d, message", [
    # found by the campaign: each raised an internal error (type and place before the fix in the comment)
    # KeyError 'src' (workload.py from_list)
    ({"workload": {"kind": "flows", "flows": [{"dst": 1, "size_bytes": 10}]}}, r"workload\.flows\[0\]\.src must be set"),
    # TypeError: '<' not supported between 'str' and 'int' (workload.py incast)
    ({"workload": {"kind": "incast", "senders": 2, "size_bytes": 100, "jitter_ps": "x"}}, r"workload\.jitter_ps"),
    # TypeError: incast() got an unexpected keyword argument (workload.py build)
    ({"workload": {"kind": "incast", "senders": 2, "size_bytes": 100, "bogus_key": 1}}, r"workload: unknown key 'bogus_key'"),
    # TypeError: '<' not supported between 'NoneType' and 'int' (workload.py poisson)
    ({"workload": {"kind": "poisson", "cdf": "websearch", "load": None, "duration_ps": 10**6}}, r"workload\.load"),
    # TypeError: expected str, bytes or os.PathLike object, not int (workload.py SizeCdf)
    ({"workload": {"kind": "poisson", "cdf": 5, "load": 0.5, "duration_ps": 10**6}}, r"workload\.cdf"),
    # AttributeError: 'int' object has no attribute 'get' (failures.py)
    ({"failures": [5]}, r"failures\[0\] must be a dict"),
    # TypeError: 'int' object is not iterable (failures.py)
    ({"failures": 3}, r"failures must be a list"),
    # TypeError: 'int' object is not iterable (multipath.py resolve)
    ({"transport": "sr", "transport_params": 7}, r"transport_params must be a dict"),
    # data plane: "argument of type 'int' is not iterable" / cffi OverflowError (multipath.py install_qp)
    ({"paths": "plb", "path_params": {"plb_suspend_ps": 2**64}}, r"path_params\.plb_suspend_ps"),
    ({"paths": "flowlet", "path_params": {"flowlet_gap_ps": "x"}}, r"path_params\.flowlet_gap_ps"),
    # TypeError: unhashable type: 'list' (multipath.py ar_classes)
    ({"adaptive_routing": True, "ar_classes": [["data"]]}, r"ar_classes must be"),
    # TypeError: object of type 'int' has no len() (multipath.py path_weights)
    ({"paths": "spray_weighted", "num_paths": 2, "path_weights": 3}, r"path_weights"),
    # the data plane's "link 0: rate_bps must be in [1e6, 1e14]" named no scenario field (rails.py)
    ({"topology": {"topology": "rail_clos", "host_rate_bps": 1, "host_delay_ps": 0, "num_rails": 2,
                   "servers_per_leaf": 1, "leaves_per_rail": 2, "spines_per_rail": 1, "cores_per_group": 1}},
     r"host_rate_bps must be a rate in \[1e6, 1e14\]"),
    # TypeError: build() missing 1 required positional argument: 'topology' (topology.py build)
    ({"topology": {"num_hosts": 4, "rate_bps": Gbps(100), "delay_ps": 0}}, r"topology\.topology: unknown topology; known: .*got None"),
    # TypeError: unhashable type: 'list' (topology.py build)
    ({"topology": {"topology": [1], "num_hosts": 4}}, r"topology\.topology: unknown topology; known: .*got \[1\]"),
    # hpcc: base_rtt_ps must be > 0 on a one-host fabric (no pair of hosts)
    ({"topology": {"topology": "rail_clos", "host_rate_bps": Gbps(100), "host_delay_ps": 0, "num_rails": 1,
                   "servers_per_leaf": 1, "leaves_per_rail": 1, "spines_per_rail": 2, "cores_per_group": 1},
      "workload": {"kind": "flows", "flows": []}, "cc": "hpcc"}, r"1 host; a scenario's fabric needs at least 2"),
])
def test_campaign_findings_are_rejected_by_field(d, message):
    base = {"topology": {"topology": "single_switch", "num_hosts": 4, "rate_bps": Gbps(100), "delay_ps": us(1)},
            "workload": {"kind": "incast", "senders": 2, "size_bytes": KB(8)}, "max_duration_ps": MAX_DURATION_PS}
    with pytest.raises(ValueError, match=message):
        Scenario.from_dict({**base, **d}).run(None)
