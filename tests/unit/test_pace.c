/* SPDX-License-Identifier: MIT */
/* Pacer estimates: BBR's rules for application-limited samples, STARTUP floors. */
#include "common/pace.h"
#include "tests/test.h"

#include <stdio.h>

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

/* One STARTUP round of |segs| segments of 1000 bytes sent 1 ms apart from |t|, acknowledged
 * |rtt| ms after each left; |wnd_limited| marks the round as held back by the peer's window.
 * Returns the time after the round. */
static uint64_t startup_round(struct pace *p, uint64_t t, int segs, uint64_t rtt,
                              bool wnd_limited)
{
    static struct pace_mark m[1024];
    size_t inflight = 0;
    if (segs > 1024)
        segs = 1024;
    for (int i = 0; i < segs; i++) {
        pace_set_app_limited(p, false, inflight);
        pace_set_wnd_limited(p, wnd_limited, inflight);
        pace_on_send(p, &m[i], t + (uint64_t)i);
        inflight += 1000;
    }
    for (int i = 0; i < segs; i++) {
        uint64_t now = t + (uint64_t)i + rtt;
        pace_on_rtt(p, (uint32_t)rtt, now);
        inflight -= 1000;
        pace_on_ack(p, &m[i], 1000, inflight, now);
    }
    return t + (uint64_t)segs + rtt;
}

/* STARTUP grows the in-flight cap by every byte delivered while the cap is what limits the
 * flow (slow start), up to STARTUP's gain times the measured BDP (delivery rate x min RTT),
 * beyond the cwnd gain times the rate samples, which lag on a long path; a flow that keeps
 * far less in flight does not grow it. */
TEST(pace_startup_grows_by_delivery)
{
    struct pace p = {0};
    pace_init(&p, 1000, 10, 1000);
    CHECK_EQ(pace_cwnd(&p), 64000);
    uint64_t t = 1000;
    for (int r = 0; r < 2; r++)
        t = startup_round(&p, t, (int)(pace_cwnd(&p) / 1000), 200, false);
    printf("    cwnd after two full rounds: %zu (bw %.1f B/ms)\n", pace_cwnd(&p), p.bw);
    CHECK(pace_cwnd(&p) > 64000);
    CHECK((double)pace_cwnd(&p) > 1.5 * p.bw * (200 + 10)); /* the cwnd gain's cap */
    CHECK((double)pace_cwnd(&p) <= 2.0 * p.bw * 200 + 1000);  /* STARTUP gain x BDP */
    struct pace q = {0};
    pace_init(&q, 1000, 10, 1000);
    t = 1000;
    for (int r = 0; r < 2; r++)
        t = startup_round(&q, t, 4, 200, false);
    CHECK_EQ(pace_cwnd(&q), 64000);
}

/* Rounds whose delivery rate the peer's window held flat do not end STARTUP (the pipe is not
 * full, the window is); the same flat rounds without the mark do. */
TEST(pace_window_limited_rounds_keep_startup)
{
    struct pace p = {0}, q = {0};
    pace_init(&p, 1000, 10, 0);
    pace_init(&q, 1000, 10, 0);
    uint64_t t = 1000, u = 1000;
    for (int r = 0; r < 8; r++) {
        t = startup_round(&p, t, 40, 100, true);
        u = startup_round(&q, u, 40, 100, false);
    }
    CHECK_EQ(p.phase, PACE_STARTUP);
    CHECK(q.phase != PACE_STARTUP);
}

/* Application-limited rounds do not end STARTUP either (BBR skips them): their flat rate is
 * what the application offered. The same flat rounds sent with data queued do. */
TEST(pace_app_limited_rounds_keep_startup)
{
    struct pace p = {0}, q = {0};
    pace_init(&p, 1000, 10, 0);
    pace_init(&q, 1000, 10, 0);
    uint64_t t = 1000, u = 1000;
    for (int r = 0; r < 8; r++) {
        t = round_trip(&p, t, 20, 5, 100, true);
        u = round_trip(&q, u, 20, 5, 100, false);
    }
    CHECK_EQ(p.phase, PACE_STARTUP);
    CHECK(q.phase != PACE_STARTUP);
}

/* A path whose round trip exceeds the initial timeout: every first transmission of the first
 * flight is sent again before its ACK returns, so the first round gives no rate sample (the
 * engine passes no mark). STARTUP's growth by the bytes delivered still raises the cap
 * beyond the initial window, and once the RTT is known the sender is paced at the first
 * rate (the initial window over the RTT at STARTUP's gain) instead of sending the grown cap
 * at once. */
TEST(pace_startup_grows_before_the_first_rate_sample)
{
    struct pace p = {0};
    pace_init(&p, 1000, 10, 0);
    CHECK_EQ(pace_cwnd(&p), 64000);
    CHECK(pace_rate(&p) == 0); /* nothing known: unpaced */
    for (int i = 0; i < 32; i++) { /* each ACK's slot is taken again at once */
        uint64_t now = 400 + (uint64_t)i;
        pace_on_rtt(&p, 400, now);
        pace_on_ack(&p, NULL, 1000, pace_cwnd(&p) - 1000, now);
    }
    CHECK_EQ(p.bw, 0);
    CHECK_EQ(pace_cwnd(&p), 64000 + 32000);
    CHECK(pace_rate(&p) > 2.0 * 64000 / 410 - 1 && pace_rate(&p) < 2.0 * 64000 / 410 + 1);
}

/* The ACK of a retransmission carries no mark: an application-limited sender whose RTT shows
 * a queue (the reverse direction's: its own messages build none) stays in STARTUP on it, as on
 * its marked ACKs; the same ACK while data waits ends STARTUP. */
TEST(pace_retransmission_ack_of_app_limited_flow_keeps_startup)
{
    struct pace p = {0}, q = {0};
    struct pace *both[2] = {&p, &q};
    for (int k = 0; k < 2; k++) {
        struct pace *e = both[k];
        pace_init(e, 1000, 10, 0);
        uint64_t t = 1000;
        for (int r = 0; r < 4; r++)
            t = round_trip(e, t, 2, 5, 100, true);
        for (int i = 0; i < 8; i++) /* a queue in the other direction delays the ACKs */
            pace_on_rtt(e, 300, t + (uint64_t)i);
        CHECK(pace_queue_building(e));
        pace_set_app_limited(e, k == 0, 1000);
        pace_on_ack(e, NULL, 1000, 0, t + 10);
    }
    CHECK_EQ(p.phase, PACE_STARTUP);
    CHECK(q.phase != PACE_STARTUP);
}
