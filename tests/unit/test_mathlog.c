/* SPDX-License-Identifier: MIT */
/* ktun_log and ktun_log1p (common/mathlog.c) against libm across their ranges. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/mathlog.h"
#include "tests/test.h"

/* Distance in units in the last place between two finite doubles of the same sign. */
static uint64_t ulps(double a, double b)
{
    int64_t x, y;
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    if (x < 0)
        x = INT64_MIN - x;
    if (y < 0)
        y = INT64_MIN - y;
    return x > y ? (uint64_t)(x - y) : (uint64_t)(y - x);
}

TEST(mathlog_log_matches_libm)
{
    uint64_t worst = 0, seed = 12345;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t bits = (seed >> 1) & 0x7fefffffffffffffull; /* positive finite, subnormals too */
        double x;
        memcpy(&x, &bits, sizeof(x));
        if (x == 0)
            continue;
        uint64_t u = ulps(ktun_log(x), log(x));
        worst = u > worst ? u : worst;
    }
    /* Near 1, where cancellation would show, and the loss likelihood's range (1e-300 .. 1). */
    for (double x = 0.5; x < 2; x += 1.0 / 4096) {
        uint64_t u = ulps(ktun_log(x), log(x));
        worst = u > worst ? u : worst;
    }
    for (double x = 1e-300; x < 1; x *= 1.37) {
        uint64_t u = ulps(ktun_log(x), log(x));
        worst = u > worst ? u : worst;
    }
    CHECK(worst <= 2);
    CHECK(ktun_log(1) == 0);
    CHECK(isinf(ktun_log(0)) && ktun_log(0) < 0);
    CHECK(isnan(ktun_log(-1)));
    CHECK(isinf(ktun_log(INFINITY)));
    CHECK(isnan(ktun_log(NAN)));
}

TEST(mathlog_log1p_matches_libm)
{
    uint64_t worst = 0;
    for (double x = 1e-300; x < 1e300; x *= 1.11) {
        uint64_t u = ulps(ktun_log1p(x), log1p(x));
        worst = u > worst ? u : worst;
        if (x < 1) {
            u = ulps(ktun_log1p(-x), log1p(-x));
            worst = u > worst ? u : worst;
        }
    }
    for (double q = 1e-12; q < 1; q += 1.0 / 8192) {
        uint64_t u = ulps(ktun_log1p(-q), log1p(-q));
        worst = u > worst ? u : worst;
    }
    CHECK(worst <= 2);
    CHECK(ktun_log1p(0) == 0);
    CHECK(isinf(ktun_log1p(-1)) && ktun_log1p(-1) < 0);
    CHECK(isnan(ktun_log1p(-2)));
    CHECK(ktun_log1p(1e-20) == 1e-20);
}
