/* SPDX-License-Identifier: MIT */
/* Pure KCP ARQ engine following kcp-go 5.6.1 (see kcp.h). */
#include "common/kcp.h"

#include "common/err.h"
#include "common/lossest.h"
#include "common/pace.h"
#include "common/wire.h"

#include <stdlib.h>
#include <string.h>

/*
 * Data structures (chosen so that large windows stay cheap):
 *  - snd_queue, rcv_queue: FIFO lists of segments.
 *  - snd_ring: in-flight segments indexed by sn & snd_mask, covering [snd_una, snd_nxt).
 *    A NULL slot inside that range is a segment already selectively acknowledged (kcp-go
 *    keeps such segments, marked, until una passes them). ACK lookup is O(1).
 *  - inflight: the in-flight segments not yet acknowledged, in sn order. The fast-ack rule
 *    ("every unacked segment below the acked sn sent no later than it gets fastack++") walks
 *    only the head of this list, i.e. the holes, never acknowledged segments.
 *  - rcv_ring: out-of-order received segments indexed by sn & rcv_mask, covering
 *    [rcv_nxt, rcv_nxt + rcv_wnd); at most rcv_wnd of them.
 * kcp-go's flush visits the whole send buffer every time. Ours visits only the holes (where
 * fastack can be non-zero) and the newly sent segments, and does the full walk only when the
 * earliest retransmission time (rto_deadline) has come; the result is the same set of
 * transmissions in the same order.
 */

#define KCP_RTO_NODELAY 30
#define KCP_RTO_MIN 100
#define KCP_RTO_DEFAULT 200
#define KCP_RTO_MAX 60000
#define KCP_THRESH_INIT 2
#define KCP_THRESH_MIN 2
#define KCP_PROBE_INIT 7000
#define KCP_PROBE_LIMIT 120000
#define KCP_ASK_SEND 1u /* WASK pending */
#define KCP_ASK_TELL 2u /* WINS pending */
#define KCP_POOL_MAX 256 /* free segments kept per session (about 360 KB at the default MTU) */
#define KCP_ACK_LIMIT 4096 /* pending ACKs that force an ACK-only flush */
#define KCP_ACK_MIN_BURST 32 /* pacing: never flush ACKs early for fewer than this */
#define KCP_MAX_FRAGMENTS 255
/* Pacing: the residual loss probability a segment sent while application-limited may keep
 * after its copies. A message whose segment is lost waits a round trip or more, so this is
 * set by the latency percentile to protect, not by a link: the 99th percentile stays clear of
 * retransmissions while fewer than 1 in 1000 segments (10x margin) needs one. */
#define KCP_RESIDUAL_LOSS 0.001
#define KCP_RTT_MAX (1 << 24) /* larger RTT samples are clamped (keeps int32 math defined) */
#define KCP_NEVER UINT64_MAX

struct kcp_seg {
    struct kcp_seg *prev; /* list links: snd_queue, inflight or rcv_queue */
    struct kcp_seg *next;
    uint64_t resend_ms;   /* retransmission time */
    uint32_t sn;
    uint32_t ts;          /* wire timestamp of the last transmission (or the peer's, received) */
    uint32_t rto;         /* this segment's current timeout, ms */
    uint32_t xmit;        /* transmissions so far */
    uint32_t fastack;     /* later ACKs seen since the last transmission */
    uint32_t len;         /* payload bytes */
    uint32_t cap;         /* payload capacity */
    struct pace_mark mark; /* pacing: delivery state at the last transmission */
    uint32_t group;       /* FEC hold: the caller's FEC group of the last transmission */
    uint8_t frg;
    uint8_t copies;       /* pacing: redundant copies sent with the first transmission */
    uint16_t parity_share; /* pacing: bytes of its group's FEC parity counted with its ACK */
    uint64_t first_deadline; /* pacing: retransmission time set by the first transmission */
    uint32_t group_first; /* FEC group of the first transmission */
    uint8_t parity;       /* parity shards that group got (LOSSEST_PARITY_UNKNOWN: not closed) */
    uint64_t group_closed_ms; /* when that group closed (its parity left); KCP_NEVER: open */
    uint8_t data[];
};

struct kcp_list {
    struct kcp_seg *head;
    struct kcp_seg *tail;
    size_t count;
};

struct kcp_ack {
    uint32_t sn;
    uint32_t ts;
};

struct kcp {
    uint32_t conv;
    size_t mtu;                /* largest packet we build */
    size_t mss;                /* mtu - 24 */
    kcp_output_fn *output;
    void *user;
    bool stream;
    bool ack_nodelay;
    bool dead;                 /* some segment reached KCP_DEAD_LINK transmissions */
    uint32_t nodelay;
    uint32_t interval;         /* flush interval, ms */
    uint32_t resend;           /* fast retransmit threshold, 0 = off */
    bool nocwnd;               /* congestion control disabled */
    const struct kcp_send_ops *send; /* sending policy (kcp_set_pacing) */
    const struct kcp_hold_ops *hold; /* retransmission hold (kcp_set_fec_hold); NULL: none */
    struct pace pace;          /* the paced policy's estimates */
    /* paced policy: loss evidence (copies and FEC parity of each acknowledged segment,
     * whether it needed a retransmission) and the estimates drawn from it */
    struct lossest loss;
    uint32_t fec_last_parity;  /* parity shards kcp_fec_parity chose last */
    uint32_t fec_ds;           /* data shards per FEC group (kcp_set_fec_shards; 0: no FEC) */
    uint32_t reo_wnd;          /* measured reordering window, ms (paced_lost_at) */
    bool reo_late;             /* some segment sent once was acknowledged after a later one */
    uint64_t lost_deadline;    /* a fast-acked segment counts as lost by time then */
    const struct kcp_seg *xmit_seg; /* being put into the packet buffer: in no group yet */
    bool fec_groups;           /* the output path numbers FEC groups (kcp_set_fec_group) */
    uint64_t clock_ms;         /* time of the latest flush or input */
    uint32_t rtt_last;         /* latest RTT sample, ms */
    size_t copy_bytes;         /* payload bytes of the redundant copies still in flight */
    size_t parity_bytes;       /* FEC parity shares of the segments in flight */
    size_t inflight_bytes;     /* payload bytes of the inflight list */

    uint32_t snd_una;          /* oldest sn not known to be received by the peer */
    uint32_t snd_nxt;          /* next sn to assign */
    uint32_t rcv_nxt;          /* next sn expected in order */
    uint32_t snd_wnd;
    uint32_t rcv_wnd;
    uint32_t rcv_wnd_max;      /* receive window growth limit (kcp_set_rcv_growth); 0: fixed */
    kcp_rcv_grant_fn *rcv_grant; /* the shared budget growth comes from (kcp_set_rcv_grant) */
    void *rcv_grant_user;
    uint32_t rnd_edge;         /* receive round (rcv_grow): the window edge advertised at */
    uint64_t rnd_start;        /*   rnd_start, ms; 0: no round under way */
    uint32_t rnd_min;          /* fastest receive round seen, ms (0: none yet) */
    uint32_t rnd_base;         /*   the furthest data received (rcv_hi) when it started */
    uint32_t rcv_hi;           /* one past the furthest sn received */
    uint64_t rnd_rate;         /* fastest round's delivery at this window, segments/s */
    uint64_t rnd_rate_prev;    /*   and at the window before the last doubling (0: none) */
    uint32_t rcv_adv;          /* furthest window edge (una + wnd) sent so far */
    uint32_t rmt_wnd;          /* peer's free receive slots, from its last regular segment */
    uint32_t cwnd;             /* congestion window, segments */
    uint32_t ssthresh;
    uint32_t incr;             /* congestion avoidance byte counter */

    int32_t rx_srtt;
    int32_t rx_rttvar;
    uint32_t rx_rto;
    uint32_t rx_minrto;

    uint32_t probe;            /* KCP_ASK_* flags */
    uint32_t probe_wait;       /* current zero-window probe wait, ms; 0 = not probing */
    uint64_t probe_ms;         /* when the next WASK goes out */
    uint64_t next_flush_ms;    /* next interval tick */
    uint64_t rto_deadline;     /* no in-flight segment times out before this */
    uint32_t fast_hi;          /* highest sn ever acked: fastack > 0 only below it */
    uint32_t fec_hold_min;     /* FEC hold on while more segments than this are in flight */
    uint32_t fec_group;        /* FEC group the packet under construction joins */
    uint32_t fec_acked_group;  /* latest FEC group of an acknowledged segment */
    uint32_t fec_mark_group;   /* fec_acked_group at fec_mark_ms */
    uint32_t fec_ready_group;  /* fec_acked_group at least an interval ago: the hold's gate */
    uint64_t fec_mark_ms;
    bool fast_pending;         /* some in-flight segment has fastack > 0 */
    bool rtx_waiting;          /* a retransmission due at the last flush waits for the send
                                * policy (resend_at); no new data goes before it */

    struct kcp_list snd_queue;
    struct kcp_list inflight;
    struct kcp_list rcv_queue;
    size_t rcv_queue_bytes;    /* payload bytes in rcv_queue, including consumed head part */
    size_t rcv_head_off;       /* bytes of rcv_queue.head already returned (stream mode) */
    struct kcp_seg **snd_ring;
    uint32_t snd_mask;
    struct kcp_seg **rcv_ring;
    uint32_t rcv_mask;
    size_t rcv_buf_count;

    struct kcp_ack *acks;
    size_t ack_len;
    size_t ack_cap;
    bool ack_repeat;           /* repeat the previous flush's ACKs above rcv_nxt once */
    struct kcp_ack *rep;       /* those ACKs */
    size_t rep_len;
    size_t rep_cap;

    struct kcp_seg *pool;      /* free segments of capacity pool_seg_cap, linked by next */
    size_t pool_len;
    uint32_t pool_seg_cap;

    size_t buf_len;            /* bytes of the packet being built */
    struct kcp_stats stats;
    uint8_t buf[KCP_MTU_MAX];
};

/* Per-flush retransmission bookkeeping. */
struct flush_ctx {
    uint64_t now_ms;
    uint32_t resend;      /* fast retransmit threshold (UINT32_MAX = off) */
    uint32_t new_count;   /* segments admitted by this flush */
    uint32_t rto_slack;   /* the send policy's extra wait for first transmissions */
    uint64_t change;      /* fast + early retransmits */
    uint64_t lost;
    uint64_t deadline;    /* earliest resend_ms seen */
    bool fast_left;       /* a visited segment still has fastack > 0 */
    uint64_t lost_at;     /* earliest time a fast-acked segment left waiting counts as lost */
    bool rtx_deferred;    /* a retransmission due now waits for the send policy */
    bool hold;            /* the retransmission hold applies to this flush */
};

/*
 * Sending policies. The ARQ core (queues, rings, ACK and una processing, kcp-go's four
 * transmission cases, the RTO estimator, kcp-go's congestion window bookkeeping) is shared;
 * what differs between kcp-go's sending and ktun's lives in two tables of hooks, in the
 * manner of ikcp's IKCPOPS and quicly's quicly_cc_type_t, so that a policy can be added or
 * swapped without touching the core or the other policies:
 *  - the send policy (kcp_set_pacing): how much new data may be in flight and when it may
 *    leave, how long a first transmission waits before it times out, what the policy learns
 *    from transmissions, ACKs and RTT samples, and what it adds after a flush's data.
 *    send_fixed is kcp-go's fixed window; send_paced is ktun's pacer (common/pace.h);
 *  - the retransmission hold (kcp_set_fec_hold): whether a fast or early retransmission
 *    waits. No table (NULL) is kcp-go's; hold_fec waits for the segment's FEC group.
 * A hook a policy leaves NULL does nothing or gives kcp-go's answer (send_room and span are
 * always set); each is called from the place of the core named in its comment.
 */
struct kcp_send_ops {
    /* kcp_flush with only ACKs to send leaves them for the interval tick or for the next
     * data packet; ack_push flushes them early only in bursts. */
    bool batch_acks;
    /* kcp_set_pacing: the policy takes over the engine at |now_ms|. */
    void (*start)(struct kcp *k, uint64_t now_ms);
    /* kcp_send_room: segments the writer may still queue. */
    size_t (*send_room)(const struct kcp *k);
    /* admit_new: sequence span that new data may occupy from snd_una. */
    uint32_t (*span)(const struct kcp *k);
    /* admit_new: whether one more new segment may leave now / it left / admission ended. */
    bool (*may_admit)(struct kcp *k, uint64_t now_ms);
    void (*admitted)(struct kcp *k, const struct kcp_seg *s);
    void (*admit_done)(struct kcp *k);
    /* flush, once admission is done: extra wait before this flush's first transmissions
     * time out, ms. */
    uint32_t (*rto_slack)(const struct kcp *k);
    /* flush_segment: whether an early retransmission may go while nothing new was sent. */
    bool (*early_ok)(const struct kcp *k);
    /* flush_segment: when |s|, fast-acked by later segments, counts as lost (its fast or
     * early retransmission may go then); the engine wakes up for it. */
    uint64_t (*lost_at)(const struct kcp *k, const struct kcp_seg *s, uint64_t now_ms);
    /* flush_segment: when |s|, whose retransmission timer has expired, times out by the
     * RTT the path shows now (|slack|: this flush's rto_slack); later than |now_ms|: the
     * timer is re-armed for then. NULL: at its timer. */
    uint64_t (*timeout_at)(const struct kcp *k, const struct kcp_seg *s, uint32_t slack,
                           uint64_t now_ms);
    /* flush_segment: when a retransmission due at |now_ms| may leave (<= now_ms: at once);
     * until then it waits and no new data is admitted. */
    uint64_t (*resend_at)(struct kcp *k, uint64_t now_ms);
    /* kcp_input: an ACK revealed a hole; retransmit at once instead of at the next tick. */
    bool recover_on_ack;
    /* flush_segment: |s| is about to be transmitted (xmit not yet counted). */
    void (*on_xmit)(struct kcp *k, struct kcp_seg *s, uint64_t now_ms);
    /* flush: after the flush's data packets; |first_new| the first segment admitted. */
    void (*after_data)(struct kcp *k, struct kcp_seg_hdr *h, struct kcp_seg *first_new);
    /* kcp_next_deadline, kcp_tick, kcp_flush: when queued data may leave by the policy's
     * own clock (KCP_NEVER: not by it). */
    uint64_t (*next_send_ms)(const struct kcp *k, uint64_t now_ms);
    /* kcp_next_deadline: queued data waits for the next interval tick. */
    bool (*wants_tick)(const struct kcp *k);
    /* inflight_release: |s| was acknowledged and has left the inflight list. */
    void (*on_release)(struct kcp *k, const struct kcp_seg *s, uint64_t now_ms);
    /* kcp_input: an RTT sample from a regular packet. */
    void (*on_rtt)(struct kcp *k, uint32_t rtt_ms, uint64_t now_ms);
};

struct kcp_hold_ops {
    /* flush: before anything is sent. */
    void (*flush_start)(struct kcp *k, uint64_t now_ms);
    /* flush: whether the hold applies to this flush's retransmissions. */
    bool (*active)(const struct kcp *k);
    /* flush_segment (only while active): the fast or early retransmission of |s| waits. */
    bool (*holds)(const struct kcp *k, const struct kcp_seg *s);
    /* flush_segment: |s| was put into the packet under construction. */
    void (*on_sent)(struct kcp *k, struct kcp_seg *s);
    /* parse_ack: an ACK with timestamp |ts| for |s|, before its release. */
    void (*on_ack)(struct kcp *k, const struct kcp_seg *s, uint32_t ts);
    /* inflight_release: |s| was acknowledged. */
    void (*on_release)(struct kcp *k, const struct kcp_seg *s);
};

static const struct kcp_send_ops send_fixed, send_paced;
static const struct kcp_hold_ops hold_fec;

static int32_t seq_diff(uint32_t later, uint32_t earlier)
{
    return (int32_t)(later - earlier);
}

/* ---- segments and lists ---- */

static struct kcp_seg *seg_new(struct kcp *k, size_t len)
{
    struct kcp_seg *s;
    if (len <= k->pool_seg_cap && k->pool) {
        s = k->pool;
        k->pool = s->next;
        k->pool_len--;
    } else {
        uint32_t cap = len <= k->pool_seg_cap ? k->pool_seg_cap : (uint32_t)len;
        s = malloc(sizeof(*s) + cap);
        if (!s)
            return NULL;
        s->cap = cap;
    }
    uint32_t cap = s->cap;
    memset(s, 0, sizeof(*s));
    s->cap = cap;
    s->group_closed_ms = KCP_NEVER;
    s->len = (uint32_t)len;
    return s;
}

static void seg_free(struct kcp *k, struct kcp_seg *s)
{
    if (s->cap == k->pool_seg_cap && k->pool_len < KCP_POOL_MAX) {
        s->next = k->pool;
        k->pool = s;
        k->pool_len++;
        return;
    }
    free(s);
}

static void list_push(struct kcp_list *l, struct kcp_seg *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->count++;
}

static void list_unlink(struct kcp_list *l, struct kcp_seg *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->count--;
}

static struct kcp_seg *list_pop(struct kcp_list *l)
{
    struct kcp_seg *s = l->head;
    if (s)
        list_unlink(l, s);
    return s;
}

static void list_free(struct kcp *k, struct kcp_list *l)
{
    struct kcp_seg *s;
    while ((s = list_pop(l)))
        seg_free(k, s);
}

static void pool_drain(struct kcp *k)
{
    while (k->pool) {
        struct kcp_seg *s = k->pool;
        k->pool = s->next;
        free(s);
    }
    k->pool_len = 0;
}

void kcp_trim(struct kcp *k)
{
    pool_drain(k);
}

/* ---- rings ---- */

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 16;
    while (c < n && c < (1u << 30))
        c <<= 1;
    return c;
}

/* Makes the send ring hold |span| consecutive sequence numbers from snd_una. */
static int snd_ring_reserve(struct kcp *k, uint32_t span)
{
    if (k->snd_ring && span <= k->snd_mask + 1)
        return 0;
    uint32_t cap = pow2_at_least(span);
    struct kcp_seg **r = calloc(cap, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    if (k->snd_ring) {
        for (uint32_t sn = k->snd_una; sn != k->snd_nxt; sn++)
            r[sn & (cap - 1)] = k->snd_ring[sn & k->snd_mask];
        free(k->snd_ring);
    }
    k->snd_ring = r;
    k->snd_mask = cap - 1;
    return 0;
}

/* Makes the receive ring hold rcv_wnd sequence numbers from rcv_nxt; never shrinks, so
 * segments stored under a larger old window keep unique slots. */
static int rcv_ring_reserve(struct kcp *k, uint32_t wnd)
{
    if (k->rcv_ring && wnd <= k->rcv_mask + 1)
        return 0;
    uint32_t cap = pow2_at_least(wnd);
    struct kcp_seg **r = calloc(cap, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    if (k->rcv_ring) {
        uint32_t old = k->rcv_mask + 1;
        for (uint32_t i = 0; i < old; i++) {
            struct kcp_seg *s = k->rcv_ring[(k->rcv_nxt + i) & k->rcv_mask];
            if (s)
                r[s->sn & (cap - 1)] = s;
        }
        free(k->rcv_ring);
    }
    k->rcv_ring = r;
    k->rcv_mask = cap - 1;
    return 0;
}

/* ---- creation and settings ---- */

struct kcp *kcp_new(uint32_t conv, kcp_output_fn *output, void *user)
{
    struct kcp *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->conv = conv;
    k->output = output;
    k->user = user;
    k->mtu = KCP_MTU_DEFAULT;
    k->mss = k->mtu - KCP_OVERHEAD;
    k->pool_seg_cap = (uint32_t)k->mss;
    k->snd_wnd = KCP_WND_DEFAULT;
    k->rcv_wnd = KCP_WND_DEFAULT;
    k->rmt_wnd = KCP_WND_DEFAULT;
    k->rx_rto = KCP_RTO_DEFAULT;
    k->rx_minrto = KCP_RTO_MIN;
    k->interval = KCP_INTERVAL_DEFAULT;
    k->ssthresh = KCP_THRESH_INIT;
    k->rto_deadline = KCP_NEVER;
    k->send = &send_fixed;
    if (snd_ring_reserve(k, KCP_WND_DEFAULT) < 0 || rcv_ring_reserve(k, KCP_WND_DEFAULT) < 0) {
        kcp_free(k);
        return NULL;
    }
    return k;
}

void kcp_free(struct kcp *k)
{
    if (!k)
        return;
    list_free(k, &k->snd_queue);
    list_free(k, &k->inflight);
    list_free(k, &k->rcv_queue);
    if (k->rcv_ring) {
        for (uint32_t i = 0; i <= k->rcv_mask; i++)
            if (k->rcv_ring[i])
                seg_free(k, k->rcv_ring[i]);
    }
    pool_drain(k);
    free(k->rcv_ring);
    free(k->snd_ring);
    free(k->acks);
    free(k->rep);
    free(k);
}

void kcp_set_nodelay(struct kcp *k, int nodelay, int interval_ms, int resend, int nc)
{
    if (nodelay >= 0) {
        k->nodelay = (uint32_t)nodelay;
        k->rx_minrto = nodelay ? KCP_RTO_NODELAY : KCP_RTO_MIN;
    }
    if (interval_ms >= 0) {
        if (interval_ms > 5000)
            interval_ms = 5000;
        else if (interval_ms < 10)
            interval_ms = 10;
        k->interval = (uint32_t)interval_ms;
        k->pace.ack_delay_ms = k->interval;
    }
    if (resend >= 0)
        k->resend = (uint32_t)resend;
    if (nc >= 0)
        k->nocwnd = nc != 0;
}

int kcp_set_window(struct kcp *k, int sndwnd, int rcvwnd)
{
    if (sndwnd > 0) {
        k->snd_wnd = (uint32_t)sndwnd;
        pace_set_init_cwnd(&k->pace, (size_t)k->snd_wnd * k->mss);
    }
    if (rcvwnd > 0) {
        if (rcv_ring_reserve(k, (uint32_t)rcvwnd) < 0)
            return ERR_NOMEM;
        k->rcv_wnd = (uint32_t)rcvwnd;
    }
    return 0;
}

int kcp_set_mtu(struct kcp *k, size_t mtu)
{
    if (mtu < KCP_MTU_MIN || mtu > KCP_MTU_MAX)
        return ERR_INVAL;
    k->mtu = mtu;
    k->mss = mtu - KCP_OVERHEAD;
    k->pace.mss = (uint32_t)k->mss;
    pace_set_init_cwnd(&k->pace, (size_t)k->snd_wnd * k->mss);
    pool_drain(k);
    k->pool_seg_cap = (uint32_t)k->mss;
    return 0;
}

void kcp_set_pacing(struct kcp *k, bool on, uint64_t now_ms)
{
    const struct kcp_send_ops *ops = on ? &send_paced : &send_fixed;
    if (ops == k->send)
        return;
    k->send = ops;
    if (ops->start)
        ops->start(k, now_ms);
}

void kcp_set_rate_limit(struct kcp *k, uint64_t bytes_per_s)
{
    pace_set_rate_cap(&k->pace, (double)bytes_per_s / 1000.0);
}

void kcp_set_rcv_growth(struct kcp *k, uint32_t max_wnd)
{
    k->rcv_wnd_max = max_wnd > 0xffff ? 0xffff : max_wnd;
}

void kcp_set_rcv_grant(struct kcp *k, kcp_rcv_grant_fn *fn, void *user)
{
    k->rcv_grant = fn;
    k->rcv_grant_user = user;
}

void kcp_set_fec_hold(struct kcp *k, uint32_t hold_min)
{
    k->fec_hold_min = hold_min;
    k->hold = hold_min ? &hold_fec : NULL;
}

void kcp_set_ack_repeat(struct kcp *k, bool on)
{
    k->ack_repeat = on;
    if (!on)
        k->rep_len = 0;
}

void kcp_set_fec_group(struct kcp *k, uint32_t group)
{
    /* the groups before |group| are complete: the last one's parity leaves now. Its segments
     * are at the tail of the in-flight list (first transmissions go in sequence order), after
     * those of groups closed before. */
    for (struct kcp_seg *s = k->inflight.tail; s; s = s->prev) {
        if (s->xmit == 0 || seq_diff(s->group_first, group) >= 0)
            continue;
        if (s->group_closed_ms != KCP_NEVER)
            break;
        s->group_closed_ms = k->clock_ms;
    }
    k->fec_groups = true;
    k->fec_group = group;
}

bool kcp_pacing(const struct kcp *k)
{
    return k->send == &send_paced;
}

void kcp_set_stream(struct kcp *k, bool stream)
{
    k->stream = stream;
}

void kcp_set_ack_nodelay(struct kcp *k, bool on)
{
    k->ack_nodelay = on;
}

/* ---- sending side: queue ---- */

/* Undoes a failed kcp_send: frees the segments it added after |old_tail| and restores the
 * length of |old_tail|, so a failed call queues nothing. */
static void send_rollback(struct kcp *k, struct kcp_seg *old_tail, uint32_t old_len)
{
    while (k->snd_queue.tail && k->snd_queue.tail != old_tail) {
        struct kcp_seg *s = k->snd_queue.tail;
        list_unlink(&k->snd_queue, s);
        seg_free(k, s);
    }
    if (old_tail)
        old_tail->len = old_len;
}

int kcp_send(struct kcp *k, const uint8_t *data, size_t len)
{
    if (len == 0)
        return ERR_INVAL;
    struct kcp_seg *old_tail = k->snd_queue.tail;
    uint32_t old_len = old_tail ? old_tail->len : 0;
    if (k->stream && old_tail) {
        struct kcp_seg *t = old_tail;
        size_t limit = t->cap < k->mss ? t->cap : k->mss;
        if (t->len < limit) {
            size_t n = limit - t->len < len ? limit - t->len : len;
            memcpy(t->data + t->len, data, n);
            t->len += (uint32_t)n;
            data += n;
            len -= n;
            if (len == 0)
                return 0;
        }
    }
    size_t count = (len + k->mss - 1) / k->mss;
    if (!k->stream && count > KCP_MAX_FRAGMENTS)
        return ERR_TOOBIG;
    for (size_t i = 0; i < count; i++) {
        size_t n = len > k->mss ? k->mss : len;
        struct kcp_seg *s = seg_new(k, n);
        if (!s) {
            send_rollback(k, old_tail, old_len);
            return ERR_NOMEM;
        }
        memcpy(s->data, data, n);
        s->frg = k->stream ? 0 : (uint8_t)(count - i - 1);
        list_push(&k->snd_queue, s);
        data += n;
        len -= n;
    }
    return 0;
}

size_t kcp_wait_snd(const struct kcp *k)
{
    return (size_t)(k->snd_nxt - k->snd_una) + k->snd_queue.count;
}

size_t kcp_send_room(const struct kcp *k)
{
    return k->send->send_room(k) * k->mss;
}

/* ---- packet building ---- */

uint8_t *kcp_seg_hdr_encode(uint8_t *p, const struct kcp_seg_hdr *h)
{
    p = put_u32le(p, h->conv);
    p = put_u8(p, h->cmd);
    p = put_u8(p, h->frg);
    p = put_u16le(p, h->wnd);
    p = put_u32le(p, h->ts);
    p = put_u32le(p, h->sn);
    p = put_u32le(p, h->una);
    return put_u32le(p, h->len);
}

int kcp_seg_hdr_decode(const uint8_t **p, const uint8_t *end, struct kcp_seg_hdr *h)
{
    if (end - *p < KCP_OVERHEAD)
        return ERR_PROTO;
    /* The length test above makes every field read below succeed. */
    get_u32le(p, end, &h->conv);
    get_u8(p, end, &h->cmd);
    get_u8(p, end, &h->frg);
    get_u16le(p, end, &h->wnd);
    get_u32le(p, end, &h->ts);
    get_u32le(p, end, &h->sn);
    get_u32le(p, end, &h->una);
    get_u32le(p, end, &h->len);
    return 0;
}

static void out_packet(struct kcp *k)
{
    if (!k->buf_len)
        return;
    k->stats.out_pkts++;
    k->output(k->user, k->buf, k->buf_len);
    k->buf_len = 0;
}

/* Appends one segment to the packet under construction, emitting the packet first if the
 * segment would not fit (kcp-go makeSpace). */
static void put_segment(struct kcp *k, const struct kcp_seg_hdr *h, const uint8_t *data)
{
    if (k->buf_len + KCP_OVERHEAD + h->len > k->mtu)
        out_packet(k);
    uint8_t *p = kcp_seg_hdr_encode(k->buf + k->buf_len, h);
    if (seq_diff(h->una + h->wnd, k->rcv_adv) > 0) {
        k->rcv_adv = h->una + h->wnd;
        /* a receive round (rcv_grow) starts when a new edge leaves, while the reader keeps
         * up (the edge is then most of the window), once data came (before, the peer may
         * assume a window as large) */
        if (!k->rnd_start && h->una != 0 && k->rcv_wnd < k->rcv_wnd_max &&
            k->rcv_queue.count < k->rcv_wnd / 4) {
            k->rnd_edge = k->rcv_adv;
            k->rnd_base = seq_diff(k->rcv_hi, h->una) > 0 ? k->rcv_hi : h->una;
            k->rnd_start = k->clock_ms ? k->clock_ms : 1;
        }
    }
    if (h->len)
        memcpy(p, data, h->len);
    k->buf_len += KCP_OVERHEAD + h->len;
    k->stats.out_segs++;
}

static uint16_t wnd_unused(const struct kcp *k)
{
    if (k->rcv_queue.count >= k->rcv_wnd)
        return 0;
    size_t free_slots = k->rcv_wnd - k->rcv_queue.count;
    return free_slots > 0xffff ? 0xffff : (uint16_t)free_slots;
}

static void put_ack(struct kcp *k, struct kcp_seg_hdr *h, const struct kcp_ack *a)
{
    h->sn = a->sn;
    h->ts = a->ts;
    put_segment(k, h, NULL);
}

/* ACK repeat (kcp_set_ack_repeat): the previous flush's ACKs that una does not cover yet go
 * out once more, ahead of the new ones (the peer takes its RTT sample from the last ACK of a
 * packet), so that one lost ACK packet does not make the peer resend what we hold. */
static void flush_acks(struct kcp *k, struct kcp_seg_hdr *h)
{
    h->cmd = KCP_CMD_ACK;
    if (!k->ack_len)
        return;
    for (size_t i = 0; i < k->rep_len; i++) {
        if (seq_diff(k->rep[i].sn, k->rcv_nxt) >= 0) {
            put_ack(k, h, &k->rep[i]);
            k->stats.ack_repeats++;
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < k->ack_len; i++) {
        bool open = seq_diff(k->acks[i].sn, k->rcv_nxt) >= 0;
        /* kcp-go drops ACKs that una already covers, except the last one. */
        if (open || i + 1 == k->ack_len)
            put_ack(k, h, &k->acks[i]);
        if (open && k->ack_repeat)
            k->acks[keep++] = k->acks[i];
    }
    /* this flush's open ACKs become the repeat set: swap the two arrays */
    struct kcp_ack *t = k->rep;
    size_t tcap = k->rep_cap;
    k->rep = k->acks;
    k->rep_cap = k->ack_cap;
    k->rep_len = keep;
    k->acks = t;
    k->ack_cap = tcap;
    k->ack_len = 0;
}

/* Zero-window probing: first WASK 7 s after the window closed, then every x1.5 up to 120 s. */
static void flush_probe(struct kcp *k, struct kcp_seg_hdr *h, uint64_t now_ms)
{
    if (k->rmt_wnd == 0) {
        if (k->probe_wait == 0) {
            k->probe_wait = KCP_PROBE_INIT;
            k->probe_ms = now_ms + k->probe_wait;
        } else if (now_ms >= k->probe_ms) {
            if (k->probe_wait < KCP_PROBE_INIT)
                k->probe_wait = KCP_PROBE_INIT;
            k->probe_wait += k->probe_wait / 2;
            if (k->probe_wait > KCP_PROBE_LIMIT)
                k->probe_wait = KCP_PROBE_LIMIT;
            k->probe_ms = now_ms + k->probe_wait;
            k->probe |= KCP_ASK_SEND;
        }
    } else {
        k->probe_wait = 0;
        k->probe_ms = 0;
    }
    h->len = 0;
    if (k->probe & KCP_ASK_SEND) {
        h->cmd = KCP_CMD_WASK;
        put_segment(k, h, NULL);
    }
    if (k->probe & KCP_ASK_TELL) {
        h->cmd = KCP_CMD_WINS;
        put_segment(k, h, NULL);
    }
    k->probe = 0;
}

/* Moves queued segments into flight while the window allows. Returns the first one moved, or
 * NULL; |*count| receives how many. */
static struct kcp_seg *admit_new(struct kcp *k, uint32_t cwnd, uint32_t *count,
                                 uint64_t now_ms)
{
    struct kcp_seg *first = NULL;
    *count = 0;
    while (k->snd_queue.head && seq_diff(k->snd_nxt, k->snd_una + cwnd) < 0) {
        if (k->send->may_admit && !k->send->may_admit(k, now_ms))
            break;
        if (snd_ring_reserve(k, k->snd_nxt - k->snd_una + 1) < 0)
            break;
        struct kcp_seg *s = list_pop(&k->snd_queue);
        if (k->send->admitted)
            k->send->admitted(k, s);
        k->inflight_bytes += s->len;
        s->sn = k->snd_nxt++;
        k->snd_ring[s->sn & k->snd_mask] = s;
        list_push(&k->inflight, s);
        if (!first)
            first = s;
        (*count)++;
    }
    if (k->send->admit_done)
        k->send->admit_done(k);
    return first;
}

/* The send policy's hooks with a kcp-go answer when it leaves them NULL. */
static bool lost_by_time(const struct kcp *k, const struct kcp_seg *s, struct flush_ctx *c)
{
    if (!k->send->lost_at)
        return true;
    uint64_t t = k->send->lost_at(k, s, c->now_ms);
    if (t <= c->now_ms)
        return true;
    if (t < c->lost_at)
        c->lost_at = t;
    return false;
}

static uint64_t next_send_ms(const struct kcp *k, uint64_t now_ms)
{
    return k->send->next_send_ms ? k->send->next_send_ms(k, now_ms) : KCP_NEVER;
}

/* Whether a retransmission due now may leave (the send policy's resend_at); if not, the flush
 * notes it and its next deadline comes when it may. */
static bool resend_now(struct kcp *k, struct flush_ctx *c)
{
    if (!k->send->resend_at)
        return true;
    uint64_t at = k->send->resend_at(k, c->now_ms);
    if (at <= c->now_ms)
        return true;
    c->rtx_deferred = true;
    if (at < c->deadline)
        c->deadline = at;
    return false;
}

/* Whether the send policy re-arms the expired timer of |s| (timeout_at) rather than let it
 * time out now. */
static bool timeout_rearmed(const struct kcp *k, struct kcp_seg *s, const struct flush_ctx *c)
{
    if (!k->send->timeout_at)
        return false;
    uint64_t t = k->send->timeout_at(k, s, c->rto_slack, c->now_ms);
    if (t <= c->now_ms)
        return false;
    s->resend_ms = t;
    return true;
}

/* Decides whether |s| goes out now (kcp-go's four cases, in its order) and transmits it. */
static void flush_segment(struct kcp *k, struct kcp_seg *s, struct kcp_seg_hdr *h,
                          struct flush_ctx *c)
{
    bool send = false;
    bool held = c->hold && s->fastack > 0 && k->hold->holds(k, s);
    enum { NONE, FAST, EARLY, TIMEOUT } why = NONE;
    if (s->xmit == 0) {
        send = true;
        s->rto = k->rx_rto;
        s->resend_ms = c->now_ms + s->rto + c->rto_slack;
    } else if (s->fastack >= c->resend && !held && lost_by_time(k, s, c)) {
        why = FAST;
    } else if (s->fastack > 0 && !held && c->new_count == 0 &&
               (!k->send->early_ok || k->send->early_ok(k)) && lost_by_time(k, s, c)) {
        why = EARLY;
    } else if (c->now_ms >= s->resend_ms && !timeout_rearmed(k, s, c)) {
        why = TIMEOUT;
    }
    /* a retransmission that the send policy holds back keeps its state for a later flush */
    if (why != NONE && resend_now(k, c)) {
        send = true;
        s->fastack = 0;
        if (why == TIMEOUT) {
            s->rto += k->nodelay ? k->rx_rto / 2 : k->rx_rto;
            c->lost++;
        } else {
            s->rto = k->rx_rto;
            c->change++;
            if (why == FAST)
                k->stats.fast_retrans_segs++;
            else
                k->stats.early_retrans_segs++;
        }
        s->resend_ms = c->now_ms + s->rto;
    }
    if (send) {
        if (k->send->on_xmit)
            k->send->on_xmit(k, s, c->now_ms);
        s->xmit++;
        s->ts = (uint32_t)c->now_ms;
        h->cmd = KCP_CMD_PUSH;
        h->frg = s->frg;
        h->ts = s->ts;
        h->sn = s->sn;
        h->len = s->len;
        k->xmit_seg = s; /* put_segment may emit the packet before it, closing a group */
        put_segment(k, h, s->data);
        k->xmit_seg = NULL;
        if (s->xmit == 1) { /* after put_segment: it may have emitted the last packet */
            s->group_first = k->fec_group;
            s->parity = LOSSEST_PARITY_UNKNOWN;
            s->group_closed_ms = KCP_NEVER;
            s->parity_share = 0;
        }
        if (k->hold)
            k->hold->on_sent(k, s);
        h->frg = 0;
        if (s->xmit >= KCP_DEAD_LINK)
            k->dead = true;
    }
    if (s->resend_ms < c->deadline && (send || why == NONE))
        c->deadline = s->resend_ms; /* (a held-back one's deadline came from resend_now) */
    if (s->fastack > 0)
        c->fast_left = true;
}

/* Walks the in-flight list: everything when a timeout may be due, otherwise only the holes
 * below fast_hi and the segments admitted by this flush. */
static void flush_data(struct kcp *k, struct kcp_seg_hdr *h, struct kcp_seg *first_new,
                       struct flush_ctx *c)
{
    bool full = c->now_ms >= k->rto_deadline;
    c->deadline = full ? KCP_NEVER : k->rto_deadline;
    struct kcp_seg *s = k->inflight.head;
    for (; s && s != first_new; s = s->next) {
        if (!full && seq_diff(s->sn, k->fast_hi) >= 0)
            break;
        flush_segment(k, s, h, c);
    }
    if (!full)
        s = first_new;
    for (; s; s = s->next)
        flush_segment(k, s, h, c);
    k->rto_deadline = k->inflight.head ? c->deadline : KCP_NEVER;
    k->fast_pending = c->fast_left;
    k->lost_deadline = c->lost_at;
    k->rtx_waiting = c->rtx_deferred;
}

/* Congestion window reaction to this flush's retransmissions (kcp-go: rate halving on fast
 * retransmit, back to one segment on timeout). Kept by every policy (kcp_cwnd reports it);
 * only send_fixed limits the span by it. */
static void cwnd_after_flush(struct kcp *k, const struct flush_ctx *c, uint32_t cwnd)
{
    if (k->nocwnd)
        return;
    if (c->change) {
        uint32_t inflight = k->snd_nxt - k->snd_una;
        k->ssthresh = inflight / 2;
        if (k->ssthresh < KCP_THRESH_MIN)
            k->ssthresh = KCP_THRESH_MIN;
        /* kcp-go adds its resend threshold, 0xffffffff when fast retransmit is off (the
         * sum wraps to ssthresh - 1); kept for identical behaviour. */
        k->cwnd = k->ssthresh + c->resend;
        k->incr = k->cwnd * (uint32_t)k->mss;
    }
    if (c->lost) {
        k->ssthresh = cwnd / 2;
        if (k->ssthresh < KCP_THRESH_MIN)
            k->ssthresh = KCP_THRESH_MIN;
        k->cwnd = 1;
        k->incr = (uint32_t)k->mss;
    }
    if (k->cwnd < 1) {
        k->cwnd = 1;
        k->incr = (uint32_t)k->mss;
    }
}

static void flush(struct kcp *k, bool ack_only, uint64_t now_ms)
{
    k->clock_ms = now_ms;
    struct kcp_seg_hdr h = {.conv = k->conv, .wnd = wnd_unused(k), .una = k->rcv_nxt};
    flush_acks(k, &h);
    if (ack_only) {
        out_packet(k);
        return;
    }
    flush_probe(k, &h, now_ms);

    if (k->hold)
        k->hold->flush_start(k, now_ms);
    uint32_t cwnd = k->send->span(k);
    struct flush_ctx c = {.now_ms = now_ms, .resend = k->resend ? k->resend : UINT32_MAX,
                          .lost_at = KCP_NEVER};
    struct kcp_seg *first_new = admit_new(k, cwnd, &c.new_count, now_ms);
    c.hold = k->hold && k->hold->active(k);
    c.rto_slack = k->send->rto_slack ? k->send->rto_slack(k) : 0;
    flush_data(k, &h, first_new, &c);
    out_packet(k);
    if (k->send->after_data)
        k->send->after_data(k, &h, first_new);

    uint64_t retrans = c.change + c.lost;
    k->stats.lost_segs += c.lost;
    k->stats.retrans_segs += retrans;
    cwnd_after_flush(k, &c, cwnd);
}

void kcp_flush(struct kcp *k, uint64_t now_ms)
{
    /* A batching policy leaves a flush with only ACKs to send for the interval tick (as
     * kcp-go does without --acknodelay) or for the next data packet to carry, instead of one
     * ACK-only packet per received packet when the caller flushes after every input. */
    if (k->send->batch_acks && !k->ack_nodelay && !k->probe && !k->fast_pending &&
        now_ms < k->rto_deadline && k->rmt_wnd != 0 &&
        next_send_ms(k, now_ms) > now_ms) {
        if (now_ms < k->next_flush_ms)
            return;
        k->next_flush_ms = now_ms + k->interval; /* this flush stands for the tick */
    }
    flush(k, false, now_ms);
}

/* ---- sending policy: kcp-go's fixed window ---- */

/* kcp-go's writer blocks while WaitSnd >= min(snd_wnd, rmt_wnd). */
static size_t fixed_send_room(const struct kcp *k)
{
    size_t wnd = k->snd_wnd < k->rmt_wnd ? k->snd_wnd : k->rmt_wnd;
    size_t wait = kcp_wait_snd(k);
    return wait < wnd ? wnd - wait : 0;
}

static uint32_t fixed_span(const struct kcp *k)
{
    uint32_t cwnd = k->snd_wnd < k->rmt_wnd ? k->snd_wnd : k->rmt_wnd;
    if (!k->nocwnd && k->cwnd < cwnd)
        cwnd = k->cwnd;
    return cwnd;
}

/* With congestion control on, cwnd starts at 0 and the first flush only raises it to 1 (as
 * in kcp-go), so queued data also needs a tick while cwnd is 0. */
static bool fixed_wants_tick(const struct kcp *k)
{
    return k->snd_queue.head && (seq_diff(k->snd_nxt, k->snd_una + fixed_span(k)) < 0 ||
                                 (!k->nocwnd && k->cwnd == 0));
}

static const struct kcp_send_ops send_fixed = {
    .send_room = fixed_send_room,
    .span = fixed_span,
    .wants_tick = fixed_wants_tick,
};

/* ---- sending policy: ktun pacing (common/pace.h) ---- */

/* The estimates restart; segments already in flight carry no delivery state. */
static void paced_start(struct kcp *k, uint64_t now_ms)
{
    for (struct kcp_seg *s = k->inflight.head; s; s = s->next)
        s->mark = (struct pace_mark){0};
    pace_init(&k->pace, (uint32_t)k->mss, k->interval, now_ms);
    pace_set_init_cwnd(&k->pace, (size_t)k->snd_wnd * k->mss);
}

/* Twice the pacer's in-flight cap (at least snd_wnd) queued or in flight, so it never runs
 * dry; only what is really outstanding counts: holes waiting for a retransmission do not hold
 * the writer back (the span check in admit_new still guards the peer's window). */
static size_t paced_send_room(const struct kcp *k)
{
    size_t wnd = k->snd_wnd;
    size_t want = 2 * (pace_cwnd(&k->pace) / k->mss + 1);
    if (want > wnd)
        wnd = want;
    /* beyond what is in flight, one peer window may wait: a sender that the peer's window
     * holds back still has data queued, so it knows (wnd_limited) that the window, not its
     * writer, is the limit */
    if (k->inflight.count + k->rmt_wnd < wnd)
        wnd = k->inflight.count + k->rmt_wnd;
    size_t wait = k->inflight.count + k->snd_queue.count;
    return wait < wnd ? wnd - wait : 0;
}

/* The peer's advertised window bounds the sequence span; the pacer's in-flight cap (bytes,
 * paced_may_admit) replaces snd_wnd and the congestion window. */
static uint32_t paced_span(const struct kcp *k)
{
    return k->rmt_wnd;
}

/* What the pacer counts in flight: the bytes the path carries for the segments not yet
 * acknowledged, their redundant copies and their shares of FEC parity included. These are
 * the bytes that count as delivered when the segments are acknowledged (paced_on_release), so
 * the in-flight cap, the delivery rate and the pacing budget all count the same bytes. */
static size_t paced_inflight(const struct kcp *k)
{
    return k->inflight_bytes + k->copy_bytes + k->parity_bytes;
}

static bool paced_below_cap(const struct kcp *k)
{
    return paced_inflight(k) < pace_cwnd(&k->pace);
}

/* New data waits behind retransmissions the pacer held back (they repair holes the peer's
 * window and the in-order delivery wait on). */
static bool paced_may_admit(struct kcp *k, uint64_t now_ms)
{
    if (!k->inflight.head)
        pace_on_idle_restart(&k->pace, now_ms);
    return !k->rtx_waiting && paced_below_cap(k) &&
           pace_ready(&k->pace, now_ms);
}

/* Retransmissions of a sender with data queued are paced like new data: one leaves while the
 * token bucket holds budget, otherwise when it will, and new data waits behind it. A loss
 * burst or a run of timeouts thus leaves at the pacing rate instead of at once into the
 * bottleneck queue. An application-limited sender (nothing queued) resends at once: its
 * holes are few, nothing else competes for the budget, and every wait would be latency of a
 * message. */
static uint64_t paced_resend_at(struct kcp *k, uint64_t now_ms)
{
    if (!k->snd_queue.head)
        return now_ms;
    return pace_ready(&k->pace, now_ms) ? now_ms : pace_next_ms(&k->pace, now_ms);
}

static void paced_admitted(struct kcp *k, const struct kcp_seg *s)
{
    pace_charge(&k->pace, s->len);
}

/* The flow is limited by its sender, not by the path, when it has nothing more to send or
 * the peer's window holds back what it has (pace.h). */
static void paced_admit_done(struct kcp *k)
{
    pace_set_app_limited(&k->pace, !k->snd_queue.head, paced_inflight(k));
    pace_set_wnd_limited(&k->pace,
                         k->snd_queue.head && seq_diff(k->snd_nxt, k->snd_una + k->rmt_wnd) >= 0,
                         paced_inflight(k));
}

/* Extra wait before a first transmission times out. The RTT samples come from the newest ACK
 * of a batch, so srtt misses the peer's ACK delay (up to its interval) that older segments of
 * the batch wait: that matters only when a batch acknowledges several segments, i.e. more
 * than one segment leaves per peer interval. A paced bulk flow has so little RTT variance
 * that a few ms of scheduling noise would fire the timer (kcp-go's bursts inflate rttvar
 * enough to hide both). A sparse flow, whose RTT samples each carry their own ACK delay,
 * keeps the estimator's timeout: no interval tick is added to its recovery. */
static uint32_t paced_rto_slack(const struct kcp *k)
{
    if ((uint64_t)k->inflight.count * k->interval <= (uint64_t)(uint32_t)k->rx_srtt)
        return 0;
    uint32_t slack = k->interval;
    if (k->inflight.count > PACE_MIN_CWND_SEGS)
        slack += (uint32_t)k->rx_srtt / 2;
    return slack;
}

/* A segment's timer is set from the RTO when it leaves. A bulk flow filling the bottleneck
 * queue (a start-up overshooting the path, a window that has just grown) raises the RTT
 * within a round trip, faster than timers set before it: every segment waiting in the queue
 * would time out at once, and its retransmission would join the queue. As TCP re-arms its
 * one timer with the current RTO, while data is queued an expired timer counts only once the
 * segment has been out for the RTO the estimator shows now (its samples come from the
 * segments ahead in the same queue). An application-limited flow builds no queue: a sample
 * that raised the RTO since is jitter, and its timers stand. */
static uint64_t paced_timeout_at(const struct kcp *k, const struct kcp_seg *s, uint32_t slack,
                                 uint64_t now_ms)
{
    if (!k->snd_queue.head)
        return now_ms;
    int32_t age = seq_diff((uint32_t)now_ms, s->ts);
    if (age < 0)
        age = 0;
    uint64_t wait = (uint64_t)k->rx_rto + (s->xmit == 1 ? slack : 0);
    return (uint64_t)age >= wait ? now_ms : now_ms + (wait - (uint64_t)age);
}

/* Time-based loss detection (RACK, RFC 8985): a segment fast-acked by a later one is lost
 * once it has been out for the latest RTT plus a reordering window.
 *  - While the sender is application-limited (nothing queued: a message flow, whose latency
 *    is the objective), the window is the reordering the path has shown (reo_wnd: how much
 *    longer than the latest RTT an overtaken segment took; none until then), at most a
 *    quarter of min RTT as in RACK. Jitter that reorders by a few ms then costs neither a
 *    spurious retransmission nor a quarter of a long RTT for every hole, and the engine wakes
 *    up at the time found (lost_deadline): no interval tick is added to a recovery.
 *  - While data is queued (a bulk flow, where a retransmission takes the place of new data),
 *    a quarter of min RTT once any segment was acknowledged after a later one, FEC repairs
 *    included (reo_late): that leaves parity the time to rebuild a hole, and the next flush
 *    (pacer or tick) sends what is due. */
static uint64_t paced_lost_at(const struct kcp *k, const struct kcp_seg *s, uint64_t now_ms)
{
    bool bulk = k->snd_queue.head != NULL;
    /* RACK's bound on the window: a quarter of min RTT (none before the first sample) */
    uint32_t cap = k->pace.min_rtt == UINT32_MAX ? 0 : k->pace.min_rtt / 4;
    uint32_t reo = bulk ? (k->reo_late ? cap : 0) : k->reo_wnd < cap ? k->reo_wnd : cap;
    uint64_t wait = (uint64_t)k->rtt_last + reo;
    int32_t age = seq_diff((uint32_t)now_ms, s->ts);
    if (age >= 0 && (uint64_t)age >= wait)
        return now_ms;
    if (bulk)
        return KCP_NEVER; /* the next flush looks again */
    return now_ms + wait - (uint64_t)(age > 0 ? age : 0);
}

/* An early retransmission would jump ahead of queued data the pacer is holding back. */
static bool paced_early_ok(const struct kcp *k)
{
    return !k->snd_queue.head;
}

/* Retransmissions spend pacing budget (first transmissions were charged when admitted; when
 * retransmissions may leave is paced_resend_at's); every transmission records the delivery
 * state for the rate sample. */
static void paced_on_xmit(struct kcp *k, struct kcp_seg *s, uint64_t now_ms)
{
    if (s->xmit > 0)
        pace_charge(&k->pace, s->len);
    else /* a timeout set before any RTT sample knows nothing of the path: never late */
        s->first_deadline = k->rx_srtt ? s->resend_ms : KCP_NEVER;
    pace_on_send(&k->pace, &s->mark, now_ms);
}

/* Whether a loss among the packets leaving now is cheaper to repair by retransmission than
 * by parity: the sender has queued, and the peer's window admits, at least what it sends in
 * the time a loss takes to show (the smoothed RTT plus the peer's ACK delay) at its pacing
 * rate. Such a hole is resent while data keeps flowing (time-based detection, recover_on_ack),
 * so it costs the flow nothing but the segment sent again; parity would cost ps / ds of every
 * group. A sender that would run dry within that time (an application-limited or
 * request/response flow: the next data waits for this data's delivery) or that the peer's
 * window holds back stalls on a hole for a round trip: there parity is worth it. *|bulk|
 * says whether the queue alone holds that much (whatever the peer's window admits). */
static bool paced_backlogged(const struct kcp *k, bool *bulk)
{
    double rate = pace_rate(&k->pace);
    *bulk = false;
    if (!k->rx_srtt || rate <= 0)
        return false;
    double need = rate * ((double)k->rx_srtt + k->interval);
    double queued = (double)k->snd_queue.count * (double)k->mss;
    int32_t room = seq_diff(k->snd_una + k->rmt_wnd, k->snd_nxt);
    *bulk = queued >= need;
    /* a hole holds the peer's window from its first transmission until its retransmission
     * is acknowledged: two round trips of data must fit for the flow to go on meanwhile */
    double hold = rate * (2.0 * k->rx_srtt + k->interval);
    return *bulk && room > 0 && (double)room * (double)k->mss >= hold;
}

/* The pacer counts the parity the groups now get as overhead on the data (pace.h). */
static void fec_overhead(struct kcp *k, uint32_t parity)
{
    pace_set_overhead(&k->pace, k->fec_ds ? (double)parity / k->fec_ds : 0);
}

static int fec_parity_chosen(struct kcp *k, int data_shards, int parity_shards,
                             uint32_t span_ms);

int kcp_fec_parity(struct kcp *k, int data_shards, int parity_shards, uint32_t span_ms)
{
    int j = fec_parity_chosen(k, data_shards, parity_shards, span_ms);
    fec_overhead(k, (uint32_t)j);
    return j;
}

static int fec_parity_chosen(struct kcp *k, int data_shards, int parity_shards,
                             uint32_t span_ms)
{
    if (data_shards <= 0 || parity_shards <= 0)
        return 0;
    lossest_set_data_shards(&k->loss, (uint32_t)data_shards);
    int cap = parity_shards < LOSSEST_PARITY_LEVELS - 1 ? parity_shards
                                                        : LOSSEST_PARITY_LEVELS - 1;
    if (k->send != &send_paced || !k->rx_srtt)
        return parity_shards; /* kcp-go's sending, or nothing measured yet */
    /* A bulk sender (data queued for the time a loss takes to show) that the peer's window
     * holds back gets parity by the rule below, except while the RTT shows a standing queue:
     * then its losses are at least partly its own queue overflowing, which parity does not
     * cure: it only adds load to that queue, or takes pacing budget from data (the same brake
     * as for redundant copies). A sparse flow's load is too small to build the queue it sees;
     * it keeps its parity. */
    bool bulk;
    if (paced_backlogged(k, &bulk) || (bulk && pace_queue_building(&k->pace))) {
        k->fec_last_parity = 0;
        return 0;
    }
    /* an unrepaired loss stalls the stream for a round trip: the packets sent in that round
     * trip wait behind it, so the residual is divided by their number */
    double per_rtt = (double)data_shards * k->rx_srtt / (span_ms ? span_ms : 1);
    double target = KCP_RESIDUAL_LOSS / (per_rtt > 1 ? per_rtt : 1);
    int j = lossest_parity(&k->loss, cap, target);
    k->fec_last_parity = (uint32_t)j;
    return j;
}

void kcp_set_fec_shards(struct kcp *k, int data_shards, int parity_shards)
{
    k->fec_ds = data_shards > 0 && parity_shards > 0 ? (uint32_t)data_shards : 0;
    fec_overhead(k, k->fec_ds ? (uint32_t)parity_shards : 0);
}

/* From |s| towards the oldest, the next segment in flight whose first transmission went
 * into FEC group |group|, or NULL. First transmissions leave in sn order, so the walk ends
 * at the first one sent in an earlier group (retransmissions are passed over). The segment
 * put_segment is placing (xmit_seg, counted as sent) may have had the packet before it emitted
 * and its group closed: it is in no group yet. */
static struct kcp_seg *group_next(const struct kcp *k, struct kcp_seg *s, uint32_t group)
{
    for (; s; s = s->prev) {
        if (s->xmit == 0 || (s == k->xmit_seg && s->xmit == 1))
            continue;
        int32_t d = seq_diff(s->group_first, group);
        if (d == 0)
            return s;
        if (d < 0 && s->xmit == 1)
            return NULL;
    }
    return NULL;
}

void kcp_fec_group_closed(struct kcp *k, uint32_t group, int parity)
{
    uint8_t v = (uint8_t)(parity < LOSSEST_PARITY_LEVELS ? parity : LOSSEST_PARITY_LEVELS - 1);
    for (struct kcp_seg *s = k->inflight.tail; s; s = s->prev) {
        if (s->xmit == 0)
            continue;
        int32_t d = seq_diff(s->group_first, group);
        if (d < 0)
            break;
        if (d == 0 && s->parity == LOSSEST_PARITY_UNKNOWN)
            s->parity = v;
    }
}

void kcp_fec_parity_sent(struct kcp *k, uint32_t group, size_t bytes)
{
    if (k->send != &send_paced || bytes == 0)
        return;
    pace_charge(&k->pace, bytes);
    /* the group's first transmissions carry the parity's bytes in shares by length */
    size_t total = 0;
    for (struct kcp_seg *s = group_next(k, k->inflight.tail, group); s;
         s = group_next(k, s->prev, group))
        total += s->len;
    if (total == 0)
        return; /* a group of extension records or retransmissions only */
    for (struct kcp_seg *s = group_next(k, k->inflight.tail, group); s;
         s = group_next(k, s->prev, group)) {
        size_t share = s->parity_share + bytes * s->len / total;
        share = share < UINT16_MAX ? share : UINT16_MAX;
        k->parity_bytes += share - s->parity_share;
        s->parity_share = (uint16_t)share;
    }
}

/* Copies per segment: the fewest that bring the residual loss p^(n+1) to the objective's
 * KCP_RESIDUAL_LOSS divided by the segments in flight (as for FEC parity: a segment that
 * needs a retransmission stalls the stream for a round trip, and every message sent in that
 * round trip waits behind it in order, so the more of them a round trip holds, the rarer such
 * a stall must be), but none while the RTT shows a standing queue (the loss may be the
 * copies' own doing: a congested path gets less load, not more), and no more than the
 * in-flight cap the pacer derived from the path leaves room for, counting the copies already
 * in flight. */
static unsigned copies_wanted(struct kcp *k, size_t new_bytes)
{
    if (pace_queue_building(&k->pace))
        return 0;
    double target = KCP_RESIDUAL_LOSS / (k->inflight.count > 1 ? (double)k->inflight.count : 1);
    double p = lossest_pooled(&k->loss); /* what parity leaves, as before adaptive parity */
    unsigned n = 0;
    for (double r = p; n < LOSSEST_COPIES_MAX && r > target; r *= p)
        n++;
    size_t cap = pace_cwnd(&k->pace);
    while (n > 0 && paced_inflight(k) + n * new_bytes > cap)
        n--;
    /* copies spend pacing budget like retransmissions, and only budget left over: they never
     * push the flow above the pacing rate (the measured delivery rate's, or --ratelimit) */
    while (n > 0 && !pace_spare(&k->pace, n * new_bytes))
        n--;
    return n;
}

/* Redundancy for application-limited flows. When a flush sent new data and left nothing
 * queued, no later data will follow soon enough to reveal a loss of that data to the ACK
 * clock: a lost segment costs a retransmission timeout or at best a round trip. Those new
 * segments go out again, copies_wanted times, each copy in a packet of its own, scaled to the
 * measured loss rate (none on a clean path). A bulk flow always has data queued and never
 * gets copies. The peer acknowledges the first copy to arrive and counts the others as
 * RepeatSegs; a kcp-go peer handles them like any duplicate. */
static void paced_after_data(struct kcp *k, struct kcp_seg_hdr *h, struct kcp_seg *first_new)
{
    if (!first_new || k->snd_queue.head)
        return;
    size_t new_bytes = 0;
    for (struct kcp_seg *s = first_new; s; s = s->next)
        new_bytes += s->len;
    unsigned n = copies_wanted(k, new_bytes);
    if (n == 0)
        return;
    h->cmd = KCP_CMD_PUSH;
    for (unsigned i = 0; i < n; i++) {
        for (struct kcp_seg *s = first_new; s; s = s->next) {
            h->frg = s->frg;
            h->ts = s->ts;
            h->sn = s->sn;
            h->len = s->len;
            put_segment(k, h, s->data);
            s->copies = (uint8_t)(i + 1);
            k->copy_bytes += s->len;
            k->stats.redundant_segs++;
        }
        pace_charge(&k->pace, new_bytes);
        out_packet(k);
    }
    h->frg = 0;
}

/* Queued data that the windows would admit (only the token bucket may hold it) leaves when
 * the bucket has budget. */
static uint64_t paced_next_send_ms(const struct kcp *k, uint64_t now_ms)
{
    if (!k->snd_queue.head || seq_diff(k->snd_nxt, k->snd_una + k->rmt_wnd) >= 0 ||
        !paced_below_cap(k))
        return KCP_NEVER;
    return pace_next_ms(&k->pace, now_ms);
}

/* Whether acknowledged segment |s| counts as lost for the loss estimate: its ACK came after
 * the retransmission time its first transmission set, whatever repaired it (a
 * retransmission, FEC parity, or the next ACK after a lost one): for the latency of a
 * message that is what a loss is. Telling these apart would need the receiver's view (FEC
 * repairs carry the original timestamp and una covers them first), so a late ACK on a
 * jittery path also counts: the estimate errs towards protection. */
static bool arrived_late(const struct kcp_seg *s, uint64_t now_ms)
{
    return now_ms > s->first_deadline;
}

/* When the FEC group of |s|'s first transmission closed with parity (its parity left), or
 * KCP_NEVER: never sent once, no FEC, the group still open or closed without parity. */
static uint64_t fec_closed_at(const struct kcp *k, const struct kcp_seg *s)
{
    if (s->xmit != 1 || !k->fec_groups || s->parity == 0)
        return KCP_NEVER;
    return s->group_closed_ms;
}

/* Whether the peer may have rebuilt |s| (sent once) from FEC parity by |now_ms|: its group
 * closed with parity, and the parity had time to reach the peer and the ACK to come back (a
 * min RTT after the group closed). */
static bool fec_may_have_rebuilt(const struct kcp *k, const struct kcp_seg *s, uint64_t now_ms)
{
    uint64_t closed = fec_closed_at(k, s);
    uint32_t rtt = k->pace.min_rtt == UINT32_MAX ? 0 : k->pace.min_rtt;
    return closed != KCP_NEVER && now_ms >= closed + rtt;
}

/* |s|, sent once, was acknowledged after a segment sent later: the path reordered it, unless
 * FEC parity may have rebuilt it (a repair comes after the rest of its group, which is no
 * reordering). The window grows to how much longer than the latest RTT it took. */
static void reordering_seen(struct kcp *k, const struct kcp_seg *s, uint64_t now_ms)
{
    if (fec_may_have_rebuilt(k, s, now_ms))
        return;
    int32_t age = seq_diff((uint32_t)now_ms, s->ts);
    uint32_t extent = age > (int32_t)k->rtt_last ? (uint32_t)age - k->rtt_last : 1;
    if (extent > k->reo_wnd)
        k->reo_wnd = extent;
}

/* A retransmitted segment's ACK may answer either copy: no rate sample (Karn). The copies the
 * path carried count as delivered: a flow's rate estimate then covers what it really sends
 * (messages and their copies), so its copies keep their share of the pacing budget instead of
 * living off the probing gain. Every acknowledged segment is evidence for the loss estimate. */
static void paced_on_release(struct kcp *k, const struct kcp_seg *s, uint64_t now_ms)
{
    k->copy_bytes -= (size_t)s->copies * s->len;
    k->parity_bytes -= s->parity_share;
    pace_on_ack(&k->pace, s->xmit == 1 ? &s->mark : NULL,
                (size_t)s->len * (1u + s->copies) + s->parity_share, paced_inflight(k), now_ms);
    lossest_record(&k->loss, s->copies, s->parity, arrived_late(s, now_ms));
    if (s->xmit == 1 && seq_diff(s->sn, k->fast_hi) < 0) {
        k->reo_late = true;
        reordering_seen(k, s, now_ms);
    }
}

static void paced_on_rtt(struct kcp *k, uint32_t rtt_ms, uint64_t now_ms)
{
    k->rtt_last = rtt_ms;
    pace_on_rtt(&k->pace, rtt_ms, now_ms);
}

static const struct kcp_send_ops send_paced = {
    .batch_acks = true,
    .start = paced_start,
    .send_room = paced_send_room,
    .span = paced_span,
    .may_admit = paced_may_admit,
    .admitted = paced_admitted,
    .admit_done = paced_admit_done,
    .rto_slack = paced_rto_slack,
    .early_ok = paced_early_ok,
    .lost_at = paced_lost_at,
    .timeout_at = paced_timeout_at,
    .resend_at = paced_resend_at,
    .recover_on_ack = true,
    .on_xmit = paced_on_xmit,
    .after_data = paced_after_data,
    .next_send_ms = paced_next_send_ms,
    .on_release = paced_on_release,
    .on_rtt = paced_on_rtt,
};

/* ---- retransmission hold: FEC groups ----
 *
 * A segment that went out in a FEC group that no acknowledged segment had gone past an
 * interval ago may still be rebuilt by the peer from that group's parity, or its ACK may
 * still come (the peer's next ACKs repeat the ones a lost packet carried): its fast or early
 * retransmission waits (its timeout does not). */

/* Keeps the gate (fec_ready_group) an interval behind the latest acknowledged group. */
static void fec_flush_start(struct kcp *k, uint64_t now_ms)
{
    if (now_ms - k->fec_mark_ms >= k->interval) {
        k->fec_ready_group = k->fec_mark_group;
        k->fec_mark_group = k->fec_acked_group;
        k->fec_mark_ms = now_ms;
    }
}

/* Whether the flow is one the hold is for, decided once per flush (retransmissions do not
 * change the in-flight count). A group fills in about hold_min * srtt / inflight ms: hold only
 * if that is within an interval (bulk flows), not for a trickle whose group would take longer
 * to complete than a retransmission. */
static bool fec_active(const struct kcp *k)
{
    return k->inflight.count > k->fec_hold_min &&
           (uint64_t)k->inflight.count * k->interval >=
               (uint64_t)k->fec_hold_min * (uint32_t)k->rx_srtt;
}

static bool fec_holds(const struct kcp *k, const struct kcp_seg *s)
{
    if (s->xmit == 1 && s->parity == 0)
        return false; /* its group was sent without parity: nothing to wait for */
    return seq_diff(k->fec_ready_group, s->group) <= 0;
}

static void fec_on_sent(struct kcp *k, struct kcp_seg *s)
{
    s->group = k->fec_group;
}

/* Only an ACK of the latest copy (same ts) tells which group got through. */
static void fec_on_ack(struct kcp *k, const struct kcp_seg *s, uint32_t ts)
{
    if (s->ts == ts && seq_diff(s->group, k->fec_acked_group) > 0)
        k->fec_acked_group = s->group;
}

static void fec_on_release(struct kcp *k, const struct kcp_seg *s)
{
    if (s->fastack > 0)
        k->stats.fec_hold_acked_segs++;
}

static const struct kcp_hold_ops hold_fec = {
    .flush_start = fec_flush_start,
    .active = fec_active,
    .holds = fec_holds,
    .on_sent = fec_on_sent,
    .on_ack = fec_on_ack,
    .on_release = fec_on_release,
};

/* ---- timers ---- */

uint64_t kcp_next_deadline(const struct kcp *k, uint64_t now_ms)
{
    uint64_t d = k->rto_deadline;
    uint64_t p = next_send_ms(k, now_ms);
    d = d < p ? d : p;
    if (k->ack_len || k->probe || k->fast_pending ||
        (k->send->wants_tick && k->send->wants_tick(k)))
        d = d < k->next_flush_ms ? d : k->next_flush_ms;
    if (k->fast_pending && k->lost_deadline < d)
        d = k->lost_deadline;
    if (k->rmt_wnd == 0) {
        p = k->probe_wait ? k->probe_ms : k->next_flush_ms;
        d = d < p ? d : p;
    }
    return d;
}

void kcp_tick(struct kcp *k, uint64_t now_ms)
{
    if (now_ms >= k->next_flush_ms) {
        k->next_flush_ms += k->interval;
        if (now_ms >= k->next_flush_ms)
            k->next_flush_ms = now_ms + k->interval;
        flush(k, false, now_ms);
    } else if (now_ms >= k->rto_deadline || (k->rmt_wnd == 0 && now_ms >= k->probe_ms) ||
               (k->fast_pending && now_ms >= k->lost_deadline) ||
               next_send_ms(k, now_ms) <= now_ms) {
        flush(k, false, now_ms);
    }
}

/* ---- receiving side ---- */

/* Takes acknowledged segment |s| out of flight and frees it. */
static void inflight_release(struct kcp *k, struct kcp_seg *s, uint64_t now_ms)
{
    list_unlink(&k->inflight, s);
    k->inflight_bytes -= s->len;
    if (k->hold)
        k->hold->on_release(k, s);
    if (k->send->on_release)
        k->send->on_release(k, s, now_ms);
    seg_free(k, s);
}

/* Applies the peer's una: everything below it left our send buffer. Returns how many
 * sequence numbers were released. The caller has checked una <= snd_nxt. */
static uint32_t parse_una(struct kcp *k, uint32_t una, uint64_t now_ms)
{
    int32_t n = seq_diff(una, k->snd_una);
    if (n <= 0)
        return 0;
    for (uint32_t sn = k->snd_una; sn != una; sn++) {
        struct kcp_seg **slot = &k->snd_ring[sn & k->snd_mask];
        if (*slot) {
            inflight_release(k, *slot, now_ms);
            *slot = NULL;
        }
    }
    k->snd_una = una;
    if (seq_diff(k->fast_hi, una) < 0)
        k->fast_hi = una;
    if (!k->inflight.head)
        k->rto_deadline = KCP_NEVER;
    return (uint32_t)n;
}

/* Handles one ACK: frees the acked segment and counts a fast-ack for every earlier unacked
 * segment sent no later than the acked one (kcp-go's per-ACK rule with the ts check). Returns
 * false if |sn| was never sent (ACKs below snd_una are normal: una already covered them). */
static bool parse_ack(struct kcp *k, uint32_t sn, uint32_t ts, uint64_t now_ms)
{
    if (seq_diff(sn, k->snd_nxt) >= 0)
        return false;
    if (seq_diff(sn, k->snd_una) < 0)
        return true;
    struct kcp_seg **slot = &k->snd_ring[sn & k->snd_mask];
    if (!*slot)
        return true; /* a repeat: it tells nothing new about the segments before it */
    if (k->hold)
        k->hold->on_ack(k, *slot, ts);
    inflight_release(k, *slot, now_ms);
    *slot = NULL;
    if (!k->inflight.head)
        k->rto_deadline = KCP_NEVER;
    for (struct kcp_seg *s = k->inflight.head; s && seq_diff(s->sn, sn) < 0; s = s->next) {
        if (seq_diff(s->ts, ts) <= 0) {
            s->fastack++;
            k->fast_pending = true;
        }
    }
    if (seq_diff(sn, k->fast_hi) > 0)
        k->fast_hi = sn;
    return true;
}

static void ack_push(struct kcp *k, uint32_t sn, uint32_t ts, uint64_t now_ms)
{
    /* A batching policy holds ACK-only packets for the interval tick; but a quarter of the
     * receive window acknowledged goes out at once, or a fast path (loopback, LAN) would be
     * capped at one window per interval whatever its speed. */
    size_t limit = KCP_ACK_LIMIT;
    if (k->send->batch_acks) {
        size_t q = k->rcv_wnd / 4;
        limit = q < KCP_ACK_MIN_BURST ? KCP_ACK_MIN_BURST : q < limit ? q : limit;
    }
    if (k->ack_len >= limit)
        flush(k, true, now_ms);
    if (k->ack_len == k->ack_cap) {
        size_t cap = k->ack_cap ? k->ack_cap * 2 : 64;
        struct kcp_ack *a = realloc(k->acks, cap * sizeof(*a));
        if (!a)
            return; /* the peer retransmits; the ACK is merely late */
        k->acks = a;
        k->ack_cap = cap;
    }
    k->acks[k->ack_len].sn = sn;
    k->acks[k->ack_len].ts = ts;
    k->ack_len++;
}

/* Moves in-order segments from the receive ring to the receive queue while it has room. */
static void rcv_advance(struct kcp *k)
{
    for (;;) {
        struct kcp_seg **slot = &k->rcv_ring[k->rcv_nxt & k->rcv_mask];
        if (!*slot || k->rcv_queue.count >= k->rcv_wnd)
            break;
        struct kcp_seg *s = *slot;
        *slot = NULL;
        k->rcv_buf_count--;
        list_push(&k->rcv_queue, s);
        k->rcv_queue_bytes += s->len;
        k->rcv_nxt++;
    }
}

/* Stores a PUSH in the window [rcv_nxt, rcv_nxt + rcv_wnd). Returns true if it was a
 * duplicate (or could not be stored). */
static bool parse_data(struct kcp *k, const struct kcp_seg_hdr *h, const uint8_t *data)
{
    struct kcp_seg **slot = &k->rcv_ring[h->sn & k->rcv_mask];
    if (*slot)
        return true;
    struct kcp_seg *s = seg_new(k, h->len);
    if (!s) {
        k->stats.drop[KCP_DROP_NOMEM]++;
        return true;
    }
    s->sn = h->sn;
    s->ts = h->ts;
    s->frg = h->frg;
    if (h->len)
        memcpy(s->data, data, h->len);
    *slot = s;
    k->rcv_buf_count++;
    rcv_advance(k);
    return false;
}

/* Receive window growth (kcp_set_rcv_growth). The window doubles, up to rcv_wnd_max, when
 * the peer's data in flight is limited by it while the reader keeps up (a receive queue
 * filled by a slow reader stops the growth). It never shrinks; the peer sees the new size in
 * the next segment's wnd field. Two signs of a window-limited peer make it double:
 *  - a PUSH in the window's last quarter: holes hold the window back;
 *  - a receive round as fast as the fastest one seen. A round runs from the moment a
 *    segment carries a window edge (una + wnd) beyond any sent before (put_segment) until
 *    data reaches that edge. A peer limited by the window sends up to the edge as soon as it
 *    learns of it, so its rounds last one round trip, however large the window; a peer
 *    limited by its own rate (congestion window, pacer, application) needs longer the
 *    larger the window. So after a doubling the rounds stay as fast only if the peer's rate
 *    doubled with the window, and the growth stops by itself one doubling above what the
 *    peer fills (like TCP's receive-buffer autotuning, which keeps twice what the sender
 *    delivered per round trip), following what the path carries rather than a
 *    configured size. In order, without holes, data never reaches the last quarter, which is
 *    why the first sign alone leaves a clean or FEC-repaired path at its initial window.
 *    The slack of a round (an ACK waits up to one interval tick; a paced peer spreads its
 *    data over the round) is a quarter of the fastest round plus one interval; the first
 *    round only measures. Rounds lengthened by queueing once the window nears the path's
 *    capacity count too while the last doubling raised the rate the peer delivers (data
 *    arriving in a round over its length) by more than the geometric middle (sqrt 2)
 *    between no gain (rate-limited) and twice (window-limited).
 * Every growth beyond the configured window is granted by the shared budget (rcv_grant). */
static void rcv_grow_to(struct kcp *k, uint32_t wnd)
{
    if (wnd > k->rcv_wnd_max)
        wnd = k->rcv_wnd_max;
    if (wnd <= k->rcv_wnd || rcv_ring_reserve(k, wnd) != 0)
        return;
    if (k->rcv_grant) {
        /* the shared budget's grant, in whole segments (the rest of it goes unused) */
        size_t granted = k->rcv_grant(k->rcv_grant_user, (size_t)(wnd - k->rcv_wnd) * k->mss);
        wnd = k->rcv_wnd + (uint32_t)(granted / k->mss);
    }
    if (wnd > k->rcv_wnd) {
        k->rcv_wnd = wnd;
        k->rnd_rate_prev = k->rnd_rate;
        k->rnd_rate = 0;
    }
}

static void rcv_grow(struct kcp *k, uint32_t sn, uint64_t now_ms)
{
    if (seq_diff(sn + 1, k->rcv_hi) > 0)
        k->rcv_hi = sn + 1;
    if (k->rcv_wnd >= k->rcv_wnd_max)
        return;
    if (seq_diff(sn, k->rcv_nxt) >= (int32_t)(k->rcv_wnd - k->rcv_wnd / 4)) {
        rcv_grow_to(k, k->rcv_wnd * 2);
        k->rnd_start = 0; /* the next round measures the new window */
        return;
    }
    if (k->rnd_start && seq_diff(sn + 1, k->rnd_edge) >= 0) {
        uint64_t took = now_ms - k->rnd_start;
        if (took == 0)
            took = 1;
        bool fast = k->rnd_min && took <= (uint64_t)k->rnd_min + k->rnd_min / 4 + k->interval;
        if (k->rnd_min == 0 || took < k->rnd_min)
            k->rnd_min = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
        uint64_t rate = (uint64_t)(uint32_t)(k->rnd_edge - k->rnd_base) * 1000 / took;
        if (rate > k->rnd_rate)
            k->rnd_rate = rate;
        /* the last doubling raised the delivery rate past the geometric middle between a
         * peer limited by its own rate (no gain) and one limited by the window (twice) */
        if (k->rnd_rate_prev && rate * 100 >= k->rnd_rate_prev * 141)
            fast = true;
        if (fast) /* (the reader kept up when the round started) */
            rcv_grow_to(k, k->rcv_wnd * 2);
        k->rnd_start = 0;
    }
}

static void parse_push(struct kcp *k, const struct kcp_seg_hdr *h, const uint8_t *data,
                       bool regular, uint64_t now_ms)
{
    bool repeat = true;
    if (seq_diff(h->sn, k->rcv_nxt + k->rcv_wnd) < 0)
        rcv_grow(k, h->sn, now_ms);
    if (seq_diff(h->sn, k->rcv_nxt + k->rcv_wnd) < 0) {
        ack_push(k, h->sn, h->ts, now_ms);
        if (seq_diff(h->sn, k->rcv_nxt) >= 0)
            repeat = parse_data(k, h, data);
    } else {
        k->stats.drop[KCP_DROP_WINDOW]++;
    }
    if (regular && repeat)
        k->stats.repeat_segs++;
}

/* kcp-go's RTO estimator (RFC 6298 flavour, int32 arithmetic). */
static void update_rtt(struct kcp *k, int32_t rtt)
{
    if (rtt > KCP_RTT_MAX)
        rtt = KCP_RTT_MAX;
    if (k->rx_srtt == 0) {
        k->rx_srtt = rtt;
        k->rx_rttvar = rtt >> 1;
    } else {
        int32_t delta = rtt - k->rx_srtt;
        k->rx_srtt += delta >> 3;
        if (delta < 0)
            delta = -delta;
        if (rtt < k->rx_srtt - k->rx_rttvar)
            k->rx_rttvar += (delta - k->rx_rttvar) >> 5;
        else
            k->rx_rttvar += (delta - k->rx_rttvar) >> 2;
    }
    uint32_t var4 = (uint32_t)k->rx_rttvar << 2;
    uint32_t rto = (uint32_t)k->rx_srtt + (k->interval > var4 ? k->interval : var4);
    if (rto < k->rx_minrto)
        rto = k->rx_minrto;
    if (rto > KCP_RTO_MAX)
        rto = KCP_RTO_MAX;
    k->rx_rto = rto;
}

/* Slow start / congestion avoidance growth when una moved forward. */
static void cwnd_grow(struct kcp *k)
{
    if (k->nocwnd || k->cwnd >= k->rmt_wnd)
        return;
    uint32_t mss = (uint32_t)k->mss;
    if (k->cwnd < k->ssthresh) {
        k->cwnd++;
        k->incr += mss;
    } else {
        if (k->incr < mss)
            k->incr = mss;
        k->incr += (mss * mss) / k->incr + mss / 16;
        if ((k->cwnd + 1) * mss <= k->incr)
            k->cwnd = (k->incr + mss - 1) / mss;
    }
    if (k->cwnd > k->rmt_wnd) {
        k->cwnd = k->rmt_wnd;
        k->incr = k->rmt_wnd * mss;
    }
}

/* Validates and applies one segment. Returns -1 when the segment was processed, or the
 * enum kcp_drop reason (>= 0; KCP_DROP_SHORT is 0) that drops it and the rest of the packet. */
static int input_segment(struct kcp *k, const struct kcp_seg_hdr *h, const uint8_t *data,
                         bool regular, uint64_t now_ms, bool *slid, bool *acked,
                         uint32_t *latest_ts)
{
    if (h->conv != k->conv)
        return KCP_DROP_CONV;
    if (h->cmd < KCP_CMD_PUSH || h->cmd > KCP_CMD_WINS)
        return KCP_DROP_CMD;
    if (regular)
        k->rmt_wnd = h->wnd;
    /* A una beyond anything we sent (a peer still in an older session with this conv, or a
     * forgery) would count all our in-flight data as delivered, as kcp-go does: ignore that
     * field, count it, and still process the rest of the segment as kcp-go would. */
    if (seq_diff(h->una, k->snd_nxt) > 0)
        k->stats.drop[KCP_DROP_UNA]++;
    else if (h->una == 0 && k->snd_una != 0)
        k->stats.una_reset++; /* the peer has received nothing of ours: it forgot us */
    else if (parse_una(k, h->una, now_ms) > 0)
        *slid = true;
    switch (h->cmd) {
    case KCP_CMD_ACK:
        /* kcp-go takes the RTT sample from the last ACK of the packet whatever its sn; we
         * skip ACKs for never-sent sns so that garbage cannot skew the estimator. */
        if (parse_ack(k, h->sn, h->ts, now_ms)) {
            *acked = true;
            *latest_ts = h->ts;
        } else {
            k->stats.drop[KCP_DROP_ACK]++;
        }
        break;
    case KCP_CMD_PUSH:
        parse_push(k, h, data, regular, now_ms);
        break;
    case KCP_CMD_WASK:
        k->probe |= KCP_ASK_TELL;
        break;
    default: /* WINS: its wnd and una were all it carried */
        break;
    }
    k->stats.in_segs++;
    return -1;
}

/* Offset of the first segment from |off| on whose command byte is |cmd|, walking the
 * segment headers only; |len| if there is none (or a length runs past the end first). */
static size_t find_cmd(const uint8_t *pkt, size_t off, size_t len, int cmd)
{
    while (len - off >= KCP_OVERHEAD) {
        const uint8_t *h = pkt + off;
        if (h[4] == cmd)
            return off;
        uint32_t n = rd_u32le(h + 20);
        if (n > len - off - KCP_OVERHEAD)
            break;
        off += KCP_OVERHEAD + n;
    }
    return len;
}

int kcp_input(struct kcp *k, const uint8_t *pkt, size_t len, bool regular, uint64_t now_ms)
{
    return kcp_input_until(k, pkt, len, regular, now_ms, -1, NULL);
}

int kcp_input_until(struct kcp *k, const uint8_t *pkt, size_t len, bool regular,
                    uint64_t now_ms, int stop_cmd, size_t *stop_off)
{
    const uint8_t *p = pkt, *end = pkt + len;
    uint32_t old_una = k->snd_una, latest_ts = 0;
    bool slid = false, acked = false;
    int drop = -1;

    if (stop_off)
        *stop_off = len;
    if (len >= KCP_OVERHEAD && pkt[4] == stop_cmd) {
        *stop_off = 0; /* no KCP segment: nothing for the engine */
        return 0;
    }
    k->clock_ms = now_ms;
    if (len < KCP_OVERHEAD) {
        drop = KCP_DROP_SHORT;
        goto out;
    }
    while (end - p >= KCP_OVERHEAD) {
        struct kcp_seg_hdr h;
        const uint8_t *seg = p;
        kcp_seg_hdr_decode(&p, end, &h);
        if (h.cmd == stop_cmd) {
            *stop_off = (size_t)(seg - pkt);
            end = p = seg;
            break;
        }
        if (h.len > (size_t)(end - p)) {
            drop = KCP_DROP_LEN;
            break;
        }
        drop = input_segment(k, &h, p, regular, now_ms, &slid, &acked, &latest_ts);
        if (drop >= 0) {
            if (stop_off) /* the segments after a dropped one are not KCP's, but may be ours */
                *stop_off = find_cmd(pkt, (size_t)(seg - pkt), len, stop_cmd);
            break;
        }
        p += h.len;
    }
    if (drop < 0 && p != end)
        k->stats.drop[KCP_DROP_SHORT]++; /* trailing bytes, ignored like kcp-go */

    if (acked && regular) {
        int32_t rtt = seq_diff((uint32_t)now_ms, latest_ts);
        if (rtt >= 0) {
            update_rtt(k, rtt);
            if (k->send->on_rtt)
                k->send->on_rtt(k, (uint32_t)(rtt > KCP_RTT_MAX ? KCP_RTT_MAX : rtt), now_ms);
        }
    }
    if (seq_diff(k->snd_una, old_una) > 0)
        cwnd_grow(k);
    if (slid || (k->send->recover_on_ack && acked && k->fast_pending))
        flush(k, false, now_ms);
    else if (k->ack_nodelay && k->ack_len)
        flush(k, true, now_ms);
out:
    if (drop >= 0) {
        k->stats.drop[drop]++;
        k->stats.in_errors++;
        return ERR_PROTO;
    }
    return 0;
}

/* ---- reading ---- */

static size_t peek_message(const struct kcp *k)
{
    const struct kcp_seg *s = k->rcv_queue.head;
    if (!s)
        return 0;
    if (s->frg == 0)
        return s->len;
    if (k->rcv_queue.count < (size_t)s->frg + 1)
        return 0;
    size_t n = 0;
    for (; s; s = s->next) {
        n += s->len;
        if (s->frg == 0)
            break;
    }
    return n;
}

size_t kcp_recv_avail(const struct kcp *k)
{
    if (k->stream)
        return k->rcv_queue_bytes - k->rcv_head_off;
    return peek_message(k);
}

static void rcv_pop_head(struct kcp *k)
{
    struct kcp_seg *s = list_pop(&k->rcv_queue);
    k->rcv_queue_bytes -= s->len;
    k->rcv_head_off = 0;
    seg_free(k, s);
}

static size_t recv_stream(struct kcp *k, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    struct kcp_seg *s;
    while ((s = k->rcv_queue.head)) {
        size_t left = s->len - k->rcv_head_off;
        if (left > cap - n)
            left = cap - n;
        memcpy(buf + n, s->data + k->rcv_head_off, left);
        n += left;
        k->rcv_head_off += left;
        if (k->rcv_head_off < s->len)
            break;
        rcv_pop_head(k);
    }
    return n;
}

static size_t recv_message(struct kcp *k, uint8_t *buf)
{
    size_t n = 0;
    struct kcp_seg *s;
    while ((s = k->rcv_queue.head)) {
        uint8_t frg = s->frg;
        memcpy(buf + n, s->data, s->len);
        n += s->len;
        rcv_pop_head(k);
        if (frg == 0)
            break;
    }
    return n;
}

ssize_t kcp_recv(struct kcp *k, uint8_t *buf, size_t cap)
{
    if (!k->rcv_queue.head)
        return ERR_AGAIN;
    bool was_full = k->rcv_queue.count >= k->rcv_wnd;
    size_t n;
    if (k->stream) {
        n = recv_stream(k, buf, cap);
    } else {
        size_t need = peek_message(k);
        if (need == 0 && k->rcv_queue.head->frg != 0)
            return ERR_AGAIN;
        if (need > cap)
            return ERR_TOOBIG;
        n = recv_message(k, buf);
    }
    rcv_advance(k);
    /* The queue was full and has room again: tell the peer at the next flush (kcp-go). */
    if (was_full && k->rcv_queue.count < k->rcv_wnd)
        k->probe |= KCP_ASK_TELL;
    return (ssize_t)n;
}

/* ---- queries ---- */

uint32_t kcp_conv(const struct kcp *k)
{
    return k->conv;
}

bool kcp_is_dead(const struct kcp *k)
{
    return k->dead;
}

uint32_t kcp_rto(const struct kcp *k)
{
    return k->rx_rto;
}

uint32_t kcp_srtt(const struct kcp *k)
{
    return (uint32_t)k->rx_srtt;
}

uint32_t kcp_cwnd(const struct kcp *k)
{
    return k->cwnd;
}

uint32_t kcp_snd_una(const struct kcp *k)
{
    return k->snd_una;
}

uint32_t kcp_snd_nxt(const struct kcp *k)
{
    return k->snd_nxt;
}

size_t kcp_mss(const struct kcp *k)
{
    return k->mss;
}

size_t kcp_rcv_buf_count(const struct kcp *k)
{
    return k->rcv_buf_count;
}

size_t kcp_rcv_queue_count(const struct kcp *k)
{
    return k->rcv_queue.count;
}

void kcp_get_stats(const struct kcp *k, struct kcp_stats *out)
{
    *out = k->stats;
}
