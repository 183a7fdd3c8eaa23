/* SPDX-License-Identifier: MIT */
/* udpflood: hostile UDP traffic for a ktun server (garbage, bad sizes, replays, wrong keys). */

/*
 * Sends a bounded flood of datagrams at --target from --sources sockets (each its own source
 * port, so that every socket looks like a different peer), paced by --rate, stopping at
 * --count datagrams or --duration seconds, whichever comes first. Each datagram is one of:
 *
 *   random    1..1500 random bytes
 *   trunc     a structured datagram (captured or wrong-key) cut to 0..len-1 bytes
 *   oversize  1501..65507 random bytes (65507: the largest IPv4 UDP payload)
 *   replay    a datagram captured from the real client, sent verbatim from a flood socket
 *   wrongkey  a real link datagram (FEC header, KCP segment) sealed with --crypt under --key,
 *             which must NOT be the server's key
 *
 * --mix weighs the kinds. Replays come from --relay (a transparent relay for one or more real
 * clients that records the first --capture client->server datagrams while forwarding both
 * ways) or from --load FILE (written by an earlier --save FILE: records of u16 big-endian
 * length then the bytes). A replay kind without any capture yet falls back to wrongkey.
 * With --relay the process keeps relaying until --duration or SIGINT/SIGTERM; the flood
 * starts --flood-delay seconds after start. Replies to flood sockets are read and counted
 * (a server that answers a flood socket has made a session for it).
 *
 * Every decision comes from one splitmix64 generator seeded by --seed, so a run's sequence of
 * kinds and sizes is reproducible. The final line on stdout reports what was sent.
 */

#include "common/link.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "tests/tools/toolkit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
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

#define FLOOD_MAX_DGRAM 65507     /* largest IPv4 UDP payload */
#define FLOOD_MTU_DGRAM 1500      /* kcp-go's mtuLimit */
#define FLOOD_MAX_SOURCES 1024
#define FLOOD_MAX_CLIENTS 64      /* relay: distinct real client addresses */
#define FLOOD_WK_POOL 256         /* wrong-key datagrams kept for reuse */
#define FLOOD_MAX_CAPTURE 65536
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

enum kind { K_RANDOM, K_TRUNC, K_OVERSIZE, K_REPLAY, K_WRONGKEY, K_COUNT };

static const char *const kind_names[K_COUNT] = {"random", "trunc", "oversize", "replay",
                                                "wrongkey"};

enum {
    OPT_COUNT = 257, OPT_DURATION, OPT_RATE, OPT_MIX, OPT_SOURCES, OPT_SEED, OPT_CRYPT,
    OPT_KEY, OPT_DS, OPT_PS, OPT_MTU, OPT_RELAY, OPT_CAPTURE, OPT_SAVE, OPT_LOAD,
    OPT_FLOOD_DELAY, OPT_TARGET, OPT_HELP
};

struct dgram {
    uint8_t *p;
    size_t len;
};

struct opts {
    struct sockaddr_storage target;
    socklen_t target_len;
    struct sockaddr_storage relay;
    socklen_t relay_len;          /* 0: no relay */
    uint64_t count;
    double duration_s;
    double rate;                  /* datagrams per second, 0 = unpaced */
    double flood_delay_s;
    unsigned weight[K_COUNT];
    int sources;
    uint64_t seed;
    const char *crypt;
    const char *key;
    int ds, ps, mtu;
    size_t capture;
    const char *save;
    const char *load;
};

struct relay_client {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int fd;                       /* connected to the target */
};

struct flood {
    struct opts o;
    uint64_t rng;
    int *src;                     /* flood sockets */
    int lfd;                      /* relay listen socket, -1 if none */
    struct relay_client cl[FLOOD_MAX_CLIENTS];
    int ncl;
    struct dgram *cap;            /* captured client->server datagrams */
    size_t ncap;
    size_t relay_captured;        /* datagrams of |cap| that came from the relay */
    struct dgram wk[FLOOD_WK_POOL];
    size_t nwk;
    struct link *wk_link;         /* generates wrong-key datagrams */
    struct crypt *wk_crypt;
    uint64_t sent[K_COUNT];
    uint64_t sent_total, send_errors, flood_replies, relay_up, relay_down, relay_drops;
    uint8_t buf[FLOOD_MAX_DGRAM + 1];
};

static volatile sig_atomic_t got_stop;

static void on_signal(int sig)
{
    (void)sig;
    got_stop = 1;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* Uniform in [lo, hi]. */
static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + tk_rng_next(s) % (hi - lo + 1);
}

static void rng_fill(uint64_t *s, uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t v = tk_rng_next(s);
        memcpy(p, &v, 8);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = tk_rng_next(s);
        memcpy(p, &v, len);
    }
}

/* crypt_rng_fn over the seeded generator (nonces and sender ids of wrong-key datagrams). */
static void crypt_rng_seeded(void *user, uint8_t *buf, size_t len)
{
    rng_fill(user, buf, len);
}

/* ---- option parsing ---- */

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "random:4,replay:1,..." -> weights; kinds not named get 0. */
static int parse_mix(const char *s, unsigned w[K_COUNT])
{
    char tmp[256];
    if (strlen(s) >= sizeof(tmp))
        return -1;
    strcpy(tmp, s);
    memset(w, 0, sizeof(unsigned) * K_COUNT);
    unsigned total = 0;
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        uint64_t v;
        if (parse_u64(colon + 1, 1000000, &v) != 0)
            return -1;
        int k;
        for (k = 0; k < K_COUNT; k++)
            if (strcmp(tok, kind_names[k]) == 0)
                break;
        if (k == K_COUNT)
            return -1;
        w[k] = (unsigned)v;
        total += (unsigned)v;
    }
    return total ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udpflood --target HOST:PORT [options]\n"
            "  --count N          datagrams to flood (default 200000)\n"
            "  --duration SEC     stop after SEC seconds (default 60; relay runs this long)\n"
            "  --rate PPS         flood pace in datagrams/s, 0 = unpaced (default 20000)\n"
            "  --mix K:W,...      weights of random, trunc, oversize, replay, wrongkey\n"
            "                     (default random:30,trunc:15,oversize:5,replay:25,wrongkey:25)\n"
            "  --sources N        flood source sockets (default 32)\n"
            "  --seed S           generator seed (default 1)\n"
            "  --crypt METHOD     wrong-key datagrams: method (default aes)\n"
            "  --key KEY          wrong-key datagrams: key (default not-the-key)\n"
            "  --ds N --ps N      wrong-key datagrams: FEC shards (default 10, 3)\n"
            "  --mtu N            wrong-key datagrams: mtu (default 1350)\n"
            "  --relay HOST:PORT  relay real clients from here to --target, capturing\n"
            "  --capture N        client->server datagrams to record (default 512)\n"
            "  --save FILE        write the captured datagrams at exit\n"
            "  --load FILE        replay datagrams from FILE\n"
            "  --flood-delay SEC  start flooding SEC seconds after start (default 0)\n");
}

static int bad_opt(const char *opt, const char *val)
{
    fprintf(stderr, "udpflood: bad value for %s: '%s'\n", opt, val ? val : "");
    return -1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lopts[] = {
        {"target", required_argument, NULL, OPT_TARGET},
        {"count", required_argument, NULL, OPT_COUNT},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"rate", required_argument, NULL, OPT_RATE},
        {"mix", required_argument, NULL, OPT_MIX},
        {"sources", required_argument, NULL, OPT_SOURCES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"crypt", required_argument, NULL, OPT_CRYPT},
        {"key", required_argument, NULL, OPT_KEY},
        {"ds", required_argument, NULL, OPT_DS},
        {"ps", required_argument, NULL, OPT_PS},
        {"mtu", required_argument, NULL, OPT_MTU},
        {"relay", required_argument, NULL, OPT_RELAY},
        {"capture", required_argument, NULL, OPT_CAPTURE},
        {"save", required_argument, NULL, OPT_SAVE},
        {"load", required_argument, NULL, OPT_LOAD},
        {"flood-delay", required_argument, NULL, OPT_FLOOD_DELAY},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->count = 200000;
    o->duration_s = 60;
    o->rate = 20000;
    parse_mix("random:30,trunc:15,oversize:5,replay:25,wrongkey:25", o->weight);
    o->sources = 32;
    o->seed = 1;
    o->crypt = "aes";
    o->key = "not-the-key";
    o->ds = 10;
    o->ps = 3;
    o->mtu = 1350;
    o->capture = 512;
    bool have_target = false;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET:
            if (parse_addr(optarg, &o->target, &o->target_len) != 0)
                return bad_opt("--target", optarg);
            have_target = true;
            break;
        case OPT_COUNT:
            if (parse_u64(optarg, UINT64_MAX, &o->count) != 0)
                return bad_opt("--count", optarg);
            break;
        case OPT_DURATION:
            if (tk_parse_double(optarg, 0, 86400, &o->duration_s) != 0)
                return bad_opt("--duration", optarg);
            break;
        case OPT_RATE:
            if (tk_parse_double(optarg, 0, 1e7, &o->rate) != 0)
                return bad_opt("--rate", optarg);
            break;
        case OPT_MIX:
            if (parse_mix(optarg, o->weight) != 0)
                return bad_opt("--mix", optarg);
            break;
        case OPT_SOURCES:
            if (parse_u64(optarg, FLOOD_MAX_SOURCES, &v) != 0 || v == 0)
                return bad_opt("--sources", optarg);
            o->sources = (int)v;
            break;
        case OPT_SEED:
            if (parse_u64(optarg, UINT64_MAX, &o->seed) != 0)
                return bad_opt("--seed", optarg);
            break;
        case OPT_CRYPT:
            o->crypt = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case OPT_DS:
        case OPT_PS:
            if (parse_u64(optarg, 255, &v) != 0)
                return bad_opt(c == OPT_DS ? "--ds" : "--ps", optarg);
            *(c == OPT_DS ? &o->ds : &o->ps) = (int)v;
            break;
        case OPT_MTU:
            if (parse_u64(optarg, FLOOD_MTU_DGRAM, &v) != 0 || v < 100)
                return bad_opt("--mtu", optarg);
            o->mtu = (int)v;
            break;
        case OPT_RELAY:
            if (parse_addr(optarg, &o->relay, &o->relay_len) != 0)
                return bad_opt("--relay", optarg);
            break;
        case OPT_CAPTURE:
            if (parse_u64(optarg, FLOOD_MAX_CAPTURE, &v) != 0)
                return bad_opt("--capture", optarg);
            o->capture = (size_t)v;
            break;
        case OPT_SAVE:
            o->save = optarg;
            break;
        case OPT_LOAD:
            o->load = optarg;
            break;
        case OPT_FLOOD_DELAY:
            if (tk_parse_double(optarg, 0, 86400, &o->flood_delay_s) != 0)
                return bad_opt("--flood-delay", optarg);
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "udpflood: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!have_target) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- datagram sources ---- */

static void set_buffers(int fd)
{
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

static int udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        set_buffers(fd);
    return fd;
}

static int capture_add(struct flood *f, const uint8_t *p, size_t len)
{
    if (f->ncap >= FLOOD_MAX_CAPTURE)
        return 0;
    if (!f->cap) {
        f->cap = calloc(FLOOD_MAX_CAPTURE, sizeof(*f->cap));
        if (!f->cap)
            return -1;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, p, len);
    f->cap[f->ncap].p = copy;
    f->cap[f->ncap].len = len;
    f->ncap++;
    return 0;
}

static int load_file(struct flood *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "udpflood: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    uint8_t hdr[2];
    while (fread(hdr, 1, 2, fp) == 2) {
        size_t len = (size_t)hdr[0] << 8 | hdr[1];
        if (fread(f->buf, 1, len, fp) != len || capture_add(f, f->buf, len) != 0) {
            fprintf(stderr, "udpflood: %s: truncated record\n", path);
            rc = -1;
            break;
        }
    }
    fclose(fp);
    return rc;
}

static int save_file(const struct flood *f, const char *path)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        fprintf(stderr, "udpflood: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < f->ncap; i++) {
        uint8_t hdr[2] = {(uint8_t)(f->cap[i].len >> 8), (uint8_t)f->cap[i].len};
        fwrite(hdr, 1, 2, fp);
        fwrite(f->cap[i].p, 1, f->cap[i].len, fp);
    }
    return fclose(fp) == 0 ? 0 : -1;
}

static void wk_output(void *user, const uint8_t *dgram, size_t len)
{
    struct flood *f = user;
    if (f->nwk >= FLOOD_WK_POOL)
        return;
    uint8_t *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, dgram, len);
    f->wk[f->nwk].p = copy;
    f->wk[f->nwk].len = len;
    f->nwk++;
}

/* Builds the pool of wrong-key datagrams: a fresh link (random conv) sealing random bytes. */
static int wk_build(struct flood *f)
{
    int err = 0;
    f->wk_crypt = crypt_new(f->o.crypt, f->o.key, crypt_rng_seeded, &f->rng, &err);
    if (!f->wk_crypt) {
        char msg[256];
        crypt_error(f->o.crypt, err, msg, sizeof(msg));
        fprintf(stderr, "udpflood: --crypt: %s\n", msg);
        return -1;
    }
    struct link_config cfg;
    link_config_default(&cfg);
    cfg.data_shards = f->o.ds;
    cfg.parity_shards = f->o.ps;
    cfg.mtu = (size_t)f->o.mtu;
    cfg.sndwnd = 1024;
    cfg.rcvwnd = 1024;
    cfg.nodelay = 1;
    cfg.interval_ms = 10;
    cfg.nc = 1;
    uint64_t now = 1000;
    cfg.wall_offset_ms = (int64_t)wall_ms() - (int64_t)now;
    f->wk_link = link_new((uint32_t)tk_rng_next(&f->rng), &cfg, f->wk_crypt, wk_output, f, &err);
    if (!f->wk_link) {
        fprintf(stderr, "udpflood: link_new: error %d\n", err);
        return -1;
    }
    uint8_t chunk[4096];
    for (int i = 0; i < 64 && f->nwk < FLOOD_WK_POOL; i++) {
        rng_fill(&f->rng, chunk, sizeof(chunk));
        link_send(f->wk_link, chunk, sizeof(chunk));
        link_flush(f->wk_link, now);
        now += 10;
    }
    return f->nwk ? 0 : -1;
}

static enum kind pick_kind(struct flood *f)
{
    unsigned total = 0;
    for (int k = 0; k < K_COUNT; k++)
        total += f->o.weight[k];
    unsigned r = (unsigned)(tk_rng_next(&f->rng) % total);
    for (int k = 0; k < K_COUNT; k++) {
        if (r < f->o.weight[k])
            return (enum kind)k;
        r -= f->o.weight[k];
    }
    return K_RANDOM;
}

/* A structured datagram: captured if any, else wrong-key. */
static const struct dgram *pick_structured(struct flood *f, bool captured)
{
    if (captured && f->ncap)
        return &f->cap[tk_rng_next(&f->rng) % f->ncap];
    return &f->wk[tk_rng_next(&f->rng) % f->nwk];
}

/* Makes the next flood datagram in f->buf; returns its length and sets *|k| to its kind. */
static size_t make_dgram(struct flood *f, enum kind *k)
{
    *k = pick_kind(f);
    if (*k == K_REPLAY && f->ncap == 0)
        *k = K_WRONGKEY;
    const struct dgram *d;
    size_t len;
    switch (*k) {
    case K_TRUNC:
        d = pick_structured(f, tk_rng_next(&f->rng) & 1);
        len = d->len ? (size_t)rng_range(&f->rng, 0, d->len - 1) : 0;
        memcpy(f->buf, d->p, len);
        return len;
    case K_OVERSIZE:
        len = (size_t)rng_range(&f->rng, FLOOD_MTU_DGRAM + 1, FLOOD_MAX_DGRAM);
        rng_fill(&f->rng, f->buf, len);
        return len;
    case K_REPLAY:
        d = pick_structured(f, true);
        memcpy(f->buf, d->p, d->len);
        return d->len;
    case K_WRONGKEY:
        d = pick_structured(f, false);
        memcpy(f->buf, d->p, d->len);
        return d->len;
    case K_RANDOM:
    default:
        len = (size_t)rng_range(&f->rng, 1, FLOOD_MTU_DGRAM);
        rng_fill(&f->rng, f->buf, len);
        return len;
    }
}

static void flood_one(struct flood *f)
{
    enum kind k;
    size_t len = make_dgram(f, &k);
    int fd = f->src[tk_rng_next(&f->rng) % (uint64_t)f->o.sources];
    ssize_t n = sendto(fd, f->buf, len, 0, (struct sockaddr *)&f->o.target, f->o.target_len);
    if (n < 0) {
        f->send_errors++;
        return;
    }
    f->sent[k]++;
    f->sent_total++;
}

/* ---- relay ---- */

static int relay_client(struct flood *f, const struct sockaddr_storage *a, socklen_t len)
{
    for (int i = 0; i < f->ncl; i++)
        if (f->cl[i].addr_len == len && memcmp(&f->cl[i].addr, a, len) == 0)
            return i;
    if (f->ncl >= FLOOD_MAX_CLIENTS)
        return -1;
    int fd = udp_socket(f->o.target.ss_family);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&f->o.target, f->o.target_len) != 0) {
        close(fd);
        return -1;
    }
    struct relay_client *c = &f->cl[f->ncl];
    memcpy(&c->addr, a, len);
    c->addr_len = len;
    c->fd = fd;
    return f->ncl++;
}

static void relay_up(struct flood *f)
{
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(f->lfd, f->buf, FLOOD_MAX_DGRAM, 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return;
        int ci = relay_client(f, &from, flen);
        if (ci < 0 || send(f->cl[ci].fd, f->buf, (size_t)n, 0) < 0) {
            f->relay_drops++;
            continue;
        }
        f->relay_up++;
        if (f->relay_captured < f->o.capture) {
            f->relay_captured++;
            if (capture_add(f, f->buf, (size_t)n) != 0)
                f->relay_drops++;
        }
    }
}

static void relay_down(struct flood *f, int ci)
{
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(f->cl[ci].fd, f->buf, FLOOD_MAX_DGRAM, 0);
        if (n < 0)
            return;
        if (sendto(f->lfd, f->buf, (size_t)n, 0, (struct sockaddr *)&f->cl[ci].addr,
                   f->cl[ci].addr_len) < 0)
            f->relay_drops++;
        else
            f->relay_down++;
    }
}

static void drain_source(struct flood *f, int fd)
{
    for (int i = 0; i < 256; i++) {
        if (recv(fd, f->buf, FLOOD_MAX_DGRAM, 0) < 0)
            return;
        f->flood_replies++;
    }
}

static void report(const struct flood *f, uint64_t elapsed_ns)
{
    printf("udpflood: sent=%" PRIu64, f->sent_total);
    for (int k = 0; k < K_COUNT; k++)
        printf(" %s=%" PRIu64, kind_names[k], f->sent[k]);
    printf(" send_errors=%" PRIu64 " flood_replies=%" PRIu64 " captured=%zu relay_up=%" PRIu64
           " relay_down=%" PRIu64 " relay_drops=%" PRIu64 " elapsed_ms=%" PRIu64 "\n",
           f->send_errors, f->flood_replies, f->ncap, f->relay_up, f->relay_down, f->relay_drops,
           (uint64_t)(elapsed_ns / NS_PER_MS));
    fflush(stdout);
}

static int run(struct flood *f)
{
    struct pollfd *pfd = calloc((size_t)(f->o.sources + FLOOD_MAX_CLIENTS + 1), sizeof(*pfd));
    if (!pfd)
        return -1;
    uint64_t start = tk_now_ns();
    uint64_t end = start + (uint64_t)(f->o.duration_s * (double)NS_PER_S);
    uint64_t flood_start = start + (uint64_t)(f->o.flood_delay_s * (double)NS_PER_S);
    uint64_t flood_end = 0;
    double gap_ns = f->o.rate > 0 ? (double)NS_PER_S / f->o.rate : 0;
    while (!got_stop) {
        uint64_t now = tk_now_ns();
        if (now >= end)
            break;
        bool flooding = now >= flood_start && f->sent_total + f->send_errors < f->o.count;
        if (!flooding && f->sent_total + f->send_errors >= f->o.count && !flood_end) {
            flood_end = now;
            fprintf(stderr, "udpflood: flood done after %" PRIu64 " ms\n",
                    (uint64_t)((now - flood_start) / NS_PER_MS));
            if (f->lfd < 0)
                break;
        }
        if (flooding) {
            /* catch up to the pace, at most 256 datagrams per round */
            uint64_t due = f->o.count;
            if (gap_ns > 0)
                due = (uint64_t)((double)(now - flood_start) / gap_ns) + 1;
            for (int i = 0; i < 256 && f->sent_total + f->send_errors < due &&
                            f->sent_total + f->send_errors < f->o.count; i++)
                flood_one(f);
        }
        int n = 0;
        for (int i = 0; i < f->o.sources; i++)
            pfd[n++] = (struct pollfd){.fd = f->src[i], .events = POLLIN};
        int base = n;
        if (f->lfd >= 0)
            pfd[n++] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        for (int i = 0; i < f->ncl; i++)
            pfd[n++] = (struct pollfd){.fd = f->cl[i].fd, .events = POLLIN};
        int timeout = flooding ? (gap_ns > 0 ? 1 : 0) : 50;
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < base; i++)
            if (pfd[i].revents & POLLIN)
                drain_source(f, pfd[i].fd);
        int j = base;
        if (f->lfd >= 0 && (pfd[j++].revents & POLLIN))
            relay_up(f);
        for (int i = 0; i < f->ncl && j < n; i++, j++)
            if (pfd[j].revents & POLLIN)
                relay_down(f, i);
    }
    free(pfd);
    report(f, tk_now_ns() - start);
    return 0;
}

int main(int argc, char **argv)
{
    struct flood *f = calloc(1, sizeof(*f));
    int rc = 2;
    if (!f || parse_args(argc, argv, &f->o) != 0)
        goto out;
    rc = 1;
    f->rng = f->o.seed;
    f->lfd = -1;
    if (crypt_lib_init() != 0) {
        fprintf(stderr, "udpflood: cannot initialise the crypto libraries\n");
        goto out;
    }
    if (wk_build(f) != 0)
        goto out;
    if (f->o.load && load_file(f, f->o.load) != 0)
        goto out;
    f->src = calloc((size_t)f->o.sources, sizeof(int));
    if (!f->src)
        goto out;
    for (int i = 0; i < f->o.sources; i++)
        f->src[i] = -1;
    for (int i = 0; i < f->o.sources; i++) {
        f->src[i] = udp_socket(f->o.target.ss_family);
        if (f->src[i] < 0) {
            fprintf(stderr, "udpflood: socket: %s\n", strerror(errno));
            goto out;
        }
    }
    if (f->o.relay_len) {
        f->lfd = udp_socket(f->o.relay.ss_family);
        if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&f->o.relay, f->o.relay_len) != 0) {
            fprintf(stderr, "udpflood: --relay: %s\n", strerror(errno));
            goto out;
        }
        fprintf(stderr, "udpflood: relaying\n");
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (run(f) != 0)
        goto out;
    if (f->o.save && save_file(f, f->o.save) != 0)
        goto out;
    rc = 0;
out:
    if (f) {
        for (int i = 0; f->src && i < f->o.sources; i++)
            if (f->src[i] >= 0)
                close(f->src[i]);
        free(f->src);
        if (f->lfd >= 0)
            close(f->lfd);
        for (int i = 0; i < f->ncl; i++)
            close(f->cl[i].fd);
        for (size_t i = 0; i < f->ncap; i++)
            free(f->cap[i].p);
        free(f->cap);
        for (size_t i = 0; i < f->nwk; i++)
            free(f->wk[i].p);
        link_free(f->wk_link);
        crypt_free(f->wk_crypt);
        free(f);
    }
    return rc;
}
