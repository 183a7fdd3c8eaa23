/* SPDX-License-Identifier: MIT */
/* Pure KCP ARQ engine, wire- and behaviour-compatible with kcp-go 5.6.1. */
#ifndef KTUN_KCP_H
#define KTUN_KCP_H

/*
 * Segment header, 24 bytes, little-endian (one KCP packet = one or more segments):
 *
 *   0       4     5     6       8       12      16      20      24
 *   | conv  | cmd | frg | wnd   | ts    | sn    | una   | len   | data (len bytes) ...
 *
 * cmd: 81 PUSH (data), 82 ACK (sn/ts of the acked PUSH), 83 WASK (window probe),
 * 84 WINS (window tell). wnd = free receive-queue slots, una = next sn the sender of the
 * segment expects (everything below it was received). Sequence numbers and timestamps are
 * 32-bit and compared with signed differences, so they wrap.
 *
 * The engine has no clock and no socket: every call that needs time takes |now_ms| (any
 * monotonic millisecond clock; only its low 32 bits go on the wire), and packets leave
 * through the output callback given to kcp_new. Packets handed to kcp_input are borrowed.
 *
 * Driving it (the shell's loop):
 *   kcp_send(...)  then kcp_flush(k, now)          (kcptun flushes on every write)
 *   kcp_input(k, pkt, len, regular, now)            then drain kcp_recv
 *   arm a timer at kcp_next_deadline(k, now); when it fires call kcp_tick(k, now).
 * An idle engine (nothing in flight, no pending ACK, no window probe) reports UINT64_MAX.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KCP_OVERHEAD 24      /* segment header size */
#define KCP_CMD_PUSH 81
#define KCP_CMD_ACK 82
#define KCP_CMD_WASK 83
#define KCP_CMD_WINS 84
#define KCP_MTU_DEFAULT 1400 /* kcp-go default (before its header reserve) */
#define KCP_MTU_MIN 25       /* one header plus one payload byte */
#define KCP_MTU_MAX 1500     /* largest packet the engine builds */
#define KCP_WND_DEFAULT 32   /* default send and receive windows (segments) */
#define KCP_INTERVAL_DEFAULT 100
#define KCP_DEAD_LINK 20     /* transmissions of one segment that mark the link dead */

struct kcp;

/* Called for every packet the engine emits: |pkt| holds |len| <= mtu bytes, borrowed for the
 * call. The callback must not call back into the same kcp. */
typedef void kcp_output_fn(void *user, const uint8_t *pkt, size_t len);

/* One decoded segment header. */
struct kcp_seg_hdr {
    uint32_t conv;
    uint8_t cmd;
    uint8_t frg;
    uint16_t wnd;
    uint32_t ts;
    uint32_t sn;
    uint32_t una;
    uint32_t len; /* payload bytes following the header */
};

/* Reasons kcp_input drops (part of) a packet; indexes kcp_stats.drop[]. */
enum kcp_drop {
    KCP_DROP_SHORT,    /* packet shorter than one header, or trailing bytes < 24 */
    KCP_DROP_CONV,     /* segment with another conversation id (rest of packet dropped) */
    KCP_DROP_LEN,      /* declared len runs past the packet end (rest dropped) */
    KCP_DROP_CMD,      /* unknown cmd (rest dropped) */
    KCP_DROP_UNA,      /* una beyond anything we sent (field ignored, segment kept) */
    KCP_DROP_WINDOW,   /* PUSH at or beyond rcv_nxt + rcv_wnd (not acked, not stored) */
    KCP_DROP_ACK,      /* ACK for an sn never sent (ignored, no RTT sample) */
    KCP_DROP_NOMEM,    /* PUSH not stored for lack of memory */
    KCP_DROP_COUNT
};

/* Counters, cumulative since kcp_new. Names follow kcp-go's SNMP counters. */
struct kcp_stats {
    uint64_t in_segs;            /* InSegs: segments accepted by kcp_input */
    uint64_t out_segs;           /* OutSegs: segments emitted */
    uint64_t out_pkts;           /* packets handed to the output callback */
    uint64_t retrans_segs;       /* RetransSegs: fast + early + lost */
    uint64_t fast_retrans_segs;  /* FastRetransSegs: fastack >= resend */
    uint64_t early_retrans_segs; /* EarlyRetransSegs: fastack > 0 and no new data this flush */
    uint64_t ack_repeats;        /* ACKs sent a second time (kcp_set_ack_repeat) */
    uint64_t fec_hold_acked_segs; /* FEC hold on: segments acknowledged while fast-acked
                                   * and not retransmitted (typically rebuilt from parity) */
    uint64_t redundant_segs;     /* RedundantSegs (ktun): extra copies of a segment sent
                                  * with it for loss protection (pacing); the peer counts
                                  * each copy that arrives as a RepeatSegs */
    uint64_t lost_segs;          /* LostSegs: retransmission timeouts */
    uint64_t repeat_segs;        /* RepeatSegs: PUSH already received or outside the window */
    uint64_t in_errors;          /* KCPInErrors: kcp_input calls that returned an error */
    uint64_t una_reset;          /* segments saying the peer received nothing (una 0) after
                                  * it had acknowledged our first segments: a peer that
                                  * dropped our session and took a new one for the conv */
    uint64_t drop[KCP_DROP_COUNT]; /* dropped input by reason */
};

/* Creates an engine for conversation |conv| with kcp-go defaults (mtu 1400, windows 32/32,
 * interval 100, nodelay 0, resend 0, congestion control on, message mode). Packets go to
 * |output|(|user|, ...). Returns NULL on allocation failure. */
struct kcp *kcp_new(uint32_t conv, kcp_output_fn *output, void *user);
/* Frees |k| and every queued segment; NULL is allowed. */
void kcp_free(struct kcp *k);
/* Frees the spare segments |k| keeps for reuse (the next sends allocate again): for idle
 * sessions. */
void kcp_trim(struct kcp *k);

/* kcp-go NoDelay: |nodelay| != 0 selects the 30 ms minimum RTO and the x1.5 back-off (else
 * 100 ms and x2); |interval_ms| is clamped to 10..5000; |resend| > 0 enables fast retransmit
 * after that many later ACKs (0 disables); |nc| != 0 disables congestion control. A negative
 * argument leaves that setting unchanged. */
void kcp_set_nodelay(struct kcp *k, int nodelay, int interval_ms, int resend, int nc);
/* Sets the send and receive windows in segments; values <= 0 leave a window unchanged.
 * Returns 0 or ERR_NOMEM. */
int kcp_set_window(struct kcp *k, int sndwnd, int rcvwnd);
/* Sets the largest KCP packet the engine may emit (the caller has already subtracted its own
 * crypt/FEC header reserve, e.g. 1350 - 28 = 1322 gives an MSS of 1298). Returns 0, or
 * ERR_INVAL if |mtu| is outside KCP_MTU_MIN..KCP_MTU_MAX. */
int kcp_set_mtu(struct kcp *k, size_t mtu);
/* ktun pacing (not in kcp-go; the wire format is unchanged). On: the fixed send window and
 * the congestion window give way to common/pace.h's estimates: new data leaves at the pacing
 * rate while the bytes in flight stay below the pacer's cap (before its first rate sample:
 * the send window), and the sequence span in flight never exceeds the peer's advertised
 * window (so it may exceed the configured snd_wnd). Retransmissions are not delayed but spend
 * pacing budget. Loss recovery for application-limited flows (docs/latency.md): a hole an ACK
 * reveals is resent as that ACK arrives, once it has been out for the latest RTT (plus a
 * quarter of min RTT once the path has reordered, as RACK); segments sent with nothing left
 * queued go out with redundant copies, each in its own packet, as many as the measured loss
 * rate calls for (none on a clean path; counted in redundant_segs, the peer counts them as
 * RepeatSegs). Off (default): kcp-go behaviour. Switching restarts the estimates at
 * |now_ms|. */
void kcp_set_pacing(struct kcp *k, bool on, uint64_t now_ms);
/* Caps the pacing rate at |bytes_per_s| (kcptun --ratelimit; 0 = no cap). Only paced sending
 * honours it (kcp_set_pacing on). */
void kcp_set_rate_limit(struct kcp *k, uint64_t bytes_per_s);
/* ktun receive window growth (not in kcp-go; the wire format is unchanged): while the
 * application keeps up with reading, the receive window doubles when the peer is limited by
 * it (its data reaches the last quarter, or receive rounds stay as fast as the window doubles:
 * docs/latency.md), up to |max_wnd| segments (at most 65535, the wnd field); it never
 * shrinks. A kcp-go sender honours the larger window up to its own snd_wnd. 0 (default):
 * fixed. */
void kcp_set_rcv_growth(struct kcp *k, uint32_t max_wnd);
/* Asks a shared memory budget for receive window growth: the window would grow by |bytes|
 * (the new segments times the MSS). Returns how many of them the budget grants, 0..|bytes|;
 * what it grants stays taken until the engine is freed (the window never shrinks). */
typedef size_t kcp_rcv_grant_fn(void *user, size_t bytes);
/* Growth beyond the configured receive window is granted by |fn|(|user|, ...) from now on
 * (NULL: by kcp_set_rcv_growth's limit alone). The engine grows only by what is granted. */
void kcp_set_rcv_grant(struct kcp *k, kcp_rcv_grant_fn *fn, void *user);
/* ktun FEC hold (not in kcp-go; the wire format is unchanged). The caller's output path tells
 * the engine, through kcp_set_fec_group, which FEC group the packet under construction will
 * join. A segment sent in group g is then fast- or early-retransmitted only once a segment
 * sent in a later group has been acknowledged: until then the peer may still rebuild it
 * from g's parity, and a retransmission would only cost bandwidth. The hold applies while
 * more than |hold_min| segments are in flight and at a rate that fills |hold_min| of them
 * within one interval (the group size is a good value: a thinner flow fills its groups too
 * slowly to wait); timeouts are never held. 0 (default): off. */
void kcp_set_fec_hold(struct kcp *k, uint32_t hold_min);
/* ktun ACK repeat (not in kcp-go; the peer sees duplicate ACKs, which it ignores): each ACK
 * of a segment still above our una is sent once more with the next ACKs, so that a lost ACK
 * packet costs the peer no spurious retransmission. Off by default. */
void kcp_set_ack_repeat(struct kcp *k, bool on);
/* The FEC group number (wrapping, increasing by one per group) that the next packet handed to
 * the output callback will join. Called from the output path, also inside the callback. */
void kcp_set_fec_group(struct kcp *k, uint32_t group);
/* ktun adaptive FEC parity (not in kcp-go; sending fewer parity shards than configured is
 * legal for every receiver, which only recovers less). The number of parity shards, 0 ..
 * |parity_shards| (at most 16), for a group of |data_shards| data shards whose data took
 * |span_ms| to send: none while the sender is backlogged (it has queued, and the peer's
 * window admits, what it sends in an RTT plus the peer's ACK delay: its holes are resent
 * while data flows), none if that span exceeds the smoothed RTT (the ACK clock or the
 * redundant copies repair its losses before parity could arrive), otherwise the fewest that
 * leave a data shard unrepaired with probability <= 0.001 at the measured loss rate (none on
 * a clean path). kcp-go's sending, or before the first RTT sample: |parity_shards|. */
int kcp_fec_parity(struct kcp *k, int data_shards, int parity_shards, uint32_t span_ms);
/* Tells the engine that FEC group |group| (kcp_set_fec_group) closed with |parity| parity
 * shards: its segments' loss evidence then counts that protection (and their fast
 * retransmission is not held for parity that never comes when |parity| is 0). */
void kcp_fec_group_closed(struct kcp *k, uint32_t group, int parity);
/* FEC group |group| (kcp_set_fec_group) sent a parity shard carrying |bytes| bytes of
 * protected payload (its length less the FEC and KCP headers). Paced sending charges them to
 * the pacing budget like data (parity leaves when its group closes, so the bucket goes into
 * debt and the next data waits), and the group's segments carry shares of them that count as
 * delivered with their ACKs, as redundant copies do. No effect on kcp-go's sending. */
void kcp_fec_parity_sent(struct kcp *k, uint32_t group, size_t bytes);
/* FEC groups of |data_shards| data and |parity_shards| parity shards (either 0: no FEC); the
 * pacer counts the parity as overhead on the data (pace_set_overhead; kcp_fec_parity updates
 * it with the parity each group gets). */
void kcp_set_fec_shards(struct kcp *k, int data_shards, int parity_shards);
/* True if pacing is on. */
bool kcp_pacing(const struct kcp *k);
/* Stream mode (kcptun): writes are appended to the last unsent segment and frg is always 0.
 * Message mode (default): each kcp_send is one message of up to 255 fragments. */
void kcp_set_stream(struct kcp *k, bool stream);
/* ACK-only flush at the end of every kcp_input that queued ACKs (kcptun --acknodelay). */
void kcp_set_ack_nodelay(struct kcp *k, bool on);

/* Queues |len| bytes of |data| (copied). Returns 0, ERR_INVAL for |len| == 0, ERR_TOOBIG for a
 * message-mode message needing more than 255 fragments, or ERR_NOMEM. The engine accepts
 * everything it is given: use kcp_send_room to apply back-pressure. Data leaves on the next
 * kcp_flush or tick. */
int kcp_send(struct kcp *k, const uint8_t *data, size_t len);
/* Segments queued or in flight (kcp-go WaitSnd). */
size_t kcp_wait_snd(const struct kcp *k);
/* Bytes the caller may still queue before the window is full: kcp-go's writer blocks while
 * WaitSnd >= min(snd_wnd, rmt_wnd). Returns 0 when the writer should stop. */
size_t kcp_send_room(const struct kcp *k);

/* Feeds one received KCP packet (|len| bytes, borrowed). |regular| is false for packets
 * recovered by FEC (they update neither the remote window nor the RTT). Returns 0, or
 * ERR_PROTO after dropping a malformed packet or its malformed tail (counted in stats; the
 * segments before the bad one have been processed, as in kcp-go). May call the output
 * callback (immediate flush when our data got acknowledged, or ACK-only with ack-nodelay). */
int kcp_input(struct kcp *k, const uint8_t *pkt, size_t len, bool regular, uint64_t now_ms);
/* kcp_input for packets that may end in a segment of a command of the caller's, |stop_cmd|
 * (0..255; -1: none), which KCP would drop as unknown: that segment and what follows are
 * not KCP's. The engine takes the segments before it, as kcp_input would take them alone
 * (nothing at all when it is the first), and stores its offset in |*stop_off| (|len| when
 * there is none; found past a segment KCP dropped too). One walk over the packet serves
 * both. */
int kcp_input_until(struct kcp *k, const uint8_t *pkt, size_t len, bool regular,
                    uint64_t now_ms, int stop_cmd, size_t *stop_off);

/* Copies received data into |buf| (|cap| bytes). Stream mode: as many in-order bytes as fit.
 * Message mode: exactly one message. Returns the byte count, ERR_AGAIN if nothing is
 * readable, or ERR_TOOBIG if the next message does not fit in |cap|. */
ssize_t kcp_recv(struct kcp *k, uint8_t *buf, size_t cap);
/* Bytes kcp_recv would return with unlimited |cap| in stream mode (all readable bytes); in
 * message mode the size of the next complete message. 0 if nothing is readable. */
size_t kcp_recv_avail(const struct kcp *k);

/* Emits pending ACKs, window probes, new data and due retransmissions (kcp-go flush). */
void kcp_flush(struct kcp *k, uint64_t now_ms);
/* Absolute time of the next kcp_tick that has work to do, or UINT64_MAX if none. May be
 * <= |now_ms| (then tick at once). */
uint64_t kcp_next_deadline(const struct kcp *k, uint64_t now_ms);
/* Timer entry point: flushes if an interval tick, a retransmission or a probe is due. */
void kcp_tick(struct kcp *k, uint64_t now_ms);

/* The conversation id given to kcp_new. */
uint32_t kcp_conv(const struct kcp *k);
/* True once some segment has been transmitted KCP_DEAD_LINK times (kcp-go sets this state and
 * never acts on it; the caller decides). */
bool kcp_is_dead(const struct kcp *k);
/* Current retransmission timeout estimate and smoothed RTT, in ms. */
uint32_t kcp_rto(const struct kcp *k);
uint32_t kcp_srtt(const struct kcp *k);
/* Congestion window in segments (meaningful with congestion control on, nc = 0). */
uint32_t kcp_cwnd(const struct kcp *k);
/* The oldest sequence number the peer has not acknowledged cumulatively (una), and the next
 * one to be given to a segment that leaves (segments below it have been sent). */
uint32_t kcp_snd_una(const struct kcp *k);
uint32_t kcp_snd_nxt(const struct kcp *k);
/* The MSS: payload bytes per segment (mtu - 24). */
size_t kcp_mss(const struct kcp *k);
/* Segments waiting in the receive buffer (out of order) and receive queue (in order). */
size_t kcp_rcv_buf_count(const struct kcp *k);
size_t kcp_rcv_queue_count(const struct kcp *k);
/* Copies the counters. */
void kcp_get_stats(const struct kcp *k, struct kcp_stats *out);

/* Writes the 24-byte header |h| at |p| (at least KCP_OVERHEAD bytes). Returns p + 24. */
uint8_t *kcp_seg_hdr_encode(uint8_t *p, const struct kcp_seg_hdr *h);
/* Decodes a header at *|p| if 24 bytes fit before |end|: fills |h|, advances *|p| past the
 * header and returns 0; else returns ERR_PROTO. The payload length is not checked. */
int kcp_seg_hdr_decode(const uint8_t **p, const uint8_t *end, struct kcp_seg_hdr *h);

#endif
