/* paths.c: the entropy (UDP source port) of each data packet of a QP, chosen from the path set
 * the control plane gave it (controlplane/multipath.py owns the sets; this is the per-packet
 * choice), and the per-path feedback ACKs bring back. Switches hash whatever entropy the packet
 * carries (switch.c). Each data packet carries its path slot; the ACK that acknowledges it echoes
 * the slot and whether it arrived CE-marked (SD_PKT_* in softdpu.h), which feeds:
 *   - per-slot telemetry for the control plane (sent, ACKs, CE echoes, last RTT, and timeouts,
 *     charged to the slot of the oldest outstanding packet);
 *   - reps (Bonato et al. 2024, "REPS: Recycled Entropy Packet Spraying"): reuse slots whose
 *     ACKs came back unmarked, oldest first; with none to reuse, explore a random slot; a marked
 *     slot is not recycled;
 *   - plb (PLB, Qureshi et al. SIGCOMM'22; Linux net/ipv4/tcp_plb.c): one slot at a time; a round
 *     (one RTT: until snd_una passes what was sent when it began) is congested if its CE fraction
 *     exceeds plb_cong_thresh; after plb_rehash_rounds congested rounds in a row, move to another
 *     slot; an RTO moves at once and suspends congestion repaths for [1, 2) x plb_suspend_ps;
 *   - flowlet: one slot at a time, a new random one after an idle gap longer than flowlet_gap_ps.
 * Stateless policies: ecmp keeps one entropy; spray_rr cycles; spray_random draws uniformly;
 * spray_weighted draws by weight (cumulative weights, last = total). */
#include "sim.h"

static uint32_t other_slot(sd_qp *q, uint32_t cur)
{
    if (q->npaths < 2)
        return 0;
    uint32_t i = (uint32_t)(rng_next(&q->path_rng) % (q->npaths - 1));
    return i >= cur ? i + 1 : i;         /* uniform over the other slots */
}

uint16_t path_pick(sd_sim *sim, uint32_t qi, uint64_t seq, uint8_t *slot_flags)
{
    sd_qp *q = &sim->qps[qi];
    sd_path_state *ps = &sim->paths.state[qi];
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
        uint32_t r = (uint32_t)(rng_next(&q->path_rng) % q->st->path_weight[q->npaths - 1]);
        while (q->st->path_weight[i] <= r)
            i++;
        break;
    }
    case SD_PATH_REPS:
        if (ps->reps_len > 0) {
            i = ps->reps_ring[ps->reps_head];
            ps->reps_head = (ps->reps_head + 1) & 31u;
            ps->reps_len--;
        } else {
            i = (uint32_t)(rng_next(&q->path_rng) % q->npaths);
            ps->st->reps_explored++;
        }
        break;
    case SD_PATH_FLOWLET:
        if (ps->last_tx_ps >= 0 && sim->now - ps->last_tx_ps > ps->flowlet_gap_ps) {
            q->path_next = other_slot(q, q->path_next);
            ps->st->repaths++;
        }
        i = q->path_next;
        break;
    case SD_PATH_PLB:
        i = q->path_next;
        break;
    default:
        break;
    }
    ps->last_tx_ps = sim->now;
    ps->st->sent[i]++;
    ps->slot_of[seq & 1023u] = (uint8_t)i;
    *slot_flags = (uint8_t)((i + 1u) << SD_PKT_SLOT_SHIFT);
    return q->st->paths[i];
}

static void plb_repath(sd_qp *q, sd_path_state *ps)
{
    q->path_next = other_slot(q, q->path_next);
    ps->plb_cong_rounds = 0;
    ps->st->repaths++;
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
    if (q->path_policy == SD_PATH_REPS) {
        if (!ce && !nak) {
            if (ps->reps_len == 32u) {    /* full: forget the oldest */
                ps->reps_head = (ps->reps_head + 1) & 31u;
                ps->reps_len--;
            }
            ps->reps_ring[(ps->reps_head + ps->reps_len) & 31u] = (uint8_t)slot;
            ps->reps_len++;
        }
    } else if (q->path_policy == SD_PATH_PLB) {
        ps->plb_acks++;
        ps->plb_ce += (uint32_t)ce;
        if (q->snd_una >= ps->plb_round_end) {            /* a round (one RTT) is over */
            int congested = (double)ps->plb_ce > ps->plb_cong_thresh * (double)ps->plb_acks;
            ps->plb_cong_rounds = congested ? ps->plb_cong_rounds + 1 : 0;
            if (ps->plb_cong_rounds >= ps->plb_rehash_rounds && sim->now >= ps->plb_suspend_until)
                plb_repath(q, ps);
            ps->plb_acks = ps->plb_ce = 0;
            ps->plb_round_end = q->snd_nxt > q->snd_una ? q->snd_nxt : q->snd_una + 1;
        }
    }
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
    if (q->path_policy != SD_PATH_PLB)
        return;
    plb_repath(q, ps);
    ps->plb_suspend_until = sim->now + ps->plb_suspend_ps +
                            (int64_t)(rng_uniform(&q->path_rng) * (double)ps->plb_suspend_ps);
}
