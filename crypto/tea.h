/* SPDX-License-Identifier: MIT */
/* TEA (x/crypto's 16-round variant) and XTEA in kcp-go's CFB mode, big-endian words. */
#ifndef KTUN_TEA_H
#define KTUN_TEA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEA_BLOCK_LEN 8
#define TEA_KEY_LEN 16

enum tea_variant {
    TEA_16,  /* TEA as golang.org/x/crypto runs it for kcp-go: NewCipherWithRounds(key, 16),
                i.e. 8 cycles of the classic loop */
    TEA_XTEA, /* standard XTEA: 32 cycles (64 rounds) */
    TEA_VARIANT_COUNT
};

/* Expanded key. */
struct tea_key {
    enum tea_variant variant; /* which cipher */
    uint32_t k[4];            /* key words k0..k3 = BE32(key[0:4]) .. BE32(key[12:16]) */
    uint32_t xtea[64];        /* XTEA: sum + k[...] for each of the 64 half-cycles */
};

/* Loads the 16-byte |key| into |tk| for |variant|. */
void tea_key_init(struct tea_key *tk, enum tea_variant variant,
                  const uint8_t key[static TEA_KEY_LEN]);

/* Encrypts the one block |v| (v[0] = BE32(block[0:4]), v[1] = BE32(block[4:8])) in place. */
void tea_encrypt_block(const struct tea_key *tk, uint32_t v[static 2]);

/* CFB over |len| bytes at |p| in place, as kcp-go runs it: keystream block i is the
 * encryption of ciphertext block i-1 (of |iv| first); a final short block uses a prefix of
 * its keystream block. |decrypt| selects the direction. */
void tea_cfb(const struct tea_key *tk, const uint8_t iv[static TEA_BLOCK_LEN], uint8_t *p,
             size_t len, bool decrypt);

#endif
