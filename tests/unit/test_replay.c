/* SPDX-License-Identifier: MIT */
/* Tests for the secure mode's replay table: window edges, new-sender time rules, eviction. */
#include "crypto/replay.h"
#include "tests/test.h"

#define T0 1000000000ull
#define TOL 1000u

TEST(replay_window_edges)
{
    struct replay_table *t = replay_new(8, TOL);
    REQUIRE(t);
    CHECK_EQ(replay_accept(t, 42, 5000, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 5000, T0, T0), REPLAY_SEEN);
    /* The oldest word still inside the window: (5000 / 64 - 31) * 64 = 3008. */
    CHECK_EQ(replay_accept(t, 42, 3008, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 3007, T0, T0), REPLAY_TOO_OLD);
    CHECK_EQ(replay_accept(t, 42, 3008, T0, T0), REPLAY_SEEN);
    /* Sliding by one word forgets exactly the oldest word. */
    CHECK_EQ(replay_accept(t, 42, 5000 + 64, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 3071, T0, T0), REPLAY_TOO_OLD);
    CHECK_EQ(replay_accept(t, 42, 3072, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 5001, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 5001, T0, T0), REPLAY_SEEN);
    /* A jump beyond the whole window clears it. */
    CHECK_EQ(replay_accept(t, 42, 1000000, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 1000000 - 100, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 42, 5064, T0, T0), REPLAY_TOO_OLD);
    /* Counter 0 and the largest counter are ordinary values. */
    CHECK_EQ(replay_accept(t, 7, 0, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 7, 0, T0, T0), REPLAY_SEEN);
    CHECK_EQ(replay_accept(t, 8, UINT64_MAX, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 8, UINT64_MAX - 1, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 8, UINT64_MAX, T0, T0), REPLAY_SEEN);
    CHECK_EQ(replay_count(t), 3);
    replay_free(t);
}

TEST(replay_new_sender_time_rules)
{
    struct replay_table *t = replay_new(8, TOL);
    REQUIRE(t);
    CHECK_EQ(replay_accept(t, 1, 0, T0 - TOL - 1, T0), REPLAY_STALE);
    CHECK_EQ(replay_accept(t, 1, 0, T0 + TOL + 1, T0), REPLAY_STALE);
    CHECK_EQ(replay_accept(t, 1, 0, T0 - TOL, T0), REPLAY_OK);
    /* A known sender is not time-checked. */
    CHECK_EQ(replay_accept(t, 1, 1, 5, T0), REPLAY_OK);
    replay_set_floor(t, T0);
    CHECK_EQ(replay_accept(t, 2, 0, T0 - 1, T0), REPLAY_STALE);
    CHECK_EQ(replay_accept(t, 2, 0, T0, T0), REPLAY_OK);
    CHECK_EQ(replay_count(t), 2);
    replay_free(t);
    replay_free(NULL);
}

TEST(replay_eviction_only_after_tolerance)
{
    struct replay_table *t = replay_new(4, TOL);
    REQUIRE(t);
    for (uint64_t s = 1; s <= 4; s++)
        CHECK_EQ(replay_accept(t, s, 0, T0 + s, T0), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 9, 0, T0, T0), REPLAY_FULL);
    /* Sender 1's tmax is T0 + 1: it may go once T0 + 1 + TOL < now. */
    CHECK_EQ(replay_accept(t, 9, 0, T0 + TOL + 1, T0 + TOL + 1), REPLAY_FULL);
    CHECK_EQ(replay_accept(t, 9, 0, T0 + TOL + 2, T0 + TOL + 2), REPLAY_OK);
    CHECK_EQ(replay_count(t), 4);
    /* Its old datagram is now stale; the others are still remembered. */
    CHECK_EQ(replay_accept(t, 1, 0, T0 + 1, T0 + TOL + 2), REPLAY_STALE);
    CHECK_EQ(replay_accept(t, 2, 0, T0 + 2, T0 + TOL + 2), REPLAY_SEEN);
    /* A later datagram raises tmax and keeps the entry alive. */
    CHECK_EQ(replay_accept(t, 2, 1, T0 + 5000, T0 + TOL + 2), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 10, 0, T0 + 5000, T0 + 5000), REPLAY_OK);
    CHECK_EQ(replay_accept(t, 2, 1, T0 + 5000, T0 + 5000), REPLAY_SEEN);
    replay_free(t);
}

TEST(replay_table_grows_and_keeps_entries)
{
    struct replay_table *t = replay_new(1000, TOL);
    REQUIRE(t);
    int ok = 0, seen = 0;
    for (uint64_t s = 0; s < 1000; s++)
        ok += replay_accept(t, s * 0x100000001ull, s, T0, T0) == REPLAY_OK;
    for (uint64_t s = 0; s < 1000; s++)
        seen += replay_accept(t, s * 0x100000001ull, s, T0, T0) == REPLAY_SEEN;
    CHECK_EQ(ok, 1000);
    CHECK_EQ(seen, 1000);
    CHECK_EQ(replay_count(t), 1000);
    CHECK_EQ(replay_accept(t, 123456789, 0, T0, T0), REPLAY_FULL);
    replay_free(t);
}
