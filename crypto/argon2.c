/* SPDX-License-Identifier: MIT */
/* BLAKE2b (RFC 7693) and Argon2id v1.3 (RFC 9106), written small: one mixing routine serves
 * BLAKE2b's rounds and Argon2's permutation P (which adds 2 * lo32(a) * lo32(b) to each
 * addition and takes no message words). See crypto/argon2.h. */
#include "crypto/argon2.h"

#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

#define BLOCK_WORDS 128 /* an Argon2 block: 1 KiB */
#define SYNC_POINTS 4   /* slices per pass */
#define ARGON2_VERSION 0x13u
#define ARGON2_TYPE_ID 2u

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
    0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
};

/* The message word schedule of BLAKE2b's rounds (round r uses row r mod 10). */
static const uint8_t sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

/* The state words a, b, c, d of the eight G applications of a round, one nibble each:
 * the four columns, then the four diagonals. */
static const uint16_t g_words[8] = {0x048c, 0x159d, 0x26ae, 0x37bf,
                                    0x05af, 0x16bc, 0x278d, 0x349e};

static uint64_t rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static void store64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++, x >>= 8)
        p[i] = (uint8_t)x;
}

/* a + b, plus 2 * lo32(a) * lo32(b) in Argon2's variant (|mul|). */
static uint64_t add(uint64_t a, uint64_t b, int mul)
{
    return a + b + (mul ? 2 * (uint64_t)(uint32_t)a * (uint32_t)b : 0);
}

/* One round on the 16 words |v|: BLAKE2b's with message |m| scheduled by |s|, or Argon2's P
 * when |m| is NULL. */
static void mix(uint64_t v[16], const uint64_t *m, const uint8_t *s)
{
    int mul = m == NULL;
    for (int i = 0; i < 8; i++) {
        unsigned w = g_words[i];
        uint64_t *a = &v[w >> 12], *b = &v[(w >> 8) & 15], *c = &v[(w >> 4) & 15],
                 *d = &v[w & 15];
        *a = add(*a, *b, mul) + (m ? m[s[2 * i]] : 0);
        *d = rotr64(*d ^ *a, 32);
        *c = add(*c, *d, mul);
        *b = rotr64(*b ^ *c, 24);
        *a = add(*a, *b, mul) + (m ? m[s[2 * i + 1]] : 0);
        *d = rotr64(*d ^ *a, 16);
        *c = add(*c, *d, mul);
        *b = rotr64(*b ^ *c, 63);
    }
}

static void blake2b_compress(struct blake2b *s, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64(s->buf + 8 * i);
    memcpy(v, s->h, sizeof(s->h));
    memcpy(v + 8, blake2b_iv, sizeof(blake2b_iv));
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 12; r++)
        mix(v, m, sigma[r % 10]);
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_count(struct blake2b *s, size_t n)
{
    s->t[0] += n;
    if (s->t[0] < n)
        s->t[1]++;
}

void blake2b_init(struct blake2b *s, size_t out_len)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->h, blake2b_iv, sizeof(s->h));
    s->h[0] ^= 0x01010000u ^ out_len; /* parameter block: fanout 1, depth 1, no key */
    s->out_len = out_len;
}

void blake2b_update(struct blake2b *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        if (s->fill == BLAKE2B_BLOCK_LEN) { /* more follows: this block is not the last */
            blake2b_count(s, BLAKE2B_BLOCK_LEN);
            blake2b_compress(s, 0);
            s->fill = 0;
        }
        size_t n = BLAKE2B_BLOCK_LEN - s->fill;
        if (n > len)
            n = len;
        memcpy(s->buf + s->fill, p, n);
        s->fill += n;
        p += n;
        len -= n;
    }
}

void blake2b_final(struct blake2b *s, uint8_t *out)
{
    uint8_t h[BLAKE2B_OUT_MAX];
    blake2b_count(s, s->fill);
    memset(s->buf + s->fill, 0, BLAKE2B_BLOCK_LEN - s->fill);
    blake2b_compress(s, 1);
    for (int i = 0; i < 8; i++)
        store64(h + 8 * i, s->h[i]);
    memcpy(out, h, s->out_len);
    explicit_bzero(h, sizeof(h));
    explicit_bzero(s, sizeof(*s));
}

static void blake2b_le32(struct blake2b *s, size_t x)
{
    uint8_t b[4];
    put_u32le(b, (uint32_t)x);
    blake2b_update(s, b, 4);
}

/* RFC 9106's variable-length hash H'^|out_len|(|in|). */
static void hprime(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
    struct blake2b s;
    uint8_t v[BLAKE2B_OUT_MAX];
    blake2b_init(&s, out_len <= BLAKE2B_OUT_MAX ? out_len : BLAKE2B_OUT_MAX);
    blake2b_le32(&s, out_len);
    blake2b_update(&s, in, in_len);
    if (out_len <= BLAKE2B_OUT_MAX) {
        blake2b_final(&s, out);
        return;
    }
    blake2b_final(&s, v);
    for (;;) {
        memcpy(out, v, 32);
        out += 32;
        out_len -= 32;
        blake2b_init(&s, out_len <= BLAKE2B_OUT_MAX ? out_len : BLAKE2B_OUT_MAX);
        blake2b_update(&s, v, sizeof(v));
        if (out_len <= BLAKE2B_OUT_MAX)
            break;
        blake2b_final(&s, v);
    }
    blake2b_final(&s, out);
    explicit_bzero(v, sizeof(v));
}

/* The compression G: |dst| = P(|x| ^ |y|) ^ |x| ^ |y|, XORed into |dst| when |acc|. P runs
 * on the eight rows of 16 words, then on the eight columns (word pairs 2i, 2i+1 of each
 * row). |dst| may be |y|. */
static void compress(uint64_t *dst, const uint64_t *x, const uint64_t *y, int acc)
{
    uint64_t r[BLOCK_WORDS], t[BLOCK_WORDS], v[16];
    for (int k = 0; k < BLOCK_WORDS; k++)
        r[k] = t[k] = x[k] ^ y[k];
    for (int i = 0; i < 8; i++)
        mix(t + 16 * i, NULL, NULL);
    for (int i = 0; i < 8; i++) {
        for (int k = 0; k < 8; k++) {
            v[2 * k] = t[2 * i + 16 * k];
            v[2 * k + 1] = t[2 * i + 16 * k + 1];
        }
        mix(v, NULL, NULL);
        for (int k = 0; k < 8; k++) {
            t[2 * i + 16 * k] = v[2 * k];
            t[2 * i + 16 * k + 1] = v[2 * k + 1];
        }
    }
    for (int k = 0; k < BLOCK_WORDS; k++)
        dst[k] = (acc ? dst[k] : 0) ^ t[k] ^ r[k];
}

struct argon2 {
    uint64_t (*b)[BLOCK_WORDS]; /* lanes x q blocks */
    uint32_t lanes, q, sl;      /* lanes, blocks per lane, blocks per segment */
    uint32_t passes;
};

/* Fills segment |s| of lane |l| in pass |r|. */
static void fill_segment(const struct argon2 *a, uint32_t r, uint32_t l, uint32_t s)
{
    static const uint64_t zero[BLOCK_WORDS];
    uint64_t in[BLOCK_WORDS] = {0}, addr[BLOCK_WORDS];
    int indep = r == 0 && s < 2; /* Argon2id: Argon2i's addressing in the first half pass */
    uint32_t start = r == 0 && s == 0 ? 2 : 0;
    in[0] = r;
    in[1] = l;
    in[2] = s;
    in[3] = (uint64_t)a->q * a->lanes;
    in[4] = a->passes;
    in[5] = ARGON2_TYPE_ID;
    for (uint32_t i = start; i < a->sl; i++) {
        uint64_t curr = (uint64_t)l * a->q + (uint64_t)s * a->sl + i;
        uint64_t prev = curr % a->q ? curr - 1 : curr + a->q - 1;
        uint64_t rnd;
        if (indep) {
            if (i == start || i % BLOCK_WORDS == 0) {
                in[6]++;
                compress(addr, zero, in, 0);
                compress(addr, zero, addr, 0);
            }
            rnd = addr[i % BLOCK_WORDS];
        } else {
            rnd = a->b[prev][0];
        }
        uint32_t ref_lane = r == 0 && s == 0 ? l : (uint32_t)((rnd >> 32) % a->lanes);
        int same = ref_lane == l;
        uint64_t area;
        if (r == 0)
            area = (uint64_t)s * a->sl;
        else
            area = a->q - a->sl;
        if (same)
            area += (uint64_t)i - 1; /* all but the block being made */
        else if (i == 0)
            area -= 1; /* all of the other lane but its last block */
        uint64_t j1 = rnd & 0xffffffffu;
        uint64_t rel = area - 1 - ((area * ((j1 * j1) >> 32)) >> 32);
        uint64_t first = r != 0 && s != SYNC_POINTS - 1 ? (uint64_t)(s + 1) * a->sl : 0;
        uint64_t ref = (uint64_t)ref_lane * a->q + (first + rel) % a->q;
        compress(a->b[curr], a->b[prev], a->b[ref], r != 0);
    }
}

int argon2id(uint8_t *out, size_t out_len, const void *pwd, size_t pwd_len, const void *salt,
             size_t salt_len, const void *secret, size_t secret_len, const void *ad,
             size_t ad_len, uint32_t t_cost, uint32_t m_kib, uint32_t lanes)
{
    if (lanes < 1 || lanes > 0xffffffu || t_cost < 1 || m_kib / 8 < lanes || out_len < 4 ||
        out_len > 0xffffffffu)
        return -1;
    struct argon2 a = {.lanes = lanes, .passes = t_cost};
    a.q = m_kib / (SYNC_POINTS * lanes) * SYNC_POINTS;
    a.sl = a.q / SYNC_POINTS;
    size_t blocks = (size_t)a.q * lanes;
    if (blocks > SIZE_MAX / sizeof(*a.b) || !(a.b = malloc(blocks * sizeof(*a.b))))
        return -1;

    /* H0, then the first two blocks of every lane from H'(H0 || LE32(j) || LE32(lane)). */
    struct blake2b s;
    uint8_t h0[BLAKE2B_OUT_MAX + 8], bytes[BLOCK_WORDS * 8];
    blake2b_init(&s, BLAKE2B_OUT_MAX);
    const size_t head[6] = {lanes, out_len, m_kib, t_cost, ARGON2_VERSION, ARGON2_TYPE_ID};
    for (int i = 0; i < 6; i++)
        blake2b_le32(&s, head[i]);
    const void *field[4] = {pwd, salt, secret, ad};
    const size_t field_len[4] = {pwd_len, salt_len, secret_len, ad_len};
    for (int i = 0; i < 4; i++) {
        blake2b_le32(&s, field_len[i]);
        if (field_len[i])
            blake2b_update(&s, field[i], field_len[i]);
    }
    blake2b_final(&s, h0);
    for (uint32_t l = 0; l < lanes; l++) {
        for (uint32_t j = 0; j < 2; j++) {
            put_u32le(h0 + BLAKE2B_OUT_MAX, j);
            put_u32le(h0 + BLAKE2B_OUT_MAX + 4, l);
            hprime(bytes, sizeof(bytes), h0, sizeof(h0));
            for (int k = 0; k < BLOCK_WORDS; k++)
                a.b[(size_t)l * a.q + j][k] = load64(bytes + 8 * k);
        }
    }

    for (uint32_t r = 0; r < t_cost; r++)
        for (uint32_t sl = 0; sl < SYNC_POINTS; sl++)
            for (uint32_t l = 0; l < lanes; l++)
                fill_segment(&a, r, l, sl);

    /* The tag: H' of the XOR of every lane's last block. */
    uint64_t *c = a.b[a.q - 1];
    for (uint32_t l = 1; l < lanes; l++)
        for (int k = 0; k < BLOCK_WORDS; k++)
            c[k] ^= a.b[(size_t)l * a.q + a.q - 1][k];
    for (int k = 0; k < BLOCK_WORDS; k++)
        store64(bytes + 8 * k, c[k]);
    hprime(out, out_len, bytes, sizeof(bytes));

    explicit_bzero(h0, sizeof(h0));
    explicit_bzero(bytes, sizeof(bytes));
    explicit_bzero(a.b, blocks * sizeof(*a.b));
    free(a.b);
    return 0;
}
