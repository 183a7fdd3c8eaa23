/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the fake-TCP segment parsers and a flow table fed with hostile segments. */
#include "tests/fuzz/fuzz.h"

#include "common/tcpraw.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   mode u8 | op...
 * mode bit 0 picks IPv6 addresses for the flows (else IPv4). Four peers exist, index 0..3:
 * port 40000 + index on address ...1 + index; the table's own port is 29900 on ...100.
 * Each op is one byte (value % 6) and its arguments:
 *   0 record          -> tcpraw_parse_ip4; a parsed packet goes on to tcpraw_input
 *   1 peer u8, record -> tcpraw_input of the record as a TCP segment from that peer
 *   2 peer u8, record -> tcpraw_send of the record (at most 2048 bytes) to that peer
 *   3 peer u8, st u8  -> tcpraw_flow_add (st & 1: CONNECTING, else OPEN)
 *   4 peer u8         -> tcpraw_flow_remove
 *   5 step LE16       -> clock += step; tcpraw_expire of flows idle for 30 s
 * Every emitted segment must parse, carry a valid checksum, go to a known flow and hold the
 * payload that was sent; every delivered payload must lie inside the input record.
 */

#define FUZZ_TCPRAW_MAX_OPS 4096
#define FUZZ_TCPRAW_PORT 29900

struct tcpraw_fuzz {
    const uint8_t *sent;  /* payload of the running tcpraw_send */
    size_t sent_len;
    const uint8_t *rec;   /* record of the running tcpraw_input */
    size_t rec_len;
    uint64_t emitted, delivered;
};

static struct tcpraw_fuzz fz;

static void on_emit(void *user, const struct tcpraw_flow *f, const uint8_t *seg, size_t len)
{
    (void)user;
    struct tcpraw_seg s;
    FUZZ_CHECK(tcpraw_parse(seg, len, &s) == 0);
    FUZZ_CHECK(s.hdr_len == TCPRAW_TCP_HDR);
    FUZZ_CHECK(tcpraw_checksum(&f->local, &f->peer, seg, len) == 0);
    FUZZ_CHECK(s.sport == f->local.port && s.dport == f->peer.port);
    FUZZ_CHECK(s.window >= TCPRAW_WINDOW_MIN);
    if (s.flags & TCPRAW_PSH) {
        FUZZ_CHECK(fz.sent != NULL && s.len == fz.sent_len);
        FUZZ_CHECK(memcmp(s.payload, fz.sent, s.len) == 0);
    } else {
        FUZZ_CHECK(s.len == 0);
    }
    fz.emitted++;
}

static void on_deliver(void *user, const struct tcpraw_flow *f, const uint8_t *p, size_t len)
{
    (void)user;
    (void)f;
    FUZZ_CHECK(len > 0 && fz.rec != NULL);
    FUZZ_CHECK(p >= fz.rec && p + len <= fz.rec + fz.rec_len);
    fz.delivered++;
}

static struct tcpraw_addr addr_of(bool six, unsigned host, uint16_t port)
{
    struct tcpraw_addr a;
    memset(&a, 0, sizeof(a));
    a.family = six ? 6 : 4;
    if (six) {
        a.ip[0] = 0xfd;
        a.ip[15] = (uint8_t)host;
    } else {
        a.ip[0] = 10;
        a.ip[3] = (uint8_t)host;
    }
    a.port = port;
    return a;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    fuzz_reader_init(&r, data, size);
    memset(&fz, 0, sizeof(fz));
    bool six = fuzz_u8(&r) & 1u;
    static struct tcpraw t;
    struct tcpraw_cb cb = {NULL, on_emit, on_deliver};
    tcpraw_init(&t, FUZZ_TCPRAW_PORT, 7, &cb);
    struct tcpraw_addr me = addr_of(six, 100, FUZZ_TCPRAW_PORT), peer[4];
    for (unsigned i = 0; i < 4; i++)
        peer[i] = addr_of(six, 1 + i, (uint16_t)(40000 + i));
    uint64_t now = 0;
    for (int ops = 0; ops < FUZZ_TCPRAW_MAX_OPS && fuzz_left(&r) > 0; ops++) {
        unsigned op = fuzz_u8(&r) % 6u;
        size_t len;
        const uint8_t *p;
        struct tcpraw_addr src, dst;
        struct tcpraw_seg seg;
        switch (op) {
        case 0:
            p = fuzz_record(&r, &len);
            if (tcpraw_parse_ip4(p, len, &src, &dst, &seg) == 0) {
                FUZZ_CHECK(seg.hdr_len >= TCPRAW_TCP_HDR && seg.hdr_len <= TCPRAW_TCP_HDR_MAX);
                FUZZ_CHECK(seg.payload >= p && seg.payload + seg.len <= p + len);
                FUZZ_CHECK(src.family == 4 && src.port == seg.sport && dst.port == seg.dport);
                fz.rec = p;
                fz.rec_len = len;
                (void)tcpraw_input(&t, &src, &dst, seg.payload - seg.hdr_len,
                                   seg.hdr_len + seg.len, now);
                fz.rec = NULL;
            }
            break;
        case 1: {
            unsigned i = fuzz_u8(&r) % 4u;
            p = fuzz_record(&r, &len);
            fz.rec = p;
            fz.rec_len = len;
            if (tcpraw_parse(p, len, &seg) == 0) {
                FUZZ_CHECK(seg.hdr_len >= TCPRAW_TCP_HDR && seg.hdr_len <= len);
                FUZZ_CHECK(seg.hdr_len + seg.len == len);
            }
            /* the addresses carry the segment's own ports, as the shell sets them */
            src = peer[i];
            dst = me;
            if (len >= 4) {
                src.port = (uint16_t)(p[0] << 8 | p[1]);
                dst.port = (uint16_t)(p[2] << 8 | p[3]);
            }
            enum tcpraw_rx rx = tcpraw_input(&t, &src, &dst, p, len, now);
            FUZZ_CHECK(rx <= TCPRAW_RX_BAD);
            fz.rec = NULL;
            break;
        }
        case 2: {
            unsigned i = fuzz_u8(&r) % 4u;
            p = fuzz_record(&r, &len);
            if (len > 2048)
                len = 2048;
            fz.sent = p;
            fz.sent_len = len;
            (void)tcpraw_send(&t, &peer[i], p, len);
            fz.sent = NULL;
            break;
        }
        case 3: {
            unsigned i = fuzz_u8(&r) % 4u;
            unsigned st = fuzz_u8(&r);
            struct tcpraw_flow *f = tcpraw_flow_add(
                &t, &me, &peer[i], (st & 1u) ? TCPRAW_CONNECTING : TCPRAW_OPEN, now);
            FUZZ_CHECK(f != NULL && tcpraw_flow_find(&t, &peer[i]) == f);
            break;
        }
        case 4:
            tcpraw_flow_remove(&t, &peer[fuzz_u8(&r) % 4u]);
            FUZZ_CHECK(t.nflows <= 4);
            break;
        default:
            now += fuzz_u16(&r);
            (void)tcpraw_expire(&t, now, 30000, NULL, NULL);
            break;
        }
        FUZZ_CHECK(t.nflows <= 4);
    }
    FUZZ_CHECK(t.st.tx_segs == fz.emitted);
    FUZZ_CHECK(t.st.rx_data == fz.delivered);
    tcpraw_free(&t);
    return 0;
}
