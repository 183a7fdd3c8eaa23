/* SPDX-License-Identifier: MIT */
/* Tests for the FEC packet layer: kcp-go vectors, grouping, wrap, window, mismatch safety. */
#include "common/err.h"
#include "common/wire.h"
#include "fec/fec.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_MAX_PKTS 4096

/* Collects packets from the encoder or the decoder. */
struct tf_sink {
    int n;                         /* packets collected */
    int n_recovered;               /* of which delivered as recovered */
    size_t len[TF_MAX_PKTS];       /* their lengths */
    bool recovered[TF_MAX_PKTS];   /* decoder flag */
    uint8_t *pkt[TF_MAX_PKTS];     /* copies */
};

static int tf_emit(void *user, const uint8_t *pkt, size_t len)
{
    struct tf_sink *s = user;
    if (s->n >= TF_MAX_PKTS)
        return ERR_LIMIT;
    s->pkt[s->n] = malloc(len ? len : 1);
    memcpy(s->pkt[s->n], pkt, len);
    s->len[s->n] = len;
    s->recovered[s->n] = false;
    s->n++;
    return 0;
}

static int tf_deliver(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct tf_sink *s = user;
    int rc = tf_emit(user, pkt, len);
    if (rc == 0 && recovered) {
        s->recovered[s->n - 1] = true;
        s->n_recovered++;
    }
    return rc;
}

static void tf_clear(struct tf_sink *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->pkt[i]);
    memset(s, 0, sizeof(*s));
}

static struct tf_sink *tf_sink_new(void)
{
    return calloc(1, sizeof(struct tf_sink));
}

static void tf_sink_free(struct tf_sink *s)
{
    if (s)
        tf_clear(s);
    free(s);
}

struct tf_log {
    int calls;      /* times the log callback ran */
    char msg[256];  /* last message */
};

static void tf_logger(void *user, const char *msg)
{
    struct tf_log *l = user;
    l->calls++;
    snprintf(l->msg, sizeof(l->msg), "%s", msg);
}

static uint32_t tf_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A KCP-looking packet: 24-byte header with conv/cmd/sn, then |len| - 24 payload bytes. */
static size_t tf_make_kcp(uint8_t *p, size_t len, uint32_t sn, uint32_t *seed)
{
    memset(p, 0, len);
    put_u32le(p, 0x3ade68b1);
    p[4] = 81;
    put_u32le(p + 12, sn);
    put_u32le(p + 20, (uint32_t)(len - 24));
    for (size_t i = 24; i < len; i++)
        p[i] = (uint8_t)tf_rand(seed);
    return len;
}

/* ---- vectors ------------------------------------------------------------------------ */

static const cJSON *tf_arr(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(o, k);
}

TEST(fec_vectors_sender_byte_exact)
{
    cJSON *root = vec_load("fec_packets.json");
    REQUIRE(root);
    const cJSON *kcp = tf_arr(root, "kcp_packets_hex");
    const cJSON *set;
    int sets = 0;
    struct tf_sink *out = tf_sink_new();
    cJSON_ArrayForEach(set, tf_arr(root, "sets"))
    {
        int ds = (int)vec_int(set, "datashard", -1), ps = (int)vec_int(set, "parityshard", -1);
        struct fec_encoder *enc = fec_encoder_new(ds, ps);
        REQUIRE(enc);
        CHECK_EQ(fec_encoder_header_len(enc) + 20, vec_int(set, "header_size", 0));
        const cJSON *ix;
        cJSON_ArrayForEach(ix, tf_arr(set, "kcp_packet_indices"))
        {
            uint8_t *k = NULL;
            long kl = vec_hex(cJSON_GetArrayItem(kcp, ix->valueint)->valuestring, &k);
            REQUIRE(kl > 0);
            CHECK_EQ(fec_encoder_encode(enc, k, (size_t)kl, tf_emit, out), 0);
            free(k);
        }
        const cJSON *dg;
        int i = 0;
        CHECK_EQ(out->n, cJSON_GetArraySize(tf_arr(set, "datagrams")));
        cJSON_ArrayForEach(dg, tf_arr(set, "datagrams"))
        {
            uint8_t *want = NULL;
            long wl = vec_hex_field(dg, "decrypted_hex", &want);
            REQUIRE(wl > 20);
            if (i < out->n) {
                CHECK_EQ(out->len[i], wl - 20);
                if (out->len[i] == (size_t)(wl - 20))
                    CHECK_MEM(out->pkt[i], want + 20, out->len[i]);
                CHECK_EQ(fec_is_fec_packet(out->pkt[i], out->len[i]), ds > 0);
            }
            free(want);
            i++;
        }
        tf_clear(out);
        fec_encoder_free(enc);
        sets++;
    }
    CHECK_EQ(sets, 7);
    tf_sink_free(out);
    cJSON_Delete(root);
}

/* Feeds one set's first group minus the dropped positions, as kcp-go's decode test did. */
static void tf_check_decode_set(const cJSON *set)
{
    int ds = (int)vec_int(set, "datashard", 0), ps = (int)vec_int(set, "parityshard", 0);
    const cJSON *t = tf_arr(set, "fec_decode_test");
    struct fec_decoder *dec = fec_decoder_new(ds, ps, NULL, NULL);
    struct tf_sink *out = tf_sink_new();
    REQUIRE(dec);
    bool dropped[256] = {false};
    const cJSON *d;
    cJSON_ArrayForEach(d, tf_arr(t, "dropped_group_positions"))
        dropped[d->valueint] = true;
    const cJSON *after = tf_arr(t, "recovered_after_each_input");
    int input = 0;
    for (int pos = 0; pos < ds + ps; pos++) {
        if (dropped[pos])
            continue;
        uint8_t *p = NULL;
        long pl = vec_hex_field(cJSON_GetArrayItem(tf_arr(set, "datagrams"), pos),
                                "decrypted_hex", &p);
        REQUIRE(pl > 28);
        CHECK_EQ(rd_u32le(p + 20), pos);
        int before = out->n;
        CHECK_EQ(fec_decoder_input(dec, p + 20, (size_t)pl - 20, 1000, tf_deliver, out), 0);
        int k = before;
        if (pos < ds) { /* the data packet itself comes first, unrecovered */
            REQUIRE(out->n > before);
            CHECK(!out->recovered[k]);
            CHECK_EQ(out->len[k], pl - 28);
            CHECK_MEM(out->pkt[k], p + 28, out->len[k]);
            k++;
        }
        const cJSON *want = cJSON_GetArrayItem(after, input);
        int n_want = cJSON_IsArray(want) ? cJSON_GetArraySize(want) : 0;
        CHECK_EQ(out->n - k, n_want);
        for (int j = 0; j < n_want && k + j < out->n; j++) {
            uint8_t *w = NULL;
            long wl = vec_hex(cJSON_GetArrayItem(want, j)->valuestring, &w);
            CHECK(out->recovered[k + j]);
            CHECK_EQ(out->len[k + j], wl - 2);
            if (out->len[k + j] == (size_t)(wl - 2))
                CHECK_MEM(out->pkt[k + j], w + 2, out->len[k + j]);
            free(w);
        }
        free(p);
        input++;
    }
    CHECK_EQ(input, cJSON_GetArraySize(after));
    CHECK_EQ(fec_decoder_stats(dec)->recovered, out->n_recovered);
    CHECK(out->n_recovered > 0);
    CHECK_EQ(fec_decoder_stats(dec)->mismatch, 0);
    tf_sink_free(out);
    fec_decoder_free(dec);
}

TEST(fec_vectors_decoder_recovery)
{
    cJSON *root = vec_load("fec_packets.json");
    REQUIRE(root);
    const cJSON *set;
    int n = 0;
    cJSON_ArrayForEach(set, tf_arr(root, "sets"))
    {
        if (!tf_arr(set, "fec_decode_test"))
            continue;
        tf_check_decode_set(set);
        n++;
    }
    CHECK_EQ(n, 5);
    cJSON_Delete(root);
}

/* Every set's datagrams fed to a matching decoder without loss: each data packet once. */
TEST(fec_vectors_decoder_passes_every_data_packet)
{
    cJSON *root = vec_load("fec_packets.json");
    REQUIRE(root);
    const cJSON *kcp = tf_arr(root, "kcp_packets_hex");
    const cJSON *set;
    struct tf_sink *out = tf_sink_new();
    cJSON_ArrayForEach(set, tf_arr(root, "sets"))
    {
        int ds = (int)vec_int(set, "datashard", 0), ps = (int)vec_int(set, "parityshard", 0);
        struct fec_decoder *dec = fec_decoder_new(ds, ps, NULL, NULL);
        REQUIRE(dec);
        const cJSON *dg;
        cJSON_ArrayForEach(dg, tf_arr(set, "datagrams"))
        {
            uint8_t *p = NULL;
            long pl = vec_hex_field(dg, "decrypted_hex", &p);
            CHECK_EQ(fec_decoder_input(dec, p + 20, (size_t)pl - 20, 5, tf_deliver, out), 0);
            free(p);
        }
        const cJSON *ix;
        int i = 0;
        CHECK_EQ(out->n, cJSON_GetArraySize(tf_arr(set, "kcp_packet_indices")));
        cJSON_ArrayForEach(ix, tf_arr(set, "kcp_packet_indices"))
        {
            uint8_t *k = NULL;
            long kl = vec_hex(cJSON_GetArrayItem(kcp, ix->valueint)->valuestring, &k);
            if (i < out->n) {
                CHECK_EQ(out->len[i], kl);
                CHECK_MEM(out->pkt[i], k, (size_t)kl);
            }
            free(k);
            i++;
        }
        CHECK_EQ(out->n_recovered, 0);
        CHECK_EQ(fec_decoder_stats(dec)->mismatch, 0);
        tf_clear(out);
        fec_decoder_free(dec);
    }
    tf_sink_free(out);
    cJSON_Delete(root);
}

/* ---- encoder ------------------------------------------------------------------------ */

TEST(fec_encoder_limits_and_passthrough)
{
    static uint8_t big[FEC_MAX_PACKET + 1];
    struct tf_sink *out = tf_sink_new();
    struct fec_encoder *enc = fec_encoder_new(10, 3);
    REQUIRE(enc);
    CHECK_EQ(fec_encoder_header_len(enc), 8);
    CHECK_EQ(fec_encoder_encode(enc, big, FEC_MAX_PACKET - 7, tf_emit, out), ERR_TOOBIG);
    CHECK_EQ(out->n, 0);
    CHECK_EQ(fec_encoder_encode(enc, big, 0, tf_emit, out), ERR_INVAL);
    CHECK_EQ(fec_encoder_encode(enc, big, FEC_MAX_PACKET - 8, tf_emit, out), 0);
    CHECK_EQ(out->n, 1);
    CHECK_EQ(out->len[0], FEC_MAX_PACKET);
    CHECK_EQ(rd_u32le(out->pkt[0]), 0); /* the refused packet did not use a seqid */
    CHECK_EQ(rd_u16le(out->pkt[0] + 6), FEC_MAX_PACKET - 6);
    fec_encoder_free(enc);
    tf_clear(out);

    for (int k = 0; k < 2; k++) {
        enc = fec_encoder_new(k ? 5 : 0, k ? 0 : 3);
        REQUIRE(enc);
        CHECK_EQ(fec_encoder_header_len(enc), 0);
        big[0] = 0x42;
        CHECK_EQ(fec_encoder_encode(enc, big, FEC_MAX_PACKET + 1, tf_emit, out), ERR_TOOBIG);
        CHECK_EQ(fec_encoder_encode(enc, big, FEC_MAX_PACKET, tf_emit, out), 0);
        CHECK_EQ(out->n, 1);
        CHECK_EQ(out->len[0], FEC_MAX_PACKET);
        CHECK_MEM(out->pkt[0], big, FEC_MAX_PACKET);
        fec_encoder_free(enc);
        tf_clear(out);
    }
    CHECK(fec_encoder_new(200, 57) == NULL);
    CHECK(fec_decoder_new(200, 57, NULL, NULL) == NULL);
    fec_encoder_free(NULL);
    fec_decoder_free(NULL);
    tf_sink_free(out);
}

static int tf_emit_fail(void *user, const uint8_t *pkt, size_t len)
{
    int *calls = user;
    (void)pkt;
    (void)len;
    (*calls)++;
    return ERR_AGAIN;
}

TEST(fec_encoder_emit_error_keeps_group_going)
{
    uint8_t k[40] = {0};
    int calls = 0;
    struct fec_encoder *enc = fec_encoder_new(2, 1);
    REQUIRE(enc);
    CHECK_EQ(fec_encoder_encode(enc, k, sizeof(k), tf_emit_fail, &calls), ERR_AGAIN);
    CHECK_EQ(fec_encoder_encode(enc, k, sizeof(k), tf_emit_fail, &calls), ERR_AGAIN);
    CHECK_EQ(calls, 3); /* data, data, parity */
    fec_encoder_free(enc);
}

TEST(fec_encoder_group_layout_and_padding)
{
    uint8_t k[1400];
    uint32_t seed = 7;
    struct tf_sink *out = tf_sink_new();
    struct fec_encoder *enc = fec_encoder_new(4, 2);
    REQUIRE(enc);
    static const size_t lens[] = {100, 30, 1300, 24, 500, 60, 61, 62};
    for (size_t i = 0; i < 8; i++) {
        tf_make_kcp(k, lens[i], (uint32_t)i, &seed);
        CHECK_EQ(fec_encoder_encode(enc, k, lens[i], tf_emit, out), 0);
    }
    REQUIRE(out->n == 12);
    for (int i = 0; i < 12; i++) {
        CHECK_EQ(rd_u32le(out->pkt[i]), i);
        bool parity = i % 6 >= 4;
        CHECK_EQ(rd_u16le(out->pkt[i] + 4), parity ? FEC_TYPE_PARITY : FEC_TYPE_DATA);
    }
    CHECK_EQ(out->len[4], 1308); /* longest data packet of group 0: 1300 + 8 */
    CHECK_EQ(out->len[5], 1308);
    CHECK_EQ(out->len[10], 508);
    /* Group 0's padding: a decoder that lost data 2 must rebuild it from the rest. */
    struct fec_decoder *dec = fec_decoder_new(4, 2, NULL, NULL);
    struct tf_sink *got = tf_sink_new();
    for (int i = 0; i < 6; i++)
        if (i != 2)
            fec_decoder_input(dec, out->pkt[i], out->len[i], 0, tf_deliver, got);
    REQUIRE(got->n == 4);
    CHECK(got->recovered[3]);
    CHECK_EQ(got->len[3], 1300);
    CHECK_MEM(got->pkt[3], out->pkt[2] + 8, 1300);
    tf_sink_free(got);
    fec_decoder_free(dec);
    fec_encoder_free(enc);
    tf_sink_free(out);
}

/* ---- decoder ------------------------------------------------------------------------ */

TEST(fec_is_fec_packet_classifier)
{
    uint8_t p[32] = {0};
    CHECK(!fec_is_fec_packet(p, sizeof(p)));
    p[4] = 0xf1;
    CHECK(fec_is_fec_packet(p, sizeof(p)));
    p[4] = 0xf2;
    CHECK(fec_is_fec_packet(p, sizeof(p)));
    CHECK(!fec_is_fec_packet(p, 5));
    p[5] = 1;
    CHECK(!fec_is_fec_packet(p, sizeof(p)));
    p[4] = 81; /* KCP push, frg 1 */
    CHECK(!fec_is_fec_packet(p, sizeof(p)));
}

TEST(fec_decoder_length_checks_and_plain_kcp)
{
    uint8_t p[FEC_MAX_PACKET + 1] = {0};
    uint32_t seed = 3;
    struct tf_sink *out = tf_sink_new();
    struct fec_decoder *dec = fec_decoder_new(10, 3, NULL, NULL);
    REQUIRE(dec);
    CHECK_EQ(fec_decoder_input(dec, p, FEC_MIN_PACKET - 1, 0, tf_deliver, out), ERR_PROTO);
    CHECK_EQ(fec_decoder_input(dec, p, FEC_MAX_PACKET + 1, 0, tf_deliver, out), ERR_TOOBIG);
    CHECK_EQ(out->n, 0);
    tf_make_kcp(p, 100, 5, &seed);
    CHECK_EQ(fec_decoder_input(dec, p, 100, 0, tf_deliver, out), 0);
    REQUIRE(out->n == 1);
    CHECK_EQ(out->len[0], 100);
    CHECK_MEM(out->pkt[0], p, 100);
    CHECK_EQ(fec_decoder_pending(dec), 0);
    tf_sink_free(out);
    fec_decoder_free(dec);
}

/* Builds a 1/1 parity packet carrying |shard| (size field first): for ds = 1 the parity is
 * a copy of the data shard. */
static size_t tf_parity_1_1(uint8_t *p, uint32_t seqid, const uint8_t *shard, size_t n)
{
    put_u16le(put_u32le(p, seqid), FEC_TYPE_PARITY);
    memcpy(p + 6, shard, n);
    return n + 6;
}

TEST(fec_decoder_size_field_validation)
{
    uint8_t shard[60], p[80];
    uint32_t seed = 9;
    struct tf_sink *out = tf_sink_new();
    static const uint16_t sizes[] = {0, 1, 61, 0xffff, 2, 60, 40};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct fec_decoder *dec = fec_decoder_new(1, 1, NULL, NULL);
        REQUIRE(dec);
        tf_make_kcp(shard + 2, 58, 1, &seed);
        put_u16le(shard, sizes[i]);
        size_t n = tf_parity_1_1(p, 1, shard, sizeof(shard));
        CHECK_EQ(fec_decoder_input(dec, p, n, 0, tf_deliver, out), 0);
        bool valid = sizes[i] >= 2 && sizes[i] <= 60;
        CHECK_EQ(fec_decoder_stats(dec)->errs, valid ? 0 : 1);
        CHECK_EQ(out->n, valid ? 1 : 0);
        if (valid && out->n == 1) {
            CHECK_EQ(out->len[0], sizes[i] - 2);
            CHECK_MEM(out->pkt[0], shard + 2, out->len[0]);
        }
        CHECK_EQ(fec_decoder_stats(dec)->parity_shards, 1);
        tf_clear(out);
        fec_decoder_free(dec);
    }
    tf_sink_free(out);
}

static int tf_deliver_refuse(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    (void)user;
    (void)pkt;
    (void)len;
    (void)recovered;
    return ERR_PROTO;
}

TEST(fec_decoder_recovered_counts_only_accepted)
{
    uint8_t shard[60], p[80];
    uint32_t seed = 1;
    struct fec_decoder *dec = fec_decoder_new(1, 1, NULL, NULL);
    REQUIRE(dec);
    tf_make_kcp(shard + 2, 58, 1, &seed);
    put_u16le(shard, 60);
    size_t n = tf_parity_1_1(p, 1, shard, sizeof(shard));
    CHECK_EQ(fec_decoder_input(dec, p, n, 0, tf_deliver_refuse, NULL), 0);
    CHECK_EQ(fec_decoder_stats(dec)->recovered, 0);
    CHECK_EQ(fec_decoder_stats(dec)->errs, 0);
    fec_decoder_free(dec);
}

/* Encodes |n| random KCP packets with (ds, ps) starting at |first_seqid|; returns the
 * encoder output. Packet i has sn i. */
static struct tf_sink *tf_stream(int ds, int ps, uint32_t first_seqid, int n, uint32_t seed,
                                 struct tf_sink *sent)
{
    uint8_t k[1400];
    struct tf_sink *out = tf_sink_new();
    struct fec_encoder *enc = fec_encoder_new(ds, ps);
    fec_encoder_set_next_seqid(enc, first_seqid);
    for (int i = 0; i < n; i++) {
        size_t len = 24 + tf_rand(&seed) % 1300;
        if (tf_rand(&seed) % 3 == 0)
            len = 1322; /* full-MSS pushes, as in bulk transfers */
        tf_make_kcp(k, len, (uint32_t)i, &seed);
        if (sent)
            tf_emit(sent, k, len);
        fec_encoder_encode(enc, k, len, tf_emit, out);
    }
    fec_encoder_free(enc);
    return out;
}

/* True if |pkt| equals sent packet number sn (read from the packet) and was not yet seen. */
static bool tf_genuine(const struct tf_sink *sent, const uint8_t *pkt, size_t len, bool *seen)
{
    if (len < 24)
        return false;
    uint32_t sn = rd_u32le(pkt + 12);
    if (sn >= (uint32_t)sent->n || seen[sn])
        return false;
    if (sent->len[sn] != len || memcmp(sent->pkt[sn], pkt, len) != 0)
        return false;
    seen[sn] = true;
    return true;
}

TEST(fec_seqid_wrap_encoder_and_decoder)
{
    const int ds = 10, ps = 3, size = 13;
    const uint32_t paws = 0xFFFFFFF7u; /* floor(0xFFFFFFFF / 13) * 13 */
    struct tf_sink *sent = tf_sink_new();
    struct tf_sink *wire = tf_stream(ds, ps, paws - 4 * size, 8 * ds, 11, sent);
    REQUIRE(wire->n == 8 * size);
    for (int i = 0; i < wire->n; i++) {
        uint32_t want = i < 4 * size ? paws - 4 * size + (uint32_t)i : (uint32_t)(i - 4 * size);
        CHECK_EQ(rd_u32le(wire->pkt[i]), want);
    }
    /* Lose data position 3 of every group: once the decoder knows the layout it must
     * recover across the wrap, each lost packet exactly once and intact. */
    struct fec_decoder *dec = fec_decoder_new(ds, ps, NULL, NULL);
    struct tf_sink *got = tf_sink_new();
    for (int i = 0; i < wire->n; i++)
        if (i % size != 3)
            CHECK_EQ(fec_decoder_input(dec, wire->pkt[i], wire->len[i], 10, tf_deliver, got), 0);
    bool seen[8 * 10] = {false};
    int bad = 0;
    for (int i = 0; i < got->n; i++)
        bad += !tf_genuine(sent, got->pkt[i], got->len[i], seen);
    CHECK_EQ(bad, 0);
    /* Groups starting at paws - 52 and - 39 teach the layout; the last six, across the
     * wrap, are rebuilt. */
    CHECK(got->n_recovered >= 6);
    for (int g = 2; g < 8; g++)
        CHECK(seen[g * ds + 3]);
    CHECK_EQ(fec_decoder_stats(dec)->mismatch, 0);
    tf_sink_free(got);
    tf_sink_free(wire);
    tf_sink_free(sent);
    fec_decoder_free(dec);
}

TEST(fec_decoder_window_limit_counts_short_shards)
{
    uint8_t p[64] = {0};
    struct tf_sink *out = tf_sink_new();
    struct fec_decoder *dec = fec_decoder_new(10, 3, NULL, NULL);
    REQUIRE(dec);
    /* One data packet from each of 45 groups: none completes, the window keeps 39. */
    for (uint32_t g = 0; g < 45; g++) {
        put_u16le(put_u16le(put_u32le(p, g * 13), FEC_TYPE_DATA), 58);
        CHECK_EQ(fec_decoder_input(dec, p, sizeof(p), g, tf_deliver, out), 0);
    }
    CHECK_EQ(fec_decoder_pending(dec), 39);
    CHECK_EQ(fec_decoder_stats(dec)->short_shards, 6);
    CHECK_EQ(out->n, 45);
    /* A parity packet pushed out is not counted. */
    put_u16le(put_u32le(p, 45 * 13 + 12), FEC_TYPE_PARITY);
    CHECK_EQ(fec_decoder_input(dec, p, sizeof(p), 50, tf_deliver, out), 0);
    CHECK_EQ(fec_decoder_stats(dec)->short_shards, 7);
    tf_sink_free(out);
    fec_decoder_free(dec);
}

TEST(fec_decoder_expiry)
{
    uint8_t p[64] = {0};
    struct tf_sink *out = tf_sink_new();
    struct fec_decoder *dec = fec_decoder_new(4, 2, NULL, NULL);
    REQUIRE(dec);
    const uint64_t t0 = 5000000;
    for (uint32_t s = 0; s < 3; s++) { /* group 0: data 0, 1, 2 */
        put_u16le(put_u16le(put_u32le(p, s), FEC_TYPE_DATA), 58);
        fec_decoder_input(dec, p, sizeof(p), t0, tf_deliver, out);
    }
    put_u16le(put_u16le(put_u32le(p, 6), FEC_TYPE_DATA), 58); /* group 1 */
    fec_decoder_input(dec, p, sizeof(p), t0 + FEC_EXPIRE_MS, tf_deliver, out);
    CHECK_EQ(fec_decoder_pending(dec), 4); /* exactly 60000 ms old: kept */
    put_u16le(put_u16le(put_u32le(p, 7), FEC_TYPE_DATA), 58);
    fec_decoder_input(dec, p, sizeof(p), t0 + FEC_EXPIRE_MS + 1, tf_deliver, out);
    CHECK_EQ(fec_decoder_pending(dec), 2); /* group 0 expired */
    /* Group 0's parity now finds nothing to rebuild from. */
    put_u16le(put_u32le(p, 4), FEC_TYPE_PARITY);
    fec_decoder_input(dec, p, sizeof(p), t0 + FEC_EXPIRE_MS + 2, tf_deliver, out);
    CHECK_EQ(out->n_recovered, 0);
    CHECK_EQ(fec_decoder_pending(dec), 3);
    tf_sink_free(out);
    fec_decoder_free(dec);
}

TEST(fec_decoder_duplicates_recover_once)
{
    struct tf_sink *sent = tf_sink_new();
    struct tf_sink *wire = tf_stream(10, 3, 0, 30, 5, sent);
    struct fec_decoder *dec = fec_decoder_new(10, 3, NULL, NULL);
    struct tf_sink *got = tf_sink_new();
    /* Groups 0 and 1 complete (teach the layout), group 2 loses data 4 and 7 and every
     * packet of it arrives twice. */
    for (int i = 0; i < 26; i++)
        fec_decoder_input(dec, wire->pkt[i], wire->len[i], 0, tf_deliver, got);
    for (int rep = 0; rep < 2; rep++)
        for (int i = 26; i < 39; i++)
            if (i != 30 && i != 33)
                fec_decoder_input(dec, wire->pkt[i], wire->len[i], 0, tf_deliver, got);
    CHECK_EQ(got->n_recovered, 2);
    int data = 0;
    for (int i = 0; i < got->n; i++)
        data += !got->recovered[i];
    CHECK_EQ(data, 20 + 2 * 8); /* duplicates of data still go up, like kcp-go */
    tf_sink_free(got);
    tf_sink_free(wire);
    tf_sink_free(sent);
    fec_decoder_free(dec);
}

/* Random loss with matching layouts: everything delivered is genuine, recovered packets
 * appear, and data never arrives twice. */
TEST(fec_random_loss_matching_layouts)
{
    static const int layouts[][2] = {{10, 3}, {4, 2}, {1, 1}, {20, 10}, {2, 1}};
    for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++) {
        int ds = layouts[l][0], ps = layouts[l][1];
        int n = 100 * ds > 1500 ? 1500 : 100 * ds;
        struct tf_sink *sent = tf_sink_new();
        struct tf_sink *wire = tf_stream(ds, ps, 0, n, (uint32_t)l + 100, sent);
        struct fec_decoder *dec = fec_decoder_new(ds, ps, NULL, NULL);
        struct tf_sink *got = tf_sink_new();
        uint32_t seed = 77 + (uint32_t)l;
        int size = ds + ps, have = 0, lost_data = 0, expect = 0;
        for (int i = 0; i < wire->n; i++) {
            bool kept = tf_rand(&seed) % 100 >= 15;
            if (kept)
                fec_decoder_input(dec, wire->pkt[i], wire->len[i], (uint64_t)i, tf_deliver, got);
            have += kept;
            lost_data += !kept && i % size < ds;
            if (i % size == size - 1) {
                /* From the fourth group on the layout is known: every group with enough
                 * shards must be rebuilt. */
                if (i >= 3 * size && have >= ds)
                    expect += lost_data;
                have = lost_data = 0;
            }
        }
        bool *seen = calloc((size_t)n, 1);
        int bad = 0;
        for (int i = 0; i < got->n; i++)
            bad += !tf_genuine(sent, got->pkt[i], got->len[i], seen);
        CHECK_EQ(bad, 0);
        CHECK(got->n_recovered > 0);
        CHECK(expect > 0);
        CHECK(got->n_recovered >= expect);
        CHECK_EQ(fec_decoder_stats(dec)->recovered, got->n_recovered);
        CHECK_EQ(fec_decoder_stats(dec)->mismatch, 0);
        free(seen);
        tf_sink_free(got);
        tf_sink_free(wire);
        tf_sink_free(sent);
        fec_decoder_free(dec);
    }
}

/* ---- mismatched (ds, ps) ------------------------------------------------------------ */

static bool tf_keep_all(int i, const uint8_t *p, void *arg)
{
    (void)i;
    (void)p;
    (void)arg;
    return true;
}

static bool tf_keep_random(int i, const uint8_t *p, void *arg)
{
    (void)i;
    (void)p;
    return tf_rand(arg) % 100 >= 30;
}

/* Keeps only packets whose type agrees with the (1, 1) layout, so that the receiver sees
 * no contradiction at all: kcp-go would rebuild parity rows as data here. */
static bool tf_keep_consistent_1_1(int i, const uint8_t *p, void *arg)
{
    (void)i;
    (void)arg;
    bool is_data = rd_u16le(p + 4) == FEC_TYPE_DATA;
    return (rd_u32le(p) % 2 == 0) == is_data;
}

/* Keeps only packets consistent with the (4, 2) layout. */
static bool tf_keep_consistent_4_2(int i, const uint8_t *p, void *arg)
{
    (void)i;
    (void)arg;
    bool is_data = rd_u16le(p + 4) == FEC_TYPE_DATA;
    return (rd_u32le(p) % 6 < 4) == is_data;
}

/* Feeds |wire| (sent with another layout) to a (ds, ps) decoder keeping packet i when
 * keep(i) and checks that nothing but genuine data is delivered, each packet once (a
 * rebuild is genuine when the layouts agree on that group, e.g. group 0 of a 10/4 sender
 * read as 10/3: the rows of the coding matrix depend only on ds and the row). Returns the decoder's
 * mismatch counter; *log_calls gets the log callback count. */
static uint64_t tf_mismatch_run(const struct tf_sink *sent, const struct tf_sink *wire, int ds,
                                int ps, bool (*keep)(int i, const uint8_t *p, void *arg),
                                void *arg, int *log_calls)
{
    struct tf_log log = {0};
    struct fec_decoder *dec = fec_decoder_new(ds, ps, tf_logger, &log);
    struct tf_sink *got = tf_sink_new();
    for (int i = 0; i < wire->n; i++)
        if (keep(i, wire->pkt[i], arg))
            fec_decoder_input(dec, wire->pkt[i], wire->len[i], (uint64_t)i, tf_deliver, got);
    bool *seen = calloc((size_t)sent->n, 1);
    int bad = 0;
    for (int i = 0; i < got->n; i++)
        bad += !tf_genuine(sent, got->pkt[i], got->len[i], seen);
    CHECK_EQ(bad, 0);
    CHECK_EQ(fec_decoder_stats(dec)->recovered, got->n_recovered);
    uint64_t mm = fec_decoder_stats(dec)->mismatch;
    if (keep == tf_keep_consistent_1_1 || keep == tf_keep_consistent_4_2)
        CHECK_EQ(got->n_recovered, 0);
    CHECK_EQ(fec_decoder_has_mismatch(dec), mm > 0);
    if (log.calls)
        CHECK(strstr(log.msg, "fec: ") == log.msg);
    *log_calls = log.calls;
    free(seen);
    tf_sink_free(got);
    fec_decoder_free(dec);
    return mm;
}

TEST(fec_mismatch_10_3_sender_into_1_1_and_4_2)
{
    struct tf_sink *sent = tf_sink_new();
    struct tf_sink *wire = tf_stream(10, 3, 0, 400, 21, sent);
    int calls = 0;
    CHECK(tf_mismatch_run(sent, wire, 1, 1, tf_keep_all, NULL, &calls) > 0);
    CHECK_EQ(calls, 1);
    CHECK(tf_mismatch_run(sent, wire, 4, 2, tf_keep_all, NULL, &calls) > 0);
    CHECK_EQ(calls, 1);
    for (uint32_t s = 1; s <= 20; s++) {
        uint32_t seed = s;
        tf_mismatch_run(sent, wire, 1, 1, tf_keep_random, &seed, &calls);
        CHECK(calls <= 1);
        seed = s;
        tf_mismatch_run(sent, wire, 4, 2, tf_keep_random, &seed, &calls);
        CHECK(calls <= 1);
    }
    /* Adversarial loss: every contradicting packet lost. No mismatch is provable, yet the
     * decoders must not rebuild anything (the 10/3 sender stays a possible layout). */
    CHECK_EQ(tf_mismatch_run(sent, wire, 1, 1, tf_keep_consistent_1_1, NULL, &calls), 0);
    CHECK_EQ(calls, 0);
    CHECK_EQ(tf_mismatch_run(sent, wire, 4, 2, tf_keep_consistent_4_2, NULL, &calls), 0);
    CHECK_EQ(calls, 0);
    /* ... while kcp-go's (1,1) decoder would rebuild a group made of a sender-parity
     * packet alone (its data slot held sender parity too, which was lost): count them. */
    int fooled = 0;
    for (int i = 0; i < wire->n; i++) {
        uint32_t sq = rd_u32le(wire->pkt[i]);
        if (sq % 2 == 1 && tf_keep_consistent_1_1(i, wire->pkt[i], NULL) &&
            !tf_keep_consistent_1_1(i - 1, wire->pkt[i - 1], NULL))
            fooled++;
    }
    CHECK(fooled > 0);
    tf_sink_free(wire);
    tf_sink_free(sent);
}

TEST(fec_mismatch_other_directions)
{
    static const int pairs[][4] = {{4, 2, 10, 3}, {1, 1, 10, 3}, {10, 4, 10, 3}, {9, 4, 10, 3},
                                   {10, 3, 10, 4}, {2, 1, 4, 2}};
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        struct tf_sink *sent = tf_sink_new();
        struct tf_sink *wire = tf_stream(pairs[k][0], pairs[k][1], 0, 300, 31, sent);
        int calls = 0;
        CHECK(tf_mismatch_run(sent, wire, pairs[k][2], pairs[k][3], tf_keep_all, NULL, &calls) >
              0);
        CHECK_EQ(calls, 1);
        for (uint32_t s = 1; s <= 10; s++) {
            uint32_t seed = s * 7;
            tf_mismatch_run(sent, wire, pairs[k][2], pairs[k][3], tf_keep_random, &seed, &calls);
        }
        tf_sink_free(wire);
        tf_sink_free(sent);
    }
}

/* The case from the analysis of kcp-go: a (1,1) receiver of a (10,3) sender that lost
 * seqids 1, 3, 5, 7, 9 and 10 sees only consistent packets, then parity 11 "completes" its
 * group {10, 11}. kcp-go would hand that parity to KCP as data. */
TEST(fec_mismatch_parity_never_becomes_data)
{
    struct tf_sink *sent = tf_sink_new();
    struct tf_sink *wire = tf_stream(10, 3, 0, 10, 41, sent);
    REQUIRE(wire->n == 13);
    struct tf_log log = {0};
    struct fec_decoder *dec = fec_decoder_new(1, 1, tf_logger, &log);
    struct tf_sink *got = tf_sink_new();
    static const int order[] = {0, 2, 4, 6, 8, 11};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        fec_decoder_input(dec, wire->pkt[order[i]], wire->len[order[i]], 0, tf_deliver, got);
    CHECK_EQ(got->n, 5);
    CHECK_EQ(got->n_recovered, 0);
    CHECK_EQ(log.calls, 0);
    /* A later contradiction (data at an odd seqid) is reported once. */
    fec_decoder_input(dec, wire->pkt[1], wire->len[1], 0, tf_deliver, got);
    fec_decoder_input(dec, wire->pkt[12], wire->len[12], 0, tf_deliver, got);
    CHECK_EQ(log.calls, 1);
    CHECK(strncmp(log.msg, "fec: peer's data/parity layout differs from local ds=1 ps=1 (seqid "
                           "1 is data); recovery disabled: use the same --ds/--ps on both "
                           "ends", 133) == 0);
    CHECK(fec_decoder_has_mismatch(dec));
    CHECK_EQ(fec_decoder_stats(dec)->mismatch, 2);
    CHECK_EQ(fec_decoder_pending(dec), 0);
    CHECK_EQ(got->n, 6);
    tf_sink_free(got);
    tf_sink_free(wire);
    tf_sink_free(sent);
    fec_decoder_free(dec);
}

TEST(fec_decoder_local_fec_off)
{
    struct tf_sink *sent = tf_sink_new();
    struct tf_sink *wire = tf_stream(10, 3, 0, 50, 51, sent);
    int calls = 0;
    struct tf_log log = {0};
    struct fec_decoder *dec = fec_decoder_new(0, 0, tf_logger, &log);
    REQUIRE(dec);
    struct tf_sink *got = tf_sink_new();
    for (int i = 0; i < wire->n; i++)
        if (i % 13 != 2)
            CHECK_EQ(fec_decoder_input(dec, wire->pkt[i], wire->len[i], 0, tf_deliver, got), 0);
    CHECK_EQ(got->n, 50 - 5);
    CHECK_EQ(got->n_recovered, 0);
    CHECK_EQ(fec_decoder_stats(dec)->parity_shards, 15);
    CHECK_EQ(fec_decoder_pending(dec), 0);
    CHECK_EQ(log.calls, 1);
    tf_sink_free(got);
    fec_decoder_free(dec);
    /* The shared helper agrees: nothing corrupt, nothing recovered. */
    tf_mismatch_run(sent, wire, 0, 0, tf_keep_all, NULL, &calls);
    CHECK_EQ(calls, 1);
    tf_sink_free(wire);
    tf_sink_free(sent);
}

/* ---- robustness ---------------------------------------------------------------------- */

static int tf_deliver_count(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    int *n = user;
    (void)pkt;
    (void)recovered;
    CHECK(len <= FEC_MAX_PACKET);
    (*n)++;
    return 0;
}

/* Random headers, lengths and seqids near groups, the wrap and each other, mixed with
 * mutated genuine packets: the decoder must neither crash nor leak (run under ASan). */
TEST(fec_decoder_survives_garbage)
{
    static const int layouts[][2] = {{10, 3}, {1, 1}, {4, 2}, {128, 128}, {0, 0}};
    uint8_t p[FEC_MAX_PACKET];
    for (size_t m = 0; m < 2 * sizeof(layouts) / sizeof(layouts[0]); m++) {
        /* Second round: types always agree with the local layout, so recovery stays on and
         * rebuilds garbage of every length. */
        size_t l = m % (sizeof(layouts) / sizeof(layouts[0]));
        bool agree = m >= sizeof(layouts) / sizeof(layouts[0]) && layouts[l][0] > 0;
        uint32_t size = (uint32_t)(layouts[l][0] + layouts[l][1]);
        struct tf_log log = {0};
        struct fec_decoder *dec = fec_decoder_new(layouts[l][0], layouts[l][1], tf_logger, &log);
        REQUIRE(dec);
        struct tf_sink *wire = tf_stream(10, 3, 0, 200, (uint32_t)l, NULL);
        uint32_t seed = 0x1234 + (uint32_t)l;
        int delivered = 0;
        for (int i = 0; i < 6000; i++) {
            size_t len = FEC_MIN_PACKET + tf_rand(&seed) % (FEC_MAX_PACKET - FEC_MIN_PACKET + 1);
            int kind = (int)(tf_rand(&seed) % 4);
            if (kind == 0 && !agree) { /* genuine packet, sometimes with a flipped byte */
                int w = (int)(tf_rand(&seed) % (uint32_t)wire->n);
                len = wire->len[w];
                memcpy(p, wire->pkt[w], len);
                if (tf_rand(&seed) % 2)
                    p[tf_rand(&seed) % len] ^= (uint8_t)(1 + tf_rand(&seed) % 255);
            } else {
                for (size_t b = 0; b < len; b++)
                    p[b] = (uint8_t)tf_rand(&seed);
                uint32_t base = kind == 1 ? 0xFFFFFFFFu - tf_rand(&seed) % 600
                                          : tf_rand(&seed) % 600;
                uint32_t sq = kind == 3 ? tf_rand(&seed) : base;
                bool data = tf_rand(&seed) % 2;
                if (agree) {
                    sq = (kind == 1 ? 0xFFFFFF00u : 0) + tf_rand(&seed) % 200;
                    sq %= 0xFFFFFFFFu / size * size;
                    data = sq % size < (uint32_t)layouts[l][0];
                }
                put_u32le(p, sq);
                put_u16le(p + 4, data ? FEC_TYPE_DATA : FEC_TYPE_PARITY);
                if (tf_rand(&seed) % 2)
                    put_u16le(p + 6, (uint16_t)(len - 6));
            }
            uint64_t now = (uint64_t)i * (tf_rand(&seed) % 50);
            int rc = fec_decoder_input(dec, p, len, now, tf_deliver_count, &delivered);
            CHECK(rc == 0);
            CHECK(fec_decoder_pending(dec) <= 3 * (size_t)(layouts[l][0] + layouts[l][1]));
        }
        CHECK(delivered > 0);
        CHECK(log.calls <= 1);
        if (agree) {
            const struct fec_stats *st = fec_decoder_stats(dec);
            CHECK_EQ(st->mismatch, 0);
            CHECK(st->recovered + st->errs > 0);
        }
        tf_sink_free(wire);
        fec_decoder_free(dec);
    }
}
