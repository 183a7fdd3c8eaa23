/* SPDX-License-Identifier: MIT */
/* FEC layer across the simulated network: recovery under loss, alone and under KCP streams. */
#include "common/err.h"
#include "common/kcp.h"
#include "common/wire.h"
#include "fec/fec.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- FEC alone: encoder -> lossy link -> decoder ------------------------------------ */

#define FS_PACKETS 6000 /* KCP-sized packets sent, one per millisecond */

struct fs_tx {
    struct vnet *net;
    int id;
    struct fec_encoder *enc;
    int next;              /* index of the next packet to send */
    uint64_t next_ms;      /* when to send it */
};

struct fs_rx {
    struct fec_decoder *dec;
    uint8_t *count;        /* deliveries per packet index */
    int bad;               /* deliveries that match no sent packet */
    int direct;            /* packets delivered as received */
    int recovered;         /* packets delivered as rebuilt */
};

/* Packet |i|: a KCP-like header (sn = i) and a payload of hash bytes; length varies. */
static size_t fs_packet(int i, uint8_t *p)
{
    size_t len = 24 + (size_t)((i * 7919u) % 1299u);
    if (i % 3 == 0)
        len = 1322;
    memset(p, 0, 24);
    put_u32le(p, 0x5eed);
    p[4] = 81;
    put_u32le(p + 12, (uint32_t)i);
    put_u32le(p + 20, (uint32_t)(len - 24));
    uint32_t x = (uint32_t)i * 2654435761u + 1;
    for (size_t b = 24; b < len; b++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[b] = (uint8_t)x;
    }
    return len;
}

static int fs_emit(void *user, const uint8_t *pkt, size_t len)
{
    struct fs_tx *tx = user;
    return vnet_send(tx->net, tx->id, pkt, len) == 0 ? 0 : ERR_NOMEM;
}

static uint64_t fs_tx_deadline(void *user, uint64_t now_ms)
{
    struct fs_tx *tx = user;
    (void)now_ms;
    return tx->next < FS_PACKETS ? tx->next_ms : VNET_NEVER;
}

static void fs_tx_tick(void *user, uint64_t now_ms)
{
    struct fs_tx *tx = user;
    uint8_t p[1400];
    size_t len = fs_packet(tx->next++, p);
    fec_encoder_encode(tx->enc, p, len, fs_emit, tx);
    tx->next_ms = now_ms + 1;
}

static int fs_deliver(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct fs_rx *rx = user;
    uint8_t want[1400];
    uint32_t sn = len >= 24 ? rd_u32le(pkt + 12) : UINT32_MAX;
    if (sn >= FS_PACKETS || fs_packet((int)sn, want) != len || memcmp(want, pkt, len) != 0) {
        rx->bad++;
        return ERR_PROTO;
    }
    rx->count[sn]++;
    if (recovered)
        rx->recovered++;
    else
        rx->direct++;
    return 0;
}

static void fs_rx_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct fs_rx *rx = user;
    (void)from;
    fec_decoder_input(rx->dec, pkt, len, now_ms, fs_deliver, rx);
}

static void fec_alone_at_loss(double loss, bool messy)
{
    uint64_t seed = vnet_seed_from_env(500 + (uint64_t)(loss * 100) + messy);
    struct fs_tx tx = {0};
    struct fs_rx rx = {0};
    struct vnet *net = vnet_new(seed);
    tx.enc = fec_encoder_new(10, 3);
    rx.dec = fec_decoder_new(10, 3, NULL, NULL);
    rx.count = calloc(FS_PACKETS, 1);
    REQUIRE(net && tx.enc && rx.dec && rx.count);
    static const struct vnet_endpoint_cb tx_cb = {NULL, fs_tx_deadline, fs_tx_tick};
    static const struct vnet_endpoint_cb rx_cb = {fs_rx_deliver, NULL, NULL};
    tx.net = net;
    tx.id = vnet_add_endpoint(net, &tx_cb, &tx);
    vnet_add_endpoint(net, &rx_cb, &rx);
    struct vnet_link_cfg lc = {.loss = loss, .delay_ms = 15};
    if (messy) {
        lc.jitter_ms = 3;
        lc.reorder = 0.05;
        lc.dup = 0.02;
    }
    vnet_link_set(net, 0, 1, &lc);
    CHECK_EQ(vnet_run(net, 60000, NULL, NULL), VNET_IDLE);

    int lost = 0, twice = 0;
    for (int i = 0; i < FS_PACKETS; i++) {
        lost += rx.count[i] == 0;
        twice += rx.count[i] > 1;
    }
    const struct fec_stats *st = fec_decoder_stats(rx.dec);
    printf("    sim: fec 10/3 loss %d%%%s: %d packets, %d direct, %d recovered, %d lost; "
           "FECParityShards %llu FECRecovered %llu FECShortShards %llu FECErrs %llu\n",
           (int)(loss * 100 + 0.5), messy ? " +jitter/reorder/dup" : "", FS_PACKETS, rx.direct,
           rx.recovered, lost, (unsigned long long)st->parity_shards,
           (unsigned long long)st->recovered, (unsigned long long)st->short_shards,
           (unsigned long long)st->errs);
    CHECK_EQ(rx.bad, 0);
    CHECK(rx.recovered > 0);
    CHECK_EQ((uint64_t)rx.recovered, st->recovered);
    CHECK_EQ(st->mismatch, 0);
    CHECK_EQ(st->errs, 0);
    if (!messy)
        CHECK_EQ(twice, 0); /* each packet exactly once: directly or rebuilt */
    /* FEC must shrink the loss: at 10% most lost data comes back. */
    if (loss <= 0.1)
        CHECK(lost * 4 < (int)(FS_PACKETS * loss));
    else
        CHECK(lost < (int)(FS_PACKETS * loss));
    if (test_failures())
        printf("    seed %llu (replay with SIM_SEED=%llu)\n", (unsigned long long)seed,
               (unsigned long long)seed);
    free(rx.count);
    fec_encoder_free(tx.enc);
    fec_decoder_free(rx.dec);
    vnet_free(net);
}

TEST(fec_sim_alone_10pct_loss)
{
    fec_alone_at_loss(0.10, false);
}

TEST(fec_sim_alone_30pct_loss)
{
    fec_alone_at_loss(0.30, false);
}

TEST(fec_sim_alone_10pct_loss_reorder_dup)
{
    fec_alone_at_loss(0.10, true);
}

/* ---- KCP streams over FEC ------------------------------------------------------------ */

#define FK_MTU (1350 - 28) /* kcptun's default MTU minus the crypt and FEC reserve */
#define FK_CHUNK 16384

static uint8_t fk_byte(uint64_t salt, uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull ^ salt;
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 28;
    return (uint8_t)(x >> ((i & 7) * 8));
}

/* One end: KCP on top of an FEC encoder/decoder pair. */
struct fk_side {
    struct vnet *net;
    int id;
    struct kcp *k;
    struct fec_encoder *enc;
    struct fec_decoder *dec;
    uint64_t salt, peer_salt;  /* byte patterns sent / expected */
    uint64_t to_send, sent;    /* bytes to write, written */
    uint64_t expect, received; /* bytes expected, read */
    uint64_t wrong_at;         /* first wrong byte + 1, 0 if none */
    uint64_t kcp_refused;      /* packets KCP rejected */
    uint64_t now_ms;           /* time of the current callback */
};

static int fk_emit(void *user, const uint8_t *pkt, size_t len)
{
    struct fk_side *s = user;
    return vnet_send(s->net, s->id, pkt, len) == 0 ? 0 : ERR_NOMEM;
}

static void fk_output(void *user, const uint8_t *pkt, size_t len)
{
    struct fk_side *s = user;
    fec_encoder_encode(s->enc, pkt, len, fk_emit, s);
}

static int fk_to_kcp(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct fk_side *s = user;
    int rc = kcp_input(s->k, pkt, len, !recovered, s->now_ms);
    s->kcp_refused += rc != 0;
    return rc;
}

static void fk_pump(struct fk_side *s, uint64_t now_ms)
{
    uint8_t chunk[FK_CHUNK];
    bool wrote = false;
    while (s->sent < s->to_send && kcp_send_room(s->k) > 0) {
        size_t n = s->to_send - s->sent < FK_CHUNK ? (size_t)(s->to_send - s->sent) : FK_CHUNK;
        for (size_t i = 0; i < n; i++)
            chunk[i] = fk_byte(s->salt, s->sent + i);
        if (kcp_send(s->k, chunk, n) != 0)
            break;
        s->sent += n;
        wrote = true;
    }
    if (wrote)
        kcp_flush(s->k, now_ms);
}

static void fk_drain(struct fk_side *s)
{
    uint8_t buf[8192];
    ssize_t n;
    while ((n = kcp_recv(s->k, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (!s->wrong_at && buf[i] != fk_byte(s->peer_salt, s->received + (uint64_t)i))
                s->wrong_at = s->received + (uint64_t)i + 1;
        s->received += (uint64_t)n;
    }
}

static void fk_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct fk_side *s = user;
    (void)from;
    s->now_ms = now_ms;
    fec_decoder_input(s->dec, pkt, len, now_ms, fk_to_kcp, s);
    fk_drain(s);
    fk_pump(s, now_ms);
}

static uint64_t fk_deadline(void *user, uint64_t now_ms)
{
    struct fk_side *s = user;
    return kcp_next_deadline(s->k, now_ms);
}

static void fk_tick(void *user, uint64_t now_ms)
{
    struct fk_side *s = user;
    s->now_ms = now_ms;
    kcp_tick(s->k, now_ms);
    fk_drain(s);
    fk_pump(s, now_ms);
}

static bool fk_done(void *user)
{
    struct fk_side *sides = user;
    return sides[0].received >= sides[0].expect && sides[1].received >= sides[1].expect;
}

static void kcp_over_fec_at_loss(double loss, uint64_t bytes, uint64_t limit_ms)
{
    static const struct vnet_endpoint_cb cb = {fk_deliver, fk_deadline, fk_tick};
    uint64_t seed = vnet_seed_from_env(900 + (uint64_t)(loss * 100));
    struct fk_side s[2];
    memset(s, 0, sizeof(s));
    struct vnet *net = vnet_new(seed);
    REQUIRE(net);
    for (int i = 0; i < 2; i++) {
        s[i].net = net;
        s[i].k = kcp_new(0x600df00d, fk_output, &s[i]);
        s[i].enc = fec_encoder_new(10, 3);
        s[i].dec = fec_decoder_new(10, 3, NULL, NULL);
        REQUIRE(s[i].k && s[i].enc && s[i].dec);
        s[i].id = vnet_add_endpoint(net, &cb, &s[i]);
        kcp_set_stream(s[i].k, true);
        kcp_set_mtu(s[i].k, FK_MTU);
        kcp_set_nodelay(s[i].k, 1, 10, 2, 1); /* kcptun --mode fast3 */
        kcp_set_window(s[i].k, 1024, 1024);
        s[i].salt = 0x77 + (uint64_t)i;
        s[i].peer_salt = 0x77 + (uint64_t)(1 - i);
    }
    /* s[1] (server) sends |bytes|, s[0] (client) sends a little back. */
    s[1].to_send = s[0].expect = bytes;
    s[0].to_send = s[1].expect = 32 << 10;
    struct vnet_link_cfg lc = {.loss = loss, .delay_ms = 20, .jitter_ms = 4, .reorder = 0.02,
                               .dup = 0.01, .rate_bps = 100000000, .queue_bytes = 4 << 20};
    vnet_link_set_both(net, s[0].id, s[1].id, &lc);
    fk_pump(&s[0], 0);
    fk_pump(&s[1], 0);
    enum vnet_result r = vnet_run(net, limit_ms, fk_done, s);

    const struct fec_stats *st = fec_decoder_stats(s[0].dec);
    struct kcp_stats ks;
    kcp_get_stats(s[1].k, &ks);
    printf("    sim: kcp over fec 10/3 loss %d%%: %llu bytes in %llu ms virtual (%s); receiver "
           "FECRecovered %llu FECParityShards %llu FECShortShards %llu; sender retrans %llu\n",
           (int)(loss * 100 + 0.5), (unsigned long long)s[0].received,
           (unsigned long long)vnet_now(net), vnet_result_str(r),
           (unsigned long long)st->recovered, (unsigned long long)st->parity_shards,
           (unsigned long long)st->short_shards, (unsigned long long)ks.retrans_segs);
    CHECK_EQ(r, VNET_DONE);
    CHECK_EQ(s[0].received, bytes);
    CHECK_EQ(s[0].wrong_at, 0);
    CHECK_EQ(s[1].received, 32 << 10);
    CHECK_EQ(s[1].wrong_at, 0);
    CHECK(st->recovered > 0);
    CHECK_EQ(st->mismatch, 0);
    CHECK_EQ(st->errs, 0);
    if (test_failures())
        printf("    seed %llu (replay with SIM_SEED=%llu)\n", (unsigned long long)seed,
               (unsigned long long)seed);
    for (int i = 0; i < 2; i++) {
        kcp_free(s[i].k);
        fec_encoder_free(s[i].enc);
        fec_decoder_free(s[i].dec);
    }
    vnet_free(net);
}

TEST(fec_sim_kcp_stream_10pct_loss)
{
    kcp_over_fec_at_loss(0.10, 4u << 20, 120000);
}

TEST(fec_sim_kcp_stream_30pct_loss)
{
    kcp_over_fec_at_loss(0.30, 2u << 20, 300000);
}

/* ---- fewer parity shards than configured (adaptive parity) -------------------------- */

struct fp_sink {
    int n, recovered;
    uint32_t seqid[64];
    uint16_t type[64];
    size_t len[64];
    uint8_t pkt[64][80];
};

static int fp_emit(void *user, const uint8_t *pkt, size_t len)
{
    struct fp_sink *s = user;
    if (s->n >= 64 || len > sizeof(s->pkt[0]))
        return ERR_LIMIT;
    s->seqid[s->n] = rd_u32le(pkt);
    s->type[s->n] = rd_u16le(pkt + 4);
    s->len[s->n] = len;
    memcpy(s->pkt[s->n], pkt, len);
    s->n++;
    return 0;
}

static int fp_deliver(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct fp_sink *s = user;
    (void)pkt;
    (void)len;
    s->n++;
    s->recovered += recovered;
    return 0;
}

/* Groups closed with 1, 0 and 2 of 2 parity shards keep the seqid layout of 4 + 2 (the
 * skipped seqids are simply absent, as if lost), and the one parity shard sent still
 * rebuilds a lost data shard at a decoder with the configured layout. */
TEST(fec_sim_fewer_parity_keeps_layout)
{
    struct fec_encoder *enc = fec_encoder_new(4, 2);
    struct fp_sink *out = calloc(1, sizeof(*out)), *got = calloc(1, sizeof(*got));
    REQUIRE(enc && out && got);
    static const int parity[] = {1, 0, 2};
    uint8_t k[40];
    for (int g = 0; g < 3; g++) {
        fec_encoder_set_parity(enc, parity[g]);
        for (int i = 0; i < 4; i++) {
            memset(k, 0, sizeof(k));
            put_u32le(k + 12, (uint32_t)(g * 4 + i)); /* sn */
            k[4] = KCP_CMD_PUSH;
            memset(k + 24, 'a' + g * 4 + i, 16);
            put_u32le(k + 20, 16);
            CHECK_EQ(fec_encoder_encode(enc, k, sizeof(k), fp_emit, out), 0);
        }
    }
    static const uint32_t want_seq[] = {0, 1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17};
    REQUIRE(out->n == 15);
    for (int i = 0; i < 15; i++) {
        CHECK_EQ(out->seqid[i], want_seq[i]);
        CHECK_EQ(out->type[i], want_seq[i] % 6 >= 4 ? FEC_TYPE_PARITY : FEC_TYPE_DATA);
    }
    struct fec_decoder *dec = fec_decoder_new(4, 2, NULL, NULL);
    REQUIRE(dec);
    for (int i = 0; i < 15; i++)
        if (i != 1) /* data shard 1 of group 0 lost: its single parity shard rebuilds it */
            fec_decoder_input(dec, out->pkt[i], out->len[i], 0, fp_deliver, got);
    CHECK_EQ(got->n, 12);
    CHECK_EQ(got->recovered, 1);
    CHECK(!fec_decoder_has_mismatch(dec));
    fec_decoder_free(dec);
    fec_encoder_free(enc);
    free(out);
    free(got);
}
