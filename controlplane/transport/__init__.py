"""What the QPs run and send: transport and path policy per QP (multipath.py), workloads
(workload.py, with the flow-size CDFs in flow_sizes/), and a RoCEv2 capture replayed as a workload
(replay.py)."""
