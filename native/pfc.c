/* pfc.c: Priority Flow Control (IEEE 802.1Qbb) for the lossless data priority, with the shared
 * buffer model of the HPCC simulator (switch-mmu.cc; shared/reference/transport-cc.md §1.3).
 *
 * A switch accounts the bytes it buffers per ingress port: the first `reserve` bytes of a port
 * are guaranteed, then the port uses the shared pool up to a dynamic threshold
 * T = (buffer - total headroom - total reserve - shared used) >> alpha_shift, then its own
 * headroom, sized to absorb what is still in flight after it says stop. The ingress sends XOFF to
 * its upstream port when it uses headroom or reaches T, and XON when its headroom is empty and
 * its shared use is 0 or at least resume_offset below T. A paused port sends no data (control
 * packets still go). PFC frames are modelled as XOFF/XON (no pause-time expiry: they are never
 * lost here) and take a 64-byte frame time plus the link delay to arrive; they are not queued
 * behind data, as switches inject them ahead of the egress queues. */
#include "sim.h"

#define PFC_FRAME_BYTES 64u

static uint64_t threshold(const sd_mmu *m)
{
    uint64_t used = m->total_hdrm + m->total_rsrv + m->shared_used;
    return used >= m->buffer ? 0 : (m->buffer - used) >> m->alpha_shift;
}

static uint64_t shared_of(const sd_mmu *m, const sd_port *in)
{
    return in->in_bytes > m->reserve ? in->in_bytes - m->reserve : 0;
}

static void send_frame(sd_sim *sim, uint32_t in_port, uint32_t xoff)
{
    sd_port *in = &sim->ports[in_port];
    uint32_t up = in->peer;
    int64_t t = sim->now + ser_ps(PFC_FRAME_BYTES + sim->cfg.phy_overhead, in->rate_bps) + in->delay_ps;
    in->pfc_tx++;
    if (xoff) {
        in->pause_sent |= 1u << SD_PRIO_DATA;
        sim->ctr.pfc_pauses++;
    } else {
        in->pause_sent &= (uint8_t)~(1u << SD_PRIO_DATA);
        sim->ctr.pfc_resumes++;
    }
    ev_push(sim, t, EV_PFC, up, xoff);
}

int pfc_admit(sd_sim *sim, uint32_t in_port, sd_packet *pk)
{
    sd_port *in = &sim->ports[in_port];
    sd_mmu *m = &sim->mmu[in->node - sim->cfg.num_hosts];
    uint64_t size = pk->wire;
    uint64_t t = threshold(m);
    /* no room in the headroom nor under the threshold: a lossless fabric should never get here */
    if (size + in->hdrm_bytes > in->headroom && size + shared_of(m, in) > t)
        return 0;
    uint64_t after = in->in_bytes + size;
    if (after > m->reserve && after - m->reserve > t) {
        in->hdrm_bytes += size;
    } else {
        uint64_t over = after > m->reserve ? after - m->reserve : 0;
        m->shared_used += over < size ? over : size;
        in->in_bytes = after;
    }
    pk->in_port = in_port;
    if (!(in->pause_sent & (1u << SD_PRIO_DATA)) && (in->hdrm_bytes > 0 || shared_of(m, in) >= threshold(m)))
        send_frame(sim, in_port, 1);
    return 1;
}

void pfc_release(sd_sim *sim, sd_packet *pk)
{
    uint32_t in_port = pk->in_port;
    sd_port *in = &sim->ports[in_port];
    sd_mmu *m = &sim->mmu[in->node - sim->cfg.num_hosts];
    uint64_t size = pk->wire;
    uint64_t from_hdrm = size < in->hdrm_bytes ? size : in->hdrm_bytes;
    uint64_t rest = size - from_hdrm, shared = shared_of(m, in);
    uint64_t from_shared = rest < shared ? rest : shared;
    in->hdrm_bytes -= from_hdrm;
    in->in_bytes -= rest;
    m->shared_used -= from_shared;
    pk->in_port = SD_NONE;
    if (in->pause_sent & (1u << SD_PRIO_DATA)) {
        uint64_t s = shared_of(m, in);
        if (in->hdrm_bytes == 0 && (s == 0 || s + m->resume_offset <= threshold(m)))
            send_frame(sim, in_port, 0);
    }
}

void pfc_frame_arrive(sd_sim *sim, uint32_t port, uint32_t xoff)
{
    sd_port *pt = &sim->ports[port];
    uint8_t bit = 1u << SD_PRIO_DATA;
    pt->pfc_rx++;
    if (xoff && !(pt->paused & bit)) {
        pt->paused |= bit;
        pt->pauses++;
        pt->paused_since = sim->now;
    } else if (!xoff && (pt->paused & bit)) {
        pt->paused &= (uint8_t)~bit;
        pt->paused_ps += sim->now - pt->paused_since;
        pt->paused_since = -1;
        port_kick(sim, port);
    }
}

int sd_set_pfc(sd_sim *sim, uint32_t node, uint64_t buffer_bytes, uint64_t reserve_bytes,
               uint64_t resume_offset_bytes, uint32_t alpha_shift)
{
    uint32_t H = sim->cfg.num_hosts;
    if (node < H || node >= sim->num_nodes)
        return sd_fail(sim, SD_EINVAL, "pfc: node %u is not a switch", node);
    if (buffer_bytes == 0 || alpha_shift > 16)
        return sd_fail(sim, SD_EINVAL, "pfc: buffer_bytes must be > 0 and alpha_shift in [0, 16]");
    sd_mmu *m = &sim->mmu[node - H];
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
    m->total_rsrv = reserve_bytes * nports;
    m->total_hdrm = hdrm;
    m->enabled = 1;
    return SD_OK;
}

int sd_set_pfc_headroom(sd_sim *sim, uint32_t port, uint64_t headroom_bytes)
{
    if (port >= sim->num_ports)
        return sd_fail(sim, SD_EINVAL, "pfc: port %u does not exist", port);
    sd_port *pt = &sim->ports[port];
    if (pt->node < sim->cfg.num_hosts)
        return sd_fail(sim, SD_EINVAL, "pfc: port %u belongs to a host; headroom is a switch ingress budget", port);
    sd_mmu *m = &sim->mmu[pt->node - sim->cfg.num_hosts];
    m->total_hdrm = m->total_hdrm - pt->headroom + headroom_bytes;
    pt->headroom = headroom_bytes;
    return SD_OK;
}
