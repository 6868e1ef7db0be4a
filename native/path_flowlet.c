/* path_flowlet.c: flowlet switching at the host (LetFlow, Vanini et al., NSDI'17: a random path
 * per flowlet; flowlets: Kandula et al., "FLARE", CCR 2007): one slot at a time, a new random one
 * after an idle gap longer than flowlet_gap_ps. */
#include "paths.h"

static const path_param flowlet_params[] = {
    {"flowlet_gap_ps", SD_PATH_PARAM_INT, 0, 9223372036854775807.0, ">= 0 (0: every packet may take a new path)", 0},   /* p[0].i */
    {NULL, 0, 0, 0, NULL, 0}};

static uint32_t flowlet_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    if (ps->last_tx_ps >= 0 && sim->now - ps->last_tx_ps > ps->p[0].i) {
        q->path_next = path_other_slot(q, q->path_next);
        ps->st->repaths++;
    }
    return q->path_next;
}

const path_ops path_flowlet = {
    .name = "flowlet", .params = flowlet_params, .flags = SD_PATHF_PARAMS, .choose = flowlet_choose,
};
