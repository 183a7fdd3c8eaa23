/* SPDX-License-Identifier: MIT */
/* Pure smux 1.5.16 multiplexer: incremental frame parser, stream table, flow control, keepalive. */
#include "common/mux.h"

#include "common/err.h"
#include "common/util.h"
#include "common/wire.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/*
 * Receive buffers are lists of chunks. A PSH body is written straight into the stream's tail
 * chunk when it fits, else into a new chunk of max(len, MUX_CHUNK_MIN) bytes, so small frames
 * share memory and large ones are not copied twice. Bytes past |len| belong to the frame being
 * received and become readable only when the frame is complete (smux delivers whole frames).
 */
#define MUX_CHUNK_MIN 512u
#define MUX_HASH_MIN 16u

struct mux_chunk {
    struct mux_chunk *next; /* next chunk of the stream */
    uint32_t off;           /* first unread byte */
    uint32_t len;           /* end of committed data */
    uint32_t cap;           /* size of data[] */
    uint8_t data[];
};

struct mux_stream {
    struct mux_stream *hnext; /* hash chain */
    uint32_t sid;             /* stream id */
    bool fin_sent;            /* our FIN went out */
    bool fin_pending;         /* our FIN waits in the close-wait queue (writes refused) */
    bool fin_recv;            /* the peer's FIN arrived */
    bool want_write;          /* a v2 write was cut short by the window */
    struct mux_chunk *head;   /* oldest receive chunk */
    struct mux_chunk *tail;   /* newest receive chunk */
    size_t buffered;          /* committed unread payload bytes */
    uint32_t num_read;        /* v2: bytes read by the application (wraps) */
    uint32_t incr;            /* v2: bytes read since the last UPD */
    uint32_t num_written;     /* v2: payload bytes sent (wraps) */
    uint32_t peer_consumed;   /* v2: from the peer's last UPD */
    uint32_t peer_window;     /* v2: from the peer's last UPD, initially 262144 */
    struct qpp_stream qtx;    /* QPP: keystream of what we send */
    struct qpp_stream qrx;    /* QPP: keystream of what we receive */
};

enum mux_rx_state {
    MUX_RX_HEADER,  /* collecting the 8-byte header */
    MUX_RX_BODY,    /* copying a PSH body into a stream chunk */
    MUX_RX_DISCARD, /* skipping a PSH body for no (longer a) stream */
    MUX_RX_UPD,     /* collecting the 8-byte UPD payload */
    MUX_RX_STATE_COUNT
};

struct mux_rx {
    enum mux_rx_state state;   /* parser state */
    uint8_t hdr[MUX_HEADER_SIZE]; /* header bytes so far */
    uint8_t upd[MUX_UPD_SIZE]; /* UPD payload bytes so far */
    size_t got;                /* bytes collected in the current state */
    size_t want;               /* bytes the current state needs */
    struct mux_frame_hdr h;    /* parsed header */
    struct mux_stream *stream; /* BODY: target stream */
    struct mux_chunk *chunk;   /* BODY: target chunk (linked in the stream) */
};

/* A FIN held back by close_wait_ms (kcptun --closewait); outlives a released stream. */
struct mux_fin {
    struct mux_fin *next;      /* FIFO: due times ascend, as the delay is constant */
    uint32_t sid;              /* stream */
    uint64_t due_ms;           /* when it leaves */
    uint32_t written;          /* fin_hold_ms: the stream's num_written, all of it data */
    bool held;                 /* fin_hold_ms: leaves early once the peer read |written| */
};

struct mux {
    struct mux_config cfg;     /* validated copy */
    struct mux_callbacks cb;   /* copy */
    void *user;                /* callback argument */
    bool closed;               /* on_close was called */
    bool go_away;              /* stream ids exhausted */
    bool data_ready;           /* a header arrived since the last keepalive check */
    int close_err;             /* ERR_* mux_input reports once closed */
    uint32_t last_sid;         /* last allocated local stream id */
    int64_t bucket;            /* receive tokens (bytes); may go negative by one frame */
    struct mux_stream **table; /* hash table of live streams */
    size_t nbuckets;           /* power of two */
    size_t nstreams;           /* live streams */
    uint64_t next_ping_ms;     /* next NOP */
    uint64_t next_check_ms;    /* next keepalive timeout check */
    struct mux_rx rx;          /* parser */
    struct mux_stats st;       /* counters */
    uint8_t *txbuf;            /* header + max_frame_size payload */
    struct mux_fin *fin_head;  /* close-wait queue, oldest first */
    struct mux_fin *fin_tail;  /* newest */
    size_t fin_count;          /* entries */
    size_t fins_held;          /* entries that an UPD may release (held) */
};

int mux_frame_parse(const uint8_t *p, size_t len, struct mux_frame_hdr *h)
{
    if (len < MUX_HEADER_SIZE)
        return ERR_AGAIN;
    h->ver = p[0];
    h->cmd = p[1];
    h->len = rd_u16le(p + 2);
    h->sid = rd_u32le(p + 4);
    return 0;
}

uint8_t *mux_frame_put(uint8_t *p, const struct mux_frame_hdr *h)
{
    p = put_u8(p, h->ver);
    p = put_u8(p, h->cmd);
    p = put_u16le(p, h->len);
    return put_u32le(p, h->sid);
}

void mux_config_default(struct mux_config *cfg)
{
    cfg->version = 1;
    cfg->max_receive_buffer = 4194304;
    cfg->max_stream_buffer = 2097152;
    cfg->keepalive_interval_ms = 10000;
    cfg->keepalive_timeout_ms = 30000;
    cfg->max_frame_size = 32768;
    cfg->max_streams = 65536;
    cfg->close_wait_ms = 0;
    cfg->fin_hold_ms = 0;
    cfg->qpp = NULL;
}

int mux_config_validate(const struct mux_config *cfg)
{
    if (cfg->version != MUX_VERSION_AUTO && cfg->version != 1 && cfg->version != 2)
        return ERR_INVAL;
    if (cfg->max_frame_size == 0 || cfg->max_frame_size > MUX_MAX_PAYLOAD)
        return ERR_INVAL;
    if (cfg->max_receive_buffer == 0 || cfg->max_receive_buffer > INT32_MAX)
        return ERR_INVAL;
    if (cfg->max_stream_buffer == 0 || cfg->max_stream_buffer > cfg->max_receive_buffer)
        return ERR_INVAL;
    if (cfg->keepalive_interval_ms && cfg->keepalive_timeout_ms < cfg->keepalive_interval_ms)
        return ERR_INVAL;
    return 0;
}

/* ---- session death and frame output ---- */

static void mux_fail(struct mux *m, int err, const char *reason)
{
    if (m->closed)
        return;
    m->closed = true;
    m->close_err = err;
    if (m->cb.on_close)
        m->cb.on_close(m->user, reason);
}

/* Sends one frame; |payload| may be NULL when |len| is 0. With |q| (a QPP keystream) the
 * payload is encrypted on its way out. Returns 0 or ERR_CLOSED. */
static int send_frame_q(struct mux *m, uint8_t cmd, uint32_t sid, const uint8_t *payload,
                        size_t len, struct qpp_stream *q)
{
    if (m->closed)
        return ERR_CLOSED;
    if (m->cfg.version == MUX_VERSION_AUTO)
        m->cfg.version = 1; /* we speak first: kcptun's default decides */
    struct mux_frame_hdr h = {(uint8_t)m->cfg.version, cmd, (uint16_t)len, sid};
    uint8_t *p = mux_frame_put(m->txbuf, &h);
    if (len)
        memcpy(p, payload, len);
    if (q && len)
        qpp_encrypt(m->cfg.qpp, q, p, len);
    m->st.frames_out++;
    if (m->cb.output(m->user, m->txbuf, MUX_HEADER_SIZE + len) < 0) {
        mux_fail(m, ERR_CLOSED, "output failed");
        return ERR_CLOSED;
    }
    return 0;
}

static int send_frame(struct mux *m, uint8_t cmd, uint32_t sid, const uint8_t *payload,
                      size_t len)
{
    return send_frame_q(m, cmd, sid, payload, len, NULL);
}

static int send_upd(struct mux *m, uint32_t sid, uint32_t consumed)
{
    uint8_t b[MUX_UPD_SIZE];
    put_u32le(put_u32le(b, consumed), m->cfg.max_stream_buffer);
    m->st.upd_out++;
    return send_frame(m, MUX_CMD_UPD, sid, b, sizeof(b));
}

/* ---- stream table ---- */

static size_t hash_sid(uint32_t sid, size_t nbuckets)
{
    return (size_t)((sid * 2654435761u) >> 7) & (nbuckets - 1);
}

static struct mux_stream *stream_find(const struct mux *m, uint32_t sid)
{
    struct mux_stream *s = m->table[hash_sid(sid, m->nbuckets)];
    while (s && s->sid != sid)
        s = s->hnext;
    return s;
}

/* Doubles the table when it is full on average; failure to grow only lengthens the chains. */
static void table_grow(struct mux *m)
{
    size_t n = m->nbuckets * 2;
    struct mux_stream **t = calloc(n, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct mux_stream *s = m->table[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            size_t b = hash_sid(s->sid, n);
            s->hnext = t[b];
            t[b] = s;
        }
    }
    free(m->table);
    m->table = t;
    m->nbuckets = n;
}

static struct mux_stream *stream_add(struct mux *m, uint32_t sid)
{
    struct mux_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sid = sid;
    s->peer_window = MUX_INITIAL_PEER_WINDOW;
    if (m->cfg.qpp) {
        qpp_stream_init(m->cfg.qpp, &s->qtx);
        qpp_stream_init(m->cfg.qpp, &s->qrx);
    }
    if (m->nstreams >= m->nbuckets)
        table_grow(m);
    size_t b = hash_sid(sid, m->nbuckets);
    s->hnext = m->table[b];
    m->table[b] = s;
    m->nstreams++;
    return s;
}

static void chunk_free(struct mux *m, struct mux_chunk *c)
{
    m->st.rx_alloc -= sizeof(*c) + c->cap;
    free(c);
}

/* Unlinks and frees |s|, returning its unread bytes to the bucket. */
static void stream_remove(struct mux *m, struct mux_stream *s)
{
    struct mux_stream **pp = &m->table[hash_sid(s->sid, m->nbuckets)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    m->nstreams--;
    if (m->rx.stream == s) {
        /* The frame being received loses its target: skip the rest of its body. */
        m->rx.stream = NULL;
        m->rx.chunk = NULL;
        m->rx.state = MUX_RX_DISCARD;
        m->st.dropped_frames++;
        m->st.dropped_bytes += m->rx.got;
    }
    m->bucket += (int64_t)s->buffered;
    m->st.rx_buffered -= s->buffered;
    struct mux_chunk *c = s->head, *next;
    for (; c; c = next) {
        next = c->next;
        chunk_free(m, c);
    }
    free(s);
}

static bool is_live(const struct mux *m, const struct mux_stream *s)
{
    return s && !m->closed;
}

/* ---- session ---- */

static void rx_reset(struct mux *m)
{
    m->rx.state = MUX_RX_HEADER;
    m->rx.got = 0;
    m->rx.want = MUX_HEADER_SIZE;
    m->rx.stream = NULL;
    m->rx.chunk = NULL;
}

struct mux *mux_new(const struct mux_config *cfg, bool is_client, const struct mux_callbacks *cb,
                    void *user, uint64_t now_ms)
{
    struct mux *m = NULL;
    if (!cfg || !cb || !cb->output || mux_config_validate(cfg) != 0)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->cfg = *cfg;
    m->cb = *cb;
    m->user = user;
    m->last_sid = is_client ? 1 : 0;
    m->bucket = cfg->max_receive_buffer;
    m->nbuckets = MUX_HASH_MIN;
    m->table = calloc(m->nbuckets, sizeof(*m->table));
    m->txbuf = malloc(MUX_HEADER_SIZE + cfg->max_frame_size);
    if (!m->table || !m->txbuf)
        goto out;
    m->next_ping_ms = now_ms + cfg->keepalive_interval_ms;
    m->next_check_ms = now_ms + cfg->keepalive_timeout_ms;
    rx_reset(m);
    return m;
out:
    mux_free(m);
    return NULL;
}

void mux_free(struct mux *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->table && i < m->nbuckets; i++) {
        while (m->table[i])
            stream_remove(m, m->table[i]);
    }
    free(m->table);
    free(m->txbuf);
    while (m->fin_head) {
        struct mux_fin *f = m->fin_head;
        m->fin_head = f->next;
        free(f);
    }
    free(m);
}

bool mux_is_closed(const struct mux *m)
{
    return m->closed;
}

bool mux_input_blocked(const struct mux *m)
{
    return m->bucket <= 0;
}

void mux_get_stats(const struct mux *m, struct mux_stats *st)
{
    *st = m->st;
}

size_t mux_stream_count(const struct mux *m)
{
    return m->nstreams;
}

void mux_debug_set_last_sid(struct mux *m, uint32_t last)
{
    m->last_sid = last;
}

/* ---- receive path ---- */

static void emit(struct mux *m, mux_stream_event_fn *fn, uint32_t sid)
{
    if (fn && !m->closed)
        fn(m->user, sid);
}

static void on_syn(struct mux *m, uint32_t sid)
{
    if (stream_find(m, sid)) {
        m->st.dropped_frames++; /* duplicate SYN: smux ignores it */
        return;
    }
    struct mux_stream *s = NULL;
    if (!m->cfg.max_streams || m->nstreams < m->cfg.max_streams)
        s = stream_add(m, sid);
    if (!s) {
        /* Refuse with FIN: the peer sees end of stream at once (a kcptun peer closes it). */
        m->st.streams_refused++;
        send_frame(m, MUX_CMD_FIN, sid, NULL, 0);
        return;
    }
    m->st.streams_accepted++;
    emit(m, m->cb.on_stream_open, sid);
}

static void on_fin(struct mux *m, uint32_t sid)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!s || s->fin_recv) {
        m->st.dropped_frames++;
        return;
    }
    s->fin_recv = true;
    emit(m, m->cb.on_stream_fin, sid);
}

/* Picks where the PSH body of |len| bytes for |s| goes; false on allocation failure. */
static bool rx_target(struct mux *m, struct mux_stream *s, uint32_t len)
{
    struct mux_chunk *c = s->tail;
    if (!c || c->cap - c->len < len) {
        uint32_t cap = MAX(len, MUX_CHUNK_MIN);
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return false;
        c->next = NULL;
        c->off = c->len = 0;
        c->cap = cap;
        if (s->tail)
            s->tail->next = c;
        else
            s->head = c;
        s->tail = c;
        m->st.rx_alloc += sizeof(*c) + cap;
        m->st.rx_alloc_peak = MAX(m->st.rx_alloc_peak, m->st.rx_alloc);
    }
    m->rx.stream = s;
    m->rx.chunk = c;
    return true;
}

static void on_psh(struct mux *m, uint32_t sid, uint16_t len)
{
    if (len == 0)
        return; /* smux reads nothing and does nothing */
    struct mux_stream *s = stream_find(m, sid);
    m->rx.got = 0;
    m->rx.want = len;
    if (s && rx_target(m, s, len)) {
        m->rx.state = MUX_RX_BODY;
        return;
    }
    /* Unknown stream (or no memory for the body): read and discard, as smux does. */
    m->st.dropped_frames++;
    m->rx.state = MUX_RX_DISCARD;
}

/* Acts on a complete header. */
static void on_header(struct mux *m, uint64_t now_ms)
{
    struct mux_frame_hdr *h = &m->rx.h;
    mux_frame_parse(m->rx.hdr, MUX_HEADER_SIZE, h);
    m->st.frames_in++;
    m->st.last_rx_ms = now_ms;
    m->data_ready = true;
    rx_reset(m);
    if (m->cfg.version == MUX_VERSION_AUTO && (h->ver == 1 || h->ver == 2))
        m->cfg.version = h->ver; /* the peer's first frame decides */
    if (h->ver != m->cfg.version) {
        m->st.bad_version = h->ver;
        m->st.protocol_errors++;
        mux_fail(m, ERR_PROTO, "invalid protocol version");
        return;
    }
    switch (h->cmd) {
    case MUX_CMD_NOP: m->st.nop_in++; break;
    case MUX_CMD_SYN: on_syn(m, h->sid); break;
    case MUX_CMD_FIN: on_fin(m, h->sid); break;
    case MUX_CMD_PSH: on_psh(m, h->sid, h->len); break;
    case MUX_CMD_UPD:
        /* smux 1.5.16 always reads 8 bytes, whatever the length field says. */
        m->rx.state = MUX_RX_UPD;
        m->rx.want = MUX_UPD_SIZE;
        break;
    default:
        m->st.protocol_errors++;
        mux_fail(m, ERR_PROTO, "unknown command");
        break;
    }
}

static void fin_queue_release(struct mux *m, uint32_t sid, uint32_t consumed);

static void on_upd(struct mux *m)
{
    uint32_t sid = m->rx.h.sid;
    struct mux_stream *s = stream_find(m, sid);
    rx_reset(m);
    if (!s && m->cfg.version == 2 && m->fins_held) {
        fin_queue_release(m, sid, rd_u32le(m->rx.upd)); /* a stream released with FIN held */
        return;
    }
    if (!s || m->cfg.version != 2) {
        m->st.dropped_frames++; /* v1 streams have no window: nothing to update */
        return;
    }
    m->st.upd_in++;
    if (s->fin_pending && m->fins_held)
        fin_queue_release(m, sid, rd_u32le(m->rx.upd));
    s->peer_consumed = rd_u32le(m->rx.upd);
    s->peer_window = rd_u32le(m->rx.upd + 4);
    if (s->want_write && !s->fin_sent && mux_stream_writable(m, sid) > 0) {
        s->want_write = false;
        emit(m, m->cb.on_stream_writable, sid);
    }
}

/* A PSH body is complete: make it readable and charge the bucket. */
static void on_body_done(struct mux *m)
{
    struct mux_stream *s = m->rx.stream;
    uint32_t len = (uint32_t)m->rx.want;
    if (m->cfg.qpp)
        qpp_decrypt(m->cfg.qpp, &s->qrx, m->rx.chunk->data + m->rx.chunk->len, len);
    m->rx.chunk->len += len;
    s->buffered += len;
    m->bucket -= len;
    m->st.bytes_in += len;
    m->st.rx_buffered += len;
    m->st.rx_buffered_peak = MAX(m->st.rx_buffered_peak, m->st.rx_buffered);
    uint32_t sid = s->sid;
    rx_reset(m);
    emit(m, m->cb.on_stream_readable, sid);
}

/* Consumes bytes for the current state from |p|..|end|; returns how many. */
static size_t rx_step(struct mux *m, const uint8_t *p, size_t avail, uint64_t now_ms)
{
    struct mux_rx *rx = &m->rx;
    size_t n = MIN(avail, rx->want - rx->got);
    switch (rx->state) {
    case MUX_RX_HEADER:
        memcpy(rx->hdr + rx->got, p, n);
        rx->got += n;
        if (rx->got == rx->want)
            on_header(m, now_ms);
        break;
    case MUX_RX_BODY:
        memcpy(rx->chunk->data + rx->chunk->len + rx->got, p, n);
        rx->got += n;
        if (rx->got == rx->want)
            on_body_done(m);
        break;
    case MUX_RX_DISCARD:
        rx->got += n;
        m->st.dropped_bytes += n;
        if (rx->got == rx->want)
            rx_reset(m);
        break;
    case MUX_RX_UPD:
        memcpy(rx->upd + rx->got, p, n);
        rx->got += n;
        if (rx->got == rx->want)
            on_upd(m);
        break;
    default:
        break;
    }
    return n;
}

ssize_t mux_input(struct mux *m, const uint8_t *data, size_t len, uint64_t now_ms)
{
    if (m->closed)
        return ERR_CLOSED;
    size_t pos = 0;
    while (pos < len) {
        /* Like smux's receive loop: no new frame is started while the bucket is empty. */
        if (m->rx.state == MUX_RX_HEADER && m->rx.got == 0 && m->bucket <= 0) {
            m->st.input_stalls++;
            break;
        }
        pos += rx_step(m, data + pos, len - pos, now_ms);
        if (m->closed)
            return m->close_err;
    }
    if (pos == 0 && len > 0)
        return ERR_AGAIN;
    return (ssize_t)pos;
}

/* ---- keepalive ---- */

uint64_t mux_next_deadline(const struct mux *m)
{
    if (m->closed)
        return UINT64_MAX;
    uint64_t t = m->fin_head ? m->fin_head->due_ms : UINT64_MAX;
    if (m->cfg.keepalive_interval_ms == 0)
        return t;
    return MIN(t, MIN(m->next_ping_ms, m->next_check_ms));
}

/* Sends the held-back FINs that are due. */
static void fin_queue_run(struct mux *m, uint64_t now_ms)
{
    while (m->fin_head && m->fin_head->due_ms <= now_ms && !m->closed) {
        struct mux_fin *f = m->fin_head;
        m->fin_head = f->next;
        if (!m->fin_head)
            m->fin_tail = NULL;
        m->fin_count--;
        m->fins_held -= f->held;
        struct mux_stream *s = stream_find(m, f->sid);
        if (s) {
            s->fin_pending = false;
            s->fin_sent = true;
        }
        send_frame(m, MUX_CMD_FIN, f->sid, NULL, 0); /* also for a stream released meanwhile */
        free(f);
    }
}

/* Takes stream |sid|'s entry out of the close-wait queue (its FIN is about to leave now). */
static void fin_queue_remove(struct mux *m, uint32_t sid)
{
    struct mux_fin *prev = NULL;
    for (struct mux_fin *f = m->fin_head; f; prev = f, f = f->next) {
        if (f->sid != sid)
            continue;
        if (prev)
            prev->next = f->next;
        else
            m->fin_head = f->next;
        if (m->fin_tail == f)
            m->fin_tail = prev;
        m->fin_count--;
        m->fins_held -= f->held;
        free(f);
        return;
    }
}

/* The peer's UPD says it has read |consumed| bytes of |sid|: a FIN held by fin_hold_ms leaves
 * now if that is everything we wrote (the peer has nothing unread for a FIN to destroy). */
static void fin_queue_release(struct mux *m, uint32_t sid, uint32_t consumed)
{
    for (struct mux_fin *f = m->fin_head; f; f = f->next) {
        if (f->sid != sid)
            continue;
        if (!f->held || f->written != consumed)
            return;
        struct mux_stream *s = stream_find(m, sid);
        if (s) {
            s->fin_pending = false;
            s->fin_sent = true;
        }
        fin_queue_remove(m, sid);
        m->st.fins_released++;
        send_frame(m, MUX_CMD_FIN, sid, NULL, 0); /* also for a stream released meanwhile */
        return;
    }
}

/* Moves |*at| past |now_ms| in whole |period| steps (a late tick fires once, like a Go ticker). */
static void advance(uint64_t *at, uint64_t period, uint64_t now_ms)
{
    *at += period;
    if (*at <= now_ms)
        *at += ((now_ms - *at) / period + 1) * period;
}

int mux_tick(struct mux *m, uint64_t now_ms)
{
    if (m->closed)
        return ERR_CLOSED;
    fin_queue_run(m, now_ms);
    if (m->closed || m->cfg.keepalive_interval_ms == 0)
        return m->closed ? ERR_CLOSED : 0;
    if (now_ms >= m->next_ping_ms) {
        advance(&m->next_ping_ms, m->cfg.keepalive_interval_ms, now_ms);
        if (m->cfg.version != MUX_VERSION_AUTO) { /* no NOP in a version the peer may refuse */
            m->st.nop_out++;
            send_frame(m, MUX_CMD_NOP, 0, NULL, 0);
        }
    }
    if (!m->closed && now_ms >= m->next_check_ms) {
        advance(&m->next_check_ms, m->cfg.keepalive_timeout_ms, now_ms);
        /* A receiver stopped by an empty bucket hears nothing, yet the peer is alive. */
        if (!m->data_ready && m->bucket > 0) {
            m->st.keepalive_timeouts++;
            mux_fail(m, ERR_CLOSED, "keepalive timeout");
        }
        m->data_ready = false;
    }
    return m->closed ? ERR_CLOSED : 0;
}

int mux_ping(struct mux *m)
{
    if (m->closed)
        return ERR_CLOSED;
    if (m->cfg.version == MUX_VERSION_AUTO)
        return 0; /* no NOP in a version the peer may refuse */
    m->st.nop_out++;
    send_frame(m, MUX_CMD_NOP, 0, NULL, 0);
    return m->closed ? ERR_CLOSED : 0;
}

int mux_set_local(struct mux *m, const struct mux_config *cfg, uint64_t now_ms)
{
    if (cfg->keepalive_interval_ms && cfg->keepalive_timeout_ms < cfg->keepalive_interval_ms)
        return ERR_INVAL;
    if (cfg->keepalive_interval_ms != m->cfg.keepalive_interval_ms ||
        cfg->keepalive_timeout_ms != m->cfg.keepalive_timeout_ms) {
        m->cfg.keepalive_interval_ms = cfg->keepalive_interval_ms;
        m->cfg.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
        m->next_ping_ms = now_ms + cfg->keepalive_interval_ms;
        m->next_check_ms = now_ms + cfg->keepalive_timeout_ms;
        m->data_ready = false;
    }
    m->cfg.max_streams = cfg->max_streams;
    m->cfg.close_wait_ms = cfg->close_wait_ms;
    m->cfg.fin_hold_ms = cfg->fin_hold_ms;
    return 0;
}

int mux_version(const struct mux *m)
{
    return m->cfg.version;
}

/* ---- streams ---- */

int mux_stream_open(struct mux *m, uint32_t *sid)
{
    if (m->closed)
        return ERR_CLOSED;
    if (m->go_away || (m->cfg.max_streams && m->nstreams >= m->cfg.max_streams))
        return ERR_LIMIT;
    uint32_t id = m->last_sid;
    do {
        id += 2;
        if (id < 2) { /* wrapped: like smux, no more streams on this session */
            m->go_away = true;
            return ERR_LIMIT;
        }
    } while (stream_find(m, id));
    struct mux_stream *s = stream_add(m, id);
    if (!s)
        return ERR_NOMEM;
    m->last_sid = id;
    m->st.streams_opened++;
    *sid = id;
    return send_frame(m, MUX_CMD_SYN, id, NULL, 0);
}

/* Frees fully read chunks at the head of |s|, keeping the one a frame is being written into. */
static void stream_trim(struct mux *m, struct mux_stream *s)
{
    while (s->head && s->head->off == s->head->len && s->head != m->rx.chunk) {
        struct mux_chunk *c = s->head;
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        chunk_free(m, c);
    }
}

static void after_read(struct mux *m, struct mux_stream *s, uint32_t n)
{
    m->bucket += n;
    m->st.rx_buffered -= n;
    s->buffered -= n;
    if (m->cfg.version != 2 || m->closed)
        return;
    /* smux tryReadv2: UPD after the first read and each max_stream_buffer/2 bytes read; and,
     * once our FIN is out or due, whenever a read empties the stream, so that a peer holding
     * its FIN until we have read everything (fin_hold_ms) can send it. */
    s->num_read += n;
    s->incr += n;
    if (s->incr >= m->cfg.max_stream_buffer / 2 || s->num_read == n ||
        ((s->fin_sent || s->fin_pending) && s->buffered == 0)) {
        uint32_t consumed = s->num_read;
        s->incr = 0;
        if (consumed > 0)
            send_upd(m, s->sid, consumed);
    }
}

/* Our FIN is leaving or due: reads not yet reported in an UPD are reported now if they emptied
 * the stream. A reader that drained everything before its FIN would otherwise never send the
 * UPD that a peer holding its own FIN (fin_hold_ms) waits for: no later read empties anything. */
static void report_drained(struct mux *m, struct mux_stream *s)
{
    if (m->cfg.version != 2 || m->closed || s->incr == 0 || s->buffered != 0)
        return;
    s->incr = 0;
    send_upd(m, s->sid, s->num_read);
}

ssize_t mux_stream_read(struct mux *m, uint32_t sid, uint8_t *buf, size_t cap)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!s)
        return ERR_CLOSED;
    if (cap == 0)
        return ERR_INVAL;
    size_t n = 0;
    for (struct mux_chunk *c = s->head; c && n < cap; c = c->next) {
        size_t k = MIN(cap - n, (size_t)(c->len - c->off));
        memcpy(buf + n, c->data + c->off, k);
        c->off += (uint32_t)k;
        n += k;
    }
    stream_trim(m, s);
    if (n > 0) {
        after_read(m, s, (uint32_t)n);
        return (ssize_t)n;
    }
    if (s->fin_recv)
        return 0;
    return m->closed ? ERR_CLOSED : ERR_AGAIN;
}

/* v2 room left in the peer's window for |s|: -1 if the peer consumed more than we sent. */
static int64_t stream_window(const struct mux_stream *s)
{
    int32_t inflight = (int32_t)(s->num_written - s->peer_consumed);
    if (inflight < 0)
        return -1;
    int64_t win = (int64_t)(int32_t)s->peer_window - inflight;
    return win > 0 ? win : 0;
}

size_t mux_stream_writable(const struct mux *m, uint32_t sid)
{
    const struct mux_stream *s = stream_find(m, sid);
    if (!is_live(m, s) || s->fin_sent || s->fin_pending)
        return 0;
    if (m->cfg.version != 2)
        return SIZE_MAX;
    int64_t win = stream_window(s);
    return win > 0 ? (size_t)win : 0;
}

ssize_t mux_stream_write(struct mux *m, uint32_t sid, const uint8_t *data, size_t len)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!is_live(m, s) || s->fin_sent || s->fin_pending)
        return ERR_CLOSED;
    if (len == 0)
        return 0;
    size_t take = len;
    if (m->cfg.version == 2) {
        int64_t win = stream_window(s);
        if (win < 0)
            return ERR_PROTO;
        if ((uint64_t)win < len) {
            take = (size_t)win;
            s->want_write = true;
        }
        if (take == 0)
            return ERR_AGAIN;
    }
    size_t off = 0;
    while (off < take) {
        size_t sz = MIN(take - off, (size_t)m->cfg.max_frame_size);
        if (send_frame_q(m, MUX_CMD_PSH, sid, data + off, sz, m->cfg.qpp ? &s->qtx : NULL) < 0)
            break;
        s->num_written += (uint32_t)sz;
        m->st.bytes_out += sz;
        off += sz;
    }
    return off ? (ssize_t)off : ERR_CLOSED;
}

int mux_stream_close(struct mux *m, uint32_t sid)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!is_live(m, s))
        return ERR_CLOSED;
    if (s->fin_sent)
        return 0;
    if (s->fin_pending) {
        fin_queue_remove(m, sid);
        s->fin_pending = false;
    }
    s->fin_sent = true;
    report_drained(m, s);
    return send_frame(m, MUX_CMD_FIN, sid, NULL, 0);
}

int mux_stream_close_wait(struct mux *m, uint32_t sid, uint64_t now_ms)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!is_live(m, s))
        return ERR_CLOSED;
    if (s->fin_sent || s->fin_pending)
        return 0;
    size_t cap = m->cfg.max_streams ? m->cfg.max_streams : 65536;
    struct mux_fin *f = NULL;
    uint32_t wait = m->cfg.close_wait_ms;
    bool held = false;
    if (!wait && m->cfg.version == 2 && s->fin_recv && s->peer_consumed != s->num_written) {
        wait = m->cfg.fin_hold_ms; /* the peer half-closed first and has data to read */
        held = true;
    }
    if (wait && m->fin_count < cap)
        f = malloc(sizeof(*f));
    if (!f)
        return mux_stream_close(m, sid); /* no delay asked for, or no room to hold it */
    *f = (struct mux_fin){NULL, sid, now_ms + wait, s->num_written, held};
    m->fins_held += held;
    if (m->fin_tail)
        m->fin_tail->next = f;
    else
        m->fin_head = f;
    m->fin_tail = f;
    m->fin_count++;
    s->fin_pending = true;
    m->st.fins_delayed++;
    report_drained(m, s);
    return 0;
}

int mux_stream_release(struct mux *m, uint32_t sid)
{
    struct mux_stream *s = stream_find(m, sid);
    if (!s)
        return ERR_CLOSED;
    bool need_fin = !s->fin_sent && !s->fin_pending && !m->closed; /* a pending FIN stays due */
    stream_remove(m, s);
    m->st.streams_closed++;
    if (need_fin)
        send_frame(m, MUX_CMD_FIN, sid, NULL, 0);
    return 0;
}

size_t mux_stream_buffered(const struct mux *m, uint32_t sid)
{
    const struct mux_stream *s = stream_find(m, sid);
    return s ? s->buffered : 0;
}

bool mux_stream_exists(const struct mux *m, uint32_t sid)
{
    return stream_find(m, sid) != NULL;
}
