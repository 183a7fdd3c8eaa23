/* SPDX-License-Identifier: MIT */
/* libev shell: UDP forwards over the datagram channel (docs/extensions.md, README). */
#ifndef KTUN_UDPFWD_H
#define KTUN_UDPFWD_H

/*
 * Client (-U [bind:]port:host:hostport): each forward is a UDP socket; every source address
 * that sends to it is one flow, carried by a session the client picks. The target travels
 * with the flow's datagrams until the server confirms the flow (EXT_FLOW_OPEN). Replies go
 * back to the source from the forward's socket.
 *
 * Server: a datagram naming a target opens a flow: the target must be the server's -t target
 * or admitted by --allow; a refused one is logged once per peer and target per
 * UDPFWD_REFUSE_LOG_MS and answered with EXT_FLOW_CLOSE. Each open flow is a connected UDP
 * socket towards its target. Flows close after --udpidle seconds without a datagram, and
 * --udpflows per session and --udpflowsall in all limit them (docs/extensions.md).
 *
 * Nothing is queued in the process: a datagram is sent on at once or dropped and counted
 * (SNMP DgramDropped).
 */

#include <stdbool.h>
#include <stdint.h>

struct config;
struct sess;
struct shell;
struct tunnel_dgram;

#define UDPFWD_REFUSE_LOG_MS 60000u /* one line per peer and target this often */
#define UDPFWD_LOOKUPS_MAX 64       /* flows waiting for their target's name, in all */
#define UDPFWD_QUEUE_MAX 32         /* datagrams held per flow while its name is looked up */

/* Client: opens the -U forwards of |cfg|; new flows take the session |pick| returns (may
 * create one; NULL: none available, the datagram is dropped). Returns 0, or -1 after
 * logging why (a socket could not be bound). Nothing happens without -U. */
int udpfwd_client_start(struct shell *sh, const struct config *cfg,
                        struct sess *(*pick)(struct shell *sh));

/* Server: prepares the flow table limits and the allow-list of |cfg|. Returns 0 or -1
 * (logged). */
int udpfwd_server_start(struct shell *sh, const struct config *cfg);

/* Closes every forward and flow and frees the state (shell_stop calls it). */
void udpfwd_stop(struct shell *sh);
/* Gives the pages of the (idle) datagram read buffer back (shell_drop_pages); nothing without
 * UDP forwarding. */
void udpfwd_trim(struct shell *sh);

/* A datagram of session |s| arrived (the tunnel's on_dgram; runs inside tunnel_input). */
void udpfwd_dgram(struct sess *s, const struct tunnel_dgram *d);

/* The peer of |s| opened or closed flow |flow| (EXT_FLOW_OPEN / EXT_FLOW_CLOSE). */
void udpfwd_flow(struct sess *s, uint8_t type, uint32_t flow);

/* Session |s| is going: close its flows. */
void udpfwd_sess_gone(struct sess *s);

#endif
