"""The AI fabric: the rail-optimized Clos (rails.py), collectives as schedules of transfers
(collectives.py), in-network reduction (sharp.py) and job placement (placement.py)."""
