/* SPDX-License-Identifier: MIT */
/* One KCP session's datagram stack: KCP + FEC + crypt, composed without any I/O. */
#ifndef KTUN_LINK_H
#define KTUN_LINK_H

/*
 * Sending:   link_send -> KCP (stream) -> output packet -> FEC encoder -> crypt seal -> datagram
 * Receiving: datagram -> crypt open -> FEC decoder -> KCP input (recovered: regular=false)
 *            -> link_recv
 *
 * A datagram is crypt head | [FEC header] | KCP packet | crypt tail, at most
 * |mtu| bytes, so KCP's own MTU is mtu - head - tail - FEC header (1350 - 20 - 8 = 1322, MSS
 * 1298 with kcptun's defaults).
 *
 * Time: |now_ms| is a monotonic millisecond clock (KCP timers, FEC expiry). The secure crypt
 * mode also needs the wall clock; it is now_ms + wall_offset_ms (see link_set_wall_offset).
 *
 * The crypt object is borrowed: one object may serve every link of a process (the secure
 * mode requires it on the server, since its replay table lives there).
 */

#include "common/kcp.h"
#include "fec/fec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct crypt;
struct link;

/* Receives each sealed datagram (|len| bytes, borrowed for the call) to send to the peer. */
typedef void link_output_fn(void *user, const uint8_t *dgram, size_t len);
/* Receives a one-line message worth logging once (e.g. an FEC (ds, ps) mismatch). */
typedef void link_log_fn(void *user, const char *msg);

struct link_config {
    int data_shards;       /* FEC --datashard (0 disables FEC) */
    int parity_shards;     /* FEC --parityshard (0 disables FEC) */
    size_t mtu;            /* largest datagram, --mtu (<= 1500) */
    int sndwnd, rcvwnd;    /* KCP windows in segments */
    int nodelay, interval_ms, resend, nc; /* KCP knobs (kcptun --mode) */
    bool ack_nodelay;      /* kcptun --acknodelay */
    bool message_mode;     /* false (kcptun): KCP stream mode */
    bool pace;             /* ktun pacing (kcp_set_pacing); false: kcp-go's fixed windows */
    bool no_fec_hold;      /* true: no FEC hold (kcp_set_fec_hold), kcp-go's fast retransmit */
    bool fec_fixed;        /* true: every group gets parity_shards parity shards; false (with
                            * pace): as many as the measured loss calls for (kcp_fec_parity) */
    uint64_t rate_limit;   /* bytes/s cap on the pacer (kcptun --ratelimit), 0 = none */
    int64_t rcv_budget;    /* with pace: bytes the receive window may grow to (--bufbudget;
                            * kcp_set_rcv_growth; a tunnel takes the growth from its shared
                            * budget, link_set_rcv_grant); 0: rcvwnd stays fixed */
    int64_t wall_offset_ms; /* wall clock minus now_ms, for the secure crypt mode */
    link_log_fn *log;      /* may be NULL */
    void *log_user;
};

struct link_stats {
    struct kcp_stats kcp;       /* the engine's counters */
    struct fec_stats fec;       /* the decoder's counters */
    uint64_t in_pkts;           /* datagrams given to link_input / link_input_payload */
    uint64_t in_bytes;          /* their bytes */
    uint64_t in_errs;           /* datagrams dropped: crypt open failed or FEC layer refused */
    uint64_t out_pkts;          /* datagrams emitted */
    uint64_t out_bytes;         /* their bytes */
    uint64_t fec_parity_out;    /* parity datagrams emitted */
    uint64_t fec_parity_skipped; /* parity shards of closed groups not sent (adaptive FEC) */
    uint64_t plain_ctrl_out;    /* FEC on: ACK/probe-only packets sent without the FEC layer */
    uint64_t seal_errs;         /* packets that could not be sealed (should stay 0) */
    uint64_t ext_out;           /* extension segments sent (docs/extensions.md) */
    uint64_t ext_in;            /* extension segments received */
    uint64_t ext_errs;          /* malformed extension segments dropped */
    uint64_t group_fill_out;    /* empty extension segments that closed an FEC group early */
};

/* Fills |cfg| with kcptun 20210922's client defaults: FEC 10/3, mtu 1350, windows 128/512,
 * mode fast (0, 30, 2, 1), stream mode; plus ktun pacing on. */
void link_config_default(struct link_config *cfg);

/* Creates the stack for conversation |conv|. |cfg| is copied; |crypt| is borrowed and must
 * outlive the link; datagrams go to |out|(|user|, ...). Returns NULL with *|err| set to
 * ERR_INVAL (mtu too small for the headers, bad FEC counts) or ERR_NOMEM; |err| may be NULL. */
struct link *link_new(uint32_t conv, const struct link_config *cfg, struct crypt *crypt,
                      link_output_fn *out, void *user, int *err);

/* Frees |l|; NULL is allowed. Sends nothing (kcptun sessions end silently). */
void link_free(struct link *l);
/* Gives memory kept for reuse back (kcp_trim): for idle sessions. */
void link_trim(struct link *l);

/* Feeds one raw UDP datagram: opens it in place (so |dgram| is modified), then as
 * link_input_payload. Returns 0, ERR_AUTH (crypt refused it: silent drop, counted), or
 * ERR_PROTO (FEC or KCP layer dropped it, counted). */
int link_input(struct link *l, uint8_t *dgram, size_t len, uint64_t now_ms);

/* Feeds the payload of a datagram the caller already opened with crypt_open (the server's
 * listener does so to learn the conv before it picks a session). */
int link_input_payload(struct link *l, const uint8_t *payload, size_t len, uint64_t now_ms);

/* Reads the routing facts of an opened payload: for FEC parity sets
 * *|is_parity| and nothing else; otherwise the conv and sn of the first KCP segment. Returns 0,
 * or ERR_PROTO if the payload is too short to hold them or is an out-of-band (0xF3) packet. */
int link_peek(const uint8_t *payload, size_t len, uint32_t *conv, uint32_t *sn,
              bool *is_parity);

/* Queues |len| bytes for the peer (KCP stream). Data leaves at the next link_flush or
 * link_tick: call link_flush once after a batch of sends. Returns 0 or an ERR_* of kcp_send. */
int link_send(struct link *l, const uint8_t *data, size_t len);
/* Bytes the caller may still queue before KCP's window is full (0: stop reading the source). */
size_t link_send_room(const struct link *l);
/* Segments queued or in flight. */
size_t link_wait_snd(const struct link *l);

/* Copies in-order received bytes into |buf| (|cap| bytes). Returns the count, or ERR_AGAIN. */
ssize_t link_recv(struct link *l, uint8_t *buf, size_t cap);
/* Bytes link_recv could return now. */
size_t link_recv_avail(const struct link *l);

/* Sends what is due now: ACKs, window probes, new data, retransmissions. */
void link_flush(struct link *l, uint64_t now_ms);
/* Absolute time of the next link_tick with work to do, UINT64_MAX when idle. */
uint64_t link_next_deadline(const struct link *l, uint64_t now_ms);
/* Timer entry point. */
void link_tick(struct link *l, uint64_t now_ms);

/* Updates the wall-clock offset (the shell refreshes it when the clocks drift apart). */
void link_set_wall_offset(struct link *l, int64_t wall_offset_ms);

uint32_t link_conv(const struct link *l);
/* True once KCP gave up on a segment (20 transmissions). */
bool link_is_dead(const struct link *l);
/* Smoothed RTT and RTO in ms. */
uint32_t link_srtt(const struct link *l);
uint32_t link_rto(const struct link *l);
/* KCP's una (oldest sequence number the peer has not acknowledged) and next sequence number
 * to send (kcp_snd_una, kcp_snd_nxt). */
void link_snd_seq(const struct link *l, uint32_t *una, uint32_t *nxt);
/* Copies all counters into |out|. */
void link_get_stats(const struct link *l, struct link_stats *out);

/* ---- extension segments (ktun ends only, common/ext.h, docs/extensions.md) ------------ */

/* Receives the records of one extension segment (|len| bytes, borrowed for the call);
 * |recovered|: its packet was rebuilt from FEC parity. */
typedef void link_ext_fn(void *user, const uint8_t *records, size_t len, bool recovered);

/* Where received extension segments go; without a handler they are dropped (counted in
 * ext_errs). The KCP segments in front of one always go to KCP. */
void link_set_ext(struct link *l, link_ext_fn *fn, void *user);

/* Most record bytes one extension segment carries: the KCP packet size minus its header. */
size_t link_ext_room(const struct link *l);

/* Between ktun ends, with FEC on: an FEC group that holds extension records (datagrams) is
 * completed with empty extension segments once it has been open for an eighth of the
 * smoothed RTT (2 ms at least), so its parity follows at once and a lost datagram is
 * rebuilt without waiting for later traffic to fill the group. Sparse datagrams then cost
 * their group's parity and fillers; dense traffic fills groups before the hold. Only for a
 * peer known to be ktun (a kcptun peer would count the fillers as input errors). */
void link_set_group_close(struct link *l, bool on);

/* Adaptive FEC parity (kcp_fec_parity) on or off: on only where link_config allows it (FEC,
 * pacing, not fec_fixed). A kcptun peer keeps the configured --ds/--ps on the wire: the
 * tunnel turns it on once the peer is known to be ktun (secure mode or the capability
 * exchange). */
void link_set_fec_adaptive(struct link *l, bool on);

/* Receive window growth (link_config.rcv_budget) is granted by |fn|(|user|, ...) from a
 * budget shared with other links (kcp_set_rcv_grant); NULL: rcv_budget alone bounds it. */
void link_set_rcv_grant(struct link *l, kcp_rcv_grant_fn *fn, void *user);

/* Queues |len| bytes of records (whole records, borrowed) for the peer. They leave in the
 * next KCP packet that has room for them, or in a packet of their own at the end of the next
 * link_flush or link_tick; either way as an FEC data shard. Never retransmitted. Returns 0,
 * or ERR_TOOBIG if |len| exceeds link_ext_room (nothing queued). */
int link_ext_queue(struct link *l, const uint8_t *rec, size_t len);

#endif
