"""Collectives (controlplane/ai/collectives.py) on the rail fabric: bus bandwidth and time against the
nccl-tests formulas (NVIDIA/nccl-tests doc/PERFORMANCE.md; V8 of docs/architecture.md), the
arithmetic carried through each schedule, per-node bytes, where the bytes go, determinism and bad
input."""
import json

import numpy as np
import pytest

from controlplane.ai import collectives as C
from controlplane.transport import workload
from controlplane.ai.rails import Gpu, RailLayout
from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, KB, MB, ns, us
from dataplane.sim import SimError
from support import PAYLOAD_EFFICIENCY_4K

B = Gbps(100)
ACK_WIRE = 86            # bytes of an ACK on the wire (14+20+8+12+4 AETH+4 ICRC+4 FCS+20 preamble/IFG)


def scenario(**topo) -> Scenario:
    t = {"topology": "rail_clos", "host_rate_bps": B, "host_delay_ps": us(1), "num_rails": 1, "servers_per_leaf": 4,
         "leaves_per_rail": 2, "spines_per_rail": 2, "cores_per_group": 2}
    t.update(topo)
    return Scenario(topology=t, workload={"kind": "flows", "flows": []}, cc="none", sample_interval_ps=0)


def net_of(**topo):
    return C.network(scenario(**topo))


def test_ring_all_reduce_busbw_reaches_link_rate_for_large_messages():
    """V8: on an idle non-blocking fabric busbw = algbw x 2(N-1)/N approaches the link rate times
    the payload efficiency (4096 B payload per 4178 B on the wire); 64 MB over 8 ranks on two
    leaves, 1 MB chunks. The reverse ACK stream shares each NIC link (86 B per data packet), so
    the ceiling is B x 4096/(4178+86) = 0.98 x B x PE; the issue asks for within 5 % of B x PE."""
    net = net_of()
    ranks = [Gpu(s, 0) for s in range(8)]
    r = C.run_collective(net, C.ring_all_reduce(net, ranks, MB(64), chunk_bytes=MB(1)))
    ratio = r.busbw_bps / (B * PAYLOAD_EFFICIENCY_4K)
    assert 0.95 <= ratio <= 4178 / (4178 + ACK_WIRE) + 1e-3, ratio
    assert r.algbw_bps == pytest.approx(MB(64) * 8e12 / r.time_ps)
    assert r.busbw_bps == pytest.approx(r.algbw_bps * 2 * 7 / 8)


def test_ring_all_reduce_time_matches_formula():
    """Unchunked ring (one segment S/N per step, every step waiting for the previous one):
    t = 2(N-1) x (one step), and one step = the ideal FCT of S/N (its wire bytes at B, store and
    forward, ACK, propagation) plus the reverse ACKs of the incoming segment serialized on the
    same NIC link. The serialization part is the (S/B)·2(N-1)/N of nccl-tests."""
    net = net_of()
    N, S = 4, MB(4)
    ranks = [Gpu(s, 0) for s in range(N)]
    r = C.run_collective(net, C.ring_all_reduce(net, ranks, S, chunk_bytes=S))
    lay = RailLayout.of(net.fabric)
    seg = S // N
    ideal = net.ideal_fct_ps(workload.Flow(lay.nic(0, 0), lay.nic(1, 0), seg, 0))
    acks = -(-seg // 4096) * ACK_WIRE * 8e12 / B
    expected = 2 * (N - 1) * (ideal + acks)
    assert r.time_ps == pytest.approx(expected, rel=0.01)
    serialization = (S * 8e12 / B) * 2 * (N - 1) / N / PAYLOAD_EFFICIENCY_4K
    assert serialization < r.time_ps < serialization * 1.1


def test_chunking_pipelines_the_ring():
    """The same 8 MB over 8 ranks: 256 KB chunks finish sooner than whole segments (the steps
    overlap instead of paying the latency of every step in full)."""
    times = {}
    for chunk in (MB(1), KB(256)):
        net = net_of()
        times[chunk] = C.run_collective(net, C.ring_all_reduce(net, [Gpu(s, 0) for s in range(8)], MB(8),
                                                                chunk_bytes=chunk)).time_ps
    assert times[KB(256)] < times[MB(1)]


def _initial(sched):
    return {k: v.copy() for k, v in sched.buffers.items()}


@pytest.mark.parametrize("algo", ["ring", "hierarchical", "hierarchical-no-nvlink"])
def test_all_reduce_arithmetic(algo):
    """Every rank ends with the elementwise sum of the inputs (37 elements: uneven segments)."""
    net = net_of(num_rails=2, servers_per_leaf=2, nvlink_rate_bps=0 if "no-nvlink" in algo else Gbps(900),
                 nvlink_delay_ps=ns(100))
    ranks = [Gpu(s, r) for s in range(4) for r in range(2)]
    make = C.ring_all_reduce if algo == "ring" else C.hierarchical_all_reduce
    sched = make(net, ranks, KB(512), chunk_bytes=KB(64), elems=37, seed=5)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    assert total.any()
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], total)


def test_reduce_scatter_all_gather_broadcast_arithmetic():
    ranks = [Gpu(s, 0) for s in range(5)]
    elems = 23
    seg = C._split(elems, len(ranks))
    net = net_of()
    sched = C.reduce_scatter(net, ranks, KB(300), chunk_bytes=KB(16), elems=elems, seed=2)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    for p, g in enumerate(ranks):
        lo, hi = seg[p]
        np.testing.assert_array_equal(r.buffers[("buf", g)][lo:hi], total[lo:hi])

    net = net_of()
    sched = C.all_gather(net, ranks, KB(300), chunk_bytes=KB(16), elems=elems, seed=3)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    gathered = np.concatenate([init[("buf", g)][seg[p][0]:seg[p][1]] for p, g in enumerate(ranks)])
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], gathered)

    net = net_of()
    sched = C.broadcast(net, ranks, KB(300), root=2, chunk_bytes=KB(16), elems=elems, seed=4)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], init[("buf", ranks[2])])
    assert r.busbw_bps == r.algbw_bps


def _core_tx_bytes(net) -> int:
    lay = RailLayout.of(net.fabric)
    ports = net.sim.ports
    cores = {lay.core(k, c) for k in range(lay.P) for c in range(lay.C)}
    return int(sum(ports["tx_bytes"][p] for p in range(net.fabric.num_ports)
                   if net.fabric.port_owner(p) in cores))


@pytest.mark.parametrize("via", ["direct", "nvlink"])
def test_all_to_all_arithmetic_and_third_tier(via):
    """Block q of rank p's input lands in block p of rank q's output. Direct cross-rail blocks
    climb to the third tier; through NVLink (PXN-like) nothing crosses a core switch."""
    net = net_of(num_rails=2, servers_per_leaf=2, nvlink_rate_bps=Gbps(900), nvlink_delay_ps=ns(100))
    ranks = [Gpu(s, r) for s in range(4) for r in range(2)]
    elems = 29
    sched = C.all_to_all(net, ranks, KB(256), via=via, chunk_bytes=KB(16), elems=elems, seed=1)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    blocks = C._split(elems - elems % len(ranks), len(ranks))     # whole blocks of 3 elements
    for p, a in enumerate(ranks):
        for q, b in enumerate(ranks):
            if p != q:
                np.testing.assert_array_equal(r.buffers[("out", b)][blocks[p][0]:blocks[p][1]],
                                              init[("in", a)][blocks[q][0]:blocks[q][1]])
    core = _core_tx_bytes(net)
    assert (core == 0) if via == "nvlink" else (core > KB(256))


def test_hierarchical_all_reduce_stays_on_rails():
    """Rail-aware all-reduce never crosses the third tier; a flat ring over the same GPUs in
    (server, rail) order does (its server-to-server hops change rails)."""
    ranks = [Gpu(s, r) for s in range(4) for r in range(2)]
    net = net_of(num_rails=2, servers_per_leaf=2, nvlink_rate_bps=Gbps(900), nvlink_delay_ps=ns(100))
    C.run_collective(net, C.hierarchical_all_reduce(net, ranks, MB(1)))
    assert _core_tx_bytes(net) == 0
    net = net_of(num_rails=2, servers_per_leaf=2, nvlink_rate_bps=Gbps(900), nvlink_delay_ps=ns(100))
    C.run_collective(net, C.ring_all_reduce(net, ranks, MB(1)))
    assert _core_tx_bytes(net) > 0


def test_rail_rings_stay_on_rails_and_sum():
    """NCCL-style channels: one ring per local GPU index, the hops between servers on one rail;
    4 servers x 2 rails, no byte through a core switch, every rank holds the sum."""
    ranks = [Gpu(s, r) for s in range(4) for r in range(2)]
    net = net_of(num_rails=2, servers_per_leaf=2, nvlink_rate_bps=Gbps(900), nvlink_delay_ps=ns(100))
    lay = RailLayout.of(net.fabric)
    rings = C.rail_rings(lay, ranks)
    assert len(rings) == 2
    for ring in rings:
        for a, b in zip(ring, ring[1:] + ring[:1]):
            assert a.server == b.server or a.rail == b.rail
    sched = C.ring_all_reduce(net, ranks, MB(1), chunk_bytes=KB(64), elems=19, seed=4, channels=rings)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], total)
    assert _core_tx_bytes(net) == 0
    with pytest.raises(ValueError, match="channels"):
        C.ring_all_reduce(net, ranks, MB(1), channels=[ranks[:-1]])


def test_ring_bytes_per_node():
    """Each rank sends and receives 2(N-1)/N x S (a ring all-reduce: N-1 reduce-scatter and N-1
    all-gather steps of S/N each; nccl-tests doc/PERFORMANCE.md)."""
    net = net_of()
    N, S = 4, MB(2)
    ranks = [Gpu(s, 0) for s in range(N)]
    r = C.run_collective(net, C.ring_all_reduce(net, ranks, S, chunk_bytes=KB(128)))
    lay = RailLayout.of(net.fabric)
    for g in ranks:
        assert r.bytes_sent[lay.nic(g.server, g.rail)] == 2 * (N - 1) * S // N
        assert r.bytes_received[lay.nic(g.server, g.rail)] == 2 * (N - 1) * S // N
    qp = net.sim.qps
    assert int(qp["acked_bytes"].sum()) == 2 * (N - 1) * S


def test_two_planes_halve_the_time():
    """A multi-plane fabric splits every transfer over the planes: with two planes at the same
    port rate the ring takes about half as long."""
    t = {}
    for planes in (1, 2):
        net = net_of(planes=planes)
        t[planes] = C.run_collective(net, C.ring_all_reduce(net, [Gpu(s, 0) for s in range(4)], MB(8))).time_ps
    assert t[2] == pytest.approx(t[1] / 2, rel=0.05)


def test_two_planes_one_nic_node_a_qp_per_plane_bound_to_its_port():
    """A multi-plane NIC is one host with a port per plane (controlplane/ai/rails.py): a transfer
    is split into one QP per plane, bound to that plane's port at both ends, so the two ports of
    each NIC carry the same packets (the halves of every transfer, and their ACKs), each plane's
    own (the other plane's leaf never sees them: its ports' counts match the NIC's)."""
    from controlplane.ai.rails import RailLayout
    net = net_of(planes=2)
    lay = RailLayout.of(net.fabric)
    ranks = [Gpu(s, 0) for s in range(4)]
    C.run_collective(net, C.ring_all_reduce(net, ranks, MB(8)))
    sim = net.sim
    bound = {(int(q["host"]), int(q["port"])) for q in sim.qps[::2]}
    assert bound == {(lay.nic(g.server, 0), lay.nic_port(g.server, 0, p)) for g in ranks for p in (0, 1)}
    for g in ranks:
        sent = [int(sim.ports[lay.nic_port(g.server, 0, p)]["tx_packets"]) for p in (0, 1)]
        got = [int(sim.ports[lay.nic_port(g.server, 0, p) ^ 1]["tx_packets"]) for p in (0, 1)]
        assert sent[0] == sent[1] > 0 and got[0] == got[1] == sent[0], (sent, got)


def test_deterministic_and_ignores_workload_messages():
    """Same scenario + seed: identical times and results; a workload message running alongside
    is left to the data plane (its completion is not the schedule's)."""
    out = []
    for _ in range(2):
        sc = scenario()
        sc.workload = {"kind": "flows", "flows": [{"src": 0, "dst": 5, "size_bytes": MB(1)}]}
        sc.paths, sc.transport, sc.num_paths = "spray_random", "ooo", 4
        net = C.network(sc)
        ranks = [Gpu(s, 0) for s in range(8)]
        r = C.run_collective(net, C.ring_all_reduce(net, ranks, MB(2), chunk_bytes=KB(128), elems=11, seed=9))
        out.append((r.time_ps, [r.buffers[("buf", g)].tolist() for g in ranks]))
        assert net.sim.msgs["finish_ps"][0] > 0
    assert out[0] == out[1]


def test_bad_input_names_the_field():
    net = net_of()
    ranks = [Gpu(s, 0) for s in range(4)]
    for size in (0, -5, 1.5):
        with pytest.raises(ValueError, match="size_bytes"):
            C.ring_all_reduce(net, ranks, size)
    with pytest.raises(ValueError, match="size_bytes"):
        C.ring_all_reduce(net, ranks, 3)
    with pytest.raises(ValueError, match="chunk_bytes"):
        C.ring_all_reduce(net, ranks, MB(1), chunk_bytes=0)
    with pytest.raises(ValueError, match="ranks"):
        C.ring_all_reduce(net, ranks[:1], MB(1))
    with pytest.raises(ValueError, match=r"ranks\[2\]"):
        C.ring_all_reduce(net, [Gpu(0, 0), Gpu(1, 0), Gpu(0, 0)], MB(1))
    with pytest.raises(ValueError, match=r"ranks\[1\]"):
        C.ring_all_reduce(net, [Gpu(0, 0), Gpu(42, 0)], MB(1))
    with pytest.raises(ValueError, match=r"ranks\[0\]"):
        C.ring_all_reduce(net, [3, 4], MB(1))
    with pytest.raises(ValueError, match="root"):
        C.broadcast(net, ranks, MB(1), root=9)
    with pytest.raises(ValueError, match="via"):
        C.all_to_all(net, ranks, MB(1), via="nvlink")
    with pytest.raises(ValueError, match="ranks"):
        C.hierarchical_all_reduce(net_of(num_rails=2), [Gpu(0, 0), Gpu(0, 1), Gpu(1, 0)], MB(1))
    from controlplane.run.scenario import Network
    with pytest.raises(ValueError, match="wake_on_completion"):
        C.Runner(Network(scenario()))


def test_unreachable_member_is_named():
    """A member whose NIC link is down when the collective starts is reported by position."""
    sc = scenario()
    net0 = C.network(sc)
    lay = RailLayout.of(net0.fabric)
    link = net0.fabric.ports(lay.nic(2, 0))[0] // 2
    sc.failures = [{"link": link, "down_ps": 0}]
    net = C.network(sc)
    with pytest.raises(ValueError, match=r"ranks\[2\].*unreachable"):
        C.ring_all_reduce(net, [Gpu(s, 0) for s in range(4)], MB(1))


@pytest.mark.plots
@pytest.mark.parametrize("name,sets,csv", [
    ("allreduce_busbw", ["max_size=262144", "seeds=1", 'variants=["ecmp"]'], "allreduce_busbw.csv"),
    ("sharp_gain", ["size_bytes=1048576", 'fabrics=["nvswitch"]', "overheads_us=[0,3]"], "sharp_gain.csv"),
    ("placement", ["seeds=1", "grad_bytes=1048576", "background_jobs=2"], "placement.csv"),
    ("alltoall_rails", ["sizes=[262144]", "core_oversubscription=[1]", 'variants=["ecmp"]'], "alltoall_rails.csv"),
])
def test_ai_fabric_experiments_run_from_the_cli(tmp_path, name, sets, csv):
    """Each AI-fabric experiment runs through `softdpu run` with small settings and writes its
    CSV (one row per measured point, every time positive, algbw = S/t) and its PNG."""
    import csv as csvmod
    from controlplane.run.cli import main
    out = tmp_path / name
    argv = ["run", name, "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    rows = list(csvmod.DictReader(open(out / csv)))
    assert rows
    for r in rows:
        for key in ("time_us", "ring_us", "sharp_us", "step_us"):
            if key in r:
                assert float(r[key]) > 0
        if {"algbw_gbps", "size_bytes", "time_us"} <= set(r):
            # algbw = S / t (nccl-tests), as written: S bytes x 8 / (t us x 1e3) Gb/s, to the CSV's 3 decimals
            algbw = int(r["size_bytes"]) * 8 / (float(r["time_us"]) * 1e3)
            assert float(r["algbw_gbps"]) == pytest.approx(algbw, rel=2e-3, abs=2e-3), r
            # and no point beats its NICs: algbw <= rails x host link rate (100 Gb/s per NIC here)
            assert algbw <= 8 * 100, r
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "params.json").read_text())["seed"] == 1


def test_member_cut_off_by_switch_failures_is_named():
    """Both spines of rail 0 down at the start: members under the other leaf cannot be reached."""
    sc = scenario()
    lay = RailLayout.of(C.network(sc).fabric)
    sc.failures = [{"switch": lay.spine(0, k), "down_ps": 0} for k in range(2)]
    net = C.network(sc)
    with pytest.raises(ValueError, match=r"ranks\[4\].*unreachable from ranks\[0\]"):
        C.ring_all_reduce(net, [Gpu(s, 0) for s in range(8)], MB(1))
    C.ring_all_reduce(net, [Gpu(s, 0) for s in range(4)], MB(1))      # one leaf: still fine


def test_spraying_removes_the_ecmp_penalty_of_rings():
    """V8: a ring is as slow as its slowest hop. Rail-aligned rings over 8 servers in a random
    order on 2 leaves per rail with 4 x 100 Gb/s uplinks each: with ECMP, two hops leaving one
    leaf sometimes hash onto the same uplink and that ring runs at half rate; spraying over 16
    entropies (out-of-order placement) keeps every seed near the NIC-bound busbw."""
    from controlplane.run.experiment import rail_scenario
    topo = {"host_rate_bps": B, "host_delay_ps": us(1), "num_rails": 2, "servers_per_leaf": 4, "leaves_per_rail": 2,
            "spines_per_rail": 4, "cores_per_group": 2, "nvlink_rate_bps": Gbps(3600), "nvlink_delay_ps": ns(100)}
    bus = {"ecmp": [], "spray": []}
    for seed in range(1, 7):
        order = [int(s) for s in np.random.default_rng([seed, 7]).permutation(8)]
        ranks = [Gpu(s, r) for s in order for r in range(2)]
        for variant in bus:
            net = C.network(rail_scenario("rings", topo, "dcqcn", seed, variant))
            rings = C.rail_rings(RailLayout.of(net.fabric), ranks)
            bus[variant].append(C.run_collective(net, C.ring_all_reduce(net, ranks, MB(4), channels=rings)).busbw_bps)
    spray, ecmp = np.array(bus["spray"]), np.array(bus["ecmp"])
    assert spray.min() > 0.95 * spray.max()
    assert (ecmp <= spray * 1.01).all()
    assert ecmp.min() < 0.6 * spray.min()


def test_schedule_tracks_data_dependencies():
    """A transfer reading bytes depends on the writes of those bytes since their last copy:
    the copy and every add after it, only where the ranges overlap."""
    s = C.Schedule("deps", "all_reduce", 2, 100)
    t0 = s.add(C.Transfer(0, 1, 100, op="copy", src_key="a", dst_key="x", src_bytes=(0, 100)))
    t1 = s.add(C.Transfer(0, 1, 50, op="add", src_key="b", dst_key="x", src_bytes=(0, 50)))
    t2 = s.add(C.Transfer(0, 1, 30, op="add", src_key="c", dst_key="x", src_bytes=(60, 90)))
    t3 = s.add(C.Transfer(0, 1, 20, op="copy", src_key="d", dst_key="x", src_bytes=(0, 20)))
    assert s.add(C.Transfer(1, 0, 10, src_key="x", src_bytes=(0, 10))) and s.transfers[-1].deps == (t3,)
    s.add(C.Transfer(1, 0, 10, src_key="x", src_bytes=(30, 40)))
    assert s.transfers[-1].deps == (t0, t1)
    s.add(C.Transfer(1, 0, 40, src_key="x", src_bytes=(45, 85)))
    assert s.transfers[-1].deps == (t0, t1, t2)
    s.add(C.Transfer(1, 0, 5, src_key="x", src_bytes=(95, 100), deps=(t3,)))
    assert s.transfers[-1].deps == (t0, t3)
    s.add(C.Transfer(1, 0, 5, src_key="y", src_bytes=(0, 5)))
    assert s.transfers[-1].deps == ()


@pytest.mark.parametrize("kind", ["all_gather", "reduce_scatter", "broadcast", "all_to_all"])
def test_other_collectives_busbw_reaches_link_rate(kind):
    """The nccl-tests factors make every collective's busbw comparable to the link rate
    (nccl-tests doc/PERFORMANCE.md): all-gather and reduce-scatter algbw x (N-1)/N, all-to-all
    (N-1)/N, broadcast x 1 (a pipelined chain: (N-2) chunk times of fill on top). 32 MB on an
    idle non-blocking rail: within 5 % of B x payload efficiency, never above it."""
    make = {"all_gather": C.all_gather, "reduce_scatter": C.reduce_scatter, "broadcast": C.broadcast,
            "all_to_all": C.all_to_all}[kind]
    n = 4 if kind == "broadcast" else 8
    net = net_of()
    r = C.run_collective(net, make(net, [Gpu(s, 0) for s in range(n)], MB(32), chunk_bytes=KB(256)))
    factor = {"broadcast": 1.0}.get(kind, (n - 1) / n)
    assert r.busbw_bps == pytest.approx(r.algbw_bps * factor)
    assert 0.95 <= r.busbw_bps / (B * PAYLOAD_EFFICIENCY_4K) <= 1.0


def test_background_schedule_repeats_and_slows_the_job():
    """Two 2-rank rings across the two leaves of a 4:1 oversubscribed rail (one 100 Gb/s
    uplink per leaf), DCQCN: alone the job's ring owns the uplinks; with a background ring
    repeating alongside (several iterations), the two share them and the job takes about
    twice as long."""
    sc = scenario(spines_per_rail=1, oversubscription=4.0)
    sc.cc = "dcqcn"
    job = [Gpu(0, 0), Gpu(4, 0)]
    net = C.network(sc)
    alone = C.Runner(net).run([C.ring_all_reduce(net, job, MB(4))])[0]
    net = C.network(sc)
    bg = C.ring_all_reduce(net, [Gpu(1, 0), Gpu(5, 0)], KB(512), name="bg")
    bg.repeat = True
    loaded, background = C.Runner(net).run([C.ring_all_reduce(net, job, MB(4)), bg])
    assert background.iterations >= 3
    assert loaded.time_ps > 1.6 * alone.time_ps
    with pytest.raises(ValueError, match="start_ps"):
        C.Runner(net).run([C.ring_all_reduce(net, job, MB(1))], start_ps=0)


def test_ring_all_reduce_through_dpu_vswitches():
    """The same collective with a vSwitch on every DPU (QPs on the PFs, underlay megaflows set up
    reactively): the sums are still exact, the first packets of each connection were upcalled."""
    sc = scenario(servers_per_leaf=4)
    sc.dpu = {"tenants": 1}
    net = C.network(sc)
    ranks = [Gpu(s, 0) for s in range(8)]
    sched = C.ring_all_reduce(net, ranks, KB(512), chunk_bytes=KB(64), elems=37, seed=5)
    init = _initial(sched)
    r = C.run_collective(net, sched)
    total = sum(init[("buf", g)] for g in ranks)
    for g in ranks:
        np.testing.assert_array_equal(r.buffers[("buf", g)], total)
    st = net.sim.vs_stats
    assert int(st["miss"].sum()) > 0 and int(st["encaps"].sum()) == 0


# ------------------------------------------------------------------------------------------ one clock
def _dpu_loop_scenario(flows: list) -> Scenario:
    """A star of 4 DPU hosts whose slow path is busy on the time scale of the run: per-connection
    megaflows, revalidation every 20 us, megaflows idle for 40 us evicted, and a flow limit of 2
    per DPU until the first revalidation adapts it (OVS's rules raise it to 1002)."""
    from support import star
    return Scenario(topology=star(4), workload={"kind": "flows", "flows": flows}, cc="dcqcn", sample_interval_ps=us(10),
                    dpu={"tenants": 1, "policy": {"per_connection": True},
                         "slow_path": {"revalidate_interval_ps": us(20), "max_idle_ps": us(40), "flow_limit": 2}})


def test_collectives_runner_and_network_run_drive_the_same_control_plane():
    """Issue #11 item 8: the collectives Runner and Network.run advance the data plane through one
    clock (scenario.ControlLoop), so the DPU slow path's revalidation, idle eviction and flow-limit
    adaptation, the sampling and the tick hooks happen at the same times in both.

    "The same traffic": two waves of messages on four connections (the second wave, at 200 us, after
    the first wave's megaflows went idle and were evicted), posted at the same times, on the same QP
    ids with the same source ports, all on the PFs. Network.run gets them as the scenario's
    workload; the Runner as a schedule of independent transfers (delay_ps = post time) on a network
    without a workload. Then, compared at the time Network.run stopped (the Runner's network is
    advanced to it through the same clock after its last completion), these are bit-identical:
    every message's post, first-transmission and finish time; the data plane's counters; each DPU's
    vSwitch counters and its installed flows; the slow path's counters (installs, flow-limit hits,
    evictions, flow limits); the time series at every sample tick; and each tick hook's call times
    with what it saw. Before, the Runner never revalidated: no evictions, the flow limit stuck at 2."""
    pairs = [(1, 0), (2, 0), (3, 1), (0, 2)]
    flows = [{"src": s, "dst": d, "size_bytes": KB(200), "start_ps": 0, "conn": i} for i, (s, d) in enumerate(pairs)]
    flows += [{"src": s, "dst": d, "size_bytes": KB(100), "start_ps": us(200), "conn": i}
              for i, (s, d) in enumerate(pairs)]

    def hook_log(net, log):
        net.tick_hooks.append(lambda n: log.append((n.sim.now, int(n.sim.qps["acked_bytes"].sum()),
                                                    int(n.sim.vs_stats["flows"].sum()))))

    net_b = _dpu_loop_scenario(flows).build()
    for q in range(len(net_b.sim.qps)):
        net_b.sim.vs_set_qp_function(q, None)            # the Runner's QPs live on the PFs
    log_b: list = []
    hook_log(net_b, log_b)
    net_b.run()

    net_a = C.network(_dpu_loop_scenario([]))
    runner = C.Runner(net_a)
    sports = net_b.sim.qps["sport"]
    for i, (s, d) in enumerate(pairs):
        qp = int(net_b.qps[i])
        assert runner.qp(s, d, int(sports[qp])) == qp     # the same QP ids and source ports
    sched = C.Schedule("waves", "all_to_all", 4, KB(300))
    for f in flows:
        sched.add(C.Transfer(f["src"], f["dst"], f["size_bytes"], delay_ps=f["start_ps"]))
    log_a: list = []
    hook_log(net_a, log_a)
    runner.run([sched])
    t_end = net_b.sim.now
    assert net_a.sim.now <= t_end
    while net_a.sim.now < t_end:
        net_a.loop.step(t_end)
    assert net_a.sim.now == t_end

    a, b = net_a.sim, net_b.sim
    n = len(flows)
    for field in ("post_ps", "first_tx_ps", "finish_ps", "bytes", "qp"):
        np.testing.assert_array_equal(a.msgs[field][:n], b.msgs[field][:n], err_msg=field)
    assert a.counters() == b.counters()
    for field in a.vs_stats.dtype.names:
        np.testing.assert_array_equal(a.vs_stats[field], b.vs_stats[field], err_msg=field)
    for h in range(4):
        fa, fb = a.vs_flows(h), b.vs_flows(h)
        for field in fa.dtype.names:
            np.testing.assert_array_equal(fa[field], fb[field], err_msg=f"dpu {h} flows {field}")
    sa, sb = net_a.vswitch.stats(), net_b.vswitch.stats()
    assert sa == sb
    assert [net_a.vswitch.slow.host_stats(h) for h in range(4)] == [net_b.vswitch.slow.host_stats(h) for h in range(4)]
    # the port series (the per-QP series are of the workload's QPs, which only Network.run's network
    # has; the hook log below sums acked bytes over every QP instead); Network.run may add one last
    # sample at its stop time when that is not a sample tick
    la, lb = net_a.loop.samples, net_b.loop.samples
    assert len(la["t"]) >= 20 and len(lb["t"]) - len(la["t"]) in (0, 1)
    for key in ("t", "q", "ecn", "drop", "tx", "pause"):
        np.testing.assert_array_equal(np.array(la[key]), np.array(lb[key][:len(la[key])]), err_msg=key)
    assert log_a == log_b and len(log_a) == len(la["t"])
    # the services did matter: the flow limit held installs back before the first revalidation,
    # idle megaflows were evicted between the waves and installed again, the limit was adapted
    # (OVS adds 1000 per fast dump while flows exist: 2 -> 1002 -> 2002 ...)
    assert sa["sp_limit_hits"] > 0 and sa["sp_evictions"] > 0
    assert sa["sp_flow_limit_min"] >= 1002 and sa["sp_flow_limit_min"] % 1000 == 2
    assert sa["sp_installs"] > sa["sp_evictions"]


@pytest.mark.parametrize("verb", ["send", "write_imm", "read"])
def test_collectives_can_use_other_verbs(verb):
    """A ring all-reduce whose transfers are SENDs, WRITEs with immediate or READs (the
    destination pulls) ends with the same sums as with WRITEs, in about the same time: the
    ring's bytes are the same (a SEND has 16 B less per first packet: within 2 %); a READ's data
    starts one request's trip after the step that enables it, where a WRITE's completion waits
    one ACK's trip after its data: about the same per step, but the next step of the ring cannot
    overlap the request (within 5 %, slower)."""
    ranks = [Gpu(s, r) for s in range(4) for r in range(2)]
    times = {}
    for v in ("write", verb):
        net = net_of(num_rails=2, servers_per_leaf=2)
        sched = C.ring_all_reduce(net, ranks, KB(512), chunk_bytes=KB(64), elems=37, seed=5)
        init = _initial(sched)
        r = C.Runner(net, verb=v).run([sched])[0]
        total = sum(init[("buf", g)] for g in ranks)
        for g in ranks:
            np.testing.assert_array_equal(r.buffers[("buf", g)], total)
        times[v] = r.time_ps
    if verb == "read":
        assert times["write"] < times[verb] < 1.05 * times["write"]
    else:
        assert times[verb] == pytest.approx(times["write"], rel=0.02)
    with pytest.raises(ValueError, match="verb must be one of"):
        C.Runner(net_of(num_rails=2, servers_per_leaf=2), verb="atomic")


# ------------------------------------------------------------------ compute tasks (a Transfer with compute=True)
def _compute(addr: int, delay_ps: int, deps=()) -> C.Transfer:
    return C.Transfer(addr, addr, 0, tuple(deps), delay_ps, compute=True, tag="compute")


def _write_alone(a: int, b: int, nbytes: int) -> int:
    """The time (ps) of one WRITE of ``nbytes`` from address a to b on a fresh network."""
    s = C.Schedule("alone", "all_reduce", 2, 1)
    s.add(C.Transfer(a, b, nbytes))
    return C.run_collective(net_of(), s).time_ps


def test_compute_tasks_delay_their_dependents_exactly():
    """compute(5 us) -> a 64 KB WRITE -> compute(3 us): a compute task sends no packet and completes
    its delay after its dependencies, so done_ps is exactly 5 us, 5 us + the WRITE's time measured
    alone on a fresh network of the same scenario (the data plane is idle before it, so the same
    packets at the same offsets), and that + 3 us. Compute tasks count in no node's bytes."""
    lay = RailLayout.of(net_of().fabric)
    a, b = lay.nic(0, 0), lay.nic(5, 0)                       # two leaves: through a spine
    t_write = _write_alone(a, b, KB(64))

    net = net_of()
    s = C.Schedule("chain", "all_reduce", 2, 1)
    s.add(_compute(a, us(5)))
    s.add(C.Transfer(a, b, KB(64), (0,)))
    s.add(_compute(b, us(3), (1,)))
    r = C.run_collective(net, s)
    assert t_write > us(5)                                    # 64 KB at 100 Gb/s: 5.2 us of serialization alone
    assert r.done_ps.tolist() == [us(5), us(5) + t_write, us(8) + t_write]
    assert r.end_ps == net.sim.now == us(8) + t_write
    assert r.bytes_sent == {a: KB(64)} and r.bytes_received == {b: KB(64)}


def test_a_compute_only_schedule_finishes():
    """Nothing but compute tasks (a chain of 1..5 us, and a root of 2 us beside it): the data plane
    is idle from the start, and the control loop moves its clock to each compute task's end (before
    the control loop advanced an idle data plane this run stood still at t=0 forever: the scenario's
    max_wall_s = 20 turns such a regression into a failure). The run ends at 1+2+3+4+5 = 15 us."""
    net = C.network(scenario(), max_wall_s=20)
    a = RailLayout.of(net.fabric).nic(0, 0)
    s = C.Schedule("compute", "all_reduce", 1, 1)
    for i in range(5):
        s.add(_compute(a, us(i + 1), (i - 1,) if i else ()))
    s.add(_compute(a, us(2)))
    r = C.run_collective(net, s)
    assert r.done_ps.tolist() == [us(1), us(3), us(6), us(10), us(15), us(2)]
    assert (r.start_ps, r.end_ps, net.sim.now) == (0, us(15), us(15))
    assert r.bytes_sent == {} and r.bytes_received == {}
    assert net.sim.events == 0                                # not one packet


def test_zero_delay_compute_tasks_complete_at_once():
    """Zero-delay compute tasks complete at the time their dependencies did, chained: two before a
    WRITE (it posts at t=0, so it completes exactly when it does alone), two after it (at its
    completion). A schedule of zero-delay compute tasks only finishes at its start time: it failed
    at t=0 with "the data plane went idle with schedules unfinished: []" before the Runner stopped
    taking a stop at which its last compute tasks finished every schedule for a hang."""
    lay = RailLayout.of(net_of().fabric)
    a, b = lay.nic(0, 0), lay.nic(1, 0)
    t_write = _write_alone(a, b, KB(4))

    net = net_of()
    s = C.Schedule("zero", "all_reduce", 2, 1)
    s.add(_compute(a, 0))
    s.add(_compute(a, 0, (0,)))
    s.add(C.Transfer(a, b, KB(4), (1,)))
    s.add(_compute(b, 0, (2,)))
    s.add(_compute(b, 0, (3,)))
    assert C.run_collective(net, s).done_ps.tolist() == [0, 0, t_write, t_write, t_write]

    for start in (None, us(7)):                              # now (t=0), and later
        net = net_of()
        s = C.Schedule("zero-only", "all_reduce", 1, 1)
        s.add(_compute(a, 0))
        s.add(_compute(a, 0, (0,)))
        r = C.Runner(net).run([s], start_ps=start)[0]
        t0 = start or 0
        assert r.done_ps.tolist() == [t0, t0] and (r.start_ps, r.end_ps, net.sim.now) == (t0, t0, t0)


def test_a_compute_task_ending_after_max_duration_stops_the_run():
    """A compute task of 20 us with max_duration_ps = 10 us: the data plane is idle and nothing acts
    before the limit, so the run stops at once with the error of a schedule that did not finish by
    max_duration_ps, like one whose packets run past it. Before, the loop stood still at t=0 until
    the wall-clock budget (default: an hour; max_wall_s = 20 here turns a regression into a
    failure)."""
    net = C.network(scenario(), max_wall_s=20, max_duration_ps=us(10))
    a = RailLayout.of(net.fabric).nic(0, 0)
    s = C.Schedule("long", "all_reduce", 1, 1)
    s.add(_compute(a, us(4)))
    s.add(_compute(a, us(20), (0,)))
    with pytest.raises(SimError, match=r"the collectives did not finish by max_duration_ps = 10000000 ps") as e:
        C.Runner(net).run([s])
    assert e.value.collectives[0]["transfers_done"] == 1 and net.sim.now == us(4)


def test_schedule_add_rejects_a_malformed_compute_task():
    """A compute task carries no bytes and no vector operation, and its delay is a duration."""
    s = C.Schedule("bad", "all_reduce", 1, 1)
    for t in (C.Transfer(0, 0, 1, compute=True, delay_ps=us(1)),
              C.Transfer(0, 0, 0, compute=True, op="add", src_key="x", dst_key="x"),
              C.Transfer(0, 0, 0, compute=True, delay_ps=-1)):
        with pytest.raises(ValueError, match=r"bad: compute task 0 must have nbytes 0, no op and delay_ps >= 0"):
            s.add(t)
    assert s.transfers == []
    assert s.add(C.Transfer(0, 0, 0, compute=True, delay_ps=0)) == 0
