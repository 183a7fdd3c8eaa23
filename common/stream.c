/* SPDX-License-Identifier: MIT */
/* libev shell: the TCP side of one stream (see stream.h). */
#include "common/stream.h"

#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/resolve.h"
#include "common/sess.h"
#include "common/socks5.h"
#include "common/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void stream_rio_cb(EV_P_ ev_io *w, int revents);
static void stream_linger_cb(EV_P_ ev_timer *w, int revents);
static void stream_wio_cb(EV_P_ ev_io *w, int revents);

static struct stream *stream_new(struct sess *s, uint32_t sid, int fd)
{
    struct stream *st = calloc(1, sizeof(*st));
    if (!st || ring_init(&st->out, STREAM_RING) != 0) {
        free(st);
        return NULL;
    }
    st->s = s;
    st->sid = sid;
    st->fd = fd;
    ev_io_init(&st->rio, stream_rio_cb, fd, EV_READ);
    ev_io_init(&st->wio, stream_wio_cb, fd, EV_WRITE);
    ev_timer_init(&st->linger, stream_linger_cb, STREAM_CLOSE_WAIT_S, 0.0);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    return st;
}

/* Opens a mux stream, writes |len| bytes of |data| to it first (none for 0), and wraps |fd|
 * for it in |*out|. On failure the mux stream is released, |fd| closed, and an ERR_* (or the
 * failed write's result) returned. */
static int stream_open_fd(struct sess *s, int fd, const uint8_t *data, size_t len,
                          struct stream **out)
{
    uint32_t sid;
    int rc = tunnel_stream_open(s->tun, &sid);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    ssize_t w = len ? tunnel_stream_write(s->tun, sid, data, len) : 0;
    *out = (size_t)w == len ? stream_new(s, sid, fd) : NULL;
    if (!*out) {
        tunnel_stream_release(s->tun, sid);
        close(fd);
        return w < 0 ? (int)w : ERR_NOMEM;
    }
    return 0;
}

void stream_free(struct stream *st, const char *why)
{
    struct sess *s = st->s;
    struct ev_loop *loop = s->sh->loop;
    ev_io_stop(EV_A_ &st->rio);
    ev_io_stop(EV_A_ &st->wio);
    ev_timer_stop(EV_A_ &st->linger);
    if (st->fd >= 0)
        close(st->fd);
    if (!st->wait)
        tunnel_stream_release(s->tun, st->sid);
    free(st->wait);
    resolver_free(st->res);
    free(st->role_data);
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

/* Bytes stream |st| may read from TCP now. */
static size_t stream_room(const struct stream *st)
{
    return tunnel_stream_room(st->s->tun, st->sid, SHELL_TCP_CHUNK);
}

void stream_resume(struct stream *st)
{
    if (st->rd_paused && !st->rd_eof && !st->connecting && stream_room(st) > 0) {
        st->rd_paused = false;
        ev_io_start(st->s->sh->loop, &st->rio);
    }
}

/* TCP EOF: FIN to the peer (after --closewait), and the other direction gets the close-wait
 * delay on top of it. */
static void stream_read_eof(struct stream *st)
{
    struct ev_loop *loop = st->s->sh->loop;
    ev_io_stop(EV_A_ &st->rio);
    st->rd_eof = true;
    double fin_wait = st->s->sh->params.tun.mux.close_wait_ms / 1e3;
    ev_timer_stop(EV_A_ &st->linger); /* may run already for the peer's FIN: restart it */
    ev_timer_set(&st->linger, STREAM_CLOSE_WAIT_S + fin_wait, 0.0);
    ev_timer_start(EV_A_ &st->linger);
    tunnel_stream_close_wait(st->s->tun, st->sid, shell_now_ms());
}

/* Reads from TCP and writes to the tunnel, up to STREAM_TCP_READS chunks while the socket has
 * more; pauses the reader when the link is full. Returns false if the stream was freed. */
static bool stream_pull_tcp(struct stream *st)
{
    struct sess *s = st->s;
    struct shell *sh = s->sh;
    for (int i = 0; i < STREAM_TCP_READS; i++) {
        size_t room = stream_room(st);
        if (room == 0) {
            ev_io_stop(sh->loop, &st->rio);
            st->rd_paused = true;
            return true;
        }
        ssize_t n = read(st->fd, sh->scratch, room);
        if (n > 0) {
            ssize_t w = tunnel_stream_write(s->tun, st->sid, sh->scratch, (size_t)n);
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
            stream_read_eof(st);
            return true;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return true;
        stream_free(st, strerror(errno));
        return false;
    }
    return true;
}

/* Fills the ring (both spans) from the tunnel, so that one writev moves as much as it can.
 * Returns true if bytes came. */
static bool stream_fill_ring(struct stream *st)
{
    struct iovec iov[2];
    bool progress = false;
    int k = ring_room_iov(&st->out, iov);
    for (int j = 0; j < k; j++) {
        ssize_t r = tunnel_stream_read(st->s->tun, st->sid, iov[j].iov_base, iov[j].iov_len);
        if (r > 0) {
            ring_produce(&st->out, (size_t)r);
            progress = true;
            if ((size_t)r < iov[j].iov_len)
                break;
            continue;
        }
        if (r == 0 || r == ERR_CLOSED) {
            st->peer_eof = true;
            ev_timer_start(st->s->sh->loop, &st->linger);
        }
        break;
    }
    return progress;
}

/* Writes the ring to TCP. Returns 1 on progress, 0 without, -1 when the socket would block
 * (writability watched), -2 after freeing the stream on an error. */
static int stream_write_ring(struct stream *st)
{
    struct iovec iov[2];
    int k = ring_data_iov(&st->out, iov);
    ssize_t w = writev(st->fd, iov, k);
    if (w > 0) {
        ring_consume(&st->out, (size_t)w);
        return 1;
    }
    if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ev_io_start(st->s->sh->loop, &st->wio);
        return -1;
    }
    if (w == -1 && errno != EINTR) {
        stream_free(st, strerror(errno));
        return -2;
    }
    return 0;
}

/* ---- target headers between ktun ends (docs/forwards.md) ------------------------------ */

/* Copies up to |cap| bytes from the start of the ring without taking them. */
static size_t ring_peek(const struct ring *r, uint8_t *out, size_t cap)
{
    struct iovec iov[2];
    int k = ring_data_iov(r, iov);
    size_t n = 0;
    for (int j = 0; j < k && n < cap; j++) {
        size_t m = MIN(iov[j].iov_len, cap - n);
        memcpy(out + n, iov[j].iov_base, m);
        n += m;
    }
    return n;
}

/* Server: sends the reply header with |status| on the stream. */
static void stream_reply(struct stream *st, uint8_t status)
{
    uint8_t r[FWD_REPLY_LEN];
    fwd_reply_encode(status, r);
    tunnel_stream_write(st->s->tun, st->sid, r, sizeof(r));
}

/* The reply status for a failed connect's errno |e|. */
static uint8_t stream_connect_status(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return FWD_REFUSED;
    case ENETUNREACH:
        return FWD_NET_UNREACH;
    case EHOSTUNREACH:
        return FWD_HOST_UNREACH;
    case ETIMEDOUT:
        return FWD_TIMEOUT;
    default:
        return FWD_FAIL;
    }
}

/* Frees the stream with a TCP reset towards the local application (a refused forward). */
static void stream_reset(struct stream *st, const char *why)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (st->fd >= 0)
        setsockopt(st->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    stream_free(st, why);
}

/* Server: the decision on the stream's target: a socket connecting to it, or minus a status
 * to refuse it with. Returns false if the stream was freed. */
static bool stream_target_go(struct stream *st, int fd)
{
    if (fd < 0) {
        stream_reply(st, (uint8_t)-fd);
        stream_free(st, fwd_status_str(-fd));
        return false;
    }
    st->fd = fd;
    st->connecting = true;
    st->fwd = STREAM_FWD_CONNECT;
    ev_io_set(&st->rio, fd, EV_READ);
    ev_io_set(&st->wio, fd, EV_WRITE);
    ev_io_start(st->s->sh->loop, &st->wio);
    return true;
}

/* Server, STREAM_FWD_HEADER: reads the target header and lets the role decide. Returns false
 * if the stream was freed. */
static bool stream_take_header(struct stream *st)
{
    struct sess *s = st->s;
    struct shell *sh = s->sh;
    if (!st->peer_eof && ring_room(&st->out) > 0)
        stream_fill_ring(st);
    uint8_t hdr[FWD_REQ_MAX];
    struct fwd_target t;
    int rc = fwd_request_decode(hdr, ring_peek(&st->out, hdr, sizeof(hdr)), &t);
    if (rc == ERR_AGAIN && !st->peer_eof)
        return true;
    if (rc < 0) {
        LOG_WARN("stream: %u on %s: %s target header: closed", st->sid, s->name,
                 rc == ERR_AGAIN ? "no" : "malformed");
        stream_reply(st, FWD_FAIL);
        stream_free(st, "bad target header");
        return false;
    }
    ring_consume(&st->out, (size_t)rc);
    int fd = sh->hooks.stream_target(sh, s, st, &t);
    if (fd == STREAM_TARGET_WAIT) {
        st->fwd = STREAM_FWD_RESOLVE;
        return true;
    }
    return stream_target_go(st, fd);
}

void stream_target_done(struct stream *st, int fd)
{
    struct sess *s = st->s;
    resolver_free(st->res);
    st->res = NULL;
    stream_target_go(st, fd);
    sess_pump(s);
}

/* Client, STREAM_FWD_REPLY: takes the server's reply from the ring. Returns 1 once it was
 * taken (the stream goes on), 0 while it is incomplete, -1 if the stream was freed. */
static int stream_take_reply(struct stream *st)
{
    uint8_t r[FWD_REPLY_LEN], sr[SOCKS5_REPLY_MAX];
    int status = fwd_reply_decode(r, ring_peek(&st->out, r, sizeof(r)));
    if (status == ERR_AGAIN && !st->peer_eof)
        return 0;
    if (status == FWD_OK) {
        ring_consume(&st->out, FWD_REPLY_LEN);
        st->fwd = STREAM_FWD_NONE;
        if (st->socks) {
            size_t n = socks5_reply_encode(FWD_OK, NULL, sr);
            if (write(st->fd, sr, n) != (ssize_t)n) {
                stream_reset(st, "SOCKS5 client gone");
                return -1;
            }
        }
        return 1;
    }
    if (status < 0)
        status = FWD_FAIL; /* no reply, or not ours: the server is not what we took it for */
    if (!st->s->sh->params.quiet)
        LOG_STREAM("stream: %u on %s refused by the server: %s", st->sid, st->s->name,
                   fwd_status_str(status));
    if (st->socks) {
        size_t n = socks5_reply_encode((uint8_t)status, NULL, sr);
        if (write(st->fd, sr, n) != (ssize_t)n) { /* closing anyway */
        }
        stream_free(st, "refused");
    } else {
        stream_reset(st, "refused");
    }
    return -1;
}

bool stream_push_tcp(struct stream *st)
{
    struct ev_loop *loop = st->s->sh->loop;
    if (st->fwd == STREAM_FWD_HEADER)
        return stream_take_header(st);
    if (st->fwd == STREAM_FWD_WAIT || st->fwd == STREAM_FWD_RESOLVE)
        return true;
    if (st->connecting)
        return true;
    for (;;) {
        bool progress = false;
        if (!st->peer_eof && ring_room(&st->out) > 0)
            progress = stream_fill_ring(st);
        if (st->fwd == STREAM_FWD_REPLY) {
            int rc = stream_take_reply(st);
            if (rc <= 0)
                return rc == 0;
        }
        if (ring_len(&st->out) > 0) {
            int rc = stream_write_ring(st);
            if (rc < 0)
                return rc == -1;
            progress |= rc > 0;
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

/* One direction ended STREAM_CLOSE_WAIT_S ago and the other is still open: close both. */
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
            if (st->fwd == STREAM_FWD_CONNECT)
                stream_reply(st, stream_connect_status(e));
            stream_free(st, "target refused");
            sess_pump(s);
            return;
        }
        st->connecting = false;
        if (st->fwd == STREAM_FWD_CONNECT) {
            stream_reply(st, FWD_OK);
            st->fwd = STREAM_FWD_NONE;
        }
        ev_io_stop(EV_A_ w);
        ev_io_start(EV_A_ &st->rio);
    }
    stream_push_tcp(st);
    sess_pump(s);
}

static int stream_open_plain(struct sess *s, int fd);

/* Refuses a connection with a target: the server is not ktun. */
static void stream_refuse_local(struct sess *s, int fd, bool socks)
{
    static struct log_limit not_ktun_log;
    if (log_limit_pass(&not_ktun_log, shell_now_ms(), LOG_REPEAT_MS))
        LOG_WARN("client: %s: a -L or -D connection closed: forwards with a target need a ktun "
                 "server (the server did not answer the capability offer)", s->name);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (socks) {
        uint8_t r[SOCKS5_REPLY_MAX];
        size_t n = socks5_reply_encode(FWD_FAIL, NULL, r);
        if (write(fd, r, n) != (ssize_t)n) { /* closing anyway */
        }
    } else {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
}

/* A connection that waits for the capability exchange of |s| (no tunnel stream yet). */
static int stream_wait(struct sess *s, int fd, const struct fwd_target *t, bool socks,
                       const uint8_t *early, size_t early_len)
{
    struct stream *st = stream_new(s, 0, fd);
    struct stream_wait *w = calloc(1, sizeof(*w));
    if (!st || !w || early_len > sizeof(w->early)) {
        free(w);
        if (st) {
            st->wait = NULL;
            stream_free(st, "out of memory");
        } else {
            close(fd);
        }
        return ERR_NOMEM;
    }
    st->wait = w;
    st->fwd = STREAM_FWD_WAIT;
    st->socks = socks;
    w->has_target = t != NULL;
    if (t)
        w->target = *t;
    if (early_len)
        memcpy(w->early, early, early_len);
    w->early_len = early_len;
    sess_pump(s); /* a new session's offer leaves now */
    return 0;
}

void stream_caps_known(struct sess *s)
{
    for (;;) {
        struct stream *st = s->streams;
        while (st && st->fwd != STREAM_FWD_WAIT)
            st = st->next;
        if (!st)
            return;
        struct stream_wait *w = st->wait;
        int fd = st->fd;
        bool socks = st->socks;
        /* unlink the placeholder without closing its socket */
        st->fd = -1;
        st->wait = NULL;
        if (st->prev)
            st->prev->next = st->next;
        else
            s->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        s->nstreams--;
        ring_release(&st->out);
        free(st);
        stream_open_target(s, fd, w->has_target ? &w->target : NULL, socks, w->early,
                           w->early_len);
        free(w);
    }
}

int stream_open_target(struct sess *s, int fd, const struct fwd_target *t, bool socks,
                       const uint8_t *early, size_t early_len)
{
    /* the secure mode knows its peer from the start; the other modes ask first */
    if (!tunnel_peer_is_ktun(s->tun) && tunnel_caps_pending(s->tun))
        return stream_wait(s, fd, t, socks, early, early_len);
    if (!tunnel_peer_is_ktun(s->tun)) {
        if (!t)
            return stream_open_plain(s, fd);
        stream_refuse_local(s, fd, socks);
        return ERR_PROTO;
    }
    struct fwd_target def = {.atyp = FWD_ATYP_DEFAULT};
    uint8_t hdr[FWD_REQ_MAX];
    int n = fwd_request_encode(t ? t : &def, hdr, sizeof(hdr));
    if (n < 0) {
        close(fd);
        return ERR_INVAL;
    }
    struct stream *st;
    int rc = stream_open_fd(s, fd, NULL, 0, &st);
    if (rc != 0)
        return rc;
    uint32_t sid = st->sid;
    st->fwd = STREAM_FWD_REPLY;
    st->socks = socks;
    if (tunnel_stream_write(s->tun, sid, hdr, (size_t)n) != n ||
        (early_len && tunnel_stream_write(s->tun, sid, early, early_len) != (ssize_t)early_len)) {
        stream_reset(st, "mux write failed");
        return ERR_CLOSED;
    }
    ev_io_start(s->sh->loop, &st->rio);
    if (!s->sh->params.quiet) {
        char ts[FWD_HOST_MAX + 16];
        LOG_STREAM("stream: %u opened on %s to %s", sid, s->name,
                   fwd_target_str(t ? t : &def, ts, sizeof(ts)));
    }
    sess_pump(s);
    return 0;
}

int stream_accept_header(struct sess *s, uint32_t sid)
{
    struct stream *st = stream_new(s, sid, -1);
    if (!st) {
        tunnel_stream_release(s->tun, sid);
        return ERR_NOMEM;
    }
    st->fwd = STREAM_FWD_HEADER;
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u accepted on %s", sid, s->name);
    stream_push_tcp(st); /* the header may be here already */
    return 0;
}

int stream_open_local(struct sess *s, int fd)
{
    return stream_open_target(s, fd, NULL, false, NULL, 0);
}

/* A kcptun stream: the TCP bytes as they are, to the server's -t. */
static int stream_open_plain(struct sess *s, int fd)
{
    struct stream *st;
    int rc = stream_open_fd(s, fd, NULL, 0, &st);
    if (rc != 0)
        return rc;
    ev_io_start(s->sh->loop, &st->rio);
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u opened on %s", st->sid, s->name);
    sess_pump(s);
    return 0;
}

int stream_open_replay(struct sess *s, int fd, const uint8_t *data, size_t len)
{
    struct stream *st;
    int rc = stream_open_fd(s, fd, data, len, &st);
    if (rc != 0)
        return rc;
    ev_io_start(s->sh->loop, &st->rio); /* a socket at EOF reads 0 again: the FIN follows */
    if (!s->sh->params.quiet)
        LOG_STREAM("stream: %u opened again on %s, %zu bytes sent again", st->sid, s->name,
                   len);
    sess_pump(s);
    return 0;
}

int stream_attach(struct sess *s, uint32_t sid, int fd, bool connecting)
{
    struct stream *st = stream_new(s, sid, fd);
    if (!st) {
        tunnel_stream_release(s->tun, sid);
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
