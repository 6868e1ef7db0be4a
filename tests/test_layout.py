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
