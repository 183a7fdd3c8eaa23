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

/* Writes the printf-style message into |err| (NET_ERR_LEN bytes) unless |err| is NULL. */
void net_set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* Sets / returns the port of an IPv4 or IPv6 address (host byte order; 0 for others). */
void net_addr_set_port(struct net_addr *a, uint16_t port);
uint16_t net_addr_port(const struct net_addr *a);

/* Makes |fd| non-blocking. Returns 0 or ERR_INVAL. */
int net_set_nonblock(int fd, char *err);

/* shadowsocks-android's VPN mode (-V, __android_vpn): every socket that talks to the server
 * must be handed to the app to be exempted from the VPN, or its datagrams would loop back
 * into the tunnel. The app listens on the Unix stream socket |path| ("protect_path" in the
 * plugin's working directory); per socket the plugin connects, sends one byte with the fd
 * attached (SCM_RIGHTS), and reads one byte: 0 when the app protected it. NULL turns it off.
 * |path| is borrowed for the life of the process. */
void net_set_protect(const char *path);

/* Hands |fd| to the protect_path app (see net_set_protect), waiting at most 3 s. Returns 0,
 * or ERR_INVAL with the reason in |err|. */
int net_protect_fd(const char *path, int fd, char *err);

/* A new non-blocking, close-on-exec UDP socket of |family|; bound to |bind_to| when not NULL
 * (an IPv6 wildcard bind is made dual-stack). An unbound socket (one that talks to a server)
 * is protected first when net_set_protect is on, and not made if that fails. Returns the fd
 * or ERR_INVAL. */
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

/* Datagrams one GSO send carries at most (the kernel's UDP_MAX_SEGMENTS). */
#define NET_GSO_SEGS 64
/* Payload bytes one GSO send carries at most (below the 64 KiB of one IP packet). */
#define NET_GSO_BYTES 65000
/* Receive buffer of one message on a GRO socket: a coalesced read holds up to 64 KiB. */
#define NET_GRO_BUF 65536
/* Messages read per recvmmsg on a GRO socket (each may hold many datagrams). */
#define NET_GRO_MSGS 8

struct rawtcp;

/* A UDP socket with the kernel offloads it uses; owned by whoever opened the socket. Or, with
 * --tcp, a fake-TCP transport (common/rawtcp.h) that moves the same datagrams as TCP segments:
 * the calls below then hand them to it. */
struct net_udp {
    int fd;   /* the socket (for a fake-TCP transport: the descriptor to watch) */
    struct rawtcp *raw; /* the fake-TCP transport, NULL for UDP */
    bool gso; /* sends may coalesce datagrams with UDP_SEGMENT; cleared for good when the kernel
                 refuses it (a flush then sends them one by one) */
    bool gro; /* UDP_GRO is on: a read may return several datagrams of one size back to back */
};

/* Fills |u| for socket |fd| and turns on the offloads this kernel has: GSO sends when |gso|
 * (probed with a UDP_SEGMENT setsockopt) and GRO reads when |gro| (UDP_GRO). Never fails:
 * without them the socket sends and reads one datagram per message. */
void net_udp_init(struct net_udp *u, int fd, bool gso, bool gro);

/* Fills |u| for the fake-TCP transport |t| (which |u| then owns: see net_udp_close). */
void net_udp_init_raw(struct net_udp *u, struct rawtcp *t);

/* Closes the socket or the fake-TCP transport of |u| (fd becomes -1). */
void net_udp_close(struct net_udp *u);

/* Received datagrams of one net_recv_batch call; the caller owns it (zero it before the first
 * use, net_rbatch_free it at the end). Its buffers are allocated at the first read and reused:
 * NET_BATCH x NET_DGRAM_MAX bytes, or NET_GRO_MSGS x NET_GRO_BUF once a GRO socket is read. */
struct net_rbatch {
    uint8_t *arena;                  /* message buffers */
    size_t arena_cap;                /* bytes of |arena| */
    size_t slot;                     /* bytes per message in the last read */
    int slots;                       /* messages the last read could take */
    int nmsg;                        /* messages the last read returned */
    size_t mlen[NET_BATCH];          /* bytes of each message */
    size_t seg[NET_BATCH];           /* datagram size within each message (GRO) */
    struct net_addr from[NET_BATCH]; /* source of each message */
    uint64_t reads;                  /* net_recv_batch calls so far */
    int it_msg;                      /* iterator: current message */
    size_t it_off;                   /* iterator: offset in it */
};

/* Reads what is queued on |u| with one recvmmsg: up to NET_BATCH datagrams, or up to
 * NET_GRO_MSGS coalesced messages on a GRO socket. Returns the number of messages (> 0; when
 * it equals b->slots more may be queued), ERR_AGAIN when nothing is queued, ERR_NOMEM, or
 * ERR_INVAL on another error (errno kept). Take the datagrams with net_rbatch_next. Datagrams
 * longer than NET_DGRAM_MAX are cut to that length (kcp-go reads into 1500-byte buffers; they
 * then fail the CRC). */
int net_recv_batch(const struct net_udp *u, struct net_rbatch *b);

/* Steps through the datagrams of the last net_recv_batch: sets |*p| (inside |b|, valid until
 * the next read), |*len| and |*from|, and returns true; false once all were taken. */
bool net_rbatch_next(struct net_rbatch *b, uint8_t **p, size_t *len,
                     const struct net_addr **from);

/* Frees the buffers of |b| (which may then be read into again). */
void net_rbatch_free(struct net_rbatch *b);

/* Datagrams waiting to be sent with one sendmmsg; the caller owns it. */
struct net_sbatch {
    uint8_t buf[NET_BATCH][NET_DGRAM_MAX]; /* datagram bytes */
    size_t len[NET_BATCH];                 /* length of each datagram */
    struct net_addr to[NET_BATCH];         /* destination of each datagram */
    int n;                                 /* datagrams queued */
};

/* Appends a copy of |len| bytes (at most NET_DGRAM_MAX) for |to| to |b|, to be sent on |u|;
 * flushes first when full. Returns 0, or ERR_TOOBIG for an oversized datagram (dropped). */
int net_sbatch_add(struct net_udp *u, struct net_sbatch *b, const uint8_t *p, size_t len,
                   const struct net_addr *to);

/* Sends every queued datagram of |b| on |u| and empties it. With u->gso, runs of datagrams of
 * one size to one destination (the last of a run may be shorter) leave as one UDP_SEGMENT
 * message, which the kernel cuts into those same datagrams; up to NET_GSO_SEGS datagrams and
 * NET_GSO_BYTES bytes each. One sendmmsg carries all messages, repeated while it makes
 * progress. If the kernel refuses GSO (EIO, EINVAL, ENOPROTOOPT, EOPNOTSUPP), u->gso is
 * cleared and the datagrams go out one by one. Datagrams the kernel refuses otherwise (EAGAIN:
 * the socket buffer is full; or any other error) are dropped like packets lost on the wire,
 * which KCP recovers from. Returns the number of datagrams dropped. */
int net_sbatch_flush(struct net_udp *u, struct net_sbatch *b);

#endif
