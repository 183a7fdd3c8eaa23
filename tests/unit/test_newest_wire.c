/* SPDX-License-Identifier: MIT */
/* Newer kcptun wire through the whole datagram stack: aes-128-gcm and null datagrams made by
 * kcp-go v5.6.66 deliver their data, FEC recovers through AES-GCM, and the MTU arithmetic
 * (header and tag per method) gives kcp-go's segment sizes. */
#include "common/err.h"
#include "common/link.h"
#include "common/wire.h"
#include "crypto/crypt.h"
#include "tests/test.h"
#include "tests/vec.h"

#include <stdlib.h>
#include <string.h>

struct capture {
    size_t count;
    size_t len[64];
    uint8_t dgram[64][1500];
};

static void capture_output(void *user, const uint8_t *dgram, size_t len)
{
    struct capture *cap = user;
    if (cap->count < 64 && len <= 1500) {
        memcpy(cap->dgram[cap->count], dgram, len);
        cap->len[cap->count] = len;
    }
    cap->count++;
}

static bool in_list(const cJSON *list, int i)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
    {
        if ((int)v->valuedouble == i)
            return true;
    }
    return false;
}

TEST(newest_gcm_cases_deliver_through_link)
{
    cJSON *root = vec_load("newest/aes128gcm.json");
    REQUIRE(root);
    const cJSON *cs;
    int delivered_cases = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(root, "cases"))
    {
        int err = 0;
        struct crypt *c = crypt_new("aes-128-gcm", vec_str(cs, "key"), crypt_rng_sodium, NULL,
                                    &err);
        REQUIRE(c);
        struct link_config cfg;
        link_config_default(&cfg);
        cfg.data_shards = (int)vec_int(cs, "datashard", 0);
        cfg.parity_shards = (int)vec_int(cs, "parityshard", 0);
        cfg.rcvwnd = 1024;
        struct capture *cap = calloc(1, sizeof(*cap));
        REQUIRE(cap);
        struct link *l = link_new((uint32_t)vec_int(cs, "conv", 0), &cfg, c, capture_output,
                                  cap, &err);
        REQUIRE(l);
        const cJSON *dropped = cJSON_GetObjectItem(cs, "dropped_before_receiver");
        uint8_t *tampered = NULL;
        long tlen = vec_hex_field(cs, "tampered", &tampered);
        const cJSON *d;
        int i = 0;
        uint64_t now = 1000;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(cs, "datagrams"))
        {
            uint8_t *dgram = NULL;
            long n = vec_hex_field(d, "datagram", &dgram);
            REQUIRE(n > 0);
            if (!in_list(dropped, i)) {
                if (tlen > 0)
                    CHECK_EQ(link_input(l, tampered, (size_t)tlen, now), ERR_AUTH);
                else
                    CHECK_EQ(link_input(l, dgram, (size_t)n, now), 0);
            }
            free(dgram);
            i++;
            now += 1;
        }
        uint8_t *want = NULL;
        long want_len = vec_hex_field(cs, "go_receiver_delivered", &want);
        static uint8_t got[65536];
        size_t got_len = 0;
        ssize_t r;
        while ((r = link_recv(l, got + got_len, sizeof(got) - got_len)) > 0)
            got_len += (size_t)r;
        if (want_len >= 0) {
            CHECK_EQ(got_len, want_len);
            CHECK_MEM(got, want, (size_t)want_len < got_len ? (size_t)want_len : got_len);
            delivered_cases++;
        } else {
            CHECK_EQ(got_len, 0);
        }
        struct link_stats st;
        link_get_stats(l, &st);
        if (dropped)
            CHECK_EQ(st.fec.recovered, 3);
        free(want);
        free(tampered);
        link_free(l);
        crypt_free(c);
        free(cap);
    }
    CHECK_EQ(delivered_cases, 4);
    cJSON_Delete(root);
}

TEST(newest_null_datagram_delivers_through_link)
{
    cJSON *root = vec_load("newest/null_crypt.json");
    REQUIRE(root);
    int err = 0;
    struct crypt *c = crypt_new("null", "", crypt_rng_sodium, NULL, &err);
    REQUIRE(c);
    struct link_config cfg;
    link_config_default(&cfg);
    struct capture *cap = calloc(1, sizeof(*cap));
    REQUIRE(cap);
    struct link *l = link_new((uint32_t)vec_int(root, "conv", 0), &cfg, c, capture_output, cap,
                              &err);
    REQUIRE(l);
    uint8_t *dgram = NULL, *want = NULL;
    long n = vec_hex(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "datagrams"), 0)->valuestring,
                     &dgram);
    long want_len = vec_hex_field(root, "go_receiver_delivered", &want);
    REQUIRE(n > 0 && want_len > 0);
    CHECK_EQ(link_input(l, dgram, (size_t)n, 1000), 0);
    uint8_t got[256];
    CHECK_EQ(link_recv(l, got, sizeof(got)), want_len);
    CHECK_MEM(got, want, (size_t)want_len);
    free(dgram);
    free(want);
    link_free(l);
    crypt_free(c);
    free(cap);
    cJSON_Delete(root);
}

/* Sends 40 KB through a link at --mtu |mtu| and checks the first data datagram: its length
 * and, once opened, the FEC size field (2 + 24 + MSS) or the KCP segment length. A second link
 * takes every datagram and must deliver all 40 KB. */
static void check_mtu_at(const char *method, size_t mtu, int ds, int ps, size_t want_fec_size,
                         size_t want_len)
{
    int err = 0;
    struct crypt *c = crypt_new(method, "it's a secrect", crypt_rng_sodium, NULL, &err);
    REQUIRE(c);
    struct link_config cfg;
    link_config_default(&cfg);
    cfg.data_shards = ds;
    cfg.parity_shards = ps;
    cfg.pace = false;
    cfg.sndwnd = 64;
    cfg.rcvwnd = 64;
    cfg.mtu = mtu;
    struct capture *cap = calloc(1, sizeof(*cap));
    REQUIRE(cap);
    struct link *l = link_new(9, &cfg, c, capture_output, cap, &err);
    REQUIRE(l);
    static uint8_t data[40000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ(link_send(l, data, sizeof(data)), 0);
    link_flush(l, 1000);
    REQUIRE(cap->count > 12 && cap->count <= 64);
    size_t maxlen = 0;
    for (size_t i = 0; i < cap->count && i < 64; i++)
        maxlen = cap->len[i] > maxlen ? cap->len[i] : maxlen;
    CHECK_EQ(maxlen, mtu);
    /* The receiving side takes datagrams of that size too. */
    struct capture *back = calloc(1, sizeof(*back));
    REQUIRE(back);
    struct link *r = link_new(9, &cfg, c, capture_output, back, &err);
    REQUIRE(r);
    for (size_t i = 0; i < cap->count; i++) {
        uint8_t d[1500];
        memcpy(d, cap->dgram[i], cap->len[i]);
        CHECK_EQ(link_input(r, d, cap->len[i], 1001), 0);
    }
    static uint8_t got[40001];
    CHECK_EQ(link_recv(r, got, sizeof(got)), (ssize_t)sizeof(data));
    CHECK_MEM(got, data, sizeof(data));
    link_free(r);
    free(back);
    CHECK_EQ(cap->len[0], want_len);
    const uint8_t *pl = NULL;
    ssize_t n = crypt_open(c, cap->dgram[0], cap->len[0], 0, &pl);
    REQUIRE(n > 0);
    if (ds > 0) {
        CHECK_EQ(rd_u16le(pl + 4), 0xF1);
        CHECK_EQ(rd_u16le(pl + 6), want_fec_size);
    } else {
        CHECK_EQ(rd_u32le(pl + 20), want_fec_size); /* KCP len = MSS */
    }
    link_free(l);
    crypt_free(c);
    free(cap);
}

static void check_mtu(const char *method, int ds, int ps, size_t want_fec_size, size_t want_len)
{
    check_mtu_at(method, 1350, ds, ps, want_fec_size, want_len);
}

/* kcp-go's SetMtu: KCP mtu = min(mtu, 1500) - header - tag, MSS = that - 24 (at --mtu 1350:
 * aes-128-gcm 1290 / 1298, null 1318 / 1326, CFB methods 1298 / 1306, FEC on / off). */
TEST(newest_mtu_arithmetic_per_method)
{
    check_mtu("aes-128-gcm", 10, 3, 2 + 24 + 1290, 1350);
    check_mtu("aes-128-gcm", 0, 0, 1298, 1350);
    check_mtu("null", 10, 3, 2 + 24 + 1318, 1350);
    check_mtu("null", 0, 0, 1326, 1350);
    check_mtu("aes", 10, 3, 2 + 24 + 1298, 1350);
    check_mtu("none", 0, 0, 1306, 1350);
}

/* At --mtu 1500 a null datagram is the whole 1500 bytes of FEC layer (or KCP segment): kcp-go
 * sends and takes it; none is cut or refused. */
TEST(newest_mtu_1500_per_method)
{
    check_mtu_at("null", 1500, 10, 3, 2 + 24 + 1468, 1500);
    check_mtu_at("null", 1500, 0, 0, 1476, 1500);
    check_mtu_at("aes-128-gcm", 1500, 10, 3, 2 + 24 + 1440, 1500);
    check_mtu_at("aes", 1500, 0, 0, 1456, 1500);
}
