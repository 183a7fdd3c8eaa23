/* SPDX-License-Identifier: MIT */
/* Pure core: one tunnel session (link + compression + mux), see tunnel.h. */
#include "common/tunnel.h"

#include "common/comp.h"
#include "common/err.h"
#include "common/util.h"
#include "crypto/crypt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of headroom kept in the link's send queue per frame for control frames and framing. */
#define TUNNEL_FRAME_OVERHEAD (MUX_HEADER_SIZE + COMP_IDENT_LEN + COMP_CHUNK_HDR_LEN + COMP_CRC_LEN)
/* Rounds of receive and deliver per pump while reading streams frees mux budget. */
#define TUNNEL_PUMP_ROUNDS 4

struct tunnel {
    struct link *link;            /* KCP + FEC + crypt */
    struct mux *mux;              /* smux */
    struct comp_encoder *enc;     /* NULL with nocomp */
    struct comp_decoder *dec;     /* NULL with nocomp */
    struct tunnel_budget *budget; /* shared receive budget, may be NULL */
    struct tunnel_callbacks cb;
    void *user;
    uint8_t *rx;                  /* TUNNEL_RX_BUF bytes from link_recv */
    size_t rx_off, rx_len;        /* unconsumed part of |rx| */
    uint64_t rx_counted;          /* this tunnel's share of budget->used */
    uint64_t bytes_sent;          /* bytes handed to the link */
    uint64_t bytes_received;      /* bytes taken from the link */
    bool stalled;                 /* waiting for the shared budget */
    bool in_pump;                 /* re-entrancy guard */
    bool dead;                    /* tunnel_pump reports it; the caller frees */
    bool secure;                  /* the secure crypt mode (only ktun speaks it) */
    const char *dead_reason;      /* why, static */
};

bool tunnel_budget_over(const struct tunnel_budget *b)
{
    return b && b->limit > 0 && b->used >= b->limit;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Hands framed bytes to KCP (it queues everything; writers respect tunnel_stream_room). */
static int tunnel_link_write(struct tunnel *t, const uint8_t *p, size_t len)
{
    int rc = link_send(t->link, p, len);
    if (rc == 0)
        t->bytes_sent += len;
    return rc;
}

static int comp_out_cb(void *user, const uint8_t *p, size_t len)
{
    return tunnel_link_write(user, p, len);
}

static int mux_out_cb(void *user, const uint8_t *frame, size_t len)
{
    struct tunnel *t = user;
    if (!t->enc)
        return tunnel_link_write(t, frame, len);
    ssize_t n = comp_encode(t->enc, frame, len, comp_out_cb, t);
    return n < 0 ? (int)n : 0;
}

static void mux_open_cb(void *user, uint32_t sid)
{
    struct tunnel *t = user;
    if (t->cb.on_stream_open)
        t->cb.on_stream_open(t->user, sid);
    else
        mux_stream_release(t->mux, sid); /* the client accepts no streams (kcptun neither) */
}

static void mux_close_cb(void *user, const char *reason)
{
    struct tunnel *t = user;
    t->dead = true;
    t->dead_reason = reason;
}

static void link_out_cb(void *user, const uint8_t *dgram, size_t len)
{
    struct tunnel *t = user;
    t->cb.output(t->user, dgram, len);
}

/* ---- life cycle --------------------------------------------------------------------- */

struct tunnel *tunnel_new(uint32_t conv, const struct tunnel_config *cfg, bool is_client,
                          struct crypt *crypt, struct tunnel_budget *budget,
                          const struct tunnel_callbacks *cb, void *user, uint64_t now_ms,
                          int *err)
{
    int lerr = ERR_NOMEM;
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    t->cb = *cb;
    t->user = user;
    t->budget = budget;
    t->secure = crypt && strcmp(crypt_method(crypt), CRYPT_SECURE_METHOD) == 0;
    t->rx = malloc(TUNNEL_RX_BUF);
    if (!t->rx)
        goto fail;
    t->link = link_new(conv, &cfg->link, crypt, link_out_cb, t, &lerr);
    if (!t->link)
        goto fail;
    lerr = ERR_NOMEM;
    struct mux_callbacks mcb = {
        .output = mux_out_cb,
        .on_stream_open = mux_open_cb,
        .on_close = mux_close_cb,
    };
    t->mux = mux_new(&cfg->mux, is_client, &mcb, t, now_ms);
    if (!t->mux)
        goto fail;
    if (!cfg->nocomp) {
        t->enc = comp_encoder_new();
        t->dec = comp_decoder_new();
        if (!t->enc || !t->dec)
            goto fail;
    }
    return t;
fail:
    if (err)
        *err = lerr;
    tunnel_free(t);
    return NULL;
}

void tunnel_free(struct tunnel *t)
{
    if (!t)
        return;
    if (t->budget) {
        t->budget->used -= t->rx_counted;
        if (t->stalled)
            t->budget->nstalled--;
    }
    link_free(t->link);
    mux_free(t->mux);
    comp_encoder_free(t->enc);
    comp_decoder_free(t->dec);
    free(t->rx);
    free(t);
}

void tunnel_kill(struct tunnel *t, const char *reason)
{
    t->dead = true;
    if (!t->dead_reason)
        t->dead_reason = reason;
}

bool tunnel_is_dead(const struct tunnel *t)
{
    return t->dead;
}

const char *tunnel_dead_reason(const struct tunnel *t)
{
    return t->dead ? (t->dead_reason ? t->dead_reason : "closed") : NULL;
}

/* ---- receiving ---------------------------------------------------------------------- */

int tunnel_input(struct tunnel *t, uint8_t *dgram, size_t len, uint64_t now_ms)
{
    return link_input(t->link, dgram, len, now_ms);
}

int tunnel_input_payload(struct tunnel *t, const uint8_t *payload, size_t len, uint64_t now_ms)
{
    return link_input_payload(t->link, payload, len, now_ms);
}

void tunnel_progress(const struct tunnel *t, size_t *recv_avail, size_t *wait_snd)
{
    *recv_avail = link_recv_avail(t->link);
    *wait_snd = link_wait_snd(t->link);
}

uint32_t tunnel_rto(const struct tunnel *t)
{
    return link_rto(t->link);
}

/* Offers |len| bytes to mux. Returns how many it took (0 when its receive budget is spent),
 * or -1 after marking the tunnel dead. */
static ssize_t tunnel_feed_mux(struct tunnel *t, const uint8_t *p, size_t len, uint64_t now)
{
    ssize_t r = mux_input(t->mux, p, len, now);
    if (r == ERR_AGAIN)
        return 0;
    if (r < 0) {
        tunnel_kill(t, "mux input failed");
        return -1;
    }
    return r;
}

static void tunnel_stall(struct tunnel *t)
{
    if (!t->stalled)
        t->budget->nstalled++;
    t->stalled = true;
}

/* Feeds the compressed bytes of |rx| to the decoder. Returns false to stop receiving. */
static bool tunnel_decode(struct tunnel *t)
{
    ssize_t r = comp_decoder_input(t->dec, t->rx + t->rx_off, t->rx_len);
    if (r < 0 && r != ERR_AGAIN) {
        if (t->cb.log) {
            char msg[128];
            snprintf(msg, sizeof(msg), "compressed stream corrupt: %s",
                     comp_fault_str(comp_decoder_fault(t->dec)));
            t->cb.log(t->user, msg);
        }
        tunnel_kill(t, "decompression failed");
        return false;
    }
    if (r <= 0)
        return false; /* cannot happen with no decoded bytes pending */
    t->rx_off += (size_t)r;
    t->rx_len -= (size_t)r;
    return true;
}

/* Feeds bytes from KCP through the decoder into mux until one of them blocks. Returns true
 * if it stopped because mux would take no more (its receive budget is spent). */
static bool tunnel_rx(struct tunnel *t, uint64_t now)
{
    while (!t->dead) {
        const uint8_t *d = t->rx + t->rx_off;
        size_t n = t->rx_len;
        if (t->dec && (n = comp_decoder_peek(t->dec, &d)) == 0 && t->rx_len) {
            if (!tunnel_decode(t))
                return false;
            continue;
        }
        if (n) {
            if (tunnel_budget_over(t->budget)) {
                tunnel_stall(t);
                return false;
            }
            ssize_t r = tunnel_feed_mux(t, d, n, now);
            if (r <= 0)
                return r == 0;
            if (t->dec) {
                comp_decoder_consume(t->dec, (size_t)r);
            } else {
                t->rx_off += (size_t)r;
                t->rx_len -= (size_t)r;
            }
            if ((size_t)r < n)
                return true;
            continue;
        }
        ssize_t r = link_recv(t->link, t->rx, TUNNEL_RX_BUF);
        if (r <= 0)
            return false;
        t->bytes_received += (uint64_t)r;
        t->rx_off = 0;
        t->rx_len = (size_t)r;
    }
    return false;
}

/* Brings the shared count of buffered stream bytes up to date for |t|. */
static void tunnel_account(struct tunnel *t)
{
    if (!t->budget)
        return;
    struct mux_stats st;
    mux_get_stats(t->mux, &st);
    t->budget->used = t->budget->used - t->rx_counted + st.rx_buffered;
    t->rx_counted = st.rx_buffered;
}

bool tunnel_pump(struct tunnel *t, uint64_t now_ms)
{
    if (t->in_pump)
        return !t->dead;
    t->in_pump = true;
    for (int round = 0; round < TUNNEL_PUMP_ROUNDS && !t->dead; round++) {
        bool blocked = tunnel_rx(t, now_ms);
        if (t->cb.on_deliver)
            t->cb.on_deliver(t->user);
        /* reading streams may have freed mux budget: go round again only then */
        if (!blocked || t->stalled || mux_input_blocked(t->mux))
            break;
    }
    if (!t->dead && t->cb.on_writable && tunnel_send_room(t) >= TUNNEL_MIN_ROOM)
        t->cb.on_writable(t->user);
    link_flush(t->link, now_ms);
    tunnel_account(t);
    t->in_pump = false;
    return !t->dead;
}

void tunnel_tick(struct tunnel *t, uint64_t now_ms)
{
    link_tick(t->link, now_ms);
    if (mux_tick(t->mux, now_ms) != 0)
        tunnel_kill(t, "mux closed");
}

uint64_t tunnel_next_deadline(const struct tunnel *t, uint64_t now_ms)
{
    return MIN(link_next_deadline(t->link, now_ms), mux_next_deadline(t->mux));
}

bool tunnel_unstall(struct tunnel *t)
{
    if (!t->stalled)
        return false;
    t->stalled = false;
    t->budget->nstalled--;
    return true;
}

bool tunnel_is_stalled(const struct tunnel *t)
{
    return t->stalled;
}

/* ---- accessors ---------------------------------------------------------------------- */

uint32_t tunnel_conv(const struct tunnel *t)
{
    return link_conv(t->link);
}

void tunnel_set_wall_offset(struct tunnel *t, int64_t wall_offset_ms)
{
    link_set_wall_offset(t->link, wall_offset_ms);
}

void tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *out)
{
    out->bytes_sent = t->bytes_sent;
    out->bytes_received = t->bytes_received;
    link_get_stats(t->link, &out->link);
    mux_get_stats(t->mux, &out->mux);
}

bool tunnel_peer_is_ktun(const struct tunnel *t)
{
    return t->secure;
}

int tunnel_ping(struct tunnel *t)
{
    return t->dead ? ERR_CLOSED : mux_ping(t->mux);
}

int tunnel_set_keepalive(struct tunnel *t, uint32_t interval_ms, uint32_t timeout_ms,
                         uint64_t now_ms)
{
    return mux_set_keepalive(t->mux, interval_ms, timeout_ms, now_ms);
}

size_t tunnel_stream_count(const struct tunnel *t)
{
    return mux_stream_count(t->mux);
}

/* ---- streams ------------------------------------------------------------------------ */

int tunnel_stream_open(struct tunnel *t, uint32_t *sid)
{
    return mux_stream_open(t->mux, sid);
}

size_t tunnel_send_room(const struct tunnel *t)
{
    if (mux_is_closed(t->mux))
        return 0;
    size_t room = link_send_room(t->link);
    return room > TUNNEL_FRAME_OVERHEAD * 4 ? room - TUNNEL_FRAME_OVERHEAD * 4 : 0;
}

size_t tunnel_stream_room(const struct tunnel *t, uint32_t sid, size_t cap)
{
    size_t room = tunnel_send_room(t);
    if (room < TUNNEL_MIN_ROOM)
        return 0;
    room = MIN(room, cap);
    return MIN(room, mux_stream_writable(t->mux, sid));
}

ssize_t tunnel_stream_write(struct tunnel *t, uint32_t sid, const uint8_t *data, size_t len)
{
    return mux_stream_write(t->mux, sid, data, len);
}

ssize_t tunnel_stream_read(struct tunnel *t, uint32_t sid, uint8_t *buf, size_t cap)
{
    return mux_stream_read(t->mux, sid, buf, cap);
}

int tunnel_stream_close(struct tunnel *t, uint32_t sid)
{
    return mux_stream_close(t->mux, sid);
}

int tunnel_stream_close_wait(struct tunnel *t, uint32_t sid, uint64_t now_ms)
{
    return mux_stream_close_wait(t->mux, sid, now_ms);
}

int tunnel_stream_release(struct tunnel *t, uint32_t sid)
{
    return mux_stream_release(t->mux, sid);
}

/* ---- routing ------------------------------------------------------------------------ */

enum tunnel_route tunnel_route(const struct tunnel *t, const uint8_t *payload, size_t len,
                               uint32_t *conv)
{
    uint32_t sn = 0;
    bool parity = false;
    *conv = 0;
    if (link_peek(payload, len, conv, &sn, &parity) != 0)
        return TUNNEL_ROUTE_DROP;
    if (!t)
        return parity ? TUNNEL_ROUTE_IGNORE : TUNNEL_ROUTE_NEW;
    if (parity || *conv == tunnel_conv(t))
        return TUNNEL_ROUTE_FEED;
    return sn == 0 ? TUNNEL_ROUTE_REPLACE : TUNNEL_ROUTE_DROP;
}
