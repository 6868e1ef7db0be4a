/* vswitch.c: the DPU's virtual switch, between the NIC transport and the uplink.
 *
 * The shape is Open vSwitch's userspace datapath (openvswitch/ovs lib/dpif-netdev.c):
 *   packet -> parse a flow key -> exact-match cache (EMC) -> tuple-space classifier (one subtable
 *   per distinct mask, probed in rank order) -> actions;  miss -> upcall queue -> control plane.
 * Differences, on purpose: flows carry a priority, so the classifier can also hold a rule table
 * (the highest-priority match wins; subtables are ranked by their highest priority, then by hits,
 * and the probe stops once no later subtable can beat the best match, as lib/classifier.c does);
 * megaflows from the slow path use priority 0 and never overlap in a way that matters (the slow
 * path un-wildcards every field its rules looked at). A flow installed with an install latency
 * is in the table but invisible to lookups until its active_ps.
 *
 * Tenant isolation is enforced here, whatever the flows say: a packet carries its tenant (the VNI
 * of the function it came from, or of the tunnel it arrived in); it may be encapsulated only into
 * its own tenant's VNI, may leave through the uplink only encapsulated (or untenanted, from the
 * PF), and is delivered to a function only if that function belongs to the same tenant.
 *
 * No allocation per packet: flow slots and hash buckets grow at install (slow path) only.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define KW SD_VS_KEY_WORDS
#define VS_INIT_FLOWS 1024u
#define VS_IPV4_BASE 0x0A000000u     /* 10.0.0.0 + host + 1: the PF's (host's) address, as wire.c */

static inline int vs_on(const sd_sim *sim, uint32_t host)
{
    return sim->vsw.dpu && sim->vsw.dpu[host].enabled;
}

static inline uint32_t hash_words(const uint32_t *k, uint32_t basis)
{
    uint64_t h = 0x9E3779B97F4A7C15ull * (basis + 1u);
    for (int i = 0; i < KW; i++) {
        h ^= k[i];
        h *= 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    return (uint32_t)(h ^ (h >> 29));
}

/* A subtable hashes and compares only the words its mask looks at (OVS specialises its subtable
 * lookups by miniflow shape for the same reason). */
static inline uint32_t hash_sub(const uint32_t *mk, const sd_vs_subtable *st, uint32_t s)
{
    uint64_t h = 0x9E3779B97F4A7C15ull * (s + 1u);
    for (uint32_t i = 0; i < st->nwords; i++) {
        h ^= mk[st->words[i]];
        h *= 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    return (uint32_t)(h ^ (h >> 29));
}

/* ---------------------------------------------------------------- functions and keys */
static inline uint32_t qp_function(const sd_sim *sim, uint32_t qp)
{
    return qp < sim->vsw.qp_fn_cap ? sim->vsw.qp_fn[qp] : SD_NONE;
}

static inline uint32_t function_ip(const sd_sim *sim, uint32_t qp)
{
    uint32_t vf = qp_function(sim, qp);
    return vf != SD_NONE ? sim->vsw.vfs[vf].ip : VS_IPV4_BASE + sim->qps[qp].host + 1u;
}

static uint32_t class_dscp(const sd_sim *sim, const sd_packet *pk)
{
    if (pk->opcode == SD_OP_CNP)
        return sim->cfg.dscp_cnp;
    return pk->prio == SD_PRIO_DATA ? pkt_dscp(sim, pk) : sim->cfg.dscp_ack;
}

/* The flow key of a packet entering a DPU's vSwitch through in_port. */
static void make_key(const sd_sim *sim, const sd_packet *pk, uint32_t meta, uint32_t in_port, uint32_t *k)
{
    uint32_t dq = pk->dqp, sq = sim->qps[dq].peer_qp;
    uint32_t dscp = meta & SD_VS_META_DSCP_SET ? meta >> SD_VS_META_DSCP_SHIFT : class_dscp(sim, pk);
    k[SD_VS_F_IN_PORT] = in_port;
    k[SD_VS_F_VNI] = meta & SD_VS_META_ENCAP ? meta & SD_VS_META_VNI : 0u;
    k[SD_VS_F_SRC_IP] = function_ip(sim, sq);
    k[SD_VS_F_DST_IP] = function_ip(sim, dq);
    k[SD_VS_F_PROTO_DSCP] = 17u << 8 | dscp;
    k[SD_VS_F_L4] = (uint32_t)pk->sport << 16 | SD_ROCE_DPORT;
    k[SD_VS_F_DQPN] = dq + SD_QPN_BASE;
    k[SD_VS_F_RESERVED] = 0;
}

/* ---------------------------------------------------------------- classifier */
static int cmp_rank(const sd_vswitch *v, uint32_t a, uint32_t b)
{
    const sd_vs_subtable *x = &v->sub[a], *y = &v->sub[b];
    if (x->max_prio != y->max_prio)
        return x->max_prio > y->max_prio ? -1 : 1;
    if (x->hits != y->hits)
        return x->hits > y->hits ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Probe order: highest priority first, then most hits (OVS re-sorts its pvector by hits each
 * second, dpcls_sort_subtable_vector); insertion sort of at most 64 entries. */
static void rerank(sd_vswitch *v)
{
    for (uint32_t i = 1; i < v->nsub; i++) {
        uint32_t s = v->order[i], j = i;
        while (j > 0 && cmp_rank(v, s, v->order[j - 1]) < 0) {
            v->order[j] = v->order[j - 1];
            j--;
        }
        v->order[j] = s;
    }
}

/* After an install or delete: keep the probe order by priority, otherwise as it was (a stable
 * sort on priority alone), so the order depends on simulated time only, not on when the control
 * plane happened to call. */
static void order_by_priority(sd_vswitch *v)
{
    for (uint32_t i = 1; i < v->nsub; i++) {
        uint32_t s = v->order[i], j = i;
        while (j > 0 && v->sub[s].max_prio > v->sub[v->order[j - 1]].max_prio) {
            v->order[j] = v->order[j - 1];
            j--;
        }
        v->order[j] = s;
    }
}

static uint32_t classify(const sd_vswitch *v, const uint32_t *key, int64_t now, uint32_t *probes_out,
                         uint32_t *sub_out)
{
    uint32_t best = SD_NONE, best_sub = SD_NONE, probes = 0;
    int32_t bp = INT32_MIN;
    uint32_t bmask = v->nbuckets - 1;
    for (uint32_t i = 0; i < v->nsub; i++) {
        uint32_t s = v->order[i];
        const sd_vs_subtable *st = &v->sub[s];
        if (best != SD_NONE && st->max_prio <= bp)
            break;                       /* no later subtable can beat the match */
        if (st->first_active_ps > now)
            continue;                    /* only flows still being installed */
        probes++;
        uint32_t mk[KW];
        for (uint32_t i = 0; i < st->nwords; i++)
            mk[st->words[i]] = key[st->words[i]] & st->mask[st->words[i]];
        for (uint32_t f = v->buckets[hash_sub(mk, st, s) & bmask]; f != SD_NONE; f = v->flows[f].next) {
            const sd_vs_flow *fl = &v->flows[f];
            if (fl->subtable != s || fl->active_ps > now || (best != SD_NONE && fl->priority <= bp))
                continue;
            uint32_t diff = 0;
            for (uint32_t i = 0; i < st->nwords; i++)
                diff |= fl->key[st->words[i]] ^ mk[st->words[i]];
            if (diff == 0) {
                best = f;
                bp = fl->priority;
                best_sub = s;
            }
        }
    }
    *probes_out = probes;
    *sub_out = best_sub;
    return best;
}

/* EMC then classifier, with statistics and EMC insertion: the per-packet lookup. */
static uint32_t lookup(sd_vswitch *v, sd_vs_stats *st, const uint32_t *key, int64_t now)
{
    uint32_t h = 0;
    if (v->emc_entries) {
        h = hash_words(key, 0xE3C);
        uint32_t m = v->emc_entries - 1;
        for (int c = 0; c < 2; c++) {
            const sd_vs_emc_entry *e = &v->emc[(c ? h >> 16 : h) & m];
            if (e->flow != SD_NONE && e->version == v->version && v->flows[e->flow].gen == e->gen &&
                v->flows[e->flow].subtable != SD_NONE && memcmp(e->key, key, KW * sizeof *key) == 0) {
                st->exact_hit++;
                return e->flow;
            }
        }
    }
    if (now >= v->next_rerank_ps) {
        rerank(v);
        for (uint32_t i = 0; i < v->nsub; i++)
            v->sub[v->order[i]].hits = 0;
        v->next_rerank_ps = now + v->rerank_interval_ps;
    }
    uint32_t probes, s;
    uint32_t f = classify(v, key, now, &probes, &s);
    st->masked_lookups += probes;
    if (f == SD_NONE)
        return SD_NONE;
    st->masked_hit++;
    v->sub[s].hits++;
    if (v->emc_entries && (v->emc_inv_prob <= 1 || rng_next(&v->rng) % v->emc_inv_prob == 0)) {
        /* OVS emc_insert: two candidate slots; take an empty or stale one, else the second */
        uint32_t m = v->emc_entries - 1;
        sd_vs_emc_entry *a = &v->emc[h & m], *b = &v->emc[(h >> 16) & m], *e = b;
        if (a->flow == SD_NONE || a->version != v->version || v->flows[a->flow].gen != a->gen)
            e = a;
        memcpy(e->key, key, KW * sizeof *key);
        e->flow = f;
        e->gen = v->flows[f].gen;
        e->version = v->version;
        st->emc_inserts++;
    }
    return f;
}

/* ---------------------------------------------------------------- the data path */
static void drop(sd_sim *sim, uint32_t p, uint64_t *counter)
{
    (*counter)++;
    count_drop(sim, &sim->pkts[p]);
    pkt_free(sim, p);
}

static inline uint32_t in_port_tenant(const sd_sim *sim, const sd_vswitch *v, uint32_t in_port, uint32_t meta)
{
    if (in_port == SD_VS_UPLINK)
        return meta & SD_VS_META_ENCAP ? meta & SD_VS_META_VNI : 0u;
    if (in_port == SD_VS_PF)
        return 0u;
    return sim->vsw.vfs[v->vf_ids[in_port - SD_VS_VF0]].vni;
}

static int meter_pass(sd_vs_meter *m, int64_t now, uint32_t bytes)
{
    if (m->rate_bps <= 0.0)
        return 1;
    m->tokens += (double)(now - m->last_ps) * m->rate_bps / 8e12;
    if (m->tokens > m->burst)
        m->tokens = m->burst;
    m->last_ps = now;
    if (m->tokens < (double)bytes)
        return 0;
    m->tokens -= (double)bytes;
    return 1;
}

/* Apply a flow's (or the slow path's) actions to packet p that entered through in_port. */
static void execute(sd_sim *sim, uint32_t host, uint32_t p, uint32_t in_port, const sd_vs_action *a)
{
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_stats *st = &sim->vsw.stats[host];
    sd_packet *pk = &sim->pkts[p];
    uint32_t *meta = &sim->vsw.meta[p];
    uint32_t fl = a->flags;
    if (fl & SD_VS_DROP || !(fl & SD_VS_OUTPUT)) {
        drop(sim, p, &st->action_drops);
        return;
    }
    if (fl & SD_VS_DECAP && *meta & SD_VS_META_ENCAP) {
        *meta &= ~(uint32_t)SD_VS_META_ENCAP;   /* the tenant (VNI) stays with the packet */
        pk->wire = (uint16_t)(pk->wire - SD_VXLAN_OVERHEAD);
        st->decaps++;
    }
    if (fl & SD_VS_SET_DSCP) {
        *meta = (*meta & (SD_VS_META_VNI | SD_VS_META_ENCAP)) | SD_VS_META_DSCP_SET | a->dscp << SD_VS_META_DSCP_SHIFT;
        st->dscp_sets++;
    }
    if (fl & SD_VS_METER && !meter_pass(&v->meters[a->meter], sim->now, pk->wire)) {
        drop(sim, p, &st->meter_drops);
        return;
    }
    if (fl & SD_VS_COUNT)
        st->counters[a->counter]++;
    uint32_t tenant = *meta & SD_VS_META_VNI;
    if (fl & SD_VS_ENCAP) {
        if (a->vni != tenant) {          /* only into the packet's own tenant's tunnel */
            if (in_port >= SD_VS_VF0)
                sim->vsw.vfs[v->vf_ids[in_port - SD_VS_VF0]].isolation_drops++;
            drop(sim, p, &st->isolation_drops);
            return;
        }
        if (!(*meta & SD_VS_META_ENCAP)) {
            *meta |= SD_VS_META_ENCAP;
            pk->wire = (uint16_t)(pk->wire + SD_VXLAN_OVERHEAD);
        }
        if (a->tun_dst != SD_NONE)       /* the remote DPU's address (its first port's; = the host by default) */
            pk->dst = sim->port_addr[sim->hosts[a->tun_dst].port];
        st->encaps++;
    }
    uint32_t out = a->out_port;
    if (out == SD_VS_UPLINK) {
        if (tenant != 0 && !(*meta & SD_VS_META_ENCAP)) {
            drop(sim, p, &st->isolation_drops);  /* tenant traffic leaves only inside its tunnel */
            return;
        }
        st->to_uplink++;
        port_enqueue(sim, host_tx_port(sim, host, pk), p);
        return;
    }
    /* to a function of this DPU: the PF (tenant 0) or VF n */
    uint32_t vf = out == SD_VS_PF ? SD_NONE : v->vf_ids[out - SD_VS_VF0];
    uint32_t fn_tenant = vf == SD_NONE ? 0u : sim->vsw.vfs[vf].vni;
    if (fn_tenant != tenant) {
        if (vf != SD_NONE)
            sim->vsw.vfs[vf].isolation_drops++;
        drop(sim, p, &st->isolation_drops);
        return;
    }
    if (*meta & SD_VS_META_ENCAP) {
        drop(sim, p, &st->action_drops);     /* a function cannot take a tunnelled frame */
        return;
    }
    if (sim->qps[pk->dqp].host != host || qp_function(sim, pk->dqp) != vf) {
        drop(sim, p, &st->no_qp_drops);
        return;
    }
    if (vf != SD_NONE) {
        sim->vsw.vfs[vf].rx_packets++;
        sim->vsw.vfs[vf].rx_bytes += pk->wire;
    }
    st->to_functions++;
    st->copy_bytes += pk->wire;
    nic_receive(sim, host, p);
}

static void upcall(sd_sim *sim, uint32_t host, uint32_t p, uint32_t in_port, const uint32_t *key)
{
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_stats *st = &sim->vsw.stats[host];
    if (v->free_slot == SD_NONE || sim->vsw.upq_len == sim->vsw.upq_cap) {
        drop(sim, p, &st->lost);         /* OVS: the upcall cannot be queued, PMD_STAT_LOST */
        return;
    }
    uint32_t s = v->free_slot;
    sd_vs_slot *sl = &v->slots[s];
    v->free_slot = sl->next_free;
    sl->pkt = p;
    sl->in_port = in_port;
    sl->act.flags = 0;
    sd_vs_upcall *u = &sim->vsw.upq[(sim->vsw.upq_head + sim->vsw.upq_len) % sim->vsw.upq_cap];
    sim->vsw.upq_len++;
    u->t_ps = sim->now;
    memcpy(u->key, key, KW * sizeof *key);
    u->dpu = host;
    u->slot = s;
    u->wire = sim->pkts[p].wire;
    if (sim->pkts[p].prio == SD_PRIO_DATA)
        sim->vsw.parked_data++;
    st->miss++;
    if (++st->upcall_depth > st->upcall_peak)
        st->upcall_peak = st->upcall_depth;
}

/* A packet enters the vSwitch through in_port: classify, then act or upcall. */
static void vs_input(sd_sim *sim, uint32_t host, uint32_t p, uint32_t in_port)
{
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_stats *st = &sim->vsw.stats[host];
    sd_packet *pk = &sim->pkts[p];
    st->rx++;
    st->rx_bytes += pk->wire;
    uint32_t key[KW];
    make_key(sim, pk, sim->vsw.meta[p], in_port, key);
    uint32_t f = lookup(v, st, key, sim->now);
    if (f == SD_NONE) {
        upcall(sim, host, p, in_port, key);
        return;
    }
    sd_vs_flow *fl = &v->flows[f];
    fl->packets++;
    fl->bytes += pk->wire;
    fl->used_ps = sim->now;
    execute(sim, host, p, in_port, &fl->act);
}

void dpu_transmit(sd_sim *sim, uint32_t host, uint32_t p)
{
    if (!vs_on(sim, host)) {
        if (sim->vsw.meta)
            sim->vsw.meta[p] = 0;
        port_enqueue(sim, host_tx_port(sim, host, &sim->pkts[p]), p);
        return;
    }
    sd_packet *pk = &sim->pkts[p];
    uint32_t sq = sim->qps[pk->dqp].peer_qp;    /* the local QP that sent it */
    uint32_t vf = qp_function(sim, sq);
    uint32_t in_port = vf == SD_NONE ? SD_VS_PF : SD_VS_VF0 + sim->vsw.vfs[vf].index;
    sim->vsw.meta[p] = vf == SD_NONE ? 0u : sim->vsw.vfs[vf].vni;
    if (vf != SD_NONE)
        sim->vsw.vfs[vf].tx_packets++;
    sim->vsw.stats[host].copy_bytes += pk->wire;
    int data = pk->prio == SD_PRIO_DATA;
    uint64_t before = sim->vsw.stats[host].to_uplink;
    vs_input(sim, host, p, in_port);
    if (data && sim->vsw.stats[host].to_uplink == before) {
        /* the packet did not reach the port (upcalled or dropped): the port stays idle, so let
         * the transmit scheduler run again now rather than wait for the next ACK */
        uint32_t port = sim->qps[sq].port;
        sd_nic *h = &sim->nics[port];
        if (h->wake_queued != sim->now) {
            h->wake_queued = sim->now;
            ev_push(sim, sim->now, EV_NIC_WAKE, port, SD_NONE);
        }
    }
}

void dpu_receive(sd_sim *sim, uint32_t host, uint32_t p)
{
    if (!vs_on(sim, host)) {
        nic_receive(sim, host, p);
        return;
    }
    if (!(sim->vsw.meta[p] & SD_VS_META_ENCAP))
        sim->vsw.meta[p] &= ~(uint32_t)SD_VS_META_VNI;   /* untunnelled: no tenant */
    vs_input(sim, host, p, SD_VS_UPLINK);
}

void vs_exec_event(sd_sim *sim, uint32_t host, uint32_t slot)
{
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_slot *sl = &v->slots[slot];
    uint32_t p = sl->pkt, in_port = sl->in_port;
    sd_vs_action act = sl->act;
    act.flags &= ~0x80000000u;
    sl->pkt = SD_NONE;
    sl->next_free = v->free_slot;
    v->free_slot = slot;
    sim->vsw.stats[host].upcall_depth--;
    sim->vsw.stats[host].executed++;
    int data = sim->pkts[p].prio == SD_PRIO_DATA;
    if (data)
        sim->vsw.parked_data--;
    execute(sim, host, p, in_port, &act);
    if (data && in_port != SD_VS_UPLINK)
        nic_pull(sim, host);
}

/* ---------------------------------------------------------------- setup and slow-path calls */
static int check_host(sd_sim *sim, uint32_t host, const char *what)
{
    if (host >= sim->num_nodes || !node_is_host(sim, host))
        return sd_fail(sim, SD_EINVAL, "%s: dpu %u is not a host (hosts are 0..%u)", what, host, sim->cfg.num_hosts - 1);
    if (!vs_on(sim, host))
        return sd_fail(sim, SD_ESTATE, "%s: dpu %u has no vSwitch (sd_vs_enable first)", what, host);
    return SD_OK;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* Setup allocations, with the test hook of sd_vs_debug_fail_alloc. */
static int vs_alloc_fails(sd_sim *sim)
{
    return sim->vsw.fail_alloc && --sim->vsw.fail_alloc == 0;
}

static void *vs_calloc(sd_sim *sim, size_t n, size_t size)
{
    return vs_alloc_fails(sim) ? NULL : calloc(n, size);
}

static void *vs_realloc(sd_sim *sim, void *p, size_t size)
{
    return vs_alloc_fails(sim) ? NULL : realloc(p, size);
}

int sd_vs_debug_fail_alloc(sd_sim *sim, uint32_t nth)
{
    sim->vsw.fail_alloc = nth;
    return SD_OK;
}

int sd_vs_enable(sd_sim *sim, uint32_t host, uint32_t max_flows, uint32_t emc_entries, uint32_t emc_insert_inv_prob,
                 uint32_t upcall_queue, uint32_t max_meters, int64_t rerank_interval_ps)
{
    if (host >= sim->num_nodes || !node_is_host(sim, host))
        return sd_fail(sim, SD_EINVAL, "vswitch: dpu %u is not a host (hosts are 0..%u)", host, sim->cfg.num_hosts - 1);
    if (sim->cfg.ipv6)
        return sd_fail(sim, SD_EINVAL, "vswitch: VXLAN tunnels are modelled over IPv4 only (ipv6 is set)");
    if (max_flows == 0 || max_flows > (1u << 24))
        return sd_fail(sim, SD_EINVAL, "vswitch: max_flows must be in [1, 2^24], got %u", max_flows);
    if (emc_entries > (1u << 20) || (emc_entries & (emc_entries - 1)))
        return sd_fail(sim, SD_EINVAL, "vswitch: emc_entries must be 0 or a power of two <= 2^20, got %u", emc_entries);
    if (emc_insert_inv_prob == 0)
        return sd_fail(sim, SD_EINVAL, "vswitch: emc_insert_inv_prob must be >= 1 (1 = always insert)");
    if (upcall_queue == 0 || upcall_queue > (1u << 20))
        return sd_fail(sim, SD_EINVAL, "vswitch: upcall_queue must be in [1, 2^20], got %u", upcall_queue);
    if (max_meters > (1u << 18))
        return sd_fail(sim, SD_EINVAL, "vswitch: max_meters must be <= 2^18 (OVS MAX_METERS), got %u", max_meters);
    if (rerank_interval_ps <= 0)
        return sd_fail(sim, SD_EINVAL, "vswitch: rerank_interval_ps must be > 0");
    if (!sim->vsw.dpu) {
        /* all three or none: vs_on() and the data path take one for the others */
        sd_vswitch *vs = vs_calloc(sim, sim->cfg.num_hosts, sizeof *vs);
        sd_vs_stats *stats = vs_calloc(sim, sim->cfg.num_hosts, sizeof *stats);
        uint32_t *meta = vs_calloc(sim, sim->cfg.pkt_pool, sizeof *meta);
        if (!vs || !stats || !meta) {
            free(vs);
            free(stats);
            free(meta);
            return sd_fail(sim, SD_ENOMEM, "vswitch: out of memory");
        }
        sim->vsw.dpu = vs;
        sim->vsw.stats = stats;
        sim->vsw.meta = meta;
    }
    sd_vswitch *v = &sim->vsw.dpu[host];
    if (v->enabled)
        return sd_fail(sim, SD_ESTATE, "vswitch: dpu %u already has a vSwitch", host);
    /* allocate into locals and commit only once everything is there: a failure leaves the DPU
     * without a vSwitch and every pointer of the simulator as it was */
    uint32_t cap = max_flows < VS_INIT_FLOWS ? max_flows : VS_INIT_FLOWS;
    uint32_t nbuckets = pow2_at_least(4 * cap);   /* load <= 1/4: a probe that misses rarely touches a flow */
    sd_vs_flow *flows = vs_calloc(sim, cap, sizeof *flows);
    uint32_t *buckets = vs_calloc(sim, nbuckets, sizeof *buckets);
    sd_vs_emc_entry *emc = emc_entries ? vs_calloc(sim, emc_entries, sizeof *emc) : NULL;
    sd_vs_slot *slots = vs_calloc(sim, upcall_queue, sizeof *slots);
    sd_vs_meter *meters = max_meters ? vs_calloc(sim, max_meters, sizeof *meters) : NULL;
    /* the drain ring grows by this DPU's queue, last: realloc frees the old ring when it moves it,
     * so nothing may fail after it */
    sd_vs_upcall *q = NULL;
    int ok = flows && buckets && (!emc_entries || emc) && slots && (!max_meters || meters);
    if (ok)
        ok = (q = vs_realloc(sim, sim->vsw.upq, ((size_t)sim->vsw.upq_cap + upcall_queue) * sizeof *q)) != NULL;
    if (!ok) {
        free(flows);
        free(buckets);
        free(emc);
        free(slots);
        free(meters);
        return sd_fail(sim, SD_ENOMEM, "vswitch: out of memory");
    }
    /* keep the queued records in order */
    if (sim->vsw.upq_len && sim->vsw.upq_head + sim->vsw.upq_len > sim->vsw.upq_cap) {
        uint32_t wrap = sim->vsw.upq_head + sim->vsw.upq_len - sim->vsw.upq_cap;
        memcpy(q + sim->vsw.upq_cap, q, (size_t)wrap * sizeof *q);
    }
    sim->vsw.upq = q;
    sim->vsw.upq_cap += upcall_queue;
    v->flows = flows;
    v->buckets = buckets;
    v->nbuckets = nbuckets;
    v->emc = emc;
    v->slots = slots;
    v->meters = meters;
    v->max_flows = max_flows;
    v->flow_cap = cap;
    v->free_flow = SD_NONE;
    for (uint32_t b = 0; b < v->nbuckets; b++)
        v->buckets[b] = SD_NONE;
    for (uint32_t e = 0; e < emc_entries; e++)
        v->emc[e].flow = SD_NONE;
    v->emc_entries = emc_entries;
    v->emc_inv_prob = emc_insert_inv_prob;
    v->rng = rng_next(&(uint64_t){sim->cfg.seed ^ (0x7653000000ull + host)});
    v->nslots = upcall_queue;
    for (uint32_t s = 0; s < upcall_queue; s++) {
        v->slots[s].pkt = SD_NONE;
        v->slots[s].next_free = s + 1 < upcall_queue ? s + 1 : SD_NONE;
    }
    v->free_slot = 0;
    v->nmeters = max_meters;
    v->rerank_interval_ps = rerank_interval_ps;
    v->next_rerank_ps = rerank_interval_ps;
    v->enabled = 1;
    return SD_OK;
}

void vs_free(sd_sim *sim)
{
    if (sim->vsw.dpu) {
        for (uint32_t h = 0; h < sim->cfg.num_hosts; h++) {
            sd_vswitch *v = &sim->vsw.dpu[h];
            free(v->flows);
            free(v->buckets);
            free(v->emc);
            free(v->slots);
            free(v->meters);
            free(v->vf_ids);
        }
    }
    free(sim->vsw.dpu);
    free(sim->vsw.stats);
    free(sim->vsw.meta);
    free(sim->vsw.vfs);
    free(sim->vsw.qp_fn);
    free(sim->vsw.upq);
}

uint64_t vs_memory_bytes(const sd_sim *sim)
{
    if (!sim->vsw.dpu)
        return 0;
    uint64_t b = (uint64_t)sim->cfg.num_hosts * (sizeof *sim->vsw.dpu + sizeof *sim->vsw.stats) +
                 (uint64_t)sim->cfg.pkt_pool * sizeof *sim->vsw.meta + (uint64_t)sim->vsw.vf_cap * sizeof *sim->vsw.vfs +
                 (uint64_t)sim->vsw.qp_fn_cap * sizeof *sim->vsw.qp_fn + (uint64_t)sim->vsw.upq_cap * sizeof *sim->vsw.upq;
    for (uint32_t h = 0; h < sim->cfg.num_hosts; h++) {
        const sd_vswitch *v = &sim->vsw.dpu[h];
        b += (uint64_t)v->flow_cap * sizeof *v->flows + (uint64_t)v->nbuckets * sizeof *v->buckets +
             (uint64_t)v->emc_entries * sizeof *v->emc + (uint64_t)v->nslots * sizeof *v->slots +
             (uint64_t)v->nmeters * sizeof *v->meters + (uint64_t)v->vf_cap * sizeof *v->vf_ids;
    }
    return b;
}

int sd_vs_add_vf(sd_sim *sim, uint32_t host, uint32_t vni, uint32_t ip)
{
    int rc = check_host(sim, host, "vf");
    if (rc)
        return rc;
    if (vni == 0 || vni > SD_VS_MAX_VNI)
        return sd_fail(sim, SD_EINVAL, "vf: vni must be in [1, 2^24-1] (0 is the PF's), got %u", vni);
    sd_vswitch *v = &sim->vsw.dpu[host];
    if (v->nvf >= 1024)
        return sd_fail(sim, SD_EINVAL, "vf: dpu %u already has 1024 VFs", host);
    if (!grow_array((void **)&sim->vsw.vfs, &sim->vsw.vf_cap, sizeof *sim->vsw.vfs, sim->vsw.nvfs + 1) ||
        !grow_array((void **)&v->vf_ids, &v->vf_cap, sizeof *v->vf_ids, v->nvf + 1))
        return sd_fail(sim, SD_ENOMEM, "vf: out of memory");
    uint32_t id = sim->vsw.nvfs++;
    sim->vsw.vfs[id] = (sd_vs_vf){host, v->nvf, vni, ip, 0, 0, 0, 0};
    v->vf_ids[v->nvf++] = id;
    return (int)id;
}

int sd_vs_set_qp_function(sd_sim *sim, uint32_t qp, uint32_t vf)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp function: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    if (vf != SD_NONE) {
        if (vf >= sim->vsw.nvfs)
            return sd_fail(sim, SD_EINVAL, "qp function: unknown VF %u (%u VFs)", vf, sim->vsw.nvfs);
        if (sim->vsw.vfs[vf].host != sim->qps[qp].host)
            return sd_fail(sim, SD_EINVAL, "qp function: VF %u is on dpu %u, QP %u on host %u", vf, sim->vsw.vfs[vf].host,
                           qp, sim->qps[qp].host);
    }
    if (qp >= sim->vsw.qp_fn_cap) {
        uint32_t n = sim->vsw.qp_fn_cap ? sim->vsw.qp_fn_cap : 64;
        while (n <= qp)
            n *= 2;
        uint32_t *a = realloc(sim->vsw.qp_fn, (size_t)n * sizeof *a);
        if (!a)
            return sd_fail(sim, SD_ENOMEM, "qp function: out of memory");
        for (uint32_t i = sim->vsw.qp_fn_cap; i < n; i++)
            a[i] = SD_NONE;
        sim->vsw.qp_fn = a;
        sim->vsw.qp_fn_cap = n;
    }
    sim->vsw.qp_fn[qp] = vf;
    return SD_OK;
}

int sd_vs_set_meter(sd_sim *sim, uint32_t host, uint32_t meter, uint64_t rate_bps, uint64_t burst_bytes)
{
    int rc = check_host(sim, host, "meter");
    if (rc)
        return rc;
    sd_vswitch *v = &sim->vsw.dpu[host];
    if (meter >= v->nmeters)
        return sd_fail(sim, SD_EINVAL, "meter: index %u out of range (dpu %u has %u meters)", meter, host, v->nmeters);
    if (rate_bps == 0 || burst_bytes == 0)
        return sd_fail(sim, SD_EINVAL, "meter: rate_bps and burst_bytes must be > 0");
    v->meters[meter] = (sd_vs_meter){(double)rate_bps, (double)burst_bytes, (double)burst_bytes, sim->now};
    return SD_OK;
}

static int check_action(sd_sim *sim, const sd_vswitch *v, const sd_vs_action *a)
{
    const uint32_t known = SD_VS_OUTPUT | SD_VS_ENCAP | SD_VS_DECAP | SD_VS_SET_DSCP | SD_VS_METER | SD_VS_COUNT | SD_VS_DROP;
    if (a->flags & ~known)
        return sd_fail(sim, SD_EINVAL, "action: unknown flag bits 0x%x", a->flags & ~known);
    if (a->flags & SD_VS_OUTPUT && a->out_port >= SD_VS_VF0 + v->nvf)
        return sd_fail(sim, SD_EINVAL, "action: output to unknown port %u (uplink 0, PF 1, VFs 2..%u)", a->out_port,
                       SD_VS_VF0 + v->nvf - 1);
    if (a->flags & SD_VS_ENCAP && (a->vni == 0 || a->vni > SD_VS_MAX_VNI))
        return sd_fail(sim, SD_EINVAL, "action: encap vni must be in [1, 2^24-1], got %u", a->vni);
    if (a->flags & SD_VS_ENCAP && a->tun_dst != SD_NONE) {
        /* a tunnel ends at a VTEP: a DPU with a vSwitch that has a function of the tunnel's tenant
         * (a NIC without one would take the frame for its own and never decapsulate it) */
        if (a->tun_dst >= sim->num_nodes || !node_is_host(sim, a->tun_dst))
            return sd_fail(sim, SD_EINVAL, "action: tunnel destination %u is not a DPU", a->tun_dst);
        if (!vs_on(sim, a->tun_dst))
            return sd_fail(sim, SD_EINVAL, "action: tunnel destination %u has no vSwitch (no VTEP to end the tunnel)",
                           a->tun_dst);
        const sd_vswitch *d = &sim->vsw.dpu[a->tun_dst];
        uint32_t i = 0;
        while (i < d->nvf && sim->vsw.vfs[d->vf_ids[i]].vni != a->vni)
            i++;
        if (i == d->nvf)
            return sd_fail(sim, SD_EINVAL, "action: tunnel destination %u has no function of tenant (VNI) %u",
                           a->tun_dst, a->vni);
    }
    if (a->flags & SD_VS_SET_DSCP && a->dscp > 63)
        return sd_fail(sim, SD_EINVAL, "action: dscp must be in [0, 63], got %u", a->dscp);
    if (a->flags & SD_VS_METER && a->meter >= v->nmeters)
        return sd_fail(sim, SD_EINVAL, "action: meter %u out of range (%u meters)", a->meter, v->nmeters);
    if (a->flags & SD_VS_COUNT && a->counter >= SD_VS_COUNTERS)
        return sd_fail(sim, SD_EINVAL, "action: counter %u out of range (%u counters)", a->counter, SD_VS_COUNTERS);
    return SD_OK;
}

static int grow_flows(sd_vswitch *v)
{
    uint32_t n = v->flow_cap * 2 < v->max_flows ? v->flow_cap * 2 : v->max_flows;
    sd_vs_flow *f = realloc(v->flows, (size_t)n * sizeof *f);
    if (!f)
        return 0;
    memset(f + v->flow_cap, 0, (size_t)(n - v->flow_cap) * sizeof *f);
    v->flows = f;
    v->flow_cap = n;
    uint32_t nb = pow2_at_least(4 * n);
    if (nb != v->nbuckets) {
        uint32_t *b = malloc((size_t)nb * sizeof *b);
        if (!b)
            return 0;
        for (uint32_t i = 0; i < nb; i++)
            b[i] = SD_NONE;
        for (uint32_t i = 0; i < v->flow_hwm; i++) {
            sd_vs_flow *fl = &v->flows[i];
            if (fl->subtable == SD_NONE)
                continue;
            uint32_t h = hash_sub(fl->key, &v->sub[fl->subtable], fl->subtable) & (nb - 1);
            fl->next = b[h];
            b[h] = i;
        }
        free(v->buckets);
        v->buckets = b;
        v->nbuckets = nb;
    }
    return 1;
}

int sd_vs_install(sd_sim *sim, uint32_t host, const uint32_t *value, const uint32_t *mask, int32_t priority,
                  const sd_vs_action *act, int64_t active_ps)
{
    int rc = check_host(sim, host, "flow");
    if (rc)
        return rc;
    sd_vswitch *v = &sim->vsw.dpu[host];
    if ((rc = check_action(sim, v, act)))
        return rc;
    if (mask[SD_VS_F_RESERVED] != 0)
        return sd_fail(sim, SD_EINVAL, "flow: key word %u is reserved (its mask must be 0)", SD_VS_F_RESERVED);
    if (mask[SD_VS_F_VNI] == 0xFFFFFFFFu && value[SD_VS_F_VNI] > SD_VS_MAX_VNI)
        return sd_fail(sim, SD_EINVAL, "flow: vni %u out of range (24 bits)", value[SD_VS_F_VNI]);
    if (mask[SD_VS_F_IN_PORT] == 0xFFFFFFFFu && value[SD_VS_F_IN_PORT] >= SD_VS_VF0 + v->nvf)
        return sd_fail(sim, SD_EINVAL, "flow: in_port %u does not exist on dpu %u", value[SD_VS_F_IN_PORT], host);
    if (active_ps < sim->now)
        return sd_fail(sim, SD_EINVAL, "flow: active_ps (%lld) is before now (%lld)", (long long)active_ps, (long long)sim->now);
    uint32_t mk[KW];
    for (int w = 0; w < KW; w++)
        mk[w] = value[w] & mask[w];
    /* the subtable of this mask */
    uint32_t s = SD_NONE, free_s = SD_NONE;
    for (uint32_t i = 0; i < SD_VS_MAX_SUBTABLES; i++) {
        if (v->sub[i].nflows == 0) {
            if (free_s == SD_NONE)
                free_s = i;
        } else if (memcmp(v->sub[i].mask, mask, sizeof mk) == 0) {
            s = i;
            break;
        }
    }
    if (s != SD_NONE) {
        uint32_t h = hash_sub(mk, &v->sub[s], s) & (v->nbuckets - 1);
        for (uint32_t f = v->buckets[h]; f != SD_NONE; f = v->flows[f].next)
            if (v->flows[f].subtable == s && v->flows[f].priority == priority && memcmp(v->flows[f].key, mk, sizeof mk) == 0)
                return sd_fail(sim, SD_EINVAL, "flow: the same match and priority is already installed (flow %u)", f);
    } else if (free_s == SD_NONE) {
        return sd_fail(sim, SD_ENOMEM, "flow: more than %u distinct masks on dpu %u", SD_VS_MAX_SUBTABLES, host);
    }
    if (sim->vsw.stats[host].flows >= v->max_flows)
        return sd_fail(sim, SD_ENOMEM, "flow: table full (max_flows %u on dpu %u)", v->max_flows, host);
    uint32_t f = v->free_flow;
    if (f != SD_NONE) {
        v->free_flow = v->flows[f].next;
    } else {
        if (v->flow_hwm == v->flow_cap && !grow_flows(v))
            return sd_fail(sim, SD_ENOMEM, "flow: out of memory");
        f = v->flow_hwm++;
    }
    if (s == SD_NONE) {
        s = free_s;
        memcpy(v->sub[s].mask, mask, sizeof mk);
        v->sub[s].nwords = 0;
        for (uint32_t w = 0; w < KW; w++)
            if (mask[w])
                v->sub[s].words[v->sub[s].nwords++] = (uint8_t)w;
        v->sub[s].max_prio = priority;
        v->sub[s].first_active_ps = active_ps;
        v->sub[s].hits = 0;
        v->order[v->nsub++] = s;
        sim->vsw.stats[host].subtables++;
    }
    sd_vs_subtable *st = &v->sub[s];
    st->nflows++;
    if (priority > st->max_prio)
        st->max_prio = priority;
    if (active_ps < st->first_active_ps)
        st->first_active_ps = active_ps;
    sd_vs_flow *fl = &v->flows[f];
    uint32_t gen = fl->gen;
    memset(fl, 0, sizeof *fl);
    memcpy(fl->key, mk, sizeof mk);
    memcpy(fl->mask, mask, sizeof mk);
    fl->active_ps = active_ps;
    fl->used_ps = -1;
    fl->act = *act;
    fl->priority = priority;
    fl->subtable = s;
    fl->gen = gen;
    uint32_t h = hash_sub(mk, st, s) & (v->nbuckets - 1);
    fl->next = v->buckets[h];
    v->buckets[h] = f;
    if (priority != 0)
        v->version++;                    /* may shadow keys the EMC holds */
    order_by_priority(v);
    sim->vsw.stats[host].installs++;
    sim->vsw.stats[host].flows++;
    return (int)f;
}

/* SD_OK if flow f is installed on the vSwitch of host (what: the caller, for the message). */
static int check_flow(sd_sim *sim, uint32_t host, uint32_t f, const char *what)
{
    int rc = check_host(sim, host, what);
    if (rc)
        return rc;
    const sd_vswitch *v = &sim->vsw.dpu[host];
    if (f >= v->flow_hwm || v->flows[f].subtable == SD_NONE)
        return sd_fail(sim, SD_EINVAL, "%s: flow %u is not installed on dpu %u", what, f, host);
    return SD_OK;
}

int sd_vs_delete(sd_sim *sim, uint32_t host, uint32_t f)
{
    int rc = check_flow(sim, host, f, "delete");
    if (rc)
        return rc;
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_flow *fl = &v->flows[f];
    uint32_t s = fl->subtable;
    uint32_t *pp = &v->buckets[hash_sub(fl->key, &v->sub[s], s) & (v->nbuckets - 1)];
    while (*pp != f)
        pp = &v->flows[*pp].next;
    *pp = fl->next;
    int32_t prio = fl->priority;
    fl->subtable = SD_NONE;
    fl->gen++;                           /* EMC entries pointing here go stale */
    fl->next = v->free_flow;
    v->free_flow = f;
    sd_vs_subtable *st = &v->sub[s];
    if (--st->nflows == 0) {
        uint32_t j = 0;
        for (uint32_t i = 0; i < v->nsub; i++)
            if (v->order[i] != s)
                v->order[j++] = v->order[i];
        v->nsub = j;
        memset(st, 0, sizeof *st);
        sim->vsw.stats[host].subtables--;
    } else if (prio == st->max_prio) {
        st->max_prio = INT32_MIN;
        for (uint32_t i = 0; i < v->flow_hwm; i++)
            if (v->flows[i].subtable == s && v->flows[i].priority > st->max_prio)
                st->max_prio = v->flows[i].priority;
    }
    order_by_priority(v);
    sim->vsw.stats[host].deletes++;
    sim->vsw.stats[host].flows--;
    return SD_OK;
}

int sd_vs_modify(sd_sim *sim, uint32_t host, uint32_t f, const sd_vs_action *act)
{
    int rc = check_flow(sim, host, f, "modify");
    if (rc)
        return rc;
    sd_vswitch *v = &sim->vsw.dpu[host];
    if ((rc = check_action(sim, v, act)))
        return rc;
    v->flows[f].act = *act;              /* the EMC points at the flow: it sees the new actions */
    return SD_OK;
}

int sd_vs_set_lookahead(sd_sim *sim, int64_t lookahead_ps)
{
    if (lookahead_ps < 0)
        return sd_fail(sim, SD_EINVAL, "upcall lookahead must be >= 0 ps, got %lld", (long long)lookahead_ps);
    sim->vsw.lookahead_ps = lookahead_ps;
    return SD_OK;
}

uint32_t sd_vs_drain_upcalls(sd_sim *sim, sd_vs_upcall *out, uint32_t max)
{
    uint32_t n = 0;
    while (n < max && sim->vsw.upq_len > 0) {
        out[n++] = sim->vsw.upq[sim->vsw.upq_head];
        sim->vsw.upq_head = (sim->vsw.upq_head + 1) % sim->vsw.upq_cap;
        sim->vsw.upq_len--;
    }
    return n;
}

int sd_vs_execute(sd_sim *sim, uint32_t host, uint32_t slot, const sd_vs_action *act, int64_t at_ps)
{
    int rc = check_host(sim, host, "execute");
    if (rc)
        return rc;
    sd_vswitch *v = &sim->vsw.dpu[host];
    if (slot >= v->nslots || v->slots[slot].pkt == SD_NONE || v->slots[slot].act.flags & 0x80000000u)
        return sd_fail(sim, SD_EINVAL, "execute: upcall slot %u of dpu %u holds no waiting packet", slot, host);
    if ((rc = check_action(sim, v, act)))
        return rc;
    if (at_ps < sim->now)
        return sd_fail(sim, SD_EINVAL, "execute: at_ps (%lld) is before now (%lld)", (long long)at_ps, (long long)sim->now);
    if (ev_push(sim, at_ps, EV_VS_EXEC, host, slot) != SD_OK)
        return sd_fail(sim, SD_ENOMEM, "execute: event queue out of memory");
    v->slots[slot].act = *act;
    v->slots[slot].act.flags |= 0x80000000u;     /* scheduled: a second execute is an error */
    return SD_OK;
}

int sd_vs_lookup(sd_sim *sim, uint32_t host, const uint32_t *key, uint32_t *flow_out, uint32_t *probes)
{
    int rc = check_host(sim, host, "lookup");
    if (rc)
        return rc;
    uint32_t s;
    *flow_out = classify(&sim->vsw.dpu[host], key, sim->now, probes, &s);
    return SD_OK;
}

double sd_vs_bench_lookup(sd_sim *sim, uint32_t host, const uint32_t *keys, uint32_t n, uint32_t reps)
{
    if (check_host(sim, host, "bench") || n == 0 || reps == 0)
        return -1.0;
    sd_vswitch *v = &sim->vsw.dpu[host];
    sd_vs_stats scratch = sim->vsw.stats[host];
    struct timespec a, b;
    uint64_t found = 0;
    timespec_get(&a, TIME_UTC);
    for (uint32_t r = 0; r < reps; r++)
        for (uint32_t i = 0; i < n; i++)
            found += lookup(v, &scratch, keys + (size_t)i * KW, sim->now) != SD_NONE;
    timespec_get(&b, TIME_UTC);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    return found == 0 ? -ns / ((double)n * reps) : ns / ((double)n * reps);
}

sd_vs_flow *sd_vs_flows(sd_sim *sim, uint32_t host, uint32_t *count)
{
    if (host >= sim->num_nodes || !node_is_host(sim, host) || !vs_on(sim, host)) {
        *count = 0;
        return NULL;
    }
    *count = sim->vsw.dpu[host].flow_hwm;
    return sim->vsw.dpu[host].flows;
}

sd_vs_vf *sd_vs_vfs(sd_sim *sim, uint32_t *count)
{
    *count = sim->vsw.nvfs;
    return sim->vsw.vfs;
}

sd_vs_stats *sd_vs_get_stats(sd_sim *sim, uint32_t *count)
{
    *count = sim->vsw.stats ? sim->cfg.num_hosts : 0;
    return sim->vsw.stats;
}

int sd_vs_packet_key(sd_sim *sim, uint32_t qp, uint32_t *key_out)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "packet key: qp %u does not exist", qp);
    sd_packet pk;
    memset(&pk, 0, sizeof pk);
    pk.dqp = sim->qps[qp].peer_qp;
    pk.sport = (uint16_t)sim->qps[qp].sport;
    pk.prio = SD_PRIO_DATA;
    pk.opcode = SD_OP_WRITE_ONLY;
    uint32_t vf = qp_function(sim, qp);
    uint32_t in_port = vf == SD_NONE ? SD_VS_PF : SD_VS_VF0 + sim->vsw.vfs[vf].index;
    make_key(sim, &pk, 0, in_port, key_out);
    return SD_OK;
}
