/* SPDX-License-Identifier: MIT */
/* CPU the loss estimator costs a paced sender with adaptive FEC: per FEC group of 10 data
 * shards, 10 acknowledged segments recorded and one parity question (what kcp.c does for a
 * bulk flow), and the same with the copies question an application-limited flow adds. */
#include <stdio.h>
#include <string.h>

#include "common/lossest.h"
#include "tests/bench/bench.h"

#define BL_GROUPS 200000

static double run(double loss, bool copies_too)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    lossest_set_data_shards(&e, 10);
    uint64_t seed = 1;
    int parity = 3;
    volatile double sink = 0;
    double c0 = bench_cpu_s();
    for (int g = 0; g < BL_GROUPS; g++) {
        for (int i = 0; i < 10; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(seed >> 11) / 9007199254740992.0;
            /* a lost shard is late unless the group's parity rebuilt it (roughly) */
            lossest_record(&e, 0, (unsigned)parity, u < loss * (parity ? 0.1 : 1));
        }
        /* 1e-3 spread over the ~100 segments of a round trip */
        parity = lossest_parity(&e, 3, 1e-5);
        if (copies_too)
            sink += lossest_pooled(&e);
    }
    double cpu = bench_cpu_s() - c0;
    (void)sink;
    return cpu / BL_GROUPS * 1e9;
}

BENCH(bench_lossest)
{
    static const double losses[] = {0, 0.01, 0.05};
    char name[64];
    for (size_t i = 0; i < sizeof(losses) / sizeof(losses[0]); i++) {
        snprintf(name, sizeof(name), "lossest.group_%gpct", losses[i] * 100);
        bench_report(name, run(losses[i], false), "ns");
        snprintf(name, sizeof(name), "lossest.group_copies_%gpct", losses[i] * 100);
        bench_report(name, run(losses[i], true), "ns");
    }
}
