/* SPDX-License-Identifier: MIT */
/* Simulator: message latency at link settings, message sizes and intervals that are NOT those
 * of rr_sim_grid and pace_sim_bulk_grid, ktun's sending against kcp-go's on the same seeds.
 * A mechanism tuned to the grid's points shows here. */
#include "common/link.h"
#include "tests/sim/linkpair.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One-way delay 15/30/70/150/300 ms, jitter 0/2/10 ms, loss 0/0.5/2/5/12 % each way, rate
 * 2/10/50/200 Mbit/s (a one-BDP queue, at least 16 KB), combined into ten links so that every
 * value but the loss-free one appears at least twice; on each link four message patterns: 300 B every 10 ms, 4 KB
 * every 50 ms, 64 B every 100 ms and bursts of 8 x 1 KB every 200 ms. The client sends, the
 * server echoes, the client times each message from the moment it was due to the moment its
 * echo is complete: a message the sender's window holds back waits, as it would in a real
 * application (both ends write only while the link has room). Each point runs 30-150 s of
 * virtual time (1200-3000 messages) with ktun's sending (adaptive parity), ktun's with fixed
 * 10/3 parity (what a kcptun peer gets) and kcp-go's, fast3, FEC 10/3, crypt none, seed for
 * seed.
 */

#define OG_MSG_MAX 4096

struct og_end {
    struct sim_end end; /* first: the glue calls back with it */
    bool client;
    /* client: the schedule (|burst| messages of |msg| bytes every |interval_ms| from
     * |start_ms| for |count| messages) and the results */
    uint64_t start_ms, interval_ms;
    uint32_t burst, count;
    size_t msg;
    uint32_t sent, done;  /* messages handed to the link; echoes complete */
    uint32_t *lat;        /* per message, ms */
    size_t partial;       /* bytes of the current echo */
    bool corrupt;
    /* server: an echo chunk the link had no room for yet */
    uint8_t pend[OG_MSG_MAX];
    size_t pend_len;
};

static uint64_t og_due_ms(const struct og_end *e, uint32_t i)
{
    return e->start_ms + (uint64_t)(i / e->burst) * e->interval_ms;
}

static void og_pump(struct sim_end *se, uint64_t now)
{
    struct og_end *e = (struct og_end *)se;
    uint8_t buf[OG_MSG_MAX];
    bool queued = false;
    if (e->client) {
        while (e->sent < e->count && og_due_ms(e, e->sent) <= now &&
               link_send_room(se->link) > 0) {
            memset(buf, (int)(e->sent & 0xff), e->msg);
            if (link_send(se->link, buf, e->msg) != 0)
                break;
            e->sent++;
            queued = true;
        }
        ssize_t r;
        while ((r = link_recv(se->link, buf, sizeof(buf))) > 0) {
            for (ssize_t i = 0; i < r; i++) {
                if (e->done >= e->sent || buf[i] != (uint8_t)(e->done & 0xff))
                    e->corrupt = true;
                if (++e->partial == e->msg) {
                    e->partial = 0;
                    if (e->done < e->count)
                        e->lat[e->done] = (uint32_t)(now - og_due_ms(e, e->done));
                    e->done++;
                }
            }
        }
    } else {
        for (;;) {
            if (e->pend_len) {
                if (link_send_room(se->link) == 0 ||
                    link_send(se->link, e->pend, e->pend_len) != 0)
                    break;
                e->pend_len = 0;
                queued = true;
            }
            ssize_t r = link_recv(se->link, e->pend, sizeof(e->pend));
            if (r <= 0)
                break;
            e->pend_len = (size_t)r;
        }
    }
    if (queued)
        link_flush(se->link, now);
}

static uint64_t og_next(struct sim_end *se, uint64_t now)
{
    struct og_end *e = (struct og_end *)se;
    if (!e->client || e->sent >= e->count)
        return UINT64_MAX;
    uint64_t due = og_due_ms(e, e->sent);
    /* a message the link has no room for waits for an ACK (the pump runs after each) */
    return due <= now && link_send_room(se->link) == 0 ? UINT64_MAX : due;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* How an end sends: kcp-go's way, ktun's with fixed FEC parity, ktun's with adaptive parity. */
enum og_mode { OG_KCPGO, OG_KTUN_FIXED, OG_KTUN };

struct og_result {
    uint32_t p50, p99, max;
    uint32_t sent, done;
    bool corrupt;
    uint64_t copies;  /* redundant copies sent by both ends */
    double wire;      /* bytes into the link (both ways) per message byte delivered (both ways) */
};

struct og_pattern {
    size_t msg;
    uint64_t interval_ms;
    uint32_t burst;
    uint64_t secs; /* virtual time: at least 1200 messages, so that a p99 is not one loss */
};

static void og_run(enum og_mode mode, const struct og_pattern *pat,
                   const struct vnet_link_cfg *lk, uint64_t secs, uint64_t seed,
                   struct og_result *out)
{
    *out = (struct og_result){0};
    struct vnet *net = vnet_new(vnet_seed_from_env(seed));
    struct og_end *cli = calloc(1, sizeof(*cli)), *srv = calloc(1, sizeof(*srv));
    uint32_t count = (uint32_t)(secs * 1000 / pat->interval_ms) * pat->burst;
    uint32_t *lat = calloc(count, sizeof(*lat));
    REQUIRE(net && cli && srv && lat);
    struct link_config lc;
    sim_link_config(&lc, mode != OG_KCPGO);
    lc.fec_fixed = mode != OG_KTUN;
    cli->end.pump = srv->end.pump = og_pump;
    cli->end.deadline = og_next;
    cli->client = true;
    cli->start_ms = 1000;
    cli->interval_ms = pat->interval_ms;
    cli->burst = pat->burst;
    cli->count = count;
    cli->msg = pat->msg;
    cli->lat = lat;
    REQUIRE(sim_pair_open(net, &cli->end, &srv->end, &lc, lk, 11) == 0);
    vnet_run(net, cli->start_ms + secs * 1000 + 30000, NULL, NULL);
    struct og_result res = {.sent = cli->sent, .done = cli->done, .corrupt = cli->corrupt};
    uint32_t n = cli->done < count ? cli->done : count;
    if (n) {
        qsort(lat, n, sizeof(*lat), cmp_u32);
        res.p50 = lat[n / 2];
        res.p99 = lat[(n * 99) / 100];
        res.max = lat[n - 1];
    }
    struct vnet_link_stats up = vnet_link_stats(net, cli->end.id, srv->end.id);
    struct vnet_link_stats down = vnet_link_stats(net, srv->end.id, cli->end.id);
    res.wire = n ? (double)(up.bytes_sent + down.bytes_sent) / (2.0 * n * pat->msg) : 0;
    struct link_stats ls;
    link_get_stats(cli->end.link, &ls);
    res.copies = ls.kcp.redundant_segs;
    link_get_stats(srv->end.link, &ls);
    res.copies += ls.kcp.redundant_segs;
    sim_pair_close(&cli->end, &srv->end);
    free(lat);
    free(cli);
    free(srv);
    vnet_free(net);
    *out = res;
}

struct og_link {
    uint32_t delay, jitter;
    double loss;
    uint64_t rate;
};

static const struct og_link og_links[] = {
    {15, 2, 0.005, 2000000},     {15, 0, 0.05, 200000000},  {30, 10, 0.12, 2000000},
    {30, 0, 0.02, 10000000},     {70, 10, 0.05, 50000000},  {70, 0, 0, 2000000},
    {150, 2, 0.12, 200000000},   {150, 10, 0.02, 50000000}, {300, 0, 0.005, 10000000},
    {300, 2, 0.05, 50000000},
};

static const struct og_pattern og_patterns[] = {
    {300, 10, 1, 30}, {4096, 50, 1, 60}, {64, 100, 1, 150}, {1024, 200, 8, 60},
};

#define OG_LINKS (sizeof(og_links) / sizeof(og_links[0]))
#define OG_PATTERNS (sizeof(og_patterns) / sizeof(og_patterns[0]))

static void og_link_cfg(const struct og_link *g, struct vnet_link_cfg *lk)
{
    uint64_t bdp = g->rate / 8 * 2 * g->delay / 1000;
    *lk = (struct vnet_link_cfg){.loss = g->loss, .delay_ms = g->delay,
                                 .jitter_ms = g->jitter, .rate_bps = g->rate,
                                 .queue_bytes = bdp > 16384 ? bdp : 16384};
}

/* ktun's p99 may exceed kcp-go's by this factor at any point, plus one base RTT: a loss that
 * neither copies nor parity repaired costs a message one more round trip, and whether one
 * such loss lands in the worst percent decides a p99 either way. Over seeds 1-3 and the
 * default the worst point reached 1.70 x kcp-go's p99 (8 x 1 KB bursts at 15 ms, 2 Mbit/s:
 * 179 ms against 105), 8.5 ms inside this bound. */
#define OG_WORST_RATIO 1.5

TEST(offgrid_sim_messages)
{
    unsigned points = 0, worse = 0, worse_fixed = 0;
    double ratio_sum = 0, ratio_max = 0, fixed_ratio_sum = 0, rtt_sum = 0, wire_sum = 0,
           wire_go_sum = 0;
    double pat_ratio[OG_PATTERNS] = {0};
    printf("    offgrid: msg every | delay jitter loss rate | ktun p50 p99 max | fixed-FEC p99 | "
           "kcp-go p50 p99 max | ratio | p99/RTT | copies | wire ktun | wire kcp-go\n");
    for (size_t l = 0; l < OG_LINKS; l++) {
        const struct og_link *g = &og_links[l];
        struct vnet_link_cfg lk;
        og_link_cfg(g, &lk);
        uint32_t base = 2 * g->delay;
        for (size_t p = 0; p < OG_PATTERNS; p++, points++) {
            const struct og_pattern *pat = &og_patterns[p];
            uint64_t seed = 500 + points;
            int failures = test_failures();
            struct og_result k, f, o;
            og_run(OG_KTUN, pat, &lk, pat->secs, seed, &k);
            og_run(OG_KTUN_FIXED, pat, &lk, pat->secs, seed, &f);
            og_run(OG_KCPGO, pat, &lk, pat->secs, seed, &o);
            double ratio = o.p99 ? (double)k.p99 / o.p99 : 1;
            printf("    offgrid: %ux%zu B %3llu ms | %3u ms %2u ms %4.1f%% %3llu Mbit/s | "
                   "%4u %4u %4u | %4u | %4u %4u %4u | %.2f | %.2f | %llu | %.2f | %.2f\n",
                   pat->burst, pat->msg, (unsigned long long)pat->interval_ms, g->delay,
                   g->jitter, g->loss * 100, (unsigned long long)(g->rate / 1000000), k.p50,
                   k.p99, k.max, f.p99, o.p50, o.p99, o.max, ratio, (double)k.p99 / base,
                   (unsigned long long)k.copies, k.wire, o.wire);
            /* robust invariants: every message echoed, in order and intact, by every
             * sender; nothing beats the path */
            const struct og_result *all[] = {&k, &f, &o};
            for (size_t m = 0; m < 3; m++) {
                CHECK(!all[m]->corrupt);
                CHECK(all[m]->sent > 0);
                CHECK_EQ(all[m]->sent, all[m]->done);
                CHECK(all[m]->p50 >= base);
            }
            /* no point dramatically worse than kcp-go's sending */
            CHECK(k.p99 <= OG_WORST_RATIO * o.p99 + base);
            CHECK(f.p99 <= OG_WORST_RATIO * o.p99 + base);
            if (test_failures() > failures)
                printf("    offgrid: failing point above, seed %llu\n",
                       (unsigned long long)vnet_seed_from_env(seed));
            ratio_sum += ratio;
            pat_ratio[p] += ratio;
            if (ratio > ratio_max)
                ratio_max = ratio;
            fixed_ratio_sum += o.p99 ? (double)f.p99 / o.p99 : 1;
            rtt_sum += (double)k.p99 / base;
            wire_sum += k.wire;
            wire_go_sum += o.wire;
            worse += k.p99 > o.p99;
            worse_fixed += f.p99 > o.p99;
        }
    }
    for (size_t p = 0; p < OG_PATTERNS; p++)
        printf("    bench: offgrid_%ux%zuB_%llums_mean_p99_ratio_to_kcpgo %.3f x\n",
               og_patterns[p].burst, og_patterns[p].msg,
               (unsigned long long)og_patterns[p].interval_ms, pat_ratio[p] / OG_LINKS);
    printf("    bench: offgrid_mean_p99_ratio_to_kcpgo %.3f x\n"
           "    bench: offgrid_max_p99_ratio_to_kcpgo %.3f x\n"
           "    bench: offgrid_mean_p99_ratio_to_kcpgo_fixed_fec %.3f x\n"
           "    bench: offgrid_mean_p99_over_rtt %.3f x\n"
           "    bench: offgrid_points_worse_than_kcpgo %u of_%u\n"
           "    bench: offgrid_points_worse_than_kcpgo_fixed_fec %u of_%u\n"
           "    bench: offgrid_mean_wire %.3f bytes_per_byte\n"
           "    bench: offgrid_mean_wire_kcpgo %.3f bytes_per_byte\n",
           ratio_sum / points, ratio_max, fixed_ratio_sum / points, rtt_sum / points, worse,
           points, worse_fixed, points, wire_sum / points, wire_go_sum / points);
}
