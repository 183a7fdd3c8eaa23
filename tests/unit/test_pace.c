/* SPDX-License-Identifier: MIT */
/* Pacer estimates: BBR's rules for application-limited samples, STARTUP floors. */
#include "common/pace.h"
#include "tests/test.h"

/* One round trip of |segs| segments of 1000 bytes sent |gap| ms apart from |t| and each
 * acknowledged |rtt| ms after it left; |app_limited| marks them as sent with nothing queued.
 * Returns the time after the round. */
static uint64_t round_trip(struct pace *p, uint64_t t, int segs, uint64_t gap, uint64_t rtt,
                           bool app_limited)
{
    struct pace_mark m[64];
    size_t inflight = 0;
    for (int i = 0; i < segs && i < 64; i++) {
        pace_set_app_limited(p, app_limited, inflight);
        pace_on_send(p, &m[i], t + (uint64_t)i * gap);
        inflight += 1000;
    }
    for (int i = 0; i < segs && i < 64; i++) {
        uint64_t now = t + (uint64_t)i * gap + rtt;
        pace_on_rtt(p, (uint32_t)rtt, now);
        inflight -= 1000;
        pace_on_ack(p, &m[i], 1000, inflight, now);
    }
    return t + (uint64_t)(segs - 1) * gap + rtt + 1;
}

/* A flow that measured 500 bytes/ms in bulk keeps that estimate through a long stretch of
 * request/response traffic far below it, and keeps pacing at least that fast. */
TEST(pace_app_limited_rounds_keep_the_estimate)
{
    struct pace p = {0};
    pace_init(&p, 1000, 10, 0);
    uint64_t t = 1;
    for (int r = 0; r < 12; r++)
        t = round_trip(&p, t, 50, 1, 50, false); /* 50 KB per round of 100 ms */
    size_t cwnd = pace_cwnd(&p); /* 2 x 500 B/ms x (50 + 10) ms */
    CHECK(cwnd >= 50000);
    double rate = pace_rate(&p);
    for (int r = 0; r < 40; r++) /* 4 times the filter length */
        t = round_trip(&p, t, 2, 20, 50, true);
    CHECK(pace_cwnd(&p) >= cwnd);
    CHECK(pace_rate(&p) >= rate); /* no drain phase below 1 while application-limited */
    /* the same slow rounds without the application-limited mark age the estimate out */
    for (int r = 0; r < 40; r++)
        t = round_trip(&p, t, 2, 20, 50, false);
    CHECK(pace_cwnd(&p) < cwnd / 2);
}

/* In STARTUP the first round's samples run low (less than a round trip of data delivered):
 * the cap stays at the initial window and the rate at the initial window over the RTT. */
TEST(pace_startup_never_shrinks)
{
    struct pace p = {0};
    pace_init(&p, 1000, 10, 0);
    pace_set_init_cwnd(&p, 48000);
    CHECK_EQ(pace_cwnd(&p), 48000);
    CHECK(pace_rate(&p) == 0); /* no sample: unpaced */
    uint64_t t = round_trip(&p, 1000, 4, 5, 100, false);
    CHECK(pace_cwnd(&p) >= 48000);
    CHECK(pace_rate(&p) >= 2.0 * 48000 / 110 - 1); /* STARTUP gain x init window / RTT */
    (void)t;
}

/* A configured window is a limit, not a measure of the path: one of 1024 segments is not
 * sent at once, nor taken as the first pacing rate; the initial window is the smaller one. */
TEST(pace_large_window_is_not_the_prior)
{
    struct pace p = {0};
    pace_init(&p, 1000, 10, 0);
    pace_set_init_cwnd(&p, 1024 * 1000);
    CHECK_EQ(pace_cwnd(&p), 64000);
    round_trip(&p, 1000, 4, 5, 100, false);
    CHECK(pace_rate(&p) <= 2.0 * 64000 / 110 + 1);
    pace_set_init_cwnd(&p, 8 * 1000); /* below the floor */
    CHECK_EQ(pace_cwnd(&p) >= 16000, true);
}
