/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the snappy framing decoder (input/peek/consume), plus encode round trips. */
#include "tests/fuzz/fuzz.h"

#include "common/comp.h"
#include "common/err.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   mode u8 | ...
 * mode % 2 == 0: a decoder script; each op is one byte:
 *     op % 4 < 3   chunk record (LE16 length + bytes): fed until consumed or faulted, draining
 *                  decoded output in pieces of 1 + (op >> 2) * 64 bytes whenever it blocks
 *     op % 4 == 3  n LE16: comp_decoder_consume(n) of what is pending
 * mode % 2 == 1: the rest is plain data: comp_encode, in writes of 1 + (mode >> 1) * 257
 *     bytes, then the framed bytes go through a decoder in pieces of 1 + (mode >> 1) bytes,
 *     and what comes out must equal the data.
 */

#define FUZZ_COMP_MAX_OPS 4096

struct sink {
    uint8_t *buf;
    size_t len, cap;
};

static int collect(void *user, const uint8_t *p, size_t len)
{
    struct sink *s = user;
    if (s->len + len > s->cap) {
        size_t cap = (s->len + len) * 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b)
            return ERR_NOMEM;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return 0;
}

/* Takes up to |piece| decoded bytes, appending them to |out| (NULL: discard). */
static size_t drain(struct comp_decoder *dec, size_t piece, struct sink *out)
{
    const uint8_t *p;
    size_t n = comp_decoder_peek(dec, &p);

    FUZZ_CHECK(n <= COMP_BLOCK_MAX);
    FUZZ_CHECK((n == 0) == (p == NULL));
    if (n > piece)
        n = piece;
    if (n && out)
        FUZZ_CHECK(collect(out, p, n) == 0);
    comp_decoder_consume(dec, n);
    return n;
}

/* Feeds |len| bytes until they are consumed or the decoder faults. Returns false on a fault. */
static bool feed(struct comp_decoder *dec, const uint8_t *in, size_t len, size_t piece,
                 struct sink *out)
{
    while (len > 0) {
        ssize_t n = comp_decoder_input(dec, in, len);
        if (n == ERR_PROTO) {
            FUZZ_CHECK(comp_decoder_fault(dec) != COMP_FAULT_NONE);
            FUZZ_CHECK(comp_fault_str(comp_decoder_fault(dec)) != NULL);
            FUZZ_CHECK(comp_decoder_input(dec, in, len) == ERR_PROTO);
            return false;
        }
        if (n == ERR_AGAIN) {
            FUZZ_CHECK(drain(dec, piece, out) > 0);
            continue;
        }
        FUZZ_CHECK(n > 0 && (size_t)n <= len);
        in += n;
        len -= (size_t)n;
    }
    return true;
}

static void round_trip(const uint8_t *data, size_t len, uint8_t mode)
{
    struct comp_encoder *enc = comp_encoder_new();
    struct comp_decoder *dec = comp_decoder_new();
    struct sink framed = {0}, back = {0};
    size_t write = 1 + (size_t)(mode >> 1) * 257, piece = 1 + (size_t)(mode >> 1);

    if (!enc || !dec)
        goto out;
    for (size_t off = 0; off < len; off += write) {
        size_t n = len - off < write ? len - off : write;
        FUZZ_CHECK(comp_encode(enc, data + off, n, collect, &framed) > 0);
    }
    FUZZ_CHECK(comp_encoder_stats(enc)->bytes_in == len);
    FUZZ_CHECK(comp_encoder_stats(enc)->bytes_out == framed.len);
    for (size_t off = 0; off < framed.len; off += piece) {
        size_t n = framed.len - off < piece ? framed.len - off : piece;
        FUZZ_CHECK(feed(dec, framed.buf + off, n, SIZE_MAX, &back));
    }
    while (drain(dec, SIZE_MAX, &back) > 0)
        ;
    FUZZ_CHECK(comp_decoder_is_idle(dec));
    FUZZ_CHECK(back.len == len);
    FUZZ_CHECK(len == 0 || memcmp(back.buf, data, len) == 0);
out:
    free(framed.buf);
    free(back.buf);
    comp_encoder_free(enc);
    comp_decoder_free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;

    fuzz_reader_init(&r, data, size);
    uint8_t mode = fuzz_u8(&r);
    if (mode % 2 == 1) {
        size_t len;
        const uint8_t *rest = fuzz_bytes(&r, fuzz_left(&r), &len);
        round_trip(rest, len, mode);
        return 0;
    }
    struct comp_decoder *dec = comp_decoder_new();
    if (!dec)
        return 0;
    bool healthy = true;
    for (int ops = 0; fuzz_left(&r) > 0 && ops < FUZZ_COMP_MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&r);
        if (op % 4 == 3) {
            const uint8_t *p;
            size_t before = comp_decoder_peek(dec, &p);
            size_t n = fuzz_u16(&r);
            comp_decoder_consume(dec, n);
            size_t after = comp_decoder_peek(dec, &p);
            FUZZ_CHECK(after == (n >= before ? 0 : before - n));
            continue;
        }
        size_t len;
        const uint8_t *chunk = fuzz_record(&r, &len);
        uint8_t *copy = malloc(len ? len : 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, chunk, len);
        if (healthy)
            healthy = feed(dec, copy, len, 1 + (size_t)(op >> 2) * 64, NULL);
        else if (len)
            FUZZ_CHECK(comp_decoder_input(dec, copy, len) == ERR_PROTO);
        free(copy);
    }
    const struct comp_decoder_stats *st = comp_decoder_stats(dec);
    unsigned faults = 0;
    for (int i = 0; i < COMP_FAULT_COUNT; i++)
        faults += st->faults[i] != 0;
    FUZZ_CHECK(faults == (healthy ? 0u : 1u));
    comp_decoder_free(dec);
    return 0;
}
