"""What a run records and how it is read back: a results folder and its summary metrics
(folder.py), plots (plots.py, sweep_plots.py), the pandas/xarray analysis API (analysis.py) and
packet capture into pcap files (capture.py)."""
