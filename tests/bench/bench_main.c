/* SPDX-License-Identifier: MIT */
/* Benchmark runner: runs every registered benchmark, or those whose name contains argv[1]. */
#include "tests/bench/bench.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static struct bench_case *benches;

void bench_register(struct bench_case *bc)
{
    struct bench_case **p = &benches;
    while (*p)
        p = &(*p)->next;
    bc->next = NULL;
    *p = bc;
}

void bench_report(const char *name, double value, const char *unit)
{
    printf("bench: %s %.1f %s\n", name, value, unit);
    fflush(stdout);
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    for (struct bench_case *bc = benches; bc; bc = bc->next)
        if (!filter || strstr(bc->name, filter))
            bc->fn();
    return 0;
}
