/* SPDX-License-Identifier: MIT */
/* ktun-server: UDP listener whose KCP sessions' streams are forwarded to the target. */
#include "server/server.h"

#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/rawtcp.h"
#include "common/sess.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "crypto/qpp.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * kcp-go's listener policy: one UDP socket; sessions keyed by the peer's
 * address. A datagram for a known address feeds its session if it is parity or carries the
 * session's conv; another conv replaces the session only when its sn is 0 (the client
 * restarted on the same port); anything else is dropped. An unknown address gets a new
 * session unless the packet is parity-only or --maxsessions sessions exist. Dead peers are
 * reclaimed by the smux keepalive check (30 s without a frame), as in kcptun.
 */

#define SERVER_BUCKETS 1024

/* A session of the server: the shell's session plus its address-table chain. */
struct server_sess {
    struct sess s;              /* first: the shell allocates the wrapper */
    struct server_sess *hnext;  /* next session in the same address bucket */
};

struct server {
    struct shell sh;                     /* loop, sessions, counters */
    const struct config *cfg;            /* validated configuration (borrowed) */
    struct net_udp udp;                  /* UDP listener */
    ev_io udp_io;                        /* listener readable */
    struct net_udp tcp;                  /* fake-TCP listener (--tcp), fd -1 without */
    ev_io tcp_io;                        /* its descriptor readable */
    struct net_addr target;              /* TCP target (unless a Unix path) */
    bool target_resolved;                /* |target| holds the resolved address */
    bool target_unix;                    /* cfg->target is a Unix socket path */
    struct server_sess *table[SERVER_BUCKETS]; /* sessions by peer address */
    struct sess *touched[NET_BATCH];     /* sessions fed by the current batch */
    int ntouched;                        /* entries of |touched| */
    uint64_t sessions_refused;           /* new peers refused by --maxsessions */
    struct log_limit refused_log;        /* one line about it per 10 s */
};

static struct server_sess **server_bucket(struct server *sv, const struct net_addr *a)
{
    return &sv->table[net_addr_hash(a) % SERVER_BUCKETS];
}

static struct sess *server_find(struct server *sv, const struct net_udp *u,
                                const struct net_addr *a)
{
    for (struct server_sess *s = *server_bucket(sv, a); s; s = s->hnext)
        if (s->s.udp == u && net_addr_equal(&s->s.peer, a))
            return &s->s;
    return NULL;
}

static void server_sess_gone(struct shell *sh, struct sess *s)
{
    struct server *sv = container_of(sh, struct server, sh);
    struct server_sess *ss = container_of(s, struct server_sess, s);
    for (struct server_sess **pp = server_bucket(sv, &s->peer); *pp; pp = &(*pp)->hnext) {
        if (*pp == ss) {
            *pp = ss->hnext;
            break;
        }
    }
    for (int i = 0; i < sv->ntouched; i++)
        if (sv->touched[i] == s)
            sv->touched[i] = NULL;
}

static void server_touch(struct server *sv, struct sess *s)
{
    for (int i = 0; i < sv->ntouched; i++)
        if (sv->touched[i] == s)
            return;
    if (sv->ntouched == NET_BATCH) {
        /* more sessions than a batch has messages cannot happen (one source per message);
         * pump the ones so far rather than trust that */
        for (int i = 0; i < sv->ntouched; i++)
            if (sv->touched[i])
                sess_pump(sv->touched[i]);
        sv->ntouched = 0;
    }
    sv->touched[sv->ntouched++] = s;
}

static struct sess *server_new_sess(struct server *sv, struct net_udp *u,
                                    const struct net_addr *from, uint32_t conv)
{
    if (sv->sh.nsess >= (size_t)sv->cfg->maxsessions) {
        sv->sh.base.v[SNMP_IN_ERRS]++;
        sv->sessions_refused++;
        if (log_limit_pass(&sv->refused_log, shell_now_ms(), LOG_REPEAT_MS)) {
            char as[NET_ADDR_STRLEN];
            LOG_WARN("server: --maxsessions %d reached: refused a session from %s (%llu refused "
                     "so far)", sv->cfg->maxsessions, net_addr_str(from, as, sizeof(as)),
                     (unsigned long long)sv->sessions_refused);
        }
        return NULL;
    }
    struct sess *s = sess_new(&sv->sh, sizeof(struct server_sess), u, false, from, conv);
    if (!s)
        return NULL;
    struct server_sess *ss = container_of(s, struct server_sess, s);
    struct server_sess **b = server_bucket(sv, from);
    ss->hnext = *b;
    *b = ss;
    return s;
}

/* Routes one opened payload from |from| on listener |u|. */
static void server_route(struct server *sv, struct net_udp *u, const struct net_addr *from,
                         const uint8_t *p, size_t len)
{
    uint32_t conv = 0;
    struct sess *s = server_find(sv, u, from);
    switch (tunnel_route(s ? s->tun : NULL, p, len, &conv)) {
    case TUNNEL_ROUTE_DROP:
        sv->sh.base.v[SNMP_IN_ERRS]++;
        return;
    case TUNNEL_ROUTE_IGNORE:
        return; /* parity never opens a session */
    case TUNNEL_ROUTE_REPLACE:
        sess_close(s, "conv replaced");
        /* fall through */
    case TUNNEL_ROUTE_NEW:
        s = server_new_sess(sv, u, from, conv);
        if (!s)
            return;
        break;
    case TUNNEL_ROUTE_FEED:
        break;
    }
    sess_input_payload(s, p, len);
    server_touch(sv, s);
}

/* Reads the datagrams waiting on listener |u| (UDP or fake TCP). */
static void server_rx(struct server *sv, struct net_udp *u)
{
    struct shell *sh = &sv->sh;
    uint64_t wall_ms = (uint64_t)((int64_t)shell_now_ms() + shell_wall_offset_ms());
    for (int b = 0; b < SHELL_RX_BATCHES; b++) {
        int n = net_recv_batch(u, &sh->rb);
        if (n <= 0)
            break;
        sv->ntouched = 0;
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(&sh->rb, &p, &len, &from)) {
            const uint8_t *payload;
            sh->base.v[SNMP_IN_PKTS]++;
            sh->base.v[SNMP_IN_BYTES] += len;
            ssize_t plen = crypt_open(sh->crypt, p, len, wall_ms, &payload);
            if (plen < 0)
                continue; /* counted by the crypt (InCsumErrors) */
            server_route(sv, u, from, payload, (size_t)plen);
        }
        for (int i = 0; i < sv->ntouched; i++)
            if (sv->touched[i])
                sess_pump(sv->touched[i]);
        sv->ntouched = 0;
        if (n < sh->rb.slots)
            break;
    }
    shell_flush_dgrams(sh);
}

static void server_udp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = container_of(w, struct server, udp_io);
    server_rx(sv, &sv->udp);
}

static void server_tcp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = container_of(w, struct server, tcp_io);
    server_rx(sv, &sv->tcp);
}

/* Resolves the target (again, if it failed before: kcptun resolves on every dial). */
static int server_resolve_target(struct server *sv, char *err)
{
    int rc = net_resolve(sv->cfg->target, false, &sv->target, err);
    sv->target_resolved = rc == 0;
    return rc;
}

static void server_stream_accept(struct shell *sh, struct sess *s, uint32_t sid)
{
    struct server *sv = container_of(sh, struct server, sh);
    char err[NET_ERR_LEN];
    int fd = ERR_INVAL;
    if (sv->target_unix)
        fd = net_unix_connect(sv->cfg->target, err);
    else if (sv->target_resolved || server_resolve_target(sv, err) == 0)
        fd = net_tcp_connect(&sv->target, err);
    if (fd < 0) {
        LOG_WARN("server: stream %u on %s: %s", sid, s->name, err);
        tunnel_stream_release(s->tun, sid);
        return;
    }
    stream_attach(s, sid, fd, true);
}

static void server_shutdown(struct shell *sh)
{
    struct server *sv = container_of(sh, struct server, sh);
    ev_io_stop(sh->loop, &sv->udp_io);
    if (sv->tcp.fd >= 0)
        ev_io_stop(sh->loop, &sv->tcp_io);
}

int server_run(const struct config *cfg)
{
    char err[NET_ERR_LEN];
    struct net_addr listen_addr;
    struct crypt *crypt = NULL;
    struct crypt_rng *rng = NULL;
    struct qpp *qpp = NULL;
    struct server *sv = NULL;
    int rc = 1;
    if (net_resolve(cfg->listen, true, &listen_addr, err) != 0) {
        LOG_ERROR("server: --listen: %s", err);
        return 1;
    }
    sv = calloc(1, sizeof(*sv));
    if (!sv)
        return 1;
    sv->cfg = cfg;
    sv->udp.fd = -1;
    sv->tcp.fd = -1;
    sv->target_unix = config_target_is_unix(cfg);
    if (!sv->target_unix && server_resolve_target(sv, err) != 0)
        LOG_WARN("server: --target: %s (retried for every stream)", err);
    if (cfg->tcp) {
        struct rawtcp *t = rawtcp_listen(&listen_addr, cfg->sockbuf, err);
        if (!t) {
            LOG_ERROR("server: %s", err);
            rc = 2;
            goto out;
        }
        net_udp_init_raw(&sv->tcp, t);
    }
    crypt = shell_crypt_new(cfg, CRYPT_ROLE_SERVER, &rng);
    if (!crypt)
        goto out;
    int ufd = net_udp_socket(listen_addr.ss.ss_family, &listen_addr, err);
    if (ufd < 0) {
        LOG_ERROR("server: %s", err);
        goto out;
    }
    net_udp_init(&sv->udp, ufd, true, true);
    if (cfg->sockbuf > 0 && net_set_sockbuf(sv->udp.fd, cfg->sockbuf, err) != 0)
        LOG_WARN("server: %s", err);
    if (cfg->dscp > 0 && net_set_dscp(sv->udp.fd, listen_addr.ss.ss_family, cfg->dscp, err) != 0)
        LOG_WARN("server: %s", err);
    struct sess_params params;
    sess_params_from_config(cfg, &params);
    if (cfg->qpp && !(params.tun.mux.qpp = qpp = config_qpp_new(cfg, err, sizeof(err)))) {
        LOG_ERROR("server: %s", err);
        goto out;
    }
    struct shell_hooks hooks = {
        .stream_accept = server_stream_accept,
        .sess_gone = server_sess_gone,
        .shutdown = server_shutdown,
    };
    struct ev_loop *loop = EV_DEFAULT;
    shell_init(&sv->sh, loop, &params, false, crypt, &hooks, cfg->snmplog, cfg->snmpperiod_s);
    ev_io_init(&sv->udp_io, server_udp_cb, sv->udp.fd, EV_READ);
    ev_io_start(EV_A_ &sv->udp_io);
    if (sv->tcp.fd >= 0) {
        ev_io_init(&sv->tcp_io, server_tcp_cb, sv->tcp.fd, EV_READ);
        ev_io_start(EV_A_ &sv->tcp_io);
    }
    char ls[NET_ADDR_STRLEN];
    LOG_INFO("server: listening on %s%s, target %s", net_addr_str(&listen_addr, ls, sizeof(ls)),
             sv->tcp.fd >= 0 ? " (UDP and fake TCP)" : "", cfg->target);
    shell_run(&sv->sh);
    ev_loop_destroy(EV_A);
    rc = 0;
out:
    if (sv->udp.fd >= 0)
        close(sv->udp.fd);
    net_udp_close(&sv->tcp);
    free(sv);
    crypt_free(crypt);
    crypt_rng_free(rng);
    qpp_free(qpp);
    return rc;
}
