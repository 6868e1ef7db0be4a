/* qdisc_codel.c: CoDel (Nichols, Jacobson, McGregor, Iyengar, RFC 8289) marking ECN instead of
 * dropping. At dequeue the packet's sojourn time (now - its enqueue time) is compared with
 * TARGET; once it has stayed at or above TARGET for INTERVAL (and more than one MTU is queued),
 * the queue enters the marking state: it marks this packet and then one packet at each
 * control-law time, next = previous + INTERVAL / sqrt(count), count growing by one per mark,
 * until the sojourn time falls below TARGET. On re-entering soon after leaving (within
 * 16 x INTERVAL of the last mark time) count resumes from count - lastcount (RFC 8289 §5.5).
 * Per RFC 8289 §5 a marking CoDel marks ECT packets where it would drop; a packet that is not
 * ECN-capable passes unmarked (this model does not drop at dequeue) but still advances the
 * schedule. RFC defaults: TARGET 5 ms, INTERVAL 100 ms (§4.2-4.3, for the open Internet; data-
 * centre queues use microseconds: the scenario's config gives them). */
#include <math.h>
#include <stdlib.h>

#include "sim.h"

struct qd_codel {
    int64_t first_above_time;            /* when sojourn first stayed >= target + interval, 0 = below */
    int64_t drop_next;                   /* next control-law marking time */
    uint32_t count;                      /* marks since entering the marking state */
    uint32_t lastcount;
    uint32_t dropping;                   /* 1 = in the marking state */
    uint32_t pad;
    int64_t target_ps, interval_ps;
    uint64_t maxpacket;                  /* bytes: below this much queued, never mark (RFC 8289 §5.2 MAXPACKET) */
};

static const qdisc_param codel_params[] = {
    {"target_ps", SD_QDISC_PARAM_INT, 1, CC_MAX_PS, "in [1, 1e15] ps", 0},              /* TARGET */
    {"interval_ps", SD_QDISC_PARAM_INT, 1, CC_MAX_PS, "in [1, 1e15] ps", 0},            /* INTERVAL */
    {"maxpacket_bytes", SD_QDISC_PARAM_INT, 0, CC_MAX_BYTES, "in [0, 1e15] bytes", 0},  /* MAXPACKET */
    {NULL, 0, 0, 0, NULL, 0}};

static const char *codel_validate(const double *p, char *why, size_t len)
{
    const qdisc_param *params = codel_params;
    QDISC_NEED(p[1] >= p[0], 1, ">= target_ps");
    return NULL;
}

static int codel_setup(sd_sim *sim, uint32_t port, uint32_t prio, const double *p)
{
    if (!sim->qdisc.enq_ps) {
        sim->qdisc.enq_ps = calloc(sim->cfg.pkt_pool, sizeof *sim->qdisc.enq_ps);
        if (!sim->qdisc.enq_ps)
            return sd_fail(sim, SD_ENOMEM, "out of memory for the enqueue times");
    }
    struct qd_codel *c = (struct qd_codel *)sim->qdisc.state[QDISC_KIND_codel_ecn] + port * SD_NUM_PRIO + prio;
    *c = (struct qd_codel){0};
    c->target_ps = (int64_t)p[0];
    c->interval_ps = (int64_t)p[1];
    c->maxpacket = (uint64_t)p[2];
    return SD_OK;
}

static int codel_enqueue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    (void)pt, (void)prio;
    sim->qdisc.enq_ps[p] = sim->now;
    return 1;
}

/* RFC 8289 §5.5 control_law(): t + interval / sqrt(count) */
static int64_t control_law(const struct qd_codel *c, int64_t t)
{
    return t + (int64_t)((double)c->interval_ps / sqrt((double)c->count));
}

static void codel_on_dequeue(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    struct qd_codel *c = (struct qd_codel *)sim->qdisc.state[QDISC_KIND_codel_ecn] +
                         (uint32_t)(pt - sim->ports) * SD_NUM_PRIO + prio;
    sd_packet *pk = &sim->pkts[p];
    int64_t now = sim->now, sojourn = now - sim->qdisc.enq_ps[p];
    int ok_to_mark = 0;
    /* dodequeue() (§5.4): bytes left behind <= MAXPACKET also counts as "below target" */
    if (sojourn < c->target_ps || pt->st->q_bytes[prio] <= c->maxpacket) {
        c->first_above_time = 0;
    } else if (c->first_above_time == 0) {
        c->first_above_time = now + c->interval_ps;
    } else if (now >= c->first_above_time) {
        ok_to_mark = 1;
    }
    if (c->dropping) {
        if (!ok_to_mark) {
            c->dropping = 0;
        } else if (now >= c->drop_next) {
            /* marking instead of dropping: one mark per dequeue, the schedule moves on (§5.5) */
            c->count++;
            if (pk->ecn != 0)
                qdisc_mark(sim, pt, pk);
            c->drop_next = control_law(c, c->drop_next);
        }
    } else if (ok_to_mark) {
        if (pk->ecn != 0)
            qdisc_mark(sim, pt, pk);
        c->dropping = 1;
        uint32_t delta = c->count - c->lastcount;
        c->count = 1;
        if (delta > 1 && now - c->drop_next < 16 * c->interval_ps)
            c->count = delta;
        c->drop_next = control_law(c, now);
        c->lastcount = c->count;
    }
}

const qdisc_ops qd_codel_ecn = {
    .name = "codel_ecn", .params = codel_params, .validate = codel_validate, .setup = codel_setup,
    .enqueue = codel_enqueue, .dequeue = NULL, .on_dequeue = codel_on_dequeue,
    .state_bytes = sizeof(struct qd_codel), .per_port = 0,       /* one per queue */
};
