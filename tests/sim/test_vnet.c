/* SPDX-License-Identifier: MIT */
/* Tests for the network simulator itself: timing, loss, duplication, rate cap, replayability. */
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <string.h>

/* A sender that emits |count| numbered packets, one every |gap_ms|, and a receiver that logs. */
struct pinger {
    struct vnet *net;
    int id;
    uint64_t next_ms;  /* when the next packet goes out */
    uint32_t gap_ms;
    uint32_t count;    /* packets left to send */
    uint32_t sent;     /* packets sent so far (the number carried) */
    size_t size;       /* packet size */
    uint32_t got;      /* packets received */
    uint64_t first_ms; /* first arrival */
    uint64_t last_ms;  /* last arrival */
    uint32_t order_breaks; /* arrivals with a lower number than the previous one */
    uint32_t last_num;
    uint64_t sum;      /* order-independent checksum of received numbers */
};

static void ping_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct pinger *p = user;
    (void)from;
    uint32_t num = 0;
    if (len >= 4)
        memcpy(&num, pkt, 4);
    if (p->got == 0)
        p->first_ms = now_ms;
    else if (num < p->last_num)
        p->order_breaks++;
    p->last_num = num;
    p->last_ms = now_ms;
    p->got++;
    p->sum += num;
}

static uint64_t ping_deadline(void *user, uint64_t now_ms)
{
    struct pinger *p = user;
    (void)now_ms;
    return p->count ? p->next_ms : VNET_NEVER;
}

static void ping_tick(void *user, uint64_t now_ms)
{
    struct pinger *p = user;
    uint8_t buf[1500] = {0};
    uint32_t num = ++p->sent;
    p->count--;
    memcpy(buf, &num, 4);
    vnet_send(p->net, p->id, buf, p->size);
    p->next_ms = now_ms + p->gap_ms;
}

static const struct vnet_endpoint_cb ping_cb = {ping_deliver, ping_deadline, ping_tick};

static struct vnet *make_pair(uint64_t seed, struct pinger *a, struct pinger *b)
{
    struct vnet *net = vnet_new(seed);
    if (!net)
        return NULL;
    a->net = b->net = net;
    a->id = vnet_add_endpoint(net, &ping_cb, a);
    b->id = vnet_add_endpoint(net, &ping_cb, b);
    return net;
}

TEST(vnet_fixed_delay_and_idle)
{
    struct pinger a = {.count = 10, .gap_ms = 5, .size = 100}, b = {0};
    struct vnet *net = make_pair(1, &a, &b);
    REQUIRE(net);
    struct vnet_link_cfg lc = {.delay_ms = 30};
    vnet_link_set(net, 0, 1, &lc);
    CHECK_EQ(vnet_run(net, 100000, NULL, NULL), VNET_IDLE);
    CHECK_EQ(b.got, 10);
    CHECK_EQ(b.first_ms, 30);
    CHECK_EQ(b.last_ms, 30 + 9 * 5);
    CHECK_EQ(b.order_breaks, 0);
    CHECK_EQ(vnet_now(net), 75);
    struct vnet_link_stats s = vnet_link_stats(net, 0, 1);
    CHECK_EQ(s.sent, 10);
    CHECK_EQ(s.delivered, 10);
    CHECK_EQ(s.bytes_delivered, 1000);
    CHECK_EQ(vnet_endpoint_stats(net, 0).ticks, 10);
    CHECK_EQ(vnet_endpoint_stats(net, 1).delivered, 10);
    vnet_free(net);
}

TEST(vnet_loss_dup_reorder_rates)
{
    uint64_t seed = vnet_seed_from_env(7);
    struct pinger a = {.count = 20000, .gap_ms = 1, .size = 64}, b = {0};
    struct vnet *net = make_pair(seed, &a, &b);
    REQUIRE(net);
    struct vnet_link_cfg lc = {.loss = 0.2, .delay_ms = 10, .jitter_ms = 3, .dup = 0.1,
                               .reorder = 0.05};
    vnet_link_set(net, 0, 1, &lc);
    CHECK_EQ(vnet_run(net, 10000000, NULL, NULL), VNET_IDLE);
    struct vnet_link_stats s = vnet_link_stats(net, 0, 1);
    CHECK_EQ(s.sent, 20000);
    CHECK(s.dropped > 3600 && s.dropped < 4400);
    CHECK(s.duplicated > 1400 && s.duplicated < 1800);
    CHECK(s.reordered > 600);
    CHECK_EQ(s.delivered, s.sent - s.dropped + s.duplicated);
    CHECK_EQ(b.got, s.delivered);
    CHECK(b.order_breaks > 0);
    if (test_failures())
        printf("    seed %llu (replay with SIM_SEED)\n", (unsigned long long)seed);
    vnet_free(net);
}

TEST(vnet_same_seed_same_run)
{
    uint64_t sums[2], ms[2];
    for (int r = 0; r < 2; r++) {
        struct pinger a = {.count = 2000, .gap_ms = 1, .size = 64}, b = {0};
        struct vnet *net = make_pair(99, &a, &b);
        REQUIRE(net);
        struct vnet_link_cfg lc = {.loss = 0.3, .delay_ms = 5, .jitter_ms = 20, .dup = 0.1};
        vnet_link_set(net, 0, 1, &lc);
        vnet_run(net, 1000000, NULL, NULL);
        sums[r] = b.sum * 1000003 + b.got;
        ms[r] = b.last_ms;
        vnet_free(net);
    }
    CHECK_EQ(sums[0], sums[1]);
    CHECK_EQ(ms[0], ms[1]);
}

TEST(vnet_rate_cap_and_queue)
{
    /* 1000-byte packets every ms = 8 Mbit/s into a 4 Mbit/s bottleneck with a 20 kB queue:
     * about half get through, spaced 2 ms apart, and the queue overflows. */
    struct pinger a = {.count = 1000, .gap_ms = 1, .size = 1000}, b = {0};
    struct vnet *net = make_pair(3, &a, &b);
    REQUIRE(net);
    struct vnet_link_cfg lc = {.delay_ms = 1, .rate_bps = 4000000, .queue_bytes = 20000};
    vnet_link_set(net, 0, 1, &lc);
    CHECK_EQ(vnet_run(net, 100000, NULL, NULL), VNET_IDLE);
    struct vnet_link_stats s = vnet_link_stats(net, 0, 1);
    CHECK(s.dropped_queue > 400 && s.dropped_queue < 540);
    CHECK_EQ(s.delivered + s.dropped_queue, 1000);
    /* The last packet leaves the bottleneck no earlier than delivered * 2 ms. */
    CHECK(b.last_ms >= s.delivered * 2);
    CHECK(b.last_ms <= s.delivered * 2 + 30);
    vnet_free(net);
}

TEST(vnet_blackout_and_timeout)
{
    struct pinger a = {.count = 100, .gap_ms = 100, .size = 10}, b = {0};
    struct vnet *net = make_pair(5, &a, &b);
    REQUIRE(net);
    struct vnet_link_cfg lc = {.delay_ms = 1, .blackout = {{2000, 5000}}};
    vnet_link_set(net, 0, 1, &lc);
    CHECK_EQ(vnet_run(net, 4000, NULL, NULL), VNET_TIMEOUT);
    CHECK_EQ(vnet_now(net), 4000);
    CHECK_EQ(vnet_run(net, 100000, NULL, NULL), VNET_IDLE);
    CHECK_EQ(vnet_link_stats(net, 0, 1).dropped, 30);
    CHECK_EQ(b.got, 70);
    vnet_free(net);
}

static bool got_five(void *user)
{
    return ((struct pinger *)user)->got >= 5;
}

TEST(vnet_done_predicate_and_seed_env)
{
    struct pinger a = {.count = 100, .gap_ms = 10, .size = 10}, b = {0};
    struct vnet *net = make_pair(5, &a, &b);
    REQUIRE(net);
    CHECK_EQ(vnet_run(net, 100000, got_five, &b), VNET_DONE);
    CHECK_EQ(b.got, 5);
    CHECK_EQ(vnet_now(net), 40);
    CHECK_EQ(vnet_seed(net), 5);
    CHECK(strcmp(vnet_result_str(VNET_STUCK), "stuck") == 0);
    vnet_free(net);
}
