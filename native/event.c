/* event.c: the event queue. A 4-ary min-heap (half the depth of a binary heap, children of a
 * node share a cache line or two) ordered by (time, insertion sequence), so events
 * at the same picosecond run in the order they were scheduled: deterministic by construction.
 * Sized at creation for the events that can be pending at once; it grows only in the rare case
 * described in ev_push. */
#include <stdlib.h>

#include "sim.h"

static inline int ev_less(const sd_event *a, const sd_event *b)
{
    /* (t, key) as one unsigned 128-bit number: t >= 0, so this is the lexicographic order,
     * compared without a data-dependent branch */
    unsigned __int128 x = ((unsigned __int128)(uint64_t)a->t << 64) | a->key;
    unsigned __int128 y = ((unsigned __int128)(uint64_t)b->t << 64) | b->key;
    return x < y;
}

int ev_push(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, uint32_t aux)
{
    if (sim->heap_len == sim->heap_cap) {
        /* Rare: the heap is sized for one pending event per port, host, QP timer and poster;
         * only timers re-armed earlier and earlier leave stale entries that can fill it. */
        uint32_t cap = sim->heap_cap * 2;
        sd_event *h = realloc(sim->heap, (size_t)cap * sizeof *h);
        if (!h)
            return sd_fail(sim, SD_ENOMEM, "event heap: cannot grow to %u events", cap);
        sim->heap = h;
        sim->heap_cap = cap;
    }
    sd_event e = {t, (sim->seq++ << 8) | type, id, aux};
    uint32_t i = sim->heap_len++;
    sd_event *h = sim->heap;
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!ev_less(&e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
    if (sim->heap_len > sim->ctr.heap_peak)
        sim->ctr.heap_peak = sim->heap_len;
    return SD_OK;
}

int ev_pop(sd_sim *sim, sd_event *out)
{
    if (sim->heap_len == 0)
        return 0;
    sd_event *h = sim->heap;
    *out = h[0];
    sd_event last = h[--sim->heap_len];
    uint32_t n = sim->heap_len, i = 0;
    for (;;) {
        uint32_t c = 4 * i + 1;
        if (c >= n)
            break;
        uint32_t end = c + 4 < n ? c + 4 : n, best = c;
        for (uint32_t k = c + 1; k < end; k++)
            if (ev_less(&h[k], &h[best]))
                best = k;
        if (!ev_less(&h[best], &last))
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = last;
    return 1;
}
