/* SPDX-License-Identifier: MIT */
/* Idle trimming of the snappy framing (comp_encoder_trim, comp_decoder_trim): buffers are given
 * back only when they hold nothing, and the stream goes on unchanged afterwards whatever the
 * trims between its bytes. */
#include <stdlib.h>
#include <string.h>

#include "common/comp.h"
#include "tests/test.h"

struct trim_sink {
    uint8_t buf[1 << 18];
    size_t len;
};

static int trim_out(void *user, const uint8_t *p, size_t len)
{
    struct trim_sink *s = user;
    if (s->len + len > sizeof(s->buf))
        return -1;
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return 0;
}

/* Three writes (compressible, random, compressible) with a trim of the encoder before each;
 * the framed stream is fed to a decoder in 7-byte pieces with a trim before every piece and
 * after every partial drain: the decoded bytes are the written ones. */
TEST(comp_trim_keeps_the_stream)
{
    struct trim_sink *s = calloc(1, sizeof(*s));
    uint8_t *in = malloc(3 * 70000), *got = malloc(3 * 70000);
    struct comp_encoder *enc = comp_encoder_new();
    struct comp_decoder *dec = comp_decoder_new();
    REQUIRE(s && in && got && enc && dec);
    uint32_t x = 7;
    for (size_t i = 0; i < 3 * 70000; i++) {
        x = x * 1103515245u + 12345u;
        in[i] = i / 70000 == 1 ? (uint8_t)(x >> 16) : (uint8_t)(i % 251 / 8);
    }
    for (int w = 0; w < 3; w++) {
        comp_encoder_trim(enc);
        REQUIRE(comp_encode(enc, in + (size_t)w * 70000, 70000, trim_out, s) > 0);
    }
    comp_encoder_trim(enc);
    size_t pos = 0, out = 0;
    int trims = 0;
    while (pos < s->len || comp_decoder_peek(dec, &(const uint8_t *){NULL}) > 0) {
        comp_decoder_trim(dec);
        trims++;
        const uint8_t *p;
        size_t n = comp_decoder_peek(dec, &p);
        if (n > 0) {
            size_t take = n > 1000 ? 1000 : n; /* partial drains: trim must keep the rest */
            REQUIRE(out + take <= 3 * 70000);
            memcpy(got + out, p, take);
            out += take;
            comp_decoder_consume(dec, take);
            continue;
        }
        size_t piece = s->len - pos < 7 ? s->len - pos : 7;
        ssize_t r = comp_decoder_input(dec, s->buf + pos, piece);
        REQUIRE(r >= 0);
        pos += (size_t)r;
    }
    CHECK_EQ(out, 3 * 70000);
    CHECK_MEM(got, in, 3 * 70000);
    CHECK(comp_decoder_is_idle(dec));
    CHECK(trims > 1000);
    comp_decoder_trim(dec);
    /* After a trim at the end the same decoder takes a further write. */
    s->len = 0;
    REQUIRE(comp_encode(enc, in, 1000, trim_out, s) > 0);
    CHECK_EQ(comp_decoder_input(dec, s->buf, s->len), (long long)s->len);
    const uint8_t *p;
    CHECK_EQ(comp_decoder_peek(dec, &p), 1000);
    CHECK_MEM(p, in, 1000);
    comp_encoder_free(enc);
    comp_decoder_free(dec);
    free(in);
    free(got);
    free(s);
}
