/* SPDX-License-Identifier: MIT */
/* Pure core: kcptun's compression layer, the snappy framing format over one byte stream. */
#ifndef KTUN_COMP_H
#define KTUN_COMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Framing format (golang/snappy 0.0.2 as used by kcptun's CompStream).
 * A stream is a sequence of chunks, each
 *
 *     +--------+----------------+------------------------+
 *     | type 1 | body length LE24 | body (length bytes)  |
 *     +--------+----------------+------------------------+
 *
 *   0xff        stream identifier, body "sNaPpY" (length 6); must be the first chunk
 *   0x00        compressed data:   masked CRC-32C of the decoded bytes (LE32) | raw snappy block
 *   0x01        uncompressed data: masked CRC-32C (LE32) | the bytes
 *   0xfe        padding (skipped)
 *   0x80..0xfd  reserved skippable (skipped)
 *   0x02..0x7f  reserved unskippable (fatal)
 *
 * masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 where c is the CRC-32C (Castagnoli, init and
 * final xor 0xffffffff) of the decoded data. A data chunk decodes to at most COMP_BLOCK_MAX bytes;
 * a chunk body is at most COMP_CHUNK_MAX bytes (4 + the largest snappy encoding of a full block).
 */

#define COMP_BLOCK_MAX 65536u          /* largest decoded size of one data chunk */
#define COMP_CHUNK_MAX 76494u          /* largest accepted chunk body: 4 + 32 + n + n/6 */
#define COMP_CHUNK_HDR_LEN 4u          /* type + LE24 length */
#define COMP_CRC_LEN 4u                /* masked CRC-32C at the start of a data chunk body */
#define COMP_IDENT_LEN 10u             /* the whole stream identifier chunk */
#define COMP_TYPE_COMPRESSED 0x00u
#define COMP_TYPE_UNCOMPRESSED 0x01u
#define COMP_TYPE_PADDING 0xfeu
#define COMP_TYPE_IDENT 0xffu

/* Returns the masked CRC-32C of |len| bytes at |p| (the value stored in data chunks). */
uint32_t comp_masked_crc32c(const uint8_t *p, size_t len);

/* ---- encoder ---------------------------------------------------------------------------- */

struct comp_encoder; /* opaque */

/* Receives |len| framed bytes at |p| (borrowed for the call). Returns 0, or an ERR_* that
 * aborts the encode call and is handed back to its caller. */
typedef int comp_output_fn(void *user, const uint8_t *p, size_t len);

struct comp_encoder_stats {
    uint64_t writes;              /* comp_encode calls with len > 0 */
    uint64_t bytes_in;            /* uncompressed bytes accepted */
    uint64_t bytes_out;           /* framed bytes emitted, identifier included */
    uint64_t compressed_chunks;   /* type 0x00 chunks emitted */
    uint64_t uncompressed_chunks; /* type 0x01 chunks emitted */
};

/* Returns a new encoder, or NULL when out of memory. Its scratch space (about 76 KB) is
 * allocated by the first write. */
struct comp_encoder *comp_encoder_new(void);
/* Frees the scratch space of |enc| (it holds nothing between writes); the next write allocates
 * it again. */
void comp_encoder_trim(struct comp_encoder *enc);
/* Frees |enc|; NULL is accepted. */
void comp_encoder_free(struct comp_encoder *enc);

/* Frames the |len| bytes at |in| (borrowed) as Go's BufferedWriter Write followed by Flush does:
 * the input is cut into pieces of at most COMP_BLOCK_MAX bytes, and each piece becomes one data
 * chunk, compressed unless the snappy block is not smaller than len - len/8. The stream
 * identifier goes out once, in front of the first data chunk; an empty input emits nothing.
 * Output calls follow Go's writes exactly: a compressed chunk is one call (identifier +) header +
 * block; an uncompressed chunk is two calls, the (identifier +) 8-byte header, then the data.
 * Returns the number of framed bytes emitted, or the ERR_* returned by |out|, after which the
 * encoder is broken (the peer saw a partial chunk) and every later call returns ERR_CLOSED;
 * or ERR_NOMEM (nothing emitted, not sticky) when its scratch space cannot be allocated. */
ssize_t comp_encode(struct comp_encoder *enc, const uint8_t *in, size_t len, comp_output_fn *out,
                    void *user);

/* Returns the encoder's counters (pointer valid while |enc| lives). */
const struct comp_encoder_stats *comp_encoder_stats(const struct comp_encoder *enc);

/* ---- decoder ---------------------------------------------------------------------------- */

struct comp_decoder; /* opaque */

/* Why a decoder failed. Every fault is fatal and sticky: the session above must be closed. */
enum comp_fault {
    COMP_FAULT_NONE,
    COMP_FAULT_NO_IDENT,      /* first chunk is not a stream identifier */
    COMP_FAULT_BAD_IDENT,     /* identifier chunk with a wrong length or body */
    COMP_FAULT_RESERVED,      /* reserved unskippable chunk type 0x02..0x7f */
    COMP_FAULT_CHUNK_TOO_BIG, /* chunk body longer than COMP_CHUNK_MAX */
    COMP_FAULT_SHORT_CHUNK,   /* data chunk body shorter than its CRC */
    COMP_FAULT_BLOCK,         /* snappy block is corrupt */
    COMP_FAULT_BLOCK_TOO_BIG, /* data chunk decodes to more than COMP_BLOCK_MAX bytes */
    COMP_FAULT_CRC,           /* CRC of the decoded data does not match */
    COMP_FAULT_COUNT
};

struct comp_decoder_stats {
    uint64_t bytes_in;                  /* framed bytes consumed */
    uint64_t bytes_out;                 /* decoded bytes produced */
    uint64_t compressed_chunks;         /* good type 0x00 chunks */
    uint64_t uncompressed_chunks;       /* good type 0x01 chunks */
    uint64_t idents;                    /* stream identifier chunks */
    uint64_t skipped_chunks;            /* padding and reserved skippable chunks */
    uint64_t faults[COMP_FAULT_COUNT];  /* by kind; at most one fault per decoder */
};

/* Returns a new decoder, or NULL when out of memory. Its buffers (about 140 KB: one chunk of
 * input and one decoded block) are allocated by the first input. */
struct comp_decoder *comp_decoder_new(void);
/* Frees the buffers of |dec| if it is idle (comp_decoder_is_idle); the next input allocates
 * them again. */
void comp_decoder_trim(struct comp_decoder *dec);
/* Frees |dec|; NULL is accepted. */
void comp_decoder_free(struct comp_decoder *dec);

/* Feeds up to |len| framed bytes at |in| (borrowed; any split of the stream is fine). The decoder
 * consumes bytes until it holds decoded output (at most one chunk's worth) or the input runs out;
 * partial chunks are kept internally. Returns the number of bytes consumed (the caller passes the
 * rest again later), 0 only when |len| is 0, ERR_AGAIN when decoded output is still waiting
 * (drain it with comp_decoder_peek/comp_decoder_consume first; nothing is consumed), or ERR_PROTO
 * when the stream is corrupt: the fault (see comp_decoder_fault) is sticky, every later call
 * returns ERR_PROTO again, and the bytes of that call count as lost; ERR_NOMEM (nothing
 * consumed, not sticky) when the decoder's buffers cannot be allocated. */
ssize_t comp_decoder_input(struct comp_decoder *dec, const uint8_t *in, size_t len);

/* Points |*out| at the decoded bytes not consumed yet and returns their count (0 if none; then
 * |*out| is NULL). The bytes stay valid until the next consume or input call. */
size_t comp_decoder_peek(const struct comp_decoder *dec, const uint8_t **out);

/* Marks the first |n| peeked bytes as used; |n| larger than the pending count is clamped. */
void comp_decoder_consume(struct comp_decoder *dec, size_t n);

/* Returns true when the decoder sits between chunks with no decoded bytes pending (a clean place
 * for the stream to end). */
bool comp_decoder_is_idle(const struct comp_decoder *dec);

/* Returns the decoder's fault, COMP_FAULT_NONE while it is healthy. */
enum comp_fault comp_decoder_fault(const struct comp_decoder *dec);

/* Returns a short English description of |fault| for logs; never NULL. */
const char *comp_fault_str(enum comp_fault fault);

/* Returns the decoder's counters (pointer valid while |dec| lives). */
const struct comp_decoder_stats *comp_decoder_stats(const struct comp_decoder *dec);

#endif
