/* SPDX-License-Identifier: MIT */
/* Test support for the mux: a session with captured frames and events, and in-memory delivery. */
#ifndef KTUN_TESTS_MUX_HARNESS_H
#define KTUN_TESTS_MUX_HARNESS_H

#include "common/mux.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mh_ev_type { MH_OPEN, MH_READABLE, MH_WRITABLE, MH_FIN, MH_CLOSE, MH_EV_COUNT };

struct mh_ev {
    int type;     /* enum mh_ev_type */
    uint32_t sid; /* stream (0 for MH_CLOSE) */
    size_t n;     /* MH_READABLE with auto_read: bytes read in the callback */
};

struct mh_buf {
    uint8_t *p;
    size_t len, cap;
};

struct mh_frame {
    uint8_t *p;
    size_t len;
};

struct mh_side {
    struct mux *m;
    struct mh_buf out;         /* bytes sent and not yet delivered: out.p[out_off..len) */
    size_t out_off;
    struct mh_frame *frames;   /* every frame sent, when record_frames */
    size_t nframes, frames_cap;
    bool record_frames;
    struct mh_ev *ev;          /* every event */
    size_t nev, evcap;
    bool auto_read;            /* read everything inside on_stream_readable into rx */
    size_t read_cap;           /* auto_read: bytes per mux_stream_read call (0 = 1000) */
    bool release_on_fin;       /* release the stream inside on_stream_fin (kcptun style) */
    bool reply_on_open;        /* write "hi" and open a stream inside on_stream_open */
    struct mh_buf rx;          /* bytes read by auto_read, all streams in order */
    const char *close_reason;  /* on_close reason, or NULL */
    bool fail_output;          /* make output return ERR_CLOSED */
};

/* Creates the session of |s| (zeroed first) with |cfg|; aborts the test program on failure. */
void mh_side_init(struct mh_side *s, const struct mux_config *cfg, bool is_client,
                  uint64_t now_ms);
void mh_side_free(struct mh_side *s);

/* Appends |n| bytes to |b|. */
void mh_buf_add(struct mh_buf *b, const void *p, size_t n);

/* Offers up to |max| undelivered bytes of |from| to |to|'s mux_input; returns bytes consumed
 * (0 when nothing is pending or |to| is blocked), or the negative mux_input error. */
long mh_deliver(struct mh_side *from, struct mh_side *to, size_t max, uint64_t now_ms);

/* Feeds |data| to |s| in pieces: |step| bytes each (0 = all at once, SIZE_MAX = random sizes
 * from |seed|). Returns the total consumed or a negative error. */
long mh_feed(struct mh_side *s, const uint8_t *data, size_t len, size_t step, uint64_t seed,
             uint64_t now_ms);

/* Number of events of |type| for |sid| (any sid if |sid| is UINT32_MAX). */
size_t mh_count(const struct mh_side *s, int type, uint32_t sid);

/* Deterministic 64-bit PRNG (xorshift64*). */
uint64_t mh_rand(uint64_t *state);

#endif
