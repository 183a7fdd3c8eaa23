/* SPDX-License-Identifier: MIT */
/* The libev shell in one process: a client shell and a server shell on one real loop, over
 * loopback UDP, carrying TCP streams to an echo target; budget stalls, signals, counters. */
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sess.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "tests/test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NSTREAMS 4
#define NECHO 16
#define ECHO_BUF 65536

/* The application end of one client stream: writes a pattern, reads the echo back. */
struct app {
    int fd;
    size_t sent, got;
    bool shut, eof, bad;
};

/* One accepted connection of the echo target. */
struct echo {
    int fd;
    uint8_t buf[ECHO_BUF];
    size_t len;   /* bytes read, not yet written back */
    bool eof, shut;
};

struct harness {
    struct ev_loop *loop;
    struct config ccfg, scfg;
    struct crypt *cc, *sc;
    struct crypt_rng *crng, *srng;
    struct shell cli, srv;
    struct net_udp lis;            /* the server's UDP listener */
    ev_io lis_io;
    struct net_addr lis_addr;
    struct sess *srv_sess[4];      /* sessions of the listener, by peer address */
    int target_fd;                 /* TCP echo target */
    struct net_addr target;
    struct app app[NSTREAMS];
    struct echo echo[NECHO];
    int necho;
    bool echo_paused;              /* the target stops reading (budget test) */
    size_t bytes;                  /* each client stream sends this much */
    ev_timer tick;                 /* wakes ev_run at least every ms */
    int accepted;                  /* stream_accept calls */
    int gone;                      /* sess_gone calls */
    int shutdowns;                 /* shutdown hook calls */
};

static uint8_t pattern(int k, size_t i)
{
    return (uint8_t)(i * 7u + (size_t)k * 13u + (i >> 11));
}

static struct harness *H; /* the hooks have only the shell */

/* ---- server role: listener and target ------------------------------------------------- */

static void srv_accept(struct shell *sh, struct sess *s, uint32_t sid)
{
    (void)sh;
    H->accepted++;
    int fd = net_tcp_connect(&H->target, NULL);
    if (fd < 0) {
        tunnel_stream_release(s->tun, sid);
        return;
    }
    stream_attach(s, sid, fd, true);
}

static void srv_gone(struct shell *sh, struct sess *s)
{
    (void)sh;
    H->gone++;
    for (int i = 0; i < 4; i++)
        if (H->srv_sess[i] == s)
            H->srv_sess[i] = NULL;
}

static void srv_shutdown(struct shell *sh)
{
    H->shutdowns++;
    ev_io_stop(sh->loop, &H->lis_io);
}

static void cli_gone(struct shell *sh, struct sess *s)
{
    (void)sh;
    (void)s;
    H->gone++;
}

static struct sess **srv_find(struct harness *h, const struct net_addr *from)
{
    struct sess **free_slot = NULL;
    for (int i = 0; i < 4; i++) {
        if (h->srv_sess[i] && net_addr_equal(&h->srv_sess[i]->peer, from))
            return &h->srv_sess[i];
        if (!h->srv_sess[i] && !free_slot)
            free_slot = &h->srv_sess[i];
    }
    return free_slot;
}

/* A small listener like the server's: open, route by conv, feed, pump. */
static void lis_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct harness *h = container_of(w, struct harness, lis_io);
    uint64_t wall = (uint64_t)((int64_t)shell_now_ms() + shell_wall_offset_ms());
    if (net_recv_batch(&h->lis, &h->srv.rb) <= 0)
        return;
    uint8_t *p;
    size_t len;
    const struct net_addr *from;
    while (net_rbatch_next(&h->srv.rb, &p, &len, &from)) {
        const uint8_t *payload;
        ssize_t plen = crypt_open(h->sc, p, len, wall, &payload);
        struct sess **slot = srv_find(h, from);
        if (plen < 0 || !slot)
            continue;
        uint32_t conv;
        enum tunnel_route r = tunnel_route(*slot ? (*slot)->tun : NULL, payload, (size_t)plen,
                                           &conv);
        if (r == TUNNEL_ROUTE_NEW)
            *slot = sess_new(&h->srv, sizeof(struct sess), &h->lis, false, from, conv);
        if (r != TUNNEL_ROUTE_NEW && r != TUNNEL_ROUTE_FEED)
            continue;
        if (*slot) {
            sess_input_payload(*slot, payload, (size_t)plen);
            sess_pump(*slot);
        }
    }
    shell_flush_dgrams(&h->srv);
}

/* ---- the applications ----------------------------------------------------------------- */

static void app_write(struct app *a, int k)
{
    uint8_t buf[8192];
    while (a->sent < H->bytes) {
        size_t n = MIN(sizeof(buf), H->bytes - a->sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(k, a->sent + i);
        ssize_t w = write(a->fd, buf, n);
        if (w <= 0)
            return;
        a->sent += (size_t)w;
    }
    if (!a->shut) {
        shutdown(a->fd, SHUT_WR);
        a->shut = true;
    }
}

static void app_read(struct app *a, int k)
{
    uint8_t buf[8192];
    ssize_t n;
    while (!a->eof && (n = read(a->fd, buf, sizeof(buf))) >= 0) {
        if (n == 0) {
            a->eof = true;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            a->bad |= buf[i] != pattern(k, a->got + (size_t)i);
        a->got += (size_t)n;
    }
}

static void echo_service(struct echo *e)
{
    if (e->len > 0) {
        ssize_t w = write(e->fd, e->buf, e->len);
        if (w > 0) {
            memmove(e->buf, e->buf + w, e->len - (size_t)w);
            e->len -= (size_t)w;
        }
    }
    if (!e->eof && e->len < sizeof(e->buf) && !H->echo_paused) {
        ssize_t n = read(e->fd, e->buf + e->len, sizeof(e->buf) - e->len);
        if (n > 0)
            e->len += (size_t)n;
        else if (n == 0)
            e->eof = true;
    }
    if (e->eof && e->len == 0 && !e->shut) {
        shutdown(e->fd, SHUT_WR);
        e->shut = true;
    }
}

static void apps_service(struct harness *h)
{
    int fd;
    while (h->necho < NECHO && (fd = accept4(h->target_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
        h->echo[h->necho++] = (struct echo){.fd = fd};
    for (int i = 0; i < h->necho; i++)
        echo_service(&h->echo[i]);
    for (int k = 0; k < NSTREAMS; k++) {
        app_write(&h->app[k], k);
        app_read(&h->app[k], k);
    }
}

static bool apps_done(const struct harness *h)
{
    for (int k = 0; k < NSTREAMS; k++)
        if (!h->app[k].eof)
            return false;
    return true;
}

static size_t live_streams(const struct shell *sh)
{
    size_t n = 0;
    for (const struct sess *s = sh->sessions; s; s = s->next)
        n += s->nstreams;
    return n;
}

static void tick_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Runs the loop and the applications until |done| or |ms| of wall time passed. */
static bool run_until(struct harness *h, bool (*done)(const struct harness *), uint64_t ms)
{
    uint64_t end = shell_now_ms() + ms;
    while (!done(h) && shell_now_ms() < end) {
        ev_run(h->loop, EVRUN_ONCE);
        apps_service(h);
    }
    return done(h);
}

static bool streams_gone(const struct harness *h)
{
    return live_streams(&h->cli) == 0 && live_streams(&h->srv) == 0;
}

/* ---- set-up --------------------------------------------------------------------------- */

static bool harness_listen(struct harness *h)
{
    struct net_addr any;
    socklen_t alen = sizeof(h->lis_addr.ss);
    if (net_resolve("127.0.0.1:0", true, &any, NULL) != 0)
        return false;
    int ufd = net_udp_socket(AF_INET, &any, NULL);
    if (ufd < 0 || getsockname(ufd, (struct sockaddr *)&h->lis_addr.ss, &alen) != 0)
        return false;
    h->lis_addr.len = alen;
    net_udp_init(&h->lis, ufd, true, true);
    h->target_fd = net_tcp_listen(&any, 16, NULL);
    int small = 4096; /* accepted connections inherit it: little is buffered in the kernel */
    if (h->target_fd >= 0)
        setsockopt(h->target_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    alen = sizeof(h->target.ss);
    if (h->target_fd < 0 ||
        getsockname(h->target_fd, (struct sockaddr *)&h->target.ss, &alen) != 0)
        return false;
    h->target.len = alen;
    ev_io_init(&h->lis_io, lis_cb, ufd, EV_READ);
    ev_io_start(h->loop, &h->lis_io);
    return true;
}

static bool harness_init(struct harness *h, int64_t srv_budget, size_t bytes)
{
    memset(h, 0, sizeof(*h));
    H = h;
    h->bytes = bytes;
    h->target_fd = -1;
    h->lis.fd = -1;
    h->loop = ev_loop_new(EVFLAG_AUTO);
    config_defaults(&h->ccfg, CONFIG_CLIENT);
    config_defaults(&h->scfg, CONFIG_SERVER);
    h->scfg.bufbudget = srv_budget;
    h->cc = shell_crypt_new(&h->ccfg, CRYPT_ROLE_CLIENT, &h->crng);
    h->sc = shell_crypt_new(&h->scfg, CRYPT_ROLE_SERVER, &h->srng);
    if (!h->loop || !h->cc || !h->sc || !harness_listen(h))
        return false;
    struct sess_params cp, sp;
    sess_params_from_config(&h->ccfg, &cp);
    sess_params_from_config(&h->scfg, &sp);
    cp.quiet = sp.quiet = true;
    struct shell_hooks ch = {.sess_gone = cli_gone};
    struct shell_hooks shk = {.stream_accept = srv_accept, .sess_gone = srv_gone,
                              .shutdown = srv_shutdown};
    shell_init(&h->cli, h->loop, &cp, true, h->cc, &ch, NULL, 0);
    shell_init(&h->srv, h->loop, &sp, false, h->sc, &shk, NULL, 0);
    ev_timer_init(&h->tick, tick_cb, 0.001, 0.001);
    ev_timer_start(h->loop, &h->tick);
    return true;
}

/* A client session with NSTREAMS streams whose application ends are h->app[]. */
static struct sess *harness_streams(struct harness *h, uint32_t conv)
{
    int fd = net_udp_socket(AF_INET, NULL, NULL);
    if (fd < 0)
        return NULL;
    struct net_udp u;
    net_udp_init(&u, fd, true, true);
    struct sess *s = sess_new(&h->cli, sizeof(struct sess), &u, true, &h->lis_addr, conv);
    for (int k = 0; s && k < NSTREAMS; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
            return NULL;
        h->app[k] = (struct app){.fd = sv[1]};
        if (stream_open_local(s, sv[0]) != 0)
            return NULL;
    }
    return s;
}

static void harness_free(struct harness *h)
{
    ev_timer_stop(h->loop, &h->tick);
    shell_stop(&h->cli);
    shell_stop(&h->srv);
    for (int k = 0; k < NSTREAMS; k++)
        if (h->app[k].fd > 0)
            close(h->app[k].fd);
    for (int i = 0; i < h->necho; i++)
        close(h->echo[i].fd);
    if (h->target_fd >= 0)
        close(h->target_fd);
    if (h->lis.fd >= 0)
        close(h->lis.fd);
    crypt_free(h->cc);
    crypt_free(h->sc);
    crypt_rng_free(h->crng);
    crypt_rng_free(h->srng);
    if (h->loop)
        ev_loop_destroy(h->loop);
    H = NULL;
}

static bool always(const struct harness *h)
{
    (void)h;
    return false;
}

/* ---- tests ---------------------------------------------------------------------------- */

TEST(shell_carries_streams_between_client_and_server_sessions)
{
    int level = log_threshold;
    log_set_level(LOG_LEVEL_WARN);
    struct harness *h = calloc(1, sizeof(*h));
    REQUIRE(h);
    if (!harness_init(h, 0, 300000) || !harness_streams(h, 0x5eed0001u)) {
        test_fail(__FILE__, __LINE__, "harness set-up failed");
        harness_free(h);
        free(h);
        return;
    }
    CHECK(run_until(h, apps_done, 20000));
    CHECK(run_until(h, streams_gone, 5000));
    for (int k = 0; k < NSTREAMS; k++) {
        CHECK_EQ(h->app[k].got, h->bytes);
        CHECK(!h->app[k].bad);
    }
    CHECK_EQ(h->accepted, NSTREAMS);
    CHECK_EQ(h->cli.nsess, 1);
    CHECK_EQ(h->srv.nsess, 1);
    struct snmp c, s;
    shell_snmp(&h->cli, &c);
    shell_snmp(&h->srv, &s);
    CHECK_EQ(c.v[SNMP_ACTIVE_OPENS], 1);
    CHECK_EQ(s.v[SNMP_PASSIVE_OPENS], 1);
    CHECK_EQ(c.v[SNMP_CURR_ESTAB], 1);
    CHECK(c.v[SNMP_OUT_PKTS] > 0 && s.v[SNMP_OUT_PKTS] > 0);
    CHECK(c.v[SNMP_BYTES_SENT] > 0);
    CHECK_EQ(s.v[SNMP_BYTES_RECEIVED], c.v[SNMP_BYTES_SENT]);
    uint64_t sent = c.v[SNMP_BYTES_SENT];
    /* a stranger's datagram to the client's socket: dropped and counted */
    struct sess *cs = h->cli.sessions;
    struct net_addr ca;
    socklen_t alen = sizeof(ca.ss);
    REQUIRE(getsockname(cs->udp->fd, (struct sockaddr *)&ca.ss, &alen) == 0);
    ca.len = alen;
    int stranger = net_udp_socket(AF_INET, NULL, NULL);
    REQUIRE(stranger >= 0);
    CHECK_EQ(sendto(stranger, "junk", 4, 0, (struct sockaddr *)&ca.ss, ca.len), 4);
    uint64_t errs = h->cli.base.v[SNMP_IN_ERRS];
    run_until(h, always, 100);
    CHECK_EQ(h->cli.base.v[SNMP_IN_ERRS], errs + 1);
    close(stranger);
    /* counters of a closed session stay in the totals */
    sess_close(cs, "test");
    shell_snmp(&h->cli, &c);
    CHECK_EQ(c.v[SNMP_CURR_ESTAB], 0);
    CHECK(c.v[SNMP_BYTES_SENT] >= sent);
    harness_free(h);
    CHECK_EQ(h->gone, 2);
    CHECK_EQ(h->shutdowns, 1);
    free(h);
    log_set_level((enum log_level)level);
}

TEST(shell_budget_stalls_sessions_and_wakes_them)
{
    int level = log_threshold;
    log_set_level(LOG_LEVEL_WARN);
    struct harness *h = calloc(1, sizeof(*h));
    REQUIRE(h);
    if (!harness_init(h, 65536, 3000000) || !harness_streams(h, 0x5eed0002u)) {
        test_fail(__FILE__, __LINE__, "harness set-up failed");
        harness_free(h);
        free(h);
        return;
    }
    /* the target does not read: socket buffers fill, then the server's budget */
    h->echo_paused = true;
    uint64_t end = shell_now_ms() + 10000;
    while (h->srv.budget.nstalled == 0 && shell_now_ms() < end) {
        ev_run(h->loop, EVRUN_ONCE);
        apps_service(h);
    }
    CHECK_EQ(h->srv.budget.nstalled, 1);
    CHECK(tunnel_budget_over(&h->srv.budget));
    h->echo_paused = false;
    CHECK(run_until(h, apps_done, 20000));
    for (int k = 0; k < NSTREAMS; k++) {
        CHECK_EQ(h->app[k].got, h->bytes);
        CHECK(!h->app[k].bad);
    }
    CHECK(run_until(h, streams_gone, 5000));
    CHECK_EQ(h->srv.budget.nstalled, 0);
    CHECK_EQ(h->srv.budget.used, 0);
    /* signals: counters to the log, log reopen, stop */
    raise(SIGUSR1);
    raise(SIGHUP);
    raise(SIGINT);
    run_until(h, always, 50);
    CHECK(h->cli.stopping && h->srv.stopping);
    harness_free(h);
    free(h);
    log_set_level((enum log_level)level);
}
