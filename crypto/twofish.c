/* SPDX-License-Identifier: MIT */
/* Twofish (B. Schneier, J. Kelsey, D. Whiting, D. Wagner, C. Hall, N. Ferguson, "Twofish: A
 * 128-Bit Block Cipher", 1998): the permutations q0 and q1 built from their 4-bit tables, the
 * MDS and RS matrices over GF(2^8), and the key-dependent S-boxes folded with the MDS matrix
 * into four 256-word tables per key. Words are little-endian. */
#include <string.h>

#include "common/wire.h"
#include "crypto/blkc.h"

/* The 4-bit tables t0..t3 of q0 and of q1 (paper, section 4.3.5). */
static const uint8_t q_t[2][4][16] = {
    {{0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4},
     {0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD},
     {0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1},
     {0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA}},
    {{0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5},
     {0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8},
     {0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF},
     {0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA}}};

static const uint8_t mds[4][4] = {
    {0x01, 0xEF, 0x5B, 0x5B}, {0x5B, 0xEF, 0xEF, 0x01}, {0xEF, 0x5B, 0x01, 0xEF},
    {0xEF, 0x01, 0xEF, 0x5B}};

static const uint8_t rs[4][8] = {{0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E},
                                 {0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5},
                                 {0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19},
                                 {0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03}};

static uint8_t ror4(uint8_t x)
{
    return (uint8_t)(((x >> 1) | (x << 3)) & 15);
}

static uint8_t q_perm(unsigned which, uint8_t x)
{
    uint8_t a = x >> 4, b = x & 15;
    for (unsigned r = 0; r < 2; r++) {
        uint8_t a1 = a ^ b, b1 = (uint8_t)(a ^ ror4(b) ^ ((a << 3) & 15));
        a = q_t[which][2 * r][a1];
        b = q_t[which][2 * r + 1][b1];
    }
    return (uint8_t)(b << 4 | a);
}

/* a * b in GF(2^8) modulo |poly| (with its x^8 term). */
static uint8_t gf_mul(uint8_t a, uint8_t b, unsigned poly)
{
    unsigned r = 0, x = a;
    for (; b; b >>= 1) {
        if (b & 1)
            r ^= x;
        x <<= 1;
        if (x & 0x100)
            x ^= poly;
    }
    return (uint8_t)r;
}

/* The byte chains of h() for input byte position j (0..3) of a 256-bit key (k = 4 words of
 * L): y = q[..](... q[..](x) ^ l3 ...) before the MDS matrix. The order of q0/q1 per stage
 * and position, outermost stage last. */
static const uint8_t chain[4][5] = {
    /* stage: k=4, k=3, then the three of every key length */
    {1, 1, 0, 0, 1},
    {0, 1, 1, 0, 0},
    {0, 0, 0, 1, 1},
    {1, 0, 1, 1, 0}};

/* h(X, L) without the MDS step for byte position |j|: |l| holds the key words L0..L(k-1). */
static uint8_t h_byte(unsigned j, uint8_t x, const uint32_t *l, unsigned k)
{
    if (k == 4)
        x = (uint8_t)(q_perm(chain[j][0], x) ^ (l[3] >> (8 * j)));
    if (k >= 3)
        x = (uint8_t)(q_perm(chain[j][1], x) ^ (l[2] >> (8 * j)));
    x = (uint8_t)(q_perm(chain[j][2], x) ^ (l[1] >> (8 * j)));
    x = (uint8_t)(q_perm(chain[j][3], x) ^ (l[0] >> (8 * j)));
    return q_perm(chain[j][4], x);
}

/* MDS column j times |y|, as a little-endian word. */
static uint32_t mds_col(unsigned j, uint8_t y)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)gf_mul(mds[i][j], y, 0x169) << (8 * i);
    return v;
}

static uint32_t h_fn(uint32_t x, const uint32_t *l, unsigned k)
{
    uint32_t v = 0;
    for (unsigned j = 0; j < 4; j++)
        v ^= mds_col(j, h_byte(j, (uint8_t)(x >> (8 * j)), l, k));
    return v;
}

static uint32_t rol32(uint32_t x, unsigned n)
{
    return x << n | x >> (32 - n);
}

static uint32_t ror32(uint32_t x, unsigned n)
{
    return x >> n | x << (32 - n);
}

int twofish_setkey(struct twofish_key *tk, const uint8_t *key, size_t len)
{
    if (len != 16 && len != 24 && len != 32)
        return -1;
    unsigned k = (unsigned)(len / 8);
    uint32_t me[4], mo[4], s[4];
    for (unsigned i = 0; i < k; i++) {
        me[i] = rd_u32le(key + 8 * i);
        mo[i] = rd_u32le(key + 8 * i + 4);
        /* S_(k-1-i) = RS times key bytes 8i .. 8i+7 */
        uint32_t v = 0;
        for (unsigned r = 0; r < 4; r++) {
            uint8_t acc = 0;
            for (unsigned c = 0; c < 8; c++)
                acc ^= gf_mul(rs[r][c], key[8 * i + c], 0x14D);
            v |= (uint32_t)acc << (8 * r);
        }
        s[k - 1 - i] = v;
    }
    for (unsigned i = 0; i < 20; i++) {
        uint32_t a = h_fn(2 * i * 0x01010101u, me, k);
        uint32_t b = rol32(h_fn((2 * i + 1) * 0x01010101u, mo, k), 8);
        tk->k[2 * i] = a + b;
        tk->k[2 * i + 1] = rol32(a + 2 * b, 9);
    }
    for (unsigned j = 0; j < 4; j++)
        for (unsigned x = 0; x < 256; x++)
            tk->s[j][x] = mds_col(j, h_byte(j, (uint8_t)x, s, k));
    memset(me, 0, sizeof(me));
    memset(mo, 0, sizeof(mo));
    memset(s, 0, sizeof(s));
    return 0;
}

static uint32_t g_fn(const struct twofish_key *tk, uint32_t x)
{
    return tk->s[0][x & 0xff] ^ tk->s[1][(x >> 8) & 0xff] ^ tk->s[2][(x >> 16) & 0xff] ^
           tk->s[3][x >> 24];
}

void twofish_encrypt(const struct twofish_key *tk, const uint8_t in[16], uint8_t out[16])
{
    uint32_t r[4];
    for (unsigned i = 0; i < 4; i++)
        r[i] = rd_u32le(in + 4 * i) ^ tk->k[i];
    for (unsigned round = 0; round < 16; round++) {
        uint32_t t0 = g_fn(tk, r[0]), t1 = g_fn(tk, rol32(r[1], 8));
        uint32_t f0 = t0 + t1 + tk->k[2 * round + 8];
        uint32_t f1 = t0 + 2 * t1 + tk->k[2 * round + 9];
        uint32_t n2 = ror32(r[2] ^ f0, 1), n3 = rol32(r[3], 1) ^ f1;
        r[2] = r[0];
        r[3] = r[1];
        r[0] = n2;
        r[1] = n3;
    }
    /* undo the last swap, output whitening */
    for (unsigned i = 0; i < 4; i++)
        put_u32le(out + 4 * i, r[(i + 2) & 3] ^ tk->k[i + 4]);
}
