/* SPDX-License-Identifier: MIT */
/* ktun-client: the -L (TCP forward) and -D (SOCKS5) listeners (docs/forwards.md). */
#include "client/client.h"

#include "common/err.h"
#include "common/fwd.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sess.h"
#include "common/socks5.h"
#include "common/socksudp.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Each -L or -D spec is one listening socket. An -L connection becomes a stream whose target
 * header names the spec's host and port; a -D connection first speaks SOCKS5 with its client
 * (common/socks5.h), then becomes a stream to the target it asked for, and the server's reply
 * is passed on as the SOCKS5 reply (stream.c). Targets travel only to a ktun server
 * (tunnel_peer_is_ktun); until the capability exchange tells, connections wait; with another
 * server they are closed (stream.c, logged).
 */

/* A SOCKS5 client has this long to send its greeting and request. */
#define FWD_SOCKS_HANDSHAKE_S 10.0

struct client_fwds;

/* One listener. */
struct fwd_listener {
    struct client_fwds *set;
    struct fwd_spec spec;
    struct fwd_target target;   /* -L: the spec's target */
    int lfd;
    ev_io io;
    ev_timer retry;             /* restarts |io| after running out of descriptors */
    char label[FWD_HOST_MAX * 2 + 32]; /* "-L 8080:host:80" for logs */
};

/* A SOCKS5 connection during its handshake. */
struct socks_conn {
    struct fwd_listener *l;
    struct socks_conn *prev, *next;
    int fd;
    ev_io io;
    ev_timer timer;
    bool greeted;               /* the greeting was answered */
    size_t len;                 /* bytes in |buf| */
    uint8_t buf[SOCKS5_REQ_MAX + STREAM_EARLY_MAX];
};

struct client_fwds {
    struct client *c;
    struct ev_loop *loop;
    struct fwd_listener *ls;
    size_t nls;
    struct socks_conn *conns;   /* handshakes in progress */
};

/* The session for a new forwarded connection, or NULL. */
static struct sess *fwd_sess(struct fwd_listener *l)
{
    return client_stream_sess(l->set->c);
}

static void socks_free(struct socks_conn *sc, bool close_fd)
{
    struct client_fwds *f = sc->l->set;
    ev_io_stop(f->loop, &sc->io);
    ev_timer_stop(f->loop, &sc->timer);
    if (close_fd)
        close(sc->fd);
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        f->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    free(sc);
}

/* Sends a SOCKS5 reply |rep| (not success) and closes. */
static void socks_refuse(struct socks_conn *sc, uint8_t rep)
{
    uint8_t r[SOCKS5_REPLY_MAX];
    size_t n = socks5_reply_encode(rep, NULL, r);
    if (write(sc->fd, r, n) != (ssize_t)n) { /* closing anyway */
    }
    socks_free(sc, true);
}

/* Moves on with what |sc| holds. Returns false once |sc| is gone. */
static bool socks_step(struct socks_conn *sc)
{
    if (!sc->greeted) {
        bool no_auth;
        int n = socks5_greeting_parse(sc->buf, sc->len, &no_auth);
        if (n == ERR_AGAIN)
            return true;
        if (n < 0) {
            socks_free(sc, true);
            return false;
        }
        uint8_t r[2];
        socks5_method_reply(no_auth, r);
        if (write(sc->fd, r, 2) != 2 || !no_auth) {
            socks_free(sc, true);
            return false;
        }
        memmove(sc->buf, sc->buf + n, sc->len - (size_t)n);
        sc->len -= (size_t)n;
        sc->greeted = true;
    }
    struct socks5_request req;
    int n = socks5_request_parse(sc->buf, sc->len, &req);
    if (n == ERR_AGAIN)
        return true;
    if (n < 0) {
        socks_free(sc, true);
        return false;
    }
    if (req.rep != 0) {
        socks_refuse(sc, req.rep);
        return false;
    }
    if (req.cmd == SOCKS5_CMD_CONNECT && req.target.port == 0) {
        socks_refuse(sc, FWD_FAIL);
        return false;
    }
    struct sess *s = fwd_sess(sc->l);
    if (!s) {
        socks_refuse(sc, FWD_FAIL);
        return false;
    }
    if (req.cmd == SOCKS5_CMD_UDP) {
        /* the datagram channel between ktun ends (held while the exchange is on) */
        if (!tunnel_peer_is_ktun(s->tun) && !tunnel_caps_pending(s->tun)) {
            socks_refuse(sc, FWD_FAIL);
            return false;
        }
        int fd = sc->fd;
        socks_free(sc, false);
        socksudp_associate(s, fd);
        return false;
    }
    int fd = sc->fd;
    const uint8_t *early = sc->buf + n;
    size_t early_len = sc->len - (size_t)n;
    if (early_len > STREAM_EARLY_MAX) {
        socks_refuse(sc, FWD_FAIL); /* a client that does not wait for the reply */
        return false;
    }
    uint8_t copy[sizeof(sc->buf)];
    memcpy(copy, early, early_len);
    socks_free(sc, false);
    int rc = stream_open_target(s, fd, &req.target, true, copy, early_len);
    if (rc != 0)
        LOG_WARN("client: cannot open a stream on %s: %s", s->name, err_str(rc));
    return false;
}

static void socks_read_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct socks_conn *sc = container_of(w, struct socks_conn, io);
    ssize_t n = read(sc->fd, sc->buf + sc->len, sizeof(sc->buf) - sc->len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        socks_free(sc, true);
        return;
    }
    if (n < 0)
        return;
    sc->len += (size_t)n;
    if (socks_step(sc) && sc->len == sizeof(sc->buf))
        socks_free(sc, true); /* no request fits this: not SOCKS5 */
}

static void socks_timeout_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    socks_free(container_of(w, struct socks_conn, timer), true);
}

/* Accepted connection |fd| on listener |l|. */
static void fwd_accepted(struct fwd_listener *l, int fd)
{
    struct client_fwds *f = l->set;
    if (l->spec.kind == 'L') {
        struct sess *s = fwd_sess(l);
        if (!s) {
            close(fd);
            return;
        }
        int rc = stream_open_target(s, fd, &l->target, false, NULL, 0);
        if (rc != 0)
            LOG_WARN("client: cannot open a stream on %s: %s", s->name, err_str(rc));
        return;
    }
    struct socks_conn *sc = calloc(1, sizeof(*sc));
    if (!sc) {
        close(fd);
        return;
    }
    sc->l = l;
    sc->fd = fd;
    sc->next = f->conns;
    if (f->conns)
        f->conns->prev = sc;
    f->conns = sc;
    ev_io_init(&sc->io, socks_read_cb, fd, EV_READ);
    ev_io_start(f->loop, &sc->io);
    ev_timer_init(&sc->timer, socks_timeout_cb, FWD_SOCKS_HANDSHAKE_S, 0.0);
    ev_timer_start(f->loop, &sc->timer);
}

static void fwd_retry_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct fwd_listener *l = container_of(w, struct fwd_listener, retry);
    ev_io_start(EV_A_ &l->io);
}

static void fwd_accept_cb(EV_P_ ev_io *w, int revents)
{
    (void)revents;
    struct fwd_listener *l = container_of(w, struct fwd_listener, io);
    for (int i = 0; i < 64; i++) {
        char err[NET_ERR_LEN] = "";
        int fd = net_tcp_accept(l->lfd, NULL, err);
        if (fd == ERR_LIMIT) {
            /* out of descriptors: the connection waits in the backlog; look again soon */
            LOG_WARN("client: %s: %s", l->label, err);
            ev_io_stop(EV_A_ w);
            ev_timer_set(&l->retry, 0.5, 0.0);
            ev_timer_start(EV_A_ &l->retry);
            break;
        }
        if (fd < 0) {
            if (err[0])
                LOG_WARN("client: %s: %s", l->label, err);
            break;
        }
        fwd_accepted(l, fd);
    }
}

/* Opens the listener for |spec|. Returns 0, or -1 (logged). */
static int fwd_listen(struct client_fwds *f, struct fwd_listener *l, const struct fwd_spec *spec)
{
    char err[NET_ERR_LEN], hp[FWD_HOST_MAX + 16];
    struct net_addr a;
    l->set = f;
    l->spec = *spec;
    l->lfd = -1;
    if (spec->kind == 'L')
        snprintf(l->label, sizeof(l->label), "-L %s:%u:%s:%u", spec->bind, spec->bind_port,
                 spec->host, spec->port);
    else
        snprintf(l->label, sizeof(l->label), "-D %s:%u", spec->bind, spec->bind_port);
    if (spec->kind == 'L' && fwd_target_set(&l->target, spec->host, spec->port) != 0) {
        LOG_ERROR("client: %s: bad target", l->label);
        return -1;
    }
    snprintf(hp, sizeof(hp), strchr(spec->bind, ':') ? "[%s]:%u" : "%s:%u", spec->bind,
             spec->bind_port);
    if (net_resolve(hp, true, &a, err) != 0 || (l->lfd = net_tcp_listen(&a, 1024, err)) < 0) {
        LOG_ERROR("client: %s: %s", l->label, err);
        return -1;
    }
    ev_io_init(&l->io, fwd_accept_cb, l->lfd, EV_READ);
    ev_io_start(f->loop, &l->io);
    ev_init(&l->retry, fwd_retry_cb);
    char as[NET_ADDR_STRLEN];
    if (spec->kind == 'L')
        LOG_INFO("client: %s: listening on %s for %s:%u", l->label,
                 net_addr_str(&a, as, sizeof(as)), spec->host, spec->port);
    else
        LOG_INFO("client: %s: SOCKS5 on %s", l->label, net_addr_str(&a, as, sizeof(as)));
    return 0;
}

static size_t count_lines(const char *p)
{
    size_t n = 0;
    for (; *p; p++)
        n += *p == '\n';
    return n;
}

struct client_fwds *client_fwds_start(struct client *c, struct ev_loop *loop,
                                      const struct config *cfg)
{
    struct client_fwds *f = calloc(1, sizeof(*f));
    size_t want = count_lines(cfg->tcpfwd) + count_lines(cfg->socks);
    if (!f || (want && !(f->ls = calloc(want, sizeof(*f->ls))))) {
        LOG_ERROR("client: out of memory");
        free(f);
        return NULL;
    }
    f->c = c;
    f->loop = loop;
    const struct {
        char kind;
        const char *list;
    } lists[] = {{'L', cfg->tcpfwd}, {'D', cfg->socks}};
    for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
        for (const char *p = lists[k].list; *p;) {
            char line[CONFIG_LIST_MAX], why[CONFIG_ERR_MAX];
            struct fwd_spec spec;
            size_t n = strcspn(p, "\n");
            memcpy(line, p, n);
            line[n] = '\0';
            p += n + (p[n] == '\n');
            if (fwd_parse_spec(lists[k].kind, line, &spec, why, sizeof(why)) != 0) {
                LOG_ERROR("client: -%c: %s", lists[k].kind, why); /* validated: unreachable */
                client_fwds_free(f);
                return NULL;
            }
            if (fwd_listen(f, &f->ls[f->nls++], &spec) != 0) {
                client_fwds_free(f);
                return NULL;
            }
        }
    }
    return f;
}

void client_fwds_stop(struct client_fwds *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nls; i++) {
        ev_io_stop(f->loop, &f->ls[i].io);
        ev_timer_stop(f->loop, &f->ls[i].retry);
    }
    while (f->conns)
        socks_free(f->conns, true);
    socksudp_close_all();
}

void client_fwds_free(struct client_fwds *f)
{
    if (!f)
        return;
    client_fwds_stop(f);
    for (size_t i = 0; i < f->nls; i++)
        if (f->ls[i].lfd >= 0)
            close(f->ls[i].lfd);
    free(f->ls);
    free(f);
}
