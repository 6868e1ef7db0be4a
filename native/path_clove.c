/* path_clove.c: Clove-ECN (Katta, Ghag, Hira, Keslassy, Bergman, Kim, Rexford, "Clove:
 * Congestion-Aware Load Balancing at the Virtual Edge", CoNEXT 2017, §3): flowlet switching at the
 * sender whose new flowlets go to the paths by weighted round robin; the weights start equal and
 * follow ECN: when an ACK echoes a CE mark for a path, that path's weight is cut by a third and
 * the cut is shared equally among the paths whose last feedback was unmarked (all the other
 * paths if none). The total weight stays n, so a path starved by cuts gains again when the
 * others are marked. This model cuts a path at most once per round (one RTT: until snd_una
 * passes what was sent when the round began), so one congestion event is one cut, not one per
 * marked packet; the WRR is the smooth one (nginx; each pick adds every weight to a credit and
 * takes the largest, ties to the lowest slot): exact shares, no randomness. */
#include "paths.h"

struct clove {
    double w[SD_MAX_PATHS];              /* current weights (sum = npaths) */
    double credit[SD_MAX_PATHS];         /* smooth WRR credits */
    uint64_t round_end;                  /* the round ends when snd_una reaches this sequence */
    uint16_t marked;                     /* slots whose last ACK echoed CE */
    uint16_t cut;                        /* slots cut in this round */
};
_Static_assert(sizeof(struct clove) <= POLICY_STATE_BYTES, "clove state exceeds policy_state");

static const path_param clove_params[] = {
    {"flowlet_gap_ps", SD_PATH_PARAM_INT, 0, 9223372036854775807.0, ">= 0 (0: every packet may take a new path)", 0},   /* p[0].i, as flowlet's */
    {NULL, 0, 0, 0, NULL, 0}};

static struct clove *st(sd_path_state *ps)
{
    return (struct clove *)(void *)ps->policy_state;
}

static void clove_init(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim;
    struct clove *c = st(ps);
    for (uint32_t i = 0; i < q->npaths; i++)
        c->w[i] = 1.0;
}

static uint32_t wrr_pick(struct clove *c, uint32_t n)
{
    double total = 0.0;
    uint32_t best = 0;
    for (uint32_t i = 0; i < n; i++) {
        c->credit[i] += c->w[i];
        total += c->w[i];
        if (c->credit[i] > c->credit[best])
            best = i;
    }
    c->credit[best] -= total;
    return best;
}

static uint32_t clove_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    if (ps->last_tx_ps < 0 || sim->now - ps->last_tx_ps > ps->p[0].i) {   /* a new flowlet */
        uint32_t i = wrr_pick(st(ps), q->npaths);
        ps->st->repaths += ps->last_tx_ps >= 0 && i != q->path_next;
        q->path_next = i;
    }
    return q->path_next;
}

static void clove_on_ack(sd_sim *sim, sd_qp *q, sd_path_state *ps, uint32_t slot, int ce, int nak)
{
    (void)sim, (void)nak;
    struct clove *c = st(ps);
    uint16_t bit = (uint16_t)(1u << slot);
    if (q->snd_una >= c->round_end) {    /* a round (one RTT) is over: every path may be cut again */
        c->cut = 0;
        c->round_end = q->snd_nxt > q->snd_una ? q->snd_nxt : q->snd_una + 1;
    }
    if (!ce) {
        c->marked &= (uint16_t)~bit;
        return;
    }
    c->marked |= bit;
    if (c->cut & bit || q->npaths < 2)
        return;
    c->cut |= bit;
    uint32_t n = q->npaths, share = 0;
    uint16_t all = (uint16_t)((1u << n) - 1u), to = (uint16_t)(all & ~c->marked);
    if (!to)
        to = (uint16_t)(all & ~bit);     /* every path marked: share among all the others */
    for (uint32_t i = 0; i < n; i++)
        share += (to >> i) & 1u;
    double d = c->w[slot] / 3.0;
    c->w[slot] -= d;
    for (uint32_t i = 0; i < n; i++)
        if ((to >> i) & 1u)
            c->w[i] += d / (double)share;
}

static void clove_weights(const sd_qp *q, const sd_path_state *ps, double *out)
{
    const struct clove *c = (const struct clove *)(const void *)ps->policy_state;
    for (uint32_t i = 0; i < q->npaths; i++)
        out[i] = c->w[i];
}

const path_ops path_clove = {
    .name = "clove", .params = clove_params, .flags = SD_PATHF_PARAMS, .init = clove_init, .choose = clove_choose,
    .on_ack = clove_on_ack, .weights = clove_weights,
};
