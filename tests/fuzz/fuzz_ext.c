/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the extension segment (ext_split, kcp_input_until, ext_seg_parse,
 * ext_next), its records (caps, flow, datagram), the duplicate filter, and a tunnel fed the
 * same packets. */
#include "tests/fuzz/fuzz.h"

#include "common/dgram.h"
#include "common/err.h"
#include "common/ext.h"
#include "common/kcp.h"
#include "common/tunnel.h"
#include "crypto/crypt.h"

#include <string.h>

/*
 * Input layout:
 *   conv LE32 | flags u8 | packet record (LE16 length + bytes) ...
 * flags bit 0: the tunnel is a client (else a server). Every packet is a KCP packet as the
 * link sees it after crypt and FEC. Checks: ext_split's split lies within the packet and its
 * records too; kcp_input_until (the link's one walk) stops where ext_split splits and
 * ext_seg_parse agrees with it there; a datagram record that parses re-encodes to the same bytes; the filter never
 * accepts a sequence number twice in a row; the tunnel takes any packet without crashing.
 */

#define FUZZ_EXT_MAX_RECORDS 128

static struct crypt *crypt_obj;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    crypt_obj = crypt_new("none", "fuzz", crypt_rng_sodium, NULL, NULL);
    return 0;
}

static void out_cb(void *user, const uint8_t *d, size_t len)
{
    (void)user;
    (void)d;
    (void)len;
}

static void kcp_out_cb(void *user, const uint8_t *d, size_t len)
{
    (void)user;
    (void)d;
    (void)len;
}

static void dgram_cb(void *user, const struct tunnel_dgram *d)
{
    (void)user;
    FUZZ_CHECK(d->len < 65536 && d->target_len <= DGRAM_TARGET_MAX);
}

static void check_records(const uint8_t *body, size_t blen, struct dgram_window *w)
{
    const uint8_t *p = body, *end = body + blen;
    struct ext_rec r;
    int rc;
    while ((rc = ext_next(&p, end, &r)) == 1) {
        FUZZ_CHECK(r.val >= body && r.val + r.len <= end);
        uint8_t ver;
        uint32_t caps, flow;
        struct dgram d;
        switch (r.type) {
        case EXT_CAPS_OFFER:
        case EXT_CAPS_ANSWER:
            if (ext_parse_caps(&r, &ver, &caps) == 0)
                FUZZ_CHECK(ver != 0);
            break;
        case EXT_FLOW_OPEN:
        case EXT_FLOW_CLOSE:
            (void)ext_parse_flow(&r, &flow);
            break;
        case EXT_DGRAM:
            if (dgram_parse(&r, &d) == 0) {
                uint8_t *re = malloc(dgram_rec_len(d.target_len, d.len));
                FUZZ_CHECK(re);
                size_t n = dgram_put(re, d.flow, d.seq, d.target, d.target_len, d.data, d.len);
                FUZZ_CHECK(re[EXT_REC_HDR + 8] == d.flags);
                FUZZ_CHECK(n == EXT_REC_HDR + r.len);
                FUZZ_CHECK(memcmp(re + EXT_REC_HDR, r.val, r.len) == 0);
                free(re);
                if (dgram_window_accept(w, d.seq))
                    FUZZ_CHECK(!dgram_window_accept(w, d.seq));
            }
            break;
        default:
            break;
        }
    }
    FUZZ_CHECK(rc == 0 || p == end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    fuzz_reader_init(&r, data, size);
    uint32_t conv = fuzz_u32(&r);
    uint8_t flags = fuzz_u8(&r);
    FUZZ_CHECK(crypt_obj);
    struct tunnel_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    link_config_default(&cfg.link);
    mux_config_default(&cfg.mux);
    cfg.ext_caps = EXT_CAPS_ALL;
    cfg.ext_offer = flags & 1;
    struct tunnel_callbacks cb = {.output = out_cb, .on_dgram = dgram_cb};
    struct tunnel *t = tunnel_new(conv, &cfg, flags & 1, crypt_obj, NULL, &cb, NULL, 0, NULL);
    FUZZ_CHECK(t);
    struct dgram_window w;
    memset(&w, 0, sizeof(w));
    struct kcp *k = kcp_new(conv, kcp_out_cb, NULL);
    FUZZ_CHECK(k);
    for (int i = 0; i < FUZZ_EXT_MAX_RECORDS && r.left; i++) {
        size_t len;
        const uint8_t *rec = fuzz_record(&r, &len);
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
        FUZZ_CHECK(copy);
        memcpy(copy, rec, len);
        size_t klen, blen;
        const uint8_t *body;
        int rc = ext_split(copy, len, conv, &klen, &body, &blen);
        FUZZ_CHECK(klen <= len);
        if (rc == 0 && body) {
            FUZZ_CHECK(body == copy + klen + EXT_SEG_HDR && body + blen <= copy + len);
            check_records(body, blen, &w);
        }
        size_t stop = 0;
        (void)kcp_input_until(k, copy, len, true, (uint64_t)i, EXT_CMD, &stop);
        FUZZ_CHECK(stop == klen);
        if (stop < len) {
            const uint8_t *b2;
            size_t bl2;
            FUZZ_CHECK(ext_seg_parse(copy + stop, len - stop, conv, &b2, &bl2) == rc);
            FUZZ_CHECK(b2 == body && bl2 == blen);
        }
        uint64_t now = (uint64_t)i * 7;
        tunnel_input_payload(t, copy, len, now);
        tunnel_tick(t, now);
        tunnel_pump(t, now);
        free(copy);
    }
    kcp_free(k);
    tunnel_free(t);
    return 0;
}
