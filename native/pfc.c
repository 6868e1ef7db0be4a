/* pfc.c: Priority Flow Control (IEEE 802.1Qbb) for the lossless data priority, with the shared
 * buffer model of the HPCC simulator (HPCC repo simulation/src/point-to-point/model/switch-mmu.cc).
 *
 * A switch accounts the bytes it buffers per ingress port: the first `reserve` bytes of a port
 * are guaranteed, then the port uses the shared pool up to a dynamic threshold
 * T = (buffer - total headroom - total reserve - shared used) >> alpha_shift, then its own
 * headroom, sized to absorb what is still in flight after it says stop. The ingress sends XOFF to
 * its upstream port when it uses headroom or reaches T, and XON when its headroom is empty and
 * its shared use is 0 or at least resume_offset below T. A paused port sends no data (control
 * packets still go). XOFF carries a pause time (quanta of 512 bit times): the upstream port
 * resumes when it runs out unless refreshed, so the switch repeats XOFF every half pause time
 * while the ingress stays congested; XON (pause time 0) resumes at once. PFC frames take a
 * 64-byte frame time plus the link delay to arrive and are not queued behind data, as switches
 * inject them ahead of the egress queues. */
#include <stdlib.h>

#include "sim.h"

#define PFC_FRAME_BYTES 64u

static uint64_t threshold(const sd_mmu *m)
{
    uint64_t used = m->total_hdrm + m->total_rsrv + m->shared_used;
    return used >= m->buffer ? 0 : (m->buffer - used) >> m->alpha_shift;
}

static uint64_t shared_of(const sd_mmu *m, const sd_port *in)
{
    return in->st->in_bytes > m->reserve ? in->st->in_bytes - m->reserve : 0;
}

static int64_t quanta_ps(uint32_t quanta, uint64_t rate_bps)
{
    return (int64_t)((double)quanta * 512.0 * 1e12 / (double)rate_bps);
}

/* XOFF (xoff = 1; refresh = 1 repeats one of a pause already under way) or XON to the upstream */
static void send_frame(sd_sim *sim, uint32_t in_port, uint32_t xoff, uint32_t refresh)
{
    sd_port *in = &sim->ports[in_port];
    const sd_mmu *m = &sim->pfc.mmu[switch_index(sim, in->node)];
    int64_t t = sim->now + ser_ps(PFC_FRAME_BYTES + sim->cfg.phy_overhead, in->rate_bps) + in->delay_ps;
    in->st->pfc_tx++;
    if (xoff) {
        in->st->pause_sent |= 1u << SD_PRIO_DATA;
        if (!refresh)
            sim->ctr.pfc_pauses++;
        int64_t again = sim->now + quanta_ps(m->pause_quanta, in->rate_bps) / 2;
        if (in->refresh_at < 0 || again < in->refresh_at) {
            in->refresh_at = again;
            ev_push(sim, again, EV_PFC_REFRESH, in_port, SD_NONE);
        }
    } else {
        in->st->pause_sent &= (uint8_t)~(1u << SD_PRIO_DATA);
        sim->ctr.pfc_resumes++;
    }
    ev_push(sim, t, EV_PFC, in->peer, xoff ? m->pause_quanta : 0);
}

void pfc_refresh(sd_sim *sim, uint32_t port)
{
    sd_port *in = &sim->ports[port];
    if (in->refresh_at != sim->now)
        return;                          /* stale */
    in->refresh_at = -1;
    if (in->st->pause_sent & (1u << SD_PRIO_DATA))
        send_frame(sim, port, 1, 1);     /* still congested: keep the upstream paused */
}

int pfc_admit(sd_sim *sim, uint32_t in_port, sd_packet *pk)
{
    sd_port *in = &sim->ports[in_port];
    sd_mmu *m = &sim->pfc.mmu[switch_index(sim, in->node)];
    uint64_t size = pk->wire;
    uint64_t t = threshold(m);
    /* no room in the headroom nor under the threshold: a lossless fabric should never get here */
    if (size + in->st->hdrm_bytes > in->headroom && size + shared_of(m, in) > t)
        return 0;
    uint64_t after = in->st->in_bytes + size;
    if (after > m->reserve && after - m->reserve > t) {
        in->st->hdrm_bytes += size;
    } else {
        uint64_t over = after > m->reserve ? after - m->reserve : 0;
        m->shared_used += over < size ? over : size;
        in->st->in_bytes = after;
    }
    pk->in_port = in_port;
    if (!(in->st->pause_sent & (1u << SD_PRIO_DATA)) && (in->st->hdrm_bytes > 0 || shared_of(m, in) >= threshold(m)))
        send_frame(sim, in_port, 1, 0);
    return 1;
}

void pfc_release(sd_sim *sim, sd_packet *pk)
{
    uint32_t in_port = pk->in_port;
    sd_port *in = &sim->ports[in_port];
    sd_mmu *m = &sim->pfc.mmu[switch_index(sim, in->node)];
    uint64_t size = pk->wire;
    uint64_t from_hdrm = size < in->st->hdrm_bytes ? size : in->st->hdrm_bytes;
    uint64_t rest = size - from_hdrm, shared = shared_of(m, in);
    uint64_t from_shared = rest < shared ? rest : shared;
    in->st->hdrm_bytes -= from_hdrm;
    in->st->in_bytes -= rest;
    m->shared_used -= from_shared;
    pk->in_port = SD_NONE;
    if (in->st->pause_sent & (1u << SD_PRIO_DATA)) {
        uint64_t s = shared_of(m, in);
        if (in->st->hdrm_bytes == 0 && (s == 0 || s + m->resume_offset <= threshold(m)))
            send_frame(sim, in_port, 0, 0);
    }
}

/* The paused bits live in the record (telemetry) and on the port's line the scheduler reads. */
static void port_set_paused(sd_port *pt, uint8_t bits)
{
    pt->paused = bits;
    pt->st->paused = bits;
}

static void resume(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    port_set_paused(pt, (uint8_t)(pt->paused & ~(1u << SD_PRIO_DATA)));
    pt->st->paused_ps += sim->now - pt->st->paused_since;
    pt->st->paused_since = -1;
    pt->pause_until = -1;
    port_kick(sim, port);
}

void pfc_frame_arrive(sd_sim *sim, uint32_t port, uint32_t quanta)
{
    sd_port *pt = &sim->ports[port];
    uint8_t bit = 1u << SD_PRIO_DATA;
    pt->st->pfc_rx++;
    if (quanta > 0) {
        if (!(pt->paused & bit)) {
            port_set_paused(pt, (uint8_t)(pt->paused | bit));
            pt->st->pauses++;
            pt->st->paused_since = sim->now;
        }
        pt->pause_until = sim->now + quanta_ps(quanta, pt->rate_bps);
        ev_push(sim, pt->pause_until, EV_PFC_EXPIRE, port, SD_NONE);
    } else if (pt->paused & bit) {
        resume(sim, port);                /* XON */
    }
}

void pfc_expire(sd_sim *sim, uint32_t port)
{
    sd_port *pt = &sim->ports[port];
    if ((pt->paused & (1u << SD_PRIO_DATA)) && pt->pause_until == sim->now)
        resume(sim, port);                /* the pause time ran out without a refresh */
}

/* Port hooks (port.c): a packet a PFC switch admitted leaves its buffer when it leaves an
 * egress queue of the switch, or is dropped there. */
static int pfc_wants(const sd_sim *sim, const sd_port *pt)
{
    return !node_is_host(sim, pt->node) && sim->pfc.mmu[switch_index(sim, pt->node)].enabled;
}

static void pfc_hook(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    (void)pt;
    (void)prio;
    sd_packet *pk = &sim->pkts[p];
    if (pk->in_port != SD_NONE)
        pfc_release(sim, pk);
}

const port_hook pfc_hook_dequeue = {"pfc_release", PORT_EV_DEQUEUE, pfc_wants, pfc_hook};
const port_hook pfc_hook_drop = {"pfc_release_drop", PORT_EV_DROP, pfc_wants, pfc_hook};

int sd_set_pfc(sd_sim *sim, uint32_t node, uint64_t buffer_bytes, uint64_t reserve_bytes,
               uint64_t resume_offset_bytes, uint32_t alpha_shift, uint32_t pause_quanta)
{
    if (node >= sim->num_nodes || sim->nodes[node].kind != SD_NODE_SWITCH)
        return sd_fail(sim, SD_EINVAL, "pfc: node %u is not a switch", node);
    if (buffer_bytes == 0 || alpha_shift > 16)
        return sd_fail(sim, SD_EINVAL, "pfc: buffer_bytes must be > 0 and alpha_shift in [0, 16]");
    if (pause_quanta < 1 || pause_quanta > 65535)
        return sd_fail(sim, SD_EINVAL, "pfc: pause_quanta must be in [1, 65535], got %u", pause_quanta);
    sd_mmu *m = &sim->pfc.mmu[switch_index(sim, node)];
    uint64_t nports = 0, hdrm = 0;
    for (uint32_t p = 0; p < sim->num_ports; p++) {
        if (sim->ports[p].node == node) {
            nports++;
            hdrm += sim->ports[p].headroom;
        }
    }
    if (reserve_bytes * nports + hdrm >= buffer_bytes)
        return sd_fail(sim, SD_EINVAL, "pfc: switch node %u: reserve x %llu ports + headroom (%llu) leaves no shared "
                       "buffer of %llu bytes", node, (unsigned long long)nports, (unsigned long long)hdrm,
                       (unsigned long long)buffer_bytes);
    m->buffer = buffer_bytes;
    m->reserve = reserve_bytes;
    m->resume_offset = resume_offset_bytes;
    m->alpha_shift = alpha_shift;
    m->pause_quanta = pause_quanta;
    m->total_rsrv = reserve_bytes * nports;
    m->total_hdrm = hdrm;
    m->enabled = 1;                      /* never cleared: its ports keep their release hooks */
    for (uint32_t p = 0; p < sim->num_ports; p++)
        if (sim->ports[p].node == node)
            port_hooks_build(sim, p);
    return SD_OK;
}

int sd_set_pfc_headroom(sd_sim *sim, uint32_t port, uint64_t headroom_bytes)
{
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "pfc: port %u does not exist", port);
    sd_port *pt = &sim->ports[port];
    if (node_is_host(sim, pt->node))
        return sd_fail(sim, SD_EINVAL, "pfc: port %u belongs to a host; headroom is a switch ingress budget", port);
    sd_mmu *m = &sim->pfc.mmu[switch_index(sim, pt->node)];
    m->total_hdrm = m->total_hdrm - pt->headroom + headroom_bytes;
    pt->headroom = headroom_bytes;
    return SD_OK;
}

/* The pfc module (sim.c's table): shared-buffer state per switch, disabled until sd_set_pfc. */
int pfc_init(sd_sim *sim)
{
    sim->pfc.mmu = calloc(sim->cfg.num_switches ? sim->cfg.num_switches : 1, sizeof *sim->pfc.mmu);
    return sim->pfc.mmu ? SD_OK : SD_ENOMEM;
}

void pfc_free(sd_sim *sim)
{
    free(sim->pfc.mmu);
}

uint64_t pfc_memory_bytes(const sd_sim *sim)
{
    return (uint64_t)(sim->cfg.num_switches ? sim->cfg.num_switches : 1) * sizeof *sim->pfc.mmu;
}
