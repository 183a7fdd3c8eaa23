/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: SOCKS5 greeting, request and UDP header parsers (local client input). */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "common/socks5.h"

#include <string.h>

/*
 * Input layout: kind u8 | bytes.
 *   kind 0: a client's first bytes: the greeting, then (after it) the request, as the -D
 *           listener reads them; every prefix must give ERR_AGAIN until the verdict, and the
 *           verdict must not change with more bytes.
 *   kind 1: a UDP ASSOCIATE datagram: socks5_udp_parse; a parsed header must encode back to
 *           the same bytes (names and addresses as sent).
 * Copies are exact-sized, so ASan sees any overread.
 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t kind = data[0];
    uint8_t *copy = malloc(size);
    FUZZ_CHECK(copy);
    memcpy(copy, data + 1, size - 1);
    size--;
    if (kind % 2 == 0) {
        bool no_auth;
        int g = ERR_AGAIN;
        for (size_t k = 0; k <= size && g == ERR_AGAIN; k++)
            g = socks5_greeting_parse(copy, k, &no_auth);
        FUZZ_CHECK(g == ERR_AGAIN || g == ERR_PROTO || (g >= 3 && (size_t)g <= size));
        if (g > 0) {
            const uint8_t *p = copy + g;
            size_t left = size - (size_t)g;
            int first = ERR_AGAIN;
            for (size_t k = 0; k <= left; k++) {
                struct socks5_request r;
                int rc = socks5_request_parse(p, k, &r);
                FUZZ_CHECK(rc == ERR_AGAIN || rc == ERR_PROTO || (rc >= 4 && (size_t)rc <= k));
                if (first == ERR_AGAIN)
                    first = rc;
                else if (first == ERR_PROTO)
                    FUZZ_CHECK(rc == ERR_PROTO);
                if (rc > 0 && r.rep == 0) {
                    FUZZ_CHECK(r.target.atyp == FWD_ATYP_IPV4 || r.target.atyp == FWD_ATYP_IPV6 ||
                               r.target.atyp == FWD_ATYP_NAME);
                    uint8_t out[SOCKS5_REPLY_MAX];
                    FUZZ_CHECK(socks5_reply_encode(0, &r.target, out) <= SOCKS5_REPLY_MAX);
                    if (r.target.port) {
                        uint8_t hdr[FWD_REQ_MAX];
                        FUZZ_CHECK(fwd_request_encode(&r.target, hdr, sizeof(hdr)) > 0);
                    }
                }
            }
        }
    } else {
        struct fwd_target t;
        int rc = socks5_udp_parse(copy, size, &t);
        FUZZ_CHECK(rc == ERR_PROTO || (rc >= 7 && (size_t)rc <= size));
        /* An address sent as a name (its literal text) is taken as the address, so only
         * headers that carry an address on the wire (ATYP 1 or 4, byte 3) encode back to the
         * same bytes. */
        if (rc > 0 && copy[3] != 3) {
            uint8_t back[SOCKS5_UDP_HDR_MAX];
            FUZZ_CHECK(socks5_udp_encode(&t, back, sizeof(back)) == rc);
            FUZZ_CHECK(memcmp(back, copy, (size_t)rc) == 0);
        }
    }
    free(copy);
    return 0;
}
