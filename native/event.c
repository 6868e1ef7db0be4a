/* event.c: the event queue, a calendar queue (Brown 1988) with exact ordering.
 *
 * Events are ordered by (time, insertion sequence), so events at the same picosecond run in
 * the order they were scheduled: deterministic by construction. Most events of a packet
 * simulation are a few microseconds ahead (wire arrivals, serializer completions), so time is
 * cut into buckets of 2^EVQ_SHIFT ps and a window of EVQ_BUCKETS buckets ahead of the current
 * one keeps unsorted per-bucket lists; only the current bucket's events sit in a small heap, and
 * events beyond the window (timeouts, slow timers) wait in a second heap. Push and pop are O(1)
 * amortised instead of O(log n) for n pending events.
 *
 * Invariants: the current bucket index `cur` never exceeds the bucket of any pending event;
 * list events have buckets in [cur+1, cur+EVQ_BUCKETS); heap `now` holds bucket `cur`;
 * heap `far` holds the rest (at or beyond the window when they were pushed).
 *
 * Capacity. The list blocks (EVQ_BLOCK events each, sim.h) are preallocated at sd_create for the
 * events that are live at once in an ordinary run: per port one EV_WIRE (the wire head) and one
 * EV_TX_DONE, per host one EV_NIC_WAKE, per QP one EV_RTO and its CC timers, plus 64 (2 x ports
 * + hosts + 5 x QPs + 64), in blocks (that many / EVQ_BLOCK + 64: sparse buckets fill blocks
 * partly, and the pool grows as below).
 * That is not an exact bound, and no exact bound exists without changing how events are
 * scheduled: a timer re-armed earlier leaves its older event queued (it is ignored when it fires),
 * PFC frames are in flight on a link for as many transitions as fit in its delay, every
 * sd_post_writes call with an earlier time adds an EV_POST, every vSwitch upcall an EV_VS_EXEC.
 * So the block pool and the two heaps grow by doubling when full: a slow-path event, O(log n)
 * times in a run (heap_peak in the counters is the most events pending at once).
 *
 * Failure. A push that cannot get memory (or that would pass the cap of sd_set_event_limit)
 * must not lose the event silently: none of the 15 scheduling sites in the data plane could
 * recover one. ev_fail() makes it a sticky error instead: sim->fatal is set with a message
 * naming the event type, its time and the number pending, sd_run_until() returns SD_ENOMEM
 * right after the event being handled, and every later sd_run_until() returns the same error.
 * The state stays readable (counters, QPs, messages), so the control plane can keep the results
 * up to the failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define EVQ_SHIFT 12u                       /* 4.096 ns buckets */
#define EVQ_BUCKETS (1u << 16)              /* 268 us window */
#define EVQ_MASK (EVQ_BUCKETS - 1u)

static inline int ev_less(const sd_event *a, const sd_event *b)
{
    /* (t, key) as one unsigned 128-bit number: t >= 0, so this is the lexicographic order */
    unsigned __int128 x = ((unsigned __int128)(uint64_t)a->t << 64) | a->key;
    unsigned __int128 y = ((unsigned __int128)(uint64_t)b->t << 64) | b->key;
    return x < y;
}

static int grow(void **arr, uint32_t *cap, size_t elem)
{
    uint32_t n = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p)
        return 0;
    *arr = p;
    *cap = n;
    return 1;
}

/* ---------------------------------------------------------------- binary heaps */
static int heap_push(sd_evheap *hp, const sd_event *e)
{
    if (hp->len == hp->cap && !grow((void **)&hp->a, &hp->cap, sizeof *hp->a))
        return 0;
    sd_event *h = hp->a;
    uint32_t i = hp->len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!ev_less(e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = *e;
    return 1;
}

static void heap_pop(sd_evheap *hp, sd_event *out)
{
    sd_event *h = hp->a;
    *out = h[0];
    sd_event last = h[--hp->len];
    uint32_t n = hp->len, i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ev_less(&h[c + 1], &h[c]))
            c++;
        if (!ev_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0)
        h[i] = last;
}

/* ---------------------------------------------------------------- failure */
const char *ev_type_name(uint32_t type)
{
    static const char *const names[] = {"tx_done", "wire", "nic_wake", "rto", "cc_timer", "post", "pfc",
                                        "pfc_expire", "pfc_refresh", "vs_exec", "qpc_fetch"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

static uint64_t ev_pending(const sd_evq *q)
{
    return (uint64_t)q->now.len + q->listed + q->far.len;
}

/* The first failure wins: its message is kept in sim->fatal_msg and returned by every later
 * sd_run_until(). */
static int ev_fail(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, int by_limit)
{
    sd_evq *q = &sim->evq;
    if (!sim->fatal) {
        sim->fatal = SD_ENOMEM;
        if (by_limit)
            snprintf(sim->fatal_msg, sizeof sim->fatal_msg,
                     "event queue: the limit of %llu pending events is reached; a %s event (id %u) for t=%lld ps "
                     "scheduled at t=%lld ps cannot be queued, so the run stops there",
                     (unsigned long long)q->limit, ev_type_name(type), id, (long long)t, (long long)sim->now);
        else
            snprintf(sim->fatal_msg, sizeof sim->fatal_msg,
                     "event queue: out of memory with %llu events pending; a %s event (id %u) for t=%lld ps "
                     "scheduled at t=%lld ps cannot be queued, so the run stops there",
                     (unsigned long long)ev_pending(q), ev_type_name(type), id, (long long)t, (long long)sim->now);
    }
    return sd_fail(sim, SD_ENOMEM, "%s", sim->fatal_msg);
}

int sd_set_event_limit(sd_sim *sim, uint64_t max_pending)
{
    sim->evq.limit = max_pending;
    return SD_OK;
}

/* ---------------------------------------------------------------- calendar */
int ev_init(sd_sim *sim, uint32_t capacity)
{
    sd_evq *q = &sim->evq;
    memset(q, 0, sizeof *q);
    q->head = malloc(EVQ_BUCKETS * sizeof *q->head);
    q->tail = malloc(EVQ_BUCKETS * sizeof *q->tail);
    q->block_cap = capacity / EVQ_BLOCK + 64;
    q->blocks = malloc((size_t)q->block_cap * sizeof *q->blocks);
    if (!q->head || !q->tail || !q->blocks)
        return 0;
    memset(q->head, 0xFF, EVQ_BUCKETS * sizeof *q->head);
    for (uint32_t i = 0; i < q->block_cap; i++)
        q->blocks[i].next = i + 1 < q->block_cap ? i + 1 : SD_NONE;
    q->free_block = 0;
    return 1;
}

void ev_free(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    free(q->head);
    free(q->tail);
    free(q->blocks);
    free(q->now.a);
    free(q->far.a);
}

static uint32_t block_alloc(sd_evq *q)
{
    if (q->free_block == SD_NONE) {
        uint32_t old = q->block_cap;
        if (!grow((void **)&q->blocks, &q->block_cap, sizeof *q->blocks))
            return SD_NONE;
        for (uint32_t i = old; i < q->block_cap; i++)
            q->blocks[i].next = i + 1 < q->block_cap ? i + 1 : SD_NONE;
        q->free_block = old;
    }
    uint32_t n = q->free_block;
    q->free_block = q->blocks[n].next;
    q->blocks[n].n = 0;
    q->blocks[n].next = SD_NONE;
    return n;
}

int ev_push(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, uint32_t aux)
{
    sd_evq *q = &sim->evq;
    uint64_t pending = ev_pending(q);
    if (q->limit && pending >= q->limit)
        return ev_fail(sim, t, type, id, 1);
    sd_event e = {t, (sim->seq++ << 8) | type, id, aux};
    uint64_t b = (uint64_t)t >> EVQ_SHIFT;
    int ok;
    if (b <= q->cur) {
        ok = heap_push(&q->now, &e);
    } else if (b < q->cur + EVQ_BUCKETS) {
        uint32_t slot = (uint32_t)(b & EVQ_MASK), tl = q->head[slot] == SD_NONE ? SD_NONE : q->tail[slot];
        ok = 1;
        if (tl == SD_NONE || q->blocks[tl].n == EVQ_BLOCK) {
            uint32_t n = block_alloc(q);
            ok = n != SD_NONE;
            if (ok) {
                if (tl == SD_NONE)
                    q->head[slot] = n;
                else
                    q->blocks[tl].next = n;
                q->tail[slot] = tl = n;
            }
        }
        if (ok) {
            sd_evblock *k = &q->blocks[tl];
            k->ev[k->n++] = e;
            q->listed++;
        }
    } else {
        ok = heap_push(&q->far, &e);
    }
    if (!ok)
        return ev_fail(sim, t, type, id, 0);
    if (++pending > sim->ctr.heap_peak)
        sim->ctr.heap_peak = pending;
    return SD_OK;
}

/* Make `now` hold the earliest bucket's events; 0 if nothing is pending (or, with
 * sim->fatal set, if memory ran out while moving them; the event stays where it was). */
static int ev_advance(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    while (q->now.len == 0) {
        uint64_t next = UINT64_MAX;
        if (q->listed > 0) {
            for (uint64_t b = q->cur + 1; b < q->cur + EVQ_BUCKETS; b++) {
                if (q->head[b & EVQ_MASK] != SD_NONE) {
                    next = b;
                    break;
                }
            }
        }
        uint64_t far = q->far.len ? (uint64_t)q->far.a[0].t >> EVQ_SHIFT : UINT64_MAX;
        if (far < next)
            next = far;
        if (next == UINT64_MAX)
            return 0;
        q->cur = next;
        uint32_t slot = (uint32_t)(next & EVQ_MASK), n = q->head[slot];
        if (n != SD_NONE && ((uint64_t)q->blocks[n].ev[0].t >> EVQ_SHIFT) == next) {
            while (n != SD_NONE) {
                sd_evblock *k = &q->blocks[n];
                uint32_t nx = k->next;
                if (nx != SD_NONE)
                    __builtin_prefetch(&q->blocks[nx]);
                if (q->now.cap - q->now.len < k->n &&
                    !grow((void **)&q->now.a, &q->now.cap, sizeof *q->now.a)) {
                    q->head[slot] = n;           /* the rest of the bucket stays listed */
                    ev_fail(sim, k->ev[0].t, (uint32_t)(k->ev[0].key & 0xFF), k->ev[0].id, 0);
                    return 0;
                }
                for (uint32_t i = 0; i < k->n; i++)
                    heap_push(&q->now, &k->ev[i]);   /* cannot fail: room was made above */
                q->listed -= k->n;
                k->next = q->free_block;
                q->free_block = n;
                n = nx;
            }
            q->head[slot] = SD_NONE;
        }
        while (q->far.len && ((uint64_t)q->far.a[0].t >> EVQ_SHIFT) == next) {
            if (q->now.len == q->now.cap && !grow((void **)&q->now.a, &q->now.cap, sizeof *q->now.a)) {
                ev_fail(sim, q->far.a[0].t, (uint32_t)(q->far.a[0].key & 0xFF), q->far.a[0].id, 0);
                return 0;                        /* the event stays in `far` */
            }
            sd_event e;
            heap_pop(&q->far, &e);
            heap_push(&q->now, &e);              /* cannot fail: room was made above */
        }
    }
    return 1;
}

const sd_event *ev_peek(sd_sim *sim)
{
    return ev_advance(sim) ? &sim->evq.now.a[0] : NULL;
}

int ev_pop(sd_sim *sim, sd_event *out)
{
    if (!ev_advance(sim))
        return 0;
    heap_pop(&sim->evq.now, out);
    return 1;
}

uint64_t ev_memory_bytes(const sd_sim *sim)
{
    const sd_evq *q = &sim->evq;
    return (uint64_t)EVQ_BUCKETS * 2 * sizeof *q->head + (uint64_t)q->block_cap * sizeof *q->blocks +
           ((uint64_t)q->now.cap + q->far.cap) * sizeof(sd_event);
}

/* ---------------------------------------------------------------- self-test */
int sd_selftest_event_queue(uint64_t seed, uint32_t n_ops)
{
    /* Random pushes (ties, near and far times, up to 2 ms ahead) interleaved with pops: every
     * pop must return the smallest pending (time, sequence), which a sorted order checks. */
    sd_sim sim;
    memset(&sim, 0, sizeof sim);
    if (!ev_init(&sim, 16))
        return -1;
    uint64_t rng = seed, popped = 0, pushed = 0;
    sd_event prev = {0, 0, 0, 0}, e;
    int bad = 0;
    for (uint32_t i = 0; i < n_ops && !bad; i++) {
        uint64_t r = rng_next(&rng);
        if (r % 3 != 0 || pushed == popped) {
            int64_t ahead;
            switch ((r >> 8) % 4) {
            case 0: ahead = 0; break;                                         /* same time */
            case 1: ahead = (int64_t)((r >> 16) % 5000); break;               /* same bucket */
            case 2: ahead = (int64_t)((r >> 16) % 3000000); break;            /* within window */
            default: ahead = (int64_t)((r >> 16) % 2000000000); break;        /* far */
            }
            ev_push(&sim, sim.now + ahead, 1, i, SD_NONE);
            pushed++;
        } else {
            if (!ev_pop(&sim, &e) || ev_less(&e, &prev) || e.t < sim.now)
                bad = (int)i + 1;
            prev = e;
            sim.now = e.t;
            popped++;
        }
    }
    while (!bad && ev_pop(&sim, &e)) {
        if (ev_less(&e, &prev))
            bad = -2;
        prev = e;
        popped++;
    }
    if (!bad && popped != pushed)
        bad = -3;
    ev_free(&sim);
    return bad;
}
