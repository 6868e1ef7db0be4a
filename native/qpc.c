/* qpc.c: the QP-context cache of a host NIC (the "many connections" effect).
 *
 * A NIC holds the contexts of its QPs in a bounded on-chip cache; everything else lives in host
 * memory and is fetched over PCIe when a QP is touched (Kalia et al., ATC'16 "Design guidelines
 * for high performance RDMA systems", and the QP-scalability literature). Here:
 *
 *   access   = the transmit scheduler picking a QP for a data packet (qpc_tx_access), or any
 *              packet arriving for a QP (qpc_rx_access: data, ACK/NAK, CNP);
 *   hit      = the context is cached: LRU moves it to the most-recent end, FIFO and random
 *              leave it;
 *   miss     = absent: a fetch starts now if fewer than max_outstanding are in flight, else the
 *              request waits in a FIFO; the fill (EV_QPC_FETCH, fetch_latency_ps after the start)
 *              inserts the context, evicting if full the least recently used (LRU), the
 *              oldest inserted (FIFO) or a uniformly random (seeded stream) cached context;
 *   pending  = a packet arrives while the QP's fetch is queued or in flight: it is merged into
 *              that fetch (an MSHR hit) and counted apart from hits and misses;
 *   waiting  = arriving packets wait on the QP (sd_packet.next links), are processed in arrival
 *              order at the fill, and the transmit scheduler skips the QP meanwhile without
 *              counting an access; the fill wakes the host's scheduler.
 *
 * Only cached QPs can be victims, and they never have packets waiting on them.
 * Timer expiries (RTO, CC timers) and posting are not accesses: the model charges the fetch to
 * the next packet the QP sends or receives. Nothing here allocates while the simulator runs:
 * the per-QP state grows with the QP table at setup (qpc_reserve). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---------------------------------------------------------------- setup */
int qpc_reserve(sd_sim *sim, uint32_t num_qps)
{
    if (!sim->qpc.hosts || num_qps <= sim->qpc.qps_cap)
        return SD_OK;
    uint32_t cap = sim->qpc.qps_cap ? sim->qpc.qps_cap : 64;
    while (cap < num_qps)
        cap = cap > UINT32_MAX / 2 ? num_qps : cap * 2;
    if (cap < sim->cfg.max_qps)
        cap = sim->cfg.max_qps;
    sd_qpc_qp *n = realloc(sim->qpc.qps, (size_t)cap * sizeof *n);
    if (!n)
        return sd_fail(sim, SD_ENOMEM, "qpc: out of memory for per-QP cache state");
    for (uint32_t i = sim->qpc.qps_cap; i < cap; i++) {
        n[i] = (sd_qpc_qp){SD_NONE, SD_NONE, SD_NONE, SD_NONE, QPC_ABSENT, 0, -1};
    }
    sim->qpc.qps = n;
    sim->qpc.qps_cap = cap;
    return SD_OK;
}

void qpc_free(sd_sim *sim)
{
    if (sim->qpc.members)
        for (uint32_t h = 0; h < sim->cfg.num_hosts; h++)
            free(sim->qpc.members[h]);
    free(sim->qpc.members);
    free(sim->qpc.hosts);
    free(sim->qpc.qps);
    free(sim->qpc.trace);
}

uint64_t qpc_memory_bytes(const sd_sim *sim)
{
    uint64_t members = 0;
    for (uint32_t h = 0; sim->qpc.members && h < sim->cfg.num_hosts; h++)
        members += sim->qpc.members[h] ? (uint64_t)sim->qpc.hosts[h].entries * sizeof(uint32_t) : 0;
    return members + (sim->qpc.hosts ? (uint64_t)sim->cfg.num_hosts * (sizeof *sim->qpc.hosts + sizeof(uint32_t *)) : 0) +
           (uint64_t)sim->qpc.qps_cap * sizeof *sim->qpc.qps + (uint64_t)sim->qpc.trace_cap * sizeof *sim->qpc.trace;
}

int sd_set_qpc(sd_sim *sim, uint32_t host, uint32_t entries, int64_t fetch_latency_ps, uint32_t max_outstanding,
               uint32_t policy)
{
    if (host >= sim->num_nodes || !node_is_host(sim, host))
        return sd_fail(sim, SD_EINVAL, "qpc: host %u is not a host (hosts are 0..%u)", host, sim->cfg.num_hosts - 1);
    if (fetch_latency_ps < 0)
        return sd_fail(sim, SD_EINVAL, "qpc: fetch_latency_ps must be >= 0, got %lld", (long long)fetch_latency_ps);
    if (entries > 0 && max_outstanding < 1)
        return sd_fail(sim, SD_EINVAL, "qpc: max_outstanding must be >= 1 when the cache is enabled, got %u",
                       max_outstanding);
    if (policy > SD_QPC_RANDOM)
        return sd_fail(sim, SD_EINVAL, "qpc: policy must be 0 (lru), 1 (fifo) or 2 (random), got %u", policy);
    if (!sim->qpc.hosts) {
        if (entries == 0)
            return SD_OK;                /* nothing to disable */
        sim->qpc.hosts = calloc(sim->cfg.num_hosts, sizeof *sim->qpc.hosts);
        sim->qpc.members = calloc(sim->cfg.num_hosts, sizeof *sim->qpc.members);
        if (!sim->qpc.hosts || !sim->qpc.members) {
            free(sim->qpc.hosts);
            free(sim->qpc.members);
            sim->qpc.hosts = NULL;
            sim->qpc.members = NULL;
            return sd_fail(sim, SD_ENOMEM, "qpc: out of memory");
        }
        for (uint32_t h = 0; h < sim->cfg.num_hosts; h++)
            sim->qpc.hosts[h].head = sim->qpc.hosts[h].tail = sim->qpc.hosts[h].fq_head = sim->qpc.hosts[h].fq_tail = SD_NONE;
        int rc = qpc_reserve(sim, sim->num_qps > sim->cfg.max_qps ? sim->num_qps : sim->cfg.max_qps);
        if (rc != SD_OK) {
            free(sim->qpc.hosts);
            free(sim->qpc.members);
            sim->qpc.hosts = NULL;
            sim->qpc.members = NULL;
            return rc;
        }
    }
    sd_qpc_host *c = &sim->qpc.hosts[host];
    if (c->used || c->outstanding || c->queued)
        return sd_fail(sim, SD_ESTATE, "qpc: host %u's cache is in use (%u cached, %u fetching, %u queued)", host,
                       c->used, c->outstanding, c->queued);
    free(sim->qpc.members[host]);
    sim->qpc.members[host] = NULL;
    if (policy == SD_QPC_RANDOM && entries > 0) {
        sim->qpc.members[host] = malloc((size_t)entries * sizeof(uint32_t));
        if (!sim->qpc.members[host])
            return sd_fail(sim, SD_ENOMEM, "qpc: out of memory for %u entries", entries);
    }
    uint64_t seed = sim->cfg.seed ^ ((0x5150430000ull + host) * 0xD1B54A32D192ED03ull);
    c->rng = rng_next(&seed);
    c->entries = entries;
    c->fetch_latency_ps = fetch_latency_ps;
    c->max_outstanding = max_outstanding;
    c->policy = policy;
    return SD_OK;
}

int sd_set_qpc_trace(sd_sim *sim, uint32_t capacity)
{
    sd_qpc_rec *t = NULL;
    if (capacity) {
        t = calloc(capacity, sizeof *t);
        if (!t)
            return sd_fail(sim, SD_ENOMEM, "qpc trace: out of memory for %u records", capacity);
    }
    free(sim->qpc.trace);
    sim->qpc.trace = t;
    sim->qpc.trace_cap = capacity;
    sim->qpc.trace_len = 0;
    sim->qpc.trace_dropped = 0;
    return SD_OK;
}

sd_qpc_host *sd_qpc_hosts(sd_sim *sim, uint32_t *count)
{
    *count = sim->qpc.hosts ? sim->cfg.num_hosts : 0;
    return sim->qpc.hosts;
}

sd_qpc_rec *sd_qpc_trace(sd_sim *sim, uint32_t *count, uint64_t *dropped)
{
    *count = sim->qpc.trace_len;
    *dropped = sim->qpc.trace_dropped;
    return sim->qpc.trace;
}

/* ---------------------------------------------------------------- mechanism */
static void record(sd_sim *sim, uint32_t host, uint32_t qp, uint32_t outcome, uint32_t access)
{
    if (sim->qpc.trace_len < sim->qpc.trace_cap)
        sim->qpc.trace[sim->qpc.trace_len++] = (sd_qpc_rec){sim->now, host, qp, outcome, access};
    else if (sim->qpc.trace_cap)
        sim->qpc.trace_dropped++;
}

static void list_unlink(sd_sim *sim, sd_qpc_host *c, uint32_t qp)
{
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    if (e->prev != SD_NONE)
        sim->qpc.qps[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != SD_NONE)
        sim->qpc.qps[e->next].prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = SD_NONE;
}

static void list_append(sd_sim *sim, sd_qpc_host *c, uint32_t qp)
{
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    e->prev = c->tail;
    e->next = SD_NONE;
    if (c->tail != SD_NONE)
        sim->qpc.qps[c->tail].next = qp;
    else
        c->head = qp;
    c->tail = qp;
}

/* Insert a filled context and, if full, evict one first (returns the victim or SD_NONE). */
/* A hit: LRU moves the QP to the most recent end; FIFO and random leave the order alone. */
static void hit(sd_sim *sim, sd_qpc_host *c, uint32_t host, uint32_t qp, uint32_t access)
{
    if (c->policy == SD_QPC_LRU && c->tail != qp) {
        list_unlink(sim, c, qp);
        list_append(sim, c, qp);
    }
    record(sim, host, qp, SD_QPC_HIT, access);
}

static uint32_t insert(sd_sim *sim, uint32_t host, uint32_t qp)
{
    sd_qpc_host *c = &sim->qpc.hosts[host];
    uint32_t victim = SD_NONE;
    if (c->policy == SD_QPC_RANDOM) {
        uint32_t *mem = sim->qpc.members[host];
        uint32_t slot = c->used;
        if (c->used >= c->entries) {
            slot = (uint32_t)(rng_next(&c->rng) % c->used);
            victim = mem[slot];
            c->used--;
        }
        mem[slot] = qp;
        sim->qpc.qps[qp].prev = slot;
    } else {
        if (c->used >= c->entries) {     /* the head: least recent (lru) or oldest (fifo) */
            victim = c->head;
            list_unlink(sim, c, victim);
            c->used--;
        }
        list_append(sim, c, qp);
    }
    c->used++;
    return victim;
}

static void start_fetch(sd_sim *sim, sd_qpc_host *c, uint32_t qp)
{
    sim->qpc.qps[qp].state = QPC_FETCHING;
    if (++c->outstanding > c->peak_outstanding)
        c->peak_outstanding = c->outstanding;
    ev_push(sim, sim->now + c->fetch_latency_ps, EV_QPC_FETCH, qp, SD_NONE);
}

/* A miss: fetch now if a slot is free, else queue the request. */
static void miss(sd_sim *sim, sd_qpc_host *c, uint32_t qp)
{
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    c->misses++;
    e->miss_ps = sim->now;
    if (c->outstanding < c->max_outstanding) {
        start_fetch(sim, c, qp);
        return;
    }
    e->state = QPC_QUEUED;
    e->next = SD_NONE;
    if (c->fq_tail != SD_NONE)
        sim->qpc.qps[c->fq_tail].next = qp;
    else
        c->fq_head = qp;
    c->fq_tail = qp;
    c->fetch_queued++;
    if (++c->queued > c->peak_queued)
        c->peak_queued = c->queued;
}

int qpc_tx_access(sd_sim *sim, uint32_t qp)
{
    uint32_t host = sim->qps[qp].host;
    sd_qpc_host *c = &sim->qpc.hosts[host];
    if (c->entries == 0)
        return 1;
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    if (e->state == QPC_CACHED) {
        c->hits++;
        c->tx_hits++;
        if (e->tx_missed) {
            c->tx_waited++;
            e->tx_missed = 0;
        }
        hit(sim, c, host, qp, SD_QPC_TX);
        return 1;
    }
    if (e->state == QPC_ABSENT) {
        c->tx_misses++;
        e->tx_missed = 1;
        record(sim, host, qp, SD_QPC_MISS, SD_QPC_TX);
        miss(sim, c, qp);
    }
    return 0;                            /* absent or on its way: the scheduler serves another QP */
}

int qpc_rx_access(sd_sim *sim, uint32_t qp, uint32_t p)
{
    uint32_t host = sim->qps[qp].host;
    sd_qpc_host *c = &sim->qpc.hosts[host];
    if (c->entries == 0)
        return 1;
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    if (e->state == QPC_CACHED) {
        c->hits++;
        hit(sim, c, host, qp, SD_QPC_RX);
        return 1;
    }
    if (e->state == QPC_ABSENT) {
        record(sim, host, qp, SD_QPC_MISS, SD_QPC_RX);
        miss(sim, c, qp);
    } else {
        c->pending++;
        record(sim, host, qp, SD_QPC_PENDING, SD_QPC_RX);
    }
    /* the packet waits on the QP, in arrival order */
    sd_packet *pk = &sim->pkts[p];
    pk->next = SD_NONE;
    if (e->wait_tail != SD_NONE)
        sim->pkts[e->wait_tail].next = p;
    else
        e->wait_head = p;
    e->wait_tail = p;
    c->pkts_parked++;
    if (pk->prio == SD_PRIO_DATA)
        sim->qpc.parked_data++;
    return 0;
}

void qpc_fetch_done(sd_sim *sim, uint32_t qp)
{
    uint32_t host = sim->qps[qp].host;
    sd_qpc_host *c = &sim->qpc.hosts[host];
    sd_qpc_qp *e = &sim->qpc.qps[qp];
    c->outstanding--;
    uint32_t v = insert(sim, host, qp);
    if (v != SD_NONE) {
        sim->qpc.qps[v].state = QPC_ABSENT;
        sim->qpc.qps[v].prev = sim->qpc.qps[v].next = SD_NONE;
        c->evictions++;
        record(sim, host, v, SD_QPC_EVICT, 0);
    }
    e->state = QPC_CACHED;
    c->fetches++;
    c->fetch_wait_ps += (uint64_t)(sim->now - e->miss_ps);
    record(sim, host, qp, SD_QPC_FILL, 0);
    /* the freed slot goes to the oldest queued request */
    if (c->fq_head != SD_NONE) {
        uint32_t nq = c->fq_head;
        c->fq_head = sim->qpc.qps[nq].next;
        if (c->fq_head == SD_NONE)
            c->fq_tail = SD_NONE;
        sim->qpc.qps[nq].next = SD_NONE;
        c->queued--;
        start_fetch(sim, c, nq);
    }
    /* the packets that waited, in arrival order (processing one never evicts this QP: only a
     * fill evicts, and fills are events of their own) */
    uint32_t p = e->wait_head;
    e->wait_head = e->wait_tail = SD_NONE;
    while (p != SD_NONE) {
        uint32_t nx = sim->pkts[p].next;
        if (sim->pkts[p].prio == SD_PRIO_DATA)
            sim->qpc.parked_data--;
        nic_process(sim, p);
        p = nx;
    }
    nic_pull(sim, host);
}
