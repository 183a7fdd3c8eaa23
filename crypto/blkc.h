/* SPDX-License-Identifier: MIT */
/* Block ciphers of our own for kcptun's CFB methods, written from their specifications:
 * AES (FIPS-197, crypto/aes.c), Blowfish (Schneier 1993), Twofish (Schneier et al. 1998),
 * CAST-128 (RFC 2144), triple DES EDE (FIPS 46-3), SM4 (GB/T 32907-2016). Encryption only:
 * CFB runs the cipher forwards in both directions. Table-driven and not constant-time, like
 * the libraries' portable code for these ciphers; none of kcptun's CFB methods is
 * authenticated anyway (the authenticated ones are aes-128-gcm and xsalsa20-poly1305).
 *
 * These serve the builds without libgcrypt (make GCRYPT=0); the unit tests check them in
 * every build against the standards' known answers and kcp-go's vectors. */
#ifndef KTUN_BLKC_H
#define KTUN_BLKC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/aes.h"

#define BLKC_MAX_BLOCK 16

enum blkc_algo {
    BLKC_AES,      /* 16-, 24- or 32-byte key */
    BLKC_BLOWFISH, /* 1..56-byte key */
    BLKC_TWOFISH,  /* 16-, 24- or 32-byte key */
    BLKC_CAST5,    /* 5..16-byte key (12 rounds up to 10 bytes) */
    BLKC_3DES,     /* 24-byte key: E(k1) D(k2) E(k3), weak keys accepted as Go accepts them */
    BLKC_SM4,      /* 16-byte key */
};

struct blowfish_key {
    uint32_t p[18];
    uint32_t s[4][256];
};

struct twofish_key {
    uint32_t k[40];     /* whitening and round subkeys */
    uint32_t s[4][256]; /* key-dependent S-boxes through the MDS matrix, one per input byte */
};

struct cast5_key {
    uint32_t km[16];
    uint8_t kr[16];
    unsigned rounds; /* 12 or 16 */
};

struct des3_key {
    uint8_t sk[3][16][8]; /* 6-bit subkey chunks per DES, per round, in encryption order */
};

struct sm4_key {
    uint32_t rk[32];
};

struct blkc {
    enum blkc_algo algo;
    size_t block_len; /* 8 or 16 */
    union {
        struct aes_key aes;
        struct blowfish_key bf;
        struct twofish_key tf;
        struct cast5_key cast;
        struct des3_key des;
        struct sm4_key sm4;
    } u;
};

/* Keys |b| for |algo|. Returns 0, or -1 for a key length the cipher does not take. */
int blkc_setkey(struct blkc *b, enum blkc_algo algo, const uint8_t *key, size_t len);

/* Encrypts one block (b->block_len bytes): |out| may equal |in|. */
void blkc_encrypt(const struct blkc *b, const uint8_t *in, uint8_t *out);

/* CFB with full-block feedback over |len| bytes at |p| in place, starting from the
 * b->block_len-byte |iv|: keystream block i is the encryption of ciphertext block i-1; a final
 * short block uses a prefix of its keystream block (kcp-go's and libgcrypt's CFB). */
void blkc_cfb(const struct blkc *b, const uint8_t *iv, uint8_t *p, size_t len, bool decrypt);

/* The ciphers themselves (blkc_setkey dispatches to them). */
int blowfish_setkey(struct blowfish_key *k, const uint8_t *key, size_t len);
void blowfish_encrypt(const struct blowfish_key *k, const uint8_t in[8], uint8_t out[8]);
int twofish_setkey(struct twofish_key *k, const uint8_t *key, size_t len);
void twofish_encrypt(const struct twofish_key *k, const uint8_t in[16], uint8_t out[16]);
int cast5_setkey(struct cast5_key *k, const uint8_t *key, size_t len);
void cast5_encrypt(const struct cast5_key *k, const uint8_t in[8], uint8_t out[8]);
int des3_setkey(struct des3_key *k, const uint8_t *key, size_t len);
void des3_encrypt(const struct des3_key *k, const uint8_t in[8], uint8_t out[8]);
int sm4_setkey(struct sm4_key *k, const uint8_t *key, size_t len);
void sm4_encrypt(const struct sm4_key *k, const uint8_t in[16], uint8_t out[16]);

#endif
