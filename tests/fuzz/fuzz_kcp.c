/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: kcp_input on a live engine, interleaved with recv, send, flush and ticks. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "common/kcp.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   conv LE32 | flags u8 | mtu LE16 | sndwnd u8 | rcvwnd u8 | clock LE32 | op...
 * flags: bit 0 stream mode, 1 nodelay, 2 ack-nodelay, 3 no congestion control, 4 fast resend.
 * mtu is taken modulo the engine's range; the windows are 1 + value % 128.
 * Each op is one byte (value % 6) and its arguments:
 *   0 packet record (LE16 length + bytes) -> kcp_input regular
 *   1 packet record                       -> kcp_input recovered (regular = false)
 *   2 cap LE16                            -> kcp_recv into a buffer of 1 + cap % 8192 bytes
 *   3                                     -> kcp_flush
 *   4 step LE16                           -> clock += step, kcp_tick if a deadline passed
 *   5 length LE16                         -> kcp_send of 1 + length % 4096 pattern bytes
 */

#define FUZZ_KCP_MAX_OPS 4096
#define FUZZ_KCP_RECV_MAX 8192

struct kcp_fuzz {
    uint32_t conv;
    size_t mtu;
    uint64_t out_pkts;
};

/* Every emitted packet must be whole segments of our conversation within the MTU. */
static void on_output(void *user, const uint8_t *pkt, size_t len)
{
    struct kcp_fuzz *s = user;
    const uint8_t *p = pkt, *end = pkt + len;

    FUZZ_CHECK(len >= KCP_OVERHEAD && len <= s->mtu);
    while (p < end) {
        struct kcp_seg_hdr h;
        FUZZ_CHECK(kcp_seg_hdr_decode(&p, end, &h) == 0);
        FUZZ_CHECK(h.conv == s->conv);
        FUZZ_CHECK(h.cmd >= KCP_CMD_PUSH && h.cmd <= KCP_CMD_WINS);
        FUZZ_CHECK(h.len <= (size_t)(end - p));
        FUZZ_CHECK(h.cmd == KCP_CMD_PUSH || h.len == 0);
        p += h.len;
    }
    s->out_pkts++;
}

/* One kcp_recv with |cap| bytes of room, checked against kcp_recv_avail. */
static void do_recv(struct kcp *k, bool stream, size_t cap, uint8_t *buf)
{
    size_t avail = kcp_recv_avail(k);
    size_t held = kcp_rcv_queue_count(k) + kcp_rcv_buf_count(k);
    ssize_t n = kcp_recv(k, buf, cap);

    if (avail == 0) {
        /* A zero-length PUSH from the peer at the head of the queue is consumed with a
         * return of 0 (kcp-go's Recv does the same); the segments held must shrink then (the
         * queue itself may be refilled from the receive buffer at once). */
        if (n == 0)
            FUZZ_CHECK(kcp_rcv_queue_count(k) + kcp_rcv_buf_count(k) < held);
        else
            FUZZ_CHECK(n == ERR_AGAIN);
        return;
    }
    if (stream) {
        FUZZ_CHECK(n > 0 && (size_t)n <= cap && (size_t)n <= avail);
        FUZZ_CHECK((size_t)n == (avail < cap ? avail : cap));
    } else if (cap < avail) {
        FUZZ_CHECK(n == ERR_TOOBIG);
    } else {
        FUZZ_CHECK(n > 0 && (size_t)n == avail);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[FUZZ_KCP_RECV_MAX];
    static uint8_t pattern[4096];
    struct fuzz_reader r;
    struct kcp_fuzz s;

    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7 + 1);
    fuzz_reader_init(&r, data, size);
    memset(&s, 0, sizeof(s));
    s.conv = fuzz_u32(&r);
    uint8_t flags = fuzz_u8(&r);
    s.mtu = KCP_MTU_MIN + fuzz_u16(&r) % (KCP_MTU_MAX - KCP_MTU_MIN + 1);
    int sndwnd = 1 + fuzz_u8(&r) % 128;
    int rcvwnd = 1 + fuzz_u8(&r) % 128;
    uint64_t now = fuzz_u32(&r);
    bool stream = flags & 1;

    struct kcp *k = kcp_new(s.conv, on_output, &s);
    if (!k)
        return 0;
    FUZZ_CHECK(kcp_set_mtu(k, s.mtu) == 0);
    FUZZ_CHECK(kcp_set_mtu(k, KCP_MTU_MIN - 1) == ERR_INVAL);
    FUZZ_CHECK(kcp_mss(k) == s.mtu - KCP_OVERHEAD);
    FUZZ_CHECK(kcp_set_window(k, sndwnd, rcvwnd) == 0);
    kcp_set_stream(k, stream);
    kcp_set_nodelay(k, (flags >> 1) & 1, 10, (flags & 16) ? 2 : 0, (flags >> 3) & 1);
    kcp_set_ack_nodelay(k, (flags >> 2) & 1);
    FUZZ_CHECK(kcp_conv(k) == s.conv);

    for (int ops = 0; fuzz_left(&r) > 0 && ops < FUZZ_KCP_MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&r) % 6;
        const uint8_t *pkt;
        size_t len;
        int rc;

        switch (op) {
        case 0:
        case 1:
            pkt = fuzz_record(&r, &len);
            rc = kcp_input(k, pkt, len, op == 0, now);
            FUZZ_CHECK(rc == 0 || rc == ERR_PROTO);
            break;
        case 2:
            do_recv(k, stream, 1 + fuzz_u16(&r) % FUZZ_KCP_RECV_MAX, buf);
            break;
        case 3:
            kcp_flush(k, now);
            break;
        case 4:
            now += fuzz_u16(&r);
            if (kcp_next_deadline(k, now) <= now)
                kcp_tick(k, now);
            break;
        case 5:
            len = 1 + fuzz_u16(&r) % sizeof(pattern);
            rc = kcp_send(k, pattern, len);
            FUZZ_CHECK(rc == 0 || rc == ERR_TOOBIG);
            break;
        }
        FUZZ_CHECK(kcp_rcv_buf_count(k) <= (size_t)rcvwnd);
        FUZZ_CHECK(kcp_rcv_queue_count(k) <= (size_t)rcvwnd);
    }

    /* Whatever is readable must come out cleanly. */
    for (int i = 0; i < 1024 && kcp_recv_avail(k) > 0; i++) {
        size_t avail = kcp_recv_avail(k);
        if (avail > sizeof(buf)) {
            break;
        }
        do_recv(k, stream, sizeof(buf), buf);
    }
    struct kcp_stats st;
    kcp_get_stats(k, &st);
    FUZZ_CHECK(st.out_pkts == s.out_pkts);
    kcp_free(k);
    return 0;
}
