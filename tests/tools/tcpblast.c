/* SPDX-License-Identifier: MIT */
/* tcpblast: TCP bulk source/sink with sha256 check, echo server and request/response latency. */

/*
 * Modes (first argument):
 *   send  --connect H:P --bytes N [--seed S]        send N bytes of the seeded stream (or for
 *                                                   --time SEC), then wait for the peer to
 *                                                   close; report rate
 *   sink  --listen H:P [--conns N] [--seed S]       receive, hash (sha256), and with --seed
 *                                                   verify every byte against the stream
 *   echo  --listen H:P [--udp]                      echo TCP streams or UDP datagrams
 *   rr    --connect H:P [--udp] [--count N] [--interval MS] [--size B]
 *                                                   timestamped messages on a fixed schedule,
 *                                                   echoed back; reports loss and RTT p50/p99
 *   gen   --bytes N [--seed S] [--hash]             write the stream to stdout, or its sha256
 *
 * The stream is random-access: 8-byte block k is splitmix64(seed, k), so a verifier can check
 * any offset without state. Results are one line of key=value pairs on stdout. Every mode is
 * bounded by --duration (default 60 s).
 */

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wire.h"
#include "tests/tools/toolkit.h"

#define BLAST_BUF (128 * 1024)
#define BLAST_MAX_CONNS 64
#define RR_HDR 16 /* seq u32le, magic u32le, send time ns u64 (two u32le) */
#define SHA256_HEX 65
#define RR_MAGIC 0x72726b74u
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

enum mode { MODE_SEND, MODE_SINK, MODE_ECHO, MODE_RR, MODE_GEN, MODE_COUNT };

enum { OPT_HASH = 257, OPT_CONNS, OPT_WAIT, OPT_CC, OPT_SAMPLES };

struct config {
    enum mode mode;
    const char *addr;     /* --listen or --connect */
    bool udp;
    uint64_t bytes;       /* send/gen: stream length */
    uint64_t seed;
    bool has_seed;        /* sink: verify against the stream */
    bool hash_only;       /* gen: print sha256 instead of the bytes */
    long conns;           /* sink: connections to serve, 0 = until signal/duration */
    long count;           /* rr: messages */
    double interval_ms;   /* rr: gap between messages */
    long size;            /* rr: message size */
    double wait_ms;       /* rr: grace for replies after the last send */
    double duration_s;    /* hard bound of the whole run */
    double time_s;        /* send: stop sending after this long (0 = when --bytes are sent) */
    const char *cc;       /* TCP congestion control for our sockets, NULL = system default */
    const char *samples;  /* rr: file for one line per message (sequence, send time, RTT) */
};

static volatile sig_atomic_t got_stop;

static void on_signal(int sig)
{
    (void)sig;
    got_stop = 1;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Writes the hex sha256 of |*h| into |out| and closes the handle (libgcrypt uses SHA-NI/AVX2,
 * several times faster than a portable sha256, so hashing does not cap the measured rate). */
static void sha_finish(gcry_md_hd_t *h, char out[SHA256_HEX])
{
    const unsigned char *d = *h ? gcry_md_read(*h, GCRY_MD_SHA256) : NULL;
    out[0] = '\0';
    for (size_t i = 0; d && i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    gcry_md_close(*h);
    *h = NULL;
}

/* ---- addresses and sockets ---- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* UDP probes come in bursts: a large receive buffer keeps the socket from dropping them, so
 * that every loss counted is the network's. */
static void set_udp_buffers(int fd)
{
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

static void print_listening(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV))
        return;
    printf(ss.ss_family == AF_INET6 ? "listening [%s]:%s\n" : "listening %s:%s\n", host, port);
    fflush(stdout);
}

/* Sets --cc on a TCP socket (accepted sockets inherit it from a listener); 0 or -1. */
static int set_cc(const struct config *cfg, int fd)
{
    if (!cfg->cc || cfg->udp)
        return 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cfg->cc, (socklen_t)strlen(cfg->cc)) == 0)
        return 0;
    fprintf(stderr, "tcpblast: congestion control `%s': %s\n", cfg->cc, strerror(errno));
    return -1;
}

/* Name of the congestion control |fd| uses, into |out| (|cap| bytes). */
static void get_cc(int fd, char *out, socklen_t cap)
{
    memset(out, 0, cap);
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, out, &cap) == -1)
        snprintf(out, cap, "?");
}

/* Binds a TCP listener or a UDP socket on |addr|; prints "listening H:P"; returns fd or -1. */
static int open_server(const struct config *cfg)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int type = cfg->udp ? SOCK_DGRAM : SOCK_STREAM;
    if (tk_resolve(cfg->addr, type, &ss, &len)) {
        fprintf(stderr, "tcpblast: cannot resolve `%s'\n", cfg->addr);
        return -1;
    }
    int fd = socket(ss.ss_family, type, 0);
    int one = 1;
    if (fd != -1)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd == -1 || set_cc(cfg, fd) || bind(fd, (struct sockaddr *)&ss, len) == -1 ||
        (!cfg->udp && listen(fd, 64) == -1)) {
        fprintf(stderr, "tcpblast: cannot listen on %s: %s\n", cfg->addr, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    set_nonblock(fd);
    if (cfg->udp)
        set_udp_buffers(fd);
    print_listening(fd);
    return fd;
}

/* Connects to |addr| within |timeout_ns|; returns a non-blocking fd or -1. */
static int open_client(const struct config *cfg, uint64_t timeout_ns)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int type = cfg->udp ? SOCK_DGRAM : SOCK_STREAM;
    if (tk_resolve(cfg->addr, type, &ss, &len)) {
        fprintf(stderr, "tcpblast: cannot resolve `%s'\n", cfg->addr);
        return -1;
    }
    int fd = socket(ss.ss_family, type, 0);
    if (fd == -1)
        goto fail;
    set_nonblock(fd);
    if (cfg->udp)
        set_udp_buffers(fd);
    if (set_cc(cfg, fd))
        goto fail;
    if (connect(fd, (struct sockaddr *)&ss, len) == -1) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof(err);
        if (poll(&p, 1, (int)(timeout_ns / NS_PER_MS)) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 || err) {
            errno = err ? err : ETIMEDOUT;
            goto fail;
        }
    }
    return fd;
fail:
    fprintf(stderr, "tcpblast: cannot connect to %s: %s\n", cfg->addr, strerror(errno));
    if (fd != -1)
        close(fd);
    return -1;
}

/* Waits for |events| on |fd| until |deadline|; returns false on timeout or signal. */
static bool wait_fd(int fd, short events, uint64_t deadline)
{
    while (!got_stop) {
        uint64_t now = tk_now_ns();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int ms = (int)MIN((deadline - now) / NS_PER_MS + 1, 200);
        int r = poll(&p, 1, ms);
        if (r > 0)
            return true;
    }
    return false;
}

/* ---- send ---- */

static int mode_send(const struct config *cfg)
{
    uint64_t deadline = tk_now_ns() + (uint64_t)(cfg->duration_s * 1e9);
    int fd = open_client(cfg, 10 * NS_PER_S), rc = 1;
    uint8_t *buf = malloc(BLAST_BUF);
    gcry_md_hd_t sha = NULL;
    gcry_md_open(&sha, GCRY_MD_SHA256, 0);
    if (fd == -1 || !buf)
        goto out;
    uint64_t start = tk_now_ns(), sent = 0;
    uint64_t limit = cfg->bytes ? cfg->bytes : UINT64_MAX;
    uint64_t time_end = cfg->time_s > 0 ? start + (uint64_t)(cfg->time_s * 1e9) : UINT64_MAX;
    size_t have = 0, pos = 0;
    while (sent < limit && tk_now_ns() < time_end) {
        if (pos == have) {
            have = (size_t)MIN((uint64_t)BLAST_BUF, limit - sent);
            tk_stream_fill(cfg->seed, sent, buf, have);
            pos = 0;
        }
        ssize_t n = send(fd, buf + pos, have - pos, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fprintf(stderr, "tcpblast: send: %s\n", strerror(errno));
                goto out;
            }
            if (!wait_fd(fd, POLLOUT, MIN(deadline, time_end)) && tk_now_ns() < time_end) {
                fprintf(stderr, "tcpblast: send stopped after %" PRIu64 " bytes\n", sent);
                goto out;
            }
            continue;
        }
        gcry_md_write(sha, buf + pos, (size_t)n); /* hash what was sent: --time may cut a chunk */
        pos += (size_t)n;
        sent += (uint64_t)n;
    }
    /* the peer closes once it has read everything: wait for that, so the rate is end to end */
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, buf, BLAST_BUF, 0);
        if (n == 0)
            break;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (!wait_fd(fd, POLLIN, deadline)) {
                fprintf(stderr, "tcpblast: no close from the peer\n");
                goto out;
            }
            continue;
        }
        if (n == -1) {
            fprintf(stderr, "tcpblast: recv: %s\n", strerror(errno));
            goto out;
        }
    }
    uint64_t el = MAX(tk_now_ns() - start, 1);
    char text[SHA256_HEX], cc[32];
    sha_finish(&sha, text);
    get_cc(fd, cc, sizeof(cc));
    printf("send: bytes=%" PRIu64 " seconds=%.3f mbit_s=%.2f sha256=%s cc=%s\n", sent, secs(el),
           (double)sent * 8 / secs(el) / 1e6, text, cc);
    rc = 0;
out:
    gcry_md_close(sha);
    if (fd != -1)
        close(fd);
    free(buf);
    return rc;
}

/* ---- sink ---- */

struct sink_conn {
    int fd;                       /* -1 when the slot is free */
    uint64_t start_ns;
    uint64_t bytes;
    uint64_t bad_at;              /* first mismatching offset, UINT64_MAX if none */
    gcry_md_hd_t sha;
};

static void sink_finish(const struct config *cfg, struct sink_conn *c, int *failures)
{
    uint64_t el = MAX(tk_now_ns() - c->start_ns, 1);
    char text[SHA256_HEX];
    sha_finish(&c->sha, text);
    const char *verify = "off";
    if (cfg->has_seed) {
        bool ok = c->bad_at == UINT64_MAX && (!cfg->bytes || c->bytes == cfg->bytes);
        verify = ok ? "ok" : "FAIL";
        *failures += !ok;
        if (c->bad_at != UINT64_MAX)
            fprintf(stderr, "tcpblast: first wrong byte at offset %" PRIu64 "\n", c->bad_at);
    }
    printf("sink: bytes=%" PRIu64 " seconds=%.3f mbit_s=%.2f sha256=%s verify=%s\n", c->bytes,
           secs(el), (double)c->bytes * 8 / secs(el) / 1e6, text, verify);
    fflush(stdout);
    close(c->fd);
    c->fd = -1;
}

/* Reads what |c| has; returns true when the connection is finished. */
static bool sink_read(const struct config *cfg, struct sink_conn *c, uint8_t *buf, uint8_t *ref)
{
    for (int k = 0; k < 16; k++) {
        ssize_t n = recv(c->fd, buf, BLAST_BUF, 0);
        if (n == 0)
            return true;
        if (n == -1)
            return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        gcry_md_write(c->sha, buf, (size_t)n);
        if (cfg->has_seed && c->bad_at == UINT64_MAX) {
            tk_stream_fill(cfg->seed, c->bytes, ref, (size_t)n);
            bool same = memcmp(buf, ref, (size_t)n) == 0;
            for (ssize_t i = 0; i < n && !same && c->bad_at == UINT64_MAX; i++)
                if (buf[i] != ref[i])
                    c->bad_at = c->bytes + (uint64_t)i;
        }
        c->bytes += (uint64_t)n;
    }
    return false;
}

static void sink_accept(int lfd, struct sink_conn *conns, long *accepted)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd == -1)
        return;
    for (int i = 0; i < BLAST_MAX_CONNS; i++) {
        if (conns[i].fd != -1)
            continue;
        set_nonblock(fd);
        conns[i].fd = fd;
        conns[i].start_ns = tk_now_ns();
        conns[i].bytes = 0;
        conns[i].bad_at = UINT64_MAX;
        gcry_md_open(&conns[i].sha, GCRY_MD_SHA256, 0);
        (*accepted)++;
        return;
    }
    close(fd);
}

static int mode_sink(const struct config *cfg)
{
    uint64_t deadline = tk_now_ns() + (uint64_t)(cfg->duration_s * 1e9);
    struct sink_conn conns[BLAST_MAX_CONNS];
    struct pollfd pfd[BLAST_MAX_CONNS + 1];
    int map[BLAST_MAX_CONNS + 1];
    uint8_t *buf = malloc(BLAST_BUF), *ref = malloc(BLAST_BUF);
    int lfd = open_server(cfg), failures = 0, rc = 1;
    long accepted = 0, finished = 0;
    for (int i = 0; i < BLAST_MAX_CONNS; i++)
        conns[i].fd = -1;
    if (lfd == -1 || !buf || !ref)
        goto out;
    while (!got_stop && tk_now_ns() < deadline && (cfg->conns == 0 || finished < cfg->conns)) {
        nfds_t n = 0;
        if (cfg->conns == 0 || accepted < cfg->conns) {
            pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
            map[n++] = -1;
        }
        for (int i = 0; i < BLAST_MAX_CONNS; i++) {
            if (conns[i].fd == -1)
                continue;
            pfd[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            map[n++] = i;
        }
        if (poll(pfd, n, 200) <= 0)
            continue;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (map[i] < 0) {
                sink_accept(lfd, conns, &accepted);
            } else if (sink_read(cfg, &conns[map[i]], buf, ref)) {
                sink_finish(cfg, &conns[map[i]], &failures);
                finished++;
            }
        }
    }
    rc = failures || (cfg->conns && finished < cfg->conns) ? 1 : 0;
out:
    for (int i = 0; i < BLAST_MAX_CONNS; i++) {
        if (conns[i].fd == -1)
            continue;
        close(conns[i].fd);
        gcry_md_close(conns[i].sha);
    }
    if (lfd != -1)
        close(lfd);
    free(buf);
    free(ref);
    return rc;
}

/* ---- echo ---- */

struct echo_conn {
    int fd;        /* -1 when free */
    size_t off;    /* bytes of buf already written back */
    size_t len;    /* bytes in buf */
    uint8_t buf[BLAST_BUF];
};

/* Moves data of one connection; returns false when it should be closed. */
static bool echo_step(struct echo_conn *c)
{
    for (int k = 0; k < 16; k++) {
        if (c->off < c->len) {
            ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
            if (w == -1)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
            c->off += (size_t)w;
            if (c->off < c->len)
                return true;
        }
        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n == 0)
            return false;
        if (n == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->off = 0;
        c->len = (size_t)n;
    }
    return true;
}

static void echo_udp(int fd, uint8_t *buf)
{
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage from;
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(fd, buf, 65536, 0, (struct sockaddr *)&from, &len);
        if (n == -1)
            return;
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
}

static int mode_echo(const struct config *cfg)
{
    uint64_t deadline = tk_now_ns() + (uint64_t)(cfg->duration_s * 1e9);
    struct echo_conn *conns = calloc(BLAST_MAX_CONNS, sizeof(*conns));
    uint8_t *ubuf = malloc(65536);
    struct pollfd pfd[BLAST_MAX_CONNS + 1];
    int map[BLAST_MAX_CONNS + 1];
    int lfd = open_server(cfg), rc = 1;
    if (lfd == -1 || !conns || !ubuf)
        goto out;
    for (int i = 0; i < BLAST_MAX_CONNS; i++)
        conns[i].fd = -1;
    while (!got_stop && tk_now_ns() < deadline) {
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < BLAST_MAX_CONNS; i++) {
            if (conns[i].fd == -1)
                continue;
            bool pending = conns[i].off < conns[i].len;
            pfd[n] = (struct pollfd){.fd = conns[i].fd, .events = pending ? POLLOUT : POLLIN};
            map[n++] = i;
        }
        if (poll(pfd, n, 200) <= 0)
            continue;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (map[i] >= 0) {
                struct echo_conn *c = &conns[map[i]];
                if (!echo_step(c)) {
                    close(c->fd);
                    c->fd = -1;
                }
            } else if (cfg->udp) {
                echo_udp(lfd, ubuf);
            } else {
                int fd = accept(lfd, NULL, NULL);
                int slot = -1, one = 1;
                for (int j = 0; j < BLAST_MAX_CONNS && fd != -1 && slot < 0; j++)
                    if (conns[j].fd == -1)
                        slot = j;
                if (slot < 0) {
                    if (fd != -1)
                        close(fd);
                    continue;
                }
                set_nonblock(fd);
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                conns[slot].fd = fd;
                conns[slot].off = conns[slot].len = 0;
            }
        }
    }
    rc = 0;
out:
    for (int i = 0; conns && i < BLAST_MAX_CONNS; i++)
        if (conns[i].fd != -1)
            close(conns[i].fd);
    if (lfd != -1)
        close(lfd);
    free(conns);
    free(ubuf);
    return rc;
}

/* ---- rr: request/response latency ---- */

struct rr_state {
    const struct config *cfg;
    int fd;
    uint64_t *rtt_ns;     /* per message, 0 = no reply yet */
    long received, dups, bad;
    long reordered;       /* replies that arrived after a reply with a higher sequence */
    long max_seq;         /* highest sequence seen so far, -1 before the first */
    uint8_t *frame;       /* TCP: partial reply */
    uint8_t *pad;         /* scratch: expected padding of a reply */
    size_t frame_len;
};

static void rr_build(const struct rr_state *st, uint32_t seq, uint64_t t, uint8_t *msg)
{
    uint8_t *p = put_u32le(msg, seq);
    p = put_u32le(p, RR_MAGIC);
    p = put_u32le(p, (uint32_t)t);
    put_u32le(p, (uint32_t)(t >> 32));
    tk_stream_fill(st->cfg->seed + seq, 0, msg + RR_HDR, (size_t)st->cfg->size - RR_HDR);
}

static void rr_reply(struct rr_state *st, const uint8_t *msg, size_t len, uint64_t now)
{
    if (len != (size_t)st->cfg->size || rd_u32le(msg + 4) != RR_MAGIC) {
        st->bad++;
        return;
    }
    uint32_t seq = rd_u32le(msg);
    uint64_t t = rd_u32le(msg + 8) | (uint64_t)rd_u32le(msg + 12) << 32;
    if (seq >= (uint32_t)st->cfg->count || t > now) {
        st->bad++;
        return;
    }
    tk_stream_fill(st->cfg->seed + seq, 0, st->pad, len - RR_HDR);
    if (memcmp(st->pad, msg + RR_HDR, len - RR_HDR) != 0) {
        st->bad++; /* someone else's message, or corrupted */
        return;
    }
    if (st->rtt_ns[seq]) {
        st->dups++;
        return;
    }
    if ((long)seq < st->max_seq)
        st->reordered++;
    st->max_seq = MAX(st->max_seq, (long)seq);
    st->rtt_ns[seq] = MAX(now - t, 1);
    st->received++;
}

/* Reads every reply available now; returns false on a fatal socket error. */
static bool rr_read(struct rr_state *st, uint8_t *buf)
{
    for (int k = 0; k < 256; k++) {
        ssize_t n = recv(st->fd, buf, 65536, 0);
        if (n == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                   (st->cfg->udp && errno == ECONNREFUSED);
        if (n == 0)
            return false;
        uint64_t now = tk_now_ns();
        if (st->cfg->udp) {
            rr_reply(st, buf, (size_t)n, now);
            continue;
        }
        for (ssize_t i = 0; i < n;) {
            size_t take = MIN((size_t)(n - i), (size_t)st->cfg->size - st->frame_len);
            memcpy(st->frame + st->frame_len, buf + i, take);
            st->frame_len += take;
            i += (ssize_t)take;
            if (st->frame_len == (size_t)st->cfg->size) {
                rr_reply(st, st->frame, st->frame_len, now);
                st->frame_len = 0;
            }
        }
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void rr_report(const struct rr_state *st, long sent)
{
    uint64_t *v = malloc(sizeof(*v) * (size_t)MAX(st->received, 1));
    long n = 0;
    double sum = 0;
    for (long i = 0; i < sent && v; i++)
        if (st->rtt_ns[i]) {
            v[n++] = st->rtt_ns[i];
            sum += (double)st->rtt_ns[i];
        }
    if (v)
        qsort(v, (size_t)n, sizeof(*v), cmp_u64);
#define PCT(p) (n ? (double)v[MIN((long)((double)(n - 1) * (p) + 0.5), n - 1)] / 1e6 : 0.0)
    printf("rr: sent=%ld received=%ld lost=%ld loss_pct=%.3f dups=%ld reordered=%ld bad=%ld "
           "min_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f\n",
           sent, st->received, sent - st->received,
           sent ? 100.0 * (double)(sent - st->received) / (double)sent : 0.0, st->dups,
           st->reordered, st->bad,
           PCT(0), PCT(0.5), PCT(0.9), PCT(0.99), PCT(1), n ? sum / (double)n / 1e6 : 0.0);
#undef PCT
    free(v);
}

/* Writes "seq sent_ms rtt_ms" per message (rtt -1: no reply) to --samples; send times are
 * from the first message. */
static void rr_samples(const struct rr_state *st, long sent, uint64_t interval_ns)
{
    FILE *f = fopen(st->cfg->samples, "w");
    if (!f) {
        fprintf(stderr, "tcpblast: cannot write %s: %s\n", st->cfg->samples, strerror(errno));
        return;
    }
    for (long i = 0; i < sent; i++)
        fprintf(f, "%ld %.3f %.3f\n", i, (double)i * (double)interval_ns / 1e6,
                st->rtt_ns[i] ? (double)st->rtt_ns[i] / 1e6 : -1.0);
    fclose(f);
}

/* Sends one message if it is due; returns false on a fatal error. */
static bool rr_send(struct rr_state *st, long seq, uint8_t *msg)
{
    rr_build(st, (uint32_t)seq, tk_now_ns(), msg);
    size_t off = 0, len = (size_t)st->cfg->size;
    uint64_t deadline = tk_now_ns() + NS_PER_S;
    while (off < len) {
        ssize_t n = send(st->fd, msg + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (st->cfg->udp)
            return errno != EBADF; /* a refused or dropped probe is a lost probe */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (!wait_fd(st->fd, POLLOUT, deadline))
            return false;
    }
    return true;
}

static int mode_rr(const struct config *cfg)
{
    struct rr_state st = {.cfg = cfg, .fd = -1, .max_seq = -1};
    uint8_t *buf = malloc(65536), *msg = malloc((size_t)cfg->size);
    int rc = 1, one = 1;
    long sent = 0;
    st.rtt_ns = calloc((size_t)cfg->count, sizeof(*st.rtt_ns));
    st.frame = malloc((size_t)cfg->size);
    st.pad = malloc((size_t)cfg->size);
    uint64_t start = tk_now_ns(), hard_end = start + (uint64_t)(cfg->duration_s * 1e9);
    if (!buf || !msg || !st.rtt_ns || !st.frame || !st.pad)
        goto out;
    st.fd = open_client(cfg, 10 * NS_PER_S);
    if (st.fd == -1)
        goto out;
    if (!cfg->udp)
        setsockopt(st.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    start = tk_now_ns();
    uint64_t interval = (uint64_t)(cfg->interval_ms * 1e6), wait = (uint64_t)(cfg->wait_ms * 1e6);
    uint64_t last_send = start;
    while (!got_stop) {
        uint64_t now = tk_now_ns();
        if (now >= hard_end || st.received >= cfg->count ||
            (sent == cfg->count && now >= last_send + wait))
            break;
        if (sent < cfg->count && now >= start + (uint64_t)sent * interval) {
            if (!rr_send(&st, sent, msg))
                break;
            last_send = now;
            sent++;
            continue;
        }
        uint64_t next = sent < cfg->count ? start + (uint64_t)sent * interval : last_send + wait;
        next = MIN(next, hard_end);
        uint64_t d = next > now ? next - now : 0;
        struct timespec ts = {(time_t)(d / NS_PER_S), (long)(d % NS_PER_S)};
        struct pollfd p = {.fd = st.fd, .events = POLLIN};
        if (ppoll(&p, 1, &ts, NULL) > 0 && !rr_read(&st, buf))
            break;
    }
    rr_report(&st, sent);
    if (cfg->samples)
        rr_samples(&st, sent, interval);
    rc = sent == cfg->count ? 0 : 1;
out:
    if (st.fd != -1)
        close(st.fd);
    free(st.rtt_ns);
    free(st.frame);
    free(st.pad);
    free(buf);
    free(msg);
    return rc;
}

/* ---- gen ---- */

static int mode_gen(const struct config *cfg)
{
    uint8_t *buf = malloc(BLAST_BUF);
    gcry_md_hd_t sha = NULL;
    int rc = 1;
    if (!buf || gcry_md_open(&sha, GCRY_MD_SHA256, 0))
        goto out;
    for (uint64_t off = 0; off < cfg->bytes;) {
        size_t n = (size_t)MIN((uint64_t)BLAST_BUF, cfg->bytes - off);
        tk_stream_fill(cfg->seed, off, buf, n);
        if (cfg->hash_only)
            gcry_md_write(sha, buf, n);
        else if (fwrite(buf, 1, n, stdout) != n)
            goto out;
        off += n;
    }
    if (cfg->hash_only) {
        char text[SHA256_HEX];
        sha_finish(&sha, text);
        printf("%s\n", text);
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    gcry_md_close(sha);
    free(buf);
    return rc;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tcpblast MODE [options]\n"
            "  send  -c HOST:PORT (-n BYTES | -T SEC) [-s SEED]\n"
            "                                              send the seeded stream, report rate\n"
            "  sink  -l HOST:PORT [--conns N] [-s SEED] [-n BYTES]\n"
            "                                              receive, sha256, verify with -s\n"
            "  echo  -l HOST:PORT [-u]                     TCP or UDP echo server\n"
            "  rr    -c HOST:PORT [-u] [-C COUNT] [-i MS] [-z SIZE] [--wait MS]\n"
            "        [--samples FILE]\n"
            "                                              latency: SIZE-byte messages every MS\n"
            "  gen   -n BYTES [-s SEED] [--hash]           write the stream (or its sha256)\n"
            "options:\n"
            "  -l, --listen HOST:PORT   -c, --connect HOST:PORT   -u, --udp\n"
            "  -n, --bytes N[k|M|G]     stream length (binary multiples)\n"
            "  -s, --seed N             stream seed (default 1)\n"
            "  -C, --count N            rr messages (default 100)\n"
            "  -i, --interval MS        rr gap between messages (default 20)\n"
            "  -z, --size BYTES         rr message size, 16..65000 (default 64)\n"
            "      --wait MS            rr grace for late replies (default 2000)\n"
            "      --samples FILE       rr: write \"seq sent_ms rtt_ms\" per message (-1: lost)\n"
            "      --conns N            sink: exit after N connections (default 1, 0 = never)\n"
            "      --hash               gen: print the sha256 only\n"
            "  -T, --time SEC           send: stop sending after SEC (with or without -n)\n"
            "      --cc NAME            TCP congestion control, e.g. cubic, bbr, reno\n"
            "  -t, --duration SEC       bound the whole run (default 60)\n"
            "Servers print \"listening HOST:PORT\" first (port 0 picks one).\n");
}

/* A byte count up to 1e15 with an optional k/M/G (binary) suffix. */
static int parse_bytes(const char *s, uint64_t *out)
{
    double v;
    if (tk_parse_size(s, 0, 1e15, &v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int bad_opt(const char *opt, const char *val)
{
    fprintf(stderr, "tcpblast: invalid value for %s: `%s'\n", opt, val);
    return -1;
}

static int parse_mode(const char *s, enum mode *m)
{
    static const char *const names[MODE_COUNT] = {"send", "sink", "echo", "rr", "gen"};
    for (int i = 0; i < MODE_COUNT; i++)
        if (!strcmp(s, names[i])) {
            *m = (enum mode)i;
            return 0;
        }
    return -1;
}

static int check_config(const struct config *cfg)
{
    bool need_listen = cfg->mode == MODE_SINK || cfg->mode == MODE_ECHO;
    bool need_connect = cfg->mode == MODE_SEND || cfg->mode == MODE_RR;
    if ((need_listen || need_connect) && !cfg->addr) {
        fprintf(stderr, "tcpblast: this mode needs --%s\n", need_listen ? "listen" : "connect");
        return -1;
    }
    if (cfg->udp && cfg->mode != MODE_ECHO && cfg->mode != MODE_RR) {
        fprintf(stderr, "tcpblast: --udp only applies to echo and rr\n");
        return -1;
    }
    if (cfg->time_s > 0 && cfg->mode != MODE_SEND) {
        fprintf(stderr, "tcpblast: --time only applies to send\n");
        return -1;
    }
    if ((cfg->mode == MODE_SEND || cfg->mode == MODE_GEN) && cfg->bytes == 0 && cfg->time_s <= 0) {
        fprintf(stderr, "tcpblast: this mode needs --bytes%s\n",
                cfg->mode == MODE_SEND ? " or --time" : "");
        return -1;
    }
    return 0;
}

/* Fills |cfg|; returns 0, 1 after --help, or -1 after printing an error. Long: one switch
 * over the option table reads better than the table split across helpers. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},   {"connect", required_argument, NULL, 'c'},
        {"udp", no_argument, NULL, 'u'},            {"bytes", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},     {"count", required_argument, NULL, 'C'},
        {"interval", required_argument, NULL, 'i'}, {"size", required_argument, NULL, 'z'},
        {"wait", required_argument, NULL, OPT_WAIT}, {"conns", required_argument, NULL, OPT_CONNS},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"hash", no_argument, NULL, OPT_HASH},      {"duration", required_argument, NULL, 't'},
        {"time", required_argument, NULL, 'T'},
        {"cc", required_argument, NULL, OPT_CC},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    double v;
    int c;
    *cfg = (struct config){.seed = 1, .conns = 1, .count = 100, .interval_ms = 20, .size = 64,
                           .wait_ms = 2000, .duration_s = 60};
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? -1 : 1;
    }
    if (parse_mode(argv[1], &cfg->mode)) {
        fprintf(stderr, "tcpblast: unknown mode `%s'\n", argv[1]);
        return -1;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "l:c:un:s:C:i:z:t:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
        case 'c':
            cfg->addr = optarg;
            break;
        case 'u':
            cfg->udp = true;
            break;
        case 'n':
            if (parse_bytes(optarg, &cfg->bytes))
                return bad_opt("--bytes", optarg);
            break;
        case 's':
            if (tk_parse_double(optarg, 0, 1.8e19, &v) || v != floor(v))
                return bad_opt("--seed", optarg);
            cfg->seed = (uint64_t)v;
            cfg->has_seed = true;
            break;
        case 'C':
            if (tk_parse_double(optarg, 1, 1e8, &v) || v != floor(v))
                return bad_opt("--count", optarg);
            cfg->count = (long)v;
            break;
        case 'i':
            if (tk_parse_double(optarg, 0, 60000, &cfg->interval_ms))
                return bad_opt("--interval", optarg);
            break;
        case 'z':
            if (tk_parse_double(optarg, RR_HDR, 65000, &v) || v != floor(v))
                return bad_opt("--size", optarg);
            cfg->size = (long)v;
            break;
        case OPT_WAIT:
            if (tk_parse_double(optarg, 0, 600000, &cfg->wait_ms))
                return bad_opt("--wait", optarg);
            break;
        case OPT_CONNS:
            if (tk_parse_double(optarg, 0, 1e9, &v) || v != floor(v))
                return bad_opt("--conns", optarg);
            cfg->conns = (long)v;
            break;
        case OPT_CC:
            if (!*optarg || strlen(optarg) >= 16)
                return bad_opt("--cc", optarg);
            cfg->cc = optarg;
            break;
        case OPT_SAMPLES:
            cfg->samples = optarg;
            break;
        case OPT_HASH:
            cfg->hash_only = true;
            break;
        case 't':
            if (tk_parse_double(optarg, 0.001, 1e6, &cfg->duration_s))
                return bad_opt("--duration", optarg);
            break;
        case 'T':
            if (tk_parse_double(optarg, 0.001, 1e6, &cfg->time_s))
                return bad_opt("--time", optarg);
            break;
        default:
            return tk_usage_rc(usage, c);
        }
    }
    if (tk_no_operands("tcpblast", argc, argv))
        return -1;
    return check_config(cfg);
}

int main(int argc, char **argv)
{
    struct config cfg;
    int rc = parse_args(argc, argv, &cfg);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (!gcry_check_version(NULL)) {
        fprintf(stderr, "tcpblast: libgcrypt initialisation failed\n");
        return 1;
    }
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    switch (cfg.mode) {
    case MODE_SEND:
        return mode_send(&cfg);
    case MODE_SINK:
        return mode_sink(&cfg);
    case MODE_ECHO:
        return mode_echo(&cfg);
    case MODE_RR:
        return mode_rr(&cfg);
    case MODE_GEN:
    case MODE_COUNT:
        break;
    }
    return mode_gen(&cfg);
}
