/* cc.c: congestion-control plumbing. Every CC event, for a built-in C twin or a Python plug-in,
 * goes through cc_event(): it fills an sd_cc_io from the QP, runs the algorithm, applies what the
 * algorithm wrote (rate, window, timers, byte counter) and records the decision trace. Timers are
 * lazy: one pending event per (QP, timer); re-arming later only moves the deadline.
 * While a QP has nothing outstanding its CC timers are parked, and resume when it gets data. */
#include <stdio.h>
#include <string.h>

#include "sim.h"

static const char *const event_names[SD_NUM_EV] = {"start", "ack", "cnp", "nak", "timeout", "timer", "bytes"};

const char *cc_bad(char *why, size_t len, const char *name, const char *rule, double value)
{
    if (value != value)
        snprintf(why, len, "%s must be %s, got NaN", name, rule);
    else
        snprintf(why, len, "%s must be %s, got %g", name, rule, value);
    return why;
}

const cc_twin *cc_twin_of(uint32_t kind)
{
    switch (kind) {
    case SD_CC_DCQCN:
        return &cc_dcqcn;
    case SD_CC_DCTCP:
        return &cc_dctcp;
    case SD_CC_TIMELY:
        return &cc_timely;
    case SD_CC_HPCC:
        return &cc_hpcc;
    case SD_CC_SWIFT:
        return &cc_swift;
    case SD_CC_NSCC:
        return &cc_nscc;
    default:
        return NULL;
    }
}

const char *cc_name(const sd_sim *sim, uint32_t qi)
{
    const cc_twin *tw = cc_twin_of(sim->qps[qi].cc_kind);
    if (tw)
        return tw->name;
    if (sim->qps[qi].cc_kind == SD_CC_NONE)
        return "none";
    return sim->py_cc_name[0] ? sim->py_cc_name : "python plug-in";
}

static void cc_arm_timer(sd_sim *sim, uint32_t qi, uint32_t i)
{
    sd_qp *q = &sim->qps[qi];
    int64_t t = q->timer_at[i];
    if (t < 0)
        return;
    if (t < sim->now)
        t = q->timer_at[i] = sim->now;
    if (q->timer_queued[i] < 0 || t < q->timer_queued[i]) {
        q->timer_queued[i] = t;
        ev_push(sim, t, EV_CC_TIMER, qi * SD_CC_TIMERS + i, SD_NONE);
    }
}

void cc_event(sd_sim *sim, uint32_t qi, uint32_t type, const sd_cc_io *in)
{
    sd_qp *q = &sim->qps[qi];
    if (q->cc_kind == SD_CC_NONE || !(q->cc_evmask & (1u << type)) || sim->cb_error)
        return;
    sd_cc_io io;
    if (in)
        io = *in;
    else
        memset(&io, 0, sizeof io);
    io.now_ps = sim->now;
    io.qp = qi;
    io.event = type;
    io.line_rate_bps = q->line_rate_bps;
    io.rate_bps = q->st->rate_bps;
    io.window_bytes = q->st->window_bytes;
    io.inflight_bytes = (q->snd_nxt - q->snd_una) * q->mtu_payload;  /* upper bound: full-MTU packets */
    io.snd_una = q->snd_una;
    io.snd_nxt = q->snd_nxt;
    io.mtu_payload = q->mtu_payload;
    for (int i = 0; i < SD_CC_TIMERS; i++)
        io.timer_at[i] = q->timer_at[i];
    io.byte_threshold = q->byte_threshold;
    io.byte_reset = 0;
    q->st->cc_events++;

    if (q->cc_kind == SD_CC_PYTHON) {
        if (sd_cc_python_event(sim->userdata, &io) != 0) {
            sim->cb_error = 1;
            return;
        }
        if (sim->wall_deadline_ns)       /* a plug-in may be slow: the run loop reads the wall clock next */
            sim->poll_at = sim->ctr.events;
    } else {
        cc_twin_of(q->cc_kind)->event(sim->ccp[q->cc_param].v, q->cc_state, &io);
    }

    double rate = io.rate_bps;
    if (!(rate >= (double)SD_MIN_RATE_BPS)) {
        /* NaN, zero, negative or below the floor: an error, never a divisor (ser_ps) */
        char val[32];
        if (rate != rate)
            snprintf(val, sizeof val, "nan");
        else
            snprintf(val, sizeof val, "%g", rate);
        sd_fail(sim, SD_ECC, "cc '%s' set rate_bps=%s (QP %u, event %s, t=%lld ps): a rate must be a number >= "
                "%u bit/s (the rate floor, 1 Mb/s)", cc_name(sim, qi), val, qi, event_names[type],
                (long long)sim->now, (unsigned)SD_MIN_RATE_BPS);
        sim->cc_fault = 1;
        sim->cb_error = 1;           /* stops the run at the end of this event */
        return;
    }
    for (uint32_t i = 0; i < SD_CC_TIMERS; i++) {
        /* a timer (re-)armed at or before now would fire at this same instant, again and again if
         * the CC re-arms it when it fires: the run would make no progress. An error, like a rate
         * below the floor, checked before anything the CC wrote is applied. (A deadline that was
         * already in the past and is left unchanged is a parked timer: it fires at once on resume.) */
        int64_t d = io.timer_at[i];
        if (d != q->timer_at[i] && d >= 0 && d <= sim->now) {
            sd_fail(sim, SD_ECC, "cc '%s' armed timer %u at t=%lld ps (QP %u, event %s, t=%lld ps): a timer must "
                    "be later than now (-1 = off), else it fires at this instant and the run makes no progress",
                    cc_name(sim, qi), i, (long long)d, qi, event_names[type], (long long)sim->now);
            sim->cc_fault = 1;
            sim->cb_error = 1;
            return;
        }
    }
    if (rate > q->line_rate_bps)
        rate = q->line_rate_bps;
    if (rate != q->st->rate_bps) {
        /* re-pace the packet already scheduled (HPCC repo RdmaHw::ChangeRate) */
        if (q->next_tx_ps > sim->now && q->last_wire > 0)
            q->next_tx_ps += ser_ps(q->last_wire, (uint64_t)rate) - ser_ps(q->last_wire, (uint64_t)q->st->rate_bps);
        q->st->rate_bps = rate;
    }
    q->st->window_bytes = io.window_bytes;
    for (uint32_t i = 0; i < SD_CC_TIMERS; i++) {
        if (io.timer_at[i] != q->timer_at[i]) {
            q->timer_at[i] = io.timer_at[i] < 0 ? -1 : io.timer_at[i];
            cc_arm_timer(sim, qi, i);
        }
    }
    q->byte_threshold = io.byte_threshold;
    if (io.byte_reset)
        q->bytes_counted = 0;

    if (sim->trace && sim->trace_len < sim->cfg.trace_capacity) {
        sd_cc_trace *r = &sim->trace[sim->trace_len++];
        r->t_ps = sim->now;
        r->rate_bps = q->st->rate_bps;
        r->window_bytes = q->st->window_bytes;
        memcpy(r->v, io.trace, sizeof r->v);
        r->qp = qi;
        r->event = type;
    }
}

/* Nothing to send: no request outstanding or queued, no READ response owed (timers park). */
static int qp_idle(const sd_qp *q)
{
    return q->snd_una == q->snd_end && q->rd_len == 0;
}

void cc_timer_fire(sd_sim *sim, uint32_t slot)
{
    uint32_t qi = slot / SD_CC_TIMERS, i = slot % SD_CC_TIMERS;
    sd_qp *q = &sim->qps[qi];
    if (q->timer_queued[i] != sim->now)
        return;                      /* stale: superseded by an earlier re-arm */
    q->timer_queued[i] = -1;
    int64_t d = q->timer_at[i];
    if (d < 0)
        return;
    if (d > sim->now) {
        cc_arm_timer(sim, qi, i);
        return;
    }
    if (qp_idle(q))
        return;                      /* parked: cc_resume_timers() re-arms it */
    q->timer_at[i] = -1;
    sd_cc_io in;
    memset(&in, 0, sizeof in);
    in.timer_id = i;
    cc_event(sim, qi, SD_EV_TIMER, &in);
    nic_pull_port(sim, q->port);
}

void cc_resume_timers(sd_sim *sim, uint32_t qi)
{
    for (uint32_t i = 0; i < SD_CC_TIMERS; i++)
        cc_arm_timer(sim, qi, i);
}

void cc_count_bytes(sd_sim *sim, uint32_t qi, uint32_t payload)
{
    sd_qp *q = &sim->qps[qi];
    if (q->byte_threshold == 0)
        return;
    q->bytes_counted += payload;
    if (q->bytes_counted >= q->byte_threshold) {
        q->bytes_counted = 0;
        cc_event(sim, qi, SD_EV_BYTES, NULL);
    }
}
