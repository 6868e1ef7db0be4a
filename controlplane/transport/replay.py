"""Replay: a RoCEv2 capture becomes a softdpu workload.

The capture's RDMA messages become flows (``workload.from_list`` form), each with its verb
(controlplane/transport/workload.py VERBS), size, start time and connection, from the request
packets (IBTA Vol. 1 §9.2-9.4; opcodes of the RC transport):

* WRITE (First 6, Middle 7, Last 8, Last with Immediate 9, Only 10, Only with Immediate 11): the
  size is the RETH DMA length of the First/Only packet; ``write_imm`` when the message ends with
  an opcode with Immediate (9, 11), else ``write``;
* SEND (First 0, Middle 1, Last 2, Last with Immediate 3, Only 4, Only with Immediate 5): the
  size is the sum of the payload lengths of the message's packets; ``send_imm`` when it ends
  with an opcode with Immediate (3, 5), else ``send``;
* READ: the READ Request (12) is the message, of its RETH DMA length, from the requester (the
  request's sender, ``src``) to the responder (``dst``), verb ``read``; the READ Responses
  (13-16) that carry the data back are not messages of their own. ACKs, atomics and CNPs are
  not messages either.

A message is posted at the time of its first packet, relative to the capture's earliest
record. Connections are QP pairs: the packets of one (source host, destination host, DestQP)
are one connection, whose messages share one QP pair in order (``conn``). A repeated copy (a
retransmission, or the same packet at another capture point: same connection and PSN) is
counted once. A connection's request packets are taken in PSN
order (PSNs unwrapped in capture order, so a connection may pass 2^24 packets), which is the
order the requester sent them (RC), whatever order a capture point saw them in: a message runs
from its First packet to its Last: a SEND whose first
packets are not in the capture (it starts with a Middle or Last packet) or whose Last packet is
not (the capture ends, or the next message begins) has no known size and is left out, counted
in :attr:`Extracted.incomplete` and named in a warning, never guessed; so is a WRITE without its
First packet (no RETH). A WRITE whose Last packet is missing keeps its RETH size (verb
``write``). A zero-length message becomes 1 byte (a flow
has a positive size).

Hosts are assigned by softdpu's address plan (``hosts="softdpu"``: 10.0.0.0 + h + 1) or in
order of first appearance among the messages' senders and receivers (``hosts="order"``, for
captures from real hardware). A post time that does not fit int64 picoseconds (after
``time_scale``) is an error naming the file and the pcap record.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dataplane.pcap import OP_READ_REQUEST, OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, PcapRead, read_pcap, \
    softdpu_host

INT64_MAX = 2**63 - 1
OP_SEND_FIRST, OP_SEND_MIDDLE, OP_SEND_LAST, OP_SEND_LAST_IMM, OP_SEND_ONLY, OP_SEND_ONLY_IMM = 0, 1, 2, 3, 4, 5
_FIRST = {OP_SEND_FIRST: "send", OP_WRITE_FIRST: "write"}                 # a message that goes on
_ONLY = {OP_SEND_ONLY: "send", OP_SEND_ONLY_IMM: "send_imm", OP_WRITE_ONLY: "write",
         OP_WRITE_ONLY_IMM: "write_imm", OP_READ_REQUEST: "read"}          # a message in one packet
_MIDDLE = {OP_SEND_MIDDLE: "send", 7: "write"}
_LAST = {OP_SEND_LAST: ("send", "send"), OP_SEND_LAST_IMM: ("send", "send_imm"), 8: ("write", "write"),
         9: ("write", "write_imm")}                                       # opcode -> (kind, final verb)
_REQUEST_OPS = sorted(set(_FIRST) | set(_ONLY) | set(_MIDDLE) | set(_LAST))


@dataclass
class Extracted:
    """What :func:`extract` found: the flows, the hosts they need, and what was left out."""
    flows: list[dict]
    n_hosts: int
    verbs: Counter = field(default_factory=Counter)        # verb -> messages
    incomplete: Counter = field(default_factory=Counter)   # "send_without_first" / "send_without_last" /
                                                           # "write_without_first" -> messages left out
    repeated: int = 0          # request packets seen again (same connection and PSN): retransmissions, or the
                               # same packet at another capture point
    path: str = ""

    def report(self) -> str:
        parts = [f"{len(self.flows)} messages"] + [f"{n} {v}" for v, n in sorted(self.verbs.items())]
        parts += [f"{n} {k} (left out)" for k, n in sorted(self.incomplete.items())]
        if self.repeated:
            parts.append(f"{self.repeated} repeated packets (retransmissions, other capture points) counted once")
        return ", ".join(parts)


def messages(capture: str | Path | PcapRead, hosts: str = "order", time_scale: float = 1.0) -> tuple[list[dict], int]:
    """Flows (``workload.from_list`` form, with ``conn`` and ``verb``) and the number of hosts
    they need; incomplete SENDs left out are named in a warning (:func:`extract` counts them)."""
    got = extract(capture, hosts, time_scale)
    if got.incomplete:
        warnings.warn(f"{got.path or 'replay'}: " + ", ".join(f"{n} {k}" for k, n in sorted(got.incomplete.items()))
                      + ": messages whose size the capture does not show were left out", stacklevel=2)
    return got.flows, got.n_hosts


def extract(capture: str | Path | PcapRead, hosts: str = "order", time_scale: float = 1.0) -> Extracted:
    """The capture's messages (module docstring) with what was left out and why."""
    read = capture if isinstance(capture, PcapRead) else read_pcap(capture)
    rec = read.records
    where = read.path or "replay"
    if hosts not in ("order", "softdpu"):
        raise ValueError(f"replay hosts must be 'order' or 'softdpu', got {hosts!r}")
    if not (isinstance(time_scale, numbers.Real) and not isinstance(time_scale, bool)
            and math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"replay time_scale must be a finite number > 0, got {time_scale!r}")
    t0 = int(rec["t_ns"].min()) if len(rec) else 0
    ids: dict[tuple, int] = {}

    def host(version, addr) -> int:
        if hosts == "softdpu":
            h = softdpu_host(version, addr)
            if h < 0:
                raise ValueError("replay hosts='softdpu': an address is outside 10.0.0.0/8 / fd00::/64; "
                                 "use hosts='order'")
            return h
        return ids.setdefault((int(version), bytes(addr)), len(ids))

    def post_time(r) -> int:
        rel_ns = int(r["t_ns"]) - t0
        start_ps = rel_ns * 1000 if time_scale == 1 else int(round(rel_ns * 1000 * time_scale))
        if start_ps > INT64_MAX:
            raise ValueError(f"{where}: record {int(r['record'])}: posted {rel_ns} ns after the "
                             f"earliest record (x time_scale {time_scale}) = {start_ps} ps, beyond int64 picoseconds "
                             f"(at most {INT64_MAX} ps, about 106 days)")
        return start_ps

    out = Extracted([], 0, path=read.path)
    requests = rec[np.isin(rec["opcode"], _REQUEST_OPS)]
    ops, psns = requests["opcode"].tolist(), requests["psn"].tolist()
    payload, reth = requests["payload_len"].tolist(), requests["reth_len"].tolist()
    by_conn: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(requests["ip_version"].tolist(), map(bytes, requests["src"]),
                                map(bytes, requests["dst"]), requests["dqp"].tolist())):
        by_conn.setdefault(key, []).append(i)
    msgs: list[dict] = []                 # every message begun
    for key, rows in by_conn.items():
        # a connection's packets in PSN order, each PSN once: PSNs unwrapped in capture order (a
        # step of less than 2^23 either way), so a long connection may wrap the 24-bit PSN
        first_copy: dict[int, int] = {}
        u, last = 0, None
        for i in rows:
            psn = psns[i]
            if last is not None:
                u += ((psn - last + (1 << 23)) & 0xFFFFFF) - (1 << 23)
            last = psn
            if u in first_copy:
                out.repeated += 1
            else:
                first_copy[u] = i
        open_msg, orphan = None, None     # the message being assembled; the kind of one whose First is missing
        for u in sorted(first_copy):
            i = first_copy[u]
            op = ops[i]
            if op in _FIRST or op in _ONLY:
                if open_msg is not None and open_msg["kind"] == "send":   # its Last never came
                    open_msg["complete"] = False
                    out.incomplete["send_without_last"] += 1
                orphan = None
                m = {"i": i, "complete": True, "verb": _FIRST.get(op) or _ONLY[op],
                     "kind": "send" if op <= OP_SEND_ONLY_IMM else "read" if op == OP_READ_REQUEST else "write",
                     "size": reth[i] if op in (OP_WRITE_FIRST, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, OP_READ_REQUEST)
                     else payload[i]}
                msgs.append(m)
                open_msg = m if op in _FIRST else None
                continue
            kind = _MIDDLE[op] if op in _MIDDLE else _LAST[op][0]
            if open_msg is None or open_msg["kind"] != kind:     # a Middle/Last without its First
                if open_msg is not None and open_msg["kind"] == "send":
                    open_msg["complete"] = False
                    out.incomplete["send_without_last"] += 1
                open_msg = None
                if orphan != kind:
                    orphan = kind
                    out.incomplete[f"{kind}_without_first"] += 1
                if op in _LAST:
                    orphan = None
                continue
            if kind == "send":
                open_msg["size"] += payload[i]
            if op in _LAST:
                open_msg["verb"] = _LAST[op][1]
                open_msg = None
        if open_msg is not None and open_msg["kind"] == "send":          # the capture ends inside it
            open_msg["complete"] = False
            out.incomplete["send_without_last"] += 1
    # in the order of their first packets: hosts numbered in order of appearance, then connections
    conns: dict[tuple, int] = {}
    for m in sorted((m for m in msgs if m["complete"]), key=lambda m: m["i"]):    # record order
        r = requests[m["i"]]
        src, dst = host(r["ip_version"], r["src"]), host(r["ip_version"], r["dst"])
        if src == dst:
            continue
        out.flows.append({"src": src, "dst": dst, "size_bytes": max(1, m["size"]), "start_ps": post_time(r),
                          "conn": conns.setdefault((src, dst, int(r["dqp"])), len(conns)), "verb": m["verb"]})
        out.verbs[m["verb"]] += 1
    if not out.flows:
        left = f"; left out: {', '.join(f'{n} {k}' for k, n in sorted(out.incomplete.items()))}" if out.incomplete \
            else ""
        if any(m["complete"] for m in msgs):          # all of them from a host to itself
            raise ValueError(f"{where}: every RDMA message of the capture goes from a host to itself "
                             f"({read.report()})")
        raise ValueError(f"{where}: the capture has no RDMA WRITE, SEND or READ message (a WRITE First/Only with "
                         f"its RETH, a SEND First ... Last or Only, a READ Request){left} ({read.report()})")
    out.n_hosts = 1 + max(max(f["src"], f["dst"]) for f in out.flows)
    return out
