/* SPDX-License-Identifier: MIT */
/* libev shell: one session, a pure struct tunnel with its UDP path, timer and TCP streams. */
#ifndef KTUN_SESS_H
#define KTUN_SESS_H

#include "common/log.h"
#include "common/net.h"
#include "common/roam.h"
#include "common/shell.h"
#include "common/stream.h"
#include "common/tunnel.h"

struct udpfwd_sess;

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Data path of one session (the tunnel core does everything between the two ends):
 *
 *   TCP --read--> tunnel_stream_write --> tunnel --> datagrams --> UDP
 *   UDP --> tunnel_input --> tunnel --> on_deliver --> tunnel_stream_read --> TCP
 *
 * The session owns its timer (armed at tunnel_next_deadline) and, on the client, its UDP
 * socket; a server session borrows the listener. Role-only fields live in wrappers that
 * embed struct sess as their first member (client/client.c, server/server.c).
 */

/* One session: the tunnel, its UDP path, its timer and its streams. */
/* Client whose server is ktun (so it follows a new address, docs/roaming.md): with data or a
 * keepalive outstanding and nothing from the server for a few retransmission timeouts, the
 * session moves to a new UDP socket (a new source port); after a few such moves without an
 * answer the server is taken for gone (restarted, or unreachable) and the session is closed
 * at once, so that new connections get a new session instead of waiting for the keepalive.
 * The rule and its numbers are roam_path's (common/roam.h). */
/* Client --hop: datagrams from the previous server port are still taken this long. */
#define SESS_HOP_GRACE_MS 3000u

/* Datagrams a session emitted while a candidate from a new address was fed (server roaming,
 * docs/roaming.md): they go where the rule decides. */
#define SESS_HOLD_MAX 32
struct sess_hold {
    size_t n;                               /* datagrams held */
    size_t len[SESS_HOLD_MAX];
    uint8_t data[SESS_HOLD_MAX][NET_DGRAM_MAX];
};

struct sess {
    struct shell *sh;                 /* process */
    struct sess *prev, *next;         /* shell list */
    struct net_udp *udp;              /* UDP socket (&own_udp, or the server's listener) */
    struct net_udp own_udp;           /* client: the session's own socket */
    bool own_fd;                      /* client: the socket belongs to the session */
    ev_io udp_io;                     /* client: readable UDP socket */
    ev_timer timer;                   /* the one timer: the tunnel's deadline */
    uint64_t timer_due_ms;            /* when it was armed to fire (UINT64_MAX: not armed) */
    struct net_addr peer;             /* where datagrams go */
    bool peer_locked;                 /* client: first reply fixed the source address */
    uint32_t conv;                    /* KCP conversation id */
    struct tunnel *tun;               /* link + compression + mux */
    struct stream *streams;           /* live streams */
    size_t nstreams;                  /* length of |streams| */
    uint64_t created_ms;              /* shell_now_ms() at creation */
    bool in_pump;                     /* re-entrancy guard of sess_pump */
    uint64_t refused_logged;          /* peer streams refused (--maxstreams) already logged */
    struct log_limit refused_log;     /* one such line per 10 s */
    struct roam roam;                 /* server: following the peer to a new address */
    bool path_client;                 /* client with its own UDP socket: may replace its path
                                         once the server is known to be ktun */
    struct roam_path path;            /* client: is the path alive? */
    struct net_addr prev_peer;        /* client --hop: the server port before the last hop */
    uint64_t prev_until_ms;           /* ... accepted until then */
    uint64_t hops;                    /* client --hop: port changes */
    struct log_limit hop_log;         /* one line about hops per 60 s */
    struct sess_hold *hold;           /* set while a candidate is fed: output is held there */
    struct log_limit move_log;        /* server: one line about moves per 10 s */
    uint64_t moves_logged;            /* roam.moves already logged */
    bool heard;                       /* a smux frame from the peer arrived */
    struct udpfwd_sess *uflows;       /* server: the session's UDP flows (common/udpfwd.c) */
    char name[NET_ADDR_STRLEN + 24];  /* "conv 1234 peer 1.2.3.4:5" for logs */
};

/* Creates a session with |conv| talking to |peer| over UDP socket |udp|, in a zeroed block of
 * |size| bytes (>= sizeof(struct sess)) that starts with the struct sess: a role wraps it
 * with its own fields. With |own_fd| the session keeps a copy of |*udp|, watches the socket
 * for datagrams and closes it with the session (also when creation fails); otherwise |udp| is
 * borrowed (the server's listener) and must outlive the session. Returns the session or NULL
 * (logged). */
struct sess *sess_new(struct shell *sh, size_t size, struct net_udp *udp, bool own_fd,
                      const struct net_addr *peer, uint32_t conv);

/* Feeds one raw datagram (client path: opened by the link). */
void sess_input_raw(struct sess *s, uint8_t *dgram, size_t len);

/* Feeds one payload already opened by the crypt (server path). */
void sess_input_payload(struct sess *s, const uint8_t *payload, size_t len);

/* Moves data after input or local events, re-arms the timer, and frees the session if it
 * died. Call once after a batch of sess_input_* calls. Returns false if |s| was freed. */
bool sess_pump(struct sess *s);

/* Server roaming (docs/roaming.md). Feeds |payload|, which came from an address other than the
 * session's peer and carries the session's conv, with the session's output held in |h|,
 * and returns the rule's verdict. |authenticated|: the crypt verified the datagram. The
 * caller then applies a ROAM_MOVE (sess_set_peer, its own address table) and calls
 * sess_hold_release. */
enum roam_verdict sess_input_candidate(struct sess *s, const uint8_t *payload, size_t len,
                                       bool authenticated, struct sess_hold *h);

/* Sends what |h| holds to the session's peer; with |probe_to|, the first
 * ROAM_PROBE_MAX_DGRAMS also to |probe_to| over |probe_udp|. Empties |h|. */
void sess_hold_release(struct sess *s, struct sess_hold *h, struct net_udp *probe_udp,
                       const struct net_addr *probe_to);

/* Client --hop: sends to |to| (another port of the server) from now on; datagrams from the
 * previous port are still taken for SESS_HOP_GRACE_MS. */
void sess_hop(struct sess *s, const struct net_addr *to);

/* Makes |peer| (reached over |udp|) the session's reply address and logs the move (at most
 * one line per 10 s per session). */
void sess_set_peer(struct sess *s, struct net_udp *udp, const struct net_addr *peer);

/* Closes the session and frees it: every stream, the watchers, the socket if owned, the
 * tunnel. Logs |reason|. |s| is invalid afterwards. */
void sess_close(struct sess *s, const char *reason);

#endif
