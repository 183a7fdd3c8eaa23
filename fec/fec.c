/* SPDX-License-Identifier: MIT */
/* FEC packet layer (kcp-go 5.6.1 wire format and grouping) with mismatch-safe recovery. */
#include "fec/fec.h"

#include "common/wire.h"
#include "fec/rs.h"

#include <stdlib.h>
#include <string.h>

/* Largest seqid + 1 a sender with |shard_size| uses: groups never straddle the wrap. */
static uint32_t paws_of(uint32_t shard_size)
{
    return 0xFFFFFFFFu / shard_size * shard_size;
}

/* Signed distance a - b between seqids (kcp-go's _itimediff): orders across the wrap. */
static int32_t seq_diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

/* Distance between two seqids on the circle, 0 .. 2^31. */
static uint32_t seq_dist(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;
    return d < 0x80000000u ? d : (uint32_t)0 - d;
}

/* Seqids this far apart never share a decoder window (see rx_insert). */
#define FEC_SEQ_JUMP (1u << 24)

static bool layout_valid(int ds, int ps)
{
    return ds <= 0 || ps <= 0 || ds + ps <= FEC_MAX_SHARDS;
}

bool fec_is_fec_packet(const uint8_t *pkt, size_t len)
{
    if (len < FEC_PARITY_OFFSET)
        return false;
    uint16_t type = rd_u16le(pkt + 4);
    return type == FEC_TYPE_DATA || type == FEC_TYPE_PARITY || type == FEC_TYPE_OOB;
}

/* ---------------------------------------------------------------------------------------
 * Encoder
 */

struct fec_encoder {
    int ds;              /* data shards; 0 = pass-through */
    int ps;              /* parity shards */
    uint32_t paws;       /* seqid wrap point */
    uint32_t next;       /* seqid of the next packet */
    int count;           /* data packets already in the current group */
    int send_ps;         /* parity shards emitted per group (fec_encoder_set_parity) */
    size_t max_len;      /* longest FEC-layer data packet of the current group */
    struct rs *rs;       /* codec */
    uint8_t *bufs;       /* (ds + ps) packet buffers of FEC_MAX_PACKET bytes */
    size_t *lens;        /* FEC-layer length of each data packet of the group */
    uint8_t **shards;    /* ds + ps pointers to the RS shards (buffer + 6) */
};

struct fec_encoder *fec_encoder_new(int data_shards, int parity_shards)
{
    struct fec_encoder *enc = NULL;
    if (!layout_valid(data_shards, parity_shards))
        return NULL;
    enc = calloc(1, sizeof(*enc));
    if (!enc || data_shards <= 0 || parity_shards <= 0)
        return enc;
    size_t total = (size_t)(data_shards + parity_shards);
    enc->ds = data_shards;
    enc->ps = parity_shards;
    enc->send_ps = parity_shards;
    enc->paws = paws_of((uint32_t)total);
    enc->rs = rs_new(data_shards, parity_shards);
    enc->bufs = malloc(total * FEC_MAX_PACKET);
    enc->lens = calloc((size_t)data_shards, sizeof(*enc->lens));
    enc->shards = calloc(total, sizeof(*enc->shards));
    if (!enc->rs || !enc->bufs || !enc->lens || !enc->shards)
        goto out;
    for (size_t i = 0; i < total; i++)
        enc->shards[i] = enc->bufs + i * FEC_MAX_PACKET + FEC_PARITY_OFFSET;
    return enc;
out:
    fec_encoder_free(enc);
    return NULL;
}

void fec_encoder_free(struct fec_encoder *enc)
{
    if (!enc)
        return;
    rs_free(enc->rs);
    free(enc->bufs);
    free(enc->lens);
    free(enc->shards);
    free(enc);
}

size_t fec_encoder_header_len(const struct fec_encoder *enc)
{
    return enc->ds ? FEC_HEADER_LEN : 0;
}

void fec_encoder_set_next_seqid(struct fec_encoder *enc, uint32_t seqid)
{
    if (!enc->ds)
        return;
    uint32_t size = (uint32_t)(enc->ds + enc->ps);
    enc->next = seqid >= enc->paws ? 0 : seqid - seqid % size;
    enc->count = 0;
    enc->max_len = 0;
}

void fec_encoder_set_parity(struct fec_encoder *enc, int parity)
{
    enc->send_ps = parity < 0 ? 0 : parity > enc->ps ? enc->ps : parity;
}

/* Zero-pads the group's data shards, computes parity and emits the first send_ps parity
 * packets; the seqids of the others are skipped. */
static int encode_parity(struct fec_encoder *enc, fec_emit_fn *emit, void *user)
{
    int rc = 0;
    size_t shard_len = enc->max_len - FEC_PARITY_OFFSET;
    if (enc->send_ps == 0) {
        for (int k = 0; k < enc->ps; k++)
            enc->next = (enc->next + 1) % enc->paws;
        enc->count = 0;
        enc->max_len = 0;
        return 0;
    }
    for (int i = 0; i < enc->ds; i++)
        memset(enc->bufs + (size_t)i * FEC_MAX_PACKET + enc->lens[i], 0,
               enc->max_len - enc->lens[i]);
    rs_encode(enc->rs, (const uint8_t *const *)enc->shards, enc->shards + enc->ds, shard_len);
    for (int k = 0; k < enc->ps; k++) {
        uint8_t *p = enc->bufs + (size_t)(enc->ds + k) * FEC_MAX_PACKET;
        uint32_t seqid = enc->next;
        enc->next = (enc->next + 1) % enc->paws; /* kcp-go wraps only here */
        if (k >= enc->send_ps)
            continue;
        put_u16le(put_u32le(p, seqid), FEC_TYPE_PARITY);
        int r = emit(user, p, enc->max_len);
        if (r < 0 && rc == 0)
            rc = r;
    }
    enc->count = 0;
    enc->max_len = 0;
    return rc;
}

int fec_encoder_encode(struct fec_encoder *enc, const uint8_t *kcp_pkt, size_t len,
                       fec_emit_fn *emit, void *user)
{
    if (len == 0)
        return ERR_INVAL;
    if (len + fec_encoder_header_len(enc) > FEC_MAX_PACKET)
        return ERR_TOOBIG;
    if (!enc->ds) {
        int r = emit(user, kcp_pkt, len);
        return r < 0 ? r : 0;
    }

    size_t total = len + FEC_HEADER_LEN;
    uint8_t *p = enc->bufs + (size_t)enc->count * FEC_MAX_PACKET;
    uint8_t *q = put_u32le(p, enc->next++);
    q = put_u16le(q, FEC_TYPE_DATA);
    q = put_u16le(q, (uint16_t)(len + 2)); /* the size field counts itself */
    memcpy(q, kcp_pkt, len);
    enc->lens[enc->count++] = total;
    if (total > enc->max_len)
        enc->max_len = total;

    int rc = emit(user, p, total);
    if (enc->count == enc->ds) {
        int r = encode_parity(enc, emit, user);
        if (rc >= 0)
            rc = r;
    }
    return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------------------------------
 * Decoder
 */

/* Groups remembered as finished (data complete or rebuilt), so that late or duplicated
 * shards of theirs are not stored again: kcp-go would rebuild and deliver such a group a
 * second time when enough of them arrive (always for ds = 1, ps >= 1). */
#define FEC_DONE_SLOTS 64

/* One packet held for recovery. */
struct fec_rx {
    uint8_t *buf;    /* FEC_MAX_PACKET bytes from the pool; the packet from offset 0 */
    uint32_t seqid;  /* FEC seqid */
    uint16_t len;    /* FEC-layer length */
    bool is_data;    /* type 0xF1 */
    uint64_t ts_ms;  /* arrival time */
};

/* A recovered packet waiting to be delivered. */
struct fec_out {
    uint8_t *buf;    /* pool buffer holding the rebuilt shard (size field first) */
    size_t len;      /* shard length */
};

struct fec_decoder {
    int ds;                      /* local data shards; 0 = no recovery */
    int ps;                      /* local parity shards */
    uint32_t size;               /* ds + ps */
    uint32_t paws;               /* seqid wrap point of the local layout */
    size_t rx_limit;             /* window: FEC_RX_MULTI * size */
    struct fec_rx *rx;           /* window ordered by seqid, rx_limit + 1 slots */
    size_t rx_len;               /* entries in rx */
    uint8_t **pool;              /* free packet buffers (stack) */
    size_t pool_len;             /* buffers in pool */
    size_t pool_cap;             /* most buffers ever live: rx_limit + 1 + ps */
    struct rs *rs;               /* codec */
    uint8_t **shards;            /* size scratch pointers for reconstruction */
    bool *present;               /* size scratch flags */
    struct fec_out *out;         /* ps recovered packets of the current input */
    int out_len;                 /* entries in out */
    uint16_t dlo[FEC_MAX_SHARDS + 1]; /* per peer group size S': lowest possible peer ds */
    uint16_t dhi[FEC_MAX_SHARDS + 1]; /* per S': highest possible peer ds (empty if < dlo) */
    uint32_t done[FEC_DONE_SLOTS]; /* begin of recently finished groups, slot = group % n */
    bool done_valid[FEC_DONE_SLOTS]; /* slot in use */
    bool verified;               /* only the local layout remains possible */
    bool mismatch;               /* a packet contradicted the local layout: no recovery */
    fec_log_fn *log;             /* mismatch report, called once */
    void *log_user;              /* argument of log */
    struct fec_stats stats;      /* counters */
};

struct fec_decoder *fec_decoder_new(int data_shards, int parity_shards, fec_log_fn *log,
                                    void *log_user)
{
    struct fec_decoder *dec = NULL;
    if (!layout_valid(data_shards, parity_shards))
        return NULL;
    dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->log = log;
    dec->log_user = log_user;
    if (data_shards <= 0 || parity_shards <= 0)
        return dec;
    dec->ds = data_shards;
    dec->ps = parity_shards;
    dec->size = (uint32_t)(data_shards + parity_shards);
    dec->paws = paws_of(dec->size);
    dec->rx_limit = FEC_RX_MULTI * (size_t)dec->size;
    dec->pool_cap = dec->rx_limit + 1 + (size_t)parity_shards;
    dec->rx = calloc(dec->rx_limit + 1, sizeof(*dec->rx));
    dec->pool = calloc(dec->pool_cap, sizeof(*dec->pool));
    dec->rs = rs_new(data_shards, parity_shards);
    dec->shards = calloc(dec->size, sizeof(*dec->shards));
    dec->present = calloc(dec->size, sizeof(*dec->present));
    dec->out = calloc((size_t)parity_shards, sizeof(*dec->out));
    if (!dec->rx || !dec->pool || !dec->rs || !dec->shards || !dec->present || !dec->out)
        goto out;
    for (uint32_t s = 2; s <= FEC_MAX_SHARDS; s++) {
        dec->dlo[s] = 1;
        dec->dhi[s] = (uint16_t)(s - 1);
    }
    return dec;
out:
    fec_decoder_free(dec);
    return NULL;
}

static void pool_put(struct fec_decoder *dec, uint8_t *buf)
{
    if (dec->pool_len < dec->pool_cap)
        dec->pool[dec->pool_len++] = buf;
    else
        free(buf);
}

static uint8_t *pool_get(struct fec_decoder *dec)
{
    if (dec->pool_len)
        return dec->pool[--dec->pool_len];
    return malloc(FEC_MAX_PACKET);
}

void fec_decoder_free(struct fec_decoder *dec)
{
    if (!dec)
        return;
    for (size_t i = 0; i < dec->rx_len; i++)
        free(dec->rx[i].buf);
    for (size_t i = 0; i < dec->pool_len; i++)
        free(dec->pool[i]);
    rs_free(dec->rs);
    free(dec->rx);
    free(dec->pool);
    free(dec->shards);
    free(dec->present);
    free(dec->out);
    free(dec);
}

const struct fec_stats *fec_decoder_stats(const struct fec_decoder *dec)
{
    return &dec->stats;
}

size_t fec_decoder_pending(const struct fec_decoder *dec)
{
    return dec->rx_len;
}

bool fec_decoder_has_mismatch(const struct fec_decoder *dec)
{
    return dec->mismatch;
}

/* Removes the |n| entries at |idx| from the window, returning their buffers. */
static void rx_remove(struct fec_decoder *dec, size_t idx, size_t n)
{
    for (size_t i = idx; i < idx + n; i++)
        pool_put(dec, dec->rx[i].buf);
    memmove(dec->rx + idx, dec->rx + idx + n, (dec->rx_len - idx - n) * sizeof(*dec->rx));
    dec->rx_len -= n;
}

/* Appends |str| at *|p| without passing |end| - 1; keeps the buffer NUL-terminated.
 * (Cores do no stdio, so the one log line is assembled by hand.) */
static void msg_add(char **p, char *end, const char *str)
{
    while (*str && *p < end - 1)
        *(*p)++ = *str++;
    **p = '\0';
}

static void msg_add_uint(char **p, char *end, uint32_t v)
{
    char digits[11], *d = digits + sizeof(digits) - 1;
    *d = '\0';
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    msg_add(p, end, d);
}

/* Turns recovery off for good after a contradiction, reporting it once. */
static void enter_mismatch(struct fec_decoder *dec, uint32_t seqid, bool is_data)
{
    char msg[400], *p = msg, *end = msg + sizeof(msg);
    dec->stats.mismatch++;
    if (dec->mismatch)
        return;
    dec->mismatch = true;
    if (dec->rx_len)
        rx_remove(dec, 0, dec->rx_len);
    if (!dec->log)
        return;
    if (!dec->ds) {
        msg_add(&p, end, "fec: peer sends FEC packets but local FEC is off (ds/ps 0): "
                         "data passes, nothing is recovered");
    } else {
        msg_add(&p, end, "fec: peer's data/parity layout differs from local ds=");
        msg_add_uint(&p, end, (uint32_t)dec->ds);
        msg_add(&p, end, " ps=");
        msg_add_uint(&p, end, (uint32_t)dec->ps);
        msg_add(&p, end, " (seqid ");
        msg_add_uint(&p, end, seqid);
        msg_add(&p, end, is_data ? " is data" : " is parity");
        msg_add(&p, end, "); recovery disabled: use the same --ds/--ps on both ends (a kcptun "
                         "peer of 2024-01-05..2024-08-28, kcp-go 5.6.6-5.6.15, shifts its "
                         "groups after idle gaps: then nothing is wrong, data still passes)");
    }
    dec->log(dec->log_user, msg);
}

/* True if |seqid| of the given type fits the local layout. */
static bool fits_local(const struct fec_decoder *dec, uint32_t seqid, bool is_data)
{
    return seqid < dec->paws && (seqid % dec->size < (uint32_t)dec->ds) == is_data;
}

/*
 * Layout learning. A kcp-go sender with (D', P') numbers its packets from 0, S' = D' + P'
 * per group, data at seqid mod S' < D', wrapping below paws(S'). For every S' in 2..256 the
 * peer's D' still possible is an interval [dlo, dhi]: a data packet at residue r needs
 * D' > r, a parity packet needs D' <= r. The peer's true layout always stays possible.
 */
static void learn(struct fec_decoder *dec, uint32_t seqid, bool is_data)
{
    int alive = 0;
    for (uint32_t s = 2; s <= FEC_MAX_SHARDS; s++) {
        if (dec->dlo[s] > dec->dhi[s])
            continue;
        if (seqid >= paws_of(s)) {
            dec->dlo[s] = 1;
            dec->dhi[s] = 0;
            continue;
        }
        uint16_t r = (uint16_t)(seqid % s);
        if (is_data && dec->dlo[s] < r + 1)
            dec->dlo[s] = (uint16_t)(r + 1);
        else if (!is_data && dec->dhi[s] > r)
            dec->dhi[s] = r;
        alive += dec->dlo[s] <= dec->dhi[s];
    }
    uint32_t own = dec->size;
    dec->verified = alive == 1 && dec->dlo[own] == dec->ds && dec->dhi[own] == dec->ds;
}

/* True if every layout still possible for the peer gives the group starting at |begin|
 * the local rows: same D' = ds, and |begin| is one of its group starts. Then any peer
 * group size S' >= the highest row used (a parity row seen at a position beyond S' would
 * have ruled S' out), and row r of the coding matrix depends only on (ds, r). */
static bool recovery_safe(const struct fec_decoder *dec, uint32_t begin)
{
    if (dec->verified)
        return true;
    for (uint32_t s = 2; s <= FEC_MAX_SHARDS; s++) {
        if (dec->dlo[s] > dec->dhi[s])
            continue;
        if (dec->dlo[s] != dec->ds || dec->dhi[s] != dec->ds || begin % s != 0)
            return false;
    }
    return true;
}

/* Inserts the packet into the ordered window. Returns its index, -1 for a duplicate, or
 * -2 when no buffer could be allocated. */
static long rx_insert(struct fec_decoder *dec, const uint8_t *pkt, size_t len, uint32_t seqid,
                      bool is_data, uint64_t now_ms)
{
    size_t idx = 0;
    /* The window is ordered by signed seqid differences, which is a total order only while
     * every entry lies within 2^31 of every other. A seqid far from both ends (a peer that
     * restarted its numbering, or a forged packet) therefore starts a new window: the old
     * entries could never join a group with the new ones anyway. */
    if (dec->rx_len && (seq_dist(seqid, dec->rx[0].seqid) >= FEC_SEQ_JUMP ||
                        seq_dist(seqid, dec->rx[dec->rx_len - 1].seqid) >= FEC_SEQ_JUMP))
        rx_remove(dec, 0, dec->rx_len);
    for (size_t i = dec->rx_len; i-- > 0;) {
        if (dec->rx[i].seqid == seqid)
            return -1;
        if (seq_diff(seqid, dec->rx[i].seqid) > 0) {
            idx = i + 1;
            break;
        }
    }
    uint8_t *buf = pool_get(dec);
    if (!buf)
        return -2;
    memcpy(buf, pkt, len);
    memmove(dec->rx + idx + 1, dec->rx + idx, (dec->rx_len - idx) * sizeof(*dec->rx));
    dec->rx[idx] = (struct fec_rx){buf, seqid, (uint16_t)len, is_data, now_ms};
    dec->rx_len++;
    return (long)idx;
}

/* Rebuilds the group's missing data shards (present[] and shards[] describe the group) into
 * pool buffers queued in out[]. Returns 0 or ERR_NOMEM. */
static int reconstruct(struct fec_decoder *dec, size_t shard_len)
{
    int rc = 0;
    for (int i = 0; i < dec->ds; i++) {
        if (dec->present[i])
            continue;
        uint8_t *buf = pool_get(dec);
        if (!buf) {
            rc = ERR_NOMEM;
            break;
        }
        dec->out[dec->out_len++] = (struct fec_out){buf, shard_len};
        dec->shards[i] = buf;
    }
    if (rc == 0)
        rc = rs_reconstruct_data(dec->rs, dec->shards, dec->present, shard_len);
    if (rc != 0) {
        while (dec->out_len > 0)
            pool_put(dec, dec->out[--dec->out_len].buf);
    }
    return rc;
}

/* Removes the members of the group starting at |begin| from window slots [lo, hi). */
static void rx_remove_group(struct fec_decoder *dec, uint32_t begin, size_t lo, size_t hi)
{
    size_t w = lo;
    for (size_t i = lo; i < hi; i++) {
        if (dec->rx[i].seqid - begin < dec->size)
            pool_put(dec, dec->rx[i].buf);
        else
            dec->rx[w++] = dec->rx[i];
    }
    memmove(dec->rx + w, dec->rx + hi, (dec->rx_len - hi) * sizeof(*dec->rx));
    dec->rx_len -= hi - w;
}

/* After inserting at |idx|: drops the group if its data is complete, or rebuilds its lost
 * data (when safe) if enough shards are there, then drops it (kcp-go's two cases). The
 * group's members lie within size - 1 slots of |idx| (the window is ordered and seqids are
 * unique); membership is tested per entry so that odd peer seqids cannot confuse it. */
static int check_group(struct fec_decoder *dec, size_t idx)
{
    uint32_t begin = dec->rx[idx].seqid - dec->rx[idx].seqid % dec->size;
    size_t lo = idx >= dec->size ? idx - dec->size + 1 : 0;
    size_t hi = idx + dec->size < dec->rx_len ? idx + dec->size : dec->rx_len;
    size_t n = 0, n_data = 0, shard_len = 0;
    int rc = 0;

    memset(dec->present, 0, dec->size * sizeof(*dec->present));
    for (size_t i = lo; i < hi; i++) {
        uint32_t pos = dec->rx[i].seqid - begin;
        if (pos >= dec->size)
            continue;
        if (dec->present[pos])
            continue; /* never count a shard twice, whatever the window holds */
        dec->present[pos] = true;
        dec->shards[pos] = dec->rx[i].buf + FEC_PARITY_OFFSET;
        n++;
        n_data += dec->rx[i].is_data;
        if ((size_t)dec->rx[i].len - FEC_PARITY_OFFSET > shard_len)
            shard_len = (size_t)dec->rx[i].len - FEC_PARITY_OFFSET;
    }
    if (n < (size_t)dec->ds)
        return 0;
    if (n_data < (size_t)dec->ds) {
        /* Not provably the peer's layout yet: keep the group (kcp-go would drop it) so that
         * a later shard of it can retry with more knowledge; the window bounds it. */
        if (!recovery_safe(dec, begin))
            return 0;
        /* Zero-pad every present shard to the longest (kcp-go pads to the longest too). */
        for (size_t i = lo; i < hi; i++) {
            size_t have = (size_t)dec->rx[i].len - FEC_PARITY_OFFSET;
            if (dec->rx[i].seqid - begin < dec->size)
                memset(dec->rx[i].buf + FEC_PARITY_OFFSET + have, 0, shard_len - have);
        }
        rc = reconstruct(dec, shard_len);
    }
    rx_remove_group(dec, begin, lo, hi);
    size_t slot = begin / dec->size % FEC_DONE_SLOTS;
    dec->done[slot] = begin;
    dec->done_valid[slot] = true;
    return rc;
}

/* True if the group of |seqid| was finished recently. */
static bool group_done(const struct fec_decoder *dec, uint32_t seqid)
{
    uint32_t begin = seqid - seqid % dec->size;
    size_t slot = begin / dec->size % FEC_DONE_SLOTS;
    return dec->done_valid[slot] && dec->done[slot] == begin;
}

/* Window bounds: at most rx_limit entries (one insertion per call, so one removal), then
 * entries older than FEC_EXPIRE_MS, checked from the front as kcp-go does. */
static void trim(struct fec_decoder *dec, uint64_t now_ms)
{
    if (dec->rx_len > dec->rx_limit) {
        if (dec->rx[0].is_data)
            dec->stats.short_shards++;
        rx_remove(dec, 0, 1);
    }
    size_t n = 0;
    while (n < dec->rx_len && (int64_t)(now_ms - dec->rx[n].ts_ms) > FEC_EXPIRE_MS)
        n++;
    if (n)
        rx_remove(dec, 0, n);
}

/* Delivers the queued recovered packets after checking their size field, then frees them. */
static void deliver_recovered(struct fec_decoder *dec, fec_deliver_fn *deliver, void *user)
{
    for (int i = 0; i < dec->out_len; i++) {
        const uint8_t *r = dec->out[i].buf;
        size_t len = dec->out[i].len;
        size_t sz = len >= 2 ? rd_u16le(r) : 0;
        if (sz >= 2 && sz <= len) {
            if (deliver(user, r + 2, sz - 2, true) == 0)
                dec->stats.recovered++;
        } else {
            dec->stats.errs++;
        }
        pool_put(dec, dec->out[i].buf);
    }
    dec->out_len = 0;
}

int fec_decoder_input(struct fec_decoder *dec, const uint8_t *pkt, size_t len, uint64_t now_ms,
                      fec_deliver_fn *deliver, void *user)
{
    int rc = 0;
    if (len < FEC_MIN_PACKET)
        return ERR_PROTO;
    if (len > FEC_MAX_PACKET)
        return ERR_TOOBIG;
    if (!fec_is_fec_packet(pkt, len)) {
        deliver(user, pkt, len, false);
        return 0;
    }
    if (rd_u16le(pkt + 4) == FEC_TYPE_OOB) {
        dec->stats.oob++; /* unreliable side channel kcptun never uses: not for KCP */
        return 0;
    }
    uint32_t seqid = rd_u32le(pkt);
    bool is_data = rd_u16le(pkt + 4) == FEC_TYPE_DATA;
    if (!is_data)
        dec->stats.parity_shards++;

    if (!dec->ds || !fits_local(dec, seqid, is_data))
        enter_mismatch(dec, seqid, is_data);
    if (!dec->mismatch && !dec->verified)
        learn(dec, seqid, is_data);
    if (!dec->mismatch && !group_done(dec, seqid)) {
        long idx = rx_insert(dec, pkt, len, seqid, is_data, now_ms);
        if (idx == -2)
            rc = ERR_NOMEM;
        if (idx >= 0)
            rc = check_group(dec, (size_t)idx);
        if (idx != -1) /* kcp-go returns early on a duplicate */
            trim(dec, now_ms);
    }
    if (is_data)
        deliver(user, pkt + FEC_HEADER_LEN, len - FEC_HEADER_LEN, false);
    deliver_recovered(dec, deliver, user);
    return rc;
}
