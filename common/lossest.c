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
 * log-likelihood into *|loglik|, each only if asked for. |pooled|: every parity level
 * taken as none. */
static void loss_eval(const struct lossest *e, double p, bool pooled, double *score,
                      double *loglik)
{
    double s = 0, f = 0, pc = 1;
    for (int c = 0; c < LOSSEST_COPY_LEVELS; c++, pc *= p) {
        for (int j = 0; j < LOSSEST_PARITY_LEVELS; j++) {
            double n = e->n[c][j], l = e->l[c][j];
            if (n <= 0)
                continue;
            double a, q = pc * lossest_unrepaired(e->ds, pooled ? 0 : (uint32_t)j, p, &a);
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

static double total_resolved(const struct lossest *e)
{
    double total = 0;
    for (int c = 0; c < LOSSEST_COPY_LEVELS; c++)
        for (int j = 0; j < LOSSEST_PARITY_LEVELS; j++)
            total += e->n[c][j];
    return total;
}

/* The maximum-likelihood p: the root of the score, by bisection on [0, 0.5]. */
static double loss_ml(const struct lossest *e, bool pooled)
{
    double lost = 0;
    for (int c = 0; c < LOSSEST_COPY_LEVELS; c++)
        for (int j = 0; j < LOSSEST_PARITY_LEVELS; j++)
            lost += e->l[c][j];
    if (lost <= 0)
        return 0;
    double lo = 0, hi = 0.5;
    for (int i = 0; i < 30; i++) {
        double mid = (lo + hi) / 2, s;
        loss_eval(e, mid, pooled, &s, NULL);
        if (s > 0)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

static void refresh(struct lossest *e)
{
    if (e->dirty) {
        e->dirty = false;
        e->p = loss_ml(e, false);
        e->pooled = loss_ml(e, true);
    }
}

void lossest_set_data_shards(struct lossest *e, uint32_t ds)
{
    e->ds = ds;
}

void lossest_record(struct lossest *e, unsigned copies, unsigned parity, bool lost)
{
    unsigned j = parity == LOSSEST_PARITY_UNKNOWN         ? 0
                 : parity < LOSSEST_PARITY_LEVELS         ? parity
                                                          : LOSSEST_PARITY_LEVELS - 1;
    unsigned c = copies < LOSSEST_COPIES_MAX ? copies : LOSSEST_COPIES_MAX;
    if (total_resolved(e) >= LOSSEST_MEMORY) {
        for (int i = 0; i < LOSSEST_COPY_LEVELS; i++) {
            for (int m = 0; m < LOSSEST_PARITY_LEVELS; m++) {
                e->n[i][m] /= 2;
                e->l[i][m] /= 2;
            }
        }
    }
    e->n[c][j] += 1;
    if (lost)
        e->l[c][j] += 1;
    e->dirty = true;
    e->up_dirty = true;
}

double lossest_p(struct lossest *e)
{
    refresh(e);
    return e->p;
}

double lossest_pooled(struct lossest *e)
{
    refresh(e);
    return e->pooled;
}

double lossest_bound(struct lossest *e, double drop)
{
    double lo = lossest_p(e), hi = 0.5;
    double floor = lossest_loglik(e, lo) - drop;
    if (lossest_loglik(e, hi) >= floor)
        return hi;
    for (int i = 0; i < 30; i++) {
        double mid = (lo + hi) / 2;
        if (lossest_loglik(e, mid) >= floor)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

/* Parity rests on this bound: a clean path must show that it is clean (some thousand
 * segments without a loss) before its groups go without parity, and a quiet spell under full
 * parity (losses repaired unseen) does not pass for a clean path. */
double lossest_upper(struct lossest *e)
{
    if (e->up_dirty) {
        e->up_dirty = false;
        e->up = lossest_bound(e, 1.92);
    }
    return e->up;
}

int lossest_parity(struct lossest *e, int cap, double target)
{
    double p = lossest_upper(e), a;
    int j = 0;
    while (j < cap && lossest_unrepaired(e->ds, (uint32_t)j, p, &a) > target)
        j++;
    return j;
}
