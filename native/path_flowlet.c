/* path_flowlet.c: flowlet switching at the host (LetFlow, Vanini et al., NSDI'17: a random path
 * per flowlet; flowlets: Kandula et al., "FLARE", CCR 2007): one slot at a time, a new random one
 * after an idle gap longer than flowlet_gap_ps. */
#include "paths.h"

static const char *const flowlet_params[] = {"flowlet_gap_ps", NULL};

static uint32_t flowlet_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    if (ps->last_tx_ps >= 0 && sim->now - ps->last_tx_ps > ps->flowlet_gap_ps) {
        q->path_next = path_other_slot(q, q->path_next);
        ps->st->repaths++;
    }
    return q->path_next;
}

const path_ops path_flowlet = {
    .name = "flowlet", .params = flowlet_params, .flags = SD_PATHF_PARAMS, .choose = flowlet_choose,
};
