/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the stream target header and reply (peer input), and forward specs. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "common/fwd.h"

#include <string.h>

/*
 * Input layout: kind u8 | bytes.
 *   kind 0: the bytes are a stream's first bytes at the server: fwd_request_decode on every
 *           prefix; a decoded header must encode back to the same bytes, a longer prefix must
 *           decode the same way, ERR_AGAIN only while the header is incomplete.
 *   kind 1: a reply at the client: fwd_reply_decode.
 *   kind 2, 3, 4: the bytes as an -L, -D or -U spec (NUL-terminated copy).
 * Copies are exact-sized, so ASan sees any overread.
 */

static void fuzz_request(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    int first = ERR_AGAIN;
    size_t at = 0;
    for (size_t k = 0; k <= size && k <= FWD_REQ_MAX + 1; k++) {
        struct fwd_target t;
        int rc = fwd_request_decode(copy, k, &t);
        FUZZ_CHECK(rc == ERR_AGAIN || rc == ERR_PROTO || (rc >= 3 && (size_t)rc <= k));
        if (first == ERR_AGAIN && rc != ERR_AGAIN) {
            first = rc;
            at = k;
        } else if (first != ERR_AGAIN) {
            FUZZ_CHECK(rc == first); /* more bytes never change the verdict */
        }
        if (rc > 0) {
            uint8_t back[FWD_REQ_MAX];
            FUZZ_CHECK(fwd_request_encode(&t, back, sizeof(back)) == rc);
            FUZZ_CHECK(memcmp(back, copy, (size_t)rc) == 0);
            char buf[FWD_HOST_MAX + 16];
            fwd_target_str(&t, buf, sizeof(buf));
            FUZZ_CHECK(strlen(buf) < sizeof(buf));
        }
    }
    if (first > 0)
        FUZZ_CHECK((size_t)first == at);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t kind = data[0];
    data++;
    size--;
    if (kind % 5 == 0) {
        fuzz_request(data, size);
    } else if (kind % 5 == 1) {
        uint8_t *copy = malloc(size ? size : 1);
        FUZZ_CHECK(copy);
        memcpy(copy, data, size);
        int rc = fwd_reply_decode(copy, size);
        FUZZ_CHECK(rc == ERR_AGAIN || rc == ERR_PROTO || (rc >= 0 && rc <= 255));
        free(copy);
    } else {
        char *s = malloc(size + 1);
        FUZZ_CHECK(s);
        memcpy(s, data, size);
        s[size] = '\0';
        char kinds[] = {'L', 'D', 'U'};
        struct fwd_spec f;
        char err[256];
        int rc = fwd_parse_spec(kinds[kind % 5 - 2], s, &f, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || rc == ERR_INVAL);
        if (rc == 0) {
            FUZZ_CHECK(f.bind_port != 0 && strlen(f.bind) < FWD_HOST_MAX);
            if (f.kind != 'D') {
                struct fwd_target t;
                FUZZ_CHECK(f.port != 0 && fwd_target_set(&t, f.host, f.port) == 0);
            }
        } else {
            FUZZ_CHECK(err[0] && !strchr(err, '\n'));
        }
        free(s);
    }
    return 0;
}
