/* SPDX-License-Identifier: MIT */
/* One KCP session's datagram stack: KCP + FEC + crypt, composed without any I/O. */
#include "common/link.h"

#include "common/err.h"
#include "common/ext.h"
#include "common/util.h"
#include "common/wire.h"
#include "crypto/crypt.h"

#include <stdlib.h>
#include <string.h>

struct link {
    struct kcp *kcp;
    struct fec_encoder *enc;
    struct fec_decoder *dec;
    struct crypt *crypt;        /* borrowed */
    link_output_fn *out;
    void *out_user;
    struct link_config cfg;
    uint64_t now_ms;            /* time of the call in progress (seal needs it in callbacks) */
    struct link_stats st;
    size_t head;                /* crypt head bytes */
    bool fec_on;
    int group_fill;             /* data shards emitted into the current FEC group */
    bool fec_adaptive;          /* parity per group from the measured loss (kcp_fec_parity) */
    uint64_t group_start_ms;    /* when the current group's first data shard left */
    uint32_t group;             /* FEC group number told to KCP (kcp_set_fec_group) */
    uint8_t dgram[CRYPT_MAX_DATAGRAM + CRYPT_MAX_TAIL_LEN]; /* sealing scratch */
    size_t kcp_mtu;             /* largest KCP packet */
    link_ext_fn *ext_fn;        /* received extension segments, may be NULL */
    void *ext_user;
    size_t ext_len;             /* queued record bytes in |ext| */
    uint8_t *ext;               /* kcp_mtu bytes: queued records */
    uint8_t *pkt;               /* kcp_mtu bytes: a KCP packet with its extension segment */
    bool group_close;           /* close groups that hold extension records (link_set_group_close) */
    bool group_ext;             /* the current FEC group holds extension records */
    uint64_t ext_last_ms;       /* when the last extension segment left */
    uint64_t ext_gap_ms;        /* smoothed time between extension segments (0: none yet) */
};

void link_config_default(struct link_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_shards = 10;
    cfg->parity_shards = 3;
    cfg->mtu = 1350;
    cfg->sndwnd = 128;
    cfg->rcvwnd = 512;
    cfg->nodelay = 0;
    cfg->interval_ms = 30;
    cfg->resend = 2;
    cfg->nc = 1;
    cfg->pace = true;
}

static uint64_t wall_ms(const struct link *l)
{
    return (uint64_t)((int64_t)l->now_ms + l->cfg.wall_offset_ms);
}

/* FEC emitted one FEC-layer packet (or a plain KCP packet without FEC): seal and send it. */
static int emit_sealed(void *user, const uint8_t *pkt, size_t len)
{
    struct link *l = user;
    size_t cap = sizeof(l->dgram);
    if (l->head + len > cap) {
        l->st.seal_errs++;
        return ERR_TOOBIG;
    }
    memcpy(l->dgram + l->head, pkt, len);
    ssize_t n = crypt_seal(l->crypt, l->dgram, len, cap, wall_ms(l));
    if (n < 0) {
        l->st.seal_errs++;
        return (int)n;
    }
    if (len >= 6 && fec_is_fec_packet(pkt, len) && rd_u16le(pkt + 4) == FEC_TYPE_PARITY) {
        l->st.fec_parity_out++;
        /* parity is load on the path like the data it protects: the pacer counts it */
        size_t hdr = FEC_HEADER_LEN + KCP_OVERHEAD;
        kcp_fec_parity_sent(l->kcp, l->group, len > hdr ? len - hdr : 0);
    }
    l->st.out_pkts++;
    l->st.out_bytes += (uint64_t)n;
    l->out(l->out_user, l->dgram, (size_t)n);
    return 0;
}

/* True if KCP packet |pkt| carries no data segment (ACKs and window probes only). */
static bool kcp_packet_is_control(const uint8_t *pkt, size_t len)
{
    const uint8_t *p = pkt;
    const uint8_t *end = pkt + len;
    while ((size_t)(end - p) >= KCP_OVERHEAD) {
        uint32_t n = rd_u32le(p + 20);
        if (p[4] == KCP_CMD_PUSH || n > (size_t)(end - p) - KCP_OVERHEAD)
            return false;
        p += KCP_OVERHEAD + n;
    }
    return true;
}

/* Sends a data packet as an FEC data shard; KCP learns each packet's group for its hold. */
static void fec_data_out(struct link *l, const uint8_t *pkt, size_t len, bool ext)
{
    if (l->group_fill == 0)
        l->group_start_ms = l->now_ms;
    l->group_ext |= ext;
    if (l->fec_adaptive && l->group_fill + 1 == l->cfg.data_shards) {
        /* datagrams have no retransmission to fall back on: their groups keep full parity */
        int ps = l->cfg.parity_shards;
        int k = l->group_ext ? ps
                             : kcp_fec_parity(l->kcp, l->cfg.data_shards, ps,
                                              (uint32_t)(l->now_ms - l->group_start_ms));
        fec_encoder_set_parity(l->enc, k);
        kcp_fec_group_closed(l->kcp, l->group, k);
        l->st.fec_parity_skipped += (uint64_t)(ps - k);
    }
    fec_encoder_encode(l->enc, pkt, len, emit_sealed, l);
    if (l->fec_on && ++l->group_fill == l->cfg.data_shards) {
        l->group_fill = 0;
        l->group_ext = false;
        kcp_set_fec_group(l->kcp, ++l->group);
    }
}

/* How long a group holding extension records may stay open: an eighth of the smoothed RTT
 * (at least 2 ms; 10 ms before any sample), so that a datagram FEC rebuilds arrives at most
 * that much after the others; no wait at all when datagrams come further apart than that (the
 * next one would not arrive in time to share the group). */
static uint64_t group_hold_ms(const struct link *l)
{
    uint32_t srtt = kcp_srtt(l->kcp);
    uint64_t budget = srtt ? MAX(srtt / 8u, 2u) : 10u;
    return l->ext_gap_ms > budget ? 0 : budget;
}

/* Completes the current group with empty extension segments (its parity leaves with the
 * last) once it held extension records for group_hold_ms. */
static void group_close_due(struct link *l)
{
    if (!l->group_close || !l->group_ext || l->group_fill == 0 ||
        l->now_ms < l->group_start_ms + group_hold_ms(l))
        return;
    while (l->group_fill != 0) {
        ext_seg_header(l->pkt, kcp_conv(l->kcp), 0);
        l->st.group_fill_out++;
        fec_data_out(l, l->pkt, EXT_SEG_HDR, false);
    }
}

/* Appends the queued records as an extension segment to the |len| bytes at l->pkt and
 * sends the packet as an FEC data shard. */
static void ext_out(struct link *l, size_t len)
{
    if (l->ext_last_ms) {
        uint64_t gap = l->now_ms - l->ext_last_ms;
        l->ext_gap_ms = l->ext_gap_ms ? (l->ext_gap_ms * 7 + gap) / 8 : gap;
    }
    l->ext_last_ms = l->now_ms ? l->now_ms : 1;
    ext_seg_header(l->pkt + len, kcp_conv(l->kcp), l->ext_len);
    memcpy(l->pkt + len + EXT_SEG_HDR, l->ext, l->ext_len);
    len += EXT_SEG_HDR + l->ext_len;
    l->ext_len = 0;
    l->st.ext_out++;
    fec_data_out(l, l->pkt, len, true);
}

/* Sends the queued records in a packet of their own. */
static void ext_flush(struct link *l)
{
    if (l->ext_len)
        ext_out(l, 0);
}

/* With FEC on, a packet of ACKs and probes goes out as a plain KCP packet: parity over it
 * would rebuild it long after it matters (KCP repeats the news in later packets anyway), and
 * kcp-go tells the two kinds apart per packet (docs/protocol.md, FEC layer). Data packets
 * fill the FEC groups; KCP learns each packet's group for its FEC hold. */
/* Queued extension records ride in the packet KCP emits if it has room (then the packet is
 * an FEC data shard, whatever it carries). */
static void kcp_output(void *user, const uint8_t *pkt, size_t len)
{
    struct link *l = user;
    if (l->ext_len && len + EXT_SEG_HDR + l->ext_len <= l->kcp_mtu) {
        memcpy(l->pkt, pkt, len);
        ext_out(l, len);
        return;
    }
    if (!l->fec_on) {
        fec_encoder_encode(l->enc, pkt, len, emit_sealed, l);
        return;
    }
    if (kcp_packet_is_control(pkt, len)) {
        l->st.plain_ctrl_out++;
        emit_sealed(l, pkt, len);
        return;
    }
    fec_data_out(l, pkt, len, false);
}

static int deliver_kcp(void *user, const uint8_t *pkt, size_t len, bool recovered)
{
    struct link *l = user;
    size_t klen;
    const uint8_t *body;
    size_t blen;
    /* one walk: KCP takes its segments and tells where an extension segment starts */
    int rc = kcp_input_until(l->kcp, pkt, len, !recovered, l->now_ms, EXT_CMD, &klen);
    if (klen == len)
        return rc;
    int erc = ext_seg_parse(pkt + klen, len - klen, kcp_conv(l->kcp), &body, &blen);
    if (erc != 0 || !l->ext_fn) {
        l->st.ext_errs++;
        return klen ? rc : ERR_PROTO;
    }
    l->st.ext_in++;
    l->ext_fn(l->ext_user, body, blen, recovered);
    return rc;
}

static void fec_log(void *user, const char *msg)
{
    struct link *l = user;
    if (l->cfg.log)
        l->cfg.log(l->cfg.log_user, msg);
}

void link_set_rcv_grant(struct link *l, kcp_rcv_grant_fn *fn, void *user)
{
    kcp_set_rcv_grant(l->kcp, fn, user);
}

void link_set_fec_adaptive(struct link *l, bool on)
{
    l->fec_adaptive = on && l->fec_on && l->cfg.pace && !l->cfg.fec_fixed;
}

struct link *link_new(uint32_t conv, const struct link_config *cfg, struct crypt *crypt,
                      link_output_fn *out, void *user, int *err)
{
    int rc = ERR_NOMEM;
    struct link *l = calloc(1, sizeof(*l));
    if (!l)
        goto out;
    l->cfg = *cfg;
    l->crypt = crypt;
    l->out = out;
    l->out_user = user;
    l->head = crypt_head_len(crypt);

    bool fec_on = cfg->data_shards > 0 && cfg->parity_shards > 0;
    l->fec_on = fec_on;
    l->fec_adaptive = fec_on && cfg->pace && !cfg->fec_fixed;
    if (fec_on && cfg->data_shards + cfg->parity_shards > FEC_MAX_SHARDS) {
        rc = ERR_INVAL;
        goto out;
    }
    l->enc = fec_encoder_new(cfg->data_shards, cfg->parity_shards);
    l->dec = fec_decoder_new(cfg->data_shards, cfg->parity_shards, fec_log, l);
    l->kcp = kcp_new(conv, kcp_output, l);
    if (!l->enc || !l->dec || !l->kcp)
        goto out;

    size_t reserve = l->head + crypt_tail_len(crypt) + fec_encoder_header_len(l->enc);
    size_t mtu = cfg->mtu > CRYPT_MAX_DATAGRAM ? CRYPT_MAX_DATAGRAM : cfg->mtu;
    if (mtu < reserve + KCP_MTU_MIN || kcp_set_mtu(l->kcp, mtu - reserve) != 0) {
        rc = ERR_INVAL;
        goto out;
    }
    l->kcp_mtu = mtu - reserve;
    l->ext = malloc(l->kcp_mtu);
    l->pkt = malloc(l->kcp_mtu);
    if (!l->ext || !l->pkt)
        goto out;
    kcp_set_stream(l->kcp, !cfg->message_mode);
    kcp_set_nodelay(l->kcp, cfg->nodelay, cfg->interval_ms, cfg->resend, cfg->nc);
    if (kcp_set_window(l->kcp, cfg->sndwnd, cfg->rcvwnd) != 0)
        goto out;
    kcp_set_ack_nodelay(l->kcp, cfg->ack_nodelay);
    kcp_set_rate_limit(l->kcp, cfg->rate_limit);
    kcp_set_pacing(l->kcp, cfg->pace, 0);
    if (fec_on)
        kcp_set_fec_shards(l->kcp, cfg->data_shards, cfg->parity_shards);
    kcp_set_ack_repeat(l->kcp, cfg->pace);
    if (cfg->pace && cfg->rcv_budget > 0) {
        int64_t segs = cfg->rcv_budget / (int64_t)kcp_mss(l->kcp);
        kcp_set_rcv_growth(l->kcp, segs > 0xffff ? 0xffff : (uint32_t)segs);
    }
    if (fec_on && !cfg->no_fec_hold)
        kcp_set_fec_hold(l->kcp, (uint32_t)(cfg->data_shards + cfg->parity_shards));
    rc = 0;
out:
    if (rc) {
        link_free(l);
        l = NULL;
    }
    if (err)
        *err = rc;
    return l;
}

void link_trim(struct link *l)
{
    kcp_trim(l->kcp);
}

void link_free(struct link *l)
{
    if (!l)
        return;
    kcp_free(l->kcp);
    fec_encoder_free(l->enc);
    fec_decoder_free(l->dec);
    free(l->ext);
    free(l->pkt);
    free(l);
}

int link_input(struct link *l, uint8_t *dgram, size_t len, uint64_t now_ms)
{
    const uint8_t *payload;
    l->now_ms = now_ms;
    ssize_t n = crypt_open(l->crypt, dgram, len, wall_ms(l), &payload);
    if (n < 0) {
        l->st.in_pkts++;
        l->st.in_bytes += len;
        l->st.in_errs++;
        return ERR_AUTH;
    }
    return link_input_payload(l, payload, (size_t)n, now_ms);
}

int link_input_payload(struct link *l, const uint8_t *payload, size_t len, uint64_t now_ms)
{
    l->now_ms = now_ms;
    l->st.in_pkts++;
    l->st.in_bytes += len;
    int rc = fec_decoder_input(l->dec, payload, len, now_ms, deliver_kcp, l);
    if (rc == ERR_PROTO || rc == ERR_TOOBIG) {
        l->st.in_errs++;
        return ERR_PROTO;
    }
    return 0;
}

int link_peek(const uint8_t *payload, size_t len, uint32_t *conv, uint32_t *sn,
              bool *is_parity)
{
    size_t off = 0;
    *is_parity = false;
    if (fec_is_fec_packet(payload, len)) {
        if (rd_u16le(payload + 4) == FEC_TYPE_OOB)
            return ERR_PROTO; /* kcp-go out-of-band: opens no session, never reaches KCP */
        if (rd_u16le(payload + 4) == FEC_TYPE_PARITY) {
            *is_parity = true;
            return 0;
        }
        off = FEC_HEADER_LEN;
    }
    if (len < off + KCP_OVERHEAD)
        return ERR_PROTO;
    *conv = rd_u32le(payload + off);
    *sn = rd_u32le(payload + off + 12);
    return 0;
}

int link_send(struct link *l, const uint8_t *data, size_t len)
{
    return kcp_send(l->kcp, data, len);
}

size_t link_send_room(const struct link *l)
{
    return kcp_send_room(l->kcp);
}

size_t link_wait_snd(const struct link *l)
{
    return kcp_wait_snd(l->kcp);
}

ssize_t link_recv(struct link *l, uint8_t *buf, size_t cap)
{
    return kcp_recv(l->kcp, buf, cap);
}

size_t link_recv_avail(const struct link *l)
{
    return kcp_recv_avail(l->kcp);
}

void link_flush(struct link *l, uint64_t now_ms)
{
    l->now_ms = now_ms;
    kcp_flush(l->kcp, now_ms);
    ext_flush(l);
    group_close_due(l);
}

uint64_t link_next_deadline(const struct link *l, uint64_t now_ms)
{
    if (l->ext_len)
        return now_ms;
    if (l->group_close && l->group_ext && l->group_fill)
        return MIN(l->group_start_ms + group_hold_ms(l), kcp_next_deadline(l->kcp, now_ms));
    return kcp_next_deadline(l->kcp, now_ms);
}

void link_tick(struct link *l, uint64_t now_ms)
{
    l->now_ms = now_ms;
    kcp_tick(l->kcp, now_ms);
    ext_flush(l);
    group_close_due(l);
}

void link_set_wall_offset(struct link *l, int64_t wall_offset_ms)
{
    l->cfg.wall_offset_ms = wall_offset_ms;
}

uint32_t link_conv(const struct link *l)
{
    return kcp_conv(l->kcp);
}

bool link_is_dead(const struct link *l)
{
    return kcp_is_dead(l->kcp);
}

uint32_t link_srtt(const struct link *l)
{
    return kcp_srtt(l->kcp);
}

uint32_t link_rto(const struct link *l)
{
    return kcp_rto(l->kcp);
}

void link_snd_seq(const struct link *l, uint32_t *una, uint32_t *nxt)
{
    *una = kcp_snd_una(l->kcp);
    *nxt = kcp_snd_nxt(l->kcp);
}

void link_get_stats(const struct link *l, struct link_stats *out)
{
    *out = l->st;
    kcp_get_stats(l->kcp, &out->kcp);
    out->fec = *fec_decoder_stats(l->dec);
}

void link_set_ext(struct link *l, link_ext_fn *fn, void *user)
{
    l->ext_fn = fn;
    l->ext_user = user;
}

size_t link_ext_room(const struct link *l)
{
    return l->kcp_mtu - EXT_SEG_HDR;
}

int link_ext_queue(struct link *l, const uint8_t *rec, size_t len)
{
    if (len > link_ext_room(l))
        return ERR_TOOBIG;
    if (l->ext_len + len > link_ext_room(l))
        ext_flush(l);
    memcpy(l->ext + l->ext_len, rec, len);
    l->ext_len += len;
    return 0;
}

void link_set_group_close(struct link *l, bool on)
{
    l->group_close = on && l->fec_on;
}
