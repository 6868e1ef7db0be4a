"""Making runs: a Scenario and its built Network (scenario.py), the control loop every timed
component registers with (control_loop.py), devices over data-plane handles (devices.py), the
experiment machinery (experiment.py), where independent runs execute (executor.py), sweeps
(sweep.py), benchmarks (bench.py) and the softdpu command (cli.py)."""
