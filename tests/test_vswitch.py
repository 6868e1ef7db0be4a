"""The DPU vSwitch (native/vswitch.c + controlplane/dpu/vswitch.py): classifier vs a slow Python
reference, megaflow install and idle eviction, VXLAN bytes vs scapy, tenant isolation under random
rules, OVS-style counters, flow limit, upcall-queue overflow, meters, bad rules."""
import numpy as np
import pytest

from controlplane.run.scenario import Scenario
from controlplane.config.units import Gbps, KB, MB, us
from controlplane.dpu.vswitch import FULL, reference_lookup
from dataplane.sim import (NONE, STOP_UPCALL, VS_FIELDS, VS_KEY_WORDS, VS_META_ENCAP, VS_PF, VS_UPLINK, VS_VF0,
                           VXLAN_OVERHEAD, Simulator)
from tests.support import assert_conserved, star

OUTCOMES = ("exact_hit", "masked_hit", "miss", "lost")


def overlay(n_hosts=5, senders=4, size=MB(1), tenants=2, seed=1, **dpu):
    return Scenario(topology=star(n_hosts), workload={"kind": "incast", "senders": senders, "size_bytes": size},
                    sample_interval_ps=0, seed=seed, dpu={"tenants": tenants, "vfs_per_host": tenants, **dpu})


def bare_vswitch(nvf=4, **kw):
    sim = Simulator(num_hosts=2, num_switches=0, max_links=1)
    sim.add_links([0], [1], [Gbps(100)], [us(1)])
    sim.vs_enable(0, **kw)
    for n in range(nvf):
        sim.vs_add_vf(0, n % 2 + 1, 0x0A000001 + n)
    return sim


# ---------------------------------------------------------------------------- classifier
def random_rules(rng, n_rules, n_masks):
    """Rules over a few distinct masks (so several subtables), values drawn from a small space so
    that keys match several rules; equal-priority overlaps are skipped (the policy rejects them)."""
    masks = []
    for _ in range(n_masks):
        m = np.zeros(VS_KEY_WORDS, np.uint32)
        for w in rng.choice(7, size=rng.integers(1, 4), replace=False):
            m[w] = rng.choice([FULL, 0xFFFF0000, 0xFF, 0xF0F0F0F0])
        masks.append(m)
    rules = []
    for _ in range(50 * n_rules):
        if len(rules) == n_rules:
            break
        m = masks[rng.integers(n_masks)]
        v = rng.integers(0, 4, size=VS_KEY_WORDS).astype(np.uint32) * np.uint32(0x01010101) & m
        v[0] &= 3            # in_port: an existing port
        v[1] &= 0xFFFFFF     # VNI: 24 bits
        v &= m
        prio = int(rng.integers(0, 40))
        clash = any(p == prio and np.all((v & m & mm) == (vv & m & mm)) for p, vv, mm in rules)
        if not clash:
            rules.append((prio, v, m))
    return rules


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_classifier_equals_python_reference(seed):
    """For random rule sets and keys the C tuple-space classifier returns the rule the linear
    Python reference (highest priority match) returns; the probe stops early (<= subtables)."""
    rng = np.random.default_rng(seed)
    sim = bare_vswitch(emc_entries=0)
    rules = random_rules(rng, 120, 12)
    assert len(rules) > 60
    ids = [sim.vs_install(0, v, m, p, {"output": VS_UPLINK, "count": i % 16}) for i, (p, v, m) in enumerate(rules)]
    flow_to_rule = {f: i for i, f in enumerate(ids)}
    nsub = int(sim.vs_stats[0]["subtables"])
    assert nsub == len({m.tobytes() for _, _, m in rules})
    hits, probes_seen = 0, []
    for _ in range(3000):
        base = rules[rng.integers(len(rules))][1]
        key = base ^ (rng.integers(0, 2, VS_KEY_WORDS).astype(np.uint32) * rng.choice([1, 0x100, 0x10000], VS_KEY_WORDS).astype(np.uint32))
        key[7] = 0
        f, probes = sim.vs_lookup(0, key)
        expect = reference_lookup(rules, key)
        got = flow_to_rule[f] if f >= 0 else -1
        assert (got == -1) == (expect == -1)
        if expect >= 0:
            assert rules[got][0] == rules[expect][0]          # same priority ...
            assert got == expect                              # ... and the same rule (no equal-priority overlap)
            hits += 1
        assert 1 <= probes <= nsub
        probes_seen.append(probes)
    assert hits > 1000                                        # the test exercised matches
    assert min(probes_seen) < nsub                            # priority ranking cut some probes short


def test_flow_invisible_until_active_and_delete_restores_miss():
    sim = bare_vswitch(emc_entries=0)
    key = np.zeros(VS_KEY_WORDS, np.uint32)
    key[VS_FIELDS["in_port"]] = VS_VF0
    mask = np.zeros(VS_KEY_WORDS, np.uint32)
    mask[VS_FIELDS["in_port"]] = FULL
    f = sim.vs_install(0, key, mask, 0, {"output": VS_UPLINK}, active_ps=us(5))
    assert sim.vs_lookup(0, key)[0] == -1                     # install latency not over yet
    g = sim.vs_install(0, key, mask, 1, {"drop": True})
    assert sim.vs_lookup(0, key)[0] == g
    sim.vs_delete(0, g)
    assert sim.vs_lookup(0, key)[0] == -1
    assert int(sim.vs_stats[0]["flows"]) == 1 and f >= 0


# ---------------------------------------------------------------------------- megaflows end to end
def test_megaflows_make_later_packets_hit_and_counters_partition():
    """The first packets of each (function, destination) miss; once the megaflow is installed the
    rest hit (EMC or classifier). Every packet has exactly one outcome, as OVS's pmd stats."""
    net = overlay().build()
    r = net.run()
    c = r.counters
    assert_conserved(r)
    assert c["vs_rx"] == sum(c[f"vs_{o}"] for o in OUTCOMES)
    # megaflows match (in_port, VNI, destination address), the fields the overlay policy reads:
    # each sender DPU: data out (VF -> receiver) + ACKs in (tunnel -> its VF) = 2 x 4; the receiver
    # DPU: data in, one per tenant (both tenants' receiving VMs are 10.0.0.1, told apart by VNI) = 2,
    # ACKs out, one per sender VM = 4; total 14
    assert c["sp_installs"] == 14
    assert c["vs_exact_hit"] + c["vs_masked_hit"] > 0.7 * c["vs_rx"]
    # a second round of messages on the same connections: every packet hits, nothing is upcalled
    sim = net.sim
    before = sim.vs_stats.copy()
    sim.post_writes(net.qps, [MB(1)] * 4, [sim.now] * 4)
    stop = sim.run_until(sim.now + 10**9)
    after = sim.vs_stats
    assert stop != STOP_UPCALL and sim.msgs_completed == 8
    assert (after["miss"] == before["miss"]).all() and (after["lost"] == before["lost"]).all()
    assert int((after["exact_hit"] + after["masked_hit"] - before["exact_hit"] - before["masked_hit"]).sum()) == \
        int((after["rx"] - before["rx"]).sum()) > 1000
    assert c["vs_encaps"] == c["vs_to_uplink"] and c["vs_decaps"] == c["vs_to_functions"] == c["vs_encaps"]
    assert c["vs_isolation_drops"] == 0 and c["vs_lost"] == 0
    assert c["sp_install_latency_p50_ps"] >= us(10) + us(10)    # handler (20k cycles @ 2 GHz) + install


def test_emc_insert_probability():
    always = overlay(vswitch={"emc_insert_inv_prob": 1}).run().counters
    never = overlay(vswitch={"emc_entries": 0}).run().counters
    assert always["vs_exact_hit"] > 0.9 * (always["vs_exact_hit"] + always["vs_masked_hit"])
    assert never["vs_exact_hit"] == 0 and never["vs_masked_hit"] > 0


def test_idle_flows_are_evicted():
    """Megaflows idle longer than max_idle are deleted by the revalidator; a later flow to the
    same destination misses again and reinstalls."""
    flows = [{"src": 1, "dst": 0, "size_bytes": 20_000, "start_ps": 0},
             {"src": 1, "dst": 0, "size_bytes": 20_000, "start_ps": us(1000)}]
    sc = Scenario(topology=star(2), workload={"kind": "flows", "flows": flows}, sample_interval_ps=0,
                  dpu={"tenants": 1, "slow_path": {"max_idle_ps": us(100), "revalidate_interval_ps": us(50)}})
    net = sc.build()
    c = net.run().counters
    assert c["msgs_completed"] == 2
    assert c["sp_evictions"] == 4            # both directions' megaflows, at both DPUs, after flow 1
    assert c["sp_installs"] == 8             # installed again for flow 2
    for h in (0, 1):                         # per DPU: 2 megaflows evicted, 2 + 2 installed
        st = net.dpus[h].vswitch_stats
        assert st["sp_evictions"] == 2 and st["sp_installs"] == 4 == st["installs"]
        assert sum(st["sp_install_latency_hist"]) == 4
    for h in (0, 1):                         # what is left belongs to flow 2 (installed after 1 ms)
        f = net.sim.vs_flows(h)
        live = f[f["subtable"] != NONE]
        assert len(live) == 2 and (live["active_ps"] > us(1000)).all()


def test_deterministic():
    a, b = overlay(seed=3).run().counters, overlay(seed=3).run().counters
    keys = [k for k in a if k.startswith(("vs_", "sp_"))]
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_flow_limit_refuses_installs():
    net = overlay(slow_path={"flow_limit": 3}).build()
    c = net.run().counters
    assert int(net.sim.vs_stats["flows"].max()) == 3 and c["sp_limit_hits"] > 0     # the limit is per DPU
    assert c["msgs_completed"] == c["msgs_total"]            # executed by the slow path all the same


def test_full_datapath_table_degrades_to_slow_path_forwarding():
    """Issue #11 item 7: a per-connection policy needing more megaflows than the datapath holds
    (max_flows 3) used to stop the run with "table full". Past the hard capacity the slow path
    executes upcalls without installing (as OVS when a flow put fails), counted, and the run goes on.
    Expected installs: the receiver h0 needs 2 megaflows per connection (data in from the uplink,
    ACKs out of its VF) for 4 connections = 8 > 3, so it gets exactly 3; each sender needs 2 (data
    out, ACKs in) <= 3, so 3 + 4 x 2 = 11 in all, and no refusal at the senders."""
    net = overlay(n_hosts=5, senders=4, size=MB(1), vswitch={"max_flows": 3}, policy={"per_connection": True}).build()
    r = net.run()
    c = r.counters
    assert_conserved(r)
    assert c["sp_installs"] == c["vs_installs"] == 11 and c["vs_flows"] == 11
    assert [int(n) for n in net.sim.vs_stats["flows"]] == [3, 2, 2, 2, 2]
    per_host = [net.dpus[h].vswitch_stats["sp_table_full"] for h in range(5)]
    assert per_host[0] == c["sp_table_full"] > 0 and per_host[1:] == [0, 0, 0, 0]
    # every upcall is executed, and it either installed, was refused by a limit, or was a duplicate
    assert c["vs_executed"] == c["sp_upcalls"]
    assert c["sp_upcalls"] == c["sp_installs"] + c["sp_limit_hits"] + c["sp_table_full"] + c["sp_duplicate_upcalls"]


def test_proactive_setup_stops_at_the_datapath_capacity():
    """Proactive megaflows beyond max_flows are not installed (the build used to fail with "table
    full"); those connections are set up by their first packets instead, and the run completes."""
    net = overlay(n_hosts=5, senders=4, vswitch={"max_flows": 3},
                  policy={"per_connection": True, "proactive": True}).build()
    assert [int(n) for n in net.sim.vs_stats["flows"]] == [3, 2, 2, 2, 2]
    r = net.run()
    assert_conserved(r)
    assert r.counters["sp_table_full"] > 0


def test_full_upcall_queue_loses_packets_and_transport_recovers():
    r = overlay(vswitch={"upcall_queue": 4}).run()
    c = r.counters
    assert c["vs_lost"] > 0 and c["vs_upcall_peak"] <= 4
    assert c["vs_rx"] == sum(c[f"vs_{o}"] for o in OUTCOMES)
    assert_conserved(r)


def test_meter_limits_a_vf():
    """A 10 Gb/s policer on the receiving VF: the flow's goodput stays under the meter rate."""
    flows = [{"src": 1, "dst": 0, "size_bytes": MB(1), "start_ps": 0}]
    sc = Scenario(topology=star(2), workload={"kind": "flows", "flows": flows}, sample_interval_ps=0, cc="none",
                  dpu={"tenants": 1, "policy": {"meter_bps": Gbps(10), "meter_burst_bytes": 64 * KB(1)}})
    r = sc.run()
    c = r.counters
    assert c["vs_meter_drops"] > 0
    fct = r.flows["fct_ps"][0]
    assert fct > 0 and MB(1) * 8e12 / fct < Gbps(10) * 1.05


def test_dscp_action_rewrites_dscp():
    c = overlay(policy={"dscp": 46}).run().counters
    assert c["vs_dscp_sets"] > 0 and c["msgs_completed"] == c["msgs_total"]


# ---------------------------------------------------------------------------- VXLAN on the wire
# scapy is a test dependency (the dev extra), imported inside each test that builds frames with it


def test_vxlan_frames_equal_scapy_and_decap_restores_inner(tmp_path):
    from scapy.all import IP, UDP, Ether, Raw
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import rdpcap
    net = overlay(senders=2, size=40_000).build()
    path = tmp_path / "vx.pcap"
    s = net.sim.capture_open(path)
    for h in range(3):
        net.sim.capture_port(s, int(net.routes.host_port[h]), tx=True)
    r = net.run()
    n, _ = net.sim.capture_close(s)
    assert n == r.counters["vs_to_uplink"] > 0
    vfs = net.sim.vs_vfs
    for pkt in rdpcap(str(path)):
        raw = bytes(pkt)
        e = Ether(raw)
        vx = e[VXLAN]
        inner = bytes(vx.payload)
        assert len(raw) == len(inner) + VXLAN_OVERHEAD
        ref = (Ether(dst=e.dst, src=e.src) /
               IP(src=e[IP].src, dst=e[IP].dst, tos=e[IP].tos, ttl=e[IP].ttl, flags="DF", id=0) /
               UDP(sport=e[UDP].sport, dport=4789, chksum=0) / VXLAN(vni=vx.vni, flags=0x08) / Raw(inner))
        assert bytes(ref) == raw
        assert vx.vni in (1, 2)
        # the inner frame is the VMs' RoCEv2 packet: their tenant addresses, its own valid ICRC
        ie = Ether(inner)
        assert ie[UDP].dport == 4791 and ie[UDP].sport == e[UDP].sport       # outer sport = inner entropy
        assert int(vfs[vfs["vni"] == vx.vni]["ip"].min()) <= int.from_bytes(bytes(map(int, ie[IP].src.split("."))), "big")
        from dataplane.sim import icrc
        assert icrc(inner) == int.from_bytes(inner[-4:], "little")
    # decap restores the inner packet: the same packet encoded unencapsulated (the VM's frame)
    pk = {"src": 1, "dst": 0, "dqp": int(net.qps[0]) + 1, "psn": 5, "payload": 64, "opcode": 10, "sport": 50000,
          "prio": 1, "ecn": 2, "ttl": 61, "msg": NONE, "flags": 1}
    vni = int(vfs["vni"][0])
    enc = net.sim.encode_meta(pk, vni | VS_META_ENCAP)
    plain = net.sim.encode_meta({**pk, "ttl": 64}, vni)
    assert enc[VXLAN_OVERHEAD:] == plain


# ---------------------------------------------------------------------------- isolation
def install_unless_taken(sim, host, value, mask, priority, actions):
    """Install a flow; a flow with the same match and priority drawn earlier keeps its place (the
    one refusal allowed here: any other error fails the test)."""
    try:
        sim.vs_install(host, value, mask, priority, actions)
    except ValueError as exc:
        if "already installed" not in str(exc):
            raise


def random_rules_world(seed):
    """Random flows installed straight into the fast path (bypassing the policy's checks): output to
    any port, encap into any VNI (including one no function has) towards any host (including h4,
    which has no vSwitch) or towards no tunnel destination, decap or not, over random matches and
    priorities, on top of permissive flows (priority 2) that tunnel each VF's packets in its own VNI
    and decap by (VNI, address). Sending ends of the QPs sit on random VFs pf0vf0..2 of their host,
    receiving ends on random VFs pf0vf3..5 (so about 2/3 of the pairs cross tenants, and a receiving
    VF takes data packets only). The fast path must refuse exactly the flows whose tunnel would not
    end at a VTEP of its tenant (a DPU with a vSwitch and a VF of that VNI).

    Returns (cross-tenant pairs with data delivered, same-tenant pairs with data delivered, isolation
    drops, flows refused, the per-receiving-VF ledger mismatches, packets NICs refused)."""
    rng = np.random.default_rng(seed)
    n_hosts, dpus, tenants = 5, [0, 1, 2, 3], 3
    flows = [{"src": s, "dst": d, "size_bytes": 20_000, "start_ps": 0} for s in dpus for d in dpus if s != d]
    sc = Scenario(topology=star(n_hosts), workload={"kind": "flows", "flows": flows}, sample_interval_ps=0,
                  duration_ps=us(300), rto_ps=us(50),
                  dpu={"tenants": tenants, "vfs_per_host": 2 * tenants, "hosts": dpus, "policy": {"overlay": False}})
    net = sc.build()
    sim = net.sim
    vfs = sim.vs_vfs
    rx_vfs = set()
    for i in range(len(flows)):
        qp = int(net.qps[i])
        for q, h, lo in ((qp, flows[i]["src"], 0), (qp + 1, flows[i]["dst"], tenants)):
            g = net.vswitch.vf_global[(h, int(rng.integers(lo, lo + tenants)))]
            sim.vs_set_qp_function(q, g)
            if lo:
                rx_vfs.add(g)
    ports = [VS_UPLINK, VS_PF] + list(range(VS_VF0, VS_VF0 + 2 * tenants))
    sending = {h: [q for q in range(len(sim.qps)) if int(sim.qps[q]["host"]) == h] for h in dpus}
    refused = 0
    for h in dpus:
        for _ in range(int(rng.integers(2, 11))):
            mask = np.zeros(VS_KEY_WORDS, np.uint32)
            value = np.zeros(VS_KEY_WORDS, np.uint32)
            # half of the rules are aimed at a packet this DPU really sends (its fields, randomly
            # wildcarded), so that they do catch traffic; the others match random values
            real = rng.random() < 0.5
            q = int(rng.choice(sending[h]))
            key = sim.vs_packet_key(q)
            tenant = int(vfs["vni"][_fn_of(net, q)])
            if rng.random() < 0.7:
                mask[VS_FIELDS["in_port"]] = FULL
                value[VS_FIELDS["in_port"]] = key[VS_FIELDS["in_port"]] if real else rng.choice(ports)
            if rng.random() < 0.7:
                mask[VS_FIELDS["dst_ip"]] = FULL
                value[VS_FIELDS["dst_ip"]] = key[VS_FIELDS["dst_ip"]] if real else int(rng.choice(vfs["ip"]))
            if rng.random() < 0.3:
                mask[VS_FIELDS["vni"]] = FULL
                value[VS_FIELDS["vni"]] = 0 if real else int(rng.integers(0, tenants + 1))
            act = {"output": int(rng.choice(ports))}
            bad_tunnel = False
            if rng.random() < 0.6:
                # tenants + 1: a VNI no function has
                act["encap"] = tenant if real and rng.random() < 0.5 else int(rng.integers(1, tenants + 2))
                if rng.random() < 0.7:
                    act["output"] = VS_UPLINK                        # where a tunnel mostly goes
                if rng.random() < 0.8:
                    act["tun_dst"] = int(rng.integers(n_hosts))
                    bad_tunnel = act["tun_dst"] not in dpus or act["encap"] > tenants
            if rng.random() < 0.6:
                act["decap"] = True
            if bad_tunnel:
                with pytest.raises(ValueError, match="tunnel destination"):
                    sim.vs_install(h, value, mask, int(rng.integers(0, 5)), act)
                refused += 1
            else:
                install_unless_taken(sim, h, value, mask, int(rng.integers(0, 5)), act)
        for n in range(2 * tenants):
            v = np.zeros(VS_KEY_WORDS, np.uint32)
            m = np.zeros(VS_KEY_WORDS, np.uint32)
            v[0], m[0] = VS_VF0 + n, FULL
            install_unless_taken(sim, h, v, m, 2, {"encap": int(vfs["vni"][net.vswitch.vf_global[(h, n)]]),
                                                   "output": VS_UPLINK})
        for g in np.nonzero(vfs["host"] == h)[0]:
            v = np.zeros(VS_KEY_WORDS, np.uint32)
            m = np.zeros(VS_KEY_WORDS, np.uint32)
            v[0], v[1], v[3] = VS_UPLINK, vfs["vni"][g], vfs["ip"][g]
            m[0] = m[1] = m[3] = FULL
            install_unless_taken(sim, h, v, m, 2, {"decap": True, "output": VS_VF0 + int(vfs["index"][g])})
    r = net.run()
    assert_conserved(r, all_complete=False)
    qps = sim.qps
    crossed = crossed_delivered = same_delivered = 0
    data_into = {g: 0 for g in rx_vfs}
    for i in range(len(flows)):
        qp = int(net.qps[i])
        rq = int(qps[qp]["peer_qp"])
        a, b = (net.vswitch.vf_info[_fn_of(net, q)]["tenant"] for q in (qp, rq))
        got = int(qps[rq]["rx_packets"] + qps[qp]["rx_packets"])
        data_into[_fn_of(net, rq)] += int(qps[rq]["rx_packets"])
        if a != b:
            crossed += 1
            crossed_delivered += got > 0
        else:
            same_delivered += got > 0
    assert crossed > 0
    # the ledger: every QP lives behind a DPU, so every packet a NIC consumed (data and control
    # delivered) must have been handed to it by its own DPU's vSwitch (to_functions); and a receiving
    # VF takes data packets only, so the data its QPs processed equals what its vSwitch gave it. A
    # packet that reached a QP any other way (a NIC taking another host's packet) breaks both.
    c, vfs = r.counters, sim.vs_vfs
    ledger_off = c["data_delivered"] + c["ctrl_delivered"] - c["vs_to_functions"]
    ledger_off += sum(data_into[g] != int(vfs["rx_packets"][g]) for g in rx_vfs)
    return (crossed_delivered, same_delivered, int(sim.vs_stats["isolation_drops"].sum()), refused, ledger_off,
            c["misdelivered"])


@pytest.mark.parametrize("seed", range(16))
def test_tenant_isolation_under_random_rules(seed):
    """Whatever flows are installed, no packet of a QP pair whose ends sit on different tenants'
    VFs reaches the other end (in either direction); tunnels towards h4 (no vSwitch) or into a VNI
    the destination has no function of are refused at install (checked inside random_rules_world);
    every data packet a QP processed came through its own DPU (the ledger), and no NIC was handed a
    packet that was not its own (every tunnel ends at a VTEP, tenant QPs live only behind DPUs)."""
    crossed_delivered, _, _, _, ledger_off, misdelivered = random_rules_world(seed)
    assert crossed_delivered == 0
    assert ledger_off == 0
    assert misdelivered == 0


def test_tenant_isolation_check_is_not_vacuous():
    """Over the same worlds, same-tenant pairs do get data through, the fast path did stop packets
    that the rules sent across tenants, and the draws did include tunnels the fast path refused."""
    worlds = [random_rules_world(seed) for seed in range(16)]
    assert sum(w[1] for w in worlds) > 0
    assert sum(w[2] for w in worlds) > 0
    assert sum(w[3] for w in worlds) > 0


def _fn_of(net, qp):
    key = net.sim.vs_packet_key(qp)
    host = int(net.sim.qps[qp]["host"])
    in_port = int(key[VS_FIELDS["in_port"]])
    if in_port == VS_PF:
        raise AssertionError("QP on the PF")
    return net.vswitch.vf_global[(host, in_port - VS_VF0)]


# ---------------------------------------------------------------------------- bad input
def test_bad_rules_are_rejected_with_clear_errors():
    net = overlay().build()
    d = net.vswitch
    d.add_rule(0, 1, 5, {"dst_ip": "10.9.0.0/16"}, {"output": "p0", "encap": 1})
    with pytest.raises(ValueError, match="same priority"):
        d.add_rule(0, 1, 5, {"dst_ip": "10.9.1.0/24", "dscp": 26}, {"drop": True})
    d.add_rule(0, 1, 6, {"dst_ip": "10.9.1.0/24"}, {"drop": True})          # higher priority: fine
    with pytest.raises(ValueError, match="unknown VF pf0vf7"):
        d.add_rule(0, 1, 1, {"dst_ip": "10.0.0.1"}, {"output": "pf0vf7"})
    with pytest.raises(ValueError, match="belongs to tenant 2"):
        d.add_rule(0, 1, 1, {"dst_ip": "10.0.0.1"}, {"output": "pf0vf1"})
    with pytest.raises(ValueError, match="vni .* out of range"):
        d.add_rule(0, 1, 1, {"vni": 1 << 24}, {"drop": True})
    with pytest.raises(ValueError, match="encap VNI"):
        d.add_rule(0, 1, 1, {"dst_ip": "10.0.0.2"}, {"encap": 0, "output": "p0"})
    with pytest.raises(ValueError, match="own VNI"):
        d.add_rule(0, 1, 1, {"dst_ip": "10.0.0.2"}, {"encap": 2, "output": "p0"})
    with pytest.raises(ValueError, match="unknown match field"):
        d.add_rule(0, 1, 1, {"vlan": 3}, {"drop": True})
    with pytest.raises(ValueError, match="unknown DPU port"):
        d.add_rule(0, 1, 1, {"in_port": "eth0"}, {"drop": True})


def test_tunnels_end_only_at_a_vtep_of_the_tenant():
    """Issue #11 item 5: with DPUs on h0 and h1 only, a rule tunnelling towards h4 (no vSwitch) is
    refused when it is added, with the reason; towards h0 (a DPU with a VF of tenant 1) it is fine."""
    net = overlay(n_hosts=5, tenants=1, hosts=[0, 1]).build()
    d = net.vswitch
    with pytest.raises(ValueError, match="tun_dst 4 has no DPU vSwitch"):
        d.add_rule(1, 1, 100, {}, {"encap": 1, "tun_dst": 4, "output": "p0"})
    with pytest.raises(ValueError, match="tun_dst needs encap"):
        d.add_rule(1, 1, 100, {}, {"tun_dst": 0, "output": "p0"})
    with pytest.raises(ValueError, match="tun_dst must be a host id"):
        d.add_rule(1, 1, 100, {}, {"encap": 1, "tun_dst": "h0", "output": "p0"})
    d.add_rule(1, 1, 100, {}, {"encap": 1, "tun_dst": 0, "output": "p0"})


def test_c_refuses_tunnels_that_no_vtep_of_the_tenant_ends():
    """The fast path checks what the slow path passes: the tunnel destination must have a vSwitch
    and a function of the tunnel's VNI."""
    sim = bare_vswitch()                         # h0: VFs of VNI 1 and 2; h1: no vSwitch
    z = np.zeros(VS_KEY_WORDS, np.uint32)
    with pytest.raises(ValueError, match="tunnel destination 1 has no vSwitch"):
        sim.vs_install(0, z, z, 0, {"output": VS_UPLINK, "encap": 1, "tun_dst": 1})
    sim.vs_enable(1)
    sim.vs_add_vf(1, 2, 0x0A000101)
    with pytest.raises(ValueError, match=r"tunnel destination 1 has no function of tenant \(VNI\) 1"):
        sim.vs_install(0, z, z, 0, {"output": VS_UPLINK, "encap": 1, "tun_dst": 1})
    sim.vs_install(0, z, z, 0, {"output": VS_UPLINK, "encap": 2, "tun_dst": 1})


def _lone_flow(n_hosts, src, dst, **dpu):
    flows = [{"src": src, "dst": dst, "size_bytes": 100_000, "start_ps": 0}]
    return Scenario(topology=star(n_hosts), workload={"kind": "flows", "flows": flows}, sample_interval_ps=0,
                    cc="none", duration_ps=us(300), rto_ps=us(40), dpu=dpu or None)


def _only_misdelivered(r, host):
    """Nothing reached the receiver: every data packet that left is dropped by the NIC of ``host``
    (counted there) or still in flight (conservation); no message completes."""
    c, net = r.counters, r.network
    assert c["data_delivered"] == 0 and c["msgs_completed"] == 0 and c["bytes_acked"] == 0
    assert c["misdelivered"] == c["data_dropped"] == c["data_sent"] - c["data_in_flight"]
    assert c["data_sent"] >= 2                    # the first transmission and at least one RTO resend
    assert net.dpus[host].misdelivered == c["misdelivered"]
    assert sum(d.misdelivered for d in net.dpus) == c["misdelivered"]
    assert_conserved(r, all_complete=False)


def test_a_nic_drops_a_tunnelled_frame_it_cannot_terminate():
    """A tenant VM's QP on h0 (a DPU) talking to h4 (a plain NIC, no vSwitch), with a rule that
    tunnels towards the inner destination: the VXLAN frame reaches h4, whose NIC has no VTEP. It is
    dropped and counted there; before, h4's NIC took it for RoCE and the message completed."""
    net = _lone_flow(5, 0, 4, tenants=1, hosts=[0, 1]).build()
    qp = int(net.qps[0])
    net.sim.vs_set_qp_function(qp, net.vswitch.vf_of[(0, 1)][0])     # the sender on a tenant-1 VF
    net.vswitch.add_rule(0, 1, 100, {"dst_ip": "10.0.0.5"}, {"encap": 1, "output": "p0"})   # h4's address
    r = net.run()
    assert r.counters["vs_encaps"] == r.counters["data_sent"]
    _only_misdelivered(r, 4)
    assert net.connections[0].receiver.rx_packets == 0


def test_a_nic_drops_packets_for_another_host():
    """A fabric that delivers h1's packets to h2 (its forwarding entries for h1 and h2 swapped): h2's
    NIC refuses them (another host's address, another host's QP) instead of running h1's QP."""
    net = _lone_flow(3, 0, 1).build()
    rt = net.routes
    fib = np.array(rt.fib).reshape(net.fabric.num_switches, net.fabric.num_hosts).copy()
    fib[:, [1, 2]] = fib[:, [2, 1]]
    net.sim.install_fib(fib, rt.set_offsets, rt.set_ports)
    r = net.run()
    _only_misdelivered(r, 2)
    assert net.connections[0].receiver.rx_packets == 0


def test_c_side_checks_what_python_passes():
    sim = bare_vswitch()
    z = np.zeros(VS_KEY_WORDS, np.uint32)
    with pytest.raises(ValueError, match="output to unknown port"):
        sim.vs_install(0, z, z, 0, {"output": 99})
    with pytest.raises(ValueError, match="encap vni"):
        sim.vs_install(0, z, z, 0, {"output": 0, "encap": 1 << 24})
    with pytest.raises(ValueError, match="reserved"):
        sim.vs_install(0, z, np.full(VS_KEY_WORDS, FULL, np.uint32), 0, {"output": 0})
    with pytest.raises(ValueError, match="meter 999 out of range"):
        sim.vs_install(0, z, z, 0, {"output": 0, "meter": 999})
    sim.vs_install(0, z, z, 0, {"output": 0})
    with pytest.raises(ValueError, match="already installed"):
        sim.vs_install(0, z, z, 0, {"output": 0})
    with pytest.raises(ValueError, match="vni must be in"):
        sim.vs_add_vf(0, 0, 1)
    with pytest.raises(ValueError, match="not a host"):
        sim.vs_enable(7)
    with pytest.raises(ValueError, match="unknown key"):
        sim.vs_install(0, z, z, 0, {"forward": 1})
    with pytest.raises(ValueError, match="holds no waiting packet"):
        sim.vs_execute(0, 3, {"drop": True}, 0)
    with pytest.raises(ValueError, match="is not installed"):
        sim.vs_delete(0, 12345)
    with pytest.raises(ValueError, match="ipv6"):
        Simulator(num_hosts=2, num_switches=0, max_links=1, ipv6=True).vs_enable(0)


def test_bad_dpu_spec():
    with pytest.raises(ValueError, match="dpu.vfs_per_host"):
        overlay(tenants=3, vfs_per_host=2).build()
    with pytest.raises(ValueError, match="dpu.offload"):
        overlay(offload="fpga").build()
    with pytest.raises(ValueError, match="dpu.slow_path: unknown"):
        overlay(slow_path={"threads": 2}).build()


@pytest.mark.parametrize("dpu, message", [
    ({"hosts": []}, r"dpu.hosts is empty"),
    ({"hosts": [0, 9]}, r"dpu.hosts\[1\]: 9 is not a host"),
    ({"hosts": [1, 2, 1]}, r"dpu.hosts\[2\]: host 1 is listed twice"),
    ({"hosts": [0, True]}, r"dpu.hosts\[1\]: True is not a host"),
    ({"hosts": "all"}, r"dpu.hosts must be a list"),
    ({"tenants": 0}, r"dpu.tenants must be a positive integer"),
    ({"tenants": -2}, r"dpu.tenants must be a positive integer"),
    ({"vswitch": {"max_flows": "many"}}, r"dpu.vswitch.max_flows must be an integer, got 'many'"),
    ({"slow_path": {"handlers": 0}}, r"dpu.slow_path.handlers must be a positive integer \(>= 1\)"),
    ({"policy": {"dscp": 64}}, r"dpu.policy.dscp must be in \[0, 63\]"),
    ({"tax": {"upcall": -1}}, r"dpu.tax.upcall"),
    ("yes", r"dpu must be a dict"),
])
def test_bad_dpu_spec_fails_at_build_naming_the_field(dpu, message):
    """Issue #11 item 7: an invalid dpu spec is refused when the network is built (before any
    packet moves), with the offending field in the message; dpu={"hosts": []} used to build, run,
    and fail only while writing the results."""
    with pytest.raises(ValueError, match=message):     # the schema refuses some already at construction
        Scenario(topology=star(4), workload={"kind": "incast", "senders": 2, "size_bytes": 10_000},
                 sample_interval_ps=0, dpu=dpu).build()


ENABLE_FAILURE_SCRIPT = """
import gc
from controlplane.config.units import Gbps, us
from dataplane.sim import STOP_UPCALL, VS_FIELDS, VS_PF, VS_UPLINK, SimError, Simulator

VS = dict(upcall_queue=4, emc_entries=8, max_meters=2)


def world():
    sim = Simulator(num_hosts=2, num_switches=0, max_links=1)
    sim.add_links([0], [1], [Gbps(100)], [us(1)])
    return sim


def works(sim):
    # both DPUs switch a message both ways through their upcall queues (a minimal slow path)
    qp = sim.create_qp_pair(0, 1, 50000)
    sim.post_writes([qp], [40_000], [0])
    while sim.msgs_completed < 1:
        if sim.run_until(sim.now + us(100)) == STOP_UPCALL:
            for u in sim.vs_drain_upcalls():
                out = VS_PF if u["key"][VS_FIELDS["in_port"]] == VS_UPLINK else VS_UPLINK
                sim.vs_execute(int(u["dpu"]), int(u["slot"]), {"output": out}, sim.now)
        assert sim.now < us(10_000), "stuck"


counts = []
for first in (True, False):        # the failure in the first enable (shared arrays) or a second one
    k = 1
    while True:
        sim = world()
        if not first:
            sim.vs_enable(0, **VS)
        sim.vs_debug_fail_alloc(k)
        host = 0 if first else 1
        try:
            sim.vs_enable(host, **VS)
            failed = False
        except SimError as exc:
            assert "out of memory" in str(exc), exc
            failed = True
        sim.vs_debug_fail_alloc(0)
        if failed:
            sim.vs_enable(host, **VS)          # consistent state: the DPU has no vSwitch yet
        if first:
            sim.vs_enable(1, **VS)
        works(sim)
        del sim
        gc.collect()                           # sd_destroy: frees what the enables allocated, once
        if not failed:
            break
        k += 1
    counts.append(k - 1)
print("failure points", counts)
"""


def test_vswitch_enable_survives_every_allocation_failure():
    """Issue #11 item 7: every allocation of sd_vs_enable is made to fail in turn (the test hook);
    the call reports out of memory and leaves consistent state: enabling again works, both DPUs
    then switch traffic through their upcall queues, and teardown frees everything exactly once.
    Before the fix a failure after the upcall ring had been reallocated left the ring pointer
    dangling (a double free at teardown) and a failure in the first enable left the per-host arrays
    half allocated. Run in a child process, so that a crash fails this test, not the whole session."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", ENABLE_FAILURE_SCRIPT], cwd=root, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    first, later = (int(x) for x in r.stdout.split("[")[1].split("]")[0].split(","))
    # the first enable also allocates the per-host arrays (vs, vs_stats, vsmeta): 3 more failure points
    assert first == later + 3 and later >= 5


def test_conservation_holds_while_packets_wait_for_the_slow_path():
    """Data packets parked in upcall slots count as in flight: sent = delivered + dropped + in
    flight at every stop, including the stops where the upcall queue is full of them."""
    net = overlay(vswitch={"upcall_queue": 64}).build()
    sim = net.sim
    parked_seen = 0
    while sim.msgs_completed < 4:
        stop = sim.run_until(sim.now + us(5))
        c = sim.counters()
        assert c["data_sent"] == c["data_delivered"] + c["data_dropped"] + sim.data_in_flight()
        parked_seen = max(parked_seen, int(sim.vs_stats["upcall_depth"].sum()))
        if stop == STOP_UPCALL:
            net.vswitch.slow.handle()
    assert parked_seen > 0


def test_pf_traffic_takes_the_underlay():
    """QPs left on the PF (tenant 0) are switched untunnelled by the provider's rules."""
    net = overlay().build()
    for qp in range(len(net.sim.qps)):
        net.sim.vs_set_qp_function(qp, None)
    r = net.run()
    c = r.counters
    assert_conserved(r)
    assert c["vs_encaps"] == 0 and c["vs_to_functions"] > 0 and c["vs_isolation_drops"] == 0


def test_functions_and_representors_as_devices():
    net = overlay().build()
    dpu = net.dpus[1]
    fns = dpu.functions
    assert [f.name for f in fns] == ["pf0vf0", "pf0vf1"] and [f.tenant for f in fns] == [1, 2]
    assert fns[0].representor == "pf0vf0" and fns[0].ip == "10.0.1.1"
    fns[0].add_rule(50, {"dst_ip": "10.0.0.1"}, {"drop": True})     # this VF may not reach h0's VM
    net.run()
    assert fns[0].tx_packets > 0 and dpu.vswitch_stats["action_drops"] > 0
    assert net.dpus[0].vswitch_stats["to_functions"] > 0              # tenant 2's flows still arrive
    with pytest.raises(ValueError, match="belongs to tenant 2"):
        fns[0].add_rule(60, {}, {"output": "pf0vf1"})


def test_dpus_on_some_hosts_only():
    """Flows with an end on a host without a DPU vSwitch stay on the PFs and take the underlay."""
    r = overlay(hosts=[0, 1]).run()
    c = r.counters
    assert_conserved(r)
    assert c["vs_encaps"] > 0 and c["vs_to_functions"] > 0      # h1 -> h0 tunnelled, the rest on the PF


def test_tax_charges_finished_upcalls_only():
    """Upcall cycles are charged for upcalls the handlers finished, not for ones still queued."""
    net = overlay(slow_path={"handlers": 1}).build()
    sim = net.sim
    while sim.run_until(sim.now + 10**12) == STOP_UPCALL and int(sim.vs_stats["miss"].sum()) < 50:
        net.vswitch.slow.handle()
    from controlplane.dpu import vtax
    st = net.vswitch.stats()
    cyc = vtax.stage_cycles(st, net.vswitch.tax)
    assert st["vs_executed"] < st["vs_miss"]                       # some are still queued ...
    assert cyc["upcall"] == st["vs_executed"] * net.vswitch.tax["upcall"]    # ... and not charged


def test_tshark_decodes_vxlan_and_the_inner_roce(tmp_path):
    """tshark (an independent decoder) sees VXLAN on UDP 4789 with the tenant's VNI, and inside it
    a RoCEv2 packet between the two VMs' tenant addresses."""
    from tests.test_wire import tshark_fields
    net = overlay(senders=2, size=40_000).build()
    path = tmp_path / "vx.pcap"
    s = net.sim.capture_open(path)
    for h in range(3):
        net.sim.capture_port(s, int(net.routes.host_port[h]), tx=True)
    net.run()
    n, _ = net.sim.capture_close(s)
    rows = tshark_fields(path, "vxlan.vni", "udp.dstport", "infiniband.bth.opcode", "infiniband.bth.destqp")
    assert len(rows) == n > 0
    for vni, dport, op, dqp in rows:
        assert int(vni) in (1, 2) and dport == "4789"
        assert int(op) in (6, 7, 8, 10, 17) and dqp != ""
    import shutil
    import subprocess
    last = subprocess.run([shutil.which("tshark"), "-r", str(path), "-T", "fields", "-E", "occurrence=l",
                           "-e", "ip.src", "-e", "ip.dst"], capture_output=True, text=True, check=True).stdout.split()
    tenant_ips = {".".join(str(int(ip) >> k & 255) for k in (24, 16, 8, 0)) for ip in net.sim.vs_vfs["ip"]}
    assert len(last) == 2 * n and set(last) <= tenant_ips          # the inner IP header is the VMs'


def test_tax_offload_modes():
    """host: everything on host cores; dpu: everything on DPU cores; hw: only upcalls on DPU cores.
    With equal core clocks the dpu and host totals are the same cycles (the same pipeline)."""
    from controlplane.dpu import vtax
    st = overlay().run().counters
    p = vtax.params({"dpu_core_hz": 2.5e9})
    host, dpu, hw = (vtax.tax(st, 10**9, m, 5, p) for m in ("host", "dpu", "hw"))
    assert host["tax_host_cores"] > 0 and host["tax_dpu_cores"] == 0
    assert dpu["tax_host_cores"] == 0 and dpu["tax_dpu_cores"] == pytest.approx(host["tax_host_cores"])
    assert hw["tax_host_cores"] == 0
    assert hw["tax_dpu_cores"] == pytest.approx(st["vs_executed"] * p["upcall"] / 1e-3 / 2.5e9)
    with pytest.raises(ValueError, match="offload"):
        vtax.tax(st, 10**9, "fpga", 5, p)


def test_batched_upcalls_give_identical_results():
    """The data plane runs up to one handler service time past the oldest upcall before handing
    the batch over (sd_vs_set_lookahead): nothing a handler does about an upcall at t acts before
    t + service, so every counter, flow and completion time is the same as handling each at once."""
    flows = [{"src": 1 + i % 6, "dst": (1 + i % 6 + 1 + i % 5) % 7, "size_bytes": 8192, "start_ps": i * 700_000}
             for i in range(300)]
    runs = []
    for batch in (False, True):
        sc = Scenario(topology=star(7), workload={"kind": "flows", "flows": flows}, sample_interval_ps=0,
                      dpu={"tenants": 2, "policy": {"per_connection": True}, "slow_path": {"batch_upcalls": batch}})
        r = sc.run()
        runs.append((r.counters, r.flows["finish_ps"].copy()))
    (a, fa), (b, fb) = runs
    assert a["vs_miss"] > 500
    same = lambda c: {k: v for k, v in c.items() if k not in ("events", "heap_peak")}   # noqa: E731
    assert same(a) == same(b)
    assert (fa == fb).all()


@pytest.mark.parametrize("per_connection", [False, True])
def test_proactive_megaflows_mean_no_upcalls(per_connection):
    """Connections set up by the control plane (policy.proactive): their megaflows are in place at
    t = 0 (the same ones reactive setup would install), so no packet misses."""
    reactive = overlay(policy={"per_connection": per_connection}).run().counters
    r = overlay(policy={"proactive": True, "per_connection": per_connection}).run()
    c = r.counters
    assert_conserved(r)
    assert c["vs_miss"] == 0 and c["vs_rx"] == c["vs_exact_hit"] + c["vs_masked_hit"]
    assert c["vs_installs"] == reactive["sp_installs"]


def test_a_default_policy_too_large_to_build_is_refused_before_it_is_installed(monkeypatch):
    """The default overlay policy has one rule per (DPU, VF of its tenant): 4 hosts with one
    tenant and one VF each need 4 x 4 = 16 rules. Above the limit the build is refused naming
    dpu.hosts, instead of spending minutes on overlap checks before the run budget starts (the
    #12 campaign: `softdpu run upcall_storm --set hosts=1e3` built 1,000,000 rules for > 5 min)."""
    from controlplane.dpu import vswitch
    sc = Scenario(topology={"topology": "single_switch", "num_hosts": 4, "rate_bps": Gbps(100), "delay_ps": us(1)},
                  workload={"kind": "permutation", "size_bytes": 4096}, cc="none", sample_interval_ps=0,
                  dpu={"tenants": 1})
    monkeypatch.setattr(vswitch, "MAX_DEFAULT_POLICY_RULES", 15)
    with pytest.raises(ValueError, match=r"^dpu\.hosts: the default overlay policy needs 16 rules \(4 DPUs x the "
                                         r"VFs of their tenants\), at most 15"):
        sc.build()
    monkeypatch.setattr(vswitch, "MAX_DEFAULT_POLICY_RULES", 16)
    assert sc.run().counters["msgs_completed"] == 4
