/* SPDX-License-Identifier: MIT */
/* kcp_input_until: one walk over a packet hands KCP its segments and finds the extension
 * segment after them, where ext_split (a header walk of its own) finds it. */
#include <string.h>

#include "common/err.h"
#include "common/ext.h"
#include "common/kcp.h"
#include "common/wire.h"
#include "tests/test.h"

static int outputs;

static void out_cb(void *user, const uint8_t *buf, size_t len)
{
    (void)user;
    (void)buf;
    (void)len;
    outputs++;
}

/* Writes a segment header of command |cmd| with |n| payload bytes (zeros) at pkt + off;
 * returns the offset after it. */
static size_t put_seg(uint8_t *pkt, size_t off, uint32_t conv, uint8_t cmd, uint32_t sn,
                      uint32_t n)
{
    uint8_t *p = pkt + off;
    memset(p, 0, KCP_OVERHEAD + n);
    put_u32le(p, conv);
    p[4] = cmd;
    put_u16le(p + 6, 128);
    put_u32le(p + 12, sn);
    put_u32le(p + 20, n);
    return off + KCP_OVERHEAD + n;
}

static size_t put_ext(uint8_t *pkt, size_t off, uint32_t conv)
{
    size_t rl = ext_put_caps(pkt + off + EXT_SEG_HDR, EXT_CAPS_OFFER, EXT_CAPS_ALL);
    ext_seg_header(pkt + off, conv, rl);
    return off + EXT_SEG_HDR + rl;
}

TEST(kcp_input_until_stops_at_the_extension_segment)
{
    uint8_t pkt[512], buf[64];
    struct kcp_stats st;
    struct kcp *k = kcp_new(0x44, out_cb, NULL);
    CHECK(k);
    /* two PUSH segments, then an extension segment */
    size_t off = put_seg(pkt, 0, 0x44, KCP_CMD_PUSH, 0, 3);
    off = put_seg(pkt, off, 0x44, KCP_CMD_PUSH, 1, 5);
    size_t ext_at = off, len = put_ext(pkt, off, 0x44), stop = 0;
    CHECK_EQ(kcp_input_until(k, pkt, len, true, 10, EXT_CMD, &stop), 0);
    CHECK_EQ(stop, ext_at);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.in_segs, 2);
    CHECK_EQ(st.in_errors, 0);
    CHECK_EQ(st.drop[KCP_DROP_CMD], 0);
    CHECK_EQ(kcp_recv(k, buf, sizeof(buf)), 3);
    CHECK_EQ(kcp_recv(k, buf, sizeof(buf)), 5);
    const uint8_t *body;
    size_t blen;
    CHECK_EQ(ext_seg_parse(pkt + stop, len - stop, 0x44, &body, &blen), 0);
    CHECK(body == pkt + ext_at + EXT_SEG_HDR && blen == len - ext_at - EXT_SEG_HDR);
    CHECK_EQ(ext_seg_parse(pkt + stop, len - stop, 0x45, &body, &blen), ERR_PROTO);
    CHECK_EQ(ext_seg_parse(pkt + stop, len - stop - 1, 0x44, &body, &blen), ERR_PROTO);
    CHECK(body == NULL && blen == 0);

    /* plain kcp_input drops the extension segment as an unknown command */
    put_seg(pkt, 0, 0x44, KCP_CMD_PUSH, 2, 3);
    put_seg(pkt, KCP_OVERHEAD + 3, 0x44, KCP_CMD_PUSH, 3, 5);
    CHECK_EQ(kcp_input(k, pkt, len, true, 20), ERR_PROTO);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.drop[KCP_DROP_CMD], 1);

    /* an extension segment alone: nothing for KCP, not even its clock or a pending ACK */
    kcp_set_ack_nodelay(k, true);
    struct kcp_stats before;
    kcp_get_stats(k, &before);
    int out_before = outputs;
    len = put_ext(pkt, 0, 0x44);
    CHECK_EQ(kcp_input_until(k, pkt, len, true, 30, EXT_CMD, &stop), 0);
    CHECK_EQ(stop, 0);
    kcp_get_stats(k, &st);
    CHECK(memcmp(&st, &before, sizeof(st)) == 0);
    CHECK_EQ(outputs, out_before);

    /* a segment KCP drops (another conv) before it: found all the same */
    off = put_seg(pkt, 0, 0x45, KCP_CMD_PUSH, 4, 2);
    off = put_seg(pkt, off, 0x44, KCP_CMD_PUSH, 4, 2);
    len = put_ext(pkt, off, 0x44);
    CHECK_EQ(kcp_input_until(k, pkt, len, true, 40, EXT_CMD, &stop), ERR_PROTO);
    CHECK_EQ(stop, off);
    kcp_get_stats(k, &st);
    CHECK_EQ(st.drop[KCP_DROP_CONV], before.drop[KCP_DROP_CONV] + 1);

    /* a length past the end before it: the packet is KCP's (which refuses it) */
    off = put_seg(pkt, 0, 0x44, KCP_CMD_PUSH, 4, 2);
    put_u32le(pkt + 20, 400);
    CHECK_EQ(kcp_input_until(k, pkt, len, true, 50, EXT_CMD, &stop), ERR_PROTO);
    CHECK_EQ(stop, len);
    /* no stop command: kcp_input's walk */
    CHECK_EQ(kcp_input_until(k, pkt, 0, true, 60, -1, &stop), ERR_PROTO);
    CHECK_EQ(stop, 0);
    kcp_free(k);
}

/* Random packets of segments (KCP commands, unknown ones, the extension command, other
 * convs, lengths past the end): the stop offset is where ext_split splits. */
TEST(kcp_input_until_agrees_with_ext_split)
{
    static const uint8_t cmds[] = {KCP_CMD_PUSH, KCP_CMD_ACK, KCP_CMD_WASK, KCP_CMD_WINS,
                                   EXT_CMD, 0, 0x99};
    uint8_t pkt[1500];
    uint64_t seed = 3;
    int found = 0, after_drop = 0;
    struct kcp *k = kcp_new(0x44, out_cb, NULL);
    CHECK(k);
    for (int iter = 0; iter < 5000; iter++) {
        size_t off = 0;
        int segs = 1 + iter % 5;
        bool dropped = false;
        for (int i = 0; i < segs; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t v = (uint32_t)(seed >> 33);
            uint8_t cmd = cmds[v % 7];
            uint32_t conv = (v >> 3) % 9 == 0 ? 0x45 : 0x44;
            uint32_t n = (v >> 8) % 40;
            if (off + KCP_OVERHEAD + n > sizeof(pkt))
                break;
            dropped |= cmd != EXT_CMD && (conv != 0x44 || cmd < KCP_CMD_PUSH || cmd > KCP_CMD_WINS);
            off = put_seg(pkt, off, conv, cmd, v % 64, n);
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = off - (size_t)((seed >> 40) % 4 == 0 ? (seed >> 20) % (off + 1) : 0);
        size_t klen, blen, stop = 12345;
        const uint8_t *body;
        ext_split(pkt, len, 0x44, &klen, &body, &blen);
        kcp_input_until(k, pkt, len, true, (uint64_t)iter, EXT_CMD, &stop);
        CHECK_EQ(stop, klen);
        found += stop < len;
        after_drop += stop < len && dropped;
        while (kcp_recv(k, pkt, sizeof(pkt)) >= 0) {
        }
    }
    CHECK(found > 1000 && after_drop > 100);
    kcp_free(k);
}
