/* SPDX-License-Identifier: MIT */
/* linkem: user-space link emulator joining two network namespaces through two tun devices. */

/*
 * linkem creates tun device A inside network namespace A and tun device B inside namespace B
 * (by entering each namespace with setns() while it opens the device), then carries every IP
 * packet between them: what namespace A sends into A's device comes out of B's device, and the
 * reverse. Each direction ("ab", "ba") runs in its own thread and applies, in order:
 *
 *   1. random loss (Bernoulli, --loss);
 *   2. a rate cap with a bounded byte queue (--rate, --queue or --queue-bdp): a FIFO
 *      bottleneck that drains at the rate, with tail drop when its backlog would exceed the
 *      queue; the packet leaves the bottleneck when its last bit is sent;
 *   3. one-way propagation delay plus jitter (uniform in +-jitter, order kept);
 *   4. explicit reordering (--reorder: the packet is held back --reorder-gap ms more, so later
 *      ones overtake it) and duplication (--dup).
 *
 * Release times live in a binary min-heap keyed by (time, sequence). Each thread sleeps in
 * ppoll() until the next release or the next readable packet, with timer slack set to 1 ns;
 * times come from CLOCK_MONOTONIC in nanoseconds. Packet buffers come from a per-direction
 * free list, capped by --max-packets. The devices are not persistent, so they vanish when
 * linkem exits. Counters are printed on SIGUSR1 and at exit, to stderr and to --stats FILE.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/tools/toolkit.h"

#define LANES 2
#define LANE_AB 0
#define LANE_BA 1
#define READ_BATCH 64
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define IDLE_WAKE_NS (100 * NS_PER_MS) /* how often an idle lane looks at the stop flag */

#define STAT_ADD(field, v) __atomic_fetch_add(&(field), (uint64_t)(v), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

enum { OPT_NS_A = 257, OPT_NS_B, OPT_DEV_A, OPT_DEV_B, OPT_MTU, OPT_QUEUE_BDP, OPT_REORDER_GAP,
       OPT_MAX_PACKETS, OPT_RT, OPT_DURATION };

struct lane_cfg {
    double loss_pct;    /* random loss, percent */
    double delay_ms;    /* one-way propagation delay */
    double jitter_ms;   /* uniform +-jitter added to the delay; order is kept */
    double reorder_pct; /* probability of holding a packet back by reorder_gap_ms */
    double dup_pct;     /* probability of sending a packet twice */
    double rate_bps;    /* bottleneck rate in bit/s, 0 = unlimited */
    double queue_bytes; /* bottleneck queue; 0 = derive from --queue-bdp */
};

struct lane_stats {
    uint64_t rx_pkts, rx_bytes;   /* packets read from the input device */
    uint64_t tx_pkts, tx_bytes;   /* packets written to the output device */
    uint64_t lost;                /* random loss */
    uint64_t queue_drops;         /* bottleneck tail drops */
    uint64_t pool_drops;          /* no free buffer (--max-packets reached) */
    uint64_t dups;                /* extra copies */
    uint64_t reordered;           /* packets held back */
    uint64_t write_errors;        /* write() to the output device failed */
    uint64_t max_backlog_bytes;   /* high-water mark of the bottleneck queue */
    uint64_t late_sum_ns;         /* sum over written packets of (write time - release time) */
    uint64_t late_max_ns;         /* worst lateness: how far the timing drifted from the ideal */
};

struct pkt {
    struct tk_heap_item hi; /* release time (when to write it out) and FIFO tie-break */
    size_t len;
    uint8_t data[];
};

struct lane {
    const char *name;         /* "ab" or "ba" */
    int in_fd, out_fd;        /* tun fds: read side, write side */
    struct lane_cfg cfg;
    struct lane_stats st;     /* written by the lane thread, read by main (atomics) */
    uint64_t rng;
    uint64_t busy_until_ns;   /* bottleneck: when the last accepted packet is fully sent */
    uint64_t last_release_ns; /* keeps jittered packets in order */
    uint64_t seq;
    double reorder_gap_ms;
    struct tk_heap heap;      /* packets waiting for their release time */
    struct pkt **free_list;   /* recycled buffers */
    size_t free_len;
    size_t allocated;         /* buffers ever allocated, <= max_packets */
    size_t max_packets;
    size_t buf_size;          /* bytes per buffer: the MTU plus headroom */
    const volatile int *stop;
    pthread_t thread;
};

struct config {
    const char *ns[LANES];    /* namespace names (NULL = current namespace) */
    const char *dev[LANES];   /* device names */
    int mtu;
    struct lane_cfg lane[LANES];
    double queue_bdp;         /* queue in bandwidth-delay products, used when queue_bytes is 0 */
    double reorder_gap_ms;
    long max_packets;
    bool rt;                  /* SCHED_FIFO for the lane threads */
    double duration_s;
    uint64_t seed;
    const char *stats_path;
};

/* ---- packet buffers and the release heap ---- */

static struct pkt *pkt_get(struct lane *l)
{
    if (l->free_len > 0)
        return l->free_list[--l->free_len];
    if (l->allocated >= l->max_packets)
        return NULL;
    struct pkt *p = malloc(sizeof(*p) + l->buf_size);
    if (p)
        l->allocated++;
    return p;
}

static void pkt_put(struct lane *l, struct pkt *p)
{
    l->free_list[l->free_len++] = p;
}

/* ---- the impairment pipeline ---- */

/* Passes one packet of |len| bytes through the bottleneck; returns false on tail drop, else
 * sets |*t| to when its last bit leaves. */
static bool bottleneck(struct lane *l, size_t len, uint64_t now, uint64_t *t)
{
    if (l->cfg.rate_bps <= 0) {
        *t = now;
        return true;
    }
    uint64_t start = MAX(now, l->busy_until_ns);
    double backlog = (double)(start - now) * l->cfg.rate_bps / 8e9;
    if (backlog + (double)len > l->cfg.queue_bytes) {
        STAT_ADD(l->st.queue_drops, 1);
        return false;
    }
    uint64_t high = (uint64_t)backlog + len;
    if (high > l->st.max_backlog_bytes)
        __atomic_store_n(&l->st.max_backlog_bytes, high, __ATOMIC_RELAXED);
    l->busy_until_ns = start + (uint64_t)((double)len * 8e9 / l->cfg.rate_bps);
    *t = l->busy_until_ns;
    return true;
}

/* Adds propagation delay, jitter and reordering to a packet that left the bottleneck at |t|. */
static uint64_t propagate(struct lane *l, uint64_t t)
{
    double delay = l->cfg.delay_ms;
    if (l->cfg.jitter_ms > 0)
        delay += (tk_rng_unit(&l->rng) * 2 - 1) * l->cfg.jitter_ms;
    if (delay > 0)
        t += (uint64_t)(delay * 1e6);
    if (tk_chance(&l->rng, l->cfg.reorder_pct)) {
        STAT_ADD(l->st.reordered, 1);
        return t + (uint64_t)(l->reorder_gap_ms * 1e6);
    }
    t = MAX(t, l->last_release_ns);
    l->last_release_ns = t;
    return t;
}

/* Takes |p| (just read, p->len set): drops it or queues it (and maybe a copy). */
static void lane_admit(struct lane *l, struct pkt *p, uint64_t now)
{
    STAT_ADD(l->st.rx_pkts, 1);
    STAT_ADD(l->st.rx_bytes, p->len);
    if (tk_chance(&l->rng, l->cfg.loss_pct)) {
        STAT_ADD(l->st.lost, 1);
        pkt_put(l, p);
        return;
    }
    struct pkt *copy = NULL;
    if (tk_chance(&l->rng, l->cfg.dup_pct)) {
        copy = pkt_get(l);
        if (copy) {
            memcpy(copy->data, p->data, p->len);
            copy->len = p->len;
            STAT_ADD(l->st.dups, 1);
        }
    }
    struct pkt *both[2] = {p, copy};
    for (int i = 0; i < 2 && both[i]; i++) {
        uint64_t t;
        if (!bottleneck(l, both[i]->len, now, &t)) {
            pkt_put(l, both[i]);
            continue;
        }
        both[i]->hi.release_ns = propagate(l, t);
        both[i]->hi.seq = l->seq++;
        tk_heap_push(&l->heap, &both[i]->hi);
    }
}

static void lane_release(struct lane *l, uint64_t now)
{
    while (tk_heap_wait(&l->heap, now, 1) == 0) {
        struct pkt *p = (struct pkt *)tk_heap_pop(&l->heap);
        ssize_t n = write(l->out_fd, p->data, p->len);
        if (n == (ssize_t)p->len) {
            uint64_t late = now - p->hi.release_ns;
            STAT_ADD(l->st.tx_pkts, 1);
            STAT_ADD(l->st.tx_bytes, p->len);
            STAT_ADD(l->st.late_sum_ns, late);
            if (late > l->st.late_max_ns)
                __atomic_store_n(&l->st.late_max_ns, late, __ATOMIC_RELAXED);
        } else {
            STAT_ADD(l->st.write_errors, 1);
        }
        pkt_put(l, p);
    }
}

/* Reads up to READ_BATCH packets; returns false on a fatal device error. */
static bool lane_read(struct lane *l)
{
    for (int k = 0; k < READ_BATCH; k++) {
        struct pkt *p = pkt_get(l);
        uint8_t scratch[64];
        ssize_t n = p ? read(l->in_fd, p->data, l->buf_size) : read(l->in_fd, scratch, 64);
        if (n <= 0) {
            if (p)
                pkt_put(l, p);
            if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                fprintf(stderr, "linkem: %s: read: %s\n", l->name, strerror(errno));
                return false;
            }
            return true;
        }
        if (!p) {
            STAT_ADD(l->st.rx_pkts, 1);
            STAT_ADD(l->st.rx_bytes, n);
            STAT_ADD(l->st.pool_drops, 1);
            continue;
        }
        p->len = (size_t)n;
        lane_admit(l, p, tk_now_ns());
    }
    return true;
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    while (!__atomic_load_n(l->stop, __ATOMIC_RELAXED)) {
        uint64_t now = tk_now_ns();
        lane_release(l, now);
        uint64_t wait = tk_heap_wait(&l->heap, now, IDLE_WAKE_NS);
        struct timespec ts = {(time_t)(wait / NS_PER_S), (long)(wait % NS_PER_S)};
        struct pollfd pfd = {.fd = l->in_fd, .events = POLLIN};
        int r = ppoll(&pfd, 1, &ts, NULL);
        if (r == -1 && errno != EINTR) {
            fprintf(stderr, "linkem: %s: poll: %s\n", l->name, strerror(errno));
            break;
        }
        if (r > 0 && !lane_read(l))
            break;
    }
    return NULL;
}

/* ---- devices ---- */

/* Creates tun device |dev| in namespace |ns| (NULL = current), brings it up with |mtu|. Returns
 * a non-blocking fd or -1 after printing why. */
static int tun_open(const char *ns, const char *dev, int mtu)
{
    int self = -1, target = -1, fd = -1, sock = -1;
    bool ok = false;
    if (ns) {
        char path[512];
        snprintf(path, sizeof(path), "/run/netns/%s", ns);
        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        target = open(path, O_RDONLY | O_CLOEXEC);
        if (self == -1 || target == -1 || setns(target, CLONE_NEWNET) == -1) {
            fprintf(stderr, "linkem: cannot enter netns %s: %s\n", ns, strerror(errno));
            goto out;
        }
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1 || ioctl(fd, TUNSETIFF, &ifr) == -1) {
        fprintf(stderr, "linkem: cannot create tun %s: %s\n", dev, strerror(errno));
        goto out;
    }
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifr.ifr_mtu = mtu;
    if (sock == -1 || ioctl(sock, SIOCSIFMTU, &ifr) == -1) {
        fprintf(stderr, "linkem: cannot set mtu %d on %s: %s\n", mtu, dev, strerror(errno));
        goto out;
    }
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) == -1 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(sock, SIOCSIFFLAGS, &ifr) == -1)) {
        fprintf(stderr, "linkem: cannot bring %s up: %s\n", dev, strerror(errno));
        goto out;
    }
    ok = true;
out:
    if (self != -1 && setns(self, CLONE_NEWNET) == -1) {
        fprintf(stderr, "linkem: cannot return to the original netns: %s\n", strerror(errno));
        ok = false;
    }
    if (!ok && fd != -1) {
        close(fd);
        fd = -1;
    }
    if (sock != -1)
        close(sock);
    if (self != -1)
        close(self);
    if (target != -1)
        close(target);
    return fd;
}

/* ---- options ---- */

enum pair_kind { PAIR_NUM, PAIR_RATE, PAIR_SIZE };

/* "V" (both directions) or "AB/BA". */
static int parse_pair(const char *s, enum pair_kind kind, double max, double out[LANES])
{
    char tmp[TK_PAIR_MAX];
    const char *parts[LANES];
    if (tk_split_pair(s, tmp, parts))
        return -1;
    for (int i = 0; i < LANES; i++) {
        int rc = kind == PAIR_RATE   ? tk_parse_rate(parts[i], 1e6, &out[i])
                 : kind == PAIR_SIZE ? tk_parse_size(parts[i], 0, 1e10, &out[i])
                                     : tk_parse_double(parts[i], 0, max, &out[i]);
        if (rc)
            return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: linkem --ns-a NS --ns-b NS [--dev-a DEV] [--dev-b DEV] [impairments]\n"
            "Creates tun DEV-A in netns NS-A and DEV-B in NS-B (up, no address) and carries\n"
            "every packet between them. Impairments take V (both directions) or AB/BA:\n"
            "  -d, --delay MS          one-way delay\n"
            "  -j, --jitter MS         delay varies uniformly by +-MS (order is kept)\n"
            "  -L, --loss PCT          random loss, percent\n"
            "  -R, --rate RATE         bottleneck rate: 500kbit, 50mbit, 1gbit (0 = none)\n"
            "  -q, --queue BYTES       bottleneck queue, tail drop beyond it (k/m/g suffix)\n"
            "      --queue-bdp X       queue = X * rate * (delay AB + delay BA) (default 1)\n"
            "  -r, --reorder PCT       hold a packet back by --reorder-gap MS (default 10)\n"
            "  -D, --dup PCT           send a packet twice\n"
            "Other options:\n"
            "      --mtu N             device MTU (default 1500)\n"
            "      --max-packets N     buffers per direction (default 65536)\n"
            "      --rt                run the lanes with SCHED_FIFO (sharper timing)\n"
            "  -s, --seed N            PRNG seed (default 1)\n"
            "  -S, --stats FILE        write counters to FILE on SIGUSR1 and at exit\n"
            "  -t, --duration SEC      exit after SEC (default 0 = on SIGINT/SIGTERM)\n"
            "Prints \"ready DEV-A DEV-B\" on stdout once both devices are up.\n");
}

static const char *opt_name(const struct option *opts, int c)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* Handles one per-direction impairment option; returns 0 or -1. */
static int parse_lane_opt(struct config *cfg, int c, const char *arg)
{
    double v[LANES];
    enum pair_kind kind = c == 'R' ? PAIR_RATE : c == 'q' ? PAIR_SIZE : PAIR_NUM;
    double max = (c == 'd' || c == 'j') ? 600000 : 100;
    if (parse_pair(arg, kind, max, v))
        return -1;
    for (int i = 0; i < LANES; i++) {
        struct lane_cfg *lc = &cfg->lane[i];
        double *f = c == 'd' ? &lc->delay_ms : c == 'j' ? &lc->jitter_ms
                  : c == 'L' ? &lc->loss_pct : c == 'R' ? &lc->rate_bps
                  : c == 'q' ? &lc->queue_bytes : c == 'r' ? &lc->reorder_pct : &lc->dup_pct;
        *f = v[i];
    }
    return 0;
}

/* Fills |cfg|; returns 0, 1 after --help, or -1 after printing an error. Long: one switch
 * over the option table reads better than the table split across helpers. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    static const struct option opts[] = {
        {"ns-a", required_argument, NULL, OPT_NS_A},
        {"ns-b", required_argument, NULL, OPT_NS_B},
        {"dev-a", required_argument, NULL, OPT_DEV_A},
        {"dev-b", required_argument, NULL, OPT_DEV_B},
        {"delay", required_argument, NULL, 'd'},
        {"jitter", required_argument, NULL, 'j'},
        {"loss", required_argument, NULL, 'L'},
        {"rate", required_argument, NULL, 'R'},
        {"queue", required_argument, NULL, 'q'},
        {"queue-bdp", required_argument, NULL, OPT_QUEUE_BDP},
        {"reorder", required_argument, NULL, 'r'},
        {"reorder-gap", required_argument, NULL, OPT_REORDER_GAP},
        {"dup", required_argument, NULL, 'D'},
        {"mtu", required_argument, NULL, OPT_MTU},
        {"max-packets", required_argument, NULL, OPT_MAX_PACKETS},
        {"rt", no_argument, NULL, OPT_RT},
        {"seed", required_argument, NULL, 's'},
        {"stats", required_argument, NULL, 'S'},
        {"duration", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double v;
    int c;
    *cfg = (struct config){.dev = {"lkm-a", "lkm-b"}, .mtu = 1500, .queue_bdp = 1,
                           .reorder_gap_ms = 10, .max_packets = 65536, .seed = 1};
    while ((c = getopt_long(argc, argv, "d:j:L:R:q:r:D:s:S:t:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_NS_A:
        case OPT_NS_B:
            if (!*optarg || strchr(optarg, '/'))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            cfg->ns[c == OPT_NS_B] = optarg;
            break;
        case OPT_DEV_A:
        case OPT_DEV_B:
            if (!*optarg || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/'))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            cfg->dev[c == OPT_DEV_B] = optarg;
            break;
        case 'd':
        case 'j':
        case 'L':
        case 'R':
        case 'q':
        case 'r':
        case 'D':
            if (parse_lane_opt(cfg, c, optarg))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            break;
        case OPT_QUEUE_BDP:
            if (tk_parse_double(optarg, 0.01, 1000, &cfg->queue_bdp))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            break;
        case OPT_REORDER_GAP:
            if (tk_parse_double(optarg, 0, 600000, &cfg->reorder_gap_ms))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            break;
        case OPT_MTU:
        case OPT_MAX_PACKETS:
            if (c == OPT_MTU ? tk_parse_double(optarg, 576, 65535, &v)
                             : tk_parse_double(optarg, 16, 1 << 24, &v))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            if (v != floor(v))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            if (c == OPT_MTU)
                cfg->mtu = (int)v;
            else
                cfg->max_packets = (long)v;
            break;
        case OPT_RT:
            cfg->rt = true;
            break;
        case 's':
            if (tk_parse_double(optarg, 0, 1.8e19, &v) || v != floor(v))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            cfg->seed = (uint64_t)v;
            break;
        case 'S':
            cfg->stats_path = optarg;
            break;
        case 't':
            if (tk_parse_double(optarg, 0, 1e7, &cfg->duration_s))
                return tk_bad_opt("linkem", opt_name(opts, c), optarg);
            break;
        default:
            return tk_usage_rc(usage, c);
        }
    }
    if (tk_no_operands("linkem", argc, argv))
        return -1;
    if (!strcmp(cfg->dev[0], cfg->dev[1]) &&
        (!cfg->ns[0] || !cfg->ns[1] || !strcmp(cfg->ns[0], cfg->ns[1]))) {
        fprintf(stderr, "linkem: both devices would have the same name in one namespace\n");
        return -1;
    }
    return 0;
}

/* Resolves --queue-bdp: queue = X * rate * round-trip propagation delay, at least 4 packets. */
static void derive_queues(struct config *cfg)
{
    double rtt_s = (cfg->lane[0].delay_ms + cfg->lane[1].delay_ms) / 1e3;
    for (int i = 0; i < LANES; i++) {
        struct lane_cfg *lc = &cfg->lane[i];
        if (lc->queue_bytes <= 0)
            lc->queue_bytes = cfg->queue_bdp * lc->rate_bps / 8 * rtt_s;
        lc->queue_bytes = MAX(lc->queue_bytes, 4.0 * cfg->mtu);
    }
}

/* ---- counters ---- */

static void print_stats(const struct lane *lanes, double elapsed_s, FILE *f)
{
    for (int i = 0; i < LANES; i++) {
        const struct lane_stats *s = &lanes[i].st;
        fprintf(f,
                "%s: rx_pkts=%" PRIu64 " rx_bytes=%" PRIu64 " tx_pkts=%" PRIu64
                " tx_bytes=%" PRIu64 " lost=%" PRIu64 " queue_drops=%" PRIu64
                " pool_drops=%" PRIu64 " dups=%" PRIu64 " reordered=%" PRIu64
                " write_errors=%" PRIu64 " max_backlog_bytes=%" PRIu64 " queue_bytes=%.0f"
                " late_avg_us=%.1f late_max_us=%.1f\n",
                lanes[i].name, STAT_GET(s->rx_pkts), STAT_GET(s->rx_bytes),
                STAT_GET(s->tx_pkts), STAT_GET(s->tx_bytes), STAT_GET(s->lost),
                STAT_GET(s->queue_drops), STAT_GET(s->pool_drops), STAT_GET(s->dups),
                STAT_GET(s->reordered), STAT_GET(s->write_errors),
                STAT_GET(s->max_backlog_bytes), lanes[i].cfg.queue_bytes,
                (double)STAT_GET(s->late_sum_ns) / 1e3 / (double)MAX(STAT_GET(s->tx_pkts), 1),
                (double)STAT_GET(s->late_max_ns) / 1e3);
    }
    fprintf(f, "elapsed_s=%.3f\n", elapsed_s);
}

static void dump_stats(const struct lane *lanes, const char *path, double elapsed_s)
{
    print_stats(lanes, elapsed_s, stderr);
    if (!path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "linkem: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    print_stats(lanes, elapsed_s, f);
    if (fclose(f) == 0)
        rename(tmp, path); /* readers never see half a file */
}

/* ---- main ---- */

static int lane_init(struct lane *l, const struct config *cfg, int i, const int fds[LANES],
                     const volatile int *stop)
{
    l->name = i == LANE_AB ? "ab" : "ba";
    l->in_fd = fds[i];
    l->out_fd = fds[1 - i];
    l->cfg = cfg->lane[i];
    l->rng = cfg->seed * 2 + (uint64_t)i;
    l->reorder_gap_ms = cfg->reorder_gap_ms;
    l->max_packets = (size_t)cfg->max_packets;
    l->buf_size = (size_t)cfg->mtu + 64;
    l->stop = stop;
    l->heap.items = calloc(l->max_packets, sizeof(*l->heap.items));
    l->free_list = calloc(l->max_packets, sizeof(*l->free_list));
    return l->heap.items && l->free_list ? 0 : -1;
}

static void lane_free(struct lane *l)
{
    while (l->heap.items && l->heap.len > 0)
        free(tk_heap_pop(&l->heap));
    for (size_t i = 0; i < l->free_len; i++)
        free(l->free_list[i]);
    free(l->heap.items);
    free(l->free_list);
}

static void start_lanes(struct lane *lanes, const struct config *cfg, int *started)
{
    for (int i = 0; i < LANES; i++) {
        if (pthread_create(&lanes[i].thread, NULL, lane_main, &lanes[i]) != 0) {
            fprintf(stderr, "linkem: cannot start lane %s\n", lanes[i].name);
            return;
        }
        (*started)++;
        if (cfg->rt) {
            struct sched_param sp = {.sched_priority = 10};
            int err = pthread_setschedparam(lanes[i].thread, SCHED_FIFO, &sp);
            if (err)
                fprintf(stderr, "linkem: SCHED_FIFO refused: %s\n", strerror(err));
        }
    }
}

/* Waits for SIGINT/SIGTERM or the end of --duration; dumps counters on SIGUSR1. */
static void wait_for_stop(const struct lane *lanes, const struct config *cfg, uint64_t start)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    uint64_t end = cfg->duration_s > 0 ? start + (uint64_t)(cfg->duration_s * 1e9) : UINT64_MAX;
    for (;;) {
        uint64_t now = tk_now_ns();
        if (now >= end)
            return;
        uint64_t wait = MIN(end - now, NS_PER_S);
        struct timespec ts = {(time_t)(wait / NS_PER_S), (long)(wait % NS_PER_S)};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGUSR1)
            dump_stats(lanes, cfg->stats_path, (double)(tk_now_ns() - start) / 1e9);
        else if (sig == SIGINT || sig == SIGTERM)
            return;
    }
}

int main(int argc, char **argv)
{
    struct config cfg;
    int rc = parse_args(argc, argv, &cfg);
    if (rc)
        return rc > 0 ? 0 : 2;
    derive_queues(&cfg);

    static volatile int stop;
    struct lane lanes[LANES];
    int fds[LANES] = {-1, -1}, started = 0;
    memset(lanes, 0, sizeof(lanes));
    rc = 1;

    /* block the signals before any thread exists, so that only sigtimedwait sees them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (int i = 0; i < LANES; i++)
        if ((fds[i] = tun_open(cfg.ns[i], cfg.dev[i], cfg.mtu)) == -1)
            goto out;
    for (int i = 0; i < LANES; i++)
        if (lane_init(&lanes[i], &cfg, i, fds, &stop)) {
            fprintf(stderr, "linkem: out of memory\n");
            goto out;
        }
    printf("ready %s %s\n", cfg.dev[0], cfg.dev[1]);
    fflush(stdout);
    uint64_t start = tk_now_ns();
    start_lanes(lanes, &cfg, &started);
    if (started == LANES) {
        wait_for_stop(lanes, &cfg, start);
        rc = 0;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < started; i++)
        pthread_join(lanes[i].thread, NULL);
    dump_stats(lanes, cfg.stats_path, (double)(tk_now_ns() - start) / 1e9);
out:
    for (int i = 0; i < LANES; i++) {
        lane_free(&lanes[i]);
        if (fds[i] != -1)
            close(fds[i]);
    }
    return rc;
}
