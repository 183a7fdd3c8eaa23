/* SPDX-License-Identifier: MIT */
/* ktun's authenticated datagram mode: XSalsa20-Poly1305 with sender id, counter and time. */
#ifndef KTUN_SECURE_H
#define KTUN_SECURE_H

#include "crypto/crypt.h"

/*
 * Datagram (docs/secure-mode.md is the normative description; all integers little-endian):
 *
 *   0   nonce[24]            random per datagram
 *   24  sender_id u64    \
 *   32  counter u64       |  inner header, encrypted and authenticated
 *   40  time_ms u48       |
 *   46  direction u8      |  1 = client to server, 2 = server to client
 *   47  version u8       /   1
 *   48  payload          encrypted and authenticated
 *   len-16 tag[16]       Poly1305 (crypto_secretbox_detached over bytes 24..len-16)
 */

#define SECURE_NONCE_LEN 24
#define SECURE_INNER_LEN 24
#define SECURE_VERSION 1

/* Per-object secure state: key, own sender id and counter, peer replay table. */
struct secure;

/* Creates the state for the Argon2id-derived |key|; draws the sender id from |rng| (only
 * here: nonces come from the caller). Returns NULL on ERR_NOMEM. */
struct secure *secure_new(const uint8_t key[static CRYPT_KEY_LEN], crypt_rng_fn *rng,
                          void *rng_user);

/* Wipes and frees |s|; NULL is fine. */
void secure_free(struct secure *s);

/* Sets the direction |s| writes and the opposite one it accepts. */
void secure_set_role(struct secure *s, enum crypt_role role);

/* Refuses new senders whose datagrams were sealed before |start_ms| (crypt_set_start). */
void secure_set_start(struct secure *s, uint64_t start_ms);

/* Seals the |payload_len| bytes at buf + CRYPT_SECURE_HEAD_LEN in place; the caller has put a
 * fresh random nonce in buf[0..24) and checked the room. Returns the datagram length. */
size_t secure_seal(struct secure *s, uint8_t *buf, size_t payload_len, uint64_t now_ms);

/* Opens |len| bytes at |buf| in place, counting drops in |st|. Returns the payload length
 * (payload at buf + CRYPT_SECURE_HEAD_LEN), ERR_AUTH, ERR_LIMIT or ERR_NOMEM (crypt_open). */
ssize_t secure_open(struct secure *s, uint8_t *buf, size_t len, uint64_t now_ms,
                    struct crypt_stats *st);

#endif
