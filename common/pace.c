/* SPDX-License-Identifier: MIT */
/* Sender pacing for KCP: delivery-rate and min-RTT estimates, an in-flight cap and a pacer. */
#include "common/pace.h"

#include <string.h>

#define PACE_INIT_CWND_SEGS 32   /* in-flight cap before the first rate sample */
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
    memset(p, 0, sizeof(*p));
    p->phase = PACE_STARTUP;
    p->mss = mss ? mss : 1;
    p->ack_delay_ms = ack_delay_ms;
    p->min_rtt = UINT32_MAX;
    p->delivered_ms = now_ms;
    p->tokens_ms = now_ms;
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
    m->app_limited = p->app_limited;
}

void pace_charge(struct pace *p, size_t len)
{
    if (p->bw > 0)
        p->tokens -= (double)len;
}

static void bw_refresh(struct pace *p)
{
    double m = 0;
    for (int i = 0; i < PACE_BW_ROUNDS; i++)
        if (p->bw_round[i] > m)
            m = p->bw_round[i];
    p->bw = m;
}

/* True when the recent RTT shows a standing queue at the bottleneck: more than a quarter of
 * min_rtt (at least PACE_QUEUE_MIN_MS) above min_rtt plus the peer's ACK delay. */
static bool queue_building(const struct pace *p)
{
    if (p->min_rtt == UINT32_MAX)
        return false;
    uint32_t slack = p->min_rtt / 4 > PACE_QUEUE_MIN_MS ? p->min_rtt / 4 : PACE_QUEUE_MIN_MS;
    return p->rtt_recent > p->min_rtt + p->ack_delay_ms + slack;
}

/* Phase changes at the start of a round (STARTUP) or on every ACK (DRAIN, PROBE). */
static void phase_update(struct pace *p, bool round_start, size_t inflight_bytes,
                         uint64_t now_ms)
{
    double bdp = p->bw * rtt_eff(p);
    switch (p->phase) {
    case PACE_STARTUP:
        if (p->bw > 0 && queue_building(p)) {
            p->phase = PACE_DRAIN; /* the queue fills before bw stops growing */
            break;
        }
        if (!round_start || p->bw <= 0)
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
        if (now_ms - p->cycle_ms >= rtt_eff(p)) {
            p->cycle = (p->cycle + 1) % PACE_CYCLE;
            p->cycle_ms = now_ms;
        }
        break;
    }
}

void pace_on_ack(struct pace *p, const struct pace_mark *m, size_t len, size_t inflight_bytes,
                 uint64_t now_ms)
{
    p->delivered += len;
    p->delivered_ms = now_ms;
    if (!m) {
        phase_update(p, false, inflight_bytes, now_ms);
        return;
    }
    bool round_start = false;
    if (m->delivered >= p->round_end) {
        p->round_end = p->delivered;
        p->rounds++;
        p->bw_round[p->rounds % PACE_BW_ROUNDS] = 0;
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
    double *slot = &p->bw_round[p->rounds % PACE_BW_ROUNDS];
    if ((!m->app_limited || sample > p->bw) && sample > *slot)
        *slot = sample;
    if (round_start || *slot > p->bw)
        bw_refresh(p);
    phase_update(p, round_start, inflight_bytes, now_ms);
}

static double cwnd_gain(const struct pace *p)
{
    return p->phase == PACE_PROBE ? PACE_PROBE_CWND_GAIN : PACE_STARTUP_CWND_GAIN;
}

size_t pace_cwnd(const struct pace *p)
{
    size_t floor = (size_t)PACE_MIN_CWND_SEGS * p->mss;
    if (p->bw <= 0)
        return (size_t)PACE_INIT_CWND_SEGS * p->mss;
    double c = cwnd_gain(p) * p->bw * rtt_eff(p);
    if (c > (double)SIZE_MAX / 2)
        return SIZE_MAX / 2;
    return (size_t)c > floor ? (size_t)c : floor;
}

double pace_rate(const struct pace *p)
{
    if (p->bw <= 0)
        return 0;
    double gain = p->phase == PACE_STARTUP ? PACE_STARTUP_GAIN
                  : p->phase == PACE_DRAIN ? PACE_DRAIN_GAIN
                                           : probe_gain[p->cycle];
    /* bw is a max over noisy samples (ACKs come in batches), so it tends to run high: when
     * the RTT says a queue is standing, pace below it until the queue drains. */
    if (p->phase == PACE_PROBE && queue_building(p))
        gain = PACE_QUEUE_GAIN;
    double rate = gain * p->bw;
    double floor = (double)PACE_MIN_CWND_SEGS * p->mss / rtt_eff(p);
    return rate > floor ? rate : floor;
}

bool pace_ready(struct pace *p, uint64_t now_ms)
{
    double rate = pace_rate(p);
    if (rate <= 0)
        return true;
    if (now_ms > p->tokens_ms) {
        double cap = rate * PACE_BURST_MS;
        if (cap < PACE_BURST_SEGS * (double)p->mss)
            cap = PACE_BURST_SEGS * (double)p->mss;
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
