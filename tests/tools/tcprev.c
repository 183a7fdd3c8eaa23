/* SPDX-License-Identifier: MIT */
/* tcprev: reverse bulk transfer (listening sender, connecting receiver) for tunnel benchmarks. */

/*
 * A tunnel only opens connections from its client side, so a download through it needs a sender
 * that listens (behind the server) and a receiver that connects (in front of the client):
 *
 *   tcprev serve -l HOST:PORT [-s SEED] (-T SEC | -n BYTES) [-t DURATION]
 *       accept one connection, send the seeded stream for SEC seconds (or N bytes), half-close,
 *       wait for the peer's close; prints "listening H:P" once bound, then
 *       "serve: bytes= seconds= mbit_s= sha256="
 *   tcprev fetch -c HOST:PORT [-s SEED] [-n BYTES] [-t DURATION]
 *       connect, read until EOF and hash; with -s compare every byte with the stream of SEED,
 *       with -n check the byte count; prints "fetch: bytes= seconds= mbit_s= sha256=
 *       verify=ok|FAIL|off" (exit 1 on FAIL; "off" without -s and -n: compare the sha256 with
 *       the sender's, which costs the receiver less CPU than the byte compare)
 *
 * The stream is the one tcpblast uses (8-byte block k = splitmix64(seed, k), little-endian), so
 * `tcpblast gen --hash` gives the expected sha256. The whole run is bounded by --duration
 * (default 60 s): SIGALRM ends the process with a message and exit status 3.
 */

#include <errno.h>
#include <gcrypt.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
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

#define REV_BUF (128 * 1024)
#define REV_SHA_HEX 65

struct rev_config {
    bool serve;           /* serve (listen + send) or fetch (connect + receive) */
    const char *addr;
    uint64_t seed;
    bool has_seed;        /* fetch: compare every byte with the stream (else hash only) */
    uint64_t bytes;       /* serve: stream length; fetch: expected length (0 = any) */
    double time_s;        /* serve: stop sending after this long */
    double duration_s;    /* hard bound of the run */
};

static void rev_hex(gcry_md_hd_t h, char out[REV_SHA_HEX])
{
    const unsigned char *d = gcry_md_read(h, GCRY_MD_SHA256);
    out[0] = '\0';
    for (size_t i = 0; d && i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* Listens on |addr|, prints "listening H:P", accepts one connection; returns its fd or -1. */
static int rev_accept_one(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int lfd = -1, fd = -1, one = 1;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (tk_resolve(addr, SOCK_STREAM, &ss, &len)) {
        fprintf(stderr, "tcprev: cannot resolve `%s'\n", addr);
        return -1;
    }
    lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (lfd != -1)
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd == -1 || bind(lfd, (struct sockaddr *)&ss, len) == -1 || listen(lfd, 4) == -1) {
        fprintf(stderr, "tcprev: cannot listen on %s: %s\n", addr, strerror(errno));
        goto out;
    }
    len = sizeof(ss);
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        printf(ss.ss_family == AF_INET6 ? "listening [%s]:%s\n" : "listening %s:%s\n", host,
               port);
        fflush(stdout);
    }
    do {
        fd = accept(lfd, NULL, NULL);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1)
        fprintf(stderr, "tcprev: accept: %s\n", strerror(errno));
out:
    if (lfd != -1)
        close(lfd);
    return fd;
}

static int rev_connect(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (tk_resolve(addr, SOCK_STREAM, &ss, &len)) {
        fprintf(stderr, "tcprev: cannot resolve `%s'\n", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&ss, len) == -1) {
        fprintf(stderr, "tcprev: cannot connect to %s: %s\n", addr, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

static int rev_serve(const struct rev_config *cfg, uint8_t *buf, gcry_md_hd_t sha)
{
    int fd = rev_accept_one(cfg->addr), rc = 1;
    if (fd == -1)
        return 1;
    uint64_t start = tk_now_ns(), sent = 0;
    uint64_t limit = cfg->bytes ? cfg->bytes : UINT64_MAX;
    uint64_t end = cfg->time_s > 0 ? start + (uint64_t)(cfg->time_s * 1e9) : UINT64_MAX;
    while (sent < limit && tk_now_ns() < end) {
        size_t have = (size_t)MIN((uint64_t)REV_BUF, limit - sent);
        tk_stream_fill(cfg->seed, sent, buf, have);
        size_t pos = 0;
        while (pos < have) {
            ssize_t n = send(fd, buf + pos, have - pos, MSG_NOSIGNAL);
            if (n == -1 && errno == EINTR)
                continue;
            if (n == -1) {
                fprintf(stderr, "tcprev: send after %" PRIu64 " bytes: %s\n", sent + pos,
                        strerror(errno));
                goto out;
            }
            pos += (size_t)n;
        }
        gcry_md_write(sha, buf, have);
        sent += have;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, buf, REV_BUF, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the peer's close (or reset): it has everything it will get */
    }
    double el = (double)MAX(tk_now_ns() - start, 1) / 1e9;
    char text[REV_SHA_HEX];
    rev_hex(sha, text);
    printf("serve: bytes=%" PRIu64 " seconds=%.3f mbit_s=%.2f sha256=%s\n", sent, el,
           (double)sent * 8 / el / 1e6, text);
    rc = 0;
out:
    close(fd);
    return rc;
}

static int rev_fetch(const struct rev_config *cfg, uint8_t *buf, gcry_md_hd_t sha)
{
    uint8_t *ref = malloc(REV_BUF);
    int fd = ref ? rev_connect(cfg->addr) : -1, rc = 1;
    if (fd == -1)
        goto out;
    uint64_t start = tk_now_ns(), got = 0, bad_at = UINT64_MAX;
    for (;;) {
        ssize_t n = recv(fd, buf, REV_BUF, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            fprintf(stderr, "tcprev: recv after %" PRIu64 " bytes: %s\n", got, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        gcry_md_write(sha, buf, (size_t)n);
        if (cfg->has_seed && bad_at == UINT64_MAX) {
            tk_stream_fill(cfg->seed, got, ref, (size_t)n);
            if (memcmp(buf, ref, (size_t)n) != 0)
                for (ssize_t i = 0; i < n; i++)
                    if (buf[i] != ref[i]) {
                        bad_at = got + (uint64_t)i;
                        break;
                    }
        }
        got += (uint64_t)n;
    }
    double el = (double)MAX(tk_now_ns() - start, 1) / 1e9;
    bool ok = bad_at == UINT64_MAX && (!cfg->bytes || got == cfg->bytes);
    const char *verdict = !cfg->has_seed && !cfg->bytes ? "off" : ok ? "ok" : "FAIL";
    if (bad_at != UINT64_MAX)
        fprintf(stderr, "tcprev: first wrong byte at offset %" PRIu64 "\n", bad_at);
    char text[REV_SHA_HEX];
    rev_hex(sha, text);
    printf("fetch: bytes=%" PRIu64 " seconds=%.3f mbit_s=%.2f sha256=%s verify=%s\n", got, el,
           (double)got * 8 / el / 1e6, text, verdict);
    rc = ok ? 0 : 1;
out:
    if (fd != -1)
        close(fd);
    free(ref);
    return rc;
}

static void rev_usage(FILE *f)
{
    fprintf(f, "usage: tcprev serve -l HOST:PORT [-s SEED] (-T SEC | -n BYTES) [-t DURATION]\n"
               "       tcprev fetch -c HOST:PORT [-s SEED] [-n BYTES] [-t DURATION]\n"
               "  -n BYTES accepts k/M/G suffixes (binary); -t bounds the run (default 60 s)\n");
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "tcprev: --duration reached\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(3);
}

/* Fills |cfg| from the command line; returns 0, 1 after --help, or -1 after an error message. */
static int rev_parse(int argc, char **argv, struct rev_config *cfg)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"connect", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},   {"bytes", required_argument, NULL, 'n'},
        {"time", required_argument, NULL, 'T'},   {"duration", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    *cfg = (struct rev_config){.seed = 1, .duration_s = 60};
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        rev_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? -1 : 1;
    }
    if (strcmp(argv[1], "serve") && strcmp(argv[1], "fetch")) {
        fprintf(stderr, "tcprev: unknown mode `%s'\n", argv[1]);
        return -1;
    }
    cfg->serve = !strcmp(argv[1], "serve");
    optind = 2;
    int c;
    double v;
    while ((c = getopt_long(argc, argv, "l:c:s:n:T:t:h", opts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'l':
        case 'c':
            if ((c == 'l') != cfg->serve)
                bad = c == 'l' ? "--listen (serve only)" : "--connect (fetch only)";
            cfg->addr = optarg;
            break;
        case 's':
            if (tk_parse_size(optarg, 0, 1.8e19, &v))
                bad = "--seed";
            cfg->seed = (uint64_t)v;
            cfg->has_seed = true;
            break;
        case 'n':
            if (tk_parse_size(optarg, 1, 1e15, &v))
                bad = "--bytes";
            cfg->bytes = (uint64_t)v;
            break;
        case 'T':
            if (tk_parse_size(optarg, 0.001, 1e6, &cfg->time_s) || !cfg->serve)
                bad = "--time";
            break;
        case 't':
            if (tk_parse_size(optarg, 0.001, 1e6, &cfg->duration_s))
                bad = "--duration";
            break;
        default:
            return tk_usage_rc(rev_usage, c);
        }
        if (bad) {
            fprintf(stderr, "tcprev: invalid %s `%s'\n", bad, optarg);
            return -1;
        }
    }
    if (optind < argc || !cfg->addr || (cfg->serve && !cfg->bytes && cfg->time_s <= 0)) {
        rev_usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct rev_config cfg;
    int rc = rev_parse(argc, argv, &cfg);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (!gcry_check_version(NULL)) {
        fprintf(stderr, "tcprev: libgcrypt initialisation failed\n");
        return 1;
    }
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)(cfg.duration_s + 0.999));
    uint8_t *buf = malloc(REV_BUF);
    gcry_md_hd_t sha = NULL;
    rc = 1;
    if (buf && !gcry_md_open(&sha, GCRY_MD_SHA256, 0))
        rc = cfg.serve ? rev_serve(&cfg, buf, sha) : rev_fetch(&cfg, buf, sha);
    gcry_md_close(sha);
    free(buf);
    return rc;
}
