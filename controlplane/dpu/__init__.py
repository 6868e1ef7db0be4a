"""The DPU model: functions and the vSwitch slow path (vswitch.py), the virtualization tax
(vtax.py) and the NICs' QP-context cache (qpc.py)."""
