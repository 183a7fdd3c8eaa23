/* SPDX-License-Identifier: MIT */
/* Pure core: forward specs and the stream target header (see fwd.h). */
#include "common/fwd.h"

#include "common/allow.h"
#include "common/err.h"

#include <stdio.h>
#include <string.h>

/* Bytes a host name (or an address literal's text) may hold. */
static bool name_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == ':';
}

static bool parse_port(const char *s, size_t len, uint16_t *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

#define FWD_TOKENS 4

struct token {
    const char *p;
    size_t len;
    bool bracketed;
};

/* Splits |s| at ':' outside brackets into at most FWD_TOKENS tokens. Returns the count, or
 * -1 (too many, or bad brackets). */
static int split(const char *s, struct token *t)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == FWD_TOKENS)
            return -1;
        struct token *k = &t[n++];
        k->bracketed = *p == '[';
        if (k->bracketed) {
            const char *close = strchr(p, ']');
            if (!close)
                return -1;
            k->p = p + 1;
            k->len = (size_t)(close - p - 1);
            p = close + 1;
            if (*p != ':' && *p != '\0')
                return -1;
        } else {
            k->p = p;
            k->len = strcspn(p, ":[]");
            p += k->len;
            if (*p == '[' || *p == ']')
                return -1;
        }
        if (*p == '\0')
            return n;
        p++; /* ':' */
    }
}

/* Copies host token |k| into |out| after checking it. */
static int take_host(const struct token *k, char out[FWD_HOST_MAX], const char *what,
                     const char *spec, char *err, size_t errlen)
{
    uint8_t a[16];
    size_t alen;
    if (k->len == 0 || k->len >= FWD_HOST_MAX)
        return err_fail(err, errlen, "'%s': %s host is %s", spec, what,
                        k->len ? "too long" : "empty");
    for (size_t i = 0; i < k->len; i++)
        if (!name_byte((uint8_t)k->p[i]))
            return err_fail(err, errlen, "'%s': %s host '%.*s' is not a name or address", spec,
                            what, (int)k->len, k->p);
    bool ip = allow_parse_ip(k->p, k->len, a, &alen);
    if (k->bracketed ? !(ip && alen == 16) : memchr(k->p, ':', k->len) != NULL)
        return err_fail(err, errlen, "'%s': %s host '%.*s': IPv6 addresses go in brackets, "
                        "[addr]", spec, what, (int)k->len, k->p);
    memcpy(out, k->p, k->len);
    out[k->len] = '\0';
    return 0;
}

int fwd_parse_spec(char kind, const char *s, struct fwd_spec *out, char *err, size_t errlen)
{
    struct token t[FWD_TOKENS];
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    bool target = kind == 'L' || kind == 'U';
    if (!target && kind != 'D')
        return err_fail(err, errlen, "unknown forward kind '%c'", kind);
    const char *shape = target ? "[bind:]port:host:hostport" : "[bind:]port";
    for (const char *c = s; *c; c++)
        if ((uint8_t)*c < 0x21 || (uint8_t)*c >= 0x7f)
            return err_fail(err, errlen, "-%c: a spec holds no blanks or control bytes (%s)", kind,
                            shape);
    int n = split(s, t);
    int want = target ? 3 : 1;
    if (n != want && n != want + 1)
        return err_fail(err, errlen, "'%s': expected %s", s, shape);
    int i = 0;
    if (n == want + 1) {
        if (t[0].len == 0 || (t[0].len == 1 && t[0].p[0] == '*' && !t[0].bracketed))
            out->bind[0] = '\0';
        else if (take_host(&t[0], out->bind, "bind", s, err, errlen) < 0)
            return ERR_INVAL;
        i = 1;
    } else {
        strcpy(out->bind, "127.0.0.1");
    }
    if (t[i].bracketed || !parse_port(t[i].p, t[i].len, &out->bind_port))
        return err_fail(err, errlen, "'%s': bad listen port '%.*s' (1..65535; %s)", s,
                        (int)t[i].len, t[i].p, shape);
    if (!target)
        return 0;
    if (take_host(&t[i + 1], out->host, "target", s, err, errlen) < 0)
        return ERR_INVAL;
    if (t[i + 2].bracketed || !parse_port(t[i + 2].p, t[i + 2].len, &out->port))
        return err_fail(err, errlen, "'%s': bad target port '%.*s' (1..65535; %s)", s,
                        (int)t[i + 2].len, t[i + 2].p, shape);
    return 0;
}

int fwd_target_set(struct fwd_target *t, const char *host, uint16_t port)
{
    size_t len = strlen(host), alen;
    memset(t, 0, sizeof(*t));
    t->port = port;
    if (port == 0 || len == 0 || len > 255)
        return ERR_INVAL;
    if (allow_parse_ip(host, len, t->addr, &alen)) {
        t->atyp = alen == 4 ? FWD_ATYP_IPV4 : FWD_ATYP_IPV6;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (!name_byte((uint8_t)host[i]))
            return ERR_INVAL;
    t->atyp = FWD_ATYP_NAME;
    memcpy(t->name, host, len + 1);
    return 0;
}

int fwd_addr_encode(const struct fwd_target *t, uint8_t *out)
{
    size_t n = 0, alen;
    out[n++] = t->atyp;
    switch (t->atyp) {
    case FWD_ATYP_IPV4:
    case FWD_ATYP_IPV6:
        alen = t->atyp == FWD_ATYP_IPV4 ? 4 : 16;
        memcpy(out + n, t->addr, alen);
        break;
    case FWD_ATYP_NAME:
        alen = strnlen(t->name, sizeof(t->name));
        if (alen == 0 || alen > 255)
            return ERR_INVAL;
        out[n++] = (uint8_t)alen;
        memcpy(out + n, t->name, alen);
        break;
    default:
        return ERR_INVAL;
    }
    n += alen;
    out[n++] = (uint8_t)(t->port >> 8);
    out[n++] = (uint8_t)t->port;
    return (int)n;
}

int fwd_request_encode(const struct fwd_target *t, uint8_t *out, size_t cap)
{
    uint8_t tmp[FWD_REQ_MAX];
    tmp[0] = FWD_MAGIC;
    tmp[1] = FWD_VERSION;
    tmp[2] = FWD_ATYP_DEFAULT;
    int n = 1;
    if (t->atyp != FWD_ATYP_DEFAULT && (t->port == 0 || (n = fwd_addr_encode(t, tmp + 2)) < 0))
        return ERR_INVAL;
    if (2 + (size_t)n > cap)
        return ERR_INVAL;
    memcpy(out, tmp, 2 + (size_t)n);
    return 2 + n;
}

int fwd_request_decode(const uint8_t *p, size_t len, struct fwd_target *t)
{
    memset(t, 0, sizeof(*t));
    if (len >= 1 && p[0] != FWD_MAGIC)
        return ERR_PROTO;
    if (len >= 2 && p[1] != FWD_VERSION)
        return ERR_PROTO;
    if (len < 3)
        return ERR_AGAIN;
    size_t need, alen = 0, off = 3;
    t->atyp = p[2];
    switch (p[2]) {
    case FWD_ATYP_DEFAULT:
        return 3;
    case FWD_ATYP_IPV4:
        alen = 4;
        break;
    case FWD_ATYP_IPV6:
        alen = 16;
        break;
    case FWD_ATYP_NAME:
        if (len < 4)
            return ERR_AGAIN;
        alen = p[3];
        off = 4;
        if (alen == 0)
            return ERR_PROTO;
        /* check the name's bytes as they come, so garbage fails early */
        for (size_t i = 0; i < alen && off + i < len; i++)
            if (!name_byte(p[off + i]))
                return ERR_PROTO;
        break;
    default:
        return ERR_PROTO;
    }
    need = off + alen + 2;
    if (len < need)
        return ERR_AGAIN;
    if (t->atyp == FWD_ATYP_NAME) {
        memcpy(t->name, p + off, alen);
        t->name[alen] = '\0';
    } else {
        memcpy(t->addr, p + off, alen);
    }
    t->port = (uint16_t)(p[off + alen] << 8 | p[off + alen + 1]);
    if (t->port == 0)
        return ERR_PROTO;
    return (int)need;
}

void fwd_reply_encode(uint8_t status, uint8_t out[FWD_REPLY_LEN])
{
    out[0] = FWD_MAGIC;
    out[1] = FWD_VERSION;
    out[2] = status;
}

int fwd_reply_decode(const uint8_t *p, size_t len)
{
    if ((len >= 1 && p[0] != FWD_MAGIC) || (len >= 2 && p[1] != FWD_VERSION))
        return ERR_PROTO;
    if (len < FWD_REPLY_LEN)
        return ERR_AGAIN;
    return p[2];
}

const char *fwd_target_str(const struct fwd_target *t, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    switch (t->atyp) {
    case FWD_ATYP_IPV4:
        snprintf(buf, cap, "%u.%u.%u.%u:%u", t->addr[0], t->addr[1], t->addr[2], t->addr[3],
                 t->port);
        break;
    case FWD_ATYP_IPV6: {
        int n = snprintf(buf, cap, "[");
        for (int k = 0; k < 8 && n > 0 && (size_t)n < cap; k++)
            n += snprintf(buf + n, cap - (size_t)n, "%s%x", k ? ":" : "",
                          (unsigned)(t->addr[2 * k] << 8 | t->addr[2 * k + 1]));
        if (n > 0 && (size_t)n < cap)
            snprintf(buf + n, cap - (size_t)n, "]:%u", t->port);
        break;
    }
    case FWD_ATYP_NAME:
        snprintf(buf, cap, "%s:%u", t->name, t->port);
        break;
    default:
        snprintf(buf, cap, "-t");
        break;
    }
    return buf;
}

const char *fwd_status_str(int s)
{
    switch (s) {
    case FWD_OK:
        return "connected";
    case FWD_NOT_ALLOWED:
        return "not allowed by the server's --allow";
    case FWD_NET_UNREACH:
        return "network unreachable";
    case FWD_HOST_UNREACH:
        return "host unreachable or unknown";
    case FWD_REFUSED:
        return "connection refused";
    case FWD_TIMEOUT:
        return "timed out";
    case FWD_BAD_ATYP:
        return "address type not supported";
    default:
        return "failed";
    }
}

bool fwd_logbook_pass(struct fwd_logbook *b, uint64_t key, uint64_t now_ms, uint64_t period_ms)
{
    size_t oldest = 0;
    for (size_t i = 0; i < FWD_LOGBOOK_SLOTS; i++) {
        bool used = b->at_ms[i] != 0 || b->key[i] != 0;
        if (used && b->key[i] == key && now_ms - b->at_ms[i] < period_ms) {
            b->suppressed++;
            return false;
        }
        if (b->at_ms[i] < b->at_ms[oldest])
            oldest = i;
    }
    /* reuse this key's slot if it has one (expired), else the oldest */
    for (size_t i = 0; i < FWD_LOGBOOK_SLOTS; i++)
        if (b->key[i] == key)
            oldest = i;
    b->key[oldest] = key;
    b->at_ms[oldest] = now_ms ? now_ms : 1;
    return true;
}

uint64_t fwd_hash(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
