/* nic.c: the DPU's RDMA engine for RC queue pairs.
 *
 * Sender: a transmit scheduler round-robins over the host's QPs that have data, skipping those
 * held back by their pacing rate or window; it builds the packets of its messages (WRITE or SEND
 * FIRST/MIDDLE/LAST/ONLY, with or without immediate, AckReq on the last packet of a message; a READ
 * request; a responder's READ responses first) only when the uplink is free, so data never queues
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
 * PSN = (isn + seq) mod 2^24, and the receiver only ever sees the 24-bit PSN.
 *
 * Verbs (IBTA Vol. 1 §9.4, §9.7): a message is a WRITE, a WRITE with immediate, a SEND (with or
 * without immediate) or a READ (sd_msg.verb).
 *   SEND and WRITE with immediate consume a receive posted at the responder: its receive queue
 *       holds rq_posted receives (unlimited by default, sd_set_qp_verbs), message k of a QP (in
 *       posting order: sd_msg.rq_index, the WQE sequence number IRN carries for out-of-order
 *       placement) needs receive k. A packet that needs a receive not yet posted (every SEND
 *       packet, the last packet of a WRITE with immediate) is not accepted: the responder answers
 *       an RNR NAK carrying its RNR timer (AETH 001 + 5-bit code), once per hole as for a
 *       sequence NAK; the requester stops sending for that time, then goes back to the NAK's PSN,
 *       and after rnr_retry RNR NAKs without progress (7 = forever) its messages complete in
 *       error (SD_WC_RNR_RETRY_EXC, the rest SD_WC_FLUSH). The message completes at the responder
 *       when it arrives whole, in order (a responder completion), and the application reposts
 *       the receive rq_repost_ps later.
 *   READ: one READ request (RETH: remote address and length) occupies the PSNs of all its
 *       responses; the responder streams READ Response First/Middle/Last/Only (AETH on
 *       First/Last/Only) back under its own rate (its CC and pacing: CNPs from the requester
 *       cut it; READ responses are not acknowledged, so window-based CCs see no ACKs for them),
 *       ahead of its own requests. Responses are the implicit acknowledgement of the READ (and of
 *       the requests before it); an ACK for a later PSN that overtakes them cannot complete the
 *       READ (acked_max: snd_una stops at the READ and catches up when the responses are in). At
 *       most max_rd_atomic READs are outstanding per QP. Recovery: gbn re-requests the rest of
 *       the READ from the first missing response (a response gap or a timeout); sr/ooo treat each
 *       response as a SACK of its PSN and re-request each lost response alone (a one-packet READ
 *       request), by the NACK cursor (sr) or the timer (sr and ooo), as they resend lost WRITE
 *       packets. A responder re-executes a duplicate READ request (PSN already passed). */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

uint32_t sd_wire_bytes(sd_sim *sim, uint32_t opcode, uint32_t payload)
{
    uint32_t ip = sim && sim->cfg.ipv6 ? SD_IPV6_HDR : SD_IPV4_HDR;
    uint32_t hdr = SD_ETH_HDR + ip + SD_UDP_HDR + SD_BTH + SD_ICRC + SD_ETH_FCS;
    if (op_has_reth(opcode))
        hdr += SD_RETH;
    if (op_has_imm(opcode))
        hdr += SD_IMMDT;
    if (op_has_aeth(opcode))
        hdr += SD_AETH;
    if (opcode == SD_OP_CMP_SWAP || opcode == SD_OP_FETCH_ADD)
        hdr += SD_ATOMIC_ETH;
    if (opcode == SD_OP_ATOMIC_ACK)
        hdr += SD_ATOMIC_ACK_ETH;
    if (opcode == SD_OP_CNP)
        hdr += SD_CNP_PAD;
    uint32_t frame = hdr + ((payload + 3u) & ~3u);   /* BTH PadCnt pads the payload to 4 bytes */
    if (frame < 64u)
        frame = 64u;                                  /* Ethernet minimum frame */
    return frame + (sim ? sim->cfg.phy_overhead : 0u);
}

/* A completion for the ring (dropped when the ring is full: sd_msg keeps every message's outcome). */
static void cq_push(sd_sim *sim, uint32_t msg, uint32_t qp, uint16_t kind, uint16_t status)
{
    if (sim->cring_len >= sim->cfg.completion_ring)
        return;
    sd_completion *c = &sim->cring[(sim->cring_head + sim->cring_len) % sim->cfg.completion_ring];
    memset(c, 0, sizeof *c);
    c->t_ps = sim->now;
    c->msg = msg;
    c->qp = qp;
    c->kind = kind;
    c->status = status;
    sim->cring_len++;
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
    return q->rd_len > 0 || q->snd_nxt < q->snd_end || (q->mode != SD_GBN && reorder_next_rtx(sim, q, &seq) != 0);
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

/* A READ at the head of what is left to send waits for a free READ slot (max_rd_atomic) and, on an
 * sr/ooo QP, for room for all its PSNs in the reorder window. */
static int read_blocked(const sd_sim *sim, const sd_qp *q)
{
    if (q->tx_msg == SD_NONE || q->snd_nxt >= q->snd_end)
        return 0;
    const sd_msg *m = &sim->msgs[q->tx_msg];
    if (!verb_is_rd(m->verb) || q->snd_nxt != m->start_seq)
        return 0;
    return q->rd_out >= q->max_rd_atomic ||
           (q->mode != SD_GBN && q->snd_nxt + m->npkts - q->snd_una > q->reorder_window);
}

static int window_open(sd_sim *sim, sd_qp *q)
{
    if (q->rd_len > 0)
        return 1;                        /* READ responses: not windowed (never acknowledged) */
    if (q->reads_live && read_blocked(sim, q)) {
        uint64_t seq;
        return q->mode != SD_GBN && reorder_next_rtx(sim, q, &seq) != 0;
    }
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

static uint8_t opcode_of(uint32_t verb, uint32_t idx, uint32_t npkts)
{
    int only = npkts == 1, first = idx == 0, last = idx == npkts - 1;
    switch (verb) {
    case SD_VERB_SEND:
        return only ? SD_OP_SEND_ONLY : first ? SD_OP_SEND_FIRST : last ? SD_OP_SEND_LAST : SD_OP_SEND_MIDDLE;
    case SD_VERB_SEND_IMM:
        return only ? SD_OP_SEND_ONLY_IMM : first ? SD_OP_SEND_FIRST : last ? SD_OP_SEND_LAST_IMM : SD_OP_SEND_MIDDLE;
    case SD_VERB_WRITE_IMM:
        return only ? SD_OP_WRITE_ONLY_IMM : first ? SD_OP_WRITE_FIRST : last ? SD_OP_WRITE_LAST_IMM : SD_OP_WRITE_MIDDLE;
    case SD_VERB_READ:
        return SD_OP_READ_REQ;
    case SD_VERB_ATOMIC_CAS:
        return SD_OP_CMP_SWAP;
    case SD_VERB_ATOMIC_FADD:
        return SD_OP_FETCH_ADD;
    default:
        return only ? SD_OP_WRITE_ONLY : first ? SD_OP_WRITE_FIRST : last ? SD_OP_WRITE_LAST : SD_OP_WRITE_MIDDLE;
    }
}

/* Payload bytes of packets [idx, idx + n) of message m. */
static uint64_t msg_span_bytes(const sd_sim *sim, const sd_msg *m, uint32_t idx, uint32_t n)
{
    uint64_t mtu = sim->qps[m->qp].mtu_payload, a = (uint64_t)idx * mtu, b = (uint64_t)(idx + n) * mtu;
    return (b < m->bytes ? b : m->bytes) - (a < m->bytes ? a : m->bytes);
}

static void send_read_response(sd_sim *sim, uint32_t qi);

static void send_data(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    if (q->rd_len > 0) {
        send_read_response(sim, qi);     /* responses go ahead of the QP's own requests */
        return;
    }
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
    uint8_t op = opcode_of(m->verb, idx, m->npkts);
    uint32_t span = 1;                   /* PSNs this packet occupies: a READ request, all its responses' */
    if (op == SD_OP_CMP_SWAP || op == SD_OP_FETCH_ADD) {
        payload = 0;                     /* the operands ride in the AtomicETH; one PSN, one response */
        if (rtx)
            reorder_sent_rtx(sim, q, seq, rtx);
    } else if (op == SD_OP_READ_REQ) {
        payload = 0;
        if (!rtx) {
            span = m->npkts - idx;       /* the READ, or (gbn, going back) the rest of it */
        } else {
            /* sr/ooo: the lost responses, one request for a run of consecutive ones of this READ
             * (a lost request: all of them at once) */
            uint64_t next;
            int kind;
            reorder_sent_rtx(sim, q, seq, rtx);
            while (idx + span < m->npkts && (kind = reorder_next_rtx(sim, q, &next)) != 0 && next == seq + span) {
                reorder_sent_rtx(sim, q, next, kind);
                span++;
            }
        }
    }

    sd_packet *pk = &sim->pkts[p];
    pk->ts_ps = sim->now;
    pk->src = q->addr;
    pk->dst = q->peer_addr;
    pk->dqp = q->peer_qp;
    pk->psn = (uint32_t)((q->isn + seq) & SD_PSN_MASK);
    pk->msn = op == SD_OP_READ_REQ ? (uint32_t)msg_span_bytes(sim, m, idx, span) : 0;   /* READ: RETH length */
    pk->payload = payload;
    pk->wire = (uint16_t)sd_wire_bytes(sim, op, payload);
    pk->in_port = SD_NONE;
    uint8_t slot_flags = 0;
    pk->sport = q->npaths ? path_pick(sim, qi, seq, &slot_flags) : (uint16_t)q->sport;
    pk->opcode = op;
    pk->prio = SD_PRIO_DATA;
    pk->ecn = SD_ECN_ECT0;
    pk->becn = 0;
    pk->flags = (uint8_t)((op_is_last(op) ? SD_PKT_ACKREQ : 0) | (q->ar & SD_AR_CLASS_DATA ? SD_PKT_AR : 0) |
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
    }
    if (seq + span > q->snd_max)
        q->snd_max = seq + span;
    if (q->mode != SD_GBN)
        for (uint32_t k = 0; k < span; k++)
            reorder_stamp(sim, q, seq + k);   /* this transmission's epoch, for the per-packet timer */
    if (rtx) {
        if (!op_is_rd_req(op))
            reorder_sent_rtx(sim, q, seq, rtx);   /* (a READ's and an ATOMIC's are marked above) */
    } else {
        if (op_is_rd_req(op) && seq == m->start_seq)
            q->rd_out++;                 /* a READ/ATOMIC slot until its last response is in */
        q->snd_nxt = seq + span;
        if (idx + span == m->npkts)
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

/* ---------------------------------------------------------------- READ responder */
void rd_free(sd_sim *sim)
{
    free(sim->rd.jobs);
    free(sim->rd.atom);
    free(sim->rd.repost);
    sim->rd.jobs = NULL;
    sim->rd.atom = NULL;
    sim->rd.repost = NULL;
    sim->rd.cap = sim->rd.atom_cap = sim->rd.repost_cap = 0;
}

uint64_t rd_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)sim->rd.cap * SD_MAX_RD_ATOMIC * sizeof(sd_rd_job) + (uint64_t)sim->rd.atom_cap * sizeof(sd_rd_atom) +
           (uint64_t)sim->rd.repost_cap * sizeof(int64_t);
}

/* Room for the ATOMIC word (and saved results) of every QP, new ones zeroed (setup time). */
int rd_reserve_atom(sd_sim *sim)
{
    if (!grow_array((void **)&sim->rd.atom, &sim->rd.atom_cap, sizeof *sim->rd.atom, sim->num_qps))
        return sd_fail(sim, SD_ENOMEM, "ATOMIC words: out of memory");
    return SD_OK;
}

/* Room for the READ jobs of every QP (setup time: sd_post_msgs posts a READ). */
int rd_reserve(sd_sim *sim)
{
    if (!grow_array((void **)&sim->rd.jobs, &sim->rd.cap, SD_MAX_RD_ATOMIC * sizeof *sim->rd.jobs, sim->num_qps))
        return sd_fail(sim, SD_ENOMEM, "READ response jobs: out of memory");
    return SD_OK;
}

/* The responder takes a READ request: answer npkts responses from psn (0 = no room: dropped, the
 * requester's timer asks again). */
static int rd_enqueue(sd_sim *sim, uint32_t qi, const sd_packet *pk, uint32_t npkts)
{
    int atomic = pk->opcode != SD_OP_READ_REQ;
    sd_qp *q = &sim->qps[qi];
    if (q->rd_len >= SD_MAX_RD_ATOMIC || qi >= sim->rd.cap)
        return 0;
    const sd_msg *m = &sim->msgs[pk->msg];
    const sd_qp *r = &sim->qps[m->qp];
    int32_t idx = psn_diff(pk->psn, (uint32_t)((r->isn + m->start_seq) & SD_PSN_MASK));
    sd_rd_job *j = &sim->rd.jobs[(size_t)qi * SD_MAX_RD_ATOMIC + (q->rd_head + q->rd_len) % SD_MAX_RD_ATOMIC];
    j->psn = pk->psn;
    j->npkts = npkts;
    j->sent = 0;
    j->msg = pk->msg;
    j->offset = idx > 0 ? (uint64_t)idx * r->mtu_payload : 0;   /* the requester's packets (the pair's MTU) */
    j->atomic = (uint32_t)atomic;
    j->pad0 = 0;
    q->rd_len++;
    if (!q->cc_started) {                /* its first data: the responder's CC starts (rate, timers) */
        q->cc_started = 1;
        cc_event(sim, qi, SD_EV_START, NULL);
    } else if (q->rd_len == 1 && q->snd_una == q->snd_end) {
        cc_resume_timers(sim, qi);       /* idle until now, as nic_post_release resumes a sender */
    }
    nic_activate(sim, qi);
    return 1;
}

static void send_read_response(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = pkt_alloc(sim);
    if (p == SD_NONE) {
        q->next_tx_ps = sim->now + ser_ps(sd_wire_bytes(sim, SD_OP_READ_RESP_MIDDLE, sim->cfg.mtu_payload),
                                          (uint64_t)q->line_rate_bps);
        return;
    }
    sd_rd_job *j = &sim->rd.jobs[(size_t)qi * SD_MAX_RD_ATOMIC + q->rd_head];
    const sd_msg *m = &sim->msgs[j->msg];
    uint32_t mtu = sim->qps[m->qp].mtu_payload;   /* the requester's: its PSNs count responses of this size */
    uint64_t off = j->offset + (uint64_t)j->sent * mtu;
    uint64_t left = m->bytes > off ? m->bytes - off : 0;
    uint32_t payload = (uint32_t)(left < mtu ? left : mtu);
    uint8_t op = j->atomic ? SD_OP_ATOMIC_ACK : j->npkts == 1 ? SD_OP_READ_RESP_ONLY : j->sent == 0 ? SD_OP_READ_RESP_FIRST
               : j->sent == j->npkts - 1 ? SD_OP_READ_RESP_LAST : SD_OP_READ_RESP_MIDDLE;
    if (j->atomic)
        payload = 0;                     /* the original data rides in the AtomicAckETH */
    sd_packet *pk = &sim->pkts[p];
    pk->ts_ps = sim->now;
    pk->src = q->addr;
    pk->dst = q->peer_addr;
    pk->dqp = q->peer_qp;
    pk->psn = (j->psn + j->sent) & SD_PSN_MASK;
    pk->msn = q->st->msn;
    pk->payload = payload;
    pk->wire = (uint16_t)sd_wire_bytes(sim, op, payload);
    pk->in_port = SD_NONE;
    pk->sport = (uint16_t)(q->npaths ? sim->paths.state[qi].entropy[0] : q->sport);
    pk->opcode = op;
    pk->prio = SD_PRIO_DATA;
    pk->ecn = SD_ECN_ECT0;
    pk->becn = 0;
    pk->flags = (uint8_t)(q->ar & SD_AR_CLASS_DATA ? SD_PKT_AR : 0);
    pk->syndrome = op_has_aeth(op) ? SD_SYN_ACK : 0;
    pk->msg = j->msg;
    pk->ttl = SD_TTL;
    pk->hops = 0;
    if (sim->intl.rec)
        sim->intl.rec[p].nhop = 0;
    if (++j->sent == j->npkts) {
        q->rd_head = (uint8_t)((q->rd_head + 1) % SD_MAX_RD_ATOMIC);
        q->rd_len--;
    }
    q->st->read_resp_bytes += payload;
    sim->ctr.data_sent++;
    int64_t start = q->next_tx_ps > sim->now ? q->next_tx_ps : sim->now;
    q->next_tx_ps = start + ser_ps(pk->wire, (uint64_t)q->st->rate_bps);
    q->last_wire = pk->wire;
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
/* The notification point: a CE-marked data packet becomes a CNP packet (opcode 0x81) on the first CE
 * after at least cnp_interval_ps since this QP's last one (DCQCN paper: 50 us per flow; ConnectX
 * min_time_between_cnps: 4 us, which the firmware applies per port: not modelled, the limit here is
 * per QP), or a BECN on the next ACK (SD_CNP_ACK_ECHO). READ responses are never acknowledged:
 * their CE marks always become CNP packets (cnp = 1). */
static void np_ce(sd_sim *sim, sd_qp *q, int cnp)
{
    q->st->ce_rx++;
    if (q->cnp_mode == SD_CNP_NONE)
        return;                          /* this NIC does not report CE marks (sd_set_qp_nic) */
    if (q->cnp_mode == SD_CNP_INTERVAL || cnp) {
        if (q->last_cnp_ps < 0 || sim->now - q->last_cnp_ps >= q->cnp_interval_ps) {
            q->last_cnp_ps = sim->now;
            q->st->cnps_tx++;
            sim->ctr.cnp_sent++;
            send_ctrl(sim, q->host, q->addr, q->peer_addr, q->peer_qp, ctrl_sport(sim, q), SD_OP_CNP, 0, 0, 0, 1, -1, SD_NONE,
                      SD_NONE, q->ar & SD_AR_CLASS_CNP ? SD_PKT_AR : 0);
        }
    } else {
        q->ce_pending = 1;
    }
}

/* Whether the responder has the receive packet pk needs (a packet that needs none: yes). */
int nic_recv_ready(const sd_sim *sim, const sd_qp *q, const sd_packet *pk)
{
    if (!op_needs_recv(pk->opcode) || q->st->rq_posted == UINT64_MAX || pk->msg >= sim->num_msgs)
        return 1;
    return (uint64_t)sim->msgs[pk->msg].rq_index < q->st->rq_posted;
}

/* An RNR NAK for pk: its PSN is the next expected (the requester resends from there after the timer). */
void nic_rnr_nak(sd_sim *sim, sd_qp *q, const sd_packet *pk)
{
    q->st->rnr_naks_tx++;
    sim->ctr.nak_sent++;
    nic_send_ack(sim, q, (uint8_t)(SD_SYN_RNR | q->rnr_timer), q->st->epsn, pk->ts_ps, (uint32_t)(pk - sim->pkts),
                 SD_NONE);
}

/* The message of the peer (requester) holding the PSN psn, SD_NONE if none is outstanding there. */
static uint32_t peer_msg_of_psn(const sd_sim *sim, const sd_qp *q, uint32_t psn)
{
    const sd_qp *s = &sim->qps[q->peer_qp];
    int32_t d = psn_diff(psn, (uint32_t)((s->isn + s->snd_una) & SD_PSN_MASK));
    if (d < 0 || s->una_msg == SD_NONE)
        return SD_NONE;
    uint64_t seq = s->snd_una + (uint64_t)d;
    uint32_t mi = s->una_msg;
    while (mi != SD_NONE && seq >= sim->msgs[mi].start_seq + sim->msgs[mi].npkts)
        mi = sim->msgs[mi].next;
    return mi;
}

/* A message arrived whole at responder qi (ePSN passed its last PSN; msg = SD_NONE: find it by PSN).
 * A SEND or WRITE with immediate consumed its receive: a responder completion, and the receive is
 * reposted rq_repost_ps later. */
void nic_rx_msg_done(sd_sim *sim, uint32_t qi, uint32_t last_psn, uint32_t msg)
{
    sd_qp *q = &sim->qps[qi];
    q->st->msn = (q->st->msn + 1) & SD_PSN_MASK;
    if (msg == SD_NONE)
        msg = peer_msg_of_psn(sim, q, last_psn);
    if (msg == SD_NONE || msg >= sim->num_msgs)
        return;
    sd_msg *m = &sim->msgs[msg];
    if (m->verb != SD_VERB_SEND && m->verb != SD_VERB_SEND_IMM && m->verb != SD_VERB_WRITE_IMM)
        return;
    m->rx_done_ps = sim->now;
    q->st->rx_completions++;
    q->st->rq_used++;
    cq_push(sim, msg, qi, SD_CQ_RESPONDER, SD_WC_SUCCESS);
    int64_t repost = qi < sim->rd.repost_cap ? sim->rd.repost[qi] : 0;
    if (q->st->rq_posted != UINT64_MAX && repost >= 0) {
        if (repost == 0)
            q->st->rq_posted++;
        else
            ev_push(sim, sim->now + repost, EV_RQ_REPOST, qi, SD_NONE);
    }
}

void nic_rq_repost(sd_sim *sim, uint32_t qi)
{
    if (sim->qps[qi].st->rq_posted != UINT64_MAX)
        sim->qps[qi].st->rq_posted++;
}

/* An ATOMIC executes on the responder's word once (IBTA §9.4.5): fetch-and-add adds, compare-and-swap
 * swaps if the word equals the compare data; the original value goes back in the ATOMIC Acknowledge
 * and is kept for a duplicate of the request, which is answered from it and never executed again. */
static void atomic_execute(sd_sim *sim, uint32_t qi, const sd_packet *pk)
{
    sd_rd_atom *a = &sim->rd.atom[qi];
    sd_msg *m = &sim->msgs[pk->msg];
    uint64_t orig = a->word;
    if (pk->opcode == SD_OP_FETCH_ADD)
        a->word = orig + m->atomic_value;
    else if (orig == m->atomic_compare)
        a->word = m->atomic_value;
    m->atomic_orig = orig;
    sd_rd_replay *r = &a->replay[a->head];
    a->head = (a->head + 1) % SD_MAX_RD_ATOMIC;
    r->psn = pk->psn;
    r->valid = 1;
    r->orig = orig;
}

/* A request answered before comes again: a READ is executed again, an ATOMIC answered from its
 * saved result (0 = not among the last SD_MAX_RD_ATOMIC ATOMICs: dropped). */
static int rd_duplicate(sd_sim *sim, uint32_t qi, const sd_packet *pk, uint32_t n)
{
    sd_qp *q = &sim->qps[qi];
    if (pk->opcode != SD_OP_READ_REQ) {
        const sd_rd_atom *a = &sim->rd.atom[qi];
        int found = 0;
        for (uint32_t i = 0; i < SD_MAX_RD_ATOMIC && !found; i++)
            found = a->replay[i].valid && a->replay[i].psn == pk->psn;
        if (!found)
            return 0;
    }
    if (q->mode == SD_GBN)
        q->rd_len = 0;                   /* the requester goes back: answer from here */
    return rd_enqueue(sim, qi, pk, n);
}

/* A new READ or ATOMIC request: its responses queued and an ATOMIC executed (0 = no room for them:
 * dropped, counted as rx_late, the requester's timer asks again). */
static int rd_accept(sd_sim *sim, uint32_t qi, const sd_packet *pk, uint32_t n)
{
    if (!rd_enqueue(sim, qi, pk, n)) {
        sim->qps[qi].st->rx_late++;
        return 0;
    }
    if (pk->opcode != SD_OP_READ_REQ)
        atomic_execute(sim, qi, pk);
    return 1;
}

/* The responder takes a READ or ATOMIC request (every transport): in order, it answers it and ePSN
 * passes all its responses' PSNs; a duplicate (its PSN already passed, or held already) is answered
 * again (rd_duplicate; gbn: in place of any responses still queued, as the requester resends
 * everything from there); sr/ooo hold one that comes early and answer it at once; gbn NAKs a gap
 * as for any packet. */
static void receive_read_request(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = (uint32_t)(pk - sim->pkts);
    uint32_t n = pk->opcode != SD_OP_READ_REQ ? 1u
               : (uint32_t)(((uint64_t)pk->msn + sim->qps[sim->msgs[pk->msg].qp].mtu_payload - 1) /
                            sim->qps[sim->msgs[pk->msg].qp].mtu_payload);
    if (n == 0)
        n = 1;
    int32_t d = psn_diff(pk->psn, q->st->epsn);
    if (d < 0) {
        q->st->rx_dup++;
        if (!rd_duplicate(sim, qi, pk, n))
            q->st->rx_late++;
        nic_pull_port(sim, q->port);
        return;
    }
    if (q->mode == SD_GBN) {
        if (d > 0) {
            q->st->rx_ooo++;
            if (!q->nak_pending && !q->nak_off) {
                q->nak_pending = 1;
                q->st->naks_tx++;
                sim->ctr.nak_sent++;
                nic_send_ack(sim, q, SD_SYN_NAK_SEQ, q->st->epsn, pk->ts_ps, p, SD_NONE);
            }
            return;
        }
        if (!rd_accept(sim, qi, pk, n))
            return;
        q->nak_pending = 0;
        q->st->epsn = (q->st->epsn + n) & SD_PSN_MASK;
        nic_rx_msg_done(sim, qi, (pk->psn + n - 1) & SD_PSN_MASK, pk->msg);
        nic_pull_port(sim, q->port);
        return;
    }
    if ((uint64_t)d + n > q->reorder_window) {
        q->st->rx_late++;                /* cannot be held: the requester's timer asks again */
        return;
    }
    if (d > 0 && !reorder_hold_range(sim, q, pk->psn, n)) {
        q->st->rx_dup++;                 /* held already: answered before */
        if (!rd_duplicate(sim, qi, pk, n))
            q->st->rx_late++;
        nic_pull_port(sim, q->port);
        return;
    }
    if (!rd_accept(sim, qi, pk, n))
        return;
    if (d == 0) {
        q->st->epsn = (q->st->epsn + n) & SD_PSN_MASK;
        nic_rx_msg_done(sim, qi, (pk->psn + n - 1) & SD_PSN_MASK, pk->msg);
        if (reorder_drain(sim, qi) > 0)
            nic_send_ack(sim, q, SD_SYN_ACK, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
    }
    nic_pull_port(sim, q->port);
}

static void receive_data(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    uint32_t p = (uint32_t)(pk - sim->pkts);
    sim->ctr.data_delivered++;
    q->st->rx_packets++;
    if (pk->ecn == SD_ECN_CE)
        np_ce(sim, q, op_is_rd_req(pk->opcode));
    if (op_is_rd_req(pk->opcode)) {
        receive_read_request(sim, qi, pk);
        return;
    }
    if (q->mode != SD_GBN) {
        reorder_receive(sim, qi, pk);
        return;
    }
    int32_t d = psn_diff(pk->psn, q->st->epsn);
    if (d == 0 && !nic_recv_ready(sim, q, pk)) {
        q->nak_pending = 1;              /* what follows is out of sequence: no NAK for it */
        nic_rnr_nak(sim, q, pk);
    } else if (d == 0) {
        q->st->epsn = (q->st->epsn + 1) & SD_PSN_MASK;
        q->st->rx_bytes += pk->payload;
        q->nak_pending = 0;
        q->unacked++;
        if (op_is_last(pk->opcode))
            nic_rx_msg_done(sim, qi, pk->psn, pk->msg);
        if ((pk->flags & SD_PKT_ACKREQ) || q->unacked >= q->ack_interval || q->ce_pending)
            nic_send_ack(sim, q, 0x1F, q->st->epsn - 1, pk->ts_ps, p, SD_NONE);
    } else if (d > 0) {
        q->st->rx_ooo++;
        if (!q->nak_pending && !q->nak_off) {   /* one NAK per gap (none from a NIC without NAKs) */
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
        if (verb_is_rd(m->verb)) {
            q->reads_live--;
            if (m->start_seq < q->snd_nxt && q->rd_out > 0)
                q->rd_out--;
        }
        cq_push(sim, q->una_msg, qi, SD_CQ_REQUESTER, SD_WC_SUCCESS);
        q->snd_una = end;
        q->una_msg = m->next;
    }
    q->snd_una = new_una;
    q->st->acked_bytes += acked;
    return acked;
}

/* READs requested and not complete once snd_nxt is back at snd_una: the oldest one if it is partly in. */
static void rd_recount(sd_sim *sim, sd_qp *q)
{
    q->rd_out = q->una_msg != SD_NONE && verb_is_rd(sim->msgs[q->una_msg].verb) &&
                sim->msgs[q->una_msg].start_seq < q->snd_una;
}

static void go_back_n(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    q->snd_nxt = q->snd_una;
    q->tx_msg = q->una_msg;
    if (q->reads_live)
        rd_recount(sim, q);
    nic_activate(sim, qi);
}

/* How far an acknowledgement up to target may move snd_una: not into a READ whose responses are not
 * all in (they acknowledge it; an ACK for a later PSN may overtake them). */
static uint64_t read_cap(const sd_sim *sim, const sd_qp *q, uint64_t target)
{
    for (uint32_t mi = q->una_msg; mi != SD_NONE && sim->msgs[mi].start_seq < target; mi = sim->msgs[mi].next)
        if (verb_is_rd(sim->msgs[mi].verb))
            return sim->msgs[mi].start_seq > q->snd_una ? sim->msgs[mi].start_seq : q->snd_una;
    return target;
}

/* RNR retries exhausted: the oldest message completes in error, every other one is flushed, and the
 * QP stays in error (later posts are flushed too: nic_post_release). */
static void qp_error(sd_sim *sim, uint32_t qi)
{
    sd_qp *q = &sim->qps[qi];
    q->err = 1;
    uint8_t status = SD_WC_RNR_RETRY_EXC;
    for (uint32_t mi = q->una_msg; mi != SD_NONE; mi = sim->msgs[mi].next) {
        sim->msgs[mi].status = status;
        cq_push(sim, mi, qi, SD_CQ_REQUESTER, status);
        status = SD_WC_FLUSH;
    }
    q->snd_una = q->snd_nxt = q->snd_max = q->snd_end;
    q->una_msg = q->tx_msg = SD_NONE;
    q->reads_live = 0;
    q->rd_out = 0;
    q->tmo_nxt = q->tmo_end = q->rtx_nxt = q->rtx_end = 0;
    arm_rto(sim, q, qi, -1);
    if (q->active)
        ring_remove(sim, qi);
}

/* An RNR NAK: wait the responder's RNR timer, then go back to the PSN it names (every transport:
 * the SEND is resent whole); rnr_retry of them without progress put the QP in error. */
static void rnr_back_off(sd_sim *sim, uint32_t qi, uint8_t syndrome)
{
    sd_qp *q = &sim->qps[qi];
    q->st->rnr_naks_rx++;
    if (q->snd_una >= q->snd_max)
        return;                          /* stale: everything is acknowledged */
    if (q->rnr_retry != 7) {
        if (q->rnr_left == 0) {
            qp_error(sim, qi);
            return;
        }
        q->rnr_left--;
    }
    int64_t wait = sd_rnr_timer_ps(syndrome & 0x1Fu);
    if (q->next_tx_ps < sim->now + wait)
        q->next_tx_ps = sim->now + wait;
    q->snd_nxt = q->snd_una;
    q->tx_msg = q->una_msg;
    if (q->reads_live)
        rd_recount(sim, q);
    arm_rto(sim, q, qi, sim->now + wait + rto_of(sim, q));   /* the transport timer waits out the RNR wait */
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
    int nak = pk->syndrome == SD_SYN_NAK_SEQ;
    int rnr = (pk->syndrome & 0xE0u) == SD_SYN_RNR;
    /* an ACK covers pk->psn; a NAK (sequence or RNR) says pk->psn is the next expected */
    int32_t d = psn_diff(nak || rnr ? pk->psn : (pk->psn + 1) & SD_PSN_MASK, una_psn);
    uint64_t acked = 0;
    if (d > 0 && q->reads_live && q->snd_una + (uint64_t)d <= q->snd_max) {
        uint64_t target = q->snd_una + (uint64_t)d;
        if (target > q->acked_max)
            q->acked_max = target;
        d = (int32_t)(read_cap(sim, q, target) - q->snd_una);
    }
    if (d > 0 && q->snd_una + (uint64_t)d <= q->snd_max) {
        if (q->mode != SD_GBN)
            reorder_clear_acked(sim, q, q->snd_una, q->snd_una + (uint64_t)d);
        acked = advance_una(sim, qi, q->snd_una + (uint64_t)d);
        q->una_ps = sim->now;
        q->rnr_left = q->rnr_retry;      /* progress: a fresh RNR retry count */
        if (q->snd_nxt < q->snd_una) {         /* an ACK overtook a go-back-N rewind */
            q->snd_nxt = q->snd_una;
            q->tx_msg = q->una_msg;
            if (q->active && q->snd_nxt >= q->snd_end)
                ring_remove(sim, qi);
        }
        if (q->mode == SD_GBN)
            arm_rto(sim, q, qi, q->snd_una < q->snd_max ? sim->now + rto_of(sim, q) : -1);
    }
    if (rnr) {
        rnr_back_off(sim, qi, pk->syndrome);   /* not congestion: no CC event */
        nic_pull_port(sim, q->port);
        return;
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

/* The requester takes a READ response: it places the data and acknowledges the PSN (and, in order,
 * everything before it). gbn: a response past a gap in the READ's responses is dropped and the rest
 * of the READ requested again (once per gap); sr/ooo: a response past a gap is a SACK, the NACK
 * cursor (sr) or the timer re-request the missing ones one by one. */
static void receive_read_response(sd_sim *sim, uint32_t qi, sd_packet *pk)
{
    sd_qp *q = &sim->qps[qi];
    sim->ctr.data_delivered++;
    q->st->rx_packets++;
    if (pk->ecn == SD_ECN_CE)
        np_ce(sim, q, 1);
    uint32_t una_psn = (uint32_t)((q->isn + q->snd_una) & SD_PSN_MASK);
    int32_t d = psn_diff(pk->psn, una_psn);
    if (d < 0 || q->snd_una + (uint64_t)d >= q->snd_max) {
        q->st->rx_dup++;                 /* a duplicate (answered twice) or stale */
        return;
    }
    uint64_t seq = q->snd_una + (uint64_t)d;
    uint32_t mi = msg_of_seq(sim, q, seq);
    if (!verb_is_rd(sim->msgs[mi].verb)) {
        q->st->rx_dup++;
        return;
    }
    uint64_t new_una = q->snd_una;
    if (q->mode == SD_GBN) {
        if (d > 0) {
            /* implicit acknowledgement of the requests before it, unless a response is missing */
            int gap = seq != sim->msgs[mi].start_seq;
            for (uint32_t k = q->una_msg; !gap && k != mi; k = sim->msgs[k].next)
                gap = verb_is_rd(sim->msgs[k].verb);
            if (gap) {
                q->st->rx_ooo++;
                if (!q->rd_gap) {
                    q->rd_gap = 1;
                    go_back_n(sim, qi);
                    nic_pull_port(sim, q->port);
                }
                return;
            }
        }
        q->rd_gap = 0;
        new_una = seq + 1;
    } else if (d == 0) {
        new_una = reorder_sacked_run(sim, q, seq + 1);
    } else if (!reorder_sack(sim, qi, pk->psn, q->mode == SD_SR)) {
        q->st->rx_dup++;                 /* held already: answered twice */
        return;
    }
    q->st->rx_bytes += pk->opcode == SD_OP_ATOMIC_ACK ? 8u : pk->payload;   /* an ATOMIC returns 8 bytes */
    if (new_una > q->snd_una) {
        if (q->mode != SD_GBN)
            reorder_clear_acked(sim, q, q->snd_una, new_una);
        advance_una(sim, qi, new_una);
        if (q->acked_max > q->snd_una) {  /* ACKs that overtook the responses */
            uint64_t t = read_cap(sim, q, q->acked_max < q->snd_max ? q->acked_max : q->snd_max);
            if (t > q->snd_una) {
                if (q->mode != SD_GBN)
                    reorder_clear_acked(sim, q, q->snd_una, t);
                advance_una(sim, qi, t);
            }
        }
        q->una_ps = sim->now;
        q->rnr_left = q->rnr_retry;
        if (q->snd_nxt < q->snd_una) {
            q->snd_nxt = q->snd_una;
            q->tx_msg = q->una_msg;
        }
        if (q->mode == SD_GBN)
            arm_rto(sim, q, qi, q->snd_una < q->snd_max ? sim->now + rto_of(sim, q) : -1);
    }
    if (q->mode != SD_GBN) {
        /* the responses still due of this READ and the READs after it: timed from now */
        for (uint32_t k = mi; k != SD_NONE && sim->msgs[k].start_seq < q->snd_max; k = sim->msgs[k].next) {
            const sd_msg *r = &sim->msgs[k];
            if (!verb_is_rd(r->verb))
                continue;
            uint64_t from = r->start_seq > q->snd_una ? r->start_seq : q->snd_una;
            uint64_t to = r->start_seq + r->npkts < q->snd_max ? r->start_seq + r->npkts : q->snd_max;
            reorder_restamp(sim, q, from, to);
        }
        rearm_reorder_rto(sim, q, qi);
    }
    nic_activate(sim, qi);
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
    } else if (op_is_read_resp(pk->opcode)) {
        receive_read_response(sim, qi, pk);
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
        if (m->verb == SD_VERB_SEND || m->verb == SD_VERB_SEND_IMM || m->verb == SD_VERB_WRITE_IMM)
            m->rq_index = (uint32_t)q->st->recv_msgs++;   /* the responder's receives are used in this order */
        if (q->err) {                    /* a QP in error flushes what is posted to it */
            m->status = SD_WC_FLUSH;
            cq_push(sim, mi, m->qp, SD_CQ_REQUESTER, SD_WC_FLUSH);
            continue;
        }
        if (verb_is_rd(m->verb))
            q->reads_live++;
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
