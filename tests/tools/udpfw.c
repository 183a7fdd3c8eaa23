/* SPDX-License-Identifier: MIT */
/* udpfw: a lossy UDP relay (loss, delay, jitter, reorder, duplication, rate cap) for tests. */

/*
 * Datagrams from clients arrive on the listen socket and go "up" to the upstream address
 * through one connected socket per client source address, so that replies ("down") find their
 * way back to the right client. Each direction applies, in this order: random loss, a rate cap
 * with a bounded byte queue (tail drop), one-way delay plus jitter (order kept), explicit
 * reordering (a chosen packet is held back by --reorder-gap ms) and duplication. Release times
 * live in one binary heap keyed by (time, sequence), so equal times stay FIFO. With --echo there
 * is no upstream: datagrams come back to their sender after the "up" impairments.
 *
 * Two modes act like the network between a roaming client and its server:
 * --rebind SEC gives every client a new upstream socket (a new source port, as a NAT that
 * lost its mapping does) every SEC seconds; the old socket is closed, so replies still on
 * their way to it are lost. --replay N sends N copies of captured client datagrams (the last
 * UDPFW_CAPTURE seen going up) to the upstream from --replay-socks other source addresses,
 * at --replay-rate per second, each at least --replay-age ms after it was captured; whatever
 * comes back to those addresses is counted (replay_replies: a server that answered a replayer).
 * --kill-flows SEC drops, every SEC seconds, every client flow seen so far for good, both ways
 * (a middlebox that lost or throttles them); a client that changes its source port gets a new
 * flow that works.
 *
 * Needs no root. Plain ppoll loop; every run can be bounded with --duration.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
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

#include "common/util.h"
#include "tests/tools/toolkit.h"

#define UDPFW_MAX_DGRAM 65536
#define UDPFW_BATCH 64
#define UDPFW_DIRS 2
#define UDPFW_UP 0
#define UDPFW_DOWN 1
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define UDPFW_CAPTURE 256   /* client datagrams kept for --replay */
#define UDPFW_REPLAY_SOCKS_MAX 64

enum {
    OPT_REORDER_GAP = 257,
    OPT_RATE_QUEUE,
    OPT_MAX_CLIENTS,
    OPT_IDLE,
    OPT_DURATION,
    OPT_REBIND,
    OPT_REPLAY,
    OPT_REPLAY_RATE,
    OPT_REPLAY_SOCKS,
    OPT_REPLAY_AGE,
    OPT_KILL_FLOWS,
};

struct dir_cfg {
    double loss_pct;     /* random loss probability, percent */
    double delay_ms;     /* one-way delay */
    double jitter_ms;    /* delay varies uniformly in [-jitter, +jitter], order kept */
    double reorder_pct;  /* probability that a packet is held back by reorder_gap_ms */
    double dup_pct;      /* probability that a packet is sent twice */
    double rate_bps;     /* rate cap in bit/s, 0 = none */
    double rate_queue;   /* bytes that may wait for the rate cap before tail drop */
};

struct dir_stats {
    uint64_t rx_pkts, rx_bytes; /* datagrams received in this direction */
    uint64_t tx_pkts, tx_bytes; /* datagrams delivered */
    uint64_t lost;              /* random loss */
    uint64_t queue_drops;       /* rate-queue tail drops and queue-cap drops */
    uint64_t dups;              /* extra copies made */
    uint64_t reordered;         /* packets held back */
    uint64_t send_errors;       /* sendto/send failures */
};

struct dir_state {
    struct dir_cfg cfg;
    struct dir_stats st;
    uint64_t busy_until_ns;   /* rate cap: when the link finishes the last accepted packet */
    uint64_t last_release_ns; /* keeps jittered packets in order */
};

struct client {
    struct sockaddr_storage addr; /* client source address */
    socklen_t addr_len;
    int fd;                       /* connected socket to upstream, -1 if unused */
    uint32_t gen;                 /* bumped when the slot is reused */
    uint64_t last_ns;             /* last activity, for the idle timeout */
    bool dead;                    /* --kill-flows: everything of this flow is dropped */
};

struct pkt {
    struct tk_heap_item hi; /* release time (when to deliver), FIFO tie-break */
    int dir;             /* UDPFW_UP or UDPFW_DOWN */
    int client;          /* index into clients */
    uint32_t gen;        /* client generation at enqueue time */
    size_t len;
    uint8_t data[];
};

struct config {
    struct sockaddr_storage listen_addr;
    socklen_t listen_len;
    struct sockaddr_storage upstream_addr;
    socklen_t upstream_len;
    bool has_upstream;
    bool echo;
    struct dir_cfg dir[UDPFW_DIRS];
    double reorder_gap_ms;
    long queue_max;       /* packets held at once */
    long max_clients;
    double idle_timeout_s;
    double duration_s;    /* 0 = run until a signal */
    double rebind_s;      /* new upstream socket per client every this many seconds, 0 = never */
    double kill_flows_s;  /* every this many seconds all flows so far die, 0 = never */
    long replay_count;    /* captured datagrams to replay, 0 = none */
    double replay_rate;   /* replays per second */
    long replay_socks;    /* distinct source addresses of the replays */
    double replay_age_ms; /* a datagram is replayed only this long after its capture */
    uint64_t seed;
    const char *stats_path;
};

struct fw {
    const struct config *cfg;
    int listen_fd;
    struct client *clients;
    struct tk_heap heap;    /* packets waiting for their release time */
    uint64_t seq;
    uint64_t rng;
    struct dir_state dir[UDPFW_DIRS];
    uint64_t evictions;     /* clients dropped to make room for a new one */
    uint64_t no_socket;     /* datagrams dropped because no upstream socket could be made */
    uint64_t clients_seen;  /* client slots created (each a distinct source address) */
    uint64_t rebinds;       /* upstream sockets replaced by --rebind */
    uint64_t rebind_errors; /* replacements that failed (the old socket is kept) */
    uint64_t flows_killed;  /* flows dropped by --kill-flows */
    uint64_t dead_drops;    /* datagrams dropped because their flow was killed */
    struct capture {
        uint64_t at_ns;     /* when it went up */
        size_t len;         /* 0 = empty */
        uint8_t *data;
    } capture[UDPFW_CAPTURE]; /* ring of the last client datagrams, for --replay */
    size_t capture_next;
    int *replay_fds;        /* --replay-socks sockets connected to the upstream */
    uint64_t replay_sent, replay_errors, replay_replies, replay_reply_bytes;
    uint8_t buf[UDPFW_MAX_DGRAM];
};

static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_dump;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_dump = 1;
    else
        got_stop = 1;
}

/* ---- option parsing ---- */

/* Parses "A" (both directions) or "A/B" (up/down) into two doubles. */
static int parse_pair(const char *s, double min, double max, bool rate, double out[2])
{
    char tmp[TK_PAIR_MAX];
    const char *parts[2];
    if (tk_split_pair(s, tmp, parts))
        return -1;
    for (int i = 0; i < 2; i++) {
        int rc = rate ? tk_parse_rate(parts[i], HUGE_VAL, &out[i])
                      : tk_parse_double(parts[i], min, max, &out[i]);
        if (rc)
            return -1;
    }
    return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, cap, "?");
        return;
    }
    if (ss->ss_family == AF_INET6)
        snprintf(out, cap, "[%s]:%s", host, port);
    else
        snprintf(out, cap, "%s:%s", host, port);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udpfw --listen HOST:PORT (--upstream HOST:PORT | --echo) [impairments]\n"
            "Impairments take VALUE (both directions) or UP/DOWN (up = client to upstream):\n"
            "  -L, --loss PCT          random loss, percent\n"
            "  -d, --delay MS          one-way delay\n"
            "  -j, --jitter MS         delay varies uniformly by +-MS (order is kept)\n"
            "  -r, --reorder PCT       hold a packet back by --reorder-gap MS (default 10)\n"
            "  -D, --dup PCT           send a packet twice\n"
            "  -R, --rate RATE         rate cap: 500kbit, 10mbit, 1gbit (0 = none)\n"
            "      --rate-queue BYTES  bytes waiting for the rate cap before tail drop (65536)\n"
            "Other options:\n"
            "  -e, --echo              no upstream: send datagrams back to their sender\n"
            "  -q, --queue-max N       packets held at once, all directions (4096)\n"
            "      --max-clients N     client address slots; the least recently used goes (64)\n"
            "      --idle-timeout SEC  free a client slot after SEC idle (60)\n"
            "  -s, --seed N            PRNG seed (1)\n"
            "  -S, --stats FILE        write counters to FILE on exit and on SIGUSR1\n"
            "      --duration SEC      exit after SEC seconds (0 = until SIGINT/SIGTERM)\n"
            "Roaming and hostile peers (with --upstream):\n"
            "      --rebind SEC        every SEC seconds, each client gets a new upstream source\n"
            "                          port; the old socket is closed (a NAT rebinding)\n"
            "      --replay N          replay N captured client datagrams from other addresses\n"
            "      --replay-rate PPS   replays per second (1000)\n"
            "      --replay-socks K    distinct source addresses of the replays (4)\n"
            "      --replay-age MS     replay only datagrams captured at least MS ago (0)\n"
            "      --kill-flows SEC    every SEC seconds, drop every flow seen so far for good\n"
            "Prints \"listening HOST:PORT\" on stdout once bound (port 0 picks one).\n");
}

/* Fills |cfg| from argv; returns 0, 1 for --help, or -1 after printing an error. Long: one
 * switch over the option table reads better than the table split across helpers. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"echo", no_argument, NULL, 'e'},
        {"loss", required_argument, NULL, 'L'},
        {"delay", required_argument, NULL, 'd'},
        {"jitter", required_argument, NULL, 'j'},
        {"reorder", required_argument, NULL, 'r'},
        {"reorder-gap", required_argument, NULL, OPT_REORDER_GAP},
        {"dup", required_argument, NULL, 'D'},
        {"rate", required_argument, NULL, 'R'},
        {"rate-queue", required_argument, NULL, OPT_RATE_QUEUE},
        {"queue-max", required_argument, NULL, 'q'},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"seed", required_argument, NULL, 's'},
        {"stats", required_argument, NULL, 'S'},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"rebind", required_argument, NULL, OPT_REBIND},
        {"replay", required_argument, NULL, OPT_REPLAY},
        {"replay-rate", required_argument, NULL, OPT_REPLAY_RATE},
        {"replay-socks", required_argument, NULL, OPT_REPLAY_SOCKS},
        {"replay-age", required_argument, NULL, OPT_REPLAY_AGE},
        {"kill-flows", required_argument, NULL, OPT_KILL_FLOWS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool has_listen = false;
    double v[2], one;
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->reorder_gap_ms = 10;
    cfg->queue_max = 4096;
    cfg->max_clients = 64;
    cfg->idle_timeout_s = 60;
    cfg->seed = 1;
    cfg->replay_rate = 1000;
    cfg->replay_socks = 4;
    for (int i = 0; i < UDPFW_DIRS; i++)
        cfg->dir[i].rate_queue = 65536;

    while ((c = getopt_long(argc, argv, "l:u:eL:d:j:r:D:R:q:s:S:h", opts, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = opts; o->name; o++)
            if (o->val == c)
                name = o->name;
        switch (c) {
        case 'l':
            if (tk_resolve(optarg, SOCK_DGRAM, &cfg->listen_addr, &cfg->listen_len))
                return tk_bad_opt("udpfw", name, optarg);
            has_listen = true;
            break;
        case 'u':
            if (tk_resolve(optarg, SOCK_DGRAM, &cfg->upstream_addr, &cfg->upstream_len))
                return tk_bad_opt("udpfw", name, optarg);
            cfg->has_upstream = true;
            break;
        case 'e':
            cfg->echo = true;
            break;
        case 'L':
        case 'r':
        case 'D':
            if (parse_pair(optarg, 0, 100, false, v))
                return tk_bad_opt("udpfw", name, optarg);
            for (int i = 0; i < UDPFW_DIRS; i++) {
                double *f = c == 'L' ? &cfg->dir[i].loss_pct
                            : c == 'r' ? &cfg->dir[i].reorder_pct : &cfg->dir[i].dup_pct;
                *f = v[i];
            }
            break;
        case 'd':
        case 'j':
            if (parse_pair(optarg, 0, 600000, false, v))
                return tk_bad_opt("udpfw", name, optarg);
            for (int i = 0; i < UDPFW_DIRS; i++)
                *(c == 'd' ? &cfg->dir[i].delay_ms : &cfg->dir[i].jitter_ms) = v[i];
            break;
        case 'R':
            if (parse_pair(optarg, 0, 0, true, v))
                return tk_bad_opt("udpfw", name, optarg);
            for (int i = 0; i < UDPFW_DIRS; i++)
                cfg->dir[i].rate_bps = v[i];
            break;
        case OPT_RATE_QUEUE:
            if (parse_pair(optarg, 1500, 1e9, false, v))
                return tk_bad_opt("udpfw", name, optarg);
            for (int i = 0; i < UDPFW_DIRS; i++)
                cfg->dir[i].rate_queue = v[i];
            break;
        case OPT_REORDER_GAP:
            if (tk_parse_double(optarg, 0, 600000, &cfg->reorder_gap_ms))
                return tk_bad_opt("udpfw", name, optarg);
            break;
        case 'q':
        case OPT_MAX_CLIENTS:
            if (tk_parse_double(optarg, 1, 1 << 20, &one) || one != floor(one))
                return tk_bad_opt("udpfw", name, optarg);
            *(c == 'q' ? &cfg->queue_max : &cfg->max_clients) = (long)one;
            break;
        case OPT_IDLE:
        case OPT_DURATION:
            if (tk_parse_double(optarg, 0, 1e7, &one))
                return tk_bad_opt("udpfw", name, optarg);
            *(c == OPT_IDLE ? &cfg->idle_timeout_s : &cfg->duration_s) = one;
            break;
        case OPT_REBIND:
        case OPT_KILL_FLOWS:
            if (tk_parse_double(optarg, 0.01, 1e7,
                                c == OPT_REBIND ? &cfg->rebind_s : &cfg->kill_flows_s))
                return tk_bad_opt("udpfw", name, optarg);
            break;
        case OPT_REPLAY:
        case OPT_REPLAY_SOCKS:
            if (tk_parse_double(optarg, 1, c == OPT_REPLAY ? 1e12 : UDPFW_REPLAY_SOCKS_MAX,
                                &one) ||
                one != floor(one))
                return tk_bad_opt("udpfw", name, optarg);
            *(c == OPT_REPLAY ? &cfg->replay_count : &cfg->replay_socks) = (long)one;
            break;
        case OPT_REPLAY_RATE:
            if (tk_parse_double(optarg, 1, 1e7, &cfg->replay_rate))
                return tk_bad_opt("udpfw", name, optarg);
            break;
        case OPT_REPLAY_AGE:
            if (tk_parse_double(optarg, 0, 600000, &cfg->replay_age_ms))
                return tk_bad_opt("udpfw", name, optarg);
            break;
        case 's':
            if (tk_parse_double(optarg, 0, 1.8e19, &one) || one != floor(one))
                return tk_bad_opt("udpfw", name, optarg);
            cfg->seed = (uint64_t)one;
            break;
        case 'S':
            cfg->stats_path = optarg;
            break;
        default:
            return tk_usage_rc(usage, c);
        }
    }
    if (tk_no_operands("udpfw", argc, argv))
        return -1;
    if (!has_listen || cfg->has_upstream == cfg->echo) {
        fprintf(stderr, "udpfw: need --listen and exactly one of --upstream, --echo\n");
        return -1;
    }
    if (cfg->echo && (cfg->rebind_s > 0 || cfg->replay_count > 0 || cfg->kill_flows_s > 0)) {
        fprintf(stderr, "udpfw: --rebind, --replay and --kill-flows need --upstream\n");
        return -1;
    }
    return 0;
}

/* ---- impairment pipeline ---- */

/* Computes the release time of one copy, or returns false for a rate-queue tail drop. */
static bool release_time(struct fw *fw, struct dir_state *d, size_t len, uint64_t now,
                         bool *reordered, uint64_t *out)
{
    uint64_t t = now;
    if (d->cfg.rate_bps > 0) {
        uint64_t start = MAX(now, d->busy_until_ns);
        double backlog = (double)(start - now) * d->cfg.rate_bps / 8e9;
        if (backlog + (double)len > d->cfg.rate_queue)
            return false;
        d->busy_until_ns = start + (uint64_t)((double)len * 8e9 / d->cfg.rate_bps);
        t = d->busy_until_ns;
    }
    double delay = d->cfg.delay_ms;
    if (d->cfg.jitter_ms > 0)
        delay += (tk_rng_unit(&fw->rng) * 2 - 1) * d->cfg.jitter_ms;
    if (delay > 0)
        t += (uint64_t)(delay * 1e6);
    *reordered = tk_chance(&fw->rng, d->cfg.reorder_pct);
    if (*reordered) {
        t += (uint64_t)(fw->cfg->reorder_gap_ms * 1e6);
    } else {
        t = MAX(t, d->last_release_ns);
        d->last_release_ns = t;
    }
    *out = t;
    return true;
}

static void enqueue(struct fw *fw, int dir, int client, const uint8_t *data, size_t len,
                    uint64_t now)
{
    struct dir_state *d = &fw->dir[dir];
    d->st.rx_pkts++;
    d->st.rx_bytes += len;
    if (tk_chance(&fw->rng, d->cfg.loss_pct)) {
        d->st.lost++;
        return;
    }
    int copies = tk_chance(&fw->rng, d->cfg.dup_pct) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        bool reordered;
        uint64_t t;
        if ((long)fw->heap.len >= fw->cfg->queue_max ||
            !release_time(fw, d, len, now, &reordered, &t)) {
            d->st.queue_drops++;
            continue;
        }
        struct pkt *p = malloc(sizeof(*p) + len);
        if (!p) {
            d->st.queue_drops++;
            continue;
        }
        p->hi.release_ns = t;
        p->hi.seq = fw->seq++;
        p->dir = dir;
        p->client = client;
        p->gen = fw->clients[client].gen;
        p->len = len;
        memcpy(p->data, data, len);
        tk_heap_push(&fw->heap, &p->hi);
        d->st.dups += i;
        d->st.reordered += reordered;
    }
}

static void deliver(struct fw *fw, const struct pkt *p)
{
    struct dir_state *d = &fw->dir[p->dir];
    const struct client *cl = &fw->clients[p->client];
    if (cl->gen != p->gen || (cl->fd == -1 && !fw->cfg->echo))
        return; /* the client slot expired meanwhile */
    ssize_t n;
    if (p->dir == UDPFW_UP && !fw->cfg->echo)
        n = send(cl->fd, p->data, p->len, MSG_DONTWAIT);
    else
        n = sendto(fw->listen_fd, p->data, p->len, MSG_DONTWAIT,
                   (const struct sockaddr *)&cl->addr, cl->addr_len);
    if (n == -1) {
        d->st.send_errors++;
        return;
    }
    d->st.tx_pkts++;
    d->st.tx_bytes += p->len;
}

static void release_due(struct fw *fw, uint64_t now)
{
    while (tk_heap_wait(&fw->heap, now, 1) == 0) {
        struct pkt *p = (struct pkt *)tk_heap_pop(&fw->heap);
        deliver(fw, p);
        free(p);
    }
}

/* ---- clients ---- */

/* Large socket buffers, so that bursts are lost only where udpfw decides. */
static void set_buffers(int fd)
{
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

static void client_close(struct fw *fw, int i)
{
    struct client *cl = &fw->clients[i];
    if (cl->fd != -1)
        close(cl->fd);
    cl->fd = -1;
    cl->addr_len = 0;
    cl->dead = false;
    cl->gen++;
}

static bool same_addr(const struct client *cl, const struct sockaddr_storage *a, socklen_t len)
{
    return cl->addr_len == len && memcmp(&cl->addr, a, len) == 0;
}

/* Returns a new socket connected to the upstream (a fresh source port), or -1. */
static int upstream_socket(const struct fw *fw)
{
    int fd = socket(fw->cfg->upstream_addr.ss_family, SOCK_DGRAM, 0);
    if (fd == -1)
        return -1;
    if (connect(fd, (const struct sockaddr *)&fw->cfg->upstream_addr, fw->cfg->upstream_len) ==
        -1) {
        close(fd);
        return -1;
    }
    set_buffers(fd);
    return fd;
}

/* Finds or creates the slot for client address |a|, evicting the least recently used client
 * when all slots are taken; returns its index or -1 if no upstream socket could be made. */
static int client_get(struct fw *fw, const struct sockaddr_storage *a, socklen_t len, uint64_t now)
{
    int free_slot = -1, lru = 0;
    for (int i = 0; i < fw->cfg->max_clients; i++) {
        if (fw->clients[i].addr_len == 0) {
            if (free_slot < 0)
                free_slot = i;
        } else if (same_addr(&fw->clients[i], a, len)) {
            fw->clients[i].last_ns = now;
            return i;
        } else if (fw->clients[i].last_ns < fw->clients[lru].last_ns) {
            lru = i;
        }
    }
    if (free_slot < 0) {
        client_close(fw, lru);
        fw->evictions++;
        free_slot = lru;
    }
    struct client *cl = &fw->clients[free_slot];
    if (!fw->cfg->echo) {
        cl->fd = upstream_socket(fw);
        if (cl->fd == -1)
            return -1;
    }
    memcpy(&cl->addr, a, len);
    cl->addr_len = len;
    cl->last_ns = now;
    fw->clients_seen++;
    return free_slot;
}

/* --rebind: every client's upstream socket is replaced; queued packets keep their slot. */
static void clients_rebind(struct fw *fw)
{
    for (int i = 0; i < fw->cfg->max_clients; i++) {
        struct client *cl = &fw->clients[i];
        if (cl->fd == -1)
            continue;
        int fd = upstream_socket(fw);
        if (fd == -1) {
            fw->rebind_errors++;
            continue;
        }
        close(cl->fd);
        cl->fd = fd;
        fw->rebinds++;
    }
}

static void clients_expire(struct fw *fw, uint64_t now)
{
    uint64_t idle = (uint64_t)(fw->cfg->idle_timeout_s * 1e9);
    for (int i = 0; i < fw->cfg->max_clients; i++)
        if (fw->clients[i].addr_len && now - fw->clients[i].last_ns > idle)
            client_close(fw, i);
}

/* ---- hostile replayer ---- */

static void capture(struct fw *fw, const uint8_t *data, size_t len, uint64_t now)
{
    struct capture *c = &fw->capture[fw->capture_next];
    uint8_t *copy = realloc(c->data, len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, data, len);
    c->data = copy;
    c->len = len;
    c->at_ns = now;
    fw->capture_next = (fw->capture_next + 1) % UDPFW_CAPTURE;
}

static int open_replay_socks(struct fw *fw)
{
    if (fw->cfg->replay_count <= 0)
        return 0;
    fw->replay_fds = calloc((size_t)fw->cfg->replay_socks, sizeof(int));
    if (!fw->replay_fds)
        return -1;
    for (long i = 0; i < fw->cfg->replay_socks; i++)
        fw->replay_fds[i] = -1;
    for (long i = 0; i < fw->cfg->replay_socks; i++) {
        fw->replay_fds[i] = upstream_socket(fw);
        if (fw->replay_fds[i] == -1) {
            fprintf(stderr, "udpfw: replay socket: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Sends the replays due by |now| (at most one batch); *|due_ns| is the next due time. */
static void replay_due(struct fw *fw, uint64_t now, uint64_t *due_ns)
{
    const struct config *cfg = fw->cfg;
    uint64_t gap = (uint64_t)(1e9 / cfg->replay_rate);
    uint64_t age = (uint64_t)(cfg->replay_age_ms * 1e6);
    if (*due_ns + 100 * NS_PER_MS < now)
        *due_ns = now; /* fell behind (the loop was busy): no burst to catch up */
    for (int k = 0; k < UDPFW_BATCH && (long)fw->replay_sent < cfg->replay_count; k++) {
        if (*due_ns > now)
            return;
        /* a random captured datagram old enough; none yet: try again a little later */
        const struct capture *c = NULL;
        for (int tries = 0; tries < 8 && !c; tries++) {
            const struct capture *t = &fw->capture[tk_rng_next(&fw->rng) % UDPFW_CAPTURE];
            if (t->data && t->at_ns + age <= now)
                c = t;
        }
        if (!c) {
            *due_ns = now + NS_PER_MS;
            return;
        }
        int fd = fw->replay_fds[tk_rng_next(&fw->rng) % (uint64_t)cfg->replay_socks];
        if (send(fd, c->data, c->len, MSG_DONTWAIT) == -1)
            fw->replay_errors++;
        fw->replay_sent++;
        *due_ns += gap;
    }
}

static void read_replay(struct fw *fw, int fd)
{
    for (int k = 0; k < UDPFW_BATCH; k++) {
        ssize_t n = recv(fd, fw->buf, sizeof(fw->buf), MSG_DONTWAIT);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            continue; /* ECONNREFUSED from an earlier send */
        }
        fw->replay_replies++;
        fw->replay_reply_bytes += (uint64_t)n;
    }
}

static void read_client(struct fw *fw, int ci)
{
    for (int k = 0; k < UDPFW_BATCH; k++) {
        ssize_t n = recv(fw->clients[ci].fd, fw->buf, sizeof(fw->buf), MSG_DONTWAIT);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            continue; /* ECONNREFUSED from an earlier send: keep reading */
        }
        uint64_t now = tk_now_ns();
        fw->clients[ci].last_ns = now;
        if (fw->clients[ci].dead) {
            fw->dead_drops++;
            continue;
        }
        enqueue(fw, UDPFW_DOWN, ci, fw->buf, (size_t)n, now);
    }
}

/* ---- I/O ---- */

static void read_listen(struct fw *fw)
{
    for (int k = 0; k < UDPFW_BATCH; k++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fw->listen_fd, fw->buf, sizeof(fw->buf), MSG_DONTWAIT,
                             (struct sockaddr *)&from, &from_len);
        if (n == -1)
            return; /* EAGAIN, or an ICMP error reported on the socket: nothing to read */
        uint64_t now = tk_now_ns();
        int ci = client_get(fw, &from, from_len, now);
        if (ci < 0) {
            fw->no_socket++;
            continue;
        }
        if (fw->clients[ci].dead) {
            fw->dead_drops++;
            continue;
        }
        if (fw->cfg->replay_count > 0)
            capture(fw, fw->buf, (size_t)n, now);
        enqueue(fw, UDPFW_UP, ci, fw->buf, (size_t)n, now);
    }
}

static void print_stats(const struct fw *fw, FILE *f)
{
    static const char *const names[UDPFW_DIRS] = {"up", "down"};
    for (int i = 0; i < UDPFW_DIRS; i++) {
        const struct dir_stats *s = &fw->dir[i].st;
        fprintf(f,
                "%s: rx_pkts=%" PRIu64 " rx_bytes=%" PRIu64 " tx_pkts=%" PRIu64
                " tx_bytes=%" PRIu64 " lost=%" PRIu64 " queue_drops=%" PRIu64 " dups=%" PRIu64
                " reordered=%" PRIu64 " send_errors=%" PRIu64 "\n",
                names[i], s->rx_pkts, s->rx_bytes, s->tx_pkts, s->tx_bytes, s->lost,
                s->queue_drops, s->dups, s->reordered, s->send_errors);
    }
    fprintf(f,
            "clients: evictions=%" PRIu64 " no_socket=%" PRIu64 " queued=%zu seen=%" PRIu64
            " rebinds=%" PRIu64 " rebind_errors=%" PRIu64 " flows_killed=%" PRIu64
            " dead_drops=%" PRIu64 "\n",
            fw->evictions, fw->no_socket, fw->heap.len, fw->clients_seen, fw->rebinds,
            fw->rebind_errors, fw->flows_killed, fw->dead_drops);
    if (fw->cfg->replay_count > 0)
        fprintf(f,
                "replay: sent=%" PRIu64 " errors=%" PRIu64 " replay_replies=%" PRIu64
                " reply_bytes=%" PRIu64 "\n",
                fw->replay_sent, fw->replay_errors, fw->replay_replies, fw->replay_reply_bytes);
}

static void dump_stats(const struct fw *fw)
{
    print_stats(fw, stderr);
    if (!fw->cfg->stats_path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", fw->cfg->stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "udpfw: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    print_stats(fw, f);
    /* written then renamed, so a reader never sees half a file */
    if (fclose(f) == 0)
        rename(tmp, fw->cfg->stats_path);
}

/* Milliseconds-or-better timeout until the next release, capped at |cap_ns|. */
static struct timespec next_timeout(const struct fw *fw, uint64_t now, uint64_t cap_ns)
{
    uint64_t wait = tk_heap_wait(&fw->heap, now, cap_ns);
    struct timespec ts = {(time_t)(wait / NS_PER_S), (long)(wait % NS_PER_S)};
    return ts;
}

static int open_listen(struct fw *fw)
{
    const struct config *cfg = fw->cfg;
    int fd = socket(cfg->listen_addr.ss_family, SOCK_DGRAM, 0);
    if (fd == -1 || bind(fd, (const struct sockaddr *)&cfg->listen_addr, cfg->listen_len) == -1) {
        fprintf(stderr, "udpfw: cannot bind listen socket: %s\n", strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    set_buffers(fd);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    char text[NI_MAXHOST + NI_MAXSERV + 8];
    getsockname(fd, (struct sockaddr *)&bound, &bound_len);
    format_addr(&bound, text, sizeof(text));
    printf("listening %s\n", text);
    fflush(stdout);
    fw->listen_fd = fd;
    return 0;
}

static int run(struct fw *fw)
{
    const struct config *cfg = fw->cfg;
    size_t nfds_cap = (size_t)cfg->max_clients + 1 + (size_t)MAX(cfg->replay_socks, 0);
    struct pollfd *pfd = calloc(nfds_cap, sizeof(*pfd));
    int *pfd_client = calloc(nfds_cap, sizeof(*pfd_client));
    int rc = 1;
    if (!pfd || !pfd_client)
        goto out;
    uint64_t start = tk_now_ns(), last_expire = start;
    uint64_t end = cfg->duration_s > 0 ? start + (uint64_t)(cfg->duration_s * 1e9) : UINT64_MAX;
    uint64_t rebind_every = (uint64_t)(cfg->rebind_s * 1e9);
    uint64_t next_rebind = rebind_every ? start + rebind_every : UINT64_MAX;
    uint64_t kill_every = (uint64_t)(cfg->kill_flows_s * 1e9);
    uint64_t next_kill = kill_every ? start + kill_every : UINT64_MAX;
    uint64_t replay_next = start;
    bool replaying = cfg->replay_count > 0;
    while (!got_stop) {
        uint64_t now = tk_now_ns();
        if (now >= end)
            break;
        if (got_dump) {
            got_dump = 0;
            dump_stats(fw);
        }
        release_due(fw, now);
        if (now >= next_rebind) {
            clients_rebind(fw);
            next_rebind += rebind_every;
            if (next_rebind <= now)
                next_rebind = now + rebind_every;
        }
        if (now >= next_kill) {
            for (int i = 0; i < cfg->max_clients; i++)
                if (fw->clients[i].addr_len && !fw->clients[i].dead) {
                    fw->clients[i].dead = true;
                    fw->flows_killed++;
                }
            next_kill = MAX(next_kill + kill_every, now + 1);
        }
        uint64_t cap = MIN(200 * NS_PER_MS, end - now);
        if (next_kill != UINT64_MAX)
            cap = MIN(cap, next_kill - now);
        if (next_rebind != UINT64_MAX)
            cap = MIN(cap, next_rebind - now);
        if (replaying) {
            replay_due(fw, now, &replay_next);
            if ((long)fw->replay_sent < cfg->replay_count)
                cap = MIN(cap, replay_next > now ? replay_next - now : 0);
        }
        if (now - last_expire > NS_PER_S) {
            clients_expire(fw, now);
            last_expire = now;
        }
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = fw->listen_fd, .events = POLLIN};
        pfd_client[n++] = -1;
        for (int i = 0; i < cfg->max_clients; i++) {
            if (fw->clients[i].fd == -1)
                continue;
            pfd[n] = (struct pollfd){.fd = fw->clients[i].fd, .events = POLLIN};
            pfd_client[n++] = i;
        }
        for (long i = 0; replaying && i < cfg->replay_socks; i++) {
            pfd[n] = (struct pollfd){.fd = fw->replay_fds[i], .events = POLLIN};
            pfd_client[n++] = -2;
        }
        struct timespec ts = next_timeout(fw, now, cap);
        int ready = ppoll(pfd, n, &ts, NULL);
        if (ready == -1) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "udpfw: poll: %s\n", strerror(errno));
            goto out;
        }
        for (nfds_t i = 0; i < n && ready > 0; i++) {
            if (!pfd[i].revents)
                continue;
            if (pfd_client[i] == -2)
                read_replay(fw, pfd[i].fd);
            else if (pfd_client[i] < 0)
                read_listen(fw);
            else
                read_client(fw, pfd_client[i]);
        }
    }
    rc = 0;
out:
    free(pfd);
    free(pfd_client);
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    int prc = parse_args(argc, argv, &cfg);
    if (prc)
        return prc > 0 ? 0 : 2;

    struct fw *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return 1;
    fw->cfg = &cfg;
    fw->listen_fd = -1;
    fw->rng = cfg.seed;
    for (int i = 0; i < UDPFW_DIRS; i++)
        fw->dir[i].cfg = cfg.dir[i];
    fw->clients = calloc((size_t)cfg.max_clients, sizeof(*fw->clients));
    fw->heap.items = calloc((size_t)cfg.queue_max, sizeof(*fw->heap.items));
    int rc = 1;
    if (!fw->clients || !fw->heap.items)
        goto out;
    for (int i = 0; i < cfg.max_clients; i++)
        fw->clients[i].fd = -1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_listen(fw) || open_replay_socks(fw))
        goto out;
    rc = run(fw);
    dump_stats(fw);
out:
    if (fw->clients)
        for (int i = 0; i < cfg.max_clients; i++)
            client_close(fw, i);
    while (fw->heap.items && fw->heap.len > 0)
        free(tk_heap_pop(&fw->heap));
    if (fw->listen_fd != -1)
        close(fw->listen_fd);
    for (long i = 0; fw->replay_fds && i < cfg.replay_socks; i++)
        if (fw->replay_fds[i] != -1)
            close(fw->replay_fds[i]);
    free(fw->replay_fds);
    for (size_t i = 0; i < UDPFW_CAPTURE; i++)
        free(fw->capture[i].data);
    free(fw->heap.items);
    free(fw->clients);
    free(fw);
    return rc;
}
