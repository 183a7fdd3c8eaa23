/* SPDX-License-Identifier: MIT */
/* Pure core: the server's allow-list (see allow.h). */
#include "common/allow.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Decimal number of 1..|maxdigits| digits, no sign, at most |max|. Returns true on success. */
static bool parse_dec(const char *s, size_t len, unsigned long max, size_t maxdigits,
                      unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > maxdigits)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* "a.b.c.d", each part 0..255 in 1..3 decimal digits (no leading zeros beyond "0"). */
static bool parse_v4(const char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        while (i < len && is_digit(s[i]))
            i++;
        unsigned long v;
        if (!parse_dec(s + start, i - start, 255, 3, &v))
            return false;
        if (i - start > 1 && s[start] == '0')
            return false; /* "010" reads as octal in some resolvers: refuse it */
        out[part] = (uint8_t)v;
        if (part < 3) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

/* RFC 4291 text: hex groups, one "::", an IPv4 tail. */
static bool parse_v6(const char *s, size_t len, uint8_t out[16])
{
    uint16_t g[8];
    int n = 0, gap = -1;
    size_t i = 0;
    if (len < 2)
        return false;
    if (s[0] == ':') {
        if (s[1] != ':')
            return false;
        gap = 0;
        i = 2;
    }
    while (i < len) {
        if (n == 8)
            return false;
        size_t start = i;
        unsigned v = 0;
        while (i < len && i - start < 5 && hex_value(s[i]) >= 0)
            v = v * 16 + (unsigned)hex_value(s[i++]);
        if (i < len && s[i] == '.') {
            /* an IPv4 tail takes the last two groups */
            uint8_t v4[4];
            if (n > 6 || !parse_v4(s + start, len - start, v4))
                return false;
            g[n++] = (uint16_t)(v4[0] << 8 | v4[1]);
            g[n++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = len;
            break;
        }
        if (i == start || i - start > 4)
            return false;
        g[n++] = (uint16_t)v;
        if (i == len)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < len && s[i] == ':') {
            if (gap >= 0)
                return false;
            gap = n;
            i++;
        } else if (i == len) {
            return false; /* a single trailing ':' */
        }
    }
    if (gap < 0 ? n != 8 : n > 7)
        return false;
    memset(out, 0, 16);
    int tail = gap < 0 ? 0 : n - gap;
    for (int k = 0; k < n - tail; k++) {
        out[2 * k] = (uint8_t)(g[k] >> 8);
        out[2 * k + 1] = (uint8_t)g[k];
    }
    for (int k = 0; k < tail; k++) {
        int at = 8 - tail + k;
        out[2 * at] = (uint8_t)(g[n - tail + k] >> 8);
        out[2 * at + 1] = (uint8_t)g[n - tail + k];
    }
    return true;
}

bool allow_parse_ip(const char *s, size_t len, uint8_t out[16], size_t *outlen)
{
    if (parse_v4(s, len, out)) {
        *outlen = 4;
        return true;
    }
    if (memchr(s, ':', len) && parse_v6(s, len, out)) {
        *outlen = 16;
        return true;
    }
    return false;
}

/* Lower-case copy of host name |s| into |out| without a final dot. Returns 0, or ERR_INVAL
 * with the reason. */
static int parse_name(const char *s, size_t len, char out[ALLOW_NAME_MAX + 1], char *err,
                      size_t errlen)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return err_fail(err, errlen, "empty host");
    if (len > ALLOW_NAME_MAX)
        return err_fail(err, errlen, "host name longer than %d bytes", ALLOW_NAME_MAX);
    size_t label = 0, last_start = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return err_fail(err, errlen, "empty label in host name '%.*s'", (int)len, s);
            label = 0;
            last_start = i + 1;
            out[i] = c;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                  c == '-' || c == '_';
        if (!ok)
            return err_fail(err, errlen, "'%.*s' is not a host name or address", (int)len, s);
        if (++label > 63)
            return err_fail(err, errlen, "label longer than 63 bytes in '%.*s'", (int)len, s);
        if (c == '-' && (label == 1 || i + 1 == len || s[i + 1] == '.'))
            return err_fail(err, errlen, "a label of '%.*s' starts or ends with '-'", (int)len, s);
        out[i] = lower(c);
    }
    if (label == 0)
        return err_fail(err, errlen, "empty label in host name '%.*s'", (int)len, s);
    bool numeric = true;
    for (size_t i = last_start; i < len; i++)
        numeric &= is_digit(s[i]);
    if (numeric)
        return err_fail(err, errlen, "'%.*s' is not a valid IPv4 address", (int)len, s);
    out[len] = '\0';
    return 0;
}

/* Ports "*", "N" or "N-M". */
static int parse_ports(const char *s, size_t len, struct allow_entry *e, char *err,
                       size_t errlen)
{
    if (len == 1 && s[0] == '*') {
        e->port_lo = 1;
        e->port_hi = 65535;
        return 0;
    }
    const char *dash = memchr(s, '-', len);
    size_t l1 = dash ? (size_t)(dash - s) : len;
    unsigned long lo, hi;
    if (!parse_dec(s, l1, 65535, 5, &lo) || lo == 0)
        return err_fail(err, errlen, "bad port '%.*s' (1..65535, a range N-M, or *)", (int)len, s);
    hi = lo;
    if (dash && (!parse_dec(dash + 1, len - l1 - 1, 65535, 5, &hi) || hi < lo))
        return err_fail(err, errlen, "bad port range '%.*s' (N-M with 1 <= N <= M <= 65535)",
                        (int)len, s);
    e->port_lo = (uint16_t)lo;
    e->port_hi = (uint16_t)hi;
    return 0;
}

/* An address with an optional "/BITS" (|bracketed|: IPv6 syntax). */
static int parse_block(const char *s, size_t len, bool bracketed, struct allow_entry *e,
                       char *err, size_t errlen)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    uint8_t a[16];
    size_t n;
    if (!allow_parse_ip(s, alen, a, &n) || (n == 16) != bracketed) {
        if (bracketed)
            return err_fail(err, errlen, "'[%.*s]' is not an IPv6 address", (int)len, s);
        return err_fail(err, errlen, "'%.*s' is not a valid IPv4 address", (int)len, s);
    }
    unsigned long bits = n * 8;
    if (slash && !parse_dec(slash + 1, len - alen - 1, n * 8, 3, &bits))
        return err_fail(err, errlen, "bad prefix length in '%.*s' (0..%zu)", (int)len, s, n * 8);
    e->kind = ALLOW_ADDR;
    if (n == 4) {
        memcpy(e->addr, v4_mapped, 12);
        memcpy(e->addr + 12, a, 4);
        bits += 96;
    } else {
        memcpy(e->addr, a, 16);
    }
    e->prefix = (uint8_t)bits;
    for (unsigned i = (unsigned)bits; i < 128; i++) {
        if (e->addr[i / 8] & (0x80u >> (i % 8)))
            return err_fail(err, errlen, "'%.*s' has bits set past the prefix (the block starts "
                            "lower)", (int)len, s);
    }
    return 0;
}

int allow_parse_entry(const char *s, size_t len, struct allow_entry *e, char *err,
                      size_t errlen)
{
    memset(e, 0, sizeof(*e));
    if (len == 0)
        return err_fail(err, errlen, "empty entry");
    const char *host = s, *ports;
    size_t hlen;
    bool bracketed = false;
    char hostbuf[64];
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return err_fail(err, errlen, "'%.*s': '[' without ']'", (int)len, s);
        host = s + 1;
        hlen = (size_t)(close - host);
        const char *after = close + 1;
        size_t rest = len - (size_t)(after - s);
        if (rest > 0 && after[0] == '/') {
            /* "[v6]/bits:ports": glue the prefix to the address */
            const char *colon = memchr(after, ':', rest);
            size_t plen = colon ? (size_t)(colon - after) : rest;
            if (hlen + plen >= sizeof(hostbuf))
                return err_fail(err, errlen, "'%.*s' is not an IPv6 block", (int)len, s);
            memcpy(hostbuf, host, hlen);
            memcpy(hostbuf + hlen, after, plen);
            host = hostbuf;
            hlen += plen;
            after += plen;
            rest -= plen;
        }
        if (rest == 0 || after[0] != ':')
            return err_fail(err, errlen, "'%.*s': missing :PORT after the address (:* for every "
                            "port)", (int)len, s);
        ports = after + 1;
        bracketed = true;
    } else {
        const char *colon = memchr(s, ':', len);
        if (!colon)
            return err_fail(err, errlen, "'%.*s': missing :PORT (:* for every port)", (int)len, s);
        if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
            return err_fail(err, errlen, "'%.*s': an IPv6 address needs brackets, [addr]:port",
                            (int)len, s);
        hlen = (size_t)(colon - s);
        ports = colon + 1;
    }
    size_t plen = len - (size_t)(ports - s);
    if (plen == 0)
        return err_fail(err, errlen, "'%.*s': missing port after ':'", (int)len, s);
    if (parse_ports(ports, plen, e, err, errlen) < 0)
        return ERR_INVAL;
    if (bracketed)
        return parse_block(host, hlen, true, e, err, errlen);
    if (hlen == 1 && host[0] == '*') {
        e->kind = ALLOW_ANY;
        return 0;
    }
    if (hlen >= 2 && host[0] == '*' && host[1] == '.') {
        e->kind = ALLOW_SUFFIX;
        return parse_name(host + 2, hlen - 2, e->name, err, errlen);
    }
    if (hlen > 0 && (is_digit(host[0]) || memchr(host, '/', hlen))) {
        /* an address or a block; a name starting with a digit is fine too */
        uint8_t tmp[16];
        size_t n;
        const char *slash = memchr(host, '/', hlen);
        if (slash || allow_parse_ip(host, hlen, tmp, &n))
            return parse_block(host, hlen, false, e, err, errlen);
    }
    e->kind = ALLOW_NAME;
    return parse_name(host, hlen, e->name, err, errlen);
}

static int list_push(struct allow_list *l, const struct allow_entry *e)
{
    if (l->n >= ALLOW_ENTRIES_MAX)
        return ERR_LIMIT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct allow_entry *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    return 0;
}

static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int allow_add(struct allow_list *l, const char *spec, char *err, size_t errlen)
{
    size_t n0 = l->n;
    struct allow_entry e;
    const char *p = spec;
    for (;;) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        while (p[len] && !is_sep(p[len]))
            len++;
        int rc = allow_parse_entry(p, len, &e, err, errlen);
        if (rc == 0) {
            rc = list_push(l, &e);
            if (rc == ERR_LIMIT)
                err_fail(err, errlen, "more than %d allow entries", ALLOW_ENTRIES_MAX);
            else if (rc == ERR_NOMEM)
                err_fail(err, errlen, "out of memory");
        }
        if (rc != 0) {
            l->n = n0;
            return rc;
        }
        p += len;
    }
    if (l->n == n0)
        return err_fail(err, errlen, "empty allow value");
    return 0;
}

int allow_add_addr(struct allow_list *l, const uint8_t *addr, size_t addrlen, uint16_t port)
{
    struct allow_entry e;
    memset(&e, 0, sizeof(e));
    if ((addrlen != 4 && addrlen != 16) || port == 0)
        return ERR_INVAL;
    e.kind = ALLOW_ADDR;
    e.prefix = 128;
    if (addrlen == 4) {
        memcpy(e.addr, v4_mapped, 12);
        memcpy(e.addr + 12, addr, 4);
    } else {
        memcpy(e.addr, addr, 16);
    }
    e.port_lo = e.port_hi = port;
    return list_push(l, &e);
}

void allow_free(struct allow_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static bool port_in(const struct allow_entry *e, uint16_t port)
{
    return port >= e->port_lo && port <= e->port_hi && port != 0;
}

/* True if the first |bits| bits of |a| and |b| agree. */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned mask = (0xffu << (8 - rest)) & 0xffu;
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

bool allow_match(const struct allow_list *l, const uint8_t *addr, size_t addrlen,
                 uint16_t port)
{
    uint8_t a[16];
    if (addrlen == 4) {
        memcpy(a, v4_mapped, 12);
        memcpy(a + 12, addr, 4);
    } else if (addrlen == 16) {
        memcpy(a, addr, 16);
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct allow_entry *e = &l->v[i];
        if (!port_in(e, port))
            continue;
        if (e->kind == ALLOW_ANY || (e->kind == ALLOW_ADDR && prefix_eq(a, e->addr, e->prefix)))
            return true;
    }
    return false;
}

bool allow_match_name(const struct allow_list *l, const char *name, size_t len, uint16_t port)
{
    uint8_t a[16];
    size_t alen;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > ALLOW_NAME_MAX)
        return false;
    if (allow_parse_ip(name, len, a, &alen))
        return allow_match(l, a, alen, port);
    for (size_t i = 0; i < l->n; i++) {
        const struct allow_entry *e = &l->v[i];
        if (!port_in(e, port))
            continue;
        if (e->kind == ALLOW_ANY)
            return true;
        if (e->kind != ALLOW_NAME && e->kind != ALLOW_SUFFIX)
            continue;
        size_t n = strlen(e->name);
        size_t off;
        if (e->kind == ALLOW_NAME) {
            if (n != len)
                continue;
            off = 0;
        } else {
            if (len <= n + 1 || name[len - n - 1] != '.')
                continue;
            off = len - n;
        }
        bool eq = true;
        for (size_t k = 0; k < n && eq; k++)
            eq = lower(name[off + k]) == e->name[k];
        if (eq)
            return true;
    }
    return false;
}

bool allow_port_possible(const struct allow_list *l, uint16_t port)
{
    for (size_t i = 0; i < l->n; i++)
        if (port_in(&l->v[i], port))
            return true;
    return false;
}

const char *allow_entry_str(const struct allow_entry *e, char *buf, size_t cap)
{
    char host[ALLOW_NAME_MAX + 8], ports[16];
    if (cap == 0)
        return buf;
    if (e->port_lo == 1 && e->port_hi == 65535)
        snprintf(ports, sizeof(ports), "*");
    else if (e->port_lo == e->port_hi)
        snprintf(ports, sizeof(ports), "%u", e->port_lo);
    else
        snprintf(ports, sizeof(ports), "%u-%u", e->port_lo, e->port_hi);
    switch (e->kind) {
    case ALLOW_ANY:
        snprintf(host, sizeof(host), "*");
        break;
    case ALLOW_NAME:
        snprintf(host, sizeof(host), "%s", e->name);
        break;
    case ALLOW_SUFFIX:
        snprintf(host, sizeof(host), "*.%s", e->name);
        break;
    default:
        if (memcmp(e->addr, v4_mapped, 12) == 0 && e->prefix >= 96) {
            int n = snprintf(host, sizeof(host), "%u.%u.%u.%u", e->addr[12], e->addr[13],
                             e->addr[14], e->addr[15]);
            if (e->prefix != 128 && n > 0)
                snprintf(host + n, sizeof(host) - (size_t)n, "/%u", e->prefix - 96u);
        } else {
            /* full form, no "::" compression: unambiguous and good enough for logs */
            int n = snprintf(host, sizeof(host), "[");
            for (int k = 0; k < 8; k++)
                n += snprintf(host + n, sizeof(host) - (size_t)n, "%s%x", k ? ":" : "",
                              (unsigned)(e->addr[2 * k] << 8 | e->addr[2 * k + 1]));
            if (e->prefix != 128)
                n += snprintf(host + n, sizeof(host) - (size_t)n, "/%u", e->prefix);
            snprintf(host + n, sizeof(host) - (size_t)n, "]");
        }
        break;
    }
    snprintf(buf, cap, "%s:%s", host, ports);
    return buf;
}
