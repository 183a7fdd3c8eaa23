/* SPDX-License-Identifier: MIT */
/* TEA (16 rounds = 8 cycles, as kcp-go uses it) and XTEA (32 cycles), encryption and CFB. */
#include "crypto/tea.h"

#include "common/wire.h"

#define TEA_DELTA 0x9e3779b9u
#define TEA16_CYCLES 8  /* x/crypto counts a round as half a cycle: 16 rounds = 8 cycles */
#define XTEA_CYCLES 32

void tea_key_init(struct tea_key *tk, enum tea_variant variant,
                  const uint8_t key[static TEA_KEY_LEN])
{
    uint32_t sum = 0;

    tk->variant = variant;
    for (int i = 0; i < 4; i++)
        tk->k[i] = rd_u32be(key + 4 * i);
    for (int i = 0; i < XTEA_CYCLES; i++) {
        tk->xtea[2 * i] = sum + tk->k[sum & 3];
        sum += TEA_DELTA;
        tk->xtea[2 * i + 1] = sum + tk->k[(sum >> 11) & 3];
    }
}

static inline __attribute__((always_inline)) void tea16(const struct tea_key *tk, uint32_t *a,
                                                         uint32_t *b)
{
    uint32_t v0 = *a, v1 = *b, sum = 0;
    const uint32_t k0 = tk->k[0], k1 = tk->k[1], k2 = tk->k[2], k3 = tk->k[3];

    for (int i = 0; i < TEA16_CYCLES; i++) {
        sum += TEA_DELTA;
        v0 += ((v1 << 4) + k0) ^ (v1 + sum) ^ ((v1 >> 5) + k1);
        v1 += ((v0 << 4) + k2) ^ (v0 + sum) ^ ((v0 >> 5) + k3);
    }
    *a = v0;
    *b = v1;
}

static inline __attribute__((always_inline)) void xtea(const struct tea_key *tk, uint32_t *a,
                                                        uint32_t *b)
{
    uint32_t v0 = *a, v1 = *b;

    for (int i = 0; i < XTEA_CYCLES; i++) {
        v0 += (((v1 << 4) ^ (v1 >> 5)) + v1) ^ tk->xtea[2 * i];
        v1 += (((v0 << 4) ^ (v0 >> 5)) + v0) ^ tk->xtea[2 * i + 1];
    }
    *a = v0;
    *b = v1;
}

/* Two independent blocks at once (CFB decryption knows every keystream input up front): the
 * two dependency chains interleave and use the otherwise idle execution ports. */
static inline __attribute__((always_inline)) void tea16_x2(const struct tea_key *tk, uint32_t *a,
                                                            uint32_t *b, uint32_t *c, uint32_t *d)
{
    uint32_t v0 = *a, v1 = *b, w0 = *c, w1 = *d, sum = 0;
    const uint32_t k0 = tk->k[0], k1 = tk->k[1], k2 = tk->k[2], k3 = tk->k[3];

    for (int i = 0; i < TEA16_CYCLES; i++) {
        sum += TEA_DELTA;
        v0 += ((v1 << 4) + k0) ^ (v1 + sum) ^ ((v1 >> 5) + k1);
        w0 += ((w1 << 4) + k0) ^ (w1 + sum) ^ ((w1 >> 5) + k1);
        v1 += ((v0 << 4) + k2) ^ (v0 + sum) ^ ((v0 >> 5) + k3);
        w1 += ((w0 << 4) + k2) ^ (w0 + sum) ^ ((w0 >> 5) + k3);
    }
    *a = v0;
    *b = v1;
    *c = w0;
    *d = w1;
}

static inline __attribute__((always_inline)) void xtea_x2(const struct tea_key *tk, uint32_t *a,
                                                           uint32_t *b, uint32_t *c, uint32_t *d)
{
    uint32_t v0 = *a, v1 = *b, w0 = *c, w1 = *d;

    for (int i = 0; i < XTEA_CYCLES; i++) {
        v0 += (((v1 << 4) ^ (v1 >> 5)) + v1) ^ tk->xtea[2 * i];
        w0 += (((w1 << 4) ^ (w1 >> 5)) + w1) ^ tk->xtea[2 * i];
        v1 += (((v0 << 4) ^ (v0 >> 5)) + v0) ^ tk->xtea[2 * i + 1];
        w1 += (((w0 << 4) ^ (w0 >> 5)) + w0) ^ tk->xtea[2 * i + 1];
    }
    *a = v0;
    *b = v1;
    *c = w0;
    *d = w1;
}

static inline __attribute__((always_inline)) void encrypt(const struct tea_key *tk,
                                                           enum tea_variant variant,
                                                           uint32_t *a, uint32_t *b)
{
    if (variant == TEA_XTEA)
        xtea(tk, a, b);
    else
        tea16(tk, a, b);
}

void tea_encrypt_block(const struct tea_key *tk, uint32_t v[static 2])
{
    encrypt(tk, tk->variant, &v[0], &v[1]);
}

/* The CFB loop with the cipher inlined: the feedback stays in registers, which matters
 * because CFB encryption is one serial chain through every block of the datagram. */
static inline __attribute__((always_inline)) void cfb(const struct tea_key *tk,
                                                       enum tea_variant variant,
                                                       const uint8_t *iv, uint8_t *p,
                                                       size_t len, bool decrypt)
{
    uint32_t f0 = rd_u32be(iv), f1 = rd_u32be(iv + 4);

    for (; decrypt && len >= 2 * TEA_BLOCK_LEN; p += 2 * TEA_BLOCK_LEN, len -= 2 * TEA_BLOCK_LEN) {
        uint32_t c0 = rd_u32be(p), c1 = rd_u32be(p + 4);
        uint32_t c2 = rd_u32be(p + 8), c3 = rd_u32be(p + 12);
        uint32_t g0 = c0, g1 = c1;
        if (variant == TEA_XTEA)
            xtea_x2(tk, &f0, &f1, &g0, &g1);
        else
            tea16_x2(tk, &f0, &f1, &g0, &g1);
        put_u32be(put_u32be(put_u32be(put_u32be(p, c0 ^ f0), c1 ^ f1), c2 ^ g0), c3 ^ g1);
        f0 = c2;
        f1 = c3;
    }
    for (; len >= TEA_BLOCK_LEN; p += TEA_BLOCK_LEN, len -= TEA_BLOCK_LEN) {
        uint32_t in0 = rd_u32be(p), in1 = rd_u32be(p + 4);
        encrypt(tk, variant, &f0, &f1);
        uint32_t out0 = in0 ^ f0, out1 = in1 ^ f1;
        put_u32be(put_u32be(p, out0), out1);
        f0 = decrypt ? in0 : out0;
        f1 = decrypt ? in1 : out1;
    }
    if (len) {
        uint8_t ks[TEA_BLOCK_LEN];
        encrypt(tk, variant, &f0, &f1);
        put_u32be(put_u32be(ks, f0), f1);
        for (size_t i = 0; i < len; i++)
            p[i] ^= ks[i];
    }
}

void tea_cfb(const struct tea_key *tk, const uint8_t iv[static TEA_BLOCK_LEN], uint8_t *p,
             size_t len, bool decrypt)
{
    if (tk->variant == TEA_XTEA)
        cfb(tk, TEA_XTEA, iv, p, len, decrypt);
    else
        cfb(tk, TEA_16, iv, p, len, decrypt);
}
