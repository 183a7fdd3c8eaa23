/* SPDX-License-Identifier: MIT */
/* Fake-TCP transport (--tcp): the socket side of common/tcpraw.c. */
#include "common/rawtcp.h"

#include "common/err.h"
#include "common/fwrule.h"
#include "common/log.h"
#include "common/tcpraw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* epoll tags: kind in the high half, descriptor in the low half */
enum { EV_RAW4 = 1, EV_RAW6, EV_LISTEN, EV_CONN, EV_UDP };
/* Raw packets read per recvmmsg. */
#define RAW_BATCH NET_BATCH
/* Room for one raw packet: an IPv4 header with options, a TCP header with options, a
 * datagram (longer ones are cut to NET_DGRAM_MAX, as on UDP). */
#define RAW_PKT (60 + TCPRAW_TCP_HDR_MAX + NET_DGRAM_MAX + 64)
/* Room for one segment sent: IPv4 header, TCP header, datagram. */
#define RAW_OUT (TCPRAW_IP4_HDR + TCPRAW_TCP_HDR + NET_DGRAM_MAX)

/* One real TCP connection of a server. */
struct conn {
    int fd;
    struct tcpraw_addr peer;
};

struct rawtcp {
    bool server;
    int family;               /* of the remote (client) or the listener (server) */
    bool mapped;              /* server on IPv6: IPv4 peers are reported v4-mapped */
    int ep;                   /* epoll set: what the event loop watches */
    int raw4, raw6;           /* raw sockets, -1 when unused */
    int *lfds;                /* server: a listener per port of [port, port_hi] */
    size_t nlfds;
    uint16_t port;            /* local TCP port (a server's first) */
    uint16_t port_hi;         /* a server's last port */
    struct tcpraw core;
    struct fwrule rule4, rule6;
    /* client */
    struct net_addr remote;
    int cfd;                  /* the real connection, -1 while waiting to retry */
    bool connecting;
    /* client with --tcp auto: a UDP socket as well, and the path in use */
    bool autom;
    int ufd;                  /* UDP socket, -1 without */
    bool on_tcp;              /* sending over fake TCP (else UDP) */
    uint64_t unanswered_since; /* first send since the server last acknowledged something */
    uint64_t retry_at;        /* ms: make the connection again from then on */
    int sockbuf;
    uint64_t rule_ms;         /* how long installing the last connection's rule took */
    /* server */
    struct conn *conns;
    size_t nconns, capconns;
    uint64_t next_expire;
    bool accept_paused;       /* listener out of the epoll set until |accept_resume| */
    uint64_t accept_resume;
    /* receive state */
    struct net_rbatch *rb;    /* batch being filled by the deliver callback */
    uint8_t pkts[RAW_BATCH][RAW_PKT];
    struct rawtcp_stats st;
    uint16_t ip_id;
    /* segments waiting for one sendmmsg */
    uint8_t out[NET_BATCH][RAW_OUT];
    size_t out_len[NET_BATCH];
    struct sockaddr_in6 out_to[NET_BATCH];  /* a sockaddr_in for IPv4 */
    struct in6_pktinfo out_src[NET_BATCH];  /* IPv6 source */
    bool out_udp[NET_BATCH];                /* a datagram for the UDP socket (--tcp auto) */
    int nout;
    int out_dropped;          /* dropped by flushes of a full queue, not reported yet */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t tag_of(int kind, int fd)
{
    return (uint64_t)kind << 32 | (uint32_t)fd;
}

static int ep_add(int ep, int fd, uint32_t events, int kind)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag_of(kind, fd)};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* net_addr -> tcpraw_addr (IPv4-mapped IPv6 becomes IPv4). */
static void to_tcpraw(const struct net_addr *a, struct tcpraw_addr *o)
{
    memset(o, 0, sizeof(*o));
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        o->family = 4;
        memcpy(o->ip, &s->sin_addr, 4);
        o->port = ntohs(s->sin_port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        o->port = ntohs(s->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
            o->family = 4;
            memcpy(o->ip, s->sin6_addr.s6_addr + 12, 4);
        } else {
            o->family = 6;
            memcpy(o->ip, s->sin6_addr.s6_addr, 16);
        }
    }
}

/* tcpraw_addr -> net_addr; IPv4 as v4-mapped IPv6 when |mapped|. */
static void to_net(const struct tcpraw_addr *a, bool mapped, struct net_addr *o)
{
    memset(o, 0, sizeof(*o));
    if (a->family == 4 && !mapped) {
        struct sockaddr_in *s = (struct sockaddr_in *)&o->ss;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, a->ip, 4);
        s->sin_port = htons(a->port);
        o->len = sizeof(*s);
        return;
    }
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&o->ss;
    s->sin6_family = AF_INET6;
    if (a->family == 4) {
        s->sin6_addr.s6_addr[10] = 0xff;
        s->sin6_addr.s6_addr[11] = 0xff;
        memcpy(s->sin6_addr.s6_addr + 12, a->ip, 4);
    } else {
        memcpy(s->sin6_addr.s6_addr, a->ip, 16);
    }
    s->sin6_port = htons(a->port);
    o->len = sizeof(*s);
}

/* Passes only TCP segments for a port of [port, port_hi]: on IPv4 raw sockets the packet
 * starts with the IP header, on IPv6 ones with the TCP header. */
static int attach_filter_range(int fd, bool v4, uint16_t port, uint16_t port_hi)
{
    struct sock_filter f4[] = {
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),             /* x = IP header length */
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),              /* a = TCP destination port */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, port, 0, 2),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, port_hi, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_filter f6[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, port, 0, 2),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, port_hi, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog;
    prog.filter = v4 ? f4 : f6;
    prog.len = (unsigned short)(v4 ? sizeof(f4) / sizeof(f4[0]) : sizeof(f6) / sizeof(f6[0]));
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* Passes only TCP segments for |port|. */
static int attach_filter(int fd, bool v4, uint16_t port)
{
    return attach_filter_range(fd, v4, port, port);
}

/* A raw TCP socket of |family| with the mark the firewall rule lets through, and a filter
 * that passes nothing until attach_filter names the port. */
static int raw_socket(int family, int sockbuf, char *err)
{
    int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        net_set_err(err, "--tcp: raw socket: %s%s", strerror(errno),
                errno == EPERM ? " (needs root or CAP_NET_RAW)" : "");
        return ERR_INVAL;
    }
    int on = 1;
    unsigned mark = FWRULE_MARK;
    int rc = setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
    if (rc == 0 && family == AF_INET)
        rc = setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &on, sizeof(on));
    if (rc == 0 && family == AF_INET6)
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
    if (rc == 0)
        rc = attach_filter(fd, family == AF_INET, 0);
    if (rc != 0) {
        net_set_err(err, "--tcp: raw socket options: %s", strerror(errno));
        close(fd);
        return ERR_INVAL;
    }
    if (sockbuf > 0)
        (void)net_set_sockbuf(fd, sockbuf, NULL);
    /* drop what queued before the filter was on */
    uint8_t sink[64];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) >= 0)
        ;
    return fd;
}

static uint8_t *slot_cb(void *user, const struct tcpraw_flow *f, size_t *cap);
static void emit_cb(void *user, const struct tcpraw_flow *f, const uint8_t *seg, size_t len);
static void deliver_cb(void *user, const struct tcpraw_flow *f, const uint8_t *p, size_t len);

static void core_init(struct rawtcp *t)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = now_ms() ^ (uint64_t)getpid() << 20;
    struct tcpraw_cb cb = {t, emit_cb, deliver_cb};
    tcpraw_init(&t->core, t->port, seed, &cb);
    t->core.slot = slot_cb;
}

int rawtcp_prepare(int family, char *err)
{
    static bool done4, done6;
    bool *done = family == AF_INET6 ? &done6 : &done4;
    if (*done)
        return 0;
    char why[NET_ERR_LEN];
    if (fwrule_check(family == AF_INET6 ? 6 : 4, why, sizeof(why)) != 0) {
        net_set_err(err, "%s", why);
        return ERR_INVAL;
    }
    fwrule_clean_stale(family == AF_INET6 ? 6 : 4);
    *done = true;
    return 0;
}

static struct rawtcp *alloc_transport(void)
{
    struct rawtcp *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ep = t->raw4 = t->raw6 = t->cfd = t->ufd = -1;
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (t->ep < 0) {
        free(t);
        return NULL;
    }
    return t;
}

/* ---- client ------------------------------------------------------------------------------ */

/* Ends the client's real connection (an abortive close: its RST is still held back by the
 * rule, removed afterwards) and schedules the next one. */
static void client_drop(struct rawtcp *t, const char *why)
{
    if (t->cfd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(t->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        epoll_ctl(t->ep, EPOLL_CTL_DEL, t->cfd, NULL);
        close(t->cfd);
        t->cfd = -1;
        char rs[NET_ADDR_STRLEN];
        LOG_WARN("tcp: connection to %s from port %u ended: %s",
                 net_addr_str(&t->remote, rs, sizeof(rs)), (unsigned)t->port, why);
    }
    t->connecting = false;
    fwrule_del(t->family == AF_INET6 ? &t->rule6 : &t->rule4);
    tcpraw_free(&t->core);
    t->retry_at = now_ms() + RAWTCP_RETRY_MS;
}

/* Makes the real connection from a fresh port: bind, filter and rule for the port, connect. */
static int client_connect(struct rawtcp *t, char *err)
{
    int fam = t->remote.ss.ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        net_set_err(err, "--tcp: socket: %s", strerror(errno));
        return ERR_INVAL;
    }
    struct net_addr local;
    memset(&local, 0, sizeof(local));
    local.ss.ss_family = (sa_family_t)fam;
    local.len = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&local.ss, local.len) != 0 ||
        getsockname(fd, (struct sockaddr *)&local.ss, &local.len) != 0) {
        net_set_err(err, "--tcp: bind: %s", strerror(errno));
        close(fd);
        return ERR_INVAL;
    }
    struct tcpraw_addr la, ra;
    to_tcpraw(&local, &la);
    to_tcpraw(&t->remote, &ra);
    t->port = la.port;
    int raw = fam == AF_INET6 ? t->raw6 : t->raw4;
    if (attach_filter(raw, fam == AF_INET, t->port) != 0) {
        net_set_err(err, "--tcp: filter: %s", strerror(errno));
        close(fd);
        return ERR_INVAL;
    }
    char ip[INET6_ADDRSTRLEN], why[NET_ERR_LEN];
    inet_ntop(fam, fam == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&t->remote.ss)->sin6_addr
                                   : (const void *)&((struct sockaddr_in *)&t->remote.ss)->sin_addr,
              ip, sizeof(ip));
    struct fwrule *rule = fam == AF_INET6 ? &t->rule6 : &t->rule4;
    uint64_t t0 = now_ms();
    int frc = fwrule_add(rule, fam == AF_INET6 ? 6 : 4, t->port, ip, ra.port, why, sizeof(why));
    t->rule_ms = now_ms() - t0;
    if (frc != 0) {
        net_set_err(err, "%s", why);
        close(fd);
        return ERR_INVAL;
    }
    if (connect(fd, (const struct sockaddr *)&t->remote.ss, t->remote.len) != 0 &&
        errno != EINPROGRESS) {
        net_set_err(err, "--tcp: connect: %s", strerror(errno));
        close(fd);
        fwrule_del(rule);
        return ERR_INVAL;
    }
    /* the kernel chose the source address at connect */
    socklen_t sl = sizeof(local.ss);
    getsockname(fd, (struct sockaddr *)&local.ss, &sl);
    local.len = sl;
    to_tcpraw(&local, &la);
    core_init(t);
    if (!tcpraw_flow_add(&t->core, &la, &ra, TCPRAW_CONNECTING, now_ms()) ||
        ep_add(t->ep, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EV_CONN) != 0) {
        net_set_err(err, "--tcp: out of memory");
        close(fd);
        fwrule_del(rule);
        return ERR_NOMEM;
    }
    t->cfd = fd;
    t->connecting = true;
    t->st.connects++;
    return 0;
}

/* Retries the connection when it is down and its time has come. */
static void client_maybe_retry(struct rawtcp *t)
{
    if (t->server || t->cfd >= 0 || now_ms() < t->retry_at || (t->autom && !t->on_tcp))
        return;
    char err[NET_ERR_LEN];
    if (client_connect(t, err) != 0) {
        LOG_WARN("%s", err);
        t->retry_at = now_ms() + RAWTCP_RETRY_MS;
    }
}

/* A client transport to |remote| with its raw socket watched; with |autom| (--tcp auto) a UDP
 * socket as well. The caller makes the connection. */
static struct rawtcp *client_new(const struct net_addr *remote, int sockbuf, bool autom, char *err)
{
    int fam = remote->ss.ss_family;
    if (rawtcp_prepare(fam, err) != 0)
        return NULL;
    struct rawtcp *t = alloc_transport();
    if (!t) {
        net_set_err(err, "--tcp: out of memory");
        return NULL;
    }
    t->family = fam;
    t->remote = *remote;
    t->sockbuf = sockbuf;
    t->autom = autom;
    if (autom) {
        t->ufd = net_udp_socket(fam, NULL, err);
        if (t->ufd < 0) {
            rawtcp_close(t);
            return NULL;
        }
        if (sockbuf > 0)
            (void)net_set_sockbuf(t->ufd, sockbuf, NULL);
    }
    int raw = raw_socket(fam, sockbuf, err);
    if (raw < 0) {
        rawtcp_close(t);
        return NULL;
    }
    if (fam == AF_INET6)
        t->raw6 = raw;
    else
        t->raw4 = raw;
    if (ep_add(t->ep, raw, EPOLLIN, fam == AF_INET6 ? EV_RAW6 : EV_RAW4) != 0 ||
        (autom && ep_add(t->ep, t->ufd, EPOLLIN, EV_UDP) != 0)) {
        net_set_err(err, "--tcp: epoll: %s", strerror(errno));
        rawtcp_close(t);
        return NULL;
    }
    return t;
}

struct rawtcp *rawtcp_dial(const struct net_addr *remote, int sockbuf, char *err)
{
    struct rawtcp *t = client_new(remote, sockbuf, false, err);
    if (t && client_connect(t, err) != 0) {
        rawtcp_close(t);
        return NULL;
    }
    return t;
}

int rawtcp_redial(struct rawtcp *t, const struct net_addr *remote, char *err)
{
    if (t->server || remote->ss.ss_family != t->family) {
        net_set_err(err, "--tcp: cannot move this connection to another address family");
        return ERR_INVAL;
    }
    uint16_t old = t->port;
    if (t->cfd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(t->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        epoll_ctl(t->ep, EPOLL_CTL_DEL, t->cfd, NULL);
        close(t->cfd);
        t->cfd = -1;
    }
    t->connecting = false;
    fwrule_del(t->family == AF_INET6 ? &t->rule6 : &t->rule4);
    tcpraw_free(&t->core);
    t->remote = *remote;
    t->unanswered_since = 0;
    if (t->autom && !t->on_tcp) {
        t->retry_at = 0; /* the UDP path is in use: fake TCP connects when it is needed */
        return 0;
    }
    int rc = client_connect(t, err);
    if (rc != 0) {
        t->retry_at = now_ms() + RAWTCP_RETRY_MS;
        return rc;
    }
    char rs[NET_ADDR_STRLEN];
    LOG_DEBUG("tcp: new connection to %s from port %u (was %u); its rule took %llu ms",
              net_addr_str(remote, rs, sizeof(rs)), (unsigned)t->port, (unsigned)old,
              (unsigned long long)t->rule_ms);
    return 0;
}

void rawtcp_path_answered(struct rawtcp *t)
{
    t->unanswered_since = 0;
}

bool rawtcp_is_auto(const struct rawtcp *t)
{
    return t->autom;
}

/* The path new --tcp auto transports start on: the one the last switch chose. */
static bool auto_prefer_tcp;

struct rawtcp *rawtcp_dial_auto(const struct net_addr *remote, int sockbuf, char *err)
{
    struct rawtcp *t = client_new(remote, sockbuf, true, err);
    if (!t)
        return NULL;
    t->on_tcp = auto_prefer_tcp;
    t->retry_at = 0; /* the connection is made when fake TCP is first used */
    char rs[NET_ADDR_STRLEN];
    LOG_INFO("tcp auto: %s over %s", net_addr_str(remote, rs, sizeof(rs)),
             t->on_tcp ? "fake TCP" : "UDP");
    return t;
}

/* --tcp auto: a path that answered nothing for RAWTCP_AUTO_DEAD_MS while datagrams went out
 * is given up for the other one. */
static void auto_check(struct rawtcp *t, uint64_t now)
{
    if (!t->autom || !t->unanswered_since || now - t->unanswered_since < RAWTCP_AUTO_DEAD_MS)
        return;
    char rs[NET_ADDR_STRLEN];
    LOG_INFO("tcp auto: no answer from %s over %s for %u s: switching to %s",
             net_addr_str(&t->remote, rs, sizeof(rs)), t->on_tcp ? "fake TCP" : "UDP",
             RAWTCP_AUTO_DEAD_MS / 1000u, t->on_tcp ? "UDP" : "fake TCP");
    t->on_tcp = !t->on_tcp;
    auto_prefer_tcp = t->on_tcp;
    t->unanswered_since = 0;
    if (t->on_tcp && t->cfd < 0)
        t->retry_at = 0;
}

/* Reads UDP datagrams into the free slots of the batch with one recvmmsg (--tcp auto). */
static void read_udp(struct rawtcp *t)
{
    struct net_rbatch *b = t->rb;
    int first = b->nmsg, want = b->slots - first;
    if (want <= 0)
        return;
    struct mmsghdr msg[NET_BATCH];
    struct iovec iov[NET_BATCH];
    memset(msg, 0, sizeof(msg[0]) * (size_t)want);
    for (int i = 0; i < want; i++) {
        iov[i].iov_base = b->arena + (size_t)(first + i) * b->slot;
        iov[i].iov_len = b->slot;
        msg[i].msg_hdr.msg_iov = &iov[i];
        msg[i].msg_hdr.msg_iovlen = 1;
        msg[i].msg_hdr.msg_name = &b->from[first + i].ss;
        msg[i].msg_hdr.msg_namelen = sizeof(b->from[first + i].ss);
    }
    int n;
    do {
        n = recvmmsg(t->ufd, msg, (unsigned)want, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        b->mlen[first + i] = b->seg[first + i] = msg[i].msg_len;
        b->from[first + i].len = msg[i].msg_hdr.msg_namelen;
    }
    if (n > 0) {
        b->nmsg += n;
        t->st.rx_dgrams += (uint64_t)n;
    }
}

/* ---- server ------------------------------------------------------------------------------ */

static void conn_close(struct rawtcp *t, size_t i)
{
    struct linger lg = {1, 0};
    setsockopt(t->conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    epoll_ctl(t->ep, EPOLL_CTL_DEL, t->conns[i].fd, NULL);
    close(t->conns[i].fd);
    t->conns[i] = t->conns[--t->nconns];
}

static size_t conn_find_fd(const struct rawtcp *t, int fd)
{
    for (size_t i = 0; i < t->nconns; i++)
        if (t->conns[i].fd == fd)
            return i;
    return SIZE_MAX;
}

static size_t conn_find_peer(const struct rawtcp *t, const struct tcpraw_addr *peer)
{
    for (size_t i = 0; i < t->nconns; i++)
        if (tcpraw_addr_equal(&t->conns[i].peer, peer))
            return i;
    return SIZE_MAX;
}

/* Stops or restarts watching every listener. */
static void listeners_watch(struct rawtcp *t, bool on)
{
    for (size_t i = 0; i < t->nlfds; i++) {
        if (on)
            ep_add(t->ep, t->lfds[i], EPOLLIN, EV_LISTEN);
        else
            epoll_ctl(t->ep, EPOLL_CTL_DEL, t->lfds[i], NULL);
    }
}

/* Accepts every pending connection of listener |lfd| as a flow. */
static void server_accept(struct rawtcp *t, int lfd)
{
    for (int k = 0; k < 256; k++) {
        struct net_addr peer, local;
        int fd = net_tcp_accept(lfd, &peer, NULL);
        if (fd == ERR_AGAIN)
            return;
        if (fd < 0) {
            /* out of descriptors or memory: the connection stays pending; stop watching the
             * listener for a second rather than spin on it */
            if (!t->accept_paused) {
                LOG_WARN("tcp: accept failed (%s); retrying in 1 s", err_str(fd));
                listeners_watch(t, false);
                t->accept_paused = true;
                t->accept_resume = now_ms() + 1000;
            }
            return;
        }
        local.len = sizeof(local.ss);
        if (getsockname(fd, (struct sockaddr *)&local.ss, &local.len) != 0) {
            close(fd);
            continue;
        }
        struct tcpraw_addr la, pa;
        to_tcpraw(&local, &la);
        to_tcpraw(&peer, &pa);
        size_t old = conn_find_peer(t, &pa);
        if (old != SIZE_MAX)
            conn_close(t, old);
        if (t->nconns == t->capconns) {
            size_t cap = t->capconns ? t->capconns * 2 : 16;
            struct conn *c = realloc(t->conns, cap * sizeof(*c));
            if (!c) {
                close(fd);
                continue;
            }
            t->conns = c;
            t->capconns = cap;
        }
        struct tcpraw_flow *f = tcpraw_flow_add(&t->core, &la, &pa, TCPRAW_OPEN, now_ms());
        if (!f || ep_add(t->ep, fd, EPOLLIN | EPOLLRDHUP, EV_CONN) != 0) {
            if (f)
                tcpraw_flow_remove(&t->core, &pa);
            close(fd);
            continue;
        }
        f->tag = fd;
        t->conns[t->nconns].fd = fd;
        t->conns[t->nconns].peer = pa;
        t->nconns++;
        t->st.accepts++;
        char ps[NET_ADDR_STRLEN];
        LOG_DEBUG("tcp: accepted %s", net_addr_str(&peer, ps, sizeof(ps)));
    }
}

static void expire_gone(void *user, const struct tcpraw_flow *f)
{
    struct rawtcp *t = user;
    size_t i = conn_find_peer(t, &f->peer);
    if (i != SIZE_MAX)
        conn_close(t, i);
}

struct rawtcp *rawtcp_listen(const struct net_addr *local, int sockbuf, char *err)
{
    struct tcpraw_addr la;
    to_tcpraw(local, &la);
    return rawtcp_listen_range(local, la.port, sockbuf, err);
}

struct rawtcp *rawtcp_listen_range(const struct net_addr *local, uint16_t port_hi, int sockbuf,
                                   char *err)
{
    int fam = local->ss.ss_family;
    bool dual = false;
    if (fam == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&local->ss;
        dual = IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr);
    }
    if (rawtcp_prepare(fam, err) != 0 || (dual && rawtcp_prepare(AF_INET, err) != 0))
        return NULL;
    struct rawtcp *t = alloc_transport();
    if (!t) {
        net_set_err(err, "--tcp: out of memory");
        return NULL;
    }
    t->server = true;
    t->family = fam;
    t->mapped = fam == AF_INET6;
    struct tcpraw_addr la;
    to_tcpraw(local, &la);
    t->port = la.port;
    t->port_hi = port_hi > la.port ? port_hi : la.port;
    core_init(t);
    t->core.port_hi = t->port_hi;
    t->lfds = calloc((size_t)(t->port_hi - t->port) + 1, sizeof(*t->lfds));
    if (!t->lfds) {
        net_set_err(err, "--tcp: out of memory");
        rawtcp_close(t);
        return NULL;
    }
    for (uint32_t p = t->port; p <= t->port_hi; p++) {
        struct net_addr a = *local;
        net_addr_set_port(&a, (uint16_t)p);
        int fd = net_tcp_listen(&a, 1024, err);
        if (fd < 0) {
            rawtcp_close(t);
            return NULL;
        }
        t->lfds[t->nlfds++] = fd;
    }
    if (fam == AF_INET || dual) {
        t->raw4 = raw_socket(AF_INET, sockbuf, err);
        if (t->raw4 < 0 || attach_filter_range(t->raw4, true, t->port, t->port_hi) != 0 ||
            ep_add(t->ep, t->raw4, EPOLLIN, EV_RAW4) != 0) {
            rawtcp_close(t);
            return NULL;
        }
    }
    if (fam == AF_INET6) {
        t->raw6 = raw_socket(AF_INET6, sockbuf, err);
        if (t->raw6 < 0 || attach_filter_range(t->raw6, false, t->port, t->port_hi) != 0 ||
            ep_add(t->ep, t->raw6, EPOLLIN, EV_RAW6) != 0) {
            rawtcp_close(t);
            return NULL;
        }
    }
    char why[NET_ERR_LEN];
    if ((t->raw4 >= 0 &&
         fwrule_add_range(&t->rule4, 4, t->port, t->port_hi, why, sizeof(why)) != 0) ||
        (t->raw6 >= 0 &&
         fwrule_add_range(&t->rule6, 6, t->port, t->port_hi, why, sizeof(why)) != 0)) {
        net_set_err(err, "%s", why);
        rawtcp_close(t);
        return NULL;
    }
    for (size_t i = 0; i < t->nlfds; i++) {
        if (ep_add(t->ep, t->lfds[i], EPOLLIN, EV_LISTEN) != 0) {
            net_set_err(err, "--tcp: epoll: %s", strerror(errno));
            rawtcp_close(t);
            return NULL;
        }
    }
    return t;
}

/* ---- both --------------------------------------------------------------------------------- */

int rawtcp_fd(const struct rawtcp *t)
{
    return t->ep;
}

/* Sends the queued segments and datagrams: one sendmmsg per run of one socket. One the kernel
 * refuses is dropped (as lost on the wire) and the rest are tried. Returns the number dropped. */
static int flush_out(struct rawtcp *t)
{
    struct mmsghdr msg[NET_BATCH];
    struct iovec iov[NET_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl[NET_BATCH];
    int dropped = 0, pos = 0;
    while (pos < t->nout) {
        bool v4 = t->out_to[pos].sin6_family == AF_INET, udp = t->out_udp[pos];
        int n = 0;
        memset(msg, 0, sizeof(msg));
        for (int i = pos; i < t->nout && (t->out_to[i].sin6_family == AF_INET) == v4 &&
                          t->out_udp[i] == udp;
             i++, n++) {
            iov[n].iov_base = t->out[i];
            iov[n].iov_len = t->out_len[i];
            struct msghdr *h = &msg[n].msg_hdr;
            h->msg_iov = &iov[n];
            h->msg_iovlen = 1;
            h->msg_name = &t->out_to[i];
            h->msg_namelen = v4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
            if (!v4 && !udp) {
                memset(&ctl[n], 0, sizeof(ctl[n]));
                h->msg_control = ctl[n].buf;
                h->msg_controllen = sizeof(ctl[n].buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = IPPROTO_IPV6;
                c->cmsg_type = IPV6_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
                memcpy(CMSG_DATA(c), &t->out_src[i], sizeof(t->out_src[i]));
            }
        }
        int fd = udp ? t->ufd : v4 ? t->raw4 : t->raw6;
        int sent = fd < 0 ? -1 : sendmmsg(fd, msg, (unsigned)n, MSG_DONTWAIT);
        if (sent > 0) {
            pos += sent;
        } else if (sent < 0 && errno == EINTR && fd >= 0) {
            continue;
        } else {
            pos++; /* the first one failed: drop it, try the rest */
            dropped++;
        }
    }
    t->nout = 0;
    t->st.tx_dropped += (uint64_t)dropped;
    return dropped;
}

/* Where the core builds the next segment of |f|: the free slot of the send queue (flushed
 * first when full), after room for the IPv4 header on IPv4 flows. */
static uint8_t *slot_cb(void *user, const struct tcpraw_flow *f, size_t *cap)
{
    struct rawtcp *t = user;
    if (t->nout == NET_BATCH)
        t->out_dropped += flush_out(t);
    size_t hdr = f->peer.family == 4 ? TCPRAW_IP4_HDR : 0;
    *cap = RAW_OUT - hdr;
    return t->out[t->nout] + hdr;
}

/* Queues the segment of |f| that slot_cb placed: with an IPv4 header for IPv4 flows (the raw
 * socket has IP_HDRINCL); IPv6 ones name their source in packet info. */
static void emit_cb(void *user, const struct tcpraw_flow *f, const uint8_t *seg, size_t len)
{
    struct rawtcp *t = user;
    (void)seg;
    int i = t->nout++;
    t->out_udp[i] = false;
    struct sockaddr_in6 *to = &t->out_to[i];
    memset(to, 0, sizeof(*to));
    if (f->peer.family == 4) {
        tcpraw_ip4_header(t->out[i], &f->local, &f->peer, len, ++t->ip_id);
        t->out_len[i] = TCPRAW_IP4_HDR + len;
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)to;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, f->peer.ip, 4);
    } else {
        t->out_len[i] = len;
        to->sin6_family = AF_INET6;
        memcpy(&to->sin6_addr, f->peer.ip, 16);
        memset(&t->out_src[i], 0, sizeof(t->out_src[i]));
        memcpy(&t->out_src[i].ipi6_addr, f->local.ip, 16);
    }
}

static void deliver_cb(void *user, const struct tcpraw_flow *f, const uint8_t *p, size_t len)
{
    struct rawtcp *t = user;
    struct net_rbatch *b = t->rb;
    if (!b || b->nmsg >= b->slots)
        return;
    int i = b->nmsg++;
    if (len > NET_DGRAM_MAX)
        len = NET_DGRAM_MAX;
    memcpy(b->arena + (size_t)i * b->slot, p, len);
    b->mlen[i] = len;
    b->seg[i] = len;
    to_net(&f->peer, t->mapped, &b->from[i]);
    t->st.rx_dgrams++;
}

/* Feeds one parsed raw segment to the core; a server accepts pending connections when the
 * segment's flow is not known yet (its first data may arrive before the accept). */
static void input(struct rawtcp *t, const struct tcpraw_addr *src, const struct tcpraw_addr *dst,
                  const struct tcpraw_seg *seg, uint64_t now)
{
    enum tcpraw_rx rx = tcpraw_input_seg(&t->core, src, dst, seg, now);
    if (rx == TCPRAW_RX_UNKNOWN && t->server && dst->port >= t->port &&
        dst->port <= t->port_hi && t->nlfds > (size_t)(dst->port - t->port)) {
        server_accept(t, t->lfds[dst->port - t->port]);
        rx = tcpraw_input_seg(&t->core, src, dst, seg, now);
    }
    if (rx == TCPRAW_RX_UNKNOWN)
        t->st.rx_dropped++;
}

/* Reads raw packets from |fd| while the batch has room (|now|: the batch's clock). */
static void read_raw(struct rawtcp *t, int fd, bool v4, uint64_t now)
{
    struct net_rbatch *b = t->rb;
    int want = b->slots - b->nmsg;
    if (want <= 0)
        return;
    if (want > RAW_BATCH)
        want = RAW_BATCH;
    struct mmsghdr msg[RAW_BATCH];
    struct iovec iov[RAW_BATCH];
    struct sockaddr_in6 from[RAW_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl[RAW_BATCH];
    memset(msg, 0, sizeof(msg[0]) * (size_t)want);
    for (int i = 0; i < want; i++) {
        iov[i].iov_base = t->pkts[i];
        iov[i].iov_len = RAW_PKT;
        msg[i].msg_hdr.msg_iov = &iov[i];
        msg[i].msg_hdr.msg_iovlen = 1;
        msg[i].msg_hdr.msg_name = &from[i];
        msg[i].msg_hdr.msg_namelen = sizeof(from[i]);
        if (!v4) {
            msg[i].msg_hdr.msg_control = ctl[i].buf;
            msg[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
        }
    }
    int n;
    do {
        n = recvmmsg(fd, msg, (unsigned)want, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        size_t len = msg[i].msg_len;
        struct tcpraw_addr src, dst;
        struct tcpraw_seg seg;
        if (v4) {
            if (tcpraw_parse_ip4(t->pkts[i], len, &src, &dst, &seg) != 0)
                t->st.rx_dropped++;
            else
                input(t, &src, &dst, &seg, now);
            continue;
        }
        /* IPv6: the TCP segment alone; addresses from the name and the packet info */
        if (tcpraw_parse(t->pkts[i], len, &seg) != 0) {
            t->st.rx_dropped++;
            continue;
        }
        memset(&src, 0, sizeof(src));
        memset(&dst, 0, sizeof(dst));
        src.family = dst.family = 6;
        memcpy(src.ip, &from[i].sin6_addr, 16);
        bool have_dst = false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg[i].msg_hdr); c;
             c = CMSG_NXTHDR(&msg[i].msg_hdr, c)) {
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                memcpy(dst.ip, &pi.ipi6_addr, 16);
                have_dst = true;
            }
        }
        if (!have_dst) {
            t->st.rx_dropped++;
            continue;
        }
        src.port = seg.sport;
        dst.port = seg.dport;
        input(t, &src, &dst, &seg, now);
    }
}

/* Reads and throws away what arrives on a real connection; closes it at EOF or error. */
static void read_conn(struct rawtcp *t, int fd, uint32_t events)
{
    uint8_t sink[4096];
    bool dead = (events & (EPOLLERR | EPOLLHUP)) != 0;
    for (int k = 0; k < 64 && !dead; k++) {
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            dead = true;
        break;
    }
    if (!t->server) {
        if (fd != t->cfd)
            return;
        if (t->connecting && (events & EPOLLOUT) && !dead) {
            int e = net_sock_error(fd);
            if (e != 0) {
                client_drop(t, strerror(e));
                return;
            }
            t->connecting = false;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
                                     .data.u64 = tag_of(EV_CONN, fd)};
            epoll_ctl(t->ep, EPOLL_CTL_MOD, fd, &ev);
            char rs[NET_ADDR_STRLEN];
            LOG_INFO("tcp: connected to %s from port %u",
                     net_addr_str(&t->remote, rs, sizeof(rs)), (unsigned)t->port);
        }
        if (dead) {
            int e = net_sock_error(fd);
            client_drop(t, e ? strerror(e) : "closed by the server");
        }
        return;
    }
    if (!dead)
        return;
    size_t i = conn_find_fd(t, fd);
    if (i == SIZE_MAX) {
        epoll_ctl(t->ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        return;
    }
    tcpraw_flow_remove(&t->core, &t->conns[i].peer);
    conn_close(t, i);
}

int rawtcp_recv_batch(struct rawtcp *t, struct net_rbatch *b)
{
    client_maybe_retry(t);
    uint64_t now = now_ms();
    if (t->accept_paused && now >= t->accept_resume) {
        listeners_watch(t, true);
        t->accept_paused = false;
    }
    t->rb = b;
    struct epoll_event ev[16];
    int n;
    do {
        n = epoll_wait(t->ep, ev, 16, 0);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        int kind = (int)(ev[i].data.u64 >> 32);
        int fd = (int)(uint32_t)ev[i].data.u64;
        switch (kind) {
        case EV_RAW4:
        case EV_RAW6:
            read_raw(t, fd, kind == EV_RAW4, now);
            break;
        case EV_LISTEN:
            server_accept(t, fd);
            break;
        case EV_UDP:
            read_udp(t);
            break;
        default:
            read_conn(t, fd, ev[i].events);
            break;
        }
    }
    t->rb = NULL;
    (void)rawtcp_flush(t); /* handshake ACKs */
    if (t->server && now >= t->next_expire) {
        t->next_expire = now + 1000;
        tcpraw_expire(&t->core, now, RAWTCP_IDLE_MS, expire_gone, t);
    }
    return b->nmsg > 0 ? b->nmsg : ERR_AGAIN;
}

/* Queues datagram |p| for |to| on the UDP socket (--tcp auto), sent by the next flush. */
static int queue_udp(struct rawtcp *t, const uint8_t *p, size_t len, const struct net_addr *to)
{
    if (len > NET_DGRAM_MAX || to->len > sizeof(t->out_to[0])) {
        t->st.tx_dropped++;
        return -1;
    }
    if (t->nout == NET_BATCH)
        t->out_dropped += flush_out(t);
    int i = t->nout++;
    t->out_udp[i] = true;
    memcpy(t->out[i], p, len);
    t->out_len[i] = len;
    memset(&t->out_to[i], 0, sizeof(t->out_to[i]));
    memcpy(&t->out_to[i], &to->ss, to->len);
    t->st.tx_dgrams++;
    return 0;
}

int rawtcp_send(struct rawtcp *t, const uint8_t *p, size_t len, const struct net_addr *to)
{
    if (t->autom) {
        uint64_t now = now_ms();
        auto_check(t, now);
        if (!t->unanswered_since)
            t->unanswered_since = now;
        if (!t->on_tcp)
            return queue_udp(t, p, len, to);
    }
    client_maybe_retry(t);
    struct tcpraw_addr peer;
    to_tcpraw(to, &peer);
    if (len > NET_DGRAM_MAX || tcpraw_send(&t->core, &peer, p, len) != 0) {
        t->st.tx_dropped++;
        return -1;
    }
    t->st.tx_dgrams++;
    return 0;
}

int rawtcp_flush(struct rawtcp *t)
{
    int dropped = flush_out(t) + t->out_dropped;
    t->out_dropped = 0;
    return dropped;
}

void rawtcp_stats(const struct rawtcp *t, struct rawtcp_stats *out)
{
    *out = t->st;
}

void rawtcp_close(struct rawtcp *t)
{
    if (!t)
        return;
    if (t->server) {
        while (t->nconns)
            conn_close(t, 0);
    } else if (t->cfd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(t->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(t->cfd);
    }
    for (size_t i = 0; i < t->nlfds; i++)
        close(t->lfds[i]);
    free(t->lfds);
    if (t->ufd >= 0)
        close(t->ufd);
    if (t->raw4 >= 0)
        close(t->raw4);
    if (t->raw6 >= 0)
        close(t->raw6);
    if (t->ep >= 0)
        close(t->ep);
    fwrule_del(&t->rule4);
    fwrule_del(&t->rule6);
    tcpraw_free(&t->core);
    free(t->conns);
    free(t);
}
