/* SPDX-License-Identifier: MIT */
/* KCP engine: known answers from real kcptun traffic, kcp-go timing rules, bad input. */
#include "common/err.h"
#include "common/kcp.h"
#include "common/wire.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a capturing output callback ---- */

#define CAP_MAX 256

struct capture {
    size_t n;                /* packets captured */
    size_t len[CAP_MAX];
    uint8_t pkt[CAP_MAX][KCP_MTU_MAX];
};

static void cap_output(void *user, const uint8_t *pkt, size_t len)
{
    struct capture *c = user;
    if (c->n < CAP_MAX) {
        memcpy(c->pkt[c->n], pkt, len);
        c->len[c->n] = len;
    }
    c->n++;
}

/* Decodes every segment of captured packet |i| into |out| (up to |max|). Returns the count. */
static size_t cap_segments(const struct capture *c, size_t i, struct kcp_seg_hdr *out, size_t max)
{
    const uint8_t *p = c->pkt[i], *end = p + c->len[i];
    size_t n = 0;
    struct kcp_seg_hdr h;
    while (n < max && kcp_seg_hdr_decode(&p, end, &h) == 0) {
        out[n++] = h;
        p += h.len;
    }
    return n;
}

/* Counts segments with command |cmd| over all captured packets. */
static size_t cap_count_cmd(const struct capture *c, uint8_t cmd)
{
    size_t total = 0;
    for (size_t i = 0; i < c->n && i < CAP_MAX; i++) {
        struct kcp_seg_hdr h[64];
        size_t n = cap_segments(c, i, h, 64);
        for (size_t j = 0; j < n; j++)
            total += h[j].cmd == cmd;
    }
    return total;
}

static struct capture *cap_new(void)
{
    return calloc(1, sizeof(struct capture));
}

/* Builds a one-segment packet. Returns its length. */
static size_t make_seg(uint8_t *buf, uint32_t conv, uint8_t cmd, uint16_t wnd, uint32_t ts,
                       uint32_t sn, uint32_t una, const uint8_t *data, uint32_t len)
{
    struct kcp_seg_hdr h = {conv, cmd, 0, wnd, ts, sn, una, len};
    uint8_t *p = kcp_seg_hdr_encode(buf, &h);
    if (len)
        memcpy(p, data, len);
    return KCP_OVERHEAD + len;
}

/* ---- header codec ---- */

TEST(kcp_seg_hdr_roundtrip)
{
    struct kcp_seg_hdr h = {0xbce6d4a1u, KCP_CMD_PUSH, 7, 512, 0x01020304u, 0xfffffffeu, 9, 18};
    uint8_t b[KCP_OVERHEAD];
    CHECK(kcp_seg_hdr_encode(b, &h) == b + KCP_OVERHEAD);
    static const uint8_t want[KCP_OVERHEAD] = {0xa1, 0xd4, 0xe6, 0xbc, 81, 7, 0x00, 0x02,
                                               4, 3, 2, 1, 0xfe, 0xff, 0xff, 0xff,
                                               9, 0, 0, 0, 18, 0, 0, 0};
    CHECK_MEM(b, want, KCP_OVERHEAD);
    struct kcp_seg_hdr d;
    const uint8_t *p = b;
    CHECK_EQ(kcp_seg_hdr_decode(&p, b + KCP_OVERHEAD, &d), 0);
    CHECK(p == b + KCP_OVERHEAD);
    CHECK(memcmp(&d, &h, sizeof(h)) == 0);
    p = b;
    CHECK_EQ(kcp_seg_hdr_decode(&p, b + KCP_OVERHEAD - 1, &d), ERR_PROTO);
    CHECK(p == b);
}

/* ---- known answers: binary_capture.json ---- */

/* Returns the KCP packet inside a decrypted datagram, or NULL for FEC parity. */
static const uint8_t *capture_kcp_packet(const cJSON *pk, const uint8_t *dg, long dg_len,
                                         size_t *len)
{
    const size_t crypt_hdr = 20;
    if (dg_len < (long)crypt_hdr)
        return NULL;
    if (!cJSON_GetObjectItem(pk, "fec_seqid")) {
        *len = (size_t)dg_len - crypt_hdr;
        return dg + crypt_hdr;
    }
    const char *flag = vec_str(pk, "fec_flag");
    if (!flag || strcmp(flag, "data") != 0 || dg_len < (long)crypt_hdr + 8)
        return NULL;
    size_t size = rd_u16le(dg + crypt_hdr + 6); /* counts its own 2 bytes */
    if (size < 2 || crypt_hdr + 6 + size > (size_t)dg_len)
        return NULL;
    *len = size - 2;
    return dg + crypt_hdr + 8;
}

/* Decodes one capture packet, compares every segment with the listed fields and re-encodes
 * it. PUSH payloads are stored by sn in |stream| (one per direction). */
struct sn_payload {
    uint32_t sn;
    size_t len;
    uint8_t data[1400];
};

struct dir_stream {
    struct sn_payload seg[64];
    size_t n;
};

static void check_capture_packet(const cJSON *pk, const uint8_t *kp, size_t klen,
                                 struct dir_stream *ds)
{
    const cJSON *segs = cJSON_GetObjectItem(pk, "kcp_segments");
    const uint8_t *p = kp, *end = kp + klen;
    uint8_t *rebuilt = malloc(klen + 1);
    size_t rlen = 0;
    REQUIRE(rebuilt);
    int idx = 0;
    const cJSON *js;
    cJSON_ArrayForEach(js, segs) {
        struct kcp_seg_hdr h;
        const uint8_t *start = p;
        if (kcp_seg_hdr_decode(&p, end, &h) != 0 || h.len > (size_t)(end - p)) {
            CHECK(!"segment runs past the packet");
            break;
        }
        CHECK_EQ(h.conv, vec_int(js, "conv", -1));
        CHECK_EQ(h.cmd, vec_int(js, "cmd", -1));
        CHECK_EQ(h.frg, vec_int(js, "frg", -1));
        CHECK_EQ(h.wnd, vec_int(js, "wnd", -1));
        CHECK_EQ(h.ts, vec_int(js, "ts", -1));
        CHECK_EQ(h.sn, vec_int(js, "sn", -1));
        CHECK_EQ(h.una, vec_int(js, "una", -1));
        CHECK_EQ(h.len, vec_int(js, "len", -1));
        uint8_t re[KCP_OVERHEAD];
        kcp_seg_hdr_encode(re, &h);
        CHECK_MEM(re, start, KCP_OVERHEAD);
        /* Rebuild the whole packet from the decoded fields and payloads. */
        if (rlen + KCP_OVERHEAD + h.len <= klen) {
            memcpy(kcp_seg_hdr_encode(rebuilt + rlen, &h), p, h.len);
            rlen += KCP_OVERHEAD + h.len;
        }
        if (h.cmd == KCP_CMD_PUSH && ds->n < 64 && h.len <= 1400) {
            bool dup = false;
            for (size_t i = 0; i < ds->n; i++)
                dup |= ds->seg[i].sn == h.sn;
            if (!dup) {
                ds->seg[ds->n].sn = h.sn;
                ds->seg[ds->n].len = h.len;
                memcpy(ds->seg[ds->n].data, p, h.len);
                ds->n++;
            }
        }
        p += h.len;
        idx++;
    }
    CHECK(p == end);
    CHECK(idx > 0);
    CHECK_EQ(rlen, klen);
    CHECK_MEM(rebuilt, kp, rlen);
    free(rebuilt);
}

static int cmp_sn(const void *a, const void *b)
{
    const struct sn_payload *x = a, *y = b;
    return x->sn < y->sn ? -1 : x->sn > y->sn;
}

static void check_stream(struct dir_stream *ds, const cJSON *run, const char *key)
{
    uint8_t *want = NULL;
    long wlen = vec_hex_field(run, key, &want);
    REQUIRE(wlen >= 0);
    qsort(ds->seg, ds->n, sizeof(ds->seg[0]), cmp_sn);
    uint8_t *got = malloc((size_t)wlen + 1);
    size_t off = 0;
    bool fits = true;
    for (size_t i = 0; i < ds->n; i++) {
        CHECK_EQ(ds->seg[i].sn, i); /* contiguous from 0 */
        if (off + ds->seg[i].len > (size_t)wlen) {
            fits = false;
            break;
        }
        memcpy(got + off, ds->seg[i].data, ds->seg[i].len);
        off += ds->seg[i].len;
    }
    CHECK(fits);
    CHECK_EQ(off, wlen);
    CHECK_MEM(got, want, off < (size_t)wlen ? off : (size_t)wlen);
    free(got);
    free(want);
}

/* Feeds the PUSH segments of |ds| (in capture order, duplicates included) into a fresh
 * engine with conv |conv| and checks kcp_recv returns the stream. */
static void check_engine_replay(const struct dir_stream *ds, uint32_t conv, const cJSON *run,
                                const char *key)
{
    uint8_t *want = NULL;
    long wlen = vec_hex_field(run, key, &want);
    REQUIRE(wlen >= 0);
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(conv, cap_output, c);
    REQUIRE(k && c);
    kcp_set_stream(k, true);
    kcp_set_window(k, 128, 512);
    /* Deliver in reverse sn order: everything waits in rcv_buf until sn 0 arrives. */
    for (size_t i = ds->n; i-- > 0;) {
        uint8_t pkt[KCP_OVERHEAD + 1400];
        size_t n = make_seg(pkt, conv, KCP_CMD_PUSH, 512, 1000 + (uint32_t)i, ds->seg[i].sn, 0,
                            ds->seg[i].data, (uint32_t)ds->seg[i].len);
        CHECK_EQ(kcp_input(k, pkt, n, true, 5), 0);
    }
    uint8_t *got = malloc((size_t)wlen + 64);
    ssize_t r, off = 0;
    while ((r = kcp_recv(k, got + off, 7)) > 0) /* small reads: stream reads may split */
        off += r;
    CHECK_EQ(off, wlen);
    CHECK_MEM(got, want, (size_t)(off < wlen ? off : wlen));
    CHECK_EQ(kcp_recv(k, got, 64), ERR_AGAIN);
    /* The ACKs it sends acknowledge everything. */
    kcp_flush(k, 10);
    CHECK(c->n > 0);
    struct kcp_seg_hdr h[64];
    size_t ns = cap_segments(c, c->n - 1, h, 64);
    REQUIRE(ns > 0);
    CHECK_EQ(h[ns - 1].una, ds->n);
    free(got);
    free(want);
    kcp_free(k);
    free(c);
}

TEST(kcp_vectors_binary_capture)
{
    cJSON *root = vec_load("binary_capture.json");
    REQUIRE(root);
    const cJSON *run;
    int packets = 0, runs = 0;
    cJSON_ArrayForEach(run, cJSON_GetObjectItem(root, "runs")) {
        static struct dir_stream c2s, s2c;
        memset(&c2s, 0, sizeof(c2s));
        memset(&s2c, 0, sizeof(s2c));
        uint32_t conv = 0;
        const cJSON *pk;
        cJSON_ArrayForEach(pk, cJSON_GetObjectItem(run, "packets")) {
            uint8_t *dg = NULL;
            long dl = vec_hex_field(pk, "decrypted_hex", &dg);
            size_t klen = 0;
            const uint8_t *kp = dl > 0 ? capture_kcp_packet(pk, dg, dl, &klen) : NULL;
            if (kp) {
                const char *dir = vec_str(pk, "direction");
                bool to_server = dir && strcmp(dir, "client->server") == 0;
                check_capture_packet(pk, kp, klen, to_server ? &c2s : &s2c);
                conv = rd_u32le(kp);
                packets++;
            } else {
                CHECK(!cJSON_GetObjectItem(pk, "kcp_segments"));
            }
            free(dg);
        }
        check_stream(&c2s, run, "kcp_stream_client_to_server_hex");
        check_stream(&s2c, run, "kcp_stream_server_to_client_hex");
        check_engine_replay(&c2s, conv, run, "kcp_stream_client_to_server_hex");
        check_engine_replay(&s2c, conv, run, "kcp_stream_server_to_client_hex");
        runs++;
    }
    CHECK_EQ(runs, 3);
    CHECK(packets > 40);
    cJSON_Delete(root);
}

/* ---- engine behaviour (kcp-go rules) ---- */

struct duo {
    struct capture *ca, *cb;
    struct kcp *a, *b;
};

static bool duo_init(struct duo *d)
{
    d->ca = cap_new();
    d->cb = cap_new();
    d->a = kcp_new(7, cap_output, d->ca);
    d->b = kcp_new(7, cap_output, d->cb);
    if (!d->ca || !d->cb || !d->a || !d->b)
        return false;
    kcp_set_nodelay(d->a, 0, 40, 2, 1); /* kcptun modes all disable congestion control */
    kcp_set_nodelay(d->b, 0, 40, 2, 1);
    return true;
}

static void duo_free(struct duo *d)
{
    kcp_free(d->a);
    kcp_free(d->b);
    free(d->ca);
    free(d->cb);
}

/* Delivers every packet |from| captured since |*seen| to |to|. */
static void pass(struct capture *from, size_t *seen, struct kcp *to, uint64_t now_ms)
{
    for (; *seen < from->n && *seen < CAP_MAX; (*seen)++)
        kcp_input(to, from->pkt[*seen], from->len[*seen], true, now_ms);
}

TEST(kcp_fresh_engine_is_idle)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    CHECK_EQ(kcp_next_deadline(k, 0), UINT64_MAX);
    kcp_tick(k, 1000);
    CHECK_EQ(c->n, 0);
    CHECK_EQ(kcp_next_deadline(k, 1000), UINT64_MAX);
    CHECK_EQ(kcp_conv(k), 1);
    CHECK_EQ(kcp_mss(k), KCP_MTU_DEFAULT - KCP_OVERHEAD);
    CHECK_EQ(kcp_set_mtu(k, 1322), 0);
    CHECK_EQ(kcp_mss(k), 1298);
    CHECK_EQ(kcp_set_mtu(k, 10), ERR_INVAL);
    CHECK_EQ(kcp_set_mtu(k, 1501), ERR_INVAL);
    CHECK_EQ(kcp_send(k, (const uint8_t *)"", 0), ERR_INVAL);
    uint8_t b[4];
    CHECK_EQ(kcp_recv(k, b, sizeof(b)), ERR_AGAIN);
    kcp_free(k);
    kcp_free(NULL);
    free(c);
}

TEST(kcp_rto_backoff_normal_and_nodelay)
{
    /* nodelay 0: RTO 200 (initial), each timeout adds rx_rto: resend at 200, 600, 1200.
     * nodelay 1: adds rx_rto / 2: resend at 200, 500, 900. */
    static const uint64_t want[2][4] = {{0, 200, 600, 1200}, {0, 200, 500, 900}};
    for (int nd = 0; nd < 2; nd++) {
        struct capture *c = cap_new();
        struct kcp *k = kcp_new(1, cap_output, c);
        REQUIRE(k && c);
        kcp_set_nodelay(k, nd, 100, 0, 1);
        kcp_send(k, (const uint8_t *)"x", 1);
        kcp_flush(k, 0);
        CHECK_EQ(c->n, 1);
        for (int i = 1; i < 4; i++) {
            uint64_t d = kcp_next_deadline(k, want[nd][i - 1]);
            CHECK_EQ(d, want[nd][i]);
            kcp_tick(k, d - 1);
            CHECK_EQ(c->n, (size_t)i);
            kcp_tick(k, d);
            CHECK_EQ(c->n, (size_t)i + 1);
        }
        struct kcp_stats st;
        kcp_get_stats(k, &st);
        CHECK_EQ(st.lost_segs, 3);
        CHECK_EQ(st.retrans_segs, 3);
        CHECK(!kcp_is_dead(k));
        kcp_free(k);
        free(c);
    }
}

TEST(kcp_dead_link_after_20_transmissions)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 0, 1);
    kcp_send(k, (const uint8_t *)"x", 1);
    uint64_t now = 0;
    kcp_flush(k, now);
    for (int i = 0; i < 18; i++) {
        now = kcp_next_deadline(k, now);
        kcp_tick(k, now);
    }
    CHECK_EQ(c->n, 19);
    CHECK(!kcp_is_dead(k));
    now = kcp_next_deadline(k, now);
    kcp_tick(k, now);
    CHECK_EQ(c->n, 20);
    CHECK(kcp_is_dead(k));
    /* The RTO is capped at 60 s plus back-off; it keeps trying. */
    CHECK(kcp_next_deadline(k, now) != UINT64_MAX);
    kcp_free(k);
    free(c);
}

TEST(kcp_rtt_estimator_matches_kcp_go)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 0, 20, 0, 1);
    kcp_send(k, (const uint8_t *)"abc", 3);
    kcp_flush(k, 1000); /* ts 1000 */
    uint8_t pkt[64];
    size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 1000, 0, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1100), 0);
    /* First sample 100: srtt 100, rttvar 50, rto = 100 + max(20, 200) = 300. */
    CHECK_EQ(kcp_srtt(k), 100);
    CHECK_EQ(kcp_rto(k), 300);
    /* Second sample 60 (below srtt - rttvar = 45? no: 95 - 50 = 45 < 60): rttvar += (40-50)>>2.
     * srtt = 100 + (-40 >> 3) = 95; rttvar = 50 + ((40 - 50) >> 2) = 47; rto = 95 + 188. */
    kcp_send(k, (const uint8_t *)"d", 1);
    kcp_flush(k, 2000);
    n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 2000, 1, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 2060), 0);
    CHECK_EQ(kcp_srtt(k), 95);
    CHECK_EQ(kcp_rto(k), 95 + 188);
    /* A FEC-recovered (irregular) ACK gives no sample and no window update. */
    kcp_send(k, (const uint8_t *)"e", 1);
    kcp_flush(k, 3000);
    n = make_seg(pkt, 1, KCP_CMD_ACK, 0, 3000, 2, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, false, 3500), 0);
    CHECK_EQ(kcp_srtt(k), 95);
    CHECK(kcp_send_room(k) > 0); /* rmt_wnd still 32, not 0 */
    kcp_free(k);
    free(c);
}

TEST(kcp_fast_retransmit_per_ack_with_ts_check)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_mtu(k, 100);
    uint8_t data[76 * 4];
    memset(data, 'q', sizeof(data));
    kcp_set_stream(k, true);
    kcp_send(k, data, sizeof(data)); /* 4 segments, sn 0..3, all ts 100 */
    kcp_flush(k, 100);
    CHECK_EQ(c->n, 4);
    /* ACK sn 1 (ts 100) and sn 2 in one packet: sn 0 gets fastack 2 = resend -> fast. */
    uint8_t pkt[128];
    size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 100, 1, 0, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 32, 100, 2, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 150), 0);
    CHECK_EQ(c->n, 4);       /* una did not move: no immediate flush */
    CHECK(kcp_next_deadline(k, 150) <= 160); /* fastack pending: next interval tick */
    kcp_tick(k, 160);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 1);
    CHECK_EQ(c->n, 5);
    struct kcp_seg_hdr h[4];
    CHECK_EQ(cap_segments(c, 4, h, 4), 1);
    CHECK_EQ(h[0].sn, 0);
    CHECK_EQ(h[0].ts, 160);
    /* An ACK for sn 3 echoing ts 100 is older than sn 0's new transmission (ts 160): no
     * fastack for sn 0 (the ts check), so no early retransmit either. */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 100, 3, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 170), 0);
    kcp_tick(k, 180);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.early_retrans_segs, 0);
    CHECK_EQ(c->n, 5);
    /* una 4 frees everything: the engine goes idle. */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 160, 0, 4, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 200), 0);
    CHECK_EQ(kcp_wait_snd(k), 0);
    kcp_tick(k, 210);
    CHECK_EQ(kcp_next_deadline(k, 220), UINT64_MAX);
    kcp_free(k);
    free(c);
}

TEST(kcp_early_retransmit_without_new_data)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 0, 40, 0, 1); /* fast retransmit off */
    kcp_set_mtu(k, 100);
    kcp_set_stream(k, true);
    uint8_t data[76 * 2];
    memset(data, 'e', sizeof(data));
    kcp_send(k, data, sizeof(data));
    kcp_flush(k, 0);
    uint8_t pkt[64];
    size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 0, 1, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 30), 0);
    kcp_tick(k, kcp_next_deadline(k, 30));
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.early_retrans_segs, 1);
    CHECK_EQ(st.fast_retrans_segs, 0);
    CHECK_EQ(c->n, 3); /* two full-size packets, then sn 0 again */
    struct kcp_seg_hdr h[2];
    CHECK_EQ(cap_segments(c, 2, h, 2), 1);
    CHECK_EQ(h[0].sn, 0);
    kcp_free(k);
    free(c);
}

TEST(kcp_stream_mode_appends_and_partial_reads)
{
    struct duo d;
    REQUIRE(duo_init(&d));
    kcp_set_stream(d.a, true);
    kcp_set_stream(d.b, true);
    kcp_send(d.a, (const uint8_t *)"hello ", 6);
    kcp_send(d.a, (const uint8_t *)"world", 5);
    CHECK_EQ(kcp_wait_snd(d.a), 1); /* appended to the unsent segment */
    kcp_flush(d.a, 0);
    CHECK_EQ(d.ca->n, 1);
    struct kcp_seg_hdr h[2];
    CHECK_EQ(cap_segments(d.ca, 0, h, 2), 1);
    CHECK_EQ(h[0].len, 11);
    CHECK_EQ(h[0].frg, 0);
    size_t seen = 0;
    pass(d.ca, &seen, d.b, 10);
    CHECK_EQ(kcp_recv_avail(d.b), 11);
    uint8_t buf[16];
    CHECK_EQ(kcp_recv(d.b, buf, 4), 4);
    CHECK_MEM(buf, "hell", 4);
    CHECK_EQ(kcp_recv(d.b, buf, sizeof(buf)), 7);
    CHECK_MEM(buf, "o world", 7);
    CHECK_EQ(kcp_recv(d.b, buf, sizeof(buf)), ERR_AGAIN);
    duo_free(&d);
}

TEST(kcp_message_mode_fragments)
{
    struct duo d;
    REQUIRE(duo_init(&d));
    kcp_set_mtu(d.a, 124); /* mss 100 */
    uint8_t msg[250], out[300];
    for (int i = 0; i < 250; i++)
        msg[i] = (uint8_t)i;
    CHECK_EQ(kcp_send(d.a, msg, sizeof(msg)), 0);
    CHECK_EQ(kcp_send(d.a, msg, 10), 0);
    CHECK_EQ(kcp_wait_snd(d.a), 4);
    kcp_flush(d.a, 0);
    uint8_t frgs[4];
    size_t k = 0;
    for (size_t i = 0; i < d.ca->n; i++) {
        struct kcp_seg_hdr h[4];
        size_t n = cap_segments(d.ca, i, h, 4);
        for (size_t j = 0; j < n && k < 4; j++)
            frgs[k++] = h[j].frg;
    }
    CHECK_EQ(k, 4);
    CHECK_EQ(frgs[0], 2);
    CHECK_EQ(frgs[1], 1);
    CHECK_EQ(frgs[2], 0);
    CHECK_EQ(frgs[3], 0);
    size_t seen = 0;
    pass(d.ca, &seen, d.b, 5);
    CHECK_EQ(kcp_recv_avail(d.b), 250);
    CHECK_EQ(kcp_recv(d.b, out, 249), ERR_TOOBIG);
    CHECK_EQ(kcp_recv(d.b, out, sizeof(out)), 250);
    CHECK_MEM(out, msg, 250);
    CHECK_EQ(kcp_recv(d.b, out, sizeof(out)), 10);
    CHECK_EQ(kcp_recv(d.b, out, sizeof(out)), ERR_AGAIN);
    /* More than 255 fragments is refused in message mode only. */
    uint8_t *big = calloc(1, 100 * 256);
    REQUIRE(big);
    CHECK_EQ(kcp_send(d.a, big, 100 * 256), ERR_TOOBIG);
    kcp_set_stream(d.a, true);
    CHECK_EQ(kcp_send(d.a, big, 100 * 256), 0);
    free(big);
    duo_free(&d);
}

TEST(kcp_ack_packing_and_mtu)
{
    /* sn 1..60 arrive (sn 0 missing): 60 ACKs of 24 bytes are packed into packets of at
     * most mtu bytes, with mtu 500 that is 20 per packet. */
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(3, cap_output, c);
    REQUIRE(k && c);
    kcp_set_mtu(k, 500);
    kcp_set_window(k, 32, 128);
    uint8_t pkt[64];
    for (uint32_t sn = 1; sn <= 60; sn++) {
        size_t n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 7, sn, 0, (const uint8_t *)"z", 1);
        CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0);
    }
    kcp_flush(k, 2);
    CHECK_EQ(c->n, 3);
    for (size_t i = 0; i < c->n; i++)
        CHECK_EQ(c->len[i], 480);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_ACK), 60);
    /* Once sn 0 fills the hole, kcp-go's filter drops ACKs that una covers, except the last:
     * sn 0 then duplicates of 5 and 6 give a single ACK (for 6). */
    c->n = 0;
    size_t n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 7, 0, 0, (const uint8_t *)"z", 1);
    kcp_input(k, pkt, n, true, 3);
    n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 7, 5, 0, (const uint8_t *)"z", 1);
    kcp_input(k, pkt, n, true, 3);
    n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 8, 6, 0, (const uint8_t *)"z", 1);
    kcp_input(k, pkt, n, true, 3);
    kcp_flush(k, 4);
    CHECK_EQ(c->n, 1);
    struct kcp_seg_hdr h[4];
    CHECK_EQ(cap_segments(c, 0, h, 4), 1);
    CHECK_EQ(h[0].sn, 6);
    CHECK_EQ(h[0].ts, 8);
    CHECK_EQ(h[0].una, 61);
    CHECK_EQ(h[0].wnd, 128 - 61);
    kcp_free(k);
    free(c);
}

TEST(kcp_ack_nodelay_acks_at_once)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(3, cap_output, c);
    REQUIRE(k && c);
    uint8_t pkt[64];
    size_t n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 7, 0, 0, (const uint8_t *)"z", 1);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0);
    CHECK_EQ(c->n, 0); /* ACK waits for the interval tick */
    CHECK(kcp_next_deadline(k, 1) <= 100);
    kcp_set_ack_nodelay(k, true);
    n = make_seg(pkt, 3, KCP_CMD_PUSH, 32, 8, 1, 0, (const uint8_t *)"y", 1);
    CHECK_EQ(kcp_input(k, pkt, n, true, 2), 0);
    CHECK_EQ(c->n, 1);
    struct kcp_seg_hdr h[4];
    CHECK_EQ(cap_segments(c, 0, h, 4), 1); /* ACK 0 filtered (below rcv_nxt), ACK 1 kept */
    CHECK_EQ(h[0].cmd, KCP_CMD_ACK);
    CHECK_EQ(h[0].sn, 1);
    CHECK_EQ(h[0].ts, 8);
    CHECK_EQ(h[0].una, 2);
    CHECK_EQ(h[0].wnd, 30);
    kcp_free(k);
    free(c);
}

TEST(kcp_zero_window_probe_and_wins)
{
    struct duo d;
    REQUIRE(duo_init(&d));
    kcp_set_stream(d.a, true);
    kcp_set_stream(d.b, true);
    kcp_set_window(d.b, 32, 4); /* receiver queue holds 4 segments */
    kcp_set_mtu(d.a, 124);
    uint8_t data[100 * 10];
    memset(data, 'w', sizeof(data));
    kcp_send(d.a, data, sizeof(data));
    size_t sa = 0, sb = 0;
    uint64_t now = 0;
    for (int i = 0; i < 20; i++, now += 100) {
        kcp_tick(d.a, now);
        pass(d.ca, &sa, d.b, now);
        kcp_tick(d.b, now);
        pass(d.cb, &sb, d.a, now);
    }
    CHECK_EQ(kcp_rcv_queue_count(d.b), 4);
    CHECK_EQ(kcp_send_room(d.a), 0);
    /* a knows b's window is 0: first WASK 7 s after it noticed, then x1.5. */
    size_t before = cap_count_cmd(d.ca, KCP_CMD_WASK);
    CHECK_EQ(before, 0);
    uint64_t t1 = kcp_next_deadline(d.a, now);
    CHECK(t1 != UINT64_MAX);
    uint64_t wask_at[2] = {0, 0};
    int found = 0;
    for (; now < 40000 && found < 2; now += 10) {
        if (kcp_next_deadline(d.a, now) <= now)
            kcp_tick(d.a, now);
        if ((int)cap_count_cmd(d.ca, KCP_CMD_WASK) > found)
            wask_at[found++] = now;
    }
    CHECK_EQ(found, 2);
    CHECK(wask_at[1] - wask_at[0] >= 10490 && wask_at[1] - wask_at[0] <= 10510);
    /* b reads: its queue drops below the window, it tells a with WINS. (The first read
     * refills the queue from rcv_buf, which holds the next 4 segments.) */
    uint8_t buf[2000];
    CHECK_EQ(cap_count_cmd(d.cb, KCP_CMD_WINS), 0);
    CHECK_EQ(kcp_recv(d.b, buf, sizeof(buf)), 400);
    CHECK_EQ(kcp_rcv_queue_count(d.b), 4);
    CHECK_EQ(kcp_recv(d.b, buf, sizeof(buf)), 400);
    CHECK_EQ(kcp_rcv_queue_count(d.b), 0);
    kcp_tick(d.b, now + 1000);
    CHECK(cap_count_cmd(d.cb, KCP_CMD_WINS) >= 1);
    pass(d.cb, &sb, d.a, now + 1000);
    CHECK(kcp_send_room(d.a) > 0 || kcp_wait_snd(d.a) >= 4);
    /* Everything eventually arrives. */
    size_t got = 0;
    for (int i = 0; i < 200 && got < sizeof(data); i++, now += 50) {
        kcp_tick(d.a, now);
        pass(d.ca, &sa, d.b, now);
        kcp_tick(d.b, now);
        pass(d.cb, &sb, d.a, now);
        ssize_t r;
        while ((r = kcp_recv(d.b, buf, sizeof(buf))) > 0)
            got += (size_t)r;
        if (d.ca->n >= CAP_MAX - 8 || d.cb->n >= CAP_MAX - 8)
            break;
    }
    CHECK_EQ(800 + got, sizeof(data));
    duo_free(&d);
}

TEST(kcp_rcv_buf_bounded_by_window)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(9, cap_output, c);
    REQUIRE(k && c);
    kcp_set_window(k, 32, 64);
    uint8_t pkt[64];
    /* sn 0 missing; sn 1..199 arrive: only sn < 64 may be stored. */
    for (uint32_t sn = 1; sn < 200; sn++) {
        size_t n = make_seg(pkt, 9, KCP_CMD_PUSH, 32, 1, sn, 0, (const uint8_t *)"a", 1);
        kcp_input(k, pkt, n, true, 1);
    }
    CHECK_EQ(kcp_rcv_buf_count(k), 63);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.drop[KCP_DROP_WINDOW], 199 - 63);
    CHECK_EQ(st.in_errors, 0);
    size_t n = make_seg(pkt, 9, KCP_CMD_PUSH, 32, 1, 0, 0, (const uint8_t *)"a", 1);
    kcp_input(k, pkt, n, true, 2);
    CHECK_EQ(kcp_rcv_buf_count(k), 0);
    CHECK_EQ(kcp_rcv_queue_count(k), 64);
    /* Duplicates are harmless: counted as repeats. */
    kcp_input(k, pkt, n, true, 3);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.repeat_segs, 199 - 63 + 1);
    CHECK_EQ(kcp_recv_avail(k), 1); /* message mode: the next message is 1 byte */
    kcp_set_stream(k, true);
    CHECK_EQ(kcp_recv_avail(k), 64);
    kcp_free(k);
    free(c);
}

TEST(kcp_congestion_window_slow_start)
{
    /* With congestion control on (nc 0), the first flush sends a single segment. */
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 0, 10, 0, 0);
    kcp_set_mtu(k, 100);
    kcp_set_stream(k, true);
    uint8_t data[76 * 8];
    memset(data, 'c', sizeof(data));
    kcp_send(k, data, sizeof(data));
    /* kcp-go starts with cwnd 0: the first flush only raises it to 1. */
    CHECK_EQ(kcp_next_deadline(k, 0), 0);
    kcp_flush(k, 0);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_PUSH), 0);
    CHECK(kcp_next_deadline(k, 0) != UINT64_MAX);
    kcp_flush(k, 0);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_PUSH), 1);
    /* Acking it (una 1) grows cwnd to 2: the immediate flush sends two more. */
    uint8_t pkt[64];
    size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 32, 0, 0, 1, NULL, 0);
    kcp_input(k, pkt, n, true, 20);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_PUSH), 3);
    /* With nc 1 everything up to the window goes at once. */
    kcp_set_nodelay(k, -1, -1, -1, 1);
    kcp_flush(k, 30);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_PUSH), 8);
    kcp_free(k);
    free(c);
}

/* ---- bad input ---- */

TEST(kcp_bad_input_dropped_and_counted)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(5, cap_output, c);
    REQUIRE(k && c);
    kcp_set_stream(k, true);
    uint8_t pkt[256];
    struct kcp_stats st;

    CHECK_EQ(kcp_input(k, pkt, 0, true, 1), ERR_PROTO);
    CHECK_EQ(kcp_input(k, (const uint8_t *)"short", 5, true, 1), ERR_PROTO);
    size_t n = make_seg(pkt, 6, KCP_CMD_PUSH, 32, 1, 0, 0, (const uint8_t *)"x", 1);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), ERR_PROTO); /* wrong conv */
    n = make_seg(pkt, 5, 99, 32, 1, 0, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), ERR_PROTO); /* unknown cmd */
    n = make_seg(pkt, 5, KCP_CMD_PUSH, 32, 1, 0, 0, (const uint8_t *)"x", 1);
    put_u32le(pkt + 20, 0xffffffffu);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), ERR_PROTO); /* absurd len */
    put_u32le(pkt + 20, 2);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), ERR_PROTO); /* len one past the end */
    n = make_seg(pkt, 5, KCP_CMD_ACK, 32, 1, 0, 77, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0); /* una beyond anything sent: field ignored */
    n = make_seg(pkt, 5, KCP_CMD_ACK, 32, 1, 12345, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0); /* ACK for an unsent sn: ignored */
    n = make_seg(pkt, 5, KCP_CMD_PUSH, 32, 1, 0x80000000u, 0, (const uint8_t *)"x", 1);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0); /* sn far outside the window */
    n = make_seg(pkt, 5, KCP_CMD_PUSH, 32, 1, 0xfffffff0u, 0, (const uint8_t *)"x", 1);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1), 0); /* sn behind rcv_nxt: re-acked, not stored */
    kcp_get_stats(k, &st);
    CHECK_EQ(st.drop[KCP_DROP_SHORT], 2);
    CHECK_EQ(st.drop[KCP_DROP_CONV], 1);
    CHECK_EQ(st.drop[KCP_DROP_CMD], 1);
    CHECK_EQ(st.drop[KCP_DROP_LEN], 2);
    CHECK_EQ(st.drop[KCP_DROP_UNA], 1);
    CHECK_EQ(st.drop[KCP_DROP_ACK], 2);
    CHECK_EQ(st.drop[KCP_DROP_WINDOW], 1);
    CHECK_EQ(st.in_errors, 6);
    CHECK_EQ(kcp_rcv_buf_count(k), 0);
    CHECK_EQ(kcp_recv_avail(k), 0);

    /* A good segment followed by garbage: the good one is processed (kcp-go order). */
    n = make_seg(pkt, 5, KCP_CMD_PUSH, 32, 1, 0, 0, (const uint8_t *)"ok", 2);
    n += make_seg(pkt + n, 5, 0, 32, 1, 1, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 2), ERR_PROTO);
    uint8_t buf[8];
    CHECK_EQ(kcp_recv(k, buf, sizeof(buf)), 2);
    CHECK_MEM(buf, "ok", 2);
    /* Trailing bytes shorter than a header are ignored like kcp-go, but counted. */
    n = make_seg(pkt, 5, KCP_CMD_PUSH, 32, 1, 1, 0, (const uint8_t *)"go", 2);
    CHECK_EQ(kcp_input(k, pkt, n + 5, true, 3), 0);
    CHECK_EQ(kcp_recv(k, buf, sizeof(buf)), 2);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.drop[KCP_DROP_SHORT], 3);
    kcp_free(k);
    free(c);
}

TEST(kcp_random_garbage_never_crashes)
{
    /* Pure random packets (half with the right conv and a plausible cmd) against an engine
     * with data in flight: only counters change, the queue stays intact. */
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(0xabcd, cap_output, c);
    REQUIRE(k && c);
    kcp_set_stream(k, true);
    kcp_set_window(k, 64, 64);
    uint8_t data[5000];
    memset(data, 's', sizeof(data));
    kcp_send(k, data, sizeof(data));
    kcp_flush(k, 0);
    uint64_t x = 0x1234567;
    uint8_t pkt[1600];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % sizeof(pkt));
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pkt[j] = (uint8_t)x;
        }
        if (len >= KCP_OVERHEAD && (x & 1)) {
            put_u32le(pkt, 0xabcd);
            pkt[4] = (uint8_t)(KCP_CMD_PUSH + (x >> 8) % 4);
            put_u32le(pkt + 16, 0); /* una 0: nothing acknowledged */
        }
        kcp_input(k, pkt, len, (x >> 16) & 1, (uint64_t)i);
        if (i % 100 == 0)
            kcp_tick(k, (uint64_t)i);
        c->n = 0; /* keep capturing into the first slots */
    }
    CHECK_EQ(kcp_wait_snd(k), (5000 + kcp_mss(k) - 1) / kcp_mss(k));
    CHECK(kcp_rcv_buf_count(k) <= 64);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK(st.in_errors > 0);
    kcp_free(k);
    free(c);
}

/* ---- ktun extensions: FEC hold and ACK repeat ---- */

/* Output that also plays the FEC layer: every |per_group| packets form one group. */
struct grouped {
    struct capture *c;
    struct kcp *k;
    uint32_t per_group, fill, group;
};

static void grouped_output(void *user, const uint8_t *pkt, size_t len)
{
    struct grouped *g = user;
    cap_output(g->c, pkt, len);
    if (++g->fill == g->per_group) {
        g->fill = 0;
        kcp_set_fec_group(g->k, ++g->group);
    }
}

TEST(kcp_fec_hold_waits_for_a_later_group)
{
    struct grouped g = {.c = cap_new(), .per_group = 4};
    REQUIRE(g.c);
    struct kcp *k = g.k = kcp_new(1, grouped_output, &g);
    REQUIRE(k);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_mtu(k, 100);
    kcp_set_stream(k, true);
    kcp_set_window(k, 64, 64);
    kcp_set_fec_hold(k, 2); /* 16-20 in flight, srtt 50: groups fill within an interval */
    uint8_t data[76 * 20];
    memset(data, 'h', sizeof(data));
    kcp_send(k, data, sizeof(data)); /* sn 0..19, groups of 4 packets: sn 0-3 in group 0 */
    kcp_flush(k, 100);
    CHECK_EQ(g.c->n, 20);
    /* ACKs of sn 1..3 (same group as the lost sn 0): fastack 3, but the peer may still
     * rebuild sn 0 from group 0's parity, so nothing goes out. */
    uint8_t pkt[256];
    size_t n = 0;
    for (uint32_t sn = 1; sn <= 3; sn++)
        n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, sn, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 150), 0);
    kcp_tick(k, 160);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 0);
    CHECK_EQ(g.c->n, 20);
    /* An ACK from group 1 (sn 5): the gate opens an interval later, not at once. */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 64, 100, 5, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 170), 0);
    kcp_tick(k, 170);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 0);
    kcp_tick(k, 180);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 1); /* sn 0 (sn 4 has fastack 1 only) */
    CHECK_EQ(g.c->n, 21);
    struct kcp_seg_hdr h[4];
    CHECK_EQ(cap_segments(g.c, 20, h, 4), 1);
    CHECK_EQ(h[0].sn, 0);
    /* sn 0 went out again in group 5. An ACK echoing its first transmission (ts 100) says
     * nothing about group 5. ACKs of sn 9 and 10 (group 2) free group 1's segments (sn 4, 6,
     * 7) but not sn 8, itself in group 2. */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 64, 100, 0, 0, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, 9, 0, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, 10, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 185), 0);
    for (uint64_t t = 190; t <= 210; t += 10)
        kcp_tick(k, t);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 4);
    bool sent8 = false;
    for (size_t i = 21; i < g.c->n; i++)
        sent8 |= cap_segments(g.c, i, h, 4) == 1 && h[0].sn == 8;
    CHECK(!sent8);
    /* an ACK of a group-3 segment opens the gate for sn 8 */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 64, 100, 12, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 215), 0);
    kcp_tick(k, 220);
    kcp_tick(k, 230);
    for (size_t i = 21; i < g.c->n; i++)
        sent8 |= cap_segments(g.c, i, h, 4) == 1 && h[0].sn == 8;
    CHECK(sent8);
    kcp_free(k);
    free(g.c);
}

TEST(kcp_fec_hold_spares_thin_flows_and_counts_rebuilt_segments)
{
    struct grouped g = {.c = cap_new(), .per_group = 4};
    REQUIRE(g.c);
    struct kcp *k = g.k = kcp_new(1, grouped_output, &g);
    REQUIRE(k);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_mtu(k, 100);
    kcp_set_stream(k, true);
    kcp_set_fec_hold(k, 4);
    uint8_t data[76 * 8];
    memset(data, 't', sizeof(data));
    kcp_send(k, data, sizeof(data)); /* sn 0..7: groups 0 and 1 */
    kcp_flush(k, 100);
    /* sn 0 is rebuilt by the peer: its ACK arrives with the others, nothing is resent */
    uint8_t pkt[256];
    size_t n = 0;
    for (uint32_t sn = 1; sn <= 3; sn++)
        n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, sn, 0, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, 0, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 150), 0);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fec_hold_acked_segs, 1);
    /* 4 segments left in flight = hold_min: a thin flow, fast retransmit as kcp-go */
    n = make_seg(pkt, 1, KCP_CMD_ACK, 64, 100, 5, 4, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 64, 100, 6, 4, NULL, 0);
    size_t before = g.c->n;
    CHECK_EQ(kcp_input(k, pkt, n, true, 160), 0);
    kcp_tick(k, 170);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.fast_retrans_segs, 1);
    CHECK(g.c->n > before);
    kcp_free(k);
    free(g.c);
}

/* Receiver side: ACKs of segments above rcv_nxt are repeated once, in front of new ACKs. */
TEST(kcp_ack_repeat_repeats_open_acks_once)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_ack_repeat(k, true);
    uint8_t pkt[256], d[8] = "payload";
    size_t n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 90, 1, 0, d, 8);
    n += make_seg(pkt + n, 1, KCP_CMD_PUSH, 64, 91, 2, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 100), 0); /* sn 0 missing */
    kcp_flush(k, 110);
    struct kcp_seg_hdr h[8];
    CHECK_EQ(c->n, 1);
    CHECK_EQ(cap_segments(c, 0, h, 8), 2);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 92, 3, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 115), 0);
    kcp_flush(k, 120);
    CHECK_EQ(c->n, 2);
    REQUIRE(cap_segments(c, 1, h, 8) == 3);
    CHECK_EQ(h[0].sn, 1); /* repeats first: the peer samples RTT from the last ACK */
    CHECK_EQ(h[1].sn, 2);
    CHECK_EQ(h[2].sn, 3);
    CHECK_EQ(h[2].ts, 92);
    kcp_flush(k, 125); /* no new ACKs: no repeats either */
    CHECK_EQ(c->n, 2);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 93, 4, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 128), 0);
    kcp_flush(k, 130);
    REQUIRE(cap_segments(c, 2, h, 8) == 2); /* sn 3 once more, then sn 4; not sn 1, 2 */
    CHECK_EQ(h[0].sn, 3);
    CHECK_EQ(h[1].sn, 4);
    /* sn 0 fills the hole: una covers everything, nothing is repeated */
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 94, 0, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 135), 0);
    kcp_flush(k, 140);
    REQUIRE(cap_segments(c, 3, h, 8) == 1);
    CHECK_EQ(h[0].sn, 0);
    CHECK_EQ(h[0].una, 5);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.ack_repeats, 3);
    kcp_free(k);
    free(c);
}

/* Pacing holds ACK-only packets for the tick, but a quarter of the receive window of pending
 * ACKs goes out at once (otherwise a fast path carries one window per interval at most). */
TEST(kcp_pacing_flushes_acks_at_a_quarter_window)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_window(k, 32, 256); /* a quarter: 64 ACKs */
    kcp_set_pacing(k, true, 0);
    uint8_t pkt[64], d[8] = "payload";
    for (uint32_t sn = 0; sn < 63; sn++) {
        size_t n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100 + sn, sn, 0, d, 8);
        CHECK_EQ(kcp_input(k, pkt, n, true, 200), 0);
    }
    CHECK_EQ(c->n, 0); /* held for the interval tick */
    size_t n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 163, 63, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 200), 0);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 164, 64, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 200), 0);
    REQUIRE(c->n == 1); /* the 65th ACK found 64 pending: they left */
    struct kcp_seg_hdr h[64];
    CHECK_EQ(cap_segments(c, 0, h, 64), 1); /* in order: una 64 covers all but the last */
    CHECK_EQ(h[0].cmd, KCP_CMD_ACK);
    CHECK_EQ(h[0].sn, 63);
    CHECK_EQ(h[0].una, 64);
    kcp_free(k);
    free(c);
}

/* ---- pacing: recovery for application-limited flows ---- */

/* Drives a paced engine with |count| one-segment messages, one at a time, starting with sn
 * |*sn| at |t|: each is acknowledged |rtt| ms after it left, except every |late_every|-th
 * (0: none), whose first copy is lost: its retransmission timeout resends it and the resend
 * is acknowledged. Returns the time after the last ACK. */
static uint64_t paced_messages(struct kcp *k, uint32_t *sn, uint64_t t, int count, uint64_t rtt,
                               int late_every)
{
    uint8_t pkt[64], d[16];
    memset(d, 'm', sizeof(d));
    for (int i = 0; i < count; i++, (*sn)++) {
        CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
        kcp_flush(k, t);
        uint64_t sent = t;
        if (late_every && i % late_every == late_every - 1) {
            sent = kcp_next_deadline(k, t);
            CHECK(sent != UINT64_MAX && sent > t);
            kcp_tick(k, sent);
        }
        t = sent + rtt;
        size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 256, (uint32_t)sent, *sn, *sn + 1, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, n, true, t), 0);
        t += 7; /* the next message comes a little later */
    }
    return t;
}

static struct kcp *paced_engine(struct capture *c)
{
    struct kcp *k = kcp_new(1, cap_output, c);
    if (!k)
        return NULL;
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_stream(k, true);
    kcp_set_pacing(k, true, 0);
    return k;
}

/* On a path that loses nothing, an application-limited flow sends each segment once. */
TEST(kcp_pacing_no_copies_on_a_clean_path)
{
    struct capture *c = cap_new();
    REQUIRE(c);
    struct kcp *k = paced_engine(c);
    REQUIRE(k);
    uint32_t sn = 0;
    paced_messages(k, &sn, 100, 100, 40, 0);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.redundant_segs, 0);
    CHECK_EQ(st.retrans_segs, 0);
    CHECK_EQ(cap_count_cmd(c, KCP_CMD_PUSH), 100);
    kcp_free(k);
    free(c);
}

/* Once segments have been late (lost and resent), the next application-limited segment goes
 * out with copies, each in a packet of its own, as many as the measured loss rate calls for;
 * a flush that leaves data queued (a bulk flow) sends none. */
TEST(kcp_pacing_copies_follow_the_measured_loss)
{
    struct capture *c = cap_new();
    REQUIRE(c);
    struct kcp *k = paced_engine(c);
    REQUIRE(k);
    uint32_t sn = 0;
    uint64_t t = paced_messages(k, &sn, 100, 10, 40, 0); /* an RTT estimate first */
    t = paced_messages(k, &sn, t, 40, 40, 4);             /* 1 in 4 late: p about 0.25 */
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    uint64_t copies = st.redundant_segs;
    CHECK(copies > 0); /* the estimate rose while the late ones came in */
    size_t before = c->n;
    uint8_t d[16] = "message";
    CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
    kcp_flush(k, t);
    kcp_get_stats(k, &st);
    /* p 0.25: p^2 and p^3 both above the residual target, two copies (the most) */
    CHECK_EQ(st.redundant_segs - copies, 2);
    REQUIRE(c->n == before + 3);
    for (size_t i = before; i < c->n; i++) {
        struct kcp_seg_hdr h[4];
        REQUIRE(cap_segments(c, i, h, 4) == 1);
        CHECK_EQ(h[0].cmd, KCP_CMD_PUSH);
        CHECK_EQ(h[0].sn, sn);
        CHECK_EQ(h[0].len, 16);
    }
    kcp_free(k);
    free(c);
}

/* A hole revealed by an ACK is resent as that ACK arrives (no interval tick), unless the path
 * has shown reordering: then it waits a quarter of min RTT beyond the latest RTT (RACK). */
TEST(kcp_pacing_time_based_loss_detection)
{
    struct capture *c = cap_new();
    REQUIRE(c);
    struct kcp *k = paced_engine(c);
    REQUIRE(k);
    kcp_set_mtu(k, 100);
    uint8_t d[76 * 3], pkt[128];
    memset(d, 'r', sizeof(d));
    /* sn 0..2 at t 1000; sn 2 acknowledged at 1040 (RTT 40): sn 0 and 1 resent at once */
    CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
    kcp_flush(k, 1000);
    size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 1000, 2, 0, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1040), 0);
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    CHECK_EQ(st.early_retrans_segs, 2);
    n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 1040, 0, 3, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 1080), 0);
    /* sn 3..5 at 2000; at 2046 the ACKs of sn 5 and then sn 4 (overtaken: it took 46 ms
     * where the latest RTT was 40, a reordering window of 6 ms) */
    CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
    kcp_flush(k, 2000);
    n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 2000, 5, 3, NULL, 0);
    n += make_seg(pkt + n, 1, KCP_CMD_ACK, 256, 2000, 4, 3, NULL, 0);
    CHECK_EQ(kcp_input(k, pkt, n, true, 2046), 0);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.retrans_segs, 2); /* sn 3 may only be late: wait the RTT (46) + 6 ms */
    kcp_tick(k, 2046); /* the interval tick: next one at 2056 */
    CHECK_EQ(kcp_next_deadline(k, 2046), 2052); /* the engine wakes up for sn 3 before it */
    kcp_tick(k, 2051);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.retrans_segs, 2);
    kcp_tick(k, 2052);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.retrans_segs, 3);
    CHECK_EQ(st.fast_retrans_segs, 1); /* two later ACKs: the fast path, held as well */
    CHECK_EQ(st.lost_segs, 0);
    kcp_free(k);
    free(c);
}

/* A segment acknowledged after later ones a min RTT or more after its FEC group closed with
 * parity may have been rebuilt by the peer: that is no reordering, and the next hole is
 * resent as soon as the RTT says so (no window). The same ACK pattern before the group closed
 * is reordering. */
TEST(kcp_pacing_fec_repair_is_not_reordering)
{
    for (int closed = 0; closed <= 1; closed++) {
        struct capture *c = cap_new();
        REQUIRE(c);
        struct kcp *k = paced_engine(c);
        REQUIRE(k);
        kcp_set_mtu(k, 100);
        uint8_t d[76 * 3], pkt[128];
        memset(d, 'r', sizeof(d));
        /* an RTT sample of 40 ms */
        CHECK_EQ(kcp_send(k, d, 76), 0);
        kcp_flush(k, 1000);
        size_t n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 1000, 0, 1, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, n, true, 1040), 0);
        /* sn 1..3 at 2000 in group 0, which closes at 2000 (or stays open) */
        CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
        kcp_flush(k, 2000);
        if (closed)
            kcp_set_fec_group(k, 1);
        /* at 2060, ACKs of sn 3 and then sn 2 (60 ms: a min RTT after the group closed) */
        n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 2000, 3, 1, NULL, 0);
        n += make_seg(pkt + n, 1, KCP_CMD_ACK, 256, 2000, 2, 1, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, n, true, 2060), 0);
        struct kcp_stats st;
        kcp_get_stats(k, &st);
        /* sn 1 is out for 60 ms, the latest RTT: lost, unless a window was measured */
        CHECK_EQ(st.retrans_segs, closed ? 1 : 0);
        n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 2060, 1, 4, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, n, true, 2100), 0);
        /* sn 4..6 at 3000; at 3040 the ACK of sn 6: sn 4 and 5 are out for the RTT (40) */
        CHECK_EQ(kcp_send(k, d, sizeof(d)), 0);
        kcp_flush(k, 3000);
        n = make_seg(pkt, 1, KCP_CMD_ACK, 256, 3000, 6, 4, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, n, true, 3040), 0);
        kcp_get_stats(k, &st);
        if (closed) /* no reordering seen: resent at once */
            CHECK_EQ(st.retrans_segs, 3);
        else /* reordering by 20 ms seen (capped at min RTT / 4 = 10): they wait */
            CHECK_EQ(st.retrans_segs, 0);
        kcp_free(k);
        free(c);
    }
}

/* Sends |segs| full segments from |*t| and ticks the engine for |ms|; returns how many left
 * (first transmissions) and in |*last| when the last of them did. */
static size_t paced_bulk_start(struct kcp *k, struct capture *c, size_t segs, uint64_t *t,
                               uint64_t ms, uint64_t *last)
{
    size_t mss = kcp_mss(k);
    uint8_t *d = calloc(segs, mss);
    if (!d)
        return 0;
    CHECK_EQ(kcp_send(k, d, segs * mss), 0);
    free(d);
    size_t before = cap_count_cmd(c, KCP_CMD_PUSH), sent = 0;
    *last = *t;
    for (uint64_t end = *t + ms; *t < end; (*t)++) {
        if (kcp_next_deadline(k, *t) > *t)
            continue;
        kcp_tick(k, *t);
        if (cap_count_cmd(c, KCP_CMD_PUSH) > before + sent) {
            sent = cap_count_cmd(c, KCP_CMD_PUSH) - before;
            *last = *t;
        }
    }
    return sent;
}

/* Retransmissions of a sender with data queued are paced like new data: ACKs that reveal many
 * holes at once (a loss burst) resend them as the token bucket allows, at most its burst per
 * call, and the rest at the pacing rate, before any new data. An application-limited sender
 * (nothing queued) resends its holes at once: its tail losses wait for nothing. */
TEST(kcp_pacing_holds_retransmissions)
{
    for (int queued = 1; queued >= 0; queued--) {
        struct capture *c = cap_new();
        REQUIRE(c);
        struct kcp *k = paced_engine(c);
        REQUIRE(k);
        uint32_t sn = 0;
        uint64_t t = paced_messages(k, &sn, 100, 10, 300, 0); /* RTT 300 ms */
        uint64_t last;
        size_t n = paced_bulk_start(k, c, queued ? 40 : 14, &t, 200, &last);
        REQUIRE(n >= 10);
        REQUIRE(queued ? n < 40 : n == 14);
        struct kcp_stats st;
        kcp_get_stats(k, &st);
        REQUIRE(st.retrans_segs == 0);
        /* the last two arrive (RTT 60 ms): the n - 2 before them are lost by time */
        t = last + 60;
        uint8_t pkt[64];
        size_t len = make_seg(pkt, 1, KCP_CMD_ACK, 256, (uint32_t)last, sn + (uint32_t)n - 1,
                              sn, NULL, 0);
        len += make_seg(pkt + len, 1, KCP_CMD_ACK, 256, (uint32_t)last, sn + (uint32_t)n - 2,
                        sn, NULL, 0);
        CHECK_EQ(kcp_input(k, pkt, len, true, t), 0);
        kcp_get_stats(k, &st);
        if (!queued) {
            CHECK_EQ(st.retrans_segs, n - 2);
        } else {
            CHECK(st.retrans_segs >= 1);
            CHECK(st.retrans_segs <= 8); /* the bucket's burst */
            uint64_t most = st.retrans_segs, prev = st.retrans_segs;
            size_t pushes = cap_count_cmd(c, KCP_CMD_PUSH);
            bool new_first = false;
            for (uint64_t end = t + 600; t < end && st.retrans_segs < n - 2; t++) {
                if (kcp_next_deadline(k, t) > t)
                    continue;
                kcp_tick(k, t);
                kcp_get_stats(k, &st);
                if (st.retrans_segs - prev > most)
                    most = st.retrans_segs - prev;
                /* every segment sent before the holes are all resent is one of them */
                if (cap_count_cmd(c, KCP_CMD_PUSH) - pushes > st.retrans_segs - prev)
                    new_first = true;
                pushes = cap_count_cmd(c, KCP_CMD_PUSH);
                prev = st.retrans_segs;
            }
            CHECK(st.retrans_segs >= n - 2);
            CHECK(most <= 8);
            CHECK(!new_first);
        }
        kcp_free(k);
        free(c);
    }
}

/* Adaptive parity: a sender with more queued than it sends while a loss takes to show (a
 * backlogged bulk flow) repairs holes by retransmission and sends no parity; the same engine
 * with nothing queued (application-limited) keeps parity before the path has shown itself
 * clean. */
TEST(kcp_pacing_backlogged_sender_sends_no_parity)
{
    struct capture *c = cap_new();
    REQUIRE(c);
    struct kcp *k = paced_engine(c);
    REQUIRE(k);
    uint32_t sn = 0;
    uint64_t t = paced_messages(k, &sn, 100, 10, 40, 0);
    kcp_set_rate_limit(k, 100000); /* 100 bytes per ms: 50 ms of it is 5000 bytes */
    CHECK(kcp_fec_parity(k, 10, 3, 10) > 0);
    size_t mss = kcp_mss(k);
    uint8_t *d = calloc(40, mss);
    REQUIRE(d);
    CHECK_EQ(kcp_send(k, d, 40 * mss), 0);
    kcp_flush(k, t);
    CHECK_EQ(kcp_fec_parity(k, 10, 3, 10), 0);
    free(d);
    kcp_free(k);
    free(c);
}

/* The receive window doubles when the peer's data reaches its last quarter while the reader
 * keeps up, up to the limit, and is advertised in the next segment; a full receive queue (a
 * slow reader) makes it grow no further. */
TEST(kcp_receive_window_grows_with_the_peer)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_window(k, 32, 16);
    kcp_set_rcv_growth(k, 40);
    uint8_t pkt[64], d[8] = "payload", out[64];
    size_t n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100, 11, 0, d, 8); /* sn 11 < 12: no */
    CHECK_EQ(kcp_input(k, pkt, n, true, 100), 0);
    kcp_flush(k, 110);
    struct kcp_seg_hdr h[8];
    REQUIRE(cap_segments(c, c->n - 1, h, 8) >= 1);
    CHECK_EQ(h[0].wnd, 16);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100, 12, 0, d, 8); /* the last quarter: doubles */
    CHECK_EQ(kcp_input(k, pkt, n, true, 120), 0);
    kcp_flush(k, 130);
    REQUIRE(cap_segments(c, c->n - 1, h, 8) >= 1);
    CHECK_EQ(h[0].wnd, 32);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100, 30, 0, d, 8); /* again: 40 at most */
    CHECK_EQ(kcp_input(k, pkt, n, true, 140), 0);
    kcp_flush(k, 150);
    REQUIRE(cap_segments(c, c->n - 1, h, 8) >= 1);
    CHECK_EQ(h[0].wnd, 40);
    /* sn 0..39 in order, none read: the queue fills the window, nothing grows any more */
    for (uint32_t sn = 0; sn < 40; sn++) {
        n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100, sn, 0, d, 8);
        CHECK_EQ(kcp_input(k, pkt, n, true, 160), 0);
    }
    kcp_set_rcv_growth(k, 1000);
    n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, 100, 41, 0, d, 8);
    CHECK_EQ(kcp_input(k, pkt, n, true, 170), 0);
    kcp_flush(k, 180);
    REQUIRE(cap_segments(c, c->n - 1, h, 8) >= 1);
    CHECK_EQ(h[0].wnd, 0);
    CHECK(kcp_recv(k, out, sizeof(out)) > 0);
    kcp_free(k);
    free(c);
}

/* Receive rounds: a peer limited by the advertised window (it sends up to the edge as soon
 * as an ACK brings it, one way 50 ms, ACKs every 10 ms) fills every window in one round trip,
 * in order and without a hole, so the window's last quarter never sees data ahead of a hole;
 * the window must grow from rounds that stay as fast as the window doubles. A peer sending at
 * its own rate (8 segments per 10 ms, 80 per round trip) gets one doubling above what it
 * fills at most. */
static void rcv_round_run(bool window_limited, uint32_t *wnd_out)
{
    struct capture *c = cap_new();
    struct kcp *k = kcp_new(1, cap_output, c);
    REQUIRE(k && c);
    kcp_set_nodelay(k, 1, 10, 2, 1);
    kcp_set_window(k, 32, 32);
    kcp_set_rcv_growth(k, 1024);
    uint32_t adv[400] = {0}, sent = 0, wnd = 32;
    uint8_t pkt[64], d[8] = "payload", out[64];
    for (uint32_t t = 0; t < 4000; t += 10) {
        uint32_t edge = t >= 100 ? adv[(t - 100) / 10] : 32;
        if (!window_limited && (int32_t)(edge - (sent + 8)) > 0)
            edge = sent + 8;
        for (; (int32_t)(edge - sent) > 0; sent++) {
            size_t n = make_seg(pkt, 1, KCP_CMD_PUSH, 64, t, sent, 0, d, 8);
            CHECK_EQ(kcp_input(k, pkt, n, true, t), 0);
        }
        while (kcp_recv(k, out, sizeof(out)) > 0)
            ;
        c->n = 0;
        kcp_flush(k, t);
        struct kcp_seg_hdr h[64];
        adv[t / 10] = t >= 10 ? adv[t / 10 - 1] : 32;
        for (size_t i = 0; i < c->n && i < CAP_MAX; i++) {
            size_t m = cap_segments(c, i, h, 64);
            for (size_t j = 0; j < m; j++) {
                adv[t / 10] = h[j].una + h[j].wnd;
                wnd = h[j].wnd;
            }
        }
    }
    kcp_free(k);
    free(c);
    *wnd_out = wnd;
}

TEST(kcp_receive_window_grows_for_a_window_limited_peer)
{
    uint32_t limited = 0, paced = 0;
    rcv_round_run(true, &limited);
    rcv_round_run(false, &paced);
    printf("    window-limited peer: %u segments; 80 per round trip: %u\n", limited, paced);
    CHECK(limited >= 512);
    CHECK(paced >= 64 && paced <= 256);
}
