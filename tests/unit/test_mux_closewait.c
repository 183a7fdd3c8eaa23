/* SPDX-License-Identifier: MIT */
/* kcptun --closewait in the multiplexer: a half-close whose FIN leaves close_wait_ms later. */
#include "common/err.h"
#include "common/mux.h"
#include "tests/test.h"
#include "tests/unit/mux_harness.h"

#include <string.h>

static void pair(struct mh_side *cl, struct mh_side *sv, uint32_t wait_ms, int version)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = version;
    cfg.keepalive_interval_ms = 0;
    cfg.close_wait_ms = wait_ms;
    mh_side_init(cl, &cfg, true, 0);
    mh_side_init(sv, &cfg, false, 0);
    cl->auto_read = true;
    sv->auto_read = true;
}

static void flush(struct mh_side *a, struct mh_side *b, uint64_t now)
{
    while (mh_deliver(a, b, SIZE_MAX, now) > 0 || mh_deliver(b, a, SIZE_MAX, now) > 0)
        ;
}

TEST(mux_closewait_holds_fin_and_keeps_reading)
{
    for (int version = 1; version <= 2; version++) {
        struct mh_side cl, sv;
        pair(&cl, &sv, 30000, version);
        uint32_t sid;
        REQUIRE(mux_stream_open(cl.m, &sid) == 0);
        flush(&cl, &sv, 0);
        CHECK_EQ(mh_count(&sv, MH_OPEN, sid), 1);
        CHECK_EQ(mux_stream_write(sv.m, sid, (const uint8_t *)"reply", 5), 5);
        /* The server's target ended: half-close with the grace. */
        CHECK_EQ(mux_stream_close_wait(sv.m, sid, 1000), 0);
        CHECK_EQ(mux_stream_close_wait(sv.m, sid, 1500), 0); /* idempotent */
        CHECK_EQ(mux_stream_write(sv.m, sid, (const uint8_t *)"x", 1), ERR_CLOSED);
        CHECK_EQ(mux_stream_writable(sv.m, sid), 0);
        CHECK_EQ(mux_next_deadline(sv.m), 31000);
        /* The client still sends; the server still reads. */
        CHECK_EQ(mux_stream_write(cl.m, sid, (const uint8_t *)"more", 4), 4);
        flush(&cl, &sv, 2000);
        CHECK_EQ(sv.rx.len, 4);
        CHECK_EQ(cl.rx.len, 5);
        CHECK_EQ(mh_count(&cl, MH_FIN, sid), 0);
        CHECK_EQ(mux_tick(sv.m, 30999), 0);
        flush(&cl, &sv, 30999);
        CHECK_EQ(mh_count(&cl, MH_FIN, sid), 0);
        CHECK_EQ(mux_tick(sv.m, 31000), 0);
        flush(&cl, &sv, 31000);
        CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
        CHECK_EQ(mux_next_deadline(sv.m), UINT64_MAX);
        struct mux_stats st;
        mux_get_stats(sv.m, &st);
        CHECK_EQ(st.fins_delayed, 1);
        mh_side_free(&cl);
        mh_side_free(&sv);
    }
}

TEST(mux_closewait_release_and_close_meanwhile)
{
    struct mh_side cl, sv;
    pair(&cl, &sv, 5000, 2);
    uint32_t a, b, c;
    REQUIRE(mux_stream_open(cl.m, &a) == 0 && mux_stream_open(cl.m, &b) == 0 &&
            mux_stream_open(cl.m, &c) == 0);
    flush(&cl, &sv, 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, a, 100), 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, b, 200), 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, c, 300), 0);
    /* a: released before the FIN is due: the FIN still waits, then leaves for the old id. */
    CHECK_EQ(mux_stream_release(sv.m, a), 0);
    /* b: an explicit close sends it now, and only once. */
    CHECK_EQ(mux_stream_close(sv.m, b), 0);
    flush(&cl, &sv, 300);
    CHECK_EQ(mh_count(&cl, MH_FIN, a), 0);
    CHECK_EQ(mh_count(&cl, MH_FIN, b), 1);
    CHECK_EQ(mux_next_deadline(sv.m), 5100);
    mux_tick(sv.m, 5100);
    flush(&cl, &sv, 5100);
    CHECK_EQ(mh_count(&cl, MH_FIN, a), 1);
    CHECK_EQ(mh_count(&cl, MH_FIN, c), 0);
    mux_tick(sv.m, 6000);
    flush(&cl, &sv, 6000);
    CHECK_EQ(mh_count(&cl, MH_FIN, b), 1);
    CHECK_EQ(mh_count(&cl, MH_FIN, c), 1);
    /* Unknown streams and a dead session. */
    CHECK_EQ(mux_stream_close_wait(sv.m, 99, 6000), ERR_CLOSED);
    mh_side_free(&cl);
    mh_side_free(&sv);
}

TEST(mux_closewait_zero_is_immediate)
{
    struct mh_side cl, sv;
    pair(&cl, &sv, 0, 1);
    uint32_t sid;
    REQUIRE(mux_stream_open(cl.m, &sid) == 0);
    flush(&cl, &sv, 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, sid, 10), 0);
    flush(&cl, &sv, 10);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    CHECK_EQ(mux_next_deadline(sv.m), UINT64_MAX);
    mh_side_free(&cl);
    mh_side_free(&sv);
}
