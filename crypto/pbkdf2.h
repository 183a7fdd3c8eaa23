/* SPDX-License-Identifier: MIT */
/* SHA-1, HMAC-SHA1 and PBKDF2-HMAC-SHA1 (RFC 3174, 2104, 8018): kcptun's key derivation, for
 * builds without libgcrypt. SHA-1 serves only inside HMAC here, where its collisions do not
 * matter. */
#ifndef KTUN_PBKDF2_H
#define KTUN_PBKDF2_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA1_BLOCK_LEN 64

struct sha1 {
    uint32_t h[5];
    uint64_t total;              /* bytes hashed */
    uint8_t buf[SHA1_BLOCK_LEN]; /* partial block */
};

void sha1_init(struct sha1 *s);
void sha1_update(struct sha1 *s, const void *data, size_t len);
void sha1_final(struct sha1 *s, uint8_t out[SHA1_LEN]);

/* Derives |out_len| bytes from |pass| and |salt| with |iter| (>= 1) iterations. */
void pbkdf2_hmac_sha1(const void *pass, size_t pass_len, const void *salt, size_t salt_len,
                      unsigned long iter, uint8_t *out, size_t out_len);

#endif
