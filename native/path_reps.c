/* path_reps.c: REPS (Bonato et al. 2024, "REPS: Recycled Entropy Packet Spraying"): reuse the
 * slots whose ACKs came back unmarked, oldest first; with none to reuse, explore a random slot;
 * a marked (or NAKed) slot is not recycled. The recycled slots wait in a ring of 32. */
#include "paths.h"

static uint32_t reps_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim;
    uint32_t i;
    if (ps->reps_len > 0) {
        i = ps->reps_ring[ps->reps_head];
        ps->reps_head = (ps->reps_head + 1) & 31u;
        ps->reps_len--;
    } else {
        i = (uint32_t)(rng_next(&q->path_rng) % q->npaths);
        ps->st->reps_explored++;
    }
    return i;
}

static void reps_on_ack(sd_sim *sim, sd_qp *q, sd_path_state *ps, uint32_t slot, int ce, int nak)
{
    (void)sim, (void)q;
    if (ce || nak)
        return;
    if (ps->reps_len == 32u) {           /* full: forget the oldest */
        ps->reps_head = (ps->reps_head + 1) & 31u;
        ps->reps_len--;
    }
    ps->reps_ring[(ps->reps_head + ps->reps_len) & 31u] = (uint8_t)slot;
    ps->reps_len++;
}

/* SD_PATHF_PARAMS: it reads none, but as before the providers it needs the QP's parameters set */
const path_ops path_reps = {
    .name = "reps", .params = path_no_params, .flags = SD_PATHF_PARAMS, .choose = reps_choose, .on_ack = reps_on_ack,
};
