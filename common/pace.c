/* SPDX-License-Identifier: MIT */
/* Sender pacing for KCP: delivery-rate and min-RTT estimates, an in-flight cap and a pacer. */
#include "common/pace.h"

#include "common/util.h"

#include <string.h>

#define PACE_INIT_CWND_SEGS 64   /* in-flight cap before the first rate sample, at most */
#define PACE_RTT_UNKNOWN 100     /* ms assumed before the first RTT sample */
#define PACE_STARTUP_GAIN 2.0
#define PACE_STARTUP_CWND_GAIN 1.5
#define PACE_DRAIN_GAIN 0.4
#define PACE_PROBE_CWND_GAIN 2.0
#define PACE_FULL_GROWTH 1.25    /* STARTUP ends when bw grows less than this ... */
#define PACE_FULL_ROUNDS 3       /* ... for this many rounds */
#define PACE_CYCLE 8
#define PACE_QUEUE_MIN_MS 5      /* standing queue threshold floor */
#define PACE_QUEUE_GAIN 0.85     /* PROBE pacing gain while a queue stands */

static const double probe_gain[PACE_CYCLE] = {1.25, 0.75, 1, 1, 1, 1, 1, 1};

void pace_init(struct pace *p, uint32_t mss, uint32_t ack_delay_ms, uint64_t now_ms)
{
    double cap = p->rate_cap, overhead = p->overhead;
    memset(p, 0, sizeof(*p));
    p->rate_cap = cap;
    p->overhead = overhead;
    p->phase = PACE_STARTUP;
    p->mss = mss ? mss : 1;
    p->ack_delay_ms = ack_delay_ms;
    p->min_rtt = UINT32_MAX;
    p->round_rtt_min = p->last_round_rtt_min = UINT32_MAX;
    p->delivered_ms = now_ms;
    p->tokens_ms = now_ms;
    pace_set_init_cwnd(p, SIZE_MAX);
}

void pace_set_init_cwnd(struct pace *p, size_t bytes)
{
    /* the configured window is a limit, not evidence about the path: a window many times
     * the path's BDP sent at once (and then as STARTUP's first rate, which never falls
     * while STARTUP lasts) floods a slow link, and what it loses is lost again until a
     * segment reaches the dead-link count. Start from the smaller of it and a fixed initial
     * window; STARTUP grows from there by the measured delivery rate. */
    size_t init = MIN(bytes, (size_t)PACE_INIT_CWND_SEGS * p->mss);
    p->init_cwnd = MAX(init, (size_t)PACE_MIN_CWND_SEGS * p->mss);
    if (p->phase == PACE_STARTUP && (p->startup_cwnd < p->init_cwnd || p->delivered == 0))
        p->startup_cwnd = p->init_cwnd;
}

/* Bytes on the path for |bytes| of data, with the overhead sent for them (FEC parity). */
static double with_overhead(const struct pace *p, double bytes)
{
    return bytes * (1 + p->overhead);
}

/* The round trip the window has to cover: min_rtt plus the peer's ACK delay, at least 1 ms. */
static uint32_t rtt_eff(const struct pace *p)
{
    uint32_t r = p->min_rtt == UINT32_MAX ? PACE_RTT_UNKNOWN : p->min_rtt;
    r += p->ack_delay_ms;
    return r ? r : 1;
}

void pace_on_rtt(struct pace *p, uint32_t rtt_ms, uint64_t now_ms)
{
    p->rtt_recent = p->rtt_recent ? (p->rtt_recent * 3 + rtt_ms) / 4 : rtt_ms;
    if (rtt_ms < p->round_rtt_min)
        p->round_rtt_min = rtt_ms;
    p->round_rtt_n++;
    if (rtt_ms <= p->min_rtt || now_ms - p->min_rtt_ms > PACE_RTT_WINDOW_MS) {
        p->min_rtt = rtt_ms;
        p->min_rtt_ms = now_ms;
    }
}

void pace_on_send(const struct pace *p, struct pace_mark *m, uint64_t now_ms)
{
    m->delivered = p->delivered;
    m->delivered_ms = p->delivered_ms;
    m->sent_ms = now_ms;
    m->first_sent_ms = p->first_sent_ms;
    m->wnd_limited = p->delivered < p->wnd_limited_until;
    m->app_limited = p->app_limited || m->wnd_limited;
}

void pace_on_idle_restart(struct pace *p, uint64_t now_ms)
{
    p->delivered_ms = now_ms;
    p->first_sent_ms = now_ms;
}

void pace_set_app_limited(struct pace *p, bool app_limited, size_t inflight_bytes)
{
    p->app_limited = app_limited;
    if (app_limited)
        p->app_limited_until = p->delivered + inflight_bytes + 1;
}

void pace_set_wnd_limited(struct pace *p, bool limited, size_t inflight_bytes)
{
    if (limited)
        p->wnd_limited_until = p->delivered + inflight_bytes + 1;
}

void pace_charge(struct pace *p, size_t len)
{
    if (pace_rate(p) > 0)
        p->tokens -= (double)len;
}

bool pace_spare(const struct pace *p, size_t len)
{
    return pace_rate(p) <= 0 || p->tokens >= (double)len;
}

void pace_set_overhead(struct pace *p, double ratio)
{
    p->overhead = ratio > 0 ? ratio : 0;
}

void pace_set_rate_cap(struct pace *p, double bytes_per_ms)
{
    p->rate_cap = bytes_per_ms > 0 ? bytes_per_ms : 0;
}

static void bw_refresh(struct pace *p)
{
    double m = 0;
    for (int i = 0; i < PACE_BW_ROUNDS; i++)
        if (p->bw_round[i] > m)
            m = p->bw_round[i];
    p->bw = m;
}

bool pace_queue_building(const struct pace *p)
{
    if (p->min_rtt == UINT32_MAX)
        return false;
    uint32_t slack = p->min_rtt / 4 > PACE_QUEUE_MIN_MS ? p->min_rtt / 4 : PACE_QUEUE_MIN_MS;
    return p->rtt_recent > p->min_rtt + p->ack_delay_ms + slack;
}

/* STARTUP's delay-based exit (HyStart++, RFC 9406), checked as a round ends: the smallest RTT
 * sample of the round exceeds the previous round's by an eighth of it (4..16 ms). A round's
 * smallest sample carries the least ACK delay, so it shows a queue forming at the bottleneck
 * within a round, long before the smoothed RTT rises past the ACK delay allowance, while
 * STARTUP's doubling could still overfill a queue of one BDP. */
#define PACE_HYSTART_SAMPLES 8
static bool startup_delay_exit(struct pace *p)
{
    bool exit = false;
    if (p->round_rtt_n >= PACE_HYSTART_SAMPLES) {
        if (p->last_round_rtt_min != UINT32_MAX) {
            uint32_t eta = p->last_round_rtt_min / 8;
            eta = eta < 4 ? 4 : eta > 16 ? 16 : eta;
            exit = p->round_rtt_min != UINT32_MAX &&
                   p->round_rtt_min >= p->last_round_rtt_min + eta;
        }
        p->last_round_rtt_min = p->round_rtt_min;
    }
    p->round_rtt_min = UINT32_MAX;
    p->round_rtt_n = 0;
    return exit;
}

/* Phase changes at the start of a round (STARTUP) or on every ACK (DRAIN, PROBE). */
static void phase_update(struct pace *p, bool round_start, bool limited, size_t inflight_bytes,
                         uint64_t now_ms)
{
    double bdp = p->bw * rtt_eff(p);
    switch (p->phase) {
    case PACE_STARTUP:
        /* a sample that the sender's own limits held down (nothing to send, the peer's
         * window) says nothing about the pipe being full (BBR skips such rounds): a queue
         * seen then is not this flow's doing, or not yet, and its rate estimate is what the
         * application offered, not what the path carries; ending STARTUP on it leaves the
         * flow paced below what it offers, and the probing gain lifts that estimate by a
         * quarter per eight round trips */
        if (p->bw > 0 && !limited &&
            (pace_queue_building(p) || (round_start && startup_delay_exit(p)))) {
            p->phase = PACE_DRAIN; /* the queue fills before bw stops growing */
            break;
        }
        if (!round_start || limited || p->bw <= 0)
            break;
        if (p->bw >= p->full_bw * PACE_FULL_GROWTH) {
            p->full_bw = p->bw;
            p->full_cnt = 0;
        } else if (++p->full_cnt >= PACE_FULL_ROUNDS) {
            p->phase = PACE_DRAIN;
        }
        break;
    case PACE_DRAIN:
        if ((double)inflight_bytes <= bdp) {
            p->phase = PACE_PROBE;
            p->cycle = 2;
            p->cycle_ms = now_ms;
        }
        break;
    case PACE_PROBE:
        /* the draining phase (gain < 1) has nothing left to drain once in-flight fits one
         * BDP (BBR): an application-limited flow never builds the queue it is for */
        if (now_ms - p->cycle_ms >= rtt_eff(p) ||
            (probe_gain[p->cycle] < 1 && (double)inflight_bytes <= bdp)) {
            p->cycle = (p->cycle + 1) % PACE_CYCLE;
            p->cycle_ms = now_ms;
        }
        break;
    }
}

static double raw_cwnd(const struct pace *p);
static double raw_rate(const struct pace *p);
static double startup_first_rate(const struct pace *p);

/* STARTUP: the cap and the rate only grow. The first rate is the initial window over the
 * RTT (what an unpaced sender would have sent), at STARTUP's gain. */
static void startup_floors(struct pace *p)
{
    if (p->phase != PACE_STARTUP || p->bw <= 0)
        return;
    if (p->startup_rate <= 0)
        p->startup_rate = startup_first_rate(p);
    double r = raw_rate(p);
    if (r > p->startup_rate)
        p->startup_rate = r;
    double c = raw_cwnd(p);
    if (c > (double)p->startup_cwnd)
        p->startup_cwnd = c > (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)c;
}

/* STARTUP: every byte delivered lets two leave (slow start, as BBR's cwnd in STARTUP): the cap
 * doubles per round trip whatever the rate samples say. The samples of a round cover data
 * sent at the previous round's rate, so a cap derived from them alone grows by the cwnd gain
 * less the lag, about linearly on a long path. The pacing rate keeps up with the cap: STARTUP's
 * gain times the cap over the round trip. Loss does not stop it (BBR): STARTUP ends when the
 * delivery rate stops growing or the RTT shows a queue. */
static void startup_grow(struct pace *p, size_t len, size_t inflight_bytes)
{
    /* only while the cap is what limits the flow (at least half of it in flight, as TCP's
     * cwnd validation): a flow held back by its data or the peer's window does not show
     * that the path would carry more */
    if (p->phase != PACE_STARTUP)
        return;
    size_t init = (size_t)with_overhead(p, (double)p->init_cwnd);
    if (p->startup_cwnd < init)
        p->startup_cwnd = init;
    if (2 * (inflight_bytes + len) < p->startup_cwnd)
        return;
    /* and only while below STARTUP's gain times the measured BDP (BBR): once the delivery
     * rate stops growing the cap stops too, however long STARTUP takes to notice */
    if (p->bw > 0 && p->min_rtt != UINT32_MAX &&
        (double)p->startup_cwnd >= PACE_STARTUP_GAIN * p->bw * (p->min_rtt ? p->min_rtt : 1))
        return;
    if (p->startup_cwnd < SIZE_MAX / 4)
        p->startup_cwnd += len;
}

void pace_on_ack(struct pace *p, const struct pace_mark *m, size_t len, size_t inflight_bytes,
                 uint64_t now_ms)
{
    p->delivered += len;
    p->delivered_ms = now_ms;
    if (!m) {
        /* the ACK of a retransmission carries no mark. A sender that has nothing more to
         * send and less in flight than the smallest window it is ever given (a trickle of
         * messages, whose own bytes cannot stand in a queue for long) did not build the
         * queue its RTT shows (the reverse direction's traffic or another flow did):
         * STARTUP goes on, as on its marked ACKs. A message flow with more in flight may
         * have built it itself (its copies and parity too). */
        bool own = inflight_bytes >= (size_t)PACE_MIN_CWND_SEGS * p->mss;
        phase_update(p, false, p->app_limited && !own, inflight_bytes, now_ms);
        startup_grow(p, len, inflight_bytes);
        return;
    }
    bool round_start = false;
    if (m->delivered >= p->round_end) {
        p->round_end = p->delivered;
        p->rounds++;
        round_start = true;
    }
    /* as BBR: the longer of the ACK span and the send span, so that ACKs arriving bunched
     * (the peer flushes them per interval) cannot fake a rate the sender never had */
    uint64_t interval = now_ms - m->delivered_ms;
    uint64_t send_span = m->sent_ms - m->first_sent_ms;
    if (m->first_sent_ms && send_span > interval)
        interval = send_span;
    p->first_sent_ms = m->sent_ms;
    if (interval < 1)
        interval = 1;
    double sample = (double)(p->delivered - m->delivered) / (double)interval;
    /* an application-limited sample only counts if it raises the estimate; the filter moves
     * to a new slot (forgetting the oldest round) only for a round with a usable sample */
    bool refresh = false;
    if (!m->app_limited || sample > p->bw) {
        if (p->bw_slot_round != p->rounds) {
            p->bw_slot_round = p->rounds;
            p->bw_idx = (p->bw_idx + 1) % PACE_BW_ROUNDS;
            p->bw_round[p->bw_idx] = 0;
            refresh = true;
        }
        if (sample > p->bw_round[p->bw_idx])
            p->bw_round[p->bw_idx] = sample;
    }
    if (refresh || p->bw_round[p->bw_idx] > p->bw)
        bw_refresh(p);
    phase_update(p, round_start, m->app_limited, inflight_bytes, now_ms);
    startup_floors(p);
    startup_grow(p, len, inflight_bytes);
}

static double cwnd_gain(const struct pace *p)
{
    return p->phase == PACE_PROBE ? PACE_PROBE_CWND_GAIN : PACE_STARTUP_CWND_GAIN;
}

static double raw_cwnd(const struct pace *p)
{
    return cwnd_gain(p) * p->bw * rtt_eff(p);
}

size_t pace_cwnd(const struct pace *p)
{
    size_t floor = (size_t)PACE_MIN_CWND_SEGS * p->mss;
    size_t init = (size_t)with_overhead(p, (double)p->init_cwnd);
    /* before the first rate sample (a path whose round trip exceeds the initial timeout
     * resends the whole first flight, and Karn's rule leaves that round without samples)
     * STARTUP's growth by the bytes delivered still counts */
    if (p->bw <= 0)
        return p->phase == PACE_STARTUP && p->startup_cwnd > init ? p->startup_cwnd : init;
    /* STARTUP's cap never falls below the initial window (with its overhead) */
    if (p->phase == PACE_STARTUP && MAX(p->startup_cwnd, init) > floor)
        floor = MAX(p->startup_cwnd, init);
    double c = raw_cwnd(p);
    if (c > (double)SIZE_MAX / 2)
        return SIZE_MAX / 2;
    return (size_t)c > floor ? (size_t)c : floor;
}

static double raw_rate(const struct pace *p)
{
    double gain = p->phase == PACE_STARTUP ? PACE_STARTUP_GAIN
                  : p->phase == PACE_DRAIN ? PACE_DRAIN_GAIN
                                           : probe_gain[p->cycle];
    /* bw is a max over noisy samples (ACKs come in batches), so it tends to run high: when
     * the RTT says a queue is standing, pace below it until the queue drains. */
    if (p->phase == PACE_PROBE && pace_queue_building(p))
        gain = PACE_QUEUE_GAIN;
    if (gain < 1 && p->delivered < p->app_limited_until)
        gain = 1;
    return gain * p->bw;
}

static double pace_rate_estimated(const struct pace *p);

double pace_rate(const struct pace *p)
{
    double rate = pace_rate_estimated(p);
    if (p->rate_cap > 0 && (rate <= 0 || rate > p->rate_cap))
        return p->rate_cap;
    return rate;
}

/* STARTUP's first rate: the initial window over the round trip at STARTUP's gain (what an
 * unpaced sender would have sent), once the round trip is known. */
static double startup_first_rate(const struct pace *p)
{
    return PACE_STARTUP_GAIN * with_overhead(p, (double)p->init_cwnd) / rtt_eff(p);
}

static double pace_rate_estimated(const struct pace *p)
{
    /* before the first rate sample the cap may already have grown (pace_cwnd): from the
     * first RTT sample on the sender is paced at the first rate, not sent in one burst into
     * what may be a slow link's queue */
    if (p->bw <= 0)
        return p->phase == PACE_STARTUP && p->min_rtt != UINT32_MAX ? startup_first_rate(p) : 0;
    double rate = raw_rate(p);
    double floor = (double)PACE_MIN_CWND_SEGS * p->mss / rtt_eff(p);
    if (p->phase == PACE_STARTUP && p->startup_rate > floor)
        floor = p->startup_rate;
    return rate > floor ? rate : floor;
}

bool pace_ready(struct pace *p, uint64_t now_ms)
{
    double rate = pace_rate(p);
    if (rate <= 0)
        return true;
    if (now_ms > p->tokens_ms) {
        double cap = rate * PACE_BURST_MS;
        double segs = with_overhead(p, PACE_BURST_SEGS * (double)p->mss);
        if (cap < segs)
            cap = segs;
        p->tokens += rate * (double)(now_ms - p->tokens_ms);
        if (p->tokens > cap)
            p->tokens = cap;
        p->tokens_ms = now_ms;
    }
    return p->tokens > 0;
}

uint64_t pace_next_ms(const struct pace *p, uint64_t now_ms)
{
    double rate = pace_rate(p);
    if (rate <= 0 || p->tokens > 0)
        return now_ms;
    /* wake when PACE_BATCH_MS of budget has built up, not for every segment's worth: half as
     * many wake-ups at high rates, a 2 ms burst at most (well within PACE_BURST_MS) */
    uint64_t wait = (uint64_t)(-p->tokens / rate) + PACE_BATCH_MS;
    uint64_t t = p->tokens_ms + wait;
    return t > now_ms ? t : now_ms;
}
