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
 * Sender: a third bitmap of SACKed sequence numbers in [snd_una, snd_una + window). In sr, the
 * first NACK of a loss-recovery episode starts it (recovery = snd_max); every hole below the
 * highest SACK is retransmitted once per episode; the episode ends when snd_una passes recovery.
 * A timeout retransmits every outstanding packet that was not SACKed. Retransmissions leave
 * snd_nxt alone (no go-back-N) and may exceed the CC window (they replace lost packets).
 * Memory per QP: 3 x window / 8 bytes (768 B for the default window of 2048 packets). */
#include "sim.h"

static inline uint64_t *bm_rx_have(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off; }
static inline uint64_t *bm_rx_last(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off + q->reorder_window / 64u; }
static inline uint64_t *bm_tx_sack(sd_sim *sim, const sd_qp *q) { return sim->bits + q->bits_off + 2u * (q->reorder_window / 64u); }

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
void reorder_clear_acked(sd_sim *sim, sd_qp *q, uint64_t old_una, uint64_t new_una)
{
    uint64_t *s = bm_tx_sack(sim, q);
    uint32_t m = q->reorder_window - 1u;
    if (q->sacked == 0)
        return;
    for (uint64_t seq = old_una; seq < new_una && q->sacked > 0; seq++) {
        uint32_t i = (uint32_t)(seq & m);
        if (bit_get(s, i)) {
            bit_clear(s, i);
            q->sacked--;
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
        if (q->recovery == 0) {                    /* a new loss-recovery episode */
            q->recovery = q->snd_max;
            q->rtx_nxt = q->snd_una;
            q->rtx_end = seq;
        } else if (seq > q->rtx_end) {
            q->rtx_end = seq;                      /* holes up to the newest SACK, each once */
        }
    }
}

int reorder_next_rtx(sd_sim *sim, sd_qp *q, uint64_t *seq)
{
    if (q->rtx_end <= q->rtx_nxt)
        return 0;
    if (q->rtx_nxt < q->snd_una)
        q->rtx_nxt = q->snd_una;
    uint64_t end = q->rtx_end < q->snd_max ? q->rtx_end : q->snd_max;
    const uint64_t *s = bm_tx_sack(sim, q);
    uint32_t m = q->reorder_window - 1u;
    while (q->rtx_nxt < end && bit_get(s, (uint32_t)(q->rtx_nxt & m)))
        q->rtx_nxt++;
    if (q->rtx_nxt < end) {
        *seq = q->rtx_nxt;
        return 1;
    }
    q->rtx_nxt = q->rtx_end = 0;                   /* nothing left to resend */
    return 0;
}

void reorder_timeout(sd_sim *sim, sd_qp *q)
{
    (void)sim;
    q->recovery = q->snd_max;
    q->rtx_nxt = q->snd_una;
    q->rtx_end = q->snd_max;
}
