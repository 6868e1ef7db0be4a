/* reorder.c: the reorder state of sr and ooo QPs (DESIGN §3: the receiver's PSN check and the
 * sender's ACK processing of a multipath transport).
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
 * Sender: a third bitmap of SACKed sequence numbers in [snd_una, snd_una + window), and a fourth
 * of retransmissions (below). Every lost data packet is resent exactly once per loss, never a
 * packet that can still arrive (assuming RTO > RTT), by two loss detections that never overlap:
 *   NACK (sr only; IRN §3.1): a NACK's SACK s says every unSACKed packet below s is lost (a
 *       packet sent before s did not arrive; without reordering this is exact, with reordering
 *       it may be only late: a spurious retransmission, as in IRN). A cursor rtx_nxt walks up to
 *       the newest such s (rtx_end), resending each unSACKed packet it passes; it never moves
 *       back, so the NACKs resend a packet at most once. A lost retransmission is left to the
 *       timer (IRN: lost retransmissions are detected by timeout).
 *   Timeout (sr and ooo): when the timer is armed (at the first packet sent with none out, at
 *       every advance of snd_una, after a timeout), rto_seq = snd_max records what had been sent
 *       by then. When it fires, RTO later, the lost packets are those unSACKed, below rto_seq
 *       (first sent at least RTO ago) and not resent since the arming (a resend less than RTO
 *       old may still arrive). Packets sent later are left to a later timeout. The timeout then
 *       moves the NACK cursor to rto_seq: below it, the timeout's own sweep [tmo_nxt, tmo_end)
 *       resends (oldest first, before the NACK cursor), so the two never resend one packet twice.
 *   The retransmission bitmap holds, outside the pending sweep, "resent since the timer was
 *   armed" (cleared at each arming, rs_recent counts the bits), inside it "to resend".
 * Consequences: without reordering, retransmitted == data packets dropped (first transmissions
 * plus retransmissions, counted apart in sd_counters.retx_dropped) and the receiver sees no
 * duplicate; a lost ACK or NACK can still cost one spurious resend (a NACK carries one SACKed
 * PSN: if it is lost, a later NACK makes the sender resend that packet). In sr, the first NACK
 * of a loss-recovery episode (recovery = snd_max; it ends when snd_una passes recovery) is the
 * loss signal to the CC; the others count as ACKs. Retransmissions leave snd_nxt alone (no
 * go-back-N) and may exceed the CC window (they replace lost packets).
 * Memory per QP: 4 x window / 8 bytes (1 KiB for the default window of 2048 packets), no
 * per-packet timestamp. */
#include "sim.h"

static inline uint64_t *bm_rx_have(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off; }
static inline uint64_t *bm_rx_last(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off + q->reorder_window / 64u; }
static inline uint64_t *bm_tx_sack(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off + 2u * (q->reorder_window / 64u); }
static inline uint64_t *bm_tx_rtx(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off + 3u * (q->reorder_window / 64u); }

static inline int bit_get(const uint64_t *b, uint32_t i) { return (int)((b[i >> 6] >> (i & 63u)) & 1u); }
static inline void bit_set(uint64_t *b, uint32_t i) { b[i >> 6] |= 1ull << (i & 63u); }
static inline void bit_clear(uint64_t *b, uint32_t i) { b[i >> 6] &= ~(1ull << (i & 63u)); }

/* ---------------------------------------------------------------- receiver */
void reorder_receive(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = (uint32_t)(pk - sim->pkts);
    uint32_t m = q->reorder_window - 1u;
    int last = pk->opcode == SD_OP_WRITE_LAST || pk->opcode == SD_OP_WRITE_ONLY;
    int32_t d = psn_diff(pk->psn, q->epsn);
    if (d < 0) {                                   /* already passed: a late duplicate */
        q->rx_dup++;
        nic_send_ack(sim, q, 0x1F, q->epsn - 1, pk->ts_ps, p, SD_NONE);
        return;
    }
    if ((uint32_t)d >= q->reorder_window) {        /* cannot be held: the sender's timer resends it */
        q->rx_late++;
        return;
    }
    uint64_t *have = bm_rx_have(sim, q), *lastb = bm_rx_last(sim, q);
    if (d == 0) {
        uint32_t drained = 0;
        q->epsn = (q->epsn + 1) & SD_PSN_MASK;
        q->rx_bytes += pk->payload;
        if (last)
            q->msn = (q->msn + 1) & SD_PSN_MASK;
        while (q->ooo_held > 0 && bit_get(have, q->epsn & m)) {
            uint32_t i = q->epsn & m;
            bit_clear(have, i);
            if (bit_get(lastb, i)) {
                bit_clear(lastb, i);
                q->msn = (q->msn + 1) & SD_PSN_MASK;
            }
            q->epsn = (q->epsn + 1) & SD_PSN_MASK;
            q->ooo_held--;
            drained++;
        }
        q->unacked++;
        if ((pk->flags & SD_PKT_ACKREQ) || q->unacked >= sim->cfg.ack_interval || q->ce_pending || drained > 0 ||
            q->ooo_held > 0)
            nic_send_ack(sim, q, 0x1F, q->epsn - 1, pk->ts_ps, p, SD_NONE);
        return;
    }
    uint32_t i = pk->psn & m;
    if (bit_get(have, i)) {                        /* held already: a duplicate (spurious retransmission) */
        q->rx_dup++;
        nic_send_ack(sim, q, 0x1F, q->epsn - 1, pk->ts_ps, p, pk->psn);
        return;
    }
    bit_set(have, i);
    if (last)
        bit_set(lastb, i);
    q->rx_bytes += pk->payload;
    q->rx_ooo++;
    if (++q->ooo_held > q->ooo_peak)
        q->ooo_peak = q->ooo_held;
    if ((uint32_t)d > q->ooo_max_dist)
        q->ooo_max_dist = (uint32_t)d;
    if (q->mode == SD_SR) {
        q->naks_tx++;
        sim->ctr.nak_sent++;
        nic_send_ack(sim, q, 0x60, q->epsn, pk->ts_ps, p, pk->psn);
    } else {
        nic_send_ack(sim, q, 0x1F, q->epsn - 1, pk->ts_ps, p, pk->psn);
    }
}

/* ---------------------------------------------------------------- sender */
/* Is seq in the pending range of the timeout sweep? (there, a bit of bm_tx_rtx means "to resend") */
static inline int in_sweep(const sd_qp *q, uint64_t seq) { return seq >= q->tmo_nxt && seq < q->tmo_end; }

void reorder_clear_acked(sd_sim *sim, sd_qp *q, uint64_t old_una, uint64_t new_una)
{
    uint64_t *s = bm_tx_sack(sim, q), *r = bm_tx_rtx(sim, q);
    uint32_t m = q->reorder_window - 1u;
    if (q->sacked == 0 && q->rs_recent == 0 && q->tmo_nxt >= q->tmo_end)
        return;                                    /* no bit set below new_una */
    for (uint64_t seq = old_una; seq < new_una; seq++) {
        uint32_t i = (uint32_t)(seq & m);
        if (bit_get(s, i)) {
            bit_clear(s, i);
            q->sacked--;
        }
        if (bit_get(r, i)) {
            bit_clear(r, i);
            if (!in_sweep(q, seq))
                q->rs_recent--;
        }
    }
}

void reorder_ack(sd_sim *sim, uint32_t qi, const sd_packet *pk, int nak)
{
    sd_qp *q = &sim->qps[qi];
    if (q->recovery != 0 && q->snd_una >= q->recovery)
        q->recovery = 0;                           /* everything outstanding at the loss is acknowledged */
    if (pk->msg == SD_NONE)
        return;
    q->sacks_rx++;
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
    /* 1. the timeout sweep: the packets marked at the timeout, oldest first */
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
            q->tmo_nxt++;                          /* passed: its bit now means "resent since armed" (0) */
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
    uint64_t *r = bm_tx_rtx(sim, q);
    uint32_t i = (uint32_t)(seq & (q->reorder_window - 1u));
    if (kind == SD_RTX_TIMEOUT) {
        q->tmo_nxt = seq + 1;                      /* its bit stays set: now "resent since armed" */
    } else {
        q->rtx_nxt = seq + 1;
        bit_set(r, i);
    }
    q->rs_recent++;
}

void reorder_rto_armed(sd_sim *sim, sd_qp *q)
{
    q->rto_seq = q->snd_max;                       /* every packet below it was sent before now */
    if (q->rs_recent == 0)
        return;
    uint64_t *r = bm_tx_rtx(sim, q);
    uint32_t m = q->reorder_window - 1u;
    for (uint64_t seq = q->snd_una; seq < q->snd_max && q->rs_recent > 0; seq++) {
        if (in_sweep(q, seq)) {
            seq = q->tmo_end - 1;                  /* the sweep's marks stay */
            continue;
        }
        uint32_t i = (uint32_t)(seq & m);
        if (bit_get(r, i)) {
            bit_clear(r, i);
            q->rs_recent--;
        }
    }
}

void reorder_timeout(sd_sim *sim, sd_qp *q)
{
    uint64_t *s = bm_tx_sack(sim, q), *r = bm_tx_rtx(sim, q);
    uint32_t m = q->reorder_window - 1u;
    uint64_t end = q->rto_seq > q->snd_una ? q->rto_seq : q->snd_una;
    /* lost: unSACKed, sent before the timer was armed (below rto_seq), not resent since (bit clear
     * outside the old sweep; inside it a set bit is a resend still to do, a clear one dates from
     * before the previous timeout: lost too) */
    for (uint64_t seq = q->snd_una; seq < q->snd_max; seq++) {
        uint32_t i = (uint32_t)(seq & m);
        int lost = seq < end && !bit_get(s, i) && (in_sweep(q, seq) || !bit_get(r, i));
        if (lost)
            bit_set(r, i);
        else
            bit_clear(r, i);
    }
    q->rs_recent = 0;
    q->tmo_nxt = q->snd_una;
    q->tmo_end = end;
    if (q->rtx_nxt < end)
        q->rtx_nxt = end;                          /* below end, the sweep resends what the NACKs would */
    if (q->rtx_end < q->rtx_nxt)
        q->rtx_end = q->rtx_nxt;
    q->recovery = q->snd_max;
}
