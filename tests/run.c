/* SPDX-License-Identifier: MIT */
/* Test runner: runs every registered test (optionally those matching argv[1] or TEST_FILTER). */
#include "tests/test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct test_case *tests;
static int current_failures;

void test_register(struct test_case *tc)
{
    /* Constructors run in link order; keep registration order for stable output. */
    struct test_case **p = &tests;
    while (*p)
        p = &(*p)->next;
    tc->next = NULL;
    *p = tc;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    current_failures++;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

int test_failures(void)
{
    return current_failures;
}

void test_hexdump(const char *label, const void *p, size_t n)
{
    const unsigned char *b = p;
    printf("    %s (%zu bytes):", label, n);
    for (size_t i = 0; i < n; i++)
        printf("%s%02x", i % 32 ? "" : "\n      ", b[i]);
    printf("\n");
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool matches(const struct test_case *tc, const char *filter)
{
    return !filter || !*filter || strstr(tc->name, filter) || strstr(tc->file, filter);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : getenv("TEST_FILTER");
    int passed = 0, failed = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (struct test_case *tc = tests; tc; tc = tc->next) {
        if (!matches(tc, filter))
            continue;
        current_failures = 0;
        double t0 = mono_ms();
        tc->fn();
        double dt = mono_ms() - t0;
        if (current_failures) {
            failed++;
            printf("FAIL %s: %s (%.0f ms)\n", tc->file, tc->name, dt);
        } else {
            passed++;
            printf("ok   %s: %s (%.0f ms)\n", tc->file, tc->name, dt);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
