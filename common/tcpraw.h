/* SPDX-License-Identifier: MIT */
/* Fake TCP (kcptun's --tcp, xtaci/tcpraw): segment codec and per-flow sequence bookkeeping. */
#ifndef KTUN_TCPRAW_H
#define KTUN_TCPRAW_H

/*
 * kcptun's --tcp carries each datagram as the payload of one TCP segment. A real TCP
 * connection is made first (connect on the client, listen/accept on the server) so that NATs
 * and firewalls see a normal handshake; after that the kernel's own segments are kept off the
 * wire by a firewall rule and the datagrams travel through raw sockets as PSH|ACK segments
 * whose sequence and acknowledgement numbers follow the flow.
 *
 * Wire facts (tcpraw 1.2.25 as in Debian's kcptun, and 1.2.32):
 *   - every data segment has PSH and ACK set; a receiver takes the payload of any PSH segment
 *     of a flow it dialled or accepted, whatever its seq, ack, window or options;
 *   - 1.2.25 sends 20-byte headers without options and a random window >= 0x8000;
 *     1.2.32 sends a 36-byte header (a timestamp option, window 65535). This codec accepts any
 *     data offset the segment holds and sends the 20-byte form, which both accept;
 *   - seq of a sent segment: the peer's latest acknowledgement plus the bytes sent since;
 *     ack: the peer's latest seq plus its payload length (plus one for a SYN).
 *
 * This module is pure: no sockets, no clock. The shell (common/rawtcp.c) feeds received
 * segments with the addresses the socket reported and sends the segments it emits.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCPRAW_FIN 0x01u
#define TCPRAW_SYN 0x02u
#define TCPRAW_RST 0x04u
#define TCPRAW_PSH 0x08u
#define TCPRAW_ACK 0x10u

/* TCP header sent (no options), IPv4 header built, largest TCP header accepted. */
#define TCPRAW_TCP_HDR 20u
#define TCPRAW_IP4_HDR 20u
#define TCPRAW_TCP_HDR_MAX 60u
/* Lowest window field sent (tcpraw 1.2.25 draws windows at random from here up). */
#define TCPRAW_WINDOW_MIN 0x8000u
/* Flows a table holds at most (the server's accepted connections). */
#define TCPRAW_MAX_FLOWS 4096u

/* An IP address and TCP port. IPv4 addresses occupy ip[0..3] (rest zero). */
struct tcpraw_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16];
    uint16_t port;
};

/* One parsed TCP segment; |payload| points into the parsed buffer. */
struct tcpraw_seg {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;      /* TCPRAW_* bits */
    uint16_t window;
    size_t hdr_len;     /* data offset in bytes, 20..60 */
    const uint8_t *payload;
    size_t len;         /* payload bytes */
};

/* Parses the TCP segment at |p| (|len| bytes, header + payload). Returns 0, or -1 when it is
 * shorter than its header or the data offset is below 5. Options are skipped, not read. */
int tcpraw_parse(const uint8_t *p, size_t len, struct tcpraw_seg *seg);

/* Parses an IPv4 packet (header + TCP segment) as a raw IPv4 socket delivers it: fills |src|
 * and |dst| (with the TCP ports) and |seg|. Returns 0, or -1 for anything that is not an
 * unfragmented IPv4 TCP packet whose lengths are consistent (a total length below the buffer
 * length trims the buffer). */
int tcpraw_parse_ip4(const uint8_t *p, size_t len, struct tcpraw_addr *src,
                     struct tcpraw_addr *dst, struct tcpraw_seg *seg);

/* The Internet checksum of the TCP segment |seg| (|len| bytes, checksum field included as it
 * is) with the pseudo-header of |src| -> |dst| (both of one family). A segment with a correct
 * checksum field sums to 0. */
uint16_t tcpraw_checksum(const struct tcpraw_addr *src, const struct tcpraw_addr *dst,
                         const uint8_t *seg, size_t len);

/* Writes a 20-byte TCP header and |plen| payload bytes into |out| (|cap| bytes) with a correct
 * checksum for |src| -> |dst|. Returns the segment length, or 0 when |cap| is too small. */
size_t tcpraw_build(uint8_t *out, size_t cap, const struct tcpraw_addr *src,
                    const struct tcpraw_addr *dst, uint32_t seq, uint32_t ack, uint8_t flags,
                    uint16_t window, const uint8_t *payload, size_t plen);

/* Writes an IPv4 header (DF, TTL 64, protocol TCP, checksum) for a |seg_len|-byte TCP
 * segment into |out| (TCPRAW_IP4_HDR bytes). |id| is the identification field. */
void tcpraw_ip4_header(uint8_t *out, const struct tcpraw_addr *src,
                       const struct tcpraw_addr *dst, size_t seg_len, uint16_t id);

/* True when |a| and |b| are the same family, address and port. */
bool tcpraw_addr_equal(const struct tcpraw_addr *a, const struct tcpraw_addr *b);

/* Where a flow is in its life. */
enum tcpraw_state {
    TCPRAW_CONNECTING, /* client: SYN sent by the kernel, waiting for the SYN-ACK */
    TCPRAW_OPEN,       /* established: segments are sent once seq and ack are known */
};

/* One fake-TCP flow (one real connection). */
struct tcpraw_flow {
    struct tcpraw_addr local, peer;
    enum tcpraw_state state;
    bool have_seq;       /* |snd_seq| learnt from an acknowledgement of the peer */
    bool have_ack;       /* |rcv_next| learnt from a SYN or data of the peer */
    uint32_t snd_seq;    /* seq of the next segment sent */
    uint32_t rcv_next;   /* ack sent: the peer's highest seq + length seen */
    uint16_t window;     /* window field sent */
    uint64_t last_rx_ms; /* last segment received (or the flow's creation) */
    int64_t tag;         /* the shell's (e.g. the real connection's descriptor) */
    struct tcpraw_flow *hnext; /* table chain */
};

/* Counters of a table. */
struct tcpraw_stats {
    uint64_t rx_segs;     /* segments accepted for a known flow */
    uint64_t rx_data;     /* payloads delivered */
    uint64_t rx_bad;      /* malformed segments dropped */
    uint64_t rx_foreign;  /* segments of no known flow, or not for this port */
    uint64_t rx_rst;      /* RST segments of a known flow (ignored, as tcpraw does) */
    uint64_t tx_segs;     /* segments emitted */
    uint64_t tx_notready; /* sends dropped: no flow, or seq/ack not known yet */
};

/* What tcpraw_input did with a segment. */
enum tcpraw_rx {
    TCPRAW_RX_DATA = 0,   /* a payload was delivered */
    TCPRAW_RX_CONTROL,    /* flow state updated, nothing delivered */
    TCPRAW_RX_UNKNOWN,    /* no flow for the source: a server should accept() and retry */
    TCPRAW_RX_IGNORED,    /* not for this port, or empty PSH: dropped */
    TCPRAW_RX_BAD,        /* malformed: dropped */
};

/* Output of a table. */
struct tcpraw_cb {
    void *user;
    /* Sends TCP segment |seg| (header + payload, checksum set) of |f| through the raw socket. */
    void (*emit)(void *user, const struct tcpraw_flow *f, const uint8_t *seg, size_t len);
    /* A datagram arrived on |f|. */
    void (*deliver)(void *user, const struct tcpraw_flow *f, const uint8_t *p, size_t len);
};

#define TCPRAW_BUCKETS 256u

/* The flows of one local port (a client's connection, or a server's listener). */
struct tcpraw {
    struct tcpraw_cb cb;
    uint16_t port;                        /* local TCP port */
    uint16_t port_hi;                     /* a server on a range: its last port (else port) */
    uint64_t rng;                         /* window generator state */
    struct tcpraw_flow *table[TCPRAW_BUCKETS];
    size_t nflows;
    struct tcpraw_stats st;
    uint8_t buf[TCPRAW_TCP_HDR + 2048];   /* segment being built */
    /* Optional (set after tcpraw_init): where the next segment of |f| is built, |*cap| bytes;
     * cb.emit then gets it in place, so a shell that queues segments copies none. NULL: |buf|. */
    uint8_t *(*slot)(void *user, const struct tcpraw_flow *f, size_t *cap);
};

/* Sets up |t| for local port |port|; |seed| seeds the window choice. A server listening on a
 * range of ports sets |port_hi| afterwards: segments to any port of [port, port_hi] are its. */
void tcpraw_init(struct tcpraw *t, uint16_t port, uint64_t seed, const struct tcpraw_cb *cb);

/* Frees every flow. */
void tcpraw_free(struct tcpraw *t);

/* Adds the flow |local| <-> |peer| in |state| (a client before connect: CONNECTING; a server
 * after accept: OPEN). An existing flow of |peer| is reset. Returns the flow, or NULL when the
 * table is full or out of memory. */
struct tcpraw_flow *tcpraw_flow_add(struct tcpraw *t, const struct tcpraw_addr *local,
                                    const struct tcpraw_addr *peer, enum tcpraw_state state,
                                    uint64_t now_ms);

/* The flow of |peer|, or NULL. */
struct tcpraw_flow *tcpraw_flow_find(const struct tcpraw *t, const struct tcpraw_addr *peer);

/* Removes the flow of |peer| (no-op when absent). */
void tcpraw_flow_remove(struct tcpraw *t, const struct tcpraw_addr *peer);

/* Handles one received segment |p| (|len| bytes of TCP header + payload) from |src| to |dst|
 * (addresses with the ports of the segment; the shell takes them from the IP header). A
 * client's SYN-ACK completes the handshake (an ACK is emitted, as the kernel's own is kept off
 * the wire); any ACK updates the seq sent, any PSH with a payload updates the ack sent and is
 * delivered. A RST is counted and otherwise ignored (the shell learns of a dead connection
 * from its real socket). */
enum tcpraw_rx tcpraw_input(struct tcpraw *t, const struct tcpraw_addr *src,
                            const struct tcpraw_addr *dst, const uint8_t *p, size_t len,
                            uint64_t now_ms);

/* tcpraw_input for a segment the shell parsed already (tcpraw_parse or tcpraw_parse_ip4). */
enum tcpraw_rx tcpraw_input_seg(struct tcpraw *t, const struct tcpraw_addr *src,
                                const struct tcpraw_addr *dst, const struct tcpraw_seg *seg,
                                uint64_t now_ms);

/* Sends datagram |p| (|len| bytes, at most 2048) to |peer| as one PSH|ACK segment. Returns 0,
 * or -1 when there is no open flow of |peer| or its seq/ack are not known yet (dropped and
 * counted, as a lost datagram). */
int tcpraw_send(struct tcpraw *t, const struct tcpraw_addr *peer, const uint8_t *p, size_t len);

/* Removes flows idle for |idle_ms| (for a server whose peers went away). Returns the number
 * removed; |gone| is called for each before it is freed (may be NULL). */
size_t tcpraw_expire(struct tcpraw *t, uint64_t now_ms, uint64_t idle_ms,
                     void (*gone)(void *user, const struct tcpraw_flow *f), void *user);

#endif
