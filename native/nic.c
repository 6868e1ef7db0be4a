/* nic.c: the DPU's RDMA engine for RC queue pairs.
 *
 * Sender: a transmit scheduler round-robins over the host's QPs that have data, skipping those
 * held back by their pacing rate or window; it builds RDMA WRITE packets (FIRST/MIDDLE/LAST/ONLY,
 * AckReq on the last packet of a message) only when the uplink is free, so data never queues
 * inside the NIC. ACKs advance the cumulative sequence, complete messages and feed the CC; a NAK
 * (PSN sequence error) or a retransmission timeout rewinds to the oldest unacknowledged packet
 * (go-back-N, as RoCE NICs without selective repeat do).
 *
 * Receiver: PSN check against the expected PSN (24-bit modular), ACK every ack_interval packets
 * and on AckReq, one NAK per gap, duplicates re-ACKed; CE marks become CNPs (at most one per QP
 * per cnp_interval_ps, the DCQCN NP) or a BECN bit on the next ACK (SD_CNP_ACK_ECHO).
 *
 * sr and ooo QPs (multipath transport) keep their reorder state in reorder.c: this file calls it
 * for the receiver's PSN check, the sender's SACK bookkeeping, retransmissions (each lost packet
 * resent once: reorder.c says how), the timer's arming and timeouts. A retransmitted data packet
 * carries SD_PKT_RTX, so drops of retransmissions are counted apart (port.c count_drop).
 * Each data packet's entropy comes from the QP's path set (paths.c).
 *
 * Sequence numbers: the sender counts packets with a 64-bit sequence; the wire carries
 * PSN = (isn + seq) mod 2^24, and the receiver only ever sees the 24-bit PSN. */
#include <string.h>

#include "sim.h"

uint32_t sd_wire_bytes(sd_sim *sim, uint32_t opcode, uint32_t payload)
{
    uint32_t ip = sim && sim->cfg.ipv6 ? SD_IPV6_HDR : SD_IPV4_HDR;
    uint32_t hdr = SD_ETH_HDR + ip + SD_UDP_HDR + SD_BTH + SD_ICRC + SD_ETH_FCS;
    if (opcode == SD_OP_WRITE_FIRST || opcode == SD_OP_WRITE_ONLY)
        hdr += SD_RETH;
    else if (opcode == SD_OP_ACK)
        hdr += SD_AETH;
    else if (opcode == SD_OP_CNP)
        hdr += SD_CNP_PAD;
    uint32_t frame = hdr + ((payload + 3u) & ~3u);   /* BTH PadCnt pads the payload to 4 bytes */
    if (frame < 64u)
        frame = 64u;                                  /* Ethernet minimum frame */
    return frame + (sim ? sim->cfg.phy_overhead : 0u);
}

/* ---------------------------------------------------------------- scheduling ring */
static void ring_insert(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    sd_nic *h = &sim->nics[q->port];
    if (h->ring == SD_NONE) {
        q->ring_next = q->ring_prev = qi;
        h->ring = qi;
    } else {
        /* insert just before the cursor: it is served last in the current round */
        uint32_t nx = h->ring, pv = sim->qps[nx].ring_prev;
        q->ring_next = nx;
        q->ring_prev = pv;
        sim->qps[pv].ring_next = qi;
        sim->qps[nx].ring_prev = qi;
    }
    q->active = 1;
    h->nactive++;
}

static void ring_remove(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    sd_nic *h = &sim->nics[q->port];
    if (q->ring_next == qi) {
        h->ring = SD_NONE;
    } else {
        sim->qps[q->ring_prev].ring_next = q->ring_next;
        sim->qps[q->ring_next].ring_prev = q->ring_prev;
        if (h->ring == qi)
            h->ring = q->ring_next;
    }
    q->active = 0;
    h->nactive--;
}

int nic_has_work(sd_sim *sim, sd_qp *q)
{
    uint64_t seq;
    return q->snd_nxt < q->snd_end || (q->mode != SD_GBN && reorder_next_rtx(sim, q, &seq) != 0);
}

void nic_activate(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    if (!q->active && nic_has_work(sim, q))
        ring_insert(sim, qi);
}

/* ---------------------------------------------------------------- transmit */
static void arm_rto(sd_sim *sim, sd_qp *q, uint32_t qi, int64_t deadline)
{
    q->rto_deadline = deadline;
    if (deadline >= 0 && (q->rto_queued < 0 || deadline < q->rto_queued)) {
        q->rto_queued = deadline;
        ev_push(sim, deadline, EV_RTO, qi, SD_NONE);
    }
}

/* The retransmission timeout: IRN's RTO_low while few packets are out (sr/ooo), else rto_ps. */
static int64_t rto_of(const sd_sim *sim, const sd_qp *q)
{
    (void)sim;                           /* the QP's own rto_ps (sd_set_qp_nic) */
    if (q->rto_low_ps > 0 && q->snd_max - q->snd_una - q->sacked <= q->rto_low_pkts)
        return q->rto_low_ps;
    return q->rto_ps;
}

/* sr/ooo: the timer runs for the oldest packet in flight that is neither acknowledged nor declared
 * lost (per-packet timing, reorder.c); off when no packet is outstanding. Called after every ACK,
 * as the RTO in force (RTO_low or rto_ps) depends on how many packets are unSACKed. */
static void rearm_reorder_rto(sd_sim *sim, sd_qp *q, uint32_t qi)
{
    if (q->snd_una >= q->snd_max)
        arm_rto(sim, q, qi, -1);
    else if (q->rto_deadline >= 0)
        arm_rto(sim, q, qi, reorder_deadline(sim, q, rto_of(sim, q)));
}

static int window_open(sd_sim *sim, sd_qp *q)
{
    if (q->mode == SD_GBN)
        return q->st->window_bytes == 0 ||
               (q->snd_nxt - q->snd_una) * (uint64_t)q->mtu_payload < q->st->window_bytes;
    uint64_t seq;
    if (reorder_next_rtx(sim, q, &seq) != 0)
        return 1;                        /* a retransmission replaces a lost packet */
    if (q->snd_nxt - q->snd_una >= q->reorder_window)
        return 0;                        /* the receiver could not hold it */
    if (q->bdp_cap && q->snd_nxt - q->snd_una - q->sacked >= q->bdp_cap)
        return 0;                        /* IRN BDP-FC */
    return q->st->window_bytes == 0 ||
           (q->snd_nxt - q->snd_una - q->sacked) * (uint64_t)q->mtu_payload < q->st->window_bytes;
}

static uint32_t msg_of_seq(const sd_sim *sim, const sd_qp *q, uint64_t seq)
{
    uint32_t mi = q->una_msg;
    while (seq >= sim->msgs[mi].start_seq + sim->msgs[mi].npkts)
        mi = sim->msgs[mi].next;
    return mi;
}

static void send_data(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = pkt_alloc(sim);
    if (p == SD_NONE) {
        /* pool exhausted: try again one MTU time later */
        q->next_tx_ps = sim->now + ser_ps(sd_wire_bytes(sim, SD_OP_WRITE_MIDDLE, q->mtu_payload),
                                          (uint64_t)q->line_rate_bps);
        return;
    }
    uint64_t seq = q->snd_nxt;
    uint32_t mi = q->tx_msg;
    int rtx = q->mode != SD_GBN ? reorder_next_rtx(sim, q, &seq) : 0;   /* 0 or SD_RTX_* */
    if (rtx)
        mi = msg_of_seq(sim, q, seq);
    sd_msg *m = &sim->msgs[mi];
    uint32_t idx = (uint32_t)(seq - m->start_seq);
    uint64_t off = (uint64_t)idx * q->mtu_payload;
    uint32_t payload = (uint32_t)(m->bytes - off < q->mtu_payload ? m->bytes - off : q->mtu_payload);
    uint8_t op;
    if (m->npkts == 1)
        op = SD_OP_WRITE_ONLY;
    else if (idx == 0)
        op = SD_OP_WRITE_FIRST;
    else if (idx == m->npkts - 1)
        op = SD_OP_WRITE_LAST;
    else
        op = SD_OP_WRITE_MIDDLE;

    sd_packet *pk = &sim->pkts[p];
    pk->ts_ps = sim->now;
    pk->src = q->addr;
    pk->dst = q->peer_addr;
    pk->dqp = q->peer_qp;
    pk->psn = (uint32_t)((q->isn + seq) & SD_PSN_MASK);
    pk->msn = 0;
    pk->payload = payload;
    pk->wire = (uint16_t)sd_wire_bytes(sim, op, payload);
    pk->in_port = SD_NONE;
    uint8_t slot_flags = 0;
    pk->sport = q->npaths ? path_pick(sim, qi, seq, &slot_flags) : (uint16_t)q->sport;
    pk->opcode = op;
    pk->prio = SD_PRIO_DATA;
    pk->ecn = SD_ECN_ECT0;
    pk->becn = 0;
    pk->flags = (uint8_t)((op == SD_OP_WRITE_LAST || op == SD_OP_WRITE_ONLY ? SD_PKT_ACKREQ : 0) | (q->ar & SD_AR_CLASS_DATA ? SD_PKT_AR : 0) |
                          slot_flags | (seq < q->snd_max ? SD_PKT_RTX : 0));
    pk->syndrome = 0;
    pk->msg = mi;
    pk->ttl = SD_TTL;
    pk->hops = 0;
    if (sim->intl.rec)
        sim->intl.rec[p].nhop = 0;

    if (m->first_tx_ps < 0)
        m->first_tx_ps = sim->now;
    if (seq < q->snd_max) {
        q->st->retx_packets++;
        sim->ctr.retransmitted++;
    } else {
        q->snd_max = seq + 1;
    }
    if (q->mode != SD_GBN)
        reorder_stamp(sim, q, seq);      /* this transmission's epoch, for the per-packet timer */
    if (rtx) {
        reorder_sent_rtx(sim, q, seq, rtx);
    } else {
        q->snd_nxt = seq + 1;
        if (idx == m->npkts - 1)
            q->tx_msg = m->next;
    }
    q->st->sent_bytes += payload;
    q->st->sent_packets++;
    sim->ctr.data_sent++;

    int64_t start = q->next_tx_ps > sim->now ? q->next_tx_ps : sim->now;
    q->next_tx_ps = start + ser_ps(pk->wire, (uint64_t)q->st->rate_bps);
    q->last_wire = pk->wire;
    if (q->rto_deadline < 0) {
        if (q->mode != SD_GBN)
            q->ep_live = q->ep;          /* the only packet the timer now runs for */
        arm_rto(sim, q, qi, sim->now + rto_of(sim, q));
    }
    if (!nic_has_work(sim, q))
        ring_remove(sim, qi);
    dpu_transmit(sim, q->host, p);
    cc_count_bytes(sim, qi, payload);
}

/* Move a QP to another port of its host (sd_bind_qp): out of the old port's ring, into the new
 * one's; the new port pulls at once if it is idle. */
void nic_rebind(sd_sim *sim, uint32_t qi, uint32_t port)
{
    sd_qp *q = &sim->qps[qi];
    int active = q->active;
    if (active)
        ring_remove(sim, qi);
    q->port = port;
    if (active) {
        ring_insert(sim, qi);
        port_kick(sim, port);
    }
}

void nic_pull(sd_sim *sim, uint32_t host)
{
    const sd_node *nd = &sim->nodes[host];
    for (uint32_t i = 0; i < nd->num_ports; i++)
        nic_pull_port(sim, sim->node_ports[nd->first_port + i]);
}

void nic_pull_port(sd_sim *sim, uint32_t port)
{
    sd_nic *h = &sim->nics[port];
    if (h->nactive == 0 || !port_can_send_data(sim, port))
        return;
    uint32_t host = sim->ports[port].node;
    int64_t earliest = INT64_MAX;
    uint32_t qi = h->ring;
    uint32_t held = SD_NONE, nheld = 0;  /* qpc: the first QP skipped for its context, how many */
    for (uint32_t n = h->nactive; n > 0; n--) {
        sd_qp *q = &sim->qps[qi];
        uint32_t next = q->ring_next;
        if (q->mode != SD_GBN && !nic_has_work(sim, q)) {
            ring_remove(sim, qi);        /* SACKs covered what it was to resend */
            if (h->nactive == 0)
                break;
            qi = next;
            continue;
        }
        if (window_open(sim, q)) {
            if (q->next_tx_ps <= sim->now) {
                if (sim->qpc.hosts && !qpc_tx_access(sim, qi)) {
                    /* its context is being fetched: serve another QP, but keep its turn; look
                     * ahead past at most max_outstanding such QPs (the fill wakes us) */
                    if (held == SD_NONE)
                        held = qi;
                    if (++nheld >= sim->qpc.hosts[host].max_outstanding)
                        break;
                    qi = next;
                    continue;
                }
                h->ring = held != SD_NONE ? held : next;   /* round-robin: the next QP goes first next time */
                send_data(sim, qi);
                return;
            }
            if (q->next_tx_ps < earliest)
                earliest = q->next_tx_ps;
        }
        qi = next;
    }
    if (earliest != INT64_MAX && (h->wake_queued < 0 || earliest < h->wake_queued)) {
        h->wake_queued = earliest;
        ev_push(sim, earliest, EV_NIC_WAKE, port, SD_NONE);
    }
}

void nic_wake(sd_sim *sim, uint32_t port)
{
    sd_nic *h = &sim->nics[port];
    if (h->wake_queued != sim->now)
        return;                          /* stale */
    h->wake_queued = -1;
    nic_pull_port(sim, port);
}

/* ---------------------------------------------------------------- control packets */
static void send_ctrl(sd_sim *sim, uint32_t host, uint32_t src, uint32_t dst, uint32_t dqp, uint32_t sport,
                      uint8_t opcode, uint32_t psn, uint32_t msn, uint8_t syndrome, uint8_t becn,
                      int64_t ts_echo, uint32_t int_from, uint32_t sack, uint8_t ar)
{
    uint32_t p = pkt_alloc(sim);
    if (p == SD_NONE)
        return;                          /* counted in pool_exhausted; the sender's RTO recovers */
    sim->pkts[p].hops = int_from != SD_NONE ? (uint8_t)(SD_TTL - sim->pkts[int_from].ttl) : 0;
    if (sim->intl.rec)                       /* an ACK echoes the INT of the packet it acknowledges */
        sim->intl.rec[p] = int_from != SD_NONE ? sim->intl.rec[int_from] : (sd_int_rec){0, 0, {{0, 0, 0, 0}}};
    sd_packet *pk = &sim->pkts[p];
    pk->ts_ps = ts_echo;
    pk->src = src;
    pk->dst = dst;
    pk->dqp = dqp;
    pk->psn = psn & SD_PSN_MASK;
    pk->msn = msn & SD_PSN_MASK;
    pk->payload = 0;
    pk->wire = (uint16_t)sd_wire_bytes(sim, opcode, 0);
    pk->in_port = SD_NONE;
    pk->sport = (uint16_t)sport;
    pk->opcode = opcode;
    pk->prio = SD_PRIO_CTRL;
    pk->ecn = opcode == SD_OP_CNP ? SD_ECN_ECT0 : 0;  /* as a ConnectX CNP (TOS 0xC2); ACKs Not-ECT */
    pk->becn = becn;
    pk->flags = 0;
    pk->syndrome = syndrome;
    pk->msg = sack;
    pk->ttl = SD_TTL;
    if (opcode == SD_OP_ACK && int_from != SD_NONE) {   /* echo the acknowledged packet's path slot and CE */
        const sd_packet *d = &sim->pkts[int_from];
        pk->flags = (uint8_t)((d->flags & SD_PKT_SLOT_MASK) | (d->ecn == SD_ECN_CE ? SD_PKT_CE_ECHO : 0));
    }
    pk->flags |= ar;
    sim->ctr.ctrl_sent++;
    dpu_transmit(sim, host, p);
}

/* The entropy of the ACKs and CNPs a QP sends: its sport, or the first of its path set (failover). */
static inline uint32_t ctrl_sport(const sd_sim *sim, const sd_qp *q)
{
    return q->npaths ? sim->paths.state[q - sim->qps].entropy[0] : q->sport;
}

void nic_send_ack(sd_sim *sim, sd_qp *q, uint8_t syndrome, uint32_t psn, int64_t ts_echo, uint32_t acked,
                  uint32_t sack)
{
    uint8_t becn = 0;
    if (q->cnp_mode == SD_CNP_ACK_ECHO && q->ce_pending) {
        becn = 1;
        q->ce_pending = 0;
        q->st->cnps_tx++;
        sim->ctr.cnp_sent++;
    }
    q->unacked = 0;
    send_ctrl(sim, q->host, q->addr, q->peer_addr, q->peer_qp, ctrl_sport(sim, q), SD_OP_ACK, psn, q->st->msn, syndrome, becn, ts_echo, acked,
              sack, q->ar & SD_AR_CLASS_ACK ? SD_PKT_AR : 0);
}

/* ---------------------------------------------------------------- receiver */
static void receive_data(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = (uint32_t)(pk - sim->pkts);
    sim->ctr.data_delivered++;
    q->st->rx_packets++;
    if (pk->ecn == SD_ECN_CE) {
        q->st->ce_rx++;
        /* NP: a CNP packet (opcode 0x81) on the first CE after at least cnp_interval_ps since this
         * QP's last one (DCQCN paper: 50 us per flow; ConnectX min_time_between_cnps: 4 us, which
         * the firmware applies per port: not modelled, the limit here is per QP). */
        if (q->cnp_mode == SD_CNP_INTERVAL) {
            if (q->last_cnp_ps < 0 || sim->now - q->last_cnp_ps >= q->cnp_interval_ps) {
                q->last_cnp_ps = sim->now;
                q->st->cnps_tx++;
                sim->ctr.cnp_sent++;
                send_ctrl(sim, q->host, q->addr, q->peer_addr, q->peer_qp, ctrl_sport(sim, q), SD_OP_CNP, 0, 0, 0, 1, -1, SD_NONE,
                          SD_NONE, q->ar & SD_AR_CLASS_CNP ? SD_PKT_AR : 0);
            }
        } else if (q->cnp_mode == SD_CNP_ACK_ECHO) {
            q->ce_pending = 1;
        }
    }
    if (q->mode != SD_GBN) {
        reorder_receive(sim, qi, pk);
        return;
    }
    int32_t d = psn_diff(pk->psn, q->st->epsn);
    if (d == 0) {
        q->st->epsn = (q->st->epsn + 1) & SD_PSN_MASK;
        q->st->rx_bytes += pk->payload;
        q->nak_pending = 0;
        q->unacked++;
        if (pk->opcode == SD_OP_WRITE_LAST || pk->opcode == SD_OP_WRITE_ONLY)
            q->st->msn = (q->st->msn + 1) & SD_PSN_MASK;
        if ((pk->flags & SD_PKT_ACKREQ) || q->unacked >= q->ack_interval || q->ce_pending)
            nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
    } else if (d > 0) {
        q->st->rx_ooo++;
        if (!q->nak_pending) {
            q->nak_pending = 1;
            q->st->naks_tx++;
            sim->ctr.nak_sent++;
            nic_send_ack(sim, q, 0x60, q->st->epsn, pk->ts_ps, p, SD_NONE);
        }
    } else {
        q->st->rx_dup++;
        nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
    }
}

/* ---------------------------------------------------------------- sender: ACK processing */
static uint64_t payload_of(const sd_sim *sim, const sd_msg *m, uint64_t from_seq, uint64_t to_seq)
{
    /* payload bytes of m's packets with sequence in [from_seq, to_seq) */
    uint64_t mtu = sim->qps[m->qp].mtu_payload;
    uint64_t a = from_seq > m->start_seq ? (from_seq - m->start_seq) * mtu : 0;
    uint64_t b = (to_seq - m->start_seq) * mtu;
    if (a > m->bytes)
        a = m->bytes;
    if (b > m->bytes)
        b = m->bytes;
    return b - a;
}

static uint64_t advance_una(sd_sim *sim, uint32_t qi, uint64_t new_una)
{
    sd_qp *q = &sim->qps[qi];
    uint64_t acked = 0;
    while (q->una_msg != SD_NONE) {
        sd_msg *m = &sim->msgs[q->una_msg];
        uint64_t end = m->start_seq + m->npkts;
        uint64_t upto = new_una < end ? new_una : end;
        acked += payload_of(sim, m, q->snd_una, upto);
        if (new_una < end)
            break;
        m->finish_ps = sim->now;
        sim->ctr.msgs_completed++;
        if (sim->cring_len < sim->cfg.completion_ring) {
            sd_completion *c = &sim->cring[(sim->cring_head + sim->cring_len) % sim->cfg.completion_ring];
            c->t_ps = sim->now;
            c->msg = q->una_msg;
            c->qp = qi;
            sim->cring_len++;
        }
        q->snd_una = end;
        q->una_msg = m->next;
    }
    q->snd_una = new_una;
    q->st->acked_bytes += acked;
    return acked;
}

static void go_back_n(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    q->snd_nxt = q->snd_una;
    q->tx_msg = q->una_msg;
    nic_activate(sim, qi);
}

/* One SD_EV_ACK for the ACKs accumulated under ack_batch (last = the latest ACK's fields). */
static void deliver_ack_batch(sd_sim *sim, uint32_t qi, const sd_cc_io *last)
{
    sd_qp *q = &sim->qps[qi];
    sd_cc_io b = *last;
    b.acked_bytes = q->acc_bytes;
    b.batch_acks = q->acc_acks;
    b.batch_ecn = q->acc_ecn;
    b.ecn = q->acc_ecn > 0;
    b.rtt_min_ps = q->acc_rtt_min;
    q->acc_acks = q->acc_ecn = 0;
    q->acc_bytes = 0;
    q->acc_rtt_min = -1;
    cc_event(sim, qi, SD_EV_ACK, &b);
}

static void receive_ack(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    sim->ctr.ctrl_delivered++;
    uint32_t una_psn = (uint32_t)((q->isn + q->snd_una) & SD_PSN_MASK);
    int nak = pk->syndrome == 0x60;
    /* an ACK covers pk->psn; a NAK says pk->psn is the next expected */
    int32_t d = psn_diff(nak ? pk->psn : (pk->psn + 1) & SD_PSN_MASK, una_psn);
    uint64_t acked = 0;
    if (d > 0 && q->snd_una + (uint64_t)d <= q->snd_max) {
        if (q->mode != SD_GBN)
            reorder_clear_acked(sim, q, q->snd_una, q->snd_una + (uint64_t)d);
        acked = advance_una(sim, qi, q->snd_una + (uint64_t)d);
        q->una_ps = sim->now;
        if (q->snd_nxt < q->snd_una) {         /* an ACK overtook a go-back-N rewind */
            q->snd_nxt = q->snd_una;
            q->tx_msg = q->una_msg;
            if (q->active && q->snd_nxt >= q->snd_end)
                ring_remove(sim, qi);
        }
        if (q->mode == SD_GBN)
            arm_rto(sim, q, qi, q->snd_una < q->snd_max ? sim->now + rto_of(sim, q) : -1);
    }
    if (q->npaths)
        path_feedback(sim, qi, pk, nak);
    int new_loss = nak;
    if (q->mode != SD_GBN) {
        uint64_t before = q->recovery;
        reorder_ack(sim, qi, pk, nak);
        new_loss = nak && before == 0 && q->recovery != 0;   /* sr: the first NACK of an episode */
        rearm_reorder_rto(sim, q, qi);
        nic_activate(sim, qi);
    }
    if (pk->becn) {
        q->st->cnps_rx++;
        cc_event(sim, qi, SD_EV_CNP, NULL);
    }
    sd_cc_io in;
    memset(&in, 0, sizeof in);
    in.acked_bytes = acked;
    in.ecn = pk->becn;
    in.rtt_ps = pk->ts_ps >= 0 ? sim->now - pk->ts_ps : -1;
    in.rtt_min_ps = in.rtt_ps;
    in.batch_acks = 1;
    in.batch_ecn = pk->becn;
    in.hops = pk->hops;
    if (sim->intl.rec) {
        const sd_int_rec *r = &sim->intl.rec[pk - sim->pkts];
        in.int_nhop = r->nhop;
        for (uint32_t i = 0; i < SD_INT_HOPS; i++)
            in.int_hop[i] = r->hop[i];
    }
    if (nak)
        q->st->naks_rx++;
    /* sr: only the first NACK of an episode is a loss to the CC; the others count as SACKed ACKs */
    if (new_loss) {
        if (q->acc_acks > 0)             /* hand over the ACKs batched so far before the NAK */
            deliver_ack_batch(sim, qi, &in);
        cc_event(sim, qi, SD_EV_NAK, &in);
        if (q->mode == SD_GBN && q->snd_una < q->snd_max)
            go_back_n(sim, qi);
    } else if (q->ack_batch <= 1) {
        cc_event(sim, qi, SD_EV_ACK, &in);
    } else {
        /* batched delivery: aggregate until ack_batch ACKs, or until nothing is outstanding */
        q->acc_acks++;
        q->acc_ecn += pk->becn;
        q->acc_bytes += acked;
        if (in.rtt_ps >= 0 && (q->acc_rtt_min < 0 || in.rtt_ps < q->acc_rtt_min))
            q->acc_rtt_min = in.rtt_ps;
        if (q->acc_acks >= q->ack_batch || q->snd_una == q->snd_end)
            deliver_ack_batch(sim, qi, &in);
    }
    nic_pull_port(sim, q->port);
}

/* A NIC takes only what is addressed to it: a plain RoCEv2 frame (a VXLAN frame is for a VTEP,
 * which a NIC without a vSwitch does not have: its RoCE engine never sees UDP 4789) whose
 * destination is an address of this host and whose destination QP lives here. Anything else is counted
 * (misdelivered, per host and in total) and dropped, as a NIC drops a frame for another address or
 * a BTH for a QPN it does not own; it never touches another host's QP state. */
void nic_receive(sd_sim *sim, uint32_t host, uint32_t p)
{
    sd_packet *pk = &sim->pkts[p];
    if (sim->addr_host[pk->dst] != host || pk->dqp >= sim->num_qps || sim->qps[pk->dqp].host != host ||
        (sim->vsw.meta && sim->vsw.meta[p] & SD_VS_META_ENCAP)) {
        sim->ctr.misdelivered++;
        sim->hosts[host].misdelivered++;
        count_drop(sim, pk);
        pkt_free(sim, p);
        return;
    }
    if (sim->qpc.hosts && !qpc_rx_access(sim, sim->pkts[p].dqp, p))
        return;                          /* waits for its QP's context (qpc.c) */
    nic_process(sim, p);
}

int sd_host_misdelivered(sd_sim *sim, uint32_t host, uint64_t *out)
{
    if (host >= sim->num_nodes || !node_is_host(sim, host))
        return sd_fail(sim, SD_EINVAL, "misdelivered: %u is not a host (hosts are 0..%u)", host, sim->cfg.num_hosts - 1);
    *out = sim->hosts[host].misdelivered;
    return SD_OK;
}

void nic_process(sd_sim *sim, uint32_t p)
{
    sd_packet *pk = &sim->pkts[p];
    uint32_t qi = pk->dqp;
    sd_qp *q = &sim->qps[qi];
    if (pk->opcode == SD_OP_ACK) {
        receive_ack(sim, qi, pk);
    } else if (pk->opcode == SD_OP_CNP) {
        sim->ctr.ctrl_delivered++;
        q->st->cnps_rx++;
        cc_event(sim, qi, SD_EV_CNP, NULL);
        nic_pull_port(sim, q->port);
    } else {
        receive_data(sim, qi, pk);
    }
    pkt_free(sim, p);
}

/* ---------------------------------------------------------------- timers and posting */
void nic_rto(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    if (q->rto_queued != sim->now)
        return;                          /* stale */
    q->rto_queued = -1;
    if (q->rto_deadline < 0)
        return;
    if (q->rto_deadline > sim->now) {
        arm_rto(sim, q, qi, q->rto_deadline);
        return;
    }
    if (q->mode != SD_GBN) {
        /* per-packet timing: declare lost what was last sent at least one RTO ago; if nothing is
         * yet (the oldest such packet was acknowledged), wait for the next oldest, no timeout */
        int live;
        uint64_t lost = reorder_timeout(sim, q, rto_of(sim, q), &live);
        int64_t next = live ? reorder_deadline(sim, q, rto_of(sim, q)) : -1;
        q->rto_deadline = -1;
        arm_rto(sim, q, qi, next);       /* -1: a resend or new packet re-arms it (send_data) */
        if (lost == 0)
            return;
        q->st->timeouts++;
        sim->ctr.timeouts++;
        cc_event(sim, qi, SD_EV_TIMEOUT, NULL);
        path_timeout(sim, qi);
        nic_activate(sim, qi);
        nic_pull_port(sim, q->port);
        return;
    }
    q->st->timeouts++;
    sim->ctr.timeouts++;
    q->rto_deadline = -1;
    cc_event(sim, qi, SD_EV_TIMEOUT, NULL);
    path_timeout(sim, qi);
    go_back_n(sim, qi);
    arm_rto(sim, q, qi, sim->now + rto_of(sim, q));
    nic_pull_port(sim, q->port);
}

void nic_post_release(sd_sim *sim)
{
    sim->post_queued = -1;
    while (sim->post_next < sim->num_msgs) {
        uint32_t mi = sim->post_order[sim->post_next];
        sd_msg *m = &sim->msgs[mi];
        if (m->post_ps > sim->now) {
            sim->post_queued = m->post_ps;
            ev_push(sim, m->post_ps, EV_POST, 0, SD_NONE);
            return;
        }
        sim->post_next++;
        sd_qp *q = &sim->qps[m->qp];
        int was_idle = q->snd_una == q->snd_end;
        m->start_seq = q->snd_end;
        q->snd_end += m->npkts;
        q->st->posted_bytes += m->bytes;
        if (q->last_msg != SD_NONE)
            sim->msgs[q->last_msg].next = mi;
        q->last_msg = mi;
        if (q->una_msg == SD_NONE)
            q->una_msg = mi;
        if (q->tx_msg == SD_NONE)
            q->tx_msg = mi;
        if (!q->cc_started) {
            q->cc_started = 1;
            cc_event(sim, m->qp, SD_EV_START, NULL);
        } else if (was_idle) {
            cc_resume_timers(sim, m->qp);
        }
        nic_activate(sim, m->qp);
        nic_pull_port(sim, q->port);
    }
}
