/* SPDX-License-Identifier: MIT */
/* Minimal test harness: self-registering test cases and CHECK macros that report and go on. */
#ifndef KTUN_TEST_H
#define KTUN_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct test_case {
    const char *file;          /* source file, used as the suite name */
    const char *name;          /* test function name */
    void (*fn)(void);          /* the test body */
    struct test_case *next;    /* registration list */
};

void test_register(struct test_case *tc);
/* Records a failure of the running test and prints "file:line: message". */
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Number of failures recorded so far in the running test. */
int test_failures(void);
/* Prints a hex dump of |n| bytes of |p| labelled |label| (for diagnostics). */
void test_hexdump(const char *label, const void *p, size_t n);

#define TEST(tname)                                                                         \
    static void tname(void);                                                                \
    static struct test_case tc_##tname = {__FILE__, #tname, tname, NULL};                   \
    __attribute__((constructor)) static void reg_##tname(void) { test_register(&tc_##tname); } \
    static void tname(void)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond))                                                                        \
            test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                       \
    } while (0)

/* Like CHECK but leaves the test at once: use it where going on would crash. */
#define REQUIRE(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            test_fail(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);                     \
            return;                                                                         \
        }                                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);                               \
        if (va_ != vb_)                                                                     \
            test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, va_, vb_); \
    } while (0)

#define CHECK_MEM(a, b, n)                                                                  \
    do {                                                                                    \
        const unsigned char *pa_ = (const unsigned char *)(a), *pb_ = (const unsigned char *)(b); \
        size_t n_ = (size_t)(n), i_;                                                        \
        for (i_ = 0; i_ < n_ && pa_[i_] == pb_[i_]; i_++)                                   \
            ;                                                                               \
        if (i_ < n_)                                                                        \
            test_fail(__FILE__, __LINE__,                                                   \
                      "CHECK_MEM(%s, %s, %zu): differ at byte %zu (%02x != %02x)", #a, #b,  \
                      n_, i_, pa_[i_], pb_[i_]);                                            \
    } while (0)

#endif
