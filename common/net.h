/* SPDX-License-Identifier: MIT */
/* Socket helpers for the I/O shell: address parsing, non-blocking UDP/TCP, options, batching. */
#ifndef KTUN_NET_H
#define KTUN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Size of the |err| buffers the helpers below fill (anet style; every |err| may be NULL). */
#define NET_ERR_LEN 256
/* Text form of an address, "1.2.3.4:5" or "[::1]:5", fits in this many bytes. */
#define NET_ADDR_STRLEN 64
/* Largest datagram read or written (kcp-go reads into 1500-byte buffers). */
#define NET_DGRAM_MAX 1500
/* Datagrams moved per recvmmsg/sendmmsg call. */
#define NET_BATCH 32

/* An address with its length, as the socket calls take it. */
struct net_addr {
    struct sockaddr_storage ss; /* IPv4 or IPv6 socket address */
    socklen_t len;              /* meaningful bytes of |ss| */
};

/* Parses and resolves |hostport| ("host:port", "[v6]:port", ":port"). An empty host means every
 * local address when |passive| (the IPv6 wildcard, which also accepts IPv4, when the host has
 * IPv6; else 0.0.0.0) and the loopback otherwise. The first address getaddrinfo returns wins.
 * Returns 0 and fills |out|, or ERR_INVAL with the reason in |err|. */
int net_resolve(const char *hostport, bool passive, struct net_addr *out, char *err);

/* Writes the text form of |a| into |buf| (|cap| bytes, NET_ADDR_STRLEN suffice); returns |buf|.
 * IPv4-mapped IPv6 addresses print as IPv4. */
const char *net_addr_str(const struct net_addr *a, char *buf, size_t cap);

/* True when |a| and |b| hold the same family, address and port. */
bool net_addr_equal(const struct net_addr *a, const struct net_addr *b);

/* Hash of family, address and port (for session tables). */
uint32_t net_addr_hash(const struct net_addr *a);

/* Makes |fd| non-blocking. Returns 0 or ERR_INVAL. */
int net_set_nonblock(int fd, char *err);

/* A new non-blocking, close-on-exec UDP socket of |family|; bound to |bind_to| when not NULL
 * (an IPv6 wildcard bind is made dual-stack). Returns the fd or ERR_INVAL. */
int net_udp_socket(int family, const struct net_addr *bind_to, char *err);

/* A non-blocking TCP listening socket bound to |a| with SO_REUSEADDR. Returns the fd or
 * ERR_INVAL. */
int net_tcp_listen(const struct net_addr *a, int backlog, char *err);

/* Starts a non-blocking TCP connect to |a| (TCP_NODELAY set). Returns the fd (the connect may
 * still be in progress: wait for writability, then net_sock_error) or ERR_INVAL. */
int net_tcp_connect(const struct net_addr *a, char *err);

/* Starts a non-blocking connect to the Unix stream socket at |path|. Returns the fd (maybe
 * still connecting, as for net_tcp_connect) or ERR_INVAL. */
int net_unix_connect(const char *path, char *err);

/* Accepts one connection from listening |lfd| as a non-blocking, close-on-exec fd with
 * TCP_NODELAY. Fills |peer| when not NULL. Returns the fd, ERR_AGAIN when nothing is pending
 * (or on a transient error such as ECONNABORTED), ERR_LIMIT when the process or system is out
 * of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays
 * pending), or ERR_INVAL. */
int net_tcp_accept(int lfd, struct net_addr *peer, char *err);

/* Pending error of |fd| (SO_ERROR): 0 or an errno value. */
int net_sock_error(int fd);

/* Sets SO_RCVBUF and SO_SNDBUF of |fd| to |bytes| (trying the FORCE variants first, which need
 * CAP_NET_ADMIN). Returns 0 or ERR_INVAL. */
int net_set_sockbuf(int fd, int bytes, char *err);

/* Sets the DSCP of |fd| of |family|: IP_TOS = dscp << 2 for IPv4, IPV6_TCLASS = dscp for IPv6
 * (kcptun's mapping; an IPv6 socket also sets IP_TOS for IPv4-mapped peers, ignoring failure).
 * Returns 0 or ERR_INVAL. */
int net_set_dscp(int fd, int family, int dscp, char *err);

/* Received datagrams of one net_recv_batch call; the caller owns it (it is large: embed or
 * allocate it once per socket owner). */
struct net_rbatch {
    uint8_t buf[NET_BATCH][NET_DGRAM_MAX]; /* datagram bytes */
    size_t len[NET_BATCH];                 /* length of each datagram */
    struct net_addr from[NET_BATCH];       /* source of each datagram */
    int n;                                 /* datagrams held after the last call */
};

/* Reads up to NET_BATCH datagrams from |fd| with one recvmmsg. Returns the count (> 0),
 * ERR_AGAIN when nothing is queued, or ERR_INVAL on another error (errno kept). Datagrams
 * longer than NET_DGRAM_MAX are truncated (kcp-go does the same; they then fail the CRC). */
int net_recv_batch(int fd, struct net_rbatch *b);

/* Datagrams waiting to be sent with one sendmmsg; the caller owns it. */
struct net_sbatch {
    uint8_t buf[NET_BATCH][NET_DGRAM_MAX]; /* datagram bytes */
    size_t len[NET_BATCH];                 /* length of each datagram */
    struct net_addr to[NET_BATCH];         /* destination of each datagram */
    int n;                                 /* datagrams queued */
};

/* Appends a copy of |len| bytes (at most NET_DGRAM_MAX) for |to| to |b|; flushes first when
 * full. Returns 0, or ERR_TOOBIG for an oversized datagram (dropped). */
int net_sbatch_add(int fd, struct net_sbatch *b, const uint8_t *p, size_t len,
                   const struct net_addr *to);

/* Sends every queued datagram of |b| (one sendmmsg, repeated while it makes progress) and
 * empties it. Datagrams the kernel refuses (EAGAIN: the socket buffer is full; or any other
 * error) are dropped like packets lost on the wire, which KCP recovers from. Returns the
 * number of datagrams dropped. */
int net_sbatch_flush(int fd, struct net_sbatch *b);

#endif
