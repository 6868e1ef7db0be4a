"""User congestion-control plug-ins: a Python class from a file runs as the CC of a scenario,
with no rebuild; its errors surface as Python exceptions."""
from pathlib import Path

import numpy as np

import pytest

from controlplane.scenario import Scenario
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
    from controlplane.results import load_run
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
