/* SPDX-License-Identifier: MIT */
/* Pure core: the paced sender's loss estimator. Every acknowledged segment is evidence: it
 * was sent with c redundant copies in a FEC group with j parity shards, and it either needed
 * a retransmission (arrived late) or not. From that evidence the estimator gives the
 * maximum-likelihood loss probability of one packet, the rate of losses parity left
 * unrepaired, and the upper end of the 95 % likelihood interval, each recomputed only when
 * the evidence changed. No clocks, no I/O: kcp.c feeds it and asks it. */
#ifndef KTUN_LOSSEST_H
#define KTUN_LOSSEST_H

#include <stdbool.h>
#include <stdint.h>

/* Redundant copies per segment the evidence tells apart (0 .. LOSSEST_COPIES_MAX), and the
 * most the paced sender sends (kcp.c copies_wanted): three times the load of an interactive
 * flow. */
#define LOSSEST_COPIES_MAX 2
#define LOSSEST_COPY_LEVELS (LOSSEST_COPIES_MAX + 1)
/* FEC parity counts the evidence tells apart (a group sent with more parity shards counts as
 * this many minus one). */
#define LOSSEST_PARITY_LEVELS 17
/* Parity of a segment whose FEC group had not closed when it was acknowledged: counts as 0. */
#define LOSSEST_PARITY_UNKNOWN 0xff
/* The estimator forgets half of its evidence every this many resolved segments. */
#define LOSSEST_MEMORY 2048.0

struct lossest {
    /* per copies c and parity level j: segments resolved and those of them that needed a
     * retransmission (halved together, hence fractional) */
    double n[LOSSEST_COPY_LEVELS][LOSSEST_PARITY_LEVELS];
    double l[LOSSEST_COPY_LEVELS][LOSSEST_PARITY_LEVELS];
    double cn[LOSSEST_COPY_LEVELS]; /* n and l summed over the parity levels (the pooled */
    double cl[LOSSEST_COPY_LEVELS]; /* model's evidence) */
    double total;     /* the sum of n */
    double lost;      /* the sum of l */
    uint32_t ds;      /* data shards per FEC group (lossest_set_data_shards); 0: no FEC */
    double p;         /* maximum-likelihood loss probability (p_dirty: stale) */
    double pooled;    /* the same with every parity level taken as none (pooled_dirty) */
    bool p_dirty;
    bool pooled_dirty;
    /* the upper bound's bisection, carried only as far as a question needed: after up_iter
     * of its steps the bound lies in [up_lo, up_hi] (up_iter < 0: evidence changed since) */
    int up_iter;
    double up_lo, up_hi, up_floor;
};

/* A zeroed struct lossest is an estimator without evidence. Each estimate is computed
 * when asked for after the evidence changed, and only as precisely as the question needs. */

/* The FEC groups have |ds| data shards (0: no FEC). */
void lossest_set_data_shards(struct lossest *e, uint32_t ds);

/* One segment sent with |copies| (at most LOSSEST_COPIES_MAX) redundant copies in a group
 * that got |parity| parity shards (LOSSEST_PARITY_UNKNOWN: not closed yet) was acknowledged,
 * |lost|: it needed a retransmission. */
void lossest_record(struct lossest *e, unsigned copies, unsigned parity, bool lost);

/* Maximum-likelihood loss probability of one packet (0 without a loss in the evidence). */
double lossest_p(struct lossest *e);

/* Rate of losses that parity left unrepaired: the maximum-likelihood p with every parity
 * level taken as none (what redundant copies have to answer). */
double lossest_pooled(struct lossest *e);

/* The largest loss probability the evidence still supports: the upper end of the likelihood
 * interval (log-likelihood within 1.92 of its maximum: 95 %), at most 0.5; before the first
 * lossest_record, 0. */
double lossest_upper(struct lossest *e);

/* The largest p in [lossest_p, 0.5] whose log-likelihood is within |drop| of the maximum
 * (lossest_upper is |drop| 1.92); needs at least one lossest_record. */
double lossest_bound(struct lossest *e, double drop);

/* Fewest parity shards (at most |cap|, itself at most LOSSEST_PARITY_LEVELS - 1) that bring
 * the probability that a data shard is lost and not rebuilt to |target| or below, at the
 * loss probability lossest_upper. */
int lossest_parity(struct lossest *e, int cap, double target);

/* Probability that at least |j| of |n| packets are lost, each with probability |p| < 1; in
 * *|tj| the probability of exactly j losses. */
double lossest_binom_tail(uint32_t n, uint32_t j, double p, double *tj);

/* Probability that a data shard, lost with probability |p| in a group of |ds| data shards
 * sent with |j| parity shards, is not rebuilt. *|dlog| receives p times the derivative of
 * its logarithm over p. */
double lossest_unrepaired(uint32_t ds, uint32_t j, double p, double *dlog);

/* Log-likelihood of |e|'s evidence at loss probability |p| (0 < p < 1). */
double lossest_loglik(const struct lossest *e, double p);

#endif
