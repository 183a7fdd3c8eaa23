/* SPDX-License-Identifier: MIT */
/* Simulator: small request/response messages over the full datagram stack (KCP + FEC + crypt)
 * on the benchmark's link, ktun's sending (pacing, FEC hold) against kcp-go's. */
#include "common/link.h"
#include "tests/sim/linkpair.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RR_MAX 16384

struct rr_end {
    struct sim_end end; /* first: the glue calls back with it */
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

static void rr_pump(struct sim_end *se, uint64_t now)
{
    struct rr_end *e = (struct rr_end *)se;
    uint8_t buf[4096];
    ssize_t r;
    bool queued = false;
    if (e->client && now >= e->next_ms && now < e->stop_ms && e->sent < RR_MAX) {
        memset(buf, (int)(e->sent & 0xff), e->msg);
        if (link_send(se->link, buf, e->msg) == 0) {
            e->sent_ms[e->sent++] = now;
            queued = true;
        }
        e->next_ms += e->interval_ms;
    }
    while ((r = link_recv(se->link, buf, sizeof(buf))) > 0) {
        if (!e->client) { /* echo */
            if (link_send(se->link, buf, (size_t)r) == 0)
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
        link_flush(se->link, now);
}

static uint64_t rr_next(struct sim_end *se, uint64_t now)
{
    (void)now;
    struct rr_end *e = (struct rr_end *)se;
    return e->client && e->next_ms < e->stop_ms && e->sent < RR_MAX ? e->next_ms : UINT64_MAX;
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
    struct vnet *net = vnet_new(vnet_seed_from_env(seed));
    struct rr_end *cli = calloc(1, sizeof(*cli)), *srv = calloc(1, sizeof(*srv));
    REQUIRE(net && cli && srv);
    struct link_config lc;
    sim_link_config(&lc, ktun);
    cli->end.pump = srv->end.pump = rr_pump;
    cli->end.deadline = rr_next;
    cli->client = true;
    cli->interval_ms = gap;
    cli->msg = msg;
    cli->next_ms = 1000;
    cli->stop_ms = 1000 + secs * 1000;
    struct vnet_link_cfg lk = {.loss = loss, .delay_ms = 25, .rate_bps = 50000000,
                               .queue_bytes = 312500};
    REQUIRE(sim_pair_open(net, &cli->end, &srv->end, &lc, &lk, 9) == 0);
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
    sim_pair_close(&cli->end, &srv->end);
    free(cli);
    free(srv);
    vnet_free(net);
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
