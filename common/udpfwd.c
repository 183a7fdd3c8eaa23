/* SPDX-License-Identifier: MIT */
/* libev shell: UDP forwards over the datagram channel (see udpfwd.h). */
#include "common/udpfwd.h"

#include "common/allow.h"
#include "common/config.h"
#include "common/dgram.h"
#include "common/err.h"
#include "common/ext.h"
#include "common/fwd.h"
#include "common/log.h"
#include "common/net.h"
#include "common/resolve.h"
#include "common/sess.h"
#include "common/shell.h"
#include "common/udpflow.h"
#include "common/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UDPFWD_DGRAM_MAX 65536   /* read buffer: the largest UDP payload */
#define UDPFWD_READS 64          /* datagrams read per readiness event */
#define UDPFWD_PUMP_MAX 64       /* sessions pumped after one expiry scan */

struct udpfwd;

/* Client: one -U forward. */
struct uclisten {
    struct udpfwd *u;
    int fd;
    ev_io io;
    char target[UDPFLOW_SPEC_MAX];
    size_t tlen;
    struct uclisten *next;
};

/* Client: one flow, a source address of one forward. */
struct ucflow {
    struct ucflow *prev, *next;
    struct uclisten *l;
    struct net_addr src;
    uint32_t id;
    struct sess *s;
    bool confirmed;             /* the server sent EXT_FLOW_OPEN: no target any more */
    uint64_t last_ms;
};

/* Server: one open flow, a connected socket towards its target. */
struct usflow {
    struct udpfwd *u;
    struct sess *s;
    uint32_t id;
    int fd;
    ev_io io;
};

/* Server: a datagram held while its flow's target name is looked up. */
struct uqdgram {
    struct uqdgram *next;
    size_t len;
    uint8_t data[];
};

/* Server: a flow whose target is a name being looked up off the loop; its datagrams wait
 * (at most UDPFWD_QUEUE_MAX) and go out once the flow opens. */
struct uspending {
    struct uspending *prev, *next;
    struct udpfwd_sess *us;
    uint32_t id;
    uint16_t port;
    bool named;                 /* admitted by name already: any address goes */
    struct resolver *res;
    uint64_t started_ms;
    struct uqdgram *head, *tail;
    size_t nq;
    char text[CONFIG_ADDR_MAX]; /* the target as the peer wrote it ("" for -t) */
    char hostport[CONFIG_ADDR_MAX];
};

/* Server: the flows of one session. */
struct udpfwd_sess {
    struct udpfwd *u;
    struct udpflow_table tab;
    struct sess *s;
    struct uspending *pending;  /* flows waiting for a name lookup */
    struct udpfwd_sess *prev, *next;
};

struct udpfwd {
    struct shell *sh;
    bool is_client;
    struct udpflow_limits lim;
    ev_timer expiry;            /* 1 s: idle flows */
    /* client */
    struct uclisten *listeners;
    struct ucflow *flows;
    size_t nflows;
    uint32_t next_id;
    struct sess *(*pick)(struct shell *sh);
    struct log_limit nopeer_log;
    /* server */
    struct udpfwd_sess *sessions;
    struct allow_list allow;
    struct net_addr target;     /* -t, resolved at start */
    bool target_ok;
    char target_text[CONFIG_ADDR_MAX];
    struct fwd_logbook refused_book; /* one refusal line per peer address and target */
    uint64_t refused;
    size_t npending;            /* flows waiting for a name lookup, in all sessions */
    struct log_limit limit_log;
    uint8_t buf[UDPFWD_DGRAM_MAX];
};

static void count_drop(struct udpfwd *u)
{
    u->sh->base.v[SNMP_DGRAM_DROPPED]++;
}

/* ---- client --------------------------------------------------------------------------- */

static void ucflow_free(struct udpfwd *u, struct ucflow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        u->flows = f->next;
    if (f->next)
        f->next->prev = f->prev;
    u->nflows--;
    free(f);
}

static struct ucflow *ucflow_by_src(struct udpfwd *u, struct uclisten *l,
                                    const struct net_addr *src)
{
    for (struct ucflow *f = u->flows; f; f = f->next)
        if (f->l == l && net_addr_equal(&f->src, src))
            return f;
    return NULL;
}

static struct ucflow *ucflow_by_id(struct udpfwd *u, struct sess *s, uint32_t id)
{
    for (struct ucflow *f = u->flows; f; f = f->next)
        if (f->id == id && f->s == s)
            return f;
    return NULL;
}

/* A datagram from a local application on forward |l|. Returns the session used (to pump). */
static struct sess *client_datagram(struct udpfwd *u, struct uclisten *l, const uint8_t *p,
                                    size_t len, const struct net_addr *src, uint64_t now)
{
    struct ucflow *f = ucflow_by_src(u, l, src);
    if (!f) {
        if (u->nflows >= u->lim.total) {
            count_drop(u);
            return NULL;
        }
        struct sess *s = u->pick(u->sh);
        if (!s || !(f = calloc(1, sizeof(*f)))) {
            count_drop(u);
            return NULL;
        }
        f->l = l;
        f->src = *src;
        f->id = u->next_id++;
        f->s = s;
        f->next = u->flows;
        if (u->flows)
            u->flows->prev = f;
        u->flows = f;
        u->nflows++;
    }
    f->last_ms = now;
    int rc = tunnel_dgram_send(f->s->tun, f->id, f->confirmed ? NULL : (const uint8_t *)l->target,
                               f->confirmed ? 0 : l->tlen, p, len); /* "": the server's -t */
    if (rc == ERR_PROTO && log_limit_pass(&u->nopeer_log, now, LOG_REPEAT_MS))
        LOG_WARN("udp: %s: the server does not speak ktun's datagram channel (kcptun, or "
                 "--peer kcptun): -U needs a ktun server; datagrams dropped", f->s->name);
    return f->s;
}

static void client_listen_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct uclisten *l = container_of(w, struct uclisten, io);
    struct udpfwd *u = l->u;
    struct sess *last = NULL;
    for (int i = 0; i < UDPFWD_READS; i++) {
        struct net_addr src;
        src.len = sizeof(src.ss);
        ssize_t n = recvfrom(l->fd, u->buf, sizeof(u->buf), 0, (struct sockaddr *)&src.ss,
                             &src.len);
        if (n < 0)
            break;
        struct sess *s = client_datagram(u, l, u->buf, (size_t)n, &src, shell_now_ms());
        if (last && s != last)
            sess_pump(last); /* another session: the previous one's datagrams leave now */
        last = s;
    }
    if (last)
        sess_pump(last);
    shell_flush_dgrams(u->sh);
}

static void client_dgram(struct udpfwd *u, struct sess *s, const struct tunnel_dgram *d)
{
    struct ucflow *f = ucflow_by_id(u, s, d->flow);
    if (!f) {
        count_drop(u);
        return;
    }
    f->last_ms = shell_now_ms();
    if (sendto(f->l->fd, d->data, d->len, 0, (const struct sockaddr *)&f->src.ss, f->src.len) < 0)
        count_drop(u);
}

static int client_open(struct udpfwd *u, const char *spec_text)
{
    struct udpflow_spec spec;
    char why[CONFIG_ERR_MAX], err[NET_ERR_LEN];
    if (udpflow_parse_spec(spec_text, &spec, why, sizeof(why)) < 0) {
        LOG_ERROR("udp: -U %s", why);
        return -1;
    }
    struct net_addr a;
    if (net_resolve(spec.listen, true, &a, err) != 0) {
        LOG_ERROR("udp: -U %s: %s", spec_text, err);
        return -1;
    }
    int fd = net_udp_socket(a.ss.ss_family, &a, err);
    if (fd < 0) {
        LOG_ERROR("udp: -U %s: %s", spec_text, err);
        return -1;
    }
    struct uclisten *l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        return -1;
    }
    l->u = u;
    l->fd = fd;
    snprintf(l->target, sizeof(l->target), "%s", spec.target);
    l->tlen = strlen(l->target);
    ev_io_init(&l->io, client_listen_cb, fd, EV_READ);
    ev_io_start(u->sh->loop, &l->io);
    l->next = u->listeners;
    u->listeners = l;
    char as[NET_ADDR_STRLEN];
    LOG_INFO("udp: forwarding %s to %s", net_addr_str(&a, as, sizeof(as)),
             spec.target[0] ? spec.target : "the server's -t target");
    return 0;
}

/* Client: closes idle flows, telling the server. */
static void client_expire(struct udpfwd *u, uint64_t now)
{
    struct sess *pump[UDPFWD_PUMP_MAX];
    size_t np = 0;
    for (struct ucflow *f = u->flows, *nx; f; f = nx) {
        nx = f->next;
        if (now - f->last_ms < u->lim.idle_ms)
            continue;
        tunnel_flow_signal(f->s->tun, EXT_FLOW_CLOSE, f->id);
        bool seen = false;
        for (size_t i = 0; i < np; i++)
            seen |= pump[i] == f->s;
        if (!seen && np < UDPFWD_PUMP_MAX)
            pump[np++] = f->s;
        ucflow_free(u, f);
    }
    for (size_t i = 0; i < np; i++)
        sess_pump(pump[i]);
}

/* ---- server --------------------------------------------------------------------------- */

static void usflow_close_fd(struct usflow *uf)
{
    ev_io_stop(uf->u->sh->loop, &uf->io);
    close(uf->fd);
    free(uf);
}

/* udpflow_expire / udpflow_table_free: an open flow goes. */
static void server_idle_cb(void *cb_user, uint32_t id, void *flow_user)
{
    struct udpfwd_sess *us = cb_user;
    usflow_close_fd(flow_user);
    if (us->s)
        tunnel_flow_signal(us->s->tun, EXT_FLOW_CLOSE, id);
}

static void server_flow_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct usflow *uf = container_of(w, struct usflow, io);
    struct udpfwd *u = uf->u;
    struct sess *s = uf->s;
    uint32_t id = uf->id;
    bool any = false;
    for (int i = 0; i < UDPFWD_READS; i++) {
        ssize_t n = recv(uf->fd, u->buf, sizeof(u->buf), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            continue; /* an ICMP error of an earlier datagram (ECONNREFUSED): go on */
        }
        tunnel_dgram_send(s->tun, id, NULL, 0, u->buf, (size_t)n);
        any = true;
    }
    if (!any)
        return;
    struct udpflow *f = udpflow_find(&s->uflows->tab, id);
    if (f)
        f->last_ms = shell_now_ms();
    if (sess_pump(s))
        shell_flush_dgrams(u->sh);
}

/* The address of |a| as bytes for allow_match: stores its length (4 or 16). */
static const uint8_t *addr_bytes(const struct net_addr *a, size_t *len)
{
    if (a->ss.ss_family == AF_INET) {
        *len = 4;
        return (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    }
    *len = 16;
    return (const uint8_t *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
}

/* What the text of a target settles (server_check_name). */
struct target_check {
    bool is_ip;     /* an address literal: nothing to look up */
    bool named;     /* admitted as written: any address it has goes */
    uint16_t port;
};

/* May |text| ("host:port", from the peer) be opened, as far as its text tells? The -t target
 * as written and --allow (names, addresses) decide; a name --allow does not name may still
 * go by the address it resolves to (server_check_addr). */
static bool server_check_name(struct udpfwd *u, const char *text, struct target_check *c)
{
    char host[CONFIG_ADDR_MAX], port[16];
    if (config_parse_addr(text, host, sizeof(host), port, sizeof(port), NULL, 0) != 0 ||
        !host[0])
        return false;
    char *end;
    long pn = strtol(port, &end, 10);
    if (*end || pn < 1 || pn > 65535)
        return false;
    c->port = (uint16_t)pn;
    uint8_t ip[16];
    size_t iplen;
    c->is_ip = allow_parse_ip(host, strlen(host), ip, &iplen);
    c->named = strcmp(text, u->target_text) == 0 ||
               (c->is_ip ? allow_match(&u->allow, ip, iplen, c->port)
                         : allow_match_name(&u->allow, host, strlen(host), c->port));
    return c->named || c->is_ip || allow_port_possible(&u->allow, c->port);
}

/* Is address |a| of a target that passed server_check_name with |c| opened? */
static bool server_check_addr(struct udpfwd *u, const struct target_check *c,
                              const struct net_addr *a)
{
    if (c->named || (u->target_ok && net_addr_equal(a, &u->target)))
        return true;
    size_t alen;
    const uint8_t *ab = addr_bytes(a, &alen);
    return !c->is_ip && allow_match(&u->allow, ab, alen, c->port);
}

/* Refuses flow |flow| of |s| to |wire| (the target as the peer sent it, "" for -t): the peer
 * hears EXT_FLOW_CLOSE; one line per peer and target per UDPFWD_REFUSE_LOG_MS. The caller
 * counts the datagrams it drops. */
static void server_refuse(struct udpfwd *u, struct sess *s, uint32_t flow, const char *wire,
                          const char *why)
{
    u->refused++;
    tunnel_flow_signal(s->tun, EXT_FLOW_CLOSE, flow);
    /* the peer is its address without the port: a client that roams stays one peer */
    size_t alen;
    const uint8_t *ab = addr_bytes(&s->peer, &alen);
    uint64_t key = fwd_hash(fwd_hash(FWD_HASH_INIT, ab, alen), wire, strlen(wire));
    if (fwd_logbook_pass(&u->refused_book, key, shell_now_ms(), UDPFWD_REFUSE_LOG_MS))
        LOG_WARN("udp: %s: flow to %s refused: %s (%llu refused so far; this line once a "
                 "minute per peer and target)", s->name, wire[0] ? wire : "-t", why,
                 (unsigned long long)u->refused);
}

/* Opens flow |id| of |us| towards |a| (|wire| as the peer named it, |text| for the log).
 * Returns it, or NULL after refusing it. */
static struct usflow *server_open(struct udpfwd *u, struct udpfwd_sess *us, uint32_t id,
                                  const char *wire, const char *text, const struct net_addr *a,
                                  uint64_t now)
{
    struct sess *s = us->s;
    char err[NET_ERR_LEN];
    int fd = net_udp_socket(a->ss.ss_family, NULL, err);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        if (fd >= 0)
            close(fd);
        server_refuse(u, s, id, wire, fd < 0 ? err : strerror(errno));
        return NULL;
    }
    struct usflow *uf = calloc(1, sizeof(*uf));
    int oerr = ERR_NOMEM;
    if (!uf || !udpflow_open(&us->tab, &u->lim, id, uf, now, &oerr)) {
        close(fd);
        free(uf);
        tunnel_flow_signal(s->tun, EXT_FLOW_CLOSE, id);
        if (oerr == ERR_LIMIT && log_limit_pass(&u->limit_log, now, LOG_REPEAT_MS))
            LOG_WARN("udp: %s: flow limit reached (--udpflows %zu per session, --udpflowsall "
                     "%zu): flow refused", s->name, u->lim.per_sess, u->lim.total);
        return NULL;
    }
    uf->u = u;
    uf->s = s;
    uf->id = id;
    uf->fd = fd;
    ev_io_init(&uf->io, server_flow_cb, fd, EV_READ);
    ev_io_start(u->sh->loop, &uf->io);
    tunnel_flow_signal(s->tun, EXT_FLOW_OPEN, id);
    if (!u->sh->params.quiet)
        LOG_INFO("udp: %s: flow %u to %s opened", s->name, id, text);
    return uf;
}

static struct uspending *pending_find(struct udpfwd_sess *us, uint32_t id)
{
    for (struct uspending *p = us->pending; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* Holds a datagram of |p| until its flow opens; beyond UDPFWD_QUEUE_MAX it is dropped. */
static void pending_queue(struct udpfwd *u, struct uspending *p, const uint8_t *data,
                          size_t len)
{
    struct uqdgram *q = p->nq < UDPFWD_QUEUE_MAX ? malloc(sizeof(*q) + len) : NULL;
    if (!q) {
        count_drop(u);
        return;
    }
    q->next = NULL;
    q->len = len;
    memcpy(q->data, data, len);
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    p->nq++;
}

/* Abandons |p|'s lookup (if still running) and frees it; its held datagrams go to |uf| (NULL:
 * dropped and counted). */
static void pending_free(struct udpfwd *u, struct uspending *p, struct usflow *uf)
{
    for (struct uqdgram *q = p->head, *nx; q; q = nx) {
        nx = q->next;
        if (!uf || send(uf->fd, q->data, q->len, 0) < 0)
            count_drop(u);
        free(q);
    }
    struct udpfwd_sess *us = p->us;
    if (p->prev)
        p->prev->next = p->next;
    else
        us->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    resolver_free(p->res);
    u->npending--;
    free(p);
}

/* Remembers flow |id| of |us| as closed (a tombstone, udpflow.h): its datagrams still on the
 * way are dropped instead of starting another lookup. */
static void server_tombstone(struct udpfwd *u, struct udpfwd_sess *us, uint32_t id,
                             uint64_t now)
{
    int err;
    struct udpflow *f = udpflow_open(&us->tab, &u->lim, id, NULL, now, &err);
    if (f)
        udpflow_close(&us->tab, &u->lim, f, now);
}

/* The lookup of a pending flow's target ended (on the loop). */
static void server_looked_up(void *user, int rc, const struct net_addr *a, const char *err)
{
    struct uspending *p = user;
    struct udpfwd_sess *us = p->us;
    struct udpfwd *u = us->u;
    struct sess *s = us->s;
    struct target_check c = {.is_ip = false, .named = p->named, .port = p->port};
    struct usflow *uf = NULL;
    uint64_t now = shell_now_ms();
    if (rc == 0 && server_check_addr(u, &c, a)) {
        uf = server_open(u, us, p->id, p->text, p->hostport, a, now);
    } else {
        server_refuse(u, s, p->id, p->text,
                      rc != 0 ? err : "not the -t target and not in --allow");
        server_tombstone(u, us, p->id, now);
    }
    pending_free(u, p, uf);
    if (sess_pump(s))
        shell_flush_dgrams(u->sh);
}

/* Flow |d->flow| names target |text| (a host name, |c| what its text settled): looks it up
 * off the loop, holding the flow's datagrams meanwhile. */
static void server_lookup(struct udpfwd *u, struct udpfwd_sess *us, const struct tunnel_dgram *d,
                          const char *wire, const char *text, const struct target_check *c)
{
    struct sess *s = us->s;
    if (u->npending >= UDPFWD_LOOKUPS_MAX) {
        count_drop(u);
        server_refuse(u, s, d->flow, wire, "too many target names being looked up at once");
        return;
    }
    struct uspending *p = calloc(1, sizeof(*p));
    if (!p || !(p->res = resolver_new(u->sh->loop, server_looked_up, p)) ||
        resolver_start(p->res, text, false) != 0) {
        if (p)
            resolver_free(p->res);
        free(p);
        count_drop(u);
        tunnel_flow_signal(s->tun, EXT_FLOW_CLOSE, d->flow);
        return;
    }
    p->us = us;
    p->id = d->flow;
    p->port = c->port;
    p->named = c->named;
    p->started_ms = shell_now_ms();
    snprintf(p->text, sizeof(p->text), "%s", wire);
    snprintf(p->hostport, sizeof(p->hostport), "%s", text);
    p->next = us->pending;
    if (us->pending)
        us->pending->prev = p;
    us->pending = p;
    u->npending++;
    pending_queue(u, p, d->data, d->len);
}

static struct udpfwd_sess *server_sess_state(struct udpfwd *u, struct sess *s)
{
    if (s->uflows)
        return s->uflows;
    struct udpfwd_sess *us = calloc(1, sizeof(*us));
    if (!us)
        return NULL;
    us->u = u;
    us->s = s;
    us->next = u->sessions;
    if (u->sessions)
        u->sessions->prev = us;
    u->sessions = us;
    s->uflows = us;
    return us;
}

static void server_dgram(struct udpfwd *u, struct sess *s, const struct tunnel_dgram *d)
{
    uint64_t now = shell_now_ms();
    struct udpfwd_sess *us = server_sess_state(u, s);
    if (!us) {
        count_drop(u);
        return;
    }
    struct udpflow *f = udpflow_find(&us->tab, d->flow);
    if (f && f->open) {
        struct usflow *uf = f->user;
        f->last_ms = now;
        if (send(uf->fd, d->data, d->len, 0) < 0)
            count_drop(u);
        return;
    }
    if (f) {
        count_drop(u); /* a closed flow: never reopened, nothing stale goes out */
        return;
    }
    struct uspending *p = pending_find(us, d->flow);
    if (p) {
        pending_queue(u, p, d->data, d->len);
        return;
    }
    if (!d->target) {
        count_drop(u); /* a flow this server does not know (closed long ago, or restarted) */
        tunnel_flow_signal(s->tun, EXT_FLOW_CLOSE, d->flow);
        return;
    }
    char wire[CONFIG_ADDR_MAX];
    snprintf(wire, sizeof(wire), "%.*s", (int)d->target_len, (const char *)d->target);
    const char *text = wire[0] ? wire : u->target_text;
    struct target_check c;
    const char *why = NULL;
    if (!text[0])
        why = "the -t target is a Unix socket";
    else if (!server_check_name(u, text, &c))
        why = "not the -t target and not in --allow";
    if (!why && !c.is_ip) {
        server_lookup(u, us, d, wire, text, &c);
        return;
    }
    struct net_addr a;
    char err[NET_ERR_LEN];
    if (!why && net_resolve(text, false, &a, err) != 0) /* an address: nothing to wait for */
        why = err;
    else if (!why && !server_check_addr(u, &c, &a))
        why = "not the -t target and not in --allow";
    if (why) {
        count_drop(u);
        server_refuse(u, s, d->flow, wire, why);
        return;
    }
    struct usflow *uf = server_open(u, us, d->flow, wire, text, &a, now);
    if (!uf || send(uf->fd, d->data, d->len, 0) < 0)
        count_drop(u);
}

static void server_expire(struct udpfwd *u, uint64_t now)
{
    struct sess *pump[UDPFWD_PUMP_MAX];
    size_t np = 0;
    for (struct udpfwd_sess *us = u->sessions; us; us = us->next) {
        size_t before = us->tab.nopen;
        bool signalled = false;
        udpflow_expire(&us->tab, &u->lim, now, server_idle_cb, us);
        for (struct uspending *p = us->pending, *nx; p; p = nx) {
            nx = p->next;
            if (now - p->started_ms < u->lim.idle_ms)
                continue;
            server_refuse(u, us->s, p->id, p->text, "its name lookup took --udpidle seconds");
            server_tombstone(u, us, p->id, now);
            pending_free(u, p, NULL);
            signalled = true;
        }
        if ((signalled || us->tab.nopen != before) && np < UDPFWD_PUMP_MAX)
            pump[np++] = us->s;
    }
    for (size_t i = 0; i < np; i++)
        sess_pump(pump[i]);
}

/* ---- both ----------------------------------------------------------------------------- */

static void expiry_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct udpfwd *u = container_of(w, struct udpfwd, expiry);
    uint64_t now = shell_now_ms();
    if (u->is_client)
        client_expire(u, now);
    else
        server_expire(u, now);
    shell_flush_dgrams(u->sh);
}

void udpfwd_trim(struct shell *sh)
{
    if (sh->udpfwd)
        shell_drop_pages(sh->udpfwd->buf, sizeof(sh->udpfwd->buf));
}

static struct udpfwd *udpfwd_new(struct shell *sh, const struct config *cfg, bool is_client)
{
    struct udpfwd *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->sh = sh;
    u->is_client = is_client;
    u->lim.idle_ms = (uint32_t)cfg->udpidle_s * 1000u;
    u->lim.per_sess = (size_t)cfg->udpflows;
    u->lim.total = (size_t)cfg->udpflowsall;
    u->next_id = 1;
    ev_timer_init(&u->expiry, expiry_cb, 1.0, 1.0);
    ev_timer_start(sh->loop, &u->expiry);
    sh->udpfwd = u;
    return u;
}

int udpfwd_client_start(struct shell *sh, const struct config *cfg,
                        struct sess *(*pick)(struct shell *sh))
{
    if (!cfg->udpfwd[0] && !config_plugin_udp(cfg))
        return 0;
    struct udpfwd *u = udpfwd_new(sh, cfg, true);
    if (!u)
        return -1;
    u->pick = pick;
    char line[CONFIG_LIST_MAX];
    for (const char *p = cfg->udpfwd; *p;) {
        size_t n = strcspn(p, "\n");
        memcpy(line, p, n);
        line[n] = '\0';
        if (client_open(u, line) != 0)
            return -1;
        p += n + (p[n] == '\n');
    }
    /* SIP003u: the host's UDP relay sends to the plugin's SS_LOCAL address (the TCP listen
     * address); the server plugin delivers to its own SS_LOCAL, its -t target */
    if (config_plugin_udp(cfg) && client_open(u, cfg->localaddr) != 0)
        return -1;
    return 0;
}

int udpfwd_server_start(struct shell *sh, const struct config *cfg)
{
    char err[CONFIG_ERR_MAX], nerr[NET_ERR_LEN];
    struct udpfwd *u = udpfwd_new(sh, cfg, false);
    if (!u)
        return -1;
    if (config_allow_list(cfg, &u->allow, err, sizeof(err)) != 0) {
        LOG_ERROR("udp: %s", err);
        return -1;
    }
    if (!config_target_is_unix(cfg)) {
        snprintf(u->target_text, sizeof(u->target_text), "%s", cfg->target);
        u->target_ok = net_resolve(cfg->target, false, &u->target, nerr) == 0;
    }
    return 0;
}

void udpfwd_stop(struct shell *sh)
{
    struct udpfwd *u = sh->udpfwd;
    if (!u)
        return;
    for (struct sess *s = sh->sessions; s; s = s->next)
        udpfwd_sess_gone(s);
    while (u->flows)
        ucflow_free(u, u->flows);
    for (struct uclisten *l = u->listeners, *nx; l; l = nx) {
        nx = l->next;
        ev_io_stop(sh->loop, &l->io);
        close(l->fd);
        free(l);
    }
    ev_timer_stop(sh->loop, &u->expiry);
    allow_free(&u->allow);
    free(u);
    sh->udpfwd = NULL;
}

void udpfwd_dgram(struct sess *s, const struct tunnel_dgram *d)
{
    struct udpfwd *u = s->sh->udpfwd;
    if (!u) {
        s->sh->base.v[SNMP_DGRAM_DROPPED]++;
        return;
    }
    if (u->is_client)
        client_dgram(u, s, d);
    else
        server_dgram(u, s, d);
}

void udpfwd_flow(struct sess *s, uint8_t type, uint32_t flow)
{
    struct udpfwd *u = s->sh->udpfwd;
    if (!u)
        return;
    if (u->is_client) {
        struct ucflow *f = ucflow_by_id(u, s, flow);
        if (f && type == EXT_FLOW_OPEN)
            f->confirmed = true;
        else if (f && type == EXT_FLOW_CLOSE)
            ucflow_free(u, f); /* its next datagram opens a new flow */
        return;
    }
    if (type == EXT_FLOW_CLOSE && s->uflows) {
        struct uspending *p = pending_find(s->uflows, flow);
        if (p)
            pending_free(u, p, NULL);
        struct udpflow *f = udpflow_find(&s->uflows->tab, flow);
        if (f && f->open) {
            usflow_close_fd(f->user);
            udpflow_close(&s->uflows->tab, &u->lim, f, shell_now_ms());
        }
    }
}

void udpfwd_sess_gone(struct sess *s)
{
    struct udpfwd *u = s->sh->udpfwd;
    if (!u)
        return;
    if (u->is_client) {
        for (struct ucflow *f = u->flows, *nx; f; f = nx) {
            nx = f->next;
            if (f->s == s)
                ucflow_free(u, f);
        }
        return;
    }
    struct udpfwd_sess *us = s->uflows;
    if (!us)
        return;
    us->s = NULL; /* no signals: the session is going */
    while (us->pending)
        pending_free(u, us->pending, NULL);
    udpflow_table_free(&us->tab, &u->lim, server_idle_cb, us);
    if (us->prev)
        us->prev->next = us->next;
    else
        u->sessions = us->next;
    if (us->next)
        us->next->prev = us->prev;
    free(us);
    s->uflows = NULL;
}
