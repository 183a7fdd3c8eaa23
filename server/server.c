/* SPDX-License-Identifier: MIT */
/* ktun-server: UDP listener whose KCP sessions' streams are forwarded to the target. */
#include "server/server.h"

#include "common/allow.h"
#include "common/err.h"
#include "common/fwd.h"
#include "common/log.h"
#include "common/net.h"
#include "common/rawtcp.h"
#include "common/resolve.h"
#include "common/sess.h"
#include "common/udpfwd.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "crypto/qpp.h"

#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * kcp-go's listener policy, per listening socket (one per port of a --listen range, plus the
 * fake-TCP one): sessions keyed by the listener and the peer's address. A datagram for a known address feeds its session if it is parity or carries the
 * session's conv; another conv replaces the session only when its sn is 0 (the client
 * restarted on the same port); anything else is dropped. An unknown address gets a new
 * session unless the packet is parity-only or --maxsessions sessions exist. Dead peers are
 * reclaimed by the smux keepalive check (30 s without a frame), as in kcptun.
 *
 * ktun's additions (docs/roaming.md): a datagram whose conv belongs to a live session but that
 * comes from another listener or address is a roaming candidate for that session, not a new
 * session; and a datagram of an unknown session that is not its start (first sn not 0) opens
 * nothing and is not answered, so that a client of a previous run notices the restart.
 */

#define SERVER_BUCKETS 1024
/* Sessions refused at --maxsessions are counted by peer address and conv, remembered in a
 * table of this many slots (a retransmission of the same first datagram is not a new session). */
#define SERVER_REFUSED_SLOTS 4096
/* Datagrams that do not open: peers remembered as explained, the shortest gap between two
 * explaining lines, and how long a requested sample may take before another peer's is asked. */
#define SERVER_BADPEER_SLOTS 16
#define SERVER_BADCRYPT_GAP_MS 1000u
#define SERVER_SAMPLE_WAIT_MS 2000u
/* Refusal datagrams (tunnel_send_refusal) sent at most this often per second, in bursts of as
 * many: a flood of first datagrams gets no more answers than that. */
#define SERVER_REFUSALS_PER_S 100u

/* A session of the server: the shell's session plus its address- and conv-table chains. */
struct server_sess {
    struct sess s;              /* first: the shell allocates the wrapper */
    struct server_sess *hnext;  /* next session in the same address bucket */
    struct server_sess *cnext;  /* next session in the same conv bucket */
};

struct server;

/* One UDP listening socket (one per port of a --listen range). */
struct server_listener {
    struct server *sv;
    struct net_udp udp;
    ev_io io;                            /* readable */
};

/* A configuration read on SIGHUP, kept until exit (its strings may be in use). */
struct server_reload {
    struct config cfg;
    struct server_reload *next;
};

struct server {
    struct shell sh;                     /* loop, sessions, counters */
    const struct config *cfg;            /* validated configuration (borrowed) */
    struct server_listener *ls;          /* UDP listeners, one per port */
    size_t nls;                          /* length of |ls| */
    struct net_udp tcp;                  /* fake-TCP listener (--tcp), fd -1 without */
    ev_io tcp_io;                        /* its descriptor readable */
    struct net_addr target;              /* TCP target (unless a Unix path) */
    bool target_resolved;                /* |target| holds the resolved address */
    bool target_unix;                    /* cfg->target is a Unix socket path */
    struct resolver *resolver;           /* lookups of --target after start, off the loop */
    char lookup[CONFIG_ADDR_MAX];        /* the name of the lookup in flight */
    struct server_sess *table[SERVER_BUCKETS]; /* sessions by peer address */
    struct server_sess *convs[SERVER_BUCKETS]; /* sessions by conv (roaming) */
    struct sess_hold hold;               /* output held while a candidate is fed */
    struct sess *touched[NET_BATCH];     /* sessions fed by the current batch */
    int ntouched;                        /* entries of |touched| */
    int maxsessions;                     /* --maxsessions, or sized at start when it is 0 */
    uint64_t sessions_refused;           /* sessions refused by --maxsessions */
    uint64_t refused_dgrams;             /* their datagrams */
    uint64_t refusals_sent;              /* refusal datagrams sent */
    uint64_t refusal_tokens_ms;          /* refusal token bucket: time its tokens reach */
    uint64_t refused_keys[SERVER_REFUSED_SLOTS]; /* recently refused (address, conv) keys */
    uint64_t refused_logged;             /* sessions_refused at the last line */
    char refused_from[NET_ADDR_STRLEN];  /* the latest refused peer */
    ev_timer refused_timer;              /* the line held back by refused_log is due */
    struct log_limit refused_log;        /* one line about it per 10 s */
    uint64_t orphans;                    /* datagrams of unknown sessions past their start */
    struct log_limit orphan_log;         /* one line about them per 10 s */
    struct server_reload *reloads;       /* configurations read on SIGHUP, newest first */
    /* datagrams that do not open: one explaining line per peer per LOG_REPEAT_MS */
    struct log_limit badcrypt_log;       /* at most one line per second in all */
    struct server_badpeer {              /* peers explained lately: one line each per */
        struct net_addr addr;            /* LOG_REPEAT_MS, so a busy peer cannot hide */
        uint64_t at;                     /* a quiet one */
    } badpeers[SERVER_BADPEER_SLOTS];
    struct crypt_probe *probe;           /* tries the other methods (made on first need) */
    bool want_sample;                    /* keep the next datagram of |sample_from| */
    uint64_t sample_since;               /* when want_sample was set */
    struct net_addr sample_from;         /* the peer whose datagrams fail */
    uint8_t sample[NET_DGRAM_MAX];       /* its datagram as received */
    /* targets named by ktun peers (docs/forwards.md) */
    struct allow_list allow;             /* --allow, -t and -t's resolved address */
    struct fwd_logbook refused_book;     /* one line per peer and target per minute */
    uint64_t targets_refused;            /* streams refused by the allow-list */
};

/* A refused target is logged once per peer and target per this many ms. */
#define SERVER_REFUSED_LOG_MS 60000

static struct server_sess **server_bucket(struct server *sv, const struct net_addr *a)
{
    return &sv->table[net_addr_hash(a) % SERVER_BUCKETS];
}

static struct sess *server_find(struct server *sv, const struct net_udp *u,
                                const struct net_addr *a)
{
    for (struct server_sess *s = *server_bucket(sv, a); s; s = s->hnext)
        if (s->s.udp == u && net_addr_equal(&s->s.peer, a))
            return &s->s;
    return NULL;
}

static struct server_sess **server_conv_bucket(struct server *sv, uint32_t conv)
{
    return &sv->convs[(conv * 2654435761u) % SERVER_BUCKETS];
}

static struct sess *server_find_conv(struct server *sv, uint32_t conv)
{
    for (struct server_sess *s = *server_conv_bucket(sv, conv); s; s = s->cnext)
        if (s->s.conv == conv)
            return &s->s;
    return NULL;
}

static void server_unlink_addr(struct server *sv, struct server_sess *ss)
{
    for (struct server_sess **pp = server_bucket(sv, &ss->s.peer); *pp; pp = &(*pp)->hnext) {
        if (*pp == ss) {
            *pp = ss->hnext;
            break;
        }
    }
}

static void server_sess_gone(struct shell *sh, struct sess *s)
{
    struct server *sv = container_of(sh, struct server, sh);
    struct server_sess *ss = container_of(s, struct server_sess, s);
    server_unlink_addr(sv, ss);
    for (struct server_sess **pp = server_conv_bucket(sv, s->conv); *pp; pp = &(*pp)->cnext) {
        if (*pp == ss) {
            *pp = ss->cnext;
            break;
        }
    }
    for (int i = 0; i < sv->ntouched; i++)
        if (sv->touched[i] == s)
            sv->touched[i] = NULL;
}

static void server_touch(struct server *sv, struct sess *s)
{
    for (int i = 0; i < sv->ntouched; i++)
        if (sv->touched[i] == s)
            return;
    if (sv->ntouched == NET_BATCH) {
        /* more sessions than a batch has messages cannot happen (one source per message);
         * pump the ones so far rather than trust that */
        for (int i = 0; i < sv->ntouched; i++)
            if (sv->touched[i])
                sess_pump(sv->touched[i]);
        sv->ntouched = 0;
    }
    sv->touched[sv->ntouched++] = s;
}

struct server_refusal {
    struct server *sv;
    struct net_udp *u;
    const struct net_addr *to;
};

static void server_refusal_out(void *user, const uint8_t *dgram, size_t len)
{
    struct server_refusal *r = user;
    shell_send_dgram(&r->sv->sh, r->u, dgram, len, r->to);
}

/* True if |to| may be sent a refusal now (SERVER_REFUSALS_PER_S, bursts as large). */
static bool server_refusal_token(struct server *sv, uint64_t now)
{
    const uint64_t per = 1000 / SERVER_REFUSALS_PER_S, burst = 1000;
    if (sv->refusal_tokens_ms + burst < now)
        sv->refusal_tokens_ms = now - burst;
    if (sv->refusal_tokens_ms + per > now)
        return false;
    sv->refusal_tokens_ms += per;
    return true;
}

static void server_log_refused(struct server *sv)
{
    if (sv->sessions_refused == sv->refused_logged)
        return;
    sv->refused_logged = sv->sessions_refused;
    LOG_WARN("server: --maxsessions %d reached: refused %llu sessions so far (%llu datagrams), "
             "the latest from %s; each is told at once (%llu refusals sent), so its "
             "connections close instead of hanging: kcptun logs a broken session and tries "
             "a new one, ktun logs that the server refused it", sv->maxsessions,
             (unsigned long long)sv->sessions_refused, (unsigned long long)sv->refused_dgrams,
             sv->refused_from, (unsigned long long)sv->refusals_sent);
}

static void server_refused_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = container_of(w, struct server, refused_timer);
    if (log_limit_pass(&sv->refused_log, shell_now_ms(), LOG_REPEAT_MS))
        server_log_refused(sv);
}

/* --maxsessions is reached: the first datagram of a new session from |from| (conv |conv|) is
 * refused. The client is told at once (tunnel_send_refusal), so its connections close instead
 * of waiting for its timeouts; sessions are counted (not datagrams) and logged once per 10 s. */
static void server_refuse(struct server *sv, struct net_udp *u, const struct net_addr *from,
                          uint32_t conv, const uint8_t *p, size_t len)
{
    uint64_t now = shell_now_ms();
    uint64_t key = ((uint64_t)net_addr_hash(from) << 32 | conv) | 1;
    uint64_t *slot = &sv->refused_keys[(key * 0x9e3779b97f4a7c15ull >> 40) % SERVER_REFUSED_SLOTS];
    sv->sh.base.v[SNMP_IN_ERRS]++;
    sv->refused_dgrams++;
    if (*slot != key) {
        *slot = key;
        sv->sessions_refused++;
    }
    if (tunnel_is_session_start(p, len) && server_refusal_token(sv, now)) {
        struct server_refusal r = {sv, u, from};
        if (tunnel_send_refusal(conv, p, len, &sv->sh.params.tun.link, sv->sh.crypt, server_refusal_out,
                                &r, now) == 0)
            sv->refusals_sent++;
    }
    net_addr_str(from, sv->refused_from, sizeof(sv->refused_from));
    if (log_limit_pass(&sv->refused_log, now, LOG_REPEAT_MS))
        server_log_refused(sv);
    else if (!ev_is_active(&sv->refused_timer)) /* the count goes out when the period ends */
        ev_timer_start(sv->sh.loop, &sv->refused_timer);
}

/* Sets the session limit: --maxsessions, or sized from the descriptor limit and memory. */
static void server_set_maxsessions(struct server *sv)
{
    if (sv->cfg->maxsessions > 0) {
        sv->maxsessions = sv->cfg->maxsessions;
        return;
    }
    uint64_t fds = shell_raise_nofile(), mem = shell_mem_budget();
    sv->maxsessions = config_auto_maxsessions(fds, mem);
    LOG_INFO("server: --maxsessions %d (from %llu descriptors and %llu MiB of memory; a session "
             "needs a descriptor and about %u KiB)", sv->maxsessions, (unsigned long long)fds,
             (unsigned long long)(mem >> 20), CONFIG_SESSION_BYTES >> 10);
}

static struct sess *server_new_sess(struct server *sv, struct net_udp *u,
                                    const struct net_addr *from, uint32_t conv,
                                    const uint8_t *p, size_t len)
{
    if (sv->sh.nsess >= (size_t)sv->maxsessions) {
        server_refuse(sv, u, from, conv, p, len);
        return NULL;
    }
    struct sess *s = sess_new(&sv->sh, sizeof(struct server_sess), u, false, from, conv);
    if (!s)
        return NULL;
    struct server_sess *ss = container_of(s, struct server_sess, s);
    struct server_sess **b = server_bucket(sv, from);
    ss->hnext = *b;
    *b = ss;
    b = server_conv_bucket(sv, conv);
    ss->cnext = *b;
    *b = ss;
    return s;
}

/* Roaming (docs/roaming.md): |p| from |from| on listener |u| carries the conv of live session
 * |s|, whose peer is elsewhere. Feeds it and lets the rule move the session, probe |from| or
 * do neither. */
static void server_candidate(struct server *sv, struct sess *s, struct net_udp *u,
                             const struct net_addr *from, const uint8_t *p, size_t len)
{
    struct server_sess *ss = container_of(s, struct server_sess, s);
    enum roam_verdict v = sess_input_candidate(s, p, len, true, &sv->hold);
    if (v == ROAM_MOVE) {
        server_unlink_addr(sv, ss);
        sess_set_peer(s, u, from);
        struct server_sess **b = server_bucket(sv, from);
        ss->hnext = *b;
        *b = ss;
    }
    sess_hold_release(s, &sv->hold, u, v == ROAM_PROBE ? from : NULL);
    server_touch(sv, s);
}

/* A datagram of no known session from |from|: true if it may open one (its first segment is
 * the session's first, sn 0). Otherwise it is counted and left unanswered. */
static bool server_may_open(struct server *sv, const struct net_addr *from, const uint8_t *p,
                            size_t len)
{
    uint32_t conv, sn = 0;
    bool parity;
    if (link_peek(p, len, &conv, &sn, &parity) != 0 || sn == 0)
        return true;
    sv->sh.base.v[SNMP_IN_ERRS]++;
    sv->orphans++;
    if (log_limit_pass(&sv->orphan_log, shell_now_ms(), 10000)) {
        char as[NET_ADDR_STRLEN];
        LOG_INFO("server: datagrams of a session this server does not know, from %s (a client "
                 "of an earlier run?): not answered, %llu so far",
                 net_addr_str(from, as, sizeof(as)), (unsigned long long)sv->orphans);
    }
    return false;
}

/* Routes one opened payload from |from| on listener |u|. */
static void server_route(struct server *sv, struct net_udp *u, const struct net_addr *from,
                         const uint8_t *p, size_t len)
{
    uint32_t conv = 0;
    struct sess *s = server_find(sv, u, from);
    struct sess *other;
    switch (tunnel_route(s ? s->tun : NULL, p, len, &conv)) {
    case TUNNEL_ROUTE_DROP:
        /* another session's conv from the address of a stale one (a NAT reused the port) */
        other = s ? server_find_conv(sv, conv) : NULL;
        if (other && other != s) {
            server_candidate(sv, other, u, from, p, len);
            return;
        }
        sv->sh.base.v[SNMP_IN_ERRS]++;
        return;
    case TUNNEL_ROUTE_IGNORE:
        return; /* parity never opens a session */
    case TUNNEL_ROUTE_REPLACE:
        sess_close(s, "conv replaced");
        s = server_new_sess(sv, u, from, conv, p, len);
        if (!s)
            return;
        break;
    case TUNNEL_ROUTE_NEW:
        s = server_find_conv(sv, conv);
        if (s) {
            server_candidate(sv, s, u, from, p, len);
            return;
        }
        if (!server_may_open(sv, from, p, len))
            return;
        s = server_new_sess(sv, u, from, conv, p, len);
        if (!s)
            return;
        break;
    case TUNNEL_ROUTE_FEED:
        break;
    }
    sess_input_payload(s, p, len);
    server_touch(sv, s);
}

/* True if |from|'s failing datagrams were explained less than LOG_REPEAT_MS ago. */
static bool server_badpeer_recent(const struct server *sv, const struct net_addr *from,
                                  uint64_t now)
{
    for (size_t i = 0; i < SERVER_BADPEER_SLOTS; i++) {
        const struct server_badpeer *b = &sv->badpeers[i];
        if (b->at && now - b->at < LOG_REPEAT_MS && net_addr_equal(&b->addr, from))
            return true;
    }
    return false;
}

/* Remembers that |from| was explained at |now|, in its own slot or the oldest one. */
static void server_badpeer_note(struct server *sv, const struct net_addr *from, uint64_t now)
{
    struct server_badpeer *slot = &sv->badpeers[0];
    for (size_t i = 0; i < SERVER_BADPEER_SLOTS; i++) {
        struct server_badpeer *b = &sv->badpeers[i];
        if (b->at && net_addr_equal(&b->addr, from)) {
            slot = b;
            break;
        }
        if (b->at < slot->at)
            slot = b;
    }
    slot->addr = *from;
    slot->at = now;
}

/* A datagram from |from| did not open (|orig|: its bytes as received, if kept). Explains it
 * in one line per peer per LOG_REPEAT_MS (and one per second in all): which --crypt method
 * opens it under our --key, if any. The bytes are gone after a failed open, so the first
 * failure asks for the next datagram of the same peer to be kept (KCP resends soon); that
 * one is probed. */
static void server_open_failed(struct server *sv, const struct net_addr *from,
                               const uint8_t *orig, size_t len, uint64_t now)
{
    const struct config *cfg = sv->cfg;
    if (!orig) {
        if (server_badpeer_recent(sv, from, now))
            return;
        if ((!sv->want_sample || now - sv->sample_since > SERVER_SAMPLE_WAIT_MS) &&
            log_limit_pass(&sv->badcrypt_log, now, SERVER_BADCRYPT_GAP_MS)) {
            sv->want_sample = true;
            sv->sample_since = now;
            sv->sample_from = *from;
        }
        return;
    }
    sv->want_sample = false;
    server_badpeer_note(sv, from, now);
    if (!sv->probe && !(sv->probe = crypt_probe_new(cfg->key)))
        return;
    const char *m = crypt_probe_identify(sv->probe, orig, len);
    char as[NET_ADDR_STRLEN];
    net_addr_str(from, as, sizeof(as));
    if (m)
        LOG_WARN("server: datagrams from %s do not open with --crypt %s; they open with "
                 "--crypt %s under this --key: use the same --crypt on both ends (%llu dropped "
                 "so far)", as, cfg->crypt, m,
                 (unsigned long long)crypt_get_stats(sv->sh.crypt)->in_csum_errors);
    else
        LOG_WARN("server: datagrams from %s open with no --crypt method under this --key: the "
                 "peer uses a different --key (or is not a kcptun client) (%llu dropped so far)",
                 as, (unsigned long long)crypt_get_stats(sv->sh.crypt)->in_csum_errors);
}

/* Reads the datagrams waiting on listener |u| (UDP or fake TCP). */
static void server_rx(struct server *sv, struct net_udp *u)
{
    struct shell *sh = &sv->sh;
    uint64_t wall_ms = (uint64_t)((int64_t)shell_now_ms() + shell_wall_offset_ms());
    for (int b = 0; b < SHELL_RX_BATCHES; b++) {
        int n = net_recv_batch(u, &sh->rb);
        if (n <= 0)
            break;
        sv->ntouched = 0;
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(&sh->rb, &p, &len, &from)) {
            const uint8_t *payload;
            sh->base.v[SNMP_IN_PKTS]++;
            sh->base.v[SNMP_IN_BYTES] += len;
            bool keep = sv->want_sample && len <= sizeof(sv->sample) &&
                        net_addr_equal(from, &sv->sample_from);
            if (keep)
                memcpy(sv->sample, p, len);
            ssize_t plen = crypt_open(sh->crypt, p, len, wall_ms, &payload);
            if (plen < 0) {
                /* counted by the crypt (InCsumErrors); explained now and then */
                server_open_failed(sv, from, keep ? sv->sample : NULL, len, shell_now_ms());
                continue;
            }
            server_route(sv, u, from, payload, (size_t)plen);
        }
        for (int i = 0; i < sv->ntouched; i++)
            if (sv->touched[i])
                sess_pump(sv->touched[i]);
        sv->ntouched = 0;
        if (n < sh->rb.slots)
            break;
    }
    shell_flush_dgrams(sh);
}

static void server_udp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server_listener *l = container_of(w, struct server_listener, io);
    server_rx(l->sv, &l->udp);
}

static void server_tcp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = container_of(w, struct server, tcp_io);
    server_rx(sv, &sv->tcp);
}

/* The address bytes of |a| (4 or 16) into |out|; returns the count, 0 for another family. */
static size_t server_addr_bytes(const struct net_addr *a, uint8_t out[16])
{
    if (a->ss.ss_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
        return 4;
    }
    if (a->ss.ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* The allow-list of |cfg|: --allow, the -t target as written, and its resolved address once
 * known (see server_resolve_target). Returns 0 or ERR_INVAL (logged). */
static int server_build_allow(struct server *sv, const struct config *cfg, struct allow_list *l)
{
    char err[CONFIG_ERR_MAX];
    memset(l, 0, sizeof(*l));
    if (config_allow_list(cfg, l, err, sizeof(err)) != 0) {
        LOG_ERROR("server: %s", err);
        return ERR_INVAL;
    }
    /* "localhost:22" is a name entry, "[::1]:22" an address; ":22" is no entry, but its
     * resolved address is added below */
    if (!config_target_is_unix(cfg))
        allow_add(l, cfg->target, NULL, 0);
    if (sv->target_resolved) {
        uint8_t a[16];
        size_t n = server_addr_bytes(&sv->target, a);
        if (n)
            allow_add_addr(l, a, n, net_addr_port(&sv->target));
    }
    return 0;
}

/* Resolves the target on the loop's thread: at start only, before any session exists. */
/* sv->target holds the target's address now: it joins the allow-list. */
static void server_target_known(struct server *sv)
{
    uint8_t a[16];
    size_t n = server_addr_bytes(&sv->target, a);
    if (!sv->target_resolved && n)
        allow_add_addr(&sv->allow, a, n, net_addr_port(&sv->target));
    sv->target_resolved = true;
}

static int server_resolve_target(struct server *sv, char *err)
{
    int rc = net_resolve(sv->cfg->target, false, &sv->target, err);
    if (rc == 0)
        server_target_known(sv);
    return rc;
}

/* Starts looking the target up again, off the loop (kcptun resolves on every dial; ktun once
 * it resolved). Streams are refused until it resolves. */
static void server_lookup_target(struct server *sv)
{
    if (!sv->resolver || resolver_busy(sv->resolver))
        return;
    snprintf(sv->lookup, sizeof(sv->lookup), "%s", sv->cfg->target);
    resolver_start(sv->resolver, sv->lookup, false);
}

static void server_target_resolved(void *user, int rc, const struct net_addr *a, const char *err)
{
    struct server *sv = user;
    if (strcmp(sv->lookup, sv->cfg->target) != 0 || sv->target_unix) {
        if (!sv->target_unix)
            server_lookup_target(sv); /* --target changed meanwhile (SIGHUP) */
        return;
    }
    if (rc != 0) {
        LOG_WARN("server: --target: %s (looked up again for the next stream)", err);
        return;
    }
    char as[NET_ADDR_STRLEN];
    sv->target = *a;
    server_target_known(sv);
    LOG_INFO("server: --target %s resolved to %s", sv->cfg->target,
             net_addr_str(a, as, sizeof(as)));
}

/* Dials the server's own -t target. Returns the socket or -1 (logged with |sid|). */
static int server_dial_default(struct server *sv, struct sess *s, uint32_t sid)
{
    char err[NET_ERR_LEN];
    int fd = ERR_INVAL;
    if (sv->target_unix) {
        fd = net_unix_connect(sv->cfg->target, err);
    } else if (sv->target_resolved) {
        fd = net_tcp_connect(&sv->target, err);
    } else {
        server_lookup_target(sv);
        snprintf(err, sizeof(err), "--target does not resolve (yet): looking it up");
    }
    if (fd < 0) {
        LOG_WARN("server: stream %u on %s: %s", sid, s->name, err);
        return -1;
    }
    return fd;
}

/* Logs a target refused by the allow-list: once per peer and target per minute. */
static void server_log_target_refused(struct server *sv, struct sess *s, const char *target)
{
    char as[NET_ADDR_STRLEN];
    uint8_t ip[16];
    net_addr_str(&s->peer, as, sizeof(as));
    sv->targets_refused++;
    /* the peer is its address without the port: a client that roams stays one peer */
    size_t n = server_addr_bytes(&s->peer, ip);
    uint64_t key = fwd_hash(fwd_hash(FWD_HASH_INIT, ip, n), target, strlen(target));
    if (fwd_logbook_pass(&sv->refused_book, key, shell_now_ms(), SERVER_REFUSED_LOG_MS))
        LOG_WARN("server: refused a stream from %s to %s: not the -t target and not in "
                 "--allow (%llu refused so far; this line once a minute per peer and target)",
                 as, target, (unsigned long long)sv->targets_refused);
}

/* Checks target |t| of stream |st|, at address |a|, against the allow-list (|ok|: admitted
 * already, by name) and dials it. Returns the socket, or minus the refusal's status. */
static int server_target_dial(struct server *sv, struct sess *s, struct stream *st,
                              const struct fwd_target *t, const struct net_addr *a, bool ok)
{
    char ts[FWD_HOST_MAX + 16], err[NET_ERR_LEN];
    fwd_target_str(t, ts, sizeof(ts));
    if (!ok) {
        uint8_t b[16];
        size_t n = server_addr_bytes(a, b);
        ok = n && allow_match(&sv->allow, b, n, t->port);
    }
    if (!ok) {
        server_log_target_refused(sv, s, ts);
        return -FWD_NOT_ALLOWED;
    }
    int fd = net_tcp_connect(a, err);
    if (fd < 0) {
        LOG_INFO("server: stream %u on %s to %s: %s", st->sid, s->name, ts, err);
        return -FWD_FAIL;
    }
    if (!sv->sh.params.quiet)
        LOG_STREAM("stream: %u on %s to %s", st->sid, s->name, ts);
    return fd;
}

/* A name lookup of a stream's target (the stream's role_data). */
struct server_lookup {
    struct server *sv;
    struct fwd_target t;
    bool named;              /* a name entry admitted it already */
};

static void server_target_looked_up(void *user, int rc, const struct net_addr *a,
                                    const char *err)
{
    struct stream *st = user;
    struct server_lookup *lk = st->role_data;
    if (rc != 0) {
        LOG_INFO("server: stream %u on %s: %s", st->sid, st->s->name, err);
        stream_target_done(st, -FWD_HOST_UNREACH);
        return;
    }
    stream_target_done(st, server_target_dial(lk->sv, st->s, st, &lk->t, a, lk->named));
}

/* The stream_target hook: a ktun peer named |t|. Checks it against the allow-list and dials
 * it; a name the list does not settle is looked up off the loop first (docs/forwards.md). */
static int server_stream_target(struct shell *sh, struct sess *s, struct stream *st,
                                const struct fwd_target *t)
{
    struct server *sv = container_of(sh, struct server, sh);
    if (t->atyp == FWD_ATYP_DEFAULT) {
        int fd = server_dial_default(sv, s, st->sid);
        return fd >= 0 ? fd : -FWD_FAIL;
    }
    if (t->atyp == FWD_ATYP_NAME) {
        bool ok = allow_match_name(&sv->allow, t->name, strlen(t->name), t->port);
        if (!ok && !allow_port_possible(&sv->allow, t->port)) {
            char ts[FWD_HOST_MAX + 16];
            server_log_target_refused(sv, s, fwd_target_str(t, ts, sizeof(ts)));
            return -FWD_NOT_ALLOWED;
        }
        char hp[FWD_HOST_MAX + 16];
        snprintf(hp, sizeof(hp), strchr(t->name, ':') ? "[%s]:%u" : "%s:%u", t->name, t->port);
        struct server_lookup *lk = calloc(1, sizeof(*lk));
        st->role_data = lk;
        if (!lk || !(st->res = resolver_new(sh->loop, server_target_looked_up, st)) ||
            resolver_start(st->res, hp, false) != 0)
            return -FWD_FAIL; /* the stream frees what was made */
        lk->sv = sv;
        lk->t = *t;
        lk->named = ok;
        return STREAM_TARGET_WAIT;
    }
    struct net_addr a;
    memset(&a, 0, sizeof(a));
    if (t->atyp == FWD_ATYP_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, t->addr, 4);
        a.len = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, t->addr, 16);
        a.len = sizeof(*in6);
    }
    net_addr_set_port(&a, t->port);
    return server_target_dial(sv, s, st, t, &a, false);
}

static void server_stream_accept(struct shell *sh, struct sess *s, uint32_t sid)
{
    struct server *sv = container_of(sh, struct server, sh);
    if (tunnel_peer_is_ktun(s->tun)) {
        /* a ktun peer's streams start with their target (docs/forwards.md) */
        stream_accept_header(s, sid);
        return;
    }
    int fd = server_dial_default(sv, s, sid);
    if (fd < 0) {
        tunnel_stream_release(s->tun, sid);
        return;
    }
    stream_attach(s, sid, fd, true);
}

static void server_shutdown(struct shell *sh)
{
    struct server *sv = container_of(sh, struct server, sh);
    for (size_t i = 0; i < sv->nls; i++)
        ev_io_stop(sh->loop, &sv->ls[i].io);
    if (sv->tcp.fd >= 0)
        ev_io_stop(sh->loop, &sv->tcp_io);
    resolver_free(sv->resolver);
    sv->resolver = NULL;
    ev_timer_stop(sh->loop, &sv->refused_timer);
}

/* SIGHUP: the command line and -c read again. New sessions take KCP, FEC, smux and
 * compression changes; --target applies to new streams; --maxsessions, the log level,
 * --quiet and --bufbudget at once. --listen, --key and --crypt need a restart (one listener
 * opens every datagram with one crypt object). A configuration that does not validate, or
 * that changes what only a restart can, is logged and ignored. */
static void server_reload(struct shell *sh)
{
    struct server *sv = container_of(sh, struct server, sh);
    char err[CONFIG_ERR_MAX + CONFIG_PATH_MAX], ro[256];
    struct server_reload *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->cfg.role = CONFIG_SERVER;
    if (config_reload(&r->cfg, err, sizeof(err)) != 0) {
        LOG_WARN("reload: %s; the running configuration stays", err);
        free(r);
        return;
    }
    config_restart_only(sv->cfg, &r->cfg, ro, sizeof(ro));
    if (ro[0]) {
        LOG_WARN("reload: %s cannot change without a restart; the running configuration stays",
                 ro);
        free(r);
        return;
    }
    bool new_target = strcmp(r->cfg.target, sv->cfg->target) != 0;
    struct allow_list allow;
    if (new_target)
        sv->target_resolved = false;
    if (server_build_allow(sv, &r->cfg, &allow) != 0) {
        free(r);
        return;
    }
    allow_free(&sv->allow);
    sv->allow = allow;
    r->next = sv->reloads;
    sv->reloads = r;
    sv->cfg = &r->cfg;
    shell_reconfigure(sh, sv->cfg, NULL);
    server_set_maxsessions(sv);
    if (new_target) {
        sv->target_unix = config_target_is_unix(sv->cfg);
        sv->target_resolved = false;
        if (!sv->target_unix)
            server_lookup_target(sv);
    }
    LOG_INFO("reload: configuration read again; new sessions use it");
}

/* Binds one UDP socket per port of --listen (kcptun's -l :MIN-MAX binds each port itself).
 * Returns 0, or -1 after logging why. */
static int server_listen(struct server *sv, const struct net_addr *base, uint16_t lo,
                         uint16_t hi)
{
    const struct config *cfg = sv->cfg;
    char err[NET_ERR_LEN];
    size_t n = lo ? (size_t)(hi - lo) + 1 : 1;
    sv->ls = calloc(n, sizeof(*sv->ls));
    if (!sv->ls) {
        LOG_ERROR("server: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct net_addr a = *base;
        if (lo)
            net_addr_set_port(&a, (uint16_t)(lo + i));
        int fd = net_udp_socket(a.ss.ss_family, &a, err);
        if (fd < 0) {
            LOG_ERROR("server: %s", err);
            return -1;
        }
        struct server_listener *l = &sv->ls[sv->nls++];
        l->sv = sv;
        net_udp_init(&l->udp, fd, true, true);
        if (cfg->sockbuf > 0 && net_set_sockbuf(fd, cfg->sockbuf, err) != 0 && i == 0)
            LOG_WARN("server: %s", err);
        if (cfg->dscp > 0 && net_set_dscp(fd, a.ss.ss_family, cfg->dscp, err) != 0 && i == 0)
            LOG_WARN("server: %s", err);
    }
    return 0;
}

int server_run(const struct config *cfg)
{
    char err[NET_ERR_LEN];
    struct net_addr listen_addr;
    char listen_base[CONFIG_ADDR_MAX + 16];
    uint16_t port_lo, port_hi;
    struct crypt *crypt = NULL;
    struct crypt_rng *rng = NULL;
    struct qpp *qpp = NULL;
    struct server *sv = NULL;
    int rc = 1;
    if (config_port_range(cfg->listen, listen_base, sizeof(listen_base), &port_lo, &port_hi) < 0 ||
        net_resolve(listen_base, true, &listen_addr, err) != 0) {
        LOG_ERROR("server: --listen: %s", err);
        return 1;
    }
    sv = calloc(1, sizeof(*sv));
    if (!sv)
        return 1;
    sv->cfg = cfg;
    sv->tcp.fd = -1;
    ev_timer_init(&sv->refused_timer, server_refused_timer_cb, LOG_REPEAT_MS / 1000.0 + 0.05, 0.);
    shell_raise_nofile();
    server_set_maxsessions(sv);
    sv->target_unix = config_target_is_unix(cfg);
    if (server_build_allow(sv, cfg, &sv->allow) != 0) {
        rc = 2;
        goto out;
    }
    if (!sv->target_unix && server_resolve_target(sv, err) != 0)
        LOG_WARN("server: --target: %s (retried for every stream)", err);
    if (cfg->tcp) {
        struct rawtcp *t = rawtcp_listen_range(&listen_addr, port_hi, cfg->sockbuf, err);
        if (!t) {
            LOG_ERROR("server: %s", err);
            rc = 2;
            goto out;
        }
        net_udp_init_raw(&sv->tcp, t);
    }
    crypt = shell_crypt_new(cfg, CRYPT_ROLE_SERVER, &rng);
    if (!crypt)
        goto out;
    if (server_listen(sv, &listen_addr, port_lo, port_hi) != 0)
        goto out;
    struct sess_params params;
    sess_params_from_config(cfg, &params);
    if (cfg->qpp && !(params.tun.mux.qpp = qpp = config_qpp_new(cfg, err, sizeof(err)))) {
        LOG_ERROR("server: %s", err);
        goto out;
    }
    struct shell_hooks hooks = {
        .stream_accept = server_stream_accept,
        .stream_target = server_stream_target,
        .sess_gone = server_sess_gone,
        .shutdown = server_shutdown,
        .reload = server_reload,
    };
    struct ev_loop *loop = EV_DEFAULT;
    if (!(sv->resolver = resolver_new(loop, server_target_resolved, sv))) {
        LOG_ERROR("server: out of memory");
        goto out;
    }
    shell_init(&sv->sh, loop, &params, false, crypt, &hooks, cfg->snmplog, cfg->snmpperiod_s);
    for (size_t i = 0; i < sv->nls; i++) {
        ev_io_init(&sv->ls[i].io, server_udp_cb, sv->ls[i].udp.fd, EV_READ);
        ev_io_start(EV_A_ &sv->ls[i].io);
    }
    if (sv->tcp.fd >= 0) {
        ev_io_init(&sv->tcp_io, server_tcp_cb, sv->tcp.fd, EV_READ);
        ev_io_start(EV_A_ &sv->tcp_io);
    }
    if (udpfwd_server_start(&sv->sh, cfg) != 0)
        goto out;
    char ls[NET_ADDR_STRLEN];
    char range[32] = "";
    if (port_lo)
        snprintf(range, sizeof(range), ", ports %u-%u", port_lo, port_hi);
    LOG_INFO("server: listening on %s%s%s, target %s",
             net_addr_str(&listen_addr, ls, sizeof(ls)), range,
             sv->tcp.fd >= 0 ? " (UDP and fake TCP)" : "", cfg->target);
    shell_run(&sv->sh);
    ev_loop_destroy(EV_A);
    rc = 0;
out:
    resolver_free(sv->resolver);
    for (size_t i = 0; i < sv->nls; i++)
        close(sv->ls[i].udp.fd);
    free(sv->ls);
    net_udp_close(&sv->tcp);
    while (sv->reloads) {
        struct server_reload *r = sv->reloads;
        sv->reloads = r->next;
        free(r);
    }
    crypt_probe_free(sv->probe);
    allow_free(&sv->allow);
    free(sv);
    crypt_free(crypt);
    crypt_rng_free(rng);
    qpp_free(qpp);
    return rc;
}
