/* SPDX-License-Identifier: MIT */
/* Tests for the smux multiplexer: known-answer vectors, captures, splits, bad input, keepalive. */
#include "common/err.h"
#include "common/mux.h"
#include "common/wire.h"
#include "tests/test.h"
#include "tests/unit/mux_harness.h"
#include "tests/vec.h"

#include <stdlib.h>
#include <string.h>

static const char *const cmd_names[MUX_CMD_COUNT] = {"SYN", "FIN", "PSH", "NOP", "UPD"};

static void cfg_for(struct mux_config *cfg, int version)
{
    mux_config_default(cfg);
    cfg->version = version;
}

/* Appends one frame (header with |len_field|, then |plen| payload bytes) to |b|. */
static void add_frame(struct mh_buf *b, int ver, int cmd, uint16_t len_field, uint32_t sid,
                      const uint8_t *payload, size_t plen)
{
    uint8_t h[MUX_HEADER_SIZE];
    struct mux_frame_hdr fh = {(uint8_t)ver, (uint8_t)cmd, len_field, sid};
    mux_frame_put(h, &fh);
    mh_buf_add(b, h, sizeof(h));
    mh_buf_add(b, payload, plen);
}

static void add_psh(struct mh_buf *b, int ver, uint32_t sid, const void *p, size_t n)
{
    add_frame(b, ver, MUX_CMD_PSH, (uint16_t)n, sid, p, n);
}

static void add_upd(struct mh_buf *b, int ver, uint32_t sid, uint32_t consumed, uint32_t window)
{
    uint8_t u[8];
    for (int i = 0; i < 4; i++) {
        u[i] = (uint8_t)(consumed >> (8 * i));
        u[4 + i] = (uint8_t)(window >> (8 * i));
    }
    add_frame(b, ver, MUX_CMD_UPD, 8, sid, u, 8);
}

static void deliver_all(struct mh_side *a, struct mh_side *b, uint64_t now_ms)
{
    long r;
    do {
        r = mh_deliver(a, b, SIZE_MAX, now_ms);
    } while (r > 0);
}

TEST(mux_frame_header_roundtrip)
{
    uint8_t b[MUX_HEADER_SIZE];
    struct mux_frame_hdr h = {2, MUX_CMD_UPD, 8, 3}, g;
    CHECK(mux_frame_put(b, &h) == b + 8);
    static const uint8_t want[8] = {0x02, 0x04, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00};
    CHECK_MEM(b, want, 8);
    CHECK_EQ(mux_frame_parse(b, 7, &g), ERR_AGAIN);
    CHECK_EQ(mux_frame_parse(b, 8, &g), 0);
    CHECK_EQ(g.ver, 2);
    CHECK_EQ(g.cmd, MUX_CMD_UPD);
    CHECK_EQ(g.len, 8);
    CHECK_EQ(g.sid, 3);
}

TEST(mux_config_validation)
{
    struct mux_config c;
    mux_config_default(&c);
    CHECK_EQ(mux_config_validate(&c), 0);
    CHECK_EQ(c.max_frame_size, 32768);
    CHECK_EQ(c.keepalive_timeout_ms, 30000);
    struct mux_config bad = c;
    bad.version = 3;
    CHECK_EQ(mux_config_validate(&bad), ERR_INVAL);
    bad = c;
    bad.max_frame_size = 65536;
    CHECK_EQ(mux_config_validate(&bad), ERR_INVAL);
    bad = c;
    bad.max_stream_buffer = c.max_receive_buffer + 1;
    CHECK_EQ(mux_config_validate(&bad), ERR_INVAL);
    bad = c;
    bad.keepalive_interval_ms = 31000; /* kcptun --keepalive 31: fatal */
    CHECK_EQ(mux_config_validate(&bad), ERR_INVAL);
    bad.keepalive_interval_ms = 0; /* disabled */
    CHECK_EQ(mux_config_validate(&bad), 0);
    const struct mux_callbacks cb = {0};
    CHECK(mux_new(&c, true, &cb, NULL, 0) == NULL); /* output is required */
    mux_free(NULL);
}

/* Every frame listed in smux.json parses to its listed fields. */
TEST(mux_vectors_parse)
{
    cJSON *root = vec_load("smux.json");
    REQUIRE(root);
    const cJSON *sess;
    int nframes = 0;
    cJSON_ArrayForEach(sess, cJSON_GetObjectItem(root, "sessions"))
    {
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(sess, "frames"))
        {
            uint8_t *b = NULL, *pl = NULL;
            long n = vec_hex_field(f, "frame_hex", &b);
            struct mux_frame_hdr h;
            CHECK_EQ(mux_frame_parse(b, (size_t)n, &h), 0);
            CHECK_EQ(h.ver, vec_int(f, "ver", -1));
            CHECK(h.cmd < MUX_CMD_COUNT && strcmp(cmd_names[h.cmd], vec_str(f, "cmd")) == 0);
            CHECK_EQ(h.len, vec_int(f, "length", -1));
            CHECK_EQ(h.sid, vec_int(f, "sid", -1));
            long pn = vec_hex_field(f, "payload_hex", &pl);
            CHECK_EQ(n - MUX_HEADER_SIZE, pn < 0 ? 0 : pn);
            if (pn > 0)
                CHECK_MEM(b + MUX_HEADER_SIZE, pl, (size_t)pn);
            if (h.cmd == MUX_CMD_UPD) {
                CHECK_EQ(rd_u32le(b + 8), vec_int(f, "upd_consumed", -1));
                CHECK_EQ(rd_u32le(b + 12), vec_int(f, "upd_window", -1));
            }
            free(b);
            free(pl);
            nframes++;
        }
    }
    CHECK_EQ(nframes, 24);
    cJSON_Delete(root);
}

/* Checks that the frames |s| sent equal, in order, the vector writes in |direction|. */
static void check_writes(const cJSON *sess, const char *direction, const struct mh_side *s)
{
    const cJSON *w;
    size_t i = 0;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(sess, "writes"))
    {
        if (strcmp(vec_str(w, "direction"), direction) != 0)
            continue;
        uint8_t *b = NULL;
        long n = vec_hex_field(w, "bytes_hex", &b);
        if (i >= s->nframes) {
            test_fail(__FILE__, __LINE__, "%s: frame %zu missing", direction, i);
        } else {
            CHECK_EQ(s->frames[i].len, n);
            if (s->frames[i].len == (size_t)n)
                CHECK_MEM(s->frames[i].p, b, (size_t)n);
            else
                test_hexdump("got", s->frames[i].p, s->frames[i].len);
        }
        free(b);
        i++;
    }
    CHECK_EQ(s->nframes, i);
}

/* Replays the script of a smux.json session ("sleep 400ms (NOP keepalives); client
 * OpenStream; server Accept; client writes 'hello'; server reads; server writes 'world!';
 * client reads; client Close; server Close; client OpenStream; server OpenStream"): each
 * direction must carry the same frames, byte for byte, in the same order. */
static void replay_vector_session(const cJSON *sess)
{
    struct mux_config cfg;
    const cJSON *jc = cJSON_GetObjectItem(sess, "config");
    cfg_for(&cfg, (int)vec_int(sess, "smux_version", 1));
    cfg.keepalive_interval_ms = (uint32_t)vec_int(jc, "KeepAliveInterval_ms", 0);
    cfg.max_frame_size = (uint32_t)vec_int(jc, "MaxFrameSize", 0);
    cfg.max_receive_buffer = (uint32_t)vec_int(jc, "MaxReceiveBuffer", 0);
    cfg.max_stream_buffer = (uint32_t)vec_int(jc, "MaxStreamBuffer", 0);
    struct mh_side c, s;
    mh_side_init(&c, &cfg, true, 0);
    mh_side_init(&s, &cfg, false, 0);
    c.record_frames = s.record_frames = true;

    CHECK_EQ(mux_next_deadline(c.m), 300);
    CHECK_EQ(mux_tick(c.m, 299), 0);
    CHECK_EQ(c.nframes, 0);
    mux_tick(s.m, 300); /* NOP each */
    mux_tick(c.m, 300);
    uint32_t sid = 0;
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 3);
    deliver_all(&c, &s, 400);
    CHECK_EQ(mh_count(&s, MH_OPEN, 3), 1);
    CHECK_EQ(mux_stream_write(c.m, 3, (const uint8_t *)"hello", 5), 5);
    deliver_all(&c, &s, 400);
    uint8_t buf[64];
    CHECK_EQ(mux_stream_read(s.m, 3, buf, sizeof(buf)), 5);
    CHECK_MEM(buf, "hello", 5);
    CHECK_EQ(mux_stream_write(s.m, 3, (const uint8_t *)"world!", 6), 6);
    deliver_all(&s, &c, 400);
    CHECK_EQ(mux_stream_read(c.m, 3, buf, sizeof(buf)), 6);
    CHECK_MEM(buf, "world!", 6);
    CHECK_EQ(mux_stream_release(c.m, 3), 0); /* smux Close: FIN, forget */
    mux_tick(s.m, 600);
    mux_tick(c.m, 600);
    deliver_all(&c, &s, 600);
    CHECK_EQ(mh_count(&s, MH_FIN, 3), 1);
    CHECK_EQ(mux_stream_read(s.m, 3, buf, sizeof(buf)), 0);
    CHECK_EQ(mux_stream_release(s.m, 3), 0);
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 5);
    CHECK_EQ(mux_stream_open(s.m, &sid), 0);
    CHECK_EQ(sid, 2);

    check_writes(sess, "client->server", &c);
    check_writes(sess, "server->client", &s);
    deliver_all(&s, &c, 700); /* the server's FIN for the released stream is dropped */
    deliver_all(&c, &s, 700);
    CHECK(!mux_is_closed(c.m) && !mux_is_closed(s.m));
    struct mux_stats st;
    mux_get_stats(c.m, &st);
    CHECK_EQ(st.dropped_frames, 1);
    CHECK_EQ(mux_stream_count(c.m), 2); /* 5 opened by us, 2 by the server */
    mh_side_free(&c);
    mh_side_free(&s);
}

TEST(mux_vectors_sessions_v1_v2)
{
    cJSON *root = vec_load("smux.json");
    REQUIRE(root);
    const cJSON *sess;
    int n = 0;
    cJSON_ArrayForEach(sess, cJSON_GetObjectItem(root, "sessions"))
    {
        replay_vector_session(sess);
        n++;
    }
    CHECK_EQ(n, 2);
    cJSON_Delete(root);
}

/* Walks a whole smux byte stream like smux 1.5.16 reads it; counts commands. Returns false on
 * a bad version/command or a truncated frame. */
static bool walk_frames(const uint8_t *p, size_t len, int version, size_t counts[MUX_CMD_COUNT],
                        struct mh_buf *payload)
{
    size_t i = 0;
    while (i < len) {
        struct mux_frame_hdr h;
        if (mux_frame_parse(p + i, len - i, &h) != 0 || h.ver != version ||
            h.cmd >= MUX_CMD_COUNT)
            return false;
        i += MUX_HEADER_SIZE;
        size_t body = h.cmd == MUX_CMD_PSH ? h.len : h.cmd == MUX_CMD_UPD ? MUX_UPD_SIZE : 0;
        if (len - i < body)
            return false;
        if (h.cmd == MUX_CMD_PSH)
            mh_buf_add(payload, p + i, body);
        counts[h.cmd]++;
        i += body;
    }
    return true;
}

/* Returns the frames of |p| with command |cmd|, concatenated. */
static void frames_of(const uint8_t *p, size_t len, int cmd, struct mh_buf *out)
{
    for (size_t i = 0; i + MUX_HEADER_SIZE <= len;) {
        struct mux_frame_hdr h;
        mux_frame_parse(p + i, len - i, &h);
        size_t body = h.cmd == MUX_CMD_PSH ? h.len : h.cmd == MUX_CMD_UPD ? MUX_UPD_SIZE : 0;
        if (h.cmd == cmd)
            mh_buf_add(out, p + i, MUX_HEADER_SIZE + body);
        i += MUX_HEADER_SIZE + body;
    }
}

static void check_capture_run(const cJSON *run, int version)
{
    uint8_t *cs = NULL, *sc = NULL;
    long ncs = vec_hex_field(run, "smux_stream_client_to_server_hex", &cs);
    long nsc = vec_hex_field(run, "smux_stream_server_to_client_hex", &sc);
    REQUIRE(ncs > 0 && nsc > 0);
    size_t ccs[MUX_CMD_COUNT] = {0}, csc[MUX_CMD_COUNT] = {0};
    struct mh_buf pcs = {0}, psc = {0};
    CHECK(walk_frames(cs, (size_t)ncs, version, ccs, &pcs));
    CHECK(walk_frames(sc, (size_t)nsc, version, csc, &psc));
    CHECK_EQ(ccs[MUX_CMD_SYN], 1);
    CHECK_EQ(ccs[MUX_CMD_FIN], 1);
    CHECK_EQ(csc[MUX_CMD_FIN], 1);
    if (version == 2) {
        CHECK(ccs[MUX_CMD_UPD] > 0 && csc[MUX_CMD_UPD] > 0);
    }

    /* Our server reads the client's stream; our client (stream 3 opened first) the server's.
     * Reading each frame whole, as kcptun does, must send the same UPD frames Go sent. */
    struct mux_config cfg;
    cfg_for(&cfg, version);
    struct mh_side srv, cli;
    mh_side_init(&srv, &cfg, false, 0);
    mh_side_init(&cli, &cfg, true, 0);
    srv.auto_read = cli.auto_read = true;
    srv.read_cap = cli.read_cap = 65536;
    srv.record_frames = cli.record_frames = true;
    uint32_t sid;
    CHECK_EQ(mux_stream_open(cli.m, &sid), 0);
    CHECK_EQ(sid, 3);
    CHECK_EQ(mh_feed(&srv, cs, (size_t)ncs, 0, 0, 1), ncs);
    CHECK_EQ(mh_feed(&cli, sc, (size_t)nsc, 1, 0, 1), nsc);
    CHECK(!mux_is_closed(srv.m) && !mux_is_closed(cli.m));
    CHECK_EQ(srv.rx.len, pcs.len);
    CHECK_MEM(srv.rx.p, pcs.p, pcs.len);
    CHECK_EQ(cli.rx.len, psc.len);
    CHECK_MEM(cli.rx.p, psc.p, psc.len);
    CHECK_EQ(mh_count(&srv, MH_OPEN, 3), 1);
    CHECK_EQ(mh_count(&srv, MH_FIN, 3), 1);
    CHECK_EQ(mh_count(&cli, MH_FIN, 3), 1);

    struct mh_buf want = {0}, got = {0};
    frames_of(sc, (size_t)nsc, MUX_CMD_UPD, &want);
    frames_of(srv.out.p, srv.out.len, MUX_CMD_UPD, &got);
    CHECK_EQ(got.len, want.len);
    if (got.len == want.len)
        CHECK_MEM(got.p, want.p, got.len);
    free(want.p);
    free(got.p);
    want = (struct mh_buf){0};
    got = (struct mh_buf){0};
    frames_of(cs, (size_t)ncs, MUX_CMD_UPD, &want);
    frames_of(cli.out.p, cli.out.len, MUX_CMD_UPD, &got);
    CHECK_EQ(got.len, want.len);
    if (got.len == want.len)
        CHECK_MEM(got.p, want.p, got.len);
    free(want.p);
    free(got.p);
    free(pcs.p);
    free(psc.p);
    free(cs);
    free(sc);
    mh_side_free(&srv);
    mh_side_free(&cli);
}

TEST(mux_binary_capture_streams)
{
    cJSON *root = vec_load("binary_capture.json");
    REQUIRE(root);
    const cJSON *runs = cJSON_GetObjectItem(root, "runs");
    REQUIRE(cJSON_GetArraySize(runs) == 3);
    check_capture_run(cJSON_GetArrayItem(runs, 0), 1);
    check_capture_run(cJSON_GetArrayItem(runs, 1), 2);
    check_capture_run(cJSON_GetArrayItem(runs, 2), 2);
    /* Run 2 (keepalive 1 s) carries NOPs both ways. */
    uint8_t *b = NULL;
    long n = vec_hex_field(cJSON_GetArrayItem(runs, 1), "smux_stream_client_to_server_hex", &b);
    struct mh_buf nops = {0};
    frames_of(b, (size_t)n, MUX_CMD_NOP, &nops);
    CHECK_EQ(nops.len, 2 * MUX_HEADER_SIZE);
    free(nops.p);
    free(b);
    cJSON_Delete(root);
}

/* A v2 byte stream a server can receive: opens, data of many sizes, UPD, NOP, FIN, frames for
 * unknown streams, a duplicate SYN and an empty PSH. */
static void build_mixed_stream(struct mh_buf *b, uint64_t seed)
{
    static uint8_t data[70000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    for (uint32_t sid = 3; sid <= 11; sid += 2)
        add_frame(b, 2, MUX_CMD_SYN, 0, sid, NULL, 0);
    add_frame(b, 2, MUX_CMD_SYN, 0, 5, NULL, 0);
    for (int i = 0; i < 60; i++) {
        uint32_t sid = 3 + 2 * (uint32_t)(mh_rand(&seed) % 6); /* 13 is unknown */
        size_t n = (size_t)(mh_rand(&seed) % (i % 7 == 0 ? 65536 : 300));
        add_psh(b, 2, sid, data + (size_t)i * 11, n);
        if (i % 9 == 0)
            add_frame(b, 2, MUX_CMD_NOP, 0, 0, NULL, 0);
        if (i % 13 == 0)
            add_upd(b, 2, sid, 0, 1u << 20);
    }
    add_psh(b, 2, 3, NULL, 0);
    add_frame(b, 2, MUX_CMD_FIN, 0, 7, NULL, 0);
    add_frame(b, 2, MUX_CMD_FIN, 0, 99, NULL, 0);
    add_psh(b, 2, 9, data, 1234);
}

static void run_split(const struct mh_buf *in, size_t step, uint64_t seed, struct mh_side *s)
{
    struct mux_config cfg;
    cfg_for(&cfg, 2);
    mh_side_init(s, &cfg, false, 0);
    s->auto_read = true;
    s->read_cap = 777;
    CHECK_EQ(mh_feed(s, in->p, in->len, step, seed, 5), (long)in->len);
}

static void check_same(const struct mh_side *a, const struct mh_side *b)
{
    CHECK_EQ(a->nev, b->nev);
    for (size_t i = 0; i < a->nev && i < b->nev; i++) {
        CHECK_EQ(a->ev[i].type, b->ev[i].type);
        CHECK_EQ(a->ev[i].sid, b->ev[i].sid);
        CHECK_EQ(a->ev[i].n, b->ev[i].n);
    }
    CHECK_EQ(a->rx.len, b->rx.len);
    if (a->rx.len == b->rx.len)
        CHECK_MEM(a->rx.p, b->rx.p, a->rx.len);
    CHECK_EQ(a->out.len, b->out.len);
    if (a->out.len == b->out.len)
        CHECK_MEM(a->out.p, b->out.p, a->out.len);
    struct mux_stats sa, sb;
    mux_get_stats(a->m, &sa);
    mux_get_stats(b->m, &sb);
    CHECK_EQ(sa.frames_in, sb.frames_in);
    CHECK_EQ(sa.dropped_frames, sb.dropped_frames);
    CHECK_EQ(sa.dropped_bytes, sb.dropped_bytes);
    CHECK_EQ(sa.bytes_in, sb.bytes_in);
}

TEST(mux_input_split_anywhere_same_events)
{
    struct mh_buf in = {0};
    build_mixed_stream(&in, 42);
    struct mh_side whole, bytewise, rnd;
    run_split(&in, 0, 0, &whole);
    run_split(&in, 1, 0, &bytewise);
    check_same(&whole, &bytewise);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        run_split(&in, SIZE_MAX, seed, &rnd);
        check_same(&whole, &rnd);
        mh_side_free(&rnd);
    }
    struct mux_stats st;
    mux_get_stats(whole.m, &st);
    CHECK_EQ(mh_count(&whole, MH_OPEN, UINT32_MAX), 5);
    CHECK_EQ(mh_count(&whole, MH_FIN, 7), 1);
    CHECK(st.dropped_frames >= 3); /* duplicate SYN, FIN for 99, PSH for 13 */
    CHECK(st.dropped_bytes > 0);
    CHECK(st.upd_in > 0 && st.nop_in > 0);
    CHECK_EQ(st.rx_buffered, 0);
    CHECK(!mux_is_closed(whole.m));
    mh_side_free(&whole);
    mh_side_free(&bytewise);
    free(in.p);
}

/* ---- bad input ---- */

static void expect_fatal(int version, const struct mh_buf *in, const char *reason)
{
    struct mux_config cfg;
    cfg_for(&cfg, version);
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    ssize_t r = mux_input(s.m, in->p, in->len, 1);
    CHECK_EQ(r, ERR_PROTO);
    CHECK(s.close_reason && strcmp(s.close_reason, reason) == 0);
    CHECK(mux_is_closed(s.m));
    CHECK_EQ(mux_input(s.m, in->p, in->len, 2), ERR_CLOSED);
    CHECK_EQ(mux_tick(s.m, 100000), ERR_CLOSED);
    CHECK_EQ(mux_next_deadline(s.m), UINT64_MAX);
    CHECK_EQ(mh_count(&s, MH_CLOSE, UINT32_MAX), 1);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.protocol_errors, 1);
    mh_side_free(&s);
}

TEST(mux_bad_version_and_command_close_session)
{
    struct mh_buf b = {0};
    add_frame(&b, 1, MUX_CMD_SYN, 0, 3, NULL, 0);
    add_frame(&b, 2, MUX_CMD_NOP, 0, 0, NULL, 0);
    expect_fatal(1, &b, "invalid protocol version");
    b.len = 0;
    add_frame(&b, 2, MUX_CMD_NOP, 0, 0, NULL, 0);
    expect_fatal(1, &b, "invalid protocol version");
    b.len = 0;
    add_frame(&b, 1, 5, 0, 3, NULL, 0);
    expect_fatal(1, &b, "unknown command");
    b.len = 0;
    add_frame(&b, 2, 0xff, 0, 3, NULL, 0);
    expect_fatal(2, &b, "unknown command");
    free(b.p);
}

TEST(mux_quirks_of_smux_1_5_16)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    s.auto_read = true;
    struct mh_buf b = {0};
    uint8_t big[65535];
    memset(big, 0xa5, sizeof(big));
    /* The length field of SYN/FIN/NOP is ignored: no payload is read. */
    add_frame(&b, 1, MUX_CMD_SYN, 5, 3, NULL, 0);
    add_frame(&b, 1, MUX_CMD_NOP, 9, 0, NULL, 0);
    /* UPD in v1: its 8 bytes are read and the frame dropped; the length field does not count. */
    add_frame(&b, 1, MUX_CMD_UPD, 0, 3, (const uint8_t *)"12345678", 8);
    /* The largest frame is accepted. */
    add_psh(&b, 1, 3, big, sizeof(big));
    /* Data for an unknown stream is read and discarded without charging the bucket. */
    add_psh(&b, 1, 77, big, 1000);
    add_frame(&b, 1, MUX_CMD_FIN, 0, 77, NULL, 0);
    add_frame(&b, 1, MUX_CMD_SYN, 0, 3, NULL, 0);
    add_psh(&b, 1, 3, "x", 1);
    add_frame(&b, 1, MUX_CMD_FIN, 0, 3, NULL, 0);
    add_frame(&b, 1, MUX_CMD_FIN, 0, 3, NULL, 0);
    CHECK_EQ(mh_feed(&s, b.p, b.len, SIZE_MAX, 9, 1), (long)b.len);
    CHECK(!mux_is_closed(s.m));
    CHECK_EQ(s.rx.len, sizeof(big) + 1);
    CHECK_EQ(mh_count(&s, MH_OPEN, 3), 1);
    CHECK_EQ(mh_count(&s, MH_FIN, 3), 1);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.frames_in, 10);
    CHECK_EQ(st.dropped_frames, 5); /* UPD v1, PSH 77, FIN 77, SYN 3 again, FIN 3 again */
    CHECK_EQ(st.dropped_bytes, 1000);
    CHECK_EQ(st.bytes_in, sizeof(big) + 1);
    uint8_t c;
    CHECK_EQ(mux_stream_read(s.m, 3, &c, 1), 0); /* EOF */
    CHECK_EQ(mux_stream_read(s.m, 3, &c, 0), ERR_INVAL);
    CHECK_EQ(mux_stream_read(s.m, 5, &c, 1), ERR_CLOSED);
    mh_side_free(&s);
    free(b.p);
}

TEST(mux_random_garbage_never_crashes)
{
    uint64_t seed = 7;
    uint8_t buf[4096];
    for (int iter = 0; iter < 300; iter++) {
        struct mux_config cfg;
        cfg_for(&cfg, 1 + iter % 2);
        cfg.max_receive_buffer = 1 + (uint32_t)(mh_rand(&seed) % 100000);
        cfg.max_stream_buffer = cfg.max_receive_buffer;
        cfg.max_streams = 1 + (uint32_t)(mh_rand(&seed) % 8);
        struct mh_side s;
        mh_side_init(&s, &cfg, iter % 3 == 0, 0);
        s.auto_read = iter % 4 != 0;
        size_t n = (size_t)(mh_rand(&seed) % sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            uint64_t r = mh_rand(&seed);
            /* Mostly plausible headers so the parser goes deep: version, small commands. */
            buf[i] = (uint8_t)(i % 8 == 0 ? (uint8_t)cfg.version : i % 8 == 1 ? r % 6 : r);
        }
        mh_feed(&s, buf, n, SIZE_MAX, seed, 1);
        for (uint32_t sid = 0; sid < 64; sid++) {
            uint8_t out[100];
            mux_stream_read(s.m, sid, out, sizeof(out));
            mux_stream_write(s.m, sid, out, sizeof(out));
            if (sid % 3 == 0)
                mux_stream_release(s.m, sid);
        }
        mux_tick(s.m, 40000);
        struct mux_stats st;
        mux_get_stats(s.m, &st);
        CHECK(st.rx_buffered <= cfg.max_receive_buffer + MUX_MAX_PAYLOAD);
        CHECK(mux_stream_count(s.m) <= cfg.max_streams);
        mh_side_free(&s);
    }
}

TEST(mux_max_streams_refuses_with_fin)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    cfg.max_streams = 2;
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    s.record_frames = true;
    struct mh_buf b = {0};
    for (uint32_t sid = 3; sid <= 7; sid += 2)
        add_frame(&b, 1, MUX_CMD_SYN, 0, sid, NULL, 0);
    add_psh(&b, 1, 7, "zz", 2);
    CHECK_EQ(mux_input(s.m, b.p, b.len, 1), (ssize_t)b.len);
    CHECK_EQ(mh_count(&s, MH_OPEN, UINT32_MAX), 2);
    CHECK(!mux_stream_exists(s.m, 7));
    REQUIRE(s.nframes == 1);
    static const uint8_t fin7[8] = {1, 1, 0, 0, 7, 0, 0, 0};
    CHECK_MEM(s.frames[0].p, fin7, 8);
    uint32_t sid;
    CHECK_EQ(mux_stream_open(s.m, &sid), ERR_LIMIT);
    CHECK_EQ(mux_stream_release(s.m, 3), 0);
    CHECK_EQ(mux_stream_release(s.m, 3), ERR_CLOSED);
    CHECK_EQ(mux_stream_open(s.m, &sid), 0);
    CHECK_EQ(sid, 2);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.streams_refused, 1);
    CHECK_EQ(st.dropped_frames, 1);
    CHECK_EQ(st.streams_closed, 1);
    mh_side_free(&s);
    free(b.p);
}

TEST(mux_stream_ids_and_exhaustion)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    struct mh_side c, s;
    mh_side_init(&c, &cfg, true, 0);
    mh_side_init(&s, &cfg, false, 0);
    uint32_t sid;
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 3);
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 5);
    /* A peer that opened one of our ids: it is skipped. */
    struct mh_buf b = {0};
    add_frame(&b, 1, MUX_CMD_SYN, 0, 7, NULL, 0);
    CHECK_EQ(mux_input(c.m, b.p, b.len, 1), 8);
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 9);
    mux_debug_set_last_sid(c.m, 0xfffffffdu);
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    CHECK_EQ(sid, 0xffffffffu);
    CHECK_EQ(mux_stream_open(c.m, &sid), ERR_LIMIT);
    CHECK_EQ(mux_stream_open(c.m, &sid), ERR_LIMIT);
    CHECK_EQ(mux_stream_open(s.m, &sid), 0);
    CHECK_EQ(sid, 2);
    CHECK_EQ(mux_stream_open(s.m, &sid), 0);
    CHECK_EQ(sid, 4);
    mux_debug_set_last_sid(s.m, 0xfffffffcu);
    CHECK_EQ(mux_stream_open(s.m, &sid), 0);
    CHECK_EQ(sid, 0xfffffffeu);
    CHECK_EQ(mux_stream_open(s.m, &sid), ERR_LIMIT);
    mh_side_free(&c);
    mh_side_free(&s);
    free(b.p);
}

TEST(mux_output_failure_closes_session)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    struct mh_side c;
    mh_side_init(&c, &cfg, true, 0);
    uint32_t sid;
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    c.fail_output = true;
    CHECK_EQ(mux_stream_write(c.m, sid, (const uint8_t *)"abc", 3), ERR_CLOSED);
    CHECK(c.close_reason && strcmp(c.close_reason, "output failed") == 0);
    CHECK_EQ(mux_stream_write(c.m, sid, (const uint8_t *)"abc", 3), ERR_CLOSED);
    CHECK_EQ(mux_stream_open(c.m, &sid), ERR_CLOSED);
    CHECK_EQ(mux_stream_close(c.m, 3), ERR_CLOSED);
    CHECK_EQ(mux_stream_release(c.m, 3), 0);
    CHECK_EQ(mh_count(&c, MH_CLOSE, UINT32_MAX), 1);
    mh_side_free(&c);
}

/* ---- keepalive ---- */

static size_t count_nops(const struct mh_side *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += s->frames[i].len == 8 && s->frames[i].p[1] == MUX_CMD_NOP;
    return n;
}

TEST(mux_keepalive_nop_every_interval)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1); /* kcptun default: NOP every 10 s, check every 30 s */
    struct mh_side c;
    mh_side_init(&c, &cfg, true, 1000);
    c.record_frames = true;
    CHECK_EQ(mux_next_deadline(c.m), 11000);
    CHECK_EQ(mux_tick(c.m, 10999), 0);
    CHECK_EQ(count_nops(&c), 0);
    CHECK_EQ(mux_tick(c.m, 11000), 0);
    CHECK_EQ(count_nops(&c), 1);
    static const uint8_t nop[8] = {1, 3, 0, 0, 0, 0, 0, 0};
    CHECK_MEM(c.frames[0].p, nop, 8);
    CHECK_EQ(mux_next_deadline(c.m), 21000);
    /* Peer traffic keeps the session alive across checks. */
    struct mh_buf b = {0};
    add_frame(&b, 1, MUX_CMD_NOP, 0, 0, NULL, 0);
    CHECK_EQ(mux_input(c.m, b.p, 8, 15000), 8);
    CHECK_EQ(mux_tick(c.m, 21000), 0);
    CHECK_EQ(mux_tick(c.m, 31000), 0); /* NOP and the first check: a frame came, alive */
    CHECK_EQ(count_nops(&c), 3);
    CHECK_EQ(mux_next_deadline(c.m), 41000);
    /* A late tick sends one NOP and skips the missed periods, like a Go ticker. */
    CHECK_EQ(mux_tick(c.m, 58500), 0);
    CHECK_EQ(count_nops(&c), 4);
    CHECK_EQ(mux_next_deadline(c.m), 61000);
    CHECK(!mux_is_closed(c.m)); /* the 2nd check (61000) is not due yet */
    CHECK_EQ(mux_tick(c.m, 61000), ERR_CLOSED); /* nothing arrived during 31000..61000 */
    CHECK(c.close_reason && strcmp(c.close_reason, "keepalive timeout") == 0);
    CHECK_EQ(count_nops(&c), 5);
    CHECK_EQ(mux_next_deadline(c.m), UINT64_MAX);
    struct mux_stats st;
    mux_get_stats(c.m, &st);
    CHECK_EQ(st.keepalive_timeouts, 1);
    CHECK_EQ(st.nop_in, 1);
    CHECK_EQ(st.last_rx_ms, 15000);
    mh_side_free(&c);
    free(b.p);
}

TEST(mux_keepalive_timeout_30s_without_frames)
{
    struct mux_config cfg;
    cfg_for(&cfg, 2);
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    for (uint64_t t = 0; t < 30000; t += 500)
        CHECK_EQ(mux_tick(s.m, t), 0);
    CHECK(!mux_is_closed(s.m));
    CHECK_EQ(mux_tick(s.m, 30000), ERR_CLOSED);
    CHECK_EQ(mh_count(&s, MH_CLOSE, UINT32_MAX), 1);
    mh_side_free(&s);

    /* Disabled keepalive: no deadline, nothing sent, never closed. */
    cfg.keepalive_interval_ms = 0;
    mh_side_init(&s, &cfg, false, 0);
    CHECK_EQ(mux_next_deadline(s.m), UINT64_MAX);
    CHECK_EQ(mux_tick(s.m, 1000000), 0);
    CHECK_EQ(s.out.len, 0);
    mh_side_free(&s);
}

/* The receive bucket stops input at a frame boundary; a blocked receiver is not timed out. */
TEST(mux_session_bucket_backpressure)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    cfg.max_receive_buffer = 1000;
    cfg.max_stream_buffer = 1000;
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    struct mh_buf b = {0};
    uint8_t d[600];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)i;
    add_frame(&b, 1, MUX_CMD_SYN, 0, 3, NULL, 0);
    add_psh(&b, 1, 3, d, 600); /* bucket 400 */
    add_psh(&b, 1, 3, d, 600); /* started with tokens left, so taken whole: bucket -200 */
    add_psh(&b, 1, 3, d, 600);
    /* Byte by byte: stops exactly after the second PSH. */
    CHECK_EQ(mh_feed(&s, b.p, b.len, 1, 0, 1), 8 + 2 * 608);
    CHECK(mux_input_blocked(s.m));
    CHECK_EQ(mux_input(s.m, b.p + 8 + 2 * 608, 608, 1), ERR_AGAIN);
    CHECK_EQ(mux_stream_buffered(s.m, 3), 1200);
    CHECK_EQ(mux_tick(s.m, 30000), 0); /* no frame for 30 s, but we are the ones not reading */
    uint8_t out[300];
    CHECK_EQ(mux_stream_read(s.m, 3, out, 200), 200);
    CHECK(mux_input_blocked(s.m)); /* bucket 0 */
    CHECK_EQ(mux_stream_read(s.m, 3, out, 300), 300);
    CHECK_MEM(out, d + 200, 300);
    CHECK(!mux_input_blocked(s.m));
    CHECK_EQ(mux_input(s.m, b.p + 8 + 2 * 608, 608, 2), 608);
    /* Releasing the stream returns its unread bytes to the bucket. */
    CHECK_EQ(mux_stream_release(s.m, 3), 0);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.rx_buffered, 0);
    CHECK_EQ(st.rx_alloc, 0);
    CHECK(st.input_stalls >= 1);
    CHECK_EQ(st.rx_buffered_peak, 1300); /* 700 left + 600 */
    CHECK(!mux_input_blocked(s.m));
    mh_side_free(&s);
    free(b.p);
}

/* ---- half-close ---- */

static void half_close(int version)
{
    struct mux_config cfg;
    cfg_for(&cfg, version);
    struct mh_side c, s;
    mh_side_init(&c, &cfg, true, 0);
    mh_side_init(&s, &cfg, false, 0);
    s.auto_read = true;
    static uint8_t data[300000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + (i >> 11));
    uint32_t sid;
    CHECK_EQ(mux_stream_open(c.m, &sid), 0);
    size_t sent = 0;
    /* v2: the first 262144 bytes fit the initial window; the rest waits for UPD. */
    while (sent < sizeof(data)) {
        ssize_t n = mux_stream_write(c.m, sid, data + sent, sizeof(data) - sent);
        if (n == ERR_AGAIN) {
            CHECK_EQ(version, 2);
            CHECK_EQ(sent, MUX_INITIAL_PEER_WINDOW);
            CHECK_EQ(mux_stream_writable(c.m, sid), 0);
            while (mh_deliver(&c, &s, 1 + sent % 977, 1) > 0)
                ;
            CHECK_EQ(mh_count(&c, MH_WRITABLE, sid), 0);
            while (mh_deliver(&s, &c, 5, 1) > 0)
                ;
            CHECK_EQ(mh_count(&c, MH_WRITABLE, sid), 1);
            CHECK(mux_stream_writable(c.m, sid) > 0);
            continue;
        }
        REQUIRE(n > 0);
        sent += (size_t)n;
    }
    CHECK_EQ(mux_stream_close(c.m, sid), 0);
    CHECK_EQ(mux_stream_close(c.m, sid), 0); /* FIN only once */
    CHECK_EQ(mux_stream_write(c.m, sid, data, 1), ERR_CLOSED);
    size_t fins = 0;
    for (size_t i = 0; i + 8 <= c.out.len; i += 8 + (c.out.p[i + 1] == MUX_CMD_PSH ?
                                                         rd_u16le(c.out.p + i + 2) : 0))
        fins += c.out.p[i + 1] == MUX_CMD_FIN;
    CHECK_EQ(fins, 1);
    /* Random splits; every byte written before FIN arrives before the FIN event. */
    uint64_t rng = 99;
    long r;
    do {
        r = mh_deliver(&c, &s, 1 + (size_t)(mh_rand(&rng) % 5000), 2);
    } while (r > 0);
    CHECK_EQ(s.rx.len, sizeof(data));
    CHECK_MEM(s.rx.p, data, sizeof(data));
    REQUIRE(s.nev >= 2);
    CHECK_EQ(s.ev[s.nev - 1].type, MH_FIN);
    CHECK_EQ(mh_count(&s, MH_FIN, sid), 1);
    uint8_t b[16];
    CHECK_EQ(mux_stream_read(s.m, sid, b, sizeof(b)), 0);
    /* The server can still answer after the client's FIN, and the client still receives. */
    CHECK_EQ(mux_stream_write(s.m, sid, (const uint8_t *)"reply", 5), 5);
    CHECK_EQ(mux_stream_close(s.m, sid), 0);
    while (mh_deliver(&s, &c, 3, 3) > 0)
        ;
    CHECK_EQ(mux_stream_read(c.m, sid, b, sizeof(b)), 5);
    CHECK_MEM(b, "reply", 5);
    CHECK_EQ(mux_stream_read(c.m, sid, b, sizeof(b)), 0);
    CHECK_EQ(mh_count(&c, MH_FIN, sid), 1);
    CHECK_EQ(mux_stream_release(c.m, sid), 0);
    CHECK_EQ(mux_stream_release(s.m, sid), 0);
    size_t before = c.out.len;
    CHECK_EQ(mux_stream_release(c.m, sid), ERR_CLOSED);
    CHECK_EQ(c.out.len, before); /* released after our FIN: no second FIN */
    mh_side_free(&c);
    mh_side_free(&s);
}

TEST(mux_half_close_v1)
{
    half_close(1);
}

TEST(mux_half_close_v2)
{
    half_close(2);
}

/* A stream released (or refused) while its frame is half received: the rest is skipped. */
TEST(mux_release_during_partial_frame)
{
    struct mux_config cfg;
    cfg_for(&cfg, 2);
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    struct mh_buf b = {0};
    uint8_t d[5000];
    memset(d, 7, sizeof(d));
    add_frame(&b, 2, MUX_CMD_SYN, 0, 3, NULL, 0);
    add_psh(&b, 2, 3, d, 100);
    add_psh(&b, 2, 3, d, 5000);
    add_psh(&b, 2, 3, d, 10);
    add_frame(&b, 2, MUX_CMD_NOP, 0, 0, NULL, 0);
    CHECK_EQ(mux_input(s.m, b.p, 8 + 108 + 8 + 2000, 1), 8 + 108 + 8 + 2000);
    CHECK_EQ(mux_stream_buffered(s.m, 3), 100);
    uint8_t out[200];
    CHECK_EQ(mux_stream_read(s.m, 3, out, sizeof(out)), 100); /* chunk kept: frame pending */
    CHECK_EQ(mux_stream_release(s.m, 3), 0);
    size_t rest = b.len - (8 + 108 + 8 + 2000);
    CHECK_EQ(mux_input(s.m, b.p + b.len - rest, rest, 2), (ssize_t)rest);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.dropped_bytes, 5010);
    CHECK_EQ(st.dropped_frames, 2);
    CHECK_EQ(st.nop_in, 1);
    CHECK_EQ(st.rx_alloc, 0);
    CHECK(!mux_is_closed(s.m));
    mh_side_free(&s);
    free(b.p);
}

/* Valid streams with random byte flips, fed at random splits, with callbacks that release,
 * write and open streams: no crash, no leak (sanitizer builds), memory within bounds. */
TEST(mux_mutated_streams_with_reentrant_callbacks)
{
    struct mh_buf in = {0};
    build_mixed_stream(&in, 4242);
    uint8_t *copy = malloc(in.len);
    REQUIRE(copy);
    uint64_t rng = 31337;
    int closed = 0;
    for (int iter = 0; iter < 200; iter++) {
        memcpy(copy, in.p, in.len);
        int flips = 1 + (int)(mh_rand(&rng) % 6);
        for (int f = 0; f < flips; f++) {
            /* Most flips land in the first frames, where headers are dense. */
            size_t at = (size_t)(mh_rand(&rng) % (iter % 2 ? in.len : 600));
            copy[at] ^= (uint8_t)(1u << (mh_rand(&rng) % 8));
        }
        struct mux_config cfg;
        cfg_for(&cfg, 2);
        cfg.max_receive_buffer = 20000 + (uint32_t)(mh_rand(&rng) % 200000);
        cfg.max_stream_buffer = cfg.max_receive_buffer / 2;
        cfg.max_streams = 1 + (uint32_t)(mh_rand(&rng) % 6);
        struct mh_side s;
        mh_side_init(&s, &cfg, false, 0);
        s.auto_read = iter % 3 != 0;
        s.release_on_fin = iter % 2 == 0;
        s.reply_on_open = iter % 5 < 2;
        long r = mh_feed(&s, copy, in.len, SIZE_MAX, rng, 1);
        CHECK(r == (long)in.len || r == ERR_PROTO || (r >= 0 && mux_input_blocked(s.m)));
        closed += mux_is_closed(s.m);
        struct mux_stats st;
        mux_get_stats(s.m, &st);
        CHECK(st.rx_buffered <= cfg.max_receive_buffer + MUX_MAX_PAYLOAD);
        CHECK(st.rx_alloc <= 2 * (cfg.max_receive_buffer + MUX_MAX_PAYLOAD) +
                                 cfg.max_streams * 1024);
        mh_side_free(&s);
    }
    CHECK(closed > 0 && closed < 200); /* both outcomes were exercised */
    free(copy);
    free(in.p);
}

TEST(mux_callbacks_may_write_open_and_release)
{
    struct mux_config cfg;
    cfg_for(&cfg, 1);
    struct mh_side s;
    mh_side_init(&s, &cfg, false, 0);
    s.auto_read = true;
    s.reply_on_open = true;
    s.release_on_fin = true;
    s.record_frames = true;
    struct mh_buf b = {0};
    add_frame(&b, 1, MUX_CMD_SYN, 0, 3, NULL, 0);
    add_psh(&b, 1, 3, "abc", 3);
    add_frame(&b, 1, MUX_CMD_FIN, 0, 3, NULL, 0);
    add_psh(&b, 1, 3, "late", 4);
    CHECK_EQ(mh_feed(&s, b.p, b.len, 1, 0, 1), (long)b.len);
    CHECK_EQ(s.rx.len, 3);
    CHECK_EQ(mux_stream_count(s.m), 0);
    static const uint8_t want[] = {
        1, 2, 2, 0, 3, 0, 0, 0, 'h', 'i', /* reply inside on_stream_open */
        1, 0, 0, 0, 2, 0, 0, 0,           /* SYN 2 opened inside the callback */
        1, 1, 0, 0, 2, 0, 0, 0,           /* ... and released */
        1, 1, 0, 0, 3, 0, 0, 0,           /* release inside on_stream_fin sends our FIN */
    };
    CHECK_EQ(s.out.len, sizeof(want));
    if (s.out.len == sizeof(want))
        CHECK_MEM(s.out.p, want, sizeof(want));
    CHECK_EQ(s.nframes, 4);
    struct mux_stats st;
    mux_get_stats(s.m, &st);
    CHECK_EQ(st.dropped_frames, 1); /* "late" for the released stream */
    CHECK_EQ(st.dropped_bytes, 4);
    mh_side_free(&s);
    free(b.p);
}
