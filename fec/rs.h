/* SPDX-License-Identifier: MIT */
/* Reed-Solomon erasure codec over GF(2^8), parity-compatible with klauspost/reedsolomon. */
#ifndef KTUN_RS_H
#define KTUN_RS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The code is the one klauspost/reedsolomon.New(ds, ps) builds with default options
 * (klauspost/reedsolomon): field GF(2^8) with polynomial 0x11D, Vandermonde matrix V[r][c] = r^c
 * over ds + ps rows, coding matrix M = V x inverse(top ds x ds square of V). The top ds rows
 * of M are the identity (data shards travel unchanged); rows ds .. ds+ps-1 give the parity.
 * The GF(2^8) kernels are Intel ISA-L's (same field).
 */

#define RS_MAX_SHARDS 256 /* ds + ps limit (kcptun and klauspost) */

struct rs;

/* Creates a codec for |data_shards| data and |parity_shards| parity shards. Both must be
 * >= 1 and their sum <= RS_MAX_SHARDS. Returns the codec (free with rs_free) or NULL when
 * the counts are out of range or memory ran out. */
struct rs *rs_new(int data_shards, int parity_shards);

/* Frees |rs| and its decode-table cache. NULL is allowed. */
void rs_free(struct rs *rs);

/* Number of data / parity shards |rs| was created with. */
int rs_data_shards(const struct rs *rs);
int rs_parity_shards(const struct rs *rs);

/* Computes the parity shards of one stripe. |data| holds data_shards pointers to |len|
 * readable bytes each; |parity| holds parity_shards pointers to |len| writable bytes each
 * (must not overlap the data). Any |len| and alignment are accepted; len 0 does nothing.
 * Returns 0, or ERR_TOOBIG when |len| exceeds INT_MAX. */
int rs_encode(struct rs *rs, const uint8_t *const *data, uint8_t *const *parity, size_t len);

/* Restores missing data shards of one stripe. |shards| holds data_shards + parity_shards
 * pointers to |len| bytes each and |present| says which of them hold received content.
 * For every data shard i with !present[i], shards[i] must point to |len| writable bytes,
 * which receive the recovered content; missing parity shards are ignored (their pointers
 * may be NULL) and not rebuilt. Present shards are only read.
 * Decode tables are built per erasure pattern and kept in a small bounded cache, so a
 * repeated pattern costs only the GF multiplication.
 * Returns 0 (also when no data shard was missing), ERR_AGAIN when fewer than data_shards
 * shards are present (nothing written), ERR_TOOBIG when |len| exceeds INT_MAX, or ERR_NOMEM
 * when a new decode table could not be allocated. */
int rs_reconstruct_data(struct rs *rs, uint8_t *const *shards, const bool *present, size_t len);

/* Coefficient of data shard |col| in parity shard |row| (row 0 .. parity_shards-1) of the
 * coding matrix, for tests and diagnostics. */
uint8_t rs_parity_coef(const struct rs *rs, int row, int col);

#endif
