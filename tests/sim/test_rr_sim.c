/* SPDX-License-Identifier: MIT */
/* Simulator: small request/response messages over the full datagram stack (KCP + FEC + crypt)
 * on the benchmark's link, ktun's sending (pacing, FEC hold) against kcp-go's. */
#include "common/link.h"
#include "crypto/crypt.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RR_MAX 16384

struct rr_end {
    struct vnet *net;
    struct link *link;
    int id;
    bool client;
    /* client: message schedule and results */
    uint64_t interval_ms, next_ms, stop_ms;
    size_t msg;          /* message size, <= 4096 */
    uint32_t sent, done;
    uint64_t sent_ms[RR_MAX];
    uint32_t lat[RR_MAX];
    size_t partial;      /* bytes of the current echoed message */
    bool corrupt;
};

static void rr_out(void *user, const uint8_t *dgram, size_t len)
{
    struct rr_end *e = user;
    vnet_send(e->net, e->id, dgram, len);
}

static void rr_pump(struct rr_end *e, uint64_t now)
{
    uint8_t buf[4096];
    ssize_t r;
    bool queued = false;
    if (e->client && now >= e->next_ms && now < e->stop_ms && e->sent < RR_MAX) {
        memset(buf, (int)(e->sent & 0xff), e->msg);
        if (link_send(e->link, buf, e->msg) == 0) {
            e->sent_ms[e->sent++] = now;
            queued = true;
        }
        e->next_ms += e->interval_ms;
    }
    while ((r = link_recv(e->link, buf, sizeof(buf))) > 0) {
        if (!e->client) { /* echo */
            if (link_send(e->link, buf, (size_t)r) == 0)
                queued = true;
            continue;
        }
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] != (uint8_t)(e->done & 0xff))
                e->corrupt = true;
            if (++e->partial == e->msg) {
                e->partial = 0;
                if (e->done < e->sent)
                    e->lat[e->done] = (uint32_t)(now - e->sent_ms[e->done]);
                e->done++;
            }
        }
    }
    if (queued)
        link_flush(e->link, now);
}

static void rr_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    (void)from;
    struct rr_end *e = user;
    uint8_t tmp[2048];
    if (len > sizeof(tmp))
        return;
    memcpy(tmp, pkt, len);
    link_input(e->link, tmp, len, now);
    rr_pump(e, now);
}

static uint64_t rr_deadline(void *user, uint64_t now)
{
    struct rr_end *e = user;
    uint64_t d = link_next_deadline(e->link, now);
    if (e->client && e->next_ms < e->stop_ms && e->sent < RR_MAX && e->next_ms < d)
        d = e->next_ms;
    return d;
}

static void rr_tick(void *user, uint64_t now)
{
    struct rr_end *e = user;
    link_tick(e->link, now);
    rr_pump(e, now);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

struct rr_result {
    uint32_t p50, p99, max, lost;
};

/* |msg|-byte messages every |gap| ms for |secs| over 25 ms each way, 50 Mbit/s with a one-BDP
 * queue and |loss| each way; fast3, FEC 10/3, crypt none; |ktun| picks pacing + FEC hold. */
static void rr_run(bool ktun, size_t msg, uint64_t gap, double loss, uint64_t secs,
                   uint64_t seed, struct rr_result *out)
{
    struct rr_result res = {0};
    *out = res;
    int err = 0;
    struct crypt *cc = crypt_new("none", "rr", crypt_rng_sodium, NULL, &err);
    struct crypt *sc = crypt_new("none", "rr", crypt_rng_sodium, NULL, &err);
    struct vnet *net = vnet_new(vnet_seed_from_env(seed));
    struct rr_end *cli = calloc(1, sizeof(*cli)), *srv = calloc(1, sizeof(*srv));
    REQUIRE(cc && sc && net && cli && srv);
    crypt_set_role(cc, CRYPT_ROLE_CLIENT);
    crypt_set_role(sc, CRYPT_ROLE_SERVER);
    struct link_config lc;
    link_config_default(&lc);
    lc.nodelay = 1, lc.interval_ms = 10, lc.resend = 2, lc.nc = 1; /* fast3 */
    lc.pace = ktun;
    lc.no_fec_hold = !ktun;
    cli->link = link_new(9, &lc, cc, rr_out, cli, NULL);
    lc.sndwnd = 1024, lc.rcvwnd = 1024;
    srv->link = link_new(9, &lc, sc, rr_out, srv, NULL);
    REQUIRE(cli->link && srv->link);
    static const struct vnet_endpoint_cb cb = {rr_deliver, rr_deadline, rr_tick};
    cli->net = srv->net = net;
    cli->client = true;
    cli->interval_ms = gap;
    cli->msg = msg;
    cli->next_ms = 1000;
    cli->stop_ms = 1000 + secs * 1000;
    cli->id = vnet_add_endpoint(net, &cb, cli);
    srv->id = vnet_add_endpoint(net, &cb, srv);
    struct vnet_link_cfg lk = {.loss = loss, .delay_ms = 25, .rate_bps = 50000000,
                               .queue_bytes = 312500};
    vnet_link_set_both(net, cli->id, srv->id, &lk);
    vnet_run(net, cli->stop_ms + 5000, NULL, NULL);
    CHECK(!cli->corrupt);
    CHECK(cli->sent > 0);
    CHECK_EQ(cli->done, cli->sent); /* every message came back, in order */
    uint32_t n = cli->done < cli->sent ? cli->done : cli->sent;
    res.lost = cli->sent - n;
    if (n) {
        qsort(cli->lat, n, sizeof(cli->lat[0]), cmp_u32);
        res.p50 = cli->lat[n / 2];
        res.p99 = cli->lat[(n * 99) / 100];
        res.max = cli->lat[n - 1];
    }
    link_free(cli->link);
    link_free(srv->link);
    free(cli);
    free(srv);
    vnet_free(net);
    crypt_free(cc);
    crypt_free(sc);
    *out = res;
}

static void rr_compare(size_t msg, uint64_t gap)
{
    static const double losses[] = {0, 0.01, 0.05, 0.10};
    for (size_t i = 0; i < sizeof(losses) / sizeof(losses[0]); i++) {
        struct rr_result k, g;
        rr_run(true, msg, gap, losses[i], 60, 21 + i, &k);
        rr_run(false, msg, gap, losses[i], 60, 21 + i, &g);
        printf("    sim: rr %zu B / %llu ms, loss %2.0f%%: ktun p50 %u p99 %u max %u ms; "
               "kcp-go sending p50 %u p99 %u max %u ms\n",
               msg, (unsigned long long)gap, losses[i] * 100, k.p50, k.p99, k.max, g.p50, g.p99,
               g.max);
        /* the floor is the path's RTT: nothing can come back sooner */
        CHECK(k.p50 >= 50 && g.p50 >= 50);
    }
}

TEST(rr_sim_small_messages_over_lossy_link)
{
    rr_compare(64, 20);
}

TEST(rr_sim_larger_messages_more_often)
{
    rr_compare(1024, 5);
}
