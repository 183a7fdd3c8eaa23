/* SPDX-License-Identifier: MIT */
/* QPP pads (three variants), the xoshiro256** keystream, and the per-byte substitution. */
#include "crypto/qpp.h"

#ifndef KTUN_NO_GCRYPT
#include <gcrypt.h>
#else
#include "crypto/gcry_own.h" /* ciphers and PBKDF2 of our own, see there */
#endif
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "crypto/crypt.h"

#define SEED_SALT "___QUANTUM_PERMUTATION_PAD_SEED_DERIVE___"
#define SHUFFLE_SALT "___QUANTUM_PERMUTATION_PAD_SHUFFLE_SALT___"
#define PRNG_SALT "___QUANTUM_PERMUTATION_PAD_PRNG_SALT___"
#define PRNG_MSG "PERMUTATION_MATRIX_SELECTOR"
#define CHUNK_LEN 32u
#define MAX_CHUNKS 7u

struct qpp {
    unsigned count;          /* number of pads */
    uint64_t s0[4];          /* PRNG state every stream starts from (before W0) */
    uint8_t (*pad)[256];     /* count permutations */
    uint8_t (*inv)[256];     /* their inverses */
};

static void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

static uint64_t rd_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 8; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rotl64(uint64_t x, unsigned k)
{
    return (x << k) | (x >> (64u - k));
}

/* xoshiro256**: returns the next word and advances |s|. */
static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl64(s[1] * 5u, 7) * 9u;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

/* "QPP_" followed by |p| in binary digits (Go's strconv.FormatInt(p, 2)); returns the length. */
static size_t pad_label(unsigned p, char out[4 + 32])
{
    memcpy(out, "QPP_", 4);
    size_t n = 4;
    unsigned bits = 1;
    while (bits < 32 && (p >> bits) != 0)
        bits++;
    for (unsigned b = bits; b-- > 0;)
        out[n++] = (char)('0' + ((p >> b) & 1u));
    return n;
}

/* Builds pad |p| into |pad| (Fisher-Yates driven by the chunk's HMAC, re-encrypted per step). */
static void build_pad(unsigned p, const uint8_t chunks[][CHUNK_LEN], unsigned m,
                      gcry_cipher_hd_t *aes, bool full_block, uint8_t pad[256])
{
    uint8_t h[32];
    char label[4 + 32];
    size_t label_len = pad_label(p, label);
    hmac_sha256(chunks[p % m], CHUNK_LEN, label, label_len, h);
    for (unsigned i = 0; i < 256; i++)
        pad[i] = (uint8_t)i;
    for (unsigned i = 255; i >= 1; i--) {
        for (unsigned j = 0; j < m; j++) {
            /* ECB on a keyed handle, one or two blocks in place: cannot fail. */
            gcry_cipher_encrypt(aes[j], h, full_block ? 32 : 16, NULL, 0);
        }
        unsigned r = 0;
        for (unsigned k = 0; k < 32; k++)
            r = (r * 256u + h[k]) % (i + 1u);
        uint8_t t = pad[i];
        pad[i] = pad[r];
        pad[r] = t;
    }
    sodium_memzero(h, sizeof(h));
}

struct qpp *qpp_new(const void *seed, size_t seed_len, unsigned count, enum qpp_variant variant,
                    int *err)
{
    int rc = ERR_INVAL;
    struct qpp *q = NULL;
    uint8_t chunks[MAX_CHUNKS][CHUNK_LEN];
    uint8_t derived[CHUNK_LEN], key[CHUNK_LEN], h[32];
    gcry_cipher_hd_t aes[MAX_CHUNKS] = {0};

    if (count == 0 || count > QPP_COUNT_MAX || (unsigned)variant >= QPP_VARIANT_COUNT ||
        sodium_init() < 0 || (!seed && seed_len))
        goto out;
    rc = ERR_NOMEM;
    q = calloc(1, sizeof(*q));
    if (!q)
        goto out;
    q->count = count;
    q->pad = malloc((size_t)count * 256u);
    q->inv = malloc((size_t)count * 256u);
    if (!q->pad || !q->inv)
        goto out;

    /* The keystream every stream starts from. */
    rc = ERR_INVAL;
    hmac_sha256(seed, seed_len, PRNG_MSG, strlen(PRNG_MSG), h);
    if (crypt_pbkdf2_sha1(h, sizeof(h), PRNG_SALT, 128, derived, CHUNK_LEN) < 0)
        goto out;
    for (unsigned i = 0; i < 4; i++)
        q->s0[i] = rd_le64(derived + 8u * i);

    /* Chunks: S = seed (>= 32 bytes) or its PBKDF2 stretch; chunk i from 32 bytes of S taken
     * cyclically from offset 32 * i. */
    const uint8_t *s = seed;
    size_t s_len = seed_len;
    if (seed_len < CHUNK_LEN) {
        if (crypt_pbkdf2_sha1(seed, seed_len, SEED_SALT, 128, derived, CHUNK_LEN) < 0)
            goto out;
        s = derived;
        s_len = CHUNK_LEN;
    }
    unsigned m = variant == QPP_VARIANT_A ? 6u : 7u;
    for (unsigned i = 0; i < m; i++) {
        uint8_t pw[CHUNK_LEN];
        for (unsigned j = 0; j < CHUNK_LEN; j++)
            pw[j] = s[(CHUNK_LEN * i + j) % s_len];
        int r1 = crypt_pbkdf2_sha1(pw, CHUNK_LEN, SEED_SALT, 1024, chunks[i], CHUNK_LEN);
        sodium_memzero(pw, sizeof(pw));
        if (r1 < 0 ||
            crypt_pbkdf2_sha1(chunks[i], CHUNK_LEN, SHUFFLE_SALT, 128, key, CHUNK_LEN) < 0)
            goto out;
        if (gcry_cipher_open(&aes[i], GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_ECB, 0) ||
            gcry_cipher_setkey(aes[i], key, sizeof(key)))
            goto out;
    }
    for (unsigned p = 0; p < count; p++) {
        build_pad(p, (const uint8_t(*)[CHUNK_LEN])chunks, m, aes, variant == QPP_VARIANT_C,
                  q->pad[p]);
        for (unsigned i = 0; i < 256; i++)
            q->inv[p][q->pad[p][i]] = (uint8_t)i;
    }
    rc = 0;
out:
    for (unsigned i = 0; i < MAX_CHUNKS; i++)
        if (aes[i])
            gcry_cipher_close(aes[i]);
    sodium_memzero(chunks, sizeof(chunks));
    sodium_memzero(derived, sizeof(derived));
    sodium_memzero(key, sizeof(key));
    sodium_memzero(h, sizeof(h));
    if (rc < 0) {
        qpp_free(q);
        q = NULL;
    }
    if (err)
        *err = rc;
    return q;
}

void qpp_free(struct qpp *q)
{
    if (!q)
        return;
    if (q->pad)
        sodium_memzero(q->pad, (size_t)q->count * 256u);
    if (q->inv)
        sodium_memzero(q->inv, (size_t)q->count * 256u);
    free(q->pad);
    free(q->inv);
    sodium_memzero(q, sizeof(*q));
    free(q);
}

void qpp_stream_init(const struct qpp *q, struct qpp_stream *st)
{
    memcpy(st->s, q->s0, sizeof(st->s));
    st->w = xoshiro_next(st->s);
    st->pos = 0;
}

static void transform(const struct qpp *q, struct qpp_stream *st, uint8_t *p, size_t len,
                      bool decrypt)
{
    uint64_t w = st->w;
    unsigned pos = st->pos;
    const uint8_t *pad = decrypt ? q->inv[(w & 0xffffu) % q->count] : q->pad[(w & 0xffffu) % q->count];
    for (size_t i = 0; i < len; i++) {
        uint8_t x = (uint8_t)(w >> (8u * pos));
        p[i] = decrypt ? (uint8_t)(pad[p[i]] ^ x) : pad[(uint8_t)(p[i] ^ x)];
        if (++pos == 8) {
            pos = 0;
            w = xoshiro_next(st->s);
            pad = decrypt ? q->inv[(w & 0xffffu) % q->count] : q->pad[(w & 0xffffu) % q->count];
        }
    }
    st->w = w;
    st->pos = pos;
}

void qpp_encrypt(const struct qpp *q, struct qpp_stream *st, uint8_t *p, size_t len)
{
    transform(q, st, p, len, false);
}

void qpp_decrypt(const struct qpp *q, struct qpp_stream *st, uint8_t *p, size_t len)
{
    transform(q, st, p, len, true);
}

const uint8_t *qpp_pad(const struct qpp *q, unsigned i)
{
    return q->pad[i];
}

int qpp_variant_parse(const char *s, enum qpp_variant *out)
{
    if (!s || !s[0] || s[1])
        return ERR_INVAL;
    switch (s[0]) {
    case 'A': case 'a': *out = QPP_VARIANT_A; return 0;
    case 'B': case 'b': *out = QPP_VARIANT_B; return 0;
    case 'C': case 'c': *out = QPP_VARIANT_C; return 0;
    default: return ERR_INVAL;
    }
}

const char *qpp_variant_name(enum qpp_variant v)
{
    static const char *const names[QPP_VARIANT_COUNT] = {"A", "B", "C"};
    return (unsigned)v < QPP_VARIANT_COUNT ? names[v] : "?";
}
