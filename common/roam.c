/* SPDX-License-Identifier: MIT */
/* When a server session follows its peer to a new address: the decision, without I/O. */
#include "common/roam.h"

#include "common/kcp.h"
#include "common/wire.h"
#include "crypto/crypt.h"
#include "fec/fec.h"

#include <string.h>

enum roam_mode roam_mode_of(const struct crypt *c)
{
    return c && strcmp(crypt_method(c), CRYPT_SECURE_METHOD) == 0 ? ROAM_MODE_SECURE
                                                                 : ROAM_MODE_COMPAT;
}

void roam_init(struct roam *r, enum roam_mode mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
}

/* a >= b on a 32-bit millisecond clock that wraps (as KCP compares timestamps) */
static bool ts_ge(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0;
}

void roam_scan(const uint8_t *p, size_t len, uint32_t conv, struct roam_scan *out)
{
    memset(out, 0, sizeof(*out));
    if (fec_is_fec_packet(p, len)) {
        /* seqid LE32 | type LE16 | size LE16 (2 + KCP bytes) | KCP bytes */
        if (len < FEC_HEADER_LEN || rd_u16le(p + 4) != FEC_TYPE_DATA)
            return; /* parity carries no segment of its own */
        size_t size = rd_u16le(p + 6);
        if (size < 2 || size - 2 > len - FEC_HEADER_LEN)
            return;
        p += FEC_HEADER_LEN;
        len = size - 2;
    }
    const uint8_t *end = p + len;
    struct kcp_seg_hdr h;
    while (kcp_seg_hdr_decode(&p, end, &h) == 0 && h.conv == conv &&
           h.len <= (size_t)(end - p)) {
        if (h.cmd == KCP_CMD_PUSH) {
            if (!out->has_push || ts_ge(h.ts, out->push_ts))
                out->push_ts = h.ts;
            out->has_push = true;
        } else if (h.cmd == KCP_CMD_ACK) {
            if (!out->has_ack || ts_ge(h.ts, out->ack_ts))
                out->ack_ts = h.ts;
            out->has_ack = true;
        }
        p += h.len;
    }
}

void roam_observe(struct roam *r, const struct roam_scan *s)
{
    if (s->has_push && (!r->seen_push || ts_ge(s->push_ts, r->max_push_ts))) {
        r->max_push_ts = s->push_ts;
        r->seen_push = true;
    }
    if (s->has_ack && (!r->seen_ack || ts_ge(s->ack_ts, r->max_ack_ts))) {
        r->max_ack_ts = s->ack_ts;
        r->seen_ack = true;
    }
}

bool roam_is_newest(const struct roam *r, const struct roam_scan *s)
{
    return (s->has_push && (!r->seen_push || ts_ge(s->push_ts, r->max_push_ts))) ||
           (s->has_ack && (!r->seen_ack || ts_ge(s->ack_ts, r->max_ack_ts)));
}

static enum roam_verdict decide(struct roam *r, const struct roam_facts *f, uint64_t now_ms)
{
    if (f->parity_only || !roam_is_newest(r, &f->scan))
        return ROAM_IGNORE;
    if (r->mode == ROAM_MODE_SECURE)
        return f->authenticated ? ROAM_MOVE : ROAM_IGNORE;
    if (f->advanced)
        return ROAM_MOVE;
    if (!f->scan.has_push)
        return ROAM_IGNORE;
    if (r->probed && now_ms - r->last_probe_ms < ROAM_PROBE_GAP_MS)
        return ROAM_IGNORE;
    r->probed = true;
    r->last_probe_ms = now_ms;
    return ROAM_PROBE;
}

enum roam_verdict roam_decide(struct roam *r, const struct roam_facts *f, uint64_t now_ms)
{
    enum roam_verdict v = decide(r, f, now_ms);
    if (v == ROAM_MOVE)
        r->moves++;
    else if (v == ROAM_PROBE)
        r->probes++;
    else
        r->ignored++;
    return v;
}

const char *roam_verdict_name(enum roam_verdict v)
{
    switch (v) {
    case ROAM_MOVE:
        return "move";
    case ROAM_PROBE:
        return "probe";
    default:
        return "ignore";
    }
}

void roam_path_init(struct roam_path *p, uint64_t now_ms)
{
    memset(p, 0, sizeof(*p));
    p->rx_ms = now_ms;
}

bool roam_path_answered(struct roam_path *p, uint64_t now_ms)
{
    bool was = p->tries > 0;
    p->answered = true;
    p->rx_ms = now_ms;
    p->tries = 0;
    return was;
}

void roam_path_outstanding(struct roam_path *p, uint64_t now_ms, bool outstanding)
{
    if (outstanding && !p->outstanding && now_ms > p->rx_ms)
        p->rx_ms = now_ms;
    p->outstanding = outstanding;
}

void roam_path_late(struct roam_path *p, uint64_t now_ms, uint64_t late_ms, uint32_t rto_ms)
{
    if (late_ms <= rto_ms || now_ms <= p->rx_ms)
        return;
    /* the stall is [now - late, now]; only its part after rx_ms was counted as silence */
    uint64_t take = now_ms - p->rx_ms < late_ms ? now_ms - p->rx_ms : late_ms;
    p->rx_ms += take;
    p->stalls++;
    p->stalled_ms += take;
}

uint64_t roam_path_deadline(const struct roam_path *p, bool outstanding, uint32_t rto_ms)
{
    if (!outstanding || !p->answered)
        return UINT64_MAX;
    uint64_t after = (uint64_t)rto_ms * ROAM_PATH_RTOS;
    return p->rx_ms + (after > ROAM_PATH_MIN_MS ? after : ROAM_PATH_MIN_MS);
}

enum roam_path_action roam_path_check(struct roam_path *p, uint64_t now_ms, bool outstanding,
                                      uint32_t rto_ms)
{
    roam_path_outstanding(p, now_ms, outstanding);
    if (now_ms < roam_path_deadline(p, outstanding, rto_ms))
        return ROAM_PATH_WAIT;
    if (p->tries >= ROAM_PATH_TRIES)
        return ROAM_PATH_GONE;
    p->tries++;
    p->replaced++;
    p->rx_ms = now_ms;
    return ROAM_PATH_REPLACE;
}
