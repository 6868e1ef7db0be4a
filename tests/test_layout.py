"""The numpy views of C structs are derived from the compiled layout (docs/architecture.md, 'The C/Python
boundary'), and the
per-object memory stays within the budgets of issue #2 (<= 256 B per in-flight packet,
<= 1 KB per QP)."""
import numpy as np
import pytest

from dataplane import sim as dp
from dataplane._native import ffi


@pytest.mark.parametrize("ctype,dtype", [("sd_port_stats", dp.PORT_DTYPE), ("sd_qp_stats", dp.QP_DTYPE),
                                         ("sd_msg", dp.MSG_DTYPE),
                                         ("sd_cc_trace", dp.TRACE_DTYPE), ("sd_completion", dp.COMPLETION_DTYPE),
                                         ("sd_path_stats", dp.PATH_STATE_DTYPE), ("sd_qpc_host", dp.QPC_HOST_DTYPE),
                                         ("sd_qpc_rec", dp.QPC_REC_DTYPE), ("sd_vs_flow", dp.VS_FLOW_DTYPE),
                                         ("sd_vs_vf", dp.VS_VF_DTYPE), ("sd_vs_stats", dp.VS_STATS_DTYPE),
                                         ("sd_vs_upcall", dp.VS_UPCALL_DTYPE), ("sd_vs_action", dp.VS_ACTION_DTYPE)])
def test_dtype_matches_compiled_layout(ctype, dtype):
    assert dtype.itemsize == ffi.sizeof(ctype)
    for name, field in ffi.typeof(ctype).fields:
        assert dtype.fields[name][1] == ffi.offsetof(ctype, name), name
        assert dtype.fields[name][0].itemsize == ffi.sizeof(field.type), name


def test_view_reads_what_c_wrote():
    s = dp.Simulator(num_hosts=2, num_switches=0, max_links=1)
    s.add_links([0], [1], [25_000_000_000], [123_000])
    ports = s.ports
    assert ports.shape == (2,)
    assert list(ports["rate_bps"]) == [25_000_000_000] * 2
    assert list(ports["delay_ps"]) == [123_000] * 2
    assert list(ports["peer"]) == [1, 0] and list(ports["node"]) == [0, 1]


def test_memory_budgets():
    assert dp.SIZEOF_PACKET <= 256 and dp.SIZEOF_PACKET == 64        # one cache line (native/sim.c asserts it too)
    assert dp.SIZEOF_QP <= 1024                   # a QP's working state plus its telemetry record


def test_counters_cover_the_c_struct():
    s = dp.Simulator(num_hosts=2, num_switches=0, max_links=1)
    c = s.counters()
    assert set(c) == {name for name, _ in ffi.typeof("sd_counters").fields}
    assert all(v == 0 for v in c.values())
    assert isinstance(np.int64(c["events"]), np.int64)


def _controlplane_imports():
    """(subpackage, module file, imported subpackage, at module level?) for every import of another
    controlplane subpackage, read from the source (ast), lazy imports inside functions included."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "controlplane"
    out = []
    for f in sorted(root.rglob("*.py")):
        tree = ast.parse(f.read_text())
        top = {id(n) for n in tree.body}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or "").startswith("controlplane."):
                target = n.module.split(".")[1]
                if target != f.parent.name:
                    out.append((f.parent.name, f.name, target, id(n) in top))
    return out


def test_controlplane_imports_point_down_the_layout():
    """docs/architecture.md, 'Layout': config loads without the rest (models.py gathers the sections'
    models; schema.py reaches them lazily); fabric, transport and dpu import config (transport's
    workload also the fabric); nothing below run imports run or results at module level, except
    ai's collectives, which register with run's control loop."""
    allowed = {"config": set(), "fabric": {"config"}, "transport": {"config", "fabric"}, "dpu": {"config"},
               "ai": {"config", "fabric", "run"}, "run": None, "results": {"config", "run"}}
    found = _controlplane_imports()
    assert found, "no imports found: the layout changed under this test"
    for pkg, module, target, top in found:
        if pkg == "config" and (module == "models.py" or not top):
            continue
        if allowed[pkg] is None:
            continue
        assert target in allowed[pkg], f"controlplane/{pkg}/{module} imports controlplane.{target}"
    ai_to_run = {(m, top) for p, m, t, top in found if p == "ai" and t == "run"}
    assert {m for m, _ in ai_to_run} <= {"collectives.py"}, ai_to_run


def test_controlplane_is_its_subpackages_and_every_module_imports():
    """docs/architecture.md, 'Layout': controlplane/ holds only its subpackages (no module left at
    the top, no compatibility copy of a moved one), and every module of them imports."""
    import importlib
    import pkgutil
    from pathlib import Path
    import controlplane
    root = Path(controlplane.__file__).parent
    assert sorted(p.name for p in root.glob("*.py")) == ["__init__.py"]
    subpackages = sorted(p.parent.name for p in root.glob("*/__init__.py"))
    assert subpackages == ["ai", "config", "dpu", "fabric", "results", "run", "transport"]
    names = [m.name for m in pkgutil.walk_packages(controlplane.__path__, "controlplane.")]
    assert len(names) > 40, names
    for name in names:
        importlib.import_module(name)
