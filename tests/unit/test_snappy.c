/* SPDX-License-Identifier: MIT */
/* Our snappy block codec (common/snappy.c) against libsnappy: each decodes the other's blocks
 * of random, text-like, repetitive and structured data at sizes across one and several 64 KB
 * fragments; malformed blocks are refused without reading or writing out of bounds. */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "common/snappy.h"
#include "tests/test.h"

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

enum kind { K_RANDOM, K_TEXT, K_ZEROS, K_RECORDS, K_MIXED, K_COUNT };

/* Fills |p| with |len| bytes of the kind: incompressible, words, one byte, fixed-layout binary
 * records with counters (like smux/KCP headers), or runs of each. */
static void fill(uint8_t *p, size_t len, enum kind k, uint64_t seed)
{
    static const char *const words[] = {"the ", "tunnel ", "kcp ", "packet ", "stream ",
                                        "window ", "GET /index.html HTTP/1.1\r\n", "{\"id\":",
                                        "ack ", "1234, ", "<div class=\"x\">"};
    size_t n = 0;
    switch (k) {
    case K_RANDOM:
        for (; n < len; n++)
            p[n] = (uint8_t)rng(&seed);
        break;
    case K_TEXT:
        while (n < len) {
            const char *w = words[rng(&seed) % (sizeof(words) / sizeof(words[0]))];
            for (; *w && n < len; w++)
                p[n++] = (uint8_t)*w;
        }
        break;
    case K_ZEROS:
        memset(p, 0, len);
        break;
    case K_RECORDS:
        for (uint32_t i = 0; n < len; i++) {
            uint8_t rec[24] = {0x44, 0x33, 0x22, 0x11, 81, 0, 0, 1};
            memcpy(rec + 8, &i, 4);
            rec[12 + i % 8] = (uint8_t)rng(&seed);
            for (size_t j = 0; j < sizeof(rec) && n < len; j++)
                p[n++] = rec[j];
        }
        break;
    default:
        while (n < len) {
            size_t run = 1 + rng(&seed) % 3000;
            if (run > len - n)
                run = len - n;
            fill(p + n, run, (enum kind)(rng(&seed) % K_MIXED), rng(&seed));
            n += run;
        }
        break;
    }
}

static const size_t sizes[] = {0, 1, 3, 4, 15, 18, 19, 20, 60, 61, 100, 255, 256, 1000, 1400,
                               4096, 65535, 65536, 65537, 100000, 200000};

TEST(snappy_interop_with_libsnappy)
{
    size_t max = 200000;
    uint8_t *in = malloc(max), *ours = malloc(snap_max_compressed_len(max));
    char *theirs = malloc(snappy_max_compressed_length(max));
    uint8_t *out = malloc(max);
    REQUIRE(in && ours && theirs && out);
    size_t our_total = 0, their_total = 0;
    for (unsigned k = 0; k < K_COUNT; k++)
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            size_t n = sizes[si], got = 0;
            fill(in, n, (enum kind)k, 1000 + 17 * k + si);
            /* ours -> libsnappy */
            size_t clen = snap_compress(in, n, ours);
            CHECK(clen <= snap_max_compressed_len(n));
            CHECK_EQ(snappy_validate_compressed_buffer((const char *)ours, clen), SNAPPY_OK);
            size_t dlen = max;
            CHECK_EQ(snappy_uncompress((const char *)ours, clen, (char *)out, &dlen), SNAPPY_OK);
            CHECK_EQ(dlen, n);
            if (n)
                CHECK_MEM(out, in, n);
            /* ours -> ours */
            memset(out, 0xa5, n);
            CHECK(snap_uncompressed_len(ours, clen, &got) && got == n);
            CHECK(snap_uncompress(ours, clen, out, max, &got));
            CHECK_EQ(got, n);
            if (n)
                CHECK_MEM(out, in, n);
            /* libsnappy -> ours */
            size_t tlen = snappy_max_compressed_length(n);
            REQUIRE(snappy_compress((const char *)in, n, theirs, &tlen) == SNAPPY_OK);
            memset(out, 0x5a, n);
            CHECK(snap_uncompress((const uint8_t *)theirs, tlen, out, max, &got));
            CHECK_EQ(got, n);
            if (n)
                CHECK_MEM(out, in, n);
            /* the output buffer must be large enough: one byte less is refused */
            if (n)
                CHECK(!snap_uncompress(ours, clen, out, n - 1, &got));
            if (k != K_RANDOM) {
                our_total += clen;
                their_total += tlen;
            }
        }
    /* The matcher works: on compressible data ours is within 10% of libsnappy's size. */
    CHECK(our_total * 10 <= their_total * 11);
    free(in);
    free(ours);
    free(theirs);
    free(out);
}

/* Hand-made blocks: every element type, overlapping copies, and the malformed cases. */
TEST(snappy_decoder_elements_and_malformed)
{
    uint8_t out[64];
    size_t got;
    /* "abcd" literal, copy-1 off 4 len 4, copy-2 off 2 len 3 (overlap), copy-4 off 1 len 2 */
    static const uint8_t ok[] = {13, 3 << 2, 'a', 'b', 'c', 'd', 1 | 0 << 2, 4,
                                 2 | 2 << 2, 2, 0, 3 | 1 << 2, 1, 0, 0, 0};
    CHECK(snap_uncompress(ok, sizeof(ok), out, sizeof(out), &got));
    CHECK_EQ(got, 13);
    CHECK_MEM(out, "abcdabcdcdccc", 13);
    /* literal with a 1-byte length (61 bytes) */
    uint8_t lit[2 + 1 + 61] = {61, 60 << 2, 60};
    memset(lit + 3, 'x', 61);
    CHECK(snap_uncompress(lit, sizeof(lit), out, sizeof(out), &got) && got == 61);
    CHECK(!snap_uncompress(lit, sizeof(lit) - 1, out, sizeof(out), &got)); /* cut short */

    static const uint8_t bad_off0[] = {8, 3 << 2, 'a', 'b', 'c', 'd', 1, 0};
    static const uint8_t bad_far[] = {8, 3 << 2, 'a', 'b', 'c', 'd', 1, 5};
    static const uint8_t bad_long[] = {4, 3 << 2, 'a', 'b', 'c', 'd', 1, 4};   /* > preamble */
    static const uint8_t bad_short[] = {9, 3 << 2, 'a', 'b', 'c', 'd', 1, 4}; /* < preamble */
    static const uint8_t bad_varint[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t big_varint[] = {0xff, 0xff, 0xff, 0xff, 0x1f};       /* 2^35-1 */
    static const uint8_t cut_copy[] = {8, 3 << 2, 'a', 'b', 'c', 'd', 2, 4};
    static const uint8_t huge_lit[] = {5, 63 << 2, 0xff, 0xff, 0xff, 0xff};
    CHECK(!snap_uncompress(bad_off0, sizeof(bad_off0), out, sizeof(out), &got));
    CHECK(!snap_uncompress(bad_far, sizeof(bad_far), out, sizeof(out), &got));
    CHECK(!snap_uncompress(bad_long, sizeof(bad_long), out, sizeof(out), &got));
    CHECK(!snap_uncompress(bad_short, sizeof(bad_short), out, sizeof(out), &got));
    CHECK(!snap_uncompress(bad_varint, sizeof(bad_varint), out, sizeof(out), &got));
    CHECK(!snap_uncompressed_len(bad_varint, sizeof(bad_varint), &got));
    CHECK(!snap_uncompressed_len(big_varint, sizeof(big_varint), &got));
    CHECK(!snap_uncompress(cut_copy, sizeof(cut_copy), out, sizeof(out), &got));
    CHECK(!snap_uncompress(huge_lit, sizeof(huge_lit), out, sizeof(out), &got));
    CHECK(!snap_uncompress(ok, 0, out, sizeof(out), &got));
}

/* Every single-byte change of valid blocks: ours accepts exactly what libsnappy accepts, and
 * then decodes the same bytes. */
TEST(snappy_corruption_agrees_with_libsnappy)
{
    uint8_t in[3000], blk[4000], mine[3000];
    char theirs[3000];
    fill(in, sizeof(in), K_MIXED, 7);
    size_t clen = snap_compress(in, sizeof(in), blk);
    uint64_t seed = 99;
    unsigned accepted = 0;
    for (size_t pos = 0; pos < clen; pos++)
        for (unsigned t = 0; t < 4; t++) {
            uint8_t save = blk[pos];
            blk[pos] = t == 0 ? (uint8_t)~save : (uint8_t)rng(&seed);
            size_t got = 0, tl = sizeof(theirs);
            bool a = snap_uncompress(blk, clen, mine, sizeof(mine), &got);
            bool b = snappy_uncompress((const char *)blk, clen, theirs, &tl) == SNAPPY_OK;
            CHECK_EQ(a, b);
            if (a && b) {
                CHECK_EQ(got, tl);
                CHECK_MEM(mine, theirs, got);
                accepted++;
            }
            blk[pos] = save;
        }
    CHECK(accepted > 0); /* literal bytes changed are still valid blocks */
}
