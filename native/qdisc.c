/* qdisc.c: the queue-discipline registry and the two disciplines every port had before it,
 * drop-tail and RED/ECN. A discipline is a qdisc_ops table (sim.h); sd_set_qdisc installs one
 * on a (port, priority) queue. Adding one: its own file native/qdisc_<name>.c (see
 * qdisc_codel.c; dataplane/build.py compiles it), one line X(<name>) in native/qdisc.h, and its
 * config model in controlplane/fabric/qdisc.py (docs/extending.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SD_QDISC_ENTRY_(name) [QDISC_KIND_##name] = &qd_##name,
const qdisc_ops *const qdisc_table[SD_NUM_QDISC] = {SD_QDISCS(SD_QDISC_ENTRY_)};
#undef SD_QDISC_ENTRY_
_Static_assert((int)QDISC_KIND_drop_tail == (int)SD_QDISC_DROP_TAIL && (int)QDISC_KIND_red_ecn == (int)SD_QDISC_RED_ECN,
               "sd_set_queue's two disciplines keep their public indices (qdisc.h: drop_tail, red_ecn first)");
_Static_assert(SD_NUM_QDISC <= 255, "a discipline's index must fit sd_port.qdisc");

/* The qdisc module (sim.c's table): the default DSCP map; side arrays come with the first
 * discipline that needs them (sd_set_qdisc, sd_set_qp_dscp). */
int qdisc_init(sd_sim *sim)
{
    /* port.c serves drop_tail and red_ecn without the table (FIFO, red_ecn's marking inlined) */
    if (qd_drop_tail.enqueue || qd_drop_tail.dequeue || qd_drop_tail.on_dequeue || qd_drop_tail.pick ||
        qd_red_ecn.enqueue || qd_red_ecn.dequeue || qd_red_ecn.pick)
        return SD_EINVAL;
    for (uint32_t d = 0; d < 64; d++)
        sim->qdisc.dscp_class[d] = (uint8_t)(d >> 3);   /* class selector: the DSCP's precedence bits */
    return SD_OK;
}

/* Rows of discipline k's side state: one per queue, or one per port. */
static uint64_t state_rows(const sd_sim *sim, uint32_t k)
{
    return (uint64_t)2 * sim->cfg.max_links * (qdisc_table[k]->per_port ? 1 : SD_NUM_PRIO);
}

void qdisc_free(sd_sim *sim)
{
    for (uint32_t k = 0; k < SD_NUM_QDISC; k++)
        free(sim->qdisc.state[k]);
    free(sim->qdisc.qp_dscp);
    free(sim->qdisc.enq_ps);
}

uint64_t qdisc_memory_bytes(const sd_sim *sim)
{
    uint64_t b = 0;
    for (uint32_t k = 0; k < SD_NUM_QDISC; k++)
        b += sim->qdisc.state[k] ? state_rows(sim, k) * qdisc_table[k]->state_bytes : 0;
    b += sim->qdisc.qp_dscp ? (uint64_t)sim->cfg.max_qps : 0;
    b += sim->qdisc.enq_ps ? (uint64_t)sim->cfg.pkt_pool * sizeof *sim->qdisc.enq_ps : 0;
    return b;
}

/* ------------------------------------------------------------------ drop-tail */
static const char *const no_params[] = {NULL};

const qdisc_ops qd_drop_tail = {
    .name = "drop_tail", .params = no_params, .validate = NULL, .setup = NULL,
    .enqueue = NULL, .dequeue = NULL, .on_dequeue = NULL,           /* admit, FIFO, nothing */
};

/* ------------------------------------------------------------------ RED / ECN */
double sd_red_probability(uint64_t q, uint64_t kmin, uint64_t kmax, double pmax)
{
    /* DCQCN's CP (Zhu et al. SIGCOMM'15 §3.1): 0 up to Kmin, linear to Pmax at Kmax, 1 above. */
    if (pmax <= 0.0 || q <= kmin)
        return 0.0;
    if (q > kmax)
        return 1.0;
    return pmax * (double)(q - kmin) / (double)(kmax - kmin);
}

static const char *const red_params[] = {"kmin_bytes", "kmax_bytes", "pmax", NULL};

static const char *red_validate(const double *p, char *why, size_t len)
{
    const char *const *params = red_params;
    CC_NEED(p[0] >= 0 && p[0] <= CC_MAX_BYTES, 0, "in [0, 1e15]");
    CC_NEED(p[1] >= p[0] && p[1] <= CC_MAX_BYTES, 1, ">= kmin_bytes and <= 1e15");
    CC_NEED(p[2] > 0 && p[2] <= 1, 2, "in (0, 1]");
    return NULL;
}

static int red_setup(sd_sim *sim, uint32_t port, uint32_t prio, const double *p)
{
    sd_port *pt = &sim->ports[port];
    pt->kmin[prio] = (uint64_t)p[0];
    pt->kmax[prio] = (uint64_t)p[1];
    pt->pmax[prio] = p[2];
    return SD_OK;
}

/* ECN at dequeue on the bytes left behind (sim.h qdisc_red_on_dequeue; port_start inlines it) */
static void red_on_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    qdisc_red_on_dequeue(sim, pt, prio, p);
}

const qdisc_ops qd_red_ecn = {
    .name = "red_ecn", .params = red_params, .validate = red_validate, .setup = red_setup,
    .enqueue = NULL, .dequeue = NULL, .on_dequeue = red_on_dequeue,
};

/* ------------------------------------------------------------------ entry points */
static int kind_of(const char *kind)
{
    for (int k = 0; k < SD_NUM_QDISC; k++)
        if (kind && strcmp(kind, qdisc_table[k]->name) == 0)
            return k;
    return -1;
}

const char *sd_qdisc_param_name(const char *kind, uint32_t i)
{
    int k = kind_of(kind);
    if (k < 0)
        return NULL;
    for (uint32_t j = 0; j <= i; j++)
        if (!qdisc_table[k]->params[j])
            return NULL;
    return qdisc_table[k]->params[i];
}

uint32_t sd_qdisc_count(void)
{
    return SD_NUM_QDISC;
}

const char *sd_qdisc_name(uint32_t kind)
{
    return kind < SD_NUM_QDISC ? qdisc_table[kind]->name : NULL;
}

int sd_qdisc_of(sd_sim *sim, uint32_t port, uint32_t prio)
{
    if (port >= sim->num_ports || prio >= SD_NUM_PRIO)
        return -1;
    return sim->ports[port].qdisc[prio];
}

int sd_set_qdisc(sd_sim *sim, uint32_t port, uint32_t prio, const char *kind, const double *params, uint32_t n)
{
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "port %u does not exist (%u ports)", port, sim->num_ports);
    if (prio >= SD_NUM_PRIO)
        return sd_fail(sim, SD_EINVAL, "prio must be 0 (control) or 1 (data), got %u", prio);
    int k = kind_of(kind);
    if (k < 0) {
        char names[160] = "";
        for (int j = 0; j < SD_NUM_QDISC; j++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? ", " : "", qdisc_table[j]->name);
        return sd_fail(sim, SD_EINVAL, "qdisc kind must be one of %s, got '%s'", names, kind ? kind : "(null)");
    }
    const qdisc_ops *q = qdisc_table[k];
    uint32_t want = 0;
    while (q->params[want])
        want++;
    if (n != want)
        return sd_fail(sim, SD_EINVAL, "qdisc %s takes %u parameters, got %u", q->name, want, n);
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(params[i]))
            return sd_fail(sim, SD_EINVAL, "qdisc %s: %s must be finite, got %g", q->name, q->params[i], params[i]);
    char why[160];
    if (q->validate && q->validate(params, why, sizeof why))
        return sd_fail(sim, SD_EINVAL, "qdisc %s: %s", q->name, why);
    sd_port *pt = &sim->ports[port];
    const qdisc_ops *whole = qdisc_table[pt->qdisc[SD_PRIO_CTRL]];
    if (whole->pick && k != pt->qdisc[SD_PRIO_CTRL]) {
        if (pt->st->q_bytes[SD_PRIO_CTRL] || pt->st->q_bytes[SD_PRIO_DATA])
            return sd_fail(sim, SD_ESTATE, "qdisc %s: port %u has packets in its %s queues", q->name, port,
                           whole->name);
        pt->qdisc[SD_PRIO_CTRL] = pt->qdisc[SD_PRIO_DATA] = SD_QDISC_DROP_TAIL;   /* leaves the whole port */
    }
    if (q->state_bytes && !sim->qdisc.state[k]) {
        sim->qdisc.state[k] = calloc(state_rows(sim, (uint32_t)k), q->state_bytes);
        if (!sim->qdisc.state[k])
            return sd_fail(sim, SD_ENOMEM, "qdisc %s: out of memory for its state", q->name);
    }
    pt->kmin[prio] = pt->kmax[prio] = 0;  /* RED's thresholds (telemetry) belong to red_ecn alone */
    pt->pmax[prio] = 0.0;
    int rc = q->setup ? q->setup(sim, port, prio, params) : SD_OK;
    if (rc == SD_OK)
        pt->qdisc[prio] = (uint8_t)k;
    port_publish(sim, port);
    return rc;
}
