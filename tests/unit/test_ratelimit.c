/* SPDX-License-Identifier: MIT */
/* kcptun --ratelimit as a cap on the pacer: bytes admitted over time never beat the cap (plus
 * one burst), before and after the pacer has estimates, and survive a pacer restart. */
#include "common/pace.h"
#include "tests/test.h"

#include <string.h>

/* Admits |mss|-byte segments whenever the pacer allows, 1 ms steps for |ms|; returns bytes. */
static double run(struct pace *p, uint32_t mss, uint64_t from, uint64_t ms)
{
    double sent = 0;
    for (uint64_t t = from; t < from + ms; t++) {
        while (pace_ready(p, t)) {
            pace_charge(p, mss);
            sent += mss;
        }
    }
    return sent;
}

TEST(ratelimit_caps_the_pacer)
{
    struct pace p;
    memset(&p, 0, sizeof(p));
    pace_set_rate_cap(&p, 100.0); /* 100 KB/s */
    pace_init(&p, 1300, 30, 0);
    CHECK(pace_rate(&p) == 100.0); /* no estimate yet: the cap alone paces */
    double sent = run(&p, 1300, 0, 10000);
    /* 10 s at 100 bytes/ms = 1 MB, plus at most one burst of 8 segments and one segment */
    CHECK(sent <= 1000000.0 + 9 * 1300.0);
    CHECK(sent >= 1000000.0 - 2 * 1300.0);

    /* With a large estimate the cap still wins; a small estimate stays below it. */
    p.bw = 10000.0;
    p.phase = PACE_PROBE;
    p.min_rtt = 20;
    CHECK(pace_rate(&p) == 100.0);
    pace_set_rate_cap(&p, 0);
    CHECK(pace_rate(&p) > 1000.0);
    pace_set_rate_cap(&p, 1e9);
    CHECK(pace_rate(&p) < 1e9);

    /* A restart of the estimates keeps the cap. */
    pace_set_rate_cap(&p, 50.0);
    pace_init(&p, 1300, 30, 20000);
    CHECK(pace_rate(&p) == 50.0);
    sent = run(&p, 1300, 20000, 4000);
    CHECK(sent <= 200000.0 + 9 * 1300.0);
    CHECK(sent >= 200000.0 - 2 * 1300.0);
}

TEST(ratelimit_off_leaves_an_unestimated_pacer_open)
{
    struct pace p;
    memset(&p, 0, sizeof(p));
    pace_init(&p, 1300, 30, 0);
    CHECK(pace_rate(&p) == 0);
    CHECK(pace_ready(&p, 0));
    pace_set_rate_cap(&p, -5);
    CHECK(pace_rate(&p) == 0);
}
