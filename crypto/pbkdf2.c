/* SPDX-License-Identifier: MIT */
/* SHA-1, HMAC-SHA1 and PBKDF2-HMAC-SHA1, see pbkdf2.h. */
#include "crypto/pbkdf2.h"

#include <string.h>

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (unsigned i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (unsigned i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (unsigned i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5a827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ed9eba1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
        else
            f = b ^ c ^ d, k = 0xca62c1d6;
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol32(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void sha1_init(struct sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, iv, sizeof(iv));
    s->total = 0;
}

void sha1_update(struct sha1 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!len)
        return;
    size_t have = (size_t)(s->total % SHA1_BLOCK_LEN);
    s->total += len;
    if (have) {
        size_t n = SHA1_BLOCK_LEN - have < len ? SHA1_BLOCK_LEN - have : len;
        memcpy(s->buf + have, p, n);
        p += n, len -= n, have += n;
        if (have < SHA1_BLOCK_LEN)
            return;
        sha1_block(s->h, s->buf);
    }
    for (; len >= SHA1_BLOCK_LEN; p += SHA1_BLOCK_LEN, len -= SHA1_BLOCK_LEN)
        sha1_block(s->h, p);
    if (len)
        memcpy(s->buf, p, len);
}

void sha1_final(struct sha1 *s, uint8_t out[SHA1_LEN])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[SHA1_BLOCK_LEN + 8] = {0x80};
    size_t have = (size_t)(s->total % SHA1_BLOCK_LEN);
    size_t padlen = (have < 56 ? 56 : 120) - have;
    for (unsigned i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, pad, padlen + 8);
    for (unsigned i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

/* HMAC key schedule: the states after hashing key^ipad and key^opad, computed once and copied
 * for each of PBKDF2's many HMACs. */
struct hmac_sha1 {
    struct sha1 inner, outer;
};

static void hmac_init(struct hmac_sha1 *m, const void *key, size_t key_len)
{
    uint8_t k[SHA1_BLOCK_LEN] = {0}, pad[SHA1_BLOCK_LEN];
    if (key_len > SHA1_BLOCK_LEN) {
        struct sha1 s;
        sha1_init(&s);
        sha1_update(&s, key, key_len);
        sha1_final(&s, k);
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    for (unsigned i = 0; i < SHA1_BLOCK_LEN; i++)
        pad[i] = (uint8_t)(k[i] ^ 0x36);
    sha1_init(&m->inner);
    sha1_update(&m->inner, pad, sizeof(pad));
    for (unsigned i = 0; i < SHA1_BLOCK_LEN; i++)
        pad[i] = (uint8_t)(k[i] ^ 0x5c);
    sha1_init(&m->outer);
    sha1_update(&m->outer, pad, sizeof(pad));
}

/* HMAC of |a| followed by |b| under the prepared key |m|. */
static void hmac(const struct hmac_sha1 *m, const void *a, size_t alen, const void *b,
                 size_t blen, uint8_t out[SHA1_LEN])
{
    struct sha1 s = m->inner;
    uint8_t inner[SHA1_LEN];
    sha1_update(&s, a, alen);
    sha1_update(&s, b, blen);
    sha1_final(&s, inner);
    s = m->outer;
    sha1_update(&s, inner, sizeof(inner));
    sha1_final(&s, out);
}

void pbkdf2_hmac_sha1(const void *pass, size_t pass_len, const void *salt, size_t salt_len,
                      unsigned long iter, uint8_t *out, size_t out_len)
{
    struct hmac_sha1 m;
    hmac_init(&m, pass, pass_len);
    for (uint32_t block = 1; out_len; block++) {
        uint8_t ctr[4] = {(uint8_t)(block >> 24), (uint8_t)(block >> 16), (uint8_t)(block >> 8),
                          (uint8_t)block};
        uint8_t u[SHA1_LEN], t[SHA1_LEN];
        hmac(&m, salt, salt_len, ctr, sizeof(ctr), u);
        memcpy(t, u, sizeof(t));
        for (unsigned long i = 1; i < iter; i++) {
            hmac(&m, u, sizeof(u), NULL, 0, u);
            for (unsigned j = 0; j < SHA1_LEN; j++)
                t[j] ^= u[j];
        }
        size_t n = out_len < SHA1_LEN ? out_len : SHA1_LEN;
        memcpy(out, t, n);
        out += n, out_len -= n;
    }
}
