/* sim.c: creating and configuring a simulator, the packet pool, and the event loop.
 * Every entry point validates what Python passes and reports a bad value by name through
 * sd_last_error(); nothing here trusts an index it did not check. */
#define _DEFAULT_SOURCE                  /* clock_gettime (the wall-clock budget), mmap MAP_ANONYMOUS (the packet pool) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sim.h"

_Static_assert(sizeof(sd_packet) == 64, "sd_packet should fill exactly one cache line");
_Static_assert(offsetof(sd_port, kmax) == 128, "a packet hop should touch the first two cache lines of sd_port");
_Static_assert(sizeof(sd_port) == 192, "sd_port should be three cache lines, 64-byte aligned");
_Static_assert(sizeof(sd_port_stats) == 256, "sd_port_stats should be four cache lines (its first one hot)");

static char create_err[256];

int sd_fail(sd_sim *sim, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sim ? sim->err : create_err, sizeof create_err, fmt, ap);
    va_end(ap);
    return code;
}

const char *sd_last_error(sd_sim *sim)
{
    return sim ? sim->err : create_err;
}

static uint64_t seed_mix(uint64_t seed, uint64_t stream)
{
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
    return rng_next(&s);
}

/* ---------------------------------------------------------------- packet pool */
/* Freed packets go on a LIFO free list; a packet never used before comes from the untouched end
 * of the pool (pkt_bump), so the pool's pages become resident only as deep as a run's peak of
 * packets in use reaches (the control plane sizes it for the worst case, 65,536 + 256 per flow:
 * 2.2 M packets, 132 MiB, at 8,192 hosts; a permutation at 1,024 hosts peaks at 48 % of its
 * pool, incasts far lower). The order packets are handed out is the
 * one of a free list initialised 0, 1, 2, ...: the freed ones, most recent first, then the next
 * untouched one. */
uint32_t pkt_alloc(sd_sim *sim)
{
    uint32_t p = sim->free_head;
    if (p != SD_NONE) {
        sim->free_head = sim->pkts[p].next;
    } else if (sim->pkt_bump < sim->cfg.pkt_pool) {
        p = sim->pkt_bump++;
    } else {
        sim->ctr.pool_exhausted++;
        return SD_NONE;
    }
    if (++sim->ctr.pkts_in_use > sim->ctr.pkts_peak)
        sim->ctr.pkts_peak = sim->ctr.pkts_in_use;
    return p;
}

void pkt_free(sd_sim *sim, uint32_t p)
{
    sim->pkts[p].next = sim->free_head;
    sim->free_head = p;
    sim->ctr.pkts_in_use--;
}

/* ---------------------------------------------------------------- create / destroy */
#define CHECK_CFG(cond, ...) \
    do { if (!(cond)) { sd_fail(NULL, SD_EINVAL, __VA_ARGS__); return NULL; } } while (0)

sd_sim *sd_create(const sd_config *cfg)
{
    CHECK_CFG(cfg != NULL, "config is NULL");
    CHECK_CFG(cfg->num_hosts >= 1, "num_hosts must be >= 1, got %u", cfg->num_hosts);
    CHECK_CFG((uint64_t)cfg->num_hosts + cfg->num_switches < SD_NONE / 4, "too many nodes");
    CHECK_CFG(cfg->max_links >= 1 && cfg->max_links < SD_NONE / 4, "max_links must be in [1, 2^30), got %u", cfg->max_links);
    CHECK_CFG(cfg->max_qps >= 2, "max_qps must be >= 2, got %u", cfg->max_qps);
    CHECK_CFG(cfg->max_msgs >= 1, "max_msgs must be >= 1, got %u", cfg->max_msgs);
    CHECK_CFG(cfg->pkt_pool >= 16 && cfg->pkt_pool < SD_NONE, "pkt_pool must be >= 16, got %u", cfg->pkt_pool);
    CHECK_CFG(cfg->mtu_payload >= 64 && cfg->mtu_payload <= 9000, "mtu_payload must be in [64, 9000] bytes (RoCE MTUs are 256..4096), got %u", cfg->mtu_payload);
    CHECK_CFG(cfg->ack_interval >= 1, "ack_interval must be >= 1, got %u", cfg->ack_interval);
    CHECK_CFG(cfg->cnp_mode <= SD_CNP_ACK_ECHO, "cnp_mode must be 0 (interval) or 1 (ack_echo), got %u", cfg->cnp_mode);
    CHECK_CFG(cfg->completion_ring >= 1, "completion_ring must be >= 1, got %u", cfg->completion_ring);
    CHECK_CFG(cfg->cnp_interval_ps >= 0, "cnp_interval_ps must be >= 0, got %lld", (long long)cfg->cnp_interval_ps);
    CHECK_CFG(cfg->rto_ps > 0, "rto_ps must be > 0, got %lld", (long long)cfg->rto_ps);
    CHECK_CFG(cfg->phy_overhead <= 64, "phy_overhead must be in [0, 64] bytes, got %u", cfg->phy_overhead);
    CHECK_CFG(cfg->ipv6 <= 1, "ipv6 must be 0 or 1, got %u", cfg->ipv6);
    CHECK_CFG(cfg->int_enabled <= 1 && (!cfg->int_enabled || (cfg->int_multi >= 1 && cfg->int_multi <= 64)),
              "int_enabled must be 0 or 1 and int_multi in [1, 64], got %u/%u", cfg->int_enabled, cfg->int_multi);
    CHECK_CFG(cfg->dscp_data <= 63 && cfg->dscp_ack <= 63 && cfg->dscp_cnp <= 63,
              "dscp_data/dscp_ack/dscp_cnp must be DSCP values in [0, 63], got %u/%u/%u",
              cfg->dscp_data, cfg->dscp_ack, cfg->dscp_cnp);
    CHECK_CFG(cfg->payload_pattern <= 1, "payload_pattern must be 0 (zeros) or 1 (address bytes), got %u",
              cfg->payload_pattern);

    sd_sim *sim = calloc(1, sizeof *sim);
    CHECK_CFG(sim != NULL, "out of memory");
    sim->cfg = *cfg;
    sim->num_nodes = cfg->num_hosts + cfg->num_switches;
    sim->last_ev_t = -1;
    for (uint32_t i = 0; i < SD_NUM_MODULES; i++) {
        if (SD_MODULES[i].init && SD_MODULES[i].init(sim) != SD_OK) {
            sd_destroy(sim);
            sd_fail(NULL, SD_ENOMEM, "out of memory allocating the simulator (%s)", SD_MODULES[i].name);
            return NULL;
        }
    }
    return sim;
}

void sd_destroy(sd_sim *sim)
{
    if (!sim)
        return;
    for (uint32_t i = SD_NUM_MODULES; i-- > 0;)
        if (SD_MODULES[i].free)
            SD_MODULES[i].free(sim);
    free(sim);
}

/* ---------------------------------------------------------------- the modules of the core
 * (the feature modules' functions are in their files; the table is at the end of this section) */
static int core_init(sd_sim *sim)
{
    const sd_config *cfg = &sim->cfg;
    sim->hosts = calloc(cfg->num_hosts, sizeof *sim->hosts);
    sim->nodes = calloc(sim->num_nodes, sizeof *sim->nodes);
    sim->switch_seed = calloc(cfg->num_switches ? cfg->num_switches : 1, sizeof *sim->switch_seed);
    sim->addr_host = calloc(cfg->num_hosts, sizeof *sim->addr_host);
    sim->port_addr = calloc(2 * (size_t)cfg->max_links + 1, sizeof *sim->port_addr);
    if (!sim->hosts || !sim->nodes || !sim->switch_seed || !sim->addr_host || !sim->port_addr)
        return SD_ENOMEM;
    for (uint32_t h = 0; h < cfg->num_hosts; h++) {
        sim->hosts[h].port = SD_NONE;
        sim->addr_host[h] = h;           /* the default addresses: one per host, all its ports */
    }
    sim->num_addrs = cfg->num_hosts;
    for (uint32_t n = 0; n < sim->num_nodes; n++) {   /* the default table: hosts first, then switches */
        sim->nodes[n].kind = n < cfg->num_hosts ? SD_NODE_HOST : SD_NODE_SWITCH;
        sim->nodes[n].index = n < cfg->num_hosts ? n : n - cfg->num_hosts;
    }
    for (uint32_t s = 0; s < cfg->num_switches; s++)
        sim->switch_seed[s] = seed_mix(cfg->seed, 0x5357000000ull + s);
    return SD_OK;
}

static void core_free(sd_sim *sim)
{
    free(sim->hosts);
    free(sim->nodes);
    free(sim->switch_seed);
    free(sim->addr_host);
    free(sim->port_addr);
    free(sim->fib);
    free(sim->addr_group);
    free(sim->fib_local_off);
    free(sim->fib_local_sw);
    free(sim->fib_local_set);
    free(sim->set_off);
    free(sim->set_ports);
    free(sim->loss);
    free(sim->ar_on);
}

static uint64_t core_memory_bytes(const sd_sim *sim)
{
    const sd_config *c = &sim->cfg;
    uint64_t b = sizeof *sim;
    b += (uint64_t)c->num_hosts * sizeof *sim->hosts;
    b += (uint64_t)sim->num_nodes * sizeof *sim->nodes;
    b += (uint64_t)(c->num_switches ? c->num_switches : 1) * sizeof *sim->switch_seed;
    b += (uint64_t)sim->num_addrs * sizeof *sim->addr_host + (2 * (uint64_t)c->max_links + 1) * sizeof *sim->port_addr;
    if (sim->fib) {
        uint64_t nl = sim->fib_local_off[sim->num_addrs];
        b += (uint64_t)c->num_switches * sim->fib_groups * sizeof *sim->fib;
        b += (2 * (uint64_t)sim->num_addrs + 1) * sizeof(uint32_t) + 2 * nl * sizeof(uint32_t);
    }
    b += sim->set_off ? ((uint64_t)sim->num_sets + 1) * sizeof *sim->set_off : 0;
    b += sim->set_off ? (uint64_t)sim->set_off[sim->num_sets] * sizeof *sim->set_ports : 0;
    b += sim->loss ? (uint64_t)2 * c->max_links * sizeof *sim->loss : 0;
    b += sim->ar_on ? (uint64_t)c->num_switches : 0;
    return b;
}

static int ports_init(sd_sim *sim)
{
    uint32_t nports = 2 * sim->cfg.max_links;
    sim->ports = aligned_alloc(64, (size_t)nports * sizeof *sim->ports);
    sim->port_stats = aligned_alloc(64, (size_t)nports * sizeof *sim->port_stats);
    sim->nics = calloc(nports, sizeof *sim->nics);   /* a host port's transmit scheduler (nic.c) */
    sim->node_ports = calloc(nports, sizeof *sim->node_ports);   /* the ports by node (sd_node) */
    if (!sim->ports || !sim->port_stats || !sim->nics || !sim->node_ports)
        return SD_ENOMEM;
    for (uint32_t p = 0; p < nports; p++) {
        sim->nics[p].ring = SD_NONE;
        sim->nics[p].wake_queued = -1;
    }
    memset(sim->ports, 0, (size_t)nports * sizeof *sim->ports);
    memset(sim->port_stats, 0, (size_t)nports * sizeof *sim->port_stats);
    for (uint32_t p = 0; p < nports; p++)
        sim->ports[p].st = &sim->port_stats[p];
    return SD_OK;
}

static void ports_free(sd_sim *sim)
{
    free(sim->ports);
    free(sim->port_stats);
    free(sim->nics);
    free(sim->node_ports);
}

static uint64_t ports_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)2 * sim->cfg.max_links * sd_sizeof_port();
}

static int packets_init(sd_sim *sim)
{
    /* anonymous pages: zero, page-aligned (a packet per cache line), and resident only once
     * touched (pkt_alloc hands them out in order) */
    size_t bytes = (size_t)sim->cfg.pkt_pool * sizeof *sim->pkts;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return SD_ENOMEM;
    sim->pkts = m;
    sim->free_head = SD_NONE;
    sim->pkt_bump = 0;
    return SD_OK;
}

static void packets_free(sd_sim *sim)
{
    if (sim->pkts)
        munmap(sim->pkts, (size_t)sim->cfg.pkt_pool * sizeof *sim->pkts);
}

static uint64_t packets_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)sim->cfg.pkt_pool * sizeof *sim->pkts;
}

static int events_init(sd_sim *sim)
{
    const sd_config *c = &sim->cfg;
    return ev_init(sim, 4 * c->max_links + c->num_hosts + 5 * c->max_qps + 64) ? SD_OK : SD_ENOMEM;
}

static void events_free(sd_sim *sim)
{
    ev_free(sim);
}

static int transport_init(sd_sim *sim)
{
    const sd_config *c = &sim->cfg;
    sim->qps = alloc_lines(c->max_qps, sizeof *sim->qps);
    sim->qp_stats = alloc_lines(c->max_qps, sizeof *sim->qp_stats);
    sim->msgs = calloc(c->max_msgs, sizeof *sim->msgs);
    sim->post_order = calloc(c->max_msgs, sizeof *sim->post_order);
    sim->cring = calloc(c->completion_ring, sizeof *sim->cring);
    sim->post_queued = -1;
    return sim->qps && sim->qp_stats && sim->msgs && sim->post_order && sim->cring ? SD_OK : SD_ENOMEM;
}

static void transport_free(sd_sim *sim)
{
    free(sim->qps);
    free(sim->qp_stats);
    free(sim->msgs);
    free(sim->post_order);
    free(sim->cring);
}

static uint64_t transport_memory_bytes(const sd_sim *sim)
{
    const sd_config *c = &sim->cfg;
    return (uint64_t)c->max_qps * (sizeof *sim->qps + sizeof *sim->qp_stats) +
           (uint64_t)c->max_msgs * (sizeof *sim->msgs + sizeof *sim->post_order) +
           (uint64_t)c->completion_ring * sizeof *sim->cring;
}

static int cc_init(sd_sim *sim)
{
    sim->cap_ccp = 16;
    sim->ccp = calloc(sim->cap_ccp, sizeof *sim->ccp);
    if (sim->cfg.trace_capacity)
        sim->trace = calloc(sim->cfg.trace_capacity, sizeof *sim->trace);
    return sim->ccp && (!sim->cfg.trace_capacity || sim->trace) ? SD_OK : SD_ENOMEM;
}

static void cc_free(sd_sim *sim)
{
    free(sim->ccp);
    free(sim->trace);
}

static uint64_t cc_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)sim->cap_ccp * sizeof *sim->ccp + (uint64_t)sim->cfg.trace_capacity * sizeof *sim->trace;
}

static void paths_free(sd_sim *sim)
{
    free(sim->paths.state);
    free(sim->paths.stats);
}

static uint64_t paths_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)sim->paths.cap * (sizeof *sim->paths.state + sizeof *sim->paths.stats);
}

/* The module table: init in this order, free in the reverse one. Adding a module: its part of
 * struct sd_sim (sim.h), its init/free/mem_bytes in its file, one line here. */
const sd_module SD_MODULES[] = {
    {"core", core_init, core_free, core_memory_bytes},            /* sd_sim, hosts, FIB, loss, AR */
    {"ports", ports_init, ports_free, ports_memory_bytes},        /* ports and their records */
    {"packets", packets_init, packets_free, packets_memory_bytes},
    {"events", events_init, events_free, ev_memory_bytes},
    {"transport", transport_init, transport_free, transport_memory_bytes},   /* QPs, records, messages */
    {"cc", cc_init, cc_free, cc_memory_bytes},                    /* parameter blocks, decision trace */
    {"paths", NULL, paths_free, paths_memory_bytes},              /* paths.c (lazy: sd_set_paths) */
    {"reorder", NULL, reorder_free, reorder_memory_bytes},        /* reorder.c (lazy: sd_set_transport) */
    {"reads", NULL, rd_free, rd_memory_bytes},                    /* nic.c READ responses (lazy: a READ posted) */
    {"pfc", pfc_init, pfc_free, pfc_memory_bytes},                /* pfc.c */
    {"int", int_init, int_free, int_memory_bytes},                /* int.c (cfg.int_enabled) */
    {"qdisc", qdisc_init, qdisc_free, qdisc_memory_bytes},        /* qdisc*.c (lazy: sd_set_qdisc) */
    {"vswitch", NULL, vs_free, vs_memory_bytes},                  /* vswitch.c (lazy: sd_vs_enable) */
    {"qpc", NULL, qpc_free, qpc_memory_bytes},                    /* qpc.c (lazy: sd_set_qpc) */
    {"capture", NULL, capture_free, capture_memory_bytes},        /* wire.c: closes open sessions */
};
const uint32_t SD_NUM_MODULES = sizeof SD_MODULES / sizeof SD_MODULES[0];

/* ---------------------------------------------------------------- fabric */
static const char *const node_kind_name[] = {"host", "switch"};

int sd_set_nodes(sd_sim *sim, const uint8_t *kinds, uint32_t n)
{
    if (n != sim->num_nodes)
        return sd_fail(sim, SD_EINVAL, "nodes: %u kinds given for %u nodes (%u hosts + %u switches)", n,
                       sim->num_nodes, sim->cfg.num_hosts, sim->cfg.num_switches);
    for (uint32_t i = 0; i < n; i++) {
        if (kinds[i] > SD_NODE_SWITCH)
            return sd_fail(sim, SD_EINVAL, "nodes: node %u has kind %u (0 host, 1 switch)", i, kinds[i]);
        uint8_t want = i < sim->cfg.num_hosts ? SD_NODE_HOST : SD_NODE_SWITCH;
        if (kinds[i] != want)
            return sd_fail(sim, SD_EINVAL, "nodes: node %u is a %s, but nodes 0..%u are the hosts and the switches "
                           "follow (it must be a %s)", i, node_kind_name[kinds[i]], sim->cfg.num_hosts - 1,
                           node_kind_name[want]);
    }
    for (uint32_t i = 0; i < n; i++)
        sim->nodes[i].kind = kinds[i];
    for (uint32_t p = 0; p < sim->num_ports; p++)
        sim->ports[p].at_host = node_is_host(sim, sim->ports[p].node);
    return SD_OK;
}

int sd_node_kind(sd_sim *sim, uint32_t node)
{
    return node < sim->num_nodes ? sim->nodes[node].kind : -1;
}

int sd_node_ports(sd_sim *sim, uint32_t node, uint32_t *ports_out, uint32_t max)
{
    if (node >= sim->num_nodes)
        return sd_fail(sim, SD_EINVAL, "node %u does not exist (%u nodes)", node, sim->num_nodes);
    const sd_node *nd = &sim->nodes[node];
    for (uint32_t i = 0; i < nd->num_ports && i < max; i++)
        ports_out[i] = sim->node_ports[nd->first_port + i];
    return (int)nd->num_ports;
}

/* Addresses: port_addr[p] is the address of host port p (SD_NONE at switch ports), 0 .. n-1. Each
 * address is a group of ports of one host, every host port has one, every address has a port. After
 * the links, before the fib and the QPs. See softdpu.h. */
int sd_set_addresses(sd_sim *sim, const uint32_t *port_addr, uint32_t num_ports, uint32_t num_addrs)
{
    if (num_ports != sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "addresses: %u port addresses given for %u ports", num_ports, sim->num_ports);
    if (sim->fib || sim->num_qps)
        return sd_fail(sim, SD_ESTATE, "addresses: declare them before the fib and the QPs");
    if (num_addrs == 0 || num_addrs > SD_NONE / 4)
        return sd_fail(sim, SD_EINVAL, "addresses: num_addrs must be in [1, %u], got %u", SD_NONE / 4, num_addrs);
    uint32_t *ah = malloc((size_t)num_addrs * sizeof *ah);
    if (!ah)
        return sd_fail(sim, SD_ENOMEM, "addresses: out of memory");
    for (uint32_t a = 0; a < num_addrs; a++)
        ah[a] = SD_NONE;
    for (uint32_t p = 0; p < num_ports; p++) {
        uint32_t node = sim->ports[p].node, a = port_addr[p];
        const char *why = NULL;
        if (!node_is_host(sim, node) && a != SD_NONE)
            why = "is a switch port (give it SD_NONE)";
        else if (node_is_host(sim, node) && a >= num_addrs)
            why = "is a host port without an address in [0, num_addrs)";
        else if (node_is_host(sim, node) && ah[a] != SD_NONE && ah[a] != node)
            why = "names an address of another host";
        if (why) {
            free(ah);
            return sd_fail(sim, SD_EINVAL, "addresses: port %u of node %u (address %u) %s", p, node, a, why);
        }
        if (node_is_host(sim, node))
            ah[a] = node;
    }
    for (uint32_t a = 0; a < num_addrs; a++)
        if (ah[a] == SD_NONE) {
            free(ah);
            return sd_fail(sim, SD_EINVAL, "addresses: address %u has no port", a);
        }
    free(sim->addr_host);
    sim->addr_host = ah;
    sim->num_addrs = num_addrs;
    memcpy(sim->port_addr, port_addr, (size_t)num_ports * sizeof *port_addr);
    sim->addrs_declared = 1;
    return SD_OK;
}

int sd_address_of_port(sd_sim *sim, uint32_t port)
{
    return port < sim->num_ports && sim->port_addr[port] != SD_NONE ? (int)sim->port_addr[port] : -1;
}

int sd_qp_address(sd_sim *sim, uint32_t qp, uint32_t *addr, uint32_t *peer_addr)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp_address: qp %u does not exist", qp);
    *addr = sim->qps[qp].addr;
    *peer_addr = sim->qps[qp].peer_addr;
    return SD_OK;
}

uint64_t sd_no_route_drops(sd_sim *sim)
{
    return sim->no_route;
}

/* Regroup the ports by node (counting sort, link order within a node): after links are added. */
static void node_ports_rebuild(sd_sim *sim)
{
    for (uint32_t n = 0; n < sim->num_nodes; n++)
        sim->nodes[n].num_ports = 0;
    for (uint32_t p = 0; p < sim->num_ports; p++)
        sim->nodes[sim->ports[p].node].num_ports++;
    uint32_t off = 0;
    for (uint32_t n = 0; n < sim->num_nodes; n++) {
        sim->nodes[n].first_port = off;
        off += sim->nodes[n].num_ports;
        sim->nodes[n].num_ports = 0;
    }
    for (uint32_t p = 0; p < sim->num_ports; p++) {
        sd_node *nd = &sim->nodes[sim->ports[p].node];
        sim->node_ports[nd->first_port + nd->num_ports++] = p;
    }
}

int sd_add_links(sd_sim *sim, const uint32_t *a, const uint32_t *b, const uint64_t *rate_bps,
                 const int64_t *delay_ps, uint32_t n)
{
    if (sim->addrs_declared && n > 0)
        return sd_fail(sim, SD_ESTATE, "links: the addresses are declared (sd_set_addresses): add every link first");
    if (sim->num_ports / 2 + (uint64_t)n > sim->cfg.max_links)
        return sd_fail(sim, SD_ENOMEM, "max_links (%u) exceeded", sim->cfg.max_links);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t link = sim->num_ports / 2 + i;
        if (a[i] >= sim->num_nodes || b[i] >= sim->num_nodes)
            return sd_fail(sim, SD_EINVAL, "link %u: node %u or %u does not exist (%u nodes)", link, a[i], b[i], sim->num_nodes);
        if (a[i] == b[i])
            return sd_fail(sim, SD_EINVAL, "link %u: a link must join two different nodes (node %u)", link, a[i]);
        if (rate_bps[i] < SD_MIN_RATE_BPS || rate_bps[i] > 100000000000000ull)
            return sd_fail(sim, SD_EINVAL, "link %u: rate_bps must be in [1e6 (the rate floor, 1 Mb/s), 1e14], got %llu",
                           link, (unsigned long long)rate_bps[i]);
        if (delay_ps[i] < 0)
            return sd_fail(sim, SD_EINVAL, "link %u: delay_ps must be >= 0, got %lld", link, (long long)delay_ps[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pa = sim->num_ports, pb = pa + 1;
        for (int e = 0; e < 2; e++) {
            uint32_t port = e ? pb : pa;
            sd_port *pt = &sim->ports[port];
            memset(pt, 0, sizeof *pt);
            pt->st = &sim->port_stats[port];
            memset(pt->st, 0, sizeof *pt->st);
            pt->node = e ? b[i] : a[i];
            pt->at_host = node_is_host(sim, pt->node);
            pt->peer = e ? pa : pb;
            pt->rate_bps = rate_bps[i];
            pt->delay_ps = delay_ps[i];
            pt->up = 1;
            pt->wire_event = -1;
            pt->st->paused_since = -1;
            pt->pause_until = -1;
            pt->refresh_at = -1;
            pt->rng = seed_mix(sim->cfg.seed, 0x504F000000ull + port);
            for (int q = 0; q < SD_NUM_PRIO; q++) {
                pt->q_head[q] = pt->q_tail[q] = SD_NONE;
                pt->q_cap[q] = UINT64_MAX / 2;
            }
            pt->wire_head = pt->wire_tail = SD_NONE;
            if (node_is_host(sim, pt->node) && sim->hosts[pt->node].port == SD_NONE)
                sim->hosts[pt->node].port = port;   /* a new QP is bound to the host's first port */
            sim->port_addr[port] = node_is_host(sim, pt->node) ? pt->node : SD_NONE;  /* the default address */
            port_publish(sim, port);
            port_hooks_build(sim, port);
        }
        sim->num_ports += 2;
    }
    node_ports_rebuild(sim);
    return SD_OK;
}

int sd_set_queue(sd_sim *sim, uint32_t port, uint32_t prio, uint64_t cap_bytes, uint64_t kmin_bytes,
                 uint64_t kmax_bytes, double pmax)
{
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "port %u does not exist (%u ports)", port, sim->num_ports);
    if (prio >= SD_NUM_PRIO)
        return sd_fail(sim, SD_EINVAL, "prio must be 0 (control) or 1 (data), got %u", prio);
    if (cap_bytes == 0)
        return sd_fail(sim, SD_EINVAL, "port %u: buffer cap_bytes must be > 0", port);
    if (!(pmax >= 0.0 && pmax <= 1.0))
        return sd_fail(sim, SD_EINVAL, "port %u: ECN pmax must be in [0, 1], got %g", port, pmax);
    if (pmax > 0.0 && kmax_bytes < kmin_bytes)
        return sd_fail(sim, SD_EINVAL, "port %u: ECN kmax (%llu) must be >= kmin (%llu)", port,
                       (unsigned long long)kmax_bytes, (unsigned long long)kmin_bytes);
    sd_port *pt = &sim->ports[port];
    pt->q_cap[prio] = cap_bytes;
    if (qdisc_table[pt->qdisc[prio]]->pick)
        return SD_OK;                    /* a whole-port discipline (traffic classes) keeps its own marking */
    pt->kmin[prio] = kmin_bytes;
    pt->kmax[prio] = kmax_bytes;
    pt->pmax[prio] = pmax;
    pt->qdisc[prio] = pmax > 0.0 ? SD_QDISC_RED_ECN : SD_QDISC_DROP_TAIL;
    port_publish(sim, port);
    return SD_OK;
}

/* The set of a SD_FIB_LOCAL entry: the address's own entry for switch sw (sd_install_routes checked
 * that it exists). */
uint32_t fib_local(const sd_sim *sim, uint32_t sw, uint32_t a)
{
    for (uint32_t i = sim->fib_local_off[a]; i < sim->fib_local_off[a + 1]; i++)
        if (sim->fib_local_sw[i] == sw)
            return sim->fib_local_set[i];
    return SD_NONE;
}

/* Is set s a valid entry of switch sw toward address d (what the two installers share)? */
static int fib_check_entry(sd_sim *sim, uint32_t sw, uint32_t d, uint32_t s, const uint32_t *set_offsets,
                           uint32_t num_sets, const uint32_t *set_ports)
{
    uint32_t H = sim->cfg.num_hosts;
    if (s == SD_NONE && sim->addrs_declared)
        return SD_OK;                    /* declared addresses may be unreachable from some switches */
    if (s >= num_sets && !sim->addrs_declared)
        return sd_fail(sim, SD_EINVAL, "fib: no route from switch node %u to host %u", H + sw, d);
    if (s >= num_sets)
        return sd_fail(sim, SD_EINVAL, "fib: switch node %u: ECMP set %u for address %u does not exist "
                       "(%u sets; SD_NONE = no route)", H + sw, s, d, num_sets);
    for (uint32_t k = set_offsets[s]; k < set_offsets[s + 1]; k++)
        if (sim->ports[set_ports[k]].node != H + sw)
            return sd_fail(sim, SD_EINVAL, "fib: switch node %u routes to %s %u via port %u of node %u",
                           H + sw, sim->addrs_declared ? "address" : "host", d, set_ports[k],
                           sim->ports[set_ports[k]].node);
    return SD_OK;
}

static int fib_check_sets(sd_sim *sim, const uint32_t *set_offsets, uint32_t num_sets,
                          const uint32_t *set_ports, uint32_t num_set_ports)
{
    if (num_sets == 0 && sim->cfg.num_switches > 0)
        return sd_fail(sim, SD_EINVAL, "fib: no ECMP sets");
    if (num_sets >= SD_FIB_LOCAL)
        return sd_fail(sim, SD_EINVAL, "fib: %u ECMP sets, at most %u", num_sets, SD_FIB_LOCAL - 1);
    if (set_offsets[0] != 0 || set_offsets[num_sets] != num_set_ports)
        return sd_fail(sim, SD_EINVAL, "fib: set_offsets must start at 0 and end at num_set_ports");
    for (uint32_t s = 0; s < num_sets; s++)
        if (set_offsets[s + 1] <= set_offsets[s])
            return sd_fail(sim, SD_EINVAL, "fib: ECMP set %u is empty or offsets decrease", s);
    for (uint32_t i = 0; i < num_set_ports; i++)
        if (set_ports[i] >= sim->num_ports)
            return sd_fail(sim, SD_EINVAL, "fib: set port %u does not exist", set_ports[i]);
    return SD_OK;
}

/* Take the checked tables (copies made here) in place of the installed ones. */
static int fib_take(sd_sim *sim, const uint32_t *fib, uint32_t G, const uint32_t *addr_group,
                    const uint32_t *local_off, const uint32_t *local_sw, const uint32_t *local_set,
                    const uint32_t *set_offsets, uint32_t num_sets, const uint32_t *set_ports, uint32_t num_set_ports)
{
    uint32_t S = sim->cfg.num_switches, A = sim->num_addrs, L = local_off ? local_off[A] : 0;
    uint32_t *f = malloc((size_t)S * G * sizeof *f + 1);
    uint32_t *g = malloc((size_t)A * sizeof *g + 1);
    uint32_t *lo = calloc((size_t)A + 1, sizeof *lo);
    uint32_t *ls = malloc((size_t)L * sizeof *ls + 1);
    uint32_t *lset = malloc((size_t)L * sizeof *lset + 1);
    uint32_t *o = malloc(((size_t)num_sets + 1) * sizeof *o);
    uint32_t *p = malloc((size_t)num_set_ports * sizeof *p + 1);
    if (!f || !g || !lo || !ls || !lset || !o || !p) {
        free(f); free(g); free(lo); free(ls); free(lset); free(o); free(p);
        return sd_fail(sim, SD_ENOMEM, "fib: out of memory");
    }
    if ((size_t)S * G > 0)               /* (a fabric without switches passes no table) */
        memcpy(f, fib, (size_t)S * G * sizeof *f);
    for (uint32_t a = 0; a < A; a++)
        g[a] = addr_group ? addr_group[a] : a;
    if (local_off)
        memcpy(lo, local_off, ((size_t)A + 1) * sizeof *lo);
    if (L > 0) {                         /* the arrays may be NULL when empty */
        memcpy(ls, local_sw, (size_t)L * sizeof *ls);
        memcpy(lset, local_set, (size_t)L * sizeof *lset);
    }
    memcpy(o, set_offsets, ((size_t)num_sets + 1) * sizeof *o);
    if (num_set_ports > 0)
        memcpy(p, set_ports, (size_t)num_set_ports * sizeof *p);
    free(sim->fib); free(sim->addr_group); free(sim->fib_local_off); free(sim->fib_local_sw);
    free(sim->fib_local_set); free(sim->set_off); free(sim->set_ports);
    sim->fib = f;
    sim->fib_groups = G;
    sim->addr_group = g;
    sim->fib_local_off = lo;
    sim->fib_local_sw = ls;
    sim->fib_local_set = lset;
    sim->set_off = o;
    sim->set_ports = p;
    sim->num_sets = num_sets;
    return SD_OK;
}

int sd_install_fib(sd_sim *sim, const uint32_t *fib, const uint32_t *set_offsets, uint32_t num_sets,
                   const uint32_t *set_ports, uint32_t num_set_ports)
{
    uint32_t A = sim->num_addrs, S = sim->cfg.num_switches;
    int rc = fib_check_sets(sim, set_offsets, num_sets, set_ports, num_set_ports);
    if (rc)
        return rc;
    for (uint32_t sw = 0; sw < S; sw++)
        for (uint32_t d = 0; d < A; d++)
            if ((rc = fib_check_entry(sim, sw, d, fib[(size_t)sw * A + d], set_offsets, num_sets, set_ports)))
                return rc;
    return fib_take(sim, fib, A, NULL, NULL, NULL, NULL, set_offsets, num_sets, set_ports, num_set_ports);
}

int sd_install_routes(sd_sim *sim, const uint32_t *group_fib, uint32_t G, const uint32_t *addr_group,
                      const uint32_t *local_off, const uint32_t *local_sw, const uint32_t *local_set,
                      uint32_t num_local, const uint32_t *set_offsets, uint32_t num_sets,
                      const uint32_t *set_ports, uint32_t num_set_ports)
{
    uint32_t H = sim->cfg.num_hosts, A = sim->num_addrs, S = sim->cfg.num_switches;
    int rc = fib_check_sets(sim, set_offsets, num_sets, set_ports, num_set_ports);
    if (rc)
        return rc;
    if (G == 0 || G > A)
        return sd_fail(sim, SD_EINVAL, "routes: %u groups for %u addresses (1 .. addresses)", G, A);
    for (uint32_t a = 0; a < A; a++)
        if (addr_group[a] >= G)
            return sd_fail(sim, SD_EINVAL, "routes: address %u is in group %u of %u", a, addr_group[a], G);
    if (local_off[0] != 0 || local_off[A] != num_local)
        return sd_fail(sim, SD_EINVAL, "routes: local_offsets must start at 0 and end at num_local");
    for (uint32_t a = 0; a < A; a++)
        if (local_off[a + 1] < local_off[a])
            return sd_fail(sim, SD_EINVAL, "routes: local_offsets decrease at address %u", a);
    /* the group entries; and per group how many switches hold SD_FIB_LOCAL for it */
    uint32_t *nlocal = calloc((size_t)G + 1, sizeof *nlocal);
    if (!nlocal)
        return sd_fail(sim, SD_ENOMEM, "routes: out of memory");
    uint32_t *first = malloc((size_t)G * sizeof *first + 1);   /* an address of each group, for messages */
    if (!first) {
        free(nlocal);
        return sd_fail(sim, SD_ENOMEM, "routes: out of memory");
    }
    memset(first, 0xFF, (size_t)G * sizeof *first);
    for (uint32_t a = A; a-- > 0;)
        first[addr_group[a]] = a;
    for (uint32_t g = 0; g < G && !rc; g++)
        if (first[g] == SD_NONE)
            rc = sd_fail(sim, SD_EINVAL, "routes: group %u has no address", g);
    for (uint32_t sw = 0; sw < S && !rc; sw++)
        for (uint32_t g = 0; g < G && !rc; g++) {
            uint32_t s = group_fib[(size_t)sw * G + g];
            if (s == SD_FIB_LOCAL)
                nlocal[g]++;
            else
                rc = fib_check_entry(sim, sw, first[g], s, set_offsets, num_sets, set_ports);
        }
    /* each address: one local entry per SD_FIB_LOCAL switch of its group, no more, no repeats */
    for (uint32_t a = 0; a < A && !rc; a++) {
        uint32_t g = addr_group[a], lo = local_off[a], hi = local_off[a + 1];
        if (hi - lo != nlocal[g]) {
            rc = sd_fail(sim, SD_EINVAL, "routes: address %u has %u local entries, its group %u has %u "
                         "SD_FIB_LOCAL switches", a, hi - lo, g, nlocal[g]);
            break;
        }
        for (uint32_t i = lo; i < hi && !rc; i++) {
            uint32_t sw = local_sw[i];
            if (sw >= S || group_fib[(size_t)sw * G + g] != SD_FIB_LOCAL)
                rc = sd_fail(sim, SD_EINVAL, "routes: address %u has a local entry at switch index %u, "
                             "where its group's entry is not SD_FIB_LOCAL", a, sw);
            for (uint32_t j = lo; j < i && !rc; j++)
                if (local_sw[j] == sw)
                    rc = sd_fail(sim, SD_EINVAL, "routes: address %u has two local entries at switch node %u",
                                 a, H + sw);
            if (!rc && local_set[i] == SD_FIB_LOCAL)
                rc = sd_fail(sim, SD_EINVAL, "routes: address %u: a local entry cannot be SD_FIB_LOCAL", a);
            if (!rc)
                rc = fib_check_entry(sim, sw, a, local_set[i], set_offsets, num_sets, set_ports);
        }
    }
    free(nlocal);
    free(first);
    if (rc)
        return rc;
    return fib_take(sim, group_fib, G, addr_group, local_off, local_sw, local_set, set_offsets, num_sets,
                    set_ports, num_set_ports);
}

int64_t sd_fib_lookup(sd_sim *sim, uint32_t node, uint32_t addr)
{
    if (!sim->fib)
        return sd_fail(sim, SD_ESTATE, "fib_lookup: no fib installed"), -1;
    if (node >= sim->num_nodes || sim->nodes[node].kind != SD_NODE_SWITCH)
        return sd_fail(sim, SD_EINVAL, "fib_lookup: node %u is not a switch", node), -1;
    if (addr >= sim->num_addrs)
        return sd_fail(sim, SD_EINVAL, "fib_lookup: address %u is not in [0, %u)", addr, sim->num_addrs), -1;
    return fib_set(sim, switch_index(sim, node), addr);
}

int sd_set_link_up(sd_sim *sim, uint32_t link, uint32_t up)
{
    if (link >= sim->num_ports / 2)
        return sd_fail(sim, SD_EINVAL, "link %u does not exist", link);
    sim->ports[2 * link].up = sim->ports[2 * link + 1].up = up ? 1 : 0;
    port_publish(sim, 2 * link);
    port_publish(sim, 2 * link + 1);
    return SD_OK;
}

/* ---------------------------------------------------------------- congestion control */
int sd_add_cc_params(sd_sim *sim, uint32_t kind, const double *values, uint32_t n)
{
    const cc_twin *tw = cc_twin_of(kind);
    if (!tw)
        return sd_fail(sim, SD_EINVAL, "cc kind %u has no C twin", kind);
    uint32_t want = 0;
    while (tw->params[want])
        want++;
    if (n != want)
        return sd_fail(sim, SD_EINVAL, "%s: %u parameter values given, %u expected", tw->name, n, want);
    sd_ccp block = {kind, 0, {0}};
    char why[192];
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(values[i]))    /* NaN or +-inf: no rule below would be meaningful */
            return sd_fail(sim, SD_EINVAL, "%s: %s", tw->name,
                           cc_bad(why, sizeof why, tw->params[i], "a finite number", values[i]));
        block.v[i] = values[i];
    }
    if (tw->validate(block.v, why, sizeof why))
        return sd_fail(sim, SD_EINVAL, "%s: %s", tw->name, why);
    if (sim->num_ccp == sim->cap_ccp) {
        sd_ccp *m = realloc(sim->ccp, 2 * sim->cap_ccp * sizeof *m);
        if (!m)
            return sd_fail(sim, SD_ENOMEM, "cc params: out of memory");
        sim->ccp = m;
        sim->cap_ccp *= 2;
    }
    sim->ccp[sim->num_ccp] = block;
    return (int)sim->num_ccp++;
}

const char *sd_cc_param_name(uint32_t kind, uint32_t i)
{
    const cc_twin *tw = cc_twin_of(kind);
    if (!tw)
        return NULL;
    for (uint32_t k = 0; k <= i; k++)
        if (!tw->params[k])
            return NULL;
    return tw->params[i];
}

int sd_set_ack_batch(sd_sim *sim, uint32_t qp, uint32_t n)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "ack_batch: qp %u does not exist", qp);
    if (n < 1 || n > 65536)
        return sd_fail(sim, SD_EINVAL, "ack_batch must be in [1, 65536], got %u", n);
    sim->qps[qp].ack_batch = n;
    return SD_OK;
}

double sd_bench_cc_twin(sd_sim *sim, uint32_t cc_param, uint32_t n)
{
    /* A flow at 100 Gb/s whose ACKs arrive every 330 ns with a slowly varying RTT, one in
     * eight echoing ECN, and INT from one hop: enough to take every algorithm's main paths. */
    if (cc_param >= sim->num_ccp || n == 0)
        return -1.0;
    const cc_twin *tw = cc_twin_of(sim->ccp[cc_param].kind);
    double st[SD_CC_STATE] = {0};
    sd_cc_io io;
    memset(&io, 0, sizeof io);
    io.line_rate_bps = 100e9;
    io.rate_bps = 100e9;
    io.mtu_payload = sim->cfg.mtu_payload;
    for (int i = 0; i < SD_CC_TIMERS; i++)
        io.timer_at[i] = -1;
    io.event = SD_EV_START;
    tw->event(sim->ccp[cc_param].v, st, &io);
    struct timespec a, b;
    timespec_get(&a, TIME_UTC);
    for (uint32_t i = 1; i <= n; i++) {
        io.event = SD_EV_ACK;
        io.now_ps = (int64_t)i * 330000;
        io.rtt_ps = 5000000 + (int64_t)(i % 64) * 100000;
        io.rtt_min_ps = io.rtt_ps;
        io.acked_bytes = sim->cfg.mtu_payload;
        io.ecn = (i % 8) == 0;
        io.batch_acks = 1;
        io.batch_ecn = io.ecn;
        io.snd_una = i;
        io.snd_nxt = i + 16;
        io.inflight_bytes = 16ull * sim->cfg.mtu_payload;
        io.hops = 1;
        io.int_nhop = 1;
        io.int_hop[0].time = (uint32_t)((i * 330u) & 0xFFFFFFu);
        io.int_hop[0].bytes = (uint32_t)((i * 33u) & 0xFFFFFu);
        io.int_hop[0].qlen = i % 16;
        io.int_hop[0].rate_idx = 2;
        tw->event(sim->ccp[cc_param].v, st, &io);
    }
    timespec_get(&b, TIME_UTC);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    return ns / n;
}

void sd_set_userdata(sd_sim *sim, void *userdata)
{
    sim->userdata = userdata;
}

int sd_set_python_cc_name(sd_sim *sim, const char *name)
{
    if (!name)
        return sd_fail(sim, SD_EINVAL, "python cc name: NULL");
    snprintf(sim->py_cc_name, sizeof sim->py_cc_name, "%s", name);
    return SD_OK;
}

/* ---------------------------------------------------------------- QPs and messages */
/* Grow *arr (capacity *cap elements of elem bytes) to hold need elements, doubling, the new part
 * zeroed; aligned = 1 keeps it on 64-byte lines (alloc_lines: realloc would lose the alignment). */
static int grow(void **arr, uint32_t *cap, size_t elem, uint32_t need, int aligned)
{
    if (need <= *cap)
        return 1;
    uint32_t n = *cap ? *cap : 8;
    while (n < need)
        n = n * 2;
    void *p = aligned ? alloc_lines(n, elem) : realloc(*arr, (size_t)n * elem);
    if (!p)
        return 0;
    if (aligned) {
        if (*arr)
            memcpy(p, *arr, (size_t)*cap * elem);
        free(*arr);
    } else {
        memset((char *)p + (size_t)*cap * elem, 0, (size_t)(n - *cap) * elem);
    }
    *arr = p;
    *cap = n;
    return 1;
}

int grow_array(void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
    return grow(arr, cap, elem, need, 0);
}

int grow_lines(void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
    return grow(arr, cap, elem, need, 1);
}

/* A zeroed array of n elements on 64-byte lines (NULL if out of memory; never NULL for n = 0). */
void *alloc_lines(uint32_t n, size_t elem)
{
    size_t bytes = ((size_t)(n ? n : 1) * elem + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* A host with two addresses or more (declared): a QP pair may join two of them (e.g. two GPUs of one
 * server over NVLink), its ends bound to ports of different addresses before it posts. */
static int host_has_addresses(const sd_sim *sim, uint32_t host)
{
    const sd_node *nd = &sim->nodes[host];
    for (uint32_t i = 1; sim->addrs_declared && i < nd->num_ports; i++)
        if (sim->port_addr[sim->node_ports[nd->first_port + i]] != sim->port_addr[sim->node_ports[nd->first_port]])
            return 1;
    return 0;
}

static void qp_init(sd_sim *sim, sd_qp *q, uint32_t host, uint32_t peer_host, uint32_t peer_qp,
                    uint32_t sport, uint32_t kind, uint32_t param, uint32_t evmask, uint32_t isn)
{
    memset(q, 0, sizeof *q);
    q->st = &sim->qp_stats[q - sim->qps];
    memset(q->st, 0, sizeof *q->st);
    q->host = host;
    q->port = sim->hosts[host].port;
    q->peer_qp = peer_qp;
    q->addr = sim->port_addr[q->port];   /* its first port's; sd_bind_qp moves it with the port */
    q->peer_addr = sim->port_addr[sim->hosts[peer_host].port];
    q->sport = sport;
    q->cc_kind = kind;
    q->cc_param = param;
    q->cc_evmask = evmask;
    q->isn = isn;
    q->st->epsn = isn;                       /* both directions start at the same PSN */
    q->line_rate_bps = (double)sim->ports[q->port].rate_bps;
    q->st->rate_bps = q->line_rate_bps;
    q->rto_deadline = q->rto_queued = -1;
    q->last_cnp_ps = -1;
    q->una_msg = q->tx_msg = q->last_msg = SD_NONE;
    q->ring_next = q->ring_prev = SD_NONE;
    q->ack_batch = 1;
    q->acc_rtt_min = -1;
    q->st->rq_posted = UINT64_MAX;           /* verbs defaults (sd_set_qp_verbs): unlimited receives, */
    q->rnr_timer = 12;                       /* RNR timer 0.64 ms, retry forever, 16 READs outstanding */
    q->rnr_retry = q->rnr_left = 7;
    q->max_rd_atomic = SD_MAX_RD_ATOMIC;
    q->mtu_payload = sim->cfg.mtu_payload;
    q->ack_interval = sim->cfg.ack_interval;
    q->cnp_mode = sim->cfg.cnp_mode;
    q->rto_ps = sim->cfg.rto_ps;
    q->cnp_interval_ps = sim->cfg.cnp_interval_ps;
    for (int i = 0; i < SD_CC_TIMERS; i++)
        q->timer_at[i] = q->timer_queued[i] = -1;
    qp_publish(sim, (uint32_t)(q - sim->qps));
}

int sd_create_qp_pair(sd_sim *sim, uint32_t src, uint32_t dst, uint32_t sport, uint32_t cc_kind,
                      uint32_t cc_param, uint32_t cc_evmask, uint32_t isn)
{
    uint32_t H = sim->cfg.num_hosts;
    if (src >= sim->num_nodes || !node_is_host(sim, src))
        return sd_fail(sim, SD_EINVAL, "qp: src_host %u is not a host (hosts are 0..%u)", src, H - 1);
    if (dst >= sim->num_nodes || !node_is_host(sim, dst))
        return sd_fail(sim, SD_EINVAL, "qp: dst_host %u is not a host (hosts are 0..%u)", dst, H - 1);
    if (src == dst && !host_has_addresses(sim, src))
        return sd_fail(sim, SD_EINVAL, "qp: src_host and dst_host are both %u (loopback is not modelled)", src);
    if (sim->hosts[src].port == SD_NONE || sim->hosts[dst].port == SD_NONE)
        return sd_fail(sim, SD_EINVAL, "qp: host %u has no link", sim->hosts[src].port == SD_NONE ? src : dst);
    if (sim->cfg.num_switches > 0 && !sim->fib)
        return sd_fail(sim, SD_ESTATE, "qp: install the fib before creating QPs");
    if (sport > 0xFFFF)
        return sd_fail(sim, SD_EINVAL, "qp: sport must be a UDP port (0..65535), got %u", sport);
    if (isn > SD_PSN_MASK)
        return sd_fail(sim, SD_EINVAL, "qp: isn must be a 24-bit PSN, got %u", isn);
    if (cc_kind >= SD_NUM_CC)
        return sd_fail(sim, SD_EINVAL, "qp: unknown cc_kind %u", cc_kind);
    if (cc_twin_of(cc_kind) && (cc_param >= sim->num_ccp || sim->ccp[cc_param].kind != cc_kind))
        return sd_fail(sim, SD_EINVAL, "qp: parameter block %u is not a %s block", cc_param, cc_twin_of(cc_kind)->name);
    uint32_t cap = sim->cfg.max_qps, cap_st = cap;
    if (!grow_lines((void **)&sim->qps, &cap, sizeof *sim->qps, sim->num_qps + 2) ||
        !grow_lines((void **)&sim->qp_stats, &cap_st, sizeof *sim->qp_stats, sim->num_qps + 2))
        return sd_fail(sim, SD_ENOMEM, "qp table: out of memory");
    if (cap != sim->cfg.max_qps) {       /* both tables moved: point the QPs at their records again */
        sim->cfg.max_qps = cap < cap_st ? cap : cap_st;
        for (uint32_t i = 0; i < sim->num_qps; i++)
            sim->qps[i].st = &sim->qp_stats[i];
    }
    if (sim->qpc.hosts && qpc_reserve(sim, sim->num_qps + 2) != SD_OK)
        return SD_ENOMEM;
    uint32_t a = sim->num_qps, b = a + 1;
    qp_init(sim, &sim->qps[a], src, dst, b, sport, cc_kind, cc_param, cc_evmask, isn);
    qp_init(sim, &sim->qps[b], dst, src, a, sport, cc_kind, cc_param, cc_evmask, isn);
    sim->num_qps += 2;
    qp_publish(sim, a);                  /* its record's peer host: b's, set only now */
    return (int)a;
}

static int qp_posted(const sd_sim *sim, uint32_t qp);

int sd_bind_qp(sd_sim *sim, uint32_t qp, uint32_t port)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "bind_qp: qp %u does not exist", qp);
    sd_qp *q = &sim->qps[qp];
    if (port >= sim->num_ports || sim->ports[port].node != q->host)
        return sd_fail(sim, SD_EINVAL, "bind_qp: port %u is not a port of qp %u's host %u", port, qp, q->host);
    if (port == q->port)
        return SD_OK;
    uint64_t rate = sim->ports[port].rate_bps;
    int posted = qp_posted(sim, qp);
    if (posted && (double)rate != q->line_rate_bps)
        return sd_fail(sim, SD_ESTATE, "bind_qp: qp %u has posted messages and port %u's rate (%llu b/s) is not its "
                       "line rate (%.0f b/s): rebind a busy QP only between ports of one rate", qp, port,
                       (unsigned long long)rate, q->line_rate_bps);
    nic_rebind(sim, qp, port);
    q->addr = sim->port_addr[port];      /* a QP is addressed where it is bound: its peer sends there */
    sim->qps[q->peer_qp].peer_addr = q->addr;
    if (!posted) {
        q->line_rate_bps = (double)rate;
        q->st->rate_bps = q->line_rate_bps;
    }
    qp_publish(sim, qp);                 /* the record's port */
    return SD_OK;
}

/* ---------------------------------------------------------------- verbs setup */
int64_t sd_rnr_timer_ps(uint32_t code)
{
    /* IBTA Vol. 1 Table 45, in microseconds; code 0 is the longest (655.36 ms) */
    static const uint32_t us[32] = {655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280, 1920,
                                    2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720, 40960, 61440, 81920, 122880,
                                    163840, 245760, 327680, 491520};
    return code < 32 ? (int64_t)us[code] * 1000000 : -1;
}

int sd_set_qp_verbs(sd_sim *sim, uint32_t qp, uint32_t rq_depth, int64_t rq_repost_ps, uint32_t min_rnr_timer,
                    uint32_t rnr_retry, uint32_t max_rd_atomic)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp_verbs: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    if (min_rnr_timer > 31)
        return sd_fail(sim, SD_EINVAL, "qp_verbs: min_rnr_timer is a 5-bit code (0..31), got %u", min_rnr_timer);
    if (rnr_retry > 7)
        return sd_fail(sim, SD_EINVAL, "qp_verbs: rnr_retry is 0..7 (7 = retry forever), got %u", rnr_retry);
    if (max_rd_atomic < 1 || max_rd_atomic > SD_MAX_RD_ATOMIC)
        return sd_fail(sim, SD_EINVAL, "qp_verbs: max_rd_atomic must be in [1, %u], got %u", SD_MAX_RD_ATOMIC,
                       max_rd_atomic);
    if (rq_repost_ps > (int64_t)1000000000000000)
        return sd_fail(sim, SD_EINVAL, "qp_verbs: rq_repost_ps at most 1000 s, got %lld", (long long)rq_repost_ps);
    sd_qp *q = &sim->qps[qp];
    if (q->st->rq_used > 0 || q->st->rnr_naks_tx > 0)
        return sd_fail(sim, SD_ESTATE, "qp_verbs: qp %u has consumed receives already: set it up before the run",
                       qp);
    /* the repost delays: 0 (at once) unless set, kept only once some QP has another */
    if (rq_repost_ps != 0 && !grow_array((void **)&sim->rd.repost, &sim->rd.repost_cap, sizeof *sim->rd.repost,
                                         sim->num_qps))
        return sd_fail(sim, SD_ENOMEM, "qp_verbs: out of memory");
    if (qp < sim->rd.repost_cap)
        sim->rd.repost[qp] = rq_repost_ps < 0 ? -1 : rq_repost_ps;
    q->st->rq_posted = rq_depth == UINT32_MAX ? UINT64_MAX : rq_depth;
    q->rnr_timer = (uint8_t)min_rnr_timer;
    q->rnr_retry = q->rnr_left = (uint8_t)rnr_retry;
    q->max_rd_atomic = (uint8_t)max_rd_atomic;
    return SD_OK;
}

int sd_set_atomic_args(sd_sim *sim, uint32_t msg, uint64_t value, uint64_t compare)
{
    if (msg >= sim->num_msgs)
        return sd_fail(sim, SD_EINVAL, "atomic_args: message %u does not exist (%u messages)", msg, sim->num_msgs);
    sd_msg *m = &sim->msgs[msg];
    if (m->verb != SD_VERB_ATOMIC_CAS && m->verb != SD_VERB_ATOMIC_FADD)
        return sd_fail(sim, SD_EINVAL, "atomic_args: message %u is not an ATOMIC", msg);
    if (m->first_tx_ps >= 0)
        return sd_fail(sim, SD_ESTATE, "atomic_args: message %u was sent already", msg);
    m->atomic_value = value;
    m->atomic_compare = compare;
    return SD_OK;
}

int sd_atomic_word(sd_sim *sim, uint32_t qp, uint64_t *value)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "atomic_word: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    *value = qp < sim->rd.atom_cap ? sim->rd.atom[qp].word : 0;
    return SD_OK;
}

int sd_set_atomic_word(sd_sim *sim, uint32_t qp, uint64_t value)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "atomic_word: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    if (rd_reserve_atom(sim) != SD_OK)
        return SD_ENOMEM;
    sim->rd.atom[qp].word = value;
    return SD_OK;
}

int sd_post_recv(sd_sim *sim, uint32_t qp, uint32_t n)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "post_recv: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    sd_qp *q = &sim->qps[qp];
    if (q->st->rq_posted == UINT64_MAX)
        return sd_fail(sim, SD_ESTATE, "post_recv: qp %u has unlimited receives (give it an rq_depth first)", qp);
    q->st->rq_posted += n;
    return SD_OK;
}

/* ---------------------------------------------------------------- multipath setup */
static int qp_posted(const sd_sim *sim, uint32_t qp)
{
    for (uint32_t i = 0; i < sim->num_msgs; i++)   /* posted, released or not */
        if (sim->msgs[i].qp == qp)
            return 1;
    return 0;
}

int sd_set_qp_nak(sd_sim *sim, uint32_t qp, uint32_t enabled)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp_nak: qp %u does not exist (%u QPs)", qp, sim->num_qps);
    if (enabled > 1)
        return sd_fail(sim, SD_EINVAL, "qp_nak: enabled must be 0 or 1, got %u", enabled);
    sim->qps[qp].nak_off = (uint8_t)!enabled;
    qp_publish(sim, qp);
    return SD_OK;
}

int sd_set_qp_nic(sd_sim *sim, uint32_t qp, uint32_t mtu_payload, uint32_t ack_interval, uint32_t cnp_mode,
                  int64_t cnp_interval_ps, int64_t rto_ps)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp_nic: qp %u does not exist", qp);
    if (qp_posted(sim, qp & ~1u) || qp_posted(sim, (qp & ~1u) + 1))
        return sd_fail(sim, SD_ESTATE, "qp_nic: qp %u's pair already has posted messages", qp);
    if (mtu_payload != 0 && (mtu_payload < 64 || mtu_payload > 9000))
        return sd_fail(sim, SD_EINVAL, "qp_nic: mtu_payload must be in [64, 9000] bytes (0: the simulator's), got %u",
                       mtu_payload);
    if (cnp_mode != SD_QP_NIC_DEFAULT && cnp_mode > SD_CNP_NONE)
        return sd_fail(sim, SD_EINVAL, "qp_nic: cnp_mode must be 0 (interval), 1 (ack_echo) or 2 (none), got %u",
                       cnp_mode);
    if (rto_ps < 0)
        return sd_fail(sim, SD_EINVAL, "qp_nic: rto_ps must be > 0 (0: the simulator's), got %lld", (long long)rto_ps);
    if (cnp_interval_ps < -1)
        return sd_fail(sim, SD_EINVAL, "qp_nic: cnp_interval_ps must be >= 0 (-1: the simulator's), got %lld",
                       (long long)cnp_interval_ps);
    sd_qp *q = &sim->qps[qp];
    q->mtu_payload = mtu_payload ? mtu_payload : sim->cfg.mtu_payload;
    q->ack_interval = ack_interval ? ack_interval : sim->cfg.ack_interval;
    q->cnp_mode = cnp_mode != SD_QP_NIC_DEFAULT ? cnp_mode : sim->cfg.cnp_mode;
    q->rto_ps = rto_ps ? rto_ps : sim->cfg.rto_ps;
    q->cnp_interval_ps = cnp_interval_ps >= 0 ? cnp_interval_ps : sim->cfg.cnp_interval_ps;
    qp_publish(sim, qp);
    return SD_OK;
}

int sd_set_transport(sd_sim *sim, uint32_t qp, uint32_t mode, uint32_t window, int64_t rto_low_ps, uint32_t rto_low_pkts,
                     uint32_t bdp_cap)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "transport: qp %u does not exist", qp);
    if (mode > SD_OOO)
        return sd_fail(sim, SD_EINVAL, "transport: mode must be 0 (gbn), 1 (sr) or 2 (ooo), got %u", mode);
    uint32_t a = qp & ~1u, b = a + 1;     /* the pair (a, a+1) created together */
    if (qp_posted(sim, a) || qp_posted(sim, b))
        return sd_fail(sim, SD_ESTATE, "transport: qp %u already has posted messages", qp);
    if (mode != SD_GBN && (window < 64 || window > SD_MAX_REORDER_WINDOW || (window & (window - 1))))
        return sd_fail(sim, SD_EINVAL, "transport: reorder_window must be a power of 2 in [64, %u], got %u",
                       (unsigned)SD_MAX_REORDER_WINDOW, window);
    if (rto_low_ps < 0)
        return sd_fail(sim, SD_EINVAL, "transport: rto_low_ps must be >= 0, got %lld", (long long)rto_low_ps);
    for (uint32_t k = a; k <= b; k++) {
        sd_qp *q = &sim->qps[k];
        q->mode = mode;
        q->rto_low_ps = rto_low_ps;
        q->rto_low_pkts = rto_low_pkts;
        q->bdp_cap = bdp_cap;
        if (mode == SD_GBN || q->reorder_window >= window) {
            if (mode != SD_GBN)
                q->reorder_window = window;   /* reuse the bitmaps already given to this QP */
            continue;
        }
        uint32_t words = 12u * (window / 64u);     /* reorder.c: 4 bitmaps and a byte per packet */
        if (sim->reorder.len + words > sim->reorder.cap) {
            uint32_t cap = sim->reorder.cap ? sim->reorder.cap : 1024;
            while (cap < sim->reorder.len + words)
                cap *= 2;
            uint64_t *nb = realloc(sim->reorder.bits, (size_t)cap * sizeof *nb);
            if (!nb)
                return sd_fail(sim, SD_ENOMEM, "transport: out of memory for reorder bitmaps");
            sim->reorder.bits = nb;
            sim->reorder.cap = cap;
        }
        memset(sim->reorder.bits + sim->reorder.len, 0, (size_t)words * sizeof *sim->reorder.bits);
        q->bits_off = sim->reorder.len;
        q->reorder_window = window;
        sim->reorder.len += words;
    }
    qp_publish(sim, a);
    qp_publish(sim, b);
    return SD_OK;
}

/* Setup time: grow the path-state table to the QP table (new rows zero: no parameters). */
int paths_reserve(sd_sim *sim, uint32_t qp)
{
    if (qp < sim->paths.cap)
        return SD_OK;
    uint32_t cap = sim->cfg.max_qps > qp ? sim->cfg.max_qps : qp + 1;
    sd_path_stats *nst = realloc(sim->paths.stats, (size_t)cap * sizeof *nst);
    if (nst)
        sim->paths.stats = nst;
    sd_path_state *np = nst ? realloc(sim->paths.state, (size_t)cap * sizeof *np) : NULL;
    if (!np) {
        for (uint32_t i = 0; i < sim->paths.cap; i++)   /* the records may have moved */
            sim->paths.state[i].st = &sim->paths.stats[i];
        return sd_fail(sim, SD_ENOMEM, "paths: out of memory");
    }
    /* no parameters of its own: unset (named_set 0) until sd_set_path_param gives them */
    memset(&np[sim->paths.cap], 0, (size_t)(cap - sim->paths.cap) * sizeof *np);
    memset(&nst[sim->paths.cap], 0, (size_t)(cap - sim->paths.cap) * sizeof *nst);
    sim->paths.state = np;
    sim->paths.cap = cap;
    for (uint32_t i = 0; i < cap; i++)
        np[i].st = &nst[i];
    return SD_OK;
}

int sd_set_adaptive_routing(sd_sim *sim, uint32_t node, uint32_t on)
{
    if (on > SD_AR_DELAY)
        return sd_fail(sim, SD_EINVAL, "adaptive_routing: mode must be 0 (off), 1 (bytes) or 2 (delay), got %u", on);
    uint32_t A = sim->num_addrs;
    if (node >= sim->num_nodes || sim->nodes[node].kind != SD_NODE_SWITCH)
        return sd_fail(sim, SD_EINVAL, "adaptive_routing: node %u is not a switch", node);
    if (!sim->fib)
        return sd_fail(sim, SD_ESTATE, "adaptive_routing: install the fib first");
    uint32_t sw = switch_index(sim, node);
    if (on) {
        uint32_t widest = 0;
        for (uint32_t d = 0; d < A; d++) {
            uint32_t set = fib_set(sim, sw, d);
            if (set != SD_NONE && sim->set_off[set + 1] - sim->set_off[set] > widest)
                widest = sim->set_off[set + 1] - sim->set_off[set];
        }
        if (widest < 2)
            return sd_fail(sim, SD_EINVAL, "adaptive_routing: switch %u has one candidate egress for every destination",
                           node);
    }
    if (!sim->ar_on) {
        sim->ar_on = calloc(sim->cfg.num_switches, 1);
        if (!sim->ar_on)
            return sd_fail(sim, SD_ENOMEM, "adaptive_routing: out of memory");
    }
    sim->ar_on[sw] = (uint8_t)on;
    return SD_OK;
}

int sd_set_ar_classes(sd_sim *sim, uint32_t qp, uint32_t mask)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "ar_classes: qp %u does not exist", qp);
    if (mask > (SD_AR_CLASS_DATA | SD_AR_CLASS_ACK | SD_AR_CLASS_CNP))
        return sd_fail(sim, SD_EINVAL, "ar_classes: mask %u has bits beyond data (1), ack (2), cnp (4)", mask);
    sim->qps[qp].ar = mask;
    qp_publish(sim, qp);
    return SD_OK;
}

int sd_set_port_loss(sd_sim *sim, uint32_t port, double probability)
{
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "loss: port %u does not exist", port);
    if (!(probability >= 0.0 && probability <= 1.0))
        return sd_fail(sim, SD_EINVAL, "loss: probability must be in [0, 1], got %g", probability);
    if (!sim->loss) {
        sim->loss = calloc((size_t)2 * sim->cfg.max_links, sizeof *sim->loss);
        if (!sim->loss)
            return sd_fail(sim, SD_ENOMEM, "loss: out of memory");
    }
    sim->loss[port] = probability;
    return SD_OK;
}

static void sort_pending_posts(sd_sim *sim)
{
    /* stable insertion sort of the unreleased messages by post time: new posts are few per
     * call and usually already in order, so this is close to linear */
    uint32_t *o = sim->post_order;
    for (uint32_t i = sim->post_next + 1; i < sim->num_msgs; i++) {
        uint32_t v = o[i];
        int64_t t = sim->msgs[v].post_ps;
        uint32_t j = i;
        while (j > sim->post_next && sim->msgs[o[j - 1]].post_ps > t) {
            o[j] = o[j - 1];
            j--;
        }
        o[j] = v;
    }
}

int sd_post_writes(sd_sim *sim, const uint32_t *qp, const uint64_t *bytes, const int64_t *post_ps, uint32_t n)
{
    return sd_post_msgs(sim, qp, bytes, post_ps, NULL, n);
}

static const char *const VERB_NAMES[SD_NUM_VERBS] = {"write", "write_imm", "send", "send_imm", "read", "atomic_cas",
                                                      "atomic_fadd"};

int sd_post_msgs(sd_sim *sim, const uint32_t *qp, const uint64_t *bytes, const int64_t *post_ps, const uint8_t *verb,
                 uint32_t n)
{
    int reads = 0, atomics = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (verb && verb[i] >= SD_NUM_VERBS)
            return sd_fail(sim, SD_EINVAL, "post %u: verb %u is not one of 0..%u (write, write_imm, send, send_imm, "
                           "read, atomic_cas, atomic_fadd)", i, verb[i], SD_NUM_VERBS - 1);
        if (verb && (verb[i] == SD_VERB_ATOMIC_CAS || verb[i] == SD_VERB_ATOMIC_FADD)) {
            if (bytes[i] != 8)
                return sd_fail(sim, SD_EINVAL, "post %u: an ATOMIC operates on 8 bytes (a 64-bit word), got %llu",
                               i, (unsigned long long)bytes[i]);
            atomics = reads = 1;
        }
        if (qp[i] >= sim->num_qps)
            return sd_fail(sim, SD_EINVAL, "post %u: qp %u does not exist (%u QPs)", i, qp[i], sim->num_qps);
        if (bytes[i] == 0 || bytes[i] > (1ull << 40))
            return sd_fail(sim, SD_EINVAL, "post %u: bytes must be in [1, 2^40], got %llu", i, (unsigned long long)bytes[i]);
        if (post_ps[i] < 0)
            return sd_fail(sim, SD_EINVAL, "post %u: post_ps must be >= 0, got %lld", i, (long long)post_ps[i]);
        if (sim->qps[qp[i]].addr == sim->qps[qp[i]].peer_addr)
            return sd_fail(sim, SD_EINVAL, "post %u: qp %u and its peer both have address %u (loopback is not "
                           "modelled): bind the ends of a QP pair within one host to ports of two of its addresses",
                           i, qp[i], sim->qps[qp[i]].addr);
        if (verb && verb[i] != SD_VERB_WRITE && bytes[i] > (1ull << 31))
            return sd_fail(sim, SD_EINVAL, "post %u: a %s message is at most 2^31 bytes (the IBTA maximum message "
                           "size), got %llu", i, VERB_NAMES[verb[i]], (unsigned long long)bytes[i]);
        if (verb && verb[i] == SD_VERB_READ) {
            const sd_qp *q = &sim->qps[qp[i]];
            uint64_t npkts = (bytes[i] + q->mtu_payload - 1) / q->mtu_payload;
            if (q->mode != SD_GBN && npkts > q->reorder_window)
                return sd_fail(sim, SD_EINVAL, "post %u: a READ of %llu packets on qp %u exceeds its reorder window "
                               "(%u packets): its responses could not all be held; split it or raise reorder_window",
                               i, (unsigned long long)npkts, qp[i], q->reorder_window);
            reads = 1;
        }
    }
    if ((reads && rd_reserve(sim) != SD_OK) || (atomics && rd_reserve_atom(sim) != SD_OK))
        return SD_ENOMEM;
    uint32_t cap = sim->cfg.max_msgs, cap2 = cap;
    if (!grow_array((void **)&sim->msgs, &cap, sizeof *sim->msgs, sim->num_msgs + n) ||
        !grow_array((void **)&sim->post_order, &cap2, sizeof *sim->post_order, sim->num_msgs + n))
        return sd_fail(sim, SD_ENOMEM, "message table: out of memory");
    sim->cfg.max_msgs = cap < cap2 ? cap : cap2;
    uint32_t first = sim->num_msgs;
    for (uint32_t i = 0; i < n; i++) {
        sd_msg *m = &sim->msgs[first + i];
        m->post_ps = post_ps[i] > sim->now ? post_ps[i] : sim->now;
        m->first_tx_ps = -1;
        m->finish_ps = -1;
        m->bytes = bytes[i];
        uint32_t mtu = sim->qps[qp[i]].mtu_payload;
        m->npkts = (uint32_t)((bytes[i] + mtu - 1) / mtu);
        m->qp = qp[i];
        m->next = SD_NONE;
        m->rq_index = SD_NONE;
        m->rx_done_ps = -1;
        m->verb = verb ? verb[i] : SD_VERB_WRITE;
        m->status = SD_WC_SUCCESS;
        m->pad0 = 0;
        m->pad1 = 0;
        m->atomic_value = 1;             /* an ATOMIC's operands (sd_set_atomic_args): add 1, compare 0 */
        m->atomic_compare = 0;
        m->atomic_orig = 0;
        sim->post_order[first + i] = first + i;
    }
    sim->num_msgs += n;
    sort_pending_posts(sim);
    int64_t t = sim->msgs[sim->post_order[sim->post_next]].post_ps;
    if (sim->post_queued < 0 || t < sim->post_queued) {
        sim->post_queued = t;
        if (ev_push(sim, t, EV_POST, 0, SD_NONE) != SD_OK)
            return SD_ENOMEM;
    }
    return (int)first;
}

/* ---------------------------------------------------------------- running */
int sd_set_run_budget(sd_sim *sim, uint64_t max_events, uint64_t chunk_events)
{
    sim->max_events = max_events;
    sim->chunk_events = chunk_events;
    return SD_OK;
}

/* The wall clock of the wall-clock budget, in ns: a monotonic clock (NTP steps do not move it);
 * the coarse one where there is one (Linux: a few ns to read, a 1-4 ms tick, far below the
 * budget's resolution of ~0.1 s). */
static int64_t wall_now_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
#endif
        clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sd_set_wall_budget(sd_sim *sim, double seconds)
{
    if (!(seconds >= 0.0) || seconds > 1e9)           /* NaN, negative, or beyond ~31 years */
        return sd_fail(sim, SD_EINVAL, "wall budget must be a number of seconds in [0, 1e9], got %g", seconds);
    sim->wall_deadline_ns = seconds > 0.0 ? wall_now_ns() + (int64_t)(seconds * 1e9) : 0;
    return SD_OK;
}

int sd_set_stall_limit(sd_sim *sim, uint64_t max_same_instant)
{
    if (max_same_instant == 0)
        return sd_fail(sim, SD_EINVAL, "stall limit must be >= 1 events at one instant, got 0");
    sim->stall_limit = max_same_instant;
    return SD_OK;
}

/* The run made no progress: `limit` events ran at one picosecond and `e` would be one more. A
 * sticky failure (sim->fatal) naming the event and what it belongs to; e stays queued. */
static int run_stalled(sd_sim *sim, const sd_event *e, uint64_t limit)
{
    uint32_t type = (uint32_t)(e->key & 0xFF), id = e->id;
    char what[96];
    switch (type) {
    case EV_TX_DONE: case EV_WIRE: case EV_PFC: case EV_PFC_EXPIRE: case EV_PFC_REFRESH:
        snprintf(what, sizeof what, "port %u", id);
        break;
    case EV_NIC_WAKE:
        snprintf(what, sizeof what, "NIC port %u", id);
        break;
    case EV_VS_EXEC:
        snprintf(what, sizeof what, "host %u", id);
        break;
    case EV_RTO: case EV_QPC_FETCH: case EV_RQ_REPOST:
        snprintf(what, sizeof what, "QP %u, cc '%s'", id, id < sim->num_qps ? cc_name(sim, id) : "?");
        break;
    case EV_CC_TIMER:
        snprintf(what, sizeof what, "QP %u timer %u, cc '%s'", id / SD_CC_TIMERS, id % SD_CC_TIMERS,
                 id / SD_CC_TIMERS < sim->num_qps ? cc_name(sim, id / SD_CC_TIMERS) : "?");
        break;
    default:
        snprintf(what, sizeof what, "id %u", id);
        break;
    }
    sim->fatal = SD_ESTALL;
    snprintf(sim->fatal_msg, sizeof sim->fatal_msg,
             "no progress: %llu events ran at t=%lld ps (the stall limit), the next a %s event (%s) at the same "
             "instant; the run stops there", (unsigned long long)limit, (long long)e->t, ev_type_name(type), what);
    return sd_fail(sim, SD_ESTALL, "%s", sim->fatal_msg);
}

int sd_advance_idle(sd_sim *sim, int64_t t)
{
    if (sim->fatal)
        return sd_fail(sim, sim->fatal, "%s", sim->fatal_msg);
    if (ev_peek(sim) || sim->vsw.upq_len > 0)
        return sd_fail(sim, SD_ESTATE, "advance_idle: the data plane is not idle (an event or upcall is pending)");
    if (t < sim->now)
        return sd_fail(sim, SD_EINVAL, "advance_idle: t_ps=%lld is before now (%lld)", (long long)t,
                       (long long)sim->now);
    sim->now = t;
    return SD_OK;
}

/* Lookahead: start loading what the coming events of the sorted run touch first, so that their
 * cache misses overlap instead of being served one at a time (packets in flight, ports, their
 * records, QPs and the FIB outgrow the caches at thousands of hosts, and a hop's loads are most of
 * its cost). Three stages, each reading only lines an earlier stage fetched:
 *   LOOKAHEAD_FETCH events ahead: a wire arrival's packet, its sending port's line 0 and the
 *     arriving port's line 1 and record (the link's other port: 2i and 2i+1, sd_add_links); a
 *     serializer completion's or NIC wake-up's port (both lines) and record; a CC timer's QP (the
 *     six lines, its timers' line and its record's sender line);
 *   LOOKAHEAD_ROUTE ahead: arriving at a switch, the packet's FIB entry; at a host, its QP (the six
 *     lines its send and ACK paths read, and its record's sender and receiver lines) and the host's
 *     port (an ACK leaves through it); a completion or wake-up, the packet at its wire's tail
 *     (port_start links the next one behind it) and, at a host port, its NIC scheduler, at a
 *     switch port, the packet it dequeues next; a CC timer, its QP's port and NIC scheduler (the
 *     timer ends in nic_pull_port);
 *   LOOKAHEAD_EGRESS ahead: at a switch, the egress port ECMP picks (both lines) and its record,
 *     the last hop to a host at the ToR included; a completion or wake-up at a host port, the QP
 *     its scheduler serves next.
 * Only hints: the handlers compute everything again (adaptive routing may pick another port). */
enum { LOOKAHEAD_FETCH = EVQ_RUN_AHEAD, LOOKAHEAD_ROUTE = 8, LOOKAHEAD_EGRESS = 4 };

static inline void prefetch_qp(const sd_sim *sim, uint32_t qi)
{
    const sd_qp *q = &sim->qps[qi];
    SD_PREFETCH(q);
    SD_PREFETCH(&q->cc_state[8]);
    SD_PREFETCH(&q->snd_una);
    SD_PREFETCH(&q->next_tx_ps);
    SD_PREFETCH(&q->ring_next);
    SD_PREFETCH(&q->mode);
    SD_PREFETCH(&sim->qp_stats[qi]);     /* its record's sender line (rate, window, counters) */
}

static inline void lookahead_fetch(sd_sim *sim, const sd_event *a)
{
    uint32_t type = (uint32_t)(a->key & 0xFF);
    if (type == EV_WIRE) {
        SD_PREFETCH(&sim->pkts[a->aux]);
        SD_PREFETCH(&sim->ports[a->id]);
        SD_PREFETCH(&sim->ports[a->id ^ 1u].st);
        SD_PREFETCH(&sim->port_stats[a->id ^ 1u]);
    } else if (type == EV_TX_DONE || type == EV_NIC_WAKE) {
        SD_PREFETCH(&sim->ports[a->id]);
        SD_PREFETCH(&sim->ports[a->id].st);
        SD_PREFETCH(&sim->port_stats[a->id]);
    } else if (type == EV_CC_TIMER) {
        uint32_t qi = a->id / SD_CC_TIMERS;
        if (qi < sim->num_qps) {
            prefetch_qp(sim, qi);
            SD_PREFETCH(&sim->qps[qi].timer_queued);
        }
    }
}

static inline void lookahead_route(sd_sim *sim, const sd_event *a)
{
    uint32_t type = (uint32_t)(a->key & 0xFF);
    if (type == EV_WIRE) {
        const sd_packet *pk = &sim->pkts[a->aux];
        const sd_port *in = &sim->ports[a->id ^ 1u];
        if (in->at_host) {
            SD_PREFETCH(in);
            if (pk->dqp < sim->num_qps) {
                prefetch_qp(sim, pk->dqp);
                SD_PREFETCH(&sim->qp_stats[pk->dqp].rx_bytes);   /* the receiver's line */
            }
        } else if (sim->fib && pk->dst < sim->num_addrs) {
            uint32_t sw = switch_index(sim, in->node);
            SD_PREFETCH(fib_entry(sim, sw, pk->dst));
        }
    } else if (type == EV_CC_TIMER) {
        uint32_t qi = a->id / SD_CC_TIMERS;
        if (qi < sim->num_qps) {
            const sd_qp *q = &sim->qps[qi];
            SD_PREFETCH(&sim->ports[q->port]);
            SD_PREFETCH(&sim->nics[q->port]);
        }
    } else if (type == EV_TX_DONE || type == EV_NIC_WAKE) {
        const sd_port *pt = &sim->ports[a->id];
        if (pt->wire_tail != SD_NONE)
            SD_PREFETCH(&sim->pkts[pt->wire_tail]);   /* port_start links the next packet behind it */
        if (pt->at_host)
            SD_PREFETCH(&sim->nics[a->id]);
        else if (pt->q_head[SD_PRIO_CTRL] != SD_NONE)   /* port_pick: control before data */
            SD_PREFETCH(&sim->pkts[pt->q_head[SD_PRIO_CTRL]]);
        else if (pt->q_head[SD_PRIO_DATA] != SD_NONE)
            SD_PREFETCH(&sim->pkts[pt->q_head[SD_PRIO_DATA]]);
    }
}

static inline void lookahead_egress(sd_sim *sim, const sd_event *a)
{
    uint32_t type = (uint32_t)(a->key & 0xFF);
    if (type == EV_TX_DONE || type == EV_NIC_WAKE) {
        if (sim->ports[a->id].at_host) {
            uint32_t qi = sim->nics[a->id].ring;
            if (qi < sim->num_qps)
                prefetch_qp(sim, qi);
        }
        return;
    }
    if (type != EV_WIRE)
        return;
    const sd_packet *pk = &sim->pkts[a->aux];
    const sd_port *in = &sim->ports[a->id ^ 1u];
    if (in->at_host || !sim->fib || pk->dst >= sim->num_addrs)
        return;
    uint32_t sw = switch_index(sim, in->node);
    uint32_t set = *fib_entry(sim, sw, pk->dst);
    if (set == SD_FIB_LOCAL)
        set = fib_local(sim, sw, pk->dst);   /* an address at its own ToR: the last hop */
    if (set == SD_NONE)
        return;
    uint32_t off = sim->set_off[set], n = sim->set_off[set + 1] - off;
    uint32_t out = sim->set_ports[off + ecmp_pick(sim, sw, n, pk->src, pk->dst, pk->sport)];
    SD_PREFETCH(&sim->ports[out]);
    SD_PREFETCH(&sim->ports[out].st);
    SD_PREFETCH(&sim->port_stats[out]);
}

/* The lookahead pays once what the events touch outgrows the caches: at 128 hosts (1.7 MB: ports,
 * QPs and 18 k packets in flight) it made the run 15-20 % slower, at 1,024 hosts (16 MB) 12 %
 * faster and at 8,192 1.6x faster (docs/performance.md). The packets in flight dominate, so it is
 * decided from their peak, again every LOOKAHEAD_RECHECK + 1 events. It changes no result. */
#define LOOKAHEAD_MIN_BYTES (4u << 20)
#define LOOKAHEAD_RECHECK 0xFFFFu
static int lookahead_pays(const sd_sim *sim)
{
    if (sim->lookahead_mode)
        return sim->lookahead_mode == 2;
    uint64_t bytes = (uint64_t)sim->num_ports * (sizeof(sd_port) + sizeof(sd_port_stats)) +
                     (uint64_t)sim->num_qps * (sizeof(sd_qp) + sizeof(sd_qp_stats)) +
                     sim->ctr.pkts_peak * sizeof(sd_packet);
    return bytes >= LOOKAHEAD_MIN_BYTES;
}

int sd_debug_set_lookahead(sd_sim *sim, int mode)
{
    if (mode < 0 || mode > 2)
        return sd_fail(sim, SD_EINVAL, "debug_set_lookahead: mode %d is not 0 (automatic), 1 (off) or 2 (on)", mode);
    sim->lookahead_mode = (uint8_t)mode;
    return SD_OK;
}

static inline void ev_lookahead(sd_sim *sim)
{
    /* three loops written out (one per stage), each usually running once: one loop over the stages
     * testing the stage per event cost at least 20 more instructions per event at k = 16 (callgrind) */
    sd_evq *q = &sim->evq;
    uint32_t pos = q->run_pos, len = q->run_len, end;
    end = pos + LOOKAHEAD_FETCH < len ? pos + LOOKAHEAD_FETCH : len;
    for (uint32_t i = q->run_fetched[0]; i < end; i++)
        lookahead_fetch(sim, &q->run[i]);
    if (end > q->run_fetched[0])
        q->run_fetched[0] = end;
    end = pos + LOOKAHEAD_ROUTE < len ? pos + LOOKAHEAD_ROUTE : len;
    for (uint32_t i = q->run_fetched[1]; i < end; i++)
        lookahead_route(sim, &q->run[i]);
    if (end > q->run_fetched[1])
        q->run_fetched[1] = end;
    end = pos + LOOKAHEAD_EGRESS < len ? pos + LOOKAHEAD_EGRESS : len;
    for (uint32_t i = q->run_fetched[2]; i < end; i++)
        lookahead_egress(sim, &q->run[i]);
    if (end > q->run_fetched[2])
        q->run_fetched[2] = end;
}

int sd_run_until(sd_sim *sim, int64_t t)
{
    if (t < sim->now)
        return sd_fail(sim, SD_EINVAL, "run_until: time %lld ps is before now (%lld ps)", (long long)t, (long long)sim->now);
    if (sim->cc_fault)
        return SD_ECC;                   /* sim->err still names the CC, QP and event */
    if (sim->cb_error)
        return sd_fail(sim, SD_ECALLBACK, "a congestion-control plug-in raised; the run cannot continue");
    if (sim->fatal)                      /* sticky: an event could not be scheduled (event.c) */
        return sd_fail(sim, sim->fatal, "%s", sim->fatal_msg);
    /* the run budget: stop before the event that would pass max_events, or the chunk of this call */
    uint64_t stop_at = UINT64_MAX;
    if (sim->chunk_events && sim->chunk_events < UINT64_MAX - sim->ctr.events)
        stop_at = sim->ctr.events + sim->chunk_events;
    if (sim->max_events && sim->max_events < stop_at)
        stop_at = sim->max_events;
    /* the first event looks at the wall clock (a deadline may have passed between two calls) */
    sim->poll_at = sim->wall_deadline_ns ? sim->ctr.events : stop_at;
    uint64_t stall = sim->stall_limit;
    if (!stall)                          /* the caller sets it: the data plane has no default of its own */
        return sd_fail(sim, SD_EINVAL, "run_until: no stall limit set (sd_set_stall_limit, >= 1)");
    sd_event e;
    int la = lookahead_pays(sim);
    sim->evq.ahead = la ? EVQ_RUN_AHEAD : 1;   /* without the lookahead the run need not be deep */
    for (;;) {
        if (sim->cfg.wake_on_completion && sim->cring_len > 0)
            return SD_STOP_COMPLETIONS;
        const sd_event *top = ev_peek(sim);
        if (!top && sim->fatal)
            return sd_fail(sim, sim->fatal, "%s", sim->fatal_msg);
        if (sim->vsw.upq_len > 0 && (!top || top->t > t || top->t > sim->vsw.upq[sim->vsw.upq_head].t_ps + sim->vsw.lookahead_ps))
            return SD_STOP_UPCALL;       /* the oldest upcall must be handled before anything later runs */
        if (!top)
            return SD_STOP_IDLE;
        if (top->t > t) {
            sim->now = t;
            return SD_STOP_TIME;
        }
        /* one compare per event for both budgets: poll_at is the event budget's stop or, earlier, the
         * next reading of the wall clock: every SD_WALL_CHECK_EVENTS events (a C event takes well
         * under 10 us, so at most a few ms pass between two readings) and after every event that
         * called a Python plug-in (cc.c sets poll_at to now: a plug-in may be slow) */
        if (__builtin_expect(sim->ctr.events >= sim->poll_at, 0)) {
            if (sim->ctr.events >= stop_at)
                return sim->max_events && sim->ctr.events >= sim->max_events ? SD_STOP_MAX_EVENTS : SD_STOP_EVENTS;
            if (sim->wall_deadline_ns && wall_now_ns() >= sim->wall_deadline_ns) {
                sim->poll_at = sim->ctr.events;         /* until the next call sets it again */
                return SD_STOP_WALL;
            }
            sim->poll_at = sim->wall_deadline_ns && stop_at - sim->ctr.events > SD_WALL_CHECK_EVENTS
                               ? sim->ctr.events + SD_WALL_CHECK_EVENTS : stop_at;
        }
        if (top->t == sim->last_ev_t) {
            if (__builtin_expect(++sim->same_instant >= stall, 0)) {
                sim->same_instant--;
                return run_stalled(sim, top, stall);
            }
        } else {
            sim->last_ev_t = top->t;
            sim->same_instant = 0;
        }
        ev_take(sim, &e);                /* the event ev_peek returned */
        sim->now = e.t;
        sim->ctr.events++;
        if (__builtin_expect((sim->ctr.events & LOOKAHEAD_RECHECK) == 0, 0)) {
            la = lookahead_pays(sim);
            sim->evq.ahead = la ? EVQ_RUN_AHEAD : 1;
        }
        if (la)
            ev_lookahead(sim);
        switch ((uint32_t)(e.key & 0xFF)) {
        case EV_TX_DONE:
            port_tx_done(sim, e.id);
            break;
        case EV_WIRE:
            port_wire_arrive(sim, e.id);
            break;
        case EV_NIC_WAKE:
            nic_wake(sim, e.id);
            break;
        case EV_RTO:
            nic_rto(sim, e.id);
            break;
        case EV_CC_TIMER:
            cc_timer_fire(sim, e.id);
            break;
        case EV_PFC:
            pfc_frame_arrive(sim, e.id, e.aux);
            break;
        case EV_PFC_EXPIRE:
            pfc_expire(sim, e.id);
            break;
        case EV_PFC_REFRESH:
            pfc_refresh(sim, e.id);
            break;
        case EV_VS_EXEC:
            vs_exec_event(sim, e.id, e.aux);
            break;
        case EV_QPC_FETCH:
            qpc_fetch_done(sim, e.id);
            break;
        case EV_RQ_REPOST:
            nic_rq_repost(sim, e.id);
            break;
        case EV_POST:
            if (sim->post_queued == sim->now)
                nic_post_release(sim);
            break;
        default:
            break;
        }
        if (__builtin_expect(sim->cc_fault | sim->cb_error | sim->fatal, 0)) {
            if (sim->cc_fault)
                return SD_ECC;           /* sim->err names the CC, QP and event */
            if (sim->cb_error)
                return sd_fail(sim, SD_ECALLBACK, "a congestion-control plug-in raised at t=%lld ps", (long long)sim->now);
            return sd_fail(sim, sim->fatal, "%s", sim->fatal_msg);   /* an event could not be scheduled */
        }
    }
}

int64_t sd_now(sd_sim *sim)
{
    return sim->now;
}

uint32_t sd_drain_completions(sd_sim *sim, sd_completion *out, uint32_t max)
{
    uint32_t n = 0;
    while (n < max && sim->cring_len > 0) {
        out[n++] = sim->cring[sim->cring_head];
        sim->cring_head = (sim->cring_head + 1) % sim->cfg.completion_ring;
        sim->cring_len--;
    }
    return n;
}

/* ---------------------------------------------------------------- views and accounting */
sd_port_stats *sd_ports(sd_sim *sim, uint32_t *count)
{
    *count = sim->num_ports;
    return sim->port_stats;
}

sd_qp_stats *sd_qps(sd_sim *sim, uint32_t *count)
{
    *count = sim->num_qps;
    return sim->qp_stats;
}

/* ---------------------------------------------------------------- publishing configuration
 * The records carry the configuration Python reads; the setters that change it call these
 * (never the per-packet path). */
void port_publish(sd_sim *sim, uint32_t port)
{
    const sd_port *pt = &sim->ports[port];
    sd_port_stats *st = pt->st;
    st->up = pt->up;
    st->qdisc[0] = pt->qdisc[0];
    st->qdisc[1] = pt->qdisc[1];
    st->rate_bps = pt->rate_bps;
    st->delay_ps = pt->delay_ps;
    st->node = pt->node;
    st->peer = pt->peer;
    for (int i = 0; i < SD_NUM_PRIO; i++) {
        st->kmin[i] = pt->kmin[i];
        st->kmax[i] = pt->kmax[i];
        st->pmax[i] = pt->pmax[i];
    }
}

void qp_publish(sd_sim *sim, uint32_t qp)
{
    const sd_qp *q = &sim->qps[qp];
    sd_qp_stats *st = q->st;
    st->host = q->host;
    st->port = q->port;
    st->peer_host = sim->qps[q->peer_qp].host;
    st->peer_qp = q->peer_qp;
    st->isn = q->isn;
    st->cc_kind = q->cc_kind;
    st->cc_param = q->cc_param;
    st->sport = q->sport;
    st->mode = q->mode;
    st->reorder_window = q->reorder_window;
    st->path_policy = q->path_policy;
    st->npaths = q->npaths;
    st->ar = q->ar;
    st->rto_low_pkts = q->rto_low_pkts;
    st->bdp_cap = q->bdp_cap;
    st->rto_low_ps = q->rto_low_ps;
    st->mtu_payload = q->mtu_payload;
    st->ack_interval = q->ack_interval;
    st->cnp_mode = q->cnp_mode;
    st->nak_off = q->nak_off;
    st->rto_ps = q->rto_ps;
    st->cnp_interval_ps = q->cnp_interval_ps;
}

sd_msg *sd_msgs(sd_sim *sim, uint32_t *count)
{
    *count = sim->num_msgs;
    return sim->msgs;
}

sd_cc_trace *sd_trace(sd_sim *sim, uint32_t *count)
{
    *count = sim->trace_len;
    return sim->trace;
}

const sd_counters *sd_get_counters(sd_sim *sim)
{
    return &sim->ctr;
}

static uint64_t count_data(const sd_sim *sim, uint32_t head)
{
    uint64_t n = 0;
    for (uint32_t p = head; p != SD_NONE; p = sim->pkts[p].next)
        n += sim->pkts[p].prio == SD_PRIO_DATA;
    return n;
}

uint64_t sd_data_in_flight(sd_sim *sim)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < sim->num_ports; i++) {
        const sd_port *pt = &sim->ports[i];
        n += count_data(sim, pt->q_head[SD_PRIO_CTRL]) + count_data(sim, pt->q_head[SD_PRIO_DATA]) +
             count_data(sim, pt->wire_head);
        if (qdisc_table[pt->qdisc[SD_PRIO_CTRL]]->held_data)
            n += qdisc_table[pt->qdisc[SD_PRIO_CTRL]]->held_data(sim, i);   /* a whole-port discipline's */
    }
    return n + sim->qpc.parked_data      /* data packets waiting for a QP context (qpc.c) */
             + sim->vsw.parked_data;      /* ... or for the vSwitch slow path (vswitch.c) */
}

uint64_t sd_memory_bytes(sd_sim *sim)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < SD_NUM_MODULES; i++)
        b += SD_MODULES[i].mem_bytes(sim);
    return b;
}

uint32_t sd_mem_report(sd_sim *sim, const char **names, uint64_t *bytes, uint32_t max)
{
    for (uint32_t i = 0; i < SD_NUM_MODULES && i < max; i++) {
        names[i] = SD_MODULES[i].name;
        bytes[i] = SD_MODULES[i].mem_bytes(sim);
    }
    return SD_NUM_MODULES;
}

uint32_t sd_sizeof_packet(void)
{
    return (uint32_t)sizeof(sd_packet);
}

uint32_t sd_sizeof_port(void)
{
    /* a port's state, its record, its NIC scheduler (used at host ports) and its node_ports slot */
    return (uint32_t)(sizeof(sd_port) + sizeof(sd_port_stats) + sizeof(sd_nic) + sizeof(uint32_t));
}

uint32_t sd_sizeof_qp(void)
{
    return (uint32_t)(sizeof(sd_qp) + sizeof(sd_qp_stats));
}

uint32_t sd_sizeof_path_state(void)
{
    return (uint32_t)(sizeof(sd_path_state) + sizeof(sd_path_stats));
}

int64_t sd_serialization_ps(uint64_t wire_bytes, uint64_t rate_bps)
{
    /* -1 for a zero rate or a result beyond int64 (ps) */
    if (rate_bps == 0 || (unsigned __int128)wire_bytes * 8000000000000ull / rate_bps > (unsigned __int128)INT64_MAX - 1)
        return -1;
    return ser_ps(wire_bytes, rate_bps);
}

int32_t sd_psn_diff(uint32_t a, uint32_t b)
{
    return psn_diff(a & SD_PSN_MASK, b & SD_PSN_MASK);
}
