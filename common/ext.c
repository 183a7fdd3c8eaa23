/* SPDX-License-Identifier: MIT */
/* Pure core: the extension segment and its records (see ext.h, docs/extensions.md). */
#include "common/ext.h"

#include "common/err.h"
#include "common/kcp.h"
#include "common/wire.h"

int ext_seg_parse(const uint8_t *seg, size_t len, uint32_t conv, const uint8_t **body,
                  size_t *body_len)
{
    *body = NULL;
    *body_len = 0;
    if (len < EXT_SEG_HDR)
        return ERR_PROTO;
    uint32_t n = rd_u32le(seg + 20);
    if (seg[4] != EXT_CMD || rd_u32le(seg) != conv || seg[5] != 0 || n > len - EXT_SEG_HDR)
        return ERR_PROTO;
    *body = seg + EXT_SEG_HDR;
    *body_len = n;
    return 0;
}

int ext_split(const uint8_t *pkt, size_t len, uint32_t conv, size_t *kcp_len,
              const uint8_t **body, size_t *body_len)
{
    size_t off = 0;
    *kcp_len = len;
    *body = NULL;
    *body_len = 0;
    while (len - off >= KCP_OVERHEAD) {
        const uint8_t *h = pkt + off;
        uint32_t n = rd_u32le(h + 20);
        if (h[4] == EXT_CMD) {
            *kcp_len = off;
            return ext_seg_parse(h, len - off, conv, body, body_len);
        }
        if (n > len - off - KCP_OVERHEAD)
            return 0; /* KCP's own business (it refuses the packet) */
        off += KCP_OVERHEAD + n;
    }
    return 0;
}

void ext_seg_header(uint8_t *p, uint32_t conv, size_t body_len)
{
    p = put_u32le(p, conv);
    p = put_u8(p, EXT_CMD);
    p = put_u8(p, 0);
    p = put_u16le(p, 0);
    p = put_u32le(p, 0);
    p = put_u32le(p, EXT_SEG_SN);
    p = put_u32le(p, 0);
    put_u32le(p, (uint32_t)body_len);
}

int ext_next(const uint8_t **p, const uint8_t *end, struct ext_rec *r)
{
    if (*p >= end)
        return 0;
    uint8_t type;
    uint16_t vlen;
    const uint8_t *q = *p;
    if (get_u8(&q, end, &type) || get_u16le(&q, end, &vlen) || (size_t)(end - q) < vlen) {
        *p = end;
        return ERR_PROTO;
    }
    r->type = type;
    r->val = q;
    r->len = vlen;
    *p = q + vlen;
    return 1;
}

uint8_t *ext_put_rec(uint8_t *p, uint8_t type, size_t vlen)
{
    p = put_u8(p, type);
    return put_u16le(p, (uint16_t)vlen);
}

size_t ext_put_caps(uint8_t *p, uint8_t type, uint32_t caps)
{
    uint8_t *q = ext_put_rec(p, type, EXT_CAPS_VLEN);
    q = put_u8(q, EXT_VERSION);
    q = put_u32le(q, caps);
    return (size_t)(q - p);
}

int ext_parse_caps(const struct ext_rec *r, uint8_t *version, uint32_t *caps)
{
    if (r->len < EXT_CAPS_VLEN || r->val[0] == 0)
        return ERR_PROTO;
    *version = r->val[0];
    *caps = rd_u32le(r->val + 1);
    return 0;
}

size_t ext_put_flow(uint8_t *p, uint8_t type, uint32_t flow)
{
    uint8_t *q = ext_put_rec(p, type, EXT_FLOW_VLEN);
    q = put_u32le(q, flow);
    return (size_t)(q - p);
}

int ext_parse_flow(const struct ext_rec *r, uint32_t *flow)
{
    if (r->len < EXT_FLOW_VLEN)
        return ERR_PROTO;
    *flow = rd_u32le(r->val);
    return 0;
}
