/* paths.c: the entropy (UDP source port) of each data packet of a QP, chosen from the path set
 * the control plane gave it (controlplane/transport/multipath.py owns the sets; this is the per-packet
 * choice), and the per-path feedback ACKs bring back. Switches hash whatever entropy the packet
 * carries (switch.c). Each data packet carries its path slot; the ACK that acknowledges it echoes
 * the slot and whether it arrived CE-marked (SD_PKT_* in softdpu.h), which feeds the per-slot
 * telemetry for the control plane (sent, ACKs, CE echoes, last RTT, and timeouts, charged to the
 * slot of the oldest outstanding packet) and then the QP's policy.
 *
 * The policies are providers (paths.h): one file each, registered by one line in paths.h's
 * SD_PATH_POLICIES -- ecmp (here), spray_rr / spray_random / spray_weighted (path_spray.c), reps
 * (path_reps.c), flowlet (path_flowlet.c), plb (path_plb.c), clove (path_clove.c). Their
 * parameters are declared by name and kept here, per QP (sd_set_path_param). docs/path_policies.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

/* ------------------------------------------------------------------ ecmp: one entropy */
const path_param path_no_params[] = {{NULL, 0, 0, 0, NULL, 0}};

static uint32_t ecmp_choose(sd_sim *sim, sd_qp *q, sd_path_state *ps)
{
    (void)sim, (void)q, (void)ps;
    return 0;
}

const path_ops path_ecmp = {
    .name = "ecmp", .params = path_no_params, .flags = SD_PATHF_ONE, .choose = ecmp_choose,
};

/* ------------------------------------------------------------------ the registry (paths.h) */
#define SD_PATH_ENTRY_(name) &path_##name,
static const path_ops *const path_table[] = {SD_PATH_POLICIES(SD_PATH_ENTRY_)};
#undef SD_PATH_ENTRY_
#define NUM_POLICIES ((uint32_t)(sizeof path_table / sizeof path_table[0]))
_Static_assert(NUM_POLICIES <= 255, "policy index must fit the QP's path_policy");

static uint32_t nparams(const path_ops *p)
{
    uint32_t n = 0;
    while (p->params[n].name)
        n++;
    return n;
}

/* The parameter names of all policies, each once, in registry order: name n's id is n (the
 * QP's named[n]). *decl: its first declaration. SD_NONE for a name no policy declares. Setup
 * time only (a few string compares). */
static uint32_t path_name_id(const char *name, const path_param **decl)
{
    uint32_t id = 0;
    for (uint32_t k = 0; k < NUM_POLICIES; k++)
        for (const path_param *a = path_table[k]->params; a->name; a++) {
            int seen = 0;
            for (uint32_t j = 0; j <= k && !seen; j++)
                for (const path_param *b = path_table[j]->params; b->name && b != a; b++)
                    if (strcmp(a->name, b->name) == 0) {
                        seen = 1;
                        break;
                    }
            if (seen)
                continue;
            if (name && strcmp(a->name, name) == 0) {
                if (decl)
                    *decl = a;
                return id;
            }
            id++;
        }
    return name ? SD_NONE : id;          /* NULL name: how many there are */
}

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
    if (policy >= NUM_POLICIES || i >= nparams(path_table[policy]))
        return NULL;
    return path_table[policy]->params[i].name;
}

uint32_t sd_path_param_kind(uint32_t policy, uint32_t i)
{
    if (policy >= NUM_POLICIES || i >= nparams(path_table[policy]))
        return 0;
    return path_table[policy]->params[i].kind;
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
    return ps->entropy[i];
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

/* The policies with SD_PATHF_PARAMS read per-QP parameters that only sd_set_path_param gives (the
 * control plane holds their defaults): every name of the registry given once. */
static int path_params_set(const sd_path_state *ps)
{
    uint32_t n = path_name_id(NULL, NULL);
    return ps->named_set == (n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1u);
}

/* The QP's policy's own parameters p[] from the store (a new path set, a new value). */
static void path_load_params(sd_path_state *ps, const path_ops *p)
{
    for (uint32_t i = 0; p->params[i].name && i < SD_PATH_MAX_PARAMS; i++)
        ps->p[i] = ps->named[path_name_id(p->params[i].name, NULL)];
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
    memcpy(ps->named, keep.named, sizeof ps->named);
    ps->named_set = keep.named_set;
    path_load_params(ps, p);
    ps->plb_suspend_until = keep.plb_suspend_until;
    ps->last_tx_ps = -1;
    for (uint32_t i = 0; i < n; i++) {
        ps->entropy[i] = (uint16_t)entropies[i];
        cum += weights ? weights[i] : 1u;
        ps->weight_cum[i] = cum;
    }
    for (uint32_t i = 0; i < SD_MAX_PATHS; i++)
        ps->st->rtt_ps[i] = -1;
    if (p->init)
        p->init(sim, q, ps);
    qp_publish(sim, qp);
    path_publish(sim, qp);
    return SD_OK;
}

/* NULL if value is within name's declared range, else the error (into why). */
static const char *param_check(const char *name, int64_t iv, double dv, char *why, size_t len)
{
    const path_param *d = NULL;
    if (path_name_id(name, &d) == SD_NONE) {
        int n = snprintf(why, len, "unknown parameter '%s'; the policies read", name ? name : "(null)");
        for (uint32_t k = 0, id = 0; k < NUM_POLICIES; k++)
            for (const path_param *a = path_table[k]->params; a->name && n > 0 && (size_t)n < len; a++)
                if (path_name_id(a->name, NULL) == id) {
                    n += snprintf(why + n, len - (size_t)n, "%s %s", id ? "," : "", a->name);
                    id++;
                }
        return why;
    }
    if (d->kind == SD_PATH_PARAM_INT && !sd_param_in_range(d, (double)iv))
        snprintf(why, len, "%s must be %s, got %lld", name, d->rule, (long long)iv);
    else if (d->kind == SD_PATH_PARAM_REAL && !(isfinite(dv) && sd_param_in_range(d, dv)))
        snprintf(why, len, "%s must be %s, got %g", name, d->rule, dv);
    else
        return NULL;
    return why;
}

int sd_set_path_param(sd_sim *sim, uint32_t qp, const char *name, int64_t ivalue, double dvalue)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "path_params: qp %u does not exist", qp);
    char why[512];
    if (param_check(name, ivalue, dvalue, why, sizeof why))
        return sd_fail(sim, SD_EINVAL, "path_params: %s", why);
    int rc = paths_reserve(sim, qp);
    if (rc != SD_OK)
        return rc;
    const path_param *d = NULL;
    uint32_t id = path_name_id(name, &d);
    if (id >= SD_PATH_NAMES)
        return sd_fail(sim, SD_EINVAL, "path_params: %s: more than %d distinct parameter names over the policies "
                       "(SD_PATH_NAMES in native/sim.h)", name, (int)SD_PATH_NAMES);
    sd_path_state *ps = &sim->paths.state[qp];
    if (d->kind == SD_PATH_PARAM_INT)
        ps->named[id].i = ivalue;
    else
        ps->named[id].d = dvalue;
    ps->named_set |= 1u << id;
    if (sim->qps[qp].npaths)
        path_load_params(ps, path_table[sim->qps[qp].path_policy]);
    path_publish(sim, qp);
    return SD_OK;
}

int sd_path_params_ready(sd_sim *sim, uint32_t qp)
{
    return qp < sim->num_qps && sim->paths.state && qp < sim->paths.cap && path_params_set(&sim->paths.state[qp]);
}

int sd_set_path_params(sd_sim *sim, uint32_t qp, int64_t flowlet_gap_ps, double plb_cong_thresh,
                       uint32_t plb_rehash_rounds, int64_t plb_suspend_ps)
{
    if (qp >= sim->num_qps)
        return sd_fail(sim, SD_EINVAL, "path_params: qp %u does not exist", qp);
    const char *names[] = {"flowlet_gap_ps", "plb_cong_thresh", "plb_rehash_rounds", "plb_suspend_ps"};
    int64_t iv[] = {flowlet_gap_ps, 0, plb_rehash_rounds, plb_suspend_ps};
    double dv[] = {0.0, plb_cong_thresh, 0.0, 0.0};
    char why[512];
    for (int k = 0; k < 4; k++)          /* all checked before any is set */
        if (param_check(names[k], iv[k], dv[k], why, sizeof why))
            return sd_fail(sim, SD_EINVAL, "path_params: %s", why);
    for (int k = 0; k < 4; k++) {
        int rc = sd_set_path_param(sim, qp, names[k], iv[k], dv[k]);
        if (rc != SD_OK)
            return rc;
    }
    return SD_OK;
}

sd_path_value path_param_value(const sd_path_state *ps, const char *name, uint32_t *kind)
{
    const path_param *d = NULL;
    uint32_t id = path_name_id(name, &d);
    sd_path_value v = {0};
    *kind = d ? d->kind : SD_PATH_PARAM_INT;
    if (id != SD_NONE && ps->named_set & (1u << id))
        v = ps->named[id];
    return v;
}

/* The QP's telemetry record: the built-in policies' parameters (sd_path_stats' named fields). */
void path_publish(sd_sim *sim, uint32_t qp)
{
    const sd_path_state *ps = &sim->paths.state[qp];
    sd_path_stats *st = ps->st;
    uint32_t kind;
    memcpy(st->entropy, ps->entropy, sizeof st->entropy);
    st->flowlet_gap_ps = path_param_value(ps, "flowlet_gap_ps", &kind).i;
    st->plb_cong_thresh = path_param_value(ps, "plb_cong_thresh", &kind).d;
    st->plb_rehash_rounds = (uint32_t)path_param_value(ps, "plb_rehash_rounds", &kind).i;
    st->plb_suspend_ps = path_param_value(ps, "plb_suspend_ps", &kind).i;
}

sd_path_stats *sd_path_states(sd_sim *sim, uint32_t *count)
{
    *count = sim->paths.state ? (sim->num_qps < sim->paths.cap ? sim->num_qps : sim->paths.cap) : 0;
    return sim->paths.stats;
}

/* ------------------------------------------------------------------ the decoded accessor */
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
        out->entropy[i] = ps->entropy[i];
        out->weight[i] = 1.0;
    }
    if (p->weights)
        p->weights(q, ps, out->weight);
    for (; p->params[out->nparams].name && out->nparams < SD_PATH_MAX_PARAMS; out->nparams++) {
        uint32_t i = out->nparams;      /* integers exactly, reals as doubles */
        if (p->params[i].kind == SD_PATH_PARAM_INT) {
            out->param_int[i] = ps->p[i].i;
            out->param[i] = (double)ps->p[i].i;
        } else {
            out->param[i] = ps->p[i].d;
        }
    }
    return SD_OK;
}
