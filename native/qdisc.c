/* qdisc.c: the queue-discipline registry and the two disciplines every port had before it,
 * drop-tail and RED/ECN. A discipline is a qdisc_ops table (sim.h); sd_set_qdisc installs one
 * on a (port, priority) queue. Adding one: its own file native/qdisc_<name>.c (see
 * qdisc_codel.c; dataplane/build.py compiles it), one line X(<name>) in native/qdisc.h, and its
 * config model in controlplane/fabric/qdisc.py (docs/extending.md).
 *
 * A discipline declares its parameters (sim.h qdisc_param: name, kind, closed range [lo, hi],
 * the rule in words, zero_off = 1 if 0 is accepted as well), in the order sd_set_qdisc takes them:
 *
 *     static const qdisc_param red_params[] = {
 *         {"kmin_bytes", SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},
 *         {"kmax_bytes", SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},
 *         {"pmax", SD_QDISC_PARAM_REAL, DBL_TRUE_MIN, 1, "in (0, 1]", 0},
 *         {NULL, 0, 0, 0, NULL, 0}};
 *
 * sd_set_qdisc checks every value against its declaration (finite, an integer for an INT one,
 * within [lo, hi]) and names the discipline, parameter, rule and value when it refuses one; the
 * provider's validate() then checks only the rules between parameters (kmax_bytes >= kmin_bytes).
 * Python reads the declarations (sd_qdisc_param_name / _kind / _range / _rule) and checks the
 * config models against them at import. */
#include <float.h>
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
static const qdisc_param no_params[] = {{NULL, 0, 0, 0, NULL, 0}};

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

static const qdisc_param red_params[] = {
    {"kmin_bytes", SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},    /* RED's Kmin */
    {"kmax_bytes", SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},    /* RED's Kmax */
    {"pmax", SD_QDISC_PARAM_REAL, DBL_TRUE_MIN, 1, "in (0, 1]", 0},    /* at Kmax (sd_set_queue: pmax 0 = drop_tail) */
    {NULL, 0, 0, 0, NULL, 0}};

static const char *red_validate(const double *p, char *why, size_t len)
{
    const qdisc_param *params = red_params;
    QDISC_NEED(p[1] >= p[0], 1, ">= kmin_bytes");
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

/* Parameter i of discipline `kind`: its declaration, NULL past the last or for an unknown kind. */
static const qdisc_param *param_of(const char *kind, uint32_t i)
{
    int k = kind_of(kind);
    if (k < 0)
        return NULL;
    for (uint32_t j = 0; j <= i; j++)
        if (!qdisc_table[k]->params[j].name)
            return NULL;
    return &qdisc_table[k]->params[i];
}

const char *sd_qdisc_param_name(const char *kind, uint32_t i)
{
    const qdisc_param *d = param_of(kind, i);
    return d ? d->name : NULL;
}

uint32_t sd_qdisc_param_kind(const char *kind, uint32_t i)
{
    const qdisc_param *d = param_of(kind, i);
    return d ? d->kind : 0;
}

int sd_qdisc_param_range(const char *kind, uint32_t i, double *lo, double *hi)
{
    const qdisc_param *d = param_of(kind, i);
    if (!d)
        return -1;
    *lo = d->lo;
    *hi = d->hi;
    return d->zero_off ? 1 : 0;
}

const char *sd_qdisc_param_rule(const char *kind, uint32_t i)
{
    const qdisc_param *d = param_of(kind, i);
    return d ? d->rule : NULL;
}

/* v as written: an integer in full below 2^53 (10, 1000000000000001), else the shortest text
 * that reads back as v (1.5, 1e+300, inf, NaN). */
static void value_text(char *out, size_t len, double v)
{
    if (v != v) {
        snprintf(out, len, "NaN");
        return;
    }
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        snprintf(out, len, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* NULL if v is what declaration d accepts, else the error (into why): "<name> must be <rule>, got <v>". */
static const char *param_check(const qdisc_param *d, double v, char *why, size_t len)
{
    int integer = d->kind == SD_QDISC_PARAM_INT;
    if (isfinite(v) && (!integer || v == floor(v)) && sd_param_in_range(d, v))
        return NULL;
    char got[32];
    value_text(got, sizeof got, v);
    snprintf(why, len, "%s must be %s%s, got %s", d->name, integer ? "an integer " : "", d->rule, got);
    return why;
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
    while (q->params[want].name)
        want++;
    if (n != want)
        return sd_fail(sim, SD_EINVAL, "qdisc %s takes %u parameters, got %u", q->name, want, n);
    char why[160];
    for (uint32_t i = 0; i < n; i++)     /* each value against its declaration, then the provider's own rules */
        if (param_check(&q->params[i], params[i], why, sizeof why))
            return sd_fail(sim, SD_EINVAL, "qdisc %s: %s", q->name, why);
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
