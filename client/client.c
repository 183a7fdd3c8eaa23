/* SPDX-License-Identifier: MIT */
/* ktun-client: local TCP listener whose connections become streams over KCP sessions. */
#include "client/client.h"

#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/rawtcp.h"
#include "common/sess.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "crypto/qpp.h"

#include <ev.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * kcptun's client policy (kcptun 20210922): sessions are created lazily, one per --conn slot,
 * on the first TCP connection that lands on the slot (round-robin over accepted connections).
 * Each session has its own UDP socket and a random conv. With --autoexpire a session takes new
 * streams only that long; it then leaves its slot and is closed --scavengettl seconds after
 * its expiry (checked every second, like kcptun's scavenger).
 */

/* A session of the client: the shell's session plus its --conn slot and expiry. */
struct client_sess {
    struct sess s;          /* first: the shell allocates the wrapper */
    int slot;               /* --conn slot, -1 once expired */
    uint64_t expire_ms;     /* --autoexpire: no new streams after this (0: never) */
    uint64_t scavenge_ms;   /* close after this once expired (0: not yet) */
};

static struct client_sess *csess(struct sess *s)
{
    return container_of(s, struct client_sess, s);
}

struct client {
    struct shell sh;            /* loop, sessions, counters */
    const struct config *cfg;   /* validated configuration (borrowed) */
    struct net_addr remote;     /* server UDP address */
    int lfd;                    /* TCP listener */
    ev_io accept_io;            /* listener readable */
    ev_timer scavenge_timer;    /* 1 s scavenger, with --autoexpire only */
    ev_timer accept_retry;      /* restarts accept_io after running out of fds */
    int spare_fd;               /* held in reserve to refuse connections when out of fds */
    uint64_t refused;           /* connections refused while out of fds */
    bool out_of_fds;            /* in such an episode (logged once at its start and end) */
    struct client_sess **slots; /* --conn slots, NULL when empty */
    uint64_t rr;                /* accepted connections, for round-robin */
};

static struct client_sess *client_start_sess(struct client *c, int slot, struct net_udp *udp);

static struct client_sess *client_new_sess(struct client *c, int slot)
{
    char err[NET_ERR_LEN];
    struct net_udp udp;
    if (c->cfg->tcp) {
        struct rawtcp *t = c->cfg->tcp_auto ? rawtcp_dial_auto(&c->remote, c->cfg->sockbuf, err)
                                            : rawtcp_dial(&c->remote, c->cfg->sockbuf, err);
        if (!t) {
            LOG_ERROR("client: %s", err);
            return NULL;
        }
        net_udp_init_raw(&udp, t);
        return client_start_sess(c, slot, &udp);
    }
    int fd = net_udp_socket(c->remote.ss.ss_family, NULL, err);
    if (fd < 0) {
        LOG_ERROR("client: %s", err);
        return NULL;
    }
    if (c->cfg->sockbuf > 0 && net_set_sockbuf(fd, c->cfg->sockbuf, err) != 0)
        LOG_WARN("client: %s", err);
    if (c->cfg->dscp > 0 && net_set_dscp(fd, c->remote.ss.ss_family, c->cfg->dscp, err) != 0)
        LOG_WARN("client: %s", err);
    net_udp_init(&udp, fd, true, true);
    return client_start_sess(c, slot, &udp);
}

/* A session over |udp| (which it then owns) in --conn slot |slot|. */
static struct client_sess *client_start_sess(struct client *c, int slot, struct net_udp *udp)
{
    uint32_t conv;
    randombytes_buf(&conv, sizeof(conv));
    struct sess *s = sess_new(&c->sh, sizeof(struct client_sess), udp, true, &c->remote, conv);
    if (!s)
        return NULL;
    struct client_sess *cs = csess(s);
    cs->slot = slot;
    if (c->cfg->autoexpire_s > 0)
        cs->expire_ms = s->created_ms + (uint64_t)c->cfg->autoexpire_s * 1000;
    return cs;
}

/* Takes |s| out of its slot; it keeps serving its streams until the scavenger closes it. */
static void client_retire(struct client *c, struct client_sess *s)
{
    c->slots[s->slot] = NULL;
    s->slot = -1;
    s->scavenge_ms = s->expire_ms + (uint64_t)c->cfg->scavengettl_s * 1000;
    LOG_INFO("client: %s expired, closing it in %d s", s->s.name, c->cfg->scavengettl_s);
}

static struct client_sess *client_pick(struct client *c)
{
    int idx = (int)(c->rr++ % (uint64_t)c->cfg->conn);
    struct client_sess *s = c->slots[idx];
    uint64_t now = shell_now_ms();
    if (s && s->expire_ms && now >= s->expire_ms) {
        client_retire(c, s);
        s = NULL;
    }
    if (!s) {
        s = client_new_sess(c, idx);
        c->slots[idx] = s;
    }
    return s;
}

/* Out of file descriptors: the pending connection cannot be accepted, and leaving it in the
 * backlog would keep the listener readable (a busy loop) and the peer waiting. Give back the
 * spare fd, accept and close the connection at once (the peer sees it refused), take the spare
 * again, and stop accepting for a moment. Logged once per episode. */
static void client_out_of_fds(struct client *c, const char *why)
{
    struct ev_loop *loop = c->sh.loop;
    if (!c->out_of_fds)
        LOG_WARN("client: %s: refusing new connections until descriptors free up", why);
    c->out_of_fds = true;
    if (c->spare_fd >= 0) {
        close(c->spare_fd);
        int fd = accept(c->lfd, NULL, NULL);
        if (fd >= 0) {
            close(fd);
            c->refused++;
        }
        c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    ev_io_stop(EV_A_ &c->accept_io);
    ev_timer_set(&c->accept_retry, 0.1, 0.0);
    ev_timer_start(EV_A_ &c->accept_retry);
}

static void client_accept_retry_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct client *c = container_of(w, struct client, accept_retry);
    ev_io_start(EV_A_ &c->accept_io);
}

static void client_accept_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = container_of(w, struct client, accept_io);
    for (int i = 0; i < 64; i++) {
        char err[NET_ERR_LEN] = "";
        struct net_addr peer;
        int fd = net_tcp_accept(c->lfd, &peer, err);
        if (fd == ERR_LIMIT) {
            client_out_of_fds(c, err);
            break;
        }
        if (fd < 0) {
            if (err[0])
                LOG_WARN("client: %s", err);
            break;
        }
        if (c->out_of_fds) {
            LOG_INFO("client: accepting connections again (%llu refused meanwhile)",
                     (unsigned long long)c->refused);
            c->refused = 0;
            c->out_of_fds = false;
        }
        struct client_sess *s = client_pick(c);
        if (!s) {
            close(fd);
            continue;
        }
        int rc = stream_open_local(&s->s, fd);
        if (rc != 0)
            LOG_WARN("client: cannot open a stream on %s: %s", s->s.name, err_str(rc));
    }
    shell_flush_dgrams(&c->sh);
}

static void client_scavenge_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct client *c = container_of(w, struct client, scavenge_timer);
    uint64_t now = shell_now_ms();
    for (struct sess *s = c->sh.sessions, *nx; s; s = nx) {
        nx = s->next;
        struct client_sess *cs = csess(s);
        if (cs->slot >= 0 && cs->expire_ms && now >= cs->expire_ms)
            client_retire(c, cs);
        if (cs->slot < 0 && cs->scavenge_ms && now >= cs->scavenge_ms)
            sess_close(s, "scavenged");
    }
    shell_flush_dgrams(&c->sh);
}

static void client_sess_gone(struct shell *sh, struct sess *s)
{
    struct client *c = container_of(sh, struct client, sh);
    struct client_sess *cs = csess(s);
    if (cs->slot >= 0 && c->slots[cs->slot] == cs)
        c->slots[cs->slot] = NULL;
}

static void client_shutdown(struct shell *sh)
{
    struct client *c = container_of(sh, struct client, sh);
    ev_io_stop(sh->loop, &c->accept_io);
    ev_timer_stop(sh->loop, &c->accept_retry);
    ev_timer_stop(sh->loop, &c->scavenge_timer);
}

int client_run(const struct config *cfg)
{
    char err[NET_ERR_LEN];
    struct net_addr local;
    struct crypt *crypt = NULL;
    struct crypt_rng *rng = NULL;
    struct qpp *qpp = NULL;
    struct client *c = NULL;
    int rc = 1;
    if (net_resolve(cfg->localaddr, true, &local, err) != 0) {
        LOG_ERROR("client: --localaddr: %s", err);
        return 1;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return 1;
    c->cfg = cfg;
    c->lfd = -1;
    c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (net_resolve(cfg->remoteaddr, false, &c->remote, err) != 0) {
        LOG_ERROR("client: --remoteaddr: %s", err);
        goto out;
    }
    if (cfg->tcp && rawtcp_prepare(c->remote.ss.ss_family, err) != 0) {
        LOG_ERROR("client: %s", err);
        rc = 2;
        goto out;
    }
    crypt = shell_crypt_new(cfg, CRYPT_ROLE_CLIENT, &rng);
    if (!crypt)
        goto out;
    c->slots = calloc((size_t)cfg->conn, sizeof(*c->slots));
    c->lfd = net_tcp_listen(&local, 1024, err);
    if (!c->slots || c->lfd < 0) {
        LOG_ERROR("client: %s", c->slots ? err : "out of memory");
        goto out;
    }
    struct sess_params params;
    sess_params_from_config(cfg, &params);
    if (cfg->qpp && !(params.tun.mux.qpp = qpp = config_qpp_new(cfg, err, sizeof(err)))) {
        LOG_ERROR("client: %s", err);
        goto out;
    }
    struct shell_hooks hooks = {.sess_gone = client_sess_gone, .shutdown = client_shutdown};
    struct ev_loop *loop = EV_DEFAULT;
    shell_init(&c->sh, loop, &params, true, crypt, &hooks, cfg->snmplog, cfg->snmpperiod_s);
    ev_io_init(&c->accept_io, client_accept_cb, c->lfd, EV_READ);
    ev_io_start(EV_A_ &c->accept_io);
    ev_timer_init(&c->scavenge_timer, client_scavenge_cb, 1.0, 1.0);
    ev_init(&c->accept_retry, client_accept_retry_cb);
    if (cfg->autoexpire_s > 0)
        ev_timer_start(EV_A_ &c->scavenge_timer);
    char ls[NET_ADDR_STRLEN], rs[NET_ADDR_STRLEN];
    LOG_INFO("client: listening on %s, server %s", net_addr_str(&local, ls, sizeof(ls)),
             net_addr_str(&c->remote, rs, sizeof(rs)));
    shell_run(&c->sh);
    ev_loop_destroy(EV_A);
    rc = 0;
out:
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->spare_fd >= 0)
        close(c->spare_fd);
    free(c->slots);
    free(c);
    crypt_free(crypt);
    crypt_rng_free(rng);
    qpp_free(qpp);
    return rc;
}
