/* SPDX-License-Identifier: MIT */
/* Tests for the crypt layer: kcptun vectors, round trips, CRC and secure-mode rejection. */
#include "common/err.h"
#include "crypto/crypt.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1790000000000ull /* a fixed wall clock for the secure-mode tests */

/* Test randomness: either a fixed byte string repeated, or consecutive byte values from
 * |next|, or a seeded splitmix64 stream when |seed| is set. */
struct test_rng {
    const uint8_t *fixed; /* if set, every call returns these bytes */
    size_t fixed_len;     /* their count */
    uint8_t next;         /* counter mode: the next byte */
    uint64_t seed;        /* if nonzero: splitmix64 state */
};

static void test_rng_fill(void *user, uint8_t *buf, size_t len)
{
    struct test_rng *r = user;
    for (size_t i = 0; i < len; i++) {
        if (r->fixed) {
            buf[i] = r->fixed[i % r->fixed_len];
        } else if (r->seed) {
            r->seed += 0x9e3779b97f4a7c15u;
            uint64_t z = r->seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
            buf[i] = (uint8_t)(z ^ (z >> 31));
        } else {
            buf[i] = r->next++;
        }
    }
}

static const char *const kcp_methods[] = {"aes", "aes-128", "aes-192", "salsa20", "blowfish",
                                          "twofish", "cast5", "3des", "tea", "xtea", "xor",
                                          "sm4", "none"};
#define N_KCP_METHODS (sizeof(kcp_methods) / sizeof(kcp_methods[0]))

static const char *const password = "it's a secrect";

/* The secure-mode key of |password|, derived once (Argon2id is deliberately slow). */
static const uint8_t *secure_key(void)
{
    static uint8_t key[CRYPT_KEY_LEN];
    static bool done;
    if (!done && crypt_derive_secure_key(password, key) == 0)
        done = true;
    return key;
}

TEST(crypt_pbkdf2_vectors)
{
    cJSON *root = vec_load("pbkdf2.json");
    REQUIRE(root);
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vectors"))
    {
        uint8_t *want = NULL, got[CRYPT_KEY_LEN];
        REQUIRE(vec_hex_field(v, "derived_key_hex", &want) == CRYPT_KEY_LEN);
        CHECK_EQ(crypt_derive_key(vec_str(v, "password"), got), 0);
        CHECK_MEM(got, want, CRYPT_KEY_LEN);
        free(want);
        n++;
    }
    CHECK_EQ(n, 4);
    cJSON_Delete(root);
}

/* The xor method's table shows through when sealing an all-zero datagram with a zero nonce:
 * everything but the CRC field is the table itself. */
TEST(crypt_xor_table_vector)
{
    cJSON *root = vec_load("pbkdf2.json");
    REQUIRE(root);
    uint8_t *table = NULL;
    const cJSON *x = cJSON_GetObjectItem(root, "xor_table");
    REQUIRE(vec_hex_field(x, "table_hex", &table) == 1500);
    static const uint8_t zero = 0;
    struct test_rng rng = {.fixed = &zero, .fixed_len = 1};
    int err = 1;
    struct crypt *c = crypt_new("xor", vec_str(x, "password"), test_rng_fill, &rng, &err);
    CHECK_EQ(err, 0);
    if (c) {
        uint8_t buf[1500] = {0};
        CHECK_EQ(crypt_seal(c, buf, 1480, sizeof(buf), 0), 1500);
        CHECK_MEM(buf, table, 16);
        CHECK_MEM(buf + 20, table + 20, 1480);
    }
    crypt_free(c);
    free(table);
    cJSON_Delete(root);
}

/* Seals |pt|'s payload with |pt|'s nonce and expects |ct|; opens |ct| and expects |pt|. */
static void check_kcp_vector(struct crypt *c, const uint8_t *pt, const uint8_t *ct, size_t len,
                             const char *what)
{
    uint8_t buf[1600];
    memcpy(buf, pt, len);
    ssize_t n = crypt_seal(c, buf, len - 20, sizeof(buf), 0);
    CHECK_EQ(n, (ssize_t)len);
    if (memcmp(buf, ct, len) != 0)
        test_fail(__FILE__, __LINE__, "seal mismatch: %s len %zu", what, len);
    memcpy(buf, ct, len);
    const uint8_t *payload = NULL;
    n = crypt_open(c, buf, len, 0, &payload);
    CHECK_EQ(n, (ssize_t)len - 20);
    CHECK(payload == buf + 20);
    CHECK_MEM(buf, pt, len);
}

TEST(crypt_kcptun_vectors_all_methods)
{
    cJSON *root = vec_load("crypt.json");
    REQUIRE(root);
    uint8_t *nonce = NULL;
    REQUIRE(vec_hex_field(root, "nonce_hex", &nonce) == 16);
    const cJSON *m;
    int methods = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "methods"))
    {
        const char *name = vec_str(m, "method");
        struct test_rng rng = {.fixed = nonce, .fixed_len = 16};
        int err = 1;
        struct crypt *c = crypt_new(name, password, test_rng_fill, &rng, &err);
        CHECK_EQ(err, 0);
        REQUIRE(c);
        CHECK_EQ(crypt_head_len(c), 20);
        CHECK_EQ(crypt_tail_len(c), 0);
        CHECK(!crypt_is_authenticated(c));
        const cJSON *v;
        int lens = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "vectors"))
        {
            uint8_t *pt = NULL, *ct = NULL;
            long len = vec_hex_field(v, "plaintext_hex", &pt);
            REQUIRE(len >= 20 && vec_hex_field(v, "ciphertext_hex", &ct) == len);
            CHECK_MEM(pt, nonce, 16);
            check_kcp_vector(c, pt, ct, (size_t)len, name);
            free(pt);
            free(ct);
            lens++;
        }
        CHECK_EQ(lens, 4);
        CHECK_EQ(crypt_get_stats(c)->in_pkts, 4);
        CHECK_EQ(crypt_get_stats(c)->in_csum_errors, 0);
        crypt_free(c);
        methods++;
    }
    CHECK_EQ(methods, 13);
    free(nonce);
    cJSON_Delete(root);
}

/* Full kcp-go datagrams: the n-th datagram of a set used nonce bytes n*16 .. n*16+15. */
TEST(crypt_fec_packet_datagrams)
{
    cJSON *root = vec_load("fec_packets.json");
    REQUIRE(root);
    const cJSON *set;
    int sets = 0, grams = 0;
    cJSON_ArrayForEach(set, cJSON_GetObjectItem(root, "sets"))
    {
        struct test_rng rng = {0};
        long index = 0;
        struct crypt *c = crypt_new(vec_str(set, "crypt"), password, test_rng_fill, &rng, NULL);
        REQUIRE(c);
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(set, "datagrams"))
        {
            uint8_t *plain = NULL, *wire = NULL, buf[1500];
            long len = vec_hex_field(d, "decrypted_hex", &plain);
            REQUIRE(len >= 20 && len <= 1500 && vec_hex_field(d, "wire_hex", &wire) == len);
            CHECK_EQ(vec_int(d, "index", -1), index++);
            memcpy(buf + 20, plain + 20, (size_t)len - 20);
            CHECK_EQ(crypt_seal(c, buf, (size_t)len - 20, sizeof(buf), 0), len);
            CHECK_MEM(buf, wire, len);
            const uint8_t *payload;
            memcpy(buf, wire, (size_t)len);
            CHECK_EQ(crypt_open(c, buf, (size_t)len, 0, &payload), len - 20);
            CHECK_MEM(buf, plain, len);
            free(plain);
            free(wire);
            grams++;
        }
        crypt_free(c);
        sets++;
    }
    CHECK_EQ(sets, 7);
    CHECK_EQ(grams, 15 + 13 + 7 + 3 + 2 + 4 + 4);
    cJSON_Delete(root);
}

/* Sender and receiver objects of |method| sharing one key (secure: client and server). */
static void make_pair(const char *method, struct test_rng *r1, struct test_rng *r2,
                      struct crypt **tx, struct crypt **rx)
{
    uint8_t key[CRYPT_KEY_LEN];
    bool secure = strcmp(method, CRYPT_SECURE_METHOD) == 0;
    if (secure)
        memcpy(key, secure_key(), sizeof(key));
    else
        crypt_derive_key(password, key);
    *tx = crypt_new_key(method, key, test_rng_fill, r1, NULL);
    *rx = crypt_new_key(method, key, test_rng_fill, r2, NULL);
    if (*rx)
        crypt_set_role(*rx, CRYPT_ROLE_SERVER);
}

TEST(crypt_roundtrip_every_method_every_length)
{
    const char *const *names = crypt_method_names();
    int count = 0;
    for (; *names; names++, count++) {
        struct test_rng r1 = {.seed = 11}, r2 = {.seed = 22}, data = {.seed = 33};
        struct crypt *tx, *rx;
        make_pair(*names, &r1, &r2, &tx, &rx);
        REQUIRE(tx && rx);
        size_t head = crypt_head_len(tx), tail = crypt_tail_len(tx);
        size_t min = head + tail > 20 ? head + tail : 20;
        int bad = 0;
        for (size_t len = min; len <= 1500 && bad < 3; len++) {
            uint8_t buf[1500], want[1500];
            size_t plen = len - head - tail;
            test_rng_fill(&data, want, plen);
            memcpy(buf + head, want, plen);
            ssize_t n = crypt_seal(tx, buf, plen, len, NOW_MS);
            const uint8_t *payload = NULL;
            ssize_t m = n == (ssize_t)len ? crypt_open(rx, buf, len, NOW_MS, &payload) : -100;
            if (m != (ssize_t)plen || memcmp(payload, want, plen) != 0) {
                test_fail(__FILE__, __LINE__, "%s: len %zu: seal %zd open %zd", *names, len, n,
                          m);
                bad++;
            }
        }
        /* One byte too many for the capacity or for the 1500-byte limit. */
        uint8_t big[1600] = {0};
        CHECK_EQ(crypt_seal(tx, big, 100, head + tail + 99, NOW_MS), ERR_TOOBIG);
        CHECK_EQ(crypt_seal(tx, big, 1501 - head - tail, sizeof(big), NOW_MS), ERR_TOOBIG);
        crypt_free(tx);
        crypt_free(rx);
    }
    CHECK_EQ(count, 16);
}

TEST(crypt_kcptun_rejects_corruption)
{
    for (size_t i = 0; i < N_KCP_METHODS; i++) {
        struct test_rng r1 = {.seed = 5}, r2 = {.seed = 6};
        struct crypt *tx, *rx;
        make_pair(kcp_methods[i], &r1, &r2, &tx, &rx);
        REQUIRE(tx && rx);
        uint8_t sealed[100], buf[100];
        for (size_t k = 0; k < sizeof(sealed); k++)
            sealed[k] = (uint8_t)(k * 7);
        REQUIRE(crypt_seal(tx, sealed, 80, sizeof(sealed), 0) == 100);
        const uint8_t *payload;
        /* Every byte from the CRC on is covered: flipping it must fail the CRC. */
        int accepted = 0;
        for (size_t pos = 16; pos < sizeof(buf); pos++) {
            memcpy(buf, sealed, sizeof(buf));
            buf[pos] ^= 0x01;
            if (crypt_open(rx, buf, sizeof(buf), 0, &payload) != ERR_AUTH)
                accepted++;
        }
        CHECK_EQ(accepted, 0);
        CHECK_EQ(crypt_get_stats(rx)->in_csum_errors, 84);
        /* Wrong key: a different password looks like garbage. */
        struct crypt *other = crypt_new(kcp_methods[i], "another key", test_rng_fill, &r2, NULL);
        REQUIRE(other);
        memcpy(buf, sealed, sizeof(buf));
        int rc = (int)crypt_open(other, buf, sizeof(buf), 0, &payload);
        if (strcmp(kcp_methods[i], "none") == 0)
            CHECK_EQ(rc, 80);
        else
            CHECK_EQ(rc, ERR_AUTH);
        crypt_free(other);
        for (size_t len = 0; len < 20; len++)
            CHECK_EQ(crypt_open(rx, buf, len, 0, &payload), ERR_AUTH);
        CHECK_EQ(crypt_get_stats(rx)->in_short, 20);
        memcpy(buf, sealed, sizeof(buf));
        CHECK_EQ(crypt_open(rx, buf, sizeof(buf), 0, &payload), 80);
        CHECK_EQ(crypt_get_stats(rx)->in_pkts, 1);
        crypt_free(tx);
        crypt_free(rx);
    }
}

TEST(crypt_unknown_method_is_an_error)
{
    struct test_rng rng = {0};
    int err = 0;
    CHECK(crypt_new("aes-512", password, test_rng_fill, &rng, &err) == NULL);
    CHECK_EQ(err, ERR_INVAL);
    CHECK(crypt_new(NULL, password, test_rng_fill, &rng, &err) == NULL);
    CHECK_EQ(err, ERR_INVAL);
    char msg[300];
    crypt_error("aes-512", ERR_INVAL, msg, sizeof(msg));
    CHECK(strstr(msg, "unknown") && strstr(msg, "'aes-512'") && strstr(msg, "xtea"));
    CHECK(!crypt_method_is_known("AES"));
    CHECK(crypt_method_is_known("sm4"));
    CHECK(crypt_method_is_known(CRYPT_SECURE_METHOD));
    CHECK(strcmp(crypt_method_names()[0], "aes") == 0);
    crypt_free(NULL);
}

/* ---- secure mode ---------------------------------------------------------------------- */

struct peer {
    struct test_rng rng;
    struct crypt *c;
};

static void peer_init(struct peer *p, uint64_t seed, enum crypt_role role)
{
    p->rng = (struct test_rng){.seed = seed};
    p->c = crypt_new_key(CRYPT_SECURE_METHOD, secure_key(), test_rng_fill, &p->rng, NULL);
    if (p->c)
        crypt_set_role(p->c, role);
}

/* Seals |plen| pattern bytes from |p| at time |t|; returns the datagram length. */
static size_t seal_pattern(struct peer *p, uint8_t *buf, size_t plen, uint64_t t)
{
    for (size_t i = 0; i < plen; i++)
        buf[CRYPT_SECURE_HEAD_LEN + i] = (uint8_t)(i * 13 + 1);
    ssize_t n = crypt_seal(p->c, buf, plen, 1500, t);
    return n < 0 ? 0 : (size_t)n;
}

static ssize_t open_copy(struct crypt *c, const uint8_t *dgram, size_t len, uint64_t now)
{
    uint8_t buf[1500];
    const uint8_t *payload;
    memcpy(buf, dgram, len);
    return crypt_open(c, buf, len, now, &payload);
}

TEST(crypt_secure_key_and_shape)
{
    uint8_t k1[CRYPT_KEY_LEN], k2[CRYPT_KEY_LEN];
    CHECK_EQ(crypt_derive_secure_key(password, k1), 0);
    CHECK_MEM(k1, secure_key(), CRYPT_KEY_LEN);
    CHECK_EQ(crypt_derive_secure_key("it's a secrecu", k2), 0);
    CHECK(memcmp(k1, k2, CRYPT_KEY_LEN) != 0);
    struct peer cl;
    peer_init(&cl, 1, CRYPT_ROLE_CLIENT);
    REQUIRE(cl.c);
    CHECK(crypt_is_authenticated(cl.c));
    CHECK_EQ(crypt_head_len(cl.c), 48);
    CHECK_EQ(crypt_tail_len(cl.c), 16);
    CHECK(strcmp(crypt_method(cl.c), "xsalsa20-poly1305") == 0);
    crypt_free(cl.c);
}

TEST(crypt_secure_every_bit_flip_rejected)
{
    static const size_t plens[] = {0, 37, 200};
    struct peer cl, sv;
    peer_init(&cl, 101, CRYPT_ROLE_CLIENT);
    peer_init(&sv, 202, CRYPT_ROLE_SERVER);
    REQUIRE(cl.c && sv.c);
    for (size_t k = 0; k < 3; k++) {
        uint8_t d[1500];
        size_t len = seal_pattern(&cl, d, plens[k], NOW_MS);
        REQUIRE(len == plens[k] + 64);
        int accepted = 0;
        for (size_t bit = 0; bit < len * 8; bit++) {
            uint8_t f[1500];
            memcpy(f, d, len);
            f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (open_copy(sv.c, f, len, NOW_MS) != ERR_AUTH)
                accepted++;
        }
        CHECK_EQ(accepted, 0);
        /* Truncated and extended copies fail too. */
        for (size_t l = 0; l < len; l++)
            CHECK_EQ(open_copy(sv.c, d, l, NOW_MS), ERR_AUTH);
        uint8_t ext[1500];
        memcpy(ext, d, len);
        ext[len] = 0;
        CHECK_EQ(open_copy(sv.c, ext, len + 1, NOW_MS), ERR_AUTH);
        /* None of that touched the replay state: the genuine datagram passes, once. */
        CHECK_EQ(open_copy(sv.c, d, len, NOW_MS), (ssize_t)plens[k]);
        CHECK_EQ(open_copy(sv.c, d, len, NOW_MS), ERR_AUTH);
    }
    const struct crypt_stats *st = crypt_get_stats(sv.c);
    CHECK_EQ(st->in_pkts, 3);
    CHECK_EQ(st->in_replays, 3);
    CHECK_EQ(st->in_short, 3 * 64);
    crypt_free(cl.c);
    crypt_free(sv.c);
}

TEST(crypt_secure_payload_roundtrip_and_wrong_key)
{
    struct peer cl, sv;
    peer_init(&cl, 7, CRYPT_ROLE_CLIENT);
    peer_init(&sv, 8, CRYPT_ROLE_SERVER);
    REQUIRE(cl.c && sv.c);
    uint8_t d[1500];
    size_t len = seal_pattern(&cl, d, 100, NOW_MS);
    const uint8_t *payload = NULL;
    uint8_t buf[1500];
    memcpy(buf, d, len);
    CHECK_EQ(crypt_open(sv.c, buf, len, NOW_MS, &payload), 100);
    CHECK(payload == buf + 48);
    CHECK_EQ(payload[0], 1);
    CHECK_EQ(payload[99], (uint8_t)(99 * 13 + 1));
    /* The server answers; the client accepts it. */
    len = seal_pattern(&sv, d, 10, NOW_MS);
    CHECK_EQ(open_copy(cl.c, d, len, NOW_MS), 10);
    /* A kcptun-key object, or a secure object with another password, rejects it. */
    uint8_t other_key[CRYPT_KEY_LEN];
    CHECK_EQ(crypt_derive_key(password, other_key), 0);
    struct crypt *o = crypt_new_key(CRYPT_SECURE_METHOD, other_key, test_rng_fill, &cl.rng, NULL);
    REQUIRE(o);
    len = seal_pattern(&cl, d, 10, NOW_MS);
    CHECK_EQ(open_copy(o, d, len, NOW_MS), ERR_AUTH);
    CHECK_EQ(crypt_get_stats(o)->in_auth_errors, 1);
    crypt_free(o);
    crypt_free(cl.c);
    crypt_free(sv.c);
}

/* The listener-level object sees every datagram, whatever address it came from, so a
 * captured datagram resent from elsewhere is a replay like any other. */
TEST(crypt_secure_replay_from_any_address_rejected)
{
    struct peer a, b, sv;
    peer_init(&a, 1001, CRYPT_ROLE_CLIENT);
    peer_init(&b, 1002, CRYPT_ROLE_CLIENT);
    peer_init(&sv, 1003, CRYPT_ROLE_SERVER);
    REQUIRE(a.c && b.c && sv.c);
    uint8_t da[20][1500], db[20][1500];
    size_t la[20], lb[20];
    for (int i = 0; i < 20; i++) {
        la[i] = seal_pattern(&a, da[i], (size_t)(10 + i), NOW_MS + (uint64_t)i);
        lb[i] = seal_pattern(&b, db[i], (size_t)(30 + i), NOW_MS + (uint64_t)i);
        CHECK_EQ(open_copy(sv.c, da[i], la[i], NOW_MS + (uint64_t)i), 10 + i);
        CHECK_EQ(open_copy(sv.c, db[i], lb[i], NOW_MS + (uint64_t)i), 30 + i);
    }
    /* Replayed later, in any order, from "another address": all rejected. */
    for (int i = 19; i >= 0; i--) {
        CHECK_EQ(open_copy(sv.c, da[i], la[i], NOW_MS + 5000), ERR_AUTH);
        CHECK_EQ(open_copy(sv.c, db[i], lb[i], NOW_MS + 5000), ERR_AUTH);
    }
    CHECK_EQ(crypt_get_stats(sv.c)->in_replays, 40);
    /* Reflection: a client's own datagram sent back to it, or to another client. */
    CHECK_EQ(open_copy(a.c, da[0], la[0], NOW_MS), ERR_AUTH);
    CHECK_EQ(open_copy(b.c, da[1], la[1], NOW_MS), ERR_AUTH);
    CHECK_EQ(crypt_get_stats(b.c)->in_replays, 1);
    /* A restarted server (empty table, started at NOW_MS + 6000) refuses what was captured
     * before it started, even though it is within the time tolerance, and takes what is
     * sealed after. */
    struct peer sv2;
    peer_init(&sv2, 1004, CRYPT_ROLE_SERVER);
    REQUIRE(sv2.c);
    crypt_set_start(sv2.c, NOW_MS + 6000);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(open_copy(sv2.c, da[i], la[i], NOW_MS + 6000), ERR_AUTH);
    CHECK_EQ(crypt_get_stats(sv2.c)->in_stale, 20);
    uint8_t d[1500];
    size_t len = seal_pattern(&a, d, 5, NOW_MS + 6000);
    CHECK_EQ(open_copy(sv2.c, d, len, NOW_MS + 6010), 5);
    CHECK_EQ(open_copy(sv2.c, d, len, NOW_MS + 6020), ERR_AUTH);
    /* Once a sender is known, its in-window datagrams are judged by the bitmap alone. */
    CHECK_EQ(open_copy(sv2.c, da[19], la[19], NOW_MS + 6030), 29);
    crypt_free(sv2.c);
    crypt_free(a.c);
    crypt_free(b.c);
    crypt_free(sv.c);
}

TEST(crypt_secure_new_sender_time_tolerance)
{
    struct peer sv;
    peer_init(&sv, 77, CRYPT_ROLE_SERVER);
    REQUIRE(sv.c);
    static const struct {
        int64_t skew_ms;
        bool ok;
    } cases[] = {{-120001, false}, {-120000, true}, {0, true},
                 {120000, true},   {120001, false}, {-3600000, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer cl;
        peer_init(&cl, 500 + i, CRYPT_ROLE_CLIENT);
        REQUIRE(cl.c);
        uint8_t d[1500];
        size_t len = seal_pattern(&cl, d, 1, (uint64_t)((int64_t)NOW_MS + cases[i].skew_ms));
        CHECK_EQ(open_copy(sv.c, d, len, NOW_MS), cases[i].ok ? 1 : ERR_AUTH);
        crypt_free(cl.c);
    }
    CHECK_EQ(crypt_get_stats(sv.c)->in_stale, 3);
    crypt_free(sv.c);
}

TEST(crypt_secure_out_of_order_window)
{
    enum { N = 300, FAR = 2400 };
    struct peer cl, sv;
    peer_init(&cl, 31, CRYPT_ROLE_CLIENT);
    peer_init(&sv, 32, CRYPT_ROLE_SERVER);
    REQUIRE(cl.c && sv.c);
    static uint8_t d[N][128];
    size_t len[N];
    for (int i = 0; i < N; i++)
        len[i] = seal_pattern(&cl, d[i], 20, NOW_MS);
    /* Deliver in a scrambled order (odd stride over N): each accepted exactly once. */
    int ok = 0, again = 0;
    for (int k = 0; k < N; k++) {
        int i = (k * 7 + 3) % N;
        ok += open_copy(sv.c, d[i], len[i], NOW_MS) == 20;
        again += open_copy(sv.c, d[i], len[i], NOW_MS) == ERR_AUTH;
    }
    CHECK_EQ(ok, N);
    CHECK_EQ(again, N);
    /* Jump far ahead: counters more than the window behind are refused even if new. */
    uint8_t late[128], early[128], mid[128], top[128];
    size_t l_late = 0, l_early = 0, l_mid = 0, l_top = 0;
    for (int i = N; i <= FAR; i++) {
        uint8_t tmp[128];
        size_t l = seal_pattern(&cl, tmp, 20, NOW_MS);
        if (i == N) {
            memcpy(early, tmp, l);
            l_early = l;
        } else if (i == FAR - 1900) {
            memcpy(mid, tmp, l);
            l_mid = l;
        } else if (i == FAR - 1) {
            memcpy(late, tmp, l);
            l_late = l;
        } else if (i == FAR) {
            memcpy(top, tmp, l);
            l_top = l;
        }
    }
    CHECK_EQ(open_copy(sv.c, top, l_top, NOW_MS), 20);
    CHECK_EQ(open_copy(sv.c, early, l_early, NOW_MS), ERR_AUTH);
    CHECK_EQ(open_copy(sv.c, mid, l_mid, NOW_MS), 20);
    CHECK_EQ(open_copy(sv.c, late, l_late, NOW_MS), 20);
    CHECK_EQ(open_copy(sv.c, late, l_late, NOW_MS), ERR_AUTH);
    crypt_free(cl.c);
    crypt_free(sv.c);
}

/* The table holds CRYPT_SECURE_MAX_SENDERS live senders; an entry goes only when no datagram
 * of its sender can pass the time test any more, so replays stay out after eviction too. */
TEST(crypt_secure_sender_table_bound_and_eviction)
{
    enum { MAX = CRYPT_SECURE_MAX_SENDERS };
    struct peer sv;
    peer_init(&sv, 9, CRYPT_ROLE_SERVER);
    REQUIRE(sv.c);
    uint8_t first[1500];
    size_t first_len = 0;
    int ok = 0;
    for (int i = 0; i < MAX; i++) {
        struct peer cl;
        peer_init(&cl, 10000 + (uint64_t)i, CRYPT_ROLE_CLIENT);
        REQUIRE(cl.c);
        uint8_t d[1500];
        size_t len = seal_pattern(&cl, d, 4, NOW_MS);
        if (i == 0) {
            memcpy(first, d, len);
            first_len = len;
        }
        ok += open_copy(sv.c, d, len, NOW_MS) == 4;
        crypt_free(cl.c);
    }
    CHECK_EQ(ok, MAX);
    struct peer extra;
    peer_init(&extra, 99999, CRYPT_ROLE_CLIENT);
    REQUIRE(extra.c);
    uint8_t d[1500];
    size_t len = seal_pattern(&extra, d, 4, NOW_MS + 1000);
    CHECK_EQ(open_copy(sv.c, d, len, NOW_MS + 1000), ERR_LIMIT);
    CHECK_EQ(crypt_get_stats(sv.c)->in_table_full, 1);
    /* Just past the tolerance the old entries may go, and the new sender gets in. */
    uint64_t later = NOW_MS + CRYPT_SECURE_TOLERANCE_MS + 1;
    len = seal_pattern(&extra, d, 4, later);
    CHECK_EQ(open_copy(sv.c, d, len, later), 4);
    /* The first sender's datagram, replayed now that its entry is gone: stale. */
    CHECK_EQ(open_copy(sv.c, first, first_len, later), ERR_AUTH);
    CHECK_EQ(crypt_get_stats(sv.c)->in_stale, 1);
    crypt_free(extra.c);
    crypt_free(sv.c);
}

/* docs/secure-mode.md's known answers, checked against an independent Python implementation
 * (Argon2id from OpenSSL, XSalsa20 written from the spec, Poly1305 from OpenSSL). */
TEST(crypt_secure_known_answer)
{
    static const char *const want_hex[2] = {
        "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0987e73d17dba3b05c84f139c45067479e31"
        "f18d3d5a0179d1cf7233360f705f968b877c8f8a76aee7d40c0634",
        "202122232425262728292a2b2c2d2e2f3031323334353637afec4746a3a58735b7adfaa4d81656bd4042"
        "d4f8d385439e1f93fe4f3a3249e139d4b36d6427b93065a374bccb",
    };
    uint8_t *want_key = NULL;
    REQUIRE(vec_hex("2c49232c9fe82cf5f532a0903eaeffe7b26a9d96de14c517baa8adbe65f8e1a5",
                    &want_key) == CRYPT_KEY_LEN);
    CHECK_MEM(secure_key(), want_key, CRYPT_KEY_LEN);
    free(want_key);
    struct test_rng rng = {0}; /* sender id = bytes 00..07, then nonces 08..1f, 20..37 */
    struct crypt *c = crypt_new_key(CRYPT_SECURE_METHOD, secure_key(), test_rng_fill, &rng, NULL);
    struct test_rng rng2 = {.seed = 3};
    struct crypt *sv = crypt_new_key(CRYPT_SECURE_METHOD, secure_key(), test_rng_fill, &rng2,
                                     NULL);
    REQUIRE(c && sv);
    crypt_set_role(sv, CRYPT_ROLE_SERVER);
    for (int i = 0; i < 2; i++) {
        uint8_t buf[100], *want = NULL;
        memcpy(buf + CRYPT_SECURE_HEAD_LEN, "hello", 5);
        REQUIRE(vec_hex(want_hex[i], &want) == 69);
        CHECK_EQ(crypt_seal(c, buf, 5, sizeof(buf), NOW_MS), 69);
        CHECK_MEM(buf, want, 69);
        const uint8_t *payload;
        CHECK_EQ(crypt_open(sv, buf, 69, NOW_MS, &payload), 5);
        CHECK_MEM(payload, "hello", 5);
        free(want);
    }
    crypt_free(c);
    crypt_free(sv);
}

TEST(crypt_rng_fast_generator)
{
    struct crypt_rng *a = crypt_rng_new(), *b = crypt_rng_new();
    REQUIRE(a && b);
    uint8_t x[64], y[64], z[64], zero[64] = {0};
    crypt_rng_fill(a, x, sizeof(x));
    crypt_rng_fill(a, y, sizeof(y));
    crypt_rng_fill(b, z, sizeof(z));
    CHECK(memcmp(x, y, sizeof(x)) != 0); /* the key moves on after every call */
    CHECK(memcmp(x, z, sizeof(x)) != 0); /* independent seeds */
    CHECK(memcmp(x, zero, sizeof(x)) != 0);
    /* It drives a crypt object like any rng. */
    struct crypt *c = crypt_new_key("aes", x, crypt_rng_fill, a, NULL);
    REQUIRE(c);
    uint8_t d1[100] = {0}, d2[100] = {0};
    CHECK_EQ(crypt_seal(c, d1, 80, sizeof(d1), 0), 100);
    CHECK_EQ(crypt_seal(c, d2, 80, sizeof(d2), 0), 100);
    CHECK(memcmp(d1, d2, 16) != 0);
    crypt_free(c);
    crypt_rng_free(a);
    crypt_rng_free(b);
    crypt_rng_free(NULL);
}

/* ---- newer kcptun methods: aes-128-gcm and null ---------------------------------------- */

/* Every datagram of the aes-128-gcm vectors (made by kcp-go v5.6.66) re-seals byte for byte
 * from its plaintext and nonce, and opens back to that plaintext; the tampered one fails. */
TEST(crypt_gcm_vectors_seal_and_open)
{
    cJSON *root = vec_load("newest/aes128gcm.json");
    REQUIRE(root);
    const cJSON *cs;
    int cases = 0, dgrams = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(root, "cases"))
    {
        const char *key = vec_str(cs, "key");
        REQUIRE(key);
        uint8_t dk[CRYPT_KEY_LEN], *want_dk = NULL;
        REQUIRE(vec_hex_field(cs, "pbkdf2_sha1_4096_salt_kcp-go", &want_dk) == CRYPT_KEY_LEN);
        CHECK_EQ(crypt_derive_key(key, dk), 0);
        CHECK_MEM(dk, want_dk, CRYPT_KEY_LEN);
        free(want_dk);
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(cs, "datagrams"))
        {
            uint8_t *dgram = NULL, *nonce = NULL, *plain = NULL;
            long dlen = vec_hex_field(d, "datagram", &dgram);
            long nlen = vec_hex_field(d, "nonce", &nonce);
            long plen = vec_hex_field(d, "plaintext", &plain);
            REQUIRE(dlen > 0 && nlen == 12 && plen >= 0);
            CHECK_EQ(dlen, plen + 28);
            struct test_rng rng = {.fixed = nonce, .fixed_len = 12};
            int err = 0;
            struct crypt *c = crypt_new_key("aes-128-gcm", dk, test_rng_fill, &rng, &err);
            REQUIRE(c);
            CHECK_EQ(crypt_head_len(c), 12);
            CHECK_EQ(crypt_tail_len(c), 16);
            CHECK(crypt_is_authenticated(c));
            uint8_t buf[1600];
            memcpy(buf + 12, plain, (size_t)plen);
            CHECK_EQ(crypt_seal(c, buf, (size_t)plen, sizeof(buf), NOW_MS), dlen);
            CHECK_MEM(buf, dgram, (size_t)dlen);
            const uint8_t *pl = NULL;
            memcpy(buf, dgram, (size_t)dlen);
            CHECK_EQ(crypt_open(c, buf, (size_t)dlen, NOW_MS, &pl), plen);
            CHECK(pl == buf + 12);
            CHECK_MEM(pl, plain, (size_t)plen);
            uint8_t *tampered = NULL;
            long tlen = vec_hex_field(cs, "tampered", &tampered);
            if (tlen > 0) {
                CHECK_EQ(crypt_open(c, tampered, (size_t)tlen, NOW_MS, &pl), ERR_AUTH);
                CHECK_EQ(crypt_get_stats(c)->in_csum_errors, 1);
            }
            free(tampered);
            /* Shorter than nonce + tag: dropped and counted as short. */
            CHECK_EQ(crypt_open(c, buf, 27, NOW_MS, &pl), ERR_AUTH);
            CHECK_EQ(crypt_get_stats(c)->in_short, 1);
            crypt_free(c);
            free(dgram);
            free(nonce);
            free(plain);
            dgrams++;
        }
        cases++;
    }
    CHECK_EQ(cases, 5);
    CHECK_EQ(dgrams, 29);
    cJSON_Delete(root);
}

/* The null method has no crypt layer: seal and open leave the bytes alone, no header. */
TEST(crypt_null_is_bare)
{
    cJSON *root = vec_load("newest/null_crypt.json");
    REQUIRE(root);
    uint8_t *dgram = NULL;
    long n = vec_hex(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "datagrams"), 0)->valuestring,
                     &dgram);
    REQUIRE(n == 65);
    int err = 0;
    struct test_rng rng = {.seed = 1};
    struct crypt *c = crypt_new("null", "it's a secrect", test_rng_fill, &rng, &err);
    REQUIRE(c);
    CHECK_EQ(crypt_head_len(c), 0);
    CHECK_EQ(crypt_tail_len(c), 0);
    CHECK(!crypt_is_authenticated(c));
    uint8_t buf[128];
    memcpy(buf, dgram, (size_t)n);
    CHECK_EQ(crypt_seal(c, buf, (size_t)n, sizeof(buf), NOW_MS), n);
    CHECK_MEM(buf, dgram, (size_t)n);
    const uint8_t *pl = NULL;
    CHECK_EQ(crypt_open(c, buf, (size_t)n, NOW_MS, &pl), n);
    CHECK(pl == buf);
    CHECK_EQ(crypt_open(c, buf, 0, NOW_MS, &pl), 0);
    CHECK_EQ(crypt_seal(c, buf, 1501, 2000, NOW_MS), ERR_TOOBIG);
    crypt_free(c);
    free(dgram);
    cJSON_Delete(root);
}

/* The mismatch probe names the method a datagram opens with under the key, else nothing. */
TEST(crypt_probe_names_the_method)
{
    struct crypt_probe *p = crypt_probe_new(password);
    REQUIRE(p);
    const char *const *names = crypt_method_names();
    int checked = 0;
    for (; *names; names++) {
        if (strcmp(*names, CRYPT_SECURE_METHOD) == 0)
            continue;
        struct test_rng r = {.seed = 77};
        struct crypt *tx = crypt_new(*names, password, test_rng_fill, &r, NULL);
        REQUIRE(tx);
        uint8_t buf[200];
        size_t head = crypt_head_len(tx);
        /* a KCP PUSH with 40 bytes of data, as a peer's first datagram */
        uint8_t kcp[64] = {0x11, 0x22, 0x33, 0x44, 81, 0, 0, 1};
        kcp[20] = 40;
        memcpy(buf + head, kcp, sizeof(kcp));
        ssize_t n = crypt_seal(tx, buf, sizeof(kcp), sizeof(buf), NOW_MS);
        REQUIRE(n > 0);
        const char *got = crypt_probe_identify(p, buf, (size_t)n);
        if (!got || strcmp(got, *names) != 0)
            test_fail(__FILE__, __LINE__, "sealed with %s, probe says %s", *names,
                      got ? got : "(none)");
        /* the same datagram under another key opens with nothing */
        struct crypt_probe *other = crypt_probe_new("a different key");
        REQUIRE(other);
        got = crypt_probe_identify(other, buf, (size_t)n);
        if (strcmp(*names, "none") == 0 || strcmp(*names, "null") == 0)
            CHECK(got != NULL); /* no key involved */
        else if (got)
            test_fail(__FILE__, __LINE__, "%s under another key: probe says %s", *names, got);
        crypt_probe_free(other);
        crypt_free(tx);
        checked++;
    }
    CHECK(checked >= 10);
    uint8_t junk[100];
    memset(junk, 0xA5, sizeof(junk));
    CHECK(crypt_probe_identify(p, junk, sizeof(junk)) == NULL);
    crypt_probe_free(p);
}
