/* SPDX-License-Identifier: MIT */
/* Benchmark harness: self-registering benchmarks that print "bench: NAME VALUE UNIT" lines. */
#ifndef KTUN_BENCH_H
#define KTUN_BENCH_H

struct bench_case {
    const char *name;           /* benchmark function name */
    void (*fn)(void);           /* body: measures and calls bench_report */
    struct bench_case *next;    /* registration list */
};

void bench_register(struct bench_case *bc);
/* Prints one figure as "bench: |name| |value| |unit|". */
void bench_report(const char *name, double value, const char *unit);
/* Monotonic wall clock in seconds. */
double bench_now_s(void);
/* Thread CPU time in seconds. */
double bench_cpu_s(void);

#define BENCH(bname)                                                                        \
    static void bname(void);                                                                \
    static struct bench_case bc_##bname = {#bname, bname, NULL};                            \
    __attribute__((constructor)) static void breg_##bname(void) { bench_register(&bc_##bname); } \
    static void bname(void)

#endif
