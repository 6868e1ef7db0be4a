"""Each congestion control's parameters are one declared pydantic model (congestion/params.py):
the single source of its defaults, units, bounds and descriptions (issue #12).

What is checked here: the models' defaults are the values the algorithms had before the models
(stated below, copied from the hand-written ``defaults()`` they replace); every bound is the C
twin's (read from native/<cc>.c validate()); unit strings are accepted and converted exactly;
wrong types are refused naming the field; unknown names suggest the closest; the older plug-in
API (``defaults()`` + ``param_rules()``) works unchanged; the command line types CC parameters
through the model; the JSON Schema validates cc_params per CC; and generated parameter dicts
either validate (and then the C twin takes them too, and a short run ends) or give one line
naming ``cc_params.<name>``.
"""
import json
import math
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from congestion import registry
from congestion.api import MIN_RATE_BPS, RULE_RATE, CongestionControl
from congestion.params import CCParams, Rate, Time, cc_schema
from controlplane.run.experiment import parse_sets
from controlplane.run.scenario import Scenario
from dataplane.sim import BudgetExceeded, CCPluginError, Simulator, cc_param_names
from tests.support import star

REPO = Path(__file__).resolve().parents[1]
FACTS = {"max_base_rtt_ps": 8_000_000, "host_rate_bps": 100e9, "mtu_payload": 4096, "int_multi": 4}
BUILTINS = ["none", "dcqcn", "dctcp", "timely", "hpcc", "swift", "nscc"]

# The defaults before the models, as the hand-written defaults() returned them (git history:
# congestion/<cc>.py before "each built-in CC declares its parameters as a pydantic model").
# HPCC's fast_react was the integer 1; it is the boolean True now (equal as a value: True == 1,
# and the C block receives 1.0 either way).
PREVIOUS = {
    "none": {},
    "dcqcn-nvidia": dict(flavour="nvidia", g=1 / 256, rai_bps=20e6, rhai_bps=200e6, rmin_bps=1e9, initial_alpha=1.0,
                         rate_on_first_cnp=1.0, alpha_period_ps=1_000_000, inc_period_ps=300_000_000,
                         dec_period_ps=4_000_000, byte_counter=0, fast_recovery=1, clamp_target=False),
    "dcqcn-paper": dict(flavour="paper", g=1 / 256, rai_bps=40e6, rhai_bps=200e6, rmin_bps=100e6, initial_alpha=1.0,
                        rate_on_first_cnp=1.0, alpha_period_ps=55_000_000, inc_period_ps=55_000_000,
                        dec_period_ps=50_000_000, byte_counter=10_000_000, fast_recovery=5, clamp_target=True),
    "dctcp": {"g": 1 / 16, "rai_bps": 615e6, "rmin_bps": 100e6, "initial_alpha": 1.0},
    "timely": {"alpha": 0.875, "beta": 0.8, "t_low_ps": 50_000_000, "t_high_ps": 500_000_000,
               "min_rtt_ps": 20_000_000, "rai_bps": 100e6, "rhai_bps": 500e6, "rmin_bps": 100e6, "hai_threshold": 5},
    "hpcc": {"eta": 0.95, "max_stage": 5, "rai_bps": 40e6, "rmin_bps": 100e6, "base_rtt_ps": None,
             "win_bytes": None, "int_multi": None, "fast_react": 1},
    "swift": {"ai": 1.0, "beta": 0.8, "max_mdf": 0.5, "base_target_ps": 20_000_000,
              "hop_scale_ps": 20_000_000 / 6.55, "fs_range_ps": 100_000_000, "fs_min_cwnd": 0.1,
              "fs_max_cwnd": 100.0, "min_cwnd_bytes": None, "max_cwnd_bytes": None},
    "nscc": {"network_rtt_ps": None, "target_qdelay_ps": None, "gamma": 0.8, "delay_alpha": 0.0125,
             "qa_gate": 3, "header_bytes": 64},
}


def model(cc: str) -> type[CCParams]:
    m = registry.load_class(cc).params_model()
    assert m is not None, f"{cc} declares no Params model"
    return m


# ------------------------------------------------------------------ defaults
@pytest.mark.parametrize("key", sorted(PREVIOUS))
def test_the_models_defaults_are_the_previous_defaults(key):
    cc, _, flavour = key.partition("-")
    kw = {"flavour": flavour} if flavour else {}
    obj = registry.create(cc, **kw)
    assert obj.params() == PREVIOUS[key]                 # values, and the keys in the same order
    assert list(obj.params()) == list(PREVIOUS[key])
    assert obj.defaults() == PREVIOUS[key]
    assert model(cc).defaults(**kw) == PREVIOUS[key]
    # a float default stays the float it was (config.json unchanged); ints stay ints
    for k, v in PREVIOUS[key].items():
        assert type(obj.params()[k]) is type(v) or (k == "fast_react" and obj.params()[k] is True), (k, v)


def test_class_level_defaults_are_the_default_flavour():
    assert registry.load_class("dcqcn").defaults() == PREVIOUS["dcqcn-nvidia"]
    assert registry.load_class("timely").defaults() == PREVIOUS["timely"]


# ------------------------------------------------------------------ bounds = the C twin's
_NEED = re.compile(r'CC_NEED\((.*?),\s*(\d+),\s*("(?:[^"\\]|\\.)*"|CC_RULE_RATE)\);')


def c_rules(cc: str) -> dict[int, set[str]]:
    """The words of each CC_NEED of native/<cc>.c validate(), by parameter index (DCQCN has two
    for dec_period_ps, one per flavour)."""
    src = (REPO / "native" / f"{cc}.c").read_text()
    body = src[src.index("static const char *validate("):]
    body = body[:body.index("\n}\n")]
    out: dict[int, set[str]] = {}
    for _, idx, words in _NEED.findall(body):
        out.setdefault(int(idx), set()).add(RULE_RATE if words == "CC_RULE_RATE" else json.loads(words))
    assert out, f"no CC_NEED in native/{cc}.c"
    return out


@pytest.mark.parametrize("cc", [c for c in BUILTINS if c != "none"])
def test_every_bound_is_the_c_twins(cc):
    """Each C rule has a model rule with the same words, for the same parameter, in the same
    order; the C twin's 0/1 rules are the model's flags (a strict bool) and DCQCN's flavour."""
    kind = registry.load_class(cc).c_kind
    names = cc_param_names(kind)
    m = model(cc)
    selections = [{"flavour": "nvidia"}, {"flavour": "paper"}] if cc == "dcqcn" else [{}]
    wanted = c_rules(cc)
    seen: dict[int, set[str]] = {}
    for sel in selections:
        rules = m.rules(m.defaults(**sel))
        idx = [names.index(n) for n, _, _ in rules]
        assert idx == sorted(idx), f"{cc}: the model's rules are not in the C block's order: {idx}"
        for n, _, words in rules:
            seen.setdefault(names.index(n), set()).add(words)
    for i, words in wanted.items():
        name = names[i]
        if words <= {"0 or 1", "0 (paper) or 1 (nvidia)"}:
            assert m.specs[name].kind in ("bool", "choice"), (cc, name)
            continue
        assert seen.get(i) == words, (cc, name, seen.get(i), words)
    assert set(seen) <= set(wanted), f"{cc}: rules the C twin lacks: {set(seen) - set(wanted)}"
    assert set(m.model_fields) == set(names), (cc, set(m.model_fields) ^ set(names))


def test_dcqcn_dec_period_bound_depends_on_the_flavour():
    """native/dcqcn.c: nvidia (a period) needs >= 1 ps, paper (unused) >= 0."""
    registry.create("dcqcn", flavour="paper", dec_period_ps=0)
    with pytest.raises(ValueError, match=r"^dcqcn: cc_params\.dec_period_ps must be in \[1, 1e\+15\] ps, got 0$"):
        registry.create("dcqcn", flavour="nvidia", dec_period_ps=0)


# ------------------------------------------------------------------ units and types
UNIT_CASES = [  # (cc, parameter, as written, expected value in the base unit: controlplane/config/units.py)
    ("dcqcn", "rai_bps", "40M", 40_000_000), ("dcqcn", "rmin_bps", "1Gbps", 10**9),
    ("dcqcn", "alpha_period_ps", "1us", 1_000_000), ("dcqcn", "inc_period_ps", "0.3ms", 300_000_000),
    ("dcqcn", "byte_counter", "10MB", 10_000_000), ("dcqcn", "byte_counter", "16MiB", 16 * 2**20),
    ("dctcp", "rai_bps", "615Mbps", 615_000_000), ("timely", "t_low_ps", "40us", 40_000_000),
    ("timely", "min_rtt_ps", "500ns", 500_000), ("hpcc", "base_rtt_ps", "8us", 8_000_000),
    ("hpcc", "win_bytes", "100KB", 100_000), ("swift", "hop_scale_ps", "3us", 3_000_000),
    ("swift", "base_target_ps", "25us", 25_000_000), ("swift", "max_cwnd_bytes", "200KB", 200_000),
    ("nscc", "network_rtt_ps", "12us", 12_000_000), ("nscc", "header_bytes", "64B", 64),
    ("dcqcn", "rai_bps", 40e6, 40_000_000), ("timely", "t_low_ps", 4e7, 40_000_000),
]


@pytest.mark.parametrize("cc,name,text,expected", UNIT_CASES)
def test_unit_strings_are_accepted_and_converted_exactly(cc, name, text, expected):
    obj = registry.create(cc, **{name: text})
    assert obj.params()[name] == expected and type(obj.params()[name]) is int
    assert model(cc).typed(name, text) == expected


def _fields(kinds):
    return [(cc, n) for cc in BUILTINS if cc != "none" for n, s in model(cc).specs.items() if s.kind in kinds]


@pytest.mark.parametrize("cc,name", _fields({"rate", "size", "time", "count", "real", "real_time", "real_size"}))
@pytest.mark.parametrize("bad", [True, False, float("nan"), math.inf, -math.inf, "lots", [1]])
def test_a_number_parameter_refuses_bools_nan_inf_and_text_naming_it(cc, name, bad):
    with pytest.raises(ValueError) as e:
        registry.create(cc, **{name: bad})
    msg = str(e.value)
    assert msg.startswith(f"{cc}: cc_params.{name} must be ") and "\n" not in msg, msg


@pytest.mark.parametrize("cc,name", _fields({"time", "rate", "size", "count"}))
@pytest.mark.parametrize("bad", [1.5, 2_000_000.25, "1.5ps"])
def test_a_whole_number_parameter_refuses_fractions(cc, name, bad):
    """Times in ps, rates, sizes and counts are whole numbers: refused, never rounded (1.5 bit/s,
    1.5 ps are not a whole number of the base unit; '1.5ps' is a time string, refused where a
    rate or a size is expected too)."""
    with pytest.raises(ValueError) as e:
        registry.create(cc, **{name: bad})
    assert str(e.value).startswith(f"{cc}: cc_params.{name} must be "), str(e.value)


@pytest.mark.parametrize("cc,name", _fields({"bool"}))
@pytest.mark.parametrize("bad", [0, 1, 1.0, "yes", "true", None])
def test_a_flag_is_a_strict_bool(cc, name, bad):
    with pytest.raises(ValueError, match=rf"^{cc}: cc_params\.{name} must be a bool"):
        registry.create(cc, **{name: bad})
    assert registry.create(cc, **{name: False}).params()[name] is False


@pytest.mark.parametrize("cc", [c for c in BUILTINS if c != "none"])
def test_unknown_names_suggest_the_closest(cc):
    for name in model(cc).model_fields:
        typo = name[:-1] if len(name) > 3 else name + "x"
        if typo in model(cc).model_fields:
            continue
        with pytest.raises(ValueError) as e:
            registry.create(cc, **{typo: 1})
        msg = str(e.value)
        assert msg.startswith(f"{cc}: unknown parameter cc_params.{typo} (closest: ") and name in msg, msg
    with pytest.raises(ValueError, match=r"^none: unknown parameter cc_params\.g; known: none"):
        registry.create("none", g=0.5)


def test_fabric_parameters_are_optional_until_bind_and_checked_then():
    h = registry.create("hpcc")
    assert h.params()["base_rtt_ps"] is None
    h.bind(dict(FACTS))
    assert h.params()["base_rtt_ps"] == 8_000_000 and h.params()["int_multi"] == 4
    bad = registry.create("hpcc")
    with pytest.raises(ValueError, match=r"^hpcc: cc_params\.int_multi must be in \[1, 64\], got 100$"):
        bad.bind({**FACTS, "int_multi": 100})
    # the value as the C twin prints it (%g), and as written
    with pytest.raises(ValueError, match=r"^timely: cc_params\.t_high_ps must be > t_low_ps, got 4e\+07 \(from '40us'\)$"):
        registry.create("timely", t_low_ps="50us", t_high_ps="40us")


# ------------------------------------------------------------------ the older plug-in API
class OldStyle(CongestionControl):
    """A plug-in written before the models: defaults() and param_rules() only."""
    name = "old_style"
    events = frozenset({"start"})

    @classmethod
    def defaults(cls):
        return {"rate_bps": 10e9, "flag": 1, "min_bps": 1e9}

    def param_rules(self):
        return [("rate_bps", lambda v, p: v >= p["min_bps"], ">= min_bps"),
                ("flag", lambda v, p: v in (0.0, 1.0), "0 or 1"),
                ("min_bps", lambda v, p: v >= MIN_RATE_BPS, RULE_RATE)]

    def on_start(self, st, ev):
        ev.rate_bps = self._params["rate_bps"]


class OldOverBuiltin(registry.load_class("timely")):
    """A plug-in that subclasses a built-in and declares its parameters the old way: its own
    defaults() wins over the inherited model (the nearest declaration in the class hierarchy)."""
    name = "old_over_timely"

    @classmethod
    def defaults(cls):
        return {**registry.load_class("timely").Params.defaults(), "extra": 2}


def test_an_old_style_plugin_works_unchanged(tmp_path):
    assert OldStyle.params_model() is None
    o = OldStyle(rate_bps=5e9)
    assert o.params() == {"rate_bps": 5e9, "flag": 1, "min_bps": 1e9} and o.defaults() == OldStyle.defaults()
    assert [r[0] for r in o.param_rules()] == ["rate_bps", "flag", "min_bps"]
    OldStyle(flag=True)                                            # bools are 0 and 1, as before
    with pytest.raises(ValueError, match=r"^old_style: cc_params\.rate_bps must be >= min_bps, got 5e\+08$"):
        OldStyle(rate_bps=5e8)
    with pytest.raises(ValueError, match=r"^old_style: cc_params\.flag must be a finite number, got NaN$"):
        OldStyle(flag=float("nan"))
    with pytest.raises(ValueError, match=r"^old_style: unknown parameter cc_params\.rate_bp \(closest: rate_bps\)"):
        OldStyle(rate_bp=1)
    # it runs, by file, with a parameter given with a unit on the command line (typed by name suffix)
    f = tmp_path / "old_style.py"
    f.write_text("from tests.test_cc_models import OldStyle\n")
    spec = f"{f}:OldStyle"
    from experiments import incast
    _, over = parse_sets(["cc_params.rate_bps=20G"], incast, cc=spec)
    assert over == {"cc_params.rate_bps": 20_000_000_000}
    r = Scenario(cc=spec, cc_params={"rate_bps": 20e9}, topology=star(2), sample_interval_ps=0,
                 workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": 100_000}]}).run()
    assert r.counters["msgs_completed"] == 1
    schema = cc_schema(spec)
    assert set(schema["properties"]) == {"rate_bps", "flag", "min_bps"} and schema["additionalProperties"] is False
    # a built-in's subclass declaring the old way is old-style: its own defaults, no model
    assert OldOverBuiltin.params_model() is None and OldOverBuiltin().params()["extra"] == 2


def test_a_plugin_declaring_params_gets_units_bounds_and_schema(tmp_path):
    f = tmp_path / "new_style.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "from congestion.params import CCParams, Rate, Time\n"
                 "class NewStyle(CongestionControl):\n"
                 "    name = 'new_style'\n"
                 "    events = frozenset({'start'})\n"
                 "    class Params(CCParams):\n"
                 "        rate_bps: Rate('fixed rate', floor=True) = 10e9\n"
                 "        hold_ps: Time('a period', ge=1_000_000) = 20_000_000\n"
                 "    def on_start(self, st, ev):\n"
                 "        ev.rate_bps = self._params['rate_bps']\n")
    spec = f"{f}:NewStyle"
    cls = registry.load_class(spec)
    assert cls(rate_bps="25G", hold_ps="2us").params() == {"rate_bps": 25 * 10**9, "hold_ps": 2_000_000}
    with pytest.raises(ValueError, match=r"^new_style: cc_params\.hold_ps must be >= 1e\+06, got 1000 \(from '1ns'\)$"):
        cls(hold_ps="1ns")
    from experiments import incast
    _, over = parse_sets(["new_style.hold_ps=5us", "cc_params.rate_bps=40G"], incast, cc=spec)
    assert over == {"new_style.hold_ps": 5_000_000, "cc_params.rate_bps": 40_000_000_000}
    s = cc_schema(spec)
    assert s["properties"]["hold_ps"]["anyOf"][0]["minimum"] == 1_000_000
    jsonschema.validate({"rate_bps": "25G", "hold_ps": 2_000_000}, s)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"rate_bps": 25e9, "hold": 1}, s)


def test_a_params_field_without_a_kind_is_refused_at_class_creation():
    with pytest.raises(TypeError, match=r"declare it with Rate, Time"):
        class Bad(CCParams):
            x: int = 1
    with pytest.raises(TypeError, match=r"give it a default"):
        class NoDefault(CCParams):
            x: Rate("a rate", ge=0)
    with pytest.raises(TypeError, match=r"give it a default"):
        class NoDefault2(CCParams):
            t: Time("a time", gt=0, fabric=True)


def test_the_example_plugin_declares_params():
    from experiments.plugins.ecn_aimd import EcnAimd
    assert EcnAimd.params_model() is EcnAimd.Params
    assert EcnAimd().params() == {"step_bps": 2e9, "period_ps": 20_000_000, "hold_ps": 20_000_000, "min_bps": 1e9}


# ------------------------------------------------------------------ command line
def test_the_command_line_types_cc_parameters_through_the_model():
    from experiments import cc_compare, incast
    _, over = parse_sets(["dcqcn.rai_bps=40M", "dcqcn.byte_counter=10MB", "dcqcn.clamp_target=yes",
                          "cc_params.t_low_ps=40us", "cc_params.fast_react=off", "hpcc.base_rtt_ps=none"],
                         cc_compare)
    assert over == {"dcqcn.rai_bps": 40_000_000, "dcqcn.byte_counter": 10_000_000, "dcqcn.clamp_target": True,
                    "cc_params.t_low_ps": 40_000_000, "cc_params.fast_react": False, "hpcc.base_rtt_ps": None}
    cases = [  # (--set, the one-line message: the key as typed, the CC, what was expected, what was given)
        ("dcqcn.rai_bps=-1", "dcqcn.rai_bps must be >= 0, got -1"),
        ("dcqcn.alpha_period_ps=1.5ps", "dcqcn.alpha_period_ps must be a time in ps"),
        ("dcqcn.g=nan", "dcqcn.g must be a finite number, got nan"),
        ("cc_params.rmin_bps=500K", "dcqcn: cc_params.rmin_bps must be >= 1e+06 (the rate floor, 1 Mb/s), got "
                                    "500000 (from '500K')"),
        ("cc_params.rto_ps=1ms", "rto_ps is a scenario field: --set rto_ps=..."),
        ("dcqcn.rai_bsp=1", "closest: rai_bps"),
    ]
    for item, words in cases:
        with pytest.raises(ValueError) as e:
            parse_sets([item], incast)
        assert words in str(e.value) and "\n" not in str(e.value), (item, str(e.value))


def test_the_cli_prints_one_line_for_a_bad_cc_parameter(capsys):
    from controlplane.run.cli import main
    assert main(["run", "incast", "--set", "dcqcn.inc_period_ps=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "softdpu: dcqcn.inc_period_ps must be in [1, 1e+15] ps, got 0", err


# ------------------------------------------------------------------ JSON Schema
def test_softdpu_schema_validates_cc_params_per_cc(capsys):
    from controlplane.run.cli import main
    assert main(["schema"]) == 0
    s = json.loads(capsys.readouterr().out)
    v = jsonschema.validators.validator_for(s)(s)
    good = [{"cc": "dcqcn", "cc_params": {"flavour": "paper", "rai_bps": "40M", "byte_counter": "10MB"}},
            {"cc_params": {"flavour": "paper"}},                           # cc absent: the default, dcqcn
            {"cc": "timely", "cc_params": {"t_low_ps": "40us"}},
            {"cc": "hpcc", "cc_params": {"base_rtt_ps": None, "fast_react": False}},
            {"cc": "my_cc.py:Mine", "cc_params": {"anything": 1}}]        # a plug-in checks its own
    bad = [{"cc": "dcqcn", "cc_params": {"rai_bps": -1}},
           {"cc": "dcqcn", "cc_params": {"rai_bsp": 1}},
           {"cc": "timely", "cc_params": {"flavour": "paper"}},
           {"cc_params": {"g": 2}},
           {"cc": "none", "cc_params": {"g": 0.5}},
           {"cc": "hpcc", "cc_params": {"fast_react": 1}}]
    for d in good:
        assert not list(v.iter_errors(d)), (d, [e.message for e in v.iter_errors(d)])
    for d in bad:
        assert list(v.iter_errors(d)), d
    for cc in BUILTINS:
        assert f"cc_params_{cc}" in s["$defs"]


@pytest.mark.parametrize("cc", BUILTINS)
def test_schema_cc_prints_one_ccs_parameters(cc, capsys):
    from controlplane.run.cli import main
    assert main(["schema", "--cc", cc]) == 0
    s = json.loads(capsys.readouterr().out)
    m = model(cc)
    assert set(s.get("properties", {})) == set(m.model_fields) and s["additionalProperties"] is False
    for sel in ([{"flavour": "nvidia"}, {"flavour": "paper"}] if cc == "dcqcn" else [{}]):
        jsonschema.validate(m.defaults(**sel), s)                      # the defaults are valid
    for name, spec in m.specs.items():
        p = s["properties"][name]
        assert spec.description in p["description"]
        if spec.unit:
            assert f"({spec.unit})" in p["description"]


# ------------------------------------------------------------------ generated parameter dicts
def _values():
    return st.one_of(st.integers(-10**18, 10**18), st.floats(allow_nan=True, allow_infinity=True),
                     st.booleans(), st.none(), st.sampled_from(["40M", "1us", "16MB", "1.5ps", "paper", "nvidia", "", "x"]),
                     st.lists(st.integers(), max_size=2))


@st.composite
def param_dicts(draw):
    cc = draw(st.sampled_from(BUILTINS[1:]))
    names = list(model(cc).model_fields)
    keys = draw(st.lists(st.one_of(st.sampled_from(names), st.sampled_from(["bogus", names[0] + "x"])),
                         max_size=4, unique=True))
    d = {}
    for k in keys:
        base = model(cc).defaults().get(k)
        if draw(st.booleans()) and isinstance(base, (int, float)) and not isinstance(base, bool):
            d[k] = draw(st.sampled_from([base, base * 2, base / 2, -base, 0, 1]))   # near the default
        else:
            d[k] = draw(_values())
    return cc, d


ONE_LINE = re.compile(r"^(\w+): (cc_params\.(\w+) (must|: )|unknown parameters? cc_params\.(\w+))")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(param_dicts())
def test_generated_parameter_dicts_validate_or_name_the_parameter(case):
    """Either the CC takes the dict (and, bound to a fabric, its C twin takes the block too), or
    one line names ``cc_params.<name>`` of a parameter the dict gave (or an unknown one)."""
    cc, d = case
    try:
        obj = registry.create(cc, **d)
        obj.bind(dict(FACTS))
    except ValueError as e:
        msg = str(e)
        m = ONE_LINE.match(msg)
        assert m and "\n" not in msg, msg
        assert m.group(1) == cc
        name = m.group(3) or m.group(5)
        spec = model(cc).specs.get(name)
        # a parameter the dict gave; or one a given parameter's rule compares with (the C twin
        # names fs_max_cwnd when fs_min_cwnd=100 leaves the default 100 not above it); or one
        # bind() computed from the fabric and the given ones
        assert (name in d or (spec is not None and (spec.gt_field in d or spec.fabric))), (msg, d)
        return
    sim = Simulator(num_hosts=2, num_switches=0, max_links=1)
    sim.add_cc_params(obj.c_kind, obj.c_params())            # the C twin agrees: no ValueError


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(param_dicts())
def test_generated_parameter_dicts_run_or_are_refused_cleanly(case):
    """A scenario with generated cc_params ends: refused naming the parameter, or run to the end
    (or to its event budget, or stopped by the CC naming itself) with conservation holding."""
    cc, d = case
    sc = dict(topology=star(3), cc=cc, cc_params=d, sample_interval_ps=0, max_events=300_000,
              workload={"kind": "incast", "senders": 2, "size_bytes": 64_000})
    try:
        r = Scenario(**sc).run()
    except ValueError as e:
        assert re.match(rf"^{cc}: (cc_params\.\w+|unknown parameter)", str(e)) and "\n" not in str(e), str(e)
        return
    except (BudgetExceeded, CCPluginError) as e:
        assert cc in str(e) or "budget" in str(e).lower() or "max_events" in str(e), str(e)
        return
    assert r.counters["conservation_ok"] == 1


def test_cc_parameters_with_units_from_a_config_file(tmp_path):
    """``softdpu run EXP --config FILE``: cc_params in JSON or TOML take units too, typed by the
    CC's model like --set (the file's keys become --set items, controlplane/run/cli.py config_items)."""
    from controlplane.run.cli import config_items
    from experiments import cc_compare
    toml = tmp_path / "run.toml"
    toml.write_text('ccs = ["timely", "dcqcn"]\n[cc_params]\nt_low_ps = "40us"\nrai_bps = "40M"\n')
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"ccs": ["dcqcn"], "cc_params": {"alpha_period_ps": "2us", "clamp_target": True}}))
    _, over = parse_sets(config_items(str(toml), cc_compare), cc_compare)
    assert over == {"cc_params.t_low_ps": 40_000_000, "cc_params.rai_bps": 40_000_000}
    _, over = parse_sets(config_items(str(js), cc_compare), cc_compare)
    assert over == {"cc_params.alpha_period_ps": 2_000_000, "cc_params.clamp_target": True}
    js.write_text(json.dumps({"ccs": ["dcqcn"], "cc_params": {"alpha_period_ps": 0.5}}))
    with pytest.raises(ValueError, match=r"^dcqcn: cc_params\.alpha_period_ps must be a time in ps"):
        parse_sets(config_items(str(js), cc_compare), cc_compare)
