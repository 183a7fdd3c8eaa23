/* SPDX-License-Identifier: MIT */
/* Pure core: the paced sender's loss estimator (see lossest.h). */
#include "common/lossest.h"

#include "common/mathlog.h"

#include <stddef.h>

/* Summed from the tail's small end: no cancellation for small p. */
double lossest_binom_tail(uint32_t n, uint32_t j, double p, double *tj)
{
    double r = p / (1 - p), t = 1;
    for (uint32_t i = 0; i < n; i++)
        t *= 1 - p;
    for (uint32_t i = 0; i < j; i++)
        t *= r * (double)(n - i) / (double)(i + 1);
    *tj = t;
    double g = 0;
    for (uint32_t i = j; i <= n && t > 0; i++) {
        g += t;
        t *= r * (double)(n - i) / (double)(i + 1);
    }
    return g;
}

/* The shard is not rebuilt when at least j of the group's other ds + j - 1 shards are lost
 * too. */
double lossest_unrepaired(uint32_t ds, uint32_t j, double p, double *dlog)
{
    if (j == 0) {
        *dlog = 1;
        return p;
    }
    double tj;
    double g = lossest_binom_tail(ds + j - 1, j, p, &tj);
    /* d/dp P(X >= j) = j / p * P(X = j) for X ~ Bin(n, p) */
    *dlog = 1 + (g > 0 ? (double)j * tj / g : (double)j);
    return p * g;
}

/* The model: a segment sent with c copies in a FEC group with j parity shards needed a
 * retransmission with probability q = p^c x lossest_unrepaired(p) (the copies and the group
 * taken as independent). At loss probability |p| this sums over the evidence the score (p
 * times the derivative of the log-likelihood, which falls with p) into *|score| and the
 * log-likelihood into *|loglik|, each only if asked for. |pooled| (score only): every parity
 * level taken as none. */
static void loss_eval(const struct lossest *e, double p, bool pooled, double *score,
                      double *loglik)
{
    double s = 0, f = 0, pc = 1;
    if (pooled) { /* q = p^(c+1) whatever the parity: the sums per c suffice */
        for (int c = 0; c < LOSSEST_COPY_LEVELS; c++, pc *= p) {
            double n = e->cn[c], l = e->cl[c];
            if (n <= 0)
                continue;
            double q = pc * p, won = n - l;
            if (q >= 1)
                q = 1 - 1e-12;
            s += (1 + c) * (l - (won > 0 ? won : 0) * q / (1 - q));
        }
        *score = s;
        return;
    }
    for (int c = 0; c < LOSSEST_COPY_LEVELS; c++, pc *= p) {
        for (int j = 0; j < LOSSEST_PARITY_LEVELS; j++) {
            double n = e->n[c][j], l = e->l[c][j];
            if (n <= 0)
                continue;
            double a, q = pc * lossest_unrepaired(e->ds, (uint32_t)j, p, &a);
            double won = n - l;
            if (q >= 1)
                q = 1 - 1e-12;
            if (score)
                s += (a + c) * (l - (won > 0 ? won : 0) * q / (1 - q));
            if (loglik) {
                if (l > 0)
                    f += l * ktun_log(q > 1e-300 ? q : 1e-300);
                if (won > 0)
                    f += won * ktun_log1p(-q);
            }
        }
    }
    if (score)
        *score = s;
    if (loglik)
        *loglik = f;
}

double lossest_loglik(const struct lossest *e, double p)
{
    double f;
    loss_eval(e, p, false, NULL, &f);
    return f;
}

static double score(const struct lossest *e, double p, bool pooled)
{
    double s;
    loss_eval(e, p, pooled, &s, NULL);
    return s;
}

/* Width of the interval the maximum-likelihood p is narrowed to (2^-31: what 30 halvings of
 * [0, 0.5] give). */
#define LOSSEST_ML_TOL 0x1p-31

/* Narrows [*lo, *hi] (score positive at *lo, not at *hi) to the side of |x| where the
 * score changes sign; returns the score at x. */
static double narrow(const struct lossest *e, bool pooled, double x, double *lo, double *flo,
                     double *hi, double *fhi)
{
    double fx = score(e, x, pooled);
    if (fx > 0)
        *lo = x, *flo = fx;
    else
        *hi = x, *fhi = fx;
    return fx;
}

/* The maximum-likelihood p: the root of the score in [0, 0.5] (0.5 if the score is positive
 * there, 0 without a loss), within LOSSEST_ML_TOL. The evidence changes by a few segments
 * between questions, so the root is first bracketed around the previous answer |prev| (the
 * bracket widening 8-fold until the score changes sign). Then each round takes the secant
 * point of the bracket and a point past it on the root's side, twice the last secant step
 * away: the secant point converges faster than linearly, so that second point usually
 * closes the bracket around it; a round that does not halve the bracket adds a halving. */
static double loss_ml(const struct lossest *e, bool pooled, double prev)
{
    if (e->lost <= 0)
        return 0;
    double lo = 0, hi = 0.5, flo = 0, fhi = 0;
    bool have_lo = false, have_hi = false;
    if (prev > 0 && prev < 0.5) {
        double d = prev / 256;
        bool up = narrow(e, pooled, prev - d, &lo, &flo, &hi, &fhi) > 0;
        have_lo = up, have_hi = !up;
        for (;;) {
            d *= 8;
            double x = up ? prev + d : prev - d;
            if (up ? x >= 0.5 : x <= 0)
                break;
            bool pos = narrow(e, pooled, x, &lo, &flo, &hi, &fhi) > 0;
            if (pos != up) {
                have_lo = have_hi = true;
                break;
            }
        }
    }
    if (!have_lo)
        flo = score(e, lo, pooled);
    if (!have_hi)
        fhi = score(e, hi, pooled);
    if (fhi > 0)
        return hi;
    if (flo <= 0)
        return lo;
    double xprev = -1;
    for (int round = 0; round < 64 && hi - lo > LOSSEST_ML_TOL; round++) {
        double w = hi - lo;
        double x = hi - fhi * w / (fhi - flo);
        if (!(x > lo && x < hi))
            x = lo + w / 2;
        double fx = narrow(e, pooled, x, &lo, &flo, &hi, &fhi);
        if (hi - lo <= LOSSEST_ML_TOL)
            break;
        double d = xprev < 0 ? w / 64 : x > xprev ? x - xprev : xprev - x;
        xprev = x;
        if (d < LOSSEST_ML_TOL / 4)
            d = LOSSEST_ML_TOL / 4;
        double y = fx > 0 ? x + 2 * d : x - 2 * d;
        if (y > lo && y < hi)
            narrow(e, pooled, y, &lo, &flo, &hi, &fhi);
        if (hi - lo > w / 2)
            narrow(e, pooled, lo + (hi - lo) / 2, &lo, &flo, &hi, &fhi);
    }
    return (lo + hi) / 2;
}

void lossest_set_data_shards(struct lossest *e, uint32_t ds)
{
    if (e->ds == ds)
        return;
    /* the likelihood of the parity levels depends on the group size: the ML estimate and the
     * upper bound are stale (the pooled one ignores parity) */
    e->ds = ds;
    if (e->total > 0) { /* (without evidence there is nothing to redo) */
        e->p_dirty = true;
        e->up_iter = -1;
    }
}

void lossest_record(struct lossest *e, unsigned copies, unsigned parity, bool lost)
{
    unsigned j = parity == LOSSEST_PARITY_UNKNOWN         ? 0
                 : parity < LOSSEST_PARITY_LEVELS         ? parity
                                                          : LOSSEST_PARITY_LEVELS - 1;
    unsigned c = copies < LOSSEST_COPIES_MAX ? copies : LOSSEST_COPIES_MAX;
    if (e->total >= LOSSEST_MEMORY) {
        for (int i = 0; i < LOSSEST_COPY_LEVELS; i++) {
            for (int m = 0; m < LOSSEST_PARITY_LEVELS; m++) {
                e->n[i][m] /= 2;
                e->l[i][m] /= 2;
            }
            e->cn[i] /= 2;
            e->cl[i] /= 2;
        }
        e->total /= 2;
        e->lost /= 2;
    }
    e->n[c][j] += 1;
    e->cn[c] += 1;
    e->total += 1;
    if (lost) {
        e->l[c][j] += 1;
        e->cl[c] += 1;
        e->lost += 1;
    }
    e->p_dirty = true;
    e->pooled_dirty = true;
    e->up_iter = -1;
}

double lossest_p(struct lossest *e)
{
    if (e->p_dirty) {
        e->p_dirty = false;
        e->p = loss_ml(e, false, e->p);
    }
    return e->p;
}

double lossest_pooled(struct lossest *e)
{
    if (e->pooled_dirty) {
        e->pooled_dirty = false;
        e->pooled = loss_ml(e, true, e->pooled);
    }
    return e->pooled;
}

/* Starts the bisection for the largest p in [lossest_p, 0.5] whose log-likelihood is within
 * |drop| of the maximum: none when 0.5 itself is (then up_lo = up_hi = 0.5). */
static void bound_start(struct lossest *e, double drop)
{
    e->up_iter = 0;
    e->up_lo = lossest_p(e);
    e->up_hi = 0.5;
    e->up_floor = lossest_loglik(e, e->up_lo) - drop;
    if (lossest_loglik(e, e->up_hi) >= e->up_floor)
        e->up_lo = e->up_hi;
}

static bool bound_done(const struct lossest *e)
{
    return e->up_iter >= 30 || e->up_lo == e->up_hi;
}

static void bound_step(struct lossest *e)
{
    double mid = (e->up_lo + e->up_hi) / 2;
    if (lossest_loglik(e, mid) >= e->up_floor)
        e->up_lo = mid;
    else
        e->up_hi = mid;
    e->up_iter++;
}

/* The bound once the bisection is done: the middle of its last interval (30 halvings of
 * [lossest_p, 0.5]: within 5e-10). */
static double bound_value(const struct lossest *e)
{
    return (e->up_lo + e->up_hi) / 2;
}

double lossest_bound(struct lossest *e, double drop)
{
    bound_start(e, drop);
    while (!bound_done(e))
        bound_step(e);
    double b = bound_value(e);
    e->up_iter = -1; /* not lossest_upper's */
    return b;
}

#define LOSSEST_UP_DROP 1.92 /* log-likelihood below the maximum at the 95 % bound */

/* Parity rests on this bound: a clean path must show that it is clean (some thousand
 * segments without a loss) before its groups go without parity, and a quiet spell under full
 * parity (losses repaired unseen) does not pass for a clean path. */
double lossest_upper(struct lossest *e)
{
    if (e->up_iter < 0)
        bound_start(e, LOSSEST_UP_DROP);
    while (!bound_done(e))
        bound_step(e);
    return bound_value(e);
}

/* Fewest parity shards below |cap| that leave a shard unrepaired with probability <= |target|
 * at loss probability |p|, else |cap|. It never falls as p grows (lossest_unrepaired grows
 * with p and falls with the parity). */
static int parity_at(uint32_t ds, int cap, double target, double p)
{
    double a;
    int j = 0;
    while (j < cap && lossest_unrepaired(ds, (uint32_t)j, p, &a) > target)
        j++;
    return j;
}

/* The answer at the bound is the answer at both ends of any interval of the bisection that
 * gives the same answer at both ends (parity_at never falls as p grows, and each interval holds
 * the next): the bisection goes only as far as that, and further questions with the same
 * evidence continue it. */
int lossest_parity(struct lossest *e, int cap, double target)
{
    if (e->up_iter < 0)
        bound_start(e, LOSSEST_UP_DROP);
    int j = parity_at(e->ds, cap, target, e->up_hi);
    while (!bound_done(e)) {
        double a;
        if (j == 0 || lossest_unrepaired(e->ds, (uint32_t)j - 1, e->up_lo, &a) > target)
            return j; /* parity_at(up_lo) is j too */
        bound_step(e);
        while (j > 0 && lossest_unrepaired(e->ds, (uint32_t)j - 1, e->up_hi, &a) <= target)
            j--; /* parity_at(up_hi) */
    }
    return parity_at(e->ds, cap, target, bound_value(e));
}
