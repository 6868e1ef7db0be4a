"""The DPU experiments (experiments/virtualization_tax.py, experiments/upcall_storm.py) at tiny
sizes: they write their CSV and PNG, and their headline relationships hold."""
import csv

import pytest

from controlplane.config.units import KB


def rows_of(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.plots
def test_virtualization_tax(tmp_path):
    from experiments import virtualization_tax
    params = {"hosts": 4, "loads_gbps": [2, 8], "warmup_us": 200, "window_us": 600}
    rows = virtualization_tax.run(tmp_path, params, seed=1)["rows"]
    assert (tmp_path / "virtualization_tax.csv").is_file() and (tmp_path / "virtualization_tax.png").is_file()
    assert len(rows_of(tmp_path / "virtualization_tax.csv")) == len(rows) == 2 * 3 * 2    # mixes x offloads x loads
    by = {(r["mix"], r["offload"], r["load_gbps"]): r for r in rows}
    for mix in ("long", "short"):
        for load in (2.0, 8.0):
            host, dpu = by[(mix, "host", load)], by[(mix, "dpu", load)]
            # the software vSwitch burns host cores; offloaded, the host pays nothing, the DPU does
            assert host["host_cores_per_server"] > 0 and host["dpu_cores_per_server"] == 0
            assert dpu["host_cores_per_server"] == 0 and dpu["dpu_cores_per_server"] > 0
            assert dpu["usd_per_server_year"] == 0 < host["usd_per_server_year"]
            # the fast path in hardware: only the upcall handlers use DPU cores
            hw = by[(mix, "hw", load)]
            assert hw["host_cores_per_server"] == 0 and hw["dpu_cores_per_server"] < dpu["dpu_cores_per_server"]
    # long-lived connections: no misses in steady state, the tax grows with the load (~linearly)
    lo, hi = by[("long", "host", 2.0)], by[("long", "host", 8.0)]
    assert lo["miss_rate"] == 0 and hi["miss_rate"] == 0 and lo["lost_rate"] == 0
    assert 3 < hi["host_cores_per_server"] / lo["host_cores_per_server"] < 5
    # below saturation every byte posted in the window is acknowledged in it, except a message still
    # in flight at the window's end: the long mix posts its first message inside the window (at
    # warmup + a random phase) and one message per host takes ~6 us of its 262 us gap at 2 Gb/s, so
    # 0 <= offered - achieved <= one 64 KB message per host over the window
    one_msg_gbps = KB(64) * 8e3 / (params["window_us"] * 1e6)
    for r in (lo, hi):
        assert 0 <= r["offered_gbps_per_server"] - r["achieved_gbps_per_server"] <= one_msg_gbps + 1e-9, r
    # a new connection per message: most packets are upcalled, the upcall dominates the cycles
    short = by[("short", "host", 2.0)]
    assert short["miss_rate"] > 0.3
    assert short["cycles_per_packet"] > 10 * lo["cycles_per_packet"]
    assert short["cpp_upcall"] > 0.5 * short["cycles_per_packet"] and lo["cpp_upcall"] == 0
    assert short["host_cores_per_server"] > 5 * lo["host_cores_per_server"]
    assert by[("long", "hw", 8.0)]["dpu_cores_per_server"] == 0 < by[("short", "hw", 8.0)]["dpu_cores_per_server"]


@pytest.mark.plots
def test_upcall_storm(tmp_path):
    from experiments import upcall_storm
    params = {"hosts": 4, "handlers": [1], "rates": [5_000, 100_000], "window_us": 2000, "drain_us": 1000,
              "upcall_queue": 64}
    rows = upcall_storm.run(tmp_path, params, seed=1)["rows"]
    assert (tmp_path / "upcall_storm.csv").is_file() and (tmp_path / "upcall_storm.png").is_file()
    assert len(rows_of(tmp_path / "upcall_storm.csv")) == 2
    low, high = sorted(rows, key=lambda r: r["rate"])
    # 1 handler, 20 000 cycles at 2 GHz: 100 000 upcalls/s per DPU, 4 upcalls per connection
    assert low["saturation_conns_per_s"] == pytest.approx(25_000)
    # below saturation: every connection completes, installs take service + install latency, nothing lost
    assert low["lost_rate"] == 0 and low["completed_fraction"] == 1.0
    assert low["install_latency_p50_us"] == pytest.approx(20, abs=1)
    # every connection offered completes (above), each within a few install latencies: its latency
    # p99 is a small share of the window, so the completions of the steady part of the window are the
    # connections started there (the rates then differ only by Poisson noise, no further check)
    assert low["conn_latency_p99_us"] < 0.05 * params["window_us"]
    # 4x past saturation: the queue fills, packets are lost, installs wait, completions fall below capacity
    assert high["lost_rate"] > 0 and high["upcall_peak"] == 64
    assert high["install_latency_p99_us"] > 10 * low["install_latency_p99_us"]
    assert high["completed_conns_per_s"] < high["saturation_conns_per_s"] < high["offered_conns_per_s"]
