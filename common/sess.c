/* SPDX-License-Identifier: MIT */
/* libev shell: one KCP session (UDP + link + comp + mux + timer) and its TCP-backed streams. */
#include "common/sess.h"

#include "common/comp.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/crypt.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Bytes of headroom kept in the link's send queue for control frames and compression. */
#define SESS_FRAME_OVERHEAD (MUX_HEADER_SIZE + COMP_IDENT_LEN + COMP_CHUNK_HDR_LEN + COMP_CRC_LEN)
/* A TCP read is worth doing only with at least this much room. */
#define SESS_MIN_ROOM 2048

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        LOG_ERROR("shell: out of memory (%zu bytes)", n * size);
        abort();
    }
    return p;
}

void sess_params_from_config(const struct config *cfg, struct sess_params *p)
{
    memset(p, 0, sizeof(*p));
    link_config_default(&p->link);
    p->link.data_shards = cfg->datashard;
    p->link.parity_shards = cfg->parityshard;
    p->link.mtu = (size_t)cfg->mtu;
    p->link.sndwnd = cfg->sndwnd;
    p->link.rcvwnd = cfg->rcvwnd;
    p->link.nodelay = cfg->nodelay;
    p->link.interval_ms = cfg->interval_ms;
    p->link.resend = cfg->resend;
    p->link.nc = cfg->nc;
    p->link.ack_nodelay = cfg->acknodelay;
    p->link.pace = !cfg->nopace;
    p->link.no_fec_hold = cfg->nofechold;
    p->link.message_mode = false;
    p->link.wall_offset_ms = loop_wall_offset_ms(); /* refreshed on every session timer */
    p->link.log = log_core_debug;
    p->link.log_user = (void *)"link";
    mux_config_default(&p->mux);
    p->mux.version = cfg->smuxver;
    p->mux.max_receive_buffer = (uint32_t)cfg->smuxbuf;
    p->mux.max_stream_buffer = (uint32_t)cfg->streambuf;
    p->mux.keepalive_interval_ms = (uint32_t)cfg->keepalive_s * 1000;
    p->mux.max_streams = cfg->maxstreams > 0 ? (uint32_t)cfg->maxstreams : 0;
    p->nocomp = cfg->nocomp;
    p->sockbuf = cfg->sockbuf;
    p->dscp = cfg->dscp;
    p->quiet = cfg->quiet;
    p->bufbudget = cfg->bufbudget;
}

/* ---- datagram batching ---------------------------------------------------------------- */

void shell_flush_dgrams(struct shell *sh)
{
    if (sh->sb.n == 0)
        return;
    int dropped = net_sbatch_flush(sh->sb_udp, &sh->sb);
    (void)dropped; /* a refused datagram is a datagram lost on the wire: KCP resends it */
    sh->sb_udp = NULL;
}

/* Runs before the loop waits for events: whatever the callbacks of this iteration queued
 * leaves now, so no datagram waits for an unrelated event. */
static void flush_prepare_cb(EV_P_ ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    shell_flush_dgrams(container_of(w, struct shell, flush_prepare));
}

void shell_send_dgram(struct shell *sh, struct net_udp *u, const uint8_t *p, size_t len,
                      const struct net_addr *to)
{
    if (sh->sb.n && sh->sb_udp != u)
        shell_flush_dgrams(sh);
    sh->sb_udp = u;
    if (net_sbatch_add(u, &sh->sb, p, len, to) != 0)
        return;
    sh->base.v[SNMP_OUT_PKTS]++;
    sh->base.v[SNMP_OUT_BYTES] += len;
}

struct crypt *shell_crypt_new(const struct config *cfg, enum crypt_role role,
                              struct crypt_rng **rng)
{
    const char *who = role == CRYPT_ROLE_CLIENT ? "client" : "server";
    int cerr = 0;
    *rng = NULL;
    if (crypt_lib_init() != 0 || sodium_init() < 0 || !(*rng = crypt_rng_new())) {
        LOG_ERROR("%s: cannot initialise the crypto libraries", who);
        return NULL;
    }
    struct crypt *c = crypt_new(cfg->crypt, cfg->key, crypt_rng_fill, *rng, &cerr);
    if (!c) {
        char msg[256];
        crypt_error(cfg->crypt, cerr, msg, sizeof(msg));
        LOG_ERROR("%s: --crypt: %s", who, msg);
        crypt_rng_free(*rng);
        *rng = NULL;
        return NULL;
    }
    crypt_set_role(c, role);
    crypt_set_start(c, (uint64_t)(ev_time() * 1e3));
    return c;
}

/* ---- counters ------------------------------------------------------------------------- */

static void link_to_snmp(const struct link *l, struct snmp *o)
{
    struct link_stats ls;
    link_get_stats(l, &ls);
    o->v[SNMP_KCP_IN_ERRORS] += ls.kcp.in_errors;
    o->v[SNMP_IN_SEGS] += ls.kcp.in_segs;
    o->v[SNMP_OUT_SEGS] += ls.kcp.out_segs;
    o->v[SNMP_RETRANS_SEGS] += ls.kcp.retrans_segs;
    o->v[SNMP_FAST_RETRANS_SEGS] += ls.kcp.fast_retrans_segs;
    o->v[SNMP_EARLY_RETRANS_SEGS] += ls.kcp.early_retrans_segs;
    o->v[SNMP_LOST_SEGS] += ls.kcp.lost_segs;
    o->v[SNMP_REPEAT_SEGS] += ls.kcp.repeat_segs;
    o->v[SNMP_FEC_PARITY_SHARDS] += ls.fec.parity_shards;
    o->v[SNMP_FEC_ERRS] += ls.fec.errs;
    o->v[SNMP_FEC_RECOVERED] += ls.fec.recovered;
    o->v[SNMP_FEC_SHORT_SHARDS] += ls.fec.short_shards;
}

void shell_snmp(const struct shell *sh, struct snmp *out)
{
    *out = sh->base;
    for (const struct sess *s = sh->sessions; s; s = s->next)
        link_to_snmp(s->link, out);
    const struct crypt_stats *cs = crypt_get_stats(sh->crypt);
    out->v[SNMP_IN_CSUM_ERRORS] = cs->in_csum_errors + cs->in_auth_errors;
    out->v[SNMP_CURR_ESTAB] = sh->nsess;
}

/* ---- streams -------------------------------------------------------------------------- */

static void stream_rio_cb(EV_P_ ev_io *w, int revents);
static void stream_linger_cb(EV_P_ ev_timer *w, int revents);
static void stream_wio_cb(EV_P_ ev_io *w, int revents);

static struct stream *stream_new(struct sess *s, uint32_t sid, int fd)
{
    struct stream *st = xcalloc(1, sizeof(*st));
    if (ring_init(&st->out, SESS_STREAM_RING) != 0) {
        free(st);
        return NULL;
    }
    st->s = s;
    st->sid = sid;
    st->fd = fd;
    ev_io_init(&st->rio, stream_rio_cb, fd, EV_READ);
    ev_io_init(&st->wio, stream_wio_cb, fd, EV_WRITE);
    ev_timer_init(&st->linger, stream_linger_cb, SESS_CLOSE_WAIT_S, 0.0);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    return st;
}

/* Frees the stream: watchers, socket, mux stream (FIN unless sent), ring. */
static void stream_free(struct stream *st, const char *why)
{
    struct sess *s = st->s;
    struct ev_loop *loop = s->sh->loop;
    ev_io_stop(EV_A_ &st->rio);
    ev_io_stop(EV_A_ &st->wio);
    ev_timer_stop(EV_A_ &st->linger);
    close(st->fd);
    mux_stream_release(s->mux, st->sid);
    ring_release(&st->out);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u closed (%s) on %s", st->sid, why, s->name);
    free(st);
}

/* Bytes a stream may hand to mux now without growing the link's send queue past its room. */
static size_t sess_send_room(const struct sess *s)
{
    if (mux_is_closed(s->mux))
        return 0;
    size_t room = link_send_room(s->link);
    return room > SESS_FRAME_OVERHEAD * 4 ? room - SESS_FRAME_OVERHEAD * 4 : 0;
}

/* Bytes stream |st| may read from TCP now: 0 while the link is nearly full or the v2 stream
 * window is closed. */
static size_t stream_room(const struct stream *st)
{
    const struct sess *s = st->s;
    size_t room = sess_send_room(s);
    if (room < SESS_MIN_ROOM)
        return 0;
    room = MIN(room, (size_t)SESS_TCP_CHUNK);
    return MIN(room, mux_stream_writable(s->mux, st->sid));
}

/* Reads from TCP and writes to mux, up to SESS_TCP_READS chunks while the socket has more;
 * pauses the reader when the link is full. Returns false if the stream was freed. */
static bool stream_pull_tcp(struct stream *st)
{
    struct sess *s = st->s;
    struct shell *sh = s->sh;
    for (int i = 0; i < SESS_TCP_READS; i++) {
        size_t room = stream_room(st);
        if (room == 0) {
            ev_io_stop(sh->loop, &st->rio);
            st->rd_paused = true;
            return true;
        }
        ssize_t n = read(st->fd, sh->scratch, room);
        if (n > 0) {
            ssize_t w = mux_stream_write(s->mux, st->sid, sh->scratch, (size_t)n);
            if (w != n) {
                /* room was checked, so only a dead session or stream gets here */
                stream_free(st, "mux write failed");
                return false;
            }
            if ((size_t)n < room)
                return true; /* the socket is drained */
            continue;
        }
        if (n == 0) {
            ev_io_stop(sh->loop, &st->rio);
            st->rd_eof = true;
            ev_timer_start(sh->loop, &st->linger);
            mux_stream_close(s->mux, st->sid);
            return true;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return true;
        stream_free(st, strerror(errno));
        return false;
    }
    return true;
}

/* Moves stream data from mux to TCP until either side blocks. Returns false if freed. */
static bool stream_push_tcp(struct stream *st)
{
    struct sess *s = st->s;
    struct ev_loop *loop = s->sh->loop;
    if (st->connecting)
        return true;
    for (;;) {
        bool progress = false;
        struct iovec iov[2];
        if (!st->peer_eof && ring_room(&st->out) > 0) {
            /* fill the ring (both spans), so that one writev moves as much as it can */
            int k = ring_room_iov(&st->out, iov);
            for (int j = 0; j < k; j++) {
                ssize_t r = mux_stream_read(s->mux, st->sid, iov[j].iov_base, iov[j].iov_len);
                if (r > 0) {
                    ring_produce(&st->out, (size_t)r);
                    progress = true;
                    if ((size_t)r < iov[j].iov_len)
                        break;
                    continue;
                }
                if (r == 0 || r == ERR_CLOSED) {
                    st->peer_eof = true;
                    ev_timer_start(EV_A_ &st->linger);
                }
                break;
            }
        }
        if (ring_len(&st->out) > 0) {
            int k = ring_data_iov(&st->out, iov);
            ssize_t w = writev(st->fd, iov, k);
            if (w > 0) {
                ring_consume(&st->out, (size_t)w);
                progress = true;
            } else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                ev_io_start(EV_A_ &st->wio);
                return true;
            } else if (w == -1 && errno != EINTR) {
                stream_free(st, strerror(errno));
                return false;
            }
        }
        if (!progress)
            break;
    }
    if (ring_len(&st->out) == 0)
        ev_io_stop(EV_A_ &st->wio);
    if (st->peer_eof && ring_len(&st->out) == 0 && !st->wr_shut) {
        shutdown(st->fd, SHUT_WR);
        st->wr_shut = true;
    }
    if (st->wr_shut && st->rd_eof) {
        stream_free(st, "done");
        return false;
    }
    return true;
}

/* One direction ended SESS_CLOSE_WAIT_S ago and the other is still open: close both. */
static void stream_linger_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct stream *st = container_of(w, struct stream, linger);
    struct sess *s = st->s;
    stream_free(st, "close-wait expired");
    sess_pump(s);
}

static void stream_rio_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct stream *st = container_of(w, struct stream, rio);
    struct sess *s = st->s;
    if (stream_pull_tcp(st) && st->rd_eof)
        stream_push_tcp(st); /* may finish the stream */
    sess_pump(s);
}

static void stream_wio_cb(EV_P_ ev_io *w, int revents)
{
    (void)revents;
    struct stream *st = container_of(w, struct stream, wio);
    struct sess *s = st->s;
    if (st->connecting) {
        int e = net_sock_error(st->fd);
        if (e != 0) {
            LOG_WARN("stream: %u target connect failed: %s", st->sid, strerror(e));
            stream_free(st, "target refused");
            sess_pump(s);
            return;
        }
        st->connecting = false;
        ev_io_stop(EV_A_ w);
        ev_io_start(EV_A_ &st->rio);
    }
    stream_push_tcp(st);
    sess_pump(s);
}

int stream_open_local(struct sess *s, int fd)
{
    uint32_t sid;
    int rc = mux_stream_open(s->mux, &sid);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    struct stream *st = stream_new(s, sid, fd);
    if (!st) {
        mux_stream_release(s->mux, sid);
        close(fd);
        return ERR_NOMEM;
    }
    ev_io_start(s->sh->loop, &st->rio);
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u opened on %s", sid, s->name);
    sess_pump(s);
    return 0;
}

int stream_attach(struct sess *s, uint32_t sid, int fd, bool connecting)
{
    struct stream *st = stream_new(s, sid, fd);
    if (!st) {
        mux_stream_release(s->mux, sid);
        close(fd);
        return ERR_NOMEM;
    }
    st->connecting = connecting;
    if (connecting)
        ev_io_start(s->sh->loop, &st->wio);
    else
        ev_io_start(s->sh->loop, &st->rio);
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u accepted on %s", sid, s->name);
    return 0;
}

/* ---- mux callbacks -------------------------------------------------------------------- */

/* Hands framed bytes to KCP (it queues everything; callers respect link_send_room). */
static int sess_link_write(struct sess *s, const uint8_t *p, size_t len)
{
    int rc = link_send(s->link, p, len);
    if (rc == 0)
        s->sh->base.v[SNMP_BYTES_SENT] += len;
    return rc;
}

static int comp_out_cb(void *user, const uint8_t *p, size_t len)
{
    return sess_link_write(user, p, len);
}

static int mux_out_cb(void *user, const uint8_t *frame, size_t len)
{
    struct sess *s = user;
    if (!s->enc)
        return sess_link_write(s, frame, len);
    ssize_t n = comp_encode(s->enc, frame, len, comp_out_cb, s);
    return n < 0 ? (int)n : 0;
}

static void mux_open_cb(void *user, uint32_t sid)
{
    struct sess *s = user;
    if (s->sh->hooks.stream_accept)
        s->sh->hooks.stream_accept(s->sh, s, sid);
    else
        mux_stream_release(s->mux, sid); /* the client accepts no streams (kcptun neither) */
}

static void mux_close_cb(void *user, const char *reason)
{
    struct sess *s = user;
    s->dead = true;
    s->dead_reason = reason;
}

/* ---- session -------------------------------------------------------------------------- */

static void link_out_cb(void *user, const uint8_t *dgram, size_t len)
{
    struct sess *s = user;
    shell_send_dgram(s->sh, s->udp, dgram, len, &s->peer);
}

static void sess_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct sess *s = container_of(w, struct sess, timer);
    uint64_t now = loop_now_ms(EV_A);
    link_set_wall_offset(s->link, loop_wall_offset_ms());
    link_tick(s->link, now);
    if (mux_tick(s->mux, now) != 0 && !s->dead) {
        s->dead = true;
        s->dead_reason = "mux closed";
    }
    if (sess_pump(s))
        shell_flush_dgrams(s->sh);
}

static void sess_udp_cb(EV_P_ ev_io *w, int revents)
{
    (void)revents;
    struct sess *s = container_of(w, struct sess, udp_io);
    struct shell *sh = s->sh;
    (void)loop;
    for (int b = 0; b < SESS_RX_BATCHES; b++) {
        int n = net_recv_batch(s->udp, &sh->rb);
        if (n <= 0)
            break;
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(&sh->rb, &p, &len, &from)) {
            sh->base.v[SNMP_IN_PKTS]++;
            sh->base.v[SNMP_IN_BYTES] += len;
            if (!s->peer_locked) {
                s->peer = *from;
                s->peer_locked = true;
            } else if (!net_addr_equal(&s->peer, from)) {
                sh->base.v[SNMP_IN_ERRS]++;
                continue;
            }
            sess_input_raw(s, p, len);
        }
        if (!sess_pump(s))
            break;
        if (n < sh->rb.slots)
            break;
    }
    shell_flush_dgrams(sh);
}

struct sess *sess_new(struct shell *sh, struct net_udp *udp, bool own_fd,
                      const struct net_addr *peer, uint32_t conv)
{
    struct ev_loop *loop = sh->loop;
    uint64_t now = loop_now_ms(EV_A);
    struct sess *s = xcalloc(1, sizeof(*s));
    char as[NET_ADDR_STRLEN];
    s->sh = sh;
    s->own_fd = own_fd;
    if (own_fd) {
        s->own_udp = *udp;
        s->udp = &s->own_udp;
    } else {
        s->udp = udp;
    }
    s->peer = *peer;
    s->peer_locked = !own_fd;
    s->conv = conv;
    s->slot = -1;
    s->created_ms = now;
    snprintf(s->name, sizeof(s->name), "conv %u peer %s", conv,
             net_addr_str(peer, as, sizeof(as)));
    s->rx = xcalloc(1, SESS_RX_BUF);
    int lerr = 0;
    s->link = link_new(conv, &sh->params.link, sh->crypt, link_out_cb, s, &lerr);
    if (s->link)
        link_set_wall_offset(s->link, loop_wall_offset_ms());
    struct mux_callbacks cb = {
        .output = mux_out_cb,
        .on_stream_open = mux_open_cb,
        .on_close = mux_close_cb,
    };
    s->mux = mux_new(&sh->params.mux, sh->is_client, &cb, s, now);
    if (!sh->params.nocomp) {
        s->enc = comp_encoder_new();
        s->dec = comp_decoder_new();
    }
    if (!s->link || !s->mux || (!sh->params.nocomp && (!s->enc || !s->dec))) {
        LOG_ERROR("sess: cannot create %s: %s", s->name, err_str(lerr));
        link_free(s->link);
        mux_free(s->mux);
        comp_encoder_free(s->enc);
        comp_decoder_free(s->dec);
        free(s->rx);
        free(s);
        if (own_fd)
            net_udp_close(udp);
        return NULL;
    }
    ev_init(&s->timer, sess_timer_cb);
    if (own_fd) {
        ev_io_init(&s->udp_io, sess_udp_cb, s->udp->fd, EV_READ);
        ev_io_start(EV_A_ &s->udp_io);
    }
    s->next = sh->sessions;
    if (sh->sessions)
        sh->sessions->prev = s;
    sh->sessions = s;
    sh->nsess++;
    sh->base.v[sh->is_client ? SNMP_ACTIVE_OPENS : SNMP_PASSIVE_OPENS]++;
    sh->base.v[SNMP_MAX_CONN] = MAX(sh->base.v[SNMP_MAX_CONN], (uint64_t)sh->nsess);
    LOG_INFO("sess: opened %s", s->name);
    return s;
}

void sess_input_raw(struct sess *s, uint8_t *dgram, size_t len)
{
    link_input(s->link, dgram, len, loop_now_ms(s->sh->loop));
}

void sess_input_payload(struct sess *s, const uint8_t *payload, size_t len)
{
    link_input_payload(s->link, payload, len, loop_now_ms(s->sh->loop));
}

/* Marks the session dead with |reason| unless it already has one. */
static void sess_fail(struct sess *s, const char *reason)
{
    s->dead = true;
    if (!s->dead_reason)
        s->dead_reason = reason;
}

/* Offers |len| bytes to mux. Returns how many it took (0 when its receive budget is spent),
 * or -1 after marking the session dead. */
static ssize_t sess_feed_mux(struct sess *s, const uint8_t *p, size_t len, uint64_t now)
{
    ssize_t r = mux_input(s->mux, p, len, now);
    if (r == ERR_AGAIN)
        return 0;
    if (r < 0) {
        sess_fail(s, "mux input failed");
        return -1;
    }
    return r;
}

/* True while the streams of all sessions hold --bufbudget bytes or more. */
static bool shell_over_budget(const struct shell *sh)
{
    return sh->bufbudget > 0 && sh->rx_total >= (uint64_t)sh->bufbudget;
}

/* Brings the process-wide count of buffered stream bytes up to date for |s|. */
static void sess_account(struct sess *s)
{
    struct mux_stats st;
    mux_get_stats(s->mux, &st);
    s->sh->rx_total = s->sh->rx_total - s->rx_counted + st.rx_buffered;
    s->rx_counted = st.rx_buffered;
}

/* Once the budget has room again, wakes the sessions that stopped reading for it (through
 * their timers: a pump may not run inside another). */
static void shell_wake_stalled(struct shell *sh)
{
    if (sh->nstalled == 0 || shell_over_budget(sh))
        return;
    for (struct sess *s = sh->sessions; s; s = s->next) {
        if (!s->budget_stalled)
            continue;
        s->budget_stalled = false;
        ev_timer_stop(sh->loop, &s->timer);
        ev_timer_set(&s->timer, 0.0, 0.0);
        ev_timer_start(sh->loop, &s->timer);
    }
    sh->nstalled = 0;
}

/* Feeds bytes from KCP through the decoder into mux until one of them blocks. Returns true
 * if it stopped because mux would take no more (its receive budget is spent). */
static bool sess_rx(struct sess *s)
{
    uint64_t now = loop_now_ms(s->sh->loop);
    while (!s->dead) {
        const uint8_t *d = s->rx + s->rx_off;
        size_t n = s->rx_len;
        if (s->dec && (n = comp_decoder_peek(s->dec, &d)) == 0 && s->rx_len) {
            ssize_t r = comp_decoder_input(s->dec, s->rx + s->rx_off, s->rx_len);
            if (r < 0 && r != ERR_AGAIN) {
                LOG_WARN("sess: %s: compressed stream corrupt: %s", s->name,
                         comp_fault_str(comp_decoder_fault(s->dec)));
                sess_fail(s, "decompression failed");
                return false;
            }
            if (r <= 0)
                return false; /* cannot happen with no decoded bytes pending */
            s->rx_off += (size_t)r;
            s->rx_len -= (size_t)r;
            continue;
        }
        if (n) {
            if (shell_over_budget(s->sh)) {
                if (!s->budget_stalled)
                    s->sh->nstalled++;
                s->budget_stalled = true;
                return false;
            }
            ssize_t r = sess_feed_mux(s, d, n, now);
            if (r <= 0)
                return r == 0;
            if (s->dec) {
                comp_decoder_consume(s->dec, (size_t)r);
            } else {
                s->rx_off += (size_t)r;
                s->rx_len -= (size_t)r;
            }
            if ((size_t)r < n)
                return true;
            continue;
        }
        ssize_t r = link_recv(s->link, s->rx, SESS_RX_BUF);
        if (r <= 0)
            return false;
        s->sh->base.v[SNMP_BYTES_RECEIVED] += (uint64_t)r;
        s->rx_off = 0;
        s->rx_len = (size_t)r;
    }
    return false;
}

static void sess_arm_timer(struct sess *s)
{
    struct ev_loop *loop = s->sh->loop;
    uint64_t now = loop_now_ms(EV_A);
    uint64_t d = MIN(link_next_deadline(s->link, now), mux_next_deadline(s->mux));
    ev_timer_stop(EV_A_ &s->timer);
    if (d == UINT64_MAX)
        return;
    double after = d > now ? (double)(d - now) / 1e3 : 0.0;
    ev_timer_set(&s->timer, after, 0.0);
    ev_timer_start(EV_A_ &s->timer);
}

/* Says in the log, at most once per 10 s, that the peer opened more streams than
 * --maxstreams allows (mux refused them with a FIN). */
static void sess_log_refused(struct sess *s, uint64_t now)
{
    struct mux_stats ms;
    mux_get_stats(s->mux, &ms);
    if (ms.streams_refused == s->refused_logged ||
        (s->refused_log_ms && now - s->refused_log_ms < 10000))
        return;
    LOG_WARN("sess: %s: --maxstreams %u reached: refused %llu stream(s) opened by the peer",
             s->name, s->sh->params.mux.max_streams,
             (unsigned long long)(ms.streams_refused - s->refused_logged));
    s->refused_logged = ms.streams_refused;
    s->refused_log_ms = now;
}

bool sess_pump(struct sess *s)
{
    if (s->in_pump)
        return true;
    s->in_pump = true;
    for (int round = 0; round < 4 && !s->dead; round++) {
        bool stalled = sess_rx(s);
        for (struct stream *st = s->streams, *nx; st; st = nx) {
            nx = st->next;
            stream_push_tcp(st);
        }
        /* reading streams may have freed mux budget: go round again only then */
        if (!stalled || s->budget_stalled || mux_input_blocked(s->mux))
            break;
    }
    if (!s->dead && sess_send_room(s) >= SESS_MIN_ROOM) {
        for (struct stream *st = s->streams; st; st = st->next) {
            if (st->rd_paused && !st->rd_eof && !st->connecting && stream_room(st) > 0) {
                st->rd_paused = false;
                ev_io_start(s->sh->loop, &st->rio);
            }
        }
    }
    link_flush(s->link, loop_now_ms(s->sh->loop));
    sess_account(s);
    sess_log_refused(s, loop_now_ms(s->sh->loop));
    s->in_pump = false;
    if (s->dead) {
        sess_close(s, s->dead_reason ? s->dead_reason : "closed");
        return false;
    }
    sess_arm_timer(s);
    shell_wake_stalled(s->sh);
    return true;
}

void sess_close(struct sess *s, const char *reason)
{
    struct shell *sh = s->sh;
    struct ev_loop *loop = sh->loop;
    LOG_INFO("sess: closed %s (%s), %zu streams", s->name, reason, s->nstreams);
    while (s->streams)
        stream_free(s->streams, "session closed");
    if (sh->hooks.sess_gone)
        sh->hooks.sess_gone(sh, s);
    ev_timer_stop(EV_A_ &s->timer);
    if (s->own_fd) {
        ev_io_stop(EV_A_ &s->udp_io);
        if (sh->sb_udp == s->udp)
            shell_flush_dgrams(sh);
        net_udp_close(s->udp);
    }
    sh->rx_total -= s->rx_counted;
    if (s->budget_stalled)
        sh->nstalled--;
    link_to_snmp(s->link, &sh->base);
    link_free(s->link);
    mux_free(s->mux);
    comp_encoder_free(s->enc);
    comp_decoder_free(s->dec);
    free(s->rx);
    if (s->prev)
        s->prev->next = s->next;
    else
        sh->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sh->nsess--;
    free(s);
}

/* ---- process -------------------------------------------------------------------------- */

static void shell_log_snmp(const struct shell *sh)
{
    struct snmp snap;
    char line[LOG_LINE_MAX];
    shell_snmp(sh, &snap);
    LOG_INFO("snmp: %s", snmp_format_line(&snap, line, sizeof(line)));
}

static void sig_stop_cb(EV_P_ ev_signal *w, int revents)
{
    (void)revents;
    struct shell *sh = w->signum == SIGINT ? container_of(w, struct shell, sig_int)
                                           : container_of(w, struct shell, sig_term);
    LOG_INFO("shell: signal %d, shutting down", w->signum);
    sh->stopping = true;
    ev_break(EV_A_ EVBREAK_ALL);
}

static void sig_hup_cb(EV_P_ ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    char err[256];
    if (log_reopen(err, sizeof(err)) != 0)
        LOG_WARN("shell: cannot reopen the log: %s", err);
}

static void sig_usr1_cb(EV_P_ ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    shell_log_snmp(container_of(w, struct shell, sig_usr1));
}

static void snmp_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct shell *sh = container_of(w, struct shell, snmp_timer);
    struct snmp snap;
    shell_snmp(sh, &snap);
    if (snmp_append_csv(sh->snmplog, time(NULL), &snap) != 0)
        LOG_WARN("snmp: cannot append to %s: %s", sh->snmplog, strerror(errno));
}

int shell_init(struct shell *sh, struct ev_loop *loop, const struct sess_params *params,
               bool is_client, struct crypt *crypt, const struct shell_hooks *hooks,
               const char *snmplog, int snmpperiod)
{
    memset(sh, 0, offsetof(struct shell, sb));
    sh->sb.n = 0;
    sh->loop = loop;
    sh->params = *params;
    sh->is_client = is_client;
    sh->crypt = crypt;
    sh->hooks = *hooks;
    sh->sb_udp = NULL;
    sh->snmplog = snmplog && snmplog[0] ? snmplog : NULL;
    sh->snmpperiod = snmpperiod;
    sh->bufbudget = params->bufbudget;
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&sh->sig_int, sig_stop_cb, SIGINT);
    ev_signal_init(&sh->sig_term, sig_stop_cb, SIGTERM);
    ev_signal_init(&sh->sig_usr1, sig_usr1_cb, SIGUSR1);
    ev_signal_init(&sh->sig_hup, sig_hup_cb, SIGHUP);
    ev_signal_start(EV_A_ &sh->sig_hup);
    ev_signal_start(EV_A_ &sh->sig_int);
    ev_signal_start(EV_A_ &sh->sig_term);
    ev_signal_start(EV_A_ &sh->sig_usr1);
    ev_prepare_init(&sh->flush_prepare, flush_prepare_cb);
    ev_prepare_start(EV_A_ &sh->flush_prepare);
    ev_init(&sh->snmp_timer, snmp_timer_cb);
    if (sh->snmplog && snmpperiod > 0) {
        ev_timer_set(&sh->snmp_timer, snmpperiod, snmpperiod);
        ev_timer_start(EV_A_ &sh->snmp_timer);
    }
    return 0;
}

void shell_run(struct shell *sh)
{
    struct ev_loop *loop = sh->loop;
    ev_run(EV_A_ 0);
    if (sh->hooks.shutdown)
        sh->hooks.shutdown(sh);
    while (sh->sessions)
        sess_close(sh->sessions, "shutdown");
    shell_flush_dgrams(sh);
    shell_log_snmp(sh);
    ev_signal_stop(EV_A_ &sh->sig_int);
    ev_signal_stop(EV_A_ &sh->sig_term);
    ev_signal_stop(EV_A_ &sh->sig_usr1);
    ev_signal_stop(EV_A_ &sh->sig_hup);
    ev_timer_stop(EV_A_ &sh->snmp_timer);
    ev_prepare_stop(EV_A_ &sh->flush_prepare);
    net_rbatch_free(&sh->rb);
}
