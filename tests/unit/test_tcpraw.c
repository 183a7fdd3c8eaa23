/* SPDX-License-Identifier: MIT */
/* Tests for the fake-TCP core: segment codec, checksums, handshake and seq/ack bookkeeping. */
#include "common/tcpraw.h"
#include "tests/test.h"

#include <string.h>

static struct tcpraw_addr v4(uint8_t last, uint16_t port)
{
    struct tcpraw_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 4;
    a.ip[0] = 10;
    a.ip[3] = last;
    a.port = port;
    return a;
}

static struct tcpraw_addr v6(uint8_t last, uint16_t port)
{
    struct tcpraw_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 6;
    a.ip[0] = 0xfd;
    a.ip[15] = last;
    a.port = port;
    return a;
}

/* What a table emitted and delivered. */
struct rec {
    uint8_t seg[8][2100];
    size_t seglen[8];
    int nseg;
    uint8_t data[8][2100];
    size_t datalen[8];
    int ndata;
};

static void rec_emit(void *user, const struct tcpraw_flow *f, const uint8_t *seg, size_t len)
{
    struct rec *r = user;
    (void)f;
    if (r->nseg < 8) {
        memcpy(r->seg[r->nseg], seg, len);
        r->seglen[r->nseg++] = len;
    }
}

static void rec_deliver(void *user, const struct tcpraw_flow *f, const uint8_t *p, size_t len)
{
    struct rec *r = user;
    (void)f;
    if (r->ndata < 8) {
        memcpy(r->data[r->ndata], p, len);
        r->datalen[r->ndata++] = len;
    }
}

static void table_init(struct tcpraw *t, struct rec *r, uint16_t port)
{
    memset(r, 0, sizeof(*r));
    struct tcpraw_cb cb = {r, rec_emit, rec_deliver};
    tcpraw_init(t, port, 42, &cb);
}

/* A segment as a peer would send it: 20-byte header, or 1.2.32's 36-byte one when |ts|. */
static size_t peer_seg(uint8_t *out, const struct tcpraw_addr *src, const struct tcpraw_addr *dst,
                       uint32_t seq, uint32_t ack, uint8_t flags, const char *payload, bool ts)
{
    size_t plen = payload ? strlen(payload) : 0;
    if (!ts)
        return tcpraw_build(out, 2100, src, dst, seq, ack, flags, 65535, (const uint8_t *)payload,
                            plen);
    size_t n = tcpraw_build(out, 2100, src, dst, seq, ack, flags, 65535, NULL, 0);
    /* tcpraw 1.2.32: data offset 9, option 01 01 08 0c TSval TSecr 00 00, then 00 00 */
    static const uint8_t opt[16] = {1, 1, 8, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(out + n, opt, sizeof(opt));
    out[12] = 9 << 4;
    if (plen)
        memcpy(out + n + 16, payload, plen);
    return n + 16 + plen;
}

TEST(tcpraw_checksum_known_answers)
{
    /* 10.0.0.1:40000 -> 10.0.0.2:29900, seq 0x01020304, ack 0xa0b0c0d0, PSH|ACK, window
     * 0x9000, payload "kcp": checksum 0xb9ce (computed independently). */
    static const uint8_t want[] = {0x9c, 0x40, 0x74, 0xcc, 0x01, 0x02, 0x03, 0x04,
                                   0xa0, 0xb0, 0xc0, 0xd0, 0x50, 0x18, 0x90, 0x00,
                                   0xb9, 0xce, 0x00, 0x00, 0x6b, 0x63, 0x70};
    struct tcpraw_addr s = v4(1, 40000), d = v4(2, 29900);
    uint8_t out[64];
    size_t n = tcpraw_build(out, sizeof(out), &s, &d, 0x01020304u, 0xa0b0c0d0u,
                            TCPRAW_PSH | TCPRAW_ACK, 0x9000, (const uint8_t *)"kcp", 3);
    CHECK_EQ(n, sizeof(want));
    CHECK_MEM(out, want, sizeof(want));
    CHECK_EQ(tcpraw_checksum(&s, &d, out, n), 0);
    /* the same segment between fd00::1 and fd00::2: 0xd3cc */
    struct tcpraw_addr s6 = v6(1, 40000), d6 = v6(2, 29900);
    n = tcpraw_build(out, sizeof(out), &s6, &d6, 0x01020304u, 0xa0b0c0d0u,
                     TCPRAW_PSH | TCPRAW_ACK, 0x9000, (const uint8_t *)"kcp", 3);
    CHECK_EQ(out[16], 0xd3);
    CHECK_EQ(out[17], 0xcc);
    CHECK_EQ(tcpraw_checksum(&s6, &d6, out, n), 0);
    /* a flipped payload bit breaks it */
    out[21] ^= 1;
    CHECK(tcpraw_checksum(&s6, &d6, out, n) != 0);
    CHECK_EQ(tcpraw_build(out, 22, &s, &d, 0, 0, 0, 0, (const uint8_t *)"kcp", 3), 0);
}

TEST(tcpraw_parse_both_header_variants)
{
    struct tcpraw_addr s = v4(1, 1000), d = v4(2, 2000);
    uint8_t buf[2100];
    struct tcpraw_seg seg;
    size_t n = peer_seg(buf, &s, &d, 5, 6, TCPRAW_PSH | TCPRAW_ACK, "hello", false);
    REQUIRE(tcpraw_parse(buf, n, &seg) == 0);
    CHECK_EQ(seg.sport, 1000);
    CHECK_EQ(seg.dport, 2000);
    CHECK_EQ(seg.seq, 5);
    CHECK_EQ(seg.ack, 6);
    CHECK_EQ(seg.flags, TCPRAW_PSH | TCPRAW_ACK);
    CHECK_EQ(seg.window, 65535);
    CHECK_EQ(seg.hdr_len, 20);
    CHECK_EQ(seg.len, 5);
    CHECK_MEM(seg.payload, "hello", 5);
    n = peer_seg(buf, &s, &d, 5, 6, TCPRAW_PSH | TCPRAW_ACK, "hello", true);
    REQUIRE(tcpraw_parse(buf, n, &seg) == 0);
    CHECK_EQ(seg.hdr_len, 36);
    CHECK_EQ(seg.len, 5);
    CHECK_MEM(seg.payload, "hello", 5);
    /* truncated header, data offset below 5 or beyond the segment */
    CHECK_EQ(tcpraw_parse(buf, 19, &seg), -1);
    CHECK_EQ(tcpraw_parse(buf, 30, &seg), -1);
    buf[12] = 4 << 4;
    CHECK_EQ(tcpraw_parse(buf, n, &seg), -1);
    buf[12] = 5 << 4;
    CHECK_EQ(tcpraw_parse(buf, 20, &seg), 0);
    CHECK_EQ(seg.len, 0);
}

TEST(tcpraw_parse_ip4_checks_the_ip_header)
{
    struct tcpraw_addr s = v4(1, 1000), d = v4(2, 2000), gs, gd;
    uint8_t pkt[2200];
    struct tcpraw_seg seg;
    size_t n = peer_seg(pkt + 20, &s, &d, 1, 2, TCPRAW_PSH | TCPRAW_ACK, "abc", false);
    tcpraw_ip4_header(pkt, &s, &d, n, 7);
    /* header checksum is valid: the one's complement sum of the header is 0xffff */
    uint32_t acc = 0;
    for (int i = 0; i < 20; i += 2)
        acc += (uint32_t)pkt[i] << 8 | pkt[i + 1];
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    CHECK_EQ(acc, 0xffff);
    CHECK_EQ(pkt[8], 64);
    CHECK_EQ(pkt[6], 0x40);
    REQUIRE(tcpraw_parse_ip4(pkt, 20 + n, &gs, &gd, &seg) == 0);
    CHECK(tcpraw_addr_equal(&gs, &s));
    CHECK(tcpraw_addr_equal(&gd, &d));
    CHECK_EQ(seg.len, 3);
    /* trailing padding is trimmed by the total length */
    pkt[20 + n] = 0xee;
    REQUIRE(tcpraw_parse_ip4(pkt, 20 + n + 1, &gs, &gd, &seg) == 0);
    CHECK_EQ(seg.len, 3);
    /* shorter than the total length */
    CHECK_EQ(tcpraw_parse_ip4(pkt, 20 + n - 1, &gs, &gd, &seg), -1);
    /* a fragment */
    pkt[6] = 0x20;
    CHECK_EQ(tcpraw_parse_ip4(pkt, 20 + n, &gs, &gd, &seg), -1);
    pkt[6] = 0x40;
    /* UDP */
    pkt[9] = 17;
    CHECK_EQ(tcpraw_parse_ip4(pkt, 20 + n, &gs, &gd, &seg), -1);
    pkt[9] = 6;
    /* IHL below 5, and IPv6 */
    pkt[0] = 0x44;
    CHECK_EQ(tcpraw_parse_ip4(pkt, 20 + n, &gs, &gd, &seg), -1);
    pkt[0] = 0x65;
    CHECK_EQ(tcpraw_parse_ip4(pkt, 20 + n, &gs, &gd, &seg), -1);
    CHECK_EQ(tcpraw_parse_ip4(pkt, 10, &gs, &gd, &seg), -1);
}

TEST(tcpraw_client_handshake_and_data)
{
    struct tcpraw t;
    static struct rec r;
    table_init(&t, &r, 40000);
    struct tcpraw_addr me = v4(1, 40000), srv = v4(2, 29900);
    REQUIRE(tcpraw_flow_add(&t, &me, &srv, TCPRAW_CONNECTING, 0) != NULL);
    /* nothing leaves before the SYN-ACK */
    CHECK_EQ(tcpraw_send(&t, &srv, (const uint8_t *)"x", 1), -1);
    CHECK_EQ(t.st.tx_notready, 1);
    uint8_t seg[2100];
    /* a stray ACK while connecting changes nothing */
    size_t n = peer_seg(seg, &srv, &me, 7, 8, TCPRAW_ACK, NULL, false);
    CHECK_EQ(tcpraw_input(&t, &srv, &me, seg, n, 1), TCPRAW_RX_CONTROL);
    CHECK_EQ(r.nseg, 0);
    /* SYN-ACK: server ISN 0xfffffff0, acknowledging our ISN 1000 */
    n = peer_seg(seg, &srv, &me, 0xfffffff0u, 1001, TCPRAW_SYN | TCPRAW_ACK, NULL, false);
    CHECK_EQ(tcpraw_input(&t, &srv, &me, seg, n, 2), TCPRAW_RX_CONTROL);
    REQUIRE(r.nseg == 1);
    struct tcpraw_seg got;
    REQUIRE(tcpraw_parse(r.seg[0], r.seglen[0], &got) == 0);
    CHECK_EQ(got.flags, TCPRAW_ACK);
    CHECK_EQ(got.seq, 1001);
    CHECK_EQ(got.ack, 0xfffffff1u);
    CHECK_EQ(got.sport, 40000);
    CHECK_EQ(got.dport, 29900);
    CHECK(got.window >= TCPRAW_WINDOW_MIN);
    CHECK_EQ(tcpraw_checksum(&me, &srv, r.seg[0], r.seglen[0]), 0);
    /* two datagrams: seq advances by the payload, ack stays */
    CHECK_EQ(tcpraw_send(&t, &srv, (const uint8_t *)"hello", 5), 0);
    CHECK_EQ(tcpraw_send(&t, &srv, (const uint8_t *)"kcp", 3), 0);
    REQUIRE(r.nseg == 3);
    REQUIRE(tcpraw_parse(r.seg[1], r.seglen[1], &got) == 0);
    CHECK_EQ(got.flags, TCPRAW_PSH | TCPRAW_ACK);
    CHECK_EQ(got.seq, 1001);
    CHECK_EQ(got.ack, 0xfffffff1u);
    CHECK_EQ(got.len, 5);
    CHECK_MEM(got.payload, "hello", 5);
    uint16_t win = got.window;
    REQUIRE(tcpraw_parse(r.seg[2], r.seglen[2], &got) == 0);
    CHECK_EQ(got.seq, 1006);
    CHECK_EQ(got.window, win);
    /* the server's data (1.2.32 header) across the seq wrap: delivered, ack follows */
    n = peer_seg(seg, &srv, &me, 0xfffffff1u, 1009, TCPRAW_PSH | TCPRAW_ACK,
                 "0123456789abcdefXYZ", true);
    CHECK_EQ(tcpraw_input(&t, &srv, &me, seg, n, 3), TCPRAW_RX_DATA);
    REQUIRE(r.ndata == 1);
    CHECK_EQ(r.datalen[0], 19);
    CHECK_MEM(r.data[0], "0123456789abcdefXYZ", 19);
    /* a reordered older segment is delivered but moves neither number back */
    n = peer_seg(seg, &srv, &me, 0xfffffff1u, 1001, TCPRAW_PSH | TCPRAW_ACK, "old", false);
    CHECK_EQ(tcpraw_input(&t, &srv, &me, seg, n, 4), TCPRAW_RX_DATA);
    CHECK_EQ(tcpraw_send(&t, &srv, (const uint8_t *)"z", 1), 0);
    REQUIRE(r.nseg == 4);
    REQUIRE(tcpraw_parse(r.seg[3], r.seglen[3], &got) == 0);
    CHECK_EQ(got.seq, 1009);
    CHECK_EQ(got.ack, 4); /* 0xfffffff1 + 19, wrapped */
    CHECK_EQ(t.st.rx_data, 2);
    tcpraw_free(&t);
}

TEST(tcpraw_server_learns_the_flow_from_the_peer)
{
    struct tcpraw t;
    static struct rec r;
    table_init(&t, &r, 29900);
    struct tcpraw_addr me = v6(2, 29900), cli = v6(1, 40000), other = v6(3, 40000);
    uint8_t seg[2100];
    /* before accept: unknown */
    size_t n = peer_seg(seg, &cli, &me, 1001, 5001, TCPRAW_PSH | TCPRAW_ACK, "hi", false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 0), TCPRAW_RX_UNKNOWN);
    CHECK_EQ(r.ndata, 0);
    REQUIRE(tcpraw_flow_add(&t, &me, &cli, TCPRAW_OPEN, 0) != NULL);
    CHECK_EQ(tcpraw_send(&t, &cli, (const uint8_t *)"x", 1), -1);
    /* the handshake ACK teaches seq only; data then teaches ack */
    n = peer_seg(seg, &cli, &me, 1001, 5001, TCPRAW_ACK, NULL, false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 1), TCPRAW_RX_CONTROL);
    CHECK_EQ(tcpraw_send(&t, &cli, (const uint8_t *)"x", 1), -1);
    n = peer_seg(seg, &cli, &me, 1001, 5001, TCPRAW_PSH | TCPRAW_ACK, "hi", false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 2), TCPRAW_RX_DATA);
    CHECK_EQ(tcpraw_send(&t, &cli, (const uint8_t *)"yo", 2), 0);
    REQUIRE(r.nseg == 1);
    struct tcpraw_seg got;
    REQUIRE(tcpraw_parse(r.seg[0], r.seglen[0], &got) == 0);
    CHECK_EQ(got.seq, 5001);
    CHECK_EQ(got.ack, 1003);
    CHECK_EQ(tcpraw_checksum(&me, &cli, r.seg[0], r.seglen[0]), 0);
    /* another peer, a segment for another port, a PSH without payload, a non-PSH payload */
    n = peer_seg(seg, &other, &me, 1, 1, TCPRAW_PSH | TCPRAW_ACK, "no", false);
    CHECK_EQ(tcpraw_input(&t, &other, &me, seg, n, 3), TCPRAW_RX_UNKNOWN);
    struct tcpraw_addr elsewhere = me;
    elsewhere.port = 80;
    n = peer_seg(seg, &cli, &elsewhere, 1, 1, TCPRAW_PSH | TCPRAW_ACK, "no", false);
    CHECK_EQ(tcpraw_input(&t, &cli, &elsewhere, seg, n, 3), TCPRAW_RX_IGNORED);
    n = peer_seg(seg, &cli, &me, 1003, 5003, TCPRAW_PSH | TCPRAW_ACK, NULL, false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 3), TCPRAW_RX_IGNORED);
    n = peer_seg(seg, &cli, &me, 1003, 5003, TCPRAW_ACK, "no", false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 3), TCPRAW_RX_CONTROL);
    /* RST is counted and ignored */
    n = peer_seg(seg, &cli, &me, 1003, 5003, TCPRAW_RST, NULL, false);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, n, 3), TCPRAW_RX_CONTROL);
    CHECK_EQ(t.st.rx_rst, 1);
    CHECK_EQ(r.ndata, 1);
    CHECK_EQ(tcpraw_input(&t, &cli, &me, seg, 7, 3), TCPRAW_RX_BAD);
    CHECK_EQ(t.st.rx_bad, 1);
    tcpraw_free(&t);
}

static int gone_count;
static void count_gone(void *user, const struct tcpraw_flow *f)
{
    (void)user;
    (void)f;
    gone_count++;
}

TEST(tcpraw_flows_expire_and_are_bounded)
{
    struct tcpraw t;
    static struct rec r;
    table_init(&t, &r, 1);
    struct tcpraw_addr me = v4(1, 1);
    for (uint16_t i = 0; i < 10; i++) {
        struct tcpraw_addr p = v4(2, (uint16_t)(1000 + i));
        REQUIRE(tcpraw_flow_add(&t, &me, &p, TCPRAW_OPEN, i < 5 ? 0 : 50000) != NULL);
    }
    CHECK_EQ(t.nflows, 10);
    /* re-adding resets, not duplicates */
    struct tcpraw_addr p0 = v4(2, 1000);
    REQUIRE(tcpraw_flow_add(&t, &me, &p0, TCPRAW_OPEN, 0) != NULL);
    CHECK_EQ(t.nflows, 10);
    gone_count = 0;
    CHECK_EQ(tcpraw_expire(&t, 60000, 60000, count_gone, NULL), 5);
    CHECK_EQ(gone_count, 5);
    CHECK_EQ(t.nflows, 5);
    CHECK(tcpraw_flow_find(&t, &p0) == NULL);
    tcpraw_flow_remove(&t, &p0);
    struct tcpraw_addr p9 = v4(2, 1009);
    tcpraw_flow_remove(&t, &p9);
    CHECK_EQ(t.nflows, 4);
    for (uint32_t i = 0; t.nflows < TCPRAW_MAX_FLOWS; i++) {
        struct tcpraw_addr p = v4((uint8_t)(3 + i / 60000), (uint16_t)(i % 60000));
        REQUIRE(tcpraw_flow_add(&t, &me, &p, TCPRAW_OPEN, 0) != NULL);
    }
    struct tcpraw_addr extra = v4(200, 1);
    CHECK(tcpraw_flow_add(&t, &me, &extra, TCPRAW_OPEN, 0) == NULL);
    tcpraw_free(&t);
    CHECK_EQ(t.nflows, 0);
}
