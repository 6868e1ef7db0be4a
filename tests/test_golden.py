"""Golden scenarios (tests/golden/scenarios.py): every mechanism's canonical small run must give
exactly the committed counters and per-message results. A difference fails with the numbers that
moved; if the change is intended, `make golden` rewrites the files and the commit says why."""
import csv
import io
import json

import pytest

from golden import scenarios as G


def _diff(old, new, path=""):
    """Readable differences between two JSON-like values: ['counters.data_sent: 10 -> 12', ...]."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            if k not in old:
                out.append(f"{path}{k}: (new) {new[k]!r}")
            elif k not in new:
                out.append(f"{path}{k}: {old[k]!r} -> (gone)")
            else:
                out += _diff(old[k], new[k], f"{path}{k}.")
        return out
    return [] if old == new else [f"{path.rstrip('.')}: {old!r} -> {new!r}"]


def _rows_diff(old: str, new: str) -> list[str]:
    a, b = list(csv.reader(io.StringIO(old))), list(csv.reader(io.StringIO(new)))
    out = [f"messages: {len(a) - 1} -> {len(b) - 1} rows"] if len(a) != len(b) else []
    for ra, rb in zip(a, b):
        if ra != rb:
            out.append(f"message row {ra[0]}: {','.join(ra)} -> {','.join(rb)}")
    return out


@pytest.mark.parametrize("name", G.NAMES)
def test_golden_scenario_is_unchanged(name):
    json_path, csv_path = G.HERE / f"{name}.json", G.HERE / f"{name}.csv"
    assert json_path.exists() and csv_path.exists(), f"no golden files for {name}: run `make golden`"
    record, messages = G.run(name)
    old = json.loads(json_path.read_text())
    new = json.loads(G.dumps(record))                  # through JSON, as stored
    diffs = _diff(old, new) + _rows_diff(csv_path.read_text(), messages)
    assert not diffs, (f"golden scenario {name} ({old.get('pins')}) changed:\n  " + "\n  ".join(diffs[:40]) +
                       ("\n  ..." if len(diffs) > 40 else "") +
                       "\nIf intended: `make golden`, and explain in the commit message why these numbers moved.")


@pytest.mark.parametrize("name", G.NAMES)
def test_golden_scenario_exercises_its_mechanism(name):
    """Each stored golden shows its mechanism at work (a failure that drops packets, a cache that
    misses, ...): a golden that stopped exercising it would pin nothing."""
    counters = json.loads((G.HERE / f"{name}.json").read_text())["counters"]
    short = {k: (counters.get(k), least) for k, least in G.EXERCISES[name].items() if counters.get(k, 0) < least}
    assert not short, f"golden {name} no longer exercises its mechanism: (counter, minimum) {short}"
    if "conservation_ok" in counters:                 # scenario runs (collective records carry sim counters)
        assert counters["conservation_ok"] == 1


def test_every_golden_file_belongs_to_a_scenario():
    stored = {p.stem for p in G.HERE.glob("*.json")} | {p.stem for p in G.HERE.glob("*.csv")}
    assert stored == set(G.NAMES), f"stale or missing golden files: {sorted(stored ^ set(G.NAMES))}"


def test_golden_scenarios_are_deterministic():
    """One scenario + one seed = one result: the same golden run twice gives identical records."""
    assert G.run("sr_loss") == G.run("sr_loss")


def test_golden_comparison_names_what_moved():
    """The comparison is not vacuous: a changed counter and a changed message row are reported."""
    old = {"counters": {"data_sent": 10, "timeouts": 0}}
    new = {"counters": {"data_sent": 12, "timeouts": 0, "x": 1}}
    assert _diff(old, new) == ["counters.data_sent: 10 -> 12", "counters.x: (new) 1"]
    assert _rows_diff("msg,qp\n0,1\n", "msg,qp\n0,2\n") == ["message row 0: 0,1 -> 0,2"]
