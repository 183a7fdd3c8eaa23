/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: link_input (crypt "none", FEC on or off) on a live KCP+FEC stack. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "common/link.h"
#include "common/tunnel.h"
#include "crypto/crypt.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   conv LE32 | flags u8 | mtu LE16 | op...
 * flags % 4 picks FEC (ds, ps): 0/0, 10/3, 4/2, 1/1; bit 2 nodelay, bit 3 ack-nodelay,
 * bit 4 message mode. mtu is 100 + value % 1401.
 * Each op is one byte (value % 6) and its arguments:
 *   0, 1 datagram record (LE16 length + bytes) -> link_input (on a copy; it opens in place)
 *   2 cap LE16                                 -> link_recv into 1 + cap % 8192 bytes
 *   3                                          -> link_flush
 *   4 step LE16                                -> clock += step, link_tick when due
 *   5 len LE16                                 -> link_send of 1 + len % 4096 pattern bytes
 * Every record is also given to link_peek and tunnel_is_session_start as an opened payload. Every emitted datagram must
 * fit the MTU and open with the same crypt.
 */

#define FUZZ_LINK_MAX_OPS 2048
#define FUZZ_LINK_RECV_MAX 8192

struct link_fuzz {
    struct crypt *crypt; /* "none": stateless, made once per process */
    size_t mtu;
    uint64_t out_pkts;
};

static struct link_fuzz fz;

static void fuzz_rng(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int err = 0;
    (void)argc;
    (void)argv;
    fz.crypt = crypt_new("none", "it's a secrect", fuzz_rng, NULL, &err);
    FUZZ_CHECK(fz.crypt != NULL);
    return 0;
}

static void on_output(void *user, const uint8_t *dgram, size_t len)
{
    struct link_fuzz *s = user;
    uint8_t copy[CRYPT_MAX_DATAGRAM];
    const uint8_t *payload;

    FUZZ_CHECK(len > 0 && len <= s->mtu && len <= sizeof(copy));
    memcpy(copy, dgram, len);
    FUZZ_CHECK(crypt_open(s->crypt, copy, len, 0, &payload) >= 0);
    s->out_pkts++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int fec[4][2] = {{0, 0}, {10, 3}, {4, 2}, {1, 1}};
    static uint8_t buf[FUZZ_LINK_RECV_MAX];
    static uint8_t pattern[4096] = {9, 8, 7};
    struct fuzz_reader r;
    struct link_config cfg;
    int err = 0;
    uint64_t now = 5000;

    if (!fz.crypt)
        LLVMFuzzerInitialize(NULL, NULL);
    fz.out_pkts = 0;
    fuzz_reader_init(&r, data, size);
    uint32_t conv = fuzz_u32(&r);
    uint8_t flags = fuzz_u8(&r);
    link_config_default(&cfg);
    cfg.data_shards = fec[flags % 4][0];
    cfg.parity_shards = fec[flags % 4][1];
    cfg.nodelay = (flags >> 2) & 1;
    cfg.ack_nodelay = (flags >> 3) & 1;
    cfg.message_mode = (flags >> 4) & 1;
    cfg.mtu = 100 + fuzz_u16(&r) % 1401;
    fz.mtu = cfg.mtu;

    struct link *l = link_new(conv, &cfg, fz.crypt, on_output, &fz, &err);
    if (!l)
        return 0;
    FUZZ_CHECK(link_conv(l) == conv);
    for (int ops = 0; fuzz_left(&r) > 0 && ops < FUZZ_LINK_MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&r) % 6;
        size_t len;
        int rc;

        switch (op) {
        case 0:
        case 1: {
            const uint8_t *rec = fuzz_record(&r, &len);
            uint32_t pconv, sn;
            bool parity;
            rc = link_peek(rec, len, &pconv, &sn, &parity);
            FUZZ_CHECK(rc == 0 || rc == ERR_PROTO);
            /* a session start (what a refusal answers) is a routable first segment */
            if (tunnel_is_session_start(rec, len))
                FUZZ_CHECK(rc == 0 && sn == 0 && !parity);
            uint8_t *copy = malloc(len ? len : 1);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, rec, len);
            rc = link_input(l, copy, len, now);
            FUZZ_CHECK(rc == 0 || rc == ERR_AUTH || rc == ERR_PROTO || rc == ERR_NOMEM);
            free(copy);
            break;
        }
        case 2: {
            size_t cap = 1 + fuzz_u16(&r) % FUZZ_LINK_RECV_MAX;
            size_t avail = link_recv_avail(l);
            ssize_t n = link_recv(l, buf, cap);
            if (avail == 0) /* 0: a zero-length PUSH consumed (see fuzz_kcp.c) */
                FUZZ_CHECK(n == ERR_AGAIN || n == 0);
            else if (!cfg.message_mode)
                FUZZ_CHECK(n > 0 && (size_t)n == (avail < cap ? avail : cap));
            else
                FUZZ_CHECK(n == ERR_TOOBIG || (n > 0 && (size_t)n == avail));
            break;
        }
        case 3:
            link_flush(l, now);
            break;
        case 4:
            now += fuzz_u16(&r);
            if (link_next_deadline(l, now) <= now)
                link_tick(l, now);
            break;
        case 5:
            rc = link_send(l, pattern, 1 + fuzz_u16(&r) % sizeof(pattern));
            FUZZ_CHECK(rc == 0 || rc == ERR_TOOBIG);
            break;
        }
    }
    struct link_stats st;
    link_get_stats(l, &st);
    FUZZ_CHECK(st.out_pkts == fz.out_pkts);
    FUZZ_CHECK(st.seal_errs == 0);
    link_free(l);
    return 0;
}
