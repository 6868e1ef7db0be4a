"""Workload generators against their definitions."""
import numpy as np
import pytest

from controlplane.fabric import topology
from controlplane.config.units import Gbps, us
from controlplane.transport.workload import SizeCdf, poisson


@pytest.mark.parametrize("name,mean", [("websearch", 1_711_250), ("fb_hadoop", 120_421), ("alistorage2019", 40_870)])
def test_cdf_means_match_the_reference(name, mean):
    # the means the HPCC repo's traffic_gen/custom_rand.py getAvg() gives for the same CDF files
    # (alibaba-edu/High-Precision-Congestion-Control; trapezoid rule over the CDF points)
    assert SizeCdf(name).mean == pytest.approx(mean, rel=1e-5)


def test_sampling_follows_the_cdf():
    """Kolmogorov-Smirnov distance between 200 000 samples and the piecewise-linear CDF stays
    below 1.36/sqrt(n) (the 95 % critical value)."""
    cdf = SizeCdf("websearch")
    x = np.sort(cdf.sample(np.random.default_rng(3), 200_000))
    emp = np.arange(1, x.size + 1) / x.size
    theo = np.interp(x, cdf.size, cdf.cdf)
    assert np.max(np.abs(emp - theo)) < 1.36 / np.sqrt(x.size) + 1e-4      # + rounding to whole bytes


def test_poisson_offers_the_requested_load():
    """Offered bytes per host = load x rate x duration (traffic_gen.py), within 10 % over 16
    hosts and 200 ms of FB-Hadoop arrivals; destinations are never the source."""
    fab = topology.fat_tree(4, Gbps(100), us(1))
    duration = 200_000_000_000
    flows = poisson(fab, "fb_hadoop", 0.4, duration, np.random.default_rng(1))
    offered = sum(f.size_bytes for f in flows) * 8 / (duration * 1e-12) / (16 * Gbps(100))
    assert offered == pytest.approx(0.4, rel=0.10)
    assert all(f.src != f.dst for f in flows)
    starts = [f.start_ps for f in flows]
    assert starts == sorted(starts) and max(starts) < duration


def test_poisson_bad_input_is_named():
    fab = topology.single_switch(2, Gbps(100), us(1))
    with pytest.raises(ValueError, match="load"):
        poisson(fab, "websearch", 1.5, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="flow-size CDF"):
        poisson(fab, "nosuchcdf", 0.5, 10, np.random.default_rng(0))
