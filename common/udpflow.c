/* SPDX-License-Identifier: MIT */
/* Pure core: a session's UDP flow table (see udpflow.h). */
#include "common/udpflow.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first entry whose id is >= |id|. */
static size_t lower_bound(const struct udpflow_table *t, uint32_t id)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct udpflow *udpflow_find(struct udpflow_table *t, uint32_t id)
{
    size_t i = lower_bound(t, id);
    return i < t->n && t->v[i].id == id ? &t->v[i] : NULL;
}

static void remove_at(struct udpflow_table *t, size_t i)
{
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
    t->n--;
}

/* Forgets the oldest tombstone. */
static void drop_oldest_tomb(struct udpflow_table *t)
{
    size_t best = t->n;
    for (size_t i = 0; i < t->n; i++)
        if (!t->v[i].open && (best == t->n || t->v[i].last_ms < t->v[best].last_ms))
            best = i;
    if (best < t->n) {
        remove_at(t, best);
        t->ntomb--;
    }
}

struct udpflow *udpflow_open(struct udpflow_table *t, struct udpflow_limits *lim, uint32_t id,
                             void *user, uint64_t now_ms, int *err)
{
    size_t i = lower_bound(t, id);
    if (i < t->n && t->v[i].id == id) {
        *err = t->v[i].open ? ERR_INVAL : ERR_CLOSED;
        return NULL;
    }
    if (t->nopen >= lim->per_sess || lim->open_total >= lim->total) {
        *err = ERR_LIMIT;
        return NULL;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct udpflow *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            *err = ERR_NOMEM;
            return NULL;
        }
        t->v = v;
        t->cap = cap;
    }
    memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
    t->n++;
    t->v[i] = (struct udpflow){.id = id, .open = true, .last_ms = now_ms, .user = user};
    t->nopen++;
    lim->open_total++;
    *err = 0;
    return &t->v[i];
}

void udpflow_close(struct udpflow_table *t, struct udpflow_limits *lim, struct udpflow *f,
                   uint64_t now_ms)
{
    if (!f->open)
        return;
    f->open = false;
    f->user = NULL;
    f->last_ms = now_ms;
    t->nopen--;
    lim->open_total--;
    t->ntomb++;
    if (t->ntomb > UDPFLOW_TOMB_MAX)
        drop_oldest_tomb(t);
}

uint64_t udpflow_expire(struct udpflow_table *t, struct udpflow_limits *lim, uint64_t now_ms,
                        udpflow_idle_fn *idle, void *cb_user)
{
    uint64_t next = UINT64_MAX;
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct udpflow f = t->v[i];
        if (f.open && now_ms - f.last_ms >= lim->idle_ms) {
            if (idle)
                idle(cb_user, f.id, f.user);
            f.open = false;
            f.user = NULL;
            f.last_ms = now_ms;
            t->nopen--;
            lim->open_total--;
            t->ntomb++;
        }
        if (!f.open && now_ms - f.last_ms >= UDPFLOW_TOMB_MS) {
            t->ntomb--;
            continue;
        }
        uint64_t due = f.last_ms + (f.open ? lim->idle_ms : UDPFLOW_TOMB_MS);
        if (due < next)
            next = due;
        t->v[w++] = f;
    }
    t->n = w;
    while (t->ntomb > UDPFLOW_TOMB_MAX)
        drop_oldest_tomb(t);
    return next;
}

void udpflow_table_free(struct udpflow_table *t, struct udpflow_limits *lim,
                        udpflow_idle_fn *idle, void *cb_user)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!t->v[i].open)
            continue;
        if (idle)
            idle(cb_user, t->v[i].id, t->v[i].user);
        lim->open_total--;
    }
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

int udpflow_parse_spec(const char *s, struct udpflow_spec *out, char *err, size_t errlen)
{
    /* split at the colons outside brackets: port | bind:port | port:host:hp | bind:port:host:hp */
    const char *tok[5];
    size_t len[5], n = 0, depth = 0, slen = strlen(s);
    memset(out, 0, sizeof(*out));
    tok[0] = s;
    for (size_t i = 0; i <= slen && slen < UDPFLOW_SPEC_MAX; i++) {
        if (s[i] == '[')
            depth++;
        else if (s[i] == ']' && depth)
            depth--;
        else if ((s[i] == ':' && depth == 0) || s[i] == '\0') {
            if (n == 4)
                break;
            len[n] = (size_t)(s + i - tok[n]);
            n++;
            if (s[i] == ':')
                tok[n] = s + i + 1;
            if (s[i] == '\0')
                break;
        }
    }
    if (slen == 0 || slen >= UDPFLOW_SPEC_MAX || depth || n == 0 || n > 4 ||
        (n == 4 && tok[3] + len[3] != s + slen)) {
        snprintf(err, errlen, "'%s' is not [bind:]port[:host:hostport]", s);
        return ERR_INVAL;
    }
    size_t b = n == 2 || n == 4 ? 1 : 0; /* index of the listen port */
    if (!all_digits(tok[b], len[b]) || (b == 1 && len[0] && tok[0][0] == '[' && len[0] < 3)) {
        snprintf(err, errlen, "'%s': bad listen port", s);
        return ERR_INVAL;
    }
    if (b == 0)
        snprintf(out->listen, sizeof(out->listen), "127.0.0.1:%.*s", (int)len[0], tok[0]);
    else if (len[0] == 0 || (len[0] == 1 && tok[0][0] == '*'))
        snprintf(out->listen, sizeof(out->listen), ":%.*s", (int)len[1], tok[1]);
    else
        snprintf(out->listen, sizeof(out->listen), "%.*s:%.*s", (int)len[0], tok[0],
                 (int)len[1], tok[1]);
    if (n <= 2)
        return 0; /* the server's -t target */
    size_t h = b + 1;
    if (len[h] == 0 || (tok[h][0] == '[' && len[h] < 3) || !all_digits(tok[h + 1], len[h + 1])) {
        snprintf(err, errlen, "'%s': bad target host or port", s);
        return ERR_INVAL;
    }
    snprintf(out->target, sizeof(out->target), "%.*s:%.*s", (int)len[h], tok[h],
             (int)len[h + 1], tok[h + 1]);
    return 0;
}
