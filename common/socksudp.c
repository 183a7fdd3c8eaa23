/* SPDX-License-Identifier: MIT */
/* libev shell: SOCKS5 UDP ASSOCIATE over the datagram channel (see socksudp.h). */
#include "common/socksudp.h"

#include "common/err.h"
#include "common/ext.h"
#include "common/fwd.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sess.h"
#include "common/socks5.h"
#include "common/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKSUDP_BUF 65536
#define SOCKSUDP_READS 64

/* One target of an association: one flow. */
struct sflow {
    struct sflow *next;
    uint32_t id;
    bool confirmed;                    /* the server opened it: the target is not repeated */
    struct fwd_target t;               /* as the SOCKS5 client named it */
    char text[FWD_HOST_MAX + 48];      /* "host:port" for the server */
    size_t tlen;
};

struct sassoc {
    struct sassoc *prev, *next;
    struct sess *s;
    int tcp_fd;
    ev_io tcp_io;
    int udp_fd;
    ev_io udp_io;
    struct net_addr tcp_peer;          /* only datagrams from this IP are relayed */
    struct net_addr client;            /* where replies go: the first datagram's source */
    bool client_known;
    struct sflow *flows;
    size_t nflows;
};

static struct sassoc *assocs;
static uint32_t next_flow = SOCKSUDP_FLOW_BASE;
static struct log_limit nopeer_log;
static uint8_t buf[SOCKSUDP_BUF];

static void drop(struct sess *s)
{
    s->sh->base.v[SNMP_DGRAM_DROPPED]++;
}

static void assoc_free(struct sassoc *a)
{
    struct ev_loop *loop = a->s->sh->loop;
    ev_io_stop(EV_A_ &a->tcp_io);
    ev_io_stop(EV_A_ &a->udp_io);
    close(a->tcp_fd);
    close(a->udp_fd);
    while (a->flows) {
        struct sflow *f = a->flows;
        a->flows = f->next;
        if (!tunnel_is_dead(a->s->tun))
            tunnel_flow_signal(a->s->tun, EXT_FLOW_CLOSE, f->id);
        free(f);
    }
    if (a->prev)
        a->prev->next = a->next;
    else
        assocs = a->next;
    if (a->next)
        a->next->prev = a->prev;
    if (!a->s->sh->params.quiet)
        LOG_STREAM("socks5: UDP association closed on %s", a->s->name);
    free(a);
}

/* True if |x| and |y| hold the same IP address (ports aside; IPv4-mapped as IPv4). */
static bool same_ip(const struct net_addr *x, const struct net_addr *y)
{
    struct net_addr a = *x, b = *y;
    net_addr_set_port(&a, 0);
    net_addr_set_port(&b, 0);
    char as[NET_ADDR_STRLEN], bs[NET_ADDR_STRLEN];
    return strcmp(net_addr_str(&a, as, sizeof(as)), net_addr_str(&b, bs, sizeof(bs))) == 0;
}

/* The control connection: anything but EOF is ignored; EOF or an error ends the association. */
static void tcp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sassoc *a = container_of(w, struct sassoc, tcp_io);
    uint8_t junk[512];
    ssize_t n = read(a->tcp_fd, junk, sizeof(junk));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    struct sess *s = a->s;
    assoc_free(a);
    sess_pump(s);
}

static struct sflow *flow_for(struct sassoc *a, const struct fwd_target *t)
{
    char text[sizeof(((struct sflow *)0)->text)];
    fwd_target_str(t, text, sizeof(text));
    for (struct sflow *f = a->flows; f; f = f->next)
        if (strcmp(f->text, text) == 0)
            return f;
    if (a->nflows >= SOCKSUDP_FLOWS_MAX)
        return NULL;
    struct sflow *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->id = next_flow++;
    if (next_flow < SOCKSUDP_FLOW_BASE)
        next_flow = SOCKSUDP_FLOW_BASE; /* after 2^31 flows: ids of closed flows' sessions */
    f->t = *t;
    memcpy(f->text, text, sizeof(text));
    f->tlen = strlen(text);
    f->next = a->flows;
    a->flows = f;
    a->nflows++;
    return f;
}

/* A datagram from the SOCKS5 client. */
static void relay_out(struct sassoc *a, const uint8_t *p, size_t len, const struct net_addr *src)
{
    struct sess *s = a->s;
    if (!same_ip(src, &a->tcp_peer) || (a->client_known && !net_addr_equal(src, &a->client))) {
        drop(s);
        return;
    }
    a->client = *src;
    a->client_known = true;
    struct fwd_target t;
    int h = socks5_udp_parse(p, len, &t);
    struct sflow *f = h > 0 ? flow_for(a, &t) : NULL;
    if (!f) {
        drop(s);
        return;
    }
    int rc = tunnel_dgram_send(s->tun, f->id, f->confirmed ? NULL : (const uint8_t *)f->text,
                               f->confirmed ? 0 : f->tlen, p + h, len - (size_t)h);
    if (rc == ERR_PROTO && log_limit_pass(&nopeer_log, shell_now_ms(), LOG_REPEAT_MS))
        LOG_WARN("socks5: %s: UDP ASSOCIATE needs a ktun server (the datagram channel); "
                 "datagrams dropped", s->name);
}

static void udp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sassoc *a = container_of(w, struct sassoc, udp_io);
    struct sess *s = a->s;
    for (int i = 0; i < SOCKSUDP_READS; i++) {
        struct net_addr src;
        src.len = sizeof(src.ss);
        ssize_t n = recvfrom(a->udp_fd, buf, sizeof(buf), 0, (struct sockaddr *)&src.ss,
                             &src.len);
        if (n < 0)
            break;
        relay_out(a, buf, (size_t)n, &src);
    }
    sess_pump(s);
    shell_flush_dgrams(s->sh);
}

/* Writes SOCKS5 reply |rep| with the bound address |bnd| (NULL: 0.0.0.0:0). */
static void reply(int fd, uint8_t rep, const struct net_addr *bnd)
{
    struct fwd_target t;
    memset(&t, 0, sizeof(t));
    if (bnd && bnd->ss.ss_family == AF_INET) {
        t.atyp = FWD_ATYP_IPV4;
        memcpy(t.addr, &((const struct sockaddr_in *)&bnd->ss)->sin_addr, 4);
        t.port = net_addr_port(bnd);
    } else if (bnd && bnd->ss.ss_family == AF_INET6) {
        t.atyp = FWD_ATYP_IPV6;
        memcpy(t.addr, &((const struct sockaddr_in6 *)&bnd->ss)->sin6_addr, 16);
        t.port = net_addr_port(bnd);
    }
    uint8_t r[SOCKS5_REPLY_MAX];
    size_t n = socks5_reply_encode(rep, bnd ? &t : NULL, r);
    if (write(fd, r, n) != (ssize_t)n) { /* the control connection fails later */
    }
}

int socksudp_associate(struct sess *s, int tcp_fd)
{
    char err[NET_ERR_LEN];
    struct net_addr local, peer;
    local.len = sizeof(local.ss);
    peer.len = sizeof(peer.ss);
    if (getsockname(tcp_fd, (struct sockaddr *)&local.ss, &local.len) != 0 ||
        getpeername(tcp_fd, (struct sockaddr *)&peer.ss, &peer.len) != 0) {
        reply(tcp_fd, FWD_FAIL, NULL);
        close(tcp_fd);
        return -1;
    }
    net_addr_set_port(&local, 0);
    int ufd = net_udp_socket(local.ss.ss_family, &local, err);
    struct sassoc *a = ufd >= 0 ? calloc(1, sizeof(*a)) : NULL;
    if (!a) {
        LOG_WARN("socks5: UDP ASSOCIATE on %s: %s", s->name, ufd < 0 ? err : "out of memory");
        if (ufd >= 0)
            close(ufd);
        reply(tcp_fd, FWD_FAIL, NULL);
        close(tcp_fd);
        return -1;
    }
    struct net_addr bound;
    bound.len = sizeof(bound.ss);
    getsockname(ufd, (struct sockaddr *)&bound.ss, &bound.len);
    a->s = s;
    a->tcp_fd = tcp_fd;
    a->udp_fd = ufd;
    a->tcp_peer = peer;
    ev_io_init(&a->tcp_io, tcp_cb, tcp_fd, EV_READ);
    ev_io_init(&a->udp_io, udp_cb, ufd, EV_READ);
    ev_io_start(s->sh->loop, &a->tcp_io);
    ev_io_start(s->sh->loop, &a->udp_io);
    a->next = assocs;
    if (assocs)
        assocs->prev = a;
    assocs = a;
    reply(tcp_fd, 0, &bound);
    if (!s->sh->params.quiet) {
        char bs[NET_ADDR_STRLEN];
        LOG_STREAM("socks5: UDP association on %s, relay %s", s->name,
                   net_addr_str(&bound, bs, sizeof(bs)));
    }
    return 0;
}

/* The association and flow of |flow| on |s|, or NULL. */
static struct sassoc *find(struct sess *s, uint32_t flow, struct sflow **out, struct sflow ***link)
{
    for (struct sassoc *a = assocs; a; a = a->next) {
        if (a->s != s)
            continue;
        for (struct sflow **pp = &a->flows; *pp; pp = &(*pp)->next) {
            if ((*pp)->id == flow) {
                *out = *pp;
                if (link)
                    *link = pp;
                return a;
            }
        }
    }
    return NULL;
}

bool socksudp_dgram(struct sess *s, const struct tunnel_dgram *d)
{
    if (!s->sh->is_client || d->flow < SOCKSUDP_FLOW_BASE)
        return false;
    struct sflow *f = NULL;
    struct sassoc *a = find(s, d->flow, &f, NULL);
    uint8_t *out = buf;
    int h = a && a->client_known ? socks5_udp_encode(&f->t, out, sizeof(buf)) : ERR_INVAL;
    if (h < 0 || (size_t)h + d->len > sizeof(buf)) {
        drop(s);
        return true;
    }
    memcpy(out + h, d->data, d->len);
    if (sendto(a->udp_fd, out, (size_t)h + d->len, 0, (const struct sockaddr *)&a->client.ss,
               a->client.len) < 0)
        drop(s);
    return true;
}

bool socksudp_flow(struct sess *s, uint8_t type, uint32_t flow)
{
    if (!s->sh->is_client || flow < SOCKSUDP_FLOW_BASE)
        return false;
    struct sflow *f = NULL, **link = NULL;
    struct sassoc *a = find(s, flow, &f, &link);
    if (!a)
        return true;
    if (type == EXT_FLOW_OPEN) {
        f->confirmed = true;
    } else if (type == EXT_FLOW_CLOSE) {
        *link = f->next; /* its next datagram opens a new flow */
        a->nflows--;
        free(f);
    }
    return true;
}

void socksudp_sess_gone(struct sess *s)
{
    for (struct sassoc *a = assocs, *nx; a; a = nx) {
        nx = a->next;
        if (a->s == s) {
            while (a->flows) { /* no signals: the session is going */
                struct sflow *f = a->flows;
                a->flows = f->next;
                free(f);
            }
            assoc_free(a);
        }
    }
}

void socksudp_close_all(void)
{
    while (assocs)
        assoc_free(assocs);
}
