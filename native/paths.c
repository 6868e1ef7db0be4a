/* paths.c: the entropy (UDP source port) of each data packet of a QP, chosen from the path set
 * the control plane gave it (controlplane/transport/multipath.py owns the sets; this is the per-packet
 * choice), and the per-path feedback ACKs bring back. Switches hash whatever entropy the packet
 * carries (switch.c). Each data packet carries its path slot; the ACK that acknowledges it echoes
 * the slot and whether it arrived CE-marked (SD_PKT_* in softdpu.h), which feeds the per-slot
 * telemetry for the control plane (sent, ACKs, CE echoes, last RTT, and timeouts, charged to the
 * slot of the oldest outstanding packet) and then the QP's policy.
 *
 * The policies are providers (paths.h): one file each, registered in path_table[] below --
 * ecmp (here), spray_rr / spray_random / spray_weighted (path_spray.c), reps (path_reps.c),
 * flowlet (path_flowlet.c), plb (path_plb.c), clove (path_clove.c). docs/path_policies.md. */
#include <stdlib.h>
#include <string.h>

#include "paths.h"

/* ------------------------------------------------------------------ ecmp: one entropy */
static const char *const no_params[] = {NULL};

static uint32_t ecmp_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim, (void)q, (void)ps;
    return 0;
}

const path_ops path_ecmp = {
    .name = "ecmp", .params = no_params, .flags = SD_PATHF_ONE, .choose = ecmp_choose,
};

/* ------------------------------------------------------------------ the registry: one line each */
static const path_ops *const path_table[] = {
    &path_ecmp,
    &path_spray_rr,
    &path_spray_random,
    &path_spray_weighted,
    &path_reps,
    &path_flowlet,
    &path_plb,
    &path_clove,
};
#define NUM_POLICIES ((uint32_t)(sizeof path_table / sizeof path_table[0]))
_Static_assert(NUM_POLICIES <= 255, "policy index must fit the QP's path_policy");

uint32_t sd_path_policy_count(void)
{
    return NUM_POLICIES;
}

const char *sd_path_policy_name(uint32_t policy)
{
    return policy < NUM_POLICIES ? path_table[policy]->name : NULL;
}

const char *sd_path_param_name(uint32_t policy, uint32_t i)
{
    if (policy >= NUM_POLICIES)
        return NULL;
    for (uint32_t j = 0; j <= i; j++)
        if (!path_table[policy]->params[j])
            return NULL;
    return path_table[policy]->params[i];
}

uint32_t sd_path_policy_flags(uint32_t policy)
{
    return policy < NUM_POLICIES ? path_table[policy]->flags : 0;
}

/* ------------------------------------------------------------------ per packet */
uint16_t path_pick(sd_sim *sim, uint32_t qi, uint64_t seq, uint8_t *slot_flags)
{
    sd_qp *q = &sim->qps[qi];
    sd_path_state *ps = &sim->paths.state[qi];
    uint32_t i = path_table[q->path_policy]->choose(sim, q, ps);
    ps->last_tx_ps = sim->now;
    ps->st->sent[i]++;
    ps->slot_of[seq & 1023u] = (uint8_t)i;
    *slot_flags = (uint8_t)((i + 1u) << SD_PKT_SLOT_SHIFT);
    return q->st->paths[i];
}

void path_feedback(sd_sim *sim, uint32_t qi, const sd_packet *ack, int nak)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t slot = (ack->flags & SD_PKT_SLOT_MASK) >> SD_PKT_SLOT_SHIFT;
    if (slot == 0 || slot > q->npaths)
        return;
    slot--;
    sd_path_state *ps = &sim->paths.state[qi];
    int ce = (ack->flags & SD_PKT_CE_ECHO) != 0;
    ps->st->acks[slot]++;
    ps->st->ce[slot] += (uint64_t)ce;
    if (ack->ts_ps >= 0)
        ps->st->rtt_ps[slot] = sim->now - ack->ts_ps;
    const path_ops *p = path_table[q->path_policy];
    if (p->on_ack)
        p->on_ack(sim, q, ps, slot, ce, nak);
}

void path_timeout(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    if (q->npaths == 0)
        return;
    sd_path_state *ps = &sim->paths.state[qi];
    uint32_t s = ps->slot_of[q->snd_una & 1023u];
    if (s < q->npaths)
        ps->st->timeouts[s]++;               /* the oldest outstanding packet's path timed out */
    const path_ops *p = path_table[q->path_policy];
    if (p->on_timeout)
        p->on_timeout(sim, q, ps);
}

/* ------------------------------------------------------------------ setup */
static uint64_t seed_mix(uint64_t seed, uint64_t stream)    /* as sim.c's: one stream per QP */
{
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
    return rng_next(&s);
}

/* The policies with SD_PATHF_PARAMS read per-QP parameters that only sd_set_path_params gives (the
 * control plane holds their defaults): plb_rehash_rounds is >= 1 once they are set. */
static int path_params_set(const sd_path_state *ps)
{
    return ps->plb_rehash_rounds >= 1;
}

int sd_set_paths(sd_sim *sim, uint32_t qp, uint32_t policy, const uint32_t *entropies, const uint32_t *weights,
                 uint32_t n, uint32_t ar_classes)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "paths: qp %u does not exist", qp);
    if (policy >= NUM_POLICIES)
        return sd_fail(sim, SD_EINVAL, "paths: unknown policy %u (%u registered)", policy, NUM_POLICIES);
    const path_ops *p = path_table[policy];
    if (ar_classes > (SD_AR_CLASS_DATA | SD_AR_CLASS_ACK | SD_AR_CLASS_CNP))
        return sd_fail(sim, SD_EINVAL, "paths: ar_classes mask %u has bits beyond data (1), ack (2), cnp (4)",
                       ar_classes);
    if (n == 0)
        return sd_fail(sim, SD_EINVAL, "paths: the path set (entropies) is empty");
    if (n > SD_MAX_PATHS)
        return sd_fail(sim, SD_EINVAL, "paths: at most %u entropies, got %u", (unsigned)SD_MAX_PATHS, n);
    if (p->flags & SD_PATHF_ONE && n != 1)
        return sd_fail(sim, SD_EINVAL, "paths: policy %s takes one entropy, got %u", p->name, n);
    if (p->flags & SD_PATHF_WEIGHTS && !weights)
        return sd_fail(sim, SD_EINVAL, "paths: %s needs weights", p->name);
    int rc = paths_reserve(sim, qp);
    if (rc != SD_OK)
        return rc;
    if (p->flags & SD_PATHF_PARAMS && !path_params_set(&sim->paths.state[qp]))
        return sd_fail(sim, SD_EINVAL, "paths: qp %u: policy %s needs its parameters first (sd_set_path_params); "
                       "the data plane has no defaults of its own", qp, p->name);
    sd_qp *q = &sim->qps[qp];
    uint32_t cum = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (entropies[i] > 0xFFFF)
            return sd_fail(sim, SD_EINVAL, "paths: entropies[%u] = %u is not a UDP port", i, entropies[i]);
        if (weights && (weights[i] < 1 || weights[i] > 1000000))
            return sd_fail(sim, SD_EINVAL, "paths: weights[%u] must be in [1, 1e6], got %u", i, weights[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        q->st->paths[i] = (uint16_t)entropies[i];
        cum += weights ? weights[i] : 1u;
        q->st->path_weight[i] = cum;
    }
    q->npaths = n;
    q->path_policy = policy;
    q->path_next = 0;
    q->ar = ar_classes;
    q->path_rng = seed_mix(sim->cfg.seed, 0x5041000000ull + qp);
    sd_path_state *ps = &sim->paths.state[qp];
    sd_path_state keep = *ps;            /* a new set: fresh telemetry, same parameters and suspension */
    memset(ps, 0, sizeof *ps);
    ps->st = keep.st;
    memset(ps->st, 0, sizeof *ps->st);
    ps->flowlet_gap_ps = keep.flowlet_gap_ps;
    ps->plb_cong_thresh = keep.plb_cong_thresh;
    ps->plb_rehash_rounds = keep.plb_rehash_rounds;
    ps->plb_suspend_ps = keep.plb_suspend_ps;
    ps->plb_suspend_until = keep.plb_suspend_until;
    ps->last_tx_ps = -1;
    for (uint32_t i = 0; i < SD_MAX_PATHS; i++)
        ps->st->rtt_ps[i] = -1;
    if (p->init)
        p->init(sim, q, ps);
    qp_publish(sim, qp);
    path_publish(sim, qp);
    return SD_OK;
}

int sd_set_path_params(sd_sim *sim, uint32_t qp, int64_t flowlet_gap_ps, double plb_cong_thresh,
                       uint32_t plb_rehash_rounds, int64_t plb_suspend_ps)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "path_params: qp %u does not exist", qp);
    if (flowlet_gap_ps < 0)
        return sd_fail(sim, SD_EINVAL, "path_params: flowlet_gap_ps must be >= 0 (0: every packet may take a new "
                       "path), got %lld", (long long)flowlet_gap_ps);
    if (!(plb_cong_thresh >= 0.0 && plb_cong_thresh <= 1.0))
        return sd_fail(sim, SD_EINVAL, "path_params: plb_cong_thresh must be in [0, 1], got %g", plb_cong_thresh);
    if (plb_rehash_rounds < 1)
        return sd_fail(sim, SD_EINVAL, "path_params: plb_rehash_rounds must be >= 1");
    if (plb_suspend_ps < 0)
        return sd_fail(sim, SD_EINVAL, "path_params: plb_suspend_ps must be >= 0");
    int rc = paths_reserve(sim, qp);
    if (rc != SD_OK)
        return rc;
    sd_path_state *ps = &sim->paths.state[qp];
    ps->flowlet_gap_ps = flowlet_gap_ps;
    ps->plb_cong_thresh = plb_cong_thresh;
    ps->plb_rehash_rounds = plb_rehash_rounds;
    ps->plb_suspend_ps = plb_suspend_ps;
    path_publish(sim, qp);
    return SD_OK;
}

sd_path_stats *sd_path_states(sd_sim *sim, uint32_t *count)
{
    *count = sim->paths.state ? (sim->num_qps < sim->paths.cap ? sim->num_qps : sim->paths.cap) : 0;
    return sim->paths.stats;
}

/* ------------------------------------------------------------------ the decoded accessor */
/* The path_params block as sd_get_paths reads it: integers exactly, the threshold as a double. */
static void param_value(const sd_path_state *ps, const char *name, double *d, int64_t *i)
{
    *d = 0.0;
    *i = 0;
    if (strcmp(name, "flowlet_gap_ps") == 0)
        *i = ps->flowlet_gap_ps;
    else if (strcmp(name, "plb_rehash_rounds") == 0)
        *i = ps->plb_rehash_rounds;
    else if (strcmp(name, "plb_suspend_ps") == 0)
        *i = ps->plb_suspend_ps;
    else if (strcmp(name, "plb_cong_thresh") == 0)
        *d = ps->plb_cong_thresh;
    if (*i)
        *d = (double)*i;
}

int sd_get_paths(sd_sim *sim, uint32_t qp, sd_path_set *out)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "paths: qp %u does not exist", qp);
    const sd_qp *q = &sim->qps[qp];
    memset(out, 0, sizeof *out);
    out->ar_classes = q->ar;
    if (q->npaths == 0) {                /* no path set: the QP's own sport, ECMP */
        out->policy = 0;
        out->n = 1;
        out->entropy[0] = q->sport;
        out->weight[0] = 1.0;
        return SD_OK;
    }
    const path_ops *p = path_table[q->path_policy];
    const sd_path_state *ps = &sim->paths.state[qp];
    out->policy = q->path_policy;
    out->n = q->npaths;
    for (uint32_t i = 0; i < q->npaths; i++) {
        out->entropy[i] = q->st->paths[i];
        out->weight[i] = 1.0;
    }
    if (p->weights)
        p->weights(q, ps, out->weight);
    while (p->params[out->nparams] && out->nparams < SD_PATH_MAX_PARAMS) {
        param_value(ps, p->params[out->nparams], &out->param[out->nparams], &out->param_int[out->nparams]);
        out->nparams++;
    }
    return SD_OK;
}
