/* SPDX-License-Identifier: MIT */
/* QPP: the three pad variants, the keystream and the per-stream transform against vectors made
 * by xtaci/qpp v1.1.18 (A), v1.1.22 (B) and v1.1.25 (C). */
#include "common/err.h"
#include "common/mux.h"
#include "crypto/qpp.h"
#include "tests/test.h"
#include "tests/unit/mux_harness.h"
#include "tests/vec.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hex64(const char *s)
{
    return strtoull(s, NULL, 16);
}

/* Transforms |in| in pieces cycling through |pieces| and compares with |want|. */
static void check_pieces(const struct qpp *q, const cJSON *pieces, const uint8_t *in,
                         const uint8_t *want, size_t len, bool decrypt)
{
    int n = cJSON_GetArraySize(pieces);
    REQUIRE(n > 0);
    uint8_t buf[512];
    REQUIRE(len <= sizeof(buf));
    memcpy(buf, in, len);
    struct qpp_stream st;
    qpp_stream_init(q, &st);
    size_t off = 0;
    for (int i = 0; off < len; i = (i + 1) % n) {
        size_t k = (size_t)cJSON_GetArrayItem(pieces, i)->valuedouble;
        if (k > len - off)
            k = len - off;
        if (decrypt)
            qpp_decrypt(q, &st, buf + off, k);
        else
            qpp_encrypt(q, &st, buf + off, k);
        off += k;
    }
    CHECK_MEM(buf, want, len);
}

TEST(qpp_vectors_all_variants)
{
    cJSON *root = vec_load("newest/qpp.json");
    REQUIRE(root);
    const cJSON *cs;
    int cases = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(root, "cases"))
    {
        enum qpp_variant v;
        REQUIRE(qpp_variant_parse(vec_str(cs, "variant"), &v) == 0);
        uint8_t *key = NULL;
        long key_len = vec_hex_field(cs, "key_hex", &key);
        REQUIRE(key_len >= 0);
        unsigned count = (unsigned)vec_int(cs, "qpp_count", 0);
        int err = 1;
        struct qpp *q = qpp_new(key, (size_t)key_len, count, v, &err);
        REQUIRE(q);
        CHECK_EQ(err, 0);

        /* Pads: the first three byte for byte, all of them by hash. */
        const cJSON *p;
        unsigned i = 0;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(cs, "pads_first3"))
        {
            uint8_t *want = NULL;
            REQUIRE(vec_hex(p->valuestring, &want) == 256);
            CHECK_MEM(qpp_pad(q, i), want, 256);
            free(want);
            i++;
        }
        CHECK_EQ(i, 3);
        crypto_hash_sha256_state hs;
        crypto_hash_sha256_init(&hs);
        for (i = 0; i < count; i++)
            crypto_hash_sha256_update(&hs, qpp_pad(q, i), 256);
        uint8_t digest[32], *want_digest = NULL;
        crypto_hash_sha256_final(&hs, digest);
        REQUIRE(vec_hex_field(cs, "pads_all_sha256", &want_digest) == 32);
        CHECK_MEM(digest, want_digest, 32);
        free(want_digest);

        /* Keystream words: W0 at start, then one per 8 bytes. */
        struct qpp_stream st;
        qpp_stream_init(q, &st);
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(cs, "prng_words_first8"))
        {
            if (st.w != hex64(w->valuestring))
                test_fail(__FILE__, __LINE__, "variant %s: word %016llx != %s",
                          qpp_variant_name(v), (unsigned long long)st.w, w->valuestring);
            uint8_t eight[8] = {0};
            qpp_encrypt(q, &st, eight, sizeof(eight));
        }

        /* Plaintext, in one piece and in the generator's pieces; decryption too. */
        uint8_t *pt = NULL, *ct = NULL, *z = NULL;
        long pt_len = vec_hex_field(cs, "plaintext", &pt);
        REQUIRE(pt_len > 0 && vec_hex_field(cs, "ciphertext", &ct) == pt_len);
        static const double one_piece = 1e9;
        cJSON *whole = cJSON_CreateArray();
        cJSON_AddItemToArray(whole, cJSON_CreateNumber(one_piece));
        check_pieces(q, whole, pt, ct, (size_t)pt_len, false);
        check_pieces(q, whole, ct, pt, (size_t)pt_len, true);
        cJSON_Delete(whole);
        check_pieces(q, cJSON_GetObjectItem(cs, "write_pieces_same_result"), pt, ct,
                     (size_t)pt_len, false);
        check_pieces(q, cJSON_GetObjectItem(cs, "read_pieces_same_result"), ct, pt,
                     (size_t)pt_len, true);
        REQUIRE(vec_hex_field(cs, "zeros64_ciphertext", &z) == 64);
        uint8_t zeros[64] = {0};
        qpp_stream_init(q, &st);
        qpp_encrypt(q, &st, zeros, sizeof(zeros));
        CHECK_MEM(zeros, z, 64);
        free(pt);
        free(ct);
        free(z);
        free(key);
        qpp_free(q);
        cases++;
    }
    CHECK_EQ(cases, 12);
    cJSON_Delete(root);
}

TEST(qpp_refuses_bad_parameters)
{
    int err = 0;
    CHECK(qpp_new("k", 1, 0, QPP_VARIANT_C, &err) == NULL);
    CHECK_EQ(err, ERR_INVAL);
    CHECK(qpp_new("k", 1, QPP_COUNT_MAX + 1, QPP_VARIANT_C, &err) == NULL);
    CHECK(qpp_new("k", 1, 7, QPP_VARIANT_COUNT, &err) == NULL);
    enum qpp_variant v;
    CHECK_EQ(qpp_variant_parse("c", &v), 0);
    CHECK_EQ(v, QPP_VARIANT_C);
    CHECK_EQ(qpp_variant_parse("D", &v), ERR_INVAL);
    CHECK_EQ(qpp_variant_parse("AB", &v), ERR_INVAL);
    CHECK_EQ(qpp_variant_parse("", &v), ERR_INVAL);
    /* Count 1 and an empty key still work (every word picks pad 0). */
    struct qpp *q = qpp_new("", 0, 1, QPP_VARIANT_A, &err);
    REQUIRE(q);
    uint8_t buf[100], orig[100];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = orig[i] = (uint8_t)i;
    struct qpp_stream a, b;
    qpp_stream_init(q, &a);
    qpp_stream_init(q, &b);
    qpp_encrypt(q, &a, buf, sizeof(buf));
    CHECK(memcmp(buf, orig, sizeof(buf)) != 0);
    qpp_decrypt(q, &b, buf, sizeof(buf));
    CHECK_MEM(buf, orig, sizeof(buf));
    qpp_free(q);
}

/* The client side of kcptun --QPP --smuxver 2 --nocomp: one stream, two writes; the bytes
 * handed to KCP equal smux v1.5.55 + qpp v1.1.25's, and a server session reads the plaintext
 * back, whatever the input split. */
TEST(qpp_smux_stream_vector)
{
    cJSON *root = vec_load("newest/smux_qpp.json");
    REQUIRE(root);
    const char *key = vec_str(root, "key");
    REQUIRE(key && strcmp(vec_str(root, "qpp_variant"), "C") == 0);
    int err = 0;
    struct qpp *q = qpp_new(key, strlen(key), (unsigned)vec_int(root, "qpp_count", 0),
                            QPP_VARIANT_C, &err);
    REQUIRE(q);
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = (int)vec_int(root, "smux_version", 0);
    cfg.max_frame_size = (uint32_t)vec_int(root, "max_frame_size", 0);
    cfg.keepalive_interval_ms = 0;
    cfg.qpp = q;
    struct mh_side cl, sv;
    mh_side_init(&cl, &cfg, true, 0);
    uint32_t sid = 0;
    REQUIRE(mux_stream_open(cl.m, &sid) == 0);
    CHECK_EQ(sid, 3);
    const cJSON *w;
    struct mh_buf plain = {0};
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(root, "app_writes"))
    {
        uint8_t *data = NULL;
        long n = vec_hex(w->valuestring, &data);
        REQUIRE(n > 0);
        CHECK_EQ(mux_stream_write(cl.m, sid, data, (size_t)n), n);
        mh_buf_add(&plain, data, (size_t)n);
        free(data);
    }
    uint8_t *want = NULL;
    long want_len = vec_hex_field(root, "kcp_stream_bytes", &want);
    REQUIRE(want_len > 0);
    CHECK_EQ(cl.out.len, want_len);
    CHECK_MEM(cl.out.p, want, (size_t)want_len);

    for (uint64_t seed = 1; seed <= 4; seed++) {
        mh_side_init(&sv, &cfg, false, 0);
        sv.auto_read = true;
        sv.read_cap = (size_t)(3 + seed);
        CHECK_EQ(mh_feed(&sv, want, (size_t)want_len, seed == 1 ? 0 : SIZE_MAX, seed, 0),
                 want_len);
        CHECK_EQ(sv.rx.len, plain.len);
        CHECK_MEM(sv.rx.p, plain.p, plain.len);
        mh_side_free(&sv);
    }
    /* Without QPP on the receiver the payload is garbage (nothing on the wire says QPP). */
    struct mux_config plain_cfg = cfg;
    plain_cfg.qpp = NULL;
    mh_side_init(&sv, &plain_cfg, false, 0);
    sv.auto_read = true;
    CHECK_EQ(mh_feed(&sv, want, (size_t)want_len, 0, 0, 0), want_len);
    CHECK_EQ(sv.rx.len, plain.len);
    CHECK(memcmp(sv.rx.p, plain.p, plain.len) != 0);
    mh_side_free(&sv);
    free(plain.p);
    free(want);
    mh_side_free(&cl);
    qpp_free(q);
    cJSON_Delete(root);
}
