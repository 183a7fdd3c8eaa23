/* SPDX-License-Identifier: MIT */
/* Sender pacing for KCP: delivery-rate and min-RTT estimates, an in-flight cap and a pacer. */
#ifndef KTUN_PACE_H
#define KTUN_PACE_H

/*
 * kcp-go sends whatever its fixed window allows as soon as it may (with kcptun's nc=1 there is
 * no congestion control at all), so a window larger than the path's bandwidth-delay product
 * overflows the bottleneck queue and one smaller than it leaves the link idle. This module
 * replaces the fixed window by estimates, in the manner of BBR:
 *
 *   bw       the largest delivery rate sampled over the last PACE_BW_ROUNDS round trips
 *            (bytes acknowledged per ms; each sample spans at least one round trip: the bytes
 *            delivered between a segment's first transmission and its acknowledgement).
 *            As in BBR, a sample taken while the sender was application-limited (it had
 *            nothing more to send) never lowers the estimate, and rounds that gave no usable
 *            sample do not age it: a request/response flow keeps the rate it has measured.
 *   min_rtt  the smallest RTT sample of the last PACE_RTT_WINDOW_MS
 *   cwnd     cwnd_gain * bw * (min_rtt + ack delay): the in-flight cap, in bytes
 *   rate     pacing_gain * bw: a token bucket spaces transmissions at this rate
 *
 * Phases: STARTUP (pacing gain 2, cwnd gain 1.5, the cap also growing by every byte delivered
 * while it limits the flow, up to 2 bw x min_rtt, and already before the first rate sample;
 * until bw stops growing by 25% for three rounds that neither the sender's data nor the
 * peer's window held back, or, in such a round, the RTT shows a queue), DRAIN (pacing
 * gain 0.4 until in-flight fits one BDP),
 * PROBE (pacing gains cycling 1.25, 0.75, 1 x 6 per min_rtt; cwnd gain 2; as in BBR the
 * 0.75 phase ends early once in-flight fits one BDP, so an application-limited flow is not
 * held below its own rate). Unlike BBR,
 * PROBE paces at 0.85 bw whenever the recent RTT exceeds min_rtt + ACK delay + min_rtt / 4:
 * bw is a max over samples made noisy by batched ACKs and tends to run a few percent high.
 *
 * Everything is driven by the caller's millisecond clock: no clock reads, no allocation. The
 * struct is embedded by its user (the KCP engine) and needs no cleanup.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACE_BW_ROUNDS 10          /* bandwidth max-filter length, round trips */
#define PACE_RTT_WINDOW_MS 10000   /* min_rtt expiry */
#define PACE_MIN_CWND_SEGS 16      /* in-flight cap never below this many segments */
#define PACE_BURST_MS 4            /* token bucket depth, ms of the pacing rate */
#define PACE_BURST_SEGS 8          /* ... but at least this many segments: at low rates an
                                    * interactive flow's burst (a retransmission and the
                                    * messages queued behind it) leaves at once */
#define PACE_BATCH_MS 2            /* a rate-limited sender wakes for this much budget */

enum pace_phase { PACE_STARTUP, PACE_DRAIN, PACE_PROBE };

/* Delivery state a segment carries from its first transmission (filled by pace_on_send). */
struct pace_mark {
    uint64_t delivered;    /* bytes delivered when it was sent */
    uint64_t delivered_ms; /* time of the latest delivery when it was sent */
    uint64_t sent_ms;      /* when it was sent */
    uint64_t first_sent_ms; /* send time of the latest delivered segment when it was sent */
    bool app_limited;      /* sent while the sender had nothing more to send */
    bool wnd_limited;      /* sent while the peer's window held back data to send */
};

struct pace {
    enum pace_phase phase;
    uint32_t mss;                     /* bytes per full segment */
    uint32_t ack_delay_ms;            /* the peer's ACK delay allowance (its flush interval) */
    uint64_t delivered;               /* bytes acknowledged so far */
    uint64_t delivered_ms;            /* time of the last acknowledgement */
    uint64_t first_sent_ms;           /* send time of the last segment acknowledged */
    uint64_t round_end;               /* a segment sent at this delivered count ends the round */
    uint64_t rounds;                  /* round trips counted */
    double bw_round[PACE_BW_ROUNDS];  /* per-round max samples (bytes/ms), newest at bw_idx */
    uint32_t bw_idx;                  /* slot of the newest round that gave a sample */
    uint64_t bw_slot_round;           /* that round's number */
    double bw;                        /* max of bw_round */
    double full_bw;                   /* STARTUP: bw at the last 25% growth */
    uint32_t full_cnt;                /* rounds without that growth */
    uint32_t min_rtt;                 /* ms, UINT32_MAX until sampled */
    uint64_t min_rtt_ms;              /* when min_rtt was taken */
    uint32_t rtt_recent;              /* EWMA (1/4) of the RTT samples, ms; 0 until sampled */
    uint32_t round_rtt_min;           /* STARTUP: smallest RTT sample of this round (ms) ... */
    uint32_t round_rtt_n;             /* ... and how many samples it has */
    uint32_t last_round_rtt_min;      /* the previous round's (UINT32_MAX: none) */
    uint32_t cycle;                   /* PROBE gain index */
    uint64_t cycle_ms;                /* start of the current gain phase */
    double tokens;                    /* bytes that may leave now (may be negative) */
    uint64_t tokens_ms;               /* last refill */
    size_t init_cwnd;                 /* in-flight cap before the first rate sample, bytes */
    size_t startup_cwnd;              /* STARTUP: largest in-flight cap so far, bytes */
    double startup_rate;              /* STARTUP: largest pacing rate so far, bytes/ms */
    bool app_limited;                 /* the last admission stopped for want of data */
    uint64_t wnd_limited_until;       /* delivered count until which the flow counts as held
                                       * back by the peer's window (0: not) */
    uint64_t app_limited_until;       /* delivered count that ends the application-limited
                                       * round (0: not application-limited) */
    double rate_cap;                  /* bytes/ms the rate never exceeds (--ratelimit); 0 none */
    double overhead;                  /* bytes sent per data byte beyond it (FEC parity) */
};

/* Starts estimation for segments of |mss| bytes whose peer delays ACKs up to |ack_delay_ms|.
 * |p| is zeroed memory or a struct pace initialised before (its rate cap and overhead are
 * kept). */
void pace_init(struct pace *p, uint32_t mss, uint32_t ack_delay_ms, uint64_t now_ms);

/* Sets the in-flight cap used before the first rate sample: |bytes| (the sender's configured
 * window), but at most an initial window of 64 segments and at least PACE_MIN_CWND_SEGS: a
 * configured window is a limit, not a measure of the path, and one many times the path's
 * BDP would flood it (the first pacing rate is this cap over the RTT).
 * In STARTUP neither the cap nor the pacing rate ever falls below what it has been (BBR):
 * the first round's rate samples cover less than a round trip of data and run low. */
void pace_set_init_cwnd(struct pace *p, size_t bytes);

/* An RTT sample in ms. */
void pace_on_rtt(struct pace *p, uint32_t rtt_ms, uint64_t now_ms);

/* A segment is transmitted (first time or again): records the delivery state in |m|. */
void pace_on_send(const struct pace *p, struct pace_mark *m, uint64_t now_ms);

/* The sender is about to transmit with nothing in flight: the next rate samples start from
 * |now_ms| instead of from the last delivery before the idle period (BBR). */
void pace_on_idle_restart(struct pace *p, uint64_t now_ms);

/* The sender's last admission ended with nothing more to send (|app_limited|) or with data
 * waiting; |inflight_bytes| are outstanding. Until what is in flight now has been delivered,
 * the flow counts as application-limited: it builds no queue, so no pacing gain below 1
 * (drain phases) holds it back. */
void pace_set_app_limited(struct pace *p, bool app_limited, size_t inflight_bytes);

/* The sender's last admission ended with data waiting that the peer's window held back
 * (|limited|); |inflight_bytes| are outstanding. Until they have been delivered, samples never
 * lower the estimate, and STARTUP does not take them for a full pipe: the peer's window, not
 * the path, stopped the growth. */
void pace_set_wnd_limited(struct pace *p, bool limited, size_t inflight_bytes);

/* Spends |len| bytes of pacing budget. */
void pace_charge(struct pace *p, size_t len);

/* True if the token bucket (as of the last pace_ready) holds |len| bytes of budget beyond
 * what has been spent, or there is no pacing rate yet: sending them keeps the flow within the
 * pacing rate (the measured delivery rate's, or the rate cap). */
bool pace_spare(const struct pace *p, size_t len);

/* A segment of |len| bytes last sent with mark |m| was acknowledged; |inflight_bytes| is what
 * is still unacknowledged afterwards; |m| NULL: no rate sample (a retransmitted segment). */
void pace_on_ack(struct pace *p, const struct pace_mark *m, size_t len, size_t inflight_bytes,
                 uint64_t now_ms);

/* In-flight cap in bytes (at least PACE_MIN_CWND_SEGS segments). Before the first rate
 * sample it is the initial window plus STARTUP's growth by the bytes delivered (a path whose
 * round trip exceeds KCP's initial timeout resends the whole first flight, and Karn's rule
 * leaves that round without samples); from the RTT sample on, pace_rate is then the first
 * rate (the initial window over the RTT at STARTUP's gain), so that growth is paced. */
size_t pace_cwnd(const struct pace *p);

/* Refills the token bucket up to |now_ms|; true if a new segment may leave now. */
bool pace_ready(struct pace *p, uint64_t now_ms);

/* Earliest time pace_ready can be true (<= now_ms if it is already). */
uint64_t pace_next_ms(const struct pace *p, uint64_t now_ms);

/* True when the recent RTT shows a standing queue at the bottleneck (more than a quarter of
 * min_rtt, at least PACE_QUEUE_MIN_MS, above min_rtt plus the peer's ACK delay). */
bool pace_queue_building(const struct pace *p);

/* The sender sends |ratio| bytes per data byte beyond the data (FEC parity: the parity shards
 * it sends per data shard; 0 without), which spend pacing budget, count in flight and count
 * as delivered like the data. The initial window and the token bucket's depth in segments
 * then count data segments, the bytes they allow include that overhead: a window's or a
 * burst's data leaves with its parity. The in-flight floor (PACE_MIN_CWND_SEGS) counts what
 * the path carries, parity included. Kept by pace_init. */
void pace_set_overhead(struct pace *p, double ratio);

/* Caps the pacing rate at |bytes_per_ms| (0: no cap), also before the first estimate: kcptun's
 * --ratelimit. Kept by pace_init. */
void pace_set_rate_cap(struct pace *p, double bytes_per_ms);

/* Current pacing rate in bytes per ms (0: not yet estimated and no cap, unpaced). */
double pace_rate(const struct pace *p);

#endif
