/* SPDX-License-Identifier: MIT */
/* The tunnel core in virtual time: keepalive expiry, restart detection (conv replacement),
 * receive-budget back-pressure. */
#include "common/err.h"
#include "common/tunnel.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SID 64
#define WALL_OFFSET 1700000000000LL

/* One side: a tunnel plus a toy application that reads (and checks) every stream and, on the
 * client, writes a fixed amount on each stream it opened. */
struct side {
    struct vnet *net;
    int id;
    bool is_client;
    struct crypt *crypt;
    struct tunnel_config cfg;
    struct tunnel_budget *budget;
    struct tunnel *t;
    bool listener;            /* route datagrams with tunnel_route, as a server does */
    bool reading;             /* the application reads its streams */
    size_t to_send[MAX_SID];  /* bytes to write per stream (client) */
    size_t sent[MAX_SID];
    size_t got[MAX_SID];      /* bytes read per stream */
    bool bad;                 /* a byte read was not the one written */
    bool live[MAX_SID];
    int routes[5];            /* listener: datagrams per enum tunnel_route */
    uint64_t died_ms;         /* virtual time the tunnel was seen dead, 0 while alive */
    const char *died_reason;
};

static uint8_t pattern(uint32_t sid, size_t i)
{
    return (uint8_t)(i * 131u + sid * 7u + (i >> 9));
}

static void side_output(void *user, const uint8_t *dgram, size_t len)
{
    struct side *s = user;
    vnet_send(s->net, s->id, dgram, len);
}

static void side_open(void *user, uint32_t sid)
{
    struct side *s = user;
    if (sid >= MAX_SID) {
        tunnel_stream_release(s->t, sid);
        return;
    }
    s->live[sid] = true;
}

static void side_streams(void *user)
{
    struct side *s = user;
    uint8_t buf[8192];
    for (uint32_t sid = 0; sid < MAX_SID; sid++) {
        if (!s->live[sid])
            continue;
        ssize_t n;
        while (s->reading && (n = tunnel_stream_read(s->t, sid, buf, sizeof(buf))) > 0) {
            for (ssize_t i = 0; i < n; i++)
                s->bad |= buf[i] != pattern(sid, s->got[sid] + (size_t)i);
            s->got[sid] += (size_t)n;
        }
        size_t want;
        while (s->sent[sid] < s->to_send[sid] &&
               (want = tunnel_stream_room(s->t, sid, MIN(sizeof(buf),
                                                         s->to_send[sid] - s->sent[sid]))) > 0) {
            for (size_t i = 0; i < want; i++)
                buf[i] = pattern(sid, s->sent[sid] + i);
            ssize_t w = tunnel_stream_write(s->t, sid, buf, want);
            if (w <= 0)
                break;
            s->sent[sid] += (size_t)w;
        }
    }
}

static const struct tunnel_callbacks side_cb = {
    .output = side_output, .on_stream_open = side_open, .on_deliver = side_streams,
    .on_writable = side_streams,
};

static bool side_start(struct side *s, uint32_t conv, uint64_t now)
{
    memset(s->live, 0, sizeof(s->live));
    memset(s->sent, 0, sizeof(s->sent));
    memset(s->got, 0, sizeof(s->got));
    memset(s->to_send, 0, sizeof(s->to_send));
    s->t = tunnel_new(conv, &s->cfg, s->is_client, s->crypt, s->budget, &side_cb, s, now, NULL);
    return s->t != NULL;
}

/* Pumps |s| and, like the shell, wakes it when the shared budget has room again. */
static void side_pump(struct side *s, uint64_t now)
{
    if (!s->t)
        return;
    tunnel_pump(s->t, now);
    if (!tunnel_budget_over(s->budget) && tunnel_unstall(s->t))
        tunnel_pump(s->t, now);
    if (tunnel_is_dead(s->t) && !s->died_ms) {
        s->died_ms = now;
        s->died_reason = tunnel_dead_reason(s->t);
    }
}

/* A listener's receive path: open, route by conv, create or replace the tunnel. */
static void side_listen(struct side *s, uint8_t *p, size_t len, uint64_t now)
{
    const uint8_t *payload;
    ssize_t plen = crypt_open(s->crypt, p, len, now + WALL_OFFSET, &payload);
    if (plen < 0)
        return;
    uint32_t conv;
    enum tunnel_route r = tunnel_route(s->t, payload, (size_t)plen, &conv);
    s->routes[r]++;
    if (r == TUNNEL_ROUTE_DROP || r == TUNNEL_ROUTE_IGNORE)
        return;
    if (r == TUNNEL_ROUTE_REPLACE) {
        tunnel_free(s->t);
        s->t = NULL;
    }
    if (!s->t && !side_start(s, conv, now))
        return;
    tunnel_input_payload(s->t, payload, (size_t)plen, now);
}

static void side_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct side *s = user;
    uint8_t copy[1600];
    (void)from;
    if (len > sizeof(copy) || (s->t && tunnel_is_dead(s->t)))
        return;
    memcpy(copy, pkt, len);
    if (s->listener)
        side_listen(s, copy, len, now);
    else if (s->t)
        tunnel_input(s->t, copy, len, now);
    side_pump(s, now);
}

static uint64_t side_deadline(void *user, uint64_t now)
{
    struct side *s = user;
    return s->t && !tunnel_is_dead(s->t) ? tunnel_next_deadline(s->t, now) : UINT64_MAX;
}

static void side_tick(void *user, uint64_t now)
{
    struct side *s = user;
    tunnel_tick(s->t, now);
    side_pump(s, now);
}

static const struct vnet_endpoint_cb vnet_cb = {side_deliver, side_deadline, side_tick};

struct pair {
    struct vnet *net;
    struct crypt *cc, *sc;
    struct side cli, srv;
};

static void side_config(struct side *s, int rcvwnd)
{
    link_config_default(&s->cfg.link);
    s->cfg.link.nodelay = 1, s->cfg.link.interval_ms = 10, s->cfg.link.resend = 2;
    s->cfg.link.nc = 1;
    s->cfg.link.rcvwnd = rcvwnd;
    s->cfg.link.wall_offset_ms = WALL_OFFSET;
    mux_config_default(&s->cfg.mux);
    s->reading = true;
}

/* A client and a listening server 20 ms apart; the server's tunnel appears with the first
 * datagram. */
static bool pair_init(struct pair *p, uint64_t seed, int srv_rcvwnd)
{
    memset(p, 0, sizeof(*p));
    int err = 0;
    p->cc = crypt_new("aes", "tunnel test key", crypt_rng_sodium, NULL, &err);
    p->sc = crypt_new("aes", "tunnel test key", crypt_rng_sodium, NULL, &err);
    p->net = vnet_new(vnet_seed_from_env(seed));
    if (!p->cc || !p->sc || !p->net)
        return false;
    crypt_set_role(p->cc, CRYPT_ROLE_CLIENT);
    crypt_set_role(p->sc, CRYPT_ROLE_SERVER);
    p->cli = (struct side){.net = p->net, .is_client = true, .crypt = p->cc};
    p->srv = (struct side){.net = p->net, .crypt = p->sc, .listener = true};
    side_config(&p->cli, 512);
    side_config(&p->srv, srv_rcvwnd);
    p->cli.id = vnet_add_endpoint(p->net, &vnet_cb, &p->cli);
    p->srv.id = vnet_add_endpoint(p->net, &vnet_cb, &p->srv);
    struct vnet_link_cfg lk = {.delay_ms = 20, .jitter_ms = 2};
    vnet_link_set_both(p->net, p->cli.id, p->srv.id, &lk);
    return side_start(&p->cli, 0x11111111u, 0);
}

static void pair_free(struct pair *p)
{
    if (test_failures())
        printf("    replay with SIM_SEED=%llu\n", (unsigned long long)vnet_seed(p->net));
    tunnel_free(p->cli.t);
    tunnel_free(p->srv.t);
    vnet_free(p->net);
    crypt_free(p->cc);
    crypt_free(p->sc);
}

/* Opens a client stream that will carry |bytes|. */
static uint32_t client_stream(struct side *c, size_t bytes, uint64_t now)
{
    uint32_t sid = 0;
    if (tunnel_stream_open(c->t, &sid) != 0 || sid >= MAX_SID)
        return 0;
    c->live[sid] = true;
    c->to_send[sid] = bytes;
    side_pump(c, now);
    return sid;
}

static bool srv_got(void *user)
{
    const struct pair *p = user;
    size_t sum = 0;
    for (uint32_t sid = 0; sid < MAX_SID; sid++)
        sum += p->srv.got[sid];
    return sum > 0 && sum == p->cli.to_send[3] + p->cli.to_send[5];
}

static bool anyone_dead(void *user)
{
    const struct pair *p = user;
    return p->cli.died_ms || p->srv.died_ms;
}

TEST(tunnel_sim_keepalive_keeps_an_idle_tunnel_and_expires_a_silent_peer)
{
    struct pair p;
    REQUIRE(pair_init(&p, 21, 512));
    uint32_t sid = client_stream(&p.cli, 10000, 0);
    REQUIRE(sid == 3);
    CHECK_EQ(vnet_run(p.net, 60000, srv_got, &p), VNET_DONE);
    /* idle for two minutes: the NOPs every 10 s keep both ends alive */
    vnet_run(p.net, 180000, anyone_dead, &p);
    CHECK(!p.cli.died_ms && !p.srv.died_ms);
    CHECK(vnet_now(p.net) >= 180000);
    /* the client goes silent (its datagrams are lost): the server's check finds no frame in
     * one 30 s timeout and kills its tunnel; the client, still hearing NOPs, lives on */
    uint64_t cut = vnet_now(p.net);
    struct vnet_link_cfg lost = {.loss = 1.0};
    vnet_link_set(p.net, p.cli.id, p.srv.id, &lost);
    CHECK_EQ(vnet_run(p.net, cut + 120000, anyone_dead, &p), VNET_DONE);
    /* the first check after the cut may still see a frame sent just before it */
    CHECK(p.srv.died_ms > cut + 30000 && p.srv.died_ms <= cut + 60000 + 100);
    CHECK(p.srv.died_reason && strcmp(p.srv.died_reason, "keepalive timeout") == 0);
    CHECK(!p.cli.died_ms);
    struct tunnel_stats st;
    tunnel_get_stats(p.srv.t, &st);
    CHECK_EQ(st.mux.keepalive_timeouts, 1);
    CHECK(!tunnel_pump(p.srv.t, vnet_now(p.net)));
    pair_free(&p);
}

/* Captures the datagrams of a tunnel that is not connected to the simulator. */
struct capture {
    uint8_t last[1600];
    size_t last_len;
    int count;
};

/* Keeps the third datagram (one segment each: sn 2). */
static void capture_output(void *user, const uint8_t *dgram, size_t len)
{
    struct capture *c = user;
    if (len > sizeof(c->last) || ++c->count != 3)
        return;
    memcpy(c->last, dgram, len);
    c->last_len = len;
}

/* The client restarts on the same address with a new conv: the listener replaces its tunnel
 * when the new conv's first segment (sn 0) arrives, and drops late segments of the old one. */
TEST(tunnel_sim_restart_replaces_the_tunnel_and_drops_the_old_conv)
{
    struct pair p;
    REQUIRE(pair_init(&p, 22, 512));
    client_stream(&p.cli, 50000, 0);
    CHECK_EQ(vnet_run(p.net, 60000, srv_got, &p), VNET_DONE);
    CHECK_EQ(p.srv.got[3], 50000);
    CHECK_EQ(p.srv.routes[TUNNEL_ROUTE_NEW], 1);
    CHECK_EQ(p.srv.routes[TUNNEL_ROUTE_REPLACE], 0);
    CHECK_EQ(tunnel_conv(p.srv.t), 0x11111111u);
    /* restart: the client's tunnel goes away silently; a new conv from the same address */
    tunnel_free(p.cli.t);
    REQUIRE(side_start(&p.cli, 0x22222222u, vnet_now(p.net)));
    client_stream(&p.cli, 30000, vnet_now(p.net));
    CHECK_EQ(vnet_run(p.net, vnet_now(p.net) + 60000, srv_got, &p), VNET_DONE);
    CHECK_EQ(p.srv.routes[TUNNEL_ROUTE_REPLACE], 1);
    CHECK_EQ(tunnel_conv(p.srv.t), 0x22222222u);
    CHECK_EQ(p.srv.got[3], 30000);
    CHECK(!p.srv.bad && !p.srv.died_ms);
    /* a late datagram of the first conversation, mid-stream (sn > 0): dropped and counted,
     * the new tunnel stays */
    struct capture cap = {0};
    struct tunnel_callbacks cb = {.output = capture_output};
    uint64_t now = vnet_now(p.net);
    struct tunnel_config gc = p.cli.cfg;
    gc.link.pace = false; /* kcp-go's fixed window: the whole window leaves at once */
    gc.link.no_fec_hold = true;
    gc.nocomp = true;         /* the zeros below would shrink to one datagram */
    struct tunnel *ghost = tunnel_new(0x11111111u, &gc, true, p.cc, NULL, &cb, &cap, now, NULL);
    REQUIRE(ghost);
    uint32_t sid;
    static uint8_t junk[20000];
    REQUIRE(tunnel_stream_open(ghost, &sid) == 0);
    CHECK_EQ(tunnel_stream_write(ghost, sid, junk, sizeof(junk)), (long long)sizeof(junk));
    for (uint64_t t = now; t < now + 100 && cap.count < 3; t += 10) {
        tunnel_tick(ghost, t);
        tunnel_pump(ghost, t);
    }
    REQUIRE(cap.count >= 3);
    int drops = p.srv.routes[TUNNEL_ROUTE_DROP];
    side_deliver(&p.srv, p.cli.id, cap.last, cap.last_len, now);
    CHECK_EQ(p.srv.routes[TUNNEL_ROUTE_DROP], drops + 1);
    CHECK_EQ(tunnel_conv(p.srv.t), 0x22222222u);
    tunnel_free(ghost);
    /* no tunnel at all: a datagram too short to route is dropped, a new conv opens one */
    uint32_t conv = 1;
    CHECK_EQ(tunnel_route(NULL, junk, 3, &conv), TUNNEL_ROUTE_DROP);
    pair_free(&p);
}

/* A server application that stops reading: the shared budget stops the tunnel taking bytes
 * from KCP, the client's writes stall instead of memory growing; reading again resumes the
 * transfer without loss. */
TEST(tunnel_sim_budget_back_pressure_stalls_and_resumes)
{
    struct pair p;
    struct tunnel_budget budget = {.limit = 200000};
    REQUIRE(pair_init(&p, 23, 128));
    p.srv.budget = &budget;
    p.srv.reading = false;
    client_stream(&p.cli, 1500000, 0);
    client_stream(&p.cli, 700000, 0);
    CHECK_EQ(vnet_run(p.net, 5000, srv_got, &p), VNET_TIMEOUT);
    REQUIRE(p.srv.t);
    struct tunnel_stats st;
    tunnel_get_stats(p.srv.t, &st);
    /* the shared count is brought up to date once per pump, so one pump may overshoot by
     * what KCP held: its receive queue and its reordering buffer, a window each */
    size_t window = 2u * 128u * 1400u + TUNNEL_RX_BUF;
    CHECK(budget.used >= budget.limit);
    CHECK(budget.used <= budget.limit + window);
    CHECK_EQ(budget.used, st.mux.rx_buffered);
    CHECK(tunnel_is_stalled(p.srv.t));
    CHECK_EQ(budget.nstalled, 1);
    /* stalled for good: three more seconds bring nothing from KCP */
    uint64_t stall_bytes = st.bytes_received;
    vnet_run(p.net, 8000, NULL, NULL);
    tunnel_get_stats(p.srv.t, &st);
    CHECK_EQ(st.bytes_received, stall_bytes);
    CHECK(tunnel_is_stalled(p.srv.t));
    /* the application reads again: the next datagram or tick pumps, the tunnel unstalls */
    p.srv.reading = true;
    CHECK_EQ(vnet_run(p.net, 120000, srv_got, &p), VNET_DONE);
    CHECK_EQ(p.srv.got[3], 1500000);
    CHECK_EQ(p.srv.got[5], 700000);
    CHECK(!p.srv.bad);
    CHECK(!tunnel_is_stalled(p.srv.t));
    CHECK_EQ(budget.nstalled, 0);
    CHECK_EQ(budget.used, 0);
    tunnel_free(p.srv.t);
    p.srv.t = NULL;
    CHECK_EQ(budget.used, 0);
    pair_free(&p);
}

/* Receive windows that grow with the path take what they grow by from the shared budget, half
 * of it at most for all of them, and give it back when their tunnel goes. Two servers share
 * a budget of 1 MB (each alone could grow to 1 MB, link_config.rcv_budget): bulk transfers
 * through each in turn, 20 ms each way at 100 Mbit/s with 10 % loss, whose bandwidth-delay
 * product (500 KB, holes included) is more than the configured 128-segment window. */
TEST(tunnel_sim_grown_windows_come_from_the_budget)
{
    struct pair p[2];
    struct tunnel_budget budget = {.limit = 1000000};
    uint64_t after_first = 0;
    for (int i = 0; i < 2; i++) {
        REQUIRE(pair_init(&p[i], 31 + (uint64_t)i, 128));
        p[i].srv.budget = &budget;
        p[i].srv.cfg.link.rcv_budget = (int64_t)budget.limit;
        struct vnet_link_cfg lk = {.loss = 0.1, .delay_ms = 20, .rate_bps = 100000000,
                                   .queue_bytes = 500000};
        vnet_link_set_both(p[i].net, p[i].cli.id, p[i].srv.id, &lk);
        client_stream(&p[i].cli, 6000000, 0);
        client_stream(&p[i].cli, 2000000, 0);
        CHECK_EQ(vnet_run(p[i].net, 60000, srv_got, &p[i]), VNET_DONE);
        CHECK_EQ(p[i].srv.got[3], 6000000);
        CHECK(!p[i].srv.bad);
        printf("    after transfer %d: %llu bytes of grown windows reserved\n", i + 1,
               (unsigned long long)budget.reserved);
        CHECK(budget.reserved <= budget.limit / 2);
        if (i == 0)
            after_first = budget.reserved;
    }
    CHECK(after_first > 100000); /* the first window did grow */
    uint64_t both = budget.reserved;
    CHECK(both >= after_first);
    tunnel_free(p[0].srv.t); /* the first gives its part back */
    p[0].srv.t = NULL;
    CHECK_EQ(budget.reserved, both - after_first);
    tunnel_free(p[1].srv.t);
    p[1].srv.t = NULL;
    CHECK_EQ(budget.reserved, 0);
    CHECK_EQ(budget.used, 0);
    pair_free(&p[0]);
    pair_free(&p[1]);
}
