"""The network: topologies (topology.py), shortest-path ECMP routes (routing.py), failures and
reconvergence (failures.py), and the switches' egress queues: ECN marking (ecn.py), PFC (pfc.py),
queue disciplines (qdisc.py)."""
