/* SPDX-License-Identifier: MIT */
/* Portable AES (FIPS-197) encryption and CFB mode, for builds without libgcrypt.
 *
 * Table-driven with one 1 KB round table (the other three are its rotations) built at first
 * use; encryption only, which is all CFB needs. Not constant-time: the table lookups depend
 * on key and data, like every table AES; kcptun's AES methods carry no authentication either,
 * and the authenticated mode (xsalsa20-poly1305) does not use AES. */
#ifndef KTUN_AES_H
#define KTUN_AES_H

#include <stddef.h>
#include <stdint.h>

#define AES_BLOCK_LEN 16

struct aes_key {
    uint32_t rk[60]; /* round keys, 4 words per round plus the initial one */
    unsigned rounds; /* 10, 12 or 14 */
};

/* Expands a 16-, 24- or 32-byte |key|. Returns 0, or -1 for another length. */
int aes_setkey(struct aes_key *k, const uint8_t *key, size_t len);

/* Encrypts one block: |out| may equal |in|. */
void aes_encrypt_block(const struct aes_key *k, const uint8_t in[AES_BLOCK_LEN],
                       uint8_t out[AES_BLOCK_LEN]);

/* CFB-128 state: the feedback register and how much of its keystream is still unused, so
 * that a message may be processed in pieces of any length. */
struct aes_cfb {
    struct aes_key key;
    uint8_t reg[AES_BLOCK_LEN]; /* encrypted feedback register (keystream of the block) */
    size_t used;                /* bytes of reg consumed; AES_BLOCK_LEN = encrypt next */
};

/* Starts a message with the 16-byte |iv|. */
void aes_cfb_setiv(struct aes_cfb *c, const uint8_t iv[AES_BLOCK_LEN]);

/* Encrypts or decrypts |len| bytes of |p| in place. */
void aes_cfb_encrypt(struct aes_cfb *c, uint8_t *p, size_t len);
void aes_cfb_decrypt(struct aes_cfb *c, uint8_t *p, size_t len);

#endif
