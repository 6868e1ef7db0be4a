/* switch.c: forwarding. The FIB maps a destination address (a host's, or one interface group of a
 * multi-address host: sd_set_addresses) to a set of equal-cost egress ports
 * (computed by controlplane/fabric/routing.py); a packet takes the member chosen by a hash of its
 * 5-tuple salted with the switch's own seed (ECMP, as in RFC 2992's hash-threshold family),
 * so every packet of a flow follows one path and different switches decorrelate. */
#include "sim.h"

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t sd_ecmp_hash(uint32_t src, uint32_t dst, uint32_t sport, uint32_t dport, uint64_t seed)
{
    uint64_t a = ((uint64_t)src << 32) | dst;
    uint64_t b = ((uint64_t)sport << 16) | (dport & 0xFFFFu);
    return (uint32_t)(mix64(a ^ mix64(b ^ seed)) >> 32);
}

/* Adaptive routing (NIC-marked, switch-chosen per packet, as NVIDIA Spectrum-X / RoCE adaptive
 * routing; the load measure is this model's, not a vendor spec): the least-loaded member of the
 * candidate set, links that are down excluded; the ECMP choice wins ties, so an idle fabric
 * routes as ECMP would. The packet never leaves its candidate set. Load (SD_AR_BYTES): queued
 * data bytes; SD_AR_DELAY: the delay estimate queued bytes / link rate (compared by cross-
 * multiplication), which differs when candidate links run at different rates. */
static uint32_t ar_pick(sd_sim *sim, uint32_t sw, uint32_t off, uint32_t n, uint32_t hash_pick)
{
    const sd_port *h = &sim->ports[sim->set_ports[off + hash_pick]];
    uint32_t best = hash_pick;
    int delay = sim->ar_on[sw] == SD_AR_DELAY;
    uint64_t best_q = h->up ? h->st->q_bytes[SD_PRIO_DATA] : UINT64_MAX, best_rate = h->rate_bps;
    for (uint32_t i = 0; i < n; i++) {
        const sd_port *pt = &sim->ports[sim->set_ports[off + i]];
        if (!pt->up)
            continue;
        uint64_t q = pt->st->q_bytes[SD_PRIO_DATA];
        int less = delay && best_q != UINT64_MAX
                       ? (unsigned __int128)q * best_rate < (unsigned __int128)best_q * pt->rate_bps
                       : q < best_q;
        if (less) {
            best_q = q;
            best_rate = pt->rate_bps;
            best = i;
        }
    }
    if (best != hash_pick)
        sim->ctr.ar_moves++;
    return best;
}

void switch_receive(sd_sim *sim, uint32_t node, uint32_t in_port, uint32_t p)
{
    sd_packet *pk = &sim->pkts[p];
    uint32_t sw = switch_index(sim, node);
    if (pk->ttl > 0)
        pk->ttl--;                       /* a routed hop (RoCEv2 is IP-routed) */
    uint32_t set = fib_set(sim, sw, pk->dst);
    if (set == SD_NONE) {                /* declared addresses only: not reachable from here */
        sim->no_route++;
        count_drop(sim, pk);
        pkt_free(sim, p);
        return;
    }
    uint32_t off = sim->set_off[set], n = sim->set_off[set + 1] - off;
    uint32_t pick = ecmp_pick(sim, sw, n, pk->src, pk->dst, pk->sport);
    if (n > 1 && sim->ar_on && sim->ar_on[sw] && (pk->flags & SD_PKT_AR))
        pick = ar_pick(sim, sw, off, n, pick);
    uint32_t out = sim->set_ports[off + pick];
    if (pk->prio == SD_PRIO_DATA && sim->pfc.mmu[sw].enabled && !pfc_admit(sim, in_port, pk)) {
        sd_port *o = &sim->ports[out];
        o->st->dropped++;                    /* the shared buffer and the ingress headroom are full */
        o->st->dropped_bytes += pk->wire;
        sim->ctr.data_dropped++;
        pkt_free(sim, p);
        return;
    }
    port_enqueue(sim, out, p);
}

/* The links a packet from src to dst with UDP source port `sport` crosses under ECMP (no adaptive
 * routing), written to links_out; returns their number, or an error. For the control plane's
 * failover: which entropies of a QP cross a failed link. */
int sd_trace_path(sd_sim *sim, uint32_t src, uint32_t dst, uint32_t sport, uint32_t *links_out, uint32_t max)
{
    if (src >= sim->num_nodes || !node_is_host(sim, src) || sim->hosts[src].port == SD_NONE)
        return sd_fail(sim, SD_EINVAL, "trace_path: src %u must be a linked host", src);
    return sd_trace_path_from(sim, sim->hosts[src].port, dst, sport, links_out, max);
}

int sd_trace_path_from(sd_sim *sim, uint32_t port, uint32_t dst, uint32_t sport, uint32_t *links_out, uint32_t max)
{
    uint32_t A = sim->num_addrs;
    if (port >= sim->num_ports || !node_is_host(sim, sim->ports[port].node))
        return sd_fail(sim, SD_EINVAL, "trace_path: port %u is not a host port", port);
    uint32_t src = sim->port_addr[port], n = 0;    /* the packet's source address: its port's */
    if (dst >= A || dst == src)
        return sd_fail(sim, SD_EINVAL, "trace_path: dst %u must be an address (0..%u) other than port %u's",
                       dst, A - 1, port);
    if (!sim->fib && sim->cfg.num_switches > 0)
        return sd_fail(sim, SD_ESTATE, "trace_path: install the fib first");
    uint32_t dst_node = sim->addr_host[dst];
    while (n < max) {
        links_out[n++] = port / 2;
        uint32_t node = sim->ports[sim->ports[port].peer].node;
        if (node == dst_node)
            return (int)n;
        if (node_is_host(sim, node))
            return sd_fail(sim, SD_EINVAL, "trace_path: reached host %u, not %u", node, dst_node);
        uint32_t sw = switch_index(sim, node);
        uint32_t set = fib_set(sim, sw, dst);
        if (set == SD_NONE)
            return sd_fail(sim, SD_EINVAL, "trace_path: switch node %u has no route to address %u", node, dst);
        uint32_t off = sim->set_off[set], k = sim->set_off[set + 1] - off;
        port = sim->set_ports[off + ecmp_pick(sim, sw, k, src, dst, sport)];
    }
    return sd_fail(sim, SD_EINVAL, "trace_path: longer than %u links", max);
}
