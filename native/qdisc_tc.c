/* qdisc_tc.c: traffic classes. The packet's DSCP (data, ACK/NAK or CNP: sd_config's dscp_*)
 * selects one of 8 classes through the simulator's DSCP map (default: the class-selector
 * precedence, DSCP >> 3, so RoCE data AF31 = 26 -> class 3 and CNP CS6 = 48 -> class 6); each
 * class is a FIFO of the port. Scheduling: the strict-priority classes first, the highest class
 * number first (IEEE 802.1Q priorities); then deficit weighted round robin over the others
 * (Shreedhar & Varghese, SIGCOMM'95: each visit adds the class's quantum in bytes to its deficit;
 * it sends while its head fits; an emptied class's deficit is reset), so backlogged DWRR classes
 * share the leftover rate in proportion to their quanta. Optional RED/ECN per class, on the
 * class's bytes left behind. The discipline takes the whole port: both priorities name it, and
 * the per-priority byte counts (q_bytes: PFC, adaptive routing, telemetry) and capacities
 * stay as they are. PFC pauses a priority: a class whose head packet has a paused priority
 * waits (head-of-line, as a paused 802.1Qbb class). Switch ports only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define TC 8

struct qd_tc {
    uint32_t head[TC], tail[TC];
    uint64_t bytes[TC];
    int64_t deficit[TC];
    uint64_t quantum[TC];                /* bytes per DWRR visit, 0 = strict priority */
    uint64_t kmin[TC], kmax[TC];
    double pmax[TC];                     /* RED per class, 0 = no marking */
    uint32_t next;                       /* the class tc_pick chose */
    uint32_t rr;                         /* the DWRR class being visited */
    uint32_t visited;                    /* 1 = rr's quantum was added on this visit */
    uint32_t pad;
};

/* The 32 parameters, per class c = 0..7 in this order: quantum_c (bytes per DWRR visit; 0 = strict
 * priority), kmin_c, kmax_c (RED thresholds on the class's bytes), pmax_c (0 = no marking). */
#define TC_EACH_CLASS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define TC_QUANTUM(c) {"quantum_" #c, SD_QDISC_PARAM_INT, 64, 1e9, "in [64, 1e9] bytes or 0 (strict priority)", 1},
#define TC_KMIN(c) {"kmin_" #c, SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},
#define TC_KMAX(c) {"kmax_" #c, SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},
#define TC_PMAX(c) {"pmax_" #c, SD_QDISC_PARAM_REAL, 0, 1, "in [0, 1]", 0},
static const qdisc_param tc_params[] = {
    TC_EACH_CLASS(TC_QUANTUM) TC_EACH_CLASS(TC_KMIN) TC_EACH_CLASS(TC_KMAX) TC_EACH_CLASS(TC_PMAX)
    {NULL, 0, 0, 0, NULL, 0}};
#undef TC_QUANTUM
#undef TC_KMIN
#undef TC_KMAX
#undef TC_PMAX
#undef TC_EACH_CLASS
_Static_assert(sizeof tc_params / sizeof tc_params[0] == 4 * TC + 1 && 4 * TC <= SD_QDISC_PARAMS,
               "traffic_class: quantum, kmin, kmax, pmax per class");

/* the port's traffic classes (sim->qdisc.state of this discipline: one per port) */
static inline struct qd_tc *tc_of(const sd_sim *sim, uint32_t port)
{
    return (struct qd_tc *)sim->qdisc.state[QDISC_KIND_traffic_class] + port;
}

static const char *tc_validate(const double *p, char *why, size_t len)
{
    const qdisc_param *params = tc_params;
    for (int c = 0; c < TC; c++) {
        char rule[16];
        snprintf(rule, sizeof rule, ">= kmin_%d", c);
        QDISC_NEED(p[16 + c] >= p[8 + c], 16 + c, rule);
    }
    return NULL;
}

static int tc_setup(sd_sim *sim, uint32_t port, uint32_t prio, const double *p)
{
    (void)prio;
    sd_port *pt = &sim->ports[port];
    if (node_is_host(sim, pt->node))
        return sd_fail(sim, SD_EINVAL, "qdisc traffic_class: port %u is a NIC port (switch ports only)", port);
    if (pt->st->q_bytes[SD_PRIO_CTRL] || pt->st->q_bytes[SD_PRIO_DATA])
        return sd_fail(sim, SD_ESTATE, "qdisc traffic_class: port %u has packets queued", port);
    struct qd_tc *t = tc_of(sim, port);
    memset(t, 0, sizeof *t);
    for (int c = 0; c < TC; c++) {
        t->head[c] = t->tail[c] = SD_NONE;
        t->quantum[c] = (uint64_t)p[c];
        t->kmin[c] = (uint64_t)p[8 + c];
        t->kmax[c] = (uint64_t)p[16 + c];
        t->pmax[c] = p[24 + c];
    }
    for (int q = 0; q < SD_NUM_PRIO; q++) {
        pt->qdisc[q] = QDISC_KIND_traffic_class;   /* the whole port */
        pt->kmin[q] = pt->kmax[q] = 0;
        pt->pmax[q] = 0.0;
    }
    return SD_OK;
}

static inline uint32_t tc_class(const sd_sim *sim, const sd_packet *pk)
{
    return sim->qdisc.dscp_class[pkt_dscp(sim, pk)];
}

static int tc_enqueue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    struct qd_tc *t = tc_of(sim, (uint32_t)(pt - sim->ports));
    sd_packet *pk = &sim->pkts[p];
    uint32_t c = tc_class(sim, pk);
    pk->next = SD_NONE;
    if (t->tail[c] == SD_NONE)
        t->head[c] = p;
    else
        sim->pkts[t->tail[c]].next = p;
    t->tail[c] = p;
    t->bytes[c] += pk->wire;
    pt->st->q_bytes[prio] += pk->wire;
    return 2;                            /* queued here */
}

static inline int tc_ready(const sd_sim *sim, const sd_port *pt, const struct qd_tc *t, uint32_t c)
{
    return t->head[c] != SD_NONE && !(pt->paused & (1u << sim->pkts[t->head[c]].prio));
}

static int tc_pick(sd_sim *sim, sd_port *pt)
{
    struct qd_tc *t = tc_of(sim, (uint32_t)(pt - sim->ports));
    int any = 0;
    for (int c = TC - 1; c >= 0; c--) {
        if (!tc_ready(sim, pt, t, (uint32_t)c))
            continue;
        if (t->quantum[c] == 0) {
            t->next = (uint32_t)c;
            return sim->pkts[t->head[c]].prio;
        }
        any = 1;
    }
    if (!any)
        return -1;
    for (;;) {                           /* terminates: a ready class gains a quantum per round */
        uint32_t c = t->rr;
        if (t->quantum[c] && tc_ready(sim, pt, t, c)) {
            if (!t->visited) {
                t->deficit[c] += (int64_t)t->quantum[c];
                t->visited = 1;
            }
            if (t->deficit[c] >= (int64_t)sim->pkts[t->head[c]].wire) {
                t->next = c;
                return sim->pkts[t->head[c]].prio;
            }
        }
        t->rr = (c + 1) % TC;
        t->visited = 0;
    }
}

static uint32_t tc_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio)
{
    struct qd_tc *t = tc_of(sim, (uint32_t)(pt - sim->ports));
    uint32_t c = t->next, p = t->head[c];
    sd_packet *pk = &sim->pkts[p];
    t->head[c] = pk->next;
    if (pk->next == SD_NONE)
        t->tail[c] = SD_NONE;
    t->bytes[c] -= pk->wire;
    pt->st->q_bytes[prio] -= pk->wire;
    if (t->quantum[c]) {
        t->deficit[c] -= pk->wire;
        if (t->head[c] == SD_NONE) {     /* an emptied class keeps no credit (DRR) */
            t->deficit[c] = 0;
            if (t->rr == c) {
                t->rr = (c + 1) % TC;
                t->visited = 0;
            }
        }
    }
    return p;
}

static void tc_on_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    (void)prio;
    struct qd_tc *t = tc_of(sim, (uint32_t)(pt - sim->ports));
    uint32_t c = t->next;
    sd_packet *pk = &sim->pkts[p];
    if (pk->ecn != 0 && t->pmax[c] > 0.0 && t->bytes[c] > t->kmin[c]) {
        double pr = sd_red_probability(t->bytes[c], t->kmin[c], t->kmax[c], t->pmax[c]);
        if (pr >= 1.0 || rng_uniform(&pt->rng) < pr)
            qdisc_mark(sim, pt, pk);
    }
}

static uint64_t tc_held_data(const sd_sim *sim, uint32_t port)
{
    uint64_t n = 0;
    for (int c = 0; c < TC; c++)
        for (uint32_t p = tc_of(sim, port)->head[c]; p != SD_NONE; p = sim->pkts[p].next)
            n += sim->pkts[p].prio == SD_PRIO_DATA;
    return n;
}

int sd_set_dscp_map(sd_sim *sim, const uint32_t *classes, uint32_t n)
{
    if (n != 64)
        return sd_fail(sim, SD_EINVAL, "dscp map: 64 entries (one per DSCP), got %u", n);
    for (uint32_t d = 0; d < 64; d++)
        if (classes[d] >= TC)
            return sd_fail(sim, SD_EINVAL, "dscp map: DSCP %u -> class %u, classes are 0..7", d, classes[d]);
    for (uint32_t d = 0; d < 64; d++)
        sim->qdisc.dscp_class[d] = (uint8_t)classes[d];
    return SD_OK;
}

int sd_set_qp_dscp(sd_sim *sim, uint32_t qp, uint32_t dscp)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "qp %u does not exist", qp);
    if (dscp > 63)
        return sd_fail(sim, SD_EINVAL, "qp %u: dscp must be in [0, 63], got %u", qp, dscp);
    if (!sim->qdisc.qp_dscp) {
        sim->qdisc.qp_dscp = malloc(sim->cfg.max_qps);
        if (!sim->qdisc.qp_dscp)
            return sd_fail(sim, SD_ENOMEM, "qp dscp: out of memory");
        memset(sim->qdisc.qp_dscp, 0xFF, sim->cfg.max_qps);
    }
    sim->qdisc.qp_dscp[qp] = (uint8_t)dscp;
    if (sim->qps[qp].peer_qp < sim->num_qps)
        sim->qdisc.qp_dscp[sim->qps[qp].peer_qp] = (uint8_t)dscp;
    return SD_OK;
}

int sd_tc_class_bytes(sd_sim *sim, uint32_t port, uint64_t *out)
{
    if (port >= sim->num_ports || sim->ports[port].qdisc[SD_PRIO_CTRL] != QDISC_KIND_traffic_class)
        return sd_fail(sim, SD_EINVAL, "port %u has no traffic_class discipline", port);
    memcpy(out, tc_of(sim, port)->bytes, sizeof tc_of(sim, port)->bytes);
    return SD_OK;
}

const qdisc_ops qd_traffic_class = {
    .name = "traffic_class", .params = tc_params, .validate = tc_validate, .setup = tc_setup,
    .enqueue = tc_enqueue, .dequeue = tc_dequeue, .on_dequeue = tc_on_dequeue,
    .state_bytes = sizeof(struct qd_tc), .per_port = 1, .pick = tc_pick, .held_data = tc_held_data,
};
