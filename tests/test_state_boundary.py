"""The C/Python boundary after the header split (docs/architecture.md, 'The C/Python boundary' and
'Module-owned state'): Python views the telemetry records (sd_port_stats, sd_qp_stats,
sd_path_stats), each an array of its own; the working state (sd_port, sd_qp, sd_path_state) is
private to native/sim.h; test hooks are cdef'd from native/softdpu_testing.h only; and every
module of the data plane accounts for the bytes it allocated."""
import re

import numpy as np
import pytest

from dataplane import build
from dataplane import sim as dp
from dataplane._native import ffi, lib

MB = 1_000_000


def _functions(cdef: str) -> set[str]:
    """Names of the functions a cdef text declares."""
    text = re.sub(r"/\*.*?\*/", "", cdef, flags=re.S)
    return set(re.findall(r"\b(sd_\w+)\s*\(", text)) - {"sd_sim"}


def _pair(sim_kwargs=None):
    """Two hosts under one switch, one QP pair."""
    s = dp.Simulator(num_hosts=2, num_switches=1, max_links=2, **(sim_kwargs or {}))
    s.add_links([0, 1], [2, 2], [100_000_000_000] * 2, [1_000_000] * 2)
    s.install_fib([[0, 1]], [0, 1, 2], [1, 3])
    return s, s.create_qp_pair(0, 1, 49152)


# ---------------------------------------------------------------------------- the testing header
def test_testing_hooks_are_not_in_the_production_cdef():
    prod, testing = _functions(build.cdef_text()), _functions(build.testing_cdef_text())
    # the hooks the issue names, and the other test/benchmark-only entry points
    assert testing == {"sd_vs_debug_fail_alloc", "sd_bench_cc_twin", "sd_vs_bench_lookup", "sd_selftest_event_queue",
                       "sd_debug_set_lookahead"}
    assert not prod & testing
    assert "sd_run_until" in prod and "sd_mem_report" in prod
    for name in testing:              # still compiled and callable (tests and `softdpu bench` use them)
        assert callable(getattr(lib, name))


def test_internal_state_is_not_visible_to_python():
    for private in ("sd_qp", "sd_port", "sd_path_state", "sd_mmu", "sd_module"):
        with pytest.raises(ffi.error):
            ffi.typeof(private)


# ---------------------------------------------------------------------------- the telemetry records
# Fields of the working state that must not leak into the records (scheduling-ring links, bitmap
# offsets, ACK-batch accumulators, timers, pacing, CC state, PFC timers, hook lists).
INTERNAL_QP = {"ring_next", "ring_prev", "bits_off", "acc_acks", "acc_ecn", "acc_bytes", "acc_rtt_min", "timer_at",
               "timer_queued", "cc_state", "next_tx_ps", "snd_una", "snd_nxt", "path_rng", "ep_end", "una_msg", "st"}
INTERNAL_PORT = {"q_head", "q_tail", "wire_head", "wire_tail", "busy_until", "wire_event", "tx_pending", "cap_tx",
                 "cap_rx", "rng", "pause_until", "refresh_at", "hook", "nhook", "st"}


@pytest.mark.parametrize("view,ctype,dtype,internal", [
    ("qps", "sd_qp_stats", dp.QP_DTYPE, INTERNAL_QP),
    ("ports", "sd_port_stats", dp.PORT_DTYPE, INTERNAL_PORT),
    ("path_states", "sd_path_stats", dp.PATH_STATE_DTYPE, {"slot_of", "reps_ring", "plb_acks", "last_tx_ps", "st"}),
])
def test_views_are_views_of_their_own_record_arrays(view, ctype, dtype, internal):
    s, qp = _pair()
    s.set_paths(qp, "spray_rr", [100, 200])
    v = getattr(s, view)
    # the documented dtype: the record's compiled layout, nothing else
    assert v.dtype == dtype and dtype.itemsize == ffi.sizeof(ctype)
    assert set(dtype.names) == {name for name, _ in ffi.typeof(ctype).fields}
    assert not set(dtype.names) & internal
    # zero-copy: the view's buffer is the record array the C accessor returns
    n = ffi.new("uint32_t *")
    ptr = getattr(lib, {"qps": "sd_qps", "ports": "sd_ports", "path_states": "sd_path_states"}[view])(s._sim, n)
    assert v.__array_interface__["data"][0] == int(ffi.cast("uintptr_t", ptr))
    assert v.base is not None and not v.flags.owndata and len(v) == n[0]


def test_records_carry_what_python_reads_and_follow_the_run():
    s, qp = _pair()
    s.set_paths(qp, "spray_weighted", [100, 200, 300], weights=[1, 2, 5])
    s.set_ar_classes(qp, ["ack"])
    s.post_writes([qp], [MB], [0])
    q, ports = s.qps, s.ports
    assert s.run_until(10**10) == dp.STOP_IDLE
    # configuration published by the setters (what controlplane/fabric/failures.py reads)
    assert (int(q[qp]["host"]), int(q[qp]["peer_host"]), int(q[qp]["peer_qp"])) == (0, 1, qp + 1)
    assert int(q[qp]["npaths"]) == 3 and list(s.path_states[qp]["entropy"][:3]) == [100, 200, 300]
    # the path set's weights are policy state, decoded by path_set (not an encoding in the QP record)
    assert "paths" not in q.dtype.names and "path_weight" not in q.dtype.names
    assert s.path_set(qp).weights == (1.0, 2.0, 5.0)
    assert int(q[qp]["ar"]) == lib.SD_AR_CLASS_ACK                         # set_ar_classes replaced the mask
    assert list(ports["node"]) == [0, 2, 1, 2] and list(ports["peer"]) == [1, 0, 3, 2]
    # counters updated in place by the hot path: the same (earlier fetched) views see them
    assert int(q[qp]["acked_bytes"]) == MB and int(q[qp + 1]["rx_bytes"]) == MB
    assert int(s.path_states[qp]["sent"][:3].sum()) == int(q[qp]["sent_packets"])
    assert int(ports["tx_packets"][0]) == int(q[qp]["sent_packets"])      # every data packet left host 0's port
    s.set_link_up(0, False)
    assert list(s.ports["up"]) == [0, 0, 1, 1]
    s.set_qdisc(1, 1, "red_ecn", kmin_bytes=1000, kmax_bytes=2000, pmax=0.5)
    assert (int(s.ports[1]["kmin"][1]), int(s.ports[1]["kmax"][1]), float(s.ports[1]["pmax"][1])) == (1000, 2000, 0.5)
    assert int(s.ports[1]["qdisc"][1]) == lib.SD_QDISC_RED_ECN


def test_qp_records_follow_table_growth():
    s, qp = _pair({"max_qps": 2})
    s.post_writes([qp], [MB], [0])
    first = s.qps
    more = [s.create_qp_pair(0, 1, 50000 + i) for i in range(5)]       # the QP table grows (2 -> 16)
    s.post_writes(more, [MB] * 5, [0] * 5)
    assert s.run_until(10**10) == dp.STOP_IDLE
    q = s.qps                                                          # re-fetched after growth, as documented
    assert len(q) == 12 and (q["acked_bytes"][[qp, *more]] == MB).all() and (q["rx_bytes"][[qp + 1]] == MB).all()
    assert int(first[0]["host"]) == 0                                  # the old view still reads its own copy


# ---------------------------------------------------------------------------- memory accounting by module
MODULES = ["core", "ports", "packets", "events", "transport", "cc", "paths", "reorder", "reads", "pfc", "int",
           "qdisc", "vswitch", "qpc", "capture"]


def test_memory_by_module_matches_the_allocated_sizes():
    kw = dict(max_qps=4, max_msgs=8, pkt_pool=64, completion_ring=32, trace_capacity=10, int_multi=1)
    s, qp = _pair(kw)
    mem = s.memory()
    assert list(mem) == MODULES
    assert sum(mem.values()) == s.memory_bytes()
    # expected bytes from the allocation sizes (native/sim.c, pfc.c, int.c): 2 links = 4 ports
    # (state + record each); the packet pool; max_qps QPs (state + record), max_msgs messages
    # (sd_msg + a uint32 post-order slot), the completion ring; 16 CC parameter blocks (a
    # uint32 kind, 4 B padding, 16 doubles = 136 B) and trace_capacity trace records; one
    # 64-byte sd_mmu per switch (6 uint64 + 4 uint32); an INT stack per pool packet (nhop + pad +
    # 5 hops of 4 uint32 = 88 B).
    assert mem["ports"] == 4 * dp.SIZEOF_PORT
    assert mem["packets"] == 64 * dp.SIZEOF_PACKET
    assert mem["transport"] == 4 * dp.SIZEOF_QP + 8 * (ffi.sizeof("sd_msg") + 4) + 32 * ffi.sizeof("sd_completion")
    assert mem["cc"] == 16 * (4 + 4 + 16 * 8) + 10 * ffi.sizeof("sd_cc_trace")
    assert mem["pfc"] == 1 * 64
    assert mem["int"] == 64 * (4 + 4 + 5 * ffi.sizeof("sd_int_hop"))
    # lazily allocated modules hold nothing until a setter of theirs runs
    assert mem["paths"] == mem["reorder"] == mem["reads"] == mem["qdisc"] == mem["vswitch"] == mem["qpc"] == \
        mem["capture"] == 0
    s.set_paths(qp, "spray_rr", [100, 200])
    s.set_transport(qp, "sr", reorder_window=64)
    mem2 = s.memory()
    # paths: one row per QP of the table (max_qps = 4 rows); reorder: 12 words per 64 packets of
    # window for each QP of the pair, in a pool that starts at 1024 words (native/sim.c)
    assert mem2["paths"] == 4 * dp.SIZEOF_PATH_STATE
    assert mem2["reorder"] == 1024 * 8
    assert {k: v for k, v in mem2.items() if k not in ("paths", "reorder")} == \
        {k: v for k, v in mem.items() if k not in ("paths", "reorder")}
    assert sum(mem2.values()) == s.memory_bytes()
    # reads: once a READ is posted, SD_MAX_RD_ATOMIC response jobs for every QP (sd_rd_job, native/sim.h:
    # four uint32, a uint64, two uint32 = 32 B), in rows grown as sim.c's grow_array does (8, doubling)
    s.post_msgs([qp], [1000], [0], ["read"])
    rows = 8
    while rows < len(s.qps):
        rows *= 2
    assert s.memory()["reads"] == rows * dp.MAX_RD_ATOMIC * 32


def test_int_module_holds_nothing_without_int():
    s, _ = _pair()
    assert s.memory()["int"] == 0 and s.memory()["pfc"] == 64


def test_record_sizes_stay_within_the_per_object_budget():
    # issue #2's budget: <= 1 KB per QP, now its working state plus its record
    assert dp.SIZEOF_QP <= 1024
    assert dp.QP_DTYPE.itemsize < dp.SIZEOF_QP and dp.PORT_DTYPE.itemsize < dp.SIZEOF_PORT
    assert np.dtype(dp.PORT_DTYPE).itemsize % 64 == 0      # records keep their hot first line aligned
