/* SPDX-License-Identifier: MIT */
/* Pure core: datagram records and the duplicate filter (see dgram.h). */
#include "common/dgram.h"

#include "common/err.h"
#include "common/wire.h"

#include <string.h>

size_t dgram_rec_len(size_t target_len, size_t len)
{
    return EXT_REC_HDR + DGRAM_FIXED + (target_len ? 1 + target_len : 0) + len;
}

size_t dgram_put(uint8_t *p, uint32_t flow, uint32_t seq, const uint8_t *target,
                 size_t target_len, const uint8_t *data, size_t len)
{
    size_t total = dgram_rec_len(target_len, len);
    uint8_t *q = ext_put_rec(p, EXT_DGRAM, total - EXT_REC_HDR);
    q = put_u32le(q, flow);
    q = put_u32le(q, seq);
    q = put_u8(q, target_len ? DGRAM_F_TARGET : target ? DGRAM_F_DEFAULT : 0);
    if (target_len) {
        q = put_u8(q, (uint8_t)target_len);
        memcpy(q, target, target_len);
        q += target_len;
    }
    if (len)
        memcpy(q, data, len);
    return total;
}

int dgram_parse(const struct ext_rec *r, struct dgram *d)
{
    const uint8_t *p = r->val;
    const uint8_t *end = r->val + r->len;
    memset(d, 0, sizeof(*d));
    if (get_u32le(&p, end, &d->flow) || get_u32le(&p, end, &d->seq) ||
        get_u8(&p, end, &d->flags) || (d->flags & ~(DGRAM_F_TARGET | DGRAM_F_DEFAULT)) ||
        d->flags == (DGRAM_F_TARGET | DGRAM_F_DEFAULT))
        return ERR_PROTO;
    if (d->flags & DGRAM_F_DEFAULT)
        d->target = (const uint8_t *)"";
    if (d->flags & DGRAM_F_TARGET) {
        uint8_t tlen;
        if (get_u8(&p, end, &tlen) || tlen == 0 || (size_t)(end - p) < tlen)
            return ERR_PROTO;
        d->target = p;
        d->target_len = tlen;
        p += tlen;
    }
    d->data = p;
    d->len = (size_t)(end - p);
    return 0;
}

static uint64_t *win_word(struct dgram_window *w, uint32_t seq)
{
    return &w->bits[(seq % DGRAM_WINDOW) / 64];
}

static uint64_t win_bit(uint32_t seq)
{
    return (uint64_t)1 << (seq % 64);
}

bool dgram_window_accept(struct dgram_window *w, uint32_t seq)
{
    if (!w->any) {
        w->any = true;
        w->top = seq;
        memset(w->bits, 0, sizeof(w->bits));
        *win_word(w, seq) |= win_bit(seq);
        return true;
    }
    uint32_t ahead = seq - w->top;
    if (ahead != 0 && ahead < 0x80000000u) {
        /* a new top: forget the sequence numbers that fall out of the window */
        if (ahead >= DGRAM_WINDOW) {
            memset(w->bits, 0, sizeof(w->bits));
        } else {
            for (uint32_t s = w->top + 1; s != seq + 1; s++) {
                *win_word(w, s) &= ~win_bit(s);
            }
        }
        w->top = seq;
        *win_word(w, seq) |= win_bit(seq);
        return true;
    }
    uint32_t behind = w->top - seq;
    if (behind >= DGRAM_WINDOW)
        return false;
    uint64_t *word = win_word(w, seq);
    if (*word & win_bit(seq))
        return false;
    *word |= win_bit(seq);
    return true;
}
