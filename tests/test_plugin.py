"""User congestion-control plug-ins: a Python class from a file runs as the CC of a scenario,
with no rebuild; its errors surface as Python exceptions."""
from pathlib import Path

import numpy as np

import pytest

from controlplane.run.scenario import Scenario
from tests.support import assert_conserved, star

EXAMPLE = Path(__file__).resolve().parent.parent / "experiments" / "plugins" / "ecn_aimd.py"
INCAST = dict(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 4_000_000},
              sample_interval_ps=10_000_000)


def test_plugin_from_file_controls_the_rate():
    r = Scenario(cc=f"{EXAMPLE}:EcnAimd", **INCAST).run()
    assert_conserved(r)
    assert r.counters["cc_events"] > 0 and r.counters["cnps_rx"] > 0
    rates = r.timeseries["qp_rate_bps"]
    assert np.nanmin(rates) < 50e9                  # it cut the rate on CNPs (NaN: QP idle)
    # fewer drops than no congestion control at all in the same incast
    none = Scenario(cc="none", **INCAST).run()
    assert r.counters["dropped"] < none.counters["dropped"]


def test_plugin_exception_stops_the_run_naming_plugin_qp_and_event(tmp_path):
    """A handler that raises stops the run with CCPluginError (the original exception chained)
    naming the algorithm, the QP and the event; the results folder written so far reads back."""
    from congestion.api import CCPluginError
    from controlplane.results.folder import load_run
    f = tmp_path / "bad_cc.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class Bad(CongestionControl):\n"
                 "    name = 'bad'\n"
                 "    def on_ack(self, st, ev):\n"
                 "        if ev.now_ps > 20_000_000:\n"
                 "            raise ZeroDivisionError('plug-in bug')\n")
    with pytest.raises(CCPluginError, match=r"cc 'bad' raised ZeroDivisionError: plug-in bug \(QP \d+, event ack") as e:
        Scenario(cc=f"{f}:Bad", **INCAST).run(tmp_path / "out")
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    partial = load_run(tmp_path / "out")
    assert "plug-in bug" in partial.counters["error"]
    assert len(partial.ts["t_ps"]) >= 2 and partial.ts["t_ps"][-1] >= 20_000_000


@pytest.mark.parametrize("bad_rate", ["float('nan')", "-1.0", "0.0"])
def test_plugin_setting_an_invalid_rate_stops_the_run(tmp_path, bad_rate):
    from congestion.api import CCPluginError
    f = tmp_path / "rate_cc.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class BadRate(CongestionControl):\n"
                 "    name = 'badrate'\n"
                 "    def on_start(self, st, ev):\n"
                 f"        ev.rate_bps = {bad_rate}\n")
    with pytest.raises(CCPluginError, match=r"cc 'badrate' set rate_bps=.*QP \d+, event start"):
        Scenario(cc=f"{f}:BadRate", **INCAST).run()


def test_plugin_listing_an_event_without_handler_is_rejected(tmp_path):
    f = tmp_path / "nohandler.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class NoHandler(CongestionControl):\n"
                 "    name = 'nohandler'\n"
                 "    events = frozenset({'start', 'cnp'})\n"
                 "    def on_start(self, st, ev):\n"
                 "        ev.rate_bps = 1e9\n")
    with pytest.raises(ValueError, match="lists events \\['cnp'\\] but has no on_cnp handler"):
        Scenario(cc=f"{f}:NoHandler", **INCAST).build()


def test_plugin_file_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Scenario(cc=f"{tmp_path}/nope.py:X").build()
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    with pytest.raises(ValueError, match="broken.py.*does not load: SyntaxError"):
        Scenario(cc=f"{broken}:X").build()
    f = tmp_path / "notcc.py"
    f.write_text("class X: pass\n")
    with pytest.raises(ValueError, match="not a CongestionControl"):
        Scenario(cc=f"{f}:X").build()


def test_plugin_window_caps_inflight(tmp_path):
    """A window set by a plug-in bounds unacknowledged data: with W = 8 packets and an RTT of
    about 4.4 us, goodput is at most W / RTT, far below line rate."""
    f = tmp_path / "win.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class Win(CongestionControl):\n"
                 "    name = 'win'\n"
                 "    events = frozenset({'start'})\n"
                 "    def on_start(self, st, ev):\n"
                 "        ev.window_bytes = 8 * 4096\n")
    r = Scenario(cc=f"{f}:Win", topology=star(2), sample_interval_ps=10_000_000,
                 workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": 4_000_000}]}).run()
    assert_conserved(r)
    g = r.timeseries["qp_goodput_bps"][2:-2, 0].mean()
    rtt_ps = 4_000_000 + 2 * (4178 + 86) * 8 * 10                  # 4 x 1 us + serialization on 2 hops
    assert g <= 8 * 4096 * 8 / (rtt_ps * 1e-12) * 1.02
    assert g < 70e9


def test_ack_batches_aggregate_every_ack_exactly_once(tmp_path):
    """With ack_batch = 8 a plug-in gets about one ACK event per 8 ACKs; summed over the
    events, batch_acks counts every ACK and acked_bytes every byte (nothing lost or repeated),
    batch_ecn counts the echoes, and rtt_min_ps <= rtt_ps."""
    f = tmp_path / "batch.py"
    f.write_text("from congestion.api import CongestionControl\n"
                 "class Batch(CongestionControl):\n"
                 "    name = 'batch'\n"
                 "    ack_batch = 8\n"
                 "    seen = []\n"
                 "    def network_defaults(self):\n"
                 "        return {'ecn': {'kmin_bytes': 20000, 'kmax_bytes': 20000, 'pmax': 1.0}, 'cnp_mode': 'ack_echo'}\n"
                 "    def on_ack(self, st, ev):\n"
                 "        Batch.seen.append((ev.batch_acks, ev.acked_bytes, ev.batch_ecn, ev.ecn, ev.rtt_min_ps, ev.rtt_ps))\n")
    r = Scenario(cc=f"{f}:Batch", **INCAST).run()
    assert_conserved(r)
    from congestion.registry import load_class
    seen = np.array(load_class(f"{f}:Batch").seen, dtype=np.int64)
    acks = r.counters["ctrl_sent"] - r.counters["nak_sent"]        # ACK-echo mode: no CNP packets
    assert seen[:, 0].sum() == acks
    assert seen[:, 1].sum() == 4 * 4_000_000
    assert len(seen) <= acks / 8 + 8 and (seen[:, 0] <= 8).all()
    assert seen[:, 2].sum() > 0 and ((seen[:, 2] > 0) == (seen[:, 3] == 1)).all()
    assert (seen[:, 4] <= seen[:, 5]).all()


# ---------------------------------------------------------------- how a CC spec is resolved
# Order (congestion/registry.py): built-in name, entry point in group softdpu.cc,
# path/to/file.py:Class, package.module:Class.

import importlib.metadata
import subprocess
import sys

from congestion import registry
from congestion.api import CongestionControl
from experiments.plugins.ecn_aimd import EcnAimd

REPO = Path(__file__).resolve().parent.parent
SMALL_INCAST = dict(topology=star(5), workload={"kind": "incast", "senders": 4, "size_bytes": 1_000_000},
                    sample_interval_ps=10_000_000)

FIXED_CC = '''"""Fixed rate: every QP paced at rate_bps (a test plug-in)."""
from congestion.api import CongestionControl


class Fixed(CongestionControl):
    name = "fixed_rate"
    events = frozenset({"start"})

    @classmethod
    def defaults(cls):
        return {"rate_bps": 10e9}

    def on_start(self, st, ev):
        ev.rate_bps = self._params["rate_bps"]


class Outer:
    class Inner(Fixed):
        name = "fixed_inner"
'''


def _dist(root: Path, name: str, entry_points: dict[str, str], version: str = "1.0") -> None:
    """An installed distribution as importlib.metadata finds it on sys.path: a .dist-info folder
    with METADATA and entry_points.txt (what pip writes; nothing is installed into the venv)."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[softdpu.cc]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A throw-away site directory on sys.path holding the module `tiny_cc` (the FIXED_CC source):
    distributions written into it with `_dist` are seen by importlib.metadata.entry_points exactly
    like pip-installed ones, and both go away with the test (no pip install, the venv untouched)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "tiny_cc.py").write_text(FIXED_CC)
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("tiny_cc", None)


def test_module_spec_gives_the_importable_class_and_the_same_run_as_the_file():
    """`package.module:Class` imports the module; the class is the one `import` gives, and the run
    is bit-identical to the same class loaded from its file (one scenario + one seed = one result)."""
    assert registry.load_class("experiments.plugins.ecn_aimd:EcnAimd") is EcnAimd
    by_module = Scenario(cc="experiments.plugins.ecn_aimd:EcnAimd", **SMALL_INCAST).run()
    by_file = Scenario(cc=f"{EXAMPLE}:EcnAimd", **SMALL_INCAST).run()
    assert_conserved(by_module)
    assert by_module.counters["cnps_rx"] > 0          # ECN-AIMD's network_defaults: switches mark, NPs send CNPs
    assert by_module.counters == by_file.counters
    np.testing.assert_array_equal(by_module.timeseries["qp_rate_bps"], by_file.timeseries["qp_rate_bps"])


def test_module_spec_from_sys_path_with_nested_class(site):
    assert registry.load_class("tiny_cc:Fixed").name == "fixed_rate"
    assert registry.load_class("tiny_cc:Outer.Inner").name == "fixed_inner"   # attribute path, as in entry points


def test_module_spec_errors_name_the_spec_and_what_was_tried(site):
    with pytest.raises(ValueError, match=r"'no_such_pkg\.cc:X'.*'no_such_pkg\.cc' is neither a file .* nor an importable module"):
        registry.load_class("no_such_pkg.cc:X")
    (site / "imports_missing.py").write_text("import no_such_dependency_xyz\n")
    with pytest.raises(ValueError, match=r"module 'imports_missing' does not load: ModuleNotFoundError: .*no_such_dependency_xyz"):
        registry.load_class("imports_missing:X")
    with pytest.raises(ValueError, match=r"'tiny_cc:Fixd': module tiny_cc has no 'Fixd'; its CongestionControl classes: Fixed"):
        registry.load_class("tiny_cc:Fixd")
    with pytest.raises(ValueError, match=r"'tiny_cc:Outer': 'Outer' is not a CongestionControl subclass in module tiny_cc"):
        registry.load_class("tiny_cc:Outer")
    with pytest.raises(ValueError, match=r"plug-in file 'nowhere/cc\.py' does not exist"):
        registry.load_class("nowhere/cc.py:X")


def test_entry_point_is_usable_by_name_and_listed(site):
    """A CC published by another package under group softdpu.cc runs by its entry-point name.
    The fixed-rate plug-in paces one flow at 10 Gb/s of wire bytes: goodput is 10 Gb/s times the
    4 KB payload efficiency (tests/support.py: Ethernet+IPv4+UDP+BTH+ICRC+FCS+preamble/IFG)."""
    from tests.support import PAYLOAD_EFFICIENCY_4K
    _dist(site, "tiny-cc", {"tiny_fixed": "tiny_cc:Fixed"}, version="2.3")
    assert registry.load_class("tiny_fixed").__module__ == "tiny_cc"
    r = Scenario(cc="tiny_fixed", topology=star(2), sample_interval_ps=10_000_000,
                 workload={"kind": "flows", "flows": [{"src": 1, "dst": 0, "size_bytes": 4_000_000}]}).run()
    assert_conserved(r)
    g = r.timeseries["qp_goodput_bps"][2:-2, 0].mean()
    assert g == pytest.approx(10e9 * PAYLOAD_EFFICIENCY_4K, rel=0.02)   # 2 %: sampling-window edges
    listed = {a.name: a for a in registry.available()}
    assert listed["tiny_fixed"] == registry.Available(
        "tiny_fixed", "entry point", "tiny_cc:Fixed", "tiny-cc 2.3",
        "Fixed rate: every QP paced at rate_bps (a test plug-in).", None)
    assert listed["dcqcn"].source == "built-in" and listed["dcqcn"].target == "congestion.dcqcn:Dcqcn"


def test_softdpu_list_shows_entry_point_ccs_with_their_package(site, capsys):
    """`softdpu list` (and --json) shows what --cc accepts: the built-ins and the entry points of
    installed packages, each with the package that publishes it; a broken one says why."""
    import json

    from controlplane.run.cli import main
    _dist(site, "tiny-cc", {"tiny_fixed": "tiny_cc:Fixed", "tiny_broken": "tiny_cc:NoSuchClass"}, version="2.3")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.split()[:1] == ["tiny_fixed"])
    assert "Fixed rate: every QP paced at rate_bps" in line and "[from tiny-cc 2.3]" in line
    assert "cannot be used" in next(l for l in out.splitlines() if l.split()[:1] == ["tiny_broken"])
    assert main(["list", "--json"]) == 0
    ccs = json.loads(capsys.readouterr().out)["ccs"]
    assert ccs["tiny_fixed"]["distribution"] == "tiny-cc 2.3" and ccs["tiny_fixed"]["source"] == "entry point"
    assert ccs["tiny_broken"]["error"] and ccs["dcqcn"]["params"]["flavour"] == "nvidia"


def test_entry_point_clashing_with_a_builtin_is_an_error_naming_both(site):
    _dist(site, "tiny-cc", {"dcqcn": "tiny_cc:Fixed"})
    with pytest.raises(ValueError, match=r"cc 'dcqcn' is ambiguous: built-in congestion\.dcqcn:Dcqcn and entry point "
                                         r"'dcqcn = tiny_cc:Fixed' \(group softdpu\.cc, distribution tiny-cc 1\.0\)"):
        registry.load_class("dcqcn")
    assert registry.load_class("dctcp").name == "dctcp"        # the other names are not affected
    listed = [a for a in registry.available() if a.name == "dcqcn"]
    assert [a.source for a in listed] == ["built-in", "entry point"] and "ambiguous" in listed[1].error


def test_entry_point_published_twice_or_broken_is_an_error_naming_the_distributions(site):
    _dist(site, "tiny-cc", {"twice": "tiny_cc:Fixed", "broken": "tiny_cc:Missing"})
    _dist(site, "other-cc", {"twice": "tiny_cc:Outer.Inner"}, version="0.1")
    with pytest.raises(ValueError, match=r"cc 'twice' is ambiguous: published by entry point 'twice = .*distribution "
                                         r"(tiny-cc 1\.0|other-cc 0\.1)\) and by entry point .*distribution (other-cc 0\.1|tiny-cc 1\.0)\)"):
        registry.load_class("twice")
    with pytest.raises(ValueError, match=r"cc 'broken': entry point 'broken = tiny_cc:Missing' .*tiny-cc 1\.0\) "
                                         r"does not load: AttributeError"):
        registry.load_class("broken")
    listed = {a.name: a for a in registry.available()}           # listing does not stop on them
    assert "does not load" in listed["broken"].error and "ambiguous" in listed["twice"].error


def test_unknown_name_lists_known_names_and_closest_matches(site):
    _dist(site, "tiny-cc", {"tiny_fixed": "tiny_cc:Fixed"})
    with pytest.raises(ValueError, match=r"unknown cc 'dcqnc': not a built-in name and not an entry point in group "
                                         r"softdpu\.cc; did you mean 'dcqcn'( or '[\w-]+')*\?; built-in: ") as e:
        registry.load_class("dcqnc")
    parts = dict(p.split(": ", 1) for p in str(e.value).split("; ")[2:4])
    # every built-in (other tests may register() more) and every entry point, ours and the test's
    assert set(parts["built-in"].split(", ")) >= {"dcqcn", "dctcp", "hpcc", "none", "nscc", "swift", "timely"}
    assert set(parts["entry points"].split(", ")) >= {"ecn_aimd", "tiny_fixed"}
    with pytest.raises(ValueError, match=r"did you mean 'tiny_fixed'\?"):
        Scenario(cc="tiny_fixd").build()
    with pytest.raises(ValueError, match=r"a file or module needs the class too"):
        registry.load_class("experiments.plugins.ecn_aimd")


def test_label_is_a_short_name_for_results_folders():
    assert registry.label("dcqcn") == "dcqcn"
    assert registry.label(f"{EXAMPLE}:EcnAimd") == "ecn_aimd"
    assert registry.label("experiments.plugins.ecn_aimd:EcnAimd") == "ecn_aimd"


# ---------------------------------------------------------------- the example ships with the package

def _pyproject() -> dict:
    import tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_python_package_in_the_tree_is_installed():
    """`pip install .` installs exactly tool.setuptools.packages: every folder with an __init__.py
    under a shipped top-level package must be listed (experiments.plugins was not, so the
    README's plug-in example failed outside the checkout)."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts)
             for top in {n.split(".")[0] for n in listed} for p in (REPO / top).rglob("__init__.py")}
    assert found - listed == set()


def test_the_example_is_published_as_entry_point_ecn_aimd():
    """pyproject declares ecn_aimd in group softdpu.cc, and the installed metadata (pip install
    [-e] .; `make` reinstalls when pyproject.toml changes) carries it, so `--cc ecn_aimd` works."""
    declared = _pyproject()["project"]["entry-points"]["softdpu.cc"]
    assert declared == {"ecn_aimd": "experiments.plugins.ecn_aimd:EcnAimd"}
    assert not set(declared) & set(registry.names())
    installed = {ep.name: ep.value for ep in importlib.metadata.distribution("softdpu").entry_points
                 if ep.group == "softdpu.cc"}
    assert installed == declared, "installed metadata is stale: run `pip install -e .` again"
    assert registry.load_class("ecn_aimd") is EcnAimd


def test_example_resolves_from_another_directory(tmp_path):
    """The README's commands do not depend on the checkout being the current directory: from
    an empty folder, with no PYTHONPATH, both the entry-point name and the module spec load."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c",
                          "from congestion.registry import load_class as l\n"
                          "a, b = l('ecn_aimd'), l('experiments.plugins.ecn_aimd:EcnAimd')\n"
                          "print(a is b, a.__module__, a.name)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "experiments.plugins.ecn_aimd", "ecn_aimd"]
