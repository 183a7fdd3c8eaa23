/* SPDX-License-Identifier: MIT */
/* The shell's clock: monotonic for the cores, plus the offset that gives wall time. */
#include "common/shell.h"
#include "tests/test.h"

#include <time.h>

TEST(shell_clock_is_monotonic_and_offset_to_wall_time)
{
    uint64_t a = shell_now_ms();
    int64_t off = shell_wall_offset_ms();
    uint64_t b = shell_now_ms();
    CHECK(b >= a);
    /* CLOCK_MONOTONIC counts from boot, not from 1970: far below the wall clock */
    int64_t wall = (int64_t)time(NULL) * 1000;
    CHECK(wall - (int64_t)b > 86400000LL * 365);
    /* now + offset is the wall clock (to the second) */
    int64_t est = (int64_t)b + off;
    CHECK(est - wall > -2000 && est - wall < 2000);
}
