"""Replay: a RoCEv2 capture becomes a softdpu workload.

Every RDMA WRITE in the capture (the packet with a RETH: WRITE First/Only) becomes a message of
its RETH DMA length, posted at the time of that packet relative to the first record. Messages of
one connection (source address, destination address, DestQP) share one QP pair, so their order
is kept. Retransmitted copies (same connection and PSN) are counted once. Hosts are assigned by
softdpu's address plan (``hosts="softdpu"``: 10.0.0.0 + h + 1) or in order of first appearance
(``hosts="order"``, for captures from real hardware). A post time that does not fit int64
picoseconds (after ``time_scale``) is an error naming the file and the pcap record.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np

from dataplane.pcap import OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, PcapRead, read_pcap, softdpu_host

INT64_MAX = 2**63 - 1


def messages(capture: str | Path | PcapRead, hosts: str = "order", time_scale: float = 1.0) -> tuple[list[dict], int]:
    """Flows (``workload.from_list`` form, with ``conn``) and the number of hosts they need."""
    read = capture if isinstance(capture, PcapRead) else read_pcap(capture)
    rec = read.records
    if hosts not in ("order", "softdpu"):
        raise ValueError(f"replay hosts must be 'order' or 'softdpu', got {hosts!r}")
    if not (isinstance(time_scale, numbers.Real) and not isinstance(time_scale, bool)
            and math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"replay time_scale must be a finite number > 0, got {time_scale!r}")
    starts = rec[np.isin(rec["opcode"], [OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM])]
    if len(rec) == 0 or len(starts) == 0:
        raise ValueError(f"{read.path or 'replay'}: the capture has no RDMA WRITE with a RETH ({read.report()})")
    t0 = int(rec["t_ns"].min())
    ids: dict[tuple, int] = {}

    def host(version, addr) -> int:
        key = (int(version), bytes(addr))
        if hosts == "softdpu":
            h = softdpu_host(version, addr)
            if h < 0:
                raise ValueError("replay hosts='softdpu': an address is outside 10.0.0.0/8 / fd00::/64; "
                                 "use hosts='order'")
            return h
        return ids.setdefault(key, len(ids))

    flows, seen, conns = [], set(), {}
    for r in starts:
        src, dst = host(r["ip_version"], r["src"]), host(r["ip_version"], r["dst"])
        conn_key = (src, dst, int(r["dqp"]))
        if (conn_key, int(r["psn"])) in seen:
            continue                                    # a retransmission
        seen.add((conn_key, int(r["psn"])))
        if src == dst:
            continue
        rel_ns = int(r["t_ns"]) - t0
        start_ps = rel_ns * 1000 if time_scale == 1 else int(round(rel_ns * 1000 * time_scale))
        if start_ps > INT64_MAX:
            raise ValueError(f"{read.path or 'replay'}: record {int(r['record'])}: posted {rel_ns} ns after the "
                             f"earliest record (x time_scale {time_scale}) = {start_ps} ps, beyond int64 picoseconds "
                             f"(at most {INT64_MAX} ps, about 106 days)")
        flows.append({"src": src, "dst": dst, "size_bytes": max(1, int(r["reth_len"])), "start_ps": start_ps,
                      "conn": conns.setdefault(conn_key, len(conns))})
    if not flows:
        raise ValueError(f"{read.path or 'replay'}: every RDMA WRITE of the capture goes from a host to itself "
                         f"({read.report()})")
    n_hosts = 1 + max(max(f["src"], f["dst"]) for f in flows)
    return flows, n_hosts
