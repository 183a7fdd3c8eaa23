/* SPDX-License-Identifier: MIT */
/* C side of the Python binding (python/ktun): the cores emit into queues, never into Python.
 *
 * Every core reports packets, frames and events through callbacks. A binding that calls back
 * into Python from inside the C stack must cope with exceptions thrown half-way through a
 * flush, with callbacks re-entering the engine, and with one foreign call per packet. Here the
 * callbacks only append to a queue owned by the wrapper object; Python drains the queue after
 * the C call returned, one copy per batch. Configuration goes through setters by field name so
 * that the Python side never depends on the layout of a C struct.
 *
 * Queues: "framed" queues hold records LE32 length | bytes (packets, datagrams); "raw"
 * queues hold plain bytes (the mux's output is one byte stream) or fixed-size records (mux
 * events: LE32 kind | LE32 stream id).
 */
#include "common/comp.h"
#include "common/err.h"
#include "common/kcp.h"
#include "common/link.h"
#include "common/mux.h"
#include "crypto/crypt.h"
#include "crypto/qpp.h"
#include "fec/fec.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The functions below are the binding's ABI; python/ktun/_ffi.py declares the same. */
#define KPY_API __attribute__((visibility("default")))

struct kpy_queue {
    uint8_t *buf;
    size_t len, cap;
    size_t count;   /* records (framed queues) */
    uint64_t lost;  /* records dropped for lack of memory */
};

static int queue_reserve(struct kpy_queue *q, size_t more)
{
    if (q->cap - q->len >= more)
        return 0;
    size_t cap = q->cap ? q->cap : 4096;
    while (cap - q->len < more) {
        if (cap > SIZE_MAX / 2)
            return ERR_NOMEM;
        cap *= 2;
    }
    uint8_t *b = realloc(q->buf, cap);
    if (!b)
        return ERR_NOMEM;
    q->buf = b;
    q->cap = cap;
    return 0;
}

static int queue_put_framed(struct kpy_queue *q, const uint8_t *p, size_t len)
{
    if (len > UINT32_MAX || queue_reserve(q, len + 4) != 0) {
        q->lost++;
        return ERR_NOMEM;
    }
    uint8_t *d = q->buf + q->len;
    d[0] = (uint8_t)len;
    d[1] = (uint8_t)(len >> 8);
    d[2] = (uint8_t)(len >> 16);
    d[3] = (uint8_t)(len >> 24);
    if (len)
        memcpy(d + 4, p, len);
    q->len += len + 4;
    q->count++;
    return 0;
}

static int queue_put_raw(struct kpy_queue *q, const uint8_t *p, size_t len)
{
    if (queue_reserve(q, len) != 0) {
        q->lost++;
        return ERR_NOMEM;
    }
    if (len)
        memcpy(q->buf + q->len, p, len);
    q->len += len;
    q->count++;
    return 0;
}

static void queue_release(struct kpy_queue *q)
{
    free(q->buf);
    memset(q, 0, sizeof(*q));
}

/* Points *|p| at the queued bytes and returns their count; *|count| gets the record count. */
KPY_API size_t kpy_queue_peek(const struct kpy_queue *q, const uint8_t **p, size_t *count);
size_t kpy_queue_peek(const struct kpy_queue *q, const uint8_t **p, size_t *count)
{
    *p = q->buf;
    if (count)
        *count = q->count;
    return q->len;
}

/* Empties |q|; a large buffer left by a burst is given back. */
KPY_API void kpy_queue_clear(struct kpy_queue *q);
void kpy_queue_clear(struct kpy_queue *q)
{
    q->len = 0;
    q->count = 0;
    if (q->cap > ((size_t)4 << 20)) {
        free(q->buf);
        q->buf = NULL;
        q->cap = 0;
    }
}

KPY_API uint64_t kpy_queue_lost(const struct kpy_queue *q);
uint64_t kpy_queue_lost(const struct kpy_queue *q)
{
    return q->lost;
}

/* Walks a framed batch: calls |fn| for each record. Returns the record count, or ERR_PROTO if
 * the framing is broken (records before the fault were handed over). */
typedef void batch_fn(void *ctx, const uint8_t *p, size_t len);

static long walk_batch(const uint8_t *p, size_t len, batch_fn *fn, void *ctx)
{
    long n = 0;
    while (len > 0) {
        if (len < 4)
            return ERR_PROTO;
        size_t l = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (l > len - 4)
            return ERR_PROTO;
        fn(ctx, p + 4, l);
        p += 4 + l;
        len -= 4 + l;
        n++;
    }
    return n;
}

/* ---- field tables: stats out, config in ---------------------------------------------------- */

struct kpy_field {
    const char *name;
    size_t off;
    size_t size; /* 1 (bool), 4 (int / uint32), 8 (int64 / size_t / uint64) */
};

static void fields_get_u64(const struct kpy_field *f, size_t n, const void *obj, uint64_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const uint8_t *)obj + f[i].off, sizeof(v));
        out[i] = v;
    }
}

#define KCP_STAT_FIELDS(pfx, base)                                                          \
    {pfx "in_segs", base + offsetof(struct kcp_stats, in_segs), 8},                         \
    {pfx "out_segs", base + offsetof(struct kcp_stats, out_segs), 8},                       \
    {pfx "out_pkts", base + offsetof(struct kcp_stats, out_pkts), 8},                       \
    {pfx "retrans_segs", base + offsetof(struct kcp_stats, retrans_segs), 8},               \
    {pfx "fast_retrans_segs", base + offsetof(struct kcp_stats, fast_retrans_segs), 8},     \
    {pfx "early_retrans_segs", base + offsetof(struct kcp_stats, early_retrans_segs), 8},   \
    {pfx "lost_segs", base + offsetof(struct kcp_stats, lost_segs), 8},                     \
    {pfx "repeat_segs", base + offsetof(struct kcp_stats, repeat_segs), 8},                 \
    {pfx "in_errors", base + offsetof(struct kcp_stats, in_errors), 8},                     \
    {pfx "drop_short", base + offsetof(struct kcp_stats, drop) + KCP_DROP_SHORT * 8, 8},    \
    {pfx "drop_conv", base + offsetof(struct kcp_stats, drop) + KCP_DROP_CONV * 8, 8},      \
    {pfx "drop_len", base + offsetof(struct kcp_stats, drop) + KCP_DROP_LEN * 8, 8},        \
    {pfx "drop_cmd", base + offsetof(struct kcp_stats, drop) + KCP_DROP_CMD * 8, 8},        \
    {pfx "drop_una", base + offsetof(struct kcp_stats, drop) + KCP_DROP_UNA * 8, 8},        \
    {pfx "drop_window", base + offsetof(struct kcp_stats, drop) + KCP_DROP_WINDOW * 8, 8},  \
    {pfx "drop_ack", base + offsetof(struct kcp_stats, drop) + KCP_DROP_ACK * 8, 8},        \
    {pfx "drop_nomem", base + offsetof(struct kcp_stats, drop) + KCP_DROP_NOMEM * 8, 8}

static const struct kpy_field kcp_stat_fields[] = {KCP_STAT_FIELDS("", 0)};

#define LSTAT(field) {#field, offsetof(struct link_stats, field), 8}
#define FSTAT(field) {"fec_" #field, offsetof(struct link_stats, fec) + offsetof(struct fec_stats, field), 8}
static const struct kpy_field link_stat_fields[] = {
    KCP_STAT_FIELDS("kcp_", offsetof(struct link_stats, kcp)),
    FSTAT(parity_shards), FSTAT(errs), FSTAT(recovered), FSTAT(short_shards), FSTAT(mismatch),
    LSTAT(in_pkts), LSTAT(in_bytes), LSTAT(in_errs), LSTAT(out_pkts), LSTAT(out_bytes),
    LSTAT(fec_parity_out), LSTAT(plain_ctrl_out), LSTAT(seal_errs),
};

#define MSTAT(field) {#field, offsetof(struct mux_stats, field), 8}
static const struct kpy_field mux_stat_fields[] = {
    MSTAT(frames_in), MSTAT(frames_out), MSTAT(bytes_in), MSTAT(bytes_out), MSTAT(nop_in),
    MSTAT(nop_out), MSTAT(upd_in), MSTAT(upd_out), MSTAT(streams_opened),
    MSTAT(streams_accepted), MSTAT(streams_refused), MSTAT(streams_closed),
    MSTAT(dropped_frames), MSTAT(dropped_bytes), MSTAT(protocol_errors),
    MSTAT(keepalive_timeouts), MSTAT(input_stalls), MSTAT(rx_buffered), MSTAT(rx_buffered_peak),
    MSTAT(rx_alloc), MSTAT(rx_alloc_peak), MSTAT(last_rx_ms),
};

#define CSTAT(field) {#field, offsetof(struct crypt_stats, field), 8}
static const struct kpy_field crypt_stat_fields[] = {
    CSTAT(in_pkts), CSTAT(in_short), CSTAT(in_csum_errors), CSTAT(in_auth_errors),
    CSTAT(in_replays), CSTAT(in_stale), CSTAT(in_table_full),
};

enum kpy_table { KPY_KCP_STATS, KPY_LINK_STATS, KPY_MUX_STATS, KPY_CRYPT_STATS, KPY_TABLES };

static const struct {
    const struct kpy_field *f;
    size_t n;
} tables[KPY_TABLES] = {
    {kcp_stat_fields, sizeof(kcp_stat_fields) / sizeof(kcp_stat_fields[0])},
    {link_stat_fields, sizeof(link_stat_fields) / sizeof(link_stat_fields[0])},
    {mux_stat_fields, sizeof(mux_stat_fields) / sizeof(mux_stat_fields[0])},
    {crypt_stat_fields, sizeof(crypt_stat_fields) / sizeof(crypt_stat_fields[0])},
};

/* Number of fields of table |t| (0 for an unknown table). */
KPY_API size_t kpy_table_size(int t);
size_t kpy_table_size(int t)
{
    return t >= 0 && t < KPY_TABLES ? tables[t].n : 0;
}

/* Name of field |i| of table |t|, or NULL. */
KPY_API const char *kpy_table_name(int t, size_t i);
const char *kpy_table_name(int t, size_t i)
{
    return t >= 0 && t < KPY_TABLES && i < tables[t].n ? tables[t].f[i].name : NULL;
}

/* Config tables: name -> member of struct link_config / struct mux_config. */
#define LCFG(field) {#field, offsetof(struct link_config, field), sizeof(((struct link_config *)0)->field)}
static const struct kpy_field link_cfg_fields[] = {
    LCFG(data_shards), LCFG(parity_shards), LCFG(mtu), LCFG(sndwnd), LCFG(rcvwnd),
    LCFG(nodelay), LCFG(interval_ms), LCFG(resend), LCFG(nc), LCFG(ack_nodelay),
    LCFG(message_mode), LCFG(pace), LCFG(no_fec_hold), LCFG(wall_offset_ms),
};

#define MCFG(field) {#field, offsetof(struct mux_config, field), sizeof(((struct mux_config *)0)->field)}
static const struct kpy_field mux_cfg_fields[] = {
    MCFG(version), MCFG(max_receive_buffer), MCFG(max_stream_buffer),
    MCFG(keepalive_interval_ms), MCFG(keepalive_timeout_ms), MCFG(max_frame_size),
    MCFG(max_streams),
};

/* Stores |v| in the member |name| of |obj|, range-checked against the member's type.
 * |is_signed| tells the member's signedness. Returns 0 or ERR_INVAL. */
static int field_set(const struct kpy_field *f, size_t n, const unsigned char *is_signed,
                     void *obj, const char *name, int64_t v)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].name, name) != 0)
            continue;
        uint8_t *p = (uint8_t *)obj + f[i].off;
        if (f[i].size == 1) {
            if (v != 0 && v != 1)
                return ERR_INVAL;
            bool b = v != 0;
            memcpy(p, &b, 1);
        } else if (f[i].size == 4) {
            if (is_signed[i]) {
                if (v < INT32_MIN || v > INT32_MAX)
                    return ERR_INVAL;
                int32_t x = (int32_t)v;
                memcpy(p, &x, 4);
            } else {
                if (v < 0 || v > (int64_t)UINT32_MAX)
                    return ERR_INVAL;
                uint32_t x = (uint32_t)v;
                memcpy(p, &x, 4);
            }
        } else if (f[i].size == 8) {
            if (!is_signed[i] && v < 0)
                return ERR_INVAL;
            memcpy(p, &v, 8);
        } else {
            return ERR_INVAL;
        }
        return 0;
    }
    return ERR_INVAL;
}

static int field_get(const struct kpy_field *f, size_t n, const unsigned char *is_signed,
                     const void *obj, const char *name, int64_t *v)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].name, name) != 0)
            continue;
        const uint8_t *p = (const uint8_t *)obj + f[i].off;
        if (f[i].size == 1) {
            bool b;
            memcpy(&b, p, 1);
            *v = b;
        } else if (f[i].size == 4) {
            if (is_signed[i]) {
                int32_t x;
                memcpy(&x, p, 4);
                *v = x;
            } else {
                uint32_t x;
                memcpy(&x, p, 4);
                *v = x;
            }
        } else {
            memcpy(v, p, 8);
        }
        return 0;
    }
    return ERR_INVAL;
}

/* Signedness of the config members, in table order. */
static const unsigned char link_cfg_signed[] = {1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1};
static const unsigned char mux_cfg_signed[] = {1, 0, 0, 0, 0, 0, 0};
_Static_assert(sizeof(link_cfg_signed) == sizeof(link_cfg_fields) / sizeof(link_cfg_fields[0]),
               "link_cfg_signed matches link_cfg_fields");
_Static_assert(sizeof(mux_cfg_signed) == sizeof(mux_cfg_fields) / sizeof(mux_cfg_fields[0]),
               "mux_cfg_signed matches mux_cfg_fields");

/* Name of config field |i| (0: link, 1: mux), or NULL past the end. */
KPY_API const char *kpy_config_name(int which, size_t i);
const char *kpy_config_name(int which, size_t i)
{
    if (which == 0)
        return i < sizeof(link_cfg_signed) ? link_cfg_fields[i].name : NULL;
    if (which == 1)
        return i < sizeof(mux_cfg_signed) ? mux_cfg_fields[i].name : NULL;
    return NULL;
}

/* ---- KCP ---------------------------------------------------------------------------------- */

struct kpy_kcp {
    struct kcp *k;
    struct kpy_queue out;
};

static void kcp_out_cb(void *user, const uint8_t *pkt, size_t len)
{
    queue_put_framed(user, pkt, len);
}

KPY_API struct kpy_kcp *kpy_kcp_new(uint32_t conv);
struct kpy_kcp *kpy_kcp_new(uint32_t conv)
{
    struct kpy_kcp *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->k = kcp_new(conv, kcp_out_cb, &o->out);
    if (!o->k) {
        free(o);
        return NULL;
    }
    return o;
}

KPY_API void kpy_kcp_free(struct kpy_kcp *o);
void kpy_kcp_free(struct kpy_kcp *o)
{
    if (!o)
        return;
    kcp_free(o->k);
    queue_release(&o->out);
    free(o);
}

KPY_API struct kcp *kpy_kcp_engine(struct kpy_kcp *o);
struct kcp *kpy_kcp_engine(struct kpy_kcp *o)
{
    return o->k;
}

KPY_API struct kpy_queue *kpy_kcp_queue(struct kpy_kcp *o);
struct kpy_queue *kpy_kcp_queue(struct kpy_kcp *o)
{
    return &o->out;
}

struct kcp_batch_ctx {
    struct kcp *k;
    uint64_t now;
    bool regular;
    long errors;
};

static void kcp_batch_one(void *ctx, const uint8_t *p, size_t len)
{
    struct kcp_batch_ctx *c = ctx;
    if (kcp_input(c->k, p, len, c->regular, c->now) != 0)
        c->errors++;
}

/* Feeds every packet of a framed batch (LE32 length | packet, ...). Returns the number of
 * packets fed, or ERR_PROTO if the framing is broken (packets before the fault were fed). */
KPY_API long kpy_kcp_input_batch(struct kpy_kcp *o, const uint8_t *batch, size_t len,
                                 bool regular, uint64_t now_ms);
long kpy_kcp_input_batch(struct kpy_kcp *o, const uint8_t *batch, size_t len, bool regular,
                         uint64_t now_ms)
{
    struct kcp_batch_ctx c = {o->k, now_ms, regular, 0};
    return walk_batch(batch, len, kcp_batch_one, &c);
}

/* Appends every readable byte (stream mode) or message (message mode) to |out|, which the
 * caller drains afterwards; messages are framed, stream bytes raw. Returns the bytes or
 * messages read, or ERR_NOMEM. */
KPY_API long kpy_kcp_recv_all(struct kpy_kcp *o, struct kpy_queue *out, bool framed);
long kpy_kcp_recv_all(struct kpy_kcp *o, struct kpy_queue *out, bool framed)
{
    long n = 0;
    size_t avail;
    while ((avail = kcp_recv_avail(o->k)) > 0) {
        size_t extra = framed ? 4 : 0;
        if (queue_reserve(out, avail + extra) != 0)
            return ERR_NOMEM;
        ssize_t r = kcp_recv(o->k, out->buf + out->len + extra, avail);
        if (r <= 0)
            break;
        if (framed) {
            uint8_t *d = out->buf + out->len;
            d[0] = (uint8_t)r;
            d[1] = (uint8_t)((size_t)r >> 8);
            d[2] = (uint8_t)((size_t)r >> 16);
            d[3] = (uint8_t)((size_t)r >> 24);
            n++;
        } else {
            n += (long)r;
        }
        out->len += (size_t)r + extra;
        out->count++;
    }
    return n;
}

KPY_API void kpy_kcp_stats(const struct kpy_kcp *o, uint64_t *out);
void kpy_kcp_stats(const struct kpy_kcp *o, uint64_t *out)
{
    struct kcp_stats st;
    kcp_get_stats(o->k, &st);
    fields_get_u64(kcp_stat_fields, tables[KPY_KCP_STATS].n, &st, out);
}

/* A free-standing queue (receive buffers on the Python side). */
KPY_API struct kpy_queue *kpy_queue_new(void);
struct kpy_queue *kpy_queue_new(void)
{
    return calloc(1, sizeof(struct kpy_queue));
}

KPY_API void kpy_queue_free(struct kpy_queue *q);
void kpy_queue_free(struct kpy_queue *q)
{
    if (!q)
        return;
    queue_release(q);
    free(q);
}

/* ---- crypt ---------------------------------------------------------------------------------- */

struct kpy_crypt {
    struct crypt *c;
    struct crypt_rng *rng;
};

/* Creates a crypt object with its own nonce generator. On failure returns NULL, with *|err|
 * set and the reason in |msg|. */
KPY_API struct kpy_crypt *kpy_crypt_new(const char *method, const char *password, int role,
                                        int *err, char *msg, size_t cap);
struct kpy_crypt *kpy_crypt_new(const char *method, const char *password, int role, int *err,
                                char *msg, size_t cap)
{
    *err = 0;
    if (cap)
        msg[0] = '\0';
    if (role < 0 || role >= CRYPT_ROLE_COUNT) {
        *err = ERR_INVAL;
        snprintf(msg, cap, "role must be client or server");
        return NULL;
    }
    if (crypt_lib_init() != 0) {
        *err = ERR_INVAL;
        snprintf(msg, cap, "crypto libraries failed to initialise");
        return NULL;
    }
    struct kpy_crypt *o = calloc(1, sizeof(*o));
    if (!o || !(o->rng = crypt_rng_new())) {
        free(o);
        *err = ERR_NOMEM;
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    o->c = crypt_new(method, password, crypt_rng_fill, o->rng, err);
    if (!o->c) {
        crypt_error(method, *err, msg, cap);
        crypt_rng_free(o->rng);
        free(o);
        return NULL;
    }
    crypt_set_role(o->c, (enum crypt_role)role);
    return o;
}

KPY_API void kpy_crypt_free(struct kpy_crypt *o);
void kpy_crypt_free(struct kpy_crypt *o)
{
    if (!o)
        return;
    crypt_free(o->c);
    crypt_rng_free(o->rng);
    free(o);
}

KPY_API struct crypt *kpy_crypt_obj(struct kpy_crypt *o);
struct crypt *kpy_crypt_obj(struct kpy_crypt *o)
{
    return o->c;
}

KPY_API void kpy_crypt_stats(const struct kpy_crypt *o, uint64_t *out);
void kpy_crypt_stats(const struct kpy_crypt *o, uint64_t *out)
{
    fields_get_u64(crypt_stat_fields, tables[KPY_CRYPT_STATS].n, crypt_get_stats(o->c), out);
}

/* ---- link ----------------------------------------------------------------------------------- */

struct kpy_link {
    struct link *l;
    struct kpy_queue out;
    char log[256];
    unsigned log_count;
};

KPY_API struct link_config *kpy_link_config_new(void);
struct link_config *kpy_link_config_new(void)
{
    struct link_config *c = calloc(1, sizeof(*c));
    if (c)
        link_config_default(c);
    return c;
}

KPY_API void kpy_link_config_free(struct link_config *c);
void kpy_link_config_free(struct link_config *c)
{
    free(c);
}

KPY_API int kpy_link_config_set(struct link_config *c, const char *name, int64_t v);
int kpy_link_config_set(struct link_config *c, const char *name, int64_t v)
{
    return field_set(link_cfg_fields, sizeof(link_cfg_signed), link_cfg_signed, c, name, v);
}

KPY_API int kpy_link_config_get(const struct link_config *c, const char *name, int64_t *v);
int kpy_link_config_get(const struct link_config *c, const char *name, int64_t *v)
{
    return field_get(link_cfg_fields, sizeof(link_cfg_signed), link_cfg_signed, c, name, v);
}

static void link_out_cb(void *user, const uint8_t *dgram, size_t len)
{
    queue_put_framed(user, dgram, len);
}

static void link_log_cb(void *user, const char *msg)
{
    struct kpy_link *o = user;
    snprintf(o->log, sizeof(o->log), "%s", msg);
    o->log_count++;
}

KPY_API struct kpy_link *kpy_link_new(uint32_t conv, const struct link_config *cfg,
                                      struct kpy_crypt *crypt, int *err);
struct kpy_link *kpy_link_new(uint32_t conv, const struct link_config *cfg,
                              struct kpy_crypt *crypt, int *err)
{
    struct kpy_link *o = calloc(1, sizeof(*o));
    if (!o) {
        *err = ERR_NOMEM;
        return NULL;
    }
    struct link_config c = *cfg;
    c.log = link_log_cb;
    c.log_user = o;
    o->l = link_new(conv, &c, crypt->c, link_out_cb, &o->out, err);
    if (!o->l) {
        free(o);
        return NULL;
    }
    return o;
}

KPY_API void kpy_link_free(struct kpy_link *o);
void kpy_link_free(struct kpy_link *o)
{
    if (!o)
        return;
    link_free(o->l);
    queue_release(&o->out);
    free(o);
}

KPY_API struct link *kpy_link_obj(struct kpy_link *o);
struct link *kpy_link_obj(struct kpy_link *o)
{
    return o->l;
}

KPY_API struct kpy_queue *kpy_link_queue(struct kpy_link *o);
struct kpy_queue *kpy_link_queue(struct kpy_link *o)
{
    return &o->out;
}

/* The last logged message and how many there were (0: none). */
KPY_API unsigned kpy_link_log(const struct kpy_link *o, const char **msg);
unsigned kpy_link_log(const struct kpy_link *o, const char **msg)
{
    *msg = o->log;
    return o->log_count;
}

struct link_batch_ctx {
    struct link *l;
    uint64_t now;
    uint8_t scratch[CRYPT_MAX_DATAGRAM];
    long errors;
};

static void link_batch_one(void *ctx, const uint8_t *p, size_t len)
{
    struct link_batch_ctx *c = ctx;
    if (len > sizeof(c->scratch)) {
        c->errors++;
        return;
    }
    memcpy(c->scratch, p, len);
    if (link_input(c->l, c->scratch, len, c->now) != 0)
        c->errors++;
}

/* Feeds every datagram of a framed batch (copied: link_input opens in place). Returns the
 * number of datagrams, or ERR_PROTO for broken framing; *|errors| counts refused ones. */
KPY_API long kpy_link_input_batch(struct kpy_link *o, const uint8_t *batch, size_t len,
                                  uint64_t now_ms, long *errors);
long kpy_link_input_batch(struct kpy_link *o, const uint8_t *batch, size_t len, uint64_t now_ms,
                          long *errors)
{
    struct link_batch_ctx *c = malloc(sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->l = o->l;
    c->now = now_ms;
    c->errors = 0;
    long n = walk_batch(batch, len, link_batch_one, c);
    *errors = c->errors;
    free(c);
    return n;
}

/* Feeds one datagram (copied). Returns link_input's result, ERR_TOOBIG past 1500 bytes. */
KPY_API int kpy_link_input(struct kpy_link *o, const uint8_t *dgram, size_t len, uint64_t now_ms);
int kpy_link_input(struct kpy_link *o, const uint8_t *dgram, size_t len, uint64_t now_ms)
{
    uint8_t buf[CRYPT_MAX_DATAGRAM];
    if (len > sizeof(buf))
        return ERR_TOOBIG;
    memcpy(buf, dgram, len);
    return link_input(o->l, buf, len, now_ms);
}

/* Appends all readable bytes to |out| (raw). Returns the byte count or ERR_NOMEM. */
KPY_API long kpy_link_recv_all(struct kpy_link *o, struct kpy_queue *out);
long kpy_link_recv_all(struct kpy_link *o, struct kpy_queue *out)
{
    long n = 0;
    size_t avail;
    while ((avail = link_recv_avail(o->l)) > 0) {
        if (queue_reserve(out, avail) != 0)
            return ERR_NOMEM;
        ssize_t r = link_recv(o->l, out->buf + out->len, avail);
        if (r <= 0)
            break;
        out->len += (size_t)r;
        n += (long)r;
    }
    return n;
}

KPY_API void kpy_link_stats(const struct kpy_link *o, uint64_t *out);
void kpy_link_stats(const struct kpy_link *o, uint64_t *out)
{
    struct link_stats st;
    link_get_stats(o->l, &st);
    fields_get_u64(link_stat_fields, tables[KPY_LINK_STATS].n, &st, out);
}

/* ---- mux ------------------------------------------------------------------------------------ */

enum kpy_mux_event {
    KPY_EV_OPEN = 1,
    KPY_EV_READABLE = 2,
    KPY_EV_WRITABLE = 3,
    KPY_EV_FIN = 4,
    KPY_EV_CLOSE = 5,
};

struct kpy_mux {
    struct mux *m;
    struct kpy_queue out;    /* raw frame bytes for the layer below */
    struct kpy_queue events; /* LE32 kind | LE32 sid records */
    const char *close_reason;
};

KPY_API struct mux_config *kpy_mux_config_new(void);
struct mux_config *kpy_mux_config_new(void)
{
    struct mux_config *c = calloc(1, sizeof(*c));
    if (c)
        mux_config_default(c);
    return c;
}

KPY_API void kpy_mux_config_free(struct mux_config *c);
void kpy_mux_config_free(struct mux_config *c)
{
    free(c);
}

KPY_API int kpy_mux_config_set(struct mux_config *c, const char *name, int64_t v);
int kpy_mux_config_set(struct mux_config *c, const char *name, int64_t v)
{
    return field_set(mux_cfg_fields, sizeof(mux_cfg_signed), mux_cfg_signed, c, name, v);
}

KPY_API int kpy_mux_config_get(const struct mux_config *c, const char *name, int64_t *v);
int kpy_mux_config_get(const struct mux_config *c, const char *name, int64_t *v)
{
    return field_get(mux_cfg_fields, sizeof(mux_cfg_signed), mux_cfg_signed, c, name, v);
}

static int mux_out_cb(void *user, const uint8_t *frame, size_t len)
{
    struct kpy_mux *o = user;
    return queue_put_raw(&o->out, frame, len);
}

static void mux_event(struct kpy_mux *o, uint32_t kind, uint32_t sid)
{
    uint8_t r[8];
    for (int i = 0; i < 4; i++) {
        r[i] = (uint8_t)(kind >> (8 * i));
        r[4 + i] = (uint8_t)(sid >> (8 * i));
    }
    queue_put_raw(&o->events, r, sizeof(r));
}

static void mux_on_open(void *user, uint32_t sid)
{
    mux_event(user, KPY_EV_OPEN, sid);
}

static void mux_on_readable(void *user, uint32_t sid)
{
    mux_event(user, KPY_EV_READABLE, sid);
}

static void mux_on_writable(void *user, uint32_t sid)
{
    mux_event(user, KPY_EV_WRITABLE, sid);
}

static void mux_on_fin(void *user, uint32_t sid)
{
    mux_event(user, KPY_EV_FIN, sid);
}

static void mux_on_close(void *user, const char *reason)
{
    struct kpy_mux *o = user;
    o->close_reason = reason;
    mux_event(o, KPY_EV_CLOSE, 0);
}

KPY_API struct kpy_mux *kpy_mux_new(const struct mux_config *cfg, bool is_client,
                                    uint64_t now_ms);
struct kpy_mux *kpy_mux_new(const struct mux_config *cfg, bool is_client, uint64_t now_ms)
{
    struct kpy_mux *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    struct mux_callbacks cb = {
        .output = mux_out_cb,
        .on_stream_open = mux_on_open,
        .on_stream_readable = mux_on_readable,
        .on_stream_writable = mux_on_writable,
        .on_stream_fin = mux_on_fin,
        .on_close = mux_on_close,
    };
    o->m = mux_new(cfg, is_client, &cb, o, now_ms);
    if (!o->m) {
        free(o);
        return NULL;
    }
    return o;
}

KPY_API void kpy_mux_free(struct kpy_mux *o);
void kpy_mux_free(struct kpy_mux *o)
{
    if (!o)
        return;
    mux_free(o->m);
    queue_release(&o->out);
    queue_release(&o->events);
    free(o);
}

KPY_API struct mux *kpy_mux_obj(struct kpy_mux *o);
struct mux *kpy_mux_obj(struct kpy_mux *o)
{
    return o->m;
}

KPY_API struct kpy_queue *kpy_mux_queue(struct kpy_mux *o, int which);
struct kpy_queue *kpy_mux_queue(struct kpy_mux *o, int which)
{
    return which ? &o->events : &o->out;
}

KPY_API const char *kpy_mux_close_reason(const struct kpy_mux *o);
const char *kpy_mux_close_reason(const struct kpy_mux *o)
{
    return o->close_reason;
}

/* Reads everything buffered on stream |sid| into |out| (raw). Returns the byte count, 0 at
 * end of stream, or mux_stream_read's error (ERR_AGAIN: nothing yet). */
KPY_API long kpy_mux_read_all(struct kpy_mux *o, uint32_t sid, struct kpy_queue *out);
long kpy_mux_read_all(struct kpy_mux *o, uint32_t sid, struct kpy_queue *out)
{
    long n = 0;
    for (;;) {
        size_t avail = mux_stream_buffered(o->m, sid);
        size_t want = avail ? avail : 1;
        if (queue_reserve(out, want) != 0)
            return n ? n : ERR_NOMEM;
        ssize_t r = mux_stream_read(o->m, sid, out->buf + out->len, want);
        if (r <= 0)
            return n ? n : (long)r;
        out->len += (size_t)r;
        n += (long)r;
        if (!avail)
            return n;
    }
}

KPY_API void kpy_mux_stats(const struct kpy_mux *o, uint64_t *out);
void kpy_mux_stats(const struct kpy_mux *o, uint64_t *out)
{
    struct mux_stats st;
    mux_get_stats(o->m, &st);
    fields_get_u64(mux_stat_fields, tables[KPY_MUX_STATS].n, &st, out);
}

/* ---- compression (kcptun's snappy framing) -------------------------------------------------- */

static int comp_out_cb(void *user, const uint8_t *p, size_t len)
{
    return queue_put_raw(user, p, len);
}

/* Frames |len| bytes into |out| (raw). Returns the framed byte count or an ERR_*. */
KPY_API long kpy_comp_encode(struct comp_encoder *enc, const uint8_t *in, size_t len,
                             struct kpy_queue *out);
long kpy_comp_encode(struct comp_encoder *enc, const uint8_t *in, size_t len,
                     struct kpy_queue *out)
{
    return (long)comp_encode(enc, in, len, comp_out_cb, out);
}

/* Decodes all of |len| framed bytes into |out| (raw). Returns the decoded byte count, or
 * ERR_PROTO (corrupt stream; sticky: every later call fails too) or ERR_NOMEM. */
KPY_API long kpy_comp_decode(struct comp_decoder *dec, const uint8_t *in, size_t len,
                             struct kpy_queue *out);
long kpy_comp_decode(struct comp_decoder *dec, const uint8_t *in, size_t len,
                     struct kpy_queue *out)
{
    long n = 0;
    if (comp_decoder_fault(dec) != COMP_FAULT_NONE)
        return ERR_PROTO;
    for (;;) {
        const uint8_t *p;
        size_t avail = comp_decoder_peek(dec, &p);
        if (avail) {
            if (queue_put_raw(out, p, avail) != 0)
                return ERR_NOMEM;
            comp_decoder_consume(dec, avail);
            n += (long)avail;
        }
        if (len == 0)
            return n;
        ssize_t r = comp_decoder_input(dec, in, len);
        if (r < 0 && r != ERR_AGAIN)
            return (long)r;
        if (r > 0) {
            in += r;
            len -= (size_t)r;
        }
    }
}

/* Why the decoder failed, or NULL while it is healthy. */
KPY_API const char *kpy_comp_fault(const struct comp_decoder *dec);
const char *kpy_comp_fault(const struct comp_decoder *dec)
{
    enum comp_fault f = comp_decoder_fault(dec);
    return f == COMP_FAULT_NONE ? NULL : comp_fault_str(f);
}

/* ---- QPP (kcptun --QPP) ---------------------------------------------------------------------- */

/* Builds QPP pads from the raw key |seed|, |count| pads of |variant| ("A", "B" or "C").
 * Returns NULL with *|err| set on failure. */
KPY_API struct qpp *kpy_qpp_new(const uint8_t *seed, size_t seed_len, unsigned count,
                                const char *variant, int *err);
struct qpp *kpy_qpp_new(const uint8_t *seed, size_t seed_len, unsigned count,
                        const char *variant, int *err)
{
    enum qpp_variant v;
    if (qpp_variant_parse(variant, &v) != 0) {
        *err = ERR_INVAL;
        return NULL;
    }
    return qpp_new(seed, seed_len, count, v, err);
}

/* Sets the pads a mux config uses (NULL: QPP off); |q| must outlive every session. */
KPY_API void kpy_mux_config_set_qpp(struct mux_config *c, const struct qpp *q);
void kpy_mux_config_set_qpp(struct mux_config *c, const struct qpp *q)
{
    c->qpp = q;
}
