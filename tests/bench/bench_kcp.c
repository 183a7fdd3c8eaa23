/* SPDX-License-Identifier: MIT */
/* KCP engine throughput: bulk transfer between two engines wired back to back in memory. */
#include "common/kcp.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BK_SLOT 1500

/* A FIFO of packets from one engine to the other. */
struct bk_pipe {
    uint8_t (*slot)[BK_SLOT];
    uint16_t *len;
    size_t head, count, cap;
};

static void pipe_output(void *user, const uint8_t *pkt, size_t len)
{
    struct bk_pipe *p = user;
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        uint8_t(*slot)[BK_SLOT] = malloc(cap * BK_SLOT);
        uint16_t *lens = malloc(cap * sizeof(*lens));
        if (!slot || !lens) {
            free(slot);
            free(lens);
            return;
        }
        for (size_t i = 0; i < p->count; i++) {
            size_t j = (p->head + i) % (p->cap ? p->cap : 1);
            memcpy(slot[i], p->slot[j], p->len[j]);
            lens[i] = p->len[j];
        }
        free(p->slot);
        free(p->len);
        p->slot = slot;
        p->len = lens;
        p->head = 0;
        p->cap = cap;
    }
    size_t t = (p->head + p->count) % p->cap;
    memcpy(p->slot[t], pkt, len);
    p->len[t] = (uint16_t)len;
    p->count++;
}

/* Feeds every queued packet to |k|, dropping each with probability |loss_pct|/100 (from a
 * fixed-seed generator |*rng|). Returns the number fed. */
static size_t pipe_drain(struct bk_pipe *p, struct kcp *k, uint64_t now_ms, unsigned loss_pct,
                         uint64_t *rng)
{
    size_t n = 0;
    while (p->count) {
        size_t h = p->head;
        p->head = (p->head + 1) % p->cap;
        p->count--;
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        if (loss_pct && (*rng >> 33) % 100 < loss_pct)
            continue;
        kcp_input(k, p->slot[h], p->len[h], true, now_ms);
        n++;
    }
    return n;
}

static void bulk(const char *name, const char *seg_name, int wnd, bool ack_nodelay,
                 unsigned loss_pct, size_t total)
{
    struct bk_pipe to_rx = {0}, to_tx = {0};
    struct kcp *tx = kcp_new(1, pipe_output, &to_rx);
    struct kcp *rx = kcp_new(1, pipe_output, &to_tx);
    uint8_t *chunk = malloc(65536), *sink = malloc(65536);
    if (!tx || !rx || !chunk || !sink)
        goto out;
    for (int i = 0; i < 65536; i++)
        chunk[i] = (uint8_t)(i * 31 + 7);
    struct kcp *ks[2] = {tx, rx};
    for (int i = 0; i < 2; i++) {
        kcp_set_stream(ks[i], true);
        kcp_set_mtu(ks[i], 1350 - 28);
        kcp_set_nodelay(ks[i], 1, 10, 2, 1);
        kcp_set_window(ks[i], wnd, wnd);
    }
    kcp_set_ack_nodelay(rx, ack_nodelay);

    size_t sent = 0, got = 0;
    uint64_t rng = 12345;
    uint64_t now = 0;
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    while (got < total && bench_now_s() - t0 < 10.0) {
        bool wrote = false;
        while (sent < total && kcp_send_room(tx) > 0) {
            size_t n = total - sent < 65536 ? total - sent : 65536;
            kcp_send(tx, chunk, n);
            sent += n;
            wrote = true;
        }
        if (wrote)
            kcp_flush(tx, now);
        pipe_drain(&to_rx, rx, now, loss_pct, &rng);
        ssize_t r;
        while ((r = kcp_recv(rx, sink, 65536)) > 0)
            got += (size_t)r;
        pipe_drain(&to_tx, tx, now, 0, &rng);
        now++;
        if (kcp_next_deadline(rx, now) <= now)
            kcp_tick(rx, now);
        if (kcp_next_deadline(tx, now) <= now)
            kcp_tick(tx, now);
    }
    double dt = bench_now_s() - t0, cpu = bench_cpu_s() - c0;
    struct kcp_stats st;
    kcp_get_stats(rx, &st);
    /* Both engines run on this thread: rates per CPU second are steady on a shared machine;
     * the wall-clock rate is printed too. */
    char label[64];
    bench_report(name, (double)got / cpu / 1e6, "MB/s");
    bench_report(seg_name, (double)st.in_segs / cpu, "seg/s");
    snprintf(label, sizeof(label), "%s.wall", name);
    bench_report(label, (double)got / dt / 1e6, "MB/s");
    if (got < total)
        printf("bench: %s incomplete: %zu of %zu bytes\n", name, got, total);
out:
    kcp_free(tx);
    kcp_free(rx);
    free(chunk);
    free(sink);
    free(to_rx.slot);
    free(to_rx.len);
    free(to_tx.slot);
    free(to_tx.len);
}

BENCH(bench_kcp_bulk)
{
    bulk("kcp.bulk", "kcp.segments", 4096, false, 0, (size_t)512 << 20);
}

BENCH(bench_kcp_bulk_acknodelay)
{
    bulk("kcp.bulk_acknodelay", "kcp.segments_acknodelay", 1024, true, 0, (size_t)256 << 20);
}

BENCH(bench_kcp_bulk_loss)
{
    /* 10% of data packets lost: exercises fast retransmit and the hole bookkeeping. */
    bulk("kcp.bulk_loss10", "kcp.segments_loss10", 4096, false, 10, (size_t)128 << 20);
}
