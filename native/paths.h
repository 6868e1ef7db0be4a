/* paths.h: the path-policy provider interface (private to native/paths.c and native/path_*.c).
 *
 * A path policy chooses the entropy (UDP source port) of each data packet of a QP from the path
 * set the control plane gave it. Each policy is a path_ops table in its own file; paths.c
 * registers them in path_table[] (one line each) and does what they all share: the per-slot
 * telemetry, the slot echo of ACKs, the setters and the decoded accessor (sd_get_paths). Python
 * discovers the policies and the parameters each reads from the registration
 * (sd_path_policy_name, sd_path_param_name). docs/path_policies.md walks through adding one. */
#ifndef SOFTDPU_PATHS_H
#define SOFTDPU_PATHS_H

#include "sim.h"

typedef struct path_ops {
    const char *name;                    /* what paths= says in a scenario */
    const char *const *params;           /* the path_params it reads, NULL-terminated */
    uint32_t flags;                      /* SD_PATHF_* (softdpu.h) */
    /* a new path set on QP qi (after the shared reset: slot 0 current, fresh telemetry) */
    void (*init)(sd_sim *sim, sd_qp *q, sd_path_state *ps);
    /* the slot (index into q->paths) of the QP's next data packet; called once per packet */
    uint32_t (*choose)(sd_sim *sim, sd_qp *q, sd_path_state *ps);
    /* an ACK/NAK echoed slot `slot` (after the shared telemetry); ce: the packet arrived CE-marked */
    void (*on_ack)(sd_sim *sim, sd_qp *q, sd_path_state *ps, uint32_t slot, int ce, int nak);
    /* a retransmission timeout of the QP (after the shared per-slot count) */
    void (*on_timeout)(sd_sim *sim, sd_qp *q, sd_path_state *ps);
    /* per-path weights as the policy uses them now (n = q->npaths); NULL: 1 each */
    void (*weights)(const sd_qp *q, const sd_path_state *ps, double *out);
} path_ops;

/* Policy-private state lives in ps->policy_state (POLICY_STATE_BYTES); a provider casts it. */
#define POLICY_STATE_BYTES (sizeof(((sd_path_state *)0)->policy_state))

/* A slot drawn uniformly among the QP's other slots (0 with one slot): flowlet, plb. */
static inline uint32_t path_other_slot(sd_qp *q, uint32_t cur)
{
    if (q->npaths < 2)
        return 0;
    uint32_t i = (uint32_t)(rng_next(&q->path_rng) % (q->npaths - 1));
    return i >= cur ? i + 1 : i;         /* uniform over the other slots */
}

extern const path_ops path_ecmp, path_spray_rr, path_spray_random, path_spray_weighted, path_reps, path_flowlet,
    path_plb, path_clove;

#endif
