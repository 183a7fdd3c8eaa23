/* SPDX-License-Identifier: MIT */
/* A reload's local mux settings on a live session: keepalive, stream limit (mux_set_local). */
#include "common/err.h"
#include "common/mux.h"
#include "tests/test.h"

#include <string.h>

struct out {
    int nops, frames;
    bool closed;
};

static int out_cb(void *user, const uint8_t *frame, size_t len)
{
    struct out *o = user;
    struct mux_frame_hdr h;
    if (mux_frame_parse(frame, len, &h) == 0) {
        o->frames++;
        o->nops += h.cmd == MUX_CMD_NOP;
    }
    return 0;
}

static void close_cb(void *user, const char *reason)
{
    (void)reason;
    ((struct out *)user)->closed = true;
}

TEST(mux_set_local_keepalive_on_a_live_session)
{
    struct mux_config cfg;
    mux_config_default(&cfg); /* NOP every 10 s, dead after 30 s of silence */
    struct out o = {0};
    struct mux_callbacks cb = {.output = out_cb, .on_close = close_cb};
    struct mux *m = mux_new(&cfg, true, &cb, &o, 0);
    REQUIRE(m);
    CHECK_EQ(mux_next_deadline(m), 10000);
    /* 1 s from t = 4000: a NOP at 5000, 6000, ..., not at 10000 only */
    struct mux_config n = cfg;
    n.keepalive_interval_ms = 1000;
    CHECK_EQ(mux_set_local(m, &n, 4000), 0);
    CHECK_EQ(mux_next_deadline(m), 5000);
    for (uint64_t t = 5000; t <= 9000; t += 1000)
        CHECK_EQ(mux_tick(m, t), 0);
    CHECK_EQ(o.nops, 5);
    /* the same settings again change nothing (no timer restart) */
    CHECK_EQ(mux_set_local(m, &n, 9500), 0);
    CHECK_EQ(mux_next_deadline(m), 10000);
    /* a timeout below the interval is refused, nothing changes */
    n.keepalive_timeout_ms = 500;
    CHECK_EQ(mux_set_local(m, &n, 9600), ERR_INVAL);
    CHECK_EQ(mux_next_deadline(m), 10000);
    /* keepalive off: no NOP, no dead-peer check, for as long as it takes */
    n.keepalive_interval_ms = 0;
    CHECK_EQ(mux_set_local(m, &n, 9700), 0);
    CHECK_EQ(mux_next_deadline(m), UINT64_MAX);
    CHECK_EQ(mux_tick(m, 1000000), 0);
    CHECK(!o.closed);
    CHECK_EQ(o.nops, 5);
    mux_free(m);
}

TEST(mux_set_local_max_streams)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    struct out o = {0};
    struct mux_callbacks cb = {.output = out_cb, .on_close = close_cb};
    struct mux *m = mux_new(&cfg, true, &cb, &o, 0);
    REQUIRE(m);
    uint32_t sid;
    CHECK_EQ(mux_stream_open(m, &sid), 0);
    CHECK_EQ(mux_stream_open(m, &sid), 0);
    struct mux_config n = cfg;
    n.max_streams = 2;
    CHECK_EQ(mux_set_local(m, &n, 0), 0);
    CHECK_EQ(mux_stream_open(m, &sid), ERR_LIMIT); /* the two live ones stay */
    CHECK_EQ(mux_stream_count(m), 2);
    n.max_streams = 0;
    CHECK_EQ(mux_set_local(m, &n, 0), 0);
    CHECK_EQ(mux_stream_open(m, &sid), 0);
    mux_free(m);
}
