/* SPDX-License-Identifier: MIT */
/* TEA (x/crypto's 16-round variant) and XTEA block encryption, big-endian words. */
#ifndef KTUN_TEA_H
#define KTUN_TEA_H

#include <stdint.h>

#define TEA_BLOCK_LEN 8
#define TEA_KEY_LEN 16

/* Expanded key: the four big-endian key words. */
struct tea_key {
    uint32_t k[4]; /* key words k0..k3 */
};

/* Loads the 16-byte |key| into |tk| (k0 = BE32(key[0:4]) ... k3 = BE32(key[12:16])). */
void tea_key_init(struct tea_key *tk, const uint8_t key[static TEA_KEY_LEN]);

/* Encrypts one 8-byte block from |in| into |out| (may alias) with TEA as golang.org/x/crypto
 * runs it for kcp-go: NewCipherWithRounds(key, 16), i.e. 8 cycles of the classic loop. */
void tea16_encrypt(const struct tea_key *tk, const uint8_t in[static TEA_BLOCK_LEN],
                   uint8_t out[static TEA_BLOCK_LEN]);

/* Encrypts one 8-byte block from |in| into |out| (may alias) with standard XTEA (32 cycles,
 * 64 rounds). */
void xtea_encrypt(const struct tea_key *tk, const uint8_t in[static TEA_BLOCK_LEN],
                  uint8_t out[static TEA_BLOCK_LEN]);

#endif
