/* SPDX-License-Identifier: MIT */
/* Blowfish (B. Schneier, "Description of a New Variable-Length Key, 64-Bit Block Cipher",
 * 1993): 16 Feistel rounds, big-endian halves, P-array and S-boxes initialised with the digits
 * of pi and then replaced by encryptions under the key. */
#include <stdint.h>

#include "common/wire.h"
#include "crypto/blkc.h"
#include "crypto/blowfish_pi.h"

static uint32_t bf_f(const struct blowfish_key *k, uint32_t x)
{
    return ((k->s[0][x >> 24] + k->s[1][(x >> 16) & 0xff]) ^ k->s[2][(x >> 8) & 0xff]) +
           k->s[3][x & 0xff];
}

static void bf_block(const struct blowfish_key *k, uint32_t *xl, uint32_t *xr)
{
    uint32_t l = *xl, r = *xr;
    for (unsigned i = 0; i < 16; i += 2) {
        l ^= k->p[i];
        r ^= bf_f(k, l);
        r ^= k->p[i + 1];
        l ^= bf_f(k, r);
    }
    *xl = r ^ k->p[17];
    *xr = l ^ k->p[16];
}

int blowfish_setkey(struct blowfish_key *k, const uint8_t *key, size_t len)
{
    if (len < 1 || len > 56)
        return -1;
    for (unsigned i = 0; i < 18; i++)
        k->p[i] = bf_pi_p[i];
    for (unsigned i = 0; i < 4; i++)
        for (unsigned j = 0; j < 256; j++)
            k->s[i][j] = bf_pi_s[i][j];
    /* The key, cycled, XORed into the P-array one 32-bit big-endian word at a time. */
    size_t pos = 0;
    for (unsigned i = 0; i < 18; i++) {
        uint32_t w = 0;
        for (unsigned j = 0; j < 4; j++) {
            w = w << 8 | key[pos];
            pos = pos + 1 == len ? 0 : pos + 1;
        }
        k->p[i] ^= w;
    }
    uint32_t l = 0, r = 0;
    for (unsigned i = 0; i < 18; i += 2) {
        bf_block(k, &l, &r);
        k->p[i] = l;
        k->p[i + 1] = r;
    }
    for (unsigned i = 0; i < 4; i++)
        for (unsigned j = 0; j < 256; j += 2) {
            bf_block(k, &l, &r);
            k->s[i][j] = l;
            k->s[i][j + 1] = r;
        }
    return 0;
}

void blowfish_encrypt(const struct blowfish_key *k, const uint8_t in[8], uint8_t out[8])
{
    uint32_t l = rd_u32be(in), r = rd_u32be(in + 4);
    bf_block(k, &l, &r);
    put_u32be(out, l);
    put_u32be(out + 4, r);
}
