/* SPDX-License-Identifier: MIT */
/* The header walk ext_split does over a received packet: what the link saves per packet by
 * letting kcp_input_until find the extension segment in KCP's own walk. A full data packet
 * (one PUSH segment) and a packet of ACKs (ACK segments to the MTU). */
#include <string.h>

#include "common/ext.h"
#include "common/kcp.h"
#include "common/wire.h"
#include "tests/bench/bench.h"

#define BE_ITERS 5000000

static size_t put_seg(uint8_t *pkt, size_t off, uint8_t cmd, uint32_t n)
{
    memset(pkt + off, 0, KCP_OVERHEAD + n);
    put_u32le(pkt + off, 7);
    pkt[off + 4] = cmd;
    put_u32le(pkt + off + 20, n);
    return off + KCP_OVERHEAD + n;
}

static double walk_ns(const uint8_t *pkt, size_t len)
{
    size_t sum = 0, klen, blen;
    const uint8_t *body;
    double c0 = bench_cpu_s();
    for (int i = 0; i < BE_ITERS; i++) {
        ext_split(pkt, len, 7, &klen, &body, &blen);
        sum += klen;
        __asm__ volatile("" : : "r"(sum) : "memory");
    }
    return (bench_cpu_s() - c0) / BE_ITERS * 1e9;
}

BENCH(bench_ext_walk)
{
    static uint8_t pkt[1400];
    size_t len = put_seg(pkt, 0, KCP_CMD_PUSH, 1376 - KCP_OVERHEAD);
    bench_report("ext.walk_data_packet", walk_ns(pkt, len), "ns");
    len = 0;
    while (len + KCP_OVERHEAD <= 1376)
        len = put_seg(pkt, len, KCP_CMD_ACK, 0);
    bench_report("ext.walk_ack_packet", walk_ns(pkt, len), "ns");
}
