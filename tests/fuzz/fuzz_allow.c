/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the --allow parser and matcher (common/allow.h). */
#include "tests/fuzz/fuzz.h"

#include "common/allow.h"
#include "common/err.h"

#include <string.h>

/*
 * Input layout:
 *   spec record (LE16 length + bytes) | probe records ...
 * The spec is parsed as one --allow value; every accepted entry must print (allow_entry_str)
 * as text that parses back to the same entry. Each probe record is
 *   port LE16 | bytes
 * tried as an address (4 or 16 bytes), as a name and as an IP literal; a probe that matches
 * must have a port some entry admits. Copies are exact-sized, so ASan sees any overread.
 */

#define FUZZ_ALLOW_MAX_PROBES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    fuzz_reader_init(&r, data, size);
    size_t len;
    const uint8_t *spec = fuzz_record(&r, &len);
    char *s = malloc(len + 1);
    FUZZ_CHECK(s);
    memcpy(s, spec, len);
    s[len] = '\0';
    struct allow_list l = {0};
    char err[256];
    int rc = allow_add(&l, s, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == ERR_INVAL || rc == ERR_LIMIT || rc == ERR_NOMEM);
    FUZZ_CHECK(rc == 0 || l.n == 0);
    if (rc != 0)
        FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    for (size_t i = 0; i < l.n; i++) {
        char buf[300];
        struct allow_entry back;
        allow_entry_str(&l.v[i], buf, sizeof(buf));
        FUZZ_CHECK(allow_parse_entry(buf, strlen(buf), &back, NULL, 0) == 0);
        FUZZ_CHECK(memcmp(&back, &l.v[i], sizeof(back)) == 0);
    }
    for (int k = 0; k < FUZZ_ALLOW_MAX_PROBES && fuzz_left(&r); k++) {
        uint16_t port = fuzz_u16(&r);
        const uint8_t *p = fuzz_record(&r, &len);
        uint8_t *copy = malloc(len ? len : 1);
        FUZZ_CHECK(copy);
        memcpy(copy, p, len);
        bool m = allow_match(&l, copy, len, port);
        bool mn = allow_match_name(&l, (const char *)copy, len, port);
        if (m || mn)
            FUZZ_CHECK(port != 0 && allow_port_possible(&l, port));
        uint8_t a[16];
        size_t alen = 0;
        if (allow_parse_ip((const char *)copy, len, a, &alen))
            FUZZ_CHECK((alen == 4 || alen == 16) && mn == allow_match(&l, a, alen, port));
        free(copy);
    }
    allow_free(&l);
    free(s);
    return 0;
}
