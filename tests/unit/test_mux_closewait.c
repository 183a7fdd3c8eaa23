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

/* fin_hold_ms (--closewait -1): a v2 peer that sent its FIN first gets ours only once its UPD
 * shows it read everything we wrote (smux >= 1.5.54 destroys unread data when both FINs are
 * through), or after fin_hold_ms. */
static void hold_pair(struct mh_side *cl, struct mh_side *sv, int version)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = version;
    cfg.keepalive_interval_ms = 0;
    cfg.fin_hold_ms = 30000;
    cfg.max_frame_size = 1000;
    mh_side_init(cl, &cfg, true, 0);
    mh_side_init(sv, &cfg, false, 0);
}

/* The client sends a request and half-closes; the server answers |len| bytes and half-closes
 * at |now| (close-wait). Returns the stream id. */
static uint32_t half_closed_request(struct mh_side *cl, struct mh_side *sv, size_t len,
                                    uint64_t now)
{
    static uint8_t reply[8000];
    uint32_t sid = 0;
    CHECK_EQ(mux_stream_open(cl->m, &sid), 0);
    CHECK_EQ(mux_stream_write(cl->m, sid, (const uint8_t *)"req", 3), 3);
    CHECK_EQ(mux_stream_close(cl->m, sid), 0);
    flush(cl, sv, now);
    uint8_t buf[16];
    CHECK_EQ(mux_stream_read(sv->m, sid, buf, sizeof(buf)), 3);
    CHECK_EQ(mux_stream_read(sv->m, sid, buf, sizeof(buf)), 0); /* the client's FIN */
    CHECK_EQ(mux_stream_write(sv->m, sid, reply, len), (ssize_t)len);
    CHECK_EQ(mux_stream_close_wait(sv->m, sid, now), 0);
    flush(cl, sv, now);
    return sid;
}

TEST(mux_fin_hold_until_the_peer_has_read)
{
    struct mh_side cl, sv;
    hold_pair(&cl, &sv, 2);
    uint32_t sid = half_closed_request(&cl, &sv, 5000, 100);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 0);
    CHECK_EQ(mux_next_deadline(sv.m), 30100);
    /* A first read of part of it (smux's UPD after the first read) releases nothing. */
    uint8_t buf[8000];
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, 100), 100);
    flush(&cl, &sv, 200);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 0);
    /* Reading the rest: our half-closed reader reports it, and the FIN leaves at once. */
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, sizeof(buf)), 4900);
    flush(&cl, &sv, 300);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, sizeof(buf)), 0);
    CHECK_EQ(mux_next_deadline(sv.m), UINT64_MAX);
    struct mux_stats st;
    mux_get_stats(sv.m, &st);
    CHECK_EQ(st.fins_delayed, 1);
    CHECK_EQ(st.fins_released, 1);
    mh_side_free(&cl);
    mh_side_free(&sv);
}

TEST(mux_fin_hold_expires_and_survives_release)
{
    struct mh_side cl, sv;
    hold_pair(&cl, &sv, 2);
    /* A reader that never reads: the FIN leaves after fin_hold_ms, not before. */
    uint32_t a = half_closed_request(&cl, &sv, 3000, 0);
    CHECK_EQ(mux_tick(sv.m, 29999), 0);
    flush(&cl, &sv, 29999);
    CHECK_EQ(mh_count(&cl, MH_FIN, a), 0);
    CHECK_EQ(mux_tick(sv.m, 30000), 0);
    flush(&cl, &sv, 30000);
    CHECK_EQ(mh_count(&cl, MH_FIN, a), 1);
    /* The server forgets the stream while its FIN is held: the UPD still releases it. */
    uint32_t b = half_closed_request(&cl, &sv, 3000, 31000);
    CHECK_EQ(mux_stream_release(sv.m, b), 0);
    uint8_t buf[4000];
    CHECK_EQ(mux_stream_read(cl.m, b, buf, sizeof(buf)), 3000);
    flush(&cl, &sv, 31100);
    CHECK_EQ(mh_count(&cl, MH_FIN, b), 1);
    CHECK_EQ(mux_next_deadline(sv.m), UINT64_MAX);
    mh_side_free(&cl);
    mh_side_free(&sv);
}

TEST(mux_fin_hold_only_when_needed)
{
    /* v1 has no UPD to tell: no hold. */
    struct mh_side cl, sv;
    hold_pair(&cl, &sv, 1);
    uint32_t sid = half_closed_request(&cl, &sv, 3000, 0);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    mh_side_free(&cl);
    mh_side_free(&sv);
    /* v2, the peer's FIN not yet here: our FIN goes at once. */
    hold_pair(&cl, &sv, 2);
    REQUIRE(mux_stream_open(cl.m, &sid) == 0);
    flush(&cl, &sv, 0);
    CHECK_EQ(mux_stream_write(sv.m, sid, (const uint8_t *)"reply", 5), 5);
    CHECK_EQ(mux_stream_close_wait(sv.m, sid, 0), 0);
    flush(&cl, &sv, 0);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    /* v2, the peer half-closed but has read all we wrote (nothing written): at once. */
    uint32_t b = half_closed_request(&cl, &sv, 0, 10);
    CHECK_EQ(mh_count(&cl, MH_FIN, b), 1);
    struct mux_stats st;
    mux_get_stats(sv.m, &st);
    CHECK_EQ(st.fins_delayed, 0);
    mh_side_free(&cl);
    mh_side_free(&sv);
    /* A reload to --closewait 0 (fin_hold_ms 0) applies to a live session. */
    hold_pair(&cl, &sv, 2);
    struct mux_config off;
    mux_config_default(&off);
    off.keepalive_interval_ms = 0;
    off.fin_hold_ms = 0;
    CHECK_EQ(mux_set_local(sv.m, &off, 0), 0);
    sid = half_closed_request(&cl, &sv, 3000, 0);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    mh_side_free(&cl);
    mh_side_free(&sv);
}

TEST(mux_fin_hold_reader_drained_before_its_fin)
{
    /* The client reads the whole echo before its application half-closes (its FIN leaves after
     * the last read): that FIN must carry the report of the drain, or the server, which holds
     * its own FIN after the client's, would wait for an UPD no read will ever send. */
    struct mh_side cl, sv;
    hold_pair(&cl, &sv, 2);
    static uint8_t data[3000], buf[4000];
    uint32_t sid;
    CHECK_EQ(mux_stream_open(cl.m, &sid), 0);
    CHECK_EQ(mux_stream_write(cl.m, sid, data, sizeof(data)), (ssize_t)sizeof(data));
    flush(&cl, &sv, 0);
    CHECK_EQ(mux_stream_read(sv.m, sid, buf, sizeof(buf)), 3000);
    CHECK_EQ(mux_stream_write(sv.m, sid, data, sizeof(data)), (ssize_t)sizeof(data));
    flush(&cl, &sv, 10);
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, 100), 100); /* the first read's UPD */
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, sizeof(buf)), 2900);
    flush(&cl, &sv, 20);
    /* Now the client's application half-closes; the server's target answers with its EOF. */
    CHECK_EQ(mux_stream_close(cl.m, sid), 0);
    flush(&cl, &sv, 30);
    CHECK_EQ(mux_stream_read(sv.m, sid, buf, sizeof(buf)), 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, sid, 40), 0);
    flush(&cl, &sv, 40);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, sizeof(buf)), 0);
    CHECK_EQ(mux_next_deadline(sv.m), UINT64_MAX);
    mh_side_free(&cl);
    mh_side_free(&sv);
    /* The same with the client's own FIN delayed by close_wait_ms (kcptun --closewait). */
    hold_pair(&cl, &sv, 2);
    struct mux_config cw;
    mux_config_default(&cw);
    cw.keepalive_interval_ms = 0;
    cw.close_wait_ms = 500;
    CHECK_EQ(mux_set_local(cl.m, &cw, 0), 0);
    CHECK_EQ(mux_stream_open(cl.m, &sid), 0);
    CHECK_EQ(mux_stream_write(cl.m, sid, data, sizeof(data)), (ssize_t)sizeof(data));
    flush(&cl, &sv, 0);
    CHECK_EQ(mux_stream_read(sv.m, sid, buf, sizeof(buf)), 3000);
    CHECK_EQ(mux_stream_write(sv.m, sid, data, sizeof(data)), (ssize_t)sizeof(data));
    flush(&cl, &sv, 10);
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, 100), 100);
    CHECK_EQ(mux_stream_read(cl.m, sid, buf, sizeof(buf)), 2900);
    CHECK_EQ(mux_stream_close_wait(cl.m, sid, 20), 0);
    CHECK_EQ(mux_tick(cl.m, 520), 0);
    flush(&cl, &sv, 520);
    CHECK_EQ(mux_stream_read(sv.m, sid, buf, sizeof(buf)), 0);
    CHECK_EQ(mux_stream_close_wait(sv.m, sid, 530), 0);
    flush(&cl, &sv, 530);
    CHECK_EQ(mh_count(&cl, MH_FIN, sid), 1);
    mh_side_free(&cl);
    mh_side_free(&sv);
}
