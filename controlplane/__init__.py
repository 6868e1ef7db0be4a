"""softdpu's control plane: builds the fabric, programs the data plane (dataplane/sim.py) and handles
everything that is not per packet. One subpackage per part of the system (docs/architecture.md,
'Layout'):

  config/     the scenario schema: shared field types and validation (schema.py), every section
              gathered (models.py), the bounds of time and budget fields (limits.py), units, typed
              values from text
  fabric/     the network: topology, routing, failures, and the switches' queues (ecn, pfc, qdisc)
  transport/  what the QPs run and send: multipath (transport and path policy), workload, replay
  dpu/        the DPU model: vswitch (functions and slow path), vtax, qpc (QP-context cache)
  ai/         the AI fabric: rails, collectives, sharp, placement
  run/        making runs: scenario (build, Network, Result), control_loop, devices, experiment,
              executor, sweep, bench, cli (the ``softdpu`` command)
  results/    what a run records and how it is read back: folder (a results folder and its
              summary metrics), plots, sweep_plots, analysis (pandas/xarray), capture (pcap)

The subpackages import nothing on their own; import the module you need, e.g.
``from controlplane.run.scenario import Scenario``.
"""
