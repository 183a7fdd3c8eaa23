/* SPDX-License-Identifier: MIT */
/* Our portable CRC and GF(2^8) kernels (fec/isal_own.c, the builds without libisal) give
 * ISA-L's results: the CRCs' check values, and ISA-L's own output on random inputs. */
#include <isa-l/crc.h>
#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>

#include "fec/isal_own.h"
#include "tests/test.h"

static uint32_t rnd_state = 12345;
static uint8_t rnd8(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (uint8_t)(rnd_state >> 16);
}

/* The catalogue's check values of "123456789", then every length and alignment up to 100
 * bytes with several seeds against ISA-L. */
TEST(isal_own_crcs_match_isal)
{
    uint8_t buf[128];
    memcpy(buf, "123456789", 9);
    CHECK_EQ(isal_own_crc32_gzip_refl(0, buf, 9), 0xcbf43926u);
    CHECK_EQ(~isal_own_crc32_iscsi(buf, 9, 0xffffffffu), 0xe3069283u);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = rnd8();
    static const uint32_t seeds[] = {0, 1, 0xffffffffu, 0x12345678u};
    for (size_t s = 0; s < 4; s++)
        for (int off = 0; off < 8; off++)
            for (int len = 0; len <= 100; len++) {
                CHECK_EQ(isal_own_crc32_gzip_refl(seeds[s], buf + off, (uint64_t)len),
                         crc32_gzip_refl(seeds[s], buf + off, (uint64_t)len));
                CHECK_EQ(isal_own_crc32_iscsi(buf + off, len, seeds[s]),
                         crc32_iscsi(buf + off, len, seeds[s]));
            }
}

TEST(isal_own_gf_mul_matches_isal)
{
    int bad = 0;
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            bad += isal_own_gf_mul((unsigned char)a, (unsigned char)b) !=
                   gf_mul((unsigned char)a, (unsigned char)b);
    CHECK_EQ(bad, 0);
}

/* Random n x n matrices (n 1..20, some singular): the same inverse, or both refuse. */
TEST(isal_own_gf_invert_matrix_matches_isal)
{
    uint8_t m[400], a[400], b[400], ia[400], ib[400];
    int singular = 0;
    for (int round = 0; round < 400; round++) {
        int n = 1 + round % 20;
        size_t nn = (size_t)n * (size_t)n;
        for (size_t i = 0; i < nn; i++)
            m[i] = round % 5 == 4 ? rnd8() & 3 : rnd8(); /* small entries: singular often */
        memcpy(a, m, nn);
        memcpy(b, m, nn);
        int ra = isal_own_gf_invert_matrix(a, ia, n), rb = gf_invert_matrix(b, ib, n);
        CHECK_EQ(ra, rb);
        if (ra == 0 && rb == 0)
            CHECK_MEM(ia, ib, nn);
        singular += rb != 0;
    }
    CHECK(singular > 0); /* both paths were taken */
    CHECK(singular < 400);
}

/* Tables byte for byte, and coded shards of every length 0..300 for several shapes. */
TEST(isal_own_ec_matches_isal)
{
    static const int shapes[][2] = {{1, 1}, {3, 2}, {10, 3}, {20, 10}, {7, 1}};
    enum { LEN = 300 };
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int k = shapes[s][0], rows = shapes[s][1];
        uint8_t coef[200], ta[32 * 200], tb[32 * 200];
        uint8_t *data[20], *ca[10], *cb[10];
        for (int i = 0; i < k * rows; i++)
            coef[i] = rnd8();
        isal_own_ec_init_tables(k, rows, coef, ta);
        ec_init_tables(k, rows, coef, tb);
        CHECK_MEM(ta, tb, (size_t)(32 * k * rows));
        for (int j = 0; j < k; j++) {
            data[j] = malloc(LEN);
            REQUIRE(data[j]);
            for (int b = 0; b < LEN; b++)
                data[j][b] = rnd8();
        }
        for (int i = 0; i < rows; i++) {
            ca[i] = malloc(LEN);
            cb[i] = malloc(LEN);
            REQUIRE(ca[i] && cb[i]);
        }
        for (int len = 0; len <= LEN; len += len < 40 ? 1 : 37) {
            isal_own_ec_encode_data(len, k, rows, ta, data, ca);
            ec_encode_data(len, k, rows, tb, data, cb);
            for (int i = 0; i < rows; i++)
                CHECK_MEM(ca[i], cb[i], (size_t)len);
        }
        for (int j = 0; j < k; j++)
            free(data[j]);
        for (int i = 0; i < rows; i++) {
            free(ca[i]);
            free(cb[i]);
        }
    }
}
