/* SPDX-License-Identifier: MIT */
/* Test support for the mux: captured frames and events, in-memory delivery between sessions. */
#include "tests/unit/mux_harness.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "mux_harness: out of memory\n");
        abort();
    }
    return q;
}

void mh_buf_add(struct mh_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = b->cap ? b->cap : 256;
        while (b->len + n > b->cap)
            b->cap *= 2;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void add_ev(struct mh_side *s, int type, uint32_t sid, size_t n)
{
    if (s->nev == s->evcap) {
        s->evcap = s->evcap ? s->evcap * 2 : 64;
        s->ev = xrealloc(s->ev, s->evcap * sizeof(*s->ev));
    }
    s->ev[s->nev++] = (struct mh_ev){type, sid, n};
}

static int cb_output(void *user, const uint8_t *frame, size_t len)
{
    struct mh_side *s = user;
    if (s->fail_output)
        return ERR_CLOSED;
    /* Compact the delivered prefix now and then so long runs stay small. */
    if (s->out_off && s->out_off == s->out.len) {
        s->out.len = 0;
        s->out_off = 0;
    } else if (s->out_off > (1u << 20)) {
        memmove(s->out.p, s->out.p + s->out_off, s->out.len - s->out_off);
        s->out.len -= s->out_off;
        s->out_off = 0;
    }
    mh_buf_add(&s->out, frame, len);
    if (s->record_frames) {
        if (s->nframes == s->frames_cap) {
            s->frames_cap = s->frames_cap ? s->frames_cap * 2 : 32;
            s->frames = xrealloc(s->frames, s->frames_cap * sizeof(*s->frames));
        }
        uint8_t *copy = xrealloc(NULL, len);
        memcpy(copy, frame, len);
        s->frames[s->nframes++] = (struct mh_frame){copy, len};
    }
    return 0;
}

static void cb_open(void *user, uint32_t sid)
{
    struct mh_side *s = user;
    add_ev(s, MH_OPEN, sid, 0);
    if (s->reply_on_open) {
        uint32_t mine;
        mux_stream_write(s->m, sid, (const uint8_t *)"hi", 2);
        if (mux_stream_open(s->m, &mine) == 0)
            mux_stream_release(s->m, mine);
    }
}

static void cb_readable(void *user, uint32_t sid)
{
    struct mh_side *s = user;
    size_t total = 0;
    if (s->auto_read) {
        size_t cap = s->read_cap ? s->read_cap : 1000;
        uint8_t *buf = xrealloc(NULL, cap);
        ssize_t n;
        while ((n = mux_stream_read(s->m, sid, buf, cap)) > 0) {
            mh_buf_add(&s->rx, buf, (size_t)n);
            total += (size_t)n;
        }
        free(buf);
    }
    add_ev(s, MH_READABLE, sid, total);
}

static void cb_writable(void *user, uint32_t sid)
{
    add_ev(user, MH_WRITABLE, sid, 0);
}

static void cb_fin(void *user, uint32_t sid)
{
    struct mh_side *s = user;
    add_ev(s, MH_FIN, sid, 0);
    if (s->release_on_fin)
        mux_stream_release(s->m, sid);
}

static void cb_close(void *user, const char *reason)
{
    struct mh_side *s = user;
    s->close_reason = reason;
    add_ev(s, MH_CLOSE, 0, 0);
}

void mh_side_init(struct mh_side *s, const struct mux_config *cfg, bool is_client,
                  uint64_t now_ms)
{
    static const struct mux_callbacks cb = {cb_output, cb_open, cb_readable, cb_writable, cb_fin,
                                            cb_close};
    memset(s, 0, sizeof(*s));
    s->m = mux_new(cfg, is_client, &cb, s, now_ms);
    if (!s->m) {
        fprintf(stderr, "mux_harness: mux_new failed\n");
        abort();
    }
}

void mh_side_free(struct mh_side *s)
{
    mux_free(s->m);
    for (size_t i = 0; i < s->nframes; i++)
        free(s->frames[i].p);
    free(s->frames);
    free(s->ev);
    free(s->out.p);
    free(s->rx.p);
    memset(s, 0, sizeof(*s));
}

long mh_deliver(struct mh_side *from, struct mh_side *to, size_t max, uint64_t now_ms)
{
    size_t pending = from->out.len - from->out_off;
    size_t n = pending < max ? pending : max;
    if (n == 0)
        return 0;
    ssize_t r = mux_input(to->m, from->out.p + from->out_off, n, now_ms);
    if (r == ERR_AGAIN)
        return 0;
    if (r < 0)
        return r;
    from->out_off += (size_t)r;
    return r;
}

uint64_t mh_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

long mh_feed(struct mh_side *s, const uint8_t *data, size_t len, size_t step, uint64_t seed,
             uint64_t now_ms)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = len - pos;
        if (step == SIZE_MAX)
            n = 1 + (size_t)(mh_rand(&seed) % 40);
        else if (step)
            n = step;
        if (n > len - pos)
            n = len - pos;
        ssize_t r = mux_input(s->m, data + pos, n, now_ms);
        if (r == ERR_AGAIN)
            return (long)pos;
        if (r < 0)
            return r;
        pos += (size_t)r;
    }
    return (long)pos;
}

size_t mh_count(const struct mh_side *s, int type, uint32_t sid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].type == type && (sid == UINT32_MAX || s->ev[i].sid == sid))
            n++;
    return n;
}
