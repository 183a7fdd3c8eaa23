/* SPDX-License-Identifier: MIT */
/* Mux flow tests: two sessions back to back moving many streams, flow control, memory bounds. */
#include "common/err.h"
#include "common/mux.h"
#include "tests/test.h"
#include "tests/unit/mux_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOW_MAX_STREAMS 128

struct flow_stream {
    uint32_t sid;
    size_t to_send, sent;   /* bytes this side writes */
    size_t to_recv, recvd;  /* bytes this side must read */
    bool fin_sent, eof, released;
    bool stalled;           /* reader stalled (does not read) */
    bool bad;               /* data mismatch seen */
};

struct flow_end {
    struct mh_side side;
    bool is_client;
    struct flow_stream st[FLOW_MAX_STREAMS];
    size_t n;
    size_t ev_seen;         /* events already scanned for MH_OPEN */
    size_t done;            /* streams released */
};

/* Payload byte |off| of stream |sid| written by the client (dir 0) or the server (dir 1). */
static uint8_t gen_byte(uint32_t sid, int dir, size_t off)
{
    uint32_t x = (uint32_t)off * 2654435761u ^ sid * 40503u ^ (uint32_t)dir * 0x5bd1e995u;
    x ^= x >> 13;
    return (uint8_t)(x ^ (x >> 7));
}

/* Sizes differ per stream: some empty, most small, a few large. */
static size_t size_for(uint32_t sid, int dir)
{
    uint32_t k = (sid * 37u + (uint32_t)dir * 11u) % 100u;
    if (k < 5)
        return 0;
    if (k < 80)
        return 1 + (size_t)k * 997u;
    return 150000 + (size_t)k * 4099u;
}

static struct flow_stream *flow_add(struct flow_end *e, uint32_t sid)
{
    struct flow_stream *s = &e->st[e->n++];
    memset(s, 0, sizeof(*s));
    s->sid = sid;
    s->to_send = size_for(sid, e->is_client ? 0 : 1);
    s->to_recv = size_for(sid, e->is_client ? 1 : 0);
    return s;
}

static void flow_accept(struct flow_end *e)
{
    for (; e->ev_seen < e->side.nev; e->ev_seen++)
        if (e->side.ev[e->ev_seen].type == MH_OPEN && e->n < FLOW_MAX_STREAMS)
            flow_add(e, e->side.ev[e->ev_seen].sid);
}

static void flow_read(struct flow_end *e, struct flow_stream *s, uint64_t *rng)
{
    uint8_t buf[20000];
    for (int i = 0; i < 4 && !s->eof; i++) {
        size_t cap = 1 + (size_t)(mh_rand(rng) % sizeof(buf));
        ssize_t n = mux_stream_read(e->side.m, s->sid, buf, cap);
        if (n == 0)
            s->eof = true;
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n; k++)
            if (buf[k] != gen_byte(s->sid, e->is_client ? 1 : 0, s->recvd + (size_t)k))
                s->bad = true;
        s->recvd += (size_t)n;
    }
}

static void flow_write(struct flow_end *e, struct flow_stream *s, uint64_t *rng)
{
    /* Emulates the layer below taking at most ~1 MB of unsent bytes (KCP's send queue). */
    if (e->side.out.len - e->side.out_off > (1u << 20))
        return;
    if (s->sent < s->to_send) {
        uint8_t buf[100000];
        size_t n = 1 + (size_t)(mh_rand(rng) % sizeof(buf));
        if (n > s->to_send - s->sent)
            n = s->to_send - s->sent;
        for (size_t k = 0; k < n; k++)
            buf[k] = gen_byte(s->sid, e->is_client ? 0 : 1, s->sent + k);
        ssize_t r = mux_stream_write(e->side.m, s->sid, buf, n);
        if (r > 0)
            s->sent += (size_t)r;
        else if (r != ERR_AGAIN)
            s->bad = true;
    } else if (!s->fin_sent) {
        if (mux_stream_close(e->side.m, s->sid) != 0)
            s->bad = true;
        s->fin_sent = true;
    }
}

static void flow_service(struct flow_end *e, uint64_t *rng)
{
    flow_accept(e);
    for (size_t i = 0; i < e->n; i++) {
        struct flow_stream *s = &e->st[i];
        if (s->released)
            continue;
        if (!s->stalled)
            flow_read(e, s, rng);
        flow_write(e, s, rng);
        if (s->fin_sent && s->eof) {
            CHECK_EQ(mux_stream_release(e->side.m, s->sid), 0);
            s->released = true;
            e->done++;
        }
    }
}

static void flow_init(struct flow_end *c, struct flow_end *s, const struct mux_config *cfg,
                      size_t nstreams)
{
    memset(c, 0, sizeof(*c));
    memset(s, 0, sizeof(*s));
    c->is_client = true;
    mh_side_init(&c->side, cfg, true, 0);
    mh_side_init(&s->side, cfg, false, 0);
    for (size_t i = 0; i < nstreams; i++) {
        uint32_t sid;
        CHECK_EQ(mux_stream_open(c->side.m, &sid), 0);
        flow_add(c, sid);
    }
}

static void flow_check_all(const struct flow_end *e, size_t nstreams)
{
    CHECK_EQ(e->n, nstreams);
    CHECK_EQ(e->done, nstreams);
    for (size_t i = 0; i < e->n; i++) {
        const struct flow_stream *s = &e->st[i];
        CHECK(!s->bad);
        CHECK_EQ(s->sent, s->to_send);
        CHECK_EQ(s->recvd, s->to_recv);
    }
    CHECK_EQ(mux_stream_count(e->side.m), 0);
    CHECK(!mux_is_closed(e->side.m));
}

/* One round: both ends serve their streams, then bytes move each way in random amounts. */
static void flow_round(struct flow_end *c, struct flow_end *s, uint64_t *rng, uint64_t now_ms)
{
    flow_service(c, rng);
    flow_service(s, rng);
    long r1 = mh_deliver(&c->side, &s->side, 1 + (size_t)(mh_rand(rng) % 300000), now_ms);
    long r2 = mh_deliver(&s->side, &c->side, 1 + (size_t)(mh_rand(rng) % 300000), now_ms);
    CHECK(r1 >= 0 && r2 >= 0);
}

static void run_many_streams(int version)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = version;
    cfg.keepalive_interval_ms = 0;
    static struct flow_end c, s;
    flow_init(&c, &s, &cfg, 100);
    uint64_t rng = 12345 + (uint64_t)version;
    int rounds = 0;
    while ((c.done < 100 || s.done < 100) && rounds < 20000)
        flow_round(&c, &s, &rng, (uint64_t)rounds++);
    flow_check_all(&c, 100);
    flow_check_all(&s, 100);
    struct mux_stats cs, ss;
    mux_get_stats(c.side.m, &cs);
    mux_get_stats(s.side.m, &ss);
    CHECK_EQ(cs.streams_opened, 100);
    CHECK_EQ(ss.streams_accepted, 100);
    CHECK_EQ(cs.bytes_out, ss.bytes_in);
    CHECK_EQ(ss.bytes_out, cs.bytes_in);
    CHECK_EQ(cs.rx_buffered, 0);
    CHECK_EQ(ss.rx_alloc, 0);
    if (version == 1)
        CHECK_EQ(cs.dropped_frames + ss.dropped_frames, 0);
    else /* only late UPDs for streams the peer already released */
        CHECK(cs.upd_out > 0 && ss.upd_out > 0 && ss.dropped_frames <= cs.upd_out &&
              cs.dropped_frames <= ss.upd_out);
    printf("    mux v%d: 100 streams, %llu+%llu bytes, %d rounds, peak rx buffered %llu/%llu\n",
           version, (unsigned long long)cs.bytes_out, (unsigned long long)ss.bytes_out, rounds,
           (unsigned long long)cs.rx_buffered_peak, (unsigned long long)ss.rx_buffered_peak);
    mh_side_free(&c.side);
    mh_side_free(&s.side);
}

TEST(mux_back_to_back_100_streams_v1)
{
    run_many_streams(1);
}

TEST(mux_back_to_back_100_streams_v2)
{
    run_many_streams(2);
}

/* Client streams send to the server; server stream 3 reads one byte and then stalls. */
static void run_stalled_reader(int version, uint32_t smuxbuf, uint32_t streambuf,
                               struct mux_stats *out_ss, size_t *stalled_peak)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = version;
    cfg.keepalive_interval_ms = 0;
    cfg.max_receive_buffer = smuxbuf;
    cfg.max_stream_buffer = streambuf;
    static struct flow_end c, s;
    flow_init(&c, &s, &cfg, 100);
    c.st[0].to_send = 8u << 20; /* stream 3: 8 MiB */
    uint64_t rng = 777 + (uint64_t)version;
    int rounds = 0;
    bool others_done = false, read_once = false;
    *stalled_peak = 0;
    while ((c.done < 100 || s.done < 100) && rounds < 20000) {
        flow_accept(&s);
        if (s.n > 0 && s.st[0].sid == 3)
            s.st[0].to_recv = 8u << 20;
        if (s.n > 0 && s.st[0].sid == 3 && !others_done) {
            s.st[0].stalled = read_once;
            if (!read_once && mux_stream_buffered(s.side.m, 3) > 0) {
                uint8_t b;
                if (mux_stream_read(s.side.m, 3, &b, 1) == 1) {
                    CHECK_EQ(b, gen_byte(3, 0, 0));
                    s.st[0].recvd = 1;
                    read_once = true;
                }
            }
        }
        flow_round(&c, &s, &rng, (uint64_t)rounds++);
        size_t b3 = mux_stream_buffered(s.side.m, 3);
        *stalled_peak = b3 > *stalled_peak ? b3 : *stalled_peak;
        if (version == 1 && rounds == 300) {
            /* v1: the whole session is stuck behind the stalled reader; let it go on. */
            CHECK(s.done < 99);
            CHECK(mux_input_blocked(s.side.m));
            s.st[0].stalled = false;
            read_once = false;
            others_done = true;
        }
        if (!others_done && s.done == 99 && c.done == 99) {
            others_done = true; /* everyone else finished while 3 was stalled */
            s.st[0].stalled = false;
        }
    }
    if (version == 2)
        CHECK(others_done);
    flow_check_all(&c, 100);
    flow_check_all(&s, 100);
    mux_get_stats(s.side.m, out_ss);
    struct mux_stats cs;
    mux_get_stats(c.side.m, &cs);
    printf("    mux v%d smuxbuf %u streambuf %u: stalled stream peak %zu bytes; session peak "
           "buffered %llu, allocated %llu; %d rounds, %llu input stalls, writable events %zu\n",
           version, smuxbuf, streambuf, *stalled_peak,
           (unsigned long long)out_ss->rx_buffered_peak, (unsigned long long)out_ss->rx_alloc_peak,
           rounds, (unsigned long long)out_ss->input_stalls,
           mh_count(&c.side, MH_WRITABLE, 3));
    mh_side_free(&c.side);
    mh_side_free(&s.side);
}

/* v2: a stalled reader holds at most its window while the 99 other streams complete. */
TEST(mux_v2_stalled_reader_bounded_others_complete)
{
    struct mux_stats ss;
    size_t peak;
    run_stalled_reader(2, 4194304, 2097152, &ss, &peak);
    CHECK(peak <= 2097152);
    CHECK(peak >= 2097152 - 65536); /* the window was really used */
    CHECK(ss.rx_buffered_peak <= 4194304 + MUX_MAX_PAYLOAD);
    CHECK(ss.rx_alloc_peak <= 2 * (4194304 + MUX_MAX_PAYLOAD));
    run_stalled_reader(2, 1048576, 262144, &ss, &peak);
    CHECK(peak <= 262144);
    CHECK(ss.rx_buffered_peak <= 1048576 + MUX_MAX_PAYLOAD);
}

/* v1 has no stream window: the stalled reader stops the whole session at the bucket, and
 * memory stays bounded; once it reads again everything completes. */
TEST(mux_v1_stalled_reader_stops_session_bounded)
{
    struct mux_stats ss;
    size_t peak;
    run_stalled_reader(1, 1048576, 262144, &ss, &peak);
    CHECK(ss.rx_buffered_peak <= 1048576 + MUX_MAX_PAYLOAD);
    CHECK(ss.rx_alloc_peak <= 2 * (1048576 + MUX_MAX_PAYLOAD));
    CHECK(ss.input_stalls > 0);
}
