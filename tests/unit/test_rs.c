/* SPDX-License-Identifier: MIT */
/* Tests for the Reed-Solomon codec: klauspost vectors, an independent reference, erasures. */
#include "common/err.h"
#include "fec/rs.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdlib.h>
#include <string.h>

/* Independent GF(2^8) (poly 0x11D) arithmetic, written from the field definition, to check the
 * ISA-L based codec for shard counts the vectors do not cover. */
struct ref_gf {
    uint8_t exp[512];
    uint8_t log[256];
};

static void ref_init(struct ref_gf *g)
{
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        g->exp[i] = (uint8_t)x;
        g->log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11d;
    }
    for (int i = 255; i < 512; i++)
        g->exp[i] = g->exp[i - 255];
}

static uint8_t ref_mul(const struct ref_gf *g, uint8_t a, uint8_t b)
{
    if (!a || !b)
        return 0;
    return g->exp[g->log[a] + g->log[b]];
}

static uint8_t ref_inv(const struct ref_gf *g, uint8_t a)
{
    return g->exp[255 - g->log[a]];
}

/* Parity rows (ps x ds) of klauspost's matrix by Gauss-Jordan on [T | I]. */
static void ref_parity_rows(const struct ref_gf *g, int ds, int ps, uint8_t *out)
{
    int w = 2 * ds;
    uint8_t *aug = calloc((size_t)ds * (size_t)w, 1);
    for (int r = 0; r < ds; r++) {
        uint8_t p = 1;
        for (int c = 0; c < ds; c++) {
            aug[r * w + c] = p;
            p = ref_mul(g, p, (uint8_t)r);
        }
        aug[r * w + ds + r] = 1;
    }
    for (int c = 0; c < ds; c++) {
        int piv = c;
        while (aug[piv * w + c] == 0)
            piv++;
        for (int k = 0; k < w; k++) {
            uint8_t t = aug[c * w + k];
            aug[c * w + k] = aug[piv * w + k];
            aug[piv * w + k] = t;
        }
        uint8_t iv = ref_inv(g, aug[c * w + c]);
        for (int k = 0; k < w; k++)
            aug[c * w + k] = ref_mul(g, aug[c * w + k], iv);
        for (int r = 0; r < ds; r++) {
            uint8_t f = aug[r * w + c];
            if (r == c || !f)
                continue;
            for (int k = 0; k < w; k++)
                aug[r * w + k] ^= ref_mul(g, f, aug[c * w + k]);
        }
    }
    for (int i = 0; i < ps; i++) {
        int r = ds + i;
        for (int c = 0; c < ds; c++) {
            uint8_t acc = 0, p = 1;
            for (int k = 0; k < ds; k++) {
                acc ^= ref_mul(g, p, aug[k * w + ds + c]);
                p = ref_mul(g, p, (uint8_t)r);
            }
            out[i * ds + c] = acc;
        }
    }
    free(aug);
}

/* Deterministic byte source for shard contents. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

struct stripe {
    int ds, ps;
    size_t len;
    uint8_t **shards; /* ds + ps buffers of len bytes */
    uint8_t **orig;   /* pristine copies */
};

static bool stripe_new(struct stripe *st, struct rs *rs, size_t len, uint32_t seed)
{
    st->ds = rs_data_shards(rs);
    st->ps = rs_parity_shards(rs);
    st->len = len;
    int total = st->ds + st->ps;
    st->shards = calloc((size_t)total, sizeof(*st->shards));
    st->orig = calloc((size_t)total, sizeof(*st->orig));
    if (!st->shards || !st->orig)
        return false;
    for (int i = 0; i < total; i++) {
        st->shards[i] = malloc(len ? len : 1);
        st->orig[i] = malloc(len ? len : 1);
        if (!st->shards[i] || !st->orig[i])
            return false;
        for (size_t b = 0; b < len && i < st->ds; b++)
            st->shards[i][b] = (uint8_t)lcg(&seed);
    }
    if (rs_encode(rs, (const uint8_t *const *)st->shards, st->shards + st->ds, len) != 0)
        return false;
    for (int i = 0; i < total; i++)
        memcpy(st->orig[i], st->shards[i], len);
    return true;
}

static void stripe_free(struct stripe *st)
{
    for (int i = 0; st->shards && i < st->ds + st->ps; i++) {
        free(st->shards[i]);
        free(st->orig[i]);
    }
    free(st->shards);
    free(st->orig);
}

/* Erases the shards in bitmask |erased| (garbage in data buffers), reconstructs and checks
 * the data shards. Returns false on a mismatch. */
static bool erase_and_check(struct rs *rs, struct stripe *st, const bool *erased)
{
    bool present[RS_MAX_SHARDS];
    int total = st->ds + st->ps;
    for (int i = 0; i < total; i++) {
        present[i] = !erased[i];
        if (erased[i])
            memset(st->shards[i], 0xA5, st->len);
    }
    if (rs_reconstruct_data(rs, st->shards, present, st->len) != 0)
        return false;
    bool ok = true;
    for (int i = 0; i < st->ds; i++)
        if (memcmp(st->shards[i], st->orig[i], st->len) != 0)
            ok = false;
    for (int i = 0; i < total; i++)
        memcpy(st->shards[i], st->orig[i], st->len);
    return ok;
}

/* Tries every erasure subset of size <= max_erase (recursive enumeration). */
static int erase_all(struct rs *rs, struct stripe *st, bool *erased, int from, int left)
{
    int bad = erase_and_check(rs, st, erased) ? 0 : 1;
    for (int i = from; i < st->ds + st->ps && left > 0; i++) {
        erased[i] = true;
        bad += erase_all(rs, st, erased, i + 1, left - 1);
        erased[i] = false;
    }
    return bad;
}

TEST(rs_vectors_match_klauspost)
{
    cJSON *root = vec_load("reedsolomon.json");
    REQUIRE(root);
    const cJSON *vecs = cJSON_GetObjectItem(root, "vectors");
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vecs)
    {
        int ds = (int)vec_int(v, "data_shards", 0), ps = (int)vec_int(v, "parity_shards", 0);
        size_t len = (size_t)vec_int(v, "shard_len", 0);
        struct rs *rs = rs_new(ds, ps);
        REQUIRE(rs);
        const cJSON *rows = cJSON_GetObjectItem(v, "parity_matrix");
        for (int i = 0; i < ps; i++)
            for (int j = 0; j < ds; j++)
                CHECK_EQ(rs_parity_coef(rs, i, j),
                         cJSON_GetArrayItem(cJSON_GetArrayItem(rows, i), j)->valueint);

        uint8_t *data[RS_MAX_SHARDS] = {0}, *want[RS_MAX_SHARDS] = {0}, *par[RS_MAX_SHARDS];
        for (int j = 0; j < ds; j++) {
            const char *hex = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "data_hex"), j)->valuestring;
            CHECK_EQ(vec_hex(hex, &data[j]), (long)len);
        }
        for (int i = 0; i < ps; i++) {
            const char *hex =
                cJSON_GetArrayItem(cJSON_GetObjectItem(v, "parity_hex"), i)->valuestring;
            CHECK_EQ(vec_hex(hex, &want[i]), (long)len);
            par[i] = malloc(len);
        }
        CHECK_EQ(rs_encode(rs, (const uint8_t *const *)data, par, len), 0);
        for (int i = 0; i < ps; i++)
            CHECK_MEM(par[i], want[i], len);
        for (int j = 0; j < ds; j++)
            free(data[j]);
        for (int i = 0; i < ps; i++) {
            free(want[i]);
            free(par[i]);
        }
        rs_free(rs);
        n++;
    }
    CHECK_EQ(n, 10);
    cJSON_Delete(root);
}

TEST(rs_matrix_matches_reference_for_many_counts)
{
    static const int counts[][2] = {{1, 1},  {1, 255}, {255, 1}, {2, 1},   {3, 2},  {4, 2},
                                    {10, 3}, {20, 10}, {70, 30}, {128, 128}, {17, 5}, {200, 56}};
    struct ref_gf g;
    ref_init(&g);
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        int ds = counts[k][0], ps = counts[k][1];
        struct rs *rs = rs_new(ds, ps);
        REQUIRE(rs);
        uint8_t *ref = malloc((size_t)ds * (size_t)ps);
        ref_parity_rows(&g, ds, ps, ref);
        int bad = 0;
        for (int i = 0; i < ps; i++) {
            uint8_t sum = 0;
            for (int j = 0; j < ds; j++) {
                bad += rs_parity_coef(rs, i, j) != ref[i * ds + j];
                sum ^= ref[i * ds + j];
            }
            bad += sum != 1; /* every row XOR-sums to 1 */
        }
        CHECK_EQ(bad, 0);

        /* Parity bytes versus the reference multiply, at a length that exercises the
         * vector kernels and their tail handling. */
        struct stripe st = {0};
        REQUIRE(stripe_new(&st, rs, 131, (uint32_t)k + 7));
        for (int i = 0; i < ps; i++)
            for (size_t b = 0; b < st.len; b++) {
                uint8_t acc = 0;
                for (int j = 0; j < ds; j++)
                    acc ^= ref_mul(&g, ref[i * ds + j], st.orig[j][b]);
                bad += acc != st.orig[ds + i][b];
            }
        CHECK_EQ(bad, 0);
        stripe_free(&st);
        free(ref);
        rs_free(rs);
    }
}

TEST(rs_rejects_bad_counts)
{
    CHECK(rs_new(0, 1) == NULL);
    CHECK(rs_new(1, 0) == NULL);
    CHECK(rs_new(200, 57) == NULL);
    CHECK(rs_new(-1, 3) == NULL);
    rs_free(NULL);
}

TEST(rs_every_erasure_subset_small_counts)
{
    static const int counts[][2] = {{10, 3}, {4, 2}, {1, 1}, {2, 1}, {3, 2}, {1, 4}, {6, 6}};
    static const size_t lens[] = {1, 15, 64, 1350};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        struct rs *rs = rs_new(counts[k][0], counts[k][1]);
        REQUIRE(rs);
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            struct stripe st = {0};
            REQUIRE(stripe_new(&st, rs, lens[l], (uint32_t)(k * 31 + l)));
            bool erased[RS_MAX_SHARDS] = {false};
            int bad = erase_all(rs, &st, erased, 0, counts[k][1]);
            if (bad)
                test_fail(__FILE__, __LINE__, "%d/%d len %zu: %d patterns failed", counts[k][0],
                          counts[k][1], lens[l], bad);
            stripe_free(&st);
        }
        rs_free(rs);
    }
}

TEST(rs_erasures_20_10_bounded)
{
    struct rs *rs = rs_new(20, 10);
    REQUIRE(rs);
    struct stripe st = {0};
    REQUIRE(stripe_new(&st, rs, 300, 99));
    bool erased[RS_MAX_SHARDS] = {false};
    /* Every subset of up to 2 shards, then random subsets of every size up to 10. */
    int bad = erase_all(rs, &st, erased, 0, 2);
    uint32_t seed = 12345;
    for (int t = 0; t < 3000; t++) {
        int k = 3 + t % 8;
        memset(erased, 0, sizeof(erased));
        for (int e = 0; e < k;) {
            int i = (int)(lcg(&seed) % 30);
            if (!erased[i]) {
                erased[i] = true;
                e++;
            }
        }
        bad += !erase_and_check(rs, &st, erased);
    }
    CHECK_EQ(bad, 0);
    stripe_free(&st);
    rs_free(rs);
}

TEST(rs_too_few_shards_and_noop)
{
    struct rs *rs = rs_new(4, 2);
    REQUIRE(rs);
    struct stripe st = {0};
    REQUIRE(stripe_new(&st, rs, 40, 5));
    bool present[6] = {false, false, false, true, true, true};
    CHECK_EQ(rs_reconstruct_data(rs, st.shards, present, st.len), ERR_AGAIN);
    bool all[6] = {true, true, true, true, false, false};
    CHECK_EQ(rs_reconstruct_data(rs, st.shards, all, st.len), 0);
    for (int i = 0; i < 4; i++)
        CHECK_MEM(st.shards[i], st.orig[i], st.len);
    CHECK_EQ(rs_encode(rs, (const uint8_t *const *)st.shards, st.shards + 4, 0), 0);
    stripe_free(&st);
    rs_free(rs);
}
