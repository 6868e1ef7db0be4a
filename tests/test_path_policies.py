"""Path policies as providers (native/paths.c registry, native/path_*.c, controlplane/multipath.py
config models), the decoded path-set accessor, and the failover that keeps a QP's AR classes."""
import numpy as np

from controlplane.scenario import Scenario
from controlplane.units import Gbps, MB, us

FAT4 = {"topology": "fat_tree", "k": 4, "host_rate_bps": Gbps(100), "host_delay_ps": us(1)}
CORE_LINK = 47          # k=4 fat-tree: the last link joins an aggregation switch to a core switch


def test_failover_keeps_the_qps_ar_classes():
    """Issue #14: failures.py re-installed a failed-over path set with ar=bool(mask), and the data
    plane read that as "data packets are AR-eligible": a QP configured with ar_classes=["ack"]
    gained adaptive routing of its DATA after a failover. The QPs whose entropies crossed the dead
    link must keep exactly the classes the scenario gave (ack only: mask SD_AR_CLASS_ACK = 2)."""
    r = Scenario(topology=FAT4, workload={"kind": "permutation", "size_bytes": MB(1)}, cc="dcqcn",
                 transport="ooo", adaptive_routing=True, ar_classes=["ack"], sample_interval_ps=0,
                 buffer_bytes=1_000_000, failures=[{"link": CORE_LINK, "down_ps": us(50)}],
                 failure_params={"detect_ps": us(10), "reconverge_ps": 10_000_000_000}).run()
    net = r.network
    moved = [e for e in r.config["resolved"]["failure_log"] if e["action"] == "detect"]
    assert moved                                           # the failover ran
    ends = np.concatenate([net.sender_qps, net.sender_qps + 1])
    assert [int(net.sim.qps[int(qp)]["ar"]) for qp in ends] == [2] * len(ends)
    assert {net.sim.path_set(int(qp)).ar_classes for qp in ends} == {frozenset({"ack"})}
