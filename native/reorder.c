/* reorder.c: the reorder state of sr and ooo QPs (steps 5 and 6 of docs/architecture.md, 'A packet's
 * walk': the receiver's PSN check and the sender's ACK processing of a multipath transport).
 *
 * Receiver: a bitmap of the reorder_window PSNs beyond the expected PSN (ePSN). A packet within
 * the window is placed at once (its RETH/PSN offset says where) and remembered in the bitmap;
 * ePSN then advances over every PSN already held, so messages complete in order (msn counts the
 * LAST/ONLY packets ePSN passes, kept in a second bitmap). A packet beyond the window is dropped
 * (rx_late) and the sender's timeout recovers it. What the receiver says about a hole:
 *   sr  (IRN, Mittal et al. SIGCOMM'18 §3.1): a NACK per out-of-order packet carrying ePSN (the
 *       cumulative point) and the PSN that triggered it, which the sender treats as a SACK;
 *   ooo (SRD / OOO placement): an ACK carrying the same SACK, never a NACK: reordering is not
 *       taken for loss, only the retransmission timer recovers a lost packet.
 * Sender: a third bitmap of SACKed sequence numbers in [snd_una, snd_una + window), a fourth of
 * packets a timeout declared lost and not yet resent, and a byte per packet: the transmit epoch
 * of its latest transmission (below). Every lost data packet is resent exactly once per loss,
 * never a packet that can still arrive (assuming RTO > RTT), by two loss detections that never
 * overlap:
 *   NACK (sr only; IRN §3.1): a NACK's SACK s says every unSACKed packet below s is lost (a
 *       packet sent before s did not arrive; without reordering this is exact, with reordering
 *       it may be only late: a spurious retransmission, as in IRN). A cursor rtx_nxt walks up to
 *       the newest such s (rtx_end), resending each unSACKed packet it passes; it never moves
 *       back, so the NACKs resend a packet at most once. A lost retransmission is left to the
 *       timer (IRN: lost retransmissions are detected by timeout).
 *   Timeout (sr and ooo), timed per packet: a packet is lost once its latest transmission (first
 *       or resend) is at least one RTO old and it is still unSACKed. Transmissions are grouped
 *       in epochs: a send opens a new epoch when the current one began at least G = RTO_max /
 *       SD_RTO_EPOCHS ago (RTO_max = the larger of rto_ps and IRN's RTO_low), so every packet
 *       of an epoch was sent within G before the epoch's last send, ep_end[]. A packet is
 *       stamped with its epoch (8 bits) and declared lost when its epoch's last send is at least
 *       RTO old: between RTO and RTO + G (= RTO x (1 + 1/SD_RTO_EPOCHS) for rto_ps) after it
 *       was sent, never earlier. The ring ep_end[] keeps the newest SD_RTO_EPOCHS + 1 epochs;
 *       an older epoch ended at least SD_RTO_EPOCHS x G >= any RTO ago, so it is lost outright.
 *       IRN's RTO_low (in force while few packets are unSACKed) counts from the later of the
 *       epoch's end and the last advance of snd_una, as IRN's timer that restarts on every new
 *       cumulative ACK, and never later than rto_ps after the epoch's end (lost_at below).
 *       The timer runs for the oldest epoch holding a packet neither acknowledged nor declared
 *       lost (ep_live): it is armed at the first send with nothing timed, re-aimed after every
 *       ACK (the RTO in force, RTO_low or rto_ps, depends on the unSACKed count), and when it
 *       fires the sender scans [snd_una, snd_max), declares the lost packets (the fourth
 *       bitmap; the timeout's sweep [tmo_nxt, tmo_end) resends them oldest first, before the
 *       NACK cursor), finds the new oldest epoch and aims the timer at its last send + RTO. A
 *       firing that finds nothing lost yet (that epoch's packets were acknowledged) is no
 *       timeout: no counter, no CC event. Live packets are at most SD_RTO_EPOCHS + 2
 *       epochs old when the timer declares them, so the 8-bit stamp never wraps ambiguously.
 *       The timeout then moves the NACK cursor past the sweep: the unSACKed packets above the
 *       cursor that the timeout finds lost are a prefix (first transmissions, oldest first), so
 *       the two never resend one packet twice and the NACKs lose nothing.
 *   Before this per-packet timing, one timer was armed at whole-flow events (first send,
 *   snd_una advances, a timeout) and a timeout resent only what was sent before the arming: a
 *   hole sent after it waited for the next timeout, up to two RTOs.
 * Consequences: without reordering, retransmitted == data packets dropped (first transmissions
 * plus retransmissions, counted apart in sd_counters.retx_dropped) and the receiver sees no
 * duplicate; a lost ACK or NACK can still cost one spurious resend (a NACK carries one SACKed
 * PSN: if it is lost, a later NACK makes the sender resend that packet). A timer firing that
 * declares packets lost counts as one timeout (sd_counters.timeouts, SD_EV_TIMEOUT to the CC):
 * with losses spread over an RTO there can be up to SD_RTO_EPOCHS of them per RTO, each
 * declaring fewer packets. In sr, the first NACK of a loss-recovery episode (recovery =
 * snd_max; it ends when snd_una passes recovery) is the loss signal to the CC; the others count
 * as ACKs. Retransmissions leave snd_nxt alone (no go-back-N) and may exceed the CC window (they
 * replace lost packets).
 * Memory per QP: 4 x window / 8 bytes of bitmaps + window bytes of epoch stamps (3 KiB for the
 * default window of 2048 packets) in the setup-time pool, and 104 bytes of timer state in sd_qp;
 * nothing is allocated per packet. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static inline uint64_t *bm_rx_have(sd_sim *sim, const sd_qp *q) { return sim->reorder.bits + q->bits_off; }
static inline uint64_t *bm_rx_last(sd_sim *sim, const sd_qp *q) { return sim->reorder.bits + q->bits_off + q->reorder_window / 64u; }
static inline uint64_t *bm_tx_sack(sd_sim *sim, const sd_qp *q) { return sim->reorder.bits + q->bits_off + 2u * (q->reorder_window / 64u); }
static inline uint64_t *bm_tx_rtx(sd_sim *sim, const sd_qp *q) { return sim->reorder.bits + q->bits_off + 3u * (q->reorder_window / 64u); }
static inline uint8_t *ep_stamp(sd_sim *sim, const sd_qp *q) { return (uint8_t *)(sim->reorder.bits + q->bits_off + 4u * (q->reorder_window / 64u)); }

static inline int bit_get(const uint64_t *b, uint32_t i) { return (int)((b[i >> 6] >> (i & 63u)) & 1u); }
static inline void bit_set(uint64_t *b, uint32_t i) { b[i >> 6] |= 1ull << (i & 63u); }
static inline void bit_clear(uint64_t *b, uint32_t i) { b[i >> 6] &= ~(1ull << (i & 63u)); }

/* ---------------------------------------------------------------- receiver */
void reorder_receive(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = (uint32_t)(pk - sim->pkts);
    uint32_t m = q->reorder_window - 1u;
    int last = op_is_last(pk->opcode);
    int32_t d = psn_diff(pk->psn, q->st->epsn);
    if (d < 0) {                                   /* already passed: a late duplicate */
        q->st->rx_dup++;
        nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
        return;
    }
    if ((uint32_t)d >= q->reorder_window) {        /* cannot be held: the sender's timer resends it */
        q->st->rx_late++;
        return;
    }
    uint64_t *have = bm_rx_have(sim, q), *lastb = bm_rx_last(sim, q);
    if (!nic_recv_ready(sim, q, pk)) {
        /* its receive is not posted: not placed; an RNR NAK for the hole at ePSN (once, unless this
         * packet is the hole itself: the requester's resend after the RNR wait) */
        if (d == 0 || !q->rnr_nak_pending) {
            q->rnr_nak_pending = 1;
            nic_rnr_nak(sim, q, pk);
        }
        return;
    }
    if (op_needs_recv(pk->opcode))
        q->rnr_nak_pending = 0;
    if (d == 0) {
        uint32_t drained;
        q->st->epsn = (q->st->epsn + 1) & SD_PSN_MASK;
        q->st->rx_bytes += pk->payload;
        if (last)
            nic_rx_msg_done(sim, qi, pk->psn, pk->msg);
        drained = reorder_drain(sim, qi);
        q->unacked++;
        if ((pk->flags & SD_PKT_ACKREQ) || q->unacked >= q->ack_interval || q->ce_pending || drained > 0 ||
            q->st->ooo_held > 0)
            nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
        return;
    }
    uint32_t i = pk->psn & m;
    if (bit_get(have, i)) {                        /* held already: a duplicate (spurious retransmission) */
        q->st->rx_dup++;
        nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, pk->psn);
        return;
    }
    bit_set(have, i);
    if (last)
        bit_set(lastb, i);
    q->st->rx_bytes += pk->payload;
    q->st->rx_ooo++;
    if (++q->st->ooo_held > q->st->ooo_peak)
        q->st->ooo_peak = q->st->ooo_held;
    if ((uint32_t)d > q->st->ooo_max_dist)
        q->st->ooo_max_dist = (uint32_t)d;
    if (q->mode == SD_SR) {
        q->st->naks_tx++;
        sim->ctr.nak_sent++;
        nic_send_ack(sim, q, 0x60, q->st->epsn, pk->ts_ps, p, pk->psn);
    } else {
        nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, pk->psn);
    }
}

/* ePSN over the PSNs already held, completing the messages whose last PSN it passes; returns how many. */
uint32_t reorder_drain(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    uint64_t *have = bm_rx_have(sim, q), *lastb = bm_rx_last(sim, q);
    uint32_t m = q->reorder_window - 1u, drained = 0;
    while (q->st->ooo_held > 0 && bit_get(have, q->st->epsn & m)) {
        uint32_t i = q->st->epsn & m;
        bit_clear(have, i);
        if (bit_get(lastb, i)) {
            bit_clear(lastb, i);
            nic_rx_msg_done(sim, qi, q->st->epsn, SD_NONE);
        }
        q->st->epsn = (q->st->epsn + 1) & SD_PSN_MASK;
        q->st->ooo_held--;
        drained++;
    }
    return drained;
}

/* A READ request that came early: hold the PSNs of all its responses (the last one ends a message).
 * 0 = some are held already (a duplicate: answered before). The caller checked the window. */
int reorder_hold_range(sd_sim *sim, sd_qp *q, uint32_t psn, uint32_t n)
{
    uint64_t *have = bm_rx_have(sim, q), *lastb = bm_rx_last(sim, q);
    uint32_t m = q->reorder_window - 1u;
    for (uint32_t k = 0; k < n; k++)
        if (bit_get(have, (psn + k) & m))
            return 0;
    for (uint32_t k = 0; k < n; k++)
        bit_set(have, (psn + k) & m);
    bit_set(lastb, (psn + n - 1) & m);
    q->st->ooo_held += n;
    if (q->st->ooo_held > q->st->ooo_peak)
        q->st->ooo_peak = q->st->ooo_held;
    return 1;
}

/* ---------------------------------------------------------------- sender */
uint64_t reorder_sacked_run(sd_sim *sim, const sd_qp *q, uint64_t from)
{
    const uint64_t *s = bm_tx_sack(sim, q);
    uint32_t m = q->reorder_window - 1u;
    while (from < q->snd_max && bit_get(s, (uint32_t)(from & m)))
        from++;
    return from;
}

/* A READ response beyond snd_una: a SACK of its PSN, and for sr the news that the unSACKed PSNs
 * below it are lost (as a NACK carrying it). 1 = its PSN was not SACKed before (new data). */
int reorder_sack(sd_sim *sim, uint32_t qi, uint32_t psn, int nak)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t una_psn = (uint32_t)((q->isn + q->snd_una) & SD_PSN_MASK);
    int32_t d = psn_diff(psn, una_psn);
    int fresh = d > 0 && q->snd_una + (uint64_t)d < q->snd_max &&
                !bit_get(bm_tx_sack(sim, q), (uint32_t)((q->snd_una + (uint64_t)d) & (q->reorder_window - 1u)));
    sd_packet ack;
    memset(&ack, 0, sizeof ack);
    ack.msg = psn;
    reorder_ack(sim, qi, &ack, nak);
    return fresh;
}

void reorder_clear_acked(sd_sim *sim, sd_qp *q, uint64_t old_una, uint64_t new_una)
{
    uint64_t *s = bm_tx_sack(sim, q), *r = bm_tx_rtx(sim, q);
    uint32_t m = q->reorder_window - 1u;
    if (q->sacked == 0 && q->tmo_nxt >= q->tmo_end)
        return;                                    /* no bit set below new_una */
    for (uint64_t seq = old_una; seq < new_una; seq++) {
        uint32_t i = (uint32_t)(seq & m);
        if (bit_get(s, i)) {
            bit_clear(s, i);
            q->sacked--;
        }
        bit_clear(r, i);
    }
}

void reorder_ack(sd_sim *sim, uint32_t qi, const sd_packet *pk, int nak)
{
    sd_qp *q = &sim->qps[qi];
    if (q->recovery != 0 && q->snd_una >= q->recovery)
        q->recovery = 0;                           /* everything outstanding at the loss is acknowledged */
    if (pk->msg == SD_NONE)
        return;
    q->st->sacks_rx++;
    uint32_t una_psn = (uint32_t)((q->isn + q->snd_una) & SD_PSN_MASK);
    int32_t d = psn_diff(pk->msg, una_psn);
    if (d <= 0 || q->snd_una + (uint64_t)d >= q->snd_max)
        return;                                    /* stale, or not a packet in flight */
    uint64_t seq = q->snd_una + (uint64_t)d;
    uint64_t *s = bm_tx_sack(sim, q);
    uint32_t i = (uint32_t)(seq & (q->reorder_window - 1u));
    if (!bit_get(s, i)) {
        bit_set(s, i);
        q->sacked++;
    }
    if (nak && q->mode == SD_SR) {
        if (q->recovery == 0)                      /* a new loss-recovery episode (for the CC) */
            q->recovery = q->snd_max;
        if (seq > q->rtx_end)
            q->rtx_end = seq;                      /* the holes below the newest SACK are lost */
    }
}

int reorder_next_rtx(sd_sim *sim, sd_qp *q, uint64_t *seq)
{
    uint64_t *s = bm_tx_sack(sim, q), *r = bm_tx_rtx(sim, q);
    uint32_t m = q->reorder_window - 1u;
    /* 1. the timeout sweep: the packets declared lost by timeouts, oldest first */
    if (q->tmo_nxt < q->tmo_end) {
        if (q->tmo_nxt < q->snd_una)
            q->tmo_nxt = q->snd_una;               /* acknowledged meanwhile (their bits are cleared) */
        while (q->tmo_nxt < q->tmo_end) {
            uint32_t i = (uint32_t)(q->tmo_nxt & m);
            if (bit_get(r, i)) {
                if (!bit_get(s, i)) {
                    *seq = q->tmo_nxt;
                    return SD_RTX_TIMEOUT;
                }
                bit_clear(r, i);                   /* SACKed since the timeout: nothing to resend */
            }
            q->tmo_nxt++;
        }
    }
    /* 2. the NACK cursor: every unSACKed packet below the newest NACKed SACK, once */
    if (q->rtx_end <= q->rtx_nxt)
        return 0;
    if (q->rtx_nxt < q->snd_una)
        q->rtx_nxt = q->snd_una;
    uint64_t end = q->rtx_end < q->snd_max ? q->rtx_end : q->snd_max;
    while (q->rtx_nxt < end && bit_get(s, (uint32_t)(q->rtx_nxt & m)))
        q->rtx_nxt++;
    if (q->rtx_nxt < end) {
        *seq = q->rtx_nxt;
        return SD_RTX_NACK;
    }
    return 0;                                      /* the cursor stays: a later NACK extends rtx_end */
}

void reorder_sent_rtx(sd_sim *sim, sd_qp *q, uint64_t seq, int kind)
{
    if (kind == SD_RTX_TIMEOUT) {
        bit_clear(bm_tx_rtx(sim, q), (uint32_t)(seq & (q->reorder_window - 1u)));
        q->tmo_nxt = seq + 1;
    } else {
        q->rtx_nxt = seq + 1;
    }
}

/* ---------------------------------------------------------------- per-packet retransmission timer */
enum { EP_RING = SD_RTO_EPOCHS + 1 };

/* The epoch length: the largest RTO in use (rto_ps, or IRN's RTO_low if larger) / SD_RTO_EPOCHS,
 * rounded up, so that SD_RTO_EPOCHS epochs span at least any RTO the QP uses. */
static int64_t epoch_len(const sd_sim *sim, const sd_qp *q)
{
    (void)sim;                           /* the QP's own rto_ps (sd_set_qp_nic) */
    int64_t r = q->rto_ps > q->rto_low_ps ? q->rto_ps : q->rto_low_ps;
    return (r + SD_RTO_EPOCHS - 1) / SD_RTO_EPOCHS;
}

void reorder_stamp(sd_sim *sim, sd_qp *q, uint64_t seq)
{
    if (sim->now - q->ep_start >= epoch_len(sim, q)) {
        q->ep++;                                   /* a new epoch (the zeroed QP starts epoch 0 at t = 0) */
        q->ep_start = sim->now;
    }
    q->ep_end[q->ep % EP_RING] = sim->now;
    ep_stamp(sim, q)[seq & (q->reorder_window - 1u)] = (uint8_t)q->ep;
}

/* READ responses come in over a long time (a READ's PSNs are all "sent" with its request): while
 * they keep coming, the ones still due count as if requested now (IB's transport timer restarts on
 * progress), PSNs [from, to) not SACKed, at most once per epoch. */
void reorder_restamp(sd_sim *sim, sd_qp *q, uint64_t from, uint64_t to)
{
    uint32_t m = q->reorder_window - 1u;
    if (from >= to)
        return;
    uint64_t e = sim->now - q->ep_start >= epoch_len(sim, q) ? q->ep + 1 : q->ep;
    if (ep_stamp(sim, q)[from & m] == (uint8_t)e)
        return;
    const uint64_t *s = bm_tx_sack(sim, q);
    for (uint64_t seq = from; seq < to; seq++)
        if (!bit_get(s, (uint32_t)(seq & m)))
            reorder_stamp(sim, q, seq);
}

/* When every packet of epoch e was sent at the latest; INT64_MIN when e has left the ring: it
 * ended before the epoch SD_RTO_EPOCHS older than the current one began, which is at least
 * SD_RTO_EPOCHS x epoch_len >= any RTO ago. */
static int64_t epoch_end(const sd_qp *q, uint64_t e)
{
    return q->ep - e >= EP_RING ? INT64_MIN : q->ep_end[e % EP_RING];
}

/* When a packet whose epoch ended at `end` is lost under the RTO in force: RTO after that end (per
 * packet). IRN's RTO_low (in force while few packets are unSACKed, so it times only a few) counts
 * as IRN's timer does, from the later of that end and the last advance of snd_una (a timer that
 * restarts on every new cumulative ACK): a 100 us RTO_low must not take a packet held behind a
 * deep queue at the flow's tail for lost while ACKs still come in; rto_ps after the end still
 * applies, so RTO_low never makes a loss wait longer. */
static int64_t lost_at(const sd_sim *sim, const sd_qp *q, int64_t end, int64_t rto)
{
    (void)sim;                           /* the QP's own rto_ps (sd_set_qp_nic) */
    if (end == INT64_MIN)
        return INT64_MIN;
    if (rto >= q->rto_ps)
        return end + rto;
    int64_t low = (q->una_ps > end ? q->una_ps : end) + rto;
    return low < end + q->rto_ps ? low : end + q->rto_ps;
}

int64_t reorder_deadline(const sd_sim *sim, const sd_qp *q, int64_t rto)
{
    int64_t at = lost_at(sim, q, epoch_end(q, q->ep_live), rto);
    return at < sim->now ? sim->now : at;
}

uint64_t reorder_timeout(sd_sim *sim, sd_qp *q, int64_t rto, int *live)
{
    uint64_t *s = bm_tx_sack(sim, q), *r = bm_tx_rtx(sim, q);
    const uint8_t *st = ep_stamp(sim, q);
    uint32_t m = q->reorder_window - 1u;
    uint64_t lost = 0, first = 0, last = 0, oldest = 0;
    *live = 0;
    /* lost: unSACKed, not already waiting in the sweep, and last sent at least rto ago (its
     * epoch ended by now - rto). Only the unSACKed packets still in flight keep the timer. */
    for (uint64_t seq = q->snd_una; seq < q->snd_max; seq++) {
        uint32_t i = (uint32_t)(seq & m);
        if (bit_get(s, i)) {
            bit_clear(r, i);
            continue;
        }
        if (bit_get(r, i))
            continue;                              /* declared lost before, not resent yet */
        uint64_t age = (uint8_t)((uint8_t)q->ep - st[i]);   /* < 256: see the header comment */
        uint64_t e = q->ep - age;
        if (lost_at(sim, q, epoch_end(q, e), rto) <= sim->now) {
            bit_set(r, i);
            if (lost++ == 0)
                first = seq;
            last = seq;
        } else if (!*live || e < oldest) {
            *live = 1;
            oldest = e;
        }
    }
    if (*live)
        q->ep_live = oldest;
    if (lost == 0)
        return 0;
    if (q->tmo_nxt < q->tmo_end) {                 /* a sweep still pending: extend it */
        if (first > q->tmo_nxt)
            first = q->tmo_nxt;
        if (last + 1 < q->tmo_end)
            last = q->tmo_end - 1;
    }
    q->tmo_nxt = first;
    q->tmo_end = last + 1;
    if (q->rtx_nxt < q->tmo_end)
        q->rtx_nxt = q->tmo_end;                   /* below it, the sweep resends what the NACKs would */
    if (q->rtx_end < q->rtx_nxt)
        q->rtx_end = q->rtx_nxt;
    q->recovery = q->snd_max;
    return lost;
}

/* The reorder module (sim.c's table): the bitmap pool sd_set_transport grows. */
void reorder_free(sd_sim *sim)
{
    free(sim->reorder.bits);
}

uint64_t reorder_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)sim->reorder.cap * sizeof *sim->reorder.bits;
}
