/* SPDX-License-Identifier: MIT */
/* Two KCP engines across the simulated network: loss, reordering, duplication, blackout, idle. */
#include "common/err.h"
#include "common/kcp.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MSS_MTU (1350 - 28) /* kcptun default MTU minus crypt + FEC header reserve */
#define SIM_CHUNK 32768         /* application write size (about one smux frame) */

/* Byte |i| of the test stream: a cheap hash, so 8 MB need not be stored. */
static uint8_t stream_byte(uint64_t salt, uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + salt;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> ((i & 7) * 8));
}

/* One side of the conversation: a KCP engine, a byte source and a byte sink. */
struct side {
    struct kcp *k;
    struct vnet *net;
    int id;
    uint64_t salt;       /* stream pattern of the data this side sends */
    uint64_t to_send;    /* bytes to push through kcp_send */
    uint64_t sent;
    uint64_t peer_salt;  /* pattern expected from the peer */
    uint64_t received;
    uint64_t mismatch_at; /* first wrong byte + 1, 0 if none */
    uint64_t done_ms;    /* when |received| reached |expect| */
    uint64_t expect;     /* bytes expected from the peer */
    bool fuzz;           /* inject mutated copies of every arriving packet */
    uint64_t injected;   /* mutated packets fed */
};

/* Feeds a mutated copy of |pkt| to the engine: every mutation is one a robust engine must
 * drop or treat as a harmless duplicate (KCP itself has no checksum, so mutations that make a
 * plausible lie, such as flipped payload bits at a valid sn, are out of scope). */
static void inject_mutant(struct side *s, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    uint8_t m[2048];
    size_t n = len;
    memcpy(m, pkt, len);
    uint64_t r = vnet_rand(s->net);
    switch (r % 8) {
    case 0: /* truncated */
        n = (size_t)((r >> 8) % (len + 1));
        break;
    case 1: /* wrong conv */
        m[(r >> 8) % 4] ^= (uint8_t)(1 + (r >> 16) % 255);
        break;
    case 2: /* unknown cmd */
        m[4] = (uint8_t)(r >> 8);
        if (m[4] >= KCP_CMD_PUSH && m[4] <= KCP_CMD_WINS)
            m[4] = 0;
        break;
    case 3: /* absurd len */
        m[20 + (r >> 8) % 4] |= 0x80;
        break;
    case 4: /* sn far outside the window, either side */
        m[15] ^= (uint8_t)(0x40 | (r >> 8));
        break;
    case 5: /* una far beyond anything sent */
        m[19] ^= (uint8_t)(0x40 | (r >> 8));
        break;
    case 6: /* oversized: garbage appended */
        for (n = len; n < len + 24 + (r >> 8) % 500; n++)
            m[n] = (uint8_t)vnet_rand(s->net);
        break;
    default: /* pure garbage */
        n = (size_t)((r >> 8) % 1500);
        for (size_t i = 0; i < n; i++)
            m[i] = (uint8_t)vnet_rand(s->net);
        break;
    }
    kcp_input(s->k, m, n, (r >> 40) & 1, now_ms);
    s->injected++;
}

static void side_output(void *user, const uint8_t *pkt, size_t len)
{
    struct side *s = user;
    vnet_send(s->net, s->id, pkt, len);
}

/* Writes as much as the window allows, then flushes (kcptun writes flush at once). */
static void side_pump(struct side *s, uint64_t now_ms)
{
    uint8_t chunk[SIM_CHUNK];
    bool wrote = false;
    while (s->sent < s->to_send && kcp_send_room(s->k) > 0) {
        size_t n = SIM_CHUNK;
        if (s->to_send - s->sent < n)
            n = (size_t)(s->to_send - s->sent);
        for (size_t i = 0; i < n; i++)
            chunk[i] = stream_byte(s->salt, s->sent + i);
        if (kcp_send(s->k, chunk, n) != 0)
            break;
        s->sent += n;
        wrote = true;
    }
    if (wrote)
        kcp_flush(s->k, now_ms);
}

static void side_drain(struct side *s, uint64_t now_ms)
{
    uint8_t buf[8192];
    ssize_t n;
    while ((n = kcp_recv(s->k, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (!s->mismatch_at && buf[i] != stream_byte(s->peer_salt, s->received + (uint64_t)i))
                s->mismatch_at = s->received + (uint64_t)i + 1;
        }
        s->received += (uint64_t)n;
        if (s->received >= s->expect && !s->done_ms)
            s->done_ms = now_ms;
    }
}

static void side_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct side *s = user;
    (void)from;
    if (s->fuzz && len >= KCP_OVERHEAD && len <= 1500) {
        inject_mutant(s, pkt, len, now_ms);
        inject_mutant(s, pkt, len, now_ms);
    }
    kcp_input(s->k, pkt, len, true, now_ms);
    side_drain(s, now_ms);
    side_pump(s, now_ms);
}

static uint64_t side_deadline(void *user, uint64_t now_ms)
{
    struct side *s = user;
    return kcp_next_deadline(s->k, now_ms);
}

static void side_tick(void *user, uint64_t now_ms)
{
    struct side *s = user;
    kcp_tick(s->k, now_ms);
    side_drain(s, now_ms);
    side_pump(s, now_ms);
}

static const struct vnet_endpoint_cb side_cb = {side_deliver, side_deadline, side_tick};

struct profile {
    int nodelay, interval, resend, nc;
};

static const struct profile prof_normal = {0, 40, 2, 1};
static const struct profile prof_fast = {0, 30, 2, 1};
static const struct profile prof_fast3 = {1, 10, 2, 1};
static const struct profile prof_manual = {0, 50, 0, 0}; /* kcptun --mode manual defaults */

struct pair {
    struct vnet *net;
    struct side a; /* client: kcptun client windows 128/512 */
    struct side b; /* server: 1024/1024 */
};

static bool pair_init_at(struct pair *p, uint64_t seed, const struct profile *pf,
                         uint64_t start_ms)
{
    memset(p, 0, sizeof(*p));
    p->net = vnet_new_at(seed, start_ms);
    p->a.k = kcp_new(0x11223344, side_output, &p->a);
    p->b.k = kcp_new(0x11223344, side_output, &p->b);
    if (!p->net || !p->a.k || !p->b.k)
        return false;
    struct side *sides[2] = {&p->a, &p->b};
    for (int i = 0; i < 2; i++) {
        struct side *s = sides[i];
        s->net = p->net;
        s->id = vnet_add_endpoint(p->net, &side_cb, s);
        kcp_set_stream(s->k, true);
        kcp_set_mtu(s->k, SIM_MSS_MTU);
        kcp_set_nodelay(s->k, pf->nodelay, pf->interval, pf->resend, pf->nc);
        s->salt = 0x1000 + (uint64_t)i;
        s->peer_salt = 0x1000 + (uint64_t)(1 - i);
    }
    kcp_set_window(p->a.k, 128, 512);
    kcp_set_window(p->b.k, 1024, 1024);
    return true;
}

static bool pair_init(struct pair *p, uint64_t seed, const struct profile *pf)
{
    return pair_init_at(p, seed, pf, 0);
}

static void pair_free(struct pair *p)
{
    kcp_free(p->a.k);
    kcp_free(p->b.k);
    vnet_free(p->net);
}

static bool transfer_done(void *user)
{
    struct pair *p = user;
    return p->a.received >= p->a.expect && p->b.received >= p->b.expect;
}

/* Server -> client download of |down| bytes plus |up| bytes the other way. */
static enum vnet_result run_transfer(struct pair *p, uint64_t down, uint64_t up,
                                     uint64_t limit_ms)
{
    p->b.to_send = down;
    p->a.expect = down;
    p->a.to_send = up;
    p->b.expect = up;
    side_pump(&p->a, vnet_now(p->net));
    side_pump(&p->b, vnet_now(p->net));
    return vnet_run(p->net, limit_ms, transfer_done, p);
}

static void report(const char *label, const struct pair *p, uint64_t ms)
{
    struct kcp_stats sb, sa;
    kcp_get_stats(p->b.k, &sb);
    kcp_get_stats(p->a.k, &sa);
    struct vnet_link_stats l = vnet_link_stats(p->net, p->b.id, p->a.id);
    printf("    sim: kcp %s: %llu bytes in %llu ms virtual; sender retrans %llu (fast %llu, early "
           "%llu, lost %llu), out_segs %llu; link sent %llu dropped %llu dup %llu; receiver "
           "repeat %llu\n",
           label, (unsigned long long)p->a.received, (unsigned long long)ms,
           (unsigned long long)sb.retrans_segs, (unsigned long long)sb.fast_retrans_segs,
           (unsigned long long)sb.early_retrans_segs, (unsigned long long)sb.lost_segs,
           (unsigned long long)sb.out_segs, (unsigned long long)l.sent,
           (unsigned long long)l.dropped, (unsigned long long)l.duplicated,
           (unsigned long long)sa.repeat_segs);
}

static void seed_note(uint64_t seed)
{
    if (test_failures())
        printf("    seed %llu (replay with SIM_SEED=%llu)\n", (unsigned long long)seed,
               (unsigned long long)seed);
}

/* A lossy path: 20 ms one way, 5 ms jitter, some reordering and duplication, 100 Mbit/s. */
static struct vnet_link_cfg lossy_link(double loss)
{
    struct vnet_link_cfg lc = {.loss = loss, .delay_ms = 20, .jitter_ms = 5, .reorder = 0.02,
                               .dup = 0.01, .rate_bps = 100000000, .queue_bytes = 4 << 20};
    return lc;
}

static void bulk_at_loss(double loss, uint64_t limit_ms)
{
    uint64_t seed = vnet_seed_from_env(1000 + (uint64_t)(loss * 100));
    struct pair p;
    if (!pair_init(&p, seed, &prof_fast3)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = lossy_link(loss);
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    const uint64_t total = 8u << 20;
    enum vnet_result r = run_transfer(&p, total, 64 << 10, limit_ms);
    CHECK_EQ(r, VNET_DONE);
    CHECK_EQ(p.a.received, total);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK_EQ(p.b.received, 64 << 10);
    CHECK_EQ(p.b.mismatch_at, 0);
    CHECK(kcp_rcv_buf_count(p.a.k) <= 512);
    char label[32];
    snprintf(label, sizeof(label), "fast3 loss %d%%", (int)(loss * 100 + 0.5));
    report(label, &p, p.a.done_ms);
    if (loss > 0) {
        struct kcp_stats st;
        kcp_get_stats(p.b.k, &st);
        CHECK(st.retrans_segs > 0);
    }
    seed_note(seed);
    pair_free(&p);
}

TEST(kcp_sim_bulk_8mb_no_loss)
{
    bulk_at_loss(0.0, 60000);
}

TEST(kcp_sim_bulk_8mb_10pct_loss)
{
    bulk_at_loss(0.10, 120000);
}

TEST(kcp_sim_bulk_8mb_30pct_loss)
{
    bulk_at_loss(0.30, 300000);
}

TEST(kcp_sim_blackout_5s_recovers)
{
    uint64_t seed = vnet_seed_from_env(77);
    struct pair p;
    if (!pair_init(&p, seed, &prof_fast)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = lossy_link(0.01);
    lc.blackout[0].from_ms = 300;
    lc.blackout[0].until_ms = 5300;
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    const uint64_t total = 4u << 20;
    enum vnet_result r = run_transfer(&p, total, 0, 120000);
    CHECK_EQ(r, VNET_DONE);
    CHECK_EQ(p.a.received, total);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK(p.a.done_ms > 5300);
    CHECK(!kcp_is_dead(p.b.k));
    struct kcp_stats st;
    kcp_get_stats(p.b.k, &st);
    CHECK(st.lost_segs > 0);
    report("fast blackout 5 s", &p, p.a.done_ms);
    seed_note(seed);
    pair_free(&p);
}

TEST(kcp_sim_idle_session_sleeps)
{
    uint64_t seed = vnet_seed_from_env(5);
    struct pair p;
    if (!pair_init(&p, seed, &prof_fast)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = lossy_link(0.05);
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    CHECK_EQ(run_transfer(&p, 1 << 20, 1 << 16, 60000), VNET_DONE);
    /* Let the last ACKs settle, then count wake-ups over one virtual minute. */
    vnet_run(p.net, vnet_now(p.net) + 2000, NULL, NULL);
    uint64_t t0 = vnet_now(p.net);
    uint64_t ticks0 = vnet_endpoint_stats(p.net, 0).ticks + vnet_endpoint_stats(p.net, 1).ticks;
    enum vnet_result r = vnet_run(p.net, t0 + 60000, NULL, NULL);
    uint64_t ticks = vnet_endpoint_stats(p.net, 0).ticks + vnet_endpoint_stats(p.net, 1).ticks -
                     ticks0;
    CHECK(r == VNET_IDLE || r == VNET_TIMEOUT);
    CHECK(ticks <= 5);
    CHECK_EQ(kcp_next_deadline(p.a.k, vnet_now(p.net)), UINT64_MAX);
    CHECK_EQ(kcp_next_deadline(p.b.k, vnet_now(p.net)), UINT64_MAX);
    CHECK_EQ(kcp_wait_snd(p.b.k), 0);
    printf("    sim: kcp idle: %llu wake-ups in the virtual minute after the transfer (%s)\n",
           (unsigned long long)ticks, vnet_result_str(r));
    seed_note(seed);
    pair_free(&p);
}

static uint64_t timed_run(const struct profile *pf, const char *label, uint64_t seed)
{
    struct pair p;
    uint64_t ms = UINT64_MAX;
    if (pair_init(&p, seed, pf)) {
        struct vnet_link_cfg lc = lossy_link(0.10);
        vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
        if (run_transfer(&p, 4u << 20, 0, 300000) == VNET_DONE && !p.a.mismatch_at)
            ms = p.a.done_ms;
        report(label, &p, p.a.done_ms);
    }
    pair_free(&p);
    return ms;
}

TEST(kcp_sim_fast3_beats_normal_at_10pct)
{
    uint64_t seed = vnet_seed_from_env(31);
    uint64_t fast3 = timed_run(&prof_fast3, "fast3 loss 10%", seed);
    uint64_t normal = timed_run(&prof_normal, "normal loss 10%", seed);
    CHECK(fast3 != UINT64_MAX);
    CHECK(normal != UINT64_MAX);
    CHECK(fast3 < normal);
    seed_note(seed);
}

TEST(kcp_sim_clean_path_never_retransmits)
{
    /* No loss, no reordering, no queueing: every segment goes out exactly once. */
    struct pair p;
    if (!pair_init(&p, 9, &prof_fast)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = {.delay_ms = 15};
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    CHECK_EQ(run_transfer(&p, 2u << 20, 256 << 10, 60000), VNET_DONE);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK_EQ(p.b.mismatch_at, 0);
    struct kcp_stats sa, sb;
    kcp_get_stats(p.a.k, &sa);
    kcp_get_stats(p.b.k, &sb);
    CHECK_EQ(sa.retrans_segs, 0);
    CHECK_EQ(sb.retrans_segs, 0);
    CHECK_EQ(sa.repeat_segs, 0);
    CHECK_EQ(sb.repeat_segs, 0);
    /* 2 MB at 1024 segments per 30 ms round trip: a few round trips. */
    CHECK(p.a.done_ms < 300);
    CHECK(kcp_srtt(p.b.k) >= 30 && kcp_srtt(p.b.k) <= 31 + 30);
    report("fast clean path", &p, p.a.done_ms);
    pair_free(&p);
}

TEST(kcp_sim_mutated_packets_interleaved)
{
    /* Both ends receive two mutated copies of every packet next to the real one, over a path
     * with 10% loss; the transfer must still be byte-exact and every reason counted. */
    uint64_t seed = vnet_seed_from_env(4242);
    struct pair p;
    if (!pair_init(&p, seed, &prof_fast3)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    p.a.fuzz = p.b.fuzz = true;
    struct vnet_link_cfg lc = lossy_link(0.10);
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    CHECK_EQ(run_transfer(&p, 2u << 20, 256 << 10, 120000), VNET_DONE);
    CHECK_EQ(p.a.received, 2u << 20);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK_EQ(p.b.received, 256 << 10);
    CHECK_EQ(p.b.mismatch_at, 0);
    struct kcp_stats sa, sb;
    kcp_get_stats(p.a.k, &sa);
    kcp_get_stats(p.b.k, &sb);
    static const char *const reason[KCP_DROP_COUNT] = {"short", "conv", "len", "cmd",
                                                       "una", "window", "ack", "nomem"};
    for (int i = 0; i < KCP_DROP_COUNT; i++) {
        if (i != KCP_DROP_NOMEM && i != KCP_DROP_ACK)
            CHECK(sa.drop[i] + sb.drop[i] > 0);
        printf("    drop %s: %llu\n", reason[i], (unsigned long long)(sa.drop[i] + sb.drop[i]));
    }
    CHECK_EQ(sa.drop[KCP_DROP_NOMEM] + sb.drop[KCP_DROP_NOMEM], 0);
    CHECK(kcp_rcv_buf_count(p.a.k) <= 512);
    printf("    sim: kcp mutated input: %llu mutants injected, in_errors %llu\n",
           (unsigned long long)(p.a.injected + p.b.injected),
           (unsigned long long)(sa.in_errors + sb.in_errors));
    report("fast3 10% + mutants", &p, p.a.done_ms);
    seed_note(seed);
    pair_free(&p);
}

TEST(kcp_sim_timestamp_wrap)
{
    /* The clock crosses 2^32 ms during the transfer: the 32-bit wire timestamps wrap, and
     * RTT samples and timeouts must not notice. */
    uint64_t seed = vnet_seed_from_env(321);
    struct pair p;
    if (!pair_init_at(&p, seed, &prof_fast, (1ull << 32) - 100)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = lossy_link(0.05);
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    CHECK_EQ(run_transfer(&p, 1u << 20, 0, (1ull << 32) + 60000), VNET_DONE);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK(p.a.done_ms > (1ull << 32));
    CHECK(kcp_srtt(p.b.k) >= 40 && kcp_srtt(p.b.k) < 1000);
    CHECK(kcp_rto(p.b.k) < 2000);
    report("fast ts wrap", &p, p.a.done_ms - ((1ull << 32) - 100));
    seed_note(seed);
    pair_free(&p);
}

TEST(kcp_sim_same_seed_same_outcome)
{
    /* The whole run (engines, network, PRNG) replays exactly from its seed. */
    uint64_t done[2], retrans[2], segs[2];
    for (int r = 0; r < 2; r++) {
        struct pair p;
        done[r] = retrans[r] = segs[r] = 0;
        if (pair_init(&p, 2024, &prof_fast3)) {
            struct vnet_link_cfg lc = lossy_link(0.2);
            vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
            CHECK_EQ(run_transfer(&p, 1u << 20, 128 << 10, 60000), VNET_DONE);
            struct kcp_stats st;
            kcp_get_stats(p.b.k, &st);
            done[r] = p.a.done_ms;
            retrans[r] = st.retrans_segs;
            segs[r] = st.out_segs;
        }
        pair_free(&p);
    }
    CHECK(done[0] > 0);
    CHECK_EQ(done[0], done[1]);
    CHECK_EQ(retrans[0], retrans[1]);
    CHECK_EQ(segs[0], segs[1]);
}

/* Tracks the sender's congestion window while the run goes on. */
struct cwnd_watch {
    struct pair *p;
    uint32_t max_cwnd;
    uint32_t drops;      /* times cwnd fell */
    uint32_t last;
};

static bool watch_done(void *user)
{
    struct cwnd_watch *w = user;
    uint32_t c = kcp_cwnd(w->p->b.k);
    if (c > w->max_cwnd)
        w->max_cwnd = c;
    if (c < w->last)
        w->drops++;
    w->last = c;
    return transfer_done(w->p);
}

TEST(kcp_sim_congestion_control_on)
{
    /* nc = 0 (manual mode defaults) through a 20 Mbit/s bottleneck with a 64 kB queue and 1%
     * loss: slow start grows cwnd, losses and queue overflow cut it, data stays exact. */
    uint64_t seed = vnet_seed_from_env(88);
    struct pair p;
    if (!pair_init(&p, seed, &prof_manual)) {
        CHECK(!"allocation");
        pair_free(&p);
        return;
    }
    struct vnet_link_cfg lc = {.loss = 0.01, .delay_ms = 20, .rate_bps = 20000000,
                               .queue_bytes = 65536};
    vnet_link_set_both(p.net, p.a.id, p.b.id, &lc);
    struct cwnd_watch w = {.p = &p};
    p.b.to_send = p.a.expect = 2u << 20;
    side_pump(&p.b, 0);
    CHECK_EQ(vnet_run(p.net, 120000, watch_done, &w), VNET_DONE);
    CHECK_EQ(p.a.received, 2u << 20);
    CHECK_EQ(p.a.mismatch_at, 0);
    CHECK(w.max_cwnd >= 8);
    CHECK(w.drops > 0);
    CHECK(w.max_cwnd < 1024);
    printf("    sim: kcp manual nc=0: max cwnd %u, %u reductions\n", w.max_cwnd, w.drops);
    report("manual nc=0 20 Mbit/s", &p, p.a.done_ms);
    seed_note(seed);
    pair_free(&p);
}
