/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: roam_scan over arbitrary opened payloads, and the rule over the results. */
#include "tests/fuzz/fuzz.h"

#include "common/roam.h"

#include <string.h>

/*
 * Input layout:
 *   conv LE32 | flags u8 | now LE32 | payload record (LE16 length + bytes) ...
 * flags: bit 0 secure mode, bit 1 "advanced", bit 2 "authenticated".
 * Every payload is scanned for conv; the scan must read only the payload (ASan checks the
 * copy's bounds), give empty results for inputs shorter than one KCP header, and the rule
 * must never move the reply address on a datagram that is not the newest.
 */

#define FUZZ_ROAM_MAX_RECORDS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    fuzz_reader_init(&r, data, size);
    uint32_t conv = fuzz_u32(&r);
    uint8_t flags = fuzz_u8(&r);
    uint64_t now = fuzz_u32(&r);
    struct roam ro;
    roam_init(&ro, flags & 1 ? ROAM_MODE_SECURE : ROAM_MODE_COMPAT);
    for (int i = 0; i < FUZZ_ROAM_MAX_RECORDS && r.left; i++) {
        size_t len;
        const uint8_t *rec = fuzz_record(&r, &len);
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
        FUZZ_CHECK(copy);
        memcpy(copy, rec, len);
        struct roam_scan s;
        roam_scan(copy, len, conv, &s);
        if (len < 24)
            FUZZ_CHECK(!s.has_push && !s.has_ack);
        struct roam_facts f = {.authenticated = flags & 4, .advanced = flags & 2, .scan = s};
        bool newest = roam_is_newest(&ro, &s);
        enum roam_verdict v = roam_decide(&ro, &f, now + (uint64_t)i * 10);
        FUZZ_CHECK(v == ROAM_IGNORE || newest);
        FUZZ_CHECK(v != ROAM_PROBE || ro.mode == ROAM_MODE_COMPAT);
        roam_observe(&ro, &s);
        if (newest) /* observing raises the maxima to it, not past it */
            FUZZ_CHECK(roam_is_newest(&ro, &s));
        free(copy);
    }
    return 0;
}
