/* SPDX-License-Identifier: MIT */
/* Portable CRC-32, CRC-32C and GF(2^8) erasure-code kernels with ISA-L's interface: see
 * fec/isal_own.h. The CRCs go eight bytes at a time (slicing by 8); their tables and GF(2^8)'s
 * logarithms are computed once, before main, into zeroed memory (no flash for tables). */
#include "fec/isal_own.h"

#include <string.h>

#include "common/wire.h"

static uint32_t crc_ieee[8][256]; /* reflected 0x04c11db7 (0xedb88320) */
static uint32_t crc_c[8][256];    /* reflected 0x1edc6f41 (0x82f63b78) */
static uint8_t gf_log[256];
static uint8_t gf_exp[510]; /* twice over, so that exp[log a + log b] needs no reduction */

static void crc_tables(uint32_t t[8][256], uint32_t poly)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
        t[0][i] = c;
    }
    for (int s = 1; s < 8; s++)
        for (int i = 0; i < 256; i++)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

__attribute__((constructor)) static void isal_own_init(void)
{
    crc_tables(crc_ieee, 0xedb88320u);
    crc_tables(crc_c, 0x82f63b78u);
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        gf_exp[i] = gf_exp[i + 255] = (uint8_t)x;
        gf_log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100)
            x ^= 0x11d;
    }
}

/* The reflected CRC |crc| (neither inverted here) over |len| bytes with the tables |t|. */
static uint32_t crc_run(uint32_t t[8][256], uint32_t crc, const unsigned char *p, uint64_t len)
{
    for (; len >= 8; len -= 8, p += 8) {
        uint32_t lo = crc ^ rd_u32le(p);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
              t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    for (; len; len--, p++)
        crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xff];
    return crc;
}

uint32_t isal_own_crc32_gzip_refl(uint32_t seed, const unsigned char *buf, uint64_t len)
{
    return ~crc_run(crc_ieee, ~seed, buf, len);
}

unsigned int isal_own_crc32_iscsi(unsigned char *buf, int len, unsigned int init_crc)
{
    return crc_run(crc_c, init_crc, buf, len > 0 ? (uint64_t)len : 0);
}

unsigned char isal_own_gf_mul(unsigned char a, unsigned char b)
{
    return a && b ? gf_exp[gf_log[a] + gf_log[b]] : 0;
}

static unsigned char gf_inv(unsigned char a)
{
    return a ? gf_exp[255 - gf_log[a]] : 0;
}

int isal_own_gf_invert_matrix(unsigned char *in, unsigned char *out, const int n)
{
    size_t w = n > 0 ? (size_t)n : 0;
    memset(out, 0, w * w);
    for (size_t i = 0; i < w; i++)
        out[i * w + i] = 1;
    for (size_t c = 0; c < w; c++) {
        size_t p = c;
        while (p < w && !in[p * w + c])
            p++;
        if (p == w)
            return -1;
        if (p != c) { /* swap rows p and c of both */
            for (size_t k = 0; k < w; k++) {
                unsigned char t = in[p * w + k];
                in[p * w + k] = in[c * w + k];
                in[c * w + k] = t;
                t = out[p * w + k];
                out[p * w + k] = out[c * w + k];
                out[c * w + k] = t;
            }
        }
        unsigned char s = gf_inv(in[c * w + c]);
        for (size_t k = 0; k < w; k++) {
            in[c * w + k] = isal_own_gf_mul(in[c * w + k], s);
            out[c * w + k] = isal_own_gf_mul(out[c * w + k], s);
        }
        for (size_t r = 0; r < w; r++) {
            unsigned char f = in[r * w + c];
            if (r == c || !f)
                continue;
            for (size_t k = 0; k < w; k++) {
                in[r * w + k] ^= isal_own_gf_mul(f, in[c * w + k]);
                out[r * w + k] ^= isal_own_gf_mul(f, out[c * w + k]);
            }
        }
    }
    return 0;
}

void isal_own_ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls)
{
    size_t n = k > 0 && rows > 0 ? (size_t)k * (size_t)rows : 0;
    for (size_t i = 0; i < n; i++, gftbls += 32)
        for (unsigned x = 0; x < 16; x++) {
            gftbls[x] = isal_own_gf_mul(a[i], (unsigned char)x);
            gftbls[16 + x] = isal_own_gf_mul(a[i], (unsigned char)(x << 4));
        }
}

void isal_own_ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                             unsigned char **data, unsigned char **coding)
{
    size_t n = len > 0 ? (size_t)len : 0;
    for (int i = 0; i < rows; i++) {
        unsigned char *out = coding[i];
        for (int j = 0; j < k; j++, gftbls += 32) {
            const unsigned char *in = data[j], *lo = gftbls, *hi = gftbls + 16;
            if (j == 0)
                for (size_t b = 0; b < n; b++)
                    out[b] = lo[in[b] & 15] ^ hi[in[b] >> 4];
            else
                for (size_t b = 0; b < n; b++)
                    out[b] ^= lo[in[b] & 15] ^ hi[in[b] >> 4];
        }
    }
}
