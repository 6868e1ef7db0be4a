"""`none`: no congestion control, every QP at line rate (the baseline).

Losses are repaired by go-back-N only. The baseline every algorithm is compared with."""
from __future__ import annotations

from dataplane.sim import CC_NONE

from congestion.api import CongestionControl
from congestion.params import CCParams


class NoCC(CongestionControl):
    name = "none"
    events = frozenset()
    c_kind = CC_NONE

    class Params(CCParams):
        """No parameters."""
