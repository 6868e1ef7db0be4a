"""The verbs settings of every QP: receive queues, RNR, outstanding READs (native/nic.c).

A message of a workload is one RDMA operation (``Flow.verb``): ``write``, ``write_imm``,
``send``, ``send_imm`` or ``read`` (IBTA Vol. 1 §9.4). The ``verbs`` section of a scenario sets,
for both ends of every QP pair:

  rq_depth       receives the responder has posted (None: unlimited, a SEND never finds its
                 receive queue empty; the default)
  rq_repost_ps   a consumed receive is posted again this long after its message completed at the
                 responder (the application's turnaround; -1: never)
  min_rnr_timer  the 5-bit RNR timer code the responder puts in its RNR NAKs (IBTA Table 45:
                 1 = 10 us ... 12 = 0.64 ms ... 31 = 491.52 ms, 0 = 655.36 ms); the requester waits
                 that long before resending
  rnr_retry      RNR NAKs the requester retries without progress (0..7, 7 = forever) before its
                 messages complete in error (rnr_retry_exceeded, the rest flushed)
  max_rd_atomic  READs a QP may have outstanding (1..16, the verbs attribute of that name)
"""
from __future__ import annotations

from controlplane.config.schema import Int, Strict, section


class Verbs(Strict):
    """Receive queues, RNR and READ limits of every QP (both ends)."""
    rq_depth: Int("receives posted at each QP end (None: unlimited)", lo=0, hi=2**32 - 2) | None = None
    rq_repost_ps: Int("a consumed receive is reposted this long after its message completed (-1: never)",
                      lo=-1, hi=10**15) = 0
    min_rnr_timer: Int("RNR timer code of the responder's RNR NAKs (IBTA Table 45; 12 = 0.64 ms)", lo=0, hi=31) = 12
    rnr_retry: Int("RNR retries of the requester (7 = forever)", lo=0, hi=7) = 7
    max_rd_atomic: Int("READs outstanding per QP at most", lo=1, hi=16) = 16


def resolve(spec: dict | None) -> dict | None:
    """The checked section with its defaults, or None when every value is the default (nothing to set)."""
    v = section(Verbs, spec, "verbs").model_dump()
    return None if v == Verbs().model_dump() else v


def install_qp(net, qp: int) -> None:
    """Apply the scenario's verbs settings to both ends of a QP pair just created."""
    v = net.resolved.get("verbs")
    if v is None:
        return
    for end in (qp, qp + 1):
        net.sim.set_qp_verbs(end, v["rq_depth"], v["rq_repost_ps"], v["min_rnr_timer"], v["rnr_retry"],
                             v["max_rd_atomic"])
