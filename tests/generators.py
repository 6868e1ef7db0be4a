"""Generated inputs for the robustness properties of issue #12, and what each case did.

* scenario dicts drawn FROM the scenario's JSON Schema (``controlplane.config.schema.json_schema``, the
  schema ``softdpu schema`` prints) by hypothesis-jsonschema, with the sizes capped small
  (:func:`small_schema`) so that a valid case runs in milliseconds, and single mutations of them
  (:func:`mutated_scenarios`: wrong types, unit strings, out-of-range numbers, NaN/inf, unknown
  and misspelt keys, deleted keys, very large sizes);
* ``--pcap-filter`` strings (:func:`pcap_filters`);
* whole ``softdpu`` command lines for ``controlplane.run.cli.main`` (:func:`command_lines`): ``run EXP
  --set ...``, ``--config FILE``, ``--seed``, ``--cc``, ``--pcap``, ``--out`` (also unwritable),
  ``schema``, ``list``, ``plot`` on bad paths, ``--help``/``--version`` and stray tokens.

Each ``check_*`` function runs one case and returns an :class:`Outcome`: a clean rejection naming
a field, a run that ended (completed, or stopped by its budget) with conservation holding
(packets sent = delivered + dropped + in flight), or ``internal`` (a defect: an exception from
inside the code, a rejection that names no field, a traceback, broken conservation).
tests/test_generated.py checks a few dozen cases per property; tests/campaign.py runs the same
generators for minutes, each case under a hard timeout.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import traceback
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st

US = 1_000_000                       # ps
#: the budget every generated run gets (the schema caps max_events and max_wall_s to these)
MAX_EVENTS = 100_000
MAX_WALL_S = 5.0
MAX_DURATION_PS = 50 * US


def _int(lo: int, hi: int) -> dict:
    return {"type": "integer", "minimum": lo, "maximum": hi}


#: property name -> the schema used to generate it (valid values, capped small). The schema's own
#: bounds are wider; the mutations below go beyond both.
SMALL = {
    "num_hosts": _int(1, 8), "num_left": _int(1, 4), "num_right": _int(1, 4), "num_leaves": _int(1, 3),
    "num_spines": _int(1, 3), "hosts_per_leaf": _int(1, 3), "k": _int(2, 4), "num_rails": _int(1, 2),
    "servers_per_leaf": _int(1, 3), "leaves_per_rail": _int(1, 2), "spines_per_rail": _int(1, 2),
    "cores_per_group": _int(1, 2), "planes": _int(1, 2), "senders": _int(1, 4), "receiver": _int(0, 8),
    "src": _int(0, 8), "dst": _int(0, 8), "conn": {"anyOf": [_int(0, 4), {"type": "null"}]},
    "tenants": _int(1, 4), "vfs_per_host": _int(1, 4), "pkt_pool": {"anyOf": [_int(1, 1 << 16), {"type": "null"}]},
    "trace": _int(0, 1000), "entries": _int(0, 4096), "max_outstanding": _int(0, 64),
    "reorder_window": _int(64, 4096), "rto_low_pkts": _int(0, 64), "plb_rehash_rounds": _int(1, 64),
    "ack_interval": _int(1, 64), "size_bytes": _int(1, 1 << 16), "mtu_payload": _int(64, 9000),
    "duration_ps": {"anyOf": [_int(1, MAX_DURATION_PS), {"type": "null"}]},
    "max_duration_ps": _int(1, MAX_DURATION_PS), "max_events": _int(1, MAX_EVENTS),
    "max_wall_s": {"type": "number", "minimum": 0.05, "maximum": MAX_WALL_S},
    "cc_params": {"type": "object", "maxProperties": 0}, "vswitch": {"type": "object", "maxProperties": 0},
    "slow_path": {"type": "object", "maxProperties": 0},
    "tax": {"anyOf": [{"type": "object", "maxProperties": 0}, {"type": "null"}]},
    "cdf": {"enum": ["websearch", "fb_hadoop", "no_such_cdf"]},
    "path": {"enum": ["no/such/file.pcap", "/", "/etc/hostname"]},
    "name": {"type": "string", "maxLength": 12},
}
#: realistic spellings with a unit, for the fields that take one (the schema's pattern allows any
#: number followed by letters; the mutations try the odd ones)
UNIT_EXAMPLES = {"_bps": ["100G", "100Gbps", "25Gbps", "400G", "10 Gb/s"], "_bytes": ["16MB", "16MiB", "4KiB", "64KB", "1500"],
                 "_ps": ["500ns", "1us", "2ms", "100ns", "1.5us"]}
MAX_ITEMS = {"flows": 4, "failures": 2, "path_weights": 4, "monitor_ports": 4, "hosts": 4, "ar_classes": 3}


@lru_cache(maxsize=None)
def cc_names() -> tuple[str, ...]:
    from congestion import registry
    return tuple(c.name for c in registry.available() if c.error is None)


@lru_cache(maxsize=None)
def small_schema() -> str:
    """``json_schema()`` with the sizes of SMALL and MAX_ITEMS and ``cc`` one of the registered
    names (as JSON text, so that the cache cannot be modified)."""
    from controlplane.config.schema import json_schema
    schema = copy.deepcopy(json_schema())

    def walk(node):
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for k, v in props.items():
                    suffix = next((x for x in UNIT_EXAMPLES if k.endswith(x)), None)
                    if suffix and k not in SMALL:
                        _unit_examples(v, UNIT_EXAMPLES[suffix])
                    if k == "hosts" and "array" in json.dumps(v):
                        _int_items(v, 0, 8)
                    if k in SMALL:
                        props[k] = {**{x: v[x] for x in ("title", "description") if x in v}, **SMALL[k]}
                    if k in MAX_ITEMS:
                        _cap_items(props[k], MAX_ITEMS[k])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    schema["properties"]["cc"] = {"enum": list(cc_names())}
    return json.dumps(schema)


def _unit_examples(node, examples: list[str]) -> None:
    """The string-with-a-unit branch of a field's schema becomes a choice of realistic spellings."""
    for branch in node.get("anyOf", []):
        if branch.get("type") == "string" and "pattern" in branch:
            branch.clear()
            branch["enum"] = list(examples)


def _int_items(node, lo: int, hi: int) -> None:
    if isinstance(node, dict):
        if node.get("type") == "array" and isinstance(node.get("items"), dict) and node["items"].get("type") == "integer":
            node["items"] = _int(lo, hi)
        for v in node.values():
            _int_items(v, lo, hi)
    elif isinstance(node, list):
        for v in node:
            _int_items(v, lo, hi)


def _cap_items(node, n: int) -> None:
    if isinstance(node, dict):
        if node.get("type") == "array":
            node["maxItems"] = min(n, node.get("maxItems", n))
        for v in node.values():
            _cap_items(v, n)
    elif isinstance(node, list):
        for v in node:
            _cap_items(v, n)


@lru_cache(maxsize=None)
def valid_scenarios() -> st.SearchStrategy[dict]:
    """Scenario dicts valid by the (capped) JSON Schema, with the run budget always set."""
    from hypothesis_jsonschema import from_schema
    # the model checks what JSON Schema cannot say (a receiver beyond the fabric, a topology
    # too small for the workload ...): those are clean rejections too
    return from_schema(json.loads(small_schema())).map(_with_budget)


@lru_cache(maxsize=None)
def top_level_names() -> frozenset[str]:
    """The scenario's fields and sections (the JSON Schema's top-level properties)."""
    return frozenset(json.loads(small_schema())["properties"])


def _with_budget(d: dict) -> dict:
    d = dict(d)
    d["max_events"] = d.get("max_events") or MAX_EVENTS
    d["max_wall_s"] = d.get("max_wall_s") or MAX_WALL_S
    d.setdefault("max_duration_ps", MAX_DURATION_PS)
    if d.get("duration_ps") is None:
        d.pop("duration_ps", None)
    return d


# ------------------------------------------------------------------------------------ mutations
WRONG_TYPES = ["x", "", None, True, False, [], {}, [1, 2], {"a": 1}, 1.5, "1,2"]
UNIT_STRINGS = ["100G", "100Gbps", "25 Gb/s", "16MB", "16MiB", "4KiB", "500ns", "1us", "2ms", "1.5ps", "5 furlongs",
                "1e3", "-1us", "100 G", "nanGbps", "infMB", "1e400us", "0x10", "½us", "1_000"]
OUT_OF_RANGE = [-1, 0, -2**63, 2**63, 2**64, 10**30, -0.5, 0.5, 1e300, -1e300, 2**53 + 1]
NONFINITE = [math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "NaN"]
HUGE = [2**32, 2**40, 2**62, 10**12]
#: names of the fields whose value sets a size of something allocated or simulated
SIZE_NAMES = ("num_hosts", "num_left", "num_right", "num_leaves", "num_spines", "hosts_per_leaf", "k", "num_rails",
              "servers_per_leaf", "leaves_per_rail", "spines_per_rail", "cores_per_group", "planes", "senders",
              "size_bytes", "pkt_pool", "trace", "entries", "max_outstanding", "reorder_window", "tenants",
              "vfs_per_host", "buffer_bytes", "mtu_payload", "num_paths", "ack_interval")
BUDGET_KEYS = ("max_events", "max_wall_s", "max_duration_ps")
MUTATIONS = ("wrong_type", "unit_string", "out_of_range", "nonfinite", "unknown_key", "typo_key", "delete_key",
             "huge_size", "not_a_dict")


def _paths(d, prefix=()):
    """Every (path, container, key) of nested dicts and lists."""
    if isinstance(d, dict):
        for k in list(d):
            yield prefix + (k,), d, k
            yield from _paths(d[k], prefix + (k,))
    elif isinstance(d, list):
        for i in range(len(d)):
            yield prefix + (i,), d, i
            yield from _paths(d[i], prefix + (i,))


def path_text(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@st.composite
def mutated_scenarios(draw) -> tuple[dict, str, str]:
    """(scenario dict, mutation, the path it touched) with one mutation of a valid dict."""
    d = copy.deepcopy(draw(valid_scenarios()))
    kind = draw(st.sampled_from(MUTATIONS))
    # the budget fields stay (every generated run must end fast); they are mutated on their own
    # in tests/test_budget.py
    targets = [t for t in _paths(d) if t[0][0] not in BUDGET_KEYS]
    dict_targets = [t for t in targets if isinstance(t[1], dict)]
    if kind == "not_a_dict":
        key = draw(st.sampled_from(["topology", "workload", "ecn", "dpu", "qpc", "pfc_params", "transport_params",
                                    "path_params", "failure_params", "failures", "cc_params"]))
        d[key] = draw(st.sampled_from([5, "x", [1], True, ["a", "b"]]))
        return d, kind, key
    if kind == "huge_size":
        sized = [t for t in targets if t[2] in SIZE_NAMES]
        if sized:
            path, container, key = draw(st.sampled_from(sized))
            container[key] = draw(st.sampled_from(HUGE))
            return d, kind, path_text(path)
        kind = "unknown_key"
    if kind in ("unknown_key", "typo_key"):
        holders = [((), d)] + [(t[0], t[1][t[2]]) for t in targets if isinstance(t[1][t[2]], dict)]
        path, holder = draw(st.sampled_from(holders))
        keys = sorted((k for k in holder if not (path == () and k in BUDGET_KEYS)), key=str)
        if kind == "typo_key" and keys:
            k = draw(st.sampled_from(keys))
            new = str(k)[:-1] if len(str(k)) > 1 else str(k) + "x"
            holder[new] = holder.pop(k)
            return d, kind, path_text(path + (new,))
        new = draw(st.sampled_from(["bogus_key", "", "1", "a.b", "Senders", "num hosts"]))
        holder[new] = 1
        return d, kind, path_text(path + (new,))
    if not targets:
        d["bogus_key"] = 1
        return d, "unknown_key", "bogus_key"
    if kind == "delete_key":
        if not dict_targets:
            return d, "none", ""
        path, container, key = draw(st.sampled_from(dict_targets))
        del container[key]
        return d, kind, path_text(path)
    path, container, key = draw(st.sampled_from(targets))
    pool = {"wrong_type": WRONG_TYPES, "unit_string": UNIT_STRINGS, "out_of_range": OUT_OF_RANGE,
            "nonfinite": NONFINITE}[kind]
    container[key] = draw(st.sampled_from(pool))
    return d, kind, path_text(path)


def scenario_cases() -> st.SearchStrategy[tuple[dict, str, str]]:
    """A valid dict (mutation "none") or a mutated one, about 1 in 4 valid."""
    return st.one_of(valid_scenarios().map(lambda d: (d, "none", "")), mutated_scenarios(), mutated_scenarios(),
                     mutated_scenarios())


# ------------------------------------------------------------------------------------ outcomes
@dataclass
class Outcome:
    kind: str            # reject | run | budget | stopped | internal
    field: str = ""      # the field a rejection named (as the message wrote it)
    detail: str = ""     # the message, or where an internal error was raised

    @property
    def ok(self) -> bool:
        return self.kind != "internal"


_NAME = re.compile(r"--[a-z][a-z-]*(?: [a-z_]+)?|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*")


def names_in(obj) -> set[str]:
    """Every key (as text) of nested dicts, and the names inside dotted keys."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(str(k))
            out.update(p for p in re.split(r"[.\[\]=]", str(k)) if p)
            out |= names_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out |= names_in(v)
    return out


WEAK_NAMES = {"scenario", "softdpu", "run"}


def named_field(message: str, names: set[str]) -> str | None:
    """The first field path in ``message`` (``workload.senders``, ``failures[0].down_ps``,
    ``--pcap-filter snaplen``) whose last name is one of ``names`` (a generic word such as
    "scenario" only when nothing else is named), or None."""
    weak = None
    for m in _NAME.finditer(message):
        tok = m.group(0)
        last = re.sub(r"\[\d+\]$", "", tok.split(" ")[-1].split(".")[-1])
        first = re.sub(r"\[\d+\]$", "", tok.split(".")[0])
        # a dotted path into a section of the scenario (workload.senders when senders was deleted)
        dotted = ("." in tok or "[" in tok) and first in top_level_names()
        option = tok.split(" ")[0] if tok.startswith("--") else None       # --pcap-filter snaplen
        if tok in names or last in names or dotted or option in names or tok in top_level_names():
            if tok not in WEAK_NAMES:
                return tok
            weak = weak or tok
    return weak


def _internal(exc: BaseException) -> Outcome:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
    return Outcome("internal", "", f"{type(exc).__name__} at {where}: {str(exc)[:300]}")


def _conserved(counters: dict) -> bool:
    c = counters
    return c["conservation_ok"] == 1 and c["data_sent"] == c["data_delivered"] + c["data_dropped"] + c["data_in_flight"]


def check_scenario(d: dict, touched: str = "", out_dir: Path | None = None) -> Outcome:
    """Build and run a scenario dict: a clean rejection (a ValueError each of whose lines names a
    field of the dict, or the key the mutation touched), or a run that ends within its budget with
    conservation holding."""
    from congestion.api import CCPluginError
    from controlplane.run.scenario import Scenario
    from dataplane.sim import BudgetExceeded, SimError
    # a CC's own check names the CC and the parameter ("dcqcn: unknown parameter(s) ['']")
    cc = d.get("cc", "dcqcn") if isinstance(d.get("cc", "dcqcn"), str) else ""
    names = names_in(d) | {p for p in re.split(r"[.\[\]]", touched) if p} | {"scenario"} | (
        {cc} if cc and "cc_params" in d else set())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc = Scenario.from_dict(copy.deepcopy(d))
            result = sc.run(out_dir)
    except BudgetExceeded as e:
        partial = getattr(e, "partial", None)
        if partial is None or not _conserved(partial.counters):
            return Outcome("internal", "", f"budget stop without conserved partial results: {e}")
        if e.budget == "max_events" and partial.counters["events"] != e.limit:
            return Outcome("internal", "", f"max_events stop after {partial.counters['events']} events: {e}")
        return Outcome("budget", e.budget, str(e))
    except (CCPluginError, SimError) as e:        # stopped by the CC or the data plane, naming them
        partial = getattr(e, "partial", None)
        if "\n" in str(e) or partial is None or not _conserved(partial.counters):
            return Outcome("internal", "", f"{type(e).__name__} without conserved partial results: {e}")
        return Outcome("stopped", type(e).__name__, str(e))
    except ValueError as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        fields = [named_field(ln, names) for ln in lines]
        if not lines or any(f is None for f in fields):
            return Outcome("internal", "", f"ValueError naming no field: {str(e)[:300]}")
        return Outcome("reject", fields[0], lines[0])
    except Exception as e:                         # noqa: BLE001 - classified: a defect
        return _internal(e)
    c = result.counters
    if not _conserved(c):
        return Outcome("internal", "", f"conservation broken: {c['data_sent']} sent, {c['data_delivered']} delivered, "
                                       f"{c['data_dropped']} dropped, {c['data_in_flight']} in flight")
    if sc.max_events and c["events"] > sc.max_events:
        return Outcome("internal", "", f"{c['events']} events, budget {sc.max_events}")
    return Outcome("run")


# ------------------------------------------------------------------------------------ pcap filters
FILTER_VALUES = {
    "points": ["hosts", "switches", "all", "h0", "h1,h2", "sw0->h0", "0", "17", "h99", "nosuch", "h0,", ",", "h-1",
               "hosts,hosts", "sw9->h0", "4294967296"],
    "dir": ["tx", "rx", "both", "in", "TX", ""],
    "qp": ["0", "1", "-1", "2", "4294967295", "1.5", "abc", "1e3", "99999999999999999999"],
    "from_us": ["0", "1", "2.5", "500ns", "-1", "inf", "nan", "1e400", "abc", "1ms", "1 us"],
    "to_us": ["0", "10", "100", "1ms", "-5", "inf", "1e30", "5.000001"],
    "max": ["0", "1", "10", "-1", "1e9", "x", "18446744073709551616"],
    "snaplen": ["1", "64", "128", "65535", "262144", "262145", "0", "-1", "abc", "1e3"],
    "split": ["0", "1", "true", "false", "yes", "no", "on", "off", "2", "maybe", "TRUE"],
}


@st.composite
def pcap_filters(draw) -> str:
    """``--pcap-filter`` text: key=value items (known keys, misspelt and unknown ones, missing
    values, repeated keys), separated by spaces or ';'."""
    keys = list(FILTER_VALUES) + ["point", "snap", "bogus", "", "qp "]
    items = []
    for _ in range(draw(st.integers(0, 4))):
        k = draw(st.sampled_from(keys))
        v = draw(st.sampled_from(FILTER_VALUES.get(k.strip(), ["1", "x"])))
        form = draw(st.sampled_from(["kv", "kv", "kv", "kv", "k", "k=", "=v", "k==v"]))
        items.append({"kv": f"{k}={v}", "k": k, "k=": f"{k}=", "=v": f"={v}", "k==v": f"{k}=={v}"}[form])
    sep = draw(st.sampled_from([" ", ";", " ; ", "  "]))
    return sep.join(items)


def check_pcap_filter(text: str, tmp: Path) -> Outcome:
    """Parse a --pcap-filter and, if accepted, capture a 2:1 incast of 8 KB with it: a rejection
    naming ``--pcap-filter`` (and the key), or a run that conserves and writes pcap files."""
    from controlplane.results.capture import CaptureSpec
    from controlplane.run.scenario import Scenario
    names = {"--pcap-filter", "pcap-filter"}
    try:
        spec = CaptureSpec.parse(str(tmp / "cap.pcap"), text)
        sc = Scenario(topology={"topology": "single_switch", "num_hosts": 3, "rate_bps": 100 * 10**9,
                                "delay_ps": US}, workload={"kind": "incast", "senders": 2, "size_bytes": 8192},
                      cc="dcqcn", sample_interval_ps=0, monitor_ports="none", max_events=MAX_EVENTS)
        with contextlib.redirect_stdout(io.StringIO()):
            result = sc.run(capture=spec)
    except ValueError as e:
        msg = str(e)
        # one line per problem (as the scenario schema's rejections), each naming --pcap-filter
        if not all(line.startswith(("--pcap-filter", "capture")) for line in msg.splitlines()):
            return Outcome("internal", "", f"pcap filter error naming no key: {msg[:300]}")
        return Outcome("reject", (named_field(msg, names | set(FILTER_VALUES)) or "--pcap-filter"), msg)
    except Exception as e:                         # noqa: BLE001
        return _internal(e)
    if not _conserved(result.counters):
        return Outcome("internal", "", "conservation broken with a capture")
    files = sorted(tmp.glob("cap*.pcap"))
    if not files or any(f.read_bytes()[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") for f in files):
        return Outcome("internal", "", f"capture accepted but no valid pcap file written: {files}")
    return Outcome("run")


# ------------------------------------------------------------------------------------ command lines
@lru_cache(maxsize=None)
def experiments() -> dict[str, dict]:
    import importlib
    from controlplane.run.cli import _experiments
    return {e: dict(importlib.import_module(f"experiments.{e}").PARAMS) for e in sorted(_experiments())}


def _value_texts(default) -> list[str]:
    """Plausible and wrong spellings of a value of the type of ``default``."""
    if isinstance(default, bool):
        good = ["true", "false", "yes", "no", "on", "off", "1", "0", "True", "FALSE"]
    elif isinstance(default, int):
        good = [str(default), str(max(1, default // 2)), "1", "1e3", "8"]
    elif isinstance(default, float):
        good = [repr(default), "0.5", "1"]
    elif isinstance(default, (list, tuple)):
        good = [json.dumps(list(default)), ",".join(map(str, default)), json.dumps(list(default)[:1]), "[]"]
    elif isinstance(default, dict):
        good = [json.dumps(default), "{}"]
    elif default is None:
        good = ["none", "null"]
    else:
        good = [str(default)]
    return good + ["abc", "-1", "8.5", "nan", "inf", "", "100G", "16MB", "1us", "[1,", "{\"a\":", "2e400", "None"]


SCENARIO_SETS = ["seed=3", "max_duration_ps=20us", "ecn.kmin_bytes=100KB", "ecn.kmin_bytes=lots", "pfc=false",
                 "pfc=no", "pfc=maybe", "ipv6=off", "buffer_bytes=lots", "buffer_bytes=16MB", "rto_ps=1",
                 "rto_ps=1ms", "sample_interval_ps=1", "duration_ps=1.5", "workload.senders=2", "topology.num_hosts=4",
                 "topology.num_hosts=4294967296", "topology=5", "dcqcn.flavour=paper", "cc_params.flavour=paper",
                 "cc_params.bogus=1", "timely.bogus=2", "transport=sr", "paths=plb", "paths=nosuch", "num_paths=0",
                 "link_loss=0.01", "link_loss=2", "cc_impl=python", "cc=none", "cc=bogus", "mtu_payload=1",
                 "mtu_payload=0", "bogus=1", "sender=8", "a.b.c=1", "=1", "novalue", "max_events=-1",
                 "max_wall_s=nan", "trace=100", "pkt_pool=1", "qpc.entries=64", "dpu.policy.proactive=maybe"]


@st.composite
def command_lines(draw, tmp: Path) -> list[str]:
    """A softdpu command line; every ``run`` gets the run budget last (``--set max_events=...``)
    so that it ends fast, and ``--out`` under ``tmp`` unless the case is about --out."""
    exps = experiments()
    cmd = draw(st.sampled_from(["run"] * 12 + ["schema", "list", "plot", "bench", "other"]))
    if cmd == "schema":
        return ["schema"] + draw(st.sampled_from([[], [], ["--json"], ["extra"]]))
    if cmd == "list":
        return ["list"] + draw(st.sampled_from([[], ["--json"], ["--yaml"], ["incast"]]))
    if cmd == "plot":
        where = draw(st.sampled_from(["missing", "file", "empty_dir", "proc", "config_junk", "none"]))
        if where == "none":
            return ["plot"]
        p = tmp / "plot_target"
        if where == "file":
            p.write_text("not a results folder\n")
        elif where == "empty_dir":
            p.mkdir(exist_ok=True)
        elif where == "config_junk":
            p.mkdir(exist_ok=True)
            (p / "config.json").write_text(draw(st.sampled_from(["{", "[]", "{}", '{"topology": 5}', "null"])))
        elif where == "proc":
            p = Path("/proc/self/nonexistent")
        return ["plot", str(p)]
    if cmd == "bench":
        return ["bench"] + draw(st.sampled_from([["nosuch"], ["--cc-impl", "rust"], ["--seed", "-1"],
                                                 ["--seed", "abc"], ["permutation-128", "--bogus"]]))
    if cmd == "other":
        return draw(st.sampled_from([[], ["--version"], ["--help"], ["bogus"], ["run", "--help"], ["--debug"],
                                     ["run"], ["-x"], ["run", "incast", "--set"], ["run", "incast", "extra"]]))
    exp = draw(st.sampled_from(sorted(exps) + ["nosuch", "Incast", "incast "]))
    params = exps.get(exp, {})
    argv = ["run", exp]
    # the documentation test's size-reducing settings first (minutes -> seconds); what is drawn
    # next may override them (a later --set of a key wins)
    from tests.test_docs import REDUCE
    for item in REDUCE.get(exp, []):
        argv += ["--set", item]
    if draw(st.integers(0, 9)) == 0:
        argv.append("--help")
    for _ in range(draw(st.integers(0, 3))):
        if params and draw(st.booleans()):
            k = draw(st.sampled_from(sorted(params)))
            v = draw(st.sampled_from(_value_texts(params[k])))
            argv += ["--set", f"{k}={v}"]
        else:
            argv += ["--set", draw(st.sampled_from(SCENARIO_SETS))]
    if draw(st.integers(0, 4)) == 0:
        argv += ["--config", str(_config_file(draw, tmp, params))]
    if draw(st.integers(0, 5)) == 0:
        argv += ["--seed", draw(st.sampled_from(["0", "7", "-1", "abc", "1e3", "2.5", "99999999999999999999999"]))]
    if draw(st.integers(0, 5)) == 0:
        argv += ["--cc", draw(st.sampled_from(cc_names() + ("bogus", "x.py:Y", "os:path", "ecn_aimd", "")))]
    if draw(st.integers(0, 5)) == 0:
        pcap = draw(st.sampled_from([str(tmp / "c.pcap"), "/proc/nope/c.pcap", str(tmp)]))
        argv += ["--pcap", pcap]
        if draw(st.booleans()):
            argv += ["--pcap-filter", draw(pcap_filters())]
    elif draw(st.integers(0, 9)) == 0:
        argv += ["--pcap-filter", draw(pcap_filters())]
    out = draw(st.sampled_from(["tmp"] * 8 + ["proc", "file", "devnull"]))
    if out == "tmp":
        argv += ["--out", str(tmp / "out")]
    elif out == "file":
        (tmp / "a_file").write_text("x")
        argv += ["--out", str(tmp / "a_file")]
    else:
        argv += ["--out", {"proc": "/proc/softdpu-out", "devnull": "/dev/null/out"}[out]]
    if draw(st.integers(0, 4)):
        argv.append("--no-plots")
    if draw(st.integers(0, 9)) == 0:
        argv.append("--debug")
    # the budget, last: a --set of the same key later on the line wins
    argv += ["--set", f"max_events={MAX_EVENTS}", "--set", f"max_wall_s={MAX_WALL_S:g}"]
    return argv


def _config_file(draw, tmp: Path, params: dict) -> Path:
    kind = draw(st.sampled_from(["json", "toml", "json_bad", "toml_bad", "missing", "dir", "list", "scenario"]))
    if kind == "missing":
        return tmp / "no_such_config.json"
    if kind == "dir":
        return tmp
    path = tmp / ("cfg.toml" if kind.startswith("toml") else "cfg.json")
    if kind == "json_bad":
        text = draw(st.sampled_from(["{", '{"senders": NaN}', '{"senders": Infinity}', "", '{"a": 1,}']))
    elif kind == "toml_bad":
        text = draw(st.sampled_from(["senders = ", "[x", "a = nan", 'senders = "8"\nsenders = 9']))
    elif kind == "list":
        text = "[1, 2]"
    else:
        data = {}
        if kind == "scenario":
            d, _, _ = draw(mutated_scenarios())
            d = {k: v for k, v in d.items() if k not in ("max_events", "max_wall_s")}
            data.update(draw(st.sampled_from([{}, {"ecn": d.get("ecn")}, {"seed": d.get("seed")},
                                              {"workload": d.get("workload")}, {"pfc": d.get("pfc")},
                                              {"buffer_bytes": d.get("buffer_bytes")}])))
        for k in draw(st.lists(st.sampled_from(sorted(params) or ["seed"]), max_size=2, unique=True)):
            v = params.get(k)
            data[k] = draw(st.sampled_from([v, "abc", None, -1, [1], {"x": 1}, True]))
        if kind == "toml":
            lines = []
            for k, v in data.items():
                if v is None or isinstance(v, dict):
                    continue
                lines.append(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}")
            text = "\n".join(lines) + "\n"
        else:
            text = json.dumps(data, default=str)
    path.write_text(text)
    return path


def check_command_line(argv: list[str]) -> Outcome:
    """``main(argv)``: exit 0 (done), 1 with one line "softdpu: the run stopped: ..." (a budget, a
    CC or the data plane stopped a run; partial results written) or 2 with exactly one line
    "softdpu: ..." naming something that was typed; never a traceback, never exit 70."""
    from controlplane.run.cli import main
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main(list(argv))
    except BaseException as e:                     # noqa: BLE001 - main must return, never raise
        return _internal(e)
    text = err.getvalue()
    ours = [ln for ln in text.splitlines() if ln.startswith("softdpu:")]
    if "Traceback (most recent call last)" in text and "--debug" not in argv:
        return Outcome("internal", "", f"traceback (exit {rc}): {text[-600:]}")
    if rc == 0:
        return Outcome("run")
    if rc == 1:
        if len(ours) != 1 or not ours[0].startswith("softdpu: the run stopped: "):
            return Outcome("internal", "", f"exit 1 without one 'the run stopped' line: {text[-400:]}")
        return Outcome("budget" if "run budget" in ours[0] else "stopped", "", ours[0])
    if rc == 2:
        if len(ours) != 1:
            return Outcome("internal", "", f"exit 2 with {len(ours)} 'softdpu:' lines: {text[-600:]}")
        typed = set()
        for a in argv:
            typed.add(a)
            typed.update(p for p in re.split(r"[=.\[\]\s,;:/]+", a) if p)
            if a.startswith("--"):
                typed.add(a)
            if Path(a).is_file() and a.endswith((".json", ".toml")):   # a --config file's keys
                typed.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", Path(a).read_text()))
        keys = {a.split("=")[0].split(".")[-1] for a in argv if "=" in a}     # --set keys, even 'k'
        typed = {t for t in typed if len(t) > 1} | {k for k in keys if k}
        msg = ours[0][len("softdpu: "):]
        f = named_field(msg, typed) or next((t for t in sorted(typed, key=len, reverse=True)
                                             if len(t) > 2 and t in msg), None)
        if f is None and any(not a.startswith("-") for a in argv):      # else nothing to name
            return Outcome("internal", "", f"exit 2 naming nothing typed: {ours[0][:300]}")
        return Outcome("reject", f or "(nothing typed)", ours[0])
    return Outcome("internal", "", f"exit {rc}: {text[-600:]}")
