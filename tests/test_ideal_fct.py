"""The ideal (standalone) FCT of flows.csv: an isolated message on an idle fabric has slowdown
exactly 1, whatever the link rates, the path length, the mix of rates and the size of its last
packet.

Expected values: the data plane itself. The ideal is computed from the packet sizes, the path's
rates and delays and the data plane's ``ser_ps`` (rounded up to a picosecond per packet and hop),
so ``fct_ps == ideal_fct_ps`` must hold to the picosecond, not within a tolerance. Before the fix
the ideal charged the *last* packet's store-and-forward at every later hop instead of the largest
(first: it carries the 16-byte RETH) and ignored ACKs queueing behind one another on a slow
reverse hop: 25 Gb/s, 1 MB, 3 switches gave slowdown 1.010.
"""
import numpy as np
import pytest

from controlplane.run.scenario import Scenario, message_fct_ps, store_and_forward_ps
from controlplane.config.units import Gbps, MB, us
from dataplane.sim import serialization_ps

MTU = 4096


def leaf_spine(host_bps, fabric_bps, delay=us(1)):
    return {"topology": "leaf_spine", "num_leaves": 2, "num_spines": 2, "hosts_per_leaf": 2,
            "host_rate_bps": host_bps, "fabric_rate_bps": fabric_bps, "host_delay_ps": delay,
            "fabric_delay_ps": delay}


def star(rate_bps):
    return {"topology": "single_switch", "num_hosts": 2, "rate_bps": rate_bps, "delay_ps": us(1)}


def fat_tree(host_bps, agg_bps=None, core_bps=None):
    return {"topology": "fat_tree", "k": 4, "host_rate_bps": host_bps, "host_delay_ps": us(1),
            "agg_rate_bps": agg_bps, "agg_delay_ps": us(2), "core_rate_bps": core_bps, "core_delay_ps": 500_000}


def isolated(topology, dst, size, **kw):
    """One message from host 0 to ``dst`` alone on the fabric: (fct, ideal, slowdown, links)."""
    sc = Scenario(topology=topology, workload={"kind": "flows", "flows": [{"src": 0, "dst": dst, "size_bytes": size}]},
                  sample_interval_ps=0, **{"cc": "none", **kw})
    r = sc.run()
    f = r.flows
    assert f["finish_ps"][0] >= 0
    links = r.network._ideal_paths(0, dst)[0]
    return int(f["fct_ps"][0]), int(f["ideal_fct_ps"][0]), float(f["slowdown"][0]), len(links)


# sizes: 1 MB (short last packet: 576 B), 1 MB + 100 B, one MTU plus one byte (a 1-byte last
# packet behind a full first one), one byte (a single minimum-size frame), exactly one MTU
SIZES = [MB(1), MB(1) + 100, MTU + 1, 1, MTU]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("rate", [Gbps(10), Gbps(25), Gbps(100), Gbps(400)], ids=["10G", "25G", "100G", "400G"])
def test_isolated_message_on_three_switches_has_slowdown_one(rate, size):
    fct, ideal, slowdown, hops = isolated(leaf_spine(rate, rate), 3, size)
    assert hops == 4                                    # h0-leaf-spine-leaf-h3: 3 switches
    assert fct == ideal
    assert slowdown == 1.0


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name,topology,dst,links", [
    ("1 switch 25G", star(Gbps(25)), 1, 2),
    ("5 switches fat-tree 100G", fat_tree(Gbps(100)), 15, 6),
    ("5 switches fat-tree 100/400/200G", fat_tree(Gbps(100), Gbps(400), Gbps(200)), 15, 6),
    ("host 100G fabric 400G", leaf_spine(Gbps(100), Gbps(400)), 3, 4),
    ("host 400G fabric 100G", leaf_spine(Gbps(400), Gbps(100)), 3, 4),
], ids=lambda v: v if isinstance(v, str) else None)
def test_isolated_message_on_any_path_and_rate_mix_has_slowdown_one(name, topology, dst, links, size):
    """Mixed rates: with fast host links around a slow fabric the data arrive at the receiver
    closer together than the slow reverse hop can carry their ACKs, so the ACKs queue there and
    the last one is late by that queue (the ideal counts it); with slow host links behind a fast
    fabric the first link sets the pace."""
    fct, ideal, slowdown, hops = isolated(topology, dst, size)
    assert hops == links
    assert fct == ideal
    assert slowdown == 1.0


@pytest.mark.parametrize("size", [MB(1) + 100, 3 * MTU + 7, MTU + 1])
@pytest.mark.parametrize("variant", [
    {"ack_interval": 4}, {"ack_interval": 3, "topology": leaf_spine(Gbps(400), Gbps(100))}, {"ipv6": True},
    {"mtu_payload": 1024}, {"cc": "dcqcn"}, {"cc": "dctcp"}, {"cc": "timely"}, {"transport": "sr"},
], ids=lambda v: ",".join(f"{k}={v[k] if k != 'topology' else 'ls400/100'}" for k in v))
def test_isolated_message_variants_have_slowdown_one(variant, size):
    """Coalesced ACKs (every n-th packet and the last), IPv6 headers, a smaller MTU, CCs that
    start at line rate and have nothing to react to on an idle fabric, selective repeat."""
    kw = {"topology": leaf_spine(Gbps(25), Gbps(25)), **variant}
    topology = kw.pop("topology")
    fct, ideal, slowdown, _ = isolated(topology, 3, size, **kw)
    assert fct == ideal
    assert slowdown == 1.0


def packet_by_packet_fct(runs, m, ack_wire, fwd_rates, fwd_delays, rev_rates, rev_delays):
    """The definition, literally: every packet through every forward hop (start when it has
    arrived and the previous packet has left), an ACK on every m-th packet and the last, every
    ACK through every reverse hop the same way."""
    sizes = [w for w, c in runs for _ in range(c)]
    arrive = [0] * len(sizes)                           # at the next hop's input
    for j, (rate, delay) in enumerate(zip(fwd_rates, fwd_delays)):
        free = 0
        for k, w in enumerate(sizes):
            free = max(arrive[k], free) + serialization_ps(w, rate)
            arrive[k] = free + delay
    acks = [arrive[k] for k in range(len(sizes)) if (k + 1) % m == 0 or k == len(sizes) - 1]
    for rate, delay in zip(rev_rates, rev_delays):
        free = 0
        for i, t in enumerate(acks):
            free = max(t, free) + serialization_ps(ack_wire, rate)
            acks[i] = free + delay
    return acks[-1]


def test_closed_form_equals_the_packet_by_packet_recursion():
    """message_fct_ps turns only at run boundaries and at the first/last ACKed packet of each
    run; the recursion over every packet must give the same picosecond on random paths (1-6
    hops, rates 1-800 Gb/s, forward and reverse different), trains and ACK intervals."""
    rng = np.random.default_rng(11)
    rates = [Gbps(1), Gbps(10), Gbps(25), Gbps(40), Gbps(100), Gbps(200), Gbps(400), Gbps(800), 33_333_333_333]
    for _ in range(400):
        hops = int(rng.integers(1, 7))
        fwd_r = [int(rng.choice(rates)) for _ in range(hops)]
        rev_r = [int(rng.choice(rates)) for _ in range(hops)]
        fwd_d = [int(rng.integers(0, 3_000_000)) for _ in range(hops)]
        rev_d = [int(rng.integers(0, 3_000_000)) for _ in range(hops)]
        runs = [(int(rng.integers(64, 9100)), int(rng.integers(1, 30))) for _ in range(int(rng.integers(1, 5)))]
        m = int(rng.integers(1, 9))
        ack = int(rng.integers(64, 200))
        want = packet_by_packet_fct(runs, m, ack, fwd_r, fwd_d, rev_r, rev_d)
        assert message_fct_ps(runs, m, ack, fwd_r, fwd_d, rev_r, rev_d) == want, (runs, m, fwd_r, rev_r)


def test_equal_rates_charge_the_largest_packet_at_each_later_hop():
    """On H equal-rate hops a train of n packets ends at sum(s_k) + (H - 1) max(s_k) + delays:
    the first (largest) packet, not the last, sets the store-and-forward of each later hop."""
    R = Gbps(25)
    first, mid, last = 4096 + 82 + 16, 4096 + 82, 100 + 82
    s = lambda w: serialization_ps(w, R)
    got = store_and_forward_ps([(first, 1), (mid, 243), (last, 1)], [R] * 4, [us(1)] * 4)
    assert got == s(first) + 243 * s(mid) + s(last) + 3 * s(first) + 4 * us(1)


def test_ideal_rejects_an_empty_train():
    with pytest.raises(ValueError):
        store_and_forward_ps([], [Gbps(100)], [0])
    with pytest.raises(ValueError):
        message_fct_ps([(100, 1)], 0, 86, [Gbps(100)], [0], [Gbps(100)], [0])
