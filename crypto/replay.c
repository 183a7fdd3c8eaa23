/* SPDX-License-Identifier: MIT */
/* Replay table: open addressing (linear probing) keyed by sender id, one sliding bitmap each. */
#include "crypto/replay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MIN_CAP 16

struct replay_entry {
    uint64_t sender;              /* sender id (random, chosen by the peer) */
    uint64_t top;                 /* highest counter accepted */
    uint64_t tmax_ms;             /* highest time_ms accepted */
    uint64_t bits[REPLAY_WORDS];  /* word (c / 64) % REPLAY_WORDS, bit c % 64: c accepted */
    bool used;                    /* slot holds an entry */
};

struct replay_table {
    struct replay_entry *slots; /* cap slots, NULL until the first sender */
    size_t cap;                 /* power of two, load kept at most 1/2 */
    size_t count;               /* used slots */
    size_t max_senders;         /* bound on count */
    uint64_t tolerance_ms;      /* new-sender time tolerance */
    uint64_t floor_ms;          /* new senders must have time_ms >= floor_ms */
};

struct replay_table *replay_new(size_t max_senders, uint64_t tolerance_ms)
{
    struct replay_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->max_senders = max_senders ? max_senders : 1;
    t->tolerance_ms = tolerance_ms;
    return t;
}

void replay_free(struct replay_table *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t);
}

void replay_set_floor(struct replay_table *t, uint64_t floor_ms)
{
    t->floor_ms = floor_ms;
}

size_t replay_count(const struct replay_table *t)
{
    return t->count;
}

static size_t slot_of(uint64_t sender, size_t cap)
{
    /* Sender ids are random, but mix anyway: a key holder could pick clustered ids. */
    uint64_t h = (sender ^ (sender >> 31)) * 0x9e3779b97f4a7c15u;
    return (size_t)(h >> 32) & (cap - 1);
}

static struct replay_entry *find(struct replay_table *t, uint64_t sender)
{
    if (!t->slots)
        return NULL;
    for (size_t i = slot_of(sender, t->cap);; i = (i + 1) & (t->cap - 1)) {
        struct replay_entry *e = &t->slots[i];
        if (!e->used)
            return NULL;
        if (e->sender == sender)
            return e;
    }
}

static struct replay_entry *insert_slot(struct replay_entry *slots, size_t cap, uint64_t sender)
{
    size_t i = slot_of(sender, cap);
    while (slots[i].used)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* An entry may go once no datagram with time_ms <= tmax_ms can pass the new-sender test. */
static bool is_expired(const struct replay_table *t, const struct replay_entry *e,
                       uint64_t now_ms)
{
    return e->tmax_ms + t->tolerance_ms < now_ms;
}

/* Moves the live entries into a new array of |cap| slots, dropping expired ones. Rebuilding
 * instead of deleting in place keeps linear probing free of tombstones; it runs only when the
 * table grows or is full, i.e. at most once per new sender. */
static int rebuild(struct replay_table *t, size_t cap, uint64_t now_ms)
{
    struct replay_entry *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    size_t count = 0;
    for (size_t i = 0; i < t->cap; i++) {
        const struct replay_entry *e = &t->slots[i];
        if (!e->used || is_expired(t, e, now_ms))
            continue;
        *insert_slot(slots, cap, e->sender) = *e;
        count++;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->count = count;
    return 0;
}

static bool time_is_fresh(const struct replay_table *t, uint64_t time_ms, uint64_t now_ms)
{
    uint64_t d = time_ms > now_ms ? time_ms - now_ms : now_ms - time_ms;
    return d <= t->tolerance_ms && time_ms >= t->floor_ms;
}

/* Makes room for one more entry. Returns REPLAY_OK, REPLAY_FULL or REPLAY_NOMEM. */
static enum replay_verdict make_room(struct replay_table *t, uint64_t now_ms)
{
    size_t max_cap = REPLAY_MIN_CAP;
    while (max_cap < 2 * t->max_senders)
        max_cap *= 2;
    if (t->count < t->max_senders && 2 * (t->count + 1) <= t->cap)
        return REPLAY_OK;
    size_t cap = t->cap ? t->cap : REPLAY_MIN_CAP;
    if (2 * (t->count + 1) > cap && cap < max_cap)
        cap *= 2;
    if (rebuild(t, cap, now_ms) != 0)
        return REPLAY_NOMEM;
    if (t->count >= t->max_senders || 2 * (t->count + 1) > t->cap)
        return REPLAY_FULL;
    return REPLAY_OK;
}

static enum replay_verdict add_sender(struct replay_table *t, uint64_t sender, uint64_t counter,
                                      uint64_t time_ms, uint64_t now_ms)
{
    if (!time_is_fresh(t, time_ms, now_ms))
        return REPLAY_STALE;
    enum replay_verdict v = make_room(t, now_ms);
    if (v != REPLAY_OK)
        return v;
    struct replay_entry *e = insert_slot(t->slots, t->cap, sender);
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->sender = sender;
    e->top = counter;
    e->tmax_ms = time_ms;
    e->bits[(counter / 64) % REPLAY_WORDS] = 1ull << (counter % 64);
    t->count++;
    return REPLAY_OK;
}

/* Window test and update for a known sender. Counters are 64-bit and never wrap in practice
 * (2^64 datagrams), so plain comparisons are right. */
static enum replay_verdict window_accept(struct replay_entry *e, uint64_t counter,
                                         uint64_t time_ms)
{
    uint64_t word = counter / 64, top_word = e->top / 64;
    uint64_t bit = 1ull << (counter % 64);

    if (counter > e->top) {
        uint64_t shift = word - top_word;
        if (shift >= REPLAY_WORDS)
            memset(e->bits, 0, sizeof(e->bits));
        else
            for (uint64_t w = top_word + 1; w <= word; w++)
                e->bits[w % REPLAY_WORDS] = 0;
        e->top = counter;
    } else if (top_word - word >= REPLAY_WORDS) {
        return REPLAY_TOO_OLD;
    } else if (e->bits[word % REPLAY_WORDS] & bit) {
        return REPLAY_SEEN;
    }
    e->bits[word % REPLAY_WORDS] |= bit;
    if (time_ms > e->tmax_ms)
        e->tmax_ms = time_ms;
    return REPLAY_OK;
}

enum replay_verdict replay_accept(struct replay_table *t, uint64_t sender, uint64_t counter,
                                  uint64_t time_ms, uint64_t now_ms)
{
    struct replay_entry *e = find(t, sender);
    if (!e)
        return add_sender(t, sender, counter, time_ms, now_ms);
    return window_accept(e, counter, time_ms);
}
