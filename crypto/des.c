/* SPDX-License-Identifier: MIT */
/* Triple DES, EDE with three keys (FIPS 46-3): DES rounds through combined S-box and
 * permutation tables built at first use from the standard's tables; the initial and final
 * permutations bit by bit, once per triple-DES block (IP and IP^-1 between the three DES
 * operations cancel). Bits are numbered as in the standard: bit 1 is the most significant. */
#include <pthread.h>
#include <string.h>

#include "common/wire.h"
#include "crypto/blkc.h"

static const uint8_t ip_tab[64] = {
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9,  1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7};

static const uint8_t p_tab[32] = {16, 7, 20, 21, 29, 12, 28, 17, 1,  15, 23, 26, 5,  18, 31, 10,
                                  2,  8, 24, 14, 32, 27, 3,  9,  19, 13, 30, 6,  22, 11, 4,  25};

static const uint8_t pc1_tab[56] = {57, 49, 41, 33, 25, 17, 9,  1,  58, 50, 42, 34, 26, 18,
                                    10, 2,  59, 51, 43, 35, 27, 19, 11, 3,  60, 52, 44, 36,
                                    63, 55, 47, 39, 31, 23, 15, 7,  62, 54, 46, 38, 30, 22,
                                    14, 6,  61, 53, 45, 37, 29, 21, 13, 5,  28, 20, 12, 4};

static const uint8_t pc2_tab[48] = {14, 17, 11, 24, 1,  5,  3,  28, 15, 6,  21, 10,
                                    23, 19, 12, 4,  26, 8,  16, 7,  27, 20, 13, 2,
                                    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
                                    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32};

static const uint8_t shifts[16] = {1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1};

/* S1..S8: row (outer bits b1 b6), column (inner bits b2..b5). */
static const uint8_t s_tab[8][4][16] = {
    {{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7},
     {0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8},
     {4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0},
     {15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13}},
    {{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10},
     {3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5},
     {0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15},
     {13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9}},
    {{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8},
     {13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1},
     {13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7},
     {1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12}},
    {{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15},
     {13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9},
     {10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4},
     {3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14}},
    {{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9},
     {14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6},
     {4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14},
     {11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3}},
    {{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11},
     {10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8},
     {9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6},
     {4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13}},
    {{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1},
     {13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6},
     {1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2},
     {6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12}},
    {{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7},
     {1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2},
     {7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8},
     {2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11}}};

static uint32_t sp[8][64]; /* S-box j of a 6-bit input, placed and permuted by P */
static pthread_once_t sp_once = PTHREAD_ONCE_INIT;

static void build_sp(void)
{
    for (unsigned j = 0; j < 8; j++)
        for (unsigned g = 0; g < 64; g++) {
            unsigned row = (g >> 4 & 2) | (g & 1), col = g >> 1 & 15;
            uint32_t s = (uint32_t)s_tab[j][row][col] << (28 - 4 * j), v = 0;
            for (unsigned i = 0; i < 32; i++) /* output bit i+1 is input bit p_tab[i] */
                v |= ((s >> (32 - p_tab[i])) & 1) << (31 - i);
            sp[j][g] = v;
        }
}

static uint32_t ror32(uint32_t x, unsigned n)
{
    n &= 31;
    return n ? x >> n | x << (32 - n) : x;
}

/* f(R, K): the expansion E takes, for S-box j, bits 4j .. 4j+5 of R (bit 0 being bit 32). */
static uint32_t des_f(uint32_t r, const uint8_t k[8])
{
    uint32_t v = 0;
    for (unsigned j = 0; j < 8; j++)
        v ^= sp[j][(ror32(r, 27 - 4 * j) & 0x3f) ^ k[j]];
    return v;
}

/* 16 rounds on the permuted halves; |dec| runs the subkeys backwards. */
static void des_rounds(const uint8_t sk[16][8], uint32_t *l, uint32_t *r, int dec)
{
    uint32_t a = *l, b = *r;
    for (unsigned i = 0; i < 16; i++) {
        uint32_t t = a ^ des_f(b, sk[dec ? 15 - i : i]);
        a = b;
        b = t;
    }
    *l = b; /* the halves are swapped after the last round */
    *r = a;
}

static uint64_t permute64(uint64_t in, const uint8_t *tab, unsigned n, unsigned in_bits)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 1 | ((in >> (in_bits - tab[i])) & 1);
    return v;
}

static void des_schedule(const uint8_t key[8], uint8_t sk[16][8])
{
    uint64_t cd = permute64(rd_u32be(key) * 0x100000000ull + rd_u32be(key + 4), pc1_tab, 56, 64);
    uint32_t c = (uint32_t)(cd >> 28), d = (uint32_t)(cd & 0xfffffff);
    for (unsigned i = 0; i < 16; i++) {
        for (unsigned s = 0; s < shifts[i]; s++) {
            c = ((c << 1) | (c >> 27)) & 0xfffffff;
            d = ((d << 1) | (d >> 27)) & 0xfffffff;
        }
        uint64_t k = permute64((uint64_t)c << 28 | d, pc2_tab, 48, 56);
        for (unsigned j = 0; j < 8; j++)
            sk[i][j] = (uint8_t)((k >> (42 - 6 * j)) & 0x3f);
    }
}

int des3_setkey(struct des3_key *k, const uint8_t *key, size_t len)
{
    if (len != 24)
        return -1;
    pthread_once(&sp_once, build_sp);
    for (unsigned i = 0; i < 3; i++)
        des_schedule(key + 8 * i, k->sk[i]);
    return 0;
}

void des3_encrypt(const struct des3_key *k, const uint8_t in[8], uint8_t out[8])
{
    uint64_t v = permute64((uint64_t)rd_u32be(in) << 32 | rd_u32be(in + 4), ip_tab, 64, 64);
    uint32_t l = (uint32_t)(v >> 32), r = (uint32_t)v;
    des_rounds(k->sk[0], &l, &r, 0);
    des_rounds(k->sk[1], &l, &r, 1);
    des_rounds(k->sk[2], &l, &r, 0);
    /* IP^-1: output bit ip_tab[i] is input bit i+1. */
    uint64_t x = (uint64_t)l << 32 | r, y = 0;
    for (unsigned i = 0; i < 64; i++)
        y |= ((x >> (63 - i)) & 1) << (64 - ip_tab[i]);
    put_u32be(out, (uint32_t)(y >> 32));
    put_u32be(out + 4, (uint32_t)y);
}
