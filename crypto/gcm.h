/* SPDX-License-Identifier: MIT */
/* AES-GCM (NIST SP 800-38D) with a 96-bit nonce, no additional data and a 128-bit tag, as
 * kcp-go's aeadCrypt uses it for aes-128-gcm: our portable AES (crypto/aes.c) in counter mode
 * and GHASH by 4-bit tables (Shoup's method). For the builds without libgcrypt (libsodium has
 * AES-GCM only on CPUs with AES-NI). Not constant-time (table lookups on key-dependent data),
 * like table AES. */
#ifndef KTUN_GCM_H
#define KTUN_GCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/aes.h"

#define GCM_NONCE_BYTES 12
#define GCM_TAG_BYTES 16

struct aes_gcm {
    struct aes_key aes;
    uint64_t mh[16], ml[16]; /* n * H for every 4-bit n, high and low 64 bits */
};

/* Keys |g| with a 16-, 24- or 32-byte AES key. Returns 0 or -1. */
int aes_gcm_setkey(struct aes_gcm *g, const uint8_t *key, size_t len);

/* Encrypts |len| bytes at |p| in place under |nonce| and writes the tag. */
void aes_gcm_seal(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p, size_t len,
              uint8_t tag[GCM_TAG_BYTES]);

/* Decrypts the ciphertext |p| (|len| bytes) in place and writes the tag it should carry. */
void aes_gcm_decrypt(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p,
                 size_t len, uint8_t tag[GCM_TAG_BYTES]);

/* Computes the tag of the ciphertext |p| (|len| bytes) and decrypts it in place. Returns true
 * if the tag equals |tag| (compared in constant time); the plaintext is meaningless if not. */
bool aes_gcm_open(const struct aes_gcm *g, const uint8_t nonce[GCM_NONCE_BYTES], uint8_t *p, size_t len,
              const uint8_t tag[GCM_TAG_BYTES]);

#endif
