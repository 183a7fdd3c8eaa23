/* SPDX-License-Identifier: MIT */
/* Tests for the snappy framing core: Go vectors, captured kcptun streams, splits, bad input. */
#include "common/comp.h"
#include "common/snappy.h"
#include "common/err.h"
#include "common/wire.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <snappy-c.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------- */

struct sink {
    uint8_t *buf;          /* everything written */
    size_t len, cap;       /* bytes in buf, allocated */
    size_t calls;          /* output calls seen */
    size_t call_lens[16];  /* lengths of the first calls */
    int fail_at_call;      /* 1-based call that returns ERR_NOMEM, 0 = never */
};

static int sink_append(struct sink *s, const uint8_t *p, size_t len)
{
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b)
            return ERR_NOMEM;
        s->buf = b;
        s->cap = cap;
    }
    if (len > 0)
        memcpy(s->buf + s->len, p, len);
    s->len += len;
    return 0;
}

static int sink_output(void *user, const uint8_t *p, size_t len)
{
    struct sink *s = user;
    s->calls++;
    if (s->calls <= sizeof(s->call_lens) / sizeof(s->call_lens[0]))
        s->call_lens[s->calls - 1] = len;
    if (s->fail_at_call > 0 && s->calls == (size_t)s->fail_at_call)
        return ERR_NOMEM;
    return sink_append(s, p, len);
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

enum split_mode { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

struct feed_opts {
    enum split_mode split; /* how the stream is cut into input calls */
    uint64_t seed;         /* for SPLIT_RANDOM and random drain sizes */
    size_t drain_step;     /* 0: drain everything after each input, else consume <= this per step */
};

struct feed_result {
    struct sink out;     /* decoded bytes */
    int rc;              /* 0, or the ERR_* the decoder returned */
    enum comp_fault fault;
    bool idle;           /* decoder idle at the end */
    int violations;      /* API contract breaches seen while feeding */
};

/* Drains pending output: all of it, or one step of at most |step| bytes. */
static void drain(struct comp_decoder *dec, struct feed_result *r, size_t step, uint64_t *rng)
{
    const uint8_t *p;
    size_t n = comp_decoder_peek(dec, &p);
    while (n > 0) {
        size_t k = n;
        if (step > 0) {
            k = 1 + (size_t)(rng_next(rng) % step);
            k = k < n ? k : n;
        }
        sink_append(&r->out, p, k);
        comp_decoder_consume(dec, k);
        if (step > 0)
            return;
        n = comp_decoder_peek(dec, &p);
    }
}

static size_t piece_len(const struct feed_opts *o, size_t left, uint64_t *rng)
{
    if (o->split == SPLIT_WHOLE)
        return left;
    if (o->split == SPLIT_BYTES)
        return 1;
    uint64_t x = rng_next(rng);
    size_t k = (x & 3) == 0 ? 1 + (size_t)(x >> 8) % 80000 : 1 + (size_t)(x >> 8) % 40;
    return k < left ? k : left;
}

/* Decodes |len| bytes at |in| with a fresh decoder as |o| says. The caller frees r->out.buf. */
static void feed(const uint8_t *in, size_t len, const struct feed_opts *o, struct feed_result *r)
{
    memset(r, 0, sizeof(*r));
    uint64_t rng = o->seed | 1;
    struct comp_decoder *dec = comp_decoder_new();
    if (!dec) {
        r->rc = ERR_NOMEM;
        return;
    }
    /* Input goes through a private copy whose consumed bytes are scribbled over after each call:
     * the decoder may not keep pointers into its input. */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (!copy) {
        comp_decoder_free(dec);
        r->rc = ERR_NOMEM;
        return;
    }
    size_t pos = 0;
    while (pos < len && r->rc == 0) {
        size_t k = piece_len(o, len - pos, &rng);
        memcpy(copy + pos, in + pos, k);
        while (k > 0) {
            ssize_t n = comp_decoder_input(dec, copy + pos, k);
            if (n > 0 && (size_t)n <= k)
                memset(copy + pos, 0xa5, (size_t)n);
            if (n == ERR_AGAIN) {
                const uint8_t *p;
                if (comp_decoder_peek(dec, &p) == 0) {
                    r->violations++; /* ERR_AGAIN without output would loop forever */
                    r->rc = ERR_INVAL;
                    break;
                }
                drain(dec, r, o->drain_step, &rng);
                continue;
            }
            if (n < 0) {
                r->rc = (int)n;
                break;
            }
            if (n == 0 || (size_t)n > k) {
                r->violations++; /* no progress: stop rather than spin */
                r->rc = ERR_INVAL;
                break;
            }
            pos += (size_t)n;
            k -= (size_t)n;
            drain(dec, r, o->drain_step, &rng);
        }
    }
    if (r->rc == 0) {
        drain(dec, r, 0, &rng);
        r->idle = comp_decoder_is_idle(dec);
        if (comp_decoder_stats(dec)->bytes_out != r->out.len ||
            comp_decoder_stats(dec)->bytes_in != len)
            r->violations++;
    } else {
        const uint8_t *p;
        if (comp_decoder_input(dec, in, len) != ERR_PROTO || comp_decoder_peek(dec, &p) != 0)
            r->violations++; /* faults are sticky and drop pending output */
    }
    r->fault = comp_decoder_fault(dec);
    comp_decoder_free(dec);
    free(copy);
}

static const struct feed_opts feed_modes[] = {
    {SPLIT_WHOLE, 0, 0},  {SPLIT_BYTES, 0, 0},  {SPLIT_RANDOM, 11, 0}, {SPLIT_RANDOM, 12345, 0},
    {SPLIT_WHOLE, 7, 3},  {SPLIT_RANDOM, 99, 1}, {SPLIT_RANDOM, 4242, 17},
};
#define FEED_MODES (sizeof(feed_modes) / sizeof(feed_modes[0]))

/* Checks that every feed mode decodes |in| to exactly |want| with no fault. */
static void check_decodes_to(const char *what, const uint8_t *in, size_t len, const uint8_t *want,
                             size_t want_len)
{
    for (size_t m = 0; m < FEED_MODES; m++) {
        struct feed_result r;
        feed(in, len, &feed_modes[m], &r);
        if (r.rc != 0 || r.out.len != want_len || r.violations || !r.idle ||
            (want_len && memcmp(r.out.buf, want, want_len) != 0))
            test_fail(__FILE__, __LINE__, "%s: mode %zu: rc %d fault %s, %zu of %zu bytes, "
                      "%d violations, idle %d", what, m, r.rc, comp_fault_str(r.fault),
                      r.out.len, want_len, r.violations, r.idle);
        free(r.out.buf);
    }
}

/* Decodes |in| whole and returns the fault (COMP_FAULT_NONE if it decoded). */
static enum comp_fault fault_of(const uint8_t *in, size_t len)
{
    struct feed_result r;
    feed(in, len, &feed_modes[0], &r);
    free(r.out.buf);
    if (r.violations)
        return COMP_FAULT_COUNT;
    if (r.rc != 0 && r.rc != ERR_PROTO)
        return COMP_FAULT_COUNT;
    return r.fault;
}

struct chunk {
    uint8_t type;
    size_t off;      /* offset of the chunk header in the stream */
    size_t body_len; /* body length */
};

/* Splits a complete stream into chunks; returns the count or -1 if it does not parse. */
static int parse_chunks(const uint8_t *s, size_t len, struct chunk *c, int max)
{
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 4 || n == max)
            return -1;
        size_t body = (size_t)s[pos + 1] | (size_t)rd_u16le(s + pos + 2) << 8;
        if (len - pos - 4 < body)
            return -1;
        c[n].type = s[pos];
        c[n].off = pos;
        c[n].body_len = body;
        n++;
        pos += 4 + body;
    }
    return n;
}

/* Decoded length of a data chunk, or 0 for other chunks. */
static size_t chunk_decoded_len(const uint8_t *s, const struct chunk *c)
{
    size_t n = 0;
    if (c->type == COMP_TYPE_UNCOMPRESSED)
        return c->body_len - 4;
    if (c->type == COMP_TYPE_COMPRESSED &&
        snappy_uncompressed_length((const char *)s + c->off + 8, c->body_len - 4, &n) == SNAPPY_OK)
        return n;
    return 0;
}

#define MAX_CHUNKS 256

/* Encodes |input| with the given write sizes and checks the result against Go's stream |go|:
 * same chunk sequence, same identifier and uncompressed chunks byte for byte, same CRC on every
 * data chunk, and a stream that decodes back to |input| in every feed mode. */
static void check_encoder_like_go(const char *what, const uint8_t *input, size_t input_len,
                                  const size_t *writes, size_t nwrites, const uint8_t *go,
                                  size_t go_len)
{
    struct comp_encoder *enc = comp_encoder_new();
    REQUIRE(enc);
    struct sink sk = {0}, *s = &sk;
    size_t off = 0;
    for (size_t i = 0; i < nwrites; i++) {
        REQUIRE(off + writes[i] <= input_len);
        ssize_t w = comp_encode(enc, input + off, writes[i], sink_output, s);
        CHECK(w >= 0);
        off += writes[i];
    }
    CHECK_EQ(off, input_len);
    CHECK_EQ(comp_encoder_stats(enc)->bytes_out, s->len);
    CHECK_EQ(comp_encoder_stats(enc)->bytes_in, input_len);
    comp_encoder_free(enc);

    struct chunk *ours = calloc(MAX_CHUNKS, sizeof(*ours)), *gos = calloc(MAX_CHUNKS, sizeof(*gos));
    int n_ours = parse_chunks(s->buf, s->len, ours, MAX_CHUNKS);
    int n_go = parse_chunks(go, go_len, gos, MAX_CHUNKS);
    if (n_ours != n_go || n_go < 0)
        test_fail(__FILE__, __LINE__, "%s: %d chunks, Go has %d", what, n_ours, n_go);
    for (int i = 0; n_ours == n_go && i < n_go; i++) {
        const uint8_t *a = s->buf + ours[i].off, *b = go + gos[i].off;
        if (gos[i].type == COMP_TYPE_IDENT || gos[i].type == COMP_TYPE_UNCOMPRESSED) {
            if (ours[i].body_len != gos[i].body_len || memcmp(a, b, 4 + gos[i].body_len) != 0)
                test_fail(__FILE__, __LINE__, "%s: chunk %d differs from Go's", what, i);
        } else if (ours[i].type > COMP_TYPE_UNCOMPRESSED || rd_u32le(a + 4) != rd_u32le(b + 4) ||
                   chunk_decoded_len(s->buf, &ours[i]) != chunk_decoded_len(go, &gos[i])) {
            test_fail(__FILE__, __LINE__, "%s: data chunk %d differs from Go's", what, i);
        }
    }
    check_decodes_to(what, s->buf, s->len, input, input_len);
    free(ours);
    free(gos);
    free(s->buf);
}

/* Builds the input of a snappy.json vector; returns its length or -1. */
static long vector_input(const cJSON *v, uint8_t **out)
{
    const char *gen = vec_str(v, "input_generator");
    if (!gen)
        return vec_hex_field(v, "input_hex", out);
    int mod = 0;
    long len = (long)vec_int(v, "input_len", -1);
    if (sscanf(gen, "byte[i] = i %% %d", &mod) != 1 || mod <= 0 || mod > 256 || len < 0)
        return -1;
    uint8_t *b = malloc((size_t)len + 1);
    if (!b)
        return -1;
    for (long i = 0; i < len; i++)
        b[i] = (uint8_t)(i % mod);
    *out = b;
    return len;
}

static bool sha256_hex_is(const uint8_t *p, size_t len, const char *hex)
{
    uint8_t h[crypto_hash_sha256_BYTES], *want = NULL;
    crypto_hash_sha256(h, p, len);
    bool ok = hex && vec_hex(hex, &want) == (long)sizeof(h) && memcmp(h, want, sizeof(h)) == 0;
    free(want);
    return ok;
}

/* ---- vectors ---------------------------------------------------------------------------- */

TEST(comp_masked_crc_vectors)
{
    cJSON *root = vec_load("snappy.json");
    REQUIRE(root);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "masked_crc32c_examples");
    int seen = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ex)
    {
        REQUIRE(cJSON_IsString(it));
        uint32_t want = (uint32_t)strtoul(it->valuestring, NULL, 16);
        CHECK_EQ(comp_masked_crc32c((const uint8_t *)it->string, strlen(it->string)), want);
        seen++;
    }
    CHECK(seen >= 3);
    /* Unmasked check value of CRC-32C, masked by hand: proves the ISA-L seed/xor convention. */
    uint32_t c = 0xe3069283u;
    CHECK_EQ(comp_masked_crc32c((const uint8_t *)"123456789", 9),
             (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u));

    uint8_t *ident = NULL;
    REQUIRE(vec_hex_field(root, "stream_identifier_hex", &ident) == COMP_IDENT_LEN);
    CHECK_EQ(ident[0], COMP_TYPE_IDENT);
    CHECK_EQ(fault_of(ident, COMP_IDENT_LEN), COMP_FAULT_NONE);
    free(ident);
    cJSON_Delete(root);
}

TEST(comp_go_vectors_decode_and_encode)
{
    cJSON *root = vec_load("snappy.json");
    REQUIRE(root);
    const cJSON *v;
    int seen = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(root, "vectors"))
    {
        const char *name = vec_str(v, "name");
        uint8_t *input = NULL, *framed = NULL;
        long in_len = vector_input(v, &input);
        long fr_len = vec_hex_field(v, "framed_output_hex", &framed);
        REQUIRE(name && in_len >= 0 && fr_len > 0);
        CHECK_EQ(in_len, vec_int(v, "input_len", -1));
        if (!sha256_hex_is(input, (size_t)in_len, vec_str(v, "input_sha256")))
            test_fail(__FILE__, __LINE__, "%s: input sha256 mismatch", name);

        check_decodes_to(name, framed, (size_t)fr_len, input, (size_t)in_len);

        size_t writes[16], nwrites = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(v, "write_sizes"))
        {
            REQUIRE(nwrites < 16 && cJSON_IsNumber(w));
            writes[nwrites++] = (size_t)w->valuedouble;
        }
        CHECK(nwrites > 0);
        check_encoder_like_go(name, input, (size_t)in_len, writes, nwrites, framed,
                              (size_t)fr_len);
        free(input);
        free(framed);
        seen++;
    }
    CHECK(seen >= 5);
    cJSON_Delete(root);
}

TEST(comp_encoder_writes_like_go)
{
    /* smux SYN (8 bytes) then PSH "hello" (13): Go writes identifier+header, data, header,
     * data; our output calls must have the same boundaries. */
    static const uint8_t syn[8] = {1, 0, 0, 0, 3, 0, 0, 0};
    static const uint8_t psh[13] = {1, 2, 5, 0, 3, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    struct comp_encoder *enc = comp_encoder_new();
    REQUIRE(enc);
    struct sink sk = {0}, *s = &sk;
    CHECK_EQ(comp_encode(enc, syn, 0, sink_output, s), 0);
    CHECK_EQ(s->calls, 0);
    CHECK_EQ(comp_encode(enc, syn, sizeof(syn), sink_output, s), 26);
    CHECK_EQ(comp_encode(enc, psh, sizeof(psh), sink_output, s), 21);
    CHECK_EQ(s->calls, 4);
    CHECK_EQ(s->call_lens[0], 18);
    CHECK_EQ(s->call_lens[1], 8);
    CHECK_EQ(s->call_lens[2], 8);
    CHECK_EQ(s->call_lens[3], 13);
    CHECK_EQ(comp_encoder_stats(enc)->uncompressed_chunks, 2);
    CHECK_EQ(comp_encoder_stats(enc)->writes, 2);
    comp_encoder_free(enc);
    free(s->buf);

    /* A compressible frame is one call: identifier + header + block. */
    uint8_t text[4000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (uint8_t)"kcptun over snappy "[i % 19];
    enc = comp_encoder_new();
    REQUIRE(enc);
    memset(s, 0, sizeof(*s));
    ssize_t n = comp_encode(enc, text, sizeof(text), sink_output, s);
    CHECK(n > 0 && n < 1000);
    CHECK_EQ(s->calls, 1);
    CHECK_EQ(s->buf[COMP_IDENT_LEN], COMP_TYPE_COMPRESSED);
    CHECK_EQ(comp_encoder_stats(enc)->compressed_chunks, 1);
    check_decodes_to("text", s->buf, s->len, text, sizeof(text));
    comp_encoder_free(enc);
    free(s->buf);
}

/* Compressed-or-not must follow Go's rule on our own block: compressed only when the block is
 * shorter than len - len/8. Checked on inputs around the threshold. */
TEST(comp_encoder_threshold_rule)
{
    uint64_t rng = 77;
    uint8_t *in = malloc(70000), *block = malloc(snap_max_compressed_len(70000));
    REQUIRE(in && block);
    int compressed = 0, raw = 0;
    for (int round = 0; round < 60; round++) {
        size_t len = 1 + (size_t)(rng_next(&rng) % 3000);
        unsigned keep = (unsigned)(rng_next(&rng) % 17); /* share of random bytes, out of 16 */
        for (size_t i = 0; i < len; i++)
            in[i] = (rng_next(&rng) % 16) < keep ? (uint8_t)rng_next(&rng) : (uint8_t)(i % 7);
        size_t blen = snap_compress(in, len, block);
        bool want_raw = blen >= len - len / 8;

        struct comp_encoder *enc = comp_encoder_new();
        REQUIRE(enc);
        struct sink sk = {0}, *s = &sk;
        CHECK(comp_encode(enc, in, len, sink_output, s) > 0);
        REQUIRE(s->len > COMP_IDENT_LEN);
        uint8_t type = s->buf[COMP_IDENT_LEN];
        CHECK_EQ(type, want_raw ? COMP_TYPE_UNCOMPRESSED : COMP_TYPE_COMPRESSED);
        if (type == COMP_TYPE_UNCOMPRESSED)
            raw++;
        else
            compressed++;
        check_decodes_to("threshold", s->buf, s->len, in, len);
        comp_encoder_free(enc);
        free(s->buf);
    }
    CHECK(compressed > 0 && raw > 0);

    /* Exactly at the threshold (block == len - len/8) Go sends the data uncompressed; one byte
     * shorter it sends the block. Search inputs (k pseudo-random bytes, then zeros) for both. */
    int at = 0, below = 0;
    for (size_t len = 90; len < 200 && (at < 3 || below < 3); len++) {
        for (size_t k = 0; k < len; k++) {
            for (size_t i = 0; i < len; i++)
                in[i] = i < k ? (uint8_t)((i * 2654435761u) >> 13) : 0;
            size_t blen = snap_compress(in, len, block);
            size_t limit = len - len / 8;
            if (blen != limit && blen + 1 != limit)
                continue;
            struct comp_encoder *enc = comp_encoder_new();
            REQUIRE(enc);
            struct sink sk = {0}, *s = &sk;
            CHECK(comp_encode(enc, in, len, sink_output, s) > 0);
            REQUIRE(s->len > COMP_IDENT_LEN);
            CHECK_EQ(s->buf[COMP_IDENT_LEN],
                     blen == limit ? COMP_TYPE_UNCOMPRESSED : COMP_TYPE_COMPRESSED);
            if (blen == limit)
                at++;
            else
                below++;
            comp_encoder_free(enc);
            free(s->buf);
            break;
        }
    }
    CHECK(at >= 3 && below >= 3);
    free(in);
    free(block);
}

TEST(comp_encoder_splits_large_writes)
{
    uint8_t *in = malloc(65536 * 2 + 10);
    REQUIRE(in);
    uint64_t rng = 5;
    for (size_t i = 0; i < 65536 * 2 + 10; i++)
        in[i] = (uint8_t)rng_next(&rng);
    static const size_t sizes[] = {65536, 65537, 131082};
    static const int chunks[] = {2, 3, 4}; /* identifier included */
    for (size_t t = 0; t < 3; t++) {
        struct comp_encoder *enc = comp_encoder_new();
        REQUIRE(enc);
        struct sink sk = {0}, *s = &sk;
        CHECK(comp_encode(enc, in, sizes[t], sink_output, s) == (ssize_t)s->len);
        struct chunk c[8];
        CHECK_EQ(parse_chunks(s->buf, s->len, c, 8), chunks[t]);
        CHECK_EQ(c[1].body_len, 4 + 65536);
        check_decodes_to("large", s->buf, s->len, in, sizes[t]);
        comp_encoder_free(enc);
        free(s->buf);
    }
    free(in);
}

TEST(comp_encoder_output_error_is_sticky)
{
    static const uint8_t data[5] = {1, 2, 3, 4, 5};
    for (int at = 1; at <= 2; at++) {
        struct comp_encoder *enc = comp_encoder_new();
        REQUIRE(enc);
        struct sink sk = {0}, *s = &sk;
        s->fail_at_call = at;
        CHECK_EQ(comp_encode(enc, data, sizeof(data), sink_output, s), ERR_NOMEM);
        size_t calls = s->calls;
        CHECK_EQ(comp_encode(enc, data, sizeof(data), sink_output, s), ERR_CLOSED);
        CHECK_EQ(s->calls, calls);
        comp_encoder_free(enc);
        free(s->buf);
    }
    comp_encoder_free(NULL);
    comp_decoder_free(NULL);
}

TEST(comp_capture_streams_decode)
{
    cJSON *root = vec_load("binary_capture.json");
    REQUIRE(root);
    static const char *const dirs[2] = {"client_to_server", "server_to_client"};
    int comp_runs = 0, nocomp_runs = 0;
    const cJSON *run;
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs"))
    {
        bool nocomp = false;
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(run, "args_common"))
            nocomp |= cJSON_IsString(a) && strcmp(a->valuestring, "--nocomp") == 0;
        for (int d = 0; d < 2; d++) {
            char kkey[64], skey[64];
            snprintf(kkey, sizeof(kkey), "kcp_stream_%s_hex", dirs[d]);
            snprintf(skey, sizeof(skey), "smux_stream_%s_hex", dirs[d]);
            uint8_t *kcp = NULL, *smux = NULL;
            long klen = vec_hex_field(run, kkey, &kcp), slen = vec_hex_field(run, skey, &smux);
            REQUIRE(klen > 0 && slen > 0);
            if (nocomp) {
                /* A plain smux stream is not a snappy stream: the first chunk is refused. */
                CHECK_EQ(fault_of(kcp, (size_t)klen), COMP_FAULT_NO_IDENT);
            } else {
                check_decodes_to(vec_str(run, "name"), kcp, (size_t)klen, smux, (size_t)slen);
                /* Re-encode with Go's write sizes (one write per data chunk) and compare. */
                struct chunk c[MAX_CHUNKS];
                int n = parse_chunks(kcp, (size_t)klen, c, MAX_CHUNKS);
                REQUIRE(n > 0);
                size_t writes[MAX_CHUNKS], nw = 0;
                for (int i = 0; i < n; i++)
                    if (c[i].type <= COMP_TYPE_UNCOMPRESSED)
                        writes[nw++] = chunk_decoded_len(kcp, &c[i]);
                check_encoder_like_go(vec_str(run, "name"), smux, (size_t)slen, writes, nw, kcp,
                                      (size_t)klen);
            }
            free(kcp);
            free(smux);
        }
        if (nocomp)
            nocomp_runs++;
        else
            comp_runs++;
    }
    CHECK(comp_runs >= 2);
    CHECK(nocomp_runs >= 1);
    cJSON_Delete(root);
}

/* ---- hand-built streams ----------------------------------------------------------------- */

struct stream {
    uint8_t b[200000];
    size_t len;
};

static void put_ident(struct stream *s)
{
    static const uint8_t id[COMP_IDENT_LEN] = {0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'};
    memcpy(s->b + s->len, id, sizeof(id));
    s->len += sizeof(id);
}

/* Appends a chunk header only. */
static void put_hdr(struct stream *s, uint8_t type, size_t len)
{
    uint8_t *p = put_u8(s->b + s->len, type);
    p = put_u8(p, (uint8_t)len);
    put_u16le(p, (uint16_t)(len >> 8));
    s->len += 4;
}

/* Appends a whole chunk; |len| must fit the stream buffer. */
static void put_chunk(struct stream *s, uint8_t type, const uint8_t *body, size_t len)
{
    put_hdr(s, type, len);
    if (len > 0)
        memcpy(s->b + s->len, body, len);
    s->len += len;
}

/* Appends a data chunk for |data| with CRC |crc|: compressed with libsnappy when |compress|. */
static void put_data(struct stream *s, bool compress, const uint8_t *data, size_t len, uint32_t crc)
{
    size_t cap = 4 + snappy_max_compressed_length(len) + len;
    uint8_t *body = malloc(cap);
    if (!body)
        return;
    size_t blen = cap - 4;
    put_u32le(body, crc);
    if (compress) {
        if (snappy_compress((const char *)data, len, (char *)body + 4, &blen) != SNAPPY_OK)
            blen = 0;
    } else {
        memcpy(body + 4, data, len);
        blen = len;
    }
    put_chunk(s, compress ? COMP_TYPE_COMPRESSED : COMP_TYPE_UNCOMPRESSED, body, 4 + blen);
    free(body);
}

TEST(comp_decoder_skips_padding_and_skippable)
{
    struct stream *s = calloc(1, sizeof(*s));
    REQUIRE(s);
    s->len = 0;
    static const uint8_t junk[300] = {0xfe};
    static const uint8_t hello[5] = {'h', 'e', 'l', 'l', 'o'};
    put_chunk(s, COMP_TYPE_PADDING, junk, 0); /* padding before the identifier is an error */
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_NO_IDENT);

    s->len = 0;
    put_ident(s);
    for (unsigned t = 0x80; t <= 0xfe; t++)
        put_chunk(s, (uint8_t)t, junk, t % 5 == 0 ? 0 : t);
    put_data(s, false, hello, 5, comp_masked_crc32c(hello, 5));
    put_ident(s); /* a later identifier is accepted */
    put_data(s, false, hello, 0, comp_masked_crc32c(hello, 0)); /* empty data chunk */
    put_data(s, true, hello, 5, comp_masked_crc32c(hello, 5));
    put_chunk(s, COMP_TYPE_PADDING, junk, 300);
    uint8_t want[10];
    memcpy(want, hello, 5);
    memcpy(want + 5, hello, 5);
    check_decodes_to("skippable", s->b, s->len, want, 10);

    /* The largest legal body is skipped too; one more byte is refused. */
    uint8_t *big = calloc(1, COMP_CHUNK_MAX + 1);
    REQUIRE(big);
    s->len = 0;
    put_ident(s);
    put_chunk(s, 0x80, big, COMP_CHUNK_MAX);
    put_data(s, false, hello, 5, comp_masked_crc32c(hello, 5));
    check_decodes_to("skip max", s->b, s->len, hello, 5);
    s->len = 0;
    put_ident(s);
    put_chunk(s, 0x80, big, COMP_CHUNK_MAX + 1);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_CHUNK_TOO_BIG);
    free(big);
    free(s);
}

TEST(comp_decoder_rejects_bad_input)
{
    struct stream *s = calloc(1, sizeof(*s));
    REQUIRE(s);
    static const uint8_t hello[5] = {'h', 'e', 'l', 'l', 'o'};
    uint32_t crc = comp_masked_crc32c(hello, 5);

    for (int compress = 0; compress < 2; compress++) {
        s->len = 0;
        put_ident(s);
        put_data(s, compress, hello, 5, crc ^ 1);
        CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_CRC);
        s->len = 0;
        put_ident(s);
        put_data(s, compress, hello, 5, crc);
        s->b[s->len - 1] ^= 0x40; /* last literal byte flipped: the block decodes, CRC fails */
        CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_CRC);
    }

    static const uint8_t bad_id[6] = {'s', 'N', 'a', 'P', 'p', 'Z'};
    s->len = 0;
    put_chunk(s, COMP_TYPE_IDENT, bad_id, 6);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_BAD_IDENT);
    s->len = 0;
    put_chunk(s, COMP_TYPE_IDENT, (const uint8_t *)"sNaPpYY", 7);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_BAD_IDENT);
    s->len = 0;
    put_data(s, false, hello, 5, crc);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_NO_IDENT);

    for (unsigned t = 0x02; t <= 0x7f; t++) {
        s->len = 0;
        put_ident(s);
        put_chunk(s, (uint8_t)t, hello, t % 3);
        CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_RESERVED);
    }

    for (size_t short_len = 0; short_len < 4; short_len++) {
        s->len = 0;
        put_ident(s);
        put_chunk(s, (uint8_t)(short_len & 1), hello, short_len);
        CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_SHORT_CHUNK);
    }

    s->len = 0;
    put_ident(s);
    put_hdr(s, COMP_TYPE_COMPRESSED, 0xffffff); /* the header alone is enough to refuse it */
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_CHUNK_TOO_BIG);
    free(s);
}

TEST(comp_decoder_rejects_bad_blocks)
{
    struct stream *s = calloc(1, sizeof(*s));
    REQUIRE(s);
    const size_t data_len = COMP_BLOCK_MAX + 1;
    uint8_t *data = malloc(data_len);
    REQUIRE(data);
    for (size_t i = 0; i < data_len; i++)
        data[i] = (uint8_t)(i * 7 / 13);

    /* Exactly COMP_BLOCK_MAX decodes, one byte more is refused, compressed or not. */
    for (int compress = 0; compress < 2; compress++) {
        s->len = 0;
        put_ident(s);
        put_data(s, compress, data, COMP_BLOCK_MAX, comp_masked_crc32c(data, COMP_BLOCK_MAX));
        check_decodes_to("full block", s->b, s->len, data, COMP_BLOCK_MAX);
        s->len = 0;
        put_ident(s);
        put_data(s, compress, data, data_len, comp_masked_crc32c(data, data_len));
        CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_BLOCK_TOO_BIG);
    }

    /* Truncated snappy block: chunk length shortened along with the block. */
    s->len = 0;
    put_ident(s);
    put_data(s, true, data, 1000, comp_masked_crc32c(data, 1000));
    size_t body = s->len - COMP_IDENT_LEN - 4;
    struct stream *t = calloc(1, sizeof(*t));
    REQUIRE(t);
    for (size_t cut = 1; cut < body - 4; cut += 1 + cut / 3) {
        t->len = 0;
        put_ident(t);
        put_chunk(t, COMP_TYPE_COMPRESSED, s->b + COMP_IDENT_LEN + 4, body - cut);
        CHECK_EQ(fault_of(t->b, t->len), COMP_FAULT_BLOCK);
    }

    /* A block whose length varint is missing, and one with trailing garbage. */
    static const uint8_t crc_only[4] = {0xd8, 0xea, 0x82, 0xa2};
    s->len = 0;
    put_ident(s);
    put_chunk(s, COMP_TYPE_COMPRESSED, crc_only, 4);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_BLOCK);
    static const uint8_t trailing[8] = {0xd8, 0xea, 0x82, 0xa2, 0x00, 0x00, 0x00, 0x00};
    s->len = 0;
    put_ident(s);
    put_chunk(s, COMP_TYPE_COMPRESSED, trailing, 8);
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_BLOCK);
    s->len = 0;
    put_ident(s);
    put_chunk(s, COMP_TYPE_COMPRESSED, trailing, 5); /* zero-length block, CRC of "" */
    CHECK_EQ(fault_of(s->b, s->len), COMP_FAULT_NONE);
    free(t);
    free(data);
    free(s);
}

TEST(comp_decoder_backpressure_and_sticky_fault)
{
    static const uint8_t hello[5] = {'h', 'e', 'l', 'l', 'o'};
    struct stream *s = calloc(1, sizeof(*s));
    REQUIRE(s);
    s->len = 0;
    put_ident(s);
    put_data(s, false, hello, 5, comp_masked_crc32c(hello, 5));
    put_data(s, false, hello, 3, comp_masked_crc32c(hello, 3));

    struct comp_decoder *dec = comp_decoder_new();
    REQUIRE(dec);
    CHECK(comp_decoder_is_idle(dec));
    CHECK_EQ(comp_decoder_input(dec, s->b, 0), 0);
    /* Stops right after the first data chunk. */
    CHECK_EQ(comp_decoder_input(dec, s->b, s->len), COMP_IDENT_LEN + 13);
    const uint8_t *p;
    CHECK_EQ(comp_decoder_peek(dec, &p), 5);
    CHECK(!comp_decoder_is_idle(dec));
    CHECK_EQ(comp_decoder_input(dec, s->b + 23, s->len - 23), ERR_AGAIN);
    comp_decoder_consume(dec, 2);
    REQUIRE(comp_decoder_peek(dec, &p) == 3);
    CHECK_MEM(p, "llo", 3);
    CHECK_EQ(comp_decoder_input(dec, s->b + 23, s->len - 23), ERR_AGAIN);
    comp_decoder_consume(dec, 100);
    CHECK_EQ(comp_decoder_peek(dec, &p), 0);
    CHECK(p == NULL);
    CHECK_EQ(comp_decoder_input(dec, s->b + 23, s->len - 23), 11);
    REQUIRE(comp_decoder_peek(dec, &p) == 3);
    CHECK_MEM(p, "hel", 3);
    comp_decoder_consume(dec, 3);
    CHECK(comp_decoder_is_idle(dec));
    CHECK_EQ(comp_decoder_stats(dec)->uncompressed_chunks, 2);
    CHECK_EQ(comp_decoder_stats(dec)->idents, 1);
    CHECK_EQ(comp_decoder_stats(dec)->bytes_out, 8);

    /* A fault is sticky, even for good bytes afterwards. */
    static const uint8_t reserved[4] = {0x05, 0, 0, 0};
    CHECK_EQ(comp_decoder_input(dec, reserved, 2), 2);
    CHECK(!comp_decoder_is_idle(dec));
    CHECK_EQ(comp_decoder_input(dec, reserved + 2, 2), ERR_PROTO);
    CHECK_EQ(comp_decoder_fault(dec), COMP_FAULT_RESERVED);
    CHECK_EQ(comp_decoder_stats(dec)->faults[COMP_FAULT_RESERVED], 1);
    CHECK_EQ(comp_decoder_input(dec, s->b + COMP_IDENT_LEN, 13), ERR_PROTO);
    CHECK(strstr(comp_fault_str(comp_decoder_fault(dec)), "reserved") != NULL);
    CHECK(comp_fault_str(COMP_FAULT_COUNT) != NULL);
    comp_decoder_free(dec);
    free(s);
}

/* Builds a valid stream of several frames of mixed content with our encoder. */
static void build_stream(uint64_t *rng, struct sink *framed, struct sink *plain)
{
    struct comp_encoder *enc = comp_encoder_new();
    if (!enc)
        return;
    uint8_t frame[1200];
    int frames = 1 + (int)(rng_next(rng) % 6);
    for (int f = 0; f < frames; f++) {
        size_t len = (size_t)(rng_next(rng) % sizeof(frame));
        bool text = rng_next(rng) & 1;
        for (size_t i = 0; i < len; i++)
            frame[i] = text ? (uint8_t)"abcab cabba "[(i + (size_t)f) % 12]
                            : (uint8_t)rng_next(rng);
        comp_encode(enc, frame, len, sink_output, framed);
        sink_append(plain, frame, len);
    }
    comp_encoder_free(enc);
}

/* Seeded mutations of valid streams: whatever happens, feeding whole, byte by byte and at random
 * splits with tiny drains must agree, and nothing may crash or leak (ASan/valgrind runs). */
TEST(comp_decoder_mutation_loop)
{
    uint64_t rng = 0x5eed5eedULL;
    int faults = 0, clean = 0;
    for (int iter = 0; iter < 400; iter++) {
        struct sink framed = {0}, plain = {0};
        build_stream(&rng, &framed, &plain);
        REQUIRE(framed.len >= COMP_IDENT_LEN);
        int muts = 1 + (int)(rng_next(&rng) % 4);
        for (int m = 0; m < muts; m++) {
            size_t at = (size_t)(rng_next(&rng) % framed.len);
            switch (rng_next(&rng) % 4) {
            case 0: /* flip a bit */
                framed.buf[at] ^= (uint8_t)(1u << (rng_next(&rng) % 8));
                break;
            case 1: /* random byte */
                framed.buf[at] = (uint8_t)rng_next(&rng);
                break;
            case 2: /* truncate */
                framed.len = at + 1;
                break;
            default: /* delete a byte */
                memmove(framed.buf + at, framed.buf + at + 1, framed.len - at - 1);
                framed.len--;
                break;
            }
        }
        struct feed_result ref, r;
        feed(framed.buf, framed.len, &feed_modes[0], &ref);
        CHECK_EQ(ref.violations, 0);
        CHECK(ref.rc == 0 || ref.rc == ERR_PROTO);
        if (ref.rc == 0) {
            clean++;
            CHECK(ref.out.len <= plain.len + 65536);
        } else {
            faults++;
            CHECK(ref.fault != COMP_FAULT_NONE);
        }
        for (size_t mode = 1; mode < FEED_MODES; mode++) {
            struct feed_opts o = feed_modes[mode];
            o.seed += (uint64_t)iter;
            feed(framed.buf, framed.len, &o, &r);
            CHECK_EQ(r.violations, 0);
            CHECK_EQ(r.rc, ref.rc);
            CHECK_EQ(r.fault, ref.fault);
            CHECK_EQ(r.idle, ref.idle);
            CHECK_EQ(r.out.len, ref.out.len);
            if (r.out.len == ref.out.len && r.out.len > 0)
                CHECK_MEM(r.out.buf, ref.out.buf, r.out.len);
            free(r.out.buf);
        }
        free(ref.out.buf);
        free(framed.buf);
        free(plain.buf);
    }
    CHECK(faults > 100);
    CHECK(clean > 0);
}
