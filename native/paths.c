/* paths.c: the entropy (UDP source port) of each data packet of a QP, chosen from the path set
 * the control plane gave it (controlplane/multipath.py owns the policy; this is the per-packet
 * choice). ecmp keeps one entropy, so switches hash the flow onto one path; spray_rr cycles
 * through the set; spray_random draws uniformly; spray_weighted draws by weight (cumulative
 * weights, last = total). Switches hash whatever entropy the packet carries (switch.c). */
#include "sim.h"

uint16_t path_pick(sd_qp *q)
{
    uint32_t i = 0;
    switch (q->path_policy) {
    case SD_PATH_SPRAY_RR:
        i = q->path_next;
        q->path_next = i + 1 < q->npaths ? i + 1 : 0;
        break;
    case SD_PATH_SPRAY_RANDOM:
        i = (uint32_t)(rng_next(&q->path_rng) % q->npaths);
        break;
    case SD_PATH_SPRAY_WEIGHTED: {
        uint32_t r = (uint32_t)(rng_next(&q->path_rng) % q->path_weight[q->npaths - 1]);
        while (q->path_weight[i] <= r)
            i++;
        break;
    }
    default:
        break;
    }
    return q->paths[i];
}
