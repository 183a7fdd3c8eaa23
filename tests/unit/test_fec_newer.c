/* SPDX-License-Identifier: MIT */
/* FEC input from newer kcp-go senders: groups without parity after idle gaps (aligned, as
 * kcp-go 5.6.16+ sends them, and shifted, as kcp-go 5.6.6-5.6.15 do), and type 0xF3. */
#include "common/err.h"
#include "common/link.h"
#include "common/wire.h"
#include "fec/fec.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

#define DS 10
#define PS 3
#define MAXP 64

struct pkts {
    size_t n;
    size_t len[MAXP];
    uint8_t p[MAXP][200];
};

static int collect(void *user, const uint8_t *pkt, size_t len)
{
    struct pkts *o = user;
    if (o->n < MAXP && len <= sizeof(o->p[0])) {
        memcpy(o->p[o->n], pkt, len);
        o->len[o->n++] = len;
    }
    return 0;
}

struct got {
    size_t n;          /* packets delivered */
    uint8_t first[MAXP]; /* first payload byte of each (our packet number) */
    size_t recovered;
    size_t bad;        /* delivered something that is not one of our data packets */
};

static int deliver(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct got *g = user;
    if (len != 40 || pkt[1] != 0xAB)
        g->bad++;
    if (g->n < MAXP)
        g->first[g->n++] = pkt[0];
    g->recovered += recovered;
    return 0;
}

/* Encodes |groups| full groups of 40-byte packets numbered 0, 1, ... (byte 1 = 0xAB). */
static void make_groups(struct pkts *o, int groups)
{
    struct fec_encoder *enc = fec_encoder_new(DS, PS);
    REQUIRE(enc);
    uint8_t kcp[40];
    memset(kcp, 0xAB, sizeof(kcp));
    for (int i = 0; i < groups * DS; i++) {
        kcp[0] = (uint8_t)i;
        CHECK_EQ(fec_encoder_encode(enc, kcp, sizeof(kcp), collect, o), 0);
    }
    fec_encoder_free(enc);
}

static bool delivered(const struct got *g, uint8_t num)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->first[i] == num)
            return true;
    return false;
}

static const char *last_log;
static void log_msg(void *user, const char *msg)
{
    (void)user;
    free((void *)last_log);
    last_log = strdup(msg);
}

/* kcp-go >= 5.6.16: group 1 went out without parity (its seqids 23..25 unused); the groups
 * after it still recover. */
TEST(fec_newer_aligned_parity_skip)
{
    struct pkts *o = calloc(1, sizeof(*o));
    REQUIRE(o);
    make_groups(o, 3); /* 39 packets: seqids 0..38 */
    REQUIRE(o->n == 39);
    struct fec_decoder *dec = fec_decoder_new(DS, PS, log_msg, NULL);
    REQUIRE(dec);
    struct got g = {0};
    for (size_t i = 0; i < o->n; i++) {
        uint32_t seqid = rd_u32le(o->p[i]);
        if (seqid >= 23 && seqid <= 25)
            continue; /* parity skipped */
        if (seqid == 14 || seqid == 27)
            continue; /* lost: one data shard of group 1 (no parity) and of group 2 */
        CHECK_EQ(fec_decoder_input(dec, o->p[i], o->len[i], 1000 + i, deliver, &g), 0);
    }
    CHECK(!fec_decoder_has_mismatch(dec));
    CHECK_EQ(g.bad, 0);
    CHECK_EQ(g.recovered, 1);
    CHECK(delivered(&g, 21));  /* seqid 27 = packet 21, rebuilt from group 2's parity */
    CHECK(!delivered(&g, 11)); /* seqid 14 had no parity to come back from */
    CHECK_EQ(g.n, 29);
    /* The parity-less group ages out instead of waiting. */
    struct got g2 = {0};
    uint8_t late[48];
    memcpy(late, o->p[0], o->len[0]);
    put_u32le(late, 39 * 40); /* a far later group */
    fec_decoder_input(dec, late, o->len[0], 1000 + FEC_EXPIRE_MS + 100, deliver, &g2);
    CHECK_EQ(fec_decoder_pending(dec), 1);
    fec_decoder_free(dec);
    free(o);
}

/* kcp-go 5.6.6-5.6.15: after a skipped group the seqid is not advanced, so the next data
 * sits where we expect parity. Every data packet still goes up, parity never does, recovery
 * stops for the session (it would mix two sender groups) and the log says why. */
TEST(fec_newer_misaligned_sender)
{
    struct pkts *o = calloc(1, sizeof(*o));
    REQUIRE(o);
    make_groups(o, 4); /* packets 0..39 in seqids 0..51 */
    REQUIRE(o->n == 52);
    struct fec_decoder *dec = fec_decoder_new(DS, PS, log_msg, NULL);
    REQUIRE(dec);
    struct got g = {0};
    uint32_t shift = 0;
    for (size_t i = 0; i < o->n; i++) {
        uint8_t buf[200];
        memcpy(buf, o->p[i], o->len[i]);
        uint32_t seqid = rd_u32le(buf);
        uint32_t group = seqid / (DS + PS);
        bool parity = rd_u16le(buf + 4) == FEC_TYPE_PARITY;
        if ((group == 1 || group == 2) && parity) {
            if (seqid % (DS + PS) == DS)
                shift += PS; /* a skipped group: its parity seqids are reused */
            continue;
        }
        put_u32le(buf, seqid - shift);
        if (group == 3 && !parity && seqid % (DS + PS) == 4)
            continue; /* lost: must not come back from parity across sender groups */
        CHECK_EQ(fec_decoder_input(dec, buf, o->len[i], 1000 + i, deliver, &g), 0);
    }
    CHECK(fec_decoder_has_mismatch(dec));
    CHECK_EQ(g.bad, 0);
    CHECK_EQ(g.recovered, 0);
    CHECK_EQ(g.n, 39); /* 40 data packets, one lost */
    for (uint8_t k = 0; k < 40; k++)
        CHECK(delivered(&g, k) == (k != 34));
    REQUIRE(last_log);
    CHECK(strstr(last_log, "5.6.6") != NULL);
    CHECK(strstr(last_log, "--ds/--ps") != NULL);
    fec_decoder_free(dec);
    free(o);
}

/* Type 0xF3 (kcp-go out of band): never given to KCP, counted, and it opens no session. */
TEST(fec_newer_oob_dropped)
{
    uint8_t oob[40];
    memset(oob, 0x5A, sizeof(oob));
    put_u32le(oob, 0xFFFFFFFFu);
    put_u16le(oob + 4, FEC_TYPE_OOB);
    put_u16le(oob + 6, (uint16_t)(sizeof(oob) - 6));
    put_u32le(oob + 8, 1234);
    CHECK(fec_is_fec_packet(oob, sizeof(oob)));
    for (int ds = 0; ds <= DS; ds += DS) {
        struct fec_decoder *dec = fec_decoder_new(ds, ds ? PS : 0, NULL, NULL);
        REQUIRE(dec);
        struct got g = {0};
        CHECK_EQ(fec_decoder_input(dec, oob, sizeof(oob), 1000, deliver, &g), 0);
        CHECK_EQ(g.n, 0);
        CHECK_EQ(fec_decoder_stats(dec)->oob, 1);
        CHECK(!fec_decoder_has_mismatch(dec));
        fec_decoder_free(dec);
    }
    uint32_t conv = 0, sn = 0;
    bool parity = false;
    CHECK_EQ(link_peek(oob, sizeof(oob), &conv, &sn, &parity), ERR_PROTO);
}
