/* SPDX-License-Identifier: MIT */
/* Reed-Solomon throughput: 10+3 with 1350-byte shards, encode and three-data-shard rebuild. */
#include "fec/rs.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BR_DS 10
#define BR_PS 3
#define BR_LEN 1350
#define BR_SECONDS 0.5 /* measuring time per figure */

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

/* Runs |fn| in batches until BR_SECONDS of wall time passed; returns data MB/s. */
static double br_run(struct rs *rs, struct br_stripe *st,
                     void (*fn)(struct rs *rs, struct br_stripe *st))
{
    long iters = 0;
    double t0 = bench_now_s(), t;
    do {
        for (int i = 0; i < 1000; i++)
            fn(rs, st);
        iters += 1000;
        t = bench_now_s() - t0;
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
