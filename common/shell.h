/* SPDX-License-Identifier: MIT */
/* libev shell, process level: the loop, signals, counters, the clock, datagram batching. */
#ifndef KTUN_SHELL_H
#define KTUN_SHELL_H

#include "common/net.h"
#include "common/snmp.h"
#include "common/tunnel.h"
#include "crypto/crypt.h"

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The shell is three objects, one file each:
 *   shell.c   the process: loop, signals, SNMP timer, datagram batching (struct shell);
 *   sess.c    one tunnel session: its timer and UDP I/O around a pure struct tunnel;
 *   stream.c  the TCP side of one stream.
 * The roles plug in through struct shell_hooks and wrap struct sess (client/, server/).
 *
 * Time: every core call takes shell_now_ms(), the single clock. Each session has one timer
 * armed at tunnel_next_deadline; nothing polls idle sessions.
 */

/* Bytes read from one TCP socket per read() call. */
#define SHELL_TCP_CHUNK 32768
/* Period of the idle check: buffers are given back after one to two of these without
 * datagrams (shell.c, shell_trim). */
#define SHELL_TRIM_S 0.5
/* Datagram batches read per readiness event before yielding to other watchers. */
#define SHELL_RX_BATCHES 8

/* The single clock of the cores: CLOCK_MONOTONIC in milliseconds, so that a step of the
 * system clock (NTP at boot on a router without RTC) cannot stall or rush KCP's timers.
 * Every call reads the clock (a vDSO call). */
static inline uint64_t shell_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wall clock minus shell_now_ms, in ms: the secure mode's timestamps are wall time. */
static inline int64_t shell_wall_offset_ms(void)
{
    struct timespec w, m;
    clock_gettime(CLOCK_REALTIME, &w);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return ((int64_t)w.tv_sec - (int64_t)m.tv_sec) * 1000 +
           ((int64_t)w.tv_nsec - (int64_t)m.tv_nsec) / 1000000;
}

/* Runtime parameters shared by every session of a process (derived from struct config). */
struct sess_params {
    struct tunnel_config tun; /* link, mux and compression settings */
    int sockbuf;              /* SO_RCVBUF/SO_SNDBUF of UDP sockets, 0 to leave as is */
    int dscp;                 /* DSCP of UDP sockets */
    bool quiet;               /* no per-stream log lines */
    int64_t bufbudget;        /* stream bytes buffered by all sessions before they stop
                                 reading KCP (--bufbudget), 0 for no limit */
};

struct sess;
struct shell;
struct udpfwd;
struct config;
struct stream;
struct fwd_target;

/* Raises the soft descriptor limit (RLIMIT_NOFILE) to the hard one, as Go programs (kcptun)
 * do at start; returns the soft limit in force (UINT64_MAX for none). */
uint64_t shell_raise_nofile(void);
/* Memory the process may use, in bytes: half the physical memory, or less under RLIMIT_AS or
 * RLIMIT_DATA. */
uint64_t shell_mem_budget(void);

/* Fills |p| from the validated |cfg|. */
void sess_params_from_config(const struct config *cfg, struct sess_params *p);

/* Role hooks: the client and the server plug their policy in here. */
struct shell_hooks {
    /* Server: the peer opened stream |sid| on |s|; the hook dials the target and attaches it
     * with stream_attach, or refuses it with tunnel_stream_release. NULL on the client. */
    void (*stream_accept)(struct shell *sh, struct sess *s, uint32_t sid);
    /* Server, between ktun ends: stream |st| of |s| named target |t| in its header
     * (docs/forwards.md). Returns a socket connecting to it (the stream waits for the
     * connect, then replies), minus an enum fwd_status to refuse the stream with, or
     * STREAM_TARGET_WAIT after setting st->res (a lookup that calls stream_target_done). */
    int (*stream_target)(struct shell *sh, struct sess *s, struct stream *st,
                         const struct fwd_target *t);
    /* |s| is about to be freed: drop every reference to it (slot, address table). */
    void (*sess_gone)(struct shell *sh, struct sess *s);
    /* SIGINT/SIGTERM: close listeners; the shell then closes every session. */
    void (*shutdown)(struct shell *sh);
    /* SIGHUP, after the log was reopened: read the configuration again (may be NULL). */
    void (*reload)(struct shell *sh);
    /* Client: |s| is about to move to a new UDP socket (its path looked dead); the hook may
     * update s->peer, e.g. with the server's name resolved again (may be NULL). */
    void (*path_change)(struct shell *sh, struct sess *s);
    /* The capability exchange of |s| ended (tunnel_peer_is_ktun tells how; may be NULL). */
    void (*caps)(struct shell *sh, struct sess *s);
    /* The first smux frame from the peer arrived on |s| (once per session; may be NULL). */
    void (*heard)(struct shell *sh, struct sess *s);
    /* Client: the server's smux refused the session a stream was on (tunnel_peer_refused):
     * the hook opens it again for TCP socket |fd|, sending |len| bytes of |data| (all the
     * stream sent before, tunnel_stream_replay) first, or closes |fd|. NULL: such streams are
     * closed with their session. */
    void (*replay)(struct shell *sh, int fd, const uint8_t *data, size_t len);
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
    ev_timer trim_timer;           /* gives idle buffers back, see shell_trim */
    uint64_t trim_reads;           /* rb.reads at its last tick */
    bool trimmed;                  /* nothing was read since the last trim */
    struct net_sbatch sb;          /* datagrams waiting for one sendmmsg */
    uint8_t scratch[SHELL_TCP_CHUNK]; /* TCP read buffer */
    bool stopping;                 /* shutdown in progress */
    struct tunnel_budget budget;   /* --bufbudget, shared by every session */
    struct udpfwd *udpfwd;         /* UDP forwards and flows (common/udpfwd.h), or NULL */
};

/* Sets up |sh| on |loop| (signals, SNMP timer, empty session list). |params| is copied; |crypt|
 * and |snmplog| are borrowed for the life of the shell. Returns 0. */
int shell_init(struct shell *sh, struct ev_loop *loop, const struct sess_params *params,
               bool is_client, struct crypt *crypt, const struct shell_hooks *hooks,
               const char *snmplog, int snmpperiod);

/* SIGHUP reload of the shell's part of |cfg| (validated): sessions created from now on use
 * its parameters (KCP, FEC, smux, compression; with |crypt| if not NULL, the crypt object,
 * borrowed like the first); the log level, --quiet and --bufbudget apply at once. */
void shell_reconfigure(struct shell *sh, const struct config *cfg, struct crypt *crypt);

/* Hands the whole pages inside the |len| bytes at |p| back to the kernel: they read as zeros
 * afterwards and count in the resident set again once written. For idle buffers. */
void shell_drop_pages(void *p, size_t len);

/* Runs the loop until SIGINT/SIGTERM (or ev_break), then shell_stop. */
void shell_run(struct shell *sh);

/* Shuts down: the role's shutdown hook, every session closed, queued datagrams sent, the
 * counters logged, the shell's watchers stopped. The loop itself is the caller's. */
void shell_stop(struct shell *sh);

/* Current totals: the shell's own counters plus every live session's counters. */
void shell_snmp(const struct shell *sh, struct snmp *out);

/* Adds the counters of |t| to |o| (the shell folds a closing session's into its base). */
void shell_tunnel_to_snmp(const struct tunnel *t, struct snmp *o);

/* Queues datagram |p| (|len| bytes) for |to| on socket |u| (one sendmmsg per event). */
void shell_send_dgram(struct shell *sh, struct net_udp *u, const uint8_t *p, size_t len,
                      const struct net_addr *to);

/* Sends every queued datagram now. */
void shell_flush_dgrams(struct shell *sh);

/* Once the shared receive budget has room again, wakes the sessions that stopped reading for
 * it (through their timers: a pump may not run inside another). */
void shell_wake_stalled(struct shell *sh);

/* Creates the process's crypt object from --crypt and --key for side |role|, with a fast nonce
 * generator stored in |*rng| (free it after the crypt object) and the secure mode's start time
 * set to now. Logs the reason and returns NULL on failure. */
struct crypt *shell_crypt_new(const struct config *cfg, enum crypt_role role,
                              struct crypt_rng **rng);

#endif
