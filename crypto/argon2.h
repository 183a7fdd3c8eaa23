/* SPDX-License-Identifier: MIT */
/* BLAKE2b (RFC 7693) and Argon2id version 0x13 (RFC 9106): the secure mode's key derivation
 * for the size profile (make PROFILE=size), where libsodium's crypto_pwhash would bring about
 * 50 KB of unrolled code on a router. Same output as crypto_pwhash(..., ALG_ARGON2ID13):
 * one lane, memory in KiB, checked against libsodium and RFC 9106 in tests/unit/. Written for
 * size, not speed: derivation runs once per process. */
#ifndef KTUN_ARGON2_H
#define KTUN_ARGON2_H

#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_OUT_MAX 64
#define BLAKE2B_BLOCK_LEN 128

struct blake2b {
    uint64_t h[8];
    uint64_t t[2];                    /* bytes compressed so far */
    uint8_t buf[BLAKE2B_BLOCK_LEN];   /* pending bytes, compressed when more arrive */
    size_t fill;                      /* bytes in buf */
    size_t out_len;                   /* 1..64 */
};

/* Unkeyed BLAKE2b with an |out_len|-byte digest (1..64). */
void blake2b_init(struct blake2b *s, size_t out_len);
void blake2b_update(struct blake2b *s, const void *data, size_t len);
void blake2b_final(struct blake2b *s, uint8_t *out);

/* Argon2id v1.3 of |pwd| with |salt| (and optional |secret|, |ad|: RFC 9106's K and X; NULL
 * with length 0 when unused): |t_cost| passes (>= 1) over |m_kib| KiB (>= 8 * lanes) in
 * |lanes| lanes (>= 1), |out_len| (>= 4) bytes into |out|. Returns 0, or -1 on bad
 * parameters or when the memory cannot be had. */
int argon2id(uint8_t *out, size_t out_len, const void *pwd, size_t pwd_len, const void *salt,
             size_t salt_len, const void *secret, size_t secret_len, const void *ad,
             size_t ad_len, uint32_t t_cost, uint32_t m_kib, uint32_t lanes);

#endif
