/* SPDX-License-Identifier: MIT */
/* ktun-client: local TCP listener whose connections become streams over KCP sessions. */
#include "client/client.h"

#include "common/err.h"
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
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * kcptun's client policy (kcptun 20210922): sessions are created lazily, one per --conn slot,
 * on the first TCP connection that lands on the slot (round-robin over accepted connections).
 * Each session has its own UDP socket and a random conv. With --autoexpire a session takes new
 * streams only that long; it then leaves its slot and is closed --scavengettl seconds after
 * its expiry (checked every second, like kcptun's scavenger).
 */

/* --remoteaddr that does not resolve (a router starting before its DNS): retried after 1 s,
 * then twice as long each time, up to this many seconds. */
#define CLIENT_RESOLVE_MAX_S 60.0
/* shadowsocks-android's VPN mode: the app's socket-protection service, in the working
 * directory it starts the plugin in (net_set_protect). */
#define CLIENT_PROTECT_PATH "protect_path"
/* A session that heard nothing usable from the server this long after its creation is
 * explained in the log (tunnel_explain_silence), at most once per CLIENT_SILENT_LOG_MS. */
#define CLIENT_SILENT_MS 8000u
#define CLIENT_SILENT_LOG_MS 60000u
/* A session closed earlier is judged when it is gone if it lived this long. */
#define CLIENT_SILENT_MIN_MS 2000u

/* A session of the client: the shell's session plus its --conn slot and expiry. */
struct client_sess {
    struct sess s;          /* first: the shell allocates the wrapper */
    int slot;               /* --conn slot, -1 once expired */
    uint64_t expire_ms;     /* --autoexpire: no new streams after this (0: never) */
    uint64_t scavenge_ms;   /* close after this once expired (0: not yet) */
    bool silence_judged;    /* CLIENT_SILENT_MS after creation: checked for silence */
};

static struct client_sess *csess(struct sess *s)
{
    return container_of(s, struct client_sess, s);
}

/* A configuration read on SIGHUP, kept until exit: sessions made under it may still use its
 * crypt object. */
struct client_reload {
    struct config cfg;
    struct crypt *crypt;        /* its own crypt object if --key or --crypt changed, or NULL */
    struct crypt_rng *rng;
    struct client_reload *next;
};

struct client {
    struct shell sh;            /* loop, sessions, counters */
    const struct config *cfg;   /* validated configuration (borrowed) */
    struct net_addr remote;     /* server UDP address, last resolved (port: MIN of a range) */
    bool remote_ok;             /* |remote| holds a resolved address */
    char remote_base[CONFIG_ADDR_MAX + 16]; /* --remoteaddr, a range's "host:MIN" */
    uint16_t port_lo, port_hi;  /* -r host:MIN-MAX: a random port per session (0: no range) */
    ev_timer resolve_timer;     /* retries while --remoteaddr never resolved */
    struct resolver *resolver;  /* lookups of --remoteaddr, off the loop */
    char lookup[CONFIG_ADDR_MAX + 16]; /* the name of the lookup in flight */
    ev_timer hop_timer;         /* --hop */
    struct client_reload *reloads; /* configurations read on SIGHUP, newest first */
    double resolve_backoff;     /* seconds until the next retry */
    struct log_limit resolve_log; /* one line about failed lookups per 10 s */
    int lfd;                    /* TCP listener */
    ev_io accept_io;            /* listener readable */
    ev_timer scavenge_timer;    /* 1 s scavenger, with --autoexpire only */
    ev_timer accept_retry;      /* restarts accept_io after running out of fds */
    int spare_fd;               /* held in reserve to refuse connections when out of fds */
    uint64_t refused;           /* connections refused while out of fds */
    bool out_of_fds;            /* in such an episode (logged once at its start and end) */
    struct client_sess **slots; /* --conn slots, NULL when empty */
    ev_timer silence_timer;     /* 1 s: sessions CLIENT_SILENT_MS old are checked */
    struct log_limit silence_log; /* one silence line per CLIENT_SILENT_LOG_MS */
    unsigned probe_step;        /* formats tried after the server refused ours (tunnel.h) */
    bool probe_done;            /* the server answered a probed format, or none was left */
    uint64_t rr;                /* accepted connections, for round-robin */
    struct client_fwds *fwds;   /* -L and -D listeners (forward.c) */
};

static struct client_sess *client_start_sess(struct client *c, int slot, struct net_udp *udp,
                                             const struct net_addr *peer);
static void client_open_early(struct client *c);

/* Takes a resolved address of --remoteaddr. */
static void client_take_address(struct client *c, const struct net_addr *a)
{
    char as[NET_ADDR_STRLEN], bs[NET_ADDR_STRLEN];
    if (c->remote_ok && !net_addr_equal(a, &c->remote))
        LOG_INFO("client: --remoteaddr %s now resolves to %s (was %s)", c->remote_base,
                 net_addr_str(a, as, sizeof(as)), net_addr_str(&c->remote, bs, sizeof(bs)));
    else if (!c->remote_ok)
        LOG_INFO("client: --remoteaddr %s resolved to %s", c->remote_base,
                 net_addr_str(a, as, sizeof(as)));
    c->remote = *a;
    c->remote_ok = true;
}

/* Looks --remoteaddr up on the loop's thread: at start only, before any session exists.
 * Returns true if an address is known. */
static bool client_resolve_now(struct client *c)
{
    char err[NET_ERR_LEN];
    struct net_addr a;
    if (net_resolve(c->remote_base, false, &a, err) != 0) {
        if (log_limit_pass(&c->resolve_log, shell_now_ms(), 10000))
            LOG_WARN("client: --remoteaddr: %s", err);
        return c->remote_ok;
    }
    client_take_address(c, &a);
    return true;
}

/* Starts looking --remoteaddr up again (dynamic DNS: the address may have changed), off the
 * loop; the last address serves meanwhile. A lookup already in flight is answer enough. */
static void client_resolve(struct client *c)
{
    if (resolver_busy(c->resolver))
        return;
    snprintf(c->lookup, sizeof(c->lookup), "%s", c->remote_base);
    int rc = resolver_start(c->resolver, c->lookup, false);
    if (rc != 0 && log_limit_pass(&c->resolve_log, shell_now_ms(), 10000))
        LOG_WARN("client: --remoteaddr: cannot start a lookup: %s", err_str(rc));
}

/* Retries after 1 s, then twice as long each time, while no address is known. */
static void client_resolve_retry(struct client *c)
{
    struct ev_loop *loop = c->sh.loop;
    if (ev_is_active(&c->resolve_timer))
        return;
    ev_timer_set(&c->resolve_timer, c->resolve_backoff, 0.0);
    ev_timer_start(EV_A_ &c->resolve_timer);
    c->resolve_backoff = MIN(c->resolve_backoff * 2, CLIENT_RESOLVE_MAX_S);
}

/* A lookup ended. A new address also serves the sessions that do not hear from the server
 * (never answered yet, or on a replaced path): they keep their port of the server. */
static void client_resolved(void *user, int rc, const struct net_addr *a, const char *err)
{
    struct client *c = user;
    if (strcmp(c->lookup, c->remote_base) != 0) {
        client_resolve(c); /* --remoteaddr changed meanwhile (SIGHUP) */
        return;
    }
    if (rc != 0) {
        if (log_limit_pass(&c->resolve_log, shell_now_ms(), 10000))
            LOG_WARN("client: --remoteaddr: %s%s", err,
                     c->remote_ok ? " (keeping the last address)" : "");
        if (!c->remote_ok)
            client_resolve_retry(c);
        return;
    }
    bool first = !c->remote_ok;
    bool changed = c->remote_ok && !net_addr_equal(a, &c->remote);
    client_take_address(c, a);
    c->resolve_backoff = 1.0;
    if (first)
        client_open_early(c);
    if (!changed)
        return;
    for (struct sess *s = c->sh.sessions; s; s = s->next) {
        if ((s->path.answered && !s->path.tries) || a->ss.ss_family != s->peer.ss.ss_family)
            continue;
        struct net_addr to = *a;
        net_addr_set_port(&to, net_addr_port(&s->peer));
        char as[NET_ADDR_STRLEN];
        LOG_INFO("client: %s: the server is now at %s", s->name,
                 net_addr_str(&to, as, sizeof(as)));
        s->peer = to;
    }
}

static void client_resolve_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = container_of(w, struct client, resolve_timer);
    if (!c->remote_ok)
        client_resolve(c);
}

/* The server address of a new session: resolved again, and a random port of a range. */
static bool client_session_peer(struct client *c, struct net_addr *out)
{
    client_resolve(c);
    if (!c->remote_ok)
        return false;
    *out = c->remote;
    if (c->port_lo)
        net_addr_set_port(out, (uint16_t)(c->port_lo +
                                          randombytes_uniform((uint32_t)(c->port_hi -
                                                                         c->port_lo) + 1)));
    return true;
}

/* --hop: every session whose server is known to be ktun moves to another random port of the
 * range. */
static void client_hop_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = container_of(w, struct client, hop_timer);
    uint32_t span = (uint32_t)(c->port_hi - c->port_lo) + 1;
    for (struct sess *s = c->sh.sessions, *nx; s; s = nx) {
        nx = s->next;
        if (!tunnel_peer_is_ktun(s->tun))
            continue; /* a kcptun server would not follow (--peer ktun, exchange failed) */
        struct net_addr to = s->peer;
        uint32_t cur = (uint32_t)(net_addr_port(&to) - c->port_lo);
        uint32_t pick = (cur + 1 + randombytes_uniform(span - 1)) % span; /* never |cur| */
        net_addr_set_port(&to, (uint16_t)(c->port_lo + pick));
        sess_hop(s, &to);
        sess_pump(s); /* the keepalive sess_hop queued leaves now */
    }
    shell_flush_dgrams(&c->sh);
}

static struct client_sess *client_new_sess(struct client *c, int slot)
{
    char err[NET_ERR_LEN];
    struct net_addr peer;
    if (!client_session_peer(c, &peer))
        return NULL;
    struct net_udp udp;
    if (c->cfg->tcp) {
        struct rawtcp *t = c->cfg->tcp_auto ? rawtcp_dial_auto(&peer, c->cfg->sockbuf, err)
                                            : rawtcp_dial(&peer, c->cfg->sockbuf, err);
        if (!t) {
            LOG_ERROR("client: %s", err);
            return NULL;
        }
        net_udp_init_raw(&udp, t);
        return client_start_sess(c, slot, &udp, &peer);
    }
    int fd = net_udp_socket(peer.ss.ss_family, NULL, err);
    if (fd < 0) {
        LOG_ERROR("client: %s", err);
        return NULL;
    }
    if (c->cfg->sockbuf > 0 && net_set_sockbuf(fd, c->cfg->sockbuf, err) != 0)
        LOG_WARN("client: %s", err);
    if (c->cfg->dscp > 0 && net_set_dscp(fd, peer.ss.ss_family, c->cfg->dscp, err) != 0)
        LOG_WARN("client: %s", err);
    net_udp_init(&udp, fd, true, true);
    return client_start_sess(c, slot, &udp, &peer);
}

/* A session over |udp| (which it then owns) to |peer| in --conn slot |slot|. */
static struct client_sess *client_start_sess(struct client *c, int slot, struct net_udp *udp,
                                             const struct net_addr *peer)
{
    uint32_t conv;
    randombytes_buf(&conv, sizeof(conv));
    struct sess *s = sess_new(&c->sh, sizeof(struct client_sess), udp, true, peer, conv);
    if (!s)
        return NULL;
    struct client_sess *cs = csess(s);
    cs->slot = slot;
    if (!ev_is_active(&c->silence_timer))
        ev_timer_start(c->sh.loop, &c->silence_timer);
    if (c->cfg->autoexpire_s > 0)
        cs->expire_ms = s->created_ms + (uint64_t)c->cfg->autoexpire_s * 1000;
    return cs;
}

/* Takes |s| out of its slot; it keeps serving its streams until the scavenger closes it. */
static void client_retire(struct client *c, struct client_sess *s)
{
    c->slots[s->slot] = NULL;
    s->slot = -1;
    s->scavenge_ms = s->expire_ms + (uint64_t)c->cfg->scavengettl_s * 1000;
    LOG_INFO("client: %s expired, closing it in %d s", s->s.name, c->cfg->scavengettl_s);
}

static struct client_sess *client_pick(struct client *c)
{
    int idx = (int)(c->rr++ % (uint64_t)c->cfg->conn);
    struct client_sess *s = c->slots[idx];
    uint64_t now = shell_now_ms();
    if (s && s->expire_ms && now >= s->expire_ms) {
        client_retire(c, s);
        s = NULL;
    }
    if (!s) {
        s = client_new_sess(c, idx);
        c->slots[idx] = s;
    }
    return s;
}

/* A session's capability exchange (docs/extensions.md) takes a round trip, and a connection
 * that arrives meanwhile waits for it before its stream opens: a client that offers
 * capabilities outside the secure mode (which knows its peer from the start) opens its
 * sessions as soon as the server's address is known, so that the first connection finds the
 * exchange done. */
static void client_open_early(struct client *c)
{
    if (!c->remote_ok || !config_offers_caps(c->cfg) ||
        strcmp(c->cfg->crypt, CRYPT_SECURE_METHOD) == 0)
        return;
    for (int i = 0; i < c->cfg->conn; i++) {
        if (c->slots[i])
            continue;
        c->slots[i] = client_new_sess(c, i);
        if (c->slots[i])
            sess_pump(&c->slots[i]->s); /* the offer leaves now */
    }
    shell_flush_dgrams(&c->sh);
}

/* A session for a new UDP flow (common/udpfwd.h), as for a new connection. */
static struct sess *client_pick_sess(struct shell *sh)
{
    struct client *c = container_of(sh, struct client, sh);
    struct client_sess *s = c->remote_ok ? client_pick(c) : NULL;
    return s ? &s->s : NULL;
}

struct sess *client_stream_sess(struct client *c)
{
    struct client_sess *s = client_pick(c);
    return s ? &s->s : NULL;
}

/* Out of file descriptors: the pending connection cannot be accepted, and leaving it in the
 * backlog would keep the listener readable (a busy loop) and the peer waiting. Give back the
 * spare fd, accept and close the connection at once (the peer sees it refused), take the spare
 * again, and stop accepting for a moment. Logged once per episode. */
static void client_out_of_fds(struct client *c, const char *why)
{
    struct ev_loop *loop = c->sh.loop;
    if (!c->out_of_fds)
        LOG_WARN("client: %s: refusing new connections until descriptors free up", why);
    c->out_of_fds = true;
    if (c->spare_fd >= 0) {
        close(c->spare_fd);
        int fd = accept(c->lfd, NULL, NULL);
        if (fd >= 0) {
            close(fd);
            c->refused++;
        }
        c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    ev_io_stop(EV_A_ &c->accept_io);
    ev_timer_set(&c->accept_retry, 0.1, 0.0);
    ev_timer_start(EV_A_ &c->accept_retry);
}

static void client_accept_retry_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct client *c = container_of(w, struct client, accept_retry);
    ev_io_start(EV_A_ &c->accept_io);
}

static void client_accept_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = container_of(w, struct client, accept_io);
    for (int i = 0; i < 64; i++) {
        char err[NET_ERR_LEN] = "";
        struct net_addr peer;
        int fd = net_tcp_accept(c->lfd, &peer, err);
        if (fd == ERR_LIMIT) {
            client_out_of_fds(c, err);
            break;
        }
        if (fd < 0) {
            if (err[0])
                LOG_WARN("client: %s", err);
            break;
        }
        if (c->out_of_fds) {
            LOG_INFO("client: accepting connections again (%llu refused meanwhile)",
                     (unsigned long long)c->refused);
            c->refused = 0;
            c->out_of_fds = false;
        }
        struct client_sess *s = client_pick(c);
        if (!s) {
            close(fd);
            continue;
        }
        int rc = stream_open_local(&s->s, fd);
        if (rc != 0)
            LOG_WARN("client: cannot open a stream on %s: %s", s->s.name, err_str(rc));
    }
    shell_flush_dgrams(&c->sh);
}

static void client_scavenge_cb(EV_P_ ev_timer *w, int revents)
{
    (void)revents;
    struct client *c = container_of(w, struct client, scavenge_timer);
    uint64_t now = shell_now_ms();
    for (struct sess *s = c->sh.sessions, *nx; s; s = nx) {
        nx = s->next;
        struct client_sess *cs = csess(s);
        if (cs->slot >= 0 && cs->expire_ms && now >= cs->expire_ms)
            client_retire(c, cs);
        if (cs->slot < 0 && cs->scavenge_ms && now >= cs->scavenge_ms)
            sess_close(s, "scavenged");
    }
    shell_flush_dgrams(&c->sh);
}

static const char *comp_name(bool nocomp)
{
    return nocomp ? "uncompressed" : "compressed";
}

/* A session died because the server's smux refused it (tunnel_peer_refused): new sessions
 * try the next format, unless a later one is already being tried. */
static void client_refused(struct client *c, struct sess *s)
{
    struct tunnel_config *tc = &c->sh.params.tun;
    int ver, nv;
    bool comp, nn;
    tunnel_format(s->tun, &ver, &comp);
    if (c->probe_done || ver != tc->mux.version || comp == tc->nocomp)
        return;
    if (!tunnel_next_format(&c->probe_step, c->cfg->smuxver, c->cfg->nocomp, c->cfg->smuxver_set,
                            c->cfg->nocomp_set, &nv, &nn)) {
        c->probe_done = true;
        tc->replay_max = 0; /* nothing left to try: connections are not opened again */
        LOG_WARN("client: the server refused smux v%d %s too, the last format left to try%s: "
                 "give both ends the same --smuxver and --nocomp (and --QPP)", ver,
                 comp_name(!comp), c->cfg->smuxver_set || c->cfg->nocomp_set
                                      ? " (--smuxver/--nocomp given here are not probed)" : "");
        return;
    }
    LOG_WARN("client: the server refused smux v%d %s: new sessions try smux v%d %s", ver,
             comp_name(!comp), nv, comp_name(nn));
    tc->mux.version = nv;
    tc->nocomp = nn;
}

/* A connection whose session the server refused opens again on the next one. */
static void client_replay(struct shell *sh, int fd, const uint8_t *data, size_t len)
{
    struct client *c = container_of(sh, struct client, sh);
    struct client_sess *s = c->remote_ok ? client_pick(c) : NULL;
    if (!s) {
        close(fd);
        return;
    }
    int rc = stream_open_replay(&s->s, fd, data, len);
    if (rc != 0)
        LOG_WARN("client: cannot open a stream again on %s: %s", s->s.name, err_str(rc));
}

/* The server answered: after a probe, say what it speaks. */
static void client_heard(struct shell *sh, struct sess *s)
{
    struct client *c = container_of(sh, struct client, sh);
    int ver;
    bool comp;
    sh->params.tun.replay_max = 0; /* its smux takes ours: no more copies */
    if (c->probe_step == 0 || c->probe_done || !tunnel_format(s->tun, &ver, &comp))
        return;
    c->probe_done = true;
    LOG_WARN("client: the server speaks smux v%d %s: give this client --smuxver %d%s to skip "
             "the probe", ver, comp_name(!comp), ver, comp ? " --nocomp=false" : " --nocomp");
}

/* Logs what the silence of |s| can mean, if it heard nothing usable (once per session, one
 * line per CLIENT_SILENT_LOG_MS in all). */
static void client_judge_silence(struct client *c, struct client_sess *cs, uint64_t now)
{
    char msg[400];
    cs->silence_judged = true;
    if (tunnel_explain_silence(cs->s.tun, now - cs->s.created_ms, msg, sizeof(msg)) &&
        log_limit_pass(&c->silence_log, now, CLIENT_SILENT_LOG_MS))
        LOG_WARN("client: %s: %s", cs->s.name, msg);
}

static void client_silence_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = container_of(w, struct client, silence_timer);
    uint64_t now = shell_now_ms();
    bool pending = false;
    for (struct sess *s = c->sh.sessions; s; s = s->next) {
        struct client_sess *cs = csess(s);
        if (cs->silence_judged)
            continue;
        if (now - s->created_ms < CLIENT_SILENT_MS) {
            pending = true;
            continue;
        }
        client_judge_silence(c, cs, now);
    }
    if (!pending)
        ev_timer_stop(EV_A_ w); /* no wake-ups while no session is young */
}

static void client_sess_gone(struct shell *sh, struct sess *s)
{
    struct client *c = container_of(sh, struct client, sh);
    struct client_sess *cs = csess(s);
    if (tunnel_peer_refused(s->tun))
        client_refused(c, s);
    uint64_t now = shell_now_ms();
    /* closed young (its path looked dead, or a shutdown) but old enough to judge */
    if (!cs->silence_judged && now - s->created_ms >= CLIENT_SILENT_MIN_MS)
        client_judge_silence(c, cs, now);
    if (cs->slot >= 0 && c->slots[cs->slot] == cs)
        c->slots[cs->slot] = NULL;
}

/* SIGHUP: the command line and -c read again. New sessions take everything (also a new
 * --key or --crypt, --remoteaddr, --hop); live sessions keep their KCP, FEC, smux and crypt
 * settings; log level, --quiet, --bufbudget, --autoexpire and the --hop schedule apply at
 * once. A configuration that does not validate, or that changes what only a restart can,
 * is logged and ignored. */
static void client_reload(struct shell *sh)
{
    struct client *c = container_of(sh, struct client, sh);
    struct ev_loop *loop = sh->loop;
    char err[CONFIG_ERR_MAX + CONFIG_PATH_MAX], ro[256];
    struct client_reload *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->cfg.role = CONFIG_CLIENT;
    if (config_reload(&r->cfg, err, sizeof(err)) != 0) {
        LOG_WARN("reload: %s; the running configuration stays", err);
        free(r);
        return;
    }
    config_restart_only(c->cfg, &r->cfg, ro, sizeof(ro));
    if (ro[0]) {
        LOG_WARN("reload: %s cannot change without a restart; the running configuration stays",
                 ro);
        free(r);
        return;
    }
    const struct config *n = &r->cfg;
    if (strcmp(n->key, c->cfg->key) != 0 || strcmp(n->crypt, c->cfg->crypt) != 0) {
        r->crypt = shell_crypt_new(n, CRYPT_ROLE_CLIENT, &r->rng);
        if (!r->crypt) {
            LOG_WARN("reload: the new --crypt/--key cannot be used; the running configuration "
                     "stays");
            free(r);
            return;
        }
    }
    char base[sizeof(c->remote_base)];
    uint16_t lo, hi;
    config_port_range(n->remoteaddr, base, sizeof(base), &lo, &hi);
    if (strcmp(base, c->remote_base) != 0) {
        strcpy(c->remote_base, base);
        c->remote_ok = false;
        c->resolve_backoff = 1.0;
        ev_timer_stop(EV_A_ &c->resolve_timer);
        client_resolve(c);
    }
    c->port_lo = lo;
    c->port_hi = hi;
    shell_reconfigure(sh, n, r->crypt);
    ev_timer_stop(EV_A_ &c->hop_timer);
    if (n->hop_s > 0) {
        ev_timer_set(&c->hop_timer, n->hop_s, n->hop_s);
        ev_timer_start(EV_A_ &c->hop_timer);
    }
    if (n->autoexpire_s != c->cfg->autoexpire_s) {
        for (struct sess *s = sh->sessions; s; s = s->next) {
            struct client_sess *cs = csess(s);
            if (cs->slot >= 0)
                cs->expire_ms = n->autoexpire_s > 0
                                    ? s->created_ms + (uint64_t)n->autoexpire_s * 1000
                                    : 0;
        }
    }
    if (n->autoexpire_s > 0 && !ev_is_active(&c->scavenge_timer))
        ev_timer_start(EV_A_ &c->scavenge_timer);
    r->next = c->reloads;
    c->reloads = r;
    c->cfg = n;
    LOG_INFO("reload: configuration read again; new sessions use it%s",
             r->crypt ? " (with the new --crypt/--key)" : "");
}

/* A session's path looked dead: the server's name is looked up again (dynamic DNS); a new
 * address moves the sessions that do not hear from the server (client_resolved). */
static void client_path_change(struct shell *sh, struct sess *s)
{
    (void)s;
    client_resolve(container_of(sh, struct client, sh));
}

static void client_shutdown(struct shell *sh)
{
    struct client *c = container_of(sh, struct client, sh);
    ev_io_stop(sh->loop, &c->accept_io);
    ev_timer_stop(sh->loop, &c->accept_retry);
    client_fwds_stop(c->fwds);
    ev_timer_stop(sh->loop, &c->scavenge_timer);
    ev_timer_stop(sh->loop, &c->resolve_timer);
    ev_timer_stop(sh->loop, &c->hop_timer);
    ev_timer_stop(sh->loop, &c->silence_timer);
    resolver_free(c->resolver);
    c->resolver = NULL;
}

int client_run(const struct config *cfg)
{
    char err[NET_ERR_LEN];
    struct net_addr local;
    struct crypt *crypt = NULL;
    struct crypt_rng *rng = NULL;
    struct qpp *qpp = NULL;
    struct client *c = NULL;
    int rc = 1;
    if (net_resolve(cfg->localaddr, true, &local, err) != 0) {
        LOG_ERROR("client: --localaddr: %s", err);
        return 1;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return 1;
    c->cfg = cfg;
    c->lfd = -1;
    shell_raise_nofile(); /* every connection is a descriptor */
    if (cfg->android_vpn) {
        net_set_protect(CLIENT_PROTECT_PATH);
        LOG_INFO("client: Android VPN mode: every UDP socket is handed to ./%s first",
                 CLIENT_PROTECT_PATH);
    }
    c->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (config_port_range(cfg->remoteaddr, c->remote_base, sizeof(c->remote_base), &c->port_lo,
                          &c->port_hi) < 0) {
        LOG_ERROR("client: --remoteaddr: bad port range '%s'", cfg->remoteaddr);
        goto out;
    }
    if (cfg->tcp) {
        /* the raw socket's family: the server's if its name resolves already */
        int family = client_resolve_now(c) ? c->remote.ss.ss_family : AF_INET;
        if (rawtcp_prepare(family, err) != 0) {
            LOG_ERROR("client: %s", err);
            rc = 2;
            goto out;
        }
    }
    crypt = shell_crypt_new(cfg, CRYPT_ROLE_CLIENT, &rng);
    if (!crypt)
        goto out;
    c->slots = calloc((size_t)cfg->conn, sizeof(*c->slots));
    /* with -L or -D forwards, the -l listener only if asked for */
    bool want_l = cfg->localaddr_set || (!cfg->tcpfwd[0] && !cfg->socks[0]);
    if (want_l)
        c->lfd = net_tcp_listen(&local, 1024, err);
    if (!c->slots || (want_l && c->lfd < 0)) {
        LOG_ERROR("client: %s", c->slots ? err : "out of memory");
        goto out;
    }
    struct sess_params params;
    sess_params_from_config(cfg, &params);
    if (cfg->qpp && !(params.tun.mux.qpp = qpp = config_qpp_new(cfg, err, sizeof(err)))) {
        LOG_ERROR("client: %s", err);
        goto out;
    }
    /* until the server is heard, streams keep what they send: its smux may refuse ours */
    if (!cfg->smuxver_set || !cfg->nocomp_set)
        params.tun.replay_max = TUNNEL_REPLAY_MAX;
    struct shell_hooks hooks = {
        .sess_gone = client_sess_gone,
        .replay = client_replay,
        .shutdown = client_shutdown,
        .reload = client_reload,
        .path_change = client_path_change,
        .heard = client_heard,
    };
    struct ev_loop *loop = EV_DEFAULT;
    c->resolver = resolver_new(loop, client_resolved, c);
    if (!c->resolver) {
        LOG_ERROR("client: out of memory");
        goto out;
    }
    c->fwds = client_fwds_start(c, loop, cfg);
    if (!c->fwds)
        goto out;
    shell_init(&c->sh, loop, &params, true, crypt, &hooks, cfg->snmplog, cfg->snmpperiod_s);
    ev_io_init(&c->accept_io, client_accept_cb, c->lfd, EV_READ);
    if (c->lfd >= 0)
        ev_io_start(EV_A_ &c->accept_io);

    ev_timer_init(&c->scavenge_timer, client_scavenge_cb, 1.0, 1.0);
    ev_init(&c->accept_retry, client_accept_retry_cb);
    if (cfg->autoexpire_s > 0)
        ev_timer_start(EV_A_ &c->scavenge_timer);
    ev_init(&c->resolve_timer, client_resolve_cb);
    ev_timer_init(&c->silence_timer, client_silence_cb, 1.0, 1.0);
    ev_timer_init(&c->hop_timer, client_hop_cb, cfg->hop_s, cfg->hop_s);
    if (cfg->hop_s > 0)
        ev_timer_start(EV_A_ &c->hop_timer);
    c->resolve_backoff = 1.0;
    if (!c->remote_ok && !client_resolve_now(c)) {
        LOG_WARN("client: retrying --remoteaddr with backoff (up to every %.0f s); connections "
                 "are refused until it resolves", CLIENT_RESOLVE_MAX_S);
        client_resolve_retry(c);
    }
    if (udpfwd_client_start(&c->sh, cfg, client_pick_sess) != 0) {
        rc = 2;
        goto out;
    }
    client_open_early(c);
    char ls[NET_ADDR_STRLEN], rs[NET_ADDR_STRLEN];
    LOG_INFO("client: listening on %s, server %s%s",
             c->lfd >= 0 ? net_addr_str(&local, ls, sizeof(ls)) : "(-L/-D only)",
             c->remote_ok ? net_addr_str(&c->remote, rs, sizeof(rs)) : cfg->remoteaddr,
             c->port_lo ? " (a random port of the range per session)" : "");
    shell_run(&c->sh);
    ev_loop_destroy(EV_A);
    rc = 0;
out:
    resolver_free(c->resolver);
    client_fwds_free(c->fwds);
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->spare_fd >= 0)
        close(c->spare_fd);
    free(c->slots);
    while (c->reloads) {
        struct client_reload *r = c->reloads;
        c->reloads = r->next;
        crypt_free(r->crypt);
        crypt_rng_free(r->rng);
        free(r);
    }
    free(c);
    crypt_free(crypt);
    crypt_rng_free(rng);
    qpp_free(qpp);
    return rc;
}
