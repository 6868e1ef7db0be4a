"""Parameter ranges and the rate floor of the six built-in congestion controls.

The C twins (native/<cc>.c validate(), reached through Simulator.add_cc_params) and the Python
references (check_params, at construction and bind) must accept exactly the same parameter
values and, when they refuse one, say the same words naming the same parameter. The rate floor
(MIN_RATE_BPS = 1 Mb/s, the smallest rate a ConnectX QP rate limiter takes: DCQCN rpg_min_rate)
applies to rate parameters at setup and to every rate a CC sets at run time, on the C-twin path
and on the plug-in path: below it the run stops with an error naming the CC, the QP and the
event, and the results so far are written. Before these fixes a rate between 0 and 1 bit/s
truncated to 0 and the serialization helper divided by it (SIGFPE, nothing written).
"""
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from congestion import registry
from congestion.api import MIN_RATE_BPS, CCPluginError
from controlplane.run.scenario import Scenario
from dataplane.sim import Simulator, cc_param_names
from tests.support import star

REPO = Path(__file__).resolve().parents[1]
FACTS = {"max_base_rtt_ps": 8_000_000, "host_rate_bps": 100e9, "mtu_payload": 4096, "int_multi": 4}
FLAVOUR_CODE = {"paper": 0.0, "nvidia": 1.0}

# (cc, constructor arguments): DCQCN twice, its dec_period_ps rule depends on the flavour
CCS = [("dcqcn", {"flavour": "paper"}), ("dcqcn", {"flavour": "nvidia"}), ("dctcp", {}), ("timely", {}),
       ("hpcc", {}), ("swift", {}), ("nscc", {})]

# boundary values tried on every parameter: zero, negative, not a number, infinities, below and
# at the rate floor, a fraction of one (a period or count that truncates to 0), one, integers
# around the bounds of time (1e15 ps), bytes (1e15) and counts (1e6, 16, 64), huge
BOUNDARY = [0.0, -0.0, -1.0, float("nan"), math.inf, -math.inf, 0.5, 1.0, 2.5, 16.0, 16.5, 64.0, 64.5,
            MIN_RATE_BPS - 1.0, float(MIN_RATE_BPS), MIN_RATE_BPS + 1.0, 1e6 + 0.5, 1e9, 1e15, 1e15 * (1 + 1e-9),
            1e300, -1e300, 1e-300]


def bound(cc: str, kw: dict):
    """The reference with its defaults, bound to FACTS."""
    ref = registry.create(cc, **kw)
    ref.bind(dict(FACTS))
    return ref


def python_verdict(cc: str, kw: dict, name: str, value: float) -> str | None:
    """None if the Python reference takes ``name=value`` (constructed and bound), else its message.
    The parameters the scenario derives from the fabric are given as bound, so that both sides
    see the same values for all the others (NSCC derives its target from network_rtt_ps)."""
    derived = {k: v for k, v in bound(cc, kw).params().items() if registry.create(cc, **kw).params()[k] is None}
    try:
        obj = registry.create(cc, **kw, **{**derived, name: value})
        obj.bind(dict(FACTS))
    except ValueError as e:
        return str(e)
    return None


def c_verdict(cc: str, kw: dict, name: str, value: float) -> str | None:
    """None if the C twin takes the reference's block with ``name`` set to ``value``, else its message."""
    ref = bound(cc, kw)
    block = {**ref.c_params(), name: float(value)}
    sim = Simulator(num_hosts=2, num_switches=0, max_links=1)
    try:
        sim.add_cc_params(ref.c_kind, block)
    except ValueError as e:
        return str(e)
    return None


def values_for(default: float, rng: np.random.Generator) -> list[float]:
    """The boundary values, the default and its neighbourhood, and random magnitudes of both signs."""
    mags = 10.0 ** rng.uniform(-12, 18, size=24)
    rand = list(mags * rng.choice([-1.0, 1.0], size=24))
    near = [default, default * (1 - 1e-12), default * (1 + 1e-12), default * 2, default / 2] if default else []
    return BOUNDARY + near + rand


def type_verdict(cc: str, name: str, value) -> str | None:
    """None if the parameter's declared type (its Params model) takes ``value``, else why not.
    The Python side is stricter than the C block (doubles): counts, rates, sizes and times in ps
    are whole numbers, flags are booleans."""
    try:
        registry.load_class(cc).params_model().typed(name, value)
    except ValueError as e:
        return str(e)
    return None


@pytest.mark.parametrize("cc,kw", CCS, ids=[f"{c}-{k.get('flavour', '')}".rstrip("-") for c, k in CCS])
def test_c_twin_and_python_reference_accept_the_same_parameters(cc, kw):
    """For every parameter of the C block (DCQCN's flavour aside: a name in Python, 0/1 in C) and
    every value tried: a value of the parameter's declared type is accepted by both or refused by
    both with the same words (Python names it as a scenario key, cc_params.NAME; the C twin by its
    name); a value not of its type (a fraction for a whole-number parameter, a number for a flag,
    NaN, infinities) is refused by the Python model naming the parameter, and NaN and infinities
    by the C twin too."""
    ref = bound(cc, kw)
    defaults = ref.c_params()
    model = registry.load_class(cc).params_model()
    rng = np.random.default_rng(sum(map(ord, cc + str(kw))))
    tried = refused = type_refused = 0
    for name in cc_param_names(ref.c_kind):
        if name == "flavour":
            continue
        values = values_for(float(defaults[name]), rng)
        if model.specs[name].kind == "bool":
            values += [True, False]
        for v in values:
            py, c = python_verdict(cc, kw, name, v), c_verdict(cc, kw, name, v)
            if type_verdict(cc, name, v) is not None:
                assert py is not None and py.startswith(f"{cc}: cc_params.{name} must be "), (name, v, py)
                if not (isinstance(v, float) and math.isfinite(v)):
                    assert c is not None, (name, v)
                type_refused += 1
                continue
            assert py == (None if c is None else c.replace(f"{cc}: ", f"{cc}: cc_params.", 1)), (name, v, py, c)
            if py is not None:
                refused += 1
                assert re.match(rf"{cc}: cc_params\.\w+ must be ", py), py
            tried += 1
    assert refused > 0 and refused < tried               # the grid has both verdicts for every CC
    assert type_refused > 0


@pytest.mark.parametrize("cc", ["dcqcn", "dctcp", "timely", "hpcc"])
def test_rate_parameters_below_the_floor_are_refused_naming_them(cc):
    """rmin_bps: 999,999 bit/s is refused on both paths naming the parameter; exactly the floor is taken."""
    for impl in ("c", "python"):
        with pytest.raises(ValueError, match=rf"{cc}: cc_params\.rmin_bps must be >= 1e\+06 \(the rate floor, 1 Mb/s\), "
                                             rf"got 999999"):
            Scenario(cc=cc, cc_impl=impl, cc_params={"rmin_bps": MIN_RATE_BPS - 1}).build()
        Scenario(cc=cc, cc_impl=impl, cc_params={"rmin_bps": MIN_RATE_BPS}).build()


def test_dcqcn_flavour_codes():
    """The C block's flavour is 0 (paper) or 1 (nvidia); the reference takes the names."""
    for v, ok in ((0.0, True), (1.0, True), (0.5, False), (2.0, False), (-1.0, False)):
        assert (c_verdict("dcqcn", {"flavour": "paper"}, "flavour", v) is None) == ok, v
    with pytest.raises(ValueError, match="flavour must be one of"):
        registry.create("dcqcn", flavour="ibm")


def test_the_cli_reports_a_rate_parameter_below_the_floor_instead_of_crashing(tmp_path):
    """The command of issue #11 died with SIGFPE ("Floating point exception", nothing written):
    now it exits 2 with a message naming the CC and the parameter (0.5 bit/s is not a whole number
    of bit/s: refused by the parameter's declared type, issue #12), and a whole rate below the
    floor with the parameter's bound, checked as the command line is read."""
    for value, words in (("0.5", "softdpu: timely: cc_params.rmin_bps must be a rate in bit/s (e.g. 100G, 100Gbps, "
                                 "25Mbps), got '0.5': '0.5' is not a whole number of bit/s"),
                         ("5", "softdpu: timely: cc_params.rmin_bps must be >= 1e+06 (the rate floor, 1 Mb/s), got 5")):
        out = subprocess.run([sys.executable, "-m", "controlplane.run.cli", "run", "incast", "--set", 'ccs=["timely"]',
                              "--set", f"cc_params.rmin_bps={value}", "--out", str(tmp_path / "r")],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


INCAST = dict(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 2_000_000},
              sample_interval_ps=10_000_000)
ERR = re.compile(r"cc '(\w[\w ]*)' set rate_bps=(\S+) \(QP (\d+), event (\w+), t=(\d+) ps\)")


def test_a_c_twin_setting_a_rate_below_the_floor_stops_the_run_naming_it(tmp_path):
    """DCQCN (nvidia) sets RC = rate_on_first_cnp x RC on the first CNP: 1e-6 x 100 Gb/s =
    100 kb/s, below the floor. The C twin stops the run with the CC, QP, event and time; the
    Python reference stops at the same QP, event and picosecond (their traces are identical up
    to there); the partial results are written and read back."""
    from controlplane.results.folder import load_run
    found = {}
    for impl in ("c", "python"):
        out = tmp_path / impl
        with pytest.raises(CCPluginError) as e:
            Scenario(cc="dcqcn", cc_impl=impl, cc_params={"rate_on_first_cnp": 1e-6}, **INCAST).run(out)
        m = ERR.search(str(e.value))
        assert m, str(e.value)
        assert m.group(1) == "dcqcn" and float(m.group(2)) == pytest.approx(100e3) and m.group(4) == "cnp"
        assert "rate floor" in str(e.value)
        found[impl] = (m.group(3), m.group(5))
        partial = load_run(out)
        assert partial.counters["error"] == str(e.value)
        assert partial.counters["msgs_completed"] < 4
    assert found["c"] == found["python"]


@pytest.mark.parametrize("bad_rate", ["0.5", "999999.0", "1e-300"])
def test_a_plugin_setting_a_rate_below_the_floor_stops_the_run(tmp_path, bad_rate):
    """A plug-in setting rate_bps = 0.5 killed the process with SIGFPE; now CCPluginError names the
    plug-in, the QP and the event, and the results up to then are written."""
    from controlplane.results.folder import load_run
    f = tmp_path / "slow_cc.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class Slow(CongestionControl):\n"
                 "    name = 'slow'\n"
                 "    def on_start(self, st, ev):\n"
                 "        ev.rate_bps = ev.line_rate_bps\n"
                 "    def on_ack(self, st, ev):\n"
                 "        if ev.now_ps > 20_000_000:\n"
                 f"            ev.rate_bps = {bad_rate}\n")
    with pytest.raises(CCPluginError, match=r"cc 'slow' set rate_bps=\S+ \(QP \d+, event ack, t=\d+ ps\): a rate must "
                                            r"be a number >= 1000000 bit/s \(the rate floor, 1 Mb/s\)"):
        Scenario(cc=f"{f}:Slow", **INCAST).run(tmp_path / "out")
    partial = load_run(tmp_path / "out")
    assert "rate floor" in partial.counters["error"]
    assert partial.ts["t_ps"][-1] >= 20_000_000


def test_a_plugin_at_exactly_the_floor_runs(tmp_path):
    """1 Mb/s itself is a valid rate: an 8 KB message paced at it completes. Expected FCT: the
    sender's pacer spaces its two packets by one serialization at the floor (first packet 4194
    wire bytes: 33.552 ms), so the FCT exceeds that (the run is long in simulated time, but finite)."""
    f = tmp_path / "floor_cc.py"
    f.write_text("from congestion.api import CongestionControl, MIN_RATE_BPS\n"
                 "class Floor(CongestionControl):\n"
                 "    name = 'floor'\n"
                 "    def on_start(self, st, ev):\n"
                 "        ev.rate_bps = MIN_RATE_BPS\n")
    r = Scenario(cc=f"{f}:Floor", topology=star(2), sample_interval_ps=0,
                 workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": 8192}]}).run()
    assert r.counters["msgs_completed"] == 1
    assert r.flows["fct_ps"][0] > (4096 + 82 + 16) * 8 * 10**6


def test_link_rates_below_the_floor_are_refused():
    s = Simulator(num_hosts=2, num_switches=0, max_links=2)
    with pytest.raises(ValueError, match=r"rate_bps must be in \[1e6 \(the rate floor, 1 Mb/s\), 1e14\], got 999999"):
        s.add_links([0], [1], [MIN_RATE_BPS - 1], [0])
    s.add_links([0], [1], [MIN_RATE_BPS], [0])


def test_swift_paces_no_slower_than_the_floor():
    """Below one packet of window Swift paces at cwnd per RTT: min_cwnd (1 % of 4 KB = 41 B) over
    a 1 s RTT is 328 bit/s, which the NIC cannot do; the reference (and the C twin, whose traces
    the differential tests compare) pace at the floor instead."""
    from types import SimpleNamespace
    sw = registry.create("swift")
    sw.bind(dict(FACTS))
    st = sw.new_flow(0)
    ev = SimpleNamespace(event=0, now_ps=0, mtu_payload=4096, line_rate_bps=100e9, rate_bps=100e9, window_bytes=0,
                         trace=[0.0] * 4)
    sw.on_start(st, ev)
    st.cwnd, st.rtt, st.last_dec = 41.0, 1e12, 0.0
    ev.event, ev.now_ps, ev.rtt_ps, ev.hops, ev.acked_bytes = 4, 10**12, -1, 1, 0        # a timeout: cwnd stays low
    sw.on_timeout(st, ev)
    assert st.cwnd * 8 / 1.0 < MIN_RATE_BPS
    assert ev.rate_bps == MIN_RATE_BPS


def test_the_data_plane_checks_a_raw_handler_too():
    """A handler installed without CongestionControl.handler_for (no Python-side check) that sets
    0.5 bit/s: the C side refuses the rate itself (it never divides by an unchecked value) and
    run_until raises CCPluginError naming the QP and the event."""
    from dataplane.sim import CC_PYTHON
    s = Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [10**11], [10**6])
    qp = s.create_qp_pair(0, 1, 49152, cc_kind=CC_PYTHON)

    def handler(io):
        io.rate_bps = 0.5

    s.set_python_cc(qp, handler)
    s.set_python_cc(qp + 1, handler)
    s.post_writes([qp], [100_000], [0])
    with pytest.raises(CCPluginError, match=rf"cc 'python plug-in' set rate_bps=0.5 \(QP {qp}, event start, t=0 ps\)"):
        s.run_until(10**9)
    with pytest.raises(CCPluginError, match="rate floor"):        # and it stays stopped
        s.run_until(2 * 10**9)
