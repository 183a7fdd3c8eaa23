/* SPDX-License-Identifier: MIT */
/* Benchmarks for the snappy framing core: 32768-byte writes of text-like and random data. */
#include "common/comp.h"
#include "common/err.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_WRITE 32768u     /* one full smux frame payload */
#define BENCH_WRITES 64u       /* distinct writes in the pattern (2 MiB) */
#define BENCH_SECONDS 0.4      /* thread CPU time of each measurement (the machine is shared) */

struct bench_sink {
    uint8_t *buf;   /* framed bytes of the whole pattern */
    size_t len;     /* used */
    size_t cap;     /* allocated */
    bool keep;      /* store bytes (false: count only) */
};

static int bench_output(void *user, const uint8_t *p, size_t len)
{
    struct bench_sink *s = user;
    if (s->keep) {
        if (s->len + len > s->cap)
            return -1;
        memcpy(s->buf + s->len, p, len);
    }
    s->len += len;
    return 0;
}

static uint64_t bench_rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Text-like data: words from a small vocabulary with varying separators, compresses ~2-4x. */
static void fill_text(uint8_t *p, size_t len, uint64_t seed)
{
    static const char *const words[] = {"the ", "tunnel ", "kcp ", "packet ", "stream ",
                                        "window ", "session ", "data\n", "ack ", "{\"id\":",
                                        "\"len\":", "1234, ", "frame ", "snappy ", "<div> "};
    size_t n = 0;
    while (n < len) {
        const char *w = words[bench_rng(&seed) % (sizeof(words) / sizeof(words[0]))];
        for (; *w && n < len; w++)
            p[n++] = (uint8_t)*w;
        if (n < len && (bench_rng(&seed) & 7) == 0)
            p[n++] = (uint8_t)('A' + bench_rng(&seed) % 26);
    }
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)bench_rng(&seed);
}

/* Encodes the pattern repeatedly for BENCH_SECONDS; returns MB/s of input and leaves one framed
 * copy of the pattern in |framed|. */
static double run_encode(const uint8_t *in, struct bench_sink *framed)
{
    struct comp_encoder *enc = comp_encoder_new();
    if (!enc)
        return 0;
    framed->keep = true;
    for (size_t i = 0; i < BENCH_WRITES; i++)
        comp_encode(enc, in + i * BENCH_WRITE, BENCH_WRITE, bench_output, framed);
    comp_encoder_free(enc);

    struct bench_sink count = {0};
    double t0 = bench_cpu_s(), t = 0;
    size_t bytes = 0;
    enc = comp_encoder_new();
    while (enc && (t = bench_cpu_s() - t0) < BENCH_SECONDS) {
        for (size_t i = 0; i < BENCH_WRITES; i++)
            comp_encode(enc, in + i * BENCH_WRITE, BENCH_WRITE, bench_output, &count);
        bytes += BENCH_WRITES * BENCH_WRITE;
    }
    comp_encoder_free(enc);
    return (double)bytes / t / 1e6;
}

/* Decodes |framed| repeatedly (fed in 1400-byte pieces, like KCP segments); returns MB/s of
 * decoded output, or 0 if the output does not match |want|. */
static double run_decode(const struct bench_sink *framed, const uint8_t *want, size_t want_len)
{
    double t0 = bench_cpu_s(), t = 0;
    size_t bytes = 0;
    bool ok = true;
    while (ok && (t = bench_cpu_s() - t0) < BENCH_SECONDS) {
        struct comp_decoder *dec = comp_decoder_new();
        if (!dec)
            return 0;
        size_t pos = 0, got = 0;
        while (ok && pos < framed->len) {
            size_t k = framed->len - pos < 1400 ? framed->len - pos : 1400;
            ssize_t n = comp_decoder_input(dec, framed->buf + pos, k);
            if (n < 0 && n != ERR_AGAIN) {
                ok = false;
                break;
            }
            pos += n > 0 ? (size_t)n : 0;
            const uint8_t *p;
            size_t m = comp_decoder_peek(dec, &p);
            if (m > 0) {
                ok = got + m <= want_len && memcmp(p, want + got, m) == 0;
                got += m;
                comp_decoder_consume(dec, m);
            }
        }
        ok = ok && got == want_len;
        comp_decoder_free(dec);
        bytes += got;
    }
    return ok ? (double)bytes / t / 1e6 : 0;
}

static void bench_kind(const char *kind, void (*fill)(uint8_t *, size_t, uint64_t))
{
    size_t len = BENCH_WRITES * BENCH_WRITE;
    uint8_t *in = malloc(len);
    struct bench_sink framed = {malloc(len * 2), 0, len * 2, true};
    if (!in || !framed.buf) {
        free(in);
        free(framed.buf);
        return;
    }
    fill(in, len, 0x9e3779b97f4a7c15ULL);
    char name[64];
    double enc_mbs = run_encode(in, &framed);
    snprintf(name, sizeof(name), "comp.encode.%s", kind);
    bench_report(name, enc_mbs, "MB/s");
    snprintf(name, sizeof(name), "comp.ratio.%s", kind);
    bench_report(name, (double)framed.len / (double)len * 100.0, "%");
    snprintf(name, sizeof(name), "comp.decode.%s", kind);
    bench_report(name, run_decode(&framed, in, len), "MB/s");
    free(in);
    free(framed.buf);
}

BENCH(bench_comp)
{
    bench_kind("text", fill_text);
    bench_kind("random", fill_random);
}
