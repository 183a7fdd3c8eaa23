/* SPDX-License-Identifier: MIT */
/* Pure core: snappy framing encoder and incremental decoder (blocks by common/snappy.c,
 * ISA-L CRC-32C). */
#include "common/comp.h"

#include "common/err.h"
#include "common/snappy.h"
#include "common/util.h"
#include "common/wire.h"

#ifdef KTUN_NO_ISAL
#include "fec/isal_own.h" /* ISA-L's CRCs in portable C (make ISAL=0) */
#else
#include <isa-l/crc.h>
#endif
#include <stdlib.h>
#include <string.h>

#define COMP_CRC_MASK_DELTA 0xa282ead8u
#define COMP_DATA_HDR_LEN (COMP_CHUNK_HDR_LEN + COMP_CRC_LEN) /* header of a data chunk */
#define COMP_IDENT_BODY_LEN 6u

static const uint8_t ident_chunk[COMP_IDENT_LEN] = {0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P',
                                                     'p', 'Y'};

uint32_t comp_masked_crc32c(const uint8_t *p, size_t len)
{
    /* crc32_iscsi takes an int length and neither inverts the seed nor the result: seeding with
     * all ones and inverting at the end gives standard CRC-32C ("123456789" -> e3069283). */
    uint32_t c = 0xffffffffu;
    while (len > 0) {
        size_t n = MIN(len, (size_t)1 << 30);
        c = crc32_iscsi((unsigned char *)(uintptr_t)p, (int)n, c);
        p += n;
        len -= n;
    }
    c = ~c;
    return ((c >> 15) | (c << 17)) + COMP_CRC_MASK_DELTA;
}

/* Writes a chunk header: type, then the body length as LE24 (low byte, then the upper 16 bits). */
static uint8_t *put_chunk_hdr(uint8_t *p, uint8_t type, size_t body_len)
{
    p = put_u8(p, type);
    p = put_u8(p, (uint8_t)body_len);
    return put_u16le(p, (uint16_t)(body_len >> 8));
}

/* ---- encoder ---------------------------------------------------------------------------- */

struct comp_encoder {
    bool sent_ident;                 /* the stream identifier went out already */
    int error;                       /* first output error (sticky), 0 while healthy */
    uint8_t *scratch;                /* identifier | data chunk header | snappy block */
    struct comp_encoder_stats stats; /* counters */
};

struct comp_encoder *comp_encoder_new(void)
{
    return calloc(1, sizeof(struct comp_encoder)); /* scratch comes with the first write */
}

void comp_encoder_trim(struct comp_encoder *enc)
{
    free(enc->scratch);
    enc->scratch = NULL;
}

void comp_encoder_free(struct comp_encoder *enc)
{
    if (!enc)
        return;
    free(enc->scratch);
    free(enc);
}

/* Emits one data chunk for the |len| (1..COMP_BLOCK_MAX) bytes at |p|. Returns the framed byte
 * count or the output's error. */
static ssize_t encode_piece(struct comp_encoder *enc, const uint8_t *p, size_t len,
                            comp_output_fn *out, void *user)
{
    uint8_t *hdr = enc->scratch + COMP_IDENT_LEN;
    uint8_t *block = hdr + COMP_DATA_HDR_LEN;
    size_t block_len = snap_compress(p, len, block);
    /* Go's rule: keep the snappy block only when it saves at least len/8 bytes. */
    bool raw = block_len >= len - len / 8;
    size_t body_len = COMP_CRC_LEN + (raw ? len : block_len);

    uint8_t *q = put_chunk_hdr(hdr, raw ? COMP_TYPE_UNCOMPRESSED : COMP_TYPE_COMPRESSED, body_len);
    put_u32le(q, comp_masked_crc32c(p, len));

    const uint8_t *start = enc->sent_ident ? hdr : enc->scratch;
    size_t first_len = (size_t)(block - start) + (raw ? 0 : block_len);
    enc->sent_ident = true;
    int rc = out(user, start, first_len);
    if (rc >= 0 && raw)
        rc = out(user, p, len);
    if (rc < 0)
        return rc;
    if (raw)
        enc->stats.uncompressed_chunks++;
    else
        enc->stats.compressed_chunks++;
    return (ssize_t)(first_len + (raw ? len : 0));
}

ssize_t comp_encode(struct comp_encoder *enc, const uint8_t *in, size_t len, comp_output_fn *out,
                    void *user)
{
    if (enc->error)
        return ERR_CLOSED;
    if (len == 0)
        return 0;
    if (!enc->scratch) {
        enc->scratch = malloc(COMP_IDENT_LEN + COMP_DATA_HDR_LEN +
                              snap_max_compressed_len(COMP_BLOCK_MAX));
        if (!enc->scratch)
            return ERR_NOMEM;
        memcpy(enc->scratch, ident_chunk, COMP_IDENT_LEN);
    }
    enc->stats.writes++;
    size_t total = 0;
    while (len > 0) {
        size_t n = MIN(len, (size_t)COMP_BLOCK_MAX);
        ssize_t w = encode_piece(enc, in, n, out, user);
        if (w < 0) {
            enc->error = (int)w;
            return w;
        }
        total += (size_t)w;
        enc->stats.bytes_in += n;
        in += n;
        len -= n;
    }
    enc->stats.bytes_out += total;
    return (ssize_t)total;
}

const struct comp_encoder_stats *comp_encoder_stats(const struct comp_encoder *enc)
{
    return &enc->stats;
}

/* ---- decoder ---------------------------------------------------------------------------- */

enum comp_rx_state {
    COMP_RX_HEADER, /* collecting the 4-byte chunk header */
    COMP_RX_BODY,   /* collecting a chunk body into inbuf */
    COMP_RX_SKIP,   /* discarding a padding or skippable body */
    COMP_RX_FAILED, /* sticky fault */
    COMP_RX_STATE_COUNT
};

struct comp_decoder {
    enum comp_rx_state state;        /* parser state */
    bool seen_ident;                 /* a stream identifier arrived */
    uint8_t hdr[COMP_CHUNK_HDR_LEN]; /* partial chunk header */
    size_t hdr_have;                 /* bytes in hdr */
    uint8_t type;                    /* current chunk type */
    size_t body_len;                 /* current chunk body length */
    size_t body_have;                /* body bytes buffered (BODY) or skipped (SKIP) */
    uint8_t *inbuf;                  /* COMP_CHUNK_MAX: one chunk body */
    uint8_t *outbuf;                 /* COMP_BLOCK_MAX: one decoded block */
    const uint8_t *pending;          /* undrained decoded bytes (in outbuf or inbuf) */
    size_t pending_len;              /* their count */
    enum comp_fault fault;           /* why the decoder failed */
    struct comp_decoder_stats stats; /* counters */
};

static const char *const fault_names[COMP_FAULT_COUNT] = {
    [COMP_FAULT_NONE] = "no fault",
    [COMP_FAULT_NO_IDENT] = "stream does not start with a snappy stream identifier",
    [COMP_FAULT_BAD_IDENT] = "bad snappy stream identifier",
    [COMP_FAULT_RESERVED] = "reserved unskippable snappy chunk type",
    [COMP_FAULT_CHUNK_TOO_BIG] = "snappy chunk longer than 76494 bytes",
    [COMP_FAULT_SHORT_CHUNK] = "snappy data chunk shorter than its checksum",
    [COMP_FAULT_BLOCK] = "corrupt snappy block",
    [COMP_FAULT_BLOCK_TOO_BIG] = "snappy chunk decodes to more than 65536 bytes",
    [COMP_FAULT_CRC] = "snappy chunk checksum mismatch",
};

const char *comp_fault_str(enum comp_fault fault)
{
    if ((unsigned)fault >= COMP_FAULT_COUNT)
        return "unknown snappy fault";
    return fault_names[fault];
}

struct comp_decoder *comp_decoder_new(void)
{
    struct comp_decoder *dec = calloc(1, sizeof(*dec));
    if (dec)
        dec->state = COMP_RX_HEADER; /* the buffers come with the first input */
    return dec;
}

void comp_decoder_trim(struct comp_decoder *dec)
{
    if (!comp_decoder_is_idle(dec))
        return;
    free(dec->inbuf);
    free(dec->outbuf);
    dec->inbuf = dec->outbuf = NULL;
}

void comp_decoder_free(struct comp_decoder *dec)
{
    if (!dec)
        return;
    free(dec->inbuf);
    free(dec->outbuf);
    free(dec);
}

static int fail(struct comp_decoder *dec, enum comp_fault fault)
{
    dec->state = COMP_RX_FAILED;
    dec->fault = fault;
    dec->stats.faults[fault]++;
    dec->pending = NULL;
    dec->pending_len = 0;
    return ERR_PROTO;
}

/* Validates a complete chunk header and picks the state for its body (the checks and their
 * order follow Go's Reader). Returns 0 or ERR_PROTO. */
static int begin_chunk(struct comp_decoder *dec, uint8_t type, size_t body_len)
{
    if (!dec->seen_ident && type != COMP_TYPE_IDENT)
        return fail(dec, COMP_FAULT_NO_IDENT);
    if (body_len > COMP_CHUNK_MAX)
        return fail(dec, COMP_FAULT_CHUNK_TOO_BIG);
    dec->type = type;
    dec->body_len = body_len;
    dec->body_have = 0;
    dec->hdr_have = 0;
    dec->state = COMP_RX_BODY;
    switch (type) {
    case COMP_TYPE_IDENT:
        if (body_len != COMP_IDENT_BODY_LEN)
            return fail(dec, COMP_FAULT_BAD_IDENT);
        return 0;
    case COMP_TYPE_COMPRESSED:
        if (body_len < COMP_CRC_LEN)
            return fail(dec, COMP_FAULT_SHORT_CHUNK);
        return 0;
    case COMP_TYPE_UNCOMPRESSED:
        if (body_len < COMP_CRC_LEN)
            return fail(dec, COMP_FAULT_SHORT_CHUNK);
        if (body_len - COMP_CRC_LEN > COMP_BLOCK_MAX)
            return fail(dec, COMP_FAULT_BLOCK_TOO_BIG);
        return 0;
    default:
        if (type <= 0x7f)
            return fail(dec, COMP_FAULT_RESERVED);
        dec->stats.skipped_chunks++;
        dec->state = body_len > 0 ? COMP_RX_SKIP : COMP_RX_HEADER;
        return 0;
    }
}

static void set_pending(struct comp_decoder *dec, const uint8_t *p, size_t len)
{
    dec->pending = len > 0 ? p : NULL;
    dec->pending_len = len;
    dec->stats.bytes_out += len;
}

static int finish_compressed(struct comp_decoder *dec, const uint8_t *body)
{
    const uint8_t *block = body + COMP_CRC_LEN;
    size_t block_len = dec->body_len - COMP_CRC_LEN;
    size_t want_len, got_len;
    if (!snap_uncompressed_len(block, block_len, &want_len))
        return fail(dec, COMP_FAULT_BLOCK);
    if (want_len > COMP_BLOCK_MAX)
        return fail(dec, COMP_FAULT_BLOCK_TOO_BIG);
    if (!snap_uncompress(block, block_len, dec->outbuf, COMP_BLOCK_MAX, &got_len))
        return fail(dec, COMP_FAULT_BLOCK);
    if (comp_masked_crc32c(dec->outbuf, got_len) != rd_u32le(body))
        return fail(dec, COMP_FAULT_CRC);
    dec->stats.compressed_chunks++;
    set_pending(dec, dec->outbuf, got_len);
    return 0;
}

/* |borrowed|: |body| lives in the caller's input, so the data must be copied out. */
static int finish_uncompressed(struct comp_decoder *dec, const uint8_t *body, bool borrowed)
{
    const uint8_t *data = body + COMP_CRC_LEN;
    size_t len = dec->body_len - COMP_CRC_LEN;
    if (comp_masked_crc32c(data, len) != rd_u32le(body))
        return fail(dec, COMP_FAULT_CRC);
    if (borrowed) {
        memcpy(dec->outbuf, data, len);
        data = dec->outbuf;
    }
    dec->stats.uncompressed_chunks++;
    set_pending(dec, data, len);
    return 0;
}

/* Handles the complete body of the current chunk (BODY state). Returns 0 or ERR_PROTO. */
static int finish_chunk(struct comp_decoder *dec, const uint8_t *body, bool borrowed)
{
    dec->state = COMP_RX_HEADER;
    switch (dec->type) {
    case COMP_TYPE_IDENT:
        if (memcmp(body, ident_chunk + COMP_CHUNK_HDR_LEN, COMP_IDENT_BODY_LEN) != 0)
            return fail(dec, COMP_FAULT_BAD_IDENT);
        dec->seen_ident = true;
        dec->stats.idents++;
        return 0;
    case COMP_TYPE_COMPRESSED:
        return finish_compressed(dec, body);
    default:
        return finish_uncompressed(dec, body, borrowed);
    }
}

static size_t hdr_body_len(const uint8_t *h)
{
    return (size_t)h[1] | (size_t)rd_u16le(h + 2) << 8;
}

/* HEADER state. When the whole header and body are in |p| the chunk is handled in place,
 * without copying it into inbuf. Sets |*used|; returns 0 or ERR_PROTO. */
static int step_header(struct comp_decoder *dec, const uint8_t *p, size_t avail, size_t *used)
{
    int rc;
    if (dec->hdr_have == 0 && avail >= COMP_CHUNK_HDR_LEN) {
        *used = COMP_CHUNK_HDR_LEN;
        rc = begin_chunk(dec, p[0], hdr_body_len(p));
        if (rc < 0 || dec->state != COMP_RX_BODY || avail - *used < dec->body_len)
            return rc;
        *used += dec->body_len;
        return finish_chunk(dec, p + COMP_CHUNK_HDR_LEN, true);
    }
    size_t n = MIN(COMP_CHUNK_HDR_LEN - dec->hdr_have, avail);
    memcpy(dec->hdr + dec->hdr_have, p, n);
    dec->hdr_have += n;
    *used = n;
    if (dec->hdr_have < COMP_CHUNK_HDR_LEN)
        return 0;
    return begin_chunk(dec, dec->hdr[0], hdr_body_len(dec->hdr));
}

static int step_body(struct comp_decoder *dec, const uint8_t *p, size_t avail, size_t *used)
{
    size_t n = MIN(dec->body_len - dec->body_have, avail);
    memcpy(dec->inbuf + dec->body_have, p, n);
    dec->body_have += n;
    *used = n;
    if (dec->body_have < dec->body_len)
        return 0;
    return finish_chunk(dec, dec->inbuf, false);
}

static void step_skip(struct comp_decoder *dec, size_t avail, size_t *used)
{
    size_t n = MIN(dec->body_len - dec->body_have, avail);
    dec->body_have += n;
    *used = n;
    if (dec->body_have == dec->body_len)
        dec->state = COMP_RX_HEADER;
}

ssize_t comp_decoder_input(struct comp_decoder *dec, const uint8_t *in, size_t len)
{
    if (dec->state == COMP_RX_FAILED)
        return ERR_PROTO;
    if (dec->pending_len > 0)
        return ERR_AGAIN;
    if (!dec->inbuf || !dec->outbuf) {
        if (!dec->inbuf)
            dec->inbuf = malloc(COMP_CHUNK_MAX);
        if (!dec->outbuf)
            dec->outbuf = malloc(COMP_BLOCK_MAX);
        if (!dec->inbuf || !dec->outbuf)
            return ERR_NOMEM;
    }
    size_t pos = 0;
    /* Stop after the first chunk that yields bytes: at most one block is held at a time. */
    while (pos < len && dec->pending_len == 0) {
        size_t used = 0;
        int rc = 0;
        switch (dec->state) {
        case COMP_RX_HEADER:
            rc = step_header(dec, in + pos, len - pos, &used);
            break;
        case COMP_RX_BODY:
            rc = step_body(dec, in + pos, len - pos, &used);
            break;
        case COMP_RX_SKIP:
            step_skip(dec, len - pos, &used);
            break;
        default:
            rc = ERR_PROTO;
            break;
        }
        if (rc < 0)
            return rc;
        pos += used;
    }
    dec->stats.bytes_in += pos;
    return (ssize_t)pos;
}

size_t comp_decoder_peek(const struct comp_decoder *dec, const uint8_t **out)
{
    *out = dec->pending;
    return dec->pending_len;
}

void comp_decoder_consume(struct comp_decoder *dec, size_t n)
{
    n = MIN(n, dec->pending_len);
    dec->pending_len -= n;
    dec->pending = dec->pending_len > 0 ? dec->pending + n : NULL;
}

bool comp_decoder_is_idle(const struct comp_decoder *dec)
{
    return dec->state == COMP_RX_HEADER && dec->hdr_have == 0 && dec->pending_len == 0;
}

enum comp_fault comp_decoder_fault(const struct comp_decoder *dec)
{
    return dec->fault;
}

const struct comp_decoder_stats *comp_decoder_stats(const struct comp_decoder *dec)
{
    return &dec->stats;
}
