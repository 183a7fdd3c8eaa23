/* SPDX-License-Identifier: MIT */
/* Pure core: the SOCKS5 server side of -D (RFC 1928): greeting, request, reply, UDP header. */
#ifndef KTUN_SOCKS5_H
#define KTUN_SOCKS5_H

#include "common/fwd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What a -D listener speaks with its local clients: no authentication (method 0; a client that
 * offers only other methods gets 0xff and is closed), the commands CONNECT (opened on the
 * server side through a stream with a target header, docs/forwards.md) and UDP ASSOCIATE
 * (common/socksudp.h, over the datagram channel); BIND
 * is refused with reply 7. Targets: IPv4, IPv6 and host names (resolved by the server). The
 * address types are SOCKS5's, which struct fwd_target shares.
 *
 * The parsers take the bytes received so far and return how many they used, ERR_AGAIN for a
 * proper beginning of a message, or ERR_PROTO. They never read past |len|.
 */

#define SOCKS5_VERSION 5
#define SOCKS5_NO_AUTH 0x00
#define SOCKS5_NO_METHOD 0xff
#define SOCKS5_CMD_CONNECT 1
#define SOCKS5_CMD_BIND 2
#define SOCKS5_CMD_UDP 3
#define SOCKS5_REP_CMD_UNSUPPORTED 7 /* the other replies are enum fwd_status */
#define SOCKS5_REQ_MAX (4 + 1 + 255 + 2)
#define SOCKS5_REPLY_MAX (4 + 16 + 2)
#define SOCKS5_UDP_HDR_MAX (4 + 1 + 255 + 2)

/* Parses the greeting (version 5, 1..255 methods). Returns its length and sets |*no_auth| if
 * method 0 is offered; ERR_AGAIN; ERR_PROTO (another version, no methods). */
int socks5_greeting_parse(const uint8_t *p, size_t len, bool *no_auth);

/* The method selection reply for a greeting. */
void socks5_method_reply(bool no_auth, uint8_t out[2]);

struct socks5_request {
    uint8_t cmd;              /* SOCKS5_CMD_* as sent */
    uint8_t rep;              /* 0: go on; else the reply code to refuse it with */
    struct fwd_target target; /* FWD_ATYP_IPV4, _IPV6 or _NAME (when rep is 0) */
};

/* Parses a request. Returns its length with |r| filled: r->rep is 0 for CONNECT and UDP
 * ASSOCIATE with a usable target, SOCKS5_REP_CMD_UNSUPPORTED for BIND or an unknown command,
 * FWD_BAD_ATYP for an unknown address type (then the length is |len|: the rest cannot be
 * framed), FWD_FAIL for a host name with bytes no name has or an empty one. Returns ERR_AGAIN,
 * or ERR_PROTO for another version or a non-zero reserved byte. A port of 0 is accepted (UDP
 * ASSOCIATE clients send it). */
int socks5_request_parse(const uint8_t *p, size_t len, struct socks5_request *r);

/* Writes a reply with code |rep| and the bound address |bnd| (IPv4 or IPv6; NULL or another
 * type: 0.0.0.0:0) into |out| (SOCKS5_REPLY_MAX bytes). Returns its length. */
size_t socks5_reply_encode(uint8_t rep, const struct fwd_target *bnd, uint8_t *out);

/* Parses the header of a UDP ASSOCIATE datagram (RSV RSV FRAG ATYP ADDR PORT). Returns the
 * header's length (the payload follows) with |t| filled, or ERR_PROTO: short, a non-zero
 * reserved field, a fragment (FRAG != 0: ktun does not reassemble), an unknown address type,
 * a bad name, port 0. */
int socks5_udp_parse(const uint8_t *p, size_t len, struct fwd_target *t);

/* Writes the header for a datagram from |t| into |out| (|cap| bytes, SOCKS5_UDP_HDR_MAX
 * suffice). Returns its length, or ERR_INVAL. */
int socks5_udp_encode(const struct fwd_target *t, uint8_t *out, size_t cap);

#endif
