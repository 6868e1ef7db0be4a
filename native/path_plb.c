/* path_plb.c: PLB (Qureshi et al., SIGCOMM'22; Linux net/ipv4/tcp_plb.c): one slot at a time; a
 * round (one RTT: until snd_una passes what was sent when it began) is congested if its CE
 * fraction exceeds plb_cong_thresh; after plb_rehash_rounds congested rounds in a row, move to
 * another slot; an RTO moves at once and suspends congestion repaths for [1, 2) x plb_suspend_ps. */
#include "paths.h"

static const path_param plb_params[] = {
    {"plb_cong_thresh", SD_PATH_PARAM_REAL, 0, 1, "in [0, 1]", 0},          /* p[THRESH].d */
    {"plb_rehash_rounds", SD_PATH_PARAM_INT, 1, 4294967295.0, "in [1, 2^32 - 1]", 0},  /* p[ROUNDS].i */
    {"plb_suspend_ps", SD_PATH_PARAM_INT, 0, 9223372036854775807.0, ">= 0", 0},            /* p[SUSPEND].i */
    {NULL, 0, 0, 0, NULL, 0}};
enum { THRESH, ROUNDS, SUSPEND };

static uint32_t plb_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim, (void)ps;
    return q->path_next;
}

static void plb_repath(sd_qp *q, sd_path_state *ps)
{
    q->path_next = path_other_slot(q, q->path_next);
    ps->plb_cong_rounds = 0;
    ps->st->repaths++;
}

static void plb_on_ack(sd_sim *sim, sd_qp *q, sd_path_state *ps, uint32_t slot, int ce, int nak)
{
    (void)slot, (void)nak;
    ps->plb_acks++;
    ps->plb_ce += (uint32_t)ce;
    if (q->snd_una >= ps->plb_round_end) {            /* a round (one RTT) is over */
        int congested = (double)ps->plb_ce > ps->p[THRESH].d * (double)ps->plb_acks;
        ps->plb_cong_rounds = congested ? ps->plb_cong_rounds + 1 : 0;
        if (ps->plb_cong_rounds >= ps->p[ROUNDS].i && sim->now >= ps->plb_suspend_until)
            plb_repath(q, ps);
        ps->plb_acks = ps->plb_ce = 0;
        ps->plb_round_end = q->snd_nxt > q->snd_una ? q->snd_nxt : q->snd_una + 1;
    }
}

static void plb_on_timeout(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    plb_repath(q, ps);
    ps->plb_suspend_until = sim->now + ps->p[SUSPEND].i +
                            (int64_t)(rng_uniform(&q->path_rng) * (double)ps->p[SUSPEND].i);
}

const path_ops path_plb = {
    .name = "plb", .params = plb_params, .flags = SD_PATHF_PARAMS, .choose = plb_choose, .on_ack = plb_on_ack,
    .on_timeout = plb_on_timeout,
};
