/* SPDX-License-Identifier: MIT */
/* Mux throughput: one stream between two in-memory sessions, write/parse/read per byte moved. */
#include "common/mux.h"
#include "tests/bench/bench.h"
#include "tests/unit/mux_harness.h"

#include <stdio.h>
#include <stdlib.h>

static void bench_stream(int version, const char *name)
{
    struct mux_config cfg;
    mux_config_default(&cfg);
    cfg.version = version;
    cfg.keepalive_interval_ms = 0;
    struct mh_side c, s;
    mh_side_init(&c, &cfg, true, 0);
    mh_side_init(&s, &cfg, false, 0);
    const size_t total = 256u << 20, wsz = 32768, rsz = 65536;
    uint8_t *wbuf = calloc(1, wsz), *rbuf = malloc(rsz);
    uint32_t sid;
    if (!wbuf || !rbuf || mux_stream_open(c.m, &sid) != 0) {
        fprintf(stderr, "bench_mux: setup failed\n");
        exit(1);
    }
    size_t sent = 0, got = 0;
    double t0 = bench_cpu_s();
    while (got < total) {
        while (sent < total && c.out.len - c.out_off < (1u << 20)) {
            ssize_t n = mux_stream_write(c.m, sid, wbuf, wsz);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        mh_deliver(&c, &s, SIZE_MAX, 0);
        ssize_t n;
        while ((n = mux_stream_read(s.m, sid, rbuf, rsz)) > 0)
            got += (size_t)n;
        mh_deliver(&s, &c, SIZE_MAX, 0);
    }
    double dt = bench_cpu_s() - t0;
    bench_report(name, (double)total / 1e6 / dt, "MB/s");
    free(wbuf);
    free(rbuf);
    mh_side_free(&c);
    mh_side_free(&s);
}

BENCH(mux_stream_throughput)
{
    bench_stream(1, "mux.v1_stream");
    bench_stream(2, "mux.v2_stream");
}
