/*
 * tools/bench/track.c: loss and duplicate accounting per (subscriber, publisher) stream over a
 * fixed ring of sequence-number bits (see track_t in bench.h). Memory stays fixed however long
 * the run; each sequence number is set once and slides out once, so the cost per message is O(1).
 */
#include "tools/bench/bench.h"

#include <stdlib.h>

#define BIT(t, s) ((t)->bits[((s) & ((t)->wbits - 1)) >> 6])
#define MASK(s) (1ull << ((s) & 63))

void track_init(track_t *t, uint32_t wbits, uv_mutex_t *lock)
{
    t->base = 0;
    t->wbits = wbits; /* a power of two, at least 64 */
    t->bits = calloc(wbits / 64, sizeof *t->bits);
    t->unique = t->dup = t->missing = 0;
    t->lock = lock;
    atomic_init(&t->mark, 0);
}

/* Moves the low end of the ring up to newbase, counting every number left unseen as missing. */
static void slide(track_t *t, uint64_t newbase)
{
    if (newbase - t->base >= t->wbits) {
        uint64_t seen = 0;
        for (uint32_t i = 0; i < t->wbits / 64; i++) {
            seen += (uint64_t)__builtin_popcountll(t->bits[i]);
            t->bits[i] = 0;
        }
        t->missing += (newbase - t->base) - seen;
        t->base = newbase;
        return;
    }
    for (; t->base < newbase; t->base++) {
        uint64_t *w = &BIT(t, t->base);
        if (!(*w & MASK(t->base)))
            t->missing++;
        *w &= ~MASK(t->base);
    }
}

void track_mark(track_t *t, uint64_t seq)
{
    if (!t->bits)
        return;
    if (seq < t->base) {
        t->dup++; /* already settled: seen before, or so late it was counted missing */
        return;
    }
    if (seq >= t->base + t->wbits)
        slide(t, seq - t->wbits + 1);
    uint64_t *w = &BIT(t, seq);
    if (*w & MASK(seq)) {
        t->dup++;
        return;
    }
    *w |= MASK(seq);
    t->unique++;
    /* A shared group interleaves one stream over several connections, so the highest number
     * seen says little of what is still queued: there the mark is the count received. */
    uint64_t m = t->lock ? t->unique : seq + 1;
    if (m > atomic_load_explicit(&t->mark, memory_order_relaxed))
        atomic_store_explicit(&t->mark, m, memory_order_relaxed);
}

void track_finish(track_t *t, uint64_t sent)
{
    if (!t->bits)
        return;
    if (sent > t->base)
        slide(t, sent);
}

void track_free(track_t *t)
{
    free(t->bits);
    t->bits = NULL;
}
