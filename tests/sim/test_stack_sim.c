/* SPDX-License-Identifier: MIT */
/* The whole stack in the simulator: the tunnel core (mux + compression + KCP + FEC + crypt),
 * many streams, loss. */
#include "common/err.h"
#include "common/tunnel.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSTREAMS 100
#define MAX_SID 1024

/* One direction of one stream: how much to send, how much arrived, whether EOF came. */
struct flow {
    size_t to_send, sent;
    size_t got;
    bool eof, closed, bad;
};

struct stack_params {
    const char *method;
    int ds, ps, smux_version;
    bool comp;
    double loss;
};

struct ep {
    struct vnet *net;
    int id;
    bool is_client;
    struct crypt *crypt;
    struct tunnel *t;
    struct flow tx[MAX_SID];   /* indexed by sid */
    struct flow rxf[MAX_SID];
    bool live[MAX_SID];
    int streams_done;
};

/* Deterministic content of byte |i| of stream |sid| in direction |up|. Half the streams carry
 * text-like (compressible) bytes, the others pseudo-random bytes. */
static uint8_t content(uint32_t sid, bool up, size_t i)
{
    if (sid % 4 == 1)
        return (uint8_t)("the quick brown fox jumps over the lazy dog "[i % 44]);
    uint64_t x = (uint64_t)sid * 0x9e3779b97f4a7c15ull ^ (up ? 0x5555 : 0xaaaa) ^ (i / 8) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 29;
    return (uint8_t)(x >> ((i % 8) * 8));
}

static size_t flow_size(uint32_t sid, bool up)
{
    /* 0 .. ~120 KB, a few bigger ones */
    size_t base = (size_t)((sid * 7919u + (up ? 13u : 101u)) % 120000u);
    return sid % 25 == 3 ? base + 400000 : base;
}

static void ep_output(void *user, const uint8_t *dgram, size_t len)
{
    struct ep *e = user;
    vnet_send(e->net, e->id, dgram, len);
}

static void on_open(void *user, uint32_t sid)
{
    struct ep *e = user;
    if (sid >= MAX_SID) {
        tunnel_stream_release(e->t, sid);
        return;
    }
    e->live[sid] = true;
    e->tx[sid] = (struct flow){.to_send = flow_size(sid, false)};
}

/* Reads what arrived on one stream and checks it. */
static void stream_read(struct ep *e, uint32_t sid)
{
    uint8_t buf[16384];
    struct flow *r = &e->rxf[sid];
    bool up = !e->is_client; /* we read what the other side wrote */
    ssize_t n;
    while (!r->eof && (n = tunnel_stream_read(e->t, sid, buf, sizeof(buf))) >= 0) {
        if (n == 0) {
            r->eof = true;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != content(sid, up, r->got + (size_t)i))
                r->bad = true;
        r->got += (size_t)n;
    }
}

/* Writes as much of one stream's flow as the tunnel has room for, then FIN. */
static void stream_write(struct ep *e, uint32_t sid)
{
    uint8_t buf[16384];
    struct flow *t = &e->tx[sid];
    size_t want;
    while (t->sent < t->to_send &&
           (want = tunnel_stream_room(e->t, sid, MIN(sizeof(buf), t->to_send - t->sent))) > 0) {
        for (size_t i = 0; i < want; i++)
            buf[i] = content(sid, e->is_client, t->sent + i);
        ssize_t w = tunnel_stream_write(e->t, sid, buf, want);
        if (w <= 0)
            break;
        t->sent += (size_t)w;
    }
    if (t->sent == t->to_send && !t->closed) {
        tunnel_stream_close(e->t, sid);
        t->closed = true;
    }
}

/* The application: every live stream reads, writes, and is released once both ways ended. */
static void ep_streams(void *user)
{
    struct ep *e = user;
    for (uint32_t sid = 0; sid < MAX_SID && !tunnel_is_dead(e->t); sid++) {
        if (!e->live[sid])
            continue;
        stream_read(e, sid);
        stream_write(e, sid);
        if (e->rxf[sid].eof && e->tx[sid].closed) {
            tunnel_stream_release(e->t, sid);
            e->live[sid] = false;
            e->streams_done++;
        }
    }
}

static const struct tunnel_callbacks tun_cb = {
    .output = ep_output, .on_stream_open = on_open, .on_deliver = ep_streams,
    .on_writable = ep_streams,
};

static void ep_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct ep *e = user;
    uint8_t copy[1600];
    (void)from;
    if (len > sizeof(copy))
        return;
    memcpy(copy, pkt, len);
    tunnel_input(e->t, copy, len, now);
    tunnel_pump(e->t, now);
}

static uint64_t ep_deadline(void *user, uint64_t now)
{
    struct ep *e = user;
    return tunnel_next_deadline(e->t, now);
}

static void ep_tick(void *user, uint64_t now)
{
    struct ep *e = user;
    tunnel_tick(e->t, now);
    tunnel_pump(e->t, now);
}

static bool ep_init(struct ep *e, struct vnet *net, bool is_client, const struct stack_params *p,
                    struct crypt *crypt)
{
    memset(e, 0, sizeof(*e));
    e->net = net;
    e->is_client = is_client;
    e->crypt = crypt;
    struct tunnel_config tc = {.nocomp = !p->comp};
    struct link_config *lc = &tc.link;
    link_config_default(lc);
    lc->data_shards = p->ds, lc->parity_shards = p->ps;
    lc->sndwnd = is_client ? 128 : 1024;
    lc->rcvwnd = is_client ? 512 : 1024;
    lc->nodelay = 1, lc->interval_ms = 10, lc->resend = 2, lc->nc = 1; /* fast3 */
    lc->wall_offset_ms = 1700000000000LL;
    mux_config_default(&tc.mux);
    tc.mux.version = p->smux_version;
    e->t = tunnel_new(0x1234567u, &tc, is_client, crypt, NULL, &tun_cb, e, 0, NULL);
    return e->t != NULL;
}

static void ep_free(struct ep *e)
{
    tunnel_free(e->t);
}

struct run {
    struct ep *cli, *srv;
};

static bool all_done(void *user)
{
    const struct run *r = user;
    return (r->cli->streams_done == NSTREAMS && r->srv->streams_done == NSTREAMS) ||
           tunnel_is_dead(r->cli->t) || tunnel_is_dead(r->srv->t);
}

static void run_stack(const struct stack_params *p, uint64_t seed)
{
    int err = 0;
    struct crypt *cc = crypt_new(p->method, "stack test key", crypt_rng_sodium, NULL, &err);
    struct crypt *sc = crypt_new(p->method, "stack test key", crypt_rng_sodium, NULL, &err);
    REQUIRE(cc && sc);
    crypt_set_role(cc, CRYPT_ROLE_CLIENT);
    crypt_set_role(sc, CRYPT_ROLE_SERVER);
    struct vnet *net = vnet_new(vnet_seed_from_env(seed));
    struct ep *cli = calloc(1, sizeof(*cli)), *srv = calloc(1, sizeof(*srv));
    REQUIRE(net && cli && srv);
    static const struct vnet_endpoint_cb cb = {ep_deliver, ep_deadline, ep_tick};
    REQUIRE(ep_init(cli, net, true, p, cc) && ep_init(srv, net, false, p, sc));
    cli->id = vnet_add_endpoint(net, &cb, cli);
    srv->id = vnet_add_endpoint(net, &cb, srv);
    struct vnet_link_cfg lk = {.loss = p->loss, .delay_ms = 20, .jitter_ms = 4, .reorder = 0.02,
                               .dup = 0.01};
    vnet_link_set_both(net, cli->id, srv->id, &lk);

    size_t total = 0;
    for (int i = 0; i < NSTREAMS; i++) {
        uint32_t sid;
        REQUIRE(tunnel_stream_open(cli->t, &sid) == 0 && sid < MAX_SID);
        cli->live[sid] = true;
        cli->tx[sid] = (struct flow){.to_send = flow_size(sid, true)};
        total += flow_size(sid, true) + flow_size(sid, false);
    }
    tunnel_pump(cli->t, 0);
    struct run r = {cli, srv};
    enum vnet_result res = vnet_run(net, 600000, all_done, &r);
    uint64_t ms = vnet_now(net);

    struct tunnel_stats cts, sts;
    tunnel_get_stats(cli->t, &cts);
    tunnel_get_stats(srv->t, &sts);
    const struct link_stats *cs = &cts.link, *ss = &sts.link;
    printf("    sim: stack %s fec %d/%d smux v%d comp %s loss %.0f%%: %d+%d streams, %zu bytes in %llu ms "
           "virtual (%s); FEC recovered %llu+%llu, retrans %llu+%llu, seed %llu\n",
           p->method, p->ds, p->ps, p->smux_version, p->comp ? "on" : "off", p->loss * 100,
           cli->streams_done, srv->streams_done, total, (unsigned long long)ms,
           vnet_result_str(res), (unsigned long long)cs->fec.recovered,
           (unsigned long long)ss->fec.recovered, (unsigned long long)cs->kcp.retrans_segs,
           (unsigned long long)ss->kcp.retrans_segs, (unsigned long long)vnet_seed(net));
    CHECK(!tunnel_is_dead(cli->t) && !tunnel_is_dead(srv->t));
    if (tunnel_is_dead(cli->t) || tunnel_is_dead(srv->t))
        printf("    session died: %s\n", tunnel_is_dead(cli->t) ? tunnel_dead_reason(cli->t)
                                                                : tunnel_dead_reason(srv->t));
    CHECK_EQ(res, VNET_DONE);
    CHECK_EQ(cli->streams_done, NSTREAMS);
    CHECK_EQ(srv->streams_done, NSTREAMS);
    for (uint32_t sid = 0; sid < MAX_SID; sid++) {
        const struct flow *up = &srv->rxf[sid], *down = &cli->rxf[sid];
        CHECK(!up->bad && !down->bad);
        if (cli->tx[sid].to_send) {
            CHECK_EQ(up->got, cli->tx[sid].to_send);
            CHECK_EQ(down->got, srv->tx[sid].to_send);
        }
    }
    if (p->ds > 0 && p->loss > 0)
        CHECK(cs->fec.recovered + ss->fec.recovered > 0);
    /* Nothing was refused but duplicates, which the secure mode counts as replays. */
    const struct crypt_stats *ccs = crypt_get_stats(cc), *scs = crypt_get_stats(sc);
    CHECK_EQ(cs->in_errs + ss->in_errs, ccs->in_replays + scs->in_replays);
    CHECK_EQ(ccs->in_csum_errors + scs->in_csum_errors + ccs->in_auth_errors + scs->in_auth_errors, 0);
    if (test_failures())
        printf("    replay with SIM_SEED=%llu\n", (unsigned long long)vnet_seed(net));

    ep_free(cli);
    ep_free(srv);
    free(cli);
    free(srv);
    vnet_free(net);
    crypt_free(cc);
    crypt_free(sc);
}

TEST(stack_sim_100_streams_10pct_aes_fec_comp_v2)
{
    struct stack_params p = {"aes", 10, 3, 2, true, 0.10};
    run_stack(&p, 11);
}

TEST(stack_sim_100_streams_10pct_salsa20_nofec_nocomp_v1)
{
    struct stack_params p = {"salsa20", 0, 0, 1, false, 0.10};
    run_stack(&p, 12);
}

TEST(stack_sim_100_streams_10pct_secure_fec_comp_v1)
{
    struct stack_params p = {"xsalsa20-poly1305", 10, 3, 1, true, 0.10};
    run_stack(&p, 13);
}
