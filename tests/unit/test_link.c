/* SPDX-License-Identifier: MIT */
/* Tests for the KCP + FEC + crypt stack: real kcptun datagrams decode to their byte streams. */
#include "common/err.h"
#include "common/link.h"
#include "crypto/crypt.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sink_output(void *user, const uint8_t *dgram, size_t len)
{
    (void)dgram;
    size_t *count = user;
    (void)len;
    (*count)++;
}

/* Feeds one direction of a captured run into a fresh link and compares the byte stream. */
static void replay_direction(const cJSON *run, const char *direction, const char *stream_key)
{
    const char *method = vec_str(run, "crypt");
    long long ds = vec_int(run, "datashard_parityshard", 0);
    long long ps = ds == 10 ? 3 : ds == 4 ? 2 : 0;
    const cJSON *convs = cJSON_GetObjectItemCaseSensitive(run, "convs");
    REQUIRE(method && cJSON_GetArraySize(convs) == 1);
    uint32_t conv = (uint32_t)cJSON_GetArrayItem(convs, 0)->valuedouble;

    int err = 0;
    struct crypt *c = crypt_new(method, "it's a secrect", crypt_rng_sodium, NULL, &err);
    REQUIRE(c);
    struct link_config cfg;
    link_config_default(&cfg);
    cfg.data_shards = (int)ds;
    cfg.parity_shards = (int)ps;
    cfg.rcvwnd = 1024;
    size_t emitted = 0;
    struct link *l = link_new(conv, &cfg, c, sink_output, &emitted, &err);
    REQUIRE(l);

    uint8_t *want = NULL;
    long want_len = vec_hex_field(run, stream_key, &want);
    REQUIRE(want_len >= 0);
    uint8_t got[65536];
    size_t got_len = 0;
    uint64_t now = 1000;
    const cJSON *pkt;
    int fed = 0;
    cJSON_ArrayForEach(pkt, cJSON_GetObjectItemCaseSensitive(run, "packets"))
    {
        if (strcmp(vec_str(pkt, "direction"), direction) != 0)
            continue;
        uint8_t *dgram = NULL;
        long n = vec_hex_field(pkt, "wire_hex", &dgram);
        REQUIRE(n > 0);
        CHECK_EQ(link_input(l, dgram, (size_t)n, now), 0);
        free(dgram);
        fed++;
        now += 5;
        ssize_t r;
        while ((r = link_recv(l, got + got_len, sizeof(got) - got_len)) > 0)
            got_len += (size_t)r;
    }
    link_flush(l, now);
    CHECK(fed > 0);
    CHECK_EQ(got_len, want_len);
    CHECK_MEM(got, want, (size_t)want_len < got_len ? (size_t)want_len : got_len);
    struct link_stats st;
    link_get_stats(l, &st);
    CHECK_EQ(st.in_errs, 0);
    CHECK(emitted > 0); /* it acknowledged what it received */
    free(want);
    link_free(l);
    crypt_free(c);
}

TEST(link_decodes_real_kcptun_datagrams)
{
    cJSON *root = vec_load("binary_capture.json");
    REQUIRE(root);
    const cJSON *run;
    int runs = 0;
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs"))
    {
        replay_direction(run, "client->server", "kcp_stream_client_to_server_hex");
        replay_direction(run, "server->client", "kcp_stream_server_to_client_hex");
        runs++;
    }
    CHECK_EQ(runs, 3);
    cJSON_Delete(root);
}

TEST(link_drops_corrupt_and_foreign_datagrams)
{
    int err = 0;
    struct crypt *c = crypt_new("aes", "it's a secrect", crypt_rng_sodium, NULL, &err);
    struct crypt *other = crypt_new("aes", "another key", crypt_rng_sodium, NULL, &err);
    REQUIRE(c && other);
    struct link_config cfg;
    link_config_default(&cfg);
    size_t emitted = 0;
    struct link *a = link_new(7, &cfg, c, sink_output, &emitted, &err);
    REQUIRE(a);

    uint8_t buf[1500];
    memset(buf, 0xab, sizeof(buf));
    CHECK_EQ(link_input(a, buf, 10, 1), ERR_AUTH);    /* shorter than the crypt header */
    CHECK_EQ(link_input(a, buf, 1400, 1), ERR_AUTH);  /* CRC cannot match */

    /* A valid datagram under another key is indistinguishable from garbage. */
    memset(buf, 0, sizeof(buf));
    ssize_t n = crypt_seal(other, buf, 100, sizeof(buf), 0);
    REQUIRE(n > 0);
    CHECK_EQ(link_input(a, buf, (size_t)n, 1), ERR_AUTH);

    /* A valid datagram with a KCP packet of another conv is opened but dropped by KCP. */
    memset(buf, 0, sizeof(buf));
    buf[20] = 99; /* conv 99 */
    buf[24] = 81; /* PUSH, len 0 */
    n = crypt_seal(c, buf, 24, sizeof(buf), 0);
    REQUIRE(n > 0);
    link_input(a, buf, (size_t)n, 1);
    struct link_stats st;
    link_get_stats(a, &st);
    CHECK_EQ(st.in_errs, 3);
    CHECK(st.kcp.drop[KCP_DROP_CONV] >= 1);
    CHECK_EQ(link_recv_avail(a), 0);
    link_free(a);
    crypt_free(c);
    crypt_free(other);
}

TEST(link_peek_reads_routing_facts)
{
    uint8_t p[40] = {0};
    uint32_t conv = 0, sn = 0;
    bool parity = false;
    /* plain KCP: conv at 0, sn at 12 */
    p[0] = 0x44, p[4] = 81, p[12] = 5;
    CHECK_EQ(link_peek(p, 24, &conv, &sn, &parity), 0);
    CHECK_EQ(conv, 0x44);
    CHECK_EQ(sn, 5);
    CHECK(!parity);
    CHECK_EQ(link_peek(p, 23, &conv, &sn, &parity), ERR_PROTO);
    /* FEC data: header of 8, then KCP */
    memset(p, 0, sizeof(p));
    p[4] = 0xf1, p[8] = 0x55, p[8 + 12] = 9;
    CHECK_EQ(link_peek(p, 32, &conv, &sn, &parity), 0);
    CHECK_EQ(conv, 0x55);
    CHECK_EQ(sn, 9);
    CHECK_EQ(link_peek(p, 31, &conv, &sn, &parity), ERR_PROTO);
    /* FEC parity carries no conv */
    p[4] = 0xf2;
    CHECK_EQ(link_peek(p, 30, &conv, &sn, &parity), 0);
    CHECK(parity);
}

TEST(link_mtu_leaves_room_for_headers)
{
    int err = 0;
    struct crypt *c = crypt_new("none", "k", crypt_rng_sodium, NULL, &err);
    REQUIRE(c);
    struct link_config cfg;
    link_config_default(&cfg);
    cfg.mtu = 40; /* 20 crypt + 8 FEC + 24 KCP header do not fit */
    struct link *l = link_new(1, &cfg, c, sink_output, NULL, &err);
    CHECK(l == NULL);
    CHECK_EQ(err, ERR_INVAL);
    cfg.mtu = 1350;
    cfg.data_shards = 200, cfg.parity_shards = 100;
    l = link_new(1, &cfg, c, sink_output, NULL, &err);
    CHECK(l == NULL);
    CHECK_EQ(err, ERR_INVAL);
    crypt_free(c);
}

/* Datagrams of one direction, kept for delivery. */
struct dq {
    size_t n;
    size_t len[64];
    uint8_t d[64][1500];
};

static void dq_output(void *user, const uint8_t *dgram, size_t len)
{
    struct dq *q = user;
    if (q->n < 64 && len <= sizeof(q->d[0])) {
        memcpy(q->d[q->n], dgram, len);
        q->len[q->n++] = len;
    }
}

static void dq_deliver(struct dq *q, struct link *to, uint64_t now_ms)
{
    for (size_t i = 0; i < q->n; i++)
        link_input(to, q->d[i], q->len[i], now_ms);
    q->n = 0;
}

TEST(link_sends_ack_only_packets_without_fec)
{
    int err = 0;
    struct crypt *c = crypt_new("none", "k", crypt_rng_sodium, NULL, &err);
    REQUIRE(c);
    struct link_config cfg;
    link_config_default(&cfg);
    cfg.nodelay = 1, cfg.interval_ms = 10; /* FEC 10/3 */
    struct dq *ab = calloc(1, sizeof(*ab)), *ba = calloc(1, sizeof(*ba));
    REQUIRE(ab && ba);
    struct link *a = link_new(5, &cfg, c, dq_output, ab, &err);
    struct link *b = link_new(5, &cfg, c, dq_output, ba, &err);
    REQUIRE(a && b);
    static uint8_t data[20000];
    memset(data, 'f', sizeof(data));
    CHECK_EQ(link_send(a, data, sizeof(data)), 0);
    link_flush(a, 100);
    CHECK(ab->n >= 16); /* 16 data packets and the parity of the first group */
    dq_deliver(ab, b, 120);
    link_flush(b, 130);
    REQUIRE(ba->n > 0);
    for (size_t i = 0; i < ba->n; i++) {
        const uint8_t *p = ba->d[i] + 20; /* after nonce and CRC */
        CHECK(p[4] == 82); /* a KCP ACK right away: no FEC header in front */
    }
    dq_deliver(ba, a, 150);
    CHECK_EQ(link_wait_snd(a), 0);
    struct link_stats sa, sb;
    link_get_stats(a, &sa);
    link_get_stats(b, &sb);
    CHECK_EQ(sb.plain_ctrl_out, sb.out_pkts);
    CHECK_EQ(sa.plain_ctrl_out, 0);
    CHECK(sa.fec_parity_out >= 3);
    CHECK_EQ(sa.in_errs, 0);
    uint8_t got[20000];
    CHECK_EQ(link_recv(b, got, sizeof(got)), (ssize_t)sizeof(data));
    CHECK_MEM(got, data, sizeof(data));
    link_free(a);
    link_free(b);
    free(ab);
    free(ba);
    crypt_free(c);
}
