/* paths.h: the path-policy provider interface (private to native/paths.c and native/path_*.c).
 *
 * A path policy chooses the entropy (UDP source port) of each data packet of a QP from the path
 * set the control plane gave it. Each policy is a path_ops table in its own file
 * (native/path_<name>.c: dataplane/build.py compiles every one it finds), registered by one line
 * in SD_PATH_POLICIES below; paths.c builds path_table[] from that list and does what all
 * policies share: the per-slot telemetry, the slot echo of ACKs, the parameter store and its
 * setter (sd_set_path_param, by name), and the decoded accessor (sd_get_paths). Python discovers
 * the policies and the parameters each declares from the registration (sd_path_policy_name,
 * sd_path_param_name, sd_path_param_kind). docs/path_policies.md walks through adding one. */
#ifndef SOFTDPU_PATHS_H
#define SOFTDPU_PATHS_H

#include "sim.h"

/* The registry, one line per policy: X(<name>) registers `const path_ops path_<name>` (its file
 * defines it). The order is the policies' indices (ecmp first: a QP without a path set reports it). */
#define SD_PATH_POLICIES(X)                                                                              \
    X(ecmp)               /* paths.c */                                                                 \
    X(spray_rr)           /* path_spray.c */                                                            \
    X(spray_random)       /* path_spray.c */                                                            \
    X(spray_weighted)     /* path_spray.c */                                                            \
    X(reps)               /* path_reps.c */                                                             \
    X(flowlet)            /* path_flowlet.c */                                                          \
    X(plb)                /* path_plb.c */                                                              \
    X(clove)              /* path_clove.c */

/* A parameter a policy reads (its path_params key): name, kind (SD_PATH_PARAM_INT: ps->p[i].i;
 * SD_PATH_PARAM_REAL: ps->p[i].d) and the closed range sd_set_path_param accepts, with the rule
 * in words for its error ("must be <rule>, got <value>"). Two policies that read the same name
 * declare it alike (the Python config models check the same). */
typedef sd_param_decl path_param;    /* sim.h: the declaration both provider kinds use */

typedef struct path_ops {
    const char *name;                    /* what paths= says in a scenario */
    const path_param *params;            /* the path_params it reads (ps->p[i]), ended by {NULL} (<= 8) */
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

#define SD_PATH_EXTERN_(name) extern const path_ops path_##name;
SD_PATH_POLICIES(SD_PATH_EXTERN_)
#undef SD_PATH_EXTERN_

/* No parameters. */
extern const path_param path_no_params[];
/* The name's value of the QP (paths.c; for telemetry and the accessor, not per packet): 0 with
 * *kind = SD_PATH_PARAM_INT for a name it has not been given or no policy declares. */
sd_path_value path_param_value(const sd_path_state *ps, const char *name, uint32_t *kind);

#endif
