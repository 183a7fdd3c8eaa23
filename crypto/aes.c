/* SPDX-License-Identifier: MIT */
/* Portable AES encryption (FIPS-197) and CFB-128, see aes.h. */
#include "crypto/aes.h"

#include <pthread.h>
#include <string.h>

static uint8_t sbox[256];
static uint32_t te0[256]; /* column (2s, s, s, 3s) of MixColumns, big-endian word */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Multiplication by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1. */
static uint8_t xtime(uint8_t a)
{
    return (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0));
}

static uint8_t rotl8(uint8_t x, unsigned n)
{
    return (uint8_t)((x << n) | (x >> (8 - n)));
}

/* S-box from its definition: multiplicative inverse, then the affine map. p walks the group
 * by multiplying with 3 and q by dividing by 3, so q is always p's inverse. */
static void build_tables(void)
{
    uint8_t p = 1, q = 1;
    do {
        p = (uint8_t)(p ^ xtime(p));
        q = (uint8_t)(q ^ (q << 1));
        q = (uint8_t)(q ^ (q << 2));
        q = (uint8_t)(q ^ (q << 4));
        if (q & 0x80)
            q ^= 0x09;
        sbox[p] = (uint8_t)(q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4) ^ 0x63);
    } while (p != 1);
    sbox[0] = 0x63;
    for (unsigned i = 0; i < 256; i++) {
        uint8_t s = sbox[i], s2 = xtime(s), s3 = (uint8_t)(s2 ^ s);
        te0[i] = (uint32_t)s2 << 24 | (uint32_t)s << 16 | (uint32_t)s << 8 | s3;
    }
}

static uint32_t ror32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t sub_word(uint32_t w)
{
    return (uint32_t)sbox[w >> 24] << 24 | (uint32_t)sbox[(w >> 16) & 0xff] << 16 |
           (uint32_t)sbox[(w >> 8) & 0xff] << 8 | sbox[w & 0xff];
}

int aes_setkey(struct aes_key *k, const uint8_t *key, size_t len)
{
    if (len != 16 && len != 24 && len != 32)
        return -1;
    pthread_once(&tables_once, build_tables);
    unsigned nk = (unsigned)(len / 4), total = 4 * (nk + 7);
    uint8_t rcon = 1;
    k->rounds = nk + 6;
    for (unsigned i = 0; i < nk; i++)
        k->rk[i] = load_be32(key + 4 * i);
    for (unsigned i = nk; i < total; i++) {
        uint32_t t = k->rk[i - 1];
        if (i % nk == 0) {
            t = sub_word(t << 8 | t >> 24) ^ (uint32_t)rcon << 24;
            rcon = xtime(rcon);
        } else if (nk > 6 && i % nk == 4) {
            t = sub_word(t);
        }
        k->rk[i] = k->rk[i - nk] ^ t;
    }
    return 0;
}

/* One column of a full round: SubBytes, ShiftRows and MixColumns through te0 and its
 * rotations (a, b, c, d are the state columns in ShiftRows order). */
static uint32_t round_col(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    return te0[a >> 24] ^ ror32(te0[(b >> 16) & 0xff], 8) ^ ror32(te0[(c >> 8) & 0xff], 16) ^
           ror32(te0[d & 0xff], 24);
}

/* One column of the last round (no MixColumns). */
static uint32_t last_col(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    return (uint32_t)sbox[a >> 24] << 24 | (uint32_t)sbox[(b >> 16) & 0xff] << 16 |
           (uint32_t)sbox[(c >> 8) & 0xff] << 8 | sbox[d & 0xff];
}

void aes_encrypt_block(const struct aes_key *k, const uint8_t in[AES_BLOCK_LEN],
                       uint8_t out[AES_BLOCK_LEN])
{
    const uint32_t *rk = k->rk;
    uint32_t s0 = load_be32(in) ^ rk[0], s1 = load_be32(in + 4) ^ rk[1];
    uint32_t s2 = load_be32(in + 8) ^ rk[2], s3 = load_be32(in + 12) ^ rk[3];
    for (unsigned r = 1; r < k->rounds; r++) {
        rk += 4;
        uint32_t t0 = round_col(s0, s1, s2, s3) ^ rk[0];
        uint32_t t1 = round_col(s1, s2, s3, s0) ^ rk[1];
        uint32_t t2 = round_col(s2, s3, s0, s1) ^ rk[2];
        uint32_t t3 = round_col(s3, s0, s1, s2) ^ rk[3];
        s0 = t0, s1 = t1, s2 = t2, s3 = t3;
    }
    rk += 4;
    store_be32(out, last_col(s0, s1, s2, s3) ^ rk[0]);
    store_be32(out + 4, last_col(s1, s2, s3, s0) ^ rk[1]);
    store_be32(out + 8, last_col(s2, s3, s0, s1) ^ rk[2]);
    store_be32(out + 12, last_col(s3, s0, s1, s2) ^ rk[3]);
}

void aes_cfb_setiv(struct aes_cfb *c, const uint8_t iv[AES_BLOCK_LEN])
{
    memcpy(c->reg, iv, AES_BLOCK_LEN);
    c->used = AES_BLOCK_LEN;
}

/* CFB: each ciphertext block is the plaintext XOR E(previous ciphertext block, or the IV);
 * reg holds E(...) and, as it is consumed, becomes the ciphertext that feeds the next block. */
static void cfb(struct aes_cfb *c, uint8_t *p, size_t len, int decrypt)
{
    for (size_t i = 0; i < len; i++) {
        if (c->used == AES_BLOCK_LEN) {
            aes_encrypt_block(&c->key, c->reg, c->reg);
            c->used = 0;
        }
        uint8_t in = p[i], out = (uint8_t)(in ^ c->reg[c->used]);
        p[i] = out;
        c->reg[c->used++] = decrypt ? in : out;
    }
}

void aes_cfb_encrypt(struct aes_cfb *c, uint8_t *p, size_t len)
{
    cfb(c, p, len, 0);
}

void aes_cfb_decrypt(struct aes_cfb *c, uint8_t *p, size_t len)
{
    cfb(c, p, len, 1);
}
