/* SPDX-License-Identifier: MIT */
/* Fake-TCP transport (--tcp): real TCP handshake, datagrams as raw TCP segments. */
#ifndef KTUN_RAWTCP_H
#define KTUN_RAWTCP_H

/*
 * A datagram transport that a session uses in place of a UDP socket (see struct net_udp): the
 * shell moves datagrams with net_recv_batch and net_sbatch_*, which hand them to this module
 * when the socket is a fake-TCP one. Wire format and sequence bookkeeping: common/tcpraw.h;
 * the firewall rules that keep the kernel quiet: common/fwrule.h.
 *
 * Client (rawtcp_dial): one real TCP connection to the server from a fresh local port, one raw
 * socket whose BPF filter passes segments for that port. The connection is made again (new
 * port, after RAWTCP_RETRY_MS) when it fails or the server closes it.
 * Server (rawtcp_listen): a TCP listener on the port, raw sockets for IPv4 and (on an IPv6
 * address) IPv6; each accepted connection is a flow whose peer address is the datagram source
 * the sessions see.
 *
 * Everything is non-blocking and one descriptor (an epoll set of the sockets, rawtcp_fd)
 * tells the event loop when to call rawtcp_recv_batch, which also accepts connections and
 * reads (and throws away) whatever arrives on the real connections.
 */

#include "common/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wait before a client makes its connection again. */
#define RAWTCP_RETRY_MS 1000u
/* A server closes a connection whose peer sent nothing for this long. */
#define RAWTCP_IDLE_MS 120000u
/* --tcp auto: a path silent this long while datagrams go out is given up. */
#define RAWTCP_AUTO_DEAD_MS 4000u

struct rawtcp;

/* Counters of a transport (for logs and tests). */
struct rawtcp_stats {
    uint64_t rx_dgrams, tx_dgrams; /* datagrams delivered / sent */
    uint64_t tx_dropped;           /* datagrams dropped (no flow yet, or the kernel refused) */
    uint64_t rx_dropped;           /* segments dropped (malformed, foreign) */
    uint64_t connects, accepts;    /* real connections made / accepted */
};

/* Checks once per process and family that --tcp can work here (root, firewall tool) and
 * removes rules left by a ktun that died. Returns 0, or ERR_INVAL with a one-line reason in
 * |err| (NET_ERR_LEN bytes). */
int rawtcp_prepare(int family, char *err);

/* Client: starts the connection to |remote|. |sockbuf| > 0 sets the raw socket's buffers.
 * Returns the transport, or NULL with the reason in |err|. */
struct rawtcp *rawtcp_dial(const struct net_addr *remote, int sockbuf, char *err);

/* Client with --tcp auto: datagrams go over UDP or fake TCP, starting with the path that the
 * last switch of the process chose (UDP at first); a path that answers nothing for
 * RAWTCP_AUTO_DEAD_MS while datagrams go out is given up for the other (logged). What counts
 * as an answer is the session's to say (rawtcp_path_answered): a datagram from the server is
 * not one by itself (a server whose acknowledgements never arrive keeps resending its data).
 * Datagrams are taken from both paths. Returns the transport, or NULL with the reason in
 * |err|. */
struct rawtcp *rawtcp_dial_auto(const struct net_addr *remote, int sockbuf, char *err);

/* Client: replaces the real connection by a new one to |remote| (the same address family),
 * from a new local port with its own rule, at once: the path replacement of a session whose
 * path died, and --hop (docs/roaming.md). Datagrams of the old connection still on their way
 * are lost (KCP resends). With --tcp auto on its UDP path only the address changes. Returns
 * 0, or an ERR_* with the reason in |err| (then the transport retries after
 * RAWTCP_RETRY_MS). */
int rawtcp_redial(struct rawtcp *t, const struct net_addr *remote, char *err);

/* --tcp auto: the server acknowledged what the session sent (or nothing was outstanding): the
 * path in use works. */
void rawtcp_path_answered(struct rawtcp *t);

/* True for a --tcp auto transport. */
bool rawtcp_is_auto(const struct rawtcp *t);

/* Server: listens on |local| (an IPv6 wildcard also takes IPv4). Returns the transport, or
 * NULL with the reason in |err|. */
struct rawtcp *rawtcp_listen(const struct net_addr *local, int sockbuf, char *err);

/* Server on every port from |local|'s to |port_hi| (kcptun's -l :MIN-MAX): a TCP listener
 * per port, one raw socket filter and one firewall rule for the range. */
struct rawtcp *rawtcp_listen_range(const struct net_addr *local, uint16_t port_hi, int sockbuf,
                                   char *err);

/* The descriptor to watch for readability. */
int rawtcp_fd(const struct rawtcp *t);

/* Handles what is pending (connections, real-socket reads, raw segments) and fills |b| with
 * received datagrams; net_recv_batch calls it with |b| emptied and its NET_BATCH slots of
 * NET_DGRAM_MAX bytes reserved. Returns their number (> 0) or ERR_AGAIN. */
int rawtcp_recv_batch(struct rawtcp *t, struct net_rbatch *b);

/* Queues datagram |p| (|len| bytes) for |to| as one segment. Returns 0, or -1 when it was
 * dropped (no established flow to |to| yet). rawtcp_flush sends what is queued. */
int rawtcp_send(struct rawtcp *t, const uint8_t *p, size_t len, const struct net_addr *to);

/* Sends the queued segments (one sendmmsg per address family); returns how many the kernel
 * refused (dropped, as lost on the wire) since the last flush. */
int rawtcp_flush(struct rawtcp *t);

/* Counters. */
void rawtcp_stats(const struct rawtcp *t, struct rawtcp_stats *out);

/* Closes every socket and removes the firewall rules. NULL is a no-op. */
void rawtcp_close(struct rawtcp *t);

#endif
