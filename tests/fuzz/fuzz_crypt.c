/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: crypt_open for every method, plus seal/open round trips and forgeries. */
#include "tests/fuzz/fuzz.h"

#include "common/err.h"
#include "crypto/crypt.h"

#include <stdbool.h>
#include <string.h>

/*
 * Input layout:
 *   method u8 | action u8 | flip LE16 | bytes...
 * method % (number of methods) picks the object (kcptun's 13 methods, then the secure mode).
 * action % 2 == 0: the bytes are a received datagram -> crypt_open.
 * action % 2 == 1: the bytes are a payload -> seal, then open (must give it back); for the
 *   secure mode also: a copy with bit |flip| % (8 * len) flipped must fail, the genuine one
 *   must open once and its replay must fail, and the sender must refuse its own datagram.
 *
 * The objects are created once per process (the secure mode's key costs an Argon2id run);
 * the secure receiver's replay table therefore lives across inputs, which only ever holds
 * the harness's own sender.
 */

#define FUZZ_PASSWORD "it's a secrect"
#define FUZZ_NOW_MS 1700000000000ull
#define FUZZ_MAX_METHODS 32

struct crypt_set {
    struct crypt *obj[FUZZ_MAX_METHODS]; /* one per method; the secure one seals as client */
    struct crypt *secure_rx;             /* secure mode, server side */
    int count;
    int secure;                          /* index of the secure method */
    uint64_t rng_state;
    uint64_t now;
};

static struct crypt_set set;

/* Deterministic nonces and sender ids (xorshift64*). */
static void fuzz_rng(void *user, uint8_t *buf, size_t len)
{
    struct crypt_set *cs = user;
    for (size_t i = 0; i < len; i++) {
        cs->rng_state ^= cs->rng_state >> 12;
        cs->rng_state ^= cs->rng_state << 25;
        cs->rng_state ^= cs->rng_state >> 27;
        buf[i] = (uint8_t)((cs->rng_state * 0x2545f4914f6cdd1dull) >> 56);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *const *names = crypt_method_names();
    int err = 0;

    (void)argc;
    (void)argv;
    set.rng_state = 0x9e3779b97f4a7c15ull;
    set.now = FUZZ_NOW_MS;
    set.secure = -1;
    for (int i = 0; names[i] && i < FUZZ_MAX_METHODS; i++) {
        set.obj[i] = crypt_new(names[i], FUZZ_PASSWORD, fuzz_rng, &set, &err);
        FUZZ_CHECK(set.obj[i] != NULL);
        if (strcmp(names[i], CRYPT_SECURE_METHOD) == 0) {
            set.secure = i;
            crypt_set_role(set.obj[i], CRYPT_ROLE_CLIENT);
            set.secure_rx = crypt_new(names[i], FUZZ_PASSWORD, fuzz_rng, &set, &err);
            FUZZ_CHECK(set.secure_rx != NULL);
            crypt_set_role(set.secure_rx, CRYPT_ROLE_SERVER);
            crypt_set_start(set.secure_rx, FUZZ_NOW_MS - 1000);
        }
        set.count = i + 1;
    }
    FUZZ_CHECK(set.secure >= 0);
    return 0;
}

/* Opens a private exact-size copy of |len| bytes at |dgram|; checks the payload bounds.
 * Returns crypt_open's result and, on success, copies the payload to |out|. */
static ssize_t open_copy(struct crypt *c, const uint8_t *dgram, size_t len, uint8_t *out)
{
    uint8_t *buf = malloc(len ? len : 1);
    const uint8_t *payload = NULL;

    FUZZ_CHECK(buf != NULL);
    memcpy(buf, dgram, len);
    ssize_t n = crypt_open(c, buf, len, set.now, &payload);
    if (n >= 0) {
        FUZZ_CHECK(payload >= buf && payload + n <= buf + len);
        FUZZ_CHECK((size_t)n + crypt_head_len(c) + crypt_tail_len(c) == len);
        FUZZ_CHECK(payload == buf + crypt_head_len(c));
        if (out)
            memcpy(out, payload, (size_t)n);
    } else {
        FUZZ_CHECK(n == ERR_AUTH || n == ERR_LIMIT || n == ERR_NOMEM);
    }
    free(buf);
    return n;
}

/* Seals |len| payload bytes with |tx| and checks that |rx| gives them back. */
static void round_trip(struct crypt *tx, struct crypt *rx, const uint8_t *data, size_t len,
                       unsigned flip, bool secure)
{
    uint8_t dgram[CRYPT_MAX_DATAGRAM], back[CRYPT_MAX_DATAGRAM];
    size_t head = crypt_head_len(tx), tail = crypt_tail_len(tx);

    if (len > CRYPT_MAX_DATAGRAM - head - tail)
        len = CRYPT_MAX_DATAGRAM - head - tail;
    memcpy(dgram + head, data, len);
    ssize_t n = crypt_seal(tx, dgram, len, sizeof(dgram), set.now);
    FUZZ_CHECK(n >= 0 && (size_t)n == head + len + tail);
    if (secure) {
        uint8_t forged[CRYPT_MAX_DATAGRAM];
        memcpy(forged, dgram, (size_t)n);
        forged[(flip / 8) % (unsigned)n] ^= (uint8_t)(1u << (flip % 8));
        FUZZ_CHECK(open_copy(rx, forged, (size_t)n, NULL) == ERR_AUTH);
        FUZZ_CHECK(open_copy(tx, dgram, (size_t)n, NULL) == ERR_AUTH); /* reflection */
    }
    FUZZ_CHECK(open_copy(rx, dgram, (size_t)n, back) == (ssize_t)len);
    FUZZ_CHECK(len == 0 || memcmp(back, data, len) == 0);
    if (secure)
        FUZZ_CHECK(open_copy(rx, dgram, (size_t)n, NULL) == ERR_AUTH); /* replay */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;

    if (set.count == 0)
        LLVMFuzzerInitialize(NULL, NULL);
    fuzz_reader_init(&r, data, size);
    int m = fuzz_u8(&r) % set.count;
    uint8_t action = fuzz_u8(&r);
    unsigned flip = fuzz_u16(&r);
    size_t len;
    const uint8_t *bytes = fuzz_bytes(&r, fuzz_left(&r), &len);
    bool secure = m == set.secure;
    struct crypt *c = set.obj[m];

    set.now++;
    if (action % 2 == 0) {
        open_copy(secure ? set.secure_rx : c, bytes, len, NULL);
        return 0;
    }
    round_trip(c, secure ? set.secure_rx : c, bytes, len, flip, secure);
    return 0;
}
