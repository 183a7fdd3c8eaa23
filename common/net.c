/* SPDX-License-Identifier: MIT */
/* Socket helpers for the I/O shell: address parsing, non-blocking UDP/TCP, options, batching. */
#include "common/net.h"

#include "common/err.h"
#include "common/rawtcp.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

void net_set_err(char *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, NET_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Splits "host:port" / "[v6]:port" / ":port" into |host| and |port|. */
static int split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    size_t hlen;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close[1] != ':')
            return ERR_INVAL;
        hlen = (size_t)(close - hp - 1);
        if (hlen >= hcap)
            return ERR_INVAL;
        memcpy(host, hp + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon)
            return ERR_INVAL;
        hlen = (size_t)(colon - hp);
        if (hlen >= hcap || memchr(hp, ':', hlen))
            return ERR_INVAL; /* a bare IPv6 address needs brackets */
        memcpy(host, hp, hlen);
    }
    host[hlen] = '\0';
    size_t plen = strlen(colon + 1);
    if (plen == 0 || plen >= pcap)
        return ERR_INVAL;
    memcpy(port, colon + 1, plen + 1);
    return 0;
}

static bool host_has_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return false;
    close(fd);
    return true;
}

int net_resolve(const char *hostport, bool passive, struct net_addr *out, char *err)
{
    char host[256], port[32];
    if (!hostport || split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        net_set_err(err, "bad address '%s' (want host:port)", hostport ? hostport : "");
        return ERR_INVAL;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM; /* one entry per address; the port is the same for TCP */
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    const char *node = host[0] ? host : NULL;
    if (!node)
        hints.ai_family = passive && host_has_ipv6() ? AF_INET6 : AF_INET;
    int rc = getaddrinfo(node, port, &hints, &res);
    if (rc != 0 || !res) {
        net_set_err(err, "cannot resolve '%s': %s", hostport, rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return ERR_INVAL;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

const char *net_addr_str(const struct net_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)&a->ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        snprintf(buf, cap, "%s:%u", ip, ntohs(s->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)&a->ss;
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
            inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], ip, sizeof(ip));
            snprintf(buf, cap, "%s:%u", ip, ntohs(s->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
            snprintf(buf, cap, "[%s]:%u", ip, ntohs(s->sin6_port));
        }
    } else {
        snprintf(buf, cap, "?");
    }
    return buf;
}

bool net_addr_equal(const struct net_addr *a, const struct net_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* FNV-1a over the bytes that net_addr_equal compares. */
static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t net_addr_hash(const struct net_addr *a)
{
    uint32_t h = fnv1a(2166136261u, &a->ss.ss_family, sizeof(a->ss.ss_family));
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)&a->ss;
        h = fnv1a(h, &s->sin_port, sizeof(s->sin_port));
        h = fnv1a(h, &s->sin_addr, sizeof(s->sin_addr));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)&a->ss;
        h = fnv1a(h, &s->sin6_port, sizeof(s->sin6_port));
        h = fnv1a(h, &s->sin6_addr, sizeof(s->sin6_addr));
    }
    return h;
}

void net_addr_set_port(struct net_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)(void *)&a->ss)->sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)&a->ss)->sin6_port = htons(port);
}

uint16_t net_addr_port(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_port);
    return 0;
}

int net_set_nonblock(int fd, char *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        net_set_err(err, "fcntl(O_NONBLOCK): %s", strerror(errno));
        return ERR_INVAL;
    }
    return 0;
}

static bool is_ipv6_wildcard(const struct net_addr *a)
{
    if (a->ss.ss_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)&a->ss;
    return IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr);
}

static const char *protect_path; /* net_set_protect */

void net_set_protect(const char *path)
{
    protect_path = path;
}

int net_protect_fd(const char *path, int fd, char *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        net_set_err(err, "%s: path too long", path);
        return ERR_INVAL;
    }
    strcpy(sa.sun_path, path);
    int us = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (us == -1) {
        net_set_err(err, "%s: socket: %s", path, strerror(errno));
        return ERR_INVAL;
    }
    struct timeval tv = {.tv_sec = 3};
    setsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(us, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    const char *what = "connect";
    uint8_t one = 1, reply = 1;
    union {
        struct cmsghdr h;
        uint8_t b[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {.iov_base = &one, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                       .msg_controllen = sizeof(ctl.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n = -1;
    if (connect(us, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
        what = "send";
        if (sendmsg(us, &m, MSG_NOSIGNAL) == 1) {
            what = "reply";
            n = recv(us, &reply, 1, 0);
        }
    }
    int e = errno;
    close(us);
    if (n == 1 && reply == 0)
        return 0;
    if (n == 1)
        net_set_err(err, "%s: the app did not protect the socket (reply %u)", path, reply);
    else
        net_set_err(err, "%s: %s: %s", path, what, n == 0 ? "closed" : strerror(e));
    return ERR_INVAL;
}

int net_udp_socket(int family, const struct net_addr *bind_to, char *err)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        net_set_err(err, "socket(udp): %s", strerror(errno));
        return ERR_INVAL;
    }
    if (bind_to) {
        if (is_ipv6_wildcard(bind_to)) {
            int off = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        }
        if (bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) == -1) {
            char a[NET_ADDR_STRLEN];
            net_set_err(err, "bind(udp %s): %s", net_addr_str(bind_to, a, sizeof(a)),
                    strerror(errno));
            close(fd);
            return ERR_INVAL;
        }
    } else if (protect_path && net_protect_fd(protect_path, fd, err) != 0) {
        close(fd);
        return ERR_INVAL;
    }
    return fd;
}

int net_tcp_listen(const struct net_addr *a, int backlog, char *err)
{
    char as[NET_ADDR_STRLEN];
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        net_set_err(err, "socket(tcp): %s", strerror(errno));
        return ERR_INVAL;
    }
    int on = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (is_ipv6_wildcard(a))
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
        net_set_err(err, "bind(tcp %s): %s", net_addr_str(a, as, sizeof(as)), strerror(errno));
        goto fail;
    }
    if (listen(fd, backlog) == -1) {
        net_set_err(err, "listen(%s): %s", net_addr_str(a, as, sizeof(as)), strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return ERR_INVAL;
}

static void set_nodelay(int fd)
{
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int net_tcp_connect(const struct net_addr *a, char *err)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        net_set_err(err, "socket(tcp): %s", strerror(errno));
        return ERR_INVAL;
    }
    set_nodelay(fd);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 && errno != EINPROGRESS) {
        char as[NET_ADDR_STRLEN];
        net_set_err(err, "connect(%s): %s", net_addr_str(a, as, sizeof(as)), strerror(errno));
        close(fd);
        return ERR_INVAL;
    }
    return fd;
}

int net_unix_connect(const char *path, char *err)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        net_set_err(err, "unix socket path too long: %s", path);
        return ERR_INVAL;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        net_set_err(err, "socket(unix): %s", strerror(errno));
        return ERR_INVAL;
    }
    if (connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) == -1 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        net_set_err(err, "connect(%s): %s", path, strerror(errno));
        close(fd);
        return ERR_INVAL;
    }
    return fd;
}

int net_tcp_accept(int lfd, struct net_addr *peer, char *err)
{
    struct net_addr tmp;
    struct net_addr *p = peer ? peer : &tmp;
    p->len = sizeof(p->ss);
    int fd = accept4(lfd, (struct sockaddr *)&p->ss, &p->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
            return ERR_AGAIN;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            net_set_err(err, "accept: %s", strerror(errno));
            return ERR_LIMIT;
        default:
            net_set_err(err, "accept: %s", strerror(errno));
            return ERR_INVAL;
        }
    }
    set_nodelay(fd);
    return fd;
}

int net_sock_error(int fd)
{
    int e = 0;
    socklen_t l = sizeof(e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) == -1)
        return errno;
    return e;
}

int net_set_sockbuf(int fd, int bytes, char *err)
{
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == -1 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) == -1) {
        net_set_err(err, "SO_RCVBUF: %s", strerror(errno));
        return ERR_INVAL;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) == -1 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) == -1) {
        net_set_err(err, "SO_SNDBUF: %s", strerror(errno));
        return ERR_INVAL;
    }
    return 0;
}

int net_set_dscp(int fd, int family, int dscp, char *err)
{
    if (dscp < 0 || dscp > 63) {
        net_set_err(err, "dscp %d out of range 0..63", dscp);
        return ERR_INVAL;
    }
    int tos = dscp << 2;
    if (family == AF_INET6) {
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &dscp, sizeof(dscp)) == -1) {
            net_set_err(err, "IPV6_TCLASS: %s", strerror(errno));
            return ERR_INVAL;
        }
        setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
        return 0;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) == -1) {
        net_set_err(err, "IP_TOS: %s", strerror(errno));
        return ERR_INVAL;
    }
    return 0;
}

void net_udp_init(struct net_udp *u, int fd, bool gso, bool gro)
{
    int zero = 0, on = 1;
    u->fd = fd;
    u->raw = NULL;
    /* Setting the socket's default segment size to 0 (off) succeeds only where the kernel
     * knows UDP_SEGMENT; each send then asks for GSO with a control message. */
    u->gso = gso && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
    u->gro = gro && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
}

void net_udp_init_raw(struct net_udp *u, struct rawtcp *t)
{
    u->fd = rawtcp_fd(t);
    u->raw = t;
    u->gso = u->gro = false;
}

void net_udp_close(struct net_udp *u)
{
    if (u->raw)
        rawtcp_close(u->raw);
    else if (u->fd >= 0)
        close(u->fd);
    u->raw = NULL;
    u->fd = -1;
}

/* Grows the arena of |b| to at least |cap| bytes. Returns 0 or ERR_NOMEM. */
static int rbatch_reserve(struct net_rbatch *b, size_t cap)
{
    if (b->arena_cap >= cap)
        return 0;
    uint8_t *p = malloc(cap);
    if (!p)
        return ERR_NOMEM;
    free(b->arena);
    b->arena = p;
    b->arena_cap = cap;
    return 0;
}

/* The datagram size a GRO read reports in its control message, or |len| without one. */
static size_t gro_segment(struct msghdr *h, size_t len)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int seg;
            memcpy(&seg, CMSG_DATA(c), sizeof(seg));
            if (seg > 0 && (size_t)seg < len)
                return (size_t)seg;
        }
    }
    return len;
}

int net_recv_batch(const struct net_udp *u, struct net_rbatch *b)
{
    struct mmsghdr msg[NET_BATCH];
    struct iovec iov[NET_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[NET_GRO_MSGS];
    int slots = u->gro ? NET_GRO_MSGS : NET_BATCH;
    size_t slot = u->gro ? NET_GRO_BUF : NET_DGRAM_MAX;
    b->nmsg = 0;
    b->it_msg = 0;
    b->it_off = 0;
    b->reads++;
    if (rbatch_reserve(b, (size_t)slots * slot) != 0)
        return ERR_NOMEM;
    b->slot = slot;
    b->slots = slots;
    if (u->raw)
        return rawtcp_recv_batch(u->raw, b);
    memset(msg, 0, sizeof(msg[0]) * (size_t)slots);
    for (int i = 0; i < slots; i++) {
        iov[i].iov_base = b->arena + (size_t)i * slot;
        iov[i].iov_len = slot;
        msg[i].msg_hdr.msg_iov = &iov[i];
        msg[i].msg_hdr.msg_iovlen = 1;
        msg[i].msg_hdr.msg_name = &b->from[i].ss;
        msg[i].msg_hdr.msg_namelen = sizeof(b->from[i].ss);
        if (u->gro) {
            msg[i].msg_hdr.msg_control = ctl[i].buf;
            msg[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
        }
    }
    int n;
    do {
        n = recvmmsg(u->fd, msg, (unsigned)slots, MSG_DONTWAIT, NULL);
    } while (n == -1 && errno == EINTR);
    if (n == -1)
        return errno == EAGAIN || errno == EWOULDBLOCK ? ERR_AGAIN : ERR_INVAL;
    if (n == 0)
        return ERR_AGAIN;
    for (int i = 0; i < n; i++) {
        size_t len = msg[i].msg_len;
        b->mlen[i] = len;
        b->seg[i] = u->gro ? gro_segment(&msg[i].msg_hdr, len) : len;
        b->from[i].len = msg[i].msg_hdr.msg_namelen;
    }
    b->nmsg = n;
    return n;
}

bool net_rbatch_next(struct net_rbatch *b, uint8_t **p, size_t *len,
                     const struct net_addr **from)
{
    if (b->it_msg >= b->nmsg)
        return false;
    int m = b->it_msg;
    size_t off = b->it_off, left = b->mlen[m] - off;
    size_t n = MIN(left, b->seg[m]); /* >= 1 unless the datagram is empty */
    if (n == left) {
        b->it_msg++;
        b->it_off = 0;
    } else {
        b->it_off += n;
    }
    *p = b->arena + (size_t)m * b->slot + off;
    *len = MIN(n, (size_t)NET_DGRAM_MAX);
    *from = &b->from[m];
    return true;
}

void net_rbatch_free(struct net_rbatch *b)
{
    free(b->arena);
    b->arena = NULL;
    b->arena_cap = 0;
    b->nmsg = 0;
}

int net_sbatch_add(struct net_udp *u, struct net_sbatch *b, const uint8_t *p, size_t len,
                   const struct net_addr *to)
{
    if (len > NET_DGRAM_MAX)
        return ERR_TOOBIG;
    if (b->n == NET_BATCH)
        net_sbatch_flush(u, b);
    memcpy(b->buf[b->n], p, len);
    b->len[b->n] = len;
    b->to[b->n] = *to;
    b->n++;
    return 0;
}

/* How many datagrams of |b| from |i| on one GSO message can carry: a run of one size to one
 * destination, possibly ending with one shorter datagram. */
static int gso_run(const struct net_sbatch *b, int i)
{
    size_t seg = b->len[i], total = seg;
    int j = i + 1;
    while (seg > 0 && j < b->n && j - i < NET_GSO_SEGS && b->len[j] > 0 && b->len[j] <= seg &&
           total + b->len[j] <= NET_GSO_BYTES && net_addr_equal(&b->to[j], &b->to[i])) {
        total += b->len[j];
        if (b->len[j++] < seg)
            break; /* a shorter datagram ends the run */
    }
    return j - i;
}

/* Errors with which the kernel says it cannot send this GSO message at all. */
static bool gso_refused(int e)
{
    return e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP;
}

int net_sbatch_flush(struct net_udp *u, struct net_sbatch *b)
{
    struct mmsghdr msg[NET_BATCH];
    struct iovec iov[NET_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[NET_BATCH];
    int count[NET_BATCH];
    int dropped = 0, pos = 0;
    if (u->raw) {
        for (int i = 0; i < b->n; i++)
            dropped += rawtcp_send(u->raw, b->buf[i], b->len[i], &b->to[i]) != 0;
        dropped += rawtcp_flush(u->raw);
        b->n = 0;
        return dropped;
    }
    while (pos < b->n) {
        /* one message per GSO run (or per datagram), from |pos| to the end */
        int nm = 0;
        memset(msg, 0, sizeof(msg));
        for (int i = pos; i < b->n; nm++) {
            int run = u->gso ? gso_run(b, i) : 1;
            struct msghdr *h = &msg[nm].msg_hdr;
            for (int k = 0; k < run; k++) {
                iov[i + k].iov_base = b->buf[i + k];
                iov[i + k].iov_len = b->len[i + k];
            }
            h->msg_iov = &iov[i];
            h->msg_iovlen = (size_t)run;
            h->msg_name = &b->to[i].ss;
            h->msg_namelen = b->to[i].len;
            if (run > 1) {
                uint16_t seg = (uint16_t)b->len[i];
                memset(ctl[nm].buf, 0, sizeof(ctl[nm].buf));
                h->msg_control = ctl[nm].buf;
                h->msg_controllen = sizeof(ctl[nm].buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(seg));
                memcpy(CMSG_DATA(c), &seg, sizeof(seg));
            }
            count[nm] = run;
            i += run;
        }
        int n = sendmmsg(u->fd, msg, (unsigned)nm, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            for (int k = 0; k < n; k++)
                pos += count[k];
        } else if (n == -1 && errno == EINTR) {
            continue;
        } else if (count[0] > 1 && gso_refused(errno)) {
            u->gso = false; /* for good: send this run and the rest one by one */
        } else {
            /* The first remaining message failed: drop it and try the rest. */
            pos += count[0];
            dropped += count[0];
        }
    }
    b->n = 0;
    return dropped;
}
