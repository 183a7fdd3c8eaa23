/* SPDX-License-Identifier: MIT */
/* libev shell: one KCP session (UDP + link + comp + mux + timer) and its TCP-backed streams. */
#ifndef KTUN_SESS_H
#define KTUN_SESS_H

#include "common/link.h"
#include "common/mux.h"
#include "common/net.h"
#include "common/ring.h"
#include "common/snmp.h"
#include "crypto/crypt.h"

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Data path of one session:
 *
 *   TCP --read--> mux_stream_write --frames--> comp_encode --> link_send --> datagrams --> UDP
 *   UDP --> link_input --> link_recv --> comp decoder --> mux_input --> mux_stream_read --> TCP
 *
 * Back-pressure: a TCP socket is read only while the link's send queue has room (so a full KCP
 * send window stops reading TCP), and link_recv is drained only while mux accepts input; mux
 * stops accepting once its receive budget (--smuxbuf) is used by data that streams have not
 * read, and a stream is read only while its TCP socket takes the bytes. A TCP peer that stops
 * reading therefore closes the KCP receive window instead of growing memory.
 *
 * Time: every call takes loop_now_ms(), the single clock. Each session has one timer armed at
 * the earliest of link_next_deadline and mux_next_deadline; nothing polls idle sessions.
 */

/* Per-stream ring of bytes on their way to the TCP socket. */
#define SESS_STREAM_RING 16384
/* Once one direction of a stream has ended, the other may go on this long (seconds) before
 * both are closed. smux has no reset: a FIN is all the peer learns when an application goes
 * away, so a half-closed stream must not live forever (newer kcptun's --closewait). */
#define SESS_CLOSE_WAIT_S 30.0
/* Bytes read from one TCP socket per read() call. */
#define SESS_TCP_CHUNK 32768
/* TCP reads per readiness event while the socket has more (fewer loop turns and sends). */
#define SESS_TCP_READS 4
/* Bytes taken from link_recv at a time (kept until mux consumes them). */
#define SESS_RX_BUF 16384
/* Datagram batches read per readiness event before yielding to other watchers. */
#define SESS_RX_BATCHES 8

/* The single clock of the cores: CLOCK_MONOTONIC in milliseconds, so that a step of the
 * system clock (NTP at boot on a router without RTC) cannot stall or rush KCP's timers. |loop|
 * is unused: every call reads the clock (a vDSO call). */
static inline uint64_t loop_now_ms(struct ev_loop *loop)
{
    (void)loop;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wall clock minus loop_now_ms, in ms: the secure mode's timestamps are wall time. */
static inline int64_t loop_wall_offset_ms(void)
{
    struct timespec w, m;
    clock_gettime(CLOCK_REALTIME, &w);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return ((int64_t)w.tv_sec - (int64_t)m.tv_sec) * 1000 +
           ((int64_t)w.tv_nsec - (int64_t)m.tv_nsec) / 1000000;
}

/* Runtime parameters shared by every session of a process (derived from struct config). */
struct sess_params {
    struct link_config link;  /* KCP + FEC settings */
    struct mux_config mux;    /* smux settings */
    bool nocomp;              /* no snappy framing between mux and KCP */
    int sockbuf;              /* SO_RCVBUF/SO_SNDBUF of UDP sockets, 0 to leave as is */
    int dscp;                 /* DSCP of UDP sockets */
    bool quiet;               /* no per-stream log lines */
    int64_t bufbudget;        /* stream bytes buffered by all sessions before they stop
                                 reading KCP (--bufbudget), 0 for no limit */
};

struct sess;
struct stream;
struct shell;
struct config;

/* Fills |p| from the validated |cfg|. */
void sess_params_from_config(const struct config *cfg, struct sess_params *p);

/* Role hooks: the client and the server plug their policy in here. */
struct shell_hooks {
    /* Server: the peer opened stream |sid| on |s|; the hook dials the target and attaches it
     * with stream_attach, or refuses it with mux_stream_release. NULL on the client. */
    void (*stream_accept)(struct shell *sh, struct sess *s, uint32_t sid);
    /* |s| is about to be freed: drop every reference to it (slot, address table). */
    void (*sess_gone)(struct shell *sh, struct sess *s);
    /* SIGINT/SIGTERM: close listeners; the shell then closes every session. */
    void (*shutdown)(struct shell *sh);
};

/* The process: loop, shared crypt, parameters, session list, counters, signals. */
struct shell {
    struct ev_loop *loop;          /* EV_DEFAULT */
    struct sess_params params;     /* copied at shell_init */
    bool is_client;                /* odd stream ids, client crypt role */
    struct crypt *crypt;           /* shared by every session (borrowed) */
    struct shell_hooks hooks;      /* role policy */
    struct sess *sessions;         /* every live session */
    size_t nsess;                  /* length of |sessions| */
    struct snmp base;              /* shell counters + totals of freed sessions */
    const char *snmplog;           /* --snmplog path layout, NULL if off */
    int snmpperiod;                /* seconds between CSV rows */
    ev_signal sig_int, sig_term;   /* stop */
    ev_signal sig_usr1;            /* counters to the log */
    ev_signal sig_hup;             /* reopen --log (rotation) */
    ev_timer snmp_timer;           /* CSV rows */
    ev_prepare flush_prepare;      /* sends batched datagrams before the loop blocks */
    struct net_udp *sb_udp;        /* socket |sb| belongs to, NULL when empty */
    struct net_rbatch rb;          /* datagrams of the current recvmmsg */
    struct net_sbatch sb;          /* datagrams waiting for one sendmmsg */
    uint8_t scratch[SESS_TCP_CHUNK]; /* TCP read buffer */
    bool stopping;                 /* shutdown in progress */
    int64_t bufbudget;             /* see sess_params */
    uint64_t rx_total;             /* stream bytes buffered in every session's mux */
    size_t nstalled;               /* sessions waiting for the budget */
};

/* One TCP connection carried as one mux stream. */
struct stream {
    struct sess *s;              /* owning session */
    struct stream *prev, *next;  /* session's stream list */
    uint32_t sid;                /* mux stream id */
    int fd;                      /* TCP socket */
    ev_io rio, wio;              /* TCP readable / writable */
    ev_timer linger;             /* close-wait once one direction has ended */
    struct ring out;             /* stream data waiting for the TCP socket */
    bool connecting;             /* server: the dial is in progress */
    bool rd_paused;              /* TCP reads stopped for want of link room */
    bool rd_eof;                 /* TCP EOF seen, FIN sent */
    bool peer_eof;               /* the peer's FIN was read from mux */
    bool wr_shut;                /* TCP write side shut down after peer_eof */
};

/* One KCP session: link + optional compression + mux, with its UDP path and timer. */
struct sess {
    struct shell *sh;                 /* process */
    struct sess *prev, *next;         /* shell list */
    struct sess *hnext;               /* server address table chain */
    struct net_udp *udp;              /* UDP socket (&own_udp, or the server's listener) */
    struct net_udp own_udp;           /* client: the session's own socket */
    bool own_fd;                      /* client: the socket belongs to the session */
    ev_io udp_io;                     /* client: readable UDP socket */
    ev_timer timer;                   /* the one timer: link and mux deadlines */
    struct net_addr peer;             /* where datagrams go */
    bool peer_locked;                 /* client: first reply fixed the source address */
    uint32_t conv;                    /* KCP conversation id */
    struct link *link;                /* KCP + FEC + crypt */
    struct mux *mux;                  /* smux */
    struct comp_encoder *enc;         /* NULL with --nocomp */
    struct comp_decoder *dec;         /* NULL with --nocomp */
    struct stream *streams;           /* live streams */
    size_t nstreams;                  /* length of |streams| */
    uint8_t *rx;                      /* SESS_RX_BUF bytes from link_recv */
    size_t rx_off, rx_len;            /* unconsumed part of |rx| */
    uint64_t created_ms;              /* loop time of creation */
    uint64_t expire_ms;               /* client --autoexpire: no new streams after this */
    uint64_t scavenge_ms;             /* client: close after this once expired (0: not yet) */
    int slot;                         /* client: --conn slot, -1 once expired */
    bool in_pump;                     /* re-entrancy guard */
    uint64_t refused_logged;          /* peer streams refused (--maxstreams) already logged */
    uint64_t refused_log_ms;          /* when that was last logged (one line per 10 s) */
    bool budget_stalled;              /* stopped reading KCP for --bufbudget */
    uint64_t rx_counted;              /* this session's share of shell.rx_total */
    bool dead;                        /* close at the end of the current pump */
    const char *dead_reason;          /* why, for the log */
    char name[NET_ADDR_STRLEN + 24];  /* "conv 1234 peer 1.2.3.4:5" for logs */
};

/* Sets up |sh| on |loop| (signals, SNMP timer, empty session list). |params| is copied; |crypt|
 * and |snmplog| are borrowed for the life of the shell. Returns 0. */
int shell_init(struct shell *sh, struct ev_loop *loop, const struct sess_params *params,
               bool is_client, struct crypt *crypt, const struct shell_hooks *hooks,
               const char *snmplog, int snmpperiod);

/* Runs the loop until SIGINT/SIGTERM, then closes every session and stops the watchers. */
void shell_run(struct shell *sh);

/* Current totals: the shell's own counters plus every live session's link counters. */
void shell_snmp(const struct shell *sh, struct snmp *out);

/* Queues datagram |p| (|len| bytes) for |to| on socket |u| (one sendmmsg per event). */
void shell_send_dgram(struct shell *sh, struct net_udp *u, const uint8_t *p, size_t len,
                      const struct net_addr *to);

/* Sends every queued datagram now. */
void shell_flush_dgrams(struct shell *sh);

/* Creates the process's crypt object from --crypt and --key for side |role|, with a fast nonce
 * generator stored in |*rng| (free it after the crypt object) and the secure mode's start time
 * set to now. Logs the reason and returns NULL on failure. */
struct crypt *shell_crypt_new(const struct config *cfg, enum crypt_role role,
                              struct crypt_rng **rng);

/* Creates a session with |conv| talking to |peer| over UDP socket |udp|. With |own_fd| the
 * session keeps a copy of |*udp|, watches the socket for datagrams and closes it with the
 * session (also when creation fails); otherwise |udp| is borrowed (the server's listener) and
 * must outlive the session. Returns the session or NULL (logged). */
struct sess *sess_new(struct shell *sh, struct net_udp *udp, bool own_fd,
                      const struct net_addr *peer, uint32_t conv);

/* Feeds one raw datagram (client path: opened by the link). */
void sess_input_raw(struct sess *s, uint8_t *dgram, size_t len);

/* Feeds one payload already opened by the crypt (server path). */
void sess_input_payload(struct sess *s, const uint8_t *payload, size_t len);

/* Moves data after input or local events, re-arms the timer, and frees the session if it
 * died. Call once after a batch of sess_input_* calls. Returns false if |s| was freed. */
bool sess_pump(struct sess *s);

/* Closes the session: every stream, the watchers, the socket if owned, the cores. Logs
 * |reason|. Idempotent per session object (frees it). */
void sess_close(struct sess *s, const char *reason);

/* Opens a new mux stream on |s| for the connected TCP socket |fd| (client). Returns 0, or
 * an ERR_* from mux_stream_open (then |fd| is closed). */
int stream_open_local(struct sess *s, int fd);

/* Attaches TCP socket |fd| to the already accepted mux stream |sid| (server). |connecting|:
 * the non-blocking connect is still in progress. Returns 0 or ERR_NOMEM (fd closed, stream
 * released). */
int stream_attach(struct sess *s, uint32_t sid, int fd, bool connecting);

#endif
