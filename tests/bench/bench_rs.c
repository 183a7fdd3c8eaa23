/* SPDX-License-Identifier: MIT */
/* Reed-Solomon throughput (10+3, 1350-byte shards) and the FEC packet layer around it. */
#include "fec/fec.h"
#include "fec/rs.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BR_DS 10
#define BR_PS 3
#define BR_LEN 1350
#define BR_SECONDS 0.5 /* CPU time per figure: figures are per CPU-second of one core, so
                        * other load on the machine does not skew them */

struct br_stripe {
    uint8_t *buf;                  /* all shards, back to back */
    uint8_t *shards[BR_DS + BR_PS]; /* shard pointers into buf */
};

static bool br_setup(struct br_stripe *st)
{
    st->buf = malloc((size_t)(BR_DS + BR_PS) * BR_LEN);
    if (!st->buf)
        return false;
    for (int i = 0; i < BR_DS + BR_PS; i++)
        st->shards[i] = st->buf + (size_t)i * BR_LEN;
    uint32_t x = 1;
    for (size_t b = 0; b < (size_t)BR_DS * BR_LEN; b++) {
        x = x * 1103515245u + 12345u;
        st->buf[b] = (uint8_t)(x >> 16);
    }
    return true;
}

/* Runs |fn| in batches until BR_SECONDS of CPU time passed; returns data MB/s. */
static double br_run(struct rs *rs, struct br_stripe *st,
                     void (*fn)(struct rs *rs, struct br_stripe *st))
{
    long iters = 0;
    double t0 = bench_cpu_s(), t;
    do {
        for (int i = 0; i < 1000; i++)
            fn(rs, st);
        iters += 1000;
        t = bench_cpu_s() - t0;
    } while (t < BR_SECONDS);
    return (double)iters * BR_DS * BR_LEN / t / 1e6;
}

static void br_encode(struct rs *rs, struct br_stripe *st)
{
    rs_encode(rs, (const uint8_t *const *)st->shards, st->shards + BR_DS, BR_LEN);
}

/* What the FEC decoder does per group: present flags for the group, then the rebuild of
 * the three lost data shards (decode tables come from the cache after the first call). */
static void br_reconstruct3(struct rs *rs, struct br_stripe *st)
{
    bool present[BR_DS + BR_PS];
    for (int i = 0; i < BR_DS + BR_PS; i++)
        present[i] = i >= 3;
    rs_reconstruct_data(rs, st->shards, present, BR_LEN);
}

BENCH(bench_rs)
{
    struct br_stripe st;
    struct rs *rs = rs_new(BR_DS, BR_PS);
    if (!rs || !br_setup(&st)) {
        printf("bench_rs: setup failed\n");
        rs_free(rs);
        return;
    }
    bench_report("rs.encode", br_run(rs, &st, br_encode), "MB/s");
    br_encode(rs, &st);
    bench_report("rs.reconstruct3", br_run(rs, &st, br_reconstruct3), "MB/s");
    free(st.buf);
    rs_free(rs);
}

/* ---- FEC packet layer: 10/3, 1322-byte KCP packets (1350-byte datagrams) ---- */

#define BF_KCP_LEN 1322
#define BF_GROUPS 4096 /* groups pre-encoded for the decoder run */

struct bf_wire {
    uint8_t *buf;   /* BF_GROUPS * 13 packets of FEC_MAX_PACKET bytes */
    size_t *len;    /* their lengths */
    size_t n;       /* packets stored */
};

static int bf_count(void *user, const uint8_t *pkt, size_t len)
{
    (void)pkt;
    *(size_t *)user += len;
    return 0;
}

static int bf_store(void *user, const uint8_t *pkt, size_t len)
{
    struct bf_wire *w = user;
    memcpy(w->buf + w->n * FEC_MAX_PACKET, pkt, len);
    w->len[w->n++] = len;
    return 0;
}

static int bf_deliver(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    (void)pkt;
    (void)recovered;
    *(size_t *)user += len;
    return 0;
}

BENCH(bench_fec_layer)
{
    uint8_t kcp[BF_KCP_LEN];
    for (size_t i = 0; i < sizeof(kcp); i++)
        kcp[i] = (uint8_t)(i * 31 + 7);
    struct fec_encoder *enc = fec_encoder_new(BR_DS, BR_PS);
    struct fec_decoder *dec = fec_decoder_new(BR_DS, BR_PS, NULL, NULL);
    struct bf_wire w = {malloc((size_t)BF_GROUPS * 13 * FEC_MAX_PACKET),
                        malloc((size_t)BF_GROUPS * 13 * sizeof(size_t)), 0};
    if (!enc || !dec || !w.buf || !w.len) {
        printf("bench_fec_layer: setup failed\n");
        goto out;
    }
    size_t bytes = 0;
    long iters = 0;
    double t0 = bench_cpu_s(), t;
    do {
        for (int i = 0; i < 1000; i++)
            fec_encoder_encode(enc, kcp, sizeof(kcp), bf_count, &bytes);
        iters += 1000;
        t = bench_cpu_s() - t0;
    } while (t < BR_SECONDS);
    bench_report("fec.encode", (double)iters * BF_KCP_LEN / t / 1e6, "MB/s");

    fec_encoder_free(enc);
    enc = fec_encoder_new(BR_DS, BR_PS);
    for (int i = 0; i < BF_GROUPS * BR_DS; i++)
        fec_encoder_encode(enc, kcp, sizeof(kcp), bf_store, &w);
    /* Each group loses data shards 0, 1 and 2: the decoder rebuilds them from parity. */
    size_t got = 0;
    uint64_t now_ms = 0;
    t0 = bench_cpu_s();
    for (size_t i = 0; i < w.n; i++)
        if (i % 13 >= 3)
            fec_decoder_input(dec, w.buf + i * FEC_MAX_PACKET, w.len[i], now_ms++, bf_deliver,
                              &got);
    t = bench_cpu_s() - t0;
    bench_report("fec.decode_loss3", (double)got / t / 1e6, "MB/s");
    if (fec_decoder_stats(dec)->recovered < (uint64_t)(BF_GROUPS - 2) * 3)
        printf("bench_fec_layer: only %llu packets recovered\n",
               (unsigned long long)fec_decoder_stats(dec)->recovered);
out:
    free(w.buf);
    free(w.len);
    fec_encoder_free(enc);
    fec_decoder_free(dec);
}
