/* SPDX-License-Identifier: MIT */
/* ktun extensions in virtual time: the capability exchange (and its absence towards a
 * kcptun-configured client), the datagram channel under loss, reordering and duplication. */
#include "common/dgram.h"
#include "common/err.h"
#include "common/ext.h"
#include "common/tunnel.h"
#include "common/util.h"
#include "common/wire.h"
#include "crypto/crypt.h"
#include "fec/fec.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALL_OFFSET 1700000000000LL
#define NDG 2000

struct eside {
    struct vnet *net;
    int id;
    bool is_client;
    struct crypt *crypt;
    struct tunnel_config cfg;
    struct tunnel *t;
    int caps_calls;           /* on_caps */
    uint64_t ext_dgrams_out;  /* datagrams emitted that hold an extension segment */
    bool echo;                /* server: send every datagram back on its flow */
    bool drop_ext_in;         /* drop arriving datagrams that hold an extension segment (a
                               * server that ignores them, as kcptun's does) */
    /* client traffic: one datagram every |every_ms| until |n_to_send| */
    uint32_t n_to_send, n_sent;
    uint64_t every_ms, next_ms;
    uint16_t got[NDG];        /* deliveries per datagram id */
    uint64_t sent_at[NDG], rtt[NDG];
    uint32_t nflows;
};

/* Does datagram |p| (sealed) hold an extension segment? */
static bool holds_ext(struct eside *s, const uint8_t *p, size_t len)
{
    uint8_t copy[1600];
    const uint8_t *payload;
    if (len > sizeof(copy))
        return false;
    memcpy(copy, p, len);
    /* aes (CFB) opens with any object of the same key */
    ssize_t n = crypt_open(s->crypt, copy, len, 0, &payload);
    if (n < 0)
        return false;
    size_t plen = (size_t)n;
    if (fec_is_fec_packet(payload, plen)) {
        if (rd_u16le(payload + 4) != FEC_TYPE_DATA)
            return false;
        size_t sz = rd_u16le(payload + 6);
        if (sz < 2 || sz - 2 > plen - FEC_HEADER_LEN)
            return false;
        payload += FEC_HEADER_LEN;
        plen = sz - 2;
    }
    size_t klen, blen;
    const uint8_t *body;
    ext_split(payload, plen, tunnel_conv(s->t), &klen, &body, &blen);
    return klen != plen;
}

static void e_output(void *user, const uint8_t *dgram, size_t len)
{
    struct eside *s = user;
    if (holds_ext(s, dgram, len))
        s->ext_dgrams_out++;
    vnet_send(s->net, s->id, dgram, len);
}

static void e_caps(void *user)
{
    struct eside *s = user;
    s->caps_calls++;
}

static void e_dgram(void *user, const struct tunnel_dgram *d)
{
    struct eside *s = user;
    if (s->echo) {
        tunnel_dgram_send(s->t, d->flow, NULL, 0, d->data, d->len);
        return;
    }
    if (d->len < 4)
        return;
    uint32_t id = rd_u32le(d->data);
    if (id < NDG) {
        if (!s->got[id])
            s->rtt[id] = vnet_now(s->net) - s->sent_at[id];
        s->got[id]++;
    }
}

static const struct tunnel_callbacks e_cb = {
    .output = e_output, .on_caps = e_caps, .on_dgram = e_dgram,
};

static void e_send_due(struct eside *s, uint64_t now)
{
    while (s->is_client && s->n_sent < s->n_to_send && now >= s->next_ms) {
        uint8_t buf[200];
        memset(buf, 0xab, sizeof(buf));
        put_u32le(buf, s->n_sent);
        uint32_t flow = s->n_sent % (s->nflows ? s->nflows : 1);
        s->sent_at[s->n_sent] = now;
        tunnel_dgram_send(s->t, flow, (const uint8_t *)"127.0.0.1:53", 12, buf, sizeof(buf));
        s->n_sent++;
        s->next_ms += s->every_ms;
    }
}

static void e_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct eside *s = user;
    uint8_t copy[1600];
    (void)from;
    if (len > sizeof(copy) || !s->t)
        return;
    if (s->drop_ext_in && holds_ext(s, pkt, len))
        return;
    memcpy(copy, pkt, len);
    tunnel_input(s->t, copy, len, now);
    tunnel_pump(s->t, now);
}

static uint64_t e_deadline(void *user, uint64_t now)
{
    struct eside *s = user;
    uint64_t d = s->t ? tunnel_next_deadline(s->t, now) : UINT64_MAX;
    if (s->is_client && s->n_sent < s->n_to_send)
        d = MIN(d, s->next_ms);
    return d;
}

static void e_tick(void *user, uint64_t now)
{
    struct eside *s = user;
    tunnel_tick(s->t, now);
    e_send_due(s, now);
    tunnel_pump(s->t, now);
}

static const struct vnet_endpoint_cb e_vnet = {e_deliver, e_deadline, e_tick};

struct epair {
    struct vnet *net;
    struct crypt *cc, *sc;
    struct eside cli, srv;
};

static void e_config(struct eside *s)
{
    link_config_default(&s->cfg.link);
    s->cfg.link.wall_offset_ms = WALL_OFFSET;
    mux_config_default(&s->cfg.mux);
    s->cfg.ext_caps = EXT_CAPS_ALL;
}

static bool epair_init(struct epair *p, uint64_t seed, bool offer, const struct vnet_link_cfg *c2s,
                       const struct vnet_link_cfg *s2c)
{
    memset(p, 0, sizeof(*p));
    p->cc = crypt_new("aes", "ext test key", crypt_rng_sodium, NULL, NULL);
    p->sc = crypt_new("aes", "ext test key", crypt_rng_sodium, NULL, NULL);
    p->net = vnet_new(vnet_seed_from_env(seed));
    if (!p->cc || !p->sc || !p->net)
        return false;
    crypt_set_role(p->cc, CRYPT_ROLE_CLIENT);
    crypt_set_role(p->sc, CRYPT_ROLE_SERVER);
    p->cli.net = p->srv.net = p->net;
    p->cli.is_client = true;
    p->cli.crypt = p->cc;
    p->srv.crypt = p->sc;
    p->srv.echo = true;
    e_config(&p->cli);
    e_config(&p->srv);
    p->cli.cfg.ext_offer = offer;
    p->cli.id = vnet_add_endpoint(p->net, &e_vnet, &p->cli);
    p->srv.id = vnet_add_endpoint(p->net, &e_vnet, &p->srv);
    vnet_link_set(p->net, p->cli.id, p->srv.id, c2s);
    vnet_link_set(p->net, p->srv.id, p->cli.id, s2c);
    p->cli.t = tunnel_new(7, &p->cli.cfg, true, p->cc, NULL, &e_cb, &p->cli, 0, NULL);
    p->srv.t = tunnel_new(7, &p->srv.cfg, false, p->sc, NULL, &e_cb, &p->srv, 0, NULL);
    return p->cli.t && p->srv.t;
}

static void epair_free(struct epair *p)
{
    if (test_failures())
        printf("    replay with SIM_SEED=%llu\n", (unsigned long long)vnet_seed(p->net));
    tunnel_free(p->cli.t);
    tunnel_free(p->srv.t);
    vnet_free(p->net);
    crypt_free(p->cc);
    crypt_free(p->sc);
}

static bool caps_settled(void *user)
{
    struct epair *p = user;
    return !tunnel_caps_pending(p->cli.t) && p->cli.caps_calls > 0;
}

TEST(ext_sim_capability_exchange_under_loss)
{
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 25, .loss = 0.3};
    REQUIRE(epair_init(&p, 5, true, &lk, &lk));
    CHECK(tunnel_caps_pending(p.cli.t));
    CHECK(!tunnel_peer_is_ktun(p.cli.t));
    CHECK(!tunnel_peer_is_ktun(p.srv.t));
    CHECK_EQ(vnet_run(p.net, 30000, caps_settled, &p), VNET_DONE);
    CHECK(tunnel_peer_is_ktun(p.cli.t));
    CHECK(tunnel_peer_is_ktun(p.srv.t));
    CHECK_EQ(tunnel_peer_caps(p.cli.t), EXT_CAPS_ALL);
    CHECK_EQ(tunnel_peer_caps(p.srv.t), EXT_CAPS_ALL);
    CHECK_EQ(p.cli.caps_calls, 1);
    CHECK_EQ(p.srv.caps_calls, 1);
    epair_free(&p);
}

TEST(ext_sim_no_offer_means_no_extension_on_the_wire)
{
    /* a client configured for a kcptun server: streams and datagram attempts, never an
     * extension segment; the server sends none either (it only answers) */
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 10};
    REQUIRE(epair_init(&p, 6, false, &lk, &lk));
    uint32_t sid;
    REQUIRE(tunnel_stream_open(p.cli.t, &sid) == 0);
    tunnel_stream_write(p.cli.t, sid, (const uint8_t *)"hello", 5);
    CHECK_EQ(tunnel_dgram_send(p.cli.t, 1, NULL, 0, (const uint8_t *)"x", 1), ERR_PROTO);
    tunnel_pump(p.cli.t, 0);
    vnet_run(p.net, 20000, NULL, NULL);
    CHECK_EQ(p.cli.ext_dgrams_out, 0);
    CHECK_EQ(p.srv.ext_dgrams_out, 0);
    CHECK(!tunnel_peer_is_ktun(p.cli.t));
    CHECK(!tunnel_peer_is_ktun(p.srv.t));
    struct tunnel_stats st;
    tunnel_get_stats(p.cli.t, &st);
    CHECK_EQ(st.dgram_dropped, 1);
    epair_free(&p);
}

TEST(ext_sim_unanswered_offer_gives_up_and_drops_held_datagrams)
{
    /* the server's KCP answers, the offers get no answer (a kcptun server ignores them) */
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 10};
    REQUIRE(epair_init(&p, 7, true, &lk, &lk));
    p.srv.drop_ext_in = true;
    CHECK_EQ(tunnel_dgram_send(p.cli.t, 1, NULL, 0, (const uint8_t *)"x", 1), 0);
    CHECK_EQ(vnet_run(p.net, 120000, caps_settled, &p), VNET_DONE);
    CHECK(vnet_now(p.net) < 20000);
    CHECK(!tunnel_peer_is_ktun(p.cli.t));
    CHECK(!tunnel_peer_is_ktun(p.srv.t));
    CHECK_EQ(tunnel_peer_caps(p.cli.t), 0);
    CHECK_EQ(p.cli.ext_dgrams_out, TUNNEL_OFFER_TRIES);
    struct tunnel_stats st;
    tunnel_get_stats(p.cli.t, &st);
    CHECK_EQ(st.dgram_out, 0);
    CHECK_EQ(st.dgram_dropped, 1);
    CHECK_EQ(tunnel_dgram_send(p.cli.t, 1, NULL, 0, (const uint8_t *)"x", 1), ERR_PROTO);
    epair_free(&p);
}

TEST(ext_sim_offer_waits_for_a_server_that_is_not_up_yet)
{
    /* nothing reaches the server for its first 25 s (it is not running yet, say): silence
     * tells nothing about what it is, so the client does not give up; once the server is up
     * the exchange completes (a client may open its session before its server starts) */
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 10, .blackout = {{0, 25000}}};
    REQUIRE(epair_init(&p, 8, true, &lk, &lk));
    CHECK_EQ(vnet_run(p.net, 120000, caps_settled, &p), VNET_DONE);
    CHECK(vnet_now(p.net) >= 25000);
    CHECK(tunnel_peer_is_ktun(p.cli.t));
    CHECK(tunnel_peer_is_ktun(p.srv.t));
    CHECK_EQ(tunnel_peer_caps(p.cli.t), EXT_CAPS_ALL);
    CHECK(p.cli.ext_dgrams_out > TUNNEL_OFFER_TRIES);
    epair_free(&p);
}

static bool all_sent_and_settled(void *user)
{
    struct epair *p = user;
    return p->cli.n_sent == p->cli.n_to_send &&
           vnet_now(p->net) > p->cli.sent_at[p->cli.n_to_send - 1] + 2000;
}

/* Echoes |n| datagrams of 200 bytes every 20 ms over |lk| each way. Returns delivered count;
 * fails the test on any duplicate delivery. */
static uint32_t echo_run(struct epair *p, uint32_t n, uint32_t *recovered)
{
    p->cli.n_to_send = n;
    p->cli.every_ms = 20;
    p->cli.next_ms = 1000;
    p->cli.nflows = 7;
    CHECK_EQ(vnet_run(p->net, 1000 + 20 * n + 60000, all_sent_and_settled, p), VNET_DONE);
    uint32_t got = 0;
    for (uint32_t i = 0; i < n; i++) {
        CHECK(p->cli.got[i] <= 1);
        got += p->cli.got[i] ? 1 : 0;
    }
    struct tunnel_stats a, b;
    tunnel_get_stats(p->cli.t, &a);
    tunnel_get_stats(p->srv.t, &b);
    CHECK_EQ(a.dgram_in, got);
    *recovered = (uint32_t)(a.dgram_recovered + b.dgram_recovered);
    return got;
}

TEST(ext_sim_datagrams_lossless_exactly_once)
{
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 25};
    REQUIRE(epair_init(&p, 8, true, &lk, &lk));
    uint32_t rec;
    CHECK_EQ(echo_run(&p, 500, &rec), 500);
    CHECK_EQ(rec, 0);
    epair_free(&p);
}

/* p99 of the echo times of |p|'s client. */
static uint64_t echo_p99(const struct epair *p, uint32_t n_sent)
{
    static uint64_t rtts[NDG];
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_sent; i++)
        if (p->cli.got[i])
            rtts[n++] = p->cli.rtt[i];
    for (uint32_t i = 1; i < n; i++) /* insertion sort: small */
        for (uint32_t j = i; j > 0 && rtts[j - 1] > rtts[j]; j--) {
            uint64_t x = rtts[j];
            rtts[j] = rtts[j - 1];
            rtts[j - 1] = x;
        }
    return n ? rtts[(n - 1) * 99 / 100] : 0;
}

TEST(ext_sim_datagrams_loss_reorder_duplication)
{
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 25, .jitter_ms = 5, .loss = 0.05, .reorder = 0.05,
                               .dup = 0.05};
    REQUIRE(epair_init(&p, 9, true, &lk, &lk));
    uint32_t rec;
    uint32_t got = echo_run(&p, NDG, &rec);
    printf("    delivered %u of %u, %u rebuilt by FEC, p99 %llu ms\n", got, NDG, rec,
           (unsigned long long)echo_p99(&p, NDG));
    /* 5% each way: 90.25% without FEC; FEC rebuilds nearly all the rest; duplicates (from
     * the network and from FEC) are never delivered twice (echo_run checks) */
    CHECK(got >= NDG * 99 / 100);
    CHECK(rec > 0);
    epair_free(&p);
}

TEST(ext_sim_sparse_datagrams_rebuilt_within_a_fraction_of_the_rtt)
{
    /* one datagram per 20 ms cannot fill a 10/3 group in time: groups holding datagrams are
     * closed after srtt/8, so a lost datagram is rebuilt about that much after its time */
    for (uint32_t delay = 10; delay <= 100; delay *= 3) {
        struct epair p;
        struct vnet_link_cfg lk = {.delay_ms = delay, .loss = 0.05};
        REQUIRE(epair_init(&p, 11 + delay, true, &lk, &lk));
        uint32_t rec;
        uint32_t got = echo_run(&p, 1500, &rec);
        uint64_t p99 = echo_p99(&p, 1500), base = 2u * delay;
        printf("    one way %u ms: delivered %u of 1500, %u rebuilt, p99 %llu ms\n", delay, got,
               rec, (unsigned long long)p99);
        CHECK(got >= 1500 * 995 / 1000);
        CHECK(p99 * 10 <= base * 12 + 50);
        epair_free(&p);
    }
}

TEST(ext_sim_oversized_datagram_refused_and_counted)
{
    struct epair p;
    struct vnet_link_cfg lk = {.delay_ms = 5};
    REQUIRE(epair_init(&p, 10, true, &lk, &lk));
    CHECK_EQ(vnet_run(p.net, 10000, caps_settled, &p), VNET_DONE);
    size_t max = tunnel_dgram_max(p.cli.t, 0);
    CHECK(max > 1200 && max < 1350);
    static uint8_t big[2000];
    CHECK_EQ(tunnel_dgram_send(p.cli.t, 1, NULL, 0, big, max + 1), ERR_TOOBIG);
    CHECK_EQ(tunnel_dgram_send(p.cli.t, 1, NULL, 0, big, max), 0);
    CHECK_EQ(tunnel_dgram_max(p.cli.t, 12), max - 13);
    struct tunnel_stats st;
    tunnel_get_stats(p.cli.t, &st);
    CHECK_EQ(st.dgram_toobig, 1);
    CHECK_EQ(st.dgram_dropped, 1);
    CHECK_EQ(st.dgram_out, 1);
    epair_free(&p);
}
