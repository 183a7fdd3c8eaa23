/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: fec_decoder_input with fuzzed (ds, ps), packets and clock steps. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "fec/fec.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   ds u8 | ps u8 | refuse u8 | op...
 * ds is taken % 33 and ps % 17 (0 turns recovery off). Bit i of |refuse| (i = delivery count
 * % 8) makes the layer above refuse that delivery, so the counters see both answers.
 * Each op is one byte:
 *   op % 8 < 6   packet record (LE16 length + bytes) -> fec_decoder_input
 *   op % 8 == 6  step LE16                           -> clock += step
 *   op % 8 == 7  step u8                             -> clock += step * 1000 (expiry)
 */

#define FUZZ_FEC_MAX_OPS 4096

struct fec_fuzz {
    const uint8_t *in;      /* packet being fed */
    size_t in_len;
    unsigned direct;        /* non-recovered deliveries of the current packet */
    uint8_t refuse;
    uint64_t deliveries;
    uint64_t accepted_recovered;
    unsigned logs;
};

static int on_deliver(void *user, const uint8_t *kcp_pkt, size_t len, bool recovered)
{
    struct fec_fuzz *s = user;
    int rc = (s->refuse >> (s->deliveries++ % 8)) & 1 ? ERR_PROTO : 0;

    FUZZ_CHECK(len <= FEC_MAX_PACKET);
    if (len)
        FUZZ_CHECK(kcp_pkt != NULL);
    if (recovered) {
        if (rc == 0)
            s->accepted_recovered++;
        return rc;
    }
    /* The packet being fed comes first and once: unchanged, or without its 8-byte header. */
    FUZZ_CHECK(s->direct == 0);
    s->direct++;
    if (len == s->in_len)
        FUZZ_CHECK(memcmp(kcp_pkt, s->in, len) == 0);
    else
        FUZZ_CHECK(len + FEC_HEADER_LEN == s->in_len &&
                   memcmp(kcp_pkt, s->in + FEC_HEADER_LEN, len) == 0);
    return rc;
}

static void on_log(void *user, const char *msg)
{
    struct fec_fuzz *s = user;
    FUZZ_CHECK(msg && msg[0]);
    s->logs++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    struct fec_fuzz s;

    fuzz_reader_init(&r, data, size);
    memset(&s, 0, sizeof(s));
    int ds = fuzz_u8(&r) % 33;
    int ps = fuzz_u8(&r) % 17;
    s.refuse = fuzz_u8(&r);
    uint64_t now = 0;

    struct fec_decoder *dec = fec_decoder_new(ds, ps, on_log, &s);
    if (!dec)
        return 0;
    for (int ops = 0; fuzz_left(&r) > 0 && ops < FUZZ_FEC_MAX_OPS; ops++) {
        uint8_t op = fuzz_u8(&r) % 8;
        if (op == 6) {
            now += fuzz_u16(&r);
            continue;
        }
        if (op == 7) {
            now += (uint64_t)fuzz_u8(&r) * 1000;
            continue;
        }
        size_t len;
        const uint8_t *pkt = fuzz_record(&r, &len);
        /* An exact-size copy so that ASan sees reads past the packet. */
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            break;
        memcpy(copy, pkt, len);
        s.in = copy;
        s.in_len = len;
        s.direct = 0;
        int rc = fec_decoder_input(dec, copy, len, now, on_deliver, &s);
        FUZZ_CHECK(rc == 0 || rc == ERR_PROTO || rc == ERR_TOOBIG || rc == ERR_NOMEM);
        if (rc == ERR_PROTO)
            FUZZ_CHECK(len < FEC_MIN_PACKET);
        if (rc == ERR_PROTO || rc == ERR_TOOBIG)
            FUZZ_CHECK(s.direct == 0);
        free(copy);
        if (ds > 0 && ps > 0)
            FUZZ_CHECK(fec_decoder_pending(dec) <= (size_t)FEC_RX_MULTI * (size_t)(ds + ps));
        FUZZ_CHECK(fec_decoder_stats(dec)->recovered == s.accepted_recovered);
        FUZZ_CHECK(s.logs <= 1);
        FUZZ_CHECK(s.logs == 0 || fec_decoder_has_mismatch(dec));
    }
    fec_decoder_free(dec);
    return 0;
}
