"""Test set-up: in a source checkout (editable install), rebuild the C extension if a C file
changed, before anything imports dataplane._native (a loaded .so cannot be reloaded)."""
import os
from pathlib import Path

import pytest

import dataplane

_pkg = Path(dataplane.__file__).resolve().parent
if not os.environ.get("SOFTDPU_NO_REBUILD") and (_pkg.parent / "native" / "softdpu.h").exists():
    from dataplane.build import rebuild_inplace
    rebuild_inplace()


# In CI (SOFTDPU_NO_SKIPS=1, set by .ci/run) every tool a test needs is installed on purpose
# (scapy as a dependency, tshark through apt-get): a skipped test there means a missing install
# step, so the run fails and names the skipped tests instead of passing with less checked.
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    if report.skipped:                   # a whole module skipped (pytest.importorskip at module level)
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("SOFTDPU_NO_SKIPS") == "1" and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("SOFTDPU_NO_SKIPS") == "1" and _skipped:
        terminalreporter.section("skipped tests are failures here (SOFTDPU_NO_SKIPS=1)")
        for line in _skipped:
            terminalreporter.write_line(line)


@pytest.fixture
def registries_restored():
    """What a test (or a documented example) registers at runtime is removed afterwards, so the next
    test sees the built-in sets: topology kinds (register_topology) and congestion controls
    (congestion.registry.register)."""
    from congestion import registry
    from controlplane.config import models
    from controlplane.fabric import topology
    registry.names()                                   # loads the built-ins before the snapshot
    builders, kinds, ccs = dict(topology.BUILDERS), dict(topology.MODELS), dict(registry._REGISTRY)
    yield
    if ccs != registry._REGISTRY:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(ccs)
    if (builders, kinds) != (topology.BUILDERS, topology.MODELS):
        topology.BUILDERS.clear()
        topology.BUILDERS.update(builders)
        topology.MODELS.clear()
        topology.MODELS.update(kinds)
        topology.Topology = topology.topology_union()
        models.rebuild_topology()
