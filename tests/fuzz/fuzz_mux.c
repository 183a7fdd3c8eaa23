/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: mux_input with arbitrary splits; stream reads, writes, releases from fuzz. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "common/mux.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   flags u8 | rcvbuf LE16 | streambuf LE16 | max_streams u8 | op...
 * flags: bit 0 smux v2, 1 client, 2 read inside on_stream_readable, 3 release on the peer's
 * FIN, 4 keepalive on (1000 ms, timeout 3000 ms), 5 small frames (max_frame_size 100), 6 the
 * version is the first frame's (MUX_VERSION_AUTO; bit 0 then unused).
 * The session budget is 1 + rcvbuf * 16 bytes, the stream buffer 1 + streambuf % budget.
 * Each op is one byte (value % 8) and its arguments:
 *   0, 1 chunk record (LE16 length + bytes) -> appended to what mux_input left, then fed
 *   2 stream u8, cap LE16  -> mux_stream_read of 1 + cap bytes on a known stream
 *   3 stream u8            -> mux_stream_release
 *   4                      -> mux_stream_open
 *   5 stream u8, len LE16  -> mux_stream_write of len pattern bytes
 *   6 stream u8            -> mux_stream_close
 *   7 step LE16            -> clock += 4 * step, mux_tick when due
 * "stream u8" indexes the harness's list of live streams (ours and the peer's).
 */

#define FUZZ_MUX_MAX_OPS 4096
#define FUZZ_MUX_STREAMS 256
#define FUZZ_MUX_PENDING (256u * 1024u)
#define FUZZ_MUX_READ_MAX 65536

struct mux_fuzz {
    struct mux *m;
    struct mux_config cfg;
    uint8_t flags;
    uint32_t sids[FUZZ_MUX_STREAMS];
    size_t nsids;
    unsigned closes;
    uint8_t readbuf[FUZZ_MUX_READ_MAX];
};

static void track(struct mux_fuzz *s, uint32_t sid)
{
    for (size_t i = 0; i < s->nsids; i++)
        FUZZ_CHECK(s->sids[i] != sid);
    if (s->nsids < FUZZ_MUX_STREAMS)
        s->sids[s->nsids++] = sid;
}

static void untrack(struct mux_fuzz *s, uint32_t sid)
{
    for (size_t i = 0; i < s->nsids; i++) {
        if (s->sids[i] == sid) {
            s->sids[i] = s->sids[--s->nsids];
            return;
        }
    }
}

/* Reads from |sid| with |cap| bytes of room and checks the buffered count moves with it. */
static void checked_read(struct mux_fuzz *s, uint32_t sid, size_t cap)
{
    size_t before = mux_stream_buffered(s->m, sid);
    ssize_t n = mux_stream_read(s->m, sid, s->readbuf, cap);

    if (n > 0) {
        FUZZ_CHECK((size_t)n <= cap && (size_t)n <= before);
        FUZZ_CHECK(mux_stream_buffered(s->m, sid) == before - (size_t)n);
    } else {
        FUZZ_CHECK(n == 0 || n == ERR_AGAIN || n == ERR_CLOSED);
        if (n == ERR_AGAIN)
            FUZZ_CHECK(before == 0);
    }
}

static int on_output(void *user, const uint8_t *frame, size_t len)
{
    struct mux_fuzz *s = user;
    struct mux_frame_hdr h;

    FUZZ_CHECK(mux_frame_parse(frame, len, &h) == 0);
    FUZZ_CHECK(h.ver == mux_version(s->m) && h.ver != MUX_VERSION_AUTO);
    FUZZ_CHECK(h.cmd < MUX_CMD_COUNT);
    FUZZ_CHECK(h.len == len - MUX_HEADER_SIZE);
    if (h.cmd == MUX_CMD_PSH)
        FUZZ_CHECK(h.len > 0 && h.len <= s->cfg.max_frame_size);
    else if (h.cmd == MUX_CMD_UPD)
        FUZZ_CHECK(mux_version(s->m) == 2 && h.len == MUX_UPD_SIZE);
    else
        FUZZ_CHECK(h.len == 0);
    return 0;
}

static void on_open(void *user, uint32_t sid)
{
    track(user, sid);
}

static void on_readable(void *user, uint32_t sid)
{
    struct mux_fuzz *s = user;
    FUZZ_CHECK(mux_stream_exists(s->m, sid));
    if (s->flags & 4)
        checked_read(s, sid, 1 + sid % 1000);
}

static void on_writable(void *user, uint32_t sid)
{
    struct mux_fuzz *s = user;
    FUZZ_CHECK(mux_version(s->m) == 2);
    FUZZ_CHECK(mux_stream_exists(s->m, sid));
}

static void on_fin(void *user, uint32_t sid)
{
    struct mux_fuzz *s = user;
    FUZZ_CHECK(mux_stream_exists(s->m, sid));
    if (s->flags & 8) {
        FUZZ_CHECK(mux_stream_release(s->m, sid) == 0);
        untrack(s, sid);
    }
}

static void on_close(void *user, const char *reason)
{
    struct mux_fuzz *s = user;
    FUZZ_CHECK(reason && reason[0]);
    s->closes++;
}

static uint32_t pick(struct mux_fuzz *s, uint8_t idx)
{
    return s->nsids ? s->sids[idx % s->nsids] : idx; /* unknown ids are fair game too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t pattern[MUX_MAX_PAYLOAD] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct fuzz_reader r;
    struct mux_fuzz *s = calloc(1, sizeof(*s));
    uint8_t *pending = malloc(FUZZ_MUX_PENDING);
    size_t npending = 0;
    uint64_t now = 1000;

    if (!s || !pending)
        goto out;
    fuzz_reader_init(&r, data, size);
    s->flags = fuzz_u8(&r);
    mux_config_default(&s->cfg);
    /* flags bit 6: the version is taken from the first frame (a detecting listener) */
    s->cfg.version = (s->flags & 64) ? MUX_VERSION_AUTO : (s->flags & 1) ? 2 : 1;
    s->cfg.max_receive_buffer = 1 + (uint32_t)fuzz_u16(&r) * 16;
    s->cfg.max_stream_buffer = 1 + fuzz_u16(&r) % s->cfg.max_receive_buffer;
    s->cfg.max_streams = fuzz_u8(&r);
    s->cfg.keepalive_interval_ms = (s->flags & 16) ? 1000 : 0;
    s->cfg.keepalive_timeout_ms = 3000;
    s->cfg.max_frame_size = (s->flags & 32) ? 100 : 32768;
    FUZZ_CHECK(mux_config_validate(&s->cfg) == 0);
    struct mux_callbacks cb = {
        .output = on_output,
        .on_stream_open = on_open,
        .on_stream_readable = on_readable,
        .on_stream_writable = on_writable,
        .on_stream_fin = on_fin,
        .on_close = on_close,
    };
    s->m = mux_new(&s->cfg, (s->flags & 2) != 0, &cb, s, now);
    if (!s->m)
        goto out;

    for (int ops = 0; fuzz_left(&r) > 0 && ops < FUZZ_MUX_MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&r) % 8;
        uint32_t sid;
        size_t len;
        ssize_t n;

        switch (op) {
        case 0:
        case 1: {
            const uint8_t *chunk = fuzz_record(&r, &len);
            if (npending + len > FUZZ_MUX_PENDING)
                break;
            memcpy(pending + npending, chunk, len);
            npending += len;
            if (npending == 0)
                break;
            bool was_closed = mux_is_closed(s->m);
            n = mux_input(s->m, pending, npending, now);
            if (was_closed)
                FUZZ_CHECK(n == ERR_CLOSED);
            if (n >= 0) {
                FUZZ_CHECK((size_t)n <= npending);
                if ((size_t)n < npending)
                    FUZZ_CHECK(mux_input_blocked(s->m));
                memmove(pending, pending + n, npending - (size_t)n);
                npending -= (size_t)n;
            } else if (n == ERR_AGAIN) {
                FUZZ_CHECK(mux_input_blocked(s->m));
            } else {
                FUZZ_CHECK(n == ERR_PROTO || n == ERR_CLOSED);
                FUZZ_CHECK(mux_is_closed(s->m));
                npending = 0;
            }
            break;
        }
        case 2:
            sid = pick(s, fuzz_u8(&r));
            checked_read(s, sid, 1 + (size_t)fuzz_u16(&r) % FUZZ_MUX_READ_MAX);
            break;
        case 3:
            sid = pick(s, fuzz_u8(&r));
            if (mux_stream_release(s->m, sid) == 0)
                untrack(s, sid);
            FUZZ_CHECK(!mux_stream_exists(s->m, sid));
            break;
        case 4: {
            int rc = mux_stream_open(s->m, &sid);
            if (rc == 0) {
                FUZZ_CHECK(sid % 2 == ((s->flags & 2) ? 1u : 0u));
                track(s, sid);
            } else {
                FUZZ_CHECK(rc == ERR_LIMIT || rc == ERR_CLOSED || rc == ERR_NOMEM);
            }
            break;
        }
        case 5: {
            sid = pick(s, fuzz_u8(&r));
            len = fuzz_u16(&r);
            size_t room = mux_stream_writable(s->m, sid);
            n = mux_stream_write(s->m, sid, pattern, len);
            if (n >= 0)
                FUZZ_CHECK((size_t)n <= len && (size_t)n <= room && (n > 0 || len == 0));
            else
                FUZZ_CHECK(n == ERR_AGAIN || n == ERR_CLOSED || n == ERR_PROTO);
            break;
        }
        case 6:
            sid = pick(s, fuzz_u8(&r));
            n = mux_stream_close(s->m, sid);
            FUZZ_CHECK(n == 0 || n == ERR_CLOSED);
            break;
        case 7:
            now += 4 * (uint64_t)fuzz_u16(&r);
            if (mux_next_deadline(s->m) <= now) {
                n = mux_tick(s->m, now);
                FUZZ_CHECK(n == 0 || n == ERR_CLOSED);
            }
            break;
        }
        struct mux_stats st;
        mux_get_stats(s->m, &st);
        FUZZ_CHECK(st.rx_buffered <= (uint64_t)s->cfg.max_receive_buffer + MUX_MAX_PAYLOAD);
        FUZZ_CHECK(s->closes <= 1);
        FUZZ_CHECK(mux_is_closed(s->m) == (s->closes == 1));
        if (s->cfg.max_streams && s->nsids < FUZZ_MUX_STREAMS)
            FUZZ_CHECK(mux_stream_count(s->m) <= s->cfg.max_streams);
        FUZZ_CHECK(mux_stream_count(s->m) >= s->nsids);
    }
out:
    if (s)
        mux_free(s->m);
    free(s);
    free(pending);
    return 0;
}
