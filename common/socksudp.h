/* SPDX-License-Identifier: MIT */
/* libev shell: SOCKS5 UDP ASSOCIATE of the client's -D over the datagram channel. */
#ifndef KTUN_SOCKSUDP_H
#define KTUN_SOCKSUDP_H

/*
 * An association (RFC 1928, section 7) is a UDP relay socket on the client, bound to the
 * address the SOCKS5 client reached over TCP, living as long as that TCP connection. Every
 * datagram the SOCKS5 client sends to it carries its target in a SOCKS5 UDP header; each
 * target of an association is one flow of the datagram channel (docs/extensions.md), so the
 * server checks it against its allow-list like a -U target, and replies come back with the
 * header of their flow's target. Only datagrams from the TCP client's IP address are relayed;
 * fragments (FRAG != 0) are dropped. Flow ids of associations start at SOCKSUDP_FLOW_BASE,
 * apart from -U's.
 */

#include <stdbool.h>
#include <stdint.h>

struct sess;
struct tunnel_dgram;

#define SOCKSUDP_FLOW_BASE 0x80000000u
#define SOCKSUDP_FLOWS_MAX 256 /* targets one association may have at once */

/* Starts an association on session |s| for the SOCKS5 client on TCP socket |tcp_fd|, which it
 * owns from now on: sends the SOCKS5 reply (the relay's address, or a failure) and closes it
 * with the association. Returns 0, or -1 (refused; |tcp_fd| closed). */
int socksudp_associate(struct sess *s, int tcp_fd);

/* A datagram of session |s|: true if its flow is an association's (then it was handled);
 * always false on the server. */
bool socksudp_dgram(struct sess *s, const struct tunnel_dgram *d);

/* EXT_FLOW_OPEN / EXT_FLOW_CLOSE for |flow| of |s|: true if the flow is an association's. */
bool socksudp_flow(struct sess *s, uint8_t type, uint32_t flow);

/* Session |s| is going: its associations close. */
void socksudp_sess_gone(struct sess *s);

/* Closes every association (shutdown). */
void socksudp_close_all(void);

#endif
