/* SPDX-License-Identifier: MIT */
/* Bounded per-sender replay windows for the secure crypt mode (pure, no I/O). */
#ifndef KTUN_REPLAY_H
#define KTUN_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/*
 * One entry per sender id: the highest counter accepted, a sliding bitmap of the counters
 * accepted below it, and the highest time_ms accepted. A counter is accepted once; one more
 * than (window - 64) below the highest may already be "too old" (the bitmap slides a 64-bit
 * word at a time, RFC 6479). A sender id without an entry is accepted only if its time_ms is
 * within |tolerance_ms| of now_ms. An entry may be dropped only once tmax_ms + tolerance_ms <
 * now_ms: from then on every datagram that sender ever sent with time_ms <= tmax_ms fails
 * the time test, so dropping it never lets a replay in.
 */

enum replay_verdict {
    REPLAY_OK,       /* new (sender, counter): accepted and recorded */
    REPLAY_SEEN,     /* counter already accepted */
    REPLAY_TOO_OLD,  /* counter below the window */
    REPLAY_STALE,    /* unknown sender and time_ms out of tolerance */
    REPLAY_FULL,     /* unknown sender and the table is full of live entries */
    REPLAY_NOMEM,    /* unknown sender and the table could not grow */
    REPLAY_VERDICT_COUNT
};

#define REPLAY_WORDS 32                   /* bitmap words per sender */
#define REPLAY_WINDOW (REPLAY_WORDS * 64) /* bitmap width in counters: 2048 */

/* Creates an empty table for at most |max_senders| live senders (>= 1) with new-sender
 * tolerance |tolerance_ms|. Memory grows with use, up to about 2 * |max_senders| * 288 bytes.
 * Returns NULL on allocation failure. */
struct replay_table *replay_new(size_t max_senders, uint64_t tolerance_ms);

/* Frees |t|; NULL is fine. */
void replay_free(struct replay_table *t);

/* Records (|sender|, |counter|, |time_ms|) if it is new, at wall clock |now_ms|. Call only
 * for authenticated datagrams. Returns the verdict; only REPLAY_OK changes the table. */
enum replay_verdict replay_accept(struct replay_table *t, uint64_t sender, uint64_t counter,
                                  uint64_t time_ms, uint64_t now_ms);

/* Refuses, from now on, unknown senders whose time_ms is below |floor_ms| (the receiver's
 * start time: datagrams sealed before it cannot belong to a sender it has accepted). */
void replay_set_floor(struct replay_table *t, uint64_t floor_ms);

/* Number of sender entries held. */
size_t replay_count(const struct replay_table *t);

#endif
