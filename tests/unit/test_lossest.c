/* SPDX-License-Identifier: MIT */
/* The loss estimator (common/lossest.c) against closed forms and direct sums. */
#include <math.h>
#include <string.h>

#include "common/lossest.h"
#include "tests/test.h"

static bool near(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fabs(b);
}

/* The estimates are narrowed to an interval of 2^-31: their middle is within 2^-32. */
static bool ml_near(double a, double b)
{
    return fabs(a - b) <= 0x1p-32;
}

/* |n| segments sent with |copies| copies in groups with |parity| parity shards, of which the
 * first |lost| needed a retransmission. */
static void feed(struct lossest *e, int n, int lost, unsigned copies, unsigned parity)
{
    for (int i = 0; i < n; i++)
        lossest_record(e, copies, parity, i < lost);
}

/* P(X >= j) and P(X = j) for X ~ Bin(n, p), each term from lgamma. */
static double direct_tail(uint32_t n, uint32_t j, double p, double *tj)
{
    double g = 0;
    for (uint32_t i = j; i <= n; i++) {
        double t = exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * log(p) +
                       (n - i) * log1p(-p));
        if (i == j)
            *tj = t;
        g += t;
    }
    return g;
}

TEST(lossest_binom_tail_matches_direct_sum)
{
    static const double ps[] = {1e-4, 0.003, 0.05, 0.2, 0.5};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        for (uint32_t n = 1; n <= 30; n += 3) {
            for (uint32_t j = 0; j <= n; j++) {
                double tj, dj, g = lossest_binom_tail(n, j, ps[k], &tj);
                double d = direct_tail(n, j, ps[k], &dj);
                CHECK(near(g, d, 1e-10));
                CHECK(near(tj, dj, 1e-10));
            }
        }
    }
    double tj;
    CHECK(near(lossest_binom_tail(12, 0, 0.1, &tj), 1, 1e-12)); /* the whole distribution */
    CHECK(lossest_binom_tail(12, 3, 0, &tj) == 0);
}

TEST(lossest_unrepaired_and_its_log_derivative)
{
    double a;
    CHECK(lossest_unrepaired(10, 0, 0.07, &a) == 0.07 && a == 1); /* no parity: lost is lost */
    for (uint32_t j = 1; j <= 6; j++) {
        for (double p = 0.001; p < 0.5; p *= 1.7) {
            double tj, u = lossest_unrepaired(10, j, p, &a);
            /* lost, and at least j of the other 10 + j - 1 shards lost too */
            CHECK(near(u, p * direct_tail(10 + j - 1, j, p, &tj), 1e-10));
            double h = 1e-6;
            double u1 = lossest_unrepaired(10, j, p * (1 + h), &tj);
            double u0 = lossest_unrepaired(10, j, p * (1 - h), &tj);
            CHECK(near(a, (log(u1) - log(u0)) / (2 * h), 1e-6));
        }
        /* more parity repairs more */
        CHECK(lossest_unrepaired(10, j, 0.05, &a) < lossest_unrepaired(10, j - 1, 0.05, &a));
    }
}

TEST(lossest_ml_closed_forms)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    CHECK(lossest_p(&e) == 0 && lossest_upper(&e) == 0); /* nothing recorded */
    lossest_set_data_shards(&e, 10);
    feed(&e, 1000, 50, 0, 0); /* no copies, no parity: p = l / n */
    CHECK(ml_near(lossest_p(&e), 0.05));
    CHECK(ml_near(lossest_pooled(&e), 0.05));
    /* log-likelihood of the binomial, by hand */
    CHECK(near(lossest_loglik(&e, 0.1), 50 * log(0.1) + 950 * log1p(-0.1), 1e-12));
    /* and the ML is its maximum */
    CHECK(lossest_loglik(&e, 0.049) < lossest_loglik(&e, lossest_p(&e)));
    CHECK(lossest_loglik(&e, 0.051) < lossest_loglik(&e, lossest_p(&e)));

    /* one copy: a segment needs a retransmission when both are lost, q = p^2 */
    memset(&e, 0, sizeof(e));
    feed(&e, 1000, 40, 1, 0);
    CHECK(ml_near(lossest_p(&e), 0.2));

    /* parity 3 of 10: the unrepaired rate is l / n; pooled reads it as the loss rate, p
     * undoes the repair */
    memset(&e, 0, sizeof(e));
    lossest_set_data_shards(&e, 10);
    feed(&e, 1000, 10, 0, 3);
    double a, p = lossest_p(&e);
    CHECK(ml_near(lossest_pooled(&e), 0.01));
    CHECK(p > 0.08);
    CHECK(near(lossest_unrepaired(10, 3, p, &a), 0.01, 1e-7));

    /* an unclosed group counts as no parity; more parity than the levels as the last level */
    memset(&e, 0, sizeof(e));
    feed(&e, 100, 7, 0, LOSSEST_PARITY_UNKNOWN);
    CHECK(ml_near(lossest_p(&e), 0.07));
    lossest_record(&e, 2, 200, false);
    CHECK(e.n[2][LOSSEST_PARITY_LEVELS - 1] == 1);
}

TEST(lossest_upper_bound)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    /* no loss in 1000: 1000 ln(1 - p) = -1.92 */
    feed(&e, 1000, 0, 0, 0);
    CHECK(lossest_p(&e) == 0);
    CHECK(near(lossest_upper(&e), -expm1(-1.92 / 1000), 1e-7));

    /* within 1.92 of the maximum, and monotone in the confidence asked for */
    memset(&e, 0, sizeof(e));
    feed(&e, 200, 10, 0, 0);
    double up = lossest_upper(&e), p = lossest_p(&e);
    CHECK(up > p);
    CHECK(fabs(lossest_loglik(&e, up) - (lossest_loglik(&e, p) - 1.92)) < 1e-6);
    double last = p;
    for (double drop = 0.1; drop < 6; drop += 0.5) {
        double b = lossest_bound(&e, drop);
        CHECK(b > last);
        last = b;
    }
    CHECK(lossest_bound(&e, 1e6) == 0.5); /* nothing rules out 0.5 */

    /* the same rate on ten times the evidence: a tighter bound */
    struct lossest f;
    memset(&f, 0, sizeof(f));
    feed(&f, 2000, 100, 0, 0);
    CHECK(lossest_upper(&f) < up && lossest_upper(&f) > 0.05);

    /* the cached bound follows new evidence */
    feed(&e, 200, 100, 0, 0);
    CHECK(lossest_upper(&e) > up);
}

TEST(lossest_parity_fewest_that_meet_target)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    lossest_set_data_shards(&e, 10);
    CHECK(lossest_parity(&e, 3, 1e-4) == 0); /* nothing recorded */
    int last = 0;
    for (int lost = 0; lost <= 300; lost += 30) {
        memset(&e, 0, sizeof(e));
        lossest_set_data_shards(&e, 10);
        feed(&e, 1000, lost, 0, 0);
        double a, target = 1e-4, up = lossest_upper(&e);
        int j = lossest_parity(&e, 16, target);
        CHECK(j >= last); /* more loss, never less parity */
        last = j;
        CHECK(j == 16 || lossest_unrepaired(10, (uint32_t)j, up, &a) <= target);
        if (j > 0)
            CHECK(lossest_unrepaired(10, (uint32_t)j - 1, up, &a) > target);
        CHECK(lossest_parity(&e, 2, target) == (j < 2 ? j : 2)); /* capped */
    }
    CHECK(last >= 6); /* 30 % loss */
}

TEST(lossest_forgets_half)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    for (int i = 0; i < 20000; i++)
        lossest_record(&e, 0, 0, i % 10 == 0);
    CHECK(e.n[0][0] <= LOSSEST_MEMORY + 1 && e.n[0][0] >= LOSSEST_MEMORY / 2);
    CHECK(near(lossest_p(&e), 0.1, 0.01));
    /* old evidence fades: a clean spell brings the estimate down */
    for (int i = 0; i < 10000; i++)
        lossest_record(&e, 0, 0, false);
    CHECK(lossest_p(&e) < 0.001);
}

/* lossest_parity carries the bound's bisection only until the answer is known; the answer is
 * the one at the bound itself, whatever the order of the questions. */
TEST(lossest_parity_lazy_equals_full_bisection)
{
    static const double targets[] = {1e-3, 1e-5, 2e-4, 1e-7, 3e-3, 1e-4};
    uint64_t seed = 7;
    int asked = 0, nonzero = 0;
    for (int round = 0; round < 300; round++) {
        struct lossest e;
        memset(&e, 0, sizeof(e));
        lossest_set_data_shards(&e, 4 + (uint32_t)(round % 13));
        int n = 50 + round * 7;
        double rate = 0.002 * (round % 60);
        for (int i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(seed >> 11) / 9007199254740992.0;
            lossest_record(&e, (unsigned)(i % 5 == 0), (unsigned)(i % 4), u < rate);
        }
        struct lossest full = e;
        double a, up = lossest_upper(&full);
        for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
            int cap = 1 + (round + (int)t) % 16;
            int want = 0;
            while (want < cap && lossest_unrepaired(e.ds, (uint32_t)want, up, &a) > targets[t])
                want++;
            CHECK_EQ(lossest_parity(&e, cap, targets[t]), want);
            asked++;
            nonzero += want > 0;
        }
        CHECK(lossest_upper(&e) == up); /* continuing the bisection lands where it would */
    }
    CHECK(asked == 1800 && nonzero > 900);
}

/* The estimate, started from the previous answer as evidence arrives, agrees with one made
 * from scratch, and maximises the likelihood. */
TEST(lossest_ml_warm_equals_cold)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    lossest_set_data_shards(&e, 10);
    uint64_t seed = 99;
    int checked = 0;
    for (int i = 0; i < 30000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(seed >> 11) / 9007199254740992.0;
        double rate = i < 10000 ? 0.02 : i < 20000 ? 0.2 : 0.001; /* moves: the bracket widens */
        lossest_record(&e, (unsigned)(i % 7 == 0), (unsigned)(i % 3) * 2, u < rate);
        if (i % 10 != 9)
            continue;
        double p = lossest_p(&e), pooled = lossest_pooled(&e);
        if (i % 500 != 499)
            continue;
        struct lossest cold = e;
        cold.p = cold.pooled = 0;
        cold.p_dirty = cold.pooled_dirty = true;
        CHECK(fabs(lossest_p(&cold) - p) <= 0x1p-31);
        CHECK(fabs(lossest_pooled(&cold) - pooled) <= 0x1p-31);
        if (p > 1e-5) {
            CHECK(lossest_loglik(&e, p) >= lossest_loglik(&e, p * (1 + 1e-4)));
            CHECK(lossest_loglik(&e, p) >= lossest_loglik(&e, p * (1 - 1e-4)));
        }
        checked++;
    }
    CHECK(checked == 60);
}

/* The group size enters the likelihood of the parity levels: a new one makes the estimate and
 * the bound stale, and each is then what it is from scratch with that group size. */
TEST(lossest_data_shards_change_refreshes_estimates)
{
    struct lossest e;
    memset(&e, 0, sizeof(e));
    lossest_set_data_shards(&e, 10);
    feed(&e, 2000, 40, 0, 2);
    double p10 = lossest_p(&e), up10 = lossest_upper(&e);
    lossest_parity(&e, 16, 1e-4); /* leaves a bisection under way */
    lossest_set_data_shards(&e, 4);
    struct lossest cold;
    memset(&cold, 0, sizeof(cold));
    lossest_set_data_shards(&cold, 4);
    feed(&cold, 2000, 40, 0, 2);
    CHECK(ml_near(lossest_p(&e), lossest_p(&cold)));
    CHECK(lossest_p(&e) != p10);
    CHECK(fabs(lossest_upper(&e) - lossest_upper(&cold)) <= 1e-9);
    CHECK(fabs(lossest_upper(&e) - up10) > 1e-6);
    CHECK_EQ(lossest_parity(&e, 16, 1e-4), lossest_parity(&cold, 16, 1e-4));
}
