/* SPDX-License-Identifier: MIT */
/* Pure core: QPP (Quantum Permutation Pad), the per-stream byte substitution of kcptun --QPP. */
#ifndef KTUN_QPP_H
#define KTUN_QPP_H

#include <stddef.h>
#include <stdint.h>

/*
 * kcptun's --QPP (xtaci/qpp) substitutes every byte carried inside an smux stream (PSH
 * payloads only), separately per direction; headers, snappy, KCP, FEC and the crypt layer are
 * untouched. Nothing on the wire says QPP is on: both ends need the same key, --QPPCount and
 * pad variant. docs/kcptun-newer.md has the full description; in short:
 *
 *   seed  = the raw --key bytes (not the PBKDF2 key of the crypt layer)
 *   pads  = QPPCount permutations of 0..255, built once per process from the seed
 *   PRNG  = xoshiro256** seeded with PBKDF2-HMAC-SHA1(HMAC-SHA256(seed,
 *           "PERMUTATION_MATRIX_SELECTOR"), "___QUANTUM_PERMUTATION_PAD_PRNG_SALT___", 128, 32),
 *           restarted for every stream and every direction
 *   byte k of a direction: w = W[k / 8], x = byte (k mod 8) of w (least significant first),
 *           P = pads[(w mod 65536) mod count]; encrypt c = P[b ^ x], decrypt b = P^-1[c] ^ x
 *
 * The transform is positional: any split into calls gives the same bytes.
 *
 * Pad variants (the PRNG and the byte transform are the same in all three):
 *   QPP_VARIANT_A  6 chunks, shuffle encrypts h[0:16]        qpp v1.1.16-v1.1.18: kcptun builds
 *                  2024-07-16 .. 2025-12-18 (releases up to v20251124)
 *   QPP_VARIANT_B  7 chunks, shuffle encrypts h[0:16]        qpp v1.1.19-v1.1.22: kcptun builds
 *                  2025-12-18 .. 2025-12-22 (v20251219)
 *   QPP_VARIANT_C  7 chunks, shuffle encrypts h[0:16], h[16:32]  qpp v1.1.23-v1.1.25: kcptun
 *                  builds from 2025-12-22 (v20260208, the last release); the default
 * kcptun builds from 2024-06-30 to 2024-07-16 (v20240701) used earlier schemes, not supported.
 */

enum qpp_variant {
    QPP_VARIANT_A,
    QPP_VARIANT_B,
    QPP_VARIANT_C,
    QPP_VARIANT_COUNT
};

#define QPP_VARIANT_DEFAULT QPP_VARIANT_C
#define QPP_COUNT_DEFAULT 61
#define QPP_COUNT_MAX 65535 /* kcptun truncates the count to 16 bits; ktun refuses more */

/* One direction of one stream: the PRNG state and the position inside the current word. */
struct qpp_stream {
    uint64_t s[4]; /* xoshiro256** state after the current word was drawn */
    uint64_t w;    /* current word */
    unsigned pos;  /* next byte of w to use, 0..7 */
};

struct qpp; /* the pads of one process (read-only once built: share it freely) */

/* Builds the pads for |seed| (|seed_len| raw key bytes), |count| (1..QPP_COUNT_MAX) pads of
 * |variant|. Costs about 61 * 255 * 14 AES blocks and seven 1024-iteration PBKDF2 runs for the
 * default count: call once at start-up. Returns NULL with *|err| set to ERR_INVAL (bad count or
 * variant, or a library failure) or ERR_NOMEM; |err| may be NULL. */
struct qpp *qpp_new(const void *seed, size_t seed_len, unsigned count, enum qpp_variant variant,
                    int *err);

/* Frees |q|; NULL is fine. */
void qpp_free(struct qpp *q);

/* Sets |st| to the start of a stream direction (keystream position 0). */
void qpp_stream_init(const struct qpp *q, struct qpp_stream *st);

/* Transforms |len| bytes at |p| in place, continuing at |st|'s position. */
void qpp_encrypt(const struct qpp *q, struct qpp_stream *st, uint8_t *p, size_t len);
void qpp_decrypt(const struct qpp *q, struct qpp_stream *st, uint8_t *p, size_t len);

/* Pad |i| (< count) as 256 bytes (for tests). */
const uint8_t *qpp_pad(const struct qpp *q, unsigned i);

/* Parses "A", "B" or "C" (either case) into |*out|. Returns 0 or ERR_INVAL. */
int qpp_variant_parse(const char *s, enum qpp_variant *out);

/* "A", "B" or "C". */
const char *qpp_variant_name(enum qpp_variant v);

#endif
