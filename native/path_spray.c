/* path_spray.c: the stateless per-packet policies. spray_rr cycles through the slots,
 * spray_random draws one uniformly, spray_weighted draws by the set's integer weights (kept
 * cumulative in the path state's weight_cum, last = total: one draw and a short scan per packet). Packet
 * spraying over many entropies: AWS SRD (Shalev et al., IEEE Micro 2020), NDP (Handley et al.,
 * SIGCOMM'17); weighted: WCMP (Zhou et al., EuroSys'14) at the host. */
#include "paths.h"

static uint32_t rr_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim, (void)ps;
    uint32_t i = q->path_next;
    q->path_next = i + 1 < q->npaths ? i + 1 : 0;
    return i;
}

static uint32_t random_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim, (void)ps;
    return (uint32_t)(rng_next(&q->path_rng) % q->npaths);
}

static uint32_t weighted_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim;
    uint32_t i = 0;
    uint32_t r = (uint32_t)(rng_next(&q->path_rng) % ps->weight_cum[q->npaths - 1]);
    while (ps->weight_cum[i] <= r)
        i++;
    return i;
}

static void weighted_weights(const sd_qp *q, const sd_path_state *ps, double *out)
{
    for (uint32_t i = 0; i < q->npaths; i++)
        out[i] = (double)(ps->weight_cum[i] - (i ? ps->weight_cum[i - 1] : 0));
}

const path_ops path_spray_rr = {
    .name = "spray_rr", .params = path_no_params, .flags = 0, .choose = rr_choose,
};

const path_ops path_spray_random = {
    .name = "spray_random", .params = path_no_params, .flags = 0, .choose = random_choose,
};

const path_ops path_spray_weighted = {
    .name = "spray_weighted", .params = path_no_params, .flags = SD_PATHF_WEIGHTS, .choose = weighted_choose,
    .weights = weighted_weights,
};
