/* port.c: an egress port and its link. Priority queues (byte capacity; admission, dequeue and
 * marking by each queue's discipline, native/qdisc.c), the port hooks (PFC, INT, capture),
 * serialization at the port rate, then the wire: packets in flight keep FIFO order, so a port needs one pending EV_WIRE (for the wire head) and at most one
 * EV_TX_DONE, whatever the number of packets queued or in flight. */
#include <string.h>

#include "sim.h"

uint64_t rng_next(uint64_t *state)
{
    /* splitmix64 (Steele, Lea, Flood 2014) */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double rng_uniform(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

void count_drop(sd_sim *sim, sd_packet *pk)
{
    if (pk->prio != SD_PRIO_DATA) {
        sim->ctr.ctrl_dropped++;
        return;
    }
    int rtx = (pk->flags & SD_PKT_RTX) != 0;
    sim->ctr.data_dropped++;
    sim->ctr.retx_dropped += (uint64_t)rtx;
    /* per sender QP: the data packet's DestQP is the receiver, whose peer is the sender */
    if (pk->dqp < sim->num_qps && sim->qps[pk->dqp].peer_qp < sim->num_qps) {
        sd_qp *snd = &sim->qps[sim->qps[pk->dqp].peer_qp];
        snd->st->data_dropped++;
        snd->st->retx_dropped += (uint64_t)rtx;
    }
}

/* The priority to serve next: control before data, a PFC-paused priority not at all; -1 = none.
 * A discipline that takes the whole port (e.g. traffic_class, qdisc_tc.c) schedules it instead
 * (its pick hook); a port whose control queue is drop-tail (index 0) never looks it up. */
static inline int port_pick(sd_sim *sim, sd_port *pt)
{
    if (pt->qdisc[SD_PRIO_CTRL] && qdisc_table[pt->qdisc[SD_PRIO_CTRL]]->pick)
        return qdisc_table[pt->qdisc[SD_PRIO_CTRL]]->pick(sim, pt);
    if (pt->q_head[SD_PRIO_CTRL] != SD_NONE && !(pt->paused & (1u << SD_PRIO_CTRL)))
        return SD_PRIO_CTRL;
    if (pt->q_head[SD_PRIO_DATA] != SD_NONE && !(pt->paused & (1u << SD_PRIO_DATA)))
        return SD_PRIO_DATA;
    return -1;
}

/* The port hooks, in the order they run at an event (see port_hook in sim.h). Adding one: its
 * run/wants functions in the feature's file, one line here, and port_hooks_build calls from the
 * setters that change what it wants. */
const port_hook *const port_hook_table[] = {
    &pfc_hook_dequeue,                   /* the packet leaves this switch's buffer (pfc.c) */
    &pfc_hook_drop,                      /* ... or is dropped at this egress */
    &int_hook_stamp,                     /* HPCC INT, stamped at dequeue on data at a switch (int.c) */
    &capture_hook_tx,                    /* capture sessions recording what the port sends (wire.c) */
    &capture_hook_rx,                    /* ... and what its node receives through it */
};
enum { PORT_NUM_HOOKS = sizeof port_hook_table / sizeof port_hook_table[0] };
_Static_assert(PORT_NUM_HOOKS < 256, "hook ids are bytes");

void port_hooks_build(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    memset(pt->nhook, 0, sizeof pt->nhook);
    for (uint32_t h = 0; h < PORT_NUM_HOOKS; h++) {
        const port_hook *k = port_hook_table[h];
        if (k->wants(sim, pt) && pt->nhook[k->event] < PORT_MAX_HOOKS)
            pt->hook[k->event][pt->nhook[k->event]++] = (uint8_t)h;
    }
}

/* Dequeue the next packet of priority `prio` and put it on the wire. */
static void port_start(sd_sim *sim, uint32_t port, uint32_t prio)
{
    sd_port *pt = &sim->ports[port];
    uint32_t k = pt->qdisc[prio];
    /* drop_tail and red_ecn (the first two, qdisc.h) dequeue the FIFO; red_ecn's marking is inlined */
    const qdisc_ops *qd = k > QDISC_KIND_red_ecn ? qdisc_table[k] : NULL;
    uint32_t p = qd && qd->dequeue ? qd->dequeue(sim, pt, prio) : qdisc_fifo_dequeue(sim, pt, prio);
    sd_packet *pk = &sim->pkts[p];
    if (k == QDISC_KIND_red_ecn)
        qdisc_red_on_dequeue(sim, pt, prio, p);  /* red_ecn's on_dequeue (sim.h) */
    else if (qd && qd->on_dequeue)
        qd->on_dequeue(sim, pt, prio, p); /* marking, on the bytes left behind */
    port_hooks_run(sim, pt, PORT_EV_DEQUEUE, prio, p);   /* PFC, INT, capture */
    int64_t ser = ser_ps(pk->wire, pt->rate_bps);
    pt->busy_until = sim->now + ser;
    pt->st->tx_bytes += pk->wire;
    pt->st->tx_packets++;
    int64_t arrive = pt->busy_until + pt->delay_ps;
    pk->next = SD_NONE;
    if (pt->wire_tail == SD_NONE) {
        pt->wire_head = p;
    } else {
        sd_packet *tail = &sim->pkts[pt->wire_tail];
        tail->next = p;
        tail->next_arrive_ps = arrive;   /* so its arrival schedules this one without loading it */
    }
    pt->wire_tail = p;
    if (pt->wire_event < 0) {
        pt->wire_event = arrive;
        ev_push(sim, arrive, EV_WIRE, port, p);
    }
    /* Wake up when the serializer is free if packets are waiting, or if this is a NIC port
     * whose QPs have data (it pulls the next packet then); otherwise nic_pull() schedules the
     * wake-up when a QP gets data while the port is still busy. */
    int more = port_pick(sim, pt) >= 0;
    int nic_wants = pt->at_host && sim->nics[port].nactive > 0 &&
                    !(pt->paused & (1u << SD_PRIO_DATA));
    if (more || nic_wants) {
        pt->tx_pending = 1;
        ev_push(sim, pt->busy_until, EV_TX_DONE, port, SD_NONE);
    }
}

void port_enqueue(sd_sim *sim, uint32_t port, uint32_t p)
{
    sd_port *pt = &sim->ports[port];
    sd_packet *pk = &sim->pkts[p];
    uint32_t prio = pk->prio;
    if (!pt->up) {
        pt->st->down_drops++;
        count_drop(sim, pk);
        port_hooks_run(sim, pt, PORT_EV_DROP, prio, p);
        pkt_free(sim, p);
        return;
    }
    sd_port_stats *st = pt->st;
    uint32_t k = pt->qdisc[prio];
    int r = 1;                           /* 1: append to the FIFO, 2: the discipline queued it, 0: drop */
    if (st->q_bytes[prio] + pk->wire > pt->q_cap[prio] ||
        (k > QDISC_KIND_red_ecn && qdisc_table[k]->enqueue && !(r = qdisc_table[k]->enqueue(sim, pt, prio, p)))) {
        st->dropped++;                   /* drop_tail and red_ecn admit below the capacity */
        st->dropped_bytes += pk->wire;
        count_drop(sim, pk);
        port_hooks_run(sim, pt, PORT_EV_DROP, prio, p);
        pkt_free(sim, p);
        return;
    }
    if (r == 1) {
        pk->next = SD_NONE;
        if (pt->q_tail[prio] == SD_NONE)
            pt->q_head[prio] = p;
        else
            sim->pkts[pt->q_tail[prio]].next = p;
        pt->q_tail[prio] = p;
        st->q_bytes[prio] += pk->wire;
    }
    if (st->q_bytes[prio] > st->q_peak[prio])
        st->q_peak[prio] = st->q_bytes[prio];

    if (pt->tx_pending)
        return;                          /* the pending EV_TX_DONE will start it */
    if (pt->busy_until <= sim->now) {
        int next = port_pick(sim, pt);
        if (next >= 0)
            port_start(sim, port, (uint32_t)next);
    } else {
        pt->tx_pending = 1;
        ev_push(sim, pt->busy_until, EV_TX_DONE, port, SD_NONE);
    }
}

int port_can_send_data(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    if (pt->tx_pending || pt->q_head[SD_PRIO_CTRL] != SD_NONE || pt->q_head[SD_PRIO_DATA] != SD_NONE)
        return 0;                        /* the pending EV_TX_DONE will pull */
    if (pt->paused & (1u << SD_PRIO_DATA))
        return 0;                        /* PFC: the resume will pull */
    if (pt->busy_until > sim->now) {
        pt->tx_pending = 1;              /* busy with nothing scheduled: pull when it is free */
        ev_push(sim, pt->busy_until, EV_TX_DONE, port, SD_NONE);
        return 0;
    }
    return 1;
}

void port_tx_done(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    pt->tx_pending = 0;
    port_kick(sim, port);
}

void port_kick(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    if (pt->tx_pending || pt->busy_until > sim->now)
        return;
    int next = port_pick(sim, pt);
    if (next >= 0)
        port_start(sim, port, (uint32_t)next);
    else if (pt->at_host)
        nic_pull_port(sim, port);
}

void port_wire_arrive(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    uint32_t p = pt->wire_head;
    sd_packet *pk = &sim->pkts[p];
    pt->wire_head = pk->next;
    if (pt->wire_head == SD_NONE) {
        pt->wire_tail = SD_NONE;
        pt->wire_event = -1;
    } else {
        pt->wire_event = pk->next_arrive_ps;  /* the next packet's line stays cold until it arrives */
        ev_push(sim, pt->wire_event, EV_WIRE, port, pt->wire_head);
    }
    sim->ctr.packet_hops++;
    if (sim->loss && sim->loss[port] > 0.0 && rng_uniform(&pt->rng) < sim->loss[port]) {
        sim->ctr.random_drops++;         /* random loss on this link direction (bit errors, flaps) */
        count_drop(sim, pk);
        pkt_free(sim, p);
        return;
    }
    sd_port *in = &sim->ports[pt->peer];
    in->st->rx_packets++;
    port_hooks_run(sim, in, PORT_EV_RECEIVE, pk->prio, p);
    if (in->at_host)
        dpu_receive(sim, in->node, p);
    else
        switch_receive(sim, in->node, pt->peer, p);
}
