/* SPDX-License-Identifier: MIT */
/* Pure core: one tunnel session (link + compression + mux), see tunnel.h. */
#include "common/tunnel.h"

#include "common/comp.h"
#include "common/dgram.h"
#include "common/err.h"
#include "common/util.h"
#include "common/wire.h"
#include "fec/fec.h"
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
    uint64_t rcv_reserved;        /* ... and of budget->reserved (its grown receive window) */
    uint64_t bytes_sent;          /* bytes handed to the link */
    uint64_t bytes_received;      /* bytes taken from the link */
    bool stalled;                 /* waiting for the shared budget */
    bool in_pump;                 /* re-entrancy guard */
    bool dead;                    /* tunnel_pump reports it; the caller frees */
    bool secure;                  /* the secure crypt mode (only ktun speaks it) */
    const char *dead_reason;      /* why, static */
    /* extensions */
    uint32_t ext_caps;            /* ours */
    bool is_client;
    enum { CAPS_NONE, CAPS_PENDING, CAPS_KNOWN, CAPS_GAVE_UP } caps_state;
    bool caps_news;               /* on_caps is due at the next pump */
    uint32_t peer_caps;           /* both ends' capabilities */
    unsigned offer_tries;         /* offers sent (counted again once the server is heard) */
    bool offer_unheard;           /* offers went on because the server had not answered */
    uint64_t offer_next_ms;       /* next offer due (CAPS_PENDING) */
    uint32_t dgram_seq;           /* next datagram record's sequence number */
    struct dgram_window dgram_win; /* received sequence numbers */
    uint8_t *hold;                /* records held while the offer is unanswered */
    size_t hold_len;
    uint64_t dgram_out, dgram_in, dgram_recovered, dgram_dropped, dgram_toobig;
    bool comp_pending;            /* comp_auto: the peer's first byte has not come yet */
    bool comp_default;            /* compression if we must speak before the peer */
    bool comp_forced;             /* compression was configured, not detected */
    bool ver_forced;              /* the smux version was configured, not detected */
    bool heard;                   /* a smux frame from the peer arrived */
    bool peer_refused;            /* died: the peer's smux refused the session */
    bool reset_pinged;            /* a NOP went out to confirm a una_reset */
    /* client keeping copies: has the server's smux evidently taken our frames? (check_taken) */
    bool taken;                   /* yes: as good as a smux frame heard */
    uint8_t take_step;            /* 0: our first segment not acknowledged; 1: waiting until
                                   * take_ms; 2: waiting for take_sn's acknowledgement */
    uint64_t take_ms;
    uint32_t take_sn;
    uint32_t take_wait_ms;        /* the KCP interval (the server's ACK delay) */
    int first_byte;               /* the peer's first byte out of KCP, -1 before it */
    size_t replay_max;            /* tunnel_config.replay_max */
    struct replay *replays;       /* copies of streams' bytes (tunnel_config.replay_max) */
};

/* What a stream wrote while the server had not been heard (tunnel_stream_replay). */
struct replay {
    struct replay *next;
    uint32_t sid;
    size_t len, cap;
    uint8_t *data;
    bool lost;                    /* a write could not be copied: no replay */
};

bool tunnel_budget_over(const struct tunnel_budget *b)
{
    return b && b->limit > 0 && b->used + b->reserved >= b->limit;
}

/* kcp_rcv_grant_fn: the KCP receive window grows by what the shared budget has left, up to
 * half its limit for all windows together (tunnel.h). */
static size_t tunnel_rcv_grant(void *user, size_t bytes)
{
    struct tunnel *t = user;
    struct tunnel_budget *b = t->budget;
    size_t n = bytes;
    if (b->limit > 0) { /* (no limit: only counted) */
        uint64_t half = b->limit / 2, taken = b->used + b->reserved;
        if (b->reserved >= half || taken >= b->limit)
            return 0;
        uint64_t room = half - b->reserved;
        if (room > b->limit - taken)
            room = b->limit - taken;
        if (n > room)
            n = (size_t)room;
    }
    b->reserved += n;
    t->rcv_reserved += n;
    return n;
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

static bool tunnel_set_comp(struct tunnel *t, bool comp);

static int mux_out_cb(void *user, const uint8_t *frame, size_t len)
{
    struct tunnel *t = user;
    if (t->comp_pending) {
        /* a keepalive before the peer's first byte is not worth guessing its format for */
        if (len >= 2 && frame[1] == MUX_CMD_NOP)
            return 0;
        if (!tunnel_set_comp(t, t->comp_default))
            return ERR_NOMEM;
    }
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

static void tunnel_log(struct tunnel *t, const char *msg)
{
    if (t->cb.log)
        t->cb.log(t->user, msg);
}

/* The hint a listener adds when it forced a setting that it could have detected. */
static const char *forced_hint(const struct tunnel *t, bool forced)
{
    return !t->is_client && forced ? " (without the flag a ktun server accepts both)" : "";
}

static const char refused_msg[] =
    "the server refused this session: it has all the sessions it takes (a ktun server at its "
    "--maxsessions; it logs the count)";

/* The peer's first frame failed smux's version check: say which flag differs. */
static void explain_version(struct tunnel *t)
{
    struct mux_stats st;
    mux_get_stats(t->mux, &st);
    int ours = mux_version(t->mux);
    char msg[256];
    if (t->is_client && st.bad_version == 0 && t->first_byte == 0)
        snprintf(msg, sizeof(msg), "%s", refused_msg);
    else if (!t->enc && st.bad_version == 0xff && !t->heard)
        snprintf(msg, sizeof(msg), "the peer compresses (snappy framing) and this end runs "
                 "--nocomp: give both ends the same --nocomp%s", forced_hint(t, t->comp_forced));
    else if (st.bad_version == 1 || st.bad_version == 2)
        snprintf(msg, sizeof(msg), "the peer speaks smux v%u and this end v%d: give both ends the "
                 "same --smuxver%s", st.bad_version, ours, forced_hint(t, t->ver_forced));
    else
        snprintf(msg, sizeof(msg), "the peer's stream is not smux v%d (version byte 0x%02x): a "
                 "different --nocomp or --smuxver, or not a kcptun peer", ours, st.bad_version);
    tunnel_log(t, msg);
}

static void mux_close_cb(void *user, const char *reason)
{
    struct tunnel *t = user;
    t->dead = true;
    t->dead_reason = reason;
    if (strcmp(reason, "invalid protocol version") == 0)
        explain_version(t);
}

static void link_out_cb(void *user, const uint8_t *dgram, size_t len)
{
    struct tunnel *t = user;
    t->cb.output(t->user, dgram, len);
}

/* ---- extensions ----------------------------------------------------------------------- */

/* Whether the server's KCP has sent anything (an ACK will do). */
static bool kcp_heard(const struct tunnel *t)
{
    struct link_stats ls;
    link_get_stats(t->link, &ls);
    return ls.kcp.in_segs > 0;
}

static void caps_offer(struct tunnel *t, uint64_t now)
{
    uint8_t rec[EXT_REC_HDR + EXT_CAPS_VLEN];
    size_t n = ext_put_caps(rec, EXT_CAPS_OFFER, t->ext_caps);
    link_ext_queue(t->link, rec, n);
    uint32_t wait = MAX(TUNNEL_OFFER_WAIT_MS, link_rto(t->link));
    t->offer_next_ms = now + ((uint64_t)wait << MIN(t->offer_tries, 3u));
    t->offer_tries++;
}

/* Queues the held records once the peer's datagram channel is known, else drops them. */
static void hold_release(struct tunnel *t)
{
    if (!t->hold)
        return;
    const uint8_t *p = t->hold, *end = t->hold + t->hold_len;
    struct ext_rec r;
    while (ext_next(&p, end, &r) == 1) {
        size_t n = EXT_REC_HDR + r.len;
        if (t->peer_caps & EXT_CAP_DGRAM) {
            link_ext_queue(t->link, r.val - EXT_REC_HDR, n);
            if (r.type == EXT_DGRAM)
                t->dgram_out++;
        } else if (r.type == EXT_DGRAM) {
            t->dgram_dropped++;
        }
    }
    free(t->hold);
    t->hold = NULL;
    t->hold_len = 0;
}

static void caps_known(struct tunnel *t, uint32_t peer)
{
    t->peer_caps = peer & t->ext_caps;
    link_set_group_close(t->link, (t->peer_caps & EXT_CAP_DGRAM) != 0);
    link_set_fec_adaptive(t->link, true);
    t->caps_state = CAPS_KNOWN;
    t->caps_news = true;
    hold_release(t);
}

static void on_dgram_rec(struct tunnel *t, const struct ext_rec *r, bool recovered)
{
    struct dgram d;
    if (!(t->ext_caps & EXT_CAP_DGRAM) || dgram_parse(r, &d) != 0 || !t->cb.on_dgram ||
        !dgram_window_accept(&t->dgram_win, d.seq)) {
        t->dgram_dropped++;
        return;
    }
    t->dgram_in++;
    if (recovered)
        t->dgram_recovered++;
    struct tunnel_dgram td = {
        .flow = d.flow,
        .target = d.target,
        .target_len = d.target_len,
        .data = d.data,
        .len = d.len,
        .recovered = recovered,
    };
    t->cb.on_dgram(t->user, &td);
}

static void link_ext_cb(void *user, const uint8_t *body, size_t len, bool recovered)
{
    struct tunnel *t = user;
    const uint8_t *p = body, *end = body + len;
    struct ext_rec r;
    uint8_t ver;
    uint32_t caps, flow;
    while (!t->dead && ext_next(&p, end, &r) == 1) {
        switch (r.type) {
        case EXT_CAPS_OFFER:
            if (t->is_client || ext_parse_caps(&r, &ver, &caps) != 0)
                break;
            if (t->caps_state != CAPS_KNOWN) {
                caps_known(t, caps);
                mux_ping(t->mux); /* an RTT sample at once: FEC groups close by it */
            }
            uint8_t rec[EXT_REC_HDR + EXT_CAPS_VLEN];
            link_ext_queue(t->link, rec, ext_put_caps(rec, EXT_CAPS_ANSWER, t->ext_caps));
            break;
        case EXT_CAPS_ANSWER:
            if (t->is_client && t->caps_state != CAPS_NONE && t->caps_state != CAPS_KNOWN &&
                ext_parse_caps(&r, &ver, &caps) == 0)
                caps_known(t, caps);
            break;
        case EXT_DGRAM:
            on_dgram_rec(t, &r, recovered);
            break;
        case EXT_FLOW_OPEN:
        case EXT_FLOW_CLOSE:
            if (t->cb.on_flow && ext_parse_flow(&r, &flow) == 0)
                t->cb.on_flow(t->user, r.type, flow);
            break;
        default:
            break; /* a later version's record */
        }
    }
}

bool tunnel_peer_is_ktun(const struct tunnel *t)
{
    return t->secure || t->caps_state == CAPS_KNOWN;
}

uint32_t tunnel_peer_caps(const struct tunnel *t)
{
    return t->caps_state == CAPS_KNOWN ? t->peer_caps : 0;
}

bool tunnel_caps_pending(const struct tunnel *t)
{
    return t->caps_state == CAPS_PENDING;
}

size_t tunnel_dgram_max(const struct tunnel *t, size_t target_len)
{
    size_t over = dgram_rec_len(target_len, 0);
    size_t room = link_ext_room(t->link);
    return room > over ? room - over : 0;
}

/* Queues one record for the peer (or holds it). */
static int ext_send(struct tunnel *t, const uint8_t *rec, size_t n, bool is_dgram)
{
    if (t->dead)
        return ERR_CLOSED;
    if (t->caps_state == CAPS_PENDING && !t->secure) {
        if (t->hold_len + n > TUNNEL_DGRAM_HOLD)
            return ERR_LIMIT;
        if (!t->hold && !(t->hold = malloc(TUNNEL_DGRAM_HOLD)))
            return ERR_NOMEM;
        memcpy(t->hold + t->hold_len, rec, n);
        t->hold_len += n;
        return 0;
    }
    bool ok = t->caps_state == CAPS_KNOWN ? (t->peer_caps & EXT_CAP_DGRAM) != 0
                                          : t->secure && t->caps_state != CAPS_GAVE_UP;
    if (!ok)
        return ERR_PROTO;
    int rc = link_ext_queue(t->link, rec, n);
    if (rc == 0 && is_dgram)
        t->dgram_out++;
    return rc;
}

int tunnel_dgram_send(struct tunnel *t, uint32_t flow, const uint8_t *target,
                      size_t target_len, const uint8_t *data, size_t len)
{
    if (target_len > DGRAM_TARGET_MAX || len > tunnel_dgram_max(t, target_len)) {
        t->dgram_dropped++;
        t->dgram_toobig++;
        return ERR_TOOBIG;
    }
    uint8_t rec[CRYPT_MAX_DATAGRAM];
    size_t n = dgram_put(rec, flow, t->dgram_seq, target, target_len, data, len);
    int rc = ext_send(t, rec, n, true);
    if (rc == 0)
        t->dgram_seq++;
    else
        t->dgram_dropped++;
    return rc;
}

int tunnel_flow_signal(struct tunnel *t, uint8_t type, uint32_t flow)
{
    uint8_t rec[EXT_REC_HDR + EXT_FLOW_VLEN];
    return ext_send(t, rec, ext_put_flow(rec, type, flow), false);
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
    t->is_client = is_client;
    t->first_byte = -1;
    t->comp_pending = cfg->comp_auto;
    t->comp_default = !cfg->nocomp;
    t->comp_forced = !cfg->comp_auto;
    t->ver_forced = cfg->mux.version != MUX_VERSION_AUTO;
    t->rx = malloc(TUNNEL_RX_BUF);
    if (!t->rx)
        goto fail;
    t->link = link_new(conv, &cfg->link, crypt, link_out_cb, t, &lerr);
    if (!t->link)
        goto fail;
    link_set_ext(t->link, link_ext_cb, t);
    if (budget)
        link_set_rcv_grant(t->link, tunnel_rcv_grant, t);
    /* parity below --ds/--ps only between ktun ends (docs/latency.md) */
    link_set_fec_adaptive(t->link, t->secure);
    t->is_client = is_client;
    t->ext_caps = cfg->ext_caps;
    t->replay_max = cfg->replay_max;
    t->take_wait_ms = cfg->link.interval_ms > 0 ? (uint32_t)cfg->link.interval_ms : 0;
    lerr = ERR_NOMEM;
    struct mux_callbacks mcb = {
        .output = mux_out_cb,
        .on_stream_open = mux_open_cb,
        .on_close = mux_close_cb,
    };
    t->mux = mux_new(&cfg->mux, is_client, &mcb, t, now_ms);
    if (!t->mux)
        goto fail;
    if (!cfg->comp_auto && !cfg->nocomp && !tunnel_set_comp(t, true))
        goto fail;
    link_set_group_close(t->link, t->secure && (cfg->ext_caps & EXT_CAP_DGRAM));
    if (is_client && cfg->ext_offer) {
        /* the offer rides with a NOP: a listener opens a session only on a first packet
         * that carries KCP's first segment (sn 0) */
        t->caps_state = CAPS_PENDING;
        mux_ping(t->mux);
        caps_offer(t, now_ms);
    }
    return t;
fail:
    if (err)
        *err = lerr;
    tunnel_free(t);
    return NULL;
}

static void replay_drop_all(struct tunnel *t)
{
    while (t->replays) {
        struct replay *r = t->replays;
        t->replays = r->next;
        free(r->data);
        free(r);
    }
}

static struct replay **replay_find(const struct tunnel *t, uint32_t sid)
{
    struct replay **pp = (struct replay **)&t->replays;
    while (*pp && (*pp)->sid != sid)
        pp = &(*pp)->next;
    return pp;
}

static void replay_keep(struct tunnel *t, uint32_t sid, const uint8_t *data, size_t len);

/* Copies are kept while the server has not been heard and has not refused us. */
static bool replay_on(const struct tunnel *t)
{
    return t->is_client && t->replay_max > 0 && !t->peer_refused && !tunnel_peer_heard(t);
}

void tunnel_trim(struct tunnel *t)
{
    if (t->enc)
        comp_encoder_trim(t->enc);
    if (t->dec)
        comp_decoder_trim(t->dec);
    link_trim(t->link);
}

void tunnel_free(struct tunnel *t)
{
    if (!t)
        return;
    if (t->budget) {
        t->budget->used -= t->rx_counted;
        t->budget->reserved -= t->rcv_reserved;
        if (t->stalled)
            t->budget->nstalled--;
    }
    link_free(t->link);
    mux_free(t->mux);
    comp_encoder_free(t->enc);
    comp_decoder_free(t->dec);
    free(t->hold);
    free(t->rx);
    replay_drop_all(t);
    free(t);
}

/* Fixes the session's compression; false when out of memory (the tunnel is then dead). */
static bool tunnel_set_comp(struct tunnel *t, bool comp)
{
    t->comp_pending = false;
    if (!comp)
        return true;
    t->enc = comp_encoder_new();
    t->dec = comp_decoder_new();
    if (t->enc && t->dec)
        return true;
    comp_encoder_free(t->enc);
    comp_decoder_free(t->dec);
    t->enc = NULL;
    t->dec = NULL;
    tunnel_kill(t, "out of memory");
    return false;
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
        enum comp_fault f = comp_decoder_fault(t->dec);
        char msg[192];
        if (f == COMP_FAULT_NO_IDENT && t->is_client && t->first_byte == 0)
            snprintf(msg, sizeof(msg), "%s", refused_msg);
        else if (f == COMP_FAULT_NO_IDENT && (t->first_byte == 1 || t->first_byte == 2))
            snprintf(msg, sizeof(msg), "the peer sends plain smux (it runs --nocomp) and this end "
                     "expects snappy framing: give both ends the same --nocomp%s",
                     forced_hint(t, t->comp_forced));
        else
            snprintf(msg, sizeof(msg), "compressed stream corrupt: %s", comp_fault_str(f));
        tunnel_log(t, msg);
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
        if (t->first_byte < 0) {
            t->first_byte = t->rx[0];
            /* the snappy stream identifier chunk starts with 0xff, a smux frame with 1 or 2 */
            if (t->comp_pending && !tunnel_set_comp(t, t->first_byte == 0xff))
                return false;
        }
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

/* Client: has the server's smux refused the session? (see tunnel.h). |timed_out|: the
 * keepalive check just closed the session. */
static void check_refused(struct tunnel *t, bool timed_out)
{
    if (!t->is_client || t->heard || t->taken || t->peer_refused || t->bytes_sent == 0)
        return;
    struct mux_stats ms;
    mux_get_stats(t->mux, &ms);
    if (ms.frames_in > 0) {
        t->heard = true;
        return;
    }
    struct link_stats ls;
    link_get_stats(t->link, &ls);
    if (ls.kcp.in_segs == 0)
        return; /* nothing from the server at all: not a refusal */
    char msg[320];
    if (ls.kcp.una_reset == 1 && !t->reset_pinged) {
        /* one such segment may be a late one of the session's start (the server got our sn 1
         * before sn 0): a NOP now is answered with una 0 again only by a server that really
         * took us for a new session */
        t->reset_pinged = true;
        mux_ping(t->mux);
        return;
    }
    if (ls.kcp.una_reset > 1)
        snprintf(msg, sizeof(msg), "the server acknowledged our first smux frames, then answered "
                 "as a new session without sending one: its smux closed the session (kcptun does "
                 "so when --smuxver or --nocomp differ)");
    else if (timed_out)
        snprintf(msg, sizeof(msg), "the server's KCP answered but not one smux frame came "
                 "before the keepalive timeout: its smux refused the session (--smuxver or "
                 "--nocomp differ; a ktun server logs which)");
    else
        return;
    t->peer_refused = true;
    tunnel_log(t, msg);
    tunnel_kill(t, "the server refused our smux");
}

bool tunnel_explain_silence(const struct tunnel *t, uint64_t age_ms, char *buf, size_t cap)
{
    struct link_stats ls;
    link_get_stats(t->link, &ls);
    if (ls.kcp.in_segs > 0 || ls.out_pkts == 0)
        return false;
    unsigned s = (unsigned)(age_ms / 1000);
    unsigned long long out = (unsigned long long)ls.out_pkts, in = (unsigned long long)ls.in_pkts;
    if (ls.in_pkts == 0)
        snprintf(buf, cap, "nothing came back from the server in %u s (%llu datagrams sent): it is "
                 "down or not at this address and port, a firewall drops the UDP (or --tcp "
                 "differs), or it does not share --key and --crypt (kcptun drops such "
                 "datagrams silently; a ktun server logs which)", s, out);
    else if (ls.in_errs >= ls.in_pkts)
        snprintf(buf, cap, "the server answers, but none of its %llu datagrams opens here in %u s: "
                 "--key or --crypt differ", in, s);
    else
        snprintf(buf, cap, "the server answers, but its %llu datagrams carry no KCP segment of "
                 "this session in %u s: --datashard/--parityshard differ (FEC on one end only)",
                 in, s);
    return true;
}

bool tunnel_is_session_start(const uint8_t *payload, size_t len)
{
    size_t off = 0;
    if (fec_is_fec_packet(payload, len)) {
        if (rd_u16le(payload + 4) != FEC_TYPE_DATA)
            return false;
        off = FEC_HEADER_LEN;
    }
    if (len < off + KCP_OVERHEAD)
        return false;
    return payload[off + 4] == KCP_CMD_PUSH && rd_u32le(payload + off + 12) == 0;
}

int tunnel_send_refusal(uint32_t conv, const uint8_t *payload, size_t len,
                        const struct link_config *cfg, struct crypt *crypt,
                        tunnel_output_fn *out, void *user, uint64_t now_ms)
{
    static const uint8_t zeros[TUNNEL_REFUSAL_LEN];
    int err = ERR_NOMEM;
    struct link_config lc = *cfg;
    lc.pace = false; /* one segment: nothing to pace */
    struct link *l = link_new(conv, &lc, crypt, out, user, &err);
    if (!l)
        return err;
    link_input_payload(l, payload, len, now_ms); /* to acknowledge it */
    int rc = link_send(l, zeros, sizeof(zeros));
    if (rc == 0)
        link_flush(l, now_ms);
    link_free(l);
    return rc;
}

bool tunnel_peer_heard(const struct tunnel *t)
{
    if (t->heard || t->taken)
        return true;
    struct mux_stats ms;
    mux_get_stats(t->mux, &ms);
    return ms.frames_in > 0;
}

bool tunnel_peer_refused(const struct tunnel *t)
{
    return t->peer_refused;
}

bool tunnel_format(const struct tunnel *t, int *smuxver, bool *comp)
{
    *smuxver = mux_version(t->mux);
    *comp = t->enc != NULL;
    return *smuxver != MUX_VERSION_AUTO && !t->comp_pending;
}

bool tunnel_next_format(unsigned *step, int smuxver, bool nocomp, bool ver_set, bool comp_set,
                        int *ver_out, bool *nocomp_out)
{
    while (*step < 3) {
        (*step)++;
        bool flip_ver = *step != 2, flip_comp = *step != 1;
        if ((flip_ver && ver_set) || (flip_comp && comp_set))
            continue;
        *ver_out = flip_ver ? 3 - smuxver : smuxver;
        *nocomp_out = flip_comp ? !nocomp : nocomp;
        return true;
    }
    return false;
}

/* Client keeping copies (replay_on): a server whose smux refuses our format does so when it
 * reads our first frame, and its KCP session ends there: what we send after that is answered
 * by a fresh session (una 0) or not at all. So once its KCP acknowledges our first segment,
 * a segment first sent a KCP interval (its ACK delay) after that acknowledgement arrived can
 * only be acknowledged by a session whose smux read our first frame a round trip before and
 * kept it: the server took the session, as surely as if it had sent a smux frame. A server
 * that sends nothing (v1 smux, a silent target: an upload) is then known within two round
 * trips, not at its first keepalive, and the copies and their bound on writes end. A
 * una_reset (the fresh session's answer) stops the check: check_refused decides then. */
static void check_taken(struct tunnel *t, uint64_t now_ms)
{
    if (!replay_on(t) || t->bytes_sent == 0)
        return;
    struct link_stats ls;
    link_get_stats(t->link, &ls);
    if (ls.kcp.una_reset)
        return; /* a fresh session answered: check_refused's case */
    uint32_t una, nxt;
    link_snd_seq(t->link, &una, &nxt);
    if (t->take_step == 0) {
        if (una == 0)
            return;
        t->take_step = 1;
        t->take_ms = now_ms + t->take_wait_ms;
    }
    if (t->take_step == 1) {
        if (now_ms < t->take_ms)
            return;
        t->take_step = 2;
        t->take_sn = nxt; /* segments from here on leave from now */
        /* a NOP (what a keepalive sends) makes sure such a segment comes, even when the
         * streams have written up to the bound of their copies and wait */
        mux_ping(t->mux);
        return;
    }
    if ((int32_t)(una - t->take_sn) > 0)
        t->taken = true;
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
    if (!t->dead) {
        check_taken(t, now_ms);
        check_refused(t, false);
    }
    if (t->replays && !t->peer_refused && tunnel_peer_heard(t))
        replay_drop_all(t); /* the server spoke: its smux took the session */
    if (t->caps_news && !t->dead) {
        t->caps_news = false;
        if (t->cb.on_caps)
            t->cb.on_caps(t->user);
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
    if (mux_tick(t->mux, now_ms) != 0) {
        struct mux_stats ms;
        mux_get_stats(t->mux, &ms);
        if (ms.keepalive_timeouts)
            check_refused(t, true);
        tunnel_kill(t, "mux closed");
    }
    if (t->caps_state == CAPS_PENDING && now_ms >= t->offer_next_ms) {
        if (t->offer_tries >= TUNNEL_OFFER_TRIES && !kcp_heard(t)) {
            /* nothing came from the server at all, so silence says nothing about what it is
             * (it may not run yet): offer on at the longest wait, and count again once it is
             * heard */
            t->offer_unheard = true;
            t->offer_tries--;
            caps_offer(t, now_ms);
        } else if (t->offer_unheard) {
            t->offer_unheard = false;
            t->offer_tries = 0;
            caps_offer(t, now_ms);
        } else if (t->offer_tries < TUNNEL_OFFER_TRIES) {
            caps_offer(t, now_ms);
        } else {
            t->caps_state = CAPS_GAVE_UP;
            t->caps_news = true;
            hold_release(t);
            if (t->cb.log)
                t->cb.log(t->user, "no answer to the ktun capability offer: the server is "
                                   "kcptun or an older ktun; UDP forwards and forward targets "
                                   "need a ktun server");
        }
    }
}

uint64_t tunnel_next_deadline(const struct tunnel *t, uint64_t now_ms)
{
    uint64_t d = MIN(link_next_deadline(t->link, now_ms), mux_next_deadline(t->mux));
    if (t->take_step == 1 && replay_on(t))
        d = MIN(d, t->take_ms);
    return t->caps_state == CAPS_PENDING ? MIN(d, t->offer_next_ms) : d;
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
    out->dgram_out = t->dgram_out;
    out->dgram_in = t->dgram_in;
    out->dgram_recovered = t->dgram_recovered;
    out->dgram_dropped = t->dgram_dropped;
    out->dgram_toobig = t->dgram_toobig;
    link_get_stats(t->link, &out->link);
    mux_get_stats(t->mux, &out->mux);
}

int tunnel_ping(struct tunnel *t)
{
    return t->dead ? ERR_CLOSED : mux_ping(t->mux);
}

int tunnel_set_local(struct tunnel *t, const struct tunnel_config *cfg, uint64_t now_ms)
{
    return mux_set_local(t->mux, &cfg->mux, now_ms);
}

size_t tunnel_stream_count(const struct tunnel *t)
{
    return mux_stream_count(t->mux);
}

/* ---- streams ------------------------------------------------------------------------ */

int tunnel_stream_open(struct tunnel *t, uint32_t *sid)
{
    int rc = mux_stream_open(t->mux, sid);
    if (rc == 0 && replay_on(t))
        replay_keep(t, *sid, NULL, 0); /* a stream that has sent nothing opens again too */
    return rc;
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
    if (replay_on(t)) { /* the copy must hold what is written */
        const struct replay *r = *replay_find(t, sid);
        size_t used = r ? r->len : 0;
        room = MIN(room, t->replay_max - MIN(used, t->replay_max));
    }
    return MIN(room, mux_stream_writable(t->mux, sid));
}

/* Appends |data| to the copy of stream |sid|; a write it cannot hold (memory, or past the
 * bound) marks the copy lost. */
static void replay_keep(struct tunnel *t, uint32_t sid, const uint8_t *data, size_t len)
{
    struct replay **pp = replay_find(t, sid), *r = *pp;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return; /* no copy: the stream is not replayed */
        r->sid = sid;
        *pp = r;
    }
    if (r->lost || len == 0)
        return;
    if (len > t->replay_max - r->len) {
        r->lost = true;
        return;
    }
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len)
            cap *= 2;
        cap = MIN(cap, t->replay_max);
        uint8_t *d = realloc(r->data, cap);
        if (!d) {
            r->lost = true;
            return;
        }
        r->data = d;
        r->cap = cap;
    }
    memcpy(r->data + r->len, data, len);
    r->len += len;
}

ssize_t tunnel_stream_write(struct tunnel *t, uint32_t sid, const uint8_t *data, size_t len)
{
    bool keep = replay_on(t);
    if (!keep && t->replays && !t->peer_refused)
        replay_drop_all(t); /* the server spoke: its smux took the session */
    ssize_t w = mux_stream_write(t->mux, sid, data, len);
    if (keep && w > 0)
        replay_keep(t, sid, data, (size_t)w);
    return w;
}

bool tunnel_stream_replay(const struct tunnel *t, uint32_t sid, const uint8_t **data,
                          size_t *len)
{
    if (!t->peer_refused)
        return false;
    const struct replay *r = *replay_find(t, sid);
    if (!r || r->lost)
        return false;
    *data = r->data;
    *len = r->len;
    return true;
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
    if (!t->peer_refused) { /* after a refusal the copies wait for tunnel_stream_replay */
        struct replay **pp = replay_find(t, sid), *r = *pp;
        if (r) {
            *pp = r->next;
            free(r->data);
            free(r);
        }
    }
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
