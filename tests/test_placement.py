"""Placement (controlplane/ai/placement.py): no GPU shared by two jobs, topology-aware placement
minimises the tier its all-reduce crosses (never worse than random), bad input."""
import numpy as np
import pytest

from controlplane.ai.placement import Occupancy, place_random, place_topology_aware, placement_tier
from controlplane.ai.rails import Gpu, RailLayout, rail_clos
from controlplane.config.units import Gbps, us


def layout(**kw):
    args = dict(host_rate_bps=Gbps(100), host_delay_ps=us(1), num_rails=4, servers_per_leaf=4, leaves_per_rail=3,
                spines_per_rail=2, cores_per_group=2, nvlink_rate_bps=Gbps(900))
    args.update(kw)
    return RailLayout.of(rail_clos(**args))


def test_no_gpu_is_given_to_two_jobs():
    """Random and topology-aware jobs of random sizes until the fabric is full: every GPU has at
    most one owner and each job holds exactly what it was given."""
    lay = layout()
    rng = np.random.default_rng(3)
    occ = Occupancy(lay)
    given = {}
    job = 0
    while occ.num_free:
        n = int(rng.integers(1, min(9, occ.num_free) + 1))
        place = place_random if job % 2 else place_topology_aware
        gpus = place(occ, n, rng, job=job) if place is place_random else place(occ, n, job=job)
        assert len(gpus) == n == len(set(gpus))
        given[job] = sorted(gpus)
        job += 1
    all_gpus = [g for gs in given.values() for g in gs]
    assert len(all_gpus) == len(set(all_gpus)) == lay.num_gpus
    assert {j: sorted(g) for j, g in occ.jobs().items()} == given
    with pytest.raises(ValueError, match="already held"):
        Occupancy.allocate(occ, 999, [Gpu(0, 0)])
    occ.release(0)
    assert occ.num_free == len(given[0])


def test_topology_aware_prefers_lower_tiers():
    lay = layout()
    occ = Occupancy(lay)
    a = place_topology_aware(occ, 3, job=0)                   # fits one server: NVLink only
    assert placement_tier(lay, a) == 0 and len({g.server for g in a}) == 1
    b = place_topology_aware(occ, 8, job=1)                   # two whole servers of one leaf group
    assert placement_tier(lay, b) == 1 and len({g.server for g in b}) == 2
    c = place_topology_aware(occ, 24, job=2)                  # six whole servers: two leaf groups
    assert placement_tier(lay, c) == 2
    # what is left: server 0 has 1 free GPU, so 4 more GPUs on a whole free server
    d = place_topology_aware(occ, 4, job=3)
    assert placement_tier(lay, d) == 0


def test_topology_aware_never_worse_than_random():
    """Over random partly occupied fabrics the aware placement's tier is <= the random one's,
    and strictly lower on average."""
    lay = layout()
    rng = np.random.default_rng(11)
    aware, rand = [], []
    for _ in range(40):
        occ = Occupancy(lay)
        place_random(occ, int(rng.integers(10, 30)), rng, job=0)
        n = int(rng.choice([2, 4, 8, 12]))
        if n > occ.num_free:
            continue
        ta = placement_tier(lay, place_topology_aware(occ, n))
        tr = placement_tier(lay, place_random(occ, n, rng))
        assert ta <= tr
        aware.append(ta)
        rand.append(tr)
    assert np.mean(aware) < np.mean(rand)


def test_placement_tier_examples():
    lay = layout()
    assert placement_tier(lay, [Gpu(0, 0), Gpu(0, 3)]) == 0
    assert placement_tier(lay, [Gpu(0, 1), Gpu(1, 1)]) == 1
    assert placement_tier(lay, [Gpu(0, 1), Gpu(5, 1)]) == 2
    assert placement_tier(lay, [Gpu(0, 1), Gpu(1, 2)]) == 3
    no_nvlink = layout(nvlink_rate_bps=0)
    assert placement_tier(no_nvlink, [Gpu(0, 0), Gpu(0, 1)]) == 3


def test_bad_input():
    lay = layout()
    occ = Occupancy(lay)
    place_random(occ, lay.num_gpus - 5, np.random.default_rng(1), job=0)
    with pytest.raises(ValueError, match="n_gpus.*6 GPUs.*5 free"):
        place_topology_aware(occ, 6)
    with pytest.raises(ValueError, match="n_gpus"):
        place_random(occ, 0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="n_gpus"):
        place_topology_aware(occ, -2)
    with pytest.raises(ValueError, match="job"):
        place_topology_aware(occ, 1, job=0)
    with pytest.raises(ValueError, match=r"gpus\[0\]"):
        occ.allocate(7, [Gpu(99, 0)])
