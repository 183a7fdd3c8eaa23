/* SPDX-License-Identifier: MIT */
/* libev shell: one session, a pure struct tunnel with its UDP path, timer and TCP streams. */
#ifndef KTUN_SESS_H
#define KTUN_SESS_H

#include "common/log.h"
#include "common/net.h"
#include "common/shell.h"
#include "common/stream.h"
#include "common/tunnel.h"

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
struct sess {
    struct shell *sh;                 /* process */
    struct sess *prev, *next;         /* shell list */
    struct net_udp *udp;              /* UDP socket (&own_udp, or the server's listener) */
    struct net_udp own_udp;           /* client: the session's own socket */
    bool own_fd;                      /* client: the socket belongs to the session */
    ev_io udp_io;                     /* client: readable UDP socket */
    ev_timer timer;                   /* the one timer: the tunnel's deadline */
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

/* Closes the session and frees it: every stream, the watchers, the socket if owned, the
 * tunnel. Logs |reason|. |s| is invalid afterwards. */
void sess_close(struct sess *s, const char *reason);

#endif
