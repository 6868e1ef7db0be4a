/* event.c: the event queue, a calendar queue (Brown 1988) with exact ordering.
 *
 * Events are ordered by (time, insertion sequence), so events at the same picosecond run in
 * the order they were scheduled: deterministic by construction. Most events of a packet
 * simulation are a few microseconds ahead (wire arrivals, serializer completions), so time is
 * cut into buckets of 2^EVQ_SHIFT ps and a window of EVQ_BUCKETS buckets ahead of the current
 * one keeps unsorted per-bucket lists; events beyond the window (timeouts, slow timers) wait in a
 * heap `far`. When a bucket's turn comes its events are sorted (a counting pass on the time's low
 * bits) and appended to the run, an array popped in order: push and pop are O(1) amortised
 * instead of O(log n) for n pending events, and the event loop can see the events coming and
 * prefetch what they touch (sim.c ev_lookahead). The run is kept EVQ_RUN_AHEAD events deep by
 * appending the next bucket early when it is near (EVQ_RUN_PEEK buckets); an event pushed into a
 * bucket already appended goes to a small heap `late`, and a pop takes the earlier of the run's
 * next and late's first.
 *
 * Invariants: the current bucket index `cur` (the last appended) never exceeds the bucket of any
 * event in the lists or `far`; list events have buckets in [cur+1, cur+EVQ_BUCKETS); the run,
 * from run_pos, holds buckets <= cur in (time, sequence) order; `late` holds buckets <= cur;
 * `far` holds the rest (at or beyond the window when they were pushed).
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
 * So the block pool, the run and the two heaps grow by doubling when full: a slow-path event, O(log n)
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
        if (!ev_before(e, &h[parent]))
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
        if (c + 1 < n && ev_before(&h[c + 1], &h[c]))
            c++;
        if (!ev_before(&h[c], &last))
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
                     (unsigned long long)q->room, ev_type_name(type), id, (long long)t, (long long)sim->now);
        else
            snprintf(sim->fatal_msg, sizeof sim->fatal_msg,
                     "event queue: out of memory with %llu events pending; a %s event (id %u) for t=%lld ps "
                     "scheduled at t=%lld ps cannot be queued, so the run stops there",
                     (unsigned long long)q->pending, ev_type_name(type), id, (long long)t, (long long)sim->now);
    }
    return sd_fail(sim, SD_ENOMEM, "%s", sim->fatal_msg);
}

int sd_set_event_limit(sd_sim *sim, uint64_t max_pending)
{
    sim->evq.room = max_pending ? max_pending : UINT64_MAX;
    return SD_OK;
}

/* ---------------------------------------------------------------- calendar */
int ev_init(sd_sim *sim, uint32_t capacity)
{
    sd_evq *q = &sim->evq;
    memset(q, 0, sizeof *q);
    q->room = UINT64_MAX;
    q->ahead = EVQ_RUN_AHEAD;
    q->slot = malloc(EVQ_BUCKETS * sizeof *q->slot);
    q->block_cap = capacity / EVQ_BLOCK + 64;
    q->blocks = malloc((size_t)q->block_cap * sizeof *q->blocks);
    if (!q->slot || !q->blocks)
        return 0;
    for (uint32_t i = 0; i < EVQ_BUCKETS; i++)
        q->slot[i].head = q->slot[i].tail = SD_NONE;
    for (uint32_t i = 0; i < q->block_cap; i++)
        q->blocks[i].next = i + 1 < q->block_cap ? i + 1 : SD_NONE;
    q->free_block = 0;
    return 1;
}

void ev_free(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    free(q->slot);
    free(q->blocks);
    free(q->run);
    free(q->tmp);
    free(q->late.a);
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

/* The push of every case (ev_push in sim.h takes the common one inline: a bucket in the window whose
 * last block has room). */
int ev_push_slow(sd_sim *sim, int64_t t, uint32_t type, uint32_t id, uint32_t aux)
{
    sd_evq *q = &sim->evq;
    if (q->pending >= q->room)
        return ev_fail(sim, t, type, id, 1);
    sd_event e = {t, (sim->seq++ << 8) | type, id, aux};
    uint64_t b = (uint64_t)t >> EVQ_SHIFT;
    int ok;
    if (b <= q->cur) {
        ok = heap_push(&q->late, &e);
    } else if (b < q->cur + EVQ_BUCKETS) {
        sd_evslot *sl = &q->slot[b & EVQ_MASK];
        uint32_t tl = sl->head == SD_NONE ? SD_NONE : sl->tail;
        ok = 1;
        if (tl == SD_NONE || q->blocks[tl].n == EVQ_BLOCK) {
            uint32_t n = block_alloc(q);
            ok = n != SD_NONE;
            if (ok) {
                if (tl == SD_NONE)
                    sl->head = n;
                else
                    q->blocks[tl].next = n;
                sl->tail = tl = n;
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
    if (++q->pending > sim->ctr.heap_peak)
        sim->ctr.heap_peak = q->pending;
    return SD_OK;
}

/* Room in the run (and the sort's buffer) for `n` events; 0 if memory ran out. */
static int run_reserve(sd_evq *q, uint32_t n)
{
    if (n <= q->run_cap)
        return 1;
    uint32_t cap = q->run_cap ? q->run_cap : 64;
    while (cap < n)
        cap *= 2;
    sd_event *a = realloc(q->run, (size_t)cap * sizeof *a);
    if (!a)
        return 0;
    q->run = a;
    sd_event *b = realloc(q->tmp, (size_t)cap * sizeof *b);
    if (!b)
        return 0;
    q->tmp = b;
    q->run_cap = cap;
    return 1;
}

/* Sort the run's events from `from` on, one bucket's, by (time, sequence). They are the bucket's
 * events from `far` in (time, sequence) order followed by its listed events in push order, and
 * every event of a bucket that went to `far` was pushed before any that went to its list (`cur`
 * only grows, so a bucket is beyond the window before it is inside it): equal times are already
 * in sequence order, and a stable sort on the time alone is enough. Times differ only in their
 * low EVQ_SHIFT bits. Short runs: insertion. Longer ones: one counting pass on the top 6 of those
 * bits (64 slices of 64 ps) into the other buffer, then an insertion pass back, which only moves
 * events within a slice (a bucket of 200 events has about 3 per slice); both passes are stable. */
static void run_sort(sd_evq *q, uint32_t from)
{
    sd_event *a = q->run + from, *b = q->tmp;
    uint32_t n = q->run_len - from;
    const sd_event *src = a;             /* the insertion pass reads from here */
    if (n > 24) {
        _Static_assert(EVQ_SHIFT == 12, "run_sort: 64 slices of 64 ps");
        uint32_t hi[65] = {0};
        for (uint32_t i = 0; i < n; i++)
            hi[(((uint32_t)a[i].t & 0xFFFu) >> 6) + 1]++;
        for (uint32_t d = 1; d <= 64; d++)
            hi[d] += hi[d - 1];
        for (uint32_t i = 0; i < n; i++)
            b[hi[((uint32_t)a[i].t & 0xFFFu) >> 6]++] = a[i];
        src = b;
        a[0] = b[0];
    }
    for (uint32_t i = 1; i < n; i++) {   /* insertion into a: stable, equal times keep their order */
        sd_event e = src[i];
        uint32_t j = i;
        while (j > 0 && e.t < a[j - 1].t) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = e;
    }
}

/* Append bucket `next` (> cur, the earliest with events) to the run, sorted; it becomes `cur`.
 * The run's unpopped events move to its front first (and the lookahead's cursors with them).
 * 0 if memory ran out (sim->fatal set; the events not moved stay where they were, the run's new
 * part is unsorted, and the sticky error ends every later sd_run_until). */
static int run_append(sd_sim *sim, uint64_t next)
{
    sd_evq *q = &sim->evq;
    if (q->run_pos > 0) {
        uint32_t left = q->run_len - q->run_pos;
        memmove(q->run, q->run + q->run_pos, left * sizeof *q->run);
        for (uint32_t s = 0; s < EVQ_STAGES; s++)
            q->run_fetched[s] = q->run_fetched[s] > q->run_pos ? q->run_fetched[s] - q->run_pos : 0;
        q->run_pos = 0;
        q->run_len = left;
    }
    uint32_t from = q->run_len;
    q->cur = next;
    while (q->far.len && ((uint64_t)q->far.a[0].t >> EVQ_SHIFT) == next) {
        if (!run_reserve(q, q->run_len + 1)) {
            ev_fail(sim, q->far.a[0].t, (uint32_t)(q->far.a[0].key & 0xFF), q->far.a[0].id, 0);
            return 0;                            /* the event stays in `far` */
        }
        heap_pop(&q->far, &q->run[q->run_len++]);
    }
    sd_evslot *sl = &q->slot[next & EVQ_MASK];
    uint32_t n = sl->head;
    if (n != SD_NONE && ((uint64_t)q->blocks[n].ev[0].t >> EVQ_SHIFT) == next) {
        while (n != SD_NONE) {
            sd_evblock *k = &q->blocks[n];
            uint32_t nx = k->next;
            if (nx != SD_NONE)
                SD_PREFETCH(&q->blocks[nx]);
            if (!run_reserve(q, q->run_len + k->n)) {
                sl->head = n;                    /* the rest of the bucket stays listed */
                ev_fail(sim, k->ev[0].t, (uint32_t)(k->ev[0].key & 0xFF), k->ev[0].id, 0);
                return 0;
            }
            memcpy(&q->run[q->run_len], k->ev, k->n * sizeof *k->ev);
            q->run_len += k->n;
            q->listed -= k->n;
            k->next = q->free_block;
            q->free_block = n;
            n = nx;
        }
        sl->head = SD_NONE;
    }
    run_sort(q, from);
    return 1;
}

/* Keep the run at least EVQ_RUN_AHEAD events deep for the lookahead (sim.c): while it is shorter,
 * append the next bucket if it is within EVQ_RUN_PEEK buckets (or, when nothing at all is left,
 * wherever it is). 1 if an event is pending; 0 if none is (or, with sim->fatal set, if memory ran
 * out while moving them). */
static int ev_advance(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    while (q->run_len - q->run_pos < q->ahead) {
        int empty = q->run_pos == q->run_len && q->late.len == 0;
        uint64_t limit = q->cur + (empty ? EVQ_BUCKETS : EVQ_RUN_PEEK), next = UINT64_MAX;
        if (q->listed > 0) {
            for (uint64_t b = q->cur + 1; b < limit; b++) {
                if (q->slot[b & EVQ_MASK].head != SD_NONE) {
                    next = b;
                    break;
                }
            }
        }
        uint64_t far = q->far.len ? (uint64_t)q->far.a[0].t >> EVQ_SHIFT : UINT64_MAX;
        if (far < next && (empty || far < limit))
            next = far;
        if (next == UINT64_MAX)
            return !empty;
        if (!run_append(sim, next))
            return 0;
    }
    return 1;
}

/* The earliest pending event: the run's next or `late`'s first, whichever is earlier. */
static inline int late_first(const sd_evq *q)
{
    return q->late.len && (q->run_pos == q->run_len || ev_before(&q->late.a[0], &q->run[q->run_pos]));
}

/* ev_peek (sim.h) when the run is short or `late`'s first is the earliest. */
const sd_event *ev_peek_slow(sd_sim *sim)
{
    sd_evq *q = &sim->evq;
    if (!ev_advance(sim))
        return NULL;
    return late_first(q) ? &q->late.a[0] : &q->run[q->run_pos];
}

/* ev_take (sim.h) when `late`'s first is the earliest. */
void ev_take_slow(sd_sim *sim, sd_event *out)
{
    sd_evq *q = &sim->evq;
    q->pending--;
    if (late_first(q))
        heap_pop(&q->late, out);
    else
        *out = q->run[q->run_pos++];
}

int ev_pop(sd_sim *sim, sd_event *out)
{
    if (!ev_peek(sim))
        return 0;
    ev_take(sim, out);
    return 1;
}

uint64_t ev_memory_bytes(const sd_sim *sim)
{
    const sd_evq *q = &sim->evq;
    return (uint64_t)EVQ_BUCKETS * sizeof *q->slot + (uint64_t)q->block_cap * sizeof *q->blocks +
           ((uint64_t)q->run_cap * 2 + q->late.cap + q->far.cap) * sizeof(sd_event);
}

/* ---------------------------------------------------------------- self-test */
int sd_selftest_event_queue(uint64_t seed, uint32_t n_ops)
{
    /* Random pushes (ties, near and far times, up to 2 ms ahead) interleaved with pops: every
     * pop must return the smallest pending (time, sequence), which a sorted order checks. The
     * run's depth switches between 1 and EVQ_RUN_AHEAD now and then (sd_run_until's lookahead
     * turning off and on), and the pending count must equal pushes - pops throughout (-4). */
    sd_sim sim;
    memset(&sim, 0, sizeof sim);
    if (!ev_init(&sim, 16))
        return -1;
    uint64_t rng = seed, popped = 0, pushed = 0;
    sd_event prev = {0, 0, 0, 0}, e;
    int bad = 0;
    for (uint32_t i = 0; i < n_ops && !bad; i++) {
        uint64_t r = rng_next(&rng);
        if ((r >> 40) % 64 == 0)         /* the run's depth changes as sd_run_until's lookahead turns on and off */
            sim.evq.ahead = sim.evq.ahead == 1 ? EVQ_RUN_AHEAD : 1;
        if (sim.evq.pending != pushed - popped)
            bad = -4;
        else if (r % 3 != 0 || pushed == popped) {
            int64_t ahead;
            switch ((r >> 8) % 5) {
            case 0: ahead = 0; break;                                         /* same time */
            case 4: ahead = 4096 - sim.now % 4096 + (int64_t)((r >> 16) % 8192); break;   /* the next buckets, crowded (past the insertion sort) */
            case 1: ahead = (int64_t)((r >> 16) % 5000); break;               /* same bucket */
            case 2: ahead = (int64_t)((r >> 16) % 3000000); break;            /* within window */
            default: ahead = (int64_t)((r >> 16) % 2000000000); break;        /* far */
            }
            ev_push(&sim, sim.now + ahead, 1, i, SD_NONE);
            pushed++;
        } else {
            if (!ev_pop(&sim, &e) || ev_before(&e, &prev) || e.t < sim.now)
                bad = (int)i + 1;
            prev = e;
            sim.now = e.t;
            popped++;
        }
    }
    while (!bad && ev_pop(&sim, &e)) {
        if (ev_before(&e, &prev))
            bad = -2;
        prev = e;
        popped++;
    }
    if (!bad && popped != pushed)
        bad = -3;
    if (!bad && sim.evq.pending != 0)
        bad = -4;
    ev_free(&sim);
    return bad;
}
