/* SPDX-License-Identifier: MIT */
/* Fake TCP (kcptun's --tcp): segment codec and per-flow sequence bookkeeping. */
#include "common/tcpraw.h"

#include <stdlib.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int tcpraw_parse(const uint8_t *p, size_t len, struct tcpraw_seg *seg)
{
    if (len < TCPRAW_TCP_HDR)
        return -1;
    size_t hl = (size_t)(p[12] >> 4) * 4u;
    if (hl < TCPRAW_TCP_HDR || hl > len)
        return -1;
    seg->sport = rd16(p);
    seg->dport = rd16(p + 2);
    seg->seq = rd32(p + 4);
    seg->ack = rd32(p + 8);
    seg->flags = (uint8_t)(p[13] & 0x3fu);
    seg->window = rd16(p + 14);
    seg->hdr_len = hl;
    seg->payload = p + hl;
    seg->len = len - hl;
    return 0;
}

int tcpraw_parse_ip4(const uint8_t *p, size_t len, struct tcpraw_addr *src,
                     struct tcpraw_addr *dst, struct tcpraw_seg *seg)
{
    if (len < TCPRAW_IP4_HDR || (p[0] >> 4) != 4)
        return -1;
    size_t ihl = (size_t)(p[0] & 0x0fu) * 4u;
    size_t total = rd16(p + 2);
    if (ihl < TCPRAW_IP4_HDR || total < ihl || ihl > len)
        return -1;
    if (total < len) /* link-layer padding */
        len = total;
    else if (total > len)
        return -1;
    if (p[9] != 6) /* not TCP */
        return -1;
    if ((rd16(p + 6) & 0x3fffu) != 0) /* MF set or a fragment offset */
        return -1;
    if (tcpraw_parse(p + ihl, len - ihl, seg) != 0)
        return -1;
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    src->family = dst->family = 4;
    memcpy(src->ip, p + 12, 4);
    memcpy(dst->ip, p + 16, 4);
    src->port = seg->sport;
    dst->port = seg->dport;
    return 0;
}

/* One's-complement sum of |len| bytes as big-endian 16-bit words (an odd last byte padded),
 * added to |acc| unfolded. Big-endian 32-bit words sum to the same value modulo 0xffff, with
 * half the additions; 64 bits hold any segment's sum without a carry lost. */
static uint64_t sum16(uint64_t acc, const uint8_t *p, size_t len)
{
    for (; len >= 4; p += 4, len -= 4)
        acc += rd32(p);
    if (len >= 2) {
        acc += rd16(p);
        p += 2;
        len -= 2;
    }
    if (len)
        acc += (uint32_t)p[0] << 8;
    return acc;
}

static uint16_t fold(uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)~acc;
}

static size_t ip_len(const struct tcpraw_addr *a)
{
    return a->family == 6 ? 16u : 4u;
}

uint16_t tcpraw_checksum(const struct tcpraw_addr *src, const struct tcpraw_addr *dst,
                         const uint8_t *seg, size_t len)
{
    uint64_t acc = 0;
    acc = sum16(acc, src->ip, ip_len(src));
    acc = sum16(acc, dst->ip, ip_len(dst));
    /* pseudo-header: zero, protocol 6, TCP length (32 bits for IPv6, 16 for IPv4) */
    acc += 6u;
    acc += (uint64_t)(len & 0xffffu) + (uint64_t)((len >> 16) & 0xffffu);
    return fold(sum16(acc, seg, len));
}

size_t tcpraw_build(uint8_t *out, size_t cap, const struct tcpraw_addr *src,
                    const struct tcpraw_addr *dst, uint32_t seq, uint32_t ack, uint8_t flags,
                    uint16_t window, const uint8_t *payload, size_t plen)
{
    size_t n = TCPRAW_TCP_HDR + plen;
    if (cap < n || n > 0xffffu)
        return 0;
    wr16(out, src->port);
    wr16(out + 2, dst->port);
    wr32(out + 4, seq);
    wr32(out + 8, ack);
    out[12] = (uint8_t)(TCPRAW_TCP_HDR / 4u) << 4;
    out[13] = flags;
    wr16(out + 14, window);
    wr16(out + 16, 0); /* checksum, below */
    wr16(out + 18, 0); /* urgent pointer */
    if (plen)
        memmove(out + TCPRAW_TCP_HDR, payload, plen);
    wr16(out + 16, tcpraw_checksum(src, dst, out, n));
    return n;
}

void tcpraw_ip4_header(uint8_t *out, const struct tcpraw_addr *src,
                       const struct tcpraw_addr *dst, size_t seg_len, uint16_t id)
{
    out[0] = 0x45;
    out[1] = 0;
    wr16(out + 2, (uint16_t)(TCPRAW_IP4_HDR + seg_len));
    wr16(out + 4, id);
    wr16(out + 6, 0x4000); /* DF, as tcpraw sends */
    out[8] = 64;
    out[9] = 6;
    wr16(out + 10, 0);
    memcpy(out + 12, src->ip, 4);
    memcpy(out + 16, dst->ip, 4);
    wr16(out + 10, fold(sum16(0, out, TCPRAW_IP4_HDR)));
}

bool tcpraw_addr_equal(const struct tcpraw_addr *a, const struct tcpraw_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, ip_len(a)) == 0;
}

static size_t bucket(const struct tcpraw_addr *a)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < ip_len(a); i++)
        h = (h ^ a->ip[i]) * 16777619u;
    h = (h ^ (a->port & 0xffu)) * 16777619u;
    h = (h ^ (unsigned)(a->port >> 8)) * 16777619u;
    return h % TCPRAW_BUCKETS;
}

/* splitmix64: windows need no cryptographic quality, only variety. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tcpraw_init(struct tcpraw *t, uint16_t port, uint64_t seed, const struct tcpraw_cb *cb)
{
    memset(t, 0, sizeof(*t));
    t->port = port;
    t->port_hi = port;
    t->rng = seed;
    if (cb)
        t->cb = *cb;
}

void tcpraw_free(struct tcpraw *t)
{
    for (size_t b = 0; b < TCPRAW_BUCKETS; b++) {
        struct tcpraw_flow *f = t->table[b];
        while (f) {
            struct tcpraw_flow *n = f->hnext;
            free(f);
            f = n;
        }
        t->table[b] = NULL;
    }
    t->nflows = 0;
}

struct tcpraw_flow *tcpraw_flow_find(const struct tcpraw *t, const struct tcpraw_addr *peer)
{
    for (struct tcpraw_flow *f = t->table[bucket(peer)]; f; f = f->hnext)
        if (tcpraw_addr_equal(&f->peer, peer))
            return f;
    return NULL;
}

struct tcpraw_flow *tcpraw_flow_add(struct tcpraw *t, const struct tcpraw_addr *local,
                                    const struct tcpraw_addr *peer, enum tcpraw_state state,
                                    uint64_t now_ms)
{
    struct tcpraw_flow *f = tcpraw_flow_find(t, peer);
    if (!f) {
        if (t->nflows >= TCPRAW_MAX_FLOWS)
            return NULL;
        f = calloc(1, sizeof(*f));
        if (!f)
            return NULL;
        size_t b = bucket(peer);
        f->hnext = t->table[b];
        t->table[b] = f;
        t->nflows++;
    }
    struct tcpraw_flow *keep = f->hnext;
    memset(f, 0, sizeof(*f));
    f->hnext = keep;
    f->local = *local;
    f->peer = *peer;
    f->state = state;
    f->window = (uint16_t)(TCPRAW_WINDOW_MIN + next_rand(&t->rng) % (0x10000u - TCPRAW_WINDOW_MIN));
    f->last_rx_ms = now_ms;
    return f;
}

void tcpraw_flow_remove(struct tcpraw *t, const struct tcpraw_addr *peer)
{
    struct tcpraw_flow **pp = &t->table[bucket(peer)];
    while (*pp) {
        struct tcpraw_flow *f = *pp;
        if (tcpraw_addr_equal(&f->peer, peer)) {
            *pp = f->hnext;
            free(f);
            t->nflows--;
            return;
        }
        pp = &f->hnext;
    }
}

/* a is after b in sequence space */
static bool seq_after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

static void emit(struct tcpraw *t, const struct tcpraw_flow *f, uint8_t flags,
                 const uint8_t *p, size_t len)
{
    uint8_t *out = t->buf;
    size_t cap = sizeof(t->buf);
    if (t->slot)
        out = t->slot(t->cb.user, f, &cap);
    size_t n = tcpraw_build(out, cap, &f->local, &f->peer, f->snd_seq, f->rcv_next, flags,
                            f->window, p, len);
    if (n == 0) {
        t->st.tx_notready++;
        return;
    }
    t->st.tx_segs++;
    if (t->cb.emit)
        t->cb.emit(t->cb.user, f, out, n);
}

enum tcpraw_rx tcpraw_input(struct tcpraw *t, const struct tcpraw_addr *src,
                            const struct tcpraw_addr *dst, const uint8_t *p, size_t len,
                            uint64_t now_ms)
{
    struct tcpraw_seg seg;
    if (tcpraw_parse(p, len, &seg) != 0) {
        t->st.rx_bad++;
        return TCPRAW_RX_BAD;
    }
    return tcpraw_input_seg(t, src, dst, &seg, now_ms);
}

enum tcpraw_rx tcpraw_input_seg(struct tcpraw *t, const struct tcpraw_addr *src,
                                const struct tcpraw_addr *dst, const struct tcpraw_seg *seg,
                                uint64_t now_ms)
{
    if (seg->dport < t->port || seg->dport > t->port_hi || src->port != seg->sport || dst->port != seg->dport ||
        src->family != dst->family) {
        t->st.rx_foreign++;
        return TCPRAW_RX_IGNORED;
    }
    struct tcpraw_flow *f = tcpraw_flow_find(t, src);
    if (!f) {
        t->st.rx_foreign++;
        return TCPRAW_RX_UNKNOWN;
    }
    t->st.rx_segs++;
    f->last_rx_ms = now_ms;
    if (seg->flags & TCPRAW_RST) {
        t->st.rx_rst++;
        return TCPRAW_RX_CONTROL;
    }
    if (f->state == TCPRAW_CONNECTING) {
        if ((seg->flags & (TCPRAW_SYN | TCPRAW_ACK)) != (TCPRAW_SYN | TCPRAW_ACK))
            return TCPRAW_RX_CONTROL;
        /* The SYN-ACK: our next seq is what it acknowledges, our ack its ISN + 1. The
         * kernel's own ACK never leaves (firewall rule): complete the handshake here. */
        f->snd_seq = seg->ack;
        f->rcv_next = seg->seq + 1u;
        f->have_seq = f->have_ack = true;
        f->state = TCPRAW_OPEN;
        emit(t, f, TCPRAW_ACK, NULL, 0);
        return TCPRAW_RX_CONTROL;
    }
    if (seg->flags & TCPRAW_SYN) {
        uint32_t next = seg->seq + 1u;
        if (!f->have_ack || seq_after(next, f->rcv_next))
            f->rcv_next = next;
        f->have_ack = true;
        if (seg->flags & TCPRAW_ACK) { /* a retransmitted SYN-ACK: answer it again */
            if (!f->have_seq || seq_after(seg->ack, f->snd_seq))
                f->snd_seq = seg->ack;
            f->have_seq = true;
            emit(t, f, TCPRAW_ACK, NULL, 0);
        }
        return TCPRAW_RX_CONTROL;
    }
    if (seg->flags & TCPRAW_ACK) {
        if (!f->have_seq || seq_after(seg->ack, f->snd_seq))
            f->snd_seq = seg->ack;
        f->have_seq = true;
    }
    if (!(seg->flags & TCPRAW_PSH))
        return TCPRAW_RX_CONTROL;
    uint32_t end = seg->seq + (uint32_t)seg->len;
    if (!f->have_ack || seq_after(end, f->rcv_next))
        f->rcv_next = end;
    f->have_ack = true;
    if (seg->len == 0)
        return TCPRAW_RX_IGNORED;
    t->st.rx_data++;
    if (t->cb.deliver)
        t->cb.deliver(t->cb.user, f, seg->payload, seg->len);
    return TCPRAW_RX_DATA;
}

int tcpraw_send(struct tcpraw *t, const struct tcpraw_addr *peer, const uint8_t *p, size_t len)
{
    struct tcpraw_flow *f = tcpraw_flow_find(t, peer);
    if (!f || f->state != TCPRAW_OPEN || !f->have_seq || !f->have_ack ||
        len > sizeof(t->buf) - TCPRAW_TCP_HDR) {
        t->st.tx_notready++;
        return -1;
    }
    emit(t, f, TCPRAW_PSH | TCPRAW_ACK, p, len);
    f->snd_seq += (uint32_t)len;
    return 0;
}

size_t tcpraw_expire(struct tcpraw *t, uint64_t now_ms, uint64_t idle_ms,
                     void (*gone)(void *user, const struct tcpraw_flow *f), void *user)
{
    size_t n = 0;
    for (size_t b = 0; b < TCPRAW_BUCKETS; b++) {
        struct tcpraw_flow **pp = &t->table[b];
        while (*pp) {
            struct tcpraw_flow *f = *pp;
            if (now_ms >= f->last_rx_ms && now_ms - f->last_rx_ms >= idle_ms) {
                *pp = f->hnext;
                if (gone)
                    gone(user, f);
                free(f);
                t->nflows--;
                n++;
                continue;
            }
            pp = &f->hnext;
        }
    }
    return n;
}
