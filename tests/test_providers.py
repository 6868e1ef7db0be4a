"""The two provider extension points, queue disciplines and path policies, are "one C file, one
registration line, one config model" (issue #14; docs/extending.md): the registration lists in
native/qdisc.h and native/paths.h are the C registries, dataplane/build.py compiles every provider
file, and the Python config models match what the C providers declare, name by name and kind by
kind. The per-QP path parameters are set by name through one generic setter."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from controlplane.fabric import qdisc as qdisc_cfg
from controlplane.transport import multipath
from dataplane import build
from controlplane.config.schema import Int, Num
from dataplane.sim import (PATH_PARAMS, PATH_POLICIES, QDISC_KINDS, QdiscParam, Simulator, ffi, lib,
                           path_policy_param_kinds, path_policy_params, qdisc_param_decls, qdisc_params)

NATIVE = Path(__file__).resolve().parent.parent / "native"


def registered(header: str, macro: str) -> list[str]:
    """The names of the X(...) lines of ``#define macro(X)`` in a native header, in order."""
    text = (NATIVE / header).read_text()
    body = re.search(rf"#define {macro}\(X\)(.*?)(?<!\\)\n(?!\s*X\()", text, re.S)
    assert body, f"{header}: no #define {macro}(X)"
    return re.findall(r"\bX\((\w+)\)", body.group(1))


# ------------------------------------------------------------------ registration = one line
def test_the_registration_lines_are_the_c_registries():
    """The registries the data plane reports (sd_qdisc_name, sd_path_policy_name) are exactly the
    X(...) lines of native/qdisc.h and native/paths.h, in their order (the indices)."""
    assert list(QDISC_KINDS) == registered("qdisc.h", "SD_QDISCS")
    assert list(PATH_POLICIES) == registered("paths.h", "SD_PATH_POLICIES")
    assert [PATH_POLICIES[n] for n in PATH_POLICIES] == list(range(len(PATH_POLICIES)))
    # the two disciplines sd_set_queue installs keep their public indices (softdpu.h)
    assert QDISC_KINDS.index("drop_tail") == lib.SD_QDISC_DROP_TAIL
    assert QDISC_KINDS.index("red_ecn") == lib.SD_QDISC_RED_ECN


def test_build_compiles_every_provider_file():
    """A new native/qdisc_<name>.c or path_<name>.c needs no edit of dataplane/build.py."""
    providers = {p.name for p in NATIVE.glob("qdisc_*.c")} | {p.name for p in NATIVE.glob("path_*.c")}
    assert providers and providers <= set(build.SOURCES)
    assert len(build.SOURCES) == len(set(build.SOURCES))


def test_no_kind_list_is_written_out_in_python_or_the_public_header():
    """The Python side discovers the kinds from the C registry; the public header has no enum that
    lists them (only the two fixed indices of sd_set_queue)."""
    header = (NATIVE / "softdpu.h").read_text()
    for kind in QDISC_KINDS:
        assert f"SD_QDISC_{kind.upper()} " not in header or kind in ("drop_tail", "red_ecn")
    assert "SD_NUM_QDISC" not in header
    assert "SD_QDISC_TC" not in header and "SD_QDISC_CODEL_ECN" not in header


# ------------------------------------------------------------------ config model = the C declaration
def test_qdisc_config_models_match_the_c_registry():
    """One model per C discipline; a pass-through model's keys are its provider's parameters in
    order (codel_ecn, drop_tail); the section is the union of the models' keys."""
    assert set(qdisc_cfg.MODELS) == set(QDISC_KINDS)
    assert set(qdisc_cfg.KINDS) == set(QDISC_KINDS)
    for kind, model in qdisc_cfg.MODELS.items():
        if model.passthrough:
            assert list(model.model_fields) == qdisc_params(kind), kind
    assert qdisc_cfg.MODELS["codel_ecn"].passthrough and qdisc_cfg.MODELS["drop_tail"].passthrough
    union = {k for m in qdisc_cfg.MODELS.values() for k in m.model_fields} | {"kind"}
    assert set(qdisc_cfg.Qdisc.model_fields) == union


# The declarations of native/qdisc.c, qdisc_codel.c and qdisc_tc.c (units: bytes and ps; 1e15 is
# CC_MAX_BYTES / CC_MAX_PS of native/sim.h; RED's pmax is a probability above 0, DCQCN's CP; a DWRR
# quantum is at least one minimum frame and 0 makes the class strict). DBL_TRUE_MIN: (0, 1] closed.
DBL_TRUE_MIN = math.ulp(0.0)
BYTES = dict(kind="int", lo=0, hi=1e15, rule="in [0, 1e15] bytes", zero_off=False)
DECLARED = {
    "drop_tail": (),
    "red_ecn": (QdiscParam("kmin_bytes", **BYTES), QdiscParam("kmax_bytes", **BYTES),
                QdiscParam("pmax", "real", DBL_TRUE_MIN, 1, "in (0, 1]", False)),
    "codel_ecn": (QdiscParam("target_ps", "int", 1, 1e15, "in [1, 1e15] ps", False),
                  QdiscParam("interval_ps", "int", 1, 1e15, "in [1, 1e15] ps", False),
                  QdiscParam("maxpacket_bytes", **BYTES)),
    "traffic_class": tuple(QdiscParam(f"quantum_{c}", "int", 64, 1e9, "in [64, 1e9] bytes or 0 (strict priority)", True)
                           for c in range(8))
    + tuple(QdiscParam(f"kmin_{c}", **BYTES) for c in range(8)) + tuple(QdiscParam(f"kmax_{c}", **BYTES) for c in range(8))
    + tuple(QdiscParam(f"pmax_{c}", "real", 0, 1, "in [0, 1]", False) for c in range(8)),
}


def test_qdisc_declarations_are_what_python_reads():
    """Every discipline's parameters as C declares them (name, kind, closed range, rule, 0 as off),
    read through sd_qdisc_param_name / _kind / _range / _rule, in the order sd_set_qdisc takes them;
    past the last parameter and for an unknown kind the discovery calls say so."""
    assert set(DECLARED) == set(QDISC_KINDS)
    for kind, want in DECLARED.items():
        assert qdisc_param_decls(kind) == want, kind
        n = len(want)
        lo, hi = ffi.new("double *"), ffi.new("double *")
        assert lib.sd_qdisc_param_name(kind.encode(), n) == ffi.NULL
        assert lib.sd_qdisc_param_rule(kind.encode(), n) == ffi.NULL
        assert lib.sd_qdisc_param_range(kind.encode(), n, lo, hi) == -1
        assert lib.sd_qdisc_param_kind(kind.encode(), n) == 0
    assert qdisc_param_decls("pie") is None
    assert lib.sd_qdisc_param_range(b"pie", 0, ffi.new("double *"), ffi.new("double *")) == -1
    # the source text of the non-generated declarations says the same (traffic_class builds its
    # 32 from one line per kind of parameter: checked by the table above)
    entry = re.compile(r'\{"(\w+)", SD_QDISC_PARAM_(INT|REAL), ([^,]+), ([^,]+), "([^"]*)", ([01])\}')
    consts = {"CC_MAX_BYTES": 1e15, "CC_MAX_PS": 1e15, "DBL_TRUE_MIN": DBL_TRUE_MIN}
    for kind, src, table in (("red_ecn", "qdisc.c", "red_params"), ("codel_ecn", "qdisc_codel.c", "codel_params")):
        text = (NATIVE / src).read_text()
        body = re.search(rf"^static const qdisc_param {table}\[\] = \{{(.*?)\{{NULL", text, re.S | re.M)
        assert body, f"{src}: no {table}"
        found = tuple(QdiscParam(m[0], m[1].lower(), consts.get(m[2]) or float(m[2]), consts.get(m[3]) or float(m[3]),
                                 m[4], m[5] == "1") for m in entry.findall(body.group(1)))
        assert found == DECLARED[kind], kind


def test_qdisc_models_agree_with_the_c_declarations():
    """A pass-through model's field is of its parameter's kind and accepts only what C accepts:
    the model's own extreme values (all lowest, all highest) pass the model and then the data
    plane, and the step beyond each is refused by the model."""
    from controlplane.config.schema import section
    sim, _ = _sim_with_qp()
    for kind, model in qdisc_cfg.MODELS.items():
        if not model.passthrough:
            continue
        props = model.model_json_schema()["properties"] if model.model_fields else {}
        ranges = {k: qdisc_cfg._field_range(v) for k, v in props.items()}
        assert {k: r[0] for k, r in ranges.items()} == {d.name: d.kind for d in qdisc_param_decls(kind)}, kind
        for end in (1, 2):                                # every field at its lowest, then its highest
            given = {k: int(r[end]) if r[0] == "int" else r[end] for k, r in ranges.items()}
            section(model, given, "qdisc")
            sim.set_qdisc(1, 1, kind, **given)
            assert sim.qdisc_of(1, 1) == kind
            for k, r in ranges.items():                   # one step beyond: the model refuses it
                beyond = r[end] - 1 if end == 1 else r[end] + 1
                with pytest.raises(ValueError, match=f"qdisc.{k}"):
                    section(model, {**given, k: int(beyond)}, "qdisc")
    # traffic_class's model is not a pass-through one; its per-class quantum bounds are C's
    q = qdisc_cfg.TrafficClass.model_json_schema()["properties"]["quantum_bytes"]
    decl = next(d for d in qdisc_param_decls("traffic_class") if d.name == "quantum_0")
    assert qdisc_cfg._field_range(q)[1:] == (decl.lo, decl.hi)


def test_a_model_whose_kind_or_bounds_drift_from_c_is_refused_at_import():
    """A pass-through model with the right names but a real field for an integer parameter, a
    lower bound below C's, or no upper bound (C's is 1e15) would let the data plane refuse what the
    config accepted: _union, what runs at import, refuses each, naming discipline and parameter."""
    base = {"target_ps": (Int("t", lo=1, hi=10**15) | None, None), "interval_ps": (Int("i", lo=1, hi=10**15) | None, None),
            "maxpacket_bytes": (Int("m", kind="size") | None, None)}

    def model(name, **fields):
        from pydantic import create_model
        m = create_model(name, __base__=qdisc_cfg.QdiscModel, **{**base, **fields})
        m.kind = "codel_ecn"                 # set after the class: defining it with kind would register it
        return m

    qdisc_cfg._union({**qdisc_cfg.MODELS, "codel_ecn": model("Agrees")})      # the base agrees with C
    for name, fields, words in [
        ("RealTarget", {"target_ps": (Num("t", lo=1, hi=1e15) | None, None)},
         "qdisc codel_ecn: the model RealTarget declares target_ps as real, its C provider as int"),
        ("ZeroTarget", {"target_ps": (Int("t", lo=0, hi=10**15) | None, None)},
         r"qdisc codel_ecn: the model ZeroTarget accepts target_ps in \[0, 1e\+15\], its C provider only in \[1, 1e15\] ps"),
        ("Unbounded", {"interval_ps": (Int("i", lo=1, kind="time") | None, None)},
         r"qdisc codel_ecn: the model Unbounded accepts interval_ps in \[1, inf\]"),
        ("Text", {"maxpacket_bytes": (str | None, None)},
         "qdisc codel_ecn: the model Text declares maxpacket_bytes as not a number, its C provider as int"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            qdisc_cfg._union({**qdisc_cfg.MODELS, "codel_ecn": model(name, **fields)})


def test_path_config_models_match_the_c_registry():
    """One model per C policy; its keys are what the provider declares, in order, and of the same
    kind (an integer field for SD_PATH_PARAM_INT, a number for SD_PATH_PARAM_REAL)."""
    assert set(multipath.POLICY_MODELS) == set(PATH_POLICIES)
    for name, model in multipath.POLICY_MODELS.items():
        assert tuple(model.model_fields) == path_policy_params(name)
        props = model.model_json_schema()["properties"] if model.model_fields else {}
        assert {k: multipath._schema_kind(v) for k, v in props.items()} == path_policy_param_kinds(name)
    assert set(multipath.PathParams.model_fields) == set(PATH_PARAMS)
    assert PATH_PARAMS == {"flowlet_gap_ps": "int", "plb_cong_thresh": "real", "plb_rehash_rounds": "int",
                           "plb_suspend_ps": "int"}


def test_a_model_that_drifts_from_its_provider_is_refused_at_import():
    """_union is what runs at import: a C kind without a model, a model without a C provider, and a
    pass-through model whose keys are not its provider's parameters each raise."""
    models = dict(qdisc_cfg.MODELS)
    del models["codel_ecn"]
    with pytest.raises(RuntimeError, match="without a config model.*codel_ecn"):
        qdisc_cfg._union(models)

    class Drifted(qdisc_cfg.QdiscModel):
        target_ps: int | None = None         # codel_ecn's provider takes three parameters
    Drifted.kind = "codel_ecn"
    with pytest.raises(RuntimeError, match="the model Drifted declares"):
        qdisc_cfg._union({**qdisc_cfg.MODELS, "codel_ecn": Drifted})
    with pytest.raises(RuntimeError, match="no C provider named 'pie'"):
        qdisc_cfg._union({**qdisc_cfg.MODELS, "pie": qdisc_cfg.MODELS["drop_tail"]})
    models = dict(multipath.POLICY_MODELS)
    del models["plb"]
    with pytest.raises(RuntimeError, match="without a config model.*plb"):
        multipath._union(models)


# ------------------------------------------------------------------ parameters by name
def _sim_with_qp() -> tuple[Simulator, int]:
    from controlplane.config.units import Gbps, us
    from controlplane.fabric import routing, topology
    routes = routing.compute_routes(topology.single_switch(2, Gbps(100), us(1)))
    sim = Simulator(num_hosts=2, num_switches=1, max_links=2, max_qps=4, max_msgs=2, pkt_pool=64)
    sim.add_links([0, 1], [2, 2], [Gbps(100)] * 2, [us(1)] * 2)
    sim.install_fib(routes.fib, routes.set_offsets, routes.set_ports)
    return sim, sim.create_qp_pair(0, 1, 49152)


def _error(sim) -> str:
    return ffi.string(lib.sd_last_error(sim._sim)).decode()


def test_generic_setter_sets_one_parameter_by_name_exactly():
    sim, qp = _sim_with_qp()
    assert lib.sd_path_params_ready(sim._sim, qp) == 0
    sim.set_path_params(qp)                                   # every name, the models' defaults
    assert lib.sd_path_params_ready(sim._sim, qp) == 1
    sim.set_paths(qp, "plb", [49152, 49153])
    # one name, an integer beyond a double's 53 bits: exact (the int member of the store)
    assert lib.sd_set_path_param(sim._sim, qp, b"plb_suspend_ps", 2**60 + 1, 0.0) == 0
    assert lib.sd_set_path_param(sim._sim, qp, b"plb_cong_thresh", 0, 0.125) == 0
    ps = sim.path_set(qp)
    assert ps.params["plb_suspend_ps"] == 2**60 + 1 and ps.params["plb_cong_thresh"] == 0.125
    assert ps.params["plb_rehash_rounds"] == 12              # untouched: Linux's tcp_plb_rehash_rounds
    st = sim.path_states[qp]
    assert int(st["plb_suspend_ps"]) == 2**60 + 1 and float(st["plb_cong_thresh"]) == 0.125
    # a new set of another policy finds the values given before (the store is by name)
    assert lib.sd_set_path_param(sim._sim, qp, b"flowlet_gap_ps", 777, 0.0) == 0
    sim.set_paths(qp, "clove", [49152, 49153])
    assert dict(sim.path_set(qp).params) == {"flowlet_gap_ps": 777}


@pytest.mark.parametrize("name, i, d, words", [
    (b"flowlet_gap", 1, 0.0, "unknown parameter 'flowlet_gap'; the policies read flowlet_gap_ps, plb_cong_thresh, "
                             "plb_rehash_rounds, plb_suspend_ps"),
    (b"flowlet_gap_ps", -1, 0.0, "flowlet_gap_ps must be >= 0 (0: every packet may take a new path), got -1"),
    (b"plb_cong_thresh", 0, 1.5, "plb_cong_thresh must be in [0, 1], got 1.5"),
    (b"plb_cong_thresh", 0, float("nan"), "plb_cong_thresh must be in [0, 1], got nan"),
    (b"plb_rehash_rounds", 0, 0.0, "plb_rehash_rounds must be in [1, 2^32 - 1], got 0"),
    (b"plb_rehash_rounds", 2**32, 0.0, "plb_rehash_rounds must be in [1, 2^32 - 1], got 4294967296"),
])
def test_generic_setter_checks_the_declared_range(name, i, d, words):
    sim, qp = _sim_with_qp()
    assert lib.sd_set_path_param(sim._sim, qp, name, i, d) == lib.SD_EINVAL
    assert _error(sim) == f"path_params: {words}"
    with pytest.raises(ValueError, match="path_params: unknown parameter"):
        sim.set_path_params(qp, flowlet_gap=5)


def test_the_four_argument_setter_checks_all_before_setting_any():
    """sd_set_path_params (kept for its callers) is atomic, as before: a bad last argument leaves
    the first three unset."""
    sim, qp = _sim_with_qp()
    assert lib.sd_set_path_params(sim._sim, qp, 7, 0.25, 3, -1) == lib.SD_EINVAL
    assert _error(sim) == "path_params: plb_suspend_ps must be >= 0, got -1"
    assert lib.sd_path_params_ready(sim._sim, qp) == 0
    st = sim.path_states
    assert len(st) == 0 or int(st[qp]["flowlet_gap_ps"]) == 0


def test_a_feedback_policy_needs_every_name_given():
    """Given all but one name, a policy that needs its parameters is still refused."""
    sim, qp = _sim_with_qp()
    for name, (i, d) in {"flowlet_gap_ps": (5, 0.0), "plb_cong_thresh": (0, 0.5), "plb_rehash_rounds": (3, 0.0)}.items():
        assert lib.sd_set_path_param(sim._sim, qp, name.encode(), i, d) == 0
    e = ffi.new("uint32_t[]", [49152, 49153])
    assert lib.sd_set_paths(sim._sim, qp, PATH_POLICIES["flowlet"], e, ffi.NULL, 2, 0) == lib.SD_EINVAL
    assert lib.sd_set_path_param(sim._sim, qp, b"plb_suspend_ps", 11, 0.0) == 0
    assert lib.sd_set_paths(sim._sim, qp, PATH_POLICIES["flowlet"], e, ffi.NULL, 2, 0) == 0
