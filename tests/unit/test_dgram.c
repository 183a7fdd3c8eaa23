/* SPDX-License-Identifier: MIT */
/* Datagram records and the duplicate filter (common/dgram.h), extension records (ext.h). */
#include "common/dgram.h"
#include "common/err.h"
#include "common/ext.h"
#include "tests/test.h"

#include <string.h>

TEST(dgram_window_exactly_once_within_the_window)
{
    struct dgram_window w;
    memset(&w, 0, sizeof(w));
    CHECK(dgram_window_accept(&w, 10));
    CHECK(!dgram_window_accept(&w, 10));
    CHECK(dgram_window_accept(&w, 5));  /* late but new */
    CHECK(!dgram_window_accept(&w, 5));
    CHECK(dgram_window_accept(&w, 0x2000001)); /* a jump clears the window */
    CHECK(!dgram_window_accept(&w, 0x2000001));
    CHECK(!dgram_window_accept(&w, 11)); /* far behind: stale */
    CHECK(!dgram_window_accept(&w, 0x2000001 - DGRAM_WINDOW));
    CHECK(dgram_window_accept(&w, 0x2000001 - DGRAM_WINDOW + 1));
    /* every number once, in a shuffled order spanning the wrap */
    memset(&w, 0, sizeof(w));
    uint32_t base = 0xfffffe00u;
    for (uint32_t i = 0; i < 4000; i++) {
        uint32_t s = base + (i ^ 7u);
        CHECK(dgram_window_accept(&w, s));
        CHECK(!dgram_window_accept(&w, s));
    }
    CHECK_EQ(w.top, base + 3999u);
}

TEST(dgram_record_round_trip_and_refusals)
{
    uint8_t buf[256];
    const uint8_t tgt[] = "10.0.0.1:53";
    size_t n = dgram_put(buf, 7, 99, tgt, 11, (const uint8_t *)"payload", 7);
    CHECK_EQ(n, dgram_rec_len(11, 7));
    const uint8_t *p = buf;
    struct ext_rec r;
    CHECK_EQ(ext_next(&p, buf + n, &r), 1);
    CHECK_EQ(r.type, EXT_DGRAM);
    struct dgram d;
    CHECK_EQ(dgram_parse(&r, &d), 0);
    CHECK_EQ(d.flow, 7);
    CHECK_EQ(d.seq, 99);
    CHECK_EQ(d.target_len, 11);
    CHECK_MEM(d.target, tgt, 11);
    CHECK_EQ(d.len, 7);
    CHECK_MEM(d.data, "payload", 7);
    CHECK_EQ(ext_next(&p, buf + n, &r), 0);
    /* reserved flag bit, both target flags, empty target, truncated target */
    buf[EXT_REC_HDR + 8] = 0x04;
    CHECK_EQ(dgram_parse(&r, &d), ERR_PROTO);
    buf[EXT_REC_HDR + 8] = 0x03;
    CHECK_EQ(dgram_parse(&r, &d), ERR_PROTO);
    /* the server's -t target: no target bytes, everything after the flags is payload */
    buf[EXT_REC_HDR + 8] = 0x02;
    CHECK_EQ(dgram_parse(&r, &d), 0);
    CHECK(d.target != NULL);
    CHECK_EQ(d.target_len, 0);
    CHECK_EQ(d.len, 1 + 11 + 7);
    uint8_t dbuf[64];
    size_t dn = dgram_put(dbuf, 1, 2, (const uint8_t *)"", 0, (const uint8_t *)"x", 1);
    CHECK_EQ(dbuf[EXT_REC_HDR + 8], DGRAM_F_DEFAULT);
    CHECK_EQ(dn, dgram_rec_len(0, 1));
    buf[EXT_REC_HDR + 8] = 0x01;
    buf[EXT_REC_HDR + 9] = 0;
    CHECK_EQ(dgram_parse(&r, &d), ERR_PROTO);
    buf[EXT_REC_HDR + 9] = 200;
    CHECK_EQ(dgram_parse(&r, &d), ERR_PROTO);
    /* a truncated record ends the walk */
    p = buf;
    CHECK_EQ(ext_next(&p, buf + 2, &r), ERR_PROTO);
    CHECK(p == buf + 2);
}

TEST(ext_split_finds_the_segment_after_kcp_segments)
{
    uint8_t pkt[128];
    memset(pkt, 0, sizeof(pkt));
    /* one PUSH of 3 bytes, then an extension segment with an offer */
    pkt[0] = 0x44, pkt[4] = 81, pkt[20] = 3;
    uint8_t rec[16];
    size_t rl = ext_put_caps(rec, EXT_CAPS_OFFER, EXT_CAPS_ALL);
    ext_seg_header(pkt + 27, 0x44, rl);
    memcpy(pkt + 27 + EXT_SEG_HDR, rec, rl);
    size_t len = 27 + EXT_SEG_HDR + rl;
    size_t klen, blen;
    const uint8_t *body;
    CHECK_EQ(ext_split(pkt, len, 0x44, &klen, &body, &blen), 0);
    CHECK_EQ(klen, 27);
    CHECK(body == pkt + 27 + EXT_SEG_HDR);
    CHECK_EQ(blen, rl);
    /* another conv, a length past the end, a reserved byte */
    CHECK_EQ(ext_split(pkt, len, 0x45, &klen, &body, &blen), ERR_PROTO);
    CHECK_EQ(ext_split(pkt, len - 1, 0x44, &klen, &body, &blen), ERR_PROTO);
    pkt[27 + 5] = 1;
    CHECK_EQ(ext_split(pkt, len, 0x44, &klen, &body, &blen), ERR_PROTO);
    /* a plain KCP packet is all KCP's */
    CHECK_EQ(ext_split(pkt, 27, 0x44, &klen, &body, &blen), 0);
    CHECK_EQ(klen, 27);
    CHECK(body == NULL);
    const uint8_t *q = rec;
    struct ext_rec r;
    uint8_t ver;
    uint32_t caps;
    CHECK_EQ(ext_next(&q, rec + rl, &r), 1);
    CHECK_EQ(ext_parse_caps(&r, &ver, &caps), 0);
    CHECK_EQ(ver, EXT_VERSION);
    CHECK_EQ(caps, EXT_CAPS_ALL);
}
