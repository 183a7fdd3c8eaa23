/* SPDX-License-Identifier: MIT */
/* AES-GCM, see gcm.h. Field elements are held as two 64-bit words in GCM's bit order: the
 * first byte's most significant bit is the coefficient of x^0, so multiplying by x is a right
 * shift, reduced by R = 11100001 || 0^120 when a bit falls off the end. */
#include "crypto/gcm.h"

#include <string.h>

#include "common/wire.h"

static uint64_t rd_u64be(const uint8_t *p)
{
    return (uint64_t)rd_u32be(p) << 32 | rd_u32be(p + 4);
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    put_u32be(p, (uint32_t)(v >> 32));
    put_u32be(p + 4, (uint32_t)v);
}

int aes_gcm_setkey(struct aes_gcm *g, const uint8_t *key, size_t len)
{
    uint8_t h[16] = {0};
    if (aes_setkey(&g->aes, key, len) < 0)
        return -1;
    aes_encrypt_block(&g->aes, h, h);
    /* mh/ml[8] = H, [4] = H x, [2] = H x^2, [1] = H x^3; the others are sums. */
    uint64_t hi = rd_u64be(h), lo = rd_u64be(h + 8);
    g->mh[0] = g->ml[0] = 0;
    for (unsigned n = 8; n; n >>= 1) {
        g->mh[n] = hi;
        g->ml[n] = lo;
        uint64_t carry = lo & 1;
        lo = lo >> 1 | hi << 63;
        hi = (hi >> 1) ^ (carry ? 0xe100000000000000ull : 0);
    }
    for (unsigned n = 2; n < 16; n <<= 1)
        for (unsigned m = 1; m < n; m++) {
            g->mh[n + m] = g->mh[n] ^ g->mh[m];
            g->ml[n + m] = g->ml[n] ^ g->ml[m];
        }
    memset(h, 0, sizeof(h));
    return 0;
}

/* Reduction of the four bits that a multiplication by x^4 shifts out, as the top 16 bits of
 * the high word: bit b of the index fell off at shift 4-b and was then shifted 3-b more times,
 * so entry r is the sum over its set bits b of 0xe100 >> (3 - b). */
static const uint16_t red4[16] = {0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0, 0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0};

/* y = (y ^ x) * H, by Horner's rule over the 32 nibbles of the block, last nibble first. */
static void ghash_block(const struct aes_gcm *g, uint64_t y[2], const uint8_t x[16])
{
    uint8_t b[16];
    put_u64be(b, y[0]);
    put_u64be(b + 8, y[1]);
    for (unsigned i = 0; i < 16; i++)
        b[i] ^= x[i];
    uint64_t zh = 0, zl = 0;
    for (int i = 15; i >= 0; i--) {
        unsigned nib[2] = {b[i] & 15u, b[i] >> 4};
        for (unsigned j = 0; j < 2; j++) {
            unsigned r = (unsigned)(zl & 15);
            zl = zl >> 4 | zh << 60;
            zh = (zh >> 4) ^ (uint64_t)red4[r] << 48;
            zh ^= g->mh[nib[j]];
            zl ^= g->ml[nib[j]];
        }
    }
    y[0] = zh;
    y[1] = zl;
}

/* CTR over |p| starting at counter block nonce || 2, and GHASH of the ciphertext; |tag| gets
 * E(nonce || 1) ^ GHASH(C || len). |decrypt|: p is ciphertext (hashed before decryption). */
static void aes_gcm_run(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p,
                    size_t len, uint8_t tag[GCM_TAG_BYTES], bool decrypt)
{
    uint8_t ctr[16], ks[16], blk[16];
    uint64_t y[2] = {0, 0};
    uint32_t n = 2;

    memcpy(ctr, nonce, GCM_NONCE_BYTES);
    for (size_t off = 0; off < len; off += 16, n++) {
        size_t m = len - off < 16 ? len - off : 16;
        put_u32be(ctr + 12, n);
        aes_encrypt_block(&g->aes, ctr, ks);
        if (decrypt) {
            memset(blk, 0, sizeof(blk));
            memcpy(blk, p + off, m);
            ghash_block(g, y, blk);
        }
        for (size_t i = 0; i < m; i++)
            p[off + i] ^= ks[i];
        if (!decrypt) {
            memset(blk, 0, sizeof(blk));
            memcpy(blk, p + off, m);
            ghash_block(g, y, blk);
        }
    }
    put_u64be(blk, 0); /* bits of additional data */
    put_u64be(blk + 8, (uint64_t)len * 8);
    ghash_block(g, y, blk);
    put_u32be(ctr + 12, 1);
    aes_encrypt_block(&g->aes, ctr, ks);
    put_u64be(tag, y[0]);
    put_u64be(tag + 8, y[1]);
    for (unsigned i = 0; i < 16; i++)
        tag[i] ^= ks[i];
}

void aes_gcm_seal(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p, size_t len,
              uint8_t tag[GCM_TAG_BYTES])
{
    aes_gcm_run(g, nonce, p, len, tag, false);
}

void aes_gcm_decrypt(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p,
                 size_t len, uint8_t tag[GCM_TAG_BYTES])
{
    aes_gcm_run(g, nonce, p, len, tag, true);
}

bool aes_gcm_open(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p, size_t len,
              const uint8_t tag[GCM_TAG_BYTES])
{
    uint8_t want[GCM_TAG_BYTES], diff = 0;
    aes_gcm_run(g, nonce, p, len, want, true);
    for (unsigned i = 0; i < GCM_TAG_BYTES; i++)
        diff |= (uint8_t)(want[i] ^ tag[i]);
    return diff == 0;
}
