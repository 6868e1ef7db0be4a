/* int.c: in-band network telemetry for HPCC (Li et al., SIGCOMM'19), in the HPCC repository's
 * layout (simulation/src/network/utils/int-header.{h,cc}). A switch pushes one hop
 * record on every data packet it dequeues: the time, the port's cumulative tx bytes before this
 * packet, the queue left behind and the port's line rate, each truncated to the header's bit
 * widths so that receivers must unwrap them as the real header requires. At most 5 hops are
 * kept: the write index is nhop mod 5. */
#include <stdlib.h>

#include "sim.h"

static const uint64_t rates[] = {25000000000ull, 50000000000ull, 100000000000ull, 200000000000ull, 400000000000ull};

uint32_t int_rate_index(uint64_t rate_bps)
{
    for (uint32_t i = 0; i < 5; i++)
        if (rate_bps <= rates[i])
            return i;
    return 4;
}

void int_push_hop(sd_sim *sim, const sd_port *pt, uint32_t p)
{
    sd_int_rec *r = &sim->intl.rec[p];
    uint64_t multi = sim->cfg.int_multi;
    uint64_t q = (pt->st->q_bytes[SD_PRIO_CTRL] + pt->st->q_bytes[SD_PRIO_DATA]) / (80u * multi);
    sd_int_hop *h = &r->hop[r->nhop % SD_INT_HOPS];
    h->time = (uint32_t)(((uint64_t)sim->now / 1000u) & 0xFFFFFFu);
    h->bytes = (uint32_t)((pt->st->tx_bytes / (128u * multi)) & 0xFFFFFu);
    h->qlen = (uint32_t)(q > 0x1FFFFu ? 0x1FFFFu : q);
    h->rate_idx = int_rate_index(pt->rate_bps);
    r->nhop++;
}

/* Port hook (port.c): switches stamp data packets at dequeue when INT is on. */
static int int_wants(const sd_sim *sim, const sd_port *pt)
{
    return sim->cfg.int_enabled && !node_is_host(sim, pt->node);
}

static void int_stamp(sd_sim *sim, sd_port *pt, uint32_t prio, uint32_t p)
{
    if (prio == SD_PRIO_DATA)
        int_push_hop(sim, pt, p);
}

const port_hook int_hook_stamp = {"int_stamp", PORT_EV_DEQUEUE, int_wants, int_stamp};

/* The int module (sim.c's table): an INT stack per pool packet when cfg.int_enabled. */
int int_init(sd_sim *sim)
{
    if (!sim->cfg.int_enabled)
        return SD_OK;
    sim->intl.rec = calloc(sim->cfg.pkt_pool, sizeof *sim->intl.rec);
    return sim->intl.rec ? SD_OK : SD_ENOMEM;
}

void int_free(sd_sim *sim)
{
    free(sim->intl.rec);
}

uint64_t int_memory_bytes(const sd_sim *sim)
{
    return sim->intl.rec ? (uint64_t)sim->cfg.pkt_pool * sizeof *sim->intl.rec : 0;
}
