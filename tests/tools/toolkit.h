/* SPDX-License-Identifier: MIT */
/* toolkit: header-only helpers shared by the test tools (clock, PRNG, stream, parsing, heap). */

/*
 * Every program in tests/tools/ is built from its own .c file alone, so what they share lives
 * here as static inline functions: each tool includes this header and the compiler keeps only
 * what it uses. Nothing here allocates or keeps state of its own.
 */

#ifndef KTUN_TESTS_TOOLS_TOOLKIT_H
#define KTUN_TESTS_TOOLS_TOOLKIT_H

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "common/util.h"
#include "common/wire.h"

#define TK_NS_PER_S 1000000000ull
#define TK_PAIR_MAX 128 /* longest "A/B" option value tk_split_pair accepts, with its NUL */

/* ---- clock and PRNG ---- */

/* Returns CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t tk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TK_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* splitmix64 output mixing of |z|. */
static inline uint64_t tk_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Advances the splitmix64 state |*s| and returns the next 64-bit value. */
static inline uint64_t tk_rng_next(uint64_t *s)
{
    return tk_mix64(*s += 0x9e3779b97f4a7c15ull);
}

/* Returns a uniform double in [0, 1) drawn from |*s|. */
static inline double tk_rng_unit(uint64_t *s)
{
    return (double)(tk_rng_next(s) >> 11) * 0x1.0p-53;
}

/* Returns true with probability |pct| percent (never when pct <= 0). */
static inline bool tk_chance(uint64_t *s, double pct)
{
    return pct > 0 && tk_rng_unit(s) * 100.0 < pct;
}

/* ---- the seeded byte stream of tcpblast and tcprev ---- */

/* Returns 8-byte block |k| of the stream of |seed| (splitmix64 of seed + (k + 1) * gamma). */
static inline uint64_t tk_stream_block(uint64_t seed, uint64_t k)
{
    return tk_mix64(seed + (k + 1) * 0x9e3779b97f4a7c15ull);
}

/* Writes stream bytes [off, off + n) of |seed| into |out| (blocks are little-endian). */
static inline void tk_stream_fill(uint64_t seed, uint64_t off, uint8_t *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t pos = off + i;
        uint64_t b = tk_stream_block(seed, pos / 8);
        if (pos % 8 == 0 && n - i >= 8) {
            put_u32le(put_u32le(out + i, (uint32_t)b), (uint32_t)(b >> 32));
            i += 8;
            continue;
        }
        uint8_t bytes[8];
        put_u32le(put_u32le(bytes, (uint32_t)b), (uint32_t)(b >> 32));
        size_t from = (size_t)(pos % 8), take = MIN(8 - from, n - i);
        memcpy(out + i, bytes + from, take);
        i += take;
    }
}

/* ---- option values ---- */

/* Parses a whole decimal number within [min, max] into |*out|; returns 0 or -1. */
static inline int tk_parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

/* Parses a rate in bit/s: a number in [0, max] with an optional unit bit, kbit, mbit, gbit
 * (k, m, g alone also mean bits; any case); returns 0 or -1. */
static inline int tk_parse_rate(const char *s, double max, double *out)
{
    static const struct { const char *unit; double mul; } units[] = {
        {"", 1}, {"bit", 1}, {"k", 1e3}, {"kbit", 1e3}, {"m", 1e6}, {"mbit", 1e6},
        {"g", 1e9}, {"gbit", 1e9},
    };
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0 && v <= max))
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++)
        if (!strcasecmp(end, units[i].unit)) {
            *out = v * units[i].mul;
            return 0;
        }
    return -1;
}

/* Parses a number with an optional binary suffix k, m, g (any case) into |*out|; the value
 * with its multiplier must lie within [min, max]; returns 0 or -1. */
static inline int tk_parse_size(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = !strcasecmp(end, "k") ? 1024 : !strcasecmp(end, "m") ? 1048576
               : !strcasecmp(end, "g") ? 1073741824.0 : *end ? -1 : 1;
    if (errno || end == s || mul < 0 || !(v * mul >= min && v * mul <= max))
        return -1;
    *out = v * mul;
    return 0;
}

/* Splits "A" or "A/B" for a per-direction option: copies |s| into |tmp| and points parts[0]
 * at A and parts[1] at B (at A again when there is no slash); returns 0, or -1 when |s| does
 * not fit TK_PAIR_MAX. The parts live in |tmp|. */
static inline int tk_split_pair(const char *s, char tmp[TK_PAIR_MAX], const char *parts[2])
{
    if (strlen(s) >= TK_PAIR_MAX)
        return -1;
    strcpy(tmp, s);
    char *slash = strchr(tmp, '/');
    if (slash)
        *slash = '\0';
    parts[0] = tmp;
    parts[1] = slash ? slash + 1 : tmp;
    return 0;
}

/* Splits "HOST:PORT" or "[V6HOST]:PORT" and resolves it (numeric port, host by name or number)
 * for |socktype|; fills |*ss| and |*len| with the first result; returns 0 or -1. */
static inline int tk_resolve(const char *s, int socktype, struct sockaddr_storage *ss,
                             socklen_t *len)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (!*port || getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* For the default case of a getopt_long switch that also takes -h/--help: prints the usage
 * (through |usage|) to stdout and returns 1 when |c| is 'h', else to stderr and returns -1. */
static inline int tk_usage_rc(void (*usage)(FILE *f), int c)
{
    usage(c == 'h' ? stdout : stderr);
    return c == 'h' ? 1 : -1;
}

/* Prints "PROG: invalid value for --OPT: `VAL'" to stderr; returns -1. */
static inline int tk_bad_opt(const char *prog, const char *opt, const char *val)
{
    fprintf(stderr, "%s: invalid value for --%s: `%s'\n", prog, opt, val);
    return -1;
}

/* After a getopt_long loop: returns 0 when no operand is left, else prints
 * "PROG: unexpected argument `X'" to stderr and returns -1. */
static inline int tk_no_operands(const char *prog, int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "%s: unexpected argument `%s'\n", prog, argv[optind]);
    return -1;
}

/* ---- release-time min-heap ---- */

/* Embedded as the FIRST member of a tool's packet struct, so a popped item converts back to
 * the packet with a cast. Ordered by release time, then by seq (FIFO among equal times). */
struct tk_heap_item {
    uint64_t release_ns; /* when the packet is due */
    uint64_t seq;        /* tie-break: the caller's increasing counter */
};

/* A binary min-heap of item pointers. The caller allocates |items| with room for every item
 * it will push at once and frees it; the heap never owns the items. */
struct tk_heap {
    struct tk_heap_item **items;
    size_t len;
};

/* Returns true when |a| is due before |b|. */
static inline bool tk_heap_before(const struct tk_heap_item *a, const struct tk_heap_item *b)
{
    return a->release_ns < b->release_ns || (a->release_ns == b->release_ns && a->seq < b->seq);
}

/* Adds |it|; the caller guarantees there is room. */
static inline void tk_heap_push(struct tk_heap *h, struct tk_heap_item *it)
{
    size_t i = h->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!tk_heap_before(it, h->items[parent]))
            break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = it;
}

/* Removes and returns the earliest item; the heap must not be empty. */
static inline struct tk_heap_item *tk_heap_pop(struct tk_heap *h)
{
    struct tk_heap_item *top = h->items[0];
    struct tk_heap_item *last = h->items[--h->len];
    size_t i = 0, n = h->len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && tk_heap_before(h->items[child + 1], h->items[child]))
            child++;
        if (!tk_heap_before(h->items[child], last))
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (n > 0)
        h->items[i] = last;
    return top;
}

/* Returns how long until the earliest item is due at |now| (0 if due), at most |cap|; |cap|
 * when the heap is empty. */
static inline uint64_t tk_heap_wait(const struct tk_heap *h, uint64_t now, uint64_t cap)
{
    if (h->len == 0)
        return cap;
    uint64_t t = h->items[0]->release_ns;
    return t > now ? MIN(cap, t - now) : 0;
}

#endif
