/* SPDX-License-Identifier: MIT */
/* Pure core: natural logarithms, see mathlog.h. x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
 * ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1)/(m + 1), |s| < 0.1716:
 * twelve terms reach double precision. e ln 2 is added in two parts (ln 2 split into a head
 * exact in few bits and a tail) so that the product stays exact. */
#include "common/mathlog.h"

#include <stdint.h>
#include <string.h>

#define LN2_HI 6.93147180369123816490e-01 /* ln 2, upper 32 bits of the mantissa */
#define LN2_LO 1.90821492927058770002e-10 /* ln 2 - LN2_HI */
#define SQRT2 1.41421356237309504880

double ktun_log(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof(b));
    if (x != x)
        return x;
    if (x < 0)
        return __builtin_nan("");
    if (x == 0)
        return -__builtin_inf();
    if (b >= 0x7ff0000000000000ull)
        return x; /* +inf */
    int e = 0;
    if (b < 0x0010000000000000ull) { /* subnormal: scale into the normal range */
        x *= 0x1p54;
        memcpy(&b, &x, sizeof(b));
        e = -54;
    }
    e += (int)(b >> 52) - 1023;
    b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
    double m;
    memcpy(&m, &b, sizeof(m));
    if (m > SQRT2) {
        m *= 0.5;
        e++;
    }
    double f = m - 1, s = f / (2 + f), z = s * s;
    double t = 1.0 / 25;
    for (int k = 23; k >= 3; k -= 2)
        t = 1.0 / k + z * t;
    double r = 2 * s * z * t; /* 2 (s^3/3 + s^5/5 + ...) */
    /* 2s = f - s f, written so the large term f stays exact */
    double lnm = f - s * f + r;
    return (double)e * LN2_HI + (lnm + (double)e * LN2_LO);
}

double ktun_log1p(double x)
{
    if (x != x)
        return x;
    if (x < -1)
        return __builtin_nan("");
    if (x == -1)
        return -__builtin_inf();
    double u = 1 + x;
    if (u == 1)
        return x; /* |x| below half an ulp of 1: ln(1 + x) = x to double precision */
    if (u == __builtin_inf())
        return u;
    /* ln(u) * x / (u - 1): the rounding of 1 + x cancels (Goldberg's method). */
    return ktun_log(u) * (x / (u - 1));
}
