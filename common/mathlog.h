/* SPDX-License-Identifier: MIT */
/* Pure core: natural logarithms without libm. The programs' only use of libm was log() and
 * log1p() (the loss likelihood, lossest.c), and merely loading glibc's libm.so.6 (IFUNC resolution,
 * relocations, the kernel's 64 KB fault-around) keeps about 0.5 MB of it resident in every
 * process; these are within 2 ulp of glibc's (tests/unit/test_mathlog.c). */
#ifndef KTUN_MATHLOG_H
#define KTUN_MATHLOG_H

/* ln(x): -inf for 0, NaN for negative or NaN, +inf for +inf. */
double ktun_log(double x);

/* ln(1 + x), accurate for small |x|: -inf for -1, NaN below. */
double ktun_log1p(double x);

#endif
